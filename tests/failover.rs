//! Following a cluster, not one server: real MariaDB replication by GTID
//! (`log_slave_updates`, `gtid_strict_mode`), a primary killed mid-load and
//! its replica promoted, a planned switch from a checkpoint inside a large
//! transaction, and the refusals when a server lacks what the pipeline
//! needs. Each test runs its own pair of MariaDB instances.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{checkpoint, consume, settings, sql, testenv, the_error, unique, with, Daemon, Msg};
use mysql::prelude::Queryable;

const GTID_ARGS: &[&str] = &["--log-slave-updates=ON", "--gtid-strict-mode=ON"];

/// A primary and its GTID replica, both fresh, replicating.
fn pair(name: &str, primary: u16, replica: u16) -> (u16, u16) {
    common::servers();
    let p = format!("{name}_p");
    let r = format!("{name}_r");
    let mut pa = vec!["mariadb", &p];
    let ps = primary.to_string();
    pa.push(&ps);
    pa.extend_from_slice(GTID_ARGS);
    testenv(&pa);
    let rs = replica.to_string();
    let mut ra = vec!["mariadb", &r, &rs, "--server-id=2"];
    ra.extend_from_slice(GTID_ARGS);
    testenv(&ra);
    testenv(&["replica", &r, &ps]);
    (primary, replica)
}

fn hosts(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits until `replica` has applied everything `primary` has written.
fn caught_up(primary: u16, replica: u16) {
    let pos: String = sql(primary)
        .query_first("SELECT @@gtid_binlog_pos")
        .unwrap()
        .unwrap();
    let done: Option<i64> = sql(replica)
        .query_first(format!("SELECT MASTER_GTID_WAIT('{pos}', 30)"))
        .unwrap();
    assert_eq!(done, Some(0), "replica did not reach {pos}");
}

fn db_on(port: u16, prefix: &str) -> String {
    let db = unique(prefix);
    let mut c = sql(port);
    c.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    c.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .unwrap();
    db
}

fn kill9(name: &str) {
    let pid =
        std::fs::read_to_string(common::root().join(format!("target/testenv/mariadb-{name}/pid")))
            .unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success());
    thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(common::root().join(format!("target/testenv/mariadb-{name}/pid"))).ok();
}

fn promote(port: u16) {
    let mut c = sql(port);
    for q in ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0"] {
        c.query_drop(q).unwrap();
    }
}

