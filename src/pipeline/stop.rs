//! The pipeline-wide stop: a flag for the loops that check it between
//! events, and a channel for those that wait (a select, a back-off, a
//! pause between checks), so a stop wakes them at once instead of at their
//! next poll. The first cause a thread reports is kept: the pipeline ends
//! with that one line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::source::SourceError;

pub struct Stop {
    requested: AtomicBool,
    /// Dropped on the first request: every receiver wakes.
    wake: Mutex<Option<Sender<()>>>,
    signal: Receiver<()>,
    /// A failure found by a thread that owns no stage of the pipeline (the
    /// guard, the snapshot thread): the pipeline stops, and this is why.
    cause: Mutex<Option<SourceError>>,
}

impl Default for Stop {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(0);
        Stop {
            requested: AtomicBool::new(false),
            wake: Mutex::new(Some(tx)),
            signal: rx,
            cause: Mutex::new(None),
        }
    }
}

impl Stop {
    /// Asks every thread to stop.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.wake.lock().take();
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Stops the pipeline because of `e` (the first such cause is kept).
    pub fn fail(&self, e: SourceError) {
        self.cause.lock().get_or_insert(e);
        self.request();
    }

    /// The cause recorded by [`Stop::fail`], if any.
    pub fn take_cause(&self) -> Option<SourceError> {
        self.cause.lock().take()
    }

    /// A channel that disconnects when the stop is requested, for a
    /// `select!` (it never carries a message).
    pub fn signal(&self) -> &Receiver<()> {
        &self.signal
    }

    /// Waits `d`, or less when the stop comes first; true when stopping.
    pub fn wait(&self, d: Duration) -> bool {
        if self.requested() {
            return true;
        }
        let _ = self.signal.recv_timeout(d);
        self.requested()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_stop_wakes_a_waiting_thread_at_once() {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        let started = Instant::now();
        let t = std::thread::spawn(move || s.wait(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        stop.request();
        assert!(t.join().unwrap(), "the wait reports the stop");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            stop.wait(Duration::from_secs(30)),
            "and returns at once after it"
        );
    }

    #[test]
    fn the_first_cause_is_kept() {
        let stop = Stop::default();
        assert!(!stop.wait(Duration::from_millis(1)));
        stop.fail(SourceError::Setting {
            detail: "first".into(),
        });
        stop.fail(SourceError::Setting {
            detail: "second".into(),
        });
        assert!(stop.requested());
        assert_eq!(stop.take_cause().unwrap().to_string(), "first");
    }
}
