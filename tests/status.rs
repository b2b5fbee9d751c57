//! The operator's view of a running pipeline: the status page, /metrics
//! and /healthz against the real MariaDB and broker, a headless Chromium
//! rendering of the page (its screenshot kept under target/), and the
//! packaging files: docker-compose.yml parsed by docker-compose, the
//! Dockerfile's build command the documented static build, the SysV init
//! script and systemd unit running the daemon.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::web::{self, get};
use common::{database, root, settings, sql, status_addr, testenv, unique, with, Daemon};
use mysql::prelude::Queryable;

/// The value of metric line `name` (labels included), if present.
fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls until `f` is true or `secs` pass.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("not within {secs}s: {what}");
}

#[test]
fn status_page_and_metrics_follow_a_running_pipeline() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "status",
        &["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))"],
    );
    let topic = unique("status");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let mut daemon = Daemon::start(&env);
    let addr = status_addr(&mut daemon);
    let (code, before) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    let pos0 = metric(&before, "binlog2kafka_read_position{").unwrap_or(0.0);
    let (code, _) = get(&addr, "/healthz");
    assert_eq!(code, 200, "an idle pipeline is healthy");

    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for i in 0..50 {
        c.exec_drop("INSERT INTO t VALUES (?, 'x')", (i,)).unwrap();
    }
    let table_metric =
        format!("binlog2kafka_table_rows_sent_total{{database=\"{db}\",table=\"t\"}}");
    eventually(20, "the table's 50 rows counted in /metrics", || {
        metric(&get(&addr, "/metrics").1, &table_metric) == Some(50.0)
    });
    // The lag is measured every 5 s against the server's head.
    eventually(15, "lag 0 once caught up", || {
        metric(&get(&addr, "/metrics").1, "binlog2kafka_lag_bytes") == Some(0.0)
    });
    let (_, after) = get(&addr, "/metrics");
    let pos1 = read_position(&after);
    assert!(pos1.1 > pos0, "the read position moved: {pos0} -> {pos1:?}");
    assert!(metric(&after, "binlog2kafka_rows_sent_total").unwrap() >= 50.0);
    assert_eq!(
        metric(&after, "binlog2kafka_waiting_queue_depth"),
        Some(0.0)
    );
    assert_eq!(metric(&after, "binlog2kafka_up"), Some(1.0));

    let (code, page) = get(&addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains(&format!("{}:{}", pos1.0, pos1.1)), "{page}");
    assert!(
        page.contains(&format!("<td>{db}.t</td><td>50</td>")),
        "{page}"
    );
    assert!(page.contains("http-equiv=\"refresh\""));
    assert!(page.contains("name=\"viewport\""));
    assert_eq!(get(&addr, "/nope").0, 404);

    // Headless Chromium renders the page; the screenshot is kept.
    let (dom, shot, png) = render(&addr, "status-page.png");
    assert!(
        dom.contains(&format!("{}:", pos1.0)),
        "the rendered page shows the read position: {dom}"
    );
    let lag = dom
        .split("id=\"lag\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or("");
    assert!(lag.contains("0s (0 B behind)"), "rendered lag: {lag:?}");
    // The charts of the last hour: inline SVG, drawn (their line's colour
    // is on the screenshot).
    assert!(dom.contains("<svg id=\"pipeline-rate\""), "{dom}");
    assert!(dom.contains("<svg id=\"pipeline-lag\""), "{dom}");
    let drawn = web::pixels_of_colour(&png, (0x09, 0x69, 0xda), 40);
    assert!(
        drawn > 0,
        "no chart line on the screenshot {}",
        shot.display()
    );
    println!(
        "status page: read position {}:{}, 50 rows counted, lag `{lag}`; screenshot {} ({} bytes)",
        pos1.0,
        pos1.1,
        shot.display(),
        png.len()
    );
    drop(daemon);
}

/// The status page at `addr` rendered by headless Chromium as a phone
/// shows it.
fn render(addr: &str, name: &str) -> (String, std::path::PathBuf, Vec<u8>) {
    web::render(&format!("http://{addr}/"), name, (412, 915))
}

/// The read position from /metrics: (file, offset).
fn read_position(metrics: &str) -> (String, f64) {
    let line = metrics
        .lines()
        .find(|l| l.starts_with("binlog2kafka_read_position{"))
        .unwrap();
    let file = line.split('"').nth(1).unwrap().to_string();
    (file, line.rsplit(' ').next().unwrap().parse().unwrap())
}

