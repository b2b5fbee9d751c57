//! The producer thread: encodes row changes as JSON, groups them into
//! per-partition batches, and sends them on a 100 ms tick (or earlier when a
//! batch is full). An acknowledged batch goes into the commit log.
//!
//! A failed send is retried, in order, with back-off: an event is never
//! dropped and never overtaken by a later one for the same partition, because
//! nothing else is sent until the failed batch succeeds.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{select, tick, Receiver};

use super::{PipelineError, Shared};
use crate::config::{render_topic, Config, KeyFormat, PartitionBy};
use crate::event::{Change, DdlChange, Position, RowChange, RowImage, RowKind, TableSchema};
use crate::format::{debezium, maxwell, Context, Encoder, Format, TxnOrder};
use crate::kafka::{murmur2, Client, KafkaError, OutRecord, Transactional};

/// The batching interval fixed by the design.
pub const TICK: Duration = Duration::from_millis(100);

/// A record's framing in a RecordBatch v2 beyond its key and value (varint
/// lengths, deltas, attributes), counted against `kafka.max_record_bytes`.
const RECORD_OVERHEAD: usize = 24;

/// Where an encoded record came from, for acknowledgements and error
/// messages.
struct Origin {
    seq: u64,
    /// The row's table; `None` for DDL and transaction markers.
    table: Option<Arc<TableSchema>>,
    file: Arc<str>,
    pos: u64,
}

impl Origin {
    fn what(&self) -> String {
        match &self.table {
            Some(t) => format!("{}.{}", t.database, t.table),
            None => "a DDL or transaction marker".into(),
        }
    }
}

#[derive(Default)]
struct PartitionBatch {
    records: Vec<OutRecord>,
    origins: Vec<Origin>,
    /// The position of the newest row change in the batch: its last record
    /// carries it ([`super::dedupe`]).
    last_pos: Option<Position>,
}

/// One topic the producer writes to: its partitions' batches and the
/// newest offset acknowledged in each (a later acknowledgement at or below
/// it means the broker lost data).
struct TopicState {
    name: String,
    batches: Vec<PartitionBatch>,
    last_offsets: Vec<i64>,
    /// The idempotent producer's next sequence number per partition.
    sequences: Vec<i32>,
}

/// The transaction whose rows are being encoded, for transaction markers.
struct OpenTxn {
    id: String,
    /// Rows per table so far, in first-seen order (`data_collections`).
    tables: Vec<(String, u64)>,
}

pub fn spawn(
    cfg: Config,
    shared: Arc<Shared>,
    pending: Receiver<Vec<Change>>,
    client: Client,
    start: Position,
    fencing: Option<Transactional>,
) -> JoinHandle<Result<(), PipelineError>> {
    thread::Builder::new()
        .name("b2k-producer".into())
        .spawn(move || {
            let mut p = Producer {
                start,
                encoder: Encoder::new(cfg.format, cfg.style, &cfg.pipeline_name),
                templated: cfg.topic.contains('{'),
                fixed_topic: None,
                cfg,
                shared: shared.clone(),
                client,
                topics: Vec::new(),
                topic_index: HashMap::new(),
                by_schema: HashMap::new(),
                topic_owners: HashMap::new(),
                buffered_bytes: 0,
                outage_since: None,
                txn: None,
                arena: BytesMut::new(),
                scratch: Default::default(),
                tails: None,
                skipped_acks: Vec::new(),
                idem: None,
                fencing: None,
                in_flight: Default::default(),
                acked: Acked::default(),
                random: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
            };
            if matches!(p.cfg.partition_by, PartitionBy::Random) {
                log::warn!("kafka.partition_by=random: a row read again after a crash may go to another partition than its first copy, so it cannot be matched with what Kafka holds and may be sent twice");
            } else {
                p.tails = Some(super::dedupe::Tails::new(&p.cfg.pipeline_name));
            }
            p.idem = match fencing {
                // The fencing producer is idempotent too.
                Some(t) => {
                    let id = t.producer;
                    p.fencing = Some(t);
                    Some(id)
                }
                None => match p.client.init_producer_id() {
                    Ok(Some(id)) => {
                        log::info!(
                            "idempotent producer {} (epoch {}): a batch sent again after a lost answer is dropped by the broker",
                            id.id,
                            id.epoch
                        );
                        Some(id)
                    }
                    Ok(None) => {
                        log::warn!("the broker offers no idempotent producer (InitProducerId): a batch sent again after a lost answer may be stored twice");
                        None
                    }
                    Err(e) => {
                        log::warn!("no idempotent producer ({e}): a batch sent again after a lost answer may be stored twice");
                        None
                    }
                },
            };
            let result = p.run(pending);
            if result.is_err() {
                shared.request_stop();
            }
            result
        })
        .expect("spawn producer thread")
}

