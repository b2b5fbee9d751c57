//! Offline replay over real binlog files written by MySQL 5.5–9.0 and
//! MariaDB 10.5–11.8 servers (tests/fixtures/binlogs, see its MANIFEST.md):
//! every row event decodes, values agree with what MariaDB's own
//! `mariadb-binlog -vv` prints for the same file, damaged input ends in an
//! error naming the file and offset, and no truncation or bit flip makes the
//! decoder panic or hang.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use binlog2kafka::config::Config;
use binlog2kafka::replay::{
    replay_files, replay_stream, ReplayError, ReplaySummary, Settings, Sink,
};
use binlog2kafka::source::history::History;
use mysql::prelude::Queryable;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    common::root().join("tests/fixtures/binlogs").join(name)
}

fn config() -> Settings {
    Config::load(None, std::iter::empty()).unwrap().replay()
}

/// A fixture's bytes; `.gz` files are stored compressed, as their source
/// keeps them.
fn bytes(name: &str) -> Vec<u8> {
    let path = fixture(name);
    if name.ends_with(".gz") {
        let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
        assert!(out.status.success());
        out.stdout
    } else {
        std::fs::read(path).unwrap()
    }
}

/// Replays a fixture in memory: the JSON lines and how it ended.
fn replay(name: &str) -> (Vec<String>, Result<ReplaySummary, ReplayError>) {
    let data = bytes(name);
    let mut out = Vec::new();
    let len = data.len() as u64;
    let r = replay_stream(
        &config(),
        name,
        "f",
        Cursor::new(data),
        len,
        false,
        &mut Sink::Lines(&mut out),
    );
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (lines, r)
}

/// Files and the rows `mariadb-binlog` 10.11 counts in them (MANIFEST.md).
const DECODABLE: &[(&str, usize)] = &[
    ("BinlogVisualizer/minimal.binlog", 4),
    ("kingbus/binlog/mysql_bin.000011", 40),
    ("mysql-binlog-connector-java/mysql-bin.checksum-crc32", 63),
    ("mysql-binlog-connector-java/mysql-bin.sakila.gz", 47273),
    ("mysql-binlog-connector-rust/mysql-bin.000080", 7),
    ("mysql-cdc-rs/8.0/32_delete_rows_v2/binlog.000001", 3),
    (
        "mysql-cdc-rs/8.0/19_30_Table_map_event_Write_rows_log_event/binlog.000018",
        1,
    ),
    ("percona-binlog-server/data_80045_gtid/binlog.000001", 6),
    ("rust_mysql_common/binlog-invisible-columns.000001", 3),
    ("rust_mysql_common/mariadb-bin.000001", 2),
    ("rust_mysql_common/minimal_row_metadata.000001", 1),
    ("rust_mysql_common/mysql_type_bit.000001", 1),
    ("mariadb-poc/domain_id_0/mariadb-repl-bin.000004", 0),
];

#[test]
fn every_row_event_of_real_mysql_and_mariadb_binlogs_decodes() {
    for (name, rows) in DECODABLE {
        let (lines, r) = replay(name);
        let s = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            lines.len(),
            *rows,
            "{name}: rows as mariadb-binlog counts them"
        );
        assert_eq!(s.rows as usize, *rows);
        for l in &lines {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["position"].as_str().unwrap().starts_with("f:"), "{l}");
            assert!(["insert", "update", "delete"].contains(&v["type"].as_str().unwrap()));
        }
        println!("{name}: {} events, {} rows", s.events, s.rows);
    }
}

/// One row image as `mariadb-binlog -vv` prints it: (value, type) per column.
type Image = Vec<(String, String)>;

