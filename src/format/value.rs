//! The one place that turns a MySQL column value, as the binlog stores it,
//! into JSON.
//!
//! Rules (README "Values"): integers keep their full 64-bit range and
//! signedness; DECIMAL keeps exactly the digits MySQL prints (written as a
//! number token, never through a float); DATETIME/TIMESTAMP carry exactly the
//! column's fractional digits, TIMESTAMP in UTC; zero dates are null; text is
//! decoded from its character set; binary values are base64; ENUM and SET
//! give their labels.
//!
//! The input is the cell's bytes from [`crate::source::rows`], already cut to
//! the right length for the column, so reads here cannot run past the value.
//! Malformed bytes render as null with a warning, never a panic.

use mysql::consts::ColumnType;

use super::json::{put, two_digits, write_base64, write_i64, write_str, write_u64};
use crate::charset;
use crate::event::column::real_type;
use crate::event::ColumnSchema;

const BINARY_CHARSET: u16 = 63;

fn le(b: &[u8]) -> u64 {
    // The common widths as one load each.
    match b.len() {
        1 => b[0] as u64,
        2 => u16::from_le_bytes([b[0], b[1]]) as u64,
        4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
        8 => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        _ => b.iter().rev().fold(0u64, |acc, x| acc << 8 | *x as u64),
    }
}

fn be(b: &[u8]) -> u64 {
    // The widths of temporal values (DATETIME2 is 5 bytes) as whole loads.
    match b.len() {
        2 => u16::from_be_bytes([b[0], b[1]]) as u64,
        3 => (b[0] as u64) << 16 | u16::from_be_bytes([b[1], b[2]]) as u64,
        4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
        5 => (b[0] as u64) << 32 | u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as u64,
        _ => b.iter().fold(0u64, |acc, x| acc << 8 | *x as u64),
    }
}

/// Sign-extends the low `bytes` bytes of `v`.
fn signed(v: u64, bytes: usize) -> i64 {
    let shift = 64 - 8 * bytes as u32;
    ((v << shift) as i64) >> shift
}

/// How values are written where the README leaves the operator a choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// `output.zero_dates=text`: zero and partly-zero dates as the server
    /// prints them (`"0000-00-00"`) instead of null.
    pub zero_dates_as_text: bool,
}

