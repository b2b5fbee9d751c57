//! Splitting a rows event's row images into cells.
//!
//! The reader only finds where each column's bytes are (and which are NULL);
//! turning bytes into JSON happens on the producer thread
//! ([`crate::format::value`]). The event's bytes are copied once into an
//! `Arc<[u8]>` that every row of the event shares, so a row costs one small
//! vector of spans.
//!
//! Every read is bounds-checked: a truncated or corrupt event is an error
//! that names the column, never a panic.

pub use crate::event::column::{decimal_size, string_max_len};
use std::fmt;
use std::sync::Arc;

use mysql::consts::ColumnType;

use crate::event::{Cell, Cells, ColumnSchema, RowImage, TableSchema};
use crate::source::schema::real_type;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A row's (before, after) images.
pub type RowImages = (Option<RowImage>, Option<RowImage>);

/// Which images each row of the event has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Images {
    /// Insert: after image only.
    After,
    /// Delete: before image only.
    Before,
    /// Update: before, then after.
    Both,
    /// MySQL PARTIAL_UPDATE_ROWS_EVENT: an update whose after image starts
    /// with value options and may hold JSON diffs instead of documents.
    BothPartial,
}

/// Splits every row of `rows_data`. `before_cols` and `after_cols` say which
/// columns each image holds (all of them under binlog_row_image=FULL).
///
/// Per event, not per row: how each column's bytes are found is worked out
/// once from the table map, and the cells of all the rows go into one table
/// that their images share ([`Cells`]), so a row allocates nothing.
pub fn split_rows(
    rows_data: &[u8],
    table: &TableSchema,
    images: Images,
    before_cols: &[bool],
    after_cols: &[bool],
) -> Result<Vec<RowImages>, DecodeError> {
    let buf: Arc<[u8]> = Arc::from(rows_data);
    let widths: Vec<Result<Width, DecodeError>> = table.columns.iter().map(width).collect();
    let layout = Layout::new(table, widths);
    // Whether each image holds every column: then its rows split the fast
    // way (known once per event, not looked up per row).
    let n = table.columns.len();
    let whole = |cols: &[bool]| cols.len() >= n && cols[..n].iter().all(|p| *p);
    let (before_whole, after_whole) = (whole(before_cols), whole(after_cols));
    let mut at = 0usize;
    let mut cells: Vec<Cell> = Vec::new();
    let mut spans = Vec::new();
    while at < buf.len() {
        let row_start = at;
        let before = match images {
            Images::Before | Images::Both | Images::BothPartial => {
                Some(layout.split(&buf, &mut at, before_cols, before_whole, false, &mut cells)?)
            }
            Images::After => None,
        };
        let after = match images {
            Images::After | Images::Both => {
                Some(layout.split(&buf, &mut at, after_cols, after_whole, false, &mut cells)?)
            }
            Images::BothPartial => {
                Some(layout.split(&buf, &mut at, after_cols, after_whole, true, &mut cells)?)
            }
            Images::Before => None,
        };
        if at == row_start {
            // No column present: a damaged column bitmap. Without this the
            // loop would never end.
            return Err(DecodeError(format!(
                "{}.{}: a row image of no bytes at offset {at} of {}",
                table.database,
                table.table,
                buf.len()
            )));
        }
        if spans.is_empty() {
            // The first row tells about how many the event holds (capped:
            // a small first row must not reserve for a huge event).
            let rows = (buf.len() / (at - row_start)).min(8192);
            spans.reserve(rows + 1);
            cells.reserve(cells.len() * rows);
        }
        spans.push((before, after));
    }
    let all = Arc::new(cells);
    let image = |range: std::ops::Range<usize>| RowImage {
        buf: buf.clone(),
        cells: Cells::shared(&all, range),
    };
    Ok(spans
        .into_iter()
        .map(|(before, after)| (before.map(image), after.map(image)))
        .collect())
}

