//! Binlog event checksums (`binlog_checksum=CRC32`).
//!
//! The driver reads the checksum off each event but never compares it, so
//! a damaged binlog, streamed or replayed from a file, would be published
//! as if it were what the server wrote ("Xig" for "big"). The reader checks
//! every checksummed event here before decoding it.

use mysql_common::binlog::consts::BinlogChecksumAlg;
use mysql_common::binlog::events::{BinlogEventHeader, Event};

/// Set on events the server makes up while sending (the first ROTATE, the
/// fake GTID list): they are not in any file.
const ARTIFICIAL: u16 = 0x20;
const HEARTBEAT: u8 = 27;

/// Why `ev`'s checksum does not match its bytes, or `None` when it matches
/// or the event has none.
pub fn mismatch(ev: &Event) -> Option<String> {
    let header = ev.header();
    if header.flags_raw() & ARTIFICIAL != 0 || header.event_type_raw() == HEARTBEAT {
        return None;
    }
    let stored = u32::from_le_bytes(ev.checksum()?);
    let alg = ev.footer().get_checksum_alg().ok().flatten()?;
    if alg != BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32 {
        return None;
    }
    let computed = ev.calc_checksum(alg);
    (computed != stored).then(|| {
        format!(
            "the event's CRC32 checksum does not match its bytes (stored {stored:08x}, computed {computed:08x}): the binlog is damaged here"
        )
    })
}

/// `body` without its last four bytes when they are the CRC32 of `header`
/// and the rest: the server's artificial first ROTATE carries one even
/// where the stream has no checksums (`binlog_checksum=NONE`), and comes
/// before the format description that would say so.
pub fn strip_trailer<'a>(header: &BinlogEventHeader, body: &'a [u8]) -> &'a [u8] {
    let Some(split) = body.len().checked_sub(4) else {
        return body;
    };
    let (rest, trailer) = body.split_at(split);
    let mut h = crc32fast::Hasher::new();
    h.update(&header.timestamp().to_le_bytes());
    h.update(&[header.event_type_raw()]);
    h.update(&header.server_id().to_le_bytes());
    h.update(&header.event_size().to_le_bytes());
    h.update(&header.log_pos().to_le_bytes());
    h.update(&header.flags_raw().to_le_bytes());
    h.update(rest);
    if h.finalize().to_le_bytes() == trailer {
        rest
    } else {
        body
    }
}
