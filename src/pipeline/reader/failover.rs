//! Resuming on another server of `mysql.host`: failing over, passing over
//! a server that cannot resume the pipeline, the GTID checks that decide it,
//! and the binlog file identity a resume by file position relies on.

use super::*;
use crate::source::refusal::GtidRefusal;

impl Reader {
    /// Moves the reader to the next server of `mysql.host` after the one it
    /// read stayed unreachable for `mysql.failover_after_ms`.
    pub(super) fn fail_over(&mut self, e: &SourceError, down: std::time::Duration) {
        let (host, port) = self.next_host();
        log::warn!(
            "MySQL at {}:{} unreachable for {:.1} s ({e}); failing over to {host}:{port}, resuming by GTID from {}",
            self.target.host,
            self.target.port,
            down.as_secs_f64(),
            self.resume_position()
                .state
                .map_or_else(|| "(no GTID state)".to_string(), |s| position_text(&s))
        );
        self.move_to(host, port);
    }

    /// The server after the current one in `mysql.host`.
    pub(super) fn next_host(&self) -> (String, u16) {
        let hosts = &self.cfg.source.hosts;
        let at = hosts
            .iter()
            .position(|(h, p)| *h == self.target.host && *p == self.target.port)
            .unwrap_or(0);
        hosts[(at + 1) % hosts.len()].clone()
    }

    /// A server of `mysql.host` refused to be resumed on (`detail` says
    /// why: errant or skipped transactions, unrelated history, purged
    /// GTIDs): the next one is tried, and the pipeline stops only when
    /// none of them can resume it, with every server's reason.
    pub(super) fn pass_over(&mut self, detail: GtidRefusal) -> Result<(), SourceError> {
        let here = format!("{}:{}", self.target.host, self.target.port);
        // Refused a second time: every other server refused too, or is
        // unreachable.
        let again = self.refused.iter().any(|(addr, _)| *addr == here);
        if !again {
            self.refused.push((here.clone(), detail.clone()));
        }
        if again || self.refused.len() >= self.cfg.source.hosts.len() {
            let refusals = std::mem::take(&mut self.refused);
            return Err(SourceError::Gtid {
                refusal: GtidRefusal::NoServer {
                    others_unreachable: refusals.len() < self.cfg.source.hosts.len(),
                    refusals,
                },
            });
        }
        let (host, port) = self.next_host();
        log::warn!(
            "not resuming on {here}: {detail}. Trying {host}:{port}, the next server of mysql.host"
        );
        self.move_to(host, port);
        Ok(())
    }

    /// Points the reader at another server of `mysql.host`.
    pub(super) fn move_to(&mut self, host: String, port: u16) {
        self.target = self.target.at(&host, port);
        self.schemas.reset_catalog();
        // The history's capture point is in the old server's coordinates;
        // past a failover the stream is past it.
        if let Some(f) = self.schemas.follower_mut() {
            f.since = Default::default();
            f.unknown_until.clear();
        }
        // Snapshot chunks were read on the old server, in its coordinates.
        if let Some(seam) = self.seam.as_mut() {
            seam.reset();
            self.stream_wait = None;
            self.plan_wait = None;
            self.shared.reading.bump_snapshot_epoch();
        }
        self.shared
            .board
            .stats
            .failovers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shared.reading.set_server(host, port);
    }