/// The row images of `mariadb-binlog --base64-output=decode-rows -vv`, in
/// order: for an update the SET (after) image, for inserts SET, for deletes
/// WHERE.
fn reference_rows(path: &Path) -> Vec<Image> {
    let out = Command::new("mariadb-binlog")
        .args(["--base64-output=decode-rows", "-vv"])
        .arg(path)
        .output()
        .expect("mariadb-binlog (Debian's mariadb-client) runs");
    assert!(out.status.success(), "mariadb-binlog failed on {path:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    let mut current: Option<Image> = None;
    let mut kind = "";
    let mut section = "";
    for line in text.lines() {
        let Some(l) = line.strip_prefix("### ") else {
            continue;
        };
        if l.starts_with("INSERT INTO") || l.starts_with("UPDATE ") || l.starts_with("DELETE FROM")
        {
            rows.extend(current.take());
            kind = if l.starts_with("INSERT") {
                "insert"
            } else if l.starts_with("UPDATE") {
                "update"
            } else {
                "delete"
            };
            continue;
        }
        match l.trim() {
            "SET" | "WHERE" => {
                section = if l.trim() == "SET" { "SET" } else { "WHERE" };
                let wanted = (kind == "delete") == (section == "WHERE");
                if wanted {
                    current = Some(Vec::new());
                }
                continue;
            }
            _ => {}
        }
        let wanted = (kind == "delete") == (section == "WHERE");
        if !wanted {
            continue;
        }
        let l = l.trim();
        let Some((_, rest)) = l.split_once('=') else {
            continue;
        };
        let (value, comment) = rest.split_once(" /* ").unwrap_or((rest, ""));
        let ty = comment.split([' ', '(']).next().unwrap_or("").to_string();
        if let Some(c) = current.as_mut() {
            c.push((value.to_string(), ty));
        }
    }
    rows.extend(current);
    rows
}

/// Our `data` object's values in column order.
fn data_in_order(line: &str) -> Vec<Value> {
    struct Ordered(Vec<Value>);
    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                    let mut out = Vec::new();
                    while let Some((_, v)) = m.next_entry::<String, Value>()? {
                        out.push(v);
                    }
                    Ok(Ordered(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    let start = line.find("\"data\":").expect("data") + "\"data\":".len();
    let mut de = serde_json::Deserializer::from_str(&line[start..]);
    let o: Ordered = serde::Deserialize::deserialize(&mut de).unwrap();
    o.0
}

use binlog2kafka::clock::days_from_civil;

/// Bytes of mariadb-binlog's quoted rendering (`\xNN`, `\\`, `\'`).
fn unescape(q: &str) -> Vec<u8> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' if i + 3 < b.len() => {
                    out.push(u8::from_str_radix(&q[i + 2..i + 4], 16).unwrap_or(0));
                    i += 4;
                    continue;
                }
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'0' => out.push(0),
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = acc << 6 | A.iter().position(|&a| a == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Compares one value; None when this type is rendered differently by
/// design and not compared (BLOB: base64 here, raw bytes there).
fn same(ours: &Value, theirs: &str, ty: &str) -> Option<bool> {
    if theirs == "NULL" {
        return Some(ours.is_null());
    }
    match ty {
        // mariadb-binlog prints an ENUM's index and a SET's bit mask, we
        // print labels (it has no labels to print).
        t if t.is_empty() || t == "ENUM" || t == "SET" => None,
        // BLOB/TEXT: TEXT compares as text; a binary BLOB is base64 here
        // and printed with \xNN escapes there.
        t if t.starts_with("BLOB") || t.starts_with("VARSTRING") || t.starts_with("STRING") => {
            let q = theirs
                .strip_prefix('\'')
                .and_then(|t| t.strip_suffix('\''))?;
            if q.contains('\u{FFFD}') {
                // Raw bytes that are not UTF-8 (a PNG in a BLOB) do not
                // survive reading mariadb-binlog's output as text.
                return None;
            }
            let s = ours.as_str()?;
            Some(s == q || base64_decode(s).is_some_and(|b| b == unescape(q)))
        }
        "TIMESTAMP" => {
            // mariadb-binlog prints seconds since the epoch; ours is UTC text.
            let s = ours.as_str()?;
            let (date, time) = s.split_once(' ')?;
            let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
            let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
            let secs = days_from_civil(d[0], d[1], d[2]) * 86400
                + (t[0] * 3600.0 + t[1] * 60.0 + t[2]) as i64;
            let theirs: f64 = theirs.parse().ok()?;
            Some(secs == theirs as i64)
        }
        _ => {
            if let Some(q) = theirs.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                Some(ours.as_str() == Some(q))
            } else {
                // A negative integer is printed with its unsigned reading,
                // "-3 (4294967293)": the column's signedness picks one.
                let n = match theirs.split_once(" (") {
                    Some((signed, unsigned)) => {
                        if ours.as_i64().is_some_and(|v| v < 0) {
                            signed
                        } else {
                            unsigned.trim_end_matches(')')
                        }
                    }
                    None => theirs,
                };
                if ours.is_number() {
                    let a: f64 = ours.to_string().parse().ok()?;
                    let b: f64 = n.parse().ok()?;
                    Some(a == b || ((a - b) / b).abs() < 1e-6)
                } else {
                    Some(ours.as_str() == Some(n))
                }
            }
        }
    }
}

#[test]
fn values_agree_with_what_mariadb_binlog_prints_for_the_same_files() {
    common::testenv(&["install"]);
    let mut compared = 0;
    let mut skipped = 0;
    for (name, rows) in DECODABLE {
        if *rows == 0 {
            continue;
        }
        let path = if name.ends_with(".gz") {
            let p = std::env::temp_dir().join(common::unique("sakila"));
            std::fs::write(&p, bytes(name)).unwrap();
            p
        } else {
            fixture(name)
        };
        let reference = reference_rows(&path);
        let (lines, r) = replay(name);
        r.unwrap();
        assert_eq!(reference.len(), lines.len(), "{name}: row count");
        for (i, (theirs, ours)) in reference.iter().zip(&lines).enumerate() {
            let values = data_in_order(ours);
            assert_eq!(
                values.len(),
                theirs.len(),
                "{name} row {i}: columns\n{ours}"
            );
            for (col, ((tv, ty), ov)) in theirs.iter().zip(&values).enumerate() {
                match same(ov, tv, ty) {
                    Some(true) => compared += 1,
                    Some(false) => panic!(
                        "{name} row {i} column @{}: mariadb-binlog prints {tv} ({ty}), we give {ov}\n{ours}",
                        col + 1
                    ),
                    None => skipped += 1,
                }
            }
        }
    }
    println!(
        "{compared} values equal to mariadb-binlog's; {skipped} ENUM/SET (it prints indexes, we print labels) or non-UTF-8 BLOB values not compared"
    );
    assert!(compared > 500, "enough values were compared: {compared}");
}

#[test]
fn the_large_sakila_binlog_of_row_events_v1_decodes_with_exact_values() {
    // MySQL 5.5, no checksums, v1 row events, 47,273 rows in 1,374 events.
    let (lines, r) = replay("mysql-binlog-connector-java/mysql-bin.sakila.gz");
    r.unwrap();
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["database"], "sakila");
    assert_eq!(first["table"], "actor");
    assert_eq!(
        first["data"],
        serde_json::json!({"@1": 1, "@2": "PENELOPE", "@3": "GUINESS", "@4": "2006-02-15 03:34:33"})
    );
    let tables: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["table"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    println!("sakila: {} rows in tables {tables:?}", lines.len());
    assert!(tables.contains("payment") && tables.contains("rental"));
}

#[test]
fn unsupported_events_and_damaged_files_end_in_an_error_naming_file_and_offset() {
    // A MySQL 8 partial JSON update written with binlog_row_image=MINIMAL:
    // the before image lacks the document the diff applies to. The 12 rows
    // before it are written; the error says what the server needs.
    let (lines, r) = replay("rust_mysql_common/json.binlog.000001");
    let e = r.unwrap_err().to_string();
    println!("json.binlog: {} rows, then: {e}", lines.len());
    assert_eq!(lines.len(), 12);
    assert!(
        e.contains("rust_mysql_common/json.binlog.000001") && e.contains("offset 3750"),
        "{e}"
    );
    assert!(e.contains("binlog_row_image=FULL"), "{e}");

    // A file damaged at the source: 10 bytes of an event header.
    let (lines, r) = replay("rust_mysql_common/binlog_truncated_event.000001");
    assert!(lines.is_empty());
    match r {
        Err(ReplayError::Truncated {
            offset: 4, len: 14, ..
        }) => {}
        other => panic!("expected a truncation at offset 4: {other:?}"),
    }

    // MySQL 9 VECTOR columns (mariadb-binlog cannot read the file at all).
    let (lines, r) = replay("rust_mysql_common/vector.binlog");
    r.unwrap();
    assert_eq!(lines.len(), 10);
}

#[test]
fn mysql_8_compressed_transactions_are_decompressed_and_decoded() {
    // binlog_transaction_compression=ON: the rows sit in a zstd payload
    // (mariadb-binlog cannot read these files).
    let (lines, r) = replay("mysql-binlog-connector-java/mysql-bin.compressed");
    r.unwrap();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["database"], "demo");
    assert_eq!(v["table"], "movies");
    assert_eq!(v["type"], "update");
    assert_eq!(v["data"]["@2"], "Once Upon a Time in the West");
    assert_eq!(v["data"]["@3"], 1968);
    assert_eq!(v["xid"], 31);
    assert_eq!(v["commit"], true);
    // Rows in a payload stand at the payload event's position.
    assert_eq!(v["position"], "f:236");

    let (lines, r) = replay("rust_mysql_common/transaction_compression.000001");
    r.unwrap();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["table"], "tb1");
    assert_eq!(v["type"], "insert");
    assert_eq!(v["data"], serde_json::json!({"@1": 1}));
}

