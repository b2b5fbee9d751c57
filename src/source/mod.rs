//! The binlog side: connecting as a replica, checking that the server's
//! settings allow row-level CDC, resolving where to start, and decoding
//! the binlog's bytes. The threads that stream it are in `pipeline`.

pub mod checksum;
pub mod compressed;
pub mod ddl;
pub mod history;
pub mod jsondiff;
pub mod payload;
pub mod refusal;
pub mod rows;
pub mod schema;
pub mod snapshot;
pub mod statement;
pub mod tls;
pub mod xa;

use std::fmt;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use mysql_common::proto::codec::error::PacketCodecError;

use std::sync::Arc;

use crate::filter::{ColumnFilter, TableFilter};
use tls::MysqlTls;

/// Where to start reading when no checkpoint exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    At {
        file: String,
        pos: u64,
    },
    /// Resume after a GTID state, on whichever server has it.
    Gtid(crate::gtid::GtidState),
}

/// How to reach and read the servers of `mysql.host` (built from the
/// configuration, which the source never sees).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every server of `mysql.host`, in order.
    pub hosts: Vec<(String, u16)>,
    pub user: String,
    pub password: String,
    /// `mysql.ssl_*`.
    pub tls: MysqlTls,
    /// The replica id binlog2kafka connects with.
    pub server_id: u32,
    /// `mysql.timeout_ms`: connecting and writing; reads wait three times
    /// as long.
    pub timeout: Duration,
    pub start_position: StartPosition,
    pub filter: TableFilter,
    pub columns: ColumnFilter,
    /// `schema.on_mismatch`.
    pub schema_on_mismatch: history::follow::OnMismatch,
    /// `schema.on_unparsed_ddl`.
    pub schema_on_unparsed: history::follow::OnUnparsed,
}

/// The server connections go to now, with the settings to reach it: the
/// first reachable server of `mysql.host` until a failover moves the
/// reader on. The settings stay as loaded; only the target moves.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub settings: Arc<Settings>,
}

impl Target {
    /// The first server of `mysql.host`.
    pub fn first(settings: Arc<Settings>) -> Target {
        let (host, port) = settings.hosts[0].clone();
        Target {
            host,
            port,
            settings,
        }
    }

    /// Another server, with the same settings.
    pub fn at(&self, host: &str, port: u16) -> Target {
        Target {
            host: host.to_string(),
            port,
            settings: self.settings.clone(),
        }
    }

