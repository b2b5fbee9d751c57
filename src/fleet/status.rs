//! One place to look: every host writes what its pipelines do to the
//! fleet's compacted status topic (`fleet.status_topic`) every
//! [`EVERY`], and reads what the others write, so any host's page (and
//! `binlog2kafka fleet status`) shows the whole fleet.
//!
//! The [`Board`] is what a host's threads share: the runner registers the
//! pipelines it starts, stops and sees fail; the reporter thread samples
//! them, writes their records and reads everyone's; the HTTP thread
//! renders from it. Each record carries its pipeline's last hour, so the
//! host that takes a pipeline over carries its charts on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::View;
use crate::kafka::{Client, KafkaError, OutRecord};
use crate::pipeline::handle::{self, Handle};
use crate::pipeline::Shared;
use crate::status::fleet::{FleetView, PipelineStatus};
use crate::status::{self, History, Measured, Reply, Sampler};

/// How often a host writes its pipelines' records.
pub const EVERY: Duration = Duration::from_secs(10);

/// A record older than this says its host went silent.
pub const STALE: Duration = Duration::from_secs(30);

/// A pipeline this host runs, as the pages need it.
struct Local {
    shared: Arc<Shared>,
    settings: status::Settings,
    measured: Measured,
}

#[derive(Default)]
struct Inner {
    local: BTreeMap<String, Local>,
    /// Pipelines of this host that failed, and why.
    failed: BTreeMap<String, String>,
    view: View,
    /// The newest record of every pipeline, from the topic.
    statuses: BTreeMap<String, PipelineStatus>,
}

/// What a host's threads share about its fleet.
pub struct Board {
    fleet: String,
    host: String,
    /// `http://host:port` of this host's page, when it serves one.
    page_base: Option<String>,
    inner: Mutex<Inner>,
}

