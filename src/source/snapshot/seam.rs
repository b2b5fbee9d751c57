//! Where snapshot chunks join the binlog stream: the reader's side of a
//! snapshot. The reader stays the one place where order is decided; this is
//! the state it keeps for that.
//!
//! # Why a chunk's surviving rows are exact
//!
//! A chunk is read in a read view whose binlog point is known: on MariaDB
//! (and Percona Server) `START TRANSACTION WITH CONSISTENT SNAPSHOT` pairs
//! the view with `binlog_snapshot_file/position` exactly, every transaction
//! before that point visible and none after it ([`Horizon::At`]). On MySQL,
//! whose binlog position can run ahead of what a new view sees, the view is
//! paired with the GTID set executed before it opened (all visible) and the
//! binlog end read after (nothing later visible) ([`Horizon::Gtids`]).
//!
//! The reader records, for each table being snapshotted, the key of every
//! row a binlog event touches (before and after images) from before the
//! first chunk's view opened (the [`Watch`] handshake). It emits a chunk at
//! the first transaction boundary at or after the view's high point, and
//! drops the chunk rows whose key it recorded. For a row it keeps, no
//! recorded event touched the key, so every change to it up to the
//! emission point was visible to the view: the copy is the row's state
//! there. For a row it drops, the stream itself has carried an event with
//! the key's whole newer state (row images are FULL), before or after this
//! point, so the copy would only go back in time. A key inserted after the
//! view is not in the copy and comes with its insert. Recorded keys are
//! forgotten once a chunk's view saw their transaction: every later view
//! sees it too.
//!
//! None of this holds for a view that has not seen a transaction the
//! stream carried before the handshake: servers send a transaction to
//! replicas a moment before the storage engine commits it. The reader
//! answers each handshake with where it stands (a [`Floor`]), and a view
//! that has not seen everything before it is opened again
//! ([`Horizon::covers`]).
//!
//! A table without a usable key cannot drop rows by key: its rows are read
//! in one view and emitted exactly at the view's point, the reader paused
//! there while they stream ([`crate::source::snapshot`]); MySQL has no
//! exact point, and such tables are refused there.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::plan::{Plan, TablePlan};
use crate::event::{Cell, RowImage, TableSchema};
use crate::gtid::MysqlSet;
use crate::source::schema::real_type;

/// Where a read view stands in the binlog.
#[derive(Debug, Clone)]
pub enum Horizon {
    /// Everything before this point is visible, nothing after it.
    At { file: String, pos: u64 },
    /// Visible: at least `executed`; nothing after `file:pos`.
    Gtids {
        executed: Arc<MysqlSet>,
        file: String,
        pos: u64,
    },
}

impl Horizon {
    fn point(&self) -> (&str, u64) {
        match self {
            Horizon::At { file, pos } | Horizon::Gtids { file, pos, .. } => (file, *pos),
        }
    }

    /// Whether the reader, at a boundary at `file:pos`, is at or past the
    /// point after which the view saw nothing.
    pub fn reached(&self, file: &str, pos: u64) -> bool {
        let (hf, hp) = self.point();
        match file_order(file, hf) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => pos >= hp,
        }
    }

    /// Whether the view saw every transaction before `floor`, the point
    /// the reader had read to when it answered the handshake. Not a given:
    /// a server sends a transaction to its replicas once it is in the
    /// binlog, a moment before its storage engine commits it, and a view
    /// opened in that moment has a point before the transaction and does
    /// not see it. The reader may have emitted it already, so a chunk of
    /// that view would carry the row back to its older state (a keyless
    /// table's whole copy would lose the change); such a view is opened
    /// again.
    pub fn covers(&self, floor: &Floor) -> bool {
        match self {
            Horizon::At { file, pos } => match file_order(file, &floor.file) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => *pos >= floor.pos,
            },
            Horizon::Gtids { executed, .. } => match floor.gtids.as_deref() {
                Some(crate::gtid::GtidState::Mysql(read)) => read.minus(executed).is_empty(),
                // MySQL without a GTID state cannot tell; such a server
                // has no view point at all and is refused before this.
                _ => true,
            },
        }
    }

    /// Whether the view saw the transaction stamped `s`.
    fn saw(&self, s: &Stamp) -> bool {
        match self {
            Horizon::At { file, pos } => match file_order(&s.file, file) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => s.pos < *pos,
            },
            Horizon::Gtids { executed, .. } => s.gtid.as_deref().is_some_and(|g| {
                let parts: Vec<&str> = g.split(':').collect();
                match parts.as_slice() {
                    [uuid, gno] => gno.parse().is_ok_and(|n| executed.contains(uuid, "", n)),
                    [uuid, tag, gno] => gno.parse().is_ok_and(|n| executed.contains(uuid, tag, n)),
                    _ => false,
                }
            }),
        }
    }
}

