//! Avro through a real schema registry (`output.encoding=avro`): rows read
//! back by Confluent's own client (confluent-kafka's AvroDeserializer, which
//! looks each schema id up in the registry), compared field by field with
//! the Debezium JSON format's values for the same rows; a table changed
//! while rows flow: every row decodes with its own schema and with the
//! newest one as the reader's (schema resolution, what BACKWARD promises).
//! The registry is rivven-schema (scripts/testenv registry), run with
//! compatibility NONE: its own BACKWARD checker refuses identical schemas
//! that hold logical types.

mod common;

use std::process::Command;

use common::web;
use common::*;
use mysql::prelude::Queryable;
use serde_json::Value;

const REGISTRY_PORT: &str = "18091";

/// The registry, started once per test binary (its tests run side by
/// side, and two starts at once would race for the port).
fn registry() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let port = testenv(&["registry", "avro", REGISTRY_PORT]);
        format!("http://127.0.0.1:{}", port.trim())
    })
    .clone()
}

/// Every record of `topic` as confluent-kafka decodes it.
fn avro_records(topic: &str, registry: &str, want: usize, reader_latest: bool) -> Vec<Value> {
    let want = want.to_string();
    let mut args = vec![BROKER, registry, topic, &want, "10"];
    if reader_latest {
        args.push("--reader-latest");
    }
    script_lines("avro_consume.py", &args)
}

fn avro_env(topic: &str, db: &str, registry: &str) -> Vec<(String, String)> {
    let env = with(only(topic, db), "B2K_OUTPUT_FORMAT", "debezium");
    let env = with(env, "B2K_OUTPUT_ENCODING", "avro");
    with(env, "B2K_REGISTRY_URL", registry)
}

/// Whether the Avro value of column `col` is the Debezium JSON format's
/// value (`time.precision.mode=connect`, decimals as text) in Avro's types
/// (adaptive microseconds, exact decimals): what the two must agree on.
fn agree(col: &str, avro: &Value, json: &Value) -> bool {
    match (col, avro, json) {
        // TIME and DATETIME(6): milliseconds in JSON, microseconds in Avro.
        ("t" | "placed6" | "tm1" | "tm6", Value::Number(a), Value::Number(j)) => {
            a.as_i64().unwrap().div_euclid(1000) == j.as_i64().unwrap()
        }
        // BIGINT UNSIGNED: a JSON number, an exact decimal in Avro.
        ("big", Value::String(a), Value::Number(j)) => *a == j.to_string(),
        // SET: the JSON format writes the labels as an array (as Maxwell
        // does); Debezium's EnumSet, which the Avro encoding follows, is
        // the labels joined by commas.
        ("s", Value::String(a), Value::Array(j)) => {
            *a == j
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(",")
        }
        _ => avro == json,
    }
}

