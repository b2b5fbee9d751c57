"""End-to-end benchmark of binlog2kafka against the local test servers.

Loads ROWS narrow rows (5 columns) into MariaDB with the Sequence engine,
then starts the release binary at the binlog position before the load and
times it until its checkpoint (read from the commit-log topic) reaches the
position after the load. Prints rows/s, binlog MB/s and peak RSS.
"""
import json
import os
import subprocess
import sys
import time

from kafka import KafkaConsumer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCK = os.path.join(ROOT, "target/testenv/mariadb-main/sock")
BIN = os.path.join(ROOT, "target/release/binlog2kafka")
BROKER = "127.0.0.1:9092"


def sql(q):
    return subprocess.run(["mariadb", f"--socket={SOCK}", "-uroot", "-N", "-B", "-e", q],
                          check=True, capture_output=True, text=True).stdout.strip()


def head():
    file, pos = sql("SHOW MASTER STATUS").split("\t")[:2]
    return file, int(pos)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    rows = int(sys.argv[1])
    tag = f"bench{int(time.time())}"
    sql(f"CREATE DATABASE {tag}; CREATE TABLE {tag}.narrow (id BIGINT PRIMARY KEY, "
        "a INT, b VARCHAR(32), c DECIMAL(10,2), d DATETIME(3))")
    start = head()
    t0 = time.time()
    # Batches of 10k rows per transaction, like a bulk loader.
    for lo in range(1, rows + 1, 10_000):
        hi = min(lo + 9_999, rows)
        sql(f"INSERT INTO {tag}.narrow SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, "
            f"'2024-01-02 03:04:05.678' FROM {tag}.seq_{lo}_to_{hi}")
    load_s = time.time() - t0
    end = head()
    assert start[0] == end[0], "binlog rotated during the load; run again"
    mb = (end[1] - start[1]) / 1e6

    env = dict(os.environ, RUST_LOG="warn", B2K_MYSQL_PORT="3307", B2K_MYSQL_USER="cdc",
               B2K_MYSQL_PASSWORD="cdc-secret", B2K_MYSQL_SERVER_ID="4242",
               B2K_KAFKA_BROKERS=BROKER, B2K_KAFKA_TOPIC=tag, B2K_KAFKA_COMMIT_TOPIC=f"{tag}_commits",
               B2K_PIPELINE_NAME=tag, B2K_START_POSITION=f"{start[0]}:{start[1]}",
               B2K_PIPELINE_CHECKPOINT_INTERVAL_MS="100")
    t1 = time.time()
    daemon = subprocess.Popen([BIN, "run"], env=env)
    consumer = KafkaConsumer(bootstrap_servers=BROKER, enable_auto_commit=False, consumer_timeout_ms=100)
    tp = TopicPartition(f"{tag}_commits", 0)
    while not consumer.partitions_for_topic(tp.topic):
        time.sleep(0.05)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    done = None
    while done is None:
        if daemon.poll() is not None:
            sys.exit(f"binlog2kafka exited with {daemon.returncode}")
        for m in consumer:
            cp = json.loads(m.value)
            if (cp["file"], cp["pos"]) >= end:
                done = time.time()
                break
        if time.time() - t1 > 600:
            sys.exit("no final checkpoint within 600 s")
    seconds = done - t1
    rss = peak_rss_kib(daemon.pid)
    daemon.terminate()
    daemon.wait()
    sql(f"DROP DATABASE {tag}")
    print(f"machine: {os.cpu_count()} cores; {sql('SELECT VERSION()')}; Tansu broker")
    print(f"load into MariaDB: {rows} rows in {load_s:.1f} s")
    print("| workload | rows | MB of binlog | seconds | rows/s | MB/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| end to end, narrow inserts (5 cols) | {rows} | {mb:.1f} | {seconds:.2f} | "
          f"{rows / seconds:,.0f} | {mb / seconds:.1f} | {rss / 1024:.1f} |")


if __name__ == "__main__":
    main()
