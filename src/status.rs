//! The operator's view: a status page (`/`), Prometheus metrics
//! (`/metrics`) and a health check (`/healthz`) on `http.listen`.
//!
//! Two threads of their own, so the pipeline never waits on them: the
//! monitor samples the pipeline's counters every second (for rates over the
//! last minute) and asks the server for its binlog head every 5 s (for the
//! lag in bytes); the HTTP thread answers requests from the newest sample
//! and the shared state, one at a time, each with a short timeout. Neither
//! holds the pipeline's lock for more than a copy.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::pipeline::handle::{self, Handle};
use crate::pipeline::Shared;

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
    let lag_s = match measured.lag_bytes {
        Some(0) => Some(0),
        Some(_) if read_ts > 0 => Some(now.saturating_sub(read_ts)),
        _ => None,
    };
    let depth = shared.ledger.depth();
    let unhealthy = if let Some((since, why)) = &p.kafka_down {
        Some(format!(
            "Kafka unreachable for {}s: {why}",
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
    let listener = TcpListener::bind(&listen).map_err(|e| {
        format!("cannot serve the status page on {listen} ({e}); set http.listen to a free address, or to off")
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("status page listener: {e}"))?;
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
            serve(listener, &cfg, &shared, &measured, &done)
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
    let mut samples: VecDeque<(Instant, u64, u64)> = VecDeque::new();
    let mut conn = crate::source::SourceConn::default();
    let mut last_head = Instant::now() - Duration::from_secs(60);
    while !done.load(Ordering::SeqCst) {
        let now = Instant::now();
        samples.push_back((
            now,
            shared.board.stats.rows_acked.load(Ordering::Relaxed),
            shared.board.stats.bytes_acked.load(Ordering::Relaxed),
        ));
        while samples
            .front()
            .is_some_and(|s| now.duration_since(s.0) > Duration::from_secs(60))
        {
            samples.pop_front();
        }
        let (rows_per_s, bytes_per_s) = match (samples.front(), samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = b.0.duration_since(a.0).as_secs_f64();
                ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
            }
            _ => (0.0, 0.0),
        };
        let mut lag = None;
        if now.duration_since(last_head) >= Duration::from_secs(5) {
            last_head = now;
            lag = Some(server_lag(cfg, shared, &mut conn));
        }
        {
            let mut m = measured.lock();
            m.rows_per_s = rows_per_s;
            m.bytes_per_s = bytes_per_s;
            if let Some((bytes, head)) = lag {
                m.lag_bytes = bytes;
                m.head = head;
            }
        }
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

/// Answers requests until the pipeline stops, each connection on a short
/// thread of its own (with 2 s socket timeouts), at most
/// [`MAX_CONNECTIONS`] at a time.
fn serve(
    listener: TcpListener,
    cfg: &Settings,
    shared: &Shared,
    measured: &Mutex<Measured>,
    done: &AtomicBool,
) {
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
                            let m = measured.lock().clone();
                            if let Err(e) = answer(stream, cfg, shared, &m) {
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

fn answer(
    mut stream: TcpStream,
    cfg: &Settings,
    shared: &Shared,
    measured: &Measured,
) -> std::io::Result<()> {
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
    let (status, kind, body) = if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        )
    } else {
        let snap = snapshot(cfg, shared, measured);
        match path {
            "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", render_html(&snap)),
            "/metrics" => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                render_metrics(&snap),
            ),
            "/healthz" => match &snap.unhealthy {
                None => ("200 OK", "text/plain", "ok\n".to_string()),
                Some(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
            },
            _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn human_duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The status page: one self-contained HTML document (no scripts, no
/// external assets) that reloads itself every 2 s and fits a phone.
pub fn render_html(s: &Snapshot) -> String {
    let (state, colour) = match &s.unhealthy {
        None => ("flowing".to_string(), "#1a7f37"),
        Some(why) => (format!("unhealthy: {why}"), "#cf222e"),
    };
    let lag = match (s.lag_s, s.measured.lag_bytes) {
        (Some(sec), Some(b)) => {
            format!("{} ({} behind)", human_duration(sec), human_bytes(b as f64))
        }
        (_, Some(b)) => format!("{} behind", human_bytes(b as f64)),
        _ => "unknown (server head not read yet)".into(),
    };
    let mut rows = String::new();
    let mut row = |k: &str, id: &str, v: &str| {
        let _ = writeln!(rows, "<tr><th>{k}</th><td id=\"{id}\">{}</td></tr>", esc(v));
    };
    row("state", "state", &state);
    row("lag", "lag", &lag);
    row(
        "read position",
        "read",
        &format!("{}:{}", s.read_file, s.read_pos),
    );
    row(
        "server head",
        "head",
        s.measured.head.as_deref().unwrap_or("unknown"),
    );
    row(
        "released checkpoint",
        "released",
        s.released.as_deref().unwrap_or("none yet"),
    );
    row(
        "written checkpoint",
        "written",
        &match (&s.written, s.written_age_s) {
            (Some(w), Some(a)) => format!("{w} ({} ago)", human_duration(a)),
            _ => "none yet".into(),
        },
    );
    row("waiting queue", "depth", &s.depth.to_string());
    row(
        "rate (last minute)",
        "rate",
        &format!(
            "{:.0} rows/s, {}/s",
            s.measured.rows_per_s,
            human_bytes(s.measured.bytes_per_s)
        ),
    );
    row(
        "totals",
        "totals",
        &format!(
            "{} rows read, {} sent ({}), {} checkpoints",
            s.rows_read,
            s.rows_sent,
            human_bytes(s.bytes_sent as f64),
            s.checkpoints_written
        ),
    );
    row(
        "last error",
        "error",
        &match &s.last_error {
            Some((at, e)) => format!("{} ago: {e}", human_duration(s.now_s.saturating_sub(*at))),
            None => "none".into(),
        },
    );
    row("source", "mysql", &s.mysql);
    if s.failovers > 0 {
        row("source", "failovers", &s.failovers.to_string());
    }
    if let Some(h) = &s.schema {
        row(
            "schema",
            "schema history",
            &format!(
                "{} tables, version {}; last DDL: {}",
                h.tables,
                h.versions,
                h.last_ddl.as_deref().unwrap_or("none")
            ),
        );
    }
    row("brokers", "brokers", &s.brokers);
    row("topic", "topic", &s.topic);
    row("uptime", "uptime", &human_duration(s.uptime_s));
    row("version", "version", s.version);
    let mut tables = String::new();
    for (t, n) in &s.tables {
        let _ = writeln!(tables, "<tr><td>{}</td><td>{n}</td></tr>", esc(t));
    }
    if tables.is_empty() {
        tables.push_str("<tr><td colspan=\"2\">no rows sent yet</td></tr>\n");
    }
    let mut snapshots = String::new();
    if !s.snapshots.is_empty() {
        snapshots.push_str("<h2>Snapshots</h2>\n<table>\n");
        for (i, r) in s.snapshots.iter().enumerate() {
            let pct = if r.estimate > 0 {
                100.0 * r.sent as f64 / r.estimate as f64
            } else {
                100.0
            };
            let text = if r.done {
                format!(
                    "done: {} rows in {:.1} s ({:.0} rows/s)",
                    r.sent, r.elapsed_s, r.rows_per_s
                )
            } else {
                format!(
                    "{} of about {} rows ({pct:.0}%), {:.0} rows/s, {} left",
                    r.sent,
                    r.estimate,
                    r.rows_per_s,
                    r.left_s.map_or("unknown".to_string(), human_duration)
                )
            };
            let _ = writeln!(
                snapshots,
                "<tr><td colspan=\"2\"><strong>{}</strong><br><progress id=\"snapshot-{i}\" max=\"{}\" value=\"{}\">{pct:.0}%</progress><br><span id=\"snapshot-{i}-text\">{}</span></td></tr>",
                esc(&r.table),
                r.estimate.max(1),
                r.sent,
                esc(&text)
            );
        }
        snapshots.push_str("</table>\n");
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="2">
<title>binlog2kafka: {name}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;max-width:48rem;color:#1f2328}}
h1{{font-size:1.3rem;margin:0 0 .2rem}} h2{{font-size:1.05rem;margin:1.2rem 0 .4rem}}
.state{{display:inline-block;padding:.2rem .6rem;border-radius:1rem;color:#fff;background:{colour}}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #d0d7de;vertical-align:top;word-break:break-all}}
th{{width:38%;font-weight:600;word-break:normal}} progress{{width:100%;height:1.1rem;margin:.2rem 0}} footer{{margin-top:1rem;color:#656d76;font-size:.85rem}}
</style></head>
<body>
<h1>binlog2kafka &middot; {name}</h1>
<p><span class="state">{state_short}</span></p>
<table>
{rows}</table>
{snapshots}<h2>Rows sent per table</h2>
<table>
{tables}</table>
<footer>Refreshes every 2 s. Metrics: <a href="/metrics">/metrics</a> &middot; health: <a href="/healthz">/healthz</a></footer>
</body></html>
"#,
        name = esc(&s.pipeline),
        state_short = if s.unhealthy.is_none() {
            "flowing"
        } else {
            "unhealthy"
        },
    )
}

/// The same figures in Prometheus' text format.
pub fn render_metrics(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP binlog2kafka_{name} {help}");
        let _ = writeln!(out, "# TYPE binlog2kafka_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "binlog2kafka_{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    metric(
        "info",
        "gauge",
        "Constant 1, labelled with the version and pipeline.",
        &[(
            format!(
                "{{version=\"{}\",pipeline=\"{}\"}}",
                s.version,
                label(&s.pipeline)
            ),
            1.0,
        )],
    );
    metric(
        "up",
        "gauge",
        "1 when /healthz would answer 200.",
        &one(s.unhealthy.is_none() as u8 as f64),
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        &one(s.uptime_s as f64),
    );
    metric(
        "rows_read_total",
        "counter",
        "Row changes decoded from the binlog.",
        &one(s.rows_read as f64),
    );
    metric(
        "rows_sent_total",
        "counter",
        "Row changes Kafka acknowledged.",
        &one(s.rows_sent as f64),
    );
    metric(
        "bytes_sent_total",
        "counter",
        "Bytes of message values Kafka acknowledged.",
        &one(s.bytes_sent as f64),
    );
    metric(
        "checkpoints_written_total",
        "counter",
        "Checkpoints written to the commit-log topic.",
        &one(s.checkpoints_written as f64),
    );
    metric(
        "failovers_total",
        "counter",
        "Times the reader moved to another server of mysql.host.",
        &one(s.failovers as f64),
    );
    if let Some(h) = &s.schema {
        metric(
            "schema_tables",
            "gauge",
            "Tables the schema history tracks.",
            &one(h.tables as f64),
        );
        metric(
            "schema_versions_total",
            "counter",
            "The schema history's version: 1 at the first capture, one more for each DDL that changed a tracked table.",
            &one(h.versions as f64),
        );
    }
    metric(
        "source_info",
        "gauge",
        "Constant 1, labelled with the server being read.",
        &[(format!("{{server=\"{}\"}}", label(&s.mysql)), 1.0)],
    );
    metric(
        "waiting_queue_depth",
        "gauge",
        "Changes read but not yet released.",
        &one(s.depth as f64),
    );
    metric(
        "rows_per_second",
        "gauge",
        "Rows acknowledged per second over the last minute.",
        &one(s.measured.rows_per_s),
    );
    metric(
        "bytes_per_second",
        "gauge",
        "Value bytes acknowledged per second over the last minute.",
        &one(s.measured.bytes_per_s),
    );
    metric(
        "read_position",
        "gauge",
        "Byte offset of the next event the reader reads, labelled with its file.",
        &[(
            format!("{{file=\"{}\"}}", label(&s.read_file)),
            s.read_pos as f64,
        )],
    );
    metric(
        "last_event_timestamp_seconds",
        "gauge",
        "Server timestamp of the newest event read.",
        &one(s.read_ts as f64),
    );
    if let Some(b) = s.measured.lag_bytes {
        metric(
            "lag_bytes",
            "gauge",
            "Binlog bytes between the reader and the server's head.",
            &one(b as f64),
        );
    }
    if let Some(sec) = s.lag_s {
        metric(
            "lag_seconds",
            "gauge",
            "Seconds the reader is behind the server (0 when at its head).",
            &one(sec as f64),
        );
    }
    if let Some(a) = s.written_age_s {
        metric(
            "checkpoint_age_seconds",
            "gauge",
            "Seconds since a checkpoint was last written.",
            &one(a as f64),
        );
    }
    let tables: Vec<(String, f64)> = s
        .tables
        .iter()
        .map(|(t, n)| {
            let (db, table) = t.split_once('.').unwrap_or((t, ""));
            (
                format!("{{database=\"{}\",table=\"{}\"}}", label(db), label(table)),
                *n as f64,
            )
        })
        .collect();
    metric(
        "table_rows_sent_total",
        "counter",
        "Row changes Kafka acknowledged, per table.",
        &tables,
    );
    if !s.snapshots.is_empty() {
        let per = |f: &dyn Fn(&SnapshotRow) -> f64| -> Vec<(String, f64)> {
            s.snapshots
                .iter()
                .map(|r| {
                    let (db, table) = r.table.split_once('.').unwrap_or((&r.table, ""));
                    (
                        format!("{{database=\"{}\",table=\"{}\"}}", label(db), label(table)),
                        f(r),
                    )
                })
                .collect()
        };
        metric(
            "snapshot_rows_sent",
            "gauge",
            "Rows a table's snapshot has handed on (from before a restart too).",
            &per(&|r| r.sent as f64),
        );
        metric(
            "snapshot_rows_estimate",
            "gauge",
            "The table's rows as information_schema estimates them (exact once done).",
            &per(&|r| r.estimate as f64),
        );
        metric(
            "snapshot_rows_per_second",
            "gauge",
            "A table's snapshot rate in this run.",
            &per(&|r| r.rows_per_s),
        );
        metric(
            "snapshot_seconds_left",
            "gauge",
            "Seconds a running snapshot needs at its rate (0 once done).",
            &per(&|r| r.left_s.unwrap_or(0) as f64),
        );
        metric(
            "snapshot_done",
            "gauge",
            "1 once a table's snapshot is complete.",
            &per(&|r| if r.done { 1.0 } else { 0.0 }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            pipeline: "shop <main>".into(),
            version: "0.1.0",
            mysql: "127.0.0.1:3306".into(),
            brokers: "127.0.0.1:9092".into(),
            topic: "cdc".into(),
            uptime_s: 3700,
            read_file: "binlog.000007".into(),
            read_pos: 123_456,
            read_ts: 1_700_000_000,
            released: Some("binlog.000007:120000".into()),
            written: Some("binlog.000007:110000".into()),
            written_age_s: Some(1),
            depth: 12,
            rows_read: 1000,
            rows_sent: 990,
            bytes_sent: 250_000,
            checkpoints_written: 40,
            failovers: 1,
            schema: Some(crate::pipeline::SchemaStatus {
                tables: 12,
                versions: 3,
                last_ddl: Some("binlog.000007:100: ALTER TABLE t ADD c INT".into()),
            }),
            measured: Measured {
                rows_per_s: 16.5,
                bytes_per_s: 4200.0,
                lag_bytes: Some(2048),
                head: Some("binlog.000007:125504".into()),
            },
            lag_s: Some(3),
            tables: [("shop.orders".to_string(), 990)].into_iter().collect(),
            snapshots: vec![SnapshotRow {
                table: "shop.orders".into(),
                sent: 250,
                estimate: 1000,
                superseded: 3,
                rows_per_s: 125.0,
                left_s: Some(6),
                done: false,
                elapsed_s: 2.0,
            }],
            last_error: None,
            unhealthy: None,
            now_s: 1_700_000_003,
        }
    }

    #[test]
    fn the_page_shows_position_lag_and_escapes_names() {
        let html = render_html(&snap());
        assert!(html.contains("binlog.000007:123456"));
        assert!(html.contains("3s (2.0 KB behind)"));
        assert!(html.contains("shop &lt;main&gt;"), "names are escaped");
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no external assets");
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let m = render_metrics(&snap());
        assert!(m.contains("binlog2kafka_rows_sent_total 990\n"));
        assert!(m.contains("binlog2kafka_lag_bytes 2048\n"));
        assert!(m.contains(
            "binlog2kafka_table_rows_sent_total{database=\"shop\",table=\"orders\"} 990\n"
        ));
        assert!(m.contains("binlog2kafka_up 1\n"));
        assert!(
            m.contains("binlog2kafka_snapshot_rows_sent{database=\"shop\",table=\"orders\"} 250\n")
        );
        assert!(m.contains(
            "binlog2kafka_snapshot_seconds_left{database=\"shop\",table=\"orders\"} 6\n"
        ));
        let page = render_html(&snap());
        assert!(
            page.contains("<progress id=\"snapshot-0\" max=\"1000\" value=\"250\">25%</progress>"),
            "{page}"
        );
        assert!(
            page.contains("250 of about 1000 rows (25%), 125 rows/s, 6s left"),
            "{page}"
        );
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("binlog2kafka_"), "{line}");
            value.parse::<f64>().unwrap();
        }
    }
}
