//! What each table looks like: column names, primary key, signedness,
//! character sets and ENUM/SET labels.
//!
//! Row events carry values but not names. The table map's optional metadata
//! (`binlog_row_metadata=FULL`) is exact at the event's point in time, so it
//! wins. Without it, information_schema is read once per table and again
//! after each DDL; the log says that history before a DDL may be misnamed.

use std::collections::HashMap;
use std::sync::Arc;

use mysql::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::config::Config;
use crate::event::{ColumnSchema, NameSource, TableSchema};
use crate::filter::ColumnFilter;

use super::{classify, SourceError};

/// Builds schemas from table maps, keeping them by table id (MySQL reuses the
/// id for a table until its definition changes) and, for information_schema
/// lookups, by name until the next DDL.
pub struct SchemaCache {
    by_id: HashMap<u64, Arc<TableSchema>>,
    from_catalog: HashMap<(String, String), Vec<CatalogColumn>>,
    catalog: Option<Conn>,
    warned: bool,
    /// MariaDB JSON columns per table, from information_schema.
    json_columns: HashMap<(String, String), Vec<String>>,
    /// `filter.columns.*`, applied once per schema, not per row.
    columns: ColumnFilter,
}

#[derive(Debug, Clone)]
struct CatalogColumn {
    name: String,
    unsigned: bool,
    binary: bool,
    /// A collation of the column's character set, when it has one.
    collation: Option<u16>,
    primary: bool,
    labels: Vec<String>,
}

impl SchemaCache {
    pub fn new(columns: ColumnFilter) -> Self {
        SchemaCache {
            by_id: HashMap::new(),
            from_catalog: HashMap::new(),
            catalog: None,
            warned: false,
            json_columns: HashMap::new(),
            columns,
        }
    }

    /// Forgets everything learnt from information_schema: called after DDL.
    pub fn invalidate_catalog(&mut self) {
        if !self.json_columns.is_empty() {
            self.json_columns.clear();
            self.by_id.retain(|_, t| !t.columns.iter().any(|c| c.json));
        }
        if !self.from_catalog.is_empty() {
            self.from_catalog.clear();
            self.by_id
                .retain(|_, t| t.names_from != NameSource::InformationSchema);
        }
    }

    pub fn get(&self, table_id: u64) -> Option<Arc<TableSchema>> {
        self.by_id.get(&table_id).cloned()
    }

    /// Records the schema a table map describes and returns it.
    pub fn on_table_map(
        &mut self,
        tme: &TableMapEvent<'_>,
        cfg: Option<&Config>,
    ) -> Result<Arc<TableSchema>, SourceError> {
        let id = tme.table_id();
        let database = tme.database_name().into_owned();
        let table = tme.table_name().into_owned();
        if let Some(known) = self.by_id.get(&id) {
            if known.database == database
                && known.table == table
                && known.columns.len() as u64 == tme.columns_count()
                && known.names_from == NameSource::TableMap
            {
                return Ok(known.clone());
            }
        }
        let mut schema = from_table_map(tme, database, table)?;
        if let Some(cfg) = cfg {
            if schema.names_from == NameSource::Positional {
                self.fill_from_catalog(&mut schema, cfg)?;
            }
            if schema.columns.iter().any(maybe_mariadb_json) {
                self.mark_json(&mut schema, cfg)?;
            }
        }
        if !self.columns.is_empty() {
            for col in schema.columns.iter_mut() {
                col.visibility =
                    self.columns
                        .visibility(&schema.database, &schema.table, &col.name);
            }
        }
        let schema = Arc::new(schema);
        self.by_id.insert(id, schema.clone());
        Ok(schema)
    }

    /// Drops the information_schema connection: after a failover it would
    /// point at the old server.
    pub fn reset_catalog(&mut self) {
        self.catalog = None;
    }

    /// Marks MariaDB JSON columns: LONGTEXTs whose CHECK is `json_valid`.
    /// Asked once per table (until the next DDL), and only for tables with
    /// a LONGTEXT column. A server without CHECK_CONSTRAINTS.TABLE_NAME
    /// (MySQL, whose JSON is a type of its own) simply has none.
    fn mark_json(&mut self, schema: &mut TableSchema, cfg: &Config) -> Result<(), SourceError> {
        let key = (schema.database.clone(), schema.table.clone());
        if !self.json_columns.contains_key(&key) {
            if self.catalog.is_none() {
                self.catalog = Some(super::connect(cfg)?);
            }
            let conn = self.catalog.as_mut().expect("connected");
            let clauses: Vec<String> = conn
                .exec(
                    "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                    (&key.0, &key.1),
                )
                .unwrap_or_else(|e| {
                    log::debug!("no CHECK constraints for {}.{}: {e}", key.0, key.1);
                    Vec::new()
                });
            let names = clauses
                .iter()
                .filter_map(|c| json_valid_column(c))
                .collect();
            self.json_columns.insert(key.clone(), names);
        }
        let names = &self.json_columns[&key];
        for col in schema.columns.iter_mut() {
            col.json = maybe_mariadb_json(col) && names.contains(&col.name);
        }
        Ok(())
    }