    /// `host:port`, as operators see it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Errors of the MySQL boundary, each saying what to change.
#[derive(Debug)]
pub enum SourceError {
    /// Network-level: refused, timed out, connection lost.
    Unreachable { addr: String, detail: String },
    /// Wrong user or password.
    Auth { user: String, detail: String },
    /// TLS to the server could not be set up (certificate, CA, name, mode).
    Tls { addr: String, detail: String },
    /// A server setting prevents row-level CDC.
    Setting { detail: String },
    /// The user lacks a privilege.
    Privilege { detail: String },
    /// The position to read from is no longer on the server. `origin`
    /// says where it came from ("the checkpoint", "start.position").
    Purged {
        file: String,
        oldest: String,
        origin: &'static str,
    },
    /// The binlog could not be decoded.
    Corrupt { position: String, detail: String },
    /// Another query failed.
    Query { what: String, detail: String },
    /// A row change logged as SQL text (binlog_format STATEMENT or MIXED):
    /// its rows are not in the binlog.
    StatementDml {
        position: String,
        verb: &'static str,
        table: String,
    },
    /// A rows event lacks columns the messages need (binlog_row_image
    /// MINIMAL or NOBLOB when it was written).
    RowImage {
        position: String,
        table: String,
        image: &'static str,
        missing: String,
    },
    /// A position that is not the start of an event in its file.
    BadPosition { detail: String },
    /// The binlog at the resume position is not the one the checkpoint was
    /// taken in (RESET MASTER, or another server with the same file names).
    BinlogReplaced { detail: String },
    /// A position that cannot be found, or must not be resumed, on this
    /// server by GTID.
    Gtid { refusal: refusal::GtidRefusal },
    /// A table map disagrees with the schema history.
    SchemaDrift {
        table: String,
        position: String,
        difference: String,
    },
    /// A table's definition at this point is not known, and the binlog
    /// does not name its columns.
    SchemaUnknown {
        table: String,
        position: String,
        why: String,
    },
    /// A DDL on a tracked table that cannot be followed.
    UnreadableDdl {
        table: String,
        position: String,
        statement: String,
        why: String,
    },
    /// Another replica with our server_id is connected.
    SameServerId { server_id: u32, detail: String },
    /// The broker refused the reader's own write (the schema history)
    /// because a successor took the pipeline over.
    Fenced { during: String },
}

impl SourceError {
    /// Whether reconnecting may help (a restart, a network cut).
    pub fn is_retriable(&self) -> bool {
        matches!(self, SourceError::Unreachable { .. })
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Unreachable { addr, detail } => write!(
                f,
                "cannot reach MySQL at {addr} ({detail}); check mysql.host, mysql.port and that the server is running"
            ),
            SourceError::Auth { user, detail } => write!(
                f,
                "MySQL refused user '{user}' ({detail}); check mysql.user and mysql.password"
            ),
            SourceError::Tls { addr, detail } => write!(f, "TLS to MySQL at {addr} failed: {detail}"),
            SourceError::Setting { detail } => write!(f, "{detail}"),
            SourceError::Fenced { during } => write!(
                f,
                "fenced: the broker refused this daemon's write ({during}) because another binlog2kafka took over this pipeline.name; stopping, nothing more is written"
            ),
            SourceError::Privilege { detail } => write!(f, "{detail}"),
            SourceError::Purged { file, oldest, origin: "start.position" } => write!(
                f,
                "start.position names binlog {file}, which the server does not have (oldest kept: {oldest}); choose a file from SHOW BINARY LOGS, or earliest or latest"
            ),
            SourceError::Purged { file, oldest, origin } => write!(
                f,
                "{origin} points to binlog {file}, which the server has purged (oldest kept: {oldest}); changes since then are lost to binlog2kafka. Set snapshot.mode=when_needed to snapshot the tables again and carry on from the server's newest position (or re-snapshot the data yourself, then start a new pipeline.name with start.position=earliest or latest)"
            ),
            SourceError::Corrupt { position, detail } => write!(
                f,
                "cannot decode the binlog at {position}: {detail}; the checkpoint stays before it"
            ),
            SourceError::Query { what, detail } => write!(f, "MySQL query failed ({what}): {detail}"),
            SourceError::StatementDml { position, verb, table } => write!(
                f,
                "{verb} on {table} at {position} was logged as an SQL statement (binlog_format STATEMENT or MIXED for that session or server), so its rows are not in the binlog and cannot be published; stopped before it, the checkpoint stays there. Set binlog_format=ROW globally (SET GLOBAL and my.cnf) and in the sessions that changed it, repair the table's consumers (re-apply or re-snapshot), then restart with mysql.on_statement_dml=warn to step over it"
            ),
            SourceError::RowImage { position, table, image, missing } => write!(
                f,
                "the rows event for {table} at {position} has a partial {image} image (missing {missing}): it was written with binlog_row_image=MINIMAL or NOBLOB, and the messages need whole rows; stopped before it, the checkpoint stays there. Set binlog_row_image=FULL (SET GLOBAL and my.cnf); rows already written this way cannot be published whole"
            ),
            SourceError::BinlogReplaced { detail }
            | SourceError::BadPosition { detail } => {
                write!(f, "{detail}")
            }
            SourceError::Gtid { refusal } => write!(f, "{refusal}"),
            SourceError::SchemaDrift { table, position, difference } => write!(
                f,
                "the table map of {table} at {position} does not match its definition in the schema history: {difference}. Stopped before it, the checkpoint stays there; publishing would shift or misname columns. The history missed or misread a DDL: to go on, restart with schema.on_mismatch=positional (that table's rows then carry @1-style names), or `binlog2kafka reset` the pipeline to a position after the change and snapshot {table} again"
            ),
            SourceError::SchemaUnknown { table, position, why } => write!(
                f,
                "cannot name the columns of {table} at {position}: {why}, and the binlog does not carry column names (binlog_row_metadata is not FULL). Stopped before it, the checkpoint stays there. Set binlog_row_metadata=FULL on the server for the rows written from now on; for these, `binlog2kafka reset` the pipeline to a position after that point and snapshot {table} again (or restart with schema.on_mismatch=positional to publish them with @1-style names)"
            ),
            SourceError::UnreadableDdl { table, position, statement, why } => write!(
                f,
                "cannot follow the DDL on {table} at {position} ({why}): `{statement}`. Stopped before it, the checkpoint stays there. Restart with schema.on_unparsed_ddl=refresh to read the table's definition from the server at this point (the table maps that follow check it), and report the statement"
            ),
            SourceError::SameServerId { server_id, detail } => write!(
                f,
                "another replica with server_id {server_id} is connected to the server ({detail}): give each pipeline its own mysql.server_id, unique among the server's replicas"
            ),
        }
    }
}

