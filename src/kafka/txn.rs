//! Kafka's transactional id, used for one thing: fencing.
//!
//! A pipeline's daemons share the transactional id `binlog2kafka-<name>`.
//! InitProducerId on it gives the newest daemon the pipeline's producer id
//! with an epoch one higher than any before; the broker's transaction
//! coordinator refuses every older epoch from then on (PRODUCER_FENCED).
//!
//! The data is *not* written in transactions: every consumer, whatever its
//! isolation level, sees each row once and at once, and a crash leaves no
//! aborted records for a `read_uncommitted` reader to see twice. Instead,
//! before a daemon first writes a partition (its data partitions, the
//! commit-log partition) it opens a transaction on that partition and
//! aborts it at once. The abort marker the broker writes there carries the
//! new epoch, and from then on that partition's leader refuses the old
//! epoch's idempotent batches (INVALID_PRODUCER_EPOCH). So a predecessor
//! that was paused (SIGSTOP, a VM migration) and wakes up cannot write one
//! more record where its successor writes, and it learns so from the
//! broker: it stops, saying it was fenced.
//!
//! What the predecessor wrote before a partition was fenced is a prefix of
//! that partition (partitions are written in order), and the successor
//! reads the partition's tail only after fencing it: it skips what is there
//! already. Hence no record is stale-after-new and none is there twice.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    add_partitions_to_txn_request::AddPartitionsToTxnTopic, AddPartitionsToTxnRequest, ApiKey,
    EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::{Client, KafkaError, Producer};

/// The pipeline's transactional id and the producer id and epoch this
/// daemon holds under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transactional {
    pub id: String,
    pub producer: Producer,
}

/// CONCURRENT_TRANSACTIONS (the previous abort's markers are still being
/// written), COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
/// NOT_COORDINATOR: wait a moment and ask again, the coordinator found anew
/// for the last two.
fn coordinator_busy(code: i16) -> bool {
    matches!(code, 14 | 15 | 16 | 51)
}

impl Client {
    /// Whether the broker offers what fencing needs (FindCoordinator,
    /// InitProducerId, AddPartitionsToTxn, EndTxn).
    pub fn offers_transactions(&mut self) -> Result<bool, KafkaError> {
        self.with_conn(None, |c| {
            Ok([
                ApiKey::FindCoordinator,
                ApiKey::InitProducerId,
                ApiKey::AddPartitionsToTxn,
                ApiKey::EndTxn,
            ]
            .iter()
            .all(|k| c.has(*k)))
        })
    }

    /// Asks any broker which node coordinates `key` (`key_type` 0: a
    /// group, 1: a transactional id): its error code and node, whose
    /// address is remembered when there is no error.
    pub(super) fn find_coordinator(
        &mut self,
        key_type: i8,
        key: &str,
    ) -> Result<(i16, i32), KafkaError> {
        let key = StrBytes::from_string(key.to_string());
        let resp = self.with_conn(None, |c| {
            // v4 and up ask for a list of keys, older versions for one.
            let req = FindCoordinatorRequest::default().with_key_type(key_type);
            let req = if c.version(ApiKey::FindCoordinator) >= 4 {
                req.with_coordinator_keys(vec![key])
            } else {
                req.with_key(key)
            };
            c.send(ApiKey::FindCoordinator, &req)
        })?;
        // v4 and up answer in a list, one per key asked.
        let (code, node, host, port) = match resp.coordinators.first() {
            Some(c) => (c.error_code, c.node_id.0, c.host.to_string(), c.port),
            None => (
                resp.error_code,
                resp.node_id.0,
                resp.host.to_string(),
                resp.port,
            ),
        };
        if code == 0 {
            self.brokers.insert(node, format!("{host}:{port}"));
        }
        Ok((code, node))
    }

    /// The node that coordinates transactional id `id`, found once.
    fn coordinator(&mut self, id: &str) -> Result<i32, KafkaError> {
        if let Some(node) = self.coordinator {
            return Ok(node);
        }
        let (code, node) = self.find_coordinator(1, id)?;
        if code != 0 {
            return Err(KafkaError::Broker {
                op: format!("finding the transaction coordinator of {id}"),
                code,
                detail: String::new(),
            });
        }
        self.coordinator = Some(node);
        Ok(node)
    }

