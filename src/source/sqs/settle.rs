//! Settling one received batch: keep its messages invisible from their receipt on (through
//! decoding and while their writes are pending), and delete them once every write is durable.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::consumer::{Shared, queue_error};
use crate::checkpoint::OrderedAck;
use crate::error::Result;
use crate::item::KeyBytes;
use crate::retry::Retrier;

/// A decoded, admitted batch, handed from its receiver to its settler.
pub(super) struct Handoff {
    pub ack: Arc<OrderedAck<()>>,
    /// Creation time (ms) of the batch's newest applied record.
    pub newest_ms: i64,
    /// One entry per admitted change, released from [`super::inflight::InFlight`] once settled.
    pub admitted: Vec<KeyBytes>,
}

/// Extends the visibility of `receipts` every half visibility timeout from `received_at`, until
/// the batch is handed over and every write of it is durable, then deletes the messages. A batch
/// never handed over (decoding failed, the run stops) is left to reappear.
pub(super) async fn settle(
    sh: &Shared,
    receipts: Vec<String>,
    received_at: Instant,
    handed: oneshot::Receiver<Handoff>,
) -> Result<()> {
    let t = &sh.task;
    let every = Duration::from_millis((t.queue.visibility_timeout_seconds as u64 * 1000 / 2).max(500));
    let mut extend = tokio::time::interval_at(received_at + every, every);
    extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(handed);
    let batch = loop {
        tokio::select! {
            h = &mut handed => match h {
                Ok(b) => break b,
                Err(_) => return Ok(()),
            },
            _ = extend.tick() => extend_visibility(sh, &receipts).await,
        }
    };
    let r = finish(sh, &batch, &receipts, &mut extend).await;
    sh.in_flight.release(&batch.admitted);
    r
}

async fn finish(sh: &Shared, batch: &Handoff, receipts: &[String], extend: &mut tokio::time::Interval) -> Result<()> {
    let t = &sh.task;
    let (ack, newest_ms) = (&batch.ack, batch.newest_ms);
    loop {
        tokio::select! {
            _ = ack.drained() => break,
            // The applier failed: leave the messages for the next run (they reappear).
            _ = sh.applier_failed.cancelled() => return Ok(()),
            _ = extend.tick() => extend_visibility(sh, receipts).await,
        }
    }
    if newest_ms > 0 {
        t.ctx.stats.newest_applied_ms.fetch_max(newest_ms, Relaxed);
    }
    let failed = Retrier::daemon(
        format!("deleting applied messages from {}", t.queue.url),
        &t.ctx.stop,
        &t.ctx.stats,
    )
    .run(|| sh.api.delete(&t.queue.url, receipts))
    .await
    .map_err(|e| queue_error(t, e))?;
    for f in failed {
        // Applied but not deleted: it comes back after the visibility timeout and is settled by
        // reading the source again, which is safe; say so rather than stop.
        tracing::warn!(table = %t.ctx.table, code = f.code, message = f.message, "a message could not be deleted after its write; it will be redelivered");
    }
    Ok(())
}

async fn extend_visibility(sh: &Shared, receipts: &[String]) {
    let t = &sh.task;
    let visibility = t.queue.visibility_timeout_seconds as i32;
    if let Err(e) = sh.api.change_visibility(&t.queue.url, receipts, visibility).await {
        tracing::warn!(table = %t.ctx.table, error = %e, "extending visibility failed");
    }
}
