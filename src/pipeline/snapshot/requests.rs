//! Snapshot requests (`binlog2kafka snapshot`): written to the commit-log
//! topic under keys of their own, looked for every second, checked table by
//! table before they are answered, and answered as taken, refused or failed.
//! Whoever may write to that topic writes them: they are untrusted input.

use super::*;

impl Snapshotter {
    /// A requested table that cannot be read after all (its condition no
    /// longer fits the table, or the server refused the query): the request
    /// is answered as failed and the table dropped from the plan; the
    /// pipeline goes on. An initial snapshot has no requester to answer,
    /// so there the error stops the pipeline as before.
    pub(super) fn fail_request(&mut self, t: &TablePlan, why: &str) -> Result<(), SourceError> {
        let Reason::Requested(id) = &t.reason else {
            return Err(SourceError::Query {
                what: format!("the snapshot of {}", t.name()),
                detail: why.to_string(),
            });
        };
        log::warn!(
            "snapshot request {id} failed for {}: {why}; the table is skipped ({} rows were sent), the pipeline goes on",
            t.name(),
            t.rows
        );
        let ack = Ack {
            id: id.clone(),
            owner: self.owner.clone(),
            taken_ms: crate::checkpoint::now_ms(),
            tables: Vec::new(),
            refused: vec![format!("{}: {why}", t.name())],
            failed: Some(format!("{}: {why}", t.name())),
        };
        if let Err(e) = self.answer(&ack) {
            log::warn!(
                "snapshot request {id}: cannot write its failure to {}: {e}",
                self.cfg.commit_topic
            );
        }
        self.finish_table_unread();
        Ok(())
    }

    /// Writes an answer to a request into the commit-log topic.
    pub(super) fn answer(&mut self, ack: &Ack) -> Result<(), crate::kafka::KafkaError> {
        self.kafka.produce(
            &self.cfg.commit_topic,
            0,
            &[OutRecord {
                key: Some(
                    ack_key(&self.cfg.pipeline_name, &ack.id)
                        .into_bytes()
                        .into(),
                ),
                value: Some(serde_json::to_vec(ack).expect("serializes").into()),
                timestamp_ms: ack.taken_ms as i64,
                headers: Vec::new(),
            }],
        )?;
        Ok(())
    }

    /// Looks for new snapshot requests in the commit-log topic.
    pub(super) fn poll_requests(&mut self) -> Result<(), crate::kafka::KafkaError> {
        let topic = self.cfg.commit_topic.clone();
        let prefix = format!("{}#snapshot#", self.cfg.pipeline_name);
        // Where the checkpoint says requests are still to be looked for (a
        // new pipeline: from its start); the scan may be shared with the
        // host's other pipelines.
        let scan = self.shared.requests.clone();
        let got = scan.poll(&mut self.kafka, &topic, self.plan.requests_from)?;
        let mut found = Vec::new();
        for (offset, key, value) in &got.requests {
            if !key.starts_with(prefix.as_bytes()) {
                continue;
            }
            match serde_json::from_slice::<Request>(value) {
                Ok(req) if !self.plan.taken.contains(&req.id) => found.push((req, *offset)),
                Ok(_) => {}
                Err(e) => log::warn!(
                    "ignoring an unreadable snapshot request at {topic} offset {offset}: {e}"
                ),
            }
        }
        let at = got.scanned_to;
        let mut scanned_to = at;
        for (req, offset) in found {
            if !self.take(req, offset + 1)? {
                // MySQL is away: this request and the ones after it are
                // looked at again on the next pass.
                scanned_to = offset;
                break;
            }
        }
        // The scan position itself goes into the checkpoint now and then, so a
        // restart does not read the whole topic again.
        if self.plan.requests_from < scanned_to {
            let mut next = self.plan.clone();
            next.requests_from = scanned_to;
            if self.plan_sent_at.elapsed() >= Duration::from_secs(60)
                || self.requests_sent_from == 0
            {
                self.plan_sent_at = Instant::now();
                self.requests_sent_from = scanned_to;
                self.install(next);
            } else {
                self.plan.requests_from = scanned_to;
            }
        }
        Ok(())
    }