#[test]
fn healthz_turns_503_while_the_broker_is_unreachable_and_200_after() {
    common::servers();
    testenv(&["tansu", "status", "9096", "19096"]);
    let proxy = Proxy::start(19096, 9096);
    let db = database(
        common::MYSQL_PORT,
        "health",
        &["CREATE TABLE t (id INT PRIMARY KEY)"],
    );
    let topic = unique("health");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_KAFKA_BROKERS", "127.0.0.1:19096");
    let env = with(env, "B2K_KAFKA_TIMEOUT_MS", "2000");
    let mut daemon = Daemon::start(&env);
    let addr = status_addr(&mut daemon);
    assert_eq!(get(&addr, "/healthz").0, 200);
    proxy.cut();
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t VALUES (1), (2)").unwrap();
    let mut reason = String::new();
    eventually(20, "/healthz 503 with the broker cut off", || {
        let (code, body) = get(&addr, "/healthz");
        reason = body;
        code == 503
    });
    assert!(reason.contains("Kafka unreachable"), "{reason}");
    let (_, page) = get(&addr, "/");
    assert!(page.contains("unhealthy"), "the page says so too");
    assert_eq!(
        metric(&get(&addr, "/metrics").1, "binlog2kafka_up"),
        Some(0.0)
    );
    proxy.restore();
    eventually(30, "/healthz 200 after the broker is back", || {
        get(&addr, "/healthz").0 == 200
    });
    let (_, page) = get(&addr, "/");
    assert!(page.contains("cannot"), "the last error stays on the page");
    println!("healthz: 503 `{}` while cut off, 200 after", reason.trim());
    drop(daemon);
    drop(proxy);
    testenv(&["kill", "status"]);
}

#[test]
fn a_status_port_in_use_is_one_clear_error() {
    common::servers();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let env = with(settings(&unique("busy")), "B2K_HTTP_LISTEN", &addr);
    let (status, _, stderr) = common::run_to_end(&["run"], &env);
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot serve the status page on {addr}"))
            && stderr.contains("http.listen"),
        "{stderr}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    common::servers();
    let topic = unique("jsonlog");
    let env = with(settings(&topic), "B2K_LOG_FORMAT", "json");
    let mut daemon = Daemon::start(&env);
    status_addr(&mut daemon);
    let log = daemon.log_text();
    let mut n = 0;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in ["ts", "level", "thread", "msg"] {
            assert!(v.get(field).is_some(), "{field} missing: {line}");
        }
        n += 1;
    }
    assert!(log.contains("streaming binlog from"));
    println!("log.format=json: {n} lines, each one JSON object");
    drop(daemon);
}

#[test]
fn docker_compose_file_parses_and_the_dockerfile_builds_as_documented() {
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "--quiet"])
        .current_dir(root())
        .output()
        .expect("run docker-compose (scripts/testenv installs it)");
    assert!(
        out.status.success(),
        "docker-compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    for needle in [
        "mysql:8.4",
        "--binlog-format=ROW",
        "--binlog-row-metadata=FULL",
        "--gtid-mode=ON",
        "apache/kafka:4",
        "KAFKA_PROCESS_ROLES: broker,controller",
        "\"9000:9000\"",
        "B2K_HTTP_LISTEN: 0.0.0.0:9000",
    ] {
        assert!(
            compose.contains(needle),
            "docker-compose.yml lacks {needle}"
        );
    }
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let build = "cargo build --release --target x86_64-unknown-linux-musl";
    assert!(
        docker.contains(&format!("RUN {build}")),
        "Dockerfile builds with `{build}`"
    );
    assert!(readme.contains(build), "README documents `{build}`");
    for needle in [
        "FROM scratch",
        "USER 65534:65534",
        "ca-certificates.crt",
        "EXPOSE 9000",
    ] {
        assert!(docker.contains(needle), "Dockerfile lacks {needle}");
    }
    // Every B2K_ variable the compose file sets is a config key.
    for var in compose
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("B2K_"))
        .map(|w| w.trim_end_matches(':'))
    {
        let known = binlog2kafka::config::KEYS
            .iter()
            .any(|k| binlog2kafka::config::env_name(k.name) == format!("B2K_{var}"));
        assert!(known, "docker-compose.yml sets unknown B2K_{var}");
    }
}