    fn fill_from_catalog(
        &mut self,
        schema: &mut TableSchema,
        cfg: &Config,
    ) -> Result<(), SourceError> {
        if !self.warned {
            log::warn!(
                "the server does not write column names into the binlog (binlog_row_metadata is not FULL); reading them from information_schema, so rows written before a later ALTER TABLE may be misnamed. Set binlog_row_metadata=FULL (MySQL 8.0+, MariaDB 10.5+) for exact names"
            );
            self.warned = true;
        }
        let key = (schema.database.clone(), schema.table.clone());
        if !self.from_catalog.contains_key(&key) {
            if self.catalog.is_none() {
                self.catalog = Some(super::connect(cfg)?);
            }
            let conn = self.catalog.as_mut().expect("connected");
            let rows: Vec<(String, String, Option<String>, String)> = conn
                .exec(
                    "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLUMN_KEY \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                     ORDER BY ORDINAL_POSITION",
                    (&key.0, &key.1),
                )
                .map_err(|e| classify(cfg, "reading information_schema.COLUMNS", e))?;
            let cols = rows
                .into_iter()
                .map(|(name, ctype, charset, ckey)| {
                    let lower = ctype.to_ascii_lowercase();
                    CatalogColumn {
                        name,
                        unsigned: lower.contains("unsigned"),
                        binary: charset.is_none()
                            && (lower.contains("blob") || lower.contains("binary")),
                        collation: charset
                            .as_deref()
                            .and_then(crate::charset::collation_for_name),
                        primary: ckey == "PRI",
                        labels: parse_labels(&ctype),
                    }
                })
                .collect();
            self.from_catalog.insert(key.clone(), cols);
        }
        let cols = &self.from_catalog[&key];
        if cols.len() != schema.columns.len() {
            log::warn!(
                "{}.{}: the binlog has {} columns but information_schema has {} (the table changed since); columns stay positional",
                schema.database,
                schema.table,
                schema.columns.len(),
                cols.len()
            );
            return Ok(());
        }
        schema.primary_key.clear();
        for (i, (col, cat)) in schema.columns.iter_mut().zip(cols).enumerate() {
            col.name = cat.name.clone();
            col.unsigned = cat.unsigned;
            if cat.binary {
                col.charset = 63;
            } else if let (0, Some(id)) = (col.charset, cat.collation) {
                col.charset = id;
            }
            col.labels = cat.labels.clone();
            if cat.primary {
                schema.primary_key.push(i);
            }
        }
        schema.names_from = NameSource::InformationSchema;
        Ok(())
    }
}

impl Default for SchemaCache {
    fn default() -> Self {
        Self::new(ColumnFilter::parse("", "").expect("empty lists parse"))
    }
}

/// `enum('a','b')` / `set('x','y')` → labels; others → empty.
fn parse_labels(column_type: &str) -> Vec<String> {
    let lower = column_type.to_ascii_lowercase();
    if !(lower.starts_with("enum(") || lower.starts_with("set(")) {
        return Vec::new();
    }
    let inner = &column_type
        [column_type.find('(').unwrap() + 1..column_type.rfind(')').unwrap_or(column_type.len())];
    let mut labels = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('\'', false) => quoted = true,
            ('\'', true) if chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            ('\'', true) => {
                quoted = false;
                labels.push(std::mem::take(&mut cur));
            }
            (_, true) => cur.push(c),
            _ => {}
        }
    }
    labels
}

