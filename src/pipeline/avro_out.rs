//! Avro records for the producer (`output.encoding=avro`, issue 24, not
//! wired yet): before the first row of a table definition is sent to a
//! topic, its key and value schemas are registered (a new table shape, as
//! after an ALTER, is a new version of the same subjects); the ids are
//! kept per (definition, topic), so a row costs no registry call.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{RowChange, TableSchema};
use crate::format::avro::columns::Unwritable;
use crate::format::avro::envelope::TableAvro;
use crate::format::avro::frame_header;
use crate::format::value::Style;
use crate::format::Context;
use crate::registry::{Registry, RegistryError, SubjectStrategy};

/// What the Avro output is told.
#[derive(Debug, Clone)]
pub struct Settings {
    pub registry: crate::registry::Settings,
    pub strategy: SubjectStrategy,
    /// Debezium's logical server name: the schemas' namespace prefix.
    pub server_name: String,
}

/// Why a row could not be written in Avro.
#[derive(Debug)]
pub enum AvroOutError {
    /// The registry is away (retriable), refused the credentials, or
    /// answered out of its API.
    Registry(RegistryError),
    /// The registry refused a new version of a subject whose newest
    /// version is this one (none: the subject's first).
    Refused {
        err: RegistryError,
        newest: Option<i64>,
    },
    /// A value the table's Avro type cannot hold.
    Unwritable { table: String, cause: Unwritable },
}

impl std::fmt::Display for AvroOutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AvroOutError::Registry(e) => write!(f, "{e}"),
            AvroOutError::Refused { err, newest } => match newest {
                Some(v) => write!(f, "{err} (as the version after {v})"),
                None => write!(f, "{err} (as its first version)"),
            },
            AvroOutError::Unwritable { table, cause } => write!(
                f,
                "a value of {table}.{} cannot be written in its Avro type: {}",
                cause.column, cause.why
            ),
        }
    }
}

struct Entry {
    /// Held so the definition's address, the cache key, is not reused.
    _table: Arc<TableSchema>,
    avro: TableAvro,
    key_id: Option<u32>,
    value_id: u32,
}

pub struct AvroOut {
    cfg: Settings,
    registry: Registry,
    tables: HashMap<(usize, String), Entry>,
}

impl AvroOut {
    pub fn new(cfg: Settings) -> AvroOut {
        AvroOut {
            registry: Registry::new(cfg.registry.clone()),
            cfg,
            tables: HashMap::new(),
        }
    }

    /// Registers `schema` under `subject`; a refusal names the subject's
    /// newest version.
    fn register(&mut self, subject: &str, schema: &str) -> Result<u32, AvroOutError> {
        match self.registry.register(subject, schema) {
            Ok(id) => Ok(id),
            Err(err @ RegistryError::Refused { .. }) => Err(AvroOutError::Refused {
                newest: self
                    .registry
                    .versions(subject)
                    .ok()
                    .and_then(|v| v.last().copied()),
                err,
            }),
            Err(e) => Err(AvroOutError::Registry(e)),
        }
    }

    fn entry(&mut self, table: &Arc<TableSchema>, topic: &str) -> Result<&Entry, AvroOutError> {
        let k = (Arc::as_ptr(table) as usize, topic.to_string());
        if !self.tables.contains_key(&k) {
            let avro = TableAvro::new(&self.cfg.server_name, table);
            let name = |s: &crate::format::avro::schema::Schema| match s {
                crate::format::avro::schema::Schema::Record(r) => r.name.clone(),
                _ => String::new(),
            };
            let key_id = match &avro.key {
                Some(key) => {
                    let subject = self.cfg.strategy.subject(topic, &name(key), true);
                    Some(self.register(&subject, &key.text())?)
                }
                None => None,
            };
            let subject = self
                .cfg
                .strategy
                .subject(topic, &name(&avro.envelope), false);
            let value_id = self.register(&subject, &avro.envelope.text())?;
            self.tables.insert(
                k.clone(),
                Entry {
                    _table: table.clone(),
                    avro,
                    key_id,
                    value_id,
                },
            );
        }
        Ok(&self.tables[&k])
    }

