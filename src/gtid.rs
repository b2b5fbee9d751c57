//! GTID state: where a position is in a cluster's history, whatever server
//! it is read from.
//!
//! A file name and byte offset mean something only on the server that wrote
//! them; a GTID names a transaction on every server that holds it. Each
//! checkpoint therefore carries, beside file and offset, the GTID state at
//! that point, in the form each server family resumes from:
//!
//! - MariaDB: the GTID *position*, the last GTID of each replication domain
//!   (`0-1-1000,1-2-50`, as `gtid_binlog_pos` and `@slave_connect_state`
//!   write it).
//! - MySQL: the executed GTID *set*, intervals per source uuid (and tag,
//!   MySQL 8.3+): `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,…:tag:1-3`.
//!   It starts from a file's PREVIOUS_GTIDS event and grows by each GTID
//!   read; kept as merged intervals, never as a growing list.

use std::collections::BTreeMap;
use std::fmt;

/// A MariaDB GTID: domain, server id, sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl MariaGtid {
    pub fn parse(s: &str) -> Option<MariaGtid> {
        let mut it = s.trim().splitn(3, '-');
        Some(MariaGtid {
            domain: it.next()?.parse().ok()?,
            server: it.next()?.parse().ok()?,
            seq: it.next()?.parse().ok()?,
        })
    }
}

/// MariaDB's GTID position: the last GTID of each domain (`.0`), and the
/// last sequence number the pipeline has read of every server in each
/// domain (`.1`, as the server's `gtid_binlog_state` lists them).
///
/// The position alone is what a server resumes from; the servers' numbers
/// tell a transaction the pipeline read from one it never saw: with
/// `gtid_strict_mode=OFF` a replica may hold a write of its own (`0-32-416`)
/// behind the primary's later ones (`0-31-670`) in the same domain, and
/// resuming there after `0-31-670` would skip it without a word.
///
/// As text (the checkpoint's `gtid_state`), the other servers' numbers come
/// first and each domain's position last, so a reader that keeps the last
/// GTID per domain (an older binlog2kafka) still reads the position.
///
/// `.2` says whether those numbers are the whole history: noted from the
/// binlog state of a server read by file position, or of a file's GTID
/// list. Where they are not (a checkpoint of an older release, a first start
/// from a GTID), a server's older transactions of other servers look like
/// transactions never read, so `maria_plan` does not judge them (the
/// checkpoint keeps the flag as `gtid_history`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaPos(
    pub BTreeMap<u32, MariaGtid>,
    pub BTreeMap<(u32, u32), u64>,
    pub bool,
);

impl MariaPos {
    /// `0-1-1000,1-2-50`; empty text is the empty position. Of several
    /// GTIDs of one domain the last is its position.
    pub fn parse(s: &str) -> Result<MariaPos, String> {
        let mut p = MariaPos::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g = MariaGtid::parse(part).ok_or_else(|| {
                format!("`{part}` is not a MariaDB GTID (domain-server-sequence)")
            })?;
            p.apply(g);
        }
        Ok(p)
    }

    pub fn apply(&mut self, g: MariaGtid) {
        self.0.insert(g.domain, g);
        self.1.insert((g.domain, g.server), g.seq);
    }

    /// Notes a server's transactions up to `g` as read without moving the
    /// position (history before the pipeline's start, on the server it
    /// reads by file position).
    pub fn note_read(&mut self, g: MariaGtid) {
        let seen = self.1.entry((g.domain, g.server)).or_insert(g.seq);
        *seen = (*seen).max(g.seq);
    }

    /// The position only (`0-1-1000,1-2-50`): what a server is asked to
    /// resume from (`@slave_connect_state` takes one GTID per domain).
    pub fn position(&self) -> String {
        self.0
            .values()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for MariaPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let others = self.1.iter().filter_map(|(&(domain, server), &seq)| {
            let pos = self.0.get(&domain);
            (pos.is_none_or(|p| p.server != server)).then_some(MariaGtid {
                domain,
                server,
                seq,
            })
        });
        for (i, g) in others.chain(self.0.values().copied()).enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

/// How a pipeline at `ours` resumes on a MariaDB server whose
/// `gtid_binlog_state` (last GTID per domain and server) is `theirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MariaPlan {
    /// Ask for this position; `lost` names what the pipeline published from
    /// the previous server that this one never received (`0-1-8..10`).
    Resume { from: MariaPos, lost: Vec<String> },
    /// Transactions in domains the pipeline's server never had.
    Errant(Vec<MariaGtid>),
    /// Transactions in a known domain that the pipeline never read and
    /// that stand before the point it would resume from (a write made on
    /// a replica with `gtid_strict_mode=OFF`): resuming would skip them.
    Skipped(Vec<MariaGtid>),
    /// No transaction of the pipeline's last server in that domain.
    Unrelated(MariaGtid),
}