/// Everything the table map itself says.
pub fn from_table_map(
    tme: &TableMapEvent<'_>,
    database: String,
    table: String,
) -> Result<TableSchema, SourceError> {
    let bad = |detail: String| SourceError::Corrupt {
        position: format!("table map of {database}.{table}"),
        detail,
    };
    let n = tme.columns_count() as usize;
    let mut columns = Vec::with_capacity(n);
    for i in 0..n {
        let col_type = tme
            .get_column_type(i)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad(format!("no type for column {i}")))?;
        columns.push(ColumnSchema {
            name: format!("@{}", i + 1),
            col_type,
            meta: tme.get_column_metadata(i).unwrap_or(&[]).to_vec(),
            unsigned: false,
            charset: 0,
            labels: Vec::new(),
            json: false,
            visibility: Default::default(),
        });
    }
    let meta =
        OptionalMetaExtractor::new(tme.iter_optional_meta()).map_err(|e| bad(e.to_string()))?;
    let mut names = 0;
    for (col, name) in columns.iter_mut().zip(meta.iter_column_name()) {
        col.name = name.map_err(|e| bad(e.to_string()))?.name().into_owned();
        names += 1;
    }
    let mut signedness = meta.iter_signedness();
    let mut charsets = meta.iter_charset();
    let mut enum_set_charsets = meta.iter_enum_and_set_charset();
    for col in columns.iter_mut() {
        if col.col_type.is_numeric_type() {
            col.unsigned = signedness.next().unwrap_or(false);
        }
        // ENUM and SET travel as type STRING but have their own charset
        // list: test them first, or every later text column takes the
        // charset of the one before it.
        if is_enum_or_set(col) {
            col.charset = enum_set_charsets
                .next()
                .transpose()
                .map_err(|e| bad(e.to_string()))?
                .unwrap_or(0);
        } else if col.col_type.is_character_type() {
            col.charset = charsets
                .next()
                .transpose()
                .map_err(|e| bad(e.to_string()))?
                .unwrap_or(0);
        }
    }
    let primary_key = meta
        .iter_primary_key()
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .map(|i| i as usize)
        .filter(|i| *i < n)
        .collect();
    // ENUM and SET labels come in column order, one list per such column.
    let mut enum_lists = Vec::new();
    let mut set_lists = Vec::new();
    for field in tme.iter_optional_meta() {
        match field.map_err(|e| bad(e.to_string()))? {
            OptionalMetadataField::EnumStrValue(v) => {
                for labels in v.iter_values() {
                    let labels = labels.map_err(|e| bad(e.to_string()))?;
                    enum_lists.push(
                        labels
                            .values()
                            .iter()
                            .map(|l| String::from_utf8_lossy(l.value_raw()).into_owned())
                            .collect::<Vec<_>>(),
                    );
                }
            }
            OptionalMetadataField::SetStrValue(v) => {
                for labels in v.iter_values() {
                    let labels = labels.map_err(|e| bad(e.to_string()))?;
                    set_lists.push(
                        labels
                            .values()
                            .iter()
                            .map(|l| String::from_utf8_lossy(l.value_raw()).into_owned())
                            .collect::<Vec<_>>(),
                    );
                }
            }
            _ => {}
        }
    }
    let (mut enums, mut sets) = (enum_lists.into_iter(), set_lists.into_iter());
    for col in columns.iter_mut() {
        match real_type(col) {
            ColumnType::MYSQL_TYPE_ENUM => col.labels = enums.next().unwrap_or_default(),
            ColumnType::MYSQL_TYPE_SET => col.labels = sets.next().unwrap_or_default(),
            _ => {}
        }
    }
    Ok(TableSchema {
        database,
        table,
        columns,
        primary_key,
        names_from: if names == n && n > 0 {
            NameSource::TableMap
        } else {
            NameSource::Positional
        },
    })
}

/// ENUM and SET are logged as MYSQL_TYPE_STRING with the real type in the
/// first metadata byte.
/// A LONGTEXT (BLOB type, 4 length bytes, not binary): what MariaDB's JSON is.
fn maybe_mariadb_json(col: &ColumnSchema) -> bool {
    col.col_type == ColumnType::MYSQL_TYPE_BLOB && col.meta.first() == Some(&4) && col.charset != 63
}

/// The column a `json_valid(`name`)` CHECK clause names.
fn json_valid_column(clause: &str) -> Option<String> {
    let rest = clause.trim().strip_prefix("json_valid(`")?;
    let (name, tail) = rest.split_once('`')?;
    (tail.trim() == ")").then(|| name.replace("``", "`"))
}

pub fn real_type(col: &ColumnSchema) -> ColumnType {
    if col.col_type == ColumnType::MYSQL_TYPE_STRING {
        if let Some(&b) = col.meta.first() {
            if b == ColumnType::MYSQL_TYPE_ENUM as u8 {
                return ColumnType::MYSQL_TYPE_ENUM;
            }
            if b == ColumnType::MYSQL_TYPE_SET as u8 {
                return ColumnType::MYSQL_TYPE_SET;
            }
        }
    }
    col.col_type
}

fn is_enum_or_set(col: &ColumnSchema) -> bool {
    matches!(
        real_type(col),
        ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_and_set_labels_are_parsed_from_column_type() {
        assert_eq!(
            parse_labels("enum('a','b c','it''s')"),
            vec!["a", "b c", "it's"]
        );
        assert_eq!(parse_labels("set('x','y')"), vec!["x", "y"]);
        assert!(parse_labels("int(11) unsigned").is_empty());
    }
}
