//! The forwarder: one DynamoDB stream batch (a Lambda event) in, FIFO SQS messages out.
//!
//! Each record goes to its key's group (`MessageGroupId` = table + bucket of a hash of the item's
//! key, [`super::message::group_id`]): one key, one group, so per key the queue keeps stream order. Per
//! group, the batch's records are packed into messages in stream order ([`pack`]); a message's
//! `MessageDeduplicationId` is a hash of its records' eventIDs (the same message resent is
//! dropped by SQS).
//!
//! Ordering argument. A group's messages hold its records one after another, in stream order.
//! Messages are cut, in the order of their first record, into SendMessageBatch calls of at most
//! 10 messages and the queue's message size in bytes, and **one call never holds two messages of
//! the same group**. Up to [`SENDS_IN_FLIGHT`] calls are in flight at once, started in order, and **calls
//! in flight never share a group**: a call waits while an earlier one holding any of its groups is
//! unanswered. So a group's messages are enqueued one after another, in stream order. Once a call
//! reports a failure, no further call starts; the calls in flight finish, and the forwarder
//! reports the earliest record of a message not known to be enqueued (a failed message, or one of
//! a failed call) as the batch item failure. Every record before it is in an enqueued message (its
//! message starts no later than it), and of each group nothing after its first unenqueued message
//! was sent (a later call of that group would have waited for the failed one). Lambda
//! (`ReportBatchItemFailures`) then retries the batch from that record, packing what is left
//! again. A message of the same records is dropped by SQS as a duplicate; one that differs (some
//! of its records were enqueued before, packed with records before the retry point) is enqueued
//! after them. Per key, the queue then holds the key's records up to some point and again from no
//! later than its first record not enqueued: an in-order suffix repeated, which converges like
//! any replay. Nothing is lost, and per key nothing is reordered. (A retry more than SQS's
//! 5-minute deduplication window later repeats a suffix the same way.)
//!
//! Records whose part would not fit a message alone are stored in S3 first (one object per
//! eventID) and the message carries a pointer; a failed PutObject fails that record's message.

use std::collections::HashSet;
use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use serde_json::Value;

use super::message::{BATCH_ENTRIES, body_max};
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};

mod pack;
mod sdk;

use pack::Message;
pub use sdk::{SdkSender, from_env, queue_message_max};

/// One SendMessageBatch entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique within one call.
    pub id: String,
    pub body: String,
    pub group: String,
    pub dedup: String,
}

/// What the forwarder needs from AWS.
///
/// Contract:
/// - `send_batch` sends up to 10 entries to a FIFO queue in one SendMessageBatch. `Ok(failed)`
///   names the entries SQS did not accept; every other entry is durably enqueued. `Err` means the
///   call as a whole failed: any entry may or may not be enqueued (a resend is safe, SQS
///   deduplicates by `dedup` for 5 minutes).
/// - `put_object` stores `body` durably at `bucket`/`key` before returning `Ok`; storing the same
///   key again with the same bytes is harmless.
pub trait Sender: Send + Sync {
    fn send_batch(&self, queue_url: &str, entries: &[Entry]) -> impl Future<Output = Result<Vec<String>>> + Send;
    fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> impl Future<Output = Result<()>> + Send;
}

/// Where and how to forward.
#[derive(Debug, Clone)]
pub struct Target {
    pub queue_url: String,
    /// S3 bucket for oversize records; without one an oversize record is an error.
    pub offload_bucket: Option<String>,
    /// The source table's name (message groups and the envelope carry it).
    pub table: String,
    /// SendMessageBatch calls in flight at once ([`SENDS_IN_FLIGHT`] unless set).
    pub sends_in_flight: usize,
    /// The queue's `MaximumMessageSize` in bytes ([`queue_message_max`]): a message body stays
    /// within [`body_max`] of it, and one call's bodies within it.
    pub message_max: usize,
    /// Key buckets, one message group each ([`super::message::GROUPS`]; the group ids name the count,
    /// so another count never shares a group with it).
    pub groups: u32,
}

/// What one invocation did.
#[derive(Debug, Default, PartialEq)]
pub struct Forwarded {
    /// Records in enqueued messages.
    pub sent: usize,
    /// Messages enqueued.
    pub messages: usize,
    pub offloaded: usize,
    /// SequenceNumber of the earliest record not known to be enqueued: Lambda retries from it.
    pub failed_at: Option<String>,
}

impl Forwarded {
    /// The Lambda response for `ReportBatchItemFailures`.
    pub fn lambda_response(&self) -> Value {
        let failures: Vec<Value> = self
            .failed_at
            .iter()
            .map(|s| serde_json::json!({ "itemIdentifier": s }))
            .collect();
        serde_json::json!({ "batchItemFailures": failures })
    }
}

