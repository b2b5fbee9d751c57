//! Fleets: many pipelines in one process, spread over hosts by Kafka's
//! group protocol (see docs/fleet.md). Against the real Tansu broker and
//! MariaDB; the hosts are real daemon processes.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use binlog2kafka::kafka::group::{Beat, GroupSettings, Membership};
use common::*;

fn group(name: &str) -> GroupSettings {
    GroupSettings {
        group: name.into(),
        protocol_type: "binlog2kafka-fleet".into(),
        protocol: "cooperative-sticky-v1".into(),
        session_timeout: Duration::from_secs(6),
        rebalance_timeout: Duration::from_secs(6),
    }
}

/// A member on a thread of its own: joins, syncs (the leader hands out
/// `assign(ids)`), heartbeats until told to rejoin, and reports each
/// assignment it gets.
fn member(
    g: GroupSettings,
    label: &'static str,
    rounds: usize,
    out: crossbeam_channel::Sender<(&'static str, i32, String)>,
    leave_after: Option<Duration>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = kafka_client();
        let mut me = Membership::default();
        let started = Instant::now();
        for round in 1..=rounds {
            let j = c
                .join_group(&g, &mut me, bytes::Bytes::from(label))
                .unwrap();
            let plan: Vec<(String, bytes::Bytes)> = if j.is_leader(&me) {
                let labels: Vec<String> = j
                    .members
                    .iter()
                    .map(|(_, m)| String::from_utf8_lossy(m).into_owned())
                    .collect();
                j.members
                    .iter()
                    .map(|(id, _)| (id.clone(), bytes::Bytes::from(labels.join(","))))
                    .collect()
            } else {
                vec![]
            };
            let Some(a) = c.sync_group(&g, &mut me, plan).unwrap() else {
                continue;
            };
            out.send((
                label,
                j.generation,
                String::from_utf8_lossy(&a).into_owned(),
            ))
            .unwrap();
            if round == rounds && leave_after.is_none() {
                c.leave_group(&g, &mut me).unwrap();
                return;
            }
            loop {
                std::thread::sleep(Duration::from_millis(500));
                if leave_after.is_some_and(|d| started.elapsed() >= d) {
                    c.leave_group(&g, &mut me).unwrap();
                    return;
                }
                match c.heartbeat(&g, &mut me).unwrap() {
                    Beat::Steady => {}
                    Beat::Rebalance | Beat::Expelled => break,
                }
            }
        }
    })
}

#[test]
fn the_group_protocol_elects_a_leader_whose_plan_reaches_every_member_and_a_leave_rebalances() {
    servers();
    let g = group(&unique("b2k_group"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let a = member(g.clone(), "a", 3, tx.clone(), None);
    // a alone first.
    let (who, gen1, plan) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((who, plan.as_str()), ("a", "a"));
    // b joins: a is told to rejoin by its heartbeat, and both get the
    // leader's plan naming both, in a later generation.
    let b = member(g.clone(), "b", 1, tx, Some(Duration::from_secs(8)));
    let mut seen = BTreeMap::new();
    while seen.len() < 2 {
        let (who, gen, plan) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(gen > gen1);
        let mut names: Vec<&str> = plan.split(',').collect();
        names.sort();
        assert_eq!(names, ["a", "b"], "{who} got {plan}");
        seen.insert(who, gen);
    }
    assert_eq!(seen["a"], seen["b"], "one generation for both");
    // b leaves: a rebalances alone at once, well before the session timeout.
    let left = Instant::now();
    b.join().unwrap();
    let (who, gen3, plan) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((who, plan.as_str()), ("a", "a"));
    assert!(gen3 > seen["a"]);
    eprintln!("rebalance after a leave: {:?}", left.elapsed());
    drop(rx);
    a.join().unwrap();
}

/// What every host of a test fleet shares (its environment): the Kafka
/// connection, the credentials (no secret goes into a definition), short
/// timeouts, a server-id range of this fleet's own.
fn host_env(fleet: &str) -> Vec<(String, String)> {
    // Each fleet of this process its own range: the tests run side by
    // side, and two replicas with one server id make the server drop one.
    static FLEETS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = FLEETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 8;
    let base = 2_000_000 + (std::process::id() % 2_000) * 800 + n * 100;
    let mut env = settings(fleet);
    env.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "B2K_MYSQL_SERVER_ID" | "B2K_KAFKA_TOPIC" | "B2K_PIPELINE_NAME" | "B2K_HTTP_LISTEN"
        )
    });
    for (k, v) in [
        ("B2K_FLEET_NAME", fleet.to_string()),
        ("B2K_FLEET_SESSION_TIMEOUT_MS", "6000".into()),
        ("B2K_FLEET_HEARTBEAT_INTERVAL_MS", "1000".into()),
        ("B2K_FLEET_SERVER_ID_RANGE", format!("{base}-{}", base + 99)),
        ("B2K_HTTP_LISTEN", "off".into()),
    ] {
        env = with(env, k, &v);
    }
    env
}

