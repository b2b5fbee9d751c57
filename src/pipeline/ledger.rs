//! The ledger: the waiting queue (every sequence number the reader
//! produced, in binlog order) and the commit log (the sequence numbers
//! Kafka acknowledged), behind one lock.
//!
//! Why both: Kafka may acknowledge event 4 before event 3 (different
//! partitions, a retry). Only the contiguous acknowledged prefix may be
//! checkpointed, or a crash would skip event 3 for ever. The watcher pops that
//! prefix; the position of the last popped entry is the checkpoint.
//!
//! Each method takes the lock once per batch, never once per row. The
//! bytes the waiting changes hold are counted here too, and the reader
//! waits for room on a condition variable that a release signals.
//!
//! An empty queue that gets an entry says so on [`Ledger::work`], so an
//! idle watcher sleeps long instead of waking twenty times a second for
//! nothing (a host of a fleet runs hundreds of idle watchers).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::stop::Stop;
use crate::event::Position;

/// seq → offset, hashed with one multiplication (see [`super::intmap`]).
type SeqMap = super::intmap::IntMap<u64, i64>;

/// One waiting change. The rows of a transaction share one position but
/// for its row count, so the queue holds a position once per run of them
/// (in `positions`) and each entry says only whether it starts a new one:
/// no clone and no drop of a position's shared parts per row.
struct Entry {
    seq: u64,
    /// Bytes the change holds in memory until released.
    bytes: u32,
    /// `None`: the next of `positions` is this entry's. `Some(rows)`: the
    /// previous entry's position with `rows` rows released.
    rows: Option<u64>,
}

#[derive(Default)]
struct Inner {
    waiting: VecDeque<Entry>,
    /// The positions of the entries that start a run, in order.
    positions: VecDeque<Position>,
    /// The position of the last entry popped that started a run: what the
    /// entries of its run still waiting name.
    base: Option<Position>,
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

impl Inner {
    #[inline(always)]
    fn push(&mut self, seq: u64, pos: &Position, bytes: u32) {
        // The last position pushed: the newest of `positions`, or `base`
        // when every run's first entry has gone.
        let last = self.positions.back().or(self.base.as_ref());
        let rows = match last {
            Some(l) if same_but_rows(l, pos) => Some(pos.rows),
            _ => {
                self.positions.push_back(pos.clone());
                None
            }
        };
        self.waiting.push_back(Entry { seq, bytes, rows });
    }
}

/// Whether `a` and `b` differ at most in `rows` (shared parts compared by
/// pointer: a false "differs" only costs a stored copy).
#[inline(always)]
fn same_but_rows(a: &Position, b: &Position) -> bool {
    fn same<T: ?Sized>(a: &Option<std::sync::Arc<T>>, b: &Option<std::sync::Arc<T>>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }
    a.pos == b.pos
        && std::sync::Arc::ptr_eq(&a.file, &b.file)
        && same(&a.gtid, &b.gtid)
        && same(&a.state, &b.state)
        && same(&a.snapshot, &b.snapshot)
        && a.file_id == b.file_id
        && a.schema == b.schema
}

/// The waiting queue and the commit log.
pub struct Ledger {
    inner: Mutex<Inner>,
    in_flight_bytes: AtomicU64,
    /// Signalled when a release frees bytes.
    room: Condvar,
    created: Instant,
    /// One token when the queue went from empty to not empty.
    work: (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<()>,
    ),
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            inner: Mutex::new(Inner::default()),
            in_flight_bytes: AtomicU64::new(0),
            room: Condvar::new(),
            created: Instant::now(),
            work: crossbeam_channel::bounded(1),
        }
    }
}

impl Ledger {
    /// When something was last released, or the pipeline started.
    pub fn released_at(&self) -> Instant {
        self.inner.lock().released_at.unwrap_or(self.created)
    }

