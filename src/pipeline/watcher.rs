//! The watcher thread: pops the acknowledged prefix of the waiting queue and
//! writes the newest released position to the commit-log topic, coalesced
//! (the newest position per interval, not one record per row).
//!
//! With nothing new it still rewrites the checkpoint every heartbeat
//! interval: that proves the daemon alive and renews its lease on the
//! pipeline. At each heartbeat it also checks that the newest record is its
//! own; if another instance took the pipeline over (this one was paused past
//! its lease), it stops instead of writing over the other's checkpoints.
//!
//! It owns its own Kafka connection, so a slow checkpoint write never
//! delays produce requests.

use crate::pipeline::handle::{Exit, Handle};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use super::{PipelineError, Shared};
use crate::checkpoint::{self, Record};
use crate::event::Position;
use crate::kafka::{Client, KafkaError};
use crate::pipeline::schema_store::Pruner;

/// How often the acknowledged prefix is released while changes wait.
const PASS: Duration = Duration::from_millis(50);

/// The longest sleep with an empty queue: the ledger wakes the watcher
/// when changes arrive, so this only bounds how late a heartbeat is.
const IDLE: Duration = Duration::from_millis(500);

pub struct WatcherOutcome {
    /// The last checkpoint written, if any was.
    pub last_written: Option<Position>,
}

/// What the watcher starts from.
pub struct WatcherStart {
    /// The checkpoint the pipeline resumed from (already in the topic).
    pub position: Position,
    /// This instance's name in checkpoint records.
    pub owner: String,
    /// Offset of the newest checkpoint record in the commit-log topic.
    pub last_offset: i64,
    /// How checkpoints are written (fenced by the broker, where it can).
    pub writer: checkpoint::Writer,
    /// The pipeline's transactional id, when the broker fences.
    pub fencing_id: Option<String>,
    /// Deletes the schema versions checkpoints have passed.
    pub pruner: Option<Pruner>,
}

/// What the watcher is told: where checkpoints go and how often.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pipeline_name: String,
    pub commit_topic: String,
    /// `pipeline.checkpoint_interval_ms`.
    pub checkpoint_interval: Duration,
    /// `pipeline.heartbeat_interval_ms`: a record at least this often, which
    /// renews the lease.
    pub heartbeat_interval: Duration,
    pub shutdown_timeout: Duration,
}

/// Starts `b2k-watcher`. It runs until `finish` is closed (the reader and
/// producer have ended), then releases what it can, writes a final
/// checkpoint marked released, and returns.
pub fn spawn(
    cfg: Settings,
    shared: Arc<Shared>,
    client: Client,
    start: WatcherStart,
    finish: Receiver<()>,
    exit: Exit,
) -> Handle<Result<WatcherOutcome, PipelineError>> {
    crate::pipeline::handle::spawn("b2k-watcher", exit, move || {
        let mut w = Watcher {
            cfg,
            shared: shared.clone(),
            client,
            released: start.position.clone(),
            written: start.position,
            owner: start.owner,
            last_offset: start.last_offset,
            writer: start.writer,
            fencing_id: start.fencing_id,
            pruner: start.pruner,
            prune_failing: false,
            last_write: Instant::now(),
            last_owner_check: Instant::now(),
            failing_since: None,
            unproved_since: None,
        };
        let result = w.run(finish);
        if result.is_err() {
            shared.stop.request();
        }
        result
    })
}

struct Watcher {
    cfg: Settings,
    shared: Arc<Shared>,
    client: Client,
    released: Position,
    written: Position,
    owner: String,
    last_offset: i64,
    writer: checkpoint::Writer,
    fencing_id: Option<String>,
    pruner: Option<Pruner>,
    /// A deletion of passed schema versions failed (said once).
    prune_failing: bool,
    last_write: Instant,
    /// Ownership is checked every heartbeat interval, whatever the load
    /// (checkpoint writes alone would hide a takeover).
    last_owner_check: Instant,
    failing_since: Option<Instant>,
    /// Since when (last said) ownership could not be proved.
    unproved_since: Option<Instant>,
}

impl Watcher {
    fn run(&mut self, finish: Receiver<()>) -> Result<WatcherOutcome, PipelineError> {
        let mut next_pass = Instant::now() + PASS;
        loop {
            // Passes every 50 ms while changes wait; with none, a sleep
            // until changes arrive or a heartbeat is near.
            let idle = self.shared.ledger.depth() == 0 && self.released == self.written;
            // Never past the next heartbeat (a late one would let the lease
            // lapse: it lasts two), and not sooner than a pass, as the
            // 50 ms tick was (a failing write is not retried in a spin).
            let now = Instant::now();
            let wake = if idle {
                (now + IDLE)
                    .min(self.last_write + self.cfg.heartbeat_interval)
                    .min(self.last_owner_check + self.cfg.heartbeat_interval)
                    .max(now + PASS)
            } else {
                next_pass
            };
            select! {
                // Changes arrived: the next pass is due (after a sleep, at once).
                recv(self.shared.ledger.work()) -> _ => {}
                recv(crossbeam_channel::at(wake)) -> _ => {
                    next_pass = Instant::now().max(next_pass) + PASS;
                    self.pass();
                    // After a lapse (this process was paused, or Kafka was
                    // away) nothing is written before ownership is proved.
                    let lapsed = !self.shared.lease.valid();
                    if lapsed || self.last_owner_check.elapsed() >= self.cfg.heartbeat_interval {
                        if !self.check_still_owner()? {
                            continue;
                        }
                        self.last_owner_check = Instant::now();
                    }
                    let since = self.last_write.elapsed();
                    if lapsed || since >= self.cfg.heartbeat_interval {
                        self.write(false, true)?;
                    } else if since >= self.cfg.checkpoint_interval && self.released != self.written {
                        self.write(false, false)?;
                    }
                }
                recv(finish) -> _ => {
                    self.pass();
                    self.write(true, true)?;
                    return Ok(WatcherOutcome { last_written: Some(self.written.clone()) });
                }
            }
        }
    }

