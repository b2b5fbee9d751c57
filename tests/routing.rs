//! The formats, topic templates, DDL topic and transaction markers against
//! the real MariaDB and broker, read back with kafka-python and checked
//! field by field.

mod common;

use common::{consume, database, only, settings, sql, unique, with, Daemon, Msg};
use mysql::prelude::Queryable;
use serde_json::{json, Value};

/// Runs one INSERT, UPDATE and DELETE of a row with a DECIMAL, a DATE and
/// a DATETIME(3).
fn insert_update_delete(db: &str) {
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (7, 'ann', 12.50, '2024-02-29', '2024-02-29 12:34:56.789')")
        .unwrap();
    c.query_drop("UPDATE t SET amount = 13.75, name = 'ann b' WHERE id = 7")
        .unwrap();
    c.query_drop("DELETE FROM t WHERE id = 7").unwrap();
}

const TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(8,2), d DATE, dt DATETIME(3))";

#[test]
fn each_format_is_read_back_field_by_field() {
    common::servers();
    let db = database(common::MYSQL_PORT, "formats", &[TABLE]);
    let topics: Vec<(String, &str)> = ["maxwell", "debezium", "canal"]
        .iter()
        .map(|f| (unique(&format!("fmt_{f}")), *f))
        .collect();
    let daemons: Vec<Daemon> = topics
        .iter()
        .map(|(topic, f)| Daemon::start(&with(only(topic, &db), "B2K_OUTPUT_FORMAT", f)))
        .collect();
    insert_update_delete(&db);
    let read = |i: usize| -> Vec<Msg> {
        let m = consume(&topics[i].0, &db, 3, 10.0);
        assert_eq!(m.len(), 3, "{} messages", topics[i].1);
        m
    };

    let m = read(0);
    assert_eq!(
        m[0].value["data"],
        json!({"id": 7, "name": "ann", "amount": 12.50, "d": "2024-02-29", "dt": "2024-02-29 12:34:56.789"})
    );
    assert_eq!(m[1].value["type"], "update");
    assert_eq!(m[1].value["old"], json!({"name": "ann", "amount": 12.50}));
    assert_eq!(m[2].value["type"], "delete");
    assert_eq!(m[0].key, json!({"database": db, "table": "t", "pk.id": 7}));

    let m = read(1);
    let after =
        json!({"id": 7, "name": "ann", "amount": "12.50", "d": 19782, "dt": 1_709_210_096_789i64});
    assert_eq!(m[0].value["op"], "c");
    assert_eq!(m[0].value["before"], Value::Null);
    assert_eq!(m[0].value["after"], after);
    assert_eq!(m[1].value["op"], "u");
    assert_eq!(m[1].value["before"], after);
    assert_eq!(m[1].value["after"]["amount"], "13.75");
    assert_eq!(m[2].value["op"], "d");
    assert_eq!(m[2].value["after"], Value::Null);
    assert_eq!(m[2].value["before"]["name"], "ann b");
    for msg in &m {
        let src = &msg.value["source"];
        assert_eq!(src["connector"], "mysql");
        assert_eq!(src["db"], db.as_str());
        assert_eq!(src["table"], "t");
        assert_eq!(src["snapshot"], "false");
        assert!(
            src["file"].as_str().unwrap().starts_with("binlog."),
            "{src}"
        );
        assert!(src["pos"].as_u64().unwrap() > 4);
        assert!(src["gtid"].as_str().is_some(), "MariaDB has GTIDs: {src}");
        assert!(msg.value["ts_ms"].as_i64().unwrap() >= src["ts_ms"].as_i64().unwrap());
        assert_eq!(msg.value["transaction"], Value::Null);
        // key_format=auto: Debezium's key.
        assert_eq!(msg.key, json!({"id": 7}));
    }

    let m = read(2);
    assert_eq!(m[0].value["type"], "INSERT");
    assert_eq!(
        m[0].value["data"],
        json!([{"id": "7", "name": "ann", "amount": "12.50", "d": "2024-02-29", "dt": "2024-02-29 12:34:56.789"}])
    );
    assert_eq!(m[0].value["old"], Value::Null);
    assert_eq!(m[1].value["type"], "UPDATE");
    assert_eq!(
        m[1].value["old"],
        json!([{"name": "ann", "amount": "12.50"}])
    );
    assert_eq!(m[2].value["type"], "DELETE");
    for msg in &m {
        assert_eq!(msg.value["isDdl"], false);
        assert_eq!(msg.value["pkNames"], json!(["id"]));
        assert_eq!(msg.value["table"], "t");
        assert_eq!(
            msg.value["sqlType"],
            json!({"id": 4, "name": 12, "amount": 3, "d": 91, "dt": 93})
        );
        assert_eq!(msg.value["mysqlType"]["amount"], "decimal(8,2)");
        assert_eq!(msg.value["mysqlType"]["dt"], "datetime(3)");
        // key_format=auto: canal sends no key.
        assert_eq!(msg.key, Value::Null);
    }
    println!("maxwell, debezium and canal: 3 messages each, every field checked");
    drop(daemons);
}

