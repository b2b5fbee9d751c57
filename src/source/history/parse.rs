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

use super::lex::{tokens, Tok};

/// `db.table` as written: the database is `None` when the statement
/// relies on its default database.
pub type Name = (Option<String>, String);

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

    /// `[DEFAULT] CHARACTER SET [=] x [DEFAULT] COLLATE [=] y` and other
    /// database options.
    fn database_options(&mut self) -> Result<(Option<String>, Option<String>), String> {
        let (mut charset, mut collate) = (None, None);
        while self.peek().is_some() && !self.at_sym(';') {
            self.eat_kw("DEFAULT");
            if self.eat_kws(&["CHARACTER", "SET"]) || self.eat_kw("CHARSET") {
                self.eat_sym('=');
                charset = Some(self.ident()?.to_ascii_lowercase());
            } else if self.eat_kw("COLLATE") {
                self.eat_sym('=');
                collate = Some(self.ident()?.to_ascii_lowercase());
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
        if self.eat_kws(&["CHARACTER", "SET"]) || self.eat_kw("CHARSET") {
            self.eat_sym('=');
            return Ok((Some(self.ident()?.to_ascii_lowercase()), None));
        }
        if self.eat_kw("COLLATE") {
            self.eat_sym('=');
            return Ok((None, Some(self.ident()?.to_ascii_lowercase())));
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

    /// `name type [attributes]`.
    fn column(&mut self) -> Result<ColumnSpec, String> {
        let name = self.ident()?;
        self.column_body(name)
    }

    fn column_body(&mut self, name: String) -> Result<ColumnSpec, String> {
        let mut c = self.data_type(name)?;
        // Attributes, to the `,` or `)` that ends the definition.
        loop {
            match self.peek() {
                None | Some(Tok::Sym(',')) | Some(Tok::Sym(')')) | Some(Tok::Sym(';')) => break,
                Some(Tok::Sym('(')) => self.skip_parens()?,
                Some(t) if t.is("FIRST") || t.is("AFTER") => break,
                Some(t) if t.is("NOT") => {
                    self.at += 1;
                    if self.eat_kw("NULL") {
                        c.nullable = false;
                    }
                }
                Some(t) if t.is("NULL") => {
                    self.at += 1;
                    c.nullable = true;
                }
                Some(t)
                    if t.is("DEFAULT")
                        || t.is("COMMENT")
                        || t.is("ON")
                        || t.is("SRID")
                        || t.is("COLUMN_FORMAT")
                        || t.is("STORAGE") =>
                {
                    self.default_or_value()?;
                }
                Some(t) if t.is("PRIMARY") => {
                    self.at += 1;
                    self.eat_kw("KEY");
                    c.primary = true;
                    c.nullable = false;
                }
                Some(t) if t.is("UNIQUE") => {
                    self.at += 1;
                    self.eat_kw("KEY");
                }
                Some(t) if t.is("KEY") => {
                    // A bare KEY on a column is PRIMARY KEY.
                    self.at += 1;
                    c.primary = true;
                    c.nullable = false;
                }
                Some(t) if t.is("CHARACTER") || t.is("CHARSET") => {
                    self.at += 1;
                    self.eat_kw("SET");
                    self.eat_sym('=');
                    c.charset = Some(self.ident()?.to_ascii_lowercase());
                }
                Some(t) if t.is("COLLATE") => {
                    self.at += 1;
                    self.eat_sym('=');
                    c.collate = Some(self.ident()?.to_ascii_lowercase());
                }
                Some(t) if t.is("REFERENCES") => {
                    // Runs to the end of the definition.
                    self.skip_clause()?;
                }
                Some(_) => self.at += 1,
            }
        }
        Ok(c)
    }

    /// DEFAULT value (a literal, a signed number, a function call or an
    /// expression in parentheses), COMMENT 'x', ON UPDATE f(), SRID n, ...
    fn default_or_value(&mut self) -> Result<(), String> {
        let on = self.at_kw("ON");
        self.at += 1;
        if on {
            self.eat_kw("UPDATE");
        }
        self.eat_sym('=');
        // A charset introducer (_utf8mb4'x'), a sign, then the value.
        if matches!(self.peek(), Some(Tok::Word(w)) if w.starts_with('_'))
            && matches!(self.peek_at(1), Some(Tok::Str(_)))
        {
            self.at += 1;
        }
        while self.eat_sym('-') || self.eat_sym('+') {}
        match self.next() {
            Some(Tok::Word(_)) => {
                if self.at_sym('(') {
                    self.skip_parens()?;
                }
            }
            Some(Tok::Sym('(')) => {
                self.at -= 1;
                self.skip_parens()?;
            }
            Some(_) => {}
            None => return Err("a value is missing at the end".into()),
        }
        Ok(())
    }

    /// The type and its modifiers (UNSIGNED, ZEROFILL, BINARY, charset).
    fn data_type(&mut self, name: String) -> Result<ColumnSpec, String> {
        let word = match self.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            Some(t) => {
                return Err(format!(
                    "expected the type of column {name}, found {}",
                    shown(t)
                ))
            }
            None => return Err(format!("column {name} has no type")),
        };
        let mut charset = None;
        let mut extra_unsigned = false;
        let mut data_type = match word.as_str() {
            "integer" | "int4" => "int".to_string(),
            "int1" | "bool" | "boolean" => "tinyint".to_string(),
            "int2" => "smallint".to_string(),
            "int3" | "middleint" => "mediumint".to_string(),
            "int8" => "bigint".to_string(),
            "dec" | "numeric" | "fixed" => "decimal".to_string(),
            "real" | "float8" => "double".to_string(),
            "float4" => "float".to_string(),
            "double" => {
                self.eat_kw("PRECISION");
                "double".to_string()
            }
            "serial" => {
                extra_unsigned = true;
                "bigint".to_string()
            }
            "national" | "nchar" | "nvarchar" => {
                charset = Some("utf8mb3".to_string());
                match word.as_str() {
                    "nvarchar" => "varchar".to_string(),
                    "nchar" if self.eat_kw("VARCHAR") || self.eat_kw("VARYING") => {
                        "varchar".to_string()
                    }
                    "nchar" => "char".to_string(),
                    _ => {
                        let t = self.ident()?.to_ascii_lowercase();
                        if (t == "char" || t == "character") && self.eat_kw("VARYING")
                            || t == "varchar"
                        {
                            "varchar".to_string()
                        } else {
                            "char".to_string()
                        }
                    }
                }
            }
            "character" | "char" => {
                if self.eat_kw("VARYING") {
                    "varchar".to_string()
                } else {
                    "char".to_string()
                }
            }
            "long" => {
                if self.eat_kw("VARBINARY") {
                    "mediumblob".to_string()
                } else {
                    self.eat_kw("VARCHAR");
                    "mediumtext".to_string()
                }
            }
            other => other.to_string(),
        };
        if !type_word(&data_type) {
            return Err(format!(
                "column {name} has type `{word}`, which binlog2kafka does not know"
            ));
        }
        let mut args = Vec::new();
        if self.eat_sym('(') {
            loop {
                match self.next() {
                    Some(Tok::Num(n)) => args.push(n.clone()),
                    Some(Tok::Str(s)) => args.push(s.clone()),
                    // _utf8mb4'label' or X'..' in a label list.
                    Some(Tok::Word(w))
                        if matches!(self.peek(), Some(Tok::Str(_)))
                            && (w.starts_with('_')
                                || w.eq_ignore_ascii_case("x")
                                || w.eq_ignore_ascii_case("b")) =>
                    {
                        if let Some(Tok::Str(s)) = self.next() {
                            args.push(s.clone());
                        }
                    }
                    Some(t) => {
                        return Err(format!(
                            "column {name}: unexpected {} in its type",
                            shown(t)
                        ))
                    }
                    None => return Err(format!("column {name}: its type does not end")),
                }
                if self.eat_sym(')') {
                    break;
                }
                self.expect_sym(',')?;
            }
        }
        let mut c = ColumnSpec {
            name,
            data_type: String::new(),
            args,
            unsigned: extra_unsigned,
            charset,
            collate: None,
            nullable: !extra_unsigned,
            primary: false,
        };
        loop {
            if self.eat_kw("UNSIGNED") {
                c.unsigned = true;
            } else if self.eat_kw("SIGNED") || self.eat_kw("ZEROFILL") {
                // ZEROFILL implies UNSIGNED.
                if self.t[self.at - 1].is("ZEROFILL") {
                    c.unsigned = true;
                }
            } else if self.eat_kw("BINARY") {
                // CHAR(n) BINARY: the charset's binary collation.
                c.collate.get_or_insert_with(|| "binary".into());
            } else if self.eat_kw("ASCII") {
                c.charset = Some("latin1".into());
            } else if self.eat_kw("UNICODE") {
                c.charset = Some("ucs2".into());
            } else if self.eat_kw("BYTE") {
                data_type = match data_type.as_str() {
                    "char" => "binary".into(),
                    "varchar" => "varbinary".into(),
                    other => other.into(),
                };
            } else {
                break;
            }
        }
        c.data_type = data_type;
        Ok(c)
    }

    fn alter_table(&mut self) -> Result<Ddl, String> {
        self.if_exists();
        let name = self.name()?;
        self.wait();
        let mut ops = Vec::new();
        while self.peek().is_some() && !self.at_sym(';') {
            self.alter_op(&mut ops)?;
            if !self.eat_sym(',') {
                // Partitioning may follow without a comma.
                if self.at_kw("PARTITION") || self.at_kw("REMOVE") {
                    self.at = self.t.len();
                }
                break;
            }
        }
        Ok(Ddl::AlterTable { name, ops })
    }

    fn place(&mut self) -> Result<Option<Place>, String> {
        if self.eat_kw("FIRST") {
            Ok(Some(Place::First))
        } else if self.eat_kw("AFTER") {
            Ok(Some(Place::After(self.ident()?)))
        } else {
            Ok(None)
        }
    }

    fn alter_op(&mut self, ops: &mut Vec<AlterOp>) -> Result<(), String> {
        if self.eat_kw("ADD") {
            if self.eat_kws(&["SYSTEM", "VERSIONING"]) {
                ops.push(AlterOp::Unmodelled("ADD SYSTEM VERSIONING".into()));
                return Ok(());
            }
            let column_kw = self.eat_kw("COLUMN");
            let if_not_exists = self.if_not_exists();
            if self.eat_sym('(') {
                loop {
                    let column = self.column()?;
                    ops.push(AlterOp::Add {
                        column,
                        place: None,
                        if_not_exists,
                    });
                    if self.eat_sym(')') {
                        return Ok(());
                    }
                    self.expect_sym(',')?;
                }
            }
            if column_kw || self.starts_column() {
                let column = self.column()?;
                let place = self.place()?;
                ops.push(AlterOp::Add {
                    column,
                    place,
                    if_not_exists,
                });
                return Ok(());
            }
            if let Some(pk) = self.key_clause()? {
                ops.push(AlterOp::AddPrimaryKey(pk));
            }
            return Ok(());
        }
        if self.eat_kw("DROP") {
            if self.eat_kws(&["PRIMARY", "KEY"]) {
                ops.push(AlterOp::DropPrimaryKey);
                return Ok(());
            }
            if self.eat_kws(&["SYSTEM", "VERSIONING"]) {
                ops.push(AlterOp::Unmodelled("DROP SYSTEM VERSIONING".into()));
                return Ok(());
            }
            let other = [
                "INDEX",
                "KEY",
                "FOREIGN",
                "CHECK",
                "CONSTRAINT",
                "PARTITION",
                "PERIOD",
                "DEFAULT",
            ];
            if other.iter().any(|k| self.at_kw(k)) {
                return self.skip_clause();
            }
            self.eat_kw("COLUMN");
            let if_exists = self.if_exists();
            let name = self.ident()?;
            self.eat_kw("RESTRICT");
            self.eat_kw("CASCADE");
            ops.push(AlterOp::Drop { name, if_exists });
            return Ok(());
        }
        if self.eat_kw("MODIFY") {
            self.eat_kw("COLUMN");
            let if_exists = self.if_exists();
            let column = self.column()?;
            let place = self.place()?;
            ops.push(AlterOp::Redefine {
                old: column.name.clone(),
                column,
                place,
                if_exists,
            });
            return Ok(());
        }
        if self.eat_kw("CHANGE") {
            self.eat_kw("COLUMN");
            let if_exists = self.if_exists();
            let old = self.ident()?;
            let column = self.column()?;
            let place = self.place()?;
            ops.push(AlterOp::Redefine {
                old,
                column,
                place,
                if_exists,
            });
            return Ok(());
        }
        if self.eat_kw("RENAME") {
            if self.eat_kw("COLUMN") {
                let old = self.ident()?;
                self.expect_kw("TO")?;
                ops.push(AlterOp::RenameColumn {
                    old,
                    new: self.ident()?,
                });
                return Ok(());
            }
            if self.eat_kw("INDEX") || self.eat_kw("KEY") {
                return self.skip_clause();
            }
            if !self.eat_kw("TO") {
                self.eat_kw("AS");
            }
            ops.push(AlterOp::RenameTo(self.name()?));
            return Ok(());
        }
        if self.eat_kw("ALTER") {
            // ALTER [COLUMN] c SET/DROP DEFAULT, SET [IN]VISIBLE; ALTER
            // INDEX/CHECK/CONSTRAINT: no row shape.
            return self.skip_clause();
        }
        if self.eat_kw("CONVERT") {
            self.expect_kw("TO")?;
            let (charset, collate) = self.charset_clause()?;
            ops.push(AlterOp::Convert { charset, collate });
            return Ok(());
        }
        if self.at_kw("DEFAULT")
            || self.at_kw("CHARACTER")
            || self.at_kw("CHARSET")
            || self.at_kw("COLLATE")
        {
            if self.at_kw("DEFAULT")
                && !matches!(self.peek_at(1), Some(t) if t.is("CHARACTER") || t.is("CHARSET") || t.is("COLLATE"))
            {
                return Err(self.unexpected("CHARACTER SET or COLLATE after DEFAULT"));
            }
            self.eat_kw("DEFAULT");
            let (charset, collate) = self.charset_clause()?;
            ops.push(AlterOp::DefaultCharset { charset, collate });
            return Ok(());
        }
        let (cs, co) = self.table_option()?;
        if cs.is_some() || co.is_some() {
            ops.push(AlterOp::DefaultCharset {
                charset: cs,
                collate: co,
            });
        }
        Ok(())
    }

    /// `CHARACTER SET x [COLLATE y]`, `CHARSET x`, `COLLATE y`, with `=`.
    fn charset_clause(&mut self) -> Result<(Option<String>, Option<String>), String> {
        let (mut charset, mut collate) = (None, None);
        loop {
            if self.eat_kws(&["CHARACTER", "SET"]) || self.eat_kw("CHARSET") {
                self.eat_sym('=');
                charset = Some(self.ident()?.to_ascii_lowercase());
            } else if self.eat_kw("COLLATE") {
                self.eat_sym('=');
                collate = Some(self.ident()?.to_ascii_lowercase());
            } else {
                break;
            }
        }
        if charset.is_none() && collate.is_none() {
            return Err(self.unexpected("CHARACTER SET or COLLATE"));
        }
        Ok((charset, collate))
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

/// The type names binlog2kafka knows (after aliases are resolved).
pub fn type_word(w: &str) -> bool {
    const TYPES: &[&str] = &[
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "bool",
        "boolean",
        "int1",
        "int2",
        "int3",
        "int4",
        "int8",
        "middleint",
        "serial",
        "decimal",
        "dec",
        "numeric",
        "fixed",
        "float",
        "float4",
        "float8",
        "double",
        "real",
        "bit",
        "date",
        "datetime",
        "timestamp",
        "time",
        "year",
        "char",
        "character",
        "varchar",
        "nchar",
        "nvarchar",
        "national",
        "binary",
        "varbinary",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "long",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "enum",
        "set",
        "json",
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
        "inet6",
        "inet4",
        "uuid",
    ];
    TYPES.iter().any(|t| w.eq_ignore_ascii_case(t))
}
