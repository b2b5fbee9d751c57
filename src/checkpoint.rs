//! Checkpoints: the released position, written to the commit-log topic with
//! the pipeline name as key (one partition, compacted, so several pipelines
//! can share it), and read back at start.
//!
//! Each record also names its writer (`owner`), so the topic doubles as a
//! lease: a running daemon rewrites its checkpoint at least every heartbeat
//! interval, a clean stop marks it `released`, and a second daemon with the
//! same pipeline name refuses to start while the heartbeats go on.

use serde::{Deserialize, Serialize};

use crate::event::Position;
use crate::kafka::{Client, KafkaError};

/// The commit-log record's value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub pipeline: String,
    pub file: String,
    /// Start of the transaction the position is in.
    pub pos: u64,
    /// Rows of that transaction already released.
    pub rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// When it was written, ms since the epoch.
    pub ts_ms: u64,
    /// The daemon instance that wrote it (host, pid, start time).
    #[serde(default)]
    pub owner: String,
    /// Written by a clean stop: the pipeline is free.
    #[serde(default)]
    pub released: bool,
    /// Which binlog `file` is (its first event's server and time), so a
    /// restart notices RESET MASTER or another server's file of that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<crate::event::FileId>,
    /// The GTID state at `pos` (before the transaction there): where any
    /// server of the cluster resumes ([`crate::gtid`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_state: Option<String>,
    /// Whether the MariaDB state's per-server numbers are the whole history
    /// (see [`crate::gtid::MariaPos`]); absent in older records: unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gtid_history: bool,
    /// Snapshot work left as of `pos` ([`crate::event::plan`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<crate::event::plan::Plan>,
    /// The schema history's version as of `pos`: its definitions are in
    /// this topic under `PIPELINE#schema#…` keys (see
    /// [`crate::pipeline::schema_store`]); absent: none kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub schema_version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A name for this daemon instance, unique across hosts and restarts:
/// `host/pid/start-ms/where`, where `where` names the kernel boot and PID
/// namespace, so that a pid is compared only where it means the same
/// process.
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!(
        "{host}/{}/{}/{}",
        std::process::id(),
        now_ms(),
        pid_space().unwrap_or_default()
    )
}

/// This kernel boot and PID namespace, where a pid names one process.
fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!(
        "{}:{}",
        boot.trim(),
        ns.to_string_lossy()
            .trim_start_matches("pid:[")
            .trim_end_matches(']')
    ))
}

/// Whether `owner` (an [`instance_id`]) is provably gone: it ran in this
/// kernel boot and PID namespace, and its pid no longer runs binlog2kafka.
/// An owner elsewhere (another host, container or boot) is never judged.
pub fn owner_gone_here(owner: &str) -> bool {
    let parts: Vec<&str> = owner.split('/').collect();
    let (Some(pid), Some(space)) = (parts.get(1), parts.get(3)) else {
        return false;
    };
    if space.is_empty() || pid_space().as_deref() != Some(*space) {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Err(_) => true,
        // The pid was reused by another program.
        Ok(cmd) => !String::from_utf8_lossy(&cmd).contains("binlog2kafka"),
    }
}

/// Whether `owner` runs in this kernel boot and PID namespace as a live
/// binlog2kafka (possibly paused): its heartbeats, not a pid, tell whether
/// it still works.
pub fn owner_runs_here(owner: &str) -> bool {
    let parts: Vec<&str> = owner.split('/').collect();
    let (Some(pid), Some(space)) = (parts.get(1), parts.get(3)) else {
        return false;
    };
    !space.is_empty()
        && pid_space().as_deref() == Some(*space)
        && pid.parse::<u32>().is_ok()
        && !owner_gone_here(owner)
}

pub use crate::clock::now_ms;

