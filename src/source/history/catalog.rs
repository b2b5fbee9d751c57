//! The first definitions of the schema history, read from
//! information_schema in five queries whatever the number of tables, at a
//! known binlog position: the server's head is read before and after, and
//! the capture is taken as of the first when no DDL ran in between.

use mysql::prelude::Queryable;
use mysql::Conn;

use super::{canonical_charset, is_system, Column, History, Table};
use crate::source::{classify, head_position, SourceError, Target};

/// The binlog position a capture is valid at.
pub type At = (String, u64);

/// `(database, table)`.
pub type TableKey = (String, String);

/// Captures every tracked table's definition and the position it holds
/// at. `tracked` is the filter.
pub fn capture(
    conn: &mut Conn,
    target: &Target,
    tracked: &dyn Fn(&str, &str) -> bool,
) -> Result<(History, At), SourceError> {
    let mut tries = 0;
    loop {
        let before = head_position(conn, target)?;
        let history = read(conn, target, tracked)?;
        let after = head_position(conn, target)?;
        tries += 1;
        if before == after || no_ddl_between(conn, &before, &after).unwrap_or(false) {
            return Ok((history, before));
        }
        if tries == 5 {
            // A server that writes DDL without pause: the capture holds as
            // of `after` at the latest; a DDL met before it is handled as
            // one before the history begins.
            return Ok((history, after));
        }
    }
}

