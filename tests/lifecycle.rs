//! Signals, stops and takeovers as an init system, an operator and a
//! paused VM deliver them: SIGHUP does not stop the daemon, a stop honours
//! its timeout as a whole, a second signal ends it at once, a signal during
//! the start-up wait is obeyed, and a daemon paused past its lease sends
//! nothing once a successor took over.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{
    consume, database, only, root, servers, sql, testenv, try_sql, unique, with, Daemon, BROKER,
    MYSQL_PORT,
};
use mysql::prelude::Queryable;

const TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, v INT)";

fn signal(d: &Daemon, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &d.child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn exits_within(d: &mut Daemon, within: Duration) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    let status = d.wait(within);
    (status, t.elapsed())
}

fn insert(db: &str, ids: std::ops::RangeInclusive<i64>) {
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for i in ids {
        c.query_drop(format!("INSERT INTO t VALUES ({i}, 0)"))
            .unwrap();
    }
}

/// A broker of this test's own behind a proxy the test can freeze.
fn frozen_broker(name: &str, port: u16, proxy_port: u16) -> (Proxy, String) {
    common::servers();
    testenv(&["tansu", name, &port.to_string(), &proxy_port.to_string()]);
    (
        Proxy::start(proxy_port, port),
        format!("127.0.0.1:{proxy_port}"),
    )
}

#[test]
fn sighup_is_ignored_and_logged() {
    common::servers();
    let db = database(MYSQL_PORT, "hup", &[TABLE]);
    let topic = unique("hup");
    let mut d = Daemon::start(&only(&topic, &db));
    signal(&d, "-HUP");
    d.wait_for_log("SIGHUP received and ignored", Duration::from_secs(5));
    insert(&db, 1..=1);
    assert_eq!(consume(&topic, &db, 1, 10.0).len(), 1, "still streaming");
    assert!(d.exited().is_none());
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn a_stop_against_a_frozen_broker_honours_the_timeout_as_a_whole_and_names_the_broker() {
    let (proxy, broker) = frozen_broker("frozen", 9097, 19097);
    let db = database(MYSQL_PORT, "frozen", &[TABLE]);
    let topic = unique("frozen");
    let env = with(only(&topic, &db), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_KAFKA_TIMEOUT_MS", "20000");
    let env = with(env, "B2K_PIPELINE_SHUTDOWN_TIMEOUT_MS", "3000");
    let mut d = Daemon::start(&env);
    insert(&db, 1..=1);
    assert_eq!(common::consume_at(&broker, &topic, &db, 1, 10.0).len(), 1);
    proxy.blackhole();
    insert(&db, 2..=20);
    thread::sleep(Duration::from_millis(500));
    signal(&d, "-TERM");
    let (status, took) = exits_within(&mut d, Duration::from_secs(15));
    let log = d.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        took < Duration::from_millis(3000 + 2000),
        "the stop took {took:?} with pipeline.shutdown_timeout_ms=3000:\n{log}"
    );
    let e = log.lines().last().unwrap_or_default();
    assert!(
        e.starts_with("binlog2kafka: error: stop timed out after 3000 ms")
            && e.contains(&format!("broker {broker}")),
        "{e}"
    );
    assert!(!log.contains("os error 11"), "{log}");
    println!("stop against a frozen broker: exit after {took:?}: {e}");
    proxy.restore();
}

#[test]
fn a_second_signal_while_stopping_ends_the_daemon_at_once() {
    let (proxy, broker) = frozen_broker("twice", 9098, 19098);
    let db = database(MYSQL_PORT, "twice", &[TABLE]);
    let topic = unique("twice");
    let env = with(only(&topic, &db), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_PIPELINE_SHUTDOWN_TIMEOUT_MS", "60000");
    let mut d = Daemon::start(&env);
    proxy.blackhole();
    insert(&db, 1..=5);
    thread::sleep(Duration::from_millis(500));
    signal(&d, "-TERM");
    thread::sleep(Duration::from_millis(500));
    assert!(d.exited().is_none(), "the first signal waits for the flush");
    signal(&d, "-TERM");
    let (status, took) = exits_within(&mut d, Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "{}", d.log_text());
    println!("second SIGTERM: exit 1 after {took:?}");
    proxy.restore();
}

#[test]
fn sigterm_during_the_start_up_lease_wait_stops_at_once() {
    common::servers();
    let db = database(MYSQL_PORT, "leasewait", &[TABLE]);
    let topic = unique("leasewait");
    // A 15 s lease held by a daemon that still runs (paused): a start must
    // wait to see whether it is alive.
    let env = with(
        only(&topic, &db),
        "B2K_PIPELINE_HEARTBEAT_INTERVAL_MS",
        "5000",
    );
    let holder = Daemon::start(&env);
    signal(&holder, "-STOP");
    let mut next = Daemon::start_waiting(&env);
    next.wait_for_log("waiting up to", Duration::from_secs(10));
    signal(&next, "-TERM");
    let (status, took) = exits_within(&mut next, Duration::from_secs(5));
    let log = next.log_text();
    assert!(status.success(), "{log}");
    assert!(took < Duration::from_secs(2), "took {took:?}:\n{log}");
    assert!(log.contains("stopped by a signal during start-up"), "{log}");
    signal(&holder, "-CONT");
    drop(holder);
}

#[test]
fn a_restart_after_kill_9_on_the_same_host_takes_over_at_once() {
    common::servers();
    let db = database(MYSQL_PORT, "instant", &[TABLE]);
    let topic = unique("instant");
    // A 15 s lease: waiting it out would show.
    let env = with(
        only(&topic, &db),
        "B2K_PIPELINE_HEARTBEAT_INTERVAL_MS",
        "5000",
    );
    Daemon::start(&env).kill9();
    let t = Instant::now();
    let next = Daemon::start(&env);
    let took = t.elapsed();
    let log = next.log_text();
    assert!(log.contains("no longer runs on this host"), "{log}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}, not the 15 s lease:\n{log}"
    );
    insert(&db, 1..=1);
    assert_eq!(consume(&topic, &db, 1, 10.0).len(), 1);
    println!("restart after kill -9: streaming again {took:?} later (lease 15 s)");
    let (status, log) = next.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn a_daemon_paused_past_its_lease_sends_nothing_after_its_successor_took_over() {
    common::servers();
    let db = database(MYSQL_PORT, "zombie", &[TABLE]);
    let topic = unique("zombie");
    let env = only(&topic, &db);
    let mut old = Daemon::start(&env);
    insert(&db, 1..=1);
    assert_eq!(consume(&topic, &db, 1, 10.0).len(), 1);
    thread::sleep(Duration::from_millis(500));
    // Paused: rows written now reach its socket, not its producer.
    signal(&old, "-STOP");
    insert(&db, 2..=100);
    thread::sleep(Duration::from_millis(1500));
    let new = Daemon::start(&env);
    let msgs = consume(&topic, &db, 100, 5.0);
    assert_eq!(msgs.len(), 100, "the successor published the backlog");
    signal(&old, "-CONT");
    let (status, _) = exits_within(&mut old, Duration::from_secs(10));
    let log = old.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains("has taken over this pipeline.name")),
        "{log}"
    );
    thread::sleep(Duration::from_secs(1));
    let msgs = consume(&topic, &db, 200, 3.0);
    let mut ids: Vec<i64> = msgs
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (n, ids.len()),
        (100, 100),
        "each row once: the paused daemon sent nothing after waking"
    );
    let (status, log) = new.stop();
    assert!(status.success(), "{log}");
}

