//! canal-json, as Canal's Kafka producer writes its flat messages and
//! Flink's `canal-json` format reads them.
//!
//! Fields in Canal's own (alphabetical) order: `data` (rows), `database`,
//! `es` (event time, ms), `id`, `isDdl`, `mysqlType`, `old` (changed
//! columns' previous values, updates only), `pkNames`, `sql`, `sqlType`
//! (java.sql.Types codes), `table`, `ts` (when written, ms), `type`
//! (INSERT/UPDATE/DELETE). Every value is a string, as in Canal: numbers
//! as their text, binary as ISO-8859-1 text, NULL as null. One message
//! carries one row.

use super::json::{put, write_i64, write_key, write_str, write_u64};
use super::maxwell::{changed, present, write_col, write_object};
use super::value::Style;
use super::Context;
use crate::event::column::real_type;
use crate::event::column::string_max_len;
use crate::event::{Cell, ColumnSchema, DdlChange, RowChange, RowImage, RowKind, TableSchema};
use crate::filter::Visibility;
use mysql::consts::ColumnType;
use std::sync::Arc;

const BINARY_CHARSET: u16 = 63;

/// What a table's messages repeat, rendered once per table definition:
/// the database, the `mysqlType` and `sqlType` maps, `pkNames` and the
/// table's name. The key holds the definition it compares by address, so
/// the address cannot be freed and given to another while the memo stands
/// for it.
#[derive(Debug, Default, Clone)]
pub struct Memo {
    table: Option<Arc<TableSchema>>,
    /// `],"database":…,"es":`
    database: Vec<u8>,
    /// `,"isDdl":false,"mysqlType":{…},"old":`
    types: Vec<u8>,
    /// `,"pkNames":…,"sql":"","sqlType":{…},"table":…,"ts":`
    names: Vec<u8>,
}

impl Memo {
    fn refresh(&mut self, table: &Arc<TableSchema>) {
        if self.table.as_ref().is_some_and(|t| Arc::ptr_eq(t, table)) {
            return;
        }
        let t: &TableSchema = table;
        let shown = || {
            t.columns
                .iter()
                .filter(|c| c.visibility != Visibility::Excluded)
        };
        let out = &mut self.database;
        out.clear();
        out.extend_from_slice(b"],\"database\":");
        write_str(out, &t.database);
        out.extend_from_slice(b",\"es\":");
        let out = &mut self.types;
        out.clear();
        out.extend_from_slice(b",\"isDdl\":false,\"mysqlType\":{");
        for (n, col) in shown().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_key(out, &col.name);
            write_str(out, &mysql_type(col));
        }
        out.extend_from_slice(b"},\"old\":");
        let out = &mut self.names;
        out.clear();
        out.extend_from_slice(b",\"pkNames\":");
        if t.primary_key.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'[');
            for (n, &i) in t.primary_key.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_str(out, t.columns.get(i).map_or("", |c| c.name.as_str()));
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"sql\":\"\",\"sqlType\":{");
        for (n, col) in shown().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_key(out, &col.name);
            write_i64(out, sql_type(col) as i64);
        }
        out.extend_from_slice(b"},\"table\":");
        write_str(out, &t.table);
        out.extend_from_slice(b",\"ts\":");
        self.table = Some(table.clone());
    }
}

