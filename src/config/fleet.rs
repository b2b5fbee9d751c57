//! The `fleet.*` keys, and how a fleet's pipeline gets its configuration:
//! the host's file (what the hosts share), then the definition's keys
//! (what is the pipeline's own), then the environment.

use super::*;

/// `fleet.*`, validated.
#[derive(Debug, Clone)]
pub struct FleetKeys {
    pub name: String,
    pub topic: String,
    pub status_topic: String,
    pub session_timeout: Duration,
    pub heartbeat: Duration,
    pub server_ids: (u32, u32),
}

pub(super) fn fleet_keys(v: &Values) -> Result<Option<FleetKeys>, ConfigError> {
    let name = v.get("fleet.name");
    if name.is_empty() {
        return Ok(None);
    }
    let name = topic_name("fleet.name", &name)?;
    let topic = match v.get("fleet.topic").as_str() {
        "" => topic_name("fleet.name", &format!("{name}_pipelines"))?,
        t => topic_name("fleet.topic", t)?,
    };
    let status_topic = match v.get("fleet.status_topic").as_str() {
        "" => topic_name("fleet.name", &format!("{name}_status"))?,
        t => topic_name("fleet.status_topic", t)?,
    };
    if status_topic == topic {
        return Err(ConfigError::BadValue {
            key: "fleet.status_topic".into(),
            value: status_topic,
            expected: "a topic other than fleet.topic (the definitions)".into(),
        });
    }
    let session_timeout = v.ms_at_least("fleet.session_timeout_ms", 1000)?;
    let heartbeat = v.ms_at_least("fleet.heartbeat_interval_ms", 100)?;
    if heartbeat * 3 > session_timeout {
        return Err(ConfigError::BadValue {
            key: "fleet.heartbeat_interval_ms".into(),
            value: v.get("fleet.heartbeat_interval_ms"),
            expected: format!(
                "at most a third of fleet.session_timeout_ms ({} ms), or one late heartbeat costs the host its pipelines",
                session_timeout.as_millis()
            ),
        });
    }
    let range = v.get("fleet.server_id_range");
    let bad = || ConfigError::BadValue {
        key: "fleet.server_id_range".into(),
        value: range.clone(),
        expected: "FIRST-LAST, two server ids (1 to 4294967295), FIRST <= LAST".into(),
    };
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(Some(FleetKeys {
        name,
        topic,
        status_topic,
        session_timeout,
        heartbeat,
        server_ids: (a, b),
    }))
}

/// Keys that belong to the host, not to a pipeline: a definition that sets
/// one is refused (it would mean different things on different hosts).
const HOST_KEYS: &[&str] = &[
    "kafka.brokers",
    "kafka.client_id",
    "kafka.timeout_ms",
    "kafka.security.",
    "kafka.sasl.",
    "kafka.ssl.",
    "http.listen",
    "log.format",
    "fleet.",
];

/// Secrets a definition may not hold: it is written to a topic that every
/// reader of the fleet sees. `*_file` names a file on the hosts instead.
const SECRET_KEYS: &[&str] = &[
    "mysql.password",
    "kafka.sasl.password",
    "registry.basic_auth_user_info",
];

/// Checks a definition's own keys: known, not the host's, no secret, and a
/// `pipeline.name`. Returns that name and the `mysql.server_id` it sets.
pub fn definition_keys(text: &str, shown: &str) -> Result<(String, Option<u32>), ConfigError> {
    let mut name = None;
    let mut server_id = None;
    for (key, value, line) in parse_properties(text, shown)? {
        let k = known(&key, &format!("{shown}:{line}"))?;
        let bad = |expected: &str| ConfigError::BadValue {
            key: k.to_string(),
            value: if SECRET_KEYS.contains(&k) {
                "(hidden)".into()
            } else {
                value.clone()
            },
            expected: format!("{expected} ({shown}:{line})"),
        };
        if HOST_KEYS
            .iter()
            .any(|h| k == *h || (h.ends_with('.') && k.starts_with(h)))
            && !k.ends_with("_file")
        {
            return Err(bad(
                "nothing here: it is the host's, set in each host's fleet config file",
            ));
        }
        if SECRET_KEYS.contains(&k) && !value.is_empty() {
            return Err(bad(&format!(
                "no secret in a definition, which every reader of the fleet's topic sees: name a file present on the hosts with {k}_file"
            )));
        }
        match k {
            "pipeline.name" => name = Some(value.trim().to_string()),
            "mysql.server_id" => {
                server_id = Some(
                    value
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| bad("a replica server id, 1 to 4294967295"))?,
                )
            }
            _ => {}
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ConfigError::BadValue {
            key: "pipeline.name".into(),
            value: String::new(),
            expected: format!("the pipeline's name, set in the definition ({shown})"),
        })?;
    Ok((name, server_id))
}

