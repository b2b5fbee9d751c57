//! The DDL that changes a table's row shape, parsed into what it changes.
//!
//! A parser of our own for this subset, rather than `sqlparser`: that crate
//! covers only part of MySQL's ALTER TABLE (not MariaDB's `IF [NOT] EXISTS`
//! on columns, `WAIT n`, versioned comments in the middle of a statement),
//! and its default features pull a C build. What matters here is small:
//! column names, order, types, charsets, labels and the primary key.
//! Everything else a statement may say (indexes, table options, partitions,
//! `ALGORITHM`, `LOCK`) is recognised and stepped over; anything that is not
//! recognised is an error, never a guess.

mod alter;
mod column;

pub use column::type_word;

use super::lex::{tokens, Tok};

/// `db.table` as written: the database is `None` when the statement
/// relies on its default database.
pub type Name = (Option<String>, String);

/// A character set and a collation, either or both named.
type Charset = (Option<String>, Option<String>);

/// `name` with its database: `default_db` where the statement relied on it.
pub fn qualify(name: &Name, default_db: &str) -> (String, String) {
    (
        name.0.clone().unwrap_or_else(|| default_db.to_string()),
        name.1.clone(),
    )
}

/// A column as a statement defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    /// The type's name, lowercased and with aliases resolved (`integer` is
    /// `int`, `bool` is `tinyint`, `nvarchar` is `varchar` in utf8mb3).
    pub data_type: String,
    /// Its arguments: numbers as written, or ENUM/SET labels.
    pub args: Vec<String>,
    pub unsigned: bool,
    pub charset: Option<String>,
    pub collate: Option<String>,
    pub nullable: bool,
    /// `PRIMARY KEY` on the column itself.
    pub primary: bool,
}

/// Where a column goes: `FIRST` or `AFTER c`; `None` is the end (ADD) or
/// where it was (MODIFY, CHANGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    First,
    After(String),
}

/// One clause of ALTER TABLE that matters to the row shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterOp {
    Add {
        column: ColumnSpec,
        place: Option<Place>,
        if_not_exists: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
    /// MODIFY (`old` is the column's own name) or CHANGE.
    Redefine {
        old: String,
        column: ColumnSpec,
        place: Option<Place>,
        if_exists: bool,
    },
    RenameColumn {
        old: String,
        new: String,
    },
    /// `CONVERT TO CHARACTER SET`: every text column.
    Convert {
        charset: Option<String>,
        collate: Option<String>,
    },
    /// `[DEFAULT] CHARACTER SET` / `COLLATE`: columns added later.
    DefaultCharset {
        charset: Option<String>,
        collate: Option<String>,
    },
    AddPrimaryKey(Vec<String>),
    DropPrimaryKey,
    RenameTo(Name),
    /// Changes the row shape in a way not modelled here (system
    /// versioning adds hidden columns): the table is read again.
    Unmodelled(String),
}

/// What a statement does to tables and databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ddl {
    CreateTable {
        name: Name,
        if_not_exists: bool,
        columns: Vec<ColumnSpec>,
        primary: Vec<String>,
        charset: Option<String>,
        collate: Option<String>,
        /// Something that changes the shape beyond the columns listed.
        unmodelled: Option<String>,
    },
    CreateLike {
        name: Name,
        if_not_exists: bool,
        like: Name,
    },
    AlterTable {
        name: Name,
        ops: Vec<AlterOp>,
    },
    RenameTables(Vec<(Name, Name)>),
    DropTables(Vec<Name>),
    CreateDatabase {
        name: String,
        charset: Option<String>,
        collate: Option<String>,
    },
    AlterDatabase {
        /// `None`: the default database.
        name: Option<String>,
        charset: Option<String>,
        collate: Option<String>,
    },
    DropDatabase(String),
    /// A temporary table: its rows are not in a row-based binlog.
    Temporary,
    /// A statement that changes no row shape (indexes, TRUNCATE, views,
    /// routines, users, sequences' options).
    Other,
}

/// Parses one statement. `Err` says what could not be read.
pub fn parse(sql: &str) -> Result<Ddl, String> {
    let toks = tokens(sql)?;
    let mut p = P { t: &toks, at: 0 };
    let ddl = p.statement()?;
    if matches!(ddl, Ddl::Other | Ddl::Temporary) {
        return Ok(ddl);
    }
    p.eat_sym(';');
    if let Some(t) = p.peek() {
        return Err(format!("unexpected {} after the statement", shown(t)));
    }
    Ok(ddl)
}

