//! Encoders: a row change in, a Kafka key and value out.
//!
//! Only Maxwell's JSON exists today; Debezium and Canal encoders will sit
//! beside it behind the same function shape.

pub mod json;
pub mod maxwell;
pub mod value;
pub mod wkt;