impl std::error::Error for SourceError {}

/// Classifies a driver error: auth and privilege failures are final, network
/// failures retriable.
pub(crate) fn classify(target: &Target, what: &str, e: mysql::Error) -> SourceError {
    let addr = format!("{}:{}", target.host, target.port);
    // A certificate or TLS failure is no outage: waiting does not fix it.
    if let Some(t) = tls::rustls_error(&e) {
        return SourceError::Tls {
            addr,
            detail: crate::tls::explain(t, &target.host, &tls::KEYS),
        };
    }
    match e {
        mysql::Error::MySqlError(me) => match me.code {
            1045 | 1044 | 1698 => SourceError::Auth {
                user: target.settings.user.clone(),
                detail: me.message,
            },
            1227 | 1142 | 1143 => SourceError::Privilege {
                detail: format!(
                    "{what}: {}; grant the user REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: also BINLOG MONITOR) and SELECT",
                    me.message
                ),
            },
            4052 => SourceError::SameServerId {
                server_id: target.settings.server_id,
                detail: me.message,
            },
            1236 if me.message.contains("could not find next log")
                || me.message.contains("Could not find first log") =>
            {
                SourceError::BinlogReplaced {
                    detail: format!(
                        "the server's binary logs were reset or purged under binlog2kafka while it read them (RESET MASTER or PURGE BINARY LOGS; the server says: {}); stopped, the checkpoint stays at the last change Kafka acknowledged. If the reset was deliberate, changes since that checkpoint are gone from the binlog: re-snapshot, then `binlog2kafka reset` the pipeline and choose start.position",
                        me.message
                    ),
                }
            }
            1236 => SourceError::Query {
                what: what.to_string(),
                detail: format!("{} (the server cannot send the binlog from there)", me.message),
            },
            // Server shutting down, too many connections, lost connection.
            1053 | 1040 | 2013 | 2006 => SourceError::Unreachable { addr, detail: me.message },
            _ => SourceError::Query {
                what: what.to_string(),
                detail: format!("{} (error {})", me.message, me.code),
            },
        },
        mysql::Error::IoError(io) => SourceError::Unreachable {
            addr,
            detail: io_detail(target, &io),
        },
        // The driver's own errors: failing to connect, or a timeout, is
        // an outage; the rest (a packet out of order, an unexpected or
        // oversized packet, an unknown auth plugin, a TLS the server
        // lacks) are no outage that waiting fixes, so they stop with the
        // driver's words instead of being retried for ever.
        mysql::Error::DriverError(
            d @ (mysql::DriverError::ConnectTimeout
            | mysql::DriverError::CouldNotConnect(_)
            | mysql::DriverError::Timeout),
        ) => SourceError::Unreachable { addr, detail: d.to_string() },
        mysql::Error::DriverError(d @ mysql::DriverError::PacketOutOfSync) => {
            // Out of sync after a cut connection: reconnecting restores it.
            SourceError::Unreachable { addr, detail: d.to_string() }
        }
        mysql::Error::DriverError(d) => SourceError::Query {
            what: what.to_string(),
            detail: format!("{d} (a protocol error of the MySQL client; not retried)"),
        },
        // The packet layer's I/O: a read timeout on a silent connection
        // (the binlog stream has heartbeats, so silence means the network
        // is gone) or a broken socket. Both are reconnected, never fatal.
        mysql::Error::CodecError(PacketCodecError::Io(io)) => SourceError::Unreachable {
            addr,
            detail: io_detail(target, &io),
        },
        mysql::Error::CodecError(c) => SourceError::Unreachable {
            addr,
            detail: format!("broken packet stream ({c})"),
        },
        other => SourceError::Query {
            what: what.to_string(),
            detail: other.to_string(),
        },
    }
}

fn io_detail(target: &Target, io: &std::io::Error) -> String {
    match io.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
            "nothing received for {:?} (3 x mysql.timeout_ms), though the server sends a heartbeat every second",
            target.settings.timeout * 3
        ),
        _ => io.to_string(),
    }
}

