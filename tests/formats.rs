//! The three output formats, message by message: one INSERT, UPDATE and
//! DELETE of a fixed row (and one DDL) are encoded in each format and must
//! equal the samples in `tests/fixtures/formats/` byte for byte. The format
//! reference (`docs/formats.md`) shows the same samples, and a test here
//! keeps it so.
//!
//! Set `B2K_BLESS=1` to rewrite the samples after a deliberate change, then
//! review the diff against the format's published description.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use binlog2kafka::event::{
    Cell, ColumnSchema, DdlChange, DdlKind, NameSource, Position, RowChange, RowImage, RowKind,
    SnapshotMark, SnapshotPart, TableSchema,
};
use binlog2kafka::format::value::Style;
use binlog2kafka::format::{Context, Encoder, Format, TxnOrder};
use mysql::consts::ColumnType;

const NOW_MS: i64 = 1_732_500_000_123;
const FORMATS: [(&str, Format); 3] = [
    ("maxwell", Format::Maxwell),
    ("debezium", Format::Debezium),
    ("canal", Format::Canal),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

/// `shop.orders (id INT UNSIGNED PRIMARY KEY, note VARCHAR(100),
/// price DECIMAL(10,2), placed DATETIME, due DATE, paid TIMESTAMP NULL)`.
fn table() -> Arc<TableSchema> {
    let c = |name: &str, t, meta: &[u8], unsigned| ColumnSchema {
        name: name.into(),
        col_type: t,
        meta: meta.to_vec(),
        unsigned,
        charset: 45,
        labels: vec![],
        json: false,
        visibility: Default::default(),
    };
    Arc::new(TableSchema {
        database: "shop".into(),
        table: "orders".into(),
        columns: vec![
            c("id", ColumnType::MYSQL_TYPE_LONG, &[], true),
            c("note", ColumnType::MYSQL_TYPE_VARCHAR, &[144, 1], false),
            c("price", ColumnType::MYSQL_TYPE_NEWDECIMAL, &[10, 2], false),
            c("placed", ColumnType::MYSQL_TYPE_DATETIME2, &[0], false),
            c("due", ColumnType::MYSQL_TYPE_DATE, &[], false),
            c("paid", ColumnType::MYSQL_TYPE_TIMESTAMP2, &[0], false),
        ],
        primary_key: vec![0],
        names_from: NameSource::TableMap,
        rendered: Default::default(),
    })
}

/// The row's values as the binlog stores them.
struct Row {
    id: u32,
    note: &'static str,
    /// DECIMAL(10,2) as cents (positive).
    cents: u32,
    placed: (u64, u64, u64, u64, u64, u64),
    due: (u64, u64, u64),
    paid: Option<u32>,
}

fn image(r: &Row) -> RowImage {
    let mut buf = Vec::new();
    let mut cells = Vec::new();
    let mut put = |buf: &mut Vec<u8>, bytes: &[u8]| {
        let start = buf.len() as u32;
        buf.extend_from_slice(bytes);
        cells.push(Cell::Data {
            start,
            end: buf.len() as u32,
        });
    };
    put(&mut buf, &r.id.to_le_bytes());
    put(&mut buf, r.note.as_bytes());
    // DECIMAL(10,2): 8 integer digits in 4 bytes, 2 fraction digits in 1,
    // big-endian, sign bit flipped for a positive value.
    let mut dec = (r.cents / 100).to_be_bytes().to_vec();
    dec.push((r.cents % 100) as u8);
    dec[0] ^= 0x80;
    put(&mut buf, &dec);
    let (y, mo, d, h, mi, s) = r.placed;
    let packed = (((y * 13 + mo) << 5 | d) << 17 | h << 12 | mi << 6 | s) + 0x80_0000_0000;
    put(&mut buf, &packed.to_be_bytes()[3..]);
    let (y, mo, d) = r.due;
    put(&mut buf, &(d | mo << 5 | y << 9).to_le_bytes()[..3]);
    match r.paid {
        Some(t) => put(&mut buf, &t.to_be_bytes()),
        None => cells.push(Cell::Null),
    }
    RowImage {
        buf: buf.into(),
        cells: cells.into(),
    }
}

fn before() -> Row {
    Row {
        id: 1001,
        note: "gift \"wrap\"",
        cents: 1999,
        placed: (2024, 11, 25, 9, 30, 0),
        due: (2024, 12, 1),
        paid: None,
    }
}

fn after() -> Row {
    Row {
        paid: Some(1_732_527_000),
        cents: 1799,
        ..before()
    }
}

fn change(kind: RowKind) -> RowChange {
    let (b, a) = match kind {
        RowKind::Insert => (None, Some(image(&before()))),
        RowKind::Update => (Some(image(&before())), Some(image(&after()))),
        RowKind::Delete => (Some(image(&after())), None),
    };
    RowChange {
        seq: 42,
        kind,
        table: table(),
        before: b,
        after: a,
        ts: 1_732_527_000,
        xid: Some(7781),
        xoffset: 0,
        commit: true,
        event_file: "mariadb-bin.000004".into(),
        event_pos: 2211,
        event_row: 0,
        thread: Some(31),
        server_id: 1,
        checkpoint: Position {
            file: "mariadb-bin.000004".into(),
            pos: 2103,
            rows: 1,
            gtid: Some("0-1-118".into()),
            state: None,
            file_id: None,
            snapshot: None,
            schema: 0,
        },
        snapshot: None,
    }
}

fn ddl() -> DdlChange {
    DdlChange {
        seq: 43,
        kind: DdlKind::AlterTable,
        database: "shop".into(),
        table: "orders".into(),
        sql: "ALTER TABLE orders ADD COLUMN coupon VARCHAR(20)".into(),
        ts: 1_732_527_060,
        event_file: "mariadb-bin.000004".into(),
        event_pos: 2642,
        server_id: 1,
        thread: Some(31),
        checkpoint: Position {
            file: "mariadb-bin.000004".into(),
            pos: 2790,
            rows: 0,
            gtid: None,
            state: None,
            file_id: None,
            snapshot: None,
            schema: 0,
        },
    }
}

/// A snapshot record of the same row: read, not logged, so no xid, thread
/// or GTID; its position is where the stream stood when it went out.
fn snapshot_change(part: SnapshotPart) -> RowChange {
    let mut r = change(RowKind::Insert);
    r.snapshot = Some(part);
    r.xid = None;
    r.commit = false;
    r.thread = None;
    r.event_pos = 2790;
    r.checkpoint.gtid = None;
    r.checkpoint.pos = 2790;
    r.checkpoint.rows = 0;
    if !matches!(part, SnapshotPart::Row(_)) {
        r.after = None;
    }
    r
}

/// The snapshot samples: (label, record) for each format; Maxwell alone
/// writes bootstrap-start and bootstrap-complete.
fn snapshot_samples(format: Format) -> Vec<(&'static str, RowChange)> {
    let mut out = vec![
        (
            "snapshot-first",
            snapshot_change(SnapshotPart::Row(SnapshotMark::First)),
        ),
        (
            "snapshot-row",
            snapshot_change(SnapshotPart::Row(SnapshotMark::Middle)),
        ),
        (
            "snapshot-incremental",
            snapshot_change(SnapshotPart::Row(SnapshotMark::Incremental)),
        ),
    ];
    if format == Format::Maxwell {
        out.push(("snapshot-start", snapshot_change(SnapshotPart::Start)));
        out.push(("snapshot-complete", snapshot_change(SnapshotPart::Complete)));
    }
    out
}

/// Every sample: (file name, message) for each format and change.
fn samples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, format) in FORMATS {
        let enc = Encoder::new(format, Style::default(), "shop-primary");
        for (kind, label) in [
            (RowKind::Insert, "insert"),
            (RowKind::Update, "update"),
            (RowKind::Delete, "delete"),
        ] {
            let r = change(kind);
            let id = r.txn_id();
            let ctx = Context {
                now_ms: NOW_MS,
                txn: (format == Format::Debezium).then_some(TxnOrder {
                    id: &id,
                    total_order: 1,
                    collection_order: 1,
                }),
            };
            let mut v = Vec::new();
            enc.row_value(&mut v, &r, &ctx);
            out.push((
                format!("{name}-{label}.json"),
                String::from_utf8(v).unwrap(),
            ));
        }
        for (label, r) in snapshot_samples(format) {
            let ctx = Context {
                now_ms: NOW_MS,
                txn: None,
            };
            let mut v = Vec::new();
            enc.row_value(&mut v, &r, &ctx);
            out.push((
                format!("{name}-{label}.json"),
                String::from_utf8(v).unwrap(),
            ));
        }
        let mut v = Vec::new();
        enc.ddl_value(&mut v, &ddl(), NOW_MS);
        out.push((format!("{name}-ddl.json"), String::from_utf8(v).unwrap()));
    }
    out
}