/// Forwards one Lambda stream event. A malformed event is an `Err` (the whole invocation fails and
/// Lambda retries it); failures to send are reported in [`Forwarded::failed_at`].
pub async fn forward<S: Sender>(sender: &S, target: &Target, event: &Value) -> Result<Forwarded> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::fatal("the Lambda event has no Records list (is this a DynamoDB stream trigger?)"))?;
    let recs = records
        .iter()
        .enumerate()
        .map(|(i, r)| pack::record(target, r).map_err(|e| e.context(format!("stream event record #{i}"))))
        .collect::<Result<Vec<_>>>()?;
    let seqs: Vec<String> = recs.iter().map(|r| r.seq.clone()).collect();
    let out = pack::pack(&target.table, recs, body_max(target.message_max));
    let (mut done, failed) = send_all(sender, target, &out).await;
    done.failed_at = failed.map(|i| seqs[i].clone());
    Ok(done)
}

/// SendMessageBatch calls one invocation keeps in flight: when a batch's messages take several
/// calls (hot keys, big items), they go out in one round trip rather than one after another, so
/// the forwarder keeps up with a busy shard (one invocation per shard at a time).
pub const SENDS_IN_FLIGHT: usize = 10;

/// Sends `out` under the ordering argument above; also the position (in the batch) of the
/// earliest record not known to be enqueued.
async fn send_all<S: Sender>(sender: &S, target: &Target, out: &[Message]) -> (Forwarded, Option<usize>) {
    let mut done = Forwarded::default();
    let mut failed: Option<usize> = None;
    let mut busy: HashSet<&str> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut start = 0;
    loop {
        while failed.is_none() && start < out.len() && running.len() < target.sends_in_flight.max(1) {
            let end = batch_end(out, start, target.message_max);
            let batch = &out[start..end];
            if batch.iter().any(|m| busy.contains(m.group.as_str())) {
                break;
            }
            busy.extend(batch.iter().map(|m| m.group.as_str()));
            running.push(async move { (batch, deliver(sender, target, batch).await) });
            start = end;
        }
        let Some((batch, outcome)) = running.next().await else {
            break;
        };
        for m in batch {
            busy.remove(m.group.as_str());
        }
        done.offloaded += outcome.offloaded;
        for (m, ok) in batch.iter().zip(&outcome.enqueued) {
            if *ok {
                done.sent += m.records.len();
                done.messages += 1;
            } else {
                failed = Some(failed.map_or(m.first(), |f| f.min(m.first())));
            }
        }
    }
    (done, failed)
}

/// What one call did.
struct Outcome {
    /// Per message of the call: known enqueued.
    enqueued: Vec<bool>,
    offloaded: usize,
}

/// Offloads and sends one batch. Offloaded bodies are durable before any pointer to them is sent.
async fn deliver<S: Sender>(sender: &S, target: &Target, batch: &[Message]) -> Outcome {
    let (sendable, offloaded) = offload(sender, batch).await;
    let mut enqueued = send(sender, target, &batch[..sendable]).await;
    enqueued.resize(batch.len(), false);
    Outcome { enqueued, offloaded }
}

/// Stores the offloaded records of `batch` in order; how many of its messages may be sent (those
/// before the first whose records could not all be stored), and how many records were stored.
async fn offload<S: Sender>(sender: &S, batch: &[Message]) -> (usize, usize) {
    let mut stored = 0;
    for (i, m) in batch.iter().enumerate() {
        for (off, bytes) in &m.offloads {
            let r = Retrier::new(Policy::STARTUP, "PutObject")
                .run(|| sender.put_object(&off.bucket, &off.key, bytes.clone()))
                .await;
            if let Err(e) = r {
                tracing::warn!(key = %off.key, error = %e, "offloading a record to S3 failed");
                return (i, stored);
            }
            stored += 1;
        }
    }
    (batch.len(), stored)
}

/// Sends `messages` as one call; per message, whether SQS accepted it.
async fn send<S: Sender>(sender: &S, target: &Target, messages: &[Message]) -> Vec<bool> {
    let entries: Vec<Entry> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Entry {
            id: i.to_string(),
            body: m.body.clone(),
            group: m.group.clone(),
            dedup: m.dedup.clone(),
        })
        .collect();
    if entries.is_empty() {
        return Vec::new();
    }
    match Retrier::new(Policy::STARTUP, "SendMessageBatch")
        .run(|| sender.send_batch(&target.queue_url, &entries))
        .await
    {
        Ok(failed) => entries.iter().map(|e| !failed.contains(&e.id)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "SendMessageBatch failed");
            vec![false; entries.len()]
        }
    }
}

/// End (exclusive) of the call starting at `start`: at most 10 messages and `max` bytes, and never
/// two messages of one group.
fn batch_end(out: &[Message], start: usize, max: usize) -> usize {
    let mut bytes = 0;
    let mut groups: Vec<&str> = Vec::with_capacity(BATCH_ENTRIES);
    let mut end = start;
    while end < out.len() && end - start < BATCH_ENTRIES {
        let m = &out[end];
        let size = m.body.len() + m.group.len() + m.dedup.len();
        if groups.contains(&m.group.as_str()) || (end > start && bytes + size > max) {
            break;
        }
        bytes += size;
        groups.push(&m.group);
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests;
