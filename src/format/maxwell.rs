//! Maxwell's JSON, so Maxwell consumers and Flink's `maxwell-json` read the
//! output unchanged.
//!
//! Value: `database`, `table`, `type`, `ts`, `xid`, `xoffset`, `commit`
//! (last row of its transaction only), `position`, `gtid`, `server_id`,
//! `primary_key`, `primary_key_columns`, `data`, `old` (updates: previous
//! values of changed columns). Key: `{"database","table","pk.<col>"...}`, so
//! one row's changes land in one partition.

use super::json::{put, write_i64, write_key, write_str, write_u64};
use super::value::{write_cell, Style};
use crate::event::{
    Cell, ColumnSchema, DdlChange, RowChange, RowImage, RowKind, SnapshotPart, TableSchema,
};
use crate::filter::Visibility;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The image whose values name the row: after for inserts and updates,
/// before for deletes.
pub(crate) fn row_image(r: &RowChange) -> Option<&RowImage> {
    match r.kind {
        RowKind::Delete => r.before.as_ref(),
        _ => r.after.as_ref(),
    }
}

/// Appends column `i`'s value from `img` (null when NULL or absent).
pub(crate) fn write_col(
    out: &mut Vec<u8>,
    col: &ColumnSchema,
    img: Option<&RowImage>,
    i: usize,
    style: &Style,
) {
    if col.visibility != Visibility::Masked {
        return write_plain(out, col, img, i, style);
    }
    // filter.columns.mask: the SHA-256 of the value's JSON, in hex, so
    // equal values still join; NULL stays null.
    let mut plain = Vec::new();
    write_plain(&mut plain, col, img, i, style);
    if plain == b"null" {
        out.extend_from_slice(b"null");
        return;
    }
    let hex: String = Sha256::digest(&plain)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write_str(out, &hex);
}

/// Column `i`'s value as it is, masking aside.
pub(crate) fn write_plain(
    out: &mut Vec<u8>,
    col: &ColumnSchema,
    img: Option<&RowImage>,
    i: usize,
    style: &Style,
) {
    let Some(img) = img else {
        out.extend_from_slice(b"null");
        return;
    };
    match img.cells.get(i) {
        Some(Cell::Json(doc)) => out.extend_from_slice(doc),
        Some(Cell::Data { start, end }) => match img.buf.get(*start as usize..*end as usize) {
            Some(b) => write_cell(out, col, b, style),
            None => out.extend_from_slice(b"null"),
        },
        _ => out.extend_from_slice(b"null"),
    }
}

/// Appends a Debezium-style key: the primary-key columns and their values
/// (`{"id":1}`); `null` for a table without a primary key.
pub fn write_pk_json(out: &mut Vec<u8>, r: &RowChange, style: &Style) {
    write_pk_object(out, r, |out, col, img, i| {
        write_col(out, col, img, i, style)
    });
}

/// Appends `{"<pk column>": value, ...}` of the row's identifying image,
/// each value written by `value`; `null` for a table without a primary key.
pub(crate) fn write_pk_object(
    out: &mut Vec<u8>,
    r: &RowChange,
    value: impl Fn(&mut Vec<u8>, &ColumnSchema, Option<&RowImage>, usize),
) {
    let t = &r.table;
    if t.primary_key.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    let image = row_image(r);
    out.push(b'{');
    for (n, &i) in t.primary_key.iter().enumerate() {
        if let Some(col) = t.columns.get(i) {
            if n > 0 {
                out.push(b',');
            }
            write_key(out, &col.name);
            value(out, col, image, i);
        }
    }
    out.push(b'}');
}

/// The JSON of column `name` in the row's identifying image, if the table
/// has such a column (`kafka.partition_by=column:NAME`).
pub fn column_json(r: &RowChange, name: &str, style: &Style) -> Option<Vec<u8>> {
    let i = r.table.columns.iter().position(|c| c.name == name)?;
    let mut out = Vec::new();
    write_col(&mut out, &r.table.columns[i], row_image(r), i, style);
    Some(out)
}

