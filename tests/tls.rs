//! TLS to Kafka (`kafka.security.protocol=ssl`) through a real TLS
//! terminator (Debian's stunnel4) in front of the broker, with certificates
//! made by the openssl command line at test time (`scripts/testenv tls`):
//! what works, and the one line each misconfiguration ends in.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use binlog2kafka::kafka::tls::TlsSettings;
use binlog2kafka::kafka::{Client, ClientConfig, Compression, KafkaError};
use common::*;

/// The TLS listeners, each in front of a broker that advertises it.
const GOOD: &str = "127.0.0.1:9112";
const EXPIRED: &str = "127.0.0.1:9116";
const WRONG_NAME: &str = "127.0.0.1:9117";
const MTLS: &str = "127.0.0.1:9115";

fn cert(name: &str) -> PathBuf {
    root().join("target/testenv/tls").join(name)
}

fn tls_servers() {
    // Once per test binary: its tests start side by side.
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    STARTED.get_or_init(|| {
        servers();
        testenv(&["tansu", "tls", "9111", "9112"]);
        testenv(&["tls", "good", "9112", "9111", "good"]);
        testenv(&["tls", "expired", "9116", "9111", "expired"]);
        testenv(&["tls", "wrongname", "9117", "9111", "wrongname"]);
        testenv(&["tansu", "mtls", "9114", "9115"]);
        testenv(&["tls", "mtls", "9115", "9114", "good", "require-client"]);
    });
}

fn trusting(ca: &str) -> TlsSettings {
    TlsSettings {
        ca: Some(cert(ca)),
        verify_name: true,
        ..Default::default()
    }
}

fn connect(broker: &str, tls: TlsSettings) -> Result<Client, KafkaError> {
    Client::connect(ClientConfig {
        brokers: vec![broker.to_string()],
        client_id: "b2k-tls-test".into(),
        timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        compression: Compression::None,
        tls: Some(tls.build().expect("TLS settings load")),
        sasl: None,
    })
}

fn failure(broker: &str, tls: TlsSettings) -> String {
    match connect(broker, tls) {
        Ok(_) => panic!("connected to {broker}"),
        Err(e) => {
            assert!(
                !e.is_retriable(),
                "a TLS misconfiguration is no outage: {e}"
            );
            e.to_string()
        }
    }
}

/// kafka-python's reading of `topic` over TLS.
fn read_over_tls(broker: &str, topic: &str, client_cert: bool) -> Vec<String> {
    let path = |n: &str| cert(n).to_str().unwrap().to_string();
    let mut env = vec![("CONSUME_SSL_CAFILE", path("ca.pem"))];
    if client_cert {
        env.push(("CONSUME_SSL_CERTFILE", path("client.pem")));
        env.push(("CONSUME_SSL_KEYFILE", path("client.key")));
    }
    values_of(broker, topic, &env)
}

fn write_three(c: &mut Client, topic: &str) {
    c.create_topic(topic, 1, -1, &[]).unwrap();
    let values: Vec<String> = (0..3).map(|i| format!("over tls {i}")).collect();
    c.produce(topic, 0, &text_records(&values)).unwrap();
}

#[test]
fn records_go_over_tls_and_kafka_python_reads_them_over_the_same_tls() {
    tls_servers();
    let mut c = connect(GOOD, trusting("ca.pem")).expect("TLS to the terminator");
    let session = c.tls_session().unwrap().expect("a TLS session");
    println!("negotiated: {session:?}");
    assert!(session.negotiated.starts_with("TLSv1_3"), "{session:?}");
    let (subject, expires) = session.peer.expect("the broker's certificate");
    assert_eq!(subject, "localhost");
    assert!(expires > 1_900_000_000, "valid for ten years: {expires}");
    let topic = unique("tls");
    write_three(&mut c, &topic);
    assert_eq!(
        read_over_tls(GOOD, &topic, false),
        ["over tls 0", "over tls 1", "over tls 2"]
    );
}

#[test]
fn a_client_certificate_is_presented_where_the_broker_requires_one() {
    tls_servers();
    let without = failure(MTLS, trusting("ca.pem"));
    println!("without a client certificate: {without}");
    assert!(without.contains("client certificate"), "{without}");
    let with = TlsSettings {
        cert: Some(cert("client.pem")),
        key: Some(cert("client.key")),
        ..trusting("ca.pem")
    };
    let mut c = connect(MTLS, with).expect("mTLS with the client certificate");
    let topic = unique("mtls");
    write_three(&mut c, &topic);
    assert_eq!(read_over_tls(MTLS, &topic, true).len(), 3);
}

