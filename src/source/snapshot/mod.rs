//! The snapshot thread (`b2k-snapshot`): reads the rows that already exist,
//! table by table, in key-ordered chunks on a connection of its own, with no
//! lock on the server, while the reader keeps streaming. It hands each chunk
//! to the reader, which emits its surviving rows in stream order
//! ([`seam`] has the correctness argument).
//!
//! It also takes snapshot requests (`binlog2kafka snapshot`) from the
//! commit-log topic, where they are written under keys of their own
//! ([`request_key`]), and acknowledges each one it takes.
//!
//! Memory stays bounded: at most one chunk waits in the channel, one in
//! the reader, and one is being read; a chunk holds at most
//! `snapshot.chunk_rows` rows and about a quarter of
//! `pipeline.max_in_flight_bytes`, and the reader's in-flight limit holds
//! snapshot rows like any others.

pub mod condition;
pub mod encode;
pub mod plan;
pub mod seam;

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use crate::config::Config;
use crate::event::TableSchema;
use crate::kafka::{Client, OutRecord};
use crate::pipeline::Shared;

use plan::{KeyValue, Plan, Reason, TablePlan};
use seam::{key_of, Chunk, Horizon, Streamed, ToReader};

use super::schema::{from_catalog, CatalogTable};
use super::{classify, SourceError};

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
    let (earliest, latest) = client.offsets(topic, 0)?;
    let (req_prefix, ack_prefix) = (request_key(pipeline, ""), ack_key(pipeline, ""));
    let mut asked: Vec<Request> = Vec::new();
    let mut answered = std::collections::HashSet::new();
    let mut at = from.max(earliest);
    while at < latest {
        let recs = client.fetch(topic, 0, at, 1 << 20)?;
        let Some(last) = recs.last() else { break };
        at = last.offset + 1;
        for r in &recs {
            let (Some(k), Some(v)) = (r.key.as_deref(), r.value.as_deref()) else {
                continue;
            };
            if let Some(id) = k.strip_prefix(ack_prefix.as_bytes()) {
                answered.insert(id.to_vec());
            } else if k.starts_with(req_prefix.as_bytes()) {
                if let Ok(req) = serde_json::from_slice::<Request>(v) {
                    asked.push(req);
                }
            }
        }
    }
    asked.retain(|r| !answered.contains(r.id.as_bytes()));
    Ok(asked)
}

/// Starts the snapshot thread with the plan the pipeline resumed with.
pub fn spawn(
    cfg: Config,
    shared: Arc<Shared>,
    to_reader: Sender<ToReader>,
    plan: Plan,
    kafka: Client,
    owner: String,
) -> JoinHandle<Result<(), SourceError>> {
    thread::Builder::new()
        .name("b2k-snapshot".into())
        .spawn(move || {
            let mut s = Snapshotter {
                cfg,
                shared: shared.clone(),
                to_reader,
                plan,
                kafka,
                owner,
                conn: None,
                epoch: shared.snapshot_epoch(),
                watching: None,
                table: None,
                row_bytes: 0,
                polled_at: None,
                plan_sent_at: Instant::now(),
                requests_sent_from: 0,
            };
            s.requests_sent_from = s.plan.requests_from;
            match s.run() {
                Err(e) if !shared.stopping() => {
                    // The pipeline stops with this as its one error line.
                    shared.fail(e);
                    Err(SourceError::Query {
                        what: "the snapshot".into(),
                        detail: "stopped the pipeline".into(),
                    })
                }
                r => r,
            }
        })
        .expect("spawn snapshot thread")
}

struct Snapshotter {
    cfg: Config,
    shared: Arc<Shared>,
    to_reader: Sender<ToReader>,
    /// The plan as of the last chunk handed to the reader.
    plan: Plan,
    kafka: Client,
    owner: String,
    conn: Option<Conn>,
    /// The reader's epoch this thread works in (changed by a failover).
    epoch: u64,
    /// The table the reader records keys for.
    watching: Option<String>,
    /// What is known of the table being read.
    table: Option<Reading>,
    /// Bytes per row seen in the last chunk (sizes the next one).
    row_bytes: usize,
    polled_at: Option<Instant>,
    plan_sent_at: Instant,
    requests_sent_from: i64,
}

