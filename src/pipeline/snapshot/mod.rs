//! The snapshot thread (`b2k-snapshot`): reads the rows that already exist,
//! table by table, in key-ordered chunks on a connection of its own, with no
//! lock on the server, while the reader keeps streaming. It hands each chunk
//! to the reader, which emits its surviving rows in stream order
//! ([`seam`] has the correctness argument).
//!
//! It also takes snapshot requests (`binlog2kafka snapshot`) from the
//! commit-log topic, where they are written under keys of their own
//! ([`request_key`]), and acknowledges each one it takes.
//!
//! Memory stays bounded: at most one chunk waits in the channel, one in
//! the reader, and one is being read; a chunk holds at most
//! `snapshot.chunk_rows` rows and about a quarter of
//! `pipeline.max_in_flight_bytes`, and the reader's in-flight limit holds
//! snapshot rows like any others.

mod read;
mod request_scan;
mod requests;

use read::render_condition;
pub use request_scan::RequestScan;
pub use requests::{ack_key, pending_requests, request_key, Ack, Request};

use crate::pipeline::handle::{Exit, Handle};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use crate::event::TableSchema;
use crate::kafka::{Client, OutRecord};
use crate::pipeline::reader::Settings;
use crate::pipeline::Shared;

pub use crate::source::snapshot::initial_plan;
use crate::source::snapshot::plan::{KeyValue, Plan, Reason, TablePlan};
use crate::source::snapshot::seam::{self, key_of, Chunk, Horizon, Streamed, ToReader};
use crate::source::snapshot::{condition, encode};

use crate::source::schema::{from_catalog, CatalogTable};
use crate::source::{classify, SourceError};

/// Starts the snapshot thread with the plan the pipeline resumed with.
pub fn spawn(
    cfg: Settings,
    shared: Arc<Shared>,
    to_reader: Sender<ToReader>,
    plan: Plan,
    kafka: Client,
    owner: String,
    exit: Exit,
) -> Handle<Result<(), SourceError>> {
    crate::pipeline::handle::spawn("b2k-snapshot", exit, move || {
        let mut s = Snapshotter {
            cfg,
            shared: shared.clone(),
            to_reader,
            plan,
            kafka,
            owner,
            conn: None,
            epoch: shared.reading.snapshot_epoch(),
            watching: None,
            floor: None,
            table: None,
            row_bytes: 0,
            polled_at: None,
            plan_sent_at: Instant::now(),
            requests_sent_from: 0,
        };
        s.requests_sent_from = s.plan.requests_from;
        match s.run() {
            Err(e) if !shared.stop.requested() => {
                // The pipeline stops with this as its one error line.
                shared.stop.fail(e);
                Err(SourceError::Query {
                    what: "the snapshot".into(),
                    detail: "stopped the pipeline".into(),
                })
            }
            r => r,
        }
    })
}

struct Snapshotter {
    cfg: Settings,
    shared: Arc<Shared>,
    to_reader: Sender<ToReader>,
    /// The plan as of the last chunk handed to the reader.
    plan: Plan,
    kafka: Client,
    owner: String,
    conn: Option<Conn>,
    /// The reader's epoch this thread works in (changed by a failover).
    epoch: u64,
    /// The table the reader records keys for.
    watching: Option<String>,
    /// Where the stream was when the reader last answered a `Watch` or
    /// `Pause`: every view from then on must have seen what lies before it
    /// ([`Horizon::covers`]).
    floor: Option<seam::Floor>,
    /// What is known of the table being read.
    table: Option<Reading>,
    /// Bytes per row seen in the last chunk (sizes the next one).
    row_bytes: usize,
    polled_at: Option<Instant>,
    plan_sent_at: Instant,
    requests_sent_from: i64,
}

struct Reading {
    name: String,
    schema: Arc<TableSchema>,
    key: Option<Vec<usize>>,
    select: String,
    order: String,
    /// The `--where` condition as rendered by [`condition`], with the
    /// bytes of its strings as parameters.
    condition: Option<(String, Vec<Value>)>,
}

