"""Counts what a topic holds for one database, for tests whose topics are too
large to hand over record by record: reads TOPIC from the beginning with
kafka-python up to the end offsets it had when it started, drops duplicates
(a duplicate carries the binlog position and row offset of the original),
and prints one JSON object:

  {"messages": N, "duplicates": D, "ids": K, "min": A, "max": B,
   "missing": [first missing ids in min..max], "out_of_order": O,
   "bad_values": V}

where ids are data.id of the rows, out_of_order counts ids (after dropping
duplicates) not greater than the one before, and bad_values counts rows
whose data.v is not id * 7 (the fault tests' workload writes v = id * 7).

usage: census.py BOOTSTRAP TOPIC DATABASE
"""
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic, database = sys.argv[1], sys.argv[2], sys.argv[3]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        max_partition_fetch_bytes=1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    seen_coordinates = set()
    ids = set()
    counts = {"messages": 0, "duplicates": 0, "out_of_order": 0, "bad_values": 0, "last": None}

    def take(msg):
        value = json.loads(msg.value)
        if value.get("database") != database:
            return
        counts["messages"] += 1
        coordinate = (value["position"], value.get("xoffset"))
        if coordinate in seen_coordinates:
            counts["duplicates"] += 1
            return
        seen_coordinates.add(coordinate)
        row = value["data"]
        i = row["id"]
        if row.get("v") != i * 7:
            counts["bad_values"] += 1
        if counts["last"] is not None and i <= counts["last"]:
            counts["out_of_order"] += 1
        counts["last"] = i
        ids.add(i)

    last_progress = time.time()
    while not all(consumer.position(tp) >= end for tp, end in ends.items()):
        if time.time() - last_progress > 20:
            print("census.py: no progress for 20 s", file=sys.stderr)
            sys.exit(2)
        for msg in consumer:
            last_progress = time.time()
            take(msg)
            if all(consumer.position(tp) >= end for tp, end in ends.items()):
                break
    # Tansu reports a partition's end as its last record batch's base offset
    # + 1, short of the records after it in that batch: read on until the
    # topic stays quiet for the consumer timeout (1 s).
    for msg in consumer:
        take(msg)
    messages, duplicates = counts["messages"], counts["duplicates"]
    out_of_order, bad_values = counts["out_of_order"], counts["bad_values"]
    lo, hi = (min(ids), max(ids)) if ids else (0, -1)
    missing = []
    for i in range(lo, hi + 1):
        if i not in ids:
            missing.append(i)
            if len(missing) >= 20:
                break
    print(json.dumps({
        "messages": messages,
        "duplicates": duplicates,
        "ids": len(ids),
        "min": lo,
        "max": hi,
        "missing": missing,
        "out_of_order": out_of_order,
        "bad_values": bad_values,
    }))


if __name__ == "__main__":
    main()
