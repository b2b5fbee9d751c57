//! Sending: batches out on each tick, up to five requests in flight with
//! the idempotent producer, answers accounted in order, retries with
//! back-off through outages, and the lease checked before every send.

use super::*;

impl Producer {
    /// Waits out a transient Kafka failure with back-off: the first one of
    /// an outage is logged and shown on the status page. While the pipeline
    /// is stopping it waits at most `pipeline.shutdown_timeout_ms`, then
    /// gives up with the changes still unsent (`unflushed` plus the batches).
    pub(super) fn wait_out(
        &mut self,
        e: &KafkaError,
        what: &str,
        unflushed: usize,
        attempt: &mut u32,
        stop_deadline: &mut Option<Instant>,
    ) -> Result<(), PipelineError> {
        self.note_outage(e, what);
        if self.shared.stop.requested() {
            let deadline =
                *stop_deadline.get_or_insert_with(|| Instant::now() + self.cfg.shutdown_timeout);
            if Instant::now() >= deadline {
                return Err(PipelineError::FlushTimeout {
                    unflushed: unflushed
                        + self
                            .topics
                            .iter()
                            .flat_map(|t| &t.batches)
                            .chain(self.in_flight.iter().map(|e| &e.batch))
                            .map(|b| b.records.len())
                            .sum::<usize>(),
                    waited: self.cfg.shutdown_timeout,
                });
            }
        }
        let wait = Duration::from_millis(100u64 << (*attempt).min(6)).min(Duration::from_secs(5));
        *attempt += 1;
        thread::sleep(wait);
        Ok(())
    }

    /// The first failure of an outage is logged and shown on the status page.
    pub(super) fn note_outage(&mut self, e: &KafkaError, what: &str) {
        if self.outage_since.is_none() {
            self.outage_since = Some(Instant::now());
            self.shared
                .board
                .set_down(true, Some(format!("{what}: {e}")));
            log::warn!("{what} ({e}); holding the changes and retrying with back-off");
        } else {
            log::debug!("Kafka still failing: {e}");
        }
    }

