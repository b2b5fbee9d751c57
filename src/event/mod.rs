//! The plain data that flows between the pipeline's threads: a row change,
//! the table it belongs to, and the binlog position it releases.

pub mod column;
pub mod plan;
use std::fmt;
use std::sync::Arc;

use mysql::consts::ColumnType;

/// Where a restart resumes: the start of a transaction plus how many of its
/// rows are already released. A restart re-reads the transaction's table maps
/// and skips `rows` rows, so duplicates after a crash are bounded by what was
/// in flight, never by the size of the transaction. `rows == 0` names a
/// transaction boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: Arc<str>,
    /// Byte offset of the transaction's first event (its GTID or BEGIN).
    pub pos: u64,
    /// Rows of that transaction already released.
    pub rows: u64,
    /// The GTID of the transaction at `pos`, when the server has GTIDs.
    pub gtid: Option<Arc<str>>,
    /// The GTID state at `pos` (before the transaction there): how another
    /// server of the cluster finds this place ([`crate::gtid`]). `None`
    /// where the server has no GTIDs or it is not known yet.
    pub state: Option<Arc<crate::gtid::GtidState>>,
    /// Which binlog `file` is on its server (its first event's server id
    /// and time), when known: a restart compares it with the server's file
    /// of that name.
    pub file_id: Option<FileId>,
    /// The snapshot work left as of this position
    /// ([`plan`]); `None` where none was ever
    /// planned.
    pub snapshot: Option<Arc<plan::Plan>>,
    /// The schema history's version as of this position (0: none kept):
    /// a restart recovers the definitions of that version.
    pub schema: u64,
}

impl Position {
    /// A transaction boundary at `file:pos`, nothing else known yet.
    pub fn at(file: &str, pos: u64) -> Position {
        Position {
            file: file.into(),
            pos,
            rows: 0,
            gtid: None,
            state: None,
            file_id: None,
            snapshot: None,
            schema: 0,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if self.rows > 0 {
            write!(f, " (+{} rows)", self.rows)?;
        }
        Ok(())
    }
}

/// Which binlog a file name means: the server that wrote the file's first
/// event and when. A file name alone repeats after RESET MASTER and across
/// servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub server_id: u32,
    /// The FORMAT_DESCRIPTION event's timestamp (seconds).
    pub created: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Insert,
    Update,
    Delete,
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Insert => "insert",
            RowKind::Update => "update",
            RowKind::Delete => "delete",
        }
    }
}

/// Where a table's column names came from, so logs can say how far to trust
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// The table map's own FULL metadata: exact at the event's point in time.
    TableMap,
    /// information_schema now: history before a later DDL may be misnamed.
    InformationSchema,
    /// The schema history: the definition as of the event, checked
    /// against the table map.
    History,
    /// Neither was available: columns are called `@1`, `@2`, ...
    Positional,
}

#[derive(Debug, Clone)]
pub struct ColumnSchema {
    pub name: String,
    pub col_type: ColumnType,
    /// The table map's per-column metadata (fsp, precision, length bytes).
    pub meta: Vec<u8>,
    pub unsigned: bool,
    /// Character set id (63 = binary); 0 when unknown.
    pub charset: u16,
    /// ENUM or SET labels, in definition order.
    pub labels: Vec<String>,
    /// MariaDB JSON: a LONGTEXT with a `json_valid` CHECK, known only from
    /// information_schema. Its text is embedded as a JSON value.
    pub json: bool,
    /// Shown, excluded or masked (`filter.columns.*`).
    pub visibility: crate::filter::Visibility,
}

impl ColumnSchema {
    /// Fractional-second digits of a temporal column.
    pub fn fsp(&self) -> usize {
        match self.col_type {
            ColumnType::MYSQL_TYPE_TIMESTAMP2
            | ColumnType::MYSQL_TYPE_DATETIME2
            | ColumnType::MYSQL_TYPE_TIME2 => {
                self.meta.first().copied().unwrap_or(0).min(6) as usize
            }
            _ => 0,
        }
    }
}

/// What a table looked like when its table map was read.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub database: String,
    pub table: String,
    pub columns: Vec<ColumnSchema>,
    /// Indexes into `columns` of the primary key, in key order.
    pub primary_key: Vec<usize>,
    pub names_from: NameSource,
    /// The names as JSON, rendered once by the first encoder that needs
    /// them (see [`Rendered`]).
    pub rendered: RenderedNames,
}

/// The table's names as the JSON encoders write them: what does not change
/// from row to row is escaped once per table definition, not per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// `"database"` and `"table"`, quoted and escaped.
    pub database: Box<[u8]>,
    pub table: Box<[u8]>,
    /// `"column":` for each column, in order.
    pub keys: Vec<Box<[u8]>>,
    /// No column is masked or left out (`filter.columns.*`): a row object
    /// is every column of the image as it is.
    pub plain: bool,
}

