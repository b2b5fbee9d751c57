//! Why a server cannot resume the pipeline by GTID, as data: the failover
//! passes over a server for any of these and stops when every server
//! refused, and `check` reports them per server. The sentences operators
//! read are rendered from the fields, once, here.

use std::fmt;

/// A server's GTID history does not allow resuming there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidRefusal {
    /// The resume position was read on another server and carries no GTID
    /// state to find it by.
    NoState {
        addr: String,
        server_id: u32,
        resume: String,
        read_from: Option<u32>,
    },
    /// The server holds transactions in replication domains the server the
    /// pipeline read never had.
    Errant {
        addr: String,
        errant: Vec<String>,
        /// The pipeline's position, to name in the way out.
        position: String,
    },
    /// The server holds transactions the pipeline never read, before where
    /// it would resume (written on a replica with gtid_strict_mode=OFF).
    Skipped {
        addr: String,
        skipped: Vec<String>,
        position: String,
    },
    /// The server holds nothing of the server and domain the pipeline is in.
    Unrelated {
        addr: String,
        server: u32,
        domain: u32,
        at: String,
    },
    /// MySQL with gtid_mode other than ON.
    GtidModeOff { addr: String, gtid_mode: String },
    /// MySQL purged GTIDs the pipeline has not read.
    Purged { addr: String, missing: String },
    /// The server's next transaction after a resume inside one is another.
    Diverged {
        addr: String,
        want: String,
        got: String,
    },
    /// The server itself refused to stream after the state (error 1236).
    Refused {
        addr: String,
        state: String,
        says: String,
    },
    /// Every server of `mysql.host` refused (or is unreachable).
    NoServer {
        /// Whether some servers were not refusing but unreachable.
        others_unreachable: bool,
        /// Each refusing server's address and reason.
        refusals: Vec<(String, GtidRefusal)>,
    },
}

impl fmt::Display for GtidRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidRefusal::NoState { addr, server_id, resume, read_from } => write!(
                f,
                "cannot resume on {addr} (server_id {server_id}): {resume} was read from server_id {} and carries no GTID state (gtid_mode OFF on MySQL, or a checkpoint written before binlog2kafka recorded GTIDs), and a file offset means nothing on another server. Run this pipeline against the server it read, or `binlog2kafka reset` it and set start.position=gtid:...",
                read_from.map_or_else(|| "?".into(), |s| s.to_string())
            ),
            GtidRefusal::Errant { addr, errant, position } => write!(
                f,
                "{addr} holds transactions in replication domains the server the pipeline read never had ({}): errant transactions written on it, which the old primary never made. Resuming there would publish them as if they had happened. Remove them from that server, or, to go on from it without them, `binlog2kafka reset` the pipeline and set start.position=gtid:{position},{} (which steps over them)",
                errant.join(","),
                errant.join(",")
            ),
            GtidRefusal::Skipped { addr, skipped, position } => write!(
                f,
                "{addr} holds {}, which the pipeline never read, before the point it would resume from ({position}): a transaction written on that server itself while it replicated (possible with gtid_strict_mode=OFF). Resuming there would skip it without a word. Apply its change where the consumers are (or re-snapshot the tables it touched) and then, to go on from that server, `binlog2kafka reset` the pipeline with start.position=gtid:{position}; or resume on a server that does not hold it",
                skipped.join(", ")
            ),
            GtidRefusal::Unrelated { addr, server, domain, at } => write!(
                f,
                "{addr} holds no transaction of server_id {server} in domain {domain}, where the pipeline is at {at}: it is not a replica of the server the pipeline read, or its binlog was reset. Resume on a server that has them (mysql.host), or re-snapshot and `binlog2kafka reset`"
            ),
            GtidRefusal::GtidModeOff { addr, gtid_mode } => write!(
                f,
                "cannot resume on {addr} by GTID: its gtid_mode is {gtid_mode}; failover between MySQL servers needs gtid_mode=ON (and enforce_gtid_consistency=ON) on all of them"
            ),
            GtidRefusal::Purged { addr, missing } => write!(
                f,
                "{addr} has purged transactions the pipeline has not read yet ({missing}); resuming there would skip them. Resume on a server that still has them, or re-snapshot and `binlog2kafka reset`"
            ),
            GtidRefusal::Diverged { addr, want, got } => write!(
                f,
                "resuming inside transaction {want} on {addr}, the server's next transaction is {got}: its history differs from the one the pipeline read. Resume on a server that has {want}, or re-snapshot and `binlog2kafka reset`"
            ),
            GtidRefusal::Refused { addr, state, says } => write!(
                f,
                "the server at {addr} cannot resume after GTID state {state}: {says} It lacks transactions the pipeline needs (purged there, or its history diverged from the server the pipeline read). Resume on a server that has them (mysql.host), or re-snapshot the data, `binlog2kafka reset` the pipeline and set start.position"
            ),
            GtidRefusal::NoServer { others_unreachable, refusals } => {
                write!(
                    f,
                    "no server of mysql.host can resume the pipeline{}, so it stopped with the checkpoint where it was. ",
                    if *others_unreachable { "; the others are unreachable" } else { "" }
                )?;
                for (i, (addr, why)) in refusals.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{addr}: {why}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_servers_reason_is_named_when_none_can_resume() {
        let purged = |addr: &str| GtidRefusal::Purged {
            addr: addr.into(),
            missing: "u:1-5".into(),
        };
        let all = GtidRefusal::NoServer {
            others_unreachable: true,
            refusals: vec![("a:1".into(), purged("a:1")), ("b:2".into(), purged("b:2"))],
        };
        let text = all.to_string();
        assert!(text.starts_with("no server of mysql.host can resume the pipeline; the others are unreachable, so it stopped"), "{text}");
        assert!(
            text.contains(
                ". a:1: a:1 has purged transactions the pipeline has not read yet (u:1-5)"
            ),
            "{text}"
        );
        assert!(text.contains(" | b:2: b:2 has purged"), "{text}");
    }
}
