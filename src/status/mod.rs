//! The operator's view: a status page (`/`), Prometheus metrics
//! (`/metrics`) and a health check (`/healthz`) on `http.listen`.
//!
//! Two threads of their own, so the pipeline never waits on them: the
//! monitor samples the pipeline's counters every second (for rates over the
//! last minute) and asks the server for its binlog head every 5 s (for the
//! lag in bytes); the HTTP thread answers requests from the newest sample
//! and the shared state, one at a time, each with a short timeout. Neither
//! holds the pipeline's lock for more than a copy.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;

use crate::pipeline::handle::{self, Handle};
use crate::pipeline::Shared;

mod chart;
pub mod fleet;
pub mod history;
mod page;

pub use history::{History, Sampler};
pub use page::{render_html, render_metrics, render_metrics_labelled};

/// How long the pipeline may hold changes without releasing any before
/// `/healthz` calls it stuck.
const STALL: Duration = Duration::from_secs(120);

/// What the monitor thread measured last.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Rows and bytes acknowledged per second over the last minute.
    pub rows_per_s: f64,
    pub bytes_per_s: f64,
    /// Bytes of binlog between the reader and the server's head, when the
    /// server could be asked.
    pub lag_bytes: Option<u64>,
    /// The server's head (`file:pos`), when known.
    pub head: Option<String>,
    /// Rate and lag over the last hour, for the charts.
    pub history: History,
}

/// Everything a page shows, copied out of the shared state at once.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub pipeline: String,
    pub version: &'static str,
    pub mysql: String,
    pub brokers: String,
    pub topic: String,
    pub uptime_s: u64,
    pub read_file: String,
    pub read_pos: u64,
    pub read_ts: u64,
    pub released: Option<String>,
    pub written: Option<String>,
    pub written_age_s: Option<u64>,
    pub depth: usize,
    pub rows_read: u64,
    pub rows_sent: u64,
    pub bytes_sent: u64,
    pub checkpoints_written: u64,
    /// Times the reader moved to another server of `mysql.host`.
    pub failovers: u64,
    /// The schema history, when one is followed.
    pub schema: Option<crate::pipeline::SchemaStatus>,
    pub measured: Measured,
    pub lag_s: Option<u64>,
    pub tables: BTreeMap<String, u64>,
    /// Snapshots of tables in this run, in start order.
    pub snapshots: Vec<SnapshotRow>,
    pub last_error: Option<(u64, String)>,
    /// `None` when healthy, else why not.
    pub unhealthy: Option<String>,
    pub now_s: u64,
}

/// One table's snapshot as the page and the metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    /// `database.table`.
    pub table: String,
    pub sent: u64,
    /// information_schema's estimate, at least what was sent (exact once
    /// done).
    pub estimate: u64,
    pub superseded: u64,
    pub rows_per_s: f64,
    /// Seconds to go at that rate; `None` when unknown or done.
    pub left_s: Option<u64>,
    pub done: bool,
    pub elapsed_s: f64,
}

fn snapshot_rows(p: &crate::pipeline::Progress) -> Vec<SnapshotRow> {
    p.snapshots
        .iter()
        .map(|s| {
            let elapsed = s.finished.unwrap_or_else(std::time::Instant::now) - s.started;
            let elapsed_s = elapsed.as_secs_f64();
            let this_run = s.sent.saturating_sub(s.sent_at_start);
            let rate = if elapsed_s > 0.0 {
                this_run as f64 / elapsed_s
            } else {
                0.0
            };
            let done = s.finished.is_some();
            let estimate = if done { s.sent } else { s.estimate.max(s.sent) };
            let left_s =
                (!done && rate > 0.0).then(|| ((estimate - s.sent) as f64 / rate).ceil() as u64);
            SnapshotRow {
                table: s.table.clone(),
                sent: s.sent,
                estimate,
                superseded: s.superseded,
                rows_per_s: rate,
                left_s,
                done,
                elapsed_s,
            }
        })
        .collect()
}

/// What the status page is told (built by the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub pipeline_name: String,
    /// `kafka.brokers`, as configured.
    pub brokers: String,
    /// `kafka.topic`.
    pub topic: String,
    /// `http.listen`; `None` when off.
    pub http_listen: Option<String>,
    /// The servers of `mysql.host`: the monitor asks the one being read
    /// for its head.
    pub source: Arc<crate::source::Settings>,
}

fn unix_now() -> u64 {
    crate::clock::now_secs()
}

