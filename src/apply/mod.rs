//! The apply path: changes in, durable writes out, acknowledgements back.
//!
//! ```text
//!  submit(change) ──hash(key) % lanes──▶ lane ─▶ slot ─▶ coalesce ─▶ batch ─▶ combine ─▶ limit ─▶ write ─▶ ack
//! ```
//!
//! There are `write_concurrency` lanes; a lane writes only while it holds one of the table's
//! slots, whose number adapts to the destination ([`concurrency`]). A lane waiting for a slot keeps
//! gathering changes, so a busy destination gets fuller batches rather than more of them; at a
//! low rate, lanes with small batches send them together ([`combine`]).
//!
//! Contract:
//! - **Ordering**: all changes to one key go to one lane, and a lane writes one batch at a time in
//!   arrival order, so per key the destination sees changes in submission (stream) order.
//! - **Delivery**: at least once. A change is acknowledged only after the write that carries it
//!   (or a later change to the same key that superseded it) is durable.
//! - **Failure**: a change that cannot be written stops the whole applier with an error naming the
//!   key; it is never acknowledged, so no checkpoint passes it.

pub mod batch;
pub mod budget;
pub mod coalesce;
pub mod combine;
pub mod concurrency;
pub mod gate;
mod lane;
pub mod limit;
pub mod write;

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::AckSink;
use crate::error::{Error, Result};
use crate::item::{Item, KeyBytes, RawItem};
use crate::telemetry::TableStats;
use crate::transform::Transform;
use combine::Combiner;
use concurrency::Pace;
use lane::Lane;
pub use limit::Limiter;
pub use write::{ApplyIo, DynamoIo, WriteOp};

/// What a change asks of the destination for its key.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Write this full item.
    Put(Item),
    /// Write this full item, as the source's JSON sent it (stream images: no transform needs to
    /// look inside, so it goes to the destination as the same bytes).
    PutRaw(RawItem),
    /// Write this item of the bulk load (scan or export): a put, except that an item the table's
    /// transform filters out is skipped rather than deleted ([`crate::transform::Transform::load`]).
    Load(Item),
    /// [`Op::Load`] of an export line's item, as the file's JSON spelled it.
    LoadRaw(RawItem),
    /// Delete the item with these key attributes.
    Delete(Item),
    /// Make the destination match the source's current item for these key attributes (stream
    /// records without a new image: KEYS_ONLY, OLD_IMAGE, unknown event types).
    Fetch(Item),
}

/// Where to report that a change is durable.
#[derive(Clone)]
pub struct Ticket {
    pub sink: Arc<dyn AckSink>,
    pub index: u64,
}

pub struct Change {
    pub key: KeyBytes,
    pub op: Op,
    pub ticket: Ticket,
}

/// Most keys a lane holds waiting while one of its batches is in flight; beyond it, the lane stops
/// taking changes and the reader feeding it waits (back-pressure).
const MAX_PENDING_KEYS: usize = 1_000;
/// Changes queued per lane before a submit waits.
const LANE_QUEUE: usize = 256;
/// Bytes of changes a table may hold between submit and durable write, in KiB permits (counted
/// as DynamoDB sizes items; in memory they take two to three times that). Bounds memory whatever
/// the item sizes, and still leaves thousands of 1 KB changes in flight for the lanes.
const BUFFER_KIB: u32 = 16 * 1024;

/// Changes for one lane from one submission, with their sizes in bytes and the share of the
/// buffer budget they hold together (split per change as the lane takes them in).
type Chunk = (Vec<(Change, usize)>, OwnedSemaphorePermit);

/// A change's share of the buffer budget: its started KiB, capped so one acquisition can always
/// be granted.
fn kib_of(bytes: usize) -> u32 {
    (bytes / 1024 + 1).min(BUFFER_KIB as usize / 4) as u32
}

/// A running apply path for one table.
pub struct Applier {
    lanes: Vec<mpsc::Sender<Chunk>>,
    /// Buffer budget in KiB (see [`BUFFER_KIB`]).
    budget: Arc<Semaphore>,
    tasks: JoinSet<()>,
    /// First fatal error of any lane.
    failure: Arc<Mutex<Option<Error>>>,
    /// Cancelled when a lane fails, so readers stop feeding a dead table.
    pub failed: CancellationToken,
}

impl Applier {
    /// An apply path that copies items unchanged and is never asked to stop (tests, benches).
    pub fn start<I: ApplyIo>(io: Arc<I>, lanes: usize, limiter: Arc<Limiter>, stats: Arc<TableStats>) -> Applier {
        let transform = Arc::new(Transform::identity(io.key_names().into()));
        Self::start_with_stop(io, lanes, limiter, stats, transform, CancellationToken::new())
    }

