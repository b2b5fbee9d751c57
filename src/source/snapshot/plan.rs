//! What a snapshot has done and has left, as the checkpoint records it.
//!
//! The plan travels with every [`Position`](crate::event::Position) the
//! reader makes (one `Arc`, shared), so the checkpoint the watcher writes
//! always says where the snapshot stands as of the released position: the
//! tables still to read, and for the one being read the key of the last
//! row of the last chunk that went out before that position.

use serde::{Deserialize, Serialize};

/// Why a table is being read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `snapshot.mode=initial` (or `when_needed` on a first start).
    Initial,
    /// `snapshot.mode=when_needed` after the checkpoint's binlog was purged.
    Purged,
    /// `binlog2kafka snapshot`: the request's id.
    Requested(String),
}

impl Reason {
    /// Debezium marks ad-hoc snapshot rows `incremental`, initial ones with
    /// their place in the snapshot.
    pub fn incremental(&self) -> bool {
        matches!(self, Reason::Requested(_))
    }
}

/// One table of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePlan {
    /// `database.table`.
    pub database: String,
    pub table: String,
    pub reason: Reason,
    /// `--where`: only rows matching this SQL condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The key of the last row already sent (`None`: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<KeyValue>>,
    /// Rows sent so far (for the log and the status page).
    #[serde(default)]
    pub rows: u64,
    /// Whether the first table of this snapshot (Debezium's `first`).
    #[serde(default)]
    pub first: bool,
    /// Whether the last table of its snapshot (Debezium's `last`).
    #[serde(default)]
    pub last: bool,
    /// Whether its bootstrap-start (Maxwell) went out already.
    #[serde(default)]
    pub started: bool,
}

impl TablePlan {
    pub fn name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

/// The snapshot work of a pipeline, as of one position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Tables still to read, in order; the first is the one being read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TablePlan>,
    /// The commit-log offset from which snapshot requests are still to be
    /// looked for.
    #[serde(default)]
    pub requests_from: i64,
    /// The newest requests already taken (a request found again after a
    /// restart is not run twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken: Vec<String>,
}

impl Plan {
    pub fn is_idle(&self) -> bool {
        self.tables.is_empty()
    }

    /// Notes request `id` as taken, keeping the last few.
    pub fn take_request(&mut self, id: &str, next_offset: i64) {
        self.requests_from = self.requests_from.max(next_offset);
        if !self.taken.iter().any(|t| t == id) {
            self.taken.push(id.to_string());
            let n = self.taken.len();
            if n > 16 {
                self.taken.drain(..n - 16);
            }
        }
    }
}

/// A key column's value, exactly as the server returned it, so the next
/// chunk's `WHERE key > ?` starts right after it (a prepared statement's
/// parameter: no quoting, no character set conversion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyValue {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Hex of the bytes.
    Bytes(String),
    Date(u16, u8, u8, u8, u8, u8, u32),
    Time(bool, u32, u8, u8, u8, u32),
}

// Keys compare by their exact bits; a NaN key cannot occur.
impl Eq for KeyValue {}

impl KeyValue {
    pub fn from_value(v: &mysql::Value) -> KeyValue {
        use mysql::Value as V;
        match v {
            V::NULL => KeyValue::Null,
            V::Int(i) => KeyValue::Int(*i),
            V::UInt(u) => KeyValue::UInt(*u),
            V::Float(f) => KeyValue::Float(*f),
            V::Double(d) => KeyValue::Double(*d),
            V::Bytes(b) => KeyValue::Bytes(hex(b)),
            V::Date(y, m, d, h, mi, s, us) => KeyValue::Date(*y, *m, *d, *h, *mi, *s, *us),
            V::Time(neg, d, h, m, s, us) => KeyValue::Time(*neg, *d, *h, *m, *s, *us),
        }
    }

    pub fn to_value(&self) -> mysql::Value {
        use mysql::Value as V;
        match self {
            KeyValue::Null => V::NULL,
            KeyValue::Int(i) => V::Int(*i),
            KeyValue::UInt(u) => V::UInt(*u),
            KeyValue::Float(f) => V::Float(*f),
            KeyValue::Double(d) => V::Double(*d),
            KeyValue::Bytes(h) => V::Bytes(unhex(h)),
            KeyValue::Date(y, m, d, h, mi, s, us) => V::Date(*y, *m, *d, *h, *mi, *s, *us),
            KeyValue::Time(neg, d, h, m, s, us) => V::Time(*neg, *d, *h, *m, *s, *us),
        }
    }
}

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Vec<u8> {
    let d = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| d(p[0]) << 4 | p.get(1).map_or(0, |&c| d(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_survive_the_checkpoint_exactly() {
        let values = [
            mysql::Value::Int(-7),
            mysql::Value::UInt(u64::MAX),
            mysql::Value::Bytes(vec![0, 0xff, b'a', 0x80]),
            mysql::Value::Date(2024, 2, 29, 23, 59, 58, 123_456),
            mysql::Value::Time(true, 1, 2, 3, 4, 5),
            mysql::Value::Double(0.1),
            mysql::Value::NULL,
        ];
        let keys: Vec<KeyValue> = values.iter().map(KeyValue::from_value).collect();
        let text = serde_json::to_string(&keys).unwrap();
        let back: Vec<KeyValue> = serde_json::from_str(&text).unwrap();
        let again: Vec<mysql::Value> = back.iter().map(KeyValue::to_value).collect();
        assert_eq!(again, values);
    }

    #[test]
    fn a_plan_remembers_only_the_newest_requests() {
        let mut p = Plan::default();
        for i in 0..20 {
            p.take_request(&format!("r{i}"), i + 1);
        }
        p.take_request("r19", 3);
        assert_eq!(p.taken.len(), 16);
        assert_eq!(p.taken.first().map(String::as_str), Some("r4"));
        assert_eq!(p.requests_from, 20, "the offset never goes back");
    }
}
