//! The producer thread: encodes row changes as JSON, groups them into
//! per-partition batches, and sends them on a 100 ms tick (or earlier when a
//! batch is full). An acknowledged batch goes into the commit log.
//!
//! A failed send is retried, in order, with back-off: an event is never
//! dropped and never overtaken by a later one for the same partition, because
//! nothing else is sent until the failed batch succeeds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{select, tick, Receiver};

use super::{PipelineError, Shared};
use crate::config::{Config, KeyFormat, PartitionBy};
use crate::event::{Position, RowChange, TableSchema};
use crate::format::maxwell;
use crate::kafka::{murmur2, Client, KafkaError, OutRecord};

/// The batching interval fixed by the design.
pub const TICK: Duration = Duration::from_millis(100);

/// A record's framing in a RecordBatch v2 beyond its key and value (varint
/// lengths, deltas, attributes), counted against `kafka.max_record_bytes`.
const RECORD_OVERHEAD: usize = 24;

/// Where an encoded record came from, for acknowledgements and error
/// messages.
struct Origin {
    seq: u64,
    table: Arc<TableSchema>,
    file: Arc<str>,
    pos: u64,
}

#[derive(Default)]
struct PartitionBatch {
    records: Vec<OutRecord>,
    origins: Vec<Origin>,
}

