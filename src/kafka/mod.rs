//! The blocking Kafka client: everything binlog2kafka asks of a broker, behind
//! one narrow interface (metadata, produce a batch, read a partition, create a
//! topic), so the rest of the daemon never sees the wire.
//!
//! Why not an existing crate: the `kafka` crate speaks only protocol v0,
//! which Apache Kafka 4 removed (KIP-896), and rdkafka needs a C toolchain.
//! The codecs come from `kafka-protocol`; this module adds connections,
//! version negotiation (never below a Kafka 2.1 client's versions), leader
//! routing and error classification.

mod conn;
pub mod group;
pub mod murmur2;
pub mod sasl;
mod scan;
pub mod tls;
mod txn;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::{
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    fetch_request::{FetchPartition, FetchTopic},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    ApiKey, BrokerId, CreateTopicsRequest, FetchRequest, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as RecordCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use conn::BrokerConn;
pub use txn::Transactional;

/// Everything that can go wrong talking to Kafka, each with what to do.
#[derive(Debug, Clone)]
pub enum KafkaError {
    /// No TCP connection could be made.
    Unreachable { broker: String, detail: String },
    /// The connection broke or timed out mid-request.
    Io { broker: String, detail: String },
    /// The broker is older than Kafka 2.1 or lacks an API we need.
    TooOld { broker: String, detail: String },
    /// The bytes on the wire did not decode.
    Protocol { broker: String, detail: String },
    /// The broker answered with a Kafka error code.
    Broker {
        op: String,
        code: i16,
        detail: String,
    },
    /// A record is larger than the broker or topic accepts.
    RecordTooLarge { topic: String, bytes: usize },
    /// The topic does not exist and could not be created.
    NoTopic { topic: String },
    /// The TLS session could not be set up (certificate, name, CA).
    Tls { broker: String, detail: String },
    /// SASL authentication was refused.
    Auth {
        broker: String,
        mechanism: &'static str,
        detail: String,
    },
}

impl KafkaError {
    /// Whether the broker refused us because another producer took our
    /// transactional id (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH): another
    /// daemon owns the pipeline now, and nothing may be written.
    pub fn is_fenced(&self) -> bool {
        matches!(self, KafkaError::Broker { code: 47 | 90, .. })
    }

    /// Whether the broker refused for want of a permission (an ACL):
    /// TOPIC_, CLUSTER_ or TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    pub fn is_authorization(&self) -> bool {
        matches!(
            self,
            KafkaError::Broker {
                code: 29 | 31 | 53,
                ..
            }
        )
    }

    /// Whether waiting and trying again can help (an outage, a leader
    /// election), as opposed to a fault an operator must fix.
    pub fn is_retriable(&self) -> bool {
        match self {
            KafkaError::Unreachable { .. } | KafkaError::Io { .. } => true,
            KafkaError::Broker { code, .. } => is_retriable_code(*code),
            _ => false,
        }
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KafkaError::Unreachable { broker, detail } => write!(
                f,
                "cannot connect to Kafka broker {broker} ({detail}); check kafka.brokers and that the broker is running"
            ),
            KafkaError::Io { broker, detail } => {
                write!(f, "connection to Kafka broker {broker} failed: {detail}")
            }
            KafkaError::TooOld { broker, detail } => write!(
                f,
                "Kafka broker {broker} is not supported: {detail}; binlog2kafka needs Kafka 2.1 or newer (or a compatible broker)"
            ),
            KafkaError::Protocol { broker, detail } => write!(
                f,
                "Kafka broker {broker} sent something binlog2kafka cannot read ({detail}); is kafka.brokers pointing at a Kafka listener?"
            ),
            KafkaError::Broker { op, code, detail } => {
                write!(f, "Kafka {op} failed: {} (error code {code}){}", error_name(*code), if detail.is_empty() { String::new() } else { format!(": {detail}") })
            }
            KafkaError::RecordTooLarge { topic, bytes } => write!(
                f,
                "a record of {bytes} bytes is larger than topic {topic} accepts; raise max.message.bytes on the topic (and message.max.bytes on the broker)"
            ),
            KafkaError::Auth { broker, mechanism, detail } => {
                write!(f, "Kafka broker {broker} refused SASL {mechanism} authentication: {detail}")
            }
            KafkaError::Tls { broker, detail } => {
                write!(f, "TLS to Kafka broker {broker} failed: {detail}")
            }
            KafkaError::NoTopic { topic } => write!(
                f,
                "topic {topic} does not exist and was not created; create it or allow binlog2kafka to create topics"
            ),
        }
    }
}

