//! The Debezium MySQL connector's JSON value, as its JSON converter writes
//! it with `schemas.enable=false`, so Debezium consumers (Flink's
//! `debezium-json`, sink connectors, Materialize, RisingWave) read it
//! unchanged.
//!
//! Value: `before`, `after`, `source` {version, connector, name, ts_ms,
//! snapshot, db, table, server_id, gtid, file, pos, row, thread, query},
//! `op` (c/u/d), `ts_ms`, `transaction`. Values follow
//! `decimal.handling.mode=string`, `time.precision.mode=connect` and
//! `binary.handling.mode=base64`: DATE as days since the epoch, DATETIME
//! as epoch milliseconds, TIME as milliseconds of the day, TIMESTAMP as
//! ISO-8601 UTC text, DECIMAL as text, JSON as its text, BIT(1) as a
//! boolean, wider BIT as base64 of its little-endian bytes, GEOMETRY as
//! `{"wkb","srid"}`.

use super::json::{write_base64, write_i64, write_str, write_u64};
use super::maxwell::{present, write_col, write_object, write_pk_object, write_plain};
use super::value::Style;
use super::{Context, Encoder};
use crate::event::column::real_type;
use crate::event::{Cell, ColumnSchema, DdlChange, RowChange, RowImage, RowKind, SnapshotPart};
use crate::filter::Visibility;
use mysql::consts::ColumnType;

/// `source.version`: what wrote the message.
const VERSION: &str = concat!("binlog2kafka-", env!("CARGO_PKG_VERSION"));

