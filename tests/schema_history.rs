//! The schema history against the live server: random DDL sequences run on
//! the private MariaDB, and after each statement the history's definition
//! of every table must equal what information_schema says.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use binlog2kafka::pipeline::schema_store;
use binlog2kafka::source::history::{catalog, parse::parse, History};
use common::{consume, database, only, sql, unique, with, Daemon, MYSQL_PORT};
use mysql::prelude::Queryable;
use serde_json::json;

/// The private MariaDB that writes MINIMAL table-map metadata (no names),
/// started once for the tests of this file.
fn minimal() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        common::servers();
        common::testenv(&[
            "mariadb",
            "minimal",
            "3308",
            "--binlog-row-metadata=MINIMAL",
        ])
        .parse()
        .unwrap()
    })
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const TYPES: &[&str] = &[
    "INT",
    "INT UNSIGNED",
    "TINYINT",
    "SMALLINT UNSIGNED",
    "MEDIUMINT",
    "BIGINT",
    "BIGINT UNSIGNED",
    "DECIMAL(10,2)",
    "DECIMAL(30,10) UNSIGNED",
    "NUMERIC(5)",
    "FLOAT",
    "DOUBLE",
    "FLOAT(30)",
    "BIT(3)",
    "BIT(17)",
    "DATE",
    "DATETIME",
    "DATETIME(3)",
    "TIMESTAMP(6) NULL",
    "TIME(2)",
    "YEAR",
    "CHAR(4)",
    "VARCHAR(20)",
    "VARCHAR(300) CHARACTER SET latin1",
    "VARCHAR(10) CHARACTER SET utf8mb3",
    "CHAR(3) BINARY",
    "BINARY(8)",
    "VARBINARY(40)",
    "TINYTEXT",
    "TEXT",
    "MEDIUMTEXT CHARACTER SET latin1",
    "LONGTEXT",
    "TEXT(300)",
    "BLOB",
    "TINYBLOB",
    "LONGBLOB",
    "BLOB(70000)",
    "ENUM('a','b','it''s')",
    "SET('x','y','z')",
    "JSON",
    "BOOL",
    "INTEGER",
    "DEC(4,1)",
    "REAL",
    "NATIONAL CHAR(5)",
    "NVARCHAR(7)",
    "VARCHAR(5) COLLATE latin1_swedish_ci",
    "INT ZEROFILL",
    "SERIAL",
];

// Not ucs2: MariaDB converts ENUM/SET labels out of it byte by byte
// (`x` becomes `\\0x`), a quirk of its own the history does not copy.
const CHARSETS: &[&str] = &["utf8mb4", "latin1", "utf8mb3", "ascii", "latin2"];

struct Gen {
    rng: Rng,
    dbs: [String; 2],
    /// Clause kinds run successfully, with counts.
    kinds: BTreeMap<&'static str, usize>,
    n: usize,
}

impl Gen {
    fn name(&mut self, prefix: &str) -> String {
        self.n += 1;
        if self.rng.below(5) == 0 {
            format!("`{prefix} {}`", self.n)
        } else {
            format!("{prefix}{}", self.n)
        }
    }

    fn column_def(&mut self) -> String {
        let name = self.name("c");
        let ty = *self.rng.pick(TYPES);
        let extra = *self.rng.pick(&[
            "",
            " NOT NULL",
            " NULL",
            " DEFAULT NULL",
            " COMMENT 'a, b'",
            " INVISIBLE",
        ]);
        // SERIAL and NOT NULL columns without defaults are fine on an
        // empty table; INVISIBLE needs a nullable column.
        let extra = if ty == "SERIAL" || ty.contains("TIMESTAMP") {
            ""
        } else {
            extra
        };
        format!("{name} {ty}{extra}")
    }

