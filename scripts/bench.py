"""binlog2kafka's benchmark against its peers, on the local test servers.

Prints one table and the ratios; asserts nothing (these machines are shared
and noisy: compare the ratios, which are measured in one run).

Workloads, each loaded into a binlog file of its own (FLUSH BINARY LOGS
before and after):
  1. decode only: `binlog2kafka replay --stdout FILE > /dev/null` over the
     narrow-insert binlog (reader + JSON encoder, no Kafka);
  2. end to end: ROWS narrow inserts (5 columns, 10k-row transactions) from
     MariaDB to the broker, daemon start to the checkpoint past the load;
  3. wide rows: ROWS/10 rows of 40 columns, about 2 KB each;
  4. one transaction of ROWS rows;
  5. steady: RATE rows/s for SECONDS s while the daemon runs; latency from
     the row's commit (a UNIX_TIMESTAMP(NOW(6)) column) to a consumer that
     polls every 10 ms receiving it: an upper bound of commit-to-ack;
  6. snapshot of the narrow table (ROWS rows) and 7. of the wide one
     (snapshot.mode=initial), daemon start to the checkpoint that records
     the snapshot done; beside them the server's own read speed
     (`mariadb --quick -e 'SELECT * FROM t' > /dev/null`), the ceiling.
Peers, on the same binlog and broker:
  python-mysql-replication decoding workload 1's binlog (as a replica);
  confluent-kafka (librdkafka) producing workload 1's messages (the
  daemon's own encoding, from `replay --stdout`) as fast as it can, acks=all.

usage: bench.py [--quick] [ROWS]
       bench.py --ab OTHER_BINARY [ROWS]
       bench.py --tls [ROWS]
       bench.py --avro [ROWS]
       bench.py --callgrind [--ab OTHER_BINARY] [ROWS]
       bench.py --capture [TABLES]
       bench.py --fleet [N,N,...]
       bench.py --rebalance [N,N,...]
With --fleet, idle pipelines in one host of a fleet (10, 50, 100 and 200 by
default): start to every pipeline streaming, RSS and threads (in all and
per pipeline) and the idle CPU over 20 s.
With --rebalance, a host's death in a fleet of 12 idle pipelines, for 1, 2,
3 and 4 surviving hosts by default: one host more is started, killed with
SIGKILL once the pipelines are spread, and the time until every pipeline
it ran streams again on a survivor is printed (6 s session timeout).
With --capture, only the schema history's first capture is timed: a new
pipeline over a database of TABLES tables (10,000; five columns each, made
once and kept in `b2k_capture_TABLES`) against one over an empty database,
three rounds each: the capture as the daemon logs it, and start to running.
With --callgrind, instructions per row of `replay --stdout` over ROWS
(200,000) narrow rows and ROWS/10 wide ones in each format, and of the
daemon end to end over ROWS/2 narrow rows, counted by valgrind's callgrind
(repeatable, unlike time); with --ab, another binary's beside them and
whether the outputs are the same.
With --avro, only workload 2 runs, in the debezium format, three rounds
alternating JSON and Avro through a schema registry (scripts/testenv
registry): rows/s and the mean key and value bytes per record.
With --tls, only workload 2 runs, three rounds alternating plaintext and
TLS (a stunnel4 terminator, `scripts/testenv tls`), each against a fresh
broker of its own: the cost of TLS.
With --ab, workloads 1 (decode), 2 (end to end, with the librdkafka
producer) and 6 (the narrow snapshot, with the server's own read) run,
three rounds alternating the binary measured and OTHER_BINARY (the one
before a change) on one broker: the before/after figures BENCHMARKS.md
quotes, peak RSS included.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCK = os.path.join(ROOT, "target/testenv/mariadb-main/sock")
DATA = os.path.join(ROOT, "target/testenv/mariadb-main/data")
BIN = os.environ.get("BENCH_BIN") or os.path.join(
    ROOT, "target/x86_64-unknown-linux-musl/release/binlog2kafka")
BROKER = "127.0.0.1:9092"
# Extra settings of the broker the daemon and the commit-log watcher use
# (the --tls mode points both at a TLS terminator).
BROKER_SETTINGS = {}
WATCH_SETTINGS = {}


def sql(q, db=None):
    args = ["mariadb", f"--socket={SOCK}", "-uroot", "-N", "-B"]
    if db:
        args.append(db)
    return subprocess.run(args + ["-e", q], check=True, capture_output=True, text=True).stdout.strip()


def head():
    file, pos = sql("SHOW MASTER STATUS").split("\t")[:2]
    return file, int(pos)


def own_binlog(load):
    """Runs `load` so that its events sit alone in one binlog file; returns
    (file, start, end)."""
    sql("FLUSH BINARY LOGS")
    start = head()
    load()
    end = head()
    sql("FLUSH BINARY LOGS")
    assert start[0] == end[0], "the binlog rotated during a load (max_binlog_size); use fewer rows"
    return start[0], start[1], end[1]


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def daemon_env(tag, start, db):
    return dict(os.environ, RUST_LOG="warn", B2K_MYSQL_PORT="3307", B2K_MYSQL_USER="cdc",
                B2K_MYSQL_PASSWORD="cdc-secret",
                # Each workload is a pipeline of its own, so it gets a replica
                # server_id of its own (the daemon refuses to share one, and a
                # just-stopped replica stays registered for a heartbeat).
                B2K_MYSQL_SERVER_ID=str(4242 + zlib.crc32(tag.encode()) % 100000),
                B2K_KAFKA_BROKERS=BROKER, B2K_KAFKA_TOPIC=tag,
                B2K_KAFKA_COMMIT_TOPIC=f"{tag}_commits", B2K_PIPELINE_NAME=tag,
                B2K_START_POSITION=f"{start[0]}:{start[1]}", B2K_FILTER_INCLUDE=f"{db}.*",
                B2K_PIPELINE_CHECKPOINT_INTERVAL_MS="100", B2K_HTTP_LISTEN="off",
                **BROKER_SETTINGS)


def checkpoints(tag):
    """A consumer of the pipeline's commit log."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": BROKER, "group.id": f"{tag}-watch",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10, **WATCH_SETTINGS})
    c.assign([TopicPartition(f"{tag}_commits", 0, OFFSET_BEGINNING)])
    return c


