//! The two things the binary does: `run` the pipeline, and `check` the
//! configuration and the servers. Both return typed errors; `main` turns
//! them into one line and an exit code.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::checkpoint;
use crate::config::{Config, ConfigError};
use crate::event::Position;
use crate::kafka::{Client, ClientConfig, KafkaError};
use crate::pipeline::{producer, watcher, PipelineError, Shared};
use crate::source::{self, reader, ServerInfo, SourceError};

/// Every way the daemon can fail, one variant per boundary.
#[derive(Debug)]
pub enum AppError {
    Config(ConfigError),
    Source(SourceError),
    Kafka {
        during: String,
        err: KafkaError,
    },
    Pipeline(PipelineError),
    Replay(crate::replay::ReplayError),
    /// The status page cannot be served (`http.listen`).
    Status(String),
    /// A command that would harm a running pipeline, refused.
    Refused(String),
    /// SIGTERM or SIGINT before the pipeline started: nothing to flush.
    Interrupted,
    /// The stop did not finish within `pipeline.shutdown_timeout_ms`.
    StopTimeout {
        ms: u128,
        waiting_for: String,
    },
    /// Another daemon is running this pipeline.
    Locked {
        pipeline: String,
        owner: String,
        age_ms: u64,
    },
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Config(e) => write!(f, "{e}"),
            AppError::Source(e) => write!(f, "{e}"),
            AppError::Kafka { during, err } => write!(f, "{during}: {err}"),
            AppError::Pipeline(e) => write!(f, "{e}"),
            AppError::Replay(e) => write!(f, "{e}"),
            AppError::Status(e) | AppError::Refused(e) => write!(f, "{e}"),
            AppError::Interrupted => write!(f, "stopped by a signal during start-up"),
            AppError::StopTimeout { ms, waiting_for } => write!(
                f,
                "stop timed out after {ms} ms (pipeline.shutdown_timeout_ms) waiting for {waiting_for}; changes not acknowledged stay after the checkpoint and are sent again on restart"
            ),
            AppError::Locked { pipeline, owner, age_ms } => write!(
                f,
                "pipeline '{pipeline}' is already running ({owner}, last heartbeat {:.1} s ago); two daemons must not share a pipeline.name: stop the other one or choose another name",
                *age_ms as f64 / 1000.0
            ),
        }
    }
}

impl std::error::Error for AppError {}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        AppError::Config(e)
    }
}
impl From<SourceError> for AppError {
    fn from(e: SourceError) -> Self {
        AppError::Source(e)
    }
}
impl From<PipelineError> for AppError {
    fn from(e: PipelineError) -> Self {
        AppError::Pipeline(e)
    }
}

fn kafka(during: &str) -> impl FnOnce(KafkaError) -> AppError + '_ {
    move |err| AppError::Kafka {
        during: during.to_string(),
        err,
    }
}

pub fn kafka_client(cfg: &Config, role: &str) -> Result<Client, KafkaError> {
    let tls = match &cfg.kafka_tls {
        None => None,
        Some(t) => Some(t.build().map_err(|detail| KafkaError::Tls {
            broker: cfg.brokers.join(","),
            detail,
        })?),
    };
    Client::connect(ClientConfig {
        tls,
        sasl: cfg.kafka_sasl.clone(),
        brokers: cfg.brokers.clone(),
        client_id: format!("{}-{role}", cfg.client_id),
        timeout: cfg.kafka_timeout,
        request_timeout: cfg.kafka_timeout,
        compression: cfg.compression,
    })
}

/// What `check` found, printed line by line.
pub struct CheckReport {
    pub lines: Vec<String>,
    pub ok: bool,
}