    fn tables(&self, c: &mut mysql::Conn) -> Vec<(String, String)> {
        c.exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?) ORDER BY 1, 2",
            (&self.dbs[0], &self.dbs[1]),
        )
        .unwrap()
    }

    fn columns(&self, c: &mut mysql::Conn, (db, t): &(String, String)) -> Vec<String> {
        c.exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, t),
        )
        .unwrap()
    }

    /// One statement and the clause kinds it uses.
    fn statement(&mut self, c: &mut mysql::Conn) -> (String, Vec<&'static str>) {
        let tables = self.tables(c);
        if tables.len() < 3 || self.rng.below(8) == 0 {
            let name = self.name("t");
            let n = 1 + self.rng.below(5);
            let mut cols: Vec<String> = (0..n).map(|_| self.column_def()).collect();
            let mut kinds = vec!["CREATE TABLE"];
            if self.rng.below(2) == 0 {
                let key = self.name("id");
                cols.insert(0, format!("{key} INT NOT NULL"));
                cols.push(format!("PRIMARY KEY ({key})"));
                kinds.push("PRIMARY KEY");
            }
            if self.rng.below(3) == 0 {
                cols.push(format!(
                    "KEY {} ({})",
                    self.name("k"),
                    cols[0].split(' ').next().unwrap()
                ));
            }
            let cs = if self.rng.below(2) == 0 {
                kinds.push("table CHARSET");
                format!(" DEFAULT CHARSET={}", self.rng.pick(CHARSETS))
            } else {
                String::new()
            };
            let db = self.rng.pick(&self.dbs).clone();
            return (
                format!(
                    "CREATE TABLE `{db}`.{name} ({}) ENGINE=InnoDB{cs}",
                    cols.join(", ")
                ),
                kinds,
            );
        }
        let t = self.rng.pick(&tables).clone();
        let full = format!("`{}`.`{}`", t.0, t.1.replace('`', "``"));
        let cols = self.columns(c, &t);
        let col = |g: &mut Gen| format!("`{}`", g.rng.pick(&cols).replace('`', "``"));
        let place = |g: &mut Gen| match g.rng.below(3) {
            0 => " FIRST".to_string(),
            1 => format!(" AFTER {}", col(g)),
            _ => String::new(),
        };
        match self.rng.below(13) {
            0 => {
                let other = self.name("t");
                let db = self.rng.pick(&self.dbs).clone();
                (
                    format!("CREATE TABLE `{db}`.{other} LIKE {full}"),
                    vec!["CREATE TABLE LIKE"],
                )
            }
            1 => {
                let other = self.name("t");
                let db = self.rng.pick(&self.dbs).clone();
                (
                    format!("RENAME TABLE {full} TO `{db}`.{other}"),
                    vec!["RENAME TABLE"],
                )
            }
            2 => (format!("DROP TABLE IF EXISTS {full}"), vec!["DROP TABLE"]),
            3 => (
                format!(
                    "ALTER TABLE {full} CONVERT TO CHARACTER SET {}",
                    self.rng.pick(CHARSETS)
                ),
                vec!["CONVERT TO CHARACTER SET"],
            ),
            4 => (
                format!(
                    "ALTER TABLE {full} DEFAULT CHARACTER SET {}",
                    self.rng.pick(CHARSETS)
                ),
                vec!["DEFAULT CHARACTER SET"],
            ),
            5 => (
                format!("ALTER TABLE {full} DROP PRIMARY KEY"),
                vec!["DROP PRIMARY KEY"],
            ),
            6 => (
                format!("ALTER TABLE {full} ADD PRIMARY KEY ({})", col(self)),
                vec!["ADD PRIMARY KEY"],
            ),
            7 => {
                let new = self.name("r");
                (
                    format!("ALTER TABLE {full} RENAME COLUMN {} TO {new}", col(self)),
                    vec!["RENAME COLUMN"],
                )
            }
            8 => {
                let new = self.name("t");
                (
                    format!("ALTER TABLE {full} RENAME TO `{}`.{new}", self.dbs[0]),
                    vec!["ALTER TABLE RENAME"],
                )
            }
            _ => {
                // One to three column clauses in one statement.
                let mut clauses = Vec::new();
                let mut kinds = Vec::new();
                for _ in 0..1 + self.rng.below(3) {
                    match self.rng.below(6) {
                        0 | 1 => {
                            let d = self.column_def();
                            let ine = if self.rng.below(4) == 0 {
                                "IF NOT EXISTS "
                            } else {
                                ""
                            };
                            let p = place(self);
                            clauses.push(format!("ADD COLUMN {ine}{d}{p}"));
                            kinds.push("ADD COLUMN");
                        }
                        2 => {
                            clauses.push(format!("DROP COLUMN {}", col(self)));
                            kinds.push("DROP COLUMN");
                        }
                        3 => {
                            let d = self.column_def();
                            let (_, ty) = d.split_once(' ').unwrap();
                            let p = place(self);
                            clauses.push(format!("MODIFY {} {ty}{p}", col(self)));
                            kinds.push("MODIFY");
                        }
                        4 => {
                            let d = self.column_def();
                            let p = place(self);
                            clauses.push(format!("CHANGE {} {d}{p}", col(self)));
                            kinds.push("CHANGE");
                        }
                        _ => {
                            clauses.push(format!("ALTER COLUMN {} SET DEFAULT NULL", col(self)));
                            kinds.push("ALTER COLUMN");
                        }
                    }
                }
                (format!("ALTER TABLE {full} {}", clauses.join(", ")), kinds)
            }
        }
    }
}

