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
}

impl Encoder {
    pub fn new(format: Format, style: Style, server_name: &str) -> Self {
        Encoder {
            format,
            style,
            server_name: server_name.to_string(),
            maxwell: Default::default(),
            debezium: Default::default(),
        }
    }

    /// Appends a row change's message value.
    pub fn row_value(&self, out: &mut Vec<u8>, r: &RowChange, ctx: &Context<'_>) {
        match self.format {
            Format::Maxwell => {
                maxwell::write_value_json(out, r, &self.style, &mut self.maxwell.borrow_mut())
            }
            Format::Debezium => debezium::write_value(out, r, self, ctx),
            Format::Canal => canal::write_value(out, r, &self.style, ctx),
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
