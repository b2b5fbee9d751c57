//! What the pages chart: the rate and the lag of the last hour, one point a
//! minute, and the sampler that measures both.
//!
//! One point a minute keeps an hour in sixty points: small enough to ride
//! along in every status record of a fleet, so the host that takes a
//! pipeline over carries on its charts where the last one left them.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Measured, Settings};
use crate::pipeline::Shared;

/// Minutes of history kept.
pub const MINUTES: u64 = 60;

/// One minute of a pipeline's life.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Minutes since the epoch.
    pub minute: u64,
    /// Rows acknowledged per second (the last-minute rate, as last measured
    /// in that minute).
    pub rows_per_s: f64,
    /// The most the reader was behind in that minute, when it was known.
    pub lag_s: Option<u64>,
}

/// The last hour, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    points: VecDeque<Point>,
}

impl History {
    /// Adds a measurement taken at `now_s` (seconds since the epoch) and
    /// forgets what is older than an hour.
    pub fn record(&mut self, now_s: u64, rows_per_s: f64, lag_s: Option<u64>) {
        let minute = now_s / 60;
        match self.points.back_mut() {
            Some(p) if p.minute == minute => {
                p.rows_per_s = rows_per_s;
                p.lag_s = match (p.lag_s, lag_s) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            // A clock that stepped back: keep the newer past as it was.
            Some(p) if p.minute > minute => {}
            _ => self.points.push_back(Point {
                minute,
                rows_per_s,
                lag_s,
            }),
        }
        while self
            .points
            .front()
            .is_some_and(|p| p.minute + MINUTES <= minute)
        {
            self.points.pop_front();
        }
    }

    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// How often the server's head is asked for (the lag in bytes).
const HEAD_EVERY: Duration = Duration::from_secs(5);

/// Measures one pipeline: rates over the last minute from its counters,
/// the lag from the server's binlog head. Driven by whoever samples: the
/// single pipeline's monitor thread every second, a fleet host's status
/// thread for all its pipelines in turn.
pub struct Sampler {
    cfg: Settings,
    samples: VecDeque<(Instant, u64, u64)>,
    conn: crate::source::SourceConn,
    last_head: Option<Instant>,
    measured: Measured,
}

impl Sampler {
    /// `history`: where the charts start (a pipeline taken over from
    /// another host carries on from that host's last record).
    pub fn new(cfg: Settings, history: History) -> Sampler {
        Sampler {
            cfg,
            samples: VecDeque::new(),
            conn: crate::source::SourceConn::default(),
            last_head: None,
            measured: Measured {
                history,
                ..Measured::default()
            },
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.cfg
    }

    /// Takes a sample now and returns what is measured.
    pub fn sample(&mut self, shared: &Shared) -> &Measured {
        let now = Instant::now();
        self.samples.push_back((
            now,
            shared.board.stats.rows_acked.load(Ordering::Relaxed),
            shared.board.stats.bytes_acked.load(Ordering::Relaxed),
        ));
        while self
            .samples
            .front()
            .is_some_and(|s| now.duration_since(s.0) > Duration::from_secs(60))
        {
            self.samples.pop_front();
        }
        let (rows_per_s, bytes_per_s) = match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = b.0.duration_since(a.0).as_secs_f64();
                ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
            }
            _ => (0.0, 0.0),
        };
        self.measured.rows_per_s = rows_per_s;
        self.measured.bytes_per_s = bytes_per_s;
        if self
            .last_head
            .is_none_or(|t| now.duration_since(t) >= HEAD_EVERY)
        {
            self.last_head = Some(now);
            let (bytes, head) = super::server_lag(&self.cfg, shared, &mut self.conn);
            self.measured.lag_bytes = bytes;
            self.measured.head = head;
        }
        let now_s = crate::clock::now_secs();
        let lag_s = super::lag_seconds(&self.measured, shared, now_s);
        self.measured.history.record(now_s, rows_per_s, lag_s);
        &self.measured
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_keeps_its_latest_rate_and_its_largest_lag() {
        let mut h = History::default();
        h.record(600, 10.0, Some(3));
        h.record(630, 20.0, Some(1));
        h.record(659, 30.0, None);
        let p: Vec<_> = h.points().cloned().collect();
        assert_eq!(
            p,
            vec![Point {
                minute: 10,
                rows_per_s: 30.0,
                lag_s: Some(3)
            }]
        );
    }

    #[test]
    fn an_hour_is_kept_and_no_more() {
        let mut h = History::default();
        for m in 0..90u64 {
            h.record(m * 60, m as f64, Some(0));
        }
        let minutes: Vec<u64> = h.points().map(|p| p.minute).collect();
        assert_eq!(minutes.len(), 60);
        assert_eq!((minutes[0], minutes[59]), (30, 89));
    }

    #[test]
    fn a_history_travels_as_a_plain_list() {
        let mut h = History::default();
        h.record(120, 1.5, None);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"[{"minute":2,"rows_per_s":1.5,"lag_s":null}]"#);
        assert_eq!(serde_json::from_str::<History>(&json).unwrap(), h);
    }
}
