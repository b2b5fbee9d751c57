//! Offline mode: binlog files (as a server writes them, or kept as backups)
//! through the same decoder as the live stream, out as the same JSON
//! messages, one per line. It is how operators look into old binlogs and how
//! the tests read real files from many server versions.
//!
//! A file that ends inside an event, or holds an event the decoder cannot
//! read, stops the replay with an error naming the file and the offset; the
//! messages of the complete transactions before it were already written.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver, Sender};
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::{BinlogFileHeader, EventStreamReader};

use crate::event::{Change, Position};
use crate::format::{Context, Encoder};
use crate::pipeline::reader::Reader;
use crate::pipeline::Shared;
use crate::source::SourceError;

/// Errors of the offline boundary; each names the file.
#[derive(Debug)]
pub enum ReplayError {
    Open {
        file: String,
        err: io::Error,
    },
    NotBinlog {
        file: String,
    },
    /// MariaDB's `encrypt_binlog=ON`: the events after the one at `offset`
    /// are ciphertext whose key only the server holds.
    Encrypted {
        file: String,
        offset: u64,
    },
    Corrupt {
        file: String,
        offset: u64,
        detail: String,
    },
    Truncated {
        file: String,
        offset: u64,
        len: u64,
    },
    Output(io::Error),
    /// `--schema-file` cannot be read or parsed.
    Schema {
        file: String,
        detail: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Open { file, err } => write!(f, "cannot open {file}: {err}"),
            ReplayError::Schema { file, detail } => write!(
                f,
                "cannot take the schema from {file}: {detail}; give a file of CREATE TABLE statements (mysqldump --no-data output)"
            ),
            ReplayError::NotBinlog { file } => write!(
                f,
                "{file} is not a binlog file (it does not start with the binlog magic bytes fe 62 69 6e)"
            ),
            ReplayError::Corrupt { file, offset, detail } => write!(
                f,
                "cannot decode {file} at offset {offset}: {detail}; the transactions before it were written"
            ),
            ReplayError::Truncated { file, offset, len } => write!(
                f,
                "{file} is truncated: the event at offset {offset} runs past the end of the file ({len} bytes); the transactions before it were written"
            ),
            ReplayError::Encrypted { file, offset } => write!(
                f,
                "{file} is encrypted (MariaDB encrypt_binlog=ON; the encryption starts at offset {offset}): only the server that holds its key can read it, so replay cannot. Stream it from that server instead (binlog2kafka run with start.position in this file), or read it through the server with mariadb-binlog --read-from-remote-server"
            ),
            ReplayError::Output(e) => write!(f, "cannot write the output: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Open { err, .. } | ReplayError::Output(err) => Some(err),
            _ => None,
        }
    }
}

/// What a replay read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    pub files: usize,
    pub events: u64,
    pub rows: u64,
}

/// Where replayed rows go.
pub enum Sink<'a> {
    /// JSON lines, one message each.
    Lines(&'a mut dyn Write),
    /// The producer's channel (`replay` into the data topic). The waiting
    /// queue is the producer's `Shared`, released as it acknowledges.
    Producer {
        pending: &'a Sender<Vec<Change>>,
        shared: &'a Arc<Shared>,
    },
}

/// What replay is told (built by the configuration): the reader's
/// settings (with `catalog`, the server to ask for column names) and the
/// output format of `--stdout`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub reader: crate::pipeline::reader::Settings,
    /// The definitions the files start from (`--schema-file`, or the
    /// server's with `--schema-from`): the DDL in the files is followed from
    /// them, and every table map checked. `None`: names come from the files'
    /// FULL metadata, or stay positional.
    pub history: Option<crate::source::history::History>,
    pub format: crate::format::Format,
    pub style: crate::format::value::Style,
}

/// Replays `paths` in order to `out` as JSON lines. With `catalog`, column
/// names the files lack come from the configured server's
/// information_schema; otherwise they stay positional (`@1`, `@2`, …).
pub fn replay_files(
    cfg: &Settings,
    paths: &[&Path],
    catalog: bool,
    out: &mut dyn Write,
) -> Result<ReplaySummary, ReplayError> {
    replay_files_to(cfg, paths, catalog, &mut Sink::Lines(out))
}

