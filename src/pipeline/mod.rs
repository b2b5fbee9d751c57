//! The state the three threads share: the waiting queue (every sequence
//! number the reader produced, in binlog order) and the commit log (the
//! sequence numbers Kafka acknowledged).
//!
//! Why both: Kafka may acknowledge event 4 before event 3 (different
//! partitions, a retry). Only the contiguous acknowledged prefix may be
//! checkpointed, or a crash would skip event 3 for ever. The watcher pops that
//! prefix; the position of the last popped entry is the checkpoint.
//!
//! Each method takes the lock once per batch, never once per row.

pub mod dedupe;
pub mod guard;
pub mod producer;
pub mod reader;
pub mod snapshot;
pub mod watcher;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::time::Instant;

use parking_lot::Mutex;

use crate::event::Position;

/// Hashes a sequence number with one multiplication: they are distinct
/// integers, and SipHash showed in the profile of the per-row path.
#[derive(Default, Clone, Copy)]
struct SeqHasher(u64);

impl std::hash::Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type SeqMap = HashMap<u64, i64, std::hash::BuildHasherDefault<SeqHasher>>;

#[derive(Default)]
struct Inner {
    /// (seq, position, bytes the change holds in memory until released).
    waiting: VecDeque<(u64, Position, u32)>,
    /// seq → Kafka offset (-1 for position markers that produce no record).
    commit_log: SeqMap,
    released: Option<Position>,
    released_count: u64,
    /// When something was last released (or the pipeline started).
    released_at: Option<Instant>,
    /// Acknowledging the key also acknowledges the value: the last row of a
    /// published XA transaction fills the blocker that held the checkpoint
    /// before its prepare.
    links: HashMap<u64, u64>,
}

/// What the status page reports beyond the counters: written by the
/// threads at their own pace (never per row), read by the status threads.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The binlog file the reader is in.
    pub read_file: String,
    /// The last checkpoint written to the commit log, and when.
    pub written: Option<(String, Instant)>,
    /// Kafka refuses or cannot be reached: since when, and why.
    pub kafka_down: Option<(Instant, String)>,
    /// The MySQL stream is lost: since when, and why.
    pub mysql_down: Option<(Instant, String)>,
    /// The last error survived (unix seconds, text).
    pub last_error: Option<(u64, String)>,
    /// Rows Kafka acknowledged, per `database.table`.
    pub tables: BTreeMap<String, u64>,
    /// Snapshots of tables under way or done in this run, in start order.
    pub snapshots: Vec<SnapshotStatus>,
}

/// One table's snapshot, for the status page and metrics.
#[derive(Debug, Clone)]
pub struct SnapshotStatus {
    /// `database.table`.
    pub table: String,
    /// information_schema.TABLES' estimate of its rows.
    pub estimate: u64,
    /// Rows handed on (before this run included, after a resume).
    pub sent: u64,
    /// Rows of chunks superseded by the stream's newer changes.
    pub superseded: u64,
    pub started: Instant,
    /// Rows sent when this run started it (the rate counts this run's).
    pub sent_at_start: u64,
    pub finished: Option<Instant>,
}

/// Counters for logs and the final summary.
#[derive(Default)]
pub struct Stats {
    pub rows_read: AtomicU64,
    pub rows_acked: AtomicU64,
    pub bytes_acked: AtomicU64,
    pub checkpoints_written: AtomicU64,
    /// Times the reader moved to another server of `mysql.host`.
    pub failovers: AtomicU64,
}

