//! Reading a compacted topic whole: the one loop behind the checkpoints'
//! requests, the schema history, and the fleet's definitions and status.

use super::{Client, InRecord, KafkaError};

impl Client {
    /// Reads partition 0 of `topic` from `from` (at least its earliest
    /// offset) up to its end as of now, handing each record to `each` in
    /// offset order; returns the offset after the last one read. The one
    /// loop behind every compacted topic the daemon keeps (checkpoints,
    /// schema history, fleet definitions and status).
    pub fn scan(
        &mut self,
        topic: &str,
        from: i64,
        mut each: impl FnMut(&InRecord),
    ) -> Result<i64, KafkaError> {
        let (earliest, latest) = self.offsets(topic, 0)?;
        let mut at = from.max(earliest);
        while at < latest {
            let recs = self.fetch(topic, 0, at, 4 << 20)?;
            let Some(last) = recs.last() else { break };
            // Every record of each batch fetched, even past `latest`: the
            // tests against Tansu saw its end offset stop inside a
            // multi-record batch (a filter on it lost the batch's later
            // records), and a newer record is the newest state anyway.
            for r in &recs {
                each(r);
            }
            at = last.offset + 1;
        }
        Ok(at.max(from))
    }
}