/// Appends the JSON for `b`, the bytes of a non-NULL value of `col`.
pub fn write_cell(out: &mut Vec<u8>, col: &ColumnSchema, b: &[u8], style: &Style) {
    let zt = style.zero_dates_as_text;
    match real_type(col) {
        ColumnType::MYSQL_TYPE_TINY
        | ColumnType::MYSQL_TYPE_SHORT
        | ColumnType::MYSQL_TYPE_INT24
        | ColumnType::MYSQL_TYPE_LONG
        | ColumnType::MYSQL_TYPE_LONGLONG => {
            let v = le(b);
            if col.unsigned {
                write_u64(out, v);
            } else {
                write_i64(out, signed(v, b.len()));
            }
        }
        ColumnType::MYSQL_TYPE_FLOAT => match <[u8; 4]>::try_from(b) {
            Ok(a) => write_float(out, f32::from_le_bytes(a) as f64, true),
            Err(_) => bad(out, col, "FLOAT"),
        },
        ColumnType::MYSQL_TYPE_DOUBLE => match <[u8; 8]>::try_from(b) {
            Ok(a) => write_float(out, f64::from_le_bytes(a), false),
            Err(_) => bad(out, col, "DOUBLE"),
        },
        ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let (p, s) = (
                col.meta.first().copied().unwrap_or(0),
                col.meta.get(1).copied().unwrap_or(0),
            );
            if !write_decimal(out, b, p as usize, s as usize) {
                bad(out, col, "DECIMAL");
            }
        }
        ColumnType::MYSQL_TYPE_YEAR => {
            let y = le(b);
            write_u64(out, if y == 0 { 0 } else { 1900 + y });
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
            let v = le(b);
            let (d, m, y) = (v & 31, (v >> 5) & 15, v >> 9);
            write_date(out, y, m, d, None, zt);
        }
        ColumnType::MYSQL_TYPE_DATETIME => {
            // Pre-5.6 DATETIME: the decimal number YYYYMMDDhhmmss.
            let v = le(b);
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            write_date(
                out,
                date / 10_000,
                date / 100 % 100,
                date % 100,
                Some((time / 10_000, time / 100 % 100, time % 100, 0, 0)),
                zt,
            );
        }
        ColumnType::MYSQL_TYPE_DATETIME2 => {
            if b.len() < 5 {
                return bad(out, col, "DATETIME");
            }
            let packed = be(&b[..5]) as i64 - 0x80_0000_0000;
            let ymd = packed >> 17;
            let ym = ymd >> 5;
            let hms = packed & 0x1_ffff;
            let micros = frac_micros(&b[5..], col.fsp());
            write_date(
                out,
                (ym / 13) as u64,
                (ym % 13) as u64,
                (ymd & 31) as u64,
                Some((
                    (hms >> 12) as u64,
                    ((hms >> 6) & 63) as u64,
                    (hms & 63) as u64,
                    micros,
                    col.fsp(),
                )),
                zt,
            );
        }
        ColumnType::MYSQL_TYPE_TIMESTAMP => write_timestamp(out, le(b) as i64, 0, 0, zt),
        ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
            if b.len() < 4 {
                return bad(out, col, "TIMESTAMP");
            }
            write_timestamp(
                out,
                be(&b[..4]) as i64,
                frac_micros(&b[4..], col.fsp()),
                col.fsp(),
                zt,
            );
        }
        ColumnType::MYSQL_TYPE_TIME => {
            // Pre-5.6 TIME: the signed decimal number HHMMSS.
            let v = signed(le(b), 3);
            let a = v.unsigned_abs();
            write_time(out, v < 0, a / 10_000, a / 100 % 100, a % 100, 0, 0);
        }
        ColumnType::MYSQL_TYPE_TIME2 => write_time2(out, col, b),
        ColumnType::MYSQL_TYPE_BIT => write_u64(out, be(b)),
        ColumnType::MYSQL_TYPE_ENUM => write_enum(out, col, le(b)),
        ColumnType::MYSQL_TYPE_SET => write_set(out, col, le(b)),
        ColumnType::MYSQL_TYPE_JSON => write_json(out, col, b),
        ColumnType::MYSQL_TYPE_GEOMETRY => match super::wkt::geometry_to_wkt(b) {
            Some(wkt) => write_str(out, &wkt),
            None => bad(out, col, "GEOMETRY"),
        },
        ColumnType::MYSQL_TYPE_VECTOR => write_base64(out, b),
        ColumnType::MYSQL_TYPE_STRING if col.charset == BINARY_CHARSET => {
            // BINARY(n): the binlog drops the trailing 0x00 padding; put it
            // back, so the value is the n bytes a SELECT returns.
            let n = crate::event::column::string_max_len(&col.meta);
            if b.len() < n {
                let mut padded = b.to_vec();
                padded.resize(n, 0);
                write_base64(out, &padded);
            } else {
                write_base64(out, b);
            }
        }
        // MariaDB JSON: the document itself, as MySQL's JSON type gives it;
        // text that is not valid JSON (the CHECK can be dropped) stays a string.
        _ if col.json && is_json(b) => out.extend_from_slice(b.trim_ascii()),
        _ => write_text(out, col, b),
    }
}

fn is_json(b: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
}

fn bad(out: &mut Vec<u8>, col: &ColumnSchema, what: &str) {
    log::warn!(
        "column {}: malformed {what} value; written as null",
        col.name
    );
    out.extend_from_slice(b"null");
}

/// Microseconds from the 0-3 fractional bytes of a temporal value.
fn frac_micros(b: &[u8], fsp: usize) -> u32 {
    let v = be(&b[..b.len().min(3)]) as u32;
    match fsp {
        1 | 2 => v * 10_000,
        3 | 4 => v * 100,
        5 | 6 => v,
        _ => 0,
    }
}

