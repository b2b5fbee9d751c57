//! A fleet: many pipelines over a few hosts, spread by Kafka's group
//! protocol.
//!
//! Every host of a fleet (`fleet.name`) is a member of one Kafka group,
//! with a protocol type of its own, as Kafka Connect's workers are. The
//! coordinator elects a leader; the leader reads what each member runs
//! (its JoinGroup metadata) and hands out the pipelines defined in the
//! fleet's topic ([`definitions`]) with [`assign`]: balanced, sticky and
//! cooperative, so a join or a leave moves only what must move and stops
//! nothing that stays. Each pipeline runs with its own threads (a
//! [`Runner`] starts and stops them); the pipeline's transactional id
//! makes a hand-over safe even when a cut-off host still believes it runs
//! the pipeline: the broker refuses its writes once the new host fenced it.
//!
//! This module is the member's loop only: it knows nothing of how a
//! pipeline is configured or run (that is `cli`'s, through [`Runner`]).

pub mod assign;
pub mod definitions;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::kafka::group::{Beat, GroupSettings, Membership};
use crate::kafka::{Client, KafkaError};
pub use definitions::Definition;

/// The protocol type of the fleet's group: a consumer group of the same
/// name cannot be joined by mistake.
pub const PROTOCOL_TYPE: &str = "binlog2kafka-fleet";
/// The one assignor the members speak.
pub const PROTOCOL: &str = "cooperative-sticky-v1";

/// What the member loop needs, built by `config`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    /// The definitions topic.
    pub topic: String,
    /// Where the hosts say what their pipelines do ([`status`]).
    pub status_topic: String,
    pub session_timeout: Duration,
    pub heartbeat: Duration,
    pub replication: i16,
}

/// Starts and stops the pipelines this host is given.
pub trait Runner {
    /// Starts `def` and returns at once; its threads run on.
    fn start(&mut self, def: &Definition);
    /// Stops these pipelines cleanly (each its final checkpoint), all at
    /// once, and returns when every one has stopped: a host handing over
    /// a hundred pipelines takes as long as its slowest, not their sum.
    fn stop(&mut self, names: &[String]);
    /// Collects the pipelines that ended by themselves (and logs how).
    fn reap(&mut self);
    /// Whether the host was asked to stop (SIGTERM): the loop hands its
    /// pipelines over and leaves the group.
    fn stop_requested(&self) -> bool;
    /// What the member loop knows, for the status page.
    fn report(&mut self, view: &View);
}

/// The member's view of the fleet, for the status page.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub member_id: String,
    pub generation: i32,
    pub leader: bool,
    pub members: usize,
    pub assigned: BTreeSet<String>,
    /// Every defined pipeline, and whether it is paused.
    pub pipelines: BTreeMap<String, bool>,
}

/// A member's JoinGroup metadata.
#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    host: String,
    owned: BTreeSet<String>,
    /// A digest of the definitions this member has read. A member that
    /// saw them change rejoins with a new digest: changed metadata makes
    /// every coordinator rebalance (Kafka's also rebalances when the leader
    /// merely rejoins; Tansu's does not), as Kafka Connect's workers put
    /// their config topic offset in theirs.
    #[serde(default)]
    definitions: u32,
}

/// The digest of a set of definitions (see [`Metadata::definitions`]).
fn digest(defs: &BTreeMap<String, Definition>) -> u32 {
    crc32fast::hash(&serde_json::to_vec(defs).expect("plain data"))
}

/// The leader's SyncGroup assignment for one member.
#[derive(Debug, Serialize, Deserialize)]
struct Assignment {
    assigned: BTreeSet<String>,
    /// The group's size, which only the leader sees.
    #[serde(default)]
    members: usize,
}

/// Errors that stop the member loop (a pipeline's own failure does not).
#[derive(Debug)]
pub enum FleetError {
    Kafka {
        during: String,
        err: KafkaError,
    },
    /// The broker has no group coordinator this daemon can speak to.
    NoGroups {
        broker: String,
    },
}

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetError::Kafka { during, err } => write!(f, "{during}: {err}"),
            FleetError::NoGroups { broker } => write!(
                f,
                "the broker {broker} has no group coordinator binlog2kafka can speak to (JoinGroup v3-7, SyncGroup v2-5, Heartbeat v2-4, LeaveGroup v2-4: Kafka 2.1 or newer); run the pipelines one per process instead (leave fleet.name empty)"
            ),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::Kafka { err, .. } => Some(err),
            FleetError::NoGroups { .. } => None,
        }
    }
}

fn kafka(during: &str) -> impl FnOnce(KafkaError) -> FleetError + '_ {
    move |err| FleetError::Kafka {
        during: during.to_string(),
        err,
    }
}