pub fn maria_plan(ours: &MariaPos, theirs: &[MariaGtid]) -> MariaPlan {
    let errant: Vec<MariaGtid> = theirs
        .iter()
        .filter(|g| !ours.0.contains_key(&g.domain))
        .copied()
        .collect();
    if !errant.is_empty() {
        return MariaPlan::Errant(errant);
    }

    let mut from = ours.clone();
    let mut lost = Vec::new();
    for g in ours.0.values() {
        match theirs
            .iter()
            .find(|t| t.domain == g.domain && t.server == g.server)
        {
            None => return MariaPlan::Unrelated(*g),
            Some(t) if t.seq < g.seq => {
                lost.push(format!(
                    "{}-{}-{}..{}",
                    g.domain,
                    g.server,
                    t.seq + 1,
                    g.seq
                ));
                from.apply(*t);
            }
            Some(_) => {}
        }
    }
    // A server's transactions newer than the pipeline read of it, numbered
    // at or below the point it resumes from: before that point, never read.
    // (Numbered above it, they come after it and are streamed.) Judged only
    // where the pipeline's history is whole.
    let skipped: Vec<MariaGtid> = theirs
        .iter()
        .filter(|_| ours.2)
        .filter(|t| {
            let at = from.0[&t.domain];
            let read = ours.1.get(&(t.domain, t.server));
            t.server != at.server && t.seq <= at.seq && read.is_none_or(|&r| t.seq > r)
        })
        .copied()
        .collect();
    if !skipped.is_empty() {
        return MariaPlan::Skipped(skipped);
    }
    MariaPlan::Resume { from, lost }
}

/// `gtid_binlog_state` text as GTIDs.
pub fn maria_list(s: &str) -> Vec<MariaGtid> {
    s.split(',').filter_map(MariaGtid::parse).collect()
}

/// One source of a MySQL GTID set: its uuid (lower-case text) and tag
/// (empty when untagged).
pub type Source = (String, String);

/// A MySQL GTID set: for each source, sorted, disjoint, non-adjacent
/// inclusive intervals of transaction numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlSet(pub BTreeMap<Source, Vec<(u64, u64)>>);