/// Appends the change event value.
pub fn write_value(out: &mut Vec<u8>, r: &RowChange, enc: &Encoder, ctx: &Context<'_>) {
    out.push(b'{');
    out.extend_from_slice(b"\"before\":");
    match (r.kind, &r.before) {
        (RowKind::Insert, _) | (_, None) => out.extend_from_slice(b"null"),
        (_, Some(img)) => write_row(out, r, img, &enc.style),
    }
    out.push(b',');
    out.extend_from_slice(b"\"after\":");
    match (r.kind, &r.after) {
        (RowKind::Delete, _) | (_, None) => out.extend_from_slice(b"null"),
        (_, Some(img)) => write_row(out, r, img, &enc.style),
    }
    out.push(b',');
    out.extend_from_slice(b"\"source\":");
    enc.debezium
        .borrow_mut()
        .write_source(out, r, &enc.server_name);
    out.push(b',');
    out.extend_from_slice(b"\"op\":");
    write_str(out, op(r));
    out.push(b',');
    out.extend_from_slice(b"\"ts_ms\":");
    write_i64(out, ctx.now_ms);
    out.push(b',');
    out.extend_from_slice(b"\"transaction\":");
    match ctx.txn {
        None => out.extend_from_slice(b"null"),
        Some(t) => {
            out.push(b'{');
            out.extend_from_slice(b"\"id\":");
            write_str(out, t.id);
            out.push(b',');
            out.extend_from_slice(b"\"total_order\":");
            write_u64(out, t.total_order);
            out.push(b',');
            out.extend_from_slice(b"\"data_collection_order\":");
            write_u64(out, t.collection_order);
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// Debezium's `op`: `c`, `u`, `d`, or `r` for a row the snapshot read.
pub fn op(r: &RowChange) -> &'static str {
    match r.kind {
        _ if r.snapshot.is_some() => "r",
        RowKind::Insert => "c",
        RowKind::Update => "u",
        RowKind::Delete => "d",
    }
}

/// Appends the schema-change message Debezium writes to its schema change
/// topic. `tableChanges` is left empty: the daemon does not parse the
/// statement into a table definition.
pub fn write_ddl(out: &mut Vec<u8>, d: &DdlChange, enc: &Encoder, now_ms: i64) {
    out.push(b'{');
    out.extend_from_slice(b"\"source\":");
    Source {
        name: &enc.server_name,
        ts: d.ts,
        db: &d.database,
        table: (!d.table.is_empty()).then_some(d.table.as_str()),
        server_id: d.server_id,
        gtid: d.checkpoint.gtid.as_deref(),
        file: &d.event_file,
        pos: d.event_pos,
        row: 0,
        thread: d.thread,
        snapshot: "false",
    }
    .write(out);
    out.push(b',');
    out.extend_from_slice(b"\"ts_ms\":");
    write_i64(out, now_ms);
    out.push(b',');
    out.extend_from_slice(b"\"databaseName\":");
    write_str(out, &d.database);
    out.extend_from_slice(b",\"schemaName\":null,");
    out.extend_from_slice(b"\"ddl\":");
    write_str(out, &d.sql);
    out.extend_from_slice(b",\"tableChanges\":[]}");
}

/// A transaction marker as Debezium writes it to its transaction topic:
/// `BEGIN` with null counts, `END` with the event count and the count per
/// table (`data_collections`).
pub fn write_txn_marker(
    out: &mut Vec<u8>,
    id: &str,
    ts_ms: i64,
    end: Option<(u64, &[(String, u64)])>,
) {
    out.push(b'{');
    out.extend_from_slice(b"\"status\":");
    write_str(out, if end.is_some() { "END" } else { "BEGIN" });
    out.push(b',');
    out.extend_from_slice(b"\"id\":");
    write_str(out, id);
    out.push(b',');
    out.extend_from_slice(b"\"ts_ms\":");
    write_i64(out, ts_ms);
    out.push(b',');
    match end {
        None => out.extend_from_slice(b"\"event_count\":null,\"data_collections\":null"),
        Some((count, tables)) => {
            out.extend_from_slice(b"\"event_count\":");
            write_u64(out, count);
            out.push(b',');
            out.extend_from_slice(b"\"data_collections\":");
            out.push(b'[');
            for (n, (name, c)) in tables.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.push(b'{');
                out.extend_from_slice(b"\"data_collection\":");
                write_str(out, name);
                out.push(b',');
                out.extend_from_slice(b"\"event_count\":");
                write_u64(out, *c);
                out.push(b'}');
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

/// The `source` block of the previous row, whose rendering the rows of an
/// event share up to `"row":` (everything but the row's index and
/// thread). The key holds the `Arc`s it compares by address, so an address
/// cannot be freed and given to another table or GTID while the memo
/// stands for it.
#[derive(Debug, Default, Clone)]
pub struct Memo {
    key: Option<SourceKey>,
    /// `{"version":…,…,"pos":…,"row":`
    head: Vec<u8>,
}

/// What the shared part of a `source` block depends on: table, event time,
/// snapshot mark, server id, GTID, file and offset.
type SourceKey = (
    std::sync::Arc<crate::event::TableSchema>,
    u32,
    &'static str,
    u32,
    Option<std::sync::Arc<str>>,
    std::sync::Arc<str>,
    u64,
);

impl Memo {
    fn write_source(&mut self, out: &mut Vec<u8>, r: &RowChange, name: &str) {
        use std::sync::Arc;
        let snapshot = match r.snapshot {
            Some(SnapshotPart::Row(m)) => m.debezium(),
            _ => "false",
        };
        let gtid = &r.checkpoint.gtid;
        let fresh = matches!(&self.key, Some((t, ts, s, server, g, file, pos))
            if Arc::ptr_eq(t, &r.table)
                && *ts == r.ts
                && *s == snapshot
                && *server == r.server_id
                && super::same_gtid(g, gtid)
                && Arc::ptr_eq(file, &r.event_file)
                && *pos == r.event_pos);
        if !fresh {
            let source = Source {
                name,
                ts: r.ts,
                db: &r.table.database,
                table: Some(&r.table.table),
                server_id: r.server_id,
                gtid: gtid.as_deref(),
                file: &r.event_file,
                pos: r.event_pos,
                row: 0,
                thread: None,
                snapshot,
            };
            self.head.clear();
            source.write_head(&mut self.head);
            self.key = Some((
                r.table.clone(),
                r.ts,
                snapshot,
                r.server_id,
                gtid.clone(),
                r.event_file.clone(),
                r.event_pos,
            ));
        }
        super::json::put(out, &self.head);
        write_source_tail(out, r.event_row, r.thread);
    }
}

/// The `source` block.
struct Source<'a> {
    name: &'a str,
    ts: u32,
    db: &'a str,
    table: Option<&'a str>,
    server_id: u32,
    gtid: Option<&'a str>,
    file: &'a str,
    pos: u64,
    row: u32,
    thread: Option<u32>,
    /// `"false"` for changes; a snapshot row's mark.
    snapshot: &'a str,
}

impl Source<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        self.write_head(out);
        write_source_tail(out, self.row, self.thread);
    }

    /// The block up to and including `"row":`.
    fn write_head(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        out.extend_from_slice(b"\"version\":");
        write_str(out, VERSION);
        out.extend_from_slice(b",\"connector\":\"mysql\",");
        out.extend_from_slice(b"\"name\":");
        write_str(out, self.name);
        out.push(b',');
        out.extend_from_slice(b"\"ts_ms\":");
        write_u64(out, self.ts as u64 * 1000);
        out.push(b',');
        out.extend_from_slice(b"\"snapshot\":");
        write_str(out, self.snapshot);
        out.push(b',');
        out.extend_from_slice(b"\"db\":");
        write_str(out, self.db);
        out.push(b',');
        out.extend_from_slice(b"\"table\":");
        opt_str(out, self.table);
        out.push(b',');
        out.extend_from_slice(b"\"server_id\":");
        write_u64(out, self.server_id as u64);
        out.push(b',');
        out.extend_from_slice(b"\"gtid\":");
        opt_str(out, self.gtid);
        out.push(b',');
        out.extend_from_slice(b"\"file\":");
        write_str(out, self.file);
        out.push(b',');
        out.extend_from_slice(b"\"pos\":");
        write_u64(out, self.pos);
        out.push(b',');
        out.extend_from_slice(b"\"row\":");
    }
}

/// The end of a `source` block: the row's index, thread and query.
fn write_source_tail(out: &mut Vec<u8>, row: u32, thread: Option<u32>) {
    write_u64(out, row as u64);
    out.push(b',');
    out.extend_from_slice(b"\"thread\":");
    match thread {
        Some(t) => write_u64(out, t as u64),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"query\":null}");
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// One row image as `{"column": value, ...}`; columns the image lacks
/// (a MINIMAL row image) or the filter excludes are left out.
fn write_row(out: &mut Vec<u8>, r: &RowChange, img: &RowImage, style: &Style) {
    write_object(
        out,
        &r.table,
        |i| present(img, i),
        |out, col, i| write_dbz(out, col, img, i, style),
    );
}

/// Appends the Debezium key: the primary-key columns (`{"id":1}`), `null`
/// for a table without one. Values are rendered as in the value.
pub fn write_key_json(out: &mut Vec<u8>, r: &RowChange, style: &Style) {
    write_pk_object(out, r, |out, col, img, i| match img {
        Some(img) => write_dbz(out, col, img, i, style),
        None => out.extend_from_slice(b"null"),
    });
}

/// Column `i` as Debezium renders its type.
fn write_dbz(out: &mut Vec<u8>, col: &ColumnSchema, img: &RowImage, i: usize, style: &Style) {
    if col.visibility == Visibility::Masked {
        return write_col(out, col, Some(img), i, style);
    }
    if let Some(Cell::Json(doc)) = img.cells.get(i) {
        return write_str(out, &String::from_utf8_lossy(doc));
    }
    let Some(b) = img.cell(i) else {
        out.extend_from_slice(b"null");
        return;
    };
    // The value as Maxwell writes it: the temporal and decimal conversions
    // below start from that one decoding.
    let plain = || {
        let mut t = Vec::with_capacity(32);
        write_plain(&mut t, col, Some(img), i, style);
        t
    };
    // A temporal value is first written as Maxwell writes it, at the end of
    // `out` (no buffer of its own), read there, then replaced by what
    // `read` made of it, or by null.
    let temporal = |out: &mut Vec<u8>, read: &dyn Fn(&str) -> Option<i64>| {
        let mark = out.len();
        write_plain(out, col, Some(img), i, style);
        let value = text(&out[mark..]).and_then(|s| read(&s));
        out.truncate(mark);
        match value {
            Some(v) => write_i64(out, v),
            None => out.extend_from_slice(b"null"),
        }
    };
    match real_type(col) {
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => temporal(out, &|s| {
            parse_date(s).map(|(y, m, d)| days_from_civil(y, m, d))
        }),
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => {
            temporal(out, &epoch_ms)
        }
        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
            let mark = out.len();
            write_plain(out, col, Some(img), i, style);
            let iso = text(&out[mark..])
                .filter(|s| parse_date(s).is_some())
                .map(|s| s.replacen(' ', "T", 1) + "Z");
            out.truncate(mark);
            match iso {
                Some(iso) => write_str(out, &iso),
                None => out.extend_from_slice(b"null"),
            }
        }
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => temporal(out, &time_ms),
        ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let t = plain();
            write_str(out, &String::from_utf8_lossy(&t));
        }
        ColumnType::MYSQL_TYPE_BIT => {
            let bits = col.meta.get(1).copied().unwrap_or(0) as usize * 8
                + col.meta.first().copied().unwrap_or(0) as usize;
            if bits == 1 {
                out.extend_from_slice(if b.iter().any(|&x| x != 0) {
                    b"true"
                } else {
                    b"false"
                });
            } else {
                let le: Vec<u8> = b.iter().rev().copied().collect();
                write_base64(out, &le);
            }
        }
        ColumnType::MYSQL_TYPE_GEOMETRY if b.len() >= 4 => {
            out.push(b'{');
            out.extend_from_slice(b"\"wkb\":");
            write_base64(out, &b[4..]);
            out.push(b',');
            out.extend_from_slice(b"\"srid\":");
            write_u64(out, u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64);
            out.push(b'}');
        }
        ColumnType::MYSQL_TYPE_JSON => {
            let t = plain();
            write_str(out, &String::from_utf8_lossy(&t));
        }
        _ if col.json => {
            // MariaDB JSON: the text as stored.
            write_str(out, &String::from_utf8_lossy(b));
        }
        _ => write_plain(out, col, Some(img), i, style),
    }
}

/// The text of a temporal value's JSON: `null` or a quoted ASCII string
/// without escapes (`"2024-01-02 03:04:05.678"`), whose text is what lies
/// between the quotes; anything else is read as JSON.
fn text(t: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if let Some(inner) = t.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")) {
        if inner
            .iter()
            .all(|&c| c != b'"' && c != b'\\' && c.is_ascii())
        {
            return std::str::from_utf8(inner)
                .ok()
                .map(std::borrow::Cow::Borrowed);
        }
    }
    serde_json::from_slice::<serde_json::Value>(t)
        .ok()
        .and_then(|v| v.as_str().map(|s| std::borrow::Cow::Owned(s.to_string())))
}