/// TIME2: a 3-byte offset-binary HH:MM:SS plus a fraction stored with the
/// same sign as the value (MySQL's my_time_packed_from_binary, with signed
/// arithmetic throughout).
fn write_time2(out: &mut Vec<u8>, col: &ColumnSchema, b: &[u8]) {
    const INT_OFS: i64 = 0x80_0000;
    let fsp = col.fsp();
    if b.len() < 3 + fsp.div_ceil(2) {
        return bad(out, col, "TIME");
    }
    let packed: i64 = match fsp {
        1 | 2 => {
            let mut int = be(&b[..3]) as i64 - INT_OFS;
            let mut frac = b[3] as i64;
            if int < 0 && frac > 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = be(&b[..3]) as i64 - INT_OFS;
            let mut frac = be(&b[3..5]) as i64;
            if int < 0 && frac > 0 {
                int += 1;
                frac -= 0x1_0000;
            }
            (int << 24) + frac * 100
        }
        5 | 6 => be(&b[..6]) as i64 - 0x8000_0000_0000,
        _ => (be(&b[..3]) as i64 - INT_OFS) << 24,
    };
    let neg = packed < 0;
    let a = packed.unsigned_abs();
    let hms = a >> 24;
    let micros = (a % (1 << 24)) as u32;
    write_time(
        out,
        neg,
        (hms >> 12) % 1024,
        (hms >> 6) % 64,
        hms % 64,
        micros,
        fsp,
    );
}

/// Writes the first `fsp` (at most 6) digits of `micros` after a point at
/// `at` in `buf`; returns the bytes written (none when `fsp` is 0).
fn fraction(buf: &mut [u8], at: usize, micros: u32, fsp: usize) -> usize {
    if fsp == 0 {
        return 0;
    }
    let fsp = fsp.min(6);
    buf[at] = b'.';
    two_digits(buf, at + 1, (micros / 10_000) as u64);
    two_digits(buf, at + 3, (micros / 100) as u64);
    two_digits(buf, at + 5, micros as u64);
    1 + fsp
}

fn write_time(out: &mut Vec<u8>, neg: bool, h: u64, m: u64, s: u64, micros: u32, fsp: usize) {
    out.push(b'"');
    if neg {
        out.push(b'-');
    }
    if h >= 100 {
        write_u64(out, h);
    } else {
        let mut b = [0u8; 2];
        two_digits(&mut b, 0, h);
        put(out, &b);
    }
    // ":MM:SS.ffffff\"" is 15 bytes at most.
    let mut b = [0u8; 16];
    b[0] = b':';
    two_digits(&mut b, 1, m);
    b[3] = b':';
    two_digits(&mut b, 4, s);
    let mut n = 6 + fraction(&mut b, 6, micros, fsp);
    b[n] = b'"';
    n += 1;
    put(out, &b[..n]);
}

/// `"YYYY-MM-DD"` or `"YYYY-MM-DD HH:MM:SS[.f]"`; a zero or partly-zero date
/// is null. Laid out in a buffer on the stack and copied once.
fn write_date(
    out: &mut Vec<u8>,
    y: u64,
    m: u64,
    d: u64,
    time: Option<(u64, u64, u64, u32, usize)>,
    zero_as_text: bool,
) {
    let zero = y == 0 || m == 0 || d == 0;
    if (zero && !zero_as_text) || m > 12 || d > 31 || y > 9999 {
        out.extend_from_slice(b"null");
        return;
    }
    // "\"YYYY-MM-DD HH:MM:SS.ffffff\"" is 28 bytes at most.
    let mut b = [0u8; 28];
    b[0] = b'"';
    two_digits(&mut b, 1, y / 100);
    two_digits(&mut b, 3, y);
    b[5] = b'-';
    two_digits(&mut b, 6, m);
    b[8] = b'-';
    two_digits(&mut b, 9, d);
    let mut n = 11;
    if let Some((h, mi, s, micros, fsp)) = time {
        b[11] = b' ';
        two_digits(&mut b, 12, h);
        b[14] = b':';
        two_digits(&mut b, 15, mi);
        b[17] = b':';
        two_digits(&mut b, 18, s);
        n = 20 + fraction(&mut b, 20, micros, fsp);
    }
    b[n] = b'"';
    n += 1;
    put(out, &b[..n]);
}

