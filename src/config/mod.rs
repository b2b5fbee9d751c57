//! The configuration: a `.properties` file (`key = value`, `#` comments, as
//! Kafka and Maxwell users know it) with every key overridable by an
//! environment variable (`B2K_MYSQL_HOST` for `mysql.host`) for init scripts
//! and containers.
//!
//! One table, [`KEYS`], lists every key with its default and meaning; parsing,
//! validation, `--help` and the docs all come from it, so they cannot drift
//! apart.

mod avro;
mod fleet;
mod keys;
mod layers;
mod properties;
mod values;

use avro::avro_keys;
pub use avro::AvroKeys;
use fleet::fleet_keys;
pub use fleet::{definition_keys, FleetKeys};
use keys::known;
pub use keys::{env_name, keys_help, keys_markdown, Key, KEYS};
use properties::parse_properties;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use values::{choice, hosts, parse_start, secret, topic_name, topic_template};

use crate::filter::{ColumnFilter, TableFilter};
use crate::format::value::Style;
use crate::format::Format;
use crate::kafka::Compression;
pub use crate::pipeline::producer::route::{render_topic, KeyFormat, PartitionBy};
pub use crate::source::snapshot::SnapshotMode;
pub use crate::source::tls::{MysqlTls, SslMode};
pub use crate::source::StartPosition;

