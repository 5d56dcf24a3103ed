//! The write stage: one BatchWriteItem at a time per lane, through ferry's retry layer.
//!
//! Contract of [`write_all`]: it returns `Ok` only when every request of the batch is durably
//! written (UnprocessedItems resubmitted until none are left, throttles retried without limit), and
//! `Err` only with a fatal error that names the key that cannot be applied and why, or when ferry
//! is stopping while the destination keeps failing (then nothing of the batch is acknowledged).
//! Nothing is ever dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity, WriteRequest};
use aws_smithy_types::body::SdkBody;
use tokio_util::sync::CancellationToken;

use super::concurrency::{Outcome, Pace};
use super::limit::Limiter;
use crate::error::{Error, Kind, Result};
use crate::item::{self, Item, RawItem, wire};
use crate::retry::Retrier;
use crate::telemetry::TableStats;

/// A resolved write: what the destination must end up holding for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put(Item),
    /// A put whose item is still the source's checked JSON ([`crate::item::raw`]).
    PutRaw(RawItem),
    /// Holds the key attributes only.
    Delete(Item),
}

impl WriteOp {
    pub fn units(&self) -> u32 {
        match self {
            WriteOp::Put(i) => item::write_units(item::size_of(i)),
            WriteOp::PutRaw(r) => item::write_units(r.size()),
            WriteOp::Delete(_) => 1,
        }
    }
    /// This op with a raw item read into a map (for whatever looks inside items: messages, fakes).
    pub fn to_map(&self) -> WriteOp {
        match self {
            WriteOp::PutRaw(r) => WriteOp::Put(r.to_item()),
            op => op.clone(),
        }
    }

    fn describe(&self, key_names: &[String]) -> String {
        match self {
            WriteOp::Put(i) => format!("put of key {}", item::display_key(&item::key_of(key_names, i))),
            WriteOp::PutRaw(_) => self.to_map().describe(key_names),
            WriteOp::Delete(k) => format!("delete of key {}", item::display_key(k)),
        }
    }
}

/// A batch's writes, with what the write path needs to know about them.
pub struct Batch {
    pub ops: Vec<WriteOp>,
    /// What the ops cost in write units, when the caller knows it already.
    pub units: Option<u32>,
    /// Records the batch stands for (coalesced ones included), for the adaptive limit.
    pub records: usize,
    /// The lane had more waiting than this batch: the adaptive limit held it back.
    pub backlog: bool,
}

impl Batch {
    /// Ops standing for one record each, their cost to be worked out.
    pub fn of(ops: Vec<WriteOp>) -> Batch {
        let records = ops.len();
        Batch {
            ops,
            units: None,
            records,
            backlog: false,
        }
    }
}

/// The I/O the apply path needs. Implemented over DynamoDB, and by scripted fakes in tests.
pub trait ApplyIo: Send + Sync + 'static {
    /// Sends one BatchWriteItem (≤ 25 requests, distinct keys) and returns the requests the
    /// service left unprocessed. An `Err` means nothing can be assumed written. Borrowed: the
    /// ops stay with the caller for the next attempt, so no attempt copies the items.
    fn write_batch(&self, ops: &[WriteOp]) -> impl Future<Output = Result<Vec<WriteOp>>> + Send;
    /// Reads the current source items for `keys` with strongly consistent reads; absent items are
    /// simply not returned. Used for KEYS_ONLY and OLD_IMAGE streams, which carry no new image.
    fn read_source(&self, keys: Vec<Item>) -> impl Future<Output = Result<Vec<Item>>> + Send;
    /// Key attribute names of the destination table, hash key first (they name the key of a
    /// write that fails; a transform may rename them from the source's).
    fn key_names(&self) -> &[String];
    /// The destination table's name, for messages.
    fn destination(&self) -> &str;
}

