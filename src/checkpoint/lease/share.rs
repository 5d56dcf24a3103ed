//! A fair share of the leases, decided each coordination round from what one worker sees. Each
//! worker aims at `ceil(leases / live workers)`. It takes free leases, and leases whose holder
//! stopped renewing, up to its share. When none is left and it holds fewer, it claims leases from
//! the most loaded workers, never more than its share and only while each move narrows the gap
//! (bounded stealing). A holder hands a claimed lease over only after draining it, so a lease
//! never has two writers, and a lease is never taken from a live holder.

use std::collections::{BTreeMap, HashSet};

use super::Lease;

#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    Take(Lease),
    Claim(Lease),
}

/// What one worker sees in a round.
pub struct View<'a> {
    pub me: &'a str,
    /// The leases of the work this worker knows (one per table).
    pub leases: &'a [Lease],
    /// Live workers, this one included.
    pub live: usize,
    /// Leases whose holder stopped renewing for a lease duration on this worker's clock.
    pub expired: &'a HashSet<String>,
}

impl View<'_> {
    pub fn share(&self) -> usize {
        self.leases.len().div_ceil(self.live.max(1))
    }
}

/// This round's takes, or else at most one claim.
pub fn plan(v: &View) -> Vec<Act> {
    let share = v.share();
    let mine = v.leases.iter().filter(|l| l.owner.as_deref() == Some(v.me)).count();
    let want = share.saturating_sub(mine);
    let takes: Vec<Act> = v
        .leases
        .iter()
        .filter(|l| match &l.owner {
            None => true,
            Some(o) => o != v.me && v.expired.contains(&l.key),
        })
        .take(want)
        .map(|l| Act::Take(l.clone()))
        .collect();
    if want == 0 || !takes.is_empty() {
        return takes;
    }
    claims(v, share, mine)
}

/// Claims that bring this worker to its share, each from the worker then holding the most, and
/// only while that one holds at least two more than this one would (a move must narrow the gap,
/// or two workers would pass a lease back and forth). Leases this worker claimed already count as
/// its own.
fn claims(v: &View, share: usize, mine: usize) -> Vec<Act> {
    let mut mine = mine + v.leases.iter().filter(|l| l.claim.as_deref() == Some(v.me)).count();
    let mut held = BTreeMap::<&str, Vec<&Lease>>::new();
    // A claimed lease is on its way to its claimant: not its holder's any more.
    for l in v.leases.iter().filter(|l| l.claim.is_none()) {
        if let Some(o) = l.owner.as_deref().filter(|o| *o != v.me) {
            held.entry(o).or_default().push(l);
        }
    }
    let mut acts = Vec::new();
    while mine < share {
        // The most loaded holder (the first by name among equals, so that workers agree).
        let Some((_, leases)) = held.iter_mut().rev().max_by_key(|(_, ls)| ls.len()) else {
            break;
        };
        if leases.len() < mine + 2 {
            break;
        }
        acts.push(Act::Claim(leases.remove(0).clone()));
        mine += 1;
    }
    acts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(key: &str, owner: Option<&str>) -> Lease {
        Lease {
            key: key.into(),
            owner: owner.map(str::to_string),
            counter: 1,
            ..Lease::default()
        }
    }

    fn plan_for(me: &str, leases: &[Lease], live: usize, expired: &[&str]) -> Vec<Act> {
        let expired = expired.iter().map(|k| k.to_string()).collect();
        plan(&View {
            me,
            leases,
            live,
            expired: &expired,
        })
    }

    fn keys(acts: &[Act]) -> Vec<String> {
        acts.iter()
            .map(|a| match a {
                Act::Take(l) => format!("take {}", l.key),
                Act::Claim(l) => format!("claim {}", l.key),
            })
            .collect()
    }

    #[test]
    fn a_worker_takes_free_leases_up_to_its_share_only() {
        let leases: Vec<Lease> = (0..7).map(|i| lease(&format!("t{i}"), None)).collect();
        assert_eq!(keys(&plan_for("a", &leases, 3, &[])), ["take t0", "take t1", "take t2"]);
        assert_eq!(plan_for("a", &leases, 1, &[]).len(), 7, "alone, it takes everything");
    }

    #[test]
    fn a_live_holders_lease_is_never_taken_and_an_expired_one_is() {
        let leases = vec![lease("t0", Some("b")), lease("t1", Some("b"))];
        assert_eq!(keys(&plan_for("a", &leases, 1, &["t1"])), ["take t1"]);
        assert_eq!(
            keys(&plan_for("a", &leases, 2, &[])),
            ["claim t0"],
            "b is alive: its lease is asked for, not taken"
        );
    }

    #[test]
    fn a_worker_that_joins_claims_its_whole_share_at_once_and_no_more() {
        let leases: Vec<Lease> = (0..6).map(|i| lease(&format!("t{i}"), Some("b"))).collect();
        assert_eq!(
            keys(&plan_for("a", &leases, 2, &[])),
            ["claim t0", "claim t1", "claim t2"]
        );
    }

    #[test]
    fn an_underloaded_worker_claims_one_lease_of_the_most_loaded_worker_above_the_share() {
        let leases = vec![
            lease("t0", Some("b")),
            lease("t1", Some("b")),
            lease("t2", Some("b")),
            lease("t3", Some("c")),
        ];
        // Share 2 each: b holds 3.
        assert_eq!(keys(&plan_for("a", &leases, 2, &[])), ["claim t0"]);
        let mut claimed = leases.clone();
        claimed[0].claim = Some("a".into());
        assert!(
            plan_for("a", &claimed, 2, &[]).is_empty(),
            "a lease claimed already counts as this worker's"
        );
        claimed[0].claim = Some("c".into());
        assert_eq!(
            keys(&plan_for("a", &claimed, 2, &[])),
            ["claim t1"],
            "not a lease claimed already"
        );
        // Share 2 of 3 workers: a holds 1, b 2, c 1. Moving one of b's would only swap the gap.
        let even = vec![
            lease("t0", Some("b")),
            lease("t1", Some("b")),
            lease("t2", Some("c")),
            lease("t3", Some("a")),
        ];
        assert!(plan_for("a", &even, 3, &[]).is_empty());
        assert_eq!(
            keys(&plan_for("a", &even[..3], 3, &[])),
            ["claim t0"],
            "a holds none: one of b's two moves"
        );
    }
}
