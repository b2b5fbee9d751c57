//! Not one duplicate: rows acknowledged by Kafka after the last checkpoint
//! are read again after a crash, and the producer skips every one its
//! partition already holds (README "Positions, checkpoints and restarts").

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use mysql::prelude::Queryable;

/// Inserts a row into `tick` every interval until stopped, so a daemon
/// that takes over has something new to publish at once.
struct Ticker {
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Ticker {
    fn start(db: &str, every: Duration) -> Ticker {
        let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (db, flag) = (db.to_string(), on.clone());
        let thread = std::thread::spawn(move || {
            let mut c = sql(MYSQL_PORT);
            c.query_drop(format!("USE `{db}`")).unwrap();
            while flag.load(std::sync::atomic::Ordering::SeqCst) {
                c.query_drop("INSERT INTO tick VALUES ()").unwrap();
                std::thread::sleep(every);
            }
        });
        Ticker { on, thread }
    }

    fn stop(self) {
        self.on.store(false, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

/// Rows this daemon has had acknowledged, from its /metrics.
fn rows_sent(addr: &str) -> Option<f64> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix("binlog2kafka_rows_sent_total "))
        .and_then(|v| v.parse().ok())
}

#[test]
fn five_kill_9s_during_a_load_leave_every_row_exactly_once() {
    servers();
    let db = database(
        MYSQL_PORT,
        "exactly",
        &[
            "CREATE TABLE k (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE tick (id INT AUTO_INCREMENT PRIMARY KEY)",
        ],
    );
    let topic = unique("exactly");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    // The default checkpoint interval (1 s): a kill loses the acknowledged
    // rows of up to a second from the checkpoint, all of them in Kafka.
    let env = with(env, "B2K_KAFKA_TOPIC_PARTITIONS", "3");
    let first = Daemon::start(&env);
    // 50,000 row changes in transactions of 100 rows: 25,000 inserts, then
    // an update of each row, so each key has an order to keep.
    let writer_db = db.clone();
    let writer = std::thread::spawn(move || {
        let mut c = sql(MYSQL_PORT);
        c.query_drop(format!("USE `{writer_db}`")).unwrap();
        for t in 0..250 {
            let (lo, hi) = (t * 100 + 1, t * 100 + 100);
            c.query_drop(format!("INSERT INTO k SELECT seq, 0 FROM seq_{lo}_to_{hi}"))
                .unwrap();
            std::thread::sleep(Duration::from_millis(4));
        }
        for t in 0..250 {
            let (lo, hi) = (t * 100 + 1, t * 100 + 100);
            c.query_drop(format!("UPDATE k SET v = 1 WHERE id BETWEEN {lo} AND {hi}"))
                .unwrap();
            std::thread::sleep(Duration::from_millis(4));
        }
    });
    // A row every 10 ms besides, so each restart has something new to
    // publish when it takes over.
    let ticker = Ticker::start(&db, Duration::from_millis(10));
    let mut random_ms = random_waits(200, 800);
    let mut daemon = first;
    let mut takeovers = Vec::new();
    let mut moments = Vec::new();
    let mut logs = String::new();
    for _ in 0..5 {
        let wait = random_ms();
        moments.push(wait);
        std::thread::sleep(Duration::from_millis(wait));
        logs.push_str(&daemon.kill9());
        let killed = Instant::now();
        daemon = Daemon::start_waiting(&env);
        let addr = status_addr(&mut daemon);
        // Kill to the first new row published by the next daemon.
        let deadline = Instant::now() + Duration::from_secs(30);
        while rows_sent(&addr).is_none_or(|n| n < 1.0) {
            assert!(
                Instant::now() < deadline,
                "nothing published after the restart:\n{}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        takeovers.push(killed.elapsed());
    }
    writer.join().unwrap();
    ticker.stop();
    daemon.caught_up();
    logs.push_str(&daemon.log_text());
    let msgs: Vec<Msg> = consume(&topic, &db, usize::MAX, 3.0)
        .into_iter()
        .filter(|m| m.value["table"] == "k")
        .collect();

    let mut coordinates = HashSet::new();
    let mut duplicates = 0;
    let mut per_key: HashMap<i64, Vec<(i64, &str)>> = HashMap::new();
    for m in &msgs {
        let v = &m.value;
        if !coordinates.insert((v["position"].to_string(), v["xoffset"].to_string())) {
            duplicates += 1;
        }
        per_key
            .entry(v["data"]["id"].as_i64().unwrap())
            .or_default()
            .push((
                v["data"]["v"].as_i64().unwrap(),
                v["type"].as_str().unwrap(),
            ));
    }
    println!(
        "kill -9 after {moments:?} ms; takeover (kill to first new row published) {:?}; {} messages, {duplicates} duplicates",
        takeovers.iter().map(|t| format!("{:.0} ms", t.as_secs_f64() * 1000.0)).collect::<Vec<_>>(),
        msgs.len()
    );
    assert_eq!(duplicates, 0, "no change twice in the topic");
    assert_eq!(msgs.len(), 50_000, "every change, once");
    assert_eq!(per_key.len(), 25_000);
    for (id, changes) in &per_key {
        assert_eq!(
            changes,
            &vec![(0, "insert"), (1, "update")],
            "key {id}: insert, then update, each once"
        );
    }
    for t in &takeovers {
        assert!(*t < Duration::from_secs(2), "takeover took {t:?}");
    }
    // The restarts did read rows again that Kafka had: the skip is what
    // kept them out.
    let skipped: u64 = logs
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
                .filter(|_| l.contains("were in Kafka already"))
        })
        .sum();
    println!("rows read again and found in Kafka already: {skipped}");
    assert!(skipped > 0, "some restart re-read rows Kafka had:\n{logs}");
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn a_produce_answer_lost_on_the_way_does_not_double_the_batch() {
    servers();
    // A broker of its own behind a proxy that speaks the Kafka framing; the
    // broker tells clients to use the proxy's port.
    let (port, proxy_port) = (9101, 19101);
    testenv(&[
        "tansu",
        "lostack",
        &port.to_string(),
        &proxy_port.to_string(),
    ]);
    let proxy = common::proxy::KafkaProxy::start(proxy_port, port);
    let broker = format!("127.0.0.1:{proxy_port}");
    let db = database(
        MYSQL_PORT,
        "lostack",
        &["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(200))"],
    );
    let topic = unique("lostack");
    let env = with(settings(&topic), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let mut d = Daemon::start(&env);
    // The next data batch of 500 rows (far larger than a checkpoint).
    proxy.lose_next_produce_answer(16 * 1024);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t SELECT seq, REPEAT('x', 100) FROM seq_1_to_500")
        .unwrap();
    d.caught_up();
    let log = d.log_text();
    let msgs = consume_at(&broker, &topic, &db, usize::MAX, 3.0);
    let ids: HashSet<i64> = msgs
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    println!(
        "answers lost: {}; {} messages for 500 rows",
        proxy.lost.load(std::sync::atomic::Ordering::SeqCst),
        msgs.len()
    );
    assert_eq!(
        proxy.lost.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one answer was lost"
    );
    assert!(
        log.contains("had the batch already"),
        "the retry found it stored:\n{log}"
    );
    assert_eq!(ids.len(), 500);
    assert_eq!(msgs.len(), 500, "the retried batch is in the topic once");
    let (status, _) = d.stop();
    assert!(status.success());
}

/// Every record of the commit-log topic: (offset, owner) of each checkpoint.
fn checkpoint_owners(commit_topic: &str, pipeline: &str) -> Vec<(i64, String)> {
    let out = run_python("consume.py", &[BROKER, commit_topic, "-", "0.5"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["key"].as_str() == Some(pipeline))
        .filter_map(|m| {
            let v: serde_json::Value = serde_json::from_str(m["value"].as_str()?).ok()?;
            Some((m["offset"].as_i64()?, v["owner"].as_str()?.to_string()))
        })
        .collect()
}

/// The zombie: a daemon frozen with SIGSTOP while a successor takes the
/// pipeline over, woken with SIGCONT while its own lease is still valid (a
/// heartbeat of a minute), with a backlog of stale updates in its socket.
/// The lease cannot stop it here, and the server does not drop its replica
/// connection (the successor has its own server_id); the broker does: the
/// successor took the pipeline's transactional id, and the broker refuses
/// the old epoch.
#[test]
fn a_paused_daemon_woken_after_its_successor_took_over_is_fenced_by_the_broker() {
    servers();
    let db = database(
        MYSQL_PORT,
        "zombie",
        &["CREATE TABLE hot (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("zombie");
    let base = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let (commits, pipeline) = (common::commits(&topic), common::pipe(&topic));
    let mut old = Daemon::start(&with(
        base.clone(),
        "B2K_PIPELINE_HEARTBEAT_INTERVAL_MS",
        "60000",
    ));
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    let set = |c: &mut mysql::Conn, from: i64, to: i64| {
        for v in from..=to {
            c.query_drop(format!("UPDATE hot SET v = {v} WHERE id = 1"))
                .unwrap();
        }
    };
    c.query_drop("INSERT INTO hot VALUES (1, 0)").unwrap();
    set(&mut c, 1, 50);
    assert_eq!(consume(&topic, &db, 51, 10.0).len(), 51);
    // Its last checkpoint is written; then it is frozen, and the next 50
    // updates reach its socket but not its producer.
    std::thread::sleep(Duration::from_millis(1500));
    old.signal("-STOP");
    set(&mut c, 51, 100);
    std::thread::sleep(Duration::from_millis(500));

    // The successor runs with a server_id of its own (another host's
    // configuration, say), so the server does not drop the old daemon's
    // replica connection: when it wakes, its reader goes on.
    let started = Instant::now();
    let new = Daemon::start(&with(base.clone(), "B2K_MYSQL_SERVER_ID", &server_id()));
    set(&mut c, 101, 150);
    let msgs = consume(&topic, &db, 151, 5.0);
    assert_eq!(
        msgs.len(),
        151,
        "the successor published the backlog and more"
    );
    println!(
        "the successor published all 151 changes {:.1} s after it started",
        started.elapsed().as_secs_f64()
    );
    let taken_at = checkpoint_owners(&commits, &pipeline)
        .iter()
        .find(|(_, o)| !o.is_empty() && *o != checkpoint_owners(&commits, &pipeline)[0].1)
        .map(|(at, _)| *at)
        .expect("the successor wrote a checkpoint");

    old.signal("-CONT");
    let status = old.wait(Duration::from_secs(15));
    let log = old.log_text();
    assert!(!status.success(), "{log}");
    let last = log.lines().last().unwrap_or_default();
    println!("the woken daemon's last line: {last}");
    assert!(
        last.contains("binlog2kafka: error: fenced"),
        "one line saying it was fenced:\n{log}"
    );

    std::thread::sleep(Duration::from_secs(1));
    let values: Vec<i64> = consume(&topic, &db, 200, 3.0)
        .iter()
        .map(|m| m.value["data"]["v"].as_i64().unwrap())
        .collect();
    assert_eq!(
        values,
        (0..=150).collect::<Vec<_>>(),
        "every value once, in order: nothing stale after the new"
    );
    let owners = checkpoint_owners(&commits, &pipeline);
    let old_owner = owners[0].1.clone();
    assert!(
        owners
            .iter()
            .all(|(at, o)| *at < taken_at || *o != old_owner),
        "no checkpoint of the woken daemon after the takeover: {owners:?}"
    );
    let (status, log) = new.stop();
    assert!(status.success(), "{log}");
}

/// A crash on another host: the dead owner's pid says nothing here (it ran
/// in a PID namespace of its own), so the successor cannot prove it gone.
/// With the broker fencing, it takes over once the owner missed one
/// heartbeat (plus a second), not three: safe even if the owner still ran,
/// because taking the transactional id fences it.
#[test]
fn a_crash_on_another_host_is_taken_over_after_one_missed_heartbeat() {
    servers();
    let db = database(
        MYSQL_PORT,
        "elsewhere",
        &["CREATE TABLE tick (id INT AUTO_INCREMENT PRIMARY KEY)"],
    );
    let topic = unique("elsewhere");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    // A 4 s heartbeat: three missed would be 12 s, one plus a second 5 s.
    let env = with(env, "B2K_PIPELINE_HEARTBEAT_INTERVAL_MS", "4000");
    let mut first = Daemon::start_elsewhere(&env);
    let ticker = Ticker::start(&db, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(1500));
    let before = consume(&topic, &db, 1_000_000, 1.0).len();
    assert!(before > 10, "the first daemon streams: {before}");
    first.signal("-KILL");
    let killed = Instant::now();
    first.wait(Duration::from_secs(5));
    let second = Daemon::start_waiting(&env);
    // The first row published after the kill.
    let mut seen = 0;
    let takeover = loop {
        let n = consume(&topic, &db, 1_000_000, 0.3).len();
        if n > seen && seen > 0 {
            break killed.elapsed();
        }
        seen = seen.max(n);
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "no takeover:\n{}",
            second.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    ticker.stop();
    let log = second.log_text();
    println!(
        "kill -9 of a daemon in another PID space; takeover (kill to the next new row published) {:.1} s",
        takeover.as_secs_f64()
    );
    assert!(log.contains("taking over"), "{log}");
    assert!(
        takeover < Duration::from_secs(9),
        "one missed heartbeat (4 s) and a second, not three (12 s): {takeover:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let want: i64 = sql(MYSQL_PORT)
        .query_first(format!("SELECT COUNT(*) FROM `{db}`.tick"))
        .unwrap()
        .unwrap();
    let msgs = consume(&topic, &db, want as usize + 100, 3.0);
    let ids: HashSet<i64> = msgs
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        (msgs.len(), ids.len()),
        (want as usize, want as usize),
        "every row once"
    );
    let (status, log) = second.stop();
    assert!(status.success(), "{log}");
}

/// Records of a release before the `b2k.pos` header carry nothing the
/// restart can recognise re-read rows by. After such a release crashed,
/// the upgrade may send what was in flight again: the log says so, and
/// why, instead of duplicating without a word (README: only a clean stop
/// upgrades exactly).
#[test]
fn a_partition_last_written_by_a_release_without_the_header_is_named_at_restart() {
    common::servers();
    let db = common::database(
        common::MYSQL_PORT,
        "oldrelease",
        &["CREATE TABLE t (id INT PRIMARY KEY)"],
    );
    let topic = common::unique("oldrelease");
    let env = common::with(
        common::settings(&topic),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.*"),
    );
    // The pipeline's checkpoint, as the old release left it; its data
    // topic holds only what the old release wrote, without headers.
    let d = common::Daemon::start(&env);
    assert!(d.stop().0.success());
    let mut c = common::sql(common::MYSQL_PORT);
    common::kafka_client()
        .produce(
            &topic,
            0,
            &common::text_records(&[format!(
                r#"{{"database":"{db}","table":"t","type":"insert","data":{{"id":2}}}}"#
            )]),
        )
        .unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (3)"))
        .unwrap();
    let mut d = common::Daemon::start(&env);
    d.wait_for_log("carries no b2k.pos header", Duration::from_secs(20));
    let log = d.log_text();
    assert!(
        log.contains(&format!(
            "{topic}/0: its newest record carries no b2k.pos header"
        )) && log.contains("stop the old release cleanly"),
        "{log}"
    );
    assert!(d.stop().0.success());
}