/// Writes `ops` completely, or fails naming the key that cannot be written. Transient errors and
/// throttles are retried without end (the table shows as retrying meanwhile); only a stop request
/// during a backoff ends that early, with a [`Kind::Stopped`] error and nothing acknowledged.
/// Each attempt's round trip and outcome feed `pace` (the caller holds one of its slots).
pub async fn write_all<I: ApplyIo>(
    io: &I,
    Batch {
        ops,
        mut units,
        records,
        backlog,
    }: Batch,
    (limiter, pace): (&Limiter, &Pace),
    stats: &Arc<TableStats>,
    stop: &CancellationToken,
) -> Result<()> {
    if ops.is_empty() {
        // A batch whose every change was skipped by the transform: nothing to send.
        return Ok(());
    }
    let mut pending = ops;
    let mut retrier: Option<Retrier> = None;
    loop {
        let units = units.take().unwrap_or_else(|| pending.iter().map(WriteOp::units).sum());
        limiter.acquire(units).await;
        stats.write_units.fetch_add(units as u64, Relaxed);
        let attempt = pace.send(backlog);
        let result = io.write_batch(&pending).await;
        let outcome = match &result {
            Ok(left) if left.is_empty() => Some(Outcome::Written(records)),
            Err(e) if e.is_fatal() || e.kind() == Kind::Stopped => None,
            _ => Some(Outcome::Overloaded),
        };
        if let Some(o) = outcome {
            pace.done(attempt, o);
        }
        if result.is_ok() {
            stats.write_calls.fetch_add(1, Relaxed);
        }
        let failed = match result {
            Ok(unprocessed) if unprocessed.is_empty() => {
                stats.items_written.fetch_add(pending.len() as u64, Relaxed);
                if let Some(r) = &mut retrier {
                    r.succeeded();
                }
                return Ok(());
            }
            Ok(unprocessed) => {
                stats
                    .items_written
                    .fetch_add((pending.len() - unprocessed.len()) as u64, Relaxed);
                let n = unprocessed.len();
                pending = unprocessed;
                Error::new(Kind::Throttled, format!("{n} requests left unprocessed"))
            }
            Err(e) if e.is_fatal() => return Err(isolate(io, pending, e, (limiter, pace), stats, stop).await),
            Err(e) => e,
        };
        // Built on the first failure only: the common case never pays for it.
        let r = retrier.get_or_insert_with(|| Retrier::daemon(format!("writing to {}", io.destination()), stop, stats));
        r.backoff(failed).await?;
    }
}

/// A batch was rejected as a whole: write its requests one by one to name the one at fault.
async fn isolate<I: ApplyIo>(
    io: &I,
    ops: Vec<WriteOp>,
    e: Error,
    (limiter, pace): (&Limiter, &Pace),
    stats: &Arc<TableStats>,
    stop: &CancellationToken,
) -> Error {
    if ops.len() == 1 {
        return e.context(format!(
            "cannot apply {} to {}",
            ops[0].describe(io.key_names()),
            io.destination()
        ));
    }
    for op in ops {
        if let Err(err) = Box::pin(write_all(io, Batch::of(vec![op]), (limiter, pace), stats, stop)).await {
            return err;
        }
    }
    // Every request passed alone: the batch as a whole was refused (e.g. its total size).
    e.context(format!("cannot apply a batch to {}", io.destination()))
}

/// [`ApplyIo`] over DynamoDB: writes to the destination, consistent reads from the source.
pub struct DynamoIo {
    pub destination: aws_sdk_dynamodb::Client,
    pub destination_table: String,
    pub source: aws_sdk_dynamodb::Client,
    pub source_table: String,
    pub key_names: Arc<[String]>,
    /// The source's read budget (shared with the snapshot scan), charged after each read.
    pub read_limiter: Arc<Limiter>,
    /// Ends read retries on a stop; the table whose health they report.
    pub stop: CancellationToken,
    pub stats: Arc<TableStats>,
}

