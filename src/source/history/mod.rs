//! Schema history: every captured table's definition as of the event being
//! read, so rows are named exactly even when the binlog carries no column
//! names (`binlog_row_metadata` MINIMAL, MariaDB's default NO_LOG, MySQL
//! 5.7), and a table map that disagrees with it stops the pipeline instead
//! of publishing shifted columns.
//!
//! The definitions start from a capture of information_schema
//! ([`catalog`]) and follow every DDL in the binlog ([`parse`] reads it,
//! [`History::apply`] applies it). A table map is then checked against the
//! definition ([`History::check`]): column count, types and type metadata
//! are in every table map, whatever the metadata level.
//!
//! A library without threads or connections: the reader owns one, and
//! `replay` another.

pub mod catalog;
pub mod follow;
pub mod lex;
pub mod parse;

use std::collections::BTreeMap;

use mysql::consts::ColumnType;
use serde::{Deserialize, Serialize};

use crate::event::column::real_type;
use crate::event::{ColumnSchema, NameSource, TableSchema};
use parse::{AlterOp, ColumnSpec, Ddl, Name, Place};

/// A column as the server defines it: the facts information_schema gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type, lowercased: `int`, `varchar`, `enum`, ...
    pub data_type: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unsigned: bool,
    /// DECIMAL's precision, BIT's width.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub precision: u64,
    /// DECIMAL's scale.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scale: u64,
    /// Fractional-second digits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fsp: u64,
    /// CHAR/VARCHAR in characters, BINARY/VARBINARY in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub length: u64,
    /// The character set of a text column; `None` for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// ENUM or SET labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// MariaDB's JSON: a LONGTEXT checked by `json_valid`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub json: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A table's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order.
    pub primary: Vec<String>,
    /// The default character set of columns added later.
    pub charset: String,
}

/// Everything the history holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// `(database, table)` → definition.
    pub tables: BTreeMap<(String, String), Table>,
    /// Database → its default character set.
    pub databases: BTreeMap<String, String>,
    /// `character_set_server`: the default of a new database.
    pub server_charset: String,
    /// MariaDB (JSON is a LONGTEXT there).
    pub mariadb: bool,
}

/// What a DDL did to the history.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Tables whose definition changed (created, altered, renamed to).
    pub changed: Vec<(String, String)>,
    /// Tables that are gone (dropped, renamed from).
    pub removed: Vec<(String, String)>,
    /// Tables whose new definition is not known from the statement (a
    /// copy of an unknown table, a rename from an untracked database,
    /// system versioning): to read from the server, or stop.
    pub unknown: Vec<((String, String), String)>,
}

/// The databases whose tables no pipeline captures.
pub fn is_system(db: &str) -> bool {
    matches!(
        db.to_ascii_lowercase().as_str(),
        "mysql" | "information_schema" | "performance_schema" | "sys"
    )
}

/// Character set names as the server reports them (`utf8` is `utf8mb3`).
fn canonical_charset(cs: &str) -> String {
    match cs.to_ascii_lowercase().as_str() {
        "utf8" => "utf8mb3".into(),
        other => other.into(),
    }
}

/// The character set a collation belongs to.
fn charset_of_collation(collation: &str) -> String {
    let c = collation.to_ascii_lowercase();
    if c == "binary" {
        return "binary".into();
    }
    canonical_charset(c.split('_').next().unwrap_or(&c))
}

/// Most bytes one character takes in `charset`.
pub fn mbmaxlen(charset: &str) -> u64 {
    match charset {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" | "gb18030" => 4,
        "utf8mb3" | "ujis" | "eucjpms" => 3,
        "ucs2" | "big5" | "sjis" | "cp932" | "euckr" | "gb2312" | "gbk" => 2,
        _ => 1,
    }
}

/// Text types whose values carry a character set.
fn is_text(data_type: &str) -> bool {
    matches!(
        data_type,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set"
    )
}

