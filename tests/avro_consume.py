"""Reads an Avro topic back the way Debezium's Avro consumers do: Confluent's
own Python client (confluent-kafka) with its SchemaRegistryClient and
AvroDeserializer, which look every schema id up in the registry. Prints one
JSON line per record: offset, the schema ids, key and value decoded
(decimals as their text, bytes as base64), and with --reader-latest the
value decoded again with the subject's newest schema as the reader schema
(fastavro's schema resolution): what BACKWARD compatibility promises.

usage: avro_consume.py BOOTSTRAP REGISTRY_URL TOPIC COUNT [IDLE_SECONDS] [--reader-latest]
"""
import io
import json
import struct
import sys
import time

import fastavro
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from avro_plain import plain


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    bootstrap, registry_url, topic, count = args[0], args[1], args[2], int(args[3])
    idle = float(args[4]) if len(args) > 4 else 10.0
    reader_latest = "--reader-latest" in sys.argv
    registry = SchemaRegistryClient({"url": registry_url})
    value_de = AvroDeserializer(registry)
    key_de = AvroDeserializer(registry)
    latest = None
    if reader_latest:
        latest = fastavro.parse_schema(json.loads(
            registry.get_latest_version(f"{topic}-value").schema.schema_str))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"avro-check-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    deadline = time.time() + 60
    while True:
        md = c.list_topics(topic, timeout=5)
        if topic in md.topics and md.topics[topic].partitions:
            break
        if time.time() > deadline:
            sys.exit(f"topic {topic} not found")
        time.sleep(0.2)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    n, last = 0, time.time()
    while n < count and time.time() - last < idle:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            sys.exit(str(msg.error()))
        last = time.time()
        raw = msg.value()
        out = {"offset": msg.offset()}
        if raw is not None:
            out["value_id"] = struct.unpack(">I", raw[1:5])[0]
            out["value"] = plain(value_de(raw, SerializationContext(topic, MessageField.VALUE)))
            if latest is not None:
                writer = fastavro.parse_schema(json.loads(registry.get_schema(out["value_id"]).schema_str))
                out["value_as_latest"] = plain(
                    fastavro.schemaless_reader(io.BytesIO(raw[5:]), writer, latest))
        else:
            out["value"] = None
        k = msg.key()
        if k is not None:
            out["key_id"] = struct.unpack(">I", k[1:5])[0]
            out["key"] = plain(key_de(k, SerializationContext(topic, MessageField.KEY)))
        print(json.dumps(out), flush=True)
        n += 1
    c.close()


main()