/// Appends the flat message for one row change; `memo` keeps what the
/// next message of the same table repeats.
pub fn write_value(
    out: &mut Vec<u8>,
    r: &RowChange,
    style: &Style,
    ctx: &Context<'_>,
    memo: &mut Memo,
) {
    let t = &r.table;
    memo.refresh(t);
    let image = match r.kind {
        RowKind::Delete => r.before.as_ref(),
        _ => r.after.as_ref(),
    };
    out.extend_from_slice(b"{\"data\":[");
    match image {
        Some(img) => write_object(
            out,
            t,
            |i| present(img, i),
            |out, col, i| write_canal(out, col, img, i, style),
        ),
        None => out.extend_from_slice(b"null"),
    }
    put(out, &memo.database);
    write_u64(out, r.ts as u64 * 1000);
    out.extend_from_slice(b",\"id\":");
    write_u64(out, r.seq);
    put(out, &memo.types);
    match (r.kind, &r.before, &r.after) {
        (RowKind::Update, Some(before), Some(after)) => {
            out.push(b'[');
            write_object(
                out,
                t,
                |i| changed(before, after, i),
                |out, col, i| write_canal(out, col, before, i, style),
            );
            out.push(b']');
        }
        _ => out.extend_from_slice(b"null"),
    }
    put(out, &memo.names);
    write_i64(out, ctx.now_ms);
    out.extend_from_slice(match r.kind {
        RowKind::Insert => b",\"type\":\"INSERT\"}",
        RowKind::Update => b",\"type\":\"UPDATE\"}",
        RowKind::Delete => b",\"type\":\"DELETE\"}",
    });
}

/// Appends the flat message Canal writes for a DDL statement.
pub fn write_ddl(out: &mut Vec<u8>, d: &DdlChange, now_ms: i64) {
    out.extend_from_slice(b"{\"data\":null,");
    out.extend_from_slice(b"\"database\":");
    write_str(out, &d.database);
    out.push(b',');
    out.extend_from_slice(b"\"es\":");
    write_u64(out, d.ts as u64 * 1000);
    out.push(b',');
    out.extend_from_slice(b"\"id\":");
    write_u64(out, d.seq);
    out.extend_from_slice(b",\"isDdl\":true,\"mysqlType\":null,\"old\":null,\"pkNames\":null,");
    out.extend_from_slice(b"\"sql\":");
    write_str(out, &d.sql);
    out.extend_from_slice(b",\"sqlType\":null,");
    out.extend_from_slice(b"\"table\":");
    write_str(out, &d.table);
    out.push(b',');
    out.extend_from_slice(b"\"ts\":");
    write_i64(out, now_ms);
    out.push(b',');
    out.extend_from_slice(b"\"type\":");
    write_str(out, d.kind.canal());
    out.push(b'}');
}

/// Column `i` as a canal string.
fn write_canal(out: &mut Vec<u8>, col: &ColumnSchema, img: &RowImage, i: usize, style: &Style) {
    if let Some(Cell::Json(doc)) = img.cells.get(i) {
        return write_str(out, &String::from_utf8_lossy(doc));
    }
    let Some(b) = img.cell(i) else {
        out.extend_from_slice(b"null");
        return;
    };
    if col.visibility != Visibility::Masked && is_binary(col) {
        // Canal decodes binary as ISO-8859-1: one character per byte.
        let s: String = b.iter().map(|&c| c as char).collect();
        return write_str(out, &s);
    }
    // Written as the Maxwell format writes it, at the end of the record,
    // then made a string in place.
    let mark = out.len();
    write_col(out, col, Some(img), i, style);
    let t = &out[mark..];
    if t.first() == Some(&b'"') || t == b"null" {
        // Already a string, or null.
        return;
    }
    // Numbers, and JSON documents: their text. Plain ASCII (a number) is
    // quoted where it lies; anything else is escaped as a string.
    if t.iter()
        .all(|&c| c.is_ascii() && c >= 0x20 && c != b'"' && c != b'\\')
    {
        out.insert(mark, b'"');
        out.push(b'"');
    } else {
        let t = out.split_off(mark);
        write_str(out, &String::from_utf8_lossy(&t));
    }
}

fn is_binary(col: &ColumnSchema) -> bool {
    col.charset == BINARY_CHARSET
        && matches!(
            real_type(col),
            ColumnType::MYSQL_TYPE_STRING
                | ColumnType::MYSQL_TYPE_VAR_STRING
                | ColumnType::MYSQL_TYPE_VARCHAR
                | ColumnType::MYSQL_TYPE_BLOB
                | ColumnType::MYSQL_TYPE_TINY_BLOB
                | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
                | ColumnType::MYSQL_TYPE_LONG_BLOB
        )
}

