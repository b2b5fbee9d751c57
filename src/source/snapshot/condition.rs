//! The `--where` condition of a snapshot request, parsed and rendered again.
//!
//! A request arrives through the commit-log topic, so whoever may write to
//! that topic writes this text. It must never reach the server as SQL: a `)`
//! would close the chunk query's parenthesis and open a `UNION` over any
//! table the replication user can read. So the text is parsed here into a
//! boolean expression over the requested table's own columns, and the SQL
//! the server sees is rendered from that tree: identifiers quoted with
//! backticks and checked against the table's columns, numbers re-spelled
//! from their digits, strings sent as bound parameters (never in the SQL
//! text). What the grammar does not name is refused: subqueries, other
//! tables (no `.` in a name), comments, `;`, variables, placeholders and any
//! function outside a short list of pure ones (no `SLEEP`, `BENCHMARK`,
//! `LOAD_FILE`).

use std::fmt;

/// Why a condition is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError(pub String);

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConditionError {}

fn refuse<T>(what: impl Into<String>) -> Result<T, ConditionError> {
    Err(ConditionError(what.into()))
}

/// Functions a condition may call: pure, no side effects, no delay, no
/// access to anything but their arguments.
const FUNCTIONS: &[&str] = &[
    "ABS",
    "CEIL",
    "CEILING",
    "CHAR_LENGTH",
    "COALESCE",
    "CONCAT",
    "CURDATE",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
    "DATE",
    "DAY",
    "FLOOR",
    "HOUR",
    "IFNULL",
    "LEFT",
    "LENGTH",
    "LOWER",
    "LTRIM",
    "MINUTE",
    "MOD",
    "MONTH",
    "NOW",
    "RIGHT",
    "ROUND",
    "RTRIM",
    "SECOND",
    "SUBSTRING",
    "TRIM",
    "UNIX_TIMESTAMP",
    "UPPER",
    "UTC_TIMESTAMP",
    "YEAR",
];

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Column(String),
    /// Digits, `.`, an exponent: re-spelled as parsed.
    Number(String),
    /// Bytes of a string literal, escapes resolved.
    Str(Vec<u8>),
    Null,
    Bool(bool),
    Call(String, Vec<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(Box<Expr>, &'static str, Box<Expr>),
    In(Box<Expr>, bool, Vec<Expr>),
    Between(Box<Expr>, bool, Box<Expr>, Box<Expr>),
    Like(Box<Expr>, bool, Box<Expr>),
    /// `IS [NOT] NULL|TRUE|FALSE`.
    Is(Box<Expr>, bool, &'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Str(Vec<u8>),
    Sym(&'static str),
}

impl Condition {
    /// Parses `text`; refuses anything but a boolean expression of the
    /// grammar above.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return refuse("the condition is empty");
        }
        let mut p = Parser { toks, at: 0 };
        let expr = p.or()?;
        if p.at < p.toks.len() {
            return refuse(format!(
                "unexpected {} after a complete condition",
                describe(&p.toks[p.at])
            ));
        }
        Ok(Condition { expr })
    }

    /// The column names the condition uses, as written.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.expr.columns(&mut out);
        out
    }

    /// Renders the condition as SQL for a table with `columns`: each name
    /// the condition uses must be one of them (compared as MySQL compares
    /// column names, ignoring case) and is written as the table spells it;
    /// strings become `?` with their bytes pushed onto `params`.
    pub fn render(
        &self,
        columns: &[&str],
        params: &mut Vec<mysql::Value>,
    ) -> Result<String, ConditionError> {
        let mut sql = String::new();
        self.expr.render(columns, &mut sql, params)?;
        Ok(sql)
    }
}