/// A decimal number as `str::parse` reads it (an optional sign, then
/// digits), without its generic machinery: these run for every temporal
/// value.
fn number(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return if digits.len() > 18 {
            s.parse().ok()
        } else {
            None
        };
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(if neg { -v } else { v })
}

/// `YYYY-MM-DD...` → (year, month, day); `None` for zero or partly-zero
/// dates.
fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let y: i64 = number(s.get(0..4)?)?;
    let m: u32 = u32::try_from(number(s.get(5..7)?)?).ok()?;
    let d: u32 = u32::try_from(number(s.get(8..10)?)?).ok()?;
    (m >= 1 && d >= 1 && (y > 0 || m > 0)).then_some((y, m, d))
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    crate::clock::days_from_civil(y, m as i64, d as i64)
}

/// `HH:MM:SS[.ffffff]` → (seconds, microseconds). Anything after a third
/// `:` is ignored, as a split would.
fn hms(s: &str) -> Option<(i64, i64)> {
    let (whole, frac) = match s.bytes().position(|c| c == b'.') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, ""),
    };
    let mut rest = whole;
    let mut part = || -> Option<&str> {
        let (p, r) = match rest.bytes().position(|c| c == b':') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (std::mem::take(&mut rest), ""),
        };
        rest = r;
        Some(p)
    };
    let h: i64 = number(part()?)?;
    let m: i64 = number(part()?)?;
    let sec: i64 = number(part()?)?;
    // The fraction's first six digits, padded with zeros on the right.
    let micros: i64 = if frac.is_empty() {
        0
    } else {
        let six = frac.get(..frac.len().min(6))?;
        let scale = 10i64.pow(6 - six.len() as u32);
        if six.starts_with(['-', '+']) {
            format!("{frac:0<6}").get(0..6)?.parse().ok()?
        } else {
            number(six)? * scale
        }
    };
    Some((h * 3600 + m * 60 + sec, micros))
}

