//! A lane: one of a table's `write_concurrency` writers. It owns the keys that hash to it, gathers
//! their changes while it waits for a slot, and writes one batch at a time (alone, or with other
//! lanes' small batches: [`super::combine`]), acknowledging each once it is durable.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::combine::{self, Combiner, Role};
use super::concurrency::{Pace, Slot};
use super::write::{ApplyIo, WriteOp};
use super::{Chunk, Limiter, MAX_PENDING_KEYS, Op, Ticket, batch, coalesce, kib_of, write};
use crate::checkpoint::AckSink;
use crate::error::{Error, Result};
use crate::item::{Item, KeyBytes, display_key};
use crate::telemetry::TableStats;
use crate::transform::{Shaped, Transform};

pub(super) struct Lane<I> {
    pub(super) io: Arc<I>,
    pub(super) limiter: Arc<Limiter>,
    pub(super) pace: Arc<Pace>,
    pub(super) stats: Arc<TableStats>,
    pub(super) failure: Arc<Mutex<Option<Error>>>,
    pub(super) failed: CancellationToken,
    pub(super) stop: CancellationToken,
    pub(super) transform: Arc<Transform>,
    /// Shared by the table's lanes; `None` with one lane, which has no one to combine with.
    pub(super) combine: Option<Arc<Combiner>>,
}