    /// Runs `call` on the coordinator of `id` until it is not busy, for up to
    /// the client's timeout.
    fn on_coordinator<T>(
        &mut self,
        id: &str,
        mut call: impl FnMut(&mut Client, i32) -> Result<T, KafkaError>,
    ) -> Result<T, KafkaError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let node = self.coordinator(id)?;
            match call(self, node) {
                Err(KafkaError::Broker { code, .. })
                    if coordinator_busy(code) && Instant::now() < deadline =>
                {
                    if code == 15 || code == 16 {
                        self.coordinator = None;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// Takes transactional id `id`: its producer id, with an epoch above
    /// every earlier holder's, who is fenced from now on. `None` where the
    /// broker offers no transactions.
    pub fn init_transactional(&mut self, id: &str) -> Result<Option<Transactional>, KafkaError> {
        if !self.offers_transactions()? {
            return Ok(None);
        }
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.to_string()))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let resp = self.on_coordinator(id, |c, node| {
            let resp = c.with_conn(Some(node), |conn| conn.send(ApiKey::InitProducerId, &req))?;
            match resp.error_code {
                0 => Ok(resp),
                code => Err(KafkaError::Broker {
                    op: format!("InitProducerId for transactional id {id}"),
                    code,
                    detail: String::new(),
                }),
            }
        })?;
        Ok(Some(Transactional {
            id: id.to_string(),
            producer: Producer {
                id: resp.producer_id.0,
                epoch: resp.producer_epoch,
            },
        }))
    }

    /// Fences `partitions` of `topic` against every older epoch of `txn`:
    /// adds them to a transaction and aborts it, so the broker writes an
    /// abort marker with this epoch into each. A fenced holder gets
    /// PRODUCER_FENCED here.
    pub fn fence(
        &mut self,
        txn: &Transactional,
        topic: &str,
        partitions: &[i32],
    ) -> Result<(), KafkaError> {
        let tid = TransactionalId(StrBytes::from_string(txn.id.clone()));
        let add = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(tid.clone())
            .with_v3_and_below_producer_id(ProducerId(txn.producer.id))
            .with_v3_and_below_producer_epoch(txn.producer.epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions.to_vec())]);
        let id = txn.id.clone();
        self.on_coordinator(&id, |c, node| {
            let resp = c.with_conn(Some(node), |conn| {
                conn.send(ApiKey::AddPartitionsToTxn, &add)
            })?;
            let mut code = resp.error_code;
            for t in &resp.results_by_topic_v3_and_below {
                for p in &t.results_by_partition {
                    if p.partition_error_code != 0 && code == 0 {
                        code = p.partition_error_code;
                    }
                }
            }
            match code {
                0 => Ok(()),
                code => Err(KafkaError::Broker {
                    op: format!("AddPartitionsToTxn ({topic}, fencing earlier holders of {id})"),
                    code,
                    detail: String::new(),
                }),
            }
        })?;
        let end = EndTxnRequest::default()
            .with_transactional_id(tid)
            .with_producer_id(ProducerId(txn.producer.id))
            .with_producer_epoch(txn.producer.epoch)
            .with_committed(false);
        self.on_coordinator(&id, |c, node| {
            let resp = c.with_conn(Some(node), |conn| conn.send(ApiKey::EndTxn, &end))?;
            match resp.error_code {
                0 => Ok(()),
                code => Err(KafkaError::Broker {
                    op: format!("EndTxn ({topic}, fencing earlier holders of {id})"),
                    code,
                    detail: String::new(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_coordinator_is_asked_again_and_a_fenced_producer_is_not() {
        for code in [14, 15, 16, 51] {
            assert!(coordinator_busy(code), "code {code}");
        }
        for code in [47, 90, 53, 48] {
            assert!(!coordinator_busy(code), "code {code}");
        }
        let fenced = KafkaError::Broker {
            op: "produce".into(),
            code: 90,
            detail: String::new(),
        };
        assert!(fenced.is_fenced());
        assert!(!fenced.is_retriable());
        // A missing ACL on the transactional id is no fencing, and the
        // daemon falls back to its lease instead of stopping.
        let denied = KafkaError::Broker {
            op: "InitProducerId".into(),
            code: 53,
            detail: String::new(),
        };
        assert!(denied.is_authorization() && !denied.is_fenced());
    }
}