/// Ctrl-C in the terminal running `scripts/demo` (as its last line invites)
/// signals the whole foreground process group. The daemon once got that
/// SIGINT and the script's own SIGTERM, a second signal that means "exit
/// at once": exit 1, no final checkpoint. Now it stops cleanly, the script
/// exits 0 and says how to stop the servers, which keep running.
#[test]
fn ctrl_c_on_the_demo_stops_the_daemon_cleanly_and_leaves_the_servers_running() {
    use std::os::unix::process::CommandExt;
    servers();
    let out = std::env::temp_dir().join(unique("demo-out"));
    let mut cmd = Command::new(root().join("scripts/demo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("B2K_") {
            cmd.env_remove(k);
        }
    }
    // A process group of its own, as a terminal gives its foreground job.
    let mut demo = cmd
        .env("BINLOG2KAFKA_DEMO_BIN", env!("CARGO_BIN_EXE_binlog2kafka"))
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !text().contains("Ctrl-C stops it") {
        assert!(
            Instant::now() < deadline,
            "the demo never got going:\n{}",
            text()
        );
        assert!(
            demo.try_wait().unwrap().is_none(),
            "the demo ended:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let group = format!("-{}", demo.id());
    assert!(Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = demo.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(root().join("target/demo.log")).unwrap();
    assert!(status.success(), "demo exit {status}:\n{}\n{log}", text());
    assert!(
        log.contains("stopped cleanly"),
        "no final checkpoint:\n{log}"
    );
    assert!(text().contains("scripts/testenv stop"), "{}", text());
    assert!(try_sql(MYSQL_PORT).is_ok(), "MariaDB was stopped");
    assert!(
        std::net::TcpStream::connect(BROKER).is_ok(),
        "the broker was stopped"
    );
}