/// [`Layout::split`] of an image that holds every column (a FULL row
/// image), none of them diffs, every width known: one pass with one bounds
/// check per value. `None` (and nothing consumed or kept) when the bytes
/// run out, for the general way to report where.
fn split_whole(
    widths: &[Width],
    buf: &[u8],
    at: &mut usize,
    cells: &mut Vec<Cell>,
) -> Option<std::ops::Range<usize>> {
    let first = cells.len();
    let mut split = || -> Option<usize> {
        let mut p = *at;
        let nulls = buf.get(p..p + widths.len().div_ceil(8))?;
        p += nulls.len();
        for (k, w) in widths.iter().enumerate() {
            if nulls[k / 8] & (1 << (k % 8)) != 0 {
                cells.push(Cell::Null);
                continue;
            }
            let (start, end) = match *w {
                Width::Fixed(w) => (p, p + w),
                Width::Prefixed(w) => {
                    let len = le_uint(buf.get(p..p + w)?);
                    (p + w, (p + w).checked_add(len)?)
                }
            };
            if end > buf.len() {
                return None;
            }
            cells.push(Cell::Data {
                start: start as u32,
                end: end as u32,
            });
            p = end;
        }
        Some(p)
    };
    match split() {
        Some(end) => {
            *at = end;
            Some(first..cells.len())
        }
        None => {
            cells.truncate(first);
            None
        }
    }
}

/// Where a column's value lies in a row image.
#[derive(Debug, Clone, Copy)]
enum Width {
    /// Always this many bytes.
    Fixed(usize),
    /// A little-endian length of this many bytes, then the value.
    Prefixed(usize),
}

/// A table's columns as a rows event lays them out.
struct Layout<'a> {
    table: &'a TableSchema,
    /// Per column; an error is reported only when a row holds a value of
    /// that column.
    widths: Vec<Result<Width, DecodeError>>,
    /// The widths, when every one is known (no error to report): what the
    /// one-pass split of a whole image reads.
    known: Option<Vec<Width>>,
}

impl<'a> Layout<'a> {
    fn new(table: &'a TableSchema, widths: Vec<Result<Width, DecodeError>>) -> Self {
        let known = widths.iter().map(|w| w.as_ref().ok().copied()).collect();
        Layout {
            table,
            widths,
            known,
        }
    }
}

impl Layout<'_> {
    /// Splits one row image starting at `at` into `cells`; returns the
    /// range of `cells` it filled.
    fn split(
        &self,
        buf: &[u8],
        at: &mut usize,
        present: &[bool],
        whole: bool,
        shared_image: bool,
        cells: &mut Vec<Cell>,
    ) -> Result<std::ops::Range<usize>, DecodeError> {
        let table = self.table;
        let n = table.columns.len();
        if let (Some(widths), true, false) = (&self.known, whole, shared_image) {
            if let Some(range) = split_whole(widths, buf, at, cells) {
                return Ok(range);
            }
            // Cut short somewhere: the general way below names the place.
        }
        // Which JSON columns (in table order) hold diffs rather than documents.
        let mut partial: Vec<bool> = Vec::new();
        if shared_image {
            let (options, used) = packed_int(buf.get(*at..).unwrap_or(&[]))
                .ok_or_else(|| DecodeError("value options: cut short".into()))?;
            *at += used;
            if options & 1 != 0 {
                let json = table
                    .columns
                    .iter()
                    .filter(|c| c.col_type == ColumnType::MYSQL_TYPE_JSON)
                    .count();
                let bits = take(buf, at, json.div_ceil(8), "partial JSON bitmap")?;
                partial = (0..json)
                    .map(|k| bits[k / 8] & (1 << (k % 8)) != 0)
                    .collect();
            }
        }
        let mut json_ordinal = 0usize;
        let count = present.iter().take(n).filter(|p| **p).count();
        let null_bytes = count.div_ceil(8);
        let nulls = take(buf, at, null_bytes, "null bitmap")?;
        let first = cells.len();
        let mut k = 0usize;
        for (i, col) in table.columns.iter().enumerate() {
            let is_diff = col.col_type == ColumnType::MYSQL_TYPE_JSON && {
                json_ordinal += 1;
                partial.get(json_ordinal - 1).copied().unwrap_or(false)
            };
            if !present.get(i).copied().unwrap_or(false) {
                cells.push(Cell::Absent);
                continue;
            }
            let is_null = nulls[k / 8] & (1 << (k % 8)) != 0;
            k += 1;
            if is_null {
                cells.push(Cell::Null);
                continue;
            }
            let span = match &self.widths[i] {
                Ok(Width::Fixed(w)) => fixed(buf, at, *w),
                Ok(Width::Prefixed(w)) => prefixed(buf, at, *w),
                Err(e) => Err(e.clone()),
            };
            let (start, end) = span.map_err(|e| {
                DecodeError(format!(
                    "{}.{} column {}: {e}",
                    table.database, table.table, col.name
                ))
            })?;
            let (start, end) = (start as u32, end as u32);
            cells.push(if is_diff {
                Cell::Diff { start, end }
            } else {
                Cell::Data { start, end }
            });
        }
        Ok(first..cells.len())
    }
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
    let end = at
        .checked_add(n)
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| {
            DecodeError(format!(
                "{what}: needs {n} bytes at offset {at}, the event has {}",
                buf.len()
            ))
        })?;
    let s = &buf[*at..end];
    *at = end;
    Ok(s)
}