/// Validates the servers for `cfg` without changing anything.
pub fn check(cfg: &Config) -> CheckReport {
    let mut lines = Vec::new();
    let mut ok = true;
    let mut fail = |lines: &mut Vec<String>, what: &str, e: &dyn fmt::Display| {
        lines.push(format!("FAIL {what}: {e}"));
        ok = false;
    };
    lines.push(format!(
        "ok   config: pipeline '{}', topic {}, commit topic {}",
        cfg.pipeline_name, cfg.topic, cfg.commit_topic
    ));
    let mut binlogs = Vec::new();
    let mut first_server_id = None;
    let mut checkpoint_state = None;
    let mut reachable = 0usize;
    // The server of mysql.host that answered first: the checks of the
    // position below are of it.
    let mut answered: Option<Config> = None;
    let first = source::connect_first(cfg)
        .and_then(|(mut c, used)| source::check_server(&mut c, &used).map(|info| (info, used)));
    match first {
        Ok((info, used)) => {
            // Every finding of this section is of the server that answered
            // (after a failover the first of mysql.host is often down),
            // under its own address.
            answered = Some(used.clone());
            let cfg = &used;
            first_server_id = Some(info.server_id);
            lines.push(format!(
                "ok   mysql {}:{}: {} (server_id {}), binlog_format={}, binlog_row_image={}, binlog_row_metadata={}, gtid: {}",
                cfg.mysql_host,
                cfg.mysql_port,
                info.version,
                info.server_id,
                info.binlog_format,
                info.row_image,
                if info.row_metadata.is_empty() { "(none)" } else { &info.row_metadata },
                info.gtid_mode
            ));
            if !info.row_metadata.eq_ignore_ascii_case("FULL") {
                lines.push("warn binlog_row_metadata is not FULL: column names come from information_schema and may be wrong for rows written before an ALTER TABLE; set binlog_row_metadata=FULL".into());
            }
            lines.push(format!(
                "ok   privileges of '{}': replication and SELECT; {} binlog files on the server ({} .. {})",
                cfg.mysql_user,
                info.binlogs.len(),
                info.binlogs.first().map(|b| b.0.as_str()).unwrap_or("-"),
                info.binlogs.last().map(|b| b.0.as_str()).unwrap_or("-")
            ));
            binlogs = info.binlogs;
            match source::connect(cfg).map(|mut c| source::tls::session(&mut c)) {
                Ok(Some(t)) => {
                    let now = crate::checkpoint::now_ms() as i64 / 1000;
                    // The certificate as the server presents it; else the
                    // expiry the server reports of itself.
                    let (subject, days) = match source::tls::server_certificate(
                        &cfg.mysql_host,
                        cfg.mysql_port,
                        cfg.mysql_timeout,
                    ) {
                        Ok((cn, expires)) => (
                            format!("CN={cn}, valid until {}", crate::tls::date(expires)),
                            Some((expires - now).div_euclid(86_400)),
                        ),
                        Err(_) => (
                            format!(
                                "valid until {}",
                                if t.not_after.is_empty() {
                                    "(not reported)"
                                } else {
                                    &t.not_after
                                }
                            ),
                            source::tls::days_left(&t.not_after, now),
                        ),
                    };
                    let soon = days.is_some_and(|d| d < 30);
                    lines.push(format!(
                        "{} mysql TLS: {} {}; server certificate {subject}{} (mysql.ssl_mode={})",
                        if soon { "warn" } else { "ok  " },
                        t.version,
                        t.cipher,
                        match days {
                            Some(d) if d < 30 => format!(", {d} days left: renew it soon"),
                            Some(d) => format!(", {d} days left"),
                            None => String::new(),
                        },
                        cfg.mysql_tls.mode.name()
                    ));
                }
                Ok(None) => lines.push(format!(
                    "{} mysql: plaintext (mysql.ssl_mode={}{})",
                    if cfg.mysql_tls.mode == crate::config::SslMode::Disabled {
                        "ok  "
                    } else {
                        "warn"
                    },
                    cfg.mysql_tls.mode.name(),
                    if cfg.mysql_tls.mode == crate::config::SslMode::Preferred {
                        ": the server offers no TLS"
                    } else {
                        ""
                    }
                )),
                Err(e) => fail(&mut lines, "mysql TLS", &e),
            }
            match source::connect(cfg).and_then(|mut c| source::ensure_unique_server_id(&mut c, cfg)) {
                Ok(true) => lines.push(format!("ok   mysql.server_id {}: no other replica uses it", cfg.server_id)),
                Ok(false) => lines.push(format!("warn mysql.server_id {}: cannot list the server's replicas (SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB 10.5+), so a clash would only show when the server drops one", cfg.server_id)),
                Err(e) => fail(&mut lines, "mysql.server_id", &e),
            }
        }
        Err(e) => fail(&mut lines, "mysql", &e),
    }
    match kafka_client(cfg, "check") {
        Ok(mut client) => {
            lines.push(format!(
                "ok   kafka {}: reachable, protocol versions negotiated (Kafka 2.1+ floor)",
                cfg.brokers.join(",")
            ));
            match client.tls_session() {
                Ok(Some(t)) => {
                    let now = crate::checkpoint::now_ms() as i64 / 1000;
                    let (subject, expires) = t.peer.clone().unwrap_or_default();
                    let days = (expires - now) / 86_400;
                    let level = if days < 30 { "warn" } else { "ok  " };
                    let trust = cfg
                        .kafka_tls
                        .as_ref()
                        .and_then(|s| s.build().ok())
                        .map(|t| t.trust)
                        .unwrap_or_default();
                    lines.push(format!(
                        "{level} kafka TLS: {}; broker certificate CN={subject}, expires in {days} days{}; trusting {trust}{}",
                        t.negotiated,
                        if days < 30 { " (renew it soon)" } else { "" },
                        if cfg.kafka_tls.as_ref().is_some_and(|s| !s.verify_name) { "; the broker's name is NOT checked (kafka.ssl.endpoint.identification=none)" } else { "" }
                    ));
                }
                Ok(None) => {
                    lines.push("ok   kafka: plaintext (kafka.security.protocol=plaintext)".into())
                }
                Err(e) => lines.push(format!("warn kafka TLS: {e}")),
            }
            if let Some(s) = &cfg.kafka_sasl {
                lines.push(format!(
                    "{} kafka SASL: {} authentication succeeded{}{}",
                    if s.mechanism == crate::kafka::sasl::Mechanism::Plain
                        && cfg.kafka_tls.is_none()
                    {
                        "warn"
                    } else {
                        "ok  "
                    },
                    s.mechanism.name(),
                    if s.username.is_empty() {
                        String::new()
                    } else {
                        format!(" as {}", s.username)
                    },
                    if s.mechanism == crate::kafka::sasl::Mechanism::Plain
                        && cfg.kafka_tls.is_none()
                    {
                        "; PLAIN without TLS sends the password in the clear: use sasl_ssl"
                    } else {
                        ""
                    }
                ));
            }
            // Which duplicate guarantees hold against this broker.
            match client.init_producer_id() {
                Ok(Some(_)) => lines.push("ok   kafka: idempotent producer (InitProducerId): a batch sent again after a lost answer is stored once".into()),
                Ok(None) => lines.push("warn kafka: the broker offers no InitProducerId: a batch sent again after a lost answer may be stored twice".into()),
                Err(e) => lines.push(format!("warn kafka: no idempotent producer ({e}): a batch sent again after a lost answer may be stored twice")),
            }
            // Only asked, not taken: taking the transactional id would fence
            // a daemon that runs now.
            match client.offers_transactions() {
                Ok(true) => lines.push(format!("ok   kafka: fencing by the broker (transactional id binlog2kafka-{}): a paused daemon cannot write after its successor took over, and a takeover need not wait for its lease", cfg.pipeline_name)),
                Ok(false) => lines.push("warn kafka: the broker offers no transactions: a paused daemon is kept from writing by its lease alone (checked before every send), and a takeover waits 3 heartbeats".into()),
                Err(e) => lines.push(format!("warn kafka: cannot tell whether the broker fences ({e})")),
            }
            if matches!(cfg.partition_by, crate::config::PartitionBy::Random) {
                lines.push("warn kafka.partition_by=random: rows read again after a crash cannot be matched with what Kafka holds and may be sent twice".into());
            }
            if cfg.snapshot_mode != crate::config::SnapshotMode::Never {
                lines.push(format!(
                    "ok   snapshot.mode={}: existing rows are read on the pipeline's first start{}",
                    if cfg.snapshot_mode == crate::config::SnapshotMode::Initial {
                        "initial"
                    } else {
                        "when_needed"
                    },
                    if cfg.snapshot_mode == crate::config::SnapshotMode::WhenNeeded {
                        ", and again when its binlog was purged"
                    } else {
                        ""
                    }
                ));
            }
            match checkpoint::read_latest(&mut client, &cfg.commit_topic, &cfg.pipeline_name) {
                Ok(Some(rec)) => {
                    lines.push(format!(
                        "ok   checkpoint: {}{} (written {} ms since epoch)",
                        rec.position(),
                        rec.gtid_state
                            .as_ref()
                            .map(|s| format!(", GTID state {s}"))
                            .unwrap_or_default(),
                        rec.ts_ms
                    ));
                    let elsewhere = rec.file.is_empty()
                        || rec
                            .file_id
                            .is_some_and(|id| Some(id.server_id) != first_server_id);
                    let there = answered.as_ref().unwrap_or(cfg);
                    if !binlogs.is_empty() && !elsewhere {
                        let cfg = there;
                        let valid = source::connect(cfg).and_then(|mut c| {
                            source::ensure_event_start(
                                &mut c,
                                cfg,
                                &rec.file,
                                rec.pos,
                                "the checkpoint",
                            )
                        });
                        if let Err(e) = valid {
                            fail(&mut lines, "checkpoint", &e);
                        }
                    }
                    let plan = rec.snapshot.clone().unwrap_or_default();
                    match source::snapshot::pending_requests(
                        &mut client,
                        &cfg.commit_topic,
                        &cfg.pipeline_name,
                        plan.requests_from,
                    ) {
                        Ok(p) => {
                            let p: Vec<_> = p
                                .into_iter()
                                .filter(|r| !plan.taken.contains(&r.id))
                                .collect();
                            if !p.is_empty() {
                                lines.push(format!(
                                    "warn snapshot requests waiting for the pipeline: {}",
                                    p.iter()
                                        .map(|r| format!(
                                            "{} ({}{})",
                                            r.id,
                                            r.tables.join(", "),
                                            r.condition
                                                .as_deref()
                                                .map(|c| format!(" where {c}"))
                                                .unwrap_or_default()
                                        ))
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                ));
                            }
                        }
                        Err(e) => {
                            lines.push(format!("warn snapshot requests: cannot read them: {e}"))
                        }
                    }
                    checkpoint_state = Some(rec);
                }
                Ok(None) => {
                    let by_gtid =
                        matches!(cfg.start_position, crate::config::StartPosition::Gtid(_));
                    let there = answered.as_ref().unwrap_or(cfg);
                    let valid = (!binlogs.is_empty() && !by_gtid).then(|| {
                        let cfg = there;
                        source::connect(cfg).and_then(|mut c| {
                            let (file, pos) = source::resolve_start(&mut c, cfg, &binlogs)?;
                            source::ensure_event_start(&mut c, cfg, &file, pos, "start.position")
                        })
                    });
                    match valid {
                        Some(Err(e)) => fail(&mut lines, "start.position", &e),
                        _ => lines.push(format!(
                            "ok   checkpoint: none yet for '{}'; will start at start.position={}",
                            cfg.pipeline_name,
                            start_text(&cfg.start_position)
                        )),
                    }
                }
                Err(e) => fail(&mut lines, "reading the checkpoint", &e),
            }
        }
        Err(e) => fail(&mut lines, "kafka", &e),
    }
    if cfg.mysql_hosts.len() > 1 {
        let mut resumable = 0usize;
        for (host, port) in &cfg.mysql_hosts {
            let s = server_line(&cfg.with_source(host, *port), checkpoint_state.as_ref());
            lines.push(s.line);
            // A server of several away, or one the pipeline cannot resume
            // on, is a warning (after a failover the first is usually
            // down); none to resume on fails.
            reachable += usize::from(s.reachable);
            resumable += usize::from(s.resumable);
        }
        if reachable == 0 {
            fail(
                &mut lines,
                "mysql.host",
                &"no server of the list is reachable",
            );
        } else if resumable == 0 {
            fail(
                &mut lines,
                "mysql.host",
                &"no server of the list can resume the pipeline from its checkpoint (see the server lines above)",
            );
        }
    }
    CheckReport { lines, ok }
}

