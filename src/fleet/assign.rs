//! Who runs which pipeline: what the group's leader computes after every
//! join round, from what each member says it runs.
//!
//! Balanced: every member gets ⌊n/m⌋ or ⌈n/m⌉ of the n pipelines.
//! Sticky: a member keeps what it runs, up to its share. Cooperative, as
//! KIP-415 made Kafka Connect's rebalances (and KIP-429 the consumer's):
//! a pipeline that must move is first only *taken away* from its owner —
//! nobody gets it in this round — and handed to its new member in the next
//! round, which the owner starts by rejoining once it has stopped it. So
//! two hosts never run a pipeline at the same time by the assignment's
//! doing (the transactional-id fencing would refuse the older one anyway),
//! and a pipeline that stays where it is is never stopped by someone
//! else's join or leave.

use std::collections::{BTreeMap, BTreeSet};

/// A member as its JoinGroup metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// The pipelines it runs now.
    pub owned: BTreeSet<String>,
}

/// Each member's assignment for this round (every member is named, with
/// an empty set when it gets nothing).
pub fn assign(
    members: &[Member],
    pipelines: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out: BTreeMap<String, BTreeSet<String>> = members
        .iter()
        .map(|m| (m.id.clone(), BTreeSet::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    // Who runs what now: a pipeline two members claim (one was cut off and
    // came back) stays with the first, in member-id order; it is taken
    // from the other.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut owns: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &members {
        let mine = owns.entry(m.id.as_str()).or_default();
        for p in &m.owned {
            if pipelines.contains(p) && !owner.contains_key(p.as_str()) {
                owner.insert(p, &m.id);
                mine.push(p);
            }
        }
    }
    // Shares: the members that run the most get the ⌈n/m⌉ shares, so as
    // little as possible moves.
    let (n, m) = (pipelines.len(), members.len());
    let mut by_load: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    by_load.sort_by(|a, b| owns[b].len().cmp(&owns[a].len()).then(a.cmp(b)));
    let share: BTreeMap<&str, usize> = by_load
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, n / m + usize::from(i < n % m)))
        .collect();
    // Each keeps what it runs, up to its share.
    let mut target: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for (id, mine) in &owns {
        let keep: BTreeSet<&str> = mine.iter().take(share[id]).copied().collect();
        placed.extend(keep.iter().copied());
        target.insert(id, keep);
    }
    // The rest go, in name order, to the member furthest below its share.
    for p in pipelines.iter().map(String::as_str) {
        if placed.contains(p) {
            continue;
        }
        let to = by_load
            .iter()
            .copied()
            .max_by(|a, b| {
                let room = |id: &str| share[id] - target[id].len();
                room(a).cmp(&room(b)).then(b.cmp(a))
            })
            .expect("at least one member");
        target.get_mut(to).expect("every member").insert(p);
    }
    // Cooperative: what another member still runs is withheld this round.
    for (id, set) in target {
        let mine = out.get_mut(id).expect("every member");
        for p in set {
            match owner.get(p) {
                Some(o) if *o != id => {}
                _ => {
                    mine.insert(p.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> BTreeSet<String> {
        (0..n).map(|i| format!("{prefix}{i:02}")).collect()
    }

    fn member(id: &str, owned: &BTreeSet<String>) -> Member {
        Member {
            id: id.into(),
            owned: owned.clone(),
        }
    }

    /// Runs rounds the way the members do (each runs what it is assigned;
    /// a member that lost something rejoins) until nothing changes.
    /// Returns what each runs and how many rounds it took.
    fn settle(
        mut running: BTreeMap<String, BTreeSet<String>>,
        pipelines: &BTreeSet<String>,
    ) -> (BTreeMap<String, BTreeSet<String>>, usize) {
        for round in 1..10 {
            let members: Vec<Member> = running.iter().map(|(id, o)| member(id, o)).collect();
            let next = assign(&members, pipelines);
            // Nothing runs twice at any point.
            let mut seen = BTreeSet::new();
            for set in next.values() {
                for p in set {
                    assert!(seen.insert(p.clone()), "{p} assigned twice");
                }
            }
            if next == running {
                return (running, round);
            }
            running = next;
        }
        panic!("no stable assignment after 10 rounds");
    }

    fn sizes(a: &BTreeMap<String, BTreeSet<String>>) -> Vec<usize> {
        a.values().map(BTreeSet::len).collect()
    }

    #[test]
    fn twelve_pipelines_spread_four_four_four_over_three_new_members() {
        let p = names("p", 12);
        let empty = BTreeMap::from([
            ("a".into(), BTreeSet::new()),
            ("b".into(), BTreeSet::new()),
            ("c".into(), BTreeSet::new()),
        ]);
        let (a, rounds) = settle(empty, &p);
        assert_eq!(sizes(&a), [4, 4, 4]);
        assert_eq!(rounds, 2, "one round assigns, the next confirms");
    }

    #[test]
    fn a_joining_member_takes_a_fair_share_and_nothing_else_moves() {
        let p = names("p", 12);
        let (three, _) = settle(
            BTreeMap::from([
                ("a".into(), BTreeSet::new()),
                ("b".into(), BTreeSet::new()),
                ("c".into(), BTreeSet::new()),
            ]),
            &p,
        );
        let mut four = three.clone();
        four.insert("d".into(), BTreeSet::new());
        // The first round only takes away: d gets nothing yet, and what
        // the others keep is a subset of what they ran.
        let members: Vec<Member> = four.iter().map(|(id, o)| member(id, o)).collect();
        let first = assign(&members, &p);
        assert!(first["d"].is_empty());
        for id in ["a", "b", "c"] {
            assert!(first[id].is_subset(&three[id]));
        }
        let (after, _) = settle(four, &p);
        assert_eq!(sizes(&after), [3, 3, 3, 3]);
        let moved: usize = ["a", "b", "c"]
            .iter()
            .map(|id| three[*id].difference(&after[*id]).count())
            .sum();
        assert_eq!(moved, 3, "only d's share moves");
        for id in ["a", "b", "c"] {
            assert!(
                after[id].is_subset(&three[id]),
                "{id} got something it did not run"
            );
        }
    }

    #[test]
    fn a_dead_members_pipelines_go_to_the_others_at_once_and_theirs_stay() {
        let p = names("p", 12);
        let (three, _) = settle(
            BTreeMap::from([
                ("a".into(), BTreeSet::new()),
                ("b".into(), BTreeSet::new()),
                ("c".into(), BTreeSet::new()),
            ]),
            &p,
        );
        let mut two = three.clone();
        let dead = two.remove("b").unwrap();
        let members: Vec<Member> = two.iter().map(|(id, o)| member(id, o)).collect();
        let first = assign(&members, &p);
        // In one round: nobody else runs b's pipelines, so they are handed
        // out at once.
        assert_eq!(sizes(&first), [6, 6]);
        for id in ["a", "c"] {
            assert!(
                three[id].is_subset(&first[id]),
                "{id} lost a pipeline it ran"
            );
        }
        let gained: BTreeSet<String> = first
            .values()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .difference(&(&three["a"] | &three["c"]))
            .cloned()
            .collect();
        assert_eq!(gained, dead);
    }

    #[test]
    fn a_pipeline_claimed_twice_stays_with_one_member() {
        let p = names("p", 4);
        let all = p.clone();
        let a = assign(&[member("a", &all), member("b", &all)], &p);
        assert!(a["a"].is_disjoint(&a["b"]));
        assert_eq!(a["a"].len(), 2);
        assert!(a["b"].is_empty(), "b gets its share once a has let it go");
    }

    #[test]
    fn deleted_and_paused_pipelines_are_taken_away() {
        let p = names("p", 4);
        let mut fewer = p.clone();
        fewer.remove("p01");
        let a = assign(&[member("a", &p)], &fewer);
        assert_eq!(a["a"], fewer);
    }

    #[test]
    fn uneven_counts_differ_by_one_at_most_and_favour_who_runs_more() {
        let p = names("p", 7);
        let a_runs: BTreeSet<String> = p.iter().take(5).cloned().collect();
        let b_runs: BTreeSet<String> = p.iter().skip(5).cloned().collect();
        let (after, _) = settle(
            BTreeMap::from([
                ("a".into(), a_runs.clone()),
                ("b".into(), b_runs.clone()),
                ("c".into(), BTreeSet::new()),
            ]),
            &p,
        );
        assert_eq!(sizes(&after), [3, 2, 2]);
        assert!(after["a"].is_subset(&a_runs) && after["b"] == b_runs);
    }

    #[test]
    fn no_members_no_assignment_and_no_pipelines_empty_sets() {
        assert!(assign(&[], &names("p", 3)).is_empty());
        let a = assign(&[member("a", &BTreeSet::new())], &BTreeSet::new());
        assert!(a["a"].is_empty());
    }
}
