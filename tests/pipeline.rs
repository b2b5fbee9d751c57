//! The pipeline end to end, against a real MariaDB and a real Kafka-protocol
//! broker, read back by kafka-python: every change arrives once, in binlog
//! order, with the right values; restarts resume from the commit-log topic.

mod common;

use std::time::Duration;

use common::{consume, database, random_waits, settings, sql, unique, with, Daemon, Msg};
use mysql::prelude::Queryable;
use serde_json::{json, Value};

fn data_of(msgs: &[Msg]) -> Vec<(String, String, Value)> {
    msgs.iter()
        .map(|m| {
            (
                m.value["table"].as_str().unwrap().to_string(),
                m.value["type"].as_str().unwrap().to_string(),
                m.value["data"].clone(),
            )
        })
        .collect()
}

#[test]
fn inserts_updates_and_deletes_arrive_once_in_binlog_order() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "order",
        &[
            "CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(40), balance DECIMAL(12,2))",
            "CREATE TABLE events (seq BIGINT UNSIGNED PRIMARY KEY, note TEXT)",
        ],
    );
    let topic = unique("order");
    let env = settings(&topic);
    let daemon = Daemon::start(&env);

    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    // A multi-row, multi-table transaction, then single statements.
    c.query_drop("BEGIN").unwrap();
    c.query_drop("INSERT INTO accounts VALUES (1, 'ada', 10.00), (2, 'bob', 20.50)")
        .unwrap();
    c.query_drop("INSERT INTO events VALUES (1, 'opened')")
        .unwrap();
    c.query_drop("COMMIT").unwrap();
    c.query_drop("UPDATE accounts SET balance = balance - 5 WHERE id = 1")
        .unwrap();
    c.query_drop("UPDATE accounts SET owner = 'bobby' WHERE id = 2")
        .unwrap();
    c.query_drop("DELETE FROM accounts WHERE id = 1").unwrap();
    c.query_drop("INSERT INTO events VALUES (18446744073709551615, 'last')")
        .unwrap();

    let msgs = consume(&topic, &db, 7, 10.0);
    assert_eq!(
        data_of(&msgs),
        vec![
            (
                "accounts".into(),
                "insert".into(),
                json!({"id":1,"owner":"ada","balance":10.00})
            ),
            (
                "accounts".into(),
                "insert".into(),
                json!({"id":2,"owner":"bob","balance":20.50})
            ),
            (
                "events".into(),
                "insert".into(),
                json!({"seq":1,"note":"opened"})
            ),
            (
                "accounts".into(),
                "update".into(),
                json!({"id":1,"owner":"ada","balance":5.00})
            ),
            (
                "accounts".into(),
                "update".into(),
                json!({"id":2,"owner":"bobby","balance":20.50})
            ),
            (
                "accounts".into(),
                "delete".into(),
                json!({"id":1,"owner":"ada","balance":5.00})
            ),
            (
                "events".into(),
                "insert".into(),
                json!({"seq":18446744073709551615u64,"note":"last"})
            ),
        ],
        "every change, once, in binlog order"
    );
    // Offsets are strictly increasing (one partition): nothing reordered.
    assert!(msgs.windows(2).all(|w| w[0].offset < w[1].offset));

    // Maxwell's transaction fields: one xid for the first transaction,
    // xoffset counting its rows, commit on its last row only.
    let first_xid = &msgs[0].value["xid"];
    assert!(first_xid.is_u64(), "xid present: {}", msgs[0].value);
    for (i, m) in msgs[..3].iter().enumerate() {
        assert_eq!(&m.value["xid"], first_xid);
        assert_eq!(m.value["xoffset"], i);
        assert_eq!(
            m.value.get("commit").is_some(),
            i == 2,
            "commit only on the last row: {}",
            m.value
        );
    }
    assert_ne!(&msgs[3].value["xid"], first_xid);
    // Updates carry the previous values of the changed columns only.
    assert_eq!(msgs[3].value["old"], json!({"balance": 10.00}));
    assert_eq!(msgs[4].value["old"], json!({"owner": "bob"}));
    // Exact DECIMAL digits are number tokens in the raw JSON.
    let raw = serde_json::to_string(&msgs[0].value).unwrap();
    assert!(raw.contains("\"balance\":10.0"), "{raw}");
    // Position, GTID, server id, primary key and the message key.
    let v = &msgs[0].value;
    assert!(
        v["position"].as_str().unwrap().starts_with("binlog."),
        "{v}"
    );
    assert!(
        v["gtid"].as_str().unwrap().starts_with("0-1-"),
        "MariaDB GTID: {v}"
    );
    assert_eq!(v["server_id"], 1);
    assert_eq!(v["database"], db);
    assert_eq!(v["primary_key"], json!([1]));
    assert_eq!(
        msgs[0].key,
        json!({"database": db, "table": "accounts", "pk.id": 1})
    );
    assert_eq!(
        msgs[5].key,
        json!({"database": db, "table": "accounts", "pk.id": 1}),
        "a delete is keyed by the deleted row"
    );

    let (status, log) = daemon.stop();
    assert!(status.success(), "SIGTERM exits 0:\n{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
}

