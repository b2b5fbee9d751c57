//! `binlog2kafka run`: the start-up ownership protocol (lease, fencing,
//! takeover), the resume point, spawning the stages and supervising them.

use super::*;

/// The newest checkpoint belongs to another instance that has not released
/// it. Waits until its lease (3 heartbeats since its last record) runs out:
/// if it writes again meanwhile it is alive, and this start is refused;
/// otherwise it died without releasing (kill -9, power loss) and this
/// instance takes over from its newest checkpoint.
///
/// Where the broker fences (`fences`), an owner on another host is taken
/// over once it has missed one heartbeat: the epoch bump makes the takeover
/// safe even if it still runs, and one missed heartbeat tells a dead owner
/// from a live one, so two daemons started by mistake do not take the
/// pipeline from each other in turn.
fn wait_for_lease(
    admin: &mut Client,
    cfg: &Config,
    mut rec: checkpoint::Record,
    signals: &Signals,
    fences: bool,
) -> Result<Option<checkpoint::Record>, AppError> {
    let lease_ms = if fences && !checkpoint::owner_runs_here(&rec.owner) {
        cfg.heartbeat_interval.as_millis() as u64 + 1000
    } else {
        3 * cfg.heartbeat_interval.as_millis() as u64
    };
    let first_seen = rec.ts_ms;
    let age = checkpoint::now_ms().saturating_sub(rec.ts_ms);
    if checkpoint::owner_gone_here(&rec.owner) {
        log::warn!(
            "pipeline '{}' was not released by {}, which no longer runs on this host (killed, or crashed); taking over from its checkpoint at once",
            cfg.pipeline_name,
            rec.owner
        );
        return Ok(Some(rec));
    }
    if age >= lease_ms {
        log::warn!(
            "pipeline '{}' was not released by {} (last heartbeat {:.1} s ago); taking over from its checkpoint",
            cfg.pipeline_name,
            rec.owner,
            age as f64 / 1000.0
        );
        return Ok(Some(rec));
    }
    log::info!(
        "pipeline '{}' is held by {} (last heartbeat {:.1} s ago); waiting up to {:.1} s to see whether it is still running",
        cfg.pipeline_name,
        rec.owner,
        age as f64 / 1000.0,
        (lease_ms - age) as f64 / 1000.0
    );
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if signals.stop_requested() {
            return Err(AppError::Interrupted);
        }
        let newest = checkpoint::read_latest(admin, &cfg.commit_topic, &cfg.pipeline_name)
            .map_err(kafka("reading the checkpoint"))?;
        match newest {
            Some(n) if n.released => return Ok(Some(n)),
            Some(n) if n.ts_ms > first_seen => {
                return Err(AppError::Locked {
                    pipeline: cfg.pipeline_name.clone(),
                    owner: n.owner.clone(),
                    age_ms: checkpoint::now_ms().saturating_sub(n.ts_ms),
                })
            }
            Some(n) => rec = n,
            None => return Ok(None),
        }
        let age = checkpoint::now_ms().saturating_sub(rec.ts_ms);
        if age >= lease_ms {
            log::warn!(
                "{} stopped without releasing pipeline '{}' (no heartbeat for {:.1} s); taking over from its checkpoint",
                rec.owner,
                cfg.pipeline_name,
                age as f64 / 1000.0
            );
            return Ok(Some(rec));
        }
    }
}

/// The data topic's partition count, creating the topic if it is missing.
pub(super) fn data_topic(admin: &mut Client, cfg: &Config) -> Result<usize, AppError> {
    Ok(
        match admin
            .partitions(&cfg.topic)
            .map_err(kafka("reading data topic metadata"))?
        {
            Some(n) => n,
            None => {
                admin
                    .create_topic(
                        &cfg.topic,
                        cfg.topic_partitions,
                        cfg.replication_factor,
                        &[],
                    )
                    .map_err(kafka("creating the data topic"))?;
                log::info!(
                    "created data topic {} (partitions: {})",
                    cfg.topic,
                    cfg.topic_partitions
                );
                admin
                    .partitions(&cfg.topic)
                    .map_err(kafka("reading data topic metadata"))?
                    .unwrap_or(cfg.topic_partitions as usize)
            }
        },
    )
}