/// The pipelines that should run: defined and not paused.
fn runnable(defs: &BTreeMap<String, Definition>) -> BTreeSet<String> {
    defs.values()
        .filter(|d| !d.paused)
        .map(|d| d.name.clone())
        .collect()
}

/// The member's loop: joins the group, runs what it is assigned, and hands
/// everything over when the host stops. Returns once the host has left the
/// group.
pub fn run(
    s: &Settings,
    host: &str,
    mut client: Client,
    runner: &mut dyn Runner,
) -> Result<(), FleetError> {
    if !client
        .offers_groups()
        .map_err(kafka("asking the broker what it offers"))?
    {
        return Err(FleetError::NoGroups {
            broker: client.first_broker(),
        });
    }
    let group = GroupSettings {
        group: s.name.clone(),
        protocol_type: PROTOCOL_TYPE.into(),
        protocol: PROTOCOL.into(),
        session_timeout: s.session_timeout,
        rebalance_timeout: s.session_timeout,
    };
    let mut me = Membership::default();
    let mut defs = read_definitions(&mut client, s)?;
    let mut assigned: BTreeSet<String> = BTreeSet::new();
    let mut view = View::default();
    // When the coordinator last answered this member: past the session
    // timeout without an answer, the group has given its pipelines away.
    let mut last_heard = Instant::now();
    log::info!(
        "fleet {}: joining as {host}; {} pipelines defined in {}",
        s.name,
        defs.len(),
        s.topic
    );
    'rounds: loop {
        if runner.stop_requested() {
            break;
        }
        // One round: join, the leader assigns, everyone learns its share.
        let meta = Metadata {
            host: host.to_string(),
            owned: assigned.clone(),
            definitions: digest(&defs),
        };
        let joined = match client.join_group(
            &group,
            &mut me,
            Bytes::from(serde_json::to_vec(&meta).expect("plain data")),
        ) {
            Ok(j) => j,
            Err(e) if e.is_retriable() => {
                log::warn!(
                    "fleet {}: joining the group failed ({e}); trying again",
                    s.name
                );
                if last_heard.elapsed() >= s.session_timeout {
                    lost_contact(runner, &mut assigned, &mut me, s, &mut view);
                }
                std::thread::sleep(s.heartbeat);
                continue;
            }
            Err(e) => return Err(kafka("joining the fleet's group")(e)),
        };
        let leader = joined.is_leader(&me);
        let plan = if leader {
            // The leader assigns from the newest definitions.
            match read_definitions(&mut client, s) {
                Ok(d) => defs = d,
                Err(e) => {
                    log::warn!("fleet {}: {e}; joining again", s.name);
                    std::thread::sleep(s.heartbeat);
                    continue;
                }
            }
            let members: Vec<assign::Member> = joined
                .members
                .iter()
                .map(|(id, m)| assign::Member {
                    id: id.clone(),
                    owned: serde_json::from_slice::<Metadata>(m)
                        .map(|m| m.owned)
                        .unwrap_or_default(),
                })
                .collect();
            let out = assign::assign(&members, &runnable(&defs));
            out.into_iter()
                .map(|(id, set)| {
                    let a = Assignment {
                        assigned: set,
                        members: joined.members.len(),
                    };
                    (id, Bytes::from(serde_json::to_vec(&a).expect("plain data")))
                })
                .collect()
        } else {
            Vec::new()
        };
        let got = match client.sync_group(&group, &mut me, plan) {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) if e.is_retriable() => {
                log::warn!("fleet {}: SyncGroup failed ({e}); joining again", s.name);
                continue;
            }
            Err(e) => return Err(kafka("learning this host's share of the fleet")(e)),
        };
        let (new, members): (BTreeSet<String>, usize) = if got.is_empty() {
            (BTreeSet::new(), 0)
        } else {
            match serde_json::from_slice::<Assignment>(&got) {
                Ok(a) => (a.assigned, a.members),
                Err(e) => {
                    log::warn!(
                        "fleet {}: unreadable assignment ({e}); joining again",
                        s.name
                    );
                    continue;
                }
            }
        };
        last_heard = Instant::now();
        if !leader {
            match read_definitions(&mut client, s) {
                Ok(d) => defs = d,
                Err(e) => log::warn!(
                    "fleet {}: {e}; going on with the definitions read before",
                    s.name
                ),
            }
        }
        // Stop what was taken away first, then start what was given.
        let revoked: Vec<String> = assigned.difference(&new).cloned().collect();
        for name in &revoked {
            log::info!("fleet {}: handing pipeline {name} over", s.name);
            assigned.remove(name);
        }
        if !revoked.is_empty() {
            runner.stop(&revoked);
        }
        for name in new.difference(&assigned).cloned().collect::<Vec<_>>() {
            match defs.get(&name) {
                Some(d) => {
                    log::info!("fleet {}: starting pipeline {name}", s.name);
                    runner.start(d);
                    assigned.insert(name);
                }
                None => log::warn!(
                    "fleet {}: assigned pipeline {name}, which this host does not see defined yet; joining again",
                    s.name
                ),
            }
        }
        view = View {
            member_id: me.member_id.clone(),
            generation: me.generation,
            leader,
            members,
            assigned: assigned.clone(),
            pipelines: defs.iter().map(|(n, d)| (n.clone(), d.paused)).collect(),
        };
        runner.report(&view);
        log::info!(
            "fleet {}: generation {}, {} member(s){}; this host runs {} pipeline(s): {}",
            s.name,
            me.generation,
            members,
            if leader { ", this host leads" } else { "" },
            assigned.len(),
            assigned.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        if !revoked.is_empty() || assigned != new {
            // What this host let go goes to another member in the next
            // round, which joining again starts.
            continue;
        }
        // Steady: heartbeats, and a look at the definitions each time.
        loop {
            let wake = Instant::now() + s.heartbeat;
            while Instant::now() < wake {
                if runner.stop_requested() {
                    break 'rounds;
                }
                runner.reap();
                std::thread::sleep(Duration::from_millis(100).min(s.heartbeat));
            }
            match client.heartbeat(&group, &mut me) {
                Ok(Beat::Steady) => last_heard = Instant::now(),
                Ok(Beat::Rebalance) => continue 'rounds,
                Ok(Beat::Expelled) => {
                    log::warn!(
                        "fleet {}: the group no longer knows this host (its session expired); its pipelines may run elsewhere now: stopping them and joining again",
                        s.name
                    );
                    lost_contact(runner, &mut assigned, &mut me, s, &mut view);
                    continue 'rounds;
                }
                Err(e) => {
                    if last_heard.elapsed() >= s.session_timeout {
                        log::warn!(
                            "fleet {}: no heartbeat answered for {:?} ({e}); its pipelines may run elsewhere now: stopping them",
                            s.name,
                            s.session_timeout
                        );
                        lost_contact(runner, &mut assigned, &mut me, s, &mut view);
                        continue 'rounds;
                    }
                    continue;
                }
            }
            match read_definitions(&mut client, s) {
                Ok(now) if now != defs => {
                    let changed: Vec<String> = assigned
                        .iter()
                        .filter(|n| match (defs.get(*n), now.get(*n)) {
                            (Some(a), Some(b)) => {
                                a.properties != b.properties || a.server_id != b.server_id
                            }
                            _ => false,
                        })
                        .cloned()
                        .collect();
                    let set_changed = runnable(&now) != runnable(&defs);
                    defs = now;
                    for name in changed {
                        log::info!(
                            "fleet {}: the definition of {name} changed: restarting it",
                            s.name
                        );
                        runner.stop(std::slice::from_ref(&name));
                        runner.start(&defs[&name]);
                    }
                    if set_changed {
                        log::info!(
                            "fleet {}: pipelines were put, deleted, paused or resumed: rebalancing",
                            s.name
                        );
                        continue 'rounds;
                    }
                }
                Ok(_) => {}
                Err(e) => log::warn!("fleet {}: cannot read the definitions ({e})", s.name),
            }
        }
    }
    // The host stops: every pipeline's final checkpoint, then leave, so
    // the others take them at once instead of after the session timeout.
    runner.stop(&assigned.iter().cloned().collect::<Vec<_>>());
    if let Err(e) = client.leave_group(&group, &mut me) {
        log::warn!("fleet {}: leaving the group failed ({e}); the others take over after the session timeout", s.name);
    }
    log::info!(
        "fleet {}: left the group; {} pipeline(s) handed over",
        s.name,
        assigned.len()
    );
    Ok(())
}

/// The host can no longer prove it is a member: whatever it ran may have
/// been given to another host, so it stops all of it (the broker would
/// refuse their writes anyway once the new owner fences them).
fn lost_contact(
    runner: &mut dyn Runner,
    assigned: &mut BTreeSet<String>,
    me: &mut Membership,
    s: &Settings,
    view: &mut View,
) {
    runner.stop(&assigned.iter().cloned().collect::<Vec<_>>());
    if !assigned.is_empty() {
        log::info!(
            "fleet {}: stopped {} pipeline(s) after losing the group",
            s.name,
            assigned.len()
        );
    }
    assigned.clear();
    me.member_id.clear();
    view.assigned.clear();
    runner.report(view);
}

fn read_definitions(
    client: &mut Client,
    s: &Settings,
) -> Result<BTreeMap<String, Definition>, FleetError> {
    Ok(definitions::read_all(client, &s.topic)
        .map_err(kafka("reading the fleet's definitions"))?
        .unwrap_or_default())
}
