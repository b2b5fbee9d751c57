//! The test harness: starts the real servers through `scripts/testenv` (the
//! same script CI and the demo use), runs the daemon binary, writes SQL as a
//! separate user, and reads topics back with kafka-python, an independent
//! client. Tests never skip when a server is missing: they start it.
#![allow(dead_code)]

pub mod netns;
pub mod proxy;
pub mod web;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testenv(args: &[&str]) -> String {
    let out = Command::new(root().join("scripts/testenv"))
        .args(args)
        .output()
        .expect("run scripts/testenv");
    assert!(
        out.status.success(),
        "scripts/testenv {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Installs (once per test process) and starts the shared MariaDB :3307 and
/// Tansu :9092.
pub fn servers() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        testenv(&["start"]);
    });
}

pub const BROKER: &str = "127.0.0.1:9092";
pub const MYSQL_PORT: u16 = 3307;

/// A topic or database name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!(
        "{prefix}_{}_{t}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A replica server id no other daemon in this run uses (the server drops
/// the older of two replicas with the same id).
pub fn server_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    (1000 + std::process::id() % 10_000 * 100 + N.fetch_add(1, Ordering::SeqCst)).to_string()
}

pub fn python() -> PathBuf {
    root().join("target/testenv/venv/bin/python")
}

/// SQL as the `tester` user (not the daemon's replication user).
pub fn sql(port: u16) -> mysql::Conn {
    try_sql(port).expect("connect as tester")
}

/// `sql`, for callers that expect the server to be away at times.
pub fn try_sql(port: u16) -> mysql::Result<mysql::Conn> {
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(port)
        .user(Some("tester"))
        .pass(Some("tester"))
        .tcp_connect_timeout(Some(Duration::from_secs(5)))
        .init(vec!["SET NAMES utf8mb4", "SET time_zone = '+00:00'"]);
    mysql::Conn::new(opts)
}

/// The server's current binlog file and position (`SHOW MASTER STATUS`).
pub fn binlog_head(port: u16) -> (String, u64) {
    let row: mysql::Row = sql(port)
        .query_first("SHOW MASTER STATUS")
        .unwrap()
        .unwrap();
    (row.get(0).unwrap(), row.get(1).unwrap())
}

/// A fresh database with `ddl` run in it.
pub fn database(port: u16, prefix: &str, ddl: &[&str]) -> String {
    let db = unique(prefix);
    let mut c = sql(port);
    c.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"))
        .unwrap();
    c.query_drop(format!("USE `{db}`")).unwrap();
    for d in ddl {
        c.query_drop(d).unwrap();
    }
    db
}

/// One record read back by kafka-python.
#[derive(Debug, Clone)]
pub struct Msg {
    pub partition: i64,
    pub offset: i64,
    pub key: Value,
    pub value: Value,
    /// The value's text as it came, for checks of exact number tokens.
    pub raw: String,
    /// Record headers, name to text.
    pub headers: Value,
}

/// Reads `topic` from the beginning with kafka-python and keeps the records
/// whose value's `database` is `db`, until `want` of them arrived or nothing
/// new came for `idle` seconds.
pub fn consume(topic: &str, db: &str, want: usize, idle: f64) -> Vec<Msg> {
    consume_at(BROKER, topic, db, want, idle)
}

/// `consume` from the broker at `broker`.
pub fn consume_at(broker: &str, topic: &str, db: &str, want: usize, idle: f64) -> Vec<Msg> {
    script_lines(
        "consume.py",
        &[broker, topic, &want.to_string(), &idle.to_string(), db],
    )
    .into_iter()
    .map(|m| Msg {
        partition: m["partition"].as_i64().unwrap(),
        offset: m["offset"].as_i64().unwrap(),
        key: serde_json::from_str(m["key"].as_str().unwrap_or("null")).unwrap(),
        value: serde_json::from_str(m["value"].as_str().unwrap_or("null")).unwrap(),
        raw: m["value"].as_str().unwrap_or("").to_string(),
        headers: m["headers"].clone(),
    })
    .collect()
}

