//! The commands that act on a pipeline from outside: `reset`, `snapshot`
//! (a request through the commit-log topic), and `replay` into Kafka.

use super::*;

/// `binlog2kafka reset`: removes the pipeline's checkpoint (a tombstone for
/// its key in the commit-log topic), so the next start begins at
/// `start.position`. Refused while a daemon holds the pipeline's lease.
pub fn reset(cfg: &Config) -> Result<String, AppError> {
    let mut admin = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    let latest = checkpoint::read_latest(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("reading the checkpoint"))?;
    let Some(rec) = latest else {
        return Ok(format!(
            "pipeline '{}' has no checkpoint in {}: nothing to reset; it starts at start.position",
            cfg.pipeline_name, cfg.commit_topic
        ));
    };
    let lease_ms = 3 * cfg.heartbeat_interval.as_millis() as u64;
    let age = checkpoint::now_ms().saturating_sub(rec.ts_ms);
    if !rec.released && !rec.owner.is_empty() && age < lease_ms {
        return Err(AppError::Refused(format!(
            "pipeline '{}' is held by {} (last heartbeat {:.1} s ago): stop that daemon before resetting it (if it died, its lease runs out {:.1} s after its last heartbeat)",
            cfg.pipeline_name,
            rec.owner,
            age as f64 / 1000.0,
            lease_ms as f64 / 1000.0
        )));
    }
    checkpoint::write_tombstone(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("writing the reset to the commit-log topic"))?;
    Ok(format!(
        "pipeline '{}' reset: its checkpoint {} is removed from {}; the next start begins at start.position ({})",
        cfg.pipeline_name,
        rec.position(),
        cfg.commit_topic,
        start_text(&cfg.start_position)
    ))
}

