//! Transactions and their row changes: begin, rows, hand-on to the
//! producer through the waiting queue, markers and commit.

use super::*;

impl Reader {
    pub(super) fn begin_txn(&mut self, start: u64, gtid: Option<Arc<str>>) {
        self.txn = Some(Txn {
            start,
            gtid,
            xid: None,
            rows: 0,
            skip: std::mem::take(&mut self.skip_next),
            held: Vec::new(),
            explicit: false,
            thread: None,
            xa: None,
            state: self.state.clone(),
            adds: None,
        });
    }

    /// The GTID state after the current transaction commits.
    pub(super) fn state_after(&self) -> Option<Arc<GtidState>> {
        let mut s = self.state.clone()?;
        if let Some(g) = self.txn.as_ref().and_then(|t| t.adds.clone()) {
            apply_gtid(Arc::make_mut(&mut s), &g);
        }
        Some(s)
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn on_rows(
        &mut self,
        rows: &RowsEventData<'_>,
        start: u64,
        ts: u32,
        server_id: u32,
    ) -> Result<(), SourceError> {
        // Every rows event follows its table map, which the schema cache
        // recorded; a missing one means a stream that started mid-group.
        let table_id = rows.table_id();
        if self.filtered.contains(&table_id) {
            return Ok(());
        }
        let schema: Arc<TableSchema> = self.schemas.get(table_id).ok_or_else(|| {
            self.corrupt(format!(
                "rows event for table id {table_id} without its table map"
            ))
        })?;
        if self.txn.is_none() {
            let at = self.table_map_start.unwrap_or(start);
            self.begin_txn(at, None);
        }
        // A prepare group's rows are read only when its commit is known.
        let schema_version = self.schemas.follower().map_or(0, |f| f.versions);
        let publish_at = match self.txn.as_ref().and_then(|t| t.xa.as_ref()) {
            Some(x) if !x.publish => return Ok(()),
            Some(_) => self.xa.rewind.as_ref().map(|r| r.back_to.clone()),
            None => None,
        };
        let kind = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                RowKind::Insert
            }
            RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => {
                RowKind::Update
            }
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                RowKind::Delete
            }
            RowsEventData::PartialUpdateRowsEvent(_) => RowKind::Update,
        };
        let partial = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
        let images = match kind {
            RowKind::Insert => Images::After,
            RowKind::Delete => Images::Before,
            RowKind::Update if partial => Images::BothPartial,
            RowKind::Update => Images::Both,
        };
        let n = schema.columns.len();
        let before_cols: Vec<bool> = rows
            .columns_before_image()
            .map(|b| b.iter().by_vals().take(n).collect())
            .unwrap_or_default();
        let after_cols: Vec<bool> = rows
            .columns_after_image()
            .map(|b| b.iter().by_vals().take(n).collect())
            .unwrap_or_default();
        self.check_images(&schema, images, &before_cols, &after_cols, start)?;
        let split = split_rows(rows.rows_data(), &schema, images, &before_cols, &after_cols)
            .map_err(|e| self.corrupt(e))?;
        let mut decoded = 0u64;
        if let Some(t) = self.txn.as_mut() {
            // Room for the event's rows at once, not grown row by row
            // (up to the hand-on point of a large transaction).
            let room = (self.cfg.txn_buffer_rows + 1).saturating_sub(t.held.len());
            t.held.reserve(split.len().min(room));
        }
        for (event_row, (before, mut after)) in split.into_iter().enumerate() {
            decoded += 1;
            if partial {
                resolve_json_diffs(before.as_ref(), after.as_mut()).map_err(|e| self.corrupt(e))?;
            }
            if let Some(seam) = self.seam.as_mut().filter(|s| s.watching()) {
                let t = self.txn.as_ref().expect("transaction begun");
                seam.on_row(
                    &schema,
                    [before.as_ref(), after.as_ref()],
                    &self.file,
                    t.start,
                    &t.gtid,
                )
                .map_err(|detail| SourceError::Query {
                    what: "a snapshot".into(),
                    detail,
                })?;
            }
            let txn = self.txn.as_mut().expect("transaction begun");
            let idx = txn.rows;
            txn.rows += 1;
            if idx < txn.skip {
                continue;
            }
            // Rows of a rewound XA transaction release the position after
            // its commit: the queue holds later changes already.
            let checkpoint = match &publish_at {
                Some((file, pos)) => Position {
                    file: file.clone(),
                    pos: *pos,
                    rows: 0,
                    gtid: None,
                    state: self.state.clone(),
                    file_id: None,
                    snapshot: self.plan.clone(),
                    schema: schema_version,
                },
                None => Position {
                    file: self.file.clone(),
                    pos: txn.start,
                    rows: idx + 1,
                    gtid: txn.gtid.clone(),
                    state: txn.state.clone(),
                    file_id: self.file_id,
                    snapshot: self.plan.clone(),
                    schema: schema_version,
                },
            };
            // Built in place in the transaction's rows: a row change is a
            // few hundred bytes, and each move of it is a copy.
            self.seq += 1;
            let change = Change::Row(RowChange {
                seq: self.seq,
                kind,
                table: schema.clone(),
                before,
                after,
                ts,
                xid: None,
                xoffset: idx,
                commit: false,
                event_file: self.file.clone(),
                event_pos: start,
                event_row: event_row as u32,
                thread: txn.thread,
                server_id,
                checkpoint,
                snapshot: None,
            });
            let txn = self.txn.as_mut().expect("transaction begun");
            txn.held.push(change);
            if txn.held.len() > self.cfg.txn_buffer_rows {
                // A large transaction: hand on all but the last row now; they
                // go without xid, which is not known until the commit. The
                // next batch gets its whole room at once.
                let last = txn.held.pop().expect("non-empty");
                let mut next = Vec::with_capacity(self.cfg.txn_buffer_rows + 1);
                next.push(last);
                let batch = std::mem::replace(&mut txn.held, next);
                self.send(batch)?;
            }
        }
        self.shared
            .board
            .stats
            .rows_read
            .fetch_add(decoded, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A rows event whose before or after image lacks columns (written with
    /// binlog_row_image MINIMAL or NOBLOB) cannot give whole rows: the live
    /// stream stops before it; a replay of files warns once per table.
    pub(super) fn check_images(
        &mut self,
        schema: &TableSchema,
        images: Images,
        before: &[bool],
        after: &[bool],
        start: u64,
    ) -> Result<(), SourceError> {
        let missing = |bits: &[bool]| -> Option<String> {
            let names: Vec<&str> = bits
                .iter()
                .enumerate()
                .filter(|(_, b)| !**b)
                .filter_map(|(i, _)| schema.columns.get(i).map(|c| c.name.as_str()))
                .collect();
            (!names.is_empty()).then(|| names.join(", "))
        };
        let (image, gap) = match images {
            Images::After => ("after", missing(after)),
            Images::Before => ("before", missing(before)),
            Images::Both => match missing(before) {
                Some(m) => ("before", Some(m)),
                None => ("after", missing(after)),
            },
            Images::BothPartial => ("before", missing(before)),
        };
        let Some(missing) = gap else { return Ok(()) };
        let table = format!("{}.{}", schema.database, schema.table);
        if self.live {
            return Err(SourceError::RowImage {
                position: format!("{}:{start}", self.file),
                table,
                image,
                missing,
            });
        }
        if self.partial_images.insert(table.clone()) {
            log::warn!(
                "{table}: rows at {}:{start} have a partial {image} image (binlog_row_image MINIMAL or NOBLOB; missing {missing}); those columns are left out",
                self.file
            );
        }
        Ok(())
    }

    /// Pushes changes onto the waiting queue, then sends them to the
    /// producer.
    pub(super) fn send(&mut self, batch: Vec<Change>) -> Result<(), SourceError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.wait_for_room {
            // Bounded memory: wait while what was read and not yet released
            // exceeds pipeline.max_in_flight_bytes (one batch always goes,
            // so a huge row cannot wedge the pipeline).
            let sizes: Vec<u32> = batch.iter().map(Change::footprint).collect();
            let bytes: u64 = sizes.iter().map(|&b| b as u64).sum();
            self.shared.ledger.wait_for_room(
                bytes,
                self.cfg.max_in_flight_bytes,
                &self.shared.stop,
            );
            self.shared.ledger.push_batch(
                batch
                    .iter()
                    .zip(sizes)
                    .map(|(c, b)| (c.seq(), c.checkpoint(), b)),
            );
        } else {
            // A replay never waits for room, and nothing else reads the
            // bytes held: measuring each row's would be work for nothing.
            self.shared
                .ledger
                .push_batch(batch.iter().map(|c| (c.seq(), c.checkpoint(), 0)));
        }
        if self.pending.send(batch).is_err() {
            // The producer is gone: the pipeline is stopping.
            self.stopped = true;
        }
        Ok(())
    }

    pub(super) fn marker(&mut self, pos: Position) {
        let seq = self.next_seq();
        self.shared.ledger.push_marker(seq, pos);
    }

    /// Ends the current transaction: its held rows get the xid, the last one
    /// `commit: true`, and a marker releases the position after it.
    pub(super) fn commit(&mut self) -> Result<(), SourceError> {
        if let Some(mut txn) = self.txn.take() {
            for c in txn.held.iter_mut() {
                if let Change::Row(r) = c {
                    r.xid = txn.xid;
                }
            }
            if let Some(Change::Row(last)) = txn.held.last_mut() {
                last.commit = true;
            }
            self.send(std::mem::take(&mut txn.held))?;
            // A rewind re-reads transactions already counted: the state
            // stays as of where it returns to.
            if let (Some(g), Some(s), None) = (&txn.adds, self.state.as_mut(), &self.xa.rewind) {
                apply_gtid(Arc::make_mut(s), g);
            }
        }
        self.skip_next = 0;
        self.table_map_start = None;
        let pos = self.here(self.next_pos, 0, None, self.state.clone());
        self.marker(pos);
        Ok(())
    }
}