/// `check`'s line for one server of `mysql.host`: reachable or not, its role
/// (primary, read-only, replica of whom), its GTID state, and whether the
/// pipeline could resume on it from `rec`.
fn server_line(cfg: &Config, rec: Option<&checkpoint::Record>) -> Server {
    use mysql::prelude::Queryable;
    let addr = format!("{}:{}", cfg.mysql_host, cfg.mysql_port);
    let mut c = match source::connect(cfg) {
        Ok(c) => c,
        Err(e) => {
            return Server {
                reachable: false,
                resumable: false,
                line: format!("warn server {addr}: {e}"),
            }
        }
    };
    // MariaDB refuses to parse a query that names MySQL's variable.
    let mariadb = c
        .query_first::<String, _>("SELECT VERSION()")
        .ok()
        .flatten()
        .is_some_and(|v| v.to_ascii_lowercase().contains("mariadb"));
    let row: Option<(u32, String, String)> = c
        .query_first(if mariadb {
            "SELECT @@server_id, CAST(@@read_only AS CHAR), @@gtid_binlog_pos"
        } else {
            "SELECT @@server_id, CAST(@@read_only AS CHAR), @@gtid_executed"
        })
        .ok()
        .flatten();
    let Some((server_id, read_only, state)) = row else {
        return Server {
            reachable: true,
            resumable: false,
            line: format!("warn server {addr}: reachable, but its variables cannot be read"),
        };
    };
    let role = match c.query_first::<mysql::Row, _>("SHOW SLAVE STATUS") {
        Ok(Some(r)) => format!(
            "replica of {}:{}",
            r.get::<String, _>("Master_Host").unwrap_or_default(),
            r.get::<u32, _>("Master_Port").unwrap_or_default()
        ),
        Ok(None) if read_only == "0" || read_only.eq_ignore_ascii_case("OFF") => "primary".into(),
        Ok(None) => "read-only, replicating from no one".into(),
        Err(_) => format!(
            "{} (its replication is not visible: SHOW SLAVE STATUS needs SLAVE MONITOR)",
            if read_only == "0" {
                "writable"
            } else {
                "read-only"
            }
        ),
    };
    let resume = match rec {
        None => (true, "no checkpoint yet".to_string()),
        Some(r) if r.file_id.is_some_and(|id| id.server_id == server_id) => {
            (true, "the pipeline reads it (by file position)".into())
        }
        Some(r) => match r.gtid_state.as_deref().map(crate::gtid::GtidState::parse) {
            Some(Ok(crate::gtid::GtidState::Maria(ours))) => {
                let theirs: String = c
                    .query_first("SELECT @@GLOBAL.gtid_binlog_state")
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                match crate::gtid::maria_plan(&ours, &crate::gtid::maria_list(&theirs)) {
                    crate::gtid::MariaPlan::Resume { lost, .. } if lost.is_empty() => (
                        true,
                        format!("the pipeline could resume here by GTID after {}", ours.position()),
                    ),
                    crate::gtid::MariaPlan::Resume { lost, .. } => (true, format!(
                        "the pipeline could resume here by GTID, but it lacks {} that the pipeline already published",
                        lost.join(", ")
                    )),
                    crate::gtid::MariaPlan::Errant(e) => (false, format!(
                        "the pipeline could NOT resume here: errant transactions {}",
                        e.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",")
                    )),
                    crate::gtid::MariaPlan::Skipped(e) => (false, format!(
                        "the pipeline could NOT resume here: it holds {}, never read by the pipeline, before the resume point",
                        e.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",")
                    )),
                    crate::gtid::MariaPlan::Unrelated(g) => (false, format!(
                        "the pipeline could NOT resume here: no transaction of server_id {} in domain {}",
                        g.server, g.domain
                    )),
                }
            }
            Some(Ok(crate::gtid::GtidState::Mysql(ours))) => {
                let purged: String = c
                    .query_first("SELECT @@GLOBAL.gtid_purged")
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let missing = crate::gtid::MysqlSet::parse(&purged)
                    .unwrap_or_default()
                    .minus(&ours);
                if missing.is_empty() {
                    (true, "the pipeline could resume here by GTID".into())
                } else {
                    (
                        false,
                        format!("the pipeline could NOT resume here: it purged {missing}"),
                    )
                }
            }
            _ => (
                false,
                "the pipeline could NOT resume here: the checkpoint has no GTID state".into(),
            ),
        },
    };
    let (resumable, resume) = resume;
    // Off by default on MariaDB: a write made on a replica can then sit
    // behind later transactions of its domain, which a failover would skip
    // (the pipeline refuses such a server; README, "Failover").
    let strict: Option<String> = if mariadb {
        c.query_first("SELECT CAST(@@gtid_strict_mode AS CHAR)")
            .ok()
            .flatten()
    } else {
        None
    };
    let lax = strict.is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("OFF"));
    Server {
        reachable: true,
        resumable,
        line: format!(
            "{} server {addr}: server_id {server_id}, {role}, GTID {}; {resume}{}",
            if resumable && !lax { "ok  " } else { "warn" },
            if state.is_empty() { "(none)" } else { &state },
            if lax {
                "; gtid_strict_mode=OFF: a transaction written on it while it replicates can sit behind later ones of its domain, and the pipeline then refuses to fail over to it (set gtid_strict_mode=ON)"
            } else {
                ""
            }
        ),
    }
}

