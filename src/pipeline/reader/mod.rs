//! The reader thread: streams the binlog as a replica, keeps the table maps,
//! and turns each row of a rows event into a [`RowChange`] with a sequence
//! number and the position that releasing it makes safe.
//!
//! It only decodes. JSON encoding and partitioning happen on the producer
//! thread, so the two cores share the work. The pending channel is bounded:
//! when Kafka is slow the reader blocks on it, and memory stays bounded
//! whatever the transaction size.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::pipeline::handle::{Exit, Handle};

use crossbeam_channel::Sender;
use mysql::binlog::events::{Event, EventData, FormatDescriptionEvent, RowsEventData};
use mysql::prelude::Queryable;
use mysql::BinlogRequest;
use mysql_common::binlog::consts::EventType;

use crate::event::{
    Change, DdlChange, Position, RowChange, RowImage, RowKind, SnapshotMark, SnapshotPart,
    TableSchema,
};
use crate::pipeline::Shared;

use crate::event::FileId;
use crate::gtid::{maria_list, maria_plan, GtidState, MariaGtid, MariaPlan, MysqlSet};
use crate::source::rows::{split_rows, Images};
use crate::source::schema::SchemaCache;
use crate::source::snapshot::plan::{Plan, TablePlan};
use crate::source::snapshot::seam::{Chunk, Floor, Horizon, Seam, Streamed, Streaming, ToReader};
use crate::source::snapshot::SnapshotMode;
use crate::source::xa::{self, XaState, XaStatement};
use crate::source::{
    backoff, check_server, classify, connect, ensure_kept, statement, SourceError, Target,
};

mod changes;
mod events;
mod failover;
mod snapshot;
mod statements;

use crate::source::payload::*;

const MARIADB_ANNOTATE_ROWS: u8 = 160;
const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
const MARIADB_GTID: u8 = 162;
const MARIADB_GTID_LIST: u8 = 163;
/// MariaDB `log_bin_compress=ON`: a statement, and rows events (v1 166-168,
/// v2 169-171) whose row data is zlib-compressed.
const MARIADB_QUERY_COMPRESSED: u8 = 165;
const MARIADB_ROWS_COMPRESSED: std::ops::RangeInclusive<u8> = 166..=171;
/// The event types the reader parses; every other one is skipped unread.
const DECODED: &[u8] = &[
    EventType::QUERY_EVENT as u8,
    EventType::ROTATE_EVENT as u8,
    EventType::XID_EVENT as u8,
    EventType::TABLE_MAP_EVENT as u8,
    EventType::WRITE_ROWS_EVENT_V1 as u8,
    EventType::UPDATE_ROWS_EVENT_V1 as u8,
    EventType::DELETE_ROWS_EVENT_V1 as u8,
    EventType::WRITE_ROWS_EVENT as u8,
    EventType::UPDATE_ROWS_EVENT as u8,
    EventType::DELETE_ROWS_EVENT as u8,
    EventType::GTID_EVENT as u8,
    EventType::ANONYMOUS_GTID_EVENT as u8,
    EventType::PARTIAL_UPDATE_ROWS_EVENT as u8,
    xa::XA_PREPARE_EVENT,
];

const PREVIOUS_GTIDS: u8 = EventType::PREVIOUS_GTIDS_EVENT as u8;

/// LOAD DATA logged as a statement: BEGIN_LOAD_QUERY carries the file's
/// first block, EXECUTE_LOAD_QUERY the statement.
const EXECUTE_LOAD_QUERY: u8 = 18;

/// MariaDB GTID flag: the event group has no BEGIN/COMMIT (DDL).
const FL_STANDALONE: u8 = 1;