struct Producer {
    /// Where this run started: the resume point to name if Kafka loses data
    /// before anything is released.
    start: Position,
    cfg: Config,
    encoder: Encoder,
    /// `kafka.topic` holds `{database}` or `{table}`.
    templated: bool,
    /// The data topic's index in `topics` once known, when not templated.
    fixed_topic: Option<usize>,
    shared: Arc<Shared>,
    client: Client,
    topics: Vec<TopicState>,
    topic_index: HashMap<String, usize>,
    /// Templated topics: the topic index of each table schema seen (the
    /// Arc is kept, so its pointer stays unique).
    by_schema: HashMap<usize, (Arc<TableSchema>, usize)>,
    /// Templated topics by name with `.` folded to `_`: which table (or
    /// database) writes to it, and the name it rendered.
    topic_owners: HashMap<String, ((String, Option<String>), String)>,
    buffered_bytes: usize,
    outage_since: Option<Instant>,
    txn: Option<OpenTxn>,
    /// State of the generator behind partition_by=random.
    random: u64,
    /// Where records' keys and values are kept (see `keep`).
    arena: BytesMut,
    /// Per-row encoding buffers: the Maxwell key, the value, another key.
    scratch: (Vec<u8>, Vec<u8>, Vec<u8>),
    /// What each partition held before this run wrote to it
    /// ([`super::dedupe`]); `None` with `kafka.partition_by=random`.
    tails: Option<super::dedupe::Tails>,
    /// Re-read rows found in Kafka already: released with the next flush.
    skipped_acks: Vec<(u64, i64)>,
    /// The idempotent producer id (KIP-98), where the broker has one.
    idem: Option<crate::kafka::Producer>,
    /// The pipeline's transactional id, where the broker fences: each topic
    /// is fenced before its first record or tail read ([`crate::kafka::txn`]).
    fencing: Option<Transactional>,
    /// Batches sent whose answers are not read yet, oldest first.
    in_flight: std::collections::VecDeque<InFlight>,
    /// What the answered batches of the current flush acknowledge.
    acked: Acked,
}

/// Produce requests outstanding at once with the idempotent producer: the
/// most for which Kafka keeps a producer's batches in order.
const MAX_IN_FLIGHT: usize = 5;

/// A batch written to the broker, waiting for its answer.
struct InFlight {
    topic: usize,
    partition: i32,
    batch: PartitionBatch,
    /// The sequence number of its first record.
    seq: i32,
    /// `None`: the request could not be written; it is sent again.
    sent: Option<crate::kafka::Sent>,
    /// The last batch of its flush: the flush's acknowledgements go out
    /// with it.
    flush_ends: bool,
}

/// Acknowledgements and counts of a flush's answered batches.
#[derive(Default)]
struct Acked {
    acks: Vec<(u64, i64)>,
    rows: u64,
    bytes: u64,
    /// Rows per table for the status page, keyed by schema pointer (the
    /// Arc is kept, so the pointer stays unique) and named once.
    per_table: HashMap<usize, (Arc<TableSchema>, u64)>,
}

/// Whether an update changes a primary-key column.
fn key_changed(r: &RowChange) -> bool {
    let (Some(b), Some(a)) = (&r.before, &r.after) else {
        return false;
    };
    r.table.primary_key.iter().any(|&i| b.cell(i) != a.cell(i))
}

