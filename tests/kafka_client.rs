//! The Kafka client against a real Kafka-protocol broker (Tansu): what it
//! puts on the wire, and that what it writes an independent client reads.

mod common;

use std::time::Duration;

use binlog2kafka::kafka::{Client, ClientConfig, Compression, OutRecord};
use bytes::Bytes;

fn client() -> Client {
    common::servers();
    Client::connect(ClientConfig {
        brokers: vec![common::BROKER.to_string()],
        client_id: "b2k-test".into(),
        timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        compression: Compression::None,
    })
    .expect("connect to the test broker")
}

#[test]
fn never_sends_a_version_below_a_kafka_2_1_client() {
    let mut c = client();
    let topic = common::unique("versions");
    assert!(c
        .create_topic(&topic, 1, -1, &[("cleanup.policy", "compact")])
        .unwrap());
    assert!(
        !c.create_topic(&topic, 1, -1, &[]).unwrap(),
        "second create reports it existed"
    );
    assert_eq!(c.partitions(&topic).unwrap(), Some(1));
    c.produce(
        &topic,
        0,
        &[OutRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            timestamp_ms: 0,
            headers: Vec::new(),
        }],
    )
    .unwrap();
    let (_, latest) = c.offsets(&topic, 0).unwrap();
    let got = c.fetch(&topic, 0, latest - 1, 1 << 20).unwrap();
    assert_eq!(got.len(), 1);
    // The idempotent producer's id (KIP-98), as the producer thread asks.
    assert!(c.init_producer_id().unwrap().is_some());

    // Kafka 2.1 client versions: ApiVersions 2, Produce 7, Fetch 10,
    // ListOffsets 4, Metadata 7, CreateTopics 3, InitProducerId 1 (KIP-896
    // floor in Kafka 4).
    let floor = |key: i16| match key {
        18 => 2,
        0 => 7,
        1 => 10,
        2 => 4,
        3 => 7,
        19 => 3,
        // InitProducerId: v1 is a Kafka 2.1 client's.
        22 => 1,
        other => panic!("unexpected api key {other} on the wire"),
    };
    let sent = c.sent_versions();
    for key in [18, 0, 1, 2, 3, 19] {
        assert!(
            sent.iter().any(|(k, _)| *k == key),
            "api {key} was never sent: {sent:?}"
        );
    }
    for (key, version) in sent {
        assert!(
            version >= floor(key),
            "api {key} sent at v{version}, below v{}",
            floor(key)
        );
    }
}

#[test]
fn records_written_are_read_back_by_kafka_python_in_order() {
    let mut c = client();
    let topic = common::unique("roundtrip");
    c.create_topic(&topic, 3, -1, &[]).unwrap();
    for p in 0..3 {
        let recs: Vec<OutRecord> = (0..50)
            .map(|i| OutRecord {
                key: Some(Bytes::from(format!("p{p}-k{i}"))),
                value: Some(Bytes::from(format!("{{\"p\":{p},\"i\":{i}}}"))),
                timestamp_ms: 1_700_000_000_000,
                headers: Vec::new(),
            })
            .collect();
        assert_eq!(c.produce(&topic, p, &recs).unwrap(), 0);
        c.produce(&topic, p, &recs[..1]).unwrap();
    }
    let out = common::run_python("consume.py", &[common::BROKER, &topic, "153"]);
    assert!(
        out.status.success(),
        "consume.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 153);
    for p in 0..3 {
        let offsets: Vec<i64> = lines
            .iter()
            .filter(|m| m["partition"] == p)
            .map(|m| m["offset"].as_i64().unwrap())
            .collect();
        assert_eq!(
            offsets,
            (0..51).collect::<Vec<i64>>(),
            "partition {p}: each record has its own offset"
        );
        let values: Vec<i64> = lines
            .iter()
            .filter(|m| m["partition"] == p)
            .map(|m| {
                serde_json::from_str::<serde_json::Value>(m["value"].as_str().unwrap()).unwrap()
                    ["i"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let mut want: Vec<i64> = (0..50).collect();
        want.push(0);
        assert_eq!(values, want, "partition {p} order");
    }
}

#[test]
fn the_broker_drops_a_batch_an_idempotent_producer_sends_again() {
    let mut c = client();
    let topic = common::unique("idempotent");
    c.create_topic(&topic, 1, -1, &[]).unwrap();
    let p = c
        .init_producer_id()
        .unwrap()
        .expect("Tansu answers InitProducerId");
    let rec = |v: &'static [u8]| OutRecord {
        key: None,
        value: Some(Bytes::from_static(v)),
        timestamp_ms: 0,
        headers: Vec::new(),
    };
    let first = [rec(b"a"), rec(b"b")];
    let base = c.produce_as(&topic, 0, &first, Some((p, 0))).unwrap();
    // The same batch again, as a retry after a lost answer sends it.
    let again = c.produce_as(&topic, 0, &first, Some((p, 0)));
    println!("InitProducerId: {p:?}; first batch at {base}; the same batch again: {again:?}");
    let next = c.produce_as(&topic, 0, &[rec(b"c")], Some((p, 2))).unwrap();
    let (_, latest) = c.offsets(&topic, 0).unwrap();
    let got = c.fetch(&topic, 0, 0, 1 << 20).unwrap();
    let values: Vec<&[u8]> = got.iter().filter_map(|r| r.value.as_deref()).collect();
    println!("after the next batch at {next}: {values:?}, latest {latest}");
    assert_eq!(
        values,
        [&b"a"[..], b"b", b"c"],
        "the repeated batch was dropped"
    );
    // Out of order: a gap in the sequence.
    let gap = c.produce_as(&topic, 0, &[rec(b"d")], Some((p, 10)));
    println!("a batch after a gap: {gap:?}");
}
