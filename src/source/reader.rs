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
use std::thread::{self, JoinHandle};

use crossbeam_channel::Sender;
use mysql::binlog::events::{Event, EventData, FormatDescriptionEvent, RowsEventData};
use mysql::prelude::Queryable;
use mysql::BinlogRequest;
use mysql_common::binlog::consts::EventType;

use crate::config::Config;
use crate::event::{
    Change, DdlChange, Position, RowChange, RowImage, RowKind, SnapshotMark, SnapshotPart,
    TableSchema,
};
use crate::pipeline::Shared;

use super::jsondiff;
use super::rows::{packed_int, split_rows, Images};
use super::schema::SchemaCache;
use super::snapshot::plan::{Plan, TablePlan};
use super::snapshot::seam::{Chunk, Horizon, Seam, Streamed, Streaming, ToReader};
use super::xa::{self, XaState, XaStatement};
use super::{backoff, check_server, classify, connect, ensure_kept, statement, SourceError};
use crate::event::FileId;
use crate::gtid::{maria_list, maria_plan, GtidState, MariaGtid, MariaPlan, MysqlSet};

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

pub struct ReaderHandle {
    pub join: JoinHandle<Result<(), SourceError>>,
}

/// Starts the `b2k-reader` thread, streaming from `start`; `snapshots`
/// carries the snapshot thread's chunks.
pub fn spawn(
    cfg: Config,
    shared: Arc<Shared>,
    pending: Sender<Vec<Change>>,
    start: Position,
    snapshots: Option<crossbeam_channel::Receiver<ToReader>>,
) -> ReaderHandle {
    let join = thread::Builder::new()
        .name("b2k-reader".into())
        .spawn(move || {
            let expect = start.file_id.map(|id| (start.file.clone(), id));
            let mut r = Reader::new(cfg, shared.clone(), pending, start);
            r.seam = snapshots.map(Seam::new);
            r.wait_for_room = true;
            r.live = true;
            r.expect_file = expect;
            let result = r.run();
            if result.is_err() {
                shared.request_stop();
            }
            result
        })
        .expect("spawn reader thread");
    ReaderHandle { join }
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
    /// Rows held back so they can carry the xid when it arrives.
    held: Vec<RowChange>,
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

/// A transaction's GTID, as it is added to the state.
#[derive(Debug, Clone)]
enum Gtid {
    Maria(MariaGtid),
    Mysql { uuid: String, tag: String, gno: u64 },
}

#[derive(Debug, Default)]
struct XaTxn {
    xid: Option<String>,
    publish: bool,
}

/// The decoding state machine. It is fed events one at a time, so the same
/// code serves a live stream and, later, binlog files.
pub struct Reader {
    cfg: Config,
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
    refused: Vec<(String, String)>,
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
        cfg: Config,
        shared: Arc<Shared>,
        pending: Sender<Vec<Change>>,
        start: Position,
    ) -> Self {
        Reader {
            schemas: SchemaCache::new(cfg.columns.clone()),
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

    /// A MySQL 8 compressed transaction (TRANSACTION_PAYLOAD_EVENT): its
    /// events, decompressed, go through `on_event` as if they stood where
    /// the payload stands, so positions and resumes work as for any other
    /// transaction (a resume re-reads and re-decompresses it).
    fn on_payload(&mut self, data: &[u8], start: u64, end: u64) -> Result<(), SourceError> {
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
                Err(e) if e.is_retriable() && !self.shared.stopping() => {
                    let since = *down_since.get_or_insert_with(std::time::Instant::now);
                    if self.cfg.mysql_hosts.len() > 1 && since.elapsed() >= self.cfg.failover_after
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
                        self.shared.set_down(false, Some(e.to_string()));
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
                    let deadline = std::time::Instant::now() + wait;
                    while std::time::Instant::now() < deadline && !self.shared.stopping() {
                        thread::sleep(std::time::Duration::from_millis(100));
                    }
                    if self.shared.stopping() {
                        return Ok(());
                    }
                }
                Err(SourceError::Gtid { detail })
                    if self.cfg.mysql_hosts.len() > 1 && !self.streaming =>
                {
                    self.pass_over(detail)?;
                    let resume = self.resume_position();
                    self.txn = None;
                    self.skip_next = resume.rows;
                    self.next_pos = resume.pos;
                    self.file = resume.file;
                }
                Err(e) => {
                    if self.shared.stopping() && e.is_retriable() {
                        return Ok(());
                    }
                    return Err(e);
                }
            }
        }
    }

    fn stream_from(
        &mut self,
        resume: &Position,
        attempt: &mut u32,
        outage_logged: &mut bool,
    ) -> Result<Flow, SourceError> {
        self.streaming = false;
        let mut conn = connect(&self.cfg)?;
        // Every connect checks what the first one checked: a server restarted
        // with binlog_format=MIXED in its config must stop the pipeline, not
        // have its statements skipped.
        let info = check_server(&mut conn, &self.cfg)?;
        let by_gtid = self.resume_by_gtid(&mut conn, &info, resume)?;
        // This server can resume the pipeline: a GTID refusal from here on
        // is about what it streams, not a reason to try another.
        self.streaming = true;
        self.refused.clear();
        self.announce_file = by_gtid.is_some();
        if by_gtid.is_none() {
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
                self.note_history(&mut conn);
            }
        }
        let cfg = &self.cfg.clone();
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
        let request = match &by_gtid {
            None => BinlogRequest::new(cfg.server_id)
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
                BinlogRequest::new(cfg.server_id)
                    .with_filename(Vec::new())
                    .with_pos(4u64)
            }
            Some(GtidState::Mysql(set)) => BinlogRequest::new(cfg.server_id)
                .with_use_gtid(true)
                .with_flags(mysql_common::packets::BinlogDumpFlags::BINLOG_THROUGH_GTID)
                .with_filename(Vec::new())
                .with_pos(4u64)
                .with_sids(mysql_sids(set)),
        };
        let gtid_refusal = |e: mysql::Error, state: &GtidState| -> SourceError {
            match e {
                mysql::Error::MySqlError(me) if me.code == 1236 => SourceError::Gtid {
                    detail: format!(
                        "the server at {}:{} cannot resume after GTID state {state}: {} It lacks transactions the pipeline needs (purged there, or its history diverged from the server the pipeline read). Resume on a server that has them (mysql.host), or re-snapshot the data, `binlog2kafka reset` the pipeline and set start.position",
                        cfg.mysql_host, cfg.mysql_port, me.message
                    ),
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
        self.shared.set_down(false, None);
        self.shared.progress.lock().read_file = resume.file.to_string();
        *self.shared.source.lock() = format!(
            "{}:{} (server_id {})",
            cfg.mysql_host, cfg.mysql_port, info.server_id
        );
        match &by_gtid {
            Some(st) => log::info!(
                "streaming binlog from {}:{} by GTID, after {}{} (its own file and offset follow when it names them)",
                cfg.mysql_host,
                cfg.mysql_port,
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
            if self.stopped || self.shared.stopping() {
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
            addr: format!("{}:{}", self.cfg.mysql_host, self.cfg.mysql_port),
            detail: "the server ended the binlog stream".into(),
        })
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> SourceError {
        SourceError::Corrupt {
            position: format!("{}:{}", self.file, self.next_pos),
            detail: detail.to_string(),
        }
    }

    /// Handles one event.
    pub fn on_event(&mut self, ev: &Event) -> Result<(), SourceError> {
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
        self.shared.read_pos.store(end, Ordering::Relaxed);
        if header.timestamp() > 0 {
            self.shared
                .read_ts
                .store(header.timestamp() as u64, Ordering::Relaxed);
        }
        // Events inside a compressed transaction have no checksum of their
        // own (the payload event's covered them).
        if self.payload_at.is_none() {
            if let Some(detail) = super::checksum::mismatch(ev) {
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
                return Ok(());
            }
        }
        match raw_type {
            MARIADB_GTID => {
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
                return Ok(());
            }
            MARIADB_GTID_LIST if self.state.is_none() && self.xa.rewind.is_none() => {
                // A file's first events: the binlog state at its start
                // (the last GTID per domain and server); the position is
                // each domain's newest.
                self.state = Some(Arc::new(GtidState::Maria(gtid_list_position(ev.data()))));
                self.next_pos = end;
                return Ok(());
            }
            PREVIOUS_GTIDS if self.txn.is_none() && self.xa.rewind.is_none() => {
                // MySQL: the executed set before this file, authoritative.
                match crate::gtid::previous_gtids(ev.data()) {
                    Some(set) => self.state = Some(Arc::new(GtidState::Mysql(set))),
                    None => log::warn!(
                        "unreadable PREVIOUS_GTIDS event at {}:{start}: the GTID state stays unknown until the next file",
                        self.file
                    ),
                }
                self.next_pos = end;
                return Ok(());
            }
            MARIADB_ANNOTATE_ROWS | MARIADB_GTID_LIST => {
                self.next_pos = end;
                return Ok(());
            }
            MARIADB_BINLOG_CHECKPOINT => {
                // The server writes one some time after a rotation: outside
                // a transaction the checkpoint moves past it, or an idle
                // pipeline would stay before it until the next write. Not
                // while rows of a resumed transaction are still to be
                // skipped: the checkpoint is inside that transaction.
                self.next_pos = end;
                if self.txn.is_none() && self.skip_next == 0 && !self.xa.skipping() {
                    let pos = self.here(self.next_pos, 0, None, self.state.clone());
                    self.marker(pos);
                }
                return Ok(());
            }
            MARIADB_QUERY_COMPRESSED => {
                // Handled exactly as the plain statement it stands for: DML
                // logged as a statement, DDL, XA, BEGIN and COMMIT alike.
                let plain =
                    super::compressed::query(self.fde.as_ref(), ev).map_err(|e| self.corrupt(e))?;
                let outer = self.payload_at.replace((start, end));
                let result = self.on_event(&plain);
                self.payload_at = outer;
                return result;
            }
            t if MARIADB_ROWS_COMPRESSED.contains(&t) => {
                // A filtered-out table's rows are not even inflated (the
                // post-header starts with the 6-byte table id).
                let table_id = ev
                    .data()
                    .get(..6)
                    .map(|b| b.iter().rev().fold(0u64, |acc, x| acc << 8 | *x as u64));
                if table_id.is_some_and(|id| self.filtered.contains(&id)) {
                    self.next_pos = end;
                    return Ok(());
                }
                let plain =
                    super::compressed::rows(self.fde.as_ref(), ev).map_err(|e| self.corrupt(e))?;
                let outer = self.payload_at.replace((start, end));
                let result = self.on_event(&plain);
                self.payload_at = outer;
                result?;
                self.next_pos = end;
                return Ok(());
            }
            t if t == EventType::FORMAT_DESCRIPTION_EVENT as u8 => {
                self.on_file_identity(FileId {
                    server_id: header.server_id(),
                    created: header.timestamp(),
                })?;
                self.file_server = Some(header.server_id());
                // Kept to read the events inside compressed transactions,
                // which are written without checksums.
                if let Ok(fde) = ev.read_event::<FormatDescriptionEvent<'_>>() {
                    let mut footer = ev.footer();
                    footer.set_checksum_enabled(false);
                    self.fde = Some(fde.into_owned().with_footer(footer));
                }
                self.next_pos = end;
                return Ok(());
            }
            xa::XA_PREPARE_EVENT => {
                self.next_pos = end;
                return self.on_xa_prepared();
            }
            EXECUTE_LOAD_QUERY => {
                self.next_pos = end;
                let sql = load_query_text(ev.data());
                return self.on_statement_dml(&sql, "", start);
            }
            t if t == EventType::TRANSACTION_PAYLOAD_EVENT as u8 => {
                // Parsed here, not by mysql_common, whose parser of this event
                // panics on some damaged payloads (found by fuzzing).
                self.on_payload(ev.data(), start, end)?;
                self.next_pos = end;
                return Ok(());
            }
            t if !DECODED.contains(&t) => {
                // Not needed for row changes (FORMAT_DESCRIPTION, PREVIOUS_GTIDS,
                // heartbeats, ...): never parsed, so their damage cannot hurt.
                log::debug!("skipping event type {raw_type} at {}:{start}", self.file);
                self.next_pos = end;
                return Ok(());
            }
            _ => {}
        }
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
            EventData::RotateEvent(r) => {
                // The server's artificial first ROTATE comes before the
                // FORMAT_DESCRIPTION, so the decoder does not know whether a
                // CRC32 trails the file name; MariaDB sends one even with
                // binlog_checksum=NONE. It is cut only where it is one.
                let raw = if ev.checksum().is_none() {
                    let body = super::checksum::strip_trailer(&header, ev.data());
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
                        self.cfg.mysql_host,
                        self.cfg.mysql_port,
                        r.position()
                    );
                } else if self.txn.is_none() && *self.file != *name.as_str() {
                    log::info!("binlog rotated to {name}");
                }
                // The server's first event is an artificial ROTATE to where we
                // asked to start: no movement, and a marker there would pull a
                // mid-transaction checkpoint back to the transaction's start.
                let moved = *self.file != *name.as_str() || self.next_pos != r.position();
                self.shared.progress.lock().read_file.clone_from(&name);
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
                return Ok(());
            }
            EventData::GtidEvent(g) => {
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
            }
            EventData::AnonymousGtidEvent(_) => self.begin_txn(start, None),
            EventData::QueryEvent(q) => {
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
                } else if super::ddl::classify(trimmed, &q.schema()).is_none()
                    && statement::classify(trimmed, &q.schema()).is_some()
                {
                    self.next_pos = end;
                    return self.on_statement_dml(trimmed, &q.schema(), start);
                } else if self.txn.as_ref().is_some_and(|t| t.explicit) {
                    // A DDL inside an event group: CREATE TABLE ... SELECT,
                    // whose rows follow in the same group.
                    self.schemas.invalidate_catalog();
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
            }
            EventData::TableMapEvent(t) => {
                if self.table_map_start.is_none() {
                    self.table_map_start = Some(start);
                }
                // Filtered out here, before any schema lookup: its rows
                // events are then skipped undecoded.
                if self.cfg.filter.allows(&t.database_name(), &t.table_name()) {
                    self.filtered.remove(&t.table_id());
                    let catalog = self.catalog.then_some(&self.cfg);
                    self.schemas.on_table_map(&t, catalog)?;
                } else {
                    self.filtered.insert(t.table_id());
                }
            }
            EventData::RowsEvent(rows) => {
                self.on_rows(&rows, start, header.timestamp(), header.server_id())?;
                self.table_map_start = None;
            }
            EventData::XidEvent(x) => {
                if let Some(t) = self.txn.as_mut() {
                    t.xid = Some(x.xid);
                }
                self.next_pos = end;
                return self.commit();
            }
            _ => {}
        }
        self.next_pos = end;
        Ok(())
    }

    fn begin_txn(&mut self, start: u64, gtid: Option<Arc<str>>) {
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
    fn state_after(&self) -> Option<Arc<GtidState>> {
        let mut s = self.state.clone()?;
        if let Some(g) = self.txn.as_ref().and_then(|t| t.adds.clone()) {
            apply_gtid(Arc::make_mut(&mut s), &g);
        }
        Some(s)
    }

    /// The GTID state as of the next event to read (tests, logs).
    pub fn gtid_state(&self) -> Option<String> {
        self.state.as_ref().map(|s| s.to_string())
    }

    /// Moves the reader to the next server of `mysql.host` after the one it
    /// read stayed unreachable for `mysql.failover_after_ms`.
    fn fail_over(&mut self, e: &SourceError, down: std::time::Duration) {
        let (host, port) = self.next_host();
        log::warn!(
            "MySQL at {}:{} unreachable for {:.1} s ({e}); failing over to {host}:{port}, resuming by GTID from {}",
            self.cfg.mysql_host,
            self.cfg.mysql_port,
            down.as_secs_f64(),
            self.resume_position()
                .state
                .map_or_else(|| "(no GTID state)".to_string(), |s| position_text(&s))
        );
        self.move_to(host, port);
    }

    /// The server after the current one in `mysql.host`.
    fn next_host(&self) -> (String, u16) {
        let hosts = &self.cfg.mysql_hosts;
        let at = hosts
            .iter()
            .position(|(h, p)| *h == self.cfg.mysql_host && *p == self.cfg.mysql_port)
            .unwrap_or(0);
        hosts[(at + 1) % hosts.len()].clone()
    }

    /// A server of `mysql.host` refused to be resumed on (`detail` says
    /// why: errant or skipped transactions, unrelated history, purged
    /// GTIDs): the next one is tried, and the pipeline stops only when
    /// none of them can resume it, with every server's reason.
    fn pass_over(&mut self, detail: String) -> Result<(), SourceError> {
        let here = format!("{}:{}", self.cfg.mysql_host, self.cfg.mysql_port);
        // Refused a second time: every other server refused too, or is
        // unreachable.
        let again = self.refused.iter().any(|(addr, _)| *addr == here);
        if !again {
            self.refused.push((here.clone(), detail.clone()));
        }
        if again || self.refused.len() >= self.cfg.mysql_hosts.len() {
            let why: Vec<String> = std::mem::take(&mut self.refused)
                .into_iter()
                .map(|(addr, detail)| format!("{addr}: {detail}"))
                .collect();
            let others = if why.len() < self.cfg.mysql_hosts.len() {
                "; the others are unreachable"
            } else {
                ""
            };
            return Err(SourceError::Gtid {
                detail: format!(
                    "no server of mysql.host can resume the pipeline{others}, so it stopped with the checkpoint where it was. {}",
                    why.join(" | ")
                ),
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
    fn move_to(&mut self, host: String, port: u16) {
        self.cfg = self.cfg.with_source(&host, port);
        self.schemas.reset_catalog();
        // Snapshot chunks were read on the old server, in its coordinates.
        if let Some(seam) = self.seam.as_mut() {
            seam.reset();
            self.stream_wait = None;
            self.plan_wait = None;
            self.shared.bump_snapshot_epoch();
        }
        self.shared
            .stats
            .failovers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.shared.source_cfg.lock() = Some((host, port));
    }

    /// Whether `resume` must be found on this server by GTID (it was read
    /// from another server, or names no file), and the state to ask for:
    /// the resume state, moved back where the server never received the
    /// newest transactions the pipeline already published (the old
    /// primary's lost tail, logged). Refuses what would lose or invent data:
    /// no GTID state, a server that never had the previous server's
    /// transactions, GTIDs in domains the previous server never wrote
    /// (errant transactions), MySQL GTIDs the server purged.
    fn resume_by_gtid(
        &mut self,
        conn: &mut mysql::Conn,
        info: &super::ServerInfo,
        resume: &Position,
    ) -> Result<Option<GtidState>, SourceError> {
        let read_from = self
            .file_server
            .or(self.expect_file.as_ref().map(|(_, id)| id.server_id));
        let elsewhere = resume.file.is_empty() || read_from.is_some_and(|s| s != info.server_id);
        if !elsewhere {
            return Ok(None);
        }
        let addr = format!("{}:{}", self.cfg.mysql_host, self.cfg.mysql_port);
        let Some(state) = resume.state.clone() else {
            return Err(SourceError::Gtid {
                detail: format!(
                    "cannot resume on {addr} (server_id {}): {resume} was read from server_id {} and carries no GTID state (gtid_mode OFF on MySQL, or a checkpoint written before binlog2kafka recorded GTIDs), and a file offset means nothing on another server. Run this pipeline against the server it read, or `binlog2kafka reset` it and set start.position=gtid:...",
                    info.server_id,
                    read_from.map_or_else(|| "?".into(), |s| s.to_string())
                ),
            });
        };
        // Another server's files: their names and identities are not ours.
        self.expect_file = None;
        self.seen_ids.clear();
        self.file_id = None;
        self.expect_gtid = (resume.rows > 0).then(|| resume.gtid.clone()).flatten();
        let cfg = &self.cfg;
        match &*state {
            GtidState::Maria(pos) => {
                let theirs: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_binlog_state")
                    .map_err(|e| classify(cfg, "reading gtid_binlog_state", e))?;
                let (connect, lost) = match maria_plan(pos, &maria_list(&theirs.unwrap_or_default())) {
                    MariaPlan::Resume { from, lost } => (from, lost),
                    MariaPlan::Errant(errant) => {
                    let errant: Vec<String> = errant.iter().map(|g| g.to_string()).collect();
                    return Err(SourceError::Gtid {
                        detail: format!(
                            "{addr} holds transactions in replication domains the server the pipeline read never had ({}): errant transactions written on it, which the old primary never made. Resuming there would publish them as if they had happened. Remove them from that server, or, to go on from it without them, `binlog2kafka reset` the pipeline and set start.position=gtid:{pos},{} (which steps over them)",
                            errant.join(","),
                            errant.join(",")
                        ),
                    });
                    }
                    MariaPlan::Skipped(skipped) => {
                        let skipped: Vec<String> = skipped.iter().map(|g| g.to_string()).collect();
                        return Err(SourceError::Gtid {
                            detail: format!(
                                "{addr} holds {}, which the pipeline never read, before the point it would resume from ({}): a transaction written on that server itself while it replicated (possible with gtid_strict_mode=OFF). Resuming there would skip it without a word. Apply its change where the consumers are (or re-snapshot the tables it touched) and then, to go on from that server, `binlog2kafka reset` the pipeline with start.position=gtid:{}; or resume on a server that does not hold it",
                                skipped.join(", "),
                                pos.position(),
                                pos.position()
                            ),
                        });
                    }
                    MariaPlan::Unrelated(g) => {
                        return Err(SourceError::Gtid {
                            detail: format!(
                                "{addr} holds no transaction of server_id {} in domain {}, where the pipeline is at {g}: it is not a replica of the server the pipeline read, or its binlog was reset. Resume on a server that has them (mysql.host), or re-snapshot and `binlog2kafka reset`",
                                g.server, g.domain
                            ),
                        })
                    }
                };
                if !lost.is_empty() {
                    log::warn!(
                        "{addr} never received {}, which binlog2kafka had already published from the previous server: asynchronous replication lost them with it (semi-synchronous replication avoids this), so consumers hold rows this server does not. Continuing from {connect}",
                        lost.join(", ")
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
                        detail: format!(
                            "cannot resume on {addr} by GTID: its gtid_mode is {}; failover between MySQL servers needs gtid_mode=ON (and enforce_gtid_consistency=ON) on all of them",
                            info.gtid_mode
                        ),
                    });
                }
                let purged: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_purged")
                    .map_err(|e| classify(cfg, "reading gtid_purged", e))?;
                let purged = MysqlSet::parse(&purged.unwrap_or_default()).unwrap_or_default();
                let missing = purged.minus(set);
                if !missing.is_empty() {
                    return Err(SourceError::Gtid {
                        detail: format!(
                            "{addr} has purged transactions the pipeline has not read yet ({missing}); resuming there would skip them. Resume on a server that still has them, or re-snapshot and `binlog2kafka reset`"
                        ),
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
    fn note_history(&mut self, conn: &mut mysql::Conn) {
        let Some(GtidState::Maria(pos)) = self.state.as_deref() else {
            return;
        };
        let Ok(Some(theirs)) = conn.query_first::<String, _>("SELECT @@GLOBAL.gtid_binlog_state")
        else {
            return;
        };
        let mut next = pos.clone();
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
    fn check_expected_gtid(&mut self, gtid: &str) -> Result<(), SourceError> {
        match self.expect_gtid.take() {
            Some(want) if *want != *gtid => Err(SourceError::Gtid {
                detail: format!(
                    "resuming inside transaction {want} on {}:{}, the server's next transaction is {gtid}: its history differs from the one the pipeline read. Resume on a server that has {want}, or re-snapshot and `binlog2kafka reset`",
                    self.cfg.mysql_host, self.cfg.mysql_port
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The first event of a binlog file names the server that wrote it and
    /// when: if that differs from what the checkpoint (or an earlier connect
    /// of this run) saw for the same file name, the server's binlog was
    /// replaced and the offset points into other data.
    fn on_file_identity(&mut self, id: FileId) -> Result<(), SourceError> {
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

    /// A row change logged as SQL: stop before it (or warn, with
    /// `mysql.on_statement_dml=warn`) when its table is published.
    fn on_statement_dml(&mut self, sql: &str, schema: &str, start: u64) -> Result<(), SourceError> {
        let dml = statement::classify(sql, schema);
        let table = dml.as_ref().and_then(|d| d.table.clone());
        let verb = dml.map_or("LOAD DATA", |d| d.verb.as_str());
        if let Some((db, t)) = &table {
            if !self.cfg.filter.allows(db, t) {
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
    fn on_xa_statement(&mut self, x: XaStatement, start: u64, end: u64) -> Result<(), SourceError> {
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
                self.shared.push_blocker(blocker, at.clone());
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
                    self.shared.ack_batch([(p.blocker, -1)]);
                }
                self.commit()
            }
        }
    }

    /// The XA_PREPARE event that ends a prepare group: the first time, note
    /// the prepare and hold the checkpoint before it; in a rewind, publish.
    fn on_xa_prepared(&mut self) -> Result<(), SourceError> {
        let Some(x) = self.txn.as_mut().and_then(|t| t.xa.take()) else {
            return self.commit();
        };
        if x.publish {
            return self.publish_rewound();
        }
        let at = self.txn_start_position();
        let blocker = self.next_seq();
        self.shared.push_blocker(blocker, at.clone());
        let xid = x.xid.unwrap_or_default();
        log::debug!("XA PREPARE {xid} at {at}: its rows wait for XA COMMIT or ROLLBACK");
        self.xa.prepared.insert(xid, xa::Prepared { at, blocker });
        if let Some(t) = self.txn.as_mut() {
            t.held.clear();
        }
        self.commit()
    }

    fn txn_start_position(&self) -> Position {
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
    fn start_rewind(&mut self, xid: String, blocker: u64, from: Position, end: u64) {
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
    fn publish_rewound(&mut self) -> Result<(), SourceError> {
        let Some(rw) = self.xa.rewind.as_mut() else {
            return self.commit();
        };
        rw.published = true;
        let (blocker, back_to) = (rw.blocker, rw.back_to.clone());
        let mut held = self.txn.take().map(|t| t.held).unwrap_or_default();
        match held.last_mut() {
            Some(last) => {
                last.commit = true;
                self.shared.link_ack(last.seq, blocker);
            }
            None => self.shared.ack_batch([(blocker, -1)]),
        }
        self.hand_on(held)?;
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
        });
        Ok(())
    }

    /// Takes a rewind an XA COMMIT asked for (offline replay, which has no
    /// stream to restart, reports it).
    pub fn take_rewind(&mut self) -> Option<(String, Position)> {
        let to = self.rewind_to.take()?;
        let rw = self.xa.rewind.take()?;
        self.shared.ack_batch([(rw.blocker, -1)]);
        Some((rw.xid, to))
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn on_rows(
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
                },
                None => Position {
                    file: self.file.clone(),
                    pos: txn.start,
                    rows: idx + 1,
                    gtid: txn.gtid.clone(),
                    state: txn.state.clone(),
                    file_id: self.file_id,
                    snapshot: self.plan.clone(),
                },
            };
            let change = RowChange {
                seq: 0,
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
            };
            self.seq += 1;
            let seq = self.seq;
            let txn = self.txn.as_mut().expect("transaction begun");
            txn.held.push(RowChange { seq, ..change });
            if txn.held.len() > self.cfg.txn_buffer_rows {
                // A large transaction: hand on all but the last row now; they
                // go without xid, which is not known until the commit.
                let last = txn.held.pop().expect("non-empty");
                let batch = std::mem::replace(&mut txn.held, vec![last]);
                self.hand_on(batch)?;
            }
        }
        self.shared
            .stats
            .rows_read
            .fetch_add(decoded, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A rows event whose before or after image lacks columns (written with
    /// binlog_row_image MINIMAL or NOBLOB) cannot give whole rows: the live
    /// stream stops before it; a replay of files warns once per table.
    fn check_images(
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

    /// Pushes rows onto the waiting queue, then sends them to the producer.
    fn hand_on(&mut self, batch: Vec<RowChange>) -> Result<(), SourceError> {
        self.send(batch.into_iter().map(Change::Row).collect())
    }

    /// Pushes changes onto the waiting queue, then sends them to the
    /// producer.
    fn send(&mut self, batch: Vec<Change>) -> Result<(), SourceError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Bounded memory: wait while what was read and not yet released
        // exceeds pipeline.max_in_flight_bytes (one batch always goes, so a
        // huge row cannot wedge the pipeline).
        let sizes: Vec<u32> = batch.iter().map(Change::footprint).collect();
        let bytes: u64 = sizes.iter().map(|&b| b as u64).sum();
        while self.wait_for_room
            && self.shared.in_flight_bytes() > 0
            && self.shared.in_flight_bytes() + bytes > self.cfg.max_in_flight_bytes
            && !self.shared.stopping()
        {
            thread::sleep(std::time::Duration::from_millis(1));
        }
        self.shared.push_batch(
            batch
                .iter()
                .zip(sizes)
                .map(|(c, b)| (c.seq(), c.checkpoint(), b)),
        );
        if self.pending.send(batch).is_err() {
            // The producer is gone: the pipeline is stopping.
            self.stopped = true;
        }
        Ok(())
    }

    /// A standalone statement ending at `next_pos`: with `kafka.ddl_topic`
    /// set, a DDL on a table the filter lets through goes to the producer,
    /// released like a row. Rows held for an implicit transaction go first,
    /// so the waiting queue stays in binlog order.
    fn on_ddl(
        &mut self,
        sql: &str,
        schema: &str,
        start: u64,
        (ts, server_id): (u32, u32),
        thread: u32,
    ) -> Result<(), SourceError> {
        if self.cfg.ddl_topic.is_none() {
            return Ok(());
        }
        let Some((kind, database, table)) = super::ddl::classify(sql, schema) else {
            return Ok(());
        };
        // A rename is published when either name is captured: a table
        // that leaves the captured tables, or comes back, says so.
        let captured = |(d, t): &(String, String)| self.cfg.filter.allows(d, t);
        let renamed_in_or_out = || match super::ddl::table_ddl(sql, schema) {
            Some(super::ddl::TableDdl::Rename(pairs)) => {
                pairs.iter().any(|(f, t)| captured(f) || captured(t))
            }
            _ => false,
        };
        if !table.is_empty() && !self.cfg.filter.allows(&database, &table) && !renamed_in_or_out() {
            return Ok(());
        }
        if let Some(txn) = self.txn.as_mut() {
            let held = std::mem::take(&mut txn.held);
            self.hand_on(held)?;
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
    fn snapshot_follows_ddl(&mut self, sql: &str, schema: &str, start: u64) {
        if self.seam.is_none() {
            return;
        }
        let Some(ddl) = super::ddl::table_ddl(sql, schema) else {
            return;
        };
        let plan = self.plan.clone().unwrap_or_default();
        let entering = self.cfg.snapshot_mode != crate::config::SnapshotMode::Never;
        let filter = &self.cfg.filter;
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
        self.shared.bump_snapshot_epoch();
    }

    /// Whether a snapshot is under way (or being asked for).
    fn snapshot_busy(&self) -> bool {
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
    fn seam_step(&mut self) -> Result<Option<Flow>, SourceError> {
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
            if msg.epoch() != self.shared.snapshot_epoch() {
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
                    let _ = reply.send(());
                    if first && self.cfg.format == crate::format::Format::Maxwell {
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
                    // Stay at this boundary until the view is open: its
                    // point is then at or after here.
                    let _ = reply.send(());
                    while let Some(seam) = self.seam.as_mut() {
                        match seam.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                            Ok(ToReader::Stream(w)) => {
                                self.stream_wait = Some(w);
                                break;
                            }
                            Ok(_) => break,
                            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                                if self.shared.stopping() {
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

    fn install_plan(&mut self, plan: Arc<Plan>) {
        if let Some(seam) = self.seam.as_mut() {
            seam.keep_only(&plan);
        }
        self.shared.set_snapshot_plan(Some(plan.clone()));
        self.plan = Some(plan);
    }

    /// A snapshot row (or, for Maxwell, a bootstrap-start/complete marker
    /// with no image) at the current boundary.
    fn snapshot_change(
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
    fn mark(table: &TablePlan, first: bool, last: bool) -> SnapshotMark {
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
    fn send_snapshot(
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
        self.shared.snapshot_sent(name, n, superseded, done);
        if done {
            self.log_table_done(name);
        }
        Ok(())
    }

    /// The last snapshot record (or a marker) carries the plan after it.
    fn close_with(&mut self, out: &mut [RowChange], plan: Arc<Plan>) {
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
    fn emit_chunk(&mut self, mut c: Chunk) -> Result<(), SourceError> {
        let superseded = self.seam.as_mut().map_or(0, |s| s.survivors(&mut c)) as u64;
        let now = (crate::checkpoint::now_ms() / 1000) as u32;
        let maxwell = self.cfg.format == crate::format::Format::Maxwell;
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

    fn log_table_done(&self, name: &str) {
        let p = self.shared.progress.lock();
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
    fn emit_stream(&mut self, w: Streaming) -> Result<(), SourceError> {
        let now = (crate::checkpoint::now_ms() / 1000) as u32;
        let maxwell = self.cfg.format == crate::format::Format::Maxwell;
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
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if !self.shared.stopping() => {}
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
        } else if !self.shared.stopping() {
            log::warn!("snapshot of {name} was cut short; it is read again from its beginning");
        }
        self.send_snapshot(&name, out, 0, done)
    }

    fn marker(&mut self, pos: Position) {
        let seq = self.next_seq();
        self.shared.push_marker(seq, pos);
    }

    /// Ends the current transaction: its held rows get the xid, the last one
    /// `commit: true`, and a marker releases the position after it.
    fn commit(&mut self) -> Result<(), SourceError> {
        if let Some(mut txn) = self.txn.take() {
            for r in txn.held.iter_mut() {
                r.xid = txn.xid;
            }
            if let Some(last) = txn.held.last_mut() {
                last.commit = true;
            }
            self.hand_on(std::mem::take(&mut txn.held))?;
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

/// Replaces the JSON diffs of a partial update's after image with the
/// documents they make of the before image's.
fn resolve_json_diffs(
    before: Option<&crate::event::RowImage>,
    after: Option<&mut crate::event::RowImage>,
) -> Result<(), String> {
    let Some(after) = after else { return Ok(()) };
    for i in 0..after.cells.len() {
        let crate::event::Cell::Diff { start, end } = after.cells[i] else {
            continue;
        };
        let diffs = after
            .buf
            .get(start as usize..end as usize)
            .ok_or("partial JSON update out of its event")?;
        let old = before
            .and_then(|b| b.cell(i))
            .ok_or_else(|| {
                format!(
                    "a partial JSON update of column {} whose document is not in the before image (written with binlog_row_image=MINIMAL or NOBLOB): the new document cannot be rebuilt; binlog2kafka needs binlog_row_image=FULL",
                    i + 1
                )
            })?;
        let doc = jsondiff::apply(old, diffs)?;
        after.cells[i] = crate::event::Cell::Json(doc.into());
    }
    Ok(())
}

/// Reads a decompressing `reader` to its end, refusing more than `limit`
/// bytes (a damaged size must not make the reader allocate without bound).
pub(super) fn inflate(
    reader: impl std::io::Read,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(reader, limit + 1), &mut out)
        .map_err(|e| format!("{what}: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("{what} inflates past {limit} bytes"));
    }
    Ok(out)
}

/// Largest decompressed transaction accepted (a damaged size field must
/// not make the reader allocate without bound).
pub(super) const MAX_PAYLOAD: u64 = 1 << 30;

/// The decompressed events of a TRANSACTION_PAYLOAD_EVENT body: fields
/// (type, length, value; MySQL's packed integers) up to an end mark, then
/// the payload, zstd-compressed or not.
fn transaction_payload(data: &[u8]) -> Result<Vec<u8>, String> {
    fn packed(b: &[u8], at: &mut usize) -> Result<u64, String> {
        let (v, n) = packed_int(b.get(*at..).unwrap_or(&[]))
            .ok_or("compressed transaction header: a packed integer is bad or cut short")?;
        *at += n;
        Ok(v)
    }
    let mut at = 0usize;
    let (mut compression, mut size, mut uncompressed) = (None, None, None);
    loop {
        let field = packed(data, &mut at)?;
        if field == 0 {
            break;
        }
        let len = packed(data, &mut at)? as usize;
        let value = data
            .get(at..at.saturating_add(len))
            .ok_or("compressed transaction header cut short")?;
        let mut v = 0usize;
        let n = packed(value, &mut v)?;
        match field {
            1 => size = Some(n),
            2 => compression = Some(n),
            3 => uncompressed = Some(n),
            _ => {}
        }
        at += len;
    }
    let body = &data[at..];
    if size.is_some_and(|s| s != body.len() as u64) {
        return Err(format!(
            "compressed transaction says {} bytes of payload, has {}",
            size.unwrap_or(0),
            body.len()
        ));
    }
    match compression {
        Some(255) => Ok(body.to_vec()),
        Some(0) => {
            let limit = uncompressed.unwrap_or(MAX_PAYLOAD).min(MAX_PAYLOAD);
            let decoder = ruzstd::decoding::StreamingDecoder::new(body)
                .map_err(|e| format!("compressed transaction: {e}"))?;
            inflate(decoder, limit, "compressed transaction")
        }
        other => Err(format!(
            "unknown compression type {other:?} of a compressed transaction"
        )),
    }
}

fn first_line(s: &str) -> &str {
    let l = s.lines().next().unwrap_or("");
    &l[..l.len().min(120)]
}

/// The statement of an EXECUTE_LOAD_QUERY event (LOAD DATA logged as a
/// statement): a Query event's layout with 13 more post-header bytes.
fn load_query_text(d: &[u8]) -> String {
    let text = (|| {
        let db_len = *d.get(8)? as usize;
        let vars = u16::from_le_bytes([*d.get(11)?, *d.get(12)?]) as usize;
        let at = 26 + vars + db_len + 1;
        d.get(at..).map(|q| String::from_utf8_lossy(q).into_owned())
    })();
    text.unwrap_or_else(|| "LOAD DATA".into())
}

/// A GTID state as a server resumes from it (MariaDB: the position only).
fn position_text(s: &GtidState) -> String {
    match s {
        GtidState::Maria(p) => p.position(),
        other => other.to_string(),
    }
}

/// Adds a transaction's GTID to a state of its family.
fn apply_gtid(state: &mut GtidState, g: &Gtid) {
    match (state, g) {
        (GtidState::Maria(p), Gtid::Maria(g)) => p.apply(*g),
        (GtidState::Mysql(s), Gtid::Mysql { uuid, tag, gno }) => s.add(uuid, tag, *gno),
        // A server of the other family's state: start it afresh.
        (st, Gtid::Maria(g)) => {
            let mut p = crate::gtid::MariaPos::default();
            p.apply(*g);
            *st = GtidState::Maria(p);
        }
        (st, Gtid::Mysql { uuid, tag, gno }) => {
            let mut s = MysqlSet::default();
            s.add(uuid, tag, *gno);
            *st = GtidState::Mysql(s);
        }
    }
}

/// The position (newest GTID per domain) a MariaDB GTID_LIST event's list
/// stands for: a count (28 bits) and flags, then domain u32, server u32,
/// sequence u64 per entry.
fn gtid_list_position(d: &[u8]) -> crate::gtid::MariaPos {
    let mut p = crate::gtid::MariaPos::default();
    let Some(head) = d.get(..4) else { return p };
    let n = (u32::from_le_bytes(head.try_into().expect("4 bytes")) & 0x0fff_ffff) as usize;
    for i in 0..n {
        let Some(e) = d.get(4 + i * 16..4 + i * 16 + 16) else {
            break;
        };
        let g = MariaGtid {
            domain: u32::from_le_bytes(e[0..4].try_into().expect("4 bytes")),
            server: u32::from_le_bytes(e[4..8].try_into().expect("4 bytes")),
            seq: u64::from_le_bytes(e[8..16].try_into().expect("8 bytes")),
        };
        if p.0.get(&g.domain).is_none_or(|old| old.seq < g.seq) {
            p.apply(g);
        }
    }
    p
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
