//! Parsers of single values: topic names and templates, host lists, start
//! positions, choices and secrets.

use super::*;

/// The value of an enumerated key, or an error that lists the choices.
/// A secret from its key, or from the file its `_file` key names (never
/// both); the secret itself never appears in an error.
pub(super) fn secret(v: &BTreeMap<&'static str, String>, key: &str) -> Result<String, ConfigError> {
    let file_key = format!("{key}_file");
    let path = v
        .get(file_key.as_str())
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    if path.is_empty() {
        return Ok(v[key].clone());
    }
    if !v[key].is_empty() {
        return Err(ConfigError::BadValue {
            key: file_key,
            value: path,
            expected: format!("{key} or {key}_file, not both"),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::BadValue {
        key: file_key.clone(),
        value: path.clone(),
        expected: format!("a readable file holding the secret ({e})"),
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

pub(super) fn choice<T: Copy>(
    key: &str,
    value: &str,
    choices: &[(&str, T)],
    expected: &str,
) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        })
}

pub(super) fn topic_name(key: &str, s: &str) -> Result<String, ConfigError> {
    let ok = !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(ConfigError::BadValue {
            key: key.to_string(),
            value: s.to_string(),
            expected: "a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)".into(),
        })
    }
}

/// A topic name, or a template whose `{database}` and `{table}` are filled
/// in per row.
pub(super) fn topic_template(key: &str, s: &str) -> Result<String, ConfigError> {
    let bare = s.replace("{database}", "x").replace("{table}", "x");
    topic_name(key, &bare).map_err(|_| ConfigError::BadValue {
        key: key.to_string(),
        value: s.to_string(),
        expected: "a Kafka topic name (letters, digits, '.', '_', '-'; at most 249), optionally with {database} and {table}".into(),
    })?;
    Ok(s.to_string())
}

/// `mysql.host`: `host`, `host:port`, `[v6]:port`, comma-separated.
pub(super) fn hosts(s: &str, default_port: u16) -> Result<Vec<(String, u16)>, ConfigError> {
    let bad = |v: &str| ConfigError::BadValue {
        key: "mysql.host".into(),
        value: v.into(),
        expected: "a host, host:port, or a comma-separated list of them".into(),
    };
    let mut out = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (h, p) = rest.split_once(']').ok_or_else(|| bad(entry))?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad(entry))?,
                None if p.is_empty() => default_port,
                None => return Err(bad(entry)),
            };
            (h.to_string(), port)
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => {
                    (h.to_string(), p.parse().map_err(|_| bad(entry))?)
                }
                _ => (entry.to_string(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad(entry));
        }
        out.push((host, port));
    }
    if out.is_empty() {
        return Err(bad(s));
    }
    Ok(out)
}

pub(super) fn parse_start(s: &str) -> Result<StartPosition, ConfigError> {
    if let Some(g) = s.strip_prefix("gtid:") {
        return crate::gtid::GtidState::parse(g)
            .ok()
            .filter(|st| !st.to_string().is_empty())
            .map(StartPosition::Gtid)
            .ok_or_else(|| ConfigError::BadValue {
                key: "start.position".into(),
                value: s.into(),
                expected: "gtid: and a MariaDB GTID position (gtid:0-1-1000,1-2-50) or a MySQL GTID set (gtid:3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5)".into(),
            });
    }
    match s {
        "earliest" => return Ok(StartPosition::Earliest),
        "latest" => return Ok(StartPosition::Latest),
        _ => {}
    }
    if let Some((file, pos)) = s.rsplit_once(':') {
        if let Ok(pos) = pos.parse::<u64>() {
            if !file.is_empty() && pos >= 4 {
                return Ok(StartPosition::At {
                    file: file.to_string(),
                    pos,
                });
            }
        }
    }
    Err(ConfigError::BadValue {
        key: "start.position".into(),
        value: s.into(),
        expected: "earliest, latest, FILE:POS (e.g. binlog.000003:4) or gtid:STATE".into(),
    })
}
