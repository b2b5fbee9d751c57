//! A row read by SELECT, turned into the bytes the binlog would hold for
//! it, so a snapshot row goes through the very code that renders binlog
//! rows: every type, filter, mask and output format treats both alike, and
//! a snapshot row's JSON is byte for byte the JSON of an insert of the same
//! values (tests/snapshot.rs checks that for every column type).
//!
//! Values come from the binary protocol (a prepared statement), which gives
//! FLOAT and DOUBLE as their exact bits and temporal values as numbers; the
//! session runs with `time_zone = '+00:00'`, so a TIMESTAMP's fields are
//! UTC. ENUM and SET are selected as `col+0`: their index and bit mask.

use std::sync::Arc;

use mysql::consts::ColumnType;
use mysql::Value;

use crate::event::{Cell, Cells, ColumnSchema, RowImage, TableSchema};
use crate::source::schema::real_type;

/// The row image of `values`, one per column of `schema`.
pub fn row_image(schema: &TableSchema, values: Vec<Value>) -> Result<RowImage, String> {
    let mut images = row_images(schema, vec![values])?;
    Ok(images.pop().expect("one row in, one image out"))
}

/// The row images of `rows` (each one value per column of `schema`),
/// sharing one table of cells: a chunk's rows cost one allocation each
/// (their bytes, encoded in a buffer used again for every row). Each row
/// keeps bytes of its own, so a released row frees them: a buffer shared
/// by the chunk's wide rows held all of them until the last was released
/// (7-9 MB more at the peak of the wide snapshot).
pub fn row_images(schema: &TableSchema, rows: Vec<Vec<Value>>) -> Result<Vec<RowImage>, String> {
    let n = schema.columns.len();
    let mut buf = Vec::with_capacity(64);
    let mut bufs: Vec<Arc<[u8]>> = Vec::with_capacity(rows.len());
    let mut cells = Vec::with_capacity(rows.len() * n);
    let mut ranges = Vec::with_capacity(rows.len());
    for values in rows {
        buf.clear();
        if values.len() != n {
            return Err(format!(
                "{}.{}: the SELECT gave {} columns, the schema has {}",
                schema.database,
                schema.table,
                values.len(),
                n
            ));
        }
        let first = cells.len();
        for (col, v) in schema.columns.iter().zip(values) {
            let start = buf.len() as u32;
            let cell = match v {
                Value::NULL => Cell::Null,
                Value::Bytes(b) if col.col_type == ColumnType::MYSQL_TYPE_JSON => {
                    Cell::Json(b.into())
                }
                v => {
                    encode(col, v, &mut buf).map_err(|e| format!("column {}: {e}", col.name))?;
                    Cell::Data {
                        start,
                        end: buf.len() as u32,
                    }
                }
            };
            cells.push(cell);
        }
        ranges.push(first..cells.len());
        bufs.push(Arc::from(&buf[..]));
    }
    let cells = Arc::new(cells);
    Ok(ranges
        .into_iter()
        .zip(bufs)
        .map(|(range, buf)| RowImage {
            buf,
            cells: Cells::shared(&cells, range),
        })
        .collect())
}

fn int_of(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(*i as i128),
        Value::UInt(u) => Ok(*u as i128),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok())
            .ok_or_else(|| format!("{:?} is not an integer", String::from_utf8_lossy(b))),
        other => Err(format!("{other:?} is not an integer")),
    }
}

fn le(out: &mut Vec<u8>, v: u64, bytes: usize) {
    out.extend_from_slice(&v.to_le_bytes()[..bytes]);
}

fn be(out: &mut Vec<u8>, v: u64, bytes: usize) {
    out.extend_from_slice(&v.to_be_bytes()[8 - bytes..]);
}