#[test]
fn templated_topics_and_a_ddl_mid_stream() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "route",
        &[
            "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))",
            "CREATE TABLE b (id INT PRIMARY KEY)",
        ],
    );
    let prefix = unique("tpl");
    let ddl_topic = format!("{prefix}_ddl");
    let env = with(
        only(&format!("{prefix}.{{database}}.{{table}}"), &db),
        "B2K_KAFKA_DDL_TOPIC",
        &ddl_topic,
    );
    let env = with(env, "B2K_KAFKA_TOPIC_PARTITIONS", "2");
    let env = with(env, "B2K_KAFKA_COMMIT_TOPIC", &format!("{prefix}_commits"));
    let env = with(env, "B2K_PIPELINE_NAME", &prefix);
    let daemon = Daemon::start(&env);
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO a VALUES (1, 'before')").unwrap();
    c.query_drop("INSERT INTO b VALUES (1)").unwrap();
    c.query_drop("ALTER TABLE a ADD COLUMN extra INT NOT NULL DEFAULT 5")
        .unwrap();
    c.query_drop("INSERT INTO a VALUES (2, 'after', 9)")
        .unwrap();
    c.query_drop("UPDATE a SET v = 'after too' WHERE id = 1")
        .unwrap();
    // A statement that is not DDL is not published.
    c.query_drop("CREATE USER IF NOT EXISTS 'route_probe'@'localhost'")
        .unwrap();
    c.query_drop("DROP USER 'route_probe'@'localhost'").unwrap();
    c.query_drop("DROP TABLE b").unwrap();

    let mut a = consume(&format!("{prefix}.{db}.a"), &db, 3, 10.0);
    assert_eq!(a.len(), 3);
    // Two partitions: put the rows back in binlog order.
    a.sort_by_key(|m| {
        let (file, at) = m.value["position"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        (file.to_string(), at.parse::<u64>().unwrap())
    });
    assert_eq!(
        a[0].value["data"],
        json!({"id": 1, "v": "before"}),
        "the row before the ALTER has no new column"
    );
    assert_eq!(
        a[1].value["data"],
        json!({"id": 2, "v": "after", "extra": 9}),
        "the row after it has"
    );
    assert_eq!(
        a[2].value["data"],
        json!({"id": 1, "v": "after too", "extra": 5})
    );
    let b = consume(&format!("{prefix}.{db}.b"), &db, 1, 5.0);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].value["table"], "b");

    let ddl = consume(&ddl_topic, &db, 2, 10.0);
    assert_eq!(ddl.len(), 2, "ALTER and DROP, not the user statements");
    assert_eq!(ddl[0].value["type"], "table-alter");
    assert_eq!(ddl[0].value["table"], "a");
    assert!(ddl[0].value["sql"]
        .as_str()
        .unwrap()
        .contains("ADD COLUMN extra"));
    assert_eq!(ddl[0].key, json!({"database": db, "table": "a"}));
    assert_eq!(ddl[1].value["type"], "table-drop");
    assert_eq!(ddl[1].value["table"], "b");
    // The ALTER sits between the rows it separates in the binlog.
    let pos = |m: &Msg| -> u64 {
        m.value["position"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(pos(&a[0]) < pos(&ddl[0]) && pos(&ddl[0]) < pos(&a[1]));
    let log = daemon.log_text();
    assert!(
        log.contains(&format!("created topic {prefix}.{db}.a")),
        "{log}"
    );
    println!(
        "templated topics: a={} b={} rows; DDL topic: {} statements",
        a.len(),
        b.len(),
        ddl.len()
    );
    drop(daemon);
}

#[test]
fn transaction_markers_and_tombstones_in_debezium_format() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "txmark",
        &[
            "CREATE TABLE p (id INT PRIMARY KEY)",
            "CREATE TABLE q (id INT PRIMARY KEY)",
        ],
    );
    let topic = unique("txmark");
    let tx_topic = format!("{topic}_tx");
    let env = with(only(&topic, &db), "B2K_OUTPUT_FORMAT", "debezium");
    let env = with(env, "B2K_OUTPUT_TRANSACTION_MARKERS", "true");
    let env = with(env, "B2K_OUTPUT_TOMBSTONES", "true");
    let daemon = Daemon::start(&with(env, "B2K_KAFKA_TRANSACTION_TOPIC", &tx_topic));
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("BEGIN").unwrap();
    c.query_drop("INSERT INTO p VALUES (1), (2)").unwrap();
    c.query_drop("INSERT INTO q VALUES (1)").unwrap();
    c.query_drop("COMMIT").unwrap();
    c.query_drop("DELETE FROM p WHERE id = 2").unwrap();

    // Rows and the tombstone: read everything (no database filter).
    let rows = consume(&topic, "", 5, 10.0);
    assert_eq!(rows.len(), 5, "3 inserts, a delete and its tombstone");
    let first_id = rows[0].value["transaction"]["id"].clone();
    for (i, m) in rows[..3].iter().enumerate() {
        assert_eq!(m.value["transaction"]["id"], first_id);
        assert_eq!(m.value["transaction"]["total_order"], i as u64 + 1);
    }
    assert_eq!(rows[1].value["transaction"]["data_collection_order"], 2);
    assert_eq!(rows[2].value["transaction"]["data_collection_order"], 1);
    assert_eq!(rows[3].value["op"], "d");
    assert_eq!(rows[4].value, Value::Null, "the tombstone has no value");
    assert_eq!(rows[4].key, json!({"id": 2}));
    assert_eq!(rows[4].key, rows[3].key, "and the deleted row's key");

    let marks = consume(&tx_topic, "", 4, 10.0);
    assert_eq!(marks.len(), 4, "BEGIN and END for each transaction");
    assert_eq!(marks[0].value["status"], "BEGIN");
    assert_eq!(marks[0].value["id"], first_id);
    assert_eq!(marks[0].key, json!({"id": first_id}));
    assert_eq!(marks[1].value["status"], "END");
    assert_eq!(marks[1].value["event_count"], 3);
    assert_eq!(
        marks[1].value["data_collections"],
        json!([
            {"data_collection": format!("{db}.p"), "event_count": 2},
            {"data_collection": format!("{db}.q"), "event_count": 1}
        ])
    );
    assert_eq!(marks[3].value["event_count"], 1);
    assert_ne!(marks[2].value["id"], first_id);
    println!(
        "transaction markers: {} on {tx_topic}; tombstone after the delete",
        marks.len()
    );
    drop(daemon);
}