/// `binlog2kafka snapshot`: writes a snapshot request into the commit-log
/// topic, where the running daemon looks for them, and waits up to `wait`
/// for its answer.
pub fn request_snapshot(
    cfg: &Config,
    tables: &[String],
    condition: Option<String>,
    wait: Duration,
) -> Result<String, AppError> {
    use crate::pipeline::snapshot::{ack_key, request_key, Ack, Request};
    use source::snapshot::condition::Condition;
    // Refused here before anything is written; the daemon checks it again
    // against each table's columns (the topic is not trusted).
    if let Some(c) = &condition {
        Condition::parse(c).map_err(|e| {
            AppError::Refused(format!(
                "--where refused: {e}. A condition is a boolean expression over the table's own columns: comparisons, AND/OR/NOT, IN (...), BETWEEN, LIKE, IS [NOT] NULL, 'strings', numbers and a few pure functions"
            ))
        })?;
    }
    let mut admin = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    // A pipeline that never ran looks for requests from its first start on:
    // its first snapshot is snapshot.mode's.
    if checkpoint::read_latest(&mut admin, &cfg.commit_topic, &cfg.pipeline_name)
        .map_err(kafka("reading the checkpoint"))?
        .is_none()
    {
        return Err(AppError::Refused(format!(
            "pipeline '{}' has no checkpoint in {}: it has never run (or was reset), so there is no running pipeline to ask; for its first start, set snapshot.mode=initial",
            cfg.pipeline_name, cfg.commit_topic
        )));
    }
    let id = checkpoint::instance_id()
        .split('/')
        .take(3)
        .collect::<Vec<_>>()
        .join("-");
    let req = Request {
        id: id.clone(),
        tables: tables.to_vec(),
        condition,
        requested_ms: checkpoint::now_ms(),
    };
    let at = admin
        .produce(
            &cfg.commit_topic,
            0,
            &[crate::kafka::OutRecord {
                key: Some(request_key(&cfg.pipeline_name, &id).into_bytes().into()),
                value: Some(serde_json::to_vec(&req).expect("serializes").into()),
                timestamp_ms: req.requested_ms as i64,
                headers: Vec::new(),
            }],
        )
        .map_err(kafka("writing the snapshot request"))?;
    let want = ack_key(&cfg.pipeline_name, &id);
    let deadline = std::time::Instant::now() + wait;
    let mut from = at + 1;
    while std::time::Instant::now() < deadline {
        let recs = admin
            .fetch(&cfg.commit_topic, 0, from, 1 << 20)
            .map_err(kafka("waiting for the daemon's answer"))?;
        for r in &recs {
            if r.key.as_deref() == Some(want.as_bytes()) {
                let ack: Ack = r
                    .value
                    .as_deref()
                    .and_then(|v| serde_json::from_slice(v).ok())
                    .ok_or_else(|| AppError::Refused("the daemon's answer is unreadable".into()))?;
                let mut said = format!(
                    "snapshot request {id} taken by {} for pipeline '{}': {}",
                    ack.owner,
                    cfg.pipeline_name,
                    if ack.tables.is_empty() {
                        "no table to read".to_string()
                    } else {
                        ack.tables.join(", ")
                    }
                );
                if !ack.refused.is_empty() {
                    said.push_str(&format!("; not read: {}", ack.refused.join("; ")));
                }
                said.push_str("; progress on the status page and in its log");
                return if ack.tables.is_empty() {
                    Err(AppError::Refused(said))
                } else {
                    Ok(said)
                };
            }
        }
        match recs.last() {
            Some(r) => from = r.offset + 1,
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Err(AppError::Refused(format!(
        "no running binlog2kafka took snapshot request {id} for pipeline '{}' within {} s; it stays in {} and the pipeline takes it when it next runs",
        cfg.pipeline_name,
        wait.as_secs(),
        cfg.commit_topic
    )))
}

/// `replay` into the data topic: the files' rows through the same producer
/// (batches, partitioning, retries) as a live run. It writes no checkpoint:
/// a replay is one pass over the files given.
/// What `replay` is told: with `--schema-file`, the definitions of that
/// file; with `--schema-from`, the configured server's, as of now; the DDL
/// in the files is followed from either.
pub fn replay_settings(
    cfg: &Config,
    schema_from: bool,
    schema_file: Option<&std::path::Path>,
) -> Result<crate::replay::Settings, AppError> {
    let mut settings = cfg.replay();
    let tracked =
        |d: &str, t: &str| !crate::source::history::is_system(d) && cfg.filter.allows(d, t);
    if let Some(path) = schema_file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            AppError::Replay(crate::replay::ReplayError::Schema {
                file: shown.clone(),
                detail: e.to_string(),
            })
        })?;
        let history = crate::source::history::History::from_sql(&text).map_err(|detail| {
            AppError::Replay(crate::replay::ReplayError::Schema {
                file: shown.clone(),
                detail,
            })
        })?;
        log::info!("schema: {} tables from {shown}", history.tables.len());
        settings.history = Some(history);
    } else if schema_from {
        let target = cfg.first_target();
        let mut conn = source::connect(&target)?;
        let history = crate::source::history::catalog::read(&mut conn, &target, &tracked)?;
        log::info!(
            "schema: {} tables from {} (as they are now; the files' DDL is followed from there)",
            history.tables.len(),
            target.addr()
        );
        settings.history = Some(history);
    }
    Ok(settings)
}

pub fn replay_to_kafka(
    cfg: &Config,
    settings: &crate::replay::Settings,
    paths: &[&std::path::Path],
    catalog: bool,
) -> Result<crate::replay::ReplaySummary, AppError> {
    let mut admin = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    if !cfg.topic.contains('{') {
        super::run::data_topic(&mut admin, cfg)?;
    }
    let client = kafka_client(cfg, "producer").map_err(kafka("connecting the producer"))?;
    let shared = Arc::new(Shared::new());
    let (tx, rx) = crossbeam_channel::bounded(cfg.pending_events);
    let first = paths
        .first()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let start = Position::at(&first, 4);
    let (exit, _) = crate::pipeline::handle::exits();
    let producer = producer::spawn(
        cfg.producer(),
        shared.clone(),
        rx,
        client,
        start,
        None,
        exit,
    );
    let replayed = crate::replay::replay_files_to(
        settings,
        paths,
        catalog,
        &mut crate::replay::Sink::Producer {
            pending: &tx,
            shared: &shared,
        },
    );
    drop(tx);
    let produced = producer.join();
    // A producer failure is the cause of a replay that could not send.
    produced.map_err(AppError::Pipeline)?;
    let summary = replayed.map_err(AppError::Replay)?;
    log::info!(
        "replayed into {}: {} rows acknowledged",
        cfg.topic,
        shared.board.stats.rows_acked.load(Ordering::Relaxed)
    );
    Ok(summary)
}
