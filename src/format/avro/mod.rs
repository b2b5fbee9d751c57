//! Avro for the `debezium` format (`output.encoding=avro`, issue 24, being
//! built): the binary encoding, the schemas as Kafka Connect's Avro
//! converter writes Debezium's, and the Confluent wire format. A library
//! without threads or I/O; the registry client is a stage of its own.

pub mod binary;
pub mod columns;
pub mod envelope;
pub mod schema;

/// The Confluent wire format's header: magic byte 0, then the schema id,
/// 4 bytes big-endian; the Avro body follows.
pub fn frame_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_starts_with_magic_zero_and_the_big_endian_id() {
        let mut out = Vec::new();
        super::frame_header(&mut out, 0x0102_0304);
        assert_eq!(out, [0, 1, 2, 3, 4]);
    }
}