/// `YYYY-MM-DD HH:MM:SS[.f]` → milliseconds since the epoch.
fn epoch_ms(s: &str) -> Option<i64> {
    if let Some(ms) = laid_out_epoch_ms(s.as_bytes()) {
        return Some(ms);
    }
    let (y, m, d) = parse_date(s)?;
    let (secs, micros) = hms(s.get(11..)?)?;
    Some((days_from_civil(y, m, d) * 86_400 + secs) * 1000 + micros / 1000)
}

/// [`epoch_ms`] of a value laid out as the Maxwell format writes every
/// valid DATETIME, `YYYY-MM-DD HH:MM:SS` and up to six fraction digits,
/// read at fixed places; `None` for anything else (including a zero
/// date), which the general reading then decides.
fn laid_out_epoch_ms(b: &[u8]) -> Option<i64> {
    if b.len() < 19
        || b.len() == 20
        || b.len() > 26
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
        || (b.len() > 19 && b[19] != b'.')
    {
        return None;
    }
    let digit = |i: usize| -> Option<i64> {
        let c = b[i];
        c.is_ascii_digit().then_some((c - b'0') as i64)
    };
    let two = |i: usize| -> Option<i64> { Some(digit(i)? * 10 + digit(i + 1)?) };
    let (y, m, d) = (two(0)? * 100 + two(2)?, two(5)?, two(8)?);
    if m < 1 || d < 1 {
        return None;
    }
    let secs = two(11)? * 3600 + two(14)? * 60 + two(17)?;
    let mut micros = 0i64;
    for i in 20..b.len() {
        micros = micros * 10 + digit(i)?;
    }
    if b.len() > 20 {
        micros *= 10i64.pow(26 - b.len() as u32);
    }
    Some((days_from_civil(y, m as u32, d as u32) * 86_400 + secs) * 1000 + micros / 1000)
}

