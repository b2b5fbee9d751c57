//! Encoders: a change in, a Kafka key and value out, in the format the
//! consumers already read (`output.format`).
//!
//! Every format renders column values through [`value`], so a type is
//! decoded one way; each format only decides how the value is shown
//! (Debezium's epoch days, canal's strings).

pub mod avro;
pub mod canal;
pub mod debezium;
pub mod float;
pub mod json;
pub mod maxwell;
pub mod value;
pub mod wkt;

use crate::event::{DdlChange, RowChange};
use value::Style;

/// Whether a memo's GTID is the row's: the same `Arc` (the memo holds a
/// clone, so the address cannot have been given to another), or none.
fn same_gtid(kept: &Option<std::sync::Arc<str>>, row: &Option<std::sync::Arc<str>>) -> bool {
    match (kept, row) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The message shape (`output.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Maxwell,
    Debezium,
    Canal,
}

/// A row's place in its transaction, for Debezium's `transaction` block
/// (`output.transaction_markers=true`).
#[derive(Debug, Clone, Copy)]
pub struct TxnOrder<'a> {
    pub id: &'a str,
    /// 1-based position among the transaction's rows.
    pub total_order: u64,
    /// 1-based position among the transaction's rows of the same table.
    pub collection_order: u64,
}

/// What an encoder needs beyond the change itself. `now_ms` is passed in,
/// not read from the clock, so a sample message encodes byte for byte.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now_ms: i64,
    pub txn: Option<TxnOrder<'a>>,
}

/// The configured format and its settings.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub format: Format,
    pub style: Style,
    /// Debezium's `source.name`: the pipeline's name.
    pub server_name: String,
    /// What the Maxwell format renders once for the rows of an event.
    maxwell: std::cell::RefCell<maxwell::Memo>,
    /// What the Debezium format renders once for the rows of an event.
    debezium: std::cell::RefCell<debezium::Memo>,
    /// What the canal format renders once per table.
    canal: std::cell::RefCell<canal::Memo>,
}

impl Encoder {
    pub fn new(format: Format, style: Style, server_name: &str) -> Self {
        Encoder {
            format,
            style,
            server_name: server_name.to_string(),
            maxwell: Default::default(),
            debezium: Default::default(),
            canal: Default::default(),
        }
    }

    /// Appends a row change's message value.
    pub fn row_value(&self, out: &mut Vec<u8>, r: &RowChange, ctx: &Context<'_>) {
        match self.format {
            Format::Maxwell => {
                maxwell::write_value_json(out, r, &self.style, &mut self.maxwell.borrow_mut())
            }
            Format::Debezium => debezium::write_value(out, r, self, ctx),
            Format::Canal => {
                canal::write_value(out, r, &self.style, ctx, &mut self.canal.borrow_mut())
            }
        }
    }

    /// Appends a DDL statement's message value.
    pub fn ddl_value(&self, out: &mut Vec<u8>, d: &DdlChange, now_ms: i64) {
        match self.format {
            Format::Maxwell => maxwell::write_ddl(out, d),
            Format::Debezium => debezium::write_ddl(out, d, self, now_ms),
            Format::Canal => canal::write_ddl(out, d, now_ms),
        }
    }

    /// Appends a DDL statement's message key: Debezium keys schema changes
    /// by database, the others by database and table.
    pub fn ddl_key(&self, out: &mut Vec<u8>, d: &DdlChange) {
        use json::write_str;
        out.push(b'{');
        if self.format == Format::Debezium {
            out.extend_from_slice(b"\"databaseName\":");
            write_str(out, &d.database);
        } else {
            out.extend_from_slice(b"\"database\":");
            write_str(out, &d.database);
            out.push(b',');
            out.extend_from_slice(b"\"table\":");
            write_str(out, &d.table);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::maxwell::tests::{change, image, table};
    use super::*;
    use crate::event::RowKind;

    /// Rows that differ from the one before in each thing an encoder
    /// renders once and keeps: table, kind, time, event, GTID, server,
    /// thread, snapshot mark.
    fn a_stream() -> Vec<RowChange> {
        let orders = table();
        let mut other = (*table()).clone();
        other.table = "refunds".into();
        let other = Arc::new(other);
        // Shared as the reader shares them among an event's rows.
        let file: Arc<str> = "binlog.000003".into();
        let gtid: Arc<str> = "0-1-7".into();
        let base = |kind, n: u64| {
            let (before, after) = match kind {
                RowKind::Insert => (None, Some(image(n, Some("new"), 1))),
                RowKind::Update => (Some(image(n, Some("a"), 1)), Some(image(n, Some("b"), 2))),
                RowKind::Delete => (Some(image(n, None, 3)), None),
            };
            let mut r = change(kind, before, after);
            r.table = orders.clone();
            r.event_file = file.clone();
            r.checkpoint.gtid = Some(gtid.clone());
            r
        };
        // Each change alone, between rows as they were.
        type Vary = fn(&mut RowChange);
        let changes: [(RowKind, Vary); 10] = [
            (RowKind::Update, |_| {}),
            (RowKind::Update, |r| r.table = Arc::new((*r.table).clone())),
            (RowKind::Delete, |r| r.ts += 1),
            (RowKind::Delete, |r| r.event_pos += 100),
            (RowKind::Delete, |r| {
                r.checkpoint.gtid = Some("0-1-8".into())
            }),
            (RowKind::Insert, |r| r.checkpoint.gtid = None),
            (RowKind::Insert, |r| r.server_id = 2),
            (RowKind::Insert, |r| r.thread = Some(77)),
            (RowKind::Insert, |r| r.event_file = "binlog.000004".into()),
            (RowKind::Insert, |r| {
                r.snapshot = Some(crate::event::SnapshotPart::Row(
                    crate::event::SnapshotMark::Middle,
                ))
            }),
        ];
        let mut rows = vec![base(RowKind::Insert, 0), base(RowKind::Insert, 1)];
        for (n, (kind, vary)) in changes.into_iter().enumerate() {
            let mut r = base(kind, 10 + n as u64);
            vary(&mut r);
            rows.push(r);
            rows.push(base(RowKind::Insert, 30 + n as u64));
        }
        let mut r = base(RowKind::Update, 50);
        r.table = other.clone();
        rows.push(r);
        rows
    }

    #[test]
    fn what_an_encoder_keeps_between_rows_never_changes_a_message() {
        let ctx = Context {
            now_ms: 1,
            txn: None,
        };
        for format in [Format::Maxwell, Format::Debezium, Format::Canal] {
            let kept = Encoder::new(format, Style::default(), "p");
            for (n, r) in a_stream().iter().enumerate() {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                kept.row_value(&mut a, r, &ctx);
                Encoder::new(format, Style::default(), "p").row_value(&mut b, r, &ctx);
                assert_eq!(
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b),
                    "{format:?}, row {n}"
                );
            }
        }
    }
}