#[test]
fn each_format_encodes_its_samples_byte_for_byte() {
    let bless = std::env::var("B2K_BLESS").is_ok_and(|v| v == "1");
    for (file, got) in samples() {
        let path = dir().join(&file);
        if bless {
            std::fs::write(&path, format!("{got}\n")).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(got, want.trim_end_matches('\n'), "{file} differs");
        // Every sample is one valid JSON document.
        serde_json::from_str::<serde_json::Value>(&got).unwrap();
    }
}

#[test]
fn debezium_renders_types_as_the_connector_documents() {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("debezium-update.json")).unwrap())
            .unwrap();
    // decimal.handling.mode=string
    assert_eq!(v["before"]["price"], "19.99");
    assert_eq!(v["after"]["price"], "17.99");
    // DATETIME: epoch ms; DATE: epoch days; TIMESTAMP: ISO-8601 UTC.
    assert_eq!(v["after"]["placed"], 1_732_527_000_000i64);
    assert_eq!(v["after"]["due"], 20_058);
    assert_eq!(v["after"]["paid"], "2024-11-25T09:30:00Z");
    assert_eq!(v["before"]["paid"], serde_json::Value::Null);
    assert_eq!(v["op"], "u");
    let src = &v["source"];
    for field in [
        "version",
        "connector",
        "name",
        "ts_ms",
        "snapshot",
        "db",
        "table",
        "server_id",
        "gtid",
        "file",
        "pos",
        "row",
        "thread",
        "query",
    ] {
        assert!(src.get(field).is_some(), "source.{field} missing");
    }
    assert_eq!(src["connector"], "mysql");
    assert_eq!(src["ts_ms"], 1_732_527_000_000i64);
    assert_eq!(v["transaction"]["id"], "0-1-118");
}