/// The column's type as canal's `mysqlType` shows it, from what the table
/// map tells (string lengths are in bytes there, so they are left out).
pub fn mysql_type(col: &ColumnSchema) -> String {
    let m = |i: usize| col.meta.get(i).copied().unwrap_or(0) as usize;
    let unsigned = if col.unsigned { " unsigned" } else { "" };
    let fsp = |name: &str| match col.fsp() {
        0 => name.to_string(),
        n => format!("{name}({n})"),
    };
    let binary = col.charset == BINARY_CHARSET;
    match real_type(col) {
        ColumnType::MYSQL_TYPE_TINY => format!("tinyint{unsigned}"),
        ColumnType::MYSQL_TYPE_SHORT => format!("smallint{unsigned}"),
        ColumnType::MYSQL_TYPE_INT24 => format!("mediumint{unsigned}"),
        ColumnType::MYSQL_TYPE_LONG => format!("int{unsigned}"),
        ColumnType::MYSQL_TYPE_LONGLONG => format!("bigint{unsigned}"),
        ColumnType::MYSQL_TYPE_FLOAT => format!("float{unsigned}"),
        ColumnType::MYSQL_TYPE_DOUBLE => format!("double{unsigned}"),
        ColumnType::MYSQL_TYPE_NEWDECIMAL => format!("decimal({},{}){unsigned}", m(0), m(1)),
        ColumnType::MYSQL_TYPE_YEAR => "year".into(),
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => "date".into(),
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => fsp("datetime"),
        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => fsp("timestamp"),
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => fsp("time"),
        ColumnType::MYSQL_TYPE_BIT => format!("bit({})", m(1) * 8 + m(0)),
        ColumnType::MYSQL_TYPE_ENUM => "enum".into(),
        ColumnType::MYSQL_TYPE_SET => "set".into(),
        ColumnType::MYSQL_TYPE_JSON => "json".into(),
        _ if col.json => "json".into(),
        ColumnType::MYSQL_TYPE_GEOMETRY => "geometry".into(),
        ColumnType::MYSQL_TYPE_STRING if binary => format!("binary({})", string_max_len(&col.meta)),
        ColumnType::MYSQL_TYPE_STRING => "char".into(),
        ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING if binary => {
            format!("varbinary({})", m(0) | (m(1) << 8))
        }
        ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING => "varchar".into(),
        ColumnType::MYSQL_TYPE_BLOB => {
            let size = ["tiny", "", "medium", "long"][m(0).clamp(1, 4) - 1];
            format!("{size}{}", if binary { "blob" } else { "text" })
        }
        other => format!("{other:?}")
            .trim_start_matches("MYSQL_TYPE_")
            .to_ascii_lowercase(),
    }
}

/// The column's `java.sql.Types` code, as Canal maps MySQL types.
pub fn sql_type(col: &ColumnSchema) -> i32 {
    let binary = col.charset == BINARY_CHARSET;
    match real_type(col) {
        ColumnType::MYSQL_TYPE_TINY => -6,
        ColumnType::MYSQL_TYPE_SHORT => 5,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG => 4,
        ColumnType::MYSQL_TYPE_LONGLONG => -5,
        ColumnType::MYSQL_TYPE_FLOAT => 7,
        ColumnType::MYSQL_TYPE_DOUBLE => 8,
        ColumnType::MYSQL_TYPE_NEWDECIMAL => 3,
        ColumnType::MYSQL_TYPE_YEAR => 12,
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => 91,
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => 92,
        ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => 93,
        ColumnType::MYSQL_TYPE_BIT => -7,
        ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET => 1,
        ColumnType::MYSQL_TYPE_STRING if binary => -2,
        ColumnType::MYSQL_TYPE_STRING => 1,
        ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING if binary => -3,
        ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_GEOMETRY
            if binary || real_type(col) == ColumnType::MYSQL_TYPE_GEOMETRY =>
        {
            2004
        }
        ColumnType::MYSQL_TYPE_BLOB => 2005,
        _ => 12,
    }
}