/// Opens a plain SQL connection with the configured credentials.
pub fn connect(target: &Target) -> Result<Conn, SourceError> {
    use tls::SslMode;
    let opts = OptsBuilder::new()
        .ip_or_hostname(Some(target.host.clone()))
        .tcp_port(target.port)
        .user(Some(target.settings.user.clone()))
        .pass(Some(target.settings.password.clone()))
        .tcp_connect_timeout(Some(target.settings.timeout))
        .read_timeout(Some(target.settings.timeout * 3))
        .write_timeout(Some(target.settings.timeout))
        .prefer_socket(false);
    let addr = format!("{}:{}", target.host, target.port);
    let mode = target.settings.tls.mode;
    let ssl = tls::ssl_opts(&target.settings.tls).map_err(|detail| SourceError::Tls {
        addr: addr.clone(),
        detail,
    })?;
    let plain = |e: mysql::Error| {
        match classify(target, "connect", e) {
        // MariaDB answers a plaintext login to a server that requires TLS
        // with a bare "Access denied".
        SourceError::Auth { user, detail } => SourceError::Auth {
            user,
            detail: format!("{detail}; the server may require TLS (require_secure_transport): set mysql.ssl_mode=required or stronger"),
        },
        other => other,
    }
    };
    let Some(ssl) = ssl else {
        return Conn::new(opts).map_err(plain);
    };
    match Conn::new(opts.clone().ssl_opts(ssl)) {
        Ok(c) => Ok(c),
        Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) if mode == SslMode::Preferred => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| log::info!("{addr} offers no TLS: connected without it (mysql.ssl_mode=preferred; set required or stronger to refuse a plaintext connection)"));
            Conn::new(opts).map_err(plain)
        }
        Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) => Err(SourceError::Tls {
            addr,
            detail: format!("the server offers no TLS, and mysql.ssl_mode={} requires it; give the server a certificate (ssl_cert, ssl_key, ssl_ca), or set mysql.ssl_mode=preferred", mode.name()),
        }),
        Err(e) => Err(match classify(target, "connect", e) {
            SourceError::Auth { user, detail } if target.settings.tls.cert.is_none() => SourceError::Auth {
                user,
                detail: format!("{detail}; if the user was created REQUIRE X509 or REQUIRE SUBJECT, set mysql.ssl_cert and mysql.ssl_key to a client certificate"),
            },
            other => other,
        }),
    }
}

