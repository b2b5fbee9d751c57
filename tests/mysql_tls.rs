//! TLS to MySQL (`mysql.ssl_mode`) against real MariaDB servers that
//! require it (`require_secure_transport=ON`), with certificates made by
//! the openssl command line at test time (`scripts/testenv certs`): the
//! stream, the schema queries and the snapshot over `verify_identity`, a
//! client certificate for a `REQUIRE X509` user, and the one line each
//! misconfiguration ends in.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use mysql::prelude::Queryable;

/// A server with the good certificate (localhost, 127.0.0.1), and one with
/// a certificate for another name; both refuse plaintext.
const TLS_PORT: u16 = 3361;
const WRONG_NAME_PORT: u16 = 3362;

fn tls_dir() -> PathBuf {
    PathBuf::from(testenv(&["certs"]))
}

fn tls_servers() -> PathBuf {
    // Once per test binary: its tests start side by side.
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        servers();
        let d = tls_dir();
        for (name, port, cert) in [
            ("tls", TLS_PORT, "good"),
            ("tlsname", WRONG_NAME_PORT, "wrongname"),
        ] {
            testenv(&[
                "mariadb",
                name,
                &port.to_string(),
                &format!("--ssl-ca={}", d.join("ca.pem").display()),
                &format!("--ssl-cert={}", d.join(format!("{cert}.pem")).display()),
                &format!("--ssl-key={}", d.join(format!("{cert}.key")).display()),
                "--require-secure-transport=ON",
            ]);
        }
        d
    })
    .clone()
}

/// Root over the instance's socket (a socket counts as secure transport).
fn root_sql(name: &str) -> mysql::Conn {
    let sock = root().join(format!("target/testenv/mariadb-{name}/sock"));
    mysql::Conn::new(
        mysql::OptsBuilder::new()
            .socket(Some(sock.to_str().unwrap()))
            .user(Some("root"))
            .tcp_connect_timeout(Some(Duration::from_secs(5))),
    )
    .expect("root over the socket")
}

