//! The `.properties` format: `key = value` lines, `#` and `!` comments,
//! continuation lines and escapes.

use super::*;

/// The file's entries as `java.util.Properties` reads them, which is what
/// operators of Kafka and Maxwell expect: a UTF-8 BOM is dropped; `#` and
/// `!` start a comment only at the start of a line; the key ends at the
/// first unescaped `=`, `:` or white space; white space around the
/// separator and before the value is skipped, the rest of the line is the
/// value (trailing spaces included: a password may end in one); `\` escapes
/// (`\t`, `\n`, `\r`, `\f`, `\uXXXX`, `\` + any other character is that
/// character, so `\ ` keeps a leading space); a line ending in an odd number
/// of `\` continues on the next. Returns (key, value, line number).
pub(super) fn parse_properties(
    text: &str,
    path: &str,
) -> Result<Vec<(String, String, usize)>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, first)) = lines.next() {
        let first = first.trim_start_matches([' ', '\t', '\x0c']);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines (their leading white space dropped).
        let mut logical = first.to_string();
        while ends_in_escape(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let bad = || ConfigError::Syntax {
            path: path.to_string(),
            line: i + 1,
            text: first.to_string(),
        };
        let chars: Vec<char> = logical.chars().collect();
        let mut at = 0;
        while at < chars.len() {
            match chars[at] {
                '\\' => at += 2,
                '=' | ':' | ' ' | '\t' | '\x0c' => break,
                _ => at += 1,
            }
        }
        let key_end = at.min(chars.len());
        // Skip white space, one separator, then white space again.
        let mut v = key_end;
        while v < chars.len() && matches!(chars[v], ' ' | '\t' | '\x0c') {
            v += 1;
        }
        if v < chars.len() && matches!(chars[v], '=' | ':') {
            v += 1;
        }
        while v < chars.len() && matches!(chars[v], ' ' | '\t' | '\x0c') {
            v += 1;
        }
        let key = unescape(&chars[..key_end]).ok_or_else(bad)?;
        let value = unescape(&chars[v..]).ok_or_else(bad)?;
        if key.is_empty() {
            return Err(bad());
        }
        out.push((key, value, i + 1));
    }
    Ok(out)
}

/// An odd number of trailing backslashes: the line continues.
pub(super) fn ends_in_escape(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Properties escapes; `None` for a bad `\u`.
pub(super) fn unescape(chars: &[char]) -> Option<String> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else { break };
        i += 1;
        out.push(match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            'u' => {
                let hex: String = chars.get(i..i + 4)?.iter().collect();
                i += 4;
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            other => other,
        });
    }
    Some(out)
}
