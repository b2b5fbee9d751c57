//! `binlog2kafka check`: one line per finding (`ok`, `warn`, `FAIL`) about
//! the configuration, both servers and the pipeline's position.

use super::*;

/// What `check` found, printed line by line.
pub struct CheckReport {
    pub lines: Vec<String>,
    pub ok: bool,
}

/// Validates the servers for `cfg` without changing anything.
pub fn check(cfg: &Config) -> CheckReport {
    let mut r = Report::default();
    r.lines.push(format!(
        "ok   config: pipeline '{}', topic {}, commit topic {}",
        cfg.pipeline_name, cfg.topic, cfg.commit_topic
    ));
    let answered = check_mysql(cfg, &mut r);
    let checkpoint = match kafka_client(cfg, "check") {
        Ok(mut client) => {
            check_kafka_link(cfg, &mut client, &mut r);
            check_kafka_guarantees(cfg, &mut client, &mut r);
            check_position(cfg, &mut client, answered.as_ref(), &mut r)
        }
        Err(e) => {
            r.fail("kafka", &e);
            None
        }
    };
    if cfg.mysql_hosts.len() > 1 {
        check_servers(cfg, checkpoint.as_ref(), &mut r);
    }
    check_registry(cfg, &mut r);
    CheckReport {
        lines: r.lines,
        ok: !r.failed,
    }
}

/// `output.encoding=avro`: the registry answers, with which compatibility
/// level, and what the data topic's subjects hold (with
/// `registry.subject_name_strategy=topic` and a topic that is not a
/// template; otherwise the subjects follow the tables).
fn check_registry(cfg: &Config, r: &mut Report) {
    let Some(a) = &cfg.avro else { return };
    let mut reg = crate::registry::Registry::new(a.registry());
    let urls = a
        .urls
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",");
    match reg.global_compatibility() {
        Ok(level) => r.lines.push(format!(
            "ok   schema registry {urls}: answers; its compatibility level is {level}"
        )),
        Err(e) => return r.fail("schema registry", &e),
    }
    if a.strategy != crate::registry::SubjectStrategy::Topic || cfg.topic.contains('{') {
        r.lines.push(
            "ok   schema registry: each table's subjects are registered before its first row"
                .into(),
        );
        return;
    }
    for subject in [format!("{}-key", cfg.topic), format!("{}-value", cfg.topic)] {
        match (reg.versions(&subject), reg.compatibility(&subject)) {
            (Ok(v), _) if v.is_empty() => r.lines.push(format!(
                "ok   subject {subject}: not registered yet (the first row registers it)"
            )),
            (Ok(v), Ok(level)) => r.lines.push(format!(
                "ok   subject {subject}: {} version(s), the newest {}; compatibility {level}",
                v.len(),
                v.last().copied().unwrap_or_default()
            )),
            (Err(e), _) | (_, Err(e)) => r.fail(&format!("subject {subject}"), &e),
        }
    }
}

/// The findings so far; any `FAIL` makes `check` exit 1.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    failed: bool,
}

impl Report {
    fn fail(&mut self, what: &str, e: &dyn fmt::Display) {
        self.lines.push(format!("FAIL {what}: {e}"));
        self.failed = true;
    }
}

/// The server of `mysql.host` that answered first, as `check` found it.
struct Answered {
    /// The server, with the settings to reach it.
    target: Target,
    server_id: u32,
    binlogs: Vec<(String, u64)>,
}

/// The MySQL side: the first server that answers, its settings, TLS and
/// the replica id, under that server's own address (after a failover the
/// first of `mysql.host` is often down).
fn check_mysql(cfg: &Config, r: &mut Report) -> Option<Answered> {
    let first = source::connect_first(&cfg.source())
        .and_then(|(mut c, used)| source::check_server(&mut c, &used).map(|info| (info, used)));
    let (info, used) = match first {
        Ok(found) => found,
        Err(e) => {
            r.fail("mysql", &e);
            return None;
        }
    };
    // Every finding of this section is of the server that answered
    // (after a failover the first of mysql.host is often down),
    // under its own address.
    r.lines.push(format!(
            "ok   mysql {}:{}: {} (server_id {}), binlog_format={}, binlog_row_image={}, binlog_row_metadata={}, gtid: {}",
            used.host,
            used.port,
            info.version,
            info.server_id,
            info.binlog_format,
            info.row_image,
            if info.row_metadata.is_empty() { "(none)" } else { &info.row_metadata },
            info.gtid_mode
        ));
    if !info.row_metadata.eq_ignore_ascii_case("FULL") {
        r.lines.push(format!("ok   binlog_row_metadata={}: the binlog carries column types but no names, keys, signedness, charsets or ENUM/SET labels; they come from binlog2kafka's schema history (captured from information_schema when the pipeline starts, then every DDL in the binlog followed), and every table map is checked against it. A DDL it cannot read stops the pipeline (schema.on_unparsed_ddl). FULL names the columns in the binlog itself (MySQL 8.0+, MariaDB 10.5+)", if info.row_metadata.is_empty() { "(none: NO_LOG or a server without it)" } else { &info.row_metadata }));
    } else {
        r.lines.push("ok   binlog_row_metadata=FULL: the binlog names every column; the schema history is still kept and every table map checked against it".into());
    }
    r.lines.push(format!(
        "ok   privileges of '{}': replication and SELECT; {} binlog files on the server ({} .. {})",
        cfg.mysql_user,
        info.binlogs.len(),
        info.binlogs.first().map(|b| b.0.as_str()).unwrap_or("-"),
        info.binlogs.last().map(|b| b.0.as_str()).unwrap_or("-")
    ));
    check_mysql_tls(&used, r);
    check_server_id(&used, r);
    Some(Answered {
        target: used,
        server_id: info.server_id,
        binlogs: info.binlogs,
    })
}

