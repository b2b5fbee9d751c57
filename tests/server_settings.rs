//! The server settings the world runs, not only the lab's: a binlog
//! without checksums (`binlog_checksum=NONE`) and MariaDB's compressed
//! events (`log_bin_compress=ON`, here from 10 bytes up so that nearly every
//! statement and row event is compressed). Each kind of compressed event is
//! handled exactly like its plain form, and a pipeline restarts on either.

mod common;

use std::time::Duration;

use common::*;
use mysql::prelude::Queryable;

/// The MariaDB of these tests (`binlog_checksum=NONE`, compressed events),
/// started once per test binary: its tests run side by side, and two
/// `testenv` calls would initialise the same data directory at once.
fn own_server(name: &str, port: u16, args: &[&str]) -> u16 {
    static STARTED: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        servers();
        let p = port.to_string();
        let mut a = vec!["mariadb", name, &p];
        a.extend_from_slice(args);
        testenv(&a).parse().unwrap()
    })
}

const NO_CHECKSUMS_COMPRESSED: &[&str] = &[
    "--binlog-checksum=NONE",
    "--log-bin-compress=ON",
    "--log-bin-compress-min-len=10",
];

/// A daemon's settings on `port`, publishing only `db` (the tests share
/// the server, and one of them logs a statement on purpose).
fn on(port: u16, topic: &str, db: &str) -> Vec<(String, String)> {
    let env = with(settings(topic), "B2K_MYSQL_PORT", &port.to_string());
    with(env, "B2K_FILTER_INCLUDE", &format!("{db}.*"))
}

fn use_db(port: u16, db: &str) -> mysql::Conn {
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c
}