#[test]
fn canal_values_are_strings_with_types_beside_them() {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("canal-update.json")).unwrap())
            .unwrap();
    assert_eq!(v["type"], "UPDATE");
    assert_eq!(v["isDdl"], false);
    assert_eq!(v["data"][0]["id"], "1001");
    assert_eq!(v["data"][0]["price"], "17.99");
    assert_eq!(
        v["old"][0],
        serde_json::json!({"price": "19.99", "paid": null})
    );
    assert_eq!(v["pkNames"], serde_json::json!(["id"]));
    assert_eq!(v["sqlType"]["id"], 4);
    assert_eq!(v["mysqlType"]["price"], "decimal(10,2)");
    assert_eq!(v["es"], 1_732_527_000_000i64);
    // Canal's field order: alphabetical, as its JSON library writes it.
    let text = std::fs::read_to_string(dir().join("canal-update.json")).unwrap();
    let keys = top_level_keys(&text);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 13, "{keys:?}");
}

/// The keys of a JSON object's top level, in written order.
fn top_level_keys(text: &str) -> Vec<String> {
    let (mut depth, mut keys) = (0, Vec::new());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b'"' => {
                let start = i + 1;
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && b.get(i + 1) == Some(&b':') {
                    keys.push(text[start..i].to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

#[test]
fn readme_shows_the_samples() {
    // The format reference, and the snapshot page for the snapshot rows.
    let readme = ["docs/formats.md", "docs/snapshots.md"]
        .map(|f| {
            std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap()
        })
        .concat();
    for (file, got) in samples() {
        if file.ends_with("-ddl.json")
            || (file.contains("-snapshot-") && !file.ends_with("-snapshot-row.json"))
        {
            continue;
        }
        assert!(
            readme.contains(&got),
            "docs/formats.md and docs/snapshots.md lack the {file} sample"
        );
    }
}

#[test]
fn snapshot_records_are_marked_as_each_format_marks_them() {
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir().join(f)).unwrap()).unwrap()
    };
    // Maxwell: bootstrap-start, bootstrap-insert rows, bootstrap-complete.
    let start = read("maxwell-snapshot-start.json");
    assert_eq!(start["type"], "bootstrap-start");
    assert_eq!(start["data"], serde_json::json!({}));
    let row = read("maxwell-snapshot-row.json");
    assert_eq!(row["type"], "bootstrap-insert");
    assert_eq!(row["data"]["id"], 1001);
    assert_eq!(row["data"]["price"], 19.99);
    assert_eq!(row["ts"], 1_732_527_000);
    assert!(row.get("xid").is_none() && row.get("commit").is_none());
    assert_eq!(
        read("maxwell-snapshot-complete.json")["type"],
        "bootstrap-complete"
    );
    // Debezium: op "r", source.snapshot as the MySQL connector sets it.
    for (file, mark) in [
        ("debezium-snapshot-first.json", "first"),
        ("debezium-snapshot-row.json", "true"),
        ("debezium-snapshot-incremental.json", "incremental"),
    ] {
        let v = read(file);
        assert_eq!(v["op"], "r", "{file}");
        assert_eq!(v["before"], serde_json::Value::Null, "{file}");
        assert_eq!(v["after"]["id"], 1001, "{file}");
        assert_eq!(v["source"]["snapshot"], mark, "{file}");
        assert_eq!(v["source"]["pos"], 2790, "{file}");
        assert_eq!(v["transaction"], serde_json::Value::Null, "{file}");
    }
    assert_eq!(read("debezium-insert.json")["source"]["snapshot"], "false");
    // canal-json has no snapshot type: an INSERT.
    let v = read("canal-snapshot-row.json");
    assert_eq!(v["type"], "INSERT");
    assert_eq!(v["data"][0]["id"], "1001");
}

/// The Debezium envelope in Avro (issue 24, the encoding only: no registry
/// yet) read back by fastavro, an independent Avro library, for an INSERT,
/// UPDATE and DELETE: every field equals the Debezium JSON format's value
/// (Avro's types are Debezium's defaults: a DATETIME is epoch
/// milliseconds, a DECIMAL its exact text, a TIMESTAMP ISO-8601 in UTC).
#[test]
fn avro_envelopes_read_back_by_an_independent_library_equal_the_json_values() {
    use binlog2kafka::format::avro::envelope::TableAvro;
    let avro = TableAvro::new("srv", &table());
    let tmp = std::env::temp_dir().join(format!("b2k-avro-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let value_schema = tmp.join("value.avsc");
    std::fs::write(&value_schema, avro.envelope.text()).unwrap();
    let key_schema = tmp.join("key.avsc");
    std::fs::write(&key_schema, avro.key.as_ref().unwrap().text()).unwrap();
    let style = Style::default();
    let enc = Encoder::new(Format::Debezium, style, "srv");
    let ctx = Context {
        now_ms: NOW_MS,
        txn: Some(TxnOrder {
            id: "0-1-118",
            total_order: 1,
            collection_order: 1,
        }),
    };
    let mut bodies = Vec::new();
    let mut keys = Vec::new();
    let mut json = Vec::new();
    for (i, kind) in [RowKind::Insert, RowKind::Update, RowKind::Delete]
        .into_iter()
        .enumerate()
    {
        let r = change(kind);
        let mut body = Vec::new();
        avro.write_value(&mut body, &r, "srv", &style, &ctx)
            .unwrap();
        let path = tmp.join(format!("value{i}.avro"));
        std::fs::write(&path, &body).unwrap();
        bodies.push(path);
        let mut key = Vec::new();
        assert!(avro.write_key(&mut key, &r, &style).unwrap());
        let path = tmp.join(format!("key{i}.avro"));
        std::fs::write(&path, &key).unwrap();
        keys.push(path);
        let mut v = Vec::new();
        enc.row_value(&mut v, &r, &ctx);
        json.push(serde_json::from_slice::<serde_json::Value>(&v).unwrap());
    }
    let decode = |schema: &PathBuf, files: &[PathBuf]| -> Vec<serde_json::Value> {
        let args: Vec<&PathBuf> = std::iter::once(schema).chain(files).collect();
        common::script_lines("avro_decode.py", &args)
    };
    let decoded = decode(&value_schema, &bodies);
    for (got, want) in decoded.iter().zip(&json) {
        for side in ["before", "after"] {
            assert_eq!(got[side], want[side], "{side}: avro {got}\njson {want}");
        }
        assert_eq!(got["op"], want["op"]);
        assert_eq!(got["ts_ms"], want["ts_ms"]);
        assert_eq!(got["transaction"], want["transaction"]);
        for f in [
            "connector",
            "name",
            "ts_ms",
            "snapshot",
            "db",
            "table",
            "server_id",
            "gtid",
            "file",
            "pos",
            "row",
            "thread",
        ] {
            assert_eq!(got["source"][f], want["source"][f], "source.{f}");
        }
    }
    assert_eq!(decoded[1]["after"]["price"], "17.99");
    for k in decode(&key_schema, &keys) {
        assert_eq!(k, serde_json::json!({"id": 1001}));
    }
    let schema: serde_json::Value = serde_json::from_str(&avro.envelope.text()).unwrap();
    assert_eq!(schema["name"], "Envelope");
    assert_eq!(schema["namespace"], "srv.shop.orders");
}