/// Appends the message key.
pub fn write_key_json(out: &mut Vec<u8>, r: &RowChange, style: &Style) {
    let t = &r.table;
    out.push(b'{');
    out.extend_from_slice(b"\"database\":");
    write_str(out, &t.database);
    out.extend_from_slice(b",");
    out.extend_from_slice(b"\"table\":");
    write_str(out, &t.table);
    let image = row_image(r);
    for &i in &t.primary_key {
        if let Some(col) = t.columns.get(i) {
            out.extend_from_slice(b",\"pk.");
            // The name as a JSON string without its opening quote.
            let at = out.len();
            write_str(out, &col.name);
            out.remove(at);
            out.push(b':');
            write_col(out, col, image, i, style);
        }
    }
    out.push(b'}');
}

/// What a row's message repeats from the previous row's, rendered once and
/// copied: the opening (`database`, `table`, `type`, `ts`), the
/// coordinates (`position`, `gtid`, `server_id`) and the primary key's
/// column names. The rows of one event share all three; only the values,
/// `xid`, `xoffset` and `commit` are written per row.
///
/// A key compares its `Arc`s by address and holds a clone of each, so an
/// address cannot be freed and given to another table or GTID while the
/// memo stands for it.
/// An event's file, offset, GTID and server id.
type Coords = (Arc<str>, u64, Option<Arc<str>>, u32);

#[derive(Debug, Default, Clone)]
pub struct Memo {
    open: Option<(Arc<TableSchema>, RowKind, u32)>,
    /// `{"database":…,"table":…,"type":…,"ts":…`
    open_bytes: Vec<u8>,
    /// `],"primary_key_columns":[…],"data":`, of the same table.
    pk_names: Vec<u8>,
    coords: Option<Coords>,
    /// `,"position":…,"gtid":…,"server_id":…,"primary_key":[`
    coords_bytes: Vec<u8>,
}

impl Memo {
    fn open(&mut self, r: &RowChange) -> &[u8] {
        let fresh = matches!(&self.open, Some((t, kind, ts))
            if Arc::ptr_eq(t, &r.table) && *kind == r.kind && *ts == r.ts);
        if !fresh {
            let t: &TableSchema = &r.table;
            self.open_bytes.clear();
            write_head(&mut self.open_bytes, t, r.kind.as_str());
            self.open_bytes.extend_from_slice(b",\"ts\":");
            write_u64(&mut self.open_bytes, r.ts as u64);
            self.pk_names.clear();
            self.pk_names
                .extend_from_slice(b"],\"primary_key_columns\":[");
            for (n, &i) in t.primary_key.iter().enumerate() {
                if n > 0 {
                    self.pk_names.push(b',');
                }
                let name = t.columns.get(i).map(|c| c.name.as_str()).unwrap_or("");
                write_str(&mut self.pk_names, name);
            }
            self.pk_names.extend_from_slice(b"],\"data\":");
            self.open = Some((r.table.clone(), r.kind, r.ts));
        }
        &self.open_bytes
    }

    fn coords(&mut self, r: &RowChange) -> &[u8] {
        let gtid = &r.checkpoint.gtid;
        let fresh = matches!(&self.coords, Some((file, pos, g, server))
        if Arc::ptr_eq(file, &r.event_file)
            && *pos == r.event_pos
            && *server == r.server_id
            && super::same_gtid(g, gtid));
        if !fresh {
            let out = &mut self.coords_bytes;
            out.clear();
            out.extend_from_slice(b",\"position\":");
            write_position(out, &r.event_file, r.event_pos);
            if let Some(g) = gtid {
                out.extend_from_slice(b",\"gtid\":");
                write_str(out, g);
            }
            out.extend_from_slice(b",\"server_id\":");
            write_i64(out, r.server_id as i64);
            out.extend_from_slice(b",\"primary_key\":[");
            self.coords = Some((r.event_file.clone(), r.event_pos, gtid.clone(), r.server_id));
        }
        &self.coords_bytes
    }
}

