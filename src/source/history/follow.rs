//! The history as the reader follows it: from the capture on, every DDL is
//! applied; before the capture point (a pipeline that starts in the past,
//! or ran before the history existed) the capture already holds the DDLs,
//! and a table a DDL changed between the start and the capture point has
//! no known definition until that DDL. Every table map is checked against
//! the definition held.

use std::collections::HashMap;

use super::catalog::At;
use super::parse::{parse, AlterOp, Ddl};
use super::{difference, History};
use crate::event::{NameSource, TableSchema};

/// `schema.on_mismatch`: what a table map that disagrees with the history
/// does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMismatch {
    /// Stop, the checkpoint before it.
    Fail,
    /// Publish that table's rows with positional names (`@1`, ...).
    Positional,
}

/// `schema.on_unparsed_ddl`: what a DDL on a tracked table that cannot be
/// read does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnparsed {
    /// Stop, the checkpoint before it.
    Fail,
    /// Read the table's definition from the server again; the table maps
    /// that follow check it.
    Refresh,
}

/// Why a table map cannot be named from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The table map disagrees with the definition held.
    Drift(String),
    /// No definition is known at this point, and the binlog carries no
    /// names.
    Unknown(String),
}

/// Why a DDL could not be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DdlRefusal {
    /// The statement could not be read.
    Unreadable(String),
    /// It assumes what the history does not hold.
    Disagrees(String),
}

pub struct Follower {
    pub history: History,
    /// Where the capture holds: DDLs before it are in it already.
    pub since: At,
    /// Tables changed between the start and `since`, with the position of
    /// the last such DDL: their definition before it is unknown.
    pub unknown_until: HashMap<(String, String), At>,
    /// Whether the DDL between the start and `since` was read (it is only
    /// where the binlog has no names: with names, rows before `since`
    /// take the binlog's, unchecked).
    pub scanned: bool,
    /// Tables whose definition is unknown from a DDL on (a copy of an
    /// untracked table, a rename from outside), with why.
    pub unknown: HashMap<(String, String), String>,
    /// Definitions changed since the capture.
    pub versions: u64,
    /// The last DDL applied: position and statement's first line.
    pub last_ddl: Option<String>,
}

impl Follower {
    pub fn new(history: History, since: At) -> Self {
        Follower {
            history,
            since,
            unknown_until: HashMap::new(),
            scanned: true,
            unknown: HashMap::new(),
            versions: 0,
            last_ddl: None,
        }
    }

    fn before_capture(&self, at: (&str, u64)) -> bool {
        before(at, &self.since)
    }

    /// Follows one DDL at `at` (its end) run in `default_db`.
    pub fn on_ddl(
        &mut self,
        sql: &str,
        default_db: &str,
        at: (&str, u64),
        tracked: &dyn Fn(&str, &str) -> bool,
    ) -> Result<super::Applied, DdlRefusal> {
        if self.before_capture(at) {
            return Ok(super::Applied::default());
        }
        let ddl = parse(sql).map_err(DdlRefusal::Unreadable)?;
        let applied = self
            .history
            .apply(&ddl, default_db, tracked)
            .map_err(DdlRefusal::Disagrees)?;
        for k in applied.changed.iter().chain(&applied.removed) {
            self.unknown.remove(k);
        }
        for (k, why) in &applied.unknown {
            self.unknown.insert(k.clone(), why.clone());
        }
        if !applied.changed.is_empty() || !applied.removed.is_empty() || !applied.unknown.is_empty()
        {
            self.versions += 1;
            let line = sql.lines().next().unwrap_or("");
            self.last_ddl = Some(format!(
                "{}:{}: {}",
                at.0,
                at.1,
                &line[..line.len().min(120)]
            ));
        }
        Ok(applied)
    }

    /// A definition read again from the server (`schema.on_unparsed_ddl =
    /// refresh`, or a table whose definition the statement did not give).
    pub fn refreshed(&mut self, key: (String, String), table: Option<super::Table>) {
        self.unknown.remove(&key);
        match table {
            Some(t) => {
                self.history.tables.insert(key, t);
            }
            None => {
                self.history.tables.remove(&key);
            }
        }
        self.versions += 1;
    }

    /// The history's definition of a table map's table at `at`, checked
    /// against it; `Ok(None)` when none is known but the table map names
    /// its columns itself (FULL metadata).
    pub fn resolve(
        &self,
        map: &TableSchema,
        at: (&str, u64),
    ) -> Result<Option<TableSchema>, Refusal> {
        let key = (map.database.clone(), map.table.clone());
        let named = map.names_from == NameSource::TableMap;
        let unknown = |why: String| {
            if named {
                Ok(None)
            } else {
                Err(Refusal::Unknown(why))
            }
        };
        if before(at, &self.since) {
            // Before the capture: the definitions held are later ones.
            if named {
                return Ok(None);
            }
            if !self.scanned {
                return unknown(format!(
                    "it is before the schema history begins at {}:{}",
                    self.since.0, self.since.1
                ));
            }
        }
        if let Some(until) = self.unknown_until.get(&key) {
            if before(at, until) {
                return unknown(format!(
                    "a DDL at {}:{} changed it, before the schema history begins at {}:{}",
                    until.0, until.1, self.since.0, self.since.1
                ));
            }
        }
        if let Some(why) = self.unknown.get(&key) {
            return unknown(why.clone());
        }
        let Some(held) = self.history.schema(&map.database, &map.table) else {
            return unknown("it is not in the schema history".into());
        };
        if let Some(d) = difference(&held, map) {
            return Err(Refusal::Drift(d));
        }
        Ok(Some(held))
    }
}

/// Whether `at` comes before `b` (binlog file names sort in order).
fn before(at: (&str, u64), b: &At) -> bool {
    (at.0, at.1) < (b.0.as_str(), b.1)
}

impl Ddl {
    /// Every table the statement names (both sides of a rename), for
    /// finding the tables a stretch of binlog changed.
    pub fn tables(&self, default_db: &str) -> Vec<(String, String)> {
        let q = |n: &super::parse::Name| super::parse::qualify(n, default_db);
        match self {
            Ddl::CreateTable { name, .. } => vec![q(name)],
            Ddl::CreateLike { name, .. } => vec![q(name)],
            Ddl::AlterTable { name, ops } => {
                let mut v = vec![q(name)];
                for op in ops {
                    if let AlterOp::RenameTo(to) = op {
                        v.push(q(to));
                    }
                }
                v
            }
            Ddl::RenameTables(pairs) => pairs.iter().flat_map(|(a, b)| [q(a), q(b)]).collect(),
            Ddl::DropTables(names) => names.iter().map(q).collect(),
            _ => Vec::new(),
        }
    }
}