/// Errors of the configuration boundary; each names the key or file.
#[derive(Debug)]
pub enum ConfigError {
    Missing {
        path: String,
        detail: String,
    },
    Syntax {
        path: String,
        line: usize,
        text: String,
    },
    UnknownKey {
        key: String,
        origin: String,
        hint: Option<&'static str>,
    },
    BadValue {
        key: String,
        value: String,
        expected: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { path, detail } => {
                write!(f, "cannot read config file {path}: {detail}")
            }
            ConfigError::Syntax { path, line, text } => {
                write!(f, "{path}:{line}: expected `key = value`, found `{text}`")
            }
            ConfigError::UnknownKey { key, origin, hint } => {
                write!(f, "unknown config key `{key}` ({origin})")?;
                match hint {
                    Some(h) => write!(f, "; did you mean `{h}`?"),
                    None => write!(f, "; `binlog2kafka --help` lists every key"),
                }
            }
            ConfigError::BadValue {
                key,
                value,
                expected,
            } => {
                write!(f, "bad value `{value}` for {key}: expected {expected}")?;
                if value.contains(" #") || value.contains(" !") {
                    write!(f, " (a # or ! starts a comment only at the start of a line, as in Java properties files)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every server of `mysql.host`, in order.
    pub mysql_hosts: Vec<(String, u16)>,
    pub failover_after: Duration,
    pub mysql_user: String,
    pub mysql_password: String,
    /// `mysql.ssl_*`.
    pub mysql_tls: MysqlTls,
    pub server_id: u32,
    pub mysql_timeout: Duration,
    /// `mysql.on_statement_dml=warn`: step over statement-logged DML.
    pub on_statement_dml_warn: bool,
    /// `snapshot.mode`.
    pub snapshot_mode: SnapshotMode,
    /// `schema.on_mismatch`.
    pub schema_on_mismatch: crate::source::history::follow::OnMismatch,
    /// `schema.on_unparsed_ddl`.
    pub schema_on_unparsed: crate::source::history::follow::OnUnparsed,
    /// `snapshot.chunk_rows`.
    pub snapshot_chunk_rows: usize,
    pub brokers: Vec<String>,
    pub topic: String,
    pub topic_partitions: i32,
    pub replication_factor: i16,
    pub commit_topic: String,
    /// `kafka.schema_topic`, its default filled in.
    pub schema_topic: String,
    pub client_id: String,
    pub compression: Compression,
    pub batch_max_bytes: usize,
    pub max_record_bytes: usize,
    pub kafka_timeout: Duration,
    /// `kafka.security.protocol=ssl`: the `kafka.ssl.*` settings.
    pub kafka_tls: Option<crate::kafka::tls::TlsSettings>,
    /// `kafka.security.protocol=sasl_*`: the `kafka.sasl.*` settings.
    pub kafka_sasl: Option<crate::kafka::sasl::SaslSettings>,
    pub pipeline_name: String,
    pub pending_events: usize,
    pub txn_buffer_rows: usize,
    pub max_in_flight_bytes: u64,
    pub checkpoint_interval: Duration,
    pub heartbeat_interval: Duration,
    pub shutdown_timeout: Duration,
    pub start_position: StartPosition,
    pub filter: TableFilter,
    pub columns: ColumnFilter,
    pub partition_by: PartitionBy,
    pub key_format: KeyFormat,
    pub style: Style,
    pub format: Format,
    pub tombstones: bool,
    pub transaction_markers: bool,
    /// `kafka.ddl_topic`; `None` when DDL is not published.
    pub ddl_topic: Option<String>,
    pub transaction_topic: String,
    /// `http.listen`; `None` when off.
    pub http_listen: Option<String>,
    pub log_json: bool,
    /// `fleet.*`: `None` for the single pipeline of one file.
    pub fleet: Option<FleetKeys>,
    /// `output.encoding=avro` and its registry; `None` for JSON.
    pub avro: Option<AvroKeys>,
    /// Things worth saying about the configuration that do not stop it (a
    /// key set twice): logged once logging is set up.
    pub warnings: Vec<String>,
}

impl Config {
    /// Whether a snapshot's rows are framed by bootstrap-start and
    /// -complete records (Maxwell's bootstrap): what the reader must emit,
    /// without knowing the format.
    pub fn bootstrap_markers(&self) -> bool {
        self.format == Format::Maxwell
    }

    pub(super) fn from_values(map: &BTreeMap<&'static str, String>) -> Result<Config, ConfigError> {
        let v = Values(map);
        let get = |k: &str| v.get(k);
        let num = |k: &str, lo: i64, hi: i64| v.num(k, lo, hi);
        let ms_at_least = |k: &str, lo: i64| v.ms_at_least(k, lo);
        let nonempty = |k: &str| v.nonempty(k);
        let brokers = brokers(&v)?;
        let compression = choice(
            "kafka.compression",
            &get("kafka.compression"),
            &[
                ("none", Compression::None),
                ("gzip", Compression::Gzip),
                ("snappy", Compression::Snappy),
            ],
            "none, gzip or snappy",
        )?;
        let format = choice(
            "output.format",
            &get("output.format"),
            &[
                ("maxwell", Format::Maxwell),
                ("debezium", Format::Debezium),
                ("canal", Format::Canal),
            ],
            "maxwell, debezium or canal",
        )?;
        let flag = |k: &str| {
            choice(
                k,
                &get(k),
                &[("true", true), ("false", false)],
                "true or false",
            )
        };
        let ddl_topic = match get("kafka.ddl_topic") {
            t if t.is_empty() => None,
            t => Some(topic_name("kafka.ddl_topic", &t)?),
        };
        let http_listen = http_listen(&v)?;
        Config {
            http_listen,
            log_json: choice(
                "log.format",
                &get("log.format"),
                &[("text", false), ("json", true)],
                "text or json",
            )?,
            format,
            tombstones: flag("output.tombstones")?,
            transaction_markers: flag("output.transaction_markers")?,
            ddl_topic,
            transaction_topic: topic_name(
                "kafka.transaction_topic",
                &get("kafka.transaction_topic"),
            )?,
            mysql_hosts: hosts(
                &nonempty("mysql.host")?,
                num("mysql.port", 1, 65535)? as u16,
            )?,
            failover_after: ms_at_least("mysql.failover_after_ms", 100)?,
            mysql_user: nonempty("mysql.user")?,
            mysql_password: secret(v.0, "mysql.password")?,
            mysql_tls: mysql_tls(&v)?,
            server_id: num("mysql.server_id", 1, u32::MAX as i64)? as u32,
            mysql_timeout: ms_at_least("mysql.timeout_ms", 1000)?,
            on_statement_dml_warn: choice(
                "mysql.on_statement_dml",
                &get("mysql.on_statement_dml"),
                &[("fail", false), ("warn", true)],
                "fail or warn",
            )?,
            schema_on_mismatch: schema_on_mismatch(&v)?,
            schema_on_unparsed: schema_on_unparsed(&v)?,
            snapshot_mode: choice(
                "snapshot.mode",
                &get("snapshot.mode"),
                &[
                    ("never", SnapshotMode::Never),
                    ("initial", SnapshotMode::Initial),
                    ("when_needed", SnapshotMode::WhenNeeded),
                ],
                "never, initial or when_needed",
            )?,
            snapshot_chunk_rows: num("snapshot.chunk_rows", 16, 1 << 20)? as usize,
            brokers,
            topic: topic_template("kafka.topic", &get("kafka.topic"))?,
            topic_partitions: num("kafka.topic_partitions", 1, 100_000)? as i32,
            replication_factor: num("kafka.replication_factor", -1, 32_767)? as i16,
            commit_topic: topic_name("kafka.commit_topic", &get("kafka.commit_topic"))?,
            schema_topic: match get("kafka.schema_topic").as_str() {
                "" => topic_name(
                    "kafka.commit_topic",
                    &format!("{}_schema", get("kafka.commit_topic")),
                )?,
                named => topic_name("kafka.schema_topic", named)?,
            },
            client_id: nonempty("kafka.client_id")?,
            compression,
            batch_max_bytes: num("kafka.batch_max_bytes", 1024, 1 << 30)? as usize,
            max_record_bytes: num("kafka.max_record_bytes", 1024, 1 << 30)? as usize,
            kafka_timeout: ms_at_least("kafka.timeout_ms", 1000)?,
            kafka_sasl: kafka_sasl(&v)?,
            kafka_tls: kafka_tls(&v)?,
            pipeline_name: nonempty("pipeline.name")?,
            pending_events: num("pipeline.pending_events", 1, 1 << 20)? as usize,
            txn_buffer_rows: num("pipeline.txn_buffer_rows", 1, 1 << 24)? as usize,
            max_in_flight_bytes: num("pipeline.max_in_flight_bytes", 1 << 20, 1 << 40)? as u64,
            checkpoint_interval: ms_at_least("pipeline.checkpoint_interval_ms", 10)?,
            heartbeat_interval: ms_at_least("pipeline.heartbeat_interval_ms", 100)?,
            shutdown_timeout: ms_at_least("pipeline.shutdown_timeout_ms", 100)?,
            start_position: parse_start(&get("start.position"))?,
            style: Style {
                zero_dates_as_text: choice(
                    "output.zero_dates",
                    &get("output.zero_dates"),
                    &[("null", false), ("text", true)],
                    "null or text",
                )?,
            },
            partition_by: partition_by(&v)?,
            key_format: choice(
                "kafka.key_format",
                &get("kafka.key_format"),
                &[
                    ("auto", KeyFormat::default_for(format)),
                    ("maxwell", KeyFormat::Maxwell),
                    ("debezium", KeyFormat::Debezium),
                    ("none", KeyFormat::None),
                ],
                "auto, maxwell, debezium or none",
            )?,
            columns: ColumnFilter::parse(
                &get("filter.columns.exclude"),
                &get("filter.columns.mask"),
            )
            .map_err(|(key, expected)| ConfigError::BadValue {
                value: get(&key),
                key,
                expected,
            })?,
            filter: TableFilter::parse(&nonempty("filter.include")?, &get("filter.exclude"))
                .map_err(|(key, expected)| ConfigError::BadValue {
                    value: get(&key),
                    key,
                    expected,
                })?,
            fleet: fleet_keys(&v)?,
            avro: avro_keys(&v, format)?,
            warnings: Vec::new(),
        }
        .refuse_harmful(&get("filter.exclude"))
    }

    /// What the source needs: the servers and how to reach them, where to
    /// start, which tables and columns.
    pub fn source(&self) -> std::sync::Arc<crate::source::Settings> {
        std::sync::Arc::new(crate::source::Settings {
            hosts: self.mysql_hosts.clone(),
            user: self.mysql_user.clone(),
            password: self.mysql_password.clone(),
            tls: self.mysql_tls.clone(),
            server_id: self.server_id,
            timeout: self.mysql_timeout,
            start_position: self.start_position.clone(),
            filter: self.filter.clone(),
            columns: self.columns.clone(),
            schema_on_mismatch: self.schema_on_mismatch,
            schema_on_unparsed: self.schema_on_unparsed,
        })
    }

    /// What the reader (and the snapshot thread) are told.
    pub fn reader(&self) -> crate::pipeline::reader::Settings {
        crate::pipeline::reader::Settings {
            source: self.source(),
            pipeline_name: self.pipeline_name.clone(),
            commit_topic: self.commit_topic.clone(),
            failover_after: self.failover_after,
            on_statement_dml_warn: self.on_statement_dml_warn,
            snapshot_mode: self.snapshot_mode,
            snapshot_chunk_rows: self.snapshot_chunk_rows,
            txn_buffer_rows: self.txn_buffer_rows,
            max_in_flight_bytes: self.max_in_flight_bytes,
            publish_ddl: self.ddl_topic.is_some(),
            bootstrap_markers: self.bootstrap_markers(),
        }
    }

    /// What the producer is told.
    pub fn producer(&self) -> crate::pipeline::producer::Settings {
        crate::pipeline::producer::Settings {
            pipeline_name: self.pipeline_name.clone(),
            format: self.format,
            style: self.style,
            topic: self.topic.clone(),
            topic_partitions: self.topic_partitions,
            replication_factor: self.replication_factor,
            ddl_topic: self.ddl_topic.clone(),
            transaction_topic: self.transaction_topic.clone(),
            transaction_markers: self.transaction_markers,
            tombstones: self.tombstones,
            partition_by: self.partition_by.clone(),
            key_format: self.key_format,
            max_record_bytes: self.max_record_bytes,
            batch_max_bytes: self.batch_max_bytes,
            shutdown_timeout: self.shutdown_timeout,
            avro: self.avro_out(),
        }
    }

    /// What the watcher is told.
    pub fn watcher(&self) -> crate::pipeline::watcher::Settings {
        crate::pipeline::watcher::Settings {
            pipeline_name: self.pipeline_name.clone(),
            commit_topic: self.commit_topic.clone(),
            checkpoint_interval: self.checkpoint_interval,
            heartbeat_interval: self.heartbeat_interval,
            shutdown_timeout: self.shutdown_timeout,
        }
    }

    /// What the status page is told.
    pub fn status(&self) -> crate::status::Settings {
        crate::status::Settings {
            pipeline_name: self.pipeline_name.clone(),
            brokers: self.brokers.join(","),
            topic: self.topic.clone(),
            http_listen: self.http_listen.clone(),
            source: self.source(),
        }
    }

    /// What replay is told.
    pub fn replay(&self) -> crate::replay::Settings {
        crate::replay::Settings {
            reader: self.reader(),
            history: None,
            format: self.format,
            style: self.style,
        }
    }

    /// The first server of `mysql.host`, with the settings to reach it.
    pub fn first_target(&self) -> crate::source::Target {
        crate::source::Target::first(self.source())
    }

    /// Settings each of which parses but would quietly do harm.
    fn refuse_harmful(self, exclude: &str) -> Result<Config, ConfigError> {
        let bad = |key: &str, value: &str, expected: &str| ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        };
        let mut others = vec![("kafka.topic", self.topic.as_str())];
        if let Some(d) = &self.ddl_topic {
            others.push(("kafka.ddl_topic", d));
        }
        if self.transaction_markers {
            others.push(("kafka.transaction_topic", &self.transaction_topic));
        }
        let compacted = [
            ("kafka.commit_topic", "commit log", &self.commit_topic),
            ("kafka.schema_topic", "schema history", &self.schema_topic),
        ];
        for (own, what, compacted) in compacted {
            for (key, topic) in &others {
                let same = if topic.contains('{') {
                    // A template could render to it.
                    let re = regex::Regex::new(&format!(
                        "^{}$",
                        regex::escape(topic)
                            .replace(r"\{database\}", ".*")
                            .replace(r"\{table\}", ".*")
                    ))
                    .ok();
                    re.is_some_and(|r| r.is_match(compacted))
                } else {
                    topic == compacted
                };
                if same {
                    return Err(bad(
                        own,
                        compacted,
                        &format!("a topic of its own, not {key}'s: the {what} is compacted (cleanup.policy=compact), which would delete data records sharing it"),
                    ));
                }
            }
        }
        if self.schema_topic == self.commit_topic {
            return Err(bad(
                "kafka.schema_topic",
                &self.schema_topic,
                "a topic of its own, not kafka.commit_topic's: the schema history is read whole at each start, and the checkpoints would make that slow",
            ));
        }
        // A pattern that excludes a name no one has excludes every table.
        let probe = TableFilter::parse("*.*", exclude).ok();
        if !exclude.is_empty() && probe.is_some_and(|f| !f.allows("b2k_probe_Qz7x", "probe_Wv3k")) {
            return Err(bad(
                "filter.exclude",
                exclude,
                "patterns that leave some table published; this one excludes every table, so nothing would ever be sent",
            ));
        }
        if self.tombstones && self.format != Format::Debezium {
            return Err(bad(
                "output.tombstones",
                "true",
                "false with this output.format: tombstones are Debezium's delete marker (output.format=debezium)",
            ));
        }
        Ok(self)
    }
}

/// The configuration's values by key, with the readers every section
/// uses (each error names the key and what it expects).
struct Values<'a>(&'a BTreeMap<&'static str, String>);

impl Values<'_> {
    fn get(&self, k: &str) -> String {
        self.0[k].trim().to_string()
    }

    fn num(&self, k: &str, lo: i64, hi: i64) -> Result<i64, ConfigError> {
        let s = self.get(k);
        s.parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| ConfigError::BadValue {
                key: k.to_string(),
                value: s,
                expected: format!("a whole number from {lo} to {hi}"),
            })
    }

    /// Durations below which the daemon cannot work: reconnects that time
    /// out before a server answers, a heartbeat that floods the commit log.
    fn ms_at_least(&self, k: &str, lo: i64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.num(k, lo, 86_400_000)? as u64))
    }

    fn nonempty(&self, k: &str) -> Result<String, ConfigError> {
        let s = self.get(k);
        if s.is_empty() {
            Err(ConfigError::BadValue {
                key: k.to_string(),
                value: s,
                expected: "a non-empty value".into(),
            })
        } else {
            Ok(s)
        }
    }

    /// A file path, or `None` where the key is empty.
    fn path(&self, k: &str) -> Option<std::path::PathBuf> {
        let v = self.get(k);
        (!v.is_empty()).then(|| std::path::PathBuf::from(v))
    }
}

