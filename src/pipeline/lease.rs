//! The lease: until when this instance may send. Its last commit-log
//! record's time plus two heartbeats; a successor takes over only after
//! three, so a process paused past its lease (SIGSTOP, a stall, a VM
//! migration) sends nothing before it has proved again that the pipeline is
//! still its own.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct Lease {
    /// ms since the epoch; `u64::MAX`: no lease (replay).
    until_ms: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            until_ms: AtomicU64::new(u64::MAX),
        }
    }
}

impl Lease {
    /// A commit-log record written at `written_ms` proves ownership until
    /// `written_ms + valid_ms`.
    pub fn renew(&self, written_ms: u64, valid_ms: u64) {
        self.until_ms
            .store(written_ms.saturating_add(valid_ms), Ordering::SeqCst);
    }

    /// Whether this instance may send now.
    pub fn valid(&self) -> bool {
        crate::clock::now_ms() < self.until_ms.load(Ordering::SeqCst)
    }
}
