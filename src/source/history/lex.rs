//! Tokens of MySQL's and MariaDB's SQL, as far as DDL needs them.
//!
//! Comments are dropped, except the versioned ones (`/*!50100 ... */`,
//! MariaDB's `/*M!100100 ... */`): the server that wrote the binlog ran
//! them, so their text is part of the statement. Strings keep their text
//! (escapes resolved); names are words or backquoted identifiers.

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: a keyword or an unquoted name, as written.
    Word(String),
    /// A `backquoted` name.
    Quoted(String),
    /// A 'string' or "string".
    Str(String),
    /// A number, as written.
    Num(String),
    /// Any other character: `(`, `)`, `,`, `.`, `=`, `;`, ...
    Sym(char),
}

impl Tok {
    /// Whether this is the keyword `kw` (case-insensitive).
    pub fn is(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// Splits `sql` into tokens; `Err` names what could not be read (an
/// unterminated string, comment or identifier).
pub fn tokens(sql: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#'
            || (c == '-'
                && b.get(i + 1) == Some(&'-')
                && b.get(i + 2).is_none_or(|c| c.is_whitespace()))
        {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let end = (i + 2..b.len().saturating_sub(1))
                .find(|&j| b[j] == '*' && b[j + 1] == '/')
                .ok_or("a comment that does not end")?;
            let body: String = b[i + 2..end].iter().collect();
            // Versioned: `!NNNNN` (MySQL) or `M!NNNNNN` (MariaDB), then the
            // text the server ran.
            let versioned = body
                .strip_prefix('!')
                .or_else(|| body.strip_prefix("M!"))
                .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()));
            if let Some(text) = versioned {
                out.extend(tokens(text)?);
            }
            i = end + 2;
        } else if c == '*' && b.get(i + 1) == Some(&'/') {
            // The end of a versioned comment whose start was stripped.
            i += 2;
        } else if c == '`' {
            let (name, next) = quoted(&b, i, '`').ok_or("a `name` that does not end")?;
            out.push(Tok::Quoted(name));
            i = next;
        } else if c == '\'' || c == '"' {
            let (text, next) = quoted(&b, i, c).ok_or("a string that does not end")?;
            out.push(Tok::Str(text));
            i = next;
        } else if c.is_ascii_digit()
            || (c == '.'
                && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())
                && !matches!(out.last(), Some(Tok::Word(_) | Tok::Quoted(_))))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.' || b[i] == '_') {
                // 1e-5: the sign belongs to the exponent.
                if matches!(b[i], 'e' | 'E') && matches!(b.get(i + 1), Some('-' | '+')) {
                    i += 1;
                }
                i += 1;
            }
            let text: String = b[start..i].iter().collect();
            // 1abc is a name in MySQL (identifiers may start with digits).
            if text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
                || text.starts_with("0x")
            {
                out.push(Tok::Num(text));
            } else {
                out.push(Tok::Word(text));
            }
        } else if c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() {
            let start = i;
            while i < b.len()
                && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$' || !b[i].is_ascii())
                && !b[i].is_whitespace()
            {
                i += 1;
            }
            out.push(Tok::Word(b[start..i].iter().collect()));
        } else {
            out.push(Tok::Sym(c));
            i += 1;
        }
    }
    Ok(out)
}

/// The text of a quoted token starting at `at`, and where it ends.
/// Doubled quotes stand for one; in strings, backslash escapes too.
fn quoted(b: &[char], at: usize, q: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut i = at + 1;
    while i < b.len() {
        let c = b[i];
        if c == q {
            if b.get(i + 1) == Some(&q) {
                out.push(q);
                i += 2;
                continue;
            }
            return Some((out, i + 1));
        }
        if c == '\\' && q != '`' {
            let e = *b.get(i + 1)?;
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                'Z' => '\u{1a}',
                other => other,
            });
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        tokens(sql)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Tok::Word(w) | Tok::Num(w) => w,
                Tok::Quoted(q) => format!("`{q}`"),
                Tok::Str(s) => format!("'{s}'"),
                Tok::Sym(c) => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn comments_go_and_versioned_comments_count() {
        assert_eq!(
            words("CREATE /* x */ TABLE -- y\n t # z\n /*!50100 PARTITION BY */ /*M!100100 a */"),
            ["CREATE", "TABLE", "t", "PARTITION", "BY", "a"]
        );
    }

    #[test]
    fn names_strings_and_numbers() {
        assert_eq!(
            words("`we ird``s`.`x` 'it''s' \"a\\\"b\" 1.5e-3 -- \n 1abc"),
            [
                "`we ird`s`",
                ".",
                "`x`",
                "'it's'",
                "'a\"b'",
                "1.5e-3",
                "1abc"
            ]
        );
        assert!(tokens("'open").is_err());
        assert!(tokens("/* open").is_err());
    }
}