#[test]
fn a_wrong_ca_an_expired_certificate_and_a_name_mismatch_each_end_in_one_clear_line() {
    tls_servers();
    let wrong_ca = failure(GOOD, trusting("other-ca.pem"));
    println!("wrong CA: {wrong_ca}");
    assert!(
        wrong_ca.contains("not signed by a CA") && wrong_ca.contains("kafka.ssl.ca.location"),
        "{wrong_ca}"
    );

    let expired = failure(EXPIRED, trusting("ca.pem"));
    println!("expired: {expired}");
    assert!(expired.contains("expired on 2021-01-01"), "{expired}");

    let name = failure(WRONG_NAME, trusting("ca.pem"));
    println!("name mismatch: {name}");
    assert!(
        name.contains("not valid for the name 127.0.0.1")
            && name.contains("kafka.ssl.endpoint.identification=none"),
        "{name}"
    );
    // Without the name check the chain still counts: the same broker works,
    // and a certificate from an untrusted CA still does not.
    let no_name_check = TlsSettings {
        verify_name: false,
        ..trusting("ca.pem")
    };
    assert!(connect(WRONG_NAME, no_name_check.clone()).is_ok());
    let untrusted = failure(
        GOOD,
        TlsSettings {
            verify_name: false,
            ..trusting("other-ca.pem")
        },
    );
    assert!(untrusted.contains("not signed by a CA"), "{untrusted}");
}

/// The daemon end to end over TLS, and the daemon's one line for a broker
/// whose certificate it cannot trust.
#[test]
fn the_pipeline_streams_over_tls_and_an_untrusted_broker_stops_it_with_one_line() {
    tls_servers();
    let db = database(
        MYSQL_PORT,
        "tls",
        &["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))"],
    );
    let topic = unique("tls_pipe");
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_KAFKA_BROKERS", GOOD);
    let env = with(env, "B2K_KAFKA_SECURITY_PROTOCOL", "ssl");
    let good = with(
        env.clone(),
        "B2K_KAFKA_SSL_CA_LOCATION",
        cert("ca.pem").to_str().unwrap(),
    );
    let daemon = Daemon::start(&good);
    let mut c = sql(MYSQL_PORT);
    for i in 1..=5 {
        mysql::prelude::Queryable::query_drop(
            &mut c,
            format!("INSERT INTO `{db}`.t VALUES ({i}, 'row {i}')"),
        )
        .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..20 {
        got = read_over_tls(GOOD, &topic, false);
        if got.len() >= 5 {
            break;
        }
    }
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got[4].contains("\"row 5\""), "{}", got[4]);
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");

    let bad = with(
        env,
        "B2K_KAFKA_SSL_CA_LOCATION",
        cert("other-ca.pem").to_str().unwrap(),
    );
    let (status, _, stderr) = run_to_end(&["run"], &bad);
    assert!(!status.success());
    let line = the_error(&stderr);
    println!("untrusted broker: {line}");
    assert!(line.contains("not signed by a CA"), "{line}");
}

/// Runs openssl in `dir` with `args`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client key encrypted with a passphrase, and an X.509 v1 client
/// certificate: each is named for what it is, with the file and the
/// setting, before any connection (once: "not a PEM file binlog2kafka can
/// read (NoItemsFound)", and the broker's "invalid peer certificate").
#[test]
fn an_encrypted_key_and_a_v1_client_certificate_are_named_for_what_they_are() {
    servers();
    let dir = std::env::temp_dir().join(unique("clientfiles"));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "plain.key",
        ],
    );
    openssl(
        &dir,
        &[
            "pkey",
            "-in",
            "plain.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "encrypted.key",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            "plain.key",
            "-subj",
            "/CN=b2k",
            "-out",
            "c.csr",
        ],
    );
    // `openssl x509 -req` without extensions writes a v1 certificate.
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "c.csr",
            "-signkey",
            "plain.key",
            "-days",
            "30",
            "-out",
            "v1.pem",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-key",
            "plain.key",
            "-subj",
            "/CN=b2k",
            "-days",
            "30",
            "-out",
            "v3.pem",
        ],
    );
    let load = |cert: &str, key: &str| {
        TlsSettings {
            cert: Some(dir.join(cert)),
            key: Some(dir.join(key)),
            verify_name: true,
            ..Default::default()
        }
        .build()
        .map(|_| ())
    };
    let e = load("v3.pem", "encrypted.key").unwrap_err();
    assert!(
        e.contains("kafka.ssl.key.location")
            && e.contains("encrypted.key")
            && e.contains("encrypted with a passphrase")
            && e.contains("openssl pkey"),
        "{e}"
    );
    let e = load("v1.pem", "plain.key").unwrap_err();
    assert!(
        e.contains("kafka.ssl.certificate.location")
            && e.contains("v1.pem")
            && e.contains("X.509 v1"),
        "{e}"
    );
    load("v3.pem", "plain.key").unwrap();
    // The same for MySQL, through `check`: one line naming mysql.ssl_key.
    let env = with(
        settings(&unique("clientfiles")),
        "B2K_MYSQL_SSL_MODE",
        "required",
    );
    let env = with(
        env,
        "B2K_MYSQL_SSL_CERT",
        dir.join("v3.pem").to_str().unwrap(),
    );
    let env = with(
        env,
        "B2K_MYSQL_SSL_KEY",
        dir.join("encrypted.key").to_str().unwrap(),
    );
    let (status, out, err) = run_to_end(&["check"], &env);
    assert!(!status.success());
    assert!(
        format!("{out}{err}").contains("mysql.ssl_key")
            && format!("{out}{err}").contains("encrypted with a passphrase"),
        "{out}{err}"
    );
}