impl Board {
    pub fn new(fleet: &str, host: &str, page_base: Option<String>) -> Board {
        Board {
            fleet: fleet.to_string(),
            host: host.to_string(),
            page_base,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// `name` started on this host.
    pub fn started(&self, name: &str, shared: Arc<Shared>, settings: status::Settings) {
        let mut g = self.inner.lock();
        g.failed.remove(name);
        g.local.insert(
            name.to_string(),
            Local {
                shared,
                settings,
                measured: Measured::default(),
            },
        );
    }

    /// `name` no longer runs here (handed over, deleted, paused).
    pub fn stopped(&self, name: &str) {
        let mut g = self.inner.lock();
        g.local.remove(name);
        g.failed.remove(name);
    }

    /// `name` failed here; it waits for its retry.
    pub fn failed(&self, name: &str, error: &str) {
        let mut g = self.inner.lock();
        g.local.remove(name);
        g.failed.insert(name.to_string(), error.to_string());
    }

    /// What the member loop knows now.
    pub fn view(&self, view: &View) {
        self.inner.lock().view = view.clone();
    }

    /// The last hour of `name` as the newest record left it.
    fn history_of(&self, name: &str) -> History {
        self.inner
            .lock()
            .statuses
            .get(name)
            .map(|s| s.history.clone())
            .unwrap_or_default()
    }

    fn page_of(&self, name: &str) -> Option<String> {
        self.page_base
            .as_ref()
            .map(|b| format!("{b}/pipeline/{}", crate::url::path_part(name)))
    }

    /// The host's pages: the fleet (`/`), each of its own pipelines
    /// (`/pipeline/NAME`, as a single pipeline's page), `/metrics` (its
    /// own pipelines, labelled), `/healthz` (a member of the group).
    pub fn route(&self, path: &str) -> Reply {
        let g = self.inner.lock();
        let now_ms = crate::clock::now_ms();
        match path {
            "/" | "/index.html" => Reply::html(self.fleet_view(&g, now_ms).html()),
            "/metrics" => {
                let snaps: Vec<status::Snapshot> = g
                    .local
                    .values()
                    .map(|l| status::snapshot(&l.settings, &l.shared, &l.measured))
                    .collect();
                let mut body = status::render_metrics_labelled(&snaps);
                for (name, help, v) in [
                    (
                        "fleet_members",
                        "Hosts in the fleet's group, as this host last heard.",
                        g.view.members as f64,
                    ),
                    (
                        "fleet_pipelines_here",
                        "Pipelines the group gave this host.",
                        g.view.assigned.len() as f64,
                    ),
                    (
                        "fleet_pipelines_failed_here",
                        "Pipelines of this host that failed and wait for their retry.",
                        g.failed.len() as f64,
                    ),
                ] {
                    body.push_str(&format!(
                        "# HELP binlog2kafka_{name} {help}\n# TYPE binlog2kafka_{name} gauge\nbinlog2kafka_{name} {v}\n"
                    ));
                }
                Reply::metrics(body)
            }
            "/healthz" => Reply::health(
                g.view
                    .member_id
                    .is_empty()
                    .then_some("not a member of the fleet's group (yet)"),
            ),
            p => match p.strip_prefix("/pipeline/").map(crate::url::decode) {
                Some(name) => match g.local.get(&name) {
                    Some(l) => Reply::html(status::render_html(&status::snapshot(
                        &l.settings,
                        &l.shared,
                        &l.measured,
                    ))),
                    None => {
                        let body = match g.statuses.get(&name) {
                            Some(s) => format!(
                                "pipeline {name} does not run on this host; its host is {}{}\n",
                                s.host,
                                s.page
                                    .as_ref()
                                    .map(|u| format!(", its page {u}"))
                                    .unwrap_or_default()
                            ),
                            None => format!("pipeline {name} does not run on this host\n"),
                        };
                        Reply {
                            body,
                            ..Reply::not_found()
                        }
                    }
                },
                None => Reply::not_found(),
            },
        }
    }

    fn fleet_view<'a>(&'a self, g: &'a Inner, now_ms: u64) -> FleetView<'a> {
        FleetView {
            fleet: &self.fleet,
            host: &self.host,
            generation: g.view.generation,
            leader: g.view.leader,
            members: g.view.members,
            defined: &g.view.pipelines,
            statuses: &g.statuses,
            now_ms,
            stale_after_ms: STALE.as_millis() as u64,
        }
    }
}

/// Reads every status record in `topic` from offset `from` into `into`
/// (the newest per pipeline; a tombstone removes one); returns where the
/// next read starts.
pub fn read(
    client: &mut Client,
    topic: &str,
    from: i64,
    into: &mut BTreeMap<String, PipelineStatus>,
) -> Result<i64, KafkaError> {
    if client.partitions(topic)?.is_none() {
        return Ok(from);
    }
    client.scan(topic, from, |r| {
        let Some(key) = r.key.as_deref() else { return };
        let name = String::from_utf8_lossy(key).into_owned();
        match r
            .value
            .as_deref()
            .map(serde_json::from_slice::<PipelineStatus>)
        {
            None => {
                into.remove(&name);
            }
            Some(Ok(s)) => {
                // Two hosts may both write during a hand-over: the newer
                // record wins, whatever the order they landed in.
                if into.get(&name).is_none_or(|old| old.at_ms <= s.at_ms) {
                    into.insert(name, s);
                }
            }
            Some(Err(e)) => log::debug!("ignoring an unreadable status record of {name}: {e}"),
        }
    })
}

/// The reporter: every [`EVERY`], reads the others' records, then samples
/// this host's pipelines and writes theirs. Runs until `done` closes.
pub fn spawn_reporter(
    board: Arc<Board>,
    mut client: Client,
    topic: String,
    replication: i16,
    done: Receiver<()>,
) -> Handle<()> {
    let (exit, _) = handle::exits();
    handle::spawn("b2k-fleet-status", exit, move || {
        let mut samplers: BTreeMap<String, Sampler> = BTreeMap::new();
        let mut next = 0i64;
        let mut created = false;
        let mut failing = false;
        loop {
            let round = (|| -> Result<(), KafkaError> {
                if !created {
                    super::definitions::ensure_compacted(
                        &mut client,
                        &topic,
                        replication,
                        "status",
                    )?;
                    created = true;
                }
                let mut statuses = std::mem::take(&mut board.inner.lock().statuses);
                next = read(&mut client, &topic, next, &mut statuses)?;
                board.inner.lock().statuses = statuses;
                let records = sample(&board, &mut samplers);
                publish(&mut client, &topic, &records)
            })();
            match round {
                Ok(()) if failing => {
                    failing = false;
                    log::info!("fleet status: writing to {topic} again");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    log::warn!("fleet status: cannot read or write {topic} ({e}); the pages show what was known, trying again every {} s", EVERY.as_secs());
                }
                Err(_) => {}
            }
            if !matches!(
                done.recv_timeout(EVERY),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ) {
                return;
            }
        }
    })
}

/// Samples this host's pipelines (outside the board's lock: asking a
/// server for its head takes time) and makes their records.
fn sample(board: &Board, samplers: &mut BTreeMap<String, Sampler>) -> Vec<PipelineStatus> {
    let (local, failed) = {
        let g = board.inner.lock();
        let local: Vec<(String, Arc<Shared>, status::Settings)> = g
            .local
            .iter()
            .map(|(n, l)| (n.clone(), l.shared.clone(), l.settings.clone()))
            .collect();
        (local, g.failed.clone())
    };
    samplers.retain(|n, _| local.iter().any(|(l, _, _)| l == n));
    let at_ms = crate::clock::now_ms();
    let mut out = Vec::new();
    for (name, shared, settings) in local {
        let sampler = samplers
            .entry(name.clone())
            .or_insert_with(|| Sampler::new(settings.clone(), board.history_of(&name)));
        let measured = sampler.sample(&shared).clone();
        let snap = status::snapshot(&settings, &shared, &measured);
        out.push(PipelineStatus {
            pipeline: name.clone(),
            host: board.host.clone(),
            state: if snap.unhealthy.is_some() {
                "unhealthy".into()
            } else {
                "running".into()
            },
            detail: snap.unhealthy.clone(),
            rows_per_s: measured.rows_per_s,
            lag_s: snap.lag_s,
            lag_bytes: measured.lag_bytes,
            rows_sent: snap.rows_sent,
            checkpoint: snap.written.clone(),
            at_ms,
            page: board.page_of(&name),
            history: measured.history.clone(),
        });
        if let Some(l) = board.inner.lock().local.get_mut(&name) {
            l.measured = measured;
        }
    }
    for (name, error) in failed {
        let mut history = board.history_of(&name);
        history.record(at_ms / 1000, 0.0, None);
        out.push(PipelineStatus {
            pipeline: name,
            host: board.host.clone(),
            state: "failed".into(),
            detail: Some(error),
            rows_per_s: 0.0,
            lag_s: None,
            lag_bytes: None,
            rows_sent: 0,
            checkpoint: None,
            at_ms,
            page: None,
            history,
        });
    }
    out
}

fn publish(client: &mut Client, topic: &str, records: &[PipelineStatus]) -> Result<(), KafkaError> {
    if records.is_empty() {
        return Ok(());
    }
    let out: Vec<OutRecord> = records
        .iter()
        .map(|s| OutRecord {
            key: Some(Bytes::from(s.pipeline.clone().into_bytes())),
            value: Some(serde_json::to_vec(s).expect("serializes").into()),
            timestamp_ms: s.at_ms as i64,
            headers: Vec::new(),
        })
        .collect();
    client.produce(topic, 0, &out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_is_not_a_member_is_not_healthy() {
        let board = Board::new("f", "h/1", None);
        assert!(board.route("/healthz").status.starts_with("503"));
        board.view(&View {
            member_id: "m-1".into(),
            ..View::default()
        });
        assert!(board.route("/healthz").status.starts_with("200"));
        assert!(board.route("/pipeline/x").status.starts_with("404"));
        assert!(board.route("/").body.contains("no pipeline defined yet"));
    }
}
