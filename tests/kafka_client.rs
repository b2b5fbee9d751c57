//! The Kafka client against a real Kafka-protocol broker (Tansu): what it
//! puts on the wire, and that what it writes an independent client reads.

mod common;

use binlog2kafka::kafka::{Client, OutRecord};
use bytes::Bytes;

fn client() -> Client {
    common::servers();
    common::kafka_client()
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
    // Fencing (kafka::txn): the transactional id, and one partition fenced.
    let t = c
        .init_transactional(&common::unique("binlog2kafka-versions"))
        .unwrap()
        .expect("Tansu offers transactions");
    c.fence(&t, &topic, &[0]).unwrap();

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
        // FindCoordinator 2, AddPartitionsToTxn 1, EndTxn 1.
        10 => 2,
        24 => 1,
        26 => 1,
        other => panic!("unexpected api key {other} on the wire"),
    };
    // The first transaction protocol at most: AddPartitionsToTxn v4 and up
    // are for brokers (KAFKA-15757), EndTxn v5 is KIP-890's second protocol.
    let ceiling = |key: i16| match key {
        24 => 3,
        26 => 4,
        _ => i16::MAX,
    };
    let sent = c.sent_versions();
    println!("sent: {sent:?}");
    for key in [18, 0, 1, 2, 3, 19, 22, 10, 24, 26] {
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
        assert!(
            version <= ceiling(key),
            "api {key} sent at v{version}, above v{}",
            ceiling(key)
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

/// Broker-enforced fencing, as the daemon uses it (`kafka::txn`): a second
/// holder of the transactional id fences a partition (a transaction opened
/// on it and aborted), and the broker then refuses the first holder's
/// batches there and its transactions anywhere.
#[test]
fn a_successor_that_fences_a_partition_makes_the_broker_refuse_its_predecessor() {
    let (mut a, mut b) = (client(), client());
    let topic = common::unique("fenced");
    a.create_topic(&topic, 2, -1, &[]).unwrap();
    let txn_id = common::unique("binlog2kafka-fencing");
    let first = a
        .init_transactional(&txn_id)
        .unwrap()
        .expect("Tansu offers transactions");
    let rec = |v: &'static [u8]| OutRecord {
        key: None,
        value: Some(Bytes::from_static(v)),
        timestamp_ms: 0,
        headers: Vec::new(),
    };
    a.fence(&first, &topic, &[0, 1]).unwrap();
    // Data goes outside transactions, idempotent under the same producer.
    a.produce_as(&topic, 0, &[rec(b"old-1")], Some((first.producer, 0)))
        .expect("the holder writes idempotent batches outside transactions");

    let second = b.init_transactional(&txn_id).unwrap().unwrap();
    println!("first holder {first:?}, second {second:?}");
    assert_eq!(
        second.producer.id, first.producer.id,
        "the same producer id"
    );
    assert!(
        second.producer.epoch > first.producer.epoch,
        "a higher epoch"
    );
    b.fence(&second, &topic, &[0]).unwrap();
    b.produce_as(&topic, 0, &[rec(b"new-1")], Some((second.producer, 0)))
        .expect("the successor writes from sequence 0 of its epoch");

    let stale = a.produce_as(&topic, 0, &[rec(b"old-2")], Some((first.producer, 1)));
    println!("the predecessor's next batch on a fenced partition: {stale:?}");
    assert!(
        stale.as_ref().is_err_and(|e| e.is_fenced()),
        "refused as fenced: {stale:?}"
    );
    // Kafka's partition leaders learn the new epoch from the abort marker;
    // Tansu checks the epoch on every partition (what it does here is
    // printed, not asserted: the daemon fences each partition itself).
    let unfenced = a.produce_as(&topic, 1, &[rec(b"old-p1")], Some((first.producer, 0)));
    println!("the predecessor's batch on a partition not fenced again: {unfenced:?}");
    let txn = a.fence(&first, &topic, &[1]);
    println!("the predecessor's next transaction: {txn:?}");
    assert!(txn.is_err_and(|e| e.is_fenced()));

    let got = b.fetch(&topic, 0, 0, 1 << 20).unwrap();
    let values: Vec<&[u8]> = got.iter().filter_map(|r| r.value.as_deref()).collect();
    assert_eq!(values, [&b"old-1"[..], b"new-1"]);
}