    /// Appends the reader's new events, in binlog order. Called before the
    /// events are sent to the producer, so an acknowledgement always finds its
    /// entry.
    pub fn push_batch<'a>(&self, items: impl IntoIterator<Item = (u64, &'a Position, u32)>) {
        let mut g = self.inner.lock();
        let was_empty = g.waiting.is_empty();
        let mut bytes = 0u64;
        for (seq, pos, b) in items {
            g.push(seq, pos, b);
            bytes += b as u64;
        }
        self.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.woken(was_empty && !g.waiting.is_empty());
    }

    /// Signals [`Ledger::work`] (a full channel already holds the token).
    fn woken(&self, now_busy: bool) {
        if now_busy {
            let _ = self.work.0.try_send(());
        }
    }

    /// Receives a token when entries arrive in an empty queue: what an
    /// idle watcher waits on.
    pub fn work(&self) -> &crossbeam_channel::Receiver<()> {
        &self.work.1
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
        let was_empty = g.waiting.is_empty();
        g.push(seq, &pos, 0);
        g.commit_log.insert(seq, -1);
        self.woken(was_empty);
    }

    /// An entry that holds the checkpoint at `pos` until it is
    /// acknowledged explicitly (an undecided XA prepare): changes after it
    /// still flow to Kafka, but none is released before it.
    pub fn push_blocker(&self, seq: u64, pos: Position) {
        let mut g = self.inner.lock();
        let was_empty = g.waiting.is_empty();
        g.push(seq, &pos, 0);
        self.woken(was_empty);
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
        let mut n = 0;
        let mut bytes = 0u64;
        while let Some(e) = g.waiting.front() {
            if g.commit_log.remove(&e.seq).is_none() {
                break;
            }
            let e = g.waiting.pop_front().expect("checked");
            bytes += e.bytes as u64;
            match e.rows {
                None => g.base = g.positions.pop_front(),
                Some(rows) => {
                    g.base
                        .as_mut()
                        .expect("a run's first entry went before")
                        .rows = rows
                }
            }
            n += 1;
        }
        self.in_flight_bytes.fetch_sub(bytes, Ordering::Relaxed);
        if bytes > 0 {
            self.room.notify_all();
        }
        if n == 0 {
            return None;
        }
        g.released = g.base.clone();
        g.released_count += n;
        g.released_at = Some(Instant::now());
        g.released.clone()
    }

    /// Entries waiting for an acknowledgement.
    pub fn depth(&self) -> usize {
        self.inner.lock().waiting.len()
    }

    /// The newest released position, if any.
    pub fn released(&self) -> Option<Position> {
        self.inner.lock().released.clone()
    }

    /// Waits until `bytes` more fit under `limit` (one batch always goes
    /// when nothing is held, so a huge row cannot wedge the pipeline), or
    /// the stop comes. A release wakes the wait; the timeout only bounds
    /// how late a stop is seen.
    pub fn wait_for_room(&self, bytes: u64, limit: u64, stop: &Stop) {
        let full = || {
            let held = self.in_flight_bytes();
            held > 0 && held + bytes > limit
        };
        if !full() {
            return;
        }
        let mut g = self.inner.lock();
        while full() && !stop.requested() {
            self.room.wait_for(&mut g, Duration::from_millis(50));
        }
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
        let s = Ledger::default();
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
    fn rows_of_one_transaction_release_with_their_count() {
        let s = Ledger::default();
        let start = pos(100);
        let txn = |rows| Position {
            rows,
            ..start.clone()
        };
        let rows: Vec<Position> = (1..=3).map(txn).collect();
        s.push_batch((1..=3).zip(rows.iter()).map(|(s, p)| (s, p, 10)));
        assert_eq!(
            s.inner.lock().positions.len(),
            1,
            "stored once for the three"
        );
        s.push_marker(4, pos(300));
        let next = Position {
            rows: 1,
            ..pos(300)
        };
        s.push_batch([(5, &next, 10)]);
        s.ack_batch([(1, 0), (2, 1)]);
        assert_eq!(
            s.release_prefix(),
            Some(txn(2)),
            "two rows of the transaction"
        );
        // More rows of the same transaction after the queue's first ones left.
        let more = txn(4);
        s.ack_batch([(3, 2), (5, 3)]);
        assert_eq!(
            s.release_prefix(),
            Some(next.clone()),
            "its end, then the next"
        );
        s.push_batch([(6, &more, 10)]);
        assert_eq!(s.release_prefix(), None);
        s.ack_batch([(6, 4)]);
        assert_eq!(s.release_prefix(), Some(more));
        assert_eq!(s.depth(), 0);
    }

    #[test]
    fn markers_move_the_checkpoint_once_rows_before_them_are_acked() {
        let s = Ledger::default();
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
        let s = Ledger::default();
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
