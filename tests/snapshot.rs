//! Snapshots (README "Snapshots"): the rows that already exist, read in
//! chunks while the binlog streams and writers keep changing them, then
//! every change after them, with nothing missed or doubled at the seam.
//! Each test applies the topic's messages in order, as a consumer would
//! (snapshot rows as upserts, then the changes), and compares the result
//! with the tables' final contents, every value.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql::prelude::Queryable;
use serde_json::Value;

/// The kinds of table a snapshot reads differently: an integer key, a
/// composite key with a VARCHAR part, no key at all, and no primary key
/// but a unique key on a NOT NULL column (which the chunks follow).
const TABLES: &[&str] = &[
    "CREATE TABLE t_int (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT)",
    "CREATE TABLE t_comp (a VARCHAR(20), b INT, v VARCHAR(40), n BIGINT, PRIMARY KEY (a, b))",
    "CREATE TABLE t_nokey (x INT, v VARCHAR(40), n BIGINT)",
    "CREATE TABLE t_uniq (u VARCHAR(20) NOT NULL, n BIGINT, UNIQUE KEY (u))",
];

/// Fills each table with `rows` rows.
fn fill(port: u16, db: &str, rows: u64) {
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop(format!(
        "INSERT INTO t_int SELECT seq, CONCAT('v', seq), seq * 7 FROM seq_1_to_{rows}"
    ))
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO t_comp SELECT CONCAT('k', seq % 97), seq, CONCAT('w', seq), seq FROM seq_1_to_{rows}"
    ))
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO t_nokey SELECT seq, CONCAT('u', seq), seq FROM seq_1_to_{rows}"
    ))
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO t_uniq SELECT CONCAT('u', seq), seq FROM seq_1_to_{}",
        rows / 10
    ))
    .unwrap();
}

