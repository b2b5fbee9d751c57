//! The live type matrix: one MariaDB table with a column of every type,
//! rows of edge values inserted, updated and deleted, and every value the
//! daemon publishes compared with the server's own rendering of the same
//! value (`CAST(c AS CHAR)`, `TO_BASE64(c)`, ...) under the rules of the
//! README's "Values" section.

mod common;

use common::{consume, database, settings, sql, unique, with, Daemon};
use mysql::prelude::Queryable;
use serde_json::Value;

/// Column, SQL type, and how the server renders it for comparison.
const COLUMNS: &[(&str, &str, Render)] = &[
    ("ti", "TINYINT", Render::Number),
    ("tiu", "TINYINT UNSIGNED", Render::Number),
    ("si", "SMALLINT", Render::Number),
    ("siu", "SMALLINT UNSIGNED", Render::Number),
    ("mi", "MEDIUMINT", Render::Number),
    ("miu", "MEDIUMINT UNSIGNED", Render::Number),
    ("i", "INT", Render::Number),
    ("iu", "INT UNSIGNED", Render::Number),
    ("bi", "BIGINT", Render::Number),
    ("biu", "BIGINT UNSIGNED", Render::Number),
    ("d52", "DECIMAL(5,2)", Render::Number),
    ("d6530", "DECIMAL(65,30)", Render::Number),
    ("d100", "DECIMAL(10,0)", Render::Number),
    ("f", "FLOAT", Render::Float32),
    ("db", "DOUBLE", Render::Float64),
    ("b1", "BIT(1)", Render::Bit),
    ("b64", "BIT(64)", Render::Bit),
    ("dt", "DATE", Render::DateText),
    ("dt0", "DATETIME", Render::DateText),
    ("dt3", "DATETIME(3)", Render::DateText),
    ("dt6", "DATETIME(6)", Render::DateText),
    ("ts0", "TIMESTAMP NULL", Render::DateText),
    ("ts3", "TIMESTAMP(3) NULL", Render::DateText),
    ("ts6", "TIMESTAMP(6) NULL", Render::DateText),
    ("tm0", "TIME", Render::Text),
    ("tm1", "TIME(1)", Render::Text),
    ("tm6", "TIME(6)", Render::Text),
    ("y", "YEAR", Render::Number),
    ("c", "CHAR(10)", Render::Text),
    ("vc", "VARCHAR(100)", Render::Text),
    ("tx", "TEXT", Render::Text),
    ("mt", "MEDIUMTEXT", Render::Text),
    ("l1", "VARCHAR(50) CHARACTER SET latin1", Render::Text),
    ("u3", "VARCHAR(20) CHARACTER SET utf8mb3", Render::Text),
    ("bn", "BINARY(4)", Render::Base64),
    ("vb", "VARBINARY(50)", Render::Base64),
    ("bl", "BLOB", Render::Base64),
    ("lb", "LONGBLOB", Render::Base64),
    ("e", "ENUM('a','b','ü')", Render::Text),
    ("st", "SET('x','y','z')", Render::Set),
    ("j", "JSON", Render::Json),
    ("g", "GEOMETRY", Render::Wkt),
];

#[derive(Clone, Copy, Debug)]
enum Render {
    /// `CAST(c AS CHAR)` is the exact number token.
    Number,
    /// Compared as the same f32 / f64.
    Float32,
    Float64,
    /// `CAST(c AS UNSIGNED)`.
    Bit,
    /// `CAST(c AS CHAR)`; zero and partly-zero dates are null.
    DateText,
    /// `CAST(c AS CHAR)` (in utf8mb4).
    Text,
    /// `TO_BASE64(c)` without its line breaks.
    Base64,
    /// `CAST(c AS CHAR)` split at commas: an array of labels.
    Set,
    /// `ST_AsText(c)`.
    Wkt,
    /// `CAST(c AS CHAR)` parsed: MariaDB JSON is embedded, not a string.
    Json,
}