#[test]
fn the_history_follows_thousands_of_random_ddl_statements_as_the_server_does() {
    let steps: usize = std::env::var("SCHEMA_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1200);
    common::servers();
    let mut c = sql(MYSQL_PORT);
    let dbs = [unique("hist_a"), unique("hist_b")];
    c.query_drop(format!(
        "CREATE DATABASE `{}` CHARACTER SET utf8mb4",
        dbs[0]
    ))
    .unwrap();
    c.query_drop(format!("CREATE DATABASE `{}` CHARACTER SET latin1", dbs[1]))
        .unwrap();
    c.query_drop(format!("USE `{}`", dbs[0])).unwrap();
    let tracked = {
        let dbs = dbs.clone();
        move |db: &str, _: &str| dbs.iter().any(|d| d == db)
    };
    let target = common::target(MYSQL_PORT);
    let read = |c: &mut mysql::Conn| -> History {
        let mut h = catalog::read(c, &target, &tracked).unwrap();
        h.databases.retain(|d, _| dbs.contains(d));
        h
    };
    let mut history = read(&mut c);
    let mut g = Gen {
        rng: Rng(0x5eed_1234_abcd_0001),
        dbs: dbs.clone(),
        kinds: BTreeMap::new(),
        n: 0,
    };
    let (mut ran, mut refused) = (0usize, 0usize);
    let mut tables_seen = BTreeSet::new();
    for step in 0..steps {
        let (stmt, kinds) = g.statement(&mut c);
        if c.query_drop(&stmt).is_err() {
            refused += 1; // the server refused it: nothing changed
            continue;
        }
        ran += 1;
        for k in kinds {
            *g.kinds.entry(k).or_default() += 1;
        }
        let ddl =
            parse(&stmt).unwrap_or_else(|e| panic!("step {step}: cannot parse `{stmt}`: {e}"));
        history
            .apply(&ddl, &dbs[0], &tracked)
            .unwrap_or_else(|e| panic!("step {step}: `{stmt}`: {e}"));
        let truth = read(&mut c);
        for (k, t) in &truth.tables {
            tables_seen.insert(k.clone());
            let ours = history.tables.get(k);
            assert_eq!(
                ours,
                Some(t),
                "step {step}: after `{stmt}`, {}.{} differs",
                k.0,
                k.1
            );
        }
        assert_eq!(
            history.tables.keys().collect::<Vec<_>>(),
            truth.tables.keys().collect::<Vec<_>>(),
            "step {step}: after `{stmt}`, the tables differ"
        );
    }
    println!(
        "{ran} statements run and followed ({refused} refused by the server), {} tables; clause kinds: {:?}",
        tables_seen.len(),
        g.kinds
    );
    assert!(
        ran >= steps / 2,
        "most statements must run: {ran} of {steps}"
    );
    assert!(g.kinds.len() >= 15, "{:?}", g.kinds);
}

/// A pipeline that falls behind while the table is altered four times
/// (paused with SIGSTOP, as a slow consumer of the binlog would be) reads
/// every row with the columns it had when it was written: not the table's
/// shape when the row is read, and never `@1`-style names.
#[test]
fn a_lagging_pipeline_names_every_row_by_the_shape_it_was_written_in() {
    let port = minimal();
    let db = database(
        port,
        "lag",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT, c VARCHAR(10), e ENUM('x','y'))"],
    );
    let topic = unique("lag");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &port.to_string());
    let d = Daemon::start(&env);
    d.signal("-STOP");
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for q in [
        "INSERT INTO t VALUES (1, 10, 'c1', 'y')",
        "ALTER TABLE t ADD COLUMN `we ird` INT AFTER id",
        "INSERT INTO t VALUES (2, 20, 11, 'c2', 'x')",
        "ALTER TABLE t DROP COLUMN a",
        "INSERT INTO t VALUES (3, 30, 'c3', 'y')",
        "ALTER TABLE t MODIFY c VARCHAR(10) AFTER id, ADD f INT FIRST",
        "INSERT INTO t VALUES (40, 4, 'c4', 41, 'x')",
        "ALTER TABLE t CHANGE e kind ENUM('x','y','z'), RENAME COLUMN f TO g",
        "INSERT INTO t VALUES (50, 5, 'c5', 51, 'z')",
    ] {
        c.query_drop(q).unwrap();
    }
    d.signal("-CONT");
    let msgs = consume(&topic, &db, 5, 20.0);
    let data: Vec<_> = msgs.iter().map(|m| m.value["data"].clone()).collect();
    assert_eq!(
        data,
        vec![
            json!({"id": 1, "a": 10, "c": "c1", "e": "y"}),
            json!({"id": 2, "we ird": 20, "a": 11, "c": "c2", "e": "x"}),
            json!({"id": 3, "we ird": 30, "c": "c3", "e": "y"}),
            json!({"f": 40, "id": 4, "c": "c4", "we ird": 41, "e": "x"}),
            json!({"g": 50, "id": 5, "c": "c5", "we ird": 51, "kind": "z"}),
        ],
        "{}",
        d.log_text()
    );
    for m in &msgs {
        assert_eq!(m.value["primary_key_columns"], json!(["id"]));
    }
    let metrics = common::http_get(&d.log_text(), "/metrics");
    assert!(
        metrics.contains("binlog2kafka_schema_versions_total 5\n")
            && metrics.contains("binlog2kafka_schema_tables "),
        "{metrics}"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// A pipeline stopped while its table is altered, then killed (-9) while
/// it catches up, recovers the history its checkpoint names from the
/// commit-log topic each time, and names every row by the shape it was
/// written in, on a server that writes no names.
#[test]
fn a_restart_across_alters_recovers_the_history_of_its_checkpoint() {
    let port = minimal();
    let db = database(port, "gap", &["CREATE TABLE t (id INT PRIMARY KEY, a INT)"]);
    let topic = unique("gap");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &port.to_string());
    let mut d = Daemon::start(&env);
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 1)").unwrap();
    d.caught_up();
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    // While it is down: rows between three ALTERs, and many rows after
    // them, so that a kill lands in the catch-up.
    c.query_drop("INSERT INTO t VALUES (2, 2)").unwrap();
    c.query_drop("ALTER TABLE t ADD COLUMN b INT FIRST")
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (3, 3, 3)").unwrap();
    c.query_drop("ALTER TABLE t DROP COLUMN a, ADD COLUMN e ENUM('p','q') AFTER id")
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (4, 4, 'q')").unwrap();
    c.query_drop("ALTER TABLE t RENAME COLUMN b TO bee")
        .unwrap();
    for i in 0..20 {
        let values: Vec<String> = (0..500)
            .map(|j| format!("({}, {}, 'p')", 1000 + i * 500 + j, 100 + i * 500 + j))
            .collect();
        c.query_drop(format!("INSERT INTO t VALUES {}", values.join(",")))
            .unwrap();
    }
    let mut d = Daemon::start(&env);
    d.wait_for_log("schema history: ", Duration::from_secs(20));
    assert!(
        d.log_text().contains("tables recovered at version"),
        "{}",
        d.log_text()
    );
    d.kill9();
    let mut d = Daemon::start(&env);
    d.caught_up();
    let msgs = consume(&topic, &db, 10_004, 20.0);
    let mut by_id = std::collections::BTreeMap::new();
    for m in &msgs {
        let id = m.value["data"]["id"].as_i64().unwrap();
        by_id.entry(id).or_insert_with(|| m.value["data"].clone());
    }
    assert_eq!(by_id.len(), 10_004, "every row arrives");
    assert_eq!(by_id[&1], json!({"id": 1, "a": 1}));
    assert_eq!(by_id[&2], json!({"id": 2, "a": 2}));
    assert_eq!(by_id[&3], json!({"b": 3, "id": 3, "a": 3}));
    assert_eq!(by_id[&4], json!({"b": 4, "id": 4, "e": "q"}));
    assert_eq!(by_id[&100], json!({"bee": 1000, "id": 100, "e": "p"}));
    for m in &msgs {
        assert!(
            !m.value["data"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('@')),
            "no positional names: {}",
            m.value
        );
    }
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// A new pipeline whose start.position lies before an ALTER captures the
/// history at the server's current position: on a server that writes no
/// names, the rows before the ALTER cannot be named for certain, so it
/// stops with one line, the checkpoint where it started.
#[test]
fn a_start_in_the_past_across_an_alter_without_names_stops_instead_of_guessing() {
    let port = minimal();
    let db = database(
        port,
        "past",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT)"],
    );
    let (file, pos) = common::binlog_head(port);
    let mut c = sql(port);
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 1)"))
        .unwrap();
    c.query_drop(format!("ALTER TABLE `{db}`.t ADD COLUMN b INT FIRST"))
        .unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (2, 2, 2)"))
        .unwrap();
    let topic = unique("past");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &port.to_string());
    let env = with(env, "B2K_START_POSITION", &format!("{file}:{pos}"));
    let mut d = Daemon::start_waiting(&env);
    let status = d.wait(Duration::from_secs(60));
    assert!(!status.success());
    let e = common::the_error(&d.log_text());
    assert!(
        e.contains(&format!("cannot name the columns of {db}.t at "))
            && e.contains("before the schema history begins")
            && e.contains("binlog_row_metadata is not FULL"),
        "{e}"
    );
    let cp = common::checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap();
    assert_eq!(
        (cp["file"].as_str().unwrap(), cp["pos"].as_u64().unwrap()),
        (file.as_str(), pos)
    );
    assert!(
        consume(&topic, &db, 2, 3.0).is_empty(),
        "nothing was published"
    );
}

