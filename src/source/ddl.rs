//! Tells a DDL statement from the other statements a Query event carries
//! (GRANT, CREATE USER, FLUSH, ...), and names the table it changes, for
//! `kafka.ddl_topic`. It reads only the statement's head: enough for
//! routing and filtering, not a SQL parser.

use crate::event::DdlKind;

/// A statement's kind, database and table (empty for database
/// statements); `None` for statements that change no table or database.
/// `default_db` is the Query event's current database.
pub fn classify(sql: &str, default_db: &str) -> Option<(DdlKind, String, String)> {
    let mut w = Words::new(sql);
    let first = w.word()?.to_ascii_uppercase();
    let kind = match first.as_str() {
        "CREATE" => {
            let mut next = w.word()?.to_ascii_uppercase();
            // CREATE OR REPLACE, CREATE TEMPORARY, CREATE UNIQUE INDEX ...
            while matches!(
                next.as_str(),
                "OR" | "REPLACE" | "TEMPORARY" | "UNIQUE" | "FULLTEXT" | "SPATIAL"
            ) {
                next = w.word()?.to_ascii_uppercase();
            }
            match next.as_str() {
                "TABLE" => DdlKind::CreateTable,
                "DATABASE" | "SCHEMA" => DdlKind::CreateDatabase,
                "INDEX" => DdlKind::CreateIndex,
                _ => return None,
            }
        }
        "ALTER" => {
            let mut next = w.word()?.to_ascii_uppercase();
            while matches!(next.as_str(), "ONLINE" | "IGNORE") {
                next = w.word()?.to_ascii_uppercase();
            }
            match next.as_str() {
                "TABLE" => DdlKind::AlterTable,
                "DATABASE" | "SCHEMA" => DdlKind::AlterDatabase,
                _ => return None,
            }
        }
        "DROP" => {
            let mut next = w.word()?.to_ascii_uppercase();
            if next == "TEMPORARY" {
                next = w.word()?.to_ascii_uppercase();
            }
            match next.as_str() {
                "TABLE" => DdlKind::DropTable,
                "DATABASE" | "SCHEMA" => DdlKind::DropDatabase,
                "INDEX" => DdlKind::DropIndex,
                _ => return None,
            }
        }
        "RENAME" => match w.word()?.to_ascii_uppercase().as_str() {
            "TABLE" => DdlKind::RenameTable,
            _ => return None,
        },
        "TRUNCATE" => DdlKind::TruncateTable,
        _ => return None,
    };
    if kind == DdlKind::TruncateTable {
        w.skip_keyword("TABLE");
    }
    w.skip_keyword("IF");
    w.skip_keyword("NOT");
    w.skip_keyword("EXISTS");
    let mut name = w.name()?;
    if matches!(kind, DdlKind::CreateIndex | DdlKind::DropIndex) {
        // CREATE INDEX i ON t (...), DROP INDEX i ON t: the table follows ON.
        while !w.word()?.eq_ignore_ascii_case("ON") {}
        name = w.name()?;
    }
    let database_level = matches!(
        kind,
        DdlKind::CreateDatabase | DdlKind::AlterDatabase | DdlKind::DropDatabase
    );
    Some(match (database_level, name) {
        (true, (_, db)) => (kind, db, String::new()),
        (false, (Some(db), table)) => (kind, db, table),
        (false, (None, table)) => (kind, default_db.to_string(), table),
    })
}

pub use crate::event::{TableDdl, TableName};