/// `[-]HH:MM:SS[.f]` → milliseconds (negative for negative TIMEs).
fn time_ms(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (secs, micros) = hms(rest)?;
    let ms = secs * 1000 + micros / 1000;
    Some(if neg { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_values_convert_like_kafka_connect() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(
            epoch_ms("2024-02-29 12:34:56.789012"),
            Some(1_709_210_096_789)
        );
        assert_eq!(time_ms("-838:59:59"), Some(-3_020_399_000));
        assert_eq!(time_ms("01:00:00.5"), Some(3_600_500));
        assert_eq!(parse_date("0000-00-00"), None);
        assert_eq!(parse_date("2024-00-10"), None);
        assert_eq!(time_ms("12:00:00.05"), Some(43_200_050));
        assert_eq!(epoch_ms("2024-02-29 12:34:56"), Some(1_709_210_096_000));
    }

    /// `hms` as it was written before it avoided the generic parsers.
    fn hms_by_split(s: &str) -> Option<(i64, i64)> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let mut parts = whole.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        let sec: i64 = parts.next()?.parse().ok()?;
        let micros: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<6}").get(0..6)?.parse().ok()?
        };
        Some((h * 3600 + m * 60 + sec, micros))
    }

    #[test]
    fn times_read_as_the_split_and_parse_did() {
        let mut cases: Vec<String> = [
            "12:34:56",
            "12:34:56.",
            "12:34:56.5",
            "12:34:56.123456",
            "12:34:56.1234567",
            "838:59:59.000001",
            "1:2:3:4",
            "12:34",
            "12",
            "",
            ":::",
            "a:b:c",
            "12:34:56.-5",
            "12:34:56.+5",
            "12:34:56.1x",
            "-1:00:00",
            "00:00:00.000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for h in [0, 9, 23, 100, 838] {
            for frac in ["", ".0", ".05", ".678", ".999999"] {
                cases.push(format!("{h:02}:07:09{frac}"));
            }
        }
        for s in &cases {
            assert_eq!(hms(s), hms_by_split(s), "{s:?}");
        }
    }

    #[test]
    fn datetimes_at_fixed_places_read_as_the_general_reading() {
        let general = |s: &str| {
            let (y, m, d) = parse_date(s)?;
            let (secs, micros) = hms(s.get(11..)?)?;
            Some((days_from_civil(y, m, d) * 86_400 + secs) * 1000 + micros / 1000)
        };
        let mut n = 0;
        for date in [
            "1970-01-01",
            "2024-02-29",
            "0001-01-01",
            "9999-12-31",
            "1969-12-31",
        ] {
            for time in ["00:00:00", "23:59:59", "12:34:56"] {
                for frac in ["", ".5", ".05", ".678", ".999999", ".000001"] {
                    let s = format!("{date} {time}{frac}");
                    assert_eq!(laid_out_epoch_ms(s.as_bytes()), general(&s), "{s}");
                    n += 1;
                }
            }
        }
        assert_eq!(n, 90);
        for s in [
            "0000-00-00 00:00:00",
            "2024-00-10 00:00:00",
            "2024-01-01 00:00:00.",
            "2024-01-01T00:00:00",
        ] {
            assert_eq!(laid_out_epoch_ms(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn numbers_read_as_str_parse_reads_them() {
        for s in [
            "0",
            "7",
            "-7",
            "+7",
            "",
            "-",
            "+",
            "2024",
            "0042",
            "12a",
            " 1",
            "1 ",
            "é",
            "999999999999999999",
            "9999999999999999999",
            "-9223372036854775808",
            "99999999999999999999",
        ] {
            assert_eq!(number(s), s.parse::<i64>().ok(), "{s:?}");
        }
    }
}
