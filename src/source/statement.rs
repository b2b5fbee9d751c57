//! Row changes logged as statements.
//!
//! With `binlog_format=STATEMENT` or `MIXED` for a session (pt-table-checksum
//! and some migration tools set it) or for the whole server, INSERT, UPDATE
//! and DELETE reach the binlog as the SQL text in a Query event, not as
//! rows. binlog2kafka cannot turn SQL into rows, so such a statement on a
//! published table is a change it would otherwise drop without a word; the
//! reader stops at it instead (or warns, with `mysql.on_statement_dml=warn`).

/// The statement kinds that change rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmlVerb {
    Insert,
    Replace,
    Update,
    Delete,
    LoadData,
}

impl DmlVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            DmlVerb::Insert => "INSERT",
            DmlVerb::Replace => "REPLACE",
            DmlVerb::Update => "UPDATE",
            DmlVerb::Delete => "DELETE",
            DmlVerb::LoadData => "LOAD DATA",
        }
    }
}

/// A row-changing statement and the table it changes (its first target
/// for multi-table statements; `None` when the text could not be read, which
/// the caller treats as a published table, to be safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dml {
    pub verb: DmlVerb,
    pub table: Option<(String, String)>,
}

/// Classifies `sql` (run with default database `schema`).
pub fn classify(sql: &str, schema: &str) -> Option<Dml> {
    let mut t = Tokens::new(sql);
    let verb = match t.word()?.to_ascii_uppercase().as_str() {
        "INSERT" => DmlVerb::Insert,
        "REPLACE" => DmlVerb::Replace,
        "UPDATE" => DmlVerb::Update,
        "DELETE" => DmlVerb::Delete,
        "LOAD" => {
            t.word()
                .filter(|w| w.eq_ignore_ascii_case("DATA") || w.eq_ignore_ascii_case("XML"))?;
            // LOAD DATA ... INFILE 'f' [REPLACE|IGNORE] INTO TABLE name
            let upper = sql.to_ascii_uppercase();
            let table = upper
                .find("INTO TABLE")
                .and_then(|at| Tokens::new(&sql[at + "INTO TABLE".len()..]).table(schema));
            return Some(Dml {
                verb: DmlVerb::LoadData,
                table,
            });
        }
        _ => return None,
    };
    const MODIFIERS: &[&str] = &[
        "LOW_PRIORITY",
        "DELAYED",
        "HIGH_PRIORITY",
        "IGNORE",
        "QUICK",
        "INTO",
        "FROM",
    ];
    let mut save = t.clone();
    while let Some(w) = t.word() {
        if MODIFIERS.iter().any(|m| w.eq_ignore_ascii_case(m)) {
            save = t.clone();
        } else {
            break;
        }
    }
    let table = save.table(schema);
    Some(Dml { verb, table })
}

/// A tiny SQL tokenizer: words, quoted identifiers, comments skipped.
#[derive(Clone)]
struct Tokens<'a> {
    s: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens { s }
    }

    fn skip_space(&mut self) {
        loop {
            let s = self.s.trim_start();
            if let Some(r) = s.strip_prefix("/*") {
                self.s = r.find("*/").map_or("", |i| &r[i + 2..]);
            } else if s.starts_with("--") || s.starts_with('#') {
                self.s = s.find('\n').map_or("", |i| &s[i + 1..]);
            } else {
                self.s = s;
                return;
            }
        }
    }

    /// The next bare word.
    fn word(&mut self) -> Option<&'a str> {
        self.skip_space();
        let end = self
            .s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(self.s.len());
        if end == 0 {
            return None;
        }
        let w = &self.s[..end];
        self.s = &self.s[end..];
        Some(w)
    }

    /// One identifier, bare or in backquotes.
    fn ident(&mut self) -> Option<String> {
        self.skip_space();
        if let Some(r) = self.s.strip_prefix('`') {
            let mut out = String::new();
            let mut chars = r.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '`' {
                    if r[i + 1..].starts_with('`') {
                        out.push('`');
                        chars.next();
                        continue;
                    }
                    self.s = &r[i + 1..];
                    return Some(out);
                }
                out.push(c);
            }
            None
        } else {
            self.word().map(str::to_string)
        }
    }

    /// `db.table` or `table` (in `schema`).
    fn table(&mut self, schema: &str) -> Option<(String, String)> {
        let first = self.ident()?;
        if let Some(r) = self.s.strip_prefix('.') {
            self.s = r;
            let second = self.ident()?;
            Some((first, second))
        } else {
            Some((schema.to_string(), first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(sql: &str) -> Option<(DmlVerb, Option<(String, String)>)> {
        classify(sql, "shop").map(|d| (d.verb, d.table))
    }

    fn t(db: &str, table: &str) -> Option<(String, String)> {
        Some((db.into(), table.into()))
    }

    #[test]
    fn finds_the_table_of_each_dml_form() {
        assert_eq!(
            target("INSERT INTO orders VALUES (1)"),
            Some((DmlVerb::Insert, t("shop", "orders")))
        );
        assert_eq!(
            target("insert low_priority ignore into `my db`.`odd``name` (a) values (1)"),
            Some((DmlVerb::Insert, t("my db", "odd`name")))
        );
        assert_eq!(
            target("REPLACE t2 SET a=1"),
            Some((DmlVerb::Replace, t("shop", "t2")))
        );
        assert_eq!(
            target("/* pt-table-checksum */ UPDATE IGNORE x.y SET a=1"),
            Some((DmlVerb::Update, t("x", "y")))
        );
        assert_eq!(
            target("DELETE QUICK FROM orders WHERE id=1"),
            Some((DmlVerb::Delete, t("shop", "orders")))
        );
        assert_eq!(
            target("LOAD DATA LOCAL INFILE '/tmp/f' REPLACE INTO TABLE b.c"),
            Some((DmlVerb::LoadData, t("b", "c")))
        );
    }

    #[test]
    fn other_statements_are_not_dml() {
        for s in [
            "BEGIN",
            "COMMIT",
            "CREATE TABLE t (a INT)",
            "GRANT SELECT ON *.* TO x",
            "SAVEPOINT a",
            "XA END X'31',X'',1",
            "SET @a=1",
        ] {
            assert_eq!(target(s), None, "{s}");
        }
    }
}