impl KafkaError {
    /// Names the broker an authentication error came from.
    fn at(self, addr: &str) -> KafkaError {
        match self {
            KafkaError::Auth {
                mechanism, detail, ..
            } => KafkaError::Auth {
                broker: addr.to_string(),
                mechanism,
                detail,
            },
            other => other,
        }
    }
}

impl std::error::Error for KafkaError {}

fn is_retriable_code(code: i16) -> bool {
    // NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT,
    // NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
    // UNKNOWN_TOPIC_OR_PARTITION (while a topic is being created),
    // COORDINATOR_LOAD_IN_PROGRESS, KAFKA_STORAGE_ERROR, FENCED_LEADER_EPOCH,
    // UNKNOWN_LEADER_EPOCH, THROTTLING_QUOTA_EXCEEDED, CORRUPT_MESSAGE (resend)
    matches!(
        code,
        2 | 3 | 5 | 6 | 7 | 13 | 14 | 19 | 20 | 56 | 74 | 75 | 89
    )
}

pub(crate) fn error_name(code: i16) -> &'static str {
    match code {
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        22 => "ILLEGAL_GENERATION",
        23 => "INCONSISTENT_GROUP_PROTOCOL",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        26 => "INVALID_SESSION_TIMEOUT",
        27 => "REBALANCE_IN_PROGRESS",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        48 => "INVALID_TXN_STATE",
        49 => "INVALID_PRODUCER_ID_MAPPING",
        51 => "CONCURRENT_TRANSACTIONS",
        53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        87 => "INVALID_RECORD",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        58 => "SASL_AUTHENTICATION_FAILED",
        90 => "PRODUCER_FENCED",
        79 => "MEMBER_ID_REQUIRED",
        81 => "GROUP_MAX_SIZE_REACHED",
        _ => "broker error",
    }
}

/// Compression of produced record batches. Only codecs that build without
/// a C compiler are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
}

/// How the client connects and waits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub brokers: Vec<String>,
    pub client_id: String,
    /// Socket connect, read and write timeout.
    pub timeout: Duration,
    /// How long the broker may wait for replicas (acks=all) before failing a
    /// produce.
    pub request_timeout: Duration,
    pub compression: Compression,
    /// `kafka.security.protocol=ssl`: every connection goes over TLS.
    pub tls: Option<tls::Tls>,
    /// `sasl_plaintext`/`sasl_ssl`: every connection authenticates.
    pub sasl: Option<sasl::SaslSettings>,
}

/// One record to produce.
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: i64,
    /// Record headers (Debezium's `__debezium.newkey` on a key change).
    pub headers: Vec<(&'static str, Bytes)>,
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct InRecord {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Record headers, name and value.
    pub headers: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone)]
struct PartitionInfo {
    leader: i32,
}

/// A blocking client bound to one thread. Each pipeline thread that talks to
/// Kafka owns its own `Client` (and so its own sockets); nothing is shared.
pub struct Client {
    config: ClientConfig,
    /// Connections by broker node id; `BOOTSTRAP` for the first one made.
    conns: HashMap<i32, BrokerConn>,
    brokers: HashMap<i32, String>,
    topics: HashMap<String, Vec<PartitionInfo>>,
    /// (api key, version) of every request sent, oldest first.
    sent: Vec<(i16, i16)>,
    /// The transaction coordinator of the pipeline's transactional id.
    coordinator: Option<i32>,
}

