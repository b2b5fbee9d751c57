//! Which tables a pipeline publishes (`filter.include`, `filter.exclude`).
//!
//! The reader asks at each table map, before any schema lookup or row
//! decoding, so an excluded table costs only the bytes of its events. Its
//! transactions still end in a marker, so the checkpoint moves past them.

use std::fmt;

/// A `db.table` pattern; `*` matches any run of characters (also none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    db: String,
    table: String,
}

impl Pattern {
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let s = s.trim();
        if s.starts_with('/') {
            return Err(format!(
                "patterns with * wildcards such as shop.order_*, not regular expressions (`{s}`)"
            ));
        }
        let bad = || {
            format!("comma-separated db.table patterns such as shop.* or *.audit_log (`{s}` is not one)")
        };
        let Some((db, table)) = s.split_once('.') else {
            return Err(bad());
        };
        if db.is_empty() || table.is_empty() {
            return Err(bad());
        }
        Ok(Pattern {
            db: db.to_string(),
            table: table.to_string(),
        })
    }

    pub fn matches(&self, db: &str, table: &str) -> bool {
        glob(self.db.as_bytes(), db.as_bytes()) && glob(self.table.as_bytes(), table.as_bytes())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.table)
    }
}

/// Tables in `include` and not in `exclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl TableFilter {
    /// Parses two comma-separated pattern lists.
    pub fn parse(include: &str, exclude: &str) -> Result<TableFilter, (String, String)> {
        let list = |key: &str, s: &str| -> Result<Vec<Pattern>, (String, String)> {
            s.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| Pattern::parse(p).map_err(|e| (key.to_string(), e)))
                .collect()
        };
        Ok(TableFilter {
            include: list("filter.include", include)?,
            exclude: list("filter.exclude", exclude)?,
        })
    }

    pub fn allows(&self, db: &str, table: &str) -> bool {
        self.include.iter().any(|p| p.matches(db, table))
            && !self.exclude.iter().any(|p| p.matches(db, table))
    }
}

/// Wildcard match of `pat` (with `*`) against all of `s`: the greedy
/// algorithm that backtracks only to the last `*`, linear in practice.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if p < pat.len() && pat[p] == s[i] {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        let f = TableFilter::parse("shop.*, *.audit_log, crm.customer", "shop.tmp_*").unwrap();
        assert!(f.allows("shop", "orders"));
        assert!(f.allows("hr", "audit_log"));
        assert!(f.allows("crm", "customer"));
        assert!(!f.allows("crm", "customers"), "no implicit prefix match");
        assert!(!f.allows("shop", "tmp_x"), "exclude wins");
        assert!(!f.allows("shopping", "orders"));
        assert!(f.allows("shop", "tmp"), "tmp_* needs the underscore");
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"abc"));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        assert!(glob(b"*_log", b"audit_log"));
        assert!(!glob(b"*_log", b"audit_logs"));
    }

    #[test]
    fn bad_patterns_say_what_is_expected() {
        let e = TableFilter::parse("shop", "").unwrap_err();
        assert_eq!(e.0, "filter.include");
        assert!(e.1.contains("db.table patterns"), "{}", e.1);
        let e = TableFilter::parse("*.*", "/tmp_.*/").unwrap_err();
        assert_eq!(e.0, "filter.exclude");
        assert!(e.1.contains("not regular expressions"), "{}", e.1);
    }

    #[test]
    fn an_empty_include_publishes_nothing() {
        let f = TableFilter::parse("", "").unwrap();
        assert!(!f.allows("a", "b"));
    }
}
