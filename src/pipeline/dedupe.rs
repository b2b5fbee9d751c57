//! Resume from what Kafka holds, not only from the checkpoint.
//!
//! The checkpoint trails what Kafka has: it is written every
//! `pipeline.checkpoint_interval_ms`, and rows acknowledged after the last
//! write are read again after a crash. The last record of every data batch
//! therefore carries a header, `b2k.pos`, naming the pipeline and the exact
//! position of the batch's newest change (the server that wrote the binlog
//! file, the file, the transaction's offset and the row's place in it). A
//! batch is written whole or not at all, so a partition's newest record is
//! always a batch's last. (One header per batch: one per record cost a
//! third of the end-to-end rate, measured.) At start, before the
//! first record goes to a partition, the producer reads that partition's
//! newest record of this pipeline; partitions are written in order, so
//! what a partition holds is a prefix of the pipeline's changes for it,
//! and every re-read row at or before its newest position is already there
//! and is skipped (released as if sent). The first row past it ends the
//! comparison for that partition.
//!
//! Snapshot rows all stand at the boundary where they joined the stream, so
//! their position does not tell them apart: they are never skipped (a
//! restart sends again the chunk that was in flight). A position on another
//! server (after a failover) is not compared either. With
//! `kafka.partition_by=random` a re-read row may go to another partition
//! than its first copy did, so nothing is skipped.

use std::collections::HashMap;

use bytes::Bytes;

use crate::event::Position;
use crate::kafka::{Client, KafkaError};
use crate::source::snapshot::seam::file_order;

/// The record header's name.
pub const HEADER: &str = "b2k.pos";

/// How far back a partition is searched for this pipeline's newest record
/// (other pipelines may write to the same topic).
const WINDOW: i64 = 500;

/// A change's place, as the header carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub server_id: u32,
    pub file: String,
    pub pos: u64,
    pub rows: u64,
}

impl Mark {
    #[cfg(test)]
    fn of(p: &Position) -> Option<Mark> {
        Some(Mark {
            server_id: p.file_id?.server_id,
            file: p.file.to_string(),
            pos: p.pos,
            rows: p.rows,
        })
    }

    /// Whether the change at `p` is at or before this mark, on its server.
    fn covers(&self, p: &Position) -> bool {
        if p.file_id.is_none_or(|id| id.server_id != self.server_id) {
            return false;
        }
        file_order(&p.file, &self.file)
            .then(p.pos.cmp(&self.pos))
            .then(p.rows.cmp(&self.rows))
            .is_le()
    }
}

/// The header value for a change of `pipeline` at `p`.
pub fn header(pipeline: &str, p: &Position) -> Bytes {
    let server = p.file_id.map_or(0, |id| id.server_id);
    Bytes::from(format!(
        "{pipeline}|{server}|{}|{}|{}",
        p.file, p.pos, p.rows
    ))
}

/// The pipeline and mark a header names.
pub fn parse(value: &[u8]) -> Option<(String, Mark)> {
    let text = std::str::from_utf8(value).ok()?;
    // The pipeline name may itself hold '|': the four fields are the last.
    let mut parts = text.rsplitn(5, '|');
    let rows = parts.next()?.parse().ok()?;
    let pos = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_string();
    let server_id = parts.next()?.parse().ok()?;
    let pipeline = parts.next()?.to_string();
    Some((
        pipeline,
        Mark {
            server_id,
            file,
            pos,
            rows,
        },
    ))
}

enum State {
    /// Re-read rows at or before this are in the partition already; how
    /// many were skipped so far.
    Holds(Mark, u64),
    /// Nothing to skip here (any more).
    Passed,
}

/// What each partition held when this run first wrote to it.
pub struct Tails {
    pipeline: String,
    /// By the producer's topic index and the partition.
    states: HashMap<(usize, i32), State>,
    /// Rows skipped, for the log.
    pub skipped: u64,
}

impl Tails {
    pub fn new(pipeline: &str) -> Tails {
        Tails {
            pipeline: pipeline.to_string(),
            states: HashMap::new(),
            skipped: 0,
        }
    }

    /// Whether nothing is to be skipped in `topic_index`/`partition` any
    /// more.
    pub fn passed(&self, topic_index: usize, partition: i32) -> bool {
        matches!(
            self.states.get(&(topic_index, partition)),
            Some(State::Passed)
        )
    }