/// Summary of a finished run.
pub struct RunSummary {
    pub rows: u64,
    pub last_checkpoint: Option<Position>,
}

/// The signals `run` answers. SIGTERM and SIGINT stop the pipeline
/// cleanly (flush, final checkpoint, exit 0); a second one while stopping
/// exits at once with status 1, the checkpoint as it is. SIGHUP is ignored
/// and logged: the daemon has no files to reopen (it logs to stderr), and
/// logrotate or an SSH logout must not stop it.
pub struct Signals {
    pub term: Arc<AtomicBool>,
    pub hup: Arc<AtomicBool>,
    /// Where code, not a signal handler, asks for the stop (a fleet's
    /// host): a token here, after `term` is set, wakes the pipeline's
    /// supervisor at once, and it need not look at the flag ten times a
    /// second.
    pub wake: Option<crossbeam_channel::Receiver<()>>,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for sig in [SIGTERM, SIGINT] {
            // Registered first: runs when `term` is already set, i.e. on
            // the second signal.
            signal_hook::flag::register_conditional_shutdown(sig, 1, term.clone())?;
            signal_hook::flag::register(sig, term.clone())?;
        }
        signal_hook::flag::register(SIGHUP, hup.clone())?;
        Ok(Signals {
            term,
            hup,
            wake: None,
        })
    }

    pub(super) fn stop_requested(&self) -> bool {
        if self.hup.swap(false, Ordering::SeqCst) {
            log::info!("SIGHUP received and ignored: binlog2kafka logs to stderr and has no files to reopen; stop it with SIGTERM");
        }
        self.term.load(Ordering::SeqCst)
    }
}

/// Runs the pipeline until SIGTERM/SIGINT or a thread fails.
pub fn run(cfg: Config, signals: Signals) -> Result<RunSummary, AppError> {
    // The status page first: a port in use is reported before anything is
    // claimed, and the page shows the start-up too.
    let shared = Arc::new(Shared::new());
    let status = crate::status::start(&cfg.status(), shared.clone()).map_err(AppError::Status)?;
    let result = run_pipeline(cfg, &signals, &shared);
    // Whatever ended the run, the status threads end with it.
    shared.stop.request();
    if let Some(s) = status {
        s.join();
    }
    result
}

/// One pipeline of a fleet, on the calling thread, stopped by `signals`
/// (its own flag, which the fleet sets): as `run` without a status page.
pub(super) fn run_embedded(
    cfg: Config,
    signals: &Signals,
    shared: &Arc<Shared>,
) -> Result<RunSummary, AppError> {
    run_pipeline(cfg, signals, shared)
}