/// What the reader is told (built by the configuration): the source's
/// settings, and how it behaves around them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Arc<crate::source::Settings>,
    pub pipeline_name: String,
    /// Where snapshot requests and their answers are read and written.
    pub commit_topic: String,
    /// `mysql.failover_after_ms`: how long a server may be unreachable
    /// before the reader moves to the next of `mysql.host`.
    pub failover_after: std::time::Duration,
    /// `mysql.on_statement_dml=warn`: step over statement-logged DML.
    pub on_statement_dml_warn: bool,
    pub snapshot_mode: SnapshotMode,
    pub snapshot_chunk_rows: usize,
    /// `pipeline.txn_buffer_rows`.
    pub txn_buffer_rows: usize,
    /// `pipeline.max_in_flight_bytes`.
    pub max_in_flight_bytes: u64,
    /// Whether DDL is published (`kafka.ddl_topic` is set).
    pub publish_ddl: bool,
    /// Whether a snapshot's rows are framed by bootstrap-start and
    /// -complete records (Maxwell's bootstrap): what the reader must emit,
    /// without knowing the output format.
    pub bootstrap_markers: bool,
}

/// Where and with what the reader starts.
pub struct Start {
    /// The position to stream from.
    pub position: Position,
    /// The server to read first.
    pub target: Target,
    /// The snapshot thread's chunks.
    pub snapshots: Option<crossbeam_channel::Receiver<ToReader>>,
    /// The schema history to follow, and where its new versions go.
    pub history: Option<(
        crate::source::history::follow::Follower,
        crate::pipeline::schema_store::Store,
    )>,
}

/// Starts the `b2k-reader` thread.
pub fn spawn(
    cfg: Settings,
    shared: Arc<Shared>,
    pending: Sender<Vec<Change>>,
    Start {
        position: start,
        target,
        snapshots,
        history,
    }: Start,
    exit: Exit,
) -> Handle<Result<(), SourceError>> {
    crate::pipeline::handle::spawn("b2k-reader", exit, move || {
        let expect = start.file_id.map(|id| (start.file.clone(), id));
        let mut r = Reader::new(cfg, shared.clone(), pending, start);
        r.target = target;
        if let Some((h, store)) = history {
            let mode = r.cfg.source.schema_on_mismatch;
            r.schemas.follow(h, mode);
            r.schema_store = Some(store);
            r.show_schema();
        }
        r.seam = snapshots.map(Seam::new);
        r.wait_for_room = true;
        r.live = true;
        r.expect_file = expect;
        let result = r.run();
        if result.is_err() {
            shared.stop.request();
        }
        result
    })
}

/// The transaction being read.
struct Txn {
    start: u64,
    gtid: Option<Arc<str>>,
    xid: Option<u64>,
    /// Rows seen so far, skipped ones included.
    rows: u64,
    /// Rows to skip: already released before a restart.
    skip: u64,
    /// Rows held back so they can carry the xid when it arrives (as the
    /// changes they are handed on as: no copy into another vector).
    held: Vec<Change>,
    /// Opened by BEGIN (or a MariaDB GTID that implies it): only COMMIT or
    /// XID ends it. Otherwise the next statement is a standalone DDL.
    explicit: bool,
    /// The connection that ran it, from its BEGIN (MySQL; MariaDB's GTID
    /// event does not say).
    thread: Option<u32>,
    /// An XA transaction's group (see [`xa`]): its xid once `XA END` named
    /// it, and whether this reading publishes it (a rewind) or only notes
    /// the prepare.
    xa: Option<XaTxn>,
    /// The GTID state before this transaction, and its GTID to add to the
    /// state at its commit.
    state: Option<Arc<GtidState>>,
    adds: Option<Gtid>,
}

#[derive(Debug, Default)]
struct XaTxn {
    xid: Option<String>,
    publish: bool,
}