/// TLS to MySQL: the session, and the server certificate's name and expiry.
fn check_mysql_tls(cfg: &Target, r: &mut Report) {
    match source::connect(cfg).map(|mut c| source::tls::session(&mut c)) {
        Ok(Some(t)) => {
            let now = crate::checkpoint::now_ms() as i64 / 1000;
            // The certificate as the server presents it; else the
            // expiry the server reports of itself.
            let (subject, days) =
                match source::tls::server_certificate(&cfg.host, cfg.port, cfg.settings.timeout) {
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
            r.lines.push(format!(
                "{} mysql TLS: {} {}; server certificate {subject}{} (mysql.ssl_mode={})",
                if soon { "warn" } else { "ok  " },
                t.version,
                t.cipher,
                match days {
                    Some(d) if d < 30 => format!(", {d} days left: renew it soon"),
                    Some(d) => format!(", {d} days left"),
                    None => String::new(),
                },
                cfg.settings.tls.mode.name()
            ));
        }
        Ok(None) => r.lines.push(format!(
            "{} mysql: plaintext (mysql.ssl_mode={}{})",
            if cfg.settings.tls.mode == crate::config::SslMode::Disabled {
                "ok  "
            } else {
                "warn"
            },
            cfg.settings.tls.mode.name(),
            if cfg.settings.tls.mode == crate::config::SslMode::Preferred {
                ": the server offers no TLS"
            } else {
                ""
            }
        )),
        Err(e) => r.fail("mysql TLS", &e),
    }
}

/// No other replica of the server uses `mysql.server_id`.
fn check_server_id(cfg: &Target, r: &mut Report) {
    match source::connect(cfg).and_then(|mut c| source::ensure_unique_server_id(&mut c, cfg)) {
        Ok(true) => r.lines.push(format!("ok   mysql.server_id {}: no other replica uses it", cfg.settings.server_id)),
        Ok(false) => r.lines.push(format!("warn mysql.server_id {}: cannot list the server's replicas (SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB 10.5+), so a clash would only show when the server drops one", cfg.settings.server_id)),
        Err(e) => r.fail("mysql.server_id", &e),
    }
}

/// The broker: reachable, TLS and SASL as configured.
fn check_kafka_link(cfg: &Config, client: &mut Client, r: &mut Report) {
    r.lines.push(format!(
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
            r.lines.push(format!(
                "{level} kafka TLS: {}; broker certificate CN={subject}, expires in {days} days{}; trusting {trust}{}",
                t.negotiated,
                if days < 30 { " (renew it soon)" } else { "" },
                if cfg.kafka_tls.as_ref().is_some_and(|s| !s.verify_name) { "; the broker's name is NOT checked (kafka.ssl.endpoint.identification=none)" } else { "" }
            ));
        }
        Ok(None) => r
            .lines
            .push("ok   kafka: plaintext (kafka.security.protocol=plaintext)".into()),
        Err(e) => r.lines.push(format!("warn kafka TLS: {e}")),
    }
    if let Some(s) = &cfg.kafka_sasl {
        r.lines.push(format!(
            "{} kafka SASL: {} authentication succeeded{}{}",
            if s.mechanism == crate::kafka::sasl::Mechanism::Plain && cfg.kafka_tls.is_none() {
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
            if s.mechanism == crate::kafka::sasl::Mechanism::Plain && cfg.kafka_tls.is_none() {
                "; PLAIN without TLS sends the password in the clear: use sasl_ssl"
            } else {
                ""
            }
        ));
    }
    // Which duplicate guarantees hold against this broker.
}

/// What the broker guarantees (idempotence, fencing) and what the settings
/// give up.
fn check_kafka_guarantees(cfg: &Config, client: &mut Client, r: &mut Report) {
    match client.init_producer_id() {
        Ok(Some(_)) => r.lines.push("ok   kafka: idempotent producer (InitProducerId): a batch sent again after a lost answer is stored once".into()),
        Ok(None) => r.lines.push("warn kafka: the broker offers no InitProducerId: a batch sent again after a lost answer may be stored twice".into()),
        Err(e) => r.lines.push(format!("warn kafka: no idempotent producer ({e}): a batch sent again after a lost answer may be stored twice")),
    }
    // Only asked, not taken: taking the transactional id would fence
    // a daemon that runs now.
    match client.offers_transactions() {
        Ok(true) => r.lines.push(format!("ok   kafka: fencing by the broker (transactional id binlog2kafka-{}): a paused daemon cannot write after its successor took over, and a takeover need not wait for its lease", cfg.pipeline_name)),
        Ok(false) => r.lines.push("warn kafka: the broker offers no transactions: a paused daemon is kept from writing by its lease alone (checked before every send), and a takeover waits 3 heartbeats".into()),
        Err(e) => r.lines.push(format!("warn kafka: cannot tell whether the broker fences ({e})")),
    }
    if matches!(cfg.partition_by, crate::config::PartitionBy::Random) {
        r.lines.push("warn kafka.partition_by=random: rows read again after a crash cannot be matched with what Kafka holds and may be sent twice".into());
    }
    if cfg.snapshot_mode != crate::config::SnapshotMode::Never {
        r.lines.push(format!(
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
}

/// Where the pipeline would start (the checkpoint, or start.position), and
/// the snapshot requests waiting for it; returns the checkpoint.
fn check_position(
    cfg: &Config,
    client: &mut Client,
    answered: Option<&Answered>,
    r: &mut Report,
) -> Option<checkpoint::Record> {
    let binlogs = answered.map(|a| a.binlogs.clone()).unwrap_or_default();
    let first_server_id = answered.map(|a| a.server_id);
    let mut checkpoint_state = None;
    match checkpoint::read_latest(client, &cfg.commit_topic, &cfg.pipeline_name) {
        Ok(Some(rec)) => {
            r.lines.push(format!(
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
            let first = cfg.first_target();
            let there = answered.map_or(&first, |a| &a.target);
            if !binlogs.is_empty() && !elsewhere {
                let cfg = there;
                let valid = source::connect(cfg).and_then(|mut c| {
                    source::ensure_event_start(&mut c, cfg, &rec.file, rec.pos, "the checkpoint")
                });
                if let Err(e) = valid {
                    r.fail("checkpoint", &e);
                }
            }
            let plan = rec.snapshot.clone().unwrap_or_default();
            match crate::pipeline::snapshot::pending_requests(
                client,
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
                        r.lines.push(format!(
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
                Err(e) => r
                    .lines
                    .push(format!("warn snapshot requests: cannot read them: {e}")),
            }
            checkpoint_state = Some(rec);
        }
        Ok(None) => {
            let by_gtid = matches!(cfg.start_position, crate::config::StartPosition::Gtid(_));
            let first = cfg.first_target();
            let there = answered.map_or(&first, |a| &a.target);
            let valid = (!binlogs.is_empty() && !by_gtid).then(|| {
                let cfg = there;
                source::connect(cfg).and_then(|mut c| {
                    let (file, pos) = source::resolve_start(&mut c, cfg, &binlogs)?;
                    source::ensure_event_start(&mut c, cfg, &file, pos, "start.position")
                })
            });
            match valid {
                Some(Err(e)) => r.fail("start.position", &e),
                _ => r.lines.push(format!(
                    "ok   checkpoint: none yet for '{}'; will start at start.position={}",
                    cfg.pipeline_name,
                    start_text(&cfg.start_position)
                )),
            }
        }
        Err(e) => r.fail("reading the checkpoint", &e),
    }
    checkpoint_state
}

/// Every server of `mysql.host`, on a line of its own; `check` fails only
/// when none can resume the pipeline.
fn check_servers(cfg: &Config, checkpoint_state: Option<&checkpoint::Record>, r: &mut Report) {
    let mut reachable = 0usize;
    let mut resumable = 0usize;
    let first = cfg.first_target();
    for (host, port) in &cfg.mysql_hosts {
        let s = server_line(&first.at(host, *port), checkpoint_state);
        r.lines.push(s.line);
        // A server of several away, or one the pipeline cannot resume
        // on, is a warning (after a failover the first is usually
        // down); none to resume on fails.
        reachable += usize::from(s.reachable);
        resumable += usize::from(s.resumable);
    }
    if reachable == 0 {
        r.fail("mysql.host", &"no server of the list is reachable");
    } else if resumable == 0 {
        r.fail("mysql.host",
            &"no server of the list can resume the pipeline from its checkpoint (see the server lines above)",
        );
    }
}

/// `check`'s line for one server of `mysql.host`: reachable or not, its role
/// (primary, read-only, replica of whom), its GTID state, and whether the
/// pipeline could resume on it from `rec`.
fn server_line(cfg: &Target, rec: Option<&checkpoint::Record>) -> Server {
    use mysql::prelude::Queryable;
    let addr = cfg.addr();
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
        Some(r) => match r.position().state.as_deref().cloned() {
            Some(crate::gtid::GtidState::Maria(ours)) => {
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
            Some(crate::gtid::GtidState::Mysql(ours)) => {
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
