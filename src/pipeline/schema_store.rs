//! The schema history, durable: every version of every table definition
//! the reader follows is written to the commit-log topic, under keys of its
//! own (`PIPELINE#schema#VERSION#DB.TABLE`), before any change after it is
//! handed on; each checkpoint names the version as of its position. A
//! restart recovers the definitions of that version exactly, whatever was
//! written after it before a crash.
//!
//! The commit-log topic rather than a topic of its own: it is already
//! compacted, created and checked at start, and owned by the pipeline;
//! losing it loses the checkpoint too, which the start already reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kafka::{Client, KafkaError, OutRecord};
use crate::source::history::{History, Table};

/// Where the reader writes the versions it makes.
pub struct Store {
    pub client: Client,
    pub topic: String,
    pub pipeline: String,
}

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

fn prefix(pipeline: &str) -> String {
    format!("{pipeline}#schema#")
}

fn key(pipeline: &str, v: &Version) -> String {
    format!(
        "{}{:016}#{}.{}",
        prefix(pipeline),
        v.version,
        v.database,
        v.table
    )
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

/// Writes `versions` and waits until Kafka has them.
pub fn write(
    client: &mut Client,
    topic: &str,
    pipeline: &str,
    versions: &[Version],
) -> Result<(), KafkaError> {
    let now = crate::clock::now_ms() as i64;
    // Batches well under any broker's message limit.
    for chunk in versions.chunks(256) {
        let records: Vec<OutRecord> = chunk
            .iter()
            .map(|v| OutRecord {
                key: Some(key(pipeline, v).into_bytes().into()),
                value: Some(serde_json::to_vec(v).expect("serialisable").into()),
                timestamp_ms: now,
                headers: Vec::new(),
            })
            .collect();
        client.produce(topic, 0, &records)?;
    }
    Ok(())
}

/// The history as of `version`: for every table its newest definition at
/// or below it. `None` when the topic holds no version at or below it
/// (deleted, or compacted away): the caller says so and stops.
pub fn recover(
    client: &mut Client,
    topic: &str,
    pipeline: &str,
    version: u64,
) -> Result<Option<History>, KafkaError> {
    if client.partitions(topic)?.is_none() {
        return Ok(None);
    }
    let (earliest, latest) = client.offsets(topic, 0)?;
    let prefix = prefix(pipeline);
    let mut newest: BTreeMap<(String, String), Version> = BTreeMap::new();
    // The version the checkpoint names must be there itself: every version
    // has a record of the character sets, so its absence means records
    // were lost.
    let mut named_found = false;
    let mut at = earliest;
    while at < latest {
        let recs = client.fetch(topic, 0, at, 4 << 20)?;
        if recs.is_empty() {
            break;
        }
        for r in &recs {
            let Some(k) = r.key.as_deref() else { continue };
            if !k.starts_with(prefix.as_bytes()) {
                continue;
            }
            let Some(v) = r.value.as_deref() else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<Version>(v) else {
                log::warn!(
                    "ignoring an unreadable schema history record at {topic} offset {}",
                    r.offset
                );
                continue;
            };
            if v.version > version {
                continue;
            }
            named_found |= v.version == version;
            let slot = (v.database.clone(), v.table.clone());
            if newest.get(&slot).is_none_or(|old| old.version <= v.version) {
                newest.insert(slot, v);
            }
        }
        at = recs.last().map(|r| r.offset + 1).unwrap_or(latest);
    }
    let Some(meta) = newest.remove(&(String::new(), String::new())) else {
        return Ok(None);
    };
    if !named_found {
        return Ok(None);
    }
    let mut h = History {
        databases: meta.databases.unwrap_or_default(),
        server_charset: meta.server_charset.unwrap_or_default(),
        mariadb: meta.mariadb,
        ..Default::default()
    };
    for (k, v) in newest {
        if let Some(def) = v.definition {
            h.tables.insert(k, def);
        }
    }
    Ok(Some(h))
}