/// The byte capacity of each TEXT/BLOB size, smallest first.
const TEXTS: [(&str, &str, u64); 4] = [
    ("tinytext", "tinyblob", 255),
    ("text", "blob", 65_535),
    ("mediumtext", "mediumblob", 16_777_215),
    ("longtext", "longblob", 4_294_967_295),
];

/// The smallest TEXT (or BLOB) type that holds `bytes`.
fn text_type_for(bytes: u64, blob: bool) -> &'static str {
    let (t, b, _) = TEXTS
        .iter()
        .find(|(_, _, cap)| bytes <= *cap)
        .unwrap_or(&TEXTS[3]);
    if blob {
        b
    } else {
        t
    }
}

impl History {
    /// The server that wrote the binlog, as its format description names
    /// it: where the history does not know the server's default character
    /// set (a schema file), it is that version's default (latin1 before
    /// MySQL 8.0, and on MariaDB before 11.6; utf8mb4 after). Whether it is
    /// MariaDB (its JSON is a LONGTEXT).
    pub fn server_wrote(&mut self, version: &str) {
        let maria = version.contains("MariaDB");
        if self.server_charset.is_empty() {
            let major: u32 = version
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            let minor: u32 = version
                .split('.')
                .nth(1)
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            let modern = if maria {
                (major, minor) >= (11, 6)
            } else {
                major >= 8
            };
            self.server_charset = if modern { "utf8mb4" } else { "latin1" }.into();
            self.mariadb = maria;
        }
    }