fn env_for(topic: &str, db: &str, port: u16, d: &std::path::Path) -> Vec<(String, String)> {
    let env = with(settings(topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_MYSQL_PORT", &port.to_string());
    let env = with(env, "B2K_MYSQL_SSL_MODE", "verify_identity");
    with(env, "B2K_MYSQL_SSL_CA", d.join("ca.pem").to_str().unwrap())
}

fn error_of(env: &[(String, String)]) -> String {
    let (status, _, stderr) = run_to_end(&["run"], env);
    assert!(!status.success(), "{stderr}");
    the_error(&stderr)
}

#[test]
fn the_pipeline_streams_and_snapshots_over_verified_tls_and_check_reports_it() {
    let d = tls_servers();
    let db = unique("mtls_db");
    let mut root = root_sql("tls");
    root.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    root.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .unwrap();
    root.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, 'before'), (2, 'before')"
    ))
    .unwrap();
    let topic = unique("mtls");
    let env = with(
        env_for(&topic, &db, TLS_PORT, &d),
        "B2K_SNAPSHOT_MODE",
        "initial",
    );

    let (status, out, err) = run_to_end(&["check"], &env);
    println!("{out}{err}");
    assert!(status.success(), "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("mysql TLS:"))
        .expect("check reports the TLS session");
    assert!(
        line.starts_with("ok")
            && line.contains("TLSv1.3")
            && line.contains("CN=localhost")
            && line.contains("verify_identity"),
        "{line}"
    );

    let daemon = Daemon::start(&env);
    // The snapshot (bootstrap-start, two rows, bootstrap-complete) first.
    assert_eq!(consume(&topic, &db, 4, 10.0).len(), 4);
    for i in 3..=5 {
        root.query_drop(format!("INSERT INTO `{db}`.t VALUES ({i}, 'streamed')"))
            .unwrap();
    }
    // bootstrap-start, two rows, bootstrap-complete, three inserts.
    let msgs = consume(&topic, &db, 7, 10.0);
    let mut ids: Vec<(i64, String)> = msgs
        .iter()
        .filter_map(|m| {
            Some((
                m.value["data"]["id"].as_i64()?,
                m.value["type"].as_str()?.to_string(),
            ))
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            (1, "bootstrap-insert".to_string()),
            (2, "bootstrap-insert".to_string()),
            (3, "insert".to_string()),
            (4, "insert".to_string()),
            (5, "insert".to_string()),
        ],
        "the snapshot's two rows and the three streamed"
    );
    let log = daemon.log_text();
    assert!(log.contains("MySQL over TLS: TLSv1.3"), "{log}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn a_wrong_ca_a_name_mismatch_and_plaintext_each_end_in_one_clear_line() {
    let d = tls_servers();
    let topic = unique("mtls_bad");
    let env = env_for(&topic, "nothing", TLS_PORT, &d);

    let wrong_ca = error_of(&with(
        env.clone(),
        "B2K_MYSQL_SSL_CA",
        d.join("other-ca.pem").to_str().unwrap(),
    ));
    println!("wrong CA: {wrong_ca}");
    assert!(
        wrong_ca.contains("not signed by a CA") && wrong_ca.contains("mysql.ssl_ca"),
        "{wrong_ca}"
    );

    let name = error_of(&with(
        env.clone(),
        "B2K_MYSQL_PORT",
        &WRONG_NAME_PORT.to_string(),
    ));
    println!("name mismatch: {name}");
    assert!(
        name.contains("not valid for the name 127.0.0.1") && name.contains("elsewhere.example"),
        "{name}"
    );
    // verify_ca checks the CA only: the same server is accepted.
    let (status, out, err) = run_to_end(
        &["check"],
        &with(
            with(env.clone(), "B2K_MYSQL_PORT", &WRONG_NAME_PORT.to_string()),
            "B2K_MYSQL_SSL_MODE",
            "verify_ca",
        ),
    );
    assert!(out.contains("mysql TLS:"), "{out}{err} {status}");

    let plain = error_of(&with(env.clone(), "B2K_MYSQL_SSL_MODE", "disabled"));
    println!("plaintext: {plain}");
    assert!(
        plain.contains("Access denied")
            && plain.contains("may require TLS")
            && plain.contains("mysql.ssl_mode"),
        "{plain}"
    );
}

#[test]
fn a_user_created_require_x509_logs_in_with_a_client_certificate() {
    let d = tls_servers();
    let mut root = root_sql("tls");
    root.query_drop(
        "CREATE USER IF NOT EXISTS 'cdcx509'@'%' IDENTIFIED BY 'x509-secret' REQUIRE X509",
    )
    .unwrap();
    root.query_drop("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'cdcx509'@'%'")
        .unwrap();
    let db = unique("x509_db");
    root.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    root.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY)"))
        .unwrap();
    let topic = unique("x509");
    let env = env_for(&topic, &db, TLS_PORT, &d);
    let env = with(env, "B2K_MYSQL_USER", "cdcx509");
    let env = with(env, "B2K_MYSQL_PASSWORD", "x509-secret");

    let without = error_of(&env);
    println!("without a client certificate: {without}");
    assert!(
        without.contains("Access denied") && without.contains("mysql.ssl_cert"),
        "{without}"
    );
    assert!(
        !without.contains("x509-secret"),
        "the password is never shown: {without}"
    );

    let env = with(
        env,
        "B2K_MYSQL_SSL_CERT",
        d.join("client.pem").to_str().unwrap(),
    );
    let env = with(
        env,
        "B2K_MYSQL_SSL_KEY",
        d.join("client.key").to_str().unwrap(),
    );
    let daemon = Daemon::start(&env);
    root.query_drop(format!("INSERT INTO `{db}`.t VALUES (7)"))
        .unwrap();
    let msgs = consume(&topic, &db, 1, 10.0);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].value["data"]["id"], 7);
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}