    /// Whether the change at `p`, bound for `topic`/`partition`, is there
    /// already. The first call for a partition reads its newest records.
    pub fn holds(
        &mut self,
        client: &mut Client,
        topic: &str,
        topic_index: usize,
        partition: i32,
        p: &Position,
    ) -> Result<bool, KafkaError> {
        let key = (topic_index, partition);
        if let Some(State::Passed) = self.states.get(&key) {
            return Ok(false);
        }
        if !self.states.contains_key(&key) {
            let state = match self.newest(client, topic, partition)? {
                Some(m) => {
                    log::info!(
                        "{topic}/{partition} already holds this pipeline's changes up to {}:{} (+{} rows): re-read rows up to there are not sent again",
                        m.file,
                        m.pos,
                        m.rows
                    );
                    State::Holds(m, 0)
                }
                None => State::Passed,
            };
            self.states.insert(key, state);
        }
        let state = self.states.get_mut(&key).expect("inserted");
        match state {
            State::Holds(m, n) if m.covers(p) => {
                *n += 1;
                self.skipped += 1;
                Ok(true)
            }
            State::Holds(_, n) => {
                log::info!(
                    "{topic}/{partition}: {n} re-read rows were in Kafka already and were not sent again"
                );
                *state = State::Passed;
                Ok(false)
            }
            State::Passed => Ok(false),
        }
    }

    /// The newest mark of this pipeline in a partition's last records.
    fn newest(
        &self,
        client: &mut Client,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Mark>, KafkaError> {
        let (earliest, latest) = client.offsets(topic, partition)?;
        let mut at = (latest - WINDOW).max(earliest);
        let mut newest = None;
        // Whether the partition's newest record carries any pipeline's
        // header: every batch of this release ends in one.
        let mut last_marked = None;
        while at < latest {
            let recs = client.fetch(topic, partition, at, 1 << 20)?;
            let Some(last) = recs.last() else { break };
            at = last.offset + 1;
            last_marked = Some(last.headers.iter().any(|(name, _)| name == HEADER));
            for r in &recs {
                for (name, value) in &r.headers {
                    if name == HEADER {
                        if let Some((pipeline, m)) = parse(value) {
                            if pipeline == self.pipeline {
                                newest = Some(m);
                            }
                        }
                    }
                }
            }
        }
        if newest.is_none() && last_marked == Some(false) {
            // Written by a release before the header (or by another
            // producer): nothing tells which re-read rows are there.
            log::warn!(
                "{topic}/{partition}: its newest record carries no {HEADER} header (written by a binlog2kafka release before 2026-12-01, or by another producer), so rows re-read from the checkpoint cannot be recognised and may be sent again; stop the old release cleanly (SIGTERM) before an upgrade to avoid that"
            );
        }
        Ok(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FileId;

    fn at(file: &str, pos: u64, rows: u64, server: u32) -> Position {
        Position {
            file: file.into(),
            pos,
            rows,
            gtid: None,
            state: None,
            file_id: Some(FileId {
                server_id: server,
                created: 1,
            }),
            snapshot: None,
            schema: 0,
        }
    }

    #[test]
    fn a_header_names_the_pipeline_and_the_exact_row() {
        let p = at("binlog.000012", 4711, 3, 7);
        let h = header("shop|eu", &p);
        let (pipeline, m) = parse(&h).unwrap();
        assert_eq!(pipeline, "shop|eu");
        assert_eq!(m, Mark::of(&p).unwrap());
        assert!(parse(b"garbage").is_none());
    }

    #[test]
    fn a_mark_covers_what_came_before_it_on_its_server() {
        let m = Mark::of(&at("binlog.000012", 4711, 3, 7)).unwrap();
        assert!(m.covers(&at("binlog.000012", 4711, 3, 7)), "itself");
        assert!(m.covers(&at("binlog.000012", 4711, 2, 7)));
        assert!(m.covers(&at("binlog.000011", 99_999, 9, 7)));
        assert!(!m.covers(&at("binlog.000012", 4711, 4, 7)));
        assert!(!m.covers(&at("binlog.000013", 4, 1, 7)));
        assert!(!m.covers(&at("binlog.000012", 100, 1, 8)), "another server");
    }
}
