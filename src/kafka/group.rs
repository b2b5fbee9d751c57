//! Kafka's classic group protocol, as a member: FindCoordinator (for a
//! group), JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
//!
//! The fleet uses it the way Kafka Connect's workers do: a protocol type of
//! its own, so the coordinator only groups the members and elects a
//! leader; what a member's metadata and assignment mean is the fleet's
//! business (`fleet::assign`). Nothing here runs a thread: the fleet's
//! member loop calls these one at a time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    join_group_request::JoinGroupRequestProtocol, leave_group_request::MemberIdentity,
    sync_group_request::SyncGroupRequestAssignment, ApiKey, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{Client, KafkaError};

/// What a member says to the coordinator about itself, fixed for its life.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub group: String,
    /// The protocol type (`binlog2kafka-fleet`): members of another type
    /// cannot join the group by mistake.
    pub protocol_type: String,
    /// The one protocol (assignor) this member speaks.
    pub protocol: String,
    /// A member that sends no heartbeat for this long is removed.
    pub session_timeout: Duration,
    /// How long the coordinator waits for every member to rejoin once a
    /// rebalance starts.
    pub rebalance_timeout: Duration,
}

/// This member's standing in the group.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Empty until the coordinator hands one out.
    pub member_id: String,
    pub generation: i32,
    coordinator: Option<i32>,
}

/// What JoinGroup answered.
#[derive(Debug, Clone)]
pub struct Joined {
    pub generation: i32,
    pub leader_id: String,
    /// Every member and its metadata: filled for the leader only.
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    pub fn is_leader(&self, m: &Membership) -> bool {
        self.leader_id == m.member_id
    }
}

/// A heartbeat's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Still a member of the current generation.
    Steady,
    /// A rebalance has begun: join again (keeping what runs).
    Rebalance,
    /// The coordinator no longer knows this member or its generation (the
    /// session expired): join again as a new member; what it ran may be
    /// running elsewhere already.
    Expelled,
}

/// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS.
fn coordinator_moved(code: i16) -> bool {
    matches!(code, 14..=16)
}

const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

fn refused(op: &str, group: &str, code: i16) -> KafkaError {
    KafkaError::Broker {
        op: format!("{op} of group {group}"),
        code,
        detail: String::new(),
    }
}

impl Client {
    /// Whether the broker has a group coordinator this client can speak to.
    pub fn offers_groups(&mut self) -> Result<bool, KafkaError> {
        self.with_conn(None, |c| {
            Ok([
                ApiKey::FindCoordinator,
                ApiKey::JoinGroup,
                ApiKey::SyncGroup,
                ApiKey::Heartbeat,
                ApiKey::LeaveGroup,
            ]
            .iter()
            .all(|k| c.has(*k)))
        })
    }

    /// The broker the client is connected to first, for error lines.
    pub fn first_broker(&mut self) -> String {
        self.with_conn(None, |c| Ok(c.addr().to_string()))
            .unwrap_or_else(|_| self.config.brokers.join(","))
    }