/// The table `m`: an id and one column of each type of [`COLUMNS`].
fn matrix_ddl() -> String {
    format!(
        "CREATE TABLE m (id INT PRIMARY KEY, {}) CHARACTER SET utf8mb4",
        COLUMNS
            .iter()
            .map(|(n, t, _)| format!("`{n}` {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn server_expr(col: &str, r: Render) -> String {
    match r {
        Render::Number | Render::DateText | Render::Text | Render::Set | Render::Json => {
            format!("CONVERT(CAST(`{col}` AS CHAR) USING utf8mb4)")
        }
        Render::Float32 | Render::Float64 => format!("CAST(`{col}` AS CHAR)"),
        Render::Bit => format!("CAST(CAST(`{col}` AS UNSIGNED) AS CHAR)"),
        Render::Base64 => format!("REPLACE(TO_BASE64(`{col}`), '\\n', '')"),
        Render::Wkt => format!("ST_AsText(`{col}`)"),
    }
}

/// The JSON the README's rules expect for the server's rendering `s`.
fn expected(r: Render, s: Option<&str>) -> Value {
    let Some(s) = s else { return Value::Null };
    match r {
        // YEAR 0 is printed "0000": a number with leading zeros.
        Render::Number | Render::Bit if s.len() > 1 && s.starts_with('0') && !s.contains('.') => {
            Value::from(s.parse::<u64>().unwrap())
        }
        Render::Number | Render::Bit => serde_json::from_str(s)
            .unwrap_or_else(|e| panic!("server number {s:?} is a JSON number token: {e}")),
        Render::DateText => {
            let date = &s[..10.min(s.len())];
            if date.starts_with("0000") || date.contains("-00") {
                Value::Null
            } else {
                Value::String(s.to_string())
            }
        }
        Render::Text | Render::Base64 | Render::Wkt => Value::String(s.to_string()),
        Render::Json => serde_json::from_str(s).unwrap(),
        Render::Set => Value::Array(
            s.split(',')
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_string()))
                .collect(),
        ),
        Render::Float32 | Render::Float64 => unreachable!("compared as floats"),
    }
}

/// Each row as the server renders it, by id.
fn snapshot(c: &mut mysql::Conn, db: &str) -> Vec<(i64, Vec<Option<String>>)> {
    let exprs: Vec<String> = COLUMNS.iter().map(|(n, _, r)| server_expr(n, *r)).collect();
    let q = format!("SELECT id, {} FROM `{db}`.m ORDER BY id", exprs.join(", "));
    let rows: Vec<mysql::Row> = c.query(q).unwrap();
    rows.into_iter()
        .map(|r| {
            let id: i64 = r.get(0).unwrap();
            let vals = (1..=COLUMNS.len())
                .map(|i| r.get::<Option<String>, _>(i).unwrap())
                .collect();
            (id, vals)
        })
        .collect()
}

/// The number token of column `name` in the `data` object of a message's
/// raw text: serde_json would read a DECIMAL through an f64.
fn raw_token<'a>(raw: &'a str, name: &str) -> &'a str {
    let data = &raw[raw.find("\"data\":{").expect("data")..];
    let key = format!("\"{name}\":");
    let at = data.find(&key).expect("column in data") + key.len();
    let rest = &data[at..];
    &rest[..rest.find([',', '}']).unwrap()]
}

fn check_image(what: &str, ours: &Value, raw: &str, server: &[Option<String>]) -> usize {
    let mut n = 0;
    for ((name, _, r), s) in COLUMNS.iter().zip(server) {
        let got = &ours[*name];
        if let (Render::Number, Some(s)) = (r, s) {
            // Exactly the server's digits (YEAR 0 is "0000" there, 0 here).
            let token = raw_token(raw, name);
            let want = if s.chars().all(|c| c == '0') { "0" } else { s };
            assert_eq!(token, want, "{what} {name}: the exact number token");
        }
        match r {
            Render::Float32 | Render::Float64 => match s {
                None => assert!(got.is_null(), "{what} {name}: want null, got {got}"),
                Some(s) => {
                    let want: f64 = s.parse().unwrap();
                    let g = got
                        .as_f64()
                        .unwrap_or_else(|| panic!("{what} {name}: {got}"));
                    let same = match r {
                        // The server prints FLOAT with 6 significant digits;
                        // ours must be the same f32, printed shortest.
                        Render::Float32 => {
                            (g as f32) == (want as f32) || {
                                let rel = ((g - want) / want).abs();
                                rel < 1e-5
                            }
                        }
                        _ => g == want || ((g - want) / want).abs() < 1e-14,
                    };
                    assert!(same, "{what} {name}: server {s}, ours {got}");
                    if let Render::Float32 = r {
                        let text = got.to_string();
                        let reparsed: f32 = text.parse().unwrap();
                        assert_eq!(
                            reparsed, g as f32,
                            "{what} {name}: {text} reads back as the same f32"
                        );
                    }
                }
            },
            _ => {
                let want = expected(*r, s.as_deref());
                assert_eq!(got, &want, "{what} {name}: server renders {s:?}");
            }
        }
        n += 1;
    }
    n
}

