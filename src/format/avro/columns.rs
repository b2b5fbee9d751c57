//! Each column's Avro type as Kafka Connect's Avro converter writes
//! Debezium's MySQL connector with its defaults
//! (`decimal.handling.mode=precise`, `time.precision.mode=adaptive_time_microseconds`,
//! `binary.handling.mode=bytes`), and its value in that type.
//!
//! Where this differs from Debezium's defaults, on purpose: BIGINT
//! UNSIGNED is a `decimal` of precision 20 (Debezium's default `long` wraps
//! values above 2^63 - 1 to negative numbers: a wrong row). Nullability is
//! not in every binlog, so every column outside the primary key is
//! optional.

use serde_json::{json, Value};

use super::binary;
use super::schema::{Props, Schema};
use crate::event::column::real_type;
use crate::event::{ColumnSchema, RowImage};
use crate::format::value::Style;
use mysql::consts::ColumnType;

/// A column's Avro shape, decided once per table definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Boolean,
    /// Connect's INT16 (an Avro `int`).
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Text,
    Binary,
    Json,
    Enum(Vec<String>),
    Set(Vec<String>),
    /// Days since the epoch.
    Date,
    /// Microseconds of the day (may be negative or past a day: TIME's range).
    MicroTime,
    /// Milliseconds since the epoch (DATETIME(0-3)).
    Timestamp,
    /// Microseconds since the epoch (DATETIME(4-6)).
    MicroTimestamp,
    /// ISO-8601 text in UTC (TIMESTAMP).
    ZonedTimestamp,
    Year,
    /// BIT(n > 1): its bytes, little-endian, as Debezium's `Bits`.
    Bits(u32),
    Geometry,
}

/// The Avro shape of `col`.
pub fn kind(col: &ColumnSchema) -> Kind {
    use ColumnType::*;
    let meta = |i: usize| col.meta.get(i).copied().unwrap_or(0) as u32;
    match real_type(col) {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT if !col.unsigned => Kind::Int16,
        MYSQL_TYPE_TINY => Kind::Int16,
        MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 => Kind::Int32,
        MYSQL_TYPE_LONG if col.unsigned => Kind::Int64,
        MYSQL_TYPE_LONG => Kind::Int32,
        MYSQL_TYPE_LONGLONG if col.unsigned => Kind::Decimal {
            precision: 20,
            scale: 0,
        },
        MYSQL_TYPE_LONGLONG => Kind::Int64,
        MYSQL_TYPE_FLOAT => Kind::Float,
        MYSQL_TYPE_DOUBLE => Kind::Double,
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => Kind::Decimal {
            precision: meta(0),
            scale: meta(1),
        },
        MYSQL_TYPE_YEAR => Kind::Year,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Kind::Date,
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Kind::MicroTime,
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 if col.fsp() > 3 => Kind::MicroTimestamp,
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => Kind::Timestamp,
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => Kind::ZonedTimestamp,
        MYSQL_TYPE_ENUM => Kind::Enum(col.labels.clone()),
        MYSQL_TYPE_SET => Kind::Set(col.labels.clone()),
        MYSQL_TYPE_JSON => Kind::Json,
        MYSQL_TYPE_BIT => {
            let bits = meta(1) * 8 + meta(0);
            if bits == 1 {
                Kind::Boolean
            } else {
                Kind::Bits(bits)
            }
        }
        MYSQL_TYPE_GEOMETRY => Kind::Geometry,
        _ if col.json => Kind::Json,
        _ if col.charset == 63 => Kind::Binary,
        _ => Kind::Text,
    }
}

fn named(name: &str) -> Props {
    vec![("connect.version", json!(1)), ("connect.name", json!(name))]
}