/// The decoding state machine. It is fed events one at a time, so the same
/// code serves a live stream and, later, binlog files.
pub struct Reader {
    cfg: Settings,
    /// The server read now: the first reachable of `mysql.host` until a
    /// failover moves on.
    target: Target,
    shared: Arc<Shared>,
    pending: Sender<Vec<Change>>,
    file: Arc<str>,
    /// Offset where the next event starts.
    next_pos: u64,
    txn: Option<Txn>,
    /// Rows of the first transaction to skip after (re)connecting.
    skip_next: u64,
    /// Start of the first table map after the last rows event: where a
    /// transaction without GTID/BEGIN (a stream started mid-way) can resume.
    table_map_start: Option<u64>,
    seq: u64,
    schemas: SchemaCache,
    /// Reader stopped for the pipeline's shutdown (not an error).
    stopped: bool,
    /// Table ids whose table map the filter rejected.
    filtered: HashSet<u64>,
    /// The stream's format description, without checksums: how the events
    /// inside a compressed transaction are read.
    fde: Option<FormatDescriptionEvent<'static>>,
    /// Set while the events of a compressed transaction are handled: the
    /// payload event's start and end.
    payload_at: Option<(u64, u64)>,
    /// Column names may be read from information_schema (off for binlog
    /// files replayed without `--schema-from`: names stay positional).
    catalog: bool,
    /// Wait for room under `pipeline.max_in_flight_bytes` before handing
    /// changes on: the live reader does, while the watcher releases. A
    /// replay, which releases on its own thread between events, does not.
    wait_for_room: bool,
    /// Undecided XA prepares and the rewind under way.
    xa: XaState,
    /// Set by an XA COMMIT: the stream must start again here.
    rewind_to: Option<Position>,
    /// Tables already warned about for partial row images (replay).
    partial_images: HashSet<String>,
    /// The GTID state after the last transaction read (see [`crate::gtid`]).
    state: Option<Arc<GtidState>>,
    /// The server whose file coordinates `file` and `next_pos` are: the
    /// server id of the current file's first event.
    file_server: Option<u32>,
    /// After resuming inside a transaction by GTID: the GTID it must have.
    expect_gtid: Option<Arc<str>>,
    /// The identity of the file being read, once its first event is seen.
    file_id: Option<FileId>,
    /// The identities of the files read from this server in this run: a
    /// reconnect that finds another file of the same name stops.
    seen_ids: std::collections::HashMap<String, FileId>,
    /// Which binlog the start position was taken in (from the checkpoint):
    /// the file's first event must match, or the binlog was replaced.
    expect_file: Option<(Arc<str>, FileId)>,
    /// What the server's settings were checked to be at connect time
    /// (live stream only).
    live: bool,
    /// Where snapshot chunks join the stream ([`super::snapshot::seam`]).
    seam: Option<Seam>,
    /// The snapshot plan every new position carries.
    plan: Option<Arc<Plan>>,
    /// A keyless table's rows, waiting for the stream to reach their point.
    stream_wait: Option<Streaming>,
    /// The servers of `mysql.host` that refused to be resumed on since the
    /// pipeline last streamed, with why.
    refused: Vec<(String, crate::source::refusal::GtidRefusal)>,
    /// Whether the server connected to passed the resume checks.
    streaming: bool,
    /// Resumed by GTID: the next ROTATE names the server's own file and
    /// offset, for the log.
    announce_file: bool,
    /// A plan without a table found missing, waiting for the stream to
    /// reach the point where it was found missing (see `ToReader::Plan`).
    plan_wait: Option<(Horizon, Arc<Plan>, crossbeam_channel::Sender<()>)>,
    /// The stream was asked for heartbeats every few milliseconds (while a
    /// snapshot runs, so chunks need not wait for an event to join).
    quick_heartbeat: bool,
    /// Where the schema history's new versions are written (live only).
    schema_store: Option<crate::pipeline::schema_store::Store>,
}

/// How one streaming session ended without an error.
enum Flow {
    /// The pipeline is stopping.
    Stopped,
    /// An XA COMMIT asks for its prepare group to be read again.
    Rewind,
    /// Stream again from the same boundary (other heartbeat settings).
    Reconnect,
}

