//! The fleet's pipeline definitions: one record per pipeline in a
//! compacted topic of the fleet (`fleet.topic`), keyed by the pipeline's
//! name; a tombstone deletes it. Every host reads the whole topic, so each
//! sees the same set, and the leader assigns from it.
//!
//! A definition holds the per-pipeline keys as `.properties` text, never a
//! secret: passwords are named by `*_file` paths present on the hosts
//! (`put` refuses a definition that holds one).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::kafka::{Client, KafkaError, OutRecord};

/// One pipeline as `pipeline put` wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    /// The per-pipeline keys, as the operator's file had them.
    pub properties: String,
    /// Paused: kept, but run by no host.
    #[serde(default)]
    pub paused: bool,
    /// The replica server id the fleet gave it (`fleet.server_id_range`),
    /// unless the properties set `mysql.server_id`.
    #[serde(default)]
    pub server_id: Option<u32>,
}

/// Every definition in `topic`, newest per name; deleted ones are gone.
/// `Ok(None)`: the topic does not exist (no pipeline was ever put).
pub fn read_all(
    client: &mut Client,
    topic: &str,
) -> Result<Option<BTreeMap<String, Definition>>, KafkaError> {
    if client.partitions(topic)?.is_none() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    client.scan(topic, 0, |r| {
        let Some(key) = r.key.as_deref() else {
            return;
        };
        let name = String::from_utf8_lossy(key).into_owned();
        match &r.value {
            None => {
                out.remove(&name);
            }
            Some(v) => match serde_json::from_slice::<Definition>(v) {
                Ok(d) => {
                    out.insert(name, d);
                }
                Err(e) => log::warn!(
                    "ignoring the unreadable definition of {name} at {topic} offset {}: {e}",
                    r.offset
                ),
            },
        }
    })?;
    Ok(Some(out))
}

/// Creates the definitions topic if missing: one partition, compacted.
pub fn ensure_topic(client: &mut Client, topic: &str, replication: i16) -> Result<(), KafkaError> {
    ensure_compacted(client, topic, replication, "definitions")
}

/// Creates one of the fleet's topics (`what`: definitions, status) if
/// missing: one partition, compacted.
pub fn ensure_compacted(
    client: &mut Client,
    topic: &str,
    replication: i16,
    what: &str,
) -> Result<(), KafkaError> {
    if client.partitions(topic)?.is_none()
        && client.create_topic(topic, 1, replication, &[("cleanup.policy", "compact")])?
    {
        log::info!(
            "created the fleet's {what} topic {topic} (1 partition, cleanup.policy=compact)"
        );
    }
    Ok(())
}

/// Writes `def` (or, with `None`, the tombstone of `name`).
pub fn write(
    client: &mut Client,
    topic: &str,
    name: &str,
    def: Option<&Definition>,
) -> Result<(), KafkaError> {
    let rec = OutRecord {
        key: Some(Bytes::from(name.to_string())),
        value: def.map(|d| Bytes::from(serde_json::to_vec(d).expect("plain data"))),
        timestamp_ms: crate::clock::now_ms() as i64,
        headers: vec![],
    };
    client.produce(topic, 0, &[rec])?;
    Ok(())
}

/// The lowest server id of `range` that no other definition holds (their
/// own `mysql.server_id` included, as `explicit` gives it).
pub fn free_server_id(
    range: (u32, u32),
    defs: &BTreeMap<String, Definition>,
    explicit: impl Fn(&Definition) -> Option<u32>,
    name: &str,
) -> Option<u32> {
    let taken: std::collections::BTreeSet<u32> = defs
        .values()
        .filter(|d| d.name != name)
        .filter_map(|d| explicit(d).or(d.server_id))
        .collect();
    (range.0..=range.1).find(|id| !taken.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, id: Option<u32>) -> Definition {
        Definition {
            name: name.into(),
            properties: String::new(),
            paused: false,
            server_id: id,
        }
    }

    #[test]
    fn a_new_pipeline_gets_the_lowest_server_id_nobody_holds() {
        let defs = BTreeMap::from([
            ("a".to_string(), def("a", Some(100))),
            ("b".to_string(), def("b", Some(102))),
            ("c".to_string(), def("c", None)),
        ]);
        // c sets its own 101 in its properties.
        let explicit = |d: &Definition| (d.name == "c").then_some(101);
        assert_eq!(
            free_server_id((100, 110), &defs, explicit, "new"),
            Some(103)
        );
        // A put again of a keeps its id free for itself.
        assert_eq!(free_server_id((100, 110), &defs, explicit, "a"), Some(100));
        assert_eq!(free_server_id((100, 102), &defs, explicit, "new"), None);
    }
}
