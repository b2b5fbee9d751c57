//! The reader's side of a snapshot: taking the snapshot thread's chunks
//! and plans in stream order, and emitting the surviving rows.

use super::*;

impl Reader {
    /// Whether a snapshot is under way (or being asked for).
    pub(super) fn snapshot_busy(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| !p.is_idle())
            || self
                .seam
                .as_ref()
                .is_some_and(|s| s.watching() || !s.waiting.is_empty())
            || self.stream_wait.is_some()
            || self.plan_wait.is_some()
    }

    /// At a transaction boundary: takes the snapshot thread's messages in
    /// order, and emits the chunks whose view the stream has reached. A
    /// chunk that waits holds back the messages after it, so plans are
    /// taken in the order they were made.
    pub(super) fn seam_step(&mut self) -> Result<Option<Flow>, SourceError> {
        loop {
            if let Some((h, ..)) = &self.plan_wait {
                if !h.reached(&self.file, self.next_pos) {
                    break;
                }
                let (_, plan, reply) = self.plan_wait.take().expect("checked");
                self.install_plan(plan);
                let _ = reply.send(());
                continue;
            }
            if let Some(w) = &self.stream_wait {
                if !w.horizon.reached(&self.file, self.next_pos) {
                    break;
                }
                let w = self.stream_wait.take().expect("checked");
                self.emit_stream(w)?;
                continue;
            }
            let Some(seam) = self.seam.as_mut() else {
                break;
            };
            if let Some(c) = seam.waiting.front() {
                if !c.horizon.reached(&self.file, self.next_pos) {
                    break;
                }
                let c = seam.waiting.pop_front().expect("checked");
                self.emit_chunk(c)?;
                continue;
            }
            let msg = match seam.rx.try_recv() {
                Ok(m) => m,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    self.seam = None;
                    break;
                }
            };
            if msg.epoch() != self.shared.reading.snapshot_epoch() {
                // Read on a server the reader left: dropped (its reply
                // channel too, which tells the snapshot thread).
                continue;
            }
            match msg {
                ToReader::Watch {
                    schema,
                    key_columns,
                    first,
                    reply,
                    ..
                } => {
                    seam.watch(schema.database.clone(), schema.table.clone(), key_columns);
                    let _ = reply.send(self.floor());
                    if first && self.cfg.bootstrap_markers {
                        let now = (crate::checkpoint::now_ms() / 1000) as u32;
                        let start =
                            self.snapshot_change(&schema, None, SnapshotPart::Start, 0, now);
                        self.send(vec![Change::Row(start)])?;
                    }
                }
                ToReader::Chunk(c) => seam.waiting.push_back(c),
                ToReader::Plan {
                    plan,
                    after: Some(h),
                    reply,
                    ..
                } => self.plan_wait = Some((h, plan, reply)),
                ToReader::Plan { plan, reply, .. } => {
                    self.install_plan(plan);
                    let _ = reply.send(());
                }
                ToReader::Pause { reply, .. } => {
                    // Stay at this boundary until the view is open and
                    // has seen everything before it (its point is then at
                    // or after here).
                    let _ = reply.send(self.floor());
                    while let Some(seam) = self.seam.as_mut() {
                        match seam.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                            Ok(ToReader::Stream(w)) => {
                                self.stream_wait = Some(w);
                                break;
                            }
                            Ok(_) => break,
                            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                                if self.shared.stop.requested() {
                                    return Ok(Some(Flow::Stopped));
                                }
                            }
                            Err(_) => self.seam = None,
                        }
                    }
                }
                ToReader::Resume { .. } => {}
                ToReader::Stream(w) => self.stream_wait = Some(w),
            }
        }
        if self.live && self.snapshot_busy() != self.quick_heartbeat {
            return Ok(Some(Flow::Reconnect));
        }
        Ok(None)
    }

    /// Where the stream is: every transaction before here may be out
    /// already, which the snapshot's views from now on must have seen.
    fn floor(&self) -> Floor {
        Floor {
            file: self.file.to_string(),
            pos: self.next_pos,
            gtids: self.state.clone(),
        }
    }

    pub(super) fn install_plan(&mut self, plan: Arc<Plan>) {
        if let Some(seam) = self.seam.as_mut() {
            seam.keep_only(&plan);
        }
        self.shared.reading.set_snapshot_plan(Some(plan.clone()));
        self.plan = Some(plan);
    }

    /// A snapshot row (or, for Maxwell, a bootstrap-start/complete marker
    /// with no image) at the current boundary.
    pub(super) fn snapshot_change(
        &mut self,
        schema: &Arc<TableSchema>,
        image: Option<RowImage>,
        part: SnapshotPart,
        xoffset: u64,
        now: u32,
    ) -> RowChange {
        let seq = self.next_seq();
        RowChange {
            seq,
            kind: RowKind::Insert,
            table: schema.clone(),
            before: None,
            after: image,
            ts: now,
            xid: None,
            xoffset,
            commit: false,
            event_file: self.file.clone(),
            event_pos: self.next_pos,
            event_row: 0,
            thread: None,
            server_id: self.file_server.unwrap_or(0),
            checkpoint: self.here(self.next_pos, 0, None, self.state.clone()),
            snapshot: Some(part),
        }
    }

    /// Debezium's mark of a table's row that is `first` and/or `last` of
    /// it.
    pub(super) fn mark(table: &TablePlan, first: bool, last: bool) -> SnapshotMark {
        match (table.reason.incremental(), first, last) {
            (true, ..) => SnapshotMark::Incremental,
            (_, _, true) if table.last => SnapshotMark::Last,
            (_, _, true) => SnapshotMark::LastInTable,
            (_, true, _) if table.first => SnapshotMark::First,
            (_, true, _) => SnapshotMark::FirstInTable,
            _ => SnapshotMark::Middle,
        }
    }

    /// Hands on snapshot rows and counts them for the status page.
    pub(super) fn send_snapshot(
        &mut self,
        name: &str,
        rows: Vec<RowChange>,
        superseded: u64,
        done: bool,
    ) -> Result<(), SourceError> {
        let n = rows.iter().filter(|r| r.after.is_some()).count() as u64;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<Change> = rows.by_ref().take(1024).map(Change::Row).collect();
            self.send(batch)?;
        }
        self.shared.board.snapshot_sent(name, n, superseded, done);
        if done {
            self.log_table_done(name);
        }
        Ok(())
    }

    /// The last snapshot record (or a marker) carries the plan after it.
    pub(super) fn close_with(&mut self, out: &mut [RowChange], plan: Arc<Plan>) {
        self.install_plan(plan);
        match out.last_mut() {
            Some(last) => last.checkpoint.snapshot = self.plan.clone(),
            None => {
                let pos = self.here(self.next_pos, 0, None, self.state.clone());
                self.marker(pos);
            }
        }
    }

    /// Emits a chunk's surviving rows here, the last of them (or a marker)
    /// carrying the plan after the chunk.
    pub(super) fn emit_chunk(&mut self, mut c: Chunk) -> Result<(), SourceError> {
        let superseded = self.seam.as_mut().map_or(0, |s| s.survivors(&mut c)) as u64;
        let now = (crate::checkpoint::now_ms() / 1000) as u32;
        let maxwell = self.cfg.bootstrap_markers;
        let name = format!("{}.{}", c.schema.database, c.schema.table);
        // (Maxwell's bootstrap-start went out when the keys began to be
        // recorded.)
        let mut out: Vec<RowChange> = Vec::with_capacity(c.rows.len() + 2);
        let n = c.rows.len();
        let base = c.table.rows.saturating_sub(n as u64 + superseded);
        for (i, (image, _)) in std::mem::take(&mut c.rows).into_iter().enumerate() {
            let mark = Self::mark(
                &c.table,
                c.first_of_table && i == 0,
                c.last_of_table && i + 1 == n,
            );
            let ch = self.snapshot_change(
                &c.schema,
                Some(image),
                SnapshotPart::Row(mark),
                base + i as u64,
                now,
            );
            out.push(ch);
        }
        if c.last_of_table && maxwell {
            out.push(self.snapshot_change(&c.schema, None, SnapshotPart::Complete, 0, now));
        }
        self.close_with(&mut out, c.plan_after.clone());
        if c.last_of_table {
            if let Some(seam) = self.seam.as_mut() {
                seam.unwatch(&c.schema.database, &c.schema.table);
            }
        }
        self.send_snapshot(&name, out, superseded, c.last_of_table)
    }

    pub(super) fn log_table_done(&self, name: &str) {
        let p = self.shared.board.progress.lock();
        if let Some(s) = p.snapshots.iter().rev().find(|s| s.table == name) {
            let secs = s.started.elapsed().as_secs_f64();
            log::info!(
                "snapshot of {name} done: {} rows sent in {:.1} s ({:.0} rows/s){}",
                s.sent,
                secs,
                (s.sent - s.sent_at_start) as f64 / secs.max(0.001),
                if s.superseded > 0 {
                    format!(
                        "; {} copies left out because the stream carried a newer change of the row",
                        s.superseded
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    /// A keyless table's rows, emitted at exactly their view's point: the
    /// stream waits here until they are all out.
    pub(super) fn emit_stream(&mut self, w: Streaming) -> Result<(), SourceError> {
        let now = (crate::checkpoint::now_ms() / 1000) as u32;
        let maxwell = self.cfg.bootstrap_markers;
        let name = format!("{}.{}", w.schema.database, w.schema.table);
        let mut out: Vec<RowChange> = Vec::new();
        if maxwell {
            out.push(self.snapshot_change(&w.schema, None, SnapshotPart::Start, 0, now));
        }
        // Each row waits for the next, so the last one is known as last.
        let mut prev: Option<RowImage> = None;
        let mut i = 0u64;
        let done = loop {
            match w.rows.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(Streamed::Rows(v)) => {
                    for image in v {
                        if let Some(p) = prev.replace(image) {
                            let mark = Self::mark(&w.table, i == 0, false);
                            let ch = self.snapshot_change(
                                &w.schema,
                                Some(p),
                                SnapshotPart::Row(mark),
                                i,
                                now,
                            );
                            out.push(ch);
                            i += 1;
                        }
                    }
                    if out.len() >= 1024 {
                        let batch = std::mem::take(&mut out);
                        self.send_snapshot(&name, batch, 0, false)?;
                    }
                }
                Ok(Streamed::Done) => break true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
                    if !self.shared.stop.requested() => {}
                Err(_) => break false,
            }
        };
        if let Some(p) = prev {
            let mark = Self::mark(&w.table, i == 0, done);
            let ch = self.snapshot_change(&w.schema, Some(p), SnapshotPart::Row(mark), i, now);
            out.push(ch);
        }
        if done {
            if maxwell {
                out.push(self.snapshot_change(&w.schema, None, SnapshotPart::Complete, 0, now));
            }
            self.close_with(&mut out, w.plan_after.clone());
        } else if !self.shared.stop.requested() {
            log::warn!("snapshot of {name} was cut short; it is read again from its beginning");
        }
        self.send_snapshot(&name, out, 0, done)
    }
}
