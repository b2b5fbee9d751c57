//! Every thread loop of a running pipeline, and the parts they share:
//! the [`ledger`] (waiting queue and commit log), the [`stop`], the
//! [`lease`], the [`board`] (what the status page reads) and what the
//! reader's helpers follow of it ([`reading`]). [`Shared`] bundles them;
//! each part has its own lock, and none is held across another's.

pub mod avro_out;
pub mod board;
pub mod dedupe;
pub mod guard;
pub mod handle;
pub mod intmap;
pub mod lease;
pub mod ledger;
pub mod producer;
pub mod reader;
pub mod reading;
pub mod schema_store;
pub mod snapshot;
pub mod stop;
pub mod watcher;

pub use board::{Board, Progress, SchemaStatus, SnapshotStatus, Stats};
pub use lease::Lease;
pub use ledger::Ledger;
pub use reading::Reading;
pub use stop::Stop;

use crate::event::Position;

/// The parts every thread of one pipeline shares.
#[derive(Default)]
pub struct Shared {
    pub ledger: Ledger,
    pub stop: Stop,
    pub lease: Lease,
    pub board: Board,
    pub reading: Reading,
    /// Where the snapshotter finds requests: its own, or one scan shared
    /// by a fleet host's pipelines.
    pub requests: std::sync::Arc<snapshot::RequestScan>,
}

impl Shared {
    pub fn new() -> Self {
        Self::default()
    }

    /// A pipeline of a host whose pipelines share `requests`.
    pub fn sharing_requests(requests: std::sync::Arc<snapshot::RequestScan>) -> Self {
        Shared {
            requests,
            ..Self::default()
        }
    }
}

/// Errors that stop the pipeline on the Kafka side.
#[derive(Debug)]
pub enum PipelineError {
    Kafka {
        during: String,
        err: crate::kafka::KafkaError,
    },
    RecordTooLarge {
        table: String,
        position: String,
        bytes: usize,
        limit: String,
    },
    FlushTimeout {
        unflushed: usize,
        waited: std::time::Duration,
    },
    /// The broker handed out an offset it had already acknowledged: it lost
    /// data (a restart without storage, a wiped log).
    BrokerLostData {
        topic: String,
        partition: i32,
        had: i64,
        got: i64,
        resume: Box<Position>,
    },
    /// A topic binlog2kafka wrote to is gone.
    TopicVanished {
        topic: String,
        resume: Box<Position>,
    },
    /// Another instance took this pipeline over.
    Fenced { other: String },
    /// The broker refused a write: a newer holder of the pipeline's
    /// transactional id fenced this daemon.
    FencedByBroker { id: String, during: String },
    /// Stopped while the lease was unproved: nothing was sent after it.
    LeaseLapsed,
    /// The Avro output cannot write a row: the registry refused its
    /// schema or the credentials, or a value does not fit its Avro type.
    /// Stopped before the row.
    Avro { position: String, cause: String },
    /// Two tables' names render to the same (or a clashing) topic.
    TopicCollision {
        first: String,
        first_topic: String,
        second: String,
        second_topic: String,
    },
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::Kafka { during, err } => write!(f, "{during}: {err}"),
            PipelineError::RecordTooLarge { table, position, bytes, limit } => write!(
                f,
                "the change to {table} at {position} makes a {bytes}-byte record, larger than {limit} accepts; raise it (kafka.max_record_bytes, and max.message.bytes on the topic), then restart: the checkpoint stays before this change"
            ),
            PipelineError::FlushTimeout { unflushed, waited } => write!(
                f,
                "stopped with {unflushed} changes not acknowledged by Kafka after {waited:?}; the checkpoint stays before them and they are sent again on restart"
            ),
            PipelineError::BrokerLostData { topic, partition, had, got, resume } => write!(
                f,
                "Kafka lost acknowledged data: {topic}/{partition} gave offset {got} after {had} was acknowledged (broker restarted without its storage?). Stopped; to send everything again from the last checkpoint, restart with start.position={}:{} and a new pipeline.name",
                resume.file, resume.pos
            ),
            PipelineError::TopicVanished { topic, resume } => write!(
                f,
                "topic {topic} disappeared from Kafka while binlog2kafka was writing to it (broker restarted without its storage?). Stopped; to send everything again from the last checkpoint, restart with start.position={}:{} and a new pipeline.name",
                resume.file, resume.pos
            ),
            PipelineError::Avro { position, cause } => write!(
                f,
                "{cause}; stopped before the change at {position}, the checkpoint stays before it"
            ),
            PipelineError::Fenced { other } => write!(
                f,
                "fenced: another binlog2kafka ({other}) has taken over this pipeline.name; stopping so that only one writes"
            ),
            PipelineError::TopicCollision { first, first_topic, second, second_topic } => write!(
                f,
                "kafka.topic renders {first} as {first_topic} and {second} as {second_topic}: {}; stopped before the first row of {second}, the checkpoint stays before it. Route the tables apart (a kafka.topic template that keeps their names distinct, or filter.exclude one of them)",
                if first_topic == second_topic {
                    "the same topic, and their rows would mix"
                } else {
                    "topics that differ only by '.' against '_', which Kafka refuses side by side"
                }
            ),
            PipelineError::FencedByBroker { id, during } => write!(
                f,
                "fenced: the broker refused this daemon's write ({during}) because another binlog2kafka took over this pipeline.name (transactional id {id}); stopping, nothing more is written"
            ),
            PipelineError::LeaseLapsed => write!(
                f,
                "stopped while this daemon's hold on the pipeline could not be renewed (paused past its lease, or the commit-log topic unreachable); nothing was sent after it lapsed"
            ),
        }
    }
}

impl std::error::Error for PipelineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PipelineError::Kafka { err, .. } => Some(err),
            _ => None,
        }
    }
}
