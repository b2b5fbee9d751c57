//! Byte-level helpers of the reader: compressed transaction payloads,
//! statement texts and GTID lists.

use super::jsondiff;
use super::rows::packed_int;
use crate::gtid::{GtidState, MariaGtid, MysqlSet};

/// Replaces the JSON diffs of a partial update's after image with the
/// documents they make of the before image's.
pub fn resolve_json_diffs(
    before: Option<&crate::event::RowImage>,
    after: Option<&mut crate::event::RowImage>,
) -> Result<(), String> {
    let Some(after) = after else { return Ok(()) };
    for i in 0..after.cells.len() {
        let crate::event::Cell::Diff { start, end } = after.cells[i] else {
            continue;
        };
        let diffs = after
            .buf
            .get(start as usize..end as usize)
            .ok_or("partial JSON update out of its event")?;
        let old = before
            .and_then(|b| b.cell(i))
            .ok_or_else(|| {
                format!(
                    "a partial JSON update of column {} whose document is not in the before image (written with binlog_row_image=MINIMAL or NOBLOB): the new document cannot be rebuilt; binlog2kafka needs binlog_row_image=FULL",
                    i + 1
                )
            })?;
        let doc = jsondiff::apply(old, diffs)?;
        after.cells.make_mut()[i] = crate::event::Cell::Json(doc.into());
    }
    Ok(())
}

/// Reads a decompressing `reader` to its end, refusing more than `limit`
/// bytes (a damaged size must not make the reader allocate without bound).
pub fn inflate(reader: impl std::io::Read, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(reader, limit + 1), &mut out)
        .map_err(|e| format!("{what}: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("{what} inflates past {limit} bytes"));
    }
    Ok(out)
}

/// Largest decompressed transaction accepted (a damaged size field must
/// not make the reader allocate without bound).
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// The decompressed events of a TRANSACTION_PAYLOAD_EVENT body: fields
/// (type, length, value; MySQL's packed integers) up to an end mark, then
/// the payload, zstd-compressed or not.
pub fn transaction_payload(data: &[u8]) -> Result<Vec<u8>, String> {
    fn packed(b: &[u8], at: &mut usize) -> Result<u64, String> {
        let (v, n) = packed_int(b.get(*at..).unwrap_or(&[]))
            .ok_or("compressed transaction header: a packed integer is bad or cut short")?;
        *at += n;
        Ok(v)
    }
    let mut at = 0usize;
    let (mut compression, mut size, mut uncompressed) = (None, None, None);
    loop {
        let field = packed(data, &mut at)?;
        if field == 0 {
            break;
        }
        let len = packed(data, &mut at)? as usize;
        let value = data
            .get(at..at.saturating_add(len))
            .ok_or("compressed transaction header cut short")?;
        let mut v = 0usize;
        let n = packed(value, &mut v)?;
        match field {
            1 => size = Some(n),
            2 => compression = Some(n),
            3 => uncompressed = Some(n),
            _ => {}
        }
        at += len;
    }
    let body = &data[at..];
    if size.is_some_and(|s| s != body.len() as u64) {
        return Err(format!(
            "compressed transaction says {} bytes of payload, has {}",
            size.unwrap_or(0),
            body.len()
        ));
    }
    match compression {
        Some(255) => Ok(body.to_vec()),
        Some(0) => {
            let limit = uncompressed.unwrap_or(MAX_PAYLOAD).min(MAX_PAYLOAD);
            let decoder = ruzstd::decoding::StreamingDecoder::new(body)
                .map_err(|e| format!("compressed transaction: {e}"))?;
            inflate(decoder, limit, "compressed transaction")
        }
        other => Err(format!(
            "unknown compression type {other:?} of a compressed transaction"
        )),
    }
}

pub fn first_line(s: &str) -> &str {
    let l = s.lines().next().unwrap_or("");
    &l[..l.len().min(120)]
}

/// The statement of an EXECUTE_LOAD_QUERY event (LOAD DATA logged as a
/// statement): a Query event's layout with 13 more post-header bytes.
pub fn load_query_text(d: &[u8]) -> String {
    let text = (|| {
        let db_len = *d.get(8)? as usize;
        let vars = u16::from_le_bytes([*d.get(11)?, *d.get(12)?]) as usize;
        let at = 26 + vars + db_len + 1;
        d.get(at..).map(|q| String::from_utf8_lossy(q).into_owned())
    })();
    text.unwrap_or_else(|| "LOAD DATA".into())
}

/// A transaction's GTID, as it is added to the state.
#[derive(Debug, Clone)]
pub enum Gtid {
    Maria(MariaGtid),
    Mysql { uuid: String, tag: String, gno: u64 },
}

/// A GTID state as a server resumes from it (MariaDB: the position only).
pub fn position_text(s: &GtidState) -> String {
    match s {
        GtidState::Maria(p) => p.position(),
        other => other.to_string(),
    }
}

/// Adds a transaction's GTID to a state of its family.
pub fn apply_gtid(state: &mut GtidState, g: &Gtid) {
    match (state, g) {
        (GtidState::Maria(p), Gtid::Maria(g)) => p.apply(*g),
        (GtidState::Mysql(s), Gtid::Mysql { uuid, tag, gno }) => s.add(uuid, tag, *gno),
        // A server of the other family's state: start it afresh.
        (st, Gtid::Maria(g)) => {
            let mut p = crate::gtid::MariaPos::default();
            p.apply(*g);
            *st = GtidState::Maria(p);
        }
        (st, Gtid::Mysql { uuid, tag, gno }) => {
            let mut s = MysqlSet::default();
            s.add(uuid, tag, *gno);
            *st = GtidState::Mysql(s);
        }
    }
}

/// The position (newest GTID per domain) a MariaDB GTID_LIST event's list
/// stands for: a count (28 bits) and flags, then domain u32, server u32,
/// sequence u64 per entry.
pub fn gtid_list_position(d: &[u8]) -> crate::gtid::MariaPos {
    // A file's GTID list is the binlog state at its start: the whole
    // history.
    let mut p = crate::gtid::MariaPos {
        2: true,
        ..Default::default()
    };
    let Some(head) = d.get(..4) else { return p };
    let n = (u32::from_le_bytes(head.try_into().expect("4 bytes")) & 0x0fff_ffff) as usize;
    for i in 0..n {
        let Some(e) = d.get(4 + i * 16..4 + i * 16 + 16) else {
            break;
        };
        let g = MariaGtid {
            domain: u32::from_le_bytes(e[0..4].try_into().expect("4 bytes")),
            server: u32::from_le_bytes(e[4..8].try_into().expect("4 bytes")),
            seq: u64::from_le_bytes(e[8..16].try_into().expect("8 bytes")),
        };
        if p.0.get(&g.domain).is_none_or(|old| old.seq < g.seq) {
            p.apply(g);
        }
    }
    p
}
