//! Time in the lease protocol, judged only on this worker's monotonic clock (never a wall clock,
//! never another host's): when another worker's lease has expired ([`Observed`]), and whether this
//! worker may still write under a lease it holds ([`Window`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When this worker last saw each lease's counter change. A lease has expired when its counter
/// has not moved for a whole lease duration as this worker measured it: its holder stopped
/// renewing (or never existed), whatever the clocks of the two hosts say.
#[derive(Debug, Default)]
pub struct Observed {
    seen: HashMap<String, (i64, Instant)>,
}

impl Observed {
    /// Records the counter read at `now`; whether the lease has expired.
    pub fn expired(&mut self, key: &str, counter: i64, now: Instant, duration: Duration) -> bool {
        match self.seen.get(key) {
            Some((c, since)) if *c == counter => now.duration_since(*since) >= duration,
            _ => {
                self.seen.insert(key.to_string(), (counter, now));
                false
            }
        }
    }

    pub fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }

    /// Forgets every lease not in `listed` (a finished shard's lease is removed: over weeks of
    /// shard rollovers, this keeps the map at the leases that exist).
    pub fn keep_only<'a>(&mut self, listed: impl IntoIterator<Item = &'a str>) {
        let listed: std::collections::HashSet<&str> = listed.into_iter().collect();
        self.seen.retain(|k, _| listed.contains(k.as_str()));
    }
}

/// A holder's write window, shared by its renewals (each opens it) and its writers (each checks it
/// just before a send). Closed until the first renewal.
///
/// Another worker may take the lease once it has seen the counter still for a lease duration on
/// its own clock, which starts no earlier than this worker's renewal was *sent*. So a renewal sent
/// at `t` opens the window until `t + duration - margin`: the margin covers a write already on the
/// wire and the difference in rate between the two hosts' monotonic clocks.
#[derive(Debug)]
pub struct Window {
    base: Instant,
    /// Nanoseconds after `base` until which writes may be sent.
    until: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            base: Instant::now(),
            until: AtomicU64::new(0),
        }
    }
}

impl Window {
    /// After a renewal sent at `sent`: open until `duration` minus `margin` after it (never
    /// shortened by a renewal that answers late).
    pub fn renewed(&self, sent: Instant, duration: Duration, margin: Duration) {
        let until = (sent + duration.saturating_sub(margin)).saturating_duration_since(self.base);
        self.until.fetch_max(until.as_nanos() as u64, Ordering::SeqCst);
    }

    /// The lease is lost or being given up: no more writes.
    pub fn close(&self) {
        self.until.store(0, Ordering::SeqCst);
    }

    pub fn is_open(&self, now: Instant) -> bool {
        (now.saturating_duration_since(self.base).as_nanos() as u64) < self.until.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(10);

    #[test]
    fn a_lease_expires_only_after_its_counter_stood_still_for_a_whole_duration_on_this_clock() {
        let t0 = Instant::now();
        let mut o = Observed::default();
        assert!(!o.expired("s1", 5, t0, D), "first sight never expires");
        assert!(!o.expired("s1", 5, t0 + D - Duration::from_millis(1), D));
        assert!(!o.expired("s1", 6, t0 + D, D), "a renewal restarts the wait");
        assert!(!o.expired("s1", 6, t0 + D + D - Duration::from_millis(1), D));
        assert!(o.expired("s1", 6, t0 + D + D, D));
        o.forget("s1");
        assert!(!o.expired("s1", 6, t0 + D * 5, D), "forgotten: seen anew");
    }

    #[test]
    fn the_window_opens_with_each_renewal_and_closes_on_its_own_or_when_told() {
        let w = Window::default();
        let t0 = w.base + Duration::from_secs(1);
        let margin = Duration::from_secs(2);
        assert!(!w.is_open(t0), "closed until the first renewal");
        w.renewed(t0, D, margin);
        assert!(w.is_open(t0 + Duration::from_millis(7_999)));
        assert!(
            !w.is_open(t0 + Duration::from_secs(8)),
            "a writer frozen past the window sends nothing"
        );
        w.renewed(t0 - Duration::from_secs(5), D, margin);
        assert!(
            w.is_open(t0 + Duration::from_millis(7_999)),
            "a late answer never shortens it"
        );
        w.close();
        assert!(!w.is_open(t0));
    }

    #[test]
    fn a_holder_stops_writing_a_margin_before_anyone_may_take_its_lease() {
        let w = Window::default();
        let sent = w.base + Duration::from_secs(1);
        let margin = Duration::from_secs(2);
        w.renewed(sent, D, margin);
        // The taker's clock starts when it first reads the renewed counter: after the send.
        let mut taker = Observed::default();
        let read_at = sent + Duration::from_millis(1);
        taker.expired("s", 3, read_at, D);
        let first_take = read_at + D;
        assert!(taker.expired("s", 3, first_take, D));
        assert!(
            !w.is_open(first_take - margin),
            "no write is sent within a margin of the take"
        );
    }
}