/// Replays `paths` in order into `sink`.
pub fn replay_files_to(
    cfg: &Settings,
    paths: &[&Path],
    catalog: bool,
    sink: &mut Sink<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let mut total = ReplaySummary::default();
    // One history across the files: a DDL in one holds in the next.
    let mut history = cfg.history.clone().map(start_history);
    for path in paths {
        let shown = path.display().to_string();
        let f = File::open(path).map_err(|e| ReplayError::Open {
            file: shown.clone(),
            err: e,
        })?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone());
        let s = replay_one(
            cfg,
            (&shown, &name),
            BufReader::new(f),
            len,
            catalog,
            sink,
            &mut history,
        )?;
        total.files += 1;
        total.events += s.events;
        total.rows += s.rows;
    }
    Ok(total)
}

fn start_history(h: crate::source::history::History) -> crate::source::history::follow::Follower {
    crate::source::history::follow::Follower::new(h, (String::new(), 0))
}

/// Replays one binlog from `input` (`len` bytes) into `sink`. `shown`
/// names it in errors; `name` is the file name positions carry.
pub fn replay_stream(
    cfg: &Settings,
    shown: &str,
    name: &str,
    input: impl BufRead,
    len: u64,
    catalog: bool,
    sink: &mut Sink<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let mut history = cfg.history.clone().map(start_history);
    replay_one(cfg, (shown, name), input, len, catalog, sink, &mut history)
}