fn inserted_ids(msgs: &[Msg]) -> Vec<i64> {
    let mut ids: Vec<i64> = msgs
        .iter()
        .filter(|m| m.value["type"] == "insert")
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

/// With checksums off the server's first ROTATE still carries a CRC32,
/// which once stayed on the checkpoint's file name (`binlog.000001\u{FFFD}y]U`)
/// so that every restart failed as "purged". Compressed rows, XA and DDL
/// statements are published as their plain forms are.
#[test]
fn without_checksums_and_with_compressed_events_every_row_arrives_across_restarts() {
    let port = own_server("nock", 3371, NO_CHECKSUMS_COMPRESSED);
    let db = database(
        port,
        "nock",
        &["CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"],
    );
    let topic = unique("nock");
    let ddl_topic = format!("{topic}_ddl");
    let env = with(on(port, &topic, &db), "B2K_KAFKA_DDL_TOPIC", &ddl_topic);
    let commits = common::commits(&topic);
    let pipe = common::pipe(&topic);
    let mut c = use_db(port, &db);
    let big = "x".repeat(2000);

    let mut d = Daemon::start(&env);
    c.query_drop("INSERT INTO t VALUES (1, 'small')").unwrap();
    c.query_drop(format!("INSERT INTO t VALUES (2, '{big}')"))
        .unwrap();
    // An XA transaction: XA START/END/COMMIT are compressed statements.
    c.query_drop("XA START 'nock-xa-transaction'").unwrap();
    c.query_drop("INSERT INTO t VALUES (3, 'in xa')").unwrap();
    c.query_drop("XA END 'nock-xa-transaction'").unwrap();
    c.query_drop("XA PREPARE 'nock-xa-transaction'").unwrap();
    c.query_drop("XA COMMIT 'nock-xa-transaction'").unwrap();
    // A DDL, compressed: it reaches the DDL topic.
    c.query_drop("ALTER TABLE t ADD COLUMN w INT NULL").unwrap();
    c.query_drop("INSERT INTO t VALUES (4, 'after alter', 44)")
        .unwrap();
    c.query_drop("FLUSH BINARY LOGS").unwrap();
    c.query_drop("INSERT INTO t VALUES (5, 'next file', 55)")
        .unwrap();
    d.wait_caught_up(&commits, &pipe);
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    let cp = checkpoint(&commits, &pipe).unwrap();
    let file = cp["file"].as_str().unwrap();
    assert!(
        file.len() == "binlog.000001".len()
            && file.starts_with("binlog.")
            && file[7..].bytes().all(|b| b.is_ascii_digit()),
        "the checkpoint names a real file: {file:?}"
    );

    // The restart resumes from that checkpoint, twice.
    for (id, round) in [(6, "restart"), (7, "second restart")] {
        let d = Daemon::start(&env);
        c.query_drop(format!("INSERT INTO t VALUES ({id}, '{round}', {id})"))
            .unwrap();
        let got = consume(&topic, &db, id as usize, 10.0);
        assert_eq!(
            inserted_ids(&got),
            (1..=id).collect::<Vec<_>>(),
            "after the {round}"
        );
        let (status, log) = d.stop();
        assert!(status.success(), "{log}");
        assert!(!log.contains("purged"), "{log}");
    }
    let msgs = consume(&topic, &db, 7, 5.0);
    let big_row = msgs.iter().find(|m| m.value["data"]["id"] == 2).unwrap();
    assert_eq!(big_row.value["data"]["v"].as_str(), Some(big.as_str()));
    assert_eq!(
        msgs.iter()
            .find(|m| m.value["data"]["id"] == 4)
            .unwrap()
            .value["data"]["w"],
        44
    );
    let ddl = consume(&ddl_topic, &db, 1, 10.0);
    assert!(
        ddl.iter().any(|m| m.value["sql"]
            .as_str()
            .is_some_and(|s| s.contains("ADD COLUMN w"))),
        "the compressed ALTER is on the DDL topic: {:?}",
        ddl.iter().map(|m| &m.value).collect::<Vec<_>>()
    );
}

/// A statement-logged change in a compressed event stops the pipeline
/// before it, as the plain one does, instead of being skipped silently.
#[test]
fn a_compressed_statement_logged_change_stops_the_pipeline_like_a_plain_one() {
    let port = own_server("nock", 3371, NO_CHECKSUMS_COMPRESSED);
    let db = database(
        port,
        "nockstmt",
        &["CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"],
    );
    let topic = unique("nockstmt");
    let env = on(port, &topic, &db);
    let mut d = Daemon::start(&env);
    let mut c = use_db(port, &db);
    c.query_drop("INSERT INTO t VALUES (1, 'row')").unwrap();
    assert_eq!(inserted_ids(&consume(&topic, &db, 1, 10.0)), vec![1]);
    c.query_drop("SET SESSION binlog_format=STATEMENT").unwrap();
    let (file, _) = binlog_head(port);
    c.query_drop("UPDATE t SET v = 'changed by a statement' WHERE id = 1")
        .unwrap();
    let status = d.wait(Duration::from_secs(30));
    let log = d.log_text();
    assert!(!status.success(), "{log}");
    let e = the_error(&log);
    for needle in [
        "UPDATE",
        &format!("{db}.t"),
        &format!("{file}:"),
        "binlog_format=ROW",
    ] {
        assert!(e.contains(needle), "error lacks {needle:?}: {e}");
    }
}

/// `replay` reads the same files, compressed events and all.
#[test]
fn replay_reads_compressed_events_without_checksums() {
    let port = own_server("nock", 3371, NO_CHECKSUMS_COMPRESSED);
    let db = database(
        port,
        "nockreplay",
        &["CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"],
    );
    let mut c = use_db(port, &db);
    c.query_drop("FLUSH BINARY LOGS").unwrap();
    let (file, _) = binlog_head(port);
    c.query_drop(format!("INSERT INTO t VALUES (1, '{}')", "y".repeat(500)))
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (2, 'two')").unwrap();
    c.query_drop("FLUSH BINARY LOGS").unwrap();
    let path = root().join(format!("target/testenv/mariadb-nock/data/{file}"));
    let env = on(port, "unused", &db);
    let (status, out, err) = run_to_end(&["replay", "--stdout", path.to_str().unwrap()], &env);
    assert!(status.success(), "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["data"]["v"].as_str().map(str::len), Some(500));
    assert_eq!(rows[1]["data"]["id"], 2);
}