/// Connects to the first reachable server of `mysql.host`; returns the
/// connection and that server. Only unreachable servers are passed over: a
/// refused login is an error.
pub fn connect_first(settings: &Arc<Settings>) -> Result<(Conn, Target), SourceError> {
    let mut last = None;
    let first = Target::first(settings.clone());
    for (host, port) in &settings.hosts {
        let c = first.at(host, *port);
        match connect(&c) {
            Ok(conn) => {
                if last.is_some() {
                    log::warn!(
                        "using {host}:{port}: the servers before it in mysql.host are unreachable"
                    );
                }
                return Ok((conn, c));
            }
            Err(e) if e.is_retriable() && settings.hosts.len() > 1 => {
                log::info!("{e}");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("mysql.host lists at least one server"))
}

/// A side connection (status monitor, guard) to the server the reader
/// reads now: it follows a failover.
#[derive(Default)]
pub struct SourceConn {
    conn: Option<Conn>,
    target: Option<Target>,
}

impl SourceConn {
    /// The connection to `now` (the server the reader reads; `None`: the
    /// first of `mysql.host`), with that server, made (again) when there is
    /// none or the reader moved to another server; the connect error while
    /// it cannot be made.
    pub fn get(
        &mut self,
        settings: &Arc<Settings>,
        now: Option<(String, u16)>,
    ) -> Result<(&mut Conn, &Target), SourceError> {
        let first = Target::first(settings.clone());
        let to = match now {
            Some((h, p)) => first.at(&h, p),
            None => first,
        };
        let moved = self
            .target
            .as_ref()
            .is_none_or(|t| t.host != to.host || t.port != to.port);
        if self.conn.is_none() || moved {
            self.conn = None;
            let made = connect(&to);
            self.target = Some(to);
            self.conn = Some(made?);
        }
        match (self.conn.as_mut(), self.target.as_ref()) {
            (Some(c), Some(t)) => Ok((c, t)),
            _ => unreachable!("a connection is kept with its target"),
        }
    }

    /// Forgets a connection that failed.
    pub fn drop_conn(&mut self) {
        self.conn = None;
    }
}

/// What `check` found on the server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub mariadb: bool,
    pub server_id: u32,
    pub binlog_format: String,
    pub row_image: String,
    /// FULL, MINIMAL, or empty when the server has no such setting.
    pub row_metadata: String,
    pub gtid_mode: String,
    /// (file, size) of every binlog the server keeps, oldest first.
    pub binlogs: Vec<(String, u64)>,
}

fn variable(conn: &mut Conn, target: &Target, name: &str) -> Result<Option<String>, SourceError> {
    let rows: Vec<(String, Option<String>)> = conn
        .query(format!("SHOW GLOBAL VARIABLES LIKE '{name}'"))
        .map_err(|e| classify(target, "SHOW GLOBAL VARIABLES", e))?;
    Ok(rows.into_iter().next().and_then(|(_, v)| v))
}

/// Checks the server allows row-level CDC for this user, and refuses with a
/// message that says exactly what to change. Warnings (e.g. no FULL row
/// metadata) go to the log and into the returned info.
pub fn check_server(conn: &mut Conn, target: &Target) -> Result<ServerInfo, SourceError> {
    let version: String = conn
        .query_first("SELECT VERSION()")
        .map_err(|e| classify(target, "SELECT VERSION()", e))?
        .unwrap_or_default();
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let log_bin = variable(conn, target, "log_bin")?.unwrap_or_default();
    if !log_bin.eq_ignore_ascii_case("ON") && log_bin != "1" {
        return Err(SourceError::Setting {
            detail: "binary logging is off on the server (log_bin=OFF); start it with --log-bin and binlog_format=ROW".into(),
        });
    }
    let binlog_format = variable(conn, target, "binlog_format")?.unwrap_or_default();
    if !binlog_format.eq_ignore_ascii_case("ROW") {
        return Err(SourceError::Setting {
            detail: format!(
                "binlog_format is {binlog_format} on the server; binlog2kafka needs row events: set binlog_format=ROW (SET GLOBAL binlog_format=ROW, and in my.cnf so it survives a restart)"
            ),
        });
    }
    let row_image = variable(conn, target, "binlog_row_image")?.unwrap_or_else(|| "FULL".into());
    if !row_image.eq_ignore_ascii_case("FULL") {
        return Err(SourceError::Setting {
            detail: format!(
                "binlog_row_image is {row_image}; binlog2kafka needs whole rows: set binlog_row_image=FULL"
            ),
        });
    }
    let row_metadata = variable(conn, target, "binlog_row_metadata")?.unwrap_or_default();
    let server_id: u32 = variable(conn, target, "server_id")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if server_id == target.settings.server_id {
        return Err(SourceError::Setting {
            detail: format!(
                "mysql.server_id {} is the server's own server_id; choose another value, unique among its replicas",
                target.settings.server_id
            ),
        });
    }
    let gtid_mode = if mariadb {
        variable(conn, target, "gtid_binlog_pos")?
            .map(|p| {
                if p.is_empty() {
                    "none yet".to_string()
                } else {
                    p
                }
            })
            .unwrap_or_default()
    } else {
        variable(conn, target, "gtid_mode")?.unwrap_or_else(|| "OFF".into())
    };
    check_privileges(conn, target)?;
    let binlogs = binary_logs(conn, target)?;
    Ok(ServerInfo {
        version,
        mariadb,
        server_id,
        binlog_format,
        row_image,
        row_metadata,
        gtid_mode,
        binlogs,
    })
}

fn check_privileges(conn: &mut Conn, target: &Target) -> Result<(), SourceError> {
    let grants: Vec<String> = conn
        .query("SHOW GRANTS FOR CURRENT_USER()")
        .map_err(|e| classify(target, "SHOW GRANTS", e))?;
    let all = grants.join("\n").to_ascii_uppercase();
    let global: Vec<&str> = all.lines().filter(|g| g.contains(" ON *.* ")).collect();
    let has = |p: &str| {
        global
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES") || g.contains(p))
    };
    let mut missing = Vec::new();
    if !(has("REPLICATION SLAVE") || has("REPLICATION REPLICA") || has("REPLICATION SLAVE ADMIN")) {
        missing.push("REPLICATION SLAVE");
    }
    if !(has("REPLICATION CLIENT") || has("BINLOG MONITOR") || has("SUPER")) {
        missing.push("REPLICATION CLIENT");
    }
    if !has("SELECT") {
        missing.push("SELECT");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SourceError::Privilege {
            detail: format!(
                "user '{}' lacks {} on *.*; run: GRANT {} ON *.* TO '{}'@'%'",
                target.settings.user,
                missing.join(", "),
                missing.join(", "),
                target.settings.user
            ),
        })
    }
}

