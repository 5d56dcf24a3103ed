//! What the SQS consumer reports once a second: the queue's depth and messages in flight, caught-up
//! and applied-as-of, and the dead-letter queue's depth (see [`super::dead_letter`]), to the stats
//! and the state store.

use std::sync::atomic::Ordering::Relaxed;

use aws_sdk_sqs::types::QueueAttributeName;

use super::consumer::{Shared, queue_error};
use super::dead_letter;
use crate::checkpoint::QueueRow;
use crate::error::Result;

const OBSERVED: &[QueueAttributeName] = &[
    QueueAttributeName::ApproximateNumberOfMessages,
    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    QueueAttributeName::RedrivePolicy,
];

/// Queue depth, lag and caught-up, once a second; and the dead-letter queue.
pub(super) async fn observe(sh: &Shared) -> Result<()> {
    let t = &sh.task;
    let asked_at = crate::clock::now_ms();
    let attrs = match sh.api.attributes(&t.queue.url, OBSERVED).await {
        Ok(a) => a,
        Err(e) => {
            return if e.is_fatal() { Err(queue_error(t, e)) } else { Ok(()) };
        }
    };
    let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse::<i64>().ok());
    let depth = get(QueueAttributeName::ApproximateNumberOfMessages);
    let in_flight = get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    t.ctx.stats.queue_depth.store(depth.unwrap_or(-1), Relaxed);
    t.ctx.stats.queue_in_flight.store(in_flight.unwrap_or(-1), Relaxed);
    // Empty and nothing of ours pending: every buffered change is applied. (The counts are
    // approximate, and a change takes the forwarder's delay to reach the queue: a weaker
    // applied-as-of than a stream's.)
    let idle = depth == Some(0) && in_flight == Some(0) && sh.settlers.is_empty();
    let policy = attrs.get(&QueueAttributeName::RedrivePolicy).map(String::as_str);
    let stuck = watch_dead_letter(sh, policy).await;
    // A dead letter means a change is missing: not caught up, whatever the queue says.
    let idle = idle && stuck.is_ok();
    t.ctx.stats.caught_up.store(idle, Relaxed);
    if idle {
        t.ctx.stats.applied_as_of_ms.fetch_max(asked_at, Relaxed);
    }
    publish_queue(sh, depth, in_flight).await?;
    stuck.map_err(|e| e.context(format!("table {}", t.ctx.table)))
}

/// Judges the queue's current redrive policy (it may be added while ferry runs) and polls the
/// dead-letter queue's depth; an error when the table must stop.
async fn watch_dead_letter(sh: &Shared, policy: Option<&str>) -> Result<()> {
    let t = &sh.task;
    let Some((arn, count)) = dead_letter::judge(&t.queue, policy)? else {
        *sh.dead_letter.lock().unwrap() = None;
        t.ctx.stats.dead_letter_depth.store(-1, Relaxed);
        return Ok(());
    };
    let known = sh.dead_letter.lock().unwrap().clone().filter(|d| d.arn == arn);
    let dl = match known {
        Some(d) => d,
        None => {
            let d = match dead_letter::resolve(&*sh.api, &t.queue, &arn, count).await {
                Ok(d) => d,
                // A transient failure finding the queue: asked again at the next poll.
                Err(e) if !e.is_fatal() => {
                    tracing::warn!(table = %t.ctx.table, "finding the dead-letter queue failed, will ask again: {e}");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            *sh.dead_letter.lock().unwrap() = Some(d.clone());
            d
        }
    };
    // (None: a transient error, asked again at the next poll.)
    if let Some(n) = dead_letter::depth(&*sh.api, &dl).await? {
        t.ctx.stats.dead_letter_depth.store(n, Relaxed);
        if n > 0 {
            return Err(dead_letter::not_empty(&t.queue.url, &dl, n));
        }
    }
    Ok(())
}

pub(super) async fn publish_queue(sh: &Shared, depth: Option<i64>, in_flight: Option<i64>) -> Result<()> {
    let t = &sh.task;
    let dead_letter_url = sh.dead_letter.lock().unwrap().as_ref().map(|d| d.url.clone());
    let dead_letter_depth = Some(t.ctx.stats.dead_letter_depth.load(Relaxed)).filter(|n| *n >= 0);
    t.ctx
        .store
        .put_queue(
            &t.ctx.table,
            &QueueRow {
                queue_url: t.queue.url.clone(),
                depth,
                in_flight,
                dropped: t.ctx.stats.records_dropped.load(Relaxed) as i64,
                dead_letter_url,
                dead_letter_depth,
            },
        )
        .await
}
