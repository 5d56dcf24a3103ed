//! Telling a real gap in a stream from a shard that is merely younger than the replay point.
//!
//! Stream records are kept 24 h. A shard that ferry reads from its trim horizon (no saved
//! position) can have lost records ferry needs only if some of them were written before the
//! trim line (the time of the first read minus 24 h) and at or after the replay point. A shard
//! created after the trim line holds no record older than itself: nothing is missing. ferry
//! proves one of these, and otherwise stops the table loudly:
//! - the replay point is within retention (nothing ferry needs can be trimmed yet);
//! - the shard was created after the trim line: a listing earlier in this run did not show it
//!   yet, or its finished parent's last record is newer (a child only holds records written
//!   after its parent closed);
//! - the first record still in the shard is older than the replay point (the horizon has not
//!   reached what ferry needs; ferry skips such records anyway);
//! - the first record still in the shard is the shard's first (its `StartingSequenceNumber`).
//!
//! The other gaps are reported where they show: a saved position that is trimmed
//! (`TrimmedDataAccessException`, [`super::consumer`]) and a shard ferry has not finished that
//! leaves the listing ([`super::StreamTask`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::checkpoint::ShardRow;

/// DynamoDB Streams keep records 24 h.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Slack for the difference between ferry's clock and the service's at the 24 h edge.
const CLOCK_SLACK_MS: i64 = 60_000;

/// Wall-clock milliseconds for the stream task: real by default; tests run it ahead.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    pub fn new(now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now_ms))
    }

    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(crate::clock::now_ms)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

/// What is known about a shard read from its trim horizon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Horizon {
    /// Records older than this are in the snapshot.
    pub replay_from_ms: i64,
    /// The shard was created after this time.
    pub born_after_ms: Option<i64>,
    /// `SequenceNumberRange.StartingSequenceNumber` from the listing.
    pub first_seq: Option<String>,
}

impl Horizon {
    /// Nothing ferry needs from the shard can be trimmed at `read_at_ms`.
    pub fn safe_at(&self, read_at_ms: i64) -> bool {
        let trim_line = read_at_ms - RETENTION_MS + CLOCK_SLACK_MS;
        self.replay_from_ms >= trim_line || self.born_after_ms.is_some_and(|b| b >= trim_line)
    }

    /// The first record still in the shard shows that nothing ferry needs is missing before it.
    pub fn first_record_proves(&self, seq: &str, time_ms: i64) -> bool {
        time_ms < self.replay_from_ms || self.first_seq.as_deref().is_some_and(|f| same_seq(f, seq))
    }
}

/// How far a shard listing may lag behind the stream.
pub const STALE_LISTING_MS: i64 = 10 * 60_000;

/// What the listings tell about a shard beyond its row.
#[derive(Default)]
pub struct Listed {
    /// Created after this time: a listing earlier in this run did not show it.
    pub born_after_ms: Option<i64>,
    pub first_seq: Option<String>,
}

/// The created-after time of a shard read from its trim horizon: its own (a listing in this run
/// did not show it yet) or an ancestor's, or an ancestor's last record (a child holds only records
/// written after its parent closed).
pub fn born_after(id: &str, rows: &HashMap<String, ShardRow>, listed: &HashMap<String, Listed>) -> Option<i64> {
    let mut best = listed.get(id).and_then(|l| l.born_after_ms);
    let mut next = rows.get(id).and_then(|r| r.parent_id.clone());
    for _ in 0..rows.len() {
        let Some(p) = next.take() else { break };
        let Some(row) = rows.get(&p) else { break };
        let bound = row.last_record_ms.filter(|_| row.position.is_some());
        best = best.max(bound).max(listed.get(&p).and_then(|l| l.born_after_ms));
        next = row.parent_id.clone();
    }
    best
}

/// Sequence numbers are decimal strings of varying width.
fn same_seq(a: &str, b: &str) -> bool {
    a.trim_start_matches('0') == b.trim_start_matches('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn a_young_shard_or_an_old_first_record_proves_no_gap_and_nothing_else_does() {
        let now = 100 * H;
        let old = Horizon {
            replay_from_ms: now - 25 * H,
            born_after_ms: None,
            first_seq: Some("0007".into()),
        };
        assert!(
            !old.safe_at(now),
            "the replay point is past retention and the shard's age is unknown"
        );
        assert!(
            old.safe_at(now - 2 * H),
            "two hours earlier the replay point was within retention"
        );
        let young = Horizon {
            born_after_ms: Some(now - 4 * H),
            ..old.clone()
        };
        assert!(young.safe_at(now), "a shard born 4 h ago has lost nothing");
        let born_at_the_edge = Horizon {
            born_after_ms: Some(now - 24 * H),
            ..old.clone()
        };
        assert!(!born_at_the_edge.safe_at(now));

        assert!(
            old.first_record_proves("99", now - 26 * H),
            "older than the replay point"
        );
        assert!(old.first_record_proves("7", now), "the shard's very first record");
        assert!(!old.first_record_proves("8", now), "records before it may be trimmed");
    }
}