const INSERTS: &[&str] = &[
    // 1: the minimum of every type
    "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, \
      -999.99, -99999999999999999999999999999999999.999999999999999999999999999999, -9999999999, \
      -3.40282e38, -1.7976931348623157e308, b'0', 0, \
      '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000', '1000-01-01 00:00:00.000000', \
      '1970-01-01 00:00:01', '1970-01-01 00:00:01.000', '1970-01-01 00:00:01.000000', \
      '-838:59:59', '-838:59:59.0', '-838:59:59.000000', 1901, \
      '', '', '', '', '', '', x'00000000', x'', x'', x'', 'a', '', '{}', POINT(0, 0))",
    // 2: the maximum of every type, 4-byte UTF-8, nested JSON
    "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, \
      18446744073709551615, 999.99, \
      99999999999999999999999999999999999.999999999999999999999999999999, 9999999999, \
      3.40282e38, 1.7976931348623157e308, b'1', x'FFFFFFFFFFFFFFFF', \
      '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999', \
      '2038-01-19 03:14:07', '2038-01-19 03:14:07.999', '2038-01-19 03:14:07.999999', \
      '838:59:59', '838:59:59.9', '838:59:59.000000', 2155, \
      'abcdefghij', 'ünïcødé 😀 𝄞 漢字', REPEAT('😀', 1000), REPEAT('long text ', 20000), \
      'Ünïcödé £ ½', 'ü ß é', x'DEADBEEF', x'00FF7F80', x'0102', REPEAT(x'FF00', 1000), 'ü', 'x,y,z', \
      '{\"a\": [1, 2.5, {\"b\": null, \"c\": true}], \"d\": \"ü😀\", \"e\": {\"f\": {\"g\": []}}}', \
      ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1.5 -2.25),LINESTRING(0 0,1e10 1e-10),POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2)))'))",
    // 3: NULL everywhere
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    // 4: zeros, zero dates, small fractions, negative times, a 1 MB BLOB
    "(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.00, -0.000000000000000000000000000001, 0, \
      -0.0, 1.5e-300, b'0', x'0000000000000001', \
      '0000-00-00', '0000-00-00 00:00:00', '2024-00-00 00:00:00.000', '2024-02-29 12:34:56.000001', \
      '0000-00-00 00:00:00', '2024-02-29 12:34:56.1', '2024-02-29 12:34:56.000001', \
      '00:00:00', '-00:00:01.5', '-12:34:56.000007', 0, \
      'x', ' padded ', 'tab\\tnewline\\n\"quote\" \\\\ back', '', 'ÿ', '€', x'00000001', x'7B7D', \
      REPEAT(x'AB', 65535), REPEAT(x'CD', 1048576), 'b', 'y', '[1, \"two\", [3]]', \
      ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))'))",
];

#[test]
fn every_column_type_comes_out_as_the_server_renders_it_on_insert_update_and_delete() {
    common::servers();
    let ddl = matrix_ddl();
    let db = database(common::MYSQL_PORT, "types", &[&ddl]);
    let topic = unique("types");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    // The 1 MB BLOB makes a 1.4 MB message.
    let env = with(env, "B2K_KAFKA_MAX_RECORD_BYTES", "4194304");
    let daemon = Daemon::start(&env);
    // A second pipeline with output.zero_dates=text.
    let topic_text = unique("types_text");
    let env_text = with(
        settings(&topic_text),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.*"),
    );
    let env_text = with(env_text, "B2K_KAFKA_MAX_RECORD_BYTES", "4194304");
    let env_text = with(env_text, "B2K_OUTPUT_ZERO_DATES", "text");
    let daemon_text = Daemon::start(&env_text);
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("SET SESSION sql_mode = ''").unwrap();
    for row in INSERTS {
        c.query_drop(format!("INSERT INTO m VALUES {row}")).unwrap();
    }
    let inserted = snapshot(&mut c, &db);
    // An update that changes some columns, one that changes only the key.
    c.query_drop("UPDATE m SET vc = CONCAT(vc, '!'), bi = bi DIV 2, dt3 = '2000-01-01 00:00:00.5'")
        .unwrap();
    let mid = snapshot(&mut c, &db);
    c.query_drop("UPDATE m SET id = id + 100").unwrap();
    let updated = snapshot(&mut c, &db);
    c.query_drop("DELETE FROM m").unwrap();

    let n = INSERTS.len();
    let msgs = consume(&topic, &db, 4 * n, 20.0);
    assert_eq!(
        msgs.len(),
        4 * n,
        "inserts, two updates and deletes of {n} rows"
    );
    let mut checked = 0;
    for (i, m) in msgs.iter().enumerate() {
        let v = &m.value;
        let (phase, k) = (i / n, i % n);
        let (server, before) = match phase {
            0 => (&inserted[k], None),
            1 => (&mid[k], Some(&inserted[k])),
            2 => (&updated[k], Some(&mid[k])),
            _ => (&updated[k], None),
        };
        let kind = ["insert", "update", "update", "delete"][phase];
        assert_eq!(v["type"], kind);
        assert_eq!(v["data"]["id"], server.0, "{kind} of row {}", server.0);
        let what = format!("{kind} id={}", server.0);
        checked += check_image(&what, &v["data"], &m.raw, &server.1);
        if let Some(before) = before {
            // `old` holds exactly the columns that changed, with their
            // previous values.
            let old = v["old"].as_object().unwrap();
            for ((name, _, r), (b, a)) in COLUMNS.iter().zip(before.1.iter().zip(&server.1)) {
                if b != a {
                    assert!(old.contains_key(*name), "{what}: old lacks {name}");
                    if !matches!(r, Render::Float32 | Render::Float64) {
                        assert_eq!(old[*name], expected(*r, b.as_deref()), "{what} old {name}");
                    }
                    checked += 1;
                } else {
                    assert!(!old.contains_key(*name), "{what}: old has unchanged {name}");
                }
            }
            if phase == 2 {
                assert_eq!(old["id"], before.0, "{what}: old id");
            }
        }
    }
    println!(
        "{} columns x {n} rows inserted, updated twice and deleted: {checked} values equal to the server's rendering",
        COLUMNS.len()
    );

    // With output.zero_dates=text every date is the server's text, zero
    // dates included.
    let inserts = consume(&topic_text, &db, n, 20.0);
    let mut zero = 0;
    for (m, (_, server)) in inserts.iter().zip(&inserted) {
        for ((name, _, r), s) in COLUMNS.iter().zip(server) {
            if let (Render::DateText, Some(s)) = (r, s) {
                assert_eq!(m.value["data"][*name], Value::String(s.clone()), "{name}");
                zero += expected(*r, Some(s)).is_null() as usize;
            }
        }
    }
    assert!(zero >= 4, "zero dates were among them: {zero}");
    println!("output.zero_dates=text: {zero} zero dates written as the server prints them");
    drop(daemon);
    drop(daemon_text);
}