impl Reader {
    pub fn new(
        cfg: Settings,
        shared: Arc<Shared>,
        pending: Sender<Vec<Change>>,
        start: Position,
    ) -> Self {
        Reader {
            schemas: SchemaCache::new(cfg.source.columns.clone()),
            target: Target::first(cfg.source.clone()),
            cfg,
            shared,
            pending,
            file: start.file.clone(),
            next_pos: start.pos,
            txn: None,
            skip_next: start.rows,
            table_map_start: None,
            seq: 0,
            stopped: false,
            filtered: HashSet::new(),
            fde: None,
            payload_at: None,
            catalog: true,
            wait_for_room: false,
            xa: XaState::default(),
            rewind_to: None,
            partial_images: HashSet::new(),
            state: start.state.clone(),
            file_server: None,
            expect_gtid: None,
            file_id: start.file_id,
            seen_ids: Default::default(),
            expect_file: None,
            live: false,
            seam: None,
            plan: start.snapshot.clone(),
            stream_wait: None,
            plan_wait: None,
            refused: Vec::new(),
            streaming: false,
            announce_file: false,
            quick_heartbeat: false,
            schema_store: None,
        }
    }

    /// The binlog identity the start position was recorded with.
    pub fn expect_file(&mut self, file: Arc<str>, id: FileId) {
        self.expect_file = Some((file, id));
    }

    /// Whether column names missing from table maps are looked up on the
    /// configured server.
    pub fn set_catalog(&mut self, on: bool) {
        self.catalog = on;
    }

    /// Names and checks rows with `history` from now on, following the
    /// DDL read (`replay` with a schema).
    pub fn follow(&mut self, history: crate::source::history::follow::Follower) {
        let mode = self.cfg.source.schema_on_mismatch;
        self.schemas.follow(history, mode);
    }

    /// The history followed, as the events read so far left it.
    pub fn take_history(&mut self) -> Option<crate::source::history::follow::Follower> {
        self.schemas.take_follower()
    }

    /// Where the next event starts (the end of the last one read).
    pub fn next_pos(&self) -> u64 {
        self.next_pos
    }

    /// A position in the file being read.
    fn here(
        &self,
        pos: u64,
        rows: u64,
        gtid: Option<Arc<str>>,
        state: Option<Arc<GtidState>>,
    ) -> Position {
        Position {
            file: self.file.clone(),
            pos,
            rows,
            gtid,
            state,
            file_id: self.file_id,
            snapshot: self.plan.clone(),
            schema: self.schemas.follower().map_or(0, |f| f.versions),
        }
    }

    /// Where a reconnect must resume so that nothing is missed and nothing
    /// already handed on is sent twice.
    fn resume_position(&self) -> Position {
        match &self.txn {
            Some(t) => self.here(
                t.start,
                t.rows - t.held.len() as u64,
                t.gtid.clone(),
                t.state.clone(),
            ),
            None => self.here(self.next_pos, 0, None, self.state.clone()),
        }
    }