/// A MySQL packed (length-encoded) integer and its byte count.
pub fn packed_int(b: &[u8]) -> Option<(u64, usize)> {
    let n = match *b.first()? {
        x @ 0..=250 => return Some((x as u64, 1)),
        252 => 2,
        253 => 3,
        254 => 8,
        _ => return None,
    };
    let v = b
        .get(1..1 + n)?
        .iter()
        .rev()
        .fold(0u64, |acc, x| acc << 8 | *x as u64);
    Some((v, 1 + n))
}

fn le_uint(b: &[u8]) -> usize {
    b.iter().rev().fold(0usize, |acc, x| acc << 8 | *x as usize)
}

/// Skips a length prefix of `width` bytes, then the payload; returns the
/// payload's span.
fn prefixed(buf: &[u8], at: &mut usize, width: usize) -> Result<(usize, usize), DecodeError> {
    let len = le_uint(take(buf, at, width, "length")?);
    let start = *at;
    take(buf, at, len, "value")?;
    Ok((start, *at))
}

fn fixed(buf: &[u8], at: &mut usize, n: usize) -> Result<(usize, usize), DecodeError> {
    let start = *at;
    take(buf, at, n, "value")?;
    Ok((start, *at))
}

/// Bytes of the fractional part of a TIME2/DATETIME2/TIMESTAMP2.
fn frac_bytes(col: &ColumnSchema) -> usize {
    col.fsp().div_ceil(2)
}

