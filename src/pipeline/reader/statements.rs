//! Statements in the binlog: row changes logged as SQL, XA, and DDL (its
//! topic, and the snapshot plan it changes).

use super::*;

impl Reader {
    /// A row change logged as SQL: stop before it (or warn, with
    /// `mysql.on_statement_dml=warn`) when its table is published.
    pub(super) fn on_statement_dml(
        &mut self,
        sql: &str,
        schema: &str,
        start: u64,
    ) -> Result<(), SourceError> {
        let dml = statement::classify(sql, schema);
        let table = dml.as_ref().and_then(|d| d.table.clone());
        let verb = dml.map_or("LOAD DATA", |d| d.verb.as_str());
        if let Some((db, t)) = &table {
            if !self.cfg.source.filter.allows(db, t) {
                return Ok(());
            }
        }
        let name = table.map_or_else(|| "a table".to_string(), |(d, t)| format!("{d}.{t}"));
        let position = format!("{}:{start}", self.file);
        // A replay of files reports and goes on: the files are what they are.
        if self.live && !self.cfg.on_statement_dml_warn {
            return Err(SourceError::StatementDml {
                position,
                verb,
                table: name,
            });
        }
        log::warn!(
            "{verb} on {name} at {position} was logged as a statement (binlog_format STATEMENT or MIXED): its rows are not in the binlog and are NOT published (mysql.on_statement_dml=warn): {}",
            first_line(sql)
        );
        if self.txn.as_ref().is_some_and(|t| t.explicit) {
            Ok(())
        } else {
            self.commit()
        }
    }

    /// An `XA …` statement (see [`xa`]).
    pub(super) fn on_xa_statement(
        &mut self,
        x: XaStatement,
        start: u64,
        end: u64,
    ) -> Result<(), SourceError> {
        match x {
            XaStatement::Start(xid) => {
                if self.txn.is_none() {
                    self.begin_txn(start, None);
                }
                let file = self.file.clone();
                let at = self.txn.as_ref().map_or(start, |t| t.start);
                let publish = self.xa.is_rewound_group(&file, at);
                if let Some(t) = self.txn.as_mut() {
                    t.explicit = true;
                    t.xa = Some(XaTxn {
                        xid: Some(xid),
                        publish,
                    });
                }
                Ok(())
            }
            XaStatement::End(xid) => {
                if let Some(x) = self.txn.as_mut().and_then(|t| t.xa.as_mut()) {
                    x.xid = Some(xid);
                }
                Ok(())
            }
            XaStatement::Prepare(_) => Ok(()),
            XaStatement::Commit {
                xid,
                one_phase: true,
            } if self.txn.as_ref().is_some_and(|t| t.xa.is_some()) => {
                // MySQL writes XA COMMIT ... ONE PHASE at the end of the
                // group itself.
                let publish = self
                    .txn
                    .as_ref()
                    .and_then(|t| t.xa.as_ref())
                    .is_some_and(|x| x.publish);
                if publish {
                    return self.publish_rewound();
                }
                let at = self.txn_start_position();
                let blocker = self.next_seq();
                self.shared.ledger.push_blocker(blocker, at.clone());
                self.start_rewind(xid, blocker, at, end);
                Ok(())
            }
            XaStatement::Commit { xid, .. } => match self.xa.prepared.remove(&xid) {
                Some(p) => {
                    self.start_rewind(xid, p.blocker, p.at, end);
                    Ok(())
                }
                None => {
                    log::warn!(
                        "XA COMMIT {xid} at {}:{start}: its XA PREPARE lies before where this pipeline started reading, so its rows are not published",
                        self.file
                    );
                    self.commit()
                }
            },
            XaStatement::Rollback(xid) => {
                if let Some(p) = self.xa.prepared.remove(&xid) {
                    log::debug!("XA ROLLBACK {xid}: its prepared rows are not published");
                    self.shared.ledger.ack_batch([(p.blocker, -1)]);
                }
                self.commit()
            }
        }
    }