/// (server_id, id) of each row message.
fn origins(msgs: &[Msg]) -> Vec<(u64, i64)> {
    msgs.iter()
        .map(|m| {
            (
                m.value["server_id"].as_u64().unwrap(),
                m.value["data"]["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn ids_in(port: u16, db: &str) -> BTreeSet<i64> {
    sql(port)
        .query::<i64, _>(format!("SELECT id FROM `{db}`.t"))
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn the_primary_killed_mid_load_the_daemon_fails_over_to_the_promoted_replica() {
    let (p, r) = pair("fo", 3351, 3352);
    let db = db_on(p, "fo");
    caught_up(p, r);
    let topic = unique("fo");
    let env = with(settings(&topic), "B2K_MYSQL_HOST", &hosts(&[p, r]));
    let env = with(env, "B2K_MYSQL_FAILOVER_AFTER_MS", "1500");
    let env = with(env, "B2K_MYSQL_TIMEOUT_MS", "1000");
    let env = with(env, "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let mut daemon = Daemon::start(&env);

    // The writer commits one row at a time to whichever server is primary.
    let target = Arc::new(AtomicI64::new(p as i64));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (target, stop, db) = (target.clone(), stop.clone(), db.clone());
        thread::spawn(move || {
            let mut next = 1i64;
            let mut conn: Option<(i64, mysql::Conn)> = None;
            while !stop.load(Ordering::SeqCst) {
                let port = target.load(Ordering::SeqCst);
                if conn.as_ref().is_none_or(|(p, _)| *p != port) {
                    conn = common::try_sql(port as u16).ok().map(|c| (port, c));
                }
                let ok = conn.as_mut().is_some_and(|(_, c)| {
                    c.query_drop(format!("INSERT INTO `{db}`.t VALUES ({next}, 'w')"))
                        .is_ok()
                });
                if ok {
                    next += 1;
                } else {
                    conn = None;
                    thread::sleep(Duration::from_millis(50));
                }
                thread::sleep(Duration::from_millis(5));
            }
            next - 1
        })
    };
    thread::sleep(Duration::from_secs(3));
    kill9("fo_p");
    let killed = Instant::now();
    promote(r);
    target.store(r as i64, Ordering::SeqCst);
    // The first row written on the new primary, published: the failover.
    let first_new = loop {
        let msgs = consume(&topic, &db, usize::MAX, 0.5);
        if origins(&msgs).iter().any(|(s, _)| *s == 2) {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "no row from the new primary:\n{}",
            daemon.log_text()
        );
        thread::sleep(Duration::from_millis(200));
    };
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let last = writer.join().unwrap();

    let surviving = ids_in(r, &db);
    let deadline = Instant::now() + Duration::from_secs(60);
    let msgs = loop {
        let msgs = consume(&topic, &db, usize::MAX, 1.0);
        let seen: BTreeSet<i64> = origins(&msgs).iter().map(|(_, i)| *i).collect();
        if surviving.is_subset(&seen) || Instant::now() > deadline {
            break msgs;
        }
        thread::sleep(Duration::from_millis(300));
    };
    let got = origins(&msgs);
    let mut count: BTreeMap<(u64, i64), usize> = BTreeMap::new();
    for o in &got {
        *count.entry(*o).or_default() += 1;
    }
    let doubled: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    let seen: BTreeSet<i64> = got.iter().map(|(_, i)| *i).collect();
    let missing: Vec<_> = surviving.difference(&seen).collect();
    let lost_with_primary: Vec<i64> = got
        .iter()
        .filter(|(s, i)| *s == 1 && !surviving.contains(i))
        .map(|(_, i)| *i)
        .collect();
    println!(
        "failover: {} rows written ({} survive on the promoted replica); primary killed, first row from the new primary published {:.2} s later; {} messages; lost with the old primary (published, never replicated): {lost_with_primary:?}",
        last,
        surviving.len(),
        first_new.as_secs_f64(),
        got.len()
    );
    assert!(
        missing.is_empty(),
        "rows of the surviving server not published: {missing:?}"
    );
    assert!(doubled.is_empty(), "published twice: {doubled:?}");
    // Order: the new primary's rows come after the old one's.
    let first_r = got.iter().position(|(s, _)| *s == 2).unwrap();
    assert!(
        got[first_r..].iter().all(|(s, _)| *s == 2),
        "old primary's rows after the switch"
    );
    let log = daemon.log_text();
    assert!(log.contains("failing over to 127.0.0.1:"), "{log}");
    assert!(log.contains("by GTID"), "{log}");
    // The operator's view names the server now read and counts the switch.
    let metrics = common::http_get(&log, "/metrics");
    assert!(
        metrics.contains("binlog2kafka_failovers_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "binlog2kafka_source_info{{server=\"127.0.0.1:{r} (server_id 2)\"}} 1"
        )),
        "{metrics}"
    );
    assert!(daemon.exited().is_none(), "{log}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn a_planned_switch_resumes_by_gtid_inside_a_large_transaction() {
    let (p, r) = pair("sw", 3353, 3354);
    let db = db_on(p, "sw");
    let mut c = sql(p);
    // A slow broker link, so the stop lands inside the transaction.
    testenv(&["tansu", "sw", "9099", "19099"]);
    let proxy = Proxy::start(19099, 9099);
    let broker = "127.0.0.1:19099".to_string();
    let topic = unique("sw");
    let env = with(settings(&topic), "B2K_KAFKA_BROKERS", &broker);
    let env = with(env, "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_PIPELINE_TXN_BUFFER_ROWS", "100");
    let env = with(env, "B2K_PIPELINE_PENDING_EVENTS", "2");
    let env = with(env, "B2K_KAFKA_BATCH_MAX_BYTES", "16384");
    let on_primary = with(env.clone(), "B2K_MYSQL_HOST", &hosts(&[p]));
    let daemon = Daemon::start(&on_primary);
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (0, 'first')"))
        .unwrap();
    proxy.delay(20);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("INSERT INTO t SELECT seq, 'big' FROM seq_1_to_20000")
        .unwrap();
    thread::sleep(Duration::from_secs(3));
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    proxy.restore();
    let cp = checkpoint_of(&broker, &topic);
    assert!(
        cp["rows"].as_u64().unwrap() > 0,
        "the checkpoint is inside the 20,000-row transaction: {cp}"
    );
    assert!(cp["gtid_state"].is_string(), "{cp}");
    caught_up(p, r);

    // The operator points the pipeline at the replica.
    let on_replica = with(env, "B2K_MYSQL_HOST", &hosts(&[r]));
    let daemon = Daemon::start(&on_replica);
    let msgs = common::consume_at(&broker, &topic, &db, 20_001, 10.0);
    let ids: Vec<i64> = msgs
        .iter()
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    let unique_ids: BTreeSet<i64> = ids.iter().copied().collect();
    println!(
        "planned switch from a checkpoint {} rows into a 20,000-row transaction: {} messages, {} distinct rows",
        cp["rows"],
        ids.len(),
        unique_ids.len()
    );
    assert_eq!(unique_ids.len(), 20_001, "nothing missing");
    assert_eq!(ids.len(), 20_001, "nothing doubled");
    let log = daemon.log_text();
    assert!(
        log.contains(&format!("streaming binlog from 127.0.0.1:{r} by GTID")),
        "{log}"
    );
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

fn checkpoint_of(broker: &str, topic: &str) -> serde_json::Value {
    common::checkpoint_at(broker, &common::commits(topic), &common::pipe(topic))
        .expect("a checkpoint")
}

/// A pipeline that read one row from the primary at `p` and stopped
/// cleanly: (database, topic, settings without mysql.host).
fn one_row_read_on_the_primary(p: u16, prefix: &str) -> (String, String, Vec<(String, String)>) {
    let db = db_on(p, prefix);
    let topic = unique(prefix);
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let daemon = Daemon::start(&with(env.clone(), "B2K_MYSQL_HOST", &hosts(&[p])));
    sql(p)
        .query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 'read')"))
        .unwrap();
    assert_eq!(consume(&topic, &db, 1, 10.0).len(), 1);
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    (db, topic, env)
}

#[test]
fn a_server_lacking_what_the_checkpoint_needs_is_refused_with_the_gtids_named() {
    let (p, r) = pair("rf", 3355, 3356);
    let (db, topic, env) = one_row_read_on_the_primary(p, "rf");
    let before = checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap();

    // Purged: the replica's binlog no longer has what follows the checkpoint.
    for i in 2..=5 {
        sql(p)
            .query_drop(format!("INSERT INTO `{db}`.t VALUES ({i}, 'unread')"))
            .unwrap();
    }
    caught_up(p, r);
    // MariaDB keeps a file its binlog checkpoint still needs: purge until
    // only the newest is left.
    let mut rc = sql(r);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        rc.query_drop("FLUSH BINARY LOGS").unwrap();
        thread::sleep(Duration::from_millis(300));
        let logs = rc.query::<(String, u64), _>("SHOW BINARY LOGS").unwrap();
        let newest = logs.last().unwrap().0.clone();
        rc.query_drop(format!("PURGE BINARY LOGS TO '{newest}'"))
            .unwrap();
        if rc
            .query::<(String, u64), _>("SHOW BINARY LOGS")
            .unwrap()
            .len()
            == 1
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica would not purge its binlogs"
        );
    }
    let on_replica = with(env, "B2K_MYSQL_HOST", &hosts(&[r]));
    let (status, _, err) = common::run_to_end(&["run"], &on_replica);
    assert!(!status.success(), "{err}");
    let e = the_error(&err);
    assert!(
        e.contains(&format!(
            "127.0.0.1:{r} cannot resume after GTID state {}",
            before["gtid_state"].as_str().unwrap()
        )) && e.contains("lacks transactions"),
        "{e}"
    );
    let after = checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap();
    assert_eq!(
        (&after["file"], &after["pos"]),
        (&before["file"], &before["pos"]),
        "unmoved"
    );
    println!("purged: {e}");

    // Errant: a transaction written on the replica alone, in a domain of
    // its own, that the primary never made.
    let mut rc = sql(r);
    rc.query_drop("SET SESSION gtid_domain_id=9").unwrap();
    rc.query_drop(format!("INSERT INTO `{db}`.t VALUES (99, 'errant')"))
        .unwrap();
    let (status, _, err) = common::run_to_end(&["run"], &on_replica);
    assert!(!status.success(), "{err}");
    let e = the_error(&err);
    assert!(
        e.contains("errant transactions") && e.contains("9-2-1"),
        "{e}"
    );
    println!("errant: {e}");

    // `check` looks at every server of the list.
    let both = with(on_replica, "B2K_MYSQL_HOST", &hosts(&[p, r]));
    let (_, out, err) = common::run_to_end(&["check"], &both);
    let line = |port: u16| {
        out.lines()
            .find(|l| l.contains(&format!("server 127.0.0.1:{port}:")))
            .unwrap_or_else(|| panic!("no line for {port}:\n{out}{err}"))
            .to_string()
    };
    let (lp, lr) = (line(p), line(r));
    assert!(
        lp.contains("server_id 1, primary") && lp.contains("by file position"),
        "{lp}"
    );
    assert!(
        lr.contains(&format!("server_id 2, replica of 127.0.0.1:{p}"))
            && lr.contains("could NOT resume here: errant transactions 9-2-1"),
        "{lr}"
    );
    println!("check:\n{lp}\n{lr}");
}

#[test]
fn a_checkpoint_without_gtid_state_is_not_resumed_on_another_server() {
    use binlog2kafka::checkpoint::{self as cp, Record};
    let (p, r) = pair("ng", 3357, 3358);
    let (_db, topic, env) = one_row_read_on_the_primary(p, "ng");
    // The checkpoint as a daemon without GTID support (or MySQL with
    // gtid_mode=OFF) would have written it: file, offset, identity only.
    let commits = common::commits(&topic);
    let pipe = common::pipe(&topic);
    let mut k = common::kafka_client();
    let mut rec: Record = cp::read_latest(&mut k, &commits, &pipe).unwrap().unwrap();
    assert!(rec.gtid_state.is_some() && rec.file_id.is_some(), "{rec:?}");
    rec.gtid_state = None;
    rec.ts_ms = cp::now_ms();
    cp::write(&mut k, &commits, &rec).unwrap();
    caught_up(p, r);
    let (status, _, err) = common::run_to_end(&["run"], &with(env, "B2K_MYSQL_HOST", &hosts(&[r])));
    assert!(!status.success(), "{err}");
    let e = the_error(&err);
    assert!(
        e.contains(&format!("cannot resume on 127.0.0.1:{r} (server_id 2)"))
            && e.contains("carries no GTID state")
            && e.contains("a file offset means nothing on another server"),
        "{e}"
    );
    let after = checkpoint(&commits, &pipe).unwrap();
    assert_eq!(
        (after["file"].as_str(), after["pos"].as_u64()),
        (Some(rec.file.as_str()), Some(rec.pos)),
        "unmoved"
    );
    println!("no GTID state: {e}");
}

/// `pair`, with more settings for the replica (later flags win).
fn pair_with(name: &str, primary: u16, replica: u16, replica_args: &[&str]) -> (u16, u16) {
    common::servers();
    let (p, r) = (format!("{name}_p"), format!("{name}_r"));
    let (ps, rs) = (primary.to_string(), replica.to_string());
    let mut pa = vec!["mariadb", &p, &ps];
    pa.extend_from_slice(GTID_ARGS);
    testenv(&pa);
    let mut ra = vec!["mariadb", &r, &rs, "--server-id=2"];
    ra.extend_from_slice(GTID_ARGS);
    ra.extend_from_slice(replica_args);
    testenv(&ra);
    testenv(&["replica", &r, &ps]);
    (primary, replica)
}

/// A daemon reading the primary `p` of `hosts`, failing over quickly.
fn failing_over(topic: &str, db: &str, hosts_: &[u16]) -> Vec<(String, String)> {
    let env = with(settings(topic), "B2K_MYSQL_HOST", &hosts(hosts_));
    let env = with(env, "B2K_MYSQL_FAILOVER_AFTER_MS", "1500");
    let env = with(env, "B2K_MYSQL_TIMEOUT_MS", "1000");
    with(env, "B2K_FILTER_INCLUDE", &format!("{db}.*"))
}

fn insert(port: u16, db: &str, ids: std::ops::RangeInclusive<i64>, v: &str) {
    let mut c = sql(port);
    for i in ids {
        c.query_drop(format!("INSERT INTO `{db}`.t VALUES ({i}, '{v}')"))
            .unwrap();
    }
}

/// The replica's own GTID in `gtid_binlog_state` (server_id 2).
fn own_gtid(port: u16) -> String {
    let state: String = sql(port)
        .query_first("SELECT @@gtid_binlog_state")
        .unwrap()
        .unwrap();
    state
        .split(',')
        .find(|g| g.split('-').nth(1) == Some("2"))
        .unwrap_or_else(|| panic!("no GTID of server 2 in {state}"))
        .to_string()
}

/// With `gtid_strict_mode=OFF` on a replica (MariaDB's default), a write
/// made on it while it replicates sits behind the primary's later
/// transactions of the same domain. After the primary dies, resuming on
/// that replica "after" the primary's last GTID once skipped that write
/// without a word: now the daemon refuses, naming it, and the checkpoint
/// stays where it was.
#[test]
fn a_replicas_own_write_behind_the_resume_point_stops_the_failover_with_its_gtid() {
    let (p, r) = pair_with("ns", 3381, 3382, &["--gtid-strict-mode=OFF"]);
    let db = db_on(p, "ns");
    caught_up(p, r);
    let topic = unique("ns");
    let env = failing_over(&topic, &db, &[p, r]);
    let mut daemon = Daemon::start(&env);
    insert(p, &db, 1..=3, "primary");
    insert(r, &db, 1000..=1000, "on the replica");
    let errant = own_gtid(r);
    insert(p, &db, 4..=10, "primary");
    caught_up(p, r);
    assert_eq!(consume(&topic, &db, 10, 10.0).len(), 10);
    // The checkpoint once it has settled past the rows.
    let mut before = checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap();
    loop {
        thread::sleep(Duration::from_millis(1500));
        let now = checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap();
        if (&now["file"], &now["pos"]) == (&before["file"], &before["pos"]) {
            break;
        }
        before = now;
    }
    kill9("ns_p");
    promote(r);
    let status = daemon.wait(Duration::from_secs(60));
    let log = daemon.log_text();
    assert!(!status.success(), "{log}");
    let e = the_error(&log);
    assert!(
        e.contains(&errant) && e.contains("never read") && e.contains("gtid_strict_mode=OFF"),
        "{e}"
    );
    let after = checkpoint(&common::commits(&topic), &common::pipe(&topic)).unwrap();
    assert_eq!(
        (&after["file"], &after["pos"]),
        (&before["file"], &before["pos"]),
        "the checkpoint did not move"
    );
    // `check` says the same of that server, and warns of its mode.
    let (status, out, _) = common::run_to_end(&["check"], &env);
    assert!(!status.success(), "nowhere to resume:\n{out}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("server 127.0.0.1:{r}:")))
        .unwrap();
    assert!(
        line.contains("could NOT resume")
            && line.contains(&errant)
            && line.contains("gtid_strict_mode=OFF"),
        "{line}"
    );
    println!("non-strict replica: {e}");
}

/// The same with `gtid_strict_mode=ON` on the replica: the primary's next
/// transaction then breaks its replication (out of order), whatever the
/// server makes of it, the replica's own write is never lost silently: it
/// is published after the failover, or the daemon stops naming it.
#[test]
fn a_replicas_own_write_with_strict_mode_is_published_or_named() {
    let (p, r) = pair("st", 3383, 3384);
    let db = db_on(p, "st");
    caught_up(p, r);
    let topic = unique("st");
    let env = failing_over(&topic, &db, &[p, r]);
    let mut daemon = Daemon::start(&env);
    insert(p, &db, 1..=3, "primary");
    caught_up(p, r);
    insert(r, &db, 1000..=1000, "on the replica");
    let errant = own_gtid(r);
    insert(p, &db, 4..=10, "primary");
    assert_eq!(consume(&topic, &db, 10, 10.0).len(), 10);
    thread::sleep(Duration::from_secs(1));
    kill9("st_p");
    promote(r);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let published = consume(&topic, &db, usize::MAX, 0.5)
            .iter()
            .any(|m| m.value["data"]["id"] == 1000);
        if published {
            println!("strict replica: its own write {errant} was published after the failover");
            break;
        }
        if let Some(status) = daemon.exited() {
            let e = the_error(&daemon.log_text());
            assert!(!status.success());
            assert!(e.contains(&errant), "{e}");
            println!("strict replica: stopped naming {errant}: {e}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "neither published nor named:\n{}",
            daemon.log_text()
        );
        thread::sleep(Duration::from_millis(300));
    }
}

/// `mysql.host` lists a server unrelated to the pipeline's history between
/// the primary and its replica. Killing the primary once stopped the daemon
/// on the unrelated server ("holds no transaction of server_id 1"), and
/// every restart picked it again. Now it is passed over with a warning and
/// the replica taken; `check` describes each server under its own address
/// and passes, as the pipeline has somewhere to resume.
#[test]
fn an_unrelated_server_in_the_list_is_passed_over_on_failover() {
    let (p, r) = pair("un", 3385, 3386);
    let u = 3387;
    testenv(&[
        "mariadb",
        "un_u",
        "3387",
        "--server-id=3",
        "--log-slave-updates=ON",
        "--gtid-strict-mode=ON",
    ]);
    let other = db_on(u, "unrelated");
    insert(u, &other, 1..=2, "elsewhere");
    let db = db_on(p, "un");
    caught_up(p, r);
    let topic = unique("un");
    let env = failing_over(&topic, &db, &[p, u, r]);
    let mut daemon = Daemon::start(&env);
    insert(p, &db, 1..=5, "primary");
    caught_up(p, r);
    assert_eq!(consume(&topic, &db, 5, 10.0).len(), 5);
    kill9("un_p");
    promote(r);
    insert(r, &db, 6..=8, "new primary");
    let got = consume(&topic, &db, 8, 60.0);
    let log = daemon.log_text();
    assert_eq!(got.len(), 8, "{log}");
    assert!(
        log.contains(&format!("not resuming on 127.0.0.1:{u}"))
            && log.contains("holds no transaction of server_id 1"),
        "{log}"
    );
    assert!(daemon.exited().is_none(), "{log}");
    let (status, out, err) = common::run_to_end(&["check"], &env);
    assert!(
        status.success(),
        "check must pass after a failover:\n{out}{err}"
    );
    let line = |port: u16| {
        out.lines()
            .find(|l| l.contains(&format!("server 127.0.0.1:{port}:")))
            .unwrap_or_else(|| panic!("no line for {port}:\n{out}"))
            .to_string()
    };
    assert!(
        line(p).starts_with("warn") && line(p).contains("cannot reach"),
        "{}",
        line(p)
    );
    assert!(
        line(u).contains("server_id 3") && line(u).contains("could NOT resume"),
        "{}",
        line(u)
    );
    assert!(
        line(r).starts_with("ok") && line(r).contains("server_id 2"),
        "{}",
        line(r)
    );
    // The first section names the server that answered, with its own id.
    let mysql = out
        .lines()
        .find(|l| l.starts_with("ok   mysql 127.0.0.1:"))
        .unwrap();
    assert!(
        mysql.contains(&format!("127.0.0.1:{u}:")) && mysql.contains("(server_id 3)"),
        "{mysql}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}