    /// The daemon's apply path: every change is shaped by `transform` on its way out, and a
    /// write still failing when `stop` fires gives up (unacknowledged, so the next run redoes it)
    /// instead of holding the shutdown until the destination is back.
    pub fn start_with_stop<I: ApplyIo>(
        io: Arc<I>,
        lanes: usize,
        limiter: Arc<Limiter>,
        stats: Arc<TableStats>,
        transform: Arc<Transform>,
        stop: CancellationToken,
    ) -> Applier {
        let failure = Arc::new(Mutex::new(None));
        let failed = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let pace = Arc::new(Pace::new(lanes, stats.clone()));
        let combine = (lanes > 1).then(|| Arc::new(Combiner::default()));
        let senders = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_QUEUE);
                let lane = Lane {
                    io: io.clone(),
                    limiter: limiter.clone(),
                    pace: pace.clone(),
                    stats: stats.clone(),
                    failure: failure.clone(),
                    failed: failed.clone(),
                    stop: stop.clone(),
                    transform: transform.clone(),
                    combine: combine.clone(),
                };
                tasks.spawn(lane.run(rx));
                tx
            })
            .collect();
        Applier {
            lanes: senders,
            budget: Arc::new(Semaphore::new(BUFFER_KIB as usize)),
            tasks,
            failure,
            failed,
        }
    }

    /// Queues a change; waits while its lane is full. Fails once the applier has failed.
    pub async fn submit(&self, c: Change) -> Result<()> {
        self.submit_all(vec![c]).await
    }

    /// Queues changes in order (a whole page at once: one budget acquisition and one queue
    /// operation per lane instead of one per change). Waits while lanes are full; fails as soon
    /// as the applier has failed, even while waiting.
    pub async fn submit_all(&self, changes: Vec<Change>) -> Result<()> {
        let lanes = self.lanes.len() as u64;
        let mut by_lane: Vec<Vec<(Change, usize)>> = (0..lanes).map(|_| Vec::new()).collect();
        let mut kib_by_lane = vec![0u32; lanes as usize];
        let mut total = 0u32;
        for c in changes {
            let bytes = batch::op_bytes(&c.op);
            let kib = kib_of(bytes);
            if total + kib > BUFFER_KIB / 4 {
                // Keep one acquisition well under the budget, so it can always be granted.
                self.send(std::mem::take(&mut by_lane), std::mem::take(&mut kib_by_lane), total)
                    .await?;
                by_lane = (0..lanes).map(|_| Vec::new()).collect();
                kib_by_lane = vec![0u32; lanes as usize];
                total = 0;
            }
            let lane = (c.key.lane_hash() % lanes) as usize;
            kib_by_lane[lane] += kib;
            total += kib;
            by_lane[lane].push((c, bytes));
        }
        self.send(by_lane, kib_by_lane, total).await
    }

    async fn send(&self, by_lane: Vec<Vec<(Change, usize)>>, kib_by_lane: Vec<u32>, total: u32) -> Result<()> {
        if total == 0 {
            return Ok(());
        }
        // Both waits end when the applier fails: a lane stuck on its write would otherwise hold
        // the budget or its queue full, and the submitter would wait for ever.
        let stopped = || Err(self.error().unwrap_or_else(|| Error::fatal("apply path stopped")));
        let mut permit = tokio::select! {
            biased;
            _ = self.failed.cancelled() => return stopped(),
            p = self.budget.clone().acquire_many_owned(total) => p.expect("budget never closes"),
        };
        for (lane, (chunk, kib)) in by_lane.into_iter().zip(kib_by_lane).enumerate() {
            if chunk.is_empty() {
                continue;
            }
            let share = permit.split(kib as usize).expect("permits cover every lane");
            let sent = tokio::select! {
                biased;
                _ = self.failed.cancelled() => false,
                r = self.lanes[lane].send((chunk, share)) => r.is_ok(),
            };
            if !sent || self.failed.is_cancelled() {
                return stopped();
            }
        }
        Ok(())
    }

    pub fn error(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap()
            .as_ref()
            .map(|e| Error::new(e.kind(), e.message()))
    }

    /// Stops taking changes, writes everything queued, and returns the first fatal error if any.
    pub async fn finish(mut self) -> Result<()> {
        self.lanes.clear();
        while self.tasks.join_next().await.is_some() {}
        match self.failure.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
pub mod test_support;

#[cfg(test)]
mod combine_tests;
#[cfg(test)]
mod pace_tests;
#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod tests;