impl Expr {
    fn columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Column(c) => out.push(c),
            Expr::Number(_) | Expr::Str(_) | Expr::Null | Expr::Bool(_) => {}
            Expr::Call(_, args) => args.iter().for_each(|a| a.columns(out)),
            Expr::Neg(e) | Expr::Not(e) | Expr::Is(e, _, _) => e.columns(out),
            Expr::Binary(a, _, b) | Expr::Like(a, _, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::In(e, _, list) => {
                e.columns(out);
                list.iter().for_each(|a| a.columns(out));
            }
            Expr::Between(e, _, lo, hi) => {
                e.columns(out);
                lo.columns(out);
                hi.columns(out);
            }
        }
    }

    fn render(
        &self,
        columns: &[&str],
        sql: &mut String,
        params: &mut Vec<mysql::Value>,
    ) -> Result<(), ConditionError> {
        let not = |n: bool| if n { "NOT " } else { "" };
        match self {
            Expr::Column(c) => {
                let Some(real) = columns.iter().find(|k| k.eq_ignore_ascii_case(c)) else {
                    return refuse(format!("the table has no column {c:?}"));
                };
                sql.push('`');
                sql.push_str(&real.replace('`', "``"));
                sql.push('`');
            }
            Expr::Number(n) => sql.push_str(n),
            Expr::Str(s) => {
                sql.push('?');
                params.push(mysql::Value::Bytes(s.clone()));
            }
            Expr::Null => sql.push_str("NULL"),
            Expr::Bool(b) => sql.push_str(if *b { "TRUE" } else { "FALSE" }),
            Expr::Call(f, args) => {
                sql.push_str(f);
                sql.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    a.render(columns, sql, params)?;
                }
                sql.push(')');
            }
            Expr::Neg(e) => {
                sql.push_str("(-");
                e.render(columns, sql, params)?;
                sql.push(')');
            }
            Expr::Not(e) => {
                sql.push_str("(NOT ");
                e.render(columns, sql, params)?;
                sql.push(')');
            }
            Expr::Binary(a, op, b) => {
                sql.push('(');
                a.render(columns, sql, params)?;
                sql.push(' ');
                sql.push_str(op);
                sql.push(' ');
                b.render(columns, sql, params)?;
                sql.push(')');
            }
            Expr::In(e, n, list) => {
                sql.push('(');
                e.render(columns, sql, params)?;
                sql.push(' ');
                sql.push_str(not(*n));
                sql.push_str("IN (");
                for (i, a) in list.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    a.render(columns, sql, params)?;
                }
                sql.push_str("))");
            }
            Expr::Between(e, n, lo, hi) => {
                sql.push('(');
                e.render(columns, sql, params)?;
                sql.push(' ');
                sql.push_str(not(*n));
                sql.push_str("BETWEEN ");
                lo.render(columns, sql, params)?;
                sql.push_str(" AND ");
                hi.render(columns, sql, params)?;
                sql.push(')');
            }
            Expr::Like(a, n, b) => {
                sql.push('(');
                a.render(columns, sql, params)?;
                sql.push(' ');
                sql.push_str(not(*n));
                sql.push_str("LIKE ");
                b.render(columns, sql, params)?;
                sql.push(')');
            }
            Expr::Is(e, n, what) => {
                sql.push('(');
                e.render(columns, sql, params)?;
                sql.push_str(" IS ");
                sql.push_str(not(*n));
                sql.push_str(what);
                sql.push(')');
            }
        }
        Ok(())
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("'{w}'"),
        Tok::Quoted(w) => format!("`{w}`"),
        Tok::Number(n) => n.clone(),
        Tok::Str(_) => "a string".into(),
        Tok::Sym(s) => format!("'{s}'"),
    }
}

const SYMBOLS: &[&str] = &[
    "<=>", "<=", ">=", "<>", "!=", "=", "<", ">", "(", ")", ",", "+", "-", "*", "/", "%",
];