    /// The XA_PREPARE event that ends a prepare group: the first time, note
    /// the prepare and hold the checkpoint before it; in a rewind, publish.
    pub(super) fn on_xa_prepared(&mut self) -> Result<(), SourceError> {
        let Some(x) = self.txn.as_mut().and_then(|t| t.xa.take()) else {
            return self.commit();
        };
        if x.publish {
            return self.publish_rewound();
        }
        let at = self.txn_start_position();
        let blocker = self.next_seq();
        self.shared.ledger.push_blocker(blocker, at.clone());
        let xid = x.xid.unwrap_or_default();
        log::debug!("XA PREPARE {xid} at {at}: its rows wait for XA COMMIT or ROLLBACK");
        self.xa.prepared.insert(xid, xa::Prepared { at, blocker });
        if let Some(t) = self.txn.as_mut() {
            t.held.clear();
        }
        self.commit()
    }

    pub(super) fn txn_start_position(&self) -> Position {
        let t = self.txn.as_ref();
        self.here(
            t.map_or(self.next_pos, |t| t.start),
            0,
            t.and_then(|t| t.gtid.clone()),
            t.map_or_else(|| self.state.clone(), |t| t.state.clone()),
        )
    }

    /// Asks the stream to start again at `from`, the prepare group of
    /// `xid`, and come back to `end` (the end of the commit).
    pub(super) fn start_rewind(&mut self, xid: String, blocker: u64, from: Position, end: u64) {
        self.xa.rewind = Some(xa::Rewind {
            xid,
            blocker,
            from: from.clone(),
            back_to: (self.file.clone(), end),
            published: false,
        });
        self.txn = None;
        self.rewind_to = Some(from);
    }

    /// The prepare group read again in a rewind ends: its rows go on, the
    /// last one linked to the blocker, and reading skips to the commit.
    pub(super) fn publish_rewound(&mut self) -> Result<(), SourceError> {
        let Some(rw) = self.xa.rewind.as_mut() else {
            return self.commit();
        };
        rw.published = true;
        let (blocker, back_to) = (rw.blocker, rw.back_to.clone());
        let mut held = self.txn.take().map(|t| t.held).unwrap_or_default();
        match held.last_mut() {
            Some(Change::Row(last)) => {
                last.commit = true;
                self.shared.ledger.link_ack(last.seq, blocker);
            }
            _ => self.shared.ledger.ack_batch([(blocker, -1)]),
        }
        self.send(held)?;
        self.skip_next = 0;
        self.table_map_start = None;
        self.marker(Position {
            file: back_to.0,
            pos: back_to.1,
            rows: 0,
            gtid: None,
            state: self.state.clone(),
            // The rewind reads an earlier file: the commit's is not known.
            file_id: None,
            snapshot: self.plan.clone(),
            schema: self.schemas.follower().map_or(0, |f| f.versions),
        });
        Ok(())
    }

    /// Takes a rewind an XA COMMIT asked for (offline replay, which has no
    /// stream to restart, reports it).
    pub fn take_rewind(&mut self) -> Option<(String, Position)> {
        let to = self.rewind_to.take()?;
        let rw = self.xa.rewind.take()?;
        self.shared.ledger.ack_batch([(rw.blocker, -1)]);
        Some((rw.xid, to))
    }