/// A lazily filled [`Rendered`]. A clone starts empty: a copy of a
/// definition may be changed (a column renamed) before it is used.
#[derive(Debug, Default)]
pub struct RenderedNames(std::sync::OnceLock<Rendered>);

impl Clone for RenderedNames {
    fn clone(&self) -> Self {
        RenderedNames::default()
    }
}

impl RenderedNames {
    pub fn get_or_init(&self, f: impl FnOnce() -> Rendered) -> &Rendered {
        self.0.get_or_init(f)
    }
}

/// One column of a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Not in this image (binlog_row_image other than FULL).
    Absent,
    Null,
    /// The value's bytes, as logged, within [`RowImage::buf`].
    Data {
        start: u32,
        end: u32,
    },
    /// A MySQL partial JSON update (`binlog_row_value_options=PARTIAL_JSON`):
    /// the diffs, within [`RowImage::buf`], to apply to the before image.
    /// The reader replaces it with [`Cell::Json`].
    Diff {
        start: u32,
        end: u32,
    },
    /// A JSON document as text, the result of applying a `Diff`.
    Json(std::sync::Arc<[u8]>),
}

/// A row image as the binlog holds it: the rows event's bytes (shared by all
/// its rows) and where each column's value lies in them.
#[derive(Debug, Clone)]
pub struct RowImage {
    pub buf: Arc<[u8]>,
    pub cells: Cells,
}

/// One row image's cells: a range of a table of cells that all the rows
/// of an event share, so that splitting a row allocates nothing (a vector
/// of its own per row cost an allocation and a free per row, about a tenth
/// of the decoding).
#[derive(Debug, Clone)]
pub struct Cells {
    /// A vector, not a slice: it is filled row by row and shared as it is
    /// (an `Arc<[Cell]>` would copy it once more).
    all: Arc<Vec<Cell>>,
    start: u32,
    end: u32,
}

impl Cells {
    /// Cells `range` of `all`.
    pub fn shared(all: &Arc<Vec<Cell>>, range: std::ops::Range<usize>) -> Cells {
        assert!(range.start <= range.end && range.end <= all.len());
        Cells {
            all: all.clone(),
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    /// The cells to change in place: copied out of the shared table first
    /// (a partial JSON update replaces its diffs with documents).
    pub fn make_mut(&mut self) -> &mut [Cell] {
        let whole = self.start == 0 && self.end as usize == self.all.len();
        if !whole || Arc::get_mut(&mut self.all).is_none() {
            *self = Cells::from(self.to_vec());
        }
        Arc::get_mut(&mut self.all).expect("cells of this image alone")
    }
}

impl From<Vec<Cell>> for Cells {
    fn from(cells: Vec<Cell>) -> Cells {
        let end = cells.len() as u32;
        Cells {
            all: Arc::new(cells),
            start: 0,
            end,
        }
    }
}

impl std::ops::Deref for Cells {
    type Target = [Cell];
    fn deref(&self) -> &[Cell] {
        &self.all[self.start as usize..self.end as usize]
    }
}

impl RowImage {
    /// The bytes this image's values take (its share of a buffer that
    /// other rows may share too).
    pub fn value_bytes(&self) -> usize {
        self.cells
            .iter()
            .map(|c| match c {
                Cell::Data { start, end } | Cell::Diff { start, end } => (end - start) as usize,
                Cell::Json(d) => d.len(),
                _ => 0,
            })
            .sum()
    }

    /// The bytes of column `i`, `None` when NULL or absent.
    pub fn cell(&self, i: usize) -> Option<&[u8]> {
        match self.cells.get(i) {
            Some(Cell::Data { start, end }) => self.buf.get(*start as usize..*end as usize),
            _ => None,
        }
    }
}

/// One row of a WRITE/UPDATE/DELETE rows event. Values stay as bytes:
/// turning them into JSON is the producer thread's work, so the reader only
/// decodes.
#[derive(Debug)]
pub struct RowChange {
    /// Strictly increasing within one run of the daemon.
    pub seq: u64,
    pub kind: RowKind,
    pub table: Arc<TableSchema>,
    /// Before image (update, delete).
    pub before: Option<RowImage>,
    /// After image (insert, update).
    pub after: Option<RowImage>,
    /// Server timestamp of the event, in seconds.
    pub ts: u32,
    pub xid: Option<u64>,
    /// Index of this row within its transaction.
    pub xoffset: u64,
    /// Last row of its transaction.
    pub commit: bool,
    /// The rows event's own coordinate, shown to consumers (`file:offset`).
    pub event_file: Arc<str>,
    pub event_pos: u64,
    /// Index of this row within its rows event (Debezium's `source.row`).
    pub event_row: u32,
    /// The connection that ran the transaction, when its BEGIN said so.
    pub thread: Option<u32>,
    pub server_id: u32,
    /// Releasing this row moves the checkpoint here.
    pub checkpoint: Position,
    /// Set on the rows (and Maxwell's bootstrap-start/complete markers) of
    /// a snapshot.
    pub snapshot: Option<SnapshotPart>,
}

/// What a snapshot record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPart {
    /// Maxwell's `bootstrap-start`, before a table's first row (no image).
    Start,
    /// A row that already existed, with Debezium's `source.snapshot`.
    Row(SnapshotMark),
    /// Maxwell's `bootstrap-complete`, after a table's last row.
    Complete,
}

/// Debezium's `source.snapshot` of a snapshot row, as its MySQL connector
/// sets it: the first and last rows of the initial snapshot and of each
/// table are marked, ad-hoc (requested) snapshots are `incremental`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMark {
    First,
    FirstInTable,
    Middle,
    LastInTable,
    Last,
    Incremental,
}