    /// Holds every send while the pipeline's lease may have run out (see
    /// [`Shared::lease_valid`]): the watcher renews it, or finds the
    /// pipeline taken over and stops it, and then nothing stale is sent.
    pub(super) fn wait_for_lease(&self) -> Result<(), PipelineError> {
        let mut logged = false;
        while !self.shared.lease.valid() {
            if self.shared.stop.requested() {
                return Err(PipelineError::LeaseLapsed);
            }
            if !logged {
                log::debug!(
                    "the pipeline's lease may have lapsed; holding sends until it is renewed"
                );
                logged = true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Ends an outage: logged once, cleared from the status page.
    pub(super) fn back_from_outage(&mut self) {
        if let Some(since) = self.outage_since.take() {
            self.shared.board.set_down(true, None);
            log::info!(
                "Kafka is back after {:.1}s; sending resumed",
                since.elapsed().as_secs_f64()
            );
        }
    }

    /// Sends every batch. With the idempotent producer, up to
    /// [`MAX_IN_FLIGHT`] produce requests are outstanding at once
    /// (pipelined: the broker keeps their order by sequence number), and
    /// their answers are read as room is needed or, with `wait`, before
    /// returning; without it, each answer is awaited. A failed send is
    /// retried until it succeeds, the pipeline is stopping past its timeout,
    /// or the error is one an operator must fix. Acknowledgements enter the
    /// commit log only once every batch of the flush is written, because one
    /// change can have records in several topics (its row, a tombstone, a
    /// transaction marker): none is released before all are written.
    pub(super) fn flush(&mut self, wait: bool) -> Result<(), PipelineError> {
        let max = if self.idem.is_some() {
            MAX_IN_FLIGHT
        } else {
            1
        };
        let mut sent_any = false;
        for t in 0..self.topics.len() {
            for p in 0..self.topics[t].batches.len() {
                if self.topics[t].batches[p].records.is_empty() {
                    continue;
                }
                // The next batch gets this one's room at once: grown record
                // by record, its vectors were copied a dozen times a batch.
                let room = self.topics[t].batches[p].records.len();
                let mut batch = std::mem::replace(
                    &mut self.topics[t].batches[p],
                    PartitionBatch {
                        records: Vec::with_capacity(room),
                        origins: Vec::with_capacity(room),
                        last_pos: None,
                    },
                );
                // One header per batch, on its last record: the newest row
                // change the partition will hold once it is written.
                if let (Some(pos), Some(last)) = (&batch.last_pos, batch.records.last_mut()) {
                    last.headers.push((
                        crate::pipeline::dedupe::HEADER,
                        crate::pipeline::dedupe::header(&self.cfg.pipeline_name, pos),
                    ));
                }
                // Sequence numbers are taken as the batch is sent: a resend
                // carries the same ones, and the broker drops what it has.
                let seq = self.topics[t].sequences[p];
                if self.idem.is_some() {
                    self.topics[t].sequences[p] =
                        seq.wrapping_add(batch.records.len() as i32).max(0);
                }
                while self.in_flight.len() >= max {
                    self.complete_oldest()?;
                }
                self.wait_for_lease()?;
                let idem = self.idem.map(|id| (id, seq));
                let name = &self.topics[t].name;
                // A request that could not be written is sent again, in
                // order, when its turn to be answered comes.
                let sent = Some(
                    self.client
                        .produce_send(name, p as i32, &batch.records, idem),
                );
                self.in_flight.push_back(InFlight {
                    topic: t,
                    partition: p as i32,
                    batch,
                    seq,
                    sent,
                    flush_ends: false,
                });
                sent_any = true;
            }
        }
        if let Some(last) = self.in_flight.back_mut().filter(|_| sent_any) {
            last.flush_ends = true;
        }
        // Rows found in Kafka already are there whole: released at once.
        if !self.skipped_acks.is_empty() {
            let acks = std::mem::take(&mut self.skipped_acks);
            self.shared.ledger.ack_batch(acks);
        }
        while self.in_flight.len() >= max {
            self.complete_oldest()?;
        }
        if wait {
            self.settle()?;
        }
        self.buffered_bytes = 0;
        Ok(())
    }

    /// Reads every answer outstanding.
    pub(super) fn settle(&mut self) -> Result<(), PipelineError> {
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// Reads the answer to the oldest batch in flight and accounts for it.
    /// On any failure every connection is dropped (no stale answer is read
    /// later) and that batch and every later one are sent again, in order,
    /// one at a time, with their sequence numbers: what the broker stored
    /// already it drops as a duplicate.
    pub(super) fn complete_oldest(&mut self) -> Result<(), PipelineError> {
        let Some(mut e) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let answer = match e.sent.take() {
            Some(Ok(sent)) => self.client.produce_wait(sent),
            Some(Err(unsent)) => Err(unsent),
            None => unreachable!("an answer is taken once"),
        };
        let base = match answer {
            Ok(base) => self.check_offset(e.topic, e.partition, base, e.batch.records.len())?,
            Err(err) => {
                if err.is_retriable() {
                    let what = format!(
                        "cannot send to Kafka ({}/{}, {} changes)",
                        self.topics[e.topic].name,
                        e.partition,
                        e.batch.records.len()
                    );
                    self.note_outage(&err, &what);
                }
                self.client.reset();
                let mut again: Vec<InFlight> = vec![e];
                again.extend(self.in_flight.drain(..));
                for mut r in again {
                    r.sent = None;
                    let base = self.send_with_retry(r.topic, r.partition, &r.batch, r.seq)?;
                    self.account(r, base);
                }
                return Ok(());
            }
        };
        self.back_from_outage();
        self.account(e, base);
        Ok(())
    }

    /// `base` for a batch of `n` records written to `topic`/`partition`,
    /// unless the broker hands out an offset it gave before (it lost data).
    pub(super) fn check_offset(
        &mut self,
        topic: usize,
        partition: i32,
        base: i64,
        n: usize,
    ) -> Result<i64, PipelineError> {
        let last = self.topics[topic].last_offsets[partition as usize];
        if base <= last {
            return Err(PipelineError::BrokerLostData {
                topic: self.topics[topic].name.clone(),
                partition,
                had: last,
                got: base,
                resume: Box::new(
                    self.shared
                        .ledger
                        .released()
                        .unwrap_or_else(|| self.start.clone()),
                ),
            });
        }
        self.topics[topic].last_offsets[partition as usize] = base + n as i64 - 1;
        Ok(base)
    }

    /// Notes an acknowledged batch (`base` -1: stored earlier, offsets
    /// unknown); at the last batch of a flush its acknowledgements go to the
    /// commit log, and its rows to the counters.
    pub(super) fn account(&mut self, e: InFlight, base: i64) {
        let acc = &mut self.acked;
        acc.acks.extend(
            e.batch
                .origins
                .iter()
                .enumerate()
                .map(|(i, o)| (o.seq, if base < 0 { -1 } else { base + i as i64 })),
        );
        for (r, o) in e.batch.records.iter().zip(&e.batch.origins) {
            if let (Some(t), Some(_)) = (&o.table, &r.value) {
                acc.rows += 1;
                acc.per_table
                    .entry(Arc::as_ptr(t) as usize)
                    .or_insert_with(|| (t.clone(), 0))
                    .1 += 1;
            }
        }
        acc.bytes += e
            .batch
            .records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64)
            .sum::<u64>();
        if !e.flush_ends {
            return;
        }
        let acc = std::mem::take(&mut self.acked);
        if !acc.acks.is_empty() {
            self.shared.ledger.ack_batch(acc.acks);
            let stats = &self.shared.board.stats;
            stats.rows_acked.fetch_add(acc.rows, Ordering::Relaxed);
            stats.bytes_acked.fetch_add(acc.bytes, Ordering::Relaxed);
            let mut progress = self.shared.board.progress.lock();
            for (t, n) in acc.per_table.into_values() {
                *progress
                    .tables
                    .entry(format!("{}.{}", t.database, t.table))
                    .or_default() += n;
            }
        }
    }

    /// Sends one batch again (its first answer was not read), until it is
    /// acknowledged; returns the offset of its first record, or -1 when the
    /// broker had it already (the earlier attempt was stored).
    pub(super) fn send_with_retry(
        &mut self,
        topic: usize,
        partition: i32,
        batch: &PartitionBatch,
        seq: i32,
    ) -> Result<i64, PipelineError> {
        let mut attempt = 0u32;
        let mut stop_deadline: Option<Instant> = None;
        let name = self.topics[topic].name.clone();
        loop {
            self.wait_for_lease()?;
            let idem = self.idem.map(|p| (p, seq));
            match self
                .client
                .produce_as(&name, partition, &batch.records, idem)
            {
                // A batch the broker stored before its answer was lost: it
                // is there once.
                Err(KafkaError::Broker { code: 46, .. }) if idem.is_some() => {
                    log::info!(
                        "{name}/{partition}: the broker had the batch already (its answer was lost); not stored twice"
                    );
                    self.back_from_outage();
                    return Ok(-1);
                }
                Ok(base) => {
                    let base = self.check_offset(topic, partition, base, batch.records.len())?;
                    self.back_from_outage();
                    return Ok(base);
                }
                Err(e) if e.is_fenced() => {
                    return Err(PipelineError::FencedByBroker {
                        id: self
                            .fencing
                            .as_ref()
                            .map(|t| t.id.clone())
                            .unwrap_or_default(),
                        during: format!("sending to {name}/{partition}"),
                    });
                }
                Err(KafkaError::NoTopic { topic }) => {
                    return Err(PipelineError::TopicVanished {
                        topic,
                        resume: Box::new(
                            self.shared
                                .ledger
                                .released()
                                .unwrap_or_else(|| self.start.clone()),
                        ),
                    });
                }
                Err(KafkaError::RecordTooLarge { topic, bytes }) => {
                    // Name the largest record's row.
                    let (i, _) = batch
                        .records
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, r)| r.value.as_ref().map_or(0, |v| v.len()))
                        .expect("non-empty batch");
                    let o = &batch.origins[i];
                    return Err(PipelineError::RecordTooLarge {
                        table: o.what(),
                        position: format!("{}:{}", o.file, o.pos),
                        bytes,
                        limit: format!("topic {topic} (max.message.bytes)"),
                    });
                }
                Err(e) if e.is_retriable() => {
                    let what = format!(
                        "cannot send to Kafka ({name}/{partition}, {} changes)",
                        batch.records.len()
                    );
                    self.wait_out(
                        &e,
                        &what,
                        batch.records.len(),
                        &mut attempt,
                        &mut stop_deadline,
                    )?;
                }
                Err(e) => {
                    return Err(PipelineError::Kafka {
                        during: format!("sending to {name}/{partition}"),
                        err: e,
                    })
                }
            }
        }
    }
}