/// The waiting queue and commit log behind one lock, plus the pipeline-wide
/// stop flag.
pub struct Shared {
    inner: Mutex<Inner>,
    stop: AtomicBool,
    pub stats: Stats,
    pub started: Instant,
    pub progress: Mutex<Progress>,
    /// Offset of the next event the reader reads, in `progress.read_file`.
    pub read_pos: AtomicU64,
    /// Server timestamp (seconds) of the newest event read.
    pub read_ts: AtomicU64,
    in_flight_bytes: AtomicU64,
    /// The server being read, as shown to operators.
    pub source: Mutex<String>,
    /// Where connections to the source go after a failover (`None`: the
    /// configured first reachable server).
    pub source_cfg: Mutex<Option<(String, u16)>>,
    /// A failure found by a thread that owns no pipeline stage (the guard):
    /// the pipeline stops, and this is its cause.
    fatal: Mutex<Option<crate::source::SourceError>>,
    /// Until when (ms since the epoch) this instance may send: its last
    /// commit-log record's time plus two heartbeats. A successor takes over
    /// only after three, so a process paused past its lease (SIGSTOP, a
    /// stall, a VM migration) sends nothing before it has proved again that
    /// the pipeline is still its own. `u64::MAX`: no lease (replay).
    lease_until_ms: AtomicU64,
    /// Bumped when the reader moves to another server: snapshot work of
    /// the old one is dropped and started again there.
    snapshot_epoch: AtomicU64,
    /// The plan as of the reader's last emitted snapshot chunk.
    snapshot_plan: Mutex<Option<std::sync::Arc<crate::event::plan::Plan>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            inner: Mutex::new(Inner::default()),
            stop: AtomicBool::new(false),
            stats: Stats::default(),
            started: Instant::now(),
            progress: Mutex::new(Progress::default()),
            read_pos: AtomicU64::new(0),
            read_ts: AtomicU64::new(0),
            in_flight_bytes: AtomicU64::new(0),
            source: Mutex::new(String::new()),
            source_cfg: Mutex::new(None),
            fatal: Mutex::new(None),
            lease_until_ms: AtomicU64::new(u64::MAX),
            snapshot_epoch: AtomicU64::new(0),
            snapshot_plan: Mutex::new(None),
        }
    }

    pub fn snapshot_epoch(&self) -> u64 {
        self.snapshot_epoch.load(Ordering::SeqCst)
    }

    /// The reader moved to another server.
    pub fn bump_snapshot_epoch(&self) {
        self.snapshot_epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn snapshot_plan(&self) -> Option<std::sync::Arc<crate::event::plan::Plan>> {
        self.snapshot_plan.lock().clone()
    }

    pub fn set_snapshot_plan(&self, p: Option<std::sync::Arc<crate::event::plan::Plan>>) {
        *self.snapshot_plan.lock() = p;
    }

    /// A table's snapshot starts (or resumes) in this run.
    pub fn snapshot_started(&self, table: &str, estimate: u64, sent: u64) {
        let mut p = self.progress.lock();
        p.snapshots
            .retain(|s| s.table != table || s.finished.is_some());
        p.snapshots.push(SnapshotStatus {
            table: table.to_string(),
            estimate,
            sent,
            superseded: 0,
            started: Instant::now(),
            sent_at_start: sent,
            finished: None,
        });
    }

    /// Rows of a table's snapshot handed on; `done` when it was the last.
    pub fn snapshot_sent(&self, table: &str, sent: u64, superseded: u64, done: bool) {
        let mut p = self.progress.lock();
        if let Some(s) = p
            .snapshots
            .iter_mut()
            .rev()
            .find(|s| s.table == table && s.finished.is_none())
        {
            s.sent += sent;
            s.superseded += superseded;
            if done {
                s.finished = Some(Instant::now());
            }
        }
    }

    /// Records an error the pipeline survives (an outage it retries), for
    /// the status page; `kafka` says which side it is on. `None` clears
    /// that side's outage.
    pub fn set_down(&self, kafka: bool, why: Option<String>) {
        let mut p = self.progress.lock();
        let slot = if kafka {
            &mut p.kafka_down
        } else {
            &mut p.mysql_down
        };
        match why {
            Some(w) => {
                if slot.is_none() {
                    *slot = Some((Instant::now(), w.clone()));
                }
                let now = crate::clock::now_secs();
                p.last_error = Some((now, w));
            }
            None => *slot = None,
        }
    }

    /// When something was last released, or the pipeline started.
    pub fn released_at(&self) -> Instant {
        self.inner.lock().released_at.unwrap_or(self.started)
    }

    /// Appends the reader's new events, in binlog order. Called before the
    /// events are sent to the producer, so an acknowledgement always finds its
    /// entry.
    pub fn push_batch<'a>(&self, items: impl IntoIterator<Item = (u64, &'a Position, u32)>) {
        let mut g = self.inner.lock();
        let mut bytes = 0u64;
        for (seq, pos, b) in items {
            g.waiting.push_back((seq, pos.clone(), b));
            bytes += b as u64;
        }
        self.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Memory held by changes read and not yet released: what the reader
    /// waits on (`pipeline.max_in_flight_bytes`).
    pub fn in_flight_bytes(&self) -> u64 {
        self.in_flight_bytes.load(Ordering::Relaxed)
    }

    /// A position that needs no Kafka record (a transaction boundary, a
    /// skipped DDL): it is released as soon as everything before it is, so an
    /// idle pipeline's checkpoint still moves forward.
    pub fn push_marker(&self, seq: u64, pos: Position) {
        let mut g = self.inner.lock();
        g.waiting.push_back((seq, pos, 0));
        g.commit_log.insert(seq, -1);
    }

    /// An entry that holds the checkpoint at `pos` until it is
    /// acknowledged explicitly (an undecided XA prepare): changes after it
    /// still flow to Kafka, but none is released before it.
    pub fn push_blocker(&self, seq: u64, pos: Position) {
        self.inner.lock().waiting.push_back((seq, pos, 0));
    }

    /// When `seq` is acknowledged, `blocker` is too.
    pub fn link_ack(&self, seq: u64, blocker: u64) {
        self.inner.lock().links.insert(seq, blocker);
    }

    /// Records that Kafka acknowledged these events.
    pub fn ack_batch(&self, acks: impl IntoIterator<Item = (u64, i64)>) {
        let mut g = self.inner.lock();
        let g = &mut *g;
        if g.links.is_empty() {
            g.commit_log.extend(acks);
            return;
        }
        for (seq, offset) in acks {
            g.commit_log.insert(seq, offset);
            if let Some(b) = g.links.remove(&seq) {
                g.commit_log.insert(b, -1);
            }
        }
    }

    /// Pops the acknowledged prefix of the waiting queue. Returns the newest
    /// released position when anything was released.
    pub fn release_prefix(&self) -> Option<Position> {
        let mut g = self.inner.lock();
        let g = &mut *g;
        let mut last = None;
        let mut n = 0;
        let mut bytes = 0u64;
        while let Some((seq, _, _)) = g.waiting.front() {
            if g.commit_log.remove(seq).is_none() {
                break;
            }
            last = g.waiting.pop_front().map(|(_, p, b)| {
                bytes += b as u64;
                p
            });
            n += 1;
        }
        self.in_flight_bytes.fetch_sub(bytes, Ordering::Relaxed);
        if let Some(p) = &last {
            g.released = Some(p.clone());
            g.released_count += n;
            g.released_at = Some(Instant::now());
        }
        last
    }

    /// Entries waiting for an acknowledgement.
    pub fn depth(&self) -> usize {
        self.inner.lock().waiting.len()
    }

    /// The newest released position, if any.
    pub fn released(&self) -> Option<Position> {
        self.inner.lock().released.clone()
    }

    /// Renews the lease: a commit-log record written at `written_ms` proves
    /// ownership until `written_ms + valid_ms`.
    pub fn renew_lease(&self, written_ms: u64, valid_ms: u64) {
        self.lease_until_ms
            .store(written_ms.saturating_add(valid_ms), Ordering::SeqCst);
    }

    /// Whether this instance may send now.
    pub fn lease_valid(&self) -> bool {
        crate::checkpoint::now_ms() < self.lease_until_ms.load(Ordering::SeqCst)
    }

    /// Stops the pipeline because of `e` (the first such cause is kept).
    pub fn fail(&self, e: crate::source::SourceError) {
        self.fatal.lock().get_or_insert(e);
        self.request_stop();
    }

    /// The cause recorded by [`Shared::fail`], if any.
    pub fn take_fatal(&self) -> Option<crate::source::SourceError> {
        self.fatal.lock().take()
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(n: u64) -> Position {
        Position::at("binlog.000001", n)
    }

    #[test]
    fn releases_only_the_contiguous_acknowledged_prefix() {
        let s = Shared::new();
        let positions: Vec<Position> = (1..=4).map(pos).collect();
        s.push_batch((1..=4).zip(positions.iter()).map(|(s, p)| (s, p, 100)));
        assert_eq!(s.in_flight_bytes(), 400);
        // Kafka acknowledges 2 and 4 first (other partitions).
        s.ack_batch([(2, 10), (4, 11)]);
        assert_eq!(
            s.release_prefix(),
            None,
            "1 is unacknowledged: nothing may be released"
        );
        s.ack_batch([(1, 12)]);
        assert_eq!(
            s.release_prefix(),
            Some(pos(2)),
            "1 and 2 go; 3 still blocks 4"
        );
        assert_eq!(s.depth(), 2);
        s.ack_batch([(3, 13)]);
        assert_eq!(s.release_prefix(), Some(pos(4)));
        assert_eq!(s.depth(), 0);
        assert_eq!(s.released(), Some(pos(4)));
        assert_eq!(s.in_flight_bytes(), 0, "released changes free their bytes");
    }

    #[test]
    fn markers_move_the_checkpoint_once_rows_before_them_are_acked() {
        let s = Shared::new();
        let p1 = pos(100);
        s.push_batch([(1, &p1, 10)]);
        s.push_marker(2, pos(200));
        assert_eq!(s.release_prefix(), None);
        s.ack_batch([(1, 0)]);
        assert_eq!(s.release_prefix(), Some(pos(200)));
        // An idle pipeline: a marker alone releases at once.
        s.push_marker(3, pos(300));
        assert_eq!(s.release_prefix(), Some(pos(300)));
    }

    #[test]
    fn a_blocker_holds_the_checkpoint_until_its_linked_change_is_acked() {
        let s = Shared::new();
        s.push_blocker(1, pos(100));
        let later = pos(200);
        s.push_batch([(2, &later, 10)]);
        s.ack_batch([(2, 5)]);
        assert_eq!(s.release_prefix(), None, "the prepare is undecided");
        // XA COMMIT: its rows come after everything read since.
        let after_commit = pos(300);
        s.link_ack(3, 1);
        s.push_batch([(3, &after_commit, 10)]);
        assert_eq!(s.release_prefix(), None);
        s.ack_batch([(3, 6)]);
        assert_eq!(s.release_prefix(), Some(pos(300)));
        assert_eq!(s.depth(), 0);
    }
}

/// Errors that stop the pipeline on the Kafka side.
#[derive(Debug)]
pub enum PipelineError {
    Kafka {
        during: String,
        err: crate::kafka::KafkaError,
    },
    RecordTooLarge {
        table: String,
        position: String,
        bytes: usize,
        limit: String,
    },
    FlushTimeout {
        unflushed: usize,
        waited: std::time::Duration,
    },
    /// The broker handed out an offset it had already acknowledged: it lost
    /// data (a restart without storage, a wiped log).
    BrokerLostData {
        topic: String,
        partition: i32,
        had: i64,
        got: i64,
        resume: Box<Position>,
    },
    /// A topic binlog2kafka wrote to is gone.
    TopicVanished {
        topic: String,
        resume: Box<Position>,
    },
    /// Another instance took this pipeline over.
    Fenced { other: String },
    /// The broker refused a write: a newer holder of the pipeline's
    /// transactional id fenced this daemon.
    FencedByBroker { id: String, during: String },
    /// Stopped while the lease was unproved: nothing was sent after it.
    LeaseLapsed,
    /// Two tables' names render to the same (or a clashing) topic.
    TopicCollision {
        first: String,
        first_topic: String,
        second: String,
        second_topic: String,
    },
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::Kafka { during, err } => write!(f, "{during}: {err}"),
            PipelineError::RecordTooLarge { table, position, bytes, limit } => write!(
                f,
                "the change to {table} at {position} makes a {bytes}-byte record, larger than {limit} accepts; raise it (kafka.max_record_bytes, and max.message.bytes on the topic), then restart: the checkpoint stays before this change"
            ),
            PipelineError::FlushTimeout { unflushed, waited } => write!(
                f,
                "stopped with {unflushed} changes not acknowledged by Kafka after {waited:?}; the checkpoint stays before them and they are sent again on restart"
            ),
            PipelineError::BrokerLostData { topic, partition, had, got, resume } => write!(
                f,
                "Kafka lost acknowledged data: {topic}/{partition} gave offset {got} after {had} was acknowledged (broker restarted without its storage?). Stopped; to send everything again from the last checkpoint, restart with start.position={}:{} and a new pipeline.name",
                resume.file, resume.pos
            ),
            PipelineError::TopicVanished { topic, resume } => write!(
                f,
                "topic {topic} disappeared from Kafka while binlog2kafka was writing to it (broker restarted without its storage?). Stopped; to send everything again from the last checkpoint, restart with start.position={}:{} and a new pipeline.name",
                resume.file, resume.pos
            ),
            PipelineError::Fenced { other } => write!(
                f,
                "fenced: another binlog2kafka ({other}) has taken over this pipeline.name; stopping so that only one writes"
            ),
            PipelineError::TopicCollision { first, first_topic, second, second_topic } => write!(
                f,
                "kafka.topic renders {first} as {first_topic} and {second} as {second_topic}: {}; stopped before the first row of {second}, the checkpoint stays before it. Route the tables apart (a kafka.topic template that keeps their names distinct, or filter.exclude one of them)",
                if first_topic == second_topic {
                    "the same topic, and their rows would mix"
                } else {
                    "topics that differ only by '.' against '_', which Kafka refuses side by side"
                }
            ),
            PipelineError::FencedByBroker { id, during } => write!(
                f,
                "fenced: the broker refused this daemon's write ({during}) because another binlog2kafka took over this pipeline.name (transactional id {id}); stopping, nothing more is written"
            ),
            PipelineError::LeaseLapsed => write!(
                f,
                "stopped while this daemon's hold on the pipeline could not be renewed (paused past its lease, or the commit-log topic unreachable); nothing was sent after it lapsed"
            ),
        }
    }
}

impl std::error::Error for PipelineError {}