    /// A table's definition, if it is known.
    pub fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.tables.get(&(db.to_string(), table.to_string()))
    }

    /// The default character set of a new table in `db`.
    fn database_charset(&self, db: &str) -> String {
        self.databases
            .get(db)
            .cloned()
            .unwrap_or_else(|| self.server_charset.clone())
    }

    /// Applies one DDL statement run with `default_db` as the current
    /// database. `tracked` says which tables the history keeps (the
    /// filter); statements on others change nothing but renames into
    /// tracked names. `Err` names what the statement assumes that the
    /// history does not hold (a column it drops that is not there): the
    /// history and the server disagree.
    pub fn apply(
        &mut self,
        ddl: &Ddl,
        default_db: &str,
        tracked: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Applied, String> {
        let qualify = |n: &Name| parse::qualify(n, default_db);
        let mut out = Applied::default();
        match ddl {
            Ddl::Other | Ddl::Temporary => {}
            Ddl::CreateDatabase {
                name,
                charset,
                collate,
            } => {
                let cs =
                    pick_charset(charset, collate).unwrap_or_else(|| self.server_charset.clone());
                self.databases.insert(name.clone(), cs);
            }
            Ddl::AlterDatabase {
                name,
                charset,
                collate,
            } => {
                let name = name.clone().unwrap_or_else(|| default_db.to_string());
                if let Some(cs) = pick_charset(charset, collate) {
                    self.databases.insert(name, cs);
                }
            }
            Ddl::DropDatabase(name) => {
                self.databases.remove(name);
                let gone: Vec<_> = self
                    .tables
                    .keys()
                    .filter(|(d, _)| d == name)
                    .cloned()
                    .collect();
                for k in gone {
                    self.tables.remove(&k);
                    out.removed.push(k);
                }
            }
            Ddl::DropTables(names) => {
                for n in names {
                    let k = qualify(n);
                    if self.tables.remove(&k).is_some() {
                        out.removed.push(k);
                    }
                }
            }
            Ddl::RenameTables(pairs) => {
                for (from, to) in pairs {
                    self.rename(qualify(from), qualify(to), tracked, &mut out);
                }
            }
            Ddl::CreateLike {
                name,
                if_not_exists,
                like,
            } => {
                let k = qualify(name);
                if *if_not_exists && self.tables.contains_key(&k) || !tracked(&k.0, &k.1) {
                    return Ok(out);
                }
                match self.tables.get(&qualify(like)).cloned() {
                    Some(t) => {
                        self.tables.insert(k.clone(), t);
                        out.changed.push(k);
                    }
                    None => {
                        self.tables.remove(&k);
                        out.unknown.push((
                            k,
                            format!(
                                "a copy (LIKE) of {}, whose definition is not tracked",
                                shown(&qualify(like))
                            ),
                        ));
                    }
                }
            }
            Ddl::CreateTable {
                name,
                if_not_exists,
                columns,
                primary,
                charset,
                collate,
                unmodelled,
            } => {
                let k = qualify(name);
                if *if_not_exists && self.tables.contains_key(&k) || !tracked(&k.0, &k.1) {
                    return Ok(out);
                }
                if let Some(why) = unmodelled {
                    self.tables.remove(&k);
                    out.unknown.push((k, why.clone()));
                    return Ok(out);
                }
                let table_cs =
                    pick_charset(charset, collate).unwrap_or_else(|| self.database_charset(&k.0));
                let mut t = Table {
                    columns: Vec::with_capacity(columns.len()),
                    primary: primary.clone(),
                    charset: table_cs,
                };
                for spec in columns {
                    let c = self.column(spec, &t.charset)?;
                    t.columns.push(c);
                }
                self.tables.insert(k.clone(), t);
                out.changed.push(k);
            }
            Ddl::AlterTable { name, ops } => {
                let k = qualify(name);
                self.alter_table(k, ops, default_db, tracked, &mut out)?;
            }
        }
        Ok(out)
    }

    /// ALTER TABLE on `k`, clause by clause.
    fn alter_table(
        &mut self,
        k: (String, String),
        ops: &[AlterOp],
        default_db: &str,
        tracked: &dyn Fn(&str, &str) -> bool,
        out: &mut Applied,
    ) -> Result<(), String> {
        let qualify = |n: &Name| parse::qualify(n, default_db);
        let mut k = k;
        let known = self.tables.contains_key(&k);
        if !known {
            // Only a rename into a tracked name matters.
            for op in ops {
                if let AlterOp::RenameTo(to) = op {
                    let to = qualify(to);
                    if tracked(&to.0, &to.1) {
                        out.unknown.push((
                            to,
                            format!("renamed from {}, which is not tracked", shown(&k)),
                        ));
                    }
                }
            }
            if tracked(&k.0, &k.1) {
                return Err(format!("{} is not in the schema history", shown(&k)));
            }
            return Ok(());
        }
        for op in ops {
            if let AlterOp::RenameTo(to) = op {
                let to = qualify(to);
                self.rename(k.clone(), to.clone(), tracked, out);
                k = to;
                continue;
            }
            if let AlterOp::Unmodelled(why) = op {
                self.tables.remove(&k);
                out.unknown.push((k.clone(), why.clone()));
                return Ok(());
            }
            // Renamed out of what the history follows: nothing more to do.
            let Some(mut t) = self.tables.remove(&k) else {
                break;
            };
            let r = self.alter(&mut t, op);
            self.tables.insert(k.clone(), t);
            r.map_err(|e| format!("{}: {e}", shown(&k)))?;
        }
        if self.tables.contains_key(&k) && !out.changed.contains(&k) {
            out.changed.push(k);
        }
        Ok(())
    }

    fn rename(
        &mut self,
        from: (String, String),
        to: (String, String),
        tracked: &dyn Fn(&str, &str) -> bool,
        out: &mut Applied,
    ) {
        match self.tables.remove(&from) {
            Some(t) => {
                out.removed.push(from);
                if tracked(&to.0, &to.1) {
                    self.tables.insert(to.clone(), t);
                    out.changed.push(to);
                }
            }
            None if tracked(&to.0, &to.1) => {
                out.unknown.push((
                    to,
                    format!("renamed from {}, which is not tracked", shown(&from)),
                ));
            }
            None => {}
        }
    }

    /// One ALTER TABLE clause.
    fn alter(&self, t: &mut Table, op: &AlterOp) -> Result<(), String> {
        let find = |t: &Table, name: &str| {
            t.columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let place = |t: &Table, place: &Option<Place>, default: usize| -> Result<usize, String> {
            match place {
                None => Ok(default),
                Some(Place::First) => Ok(0),
                Some(Place::After(a)) => find(t, a)
                    .map(|i| i + 1)
                    .ok_or_else(|| format!("AFTER names column {a}, which is not there")),
            }
        };
        match op {
            AlterOp::Add {
                column,
                place: at,
                if_not_exists,
            } => {
                if find(t, &column.name).is_some() {
                    if *if_not_exists {
                        return Ok(());
                    }
                    return Err(format!("column {} is there already", column.name));
                }
                let c = self.column(column, &t.charset)?;
                let i = place(t, at, t.columns.len())?;
                t.columns.insert(i, c);
                if column.primary {
                    t.primary = vec![column.name.clone()];
                }
            }
            AlterOp::Drop { name, if_exists } => match find(t, name) {
                Some(i) => {
                    let gone = t.columns.remove(i);
                    t.primary.retain(|p| !p.eq_ignore_ascii_case(&gone.name));
                }
                None if *if_exists => {}
                None => return Err(format!("DROP names column {name}, which is not there")),
            },
            AlterOp::Redefine {
                old,
                column,
                place: at,
                if_exists,
            } => {
                let Some(i) = find(t, old) else {
                    if *if_exists {
                        return Ok(());
                    }
                    return Err(format!("column {old} is not there"));
                };
                // MODIFY keeps nothing of the old definition but the
                // place; the charset of a text column without one is the
                // table's, as the server does.
                t.columns.remove(i);
                let mut c = self.column(column, &t.charset)?;
                if !is_text(&c.data_type) {
                    c.charset = None;
                }
                let j = place(t, at, i)?;
                t.columns.insert(j.min(t.columns.len()), c);
                for p in t.primary.iter_mut() {
                    if p.eq_ignore_ascii_case(old) {
                        *p = column.name.clone();
                    }
                }
                if column.primary {
                    t.primary = vec![column.name.clone()];
                }
            }
            AlterOp::RenameColumn { old, new } => {
                let i = find(t, old)
                    .ok_or_else(|| format!("RENAME COLUMN names {old}, which is not there"))?;
                t.columns[i].name = new.clone();
                for p in t.primary.iter_mut() {
                    if p.eq_ignore_ascii_case(old) {
                        *p = new.clone();
                    }
                }
            }
            AlterOp::Convert { charset, collate } => {
                let cs =
                    pick_charset(charset, collate).ok_or("CONVERT TO without a character set")?;
                for c in t.columns.iter_mut() {
                    convert(c, &cs);
                }
                t.charset = cs;
            }
            AlterOp::DefaultCharset { charset, collate } => {
                if let Some(cs) = pick_charset(charset, collate) {
                    t.charset = cs;
                }
            }
            AlterOp::AddPrimaryKey(cols) => t.primary = cols.clone(),
            AlterOp::DropPrimaryKey => t.primary.clear(),
            AlterOp::RenameTo(_) | AlterOp::Unmodelled(_) => unreachable!("handled by apply"),
        }
        Ok(())
    }

    /// A column definition as the server stores it, in a table whose
    /// default character set is `table_cs`.
    pub fn column(&self, s: &ColumnSpec, table_cs: &str) -> Result<Column, String> {
        let num = |i: usize| -> Option<u64> { s.args.get(i).and_then(|a| a.parse().ok()) };
        let mut c = Column {
            name: s.name.clone(),
            data_type: s.data_type.clone(),
            unsigned: s.unsigned,
            precision: 0,
            scale: 0,
            fsp: 0,
            length: 0,
            charset: None,
            labels: Vec::new(),
            json: false,
        };
        let text_cs = || {
            s.charset
                .as_deref()
                .map(canonical_charset)
                .or_else(|| {
                    s.collate
                        .as_deref()
                        .filter(|c| *c != "binary")
                        .map(charset_of_collation)
                })
                .unwrap_or_else(|| table_cs.to_string())
        };
        match s.data_type.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year" | "date" => {}
            "decimal" => {
                c.precision = num(0).unwrap_or(10);
                c.scale = num(1).unwrap_or(0);
            }
            "float" => {
                // FLOAT(p): single precision up to 24 bits, double after.
                if s.args.len() == 1 && num(0).unwrap_or(0) > 24 {
                    c.data_type = "double".into();
                }
            }
            "double" => {}
            "bit" => c.precision = num(0).unwrap_or(1),
            "datetime" | "timestamp" | "time" => c.fsp = num(0).unwrap_or(0),
            "char" | "varchar" => {
                c.length = num(0).unwrap_or(if s.data_type == "char" { 1 } else { 0 });
                c.charset = Some(text_cs());
                if c.charset.as_deref() == Some("binary") {
                    c.data_type = if s.data_type == "char" {
                        "binary"
                    } else {
                        "varbinary"
                    }
                    .into();
                    c.charset = None;
                }
            }
            "binary" | "varbinary" => {
                c.length = num(0).unwrap_or(if s.data_type == "binary" { 1 } else { 0 });
            }
            "tinytext" | "text" | "mediumtext" | "longtext" => {
                let cs = text_cs();
                if let Some(n) = num(0) {
                    // TEXT(n): the smallest that holds n characters.
                    c.data_type = text_type_for(n * mbmaxlen(&cs), false).into();
                }
                if cs == "binary" {
                    c.data_type = TEXTS
                        .iter()
                        .find(|(t, _, _)| *t == c.data_type)
                        .map_or("blob", |(_, b, _)| b)
                        .into();
                } else {
                    c.charset = Some(cs);
                }
            }
            "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                if let Some(n) = num(0) {
                    c.data_type = text_type_for(n, true).into();
                }
            }
            "enum" | "set" => {
                c.labels = s.args.clone();
                c.charset = Some(text_cs());
            }
            "json" => {
                if self.mariadb {
                    c.data_type = "longtext".into();
                    c.charset = Some("utf8mb4".into());
                    c.json = true;
                }
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => {}
            other => {
                return Err(format!(
                    "column {} has type {other}, which the schema history cannot follow",
                    s.name
                ))
            }
        }
        Ok(c)
    }

    /// The schema a table map of `db.table` must match, with the names,
    /// keys, signedness, charsets and labels it lacks without FULL
    /// metadata.
    pub fn schema(&self, db: &str, table: &str) -> Option<TableSchema> {
        let t = self.table(db, table)?;
        let mut columns = Vec::with_capacity(t.columns.len());
        for c in &t.columns {
            let (col_type, meta, charset) = column_type(c)?;
            columns.push(ColumnSchema {
                name: c.name.clone(),
                col_type,
                meta,
                unsigned: c.unsigned,
                charset,
                labels: c.labels.clone(),
                json: c.json,
                visibility: Default::default(),
            });
        }
        let primary_key = t
            .primary
            .iter()
            .filter_map(|p| {
                t.columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(p))
            })
            .collect();
        Some(TableSchema {
            database: db.to_string(),
            table: table.to_string(),
            columns,
            primary_key,
            names_from: NameSource::History,
            rendered: Default::default(),
        })
    }
}