/// Whether another replica with our `mysql.server_id` is connected (the
/// server would drop it, or us, the moment we asked for the binlog).
/// `SHOW SLAVE HOSTS` lists registered replicas; it needs REPLICATION
/// MASTER ADMIN on MariaDB 10.5+ (REPLICATION SLAVE on MySQL): without it
/// the check cannot be made and `Ok(false)` says so. A replica that just
/// died (kill -9) stays listed until the server notices, so a match is
/// looked at again for a few seconds before it counts.
pub fn ensure_unique_server_id(conn: &mut Conn, target: &Target) -> Result<bool, SourceError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let rows: Vec<mysql::Row> = match conn.query("SHOW SLAVE HOSTS") {
            Ok(r) => r,
            Err(mysql::Error::MySqlError(e)) if matches!(e.code, 1227 | 1142 | 1044) => {
                return Ok(false)
            }
            Err(e) => return Err(classify(target, "SHOW SLAVE HOSTS", e)),
        };
        let other = rows.iter().find_map(|r| {
            let id: u32 = r.get(0)?;
            (id == target.settings.server_id).then(|| {
                let host: String = r.get(1).unwrap_or_default();
                let port: u32 = r.get(2).unwrap_or_default();
                format!("SHOW SLAVE HOSTS lists it, reported as {host}:{port}")
            })
        });
        match other {
            None => return Ok(true),
            Some(detail) if std::time::Instant::now() >= deadline => {
                return Err(SourceError::SameServerId {
                    server_id: target.settings.server_id,
                    detail,
                })
            }
            Some(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// `SHOW BINARY LOGS`: the files the server still has, oldest first.
pub fn binary_logs(conn: &mut Conn, target: &Target) -> Result<Vec<(String, u64)>, SourceError> {
    let rows: Vec<mysql::Row> = conn
        .query("SHOW BINARY LOGS")
        .map_err(|e| classify(target, "SHOW BINARY LOGS", e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let name: String = r.get(0).unwrap_or_default();
            let size: u64 = r.get(1).unwrap_or_default();
            (name, size)
        })
        .collect())
}

/// The server's current write position (`SHOW MASTER STATUS`, or
/// `SHOW BINARY LOG STATUS` on MySQL 8.4+).
pub fn head_position(conn: &mut Conn, target: &Target) -> Result<(String, u64), SourceError> {
    let row: Option<mysql::Row> = match conn.query_first("SHOW MASTER STATUS") {
        Ok(r) => r,
        Err(_) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .map_err(|e| classify(target, "SHOW BINARY LOG STATUS", e))?,
    };
    let row = row.ok_or_else(|| SourceError::Setting {
        detail:
            "the server reports no binlog position (SHOW MASTER STATUS is empty); is log_bin on?"
                .into(),
    })?;
    Ok((row.get(0).unwrap_or_default(), row.get(1).unwrap_or(4)))
}

/// Where to read from when there is no checkpoint yet.
pub fn resolve_start(
    conn: &mut Conn,
    target: &Target,
    binlogs: &[(String, u64)],
) -> Result<(String, u64), SourceError> {
    match &target.settings.start_position {
        StartPosition::Earliest => {
            binlogs
                .first()
                .map(|(f, _)| (f.clone(), 4))
                .ok_or_else(|| SourceError::Setting {
                    detail: "the server lists no binary logs".into(),
                })
        }
        StartPosition::Latest => head_position(conn, target),
        StartPosition::At { file, pos } => {
            ensure_kept(file, binlogs, "start.position")?;
            Ok((file.clone(), *pos))
        }
        // No file: the reader asks the server for the place by GTID.
        StartPosition::Gtid(_) => Ok((String::new(), 4)),
    }
}

/// Checks that an event starts at `file:pos` and lies within the file, so a
/// wrong offset is refused before it is used or saved (the server itself
/// answers one inside an event with a misleading "max_allowed_packet").
/// The file's end is a valid position: the next event will start there.
pub fn ensure_event_start(
    conn: &mut Conn,
    target: &Target,
    file: &str,
    pos: u64,
    origin: &'static str,
) -> Result<(), SourceError> {
    // Sizes as of now: the file grows while the caller works.
    let binlogs = &binary_logs(conn, target)?;
    ensure_kept(file, binlogs, origin)?;
    let size = binlogs.iter().find(|(f, _)| f == file).map_or(0, |b| b.1);
    let fix = match origin {
        "start.position" => {
            "use an offset that SHOW BINLOG EVENTS lists (its Pos column), or earliest or latest"
        }
        _ => "the server's file of that name is not the one the checkpoint was taken in (RESET MASTER, a restored backup, or another server with the same file names), so reading on would skip or repeat changes. Re-snapshot the data, then `binlog2kafka reset --config FILE` and set start.position",
    };
    if pos > size {
        return Err(SourceError::BadPosition {
            detail: format!(
                "{origin} {file}:{pos} lies past the end of {file} ({size} bytes); {fix}"
            ),
        });
    }
    if pos == size {
        return Ok(());
    }
    let q = format!(
        "SHOW BINLOG EVENTS IN '{}' FROM {pos} LIMIT 1",
        file.replace('\'', "''")
    );
    // The rows are read: an error after the column definitions is the
    // answer, and the event found must start exactly at `pos`.
    match conn.query::<mysql::Row, _>(&q) {
        Ok(rows) => match rows.first().and_then(|r| r.get::<u64, _>(1)) {
            Some(at) if at != pos => Err(SourceError::BadPosition {
                detail: format!(
                    "{origin} {file}:{pos} is not where an event starts (the next event starts at {at}); {fix}"
                ),
            }),
            _ => Ok(()),
        },
        Err(mysql::Error::MySqlError(e)) if e.code == 1220 => Err(SourceError::BadPosition {
            detail: format!(
                "{origin} {file}:{pos} is not where an event starts (the server says: {}); {fix}",
                e.message
            ),
        }),
        // Without the privilege to list events, the stream itself will tell.
        Err(mysql::Error::MySqlError(e)) if matches!(e.code, 1227 | 1142 | 1044) => Ok(()),
        Err(e) => Err(classify(target, "SHOW BINLOG EVENTS", e)),
    }
}

/// Errors with [`SourceError::Purged`] when `file` is no longer on the server.
pub fn ensure_kept(
    file: &str,
    binlogs: &[(String, u64)],
    origin: &'static str,
) -> Result<(), SourceError> {
    if binlogs.iter().any(|(f, _)| f == file) {
        Ok(())
    } else {
        Err(SourceError::Purged {
            file: file.to_string(),
            oldest: binlogs
                .first()
                .map(|(f, _)| f.clone())
                .unwrap_or_else(|| "none".into()),
            origin,
        })
    }
}

/// Back-off between reconnect attempts: 0.5 s doubling to 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)).min(30_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::first(Arc::new(Settings {
            hosts: vec![("db".into(), 3306)],
            user: "repl".into(),
            password: String::new(),
            tls: MysqlTls {
                mode: tls::SslMode::Disabled,
                ca: None,
                cert: None,
                key: None,
            },
            server_id: 1,
            timeout: Duration::from_secs(1),
            start_position: StartPosition::Latest,
            filter: TableFilter::parse("", "").unwrap(),
            columns: ColumnFilter::parse("", "").unwrap(),
            schema_on_mismatch: history::follow::OnMismatch::Fail,
            schema_on_unparsed: history::follow::OnUnparsed::Fail,
        }))
    }

    #[test]
    fn only_a_driver_error_that_waiting_fixes_is_an_outage() {
        use mysql::DriverError as D;
        let outage = |d: D| classify(&target(), "streaming", mysql::Error::DriverError(d));
        for d in [
            D::ConnectTimeout,
            D::CouldNotConnect(None),
            D::Timeout,
            D::PacketOutOfSync,
        ] {
            assert!(outage(d).is_retriable());
        }
        for d in [
            D::UnexpectedPacket,
            D::PacketTooLarge,
            D::UnknownAuthPlugin("x".into()),
        ] {
            let e = outage(d);
            assert!(!e.is_retriable(), "{e}");
            assert!(e.to_string().contains("not retried"), "{e}");
        }
    }
}