/// The raw text of the JSON object (or array) after `"key":` in `raw`.
fn raw_object<'a>(raw: &'a str, key: &str) -> &'a str {
    let at = raw
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {raw}"))
        + key.len()
        + 3;
    let b = raw.as_bytes();
    let (mut depth, mut i, mut quoted) = (0, at, false);
    loop {
        match (b[i], quoted) {
            (b'\\', true) => i += 1,
            (b'"', _) => quoted = !quoted,
            (b'{' | b'[', false) => depth += 1,
            (b'}' | b']', false) => {
                depth -= 1;
                if depth == 0 {
                    return &raw[at..=i];
                }
            }
            _ => {}
        }
        i += 1;
    }
}

#[test]
fn a_snapshot_row_is_byte_for_byte_the_insert_of_the_same_values() {
    common::servers();
    let ddl = matrix_ddl();
    let db = database(common::MYSQL_PORT, "types_snap", &[&ddl]);
    let formats = [
        ("maxwell", "data"),
        ("debezium", "after"),
        ("canal", "data"),
    ];
    let pipeline = |format: &str, mode: &str| {
        let topic = unique(&format!("types_snap_{format}_{mode}"));
        let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
        let env = with(env, "B2K_KAFKA_MAX_RECORD_BYTES", "4194304");
        let env = with(env, "B2K_OUTPUT_FORMAT", format);
        (topic, with(env, "B2K_SNAPSHOT_MODE", mode))
    };
    // The inserts as the binlog gives them...
    let streams: Vec<_> = formats
        .iter()
        .map(|(f, _)| {
            let (topic, env) = pipeline(f, "never");
            (topic, Daemon::start(&env))
        })
        .collect();
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("SET SESSION sql_mode = ''").unwrap();
    for row in INSERTS {
        c.query_drop(format!("INSERT INTO m VALUES {row}")).unwrap();
    }
    let n = INSERTS.len();
    let mut compared = 0;
    for ((format, image), (stream_topic, _daemon)) in formats.iter().zip(&streams) {
        // ...and the same rows read by a snapshot.
        let (topic, env) = pipeline(format, "initial");
        let mut d = Daemon::start(&env);
        d.wait_for_log(
            &format!("snapshot of {db}.m done"),
            std::time::Duration::from_secs(60),
        );
        let inserts = consume(stream_topic, &db, n, 20.0);
        let edges = if *format == "maxwell" { 2 } else { 0 };
        let snaps: Vec<common::Msg> = consume(&topic, &db, n + edges, 20.0)
            .into_iter()
            .filter(|m| {
                !m.raw.contains("\"bootstrap-start\"") && !m.raw.contains("\"bootstrap-complete\"")
            })
            .collect();
        assert_eq!((inserts.len(), snaps.len()), (n, n), "{format}");
        for (i, s) in inserts.iter().zip(&snaps) {
            assert_eq!(
                raw_object(&s.raw, image),
                raw_object(&i.raw, image),
                "{format}: the snapshot row differs from the insert"
            );
            compared += COLUMNS.len() + 1;
        }
    }
    println!(
        "{compared} values of {n} rows: the snapshot's rendering equals the insert's in maxwell, debezium and canal"
    );
}
