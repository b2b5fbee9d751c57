//! `binlog2kafka run` with `fleet.name`: this host as a member of the
//! fleet (the member loop is `fleet::run`; this is its [`Runner`], which
//! runs each pipeline it is given as the single-pipeline `run` does, on
//! threads of its own), and `binlog2kafka pipeline ...`, which manages the
//! definitions.

use std::collections::BTreeMap;
use std::time::Instant;

use super::*;
use crate::fleet::{self, definitions, Definition, Runner, View};

/// A pipeline this host runs.
struct Running {
    def: Definition,
    /// Its own stop flag: set, the pipeline stops as on SIGTERM.
    term: Arc<AtomicBool>,
    /// Wakes its supervisor once `term` is set.
    wake: crossbeam_channel::Sender<()>,
    thread: Handle<Result<RunSummary, AppError>>,
    /// How often it failed in a row before this start: its next back-off.
    tries: u32,
}

/// A pipeline that ended by itself, and when it is tried again.
struct Failed {
    def: Definition,
    error: String,
    retry_at: Instant,
    tries: u32,
}

/// The host's pipelines.
struct Host<'a> {
    /// The host's own configuration file, the first layer of each
    /// pipeline's.
    layers: Vec<(String, String)>,
    signals: &'a Signals,
    running: BTreeMap<String, Running>,
    failed: BTreeMap<String, Failed>,
    /// What the pages and the status topic show.
    board: Arc<fleet::status::Board>,
    /// The snapshot requests of the commit-log topic, read once for all.
    requests: Arc<crate::pipeline::snapshot::RequestScan>,
}

/// How long a failed pipeline waits before it is started again: 30 s,
/// doubling, at most 5 min (its definition changed: at once).
fn backoff(tries: u32) -> Duration {
    Duration::from_secs((30u64 << tries.min(4)).min(300))
}

impl Host<'_> {
    fn launch(&mut self, def: &Definition, tries: u32) -> Result<(), String> {
        let cfg = Config::for_pipeline(
            &self.layers,
            &def.name,
            &def.properties,
            def.server_id,
            std::env::vars(),
        )
        .map_err(|e| e.to_string())?;
        let term = Arc::new(AtomicBool::new(false));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let signals = Signals {
            term: term.clone(),
            hup: Arc::new(AtomicBool::new(false)),
            wake: Some(woken),
        };
        // The thread's name lives as long as the process: one short string
        // per start.
        let name: &'static str = Box::leak(format!("pipeline {}", def.name).into_boxed_str());
        let (exit, _) = handle::exits();
        let label = def.name.clone();
        let shared = Arc::new(Shared::sharing_requests(self.requests.clone()));
        self.board.started(&def.name, shared.clone(), cfg.status());
        let thread = handle::spawn(name, exit, move || {
            handle::set_context(&label);
            let r = run::run_embedded(cfg, &signals, &shared);
            shared.stop.request();
            r
        });
        self.running.insert(
            def.name.clone(),
            Running {
                def: def.clone(),
                term,
                wake,
                thread,
                tries,
            },
        );
        Ok(())
    }

    /// Starts `def` after `tries` failures in a row; a configuration it
    /// cannot build counts as one more.
    fn try_start(&mut self, def: &Definition, tries: u32) {
        if let Err(error) = self.launch(def, tries) {
            log::error!("pipeline {}: {error}", def.name);
            self.board.failed(&def.name, &error);
            self.failed.insert(
                def.name.clone(),
                Failed {
                    def: def.clone(),
                    error,
                    retry_at: Instant::now() + backoff(tries),
                    tries: tries + 1,
                },
            );
        }
    }
}

/// The `mysql.server_id` a definition sets itself, if any.
fn own_server_id(d: &Definition) -> Option<u32> {
    crate::config::definition_keys(&d.properties, &d.name)
        .ok()
        .and_then(|(_, id)| id)
}