    /// A standalone statement ending at `next_pos`: with `kafka.ddl_topic`
    /// set, a DDL on a table the filter lets through goes to the producer,
    /// released like a row. Rows held for an implicit transaction go first,
    /// so the waiting queue stays in binlog order.
    pub(super) fn on_ddl(
        &mut self,
        sql: &str,
        schema: &str,
        start: u64,
        (ts, server_id): (u32, u32),
        thread: u32,
    ) -> Result<(), SourceError> {
        if !self.cfg.publish_ddl {
            return Ok(());
        }
        let Some((kind, database, table)) = crate::source::ddl::classify(sql, schema) else {
            return Ok(());
        };
        // A rename is published when either name is captured: a table
        // that leaves the captured tables, or comes back, says so.
        let captured = |(d, t): &(String, String)| self.cfg.source.filter.allows(d, t);
        let renamed_in_or_out = || match crate::source::ddl::table_ddl(sql, schema) {
            Some(crate::source::ddl::TableDdl::Rename(pairs)) => {
                pairs.iter().any(|(f, t)| captured(f) || captured(t))
            }
            _ => false,
        };
        if !table.is_empty()
            && !self.cfg.source.filter.allows(&database, &table)
            && !renamed_in_or_out()
        {
            return Ok(());
        }
        if let Some(txn) = self.txn.as_mut() {
            let held = std::mem::take(&mut txn.held);
            self.send(held)?;
        }
        let seq = self.next_seq();
        let ddl = DdlChange {
            seq,
            kind,
            database,
            table,
            sql: sql.to_string(),
            ts,
            event_file: self.file.clone(),
            event_pos: start,
            server_id,
            thread: Some(thread),
            // Inside an event group (CREATE TABLE ... SELECT) the position
            // after the statement is not a place to resume: the group's
            // start with the rows released so far is.
            checkpoint: match self.txn.as_ref().filter(|t| t.explicit) {
                Some(t) => self.here(t.start, t.rows, t.gtid.clone(), t.state.clone()),
                None => self.here(self.next_pos, 0, None, self.state_after()),
            },
        };
        log::info!(
            "DDL at {}:{start} on {}{}{}: {}",
            self.file,
            ddl.database,
            if ddl.table.is_empty() { "" } else { "." },
            ddl.table,
            first_line(sql)
        );
        self.send(vec![Change::Ddl(ddl)])
    }

    /// A TRUNCATE or RENAME that changes the snapshot plan: the snapshot
    /// thread starts again from the plan as changed here, in stream order
    /// (the same path as a failover: chunks read before it are dropped).
    /// Only where a snapshot thread runs (not in `replay`).
    pub(super) fn snapshot_follows_ddl(&mut self, sql: &str, schema: &str, start: u64) {
        if self.seam.is_none() {
            return;
        }
        let Some(ddl) = crate::source::ddl::table_ddl(sql, schema) else {
            return;
        };
        let plan = self.plan.clone().unwrap_or_default();
        let entering = self.cfg.snapshot_mode != crate::source::snapshot::SnapshotMode::Never;
        let filter = &self.cfg.source.filter;
        let Some((next, notes)) = plan.after_ddl(&ddl, |d, t| filter.allows(d, t), entering) else {
            return;
        };
        for n in notes {
            log::warn!("{n} (DDL at {}:{start})", self.file);
        }
        self.install_plan(Arc::new(next));
        if let Some(seam) = self.seam.as_mut() {
            seam.reset();
        }
        self.stream_wait = None;
        self.plan_wait = None;
        self.shared.reading.bump_snapshot_epoch();
    }
}