/// Runs `tests/SCRIPT` with the test venv's Python and `args`; each line
/// it prints, as JSON. A script that fails fails the test with its stderr.
pub fn script_lines<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> Vec<Value> {
    let out = Command::new(python())
        .arg(root().join("tests").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A running daemon with its log in a file.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
}

/// The settings a test daemon runs with: its own topics, pipeline and
/// server id, against the shared servers.
pub fn settings(topic: &str) -> Vec<(String, String)> {
    [
        ("B2K_MYSQL_HOST", "127.0.0.1".to_string()),
        ("B2K_MYSQL_PORT", MYSQL_PORT.to_string()),
        ("B2K_MYSQL_USER", "cdc".into()),
        ("B2K_MYSQL_PASSWORD", "cdc-secret".into()),
        ("B2K_MYSQL_SERVER_ID", server_id()),
        ("B2K_KAFKA_BROKERS", BROKER.into()),
        ("B2K_KAFKA_TOPIC", topic.to_string()),
        ("B2K_KAFKA_COMMIT_TOPIC", commits(topic)),
        ("B2K_PIPELINE_NAME", pipe(topic)),
        ("B2K_MYSQL_TIMEOUT_MS", "5000".into()),
        ("B2K_PIPELINE_SHUTDOWN_TIMEOUT_MS", "5000".into()),
        // A short lease, so a restart after kill -9 waits under a second.
        ("B2K_PIPELINE_HEARTBEAT_INTERVAL_MS", "300".into()),
        // Any free port: tests run daemons side by side.
        ("B2K_HTTP_LISTEN", "127.0.0.1:0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The test settings, publishing only the tables of `db`: the daemons of
/// tests running side by side then skip each other's rows undecoded.
pub fn only(topic: &str, db: &str) -> Vec<(String, String)> {
    with(settings(topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"))
}

/// The commit-log topic of [`settings`]`(topic)`.
pub fn commits(topic: &str) -> String {
    format!("{topic}_commits")
}

/// The pipeline name of [`settings`]`(topic)`.
pub fn pipe(topic: &str) -> String {
    format!("{topic}_pipe")
}

pub fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
    env
}

fn command(args: &[&str], env: &[(String, String)]) -> Command {
    command_via(&[], args, env)
}

/// `command` run through `wrapper` (a program and its arguments, before the
/// binary), e.g. `unshare` to run it as if on another host.
fn command_via(wrapper: &[&str], args: &[&str], env: &[(String, String)]) -> Command {
    let bin = env!("CARGO_BIN_EXE_binlog2kafka");
    let mut c = match wrapper.split_first() {
        None => Command::new(bin),
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
    };
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("B2K_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs the binary to completion: (exit status, stdout, stderr).
pub fn run_to_end(args: &[&str], env: &[(String, String)]) -> (ExitStatus, String, String) {
    let out = command(args, env)
        .stdin(Stdio::null())
        .output()
        .expect("run binlog2kafka");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Daemon {
    /// Starts `binlog2kafka run` and waits until it streams.
    pub fn start(env: &[(String, String)]) -> Daemon {
        let mut d = Daemon::start_waiting(env);
        d.wait_for_log("streaming binlog from", Duration::from_secs(30));
        d
    }

    /// Starts `binlog2kafka run` without waiting for anything.
    pub fn start_waiting(env: &[(String, String)]) -> Daemon {
        Daemon::start_via(&[], env)
    }

    /// Starts `binlog2kafka run` in a PID namespace of its own, as another
    /// host would run it: its instance id names a PID space the tests' own
    /// processes are not in, so no pid check can judge it. A SIGKILL to the
    /// wrapper (`Daemon::child`) kills the daemon too, as a crash would.
    pub fn start_elsewhere(env: &[(String, String)]) -> Daemon {
        let mut d = Daemon::start_via(
            &["unshare", "--pid", "--mount-proc", "--kill-child=SIGKILL"],
            env,
        );
        d.wait_for_log("streaming binlog from", Duration::from_secs(30));
        d
    }

    /// Starts `binlog2kafka run` under `wrapper` (a network namespace, a
    /// PID namespace), without waiting for it.
    pub fn start_via(wrapper: &[&str], env: &[(String, String)]) -> Daemon {
        let log = std::env::temp_dir().join(format!("{}.log", unique("b2k-daemon")));
        let f = File::create(&log).unwrap();
        let child = command_via(wrapper, &["run"], env)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("start binlog2kafka");
        Daemon {
            child,
            log,
            env: env.to_vec(),
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "daemon exited ({status}) before logging {needle:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "daemon did not log {needle:?} within {timeout:?}:\n{}",
            self.log_text()
        );
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal("-TERM");
        let status = self.wait(Duration::from_secs(30));
        (status, self.log_text())
    }

    /// SIGKILL: no flush, no final checkpoint.
    pub fn kill9(mut self) -> String {
        self.signal("-KILL");
        self.wait(Duration::from_secs(10));
        self.log_text()
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                panic!(
                    "daemon did not exit within {timeout:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Daemon::wait_caught_up`] on the daemon's own commit-log topic and
    /// pipeline.
    pub fn caught_up(&mut self) {
        let (commits, pipeline) = (
            self.setting("B2K_KAFKA_COMMIT_TOPIC"),
            self.setting("B2K_PIPELINE_NAME"),
        );
        self.wait_caught_up(&commits, &pipeline);
    }

    /// The daemon's newest checkpoint, from its own commit-log topic.
    pub fn checkpoint(&self) -> Option<Value> {
        checkpoint_at(
            &self.setting("B2K_KAFKA_BROKERS"),
            &self.setting("B2K_KAFKA_COMMIT_TOPIC"),
            &self.setting("B2K_PIPELINE_NAME"),
        )
    }

    /// Waits until the daemon's checkpoint has moved past everything the
    /// server had written when this was called.
    pub fn wait_caught_up(&mut self, commit_topic: &str, pipeline: &str) {
        let port: u16 = self.setting("B2K_MYSQL_PORT").parse().unwrap();
        let broker = self.setting("B2K_KAFKA_BROKERS");
        let head = binlog_head(port);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(cp) = checkpoint_at(&broker, commit_topic, pipeline) {
                let file = cp["file"].as_str().unwrap().to_string();
                let pos = cp["pos"].as_u64().unwrap();
                if (file.clone(), pos) >= head {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("checkpoint never reached {head:?}:\n{}", self.log_text());
    }

    /// The value this daemon was started with for `key`.
    pub fn setting(&self, key: &str) -> String {
        self.env
            .iter()
            .rfind(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("daemon started without {key}"))
    }

    /// Peak resident memory (VmHWM) of the running daemon, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// The exit status if the daemon has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// The newest checkpoint record of `pipeline`, read with kafka-python.
pub fn checkpoint(commit_topic: &str, pipeline: &str) -> Option<Value> {
    checkpoint_at(BROKER, commit_topic, pipeline)
}

/// `checkpoint` from the broker at `broker`.
pub fn checkpoint_at(broker: &str, commit_topic: &str, pipeline: &str) -> Option<Value> {
    let out = Command::new(python())
        .arg(root().join("tests/consume.py"))
        .args([broker, commit_topic, "-", "0.5"])
        .output()
        .expect("run consume.py");
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|m| m["key"].as_str() == Some(pipeline))
        .and_then(|m| serde_json::from_str(m["value"].as_str()?).ok())
}

/// The one `binlog2kafka: error:` line of a log, which must be its last.
pub fn the_error(log: &str) -> String {
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("binlog2kafka: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line:\n{log}");
    assert_eq!(
        log.lines().last(),
        Some(errors[0]),
        "the error is the last line:\n{log}"
    );
    errors[0].to_string()
}

pub fn run_python(script: &str, args: &[&str]) -> std::process::Output {
    Command::new(python())
        .arg(root().join("tests").join(script))
        .args(args)
        .output()
        .expect("run python")
}

/// Random waits of `from` to `from + span` ms, seeded from the clock (a
/// test prints the ones it used, so a failure can be replayed).
pub fn random_waits(from: u64, span: u64) -> impl FnMut() -> u64 {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        from + (seed >> 33) % span
    }
}

/// A daemon's status page address (`http.listen` port 0), from its log.
pub fn status_addr(d: &mut Daemon) -> String {
    d.wait_for_log("status page on http://", Duration::from_secs(10));
    let log = d.log_text();
    let at = log.find("status page on http://").unwrap() + "status page on http://".len();
    log[at..].split('/').next().unwrap().to_string()
}

/// Records with these values (no key, no headers), for tests that write
/// through the client directly.
pub fn text_records(values: &[String]) -> Vec<binlog2kafka::kafka::OutRecord> {
    values
        .iter()
        .map(|v| binlog2kafka::kafka::OutRecord {
            key: None,
            value: Some(bytes::Bytes::from(v.clone())),
            timestamp_ms: 0,
            headers: Vec::new(),
        })
        .collect()
}

/// The values of `topic`, read by kafka-python with `env` telling it how to
/// connect (`CONSUME_SSL_*`, `CONSUME_SASL_*`; see consume.py).
pub fn values_of(broker: &str, topic: &str, env: &[(&str, String)]) -> Vec<String> {
    let out = Command::new(python())
        .arg(root().join("tests/consume.py"))
        .args([broker, topic, "-", "3"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["value"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// The daemon's own Kafka client, plaintext to the shared broker, for tests
/// that write to a topic as someone other than the daemon.
pub fn kafka_client() -> binlog2kafka::kafka::Client {
    use binlog2kafka::kafka::{Client, ClientConfig, Compression};
    Client::connect(ClientConfig {
        brokers: vec![BROKER.into()],
        client_id: "b2k-test".into(),
        timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        compression: Compression::None,
        tls: None,
        sasl: None,
    })
    .unwrap()
}

/// The shared MariaDB at `port` as the daemon reaches it (source::Target).
pub fn target(port: u16) -> binlog2kafka::source::Target {
    let env = [
        ("B2K_MYSQL_HOST", "127.0.0.1".to_string()),
        ("B2K_MYSQL_PORT", port.to_string()),
        ("B2K_MYSQL_USER", "tester".to_string()),
        ("B2K_MYSQL_PASSWORD", "tester".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    binlog2kafka::config::Config::load(None, env)
        .expect("test settings")
        .first_target()
}

/// GET `path` from the status page the daemon's log names.
pub fn http_get(log: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let at =
        log.find("status page on http://").expect("status page") + "status page on http://".len();
    let addr = log[at..].split('/').next().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