fn run_pipeline(
    cfg: Config,
    signals: &Signals,
    shared: &Arc<Shared>,
) -> Result<RunSummary, AppError> {
    // MySQL first: a wrong setting is the likeliest mistake, and it costs
    // nothing on the Kafka side to find it.
    let (mut conn, target, info) = connect_source(&cfg)?;
    warn_of_kafka_security(&cfg);
    let mut admin = kafka_client(&cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    if let Ok(Some(t)) = admin.tls_session() {
        log::info!("Kafka over TLS: {}", t.negotiated);
    }
    let claim = claim(&cfg, &target, &mut admin, &mut conn, signals)?;
    // Snapshot requests written from now on are this run's to find.
    let requests_from = admin
        .offsets(&cfg.commit_topic, 0)
        .map_err(kafka("reading the commit-log topic"))?
        .1;
    let start = resume_point(
        &mut conn,
        &cfg,
        &target,
        &info,
        claim.latest.clone(),
        requests_from,
    )?;
    let mut start = start;
    let history = schema_history(
        &cfg, &mut admin, &mut conn, &target, &claim, &mut start, &info,
    )?;
    let (last_offset, writer) = record_start(&cfg, &mut admin, shared, &start, &claim)?;
    drop(conn);
    let stages = spawn_stages(
        &cfg,
        (target, history),
        shared,
        admin,
        start,
        claim,
        last_offset,
        writer,
    )?;
    supervise(shared, signals, &stages);
    stop(&cfg, shared, signals, stages)
}

/// The schema history the reader follows (see `source::history`): the one
/// the checkpoint names, recovered from the commit-log topic; else a new
/// capture at the server's current position, written there as version 1.
/// `start` then carries the version.
fn schema_history(
    cfg: &Config,
    admin: &mut Client,
    conn: &mut mysql::Conn,
    target: &Target,
    claim: &Claim,
    start: &mut Position,
    info: &ServerInfo,
) -> Result<(Follower, schema_store::Store), AppError> {
    let client = kafka_client(cfg, "schema").map_err(kafka("connecting for the schema history"))?;
    let mut store = schema_store::Store::open(
        client,
        &cfg.schema_topic,
        &cfg.pipeline_name,
        cfg.replication_factor,
        claim.fencing.as_ref(),
    )
    .map_err(kafka("opening the schema history topic"))?;
    let at = (start.file.to_string(), start.pos);
    // The checkpoint's history, when the pipeline resumes at it.
    let named = claim
        .latest
        .as_ref()
        .filter(|r| r.schema_version > 0 && r.file == *start.file && r.pos == start.pos);
    if let Some(rec) = named {
        let version = rec.schema_version;
        let history = match store
            .recover(version)
            .map_err(kafka("reading the schema history"))?
        {
            Some(h) => h,
            None => moved_history(cfg, admin, &mut store, version, &at)?,
        };
        log::info!(
            "schema history: {} tables recovered at version {version} from {}",
            history.tables.len(),
            cfg.schema_topic
        );
        let mut f = Follower::new(history, at);
        f.versions = version;
        return Ok((f, store));
    }
    let filter = &cfg.filter;
    let tracked = |d: &str, t: &str| !source::history::is_system(d) && filter.allows(d, t);
    let full = info.row_metadata.eq_ignore_ascii_case("FULL");
    let mut f = source::history::catalog::baseline(conn, target, &tracked, &at, full)?;
    f.versions = 1;
    let whole = schema_store::whole(&f.history, 1, &format!("{}:{}", f.since.0, f.since.1));
    store
        .start_over(&whole)
        .map_err(kafka("writing the schema history"))?;
    start.schema = 1;
    Ok((f, store))
}

/// The history a pipeline kept in the commit-log topic before
/// `kafka.schema_topic` existed, moved to the schema topic; none there
/// either: lost, and the start stops.
fn moved_history(
    cfg: &Config,
    admin: &mut Client,
    store: &mut schema_store::Store,
    version: u64,
    at: &(String, u64),
) -> Result<source::history::History, AppError> {
    let old = schema_store::legacy(admin, &cfg.commit_topic, &cfg.pipeline_name, version)
        .map_err(kafka("reading the schema history"))?;
    let Some((history, keys)) = old else {
        return Err(AppError::Source(SourceError::Setting {
            detail: format!(
                "the schema history of pipeline '{}' (version {version}, named by its checkpoint) is not in {}: the topic was deleted or its records removed. Nothing was read. To rebuild it, `binlog2kafka reset` the pipeline and start it at a position of your choice (a new capture there), then snapshot its tables again",
                cfg.pipeline_name, cfg.schema_topic
            ),
        }));
    };
    store
        .adopt(&history, version, &format!("{}:{}", at.0, at.1))
        .map_err(kafka("writing the schema history"))?;
    schema_store::forget_legacy(admin, &cfg.commit_topic, &keys)
        .map_err(kafka("removing the moved schema history"))?;
    log::info!(
        "schema history: moved version {version} ({} tables) from {} to {}",
        history.tables.len(),
        cfg.commit_topic,
        cfg.schema_topic
    );
    Ok(history)
}

/// Connects to the first reachable server of `mysql.host`, checks its
/// settings and says what it found.
fn connect_source(cfg: &Config) -> Result<(mysql::Conn, Target, ServerInfo), AppError> {
    let (mut conn, target) = source::connect_first(&cfg.source())?;
    let info: ServerInfo = source::check_server(&mut conn, &target)?;
    if let Some(t) = source::tls::session(&mut conn) {
        log::info!(
            "MySQL over TLS: {} {} (mysql.ssl_mode={})",
            t.version,
            t.cipher,
            cfg.mysql_tls.mode.name()
        );
    }
    log::info!(
        "connected to {} at {}:{} (server_id {}); binlog_row_metadata={}",
        info.version,
        target.host,
        target.port,
        info.server_id,
        if info.row_metadata.is_empty() {
            "(none)"
        } else {
            &info.row_metadata
        }
    );
    if !info.row_metadata.eq_ignore_ascii_case("FULL") {
        log::info!("binlog_row_metadata is {}: the binlog does not name columns, so names, keys and labels come from the schema history (captured from information_schema, then every DDL followed) and each table map is checked against it", if info.row_metadata.is_empty() { "NO_LOG (MariaDB's default) or absent" } else { &info.row_metadata });
    }
    Ok((conn, target, info))
}

/// Warnings of Kafka settings that weaken security.
fn warn_of_kafka_security(cfg: &Config) {
    if cfg
        .kafka_sasl
        .as_ref()
        .is_some_and(|s| s.mechanism == crate::kafka::sasl::Mechanism::Plain)
        && cfg.kafka_tls.is_none()
    {
        log::warn!("kafka.sasl.mechanism=PLAIN with kafka.security.protocol=sasl_plaintext sends the password in the clear; use sasl_ssl");
    }
    if cfg.kafka_tls.as_ref().is_some_and(|t| !t.verify_name) {
        log::warn!("kafka.ssl.endpoint.identification=none: the brokers' certificates are checked against the CAs but not against their names; anyone with a certificate from those CAs can pose as the broker");
    }
}

/// What claiming the pipeline found and took.
struct Claim {
    /// The checkpoint to resume from, as of after the takeover.
    latest: Option<checkpoint::Record>,
    /// The broker's fencing of earlier owners, where it offers it.
    fencing: Option<crate::kafka::Transactional>,
    owner: String,
}

/// The start-up ownership protocol: the commit-log topic, the newest
/// checkpoint, the wait for a previous owner's lease, the transactional id
/// that fences every earlier holder, and the server_id check.
fn claim(
    cfg: &Config,
    target: &Target,
    admin: &mut Client,
    conn: &mut mysql::Conn,
    signals: &Signals,
) -> Result<Claim, AppError> {
    checkpoint::ensure_topic(admin, &cfg.commit_topic, cfg.replication_factor)
        .map_err(kafka("preparing the commit-log topic"))?;
    let owner = checkpoint::instance_id();
    let latest = checkpoint::read_latest(admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("reading the checkpoint"))?;
    let taking_over = latest
        .as_ref()
        .is_some_and(|r| !r.released && !r.owner.is_empty());
    // The previous owner stopped or died on this host a moment ago: its
    // replica registration may linger on the server for a heartbeat.
    let predecessor_gone = latest
        .as_ref()
        .is_some_and(|r| checkpoint::owner_gone_here(&r.owner));
    let fences = admin
        .offers_transactions()
        .map_err(kafka("asking the broker what it offers"))?;
    let latest = match latest {
        Some(rec) if taking_over => wait_for_lease(admin, cfg, rec, signals, fences)?,
        other => other,
    };
    // Take the pipeline's transactional id: the broker fences every earlier
    // holder from here on, and the commit-log partition at once.
    let fencing_id = format!("binlog2kafka-{}", cfg.pipeline_name);
    let taken = if fences {
        admin
            .init_transactional(&fencing_id)
            .map(|t| t.expect("the broker offers transactions"))
            .and_then(|t| admin.fence(&t, &cfg.commit_topic, &[0]).map(|()| t))
    } else {
        Err(KafkaError::TooOld {
            broker: cfg.brokers.join(","),
            detail: "no transactions".into(),
        })
    };
    let fencing = match taken {
        Ok(t) => {
            log::info!(
                "transactional id {fencing_id} taken (producer {}, epoch {}): the broker refuses every earlier daemon of this pipeline from now on",
                t.producer.id,
                t.producer.epoch
            );
            Some(t)
        }
        Err(e) if fences && e.is_authorization() => {
            log::warn!("not allowed to use transactional id {fencing_id} ({e}): grant this user WRITE and DESCRIBE on that TransactionalId for fencing by the broker; until then a paused daemon is kept from writing by its lease alone, and a takeover waits for that lease to run out");
            None
        }
        Err(e) if fences => return Err(kafka("taking the pipeline's transactional id")(e)),
        Err(_) => {
            log::warn!("the broker offers no transactions (FindCoordinator, AddPartitionsToTxn, EndTxn): a paused daemon is kept from writing by its lease alone, and a takeover waits for that lease to run out");
            None
        }
    };
    // A takeover that counted on fencing and cannot have it waits out the
    // rest of the old owner's lease after all.
    let latest = match latest {
        Some(rec) if fences && fencing.is_none() && taking_over && !rec.released => {
            wait_for_lease(admin, cfg, rec, signals, false)?
        }
        other => other,
    };
    // What the predecessor wrote before it was fenced counts.
    let latest = match (&fencing, latest) {
        (Some(_), Some(rec)) if taking_over => Some(
            checkpoint::read_latest(admin, &cfg.commit_topic, &cfg.pipeline_name)
                .map_err(kafka("reading the checkpoint"))?
                .unwrap_or(rec),
        ),
        (_, other) => other,
    };
    // A replica already using our server_id is another pipeline's, unless
    // this start takes over from an owner that never released: then it is
    // most likely that owner, paused or dying, and the server drops it as
    // this one connects.
    if !taking_over && !predecessor_gone && !source::ensure_unique_server_id(conn, target)? {
        log::info!("cannot list the server's replicas (SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB): a second replica with mysql.server_id {} would only be noticed when the server drops one", cfg.server_id);
    }
    Ok(Claim {
        latest,
        fencing,
        owner,
    })
}

/// Where the pipeline starts: its checkpoint (or, when that binlog is
/// purged and snapshot.mode=when_needed, a new snapshot at the server's
/// newest position), else `start.position`; with its snapshot plan.
fn resume_point(
    conn: &mut mysql::Conn,
    cfg: &Config,
    target: &Target,
    info: &ServerInfo,
    latest: Option<checkpoint::Record>,
    requests_from: i64,
) -> Result<Position, AppError> {
    let mut start = match latest {
        Some(rec) => {
            // A checkpoint read from another server of the cluster is found
            // here by its GTID state (the reader); its offset means nothing.
            let elsewhere =
                rec.file.is_empty() || rec.file_id.is_some_and(|id| id.server_id != info.server_id);
            let kept = if elsewhere {
                Ok(())
            } else {
                source::ensure_event_start(conn, target, &rec.file, rec.pos, "the checkpoint")
            };
            match kept {
                Err(SourceError::Purged { file, oldest, .. })
                    if cfg.snapshot_mode == crate::config::SnapshotMode::WhenNeeded =>
                {
                    // snapshot.mode=when_needed: the changes since the
                    // checkpoint are gone; the tables are read again and the
                    // stream goes on from the server's newest position.
                    let (head, pos) = source::head_position(conn, target)?;
                    let old = rec.position();
                    let mut plan = source::snapshot::initial_plan(
                        conn,
                        target,
                        source::snapshot::plan::Reason::Purged,
                        requests_from,
                    )?;
                    if let Some(prev) = old.snapshot.as_deref() {
                        plan.requests_from = prev.requests_from;
                        plan.taken = prev.taken.clone();
                    }
                    log::warn!(
                        "the checkpoint's binlog {file} has been purged (oldest kept: {oldest}): changes since {old} are lost, so snapshot.mode=when_needed snapshots {} tables again and streams on from {head}:{pos}",
                        plan.tables.len()
                    );
                    Position {
                        snapshot: Some(Arc::new(plan)),
                        ..Position::at(&head, pos)
                    }
                }
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    let p = rec.position();
                    log::info!(
                        "resuming pipeline '{}' from checkpoint {p}",
                        cfg.pipeline_name
                    );
                    p
                }
            }
        }
        None => {
            let (file, pos) = source::resolve_start(conn, target, &info.binlogs)?;
            let state = match &cfg.start_position {
                crate::config::StartPosition::Gtid(s) => Some(Arc::new(s.clone())),
                _ => {
                    source::ensure_event_start(conn, target, &file, pos, "start.position")?;
                    None
                }
            };
            let plan = match cfg.snapshot_mode {
                crate::config::SnapshotMode::Never => None,
                _ => {
                    let plan = source::snapshot::initial_plan(
                        conn,
                        target,
                        source::snapshot::plan::Reason::Initial,
                        requests_from,
                    )?;
                    log::info!(
                        "snapshot.mode={}: the pipeline's first start snapshots {} tables, then streams on",
                        if cfg.snapshot_mode == crate::config::SnapshotMode::Initial {
                            "initial"
                        } else {
                            "when_needed"
                        },
                        plan.tables.len()
                    );
                    Some(Arc::new(plan))
                }
            };
            let p = Position {
                state,
                snapshot: plan,
                ..Position::at(&file, pos)
            };
            log::info!(
                "no checkpoint for pipeline '{}'; starting at {p} (start.position), recorded as its first checkpoint",
                cfg.pipeline_name
            );
            p
        }
    };
    if start.snapshot.is_none() {
        start.snapshot = Some(Arc::new(source::snapshot::plan::Plan {
            requests_from,
            ..Default::default()
        }));
    }
    Ok(start)
}

