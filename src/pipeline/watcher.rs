//! The watcher thread: pops the acknowledged prefix of the waiting queue and
//! writes the newest released position to the commit-log topic, coalesced
//! (the newest position per interval, not one record per row).
//!
//! It owns its own Kafka connection, so a slow checkpoint write never
//! delays produce requests.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, tick, Receiver};

use super::{PipelineError, Shared};
use crate::checkpoint;
use crate::config::Config;
use crate::event::Position;
use crate::kafka::Client;

/// How often the acknowledged prefix is released.
const PASS: Duration = Duration::from_millis(50);

pub struct WatcherOutcome {
    /// The last checkpoint written, if any was.
    pub last_written: Option<Position>,
}

/// Starts `b2k-watcher`. It runs until `finish` is closed (the reader and
/// producer have ended), then releases what it can, writes a final
/// checkpoint and returns.
pub fn spawn(
    cfg: Config,
    shared: Arc<Shared>,
    client: Client,
    finish: Receiver<()>,
) -> JoinHandle<Result<WatcherOutcome, PipelineError>> {
    thread::Builder::new()
        .name("b2k-watcher".into())
        .spawn(move || {
            let mut w = Watcher {
                cfg,
                shared: shared.clone(),
                client,
                released: None,
                written: None,
                last_write: Instant::now(),
                failing_since: None,
            };
            let result = w.run(finish);
            if result.is_err() {
                shared.request_stop();
            }
            result
        })
        .expect("spawn watcher thread")
}

struct Watcher {
    cfg: Config,
    shared: Arc<Shared>,
    client: Client,
    released: Option<Position>,
    written: Option<Position>,
    last_write: Instant,
    failing_since: Option<Instant>,
}

impl Watcher {
    fn run(&mut self, finish: Receiver<()>) -> Result<WatcherOutcome, PipelineError> {
        let ticker = tick(PASS);
        loop {
            select! {
                recv(ticker) -> _ => {
                    self.pass();
                    if self.last_write.elapsed() >= self.cfg.checkpoint_interval {
                        self.write(false)?;
                    }
                }
                recv(finish) -> _ => {
                    self.pass();
                    self.write(true)?;
                    return Ok(WatcherOutcome { last_written: self.written.clone() });
                }
            }
        }
    }

    fn pass(&mut self) {
        if let Some(p) = self.shared.release_prefix() {
            self.released = Some(p);
        }
    }

    /// Writes the newest released position if it moved. A transient failure
    /// is retried on the next pass (the position only moves forward, so
    /// nothing is lost by waiting); on the final write it is retried until
    /// the shutdown timeout.
    fn write(&mut self, last: bool) -> Result<(), PipelineError> {
        self.last_write = Instant::now();
        let Some(p) = self.released.clone() else {
            return Ok(());
        };
        if self.written.as_ref() == Some(&p) {
            return Ok(());
        }
        let deadline = Instant::now() + self.cfg.shutdown_timeout;
        loop {
            match checkpoint::write(
                &mut self.client,
                &self.cfg.commit_topic,
                &self.cfg.pipeline_name,
                &p,
            ) {
                Ok(()) => {
                    if self.failing_since.take().is_some() {
                        log::info!("checkpoint writes work again; checkpoint at {p}");
                    }
                    log::debug!("checkpoint {p}");
                    self.shared
                        .stats
                        .checkpoints_written
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.written = Some(p);
                    return Ok(());
                }
                Err(e) if e.is_retriable() => {
                    if self.failing_since.is_none() {
                        self.failing_since = Some(Instant::now());
                        log::warn!("cannot write checkpoint ({e}); will retry");
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
}
