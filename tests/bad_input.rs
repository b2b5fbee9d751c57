//! Bad input ends in one readable error line that says what to do, a
//! non-zero exit, and a checkpoint that has not moved.

mod common;

use binlog2kafka::event::Position;
use binlog2kafka::kafka::Client;
use common::{run_to_end, settings, unique, with};
use mysql::prelude::Queryable;

/// The run failed with exactly one error line, the last one, containing
/// every one of `needles`.
fn fails_with(args: &[&str], env: &[(String, String)], needles: &[&str]) -> String {
    let (status, _out, err) = run_to_end(args, env);
    assert!(
        !status.success(),
        "expected a non-zero exit; stderr:\n{err}"
    );
    let error_lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(error_lines.len(), 1, "exactly one error line:\n{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("binlog2kafka: error: "),
        "the error is the last line:\n{err}"
    );
    for n in needles {
        assert!(last.contains(n), "error line lacks {n:?}: {last}");
    }
    last.to_string()
}

fn kafka() -> Client {
    common::kafka_client()
}

fn no_checkpoint_written(topic: &str) {
    let mut k = kafka();
    let cp = binlog2kafka::checkpoint::read_latest(
        &mut k,
        &common::commits(topic),
        &common::pipe(topic),
    )
    .unwrap();
    assert!(cp.is_none(), "no checkpoint may be written: {cp:?}");
}

#[test]
fn unknown_config_key_is_named_with_its_line() {
    let dir = std::env::temp_dir().join(format!("{}.properties", unique("bad")));
    std::fs::write(&dir, "# ok\nmysql.host = 127.0.0.1\nmysql.hots = typo\n").unwrap();
    fails_with(
        &["--config", dir.to_str().unwrap()],
        &[],
        &[
            "unknown config key `mysql.hots`",
            ":3",
            "did you mean `mysql.host`",
        ],
    );
    fails_with(
        &["check"],
        &[("B2K_KAFKA_TOPCI".into(), "x".into())],
        &["B2K_KAFKA_TOPCI"],
    );
}

#[test]
fn missing_config_file_is_named() {
    fails_with(
        &["--config", "/nonexistent/b2k.properties"],
        &[],
        &["/nonexistent/b2k.properties"],
    );
}

#[test]
fn bad_value_says_what_is_expected() {
    fails_with(
        &["run"],
        &[("B2K_MYSQL_PORT".into(), "70000".into())],
        &["mysql.port", "1 to 65535"],
    );
}

#[test]
fn wrong_password_says_to_check_the_credentials() {
    common::servers();
    let topic = unique("badpw");
    let env = with(settings(&topic), "B2K_MYSQL_PASSWORD", "wrong");
    fails_with(&["run"], &env, &["refused user 'cdc'", "mysql.password"]);
    no_checkpoint_written(&topic);
}

#[test]
fn unreachable_mysql_names_the_address() {
    common::servers();
    let topic = unique("nomysql");
    let env = with(settings(&topic), "B2K_MYSQL_PORT", "1");
    fails_with(
        &["run"],
        &env,
        &["cannot reach MySQL at 127.0.0.1:1", "mysql.host"],
    );
    no_checkpoint_written(&topic);
}

#[test]
fn unreachable_broker_names_the_broker() {
    common::servers();
    let topic = unique("nokafka");
    let env = with(settings(&topic), "B2K_KAFKA_BROKERS", "127.0.0.1:1");
    fails_with(&["run"], &env, &["127.0.0.1:1", "kafka.brokers"]);
    no_checkpoint_written(&topic);
}

#[test]
fn statement_binlog_format_is_refused_with_the_fix() {
    common::servers();
    let port = common::testenv(&["mariadb", "statement", "3309", "--binlog-format=STATEMENT"]);
    let topic = unique("stmt");
    let env = with(settings(&topic), "B2K_MYSQL_PORT", &port);
    fails_with(
        &["run"],
        &env,
        &["binlog_format is STATEMENT", "binlog_format=ROW"],
    );
    no_checkpoint_written(&topic);
    // `check` reports the same, and exits 1.
    let (status, out, _) = run_to_end(&["check"], &env);
    assert!(!status.success());
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL mysql") && l.contains("binlog_format=ROW")),
        "{out}"
    );
}

#[test]
fn missing_replication_privilege_is_named_with_the_grant() {
    common::servers();
    let user = unique("noprivs").replace('-', "_");
    let mut c = common::sql(common::MYSQL_PORT);
    c.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .unwrap();
    c.query_drop(format!("GRANT SELECT ON *.* TO '{user}'@'%'"))
        .unwrap();
    let topic = unique("noprivs");
    let env = with(
        with(settings(&topic), "B2K_MYSQL_USER", &user),
        "B2K_MYSQL_PASSWORD",
        "pw",
    );
    fails_with(&["run"], &env, &["REPLICATION SLAVE", "GRANT"]);
    no_checkpoint_written(&topic);
}

