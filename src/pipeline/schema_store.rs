//! The schema history, durable: every version of every table definition
//! the reader follows is written to a compacted topic of its own
//! (`kafka.schema_topic`), under keys `PIPELINE#schema#VERSION#DB.TABLE`,
//! before any change after it is handed on; each checkpoint names the
//! version as of its position. A restart recovers the definitions of that
//! version exactly, whatever was written after it before a crash (those
//! later records are deleted at the restart, before anything new).
//!
//! Written by the pipeline's fencing producer where the broker fences
//! ([`crate::kafka::txn`]): the topic's partition is fenced before it is
//! read, so a paused predecessor cannot add a version after its successor
//! has recovered the history. Once a checkpoint is past a version that a
//! newer one of the same table replaces, the watcher deletes it
//! ([`Pruner`]): the topic holds, per table, the versions a checkpoint at
//! or after the newest one can still need.
//!
//! Pipelines that ran before the topic existed kept their versions in the
//! commit-log topic; a restart moves them ([`legacy`]).

use std::collections::BTreeMap;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::kafka::{Client, KafkaError, OutRecord, Producer, Transactional};
use crate::source::history::{History, Table};

/// One version of one table (or, with an empty table name, of the
/// databases' and server's character sets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub version: u64,
    pub database: String,
    pub table: String,
    /// Where the DDL that made it ends (`file:pos`), or the capture point.
    pub at: String,
    /// `None`: the table is gone (dropped, renamed away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Table>,
    /// With an empty `table`: database → default character set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_charset: Option<String>,
    #[serde(default)]
    pub mariadb: bool,
}

/// Where the reader writes the versions it makes: the topic's partition,
/// fenced, and the fencing producer's next sequence number in it.
pub struct Store {
    client: Client,
    topic: String,
    pipeline: String,
    producer: Option<Producer>,
    seq: i32,
    /// This pipeline's records in the topic at the start, as compaction
    /// leaves them (key → record); emptied once recovered or captured.
    found: BTreeMap<String, Version>,
    /// What the topic keeps, told to the [`Pruner`].
    notices: Sender<Vec<Kept>>,
    pruner: Option<Pruner>,
}

fn prefix(pipeline: &str) -> String {
    format!("{pipeline}#schema#")
}

fn key(pipeline: &str, version: u64, (database, table): (&str, &str)) -> String {
    format!("{}{version:016}#{database}.{table}", prefix(pipeline))
}

/// The record of the databases' and server's character sets at `version`:
/// every version has one.
fn charsets(history: &History, version: u64, at: &str) -> Version {
    Version {
        version,
        database: String::new(),
        table: String::new(),
        at: at.to_string(),
        definition: None,
        databases: Some(history.databases.clone()),
        server_charset: Some(history.server_charset.clone()),
        mariadb: history.mariadb,
    }
}

/// The records of a whole history at `version` (the capture): every table,
/// and the character sets.
pub fn whole(history: &History, version: u64, at: &str) -> Vec<Version> {
    let mut out = vec![charsets(history, version, at)];
    for ((d, t), def) in &history.tables {
        out.push(Version {
            version,
            database: d.clone(),
            table: t.clone(),
            at: at.to_string(),
            definition: Some(def.clone()),
            databases: None,
            server_charset: None,
            mariadb: history.mariadb,
        });
    }
    out
}

/// The records of the tables `changed` and `removed` at `version`, as the
/// history now holds them (and the character sets, which a database DDL
/// may have changed).
pub fn changes(
    history: &History,
    version: u64,
    at: &str,
    tables: impl IntoIterator<Item = (String, String)>,
) -> Vec<Version> {
    let mut out = vec![charsets(history, version, at)];
    for (d, t) in tables {
        let definition = history.table(&d, &t).cloned();
        out.push(Version {
            version,
            database: d,
            table: t,
            at: at.to_string(),
            definition,
            databases: None,
            server_charset: None,
            mariadb: history.mariadb,
        });
    }
    out
}

