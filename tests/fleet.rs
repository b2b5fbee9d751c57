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
/// timeouts, a server-id range of this test process's own.
fn host_env(fleet: &str) -> Vec<(String, String)> {
    let base = 2_000_000 + (std::process::id() % 5_000) * 100;
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

#[test]
fn pipelines_spread_over_the_hosts_move_when_one_dies_and_every_row_arrives_once() {
    servers();
    let fleet = unique("b2k_fleet");
    let env = host_env(&fleet);
    let start = binlog_head(MYSQL_PORT);
    let mut pipes = Vec::new();
    for i in 0..4 {
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
    assert_eq!(list.matches(" active ").count(), 4, "{list}");
    assert!(list.contains("4 pipeline(s) in fleet"), "{list}");

    // Rows before the hosts start, and while they do.
    for p in &pipes {
        insert(&p.db, 1, 20, Duration::ZERO);
    }
    let a = Daemon::start_waiting(&env);
    let b = Daemon::start_waiting(&env);
    let spread = wait_runs(&a, 2, Duration::from_secs(40));
    wait_runs(&b, 2, Duration::from_secs(40));
    eprintln!("4 pipelines spread 2/2 over two hosts in {spread:?}");

    // A steady writer on every pipeline; one host dies in the middle.
    let writers: Vec<_> = pipes
        .iter()
        .map(|p| {
            let db = p.db.clone();
            std::thread::spawn(move || insert(&db, 21, 220, Duration::from_millis(20)))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let b_before = b.log_text();
    let killed = Instant::now();
    a.kill9();
    let moved = wait_runs(&b, 4, Duration::from_secs(30));
    eprintln!("the survivor runs all 4 pipelines {moved:?} after the kill (session timeout 6 s)");
    assert!(moved < Duration::from_secs(6 + 4), "took {moved:?}");
    // What b ran before never stopped.
    let after = b.log_text();
    assert!(
        !after[b_before.len()..].contains("handing pipeline"),
        "b stopped a pipeline it kept:\n{after}"
    );
    for w in writers {
        w.join().unwrap();
    }
    let _ = killed;

    // Every row of every pipeline once, in order.
    for p in &pipes {
        let got = ids(p, 220);
        let want: Vec<i64> = (1..=220).collect();
        assert_eq!(got, want, "pipeline {} ({} rows)", p.name, got.len());
    }
    let (status, log) = b.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("left the group; 4 pipeline(s) handed over"),
        "{log}"
    );
}
