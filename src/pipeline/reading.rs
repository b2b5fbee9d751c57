//! What the reader's helpers follow of it: the server it reads now (a
//! failover moves it; side connections go there too), the snapshot epoch
//! (bumped by a failover, so snapshot work of the old server is dropped),
//! the snapshot plan as of its last emitted chunk, and whether its stream
//! is up. Control data, written by the reader only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::event::plan::Plan;

#[derive(Default)]
pub struct Reading {
    /// Where connections to the source go after a failover (`None`: the
    /// first of `mysql.host`).
    server: Mutex<Option<(String, u16)>>,
    snapshot_epoch: AtomicU64,
    snapshot_plan: Mutex<Option<Arc<Plan>>>,
    /// Whether the reader lost its binlog stream (an outage is the
    /// reader's to report; the guard checks only while it is not lost).
    stream_lost: AtomicBool,
}

impl Reading {
    /// The server the reader reads now; `None`: the first of `mysql.host`.
    pub fn server(&self) -> Option<(String, u16)> {
        self.server.lock().clone()
    }

    /// The reader moved to `host:port`.
    pub fn set_server(&self, host: String, port: u16) {
        *self.server.lock() = Some((host, port));
    }

    /// Snapshot work read before now is void (the reader moved to another
    /// server, or a DDL changed the plan): it is dropped and read again.
    pub fn bump_snapshot_epoch(&self) {
        self.snapshot_epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn snapshot_epoch(&self) -> u64 {
        self.snapshot_epoch.load(Ordering::SeqCst)
    }

    pub fn snapshot_plan(&self) -> Option<Arc<Plan>> {
        self.snapshot_plan.lock().clone()
    }

    pub fn set_snapshot_plan(&self, p: Option<Arc<Plan>>) {
        *self.snapshot_plan.lock() = p;
    }

    pub fn stream_lost(&self) -> bool {
        self.stream_lost.load(Ordering::SeqCst)
    }

    pub fn set_stream_lost(&self, lost: bool) {
        self.stream_lost.store(lost, Ordering::SeqCst);
    }
}
