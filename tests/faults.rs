//! Fault tests: the daemon, MySQL or Kafka fails in the middle of a running
//! workload, and afterwards every committed change is in the topic, in
//! binlog order, with duplicates bounded by what was in flight. Network
//! faults go through the harness's TCP proxy; server faults stop and start
//! real server processes. Each test prints what it did and what it verified.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{
    checkpoint_at, consume_at, database, only, sql, testenv, try_sql, unique, with, Daemon, Msg,
    BROKER, MYSQL_PORT,
};
use mysql::prelude::Queryable;
use serde_json::Value;

/// The workload table: `v` is always `id * 7`, so a value can be checked
/// without remembering it.
const TABLE: &str = "CREATE TABLE w (id BIGINT PRIMARY KEY, v BIGINT, pad VARCHAR(64))";

/// A client writing transactions of `rows` rows with ascending ids until
/// stopped. It reconnects when the server goes away; a transaction whose
/// COMMIT got no answer may or may not be in the binlog ("uncertain").
struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Written>,
}

#[derive(Default, Debug)]
struct Written {
    committed: Vec<i64>,
    uncertain: Vec<i64>,
    errors: usize,
}

impl Writer {
    fn start(port: u16, db: &str, rows: i64, pause: Duration) -> Writer {
        Writer::start_from(port, db, rows, pause, 1)
    }

    /// `start`, with ids from `first`.
    fn start_from(port: u16, db: &str, rows: i64, pause: Duration, first: i64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, db) = (stop.clone(), db.to_string());
        let handle = thread::spawn(move || {
            let mut out = Written::default();
            let mut conn: Option<mysql::Conn> = None;
            let mut next = first;
            while !flag.load(Ordering::SeqCst) {
                let mut c = match conn.take() {
                    Some(c) => c,
                    None => match try_sql(port) {
                        Ok(c) => c,
                        Err(_) => {
                            thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                    },
                };
                let ids: Vec<i64> = (next..next + rows).collect();
                next += rows;
                let result = (|| -> mysql::Result<()> {
                    c.query_drop(format!("USE `{db}`"))?;
                    c.query_drop("BEGIN")?;
                    for &id in &ids {
                        c.exec_drop(
                            "INSERT INTO w (id, v, pad) VALUES (?, ?, REPEAT('x', 40))",
                            (id, id * 7),
                        )?;
                    }
                    c.query_drop("COMMIT")
                })();
                match result {
                    Ok(()) => {
                        out.committed.extend(&ids);
                        conn = Some(c);
                    }
                    Err(_) => {
                        out.uncertain.extend(&ids);
                        out.errors += 1;
                        thread::sleep(Duration::from_millis(200));
                    }
                }
                thread::sleep(pause);
            }
            out
        });
        Writer { stop, handle }
    }