impl Runner for Host<'_> {
    fn start(&mut self, def: &Definition) {
        // Given anew (or its definition changed): no back-off.
        self.failed.remove(&def.name);
        self.try_start(def, 0);
    }

    fn stop(&mut self, names: &[String]) {
        let mut stopping = Vec::new();
        for name in names {
            self.failed.remove(name);
            self.board.stopped(name);
            if let Some(r) = self.running.remove(name) {
                r.term.store(true, Ordering::SeqCst);
                let _ = r.wake.try_send(());
                stopping.push((name, r));
            }
        }
        for (name, r) in stopping {
            match r.thread.join() {
                Ok(summary) => log::info!(
                    "pipeline {name} stopped: {} rows sent; checkpoint {}",
                    summary.rows,
                    summary
                        .last_checkpoint
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unchanged".into())
                ),
                Err(AppError::Interrupted) => {
                    log::info!(
                        "pipeline {name} stopped during its start; nothing was claimed or sent"
                    )
                }
                Err(e) => log::warn!("pipeline {name} stopped with an error: {e}"),
            }
        }
    }

    fn reap(&mut self) {
        let ended: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.thread.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in ended {
            let r = self.running.remove(&name).expect("listed");
            let error = match r.thread.join() {
                Ok(_) => "ended by itself".to_string(),
                Err(e) => e.to_string(),
            };
            let tries = r.tries;
            let wait = backoff(tries);
            self.board.failed(&name, &error);
            log::error!(
                "pipeline {name} failed: {error}; the other pipelines of this host run on; trying it again in {} s (or at once when its definition changes)",
                wait.as_secs()
            );
            self.failed.insert(
                name,
                Failed {
                    def: r.def,
                    error,
                    retry_at: Instant::now() + wait,
                    tries: tries + 1,
                },
            );
        }
        let due: Vec<(Definition, String)> = self
            .failed
            .values()
            .filter(|f| Instant::now() >= f.retry_at)
            .map(|f| (f.def.clone(), f.error.clone()))
            .collect();
        for (def, error) in due {
            log::info!(
                "pipeline {}: starting it again (it failed: {error})",
                def.name
            );
            let tries = self.failed.remove(&def.name).map(|f| f.tries).unwrap_or(0);
            self.try_start(&def, tries);
        }
    }

    fn stop_requested(&self) -> bool {
        self.signals.stop_requested()
    }

    fn report(&mut self, view: &View) {
        self.board.view(view);
    }
}

/// Runs this host as a member of its fleet until SIGTERM/SIGINT, then hands
/// its pipelines over (each one's final checkpoint) and leaves the group.
pub fn run_fleet(
    cfg: Config,
    layers: Vec<(String, String)>,
    signals: Signals,
) -> Result<(), AppError> {
    let settings = cfg.fleet().expect("fleet.name is set");
    let client = kafka_client(&cfg, "fleet").map_err(kafka("connecting to Kafka"))?;
    let host = checkpoint::instance_id();
    let host = host.split('/').take(2).collect::<Vec<_>>().join("/");
    // The page first: a port in use is said before anything is claimed.
    let listener = match &cfg.http_listen {
        Some(listen) => Some(crate::status::bind(listen).map_err(AppError::Status)?),
        None => None,
    };
    let page_base = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| page_base(a, &host));
    let board = Arc::new(fleet::status::Board::new(
        &settings.name,
        &host,
        page_base.clone(),
    ));
    let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
    let reporter = fleet::status::spawn_reporter(
        board.clone(),
        kafka_client(&cfg, "fleet-status").map_err(kafka("connecting to Kafka"))?,
        settings.status_topic.clone(),
        settings.replication,
        done.clone(),
    );
    let http = listener.map(|listener| {
        let (board, stop) = (board.clone(), Arc::new(AtomicBool::new(false)));
        let flag = stop.clone();
        let (exit, _) = handle::exits();
        log::info!(
            "fleet page on {} (this host's pipelines: /pipeline/NAME, metrics: /metrics, health: /healthz)",
            page_base.as_deref().unwrap_or("?")
        );
        let thread = handle::spawn("b2k-http", exit, move || {
            crate::status::serve(listener, &flag, &|path| board.route(path))
        });
        (stop, thread)
    });
    let mut runner = Host {
        layers,
        signals: &signals,
        running: BTreeMap::new(),
        failed: BTreeMap::new(),
        board,
        requests: Arc::default(),
    };
    let r = fleet::run(&settings, &host, client, &mut runner);
    // Whatever ended the loop, nothing of this host runs on.
    let left: Vec<String> = runner.running.keys().cloned().collect();
    runner.stop(&left);
    drop(done_tx);
    reporter.join();
    if let Some((stop, thread)) = http {
        stop.store(true, Ordering::SeqCst);
        thread.join();
    }
    r.map_err(AppError::Fleet)
}