impl<I: ApplyIo> Lane<I> {
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Chunk>) {
        let mut pending = coalesce::Pending::default();
        let take = |pending: &mut coalesce::Pending, (chunk, mut permit): Chunk| {
            for (c, bytes) in chunk {
                let share = permit.split(kib_of(bytes) as usize);
                pending.push_sized(c, share, bytes);
            }
        };
        loop {
            if pending.is_empty() {
                match rx.recv().await {
                    Some(chunk) => take(&mut pending, chunk),
                    None => return,
                }
            }
            // Changes keep queueing in the channel while the lane waits for its turn.
            let slot = tokio::select! {
                biased;
                _ = self.failed.cancelled() => return,
                s = self.pace.acquire() => s,
            };
            while pending.len() < MAX_PENDING_KEYS {
                match rx.try_recv() {
                    Ok(chunk) => take(&mut pending, chunk),
                    Err(_) => break,
                }
            }
            self.stats
                .coalesced
                .fetch_add(std::mem::take(&mut pending.coalesced), Relaxed);
            if self.failed.is_cancelled() {
                return;
            }
            let entries = batch::take(&mut pending);
            // Changes left behind: the limit, not the supply, set this lane's pace.
            match self.write_turn(entries, !pending.is_empty(), slot).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    self.failure.lock().unwrap().get_or_insert(e);
                    self.failed.cancel();
                    return;
                }
            }
        }
    }

    /// Writes one batch, alone or with other lanes' small ones ([`combine`]), and acknowledges it.
    /// `Ok(false)`: the combined batch this lane followed failed, and its leader reports why.
    async fn write_turn(&self, entries: combine::Entries, backlog: bool, slot: Slot<'_>) -> Result<bool> {
        let (entries, followers) = match &self.combine {
            Some(c) if !backlog && entries.len() < batch::MAX_REQUESTS => match c.offer(entries) {
                Role::Alone(entries) => (entries, None),
                Role::Follow(done) => {
                    drop(slot);
                    return Ok(done.await.is_ok());
                }
                Role::Lead => {
                    c.gather().await;
                    let (entries, followers) = c.seal();
                    (entries, Some(followers))
                }
            },
            _ => (entries, None),
        };
        // On failure `followers` drops unreleased, and they stop.
        let tickets = self.write_batch(entries, backlog).await?;
        drop(slot);
        ack_grouped(tickets);
        if let Some(f) = followers {
            f.release();
        }
        Ok(true)
    }

    /// Shapes and writes one batch; returns its tickets once every write is durable.
    async fn write_batch(&self, entries: combine::Entries, backlog: bool) -> Result<Vec<Ticket>> {
        let mut tickets = Vec::with_capacity(entries.len());
        let mut ops = Vec::with_capacity(entries.len());
        let mut fetch = Vec::new();
        // Held until this batch is done with (written or failed), then released at once: the
        // permits all come from the table's one budget, so they merge.
        let mut permits: Option<OwnedSemaphorePermit> = None;
        // Unchanged by a transform, an op costs what its size, worked out on submit, says.
        let mut units = 0u32;
        for (key, e) in entries {
            tickets.extend(e.tickets);
            if let Some(p) = e.permit {
                match &mut permits {
                    Some(held) => held.merge(p),
                    None => permits = Some(p),
                }
            }
            units += match &e.op {
                Op::Put(_) | Op::PutRaw(_) | Op::Load(_) | Op::LoadRaw(_) => crate::item::write_units(e.bytes),
                Op::Delete(_) | Op::Fetch(_) => 1,
            };
            match e.op {
                Op::Fetch(k) => fetch.push(k),
                op => self.shape(&key, op, &mut ops)?,
            }
        }
        let units = (fetch.is_empty() && self.transform.is_identity()).then_some(units);
        if !fetch.is_empty() {
            ops.extend(self.resolve(fetch).await?);
        }
        let batch = write::Batch {
            ops,
            units,
            records: tickets.len(),
            backlog,
        };
        let (limits, stop) = ((&*self.limiter, &*self.pace), &self.stop);
        write::write_all(&*self.io, batch, limits, &self.stats, stop).await?;
        drop(permits);
        Ok(tickets)
    }

    /// The write a change makes at the destination, through the table's transform.
    fn shape(&self, key: &KeyBytes, op: Op, ops: &mut Vec<WriteOp>) -> Result<()> {
        // Untransformed, a raw item goes out as it came; a transform looks inside it.
        let op = match op {
            Op::PutRaw(raw) | Op::LoadRaw(raw) if self.transform.is_identity() => {
                ops.push(WriteOp::PutRaw(raw));
                return Ok(());
            }
            Op::PutRaw(raw) => Op::Put(raw.to_item()),
            Op::LoadRaw(raw) => Op::Load(raw.to_item()),
            op => op,
        };
        match self.transform.shape(op).map_err(|why| self.unappliable(key, why))? {
            Shaped::Put(i) => ops.push(WriteOp::Put(i)),
            Shaped::Delete(k) => ops.push(WriteOp::Delete(k)),
            Shaped::Skip => {}
        }
        Ok(())
    }

    fn unappliable(&self, key: &KeyBytes, why: String) -> Error {
        let names = self.transform.source_keys();
        let key = key.to_item(names).map(|k| display_key(&k)).unwrap_or_default();
        Error::fatal(format!(
            "cannot apply the change of key {key} to {}: {why}",
            self.io.destination()
        ))
    }

    /// Turns "read it from the source" into a put of the current item, or a delete if it is gone
    /// (shaped like any other change).
    async fn resolve(&self, keys: Vec<Item>) -> Result<Vec<WriteOp>> {
        let names = self.transform.source_keys().clone();
        let found = self.io.read_source(keys.clone()).await?;
        let mut by_key: HashMap<KeyBytes, Item> = found
            .into_iter()
            .filter_map(|i| KeyBytes::of(&names, &i).map(|k| (k, i)))
            .collect();
        let mut ops = Vec::with_capacity(keys.len());
        for k in keys {
            let kb = KeyBytes::of(&names, &k);
            match kb.as_ref().and_then(|kb| by_key.remove(kb)) {
                Some(item) => self.shape(kb.as_ref().expect("found by key"), Op::Put(item), &mut ops)?,
                None => ops.push(WriteOp::Delete(self.transform.key(k))),
            }
        }
        Ok(ops)
    }
}

/// Acknowledges a batch's tickets with one call per acknowledger (one lock instead of one per
/// record). Tickets of one acknowledger keep their relative order.
fn ack_grouped(tickets: Vec<Ticket>) {
    let mut groups: Vec<(Arc<dyn AckSink>, Vec<u64>)> = Vec::new();
    for t in tickets {
        match groups.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &t.sink)) {
            Some((_, idx)) => idx.push(t.index),
            None => groups.push((t.sink, vec![t.index])),
        }
    }
    for (sink, idx) in groups {
        sink.ack_all(&idx);
    }
}
