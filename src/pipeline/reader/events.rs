//! What each binlog event means to the reader: the dispatch from event
//! type to its handler, and the events inside compressed transactions.

use mysql::binlog::events::{GtidEvent, QueryEvent, RotateEvent, TableMapEvent};

use super::*;

impl Reader {
    /// A MySQL 8 compressed transaction (TRANSACTION_PAYLOAD_EVENT): its
    /// events, decompressed, go through `on_event` as if they stood where
    /// the payload stands, so positions and resumes work as for any other
    /// transaction (a resume re-reads and re-decompresses it).
    pub(super) fn on_payload(
        &mut self,
        data: &[u8],
        start: u64,
        end: u64,
    ) -> Result<(), SourceError> {
        let payload = transaction_payload(data).map_err(|e| self.corrupt(e))?;
        let Some(fde) = self.fde.clone() else {
            return Err(self.corrupt("compressed transaction before any FORMAT_DESCRIPTION event"));
        };
        self.payload_at = Some((start, end));
        let result = (|| {
            let mut at = 0usize;
            while at < payload.len() {
                let rest = &payload[at..];
                if rest.len() < 19 {
                    return Err(self.corrupt("compressed transaction ends inside an event header"));
                }
                let size = u32::from_le_bytes(rest[9..13].try_into().expect("4 bytes")) as usize;
                if size < 19 || size > rest.len() {
                    return Err(self.corrupt(format!(
                        "event of {size} bytes inside a compressed transaction of {} bytes",
                        payload.len()
                    )));
                }
                let ev = Event::read(&fde, &rest[..size]).map_err(|e| self.corrupt(e))?;
                self.on_event(&ev)?;
                at += size;
            }
            Ok(())
        })();
        self.payload_at = None;
        result
    }

    pub(super) fn corrupt(&self, detail: impl std::fmt::Display) -> SourceError {
        SourceError::Corrupt {
            position: format!("{}:{}", self.file, self.next_pos),
            detail: detail.to_string(),
        }
    }

    /// Handles one event: where it stands, then what it means. The
    /// position moves in each handler, before anything that records it
    /// (markers, commits), and error lines name the event's start.
    pub fn on_event(&mut self, ev: &Event) -> Result<(), SourceError> {
        let Some(at) = self.locate(ev)? else {
            return Ok(());
        };
        let header = ev.header();
        match header.event_type_raw() {
            MARIADB_GTID => self.on_maria_gtid(ev, at),
            MARIADB_GTID_LIST if self.state.is_none() && self.xa.rewind.is_none() => {
                self.on_gtid_list(ev, at)
            }
            PREVIOUS_GTIDS if self.txn.is_none() && self.xa.rewind.is_none() => {
                self.on_previous_gtids(ev, at)
            }
            MARIADB_ANNOTATE_ROWS | MARIADB_GTID_LIST => self.step_over(at),
            MARIADB_BINLOG_CHECKPOINT => self.on_binlog_checkpoint(at),
            MARIADB_QUERY_COMPRESSED => self.on_query_compressed(ev, at),
            t if MARIADB_ROWS_COMPRESSED.contains(&t) => self.on_rows_compressed(ev, at),
            t if t == EventType::FORMAT_DESCRIPTION_EVENT as u8 => {
                self.on_format_description(ev, at)
            }
            xa::XA_PREPARE_EVENT => {
                self.next_pos = at.end;
                self.on_xa_prepared()
            }
            EXECUTE_LOAD_QUERY => {
                self.next_pos = at.end;
                let sql = load_query_text(ev.data());
                self.on_statement_dml(&sql, "", at.start)
            }
            t if t == EventType::TRANSACTION_PAYLOAD_EVENT as u8 => {
                // Parsed here, not by mysql_common, whose parser of this event
                // panics on some damaged payloads (found by fuzzing).
                self.on_payload(ev.data(), at.start, at.end)?;
                self.step_over(at)
            }
            t if !DECODED.contains(&t) => {
                // Not needed for row changes (heartbeats, ...): never
                // parsed, so their damage cannot hurt.
                log::debug!("skipping event type {t} at {}:{}", self.file, at.start);
                self.step_over(at)
            }
            _ => self.on_decoded(ev, at),
        }
    }