#[test]
fn a_file_cut_short_writes_the_transactions_before_the_cut_and_names_the_offset() {
    let name = "kingbus/binlog/mysql_bin.000011";
    let full = bytes(name);
    for cut in [full.len() - 1, full.len() - 100, full.len() / 2, 200] {
        let mut out = Vec::new();
        let r = replay_stream(
            &config(),
            name,
            "mysql_bin.000011",
            Cursor::new(&full[..cut]),
            cut as u64,
            false,
            &mut Sink::Lines(&mut out),
        );
        let rows = out.iter().filter(|&&b| b == b'\n').count();
        let e = r.unwrap_err();
        println!("cut at {cut}: {rows} rows written, then: {e}");
        assert!(matches!(e, ReplayError::Truncated { .. }), "{e}");
        assert!(e.to_string().contains(name));
        assert!(rows <= 40);
        if cut == 200 {
            assert_eq!(rows, 0, "no transaction is complete 200 bytes in");
        }
    }
}

#[test]
fn the_command_line_replays_files_to_stdout_and_fails_in_one_line() {
    let bin = env!("CARGO_BIN_EXE_binlog2kafka");
    let out = Command::new(bin)
        .args(["replay", "--stdout"])
        .arg(fixture("BinlogVisualizer/minimal.binlog"))
        .arg(fixture("kingbus/binlog/mysql_bin.000011"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 44);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(last["position"]
        .as_str()
        .unwrap()
        .starts_with("mysql_bin.000011:"));

    let out = Command::new(bin)
        .args(["replay", "--stdout"])
        .arg(fixture("rust_mysql_common/binlog_truncated_event.000001"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("truncated") && errors[0].contains("offset 4"),
        "{stderr}"
    );

    let out = Command::new(bin)
        .args(["replay", "--stdout"])
        .arg(fixture("MANIFEST.md"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a binlog file"));

    let _ = replay_files; // the library entry point the CLI uses
}

#[test]
fn replay_writes_the_same_messages_into_the_data_topic() {
    common::servers();
    let topic = common::unique("replay");
    let files = [
        fixture("BinlogVisualizer/minimal.binlog"),
        fixture("kingbus/binlog/mysql_bin.000011"),
        fixture("mysql-binlog-connector-java/mysql-bin.compressed"),
    ];
    let bin = env!("CARGO_BIN_EXE_binlog2kafka");
    let stdout = Command::new(bin)
        .args(["replay", "--stdout"])
        .args(&files)
        .output()
        .unwrap();
    assert!(stdout.status.success());
    let lines: Vec<String> = String::from_utf8(stdout.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let out = Command::new(bin)
        .arg("replay")
        .args(&files)
        .env("B2K_KAFKA_BROKERS", common::BROKER)
        .env("B2K_KAFKA_TOPIC", &topic)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("{} rows acknowledged", lines.len())),
        "{log}"
    );
    // Read back with kafka-python (all databases): the very same values.
    let out = common::run_python(
        "consume.py",
        &[common::BROKER, &topic, &lines.len().to_string(), "5"],
    );
    let read: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(read, lines, "the topic holds the --stdout lines, in order");
    println!(
        "replayed {} files into {topic}: {} messages, identical to --stdout",
        files.len(),
        read.len()
    );
}

#[test]
fn schema_from_names_the_columns_of_files_without_full_metadata() {
    common::servers();
    // A server writing MINIMAL table-map metadata: its binlog has no names.
    let port = common::testenv(&[
        "mariadb",
        "minimal",
        "3308",
        "--binlog-row-metadata=MINIMAL",
    ]);
    let port: u16 = port.parse().unwrap();
    let db = common::database(
        port,
        "schemafrom",
        &["CREATE TABLE s (id INT PRIMARY KEY, label VARCHAR(10))"],
    );
    let mut c = common::sql(port);
    c.query_drop(format!("INSERT INTO `{db}`.s VALUES (7, 'seven')"))
        .unwrap();
    let (file, _) = common::binlog_head(port);
    let path = common::root()
        .join("target/testenv/mariadb-minimal/data")
        .join(&file);
    let bin = env!("CARGO_BIN_EXE_binlog2kafka");
    let run = |schema_from: bool| -> Value {
        let mut cmd = Command::new(bin);
        cmd.args(["replay", "--stdout"]);
        if schema_from {
            cmd.arg("--schema-from");
        }
        let out = cmd
            .arg(&path)
            .env("B2K_MYSQL_PORT", port.to_string())
            .env("B2K_MYSQL_USER", "cdc")
            .env("B2K_MYSQL_PASSWORD", "cdc-secret")
            .env("B2K_FILTER_INCLUDE", format!("{db}.*"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        serde_json::from_str(text.lines().last().expect("a row")).unwrap()
    };
    assert_eq!(
        run(false)["data"],
        serde_json::json!({"@1": 7, "@2": "seven"})
    );
    assert_eq!(
        run(true)["data"],
        serde_json::json!({"id": 7, "label": "seven"})
    );
}

/// A small deterministic generator, so a failing case can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn truncated_and_bit_flipped_binlogs_never_panic_or_hang() {
    let names: Vec<&str> = DECODABLE
        .iter()
        .map(|(n, _)| *n)
        .chain([
            "rust_mysql_common/json.binlog.000001",
            "mysql-binlog-connector-java/mysql-bin.compressed",
            "rust_mysql_common/transaction_compression.000001",
            "rust_mysql_common/vector.binlog",
        ])
        .filter(|n| !n.ends_with(".gz") && !n.contains("mariadb-repl-bin"))
        .collect();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let worker = std::thread::spawn(move || {
        let cfg = config();
        let mut cases = 0u64;
        let mut errors = 0u64;
        let mut contained = Vec::new();
        for name in &names {
            let original = bytes(name);
            let mut rng = Rng(0x5eed ^ original.len() as u64);
            let mut run = |data: &[u8], what: &str| {
                if std::env::var_os("FUZZ_TRACE").is_some() {
                    eprintln!("case {name}: {what}");
                }
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    replay_stream(
                        &cfg,
                        name,
                        "f",
                        Cursor::new(data),
                        data.len() as u64,
                        false,
                        &mut Sink::Lines(&mut std::io::sink()),
                    )
                }));
                match result {
                    Ok(r) => {
                        cases += 1;
                        if let Err(e) = r {
                            errors += 1;
                            let e = e.to_string();
                            if e.contains("decoder failed") {
                                contained.push(format!("{name}, {what}: {e}"));
                            }
                        }
                    }
                    Err(_) => panic!("{name}: the decoder panicked on {what}"),
                }
            };
            // Every truncation point in the first 2 KB, then every 37th byte.
            let mut cut = 0;
            while cut < original.len() {
                run(&original[..cut], &format!("the file cut at {cut}"));
                cut += if cut < 2048 { 1 } else { 37 };
            }
            // 300 mutants with 1 to 4 flipped bits after the magic bytes.
            for _ in 0..300 {
                let mut data = original.clone();
                let mut flips = Vec::new();
                for _ in 0..1 + rng.next() % 4 {
                    let at = 4 + (rng.next() as usize) % (data.len() - 4);
                    let bit = rng.next() % 8;
                    data[at] ^= 1 << bit;
                    flips.push((at, bit));
                }
                run(&data, &format!("bits flipped at {flips:?}"));
            }
        }
        tx.send((cases, errors, contained)).unwrap();
    });
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok((cases, errors, contained)) => {
            println!("{cases} damaged inputs decoded without a crash or hang; {errors} ended in an error naming file and offset");
            // Panics inside mysql_common's event parsers would be caught at
            // the event and reported as damage; none may happen.
            println!(
                "{} of them were decoder panics contained by replay:",
                contained.len()
            );
            for c in &contained {
                println!("  {c}");
            }
            assert!(
                contained.is_empty(),
                "the decoder panicked on damaged input"
            );
            assert!(cases > 5000);
        }
        Err(_) => {
            if worker.is_finished() {
                // The worker panicked: show its message.
                worker.join().unwrap();
            }
            panic!("the decoder did not finish the damaged inputs within 300 s (a hang)");
        }
    }
}