/// Copies what the pages need.
pub fn snapshot(cfg: &Settings, shared: &Shared, measured: &Measured) -> Snapshot {
    let p = shared.board.progress.lock().clone();
    let now = unix_now();
    let read_ts = shared.board.read_ts.load(Ordering::Relaxed);
    let lag_s = lag_seconds(measured, shared, now);
    let depth = shared.ledger.depth();
    let unhealthy = if let Some((since, why)) = &p.kafka_down {
        Some(format!(
            "Kafka unreachable for {}s: {why}",
            since.elapsed().as_secs()
        ))
    } else if let Some((since, why)) = &p.registry_down {
        Some(format!(
            "schema registry unreachable for {}s: {why}",
            since.elapsed().as_secs()
        ))
    } else if let Some((since, why)) = &p.mysql_down {
        Some(format!(
            "MySQL stream lost for {}s: {why}",
            since.elapsed().as_secs()
        ))
    } else if shared.stop.requested() {
        Some("the pipeline is stopping".into())
    } else if depth > 0 && shared.ledger.released_at().elapsed() > STALL {
        Some(format!(
            "{depth} changes waiting and nothing released for {}s",
            shared.ledger.released_at().elapsed().as_secs()
        ))
    } else {
        None
    };
    let stats = &shared.board.stats;
    Snapshot {
        pipeline: cfg.pipeline_name.clone(),
        version: env!("CARGO_PKG_VERSION"),
        mysql: {
            // The server being read (after a failover, not the first one).
            let now = shared.board.source.lock().clone();
            if now.is_empty() {
                let (host, port) = &cfg.source.hosts[0];
                format!("{host}:{port}")
            } else {
                now
            }
        },
        brokers: cfg.brokers.clone(),
        topic: cfg.topic.clone(),
        uptime_s: shared.board.started.elapsed().as_secs(),
        read_file: p.read_file.clone(),
        read_pos: shared.board.read_pos.load(Ordering::Relaxed),
        read_ts,
        released: shared.ledger.released().map(|r| r.to_string()),
        written: p.written.as_ref().map(|(w, _)| w.clone()),
        written_age_s: p.written.as_ref().map(|(_, t)| t.elapsed().as_secs()),
        depth,
        rows_read: stats.rows_read.load(Ordering::Relaxed),
        rows_sent: stats.rows_acked.load(Ordering::Relaxed),
        bytes_sent: stats.bytes_acked.load(Ordering::Relaxed),
        checkpoints_written: stats.checkpoints_written.load(Ordering::Relaxed),
        failovers: stats.failovers.load(Ordering::Relaxed),
        schema: p.schema.clone(),
        measured: measured.clone(),
        lag_s,
        tables: p.tables.clone(),
        snapshots: snapshot_rows(&p),
        last_error: p.last_error.clone(),
        unhealthy,
        now_s: now,
    }
}

/// Seconds the reader is behind: 0 at the server's head, else the age of
/// the newest event read; unknown until the head has been read.
fn lag_seconds(measured: &Measured, shared: &Shared, now_s: u64) -> Option<u64> {
    let read_ts = shared.board.read_ts.load(Ordering::Relaxed);
    match measured.lag_bytes {
        Some(0) => Some(0),
        Some(_) if read_ts > 0 => Some(now_s.saturating_sub(read_ts)),
        _ => None,
    }
}

/// The status and HTTP threads' handles.
pub struct StatusHandle {
    pub addr: std::net::SocketAddr,
    done: Arc<AtomicBool>,
    monitor: Handle<()>,
    http: Handle<()>,
}

impl StatusHandle {
    /// Stops both threads and waits for them. Until then they keep
    /// answering, so a stopping pipeline is shown as such.
    pub fn join(self) {
        self.done.store(true, Ordering::SeqCst);
        self.monitor.join();
        self.http.join();
    }
}

/// Binds `http.listen` and starts the monitor and HTTP threads. A bind
/// failure is returned: an operator who asked for the page should learn at
/// once that it cannot be served.
pub fn start(cfg: &Settings, shared: Arc<Shared>) -> Result<Option<StatusHandle>, String> {
    let Some(listen) = cfg.http_listen.clone() else {
        return Ok(None);
    };
    let listener = bind(&listen)?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("status page listener: {e}"))?;
    let measured = Arc::new(Mutex::new(Measured::default()));
    let done = Arc::new(AtomicBool::new(false));
    // Their end matters to nobody but `join`: the page is not the pipeline.
    let (exit, _) = handle::exits();
    let monitor = {
        let (cfg, shared, measured, done) =
            (cfg.clone(), shared.clone(), measured.clone(), done.clone());
        handle::spawn("b2k-monitor", exit.clone(), move || {
            monitor(&cfg, &shared, &measured, &done)
        })
    };
    let http = {
        let (cfg, done) = (cfg.clone(), done.clone());
        handle::spawn("b2k-http", exit, move || {
            serve(listener, &done, &|path| {
                pipeline_route(&cfg, &shared, &measured, path)
            })
        })
    };
    log::info!("status page on http://{addr}/ (metrics: /metrics, health: /healthz)");
    Ok(Some(StatusHandle {
        addr,
        done,
        monitor,
        http,
    }))
}