fn tokenize(text: &str) -> Result<Vec<Tok>, ConditionError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // Comments (`--`, `#`, `/*`, versioned `/*!`), statement ends and
        // variables have no place in a condition: refused by name, so the
        // requester learns why.
        match c {
            b'#' => return refuse("comments ('#') are not allowed"),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                return refuse("comments ('--') are not allowed")
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                return refuse("comments ('/*') are not allowed")
            }
            b';' => return refuse("';' is not allowed: one condition, not statements"),
            b'@' => return refuse("variables ('@') are not allowed"),
            b'?' => return refuse("placeholders ('?') are not allowed"),
            b'"' => {
                return refuse(
                    "double quotes are not allowed (a string or a name, depending on sql_mode): use 'single quotes' for strings and `backticks` for column names",
                )
            }
            _ => {}
        }
        if c == b'\'' {
            let (s, next) = string_literal(b, i)?;
            out.push(Tok::Str(s));
            i = next;
        } else if c == b'`' {
            let mut name = Vec::new();
            let mut j = i + 1;
            loop {
                match b.get(j) {
                    None => return refuse("a `quoted name` is not closed"),
                    Some(b'`') if b.get(j + 1) == Some(&b'`') => {
                        name.push(b'`');
                        j += 2;
                    }
                    Some(b'`') => break,
                    Some(&x) => {
                        name.push(x);
                        j += 1;
                    }
                }
            }
            let name = String::from_utf8(name)
                .map_err(|_| ConditionError("a quoted name is not UTF-8".into()))?;
            if name.is_empty() {
                return refuse("an empty `quoted name`");
            }
            out.push(Tok::Quoted(name));
            i = j + 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let (n, next) = number(b, i)?;
            out.push(Tok::Number(n));
            i = next;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$') {
                j += 1;
            }
            if b.get(j) == Some(&b'.') {
                return refuse(
                    "qualified names (with '.') are not allowed: name the table's own columns only",
                );
            }
            out.push(Tok::Word(text[i..j].to_string()));
            i = j;
        } else if let Some(s) = SYMBOLS.iter().find(|s| b[i..].starts_with(s.as_bytes())) {
            out.push(Tok::Sym(s));
            i += s.len();
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return refuse(format!("{ch:?} is not allowed in a condition"));
        }
    }
    Ok(out)
}

/// A `'...'` literal from `b[start]`, MySQL's escapes resolved (`''` and
/// backslash sequences, as with the default sql_mode).
fn string_literal(b: &[u8], start: usize) -> Result<(Vec<u8>, usize), ConditionError> {
    let mut s = Vec::new();
    let mut j = start + 1;
    loop {
        match b.get(j) {
            None => return refuse("a 'string' is not closed"),
            Some(b'\'') if b.get(j + 1) == Some(&b'\'') => {
                s.push(b'\'');
                j += 2;
            }
            Some(b'\'') => return Ok((s, j + 1)),
            Some(b'\\') => {
                let Some(&e) = b.get(j + 1) else {
                    return refuse("a 'string' is not closed");
                };
                s.extend_from_slice(match e {
                    b'0' => b"\0",
                    b'n' => b"\n",
                    b'r' => b"\r",
                    b't' => b"\t",
                    b'b' => b"\x08",
                    b'Z' => b"\x1a",
                    // LIKE's escapes keep their backslash, as MySQL does.
                    b'%' => b"\\%",
                    b'_' => b"\\_",
                    _ => std::slice::from_ref(&b[j + 1]),
                });
                j += 2;
            }
            Some(&x) => {
                s.push(x);
                j += 1;
            }
        }
    }
}