/// [`replay_stream`], following `history` (and leaving it as the file's
/// DDL left it).
fn replay_one(
    cfg: &Settings,
    (shown, name): (&str, &str),
    input: impl BufRead,
    len: u64,
    catalog: bool,
    sink: &mut Sink<'_>,
    history: &mut Option<crate::source::history::follow::Follower>,
) -> Result<ReplaySummary, ReplayError> {
    let mut input = input;
    BinlogFileHeader::read(&mut input).map_err(|_| ReplayError::NotBinlog {
        file: shown.to_string(),
    })?;
    let mut events = EventStreamReader::new(BinlogVersion::Version4);
    let shared = match sink {
        Sink::Producer { shared, .. } => {
            // Sequence numbers start again with each file's reader: let the
            // previous file's rows be acknowledged first.
            while shared.ledger.depth() > 0 && !shared.stop.requested() {
                shared.ledger.release_prefix();
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Arc::clone(shared)
        }
        Sink::Lines(_) => Arc::new(Shared::new()),
    };
    let (tx, rx) = unbounded();
    let start = Position::at(name, 4);
    let mut reader = Reader::new(cfg.reader.clone(), shared.clone(), tx, start);
    reader.set_catalog(catalog);
    if let Some(h) = history.take() {
        reader.follow(h);
    }
    let mut summary = ReplaySummary {
        files: 1,
        ..Default::default()
    };
    let mut line = Vec::with_capacity(512);
    let encoder = Encoder::new(cfg.format, cfg.style, &cfg.reader.pipeline_name);
    // Where the last complete event ended, in bytes from the file start.
    let mut good = 4u64;
    let corrupt = |offset: u64, detail: String| ReplayError::Corrupt {
        file: shown.to_string(),
        offset,
        detail,
    };
    let truncated = |offset: u64| ReplayError::Truncated {
        file: shown.to_string(),
        offset,
        len,
    };
    let mut buf = Vec::new();
    let mut checksums = false;
    loop {
        // Frame the event here, so that a cut or damaged length never
        // reaches the decoder: it trusts the header's size (allocating it
        // and panicking when the bytes run out).
        let mut header = [0u8; HEADER_LEN];
        match read_full(&mut input, &mut header).map_err(ReplayError::Output)? {
            0 => break,
            HEADER_LEN => {}
            _ => return Err(truncated(good)),
        }
        let size = u32::from_le_bytes(header[9..13].try_into().expect("4 bytes")) as u64;
        if size < HEADER_LEN as u64 {
            return Err(corrupt(
                good,
                format!("event size {size} is smaller than an event header"),
            ));
        }
        if good + size > len {
            return Err(truncated(good));
        }
        if checksums && size < (HEADER_LEN + CHECKSUM_LEN) as u64 {
            return Err(corrupt(
                good,
                format!("event size {size} leaves no room for its checksum"),
            ));
        }
        // The buffer only grows: zeroing it again for every event cost more
        // than reading the event.
        let size_bytes = size as usize;
        if buf.len() < size_bytes {
            buf.resize(size_bytes, 0);
        }
        buf[..HEADER_LEN].copy_from_slice(&header);
        if read_full(&mut input, &mut buf[HEADER_LEN..size_bytes]).map_err(ReplayError::Output)?
            < size_bytes - HEADER_LEN
        {
            return Err(truncated(good));
        }
        // The decoders of mysql_common and of this crate must never panic on
        // bad bytes; should one still do, the file is reported as damaged.
        let ev = match catch_unwind(AssertUnwindSafe(|| events.read(&buf[..size_bytes]))) {
            Ok(Ok(Some(ev))) => ev,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(corrupt(good, e.to_string())),
            Err(p) => return Err(corrupt(good, contained(p))),
        };
        let event_start = good;
        if ev.header().event_type_raw() == START_ENCRYPTION {
            return Err(ReplayError::Encrypted {
                file: shown.to_string(),
                offset: event_start,
            });
        }
        if ev.header().event_type_raw() == FORMAT_DESCRIPTION {
            checksums = ev
                .footer()
                .get_checksum_alg()
                .ok()
                .flatten()
                .is_some_and(|a| {
                    a != mysql_common::binlog::consts::BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_OFF
                });
        }
        good += size;
        summary.events += 1;
        let decoded = match catch_unwind(AssertUnwindSafe(|| reader.on_event(&ev))) {
            Ok(r) => r,
            Err(p) => return Err(corrupt(event_start, contained(p))),
        };
        summary.rows += drain(&rx, &shared, &mut line, &encoder, sink)?;
        if let Some((xid, at)) = reader.take_rewind() {
            log::warn!(
                "{shown}: XA COMMIT {xid} commits the transaction prepared at {at}; replay reads each file once and does not go back for it, so its rows are not written"
            );
        }
        if let Err(e) = decoded {
            let detail = match e {
                SourceError::Corrupt { detail, .. } => detail,
                other => other.to_string(),
            };
            return Err(ReplayError::Corrupt {
                file: shown.to_string(),
                offset: reader.next_pos(),
                detail,
            });
        }
    }
    *history = reader.take_history();
    if let Sink::Lines(out) = sink {
        out.flush().map_err(ReplayError::Output)?;
    }
    Ok(summary)
}

/// Passes on the rows the reader handed on. As lines, they are written and
/// cleared from the waiting queue at once (nothing waits for
/// acknowledgements); to the producer, they are sent on (blocking while its
/// channel is full) and released as it acknowledges them.
fn drain(
    rx: &Receiver<Vec<Change>>,
    shared: &Shared,
    line: &mut Vec<u8>,
    encoder: &Encoder,
    sink: &mut Sink<'_>,
) -> Result<u64, ReplayError> {
    let out = match sink {
        Sink::Lines(out) => out,
        Sink::Producer { pending, .. } => {
            let mut n = 0;
            while let Ok(rows) = rx.try_recv() {
                n += rows.len() as u64;
                if pending.send(rows).is_err() {
                    return Err(ReplayError::Output(io::Error::other(
                        "the producer stopped (see the error above)",
                    )));
                }
            }
            shared.ledger.release_prefix();
            return Ok(n);
        }
    };
    let mut n = 0;
    let ctx = Context {
        now_ms: crate::clock::now_ms() as i64,
        txn: None,
    };
    // The lines are encoded one after the other into `line` and written
    // out together: a write per line cost more than its encoding's copy.
    line.clear();
    while let Ok(changes) = rx.try_recv() {
        for c in &changes {
            let Change::Row(r) = c else { continue };
            encoder.row_value(line, r, &ctx);
            line.push(b'\n');
            n += 1;
            if line.len() >= 1 << 16 {
                out.write_all(line).map_err(ReplayError::Output)?;
                line.clear();
            }
        }
        shared
            .ledger
            .ack_batch(changes.iter().map(|c| (c.seq(), 0)));
    }
    out.write_all(line).map_err(ReplayError::Output)?;
    line.clear();
    shared.ledger.release_prefix();
    Ok(n)
}

/// Bytes of a v4 event header; its size field is at offset 9.
const HEADER_LEN: usize = 19;

const CHECKSUM_LEN: usize = 4;
const FORMAT_DESCRIPTION: u8 = 15;
/// MariaDB's START_ENCRYPTION_EVENT.
const START_ENCRYPTION: u8 = 164;

/// The error text for a decoder panic that `catch_unwind` contained.
fn contained(payload: Box<dyn std::any::Any + Send>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    format!("the binlog decoder failed on this event ({msg})")
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