/// Claims the pipeline in the commit-log topic with the start position,
/// before anything is read: a crash before the first periodic checkpoint
/// must resume here, not at a new `latest` that would skip what was
/// written in between.
fn record_start(
    cfg: &Config,
    admin: &mut Client,
    shared: &Arc<Shared>,
    start: &Position,
    claim: &Claim,
) -> Result<(i64, checkpoint::Writer), AppError> {
    // Claim the pipeline, and record the start before reading anything: a
    // crash before the first periodic checkpoint must resume here, not at a
    // new `latest` that would skip what was written in between.
    let first = checkpoint::Record::new(&cfg.pipeline_name, start, &claim.owner);
    let mut writer = match &claim.fencing {
        Some(t) => checkpoint::Writer::fenced_by(t.producer),
        None => checkpoint::Writer::default(),
    };
    let last_offset = writer
        .write(admin, &cfg.commit_topic, &first)
        .map_err(kafka("recording the start position"))?;
    shared
        .lease
        .renew(first.ts_ms, 2 * cfg.heartbeat_interval.as_millis() as u64);

    Ok((last_offset, writer))
}

/// The threads of a running pipeline.
struct Stages {
    reader: Handle<Result<(), SourceError>>,
    producer: Handle<Result<(), PipelineError>>,
    watcher: Handle<Result<watcher::WatcherOutcome, PipelineError>>,
    snapshot: Handle<Result<(), SourceError>>,
    guard: Handle<()>,
    /// Where each thread reports its end.
    exits: Receiver<&'static str>,
    /// Dropped when nothing else can acknowledge: the watcher's final pass.
    finish_tx: crossbeam_channel::Sender<()>,
    /// `host:port` of the server the reader started on.
    first_read: String,
}