    /// Adds a request's tables to the plan and says so in the commit log;
    /// false when MySQL cannot be asked now (the request waits for the
    /// next pass). Each table is checked before the answer goes out, so
    /// a requester hears at once of a table that does not exist or a
    /// condition that does not fit it.
    pub(super) fn take(
        &mut self,
        req: Request,
        next_offset: i64,
    ) -> Result<bool, crate::kafka::KafkaError> {
        let mut next = self.plan.clone();
        let mut tables = Vec::new();
        let mut refused = Vec::new();
        for name in &req.tables {
            match self.check_requested(name, req.condition.as_deref()) {
                Ok(Ok((db, t))) => {
                    tables.push(name.clone());
                    next.tables.push(TablePlan {
                        condition: req.condition.clone(),
                        ..TablePlan::new(db, t, Reason::Requested(req.id.clone()))
                    });
                }
                Ok(Err(why)) => refused.push(format!("{name}: {why}")),
                Err(e) => {
                    log::warn!(
                        "snapshot request {}: cannot check {name} on MySQL now ({e}); trying again",
                        req.id
                    );
                    self.conn = None;
                    return Ok(false);
                }
            }
        }
        next.take_request(&req.id, next_offset);
        let said = format!(
            "snapshot request {} {}{}{}",
            req.id,
            if tables.is_empty() {
                "refused: nothing to read".to_string()
            } else {
                format!("taken: {}", tables.join(", "))
            },
            req.condition
                .as_deref()
                .map(|c| format!(" where {c}"))
                .unwrap_or_default(),
            if refused.is_empty() {
                String::new()
            } else {
                format!("; refused {}", refused.join("; "))
            }
        );
        if refused.is_empty() {
            log::info!("{said}");
        } else {
            log::warn!("{said}");
        }
        self.install(next);
        if !self.plan.taken.contains(&req.id) {
            return Ok(true);
        }
        let ack = Ack {
            id: req.id.clone(),
            owner: self.owner.clone(),
            taken_ms: crate::checkpoint::now_ms(),
            tables,
            refused,
            failed: None,
        };
        self.answer(&ack)?;
        Ok(true)
    }

    /// Whether a requested table can be read: its name, the filters, that
    /// it exists, and that the condition parses, names only its columns and
    /// is accepted by the server. `Err`: MySQL could not be asked.
    pub(super) fn check_requested(
        &mut self,
        name: &str,
        condition: Option<&str>,
    ) -> Result<Result<(String, String), String>, SourceError> {
        let Some((db, t)) = name.split_once('.') else {
            return Ok(Err("not database.table".into()));
        };
        if !self.cfg.source.filter.allows(db, t) {
            return Ok(Err("not published (filter.include / filter.exclude)".into()));
        }
        let cfg = self.target();
        let Some(cat) = from_catalog(self.conn()?, &cfg, db, t)? else {
            return Ok(Err("no such table on the server".into()));
        };
        if let Some(text) = condition {
            let (sql, params) = match render_condition(text, &cat.schema) {
                Ok(r) => r,
                Err(why) => return Ok(Err(why)),
            };
            let q = format!(
                "SELECT 1 FROM `{}`.`{}` WHERE {sql} LIMIT 0",
                db.replace('`', "``"),
                t.replace('`', "``")
            );
            let tried: Result<Vec<mysql::Row>, _> = self.conn()?.exec(&q, params);
            match tried {
                Ok(_) => {}
                Err(mysql::Error::MySqlError(me)) => {
                    return Ok(Err(format!(
                        "--where refused by the server: {}",
                        me.message
                    )))
                }
                Err(e) => return Err(classify(&cfg, "checking a --where condition", e)),
            }
        }
        Ok(Ok((db.to_string(), t.to_string())))
    }
}

/// The commit-log key of a snapshot request for `pipeline`.
pub fn request_key(pipeline: &str, id: &str) -> String {
    format!("{pipeline}#snapshot#{id}")
}

/// The commit-log key of the daemon's answer to request `id`.
pub fn ack_key(pipeline: &str, id: &str) -> String {
    format!("{pipeline}#snapshot-ack#{id}")
}

/// A snapshot request, as `binlog2kafka snapshot` writes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub id: String,
    /// `database.table` names.
    pub tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub requested_ms: u64,
}

/// The daemon's answer to a request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ack {
    pub id: String,
    pub owner: String,
    pub taken_ms: u64,
    /// Tables it will read (allowed by the filters and existing).
    pub tables: Vec<String>,
    /// Tables it will not, and why.
    #[serde(default)]
    pub refused: Vec<String>,
    /// Set on a second answer when a table it took could not be read
    /// after all (the server refused the query): why, and that the pipeline
    /// went on without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Snapshot requests in `topic` from offset `from` on that no daemon has
/// answered yet (for `check`): written while the pipeline was down, or
/// not yet seen by it.
pub fn pending_requests(
    client: &mut Client,
    topic: &str,
    pipeline: &str,
    from: i64,
) -> Result<Vec<Request>, crate::kafka::KafkaError> {
    let (req_prefix, ack_prefix) = (request_key(pipeline, ""), ack_key(pipeline, ""));
    let mut asked: Vec<Request> = Vec::new();
    let mut answered = std::collections::HashSet::new();
    client.scan(topic, from, |r| {
        let (Some(k), Some(v)) = (r.key.as_deref(), r.value.as_deref()) else {
            return;
        };
        if let Some(id) = k.strip_prefix(ack_prefix.as_bytes()) {
            answered.insert(id.to_vec());
        } else if k.starts_with(req_prefix.as_bytes()) {
            if let Ok(req) = serde_json::from_slice::<Request>(v) {
                asked.push(req);
            }
        }
    })?;
    asked.retain(|r| !answered.contains(r.id.as_bytes()));
    Ok(asked)
}
