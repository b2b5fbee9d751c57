//! MariaDB's compressed binlog events (`log_bin_compress=ON`): statements
//! and row data of `log_bin_compress_min_len` bytes or more are written
//! zlib-compressed, as event types of their own. Each is rebuilt here as
//! the plain event it stands for, so the reader handles it by the same
//! path (a compressed `XA COMMIT`, DDL or statement-logged DML is no
//! different from a plain one; once they were skipped without a word).

use mysql_common::binlog::consts::EventType;
use mysql_common::binlog::events::{Event, FormatDescriptionEvent};

use super::payload::{inflate, MAX_PAYLOAD};
use super::rows::packed_int;

const QUERY_EVENT: u8 = 2;

/// A compressed body: one byte whose low three bits give the length of
/// the inflated size (big-endian, that many bytes), then zlib.
fn inflate_body(data: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let cut = || format!("{what} of {} bytes is cut short", data.len());
    let head = *data.first().ok_or_else(cut)?;
    let lenlen = (head & 0x07) as usize;
    let len = data
        .get(1..1 + lenlen)
        .ok_or_else(cut)?
        .iter()
        .fold(0u64, |acc, b| acc << 8 | *b as u64);
    if len > MAX_PAYLOAD {
        return Err(format!("{what} inflates to {len} bytes"));
    }
    let zlib = flate2::read::ZlibDecoder::new(&data[1 + lenlen..]);
    let out = inflate(zlib, len, what)?;
    if out.len() as u64 != len {
        return Err(format!(
            "{what} inflates to {} bytes, its header says {len}",
            out.len()
        ));
    }
    Ok(out)
}

/// The plain event of type `plain`: `ev`'s header, `kept` of its body as
/// it is, then `inflated`. No checksum: the compressed event's covered it.
fn rebuild(
    fde: &FormatDescriptionEvent<'static>,
    ev: &Event,
    plain: u8,
    kept: &[u8],
    inflated: &[u8],
) -> Result<Event, String> {
    let h = ev.header();
    let size = 19 + kept.len() + inflated.len();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&h.timestamp().to_le_bytes());
    bytes.push(plain);
    bytes.extend_from_slice(&h.server_id().to_le_bytes());
    bytes.extend_from_slice(&(size as u32).to_le_bytes());
    bytes.extend_from_slice(&h.log_pos().to_le_bytes());
    bytes.extend_from_slice(&h.flags_raw().to_le_bytes());
    bytes.extend_from_slice(kept);
    bytes.extend_from_slice(inflated);
    Event::read(fde, &bytes[..]).map_err(|e| e.to_string())
}

fn format_description<'a>(
    fde: Option<&'a FormatDescriptionEvent<'static>>,
    what: &str,
) -> Result<&'a FormatDescriptionEvent<'static>, String> {
    fde.ok_or_else(|| format!("{what} before any FORMAT_DESCRIPTION event"))
}

/// A QUERY_COMPRESSED_EVENT (165) as the QUERY_EVENT it stands for: the
/// post-header, status variables and database name as they are, the
/// statement inflated.
pub fn query(fde: Option<&FormatDescriptionEvent<'static>>, ev: &Event) -> Result<Event, String> {
    let what = "compressed query event";
    let fde = format_description(fde, what)?;
    let data = ev.data();
    let cut = || format!("{what} of {} bytes is cut short", data.len());
    let post = fde.get_event_type_header_length(EventType::QUERY_EVENT) as usize;
    // thread id (4), exec time (4), database name length (1), error code
    // (2), status variables length (2).
    let db_len = *data.get(8).ok_or_else(cut)? as usize;
    let status = data.get(11..13).ok_or_else(cut)?;
    let status_len = u16::from_le_bytes([status[0], status[1]]) as usize;
    let at = post + status_len + db_len + 1;
    let kept = data.get(..at).ok_or_else(cut)?;
    let sql = inflate_body(&data[at..], what)?;
    rebuild(fde, ev, QUERY_EVENT, kept, &sql)
}

/// A compressed rows event (166-171) as the plain rows event it stands
/// for: same header and bitmaps, the row data inflated.
pub fn rows(fde: Option<&FormatDescriptionEvent<'static>>, ev: &Event) -> Result<Event, String> {
    let what = "compressed rows event";
    let fde = format_description(fde, what)?;
    let raw = ev.header().event_type_raw();
    // 166-168 stand for the v1 types 23-25, 169-171 for the v2 30-32.
    let (plain, v2) = if raw <= 168 {
        (raw - 143, false)
    } else {
        (raw - 139, true)
    };
    let update = matches!(plain, 24 | 31);
    let kind = EventType::try_from(plain).map_err(|_| format!("event type {plain}"))?;
    let data = ev.data();
    let cut = || format!("{what} of {} bytes is cut short", data.len());
    let mut at = fde.get_event_type_header_length(kind) as usize;
    if v2 {
        // The post-header ends in the length of the extra data, itself
        // included.
        let len = data
            .get(at.checked_sub(2).ok_or_else(cut)?..at)
            .ok_or_else(cut)?;
        at += (u16::from_le_bytes([len[0], len[1]]) as usize).saturating_sub(2);
    }
    let (columns, n) = packed_int(data.get(at..).ok_or_else(cut)?).ok_or_else(cut)?;
    at += n + (columns as usize).div_ceil(8) * if update { 2 } else { 1 };
    let kept = data.get(..at).ok_or_else(cut)?;
    let rows = inflate_body(&data[at..], what)?;
    rebuild(fde, ev, plain, kept, &rows)
}