/// Appends the binlog bytes of a non-NULL value of `col`.
pub fn encode(col: &ColumnSchema, v: Value, out: &mut Vec<u8>) -> Result<(), String> {
    let meta = |i: usize| col.meta.get(i).copied().unwrap_or(0) as usize;
    match real_type(col) {
        ColumnType::MYSQL_TYPE_TINY => le(out, int_of(&v)? as u64, 1),
        ColumnType::MYSQL_TYPE_SHORT => le(out, int_of(&v)? as u64, 2),
        ColumnType::MYSQL_TYPE_INT24 => le(out, int_of(&v)? as u64, 3),
        ColumnType::MYSQL_TYPE_LONG => le(out, int_of(&v)? as u64, 4),
        ColumnType::MYSQL_TYPE_LONGLONG => le(out, int_of(&v)? as u64, 8),
        ColumnType::MYSQL_TYPE_YEAR => {
            let y = int_of(&v)?;
            le(out, if y == 0 { 0 } else { (y - 1900) as u64 }, 1)
        }
        ColumnType::MYSQL_TYPE_FLOAT => {
            let f = match v {
                Value::Float(f) => f,
                Value::Double(d) => d as f32,
                other => return Err(format!("{other:?} is not a FLOAT")),
            };
            out.extend_from_slice(&f.to_le_bytes());
        }
        ColumnType::MYSQL_TYPE_DOUBLE => {
            let d = match v {
                Value::Double(d) => d,
                Value::Float(f) => f as f64,
                other => return Err(format!("{other:?} is not a DOUBLE")),
            };
            out.extend_from_slice(&d.to_le_bytes());
        }
        ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let Value::Bytes(text) = v else {
                return Err(format!("{v:?} is not a DECIMAL"));
            };
            let text = String::from_utf8_lossy(&text);
            decimal(&text, meta(0), meta(1), out)?;
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
            let (y, m, d, ..) = date_parts(&v)?;
            le(out, d | m << 5 | y << 9, 3);
        }
        ColumnType::MYSQL_TYPE_DATETIME2 => {
            let (y, m, d, h, mi, s, us) = date_parts(&v)?;
            let ymd = (y * 13 + m) << 5 | d;
            let hms = h << 12 | mi << 6 | s;
            be(out, (ymd << 17 | hms) + 0x80_0000_0000, 5);
            fraction(us, col.fsp(), out);
        }
        ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
            let (y, m, d, h, mi, s, us) = date_parts(&v)?;
            let secs = if y == 0 && m == 0 && d == 0 {
                0
            } else {
                crate::clock::days_from_civil(y as i64, m as i64, d as i64) * 86_400
                    + (h * 3600 + mi * 60 + s) as i64
            };
            be(out, secs.max(0) as u64, 4);
            fraction(us, col.fsp(), out);
        }
        ColumnType::MYSQL_TYPE_TIME2 => {
            let Value::Time(neg, days, h, m, s, us) = v else {
                return Err(format!("{v:?} is not a TIME"));
            };
            let hours = days as i64 * 24 + h as i64;
            let hms = hours << 12 | (m as i64) << 6 | s as i64;
            let mut packed = (hms << 24) + us as i64;
            if neg {
                packed = -packed;
            }
            time2(packed, col.fsp(), out);
        }
        ColumnType::MYSQL_TYPE_BIT => {
            let Value::Bytes(b) = v else {
                return Err(format!("{v:?} is not a BIT"));
            };
            let n = meta(1) + usize::from(meta(0) > 0);
            // Right-aligned in the column's bytes, as the binlog has it.
            out.extend(std::iter::repeat_n(0, n.saturating_sub(b.len())));
            out.extend_from_slice(&b[b.len().saturating_sub(n)..]);
        }
        ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET => {
            le(out, int_of(&v)? as u64, meta(1).clamp(1, 8));
        }
        // BINARY(n): the binlog drops the trailing 0x00 padding a SELECT
        // returns.
        ColumnType::MYSQL_TYPE_STRING if col.charset == 63 => match v {
            Value::Bytes(b) => {
                let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
                out.extend_from_slice(&b[..end]);
            }
            other => return Err(format!("{other:?} is not bytes")),
        },
        _ => match v {
            Value::Bytes(b) => out.extend_from_slice(&b),
            other => return Err(format!("{other:?} is not text or bytes")),
        },
    }
    Ok(())
}

/// Year, month, day, hour, minute, second, microseconds.
type DateParts = (u64, u64, u64, u64, u64, u64, u32);