fn number(b: &[u8], start: usize) -> Result<(String, usize), ConditionError> {
    let mut j = start;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if b.get(k).is_some_and(u8::is_ascii_digit) {
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    // `1abc` would be a name in MySQL; `0x..` a hex literal: neither here.
    if b.get(j)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return refuse(format!(
            "'{}' is neither a number nor a column name",
            String::from_utf8_lossy(&b[start..(j + 1).min(b.len())])
        ));
    }
    Ok((String::from_utf8_lossy(&b[start..j]).into_owned(), j))
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn keyword(&mut self, k: &str) -> bool {
        if let Some(Tok::Word(w)) = self.peek() {
            if w.eq_ignore_ascii_case(k) {
                self.at += 1;
                return true;
            }
        }
        false
    }

    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.at += 1;
            return true;
        }
        false
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), ConditionError> {
        if self.sym(s) {
            return Ok(());
        }
        refuse(match self.peek() {
            Some(t) => format!("expected '{s}', found {}", describe(t)),
            None => format!("expected '{s}' at the end"),
        })
    }

    fn or(&mut self) -> Result<Expr, ConditionError> {
        let mut e = self.and()?;
        while self.keyword("OR") {
            e = Expr::Binary(Box::new(e), "OR", Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut e = self.not()?;
        while self.keyword("AND") {
            e = Expr::Binary(Box::new(e), "AND", Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if self.keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, ConditionError> {
        let left = self.sum()?;
        for op in ["<=>", "<=", ">=", "<>", "!=", "=", "<", ">"] {
            if self.sym(op) {
                let op = if op == "!=" { "<>" } else { op };
                return Ok(Expr::Binary(Box::new(left), op, Box::new(self.sum()?)));
            }
        }
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            for what in ["NULL", "TRUE", "FALSE"] {
                if self.keyword(what) {
                    return Ok(Expr::Is(Box::new(left), negated, what));
                }
            }
            return refuse("IS takes NULL, TRUE or FALSE");
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            self.expect_sym("(")?;
            let mut list = vec![self.sum()?];
            while self.sym(",") {
                list.push(self.sum()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::In(Box::new(left), negated, list));
        }
        if self.keyword("BETWEEN") {
            let lo = self.sum()?;
            if !self.keyword("AND") {
                return refuse("BETWEEN needs AND");
            }
            let hi = self.sum()?;
            return Ok(Expr::Between(
                Box::new(left),
                negated,
                Box::new(lo),
                Box::new(hi),
            ));
        }
        if self.keyword("LIKE") {
            let pattern = self.sum()?;
            if self.keyword("ESCAPE") {
                return refuse("LIKE ... ESCAPE is not supported; use the default escape '\\'");
            }
            return Ok(Expr::Like(Box::new(left), negated, Box::new(pattern)));
        }
        if negated {
            return refuse("NOT here must be followed by IN, BETWEEN or LIKE");
        }
        Ok(left)
    }

    fn sum(&mut self) -> Result<Expr, ConditionError> {
        let mut e = self.product()?;
        loop {
            let op = if self.sym("+") {
                "+"
            } else if self.sym("-") {
                "-"
            } else {
                return Ok(e);
            };
            e = Expr::Binary(Box::new(e), op, Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, ConditionError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.sym("*") {
                "*"
            } else if self.sym("/") {
                "/"
            } else if self.sym("%") {
                "%"
            } else {
                return Ok(e);
            };
            e = Expr::Binary(Box::new(e), op, Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, ConditionError> {
        if self.sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.sym("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        let Some(t) = self.peek().cloned() else {
            return refuse("the condition ends too early");
        };
        self.at += 1;
        match t {
            Tok::Number(n) => Ok(Expr::Number(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Quoted(name) => Ok(Expr::Column(name)),
            Tok::Sym("(") => {
                if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("SELECT") || w.eq_ignore_ascii_case("WITH") || w.eq_ignore_ascii_case("VALUES") || w.eq_ignore_ascii_case("TABLE"))
                {
                    return refuse("subqueries are not allowed");
                }
                let e = self.or()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym(s) => refuse(format!("unexpected '{s}'")),
            Tok::Word(w) => self.word(w),
        }
    }

    fn word(&mut self, w: String) -> Result<Expr, ConditionError> {
        let upper = w.to_ascii_uppercase();
        match upper.as_str() {
            "NULL" => return Ok(Expr::Null),
            "TRUE" => return Ok(Expr::Bool(true)),
            "FALSE" => return Ok(Expr::Bool(false)),
            "SELECT" | "UNION" | "FROM" | "WITH" | "EXISTS" | "INTO" | "VALUES" | "TABLE" => {
                return refuse(format!("'{w}' is not allowed: subqueries and other tables have no place in a condition"))
            }
            "AND" | "OR" | "NOT" | "IN" | "IS" | "LIKE" | "BETWEEN" | "ESCAPE" | "BINARY"
            | "COLLATE" | "INTERVAL" | "CASE" | "REGEXP" | "RLIKE" | "DIV" | "XOR" => {
                return refuse(format!("'{w}' is not allowed here"))
            }
            _ => {}
        }
        if self.peek() != Some(&Tok::Sym("(")) {
            return Ok(Expr::Column(w));
        }
        let Some(f) = FUNCTIONS.iter().find(|f| **f == upper) else {
            return refuse(format!(
                "function {upper}() is not allowed; allowed: {}",
                FUNCTIONS.join(", ")
            ));
        };
        self.at += 1;
        let mut args = Vec::new();
        if !self.sym(")") {
            args.push(self.or()?);
            while self.sym(",") {
                args.push(self.or()?);
            }
            self.expect_sym(")")?;
        }
        Ok(Expr::Call(f.to_string(), args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[&str] = &["id", "Name", "created", "we ird"];

    fn rendered(text: &str) -> Result<(String, Vec<mysql::Value>), ConditionError> {
        let c = Condition::parse(text)?;
        let mut params = Vec::new();
        let sql = c.render(COLS, &mut params)?;
        Ok((sql, params))
    }

    #[test]
    fn ordinary_conditions_are_rendered_with_quoted_names_and_bound_strings() {
        assert_eq!(
            rendered("id <= 5000 OR id > 15000").unwrap().0,
            "((`id` <= 5000) OR (`id` > 15000))"
        );
        let (sql, params) = rendered("name LIKE 'a%' AND `we ird` IS NOT NULL").unwrap();
        assert_eq!(sql, "((`Name` LIKE ?) AND (`we ird` IS NOT NULL))");
        assert_eq!(params, vec![mysql::Value::Bytes(b"a%".to_vec())]);
        assert_eq!(
            rendered("id NOT IN (1, 2, -3) AND id BETWEEN 1.5e2 AND 400")
                .unwrap()
                .0,
            "((`id` NOT IN (1, 2, (-3))) AND (`id` BETWEEN 1.5e2 AND 400))"
        );
        assert_eq!(
            rendered("YEAR(created) = 2024 AND NOT (id % 2 = 0)")
                .unwrap()
                .0,
            "((YEAR(`created`) = 2024) AND (NOT ((`id` % 2) = 0)))"
        );
        assert_eq!(rendered("id != 3").unwrap().0, "(`id` <> 3)");
    }

    #[test]
    fn quotes_and_escapes_inside_strings_stay_inside_the_bound_value() {
        let (sql, params) = rendered(r"name = 'it''s \' OR 1=1 -- x'").unwrap();
        assert_eq!(sql, "(`Name` = ?)");
        assert_eq!(
            params,
            vec![mysql::Value::Bytes(b"it's ' OR 1=1 -- x".to_vec())]
        );
        let (sql, params) = rendered(r"name = 'a\\' OR id = 1").unwrap();
        assert_eq!(sql, "((`Name` = ?) OR (`id` = 1))");
        assert_eq!(params, vec![mysql::Value::Bytes(b"a\\".to_vec())]);
    }

    #[test]
    fn injection_attempts_are_refused() {
        let attempts = [
            "1=1) UNION SELECT 2000, CONCAT(User,':',authentication_string) FROM mysql.user WHERE (1=1",
            "id = 1 UNION SELECT 1",
            "id IN (SELECT id FROM other)",
            "EXISTS (SELECT 1)",
            "id < 3 -- comment",
            "id < 3 # comment",
            "id < 3 /* c */",
            "id < 3 /*!50000 OR 1=1 */",
            "id = 1; DROP TABLE t",
            "id = @x",
            "id = @@version",
            "SLEEP(5) = 0",
            "BENCHMARK(1000000, MD5('a')) = 0",
            "LOAD_FILE('/etc/passwd') IS NOT NULL",
            "name = \"x\"",
            "mysql.user.User = 'root'",
            "t.id = 1",
            "`nosuch` = 1",
            "password = 'x'",
            "id = ?",
            "id = 1)",
            "(id = 1",
            "name = 'unterminated",
            "`unterminated = 1",
            "id = 0x41",
            "id = 1 OR",
            "",
            "id = CHAR(65)",
            "id = 1 || 1",
            "id = 1 && 1",
            "id = 1 INTO OUTFILE '/tmp/x'",
            "id = (SELECT 1)",
            "id = 1 \\",
            "id = 1 ｜ 2",
            "id = 1\u{0}",
        ];
        for a in attempts {
            assert!(rendered(a).is_err(), "accepted {a:?}: {:?}", rendered(a));
        }
    }

    #[test]
    fn a_refusal_says_why() {
        assert_eq!(
            rendered("id < 3 -- comment").unwrap_err().0,
            "comments ('--') are not allowed"
        );
        assert!(rendered("SLEEP(5)")
            .unwrap_err()
            .0
            .starts_with("function SLEEP() is not allowed"));
        assert_eq!(
            rendered("nosuch = 1").unwrap_err().0,
            "the table has no column \"nosuch\""
        );
    }

    #[test]
    fn backticked_names_may_hold_any_character_and_are_quoted_again() {
        let cols = ["a`b"];
        let c = Condition::parse("`a``b` = 1").unwrap();
        assert_eq!(c.columns(), vec!["a`b"]);
        assert_eq!(c.render(&cols, &mut Vec::new()).unwrap(), "(`a``b` = 1)");
        // A backticked name that tries to leave its quotes is just a name
        // the table does not have.
        let c = Condition::parse("`id` = 1 OR `x`").unwrap();
        assert!(c.render(COLS, &mut Vec::new()).is_err());
    }
}