#[test]
fn values_keep_their_exact_form() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "values",
        &["CREATE TABLE v (id INT PRIMARY KEY, i8 TINYINT, u8 TINYINT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED, \
           d DECIMAL(65,30), dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts6 TIMESTAMP(6) NULL, \
           day DATE, s VARCHAR(20), t TEXT, n INT)"],
    );
    let topic = unique("values");
    let daemon = Daemon::start(&settings(&topic));
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop(
        "INSERT INTO v VALUES (1, -128, 255, -9223372036854775808, 18446744073709551615, \
         '-12345678901234567890123456789012345.123456789012345678901234567890', \
         '2024-02-29 23:59:59', '2024-02-29 23:59:59.120', '1000-01-01 00:00:00.000001', \
         '2038-01-19 03:14:07.999999', '9999-12-31', 'ünïcødé 😀', '', NULL)",
    )
    .unwrap();
    let msgs = consume(&topic, &db, 1, 10.0);
    assert_eq!(msgs.len(), 1);
    // Compare the raw text, so number tokens are checked digit by digit.
    let want = r#"{"id":1,"i8":-128,"u8":255,"i64":-9223372036854775808,"u64":18446744073709551615,"d":-12345678901234567890123456789012345.123456789012345678901234567890,"dt0":"2024-02-29 23:59:59","dt3":"2024-02-29 23:59:59.120","dt6":"1000-01-01 00:00:00.000001","ts6":"2038-01-19 03:14:07.999999","day":"9999-12-31","s":"ünïcødé 😀","t":"","n":null}"#;
    let out = common::run_python("consume.py", &[common::BROKER, &topic, "-", "2", &db]);
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let outer: Value = serde_json::from_str(&line).unwrap();
    let value_text = outer["value"].as_str().unwrap();
    let data_start = value_text.find("\"data\":").unwrap() + 7;
    assert_eq!(&value_text[data_start..value_text.len() - 1], want);
    drop(daemon);
}