/// The TRUNCATE or renames a statement makes: `TRUNCATE [TABLE] t`,
/// `RENAME TABLE[S] [IF EXISTS] a TO b[, c TO d ...]` (MariaDB's `WAIT n` /
/// `NOWAIT` too) and `ALTER TABLE a ... RENAME [TO|AS] b`.
pub fn table_ddl(sql: &str, default_db: &str) -> Option<TableDdl> {
    let qualify =
        |(db, t): (Option<String>, String)| (db.unwrap_or_else(|| default_db.to_string()), t);
    let mut w = Words::new(sql);
    let first = w.word()?.to_ascii_uppercase();
    match first.as_str() {
        "TRUNCATE" => {
            w.skip_keyword("TABLE");
            Some(TableDdl::Truncate(qualify(w.name()?)))
        }
        "RENAME" => {
            let kw = w.word()?;
            if !kw.eq_ignore_ascii_case("TABLE") && !kw.eq_ignore_ascii_case("TABLES") {
                return None;
            }
            w.skip_keyword("IF");
            w.skip_keyword("EXISTS");
            let mut pairs = Vec::new();
            loop {
                let from = qualify(w.name()?);
                w.skip_wait();
                if !w.word()?.eq_ignore_ascii_case("TO") {
                    return None;
                }
                pairs.push((from, qualify(w.name()?)));
                w.skip_blank();
                if w.s.get(w.at) != Some(&b',') {
                    break;
                }
                w.at += 1;
            }
            Some(TableDdl::Rename(pairs))
        }
        "ALTER" => {
            let mut next = w.word()?.to_ascii_uppercase();
            while matches!(next.as_str(), "ONLINE" | "IGNORE") {
                next = w.word()?.to_ascii_uppercase();
            }
            if next != "TABLE" {
                return None;
            }
            w.skip_keyword("IF");
            w.skip_keyword("EXISTS");
            let from = qualify(w.name()?);
            // A RENAME clause anywhere in the list; not RENAME COLUMN,
            // INDEX or KEY. Strings (COMMENT '...') are stepped over.
            loop {
                w.skip_blank();
                if let Some(&q @ (b'\'' | b'"')) = w.s.get(w.at) {
                    w.skip_string(q);
                    continue;
                }
                if !w.word()?.eq_ignore_ascii_case("RENAME") {
                    continue;
                }
                let save = w.at;
                match w.word()?.to_ascii_uppercase().as_str() {
                    "COLUMN" | "INDEX" | "KEY" => continue,
                    "TO" | "AS" => {}
                    _ => w.at = save,
                }
                let to = qualify(w.name()?);
                return Some(TableDdl::Rename(vec![(from, to)]));
            }
        }
        _ => None,
    }
}