/// One byte of a row value changed in a CRC32 binlog: the event's
/// checksum no longer matches, and `replay` stops there with one line
/// naming the file and the event's offset, instead of publishing the
/// changed value (as `mariadb-binlog --verify-binlog-checksum` refuses it).
#[test]
fn a_changed_byte_in_a_checksummed_binlog_is_refused_with_file_and_offset() {
    let name = "kingbus/binlog/mysql_bin.000011";
    let mut data = bytes(name);
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    // The format description says CRC32 (its algorithm byte precedes its
    // own checksum).
    let fde_size = u32_at(&data, 4 + 9) as usize;
    assert_eq!(data[4 + 4], 15, "the first event is the format description");
    assert_eq!(data[4 + fde_size - 5], 1, "{name} is written with CRC32");
    // The last byte of the first WRITE_ROWS event's row data (just before
    // its checksum).
    let mut at = 4;
    let rows_at = loop {
        let size = u32_at(&data, at + 9) as usize;
        if matches!(data[at + 4], 23 | 30) {
            break at;
        }
        at += size;
    };
    let size = u32_at(&data, rows_at + 9) as usize;
    let dir = std::env::temp_dir().join(common::unique("crc"));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("mysql_bin.000011");
    std::fs::write(&good, &data).unwrap();
    data[rows_at + size - 5] ^= 0x20;
    let bad = dir.join("damaged.000011");
    std::fs::write(&bad, &data).unwrap();
    let whole = Command::new(env!("CARGO_BIN_EXE_binlog2kafka"))
        .args(["replay", "--stdout"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let (out, error) = replay_failing(&bad);
    assert!(
        error.contains("damaged.000011")
            && error.contains(&format!("offset {rows_at}"))
            && error.contains("checksum"),
        "{error}"
    );
    // Nothing of the damaged event, nor after it, was written.
    let written = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(written < String::from_utf8_lossy(&whole.stdout).lines().count());
}

/// A MariaDB binlog written with `encrypt_binlog=ON`: a START_ENCRYPTION
/// event follows the format description and the rest is ciphertext. Once
/// this was read as events of nonsense sizes ("offset 3726649893"); now it
/// is one line that says the file is encrypted and what to do.
#[test]
fn an_encrypted_binlog_is_named_as_such() {
    let plain = bytes("kingbus/binlog/mysql_bin.000011");
    let fde_size = u32::from_le_bytes(plain[13..17].try_into().unwrap()) as usize;
    let mut data = plain[..4 + fde_size].to_vec();
    let at = data.len();
    // START_ENCRYPTION_EVENT: scheme (1), key version (4), nonce (12), CRC32.
    let size = 19 + 17 + 4;
    let mut header = vec![0u8; 19];
    header[4] = 164;
    header[5..9].copy_from_slice(&1u32.to_le_bytes());
    header[9..13].copy_from_slice(&(size as u32).to_le_bytes());
    header[13..17].copy_from_slice(&((at + size) as u32).to_le_bytes());
    data.extend_from_slice(&header);
    data.extend_from_slice(&[1, 1, 0, 0, 0]);
    data.extend_from_slice(&[0x5a; 12]);
    let crc = crc32(&data[at..]);
    data.extend_from_slice(&crc.to_le_bytes());
    // Ciphertext: what follows means nothing without the key.
    data.extend((0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let dir = std::env::temp_dir().join(common::unique("enc"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mariadb-bin.000001");
    std::fs::write(&path, &data).unwrap();
    let (_, error) = replay_failing(&path);
    assert!(
        error.contains("is encrypted (MariaDB encrypt_binlog=ON")
            && error.contains(&format!("offset {at}"))
            && error.contains("--read-from-remote-server"),
        "{error}"
    );
}

/// `replay --stdout FILE`, which must fail with exit 1 and exactly one
/// error line: its output and that line.
fn replay_failing(file: &std::path::Path) -> (std::process::Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_binlog2kafka"))
        .args(["replay", "--stdout"])
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let line = errors[0].to_string();
    (out, line)
}

/// CRC32 (IEEE), bit by bit: the test's own, apart from the daemon's.
fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                c >> 1 ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// MySQL 5.7 and 8.0 binlogs, which carry no column names, replay with
/// their real names, keys and all, when replay follows the schema: the
/// tables' CREATE TABLE is in the files, so the schema file given is empty;
/// across two files, one history.
#[test]
fn binlogs_without_names_replay_with_their_real_names_from_a_schema() {
    let mut cfg = config();
    cfg.history = Some(History::from_sql("").unwrap());
    let replayed = |cfg: &Settings, names: &[&str]| -> Vec<Value> {
        let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
        let paths: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
        let mut out = Vec::new();
        replay_files(cfg, &paths, false, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let rows = replayed(&cfg, &["BinlogVisualizer/minimal.binlog"]);
    assert_eq!(rows[0]["data"], json!({"id": 1, "name": "alice"}), "5.7.44");
    assert_eq!(rows[0]["primary_key_columns"], json!(["id"]));
    let rows = replayed(
        &cfg,
        &[
            "kingbus/binlog/mysql_bin.000011",
            "kingbus/binlog/mysql_bin.000012",
        ],
    );
    assert_eq!(rows.len(), 80);
    for r in &rows {
        let keys: Vec<&String> = r["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["age", "id", "name"], "5.7.23, both files: {r}");
    }
    let rows = replayed(&cfg, &["mysql-cdc-rs/8.0/32_delete_rows_v2/binlog.000001"]);
    assert_eq!(rows[0]["data"]["col1"], json!(1), "8.2.0");
    let rows = replayed(
        &cfg,
        &["percona-binlog-server/data_80045_gtid/binlog.000001"],
    );
    assert_eq!(rows[0]["data"], json!({"id": 1}), "8.0.45");
    // Without the schema, the same rows stay positional, as before.
    let rows = replayed(&config(), &["BinlogVisualizer/minimal.binlog"]);
    assert_eq!(rows[0]["data"], json!({"@1": 1, "@2": "alice"}));
    // A table the schema does not hold, in a file that does not create it,
    // stops the replay instead of being named by a guess.
    let paths = [fixture("mysql-binlog-connector-rust/mysql-bin.000080")];
    let paths: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let e = replay_files(&cfg, &paths, false, &mut Vec::new()).unwrap_err();
    assert!(
        e.to_string().contains("cannot name the columns of a.b"),
        "{e}"
    );
}
