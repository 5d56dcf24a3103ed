//! Per-key coalescing: while a lane's batch is in flight, later changes to a key replace earlier
//! ones that are still waiting. Valid because every change carries the item's full final state
//! (a put of the new image, a delete, or "read it from the source"), so the last one wins; the
//! superseded changes are acknowledged together with the write that replaced them.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tokio::sync::OwnedSemaphorePermit;

use super::{Change, Op, Ticket};
use crate::item::KeyBytes;

/// A key's latest change plus every record it stands for (its key is the map's, and goes with it
/// when it leaves).
pub struct Entry {
    pub op: Op,
    /// The op's size as DynamoDB counts it ([`super::batch::op_bytes`]), worked out once.
    pub bytes: usize,
    /// Inline: most keys stand for one record, and allocation was a tenth of the apply path's
    /// CPU (for the same reason a waiting key is held once, by the map, not also by its entry).
    pub tickets: SmallVec<[Ticket; 1]>,
    /// The share of the table's buffer budget the op's bytes hold; a superseded op's share is
    /// returned at once.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Waiting changes of one lane, one entry per key, oldest key first.
#[derive(Default)]
pub struct Pending {
    order: VecDeque<KeyBytes>,
    entries: FxHashMap<KeyBytes, Entry>,
    /// Records merged into an existing entry (for metrics).
    pub coalesced: u64,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Tests' form of [`Self::push_sized`]: the apply path works sizes out on submit.
    #[cfg(test)]
    pub fn push(&mut self, c: Change, permit: Option<OwnedSemaphorePermit>) {
        let bytes = super::batch::op_bytes(&c.op);
        self.push_sized(c, permit, bytes)
    }

    /// Adds a change whose size ([`super::batch::op_bytes`]) the caller has worked out already.
    pub fn push_sized(&mut self, c: Change, permit: Option<OwnedSemaphorePermit>, bytes: usize) {
        match self.entries.get_mut(&c.key) {
            Some(e) => {
                e.op = c.op;
                e.bytes = bytes;
                e.permit = permit;
                e.tickets.push(c.ticket);
                self.coalesced += 1;
            }
            None => {
                self.order.push_back(c.key.clone());
                let entry = Entry {
                    op: c.op,
                    bytes,
                    tickets: smallvec::smallvec![c.ticket],
                    permit,
                };
                self.entries.insert(c.key, entry);
            }
        }
    }

    /// The oldest waiting key and its entry, if its size still fits; `fits` sees its size in bytes.
    pub fn pop_if(&mut self, fits: impl FnOnce(usize) -> bool) -> Option<(KeyBytes, Entry)> {
        let key = self.order.front()?;
        if !fits(self.entries[key].bytes) {
            return None;
        }
        let key = self.order.pop_front().expect("front exists");
        self.entries.remove_entry(&key)
    }
}