struct P<'a> {
    t: &'a [Tok],
    at: usize,
}

fn shown(t: &Tok) -> String {
    match t {
        Tok::Word(w) | Tok::Num(w) => format!("`{w}`"),
        Tok::Quoted(q) => format!("`{q}`"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Sym(c) => format!("`{c}`"),
    }
}

/// Words that start a clause of a column list that is not a column.
const NOT_A_COLUMN: &[&str] = &[
    "PRIMARY",
    "UNIQUE",
    "INDEX",
    "KEY",
    "FULLTEXT",
    "SPATIAL",
    "FOREIGN",
    "CONSTRAINT",
    "CHECK",
    "PERIOD",
    "VECTOR",
];

/// Table options, ALTER clauses and partitioning that leave the row shape
/// as it is.
const NO_SHAPE: &[&str] = &[
    "ENGINE",
    "AUTO_INCREMENT",
    "AVG_ROW_LENGTH",
    "CHECKSUM",
    "TABLE_CHECKSUM",
    "COMMENT",
    "COMPRESSION",
    "CONNECTION",
    "DATA",
    "INDEX",
    "DELAY_KEY_WRITE",
    "ENCRYPTION",
    "ENCRYPTED",
    "ENCRYPTION_KEY_ID",
    "INSERT_METHOD",
    "KEY_BLOCK_SIZE",
    "MAX_ROWS",
    "MIN_ROWS",
    "PACK_KEYS",
    "PASSWORD",
    "ROW_FORMAT",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "TABLESPACE",
    "UNION",
    "ALGORITHM",
    "LOCK",
    "FORCE",
    "ORDER",
    "ENABLE",
    "DISABLE",
    "DISCARD",
    "IMPORT",
    "PARTITION",
    "PARTITIONS",
    "SUBPARTITION",
    "SUBPARTITIONS",
    "COALESCE",
    "REORGANIZE",
    "EXCHANGE",
    "ANALYZE",
    "OPTIMIZE",
    "REBUILD",
    "REPAIR",
    "TRUNCATE",
    "REMOVE",
    "WITH",
    "WITHOUT",
    "PAGE_CHECKSUM",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "TRANSACTIONAL",
    "IETF_QUOTES",
    "SEQUENCE",
    "STORAGE",
    "SECONDARY_ENGINE",
    "SECONDARY_LOAD",
    "SECONDARY_UNLOAD",
    "AUTOEXTEND_SIZE",
    "ENGINE_ATTRIBUTE",
    "SECONDARY_ENGINE_ATTRIBUTE",
    "UPGRADE",
    "VALIDATION",
];

/// Clauses of [`NO_SHAPE`] that take no `= value`: they run to the next
/// comma.
const FLAGS: &[&str] = &[
    "FORCE",
    "ENABLE",
    "DISABLE",
    "DISCARD",
    "IMPORT",
    "ORDER",
    "ANALYZE",
    "OPTIMIZE",
    "REBUILD",
    "REPAIR",
    "TRUNCATE",
    "REMOVE",
    "COALESCE",
    "REORGANIZE",
    "EXCHANGE",
    "WITH",
    "WITHOUT",
    "UPGRADE",
    "SECONDARY_LOAD",
    "SECONDARY_UNLOAD",
    "PARTITIONS",
    "SUBPARTITIONS",
    "SUBPARTITION",
];

impl<'a> P<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.at)
    }

    fn peek_at(&self, n: usize) -> Option<&'a Tok> {
        self.t.get(self.at + n)
    }

    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.t.get(self.at);
        self.at += t.is_some() as usize;
        t
    }

    fn at_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.at_kw(kw);
        self.at += yes as usize;
        yes
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        let save = self.at;
        for kw in kws {
            if !self.eat_kw(kw) {
                self.at = save;
                return false;
            }
        }
        true
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{kw}`")))
        }
    }

    fn at_sym(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Sym(c))
    }

    fn eat_sym(&mut self, c: char) -> bool {
        let yes = self.at_sym(c);
        self.at += yes as usize;
        yes
    }

    fn expect_sym(&mut self, c: char) -> Result<(), String> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{c}`")))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            Some(t) => format!("expected {wanted}, found {}", shown(t)),
            None => format!("expected {wanted}, found the end of the statement"),
        }
    }

    /// A name: a word or a `quoted` identifier (a string too, where MySQL
    /// takes one: `CHARACTER SET 'utf8mb4'`).
    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w.clone()),
            Some(Tok::Quoted(q)) | Some(Tok::Str(q)) => Ok(q.clone()),
            Some(t) => Err(format!("expected a name, found {}", shown(t))),
            None => Err("expected a name, found the end of the statement".into()),
        }
    }

    /// `name` or `db.name`.
    fn name(&mut self) -> Result<Name, String> {
        let first = self.ident()?;
        if self.eat_sym('.') {
            Ok((Some(first), self.ident()?))
        } else {
            Ok((None, first))
        }
    }

    fn if_exists(&mut self) -> bool {
        self.eat_kws(&["IF", "EXISTS"])
    }

    fn if_not_exists(&mut self) -> bool {
        self.eat_kws(&["IF", "NOT", "EXISTS"])
    }

    /// MariaDB's `WAIT n` / `NOWAIT`.
    fn wait(&mut self) {
        if self.eat_kw("NOWAIT") {
            return;
        }
        if self.at_kw("WAIT") && matches!(self.peek_at(1), Some(Tok::Num(_))) {
            self.at += 2;
        }
    }

    /// Steps over a balanced `( ... )` starting at the cursor.
    fn skip_parens(&mut self) -> Result<(), String> {
        self.expect_sym('(')?;
        let mut depth = 1;
        while depth > 0 {
            match self.next() {
                Some(Tok::Sym('(')) => depth += 1,
                Some(Tok::Sym(')')) => depth -= 1,
                Some(_) => {}
                None => return Err("a `(` that is not closed".into()),
            }
        }
        Ok(())
    }

    /// Steps to the next `,` or `)` at this depth (not over it), or the end.
    fn skip_clause(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                None | Some(Tok::Sym(',')) | Some(Tok::Sym(')')) | Some(Tok::Sym(';')) => {
                    return Ok(())
                }
                Some(Tok::Sym('(')) => self.skip_parens()?,
                Some(_) => self.at += 1,
            }
        }
    }

    /// `(a, b(10), c DESC)`: the column names of a key.
    fn key_columns(&mut self) -> Result<Vec<String>, String> {
        self.expect_sym('(')?;
        let mut cols = Vec::new();
        loop {
            if self.at_sym('(') {
                // A functional key part: no column of the row.
                self.skip_parens()?;
            } else {
                cols.push(self.ident()?);
                if self.at_sym('(') {
                    self.skip_parens()?;
                }
            }
            self.eat_kw("ASC");
            self.eat_kw("DESC");
            if self.eat_sym(')') {
                return Ok(cols);
            }
            self.expect_sym(',')?;
        }
    }

    fn statement(&mut self) -> Result<Ddl, String> {
        let Some(first) = self.peek() else {
            return Ok(Ddl::Other);
        };
        if first.is("CREATE") {
            self.at += 1;
            self.eat_kws(&["OR", "REPLACE"]);
            self.definer()?;
            if self.eat_kw("TEMPORARY") {
                return Ok(Ddl::Temporary);
            }
            if self.eat_kw("TABLE") {
                return self.create_table();
            }
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                self.if_not_exists();
                let name = self.ident()?;
                let (charset, collate) = self.database_options()?;
                return Ok(Ddl::CreateDatabase {
                    name,
                    charset,
                    collate,
                });
            }
            return Ok(Ddl::Other);
        }
        if first.is("ALTER") {
            self.at += 1;
            self.eat_kw("ONLINE");
            self.eat_kw("IGNORE");
            if self.eat_kw("TABLE") {
                return self.alter_table();
            }
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let name = match self.peek() {
                    Some(Tok::Word(w)) if is_db_option(w) => None,
                    _ => Some(self.ident()?),
                };
                if self.eat_kw("UPGRADE") {
                    return Ok(Ddl::Other);
                }
                let (charset, collate) = self.database_options()?;
                return Ok(Ddl::AlterDatabase {
                    name,
                    charset,
                    collate,
                });
            }
            return Ok(Ddl::Other);
        }
        if first.is("DROP") {
            self.at += 1;
            if self.eat_kw("TEMPORARY") {
                return Ok(Ddl::Temporary);
            }
            if self.eat_kw("TABLE") || self.eat_kw("TABLES") {
                self.if_exists();
                let mut names = vec![self.name()?];
                while self.eat_sym(',') {
                    names.push(self.name()?);
                }
                self.wait();
                self.eat_kw("RESTRICT");
                self.eat_kw("CASCADE");
                return Ok(Ddl::DropTables(names));
            }
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                self.if_exists();
                return Ok(Ddl::DropDatabase(self.ident()?));
            }
            return Ok(Ddl::Other);
        }
        if first.is("RENAME") {
            self.at += 1;
            if !(self.eat_kw("TABLE") || self.eat_kw("TABLES")) {
                return Ok(Ddl::Other);
            }
            self.if_exists();
            let mut pairs = Vec::new();
            loop {
                let from = self.name()?;
                self.wait();
                self.expect_kw("TO")?;
                pairs.push((from, self.name()?));
                if !self.eat_sym(',') {
                    break;
                }
            }
            return Ok(Ddl::RenameTables(pairs));
        }
        // TRUNCATE, indexes, views, routines, users, grants: no row shape.
        self.at = self.t.len();
        Ok(Ddl::Other)
    }

    /// `DEFINER = user@host` (views, routines, triggers, events).
    fn definer(&mut self) -> Result<(), String> {
        if self.eat_kw("DEFINER") {
            self.expect_sym('=')?;
            self.skip_clause_words();
        }
        Ok(())
    }

    fn skip_clause_words(&mut self) {
        while let Some(t) = self.peek() {
            if matches!(t, Tok::Word(w) if ["VIEW", "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "SQL", "ALGORITHM"].iter().any(|k| w.eq_ignore_ascii_case(k)))
            {
                return;
            }
            self.at += 1;
        }
    }

    /// One `CHARACTER SET [=] x`, `CHARSET x` or `COLLATE [=] y`, as
    /// (charset, collation); `None` when the cursor is at none of them.
    fn charset_item(&mut self) -> Result<Option<Charset>, String> {
        if self.eat_kws(&["CHARACTER", "SET"]) || self.eat_kw("CHARSET") {
            self.eat_sym('=');
            return Ok(Some((Some(self.ident()?.to_ascii_lowercase()), None)));
        }
        if self.eat_kw("COLLATE") {
            self.eat_sym('=');
            return Ok(Some((None, Some(self.ident()?.to_ascii_lowercase()))));
        }
        Ok(None)
    }

    /// `[DEFAULT] CHARACTER SET [=] x [DEFAULT] COLLATE [=] y` and other
    /// database options.
    fn database_options(&mut self) -> Result<(Option<String>, Option<String>), String> {
        let (mut charset, mut collate) = (None, None);
        while self.peek().is_some() && !self.at_sym(';') {
            self.eat_kw("DEFAULT");
            if let Some((cs, co)) = self.charset_item()? {
                charset = cs.or(charset);
                collate = co.or(collate);
            } else if self.eat_kw("COMMENT") || self.eat_kw("ENCRYPTION") || self.eat_kw("READ") {
                self.eat_kw("ONLY");
                self.eat_sym('=');
                self.next();
            } else {
                return Err(self.unexpected("a database option"));
            }
        }
        Ok((charset, collate))
    }

    fn create_table(&mut self) -> Result<Ddl, String> {
        let if_not_exists = self.if_not_exists();
        let name = self.name()?;
        if self.eat_kw("LIKE") {
            return Ok(Ddl::CreateLike {
                name,
                if_not_exists,
                like: self.name()?,
            });
        }
        if self.at_sym('(') && self.peek_at(1).is_some_and(|t| t.is("LIKE")) {
            self.at += 2;
            let like = self.name()?;
            self.expect_sym(')')?;
            return Ok(Ddl::CreateLike {
                name,
                if_not_exists,
                like,
            });
        }
        let mut columns = Vec::new();
        let mut primary = Vec::new();
        let mut unmodelled = None;
        if self.eat_sym('(') {
            loop {
                if self.starts_column() {
                    let c = self.column()?;
                    if c.primary {
                        primary = vec![c.name.clone()];
                    }
                    columns.push(c);
                } else if let Some(pk) = self.key_clause()? {
                    primary = pk;
                }
                if self.eat_sym(')') {
                    break;
                }
                self.expect_sym(',')?;
            }
        }
        let (mut charset, mut collate) = (None, None);
        while let Some(t) = self.peek() {
            if t.is("AS") || t.is("SELECT") || t.is("IGNORE") || t.is("REPLACE") || self.at_sym('(')
            {
                // CREATE TABLE ... SELECT: columns the SELECT makes. The
                // binlog of a row-based server logs the table's full
                // definition instead, so this is rare: the table is read.
                unmodelled = Some("CREATE TABLE ... SELECT".to_string());
                self.at = self.t.len();
                break;
            }
            if self.eat_kws(&["WITH", "SYSTEM", "VERSIONING"]) {
                unmodelled = Some("WITH SYSTEM VERSIONING".to_string());
                continue;
            }
            if t.is("START") {
                // `START TRANSACTION` of an atomic CREATE ... SELECT.
                self.at += 1;
                self.eat_kw("TRANSACTION");
                continue;
            }
            let (cs, co) = self.table_option()?;
            charset = cs.or(charset);
            collate = co.or(collate);
            self.eat_sym(',');
        }
        Ok(Ddl::CreateTable {
            name,
            if_not_exists,
            columns,
            primary,
            charset,
            collate,
            unmodelled,
        })
    }

    /// One table option (or partitioning, which runs to the end); returns
    /// a charset or collation it sets.
    fn table_option(&mut self) -> Result<(Option<String>, Option<String>), String> {
        self.eat_kw("DEFAULT");
        if let Some(set) = self.charset_item()? {
            return Ok(set);
        }
        match self.peek() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("PARTITION") => {
                self.at = self.t.len();
                Ok((None, None))
            }
            Some(Tok::Word(w)) if NO_SHAPE.iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                self.at += 1;
                self.eat_kw("DIRECTORY");
                if self.eat_sym('=') {
                    // One value: a word, string, number or `( ... )`.
                    if self.at_sym('(') {
                        self.skip_parens()?;
                    } else {
                        self.next();
                    }
                } else if FLAGS.iter().any(|k| w.eq_ignore_ascii_case(k)) {
                    // FORCE, ENABLE KEYS, ORDER BY a, DISCARD TABLESPACE:
                    // to the end of the clause.
                    self.skip_clause()?;
                } else {
                    // ENGINE InnoDB, COMMENT 'x': the value without `=`.
                    self.next();
                }
                Ok((None, None))
            }
            _ => Err(self.unexpected("a table option")),
        }
    }

    /// Whether the cursor is at a column definition (not a key or
    /// constraint clause): a quoted name, or a word that is not a clause's
    /// keyword, or is one but followed by a type (`period INT`).
    fn starts_column(&self) -> bool {
        match self.peek() {
            Some(Tok::Quoted(_)) => true,
            Some(Tok::Word(w)) => {
                !NOT_A_COLUMN.iter().any(|k| w.eq_ignore_ascii_case(k))
                    || matches!(self.peek_at(1), Some(Tok::Word(t)) if type_word(t))
            }
            _ => false,
        }
    }

    /// A key or constraint clause of a column list (or after ALTER's ADD);
    /// returns the primary key's columns when it is the primary key.
    fn key_clause(&mut self) -> Result<Option<Vec<String>>, String> {
        if self.eat_kw("CONSTRAINT")
            && !["PRIMARY", "UNIQUE", "FOREIGN", "CHECK"]
                .iter()
                .any(|k| self.at_kw(k))
        {
            self.ident()?;
        }
        if self.eat_kws(&["PRIMARY", "KEY"]) {
            // [index_type] (cols) [options]
            while !self.at_sym('(') {
                if self.next().is_none() {
                    return Err("PRIMARY KEY without its columns".into());
                }
            }
            let cols = self.key_columns()?;
            self.skip_clause()?;
            return Ok(Some(cols));
        }
        let known = [
            "UNIQUE", "INDEX", "KEY", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "PERIOD", "VECTOR",
        ];
        if known.iter().any(|k| self.at_kw(k)) {
            self.skip_clause()?;
            return Ok(None);
        }
        Err(self.unexpected("a column, key or constraint"))
    }
}

fn is_db_option(w: &str) -> bool {
    [
        "DEFAULT",
        "CHARACTER",
        "CHARSET",
        "COLLATE",
        "COMMENT",
        "ENCRYPTION",
        "READ",
        "UPGRADE",
    ]
    .iter()
    .any(|k| w.eq_ignore_ascii_case(k))
}
