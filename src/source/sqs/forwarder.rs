//! The forwarder: one DynamoDB stream batch (a Lambda event) in, FIFO SQS messages out.
//!
//! Each record becomes one message: `MessageGroupId` = table + hash of the item's key (one key,
//! one group: per-key order; many keys, many groups: parallel consumption), and
//! `MessageDeduplicationId` = the record's eventID (a resent record is dropped by SQS).
//!
//! Ordering argument. Records are cut, in stream order, into SendMessageBatch calls of at most
//! 10 entries and [`BATCH_MAX`] bytes, and **one call never holds two records of the same group**
//! (a batch ends before a record whose group it already holds). Up to [`SENDS_IN_FLIGHT`] calls
//! are in flight at once, started in order, and **calls in flight never share a group**: a call
//! waits while an earlier one holding any of its groups is unanswered. So a group's records are
//! enqueued one call after another, in stream order. Once a call reports a failure, no further
//! call starts; the calls in flight finish, and the forwarder reports the earliest record not
//! known to be enqueued (a failed entry, or the first entry of a failed call) as the batch item
//! failure. Every record before it is enqueued, and of each group nothing after its first
//! unenqueued record was sent (a later call of that group would have waited for the failed one).
//! Lambda (`ReportBatchItemFailures`) then retries the batch from that record; records at or
//! after it that were already sent are dropped by SQS as duplicates of their eventID. Nothing is
//! lost, and per group nothing is reordered. (A retry more than SQS's 5-minute deduplication
//! window later enqueues those records again, after their first copies: an in-order suffix
//! repeated, which converges like any replay.)
//!
//! Records whose message would exceed [`INLINE_MAX`] are stored in S3 first (one object per
//! eventID) and the message carries a pointer; a failed PutObject counts as that record's failure.

use std::collections::HashSet;
use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use serde_json::Value;

use super::message::{self, BATCH_ENTRIES, BATCH_MAX, INLINE_MAX, Offload};
use crate::error::{Error, Result};
use crate::item::{KeyBytes, json::item_from_json};
use crate::retry::{Policy, Retrier};

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
}