def run_until(tag, env, done, what, timeout=900, binary=None, wrap=(), stderr=None):
    """Runs the daemon with `env` until `done(checkpoint)` holds for a
    record of its commit log: (seconds, peak RSS KiB). `wrap` goes before
    the command (valgrind), `stderr` takes its error output."""
    t0 = time.time()
    daemon = subprocess.Popen([*wrap, binary or BIN, "run"], env=env, stderr=stderr)
    c = None
    try:
        while True:
            if daemon.poll() is not None:
                sys.exit(f"binlog2kafka exited with {daemon.returncode}")
            if time.time() - t0 > timeout:
                sys.exit(f"{what} not within {timeout} s")
            if c is None:
                time.sleep(0.05)
                try:
                    c = checkpoints(tag)
                except Exception:
                    c = None
                continue
            m = c.poll(0.05)
            if m is None or m.error() or m.value() is None:
                continue
            # The pipeline's checkpoints only: the commit log also holds
            # its schema history and snapshot requests, under other keys.
            if m.key() != tag.encode():
                continue
            if done(json.loads(m.value())):
                return time.time() - t0, peak_rss_kib(daemon.pid)
    finally:
        if c is not None:
            c.close()
        daemon.terminate()
        daemon.wait()


def end_to_end(tag, db, start, end, binary=None, **kw):
    """Runs the daemon from `start` until its checkpoint passes `end`."""
    return run_until(tag, daemon_env(tag, start, db),
                     lambda cp: (cp["file"], cp["pos"]) >= end, f"a checkpoint past {end}",
                     binary=binary, **kw)


def snapshot_run(tag, db, table, binary=None):
    """A new pipeline with snapshot.mode=initial over `db.table`, until its
    checkpoint records the snapshot done."""
    env = daemon_env(tag, head(), db)
    env.update(B2K_SNAPSHOT_MODE="initial", B2K_FILTER_INCLUDE=f"{db}.{table}",
               B2K_START_POSITION="latest")
    return run_until(tag, env, lambda cp: "snapshot" in cp and not cp["snapshot"].get("tables"),
                     f"the snapshot of {db}.{table}", binary=binary)