/// `kafka.brokers`: `host:port`, comma-separated.
/// `schema.on_mismatch`.
fn schema_on_mismatch(
    v: &Values,
) -> Result<crate::source::history::follow::OnMismatch, ConfigError> {
    use crate::source::history::follow::OnMismatch;
    choice(
        "schema.on_mismatch",
        &v.get("schema.on_mismatch"),
        &[
            ("fail", OnMismatch::Fail),
            ("positional", OnMismatch::Positional),
        ],
        "fail or positional",
    )
}

/// `schema.on_unparsed_ddl`.
fn schema_on_unparsed(
    v: &Values,
) -> Result<crate::source::history::follow::OnUnparsed, ConfigError> {
    use crate::source::history::follow::OnUnparsed;
    choice(
        "schema.on_unparsed_ddl",
        &v.get("schema.on_unparsed_ddl"),
        &[("fail", OnUnparsed::Fail), ("refresh", OnUnparsed::Refresh)],
        "fail or refresh",
    )
}

fn brokers(v: &Values) -> Result<Vec<String>, ConfigError> {
    let brokers: Vec<String> = v
        .get("kafka.brokers")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if brokers.is_empty() || brokers.iter().any(|b| !b.contains(':')) {
        return Err(ConfigError::BadValue {
            key: "kafka.brokers".into(),
            value: v.get("kafka.brokers"),
            expected: "a comma-separated list of host:port".into(),
        });
    }
    Ok(brokers)
}