#[test]
fn checkpoint_on_a_purged_binlog_stops_and_stays() {
    common::servers();
    let topic = unique("purged");
    let commit_topic = common::commits(&topic);
    let pipeline = common::pipe(&topic);
    let mut k = kafka();
    binlog2kafka::checkpoint::ensure_topic(&mut k, &commit_topic, -1).unwrap();
    let gone = Position::at("binlog.000000", 4);
    let rec = binlog2kafka::checkpoint::Record::new(&pipeline, &gone, "");
    binlog2kafka::checkpoint::write(&mut k, &commit_topic, &rec).unwrap();
    fails_with(
        &["run"],
        &settings(&topic),
        &["binlog.000000", "purged", "start.position"],
    );
    let after = binlog2kafka::checkpoint::read_latest(&mut k, &commit_topic, &pipeline)
        .unwrap()
        .unwrap();
    assert_eq!(after.position(), gone, "the checkpoint has not moved");
    // An explicit start position on a missing file is refused the same way.
    let fresh = unique("purged2");
    fails_with(
        &["run"],
        &with(settings(&fresh), "B2K_START_POSITION", "binlog.000000:4"),
        &[
            "start.position names binlog binlog.000000",
            "SHOW BINARY LOGS",
        ],
    );
}

#[test]
fn check_reports_a_healthy_setup_and_exits_zero() {
    common::servers();
    let (status, out, err) = run_to_end(&["check"], &settings(&unique("check")));
    assert!(status.success(), "{out}\n{err}");
    for needle in [
        "ok   mysql",
        "binlog_format=ROW",
        "binlog_row_metadata=FULL",
        "ok   privileges",
        "ok   kafka",
        "ok   kafka: idempotent producer (InitProducerId)",
        "ok   checkpoint: none yet",
    ] {
        assert!(
            out.contains(needle),
            "check output lacks {needle:?}:\n{out}"
        );
    }
}

#[test]
fn help_lists_every_config_key_and_version_prints() {
    let (status, out, _) = run_to_end(&["--help"], &[]);
    assert!(status.success());
    for k in binlog2kafka::config::KEYS {
        assert!(out.contains(k.name), "--help lacks {}", k.name);
    }
    let (status, out, _) = run_to_end(&["--version"], &[]);
    assert!(status.success());
    assert_eq!(
        out.trim(),
        format!("binlog2kafka {}", env!("CARGO_PKG_VERSION"))
    );
    fails_with(&["frobnicate"], &[], &["unexpected argument `frobnicate`"]);
}

#[test]
fn a_start_position_inside_an_event_or_past_the_end_is_refused_and_never_saved() {
    common::servers();
    let (file, size) = common::binlog_head(common::MYSQL_PORT);
    let topic = unique("badpos");
    // Offset 5 is inside the file's first event; size + 1000 is past its end.
    for (pos, needle) in [
        (5, "is not where an event starts"),
        (size + 1000, "past the end"),
    ] {
        let env = with(
            settings(&topic),
            "B2K_START_POSITION",
            &format!("{file}:{pos}"),
        );
        fails_with(
            &["run"],
            &env,
            &[&format!("{file}:{pos}"), needle, "SHOW BINLOG EVENTS"],
        );
        no_checkpoint_written(&topic);
        let (status, out, _) = run_to_end(&["check"], &env);
        assert!(!status.success(), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("FAIL start.position") && l.contains(needle)),
            "check fails on it:\n{out}"
        );
    }
    let env = with(settings(&topic), "B2K_START_POSITION", "binlog.999999:4");
    let (status, out, _) = run_to_end(&["check"], &env);
    assert!(!status.success() && out.contains("binlog.999999"), "{out}");
}

#[test]
fn reset_removes_a_stopped_pipelines_checkpoint_and_refuses_a_running_one() {
    common::servers();
    let topic = unique("reset");
    let env = settings(&topic);
    let daemon = common::Daemon::start(&env);
    let (status, out, err) = run_to_end(&["reset"], &env);
    assert!(!status.success(), "{out}{err}");
    assert!(
        err.contains("stop that daemon before resetting it"),
        "refused while running: {err}"
    );
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    assert!(common::checkpoint(&common::commits(&topic), &common::pipe(&topic)).is_some());

    let (status, out, err) = run_to_end(&["reset"], &env);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("reset: its checkpoint"), "{out}");
    no_checkpoint_written(&topic);
    let (_, out, _) = run_to_end(&["check"], &env);
    assert!(out.contains("checkpoint: none yet"), "{out}");
    let (status, out, _) = run_to_end(&["reset"], &env);
    assert!(
        status.success() && out.contains("nothing to reset"),
        "{out}"
    );
}