    /// Where `ev` stands (for the status page too), after its checksum is
    /// checked; `None` when it is to be stepped over (handed on before an
    /// XA rewind).
    fn locate(&mut self, ev: &Event) -> Result<Option<At>, SourceError> {
        let header = ev.header();
        let log_pos = header.log_pos() as u64;
        let start = if log_pos > 0 {
            log_pos.saturating_sub(header.event_size() as u64)
        } else {
            self.next_pos
        };
        let raw_type = header.event_type_raw();
        let end = if log_pos > 0 { log_pos } else { self.next_pos };
        // For the status page: where the reader is, and how old that is.
        self.shared.board.read_pos.store(end, Ordering::Relaxed);
        if header.timestamp() > 0 {
            self.shared
                .board
                .read_ts
                .store(header.timestamp() as u64, Ordering::Relaxed);
        }
        // Events inside a compressed transaction have no checksum of their
        // own (the payload event's covered them).
        if self.payload_at.is_none() {
            if let Some(detail) = crate::source::checksum::mismatch(ev) {
                return Err(SourceError::Corrupt {
                    position: format!("{}:{start}", self.file),
                    detail,
                });
            }
        }
        // Events inside a compressed transaction stand at its position.
        let (start, end) = self.payload_at.unwrap_or((start, end));
        if self.xa.skipping() && self.payload_at.is_none() {
            let reached = self
                .xa
                .rewind
                .as_ref()
                .is_some_and(|r| r.reached(&self.file, start));
            if reached {
                self.xa.rewind = None;
            } else if raw_type != EventType::ROTATE_EVENT as u8
                && raw_type != EventType::FORMAT_DESCRIPTION_EVENT as u8
            {
                // Handed on before the rewind.
                self.next_pos = end;
                return Ok(None);
            }
        }
        Ok(Some(At { start, end }))
    }

    /// Moves past an event that means nothing here.
    fn step_over(&mut self, at: At) -> Result<(), SourceError> {
        self.next_pos = at.end;
        Ok(())
    }

