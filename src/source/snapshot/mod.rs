//! What a snapshot is made of, without its thread: the plan of which
//! tables to read ([`plan`]), the seam that merges a chunk into the stream
//! in order ([`seam`], with the correctness argument), the encoding of a
//! row read by SELECT into the binlog's cells ([`encode`]) and the
//! `--where` condition of a requested snapshot ([`condition`]). The thread
//! that reads the chunks is `pipeline::snapshot`.

pub mod condition;
pub mod encode;
pub use crate::event::plan;
pub mod seam;

use mysql::prelude::Queryable;
use mysql::Conn;

use crate::source::Target;

use plan::{Plan, Reason, TablePlan};

use super::{classify, SourceError};

/// `snapshot.mode`: when existing rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    Never,
    Initial,
    WhenNeeded,
}

/// The plan of a first start with `snapshot.mode=initial` (or a purged
/// checkpoint with `when_needed`): every table the filters let through,
/// in name order.
pub fn initial_plan(
    conn: &mut Conn,
    target: &Target,
    reason: Reason,
    requests_from: i64,
) -> Result<Plan, SourceError> {
    let names: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .map_err(|e| classify(target, "listing tables for the snapshot", e))?;
    let mut tables: Vec<TablePlan> = names
        .into_iter()
        .filter(|(d, t)| target.settings.filter.allows(d, t))
        .map(|(database, table)| TablePlan::new(database, table, reason.clone()))
        .collect();
    if let Some(t) = tables.first_mut() {
        t.first = true;
    }
    if let Some(t) = tables.last_mut() {
        t.last = true;
    }
    Ok(Plan {
        tables,
        requests_from,
        taken: Vec::new(),
    })
}