impl Record {
    pub fn new(pipeline: &str, p: &Position, owner: &str) -> Record {
        Record {
            pipeline: pipeline.to_string(),
            file: p.file.to_string(),
            pos: p.pos,
            rows: p.rows,
            gtid: p.gtid.as_deref().map(str::to_string),
            ts_ms: now_ms(),
            owner: owner.to_string(),
            released: false,
            file_id: p.file_id,
            gtid_state: p.state.as_ref().map(|s| s.to_string()),
            gtid_history: matches!(p.state.as_deref(), Some(crate::gtid::GtidState::Maria(m)) if m.2),
            snapshot: p.snapshot.as_deref().cloned(),
            schema_version: p.schema,
        }
    }

    pub fn position(&self) -> Position {
        Position {
            file: self.file.as_str().into(),
            pos: self.pos,
            rows: self.rows,
            gtid: self.gtid.as_deref().map(Into::into),
            state: self
                .gtid_state
                .as_deref()
                .and_then(|s| crate::gtid::GtidState::parse(s).ok())
                .map(|mut s| {
                    if let crate::gtid::GtidState::Maria(m) = &mut s {
                        m.2 = self.gtid_history;
                    }
                    std::sync::Arc::new(s)
                }),
            file_id: self.file_id,
            snapshot: self.snapshot.clone().map(std::sync::Arc::new),
            schema: self.schema_version,
        }
    }
}

/// Creates the commit-log topic if it is missing: one partition, compacted.
pub fn ensure_topic(client: &mut Client, topic: &str, replication: i16) -> Result<(), KafkaError> {
    if client.partitions(topic)?.is_none()
        && client.create_topic(topic, 1, replication, &[("cleanup.policy", "compact")])?
    {
        log::info!("created commit-log topic {topic} (1 partition, cleanup.policy=compact)");
    }
    Ok(())
}

/// Writes one checkpoint record; returns its offset in the commit-log topic.
pub fn write(client: &mut Client, topic: &str, rec: &Record) -> Result<i64, KafkaError> {
    Writer::default().write(client, topic, rec)
}

/// How a daemon writes its checkpoints: as idempotent batches of the
/// pipeline's fencing producer ([`crate::kafka::Transactional`]) where the
/// broker has one, so that once a successor has fenced the commit-log
/// partition the broker refuses this daemon's next checkpoint
/// (PRODUCER_FENCED); plainly otherwise.
#[derive(Debug, Default)]
pub struct Writer {
    producer: Option<crate::kafka::Producer>,
    /// The next sequence number in the commit-log partition.
    seq: i32,
}

impl Writer {
    pub fn fenced_by(producer: crate::kafka::Producer) -> Writer {
        Writer {
            producer: Some(producer),
            seq: 0,
        }
    }