/// Binlog files of one server sort by their numeric extension; a longer
/// one is newer (`.999999` then `.1000000`).
pub fn file_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

/// Where the reader stood when it answered a `Watch` or `Pause`: every
/// transaction before this point may be out already, so the views that
/// join the stream from then on must have seen them ([`Horizon::covers`]).
#[derive(Debug, Clone)]
pub struct Floor {
    pub file: String,
    pub pos: u64,
    /// The GTID state after the last transaction read, where known.
    pub gtids: Option<Arc<crate::gtid::GtidState>>,
}

/// The transaction a recorded key came from.
#[derive(Debug, Clone)]
struct Stamp {
    file: Arc<str>,
    pos: u64,
    gtid: Option<Arc<str>>,
}

/// A chunk of one table, read in one view.
#[derive(Debug)]
pub struct Chunk {
    pub epoch: u64,
    pub schema: Arc<TableSchema>,
    /// Rows in key order, each with its key (see [`key_of`]).
    pub rows: Vec<(RowImage, Vec<u8>)>,
    pub horizon: Horizon,
    /// The plan once this chunk is out.
    pub plan_after: Arc<Plan>,
    pub first_of_table: bool,
    pub last_of_table: bool,
    /// The table's plan entry as of this chunk (its reason and place).
    pub table: TablePlan,
}

/// Rows of a keyless table, streamed while the reader waits at `horizon`.
pub enum Streamed {
    Rows(Vec<RowImage>),
    Done,
}

/// What the snapshot thread tells the reader.
pub enum ToReader {
    /// Record the keys binlog events touch in this table from now on, then
    /// reply with where the stream is.
    Watch {
        epoch: u64,
        schema: Arc<TableSchema>,
        key_columns: Vec<String>,
        /// The table's first chunk is still to come: Maxwell's
        /// bootstrap-start goes out here, before any change it could
        /// leave out of a chunk.
        first: bool,
        reply: Sender<Floor>,
    },
    Chunk(Chunk),
    /// Take this plan at the next boundary (a request taken), or at
    /// `after` once the stream reaches it, then reply. `after` is for a
    /// table that is no longer on the server: only the stream can say
    /// whether a RENAME (which the reader follows) or a DROP took it, so
    /// the plan without it waits for the binlog point at which it was found
    /// missing, and a RENAME met on the way supersedes it.
    Plan {
        epoch: u64,
        plan: Arc<Plan>,
        after: Option<Horizon>,
        reply: Sender<()>,
    },
    /// Stop at the next boundary and reply with it; a `Stream` or `Resume`
    /// follows.
    Pause {
        epoch: u64,
        reply: Sender<Floor>,
    },
    /// Go on after a `Pause` without rows.
    Resume {
        epoch: u64,
    },
    /// A keyless table's rows, to emit at exactly their view's point.
    Stream(Streaming),
}

/// A keyless table read in one view, its rows on their way.
pub struct Streaming {
    pub epoch: u64,
    pub schema: Arc<TableSchema>,
    pub horizon: Horizon,
    pub rows: Receiver<Streamed>,
    pub plan_after: Arc<Plan>,
    pub table: TablePlan,
}

impl ToReader {
    pub fn epoch(&self) -> u64 {
        match self {
            ToReader::Watch { epoch, .. }
            | ToReader::Plan { epoch, .. }
            | ToReader::Pause { epoch, .. }
            | ToReader::Resume { epoch } => *epoch,
            ToReader::Stream(s) => s.epoch,
            ToReader::Chunk(c) => c.epoch,
        }
    }
}

/// One watched table: its key columns and the keys touched since.
struct Watched {
    key_columns: Vec<String>,
    /// The binlog schema the indexes below were found in.
    indexes_for: Option<(Arc<TableSchema>, Vec<usize>)>,
    touched: HashMap<Vec<u8>, Stamp>,
}