/// Waits for the daemon to stop by itself; its log.
fn stops_by_itself(d: &mut Daemon) -> (std::process::ExitStatus, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(s) = d.exited() {
            return (s, d.log_text());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("daemon still running:\n{}", d.log_text());
}

#[test]
fn tables_whose_names_render_to_one_topic_stop_the_pipeline_instead_of_mixing() {
    common::servers();
    // `x`.`a.b` and `x.a`.`b` both render to p.x.a.b.
    let db = database(
        common::MYSQL_PORT,
        "clash",
        &["CREATE TABLE `a.b` (id INT PRIMARY KEY)"],
    );
    let dotted = format!("{db}.a");
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("CREATE DATABASE `{dotted}`")).unwrap();
    c.query_drop(format!("CREATE TABLE `{dotted}`.b (id INT PRIMARY KEY)"))
        .unwrap();
    let prefix = unique("clash");
    let env = with(
        with(settings(&prefix), "B2K_FILTER_INCLUDE", &format!("{db}*.*")),
        "B2K_KAFKA_TOPIC",
        &format!("{prefix}.{{database}}.{{table}}"),
    );
    let env = with(env, "B2K_KAFKA_COMMIT_TOPIC", &format!("{prefix}_commits"));
    let mut d = Daemon::start(&env);
    c.query_drop(format!("INSERT INTO `{db}`.`a.b` VALUES (1)"))
        .unwrap();
    c.query_drop(format!("INSERT INTO `{dotted}`.b VALUES (2)"))
        .unwrap();
    let (status, log) = stops_by_itself(&mut d);
    assert!(!status.success(), "{log}");
    let e = log.lines().last().unwrap();
    assert!(
        e.contains(&format!("`{db}`.`a.b` as {prefix}.{db}.a.b"))
            && e.contains(&format!("`{dotted}`.`b` as"))
            && e.contains("rows would mix"),
        "{e}"
    );
    let topic = format!("{prefix}.{db}.a.b");
    let msgs = consume(&topic, &db, 2, 3.0);
    assert_eq!(msgs.len(), 1, "only the first table's row: {msgs:?}");
    let mixed = consume(&topic, &dotted, 1, 1.0);
    assert!(
        mixed.is_empty(),
        "the second table's row was not mixed in: {mixed:?}"
    );

    // `a b` and `a_b`: the same topic name after `_` replaces the space.
    let db2 = database(
        common::MYSQL_PORT,
        "clash2",
        &[
            "CREATE TABLE `a b` (id INT PRIMARY KEY)",
            "CREATE TABLE a_b (id INT PRIMARY KEY)",
        ],
    );
    let prefix2 = unique("clash2");
    let env = with(
        with(
            settings(&prefix2),
            "B2K_FILTER_INCLUDE",
            &format!("{db2}.*"),
        ),
        "B2K_KAFKA_TOPIC",
        &format!("{prefix2}.{{table}}"),
    );
    let mut d = Daemon::start(&with(
        env,
        "B2K_KAFKA_COMMIT_TOPIC",
        &format!("{prefix2}_commits"),
    ));
    c.query_drop(format!("INSERT INTO `{db2}`.`a b` VALUES (1)"))
        .unwrap();
    c.query_drop(format!("INSERT INTO `{db2}`.a_b VALUES (2)"))
        .unwrap();
    let (status, log) = stops_by_itself(&mut d);
    assert!(!status.success(), "{log}");
    assert!(
        log.lines().last().unwrap().contains("rows would mix"),
        "{log}"
    );
}

