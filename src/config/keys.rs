//! The key table: every configuration key, its default and its help, the
//! one place that knows key names. `--help` and the README's key reference
//! are made from it.

use super::*;

/// A configuration key: its name, default ("" = no default / empty), and
/// what it does.
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

pub const KEYS: &[Key] = &[
    Key { name: "mysql.host", default: "127.0.0.1", help: "MySQL/MariaDB server to replicate from, or a comma-separated list of the cluster's servers (db1:3306,db2:3306; an entry without a port uses mysql.port): the first reachable one is read, and the next takes over by GTID when it fails" },
    Key { name: "mysql.failover_after_ms", default: "30000", help: "with several mysql.host servers: how long the one being read may stay unreachable before the daemon resumes on the next one by GTID (a restart of the server usually takes less)" },
    Key { name: "mysql.port", default: "3306", help: "its TCP port" },
    Key { name: "mysql.user", default: "binlog2kafka", help: "user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT" },
    Key { name: "mysql.password", default: "", help: "its password" },
    Key { name: "mysql.password_file", default: "", help: "a file whose content is the password (a Docker or Kubernetes secret), instead of mysql.password; a trailing newline is dropped" },
    Key { name: "mysql.ssl_mode", default: "preferred", help: "TLS to MySQL, as MySQL's own clients name it: disabled, preferred (TLS when the server offers it, unverified), required (TLS, unverified), verify_ca (the server's certificate signed by mysql.ssl_ca), verify_identity (and naming mysql.host)" },
    Key { name: "mysql.ssl_ca", default: "", help: "PEM file of the CA that signed the server's certificate (verify_ca, verify_identity)" },
    Key { name: "mysql.ssl_cert", default: "", help: "PEM file of a client certificate, for a user created with REQUIRE X509; set with mysql.ssl_key" },
    Key { name: "mysql.ssl_key", default: "", help: "PEM file of the client certificate's private key" },
    Key { name: "mysql.server_id", default: "6379", help: "replica server id; unique among the server's replicas" },
    Key { name: "mysql.on_statement_dml", default: "fail", help: "an INSERT/UPDATE/DELETE on a published table logged as SQL (binlog_format STATEMENT or MIXED) has no rows to publish: fail stops before it, checkpoint unmoved; warn logs it and goes on without its rows" },
    Key { name: "mysql.timeout_ms", default: "10000", help: "connect timeout; the binlog stream is declared dead after 3x this with no event" },
    Key { name: "kafka.brokers", default: "127.0.0.1:9092", help: "comma-separated bootstrap brokers, host:port" },
    Key { name: "kafka.topic", default: "binlog2kafka", help: "data topic for row changes; may be a template with {database} and {table} (e.g. cdc.{database}.{table}), characters a topic name cannot hold becoming _" },
    Key { name: "kafka.topic_partitions", default: "1", help: "partitions of each data topic binlog2kafka creates (on first use)" },
    Key { name: "kafka.ddl_topic", default: "", help: "topic for DDL statements (CREATE/ALTER/DROP/RENAME/TRUNCATE), in output.format's style; empty = DDL is not published" },
    Key { name: "kafka.transaction_topic", default: "binlog2kafka_transactions", help: "topic for BEGIN/END markers when output.transaction_markers=true" },
    Key { name: "kafka.replication_factor", default: "-1", help: "replication factor for topics it creates; -1 = the broker's default" },
    Key { name: "kafka.commit_topic", default: "binlog2kafka_commits", help: "checkpoint topic (1 partition, compacted; created if missing)" },
    Key { name: "kafka.client_id", default: "binlog2kafka", help: "client id sent to the brokers" },
    Key { name: "kafka.compression", default: "none", help: "record batch compression: none, gzip or snappy" },
    Key { name: "kafka.batch_max_bytes", default: "1048576", help: "largest record batch per partition; a batch is sent when full or on the 100 ms tick" },
    Key { name: "kafka.max_record_bytes", default: "1048576", help: "largest record binlog2kafka sends (like the Java client's max.request.size); a larger row stops the pipeline before it" },
    Key { name: "kafka.partition_by", default: "primary_key", help: "what picks a row's partition (murmur2, like the Java client): primary_key, table, database, column:NAME or random; a table without a primary key goes by its name" },
    Key { name: "kafka.key_format", default: "auto", help: "message key: maxwell (database, table and pk.<column> values), debezium (the primary-key columns) or none; auto = debezium for output.format=debezium, none for canal, else maxwell" },
    Key { name: "kafka.timeout_ms", default: "30000", help: "socket and request timeout towards the brokers" },
    Key { name: "kafka.security.protocol", default: "plaintext", help: "plaintext, ssl (TLS to every broker), sasl_plaintext (SASL without TLS) or sasl_ssl (SASL over TLS)" },
    Key { name: "kafka.sasl.mechanism", default: "", help: "with sasl_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, or AWS_MSK_IAM (Amazon MSK; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or the instance's role, region from AWS_REGION or the broker's name)" },
    Key { name: "kafka.sasl.username", default: "", help: "with PLAIN and SCRAM: the user" },
    Key { name: "kafka.sasl.password", default: "", help: "with PLAIN and SCRAM: its password" },
    Key { name: "kafka.sasl.password_file", default: "", help: "a file whose content is the SASL password, instead of kafka.sasl.password; a trailing newline is dropped" },
    Key { name: "kafka.sasl.oauthbearer.token_file", default: "", help: "with OAUTHBEARER: a file holding the token, read at every authentication; when it changes, connections authenticate again with the new one" },
    Key { name: "kafka.ssl.ca.location", default: "", help: "with ssl: PEM file of the CA certificates to trust; empty = the system's CA bundle, or Mozilla's roots compiled in where there is none" },
    Key { name: "kafka.ssl.certificate.location", default: "", help: "with ssl: PEM file of the client certificate (chain) for brokers that require one (mTLS); set with kafka.ssl.key.location" },
    Key { name: "kafka.ssl.key.location", default: "", help: "with ssl: PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1)" },
    Key { name: "kafka.ssl.endpoint.identification", default: "https", help: "with ssl: https checks that the broker's certificate holds the name (or IP address) in kafka.brokers; none skips that check (the chain is still checked), with a warning" },
    Key { name: "pipeline.name", default: "default", help: "names this pipeline's checkpoint (the commit-log record key)" },
    Key { name: "pipeline.pending_events", default: "256", help: "bounded channel from reader to producer, in batches (a transaction's rows, or pipeline.txn_buffer_rows of a larger one); a full channel pauses the reader (memory is bounded by pipeline.max_in_flight_bytes)" },
    Key { name: "pipeline.max_in_flight_bytes", default: "16777216", help: "memory for changes read and not yet acknowledged and released (decoded rows and their bookkeeping); the reader waits above it" },
    Key { name: "pipeline.txn_buffer_rows", default: "1000", help: "rows of an open transaction held back so they carry its xid; larger transactions stream on and only later rows carry it" },
    Key { name: "pipeline.checkpoint_interval_ms", default: "1000", help: "how often the newest released position is written to the commit topic" },
    Key { name: "pipeline.heartbeat_interval_ms", default: "5000", help: "with nothing new, the checkpoint is rewritten this often to prove the daemon alive; another daemon waits 3x this before taking over the pipeline (1x plus a second from another host where the broker fences)" },
    Key { name: "pipeline.shutdown_timeout_ms", default: "30000", help: "on SIGTERM, how long to keep trying to flush before giving up (exit 1, checkpoint unmoved)" },
    Key { name: "output.format", default: "maxwell", help: "message value: maxwell, debezium (the MySQL connector's JSON without schemas) or canal (canal-json)" },
    Key { name: "output.tombstones", default: "false", help: "debezium: follow each delete with a tombstone (same key, null value) so compaction drops the row" },
    Key { name: "output.transaction_markers", default: "false", help: "write BEGIN/END markers per transaction to kafka.transaction_topic and, in debezium format, a transaction block on each row" },
    Key { name: "output.zero_dates", default: "null", help: "zero and partly-zero dates (0000-00-00, 2024-00-00): null, or text as the server prints them" },
    Key { name: "filter.include", default: "*.*", help: "tables to publish: comma-separated db.table patterns (* matches any run of characters) or /regex/ searched in db.table" },
    Key { name: "filter.columns.exclude", default: "", help: "columns left out of data and old: db.table.column patterns (* wildcards or /regex/)" },
    Key { name: "filter.columns.mask", default: "", help: "columns whose values are replaced by the SHA-256 (hex) of their JSON: db.table.column patterns" },
    Key { name: "filter.exclude", default: "", help: "tables not to publish even if included (same patterns); their events still move the checkpoint" },
    Key { name: "http.listen", default: "127.0.0.1:9000", help: "address of the status page (/), Prometheus metrics (/metrics) and health check (/healthz); off = none; port 0 = any free port (logged)" },
    Key { name: "log.format", default: "text", help: "log lines on stderr: text, or json (one object per line, for log shippers); the level is RUST_LOG (default info)" },
    Key { name: "snapshot.mode", default: "never", help: "rows that already exist: never (only changes from start.position); initial: on the pipeline's first start, every table the filters let through, then the changes after them with nothing missed or doubled; when_needed: initial, and again (with one warning) when the checkpoint's binlog was purged, instead of stopping" },
    Key { name: "snapshot.chunk_rows", default: "8192", help: "largest chunk a snapshot reads per query, in primary-key order, 16 or more (a chunk also stays under a quarter of pipeline.max_in_flight_bytes)" },
    Key { name: "start.position", default: "latest", help: "where to start when no checkpoint exists: earliest, latest, FILE:POS, or gtid: and a GTID state (MariaDB gtid:0-1-1000,1-2-50; MySQL gtid:UUID:1-5), resumed on whichever server of mysql.host has it" },
];

/// The environment variable that overrides `key`.
pub fn env_name(key: &str) -> String {
    format!("B2K_{}", key.to_ascii_uppercase().replace('.', "_"))
}

pub(super) fn known(key: &str, origin: &str) -> Result<&'static str, ConfigError> {
    KEYS.iter()
        .find(|k| k.name == key)
        .map(|k| k.name)
        .ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_string(),
            origin: origin.to_string(),
            hint: KEYS
                .iter()
                .map(|k| (edit_distance(key, k.name), k.name))
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, n)| n),
        })
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The key table as text, for `--help`.
pub fn keys_help() -> String {
    let mut s = String::new();
    for k in KEYS {
        let default = if k.default.is_empty() {
            "(empty)"
        } else {
            k.default
        };
        s.push_str(&format!(
            "  {:<32} {}\n  {:<32}   default: {default}\n",
            k.name, k.help, ""
        ));
    }
    s
}