#[test]
fn clean_restart_resumes_from_the_checkpoint_without_loss_or_duplicates() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "restart",
        &["CREATE TABLE r (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("restart");
    let env = settings(&topic);
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();

    let daemon = Daemon::start(&env);
    for i in 0..50 {
        c.exec_drop("INSERT INTO r VALUES (?, ?)", (i, i)).unwrap();
    }
    assert_eq!(consume(&topic, &db, 50, 10.0).len(), 50);
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    let cp = common::checkpoint(&common::commits(&topic), &common::pipe(&topic))
        .expect("a checkpoint was written");
    assert_eq!(
        cp["rows"], 0,
        "a clean stop checkpoints a transaction boundary: {cp}"
    );

    // Changes made while the daemon is down are picked up on restart.
    for i in 50..80 {
        c.exec_drop("INSERT INTO r VALUES (?, ?)", (i, i)).unwrap();
    }
    c.query_drop("UPDATE r SET v = v + 1000 WHERE id < 10")
        .unwrap();
    let daemon = Daemon::start(&env);
    assert!(
        daemon.log_text().contains("resuming pipeline"),
        "{}",
        daemon.log_text()
    );
    let msgs = consume(&topic, &db, 90, 10.0);
    let ids: Vec<i64> = msgs
        .iter()
        .filter(|m| m.value["type"] == "insert")
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (0..80).collect::<Vec<_>>(),
        "every insert exactly once, in order"
    );
    assert_eq!(
        msgs.iter().filter(|m| m.value["type"] == "update").count(),
        10
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        consume(&topic, &db, 1000, 2.0).len(),
        90,
        "no duplicates after a clean restart"
    );
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn kill_9_mid_stream_loses_nothing_and_keeps_per_key_order() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "crash",
        &["CREATE TABLE k (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("crash");
    let env = with(
        settings(&topic),
        "B2K_PIPELINE_CHECKPOINT_INTERVAL_MS",
        "200",
    );
    // The first daemon starts (at `latest`) before the workload does.
    let first = Daemon::start(&env);
    let writer_db = db.clone();
    // A workload that keeps writing while the daemon is killed: 300
    // transactions of 5 rows (inserts, then updates of the same keys).
    let writer = std::thread::spawn(move || {
        let mut c = sql(common::MYSQL_PORT);
        c.query_drop(format!("USE `{writer_db}`")).unwrap();
        for t in 0..300 {
            c.query_drop("BEGIN").unwrap();
            for r in 0..5 {
                let id = (t % 60) * 5 + r;
                c.exec_drop(
                    "INSERT INTO k VALUES (?, ?) ON DUPLICATE KEY UPDATE v = ?",
                    (id, t, t),
                )
                .unwrap();
            }
            c.query_drop("COMMIT").unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // Kill at random moments (printed, so a failure can be replayed).
    let mut random_ms = random_waits(200, 1300);
    let mut moments = vec![random_ms()];
    std::thread::sleep(Duration::from_millis(moments[0]));
    first.kill9();
    let mut kills = 1;
    for _ in 0..2 {
        let daemon = Daemon::start(&env);
        moments.push(random_ms());
        std::thread::sleep(Duration::from_millis(*moments.last().unwrap()));
        daemon.kill9();
        kills += 1;
    }
    println!("kill -9 after {moments:?} ms of running");
    writer.join().unwrap();
    let mut daemon = Daemon::start(&env);
    daemon.caught_up();
    let msgs = consume(&topic, &db, 100_000, 3.0);

    // A duplicate carries the coordinate of the original (binlog position
    // and row offset), so a consumer can drop it; after dropping them, every
    // change the workload wrote is present and each key's values only grow.
    let mut coordinates = std::collections::HashSet::new();
    let mut seen = std::collections::HashMap::<i64, Vec<i64>>::new();
    let mut duplicates = 0;
    for m in &msgs {
        let coordinate = (
            m.value["position"].to_string(),
            m.value["xoffset"].to_string(),
        );
        if !coordinates.insert(coordinate) {
            duplicates += 1;
            continue;
        }
        let d = &m.value["data"];
        seen.entry(d["id"].as_i64().unwrap())
            .or_default()
            .push(d["v"].as_i64().unwrap());
    }
    for t in 0..300i64 {
        for r in 0..5 {
            let id = (t % 60) * 5 + r;
            assert!(
                seen.get(&id).is_some_and(|vs| vs.contains(&t)),
                "change id={id} v={t} is missing after {kills} kill -9"
            );
        }
    }
    for (id, vs) in &seen {
        assert!(
            vs.windows(2).all(|w| w[0] < w[1]),
            "key {id} out of order once duplicates are dropped: {vs:?}"
        );
    }
    assert_eq!(
        msgs.len() - duplicates,
        1500,
        "exactly the 1500 changes, once each, besides duplicates"
    );
    println!(
        "kill -9 x{kills}: 1500 changes written, {} messages read, {duplicates} duplicates",
        msgs.len()
    );
    assert_eq!(
        duplicates, 0,
        "rows re-read after a kill that Kafka had are not sent again"
    );
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn column_names_come_from_information_schema_without_full_metadata() {
    common::servers();
    // A second server that writes MINIMAL table-map metadata.
    let port: u16 = common::testenv(&[
        "mariadb",
        "minimal",
        "3308",
        "--binlog-row-metadata=MINIMAL",
    ])
    .parse()
    .unwrap();
    let db = database(port, "minimal", &["CREATE TABLE m (id INT UNSIGNED PRIMARY KEY, big BIGINT UNSIGNED, name VARCHAR(10), kind ENUM('a','b'))"]);
    let topic = unique("minimal");
    let env = with(settings(&topic), "B2K_MYSQL_PORT", &port.to_string());
    let daemon = Daemon::start(&env);
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO m VALUES (4294967295, 18446744073709551615, 'x', 'b')")
        .unwrap();
    let msgs = consume(&topic, &db, 1, 10.0);
    assert_eq!(
        msgs[0].value["data"],
        json!({"id":4294967295u64,"big":18446744073709551615u64,"name":"x","kind":"b"})
    );
    assert_eq!(msgs[0].value["primary_key_columns"], json!(["id"]));
    assert!(
        daemon.log_text().contains("information_schema"),
        "the log says where names come from"
    );
    drop(daemon);
}

#[test]
fn filters_publish_only_the_included_tables_and_still_move_the_checkpoint() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "filter",
        &[
            "CREATE TABLE keep_a (id INT PRIMARY KEY)",
            "CREATE TABLE keep_b (id INT PRIMARY KEY)",
            "CREATE TABLE tmp_x (id INT PRIMARY KEY)",
        ],
    );
    let other = database(
        common::MYSQL_PORT,
        "filter_other",
        &["CREATE TABLE keep_a (id INT PRIMARY KEY)"],
    );
    let topic = unique("filter");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_FILTER_EXCLUDE", &format!("{db}.tmp_*"));
    let mut daemon = Daemon::start(&env);
    let mut c = sql(common::MYSQL_PORT);
    for t in ["keep_a", "tmp_x", "keep_b"] {
        c.query_drop(format!("INSERT INTO `{db}`.{t} VALUES (1), (2)"))
            .unwrap();
    }
    c.query_drop(format!("INSERT INTO `{other}`.keep_a VALUES (1)"))
        .unwrap();
    // The last transaction is filtered out entirely: the checkpoint must
    // still move past it.
    c.query_drop(format!("INSERT INTO `{db}`.tmp_x VALUES (3)"))
        .unwrap();
    daemon.caught_up();
    let tables: Vec<(String, i64)> = consume(&topic, &db, 100, 2.0)
        .iter()
        .map(|m| {
            (
                m.value["table"].as_str().unwrap().to_string(),
                m.value["data"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        vec![
            ("keep_a".to_string(), 1),
            ("keep_a".to_string(), 2),
            ("keep_b".to_string(), 1),
            ("keep_b".to_string(), 2)
        ]
    );
    assert!(
        consume(&topic, &other, 100, 1.0).is_empty(),
        "a database not included publishes nothing"
    );
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn mariadb_compressed_binlog_events_are_inflated_not_skipped() {
    common::servers();
    // log_bin_compress: rows events and long statements are zlib-compressed
    // in the binlog (event types 165-171).
    let port: u16 = common::testenv(&[
        "mariadb",
        "compress",
        "3311",
        "--log-bin-compress=ON",
        "--log-bin-compress-min-len=10",
    ])
    .parse()
    .unwrap();
    let db = database(
        port,
        "compress",
        &["CREATE TABLE z (id INT PRIMARY KEY, t TEXT, n DECIMAL(10,2))"],
    );
    let topic = unique("compress");
    let env = with(settings(&topic), "B2K_MYSQL_PORT", &port.to_string());
    let mut daemon = Daemon::start(&env);
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    let long = "compressible ".repeat(200);
    c.exec_drop(
        "INSERT INTO z VALUES (1, ?, 1.50), (2, 'short', NULL)",
        (&long,),
    )
    .unwrap();
    c.query_drop("UPDATE z SET n = 2.25, t = CONCAT(t, '!') WHERE id = 2")
        .unwrap();
    // A long DDL is written as a compressed statement.
    c.query_drop(
        "ALTER TABLE z ADD COLUMN extra VARCHAR(20) DEFAULT 'x' COMMENT 'a comment long enough to be compressed'",
    )
    .unwrap();
    c.query_drop("INSERT INTO z (id, t, n) VALUES (3, 'after ddl', 3)")
        .unwrap();
    c.query_drop("DELETE FROM z WHERE id = 1").unwrap();
    // The server did write compressed events.
    let (file, _) = common::binlog_head(port);
    let kinds: Vec<String> = c
        .query_map(
            format!("SHOW BINLOG EVENTS IN '{file}'"),
            |r: mysql::Row| r.get::<String, _>(2).unwrap(),
        )
        .unwrap();
    let compressed: Vec<&String> = kinds
        .iter()
        .filter(|k| k.to_ascii_lowercase().contains("compressed"))
        .collect();
    assert!(
        compressed.len() >= 5,
        "compressed events written: {kinds:?}"
    );
    daemon.caught_up();
    let got = data_of(&consume(&topic, &db, 5, 10.0));
    assert_eq!(
        got,
        vec![
            (
                "z".into(),
                "insert".into(),
                json!({"id":1,"t":long,"n":1.50})
            ),
            (
                "z".into(),
                "insert".into(),
                json!({"id":2,"t":"short","n":null})
            ),
            (
                "z".into(),
                "update".into(),
                json!({"id":2,"t":"short!","n":2.25})
            ),
            (
                "z".into(),
                "insert".into(),
                json!({"id":3,"t":"after ddl","n":3.00,"extra":"x"})
            ),
            (
                "z".into(),
                "delete".into(),
                json!({"id":1,"t":long,"n":1.50,"extra":"x"})
            ),
        ]
    );
    println!(
        "log_bin_compress=ON: {} compressed events ({:?}), 5 changes read back exactly",
        compressed.len(),
        compressed.iter().collect::<std::collections::BTreeSet<_>>()
    );
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn column_filters_leave_out_or_mask_values_and_tables_match_regexes() {
    use sha2::{Digest, Sha256};
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "colfilter",
        &["CREATE TABLE u (id INT PRIMARY KEY, email VARCHAR(50), password VARCHAR(50), name VARCHAR(20))"],
    );
    let topic = unique("colfilter");
    // A /regex/ table pattern (with a comma inside), one column left out,
    // one masked.
    let env = with(
        settings(&topic),
        "B2K_FILTER_INCLUDE",
        &format!("/^{db}\\.u{{1,2}}$/"),
    );
    let env = with(
        env,
        "B2K_FILTER_COLUMNS_EXCLUDE",
        &format!("{db}.u.password"),
    );
    let env = with(env, "B2K_FILTER_COLUMNS_MASK", "*.*.email");
    let daemon = Daemon::start(&env);
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop(
        "INSERT INTO u VALUES (1, 'a@example.com', 'hunter2', 'Ann'), (2, NULL, 'x', 'Bo')",
    )
    .unwrap();
    c.query_drop("UPDATE u SET email = 'b@example.com', password = 'hunter3' WHERE id = 1")
        .unwrap();
    let msgs = consume(&topic, &db, 3, 10.0);
    let hash = |json: &str| -> String {
        Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(
        msgs[0].value["data"],
        json!({"id": 1, "email": hash("\"a@example.com\""), "name": "Ann"})
    );
    assert_eq!(
        msgs[1].value["data"],
        json!({"id": 2, "email": null, "name": "Bo"}),
        "NULL stays null when masked"
    );
    assert_eq!(
        msgs[2].value["old"],
        json!({"email": hash("\"a@example.com\"")}),
        "old holds the masked previous value, and nothing of the excluded column"
    );
    assert!(
        !msgs.iter().any(|m| m.raw.contains("hunter")),
        "the excluded column's values appear nowhere"
    );
    drop(daemon);
}

#[test]
fn partition_by_and_key_format_route_rows_like_the_java_client() {
    use binlog2kafka::kafka::murmur2::partition_for;
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "routing",
        &[
            "CREATE TABLE a (id INT PRIMARY KEY, g INT)",
            "CREATE TABLE b (id INT PRIMARY KEY, g INT)",
        ],
    );
    let base = |topic: &str| {
        let env = with(settings(topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
        with(env, "B2K_KAFKA_TOPIC_PARTITIONS", "4")
    };
    let by_table = unique("bytable");
    let env = with(base(&by_table), "B2K_KAFKA_PARTITION_BY", "table");
    let first = Daemon::start(&with(env, "B2K_KAFKA_KEY_FORMAT", "debezium"));
    let by_column = unique("bycolumn");
    let env = with(base(&by_column), "B2K_KAFKA_PARTITION_BY", "column:g");
    let second = Daemon::start(&with(env, "B2K_KAFKA_KEY_FORMAT", "none"));
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for i in 0..12 {
        for t in ["a", "b"] {
            c.exec_drop(format!("INSERT INTO {t} VALUES (?, ?)"), (i, i % 3))
                .unwrap();
        }
    }
    let msgs = consume(&by_table, &db, 24, 10.0);
    assert_eq!(msgs.len(), 24);
    for m in &msgs {
        let table = m.value["table"].as_str().unwrap();
        // murmur2 of "db.table", as a Java producer with that key would.
        let want = partition_for(format!("{db}.{table}").as_bytes(), 4);
        assert_eq!(m.partition, want as i64, "{table} rows share one partition");
        assert_eq!(
            m.key,
            json!({"id": m.value["data"]["id"]}),
            "Debezium-style key"
        );
    }
    let msgs = consume(&by_column, &db, 24, 10.0);
    assert_eq!(msgs.len(), 24);
    let mut partitions = std::collections::BTreeSet::new();
    for m in &msgs {
        let g = m.value["data"]["g"].to_string();
        assert_eq!(
            m.partition,
            partition_for(g.as_bytes(), 4) as i64,
            "by column g={g}"
        );
        assert_eq!(m.key, Value::Null, "key_format=none");
        partitions.insert(m.partition);
    }
    println!("partition_by=table and column:g over 4 partitions: partitions used {partitions:?}");
    drop(first);
    drop(second);
}