impl Snapshotter {
    fn run(&mut self) -> Result<(), SourceError> {
        while !self.shared.stop.requested() {
            if self.shared.reading.snapshot_epoch() != self.epoch {
                // The reader moved to another server, or a TRUNCATE or
                // RENAME changed the plan (the reader logged which): start
                // again from the plan as the stream last emitted it.
                self.epoch = self.shared.reading.snapshot_epoch();
                if let Some(p) = self.shared.reading.snapshot_plan() {
                    self.plan = (*p).clone();
                }
                self.conn = None;
                self.watching = None;
                self.floor = None;
                self.table = None;
                if !self.plan.is_idle() {
                    log::info!(
                        "snapshot: carrying on from the plan the stream holds ({} tables to read, the first from {})",
                        self.plan.tables.len(),
                        if self.plan.tables[0].after.is_some() { "after its last chunk sent" } else { "its start" }
                    );
                }
            }
            if self
                .polled_at
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
            {
                self.polled_at = Some(Instant::now());
                if let Err(e) = self.poll_requests() {
                    log::warn!(
                        "snapshot: cannot read snapshot requests from {}: {e}; trying again",
                        self.cfg.commit_topic
                    );
                }
            }
            if self.plan.is_idle() {
                // Nothing to read until the next look for requests (a
                // change of plan is seen then too): one wake a second, not
                // ten, for each of a fleet host's idle pipelines.
                let polled = self.polled_at.map_or(Duration::ZERO, |t| t.elapsed());
                self.sleep(
                    Duration::from_secs(1)
                        .saturating_sub(polled)
                        .max(Duration::from_millis(100)),
                );
                continue;
            }
            match self.step() {
                Ok(()) => {}
                Err(e) if e.is_retriable() => {
                    log::warn!("snapshot: {e}; reconnecting");
                    self.conn = None;
                    self.table = None;
                    self.sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The server the reader reads now (it follows a failover).
    fn target(&self) -> crate::source::Target {
        let first = crate::source::Target::first(self.cfg.source.clone());
        match self.shared.reading.server() {
            Some((h, p)) => first.at(&h, p),
            None => first,
        }
    }

    fn sleep(&self, d: Duration) {
        self.shared.stop.wait(d);
    }

    /// Sends `msg` to the reader; false when the pipeline stops first.
    fn send(&self, mut msg: ToReader) -> bool {
        loop {
            match self.to_reader.send_timeout(msg, Duration::from_millis(100)) {
                Ok(()) => return true,
                Err(crossbeam_channel::SendTimeoutError::Timeout(m)) => {
                    if self.stale() {
                        return false;
                    }
                    msg = m;
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the reader's reply; `None` when the pipeline stops or the
    /// reader's epoch moves on first.
    fn wait<T>(&self, reply: &crossbeam_channel::Receiver<T>) -> Option<T> {
        loop {
            match reply.recv_timeout(Duration::from_millis(100)) {
                Ok(t) => return Some(t),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.stale() {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Whether the pipeline stops or the reader's epoch moved on: what
    /// this thread does now would be dropped.
    fn stale(&self) -> bool {
        self.shared.stop.requested() || self.shared.reading.snapshot_epoch() != self.epoch
    }

    fn conn(&mut self) -> Result<&mut Conn, SourceError> {
        if self.conn.is_none() {
            let cfg = self.target();
            let mut c = crate::source::connect(&cfg)?;
            // Raw bytes out and in (key parameters are compared in the
            // column's own collation), TIMESTAMPs in UTC, a read view per
            // transaction.
            for q in [
                "SET NAMES binary",
                "SET SESSION time_zone = '+00:00'",
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            ] {
                c.query_drop(q).map_err(|e| classify(&cfg, q, e))?;
            }
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// One step of the first table of the plan: open it, or read a chunk.
    fn step(&mut self) -> Result<(), SourceError> {
        let current = self.plan.tables[0].clone();
        let name = current.name();
        if self.table.as_ref().is_none_or(|t| t.name != name) {
            let cfg = self.target();
            let catalog = from_catalog(self.conn()?, &cfg, &current.database, &current.table)?;
            let Some(cat) = catalog else {
                return self.table_gone(&name);
            };
            if let Err(why) = self.open_table(&current, cat, false) {
                self.fail_request(&current, &why)?;
                return Ok(());
            }
        }
        // A table altered since it was opened: read its new definition, and
        // go on after the same key.
        if self.table.as_ref().is_some_and(|t| t.key.is_some()) && self.altered(&current)? {
            log::info!(
                "snapshot of {name}: the table's columns changed while it was read; the chunks from here on follow its new definition"
            );
            let cfg = self.target();
            match from_catalog(self.conn()?, &cfg, &current.database, &current.table)? {
                Some(cat) => {
                    if let Err(why) = self.open_table(&current, cat, true) {
                        self.fail_request(&current, &why)?;
                        return Ok(());
                    }
                }
                None => return self.table_gone(&name),
            }
        }
        let keyed = self.table.as_ref().is_some_and(|t| t.key.is_some());
        if keyed && self.watching.as_deref() != Some(&name) {
            let t = self.table.as_ref().expect("open");
            let key_columns = t
                .key
                .as_ref()
                .expect("keyed")
                .iter()
                .map(|&i| t.schema.columns[i].name.clone())
                .collect();
            let (reply, rx) = crossbeam_channel::bounded(1);
            let msg = ToReader::Watch {
                epoch: self.epoch,
                schema: t.schema.clone(),
                key_columns,
                first: !current.started,
                reply,
            };
            if !self.send(msg) {
                return Ok(());
            }
            let Some(floor) = self.wait(&rx) else {
                return Ok(());
            };
            self.floor = Some(floor);
            self.watching = Some(name.clone());
        }
        if keyed {
            self.chunk(&current)
        } else {
            self.whole(&current)
        }
    }

    /// The plan once the first table is done.
    fn finish_table_unread(&mut self) {
        let mut next = self.plan.clone();
        next.tables.remove(0);
        self.install(next);
        self.table = None;
    }

    /// The first table of the plan is not on the server (any more). Renamed
    /// or dropped, only the stream can tell: the plan without it is taken
    /// when the stream reaches the binlog point of now, unless a RENAME on
    /// the way (which the reader follows) takes over first.
    fn table_gone(&mut self, name: &str) -> Result<(), SourceError> {
        let cfg = self.target();
        let (file, pos) = crate::source::head_position(self.conn()?, &cfg)?;
        let mut next = self.plan.clone();
        next.tables.remove(0);
        self.table = None;
        self.watching = None;
        if self.install_at(next, Some(Horizon::At { file, pos })) {
            log::warn!(
                "snapshot: table {name} no longer exists (dropped); the rest of it is skipped"
            );
        }
        Ok(())
    }

    /// Gives the reader a new plan now (no rows with it).
    fn install(&mut self, plan: Plan) {
        self.install_at(plan, None);
    }

    /// Gives the reader a new plan, to take at `after` (or at once); true
    /// when it took it.
    fn install_at(&mut self, plan: Plan, after: Option<Horizon>) -> bool {
        let (reply, rx) = crossbeam_channel::bounded(1);
        let arc = Arc::new(plan.clone());
        if self.send(ToReader::Plan {
            epoch: self.epoch,
            plan: arc,
            after,
            reply,
        }) && self.wait(&rx).is_some()
        {
            self.plan = plan;
            return true;
        }
        false
    }
}
