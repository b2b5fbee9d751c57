//! The binlog side never drops a change without a word: what it cannot
//! publish (statements instead of rows, partial row images, a replaced
//! binlog, a server gone MIXED) stops the pipeline with one line and the
//! checkpoint before it; what it can (XA transactions, CREATE TABLE ...
//! SELECT) is published exactly as committed.
//!
//! Each test that changes a server's settings or history runs on a MariaDB
//! of its own, so daemons of other tests never see it.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{
    binlog_head, checkpoint, consume, database, settings, sql, testenv, the_error, unique, with,
    Daemon, Msg,
};
use mysql::prelude::Queryable;
use serde_json::Value;

const TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))";

/// A private MariaDB instance for one test.
fn own_server(name: &str, port: u16, args: &[&str]) -> u16 {
    common::servers();
    let mut a = vec![
        "mariadb",
        name,
        &*Box::leak(port.to_string().into_boxed_str()),
    ];
    a.extend_from_slice(args);
    testenv(&a).parse().unwrap()
}

fn on(port: u16, topic: &str) -> Vec<(String, String)> {
    with(settings(topic), "B2K_MYSQL_PORT", &port.to_string())
}

fn use_db(port: u16, db: &str) -> mysql::Conn {
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c
}

/// Waits for the daemon to exit by itself; returns its status and log.
fn exits(daemon: &mut Daemon, within: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(s) = daemon.exited() {
            return (s, daemon.log_text());
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "daemon still running after {within:?}:\n{}",
        daemon.log_text()
    );
}