/// A record the topic keeps, as the [`Pruner`] knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub version: u64,
    pub slot: (String, String),
    /// The record says the table is gone (dropped, renamed away).
    pub gone: bool,
}

impl Kept {
    fn of(v: &Version) -> Kept {
        Kept {
            version: v.version,
            slot: (v.database.clone(), v.table.clone()),
            gone: v.definition.is_none() && !v.table.is_empty(),
        }
    }
}

/// How many records one produce request carries: well under any broker's
/// message limit.
const CHUNK: usize = 256;

/// `seq + n` as Kafka counts sequence numbers (wrapping to 0 after
/// `i32::MAX`).
fn advance(seq: i32, n: usize) -> i32 {
    ((seq as i64 + n as i64) % (i32::MAX as i64 + 1)) as i32
}

/// This pipeline's records in `topic` as a compacted topic keeps them: the
/// newest value of each key, a tombstone removing it. Reads the whole
/// partition (compaction keeps it small).
fn scan(
    client: &mut Client,
    topic: &str,
    pipeline: &str,
) -> Result<BTreeMap<String, Version>, KafkaError> {
    let mut found = BTreeMap::new();
    if client.partitions(topic)?.is_none() {
        return Ok(found);
    }
    let prefix = prefix(pipeline);
    client.scan(topic, 0, |r| {
        let Some(k) = r.key.as_deref() else { return };
        if !k.starts_with(prefix.as_bytes()) {
            return;
        }
        let k = String::from_utf8_lossy(k).into_owned();
        let Some(v) = r.value.as_deref() else {
            found.remove(&k);
            return;
        };
        match serde_json::from_slice::<Version>(v) {
            Ok(v) => {
                found.insert(k, v);
            }
            Err(_) => log::warn!(
                "ignoring an unreadable schema history record at {topic} offset {}",
                r.offset
            ),
        }
    })?;
    Ok(found)
}

/// The history as of `version` from `found` (a [`scan`]): for every table
/// its newest definition at or below it. `None` when the version itself is
/// missing: every version has a record of the character sets, so its
/// absence means records were lost (the topic deleted, or its records).
fn history_at<'a>(found: impl IntoIterator<Item = &'a Version>, version: u64) -> Option<History> {
    let mut newest: BTreeMap<(&str, &str), &Version> = BTreeMap::new();
    let mut named_found = false;
    for v in found {
        if v.version > version {
            continue;
        }
        named_found |= v.version == version && v.table.is_empty();
        let slot = (v.database.as_str(), v.table.as_str());
        if newest.get(&slot).is_none_or(|old| old.version <= v.version) {
            newest.insert(slot, v);
        }
    }
    let meta = newest.remove(&("", ""))?;
    if !named_found {
        return None;
    }
    let mut h = History {
        databases: meta.databases.clone().unwrap_or_default(),
        server_charset: meta.server_charset.clone().unwrap_or_default(),
        mariadb: meta.mariadb,
        ..Default::default()
    };
    for ((d, t), v) in newest {
        if let Some(def) = &v.definition {
            h.tables.insert((d.to_string(), t.to_string()), def.clone());
        }
    }
    Some(h)
}

/// Writes a tombstone for each of `keys` (not fenced: a tombstone removes
/// only what no checkpoint at or after the one that allowed it can need).
fn delete(client: &mut Client, topic: &str, keys: &[String]) -> Result<(), KafkaError> {
    let now = crate::clock::now_ms() as i64;
    for chunk in keys.chunks(CHUNK) {
        let records: Vec<OutRecord> = chunk
            .iter()
            .map(|k| OutRecord {
                key: Some(k.clone().into_bytes().into()),
                value: None,
                timestamp_ms: now,
                headers: Vec::new(),
            })
            .collect();
        client.produce(topic, 0, &records)?;
    }
    Ok(())
}