#[test]
fn a_primary_key_change_is_a_delete_and_a_create_in_debezium_and_one_update_elsewhere() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "pkchange",
        &["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    let dbz = unique("pk_dbz");
    let mxw = unique("pk_mxw");
    let d1 = Daemon::start(&with(
        with(only(&dbz, &db), "B2K_OUTPUT_FORMAT", "debezium"),
        "B2K_OUTPUT_TOMBSTONES",
        "true",
    ));
    let d2 = Daemon::start(&only(&mxw, &db));
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 'a')").unwrap();
    c.query_drop("UPDATE t SET id = 2 WHERE id = 1").unwrap();

    let all = consume(&dbz, "", 4, 10.0);
    assert_eq!(all.len(), 4, "create, delete, tombstone, create: {all:?}");
    let (del, tomb, create) = (&all[1], &all[2], &all[3]);
    assert_eq!(
        (del.value["op"].as_str(), &del.key),
        (Some("d"), &json!({"id": 1}))
    );
    assert_eq!(del.value["before"], json!({"id": 1, "v": "a"}));
    assert_eq!(del.headers["__debezium.newkey"], json!("{\"id\":2}"));
    assert_eq!((&tomb.value, &tomb.key), (&Value::Null, &json!({"id": 1})));
    assert_eq!(
        (create.value["op"].as_str(), &create.key),
        (Some("c"), &json!({"id": 2}))
    );
    assert_eq!(create.value["after"], json!({"id": 2, "v": "a"}));
    assert_eq!(create.headers["__debezium.oldkey"], json!("{\"id\":1}"));

    // Maxwell writes one update under the new key, the old one in `old`.
    let m = consume(&mxw, &db, 2, 10.0);
    assert_eq!(m.len(), 2);
    assert_eq!(m[1].value["type"], "update");
    assert_eq!(m[1].value["old"], json!({"id": 1}));
    assert_eq!(m[1].key["pk.id"], 2);
    drop((d1, d2));
}