/// Checks the data topic, then starts the watcher, producer, snapshot,
/// reader and guard threads.
#[allow(clippy::too_many_arguments)]
fn spawn_stages(
    cfg: &Config,
    (target, mut history): (Target, (Follower, schema_store::Store)),
    shared: &Arc<Shared>,
    mut admin: Client,
    start: Position,
    claim: Claim,
    last_offset: i64,
    writer: checkpoint::Writer,
) -> Result<Stages, AppError> {
    let Claim { fencing, owner, .. } = claim;
    let owner_id = owner.clone();
    // A fixed data topic is checked (or created) now, so a broker that
    // refuses it stops the start; templated topics are made on first use.
    let partitions = if cfg.topic.contains('{') {
        None
    } else {
        Some(data_topic(&mut admin, cfg)?)
    };
    let producer_client =
        kafka_client(cfg, "producer").map_err(kafka("connecting the producer"))?;

    shared.board.progress.lock().read_file = start.file.to_string();
    shared.board.read_pos.store(start.pos, Ordering::Relaxed);
    let (pending_tx, pending_rx) = crossbeam_channel::bounded(cfg.pending_events);
    let (finish_tx, finish_rx) = crossbeam_channel::bounded::<()>(0);
    let (exit, exits) = handle::exits();
    let watcher = watcher::spawn(
        cfg.watcher(),
        shared.clone(),
        admin,
        watcher::WatcherStart {
            position: start.clone(),
            owner,
            last_offset,
            writer,
            fencing_id: fencing.as_ref().map(|t| t.id.clone()),
            pruner: history.1.pruner(),
        },
        finish_rx,
        exit.clone(),
    );
    let producer = producer::spawn(
        cfg.producer(),
        shared.clone(),
        pending_rx,
        producer_client,
        start.clone(),
        fencing,
        exit.clone(),
    );
    let (snap_tx, snap_rx) = crossbeam_channel::bounded(1);
    let snapshot_client =
        kafka_client(cfg, "snapshot").map_err(kafka("connecting the snapshot thread"))?;
    let snapshot = crate::pipeline::snapshot::spawn(
        cfg.reader(),
        shared.clone(),
        snap_tx,
        start.snapshot.as_deref().cloned().unwrap_or_default(),
        snapshot_client,
        owner_id.clone(),
        exit.clone(),
    );
    shared.reading.set_snapshot_plan(start.snapshot.clone());
    let first_read = target.addr();
    let reader = reader::spawn(
        cfg.reader(),
        shared.clone(),
        pending_tx,
        reader::Start {
            position: start,
            target,
            snapshots: Some(snap_rx),
            history: Some(history),
        },
        exit.clone(),
    );
    let guard = crate::pipeline::guard::spawn(cfg.source(), shared.clone(), exit);
    log::info!(
        "pipeline '{}' running: {} -> {} ({}; format {:?}), checkpoints to {}",
        cfg.pipeline_name,
        first_read,
        cfg.topic,
        match partitions {
            Some(n) => format!("{n} partitions"),
            None => "topics made on first use".into(),
        },
        cfg.format,
        cfg.commit_topic
    );

    Ok(Stages {
        reader,
        producer,
        watcher,
        snapshot,
        guard,
        exits,
        finish_tx,
        first_read,
    })
}

