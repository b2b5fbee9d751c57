//! The board: what the status page, the metrics and the logs read of the
//! running pipeline. The threads write it at their own pace (never per row,
//! except the two atomics of the read position); nothing on it drives
//! control.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use parking_lot::Mutex;

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
    /// Since when the schema registry could not be reached, and why
    /// (`output.encoding=avro`).
    pub registry_down: Option<(Instant, String)>,
    /// The last error survived (unix seconds, text).
    pub last_error: Option<(u64, String)>,
    /// The schema history: tables tracked, definitions changed since the
    /// capture, and the last DDL applied.
    pub schema: Option<SchemaStatus>,
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

/// The schema history, for the status page and metrics.
#[derive(Debug, Clone, Default)]
pub struct SchemaStatus {
    pub tables: usize,
    pub versions: u64,
    pub last_ddl: Option<String>,
}

pub struct Board {
    pub stats: Stats,
    pub started: Instant,
    pub progress: Mutex<Progress>,
    /// Offset of the next event the reader reads, in `progress.read_file`.
    pub read_pos: AtomicU64,
    /// Server timestamp (seconds) of the newest event read.
    pub read_ts: AtomicU64,
    /// The server being read, as shown to operators.
    pub source: Mutex<String>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            stats: Stats::default(),
            started: Instant::now(),
            progress: Mutex::new(Progress::default()),
            read_pos: AtomicU64::new(0),
            read_ts: AtomicU64::new(0),
            source: Mutex::new(String::new()),
        }
    }
}

impl Board {
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
}