/// How `col`'s bytes are laid out in a row image, from its table map
/// metadata.
fn width(col: &ColumnSchema) -> Result<Width, DecodeError> {
    let meta = &col.meta;
    let m = |i: usize| meta.get(i).copied().unwrap_or(0) as usize;
    Ok(match real_type(col) {
        ColumnType::MYSQL_TYPE_TINY | ColumnType::MYSQL_TYPE_YEAR => Width::Fixed(1),
        ColumnType::MYSQL_TYPE_SHORT => Width::Fixed(2),
        ColumnType::MYSQL_TYPE_INT24
        | ColumnType::MYSQL_TYPE_DATE
        | ColumnType::MYSQL_TYPE_NEWDATE
        | ColumnType::MYSQL_TYPE_TIME => Width::Fixed(3),
        ColumnType::MYSQL_TYPE_LONG
        | ColumnType::MYSQL_TYPE_FLOAT
        | ColumnType::MYSQL_TYPE_TIMESTAMP => Width::Fixed(4),
        ColumnType::MYSQL_TYPE_LONGLONG
        | ColumnType::MYSQL_TYPE_DOUBLE
        | ColumnType::MYSQL_TYPE_DATETIME => Width::Fixed(8),
        ColumnType::MYSQL_TYPE_TIMESTAMP2 => Width::Fixed(4 + frac_bytes(col)),
        ColumnType::MYSQL_TYPE_DATETIME2 => Width::Fixed(5 + frac_bytes(col)),
        ColumnType::MYSQL_TYPE_TIME2 => Width::Fixed(3 + frac_bytes(col)),
        ColumnType::MYSQL_TYPE_NEWDECIMAL => Width::Fixed(decimal_size(m(0), m(1))),
        ColumnType::MYSQL_TYPE_BIT => Width::Fixed(m(1) + usize::from(m(0) > 0)),
        ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET => Width::Fixed(m(1).max(1)),
        ColumnType::MYSQL_TYPE_STRING => {
            Width::Prefixed(if string_max_len(meta) > 255 { 2 } else { 1 })
        }
        ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING => {
            let max = m(0) | m(1) << 8;
            Width::Prefixed(if max > 255 { 2 } else { 1 })
        }
        ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_GEOMETRY
        | ColumnType::MYSQL_TYPE_JSON
        | ColumnType::MYSQL_TYPE_VECTOR => {
            let width = m(0);
            if !(1..=4).contains(&width) {
                return Err(DecodeError(format!(
                    "length-prefix size {width} is not 1 to 4"
                )));
            }
            Width::Prefixed(width)
        }
        ColumnType::MYSQL_TYPE_NULL => Width::Fixed(0),
        other => {
            return Err(DecodeError(format!(
                "column type {other:?} cannot appear in a row event"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NameSource;

    fn col(t: ColumnType, meta: &[u8]) -> ColumnSchema {
        ColumnSchema {
            json: false,
            visibility: Default::default(),
            name: "c".into(),
            col_type: t,
            meta: meta.to_vec(),
            unsigned: false,
            charset: 45,
            labels: vec![],
        }
    }

    #[test]
    fn a_partial_json_update_keeps_its_diffs_for_the_reader_to_apply() {
        // UPDATE t SET j = JSON_REPLACE(j, '$.a', 2) on (id INT, j JSON)
        // with binlog_row_image=FULL and binlog_row_value_options=PARTIAL_JSON.
        let t = table(vec![
            col(ColumnType::MYSQL_TYPE_LONG, &[]),
            col(ColumnType::MYSQL_TYPE_JSON, &[4]),
        ]);
        // {"a":1} in MySQL binary JSON: a small object with one key.
        let doc = [0x00, 1, 0, 12, 0, 11, 0, 1, 0, 0x05, 1, 0, b'a'];
        let diffs = [0, 3, b'$', b'.', b'a', 3, 0x05, 2, 0];
        let mut data = vec![0, 1, 0, 0, 0, doc.len() as u8, 0, 0, 0];
        data.extend_from_slice(&doc);
        // After image: value options (PARTIAL_JSON_UPDATES), partial bits
        // (the one JSON column), null bitmap, id, diff vector.
        data.extend_from_slice(&[1, 1, 0, 1, 0, 0, 0, diffs.len() as u8, 0, 0, 0]);
        data.extend_from_slice(&diffs);
        let rows =
            split_rows(&data, &t, Images::BothPartial, &[true, true], &[true, true]).unwrap();
        assert_eq!(rows.len(), 1);
        let (before, after) = (rows[0].0.as_ref().unwrap(), rows[0].1.as_ref().unwrap());
        let Cell::Diff { start, end } = after.cells[1] else {
            panic!("the JSON column holds diffs: {:?}", after.cells[1]);
        };
        let new = crate::source::jsondiff::apply(
            before.cell(1).unwrap(),
            &after.buf[start as usize..end as usize],
        )
        .unwrap();
        assert_eq!(String::from_utf8(new).unwrap(), r#"{"a":2}"#);
        // Without the PARTIAL_JSON_UPDATES option the after image is whole.
        let mut whole = vec![0, 1, 0, 0, 0, doc.len() as u8, 0, 0, 0];
        whole.extend_from_slice(&doc);
        whole.extend_from_slice(&[0, 0, 1, 0, 0, 0, doc.len() as u8, 0, 0, 0]);
        whole.extend_from_slice(&doc);
        let rows = split_rows(
            &whole,
            &t,
            Images::BothPartial,
            &[true, true],
            &[true, true],
        )
        .unwrap();
        assert!(matches!(
            rows[0].1.as_ref().unwrap().cells[1],
            Cell::Data { .. }
        ));
    }

    fn table(cols: Vec<ColumnSchema>) -> TableSchema {
        TableSchema {
            database: "d".into(),
            table: "t".into(),
            columns: cols,
            primary_key: vec![],
            names_from: NameSource::TableMap,
            rendered: Default::default(),
        }
    }

    /// The one-pass split of whole images finds the cells the general way
    /// finds, for any mix of NULLs and lengths, and leaves a row cut short
    /// to the general way (which names the column).
    #[test]
    fn whole_images_split_as_the_general_way_splits_them() {
        let t = table(vec![
            col(ColumnType::MYSQL_TYPE_LONG, &[]),
            col(ColumnType::MYSQL_TYPE_VARCHAR, &[0x2c, 0x01]),
            col(ColumnType::MYSQL_TYPE_DATETIME2, &[3]),
            col(ColumnType::MYSQL_TYPE_DOUBLE, &[8]),
            col(ColumnType::MYSQL_TYPE_BLOB, &[2]),
            col(ColumnType::MYSQL_TYPE_TINY, &[]),
            col(ColumnType::MYSQL_TYPE_VARCHAR, &[20, 0]),
            col(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[10, 2]),
            col(ColumnType::MYSQL_TYPE_SHORT, &[]),
        ]);
        let widths: Vec<_> = t.columns.iter().map(width).collect();
        let fast = Layout::new(&t, widths.clone());
        let general = Layout {
            table: &t,
            widths,
            known: None,
        };
        let all = vec![true; t.columns.len()];
        let mut x: u64 = 7;
        let mut data = Vec::new();
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nulls = (x & 0x1ff) as u16;
            data.extend_from_slice(&nulls.to_le_bytes());
            for (k, c) in t.columns.iter().enumerate() {
                if nulls & (1 << k) != 0 {
                    continue;
                }
                let len = (x >> (k * 3)) as usize % 40;
                match width(c).unwrap() {
                    Width::Fixed(n) => data.extend(std::iter::repeat_n(k as u8, n)),
                    Width::Prefixed(w) => {
                        data.extend_from_slice(&(len as u32).to_le_bytes()[..w]);
                        data.extend(std::iter::repeat_n(b'v', len));
                    }
                }
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut at_a, mut at_b, mut rows) = (0, 0, 0);
        while at_a < data.len() {
            let ra = fast
                .split(&data, &mut at_a, &all, true, false, &mut a)
                .unwrap();
            let rb = general
                .split(&data, &mut at_b, &all, true, false, &mut b)
                .unwrap();
            assert_eq!((ra, at_a), (rb, at_b));
            rows += 1;
        }
        assert_eq!(rows, 300);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        for cut in [1, 5, data.len() / 2 + 3] {
            let short = &data[..data.len() - cut];
            let (mut at_a, mut at_b) = (0, 0);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ea = loop {
                if let Err(e) = fast.split(short, &mut at_a, &all, true, false, &mut a) {
                    break e;
                }
            };
            let eb = loop {
                if let Err(e) = general.split(short, &mut at_b, &all, true, false, &mut b) {
                    break e;
                }
            };
            assert_eq!(ea, eb);
            assert!(ea.0.contains("column c"), "{ea}");
        }
    }

    #[test]
    fn decimal_sizes_match_mysql() {
        assert_eq!(decimal_size(10, 2), 5);
        assert_eq!(decimal_size(65, 30), 30);
        assert_eq!(decimal_size(18, 9), 8);
        assert_eq!(decimal_size(1, 0), 1);
    }

    #[test]
    fn splits_nulls_and_variable_length_cells() {
        let t = table(vec![
            col(ColumnType::MYSQL_TYPE_LONG, &[]),
            col(ColumnType::MYSQL_TYPE_VARCHAR, &[200, 0]),
            col(ColumnType::MYSQL_TYPE_LONG, &[]),
        ]);
        // null bitmap: column 3 NULL; int 7; varchar "hi"
        let data = [0b100, 7, 0, 0, 0, 2, b'h', b'i'];
        let rows = split_rows(&data, &t, Images::After, &[], &[true, true, true]).unwrap();
        assert_eq!(rows.len(), 1);
        let img = rows[0].1.as_ref().unwrap();
        assert_eq!(img.cell(0), Some(&[7u8, 0, 0, 0][..]));
        assert_eq!(img.cell(1), Some(&b"hi"[..]));
        assert!(matches!(img.cells[2], Cell::Null));
    }

    #[test]
    fn truncated_data_is_an_error_naming_the_column() {
        let t = table(vec![col(ColumnType::MYSQL_TYPE_VARCHAR, &[200, 0])]);
        let e = split_rows(&[0, 9, b'x'], &t, Images::After, &[], &[true]).unwrap_err();
        assert!(e.0.contains("d.t column c"), "{e}");
        let e = split_rows(
            &[0, 1, 2],
            &table(vec![col(ColumnType::MYSQL_TYPE_BLOB, &[7])]),
            Images::After,
            &[],
            &[true],
        )
        .unwrap_err();
        assert!(e.0.contains("length-prefix"), "{e}");
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let t = table(vec![
            col(ColumnType::MYSQL_TYPE_LONGLONG, &[]),
            col(ColumnType::MYSQL_TYPE_BLOB, &[4]),
            col(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[65, 30]),
            col(ColumnType::MYSQL_TYPE_STRING, &[0xfe, 0xff]),
        ]);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = split_rows(&data, &t, Images::Both, &[true; 4], &[true; 4]);
        }
    }
}