const BOOTSTRAP: i32 = i32::MIN;

impl Client {
    /// Connects to the first reachable bootstrap broker.
    pub fn connect(config: ClientConfig) -> Result<Client, KafkaError> {
        let mut client = Client {
            config,
            conns: HashMap::new(),
            brokers: HashMap::new(),
            topics: HashMap::new(),
            sent: Vec::new(),
            coordinator: None,
        };
        client.bootstrap()?;
        Ok(client)
    }

    fn bootstrap(&mut self) -> Result<(), KafkaError> {
        let mut last = None;
        for b in &self.config.brokers {
            match BrokerConn::connect(
                b,
                &self.config.client_id,
                self.config.timeout,
                self.config.tls.as_ref(),
                self.config.sasl.as_ref(),
            ) {
                Ok(c) => {
                    self.conns.insert(BOOTSTRAP, c);
                    return Ok(());
                }
                Err(
                    e @ (KafkaError::TooOld { .. }
                    | KafkaError::Auth { .. }
                    | KafkaError::Tls { .. }),
                ) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| KafkaError::Unreachable {
            broker: "(none)".into(),
            detail: "kafka.brokers is empty".into(),
        }))
    }

    /// The TLS session of a connection, when over TLS.
    pub fn tls_session(&mut self) -> Result<Option<tls::Session>, KafkaError> {
        self.with_conn(None, |c| Ok(c.tls.clone()))
    }

    /// Every (api key, version) this client has put on the wire.
    pub fn sent_versions(&self) -> Vec<(i16, i16)> {
        let mut all = self.sent.clone();
        for c in self.conns.values() {
            all.extend_from_slice(&c.sent);
        }
        all
    }

    /// Drops every connection and cached route; the next call reconnects.
    /// Used after an I/O error, when the socket's state is unknown.
    pub fn reset(&mut self) {
        for (_, c) in self.conns.drain() {
            self.sent.extend_from_slice(&c.sent);
        }
        self.topics.clear();
        self.coordinator = None;
    }

    fn any_conn(&mut self) -> Result<&mut BrokerConn, KafkaError> {
        if self.conns.is_empty() {
            self.bootstrap()?;
        }
        Ok(self.conns.values_mut().next().expect("a connection exists"))
    }

    fn conn_for(&mut self, node: i32) -> Result<&mut BrokerConn, KafkaError> {
        if !self.conns.contains_key(&node) {
            let addr = self
                .brokers
                .get(&node)
                .cloned()
                .ok_or_else(|| KafkaError::Protocol {
                    broker: format!("node {node}"),
                    detail: "leader is not in the broker list".into(),
                })?;
            // Reuse the bootstrap socket when it is the same broker.
            let reuse = self
                .conns
                .get(&BOOTSTRAP)
                .map(|c| c.addr() == addr)
                .unwrap_or(false);
            let conn = if reuse {
                self.conns.remove(&BOOTSTRAP).expect("checked")
            } else {
                BrokerConn::connect(
                    &addr,
                    &self.config.client_id,
                    self.config.timeout,
                    self.config.tls.as_ref(),
                    self.config.sasl.as_ref(),
                )?
            };
            self.conns.insert(node, conn);
        }
        Ok(self.conns.get_mut(&node).expect("inserted"))
    }

    /// Runs `f` on a connection and drops that connection when the socket
    /// failed, so the next attempt starts clean.
    fn with_conn<T>(
        &mut self,
        node: Option<i32>,
        f: impl FnOnce(&mut BrokerConn) -> Result<T, KafkaError>,
    ) -> Result<T, KafkaError> {
        let result = match node {
            Some(n) => f(self.conn_for(n)?),
            None => f(self.any_conn()?),
        };
        if let Err(KafkaError::Io { .. } | KafkaError::Protocol { .. }) = &result {
            self.reset();
        }
        result
    }

