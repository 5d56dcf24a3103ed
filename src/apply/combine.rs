//! Small batches of several lanes ride one BatchWriteItem.
//!
//! At a low rate a page of changes spreads over nearly as many lanes as it has keys (20 records
//! over about 17 of 64 lanes), and each lane would send a batch of one or two: a call per item,
//! where the destination's cost is mostly per call. So a lane whose batch is small and which has
//! nothing left behind offers it here instead of writing it alone:
//!
//! ```text
//!   offer(batch) ──no batch forming──────────▶ Lead: yield until no lane joins, seal, write all,
//!        │                                          acknowledge all, release the followers
//!        ├──one forming, with room─────────▶ Follow: give up the slot, wait for the leader
//!        └──one forming, without room──────▶ Alone: write it as before
//! ```
//!
//! The leader waits no time: it yields to the lanes woken with it (a page reaches its lanes all at
//! once) and seals as soon as a yield brings no one new.
//!
//! Why this keeps the apply path's contract: lanes own disjoint keys, and each coalesces to one
//! entry per key, so a combined batch never holds one key twice. A follower takes its next batch
//! only after the leader's write is durable, so every lane still has one batch in flight at a
//! time and per key the destination sees changes in stream order. If the leader's write fails, the
//! leader records the failure (naming the key, as for any batch) and the followers stop.

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::batch::{MAX_BYTES, MAX_REQUESTS};
use super::coalesce::Entry;
use crate::item::KeyBytes;

pub type Entries = Vec<(KeyBytes, Entry)>;

/// Most yields a leader spends gathering (each one lets every lane woken before it run once).
const MAX_YIELDS: usize = 8;

/// The batch lanes are joining, if one is forming.
#[derive(Default)]
pub struct Combiner {
    forming: Mutex<Option<Forming>>,
}

struct Forming {
    entries: Entries,
    bytes: usize,
    /// One per follower: fired once the batch is durable, dropped if it failed.
    followers: Vec<oneshot::Sender<()>>,
}

/// What a lane does with the batch it offered.
pub enum Role {
    /// Gather, then write every lane's entries ([`Combiner::gather`], [`Combiner::seal`]).
    Lead,
    /// The leader writes these entries; `Ok` once durable (and acknowledged), `Err` if it failed.
    Follow(oneshot::Receiver<()>),
    /// A forming batch has no room for them: write them alone.
    Alone(Entries),
}

/// The lanes whose entries ride a sealed batch. Released once it is durable and acknowledged;
/// dropped unreleased if it failed, which stops them.
pub struct Followers(Vec<oneshot::Sender<()>>);

impl Followers {
    pub fn release(self) {
        for f in self.0 {
            let _ = f.send(());
        }
    }
}

impl Combiner {
    pub fn offer(&self, entries: Entries) -> Role {
        let bytes: usize = entries.iter().map(|(_, e)| e.bytes).sum();
        let mut forming = self.forming.lock().unwrap();
        match forming.as_mut() {
            None => {
                *forming = Some(Forming {
                    entries,
                    bytes,
                    followers: Vec::new(),
                });
                Role::Lead
            }
            Some(f) if f.entries.len() + entries.len() <= MAX_REQUESTS && f.bytes + bytes <= MAX_BYTES => {
                let (tx, rx) = oneshot::channel();
                f.entries.extend(entries);
                f.bytes += bytes;
                f.followers.push(tx);
                Role::Follow(rx)
            }
            Some(_) => Role::Alone(entries),
        }
    }

    /// The leader's wait: yields while lanes keep joining (at most [`MAX_YIELDS`]), no timer.
    pub async fn gather(&self) {
        let mut seen = self.len();
        for _ in 0..MAX_YIELDS {
            tokio::task::yield_now().await;
            let now = self.len();
            if now == seen || now >= MAX_REQUESTS {
                return;
            }
            seen = now;
        }
    }

    /// Closes the forming batch (a later offer leads a new one) and hands it to its leader.
    pub fn seal(&self) -> (Entries, Followers) {
        let f = self
            .forming
            .lock()
            .unwrap()
            .take()
            .expect("the leader's batch is forming");
        (f.entries, Followers(f.followers))
    }

    fn len(&self) -> usize {
        self.forming.lock().unwrap().as_ref().map_or(0, |f| f.entries.len())
    }
}