    /// MariaDB's GTID event: a transaction (or event group) begins.
    fn on_maria_gtid(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let header = ev.header();
        let (start, end) = (at.start, at.end);

        let d = ev.data();
        if d.len() < 13 {
            return Err(self.corrupt("short MariaDB GTID event"));
        }
        let seq_no = u64::from_le_bytes(d[0..8].try_into().unwrap());
        let domain = u32::from_le_bytes(d[8..12].try_into().unwrap());
        let flags = d[12];
        let gtid: Arc<str> = format!("{domain}-{}-{seq_no}", header.server_id()).into();
        self.check_expected_gtid(&gtid)?;
        self.begin_txn(start, Some(gtid));
        if self.state.is_none() {
            self.state = Some(Arc::new(GtidState::Maria(Default::default())));
            if let Some(t) = self.txn.as_mut() {
                t.state = self.state.clone();
            }
        }
        let publish = self.xa.is_rewound_group(&self.file, start);
        if let Some(t) = self.txn.as_mut() {
            t.adds = Some(Gtid::Maria(MariaGtid {
                domain,
                server: header.server_id(),
                seq: seq_no,
            }));
            // Without FL_STANDALONE the GTID event stands for BEGIN;
            // with it, a DDL follows and its Query event commits.
            t.explicit = flags & FL_STANDALONE == 0;
            if flags & xa::FL_PREPARED_XA != 0 {
                t.xa = Some(XaTxn { xid: None, publish });
            }
        }
        self.next_pos = end;
        Ok(())
    }
    /// A file's first events: the binlog state at its start (the last GTID
    /// per domain and server); the position is each domain's newest.
    fn on_gtid_list(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let end = at.end;

        self.state = Some(Arc::new(GtidState::Maria(gtid_list_position(ev.data()))));
        self.next_pos = end;
        Ok(())
    }
    /// MySQL's PREVIOUS_GTIDS: the executed set before this file, authoritative.
    fn on_previous_gtids(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let (start, end) = (at.start, at.end);

        match crate::gtid::previous_gtids(ev.data()) {
        Some(set) => self.state = Some(Arc::new(GtidState::Mysql(set))),
        None => log::warn!(
            "unreadable PREVIOUS_GTIDS event at {}:{start}: the GTID state stays unknown until the next file",
            self.file
        ),
    }
        self.next_pos = end;
        Ok(())
    }
    /// MariaDB writes a binlog checkpoint event some time after a rotation:
    /// outside a transaction the checkpoint moves past it, or an idle
    /// pipeline would stay before it until the next write. Not while rows of
    /// a resumed transaction are still to be skipped: the checkpoint is
    /// inside that transaction.
    fn on_binlog_checkpoint(&mut self, at: At) -> Result<(), SourceError> {
        let end = at.end;

        self.next_pos = end;
        if self.txn.is_none() && self.skip_next == 0 && !self.xa.skipping() {
            let pos = self.here(self.next_pos, 0, None, self.state.clone());
            self.marker(pos);
        }
        Ok(())
    }
    /// Handled exactly as the plain statement it stands for: DML logged as a
    /// statement, DDL, XA, BEGIN and COMMIT alike.
    fn on_query_compressed(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let (start, end) = (at.start, at.end);

        let plain =
            crate::source::compressed::query(self.fde.as_ref(), ev).map_err(|e| self.corrupt(e))?;
        let outer = self.payload_at.replace((start, end));
        let result = self.on_event(&plain);
        self.payload_at = outer;
        result
    }
    /// MariaDB's compressed rows, as the plain rows event. A filtered-out
    /// table's rows are not even inflated (the post-header starts with the
    /// 6-byte table id).
    fn on_rows_compressed(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let (start, end) = (at.start, at.end);

        let table_id = ev
            .data()
            .get(..6)
            .map(|b| b.iter().rev().fold(0u64, |acc, x| acc << 8 | *x as u64));
        if table_id.is_some_and(|id| self.filtered.contains(&id)) {
            self.next_pos = end;
            return Ok(());
        }
        let plain =
            crate::source::compressed::rows(self.fde.as_ref(), ev).map_err(|e| self.corrupt(e))?;
        let outer = self.payload_at.replace((start, end));
        let result = self.on_event(&plain);
        self.payload_at = outer;
        result?;
        self.next_pos = end;
        Ok(())
    }
    /// A file's identity, and the format its compressed transactions' events
    /// are read with.
    fn on_format_description(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let header = ev.header();
        let end = at.end;

        self.on_file_identity(FileId {
            server_id: header.server_id(),
            created: header.timestamp(),
        })?;
        self.file_server = Some(header.server_id());
        // Kept to read the events inside compressed transactions,
        // which are written without checksums.
        if let Ok(fde) = ev.read_event::<FormatDescriptionEvent<'_>>() {
            if let Some(f) = self.schemas.follower_mut() {
                f.history.server_wrote(&fde.server_version());
            }
            let mut footer = ev.footer();
            footer.set_checksum_enabled(false);
            self.fde = Some(fde.into_owned().with_footer(footer));
        }
        self.next_pos = end;
        Ok(())
    }
    /// The events mysql_common decodes for us.
    fn on_decoded(&mut self, ev: &Event, at: At) -> Result<(), SourceError> {
        let header = ev.header();
        let raw_type = header.event_type_raw();
        let (start, end) = (at.start, at.end);
        let data = match ev.read_data() {
            Ok(Some(d)) => d,
            Ok(None) => {
                log::debug!("skipping event type {raw_type} at {}:{start}", self.file);
                self.next_pos = end;
                return Ok(());
            }
            Err(e) => {
                if header.event_type().is_err() {
                    log::debug!(
                        "skipping unknown event type {raw_type} at {}:{start}",
                        self.file
                    );
                    self.next_pos = end;
                    return Ok(());
                }
                return Err(self.corrupt(e));
            }
        };
        match data {
            EventData::RotateEvent(r) => self.on_rotate(ev, &r),
            EventData::GtidEvent(g) => {
                self.on_mysql_gtid(&g, start)?;
                self.step_over(at)
            }
            EventData::AnonymousGtidEvent(_) => {
                self.begin_txn(start, None);
                self.step_over(at)
            }
            EventData::QueryEvent(q) => self.on_query(ev, &q, at),
            EventData::TableMapEvent(t) => {
                self.on_table_map(&t, start)?;
                self.step_over(at)
            }
            EventData::RowsEvent(rows) => {
                self.on_rows(&rows, start, header.timestamp(), header.server_id())?;
                self.table_map_start = None;
                self.step_over(at)
            }
            EventData::XidEvent(x) => {
                if let Some(t) = self.txn.as_mut() {
                    t.xid = Some(x.xid);
                }
                self.next_pos = end;
                self.commit()
            }
            _ => self.step_over(at),
        }
    }

    /// A ROTATE: the file (and offset) the next events are in.
    fn on_rotate(&mut self, ev: &Event, r: &RotateEvent<'_>) -> Result<(), SourceError> {
        let header = ev.header();

        // The server's artificial first ROTATE comes before the
        // FORMAT_DESCRIPTION, so the decoder does not know whether a
        // CRC32 trails the file name; MariaDB sends one even with
        // binlog_checksum=NONE. It is cut only where it is one.
        let raw = if ev.checksum().is_none() {
            let body = crate::source::checksum::strip_trailer(&header, ev.data());
            &body[8.min(body.len())..]
        } else {
            r.name_raw()
        };
        let name = String::from_utf8_lossy(raw).into_owned();
        if std::mem::take(&mut self.announce_file) {
            // Resumed by GTID: the server's first ROTATE names where
            // in its own binlog that is.
            log::info!(
                "streaming binlog from {}:{}, at its {name}:{}",
                self.target.host,
                self.target.port,
                r.position()
            );
        } else if self.txn.is_none() && *self.file != *name.as_str() {
            log::info!("binlog rotated to {name}");
        }
        // The server's first event is an artificial ROTATE to where we
        // asked to start: no movement, and a marker there would pull a
        // mid-transaction checkpoint back to the transaction's start.
        let moved = *self.file != *name.as_str() || self.next_pos != r.position();
        self.shared
            .board
            .progress
            .lock()
            .read_file
            .clone_from(&name);
        if *self.file != *name.as_str() {
            self.file_id = None;
        }
        self.file = name.into();
        self.next_pos = r.position();
        // While skipping back to a rewind's end, later changes are
        // in the queue already: no marker may go behind them.
        if self.txn.is_none() && moved && !self.xa.skipping() {
            let pos = self.here(self.next_pos, 0, None, self.state.clone());
            self.marker(pos);
        }
        Ok(())
    }
    /// MySQL's GTID event: a transaction begins.
    fn on_mysql_gtid(&mut self, g: &GtidEvent, start: u64) -> Result<(), SourceError> {
        let uuid = crate::gtid::uuid_text(&g.sid());
        let tag = g
            .tag()
            .map(|t| t.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let gtid: Arc<str> = if tag.is_empty() {
            format!("{uuid}:{}", g.gno()).into()
        } else {
            format!("{uuid}:{tag}:{}", g.gno()).into()
        };
        self.check_expected_gtid(&gtid)?;
        self.begin_txn(start, Some(gtid));
        if let Some(t) = self.txn.as_mut() {
            t.adds = Some(Gtid::Mysql {
                uuid,
                tag,
                gno: g.gno(),
            });
        }
        Ok(())
    }
    /// A statement: XA, BEGIN/COMMIT/ROLLBACK, DML logged as SQL, or DDL.
    fn on_query(&mut self, ev: &Event, q: &QueryEvent<'_>, at: At) -> Result<(), SourceError> {
        let header = ev.header();
        let (start, end) = (at.start, at.end);

        let sql = q.query();
        let trimmed = sql.trim();
        if let Some(x) = xa::parse(trimmed) {
            self.next_pos = end;
            return self.on_xa_statement(x, start, end);
        }
        if trimmed.eq_ignore_ascii_case("ROLLBACK") {
            // A transaction that also changed non-transactional
            // tables: their rows did happen, and are published.
            self.next_pos = end;
            return self.commit();
        }
        if trimmed.eq_ignore_ascii_case("BEGIN") {
            if self.txn.is_none() {
                self.begin_txn(start, None);
            }
            if let Some(t) = self.txn.as_mut() {
                t.explicit = true;
                t.thread = Some(q.thread_id());
            }
        } else if trimmed.eq_ignore_ascii_case("COMMIT") {
            self.next_pos = end;
            return self.commit();
        } else if crate::source::ddl::classify(trimmed, &q.schema()).is_none()
            && statement::classify(trimmed, &q.schema()).is_some()
        {
            self.next_pos = end;
            return self.on_statement_dml(trimmed, &q.schema(), start);
        } else if self.txn.as_ref().is_some_and(|t| t.explicit) {
            // A DDL inside an event group: CREATE TABLE ... SELECT,
            // whose rows follow in the same group.
            self.schemas.invalidate_catalog();
            self.follow_ddl(trimmed, &q.schema(), start, end)?;
            self.next_pos = end;
            return self.on_ddl(
                trimmed,
                &q.schema(),
                start,
                (header.timestamp(), header.server_id()),
                q.thread_id(),
            );
        } else {
            // DDL (or another statement outside a transaction):
            // column names from information_schema may now be stale.
            self.schemas.invalidate_catalog();
            self.follow_ddl(trimmed, &q.schema(), start, end)?;
            self.snapshot_follows_ddl(trimmed, &q.schema(), start);
            {
                log::debug!(
                    "statement at {}:{start}: {}",
                    self.file,
                    first_line(trimmed)
                );
                self.next_pos = end;
                self.on_ddl(
                    trimmed,
                    &q.schema(),
                    start,
                    (header.timestamp(), header.server_id()),
                    q.thread_id(),
                )?;
                return self.commit();
            }
        }
        self.step_over(at)
    }
    /// A table map: the schema the next rows events need, or the table
    /// filtered out (its rows then skipped undecoded).
    fn on_table_map(&mut self, t: &TableMapEvent<'_>, start: u64) -> Result<(), SourceError> {
        if self.table_map_start.is_none() {
            self.table_map_start = Some(start);
        }
        if self
            .cfg
            .source
            .filter
            .allows(&t.database_name(), &t.table_name())
        {
            self.filtered.remove(&t.table_id());
            let catalog = self.catalog.then_some(&self.target);
            self.schemas.on_table_map(t, catalog, (&self.file, start))?;
        } else {
            self.filtered.insert(t.table_id());
        }
        Ok(())
    }
}

/// Where an event stands: its start and end offsets in the file (inside a
/// compressed transaction, the transaction's).
#[derive(Clone, Copy)]
pub(super) struct At {
    pub(super) start: u64,
    pub(super) end: u64,
}