/// A cursor over a statement's words, skipping comments.
struct Words<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Words {
            s: sql.as_bytes(),
            at: 0,
        }
    }

    fn skip_blank(&mut self) {
        loop {
            while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            let rest = &self.s[self.at..];
            if rest.starts_with(b"/*") {
                self.at += rest
                    .windows(2)
                    .position(|p| p == b"*/")
                    .map_or(rest.len(), |i| i + 2);
            } else if rest.starts_with(b"-- ") || rest.starts_with(b"#") {
                self.at += rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| i + 1);
            } else {
                return;
            }
        }
    }

    /// The next bare word (letters, digits, `_`, `$`).
    fn word(&mut self) -> Option<&'a str> {
        self.skip_blank();
        let start = self.at;
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_alphanumeric() || matches!(self.s[self.at], b'_' | b'$'))
        {
            self.at += 1;
        }
        if self.at == start {
            // Punctuation: step over it so callers scanning for a word
            // make progress.
            if self.at < self.s.len() {
                self.at += 1;
                return Some("");
            }
            return None;
        }
        std::str::from_utf8(&self.s[start..self.at]).ok()
    }

    /// MariaDB's `WAIT n` or `NOWAIT` after a table name.
    fn skip_wait(&mut self) {
        let save = self.at;
        match self.word() {
            Some(w) if w.eq_ignore_ascii_case("NOWAIT") => {}
            Some(w) if w.eq_ignore_ascii_case("WAIT") => {
                self.word();
            }
            _ => self.at = save,
        }
    }

    /// A quoted string starting at the cursor, `q` its quote.
    fn skip_string(&mut self, q: u8) {
        self.at += 1;
        while self.at < self.s.len() {
            let b = self.s[self.at];
            self.at += 1;
            if b == b'\\' {
                self.at += 1;
            } else if b == q {
                if self.s.get(self.at) == Some(&q) {
                    self.at += 1;
                } else {
                    return;
                }
            }
        }
    }

    fn skip_keyword(&mut self, kw: &str) {
        let save = self.at;
        if !self.word().is_some_and(|w| w.eq_ignore_ascii_case(kw)) {
            self.at = save;
        }
    }

    /// One identifier, bare or in backquotes.
    fn ident(&mut self) -> Option<String> {
        self.skip_blank();
        if self.s.get(self.at) == Some(&b'`') {
            let mut out = Vec::new();
            self.at += 1;
            while self.at < self.s.len() {
                let b = self.s[self.at];
                self.at += 1;
                if b == b'`' {
                    if self.s.get(self.at) == Some(&b'`') {
                        out.push(b'`');
                        self.at += 1;
                        continue;
                    }
                    return String::from_utf8(out).ok();
                }
                out.push(b);
            }
            return None;
        }
        let w = self.word()?;
        (!w.is_empty()).then(|| w.to_string())
    }

    /// `name` or `db.name`.
    fn name(&mut self) -> Option<(Option<String>, String)> {
        let first = self.ident()?;
        if self.s.get(self.at) == Some(&b'.') {
            self.at += 1;
            let second = self.ident()?;
            return Some((Some(first), second));
        }
        Some((None, first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sql: &str) -> Option<(DdlKind, String, String)> {
        classify(sql, "cur")
    }

    fn is(kind: DdlKind, db: &str, table: &str) -> Option<(DdlKind, String, String)> {
        Some((kind, db.to_string(), table.to_string()))
    }

    #[test]
    fn table_statements_name_their_table() {
        assert_eq!(
            c("ALTER TABLE t ADD COLUMN x INT"),
            is(DdlKind::AlterTable, "cur", "t")
        );
        assert_eq!(
            c("create table if not exists `shop`.`order s` (id int)"),
            is(DdlKind::CreateTable, "shop", "order s")
        );
        assert_eq!(
            c("DROP TABLE IF EXISTS `t` /* generated by server */"),
            is(DdlKind::DropTable, "cur", "t")
        );
        assert_eq!(
            c("/* lead */ RENAME TABLE a.b TO a.c"),
            is(DdlKind::RenameTable, "a", "b")
        );
        assert_eq!(c("TRUNCATE t2"), is(DdlKind::TruncateTable, "cur", "t2"));
        assert_eq!(
            c("CREATE UNIQUE INDEX i ON s.t (a)"),
            is(DdlKind::CreateIndex, "s", "t")
        );
        assert_eq!(
            c("ALTER ONLINE IGNORE TABLE x.y ENGINE=InnoDB"),
            is(DdlKind::AlterTable, "x", "y")
        );
        assert_eq!(
            c("CREATE OR REPLACE TABLE t (a int)"),
            is(DdlKind::CreateTable, "cur", "t")
        );
    }

    fn t(db: &str, table: &str) -> TableName {
        (db.to_string(), table.to_string())
    }

    #[test]
    fn truncates_and_renames_name_every_table_they_move() {
        assert_eq!(
            table_ddl("TRUNCATE TABLE `x`.t", "cur"),
            Some(TableDdl::Truncate(t("x", "t")))
        );
        assert_eq!(
            table_ddl("truncate t2", "cur"),
            Some(TableDdl::Truncate(t("cur", "t2")))
        );
        // pt-online-schema-change's swap, across databases, MariaDB's WAIT.
        assert_eq!(
            table_ddl(
                "RENAME TABLE `t` TO `_t_old`, other.`_t_new` WAIT 5 TO t, a.b TO c.d",
                "cur"
            ),
            Some(TableDdl::Rename(vec![
                (t("cur", "t"), t("cur", "_t_old")),
                (t("other", "_t_new"), t("cur", "t")),
                (t("a", "b"), t("c", "d")),
            ]))
        );
        assert_eq!(
            table_ddl("RENAME TABLES IF EXISTS a TO b", "cur"),
            Some(TableDdl::Rename(vec![(t("cur", "a"), t("cur", "b"))]))
        );
        for (sql, to) in [
            ("ALTER TABLE a RENAME TO b", "b"),
            ("ALTER TABLE a RENAME AS b", "b"),
            ("alter table a rename b", "b"),
            (
                "ALTER TABLE a COMMENT 'rename to x', RENAME COLUMN c TO d, RENAME INDEX i TO j, RENAME TO `e f`",
                "e f",
            ),
        ] {
            assert_eq!(
                table_ddl(sql, "cur"),
                Some(TableDdl::Rename(vec![(t("cur", "a"), t("cur", to))])),
                "{sql}"
            );
        }
        for sql in [
            "ALTER TABLE a RENAME COLUMN c TO d",
            "ALTER TABLE a ADD COLUMN c INT",
            "ALTER TABLE a COMMENT 'RENAME TO x'",
            "DROP TABLE a",
            "RENAME USER a TO b",
        ] {
            assert_eq!(table_ddl(sql, "cur"), None, "{sql}");
        }
    }

    #[test]
    fn database_statements_name_the_database() {
        assert_eq!(
            c("CREATE DATABASE IF NOT EXISTS shop"),
            is(DdlKind::CreateDatabase, "shop", "")
        );
        assert_eq!(c("drop schema `x`"), is(DdlKind::DropDatabase, "x", ""));
    }

    #[test]
    fn other_statements_are_not_ddl() {
        for sql in [
            "GRANT SELECT ON *.* TO u",
            "CREATE USER u",
            "FLUSH PRIVILEGES",
            "CREATE VIEW v AS SELECT 1",
            "SAVEPOINT a",
            "",
        ] {
            assert_eq!(c(sql), None, "{sql}");
        }
    }
}