#[test]
fn the_sysv_init_script_starts_reports_and_stops_the_daemon() {
    common::servers();
    let dir = std::env::temp_dir().join(unique("initd"));
    std::fs::create_dir_all(&dir).unwrap();
    let topic = unique("initd");
    // The defaults file the init script reads, as an operator writes it.
    let conf = dir.join("binlog2kafka.properties");
    let mut text = String::new();
    for (k, v) in settings(&topic) {
        let key = binlog2kafka::config::KEYS
            .iter()
            .find(|x| binlog2kafka::config::env_name(x.name) == k)
            .unwrap()
            .name;
        text.push_str(&format!("{key} = {v}\n"));
    }
    std::fs::write(&conf, text).unwrap();
    let script = root().join("conf/binlog2kafka.init");
    let run = |action: &str| {
        let out = Command::new("sh")
            .arg(&script)
            .arg(action)
            .env("DAEMON", env!("CARGO_BIN_EXE_binlog2kafka"))
            .env("CONFIG", &conf)
            .env("PIDFILE", dir.join("b2k.pid"))
            .env("LOGFILE", dir.join("b2k.log"))
            .env("DAEMON_USER", "root")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(run("status").0, 3, "not running yet: LSB status 3");
    let (code, out) = run("start");
    assert_eq!(code, 0, "{out}");
    eventually(20, "the daemon streams", || {
        std::fs::read_to_string(dir.join("b2k.log"))
            .unwrap_or_default()
            .contains("streaming binlog from")
    });
    let (code, out) = run("status");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running"), "{out}");
    let (code, out) = run("stop");
    assert_eq!(code, 0, "{out}");
    let log = std::fs::read_to_string(dir.join("b2k.log")).unwrap();
    assert!(
        log.contains("stopped cleanly"),
        "SIGTERM, then a clean stop: {log}"
    );
    assert_eq!(run("status").0, 3);

    let unit = std::fs::read_to_string(root().join("conf/binlog2kafka.service")).unwrap();
    for needle in [
        "ExecStart=/usr/local/bin/binlog2kafka run --config /etc/binlog2kafka/binlog2kafka.properties",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "User=binlog2kafka",
    ] {
        assert!(unit.contains(needle), "the systemd unit lacks {needle}");
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(root().join("conf/binlog2kafka.service"))
        .output();
    if let Ok(out) = out {
        // Without systemd running, verify still parses the unit; only the
        // missing binary and user are expected complaints.
        let err = String::from_utf8_lossy(&out.stderr);
        for line in err.lines() {
            assert!(
                line.contains("/usr/local/bin/binlog2kafka")
                    || line.contains("binlog2kafka")
                    || line.contains("System has not been booted"),
                "systemd-analyze: {line}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slow_and_idle_clients_do_not_hold_up_a_health_probe() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "probe",
        &["CREATE TABLE t (id INT PRIMARY KEY)"],
    );
    let topic = unique("probe");
    let mut d = Daemon::start(&with(
        settings(&topic),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.*"),
    ));
    let addr = status_addr(&mut d);
    // Five idle sockets and one that sends half a request and stalls.
    let idle: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let (code, body) = get(&addr, "/healthz");
    let took = t.elapsed();
    assert_eq!((code, body.trim()), (200, "ok"));
    // Served beside them, not after their 2 s timeouts (a queue of six
    // would take 12 s).
    assert!(took < Duration::from_millis(1500), "probe took {took:?}");
    println!("/healthz answered in {took:?} beside 5 idle and 1 stalled connection");
    drop(idle);
    drop(slow);
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn a_running_snapshot_shows_its_progress_bar() {
    common::servers();
    let db = database(
        common::MYSQL_PORT,
        "status_snap",
        &["CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20))"],
    );
    let mut c = sql(common::MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO big SELECT seq, 'x' FROM seq_1_to_60000")
        .unwrap();
    c.query_drop("ANALYZE TABLE big").unwrap();
    let topic = unique("status_snap");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_SNAPSHOT_MODE", "initial");
    // Small chunks: the snapshot takes seconds, so it is seen under way.
    let env = with(env, "B2K_SNAPSHOT_CHUNK_ROWS", "64");
    let mut daemon = Daemon::start(&env);
    let addr = status_addr(&mut daemon);
    daemon.wait_for_log(
        &format!("snapshot of {db}.big started"),
        Duration::from_secs(30),
    );
    let sent = format!("binlog2kafka_snapshot_rows_sent{{database=\"{db}\",table=\"big\"}}");
    eventually(20, "some rows of the snapshot sent", || {
        metric(&get(&addr, "/metrics").1, &sent).is_some_and(|n| n >= 1000.0)
    });
    let (dom, shot, _) = render(&addr, "status-snapshot.png");
    let bar = dom
        .split("<progress id=\"snapshot-0\"")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_else(|| panic!("the rendered page has a progress bar: {dom}"));
    let attr = |name: &str| -> f64 {
        bar.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {bar}"))
    };
    let (value, max) = (attr("value"), attr("max"));
    assert!(value > 0.0 && value <= max, "value {value} of max {max}");
    let text = dom
        .split("id=\"snapshot-0-text\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or("");
    assert!(
        text.contains("rows/s") && (text.contains("left") || text.starts_with("done")),
        "rendered progress: {text:?}"
    );
    println!(
        "snapshot progress bar at {value} of {max}: `{text}`; screenshot {}",
        shot.display()
    );
    daemon.wait_for_log(
        &format!("snapshot of {db}.big done"),
        Duration::from_secs(120),
    );
    let (_, page) = get(&addr, "/");
    assert!(page.contains("done: 60000 rows"), "{page}");
    drop(daemon);
}