    fn run(&mut self) -> Result<(), SourceError> {
        let mut attempt = 0;
        let mut outage_logged = false;
        let mut down_since: Option<std::time::Instant> = None;
        loop {
            let resume = self.resume_position();
            match self.stream_from(&resume, &mut attempt, &mut outage_logged) {
                Ok(Flow::Stopped) => return Ok(()),
                Ok(Flow::Rewind | Flow::Reconnect) => continue,
                Err(e) if e.is_retriable() && !self.shared.stop.requested() => {
                    let since = *down_since.get_or_insert_with(std::time::Instant::now);
                    if self.cfg.source.hosts.len() > 1 && since.elapsed() >= self.cfg.failover_after
                    {
                        self.fail_over(&e, since.elapsed());
                        down_since = None;
                        attempt = 0;
                        let resume = self.resume_position();
                        self.txn = None;
                        self.skip_next = resume.rows;
                        self.next_pos = resume.pos;
                        self.file = resume.file;
                        continue;
                    }
                    let wait = backoff(attempt);
                    if !outage_logged {
                        self.shared.board.set_down(false, Some(e.to_string()));
                        self.shared.reading.set_stream_lost(true);
                        log::warn!(
                            "MySQL stream lost at {}: {e}; reconnecting with back-off",
                            self.resume_position()
                        );
                        outage_logged = true;
                    } else {
                        log::debug!("MySQL still unreachable ({e}); next try in {wait:?}");
                    }
                    attempt += 1;
                    // Rows held for an unfinished transaction were never
                    // handed on; they are read again after reconnecting.
                    let resume = self.resume_position();
                    self.txn = None;
                    self.skip_next = resume.rows;
                    self.next_pos = resume.pos;
                    self.file = resume.file;
                    if self.shared.stop.wait(wait) {
                        return Ok(());
                    }
                }
                Err(SourceError::Gtid { refusal })
                    if self.cfg.source.hosts.len() > 1 && !self.streaming =>
                {
                    self.pass_over(refusal)?;
                    let resume = self.resume_position();
                    self.txn = None;
                    self.skip_next = resume.rows;
                    self.next_pos = resume.pos;
                    self.file = resume.file;
                }
                Err(e) => {
                    if self.shared.stop.requested() && e.is_retriable() {
                        return Ok(());
                    }
                    return Err(e);
                }
            }
        }
    }

    /// A resume by file position on the server read: its file must still be
    /// there, and where the offset stands in the cluster's history (the
    /// GTID state, and the servers' transactions before it) is noted.
    fn place_by_file(
        &mut self,
        conn: &mut mysql::Conn,
        info: &crate::source::ServerInfo,
        resume: &Position,
    ) -> Result<(), SourceError> {
        ensure_kept(&resume.file, &info.binlogs, "the resume position")?;
        if self.state.is_none() && info.mariadb {
            // Where this offset is in the cluster's history.
            let q = format!(
                "SELECT BINLOG_GTID_POS('{}', {})",
                resume.file.replace('\'', "''"),
                resume.pos
            );
            if let Ok(Some(Some(p))) = conn.query_first::<Option<String>, _>(&q) {
                if let Ok(p) = crate::gtid::MariaPos::parse(&p) {
                    self.state = Some(Arc::new(GtidState::Maria(p)));
                }
            }
        }
        if info.mariadb {
            self.note_history(conn);
        }
        Ok(())
    }