fn date_parts(v: &Value) -> Result<DateParts, String> {
    match *v {
        Value::Date(y, m, d, h, mi, s, us) => Ok((
            y as u64, m as u64, d as u64, h as u64, mi as u64, s as u64, us,
        )),
        ref other => Err(format!("{other:?} is not a date")),
    }
}

/// The fractional part of a DATETIME2 / TIMESTAMP2: fsp 1-2 in one byte
/// (hundredths), 3-4 in two (ten-thousandths), 5-6 in three (micros).
fn fraction(us: u32, fsp: usize, out: &mut Vec<u8>) {
    match fsp {
        1 | 2 => be(out, (us / 10_000) as u64, 1),
        3 | 4 => be(out, (us / 100) as u64, 2),
        5 | 6 => be(out, us as u64, 3),
        _ => {}
    }
}

/// TIME2 from its packed value (`hms << 24 + micros`, negated for negative
/// times), as MySQL's my_time_packed_to_binary lays it out: the integer part
/// is the floor of the shift, the fraction the truncated remainder.
fn time2(packed: i64, fsp: usize, out: &mut Vec<u8>) {
    const INT_OFS: i64 = 0x80_0000;
    let int = packed >> 24;
    let frac = packed % (1 << 24);
    match fsp {
        1 | 2 => {
            be(out, (int + INT_OFS) as u64, 3);
            out.push((frac / 10_000) as i8 as u8);
        }
        3 | 4 => {
            be(out, (int + INT_OFS) as u64, 3);
            be(out, (frac / 100) as i16 as u16 as u64, 2);
        }
        5 | 6 => be(out, (packed + 0x8000_0000_0000) as u64, 6),
        _ => be(out, (int + INT_OFS) as u64, 3),
    }
}