#[test]
fn every_type_decodes_through_the_registry_to_the_json_formats_values() {
    servers();
    let registry = registry();
    let db = database(
        MYSQL_PORT,
        "avro",
        &["CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(12,3), \
           placed DATETIME(3), placed6 DATETIME(6), t TIME, d DATE, ts TIMESTAMP NULL, \
           e ENUM('small','large'), s SET('x','y','z'), j JSON, b BLOB, bits BIT(3), flag BIT(1), \
           big BIGINT UNSIGNED, f FLOAT, dbl DOUBLE, y YEAR, tiny TINYINT, small SMALLINT UNSIGNED, \
           mid MEDIUMINT, txt TEXT CHARACTER SET utf8mb4, g POINT)",
          "CREATE TABLE u (id INT PRIMARY KEY, tu TINYINT UNSIGNED, mu MEDIUMINT UNSIGNED, \
           iu INT UNSIGNED, bi BIGINT, d6530 DECIMAL(65,30), d100 DECIMAL(10,0), b64 BIT(64), \
           dt0 DATETIME, ts3 TIMESTAMP(3) NULL, ts6 TIMESTAMP(6) NULL, tm1 TIME(1), tm6 TIME(6), \
           c CHAR(10), mt MEDIUMTEXT, l1 VARCHAR(50) CHARACTER SET latin1, \
           u3 VARCHAR(20) CHARACTER SET utf8mb3, bn BINARY(4), vb VARBINARY(50), lb LONGBLOB, \
           geo GEOMETRY, e2 ENUM('a','b','ü')) CHARACTER SET utf8mb4"],
    );
    let (avro_topic, json_topic) = (unique("avro"), unique("avro_json"));
    let mut a = Daemon::start(&avro_env(&avro_topic, &db, &registry));
    let json_env = with(only(&json_topic, &db), "B2K_OUTPUT_FORMAT", "debezium");
    let mut j = Daemon::start(&json_env);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop(
        "INSERT INTO t VALUES \
         (1, 'ünïcode ✓', -1234.567, '2024-02-29 23:59:59.123', '1969-12-31 23:59:59.999999', '-838:59:59', \
          '1000-01-01', '2038-01-19 03:14:07', 'large', 'x,z', '{\"a\": [1, 2.5, null]}', x'00ff10', b'101', b'1', \
          18446744073709551615, 1.5, -2.25e-300, 2155, -128, 65535, -8388608, 'long text', ST_GeomFromText('POINT(1 2)')), \
         (2, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .unwrap();
    c.query_drop("UPDATE t SET price = 99999999.999, name = 'b' WHERE id = 2")
        .unwrap();
    c.query_drop("DELETE FROM t WHERE id = 1").unwrap();
    a.caught_up();
    j.caught_up();
    let got = avro_records(&avro_topic, &registry, 4, false);
    let want = consume(&json_topic, &db, 4, 5.0);
    assert_eq!(got.len(), 4, "{got:?}");
    for (g, w) in got.iter().zip(&want) {
        let (g, w) = (&g["value"], &w.value);
        assert_eq!(g["op"], w["op"]);
        for side in ["before", "after"] {
            match (&g[side], &w[side]) {
                (Value::Null, Value::Null) => {}
                (Value::Object(ga), Value::Object(wa)) => {
                    assert_eq!(ga.len(), wa.len(), "{side}: {g}\n{w}");
                    for (col, wv) in wa {
                        assert!(
                            agree(col, &ga[col], wv),
                            "{side}.{col}: avro {}, json {wv}\navro {g}\njson {w}",
                            ga[col]
                        );
                    }
                }
                (a, b) => panic!("{side}: avro {a} json {b}"),
            }
        }
        for f in [
            "db",
            "table",
            "file",
            "pos",
            "row",
            "server_id",
            "gtid",
            "snapshot",
        ] {
            assert_eq!(g["source"][f], w["source"][f], "source.{f}");
        }
    }
    // Microseconds kept where the JSON format has milliseconds.
    assert_eq!(got[0]["value"]["after"]["placed6"], -1);
    assert_eq!(got[0]["value"]["after"]["t"], -3_020_399_000_000i64);
    // The key: the primary key, in Avro, by the topic's key subject.
    assert_eq!(got[0]["key"], serde_json::json!({"id": 1}));
    assert_eq!(got[3]["key"], serde_json::json!({"id": 1}));
    // One schema per subject for one table shape.
    let ids: std::collections::BTreeSet<i64> = got
        .iter()
        .map(|r| r["value_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{got:?}");
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&got[0]["value"]["after"]).unwrap()
    );
    drop(a);
    drop(j);
}

#[test]
fn a_table_changed_while_rows_flow_registers_a_new_version_and_old_rows_read_with_the_new_schema() {
    servers();
    let registry = registry();
    let db = database(
        MYSQL_PORT,
        "avro_evo",
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT, gone VARCHAR(10), n FLOAT)"],
    );
    let topic = unique("avro_evo");
    let mut d = Daemon::start(&avro_env(&topic, &db, &registry));
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 10, 'x', 1.5)")
        .unwrap();
    // Add a nullable column, drop one, widen a type.
    c.query_drop("ALTER TABLE t ADD COLUMN added VARCHAR(20) NULL")
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (2, 20, 'y', 2.5, 'new')")
        .unwrap();
    c.query_drop("ALTER TABLE t DROP COLUMN gone").unwrap();
    c.query_drop("INSERT INTO t VALUES (3, 30, 3.5, 'z')")
        .unwrap();
    c.query_drop("ALTER TABLE t MODIFY n DOUBLE").unwrap();
    c.query_drop("INSERT INTO t VALUES (4, 40, 4.25, 'w')")
        .unwrap();
    d.caught_up();
    let got = avro_records(&topic, &registry, 4, true);
    assert_eq!(got.len(), 4, "{got:?}");
    let ids: Vec<i64> = got
        .iter()
        .map(|r| r["value_id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "a new version per shape: {ids:?}"
    );
    // Each row with its own schema.
    assert_eq!(got[0]["value"]["after"]["gone"], "x");
    assert_eq!(got[1]["value"]["after"]["added"], "new");
    assert!(got[2]["value"]["after"].get("gone").is_none());
    assert_eq!(got[3]["value"]["after"]["n"], 4.25);
    // And every row with the newest schema as the reader's: the dropped
    // column is gone, the added one null where it did not exist, the
    // widened float read as a double.
    for (i, r) in got.iter().enumerate() {
        let after = &r["value_as_latest"]["after"];
        assert_eq!(after["id"], i as i64 + 1, "{r}");
        assert!(after.get("gone").is_none(), "{r}");
        assert_eq!(after["n"], [1.5, 2.5, 3.5, 4.25][i], "{r}");
    }
    assert_eq!(got[0]["value_as_latest"]["after"]["added"], Value::Null);
    drop(d);
}