/// The reader's snapshot state.
pub struct Seam {
    pub rx: Receiver<ToReader>,
    watched: HashMap<(String, String), Watched>,
    /// Chunks read, waiting for the stream to reach their view's point.
    pub waiting: VecDeque<Chunk>,
}

impl Seam {
    pub fn new(rx: Receiver<ToReader>) -> Seam {
        Seam {
            rx,
            watched: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    pub fn watch(&mut self, database: String, table: String, key_columns: Vec<String>) {
        self.watched
            .entry((database, table))
            .or_insert_with(|| Watched {
                key_columns,
                indexes_for: None,
                touched: HashMap::new(),
            });
    }

    pub fn unwatch(&mut self, database: &str, table: &str) {
        self.watched
            .remove(&(database.to_string(), table.to_string()));
    }

    /// Stops watching tables the plan no longer has (dropped, skipped).
    pub fn keep_only(&mut self, plan: &Plan) {
        self.watched.retain(|(d, t), _| {
            plan.tables
                .iter()
                .any(|p| p.database == *d && p.table == *t)
        });
    }

    /// Forgets everything: the source server changed (failover).
    pub fn reset(&mut self) {
        self.watched.clear();
        self.waiting.clear();
    }

    /// Notes the keys a binlog row touches, when its table is watched. An
    /// error when the row's columns do not name the snapshot's key: its
    /// keys cannot be known, so no chunk could be proved exact.
    pub fn on_row(
        &mut self,
        schema: &Arc<TableSchema>,
        images: [Option<&RowImage>; 2],
        file: &Arc<str>,
        pos: u64,
        gtid: &Option<Arc<str>>,
    ) -> Result<(), String> {
        let Some(w) = self
            .watched
            .get_mut(&(schema.database.clone(), schema.table.clone()))
        else {
            return Ok(());
        };
        if w.indexes_for
            .as_ref()
            .is_none_or(|(s, _)| !Arc::ptr_eq(s, schema))
        {
            let idx: Option<Vec<usize>> = w
                .key_columns
                .iter()
                .map(|k| schema.columns.iter().position(|c| c.name == *k))
                .collect();
            let Some(idx) = idx else {
                return Err(format!(
                    "the binlog's columns of {}.{} do not include its snapshot key ({}): renamed while it was snapshotted? The snapshot cannot be proved exact; restart to read the table again",
                    schema.database,
                    schema.table,
                    w.key_columns.join(", ")
                ));
            };
            w.indexes_for = Some((schema.clone(), idx));
        }
        let idx = &w.indexes_for.as_ref().expect("set above").1;
        for image in images.into_iter().flatten() {
            let key = key_of(schema, image, idx);
            w.touched.insert(
                key,
                Stamp {
                    file: file.clone(),
                    pos,
                    gtid: gtid.clone(),
                },
            );
        }
        Ok(())
    }

    /// Drops the rows of `chunk` whose keys the stream touched, and forgets
    /// the keys every later view will see.
    pub fn survivors(&mut self, chunk: &mut Chunk) -> usize {
        let name = (chunk.schema.database.clone(), chunk.schema.table.clone());
        let Some(w) = self.watched.get_mut(&name) else {
            return 0;
        };
        let before = chunk.rows.len();
        if !w.touched.is_empty() {
            chunk.rows.retain(|(_, k)| !w.touched.contains_key(k));
            let h = &chunk.horizon;
            w.touched.retain(|_, s| !h.saw(s));
        }
        before - chunk.rows.len()
    }

    /// Keys recorded and not yet forgotten, over all watched tables.
    pub fn recorded(&self) -> usize {
        self.watched.values().map(|w| w.touched.len()).sum()
    }
}

/// A row's key as comparable bytes: each key column's value as the binlog
/// holds it, length-prefixed. BINARY(n) values lose their trailing 0x00
/// padding, as the binlog writes them.
pub fn key_of(schema: &TableSchema, image: &RowImage, idx: &[usize]) -> Vec<u8> {
    let mut k = Vec::with_capacity(idx.len() * 12);
    for &i in idx {
        match image.cells.get(i) {
            Some(Cell::Data { .. }) => {
                let mut b = image.cell(i).unwrap_or_default();
                let col = &schema.columns[i];
                if real_type(col) == mysql::consts::ColumnType::MYSQL_TYPE_STRING
                    && col.charset == 63
                {
                    while let [rest @ .., 0] = b {
                        b = rest;
                    }
                }
                k.extend_from_slice(&(b.len() as u32).to_le_bytes());
                k.extend_from_slice(b);
            }
            Some(Cell::Json(d)) => {
                k.extend_from_slice(&(d.len() as u32).to_le_bytes());
                k.extend_from_slice(d);
            }
            _ => k.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ColumnSchema;
    use mysql::consts::ColumnType;

    fn schema() -> Arc<TableSchema> {
        let col = |name: &str, t| ColumnSchema {
            name: name.into(),
            col_type: t,
            meta: Vec::new(),
            unsigned: false,
            charset: 0,
            labels: Vec::new(),
            json: false,
            visibility: Default::default(),
        };
        Arc::new(TableSchema {
            database: "d".into(),
            table: "t".into(),
            columns: vec![
                col("id", ColumnType::MYSQL_TYPE_LONG),
                col("v", ColumnType::MYSQL_TYPE_LONG),
            ],
            primary_key: vec![0],
            names_from: crate::event::NameSource::TableMap,
            rendered: Default::default(),
        })
    }

    fn row(id: u32, v: u32) -> RowImage {
        let mut buf = id.to_le_bytes().to_vec();
        buf.extend_from_slice(&v.to_le_bytes());
        RowImage {
            buf: buf.into(),
            cells: vec![
                Cell::Data { start: 0, end: 4 },
                Cell::Data { start: 4, end: 8 },
            ]
            .into(),
        }
    }

    fn chunk(s: &Arc<TableSchema>, ids: &[u32], at: u64) -> Chunk {
        Chunk {
            epoch: 0,
            schema: s.clone(),
            rows: ids
                .iter()
                .map(|&i| (row(i, 0), key_of(s, &row(i, 0), &[0])))
                .collect(),
            horizon: Horizon::At {
                file: "b.000002".into(),
                pos: at,
            },
            plan_after: Arc::new(Plan::default()),
            first_of_table: true,
            last_of_table: false,
            table: TablePlan {
                database: "d".into(),
                table: "t".into(),
                reason: super::super::plan::Reason::Initial,
                condition: None,
                after: None,
                rows: 0,
                first: true,
                last: true,
                started: false,
            },
        }
    }

    #[test]
    fn chunk_rows_whose_keys_the_stream_touched_are_dropped() {
        let s = schema();
        let (_tx, rx) = crossbeam_channel::bounded(1);
        let mut seam = Seam::new(rx);
        seam.watch("d".into(), "t".into(), vec!["id".into()]);
        let f: Arc<str> = "b.000002".into();
        // Before the view (seen by it) and after it (not seen).
        seam.on_row(&s, [Some(&row(2, 9)), None], &f, 100, &None)
            .unwrap();
        seam.on_row(&s, [Some(&row(3, 1)), Some(&row(7, 1))], &f, 900, &None)
            .unwrap();
        let mut c = chunk(&s, &[1, 2, 3, 4, 7], 500);
        assert_eq!(seam.survivors(&mut c), 3);
        let kept: Vec<Vec<u8>> = c.rows.iter().map(|(_, k)| k.clone()).collect();
        assert_eq!(
            kept,
            vec![key_of(&s, &row(1, 0), &[0]), key_of(&s, &row(4, 0), &[0])]
        );
        assert_eq!(
            seam.recorded(),
            2,
            "the key the view saw is forgotten, the later ones kept"
        );
    }

    #[test]
    fn the_horizon_orders_files_by_their_number() {
        let h = Horizon::At {
            file: "b.999999".into(),
            pos: 400,
        };
        assert!(!h.reached("b.999999", 399));
        assert!(h.reached("b.999999", 400));
        assert!(h.reached("b.1000000", 4));
        assert!(!h.reached("b.999998", 9000));
    }

    #[test]
    fn a_mysql_view_saw_what_its_gtid_set_holds() {
        let executed =
            Arc::new(MysqlSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10").unwrap());
        let h = Horizon::Gtids {
            executed,
            file: "b.000001".into(),
            pos: 1000,
        };
        let stamp = |g: &str| Stamp {
            file: "b.000001".into(),
            pos: 10,
            gtid: Some(g.into()),
        };
        assert!(h.saw(&stamp("3e11fa47-71ca-11e1-9e33-c80aa9429562:10")));
        assert!(!h.saw(&stamp("3e11fa47-71ca-11e1-9e33-c80aa9429562:11")));
    }
}