/// Waits for a signal, a stop, or the end of the reader or the producer
/// (the first cause wins), reporting progress every minute.
fn supervise(shared: &Arc<Shared>, signals: &Signals, stages: &Stages) {
    // Signals arrive as a flag (set by the handler), so they are looked at
    // on a tick; everything else wakes the select itself (a stop asked by
    // code through `wake`, too: then the tick only times the report).
    let never = crossbeam_channel::never();
    let wake = signals.wake.as_ref().unwrap_or(&never);
    let ticker = crossbeam_channel::tick(if signals.wake.is_some() {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(100)
    });
    let mut last_report = std::time::Instant::now();
    loop {
        crossbeam_channel::select! {
            recv(stages.exits) -> ended => {
                // The other threads report a failure through the stop.
                if ended.is_ok_and(|name| name == stages.reader.name() || name == stages.producer.name()) {
                    return;
                }
            }
            recv(shared.stop.signal()) -> _ => return,
            recv(wake) -> _ => {
                log::info!("asked to stop: stopping the reader, flushing what is in flight");
                shared.stop.request();
                return;
            }
            recv(ticker) -> _ => {
                if signals.stop_requested() {
                    log::info!("signal received: stopping the reader, flushing what is in flight");
                    shared.stop.request();
                    return;
                }
                if last_report.elapsed() >= Duration::from_secs(60) {
                    last_report = std::time::Instant::now();
                    log::info!(
                        "{} rows read, {} sent; waiting queue {}; checkpoint {}",
                        shared.board.stats.rows_read.load(Ordering::Relaxed),
                        shared.board.stats.rows_acked.load(Ordering::Relaxed),
                        shared.ledger.depth(),
                        shared
                            .ledger
                            .released()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
    }
}

/// Stops every thread within `pipeline.shutdown_timeout_ms` and returns
/// what the run did, or its first failure.
fn stop(
    cfg: &Config,
    shared: &Arc<Shared>,
    signals: &Signals,
    stages: Stages,
) -> Result<RunSummary, AppError> {
    let Stages {
        reader,
        producer,
        watcher,
        snapshot,
        guard,
        exits,
        finish_tx,
        first_read,
    } = stages;
    shared.stop.request();
    // The stop as a whole is bounded by pipeline.shutdown_timeout_ms: past
    // it the threads are left behind (the process exits), and what Kafka
    // had not acknowledged stays after the checkpoint.
    let deadline = std::time::Instant::now() + cfg.shutdown_timeout;
    let mut finish_tx = Some(finish_tx);
    loop {
        signals.stop_requested();
        if reader.is_finished() && producer.is_finished() {
            // The watcher's final pass starts once nothing else can ack.
            finish_tx.take();
            if watcher.is_finished() && guard.is_finished() && snapshot.is_finished() {
                break;
            }
        }
        if std::time::Instant::now() >= deadline {
            let waiting_for = if !reader.is_finished() {
                format!("MySQL at {first_read}")
            } else {
                let why = shared
                    .board
                    .progress
                    .lock()
                    .kafka_down
                    .as_ref()
                    .map(|(_, w)| format!(": {w}"))
                    .unwrap_or_default();
                format!("broker {}{why}", cfg.brokers.join(","))
            };
            return Err(AppError::StopTimeout {
                ms: cfg.shutdown_timeout.as_millis(),
                waiting_for,
            });
        }
        // The next thread to end wakes this; the timeout bounds the
        // deadline's lateness and keeps signals answered.
        let _ = exits.recv_timeout(Duration::from_millis(20));
    }
    let reader_result = reader.join();
    let producer_result = producer.join();
    let watcher_result = watcher.join();
    guard.join();
    // Its failure, if any, went to `shared.stop.fail`.
    let _ = snapshot.join();

    // The first failure is the cause; later ones are its consequences. A
    // takeover is the cause of a producer held by its lapsed lease.
    if let Some(e) = shared.stop.take_cause() {
        return Err(e.into());
    }
    if let (Err(PipelineError::LeaseLapsed), Err(w)) = (&producer_result, &watcher_result) {
        return Err(AppError::Pipeline(match w {
            PipelineError::Fenced { other } => PipelineError::Fenced {
                other: other.clone(),
            },
            _ => PipelineError::LeaseLapsed,
        }));
    }
    reader_result?;
    producer_result?;
    let outcome = watcher_result?;
    Ok(RunSummary {
        rows: shared.board.stats.rows_acked.load(Ordering::Relaxed),
        last_checkpoint: outcome.last_written.or_else(|| shared.ledger.released()),
    })
}
