//! The snapshot requests found in a commit-log topic, read once a second
//! for every pipeline that shares the scan.
//!
//! Each pipeline looks for requests every second. Alone it reads what was
//! appended to its commit-log topic since; the pipelines of a fleet's host
//! share one topic, and each reading every other pipeline's heartbeats
//! there cost more than anything else an idle pipeline does. So the host's
//! pipelines share one scan: whichever asks first in a second reads the
//! new records, keeps the requests among them, and every pipeline picks
//! its own from what was kept.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::kafka::{Client, KafkaError};

/// How often the topic is read for new records.
const EVERY: Duration = Duration::from_secs(1);

/// One topic's scan.
#[derive(Default)]
struct Topic {
    /// The lowest offset scanned, and the offset after the last one.
    start: i64,
    end: i64,
    read_at: Option<Instant>,
    /// Request records kept: (offset, key, value).
    requests: Vec<(i64, Vec<u8>, Vec<u8>)>,
}

/// The requests of one or more commit-log topics, as scanned so far.
#[derive(Default)]
pub struct RequestScan {
    topics: Mutex<HashMap<String, Topic>>,
}

/// What a poll found: request records at or after the asked offset, and
/// the offset the scan has reached.
pub struct Found {
    pub requests: Vec<(i64, Vec<u8>, Vec<u8>)>,
    pub scanned_to: i64,
}

fn is_request(key: &[u8]) -> bool {
    key.windows(b"#snapshot#".len()).any(|w| w == b"#snapshot#")
}

impl RequestScan {
    /// The requests in `topic` from offset `from` on, reading the topic
    /// (with `client`) where the scan does not yet cover `from`, and for
    /// new records at most once a second.
    pub fn poll(&self, client: &mut Client, topic: &str, from: i64) -> Result<Found, KafkaError> {
        let mut topics = self.topics.lock();
        let t = topics.entry(topic.to_string()).or_insert_with(|| Topic {
            start: from,
            end: from,
            ..Topic::default()
        });
        let keep = |kept: &mut Vec<_>, r: &crate::kafka::InRecord| {
            if let (Some(k), Some(v)) = (r.key.as_deref(), r.value.as_deref()) {
                if is_request(k) {
                    kept.push((r.offset, k.to_vec(), v.to_vec()));
                }
            }
        };
        if from < t.start {
            // A pipeline that has further to look back than the others.
            let mut older = Vec::new();
            let mut reached = from;
            let (start, end) = (t.start, t.end);
            client.scan(topic, from, |r| {
                if r.offset < start {
                    keep(&mut older, r);
                }
                reached = reached.max(r.offset + 1);
            })?;
            older.append(&mut t.requests);
            t.requests = older;
            t.start = from;
            t.end = end.max(reached);
            t.read_at = Some(Instant::now());
        }
        if t.read_at.is_none_or(|at| at.elapsed() >= EVERY) {
            let mut new = Vec::new();
            let end = t.end;
            t.end = client.scan(topic, end, |r| keep(&mut new, r))?;
            t.requests.append(&mut new);
            t.read_at = Some(Instant::now());
        }
        Ok(Found {
            requests: t
                .requests
                .iter()
                .filter(|(o, _, _)| *o >= from)
                .cloned()
                .collect(),
            scanned_to: t.end.max(from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_request_keys_are_kept() {
        assert!(is_request(b"orders#snapshot#42"));
        assert!(!is_request(b"orders#snapshot-ack#42"));
        assert!(!is_request(b"orders"));
    }
}