/// A checkpoint naming a schema history the topic does not hold (deleted,
/// or records removed) stops the start with one line, nothing read.
#[test]
fn a_lost_schema_history_is_one_clear_error() {
    common::servers();
    let db = database(MYSQL_PORT, "lost", &["CREATE TABLE t (id INT PRIMARY KEY)"]);
    let topic = unique("lost");
    let env = only(&topic, &db);
    let mut d = Daemon::start(&env);
    d.caught_up();
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    // The checkpoint, naming a version nobody wrote.
    let mut rec: binlog2kafka::checkpoint::Record = serde_json::from_value(
        common::checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap(),
    )
    .unwrap();
    rec.schema_version = 99;
    rec.released = true;
    let mut client = common::kafka_client();
    binlog2kafka::checkpoint::write(&mut client, &common::commits(&topic), &rec).unwrap();
    let mut d = Daemon::start_waiting(&env);
    let status = d.wait(Duration::from_secs(30));
    assert!(!status.success());
    let e = common::the_error(&d.log_text());
    assert!(
        e.contains(&format!(
            "the schema history of pipeline '{}' (version 99, named by its checkpoint) is not in",
            common::pipe(&topic)
        )),
        "{e}"
    );
}

/// The drift guard: a column added without the binlog seeing it
/// (`sql_log_bin=0`) makes the next table map disagree with the history,
/// and the pipeline stops naming the table, the position and what differs,
/// even where the binlog names the columns itself.
#[test]
fn a_table_map_that_disagrees_with_the_history_stops_the_pipeline() {
    common::servers();
    let db = database(
        MYSQL_PORT,
        "drift",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT)"],
    );
    let topic = unique("drift");
    let mut d = Daemon::start(&only(&topic, &db));
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 1)").unwrap();
    d.caught_up();
    c.query_drop("SET SESSION sql_log_bin = 0").unwrap();
    c.query_drop("ALTER TABLE t ADD COLUMN z INT AFTER id")
        .unwrap();
    c.query_drop("SET SESSION sql_log_bin = 1").unwrap();
    c.query_drop("INSERT INTO t VALUES (2, 2, 2)").unwrap();
    let status = d.wait(Duration::from_secs(30));
    assert!(!status.success());
    let e = common::the_error(&d.log_text());
    assert!(
        e.contains(&format!("the table map of {db}.t at "))
            && e.contains("does not match its definition in the schema history: the binlog has 3 columns, the schema history 2 (id, a)"),
        "{e}"
    );
    assert_eq!(
        consume(&topic, &db, 2, 3.0).len(),
        1,
        "the second row is not published"
    );
}