    fn stop(self) -> Written {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// What the topic held, checked against what was written.
#[derive(Debug)]
struct Verified {
    messages: usize,
    rows: usize,
    duplicates: usize,
}

impl Verified {
    fn print(&self, written: &Written) {
        println!(
            "verified: {} rows committed ({} uncertain), {} messages read, {} rows once duplicates are dropped, {} duplicates, all in commit order",
            written.committed.len(),
            written.uncertain.len(),
            self.messages,
            self.rows,
            self.duplicates
        );
    }

    fn assert_no_duplicates(&self) {
        assert_eq!(
            self.duplicates, 0,
            "a reconnect resumes after the last event read"
        );
    }
}

/// SIGTERM, and a clean exit.
fn stop_clean(daemon: Daemon) {
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

/// Drops duplicates (same binlog position and row offset), then checks:
/// every committed row is there, nothing is there that was not written, the
/// values are right, and rows arrive in commit order (one writer, ascending
/// ids, one partition).
fn verify(msgs: &[Msg], written: &Written) -> Verified {
    let mut coordinates = std::collections::HashSet::new();
    let mut ids = Vec::new();
    let mut duplicates = 0;
    for m in msgs {
        let c = (
            m.value["position"].to_string(),
            m.value["xoffset"].to_string(),
        );
        if !coordinates.insert(c) {
            duplicates += 1;
            continue;
        }
        let d = &m.value["data"];
        let id = d["id"].as_i64().unwrap();
        assert_eq!(d["v"].as_i64(), Some(id * 7), "row {id} has a wrong value");
        ids.push(id);
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "rows are out of commit order once duplicates are dropped"
    );
    let present: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let missing: Vec<_> = written
        .committed
        .iter()
        .filter(|id| !present.contains(id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "committed rows missing from the topic (first ones): {missing:?}"
    );
    let possible: std::collections::HashSet<i64> = written
        .committed
        .iter()
        .chain(&written.uncertain)
        .copied()
        .collect();
    assert!(
        present.is_subset(&possible),
        "the topic holds rows that were never written"
    );
    Verified {
        messages: msgs.len(),
        rows: ids.len(),
        duplicates,
    }
}

/// Waits until the daemon's checkpoint reaches the server's head, then reads
/// the topic back and verifies it against what was written.
fn settle(daemon: &mut Daemon, broker: &str, topic: &str, db: &str, written: &Written) -> Verified {
    daemon.caught_up();
    verify(&consume_at(broker, topic, db, 1_000_000, 3.0), written)
}

/// The daemon's final error line (`binlog2kafka: error: ...`).
fn error_line(log: &str) -> String {
    log.lines()
        .rfind(|l| l.starts_with("binlog2kafka: error:"))
        .unwrap_or_else(|| panic!("no ERROR line in:\n{log}"))
        .to_string()
}

fn census(broker: &str, topic: &str, db: &str) -> Value {
    let out = common::run_python("census.py", &[broker, topic, db]);
    assert!(
        out.status.success(),
        "census.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A Tansu broker of its own, reached only through a proxy, so the test can
/// take the network away without the broker losing its in-memory topics.
fn broker_behind_proxy(name: &str, port: u16, proxy_port: u16) -> (Proxy, String) {
    testenv(&["tansu", name, &port.to_string(), &proxy_port.to_string()]);
    (
        Proxy::start(proxy_port, port),
        format!("127.0.0.1:{proxy_port}"),
    )
}

#[test]
fn broker_cut_off_for_30s_pauses_the_pipeline_then_it_continues_with_nothing_skipped() {
    common::servers();
    let (proxy, broker) = broker_behind_proxy("cut", 9093, 19093);
    let db = database(MYSQL_PORT, "cut", &[TABLE]);
    let topic = unique("cut");
    let env = with(only(&topic, &db), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_KAFKA_TIMEOUT_MS", "2000");
    let env = with(env, "B2K_PIPELINE_PENDING_EVENTS", "16");
    let mut daemon = Daemon::start(&env);
    let writer = Writer::start(MYSQL_PORT, &db, 5, Duration::from_millis(20));
    thread::sleep(Duration::from_secs(2));
    proxy.cut();
    let cut = Instant::now();
    thread::sleep(Duration::from_secs(30));
    assert!(
        daemon.exited().is_none(),
        "the daemon must wait out an outage"
    );
    daemon.wait_for_log("cannot send to Kafka", Duration::from_secs(1));
    proxy.restore();
    println!(
        "broker cut off for {:.1} s with the workload running",
        cut.elapsed().as_secs_f64()
    );
    daemon.wait_for_log("Kafka is back", Duration::from_secs(30));
    thread::sleep(Duration::from_secs(2));
    let written = writer.stop();
    let v = settle(&mut daemon, &broker, &topic, &db, &written);
    let peak = daemon.peak_rss_kib();
    let log = daemon.log_text();
    assert_eq!(
        log.matches("cannot send to Kafka").count(),
        1,
        "one log line when sending starts failing, not one per retry:\n{log}"
    );
    v.print(&written);
    println!("peak RSS {peak} KiB");
    stop_clean(daemon);
}

#[test]
fn broker_black_holed_for_10s_times_out_reconnects_and_loses_nothing() {
    common::servers();
    let (proxy, broker) = broker_behind_proxy("hole", 9094, 19094);
    let db = database(MYSQL_PORT, "hole", &[TABLE]);
    let topic = unique("hole");
    let env = with(only(&topic, &db), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_KAFKA_TIMEOUT_MS", "2000");
    let mut daemon = Daemon::start(&env);
    let writer = Writer::start(MYSQL_PORT, &db, 5, Duration::from_millis(20));
    thread::sleep(Duration::from_secs(2));
    // Connections stay open but nothing comes back: only timeouts tell.
    proxy.blackhole();
    thread::sleep(Duration::from_secs(10));
    proxy.restore();
    println!("broker black-holed for 10 s (kafka.timeout_ms=2000) with the workload running");
    daemon.wait_for_log("Kafka is back", Duration::from_secs(30));
    thread::sleep(Duration::from_secs(1));
    let written = writer.stop();
    let v = settle(&mut daemon, &broker, &topic, &db, &written);
    v.print(&written);
    stop_clean(daemon);
}

#[test]
fn broker_restarted_without_its_storage_stops_the_daemon_with_a_clear_message() {
    common::servers();
    let port = "9095";
    testenv(&["tansu", "amnesia", port]);
    let broker = format!("127.0.0.1:{port}");
    let db = database(MYSQL_PORT, "amnesia", &[TABLE]);
    let topic = unique("amnesia");
    let env = with(only(&topic, &db), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_KAFKA_TIMEOUT_MS", "2000");
    let mut daemon = Daemon::start(&env);
    let writer = Writer::start(MYSQL_PORT, &db, 5, Duration::from_millis(10));
    thread::sleep(Duration::from_secs(2));
    let mut written = writer.stop();
    daemon.caught_up();
    let before = consume_at(&broker, &topic, &db, 1_000_000, 2.0);

    // The in-memory broker restarts: every topic and offset is gone.
    testenv(&["kill", "amnesia"]);
    testenv(&["tansu", "amnesia", port]);
    let next = written
        .committed
        .iter()
        .chain(&written.uncertain)
        .max()
        .unwrap()
        + 1;
    let writer = Writer::start_from(MYSQL_PORT, &db, 5, Duration::from_millis(10), next);
    let status = daemon.wait(Duration::from_secs(30));
    let more = writer.stop();
    let log = daemon.log_text();
    let error = error_line(&log);
    println!("broker restarted empty; the daemon stopped with: {error}");
    assert!(!status.success(), "it must not report success");
    assert!(
        error.contains("lost acknowledged data") || error.contains("disappeared"),
        "the error says the broker lost data: {error}"
    );

    // Following the message's advice sends everything after the checkpoint
    // again: with what was read before the restart, nothing is missing.
    let advised = error
        .split("start.position=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the message names a start.position")
        .to_string();
    let env = with(env, "B2K_START_POSITION", &advised);
    let env = with(env, "B2K_PIPELINE_NAME", &format!("{topic}_recovered"));
    let mut recovered = Daemon::start(&env);
    recovered.wait_caught_up(&common::commits(&topic), &format!("{topic}_recovered"));
    let after = consume_at(&broker, &topic, &db, 1_000_000, 2.0);
    // Under load the daemon can stop before the second writer wrote a row:
    // then nothing is after the checkpoint, and nothing is sent again.
    let written_after_restart = more.committed.len();
    written.committed.extend(more.committed);
    written.uncertain.extend(more.uncertain);
    let mut all: Vec<Msg> = before.clone();
    // Rows re-sent after the restart come after those read before it.
    let first_new = after
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .min();
    all.retain(|m| first_new.is_none_or(|f| m.value["data"]["id"].as_i64().unwrap() < f));
    all.extend(after.iter().cloned());
    let v = verify(&all, &written);
    println!(
        "verified: restarted at {advised} as the message advised; {} rows committed, {} read before the broker restart, {} after, {} distinct rows, none missing",
        written.committed.len(),
        before.len(),
        after.len(),
        v.rows
    );
    assert!(
        !after.is_empty() || written_after_restart == 0,
        "rows written after the broker restart were sent again"
    );
    stop_clean(recovered);
}

#[test]
fn mariadb_restart_mid_stream_reconnects_from_the_last_event_read() {
    common::servers();
    let port: u16 = testenv(&["mariadb", "restart", "3310"]).parse().unwrap();
    let db = database(port, "restart", &[TABLE]);
    let topic = unique("dbrestart");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &port.to_string());
    let mut daemon = Daemon::start(&env);
    let writer = Writer::start(port, &db, 5, Duration::from_millis(10));
    thread::sleep(Duration::from_secs(2));
    testenv(&["kill", "restart"]);
    thread::sleep(Duration::from_secs(1));
    testenv(&["mariadb", "restart", "3310"]);
    println!("MariaDB stopped and started again mid-stream (a new binlog file on start)");
    thread::sleep(Duration::from_secs(2));
    let written = writer.stop();
    daemon.wait_for_log("MySQL stream re-established", Duration::from_secs(60));
    let v = settle(&mut daemon, BROKER, &topic, &db, &written);
    let log = daemon.log_text();
    assert!(
        log.contains("MySQL stream lost"),
        "the outage is logged:\n{log}"
    );
    v.print(&written);
    v.assert_no_duplicates();
    stop_clean(daemon);
}

#[test]
fn mysql_connection_cut_and_black_holed_reconnects_with_back_off() {
    common::servers();
    let proxy = Proxy::start(0, MYSQL_PORT);
    let db = database(MYSQL_PORT, "mycut", &[TABLE]);
    let topic = unique("mycut");
    let env = with(only(&topic, &db), "B2K_MYSQL_PORT", &proxy.port.to_string());
    // The stream is declared dead after 3 x 1 s without an event (the
    // server sends a heartbeat every second).
    let env = with(env, "B2K_MYSQL_TIMEOUT_MS", "1000");
    let mut daemon = Daemon::start(&env);
    let writer = Writer::start(MYSQL_PORT, &db, 5, Duration::from_millis(20));
    thread::sleep(Duration::from_secs(1));
    proxy.cut();
    thread::sleep(Duration::from_secs(4));
    proxy.restore();
    daemon.wait_for_log("MySQL stream re-established", Duration::from_secs(30));
    println!("MySQL connection cut for 4 s");
    thread::sleep(Duration::from_secs(1));
    proxy.blackhole();
    thread::sleep(Duration::from_secs(6));
    proxy.restore();
    println!("MySQL connection black-holed for 6 s (mysql.timeout_ms=1000)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon
        .log_text()
        .matches("MySQL stream re-established")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no second reconnect:\n{}",
            daemon.log_text()
        );
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_secs(1));
    let written = writer.stop();
    let v = settle(&mut daemon, BROKER, &topic, &db, &written);
    v.print(&written);
    v.assert_no_duplicates();
    stop_clean(daemon);
}

#[test]
fn binlog_rotation_during_large_transactions_and_kill_9_keeps_every_row() {
    common::servers();
    let db = database(MYSQL_PORT, "rotate", &[TABLE]);
    let topic = unique("rotate");
    // Transactions of 400 rows stream on after 50 held rows, so checkpoints
    // fall inside transactions.
    let env = with(only(&topic, &db), "B2K_PIPELINE_TXN_BUFFER_ROWS", "50");
    let env = with(env, "B2K_PIPELINE_CHECKPOINT_INTERVAL_MS", "100");
    let first = Daemon::start(&env);
    let writer = Writer::start(MYSQL_PORT, &db, 400, Duration::from_millis(5));
    let stop_flush = Arc::new(AtomicBool::new(false));
    let flag = stop_flush.clone();
    let flusher = thread::spawn(move || {
        let mut c = sql(MYSQL_PORT);
        let mut n = 0;
        while !flag.load(Ordering::SeqCst) {
            c.query_drop("FLUSH BINARY LOGS").unwrap();
            n += 1;
            thread::sleep(Duration::from_millis(300));
        }
        n
    });
    thread::sleep(Duration::from_millis(1500));
    first.kill9();
    let second = Daemon::start(&env);
    thread::sleep(Duration::from_millis(1700));
    second.kill9();
    let mut daemon = Daemon::start(&env);
    thread::sleep(Duration::from_secs(1));
    stop_flush.store(true, Ordering::SeqCst);
    let flushes = flusher.join().unwrap();
    let written = writer.stop();
    let v = settle(&mut daemon, BROKER, &topic, &db, &written);
    println!(
        "FLUSH BINARY LOGS x{flushes} and kill -9 x2 during 400-row transactions: {} rows committed, {} messages, {} duplicates",
        written.committed.len(),
        v.messages,
        v.duplicates
    );
    // Rows re-read after each kill that Kafka had are not sent again.
    v.assert_no_duplicates();
    stop_clean(daemon);
}

#[test]
fn a_500k_row_transaction_with_a_small_pending_channel_stays_in_bounded_memory_and_resumes_inside_it(
) {
    common::servers();
    const ROWS: i64 = 500_000;
    let db = database(MYSQL_PORT, "big", &[TABLE]);
    let topic = unique("big");
    let env = with(only(&topic, &db), "B2K_PIPELINE_PENDING_EVENTS", "8");
    let env = with(env, "B2K_PIPELINE_CHECKPOINT_INTERVAL_MS", "100");
    let first = Daemon::start(&env);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!(
        "INSERT INTO `{db}`.w (id, v, pad) SELECT seq, seq * 7, REPEAT('x', 40) FROM `{db}`.seq_1_to_{ROWS}"
    ))
    .unwrap();
    // kill -9 once the checkpoint is inside the transaction.
    let commits = common::commits(&topic);
    let pipe = common::pipe(&topic);
    let deadline = Instant::now() + Duration::from_secs(120);
    let inside = loop {
        assert!(
            Instant::now() < deadline,
            "no checkpoint inside the transaction:\n{}",
            first.log_text()
        );
        if let Some(cp) = checkpoint_at(BROKER, &commits, &pipe) {
            if cp["rows"].as_u64().unwrap_or(0) > 0 {
                break cp;
            }
        }
        thread::sleep(Duration::from_millis(200));
    };
    let first_peak = first.peak_rss_kib();
    first.kill9();
    let mut daemon = Daemon::start(&env);
    assert!(
        daemon.log_text().contains(&format!(
            "from checkpoint {}:{}",
            inside["file"].as_str().unwrap(),
            inside["pos"]
        )),
        "resumes inside the transaction:\n{}",
        daemon.log_text()
    );
    daemon.wait_caught_up(&commits, &pipe);
    let peak = daemon.peak_rss_kib().max(first_peak);
    let n = census(BROKER, &topic, &db);
    println!(
        "one {ROWS}-row transaction, pipeline.pending_events=8, kill -9 with the checkpoint {} rows into it: {n}; peak RSS {} KiB",
        inside["rows"], peak
    );
    assert_eq!(n["ids"], ROWS, "every row present: {n}");
    assert_eq!(n["min"], 1);
    assert_eq!(n["max"], ROWS);
    assert_eq!(n["out_of_order"], 0);
    assert_eq!(n["bad_values"], 0);
    assert_eq!(
        n["duplicates"], 0,
        "rows re-read inside the transaction that Kafka had are not sent again: {n}"
    );
    // The documented bound (README, "Memory"): 64 MB for these settings.
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB is over the 64 MB bound"
    );
    stop_clean(daemon);
}

#[test]
fn an_idle_pipeline_moves_its_checkpoint_past_ddl_and_restarts_at_the_head() {
    common::servers();
    let topic = unique("idle");
    let mut daemon = Daemon::start(&only(&topic, "idle_rows_none"));
    let db = database(
        MYSQL_PORT,
        "idle",
        &[
            "CREATE TABLE a (id INT PRIMARY KEY)",
            "ALTER TABLE a ADD COLUMN b INT",
            "CREATE INDEX ab ON a (b)",
            "DROP TABLE a",
        ],
    );
    let commits = common::commits(&topic);
    let pipe = common::pipe(&topic);
    daemon.wait_caught_up(&commits, &pipe);
    let cp = checkpoint_at(BROKER, &commits, &pipe).unwrap();
    stop_clean(daemon);
    let restarted = Daemon::start(&only(&topic, "idle_rows_none"));
    let from = format!("from checkpoint {}:", cp["file"].as_str().unwrap());
    let log = restarted.log_text();
    let resumed_at: u64 = log
        .split(&from)
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {from:?} in:\n{log}"));
    assert!(resumed_at >= cp["pos"].as_u64().unwrap());
    let msgs = consume_at(BROKER, &topic, &db, 1, 1.0);
    assert!(msgs.is_empty(), "DDL produces no row messages");
    println!(
        "DDL only: checkpoint followed the server to {}:{}; a restart resumed at {resumed_at}",
        cp["file"].as_str().unwrap(),
        cp["pos"]
    );
}

#[test]
fn an_idle_daemon_heartbeats_into_the_commit_log_and_releases_it_on_stop() {
    common::servers();
    let topic = unique("beat");
    let env = only(&topic, "beat_rows_none"); // heartbeat every 300 ms
    let daemon = Daemon::start(&env);
    let (commits, pipe) = (common::commits(&topic), common::pipe(&topic));
    thread::sleep(Duration::from_millis(700));
    let a = checkpoint_at(BROKER, &commits, &pipe).unwrap();
    thread::sleep(Duration::from_millis(1500));
    let b = checkpoint_at(BROKER, &commits, &pipe).unwrap();
    let beat = b["ts_ms"].as_u64().unwrap() - a["ts_ms"].as_u64().unwrap();
    assert!(
        beat >= 900,
        "the heartbeat's timestamp moves on while idle: {a} then {b}"
    );
    assert_eq!(a["owner"], b["owner"]);
    assert_eq!(b["released"], false);
    stop_clean(daemon);
    let last = checkpoint_at(BROKER, &commits, &pipe).unwrap();
    assert_eq!(last["released"], true, "a clean stop releases the pipeline");
    println!("heartbeat: ts_ms moved {beat} ms in 1.5 s with no traffic; the final record is released: {last}");
}

#[test]
fn a_second_daemon_with_the_same_pipeline_name_refuses_to_start() {
    common::servers();
    let topic = unique("twin");
    let env = only(&topic, "twin_rows_none");
    let first = Daemon::start(&env);
    let other = with(env.clone(), "B2K_MYSQL_SERVER_ID", &common::server_id());
    let started = Instant::now();
    let (status, _, stderr) = common::run_to_end(&["run"], &other);
    let line = error_line(&stderr);
    println!(
        "second daemon exited {status} after {:.1} s: {line}",
        started.elapsed().as_secs_f64()
    );
    assert!(!status.success());
    assert!(line.contains("already running"), "{line}");
    stop_clean(first);
    // Released by a clean stop: the next start does not wait for a lease.
    let next = Daemon::start(&other);
    assert!(!next.log_text().contains("held by"), "{}", next.log_text());
    stop_clean(next);
}

#[test]
fn a_record_larger_than_the_limit_stops_with_the_table_and_position_before_it() {
    common::servers();
    let db = database(
        MYSQL_PORT,
        "huge",
        &["CREATE TABLE h (id INT PRIMARY KEY, body MEDIUMBLOB)"],
    );
    let topic = unique("huge");
    let env = with(only(&topic, &db), "B2K_KAFKA_MAX_RECORD_BYTES", "4096");
    let mut daemon = Daemon::start(&env);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO h VALUES (1, 'small'), (2, 'small')")
        .unwrap();
    c.query_drop("INSERT INTO h VALUES (3, REPEAT('z', 10000))")
        .unwrap();
    let big_at = common::binlog_head(MYSQL_PORT);
    c.query_drop("INSERT INTO h VALUES (4, 'small')").unwrap();
    let status = daemon.wait(Duration::from_secs(30));
    let log = daemon.log_text();
    let line = error_line(&log);
    println!("a 10 KB row with kafka.max_record_bytes=4096 stopped the daemon: {line}");
    assert!(!status.success());
    assert!(line.contains(&format!("{db}.h")), "names the table: {line}");
    assert!(
        line.contains("kafka.max_record_bytes"),
        "says what to raise: {line}"
    );
    let msgs = consume_at(BROKER, &topic, &db, 10, 2.0);
    let ids: Vec<i64> = msgs
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![1, 2],
        "rows before it were delivered, nothing after"
    );
    let cp = checkpoint_at(BROKER, &common::commits(&topic), &common::pipe(&topic)).unwrap();
    assert!(
        (
            cp["file"].as_str().unwrap().to_string(),
            cp["pos"].as_u64().unwrap()
        ) < big_at,
        "the checkpoint {cp} stays before the large row (which ends at {big_at:?})"
    );
    // Raising the limit, as the message says, delivers it and what follows.
    let env = with(env, "B2K_KAFKA_MAX_RECORD_BYTES", "1048576");
    let mut daemon = Daemon::start(&env);
    let msgs = consume_at(BROKER, &topic, &db, 4, 10.0);
    let ids: Vec<i64> = msgs
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    println!("with the limit raised, the restart delivered rows 3 and 4; checkpoint was {cp}");
    daemon.caught_up();
    stop_clean(daemon);
}