/// What one invocation did.
#[derive(Debug, Default, PartialEq)]
pub struct Forwarded {
    pub sent: usize,
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

/// One record, ready to send.
struct Outgoing {
    seq: String,
    group: String,
    dedup: String,
    body: String,
    /// The record JSON to store in S3 first, and where.
    offload: Option<(Offload, Vec<u8>)>,
}

/// Forwards one Lambda stream event. A malformed event is an `Err` (the whole invocation fails and
/// Lambda retries it); failures to send are reported in [`Forwarded::failed_at`].
pub async fn forward<S: Sender>(sender: &S, target: &Target, event: &Value) -> Result<Forwarded> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::fatal("the Lambda event has no Records list (is this a DynamoDB stream trigger?)"))?;
    let out = records
        .iter()
        .enumerate()
        .map(|(i, r)| outgoing(target, r).map_err(|e| e.context(format!("stream event record #{i}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(send_all(sender, target, &out).await)
}

/// SendMessageBatch calls one invocation keeps in flight: a Lambda batch of 100 records over
/// distinct keys is 10 calls, sent in one round trip rather than ten, so the forwarder keeps up
/// with a busy shard (one invocation per shard at a time).
pub const SENDS_IN_FLIGHT: usize = 10;

/// Sends `out` under the ordering argument above.
async fn send_all<S: Sender>(sender: &S, target: &Target, out: &[Outgoing]) -> Forwarded {
    let mut done = Forwarded::default();
    // Position in `out` of the earliest record not known to be enqueued.
    let mut failed: Option<usize> = None;
    let mut busy: HashSet<&str> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut start = 0;
    loop {
        while failed.is_none() && start < out.len() && running.len() < target.sends_in_flight.max(1) {
            let end = batch_end(out, start);
            let batch = &out[start..end];
            if batch.iter().any(|o| busy.contains(o.group.as_str())) {
                break;
            }
            busy.extend(batch.iter().map(|o| o.group.as_str()));
            running.push(async move { (start, batch, deliver(sender, target, batch).await) });
            start = end;
        }
        let Some((at, batch, outcome)) = running.next().await else {
            break;
        };
        for o in batch {
            busy.remove(o.group.as_str());
        }
        done.offloaded += outcome.offloaded;
        done.sent += outcome.sent;
        if outcome.sent < batch.len() {
            failed = Some(failed.map_or(at + outcome.sent, |f| f.min(at + outcome.sent)));
        }
    }
    done.failed_at = failed.map(|i| out[i].seq.clone());
    done
}

/// What one call did.
struct Outcome {
    /// Entries known enqueued before the batch's first failure (all of them without one).
    sent: usize,
    offloaded: usize,
}

/// Offloads and sends one batch. Offloaded bodies are durable before any pointer to them is sent.
async fn deliver<S: Sender>(sender: &S, target: &Target, batch: &[Outgoing]) -> Outcome {
    let (sendable, offloaded) = offload(sender, batch).await;
    let first_failed = send(sender, target, &batch[..sendable]).await;
    let sent = first_failed
        .or((sendable < batch.len()).then_some(sendable))
        .unwrap_or(batch.len());
    Outcome { sent, offloaded }
}

/// Stores the offloaded bodies of `batch` in order; how many of its entries may be sent (those
/// before the first body that could not be stored), and how many bodies were stored.
async fn offload<S: Sender>(sender: &S, batch: &[Outgoing]) -> (usize, usize) {
    let mut stored = 0;
    for (i, o) in batch.iter().enumerate() {
        if let Some((off, bytes)) = &o.offload {
            let r = Retrier::new(Policy::STARTUP, "PutObject")
                .run(|| sender.put_object(&off.bucket, &off.key, bytes.clone()))
                .await;
            if let Err(e) = r {
                tracing::warn!(seq = %o.seq, error = %e, "offloading a record to S3 failed");
                return (i, stored);
            }
            stored += 1;
        }
    }
    (batch.len(), stored)
}

/// Sends `entries` as one batch; the index of the first that failed, if any (nothing to send
/// counts as failing at 0).
async fn send<S: Sender>(sender: &S, target: &Target, entries: &[Outgoing]) -> Option<usize> {
    let entries: Vec<Entry> = entries
        .iter()
        .enumerate()
        .map(|(i, o)| Entry {
            id: i.to_string(),
            body: o.body.clone(),
            group: o.group.clone(),
            dedup: o.dedup.clone(),
        })
        .collect();
    if entries.is_empty() {
        return Some(0);
    }
    match Retrier::new(Policy::STARTUP, "SendMessageBatch")
        .run(|| sender.send_batch(&target.queue_url, &entries))
        .await
    {
        Ok(failed) => failed.iter().filter_map(|id| id.parse::<usize>().ok()).min(),
        Err(e) => {
            tracing::warn!(error = %e, "SendMessageBatch failed");
            Some(0)
        }
    }
}

/// End (exclusive) of the batch starting at `start`: at most 10 entries and [`BATCH_MAX`] bytes,
/// and never two entries of one group.
fn batch_end(out: &[Outgoing], start: usize) -> usize {
    let mut bytes = 0;
    let mut groups: Vec<&str> = Vec::with_capacity(BATCH_ENTRIES);
    let mut end = start;
    while end < out.len() && end - start < BATCH_ENTRIES {
        let o = &out[end];
        let size = o.body.len() + o.group.len() + o.dedup.len();
        if groups.contains(&o.group.as_str()) || (end > start && bytes + size > BATCH_MAX) {
            break;
        }
        bytes += size;
        groups.push(&o.group);
        end += 1;
    }
    end
}

fn outgoing(target: &Target, record: &Value) -> Result<Outgoing> {
    let text = |v: Option<&Value>, what: &str| {
        v.and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::fatal(format!("no {what}")))
    };
    let event_id = text(record.get("eventID"), "eventID")?;
    let d = record
        .get("dynamodb")
        .ok_or_else(|| Error::fatal("no dynamodb section"))?;
    let seq = text(d.get("SequenceNumber"), "dynamodb.SequenceNumber")?;
    let keys = item_from_json(d.get("Keys").unwrap_or(&Value::Null))
        .map_err(|e| Error::fatal(format!("record {seq}: unreadable Keys: {e}")))?;
    // The key schema is not in the event; any fixed order gives one identity per key.
    let mut names: Vec<String> = keys.keys().cloned().collect();
    names.sort();
    let key = KeyBytes::of(&names, &keys)
        .filter(|_| !names.is_empty())
        .ok_or_else(|| Error::fatal(format!("record {seq}: Keys hold no scalar key attributes")))?;
    let group = message::group_id(&target.table, &key);
    let body = message::inline_body(&target.table, record);
    let (body, offload) = if body.len() <= INLINE_MAX {
        (body, None)
    } else {
        let bucket = target.offload_bucket.clone().ok_or_else(|| {
            Error::fatal(format!(
                "record {seq} is {} bytes, over the {INLINE_MAX}-byte message limit, and no offload bucket is \
                 set (FERRY_OFFLOAD_BUCKET)",
                body.len()
            ))
        })?;
        let off = Offload {
            bucket,
            key: message::offload_key(&target.table, &event_id),
        };
        let pointer = message::pointer_body(&target.table, &off, &seq);
        (pointer, Some((off, record.to_string().into_bytes())))
    };
    Ok(Outgoing {
        seq,
        group,
        dedup: event_id.chars().take(128).collect(),
        body,
        offload,
    })
}

/// The Lambda's configuration from its environment: `FERRY_QUEUE_URL`, `FERRY_TABLE`, and
/// optionally `FERRY_OFFLOAD_BUCKET`, `FERRY_SENDS_IN_FLIGHT` (1 sends one call at a time, for a
/// queue endpoint that does poorly with concurrent calls) and `FERRY_S3_PATH_STYLE=1` (for an
/// S3-compatible endpoint that needs path-style addressing). Clients come from the standard AWS environment (the
/// function's role, `AWS_ENDPOINT_URL_*`), with the SDK's retries off like everywhere in ferry.
pub async fn from_env() -> Result<(SdkSender, Target)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let queue_url = var("FERRY_QUEUE_URL").ok_or_else(|| Error::fatal("FERRY_QUEUE_URL is not set"))?;
    let table = var("FERRY_TABLE").ok_or_else(|| Error::fatal("FERRY_TABLE is not set"))?;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(var("FERRY_S3_PATH_STYLE").is_some())
        .build();
    let sender = SdkSender {
        sqs: aws_sdk_sqs::Client::new(&conf),
        s3: aws_sdk_s3::Client::from_conf(s3),
    };
    let target = Target {
        queue_url,
        offload_bucket: var("FERRY_OFFLOAD_BUCKET"),
        table,
        sends_in_flight: match var("FERRY_SENDS_IN_FLIGHT") {
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Error::fatal(format!(
                    "FERRY_SENDS_IN_FLIGHT={v:?} is not a whole number of at least 1"
                ))
            })?,
            None => SENDS_IN_FLIGHT,
        },
    };
    Ok((sender, target))
}

/// The real [`Sender`]: SQS and S3 clients.
#[derive(Clone, Debug)]
pub struct SdkSender {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Sender for SdkSender {
    async fn send_batch(&self, queue_url: &str, entries: &[Entry]) -> Result<Vec<String>> {
        let list = entries
            .iter()
            .map(|e| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .message_body(&e.body)
                    .message_group_id(&e.group)
                    .message_deduplication_id(&e.dedup)
                    .build()
                    .map_err(|err| Error::fatal(format!("building a SendMessageBatch entry: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(list))
            .send()
            .await
            .map_err(|e| Error::from_sdk("SendMessageBatch", e))?;
        for f in out.failed() {
            tracing::warn!(
                id = f.id(),
                code = f.code(),
                message = f.message(),
                "SendMessageBatch entry failed"
            );
        }
        Ok(out.failed().iter().map(|f| f.id().to_string()).collect())
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::from_sdk("PutObject", e))
    }
}

#[cfg(test)]
mod tests;