impl ApplyIo for DynamoIo {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        // The SDK would copy every item into its own maps and serialize them again; ferry writes
        // the body itself (raw images as they came) and hands it to the SDK just before signing.
        let body = bytes::Bytes::from(request_body(&self.destination_table, ops));
        let out = self
            .destination
            .batch_write_item()
            .request_items(&self.destination_table, Vec::new())
            .customize()
            .mutate_request(move |req| {
                req.headers_mut().insert("content-length", body.len().to_string());
                *req.body_mut() = SdkBody::from(body.clone());
            })
            .send()
            .await
            .map_err(|e| Error::from_sdk("BatchWriteItem", e))?;
        let mut left = Vec::new();
        for (_, reqs) in out.unprocessed_items.unwrap_or_default() {
            left.extend(reqs.into_iter().filter_map(from_request));
        }
        Ok(left)
    }

    async fn read_source(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut retrier = Retrier::daemon(
            format!("reading {} for read-through", self.source_table),
            &self.stop,
            &self.stats,
        );
        for chunk in keys.chunks(100) {
            let mut want = Some(chunk.to_vec());
            while let Some(k) = want.take().filter(|k| !k.is_empty()) {
                let asked = k.len() as f64;
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(k))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::fatal(e.to_string()))?;
                let out = retrier
                    .run(|| async {
                        self.source
                            .batch_get_item()
                            .request_items(&self.source_table, ka.clone())
                            .return_consumed_capacity(ReturnConsumedCapacity::Total)
                            .send()
                            .await
                            .map_err(|e| Error::from_sdk("BatchGetItem", e))
                    })
                    .await?;
                // Paid after the read, like the scan: at least a unit per key when not reported.
                let used: f64 = out
                    .consumed_capacity
                    .iter()
                    .flatten()
                    .filter_map(|c| c.capacity_units)
                    .sum();
                let used = if out.consumed_capacity.is_some() { used } else { asked };
                self.read_limiter.acquire(used.ceil() as u32).await;
                found.extend(out.responses.unwrap_or_default().into_values().flatten());
                want = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.source_table))
                    .map(|ka| ka.keys);
                if let Some(left) = want.as_ref().filter(|k| !k.is_empty()) {
                    let n = left.len();
                    retrier
                        .backoff(Error::new(Kind::Throttled, format!("{n} keys left unprocessed")))
                        .await?;
                }
            }
        }
        Ok(found)
    }

    fn key_names(&self) -> &[String] {
        &self.key_names
    }

    fn destination(&self) -> &str {
        &self.destination_table
    }
}

/// The BatchWriteItem request body for `ops` on `table` (public for benchmarks that cost the
/// whole path without I/O).
pub fn request_body(table: &str, ops: &[WriteOp]) -> Vec<u8> {
    let bytes: usize = ops
        .iter()
        .map(|op| match op {
            WriteOp::PutRaw(r) => r.json().len() + 32,
            _ => 256,
        })
        .sum();
    let mut out = Vec::with_capacity(bytes + table.len() + 32);
    out.extend_from_slice(b"{\"RequestItems\":{");
    wire::write_str(&mut out, table);
    out.extend_from_slice(b":[");
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match op {
            WriteOp::PutRaw(r) => {
                out.extend_from_slice(b"{\"PutRequest\":{\"Item\":");
                out.extend_from_slice(r.json().as_bytes());
            }
            WriteOp::Put(i) => {
                out.extend_from_slice(b"{\"PutRequest\":{\"Item\":");
                wire::write_item(&mut out, i);
            }
            WriteOp::Delete(k) => {
                out.extend_from_slice(b"{\"DeleteRequest\":{\"Key\":");
                wire::write_item(&mut out, k);
            }
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}}");
    out
}

fn from_request(r: WriteRequest) -> Option<WriteOp> {
    match (r.put_request, r.delete_request) {
        (Some(p), _) => Some(WriteOp::Put(p.item)),
        (None, Some(d)) => Some(WriteOp::Delete(d.key)),
        _ => None,
    }
}