    /// Prepares the session (checksums, MariaDB GTID events, heartbeats;
    /// for a resume by GTID, the state) and the dump request.
    fn request(
        &mut self,
        conn: &mut mysql::Conn,
        by_gtid: &Option<GtidState>,
        resume: &Position,
    ) -> Result<BinlogRequest<'static>, SourceError> {
        let cfg = &self.target.clone();
        // Tell the server we understand checksums and MariaDB GTID events,
        // and ask for heartbeats so an idle stream still wakes us up.
        let checksum: Option<String> = conn
            .query_first("SELECT @@GLOBAL.binlog_checksum")
            .map_err(|e| classify(cfg, "reading binlog_checksum", e))?;
        let checksum = checksum.unwrap_or_else(|| "NONE".into());
        // Heartbeats every second; every 10 ms while a snapshot runs, so an
        // idle stream still takes its chunks at once.
        self.quick_heartbeat = self.snapshot_busy();
        let setup = [
            format!("SET @master_binlog_checksum = '{checksum}'"),
            "SET @mariadb_slave_capability = 4".to_string(),
            format!(
                "SET @master_heartbeat_period = {}",
                if self.quick_heartbeat {
                    10_000_000
                } else {
                    1_000_000_000
                }
            ),
        ];
        for q in setup {
            conn.query_drop(&q).map_err(|e| classify(cfg, &q, e))?;
        }
        Ok(match by_gtid {
            None => BinlogRequest::new(cfg.settings.server_id)
                .with_filename(resume.file.as_bytes().to_vec())
                .with_pos(resume.pos),
            Some(GtidState::Maria(p)) => {
                // The file and offset are ignored: the server finds the
                // place after this state in its own binlog.
                for q in [
                    format!("SET @slave_connect_state = '{}'", p.position()),
                    "SET @slave_gtid_strict_mode = 1".to_string(),
                    "SET @slave_gtid_ignore_duplicates = 0".to_string(),
                ] {
                    conn.query_drop(&q).map_err(|e| classify(cfg, &q, e))?;
                }
                BinlogRequest::new(cfg.settings.server_id)
                    .with_filename(Vec::new())
                    .with_pos(4u64)
            }
            Some(GtidState::Mysql(set)) => BinlogRequest::new(cfg.settings.server_id)
                .with_use_gtid(true)
                .with_flags(mysql_common::packets::BinlogDumpFlags::BINLOG_THROUGH_GTID)
                .with_filename(Vec::new())
                .with_pos(4u64)
                .with_sids(mysql_sids(set)),
        })
    }

    fn stream_from(
        &mut self,
        resume: &Position,
        attempt: &mut u32,
        outage_logged: &mut bool,
    ) -> Result<Flow, SourceError> {
        self.streaming = false;
        let mut conn = connect(&self.target)?;
        // Every connect checks what the first one checked: a server restarted
        // with binlog_format=MIXED in its config must stop the pipeline, not
        // have its statements skipped.
        let info = check_server(&mut conn, &self.target)?;
        let by_gtid = self.resume_by_gtid(&mut conn, &info, resume)?;
        // This server can resume the pipeline: a GTID refusal from here on
        // is about what it streams, not a reason to try another.
        self.streaming = true;
        self.refused.clear();
        self.announce_file = by_gtid.is_some();
        if by_gtid.is_none() {
            self.place_by_file(&mut conn, &info, resume)?;
        }
        let request = self.request(&mut conn, &by_gtid, resume)?;
        let cfg = &self.target.clone();
        let gtid_refusal = |e: mysql::Error, state: &GtidState| -> SourceError {
            match e {
                mysql::Error::MySqlError(me) if me.code == 1236 => SourceError::Gtid {
                    refusal: crate::source::refusal::GtidRefusal::Refused {
                        addr: cfg.addr(),
                        state: position_text(state),
                        says: me.message,
                    },
                },
                other => classify(cfg, "reading the binlog stream", other),
            }
        };
        let mut stream = conn
            .get_binlog_stream(request)
            .map_err(|e| match &by_gtid {
                Some(st) => gtid_refusal(e, st),
                None => classify(cfg, "requesting the binlog stream", e),
            })?;
        self.shared.board.set_down(false, None);
        self.shared.reading.set_stream_lost(false);
        self.shared.board.progress.lock().read_file = resume.file.to_string();
        *self.shared.board.source.lock() =
            format!("{}:{} (server_id {})", cfg.host, cfg.port, info.server_id);
        match &by_gtid {
            Some(st) => log::info!(
                "streaming binlog from {}:{} by GTID, after {}{} (its own file and offset follow when it names them)",
                cfg.host,
                cfg.port,
                position_text(st),
                if resume.rows > 0 {
                    format!(" (+{} rows of the next transaction)", resume.rows)
                } else {
                    String::new()
                }
            ),
            None if *outage_logged => log::info!("MySQL stream re-established at {resume}"),
            None => log::info!("streaming binlog from {resume}"),
        }
        *outage_logged = false;
        *attempt = 0;
        for ev in stream.by_ref() {
            let ev = ev.map_err(|e| match &by_gtid {
                Some(st) => gtid_refusal(e, st),
                None => classify(cfg, "reading the binlog stream", e),
            })?;
            self.on_event(&ev)?;
            if self.stopped || self.shared.stop.requested() {
                self.stopped = true;
                return Ok(Flow::Stopped);
            }
            if self.txn.is_none() && self.seam.is_some() {
                if let Some(flow) = self.seam_step()? {
                    return Ok(flow);
                }
            }
            if let Some(to) = self.rewind_to.take() {
                log::info!("XA COMMIT: reading the prepared transaction again from {to}");
                self.txn = None;
                self.skip_next = 0;
                self.file = to.file;
                self.next_pos = to.pos;
                return Ok(Flow::Rewind);
            }
        }
        Err(SourceError::Unreachable {
            addr: format!("{}:{}", self.target.host, self.target.port),
            detail: "the server ended the binlog stream".into(),
        })
    }

    /// The GTID state as of the next event to read (tests, logs).
    pub fn gtid_state(&self) -> Option<String> {
        self.state.as_ref().map(|s| s.to_string())
    }
}

