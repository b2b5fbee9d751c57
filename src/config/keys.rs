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
    Key { name: "mysql.host", default: "127.0.0.1", help: "MySQL/MariaDB server to replicate from, or the cluster's servers comma-separated (`db1:3306,db2:3306,db3`; an entry without a port uses `mysql.port`): the first reachable one is read, and when it fails the next takes over by GTID (see docs/failover.md)" },
    Key { name: "mysql.failover_after_ms", default: "30000", help: "with several `mysql.host` servers: how long the one being read may stay unreachable before the daemon resumes on the next one by GTID (a server restart usually takes less, and is waited out)" },
    Key { name: "mysql.port", default: "3306", help: "its TCP port" },
    Key { name: "mysql.user", default: "binlog2kafka", help: "user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT" },
    Key { name: "mysql.password", default: "", help: "its password" },
    Key { name: "mysql.password_file", default: "", help: "a file whose content is the password (a Docker or Kubernetes secret) instead of `mysql.password` (setting both is an error); a trailing newline is dropped. Secrets never appear in logs, `check`, the status page or error lines" },
    Key { name: "mysql.ssl_mode", default: "preferred", help: "TLS to MySQL, as MySQL's own clients name it: `disabled`; `preferred` (TLS when the server offers it, its certificate unchecked; plaintext otherwise); `required` (TLS or no connection, unchecked); `verify_ca` (the certificate must be signed by `mysql.ssl_ca`); `verify_identity` (and must name `mysql.host`). Used by the binlog stream, the schema queries and the snapshot connection (see docs/security.md)" },
    Key { name: "mysql.ssl_ca", default: "", help: "PEM file of the CA that signed the server's certificate; needed by `verify_ca` and `verify_identity`" },
    Key { name: "mysql.ssl_cert", default: "", help: "PEM file of a client certificate, for a user created `REQUIRE X509` (or `SUBJECT`/`ISSUER`); set with `mysql.ssl_key`" },
    Key { name: "mysql.ssl_key", default: "", help: "PEM file of that certificate's private key" },
    Key { name: "mysql.server_id", default: "6379", help: "replica server id; unique among the server's replicas" },
    Key { name: "mysql.on_statement_dml", default: "fail", help: "an INSERT/UPDATE/DELETE (or LOAD DATA) on a published table that the server logged as SQL (`binlog_format` STATEMENT or MIXED, for the server or one session, as pt-table-checksum does) carries no rows: `fail` stops before it with one error line naming its position and table, checkpoint unmoved; `warn` logs it and goes on without its rows (see docs/server.md)" },
    Key { name: "mysql.timeout_ms", default: "10000", help: "connect timeout; the binlog stream is declared dead after 3× this with no event (the server sends a heartbeat every second)" },
    Key { name: "kafka.brokers", default: "127.0.0.1:9092", help: "comma-separated bootstrap brokers, `host:port`" },
    Key { name: "kafka.topic", default: "binlog2kafka", help: "data topic for row changes; may be a template with `{database}` and `{table}` (`cdc.{database}.{table}`): characters a topic name cannot hold become `_`, and each topic is created on first use" },
    Key { name: "kafka.topic_partitions", default: "1", help: "partitions of each data topic binlog2kafka creates" },
    Key { name: "kafka.ddl_topic", default: "", help: "topic for DDL statements (CREATE/ALTER/DROP/RENAME/TRUNCATE), in `output.format`'s style (see docs/formats.md); empty = not published" },
    Key { name: "kafka.transaction_topic", default: "binlog2kafka_transactions", help: "topic for BEGIN/END markers when `output.transaction_markers=true`" },
    Key { name: "kafka.replication_factor", default: "-1", help: "replication factor for topics it creates; -1 = the broker's default" },
    Key { name: "kafka.commit_topic", default: "binlog2kafka_commits", help: "checkpoint topic (1 partition, `cleanup.policy=compact`; created if missing)" },
    Key { name: "kafka.schema_topic", default: "", help: "schema history topic: every version of every captured table's definition (1 partition, `cleanup.policy=compact`; created if missing; see docs/schema.md); empty = `<kafka.commit_topic>_schema`" },
    Key { name: "kafka.client_id", default: "binlog2kafka", help: "client id sent to the brokers (suffixed `-producer`, `-admin`)" },
    Key { name: "kafka.compression", default: "none", help: "record batch compression: `none`, `gzip` or `snappy`" },
    Key { name: "kafka.batch_max_bytes", default: "1048576", help: "largest record batch per partition; a batch is sent when full or on the 100 ms tick" },
    Key { name: "kafka.max_record_bytes", default: "1048576", help: "largest record sent (like the Java client's `max.request.size`); a larger row stops the pipeline with an error naming its table and position" },
    Key { name: "kafka.partition_by", default: "primary_key", help: "what picks a row's partition, murmur2 like the Java client: `primary_key` (the Maxwell key; a table without one goes by `db.table`), `table` (`db.table`), `database`, `column:NAME` (the column's JSON value), or `random` (spreads load, gives up per-key order)" },
    Key { name: "kafka.key_format", default: "auto", help: "message key: `maxwell` (`{\"database\",\"table\",\"pk.<col>\"}`), `debezium` (the primary-key columns, `{\"id\":1}`; null without a primary key) or `none`; `auto` is `debezium` with `output.format=debezium`, `none` with `canal` (Canal sends no key), else `maxwell`" },
    Key { name: "kafka.timeout_ms", default: "30000", help: "socket and request timeout towards the brokers" },
    Key { name: "kafka.security.protocol", default: "plaintext", help: "`plaintext`; `ssl`: TLS 1.2/1.3 to every broker (see docs/security.md); `sasl_plaintext`: SASL without TLS; `sasl_ssl`: SASL over TLS (see docs/security.md)" },
    Key { name: "kafka.sasl.mechanism", default: "", help: "with `sasl_*`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`, or `AWS_MSK_IAM` (Amazon MSK: credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, else the instance's IAM role by IMDSv2; the region from `AWS_REGION` or the broker's name)" },
    Key { name: "kafka.sasl.username", default: "", help: "with PLAIN and SCRAM: the user" },
    Key { name: "kafka.sasl.password", default: "", help: "with PLAIN and SCRAM: its password" },
    Key { name: "kafka.sasl.password_file", default: "", help: "a file whose content is the SASL password, instead of `kafka.sasl.password` (not both); a trailing newline is dropped" },
    Key { name: "kafka.sasl.oauthbearer.token_file", default: "", help: "with OAUTHBEARER: a file holding the token (a JWT from your identity provider), read at every authentication; when the file changes, each connection authenticates again with the new token, so a sidecar can refresh it" },
    Key { name: "kafka.ssl.ca.location", default: "", help: "with `ssl`: PEM file of the CA certificates to trust; empty = the system's CA bundle (`/etc/ssl/certs/ca-certificates.crt` and the other usual places), or the Mozilla roots compiled into the binary where there is none (a `FROM scratch` image)" },
    Key { name: "kafka.ssl.certificate.location", default: "", help: "with `ssl`: PEM file of the client certificate (with its chain) for brokers that require one (mTLS); set together with `kafka.ssl.key.location`" },
    Key { name: "kafka.ssl.key.location", default: "", help: "with `ssl`: PEM file of that certificate's private key (PKCS#8, PKCS#1 or SEC1, unencrypted)" },
    Key { name: "kafka.ssl.endpoint.identification", default: "https", help: "with `ssl`: `https` checks that each broker's certificate holds the name or IP address the daemon connects to (from `kafka.brokers` and the brokers' metadata); `none` skips that check (the chain is still checked against the CAs), with a warning in the log" },
    Key { name: "pipeline.name", default: "default", help: "names this pipeline's checkpoint (the commit-log record key)" },
    Key { name: "pipeline.pending_events", default: "256", help: "bounded reader→producer channel, in batches (a transaction's rows, or `pipeline.txn_buffer_rows` of a larger one); a full channel pauses the reader. Memory is bounded by `pipeline.max_in_flight_bytes`" },
    Key { name: "pipeline.max_in_flight_bytes", default: "16777216", help: "memory for changes read but not yet acknowledged and released (decoded rows and their bookkeeping); the reader waits above it, so a slow broker slows reading instead of growing memory" },
    Key { name: "pipeline.txn_buffer_rows", default: "1000", help: "rows of an open transaction held back so they carry its `xid`" },
    Key { name: "pipeline.checkpoint_interval_ms", default: "1000", help: "how often the newest released position is written" },
    Key { name: "pipeline.heartbeat_interval_ms", default: "5000", help: "with nothing new, the checkpoint is rewritten this often to prove the daemon alive; a second daemon waits 3× this before taking over (1× plus a second from another host where the broker fences; none after `kill -9` on the same host)" },
    Key { name: "pipeline.shutdown_timeout_ms", default: "30000", help: "on SIGTERM, how long to keep trying to flush before exiting 1" },
    Key { name: "registry.url", default: "", help: "the schema registry with `output.encoding=avro`: `http://host:port[/path]` or `https://...`, several comma-separated (a registry cluster: tried in turn)" },
    Key { name: "registry.ssl.ca.location", default: "", help: "for an `https://` registry: PEM file of the CA that signed its certificate; empty = the system's CA bundle (else Mozilla's roots compiled in). The name in `registry.url` is checked against the certificate" },
    Key { name: "registry.basic_auth_user_info", default: "", help: "`USER:PASSWORD` for the registry's basic auth (prefer `registry.basic_auth_user_info_file` or the environment); never logged" },
    Key { name: "registry.basic_auth_user_info_file", default: "", help: "a file holding `USER:PASSWORD` for the registry, instead of `registry.basic_auth_user_info` (not both)" },
    Key { name: "registry.subject_name_strategy", default: "topic", help: "subjects: `topic` (`<topic>-key`, `<topic>-value`, Confluent's default), `record` (the record's full name) or `topic_record` (`<topic>-<record full name>`)" },
    Key { name: "registry.timeout_ms", default: "10000", help: "how long one registry request may take; a registry that does not answer holds the rows (nothing is lost, the checkpoint stays) and is asked again" },
    Key { name: "fleet.name", default: "", help: "run as a member of this fleet instead of one pipeline: the hosts with the same `fleet.name` share the pipelines defined in `fleet.topic` (`binlog2kafka pipeline put`) through Kafka's group protocol, balanced, each run by one host; this file then holds what the hosts share (Kafka connection, `http.listen`, defaults), the definitions the rest (see docs/fleet.md). Empty = the single pipeline of this file" },
    Key { name: "fleet.topic", default: "", help: "the fleet's pipeline definitions (1 partition, `cleanup.policy=compact`, created by the first `pipeline put`); empty = `<fleet.name>_pipelines`" },
    Key { name: "fleet.status_topic", default: "", help: "where each host writes, every 10 s, what its pipelines do (state, lag, rate, the last hour), so every host's page and `binlog2kafka fleet status` show the whole fleet (1 partition, `cleanup.policy=compact`, created by the first host); empty = `<fleet.name>_status`" },
    Key { name: "fleet.session_timeout_ms", default: "10000", help: "a host that has not been heard from for this long loses its pipelines to the others (Kafka's group session timeout; the broker bounds it, 6 s to 30 min on Apache Kafka by default)" },
    Key { name: "fleet.heartbeat_interval_ms", default: "3000", help: "how often a host tells the group it is alive, and looks for changed definitions; under a third of `fleet.session_timeout_ms`" },
    Key { name: "fleet.server_id_range", default: "1000000-1009999", help: "the replica server ids the fleet hands out, `FIRST-LAST`: `pipeline put` gives a new pipeline the lowest one no other definition holds, kept for its life; a definition that sets `mysql.server_id` keeps its own" },
    Key { name: "output.format", default: "maxwell", help: "message value: `maxwell`, `debezium` (the MySQL connector's JSON with `schemas.enable=false`) or `canal` (canal-json); see docs/formats.md" },
    Key { name: "output.encoding", default: "json", help: "`json`, or `avro` (with `output.format=debezium`): keys and values in Avro with Debezium's schemas, registered in the schema registry (`registry.*`) and written in Confluent's wire format (magic byte, schema id, Avro body), for Debezium's Avro consumers; DDL and transaction markers stay JSON. See docs/formats.md" },
    Key { name: "output.tombstones", default: "false", help: "`debezium`: follow each delete with a tombstone (same key, null value) so log compaction drops the row, as Debezium's `tombstones.on.delete`" },
    Key { name: "output.transaction_markers", default: "false", help: "write BEGIN/END markers per transaction to `kafka.transaction_topic` and, in `debezium` format, a `transaction` block on each row" },
    Key { name: "output.zero_dates", default: "null", help: "zero and partly-zero dates (`0000-00-00`, `2024-00-00`): `null`, or `text` as the server prints them" },
    Key { name: "filter.include", default: "*.*", help: "tables to publish: comma-separated `db.table` patterns, `*` matches any run of characters (`shop.*`, `*.audit_log`), or `/regex/` searched in `db.table`" },
    Key { name: "filter.columns.exclude", default: "", help: "columns left out of `data` and `old`: `db.table.column` patterns (`*` or `/regex/`); the message key keeps primary-key columns (mask them to hide them)" },
    Key { name: "filter.columns.mask", default: "", help: "columns whose values become the SHA-256 (hex) of their JSON, so equal values still match; NULL stays null" },
    Key { name: "filter.exclude", default: "", help: "tables not to publish even when included, same patterns; their rows are skipped undecoded and their transactions still move the checkpoint" },
    Key { name: "http.listen", default: "127.0.0.1:9000", help: "address of the status page (`/`), Prometheus metrics (`/metrics`) and health check (`/healthz`), see \"Monitoring\" in the README; `off` = none; port 0 = any free port (the log names it). A port in use stops the start with an error" },
    Key { name: "log.format", default: "text", help: "log lines on stderr: `text`, or `json` (one object per line: `ts`, `level`, `thread`, `msg`) for log shippers; the level is `RUST_LOG` (`error`, `warn`, `info` (default), `debug`)" },
    Key { name: "schema.on_mismatch", default: "fail", help: "a table map that disagrees with the schema history (column count, types or type metadata; with FULL metadata, names), or a table whose definition is not known where the binlog carries no names: `fail` stops before it with one line naming the table, the position and what differs, checkpoint unmoved; `positional` publishes that table's rows with `@1`-style column names and says so once (see docs/schema.md)" },
    Key { name: "schema.on_unparsed_ddl", default: "fail", help: "a DDL on a captured table that binlog2kafka cannot read or follow: `fail` stops before it with one line (the statement, its position, the table), checkpoint unmoved; `refresh` reads the table's definition from the server at that point, and the table maps that follow check it (see docs/schema.md)" },
    Key { name: "snapshot.mode", default: "never", help: "rows that already exist (see docs/snapshots.md): `never`, only changes from `start.position`; `initial`, on the pipeline's first start (no checkpoint) every table the filters let through, then the changes after them, nothing missed or doubled at the seam; `when_needed`, `initial`, and also when the checkpoint's binlog file was purged: one warning, a new snapshot, streaming on from the server's newest position instead of stopping" },
    Key { name: "snapshot.chunk_rows", default: "8192", help: "largest chunk a snapshot reads per query, in key order (16 or more); a chunk also stays under a quarter of `pipeline.max_in_flight_bytes` (at least 1 MiB, at most 8 MiB), so wide rows make smaller chunks" },
    Key { name: "start.position", default: "latest", help: "where to start when no checkpoint exists: `earliest`, `latest`, `FILE:POS` (an offset where an event starts), or `gtid:` and a GTID state, resumed on whichever server of `mysql.host` has it: MariaDB `gtid:0-1-1000,1-2-50` (the last GTID per domain), MySQL `gtid:3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5` (an executed set)" },
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
            k.name,
            k.help.replace('`', ""),
            ""
        ));
    }
    s
}

/// The README's key reference: a Markdown table made from [`KEYS`]
/// (`tests` check that the README holds exactly this).
pub fn keys_markdown() -> String {
    let mut s = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let default = if k.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", k.default)
        };
        s.push_str(&format!("| `{}` | {default} | {} |\n", k.name, k.help));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's key reference is made from the key table: when a key
    /// changes, this fails and prints the table to paste between the
    /// markers.
    #[test]
    fn the_readme_key_reference_is_the_key_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let (begin, end) = ("<!-- keys:begin -->\n", "<!-- keys:end -->");
        let at = readme.find(begin).expect("README has <!-- keys:begin -->") + begin.len();
        let to = readme[at..]
            .find(end)
            .expect("README has <!-- keys:end -->")
            + at;
        let want = keys_markdown();
        assert!(
            readme[at..to] == want,
            "README's key reference is stale; put this between the markers:\n{want}"
        );
    }
}
