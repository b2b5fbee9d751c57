//! What each table looks like: column names, primary key, signedness,
//! character sets and ENUM/SET labels.
//!
//! Row events carry values but not names. The table map's optional metadata
//! (`binlog_row_metadata=FULL`) is exact at the event's point in time, so it
//! wins. Without it, information_schema is read once per table and again
//! after each DDL; the log says that history before a DDL may be misnamed.

pub use crate::event::column::real_type;
use std::collections::HashMap;
use std::sync::Arc;

use mysql::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::Conn;

use super::Target;
use crate::event::{ColumnSchema, NameSource, TableSchema};
use crate::filter::ColumnFilter;

use super::history::follow::{Follower, OnMismatch, Refusal};
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
    /// The schema history, when the reader follows one (a live pipeline;
    /// `replay` with `--schema-from`): names come from it, and every table
    /// map is checked against it.
    follower: Option<Follower>,
    on_mismatch: OnMismatch,
    /// Tables already said to go positional (`schema.on_mismatch`).
    positional: std::collections::HashSet<(String, String)>,
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
            follower: None,
            on_mismatch: OnMismatch::Fail,
            positional: Default::default(),
        }
    }

    /// Names and checks every table map from now on with `follower`.
    pub fn follow(&mut self, follower: Follower, on_mismatch: OnMismatch) {
        self.follower = Some(follower);
        self.on_mismatch = on_mismatch;
    }

    /// Gives up the history followed.
    pub fn take_follower(&mut self) -> Option<Follower> {
        self.by_id.clear();
        self.follower.take()
    }

    /// The history followed, if any.
    pub fn follower(&self) -> Option<&Follower> {
        self.follower.as_ref()
    }

    pub fn follower_mut(&mut self) -> Option<&mut Follower> {
        self.follower.as_mut()
    }

    /// Forgets the schemas of table ids: after a DDL the history changed,
    /// a table map must be checked again.
    pub fn forget_ids(&mut self) {
        self.by_id.clear();
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

    /// Records the schema a table map at `at` describes and returns it.
    pub fn on_table_map(
        &mut self,
        tme: &TableMapEvent<'_>,
        target: Option<&Target>,
        at: (&str, u64),
    ) -> Result<Arc<TableSchema>, SourceError> {
        let id = tme.table_id();
        let database = tme.database_name().into_owned();
        let table = tme.table_name().into_owned();
        if let Some(known) = self.by_id.get(&id) {
            if known.database == database
                && known.table == table
                && known.columns.len() as u64 == tme.columns_count()
                && (known.names_from == NameSource::TableMap
                    || known.names_from == NameSource::History)
            {
                return Ok(known.clone());
            }
        }
        let mut schema = from_table_map(tme, database, table)?;
        if let Some(f) = &self.follower {
            match f.resolve(&schema, at) {
                Ok(None) => {}
                Ok(Some(held)) if schema.names_from == NameSource::TableMap => {
                    // The binlog names its columns: only what it cannot
                    // say (MariaDB's JSON is a checked LONGTEXT).
                    for (m, h) in schema.columns.iter_mut().zip(&held.columns) {
                        m.json = h.json;
                    }
                }
                Ok(Some(mut held)) => {
                    // The binlog's own type metadata, the history's names,
                    // keys, signedness, charsets and labels.
                    for (h, m) in held.columns.iter_mut().zip(&schema.columns) {
                        h.col_type = m.col_type;
                        h.meta.clone_from(&m.meta);
                        if m.charset != 0 {
                            h.charset = m.charset;
                        }
                    }
                    schema = held;
                }
                Err(refusal) => {
                    let key = (schema.database.clone(), schema.table.clone());
                    let position = format!("{}:{}", at.0, at.1);
                    if self.on_mismatch == OnMismatch::Fail {
                        return Err(match refusal {
                            Refusal::Drift(difference) => SourceError::SchemaDrift {
                                table: format!("{}.{}", key.0, key.1),
                                position,
                                difference,
                            },
                            Refusal::Unknown(why) => SourceError::SchemaUnknown {
                                table: format!("{}.{}", key.0, key.1),
                                position,
                                why,
                            },
                        });
                    }
                    if self.positional.insert(key) {
                        let why = match refusal {
                            Refusal::Drift(d) | Refusal::Unknown(d) => d,
                        };
                        log::warn!(
                            "{}.{} at {position}: {why}; its rows go out with positional column names (schema.on_mismatch=positional)",
                            schema.database,
                            schema.table
                        );
                    }
                }
            }
        } else if let Some(target) = target {
            if schema.names_from == NameSource::Positional {
                self.fill_from_catalog(&mut schema, target)?;
            }
            if schema.columns.iter().any(maybe_mariadb_json) {
                self.mark_json(&mut schema, target)?;
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

    /// Reads `key`'s definition from the server again into the history
    /// followed (`schema.on_unparsed_ddl = refresh`).
    pub fn refresh(&mut self, target: &Target, key: (String, String)) -> Result<(), SourceError> {
        if self.catalog.is_none() {
            self.catalog = Some(super::connect(target)?);
        }
        let conn = self.catalog.as_mut().expect("connected");
        let mut read =
            super::history::catalog::read(conn, target, &|d, t| d == key.0 && t == key.1)?;
        let table = read.tables.remove(&key);
        if let Some(f) = self.follower.as_mut() {
            f.refreshed(key, table);
        }
        self.by_id.clear();
        Ok(())
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
    fn mark_json(&mut self, schema: &mut TableSchema, target: &Target) -> Result<(), SourceError> {
        let key = (schema.database.clone(), schema.table.clone());
        if !self.json_columns.contains_key(&key) {
            if self.catalog.is_none() {
                self.catalog = Some(super::connect(target)?);
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
        target: &Target,
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
                self.catalog = Some(super::connect(target)?);
            }
            let conn = self.catalog.as_mut().expect("connected");
            let rows: Vec<(String, String, Option<String>, String)> = conn
                .exec(
                    "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLUMN_KEY \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                     ORDER BY ORDINAL_POSITION",
                    (&key.0, &key.1),
                )
                .map_err(|e| classify(target, "reading information_schema.COLUMNS", e))?;
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
pub(crate) fn parse_labels(column_type: &str) -> Vec<String> {
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
        rendered: Default::default(),
    })
}

/// ENUM and SET are logged as MYSQL_TYPE_STRING with the real type in the
/// first metadata byte.
/// A LONGTEXT (BLOB type, 4 length bytes, not binary): what MariaDB's JSON is.
fn maybe_mariadb_json(col: &ColumnSchema) -> bool {
    col.col_type == ColumnType::MYSQL_TYPE_BLOB && col.meta.first() == Some(&4) && col.charset != 63
}

/// The column a `json_valid(`name`)` CHECK clause names.
pub(crate) fn json_valid_column(clause: &str) -> Option<String> {
    let rest = clause.trim().strip_prefix("json_valid(`")?;
    let (name, tail) = rest.split_once('`')?;
    (tail.trim() == ")").then(|| name.replace("``", "`"))
}

fn is_enum_or_set(col: &ColumnSchema) -> bool {
    matches!(
        real_type(col),
        ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET
    )
}

/// A table as information_schema describes it, for a snapshot: the schema
/// its table map would give (types, metadata, names, key, charsets,
/// labels), and the key its chunks are read by.
pub struct CatalogTable {
    pub schema: TableSchema,
    /// The index chunks follow (`PRIMARY`, or a unique key on NOT NULL
    /// columns) and its columns' indexes; `None`: no usable key.
    pub key: Option<(String, Vec<usize>)>,
    /// information_schema.TABLES' row estimate.
    pub estimate: u64,
}

/// Reads `database.table` from information_schema; `None` when it does not
/// exist (dropped since it was asked for).
pub fn from_catalog(
    conn: &mut Conn,
    target: &Target,
    database: &str,
    table: &str,
) -> Result<Option<CatalogTable>, SourceError> {
    let q = |what: &str| {
        let what = what.to_string();
        move |e| classify(target, &what, e)
    };
    let rows: Vec<mysql::Row> = conn
        .exec(
            "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, \
             c.DATETIME_PRECISION, c.CHARACTER_OCTET_LENGTH, co.ID, c.COLUMN_KEY, c.IS_NULLABLE \
             FROM information_schema.COLUMNS c \
             LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = c.COLLATION_NAME \
             WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION",
            (database, table),
        )
        .map_err(q("reading information_schema.COLUMNS"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let text = |r: &mysql::Row, i: usize| -> String {
        match r.as_ref(i) {
            Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        }
    };
    let num = |r: &mysql::Row, i: usize| -> u64 {
        match r.as_ref(i) {
            Some(mysql::Value::Int(n)) => *n as u64,
            Some(mysql::Value::UInt(n)) => *n,
            Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).parse().unwrap_or(0),
            _ => 0,
        }
    };
    let mut columns = Vec::with_capacity(rows.len());
    let mut not_null = Vec::with_capacity(rows.len());
    for r in &rows {
        let name = text(r, 0);
        let data_type = text(r, 1).to_ascii_lowercase();
        let column_type = text(r, 2);
        let lower = column_type.to_ascii_lowercase();
        let collation = num(r, 7) as u16;
        let octets = num(r, 6);
        let (col_type, meta, charset) =
            catalog_type(&data_type, &lower, num(r, 3), num(r, 4), num(r, 5), octets, collation)
                .ok_or_else(|| SourceError::Query {
                    what: format!("snapshot of {database}.{table}"),
                    detail: format!(
                        "column {name} has type {column_type}, which binlog2kafka cannot read by SELECT yet; leave the table out of the snapshot (filter.exclude) or out of the request"
                    ),
                })?;
        not_null.push(text(r, 9) == "NO");
        columns.push(ColumnSchema {
            labels: parse_labels(&column_type),
            unsigned: lower.contains("unsigned"),
            name,
            col_type,
            meta,
            charset,
            json: false,
            visibility: Default::default(),
        });
    }
    // MariaDB JSON: a LONGTEXT with a json_valid CHECK.
    if columns.iter().any(maybe_mariadb_json) {
        let clauses: Vec<String> = conn
            .exec(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                (database, table),
            )
            .unwrap_or_default();
        let names: Vec<String> = clauses
            .iter()
            .filter_map(|c| json_valid_column(c))
            .collect();
        for col in columns.iter_mut() {
            col.json = maybe_mariadb_json(col) && names.contains(&col.name);
        }
    }
    for col in columns.iter_mut() {
        col.visibility = target
            .settings
            .columns
            .visibility(database, table, &col.name);
    }
    // Indexes: (name, non_unique, columns in order, any prefix part).
    let stats: Vec<(String, u64, String, Option<u64>)> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (database, table),
        )
        .map_err(q("reading information_schema.STATISTICS"))?;
    let mut indexes: Vec<(String, bool, Vec<usize>, bool)> = Vec::new();
    for (index, non_unique, column, sub_part) in stats {
        let at = columns.iter().position(|c| c.name == column);
        match indexes.iter_mut().find(|(n, ..)| *n == index) {
            Some((_, _, cols, usable)) => {
                *usable &= at.is_some() && sub_part.is_none();
                cols.extend(at);
            }
            None => indexes.push((
                index,
                non_unique == 0,
                at.into_iter().collect(),
                at.is_some() && sub_part.is_none(),
            )),
        }
    }
    let primary: Vec<usize> = indexes
        .iter()
        .find(|(n, ..)| n == "PRIMARY")
        .map(|(_, _, c, _)| c.clone())
        .unwrap_or_default();
    let key = indexes
        .iter()
        .find(|(n, _, _, usable)| n == "PRIMARY" && *usable)
        .or_else(|| {
            indexes
                .iter()
                .filter(|(_, unique, cols, usable)| {
                    *unique && *usable && cols.iter().all(|&i| not_null[i])
                })
                .min_by_key(|(_, _, cols, _)| cols.len())
        })
        .map(|(n, _, c, _)| (n.clone(), c.clone()));
    let estimate: Option<u64> = conn
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (database, table),
        )
        .map_err(q("reading information_schema.TABLES"))?
        .flatten();
    Ok(Some(CatalogTable {
        schema: TableSchema {
            database: database.to_string(),
            table: table.to_string(),
            columns,
            primary_key: primary,
            names_from: NameSource::InformationSchema,
            rendered: Default::default(),
        },
        key,
        estimate: estimate.unwrap_or(0),
    }))
}

/// The binlog type, table-map metadata and charset of a column, from its
/// information_schema description; `None` for a type not handled.
pub fn catalog_type(
    data_type: &str,
    column_type: &str,
    precision: u64,
    scale: u64,
    fsp: u64,
    octets: u64,
    collation: u16,
) -> Option<(ColumnType, Vec<u8>, u16)> {
    use ColumnType as T;
    let text_charset = if collation == 0 { 63 } else { collation };
    let blob = |n: u8| Some((T::MYSQL_TYPE_BLOB, vec![n], text_charset));
    let len = octets as usize;
    Some(match data_type {
        "tinyint" => (T::MYSQL_TYPE_TINY, vec![], 0),
        "smallint" => (T::MYSQL_TYPE_SHORT, vec![], 0),
        "mediumint" => (T::MYSQL_TYPE_INT24, vec![], 0),
        "int" | "integer" => (T::MYSQL_TYPE_LONG, vec![], 0),
        "bigint" => (T::MYSQL_TYPE_LONGLONG, vec![], 0),
        "float" => (T::MYSQL_TYPE_FLOAT, vec![4], 0),
        "double" | "real" | "double precision" => (T::MYSQL_TYPE_DOUBLE, vec![8], 0),
        "decimal" | "numeric" => (
            T::MYSQL_TYPE_NEWDECIMAL,
            vec![precision as u8, scale as u8],
            0,
        ),
        "year" => (T::MYSQL_TYPE_YEAR, vec![], 0),
        "date" => (T::MYSQL_TYPE_DATE, vec![], 0),
        "datetime" => (T::MYSQL_TYPE_DATETIME2, vec![fsp as u8], 0),
        "timestamp" => (T::MYSQL_TYPE_TIMESTAMP2, vec![fsp as u8], 0),
        "time" => (T::MYSQL_TYPE_TIME2, vec![fsp as u8], 0),
        "bit" => (
            T::MYSQL_TYPE_BIT,
            vec![(precision % 8) as u8, (precision / 8) as u8],
            0,
        ),
        "char" | "binary" => {
            let b0 = 0xfe ^ ((len & 0x300) >> 4) as u8;
            let charset = if data_type == "binary" {
                63
            } else {
                text_charset
            };
            (T::MYSQL_TYPE_STRING, vec![b0, (len & 0xff) as u8], charset)
        }
        "varchar" | "varbinary" => {
            let charset = if data_type == "varbinary" {
                63
            } else {
                text_charset
            };
            (
                T::MYSQL_TYPE_VARCHAR,
                vec![(len & 0xff) as u8, (len >> 8) as u8],
                charset,
            )
        }
        "tinytext" | "tinyblob" => return blob(1),
        "text" | "blob" => return blob(2),
        "mediumtext" | "mediumblob" => return blob(3),
        "longtext" | "longblob" => return blob(4),
        "enum" => {
            let n = parse_labels(column_type).len();
            (
                T::MYSQL_TYPE_STRING,
                vec![T::MYSQL_TYPE_ENUM as u8, if n > 255 { 2 } else { 1 }],
                text_charset,
            )
        }
        "set" => {
            let bytes = match parse_labels(column_type).len().div_ceil(8) {
                0 | 1 => 1,
                2 => 2,
                3 => 3,
                4 => 4,
                _ => 8,
            };
            (
                T::MYSQL_TYPE_STRING,
                vec![T::MYSQL_TYPE_SET as u8, bytes],
                text_charset,
            )
        }
        "json" => (T::MYSQL_TYPE_JSON, vec![4], 63),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            (T::MYSQL_TYPE_GEOMETRY, vec![4], 63)
        }
        _ => return None,
    })
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
