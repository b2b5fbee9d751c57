//! The MySQL side of GTID positions, proved on real binlog files (no MySQL
//! server runs here): the executed set the reader computes after every
//! transaction equals the set read independently from the file (its
//! PREVIOUS_GTIDS event plus each GTID event so far), and the set at the end
//! of a file equals the PREVIOUS_GTIDS event the server wrote at the start
//! of its next file.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use binlog2kafka::config::Config;
use binlog2kafka::event::Position;
use binlog2kafka::gtid::{uuid_text, MysqlSet};
use binlog2kafka::pipeline::reader::Reader;
use binlog2kafka::pipeline::Shared;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{Event, EventData};
use mysql_common::binlog::{BinlogFileHeader, EventStreamReader};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/binlogs")
        .join(name)
}

fn events(name: &str) -> Vec<Event> {
    let mut input = BufReader::new(File::open(fixture(name)).unwrap());
    BinlogFileHeader::read(&mut input).unwrap();
    let mut r = EventStreamReader::new(BinlogVersion::Version4);
    let mut out = Vec::new();
    while let Ok(Some(ev)) = r.read(&mut input) {
        out.push(ev);
    }
    out
}

/// The set a PREVIOUS_GTIDS event states.
fn previous_gtids(ev: &Event) -> Option<MysqlSet> {
    match ev.read_data().ok()?? {
        EventData::PreviousGtidsEvent(p) => {
            let mut s = MysqlSet::default();
            for sid in p.sids() {
                let tag = sid
                    .tag()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default();
                for iv in sid.intervals() {
                    s.add_interval(&uuid_text(&sid.uuid()), &tag, iv.start(), iv.end() - 1);
                }
            }
            Some(s)
        }
        _ => None,
    }
}

/// Feeds `name` through the reader; returns how many transactions were
/// checked and the set at the end.
fn check_file(name: &str) -> (usize, String) {
    let cfg = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let start = Position::at("f", 4);
    let mut reader = Reader::new(cfg.reader(), Arc::new(Shared::new()), tx, start);
    reader.set_catalog(false);
    let mut expected: Option<MysqlSet> = None;
    let mut pending: Option<(String, String, u64)> = None;
    let mut checked = 0;
    for ev in events(name) {
        reader.on_event(&ev).unwrap();
        while rx.try_recv().is_ok() {}
        if let Some(p) = previous_gtids(&ev) {
            expected = Some(p);
        }
        // A transaction ends at its XID, or (DDL) at its statement.
        let commits = match ev.read_data() {
            Ok(Some(EventData::GtidEvent(g))) => {
                let tag = g.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
                pending = Some((uuid_text(&g.sid()), tag, g.gno()));
                false
            }
            Ok(Some(EventData::XidEvent(_))) => true,
            Ok(Some(EventData::QueryEvent(q))) => !q.query().trim().eq_ignore_ascii_case("BEGIN"),
            _ => false,
        };
        if commits {
            if let (Some((uuid, tag, gno)), Some(exp)) = (pending.take(), expected.as_mut()) {
                exp.add(&uuid, &tag, gno);
                assert_eq!(
                    reader.gtid_state().as_deref(),
                    Some(exp.to_string().as_str()),
                    "{name}: the executed set after {uuid}:{gno}"
                );
                checked += 1;
            }
        }
    }
    (checked, reader.gtid_state().unwrap_or_default())
}

#[test]
fn the_executed_set_after_every_transaction_matches_the_file_and_the_next_files_previous_gtids() {
    for (file, next) in [
        (
            "kingbus/binlog/mysql_bin.000011",
            "kingbus/binlog/mysql_bin.000012",
        ),
        (
            "percona-binlog-server/data_80045_gtid/binlog.000001",
            "percona-binlog-server/data_80045_gtid/binlog.000002",
        ),
    ] {
        let (checked, end) = check_file(file);
        assert!(checked >= 3, "{file}: {checked} transactions checked");
        let next_start = events(next)
            .iter()
            .find_map(previous_gtids)
            .expect("the next file starts with PREVIOUS_GTIDS");
        assert_eq!(
            end,
            next_start.to_string(),
            "{file}: the set at its end is what the server wrote at the start of {next}"
        );
        println!("{file}: {checked} transactions, executed set at the end {end} = PREVIOUS_GTIDS of {next}");
    }
}