/// A pipeline of the fleet: its own database and topic, from `start`.
struct Pipe {
    name: String,
    db: String,
    topic: String,
}

fn define(fleet: &str, i: usize, start: &(String, u64)) -> (Pipe, std::path::PathBuf) {
    let db = database(
        MYSQL_PORT,
        "fleet",
        &["CREATE TABLE t (id INT PRIMARY KEY, v INT)"],
    );
    let topic = unique("fleet_t");
    let name = format!("{fleet}_p{i}");
    let path = std::env::temp_dir().join(format!("{name}.properties"));
    std::fs::write(
        &path,
        format!(
            "# pipeline {i} of the test fleet\npipeline.name = {name}\nfilter.include = {db}.*\nkafka.topic = {topic}\nstart.position = {}:{}\n",
            start.0, start.1
        ),
    )
    .unwrap();
    (Pipe { name, db, topic }, path)
}

/// How many pipelines the host said it runs, last.
fn runs(d: &Daemon) -> Option<usize> {
    let log = d.log_text();
    let line = log.lines().rev().find(|l| l.contains("this host runs "))?;
    let n = line.split("this host runs ").nth(1)?.split(' ').next()?;
    n.parse().ok()
}

fn wait_runs(d: &Daemon, want: usize, timeout: Duration) -> Duration {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if runs(d) == Some(want) {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the host does not run {want} pipelines after {timeout:?} (last said {:?}):\n{}",
        runs(d),
        d.log_text()
    );
}

fn insert(db: &str, from: u32, to: u32, pause: Duration) {
    use mysql::prelude::Queryable;
    let mut c = sql(MYSQL_PORT);
    for i in from..=to {
        c.query_drop(format!("INSERT INTO `{db}`.t VALUES ({i}, {i})"))
            .unwrap();
        std::thread::sleep(pause);
    }
}

fn ids(p: &Pipe, want: usize) -> Vec<i64> {
    consume(&p.topic, &p.db, want, 5.0)
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect()
}

/// The pipelines the host said it runs, last.
fn running(d: &Daemon) -> Vec<String> {
    let log = d.log_text();
    let Some(line) = log.lines().rev().find(|l| l.contains("this host runs ")) else {
        return Vec::new();
    };
    let names = line.split("pipeline(s): ").nth(1).unwrap_or("");
    names
        .split(", ")
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// When each record of `topics` was first seen by a reader polling them
/// (the daemon's own client, one thread per topic), until dropped.
struct Arrivals {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Instant>>>,
}

impl Arrivals {
    fn watch(topics: &[String]) -> Arrivals {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = topics
            .iter()
            .map(|topic| {
                let (topic, stop) = (topic.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut client = kafka_client();
                    let mut seen = Vec::new();
                    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
                    let mut parts = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        if parts == 0 {
                            parts = client.partitions(&topic).ok().flatten().unwrap_or(0);
                        }
                        for p in 0..parts as i32 {
                            let at = next.entry(p).or_insert(0);
                            if let Ok(recs) = client.fetch(&topic, p, *at, 1 << 20) {
                                let now = Instant::now();
                                for r in &recs {
                                    if r.offset >= *at {
                                        seen.push(now);
                                        *at = r.offset + 1;
                                    }
                                }
                            }
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    seen
                })
            })
            .collect();
        Arrivals { stop, threads }
    }

    /// Per topic, the arrival times.
    fn finish(self) -> Vec<Vec<Instant>> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect()
    }
}