    /// Number of partitions of `topic`, refreshing metadata. `None` when the
    /// topic does not exist.
    pub fn partitions(&mut self, topic: &str) -> Result<Option<usize>, KafkaError> {
        self.refresh_metadata(topic)?;
        Ok(self.topics.get(topic).map(|p| p.len()))
    }

    fn refresh_metadata(&mut self, topic: &str) -> Result<(), KafkaError> {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_string())),
            ))]))
            .with_allow_auto_topic_creation(false);
        let resp = self.with_conn(None, |c| c.send(ApiKey::Metadata, &req))?;
        for b in &resp.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
        }
        for t in &resp.topics {
            let name = t.name.as_ref().map(|n| n.0.as_str()).unwrap_or_default();
            if name != topic {
                continue;
            }
            match t.error_code {
                0 => {}
                3 => {
                    self.topics.remove(topic);
                    return Ok(());
                }
                code => {
                    return Err(KafkaError::Broker {
                        op: format!("metadata for topic {topic}"),
                        code,
                        detail: String::new(),
                    })
                }
            }
            let mut parts: Vec<(i32, PartitionInfo)> = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionInfo {
                            leader: p.leader_id.0,
                        },
                    )
                })
                .collect();
            parts.sort_by_key(|(i, _)| *i);
            self.topics.insert(
                topic.to_string(),
                parts.into_iter().map(|(_, p)| p).collect(),
            );
        }
        Ok(())
    }

    fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, KafkaError> {
        if !self.topics.contains_key(topic) {
            self.refresh_metadata(topic)?;
        }
        let parts = self.topics.get(topic).ok_or_else(|| KafkaError::NoTopic {
            topic: topic.to_string(),
        })?;
        let p = parts
            .get(partition as usize)
            .ok_or_else(|| KafkaError::Broker {
                op: format!("routing to {topic}/{partition}"),
                code: 3,
                detail: format!("the topic has {} partitions", parts.len()),
            })?;
        if p.leader < 0 {
            self.topics.remove(topic);
            return Err(KafkaError::Broker {
                op: format!("routing to {topic}/{partition}"),
                code: 5,
                detail: String::new(),
            });
        }
        Ok(p.leader)
    }

    /// Creates `topic` unless it exists. `replication_factor` -1 means the
    /// broker's default.
    pub fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) -> Result<bool, KafkaError> {
        let configs = configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.to_string()))
                    .with_value(Some(StrBytes::from_string(v.to_string())))
            })
            .collect();
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(configs)])
            .with_timeout_ms(self.config.request_timeout.as_millis() as i32);
        let resp = self.with_conn(None, |c| c.send(ApiKey::CreateTopics, &req))?;
        self.topics.remove(topic);
        match resp.topics.first().map(|t| (t.error_code, t)) {
            None | Some((0, _)) => Ok(true),
            Some((36, _)) => Ok(false),
            Some((code, t)) => Err(KafkaError::Broker {
                op: format!("creating topic {topic}"),
                code,
                detail: t
                    .error_message
                    .as_ref()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
            }),
        }
    }

    /// Writes `records` to one partition as one RecordBatch v2 with
    /// acks=all, and returns the offset of the first. Either all are written
    /// or none is acknowledged.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[OutRecord],
    ) -> Result<i64, KafkaError> {
        self.produce_as(topic, partition, records, None)
    }

    /// An idempotent producer id and epoch from the broker (KIP-98), or
    /// `None` where the broker offers no InitProducerId.
    pub fn init_producer_id(&mut self) -> Result<Option<Producer>, KafkaError> {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let resp = self.with_conn(None, |c| {
            if !c.has(ApiKey::InitProducerId) {
                return Ok(None);
            }
            c.send(ApiKey::InitProducerId, &req).map(Some)
        })?;
        let Some(resp) = resp else { return Ok(None) };
        if resp.error_code != 0 {
            return Err(KafkaError::Broker {
                op: "InitProducerId".into(),
                code: resp.error_code,
                detail: String::new(),
            });
        }
        Ok(Some(Producer {
            id: resp.producer_id.0,
            epoch: resp.producer_epoch,
        }))
    }

    /// [`Client::produce`] as idempotent producer `idem`, the batch's first
    /// record at sequence number `seq` of the partition: a batch sent again
    /// with the same numbers (a retry after a lost answer) is dropped by the
    /// broker as a duplicate.
    pub fn produce_as(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[OutRecord],
        idem: Option<(Producer, i32)>,
    ) -> Result<i64, KafkaError> {
        let sent = self.produce_send(topic, partition, records, idem)?;
        self.produce_wait(sent)
    }

    /// Writes a produce request without waiting for its answer: up to five
    /// may be outstanding per connection (Kafka keeps an idempotent
    /// producer's batches in order with five in flight). Answers are read
    /// with [`Client::produce_wait`], oldest first; no other request may go
    /// to a connection with answers outstanding.
    pub fn produce_send(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[OutRecord],
        idem: Option<(Producer, i32)>,
    ) -> Result<Sent, KafkaError> {
        let batch = encode_batch(records, self.config.compression, idem)?;
        let batch_len = batch.len();
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(self.config.request_timeout.as_millis() as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.freeze()))])]);
        let leader = self.leader(topic, partition)?;
        let (version, correlation, serial) = self.with_conn(Some(leader), |c| {
            let v = c.version(ApiKey::Produce);
            Ok((v, c.write_request(ApiKey::Produce, v, &req)?, c.serial))
        })?;
        Ok(Sent {
            node: leader,
            serial,
            correlation,
            version,
            topic: topic.to_string(),
            partition,
            bytes: records
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                .max()
                .unwrap_or(batch_len),
        })
    }

    /// Reads the answer to `sent`: the offset of its first record.
    pub fn produce_wait(&mut self, sent: Sent) -> Result<i64, KafkaError> {
        let (topic, partition, leader) = (sent.topic.as_str(), sent.partition, sent.node);
        let same = self
            .conns
            .get(&leader)
            .is_some_and(|c| c.serial == sent.serial);
        if !same {
            return Err(KafkaError::Io {
                broker: format!("node {leader}"),
                detail: "the connection was reset before the produce answer came".into(),
            });
        }
        let resp = self.with_conn(Some(leader), |c| {
            c.read_answer::<ProduceRequest>(sent.version, sent.correlation)
        })?;
        for t in &resp.responses {
            for p in &t.partition_responses {
                if p.index != partition {
                    continue;
                }
                return match p.error_code {
                    0 => Ok(p.base_offset),
                    10 | 18 => Err(KafkaError::RecordTooLarge {
                        topic: topic.to_string(),
                        bytes: sent.bytes,
                    }),
                    code => {
                        if code == 6 || code == 3 || code == 5 {
                            self.topics.remove(topic);
                        }
                        Err(KafkaError::Broker {
                            op: format!("produce to {topic}/{partition}"),
                            code,
                            detail: p
                                .error_message
                                .as_ref()
                                .map(|m| m.as_str().to_string())
                                .unwrap_or_default(),
                        })
                    }
                };
            }
        }
        Err(KafkaError::Protocol {
            broker: format!("node {leader}"),
            detail: format!("produce response has no answer for {topic}/{partition}"),
        })
    }

    /// The first and the next-to-be-written offsets of a partition
    /// (`earliest == latest` means empty).
    pub fn offsets(&mut self, topic: &str, partition: i32) -> Result<(i64, i64), KafkaError> {
        let earliest = self.list_offset(topic, partition, -2)?;
        let latest = self.list_offset(topic, partition, -1)?;
        Ok((earliest, latest))
    }

    fn list_offset(&mut self, topic: &str, partition: i32, ts: i64) -> Result<i64, KafkaError> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(0)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(ts)])]);
        let leader = self.leader(topic, partition)?;
        let resp = self.with_conn(Some(leader), |c| c.send(ApiKey::ListOffsets, &req))?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.partition_index == partition {
                    if p.error_code != 0 {
                        return Err(KafkaError::Broker {
                            op: format!("list offsets of {topic}/{partition}"),
                            code: p.error_code,
                            detail: String::new(),
                        });
                    }
                    return Ok(p.offset);
                }
            }
        }
        Err(KafkaError::Protocol {
            broker: format!("node {leader}"),
            detail: format!("list offsets response has no answer for {topic}/{partition}"),
        })
    }

    /// Reads records of one partition starting at `offset`, up to about
    /// `max_bytes`. Returns them in offset order (possibly none).
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
    ) -> Result<Vec<InRecord>, KafkaError> {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(max_bytes)])]);
        let leader = self.leader(topic, partition)?;
        let resp = self.with_conn(Some(leader), |c| c.send(ApiKey::Fetch, &req))?;
        let mut out = Vec::new();
        for t in &resp.responses {
            for p in &t.partitions {
                if p.partition_index != partition {
                    continue;
                }
                if p.error_code != 0 {
                    return Err(KafkaError::Broker {
                        op: format!("fetch from {topic}/{partition} at offset {offset}"),
                        code: p.error_code,
                        detail: String::new(),
                    });
                }
                let Some(records) = &p.records else { continue };
                let mut buf = records.clone();
                while buf.len() >= 61 {
                    // A fetch may end in a partial batch; stop at it.
                    let batch_len =
                        i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize + 12;
                    if batch_len > buf.len() {
                        break;
                    }
                    let mut one = buf.split_to(batch_len);
                    let set =
                        RecordBatchDecoder::decode(&mut one).map_err(|e| KafkaError::Protocol {
                            broker: format!("node {leader}"),
                            detail: format!("decoding fetched records: {e}"),
                        })?;
                    for r in set.records {
                        if r.offset >= offset && !r.control {
                            out.push(InRecord {
                                offset: r.offset,
                                key: r.key,
                                value: r.value,
                                headers: r
                                    .headers
                                    .into_iter()
                                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                                    .collect(),
                            });
                        }
                    }
                }
            }
        }
        out.sort_by_key(|r| r.offset);
        Ok(out)
    }
}

