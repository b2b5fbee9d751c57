//! SASL to Kafka against a broker that really checks credentials: Tansu
//! 0.6 with SQLite storage and `--authentication`, which takes
//! SCRAM-SHA-256 and SCRAM-SHA-512 (`scripts/testenv tansu-sasl`; user
//! alice, password alice-secret). PLAIN, OAUTHBEARER and AWS_MSK_IAM have
//! no broker here that checks them: their exchanges are tested against the
//! RFCs' and AWS's published vectors (`src/kafka/sasl`).

mod common;

use std::time::{Duration, Instant};

use binlog2kafka::kafka::sasl::{Mechanism, SaslSettings};
use binlog2kafka::kafka::tls::TlsSettings;
use binlog2kafka::kafka::{Client, ClientConfig, Compression, KafkaError};
use common::*;
use mysql::prelude::Queryable;

const SASL: &str = "127.0.0.1:9131";
/// The same kind of broker behind a TLS terminator (sasl_ssl).
const SASL_TLS: &str = "127.0.0.1:9133";

fn sasl_servers() {
    // Once per test binary: its tests start side by side.
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    STARTED.get_or_init(|| {
        servers();
        testenv(&["tansu-sasl", "sasl", "9131"]);
        testenv(&["tansu-sasl", "sasltls", "9132", "9133"]);
        testenv(&["tls", "sasltls", "9133", "9132", "good"]);
    });
}

fn scram(mechanism: Mechanism, password: &str) -> SaslSettings {
    SaslSettings {
        mechanism,
        username: "alice".into(),
        password: password.into(),
        token_file: None,
    }
}

fn connect(broker: &str, sasl: SaslSettings, tls: bool) -> Result<Client, KafkaError> {
    let tls = tls.then(|| {
        TlsSettings {
            ca: Some(root().join("target/testenv/tls/ca.pem")),
            verify_name: true,
            ..Default::default()
        }
        .build()
        .unwrap()
    });
    Client::connect(ClientConfig {
        brokers: vec![broker.to_string()],
        client_id: "b2k-sasl-test".into(),
        timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        compression: Compression::None,
        tls,
        sasl: Some(sasl),
    })
}

/// kafka-python's reading of `topic`, authenticating as alice.
fn read_as_alice(broker: &str, topic: &str, mechanism: &str, tls: bool) -> Vec<String> {
    let mut env = vec![
        ("CONSUME_SASL_MECHANISM", mechanism.to_string()),
        ("CONSUME_SASL_USERNAME", "alice".to_string()),
        ("CONSUME_SASL_PASSWORD", "alice-secret".to_string()),
    ];
    if tls {
        let ca = root().join("target/testenv/tls/ca.pem");
        env.push(("CONSUME_SSL_CAFILE", ca.to_str().unwrap().to_string()));
    }
    values_of(broker, topic, &env)
}

#[test]
fn scram_sha_256_and_512_log_in_to_a_broker_that_checks_them() {
    sasl_servers();
    for (m, name) in [
        (Mechanism::ScramSha256, "SCRAM-SHA-256"),
        (Mechanism::ScramSha512, "SCRAM-SHA-512"),
    ] {
        let mut c = connect(SASL, scram(m, "alice-secret"), false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let topic = unique("scram");
        c.create_topic(&topic, 1, -1, &[]).unwrap();
        let values: Vec<String> = (0..3).map(|i| format!("{name} {i}")).collect();
        c.produce(&topic, 0, &text_records(&values)).unwrap();
        let sent = c.sent_versions();
        assert!(
            sent.contains(&(17, 1)) && sent.contains(&(36, 2)),
            "SaslHandshake v1, SaslAuthenticate v2: {sent:?}"
        );
        assert_eq!(
            read_as_alice(SASL, &topic, name, false),
            [
                format!("{name} 0"),
                format!("{name} 1"),
                format!("{name} 2")
            ],
            "kafka-python, logged in the same way, reads what was written"
        );
        println!("{name}: logged in, wrote and read back");
    }
}

#[test]
fn a_wrong_password_is_one_clear_line_and_no_retry_storm() {
    sasl_servers();
    let e = connect(
        SASL,
        scram(Mechanism::ScramSha512, "not-the-password"),
        false,
    )
    .err()
    .expect("refused");
    println!("wrong password: {e}");
    assert!(!e.is_retriable(), "not retried as an outage");
    let shown = e.to_string();
    assert!(
        shown.contains("SCRAM-SHA-512") && shown.contains("kafka.sasl.password"),
        "{shown}"
    );
    assert!(
        !shown.contains("not-the-password"),
        "the password is never shown"
    );

    // The daemon: one line, at once, no retries.
    let topic = unique("sasl_bad");
    let env = with(settings(&topic), "B2K_KAFKA_BROKERS", SASL);
    let env = with(env, "B2K_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext");
    let env = with(env, "B2K_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256");
    let env = with(env, "B2K_KAFKA_SASL_USERNAME", "alice");
    let env = with(env, "B2K_KAFKA_SASL_PASSWORD", "not-the-password");
    let t = Instant::now();
    let (status, _, stderr) = run_to_end(&["run"], &env);
    assert!(!status.success());
    let line = the_error(&stderr);
    println!("the daemon, {:.1} s: {line}", t.elapsed().as_secs_f64());
    assert!(line.contains("refused SASL SCRAM-SHA-256"), "{line}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(15), "it did not retry");
}

/// sasl_ssl: SCRAM over TLS, the pipeline end to end, the password from a
/// file, and `check` naming what succeeded.
#[test]
fn the_pipeline_streams_over_sasl_ssl_with_the_password_from_a_file() {
    sasl_servers();
    let db = database(MYSQL_PORT, "sasl", &["CREATE TABLE t (id INT PRIMARY KEY)"]);
    let topic = unique("sasl_pipe");
    let secret = std::env::temp_dir().join(unique("sasl-secret"));
    std::fs::write(&secret, "alice-secret\n").unwrap();
    let env = with(settings(&topic), "B2K_FILTER_INCLUDE", &format!("{db}.*"));
    let env = with(env, "B2K_KAFKA_BROKERS", SASL_TLS);
    let env = with(env, "B2K_KAFKA_SECURITY_PROTOCOL", "sasl_ssl");
    let env = with(
        env,
        "B2K_KAFKA_SSL_CA_LOCATION",
        root().join("target/testenv/tls/ca.pem").to_str().unwrap(),
    );
    let env = with(env, "B2K_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512");
    let env = with(env, "B2K_KAFKA_SASL_USERNAME", "alice");
    let env = with(
        env,
        "B2K_KAFKA_SASL_PASSWORD_FILE",
        secret.to_str().unwrap(),
    );

    let (status, out, err) = run_to_end(&["check"], &env);
    println!("{out}");
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains("ok   kafka SASL: SCRAM-SHA-512 authentication succeeded as alice"),
        "{out}"
    );
    assert!(out.contains("kafka TLS: TLSv1_3"), "{out}");

    let daemon = Daemon::start(&env);
    let mut c = sql(MYSQL_PORT);
    for i in 1..=3 {
        c.query_drop(format!("INSERT INTO `{db}`.t VALUES ({i})"))
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        got = read_as_alice(SASL_TLS, &topic, "SCRAM-SHA-512", true);
        if got.len() >= 3 {
            break;
        }
    }
    assert_eq!(got.len(), 3, "{got:?}\n{}", daemon.log_text());
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("alice-secret"),
        "the password is never logged"
    );
}