/// MySQL's packed DECIMAL(precision, scale) of `text` (the server's exact
/// digits): nine digits per four bytes, a shorter leading and trailing
/// group, the top bit of the first byte set for non-negative values and
/// every byte complemented for negative ones.
pub fn decimal(
    text: &str,
    precision: usize,
    scale: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let bad = || format!("{text:?} does not fit DECIMAL({precision},{scale})");
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) || scale > precision {
        return Err(bad());
    }
    let intg = precision - scale;
    let int = int.trim_start_matches('0');
    if int.len() > intg || frac.len() > scale {
        return Err(bad());
    }
    let digits: Vec<u8> = std::iter::repeat_n(b'0', intg - int.len())
        .chain(int.bytes())
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', scale - frac.len()))
        .map(|c| c - b'0')
        .collect();
    let start = out.len();
    let mut group = |ds: &[u8]| {
        let v = ds.iter().fold(0u64, |acc, d| acc * 10 + *d as u64);
        be(out, v, DIG2BYTES[ds.len()]);
    };
    let (ints, fracs) = digits.split_at(intg);
    let lead = intg % 9;
    group(&ints[..lead]);
    for g in ints[lead..].chunks(9) {
        group(g);
    }
    for g in fracs.chunks(9) {
        group(g);
    }
    out[start] ^= 0x80;
    if negative {
        for b in &mut out[start..] {
            *b ^= 0xff;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::value::{write_cell, Style};

    fn col(t: ColumnType, meta: &[u8]) -> ColumnSchema {
        ColumnSchema {
            name: "c".into(),
            col_type: t,
            meta: meta.to_vec(),
            unsigned: false,
            charset: 0,
            labels: Vec::new(),
            json: false,
            visibility: Default::default(),
        }
    }

    /// What the binlog renderer makes of the bytes encoded from `v`.
    fn rendered(c: &ColumnSchema, v: Value) -> String {
        let mut b = Vec::new();
        encode(c, v, &mut b).unwrap();
        let mut out = Vec::new();
        write_cell(&mut out, c, &b, &Style::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decimals_encode_to_what_the_renderer_reads_back() {
        for (p, s, text) in [
            (5, 2, "123.45"),
            (5, 2, "-123.45"),
            (5, 2, "0.01"),
            (5, 2, "-0.50"),
            (10, 0, "9999999999"),
            (
                65,
                30,
                "12345678901234567890123456789012345.123456789012345678901234567890",
            ),
            (65, 30, "-0.000000000000000000000000000001"),
            (18, 9, "0.000000000"),
        ] {
            let c = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[p, s]);
            let mut b = Vec::new();
            decimal(text, p as usize, s as usize, &mut b).unwrap();
            assert_eq!(
                b.len(),
                crate::source::rows::decimal_size(p as usize, s as usize)
            );
            assert_eq!(
                rendered(&c, Value::Bytes(text.into())),
                text,
                "DECIMAL({p},{s})"
            );
        }
        let mut b = Vec::new();
        assert!(decimal("1234.5", 5, 2, &mut b).is_err(), "too many digits");
    }

    #[test]
    fn temporal_values_round_trip_through_the_binlog_layout() {
        let dt6 = col(ColumnType::MYSQL_TYPE_DATETIME2, &[6]);
        assert_eq!(
            rendered(&dt6, Value::Date(2024, 2, 29, 23, 59, 58, 123_456)),
            "\"2024-02-29 23:59:58.123456\""
        );
        let dt3 = col(ColumnType::MYSQL_TYPE_DATETIME2, &[3]);
        assert_eq!(
            rendered(&dt3, Value::Date(1000, 1, 1, 0, 0, 0, 500_000)),
            "\"1000-01-01 00:00:00.500\""
        );
        let ts = col(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[1]);
        assert_eq!(
            rendered(&ts, Value::Date(2038, 1, 19, 3, 14, 7, 900_000)),
            "\"2038-01-19 03:14:07.9\""
        );
        assert_eq!(rendered(&ts, Value::Date(0, 0, 0, 0, 0, 0, 0)), "null");
        let d = col(ColumnType::MYSQL_TYPE_DATE, &[]);
        assert_eq!(
            rendered(&d, Value::Date(1999, 12, 31, 0, 0, 0, 0)),
            "\"1999-12-31\""
        );
        for fsp in 0..=6u8 {
            let t = col(ColumnType::MYSQL_TYPE_TIME2, &[fsp]);
            let us = [0, 100_000, 120_000, 123_000, 123_400, 123_450, 123_456][fsp as usize];
            for neg in [false, true] {
                let got = rendered(&t, Value::Time(neg, 34, 1, 2, 3, us));
                let frac = if fsp == 0 {
                    String::new()
                } else {
                    format!(".{:06}", us)[..fsp as usize + 1].to_string()
                };
                let want = format!("\"{}817:02:03{frac}\"", if neg { "-" } else { "" });
                assert_eq!(got, want, "TIME({fsp}) negative={neg}");
            }
        }
    }

    #[test]
    fn integers_bits_and_labels_take_the_binlog_widths() {
        let mut c = col(ColumnType::MYSQL_TYPE_INT24, &[]);
        assert_eq!(rendered(&c, Value::Int(-8_388_608)), "-8388608");
        c.unsigned = true;
        assert_eq!(rendered(&c, Value::Int(16_777_215)), "16777215");
        let big = ColumnSchema {
            unsigned: true,
            ..col(ColumnType::MYSQL_TYPE_LONGLONG, &[])
        };
        assert_eq!(rendered(&big, Value::UInt(u64::MAX)), u64::MAX.to_string());
        let y = col(ColumnType::MYSQL_TYPE_YEAR, &[]);
        assert_eq!(rendered(&y, Value::Int(2155)), "2155");
        let bit = col(ColumnType::MYSQL_TYPE_BIT, &[1, 1]);
        assert_eq!(rendered(&bit, Value::Bytes(vec![1, 2])), "258");
        let f = col(ColumnType::MYSQL_TYPE_FLOAT, &[4]);
        assert_eq!(rendered(&f, Value::Float(16_777_217.0)), "16777216");
        let e = ColumnSchema {
            labels: vec!["a".into(), "b".into()],
            ..col(ColumnType::MYSQL_TYPE_STRING, &[247, 1])
        };
        assert_eq!(rendered(&e, Value::Int(2)), "\"b\"");
    }
}
