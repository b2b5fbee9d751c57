//! XA transactions: rows that are written to the binlog long before anyone
//! knows whether they happened.
//!
//! MySQL and MariaDB write an XA transaction's rows at `XA PREPARE`, as an
//! event group of its own (`XA START`, rows, `XA END`, an XA_PREPARE event),
//! and its outcome later as another group (`XA COMMIT xid` or
//! `XA ROLLBACK xid`), with any number of other transactions in between.
//! `XA COMMIT … ONE PHASE` is written as one ordinary transaction by
//! MariaDB, and by MySQL as the prepare group ending in the commit.
//!
//! How binlog2kafka keeps that exact without holding rows in memory:
//!
//! - On first reading a prepare group its rows are not decoded at all. The
//!   reader puts a *blocker* into the waiting queue at the group's start: an
//!   entry no acknowledgement fills, so the checkpoint can never pass an
//!   undecided prepare, while later transactions still flow to Kafka.
//! - At `XA ROLLBACK` the blocker is filled and nothing is published.
//! - At `XA COMMIT` the reader *rewinds*: it reconnects at the prepare
//!   group's start, reads that group again and now publishes its rows,
//!   skips everything it had already handed on up to the end of the commit
//!   group, and goes on from there. The last published row is linked to the
//!   blocker, so the checkpoint moves past the prepare only once every row
//!   of it is acknowledged. Memory stays bounded (rows stream as in any
//!   transaction); the cost is re-reading the binlog between prepare and
//!   commit once.
//! - A crash between prepare and commit leaves the checkpoint at or before
//!   the prepare, so the next start reads the prepare again and the commit
//!   after it: nothing is lost (transactions after the prepare may be sent
//!   again; `position`/`xoffset` identify them).

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Position;

/// MariaDB GTID event flag: the group is an XA PREPARE.
pub const FL_PREPARED_XA: u8 = 64;
/// The XA_PREPARE_LOG_EVENT that ends a prepare group.
pub const XA_PREPARE_EVENT: u8 = 38;

/// What an `XA …` statement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XaStatement {
    Start(String),
    End(String),
    Prepare(String),
    /// `one_phase`: `XA COMMIT xid ONE PHASE`.
    Commit {
        xid: String,
        one_phase: bool,
    },
    Rollback(String),
}

/// Parses `XA START|BEGIN|END|PREPARE|COMMIT|ROLLBACK xid …`; `None` for
/// any other statement. The xid is kept as the server prints it
/// (`X'7831',X'',1`), which is the same text in every statement of one
/// transaction.
pub fn parse(sql: &str) -> Option<XaStatement> {
    let s = sql.trim();
    let rest = strip_word(s, "XA")?;
    let (verb, args) = rest.split_once(char::is_whitespace)?;
    let args = args.trim();
    let verb = verb.to_ascii_uppercase();
    let xid = |a: &str| -> String {
        // Trailing options: JOIN, RESUME, SUSPEND, FOR MIGRATE, ONE PHASE.
        let mut x = a.trim().to_string();
        for opt in [" ONE PHASE", " FOR MIGRATE", " SUSPEND", " RESUME", " JOIN"] {
            if x.len() > opt.len() && x[x.len() - opt.len()..].eq_ignore_ascii_case(opt) {
                x.truncate(x.len() - opt.len());
                x = x.trim_end().to_string();
            }
        }
        x
    };
    Some(match verb.as_str() {
        "START" | "BEGIN" => XaStatement::Start(xid(args)),
        "END" => XaStatement::End(xid(args)),
        "PREPARE" => XaStatement::Prepare(xid(args)),
        "COMMIT" => XaStatement::Commit {
            one_phase: args.to_ascii_uppercase().ends_with("ONE PHASE"),
            xid: xid(args),
        },
        "ROLLBACK" => XaStatement::Rollback(xid(args)),
        _ => return None,
    })
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let rest = &s[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace))
        .then(|| rest.trim_start())
}

/// An undecided prepare seen in this stream.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Where its event group starts.
    pub at: Position,
    /// The waiting-queue entry that holds the checkpoint before it.
    pub blocker: u64,
}

/// A rewind under way: the prepare group of `xid` is being read again to
/// publish it.
#[derive(Debug, Clone)]
pub struct Rewind {
    pub xid: String,
    pub blocker: u64,
    /// The prepare group's start.
    pub from: Position,
    /// Where normal reading resumes: the end of the commit group. Every
    /// event between the prepare group and here was handed on already.
    pub back_to: (Arc<str>, u64),
    /// The prepare group has been published; skipping up to `back_to`.
    pub published: bool,
}

impl Rewind {
    /// Whether the event starting at `file:start` is at or past `back_to`.
    pub fn reached(&self, file: &str, start: u64) -> bool {
        let (f, p) = (&*self.back_to.0, self.back_to.1);
        file > f || (file == f && start >= p)
    }
}

/// The reader's XA state: undecided prepares and the rewind in progress.
#[derive(Debug, Default)]
pub struct XaState {
    pub prepared: HashMap<String, Prepared>,
    pub rewind: Option<Rewind>,
}

impl XaState {
    /// Whether events are being skipped on the way back to `back_to`.
    pub fn skipping(&self) -> bool {
        self.rewind.as_ref().is_some_and(|r| r.published)
    }

    /// Whether the group starting at `file:start` is the one being
    /// re-read for publishing.
    pub fn is_rewound_group(&self, file: &str, start: u64) -> bool {
        self.rewind
            .as_ref()
            .is_some_and(|r| !r.published && *r.from.file == *file && r.from.pos == start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_statements_the_servers_write() {
        assert_eq!(
            parse("XA START X'7831',X'',1"),
            Some(XaStatement::Start("X'7831',X'',1".into()))
        );
        assert_eq!(
            parse("XA END X'7831',X'',1"),
            Some(XaStatement::End("X'7831',X'',1".into()))
        );
        assert_eq!(
            parse("XA COMMIT X'7831',X'',1"),
            Some(XaStatement::Commit {
                xid: "X'7831',X'',1".into(),
                one_phase: false
            })
        );
        assert_eq!(
            parse("xa commit X'7831',X'',1 ONE PHASE"),
            Some(XaStatement::Commit {
                xid: "X'7831',X'',1".into(),
                one_phase: true
            })
        );
        assert_eq!(
            parse("XA ROLLBACK X'7832',X'',1"),
            Some(XaStatement::Rollback("X'7832',X'',1".into()))
        );
        assert_eq!(parse("XAVIER"), None);
        assert_eq!(parse("INSERT INTO xa VALUES (1)"), None);
    }

    #[test]
    fn a_rewind_ends_at_the_commit_group_across_files() {
        let r = Rewind {
            xid: "x".into(),
            blocker: 1,
            from: Position {
                file: "binlog.000003".into(),
                pos: 379,
                rows: 0,
                gtid: None,
                state: None,
                file_id: None,
                snapshot: None,
                schema: 0,
            },
            back_to: ("binlog.000004".into(), 1087),
            published: true,
        };
        assert!(!r.reached("binlog.000003", 5000));
        assert!(!r.reached("binlog.000004", 996));
        assert!(r.reached("binlog.000004", 1087));
        assert!(r.reached("binlog.000005", 4));
    }
}
