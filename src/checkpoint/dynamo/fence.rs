//! Writes under a lease. While a worker holds a lease ([`DynamoStore::hold`]), each of its state
//! writes is one transaction that first checks the lease still has this worker's owner and
//! counter. A worker that lost the lease (taken over while it was frozen) can therefore never
//! write state again: not a checkpoint that would skip records the new holder has not re-applied,
//! not a table row.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};

use tokio_util::sync::CancellationToken;

use super::DynamoStore;
use super::values::{n, s};
use crate::checkpoint::lease::{Fence, LEASES, lease_of};
use crate::error::{Error, Result};

/// What a transaction's cancellation says, by the reason of each of its items.
enum Cancelled {
    /// The lease check failed: the lease moved.
    Lease,
    /// A write's own condition failed.
    Write,
    /// Anything else (a conflicting transaction): worth another try.
    Other(String),
}

impl DynamoStore {
    /// Makes every later write conditional on `fence`, the lease as this worker holds it now (call
    /// again after each renewal); `None` writes unconditionally again.
    pub fn hold(&self, fence: Option<Fence>) {
        *self.fence.lock().unwrap() = fence;
    }

    /// The same state table, with every write fenced by `fence` (one view per held lease). Its
    /// retries end on the returned token too (a lost lease ends them: no write can land).
    pub fn fenced(&self, fence: Fence) -> (DynamoStore, CancellationToken) {
        let stop = self.stop.child_token();
        let store = DynamoStore {
            client: self.client.clone(),
            table: self.table.clone(),
            fence: std::sync::Mutex::new(Some(fence)),
            stop: stop.clone(),
        };
        (store, stop)
    }

    pub(super) fn fence(&self) -> Option<Fence> {
        self.fence.lock().unwrap().clone()
    }

    /// Writes `writes` in one transaction after the check of the held lease. `Ok(false)` when a
    /// write's own condition failed (nothing written); an error when the lease was lost.
    pub(super) async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<bool> {
        let mut retrier = self.retrier("writing under the lease");
        loop {
            let Some(fence) = self.fence() else {
                return Err(Error::fatal("a write under a lease with no lease held"));
            };
            let mut items = vec![
                TransactWriteItem::builder()
                    .condition_check(check(&self.table, &fence)?)
                    .build(),
            ];
            items.extend(writes.iter().cloned());
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let e = match sent {
                Ok(_) => return Ok(true),
                Err(e) => match cancelled(&e) {
                    Some(Cancelled::Write) => return Ok(false),
                    // Renewed while this was in flight: try again under the new counter.
                    Some(Cancelled::Lease) if self.fence() != Some(fence.clone()) => continue,
                    // The renewal landed but its answer has not reached the keeper yet: the new
                    // counter is on its way.
                    Some(Cancelled::Lease) if self.renewed_since(&fence).await? => {
                        Error::retryable(format!("lease {} renewed while a state write was in flight", fence.key))
                    }
                    Some(Cancelled::Lease) => return Err(lost(&self.table, &fence)),
                    Some(Cancelled::Other(why)) => Error::retryable(why),
                    None => Error::from_sdk("TransactWriteItems", e),
                },
            };
            retrier.backoff(e).await?;
        }
    }
}

impl DynamoStore {
    /// Whether the lease is still this worker's, renewed past `fence` (only this worker's own
    /// renewals move the counter while it keeps the owner).
    async fn renewed_since(&self, fence: &Fence) -> Result<bool> {
        let Some(item) = self.get(LEASES, &fence.key).await? else {
            return Ok(false);
        };
        let lease = lease_of(&item, &self.table)?;
        Ok(lease.owner.as_ref() == Some(&fence.owner) && lease.counter > fence.counter)
    }
}

/// The lease is still this worker's, at the counter it holds.
fn check(table: &str, fence: &Fence) -> Result<ConditionCheck> {
    ConditionCheck::builder()
        .table_name(table)
        .key("pk", s(LEASES))
        .key("sk", s(&fence.key))
        .condition_expression("#owner = :me AND #counter = :held")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_names("#counter", "counter")
        .expression_attribute_values(":me", s(&fence.owner))
        .expression_attribute_values(":held", n(fence.counter))
        .build()
        .map_err(|e| Error::fatal(e.to_string()))
}

fn cancelled<R>(e: &SdkError<TransactWriteItemsError, R>) -> Option<Cancelled> {
    let SdkError::ServiceError(se) = e else { return None };
    let TransactWriteItemsError::TransactionCanceledException(tc) = se.err() else {
        return None;
    };
    let codes: Vec<Option<&str>> = tc.cancellation_reasons().iter().map(|r| r.code()).collect();
    let failed = |c: &Option<&str>| *c == Some("ConditionalCheckFailed");
    Some(match codes.split_first() {
        Some((lease, _)) if failed(lease) => Cancelled::Lease,
        Some((_, rest)) if rest.iter().any(failed) => Cancelled::Write,
        _ => Cancelled::Other(format!("transaction cancelled: {codes:?}")),
    })
}

/// A refused write: logged here, where it happens, whatever its caller then does with the error.
fn lost(table: &str, fence: &Fence) -> Error {
    let e = Error::lease_lost(format!(
        "state table {table}: lease {} is no longer this worker's ({}): another worker took it over, \
         so this one writes no more state under it",
        fence.key, fence.owner
    ));
    tracing::warn!("a state write was refused: {e}");
    e
}
