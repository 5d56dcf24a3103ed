//! Which shards may be read now. A child shard starts only after its parent is done (read to
//! SHARD_END and every record durably applied), so per key the destination sees the parent's
//! changes before the child's.
//!
//! Pure logic, no I/O: fed with shard listings (which may be partial or stale, and may show a
//! parent still open after its children appear) and with "done" events.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
}

#[derive(Debug)]
struct Node {
    parent: Option<String>,
    state: State,
}

#[derive(Debug, Default)]
pub struct Lineage {
    shards: BTreeMap<String, Node>,
}

impl Lineage {
    /// Adds a shard seen in a listing (no-op when known).
    pub fn add(&mut self, id: &str, parent: Option<&str>) {
        self.shards.entry(id.to_string()).or_insert_with(|| Node {
            parent: parent.map(str::to_string),
            state: State::Waiting,
        });
    }

    /// Adds a shard known from state to be finished.
    pub fn add_done(&mut self, id: &str, parent: Option<&str>) {
        self.add(id, parent);
        self.mark_done(id);
    }

    pub fn mark_done(&mut self, id: &str) {
        if let Some(n) = self.shards.get_mut(id) {
            n.state = State::Done;
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.shards.contains_key(id)
    }

    /// Shards that may start now, marked running. A parent that is unknown (trimmed from the
    /// stream before ferry ever saw it) does not block: its records are older than retention.
    /// Callers that must not lose a known shard check for gaps before this.
    pub fn take_ready(&mut self) -> Vec<String> {
        let ready: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, n)| n.state == State::Waiting)
            .filter(|(_, n)| match &n.parent {
                None => true,
                Some(p) => self.shards.get(p).is_none_or(|pn| pn.state == State::Done),
            })
            .map(|(id, _)| id.clone())
            .collect();
        for (_, n) in self.shards.iter_mut().filter(|(id, _)| ready.contains(id)) {
            n.state = State::Running;
        }
        ready
    }

    pub fn running(&self) -> usize {
        self.shards.values().filter(|n| n.state == State::Running).count()
    }

    pub fn counts(&self) -> (usize, usize) {
        let done = self.shards.values().filter(|n| n.state == State::Done).count();
        (self.shards.len() - done, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_wait_for_parents_even_when_the_parent_looks_open() {
        let mut l = Lineage::default();
        // Listing 1: root still "open", its two children already exist, a grandchild of one.
        l.add("root", None);
        l.add("a", Some("root"));
        l.add("b", Some("root"));
        l.add("a1", Some("a"));
        assert_eq!(l.take_ready(), vec!["root"]);
        assert!(l.take_ready().is_empty(), "nothing else may start while root runs");
        l.mark_done("root");
        assert_eq!(l.take_ready(), vec!["a", "b"]);
        l.mark_done("b");
        assert!(l.take_ready().is_empty(), "a1 waits for a");
        l.mark_done("a");
        assert_eq!(l.take_ready(), vec!["a1"]);
    }

    #[test]
    fn a_parent_trimmed_before_we_saw_it_does_not_block_and_done_shards_stay_done() {
        let mut l = Lineage::default();
        l.add_done("old", None);
        l.add("orphan", Some("gone"));
        l.add("child", Some("old"));
        let mut r = l.take_ready();
        r.sort();
        assert_eq!(r, vec!["child", "orphan"]);
        l.add("old", None);
        assert!(l.take_ready().is_empty(), "re-listing a done shard does not restart it");
        assert_eq!(l.counts(), (2, 1));
    }
}
