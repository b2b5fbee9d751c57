//! A table's three schemas as Debezium's MySQL connector registers them
//! (`<prefix>.<db>.<table>.Key`, `.Value`, `.Envelope` with
//! `io.debezium.connector.mysql.Source` and the `event.block` transaction
//! block), and a row change written in them.

use serde_json::json;

use super::binary;
use super::columns::{self, Kind, Unwritable};
use super::schema::{full_name, Field, Record, Schema};
use crate::event::{RowChange, RowImage, RowKind, SnapshotPart, TableSchema};
use crate::filter::Visibility;
use crate::format::value::Style;
use crate::format::Context;

/// A table's Avro shape, made once per table definition.
#[derive(Debug, Clone)]
pub struct TableAvro {
    /// (column index, shape, in the key) of every shown column.
    columns: Vec<(usize, Kind, bool)>,
    pub key: Option<Schema>,
    pub envelope: Schema,
}

/// `connect.name`, `connect.version` as Debezium sets them on a record.
fn record(name: String, fields: Vec<Field>, version: Option<i64>) -> Schema {
    let mut props = Vec::new();
    if let Some(v) = version {
        props.push(("connect.version", json!(v)));
    }
    props.push(("connect.name", json!(name.clone())));
    Schema::Record(Record {
        name,
        fields,
        props,
    })
}

fn field(name: &str, schema: Schema) -> Field {
    Field {
        name: name.into(),
        schema,
    }
}

fn source_schema() -> Schema {
    let s = || Schema::String(Vec::new());
    let l = || Schema::Long(Vec::new());
    let snapshot = Schema::String(vec![
        ("connect.version", json!(1)),
        (
            "connect.parameters",
            json!({"allowed": "true,last,false,incremental"}),
        ),
        ("connect.default", json!("false")),
        ("connect.name", json!("io.debezium.data.Enum")),
    ]);
    record(
        "io.debezium.connector.mysql.Source".into(),
        vec![
            field("version", s()),
            field("connector", s()),
            field("name", s()),
            field("ts_ms", l()),
            field("snapshot", snapshot.optional()),
            field("db", s()),
            field("sequence", s().optional()),
            field("table", s().optional()),
            field("server_id", l()),
            field("gtid", s().optional()),
            field("file", s()),
            field("pos", l()),
            field("row", Schema::Int(Vec::new())),
            field("thread", l().optional()),
            field("query", s().optional()),
        ],
        None,
    )
}

fn transaction_schema() -> Schema {
    record(
        "event.block".into(),
        vec![
            field("id", Schema::String(Vec::new())),
            field("total_order", Schema::Long(Vec::new())),
            field("data_collection_order", Schema::Long(Vec::new())),
        ],
        Some(1),
    )
}