/// Runs pt-online-schema-change (Percona Toolkit) on `db`.`t` of the
/// server at `port`: a shadow table made LIKE it, triggers, chunked
/// copies, then `RENAME TABLE t TO _t_old, _t_new TO t`.
fn pt_osc(port: u16, db: &str, alter: &str) {
    let out = std::process::Command::new("pt-online-schema-change")
        .args([
            "--alter",
            alter,
            "--execute",
            "--recursion-method=none",
            "--chunk-size=50",
            "--no-check-alter",
            &format!("D={db},t=t,h=127.0.0.1,P={port},u=tester,p=tester"),
        ])
        .output()
        .expect("pt-online-schema-change (Debian's percona-toolkit; scripts/testenv installs it)");
    assert!(
        out.status.success(),
        "pt-online-schema-change failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// pt-online-schema-change alters a table under load, once while the
/// daemon runs and once while it is stopped, on a server that writes no
/// column names: every row the application wrote arrives once under the
/// table's real name, with the columns it had when it was written; the
/// shadow table's copies are not published (the filter names only `t`).
#[test]
fn pt_online_schema_change_under_load_keeps_every_row_exact() {
    let port = minimal();
    let db = database(
        port,
        "ptosc",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT, c VARCHAR(10))"],
    );
    let topic = unique("ptosc");
    let env = with(
        common::settings(&topic),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.t"),
    );
    let env = with(env, "B2K_MYSQL_PORT", &port.to_string());
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for id in 0..200 {
        c.query_drop(format!(
            "INSERT INTO t (id, a, c) VALUES ({id}, {}, 'c{id}')",
            id * 10
        ))
        .unwrap();
    }
    let mut d = Daemon::start(&env);
    // The application: inserts rows naming only id, a and c, all along.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let next = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1000));
    let writer = {
        let (writing, next, db) = (writing.clone(), next.clone(), db.clone());
        std::thread::spawn(move || {
            let mut c = sql(port);
            c.query_drop(format!("USE `{db}`")).unwrap();
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                c.query_drop(format!(
                    "INSERT INTO t (id, a, c) VALUES ({id}, {}, 'c{id}')",
                    id * 10
                ))
                .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    pt_osc(
        port,
        &db,
        "ADD COLUMN x INT DEFAULT 7, MODIFY c VARCHAR(20) AFTER id",
    );
    d.caught_up();
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    pt_osc(port, &db, "DROP COLUMN x, ADD COLUMN y INT DEFAULT 9 FIRST");
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    let mut d = Daemon::start(&env);
    d.caught_up();
    let written = next.load(std::sync::atomic::Ordering::SeqCst) - 1000;
    let msgs = consume(&topic, &db, (written + 200) as usize, 10.0);
    let mut seen = std::collections::BTreeSet::new();
    let mut inserts = 0;
    for m in &msgs {
        assert_eq!(m.value["table"], "t", "only the real table: {}", m.value);
        let data = m.value["data"].as_object().unwrap();
        let id = data["id"].as_i64().unwrap();
        assert_eq!(data["a"], json!(id * 10), "{}", m.value);
        assert_eq!(data["c"], json!(format!("c{id}")), "{}", m.value);
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort();
        assert!(
            [
                vec!["a", "c", "id"],
                vec!["a", "c", "id", "x"],
                vec!["a", "c", "id", "y"]
            ]
            .contains(&keys),
            "columns of one of the table's shapes: {}",
            m.value
        );
        if m.value["type"] == "insert" {
            seen.insert(id);
            inserts += 1;
        }
    }
    assert_eq!(
        seen.len() as i64,
        written,
        "every row the application wrote"
    );
    assert_eq!(inserts, written, "each once");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// This pipeline's live records in the schema topic, as compaction leaves
/// them: the newest value of each key, a tombstone removing it.
fn live_schema_keys(topic: &str, pipeline: &str) -> BTreeSet<String> {
    let mut client = common::kafka_client();
    let (earliest, latest) = client.offsets(topic, 0).unwrap();
    let mut live = BTreeSet::new();
    let mut at = earliest;
    while at < latest {
        let recs = client.fetch(topic, 0, at, 4 << 20).unwrap();
        for r in &recs {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            if !key.starts_with(&format!("{pipeline}#schema#")) {
                continue;
            }
            if r.value.is_some() {
                live.insert(key);
            } else {
                live.remove(&key);
            }
        }
        at = recs.last().map_or(latest, |r| r.offset + 1);
    }
    live
}

/// `sql` applied to `h` with `d` as the default database.
fn alter(h: &mut History, sql: &str) {
    h.apply(&parse(sql).unwrap(), "d", &|_, _| true).unwrap();
}

/// The history of `sql` (CREATE TABLE statements) as version `version`.
fn versions_of(sql: &str, version: u64) -> (History, Vec<schema_store::Version>) {
    let h = History::from_sql(sql).unwrap();
    let v = schema_store::whole(&h, version, "f.000001:4");
    (h, v)
}

/// Fencing: once a successor has opened the pipeline's schema topic under
/// the pipeline's transactional id, the broker refuses the next version a
/// paused predecessor writes; the successor writes on.
#[test]
fn a_paused_predecessor_cannot_add_a_version_once_its_successor_holds_the_history() {
    common::servers();
    let topic = unique("fenced_schema");
    let txn_id = unique("binlog2kafka-schema");
    let mut a = common::kafka_client();
    let first = a
        .init_transactional(&txn_id)
        .unwrap()
        .expect("Tansu fences");
    let mut old = schema_store::Store::open(a, &topic, "p", -1, Some(&first)).unwrap();
    let (mut h, v1) = versions_of("CREATE TABLE d.t (id INT PRIMARY KEY);", 1);
    old.start_over(&v1).unwrap();

    let mut b = common::kafka_client();
    let second = b.init_transactional(&txn_id).unwrap().unwrap();
    let mut new = schema_store::Store::open(b, &topic, "p", -1, Some(&second)).unwrap();
    assert_eq!(new.recover(1).unwrap().as_ref(), Some(&h));

    alter(&mut h, "ALTER TABLE t ADD COLUMN a INT");
    let v2 = schema_store::changes(&h, 2, "f.000001:99", [("d".into(), "t".into())]);
    let stale = old.write(&v2);
    assert!(stale.as_ref().is_err_and(|e| e.is_fenced()), "{stale:?}");
    new.write(&v2).expect("the successor writes on");
}

/// A restart recovers the version its checkpoint names, and deletes the
/// versions a crashed run wrote after it: the numbers are made again from
/// there, and a stale record must not stand in for a table.
#[test]
fn a_restart_recovers_its_checkpoints_version_and_deletes_the_later_ones() {
    common::servers();
    let topic = unique("restart_schema");
    let store = |topic: &str| {
        schema_store::Store::open(common::kafka_client(), topic, "p", -1, None).unwrap()
    };
    let mut s = store(&topic);
    let (mut h, v1) = versions_of("CREATE TABLE d.t (id INT PRIMARY KEY);", 1);
    s.start_over(&v1).unwrap();
    let at_1 = h.clone();
    alter(&mut h, "ALTER TABLE t ADD COLUMN a INT");
    s.write(&schema_store::changes(
        &h,
        2,
        "x",
        [("d".into(), "t".into())],
    ))
    .unwrap();
    assert_eq!(live_schema_keys(&topic, "p").len(), 4);

    // The checkpoint named version 1: version 2 goes.
    assert_eq!(store(&topic).recover(1).unwrap(), Some(at_1));
    assert_eq!(
        live_schema_keys(&topic, "p"),
        BTreeSet::from([
            "p#schema#0000000000000001#.".to_string(),
            "p#schema#0000000000000001#d.t".to_string(),
        ])
    );
    assert_eq!(store(&topic).recover(2).unwrap(), None, "version 2 is gone");
}

/// The pruner: after a checkpoint at version C, per table every version
/// older than its newest at or below C is deleted, and all of a table
/// dropped at or before C; a restart at C still recovers C exactly.
#[test]
fn the_versions_a_checkpoint_has_passed_are_deleted() {
    common::servers();
    let topic = unique("pruned_schema");
    let mut s = schema_store::Store::open(common::kafka_client(), &topic, "p", -1, None).unwrap();
    let mut pruner = s.pruner().unwrap();
    let (mut h, v1) = versions_of(
        "CREATE TABLE d.a (id INT PRIMARY KEY); CREATE TABLE d.b (id INT PRIMARY KEY);",
        1,
    );
    s.start_over(&v1).unwrap();
    alter(&mut h, "ALTER TABLE a ADD COLUMN x INT");
    s.write(&schema_store::changes(
        &h,
        2,
        "x",
        [("d".into(), "a".into())],
    ))
    .unwrap();
    alter(&mut h, "DROP TABLE a");
    s.write(&schema_store::changes(
        &h,
        3,
        "x",
        [("d".into(), "a".into())],
    ))
    .unwrap();
    let mut client = common::kafka_client();
    assert_eq!(pruner.prune(&mut client, 1).unwrap(), 0);
    // At 2: a@1 and the character sets of 1.
    assert_eq!(pruner.prune(&mut client, 2).unwrap(), 2);
    // At 3: a@2 and a@3 (a is gone), the character sets of 2.
    assert_eq!(pruner.prune(&mut client, 3).unwrap(), 3);
    assert_eq!(
        live_schema_keys(&topic, "p"),
        BTreeSet::from([
            "p#schema#0000000000000001#d.b".to_string(),
            "p#schema#0000000000000003#.".to_string(),
        ])
    );
    let mut again =
        schema_store::Store::open(common::kafka_client(), &topic, "p", -1, None).unwrap();
    assert_eq!(again.recover(3).unwrap(), Some(h));
}

/// End to end, on a server that writes no names: after three ALTERs and a
/// clean stop, the schema topic holds one record per table (its newest
/// version) and the character sets of the newest version.
#[test]
fn the_schema_topic_keeps_only_what_the_checkpoint_can_need() {
    let port = minimal();
    let db = database(
        port,
        "prune",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT)"],
    );
    let topic = unique("prune");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &port.to_string());
    let mut d = Daemon::start(&env);
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for q in [
        "ALTER TABLE t ADD COLUMN b INT",
        "INSERT INTO t VALUES (1, 1, 1)",
        "ALTER TABLE t DROP COLUMN a",
        "ALTER TABLE t ADD COLUMN c INT FIRST",
        "INSERT INTO t VALUES (2, 2, 2)",
    ] {
        c.query_drop(q).unwrap();
    }
    d.caught_up();
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    let schema = format!("{}_schema", common::commits(&topic));
    let pipeline = common::pipe(&topic);
    assert_eq!(
        live_schema_keys(&schema, &pipeline),
        BTreeSet::from([
            format!("{pipeline}#schema#0000000000000004#."),
            format!("{pipeline}#schema#0000000000000004#{db}.t"),
        ]),
        "{log}"
    );
    // And the next start recovers from them.
    let d = Daemon::start(&env);
    c.query_drop("INSERT INTO t VALUES (3, 3, 3)").unwrap();
    let msgs = consume(&topic, &db, 3, 10.0);
    assert_eq!(msgs[2].value["data"], json!({"c": 3, "id": 3, "b": 3}));
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("recovered at version 4"), "{log}");
}

/// A pipeline that ran before `kafka.schema_topic` existed kept its
/// versions in the commit-log topic: the next start moves them to the
/// schema topic (and deletes them there), and goes on with them.
#[test]
fn a_history_kept_in_the_commit_log_topic_is_moved_to_the_schema_topic() {
    let port = minimal();
    let db = database(
        port,
        "moved",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT)"],
    );
    let topic = unique("moved");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &port.to_string());
    let mut d = Daemon::start(&env);
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("ALTER TABLE t ADD COLUMN b INT FIRST")
        .unwrap();
    d.caught_up();
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    // As the earlier release left it: the versions in the commit-log
    // topic, and no schema topic of the name configured now.
    let (commits, pipeline) = (common::commits(&topic), common::pipe(&topic));
    let schema = format!("{commits}_schema");
    let mut client = common::kafka_client();
    let (from, _) = client.offsets(&schema, 0).unwrap();
    // A handful of records: one fetch has them all.
    let recs = client.fetch(&schema, 0, from, 4 << 20).unwrap();
    let copies: Vec<_> = recs
        .iter()
        .map(|r| binlog2kafka::kafka::OutRecord {
            key: r.key.clone(),
            value: r.value.clone(),
            timestamp_ms: 0,
            headers: Vec::new(),
        })
        .collect();
    client.produce(&commits, 0, &copies).unwrap();
    let env = with(env, "B2K_KAFKA_SCHEMA_TOPIC", &format!("{schema}_new"));

    let d = Daemon::start(&env);
    c.query_drop("INSERT INTO t VALUES (7, 1, 1)").unwrap();
    let msgs = consume(&topic, &db, 1, 10.0);
    assert_eq!(msgs[0].value["data"], json!({"b": 7, "id": 1, "a": 1}));
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "schema history: moved version 2 (1 tables) from {commits} to {schema}_new"
        )),
        "{log}"
    );
    assert!(live_schema_keys(&commits, &pipeline).is_empty());
    assert_eq!(
        live_schema_keys(&format!("{schema}_new"), &pipeline).len(),
        2
    );
}
