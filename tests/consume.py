"""Reads a topic from the beginning with kafka-python, an independent Kafka
client, and prints one JSON line per record: partition, offset, key, value.

usage: consume.py BOOTSTRAP TOPIC [EXPECTED_COUNT|-] [IDLE_SECONDS] [DATABASE]
With DATABASE (not empty), only records whose JSON value names that database
("database", Debezium's "source.db" or "databaseName") are printed and
counted; tombstones (null values) only without it. Stops when EXPECTED_COUNT records were printed, or after
IDLE_SECONDS with no new record (default 5). With CONSUME_SSL_CAFILE set
in the environment, it connects over TLS trusting that CA (and presents
CONSUME_SSL_CERTFILE / CONSUME_SSL_KEYFILE when those are set). With
CONSUME_SASL_MECHANISM (and CONSUME_SASL_USERNAME, CONSUME_SASL_PASSWORD) it
authenticates, over TLS too when CONSUME_SSL_CAFILE is set. A topic that does not exist
within 30 s is an error (exit 2), or with IDLE_SECONDS <= 1 simply empty.
With IDLE_SECONDS <= 1 it reads a snapshot: it also stops once it reached
the end offsets the topic had when it started, so a topic that is written
to all the time (heartbeats in a commit log) still ends.
"""
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    expected = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    idle = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    database = sys.argv[5] if len(sys.argv) > 5 else None
    import os
    tls = {}
    if os.environ.get("CONSUME_SSL_CAFILE"):
        tls = {"security_protocol": "SSL", "ssl_cafile": os.environ["CONSUME_SSL_CAFILE"],
               "ssl_certfile": os.environ.get("CONSUME_SSL_CERTFILE"),
               "ssl_keyfile": os.environ.get("CONSUME_SSL_KEYFILE")}
    if os.environ.get("CONSUME_SASL_MECHANISM"):
        tls.update({"security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
                    "sasl_mechanism": os.environ["CONSUME_SASL_MECHANISM"],
                    "sasl_plain_username": os.environ.get("CONSUME_SASL_USERNAME"),
                    "sasl_plain_password": os.environ.get("CONSUME_SASL_PASSWORD")})
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=200,
        **tls,
    )
    deadline = time.time() + (30 if idle > 1 else idle)
    parts = None
    while time.time() < deadline:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            break
        time.sleep(0.2)
    if not parts:
        print(f"topic {topic} not found", file=sys.stderr)
        sys.exit(2)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    snapshot = consumer.end_offsets(tps) if idle <= 1 else None
    count = 0
    last_new = time.time()
    while True:
        got = False
        for msg in consumer:
            got = True
            if database:
                try:
                    v = json.loads(msg.value)
                    # Maxwell and canal: database; Debezium rows: source.db;
                    # Debezium DDL: databaseName.
                    db = v.get("database") or v.get("databaseName") or (v.get("source") or {}).get("db")
                    if db != database:
                        continue
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
            count += 1
            print(json.dumps({
                "partition": msg.partition,
                "offset": msg.offset,
                "key": msg.key.decode("utf-8", "replace") if msg.key is not None else None,
                "value": msg.value.decode("utf-8", "replace") if msg.value is not None else None,
                "headers": {k: (v.decode("utf-8", "replace") if v is not None else None) for k, v in (msg.headers or [])},
            }), flush=True)
            if expected is not None and count >= expected:
                return
        if snapshot is not None and all(consumer.position(tp) >= end for tp, end in snapshot.items()):
            return
        if got:
            last_new = time.time()
        elif time.time() - last_new > idle:
            return


if __name__ == "__main__":
    main()
