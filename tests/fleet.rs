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