/// `http.listen`: an address, or `off`.
fn http_listen(v: &Values) -> Result<Option<String>, ConfigError> {
    match v.get("http.listen").as_str() {
        "off" => Ok(None),
        a if a.parse::<std::net::SocketAddr>().is_ok() => Ok(Some(a.to_string())),
        a => Err(ConfigError::BadValue {
            key: "http.listen".into(),
            value: a.into(),
            expected: "IP:PORT (127.0.0.1:9000, 0.0.0.0:9000) or off".into(),
        }),
    }
}

/// `mysql.ssl_*`: TLS to MySQL.
fn mysql_tls(v: &Values) -> Result<MysqlTls, ConfigError> {
    let t = MysqlTls {
        mode: choice(
            "mysql.ssl_mode",
            &v.get("mysql.ssl_mode").to_ascii_lowercase(),
            &[
                ("disabled", SslMode::Disabled),
                ("preferred", SslMode::Preferred),
                ("required", SslMode::Required),
                ("verify_ca", SslMode::VerifyCa),
                ("verify_identity", SslMode::VerifyIdentity),
            ],
            "disabled, preferred, required, verify_ca or verify_identity",
        )?,
        ca: v.path("mysql.ssl_ca"),
        cert: v.path("mysql.ssl_cert"),
        key: v.path("mysql.ssl_key"),
    };
    if matches!(t.mode, SslMode::VerifyCa | SslMode::VerifyIdentity) && t.ca.is_none() {
        return Err(ConfigError::BadValue {
                key: "mysql.ssl_ca".into(),
                value: String::new(),
                expected: "the PEM file of the server's CA: mysql.ssl_mode verify_ca and verify_identity check the server's certificate against it".into(),
            });
    }
    if t.cert.is_some() != t.key.is_some() {
        return Err(ConfigError::BadValue {
                key: if t.cert.is_some() { "mysql.ssl_key" } else { "mysql.ssl_cert" }.into(),
                value: String::new(),
                expected: "mysql.ssl_cert and mysql.ssl_key together (a client certificate and its key), or neither".into(),
            });
    }
    Ok(t)
}

