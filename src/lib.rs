//! binlog2kafka: reads a MySQL or MariaDB binary log as a replica and writes
//! every row change to Kafka as JSON, in order, resuming exactly where it
//! stopped. The binary (`src/main.rs`) wires these modules together; they are
//! a library so that the integration tests can drive each stage.

pub mod kafka;