/// `CONVERT TO CHARACTER SET cs` on one column: text columns take the set,
/// and a VARCHAR or TEXT grows to a type that holds as many characters.
fn convert(c: &mut Column, cs: &str) {
    let Some(old) = c.charset.clone() else {
        return;
    };
    let (from, to) = (mbmaxlen(&old), mbmaxlen(cs));
    if let Some((_, _, cap)) = TEXTS.iter().find(|(t, _, _)| *t == c.data_type) {
        let chars = cap / from;
        if chars * to > *cap {
            c.data_type = text_type_for(chars * to, false).into();
        }
    } else if c.data_type == "varchar" && c.length * to > 65_535 {
        c.data_type = text_type_for(c.length * to, false).into();
        c.length = 0;
    }
    c.charset = Some(cs.to_string());
}

fn pick_charset(charset: &Option<String>, collate: &Option<String>) -> Option<String> {
    charset
        .as_deref()
        .map(canonical_charset)
        .or_else(|| collate.as_deref().map(charset_of_collation))
}

fn shown((db, t): &(String, String)) -> String {
    format!("{db}.{t}")
}

/// The binlog type, table-map metadata and charset id of a column.
pub fn column_type(c: &Column) -> Option<(ColumnType, Vec<u8>, u16)> {
    let collation = c
        .charset
        .as_deref()
        .and_then(crate::charset::collation_for_name)
        .unwrap_or(0);
    let octets = match c.data_type.as_str() {
        "char" | "varchar" => c.length * c.charset.as_deref().map_or(1, mbmaxlen),
        _ => c.length,
    };
    let column_type = if c.labels.is_empty() {
        c.data_type.clone()
    } else {
        let quoted: Vec<String> = c
            .labels
            .iter()
            .map(|l| format!("'{}'", l.replace('\'', "''")))
            .collect();
        format!("{}({})", c.data_type, quoted.join(","))
    };
    crate::source::schema::catalog_type(
        &c.data_type,
        &column_type,
        c.precision,
        c.scale,
        c.fsp,
        octets,
        collation,
    )
}