pub fn spawn(
    cfg: Config,
    shared: Arc<Shared>,
    pending: Receiver<Vec<RowChange>>,
    client: Client,
    partitions: usize,
    start: Position,
) -> JoinHandle<Result<(), PipelineError>> {
    thread::Builder::new()
        .name("b2k-producer".into())
        .spawn(move || {
            let mut p = Producer {
                start,
                cfg,
                shared: shared.clone(),
                client,
                batches: (0..partitions.max(1))
                    .map(|_| PartitionBatch::default())
                    .collect(),
                last_offsets: vec![-1; partitions.max(1)],
                buffered_bytes: 0,
                outage_since: None,
                random: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
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
    shared: Arc<Shared>,
    client: Client,
    batches: Vec<PartitionBatch>,
    /// Newest acknowledged offset per partition: a later acknowledgement
    /// at or below it means the broker lost data.
    last_offsets: Vec<i64>,
    buffered_bytes: usize,
    outage_since: Option<Instant>,
    /// State of the generator behind partition_by=random.
    random: u64,
}

impl Producer {
    fn run(&mut self, pending: Receiver<Vec<RowChange>>) -> Result<(), PipelineError> {
        let ticker = tick(TICK);
        loop {
            select! {
                recv(pending) -> msg => match msg {
                    Ok(rows) => {
                        for r in &rows {
                            self.encode(r)?;
                        }
                        if self.buffered_bytes >= self.cfg.batch_max_bytes {
                            self.flush()?;
                        }
                    }
                    // The reader has finished: send what is left and stop.
                    Err(_) => return self.flush(),
                },
                recv(ticker) -> _ => self.flush()?,
            }
        }
    }

    /// Encodes one change into its partition's batch. A change too large to
    /// send stops the pipeline, after everything before it was sent, so the
    /// checkpoint ends right before it.
    fn encode(&mut self, r: &RowChange) -> Result<(), PipelineError> {
        let style = &self.cfg.style;
        // The Maxwell key (database, table, primary key) also picks the
        // partition under partition_by=primary_key, whatever the key format.
        let mut maxwell_key = Vec::with_capacity(64);
        maxwell::write_key_json(&mut maxwell_key, r, style);
        let mut value = Vec::with_capacity(256);
        maxwell::write_value_json(&mut value, r, style);
        let n = self.batches.len();
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
        };
        let key = match self.cfg.key_format {
            KeyFormat::Maxwell => Some(maxwell_key),
            KeyFormat::Debezium => {
                let mut k = Vec::with_capacity(32);
                maxwell::write_pk_json(&mut k, r, style);
                Some(k)
            }
            KeyFormat::None => None,
        };
        let key_len = key.as_ref().map_or(0, |k| k.len());
        let size = key_len + value.len() + RECORD_OVERHEAD;
        if size > self.cfg.max_record_bytes {
            self.flush()?;
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
        self.buffered_bytes += key_len + value.len();
        let b = &mut self.batches[partition as usize];
        b.records.push(OutRecord {
            key: key.map(Bytes::from),
            value: Some(Bytes::from(value)),
            timestamp_ms: r.ts as i64 * 1000,
        });
        b.origins.push(Origin {
            seq: r.seq,
            table: r.table.clone(),
            file: r.event_file.clone(),
            pos: r.event_pos,
        });
        Ok(())
    }

    /// Sends every non-empty partition batch, retrying each until it is
    /// acknowledged or the error is one an operator must fix.
    fn flush(&mut self) -> Result<(), PipelineError> {
        for p in 0..self.batches.len() {
            if self.batches[p].records.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.batches[p]);
            self.send_with_retry(p as i32, &batch)?;
            let bytes: usize = batch
                .records
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                .sum();
            self.shared
                .stats
                .rows_acked
                .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
            self.shared
                .stats
                .bytes_acked
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
        self.buffered_bytes = 0;
        Ok(())
    }

    fn send_with_retry(
        &mut self,
        partition: i32,
        batch: &PartitionBatch,
    ) -> Result<(), PipelineError> {
        let mut attempt = 0u32;
        let mut stop_deadline: Option<Instant> = None;
        loop {
            match self
                .client
                .produce(&self.cfg.topic, partition, &batch.records)
            {
                Ok(base) => {
                    let last = self.last_offsets[partition as usize];
                    if base <= last {
                        return Err(PipelineError::BrokerLostData {
                            topic: self.cfg.topic.clone(),
                            partition,
                            had: last,
                            got: base,
                            resume: self.shared.released().unwrap_or_else(|| self.start.clone()),
                        });
                    }
                    self.last_offsets[partition as usize] = base + batch.records.len() as i64 - 1;
                    self.shared.ack_batch(
                        batch
                            .origins
                            .iter()
                            .enumerate()
                            .map(|(i, o)| (o.seq, base + i as i64)),
                    );
                    if let Some(since) = self.outage_since.take() {
                        log::info!(
                            "Kafka is back after {:.1}s; sending resumed",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(());
                }
                Err(KafkaError::NoTopic { topic }) => {
                    return Err(PipelineError::TopicVanished {
                        topic,
                        resume: self.shared.released().unwrap_or_else(|| self.start.clone()),
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
                        table: format!("{}.{}", o.table.database, o.table.table),
                        position: format!("{}:{}", o.file, o.pos),
                        bytes,
                        limit: format!("topic {topic} (max.message.bytes)"),
                    });
                }
                Err(e) if e.is_retriable() => {
                    if self.outage_since.is_none() {
                        self.outage_since = Some(Instant::now());
                        log::warn!(
                            "cannot send to Kafka ({e}); holding {} changes and retrying with back-off",
                            batch.records.len()
                        );
                    } else {
                        log::debug!("Kafka still failing: {e}");
                    }
                    if self.shared.stopping() {
                        let deadline = *stop_deadline
                            .get_or_insert_with(|| Instant::now() + self.cfg.shutdown_timeout);
                        if Instant::now() >= deadline {
                            return Err(PipelineError::FlushTimeout {
                                unflushed: batch.records.len()
                                    + self.batches.iter().map(|b| b.records.len()).sum::<usize>(),
                                waited: self.cfg.shutdown_timeout,
                            });
                        }
                    }
                    let wait =
                        Duration::from_millis(100u64 << attempt.min(6)).min(Duration::from_secs(5));
                    attempt += 1;
                    thread::sleep(wait);
                }
                Err(e) => {
                    return Err(PipelineError::Kafka {
                        during: format!("sending to {}/{partition}", self.cfg.topic),
                        err: e,
                    })
                }
            }
        }
    }
}