impl MysqlSet {
    /// The text MySQL prints (`uuid:1-5:7,uuid:tag:1-3`, with white space
    /// and line breaks allowed); tags as MySQL 8.3+ writes them, a tag
    /// applying to the intervals after it.
    pub fn parse(s: &str) -> Result<MysqlSet, String> {
        let mut set = MysqlSet::default();
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        for spec in clean.split(',').filter(|p| !p.is_empty()) {
            let mut parts = spec.split(':');
            let uuid = parts.next().unwrap_or_default().to_ascii_lowercase();
            if !is_uuid(&uuid) {
                return Err(format!("`{spec}` does not start with a server uuid"));
            }
            let mut tag = String::new();
            let mut any = false;
            for p in parts {
                if p.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = match p.split_once('-') {
                        Some((a, b)) => (a, b),
                        None => (p, p),
                    };
                    let (a, b): (u64, u64) = match (a.parse(), b.parse()) {
                        (Ok(a), Ok(b)) if a >= 1 && a <= b => (a, b),
                        _ => return Err(format!("`{p}` in `{spec}` is not an interval n or n-m")),
                    };
                    set.add_interval(&uuid, &tag, a, b);
                    any = true;
                } else if is_tag(p) {
                    tag = p.to_ascii_lowercase();
                } else {
                    return Err(format!(
                        "`{p}` in `{spec}` is neither an interval nor a tag"
                    ));
                }
            }
            if !any {
                return Err(format!("`{spec}` has no transaction numbers"));
            }
        }
        Ok(set)
    }

    /// Adds transaction `gno` of `uuid` (with `tag`, empty when untagged).
    pub fn add(&mut self, uuid: &str, tag: &str, gno: u64) {
        self.add_interval(uuid, tag, gno, gno);
    }

    pub fn add_interval(&mut self, uuid: &str, tag: &str, a: u64, b: u64) {
        let v = self
            .0
            .entry((uuid.to_string(), tag.to_string()))
            .or_default();
        // Fast path: the next transaction of the newest interval.
        if let Some(last) = v.last_mut() {
            if a >= last.0 && a <= last.1.saturating_add(1) {
                last.1 = last.1.max(b);
                return;
            }
        }
        v.push((a, b));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for &(s, e) in v.iter() {
            match merged.last_mut() {
                Some(m) if s <= m.1.saturating_add(1) => m.1 = m.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *v = merged;
    }

    pub fn union(&mut self, other: &MysqlSet) {
        for ((u, t), iv) in &other.0 {
            for &(a, b) in iv {
                self.add_interval(u, t, a, b);
            }
        }
    }

    pub fn contains(&self, uuid: &str, tag: &str, gno: u64) -> bool {
        self.0
            .get(&(uuid.to_string(), tag.to_string()))
            .is_some_and(|v| v.iter().any(|&(a, b)| a <= gno && gno <= b))
    }

    /// What `self` has that `have` lacks: the transactions a server with
    /// set `have` is missing to serve a client at `self`.
    pub fn minus(&self, have: &MysqlSet) -> MysqlSet {
        let mut out = MysqlSet::default();
        for (src, iv) in &self.0 {
            let theirs = have.0.get(src).map(Vec::as_slice).unwrap_or(&[]);
            for &(a, b) in iv {
                let mut from = a;
                for &(c, d) in theirs {
                    if d < from || c > b {
                        continue;
                    }
                    if c > from {
                        out.add_interval(&src.0, &src.1, from, c - 1);
                    }
                    from = from.max(d.saturating_add(1));
                }
                if from <= b {
                    out.add_interval(&src.0, &src.1, from, b);
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

impl fmt::Display for MysqlSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One entry per uuid: its untagged intervals, then each tag's.
        let mut first_uuid = true;
        let mut current: Option<&str> = None;
        for ((uuid, tag), iv) in &self.0 {
            if iv.is_empty() {
                continue;
            }
            if current != Some(uuid.as_str()) {
                if !first_uuid {
                    f.write_str(",")?;
                }
                first_uuid = false;
                current = Some(uuid);
                f.write_str(uuid)?;
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(a, b) in iv {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// The set a MySQL PREVIOUS_GTIDS event body states; `None` when it is
/// damaged. Parsed here, every count checked against the bytes before it is
/// used: a bit-flipped count must not make the reader allocate exabytes.
/// Layout: a u64 header (top byte 0: untagged, the rest the source count;
/// top byte 1: tagged, MySQL 8.3+, the count in bits 8-55), then per source
/// its 16-byte uuid, (tagged) a varlen tag length and the tag, a u64
/// interval count and each interval's start and exclusive end as u64.
pub fn previous_gtids(d: &[u8]) -> Option<MysqlSet> {
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
    };
    let header = u64_at(0)?;
    let tagged = header >> 56 != 0;
    let n = if tagged {
        (header >> 8) & ((1 << 48) - 1)
    } else {
        header & ((1 << 56) - 1)
    };
    let mut at = 8usize;
    let mut set = MysqlSet::default();
    for _ in 0..n {
        let uuid = uuid_text(d.get(at..at + 16)?.try_into().ok()?);
        at += 16;
        let tag = if tagged {
            let len = varlen(d, &mut at)? as usize;
            let t = std::str::from_utf8(d.get(at..at.checked_add(len)?)?).ok()?;
            at += len;
            t.to_ascii_lowercase()
        } else {
            String::new()
        };
        let intervals = u64_at(at)? as usize;
        at += 8;
        if intervals > d.len().saturating_sub(at) / 16 {
            return None;
        }
        for _ in 0..intervals {
            let (a, b) = (u64_at(at)?, u64_at(at + 8)?);
            at += 16;
            if a == 0 || b <= a {
                return None;
            }
            set.add_interval(&uuid, &tag, a, b - 1);
        }
    }
    Some(set)
}

/// MySQL's serialization-library unsigned integer: the first byte's
/// trailing one bits count the extra bytes (eight: a plain u64 follows).
fn varlen(d: &[u8], at: &mut usize) -> Option<u64> {
    let first = *d.get(*at)?;
    let ones = first.trailing_ones() as usize;
    if ones == 8 {
        let v = u64::from_le_bytes(d.get(*at + 1..*at + 9)?.try_into().ok()?);
        *at += 9;
        return Some(v);
    }
    let n = ones + 1;
    let mut raw = [0u8; 8];
    raw[..n].copy_from_slice(d.get(*at..*at + n)?);
    *at += n;
    Some(u64::from_le_bytes(raw) >> n)
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// A MySQL GTID tag: a letter or `_`, then up to 31 letters, digits, `_`.
fn is_tag(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && s.len() <= 32
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The 16 bytes of a uuid as text.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 16 bytes of a uuid's text.
pub fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The GTID state of a position, in its server family's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidState {
    Maria(MariaPos),
    Mysql(MysqlSet),
}

impl GtidState {
    /// MariaDB positions (`0-1-5,1-2-9`) or MySQL sets (`uuid:1-5`); the
    /// empty text is an empty MariaDB position.
    pub fn parse(s: &str) -> Result<GtidState, String> {
        let t = s.trim();
        if t.contains(':') {
            MysqlSet::parse(t).map(GtidState::Mysql)
        } else {
            MariaPos::parse(t).map(GtidState::Maria)
        }
    }
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidState::Maria(p) => p.fmt(f),
            GtidState::Mysql(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "ffffffff-0000-1111-2222-333333333333";

    #[test]
    fn mariadb_positions_keep_the_last_gtid_per_domain() {
        let mut p = MariaPos::parse("0-1-1000, 1-2-50").unwrap();
        p.apply(MariaGtid::parse("0-3-1001").unwrap());
        assert_eq!(p.position(), "0-3-1001,1-2-50");
        // The server read before stays known, written before the position.
        assert_eq!(p.to_string(), "0-1-1000,0-3-1001,1-2-50");
        assert_eq!(MariaPos::parse(&p.to_string()).unwrap(), p, "round trip");
        assert_eq!(MariaPos::parse("").unwrap().to_string(), "");
        assert!(MariaPos::parse("0-1").is_err());
    }

    #[test]
    fn mysql_sets_merge_into_intervals() {
        let mut s = MysqlSet::default();
        for g in [1, 2, 3, 5, 4, 7] {
            s.add(A, "", g);
        }
        assert_eq!(s.to_string(), format!("{A}:1-5:7"));
        assert_eq!(
            s.0.values().map(Vec::len).sum::<usize>(),
            2,
            "intervals, not a list"
        );
        s.add(A, "", 6);
        assert_eq!(s.to_string(), format!("{A}:1-7"));
        let mut big = MysqlSet::default();
        for g in 1..=100_000 {
            big.add(B, "", g);
        }
        assert_eq!(big.0[&(B.to_string(), String::new())], vec![(1, 100_000)]);
    }

    #[test]
    fn mysql_sets_parse_print_and_subtract_with_tags() {
        let text = format!("{A}:1-5:7:blue:1-3,\n{B}:10");
        let s = MysqlSet::parse(&text).unwrap();
        assert_eq!(s.to_string(), format!("{A}:1-5:7:blue:1-3,{B}:10"));
        assert!(s.contains(A, "blue", 2) && !s.contains(A, "", 6) && !s.contains(A, "red", 1));
        assert_eq!(MysqlSet::parse(&s.to_string()).unwrap(), s, "round trip");
        let have = MysqlSet::parse(&format!("{A}:1-3:blue:1-3")).unwrap();
        assert_eq!(s.minus(&have).to_string(), format!("{A}:4-5:7,{B}:10"));
        assert!(have.minus(&s).is_empty());
        let mut u = have.clone();
        u.union(&s);
        assert_eq!(u, s);
        assert!(MysqlSet::parse(&format!("{A}:0-3")).is_err());
        assert!(MysqlSet::parse("nope:1").is_err());
        assert!(MysqlSet::parse(&format!("{A}:9tag:1")).is_err());
    }

    #[test]
    fn a_mariadb_resume_steps_back_over_a_lost_tail_and_refuses_errant_domains() {
        let ours = MariaPos::parse("0-1-10").unwrap();
        let plan = |theirs: &str| maria_plan(&ours, &maria_list(theirs));
        assert_eq!(
            plan("0-1-12"),
            MariaPlan::Resume {
                from: ours.clone(),
                lost: vec![]
            },
            "a replica ahead of the pipeline"
        );
        // The promoted replica had 0-1-7 when the primary died, then wrote
        // 0-2-8 onwards itself.
        assert_eq!(
            plan("0-1-7,0-2-9"),
            MariaPlan::Resume {
                from: MariaPos::parse("0-1-7").unwrap(),
                lost: vec!["0-1-8..10".into()]
            }
        );
        assert_eq!(
            plan("0-1-12,9-2-1"),
            MariaPlan::Errant(vec![MariaGtid::parse("9-2-1").unwrap()])
        );
        assert_eq!(
            plan("0-3-40"),
            MariaPlan::Unrelated(MariaGtid::parse("0-1-10").unwrap())
        );
    }

    #[test]
    fn a_replicas_own_transaction_behind_the_resume_point_is_refused() {
        // The pipeline read server 31 up to 0-31-670. A write made on the
        // replica (server 32, gtid_strict_mode=OFF) got 0-32-416, and the
        // primary's 0-31-417.. followed it there: resuming after 0-31-670
        // would skip it.
        let mut ours = MariaPos::parse("0-31-670").unwrap();
        // A history not checked against the server read (an older release's
        // checkpoint, a start from a GTID) is not judged: a server's older
        // transactions of a former primary would look the same.
        assert!(matches!(
            maria_plan(&ours, &maria_list("0-30-100,0-31-670")),
            MariaPlan::Resume { .. }
        ));
        ours.2 = true;
        assert_eq!(
            maria_plan(&ours, &maria_list("0-32-416,0-31-670")),
            MariaPlan::Skipped(vec![MariaGtid::parse("0-32-416").unwrap()])
        );
        // Server 32's transactions that the pipeline read (history noted
        // on the server it read, or read after an earlier failover) are not.
        let mut read = ours.clone();
        read.note_read(MariaGtid::parse("0-32-416").unwrap());
        assert!(matches!(
            maria_plan(&read, &maria_list("0-32-416,0-31-670")),
            MariaPlan::Resume { .. }
        ));
        let back = MariaPos::parse(&read.to_string()).unwrap();
        assert_eq!(
            (back.0, back.1),
            (read.0, read.1),
            "the numbers kept as text"
        );
        // Numbered after the resume point, they are streamed from it.
        assert!(matches!(
            maria_plan(&ours, &maria_list("0-31-670,0-32-671")),
            MariaPlan::Resume { .. }
        ));
    }

    #[test]
    fn previous_gtids_bodies_parse_and_damaged_counts_are_refused() {
        let mut d = 1u64.to_le_bytes().to_vec();
        d.extend_from_slice(&uuid_bytes(A).unwrap());
        d.extend_from_slice(&2u64.to_le_bytes());
        for (a, b) in [(1u64, 6u64), (7, 8)] {
            d.extend_from_slice(&a.to_le_bytes());
            d.extend_from_slice(&b.to_le_bytes());
        }
        assert_eq!(
            previous_gtids(&d).unwrap().to_string(),
            format!("{A}:1-5:7")
        );
        // Tagged (MySQL 8.3+): format byte 1, the count in bits 8-55, a
        // varlen tag length (4 << 1 = one byte 0x08) before each tag.
        let mut t = ((1u64 << 56) | (1 << 8)).to_le_bytes().to_vec();
        t.extend_from_slice(&uuid_bytes(A).unwrap());
        t.push(4 << 1);
        t.extend_from_slice(b"blue");
        t.extend_from_slice(&1u64.to_le_bytes());
        t.extend_from_slice(&3u64.to_le_bytes());
        t.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(
            previous_gtids(&t).unwrap().to_string(),
            format!("{A}:blue:3-4")
        );
        // A flipped interval count: refused, nothing allocated for it.
        let mut bad = d.clone();
        bad[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes());
        assert!(previous_gtids(&bad).is_none());
        assert!(previous_gtids(&d[..20]).is_none());
    }

    #[test]
    fn a_state_is_told_apart_by_its_form() {
        assert!(matches!(
            GtidState::parse("0-1-5").unwrap(),
            GtidState::Maria(_)
        ));
        assert!(matches!(
            GtidState::parse(&format!("{A}:1-5")).unwrap(),
            GtidState::Mysql(_)
        ));
        assert_eq!(uuid_text(&uuid_bytes(A).unwrap()), A);
    }
}
