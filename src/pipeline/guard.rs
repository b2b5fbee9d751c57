//! The `b2k-guard` thread: notices a binlog replaced under the reader.
//!
//! `RESET MASTER` (or a PURGE of the file being read) does not end the
//! server's dump thread: it keeps the deleted file open and sends
//! heartbeats, while new changes go to a new file of the same name that the
//! stream never reaches. Nothing fails, nothing flows: a silent loss. Every
//! few seconds this thread compares the reader's position with `SHOW BINARY
//! LOGS`; when the file being read is gone or shorter than what was read
//! from it, twice in a row (so a rotation caught mid-way is not mistaken
//! for it), it stops the pipeline with an error that says what happened.

use crate::pipeline::handle::{Exit, Handle};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::Shared;
use crate::source::Settings;

use crate::source::{binary_logs, SourceError};

const EVERY: Duration = Duration::from_secs(3);

pub fn spawn(cfg: Arc<Settings>, shared: Arc<Shared>, exit: Exit) -> Handle<()> {
    crate::pipeline::handle::spawn("b2k-guard", exit, move || run(&cfg, &shared))
}

fn run(cfg: &Arc<Settings>, shared: &Shared) {
    let mut conn = crate::source::SourceConn::default();
    let mut suspect: Option<(String, u64)> = None;
    while !shared.stop.requested() {
        if shared.stop.wait(EVERY) {
            return;
        }
        // Only while the stream is up: an outage is the reader's to report.
        if shared.reading.stream_lost() {
            suspect = None;
            continue;
        }
        let (c, target) = match conn.get(cfg, shared.reading.server()) {
            Ok(got) => got,
            Err(e) => {
                // The reader reports an outage; this is only a side check.
                log::debug!("binlog guard: {e}");
                continue;
            }
        };
        let Ok(logs) = binary_logs(c, target) else {
            conn.drop_conn();
            continue;
        };
        let file = shared.board.progress.lock().read_file.clone();
        let pos = shared.board.read_pos.load(Ordering::Relaxed);
        match replaced(&logs, &file, pos) {
            None => suspect = None,
            Some(why) if suspect.as_ref() == Some(&(file.clone(), pos)) => {
                shared.stop.fail(SourceError::BinlogReplaced {
                    detail: format!(
                        "binlog {file} was replaced under binlog2kafka while it read it ({why}: RESET MASTER, or PURGE BINARY LOGS of the file being read); changes written since then are not in what the server streams. Stopped, the checkpoint stays at the last change Kafka acknowledged. If the reset was deliberate, changes since that checkpoint are gone from the binlog: re-snapshot, then `binlog2kafka reset` the pipeline and choose start.position"
                    ),
                });
                return;
            }
            Some(_) => suspect = Some((file, pos)),
        }
    }
}

/// Why the reader's `file` at `pos` cannot be the server's file of that
/// name, if it cannot.
fn replaced(logs: &[(String, u64)], file: &str, pos: u64) -> Option<String> {
    if file.is_empty() || pos == 0 {
        return None;
    }
    match logs.iter().find(|(f, _)| f == file) {
        None => Some(format!("the server no longer lists {file}")),
        Some((_, size)) if *size < pos => Some(format!(
            "the server's {file} has {size} bytes, and {pos} were read from it"
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gone_or_shorter_than_what_was_read_is_replaced() {
        let logs = vec![("binlog.000001".to_string(), 700)];
        assert!(replaced(&logs, "binlog.000001", 600).is_none());
        assert!(replaced(&logs, "binlog.000001", 700).is_none());
        assert!(replaced(&logs, "binlog.000001", 1905).is_some());
        assert!(replaced(&logs, "binlog.000003", 4).is_some());
        assert!(replaced(&logs, "", 0).is_none());
    }
}