impl TableAvro {
    /// `prefix`: the topic prefix Debezium calls the logical server name
    /// (here the pipeline's name).
    pub fn new(prefix: &str, t: &TableSchema) -> TableAvro {
        let base = [prefix, &t.database, &t.table];
        let columns: Vec<(usize, Kind, bool)> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.visibility != Visibility::Excluded)
            .map(|(i, c)| {
                // A masked column is the text of its hash.
                let kind = if c.visibility == Visibility::Masked {
                    Kind::Text
                } else {
                    columns::kind(c)
                };
                (i, kind, t.primary_key.contains(&i))
            })
            .collect();
        let col_field = |(i, kind, in_key): &(usize, Kind, bool)| {
            let s = columns::schema(kind);
            field(
                &super::schema::adjust(&t.columns[*i].name),
                if *in_key { s } else { s.optional() },
            )
        };
        let key = (!t.primary_key.is_empty()).then(|| {
            let fields = t
                .primary_key
                .iter()
                .filter_map(|i| columns.iter().find(|c| c.0 == *i))
                .map(col_field)
                .collect();
            record(full_name(&[base[0], base[1], base[2], "Key"]), fields, None)
        });
        let value = record(
            full_name(&[base[0], base[1], base[2], "Value"]),
            columns.iter().map(col_field).collect(),
            None,
        );
        let envelope = record(
            full_name(&[base[0], base[1], base[2], "Envelope"]),
            vec![
                field("before", value.clone().optional()),
                field("after", value.optional()),
                field("source", source_schema()),
                field("transaction", transaction_schema().optional()),
                field("op", Schema::String(Vec::new())),
                field("ts_ms", Schema::Long(Vec::new()).optional()),
            ],
            Some(2),
        );
        TableAvro {
            columns,
            key,
            envelope,
        }
    }

    fn write_image(
        &self,
        out: &mut Vec<u8>,
        r: &RowChange,
        img: &RowImage,
        style: &Style,
        only_key: bool,
    ) -> Result<(), Unwritable> {
        for (i, kind, in_key) in &self.columns {
            if only_key && !in_key {
                continue;
            }
            let col = &r.table.columns[*i];
            let v = if col.visibility == Visibility::Masked {
                let mut t = Vec::new();
                crate::format::maxwell::write_col(&mut t, col, Some(img), *i, style);
                match serde_json::from_slice::<serde_json::Value>(&t) {
                    Ok(serde_json::Value::String(s)) => {
                        let mut o = Vec::new();
                        binary::string(&mut o, &s);
                        Some(o)
                    }
                    _ => None,
                }
            } else if img.cell(*i).is_none()
                && !matches!(img.cells.get(*i), Some(crate::event::Cell::Json(_)))
            {
                None
            } else {
                columns::value(kind, col, img, *i, style)?
            };
            match (v, in_key) {
                (Some(v), true) => out.extend_from_slice(&v),
                (Some(v), false) => {
                    binary::branch(out, 1);
                    out.extend_from_slice(&v);
                }
                (None, false) => binary::branch(out, 0),
                (None, true) => {
                    return Err(Unwritable {
                        column: col.name.clone(),
                        why: "a key column without a value".into(),
                    })
                }
            }
        }
        Ok(())
    }

    /// The key's Avro body (`None`: a table without a primary key has a
    /// null key).
    pub fn write_key(
        &self,
        out: &mut Vec<u8>,
        r: &RowChange,
        style: &Style,
    ) -> Result<bool, Unwritable> {
        if self.key.is_none() {
            return Ok(false);
        }
        let img = match r.kind {
            RowKind::Delete => r.before.as_ref(),
            _ => r.after.as_ref().or(r.before.as_ref()),
        };
        let Some(img) = img else { return Ok(false) };
        self.write_image(out, r, img, style, true)?;
        Ok(true)
    }

    /// The envelope's Avro body.
    pub fn write_value(
        &self,
        out: &mut Vec<u8>,
        r: &RowChange,
        server_name: &str,
        style: &Style,
        ctx: &Context<'_>,
    ) -> Result<(), Unwritable> {
        for (img, absent) in [
            (&r.before, r.kind == RowKind::Insert),
            (&r.after, r.kind == RowKind::Delete),
        ] {
            match img {
                Some(img) if !absent => {
                    binary::branch(out, 1);
                    self.write_image(out, r, img, style, false)?;
                }
                _ => binary::branch(out, 0),
            }
        }
        // source
        binary::string(out, concat!("binlog2kafka-", env!("CARGO_PKG_VERSION")));
        binary::string(out, "mysql");
        binary::string(out, server_name);
        binary::long(out, r.ts as i64 * 1000);
        let snapshot = match r.snapshot {
            Some(SnapshotPart::Row(m)) => m.debezium(),
            _ => "false",
        };
        binary::branch(out, 1);
        binary::string(out, snapshot);
        binary::string(out, &r.table.database);
        binary::branch(out, 0); // sequence
        binary::branch(out, 1);
        binary::string(out, &r.table.table);
        binary::long(out, r.server_id as i64);
        match r.checkpoint.gtid.as_deref() {
            Some(g) => {
                binary::branch(out, 1);
                binary::string(out, g);
            }
            None => binary::branch(out, 0),
        }
        binary::string(out, &r.event_file);
        binary::long(out, r.event_pos as i64);
        binary::int(out, r.event_row as i32);
        match r.thread {
            Some(t) => {
                binary::branch(out, 1);
                binary::long(out, t as i64);
            }
            None => binary::branch(out, 0),
        }
        binary::branch(out, 0); // query
                                // transaction
        match ctx.txn {
            None => binary::branch(out, 0),
            Some(t) => {
                binary::branch(out, 1);
                binary::string(out, t.id);
                binary::long(out, t.total_order as i64);
                binary::long(out, t.collection_order as i64);
            }
        }
        binary::string(out, crate::format::debezium::op(r));
        binary::branch(out, 1);
        binary::long(out, ctx.now_ms);
        Ok(())
    }
}