/// `kafka.security.protocol=sasl_*` and `kafka.sasl.*`.
fn kafka_sasl(v: &Values) -> Result<Option<crate::kafka::sasl::SaslSettings>, ConfigError> {
    let sasl = matches!(
        v.get("kafka.security.protocol")
            .to_ascii_lowercase()
            .as_str(),
        "sasl_plaintext" | "sasl_ssl"
    );
    use crate::kafka::sasl::Mechanism as M;
    let mechanism = v.get("kafka.sasl.mechanism").to_ascii_uppercase();
    let mechanism = match mechanism.as_str() {
        "PLAIN" => Some(M::Plain),
        "SCRAM-SHA-256" => Some(M::ScramSha256),
        "SCRAM-SHA-512" => Some(M::ScramSha512),
        "OAUTHBEARER" => Some(M::OAuthBearer),
        "AWS_MSK_IAM" => Some(M::AwsMskIam),
        _ => None,
    };
    Ok(match (sasl, mechanism) {
            (false, _) => None,
            (true, None) => {
                return Err(ConfigError::BadValue {
                    key: "kafka.sasl.mechanism".into(),
                    value: v.get("kafka.sasl.mechanism"),
                    expected: "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM (kafka.security.protocol is sasl_*)".into(),
                })
            }
            (true, Some(mechanism)) => {
                let s = crate::kafka::sasl::SaslSettings {
                    mechanism,
                    username: v.get("kafka.sasl.username"),
                    password: secret(v.0, "kafka.sasl.password")?,
                    token_file: {
                        let t = v.get("kafka.sasl.oauthbearer.token_file");
                        (!t.is_empty()).then(|| std::path::PathBuf::from(t))
                    },
                };
                if mechanism == M::OAuthBearer && s.token_file.is_none() {
                    return Err(ConfigError::BadValue {
                        key: "kafka.sasl.oauthbearer.token_file".into(),
                        value: String::new(),
                        expected: "a file holding the OAuth token (kafka.sasl.mechanism=OAUTHBEARER)".into(),
                    });
                }
                if matches!(mechanism, M::Plain | M::ScramSha256 | M::ScramSha512) && s.username.is_empty() {
                    return Err(ConfigError::BadValue {
                        key: "kafka.sasl.username".into(),
                        value: String::new(),
                        expected: format!("the user to authenticate as (kafka.sasl.mechanism={})", mechanism.name()),
                    });
                }
                Some(s)
            }
        })
}