/// `http://HOST:PORT` of this host's page as the other hosts should link
/// it: a wildcard address is replaced by this host's name.
fn page_base(addr: std::net::SocketAddr, host: &str) -> String {
    if addr.ip().is_unspecified() {
        let name = host.split('/').next().unwrap_or("localhost");
        format!("http://{name}:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// `pipeline put|delete|list|pause|resume`.
pub enum PipelineCommand {
    Put(std::path::PathBuf),
    Delete(String),
    List,
    Pause(String),
    /// `binlog2kafka fleet status`: every pipeline, its host, state, lag
    /// and rate, from the status topic.
    Status,
    Resume(String),
}

/// Runs a `pipeline` command against the fleet's definitions topic;
/// returns what to print.
pub fn pipeline_command(
    cfg: &Config,
    layers: &[(String, String)],
    cmd: PipelineCommand,
) -> Result<String, AppError> {
    let keys = cfg.fleet.as_ref().ok_or_else(|| {
        AppError::Refused(
            "`pipeline` and `fleet status` work on a fleet: set fleet.name in the config file"
                .into(),
        )
    })?;
    let topic = keys.topic.clone();
    let mut client = kafka_client(cfg, "admin").map_err(kafka("connecting to Kafka"))?;
    let mut defs = definitions::read_all(&mut client, &topic)
        .map_err(kafka("reading the fleet's definitions"))?
        .unwrap_or_default();
    let mut known = |name: &str| {
        defs.remove(name).ok_or_else(|| {
            AppError::Refused(format!(
                "no pipeline {name} in fleet {} ({topic}); `binlog2kafka pipeline list` shows them",
                keys.name
            ))
        })
    };
    match cmd {
        PipelineCommand::Status => {
            let mut statuses = BTreeMap::new();
            fleet::status::read(&mut client, &keys.status_topic, 0, &mut statuses)
                .map_err(kafka("reading the fleet's status topic"))?;
            let defined: BTreeMap<String, bool> =
                defs.iter().map(|(n, d)| (n.clone(), d.paused)).collect();
            let view = crate::status::fleet::FleetView {
                fleet: &keys.name,
                host: "",
                generation: 0,
                leader: false,
                members: 0,
                defined: &defined,
                statuses: &statuses,
                now_ms: crate::clock::now_ms(),
                stale_after_ms: fleet::status::STALE.as_millis() as u64,
            };
            Ok(view.text().trim_end().to_string())
        }
        PipelineCommand::List => {
            let mut out = format!(
                "{:<32} {:<8} {:>10}  source\n",
                "PIPELINE", "STATE", "SERVER_ID"
            );
            for d in defs.values() {
                let own = own_server_id(d);
                let source = d
                    .properties
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .filter(|(k, _)| k.trim() == "mysql.host")
                    .map(|(_, v)| v.trim().to_string())
                    .next()
                    .unwrap_or_else(|| "(the host's mysql.host)".into());
                out.push_str(&format!(
                    "{:<32} {:<8} {:>10}  {source}\n",
                    d.name,
                    if d.paused { "paused" } else { "active" },
                    own.or(d.server_id)
                        .map(|i| i.to_string())
                        .unwrap_or_default()
                ));
            }
            out.push_str(&format!(
                "{} pipeline(s) in fleet {}",
                defs.len(),
                keys.name
            ));
            Ok(out)
        }
        PipelineCommand::Pause(name) => {
            let mut d = known(&name)?;
            d.paused = true;
            definitions::write(&mut client, &topic, &name, Some(&d))
                .map_err(kafka("writing the definition"))?;
            Ok(format!("pipeline {name} paused: its host stops it (final checkpoint) within fleet.heartbeat_interval_ms; `pipeline resume {name}` starts it again"))
        }
        PipelineCommand::Resume(name) => {
            let mut d = known(&name)?;
            d.paused = false;
            definitions::write(&mut client, &topic, &name, Some(&d))
                .map_err(kafka("writing the definition"))?;
            Ok(format!(
                "pipeline {name} resumed: a host of fleet {} starts it from its checkpoint",
                keys.name
            ))
        }
        PipelineCommand::Delete(name) => {
            known(&name)?;
            definitions::write(&mut client, &topic, &name, None)
                .map_err(kafka("deleting the definition"))?;
            Ok(format!("pipeline {name} deleted from fleet {}: its host stops it; its checkpoint stays in {} (a `put` of the same name resumes from it; `reset` removes it)", keys.name, cfg.commit_topic))
        }
        PipelineCommand::Put(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                AppError::Config(ConfigError::Missing {
                    path: shown.clone(),
                    detail: e.to_string(),
                })
            })?;
            let (name, own_id) = crate::config::definition_keys(&text, &shown)?;
            let before = defs.get(&name).cloned();
            let server_id = match own_id {
                Some(id) => {
                    if let Some(other) = defs.values().find(|d| {
                        d.name != name
                            && (d.server_id == Some(id)
                                || own_server_id(d) == Some(id))
                    }) {
                        return Err(AppError::Refused(format!(
                            "mysql.server_id {id} is already pipeline {}'s; two replicas with one id make the server drop one. Leave mysql.server_id out to have one given from fleet.server_id_range",
                            other.name
                        )));
                    }
                    None
                }
                None => match before.as_ref().and_then(|d| d.server_id) {
                    Some(id) => Some(id),
                    None => Some(
                        definitions::free_server_id(
                            keys.server_ids,
                            &defs,
                            own_server_id,
                            &name,
                        )
                        .ok_or_else(|| {
                            AppError::Refused(format!(
                                "every server id of fleet.server_id_range {}-{} is taken; widen the range",
                                keys.server_ids.0, keys.server_ids.1
                            ))
                        })?,
                    ),
                },
            };
            // The same checks as `check`, on the configuration the hosts
            // will build.
            let pcfg = Config::for_pipeline(layers, &name, &text, server_id, std::env::vars())?;
            let report = check(&pcfg);
            if !report.ok {
                return Err(AppError::Refused(format!(
                    "pipeline {name} not put: `check` found problems:\n{}",
                    report.lines.join("\n")
                )));
            }
            definitions::ensure_topic(&mut client, &topic, cfg.replication_factor)
                .map_err(kafka("preparing the fleet's definitions topic"))?;
            let def = Definition {
                name: name.clone(),
                properties: text,
                paused: before.as_ref().is_some_and(|d| d.paused),
                server_id,
            };
            definitions::write(&mut client, &topic, &name, Some(&def))
                .map_err(kafka("writing the definition"))?;
            Ok(format!(
                "pipeline {name} {} in fleet {}{}: a host starts it within fleet.heartbeat_interval_ms",
                if before.is_some() { "updated" } else { "put" },
                keys.name,
                server_id.map(|i| format!(" (mysql.server_id {i})")).unwrap_or_default()
            ))
        }
    }
}
