//! Asking the queue for messages: one ReceiveMessage, long or short, and the wait after an empty
//! one (the "Polling" part of the consumer's contract, [`super::consumer`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use super::consumer::{Shared, WAIT_SECONDS, queue_error, spawn_settler};
use super::settle::Handoff;
use crate::error::Result;
use crate::retry::Retrier;

/// After an empty call, while ferry holds unsettled batches: waits until one of them settles, at
/// most [`WAIT_SECONDS`] (see "Polling" in [`super::consumer`]). `false` on a stop.
pub(super) async fn until_a_batch_settles(sh: &Shared) -> bool {
    let settled = sh.settled.notified();
    tokio::pin!(settled);
    // Registered before the check: a settle in between still wakes it.
    settled.as_mut().enable();
    if sh.settlers.is_empty() {
        return true;
    }
    tokio::select! {
        _ = settled => true,
        _ = tokio::time::sleep(Duration::from_secs(WAIT_SECONDS as u64)) => true,
        _ = sh.failed.cancelled() => false,
        _ = sh.task.ctx.stop.cancelled() => false,
    }
}

/// One ReceiveMessage and, for what it brings, its settler (with `permit`). It long-polls only
/// while ferry holds nothing: no unsettled batch, and no other call under way whose batch would be
/// one (see "Polling" in [`super::consumer`]).
pub(super) async fn receive_and_hold(
    sh: &Arc<Shared>,
    retrier: &mut Retrier,
    received_at: Instant,
    permit: OwnedSemaphorePermit,
) -> Result<Option<(Vec<Message>, Option<oneshot::Sender<Handoff>>)>> {
    let others = sh.receiving.fetch_add(1, SeqCst);
    let wait = if others == 0 && sh.settlers.is_empty() {
        WAIT_SECONDS
    } else {
        0
    };
    let got = match receive(sh, retrier, wait).await {
        Ok(Some(m)) if !m.is_empty() => {
            let handoff = spawn_settler(sh, &m, received_at, permit);
            Ok(Some((m, Some(handoff))))
        }
        other => other.map(|o| o.map(|m| (m, None))),
    };
    sh.receiving.fetch_sub(1, SeqCst);
    got
}

/// One ReceiveMessage, long-polling `wait` seconds: `None` once a stop ends its retries; no
/// messages after a failure that will be retried (the caller loops).
async fn receive(sh: &Shared, retrier: &mut Retrier, wait: i32) -> Result<Option<Vec<Message>>> {
    let t = &sh.task;
    let visibility = t.queue.visibility_timeout_seconds as i32;
    match sh.api.receive(&t.queue.url, visibility, wait).await {
        Ok(messages) => {
            retrier.succeeded();
            t.ctx.stats.read_calls.fetch_add(1, Relaxed);
            Ok(Some(messages))
        }
        Err(e) => match retrier.backoff(e).await {
            Ok(()) => Ok(Some(Vec::new())),
            Err(e) if e.is_stopped() => Ok(None),
            Err(e) => Err(queue_error(t, e)),
        },
    }
}