/// Appends the message value; `memo` keeps what the next row of the same
/// event repeats.
pub fn write_value_json(out: &mut Vec<u8>, r: &RowChange, style: &Style, memo: &mut Memo) {
    let t: &TableSchema = &r.table;
    if let Some(part) = r.snapshot {
        return write_bootstrap(out, r, part, style);
    }
    put(out, memo.open(r));
    if let Some(xid) = r.xid {
        out.push(b',');
        out.extend_from_slice(b"\"xid\":");
        write_u64(out, xid);
    }
    out.push(b',');
    out.extend_from_slice(b"\"xoffset\":");
    write_u64(out, r.xoffset);
    if r.commit {
        out.extend_from_slice(b",\"commit\":true");
    }
    put(out, memo.coords(r));
    let image = row_image(r);
    let pk_start = out.len();
    for (n, &i) in t.primary_key.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        match t.columns.get(i) {
            Some(col) => write_col(out, col, image, i, style),
            None => out.extend_from_slice(b"null"),
        }
    }
    // A one-column key's value is the same text in `data`: copied there,
    // not rendered twice.
    let pk = (pk_start, out.len() - pk_start);
    put(out, &memo.pk_names);
    let reuse = match t.primary_key.as_slice() {
        [i] if pk.1 <= PK_COPY => Some((*i, pk)),
        _ => None,
    };
    write_row(out, t, image, style, reuse);
    if let (RowKind::Update, Some(before), Some(after)) = (r.kind, &r.before, &r.after) {
        // Changed columns are those whose logged bytes differ: no need to
        // render both sides to compare them.
        out.push(b',');
        out.extend_from_slice(b"\"old\":");
        write_object(
            out,
            t,
            |i| changed(before, after, i),
            |out, col, i| write_col(out, col, Some(before), i, style),
        );
    }
    out.push(b'}');
}

/// Opens a row message: `{"database":…,"table":…,"type":…`.
fn write_head(out: &mut Vec<u8>, t: &TableSchema, kind: &str) {
    let names = super::json::rendered(t);
    out.extend_from_slice(b"{\"database\":");
    put(out, &names.database);
    out.extend_from_slice(b",\"table\":");
    put(out, &names.table);
    out.push(b',');
    out.extend_from_slice(b"\"type\":");
    write_str(out, kind);
}

/// A snapshot record as Maxwell's bootstrap writes it: `bootstrap-start`
/// and `bootstrap-complete` around a table's `bootstrap-insert` rows, each
/// with `database`, `table`, `type`, `ts` and `data` (empty for the two
/// markers).
fn write_bootstrap(out: &mut Vec<u8>, r: &RowChange, part: SnapshotPart, style: &Style) {
    let t: &TableSchema = &r.table;
    write_head(
        out,
        t,
        match part {
            SnapshotPart::Start => "bootstrap-start",
            SnapshotPart::Row(_) => "bootstrap-insert",
            SnapshotPart::Complete => "bootstrap-complete",
        },
    );
    out.push(b',');
    out.extend_from_slice(b"\"ts\":");
    write_u64(out, r.ts as u64);
    out.push(b',');
    out.extend_from_slice(b"\"data\":");
    match (part, &r.after) {
        (SnapshotPart::Row(_), Some(image)) => write_row(out, t, Some(image), style, None),
        _ => out.extend_from_slice(b"{}"),
    }
    out.push(b'}');
}

/// Appends a DDL message in Maxwell's style: `type` (`table-create`,
/// `table-alter`, `table-drop`, `database-create`, ...), `database`,
/// `table`, `sql`, `ts`, `position`, `server_id`. Maxwell's `old`/`def`
/// schema dumps are not written: the schema travels with each row instead.
pub fn write_ddl(out: &mut Vec<u8>, d: &DdlChange) {
    out.push(b'{');
    out.extend_from_slice(b"\"type\":");
    write_str(out, d.kind.maxwell());
    out.push(b',');
    out.extend_from_slice(b"\"database\":");
    write_str(out, &d.database);
    if !d.table.is_empty() {
        out.push(b',');
        out.extend_from_slice(b"\"table\":");
        write_str(out, &d.table);
    }
    out.push(b',');
    out.extend_from_slice(b"\"sql\":");
    write_str(out, &d.sql);
    out.push(b',');
    out.extend_from_slice(b"\"ts\":");
    write_u64(out, d.ts as u64);
    out.push(b',');
    out.extend_from_slice(b"\"position\":");
    write_position(out, &d.event_file, d.event_pos);
    out.push(b',');
    out.extend_from_slice(b"\"server_id\":");
    write_u64(out, d.server_id as u64);
    out.push(b'}');
}