/// What `check` found of one server of `mysql.host`.
struct Server {
    reachable: bool,
    /// Whether the pipeline could resume on it from its checkpoint.
    resumable: bool,
    line: String,
}

/// `binlog2kafka reset`: removes the pipeline's checkpoint (a tombstone for
/// its key in the commit-log topic), so the next start begins at
/// `start.position`. Refused while a daemon holds the pipeline's lease.
pub fn reset(cfg: &Config) -> Result<String, AppError> {
    let mut admin = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    let latest = checkpoint::read_latest(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("reading the checkpoint"))?;
    let Some(rec) = latest else {
        return Ok(format!(
            "pipeline '{}' has no checkpoint in {}: nothing to reset; it starts at start.position",
            cfg.pipeline_name, cfg.commit_topic
        ));
    };
    let lease_ms = 3 * cfg.heartbeat_interval.as_millis() as u64;
    let age = checkpoint::now_ms().saturating_sub(rec.ts_ms);
    if !rec.released && !rec.owner.is_empty() && age < lease_ms {
        return Err(AppError::Refused(format!(
            "pipeline '{}' is held by {} (last heartbeat {:.1} s ago): stop that daemon before resetting it (if it died, its lease runs out {:.1} s after its last heartbeat)",
            cfg.pipeline_name,
            rec.owner,
            age as f64 / 1000.0,
            lease_ms as f64 / 1000.0
        )));
    }
    checkpoint::write_tombstone(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("writing the reset to the commit-log topic"))?;
    Ok(format!(
        "pipeline '{}' reset: its checkpoint {} is removed from {}; the next start begins at start.position ({})",
        cfg.pipeline_name,
        rec.position(),
        cfg.commit_topic,
        start_text(&cfg.start_position)
    ))
}

