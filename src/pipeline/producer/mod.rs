//! The producer thread: encodes row changes as JSON, groups them into
//! per-partition batches, and sends them on a 100 ms tick (or earlier when a
//! batch is full). An acknowledged batch goes into the commit log.
//!
//! A failed send is retried, in order, with back-off: an event is never
//! dropped and never overtaken by a later one for the same partition, because
//! nothing else is sent until the failed batch succeeds.

mod encode;
pub mod route;
mod send;
use crate::pipeline::handle::{Exit, Handle};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{select, tick, Receiver};

use super::{PipelineError, Shared};
use crate::event::{Change, DdlChange, Position, RowChange, RowImage, RowKind, TableSchema};
use crate::format::{debezium, maxwell, Context, Encoder, Format, TxnOrder};
use crate::kafka::{murmur2, Client, KafkaError, OutRecord, Transactional};
use route::{KeyFormat, PartitionBy};

/// What the producer is told: where rows go and how they are framed
/// (`kafka.*` and `output.*`, built by the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub pipeline_name: String,
    pub format: Format,
    pub style: crate::format::value::Style,
    /// `kafka.topic`: a name, or a template with `{database}`/`{table}`.
    pub topic: String,
    pub topic_partitions: i32,
    pub replication_factor: i16,
    /// `kafka.ddl_topic`; `None` when DDL is not published.
    pub ddl_topic: Option<String>,
    pub transaction_topic: String,
    pub transaction_markers: bool,
    pub tombstones: bool,
    pub partition_by: PartitionBy,
    pub key_format: KeyFormat,
    pub max_record_bytes: usize,
    pub batch_max_bytes: usize,
    pub shutdown_timeout: Duration,
    /// `output.encoding=avro`: keys and values in Avro through the schema
    /// registry ([`super::avro_out`]).
    pub avro: Option<super::avro_out::Settings>,
}

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
    cfg: Settings,
    shared: Arc<Shared>,
    pending: Receiver<Vec<Change>>,
    client: Client,
    start: Position,
    fencing: Option<Transactional>,
    exit: Exit,
) -> Handle<Result<(), PipelineError>> {
    crate::pipeline::handle::spawn("b2k-producer", exit, move || {
        let mut p = Producer {
            start,
            encoder: Encoder::new(cfg.format, cfg.style, &cfg.pipeline_name),
            avro: cfg.avro.clone().map(super::avro_out::AvroOut::new),
            templated: cfg.topic.contains('{'),
            fixed_topic: None,
            cfg,
            shared: shared.clone(),
            client,
            topics: Vec::new(),
            topic_index: HashMap::new(),
            by_schema: Default::default(),
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
            random: crate::clock::now_nanos().max(1),
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
            shared.stop.request();
        }
        result
    })
}

struct Producer {
    /// Where this run started: the resume point to name if Kafka loses data
    /// before anything is released.
    start: Position,
    cfg: Settings,
    encoder: Encoder,
    avro: Option<super::avro_out::AvroOut>,
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
    by_schema: crate::pipeline::intmap::IntMap<usize, (Arc<TableSchema>, usize)>,
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
    /// The request, or why it could not be written (it is sent again);
    /// `None` once its answer was taken.
    sent: Option<Result<crate::kafka::Sent, KafkaError>>,
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
    per_table: crate::pipeline::intmap::IntMap<usize, (Arc<TableSchema>, u64)>,
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
    crate::clock::now_ms() as i64
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
}