/// Three connections inserting, updating and deleting random keys of the
/// tables until `stop`; returns how many statements they ran.
fn writer(port: u16, db: String, rows: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let writers: Vec<_> = (1..=3u64)
            .map(|seed| {
                let (db, stop) = (db.clone(), stop.clone());
                std::thread::spawn(move || write_randomly(port, &db, rows, &stop, seed))
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

fn write_randomly(port: u16, db: &str, rows: u64, stop: &AtomicBool, seed: u64) -> u64 {
    {
        let mut c = sql(port);
        c.query_drop(format!("USE `{db}`")).unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(seed);
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            // Keys a little past the filled range too: inserts of new rows.
            let k = next() % (rows + rows / 10) + 1;
            let op = next() % 10;
            let q = match next() % 4 {
                0 => match op {
                    0..=4 => {
                        format!("UPDATE t_int SET n = n + 1, v = CONCAT(v, '+') WHERE id = {k}")
                    }
                    5 | 6 => format!("DELETE FROM t_int WHERE id = {k}"),
                    7 => format!("UPDATE t_int SET id = id + {} WHERE id = {k}", rows * 2),
                    _ => format!("REPLACE INTO t_int VALUES ({k}, 'new{n}', {n})"),
                },
                1 => match op {
                    0..=4 => format!(
                        "UPDATE t_comp SET n = n + 1 WHERE a = 'k{}' AND b = {k}",
                        k % 97
                    ),
                    5 | 6 => format!("DELETE FROM t_comp WHERE a = 'k{}' AND b = {k}", k % 97),
                    _ => format!(
                        "REPLACE INTO t_comp VALUES ('k{}', {k}, 'new{n}', {n})",
                        k % 97
                    ),
                },
                2 => match op {
                    0..=4 => format!("UPDATE t_nokey SET n = n + 1 WHERE x = {k}"),
                    5 | 6 => format!("DELETE FROM t_nokey WHERE x = {k}"),
                    _ => format!(
                        "INSERT INTO t_nokey SELECT {k} + {}, 'new{n}', {n} FROM DUAL",
                        rows * 3 + n
                    ),
                },
                _ => match op {
                    0..=5 => format!("UPDATE t_uniq SET n = n + 1 WHERE u = 'u{}'", k / 10),
                    6 | 7 => format!("DELETE FROM t_uniq WHERE u = 'u{}'", k / 10),
                    _ => format!("REPLACE INTO t_uniq VALUES ('u{}', {n})", k / 10),
                },
            };
            // A moved key can collide, and writers can deadlock: such a
            // statement changed nothing.
            if c.query_drop(&q).is_ok() {
                n += 1;
            }
        }
        n
    }
}

/// A table's rows, as text per column, keyed by `key` columns (all of them
/// for a keyless table, whose identical rows then count).
type Rows = BTreeMap<String, (Vec<String>, u64)>;

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn key_text(cols: &[&str], key: &[&str], row: &serde_json::Map<String, Value>) -> String {
    let key: Vec<&str> = if key.is_empty() {
        cols.to_vec()
    } else {
        key.to_vec()
    };
    key.iter()
        .map(|k| cell_text(row.get(*k).unwrap_or(&Value::Null)))
        .collect::<Vec<_>>()
        .join("\u{1}")
}

/// The table as the server has it now.
fn server_rows(port: u16, db: &str, table: &str, cols: &[&str], key: &[&str]) -> Rows {
    let mut c = sql(port);
    let list = cols
        .iter()
        .map(|c| format!("IFNULL(CAST(`{c}` AS CHAR), 'NULL')"))
        .collect::<Vec<_>>()
        .join(", ");
    let q = format!("SELECT {list} FROM `{db}`.`{table}`");
    let mut out = Rows::new();
    for row in c.query_iter(q).unwrap() {
        let row = row.unwrap();
        let vals: Vec<String> = (0..cols.len())
            .map(|i| row.get::<String, _>(i).unwrap())
            .collect();
        let m: serde_json::Map<String, Value> = cols
            .iter()
            .zip(&vals)
            .map(|(c, v)| (c.to_string(), Value::String(v.clone())))
            .collect();
        out.entry(key_text(cols, key, &m))
            .and_modify(|e| e.1 += 1)
            .or_insert((vals, 1));
    }
    out
}

/// What a consumer of the topic ends up with for `table`: Maxwell
/// messages applied in order, snapshot rows as upserts. With `sets`,
/// identical rows of a keyless table count once (a snapshot of it that
/// started again after a crash sends them twice).
struct Applied {
    rows: Rows,
    snapshot_rows: u64,
}

fn apply(msgs: &[Msg], table: &str, cols: &[&str], key: &[&str], sets: bool) -> Applied {
    let mut rows = Rows::new();
    let mut snapshot_rows = 0;
    // Keys the consumer had when a full snapshot of the table began and
    // has not seen since: gone by its bootstrap-complete.
    let mut stale: Option<std::collections::HashSet<String>> = None;
    for m in msgs.iter().filter(|m| m.value["table"] == table) {
        if let (Some(st), Some(d)) = (stale.as_mut(), m.value["data"].as_object()) {
            if !d.is_empty() {
                st.remove(&key_text(cols, key, d));
            }
        }
        let v = &m.value;
        let data = v["data"].as_object().cloned().unwrap_or_default();
        let vals = |d: &serde_json::Map<String, Value>| -> Vec<String> {
            cols.iter().map(|c| cell_text(&d[*c])).collect()
        };
        let add = |rows: &mut Rows, d: &serde_json::Map<String, Value>, upsert: bool| {
            let k = key_text(cols, key, d);
            match rows.get_mut(&k) {
                Some(e) if upsert || sets => *e = (vals(d), e.1.max(1)),
                Some(e) => e.1 += 1,
                None => {
                    rows.insert(k, (vals(d), 1));
                }
            }
        };
        let remove = |rows: &mut Rows, d: &serde_json::Map<String, Value>| {
            let k = key_text(cols, key, d);
            if let Some(e) = rows.get_mut(&k) {
                if e.1 > 1 && !sets {
                    e.1 -= 1;
                } else {
                    rows.remove(&k);
                }
            }
        };
        match v["type"].as_str().unwrap() {
            // A keyless table's snapshot is its whole content at one point
            // of the binlog: a consumer starts the table again from it (the
            // changes before that point are in it already).
            "bootstrap-start" if key.is_empty() => rows.clear(),
            "bootstrap-start" => stale = Some(rows.keys().cloned().collect()),
            "bootstrap-complete" => {
                for k in stale.take().unwrap_or_default() {
                    rows.remove(&k);
                }
            }
            "bootstrap-insert" => {
                snapshot_rows += 1;
                add(&mut rows, &data, !key.is_empty());
            }
            "insert" => add(&mut rows, &data, !key.is_empty()),
            "delete" => remove(&mut rows, &data),
            "update" => {
                let mut old = data.clone();
                for (k, x) in v["old"].as_object().unwrap() {
                    old.insert(k.clone(), x.clone());
                }
                if let Some(st) = stale.as_mut() {
                    st.remove(&key_text(cols, key, &old));
                }
                remove(&mut rows, &old);
                add(&mut rows, &data, !key.is_empty());
            }
            other => panic!("unexpected message type {other}: {v}"),
        }
    }
    Applied {
        rows,
        snapshot_rows,
    }
}

const INT_COLS: &[&str] = &["id", "v", "n"];
const COMP_COLS: &[&str] = &["a", "b", "v", "n"];
const NOKEY_COLS: &[&str] = &["x", "v", "n"];

/// Compares every table's applied messages with the server; returns the
/// snapshot rows each table's messages held.
fn assert_exact(port: u16, db: &str, msgs: &[Msg], sets: bool) -> Vec<(String, u64, usize)> {
    ["t_int", "t_comp", "t_nokey", "t_uniq"]
        .into_iter()
        .map(|table| assert_table_exact(port, db, msgs, sets, table))
        .collect()
}

/// [`assert_exact`] for one of the [`TABLES`].
fn assert_table_exact(
    port: u16,
    db: &str,
    msgs: &[Msg],
    sets: bool,
    table: &str,
) -> (String, u64, usize) {
    let (cols, key) = match table {
        "t_int" => (INT_COLS, &["id"][..]),
        "t_comp" => (COMP_COLS, &["a", "b"][..]),
        "t_nokey" => (NOKEY_COLS, &[][..]),
        _ => (&["u", "n"][..], &["u"][..]),
    };
    {
        let want = server_rows(port, db, table, cols, key);
        let got = apply(msgs, table, cols, key, sets);
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !got.rows.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .rows
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.rows.get(*k).is_some_and(|g| g != *v))
            .take(5)
            .map(|(k, v)| (k.clone(), v.clone(), got.rows[k].clone()))
            .collect();
        let ok = missing.is_empty() && extra.is_empty() && differ.is_empty();
        if !ok {
            // The messages of the rows that differ, in topic order, with
            // where the snapshot of the table began and ended around them.
            let first_col = |k: &str| k.split('\u{1}').next().unwrap_or("").to_string();
            let wanted: std::collections::HashSet<String> = missing
                .iter()
                .map(|k| first_col(k))
                .chain(extra.iter().map(|k| first_col(k)))
                .chain(differ.iter().map(|(k, ..)| first_col(k)))
                .collect();
            for m in msgs.iter().filter(|m| m.value["table"] == table) {
                let kind = m.value["type"].as_str().unwrap_or("");
                let touches = m.value["data"]
                    .as_object()
                    .and_then(|d| d.get(cols[0]))
                    .is_some_and(|v| wanted.contains(&cell_text(v)));
                if touches || kind.starts_with("bootstrap-") && kind != "bootstrap-insert" {
                    eprintln!("  {}@{}: {}", m.partition, m.offset, m.raw);
                }
            }
        }
        assert!(
            ok,
            "{table}: the topic applied in order differs from the table ({} rows there, {} applied): missing {missing:?}, extra {extra:?}, different {differ:?}",
            want.len(),
            got.rows.len()
        );
        (table.to_string(), got.snapshot_rows, want.len())
    }
}

fn snapshot_env(topic: &str, db: &str) -> Vec<(String, String)> {
    let env = with(settings(topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_SNAPSHOT_MODE", "initial");
    with(env, "B2K_SNAPSHOT_CHUNK_ROWS", "2000")
}

fn wait_for_log(d: &mut Daemon, needle: &str, secs: u64) {
    d.wait_for_log(needle, Duration::from_secs(secs));
}

#[test]
fn initial_snapshot_under_concurrent_writes_is_exact() {
    servers();
    let rows = 100_000;
    let db = database(MYSQL_PORT, "snap_initial", TABLES);
    fill(MYSQL_PORT, &db, rows);
    let topic = unique("snap_initial");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(MYSQL_PORT, db.clone(), rows, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut d = Daemon::start(&snapshot_env(&topic, &db));
    wait_for_log(&mut d, &format!("snapshot of {db}.t_uniq done"), 120);
    let took = started.elapsed();
    // Changes go on after the snapshot too.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let statements = w.join().unwrap();
    d.caught_up();
    let log = d.log_text();
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    let counts = assert_exact(MYSQL_PORT, &db, &msgs, false);
    for (table, snap, now) in &counts {
        println!("{table}: {snap} snapshot rows, {now} rows at the end");
    }
    println!(
        "4 tables ({rows} rows each, t_uniq {}) snapshotted in {:.1} s while {statements} writes ran; superseded copies: {}",
        rows / 10,
        took.as_secs_f64(),
        log.lines().filter(|l| l.contains("copies left out")).count()
    );
    assert!(statements > 100, "the writer ran for the whole snapshot");
    for t in ["t_int", "t_comp", "t_nokey", "t_uniq"] {
        assert!(
            log.contains(&format!("snapshot of {db}.{t} done")),
            "the log says when {t} ends:\n{log}"
        );
    }
    let (status, _) = d.stop();
    assert!(status.success());
}

/// How many snapshot rows of `table` arrived more than once.
fn sent_twice(msgs: &[Msg], table: &str, key: &[&str]) -> (u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for m in msgs
        .iter()
        .filter(|m| m.value["table"] == table && m.value["type"] == "bootstrap-insert")
    {
        total += 1;
        let d = m.value["data"].as_object().unwrap();
        seen.insert(key_text(&[], key, d));
    }
    (total, total - seen.len() as u64)
}

#[test]
fn kill_9_twice_during_a_snapshot_resumes_from_the_last_released_chunk() {
    servers();
    let rows = 100_000;
    let db = database(MYSQL_PORT, "snap_kill", TABLES);
    fill(MYSQL_PORT, &db, rows);
    let topic = unique("snap_kill");
    let env = with(snapshot_env(&topic, &db), "B2K_SNAPSHOT_CHUNK_ROWS", "500");
    let env = with(env, "B2K_PIPELINE_CHECKPOINT_INTERVAL_MS", "100");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(MYSQL_PORT, db.clone(), rows, stop.clone());
    let mut d = Daemon::start(&env);
    wait_for_log(&mut d, &format!("snapshot of {db}.t_comp started"), 60);
    // Killed once a checkpoint holds a released chunk of it (a fixed wait
    // was too short on a loaded machine: the restart then began the table
    // again instead of resuming it).
    let (commits, pipe) = (common::commits(&topic), common::pipe(&topic));
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint(&commits, &pipe)
        .is_none_or(|cp| cp["snapshot"]["tables"][0]["after"].is_null())
    {
        assert!(
            Instant::now() < deadline,
            "no chunk of t_comp released:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = d.kill9();
    let mut d = Daemon::start(&env);
    wait_for_log(&mut d, &format!("snapshot of {db}.t_comp resumed"), 30);
    std::thread::sleep(Duration::from_millis(400));
    let second = d.kill9();
    let mut d = Daemon::start(&env);
    wait_for_log(&mut d, &format!("snapshot of {db}.t_uniq done"), 120);
    stop.store(true, Ordering::SeqCst);
    let statements = w.join().unwrap();
    d.caught_up();
    let third = d.log_text();
    let resumed: Vec<&str> = second
        .lines()
        .chain(third.lines())
        .filter(|l| l.contains("resumed after the last chunk released"))
        .collect();
    assert!(
        !resumed.is_empty(),
        "a restart carries on after the last released chunk:\n{first}\n{second}\n{third}"
    );
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    assert_exact(MYSQL_PORT, &db, &msgs, true);
    for (table, key) in [("t_int", &["id"][..]), ("t_comp", &["a", "b"][..])] {
        let (total, twice) = sent_twice(&msgs, table, key);
        println!(
            "{table}: {total} snapshot rows sent, {twice} of them twice ({statements} writes ran)"
        );
        assert!(
            twice < rows / 2,
            "{table}: a restart resends what was in flight, never the table ({twice} twice)"
        );
    }
    let (status, _) = d.stop();
    assert!(status.success());
}

/// A server sends a transaction to its replicas once it is in the binlog,
/// a moment before the storage engine commits it; semi-synchronous
/// replication (waiting after the binlog sync for a replica's answer,
/// which the daemon never gives) holds that moment open for seconds. A
/// read view opened in it does not see the transaction although the
/// stream is past it: a snapshot taken from such a view would bring each
/// table's row back to its state before the change (for the keyless
/// table, lose the change outright). The snapshot waits until its view has
/// seen what the stream carried.
#[test]
fn a_transaction_in_the_binlog_but_not_yet_committed_is_in_the_snapshot() {
    servers();
    let port: u16 = testenv(&["mariadb", "snap_commit", "3332"])
        .parse()
        .unwrap();
    let db = database(port, "snap_commit", TABLES);
    fill(port, &db, 2_000);
    let mut c = sql(port);
    c.query_drop("SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC")
        .unwrap();
    c.query_drop("SET GLOBAL rpl_semi_sync_master_timeout = 6000")
        .unwrap();
    // The keyless table (one view, emitted at its point) and a keyed one
    // (chunks, from the first view after the reader starts watching).
    for table in ["t_nokey", "t_int"] {
        // Armed again for each: semi-sync turns itself off after a wait
        // that timed out.
        c.query_drop("SET GLOBAL rpl_semi_sync_master_enabled = ON")
            .unwrap();
        let column = if table == "t_int" { "id" } else { "x" };
        let update = format!("UPDATE `{db}`.{table} SET n = -1, v = 'held' WHERE {column} = 7");
        let held = std::thread::spawn(move || sql(port).query_drop(update).unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let waiting: Option<(String, u64)> = c
                .query_first("SHOW STATUS LIKE 'Rpl_semi_sync_master_wait_sessions'")
                .unwrap();
            if waiting.is_some_and(|(_, n)| n == 1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the update never waited for a replica"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let topic = unique("snap_commit");
        let env = with(
            snapshot_env(&topic, &db),
            "B2K_FILTER_INCLUDE",
            &format!("{db}.{table}"),
        );
        let env = with(env, "B2K_MYSQL_PORT", &port.to_string());
        let mut d = Daemon::start(&env);
        assert!(
            !held.is_finished(),
            "{table}: the update was still uncommitted as the daemon started"
        );
        wait_for_log(&mut d, &format!("snapshot of {db}.{table} done"), 60);
        held.join().unwrap();
        c.query_drop("SET GLOBAL rpl_semi_sync_master_enabled = OFF")
            .unwrap();
        d.caught_up();
        let msgs = consume(&topic, &db, usize::MAX, 2.0);
        assert_table_exact(port, &db, &msgs, false, table);
        let held: Option<i64> = c
            .query_first(format!("SELECT n FROM `{db}`.{table} WHERE v = 'held'"))
            .unwrap();
        assert_eq!(held, Some(-1), "{table}: the update committed in the end");
        assert!(d.stop().0.success());
    }
}

#[test]
fn snapshot_when_needed_after_a_purge_and_a_clear_error_without_it() {
    servers();
    let port = testenv(&["mariadb", "snap_purge", "3331"]).parse().unwrap();
    let db = database(port, "snap_purge", TABLES);
    fill(port, &db, 2_000);
    let topic = unique("snap_purge");
    let on = |topic: &str, mode: &str| {
        let env = with(
            snapshot_env(topic, &db),
            "B2K_MYSQL_PORT",
            &port.to_string(),
        );
        with(env, "B2K_SNAPSHOT_MODE", mode)
    };
    let needed = on(&topic, "when_needed");
    let strict_topic = unique("snap_never");
    let strict = on(&strict_topic, "never");
    // Both pipelines run once: `needed` snapshots, `strict` streams.
    let mut d = Daemon::start(&needed);
    wait_for_log(&mut d, &format!("snapshot of {db}.t_uniq done"), 60);
    assert!(d.stop().0.success());
    let d = Daemon::start(&strict);
    assert!(d.stop().0.success());
    let strict_cp = checkpoint(
        &format!("{strict_topic}_commits"),
        &format!("{strict_topic}_pipe"),
    );
    // Changes neither saw, then their binlog is gone.
    let mut c = sql(port);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("UPDATE t_int SET n = -n WHERE id % 10 = 0")
        .unwrap();
    c.query_drop("DELETE FROM t_comp WHERE b % 7 = 0").unwrap();
    c.query_drop("INSERT INTO t_nokey VALUES (-1, 'gone', -1)")
        .unwrap();
    c.query_drop("FLUSH BINARY LOGS").unwrap();
    let (newest, _) = binlog_head(port);
    // MariaDB keeps a file until its binlog checkpoint is written: purge
    // until it is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        c.query_drop(format!("PURGE BINARY LOGS TO '{newest}'"))
            .unwrap();
        let files: Vec<String> = c
            .query::<(String, u64), _>("SHOW BINARY LOGS")
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        if files == [newest.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "could not purge: {files:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut d = Daemon::start_waiting(&strict);
    let status = d.wait(Duration::from_secs(30));
    assert!(!status.success());
    let line = the_error(&d.log_text());
    assert!(
        line.contains("purged") && line.contains("snapshot.mode=when_needed"),
        "{line}"
    );
    assert_eq!(
        checkpoint(
            &format!("{strict_topic}_commits"),
            &format!("{strict_topic}_pipe")
        ),
        strict_cp,
        "the checkpoint has not moved"
    );

    let mut d = Daemon::start(&needed);
    wait_for_log(&mut d, &format!("snapshot of {db}.t_uniq done"), 60);
    c.query_drop("UPDATE t_int SET v = 'after' WHERE id < 50")
        .unwrap();
    d.caught_up();
    let log = d.log_text();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("has been purged"))
        .collect();
    assert_eq!(warned.len(), 1, "one warning:\n{log}");
    assert!(
        warned[0].contains("snapshot.mode=when_needed"),
        "{}",
        warned[0]
    );
    let msgs = consume(&topic, &db, usize::MAX, 2.0);
    assert_exact(port, &db, &msgs, false);
    assert!(d.stop().0.success());
}

#[test]
fn a_requested_snapshot_runs_beside_the_stream_and_honours_where() {
    servers();
    let rows = 20_000;
    let db = database(MYSQL_PORT, "snap_adhoc", TABLES);
    fill(MYSQL_PORT, &db, rows);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("CREATE TABLE busy (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .unwrap();
    let topic = unique("snap_adhoc");
    let env = with(snapshot_env(&topic, &db), "B2K_SNAPSHOT_MODE", "never");
    // A pipeline that never ran has nobody to take a request.
    let (status, _, err) = run_to_end(&["snapshot", &format!("{db}.t_int")], &env);
    assert!(!status.success());
    let line = the_error(&err);
    assert!(
        line.contains("never run") && line.contains("snapshot.mode=initial"),
        "{line}"
    );
    let mut d = Daemon::start(&env);
    // Load on another table, and changes to the one requested.
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(MYSQL_PORT, db.clone(), rows, stop.clone());
    let load = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = sql(MYSQL_PORT);
            c.query_drop(format!("USE `{db}`")).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                c.query_drop(format!("INSERT INTO busy (v) VALUES ({n}), ({n}), ({n})"))
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let cond = "id <= 5000 OR id > 15000";
    let (status, out, err) =
        run_to_end(&["snapshot", "--where", cond, &format!("{db}.t_int")], &env);
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains("taken by") && out.contains(&format!("{db}.t_int")),
        "{out}"
    );
    wait_for_log(&mut d, &format!("snapshot of {db}.t_int done"), 60);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    w.join().unwrap();
    let batches = load.join().unwrap();
    d.caught_up();
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    // The stream of the busy table is whole.
    let busy = apply(&msgs, "busy", &["id", "v"], &["id"], false);
    assert_eq!(
        busy.rows,
        server_rows(MYSQL_PORT, &db, "busy", &["id", "v"], &["id"])
    );
    assert_eq!(busy.rows.len() as u64, 3 * batches);
    // Every snapshot row matches --where, and the rows it covers are exact.
    let snap: Vec<&Msg> = msgs
        .iter()
        .filter(|m| m.value["type"] == "bootstrap-insert")
        .collect();
    assert!(!snap.is_empty());
    for m in &snap {
        let id = m.value["data"]["id"].as_i64().unwrap();
        assert!(
            id <= 5000 || id > 15000,
            "a row outside --where: {}",
            m.value
        );
    }
    let t = apply(&msgs, "t_int", INT_COLS, &["id"], false);
    let mut want = server_rows(MYSQL_PORT, &db, "t_int", INT_COLS, &["id"]);
    want.retain(|_, (v, _)| {
        let id: i64 = v[0].parse().unwrap();
        id <= 5000 || id > 15000
    });
    let got: Rows = t
        .rows
        .into_iter()
        .filter(|(k, _)| want.contains_key(k))
        .collect();
    assert_eq!(got.len(), want.len(), "every row --where names arrived");
    assert_eq!(got, want);
    assert!(d.stop().0.success());
}

/// Chunk boundaries for every kind of key a table can have: the next chunk
/// starts right after the last key of the one before, as the server orders
/// and compares that type (BIT read back as bytes once compared as a string
/// and sent each boundary row twice). `snapshot.chunk_rows=16`, below the
/// 64 rows a chunk normally holds at least, is honoured, not a panic.
#[test]
fn every_key_type_chunks_without_a_row_twice_or_missing() {
    servers();
    let keys: &[(&str, &str, &str)] = &[
        ("k_bit", "BIT(12)", "seq * 3"),
        ("k_bit64", "BIT(64)", "seq * 1000000000007"),
        ("k_tiny", "SMALLINT", "CAST(seq AS SIGNED) - 100"),
        ("k_ubig", "BIGINT UNSIGNED", "18446744073709551615 - CAST(seq AS UNSIGNED) * 3"),
        ("k_dec", "DECIMAL(30,0)", "100000000000000000000 + seq"),
        ("k_decs", "DECIMAL(12,4)", "seq / 7"),
        ("k_double", "DOUBLE", "seq / 3"),
        ("k_year", "YEAR", "1901 + seq"),
        ("k_date", "DATE", "'2020-01-01' + INTERVAL seq DAY"),
        ("k_dt", "DATETIME(6)", "'2020-01-01' + INTERVAL seq * 1001 MICROSECOND"),
        ("k_ts", "TIMESTAMP(3)", "'2020-01-01' + INTERVAL seq SECOND"),
        ("k_time", "TIME(2)", "SEC_TO_TIME(CAST(seq AS SIGNED) * 37 - 2000)"),
        ("k_ci", "VARCHAR(20) COLLATE utf8mb4_general_ci", "CONCAT(IF(seq % 2, 'a', 'B'), seq)"),
        ("k_bin", "VARBINARY(20)", "UNHEX(HEX(seq * 257))"),
        ("k_char", "CHAR(8)", "LPAD(seq, 5, ' ')"),
        ("k_binary", "BINARY(4)", "CHAR(seq % 256, seq DIV 256)"),
        ("k_enum", "ENUM('z','y','x','w','v','u','t','s','r','q','p','o','n','m','l','k','j','i','h','g','f','e','d','c','b','a') ", "1 + seq % 26"),
        ("k_uni", "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", "CONCAT(ELT(1 + seq % 4, 'é', 'E', 'ß', 'ss'), seq)"),
    ];
    let ddl: Vec<String> = keys
        .iter()
        .map(|(t, ty, _)| format!("CREATE TABLE {t} (k {ty} NOT NULL PRIMARY KEY, n INT)"))
        .collect();
    let ddl: Vec<&str> = ddl.iter().map(String::as_str).collect();
    let db = database(MYSQL_PORT, "snap_keys", &ddl);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    for (t, _, expr) in keys {
        c.query_drop(format!(
            "INSERT IGNORE INTO {t} SELECT {expr}, seq FROM seq_1_to_300"
        ))
        .unwrap();
    }
    let topic = unique("snap_keys");
    let env = with(snapshot_env(&topic, &db), "B2K_SNAPSHOT_CHUNK_ROWS", "16");
    let mut d = Daemon::start(&env);
    // Tables are read in name order; k_year is the last.
    wait_for_log(&mut d, &format!("snapshot of {db}.k_year done"), 120);
    let msgs = consume(&topic, &db, usize::MAX, 2.0);
    let mut failures = Vec::new();
    for (t, _, _) in keys {
        let want: u64 = c
            .query_first(format!("SELECT COUNT(*) FROM {t}"))
            .unwrap()
            .unwrap();
        let mut seen = BTreeMap::new();
        for m in msgs
            .iter()
            .filter(|m| m.value["table"] == *t && m.value["type"] == "bootstrap-insert")
        {
            *seen.entry(m.value["data"]["n"].to_string()).or_insert(0u32) += 1;
        }
        let twice = seen.values().filter(|&&n| n > 1).count();
        if seen.len() as u64 != want || twice > 0 {
            failures.push(format!(
                "{t}: {} rows in the table, {} distinct rows sent, {twice} sent more than once",
                want,
                seen.len()
            ));
        }
    }
    assert!(failures.is_empty(), "chunk boundaries: {failures:#?}");
    let log = d.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(d.stop().0.success());
}

/// Writes a snapshot request straight into the commit-log topic, as anyone
/// allowed to write there could, and returns the daemon's answer.
fn raw_request(topic: &str, id: &str, tables: &[String], condition: Option<&str>) -> Value {
    let pipe = common::pipe(topic);
    let commits = common::commits(topic);
    let req = serde_json::json!({
        "id": id, "tables": tables, "condition": condition, "requested_ms": 1,
    });
    kafka_client()
        .produce(
            &commits,
            0,
            &[binlog2kafka::kafka::OutRecord {
                key: Some(format!("{pipe}#snapshot#{id}").into_bytes().into()),
                value: Some(req.to_string().into_bytes().into()),
                timestamp_ms: 1,
                headers: Vec::new(),
            }],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(ack) = checkpoint(&commits, &format!("{pipe}#snapshot-ack#{id}")) {
            return ack;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no answer to request {id} within 30 s");
}

/// Snapshot requests arrive through a topic, so they are untrusted: a
/// `--where` is parsed as a condition over the requested table's own
/// columns and rendered again, never spliced into SQL. An injection that
/// once published `mysql.user`'s password hashes as rows of the table, a
/// table outside `filter.include`, a comment that once put the daemon in a
/// crash loop, a table that does not exist: each is answered as refused to
/// its requester, and the pipeline streams on.
#[test]
fn snapshot_requests_are_untrusted_and_a_bad_one_never_stops_the_pipeline() {
    servers();
    let db = database(
        MYSQL_PORT,
        "snap_untrusted",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40))",
            "CREATE TABLE hidden (id INT PRIMARY KEY, name VARCHAR(40))",
            "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'it''s')",
            "INSERT INTO hidden VALUES (1, 'SECRET-IN-HIDDEN')",
        ],
    );
    let topic = unique("snap_untrusted");
    let env = with(
        settings(&topic),
        "B2K_FILTER_INCLUDE",
        &format!("{db}.t,{db}.nope"),
    );
    let env = with(env, "B2K_SNAPSHOT_MODE", "never");
    let mut d = Daemon::start(&env);
    let t = format!("{db}.t");
    let injections = [
        "1=1) UNION SELECT 2000, CONCAT(User,':',authentication_string) FROM mysql.user WHERE (1=1"
            .to_string(),
        format!("1=1) UNION SELECT id, name FROM `{db}`.hidden WHERE (1=1"),
        "id IN (SELECT id FROM mysql.user)".into(),
        "id < 3 -- comment".into(),
        "id < 3 /*!50000 OR 1=1 */".into(),
        "SLEEP(3) = 0".into(),
        "name = 'x' OR (SELECT 1)".into(),
        "id = 1; DELETE FROM t".into(),
        "nosuch = 1".into(),
    ];
    for (n, cond) in injections.iter().enumerate() {
        // The command line refuses what does not parse before writing it...
        let (status, out, err) = run_to_end(&["snapshot", "--where", cond, &t], &env);
        assert!(!status.success(), "{cond}: {out}{err}");
        let line = the_error(&err);
        assert!(
            line.contains("--where refused") || line.contains("no column"),
            "{cond}: {line}"
        );
        // ...and the daemon refuses it when it is written to the topic.
        let ack = raw_request(
            &topic,
            &format!("evil{n}"),
            std::slice::from_ref(&t),
            Some(cond),
        );
        assert_eq!(ack["tables"], serde_json::json!([]), "{cond}: taken: {ack}");
        let why = ack["refused"][0].as_str().unwrap_or_default();
        assert!(why.contains("--where refused"), "{cond}: {ack}");
    }
    // A table outside filter.include, and one that does not exist: the
    // requester hears why, at once.
    let ack = raw_request(&topic, "hidden", &[format!("{db}.hidden")], None);
    assert_eq!(ack["tables"], serde_json::json!([]), "{ack}");
    assert!(
        ack["refused"][0]
            .as_str()
            .unwrap()
            .contains("not published"),
        "{ack}"
    );
    let (status, _, err) = run_to_end(&["snapshot", &format!("{db}.nope")], &env);
    assert!(!status.success(), "{err}");
    let line = the_error(&err);
    assert!(line.contains("no such table"), "{line}");
    // Strings with quotes, and a good condition: the rows it names.
    let (status, out, err) = run_to_end(
        &["snapshot", "--where", "id < 3 OR name = 'it''s'", &t],
        &env,
    );
    assert!(status.success(), "{out}{err}");
    wait_for_log(&mut d, &format!("snapshot of {t} done"), 30);
    assert!(
        d.exited().is_none(),
        "the daemon stopped:\n{}",
        d.log_text()
    );
    sql(MYSQL_PORT)
        .query_drop(format!("INSERT INTO `{db}`.t VALUES (5, 'after')"))
        .unwrap();
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    let mut snap: Vec<i64> = msgs
        .iter()
        .filter(|m| m.value["type"] == "bootstrap-insert")
        .map(|m| m.value["data"]["id"].as_i64().unwrap())
        .collect();
    snap.sort();
    assert_eq!(snap, vec![1, 2, 4], "only the rows the condition names");
    assert!(
        msgs.iter().all(|m| m.value["table"] == "t"),
        "only table t is published: {:?}",
        msgs.iter().map(|m| &m.value).collect::<Vec<_>>()
    );
    assert!(
        msgs.iter()
            .any(|m| m.value["type"] == "insert" && m.value["data"]["id"] == 5),
        "the stream goes on after the refusals"
    );
    assert!(!msgs
        .iter()
        .any(|m| m.raw.contains("SECRET") || m.raw.contains('*')));
    assert!(d.stop().0.success());
}

/// A table of `rows` rows under snapshot in chunks of 500, and a daemon
/// reading it; returns once its snapshot has begun, with the database,
/// topic and daemon.
fn snapshot_under_way(prefix: &str, rows: u64, extra: &[(&str, &str)]) -> (String, String, Daemon) {
    let db = database(
        MYSQL_PORT,
        prefix,
        &["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT)"],
    );
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop(format!(
        "INSERT INTO t SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_{rows}"
    ))
    .unwrap();
    let topic = unique(prefix);
    let mut env = with(snapshot_env(&topic, &db), "B2K_SNAPSHOT_CHUNK_ROWS", "500");
    for (k, v) in extra {
        env = with(env, k, v);
    }
    let mut d = Daemon::start(&env);
    wait_for_log(&mut d, &format!("snapshot of {db}.t started"), 30);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !d.log_text().contains(&format!("snapshot of {db}.t done")),
        "the snapshot ended before the DDL could reach it; the test needs a bigger table"
    );
    (db, topic, d)
}

/// TRUNCATE during a table's snapshot once ended it with bootstrap-complete
/// after rows that no longer existed. Its snapshot starts again, so the
/// consumer's rule (bootstrap-start to -complete plus the changes between
/// is the whole table) holds.
#[test]
fn truncate_during_a_snapshot_starts_the_tables_snapshot_again() {
    servers();
    let (db, topic, mut d) = snapshot_under_way("snap_trunc", 150_000, &[]);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("TRUNCATE TABLE `{db}`.t")).unwrap();
    c.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (7, 'after', 7), (150001, 'after', 1)"
    ))
    .unwrap();
    wait_for_log(&mut d, &format!("snapshot of {db}.t done"), 60);
    d.caught_up();
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    let applied = apply(&msgs, "t", INT_COLS, &["id"], false);
    let want = server_rows(MYSQL_PORT, &db, "t", INT_COLS, &["id"]);
    assert_eq!(want.len(), 2);
    assert_eq!(
        applied.rows, want,
        "the topic applied in order is the table"
    );
    let starts = msgs
        .iter()
        .filter(|m| m.value["type"] == "bootstrap-start")
        .count();
    // Where rows had gone out before the TRUNCATE (nearly always, 300 ms
    // into the snapshot), the snapshot started again; otherwise the first
    // chunk's view already saw the empty table.
    let restarted = d.log_text().contains("was truncated after");
    assert_eq!(starts, if restarted { 2 } else { 1 }, "{}", d.log_text());
    assert!(d.stop().0.success());
}

/// RENAME during a table's snapshot once ended it as "dropped", with most
/// of its rows never published and the new name never snapshotted. The
/// snapshot follows the table under its new name.
#[test]
fn rename_during_a_snapshot_snapshots_the_table_under_its_new_name() {
    servers();
    let rows = 150_000;
    let (db, topic, mut d) = snapshot_under_way("snap_rename", rows, &[]);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("RENAME TABLE `{db}`.t TO `{db}`.t2"))
        .unwrap();
    c.query_drop(format!(
        "UPDATE `{db}`.t2 SET v = 'changed' WHERE id IN (1, 149999)"
    ))
    .unwrap();
    wait_for_log(&mut d, &format!("snapshot of {db}.t2 done"), 60);
    d.caught_up();
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    let applied = apply(&msgs, "t2", INT_COLS, &["id"], false);
    let want = server_rows(MYSQL_PORT, &db, "t2", INT_COLS, &["id"]);
    assert_eq!(want.len() as u64, rows);
    assert_eq!(
        applied.rows.len() as u64,
        rows,
        "every row under the new name"
    );
    assert_eq!(applied.rows, want);
    assert!(d.stop().0.success());
}

/// A table renamed out of the captured tables, written while out, and
/// renamed back: both renames reach the DDL topic, and the table, new to
/// the consumer under its name again, is snapshotted (snapshot.mode allows
/// it), so the rows written meanwhile arrive.
#[test]
fn a_table_renamed_out_of_the_captured_set_and_back_is_snapshotted_again() {
    servers();
    let db = database(
        MYSQL_PORT,
        "snap_outback",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT)",
            "INSERT INTO t VALUES (1, 'one', 1), (2, 'two', 2)",
        ],
    );
    let topic = unique("snap_outback");
    let ddl_topic = format!("{topic}_ddl");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.t"));
    let env = with(env, "B2K_SNAPSHOT_MODE", "initial");
    let env = with(env, "B2K_KAFKA_DDL_TOPIC", &ddl_topic);
    let mut d = Daemon::start(&env);
    wait_for_log(&mut d, &format!("snapshot of {db}.t done"), 30);
    let mut c = sql(MYSQL_PORT);
    c.query_drop(format!("USE `{db}`")).unwrap();
    c.query_drop("RENAME TABLE t TO excluded_x").unwrap();
    c.query_drop("INSERT INTO excluded_x VALUES (3, 'written while out', 3)")
        .unwrap();
    c.query_drop("UPDATE excluded_x SET v = 'changed while out' WHERE id = 1")
        .unwrap();
    c.query_drop("RENAME TABLE excluded_x TO t").unwrap();
    c.query_drop("INSERT INTO t VALUES (4, 'back', 4)").unwrap();
    let log_has = |d: &mut Daemon| {
        d.log_text()
            .matches(&format!("snapshot of {db}.t done"))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log_has(&mut d) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        log_has(&mut d),
        2,
        "a second snapshot of t:\n{}",
        d.log_text()
    );
    d.caught_up();
    let msgs = consume(&topic, &db, usize::MAX, 3.0);
    let applied = apply(&msgs, "t", INT_COLS, &["id"], false);
    assert_eq!(
        applied.rows,
        server_rows(MYSQL_PORT, &db, "t", INT_COLS, &["id"])
    );
    assert_eq!(applied.rows.len(), 4);
    let ddl: Vec<String> = consume(&ddl_topic, &db, 2, 10.0)
        .iter()
        .map(|m| m.value["sql"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        ddl,
        vec![
            "RENAME TABLE t TO excluded_x",
            "RENAME TABLE excluded_x TO t"
        ],
        "both renames on the DDL topic"
    );
    assert!(d.stop().0.success());
}

/// A request written while the pipeline is down waits in the topic; `check`
/// lists it, and stops listing it once a daemon has answered it.
#[test]
fn check_lists_the_snapshot_requests_no_daemon_has_answered() {
    servers();
    let db = database(
        MYSQL_PORT,
        "snap_pending",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "INSERT INTO t VALUES (1), (2)",
        ],
    );
    let topic = unique("snap_pending");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    assert!(Daemon::start(&env).stop().0.success());
    let pipe = common::pipe(&topic);
    let req = serde_json::json!({"id": "waiting-1", "tables": [format!("{db}.t")], "condition": "id > 1", "requested_ms": 1});
    kafka_client()
        .produce(
            &common::commits(&topic),
            0,
            &[binlog2kafka::kafka::OutRecord {
                key: Some(format!("{pipe}#snapshot#waiting-1").into_bytes().into()),
                value: Some(req.to_string().into_bytes().into()),
                timestamp_ms: 1,
                headers: Vec::new(),
            }],
        )
        .unwrap();
    let (_, out, _) = run_to_end(&["check"], &env);
    assert!(
        out.contains(&format!(
            "warn snapshot requests waiting for the pipeline: waiting-1 ({db}.t where id > 1)"
        )),
        "{out}"
    );
    let mut d = Daemon::start(&env);
    wait_for_log(&mut d, &format!("snapshot of {db}.t done"), 30);
    assert!(d.stop().0.success());
    let (_, out, _) = run_to_end(&["check"], &env);
    assert!(!out.contains("waiting for the pipeline"), "{out}");
}