/// The versions a pipeline that ran before `kafka.schema_topic` existed
/// kept in the commit-log topic, as of `version`: found, they are the
/// history to move (the caller writes it to the schema topic with
/// [`Store::adopt`], then deletes these with [`forget_legacy`]).
pub fn legacy(
    client: &mut Client,
    commit_topic: &str,
    pipeline: &str,
    version: u64,
) -> Result<Option<(History, Vec<String>)>, KafkaError> {
    let found = scan(client, commit_topic, pipeline)?;
    Ok(history_at(found.values(), version).map(|h| (h, found.into_keys().collect())))
}

/// Deletes the moved versions from the commit-log topic.
pub fn forget_legacy(
    client: &mut Client,
    commit_topic: &str,
    keys: &[String],
) -> Result<(), KafkaError> {
    delete(client, commit_topic, keys)
}

impl Store {
    /// Opens the pipeline's history in `topic` (created if missing:
    /// compacted, one partition): fences its partition where the broker
    /// fences, then reads what the pipeline has there.
    pub fn open(
        mut client: Client,
        topic: &str,
        pipeline: &str,
        replication: i16,
        fencing: Option<&Transactional>,
    ) -> Result<Store, KafkaError> {
        if client.partitions(topic)?.is_none()
            && client.create_topic(topic, 1, replication, &[("cleanup.policy", "compact")])?
        {
            log::info!(
                "created schema history topic {topic} (1 partition, cleanup.policy=compact)"
            );
        }
        if let Some(t) = fencing {
            client.fence(t, topic, &[0])?;
        }
        let found = scan(&mut client, topic, pipeline)?;
        let (notices, heard) = crossbeam_channel::unbounded();
        let pruner = Pruner {
            topic: topic.to_string(),
            pipeline: pipeline.to_string(),
            kept: BTreeMap::new(),
            passed: 0,
            heard,
        };
        Ok(Store {
            client,
            topic: topic.to_string(),
            pipeline: pipeline.to_string(),
            producer: fencing.map(|t| t.producer),
            seq: 0,
            found,
            notices,
            pruner: Some(pruner),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The history as of `version`, the one the checkpoint names; records
    /// of later versions (written before a crash, by a run that went
    /// further) are deleted, since the versions made from here on take
    /// their numbers. `None`: the version is not there.
    pub fn recover(&mut self, version: u64) -> Result<Option<History>, KafkaError> {
        let Some(h) = history_at(self.found.values(), version) else {
            return Ok(None);
        };
        let later: Vec<String> = self
            .found
            .iter()
            .filter(|(_, v)| v.version > version)
            .map(|(k, _)| k.clone())
            .collect();
        if !later.is_empty() {
            log::info!(
                "schema history: deleting {} records of versions after {version} (written before the last stop, made again from here)",
                later.len()
            );
            delete(&mut self.client, &self.topic.clone(), &later)?;
        }
        let kept = std::mem::take(&mut self.found)
            .into_values()
            .filter(|v| v.version <= version)
            .map(|v| Kept::of(&v))
            .collect();
        self.notify(kept);
        Ok(Some(h))
    }

    /// Starts the history over with `versions` (a capture): whatever the
    /// pipeline had in the topic (a life before a reset) is deleted first.
    pub fn start_over(&mut self, versions: &[Version]) -> Result<(), KafkaError> {
        let old: Vec<String> = std::mem::take(&mut self.found).into_keys().collect();
        if !old.is_empty() {
            log::info!(
                "schema history: deleting {} records of this pipeline's earlier history",
                old.len()
            );
            delete(&mut self.client, &self.topic.clone(), &old)?;
        }
        self.write(versions)
    }

    /// Takes a history moved from elsewhere (see [`legacy`]) as `version`.
    pub fn adopt(&mut self, history: &History, version: u64, at: &str) -> Result<(), KafkaError> {
        self.start_over(&whole(history, version, at))
    }

    /// Writes `versions` and waits until Kafka has them. A retry after an
    /// error writes them again (same keys and values: compaction keeps
    /// one).
    pub fn write(&mut self, versions: &[Version]) -> Result<(), KafkaError> {
        let now = crate::clock::now_ms() as i64;
        for chunk in versions.chunks(CHUNK) {
            let records: Vec<OutRecord> = chunk
                .iter()
                .map(|v| OutRecord {
                    key: Some(
                        key(&self.pipeline, v.version, (&v.database, &v.table))
                            .into_bytes()
                            .into(),
                    ),
                    value: Some(serde_json::to_vec(v).expect("serialisable").into()),
                    timestamp_ms: now,
                    headers: Vec::new(),
                })
                .collect();
            let idem = self.producer.map(|p| (p, self.seq));
            match self.client.produce_as(&self.topic, 0, &records, idem) {
                Ok(_) => {}
                // Stored by an attempt whose answer was lost.
                Err(KafkaError::Broker { code: 46, .. }) if idem.is_some() => {}
                Err(e) => return Err(e),
            }
            self.seq = advance(self.seq, records.len());
        }
        self.notify(versions.iter().map(Kept::of).collect());
        Ok(())
    }

    /// Drops the connection after an error: the next write connects anew.
    pub fn reset(&mut self) {
        self.client.reset();
    }

    fn notify(&self, kept: Vec<Kept>) {
        // The pruner may be gone (the watcher ended): nothing to prune then.
        let _ = self.notices.send(kept);
    }

    /// What deletes the versions checkpoints have passed, for the watcher.
    pub fn pruner(&mut self) -> Option<Pruner> {
        self.pruner.take()
    }
}

/// Deletes the versions no checkpoint can need any more. A checkpoint at
/// version C recovers, per table, the newest version at or below C: every
/// older version of that table is unreachable from C and from every later
/// checkpoint, and so is a newest one that says the table is gone.
pub struct Pruner {
    topic: String,
    pipeline: String,
    /// Per table (the character sets under `("", "")`): version → gone.
    kept: BTreeMap<(String, String), BTreeMap<u64, bool>>,
    /// The checkpoint version pruned for last.
    passed: u64,
    heard: Receiver<Vec<Kept>>,
}

impl Pruner {
    fn hear(&mut self) {
        while let Ok(batch) = self.heard.try_recv() {
            for k in batch {
                self.kept
                    .entry(k.slot)
                    .or_default()
                    .insert(k.version, k.gone);
            }
        }
    }

    /// The records a checkpoint at `checkpoint` no longer needs.
    fn due(&self, checkpoint: u64) -> Vec<Kept> {
        let mut due = Vec::new();
        for (slot, versions) in &self.kept {
            let Some((&newest, &gone)) = versions.range(..=checkpoint).next_back() else {
                continue;
            };
            for (&v, &g) in versions.range(..=newest) {
                if v < newest || gone {
                    due.push(Kept {
                        version: v,
                        slot: slot.clone(),
                        gone: g,
                    });
                }
            }
        }
        due
    }

    /// After the checkpoint at schema version `checkpoint` is written:
    /// deletes what it no longer needs; returns how many records.
    pub fn prune(&mut self, client: &mut Client, checkpoint: u64) -> Result<usize, KafkaError> {
        self.hear();
        if checkpoint <= self.passed {
            return Ok(0);
        }
        let due = self.due(checkpoint);
        if !due.is_empty() {
            let keys: Vec<String> = due
                .iter()
                .map(|k| key(&self.pipeline, k.version, (&k.slot.0, &k.slot.1)))
                .collect();
            delete(client, &self.topic, &keys)?;
            for k in &due {
                if let Some(vs) = self.kept.get_mut(&k.slot) {
                    vs.remove(&k.version);
                    if vs.is_empty() {
                        self.kept.remove(&k.slot);
                    }
                }
            }
            log::debug!(
                "schema history: deleted {} versions passed by the checkpoint at version {checkpoint}",
                due.len()
            );
        }
        self.passed = checkpoint;
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pruner(kept: &[(u64, &str, bool)]) -> Pruner {
        let (tx, heard) = crossbeam_channel::unbounded();
        tx.send(
            kept.iter()
                .map(|&(version, table, gone)| Kept {
                    version,
                    slot: ("d".to_string(), table.to_string()),
                    gone,
                })
                .collect(),
        )
        .unwrap();
        let mut p = Pruner {
            topic: "t".into(),
            pipeline: "p".into(),
            kept: BTreeMap::new(),
            passed: 0,
            heard,
        };
        p.hear();
        p
    }

    fn due(p: &Pruner, checkpoint: u64) -> Vec<(u64, String)> {
        p.due(checkpoint)
            .into_iter()
            .map(|k| (k.version, k.slot.1))
            .collect()
    }

    #[test]
    fn a_version_is_deleted_once_a_checkpoint_is_past_a_newer_one_of_its_table() {
        let p = pruner(&[
            (1, "a", false),
            (1, "b", false),
            (3, "a", false),
            (5, "a", false),
        ]);
        // At 2 the checkpoint still needs a@1 and b@1.
        assert!(due(&p, 2).is_empty());
        // At 4 a@1 is replaced by a@3; b@1 is still b's newest.
        assert_eq!(due(&p, 4), vec![(1, "a".to_string())]);
        // At 5 only a@5 and b@1 remain needed.
        assert_eq!(due(&p, 5), vec![(1, "a".to_string()), (3, "a".to_string())]);
    }

    #[test]
    fn a_dropped_table_leaves_nothing_once_a_checkpoint_is_past_the_drop() {
        let p = pruner(&[(1, "a", false), (2, "a", true), (4, "a", false)]);
        assert!(due(&p, 1).is_empty());
        assert_eq!(due(&p, 3), vec![(1, "a".to_string()), (2, "a".to_string())]);
        // Created again at 4: kept from there.
        assert_eq!(due(&p, 4), vec![(1, "a".to_string()), (2, "a".to_string())]);
    }

    fn version(version: u64, table: &str, columns: Option<&str>) -> Version {
        Version {
            version,
            database: if table.is_empty() { "" } else { "d" }.to_string(),
            table: table.to_string(),
            at: String::new(),
            definition: columns.map(|c| Table {
                columns: vec![crate::source::history::Column {
                    name: c.to_string(),
                    data_type: "int".into(),
                    unsigned: false,
                    precision: 0,
                    scale: 0,
                    fsp: 0,
                    length: 0,
                    charset: None,
                    labels: vec![],
                    json: false,
                }],
                primary: vec![],
                charset: String::new(),
            }),
            databases: table.is_empty().then(BTreeMap::new),
            server_charset: table.is_empty().then(String::new),
            mariadb: true,
        }
    }

    #[test]
    fn the_history_at_a_version_takes_each_tables_newest_record_at_or_below_it() {
        let found = [
            version(1, "", None),
            version(1, "a", Some("x")),
            version(2, "", None),
            version(2, "a", Some("y")),
            version(3, "", None),
            version(3, "a", None),
        ];
        let name = |h: &History| {
            h.tables
                .get(&("d".into(), "a".into()))
                .map(|t| t.columns[0].name.clone())
        };
        assert_eq!(name(&history_at(&found, 1).unwrap()).as_deref(), Some("x"));
        assert_eq!(name(&history_at(&found, 2).unwrap()).as_deref(), Some("y"));
        assert_eq!(name(&history_at(&found, 3).unwrap()), None);
        // A version whose own record is missing is lost, not guessed.
        assert!(history_at(&found, 4).is_none());
        assert!(history_at(&found[1..], 1).is_none());
    }
}