    fn group_coordinator(
        &mut self,
        s: &GroupSettings,
        m: &mut Membership,
    ) -> Result<i32, KafkaError> {
        if let Some(node) = m.coordinator {
            return Ok(node);
        }
        let deadline = Instant::now() + self.config.timeout;
        loop {
            let (code, node) = self.find_coordinator(0, &s.group)?;
            if code == 0 {
                m.coordinator = Some(node);
                return Ok(node);
            }
            if !coordinator_moved(code) || Instant::now() >= deadline {
                return Err(refused("finding the coordinator", &s.group, code));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Joins (or rejoins) the group with `metadata` and waits for the
    /// coordinator to close the round: every member rejoined, or the
    /// rebalance timeout passed. A member without an id gets one first
    /// (MEMBER_ID_REQUIRED, KIP-394) and joins again with it.
    pub fn join_group(
        &mut self,
        s: &GroupSettings,
        m: &mut Membership,
        metadata: Bytes,
    ) -> Result<Joined, KafkaError> {
        let deadline = Instant::now() + s.rebalance_timeout + self.config.timeout;
        loop {
            let node = self.group_coordinator(s, m)?;
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(s.group.clone())))
                .with_session_timeout_ms(s.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(s.rebalance_timeout.as_millis() as i32)
                .with_member_id(StrBytes::from_string(m.member_id.clone()))
                .with_protocol_type(StrBytes::from_string(s.protocol_type.clone()))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_string(s.protocol.clone()))
                    .with_metadata(metadata.clone())]);
            let resp = self.with_conn(Some(node), |c| c.send(ApiKey::JoinGroup, &req))?;
            match resp.error_code {
                0 => {
                    m.member_id = resp.member_id.to_string();
                    m.generation = resp.generation_id;
                    return Ok(Joined {
                        generation: resp.generation_id,
                        leader_id: resp.leader.to_string(),
                        members: resp
                            .members
                            .iter()
                            .map(|x| (x.member_id.to_string(), x.metadata.clone()))
                            .collect(),
                    });
                }
                MEMBER_ID_REQUIRED => m.member_id = resp.member_id.to_string(),
                UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID => m.member_id.clear(),
                code if coordinator_moved(code) => {
                    m.coordinator = None;
                    std::thread::sleep(Duration::from_millis(200));
                }
                REBALANCE_IN_PROGRESS => std::thread::sleep(Duration::from_millis(100)),
                code => return Err(refused("JoinGroup", &s.group, code)),
            }
            if Instant::now() >= deadline {
                return Err(refused("JoinGroup (timed out)", &s.group, resp.error_code));
            }
        }
    }

    /// Sends the leader's `assignments` (empty from the others) and returns
    /// this member's. `Ok(None)`: a new rebalance began meanwhile, join
    /// again.
    pub fn sync_group(
        &mut self,
        s: &GroupSettings,
        m: &mut Membership,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Option<Bytes>, KafkaError> {
        let node = self.group_coordinator(s, m)?;
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(s.group.clone())))
            .with_generation_id(m.generation)
            .with_member_id(StrBytes::from_string(m.member_id.clone()))
            .with_protocol_type(Some(StrBytes::from_string(s.protocol_type.clone())))
            .with_protocol_name(Some(StrBytes::from_string(s.protocol.clone())))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(id, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(id))
                            .with_assignment(a)
                    })
                    .collect(),
            );
        let resp = self.with_conn(Some(node), |c| c.send(ApiKey::SyncGroup, &req))?;
        match resp.error_code {
            0 => Ok(Some(resp.assignment)),
            REBALANCE_IN_PROGRESS => Ok(None),
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                m.member_id.clear();
                Ok(None)
            }
            code if coordinator_moved(code) => {
                m.coordinator = None;
                Ok(None)
            }
            code => Err(refused("SyncGroup", &s.group, code)),
        }
    }

    /// One heartbeat.
    pub fn heartbeat(&mut self, s: &GroupSettings, m: &mut Membership) -> Result<Beat, KafkaError> {
        let node = self.group_coordinator(s, m)?;
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(s.group.clone())))
            .with_generation_id(m.generation)
            .with_member_id(StrBytes::from_string(m.member_id.clone()));
        let resp = self.with_conn(Some(node), |c| c.send(ApiKey::Heartbeat, &req))?;
        match resp.error_code {
            0 => Ok(Beat::Steady),
            REBALANCE_IN_PROGRESS => Ok(Beat::Rebalance),
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID => {
                m.member_id.clear();
                Ok(Beat::Expelled)
            }
            code if coordinator_moved(code) => {
                m.coordinator = None;
                Ok(Beat::Rebalance)
            }
            code => Err(refused("Heartbeat", &s.group, code)),
        }
    }

    /// Leaves the group at once, so the others rebalance now instead of
    /// after the session timeout.
    pub fn leave_group(&mut self, s: &GroupSettings, m: &mut Membership) -> Result<(), KafkaError> {
        if m.member_id.is_empty() {
            return Ok(());
        }
        let node = self.group_coordinator(s, m)?;
        let id = StrBytes::from_string(m.member_id.clone());
        let resp = self.with_conn(Some(node), |c| {
            let req = LeaveGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(s.group.clone())));
            // v3 and up name the leaving members in a list.
            let req = if c.version(ApiKey::LeaveGroup) >= 3 {
                req.with_members(vec![MemberIdentity::default().with_member_id(id.clone())])
            } else {
                req.with_member_id(id.clone())
            };
            c.send(ApiKey::LeaveGroup, &req)
        })?;
        m.member_id.clear();
        match resp.error_code {
            0 | UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(refused("LeaveGroup", &s.group, code)),
        }
    }
}