/// The Avro schema of a column of this shape (not yet optional).
pub fn schema(kind: &Kind) -> Schema {
    match kind {
        Kind::Boolean => Schema::Boolean(Vec::new()),
        Kind::Int16 => Schema::Int(vec![("connect.type", json!("int16"))]),
        Kind::Int32 => Schema::Int(Vec::new()),
        Kind::Int64 => Schema::Long(Vec::new()),
        Kind::Float => Schema::Float(Vec::new()),
        Kind::Double => Schema::Double(Vec::new()),
        Kind::Decimal { precision, scale } => Schema::Bytes(vec![
            ("scale", json!(scale)),
            ("precision", json!(precision)),
            ("connect.version", json!(1)),
            (
                "connect.parameters",
                json!({"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()}),
            ),
            (
                "connect.name",
                json!("org.apache.kafka.connect.data.Decimal"),
            ),
            ("logicalType", json!("decimal")),
        ]),
        Kind::Text => Schema::String(Vec::new()),
        Kind::Binary => Schema::Bytes(Vec::new()),
        Kind::Json => Schema::String(named("io.debezium.data.Json")),
        Kind::Enum(labels) | Kind::Set(labels) => {
            let name = if matches!(kind, Kind::Enum(_)) {
                "io.debezium.data.Enum"
            } else {
                "io.debezium.data.EnumSet"
            };
            let mut props = vec![("connect.version", json!(1))];
            props.push(("connect.parameters", json!({"allowed": labels.join(",")})));
            props.push(("connect.name", json!(name)));
            Schema::String(props)
        }
        Kind::Date => Schema::Int(named("io.debezium.time.Date")),
        Kind::MicroTime => Schema::Long(named("io.debezium.time.MicroTime")),
        Kind::Timestamp => Schema::Long(named("io.debezium.time.Timestamp")),
        Kind::MicroTimestamp => Schema::Long(named("io.debezium.time.MicroTimestamp")),
        Kind::ZonedTimestamp => Schema::String(named("io.debezium.time.ZonedTimestamp")),
        Kind::Year => Schema::Int(named("io.debezium.time.Year")),
        Kind::Bits(n) => {
            let mut props = vec![("connect.version", json!(1))];
            props.push(("connect.parameters", json!({"length": n.to_string()})));
            props.push(("connect.name", json!("io.debezium.data.Bits")));
            Schema::Bytes(props)
        }
        Kind::Geometry => Schema::Record(super::schema::Record {
            name: "io.debezium.data.geometry.Geometry".into(),
            fields: vec![
                super::schema::Field {
                    name: "wkb".into(),
                    schema: Schema::Bytes(Vec::new()),
                },
                super::schema::Field {
                    name: "srid".into(),
                    schema: Schema::Int(Vec::new()).optional(),
                },
            ],
            props: vec![
                ("connect.version", json!(1)),
                ("connect.name", json!("io.debezium.data.geometry.Geometry")),
            ],
        }),
    }
}

/// A value that cannot be written in its column's Avro type (a zero date
/// in a key column, a number out of range): the row is not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwritable {
    pub column: String,
    pub why: String,
}

/// Column `i`'s value (not null) in its shape. `None`: a value Debezium
/// turns into null (a zero date).
pub fn value(
    kind: &Kind,
    col: &ColumnSchema,
    img: &RowImage,
    i: usize,
    style: &Style,
) -> Result<Option<Vec<u8>>, Unwritable> {
    let bad = |why: String| Unwritable {
        column: col.name.clone(),
        why,
    };
    let raw = img.cell(i);
    let plain = || -> Value {
        let mut t = Vec::with_capacity(32);
        crate::format::maxwell::write_plain(&mut t, col, Some(img), i, style);
        serde_json::from_slice(&t).unwrap_or(Value::Null)
    };
    let text = || match plain() {
        Value::String(s) => s,
        v => v.to_string(),
    };
    let mut out = Vec::with_capacity(16);
    match kind {
        Kind::Boolean => binary::boolean(&mut out, raw.is_some_and(|b| b.iter().any(|&x| x != 0))),
        Kind::Int16 | Kind::Int32 | Kind::Year => {
            let v = plain()
                .as_i64()
                .ok_or_else(|| bad("not an integer".into()))?;
            let v = i32::try_from(v).map_err(|_| bad(format!("{v} is outside an Avro int")))?;
            binary::int(&mut out, v)
        }
        Kind::Int64 => {
            let v = plain()
                .as_i64()
                .ok_or_else(|| bad("not a 64-bit integer".into()))?;
            binary::long(&mut out, v)
        }
        Kind::Float => binary::float(&mut out, plain().as_f64().unwrap_or(f64::NAN) as f32),
        Kind::Double => binary::double(&mut out, plain().as_f64().unwrap_or(f64::NAN)),
        Kind::Decimal { scale, .. } => {
            let t = text();
            let digits = unscaled(&t, *scale)
                .ok_or_else(|| bad(format!("{t} is not a decimal of scale {scale}")))?;
            let b = binary::decimal_bytes(&digits).expect("digits");
            binary::bytes(&mut out, &b)
        }
        Kind::Text | Kind::Enum(_) => binary::string(&mut out, &text()),
        // Debezium's EnumSet: the labels joined by commas.
        Kind::Set(_) => {
            let labels = match plain() {
                Value::Array(a) => a
                    .iter()
                    .map(|l| l.as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                v => v.as_str().unwrap_or_default().to_string(),
            };
            binary::string(&mut out, &labels)
        }
        // The document's text as the server has it (MariaDB: as stored).
        Kind::Json => {
            let doc = match img.cells.get(i) {
                Some(crate::event::Cell::Json(doc)) => doc.to_vec(),
                _ if col.json => raw.unwrap_or_default().to_vec(),
                _ => {
                    let mut t = Vec::new();
                    crate::format::maxwell::write_plain(&mut t, col, Some(img), i, style);
                    t
                }
            };
            binary::string(&mut out, &String::from_utf8_lossy(&doc))
        }
        Kind::Binary => binary::bytes(&mut out, raw.unwrap_or_default()),
        Kind::Bits(_) => {
            let le: Vec<u8> = raw.unwrap_or_default().iter().rev().copied().collect();
            binary::bytes(&mut out, &le)
        }
        Kind::Geometry => {
            let b = raw.unwrap_or_default();
            if b.len() < 4 {
                return Err(bad("a geometry shorter than its SRID".into()));
            }
            binary::bytes(&mut out, &b[4..]);
            binary::branch(&mut out, 1);
            binary::int(&mut out, i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
        Kind::Date => match civil_days(&text()) {
            Some(d) => binary::int(&mut out, d as i32),
            None => return Ok(None),
        },
        Kind::MicroTime => {
            let t = text();
            let us = time_micros(&t).ok_or_else(|| bad(format!("{t} is not a time")))?;
            binary::long(&mut out, us)
        }
        Kind::Timestamp | Kind::MicroTimestamp => match datetime_micros(&text()) {
            Some(us) if *kind == Kind::Timestamp => binary::long(&mut out, us.div_euclid(1000)),
            Some(us) => binary::long(&mut out, us),
            None => return Ok(None),
        },
        Kind::ZonedTimestamp => {
            let t = text();
            if civil_days(&t).is_none() {
                return Ok(None);
            }
            binary::string(&mut out, &format!("{}Z", t.replacen(' ', "T", 1)))
        }
    }
    Ok(Some(out))
}

/// `12.50` at scale 2 → `1250`; `-0.5` at scale 3 → `-500`.
fn unscaled(text: &str, scale: u32) -> Option<String> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > scale as usize || !(int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut digits = format!("{int}{frac}{}", "0".repeat(scale as usize - frac.len()));
    let trimmed = digits.trim_start_matches('0');
    digits = if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    };
    Some(if neg && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    })
}

/// `YYYY-MM-DD...` → days since the epoch; `None` for a zero date.
fn civil_days(s: &str) -> Option<i64> {
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: i64 = s.get(5..7)?.parse().ok()?;
    let d: i64 = s.get(8..10)?.parse().ok()?;
    (m >= 1 && d >= 1).then(|| crate::clock::days_from_civil(y, m, d))
}

/// `[-]H..H:MM:SS[.ffffff]` → microseconds.
fn time_micros(s: &str) -> Option<i64> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s),
    };
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: i64 = parts.next()?.parse().ok()?;
    let us: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").get(0..6)?.parse().ok()?
    };
    let v = ((h * 60 + m) * 60 + sec) * 1_000_000 + us;
    Some(if neg { -v } else { v })
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` → microseconds since the epoch.
fn datetime_micros(s: &str) -> Option<i64> {
    let days = civil_days(s)?;
    let time = s
        .get(11..)
        .filter(|t| !t.is_empty())
        .map_or(Some(0), time_micros)?;
    Some(days * 86_400_000_000 + time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_lose_their_point_at_their_scale() {
        assert_eq!(unscaled("12.50", 2).as_deref(), Some("1250"));
        assert_eq!(unscaled("-0.5", 3).as_deref(), Some("-500"));
        assert_eq!(unscaled("0.00", 2).as_deref(), Some("0"));
        assert_eq!(
            unscaled("18446744073709551615", 0).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(unscaled("1.234", 2), None);
    }

    #[test]
    fn temporal_values_are_counted_as_debeziums_adaptive_microseconds_mode_does() {
        assert_eq!(civil_days("1970-01-02"), Some(1));
        assert_eq!(civil_days("0000-00-00"), None);
        assert_eq!(time_micros("-838:59:59.000000"), Some(-3_020_399_000_000));
        assert_eq!(time_micros("01:00:00.5"), Some(3_600_500_000));
        assert_eq!(
            datetime_micros("1970-01-01 00:00:01.000001"),
            Some(1_000_001)
        );
        assert_eq!(datetime_micros("1969-12-31 23:59:59.5"), Some(-500_000));
        assert_eq!(datetime_micros("2038-01-19"), Some(2_147_472_000_000_000));
    }

    #[test]
    fn every_shape_has_debeziums_connect_name() {
        let s = schema(&Kind::Decimal {
            precision: 10,
            scale: 2,
        })
        .text();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["logicalType"], "decimal");
        assert_eq!(v["connect.parameters"]["scale"], "2");
        for (k, name) in [
            (Kind::Date, "io.debezium.time.Date"),
            (Kind::MicroTime, "io.debezium.time.MicroTime"),
            (Kind::Timestamp, "io.debezium.time.Timestamp"),
            (Kind::MicroTimestamp, "io.debezium.time.MicroTimestamp"),
            (Kind::ZonedTimestamp, "io.debezium.time.ZonedTimestamp"),
            (Kind::Year, "io.debezium.time.Year"),
            (Kind::Json, "io.debezium.data.Json"),
            (Kind::Enum(vec!["a".into()]), "io.debezium.data.Enum"),
            (Kind::Set(vec!["a".into()]), "io.debezium.data.EnumSet"),
            (Kind::Bits(3), "io.debezium.data.Bits"),
            (Kind::Geometry, "io.debezium.data.geometry.Geometry"),
        ] {
            let v: Value = serde_json::from_str(&schema(&k).text()).unwrap();
            assert_eq!(v["connect.name"], name, "{k:?}");
        }
    }
}