/// Whether the binlog between `from` and `to` (in one file) holds no
/// statement but transaction boundaries: then a capture taken between them
/// holds at `from`.
fn no_ddl_between(conn: &mut Conn, from: &At, to: &At) -> Option<bool> {
    if from.0 != to.0 {
        return Some(false);
    }
    let rows: Vec<mysql::Row> = conn
        .query(format!(
            "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT 10000",
            from.0.replace('\'', "''"),
            from.1
        ))
        .ok()?;
    for r in rows {
        let pos: u64 = r.get(1)?;
        if pos >= to.1 {
            break;
        }
        let kind: String = r.get(2)?;
        let info: String = r.get(5).unwrap_or_default();
        if kind == "Query" {
            let head = info.trim_start().to_ascii_uppercase();
            if !["BEGIN", "COMMIT", "XA ", "SAVEPOINT", "ROLLBACK"]
                .iter()
                .any(|k| head.starts_with(k))
            {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// The definitions of every tracked table as the server holds them now.
pub fn read(
    conn: &mut Conn,
    target: &Target,
    tracked: &dyn Fn(&str, &str) -> bool,
) -> Result<History, SourceError> {
    let q = |what: &'static str| move |e| classify(target, what, e);
    let (server_charset, version): (String, String) = conn
        .query_first("SELECT @@character_set_server, VERSION()")
        .map_err(q("reading character_set_server"))?
        .unwrap_or_default();
    let mut h = History {
        server_charset: canonical_charset(&server_charset),
        mariadb: version.contains("MariaDB"),
        ..Default::default()
    };
    let dbs: Vec<(String, String)> = conn
        .query("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
        .map_err(q("reading information_schema.SCHEMATA"))?;
    for (db, cs) in dbs {
        if !is_system(&db) {
            h.databases.insert(db, canonical_charset(&cs));
        }
    }
    // The names first (information_schema lists them without opening a
    // table), then the definitions of the captured databases only.
    let names: Vec<(String, String)> = conn
        .query("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES")
        .map_err(q("reading information_schema.TABLES"))?;
    // Every table of a database with a tracked table: a shadow table
    // (`_t_new` of an online schema change) becomes the tracked one by a
    // rename, and must be known by then.
    let captured: std::collections::HashSet<String> = names
        .into_iter()
        .filter(|(db, t)| !is_system(db) && tracked(db, t))
        .map(|(db, _)| db)
        .collect();
    let mut dbs: Vec<&String> = captured.iter().collect();
    dbs.sort();
    for db in &dbs {
        let tables: Vec<(String, String, Option<String>)> = conn
            .exec(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
                (db.as_str(),),
            )
            .map_err(q("reading information_schema.TABLES"))?;
        for (db, t, collation) in tables {
            let charset = collation
                .as_deref()
                .map(super::charset_of_collation)
                .unwrap_or_else(|| h.database_charset(&db));
            h.tables.insert(
                (db, t),
                Table {
                    columns: Vec::new(),
                    primary: Vec::new(),
                    charset,
                },
            );
        }
    }
    // Only the captured databases are asked for: information_schema opens
    // the tables it lists, and a server holds many more than a pipeline
    // captures.
    for db in &dbs {
        let columns: Vec<mysql::Row> = conn
            .exec(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, \
                 NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_MAXIMUM_LENGTH, \
                 CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
                 ORDER BY TABLE_NAME, ORDINAL_POSITION",
                (db.as_str(),),
            )
            .map_err(q("reading information_schema.COLUMNS"))?;
        for r in &columns {
            let key = (text(r, 0), text(r, 1));
            let Some(t) = h.tables.get_mut(&key) else {
                continue;
            };
            t.columns.push(column_of(r));
        }
        let primary: Vec<(String, String, String)> = conn
            .exec(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX",
                (db.as_str(),),
            )
            .map_err(q("reading information_schema.STATISTICS"))?;
        for (db, t, c) in primary {
            if let Some(t) = h.tables.get_mut(&(db, t)) {
                t.primary.push(c);
            }
        }
    }
    if h.mariadb {
        json_columns(conn, &mut h);
    }
    Ok(h)
}

/// MariaDB's JSON: a LONGTEXT with a `json_valid` CHECK. Only the tables
/// with a LONGTEXT column are asked about, by name (CHECK_CONSTRAINTS opens
/// every table it lists: seconds for a server of 10,000 tables).
fn json_columns(conn: &mut Conn, h: &mut History) {
    let mut by_db: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for ((db, t), def) in &h.tables {
        if def.columns.iter().any(|c| c.data_type == "longtext") {
            by_db.entry(db.clone()).or_default().push(t.clone());
        }
    }
    for (db, tables) in by_db {
        for names in tables.chunks(500) {
            let marks = vec!["?"; names.len()].join(", ");
            let mut params: Vec<mysql::Value> = vec![db.clone().into()];
            params.extend(names.iter().map(|n| mysql::Value::from(n.as_str())));
            let checks: Vec<(String, String, String)> = conn
                .exec(
                    format!(
                        "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE \
                         FROM information_schema.CHECK_CONSTRAINTS \
                         WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME IN ({marks})"
                    ),
                    params,
                )
                .unwrap_or_default();
            for (db, t, clause) in checks {
                let Some(name) = crate::source::schema::json_valid_column(&clause) else {
                    continue;
                };
                if let Some(t) = h.tables.get_mut(&(db, t)) {
                    for c in t.columns.iter_mut() {
                        if c.name == name && c.data_type == "longtext" {
                            c.json = true;
                        }
                    }
                }
            }
        }
    }
}

fn text(r: &mysql::Row, i: usize) -> String {
    match r.as_ref(i) {
        Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn num(r: &mysql::Row, i: usize) -> u64 {
    match r.as_ref(i) {
        Some(mysql::Value::Int(n)) => *n as u64,
        Some(mysql::Value::UInt(n)) => *n,
        Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).parse().unwrap_or(0),
        _ => 0,
    }
}

/// One row of information_schema.COLUMNS as a history column.
fn column_of(r: &mysql::Row) -> Column {
    let data_type = text(r, 3).to_ascii_lowercase();
    let column_type = text(r, 4);
    let lower = column_type.to_ascii_lowercase();
    let charset = match text(r, 9) {
        cs if cs.is_empty() => None,
        cs => Some(canonical_charset(&cs)),
    };
    let mut c = Column {
        name: text(r, 2),
        unsigned: lower.contains("unsigned"),
        precision: 0,
        scale: 0,
        fsp: 0,
        length: 0,
        charset,
        labels: crate::source::schema::parse_labels(&column_type),
        json: false,
        data_type,
    };
    match c.data_type.as_str() {
        "decimal" => {
            c.precision = num(r, 5);
            c.scale = num(r, 6);
        }
        "bit" => c.precision = num(r, 5),
        "datetime" | "timestamp" | "time" => c.fsp = num(r, 7),
        "char" | "varchar" | "binary" | "varbinary" => c.length = num(r, 8),
        _ => {}
    }
    if !super::is_text(&c.data_type) {
        c.charset = None;
    }
    c
}

/// The tables DDL changed in the binlog between `from` and `to`, with the
/// end of the last statement that changed each: read with SHOW BINLOG
/// EVENTS, once, when a pipeline starts behind its capture point. A
/// statement that cannot be parsed counts for the table its head names.
pub fn changed_between(
    conn: &mut Conn,
    target: &Target,
    from: &At,
    to: &At,
) -> Result<Vec<(TableKey, At)>, SourceError> {
    let mut out: Vec<(TableKey, At)> = Vec::new();
    if from >= to || from.0.is_empty() {
        return Ok(out);
    }
    let files: Vec<String> = crate::source::binary_logs(conn, target)?
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| *f >= from.0 && *f <= to.0)
        .collect();
    const PAGE: usize = 5000;
    for file in files {
        // Each page starts where the last one's last event ended: the
        // server reads each event once.
        let mut start = if file == from.0 { from.1 } else { 4 };
        loop {
            let rows: Vec<mysql::Row> = conn
                .query(format!(
                    "SHOW BINLOG EVENTS IN '{}' FROM {start} LIMIT {PAGE}",
                    file.replace('\'', "''")
                ))
                .map_err(|e| classify(target, "SHOW BINLOG EVENTS", e))?;
            let n = rows.len();
            let mut last_end = start;
            for r in rows {
                let (Some(pos), Some(kind), Some(end)) = (
                    r.get::<u64, _>(1),
                    r.get::<String, _>(2),
                    r.get::<u64, _>(4),
                ) else {
                    continue;
                };
                if file == to.0 && pos >= to.1 {
                    return Ok(out);
                }
                last_end = last_end.max(end);
                if kind != "Query" {
                    continue;
                }
                let info: String = r.get(5).unwrap_or_default();
                let (db, sql) = split_use(&info);
                let tables = match super::parse::parse(sql) {
                    Ok(ddl) => ddl.tables(db),
                    Err(_) => crate::source::ddl::classify(sql, db)
                        .filter(|(_, _, t)| !t.is_empty())
                        .map(|(_, d, t)| vec![(d, t)])
                        .unwrap_or_default(),
                };
                for t in tables {
                    out.retain(|(k, _)| *k != t);
                    out.push((t, (file.clone(), end)));
                }
            }
            if n < PAGE || last_end <= start {
                break;
            }
            start = last_end;
        }
    }
    Ok(out)
}

/// SHOW BINLOG EVENTS writes a Query event's default database as a
/// `use `db`; ` prefix.
fn split_use(info: &str) -> (&str, &str) {
    let Some(rest) = info.strip_prefix("use `") else {
        return ("", info);
    };
    match rest.split_once("`; ") {
        Some((db, sql)) => (db, sql),
        None => ("", info),
    }
}

/// The history a pipeline starting at `start` follows: captured now, with
/// the tables a DDL changed between `start` and the capture point marked
/// unknown up to that DDL. Says in the log what it did.
pub fn baseline(
    conn: &mut Conn,
    target: &Target,
    tracked: &dyn Fn(&str, &str) -> bool,
    start: &At,
    names_in_binlog: bool,
) -> Result<super::follow::Follower, SourceError> {
    let began = std::time::Instant::now();
    let (history, since) = capture(conn, target, tracked)?;
    let mut f = super::follow::Follower::new(history, since.clone());
    // With FULL metadata the rows before the capture point are named by
    // the binlog: the stretch need not be read (a table map without names
    // there, from before the server wrote them, stops instead).
    f.scanned = !names_in_binlog;
    if !names_in_binlog && !start.0.is_empty() && *start < since {
        for (key, at) in changed_between(conn, target, start, &since)? {
            if tracked(&key.0, &key.1) {
                f.unknown_until.insert(key, at);
            }
        }
    }
    log::info!(
        "schema history: {} tables captured at {}:{} in {} ms",
        f.history.tables.len(),
        since.0,
        since.1,
        began.elapsed().as_millis()
    );
    if !f.unknown_until.is_empty() {
        let mut names: Vec<String> = f
            .unknown_until
            .iter()
            .map(|((d, t), at)| format!("{d}.{t} (until {}:{})", at.0, at.1))
            .collect();
        names.sort();
        log::warn!(
            "schema history: DDL changed {} between the start {}:{} and the capture point; their rows before it are published only where the binlog names the columns (binlog_row_metadata=FULL), else the pipeline stops there: {}",
            if names.len() == 1 { "a table" } else { "tables" },
            start.0,
            start.1,
            names.join(", ")
        );
    }
    Ok(f)
}
