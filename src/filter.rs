//! Which tables a pipeline publishes (`filter.include`, `filter.exclude`).
//!
//! The reader asks at each table map, before any schema lookup or row
//! decoding, so an excluded table costs only the bytes of its events. Its
//! transactions still end in a marker, so the checkpoint moves past them.

use regex::Regex;

/// A name pattern over dotted parts (`db.table`, or `db.table.column`):
/// each part with `*` matching any run of characters (also none), or a
/// `/regular expression/` searched in the whole dotted name.
#[derive(Debug, Clone)]
pub enum Pattern {
    Glob(Vec<String>),
    Regex(Regex),
}

impl Pattern {
    /// `parts` is how many dotted parts a wildcard pattern has; `example`
    /// shows one in the error.
    pub fn parse(s: &str, parts: usize, example: &str) -> Result<Pattern, String> {
        let s = s.trim();
        if let Some(re) = s.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
            return Regex::new(re)
                .map(Pattern::Regex)
                .map_err(|e| format!("a regular expression (`{s}`: {e})"));
        }
        let bad = || format!("comma-separated patterns such as {example} (`{s}` is not one)");
        let split: Vec<&str> = s.splitn(parts, '.').collect();
        if split.len() != parts || split.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Pattern::Glob(
            split.into_iter().map(str::to_string).collect(),
        ))
    }

    pub fn matches(&self, names: &[&str]) -> bool {
        match self {
            Pattern::Glob(parts) => {
                parts.len() == names.len()
                    && parts
                        .iter()
                        .zip(names)
                        .all(|(p, n)| glob(p.as_bytes(), n.as_bytes()))
            }
            Pattern::Regex(re) => re.is_match(&names.join(".")),
        }
    }
}

/// Splits a comma-separated list, keeping commas inside `/.../` (as in
/// `/x{1,3}/`).
fn split_list(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_regex) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '/' if s[start..i].trim().is_empty() || in_regex => in_regex = !in_regex,
            ',' if !in_regex => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn list(key: &str, s: &str, parts: usize, example: &str) -> Result<Vec<Pattern>, (String, String)> {
    split_list(s)
        .into_iter()
        .map(|p| Pattern::parse(p, parts, example).map_err(|e| (key.to_string(), e)))
        .collect()
}

/// Tables in `include` and not in `exclude`.
#[derive(Debug, Clone)]
pub struct TableFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl TableFilter {
    /// Parses two comma-separated pattern lists.
    pub fn parse(include: &str, exclude: &str) -> Result<TableFilter, (String, String)> {
        let example = "shop.*, *.audit_log or /^shop\\.order_[0-9]+$/";
        Ok(TableFilter {
            include: list("filter.include", include, 2, example)?,
            exclude: list("filter.exclude", exclude, 2, example)?,
        })
    }

    pub fn allows(&self, db: &str, table: &str) -> bool {
        let names = [db, table];
        self.include.iter().any(|p| p.matches(&names))
            && !self.exclude.iter().any(|p| p.matches(&names))
    }
}

/// What happens to a column's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Visibility {
    #[default]
    Shown,
    /// `filter.columns.exclude`: left out of `data` and `old`.
    Excluded,
    /// `filter.columns.mask`: replaced by the SHA-256 (hex) of its JSON.
    Masked,
}

/// `filter.columns.exclude` and `filter.columns.mask`.
#[derive(Debug, Clone)]
pub struct ColumnFilter {
    exclude: Vec<Pattern>,
    mask: Vec<Pattern>,
}

impl ColumnFilter {
    pub fn parse(exclude: &str, mask: &str) -> Result<ColumnFilter, (String, String)> {
        let example = "shop.users.password, *.*.email or /\\.ssn$/";
        Ok(ColumnFilter {
            exclude: list("filter.columns.exclude", exclude, 3, example)?,
            mask: list("filter.columns.mask", mask, 3, example)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && self.mask.is_empty()
    }

    /// Exclusion wins over masking.
    pub fn visibility(&self, db: &str, table: &str, column: &str) -> Visibility {
        let names = [db, table, column];
        if self.exclude.iter().any(|p| p.matches(&names)) {
            Visibility::Excluded
        } else if self.mask.iter().any(|p| p.matches(&names)) {
            Visibility::Masked
        } else {
            Visibility::Shown
        }
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
    fn regular_expressions_search_the_dotted_name() {
        let f = TableFilter::parse("/^shop\\.order_[0-9]{1,3}$/, crm.*", "/_archive$/").unwrap();
        assert!(f.allows("shop", "order_12"));
        assert!(!f.allows("shop", "order_1234"));
        assert!(f.allows("crm", "x"));
        assert!(!f.allows("crm", "x_archive"));
        assert_eq!(split_list("/a{1,3}/, b.c"), vec!["/a{1,3}/", " b.c"]);
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
        assert!(e.1.contains("patterns such as"), "{}", e.1);
        let e = TableFilter::parse("*.*", "/tmp_(/").unwrap_err();
        assert_eq!(e.0, "filter.exclude");
        assert!(e.1.contains("regular expression"), "{}", e.1);
        let e = ColumnFilter::parse("shop.users", "").unwrap_err();
        assert_eq!(e.0, "filter.columns.exclude");
    }

    #[test]
    fn columns_are_excluded_or_masked_exclusion_first() {
        let f = ColumnFilter::parse(
            "shop.users.password, *.*.secret_*",
            "*.*.email, /\\.password$/",
        )
        .unwrap();
        assert_eq!(
            f.visibility("shop", "users", "password"),
            Visibility::Excluded
        );
        assert_eq!(
            f.visibility("hr", "staff", "secret_key"),
            Visibility::Excluded
        );
        assert_eq!(f.visibility("hr", "staff", "email"), Visibility::Masked);
        assert_eq!(f.visibility("hr", "staff", "password"), Visibility::Masked);
        assert_eq!(f.visibility("hr", "staff", "name"), Visibility::Shown);
        assert!(ColumnFilter::parse("", "").unwrap().is_empty());
    }
}