/// Samples rates every second and the server's head every 5 s until the
/// pipeline stops.
fn monitor(cfg: &Settings, shared: &Shared, measured: &Mutex<Measured>, done: &AtomicBool) {
    let mut sampler = Sampler::new(cfg.clone(), History::default());
    while !done.load(Ordering::SeqCst) {
        let m = sampler.sample(shared).clone();
        *measured.lock() = m;
        // Sleep a second in short steps, so a stop is noticed quickly.
        for _ in 0..10 {
            if done.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Bytes between the reader and the server's head, from `SHOW BINARY
/// LOGS`, and the head itself. `(None, None)` when the server cannot be
/// asked (the reader reports that outage itself).
fn server_lag(
    cfg: &Settings,
    shared: &Shared,
    conn: &mut crate::source::SourceConn,
) -> (Option<u64>, Option<String>) {
    let (c, target) = match conn.get(&cfg.source, shared.reading.server()) {
        Ok(got) => got,
        Err(e) => {
            // The reader reports an outage; the page shows its own.
            log::debug!("status monitor: {e}");
            return (None, None);
        }
    };
    let logs = match crate::source::binary_logs(c, target) {
        Ok(l) => l,
        Err(_) => {
            conn.drop_conn();
            return (None, None);
        }
    };
    let file = shared.board.progress.lock().read_file.clone();
    let pos = shared.board.read_pos.load(Ordering::Relaxed);
    let head = logs.last().map(|(f, s)| format!("{f}:{s}"));
    let Some(i) = logs.iter().position(|(f, _)| *f == file) else {
        return (None, head);
    };
    let behind = logs[i].1.saturating_sub(pos) + logs[i + 1..].iter().map(|(_, s)| s).sum::<u64>();
    (Some(behind), head)
}

/// Connections answered at once; past this a new one gets an immediate
/// 503, so a few slow or idle clients never hold up a liveness probe.
const MAX_CONNECTIONS: usize = 16;

/// One answer to a GET: status line, content type, body.
pub struct Reply {
    pub status: &'static str,
    pub kind: &'static str,
    pub body: String,
}

impl Reply {
    pub fn ok(kind: &'static str, body: String) -> Reply {
        Reply {
            status: "200 OK",
            kind,
            body,
        }
    }

    pub fn html(body: String) -> Reply {
        Reply::ok("text/html; charset=utf-8", body)
    }

    pub fn metrics(body: String) -> Reply {
        Reply::ok("text/plain; version=0.0.4; charset=utf-8", body)
    }

    pub fn health(unhealthy: Option<&str>) -> Reply {
        match unhealthy {
            None => Reply::ok("text/plain", "ok\n".into()),
            Some(why) => Reply {
                status: "503 Service Unavailable",
                kind: "text/plain",
                body: format!("{why}\n"),
            },
        }
    }

    pub fn not_found() -> Reply {
        Reply {
            status: "404 Not Found",
            kind: "text/plain",
            body: "not found\n".into(),
        }
    }
}

/// Binds `listen` for [`serve`]. A bind failure is returned: an operator
/// who asked for the page should learn at once that it cannot be served.
pub fn bind(listen: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(listen).map_err(|e| {
        format!("cannot serve the status page on {listen} ({e}); set http.listen to a free address, or to off")
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("status page listener: {e}"))?;
    Ok(listener)
}

/// Answers requests until `done`, each connection on a short thread of its
/// own (with 2 s socket timeouts), at most [`MAX_CONNECTIONS`] at a time;
/// `route` turns a GET's path into its answer.
pub fn serve(listener: TcpListener, done: &AtomicBool, route: &(dyn Fn(&str) -> Reply + Sync)) {
    let active = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|scope| {
        while !done.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        stream.set_nonblocking(false).ok();
                        stream
                            .set_write_timeout(Some(Duration::from_millis(200)))
                            .ok();
                        let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n");
                        continue;
                    }
                    active.fetch_add(1, Ordering::SeqCst);
                    let active = &active;
                    let spawned = thread::Builder::new()
                        .name("b2k-http-conn".into())
                        .spawn_scoped(scope, move || {
                            if let Err(e) = answer(stream, route) {
                                log::debug!("status request failed: {e}");
                            }
                            active.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        active.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    log::debug!("status listener: {e}");
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
    });
}

fn answer(mut stream: TcpStream, route: &(dyn Fn(&str) -> Reply + Sync)) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    // The request line is all that matters; read until the headers end.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let reply = if method != "GET" && method != "HEAD" {
        Reply {
            status: "405 Method Not Allowed",
            kind: "text/plain",
            body: "GET only\n".to_string(),
        }
    } else {
        route(path)
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.kind,
        reply.body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(reply.body.as_bytes())?;
    }
    stream.flush()
}

/// The single pipeline's pages.
fn pipeline_route(
    cfg: &Settings,
    shared: &Shared,
    measured: &Mutex<Measured>,
    path: &str,
) -> Reply {
    let m = measured.lock().clone();
    let snap = snapshot(cfg, shared, &m);
    match path {
        "/" | "/index.html" => Reply::html(render_html(&snap)),
        "/metrics" => Reply::metrics(render_metrics(&snap)),
        "/healthz" => Reply::health(snap.unhealthy.as_deref()),
        _ => Reply::not_found(),
    }
}