/// How a table map differs from the definition held; `None` when it
/// matches. Compared: the column count, each column's binlog type, and the
/// metadata that follows from the definition (DECIMAL precision and scale,
/// fractional seconds, string lengths, BLOB size, ENUM/SET size) and, with
/// FULL metadata, the names.
pub fn difference(held: &TableSchema, map: &TableSchema) -> Option<String> {
    if held.columns.len() != map.columns.len() {
        return Some(format!(
            "the binlog has {} columns, the schema history {} ({})",
            map.columns.len(),
            held.columns.len(),
            held.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (i, (h, m)) in held.columns.iter().zip(&map.columns).enumerate() {
        let (ht, mt) = (family(real_type(h)), family(real_type(m)));
        if ht != mt {
            return Some(format!(
                "column {} ({}) is {:?} in the binlog but {:?} in the schema history",
                i + 1,
                h.name,
                mt,
                ht
            ));
        }
        if h.meta != m.meta && !meta_may_differ(h) && real_type(m) == family(real_type(m)) {
            return Some(format!(
                "column {} ({}) has type metadata {:?} in the binlog but {:?} in the schema history",
                i + 1,
                h.name,
                m.meta,
                h.meta
            ));
        }
        if map.names_from == NameSource::TableMap && !h.name.eq_ignore_ascii_case(&m.name) {
            return Some(format!(
                "column {} is named {} in the binlog but {} in the schema history",
                i + 1,
                m.name,
                h.name
            ));
        }
    }
    None
}

/// One binlog type per SQL type: MariaDB logs DATE as NEWDATE, and a
/// table created before MySQL 5.6 keeps the old temporal formats.
fn family(t: ColumnType) -> ColumnType {
    use ColumnType as T;
    match t {
        T::MYSQL_TYPE_NEWDATE => T::MYSQL_TYPE_DATE,
        T::MYSQL_TYPE_DATETIME => T::MYSQL_TYPE_DATETIME2,
        T::MYSQL_TYPE_TIMESTAMP => T::MYSQL_TYPE_TIMESTAMP2,
        T::MYSQL_TYPE_TIME => T::MYSQL_TYPE_TIME2,
        T::MYSQL_TYPE_DECIMAL => T::MYSQL_TYPE_NEWDECIMAL,
        T::MYSQL_TYPE_VAR_STRING => T::MYSQL_TYPE_VARCHAR,
        other => other,
    }
}

/// Types whose metadata the definition does not fix exactly: JSON and
/// geometry (the server's own length bytes), and CHAR, whose table-map
/// length MySQL and MariaDB encode in more than one way.
fn meta_may_differ(c: &ColumnSchema) -> bool {
    matches!(
        c.col_type,
        ColumnType::MYSQL_TYPE_JSON
            | ColumnType::MYSQL_TYPE_GEOMETRY
            | ColumnType::MYSQL_TYPE_FLOAT
            | ColumnType::MYSQL_TYPE_DOUBLE
    ) || real_type(c) == ColumnType::MYSQL_TYPE_STRING
}

#[cfg(test)]
mod tests;

impl History {
    /// A history from SQL text: `mysqldump --no-data` output or any file
    /// of `CREATE DATABASE`, `USE`, `CREATE TABLE` and `ALTER TABLE`
    /// statements (`DELIMITER` blocks, `SET` and other statements are
    /// stepped over). `Err` names the statement that cannot be read.
    pub fn from_sql(text: &str) -> Result<History, String> {
        // The server's default character set is not in the file: the
        // binlog's format description gives it (`server_wrote`).
        let mut h = History::default();
        let mut db = String::new();
        for (line, stmt) in statements(text) {
            let t = stmt.trim();
            let head = t.get(..4).unwrap_or("").to_ascii_uppercase();
            if head == "USE " {
                db = t[4..].trim().trim_matches('`').to_string();
                continue;
            }
            let ddl = parse::parse(t)
                .map_err(|e| format!("line {line}: {e}: `{}`", t.lines().next().unwrap_or("")))?;
            if let Ddl::CreateDatabase { name, .. } = &ddl {
                if db.is_empty() {
                    db = name.clone();
                }
            }
            h.apply(&ddl, &db, &|d, _| !is_system(d))
                .map_err(|e| format!("line {line}: {e}"))?;
        }
        Ok(h)
    }
}

/// The statements of an SQL file with the line each starts on: split at
/// the delimiter (`;`, or what a `DELIMITER` line sets) outside strings,
/// quoted names and comments.
fn statements(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut delim = ";".to_string();
    let mut cur = String::new();
    let mut start_line = 1;
    let mut line = 1;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    let mut block = false;
    while i < chars.len() {
        let c = chars[i];
        if cur.trim().is_empty() && quote.is_none() && !block {
            // DELIMITER lines (mysqldump's triggers and routines).
            let rest: String = chars[i..].iter().take(10).collect();
            if rest.to_ascii_uppercase().starts_with("DELIMITER ") {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                delim = chars[i + 10..end]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string();
                i = end;
                cur.clear();
                continue;
            }
            if cur.is_empty() {
                start_line = line;
            }
        }
        if c == '\n' {
            line += 1;
        }
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' && q != '`' {
                    if let Some(&n) = chars.get(i + 1) {
                        cur.push(n);
                        i += 1;
                    }
                } else if c == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            None if block => {
                cur.push(c);
                if c == '*' && chars.get(i + 1) == Some(&'/') {
                    cur.push('/');
                    i += 1;
                    block = false;
                }
                i += 1;
                continue;
            }
            None => {}
        }
        if c == '\'' || c == '"' || c == '`' {
            quote = Some(c);
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            block = true;
            cur.push_str("/*");
            i += 2;
            continue;
        } else if (c == '-' && chars.get(i + 1) == Some(&'-')) || c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if chars[i..].starts_with(&delim.chars().collect::<Vec<_>>()) {
            if !cur.trim().is_empty() {
                out.push((start_line, std::mem::take(&mut cur)));
            }
            cur.clear();
            i += delim.chars().count();
            continue;
        }
        cur.push(c);
        i += 1;
    }
    if !cur.trim().is_empty() {
        out.push((start_line, cur));
    }
    out
}