def server_read(db, table):
    """The server's own read of a table, as `mariadb --quick -e 'SELECT *
    FROM t' > /dev/null`: (seconds, MB of table data on disk)."""
    t0 = time.time()
    subprocess.run(["mariadb", f"--socket={SOCK}", "-uroot", "--quick", "-N", "-B",
                    "-e", f"SELECT * FROM {db}.{table}"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - t0
    size = sql(f"SELECT DATA_LENGTH FROM information_schema.TABLES "
               f"WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}'")
    return seconds, int(size)


def run_measured(args, stdout):
    """Runs a command; returns (seconds, peak RSS KiB). The peak is the
    child's VmHWM, read while it runs: wait4's ru_maxrss counts the RSS this
    script had when it forked the child, which is hundreds of MB once the
    librdkafka producer has held its messages."""
    t0 = time.time()
    p = subprocess.Popen(args, stdout=stdout, env=dict(os.environ, RUST_LOG="warn"))
    peak = 0
    while p.poll() is None:
        try:
            peak = max(peak, peak_rss_kib(p.pid))
        except OSError:
            pass
        time.sleep(0.001)
    if p.returncode != 0:
        sys.exit(f"{args[0]} failed with {p.returncode}")
    return time.time() - t0, peak


def python_mysql_replication(file, start, end, limit_s):
    """Rows decoded per second by python-mysql-replication over the file's
    workload (stopping after `limit_s` to keep the run short)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import WriteRowsEvent
    stream = BinLogStreamReader(
        connection_settings={"unix_socket": SOCK, "user": "root", "passwd": ""},
        server_id=4343, log_file=file, log_pos=start, resume_stream=True,
        blocking=False, only_events=[WriteRowsEvent])
    rows, t0 = 0, time.time()
    for ev in stream:
        if stream.log_file != file or stream.log_pos > end:
            break
        rows += len(ev.rows)
        if time.time() - t0 > limit_s:
            break
    seconds = time.time() - t0
    stream.close()
    return rows, seconds


def librdkafka_producer(messages_path, topic):
    """Messages per second for confluent-kafka sending the daemon's own
    encoded messages (values and their Maxwell keys), acks=all."""
    from confluent_kafka import Producer
    values = []
    with open(messages_path, "rb") as f:
        for line in f:
            v = line.rstrip(b"\n")
            d = json.loads(v)
            key = json.dumps({"database": d["database"], "table": d["table"],
                              "pk.id": d["data"]["id"]}, separators=(",", ":")).encode()
            values.append((key, v))
    p = Producer({"bootstrap.servers": BROKER, "acks": "all", "linger.ms": 5,
                  "queue.buffering.max.messages": 1_000_000, "batch.size": 1_000_000})
    t0 = time.time()
    for k, v in values:
        while True:
            try:
                p.produce(topic, v, k)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)
    seconds = time.time() - t0
    size = sum(len(v) for _, v in values) / len(values)
    return len(values), seconds, size


def steady(tag, rate, seconds):
    """Latencies (ms) of rows written at `rate` rows/s for `seconds` s."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    sql(f"CREATE TABLE {tag}.steady (id BIGINT AUTO_INCREMENT PRIMARY KEY, t DOUBLE, "
        "a INT, b VARCHAR(32), c DECIMAL(10,2))")
    per_tick = max(1, rate // 100)
    ticks = seconds * 100
    subprocess.run(["mariadb", f"--socket={SOCK}", "-uroot"], check=True, text=True, input=f"""DELIMITER //
CREATE PROCEDURE {tag}.steady_load()
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE t0 DOUBLE DEFAULT UNIX_TIMESTAMP(NOW(6));
  WHILE i < {ticks} DO
    INSERT INTO {tag}.steady (t, a, b, c)
      SELECT UNIX_TIMESTAMP(NOW(6)), seq, CONCAT('name-', seq), seq / 100 FROM {tag}.seq_1_to_{per_tick};
    SET i = i + 1;
    DO SLEEP(GREATEST(0, t0 + i * 0.01 - UNIX_TIMESTAMP(NOW(6))));
  END WHILE;
END //
""")
    start = head()
    topic = f"{tag}_steady"
    env = daemon_env(tag, start, tag)
    env.update(B2K_KAFKA_TOPIC=topic, B2K_PIPELINE_NAME=topic, B2K_KAFKA_COMMIT_TOPIC=f"{topic}_commits")
    daemon = subprocess.Popen([BIN, "run"], env=env)
    time.sleep(1)
    c = Consumer({"bootstrap.servers": BROKER, "group.id": f"{topic}-lat",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10,
                  "topic.metadata.refresh.interval.ms": 200})
    lat = []
    want = per_tick * ticks
    # The consumer is assigned and fetching before the first row is written,
    # so its start-up is not counted as latency.
    while True:
        md = c.list_topics(topic, timeout=1).topics.get(topic)
        if md is not None and md.error is None and md.partitions:
            break
        time.sleep(0.05)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
    for _ in range(20):
        c.consume(1000, 0.05)
    loader = threading.Thread(target=lambda: sql(f"CALL {tag}.steady_load()"))
    loader.start()
    deadline = time.time() + seconds + 60
    while len(lat) < want and time.time() < deadline:
        for m in c.consume(1000, 0.01):
            if m.error() or m.value() is None:
                continue
            now = time.time()
            d = json.loads(m.value())
            if d.get("table") == "steady":
                lat.append((now - d["data"]["t"]) * 1000)
    loader.join()
    rss = peak_rss_kib(daemon.pid)
    daemon.terminate()
    daemon.wait()
    c.close()
    return want, lat, rss


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def ab(tag, narrow, rows, other):
    """This binary and `other`, alternated over three rounds: workload 1
    (decode), workload 2 (end to end, with the librdkafka producer each
    round) and workload 6 (the narrow snapshot, beside the server's own
    read of the table)."""
    path = os.path.join(DATA, narrow[0])
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as msgs:
        subprocess.run([BIN, "replay", "--stdout", path], stdout=msgs, check=True,
                       env=dict(os.environ, RUST_LOG="warn"))
    print(f"A/B, {rows:,} narrow rows; this: {BIN}; other: {other}")
    print("| round | decode rows/s this / other | end to end rows/s this / other | librdkafka msg/s "
          "| snapshot rows/s this / other | server's own read rows/s | peak RSS MB this / other (decode, end to end, snapshot) |")
    print("|---|---|---|---|---|---|---|")
    for r in range(3):
        figures = {}
        for who, binary in (("this", BIN), ("other", other)):
            with open(os.devnull, "wb") as null:
                d, d_rss = run_measured([binary, "replay", "--stdout", path], null)
            e, e_rss = end_to_end(f"{tag}_{who[0]}{r}", tag, (narrow[0], narrow[1]),
                                  (narrow[0], narrow[2]), binary=binary)
            s, s_rss = snapshot_run(f"{tag}_{who[0]}s{r}", tag, "narrow", binary=binary)
            figures[who] = (d, e, s, (d_rss, e_rss, s_rss))
        read_s, _ = server_read(tag, "narrow")
        k_n, k_s, _ = librdkafka_producer(msgs.name, f"{tag}_librdkafka{r}")
        t, o = figures["this"], figures["other"]
        rss = lambda f: " / ".join(f"{x / 1024:.1f}" for x in f[3])
        print(f"| {r + 1} | {rows / t[0]:,.0f} / {rows / o[0]:,.0f} | {rows / t[1]:,.0f} / {rows / o[1]:,.0f} "
              f"| {k_n / k_s:,.0f} | {rows / t[2]:,.0f} / {rows / o[2]:,.0f} | {rows / read_s:,.0f} "
              f"| {rss(t)} ; {rss(o)} |", flush=True)
    os.unlink(msgs.name)


def testenv(*args):
    return subprocess.run([os.path.join(ROOT, "scripts/testenv"), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def tls_cost(tag, narrow, rows):
    """Workload 2 over plaintext and over TLS, alternated, each round on two
    fresh brokers (one plain, one behind a TLS terminator)."""
    global BROKER, BROKER_SETTINGS, WATCH_SETTINGS
    certs = testenv("certs")
    print(f"TLS cost, workload 2 ({rows:,} narrow rows) end to end; {BIN}")
    print("| round | plaintext rows/s | TLS rows/s | TLS / plaintext |")
    print("|---|---|---|---|")
    for r in range(3):
        for n in ("bench-plain", "bench-tls", "bench-tlsterm"):
            testenv("kill", n)
        testenv("tansu", "bench-plain", "9141")
        testenv("tansu", "bench-tls", "9142", "9143")
        testenv("tls", "bench-tlsterm", "9143", "9142", "good")
        BROKER, BROKER_SETTINGS, WATCH_SETTINGS = "127.0.0.1:9141", {}, {}
        plain, _ = end_to_end(f"{tag}_p{r}", tag, (narrow[0], narrow[1]), (narrow[0], narrow[2]))
        BROKER = "127.0.0.1:9143"
        BROKER_SETTINGS = {"B2K_KAFKA_SECURITY_PROTOCOL": "ssl",
                           "B2K_KAFKA_SSL_CA_LOCATION": os.path.join(certs, "ca.pem")}
        WATCH_SETTINGS = {"security.protocol": "ssl",
                          "ssl.ca.location": os.path.join(certs, "ca.pem")}
        tls, _ = end_to_end(f"{tag}_t{r}", tag, (narrow[0], narrow[1]), (narrow[0], narrow[2]))
        print(f"| {r + 1} | {rows / plain:,.0f} | {rows / tls:,.0f} | {plain / tls:.2f}x |",
              flush=True)
    for n in ("bench-plain", "bench-tls", "bench-tlsterm"):
        testenv("kill", n)


def record_sizes(topic, n=2000):
    """Mean key and value bytes of the first `n` records of `topic`."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": BROKER, "group.id": f"{topic}-size",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    keys = values = count = 0
    deadline = time.time() + 30
    while count < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        keys += len(m.key() or b"")
        values += len(m.value() or b"")
        count += 1
    c.close()
    return keys / max(count, 1), values / max(count, 1)


def avro_cost(tag, narrow, rows):
    """Workload 2 in the debezium format, JSON against Avro through the
    schema registry (scripts/testenv registry), alternated, three rounds:
    rows/s and bytes per record."""
    global BROKER_SETTINGS
    port = testenv("registry", "bench", "18093")
    print(f"Avro cost, workload 2 ({rows:,} narrow rows, output.format=debezium) end to end; {BIN}")
    print("| round | JSON rows/s | Avro rows/s | Avro / JSON | JSON key + value bytes | Avro key + value bytes |")
    print("|---|---|---|---|---|---|")
    for r in range(3):
        BROKER_SETTINGS = {"B2K_OUTPUT_FORMAT": "debezium"}
        j, _ = end_to_end(f"{tag}_j{r}", tag, (narrow[0], narrow[1]), (narrow[0], narrow[2]))
        BROKER_SETTINGS = {"B2K_OUTPUT_FORMAT": "debezium", "B2K_OUTPUT_ENCODING": "avro",
                           "B2K_REGISTRY_URL": f"http://127.0.0.1:{port}"}
        a, _ = end_to_end(f"{tag}_a{r}", tag, (narrow[0], narrow[1]), (narrow[0], narrow[2]))
        BROKER_SETTINGS = {}
        jk, jv = record_sizes(f"{tag}_j{r}")
        ak, av = record_sizes(f"{tag}_a{r}")
        print(f"| {r + 1} | {rows / j:,.0f} | {rows / a:,.0f} | {j / a:.2f}x | "
              f"{jk:.0f} + {jv:.0f} | {ak:.0f} + {av:.0f} |", flush=True)


def callgrind(rows, other):
    """Instructions per row (valgrind --tool=callgrind: repeatable on a
    shared machine) of `replay --stdout` over binlogs of `rows` rows of
    the narrow table of issue 25 and `rows / 10` of a wide one (40 columns,
    about 2 KB), in each format, and of the daemon end to end (`rows / 2`
    narrow rows into the broker, callgrind on the daemon process from its
    start to the checkpoint past the last row); with `other`, that
    binary's figures beside this one's, and whether their outputs are the
    same (the write times of the debezium and canal formats masked)."""
    import re
    tag = f"benchcg{int(time.time())}"
    sql(f"CREATE DATABASE {tag}")
    sql(f"CREATE TABLE {tag}.n (id INT PRIMARY KEY, a INT, b VARCHAR(32), c DOUBLE, d DATETIME(3))")
    wide_cols = ", ".join(f"w{i} VARCHAR(60)" for i in range(36))
    sql(f"CREATE TABLE {tag}.w (id BIGINT PRIMARY KEY, a INT, c DECIMAL(10,2), "
        f"d DATETIME(3), {wide_cols})")
    narrow = own_binlog(lambda: sql(
        f"INSERT INTO {tag}.n SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 7, "
        f"'2024-01-02 03:04:05.678' + INTERVAL seq SECOND FROM {tag}.seq_1_to_{rows}"))
    wide_rows = max(1_000, rows // 10)
    fill = ", ".join(f"RPAD(CONCAT('v{i}-', seq), 55, 'x')" for i in range(36))
    wide = own_binlog(lambda: sql(
        f"INSERT INTO {tag}.w SELECT seq, seq, seq / 100, '2024-01-02 03:04:05.678', {fill} "
        f"FROM {tag}.seq_1_to_{wide_rows}"))
    e2e_rows = max(1_000, rows // 2)
    sql(f"CREATE TABLE {tag}.e LIKE {tag}.n")
    e2e = own_binlog(lambda: [sql(
        f"INSERT INTO {tag}.e SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 7, "
        f"'2024-01-02 03:04:05.678' FROM {tag}.seq_{lo}_to_{min(lo + 9_999, e2e_rows)}")
        for lo in range(1, e2e_rows + 1, 10_000)])
    mask = re.compile(rb'"ts_ms":[0-9]+,"transaction"|"ts":[0-9]+,"type"')
    refs_of = lambda path: int(re.search(rb"refs:\s+([0-9,]+)", open(path, "rb").read()).group(1)
                                 .replace(b",", b""))

    def count(binary, fmt, file):
        out = tempfile.NamedTemporaryFile(delete=False)
        log = tempfile.NamedTemporaryFile(delete=False)
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={log.name}.cg",
                        binary, "replay", "--stdout", os.path.join(DATA, file)], stdout=out,
                       stderr=log, check=True,
                       env=dict(os.environ, RUST_LOG="warn", B2K_OUTPUT_FORMAT=fmt))
        refs = refs_of(log.name)
        text = mask.sub(b"", open(out.name, "rb").read())
        for f in (out.name, log.name, f"{log.name}.cg"):
            os.unlink(f)
        return refs, zlib.crc32(text)

    def daemon(binary, run):
        log = tempfile.NamedTemporaryFile(delete=False)
        end_to_end(f"{tag}_{run}", tag, (e2e[0], e2e[1]), (e2e[0], e2e[2]), binary=binary,
                   wrap=["valgrind", "--tool=callgrind", f"--callgrind-out-file={log.name}.cg"],
                   stderr=log, timeout=1800)
        refs = refs_of(log.name)
        for f in (log.name, f"{log.name}.cg"):
            os.unlink(f)
        return refs

    head_line = "| workload | format | instructions per row |" + (" other | change | same output |" if other else "")
    print(f"callgrind, instructions per row; {BIN}" + (f" against {other}" if other else ""))
    print(head_line)
    print("|---|---|---|" + ("---|---|---|" if other else ""))
    for name, file, n in ((f"replay --stdout, narrow ({rows:,} rows)", narrow[0], rows),
                          (f"replay --stdout, wide ({wide_rows:,} rows)", wide[0], wide_rows)):
        for fmt in ("maxwell", "debezium", "canal"):
            refs, crc = count(BIN, fmt, file)
            line = f"| {name} | {fmt} | {refs / n:,.0f} |"
            if other:
                m, crc_other = count(other, fmt, file)
                line += f" {m / n:,.0f} | {(refs - m) / m * 100:+.1f}% | {'yes' if crc == crc_other else 'NO'} |"
            print(line, flush=True)
    refs = daemon(BIN, "this")
    line = f"| daemon end to end, narrow ({e2e_rows:,} rows into the broker) | maxwell | {refs / e2e_rows:,.0f} |"
    if other:
        m = daemon(other, "other")
        line += f" {m / e2e_rows:,.0f} | {(refs - m) / m * 100:+.1f}% | - |"
    print(line, flush=True)
    sql(f"DROP DATABASE {tag}")


def capture(tables):
    """The first capture of the schema history over `tables` tables."""
    db, empty = f"b2k_capture_{tables}", "b2k_capture_empty"
    have = sql(f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}'")
    if int(have.strip() or 0) != tables:
        t0 = time.time()
        sql(f"DROP DATABASE IF EXISTS {db}")
        sql(f"CREATE DATABASE {db}")
        stmts = "".join(
            f"CREATE TABLE {db}.t{i} (id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), "
            f"c DECIMAL(10,2), e ENUM('x','y')) ENGINE=InnoDB;\n" for i in range(tables))
        subprocess.run(["mariadb", f"--socket={SOCK}", "-uroot"], input=stmts, text=True,
                       check=True)
        print(f"made {tables} tables in {time.time() - t0:.0f} s")
    sql(f"CREATE DATABASE IF NOT EXISTS {empty}")
    print("| pipeline over | tables | capture (ms, the daemon's log) | start to running (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    figures = {db: [], empty: []}
    for r in range(3):
        for name in (empty, db):
            tag = f"cap{int(time.time())}_{r}_{name[-5:]}"
            env = daemon_env(tag, head(), name)
            env.update(RUST_LOG="info", B2K_START_POSITION="latest")
            t0 = time.time()
            daemon = subprocess.Popen([BIN, "run"], env=env, stderr=subprocess.PIPE, text=True)
            ms = None
            try:
                for line in daemon.stderr:
                    if "tables captured at" in line:
                        ms = int(line.rsplit(" in ", 1)[1].split()[0])
                    if "running:" in line:
                        break
                else:
                    sys.exit(f"binlog2kafka exited with {daemon.wait()} before running")
                took, rss = time.time() - t0, peak_rss_kib(daemon.pid)
            finally:
                daemon.terminate()
                daemon.wait()
            figures[name].append(ms)
            n = tables if name == db else 0
            print(f"| {name} | {n} | {ms} | {took:.2f} | {rss / 1024:.1f} |", flush=True)
    print(f"\ncapture of {tables} tables: {statistics.median(figures[db])} ms "
          f"(an empty database: {statistics.median(figures[empty])} ms; medians of 3)")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def fleet_define(name, n, server_id_base):
    """n definitions in a new fleet's topic, as `pipeline put` writes them
    (one partition, compacted, one record per batch), each its own server
    id and topic, all over one database."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BROKER})
    admin.create_topics([NewTopic(f"{name}_pipelines", 1, 1,
                                  config={"cleanup.policy": "compact"})])[
        f"{name}_pipelines"].result()
    prod = Producer({"bootstrap.servers": BROKER})
    for i in range(n):
        props = (f"pipeline.name = {name}_p{i}\nfilter.include = b2k_fleet_idle.*\n"
                 f"kafka.topic = {name}_p{i}\n")
        value = json.dumps({"name": f"{name}_p{i}", "properties": props, "paused": False,
                            "server_id": server_id_base + i})
        prod.produce(f"{name}_pipelines", key=f"{name}_p{i}", value=value)
        prod.flush()


def fleet_host(name, log):
    """A host of fleet `name` (6 s session timeout, 1 s heartbeats),
    logging to the open file `log`."""
    env = dict(os.environ, RUST_LOG="info", B2K_MYSQL_PORT="3307", B2K_MYSQL_USER="cdc",
               B2K_MYSQL_PASSWORD="cdc-secret", B2K_KAFKA_BROKERS=BROKER,
               B2K_KAFKA_COMMIT_TOPIC=f"{name}_commits", B2K_HTTP_LISTEN="off",
               B2K_FLEET_NAME=name, B2K_FLEET_SESSION_TIMEOUT_MS="6000",
               B2K_FLEET_HEARTBEAT_INTERVAL_MS="1000")
    return subprocess.Popen([BIN, "run"], env=env, stderr=log, stdout=log)


def fleet(counts):
    """Idle pipelines in one host of a fleet: for each count, that many
    definitions, one host started; once every pipeline streams: RSS,
    threads, and CPU over 20 s of idle."""
    sql(f"SET GLOBAL max_connections = {max(counts) * 3 + 100}")
    sql("CREATE DATABASE IF NOT EXISTS b2k_fleet_idle")
    hz = os.sysconf("SC_CLK_TCK")
    print("| pipelines | start to all streaming (s) | RSS (MB) | RSS per pipeline (MB) | threads | threads per pipeline | idle CPU (% of a core) |")
    print("|---|---|---|---|---|---|---|")
    for n in counts:
        name = f"benchfleet{int(time.time())}_{n}"
        fleet_define(name, n, 3_000_000)
        t0 = time.time()
        log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        daemon = fleet_host(name, log)
        try:
            while True:
                text = open(log.name).read()
                if text.count("streaming binlog from") >= n:
                    break
                if daemon.poll() is not None or time.time() - t0 > 600:
                    sys.exit(f"the host did not stream {n} pipelines:\n{text[-3000:]}")
                time.sleep(0.5)
            took = time.time() - t0
            time.sleep(5)
            c0, w0 = cpu_ticks(daemon.pid), time.time()
            time.sleep(20)
            cpu = (cpu_ticks(daemon.pid) - c0) / hz / (time.time() - w0) * 100
            rss = proc_status(daemon.pid, "VmRSS") / 1024
            threads = proc_status(daemon.pid, "Threads")
            print(f"| {n} | {took:.1f} | {rss:.1f} | {rss / n:.2f} | {threads} | {threads / n:.1f} | {cpu:.2f} |",
                  flush=True)
        finally:
            daemon.terminate()
            daemon.wait()


def rebalance(survivors, pipelines=12):
    """A host's death: for each count of surviving hosts, that many hosts
    plus one run `pipelines` idle pipelines; the extra host is killed
    (SIGKILL) and the time until every one of its pipelines streams again
    on a survivor is measured (6 s session timeout, 1 s heartbeats)."""
    sql(f"SET GLOBAL max_connections = {pipelines * 6 + 100}")
    sql("CREATE DATABASE IF NOT EXISTS b2k_fleet_idle")
    print("| surviving hosts | pipelines | spread over all hosts (s) | moved | death to all moved streaming (s) |")
    print("|---|---|---|---|---|")
    for n in survivors:
        name = f"benchrebal{int(time.time())}_{n}"
        fleet_define(name, pipelines, 3_100_000)
        logs = [tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) for _ in range(n + 1)]
        t0 = time.time()
        hosts = [fleet_host(name, log) for log in logs]
        text = lambda k: open(logs[k].name).read()
        try:
            while sum(text(k).count("streaming binlog from") for k in range(n + 1)) < pipelines:
                if time.time() - t0 > 300:
                    sys.exit("the hosts did not stream every pipeline")
                time.sleep(0.2)
            # Settled: every host streams its share.
            share = pipelines // (n + 1)
            while min(text(k).count("streaming binlog from") - text(k).count("stopped:")
                      for k in range(n + 1)) < share:
                if time.time() - t0 > 300:
                    sys.exit("the hosts did not settle")
                time.sleep(0.2)
            spread = time.time() - t0
            time.sleep(2)
            moved = text(0).count("streaming binlog from") - text(0).count("stopped:")
            before = [text(k).count("streaming binlog from") for k in range(1, n + 1)]
            killed = time.time()
            hosts[0].kill()
            hosts[0].wait()
            while sum(text(k).count("streaming binlog from") - before[k - 1]
                      for k in range(1, n + 1)) < moved:
                if time.time() - killed > 120:
                    sys.exit("the survivors did not take the dead host's pipelines")
                time.sleep(0.05)
            took = time.time() - killed
            print(f"| {n} | {pipelines} | {spread:.1f} | {moved} | {took:.1f} |", flush=True)
        finally:
            for h in hosts:
                if h.poll() is None:
                    h.terminate()
            for h in hosts:
                h.wait()


def main():
    if "--fleet" in sys.argv:
        args = [a for a in sys.argv[1:] if not a.startswith("--")]
        return fleet([int(x) for x in (args[0] if args else "10,50,100,200").split(",")])
    if "--callgrind" in sys.argv:
        other = sys.argv[sys.argv.index("--ab") + 1] if "--ab" in sys.argv else None
        args = [a for a in sys.argv[1:] if not a.startswith("--") and a != other]
        return callgrind(int(args[0]) if args else 200_000, other)
    if "--rebalance" in sys.argv:
        args = [a for a in sys.argv[1:] if not a.startswith("--")]
        return rebalance([int(x) for x in (args[0] if args else "1,2,3,4").split(",")])
    if "--capture" in sys.argv:
        args = [a for a in sys.argv[1:] if not a.startswith("--")]
        return capture(int(args[0]) if args else 10_000)
    quick = "--quick" in sys.argv
    other = sys.argv[sys.argv.index("--ab") + 1] if "--ab" in sys.argv else None
    args = [a for a in sys.argv[1:] if not a.startswith("--") and a != other]
    rows = int(args[0]) if args else (100_000 if quick else 1_000_000)
    rate, steady_s = (2_000, 5) if quick else (10_000, 60)
    tag = f"bench{int(time.time())}"
    sql(f"CREATE DATABASE {tag}")
    sql(f"CREATE TABLE {tag}.narrow (id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), "
        "c DECIMAL(10,2), d DATETIME(3))")
    wide_cols = ", ".join(f"w{i} VARCHAR(60)" for i in range(36))
    sql(f"CREATE TABLE {tag}.wide (id BIGINT PRIMARY KEY, a INT, c DECIMAL(10,2), "
        f"d DATETIME(3), {wide_cols})")
    sql(f"CREATE TABLE {tag}.onetxn LIKE {tag}.narrow")
    t0 = time.time()

    def load_narrow():
        for lo in range(1, rows + 1, 10_000):
            hi = min(lo + 9_999, rows)
            sql(f"INSERT INTO {tag}.narrow SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, "
                f"'2024-01-02 03:04:05.678' FROM {tag}.seq_{lo}_to_{hi}")
    narrow = own_binlog(load_narrow)
    if other:
        return ab(tag, narrow, rows, other)
    if "--tls" in sys.argv:
        return tls_cost(tag, narrow, rows)
    if "--avro" in sys.argv:
        return avro_cost(tag, narrow, rows)
    wide_rows = max(1_000, rows // 10)
    fill = ", ".join(f"RPAD(CONCAT('v{i}-', seq), 55, 'x')" for i in range(36))

    def load_wide():
        for lo in range(1, wide_rows + 1, 2_000):
            hi = min(lo + 1_999, wide_rows)
            sql(f"INSERT INTO {tag}.wide SELECT seq, seq, seq / 100, '2024-01-02 03:04:05.678', "
                f"{fill} FROM {tag}.seq_{lo}_to_{hi}")
    wide = own_binlog(load_wide)
    one = own_binlog(lambda: sql(
        f"INSERT INTO {tag}.onetxn SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, "
        f"'2024-01-02 03:04:05.678' FROM {tag}.seq_1_to_{rows}"))
    load_s = time.time() - t0

    table = []
    mb = lambda w: (w[2] - w[1]) / 1e6

    # 1. decode only.
    path = os.path.join(DATA, narrow[0])
    with open(os.devnull, "wb") as null:
        s, rss = run_measured([BIN, "replay", "--stdout", path], null)
    table.append(("1. decode only (replay --stdout)", rows, mb(narrow), s, None, rss))
    decode_rate = rows / s

    # 2-4. end to end.
    for name, w, n in [("2. end to end, narrow (5 cols)", narrow, rows),
                       ("3. end to end, wide (40 cols, 2 KB)", wide, wide_rows),
                       ("4. end to end, one transaction", one, rows)]:
        t = f"{tag}_{name[0]}"
        s, rss = end_to_end(t, tag, (w[0], w[1]), (w[0], w[2]))
        table.append((name, n, mb(w), s, None, rss))
        if name.startswith("2."):
            e2e_rate = n / s

    # 5. steady.
    want, lat, rss = steady(tag, rate, steady_s)
    table.append((f"5. steady {rate:,} rows/s for {steady_s} s", want, None, steady_s,
                  (pct(lat, 0.5), pct(lat, 0.99), max(lat) if lat else float("nan"), len(lat)), rss))

    # 6-7. snapshots, and the server's own read of the same tables.
    snaps = []
    for name, table_name, n in [("6. snapshot, narrow (5 cols)", "narrow", rows),
                                ("7. snapshot, wide (40 cols, 2 KB)", "wide", wide_rows)]:
        read_s, text = server_read(tag, table_name)
        s, rss = snapshot_run(f"{tag}_{name[0]}", tag, table_name)
        table.append((name, n, None, s, None, rss))
        snaps.append((name, n, s, text, read_s))

    # Peers.
    pmr_rows, pmr_s = python_mysql_replication(narrow[0], narrow[1], narrow[2],
                                               limit_s=15 if quick else 60)
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as msgs:
        subprocess.run([BIN, "replay", "--stdout", path], stdout=msgs, check=True,
                       env=dict(os.environ, RUST_LOG="warn"))
    k_n, k_s, k_size = librdkafka_producer(msgs.name, f"{tag}_librdkafka")
    os.unlink(msgs.name)
    sql(f"DROP DATABASE {tag}")

    print()
    print(f"machine: {os.cpu_count()} cores; MariaDB {sql('SELECT VERSION()')}; Tansu broker; "
          f"binlog2kafka {subprocess.run([BIN, '--version'], capture_output=True, text=True).stdout.split()[-1]}; "
          f"python-mysql-replication {__import__('pymysqlreplication').__version__ if hasattr(__import__('pymysqlreplication'), '__version__') else '1.0.17'}; "
          f"librdkafka {__import__('confluent_kafka').libversion()[0]}")
    print(f"loading the workloads into MariaDB took {load_s:.1f} s")
    print()
    print("| workload | rows | MB of binlog | seconds | rows/s | MB/s | p50 / p99 / max latency ms | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, m, s, row_lat, rss in table:
        mbs = f"{m:.1f}" if m is not None else "-"
        mbps = f"{m / s:.1f}" if m is not None else "-"
        l = (f"{row_lat[0]:.0f} / {row_lat[1]:.0f} / {row_lat[2]:.0f} ({row_lat[3]:,} rows seen)"
             if row_lat else "-")
        print(f"| {name} | {n:,} | {mbs} | {s:.2f} | {n / s:,.0f} | {mbps} | {l} | {rss / 1024:.1f} |")
    print()
    print("| peer | rows | seconds | rows/s |")
    print("|---|---|---|---|")
    print(f"| python-mysql-replication, decoding workload 1's binlog | {pmr_rows:,} | {pmr_s:.2f} | {pmr_rows / pmr_s:,.0f} |")
    print(f"| confluent-kafka (librdkafka) producing workload 1's messages ({k_size:.0f} B avg) | {k_n:,} | {k_s:.2f} | {k_n / k_s:,.0f} |")
    print()
    print("| snapshot | rows | MB (table data) | seconds | rows/s | MB/s | server's own read, s | rows/s | ours / server |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, s, text, read_s in snaps:
        print(f"| {name} | {n:,} | {text / 1e6:.1f} | {s:.2f} | {n / s:,.0f} | {text / 1e6 / s:.1f} | "
              f"{read_s:.2f} | {n / read_s:,.0f} | {read_s / s:.2f}x |")
    print()
    goal = goals()
    if quick:
        print("quick run (100,000 rows on a shared machine): the figures are not comparable "
              "with the goals, which are for full runs (BENCHMARKS.md, Goals)")
    print(f"ratio decode: ours / python-mysql-replication = {decode_rate / (pmr_rows / pmr_s):.1f}x "
          f"(goal: {goal['decode']})")
    print(f"ratio end to end: ours / librdkafka producer = {e2e_rate / (k_n / k_s):.2f}x "
          f"(goal: {goal['end to end']})")
    if lat:
        print(f"steady latency p99 {pct(lat, 0.99):.0f} ms (goal: {goal['steady p99']})")
    for name, n, s, text, read_s in snaps:
        print(f"{name}: {n / s:,.0f} rows/s, {read_s / s:.2f}x the server's own read "
              f"(goal: {goal['snapshot']})")
    print(f"peak RSS max {max(r[5] for r in table) / 1024:.1f} MB (goal: {goal['peak RSS']})")


def goals():
    """The goals table of BENCHMARKS.md: figure -> goal."""
    out, inside = {}, False
    with open(os.path.join(ROOT, "BENCHMARKS.md")) as f:
        for line in f:
            if line.startswith("## "):
                inside = line.strip() == "## Goals"
            elif inside and line.startswith("| ") and not line.startswith("| figure"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == 2:
                    out[cells[0]] = cells[1]
    for k in ("decode", "end to end", "steady p99", "snapshot", "peak RSS"):
        out.setdefault(k, "(not in BENCHMARKS.md)")
    return out

if __name__ == "__main__":
    main()