/// The longest time without a new record between `from` and `to`.
fn longest_gap(arrived: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = vec![from];
    times.extend(arrived.iter().filter(|t| **t > from && **t < to));
    times.push(to);
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap()
}

#[test]
fn twelve_pipelines_spread_over_three_hosts_move_when_one_dies_and_a_fourth_takes_a_quarter() {
    servers();
    let fleet = unique("b2k_fleet");
    let env = host_env(&fleet);
    let start = binlog_head(MYSQL_PORT);
    let mut pipes = Vec::new();
    for i in 0..12 {
        let (p, path) = define(&fleet, i, &start);
        let (status, out, err) = run_to_end(&["pipeline", "put", path.to_str().unwrap()], &env);
        assert!(status.success(), "put failed: {out}{err}");
        assert!(
            out.contains(&format!(
                "pipeline {} put in fleet {fleet} (mysql.server_id ",
                p.name
            )),
            "{out}"
        );
        pipes.push(p);
    }
    let (_, list, _) = run_to_end(&["pipeline", "list"], &env);
    assert_eq!(list.matches(" active ").count(), 12, "{list}");

    // Rows before the hosts start, and while they do.
    for p in &pipes {
        insert(&p.db, 1, 20, Duration::ZERO);
    }
    let t = Instant::now();
    let a = Daemon::start_waiting(&env);
    let b = Daemon::start_waiting(&env);
    let c = Daemon::start_waiting(&env);
    for d in [&a, &b, &c] {
        wait_runs(d, 4, Duration::from_secs(60));
    }
    eprintln!(
        "12 pipelines spread 4/4/4 over three hosts in {:?}",
        t.elapsed()
    );

    // A fourth host joins: a quarter of the pipelines move to it, and no
    // other pipeline is restarted.
    let before: Vec<usize> = [&a, &b, &c].iter().map(|d| d.log_text().len()).collect();
    let joined = Instant::now();
    let d = Daemon::start_waiting(&env);
    for h in [&d, &a, &b, &c] {
        wait_runs(h, 3, Duration::from_secs(60));
    }
    eprintln!(
        "a fourth host took 3 of 12 pipelines in {:?}",
        joined.elapsed()
    );
    let logs: Vec<String> = [&a, &b, &c].iter().map(|d| d.log_text()).collect();
    let since = |k: usize| &logs[k][before[k]..];
    let handed: usize = (0..3)
        .map(|k| since(k).matches("handing pipeline").count())
        .sum();
    let started: usize = (0..3)
        .map(|k| since(k).matches("starting pipeline").count())
        .sum();
    assert_eq!((handed, started), (3, 0), "{logs:#?}");

    // A steady writer on every pipeline; one host dies in the middle.
    let topics: Vec<String> = pipes.iter().map(|p| p.topic.clone()).collect();
    let arrivals = Arrivals::watch(&topics);
    let writers: Vec<_> = pipes
        .iter()
        .map(|p| {
            let db = p.db.clone();
            std::thread::spawn(move || {
                use mysql::prelude::Queryable;
                let mut c = sql(MYSQL_PORT);
                let mut at = Vec::new();
                for i in 21..=320 {
                    c.query_drop(format!("INSERT INTO `{db}`.t VALUES ({i}, {i})"))
                        .unwrap();
                    at.push(Instant::now());
                    std::thread::sleep(Duration::from_millis(20));
                }
                at
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let kept: Vec<String> = [&b, &c, &d].iter().flat_map(|h| running(h)).collect();
    assert_eq!(kept.len(), 9, "{kept:?}");
    let before: Vec<(&Daemon, usize)> = [&b, &c, &d].map(|h| (h, h.log_text().len())).into();
    let killed = Instant::now();
    a.kill9();
    for h in [&b, &c, &d] {
        wait_runs(h, 4, Duration::from_secs(30));
    }
    let moved = killed.elapsed();
    eprintln!("the survivors run all 12 pipelines {moved:?} after the kill (session timeout 6 s)");
    assert!(moved < Duration::from_secs(6 + 5), "took {moved:?}");
    for (d, before) in before {
        let after = d.log_text();
        assert!(
            !after[before..].contains("handing pipeline"),
            "a survivor stopped a pipeline it kept:\n{after}"
        );
    }
    let inserted: Vec<Vec<Instant>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    // The moved pipelines catch up.
    std::thread::sleep(Duration::from_secs(5));
    let seen = arrivals.finish();
    // The pipelines that stayed where they were never paused: each row
    // reached Kafka soon after its insert, while the dead host's pipelines
    // moved. (The server itself holds inserts up for seconds when a
    // replica's connections die: the writers' own gaps are no measure.)
    let latency = |p: usize| -> Duration {
        let arrived = &seen[p];
        inserted[p]
            .iter()
            .enumerate()
            .filter(|(_, t)| **t >= killed && **t <= killed + moved)
            .map(|(k, t)| {
                // Row id 21 + k is the topic's record 20 + k.
                arrived
                    .get(20 + k)
                    .map_or(Duration::ZERO, |a| a.saturating_duration_since(*t))
            })
            .max()
            .unwrap_or_default()
    };
    let (mut kept_worst, mut moved_worst) = (Duration::ZERO, Duration::ZERO);
    for (i, p) in pipes.iter().enumerate() {
        if kept.contains(&p.name) {
            kept_worst = kept_worst.max(latency(i));
        } else {
            moved_worst = moved_worst.max(latency(i));
        }
    }
    let writes_gap = inserted
        .iter()
        .map(|a| longest_gap(a, killed, killed + moved))
        .max()
        .unwrap();
    eprintln!(
        "while the dead host's pipelines moved: longest insert-to-Kafka time {kept_worst:?} for the pipelines that stayed, {moved_worst:?} for the moved ones (the server held the inserts up to {writes_gap:?})"
    );
    assert!(kept_worst < Duration::from_secs(3), "{kept_worst:?}");

    // Every row of every pipeline once, in order.
    for p in &pipes {
        let got = ids(p, 320);
        let want: Vec<i64> = (1..=320).collect();
        assert_eq!(got, want, "pipeline {} ({} rows)", p.name, got.len());
    }
    for h in [b, c, d] {
        let (status, log) = h.stop();
        assert!(status.success(), "{log}");
        assert!(log.contains("left the group;"), "{log}");
    }
}

#[test]
fn a_host_cut_off_for_a_minute_loses_its_pipelines_writes_nothing_stale_and_gets_a_share_again() {
    servers();
    let fleet = unique("b2k_fleet");
    let env = with(host_env(&fleet), "B2K_KAFKA_TIMEOUT_MS", "5000");
    let start = binlog_head(MYSQL_PORT);
    let mut pipes = Vec::new();
    for i in 0..6 {
        let (p, path) = define(&fleet, i, &start);
        put(&env, &path);
        pipes.push(p);
    }
    // Host c: a network namespace (and a PID namespace: another machine).
    let ns = common::netns::NetNs::new((std::process::id() % 200 + 20) as u8, &[9092, MYSQL_PORT]);
    let mut wrapper = ns.exec();
    wrapper.extend(["unshare", "--pid", "--mount-proc", "--kill-child=SIGKILL"].map(String::from));
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let a = Daemon::start_waiting(&env);
    let b = Daemon::start_waiting(&env);
    let c = Daemon::start_via(&wrapper, &env);
    for d in [&a, &b, &c] {
        wait_runs(d, 2, Duration::from_secs(60));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = pipes
        .iter()
        .map(|p| {
            let (db, stop) = (p.db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    insert(&db, n, n, Duration::from_millis(50));
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let lost = running(&c);
    let cut = Instant::now();
    ns.link(false);
    wait_runs(&a, 3, Duration::from_secs(40));
    wait_runs(&b, 3, Duration::from_secs(40));
    eprintln!(
        "{lost:?} of the cut-off host run on the others {:?} after the cut",
        cut.elapsed()
    );
    std::thread::sleep(Duration::from_secs(60).saturating_sub(cut.elapsed()));
    ns.link(true);
    let back = Instant::now();
    wait_runs(&c, 2, Duration::from_secs(60));
    wait_runs(&a, 2, Duration::from_secs(30));
    wait_runs(&b, 2, Duration::from_secs(30));
    eprintln!(
        "after 60 s cut off, the host runs 2 pipelines again {:?} after its link came back",
        back.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written: Vec<u32> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let c_log = c.log_text();
    assert!(
        c_log.contains("after losing the group"),
        "the cut-off host did not stop its pipelines:\n{c_log}"
    );
    // Not a row lost or written twice: what the cut-off host still held
    // when its link came back was refused or never sent.
    for (p, n) in pipes.iter().zip(written) {
        let got = ids(p, n as usize);
        let want: Vec<i64> = (1..=n as i64).collect();
        assert_eq!(got, want, "pipeline {} ({} rows)", p.name, got.len());
    }
    c.kill9();
    for d in [a, b] {
        let (status, log) = d.stop();
        assert!(status.success(), "{log}");
    }
    drop(ns);
}

fn put(env: &[(String, String)], path: &std::path::Path) -> String {
    let (status, out, err) = run_to_end(&["pipeline", "put", path.to_str().unwrap()], env);
    assert!(status.success(), "put failed: {out}{err}");
    out
}

fn pipeline(env: &[(String, String)], verb: &str, name: &str) -> String {
    let (status, out, err) = run_to_end(&["pipeline", verb, name], env);
    assert!(
        status.success(),
        "pipeline {verb} {name} failed: {out}{err}"
    );
    out
}

/// How often the log says `needle` about `name`.
fn said(log: &str, needle: &str, name: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(needle) && l.ends_with(name))
        .count()
}

#[test]
fn a_joining_host_takes_its_share_without_stopping_the_rest_and_a_stopping_host_hands_over_cleanly()
{
    servers();
    let fleet = unique("b2k_fleet");
    let env = host_env(&fleet);
    let start = binlog_head(MYSQL_PORT);
    let pipes: Vec<Pipe> = (0..4)
        .map(|i| {
            let (p, path) = define(&fleet, i, &start);
            put(&env, &path);
            p
        })
        .collect();
    let mut a = Daemon::start_waiting(&env);
    wait_runs(&a, 4, Duration::from_secs(40));
    let writers: Vec<_> = pipes
        .iter()
        .map(|p| {
            let db = p.db.clone();
            std::thread::spawn(move || insert(&db, 1, 300, Duration::from_millis(20)))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    // A second host joins: it gets two, and a stops only those two.
    let b = Daemon::start_waiting(&env);
    let joined = wait_runs(&b, 2, Duration::from_secs(30));
    wait_runs(&a, 2, Duration::from_secs(10));
    eprintln!("a joining host ran its share {joined:?} after it started");
    let a_log = a.log_text();
    let b_log = b.log_text();
    for p in &pipes {
        let handed = said(
            &a_log,
            "handing pipeline",
            &format!("{} over", p.name).replace(" over", ""),
        );
        let started_on_a = said(&a_log, "starting pipeline", &p.name);
        let started_on_b = said(&b_log, "starting pipeline", &p.name);
        // Each pipeline was either kept by a (never stopped or started
        // again there) or moved to b (stopped once on a, started once on b).
        match started_on_b {
            0 => assert_eq!(
                (handed, started_on_a),
                (0, 1),
                "{} was disturbed on a:\n{a_log}",
                p.name
            ),
            1 => assert_eq!(started_on_a, 1, "{}:\n{a_log}", p.name),
            n => panic!("{} started {n} times on b:\n{b_log}", p.name),
        }
    }
    assert_eq!(a_log.matches("handing pipeline").count(), 2, "{a_log}");

    // SIGTERM to a: its two go to b at once (LeaveGroup), not after the
    // session timeout.
    let t = Instant::now();
    a.signal("-TERM");
    let status = a.wait(Duration::from_secs(30));
    let log = a.log_text();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("left the group; 2 pipeline(s) handed over"),
        "{log}"
    );
    let taken = wait_runs(&b, 4, Duration::from_secs(20));
    eprintln!(
        "after SIGTERM to a host, the other ran all 4 pipelines {:?} later",
        t.elapsed()
    );
    assert!(
        taken < Duration::from_secs(6),
        "took {taken:?}: as long as a session timeout"
    );
    for w in writers {
        w.join().unwrap();
    }
    // Zero duplicates: every row once, in order.
    for p in &pipes {
        let got = ids(p, 300);
        assert_eq!(got, (1..=300).collect::<Vec<i64>>(), "pipeline {}", p.name);
    }
    let (status, log) = b.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn pause_resume_delete_and_a_broken_pipeline_fails_alone() {
    servers();
    let fleet = unique("b2k_fleet");
    let mut env = host_env(&fleet);
    // The password comes from a file on the host, named by the definition.
    env.retain(|(k, _)| k != "B2K_MYSQL_PASSWORD");
    let start = binlog_head(MYSQL_PORT);
    let mut pipes = Vec::new();
    for i in 0..2 {
        let (p, path) = define(&fleet, i, &start);
        let secret = std::env::temp_dir().join(format!("{}.secret", p.name));
        std::fs::write(&secret, "cdc-secret\n").unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("mysql.password_file = {}\n", secret.display()));
        std::fs::write(&path, text).unwrap();
        put(&env, &path);
        pipes.push((p, secret, path));
    }
    // A definition holding a password is refused, and the password is not
    // printed.
    let bad = std::env::temp_dir().join(format!("{fleet}_bad.properties"));
    std::fs::write(&bad, "pipeline.name = leaky\nmysql.password = hunter2\n").unwrap();
    let (status, out, err) = run_to_end(&["pipeline", "put", bad.to_str().unwrap()], &env);
    assert!(!status.success());
    assert!(
        err.contains("mysql.password_file") && !err.contains("hunter2") && !out.contains("hunter2"),
        "{err}"
    );

    // p1's password on the host goes wrong after it was put.
    std::fs::write(&pipes[1].1, "wrong\n").unwrap();
    let a = Daemon::start_waiting(&env);
    wait_runs(&a, 2, Duration::from_secs(40));
    let (p0, p1) = (&pipes[0].0, &pipes[1].0);
    insert(&p0.db, 1, 50, Duration::ZERO);
    assert_eq!(ids(p0, 50), (1..=50).collect::<Vec<i64>>());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a
        .log_text()
        .contains(&format!("pipeline {} failed:", p1.name))
    {
        assert!(Instant::now() < deadline, "{}", a.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let failed = a
        .log_text()
        .lines()
        .find(|l| l.contains(&format!("pipeline {} failed:", p1.name)))
        .unwrap()
        .to_string();
    assert!(
        failed.contains("the other pipelines of this host run on"),
        "{failed}"
    );
    eprintln!("{failed}");

    // Paused: stopped with its checkpoint; rows meanwhile arrive on resume.
    let said_pause = pipeline(&env, "pause", &p0.name);
    assert!(said_pause.contains("paused"), "{said_pause}");
    wait_runs(&a, 1, Duration::from_secs(20));
    let (_, list, _) = run_to_end(&["pipeline", "list"], &env);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&p0.name) && l.contains(" paused ")),
        "{list}"
    );
    insert(&p0.db, 51, 80, Duration::ZERO);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ids(p0, 80).len(), 50, "a paused pipeline published");
    pipeline(&env, "resume", &p0.name);
    wait_runs(&a, 2, Duration::from_secs(20));
    assert_eq!(ids(p0, 80), (1..=80).collect::<Vec<i64>>());

    // Deleted: stopped everywhere, its checkpoint kept.
    let said_delete = pipeline(&env, "delete", &p0.name);
    assert!(said_delete.contains("checkpoint stays"), "{said_delete}");
    wait_runs(&a, 1, Duration::from_secs(20));
    assert!(checkpoint(&commits(&fleet), &p0.name).is_some());
    let (_, list, _) = run_to_end(&["pipeline", "list"], &env);
    assert!(
        !list.contains(&p0.name) && list.contains("1 pipeline(s)"),
        "{list}"
    );
    let (status, log) = a.stop();
    assert!(status.success(), "{log}");
}

/// The address of a host's fleet page (`http.listen` port 0), from its log.
fn page_addr(d: &mut Daemon) -> String {
    let needle = "fleet page on http://";
    d.wait_for_log(needle, Duration::from_secs(10));
    let log = d.log_text();
    let at = log.find(needle).unwrap() + needle.len();
    log[at..].split([' ', '\n']).next().unwrap().to_string()
}

#[test]
fn every_hosts_page_shows_the_whole_fleet_with_its_charts_and_its_own_metrics() {
    servers();
    let fleet = unique("b2k_fleet");
    let mut env = host_env(&fleet);
    env.retain(|(k, _)| k != "B2K_MYSQL_PASSWORD");
    env = with(env, "B2K_HTTP_LISTEN", "127.0.0.1:0");
    let start = binlog_head(MYSQL_PORT);
    let mut pipes = Vec::new();
    for i in 0..3 {
        let (p, path) = define(&fleet, i, &start);
        let secret = std::env::temp_dir().join(format!("{}.secret", p.name));
        std::fs::write(&secret, "cdc-secret\n").unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("mysql.password_file = {}\n", secret.display()));
        std::fs::write(&path, text).unwrap();
        put(&env, &path);
        pipes.push((p, secret));
    }
    // The third one's password goes wrong on the hosts.
    std::fs::write(&pipes[2].1, "wrong\n").unwrap();
    let mut a = Daemon::start_waiting(&env);
    let mut b = Daemon::start_waiting(&env);
    let (page_a, page_b) = (page_addr(&mut a), page_addr(&mut b));
    let deadline = Instant::now() + Duration::from_secs(40);
    while runs(&a).unwrap_or(0) + runs(&b).unwrap_or(0) != 3 || runs(&a) == Some(0) {
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            a.log_text(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (p, _) in &pipes[..2] {
        insert(&p.db, 1, 30, Duration::ZERO);
    }

    // Both hosts' records reach both pages: the broken pipeline failed
    // with its cause, the others run.
    let (p0, p1, p2) = (&pipes[0].0.name, &pipes[1].0.name, &pipes[2].0.name);
    let row = |page: &str, name: &str| -> String {
        let at = page
            .find(&format!("<tr id=\"pipeline-{name}\">"))
            .unwrap_or_else(|| panic!("{name} not on the page:\n{page}"));
        page[at..].split("</tr>").next().unwrap().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(45);
    let page = loop {
        let (code, page) = web::get(&page_b, "/");
        assert_eq!(code, 200);
        let ready = page.contains("3 pipelines, 2 hosts reporting")
            && row(&page, p0).contains(">running<")
            && row(&page, p1).contains(">running<")
            && row(&page, p2).contains(">failed<");
        if ready {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet page never showed every pipeline:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        row(&page, p2).contains("Access denied"),
        "{}",
        row(&page, p2)
    );
    assert!(
        row(&page, p0).contains("<svg id=\"p0-rate\""),
        "{}",
        row(&page, p0)
    );

    // Each host's /metrics: its own pipelines, each sample labelled.
    let mine = |d: &Daemon| -> Vec<String> {
        let log = d.log_text();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("this host runs "))
            .unwrap()
            .to_string();
        pipes
            .iter()
            .map(|(p, _)| p.name.clone())
            .filter(|n| line.contains(n.as_str()))
            .collect()
    };
    for (d, addr) in [(&a, &page_a), (&b, &page_b)] {
        let (code, metrics) = web::get(addr, "/metrics");
        assert_eq!(code, 200);
        let here = mine(d);
        // (The broken one is left out: it is started again every 30 s.)
        for (p, _) in &pipes[..2] {
            let sample = format!("binlog2kafka_rows_read_total{{pipeline=\"{}\"}}", p.name);
            assert_eq!(
                metrics.contains(&sample),
                here.contains(&p.name),
                "{} on {addr}:\n{metrics}",
                p.name
            );
        }
        for line in metrics
            .lines()
            .filter(|l| l.starts_with("binlog2kafka_") && !l.starts_with("binlog2kafka_fleet_"))
        {
            assert!(line.contains("pipeline=\""), "{line}");
        }
        assert_eq!(web::get(addr, "/healthz").0, 200);
        // A pipeline's own page where it runs; elsewhere, where it runs.
        for name in [p0, p1] {
            let (code, body) = web::get(addr, &format!("/pipeline/{name}"));
            if here.contains(name) {
                assert_eq!(code, 200, "{body}");
                assert!(body.contains("<svg id=\"pipeline-rate\""), "{body}");
            } else {
                assert_eq!(code, 404, "{body}");
                assert!(body.contains("does not run on this host"), "{body}");
            }
        }
    }

    // The terminal's view: the same table.
    let (status, out, err) = run_to_end(&["fleet", "status"], &env);
    assert!(status.success(), "{out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}:\n{out}"))
            .to_string()
    };
    assert!(out.starts_with("PIPELINE"), "{out}");
    assert!(line(p0).contains(" running "), "{out}");
    assert!(
        line(p2).contains(" failed ") && line(p2).contains("Access denied"),
        "{out}"
    );
    eprintln!("{out}");

    // A snapshot asked of each running pipeline is taken by its host (a
    // host's pipelines share one scan of the commit-log topic for requests).
    for (p, _) in &pipes[..2] {
        let cli = with(
            with(env.clone(), "B2K_PIPELINE_NAME", &p.name),
            "B2K_MYSQL_PASSWORD",
            "cdc-secret",
        );
        let (status, out, err) = run_to_end(&["snapshot", &format!("{}.t", p.db)], &cli);
        assert!(status.success() && out.contains("taken by"), "{out}{err}");
    }
    for (p, _) in &pipes[..2] {
        // 30 rows streamed, then the snapshot: its start, 30 rows, its end.
        let msgs = consume(&p.topic, &p.db, 62, 10.0);
        let snap = msgs
            .iter()
            .filter(|m| m.value["type"] == "bootstrap-insert")
            .count();
        assert_eq!(snap, 30, "pipeline {}", p.name);
        assert_eq!(msgs.last().unwrap().value["type"], "bootstrap-complete");
    }

    // Rendered by headless Chromium: the charts are drawn.
    let (dom, shot, png) = web::render(&format!("http://{page_a}/"), "fleet-page.png", (1280, 900));
    assert!(dom.contains("<svg id=\"p0-rate\""), "{dom}");
    let drawn = web::pixels_of_colour(&png, (0x09, 0x69, 0xda), 40);
    assert!(drawn > 0, "no chart line on {}", shot.display());
    eprintln!(
        "fleet page: {} bytes, {drawn} chart pixels, screenshot {}",
        png.len(),
        shot.display()
    );
    for d in [a, b] {
        let (status, log) = d.stop();
        assert!(status.success(), "{log}");
    }
}