/// `binlog2kafka snapshot`: writes a snapshot request into the commit-log
/// topic, where the running daemon looks for them, and waits up to `wait`
/// for its answer.
pub fn request_snapshot(
    cfg: &Config,
    tables: &[String],
    condition: Option<String>,
    wait: Duration,
) -> Result<String, AppError> {
    use source::snapshot::{ack_key, condition::Condition, request_key, Ack, Request};
    // Refused here before anything is written; the daemon checks it again
    // against each table's columns (the topic is not trusted).
    if let Some(c) = &condition {
        Condition::parse(c).map_err(|e| {
            AppError::Refused(format!(
                "--where refused: {e}. A condition is a boolean expression over the table's own columns: comparisons, AND/OR/NOT, IN (...), BETWEEN, LIKE, IS [NOT] NULL, 'strings', numbers and a few pure functions"
            ))
        })?;
    }
    let mut admin = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    // A pipeline that never ran looks for requests from its first start on:
    // its first snapshot is snapshot.mode's.
    if checkpoint::read_latest(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("reading the checkpoint"))?
        .is_none()
    {
        return Err(AppError::Refused(format!(
            "pipeline '{}' has no checkpoint in {}: it has never run (or was reset), so there is no running pipeline to ask; for its first start, set snapshot.mode=initial",
            cfg.pipeline_name, cfg.commit_topic
        )));
    }
    let id = checkpoint::instance_id()
        .split('/')
        .take(3)
        .collect::<Vec<_>>()
        .join("-");
    let req = Request {
        id: id.clone(),
        tables: tables.to_vec(),
        condition,
        requested_ms: checkpoint::now_ms(),
    };
    let at = admin
        .produce(
            &cfg.commit_topic,
            0,
            &[crate::kafka::OutRecord {
                key: Some(request_key(&cfg.pipeline_name, &id).into_bytes().into()),
                value: Some(serde_json::to_vec(&req).expect("serializes").into()),
                timestamp_ms: req.requested_ms as i64,
                headers: Vec::new(),
            }],
        )
        .map_err(kafka("writing the snapshot request"))?;
    let want = ack_key(&cfg.pipeline_name, &id);
    let deadline = std::time::Instant::now() + wait;
    let mut from = at + 1;
    while std::time::Instant::now() < deadline {
        let recs = admin
            .fetch(&cfg.commit_topic, 0, from, 1 << 20)
            .map_err(kafka("waiting for the daemon's answer"))?;
        for r in &recs {
            if r.key.as_deref() == Some(want.as_bytes()) {
                let ack: Ack = r
                    .value
                    .as_deref()
                    .and_then(|v| serde_json::from_slice(v).ok())
                    .ok_or_else(|| AppError::Refused("the daemon's answer is unreadable".into()))?;
                let mut said = format!(
                    "snapshot request {id} taken by {} for pipeline '{}': {}",
                    ack.owner,
                    cfg.pipeline_name,
                    if ack.tables.is_empty() {
                        "no table to read".to_string()
                    } else {
                        ack.tables.join(", ")
                    }
                );
                if !ack.refused.is_empty() {
                    said.push_str(&format!("; not read: {}", ack.refused.join("; ")));
                }
                said.push_str("; progress on the status page and in its log");
                return if ack.tables.is_empty() {
                    Err(AppError::Refused(said))
                } else {
                    Ok(said)
                };
            }
        }
        match recs.last() {
            Some(r) => from = r.offset + 1,
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Err(AppError::Refused(format!(
        "no running binlog2kafka took snapshot request {id} for pipeline '{}' within {} s; it stays in {} and the pipeline takes it when it next runs",
        cfg.pipeline_name,
        wait.as_secs(),
        cfg.commit_topic
    )))
}

fn start_text(p: &crate::config::StartPosition) -> String {
    match p {
        crate::config::StartPosition::Earliest => "earliest".to_string(),
        crate::config::StartPosition::Latest => "latest".to_string(),
        crate::config::StartPosition::At { file, pos } => format!("{file}:{pos}"),
        crate::config::StartPosition::Gtid(s) => format!("gtid:{s}"),
    }
}

/// The newest checkpoint belongs to another instance that has not released
/// it. Waits until its lease (3 heartbeats since its last record) runs out:
/// if it writes again meanwhile it is alive, and this start is refused;
/// otherwise it died without releasing (kill -9, power loss) and this
/// instance takes over from its newest checkpoint.
///
/// Where the broker fences (`fences`), an owner on another host is taken
/// over once it has missed one heartbeat: the epoch bump makes the takeover
/// safe even if it still runs, and one missed heartbeat tells a dead owner
/// from a live one, so two daemons started by mistake do not take the
/// pipeline from each other in turn.
fn wait_for_lease(
    admin: &mut Client,
    cfg: &Config,
    mut rec: checkpoint::Record,
    signals: &Signals,
    fences: bool,
) -> Result<Option<checkpoint::Record>, AppError> {
    let lease_ms = if fences && !checkpoint::owner_runs_here(&rec.owner) {
        cfg.heartbeat_interval.as_millis() as u64 + 1000
    } else {
        3 * cfg.heartbeat_interval.as_millis() as u64
    };
    let first_seen = rec.ts_ms;
    let age = checkpoint::now_ms().saturating_sub(rec.ts_ms);
    if checkpoint::owner_gone_here(&rec.owner) {
        log::warn!(
            "pipeline '{}' was not released by {}, which no longer runs on this host (killed, or crashed); taking over from its checkpoint at once",
            cfg.pipeline_name,
            rec.owner
        );
        return Ok(Some(rec));
    }
    if age >= lease_ms {
        log::warn!(
            "pipeline '{}' was not released by {} (last heartbeat {:.1} s ago); taking over from its checkpoint",
            cfg.pipeline_name,
            rec.owner,
            age as f64 / 1000.0
        );
        return Ok(Some(rec));
    }
    log::info!(
        "pipeline '{}' is held by {} (last heartbeat {:.1} s ago); waiting up to {:.1} s to see whether it is still running",
        cfg.pipeline_name,
        rec.owner,
        age as f64 / 1000.0,
        (lease_ms - age) as f64 / 1000.0
    );
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if signals.stop_requested() {
            return Err(AppError::Interrupted);
        }
        let newest = checkpoint::read_latest(admin, &cfg.commit_topic, &cfg.pipeline_name)
            .map_err(kafka("reading the checkpoint"))?;
        match newest {
            Some(n) if n.released => return Ok(Some(n)),
            Some(n) if n.ts_ms > first_seen => {
                return Err(AppError::Locked {
                    pipeline: cfg.pipeline_name.clone(),
                    owner: n.owner.clone(),
                    age_ms: checkpoint::now_ms().saturating_sub(n.ts_ms),
                })
            }
            Some(n) => rec = n,
            None => return Ok(None),
        }
        let age = checkpoint::now_ms().saturating_sub(rec.ts_ms);
        if age >= lease_ms {
            log::warn!(
                "{} stopped without releasing pipeline '{}' (no heartbeat for {:.1} s); taking over from its checkpoint",
                rec.owner,
                cfg.pipeline_name,
                age as f64 / 1000.0
            );
            return Ok(Some(rec));
        }
    }
}

/// The data topic's partition count, creating the topic if it is missing.
fn data_topic(admin: &mut Client, cfg: &Config) -> Result<usize, AppError> {
    Ok(
        match admin
            .partitions(&cfg.topic)
            .map_err(kafka("reading data topic metadata"))?
        {
            Some(n) => n,
            None => {
                admin
                    .create_topic(
                        &cfg.topic,
                        cfg.topic_partitions,
                        cfg.replication_factor,
                        &[],
                    )
                    .map_err(kafka("creating the data topic"))?;
                log::info!(
                    "created data topic {} (partitions: {})",
                    cfg.topic,
                    cfg.topic_partitions
                );
                admin
                    .partitions(&cfg.topic)
                    .map_err(kafka("reading data topic metadata"))?
                    .unwrap_or(cfg.topic_partitions as usize)
            }
        },
    )
}

/// `replay` into the data topic: the files' rows through the same producer
/// (batches, partitioning, retries) as a live run. It writes no checkpoint:
/// a replay is one pass over the files given.
pub fn replay_to_kafka(
    cfg: &Config,
    paths: &[&std::path::Path],
    catalog: bool,
) -> Result<crate::replay::ReplaySummary, AppError> {
    let mut admin = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    if !cfg.topic.contains('{') {
        data_topic(&mut admin, cfg)?;
    }
    let client = kafka_client(cfg, "producer").map_err(kafka("connecting the producer"))?;
    let shared = Arc::new(Shared::new());
    let (tx, rx) = crossbeam_channel::bounded(cfg.pending_events);
    let first = paths
        .first()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let start = Position::at(&first, 4);
    let producer = producer::spawn(cfg.clone(), shared.clone(), rx, client, start, None);
    let replayed = crate::replay::replay_files_to(
        cfg,
        paths,
        catalog,
        &mut crate::replay::Sink::Producer {
            pending: &tx,
            shared: &shared,
        },
    );
    drop(tx);
    let produced = producer.join().expect("producer thread panicked");
    // A producer failure is the cause of a replay that could not send.
    produced.map_err(AppError::Pipeline)?;
    let summary = replayed.map_err(AppError::Replay)?;
    log::info!(
        "replayed into {}: {} rows acknowledged",
        cfg.topic,
        shared.stats.rows_acked.load(Ordering::Relaxed)
    );
    Ok(summary)
}

/// Summary of a finished run.
pub struct RunSummary {
    pub rows: u64,
    pub last_checkpoint: Option<Position>,
}

/// The signals `run` answers. SIGTERM and SIGINT stop the pipeline
/// cleanly (flush, final checkpoint, exit 0); a second one while stopping
/// exits at once with status 1, the checkpoint as it is. SIGHUP is ignored
/// and logged: the daemon has no files to reopen (it logs to stderr), and
/// logrotate or an SSH logout must not stop it.
pub struct Signals {
    pub term: Arc<AtomicBool>,
    pub hup: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for sig in [SIGTERM, SIGINT] {
            // Registered first: runs when `term` is already set, i.e. on
            // the second signal.
            signal_hook::flag::register_conditional_shutdown(sig, 1, term.clone())?;
            signal_hook::flag::register(sig, term.clone())?;
        }
        signal_hook::flag::register(SIGHUP, hup.clone())?;
        Ok(Signals { term, hup })
    }

    fn stop_requested(&self) -> bool {
        if self.hup.swap(false, Ordering::SeqCst) {
            log::info!("SIGHUP received and ignored: binlog2kafka logs to stderr and has no files to reopen; stop it with SIGTERM");
        }
        self.term.load(Ordering::SeqCst)
    }
}