/// A produce request written and not answered yet ([`Client::produce_send`]).
#[derive(Debug)]
pub struct Sent {
    node: i32,
    serial: u64,
    correlation: i32,
    version: i16,
    topic: String,
    partition: i32,
    /// The largest record's value, named if the broker finds it too large.
    bytes: usize,
}

/// An idempotent producer's id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
}

/// The records as one RecordBatch v2 (uncompressed or compressed as set),
/// with an idempotent producer's id, epoch and first sequence number.
fn encode_batch(
    records: &[OutRecord],
    compression: Compression,
    idem: Option<(Producer, i32)>,
) -> Result<BytesMut, KafkaError> {
    let (producer_id, producer_epoch, first) = match idem {
        Some((p, seq)) => (p.id, p.epoch, seq),
        None => (-1, -1, -1),
    };
    // Room for the records and their framing at once (a batch grown by
    // doubling was copied several times over).
    let payload: usize = records
        .iter()
        .map(|r| {
            r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 10)
                    .sum::<usize>()
                + 32
        })
        .sum();
    let mut batch = BytesMut::with_capacity(payload + 128);
    // The encoder derives each record's offset delta from `offset`: they
    // must run 0, 1, 2... within the batch (Kafka rejects anything else).
    // It also starts a new RecordBatch whenever `offset - sequence`
    // changes, so the sequence must rise with the offset: from -1 (no
    // sequence, as a producer without idempotence sends) up. A constant
    // -1 made one batch per record: 61 bytes more per record on the
    // wire, and a broker that handles thousands of batches per request
    // (Tansu acknowledged 6x fewer records per second).
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: first.wrapping_add(i as i32),
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_static_str(k), Some(v.clone())))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let compression = match compression {
        Compression::None => RecordCompression::None,
        Compression::Gzip => RecordCompression::Gzip,
        Compression::Snappy => RecordCompression::Snappy,
    };
    RecordBatchEncoder::encode(
        &mut batch,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| KafkaError::Protocol {
        broker: "(local)".into(),
        detail: format!("encoding a record batch: {e}"),
    })?;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of a produce goes into one RecordBatch: one header, not
    /// one per record (brokers handle one batch far faster than thousands).
    #[test]
    fn records_go_into_one_batch() {
        let records: Vec<OutRecord> = (0..1000)
            .map(|i| OutRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}"))),
                timestamp_ms: 1_700_000_000_000 + i,
                headers: Vec::new(),
            })
            .collect();
        let b = encode_batch(&records, Compression::None, None).unwrap();
        let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        assert_eq!(
            i32_at(8) as usize + 12,
            b.len(),
            "one batch spans the buffer"
        );
        assert_eq!(i32_at(57), 1000, "with all the records");
        assert_eq!(i32_at(53), -1, "base sequence: none (no idempotence)");
        let mut buf = b.freeze();
        let decoded = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(decoded.records.len(), 1000);
        assert_eq!(decoded.records[999].offset, 999);
    }

    /// An idempotent producer's batch carries its id, epoch and first
    /// sequence number in the batch header (KIP-98's layout).
    #[test]
    fn an_idempotent_batch_carries_producer_id_epoch_and_sequence() {
        let records: Vec<OutRecord> = (0..3)
            .map(|i| OutRecord {
                key: None,
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp_ms: 0,
                headers: Vec::new(),
            })
            .collect();
        let p = Producer { id: 77, epoch: 3 };
        let b = encode_batch(&records, Compression::None, Some((p, 500))).unwrap();
        let at = |i: usize, n: usize| b[i..i + n].iter().fold(0i64, |acc, x| acc << 8 | *x as i64);
        assert_eq!(at(43, 8), 77, "producer id");
        assert_eq!(at(51, 2), 3, "producer epoch");
        assert_eq!(at(53, 4), 500, "base sequence");
        assert_eq!(at(57, 4), 3, "one batch of three records");
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let outage = KafkaError::Unreachable {
            broker: "b:9092".into(),
            detail: "refused".into(),
        };
        assert!(outage.is_retriable());
        let leader_moved = KafkaError::Broker {
            op: "produce".into(),
            code: 6,
            detail: String::new(),
        };
        assert!(leader_moved.is_retriable());
        let too_big = KafkaError::RecordTooLarge {
            topic: "t".into(),
            bytes: 10,
        };
        assert!(!too_big.is_retriable());
        let denied = KafkaError::Broker {
            op: "produce".into(),
            code: 29,
            detail: String::new(),
        };
        assert!(!denied.is_retriable());
    }

    #[test]
    fn supported_versions_never_go_below_a_kafka_2_1_client() {
        // What Apache Kafka 2.1's Java client sends at most (KIP-896 keeps
        // these in Kafka 4): Produce 7, Fetch 10, ListOffsets 4,
        // Metadata 7, CreateTopics 3.
        let floor = [
            (ApiKey::Produce, 7),
            (ApiKey::Fetch, 10),
            (ApiKey::ListOffsets, 4),
            (ApiKey::Metadata, 7),
            (ApiKey::CreateTopics, 3),
        ];
        for (key, min) in floor {
            let (_, ours_min, ours_max) = conn::SUPPORTED
                .iter()
                .find(|(k, _, _)| *k == key)
                .copied()
                .expect("api is supported");
            assert!(
                ours_min >= min,
                "{key:?} may go down to v{ours_min}, below v{min}"
            );
            assert!(ours_max >= ours_min);
        }
    }
}
