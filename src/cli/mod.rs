//! The commands: `run` the pipeline ([`run`]), `check` the configuration
//! and the servers ([`check`]), and the ones that act on a pipeline from
//! outside ([`admin`]: `reset`, `snapshot`, `replay`). Each returns typed
//! errors; `main` turns them into one line and an exit code.

mod admin;
mod check;
mod fleet;
mod run;

pub use admin::{replay_settings, replay_to_kafka, request_snapshot, reset};
pub use check::{check, CheckReport};
pub use fleet::{pipeline_command, run_fleet, PipelineCommand};
pub use run::{run, RunSummary, Signals};

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::checkpoint;
use crate::config::{Config, ConfigError};
use crate::event::Position;
use crate::kafka::{Client, ClientConfig, KafkaError};
use crate::pipeline::handle::{self, Handle};
use crate::pipeline::schema_store;
use crate::pipeline::{producer, reader, watcher, PipelineError, Shared};
use crate::source::history::follow::Follower;
use crate::source::{self, ServerInfo, SourceError, Target};
use crossbeam_channel::Receiver;

/// Every way the daemon can fail, one variant per boundary.
#[derive(Debug)]
pub enum AppError {
    Config(ConfigError),
    Source(SourceError),
    Kafka {
        during: String,
        err: KafkaError,
    },
    Pipeline(PipelineError),
    Replay(crate::replay::ReplayError),
    /// The fleet's member loop stopped (a pipeline's failure does not).
    Fleet(crate::fleet::FleetError),
    /// The status page cannot be served (`http.listen`).
    Status(String),
    /// A command that would harm a running pipeline, refused.
    Refused(String),
    /// SIGTERM or SIGINT before the pipeline started: nothing to flush.
    Interrupted,
    /// The stop did not finish within `pipeline.shutdown_timeout_ms`.
    StopTimeout {
        ms: u128,
        waiting_for: String,
    },
    /// Another daemon is running this pipeline.
    Locked {
        pipeline: String,
        owner: String,
        age_ms: u64,
    },
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Config(e) => write!(f, "{e}"),
            AppError::Source(e) => write!(f, "{e}"),
            AppError::Kafka { during, err } => write!(f, "{during}: {err}"),
            AppError::Pipeline(e) => write!(f, "{e}"),
            AppError::Replay(e) => write!(f, "{e}"),
            AppError::Fleet(e) => write!(f, "{e}"),
            AppError::Status(e) | AppError::Refused(e) => write!(f, "{e}"),
            AppError::Interrupted => write!(f, "stopped by a signal during start-up"),
            AppError::StopTimeout { ms, waiting_for } => write!(
                f,
                "stop timed out after {ms} ms (pipeline.shutdown_timeout_ms) waiting for {waiting_for}; changes not acknowledged stay after the checkpoint and are sent again on restart"
            ),
            AppError::Locked { pipeline, owner, age_ms } => write!(
                f,
                "pipeline '{pipeline}' is already running ({owner}, last heartbeat {:.1} s ago); two daemons must not share a pipeline.name: stop the other one or choose another name",
                *age_ms as f64 / 1000.0
            ),
        }
    }
}

/// The one-line message already says everything; `source()` gives the
/// boundary's own error to whoever wants the chain (a test, a log at debug).
impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Config(e) => Some(e),
            AppError::Source(e) => Some(e),
            AppError::Kafka { err, .. } => Some(err),
            AppError::Pipeline(e) => Some(e),
            AppError::Replay(e) => Some(e),
            AppError::Fleet(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        AppError::Config(e)
    }
}
impl From<SourceError> for AppError {
    fn from(e: SourceError) -> Self {
        AppError::Source(e)
    }
}
impl From<PipelineError> for AppError {
    fn from(e: PipelineError) -> Self {
        AppError::Pipeline(e)
    }
}

pub(crate) fn kafka(during: &str) -> impl FnOnce(KafkaError) -> AppError + '_ {
    move |err| AppError::Kafka {
        during: during.to_string(),
        err,
    }
}

pub fn kafka_client(cfg: &Config, role: &str) -> Result<Client, KafkaError> {
    let tls = match &cfg.kafka_tls {
        None => None,
        Some(t) => Some(t.build().map_err(|detail| KafkaError::Tls {
            broker: cfg.brokers.join(","),
            detail,
        })?),
    };
    Client::connect(ClientConfig {
        tls,
        sasl: cfg.kafka_sasl.clone(),
        brokers: cfg.brokers.clone(),
        client_id: format!("{}-{role}", cfg.client_id),
        timeout: cfg.kafka_timeout,
        request_timeout: cfg.kafka_timeout,
        compression: cfg.compression,
    })
}

pub(crate) fn start_text(p: &crate::config::StartPosition) -> String {
    match p {
        crate::config::StartPosition::Earliest => "earliest".to_string(),
        crate::config::StartPosition::Latest => "latest".to_string(),
        crate::config::StartPosition::At { file, pos } => format!("{file}:{pos}"),
        crate::config::StartPosition::Gtid(s) => format!("gtid:{s}"),
    }
}