/// Runs the pipeline until SIGTERM/SIGINT or a thread fails.
pub fn run(cfg: Config, signals: Signals) -> Result<RunSummary, AppError> {
    // The status page first: a port in use is reported before anything is
    // claimed, and the page shows the start-up too.
    let shared = Arc::new(Shared::new());
    let status = crate::status::start(&cfg, shared.clone()).map_err(AppError::Status)?;
    let result = run_pipeline(cfg, &signals, &shared);
    // Whatever ended the run, the status threads end with it.
    shared.request_stop();
    if let Some(s) = status {
        s.join();
    }
    result
}

fn run_pipeline(
    cfg: Config,
    signals: &Signals,
    shared: &Arc<Shared>,
) -> Result<RunSummary, AppError> {
    // MySQL first: a wrong setting is the likeliest mistake, and it costs
    // nothing on the Kafka side to find it.
    let (mut conn, cfg) = source::connect_first(&cfg)?;
    let info: ServerInfo = source::check_server(&mut conn, &cfg)?;
    if let Some(t) = source::tls::session(&mut conn) {
        log::info!(
            "MySQL over TLS: {} {} (mysql.ssl_mode={})",
            t.version,
            t.cipher,
            cfg.mysql_tls.mode.name()
        );
    }
    log::info!(
        "connected to {} at {}:{} (server_id {}); binlog_row_metadata={}",
        info.version,
        cfg.mysql_host,
        cfg.mysql_port,
        info.server_id,
        if info.row_metadata.is_empty() {
            "(none)"
        } else {
            &info.row_metadata
        }
    );
    if !info.row_metadata.eq_ignore_ascii_case("FULL") {
        log::warn!("binlog_row_metadata is not FULL; column names come from information_schema (set binlog_row_metadata=FULL for exact names)");
    }

    if cfg
        .kafka_sasl
        .as_ref()
        .is_some_and(|s| s.mechanism == crate::kafka::sasl::Mechanism::Plain)
        && cfg.kafka_tls.is_none()
    {
        log::warn!("kafka.sasl.mechanism=PLAIN with kafka.security.protocol=sasl_plaintext sends the password in the clear; use sasl_ssl");
    }
    if cfg.kafka_tls.as_ref().is_some_and(|t| !t.verify_name) {
        log::warn!("kafka.ssl.endpoint.identification=none: the brokers' certificates are checked against the CAs but not against their names; anyone with a certificate from those CAs can pose as the broker");
    }
    let mut admin = kafka_client(&cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    if let Ok(Some(t)) = admin.tls_session() {
        log::info!("Kafka over TLS: {}", t.negotiated);
    }
    checkpoint::ensure_topic(&mut admin, &cfg.commit_topic, cfg.replication_factor)
        .map_err(kafka("preparing the commit-log topic"))?;
    let owner = checkpoint::instance_id();
    let owner_id = owner.clone();
    let latest = checkpoint::read_latest(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("reading the checkpoint"))?;
    let taking_over = latest
        .as_ref()
        .is_some_and(|r| !r.released && !r.owner.is_empty());
    // The previous owner stopped or died on this host a moment ago: its
    // replica registration may linger on the server for a heartbeat.
    let predecessor_gone = latest
        .as_ref()
        .is_some_and(|r| checkpoint::owner_gone_here(&r.owner));
    let fences = admin
        .offers_transactions()
        .map_err(kafka("asking the broker what it offers"))?;
    let latest = match latest {
        Some(rec) if taking_over => wait_for_lease(&mut admin, &cfg, rec, signals, fences)?,
        other => other,
    };
    // Take the pipeline's transactional id: the broker fences every earlier
    // holder from here on, and the commit-log partition at once.
    let fencing_id = format!("binlog2kafka-{}", cfg.pipeline_name);
    let taken = if fences {
        admin
            .init_transactional(&fencing_id)
            .map(|t| t.expect("the broker offers transactions"))
            .and_then(|t| admin.fence(&t, &cfg.commit_topic, &[0]).map(|()| t))
    } else {
        Err(KafkaError::TooOld {
            broker: cfg.brokers.join(","),
            detail: "no transactions".into(),
        })
    };
    let fencing = match taken {
        Ok(t) => {
            log::info!(
                "transactional id {fencing_id} taken (producer {}, epoch {}): the broker refuses every earlier daemon of this pipeline from now on",
                t.producer.id,
                t.producer.epoch
            );
            Some(t)
        }
        Err(e) if fences && e.is_authorization() => {
            log::warn!("not allowed to use transactional id {fencing_id} ({e}): grant this user WRITE and DESCRIBE on that TransactionalId for fencing by the broker; until then a paused daemon is kept from writing by its lease alone, and a takeover waits for that lease to run out");
            None
        }
        Err(e) if fences => return Err(kafka("taking the pipeline's transactional id")(e)),
        Err(_) => {
            log::warn!("the broker offers no transactions (FindCoordinator, AddPartitionsToTxn, EndTxn): a paused daemon is kept from writing by its lease alone, and a takeover waits for that lease to run out");
            None
        }
    };
    // A takeover that counted on fencing and cannot have it waits out the
    // rest of the old owner's lease after all.
    let latest = match latest {
        Some(rec) if fences && fencing.is_none() && taking_over && !rec.released => {
            wait_for_lease(&mut admin, &cfg, rec, signals, false)?
        }
        other => other,
    };
    // What the predecessor wrote before it was fenced counts.
    let latest = match (&fencing, latest) {
        (Some(_), Some(rec)) if taking_over => Some(
            checkpoint::read_latest(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
                .map_err(kafka("reading the checkpoint"))?
                .unwrap_or(rec),
        ),
        (_, other) => other,
    };
    // A replica already using our server_id is another pipeline's, unless
    // this start takes over from an owner that never released: then it is
    // most likely that owner, paused or dying, and the server drops it as
    // this one connects.
    if !taking_over && !predecessor_gone && !source::ensure_unique_server_id(&mut conn, &cfg)? {
        log::info!("cannot list the server's replicas (SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB): a second replica with mysql.server_id {} would only be noticed when the server drops one", cfg.server_id);
    }
    // Snapshot requests written from now on are this run's to find.
    let requests_from = admin
        .offsets(&cfg.commit_topic, 0)
        .map_err(kafka("reading the commit-log topic"))?
        .1;
    let mut start = match latest {
        Some(rec) => {
            // A checkpoint read from another server of the cluster is found
            // here by its GTID state (the reader); its offset means nothing.
            let elsewhere =
                rec.file.is_empty() || rec.file_id.is_some_and(|id| id.server_id != info.server_id);
            let kept = if elsewhere {
                Ok(())
            } else {
                source::ensure_event_start(&mut conn, &cfg, &rec.file, rec.pos, "the checkpoint")
            };
            match kept {
                Err(SourceError::Purged { file, oldest, .. })
                    if cfg.snapshot_mode == crate::config::SnapshotMode::WhenNeeded =>
                {
                    // snapshot.mode=when_needed: the changes since the
                    // checkpoint are gone; the tables are read again and the
                    // stream goes on from the server's newest position.
                    let (head, pos) = source::head_position(&mut conn, &cfg)?;
                    let old = rec.position();
                    let mut plan = source::snapshot::initial_plan(
                        &mut conn,
                        &cfg,
                        source::snapshot::plan::Reason::Purged,
                        requests_from,
                    )?;
                    if let Some(prev) = old.snapshot.as_deref() {
                        plan.requests_from = prev.requests_from;
                        plan.taken = prev.taken.clone();
                    }
                    log::warn!(
                        "the checkpoint's binlog {file} has been purged (oldest kept: {oldest}): changes since {old} are lost, so snapshot.mode=when_needed snapshots {} tables again and streams on from {head}:{pos}",
                        plan.tables.len()
                    );
                    Position {
                        snapshot: Some(Arc::new(plan)),
                        ..Position::at(&head, pos)
                    }
                }
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    let p = rec.position();
                    log::info!(
                        "resuming pipeline '{}' from checkpoint {p}",
                        cfg.pipeline_name
                    );
                    p
                }
            }
        }
        None => {
            let (file, pos) = source::resolve_start(&mut conn, &cfg, &info.binlogs)?;
            let state = match &cfg.start_position {
                crate::config::StartPosition::Gtid(s) => Some(Arc::new(s.clone())),
                _ => {
                    source::ensure_event_start(&mut conn, &cfg, &file, pos, "start.position")?;
                    None
                }
            };
            let plan = match cfg.snapshot_mode {
                crate::config::SnapshotMode::Never => None,
                _ => {
                    let plan = source::snapshot::initial_plan(
                        &mut conn,
                        &cfg,
                        source::snapshot::plan::Reason::Initial,
                        requests_from,
                    )?;
                    log::info!(
                        "snapshot.mode={}: the pipeline's first start snapshots {} tables, then streams on",
                        if cfg.snapshot_mode == crate::config::SnapshotMode::Initial {
                            "initial"
                        } else {
                            "when_needed"
                        },
                        plan.tables.len()
                    );
                    Some(Arc::new(plan))
                }
            };
            let p = Position {
                state,
                snapshot: plan,
                ..Position::at(&file, pos)
            };
            log::info!(
                "no checkpoint for pipeline '{}'; starting at {p} (start.position), recorded as its first checkpoint",
                cfg.pipeline_name
            );
            p
        }
    };
    if start.snapshot.is_none() {
        start.snapshot = Some(Arc::new(source::snapshot::plan::Plan {
            requests_from,
            ..Default::default()
        }));
    }
    // Claim the pipeline, and record the start before reading anything: a
    // crash before the first periodic checkpoint must resume here, not at a
    // new `latest` that would skip what was written in between.
    let first = checkpoint::Record::new(&cfg.pipeline_name, &start, &owner);
    let mut writer = match &fencing {
        Some(t) => checkpoint::Writer::fenced_by(t.producer),
        None => checkpoint::Writer::default(),
    };
    let last_offset = writer
        .write(&mut admin, &cfg.commit_topic, &first)
        .map_err(kafka("recording the start position"))?;
    shared.renew_lease(first.ts_ms, 2 * cfg.heartbeat_interval.as_millis() as u64);
    drop(conn);

    // A fixed data topic is checked (or created) now, so a broker that
    // refuses it stops the start; templated topics are made on first use.
    let partitions = if cfg.topic.contains('{') {
        None
    } else {
        Some(data_topic(&mut admin, &cfg)?)
    };
    let producer_client =
        kafka_client(&cfg, "producer").map_err(kafka("connecting the producer"))?;

    shared.progress.lock().read_file = start.file.to_string();
    shared.read_pos.store(start.pos, Ordering::Relaxed);
    let (pending_tx, pending_rx) = crossbeam_channel::bounded(cfg.pending_events);
    let (finish_tx, finish_rx) = crossbeam_channel::bounded::<()>(0);
    let watcher = watcher::spawn(
        cfg.clone(),
        shared.clone(),
        admin,
        watcher::WatcherStart {
            position: start.clone(),
            owner,
            last_offset,
            writer,
            fencing_id: fencing.as_ref().map(|t| t.id.clone()),
        },
        finish_rx,
    );
    let producer = producer::spawn(
        cfg.clone(),
        shared.clone(),
        pending_rx,
        producer_client,
        start.clone(),
        fencing,
    );
    let (snap_tx, snap_rx) = crossbeam_channel::bounded(1);
    let snapshot_client =
        kafka_client(&cfg, "snapshot").map_err(kafka("connecting the snapshot thread"))?;
    let snapshot = source::snapshot::spawn(
        cfg.clone(),
        shared.clone(),
        snap_tx,
        start.snapshot.as_deref().cloned().unwrap_or_default(),
        snapshot_client,
        owner_id.clone(),
    );
    shared.set_snapshot_plan(start.snapshot.clone());
    let reader = reader::spawn(
        cfg.clone(),
        shared.clone(),
        pending_tx,
        start,
        Some(snap_rx),
    );
    let guard = source::guard::spawn(cfg.clone(), shared.clone());
    log::info!(
        "pipeline '{}' running: {}:{} -> {} ({}; format {:?}), checkpoints to {}",
        cfg.pipeline_name,
        cfg.mysql_host,
        cfg.mysql_port,
        cfg.topic,
        match partitions {
            Some(n) => format!("{n} partitions"),
            None => "topics made on first use".into(),
        },
        cfg.format,
        cfg.commit_topic
    );

    // Wait for a signal or a failed thread.
    let mut last_report = std::time::Instant::now();
    while !shared.stopping() && !reader.join.is_finished() && !producer.is_finished() {
        if signals.stop_requested() {
            log::info!("signal received: stopping the reader, flushing what is in flight");
            shared.request_stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = std::time::Instant::now();
            log::info!(
                "{} rows read, {} sent; waiting queue {}; checkpoint {}",
                shared.stats.rows_read.load(Ordering::Relaxed),
                shared.stats.rows_acked.load(Ordering::Relaxed),
                shared.depth(),
                shared
                    .released()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
    shared.request_stop();
    // The stop as a whole is bounded by pipeline.shutdown_timeout_ms: past
    // it the threads are left behind (the process exits), and what Kafka
    // had not acknowledged stays after the checkpoint.
    let deadline = std::time::Instant::now() + cfg.shutdown_timeout;
    let mut finish_tx = Some(finish_tx);
    loop {
        signals.stop_requested();
        if reader.join.is_finished() && producer.is_finished() {
            // The watcher's final pass starts once nothing else can ack.
            finish_tx.take();
            if watcher.is_finished() && guard.is_finished() && snapshot.is_finished() {
                break;
            }
        }
        if std::time::Instant::now() >= deadline {
            let waiting_for = if !reader.join.is_finished() {
                format!("MySQL at {}:{}", cfg.mysql_host, cfg.mysql_port)
            } else {
                let why = shared
                    .progress
                    .lock()
                    .kafka_down
                    .as_ref()
                    .map(|(_, w)| format!(": {w}"))
                    .unwrap_or_default();
                format!("broker {}{why}", cfg.brokers.join(","))
            };
            return Err(AppError::StopTimeout {
                ms: cfg.shutdown_timeout.as_millis(),
                waiting_for,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let reader_result = reader.join.join().expect("reader thread panicked");
    let producer_result = producer.join().expect("producer thread panicked");
    let watcher_result = watcher.join().expect("watcher thread panicked");
    guard.join().expect("guard thread panicked");
    // Its failure, if any, went to `shared.fail`.
    let _ = snapshot.join().expect("snapshot thread panicked");

    // The first failure is the cause; later ones are its consequences. A
    // takeover is the cause of a producer held by its lapsed lease.
    if let Some(e) = shared.take_fatal() {
        return Err(e.into());
    }
    if let (Err(PipelineError::LeaseLapsed), Err(w)) = (&producer_result, &watcher_result) {
        return Err(AppError::Pipeline(match w {
            PipelineError::Fenced { other } => PipelineError::Fenced {
                other: other.clone(),
            },
            _ => PipelineError::LeaseLapsed,
        }));
    }
    reader_result?;
    producer_result?;
    let outcome = watcher_result?;
    Ok(RunSummary {
        rows: shared.stats.rows_acked.load(Ordering::Relaxed),
        last_checkpoint: outcome.last_written.or_else(|| shared.released()),
    })
}
