//! Encoding and routing: each change becomes records (the format's
//! encoder), bound for a topic and partition, in the batch of that partition.

use super::*;

impl Producer {
    /// `bytes` as a `Bytes` cut from the arena: records share a few large
    /// buffers instead of owning one allocation each, and cloning one for a
    /// produce request is a reference count, not a copy. (The profile of an
    /// end-to-end run had a sixth of the daemon's time in malloc, free and
    /// the shared-buffer conversion of per-record `Vec`s.)
    pub(super) fn keep(&mut self, bytes: &[u8]) -> Bytes {
        if self.arena.capacity() < bytes.len() {
            self.arena.reserve(ARENA_CHUNK.max(bytes.len()));
        }
        self.arena.extend_from_slice(bytes);
        self.arena.split().freeze()
    }

    /// Adds one record to a topic partition's batch.
    pub(super) fn push(
        &mut self,
        topic: usize,
        partition: usize,
        record: OutRecord,
        origin: Origin,
    ) {
        self.buffered_bytes += record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len());
        let b = &mut self.topics[topic].batches[partition];
        b.records.push(record);
        b.origins.push(origin);
    }

    /// Encodes one change into its partition's batch (with its transaction
    /// markers and tombstone, when configured). A change too large to send
    /// stops the pipeline, after everything before it was sent, so the
    /// checkpoint ends right before it.
    pub(super) fn encode(&mut self, r: &RowChange, now: i64) -> Result<(), PipelineError> {
        if self.cfg.format == Format::Debezium && r.kind == RowKind::Update && key_changed(r) {
            return self.encode_key_change(r, now);
        }
        self.encode_one(r, now, Vec::new())
    }

    /// An update that changes the primary key, as the Debezium connector
    /// writes it: a delete under the old key (and its tombstone, when
    /// enabled) with header `__debezium.newkey`, then a create under the
    /// new key with `__debezium.oldkey`. A compacted topic or an upsert
    /// sink keyed by the primary key then keeps no row under the old key.
    pub(super) fn encode_key_change(
        &mut self,
        r: &RowChange,
        now: i64,
    ) -> Result<(), PipelineError> {
        let part = |kind, before: Option<RowImage>, after: Option<RowImage>, commit| RowChange {
            seq: r.seq,
            kind,
            table: r.table.clone(),
            before,
            after,
            ts: r.ts,
            xid: r.xid,
            xoffset: r.xoffset,
            commit,
            event_file: r.event_file.clone(),
            event_pos: r.event_pos,
            event_row: r.event_row,
            thread: r.thread,
            server_id: r.server_id,
            checkpoint: r.checkpoint.clone(),
            snapshot: None,
        };
        let delete = part(RowKind::Delete, r.before.clone(), None, false);
        let create = part(RowKind::Insert, None, r.after.clone(), r.commit);
        let key = |c: &RowChange| {
            let mut k = Vec::with_capacity(32);
            debezium::write_key_json(&mut k, c, &self.cfg.style);
            Bytes::from(k)
        };
        let (old_key, new_key) = (key(&delete), key(&create));
        self.encode_one(&delete, now, vec![("__debezium.newkey", new_key)])?;
        self.encode_one(&create, now, vec![("__debezium.oldkey", old_key)])
    }

    pub(super) fn encode_one(
        &mut self,
        r: &RowChange,
        now: i64,
        headers: Vec<(&'static str, Bytes)>,
    ) -> Result<(), PipelineError> {
        let style = &self.cfg.style.clone();
        let topic = match self.fixed_topic {
            Some(i) => i,
            None if self.templated => self.table_topic(&r.table)?,
            None => {
                let name = self.cfg.topic.clone();
                let i = self.topic(&name, self.cfg.topic_partitions)?;
                self.fixed_topic = Some(i);
                i
            }
        };
        // Snapshot rows belong to no transaction.
        let txn_order = if self.cfg.transaction_markers && r.snapshot.is_none() {
            Some(self.begin_row(r, now)?)
        } else {
            None
        };
        // Scratch buffers reused for every row; the record's bytes then go
        // into the arena (see `keep`).
        let (mut maxwell_key, mut value, mut k) = std::mem::take(&mut self.scratch);
        maxwell_key.clear();
        value.clear();
        k.clear();
        // The Maxwell key (database, table, primary key) also picks the
        // partition under partition_by=primary_key, whatever the key format;
        // it is written only where it is used.
        let by_key = matches!(self.cfg.partition_by, PartitionBy::PrimaryKey)
            && !r.table.primary_key.is_empty();
        if by_key || self.cfg.key_format == KeyFormat::Maxwell {
            maxwell::write_key_json(&mut maxwell_key, r, style);
        }
        let ctx = Context {
            now_ms: now,
            txn: txn_order.as_ref().map(|(id, total, coll)| TxnOrder {
                id,
                total_order: *total,
                collection_order: *coll,
            }),
        };
        // Avro through the registry, else the configured JSON.
        let avro_key = match self.avro.is_some() {
            true => Some(self.avro_row(r, topic, &ctx, &mut k, &mut value)?),
            false => {
                self.encoder.row_value(&mut value, r, &ctx);
                None
            }
        };
        let n = self.topics[topic].batches.len();
        let by_table = || {
            let name = format!("{}.{}", r.table.database, r.table.table);
            murmur2::partition_for(name.as_bytes(), n)
        };
        let partition = match &self.cfg.partition_by {
            // No primary key: keep the table's rows together.
            PartitionBy::PrimaryKey if r.table.primary_key.is_empty() => by_table(),
            PartitionBy::PrimaryKey => murmur2::partition_for(&maxwell_key, n),
            PartitionBy::Table => by_table(),
            PartitionBy::Database => murmur2::partition_for(r.table.database.as_bytes(), n),
            PartitionBy::Column(c) => match maxwell::column_json(r, c, style) {
                Some(v) => murmur2::partition_for(&v, n),
                None => by_table(),
            },
            PartitionBy::Random => {
                self.random = self
                    .random
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1);
                murmur2::partition_for(&(self.random >> 33).to_le_bytes(), n)
            }
        } as usize;
        let key: Option<&[u8]> = match (avro_key, self.cfg.key_format) {
            (Some(has), _) => has.then_some(&k[..]),
            (None, KeyFormat::Maxwell) => Some(&maxwell_key),
            (None, KeyFormat::Debezium) => {
                if self.cfg.format == Format::Debezium {
                    debezium::write_key_json(&mut k, r, style);
                } else {
                    maxwell::write_pk_json(&mut k, r, style);
                }
                Some(&k)
            }
            (None, KeyFormat::None) => None,
        };
        // A row read again after a crash that its partition holds already.
        if r.snapshot.is_none() && self.there_already(topic, partition, &r.checkpoint)? {
            self.skipped_acks.push((r.seq, -1));
            self.scratch = (maxwell_key, value, k);
            return Ok(());
        }
        let key_len = key.map_or(0, |k| k.len());
        let size = key_len + value.len() + RECORD_OVERHEAD;
        if size > self.cfg.max_record_bytes {
            self.flush(true)?;
            return Err(PipelineError::RecordTooLarge {
                table: format!("{}.{}", r.table.database, r.table.table),
                position: format!(
                    "{}:{} (row {} of its transaction)",
                    r.event_file, r.event_pos, r.xoffset
                ),
                bytes: size,
                limit: format!("kafka.max_record_bytes ({})", self.cfg.max_record_bytes),
            });
        }
        let origin = || Origin {
            seq: r.seq,
            table: Some(r.table.clone()),
            file: r.event_file.clone(),
            pos: r.event_pos,
        };
        let key = key.map(|k| self.keep(k));
        let value_bytes = self.keep(&value);
        self.topics[topic].batches[partition].last_pos = Some(r.checkpoint.clone());
        self.scratch = (maxwell_key, value, k);
        let timestamp_ms = r.ts as i64 * 1000;
        self.push(
            topic,
            partition,
            OutRecord {
                key: key.clone(),
                value: Some(value_bytes),
                timestamp_ms,
                headers,
            },
            origin(),
        );
        if self.cfg.tombstones && r.kind == RowKind::Delete && key.is_some() {
            // Same key, no value: log compaction then drops the row.
            self.push(
                topic,
                partition,
                OutRecord {
                    key,
                    value: None,
                    timestamp_ms,
                    headers: Vec::new(),
                },
                origin(),
            );
        }
        if self.cfg.transaction_markers && r.commit && r.snapshot.is_none() {
            self.end_txn(r, now)?;
        }
        Ok(())
    }

    /// The row's Avro key (true when it has one) and value, through the
    /// registry ([`crate::pipeline::avro_out`]). A registry that cannot be
    /// reached is waited out (the rows wait, the checkpoint stays; the
    /// status page says so); a refusal stops before the row.
    fn avro_row(
        &mut self,
        r: &RowChange,
        topic: usize,
        ctx: &Context<'_>,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Result<bool, PipelineError> {
        let name = self.topics[topic].name.clone();
        let style = self.cfg.style;
        let stop = |cause: String| PipelineError::Avro {
            position: format!("{}:{}", r.event_file, r.event_pos),
            cause,
        };
        let mut attempt = 0u32;
        loop {
            key.clear();
            value.clear();
            let avro = self.avro.as_mut().expect("avro output configured");
            match avro.encode(r, &name, &style, ctx, key, value) {
                Ok(has_key) => {
                    if attempt > 0 {
                        log::info!("the schema registry answers again: rows flow");
                        self.shared.board.progress.lock().registry_down = None;
                    }
                    return Ok(has_key);
                }
                Err(crate::pipeline::avro_out::AvroOutError::Registry(e)) if e.is_retriable() => {
                    if attempt == 0 {
                        log::warn!("{e}; the rows wait (nothing is lost, the checkpoint stays) and the registry is asked again");
                        let mut p = self.shared.board.progress.lock();
                        p.registry_down = Some((Instant::now(), e.to_string()));
                        p.last_error = Some((crate::clock::now_secs(), e.to_string()));
                    }
                    if self.shared.stop.requested() {
                        return Err(stop(e.to_string()));
                    }
                    std::thread::sleep(
                        Duration::from_millis(100u64 << attempt.min(6)).min(Duration::from_secs(5)),
                    );
                    attempt += 1;
                }
                Err(e) => return Err(stop(e.to_string())),
            }
        }
    }

    /// Whether the change at `pos`, bound for `topic`/`partition`, is in
    /// that partition already ([`crate::pipeline::dedupe`]). An outage while its
    /// newest records are read is waited out like any other.
    pub(super) fn there_already(
        &mut self,
        topic: usize,
        partition: usize,
        pos: &Position,
    ) -> Result<bool, PipelineError> {
        // The common case, on every row once past a restart's window.
        if self
            .tails
            .as_ref()
            .is_none_or(|t| t.passed(topic, partition as i32))
        {
            return Ok(false);
        }
        self.settle()?;
        let Some(mut tails) = self.tails.take() else {
            return Ok(false);
        };
        let name = self.topics[topic].name.clone();
        let (mut attempt, mut stop_deadline) = (0u32, None);
        let result = loop {
            match tails.holds(&mut self.client, &name, topic, partition as i32, pos) {
                Ok(there) => break Ok(there),
                Err(e) if e.is_retriable() => {
                    let what = format!("cannot read what {name}/{partition} holds already");
                    if let Err(stop) = self.wait_out(&e, &what, 0, &mut attempt, &mut stop_deadline)
                    {
                        break Err(stop);
                    }
                }
                Err(err) => {
                    break Err(PipelineError::Kafka {
                        during: format!("reading what {name}/{partition} holds already"),
                        err,
                    })
                }
            }
        };
        self.tails = Some(tails);
        if result.is_ok() {
            self.back_from_outage();
        }
        result
    }

    /// Notes a row of the current transaction, writing its BEGIN marker
    /// first when it is the transaction's first row here. Returns the
    /// transaction id and the row's total and per-table order.
    pub(super) fn begin_row(
        &mut self,
        r: &RowChange,
        now: i64,
    ) -> Result<(String, u64, u64), PipelineError> {
        let id = r.txn_id();
        if self.txn.as_ref().is_none_or(|t| t.id != id) {
            let mut v = Vec::with_capacity(96);
            debezium::write_txn_marker(&mut v, &id, now, None);
            self.push_marker(r, &id, v)?;
            self.txn = Some(OpenTxn {
                id: id.clone(),
                tables: Vec::new(),
            });
        }
        let txn = self.txn.as_mut().expect("open transaction");
        let name = format!("{}.{}", r.table.database, r.table.table);
        let count = match txn.tables.iter_mut().find(|(t, _)| *t == name) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                txn.tables.push((name, 1));
                1
            }
        };
        // xoffset counts the transaction's rows from its start, so the
        // order survives a resume in the middle of it.
        Ok((id, r.xoffset + 1, count))
    }

    /// Writes the END marker of the transaction `r` commits.
    pub(super) fn end_txn(&mut self, r: &RowChange, now: i64) -> Result<(), PipelineError> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let mut v = Vec::with_capacity(160);
        debezium::write_txn_marker(&mut v, &txn.id, now, Some((r.xoffset + 1, &txn.tables)));
        self.push_marker(r, &txn.id, v)
    }

    /// A transaction marker record, keyed `{"id":...}` like Debezium's,
    /// released with the row it accompanies.
    pub(super) fn push_marker(
        &mut self,
        r: &RowChange,
        id: &str,
        value: Vec<u8>,
    ) -> Result<(), PipelineError> {
        let name = self.cfg.transaction_topic.clone();
        let mut key = Vec::with_capacity(id.len() + 10);
        key.extend_from_slice(b"{\"id\":");
        crate::format::json::write_str(&mut key, id);
        key.push(b'}');
        let origin = Origin {
            seq: r.seq,
            table: None,
            file: r.event_file.clone(),
            pos: r.event_pos,
        };
        self.push_side(&name, key, value, r.ts, origin)
    }

    /// Adds a record to a one-partition side topic (DDL, transaction
    /// markers), created on first use: one partition keeps their order.
    pub(super) fn push_side(
        &mut self,
        name: &str,
        key: Vec<u8>,
        value: Vec<u8>,
        ts: u32,
        origin: Origin,
    ) -> Result<(), PipelineError> {
        let topic = self.topic(name, 1)?;
        self.push(
            topic,
            0,
            OutRecord {
                key: Some(Bytes::from(key)),
                value: Some(Bytes::from(value)),
                timestamp_ms: ts as i64 * 1000,
                headers: Vec::new(),
            },
            origin,
        );
        Ok(())
    }

    /// Encodes a DDL statement into `kafka.ddl_topic` (one partition, so
    /// statements keep their order).
    pub(super) fn encode_ddl(&mut self, d: &DdlChange, now: i64) -> Result<(), PipelineError> {
        let Some(name) = self.cfg.ddl_topic.clone() else {
            return Ok(());
        };
        let (mut key, mut value) = (Vec::new(), Vec::with_capacity(256));
        self.encoder.ddl_key(&mut key, d);
        self.encoder.ddl_value(&mut value, d, now);
        let origin = Origin {
            seq: d.seq,
            table: None,
            file: d.event_file.clone(),
            pos: d.event_pos,
        };
        self.push_side(&name, key, value, d.ts, origin)
    }
}
