//! binlog2kafka: reads a MySQL or MariaDB binary log as a replica and writes
//! every row change to Kafka as JSON, in order, resuming exactly where it
//! stopped. The binary (`src/main.rs`) wires these modules together; they are
//! a library so that the integration tests can drive each stage.
//!
//! Data flow: [`pipeline::reader`] → bounded channel → [`pipeline::producer`]
//! → Kafka; [`pipeline::watcher`] releases the acknowledged prefix of the
//! waiting queue and writes it to the commit-log topic ([`checkpoint`]).

pub mod charset;
pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod config;
pub mod event;
pub mod filter;
pub mod fleet;
pub mod format;
pub mod gtid;
pub mod kafka;
pub mod pipeline;
pub mod registry;
pub mod replay;
pub mod source;
pub mod status;
pub mod tls;
pub mod url;