struct Reading {
    name: String,
    schema: Arc<TableSchema>,
    key: Option<Vec<usize>>,
    select: String,
    order: String,
    /// The `--where` condition as rendered by [`condition`], with the
    /// bytes of its strings as parameters.
    condition: Option<(String, Vec<Value>)>,
}

impl Snapshotter {
    fn run(&mut self) -> Result<(), SourceError> {
        while !self.shared.stopping() {
            if self.shared.snapshot_epoch() != self.epoch {
                // The reader moved to another server, or a TRUNCATE or
                // RENAME changed the plan (the reader logged which): start
                // again from the plan as the stream last emitted it.
                self.epoch = self.shared.snapshot_epoch();
                if let Some(p) = self.shared.snapshot_plan() {
                    self.plan = (*p).clone();
                }
                self.conn = None;
                self.watching = None;
                self.table = None;
                if !self.plan.is_idle() {
                    log::info!(
                        "snapshot: carrying on from the plan the stream holds ({} tables to read, the first from {})",
                        self.plan.tables.len(),
                        if self.plan.tables[0].after.is_some() { "after its last chunk sent" } else { "its start" }
                    );
                }
            }
            if self
                .polled_at
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
            {
                self.polled_at = Some(Instant::now());
                if let Err(e) = self.poll_requests() {
                    log::warn!(
                        "snapshot: cannot read snapshot requests from {}: {e}; trying again",
                        self.cfg.commit_topic
                    );
                }
            }
            if self.plan.is_idle() {
                self.sleep(Duration::from_millis(100));
                continue;
            }
            match self.step() {
                Ok(()) => {}
                Err(e) if e.is_retriable() => {
                    log::warn!("snapshot: {e}; reconnecting");
                    self.conn = None;
                    self.table = None;
                    self.sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.shared.stopping() {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `msg` to the reader; false when the pipeline stops first.
    fn send(&self, mut msg: ToReader) -> bool {
        loop {
            match self.to_reader.send_timeout(msg, Duration::from_millis(100)) {
                Ok(()) => return true,
                Err(crossbeam_channel::SendTimeoutError::Timeout(m)) => {
                    if self.shared.stopping() || self.shared.snapshot_epoch() != self.epoch {
                        return false;
                    }
                    msg = m;
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the reader's reply; false when the pipeline stops first.
    fn wait(&self, reply: &crossbeam_channel::Receiver<()>) -> bool {
        loop {
            match reply.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.shared.stopping() || self.shared.snapshot_epoch() != self.epoch {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    fn conn(&mut self) -> Result<&mut Conn, SourceError> {
        if self.conn.is_none() {
            let cfg = match self.shared.source_cfg.lock().clone() {
                Some((h, p)) => self.cfg.with_source(&h, p),
                None => self.cfg.clone(),
            };
            let mut c = super::connect(&cfg)?;
            // Raw bytes out and in (key parameters are compared in the
            // column's own collation), TIMESTAMPs in UTC, a read view per
            // transaction.
            for q in [
                "SET NAMES binary",
                "SET SESSION time_zone = '+00:00'",
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            ] {
                c.query_drop(q).map_err(|e| classify(&cfg, q, e))?;
            }
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// One step of the first table of the plan: open it, or read a chunk.
    fn step(&mut self) -> Result<(), SourceError> {
        let current = self.plan.tables[0].clone();
        let name = current.name();
        if self.table.as_ref().is_none_or(|t| t.name != name) {
            let cfg = self.cfg.clone();
            let catalog = from_catalog(self.conn()?, &cfg, &current.database, &current.table)?;
            let Some(cat) = catalog else {
                return self.table_gone(&name);
            };
            if let Err(why) = self.open_table(&current, cat, false) {
                self.fail_request(&current, &why)?;
                return Ok(());
            }
        }
        // A table altered since it was opened: read its new definition, and
        // go on after the same key.
        if self.table.as_ref().is_some_and(|t| t.key.is_some()) && self.altered(&current)? {
            log::info!(
                "snapshot of {name}: the table's columns changed while it was read; the chunks from here on follow its new definition"
            );
            let cfg = self.cfg.clone();
            match from_catalog(self.conn()?, &cfg, &current.database, &current.table)? {
                Some(cat) => {
                    if let Err(why) = self.open_table(&current, cat, true) {
                        self.fail_request(&current, &why)?;
                        return Ok(());
                    }
                }
                None => return self.table_gone(&name),
            }
        }
        let keyed = self.table.as_ref().is_some_and(|t| t.key.is_some());
        if keyed && self.watching.as_deref() != Some(&name) {
            let t = self.table.as_ref().expect("open");
            let key_columns = t
                .key
                .as_ref()
                .expect("keyed")
                .iter()
                .map(|&i| t.schema.columns[i].name.clone())
                .collect();
            let (reply, rx) = crossbeam_channel::bounded(1);
            let msg = ToReader::Watch {
                epoch: self.epoch,
                schema: t.schema.clone(),
                key_columns,
                first: !current.started,
                reply,
            };
            if !self.send(msg) || !self.wait(&rx) {
                return Ok(());
            }
            self.watching = Some(name.clone());
        }
        if keyed {
            self.chunk(&current)
        } else {
            self.whole(&current)
        }
    }

    /// Whether the open table's columns are no longer what it was opened
    /// with.
    fn altered(&mut self, t: &TablePlan) -> Result<bool, SourceError> {
        let cfg = self.cfg.clone();
        let now: Option<Vec<u8>> = self
            .conn()?
            .exec_first(
                "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR 0x01) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.database, &t.table),
            )
            .map_err(|e| classify(&cfg, "reading information_schema.COLUMNS", e))?
            .flatten();
        let known = self.table.as_ref().map(|r| {
            r.schema
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join("\u{1}")
        });
        Ok(now.map(|n| String::from_utf8_lossy(&n).into_owned()) != known)
    }

    /// Opens `t` for reading; refuses (with the reason) a `--where` that
    /// does not fit the table's columns.
    fn open_table(
        &mut self,
        t: &TablePlan,
        cat: CatalogTable,
        reopened: bool,
    ) -> Result<(), String> {
        let name = t.name();
        let condition = match &t.condition {
            None => None,
            Some(text) => Some(render_condition(text, &cat.schema)?),
        };
        let quote = |s: &str| format!("`{}`", s.replace('`', "``"));
        let schema = Arc::new(cat.schema);
        let select = schema
            .columns
            .iter()
            .map(|c| {
                if matches!(
                    super::schema::real_type(c),
                    mysql::consts::ColumnType::MYSQL_TYPE_ENUM
                        | mysql::consts::ColumnType::MYSQL_TYPE_SET
                ) {
                    format!("({}+0)", quote(&c.name))
                } else {
                    quote(&c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let from = format!("{}.{}", quote(&t.database), quote(&t.table));
        let (key, order, index) = match &cat.key {
            Some((index, cols)) => (
                Some(cols.clone()),
                cols.iter()
                    .map(|&i| quote(&schema.columns[i].name))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!(" FORCE INDEX ({})", quote(index)),
            ),
            None => (None, String::new(), String::new()),
        };
        match &cat.key {
            _ if reopened => {}
            Some((index, _)) if t.after.is_none() => log::info!(
                "snapshot of {name} started: about {} rows, in chunks of up to {} by {} ({})",
                cat.estimate,
                self.cfg.snapshot_chunk_rows,
                if index == "PRIMARY" { "primary key" } else { "unique key" },
                order
            ),
            Some(_) => log::info!(
                "snapshot of {name} resumed after the last chunk released ({} rows sent before)",
                t.rows
            ),
            None if t.started => log::warn!(
                "snapshot of {name}: it has no primary key or unique NOT NULL key, so it is read again from its beginning after the restart"
            ),
            None => log::info!(
                "snapshot of {name} started: about {} rows; no primary key or unique NOT NULL key, so it is read in one consistent read (the stream waits at its point while the rows go out)",
                cat.estimate
            ),
        }
        if !reopened {
            self.shared.snapshot_started(&name, cat.estimate, t.rows);
        }
        self.table = Some(Reading {
            name,
            schema,
            key,
            select: format!("SELECT {select} FROM {from}{index}"),
            order,
            condition,
        });
        Ok(())
    }

    /// A requested table that cannot be read after all (its condition no
    /// longer fits the table, or the server refused the query): the request
    /// is answered as failed and the table dropped from the plan; the
    /// pipeline goes on. An initial snapshot has no requester to answer,
    /// so there the error stops the pipeline as before.
    fn fail_request(&mut self, t: &TablePlan, why: &str) -> Result<(), SourceError> {
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
    fn answer(&mut self, ack: &Ack) -> Result<(), crate::kafka::KafkaError> {
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

    /// The plan once the first table is done.
    fn finish_table_unread(&mut self) {
        let mut next = self.plan.clone();
        next.tables.remove(0);
        self.install(next);
        self.table = None;
    }

    /// The first table of the plan is not on the server (any more). Renamed
    /// or dropped, only the stream can tell: the plan without it is taken
    /// when the stream reaches the binlog point of now, unless a RENAME on
    /// the way (which the reader follows) takes over first.
    fn table_gone(&mut self, name: &str) -> Result<(), SourceError> {
        let cfg = self.cfg.clone();
        let (file, pos) = super::head_position(self.conn()?, &cfg)?;
        let mut next = self.plan.clone();
        next.tables.remove(0);
        self.table = None;
        self.watching = None;
        if self.install_at(next, Some(Horizon::At { file, pos })) {
            log::warn!(
                "snapshot: table {name} no longer exists (dropped); the rest of it is skipped"
            );
        }
        Ok(())
    }

    /// Gives the reader a new plan now (no rows with it).
    fn install(&mut self, plan: Plan) {
        self.install_at(plan, None);
    }

    /// Gives the reader a new plan, to take at `after` (or at once); true
    /// when it took it.
    fn install_at(&mut self, plan: Plan, after: Option<Horizon>) -> bool {
        let (reply, rx) = crossbeam_channel::bounded(1);
        let arc = Arc::new(plan.clone());
        if self.send(ToReader::Plan {
            epoch: self.epoch,
            plan: arc,
            after,
            reply,
        }) && self.wait(&rx)
        {
            self.plan = plan;
            return true;
        }
        false
    }

    /// Opens a read view and finds its binlog point.
    fn open_view(&mut self) -> Result<Horizon, SourceError> {
        let cfg = self.cfg.clone();
        let conn = self.conn()?;
        let q = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
        conn.query_drop(q).map_err(|e| classify(&cfg, q, e))?;
        let status: Vec<(String, String)> = conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .map_err(|e| classify(&cfg, "SHOW STATUS LIKE 'binlog_snapshot_%'", e))?;
        let get = |n: &str| {
            status
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        if let (Some(file), Some(pos)) =
            (get("Binlog_snapshot_file"), get("Binlog_snapshot_position"))
        {
            if let Ok(pos) = pos.parse() {
                if !file.is_empty() {
                    return Ok(Horizon::At { file, pos });
                }
            }
        }
        // MySQL: no exact pairing. Visible: the GTIDs executed before this
        // view opened; after it, nothing past the binlog end read now.
        let _ = conn.query_drop("ROLLBACK");
        let executed: Option<String> = conn
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .map_err(|e| classify(&cfg, "reading gtid_executed", e))?;
        let executed = executed
            .and_then(|s| crate::gtid::MysqlSet::parse(&s).ok())
            .ok_or_else(|| SourceError::Setting {
                detail: "snapshots need a read view paired with a binlog point: MariaDB or Percona Server (binlog_snapshot_file), or MySQL with gtid_mode=ON; this server has neither".into(),
            })?;
        conn.query_drop(q).map_err(|e| classify(&cfg, q, e))?;
        let (file, pos) = super::head_position(conn, &cfg)?;
        Ok(Horizon::Gtids {
            executed: Arc::new(executed),
            file,
            pos,
        })
    }

    /// Reads and hands over the next chunk of a keyed table.
    fn chunk(&mut self, current: &TablePlan) -> Result<(), SourceError> {
        let budget = (self.cfg.max_in_flight_bytes / 4).clamp(1 << 20, 8 << 20) as usize;
        let limit = match self.row_bytes {
            0 => self.cfg.snapshot_chunk_rows.min(1024),
            // At least 64 rows a chunk where the setting allows that many,
            // whatever their size; never more than the setting.
            b => (budget / b.max(1))
                .max(64)
                .min(self.cfg.snapshot_chunk_rows),
        };
        let t = self.table.as_ref().expect("open");
        let key = t.key.clone().expect("keyed");
        let schema = t.schema.clone();
        let mut sql = t.select.clone();
        let mut params: Vec<Value> = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        if let Some((c, p)) = &t.condition {
            conds.push(c.clone());
            params.extend(p.iter().cloned());
        }
        if let Some(after) = &current.after {
            // (k1, k2, ...) > (v1, v2, ...), spelled out so that the range
            // optimizer uses the index on every server.
            let names: Vec<String> = key
                .iter()
                .map(|&i| format!("`{}`", schema.columns[i].name.replace('`', "``")))
                .collect();
            let mut ors = Vec::new();
            for n in 0..names.len() {
                let mut ands = Vec::new();
                for (j, name) in names.iter().enumerate().take(n) {
                    ands.push(format!("{name} = ?"));
                    params.push(after[j].to_value());
                }
                ands.push(format!("{} > ?", names[n]));
                params.push(after[n].to_value());
                ors.push(format!("({})", ands.join(" AND ")));
            }
            conds.push(format!("({})", ors.join(" OR ")));
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {}", t.order, limit + 1));
        let name = t.name.clone();
        let horizon = self.open_view()?;
        let cfg = self.cfg.clone();
        let conn = self.conn()?;
        let result: Result<Vec<Vec<Value>>, mysql::Error> = conn
            .exec_iter(&sql, params)
            .and_then(|r| r.map(|row| row.map(mysql::Row::unwrap)).collect());
        let _ = conn.query_drop("COMMIT");
        let mut values = match result {
            Ok(v) => v,
            // The table or a column went away between the check and the
            // query, or the table was recreated after the read view opened
            // (1412: a RENAME, DROP, ALTER or TRUNCATE racing the chunk):
            // open it again, which finds out what happened.
            Err(mysql::Error::MySqlError(me)) if matches!(me.code, 1146 | 1054 | 1412) => {
                log::debug!("snapshot of {name}: {}; opening it again", me.message);
                self.table = None;
                self.watching = None;
                return Ok(());
            }
            Err(mysql::Error::MySqlError(me)) if matches!(current.reason, Reason::Requested(_)) => {
                let why = format!("the server refused the query: {}", me.message);
                self.fail_request(current, &why)?;
                self.table = None;
                self.watching = None;
                return Ok(());
            }
            Err(e) => return Err(classify(&cfg, &format!("reading a chunk of {name}"), e)),
        };
        let more = values.len() > limit;
        values.truncate(limit);
        let mut rows = Vec::with_capacity(values.len());
        let mut last_key = None;
        let mut bytes = 0usize;
        for v in values {
            if v.len() == schema.columns.len() {
                last_key = Some(
                    key.iter()
                        .map(|&i| boundary_value(&schema.columns[i], &v[i]))
                        .collect(),
                );
            }
            let image = encode::row_image(&schema, v).map_err(|e| SourceError::Query {
                what: format!("the snapshot of {name}"),
                detail: format!(
                    "{e}; the table changed while it was read? Restart to read it again"
                ),
            })?;
            bytes += image.buf.len() + image.cells.len() * 16 + 64;
            let k = key_of(&schema, &image, &key);
            rows.push((image, k));
        }
        if !rows.is_empty() {
            self.row_bytes = bytes / rows.len();
        }
        let mut next = self.plan.clone();
        let first_of_table = !current.started;
        {
            let tp = &mut next.tables[0];
            tp.started = true;
            tp.rows += rows.len() as u64;
            if let Some(k) = last_key {
                tp.after = Some(k);
            }
        }
        let done = next.tables[0].clone();
        if !more {
            next.tables.remove(0);
        }
        let chunk = Chunk {
            epoch: self.epoch,
            schema,
            rows,
            horizon,
            plan_after: Arc::new(next.clone()),
            first_of_table,
            last_of_table: !more,
            table: done,
        };
        if self.send(ToReader::Chunk(chunk)) {
            self.plan = next;
            if !more {
                self.table = None;
                self.watching = None;
            }
        }
        Ok(())
    }

    /// A table without a usable key: one read view, its rows emitted at
    /// exactly the view's point while the reader waits there.
    fn whole(&mut self, current: &TablePlan) -> Result<(), SourceError> {
        let t = self.table.as_ref().expect("open");
        let name = t.name.clone();
        let schema = t.schema.clone();
        let mut sql = t.select.clone();
        let mut params: Vec<Value> = Vec::new();
        if let Some((c, p)) = &t.condition {
            sql.push_str(" WHERE ");
            sql.push_str(c);
            params.extend(p.iter().cloned());
        }
        // Noted before any row goes out: a restart then says that it reads
        // the table again from its beginning.
        if !current.started {
            let mut p = self.plan.clone();
            p.tables[0].started = true;
            self.install(p);
        }
        let (reply, rx) = crossbeam_channel::bounded(1);
        if !self.send(ToReader::Pause {
            epoch: self.epoch,
            reply,
        }) || !self.wait(&rx)
        {
            return Ok(());
        }
        let horizon = match self.open_view() {
            Ok(Horizon::At { file, pos }) => Horizon::At { file, pos },
            Ok(Horizon::Gtids { .. }) => {
                self.send(ToReader::Resume { epoch: self.epoch });
                let _ = self.conn()?.query_drop("ROLLBACK");
                log::warn!(
                    "snapshot: {name} has no primary key or unique NOT NULL key, and this server cannot pair a read view with an exact binlog point (MySQL without binlog_snapshot_file); skipped. Give it a key, or snapshot it on MariaDB/Percona Server"
                );
                self.finish_table_unread();
                return Ok(());
            }
            Err(e) => {
                self.send(ToReader::Resume { epoch: self.epoch });
                return Err(e);
            }
        };
        let (rows_tx, rows_rx) = crossbeam_channel::bounded(2);
        let mut next = self.plan.clone();
        let mut done = next.tables.remove(0);
        done.started = true;
        if !self.send(ToReader::Stream(seam::Streaming {
            epoch: self.epoch,
            schema: schema.clone(),
            horizon,
            rows: rows_rx,
            plan_after: Arc::new(next.clone()),
            table: done,
        })) {
            let _ = self.conn()?.query_drop("ROLLBACK");
            return Ok(());
        }
        let cfg = self.cfg.clone();
        let shared = self.shared.clone();
        let epoch = self.epoch;
        let conn = self.conn()?;
        let mut n = 0u64;
        let result: Result<(), SourceError> = (|| {
            let mut batch = Vec::with_capacity(256);
            let mut rows = conn
                .exec_iter(&sql, params)
                .map_err(|e| classify(&cfg, &format!("reading {name}"), e))?;
            for row in rows.by_ref() {
                let row = row.map_err(|e| classify(&cfg, &format!("reading {name}"), e))?;
                let image =
                    encode::row_image(&schema, row.unwrap()).map_err(|e| SourceError::Query {
                        what: format!("the snapshot of {name}"),
                        detail: e,
                    })?;
                batch.push(image);
                n += 1;
                if batch.len() == 256 {
                    let b = std::mem::replace(&mut batch, Vec::with_capacity(256));
                    if !send_rows(&rows_tx, Streamed::Rows(b), &shared, epoch) {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() && !send_rows(&rows_tx, Streamed::Rows(batch), &shared, epoch) {
                return Ok(());
            }
            send_rows(&rows_tx, Streamed::Done, &shared, epoch);
            Ok(())
        })();
        let _ = conn.query_drop("COMMIT");
        drop(rows_tx);
        result?;
        log::debug!("snapshot: {n} rows of {name} read in one view");
        self.plan = next;
        self.table = None;
        Ok(())
    }

    /// Looks for new snapshot requests in the commit-log topic.
    fn poll_requests(&mut self) -> Result<(), crate::kafka::KafkaError> {
        let topic = self.cfg.commit_topic.clone();
        let prefix = format!("{}#snapshot#", self.cfg.pipeline_name);
        let (earliest, latest) = self.kafka.offsets(&topic, 0)?;
        // Where the checkpoint says requests are still to be looked for (a
        // new pipeline: from its start).
        let mut at = self.plan.requests_from.max(earliest);
        let mut found = Vec::new();
        while at < latest {
            let recs = self.kafka.fetch(&topic, 0, at, 1 << 20)?;
            if recs.is_empty() {
                break;
            }
            for r in &recs {
                let is_request = r
                    .key
                    .as_deref()
                    .is_some_and(|k| k.starts_with(prefix.as_bytes()));
                if let (true, Some(v)) = (is_request, &r.value) {
                    match serde_json::from_slice::<Request>(v) {
                        Ok(req) if !self.plan.taken.contains(&req.id) => {
                            found.push((req, r.offset))
                        }
                        Ok(_) => {}
                        Err(e) => log::warn!(
                            "ignoring an unreadable snapshot request at {topic} offset {}: {e}",
                            r.offset
                        ),
                    }
                }
            }
            at = recs.last().map_or(latest, |r| r.offset + 1);
        }
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
    fn take(&mut self, req: Request, next_offset: i64) -> Result<bool, crate::kafka::KafkaError> {
        let mut next = self.plan.clone();
        let mut tables = Vec::new();
        let mut refused = Vec::new();
        for name in &req.tables {
            match self.check_requested(name, req.condition.as_deref()) {
                Ok(Ok((db, t))) => {
                    tables.push(name.clone());
                    next.tables.push(TablePlan {
                        database: db,
                        table: t,
                        reason: Reason::Requested(req.id.clone()),
                        condition: req.condition.clone(),
                        after: None,
                        rows: 0,
                        first: false,
                        last: false,
                        started: false,
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
    fn check_requested(
        &mut self,
        name: &str,
        condition: Option<&str>,
    ) -> Result<Result<(String, String), String>, SourceError> {
        let Some((db, t)) = name.split_once('.') else {
            return Ok(Err("not database.table".into()));
        };
        if !self.cfg.filter.allows(db, t) {
            return Ok(Err("not published (filter.include / filter.exclude)".into()));
        }
        let cfg = self.cfg.clone();
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

/// A key column's value as the next chunk's `WHERE key > ?` must see it.
/// The server returns a BIT as bytes, but compares a BIT column with a
/// bytes parameter as numbers parsed from text (so the boundary row came
/// back in every chunk): a BIT goes back as the integer it is.
fn boundary_value(col: &crate::event::ColumnSchema, v: &Value) -> KeyValue {
    match v {
        Value::Bytes(b)
            if super::schema::real_type(col) == mysql::consts::ColumnType::MYSQL_TYPE_BIT
                && b.len() <= 8 =>
        {
            KeyValue::UInt(b.iter().fold(0u64, |n, &x| n << 8 | u64::from(x)))
        }
        v => KeyValue::from_value(v),
    }
}

/// A `--where` condition rendered for `schema`'s columns, or why not.
fn render_condition(text: &str, schema: &TableSchema) -> Result<(String, Vec<Value>), String> {
    let columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let mut params = Vec::new();
    condition::Condition::parse(text)
        .and_then(|c| c.render(&columns, &mut params))
        .map(|sql| (sql, params))
        .map_err(|e| format!("--where refused: {e}"))
}

fn send_rows(tx: &Sender<Streamed>, mut item: Streamed, shared: &Shared, epoch: u64) -> bool {
    loop {
        match tx.send_timeout(item, Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(crossbeam_channel::SendTimeoutError::Timeout(i)) => {
                if shared.stopping() || shared.snapshot_epoch() != epoch {
                    return false;
                }
                item = i;
            }
            Err(_) => return false,
        }
    }
}

/// The plan of a first start with `snapshot.mode=initial` (or a purged
/// checkpoint with `when_needed`): every table the filters let through,
/// in name order.
pub fn initial_plan(
    conn: &mut Conn,
    cfg: &Config,
    reason: Reason,
    requests_from: i64,
) -> Result<Plan, SourceError> {
    let names: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .map_err(|e| classify(cfg, "listing tables for the snapshot", e))?;
    let mut tables: Vec<TablePlan> = names
        .into_iter()
        .filter(|(d, t)| cfg.filter.allows(d, t))
        .map(|(database, table)| TablePlan {
            database,
            table,
            reason: reason.clone(),
            condition: None,
            after: None,
            rows: 0,
            first: false,
            last: false,
            started: false,
        })
        .collect();
    if let Some(t) = tables.first_mut() {
        t.first = true;
    }
    if let Some(t) = tables.last_mut() {
        t.last = true;
    }
    Ok(Plan {
        tables,
        requests_from,
        taken: Vec::new(),
    })
}