/// Seconds since the epoch → `"YYYY-MM-DD HH:MM:SS[.f]"` in UTC; 0 (the zero
/// TIMESTAMP) → null.
fn write_timestamp(out: &mut Vec<u8>, secs: i64, micros: u32, fsp: usize, zero_as_text: bool) {
    if secs == 0 && micros == 0 {
        if zero_as_text {
            write_date(out, 0, 0, 0, Some((0, 0, 0, 0, fsp)), true);
        } else {
            out.extend_from_slice(b"null");
        }
        return;
    }
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400) as u64;
    write_date(
        out,
        y as u64,
        m as u64,
        d as u64,
        Some((rem / 3600, rem % 3600 / 60, rem % 60, micros, fsp)),
        false,
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// MySQL's packed DECIMAL → its exact text: groups of 9 digits in 4 bytes,
/// leading/trailing partial groups in fewer, the sign in the top bit of the
/// first byte (inverted, with every byte complemented for negatives).
/// Returns false when the bytes do not fit the declared precision.
pub fn write_decimal(out: &mut Vec<u8>, b: &[u8], precision: usize, scale: usize) -> bool {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    if b.is_empty()
        || scale > precision
        || b.len() != crate::event::column::decimal_size(precision, scale)
    {
        return false;
    }
    let intg = precision - scale;
    let negative = b[0] & 0x80 == 0;
    let mask: u8 = if negative { 0xff } else { 0 };
    let byte = |i: usize| -> u8 {
        let v = b[i] ^ mask;
        if i == 0 {
            v ^ 0x80
        } else {
            v
        }
    };
    // Every digit, zero-padded group by group, on the stack (a table map
    // cannot declare more than 65; a corrupt one gets a vector).
    let mut stack = [0u8; 80];
    let mut heap = Vec::new();
    let digits: &mut [u8] = if precision <= stack.len() {
        &mut stack[..precision]
    } else {
        heap.resize(precision, 0);
        &mut heap
    };
    let mut at = 0usize;
    let mut n = 0usize;
    // A group of `bytes` bytes holding `width` digits; false when it holds
    // more (a corrupt value).
    const POW10: [u64; 10] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
    ];
    let mut group = |bytes: usize, width: usize| -> bool {
        let mut v = 0u64;
        for i in at..at + bytes {
            v = v << 8 | byte(i) as u64;
        }
        at += bytes;
        if v >= POW10[width] {
            return false;
        }
        for d in digits[n..n + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        n += width;
        true
    };
    let lead = intg % 9;
    let tail = scale % 9;
    let whole = (lead == 0 || group(DIG2BYTES[lead], lead))
        && (0..intg / 9).all(|_| group(4, 9))
        && (0..scale / 9).all(|_| group(4, 9))
        && (tail == 0 || group(DIG2BYTES[tail], tail));
    if !whole {
        return false;
    }
    let (int, frac) = digits.split_at(intg);
    out.reserve(precision + 3);
    if negative && digits.iter().any(|&c| c != b'0') {
        out.push(b'-');
    }
    // The integer part without its leading zeros, "0" when nothing is left.
    match int.iter().position(|&c| c != b'0') {
        Some(first) => super::json::put(out, &int[first..]),
        None => out.push(b'0'),
    }
    if scale > 0 {
        out.push(b'.');
        super::json::put(out, frac);
    }
    true
}

/// Text in its character set ([`crate::charset`]); binary data (charset
/// 63) as base64. Bytes that cannot be decoded (a character set without a
/// decoder, or no charset known and not UTF-8) go out as base64 too, never
/// as replacement characters.
fn write_text(out: &mut Vec<u8>, col: &ColumnSchema, b: &[u8]) {
    if col.charset == BINARY_CHARSET {
        return write_base64(out, b);
    }
    match charset::decode(charset::for_collation(col.charset), b) {
        Some(s) => write_str(out, &s),
        None => {
            if col.charset != 0 {
                charset::warn_base64(&col.name, col.charset);
            }
            write_base64(out, b)
        }
    }
}

fn write_enum(out: &mut Vec<u8>, col: &ColumnSchema, index: u64) {
    if col.labels.is_empty() {
        write_u64(out, index);
    } else if index >= 1 && (index as usize) <= col.labels.len() {
        write_str(out, &col.labels[index as usize - 1]);
    } else {
        // 0 is MySQL's "invalid value" entry: the empty string.
        write_str(out, "");
    }
}

fn write_set(out: &mut Vec<u8>, col: &ColumnSchema, bits: u64) {
    if col.labels.is_empty() {
        write_u64(out, bits);
        return;
    }
    out.push(b'[');
    let mut first = true;
    for (i, label) in col.labels.iter().enumerate().take(64) {
        if bits & (1 << i) != 0 {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, label);
        }
    }
    out.push(b']');
}