    fn pass(&mut self) {
        if let Some(p) = self.shared.ledger.release_prefix() {
            self.released = p;
        }
    }

    /// Stops when another instance's record is newer than ours. `Ok(false)`
    /// when the commit log cannot be read now (a Kafka problem the writes
    /// report): ownership is not proved.
    fn check_still_owner(&mut self) -> Result<bool, PipelineError> {
        match checkpoint::read_latest(
            &mut self.client,
            &self.cfg.commit_topic,
            &self.cfg.pipeline_name,
        ) {
            Ok(Some(rec)) if rec.owner != self.owner => {
                Err(PipelineError::Fenced { other: rec.owner })
            }
            Ok(_) => {
                if self.unproved_since.take().is_some() {
                    log::info!(
                        "the commit-log topic can be read again: ownership proved, sends resume"
                    );
                    self.shared.board.set_down(true, None);
                }
                Ok(true)
            }
            Err(e) => {
                // Said once, then every minute: while it lasts, sends are held.
                let now = Instant::now();
                if self
                    .unproved_since
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                {
                    self.unproved_since = Some(now);
                    log::warn!(
                        "cannot read the commit-log topic {} to prove this daemon still owns the pipeline ({e}); sends are held until it can",
                        self.cfg.commit_topic
                    );
                    self.shared
                        .board
                        .set_down(true, Some(format!("cannot read the commit-log topic: {e}")));
                }
                Ok(false)
            }
        }
    }

    /// Writes the newest released position (with `force`, even if it did not
    /// move: a heartbeat). A transient failure is retried on the next pass
    /// (the position only moves forward, so nothing is lost by waiting); the
    /// final write is retried until the shutdown timeout.
    fn write(&mut self, last: bool, force: bool) -> Result<(), PipelineError> {
        self.last_write = Instant::now();
        let p = self.released.clone();
        if !force && self.written == p {
            return Ok(());
        }
        let mut rec = Record::new(&self.cfg.pipeline_name, &p, &self.owner);
        rec.released = last;
        let deadline = Instant::now() + self.cfg.shutdown_timeout;
        loop {
            match self
                .writer
                .write(&mut self.client, &self.cfg.commit_topic, &rec)
            {
                Ok(offset) => {
                    if offset <= self.last_offset {
                        return Err(PipelineError::BrokerLostData {
                            topic: self.cfg.commit_topic.clone(),
                            partition: 0,
                            had: self.last_offset,
                            got: offset,
                            resume: Box::new(self.written.clone()),
                        });
                    }
                    self.last_offset = offset;
                    self.shared.lease.renew(
                        rec.ts_ms,
                        2 * self.cfg.heartbeat_interval.as_millis() as u64,
                    );
                    if self.failing_since.take().is_some() {
                        log::info!("checkpoint writes work again; checkpoint at {p}");
                        self.shared.board.set_down(true, None);
                    }
                    self.shared.board.progress.lock().written =
                        Some((p.to_string(), Instant::now()));
                    log::debug!("checkpoint {p}");
                    self.shared
                        .board
                        .stats
                        .checkpoints_written
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.prune(p.schema);
                    self.written = p;
                    return Ok(());
                }
                Err(e) if e.is_fenced() => {
                    return Err(PipelineError::FencedByBroker {
                        id: self.fencing_id.clone().unwrap_or_default(),
                        during: format!("writing a checkpoint to {}", self.cfg.commit_topic),
                    })
                }
                Err(KafkaError::NoTopic { topic }) => {
                    return Err(PipelineError::TopicVanished {
                        topic,
                        resume: Box::new(self.written.clone()),
                    })
                }
                Err(e) if e.is_retriable() => {
                    if self.failing_since.is_none() {
                        self.failing_since = Some(Instant::now());
                        log::warn!("cannot write checkpoint ({e}); will retry");
                        self.shared
                            .board
                            .set_down(true, Some(format!("cannot write checkpoint: {e}")));
                    }
                    if !last {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(PipelineError::Kafka {
                            during: format!(
                                "writing the final checkpoint ({p}) to {}",
                                self.cfg.commit_topic
                            ),
                            err: e,
                        });
                    }
                    thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(PipelineError::Kafka {
                        during: format!("writing a checkpoint to {}", self.cfg.commit_topic),
                        err: e,
                    })
                }
            }
        }
    }

    /// After a checkpoint at schema version `version` is written: the
    /// versions it has passed are deleted. A failure costs only space, and
    /// the next checkpoint tries again.
    fn prune(&mut self, version: u64) {
        let Some(p) = self.pruner.as_mut() else {
            return;
        };
        match p.prune(&mut self.client, version) {
            Ok(_) if self.prune_failing => {
                self.prune_failing = false;
                log::info!("schema history: passed versions are deleted again");
            }
            Ok(_) => {}
            Err(e) if !self.prune_failing => {
                self.prune_failing = true;
                log::warn!("schema history: cannot delete the versions the checkpoint has passed ({e}); they stay until a later checkpoint can");
            }
            Err(_) => {}
        }
    }
}