    /// Whether `resume` must be found on this server by GTID (it was read
    /// from another server, or names no file), and the state to ask for:
    /// the resume state, moved back where the server never received the
    /// newest transactions the pipeline already published (the old
    /// primary's lost tail, logged). Refuses what would lose or invent data:
    /// no GTID state, a server that never had the previous server's
    /// transactions, GTIDs in domains the previous server never wrote
    /// (errant transactions), MySQL GTIDs the server purged.
    pub(super) fn resume_by_gtid(
        &mut self,
        conn: &mut mysql::Conn,
        info: &crate::source::ServerInfo,
        resume: &Position,
    ) -> Result<Option<GtidState>, SourceError> {
        let read_from = self
            .file_server
            .or(self.expect_file.as_ref().map(|(_, id)| id.server_id));
        let elsewhere = resume.file.is_empty() || read_from.is_some_and(|s| s != info.server_id);
        if !elsewhere {
            return Ok(None);
        }
        let addr = format!("{}:{}", self.target.host, self.target.port);
        let Some(state) = resume.state.clone() else {
            return Err(SourceError::Gtid {
                refusal: GtidRefusal::NoState {
                    addr,
                    server_id: info.server_id,
                    resume: resume.to_string(),
                    read_from,
                },
            });
        };
        // Another server's files: their names and identities are not ours.
        self.expect_file = None;
        self.seen_ids.clear();
        self.file_id = None;
        self.expect_gtid = (resume.rows > 0).then(|| resume.gtid.clone()).flatten();
        let cfg = &self.target;
        match &*state {
            GtidState::Maria(pos) => {
                let theirs: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_binlog_state")
                    .map_err(|e| classify(cfg, "reading gtid_binlog_state", e))?;
                let (connect, lost) =
                    match maria_plan(pos, &maria_list(&theirs.unwrap_or_default())) {
                        MariaPlan::Resume { from, lost } => (from, lost),
                        MariaPlan::Errant(errant) => {
                            let errant: Vec<String> =
                                errant.iter().map(|g| g.to_string()).collect();
                            return Err(SourceError::Gtid {
                                refusal: GtidRefusal::Errant {
                                    addr,
                                    errant,
                                    position: pos.to_string(),
                                },
                            });
                        }
                        MariaPlan::Skipped(skipped) => {
                            let skipped: Vec<String> =
                                skipped.iter().map(|g| g.to_string()).collect();
                            return Err(SourceError::Gtid {
                                refusal: GtidRefusal::Skipped {
                                    addr,
                                    skipped,
                                    position: pos.position(),
                                },
                            });
                        }
                        MariaPlan::Unrelated(g) => {
                            return Err(SourceError::Gtid {
                                refusal: GtidRefusal::Unrelated {
                                    addr,
                                    server: g.server,
                                    domain: g.domain,
                                    at: g.to_string(),
                                },
                            })
                        }
                    };
                if !lost.is_empty() {
                    log::warn!(
                        "{addr} never received {}, which binlog2kafka had already published from the previous server: asynchronous replication lost them with it (semi-synchronous replication avoids this), so consumers hold rows this server does not. Continuing from {}",
                        lost.join(", "),
                        connect.position()
                    );
                    self.skip_next = 0;
                    self.expect_gtid = None;
                }
                self.state = Some(Arc::new(GtidState::Maria(connect.clone())));
                Ok(Some(GtidState::Maria(connect)))
            }
            GtidState::Mysql(set) => {
                if !info.gtid_mode.eq_ignore_ascii_case("ON") {
                    return Err(SourceError::Gtid {
                        refusal: GtidRefusal::GtidModeOff {
                            addr,
                            gtid_mode: info.gtid_mode.clone(),
                        },
                    });
                }
                let purged: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_purged")
                    .map_err(|e| classify(cfg, "reading gtid_purged", e))?;
                let purged = MysqlSet::parse(&purged.unwrap_or_default()).unwrap_or_default();
                let missing = purged.minus(set);
                if !missing.is_empty() {
                    return Err(SourceError::Gtid {
                        refusal: GtidRefusal::Purged {
                            addr,
                            missing: missing.to_string(),
                        },
                    });
                }
                Ok(Some(GtidState::Mysql(set.clone())))
            }
        }
    }

    /// On the server read by file position, every transaction its
    /// `gtid_binlog_state` lists at or below the position's number in its
    /// domain is before where the pipeline reads: read, or history before
    /// its start. Noted so that a failover can tell them from transactions
    /// the pipeline never saw (`maria_plan`'s `Skipped`).
    pub(super) fn note_history(&mut self, conn: &mut mysql::Conn) {
        let Some(GtidState::Maria(pos)) = self.state.as_deref() else {
            return;
        };
        let Ok(Some(theirs)) = conn.query_first::<String, _>("SELECT @@GLOBAL.gtid_binlog_state")
        else {
            return;
        };
        let mut next = pos.clone();
        next.2 = true;
        for g in crate::gtid::maria_list(&theirs) {
            if next.0.get(&g.domain).is_some_and(|p| g.seq <= p.seq) {
                next.note_read(g);
            }
        }
        if next != *pos {
            self.state = Some(Arc::new(GtidState::Maria(next)));
        }
    }

    /// After resuming inside a transaction on another server, its first
    /// transaction must be that one, or the rows to skip are another's.
    pub(super) fn check_expected_gtid(&mut self, gtid: &str) -> Result<(), SourceError> {
        match self.expect_gtid.take() {
            Some(want) if *want != *gtid => Err(SourceError::Gtid {
                refusal: GtidRefusal::Diverged {
                    addr: self.target.addr(),
                    want: want.to_string(),
                    got: gtid.to_string(),
                },
            }),
            _ => Ok(()),
        }
    }

    /// The first event of a binlog file names the server that wrote it and
    /// when: if that differs from what the checkpoint (or an earlier connect
    /// of this run) saw for the same file name, the server's binlog was
    /// replaced and the offset points into other data.
    pub(super) fn on_file_identity(&mut self, id: FileId) -> Result<(), SourceError> {
        if id.created == 0 {
            return Ok(());
        }
        let replaced = |was: FileId, origin: &str| {
            SourceError::BinlogReplaced {
            detail: format!(
                "binlog {file} on the server is not the one {origin} points into: that one was written by server_id {} at {}, the server's {file} by server_id {} at {} (RESET MASTER, a restored backup, or another server with the same file names). Stopped, the checkpoint unmoved: reading on would skip or repeat changes. Re-snapshot the data, then `binlog2kafka reset --config FILE` and choose start.position",
                was.server_id,
                was.created,
                id.server_id,
                id.created,
                file = self.file,
            ),
        }
        };
        if let Some((file, want)) = &self.expect_file {
            if **file == *self.file && *want != id {
                return Err(replaced(*want, "the checkpoint"));
            }
        }
        if let Some(seen) = self.seen_ids.get(&*self.file) {
            if *seen != id {
                return Err(replaced(*seen, "the stream read before reconnecting"));
            }
        } else {
            self.seen_ids.insert(self.file.to_string(), id);
        }
        self.file_id = Some(id);
        Ok(())
    }
}