/// A MySQL GTID set as COM_BINLOG_DUMP_GTID's SID block (intervals with an
/// exclusive end, as the protocol has them).
pub fn mysql_sids(set: &MysqlSet) -> Vec<mysql_common::packets::Sid<'static>> {
    use mysql_common::packets::{GnoInterval, Sid, Tag};
    set.0
        .iter()
        .filter_map(|((u, tag), iv)| {
            let mut sid = Sid::new(crate::gtid::uuid_bytes(u)?);
            if !tag.is_empty() {
                sid = sid.with_tag(Tag::new(tag.clone()).ok()?);
            }
            Some(
                sid.with_intervals(
                    iv.iter()
                        .map(|&(a, b)| GnoInterval::new(a, b + 1))
                        .collect(),
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod gtid_request_tests {
    use super::*;
    use mysql_common::proto::MySerialize;

    /// COM_BINLOG_DUMP_GTID as MySQL's protocol documentation lays it out:
    /// 0x1e, flags u16 (BINLOG_THROUGH_GTID = 4), server_id u32, file name
    /// length u32 and name, position u64, data size u32, then the SID block:
    /// n_sids u64, and per source its 16-byte uuid, n_intervals u64 and each
    /// interval's start and exclusive end as u64, all little-endian.
    #[test]
    fn com_binlog_dump_gtid_is_encoded_as_the_protocol_describes() {
        let set = MysqlSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7").unwrap();
        let req = BinlogRequest::new(6379)
            .with_use_gtid(true)
            .with_flags(mysql_common::packets::BinlogDumpFlags::BINLOG_THROUGH_GTID)
            .with_filename(Vec::new())
            .with_pos(4u64)
            .with_sids(mysql_sids(&set));
        let mut got = Vec::new();
        match req.as_cmd() {
            mysql_common::misc::raw::Either::Right(cmd) => cmd.serialize(&mut got),
            mysql_common::misc::raw::Either::Left(_) => {
                panic!("a GTID request must be COM_BINLOG_DUMP_GTID")
            }
        }
        let mut want = vec![0x1e];
        want.extend_from_slice(&4u16.to_le_bytes());
        want.extend_from_slice(&6379u32.to_le_bytes());
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(&4u64.to_le_bytes());
        let mut data = Vec::new();
        data.extend_from_slice(&1u64.to_le_bytes());
        data.extend_from_slice(
            &crate::gtid::uuid_bytes("3e11fa47-71ca-11e1-9e33-c80aa9429562").unwrap(),
        );
        data.extend_from_slice(&2u64.to_le_bytes());
        for (a, b) in [(1u64, 6u64), (7, 8)] {
            data.extend_from_slice(&a.to_le_bytes());
            data.extend_from_slice(&b.to_le_bytes());
        }
        want.extend_from_slice(&(data.len() as u32).to_le_bytes());
        want.extend_from_slice(&data);
        assert_eq!(got, want);
    }
}