/// Size of each arena buffer records are cut from.
const ARENA_CHUNK: usize = 256 * 1024;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    fn run(&mut self, pending: Receiver<Vec<Change>>) -> Result<(), PipelineError> {
        let ticker = tick(TICK);
        loop {
            select! {
                recv(pending) -> msg => match msg {
                    Ok(changes) => {
                        let now = now_ms();
                        for c in &changes {
                            match c {
                                Change::Row(r) => self.encode(r, now)?,
                                Change::Ddl(d) => self.encode_ddl(d, now)?,
                            }
                        }
                        // Full batches go out pipelined; the tick waits for
                        // every answer, so at a low rate nothing lingers.
                        if self.buffered_bytes >= self.cfg.batch_max_bytes {
                            self.flush(false)?;
                        }
                    }
                    // The reader has finished: send what is left and stop.
                    Err(_) => return self.flush(true),
                },
                recv(ticker) -> _ => self.flush(true)?,
            }
        }
    }

    /// The index of `name` in `topics`, creating the topic (with
    /// `kafka.topic_partitions` partitions) on first use.
    fn topic(&mut self, name: &str, partitions: i32) -> Result<usize, PipelineError> {
        if let Some(&i) = self.topic_index.get(name) {
            return Ok(i);
        }
        // The connection may carry no other request with answers pending.
        self.settle()?;
        let (mut attempt, mut stop_deadline) = (0u32, None);
        let n = loop {
            match self.partition_count(name, partitions) {
                Ok(n) => break n,
                Err(e) if e.is_retriable() => {
                    let what = format!("cannot read or create topic {name}");
                    self.wait_out(&e, &what, 0, &mut attempt, &mut stop_deadline)?;
                }
                Err(err) => {
                    return Err(PipelineError::Kafka {
                        during: format!("reading or creating topic {name}"),
                        err,
                    })
                }
            }
        };
        self.fence(name, n)?;
        self.back_from_outage();
        self.topics.push(TopicState {
            name: name.to_string(),
            batches: (0..n).map(|_| PartitionBatch::default()).collect(),
            last_offsets: vec![-1; n],
            sequences: vec![0; n],
        });
        self.topic_index
            .insert(name.to_string(), self.topics.len() - 1);
        Ok(self.topics.len() - 1)
    }

    /// Fences every partition of `name` against the pipeline's earlier
    /// holders before this daemon reads or writes any of them: from here on
    /// the broker refuses a paused predecessor's batches there, so what it
    /// wrote is a prefix this daemon reads and does not write again.
    fn fence(&mut self, name: &str, partitions: usize) -> Result<(), PipelineError> {
        let Some(txn) = self.fencing.clone() else {
            return Ok(());
        };
        let all: Vec<i32> = (0..partitions as i32).collect();
        let (mut attempt, mut stop_deadline) = (0u32, None);
        loop {
            match self.client.fence(&txn, name, &all) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_fenced() => {
                    return Err(PipelineError::FencedByBroker {
                        id: txn.id.clone(),
                        during: format!("fencing topic {name}"),
                    })
                }
                Err(e)
                    if e.is_retriable()
                        || matches!(
                            e,
                            KafkaError::Broker {
                                code: 14 | 15 | 16 | 51,
                                ..
                            }
                        ) =>
                {
                    let what = format!("cannot fence topic {name} against earlier daemons");
                    self.wait_out(&e, &what, 0, &mut attempt, &mut stop_deadline)?;
                }
                Err(err) => {
                    return Err(PipelineError::Kafka {
                        during: format!(
                            "fencing topic {name} against earlier daemons of this pipeline"
                        ),
                        err,
                    })
                }
            }
        }
    }

    /// The topic of `table` under a `{database}`/`{table}` template. Two
    /// tables whose names render to one topic (`c`.`a.b` and `c.a`.`b`;
    /// `a b` and `a_b`), or to two that Kafka itself refuses side by side
    /// (they differ only by `.` against `_`), stop the pipeline at the
    /// second table's first row instead of mixing them.
    fn table_topic(&mut self, table: &Arc<TableSchema>) -> Result<usize, PipelineError> {
        let ptr = Arc::as_ptr(table) as usize;
        if let Some((_, i)) = self.by_schema.get(&ptr) {
            return Ok(*i);
        }
        let name = render_topic(&self.cfg.topic, &table.database, &table.table);
        // What the template tells apart: a template without {table} puts a
        // database's tables in one topic on purpose.
        let source = if self.cfg.topic.contains("{table}") {
            (table.database.clone(), Some(table.table.clone()))
        } else {
            (table.database.clone(), None)
        };
        let shown = |s: &(String, Option<String>)| match &s.1 {
            Some(t) => format!("`{}`.`{t}`", s.0),
            None => format!("database `{}`", s.0),
        };
        let folded = name.replace('.', "_");
        match self.topic_owners.get(&folded) {
            Some((other, other_topic)) if *other != source => {
                // Everything before this row goes out first, so the
                // checkpoint ends right before it.
                let (first, first_topic) = (shown(other), other_topic.clone());
                self.flush(true)?;
                return Err(PipelineError::TopicCollision {
                    first,
                    first_topic,
                    second: shown(&source),
                    second_topic: name,
                });
            }
            Some(_) => {}
            None => {
                self.topic_owners.insert(folded, (source, name.clone()));
            }
        }
        let i = self.topic(&name, self.cfg.topic_partitions)?;
        if self.by_schema.len() > 10_000 {
            self.by_schema.clear();
        }
        self.by_schema.insert(ptr, (table.clone(), i));
        Ok(i)
    }

    /// `name`'s partition count, creating the topic if it is missing.
    fn partition_count(&mut self, name: &str, partitions: i32) -> Result<usize, KafkaError> {
        if let Some(n) = self.client.partitions(name)? {
            return Ok(n.max(1));
        }
        self.client
            .create_topic(name, partitions, self.cfg.replication_factor, &[])?;
        log::info!("created topic {name} (partitions: {partitions})");
        Ok(self
            .client
            .partitions(name)?
            .unwrap_or(partitions as usize)
            .max(1))
    }

    /// Waits out a transient Kafka failure with back-off: the first one of
    /// an outage is logged and shown on the status page. While the pipeline
    /// is stopping it waits at most `pipeline.shutdown_timeout_ms`, then
    /// gives up with the changes still unsent (`unflushed` plus the batches).
    fn wait_out(
        &mut self,
        e: &KafkaError,
        what: &str,
        unflushed: usize,
        attempt: &mut u32,
        stop_deadline: &mut Option<Instant>,
    ) -> Result<(), PipelineError> {
        self.note_outage(e, what);
        if self.shared.stopping() {
            let deadline =
                *stop_deadline.get_or_insert_with(|| Instant::now() + self.cfg.shutdown_timeout);
            if Instant::now() >= deadline {
                return Err(PipelineError::FlushTimeout {
                    unflushed: unflushed
                        + self
                            .topics
                            .iter()
                            .flat_map(|t| &t.batches)
                            .chain(self.in_flight.iter().map(|e| &e.batch))
                            .map(|b| b.records.len())
                            .sum::<usize>(),
                    waited: self.cfg.shutdown_timeout,
                });
            }
        }
        let wait = Duration::from_millis(100u64 << (*attempt).min(6)).min(Duration::from_secs(5));
        *attempt += 1;
        thread::sleep(wait);
        Ok(())
    }

    /// The first failure of an outage is logged and shown on the status page.
    fn note_outage(&mut self, e: &KafkaError, what: &str) {
        if self.outage_since.is_none() {
            self.outage_since = Some(Instant::now());
            self.shared.set_down(true, Some(format!("{what}: {e}")));
            log::warn!("{what} ({e}); holding the changes and retrying with back-off");
        } else {
            log::debug!("Kafka still failing: {e}");
        }
    }

    /// Holds every send while the pipeline's lease may have run out (see
    /// [`Shared::lease_valid`]): the watcher renews it, or finds the
    /// pipeline taken over and stops it, and then nothing stale is sent.
    fn wait_for_lease(&self) -> Result<(), PipelineError> {
        let mut logged = false;
        while !self.shared.lease_valid() {
            if self.shared.stopping() {
                return Err(PipelineError::LeaseLapsed);
            }
            if !logged {
                log::debug!(
                    "the pipeline's lease may have lapsed; holding sends until it is renewed"
                );
                logged = true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Ends an outage: logged once, cleared from the status page.
    fn back_from_outage(&mut self) {
        if let Some(since) = self.outage_since.take() {
            self.shared.set_down(true, None);
            log::info!(
                "Kafka is back after {:.1}s; sending resumed",
                since.elapsed().as_secs_f64()
            );
        }
    }

    /// `bytes` as a `Bytes` cut from the arena: records share a few large
    /// buffers instead of owning one allocation each, and cloning one for a
    /// produce request is a reference count, not a copy. (The profile of an
    /// end-to-end run had a sixth of the daemon's time in malloc, free and
    /// the shared-buffer conversion of per-record `Vec`s.)
    fn keep(&mut self, bytes: &[u8]) -> Bytes {
        if self.arena.capacity() < bytes.len() {
            self.arena.reserve(ARENA_CHUNK.max(bytes.len()));
        }
        self.arena.extend_from_slice(bytes);
        self.arena.split().freeze()
    }

    /// Adds one record to a topic partition's batch.
    fn push(&mut self, topic: usize, partition: usize, record: OutRecord, origin: Origin) {
        self.buffered_bytes += record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len());
        let b = &mut self.topics[topic].batches[partition];
        b.records.push(record);
        b.origins.push(origin);
    }

    /// Encodes one change into its partition's batch (with its transaction
    /// markers and tombstone, when configured). A change too large to send
    /// stops the pipeline, after everything before it was sent, so the
    /// checkpoint ends right before it.
    fn encode(&mut self, r: &RowChange, now: i64) -> Result<(), PipelineError> {
        if self.cfg.format == Format::Debezium && r.kind == RowKind::Update && key_changed(r) {
            return self.encode_key_change(r, now);
        }
        self.encode_one(r, now, Vec::new())
    }

    /// An update that changes the primary key, as the Debezium connector
    /// writes it: a delete under the old key (and its tombstone, when
    /// enabled) with header `__debezium.newkey`, then a create under the
    /// new key with `__debezium.oldkey`. A compacted topic or an upsert
    /// sink keyed by the primary key then keeps no row under the old key.
    fn encode_key_change(&mut self, r: &RowChange, now: i64) -> Result<(), PipelineError> {
        let part = |kind, before: Option<RowImage>, after: Option<RowImage>, commit| RowChange {
            seq: r.seq,
            kind,
            table: r.table.clone(),
            before,
            after,
            ts: r.ts,
            xid: r.xid,
            xoffset: r.xoffset,
            commit,
            event_file: r.event_file.clone(),
            event_pos: r.event_pos,
            event_row: r.event_row,
            thread: r.thread,
            server_id: r.server_id,
            checkpoint: r.checkpoint.clone(),
            snapshot: None,
        };
        let delete = part(RowKind::Delete, r.before.clone(), None, false);
        let create = part(RowKind::Insert, None, r.after.clone(), r.commit);
        let key = |c: &RowChange| {
            let mut k = Vec::with_capacity(32);
            debezium::write_key_json(&mut k, c, &self.cfg.style);
            Bytes::from(k)
        };
        let (old_key, new_key) = (key(&delete), key(&create));
        self.encode_one(&delete, now, vec![("__debezium.newkey", new_key)])?;
        self.encode_one(&create, now, vec![("__debezium.oldkey", old_key)])
    }

    fn encode_one(
        &mut self,
        r: &RowChange,
        now: i64,
        headers: Vec<(&'static str, Bytes)>,
    ) -> Result<(), PipelineError> {
        let style = &self.cfg.style.clone();
        let topic = match self.fixed_topic {
            Some(i) => i,
            None if self.templated => self.table_topic(&r.table)?,
            None => {
                let name = self.cfg.topic.clone();
                let i = self.topic(&name, self.cfg.topic_partitions)?;
                self.fixed_topic = Some(i);
                i
            }
        };
        // Snapshot rows belong to no transaction.
        let txn_order = if self.cfg.transaction_markers && r.snapshot.is_none() {
            Some(self.begin_row(r, now)?)
        } else {
            None
        };
        // Scratch buffers reused for every row; the record's bytes then go
        // into the arena (see `keep`).
        let (mut maxwell_key, mut value, mut k) = std::mem::take(&mut self.scratch);
        maxwell_key.clear();
        value.clear();
        k.clear();
        // The Maxwell key (database, table, primary key) also picks the
        // partition under partition_by=primary_key, whatever the key format;
        // it is written only where it is used.
        let by_key = matches!(self.cfg.partition_by, PartitionBy::PrimaryKey)
            && !r.table.primary_key.is_empty();
        if by_key || self.cfg.key_format == KeyFormat::Maxwell {
            maxwell::write_key_json(&mut maxwell_key, r, style);
        }
        let ctx = Context {
            now_ms: now,
            txn: txn_order.as_ref().map(|(id, total, coll)| TxnOrder {
                id,
                total_order: *total,
                collection_order: *coll,
            }),
        };
        self.encoder.row_value(&mut value, r, &ctx);
        let n = self.topics[topic].batches.len();
        let by_table = || {
            let name = format!("{}.{}", r.table.database, r.table.table);
            murmur2::partition_for(name.as_bytes(), n)
        };
        let partition = match &self.cfg.partition_by {
            // No primary key: keep the table's rows together.
            PartitionBy::PrimaryKey if r.table.primary_key.is_empty() => by_table(),
            PartitionBy::PrimaryKey => murmur2::partition_for(&maxwell_key, n),
            PartitionBy::Table => by_table(),
            PartitionBy::Database => murmur2::partition_for(r.table.database.as_bytes(), n),
            PartitionBy::Column(c) => match maxwell::column_json(r, c, style) {
                Some(v) => murmur2::partition_for(&v, n),
                None => by_table(),
            },
            PartitionBy::Random => {
                self.random = self
                    .random
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1);
                murmur2::partition_for(&(self.random >> 33).to_le_bytes(), n)
            }
        } as usize;
        let key: Option<&[u8]> = match self.cfg.key_format {
            KeyFormat::Maxwell => Some(&maxwell_key),
            KeyFormat::Debezium => {
                if self.cfg.format == Format::Debezium {
                    debezium::write_key_json(&mut k, r, style);
                } else {
                    maxwell::write_pk_json(&mut k, r, style);
                }
                Some(&k)
            }
            KeyFormat::None => None,
        };
        // A row read again after a crash that its partition holds already.
        if r.snapshot.is_none() && self.there_already(topic, partition, &r.checkpoint)? {
            self.skipped_acks.push((r.seq, -1));
            self.scratch = (maxwell_key, value, k);
            return Ok(());
        }
        let key_len = key.map_or(0, |k| k.len());
        let size = key_len + value.len() + RECORD_OVERHEAD;
        if size > self.cfg.max_record_bytes {
            self.flush(true)?;
            return Err(PipelineError::RecordTooLarge {
                table: format!("{}.{}", r.table.database, r.table.table),
                position: format!(
                    "{}:{} (row {} of its transaction)",
                    r.event_file, r.event_pos, r.xoffset
                ),
                bytes: size,
                limit: format!("kafka.max_record_bytes ({})", self.cfg.max_record_bytes),
            });
        }
        let origin = || Origin {
            seq: r.seq,
            table: Some(r.table.clone()),
            file: r.event_file.clone(),
            pos: r.event_pos,
        };
        let key = key.map(|k| self.keep(k));
        let value_bytes = self.keep(&value);
        self.topics[topic].batches[partition].last_pos = Some(r.checkpoint.clone());
        self.scratch = (maxwell_key, value, k);
        let timestamp_ms = r.ts as i64 * 1000;
        self.push(
            topic,
            partition,
            OutRecord {
                key: key.clone(),
                value: Some(value_bytes),
                timestamp_ms,
                headers,
            },
            origin(),
        );
        if self.cfg.tombstones && r.kind == RowKind::Delete && key.is_some() {
            // Same key, no value: log compaction then drops the row.
            self.push(
                topic,
                partition,
                OutRecord {
                    key,
                    value: None,
                    timestamp_ms,
                    headers: Vec::new(),
                },
                origin(),
            );
        }
        if self.cfg.transaction_markers && r.commit && r.snapshot.is_none() {
            self.end_txn(r, now)?;
        }
        Ok(())
    }

    /// Whether the change at `pos`, bound for `topic`/`partition`, is in
    /// that partition already ([`super::dedupe`]). An outage while its
    /// newest records are read is waited out like any other.
    fn there_already(
        &mut self,
        topic: usize,
        partition: usize,
        pos: &Position,
    ) -> Result<bool, PipelineError> {
        // The common case, on every row once past a restart's window.
        if self
            .tails
            .as_ref()
            .is_none_or(|t| t.passed(topic, partition as i32))
        {
            return Ok(false);
        }
        self.settle()?;
        let Some(mut tails) = self.tails.take() else {
            return Ok(false);
        };
        let name = self.topics[topic].name.clone();
        let (mut attempt, mut stop_deadline) = (0u32, None);
        let result = loop {
            match tails.holds(&mut self.client, &name, topic, partition as i32, pos) {
                Ok(there) => break Ok(there),
                Err(e) if e.is_retriable() => {
                    let what = format!("cannot read what {name}/{partition} holds already");
                    if let Err(stop) = self.wait_out(&e, &what, 0, &mut attempt, &mut stop_deadline)
                    {
                        break Err(stop);
                    }
                }
                Err(err) => {
                    break Err(PipelineError::Kafka {
                        during: format!("reading what {name}/{partition} holds already"),
                        err,
                    })
                }
            }
        };
        self.tails = Some(tails);
        if result.is_ok() {
            self.back_from_outage();
        }
        result
    }

    /// Notes a row of the current transaction, writing its BEGIN marker
    /// first when it is the transaction's first row here. Returns the
    /// transaction id and the row's total and per-table order.
    fn begin_row(&mut self, r: &RowChange, now: i64) -> Result<(String, u64, u64), PipelineError> {
        let id = r.txn_id();
        if self.txn.as_ref().is_none_or(|t| t.id != id) {
            let mut v = Vec::with_capacity(96);
            debezium::write_txn_marker(&mut v, &id, now, None);
            self.push_marker(r, &id, v)?;
            self.txn = Some(OpenTxn {
                id: id.clone(),
                tables: Vec::new(),
            });
        }
        let txn = self.txn.as_mut().expect("open transaction");
        let name = format!("{}.{}", r.table.database, r.table.table);
        let count = match txn.tables.iter_mut().find(|(t, _)| *t == name) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                txn.tables.push((name, 1));
                1
            }
        };
        // xoffset counts the transaction's rows from its start, so the
        // order survives a resume in the middle of it.
        Ok((id, r.xoffset + 1, count))
    }

    /// Writes the END marker of the transaction `r` commits.
    fn end_txn(&mut self, r: &RowChange, now: i64) -> Result<(), PipelineError> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let mut v = Vec::with_capacity(160);
        debezium::write_txn_marker(&mut v, &txn.id, now, Some((r.xoffset + 1, &txn.tables)));
        self.push_marker(r, &txn.id, v)
    }

    /// A transaction marker record, keyed `{"id":...}` like Debezium's,
    /// released with the row it accompanies.
    fn push_marker(
        &mut self,
        r: &RowChange,
        id: &str,
        value: Vec<u8>,
    ) -> Result<(), PipelineError> {
        let name = self.cfg.transaction_topic.clone();
        let mut key = Vec::with_capacity(id.len() + 10);
        key.extend_from_slice(b"{\"id\":");
        crate::format::json::write_str(&mut key, id);
        key.push(b'}');
        let origin = Origin {
            seq: r.seq,
            table: None,
            file: r.event_file.clone(),
            pos: r.event_pos,
        };
        self.push_side(&name, key, value, r.ts, origin)
    }

    /// Adds a record to a one-partition side topic (DDL, transaction
    /// markers), created on first use: one partition keeps their order.
    fn push_side(
        &mut self,
        name: &str,
        key: Vec<u8>,
        value: Vec<u8>,
        ts: u32,
        origin: Origin,
    ) -> Result<(), PipelineError> {
        let topic = self.topic(name, 1)?;
        self.push(
            topic,
            0,
            OutRecord {
                key: Some(Bytes::from(key)),
                value: Some(Bytes::from(value)),
                timestamp_ms: ts as i64 * 1000,
                headers: Vec::new(),
            },
            origin,
        );
        Ok(())
    }

    /// Encodes a DDL statement into `kafka.ddl_topic` (one partition, so
    /// statements keep their order).
    fn encode_ddl(&mut self, d: &DdlChange, now: i64) -> Result<(), PipelineError> {
        let Some(name) = self.cfg.ddl_topic.clone() else {
            return Ok(());
        };
        let (mut key, mut value) = (Vec::new(), Vec::with_capacity(256));
        self.encoder.ddl_key(&mut key, d);
        self.encoder.ddl_value(&mut value, d, now);
        let origin = Origin {
            seq: d.seq,
            table: None,
            file: d.event_file.clone(),
            pos: d.event_pos,
        };
        self.push_side(&name, key, value, d.ts, origin)
    }

    /// Sends every batch. With the idempotent producer, up to
    /// [`MAX_IN_FLIGHT`] produce requests are outstanding at once
    /// (pipelined: the broker keeps their order by sequence number), and
    /// their answers are read as room is needed or, with `wait`, before
    /// returning; without it, each answer is awaited. A failed send is
    /// retried until it succeeds, the pipeline is stopping past its timeout,
    /// or the error is one an operator must fix. Acknowledgements enter the
    /// commit log only once every batch of the flush is written, because one
    /// change can have records in several topics (its row, a tombstone, a
    /// transaction marker): none is released before all are written.
    fn flush(&mut self, wait: bool) -> Result<(), PipelineError> {
        let max = if self.idem.is_some() {
            MAX_IN_FLIGHT
        } else {
            1
        };
        let mut sent_any = false;
        for t in 0..self.topics.len() {
            for p in 0..self.topics[t].batches.len() {
                if self.topics[t].batches[p].records.is_empty() {
                    continue;
                }
                let mut batch = std::mem::take(&mut self.topics[t].batches[p]);
                // One header per batch, on its last record: the newest row
                // change the partition will hold once it is written.
                if let (Some(pos), Some(last)) = (&batch.last_pos, batch.records.last_mut()) {
                    last.headers.push((
                        super::dedupe::HEADER,
                        super::dedupe::header(&self.cfg.pipeline_name, pos),
                    ));
                }
                // Sequence numbers are taken as the batch is sent: a resend
                // carries the same ones, and the broker drops what it has.
                let seq = self.topics[t].sequences[p];
                if self.idem.is_some() {
                    self.topics[t].sequences[p] =
                        seq.wrapping_add(batch.records.len() as i32).max(0);
                }
                while self.in_flight.len() >= max {
                    self.complete_oldest()?;
                }
                self.wait_for_lease()?;
                let idem = self.idem.map(|id| (id, seq));
                let name = &self.topics[t].name;
                // A request that could not be written is sent again, in
                // order, when its turn to be answered comes.
                let sent = self
                    .client
                    .produce_send(name, p as i32, &batch.records, idem)
                    .ok();
                self.in_flight.push_back(InFlight {
                    topic: t,
                    partition: p as i32,
                    batch,
                    seq,
                    sent,
                    flush_ends: false,
                });
                sent_any = true;
            }
        }
        if let Some(last) = self.in_flight.back_mut().filter(|_| sent_any) {
            last.flush_ends = true;
        }
        // Rows found in Kafka already are there whole: released at once.
        if !self.skipped_acks.is_empty() {
            let acks = std::mem::take(&mut self.skipped_acks);
            self.shared.ack_batch(acks);
        }
        while self.in_flight.len() >= max {
            self.complete_oldest()?;
        }
        if wait {
            self.settle()?;
        }
        self.buffered_bytes = 0;
        Ok(())
    }

    /// Reads every answer outstanding.
    fn settle(&mut self) -> Result<(), PipelineError> {
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// Reads the answer to the oldest batch in flight and accounts for it.
    /// On any failure every connection is dropped (no stale answer is read
    /// later) and that batch and every later one are sent again, in order,
    /// one at a time, with their sequence numbers: what the broker stored
    /// already it drops as a duplicate.
    fn complete_oldest(&mut self) -> Result<(), PipelineError> {
        let Some(mut e) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let answer = match e.sent.take() {
            Some(sent) => self.client.produce_wait(sent),
            None => Err(KafkaError::Io {
                broker: "(not sent)".into(),
                detail: "the request could not be written".into(),
            }),
        };
        let base = match answer {
            Ok(base) => self.check_offset(e.topic, e.partition, base, e.batch.records.len())?,
            Err(err) => {
                if err.is_retriable() {
                    let what = format!(
                        "cannot send to Kafka ({}/{}, {} changes)",
                        self.topics[e.topic].name,
                        e.partition,
                        e.batch.records.len()
                    );
                    self.note_outage(&err, &what);
                }
                self.client.reset();
                let mut again: Vec<InFlight> = vec![e];
                again.extend(self.in_flight.drain(..));
                for mut r in again {
                    r.sent = None;
                    let base = self.send_with_retry(r.topic, r.partition, &r.batch, r.seq)?;
                    self.account(r, base);
                }
                return Ok(());
            }
        };
        self.back_from_outage();
        self.account(e, base);
        Ok(())
    }

    /// `base` for a batch of `n` records written to `topic`/`partition`,
    /// unless the broker hands out an offset it gave before (it lost data).
    fn check_offset(
        &mut self,
        topic: usize,
        partition: i32,
        base: i64,
        n: usize,
    ) -> Result<i64, PipelineError> {
        let last = self.topics[topic].last_offsets[partition as usize];
        if base <= last {
            return Err(PipelineError::BrokerLostData {
                topic: self.topics[topic].name.clone(),
                partition,
                had: last,
                got: base,
                resume: Box::new(self.shared.released().unwrap_or_else(|| self.start.clone())),
            });
        }
        self.topics[topic].last_offsets[partition as usize] = base + n as i64 - 1;
        Ok(base)
    }

    /// Notes an acknowledged batch (`base` -1: stored earlier, offsets
    /// unknown); at the last batch of a flush its acknowledgements go to the
    /// commit log, and its rows to the counters.
    fn account(&mut self, e: InFlight, base: i64) {
        let acc = &mut self.acked;
        acc.acks.extend(
            e.batch
                .origins
                .iter()
                .enumerate()
                .map(|(i, o)| (o.seq, if base < 0 { -1 } else { base + i as i64 })),
        );
        for (r, o) in e.batch.records.iter().zip(&e.batch.origins) {
            if let (Some(t), Some(_)) = (&o.table, &r.value) {
                acc.rows += 1;
                acc.per_table
                    .entry(Arc::as_ptr(t) as usize)
                    .or_insert_with(|| (t.clone(), 0))
                    .1 += 1;
            }
        }
        acc.bytes += e
            .batch
            .records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64)
            .sum::<u64>();
        if !e.flush_ends {
            return;
        }
        let acc = std::mem::take(&mut self.acked);
        if !acc.acks.is_empty() {
            self.shared.ack_batch(acc.acks);
            let stats = &self.shared.stats;
            stats.rows_acked.fetch_add(acc.rows, Ordering::Relaxed);
            stats.bytes_acked.fetch_add(acc.bytes, Ordering::Relaxed);
            let mut progress = self.shared.progress.lock();
            for (t, n) in acc.per_table.into_values() {
                *progress
                    .tables
                    .entry(format!("{}.{}", t.database, t.table))
                    .or_default() += n;
            }
        }
    }

    /// Sends one batch again (its first answer was not read), until it is
    /// acknowledged; returns the offset of its first record, or -1 when the
    /// broker had it already (the earlier attempt was stored).
    fn send_with_retry(
        &mut self,
        topic: usize,
        partition: i32,
        batch: &PartitionBatch,
        seq: i32,
    ) -> Result<i64, PipelineError> {
        let mut attempt = 0u32;
        let mut stop_deadline: Option<Instant> = None;
        let name = self.topics[topic].name.clone();
        loop {
            self.wait_for_lease()?;
            let idem = self.idem.map(|p| (p, seq));
            match self
                .client
                .produce_as(&name, partition, &batch.records, idem)
            {
                // A batch the broker stored before its answer was lost: it
                // is there once.
                Err(KafkaError::Broker { code: 46, .. }) if idem.is_some() => {
                    log::info!(
                        "{name}/{partition}: the broker had the batch already (its answer was lost); not stored twice"
                    );
                    self.back_from_outage();
                    return Ok(-1);
                }
                Ok(base) => {
                    let base = self.check_offset(topic, partition, base, batch.records.len())?;
                    self.back_from_outage();
                    return Ok(base);
                }
                Err(e) if e.is_fenced() => {
                    return Err(PipelineError::FencedByBroker {
                        id: self
                            .fencing
                            .as_ref()
                            .map(|t| t.id.clone())
                            .unwrap_or_default(),
                        during: format!("sending to {name}/{partition}"),
                    });
                }
                Err(KafkaError::NoTopic { topic }) => {
                    return Err(PipelineError::TopicVanished {
                        topic,
                        resume: Box::new(
                            self.shared.released().unwrap_or_else(|| self.start.clone()),
                        ),
                    });
                }
                Err(KafkaError::RecordTooLarge { topic, bytes }) => {
                    // Name the largest record's row.
                    let (i, _) = batch
                        .records
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, r)| r.value.as_ref().map_or(0, |v| v.len()))
                        .expect("non-empty batch");
                    let o = &batch.origins[i];
                    return Err(PipelineError::RecordTooLarge {
                        table: o.what(),
                        position: format!("{}:{}", o.file, o.pos),
                        bytes,
                        limit: format!("topic {topic} (max.message.bytes)"),
                    });
                }
                Err(e) if e.is_retriable() => {
                    let what = format!(
                        "cannot send to Kafka ({name}/{partition}, {} changes)",
                        batch.records.len()
                    );
                    self.wait_out(
                        &e,
                        &what,
                        batch.records.len(),
                        &mut attempt,
                        &mut stop_deadline,
                    )?;
                }
                Err(e) => {
                    return Err(PipelineError::Kafka {
                        during: format!("sending to {name}/{partition}"),
                        err: e,
                    })
                }
            }
        }
    }
}
