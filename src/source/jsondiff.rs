//! MySQL partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`):
//! instead of the new document, the after image holds diffs (replace,
//! insert or remove at a JSON path). Consumers want the whole new document,
//! so the diffs are applied here to the before image's document, which the
//! binlog holds in full.

use mysql_common::binlog::jsonb;
use mysql_common::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use mysql_common::io::ParseBuf;
use serde_json::Value;

/// The new document as JSON text: `before` (MySQL binary JSON; empty is
/// JSON null) with the diff vector `diffs` applied.
pub fn apply(before: &[u8], diffs: &[u8]) -> Result<Vec<u8>, String> {
    let mut doc = decode(before)?;
    let mut buf = ParseBuf(diffs);
    while !buf.is_empty() {
        let diff: JsonDiff<'_> = buf
            .parse(())
            .map_err(|e| format!("partial JSON update: {e}"))?;
        let path = parse_path(&diff.path_str())?;
        let value = match diff.value() {
            Some(v) => Some(
                Value::try_from(v.clone())
                    .map_err(|e| format!("partial JSON update value: {e:?}"))?,
            ),
            None => None,
        };
        apply_one(&mut doc, &path, diff.operation(), value)
            .map_err(|e| format!("partial JSON update at {}: {e}", diff.path_str()))?;
    }
    Ok(doc.to_string().into_bytes())
}

fn decode(b: &[u8]) -> Result<Value, String> {
    if b.is_empty() {
        return Ok(Value::Null);
    }
    let v: jsonb::Value<'_> = ParseBuf(b)
        .parse(())
        .map_err(|e| format!("before image JSON: {e}"))?;
    Value::try_from(v).map_err(|e| format!("before image JSON: {e:?}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Leg {
    Key(String),
    Index(usize),
}

/// A MySQL JSON path as the server writes it in diffs: `$`, `.key`,
/// `."quoted key"`, `[3]`.
fn parse_path(p: &str) -> Result<Vec<Leg>, String> {
    let bad = || format!("unsupported JSON path {p:?}");
    let rest = p.trim().strip_prefix('$').ok_or_else(bad)?;
    let b = rest.as_bytes();
    let mut legs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'"') => {
                let mut key = String::new();
                let mut j = i + 2;
                loop {
                    match b.get(j) {
                        None => return Err(bad()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let c = rest
                                .get(j + 1..)
                                .and_then(|s| s.chars().next())
                                .ok_or_else(bad)?;
                            key.push(c);
                            j += 1 + c.len_utf8();
                        }
                        Some(_) => {
                            let c = rest[j..].chars().next().ok_or_else(bad)?;
                            key.push(c);
                            j += c.len_utf8();
                        }
                    }
                }
                legs.push(Leg::Key(key));
                i = j + 1;
            }
            b'.' => {
                let end = rest[i + 1..]
                    .find(['.', '['])
                    .map_or(rest.len(), |k| i + 1 + k);
                let key = &rest[i + 1..end];
                if key.is_empty() {
                    return Err(bad());
                }
                legs.push(Leg::Key(key.to_string()));
                i = end;
            }
            b'[' => {
                let end = rest[i..].find(']').map(|k| i + k).ok_or_else(bad)?;
                let n = rest[i + 1..end].trim().parse().map_err(|_| bad())?;
                legs.push(Leg::Index(n));
                i = end + 1;
            }
            _ => return Err(bad()),
        }
    }
    Ok(legs)
}

fn apply_one(
    doc: &mut Value,
    path: &[Leg],
    op: JsonDiffOperation,
    value: Option<Value>,
) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        // The whole document.
        return match op {
            JsonDiffOperation::REPLACE => {
                *doc = value.ok_or("replace without a value")?;
                Ok(())
            }
            _ => Err("cannot insert or remove the whole document".into()),
        };
    };
    let mut parent = &mut *doc;
    for leg in parent_path {
        parent = match (leg, parent) {
            (Leg::Key(k), Value::Object(m)) => m.get_mut(k).ok_or("no such key")?,
            (Leg::Index(n), Value::Array(a)) => a.get_mut(*n).ok_or("no such index")?,
            _ => return Err("path does not match the document".into()),
        };
    }
    match (op, last, parent) {
        (JsonDiffOperation::REMOVE, Leg::Key(k), Value::Object(m)) => {
            m.remove(k).ok_or("no such key")?;
        }
        (JsonDiffOperation::REMOVE, Leg::Index(n), Value::Array(a)) => {
            if *n >= a.len() {
                return Err("no such index".into());
            }
            a.remove(*n);
        }
        (op, Leg::Key(k), Value::Object(m)) => {
            let v = value.ok_or("no value")?;
            if op == JsonDiffOperation::REPLACE && !m.contains_key(k) {
                return Err("replace of a missing key".into());
            }
            m.insert(k.clone(), v);
        }
        (JsonDiffOperation::REPLACE, Leg::Index(n), Value::Array(a)) => {
            *a.get_mut(*n).ok_or("no such index")? = value.ok_or("no value")?;
        }
        (JsonDiffOperation::INSERT, Leg::Index(n), Value::Array(a)) => {
            let at = (*n).min(a.len());
            a.insert(at, value.ok_or("no value")?);
        }
        _ => return Err("path does not match the document".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_as_the_server_writes_them() {
        assert_eq!(parse_path("$").unwrap(), vec![]);
        assert_eq!(
            parse_path("$.a[2].\"b c\"[0]").unwrap(),
            vec![
                Leg::Key("a".into()),
                Leg::Index(2),
                Leg::Key("b c".into()),
                Leg::Index(0)
            ]
        );
        assert_eq!(
            parse_path("$.\"q\\\"uote\"").unwrap(),
            vec![Leg::Key("q\"uote".into())]
        );
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$[x]").is_err());
    }

    #[test]
    fn replace_insert_and_remove() {
        let mut d = json!({"a": [1, 2, 3], "b": {"c": 1}});
        let p = |s: &str| parse_path(s).unwrap();
        apply_one(
            &mut d,
            &p("$.a[1]"),
            JsonDiffOperation::REPLACE,
            Some(json!("x")),
        )
        .unwrap();
        apply_one(
            &mut d,
            &p("$.b.d"),
            JsonDiffOperation::INSERT,
            Some(json!(true)),
        )
        .unwrap();
        apply_one(
            &mut d,
            &p("$.a[0]"),
            JsonDiffOperation::INSERT,
            Some(json!(0)),
        )
        .unwrap();
        apply_one(&mut d, &p("$.b.c"), JsonDiffOperation::REMOVE, None).unwrap();
        apply_one(&mut d, &p("$.a[3]"), JsonDiffOperation::REMOVE, None).unwrap();
        assert_eq!(d, json!({"a": [0, 1, "x"], "b": {"d": true}}));
        assert!(apply_one(
            &mut d,
            &p("$.zz.y"),
            JsonDiffOperation::REPLACE,
            Some(json!(1))
        )
        .is_err());
        assert!(apply_one(&mut d, &p("$.a[9]"), JsonDiffOperation::REMOVE, None).is_err());
    }
}