impl SnapshotMark {
    pub fn debezium(self) -> &'static str {
        match self {
            SnapshotMark::First => "first",
            SnapshotMark::FirstInTable => "first_in_data_collection",
            SnapshotMark::Middle => "true",
            SnapshotMark::LastInTable => "last_in_data_collection",
            SnapshotMark::Last => "last",
            SnapshotMark::Incremental => "incremental",
        }
    }
}

impl RowChange {
    /// What this change holds in memory until it is released: its row
    /// images' bytes (their share of the rows event) and the structures
    /// around them.
    pub fn footprint(&self) -> u32 {
        let image = |m: &Option<RowImage>| {
            m.as_ref().map_or(0, |m| {
                m.cells.len() * std::mem::size_of::<Cell>() + m.value_bytes()
            })
        };
        (std::mem::size_of::<RowChange>() + image(&self.before) + image(&self.after)) as u32
    }

    /// The transaction's id as Debezium writes it: its GTID, or the
    /// position of its first event.
    pub fn txn_id(&self) -> String {
        match &self.checkpoint.gtid {
            Some(g) => g.to_string(),
            None => format!("{}:{}", self.checkpoint.file, self.checkpoint.pos),
        }
    }
}

/// What a DDL statement does, as far as consumers are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlKind {
    CreateTable,
    AlterTable,
    DropTable,
    RenameTable,
    TruncateTable,
    CreateIndex,
    DropIndex,
    CreateDatabase,
    AlterDatabase,
    DropDatabase,
}

impl DdlKind {
    /// Maxwell's `type` for the statement.
    pub fn maxwell(self) -> &'static str {
        match self {
            DdlKind::CreateTable => "table-create",
            DdlKind::DropTable => "table-drop",
            DdlKind::CreateDatabase => "database-create",
            DdlKind::AlterDatabase => "database-alter",
            DdlKind::DropDatabase => "database-drop",
            _ => "table-alter",
        }
    }

    /// Canal's `type` for the statement.
    pub fn canal(self) -> &'static str {
        match self {
            DdlKind::CreateTable | DdlKind::CreateDatabase => "CREATE",
            DdlKind::AlterTable | DdlKind::AlterDatabase => "ALTER",
            DdlKind::DropTable | DdlKind::DropDatabase => "ERASE",
            DdlKind::RenameTable => "RENAME",
            DdlKind::TruncateTable => "TRUNCATE",
            DdlKind::CreateIndex => "CINDEX",
            DdlKind::DropIndex => "DINDEX",
        }
    }
}

/// A schema change read from a Query event (`kafka.ddl_topic`).
#[derive(Debug, Clone)]
pub struct DdlChange {
    pub seq: u64,
    pub kind: DdlKind,
    pub database: String,
    /// Empty for database statements.
    pub table: String,
    pub sql: String,
    pub ts: u32,
    pub event_file: Arc<str>,
    pub event_pos: u64,
    pub server_id: u32,
    pub thread: Option<u32>,
    /// The position after the statement.
    pub checkpoint: Position,
}

/// What the reader hands the producer.
#[derive(Debug)]
pub enum Change {
    Row(RowChange),
    Ddl(DdlChange),
}

impl Change {
    /// Bytes held until released (see [`RowChange::footprint`]).
    pub fn footprint(&self) -> u32 {
        match self {
            Change::Row(r) => r.footprint(),
            Change::Ddl(d) => (std::mem::size_of::<DdlChange>() + d.sql.len()) as u32,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Change::Row(r) => r.seq,
            Change::Ddl(d) => d.seq,
        }
    }

    pub fn checkpoint(&self) -> &Position {
        match self {
            Change::Row(r) => &r.checkpoint,
            Change::Ddl(d) => &d.checkpoint,
        }
    }
}

/// `database.table`, as a DDL statement names it (the current database
/// filled in).
pub type TableName = (String, String);

/// What a statement does to a table's rows as a whole: empties it, or
/// renames tables (old name to new, in the order the server applies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableDdl {
    Truncate(TableName),
    Rename(Vec<(TableName, TableName)>),
}