/// MySQL's binary JSON, embedded as a JSON value.
fn write_json(out: &mut Vec<u8>, col: &ColumnSchema, b: &[u8]) {
    use mysql_common::binlog::jsonb;
    use mysql_common::io::ParseBuf;
    if b.is_empty() {
        // MySQL logs an empty JSON column value for JSON null.
        out.extend_from_slice(b"null");
        return;
    }
    let parsed: std::io::Result<jsonb::Value<'_>> = ParseBuf(b).parse(());
    match parsed
        .ok()
        .and_then(|v| serde_json::Value::try_from(v).ok())
    {
        Some(doc) => out.extend_from_slice(doc.to_string().as_bytes()),
        None => bad(out, col, "JSON"),
    }
}

/// The shortest text that reads back to the same float (FLOAT as f32).
/// The shortest text that reads back as the same f32 (FLOAT) or f64
/// (DOUBLE). Rust's plain form writes 1e308 as 309 digits, which JSON
/// readers take for an integer and reject or widen; like JavaScript, very
/// large and very small magnitudes use an exponent instead.
fn write_float(out: &mut Vec<u8>, v: f64, single: bool) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let a = v.abs();
    let exponent = a != 0.0 && !(1e-6..1e16).contains(&a);
    if single {
        super::float::write(out, v as f32, exponent);
    } else {
        super::float::write(out, v, exponent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: ColumnType, meta: &[u8], unsigned: bool) -> ColumnSchema {
        ColumnSchema {
            json: false,
            visibility: Default::default(),
            name: "c".into(),
            col_type: t,
            meta: meta.to_vec(),
            unsigned,
            charset: 45,
            labels: Vec::new(),
        }
    }

    #[test]
    fn floats_are_shortest_and_use_an_exponent_when_huge_or_tiny() {
        let f = |v: f64, single: bool| {
            let mut o = Vec::new();
            write_float(&mut o, v, single);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(1.5, false), "1.5");
        assert_eq!(f(-0.1, false), "-0.1");
        assert_eq!(f(f64::MAX, false), "1.7976931348623157e308");
        assert_eq!(f(-3.40282e38, true), "-3.40282e38");
        assert_eq!(f(1.5e-300, false), "1.5e-300");
        assert_eq!(f(0.1f32 as f64, true), "0.1");
        assert_eq!(f(123456789.0, false), "123456789");
        assert_eq!(f(f64::NAN, false), "null");
        for s in ["1.7976931348623157e308", "-3.40282e38", "1.5e-300"] {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert!(v.is_f64(), "{s} reads as a float");
        }
    }

    fn render(c: &ColumnSchema, b: &[u8]) -> String {
        let mut out = Vec::new();
        write_cell(&mut out, c, b, &Style::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integers_keep_sign_and_full_range() {
        let bigint = col(ColumnType::MYSQL_TYPE_LONGLONG, &[], false);
        assert_eq!(
            render(&bigint, &i64::MIN.to_le_bytes()),
            "-9223372036854775808"
        );
        let ubigint = col(ColumnType::MYSQL_TYPE_LONGLONG, &[], true);
        assert_eq!(
            render(&ubigint, &u64::MAX.to_le_bytes()),
            "18446744073709551615"
        );
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_TINY, &[], true), &[255]),
            "255"
        );
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_TINY, &[], false), &[255]),
            "-1"
        );
        assert_eq!(
            render(
                &col(ColumnType::MYSQL_TYPE_INT24, &[], false),
                &[0, 0, 0x80]
            ),
            "-8388608"
        );
        assert_eq!(
            render(
                &col(ColumnType::MYSQL_TYPE_INT24, &[], true),
                &[0xff, 0xff, 0xff]
            ),
            "16777215"
        );
    }

    /// `write_decimal` as it was written before it laid the digits out on
    /// the stack: every group written zero-padded, then the leading zeros
    /// drained and the point and sign inserted.
    fn write_decimal_by_insertion(
        out: &mut Vec<u8>,
        b: &[u8],
        precision: usize,
        scale: usize,
    ) -> bool {
        const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
        if b.is_empty()
            || scale > precision
            || b.len() != crate::event::column::decimal_size(precision, scale)
        {
            return false;
        }
        let intg = precision - scale;
        let negative = b[0] & 0x80 == 0;
        let mask: u8 = if negative { 0xff } else { 0 };
        let byte = |i: usize| -> u8 {
            let v = b[i] ^ mask;
            if i == 0 {
                v ^ 0x80
            } else {
                v
            }
        };
        let mut at = 0usize;
        let mut group = |n: usize| -> u64 {
            let v = (at..at + n).fold(0u64, |acc, i| acc << 8 | byte(i) as u64);
            at += n;
            v
        };
        // Digits go straight into `out` (no buffer per value: the static
        // build's allocator made those costly); a corrupt value is taken back.
        let start = out.len();
        let lead = intg % 9;
        if lead > 0 {
            write_u64_padded(out, group(DIG2BYTES[lead]), lead);
        }
        for _ in 0..intg / 9 {
            write_u64_padded(out, group(4), 9);
        }
        let int_end = out.len();
        for _ in 0..scale / 9 {
            write_u64_padded(out, group(4), 9);
        }
        let tail = scale % 9;
        if tail > 0 {
            write_u64_padded(out, group(DIG2BYTES[tail]), tail);
        }
        // A corrupt group can hold more digits than declared.
        if int_end - start != intg || out.len() - int_end != scale {
            out.truncate(start);
            return false;
        }
        let is_zero = out[start..].iter().all(|&c| c == b'0');
        // Leading zeros of the integer part go, all but the last before the
        // point.
        let zeros = out[start..int_end]
            .iter()
            .take_while(|&&c| c == b'0')
            .count();
        let drop = if zeros == intg {
            intg.saturating_sub(1)
        } else {
            zeros
        };
        out.drain(start..start + drop);
        if intg == 0 {
            out.insert(start, b'0');
        }
        if scale > 0 {
            let point = start + (intg - drop).max(1);
            out.insert(point, b'.');
        }
        if negative && !is_zero {
            out.insert(start, b'-');
        }
        true
    }

    /// Appends `n` with at least `width` digits, zero-padded.
    pub fn write_u64_padded(out: &mut Vec<u8>, n: u64, width: usize) {
        let mut buf = [b'0'; 20];
        let mut i = buf.len();
        let mut v = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let start = i.min(buf.len().saturating_sub(width));
        crate::format::json::put(out, &buf[start..]);
    }

    #[test]
    fn decimals_read_as_the_earlier_reading_did() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases = 0;
        for precision in 1..=65 {
            for scale in [0, 1, 2, 4, 8, 9, 10, 17, 18, 30, 65] {
                if scale > precision {
                    continue;
                }
                let size = crate::event::column::decimal_size(precision, scale);
                for k in 0..20 {
                    let b: Vec<u8> = (0..size)
                        .map(|i| match k {
                            0 => 0x80 * (i == 0) as u8,
                            1 => 0x7f * (i == 0) as u8 + 0xff * (i > 0) as u8,
                            _ => next() as u8,
                        })
                        .collect();
                    let (mut a, mut r) = (b"x".to_vec(), b"x".to_vec());
                    let ok_a = write_decimal(&mut a, &b, precision, scale);
                    let ok_r = write_decimal_by_insertion(&mut r, &b, precision, scale);
                    assert_eq!(
                        (ok_a, ok_a.then_some(&a)),
                        (ok_r, ok_r.then_some(&r)),
                        "({precision},{scale}) {b:?}"
                    );
                    cases += 1;
                }
            }
        }
        assert!(cases > 5_000);
    }

    #[test]
    fn decimal_keeps_its_exact_digits() {
        // DECIMAL(10,2): 8 integer digits (4 bytes) + 2 fraction digits (1 byte).
        let dec = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[10, 2], false);
        assert_eq!(render(&dec, &[0x80, 0, 0, 12, 50]), "12.50");
        // Negative: every byte complemented.
        assert_eq!(render(&dec, &[!0x80, !0, !0, !0, !1]), "-0.01");
        assert_eq!(render(&dec, &[0x80, 0, 0, 0, 0]), "0.00");
        // DECIMAL(65,30), the widest: 35 integer digits, 30 fraction digits.
        // The leading 8-digit group is 4 bytes (0x01000000 = 16777216), then
        // three 9-digit groups, then the fraction.
        let wide = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[65, 30], false);
        let mut b = vec![0u8; 30];
        b[0] = 0x80 | 0x01;
        let want = format!("16777216{}.{}", "0".repeat(27), "0".repeat(30));
        assert_eq!(render(&wide, &b), want);
        // Wrong size is rejected, not misread.
        assert_eq!(render(&dec, &[0x80, 0]), "null");
    }

    #[test]
    fn temporal_values_carry_exactly_fsp_digits() {
        // DATETIME2(3) 2024-01-02 03:04:05.120
        let ymd: i64 = ((2024 * 13 + 1) << 5) | 2;
        let packed: i64 = ((ymd << 17) | (3 << 12) | (4 << 6) | 5) + 0x80_0000_0000;
        let mut b = packed.to_be_bytes()[3..].to_vec();
        b.extend_from_slice(&1200u16.to_be_bytes());
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_DATETIME2, &[3], false), &b),
            "\"2024-01-02 03:04:05.120\""
        );
        // DATE 2024-01-02 and the zero date.
        let d: u32 = (2024 << 9) | (1 << 5) | 2;
        assert_eq!(
            render(
                &col(ColumnType::MYSQL_TYPE_DATE, &[], false),
                &d.to_le_bytes()[..3]
            ),
            "\"2024-01-02\""
        );
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_DATE, &[], false), &[0, 0, 0]),
            "null"
        );
        // TIMESTAMP2(6) 1700000000.000123 UTC; TIMESTAMP2(2) with no fraction.
        let mut ts = 1_700_000_000u32.to_be_bytes().to_vec();
        ts.extend_from_slice(&123u32.to_be_bytes()[1..]);
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[6], false), &ts),
            "\"2023-11-14 22:13:20.000123\""
        );
        let mut ts2 = 1_700_000_000u32.to_be_bytes().to_vec();
        ts2.push(0);
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[2], false), &ts2),
            "\"2023-11-14 22:13:20.00\""
        );
    }

    #[test]
    fn negative_time_with_fraction_is_exact() {
        // MySQL's my_time_packed_to_binary for TIME(2) '-838:59:59.50':
        // packed = -((hms << 24) + 500000); it stores packed >> 24 (floor)
        // offset by 0x800000, then (char)((packed % 2^24) / 10000).
        let hms: i64 = (838 << 12) | (59 << 6) | 59;
        let packed = -((hms << 24) + 50 * 10_000);
        let int_part = (packed >> 24) + 0x80_0000;
        let frac = ((packed % (1 << 24)) / 10_000) as i8 as u8;
        let bytes = [
            (int_part >> 16) as u8,
            (int_part >> 8) as u8,
            int_part as u8,
            frac,
        ];
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_TIME2, &[2], false), &bytes),
            "\"-838:59:59.50\""
        );
        // TIME(0) 12:34:56
        let v: i64 = ((12 << 12) | (34 << 6) | 56) + 0x80_0000;
        let b = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_TIME2, &[0], false), &b),
            "\"12:34:56\""
        );
    }

    #[test]
    fn calendar_conversion_matches_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(24_855), (2038, 1, 19));
    }

    #[test]
    fn text_binary_enum_set_and_float() {
        let vc = col(ColumnType::MYSQL_TYPE_VARCHAR, &[0, 1], false);
        assert_eq!(render(&vc, "né 😀".as_bytes()), "\"né 😀\"");
        let mut latin1 = vc.clone();
        latin1.charset = 8;
        assert_eq!(render(&latin1, &[0x6e, 0xe9]), "\"né\"");
        let mut bin = vc.clone();
        bin.charset = 63;
        assert_eq!(render(&bin, &[0, 255]), "\"AP8=\"");
        let mut e = col(
            ColumnType::MYSQL_TYPE_STRING,
            &[ColumnType::MYSQL_TYPE_ENUM as u8, 1],
            false,
        );
        e.labels = vec!["small".into(), "large".into()];
        assert_eq!(render(&e, &[2]), "\"large\"");
        let mut s = col(
            ColumnType::MYSQL_TYPE_STRING,
            &[ColumnType::MYSQL_TYPE_SET as u8, 1],
            false,
        );
        s.labels = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(render(&s, &[0b101]), "[\"a\",\"c\"]");
        assert_eq!(
            render(
                &col(ColumnType::MYSQL_TYPE_FLOAT, &[4], false),
                &1.1f32.to_le_bytes()
            ),
            "1.1"
        );
        assert_eq!(
            render(
                &col(ColumnType::MYSQL_TYPE_DOUBLE, &[8], false),
                &2.5e-7f64.to_le_bytes()
            ),
            "2.5e-7"
        );
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_BIT, &[0, 2], false), &[1, 2]),
            "258"
        );
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_YEAR, &[], false), &[124]),
            "2024"
        );
        assert_eq!(
            render(&col(ColumnType::MYSQL_TYPE_YEAR, &[], false), &[0]),
            "0"
        );
    }
}