/// A PUT to the registry's API (to set a subject's compatibility level).
fn registry_put(registry: &str, path: &str, body: &str) {
    let out = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, urllib.request\n\
             r = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='PUT', \
             headers={'Content-Type': 'application/vnd.schemaregistry.v1+json'})\n\
             print(urllib.request.urlopen(r, timeout=5).read().decode())",
        )
        .args([format!("{registry}{path}"), body.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_registry_away_for_30_s_holds_the_rows_and_nothing_is_lost_or_doubled() {
    servers();
    let registry = registry();
    let port: u16 = REGISTRY_PORT.parse().unwrap();
    let proxy = common::proxy::Proxy::start(0, port);
    let through = format!("http://127.0.0.1:{}", proxy.port);
    let db = database(
        MYSQL_PORT,
        "avro_away",
        &["CREATE TABLE a (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("avro_away");
    let env = avro_env(&topic, &db, &through);
    // check: the registry answers, the subjects are not there yet.
    let (status, out, err) = run_to_end(&["check"], &env);
    assert!(
        out.contains("ok   schema registry http://127.0.0.1:"),
        "{out}{err}"
    );
    assert!(
        out.contains(&format!("ok   subject {topic}-value: not registered yet")),
        "{out}"
    );
    let _ = status;
    let mut d = Daemon::start(&env);
    let addr = status_addr(&mut d);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for i in 1..=50 {
        c.exec_drop("INSERT INTO a VALUES (?, ?)", (i, i)).unwrap();
    }
    d.caught_up();
    // Away: rows of a known shape would flow on cached ids, but a new
    // table needs its schemas registered first, so from its first row on
    // everything waits (in binlog order).
    proxy.cut();
    let cut = std::time::Instant::now();
    c.query_drop("CREATE TABLE b (id INT PRIMARY KEY, w VARCHAR(10))")
        .unwrap();
    for i in 51..=100 {
        c.exec_drop("INSERT INTO a VALUES (?, ?)", (i, i)).unwrap();
        c.exec_drop("INSERT INTO b VALUES (?, 'x')", (i,)).unwrap();
    }
    d.wait_for_log(
        "the schema registry cannot be reached",
        std::time::Duration::from_secs(20),
    );
    let health = web::get(&addr, "/healthz");
    assert_eq!(health.0, 503, "{health:?}");
    assert!(
        health.1.contains("schema registry unreachable"),
        "{health:?}"
    );
    std::thread::sleep(std::time::Duration::from_secs(30).saturating_sub(cut.elapsed()));
    proxy.restore();
    d.wait_for_log(
        "the schema registry answers again",
        std::time::Duration::from_secs(30),
    );
    d.caught_up();
    let got = avro_records(&topic, &registry, 150, false);
    let ids = |table: &str| -> Vec<i64> {
        got.iter()
            .filter(|r| r["value"]["source"]["table"] == table)
            .map(|r| r["value"]["after"]["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("a"), (1..=100).collect::<Vec<i64>>());
    assert_eq!(ids("b"), (51..=100).collect::<Vec<i64>>());
    assert_eq!(web::get(&addr, "/healthz").0, 200);
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn an_incompatible_change_refused_by_the_registry_stops_before_its_row() {
    servers();
    let registry = registry();
    let db = database(
        MYSQL_PORT,
        "avro_refused",
        &["CREATE TABLE t (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("avro_refused");
    let env = avro_env(&topic, &db, &registry);
    let mut d = Daemon::start(&env);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 1)").unwrap();
    d.caught_up();
    let before = d.checkpoint().expect("a checkpoint");
    registry_put(
        &registry,
        &format!("/config/{topic}-value"),
        r#"{"compatibility":"BACKWARD"}"#,
    );
    // An INT read as text: no reader can resolve that.
    c.query_drop("ALTER TABLE t MODIFY v VARCHAR(10)").unwrap();
    c.query_drop("INSERT INTO t VALUES (2, 'two')").unwrap();
    let status = d.wait(std::time::Duration::from_secs(30));
    let log = d.log_text();
    assert!(!status.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("refused the schema of subject"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(&format!("{topic}-value"))
            && line.contains("(as the version after 1)")
            && line.contains("stopped before the change at"),
        "{line}"
    );
    eprintln!("{line}");
    // The checkpoint stays before the refused row.
    let after = checkpoint(&commits(&topic), &pipe(&topic)).unwrap();
    assert_eq!(after["position"], before["position"], "{after}");
    assert_eq!(avro_records(&topic, &registry, 1, false).len(), 1);
}

#[test]
fn wrong_registry_credentials_are_one_line_without_the_secret() {
    servers();
    // A registry in front that refuses these credentials (rivven-schema
    // runs without authentication).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let db = database(
        MYSQL_PORT,
        "avro_auth",
        &["CREATE TABLE t (id INT PRIMARY KEY)"],
    );
    let topic = unique("avro_auth");
    let env = avro_env(&topic, &db, &format!("http://127.0.0.1:{port}"));
    let env = with(env, "B2K_REGISTRY_BASIC_AUTH_USER_INFO", "cdc:Sekr1t-pw");
    let (status, out, err) = run_to_end(&["check"], &env);
    assert!(!status.success());
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL schema registry"))
        .unwrap_or_else(|| panic!("{out}{err}"));
    assert!(
        fail.contains("refused the credentials (401)")
            && fail.contains("registry.basic_auth_user_info"),
        "{fail}"
    );
    assert!(!out.contains("Sekr1t") && !err.contains("Sekr1t"));
    let mut d = Daemon::start(&env);
    sql(MYSQL_PORT)
        .query_drop(format!("INSERT INTO `{db}`.t VALUES (1)"))
        .unwrap();
    let status = d.wait(std::time::Duration::from_secs(30));
    let log = d.log_text();
    assert!(!status.success(), "{log}");
    assert!(log.contains("refused the credentials (401)"), "{log}");
    assert!(!log.contains("Sekr1t"), "{log}");
}

#[test]
fn an_https_registry_is_reached_with_its_ca_and_a_stranger_is_refused_in_one_line() {
    servers();
    registry();
    let certs = std::path::PathBuf::from(testenv(&["certs"]).trim());
    let port = testenv(&["tls", "avro-registry", "18092", REGISTRY_PORT, "good"]);
    let https = format!("https://localhost:{}", port.trim());
    let db = database(
        MYSQL_PORT,
        "avro_tls",
        &["CREATE TABLE t (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("avro_tls");
    let env = avro_env(&topic, &db, &https);
    // Without the CA: check says what to set.
    let (status, out, _) = run_to_end(&["check"], &env);
    assert!(!status.success());
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL schema registry"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(fail.contains("registry.ssl.ca.location"), "{fail}");
    // With it: rows flow, registered over TLS, read back through the
    // plain port by Confluent's client.
    let env = with(
        env,
        "B2K_REGISTRY_SSL_CA_LOCATION",
        certs.join("ca.pem").to_str().unwrap(),
    );
    let (status, out, err) = run_to_end(&["check"], &env);
    assert!(
        out.contains("ok   schema registry https://localhost:"),
        "{out}{err}"
    );
    let _ = status;
    let mut d = Daemon::start(&env);
    sql(MYSQL_PORT)
        .query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 10), (2, 20)"))
        .unwrap();
    d.caught_up();
    let got = avro_records(&topic, &registry(), 2, false);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1]["value"]["after"],
        serde_json::json!({"id": 2, "v": 20})
    );
}
