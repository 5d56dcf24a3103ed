//! Keys whose changes are received and not yet settled, with the newest stream sequence number
//! received for each: a guard against a broker that hands out two messages of one group at once
//! (moto's ReceiveMessage is not atomic under concurrent receivers) and so lets an older change
//! reach the apply path after a newer one. Such a change is settled by reading the source's
//! current item instead of writing its image. SQS FIFO itself never does this.
//!
//! A key is remembered past the settling of its changes while it may still be needed: the older
//! message was handed to a ReceiveMessage that began before the newer change was settled, and its
//! batch may be admitted only after that (its receiver waits for its turn to submit, decodes, or
//! fetches from S3). So a settled key stays until every receive begun before its settling has
//! been admitted or has ended, or until `horizon` (half the visibility timeout) has passed: a
//! batch admitted later than that after its receipt is settled by reading the source anyway. In
//! steady state that is the keys settled during one receive's round trip.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::item::KeyBytes;

pub struct InFlight {
    inner: Mutex<Inner>,
    horizon: Duration,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<KeyBytes, Known>,
    /// Receive calls begun so far (the next one's number).
    begun: u64,
    /// Receives begun and not yet admitted or ended.
    open: BTreeSet<u64>,
    /// Keys whose changes were all settled: when, and `begun` then. Oldest first.
    settled: VecDeque<(Instant, u64, KeyBytes)>,
}

struct Known {
    /// The newest sequence number received for the key.
    newest: String,
    /// Its changes admitted and not yet settled.
    unsettled: u32,
    /// `begun` when the last of them was settled (entries of `settled` older than that are stale).
    settled_at: u64,
}

/// A receive call from its start until its batch is admitted (or it ends without one): dropping
/// it lets [`InFlight`] forget the keys settled meanwhile.
pub struct Receiving<'a> {
    of: &'a InFlight,
    number: u64,
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        let mut g = self.of.inner.lock().unwrap();
        g.open.remove(&self.number);
        self.of.prune(&mut g);
    }
}

impl InFlight {
    /// `horizon`: how long after receipt a batch is still admitted as received (half the
    /// visibility timeout; later ones are settled by reading the source).
    pub fn new(horizon: Duration) -> InFlight {
        InFlight {
            inner: Mutex::default(),
            horizon,
        }
    }

    /// Marks the start of a receive call; hold the result until its batch is admitted.
    pub fn receiving(&self) -> Receiving<'_> {
        let mut g = self.inner.lock().unwrap();
        let number = g.begun;
        g.begun += 1;
        g.open.insert(number);
        Receiving { of: self, number }
    }

    /// Registers a received change. Returns `false` when a newer change to the key was received
    /// before it and is in flight, or was settled while this one's receive was under way (this
    /// one arrived out of order).
    pub fn admit(&self, key: &KeyBytes, seq: &str) -> bool {
        let mut g = self.inner.lock().unwrap();
        match g.keys.get_mut(key) {
            Some(k) => {
                k.unsettled += 1;
                if seq_cmp(seq, &k.newest) == Ordering::Less {
                    false
                } else {
                    k.newest = seq.to_string();
                    true
                }
            }
            None => {
                let known = Known {
                    newest: seq.to_string(),
                    unsettled: 1,
                    settled_at: 0,
                };
                g.keys.insert(key.clone(), known);
                true
            }
        }
    }

    /// The changes admitted for `keys` (one entry per admitted change) are settled.
    pub fn release(&self, keys: &[KeyBytes]) {
        let mut g = self.inner.lock().unwrap();
        let (now, begun) = (Instant::now(), g.begun);
        for key in keys {
            if let Some(k) = g.keys.get_mut(key) {
                k.unsettled -= 1;
                if k.unsettled == 0 {
                    k.settled_at = begun;
                    g.settled.push_back((now, begun, key.clone()));
                }
            }
        }
        self.prune(&mut g);
    }

    /// Forgets settled keys no receive still under way may need.
    fn prune(&self, g: &mut Inner) {
        let oldest_open = g.open.first().copied().unwrap_or(u64::MAX);
        while let Some((at, settled_at, _)) = g.settled.front() {
            if oldest_open < *settled_at && at.elapsed() < self.horizon {
                break;
            }
            let (_, settled_at, key) = g.settled.pop_front().expect("a front");
            if g.keys
                .get(&key)
                .is_some_and(|k| k.unsettled == 0 && k.settled_at == settled_at)
            {
                g.keys.remove(&key);
            }
        }
    }

    /// Keys with unsettled changes, or settled and still remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Stream sequence numbers are decimal strings of varying length (up to 40 digits).
fn seq_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests;
