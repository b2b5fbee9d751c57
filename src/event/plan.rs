//! What a snapshot has done and has left, as the checkpoint records it.
//!
//! The plan travels with every [`Position`](crate::event::Position) the
//! reader makes (one `Arc`, shared), so the checkpoint the watcher writes
//! always says where the snapshot stands as of the released position: the
//! tables still to read, and for the one being read the key of the last
//! row of the last chunk that went out before that position.

use serde::{Deserialize, Serialize};

use super::{TableDdl, TableName};

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
    /// Renamed into the captured tables from this name (`database.table`):
    /// new to the consumer, its rows never published under the new name.
    Renamed(String),
}

impl Reason {
    /// Debezium marks ad-hoc snapshot rows `incremental`, initial ones with
    /// their place in the snapshot.
    pub fn incremental(&self) -> bool {
        matches!(self, Reason::Requested(_) | Reason::Renamed(_))
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
    /// A table not read yet, for `reason`.
    pub fn new(database: String, table: String, reason: Reason) -> TablePlan {
        TablePlan {
            database,
            table,
            reason,
            condition: None,
            after: None,
            rows: 0,
            first: false,
            last: false,
            started: false,
        }
    }

    pub fn name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    fn is(&self, (db, t): &TableName) -> bool {
        self.database == *db && self.table == *t
    }

    /// Whether rows of it went out already.
    fn begun(&self) -> bool {
        self.started || self.after.is_some() || self.rows > 0
    }

    /// Read again from its first row: a new bootstrap-start, a new count.
    fn restart(&mut self) {
        self.after = None;
        self.rows = 0;
        self.started = false;
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

impl Plan {
    /// The plan after a TRUNCATE or RENAME, and what changed (for the log);
    /// `None` when the statement changes nothing of it. The consumer's rule
    /// is that a table's snapshot (bootstrap-start to -complete, plus the
    /// changes between) is the whole table, so:
    /// - a truncated table whose rows went out is read again from its
    ///   start (what was sent no longer exists);
    /// - a renamed table is read again under its new name, or leaves the
    ///   plan when the new name is not captured;
    /// - a table renamed from outside the captured tables into them is new
    ///   to the consumer: added to the plan where `snapshot_entering` (the
    ///   snapshot mode reads existing rows), and only noted otherwise.
    pub fn after_ddl(
        &self,
        ddl: &TableDdl,
        captured: impl Fn(&str, &str) -> bool,
        snapshot_entering: bool,
    ) -> Option<(Plan, Vec<String>)> {
        let mut next = self.clone();
        let mut notes = Vec::new();
        match ddl {
            TableDdl::Truncate(name) => {
                for t in next.tables.iter_mut().filter(|t| t.is(name) && t.begun()) {
                    notes.push(format!(
                        "snapshot of {}: the table was truncated after {} of its rows went out; its snapshot starts again",
                        t.name(),
                        t.rows
                    ));
                    t.restart();
                }
            }
            TableDdl::Rename(pairs) => {
                for (from, to) in pairs {
                    let (was_in, is_in) = (captured(&from.0, &from.1), captured(&to.0, &to.1));
                    let new_name = format!("{}.{}", to.0, to.1);
                    next.tables.retain_mut(|t| {
                        if !t.is(from) {
                            return true;
                        }
                        if !is_in {
                            notes.push(format!(
                                "snapshot of {}: renamed to {new_name}, which is not captured (filter.include / filter.exclude); its snapshot ends",
                                t.name()
                            ));
                            return false;
                        }
                        notes.push(format!(
                            "snapshot of {}: renamed to {new_name}; its snapshot {} under the new name",
                            t.name(),
                            if t.begun() { "starts again" } else { "runs" }
                        ));
                        t.database.clone_from(&to.0);
                        t.table.clone_from(&to.1);
                        t.restart();
                        true
                    });
                    if is_in && !was_in {
                        let old = format!("{}.{}", from.0, from.1);
                        if snapshot_entering {
                            notes.push(format!(
                                "{new_name} enters the captured tables (renamed from {old}, which is not captured): it is snapshotted, as its rows were never published under this name"
                            ));
                            next.tables.push(TablePlan::new(
                                to.0.clone(),
                                to.1.clone(),
                                Reason::Renamed(old),
                            ));
                        } else {
                            notes.push(format!(
                                "{new_name} enters the captured tables (renamed from {old}, which is not captured): its existing rows were never published; with snapshot.mode=never they are not read now (binlog2kafka snapshot {new_name} reads them)"
                            ));
                        }
                    }
                }
            }
        }
        (!notes.is_empty()).then_some((next, notes))
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

    fn table(db: &str, t: &str, rows: u64) -> TablePlan {
        TablePlan {
            database: db.into(),
            table: t.into(),
            reason: Reason::Initial,
            condition: None,
            after: (rows > 0).then(|| vec![KeyValue::Int(rows as i64)]),
            rows,
            first: false,
            last: false,
            started: rows > 0,
        }
    }

    fn n(db: &str, t: &str) -> TableName {
        (db.into(), t.into())
    }

    fn plan(tables: Vec<TablePlan>) -> Plan {
        Plan {
            tables,
            requests_from: 7,
            taken: vec!["r1".into()],
        }
    }

    #[test]
    fn a_truncated_table_whose_rows_went_out_is_read_again() {
        let p = plan(vec![table("d", "a", 500), table("d", "b", 0)]);
        let (next, notes) = p
            .after_ddl(&TableDdl::Truncate(n("d", "a")), |_, _| true, true)
            .unwrap();
        assert_eq!(next.tables[0], table("d", "a", 0));
        assert_eq!(next.tables[1], table("d", "b", 0));
        assert_eq!((next.requests_from, &next.taken), (7, &p.taken));
        assert!(notes[0].contains("truncated after 500"), "{notes:?}");
        // A table not begun yet, or not in the plan: nothing changes.
        assert_eq!(
            p.after_ddl(&TableDdl::Truncate(n("d", "b")), |_, _| true, true),
            None
        );
        assert_eq!(
            p.after_ddl(&TableDdl::Truncate(n("d", "z")), |_, _| true, true),
            None
        );
    }

    #[test]
    fn a_renamed_table_is_read_again_under_its_new_name_or_leaves_the_plan() {
        let p = plan(vec![table("d", "a", 500), table("d", "b", 0)]);
        let rename = |pairs: &[(&str, &str)]| {
            TableDdl::Rename(pairs.iter().map(|(f, t)| (n("d", f), n("d", t))).collect())
        };
        let (next, _) = p
            .after_ddl(&rename(&[("a", "a2")]), |_, _| true, true)
            .unwrap();
        assert_eq!(next.tables[0], table("d", "a2", 0));
        // A swap through a temporary name follows the table it moved.
        let (next, _) = p
            .after_ddl(
                &rename(&[("a", "tmp"), ("b", "a"), ("tmp", "b")]),
                |_, _| true,
                true,
            )
            .unwrap();
        assert_eq!(next.tables[0], table("d", "b", 0));
        assert_eq!(next.tables[1], table("d", "a", 0));
        // Out of the captured tables: gone from the plan.
        let only_ab = |_: &str, t: &str| t == "a" || t == "b";
        let (next, notes) = p
            .after_ddl(&rename(&[("a", "excluded_x")]), only_ab, true)
            .unwrap();
        assert_eq!(next.tables, vec![table("d", "b", 0)]);
        assert!(notes[0].contains("not captured"), "{notes:?}");
    }

    #[test]
    fn a_table_renamed_into_the_captured_set_is_snapshotted_where_the_mode_allows() {
        let p = plan(vec![]);
        let only_t = |_: &str, t: &str| t == "t";
        let ddl = TableDdl::Rename(vec![(n("d", "excluded_x"), n("d", "t"))]);
        let (next, notes) = p.after_ddl(&ddl, only_t, true).unwrap();
        assert_eq!(next.tables.len(), 1);
        assert_eq!(next.tables[0].name(), "d.t");
        assert_eq!(
            next.tables[0].reason,
            Reason::Renamed("d.excluded_x".into())
        );
        assert!(next.tables[0].reason.incremental());
        assert!(notes[0].contains("it is snapshotted"), "{notes:?}");
        let (next, notes) = p.after_ddl(&ddl, only_t, false).unwrap();
        assert!(next.tables.is_empty());
        assert!(notes[0].contains("binlog2kafka snapshot d.t"), "{notes:?}");
        // Between two captured names nothing is new to the consumer.
        assert_eq!(p.after_ddl(&ddl, |_, _| true, true), None);
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