impl Reader {
    /// Keeps the schema history in step with a DDL that ends at `end`. A
    /// DDL on a tracked table that cannot be followed stops the reader
    /// (`schema.on_unparsed_ddl=fail`) or has the table read again from
    /// the server (`refresh`).
    pub(super) fn follow_ddl(
        &mut self,
        sql: &str,
        default_db: &str,
        start: u64,
        end: u64,
    ) -> Result<(), SourceError> {
        use crate::source::history::follow::{DdlRefusal, OnUnparsed};
        let filter = self.cfg.source.filter.clone();
        // The filter's tables, and every table of a database the history
        // holds one of (shadow tables of online schema changes).
        let databases: std::collections::HashSet<String> = self
            .schemas
            .follower()
            .map(|f| f.history.tables.keys().map(|k| k.0.clone()).collect())
            .unwrap_or_default();
        let tracked = |d: &str, t: &str| {
            !crate::source::history::is_system(d) && (filter.allows(d, t) || databases.contains(d))
        };
        let file = self.file.clone();
        let refresh = self.cfg.source.schema_on_unparsed == OnUnparsed::Refresh && self.catalog;
        let Some(f) = self.schemas.follower_mut() else {
            return Ok(());
        };
        match f.on_ddl(sql, default_db, (&file, end), &tracked) {
            Ok(applied) => {
                let touched = !applied.changed.is_empty()
                    || !applied.removed.is_empty()
                    || !applied.unknown.is_empty();
                let mut keys: Vec<(String, String)> = applied
                    .changed
                    .iter()
                    .chain(&applied.removed)
                    .cloned()
                    .collect();
                keys.extend(applied.unknown.iter().map(|(k, _)| k.clone()));
                for (key, why) in applied.unknown {
                    if refresh {
                        log::warn!(
                            "schema history: {}.{} ({why}, DDL at {file}:{start}) is read again from the server (schema.on_unparsed_ddl=refresh); the table maps that follow check it",
                            key.0,
                            key.1
                        );
                        let target = self.target.clone();
                        self.schemas.refresh(&target, key)?;
                    }
                }
                if touched {
                    self.schemas.forget_ids();
                    self.store_schema(keys, &format!("{file}:{end}"))?;
                    self.show_schema();
                }
                Ok(())
            }
            Err(refusal) => {
                let table = crate::source::ddl::classify(sql, default_db)
                    .filter(|(_, d, t)| !t.is_empty() && tracked(d, t))
                    .map(|(_, d, t)| (d, t));
                let Some(key) = table else {
                    // Not a tracked table's: nothing to follow.
                    return Ok(());
                };
                if !filter.allows(&key.0, &key.1) {
                    // A table held only to follow renames: unknown from
                    // here (a rename into a published name then stops,
                    // or is read again, where the binlog has no names).
                    if let Some(f) = self.schemas.follower_mut() {
                        f.history.tables.remove(&key);
                        f.unknown
                            .insert(key, "a DDL on it could not be followed".into());
                    }
                    return Ok(());
                }
                let why = match refusal {
                    DdlRefusal::Unreadable(e) => format!("the statement cannot be read: {e}"),
                    DdlRefusal::Disagrees(e) => format!("it does not fit the schema history: {e}"),
                };
                if !refresh {
                    return Err(SourceError::UnreadableDdl {
                        table: format!("{}.{}", key.0, key.1),
                        position: format!("{file}:{start}"),
                        statement: first_line(sql).to_string(),
                        why,
                    });
                }
                log::warn!(
                    "schema history: cannot follow the DDL on {}.{} at {file}:{start} ({why}); reading the table from the server (schema.on_unparsed_ddl=refresh); the table maps that follow check it",
                    key.0,
                    key.1
                );
                let target = self.target.clone();
                self.schemas.refresh(&target, key.clone())?;
                self.store_schema(vec![key], &format!("{file}:{end}"))?;
                self.show_schema();
                Ok(())
            }
        }
    }

    /// Writes the history's new version of `keys` to the schema topic
    /// before anything after it is handed on; a Kafka outage is waited
    /// out (the reader holds until the write is acknowledged). Fenced (a
    /// successor took the pipeline over): stops.
    fn store_schema(&mut self, keys: Vec<(String, String)>, at: &str) -> Result<(), SourceError> {
        let (Some(store), Some(f)) = (self.schema_store.as_mut(), self.schemas.follower()) else {
            return Ok(());
        };
        let versions = crate::pipeline::schema_store::changes(&f.history, f.versions, at, keys);
        let mut said = false;
        loop {
            match store.write(&versions) {
                Ok(()) => {
                    if said {
                        self.shared.board.set_down(true, None);
                    }
                    return Ok(());
                }
                Err(e) if e.is_fenced() => {
                    return Err(SourceError::Fenced {
                        during: format!("writing the schema history to {}", store.topic()),
                    })
                }
                Err(e) => {
                    let why = format!("writing the schema history to {}: {e}", store.topic());
                    if !said {
                        log::warn!("{why}; retrying");
                        self.shared.board.set_down(true, Some(why));
                        said = true;
                    }
                    store.reset();
                    if self.shared.stop.wait(std::time::Duration::from_secs(1)) {
                        // Nothing after the DDL may go on unwritten: the
                        // reader ends here, before it (a retriable error
                        // while stopping is a clean end).
                        return Err(SourceError::Unreachable {
                            addr: store.topic().to_string(),
                            detail: "stopped before the schema history was written".into(),
                        });
                    }
                }
            }
        }
    }

    /// What the status page shows of the schema history.
    pub(super) fn show_schema(&self) {
        if let Some(f) = self.schemas.follower() {
            self.shared.board.progress.lock().schema = Some(crate::pipeline::SchemaStatus {
                tables: f.history.tables.len(),
                versions: f.versions,
                last_ddl: f.last_ddl.clone(),
            });
        }
    }
}