/// Appends `"file:offset"` (file names hold no characters JSON escapes).
fn write_position(out: &mut Vec<u8>, file: &str, pos: u64) {
    write_str(out, file);
    out.pop();
    out.push(b':');
    write_u64(out, pos);
    out.push(b'"');
}

/// The longest key value [`write_value_json`] copies into `data` (a
/// BIGINT is 20 digits and a sign).
const PK_COPY: usize = 24;

/// `data`: the row object. `reuse` is a column whose value text is already
/// in `out` (at an offset, this long), to be copied rather than rendered.
fn write_row(
    out: &mut Vec<u8>,
    t: &TableSchema,
    image: Option<&RowImage>,
    style: &Style,
    reuse: Option<(usize, (usize, usize))>,
) {
    let names = super::json::rendered(t);
    if let (Some(img), true) = (image, names.plain) {
        return write_image(out, t, img, &names.keys, style, reuse);
    }
    write_object(
        out,
        t,
        |i| image.is_none_or(|m| present(m, i)),
        |out, col, i| write_col(out, col, image, i, style),
    );
}

/// [`write_object`] over every column of `img` when no column is masked or
/// left out: one pass over the image's cells, each looked at once.
fn write_image(
    out: &mut Vec<u8>,
    t: &TableSchema,
    img: &RowImage,
    keys: &[Box<[u8]>],
    style: &Style,
    reuse: Option<(usize, (usize, usize))>,
) {
    out.push(b'{');
    let mut first = true;
    for (i, ((col, cell), key)) in t.columns.iter().zip(img.cells.iter()).zip(keys).enumerate() {
        if matches!(cell, Cell::Absent) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        put(out, key);
        // The key's text, written by `write_col` from the same cell (no
        // column is masked here), copied as a whole block: the key's name
        // list and this object's opening follow it in `out`.
        let kept = reuse
            .filter(|(c, _)| *c == i)
            .and_then(|(_, (at, len))| Some((out.get(at..at + PK_COPY)?, len)));
        if let Some((text, len)) = kept {
            let mut copy = [0u8; PK_COPY];
            copy.copy_from_slice(text);
            put(out, &copy[..len]);
            continue;
        }
        match cell {
            Cell::Data { start, end } => match img.buf.get(*start as usize..*end as usize) {
                Some(b) => write_cell(out, col, b, style),
                None => out.extend_from_slice(b"null"),
            },
            Cell::Json(doc) => out.extend_from_slice(doc),
            Cell::Absent | Cell::Null | Cell::Diff { .. } => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

/// Column `i` is in the image (not left out by a MINIMAL row image).
pub(crate) fn present(img: &RowImage, i: usize) -> bool {
    !matches!(img.cells.get(i), Some(Cell::Absent) | None)
}

/// Column `i` is in both images and its logged bytes differ: no need to
/// render both sides to compare them.
pub(crate) fn changed(before: &RowImage, after: &RowImage, i: usize) -> bool {
    present(before, i) && present(after, i) && before.cell(i) != after.cell(i)
}

/// Appends `{"column": value, ...}` over the columns `keep` selects among
/// those `filter.columns.exclude` leaves, each value written by `value`.
/// Every format's row and `old` objects are written through here.
pub(crate) fn write_object(
    out: &mut Vec<u8>,
    t: &TableSchema,
    keep: impl Fn(usize) -> bool,
    value: impl Fn(&mut Vec<u8>, &ColumnSchema, usize),
) {
    let keys = &super::json::rendered(t).keys;
    out.push(b'{');
    let mut first = true;
    for (i, col) in t.columns.iter().enumerate() {
        if col.visibility == Visibility::Excluded || !keep(i) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        put(out, &keys[i]);
        value(out, col, i);
    }
    out.push(b'}');
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use mysql::consts::ColumnType;

    use super::*;
    use crate::event::{ColumnSchema, NameSource, Position};

    pub(crate) fn table() -> Arc<TableSchema> {
        let c = |name: &str, t, unsigned| ColumnSchema {
            json: false,
            visibility: Default::default(),
            name: name.into(),
            col_type: t,
            meta: vec![],
            unsigned,
            charset: 45,
            labels: vec![],
        };
        Arc::new(TableSchema {
            database: "shop".into(),
            table: "orders".into(),
            columns: vec![
                c("id", ColumnType::MYSQL_TYPE_LONGLONG, true),
                c("note", ColumnType::MYSQL_TYPE_VARCHAR, false),
                c("qty", ColumnType::MYSQL_TYPE_LONG, false),
            ],
            primary_key: vec![0],
            names_from: NameSource::TableMap,
            rendered: Default::default(),
        })
    }

    /// A row image of (id BIGINT UNSIGNED, note VARCHAR, qty INT); `None`
    /// is NULL.
    pub(crate) fn image(id: u64, note: Option<&str>, qty: i32) -> RowImage {
        let mut buf = id.to_le_bytes().to_vec();
        let mut cells = vec![Cell::Data { start: 0, end: 8 }];
        match note {
            Some(n) => {
                let start = buf.len() as u32;
                buf.extend_from_slice(n.as_bytes());
                cells.push(Cell::Data {
                    start,
                    end: buf.len() as u32,
                });
            }
            None => cells.push(Cell::Null),
        }
        let start = buf.len() as u32;
        buf.extend_from_slice(&qty.to_le_bytes());
        cells.push(Cell::Data {
            start,
            end: buf.len() as u32,
        });
        RowImage {
            buf: buf.into(),
            cells: cells.into(),
        }
    }

    pub(crate) fn change(
        kind: RowKind,
        before: Option<RowImage>,
        after: Option<RowImage>,
    ) -> RowChange {
        RowChange {
            seq: 1,
            kind,
            table: table(),
            before,
            after,
            ts: 1_700_000_000,
            xid: Some(42),
            xoffset: 0,
            commit: true,
            event_file: "binlog.000003".into(),
            event_pos: 1234,
            event_row: 0,
            thread: None,
            server_id: 1,
            checkpoint: Position {
                file: "binlog.000003".into(),
                pos: 1000,
                rows: 1,
                gtid: Some("0-1-7".into()),
                state: None,
                file_id: None,
                snapshot: None,
                schema: 0,
            },
            snapshot: None,
        }
    }

    fn encode(r: &RowChange) -> (serde_json::Value, serde_json::Value) {
        let (mut k, mut v) = (Vec::new(), Vec::new());
        write_key_json(&mut k, r, &Style::default());
        write_value_json(&mut v, r, &Style::default(), &mut Memo::default());
        (
            serde_json::from_slice(&k).unwrap(),
            serde_json::from_slice(&v).unwrap(),
        )
    }

    #[test]
    fn insert_has_maxwell_fields() {
        let r = change(RowKind::Insert, None, Some(image(7, Some("hi"), 3)));
        let (k, v) = encode(&r);
        assert_eq!(
            k,
            serde_json::json!({"database":"shop","table":"orders","pk.id":7})
        );
        assert_eq!(
            v,
            serde_json::json!({
                "database":"shop","table":"orders","type":"insert","ts":1700000000,
                "xid":42,"xoffset":0,"commit":true,"position":"binlog.000003:1234",
                "gtid":"0-1-7","server_id":1,"primary_key":[7],"primary_key_columns":["id"],
                "data":{"id":7,"note":"hi","qty":3}
            })
        );
    }

    #[test]
    fn update_old_holds_only_changed_columns() {
        let r = change(
            RowKind::Update,
            Some(image(7, Some("hi"), 3)),
            Some(image(7, Some("hi"), 4)),
        );
        let (_, v) = encode(&r);
        assert_eq!(v["type"], "update");
        assert_eq!(v["data"]["qty"], 4);
        assert_eq!(v["old"], serde_json::json!({"qty":3}));
    }

    #[test]
    fn delete_carries_the_deleted_row() {
        let r = change(RowKind::Delete, Some(image(7, None, 3)), None);
        let (k, v) = encode(&r);
        assert_eq!(k["pk.id"], 7);
        assert_eq!(v["type"], "delete");
        assert_eq!(v["data"], serde_json::json!({"id":7,"note":null,"qty":3}));
        assert!(v.get("old").is_none());
    }
}