/// `kafka.security.protocol=ssl|sasl_ssl` and `kafka.ssl.*`.
fn kafka_tls(v: &Values) -> Result<Option<crate::kafka::tls::TlsSettings>, ConfigError> {
    let (ssl, _) = choice(
        "kafka.security.protocol",
        &v.get("kafka.security.protocol").to_ascii_lowercase(),
        &[
            ("plaintext", (false, false)),
            ("ssl", (true, false)),
            ("sasl_plaintext", (false, true)),
            ("sasl_ssl", (true, true)),
        ],
        "plaintext, ssl, sasl_plaintext or sasl_ssl",
    )?;
    let verify_name = choice(
        "kafka.ssl.endpoint.identification",
        &v.get("kafka.ssl.endpoint.identification")
            .to_ascii_lowercase(),
        &[("https", true), ("none", false), ("", false)],
        "https or none",
    )?;
    Ok(ssl.then(|| crate::kafka::tls::TlsSettings {
        ca: v.path("kafka.ssl.ca.location"),
        cert: v.path("kafka.ssl.certificate.location"),
        key: v.path("kafka.ssl.key.location"),
        verify_name,
    }))
}

/// `kafka.partition_by`.
fn partition_by(v: &Values) -> Result<PartitionBy, ConfigError> {
    Ok(match v.get("kafka.partition_by").as_str() {
        "primary_key" => PartitionBy::PrimaryKey,
        "table" => PartitionBy::Table,
        "database" => PartitionBy::Database,
        "random" => PartitionBy::Random,
        other => match other.strip_prefix("column:") {
            Some(c) if !c.is_empty() => PartitionBy::Column(c.to_string()),
            _ => {
                return Err(ConfigError::BadValue {
                    key: "kafka.partition_by".into(),
                    value: other.into(),
                    expected: "primary_key, table, database, column:NAME or random".into(),
                })
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir =
            std::env::temp_dir().join(format!("b2k-config-{}-{}", std::process::id(), text.len()));
        std::fs::write(&dir, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let r = Config::load(Some(&dir), env);
        std::fs::remove_file(&dir).ok();
        r
    }

    #[test]
    fn a_secret_may_come_from_a_file_and_is_never_shown() {
        let path = std::env::temp_dir().join(format!("b2k-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cr3t-from-file\n").unwrap();
        let p = path.to_str().unwrap();
        let c = load_text("", &[("B2K_MYSQL_PASSWORD_FILE", p)]).unwrap();
        assert_eq!(
            c.mysql_password, "s3cr3t-from-file",
            "the newline is dropped"
        );
        let both = load_text(
            "mysql.password = inline-secret\n",
            &[("B2K_MYSQL_PASSWORD_FILE", p)],
        )
        .unwrap_err()
        .to_string();
        assert!(both.contains("not both"), "{both}");
        assert!(
            !both.contains("inline-secret") && !both.contains("s3cr3t"),
            "{both}"
        );
        std::fs::remove_file(&path).unwrap();
        let gone = load_text("", &[("B2K_MYSQL_PASSWORD_FILE", p)])
            .unwrap_err()
            .to_string();
        assert!(
            gone.contains("mysql.password_file") && gone.contains("readable file"),
            "{gone}"
        );
    }

    #[test]
    fn reads_properties_with_comments_and_defaults() {
        let c = load_text(
            "# a comment\n! another\nmysql.host = db.example\nmysql.port: 3307\nkafka.topic cdc\n\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.mysql_hosts[0], ("db.example".to_string(), 3307));
        assert_eq!(c.topic, "cdc");
        assert_eq!(c.commit_topic, "binlog2kafka_commits");
        assert_eq!(c.schema_topic, "binlog2kafka_commits_schema");
        assert_eq!(c.start_position, StartPosition::Latest);
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load_text(
            "mysql.host = a\n",
            &[
                ("B2K_MYSQL_HOST", "b"),
                ("B2K_PIPELINE_NAME", "orders"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(c.mysql_hosts[0].0, "b");
        assert_eq!(c.pipeline_name, "orders");
        // Keys whose second part has underscores map back exactly.
        let c = load_text("", &[("B2K_MYSQL_SERVER_ID", "77")]).unwrap();
        assert_eq!(c.server_id, 77);
    }

    #[test]
    fn unknown_key_is_named_with_a_suggestion() {
        let e = load_text("mysql.hots = x\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown config key `mysql.hots`"), "{e}");
        assert!(e.contains(":1"), "names the line: {e}");
        assert!(e.contains("did you mean `mysql.host`"), "{e}");
        let e = load_text("", &[("B2K_KAFKA_TOPICS", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("B2K_KAFKA_TOPICS"), "{e}");
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let e = load_text("mysql.port = 99999\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql.port") && e.contains("1 to 65535"), "{e}");
        let e = load_text("start.position = yesterday\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("earliest, latest, FILE:POS"), "{e}");
        let e = load_text("kafka.compression = zstd\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("none, gzip or snappy"), "{e}");
        let e = load_text("kafka.topic = a/b\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("kafka.topic"), "{e}");
    }

    #[test]
    fn start_position_forms() {
        assert_eq!(parse_start("earliest").unwrap(), StartPosition::Earliest);
        assert_eq!(
            parse_start("binlog.000003:1234").unwrap(),
            StartPosition::At {
                file: "binlog.000003".into(),
                pos: 1234
            }
        );
        assert!(parse_start("binlog.000003:").is_err());
        assert!(parse_start(":4").is_err());
    }

    #[test]
    fn properties_are_read_as_java_reads_them() {
        let c = load_text(
            "\u{feff}mysql.port = 3307\n\
             mysql.host db.example\n\
             mysql.user\t:\treplicator\n\
             mysql.password = \\ secret with spaces  \n\
             kafka.topic = cdc.\\\n    orders\n\
             kafka.client_id = a#b!c\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.mysql_hosts[0].1, 3307,
            "a BOM is not part of the first key"
        );
        assert_eq!(c.mysql_hosts[0].0, "db.example", "white space separates");
        assert_eq!(c.mysql_user, "replicator");
        assert_eq!(
            c.mysql_password, " secret with spaces  ",
            "an escaped leading space and trailing spaces are kept"
        );
        assert_eq!(
            c.topic, "cdc.orders",
            "a trailing backslash continues the line"
        );
        assert_eq!(c.client_id, "a#b!c", "# and ! inside a value are text");
        let e = load_text("mysql.port = 3306 # the default\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`3306 # the default`") && e.contains("only at the start of a line"),
            "{e}"
        );
        let c = load_text("mysql.port = 1\nmysql.port = 2\n", &[]).unwrap();
        assert_eq!(c.mysql_hosts[0].1, 2);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("mysql.port is set again (first at line 1)")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn harmful_settings_are_refused_with_one_line_each() {
        let refused = |text: &str, needles: &[&str]| {
            let e = load_text(text, &[]).unwrap_err().to_string();
            for n in needles {
                assert!(e.contains(n), "{text:?}: {e}");
            }
        };
        refused(
            "kafka.topic = cdc\nkafka.commit_topic = cdc\n",
            &["kafka.commit_topic", "compact"],
        );
        refused(
            "kafka.topic = cdc.{database}.{table}\nkafka.commit_topic = cdc.x.commits\n",
            &["kafka.commit_topic", "kafka.topic"],
        );
        refused(
            "kafka.ddl_topic = d\nkafka.commit_topic = d\n",
            &["kafka.ddl_topic"],
        );
        refused(
            "kafka.topic = cdc.{table}\nkafka.schema_topic = cdc.history\n",
            &["kafka.schema_topic", "kafka.topic", "schema history"],
        );
        refused(
            "kafka.schema_topic = c\nkafka.commit_topic = c\n",
            &["kafka.schema_topic", "kafka.commit_topic"],
        );
        refused("mysql.timeout_ms = 300\n", &["mysql.timeout_ms", "1000 to"]);
        refused(
            "pipeline.heartbeat_interval_ms = 1\n",
            &["pipeline.heartbeat_interval_ms", "100 to"],
        );
        refused("filter.exclude = *.*\n", &["filter.exclude", "every table"]);
        refused("filter.exclude = /.*/\n", &["every table"]);
        refused(
            "output.tombstones = true\n",
            &["output.tombstones", "output.format=debezium"],
        );
        load_text("filter.exclude = shop.*\n", &[]).expect("a partial exclude is fine");
        load_text("output.format = debezium\noutput.tombstones = true\n", &[])
            .expect("tombstones with debezium");
    }

    #[test]
    fn missing_file_is_named() {
        let e = Config::load(Some(Path::new("/nonexistent/b2k.properties")), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/b2k.properties"), "{e}");
    }

    #[test]
    fn readme_documents_every_key_with_its_default() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for k in KEYS {
            let default = if k.default.is_empty() {
                "(empty)".to_string()
            } else {
                format!("`{}`", k.default)
            };
            let row = format!("| `{}` | {} |", k.name, default);
            assert!(
                readme.contains(&row),
                "README's key table lacks the row starting {row}"
            );
        }
    }

    #[test]
    fn example_config_lists_every_key() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/conf/binlog2kafka.properties"
        ))
        .unwrap();
        let keys: Vec<String> = parse_properties(&text, "example")
            .unwrap()
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        for k in KEYS {
            assert!(
                keys.iter().any(|x| x == k.name),
                "conf/binlog2kafka.properties lacks {}",
                k.name
            );
        }
        load_text(&text, &[]).expect("the example config is valid");
    }
}