impl Config {
    /// The configuration of fleet pipeline `name`: the host's `layers` and
    /// `env` (what the hosts share), then its definition `properties`
    /// (with the `server_id` the fleet gave it, unless it sets its own),
    /// which win.
    pub fn for_pipeline(
        host: &[(String, String)],
        name: &str,
        properties: &str,
        server_id: Option<u32>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let shown = format!("the definition of pipeline {name}");
        let (_, own_id) = definition_keys(properties, &shown)?;
        let mut text = properties.to_string();
        if let (None, Some(id)) = (own_id, server_id) {
            text.push_str(&format!("\nmysql.server_id = {id}\n"));
        }
        let mut cfg = Self::load_layers(host, env, &[(shown, text)])?;
        // The host's file names the fleet; the pipeline runs alone in it.
        cfg.fleet = None;
        cfg.http_listen = None;
        Ok(cfg)
    }

    /// What the fleet's member loop needs.
    pub fn fleet(&self) -> Option<crate::fleet::Settings> {
        let f = self.fleet.as_ref()?;
        Some(crate::fleet::Settings {
            name: f.name.clone(),
            topic: f.topic.clone(),
            status_topic: f.status_topic.clone(),
            session_timeout: f.session_timeout,
            heartbeat: f.heartbeat,
            replication: self.replication_factor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        definition_keys(text, "def").unwrap_err().to_string()
    }

    #[test]
    fn a_definition_names_its_pipeline_and_holds_no_host_key_and_no_secret() {
        assert_eq!(
            definition_keys("pipeline.name = orders\nmysql.server_id = 7\n", "def").unwrap(),
            ("orders".to_string(), Some(7))
        );
        assert!(err("mysql.host = db1\n").contains("pipeline.name"));
        assert!(err("pipeline.name = a\nkafka.brokers = k:9092\n").contains("it is the host's"));
        assert!(
            err("pipeline.name = a\nkafka.sasl.mechanism = PLAIN\n").contains("it is the host's")
        );
        let secret = err("pipeline.name = a\nmysql.password = hunter2\n");
        assert!(secret.contains("mysql.password_file"), "{secret}");
        assert!(
            !secret.contains("hunter2"),
            "the secret is printed: {secret}"
        );
        assert!(
            definition_keys("pipeline.name = a\nmysql.password_file = /run/s/a\n", "def").is_ok()
        );
        assert!(err("pipeline.name = a\nmysql.hots = x\n").contains("mysql.host"));
    }

    #[test]
    fn a_fleet_pipeline_takes_the_hosts_keys_and_its_definition_wins() {
        let host = vec![(
            "host.properties".to_string(),
            "fleet.name = f\nkafka.brokers = k1:9092\nmysql.host = shared\nmysql.user = u\nhttp.listen = 0.0.0.0:9000\n".to_string(),
        )];
        let env = vec![("B2K_MYSQL_PORT".to_string(), "3310".to_string())];
        let cfg = Config::for_pipeline(
            &host,
            "p",
            "pipeline.name = p\nmysql.host = own\n",
            Some(1_000_005),
            env,
        )
        .unwrap();
        assert_eq!(cfg.pipeline_name, "p");
        assert_eq!(cfg.mysql_hosts, vec![("own".to_string(), 3310)]);
        assert_eq!(cfg.brokers, vec!["k1:9092".to_string()]);
        assert_eq!(cfg.server_id, 1_000_005);
        assert!(cfg.fleet.is_none() && cfg.http_listen.is_none());
        // Its own server id wins over the one the fleet gave.
        let own = Config::for_pipeline(
            &host,
            "p",
            "pipeline.name = p\nmysql.server_id = 9\n",
            Some(1_000_005),
            vec![],
        )
        .unwrap();
        assert_eq!(own.server_id, 9);
    }

    #[test]
    fn fleet_keys_are_checked() {
        let load = |text: &str| Config::load_layers(&[("f".into(), text.into())], vec![], &[]);
        let f = load("fleet.name = f\n").unwrap().fleet.unwrap();
        assert_eq!(
            (f.topic.as_str(), f.server_ids),
            ("f_pipelines", (1_000_000, 1_009_999))
        );
        assert!(load("fleet.name = f\nfleet.heartbeat_interval_ms = 5000\n")
            .unwrap_err()
            .to_string()
            .contains("a third"));
        assert!(load("fleet.name = f\nfleet.server_id_range = 9-3\n").is_err());
        assert!(load("").unwrap().fleet.is_none());
    }
}
