//! Topics: made (or checked) on first use, their partition counts, and
//! fencing a partition before this run writes to it.

use super::*;

/// What picks a row's partition (`kafka.partition_by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionBy {
    PrimaryKey,
    Table,
    Database,
    Column(String),
    /// Spreads load; gives up per-key order.
    Random,
}

/// The message key (`kafka.key_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    Maxwell,
    Debezium,
    None,
}

impl KeyFormat {
    /// What each format's own consumers expect (`auto`): Debezium's key
    /// struct, no key for canal (its Kafka producer sends none).
    pub fn default_for(format: Format) -> KeyFormat {
        match format {
            Format::Maxwell => KeyFormat::Maxwell,
            Format::Debezium => KeyFormat::Debezium,
            Format::Canal => KeyFormat::None,
        }
    }
}

/// The topic a row of `database`.`table` goes to under `template`: names
/// are filled in with the characters a topic cannot hold replaced by `_`,
/// as Debezium does.
pub fn render_topic(template: &str, database: &str, table: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut out = template.replace("{database}", &clean(database));
    if out.contains("{table}") {
        out = out.replace("{table}", &clean(table));
    }
    out.truncate(249);
    out
}

impl Producer {
    /// The index of `name` in `topics`, creating the topic (with
    /// `kafka.topic_partitions` partitions) on first use.
    pub(super) fn topic(&mut self, name: &str, partitions: i32) -> Result<usize, PipelineError> {
        if let Some(&i) = self.topic_index.get(name) {
            return Ok(i);
        }
        // The connection may carry no other request with answers pending.
        self.settle()?;
        let (mut attempt, mut stop_deadline) = (0u32, None);
        let n = loop {
            match self.partition_count(name, partitions) {
                Ok(n) => break n,
                Err(e) if e.is_retriable() => {
                    let what = format!("cannot read or create topic {name}");
                    self.wait_out(&e, &what, 0, &mut attempt, &mut stop_deadline)?;
                }
                Err(err) => {
                    return Err(PipelineError::Kafka {
                        during: format!("reading or creating topic {name}"),
                        err,
                    })
                }
            }
        };
        self.fence(name, n)?;
        self.back_from_outage();
        self.topics.push(TopicState {
            name: name.to_string(),
            batches: (0..n).map(|_| PartitionBatch::default()).collect(),
            last_offsets: vec![-1; n],
            sequences: vec![0; n],
        });
        self.topic_index
            .insert(name.to_string(), self.topics.len() - 1);
        Ok(self.topics.len() - 1)
    }

    /// Fences every partition of `name` against the pipeline's earlier
    /// holders before this daemon reads or writes any of them: from here on
    /// the broker refuses a paused predecessor's batches there, so what it
    /// wrote is a prefix this daemon reads and does not write again.
    pub(super) fn fence(&mut self, name: &str, partitions: usize) -> Result<(), PipelineError> {
        let Some(txn) = self.fencing.clone() else {
            return Ok(());
        };
        let all: Vec<i32> = (0..partitions as i32).collect();
        let (mut attempt, mut stop_deadline) = (0u32, None);
        loop {
            match self.client.fence(&txn, name, &all) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_fenced() => {
                    return Err(PipelineError::FencedByBroker {
                        id: txn.id.clone(),
                        during: format!("fencing topic {name}"),
                    })
                }
                Err(e)
                    if e.is_retriable()
                        || matches!(
                            e,
                            KafkaError::Broker {
                                code: 14 | 15 | 16 | 51,
                                ..
                            }
                        ) =>
                {
                    let what = format!("cannot fence topic {name} against earlier daemons");
                    self.wait_out(&e, &what, 0, &mut attempt, &mut stop_deadline)?;
                }
                Err(err) => {
                    return Err(PipelineError::Kafka {
                        during: format!(
                            "fencing topic {name} against earlier daemons of this pipeline"
                        ),
                        err,
                    })
                }
            }
        }
    }

    /// The topic of `table` under a `{database}`/`{table}` template. Two
    /// tables whose names render to one topic (`c`.`a.b` and `c.a`.`b`;
    /// `a b` and `a_b`), or to two that Kafka itself refuses side by side
    /// (they differ only by `.` against `_`), stop the pipeline at the
    /// second table's first row instead of mixing them.
    pub(super) fn table_topic(&mut self, table: &Arc<TableSchema>) -> Result<usize, PipelineError> {
        let ptr = Arc::as_ptr(table) as usize;
        if let Some((_, i)) = self.by_schema.get(&ptr) {
            return Ok(*i);
        }
        let name = render_topic(&self.cfg.topic, &table.database, &table.table);
        // What the template tells apart: a template without {table} puts a
        // database's tables in one topic on purpose.
        let source = if self.cfg.topic.contains("{table}") {
            (table.database.clone(), Some(table.table.clone()))
        } else {
            (table.database.clone(), None)
        };
        let shown = |s: &(String, Option<String>)| match &s.1 {
            Some(t) => format!("`{}`.`{t}`", s.0),
            None => format!("database `{}`", s.0),
        };
        let folded = name.replace('.', "_");
        match self.topic_owners.get(&folded) {
            Some((other, other_topic)) if *other != source => {
                // Everything before this row goes out first, so the
                // checkpoint ends right before it.
                let (first, first_topic) = (shown(other), other_topic.clone());
                self.flush(true)?;
                return Err(PipelineError::TopicCollision {
                    first,
                    first_topic,
                    second: shown(&source),
                    second_topic: name,
                });
            }
            Some(_) => {}
            None => {
                self.topic_owners.insert(folded, (source, name.clone()));
            }
        }
        let i = self.topic(&name, self.cfg.topic_partitions)?;
        if self.by_schema.len() > 10_000 {
            self.by_schema.clear();
        }
        self.by_schema.insert(ptr, (table.clone(), i));
        Ok(i)
    }

    /// `name`'s partition count, creating the topic if it is missing.
    pub(super) fn partition_count(
        &mut self,
        name: &str,
        partitions: i32,
    ) -> Result<usize, KafkaError> {
        if let Some(n) = self.client.partitions(name)? {
            return Ok(n.max(1));
        }
        self.client
            .create_topic(name, partitions, self.cfg.replication_factor, &[])?;
        log::info!("created topic {name} (partitions: {partitions})");
        Ok(self
            .client
            .partitions(name)?
            .unwrap_or(partitions as usize)
            .max(1))
    }
}