fn ids(msgs: &[Msg]) -> Vec<(String, i64)> {
    msgs.iter()
        .map(|m| {
            (
                m.value["type"].as_str().unwrap().to_string(),
                m.value["data"]["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn ins(ids: &[i64]) -> Vec<(String, i64)> {
    ids.iter().map(|i| ("insert".to_string(), *i)).collect()
}

/// (file, pos) of a checkpoint record.
fn at(cp: &Value) -> (String, u64) {
    (
        cp["file"].as_str().unwrap().to_string(),
        cp["pos"].as_u64().unwrap(),
    )
}

fn checkpoint_of(topic: &str) -> Value {
    checkpoint(&common::commits(topic), &common::pipe(topic))
        .unwrap_or_else(|| panic!("no checkpoint for {topic}"))
}

#[test]
fn a_server_restarted_with_binlog_format_mixed_stops_the_pipeline_at_reconnect() {
    // The server's config says MIXED; an operator set ROW with SET GLOBAL
    // only, so a restart brings MIXED back.
    let port = own_server("fmtmixed", 3321, &["--binlog-format=MIXED"]);
    sql(port)
        .query_drop("SET GLOBAL binlog_format=ROW")
        .unwrap();
    let db = database(port, "fmtmixed", &[TABLE]);
    let topic = unique("fmtmixed");
    let mut daemon = Daemon::start(&on(port, &topic));
    use_db(port, &db)
        .query_drop("INSERT INTO t VALUES (1,'before the restart')")
        .unwrap();
    assert_eq!(ids(&consume(&topic, &db, 1, 10.0)), ins(&[1]));

    testenv(&["kill", "fmtmixed"]);
    own_server("fmtmixed", 3321, &["--binlog-format=MIXED"]);
    let head = binlog_head(port);
    let mut c = use_db(port, &db);
    c.query_drop("INSERT INTO t VALUES (2,'after')").unwrap();
    c.query_drop("UPDATE t SET v='changed' WHERE id=1").unwrap();
    c.query_drop("DELETE FROM t WHERE id=2").unwrap();

    let (status, log) = exits(&mut daemon, Duration::from_secs(60));
    assert!(
        !status.success(),
        "a MIXED server must stop the daemon:\n{log}"
    );
    let e = the_error(&log);
    assert!(e.contains("binlog_format is MIXED"), "{e}");
    assert!(!log.contains("stopped cleanly"), "{log}");
    let cp = at(&checkpoint_of(&topic));
    assert!(
        cp <= head,
        "the checkpoint {cp:?} must not pass the restart ({head:?})"
    );
    println!("server restarted as MIXED: the daemon stopped at reconnect; checkpoint {cp:?}, head after the restart {head:?}");
}

#[test]
fn statement_logged_dml_stops_before_it_and_warn_steps_over_it() {
    let port = own_server("stmtdml", 3322, &[]);
    let db = database(
        port,
        "stmtdml",
        &[TABLE, "CREATE TABLE other (id INT PRIMARY KEY)"],
    );
    let topic = unique("stmtdml");
    let env = with(
        on(port, &topic),
        "B2K_FILTER_EXCLUDE",
        &format!("{db}.other"),
    );
    let mut daemon = Daemon::start(&env);
    let mut c = use_db(port, &db);
    c.query_drop("INSERT INTO t VALUES (1,'row')").unwrap();
    assert_eq!(ids(&consume(&topic, &db, 1, 10.0)), ins(&[1]));
    // pt-table-checksum style: statements for this session only. A
    // statement on an excluded table changes nothing published.
    c.query_drop("SET SESSION binlog_format=STATEMENT").unwrap();
    c.query_drop("INSERT INTO other VALUES (7)").unwrap();
    let (file, pos) = binlog_head(port);
    c.query_drop("INSERT INTO t VALUES (2,'statement')")
        .unwrap();
    c.query_drop("SET SESSION binlog_format=ROW").unwrap();
    c.query_drop("INSERT INTO t VALUES (3,'row again')")
        .unwrap();

    let (status, log) = exits(&mut daemon, Duration::from_secs(30));
    assert!(!status.success(), "{log}");
    let e = the_error(&log);
    for needle in [
        "INSERT",
        &format!("{db}.t"),
        &format!("{file}:"),
        "binlog_format=ROW",
        "mysql.on_statement_dml=warn",
    ] {
        assert!(e.contains(needle), "error lacks {needle:?}: {e}");
    }
    let cp = at(&checkpoint_of(&topic));
    assert!(
        cp <= (file.clone(), pos),
        "checkpoint {cp:?} passed the statement at {file}:{pos}"
    );
    assert_eq!(
        ids(&consume(&topic, &db, 1, 2.0)),
        ins(&[1]),
        "nothing after it was published"
    );

    // The operator decides to step over it.
    let daemon = Daemon::start(&with(env, "B2K_MYSQL_ON_STATEMENT_DML", "warn"));
    assert_eq!(ids(&consume(&topic, &db, 2, 10.0)), ins(&[1, 3]));
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!("INSERT on {db}.t at {file}:")) && log.contains("NOT published"),
        "the skipped statement is logged:\n{log}"
    );
    println!("statement INSERT at {file}:{pos}: stopped with the checkpoint before it; warn mode stepped over it");
}

#[test]
fn xa_transactions_publish_committed_rows_once_and_never_rolled_back_ones() {
    let port = own_server("xa", 3324, &[]);
    let db = database(port, "xa", &[TABLE]);
    let topic = unique("xa");
    let env = on(port, &topic);
    let daemon = Daemon::start(&env);
    let prepare = |xid: &str, rows: &[i64]| {
        // Its own session, which ends after the prepare: the transaction
        // stays prepared on the server, and another session decides it.
        let mut a = use_db(port, &db);
        a.query_drop(format!("XA START '{xid}'")).unwrap();
        for r in rows {
            a.query_drop(format!("INSERT INTO t VALUES ({r}, 'xa {xid}')"))
                .unwrap();
        }
        a.query_drop(format!("XA END '{xid}'")).unwrap();
        a.query_drop(format!("XA PREPARE '{xid}'")).unwrap();
    };
    let mut b = use_db(port, &db);
    prepare("a", &[1, 2]);
    b.query_drop("INSERT INTO t VALUES (10, 'plain')").unwrap();
    prepare("b", &[20]);
    b.query_drop("XA COMMIT 'a'").unwrap();
    b.query_drop("INSERT INTO t VALUES (11, 'plain')").unwrap();
    b.query_drop("XA ROLLBACK 'b'").unwrap();
    b.query_drop("XA START 'c'").unwrap();
    b.query_drop("INSERT INTO t VALUES (30, 'one phase')")
        .unwrap();
    b.query_drop("XA END 'c'").unwrap();
    b.query_drop("XA COMMIT 'c' ONE PHASE").unwrap();
    b.query_drop("INSERT INTO t VALUES (12, 'plain')").unwrap();

    let got = ids(&consume(&topic, &db, 7, 5.0));
    assert_eq!(
        got,
        ins(&[10, 1, 2, 11, 30, 12]),
        "committed XA rows once, at their commit; the rolled-back one never"
    );
    daemon.wait_caught_up_or_panic();

    // A restart between prepare and commit: the checkpoint may not pass
    // the undecided prepare, so the next start still publishes it.
    let daemon = Daemon::start(&env);
    let (pfile, ppos) = binlog_head(port);
    prepare("d", &[40, 41]);
    b.query_drop("INSERT INTO t VALUES (50, 'after the prepare')")
        .unwrap();
    assert!(ids(&consume(&topic, &db, 7, 5.0)).contains(&("insert".into(), 50)));
    thread::sleep(Duration::from_millis(1500));
    daemon.kill9();
    let cp = at(&checkpoint_of(&topic));
    assert!(
        cp <= (pfile.clone(), ppos),
        "checkpoint {cp:?} passed the undecided prepare at {pfile}:{ppos}"
    );
    b.query_drop("XA COMMIT 'd'").unwrap();
    let daemon = Daemon::start(&env);
    let got = ids(&consume(&topic, &db, 10, 5.0));
    let count = |id: i64| got.iter().filter(|(_, i)| *i == id).count();
    assert_eq!(
        count(40),
        1,
        "prepared rows published once after the restart: {got:?}"
    );
    assert_eq!(count(41), 1, "{got:?}");
    assert_eq!(count(20), 0, "{got:?}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    println!(
        "XA: commit, rollback, one phase and a kill -9 between prepare and commit; topic {got:?} (50 may repeat: it followed the undecided prepare)"
    );
}

trait CaughtUp {
    fn wait_caught_up_or_panic(self);
}

impl CaughtUp for Daemon {
    /// Waits for the checkpoint to reach the head, then stops cleanly.
    fn wait_caught_up_or_panic(mut self) {
        self.caught_up();
        let (status, log) = self.stop();
        assert!(status.success(), "{log}");
    }
}

#[test]
fn a_binlog_replaced_by_reset_master_is_refused_with_the_checkpoint_unmoved() {
    let port = own_server("reset", 3323, &[]);
    sql(port).query_drop("RESET MASTER").unwrap();
    let db = database(port, "reset", &[TABLE]);
    let topic = unique("reset");
    let env = on(port, &topic);
    let daemon = Daemon::start(&env);
    let mut c = use_db(port, &db);
    for i in 1..=3 {
        c.query_drop(format!("INSERT INTO t VALUES ({i}, 'first life')"))
            .unwrap();
    }
    assert_eq!(ids(&consume(&topic, &db, 3, 10.0)).len(), 3);
    daemon.wait_caught_up_or_panic();
    let before = checkpoint_of(&topic);
    assert!(
        before["file_id"].is_object(),
        "the checkpoint names its binlog: {before}"
    );

    // The file name comes back with other contents.
    thread::sleep(Duration::from_millis(1100));
    sql(port).query_drop("RESET MASTER").unwrap();
    let mut c = use_db(port, &db);
    for i in 4..=40 {
        c.query_drop(format!("INSERT INTO t VALUES ({i}, 'second life')"))
            .unwrap();
    }
    let (status, _, err) = common::run_to_end(&["run"], &env);
    assert!(!status.success(), "{err}");
    // Whichever guard sees it first: the checkpoint's offset no longer
    // starts an event, or the file's first event names another binlog.
    let e = the_error(&err);
    let file = before["file"].as_str().unwrap();
    assert!(
        (e.contains(&format!(
            "binlog {file} on the server is not the one the checkpoint points into"
        )) || e.contains(&format!("the checkpoint {file}:")))
            && e.contains("RESET MASTER")
            && e.contains("binlog2kafka reset"),
        "{e}"
    );
    let after = checkpoint_of(&topic);
    assert_eq!(at(&after), at(&before), "checkpoint unmoved");
    println!(
        "RESET MASTER while stopped: refused, checkpoint {:?} unmoved",
        at(&after)
    );
}

#[test]
fn reset_master_while_streaming_stops_with_what_happened() {
    let port = own_server("resetlive", 3326, &[]);
    let db = database(port, "resetlive", &[TABLE]);
    let topic = unique("resetlive");
    let mut daemon = Daemon::start(&on(port, &topic));
    let mut c = use_db(port, &db);
    c.query_drop("INSERT INTO t VALUES (1, 'x')").unwrap();
    assert_eq!(ids(&consume(&topic, &db, 1, 10.0)).len(), 1);
    thread::sleep(Duration::from_millis(1100));
    sql(port).query_drop("RESET MASTER").unwrap();
    use_db(port, &db)
        .query_drop("INSERT INTO t VALUES (2, 'y')")
        .unwrap();
    let (status, log) = exits(&mut daemon, Duration::from_secs(30));
    assert!(!status.success(), "{log}");
    let e = the_error(&log);
    assert!(
        e.contains("RESET MASTER") && e.contains("binlog2kafka reset"),
        "{e}"
    );
    println!("RESET MASTER while streaming: {e}");
}

#[test]
fn a_partial_row_image_mid_stream_stops_with_the_table_named() {
    let port = own_server("rowimage", 3325, &[]);
    let db = database(port, "rowimage", &[TABLE]);
    let topic = unique("rowimage");
    let mut daemon = Daemon::start(&on(port, &topic));
    let mut c = use_db(port, &db);
    c.query_drop("INSERT INTO t VALUES (1,'a')").unwrap();
    assert_eq!(ids(&consume(&topic, &db, 1, 10.0)).len(), 1);
    c.query_drop("SET SESSION binlog_row_image=MINIMAL")
        .unwrap();
    let head = binlog_head(port);
    c.query_drop("UPDATE t SET v='b' WHERE id=1").unwrap();
    let (status, log) = exits(&mut daemon, Duration::from_secs(30));
    assert!(!status.success(), "{log}");
    let e = the_error(&log);
    assert!(
        e.contains(&format!("{db}.t")) && e.contains("binlog_row_image=FULL"),
        "{e}"
    );
    let msgs = consume(&topic, &db, 2, 2.0);
    assert_eq!(msgs.len(), 1, "no partial update published: {msgs:?}");
    assert!(at(&checkpoint_of(&topic)) <= head);
}

#[test]
fn a_second_pipeline_with_the_same_server_id_is_refused_and_the_first_keeps_running() {
    common::servers();
    let db = database(common::MYSQL_PORT, "sameid", &[TABLE]);
    let first_topic = unique("sameid1");
    let env = with(
        settings(&first_topic),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.*"),
    );
    let id = env
        .iter()
        .find(|(k, _)| k == "B2K_MYSQL_SERVER_ID")
        .unwrap()
        .1
        .clone();
    let mut first = Daemon::start(&env);
    let second_topic = unique("sameid2");
    let env2 = with(
        with(settings(&second_topic), "B2K_MYSQL_SERVER_ID", &id),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.*"),
    );
    let (status, _, err) = common::run_to_end(&["run"], &env2);
    assert!(!status.success(), "{err}");
    let e = the_error(&err);
    assert!(
        e.contains(&format!("another replica with server_id {id} is connected"))
            && e.contains("mysql.server_id"),
        "{e}"
    );
    let (_, out, _) = common::run_to_end(&["check"], &env2);
    assert!(
        out.contains(&format!("server_id {id}")) && out.contains("FAIL"),
        "check names it:\n{out}"
    );
    use_db(common::MYSQL_PORT, &db)
        .query_drop("INSERT INTO t VALUES (1,'still flowing')")
        .unwrap();
    assert_eq!(ids(&consume(&first_topic, &db, 1, 10.0)), ins(&[1]));
    assert!(first.exited().is_none(), "the first daemon keeps running");
    let (status, log) = first.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn create_table_select_is_published_to_the_ddl_topic_with_its_rows() {
    common::servers();
    let db = database(common::MYSQL_PORT, "ctas", &[TABLE]);
    let topic = unique("ctas");
    let env = with(
        with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*")),
        "B2K_KAFKA_DDL_TOPIC",
        &format!("{topic}_ddl"),
    );
    let daemon = Daemon::start(&env);
    let mut c = use_db(common::MYSQL_PORT, &db);
    c.query_drop("INSERT INTO t VALUES (1,'a'),(2,'b')")
        .unwrap();
    c.query_drop("CREATE TABLE copy (PRIMARY KEY (id)) SELECT * FROM t")
        .unwrap();
    let ddl = consume(&format!("{topic}_ddl"), &db, 1, 10.0);
    assert_eq!(ddl.len(), 1, "{ddl:?}");
    assert_eq!(ddl[0].value["type"], "table-create");
    assert_eq!(ddl[0].value["table"], "copy");
    let rows = consume(&topic, &db, 4, 5.0);
    let copied: Vec<&Msg> = rows.iter().filter(|m| m.value["table"] == "copy").collect();
    assert_eq!(copied.len(), 2, "{rows:?}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn text_in_every_character_set_arrives_as_the_server_converts_it() {
    common::servers();
    // Decodable sets are compared with CONVERT(c USING utf8mb4); cp850 has
    // no decoder here, so it must arrive as base64 of its bytes (TO_BASE64).
    let sets = [
        "latin1", "ucs2", "utf16", "utf16le", "utf32", "gbk", "big5", "sjis", "cp932", "ujis",
        "euckr", "cp1251", "cp1250", "cp1256", "koi8r", "koi8u", "latin2", "greek", "hebrew",
        "tis620", "macroman", "cp866", "gb2312",
    ];
    let cols: Vec<String> = sets
        .iter()
        .map(|s| format!("c_{s} VARCHAR(60) CHARACTER SET {s}"))
        .collect();
    let ddl = format!(
        "CREATE TABLE texts (id INT PRIMARY KEY, {}, c_cp850 VARCHAR(60) CHARACTER SET cp850)",
        cols.join(", ")
    );
    let db = database(common::MYSQL_PORT, "charsets", &[&ddl]);
    let topic = unique("charsets");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let daemon = Daemon::start(&env);
    let mut c = use_db(common::MYSQL_PORT, &db);
    // Each set gets text it can hold; latin1 the 0x80-0x9F characters that
    // ISO-8859-1 would get wrong.
    let sample = |s: &str| -> &str {
        match s {
            "latin1" => "It’s “quoted” – 5€ … Œ Ÿ ‰",
            "ucs2" | "utf16" | "utf16le" | "utf32" => "Grüße, 中文, Привет, 😀 (not in ucs2: ?)",
            "gbk" | "gb2312" => "中文 汉字",
            "big5" => "中文 繁體",
            "sjis" | "cp932" | "ujis" => "日本語 カタカナ",
            "euckr" => "한국어",
            "cp1251" | "koi8r" | "cp866" => "Привет, мир",
            "koi8u" => "Привіт, світ",
            "cp1250" | "latin2" => "Zażółć gęślą jaźń",
            "cp1256" => "مرحبا",
            "greek" => "Καλημέρα",
            "hebrew" => "שלום",
            "tis620" => "สวัสดี",
            "macroman" => "Café ∑ π",
            _ => unreachable!(),
        }
    };
    let mut values: Vec<String> = sets
        .iter()
        .map(|s| {
            let t = if *s == "ucs2" {
                "Grüße, 中文, Привет".to_string()
            } else {
                sample(s).to_string()
            };
            format!("'{}'", t.replace('\'', "''"))
        })
        .collect();
    values.push("'Çà é ü'".into());
    c.query_drop("SET NAMES utf8mb4").unwrap();
    c.query_drop(format!(
        "INSERT INTO texts VALUES (1, {})",
        values.join(", ")
    ))
    .unwrap();
    let msgs = consume(&topic, &db, 1, 10.0);
    assert_eq!(msgs.len(), 1);
    let data = &msgs[0].value["data"];
    for s in sets {
        let expected: String = c
            .query_first(format!("SELECT CONVERT(c_{s} USING utf8mb4) FROM texts"))
            .unwrap()
            .unwrap();
        assert_eq!(
            data[format!("c_{s}")].as_str(),
            Some(expected.as_str()),
            "column c_{s}"
        );
        assert!(!expected.contains('\u{fffd}'), "{s}: {expected}");
    }
    let b64: String = c
        .query_first("SELECT TO_BASE64(c_cp850) FROM texts")
        .unwrap()
        .unwrap();
    assert_eq!(
        data["c_cp850"].as_str(),
        Some(b64.as_str()),
        "cp850 as base64"
    );
    let (status, log) = daemon.stop();
    assert!(status.success());
    assert_eq!(
        log.matches("column c_cp850: values in character set cp850")
            .count(),
        1,
        "warned once:\n{log}"
    );
    println!(
        "{} character sets decoded as the server converts them; cp850 as base64 with one warning",
        sets.len()
    );
}

#[test]
fn a_binlog_replaced_where_the_offset_still_starts_an_event_is_caught_by_its_first_event() {
    // Same file name, the same offset at an event boundary, other contents:
    // only the file's identity (its first event's server and time) tells.
    let port = own_server("reset2", 3327, &[]);
    let db = database(port, "reset2", &[TABLE]);
    let topic = unique("reset2");
    let env = on(port, &topic);
    sql(port).query_drop("RESET MASTER").unwrap();
    let d = Daemon::start(&env);
    use_db(port, &db)
        .query_drop("INSERT INTO t VALUES (1,'a')")
        .unwrap();
    assert_eq!(ids(&consume(&topic, &db, 1, 10.0)), ins(&[1]));
    d.wait_caught_up_or_panic();
    let before = checkpoint_of(&topic);
    thread::sleep(Duration::from_millis(1100));
    // A statement of the same size after a reset ends at the same offset.
    sql(port).query_drop("RESET MASTER").unwrap();
    use_db(port, &db)
        .query_drop("INSERT INTO t VALUES (2,'a')")
        .unwrap();
    assert_eq!(
        binlog_head(port),
        at(&before),
        "the same offset in the new file"
    );
    let (status, _, err) = common::run_to_end(&["run"], &env);
    assert!(!status.success(), "{err}");
    let e = the_error(&err);
    assert!(
        e.contains("is not the one the checkpoint points into") && e.contains("binlog2kafka reset"),
        "{e}"
    );
    assert_eq!(
        at(&checkpoint_of(&topic)),
        at(&before),
        "checkpoint unmoved"
    );
    println!("replaced binlog with a valid offset: {e}");
}