    /// Writes `rec`; returns its offset. A sequence number the broker holds
    /// already (an earlier attempt stored although its answer was lost, of
    /// a position no newer than this) is stepped over, and `rec` is written
    /// after it.
    pub fn write(
        &mut self,
        client: &mut Client,
        topic: &str,
        rec: &Record,
    ) -> Result<i64, KafkaError> {
        let value: bytes::Bytes = serde_json::to_vec(rec)
            .expect("a checkpoint serializes")
            .into();
        let record = || crate::kafka::OutRecord {
            key: Some(rec.pipeline.as_bytes().to_vec().into()),
            value: Some(value.clone()),
            timestamp_ms: rec.ts_ms as i64,
            headers: Vec::new(),
        };
        loop {
            let idem = self.producer.map(|p| (p, self.seq));
            match client.produce_as(topic, 0, &[record()], idem) {
                Ok(offset) => {
                    self.seq = self.seq.wrapping_add(1).max(0);
                    return Ok(offset);
                }
                Err(KafkaError::Broker { code: 46, .. }) if idem.is_some() => {
                    self.seq = self.seq.wrapping_add(1).max(0);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes a tombstone for `pipeline`: its checkpoint is gone, and the next
/// start begins at `start.position` (compaction later drops the key).
pub fn write_tombstone(
    client: &mut Client,
    topic: &str,
    pipeline: &str,
) -> Result<i64, KafkaError> {
    client.produce(
        topic,
        0,
        &[crate::kafka::OutRecord {
            key: Some(pipeline.as_bytes().to_vec().into()),
            value: None,
            timestamp_ms: now_ms() as i64,
            headers: Vec::new(),
        }],
    )
}

/// The newest checkpoint of `pipeline`, scanning the commit-log topic
/// backwards in windows so a long, uncompacted topic is not read whole.
pub fn read_latest(
    client: &mut Client,
    topic: &str,
    pipeline: &str,
) -> Result<Option<Record>, KafkaError> {
    if client.partitions(topic)?.is_none() {
        return Ok(None);
    }
    let (earliest, latest) = client.offsets(topic, 0)?;
    let mut window = 256i64;
    let mut end = latest;
    while end > earliest {
        let from = (end - window).max(earliest);
        // Some(None) = the newest record of this pipeline is a tombstone.
        let mut newest: Option<Option<Record>> = None;
        let mut at = from;
        while at < end {
            let recs = client.fetch(topic, 0, at, 4 << 20)?;
            if recs.is_empty() {
                break;
            }
            for r in &recs {
                if r.offset >= end {
                    break;
                }
                if r.key.as_deref() == Some(pipeline.as_bytes()) {
                    if let Some(v) = &r.value {
                        match serde_json::from_slice::<Record>(v) {
                            Ok(rec) => newest = Some(Some(rec)),
                            Err(e) => log::warn!(
                                "ignoring unreadable checkpoint at {topic} offset {}: {e}",
                                r.offset
                            ),
                        }
                    } else {
                        // A tombstone resets the pipeline.
                        newest = Some(None);
                    }
                }
            }
            at = recs.last().map(|r| r.offset + 1).unwrap_or(end);
        }
        if let Some(found) = newest {
            return Ok(found);
        }
        end = from;
        window *= 4;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_keeps_whether_its_gtid_history_is_whole() {
        let mut state = crate::gtid::MariaPos::parse("0-32-416,0-31-670").unwrap();
        for whole in [false, true] {
            state.2 = whole;
            let p = Position {
                state: Some(std::sync::Arc::new(crate::gtid::GtidState::Maria(
                    state.clone(),
                ))),
                ..Position::at("binlog.000001", 4)
            };
            let rec = Record::new("p", &p, "me");
            let text = serde_json::to_string(&rec).unwrap();
            assert_eq!(text.contains("gtid_history"), whole, "{text}");
            let back: Record = serde_json::from_str(&text).unwrap();
            assert_eq!(back.position().state, p.state);
        }
    }

    #[test]
    fn an_owner_is_judged_gone_only_where_its_pid_means_a_process() {
        let me = instance_id();
        assert!(!owner_gone_here(&me), "this process runs");
        let parts: Vec<&str> = me.split('/').collect();
        let dead = format!("{}/{}/{}/{}", parts[0], u32::MAX - 7, parts[2], parts[3]);
        assert!(owner_gone_here(&dead), "no such pid here");
        let elsewhere = format!("{}/{}/{}/other-boot:1", parts[0], u32::MAX - 7, parts[2]);
        assert!(
            !owner_gone_here(&elsewhere),
            "another kernel's pid says nothing"
        );
        assert!(
            !owner_gone_here("host/123/456"),
            "an old-style owner is never judged"
        );
    }

    #[test]
    fn record_round_trips_a_position() {
        let p = Position {
            file: "binlog.000007".into(),
            pos: 4711,
            rows: 3,
            gtid: Some("0-1-9".into()),
            state: None,
            file_id: None,
            snapshot: None,
            schema: 0,
        };
        let rec = Record::new("orders", &p, "host/1/2");
        let text = serde_json::to_string(&rec).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.position(), p);
        assert_eq!(back.pipeline, "orders");
    }
}