    /// Writes the row's key (when its table has a primary key: true) and
    /// value in the Confluent wire format, registering the table's schemas
    /// first when this definition is new for `topic`.
    pub fn encode(
        &mut self,
        r: &RowChange,
        topic: &str,
        style: &Style,
        ctx: &Context<'_>,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Result<bool, AvroOutError> {
        let server_name = self.cfg.server_name.clone();
        let e = self.entry(&r.table, topic)?;
        let unwritable = |cause| AvroOutError::Unwritable {
            table: format!("{}.{}", r.table.database, r.table.table),
            cause,
        };
        let mut has_key = false;
        if let Some(id) = e.key_id {
            frame_header(key, id);
            has_key = e.avro.write_key(key, r, style).map_err(unwritable)?;
            if !has_key {
                key.clear();
            }
        }
        frame_header(value, e.value_id);
        e.avro
            .write_value(value, r, &server_name, style, ctx)
            .map_err(unwritable)?;
        Ok(has_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RowKind;
    use crate::format::maxwell::tests::{change, image};

    #[test]
    fn a_table_is_registered_before_its_first_row_and_once_per_definition() {
        let answers = vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":3}",
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":4}",
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":5}",
        ];
        let (port, fake) = crate::registry::fake(answers);
        let mut out = AvroOut::new(Settings {
            registry: crate::registry::Settings {
                urls: vec![
                    crate::registry::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
                ],
                basic_auth: None,
                timeout: std::time::Duration::from_secs(5),
                tls: None,
            },
            strategy: SubjectStrategy::Topic,
            server_name: "srv".into(),
        });
        let ctx = Context {
            now_ms: 1,
            txn: None,
        };
        let style = Style::default();
        let r = change(RowKind::Insert, None, Some(image(7, Some("hi"), 3)));
        let (mut k, mut v) = (Vec::new(), Vec::new());
        assert!(out.encode(&r, "cdc", &style, &ctx, &mut k, &mut v).unwrap());
        assert_eq!(&k[..5], &[0, 0, 0, 0, 3], "the key's id");
        assert_eq!(&v[..5], &[0, 0, 0, 0, 4], "the value's id");
        // The same definition again: no registry call.
        let (mut k2, mut v2) = (Vec::new(), Vec::new());
        out.encode(&r, "cdc", &style, &ctx, &mut k2, &mut v2)
            .unwrap();
        assert_eq!((&k2, &v2), (&k, &v));
        // A new definition of the same shape: the same ids, no call.
        let same = change(RowKind::Insert, None, Some(image(8, None, 1)));
        assert!(!Arc::ptr_eq(&same.table, &r.table));
        let (mut k3, mut v3) = (Vec::new(), Vec::new());
        out.encode(&same, "cdc", &style, &ctx, &mut k3, &mut v3)
            .unwrap();
        assert_eq!((&k3[..5], &v3[..5]), (&k[..5], &v[..5]));
        // A new shape (after an ALTER): a new value version first; the key
        // is unchanged.
        let mut altered = change(RowKind::Insert, None, Some(image(9, None, 1)));
        let mut t = (*altered.table).clone();
        t.columns[1].name = "remark".into();
        altered.table = Arc::new(t);
        let (mut k4, mut v4) = (Vec::new(), Vec::new());
        out.encode(&altered, "cdc", &style, &ctx, &mut k4, &mut v4)
            .unwrap();
        assert_eq!(
            (&k4[..5], &v4[..5]),
            (&[0u8, 0, 0, 0, 3][..], &[0u8, 0, 0, 0, 5][..])
        );
        let got = fake.join().unwrap();
        assert!(
            got[0].starts_with("POST /subjects/cdc-key/versions "),
            "{}",
            got[0]
        );
        assert!(
            got[1].starts_with("POST /subjects/cdc-value/versions "),
            "{}",
            got[1]
        );
        assert!(
            got[2].starts_with("POST /subjects/cdc-value/versions ") && got[2].contains("remark"),
            "{}",
            got[2]
        );
    }
}
