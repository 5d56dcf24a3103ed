//! What the snapshot scan reads: one page of one segment of a consistent parallel scan.
//!
//! A narrow trait, so scripted fakes can drive the scan (failures, throttles, back-pressure) in
//! tests; [`SdkScan`] is the thin DynamoDB implementation.

use std::future::Future;

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::budget;
use crate::error::{Error, Result};
use crate::item::{self, Item};

/// One Scan call.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub segment: i32,
    pub total_segments: i32,
    /// ExclusiveStartKey: continue after this key (`None` = the segment's start).
    pub start: Option<Item>,
    /// Most items in the page (`None` = up to DynamoDB's 1 MB).
    pub limit: Option<i32>,
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// LastEvaluatedKey (`None` = the segment is finished).
    pub next: Option<Item>,
    /// Read units the page consumed.
    pub read_units: f64,
}

pub trait ScanSource: Send + Sync + 'static {
    /// Reads one page with strongly consistent reads. Errors are classified (a throttle is
    /// `Kind::Throttled`) and retried by the caller.
    fn page(&self, req: PageRequest) -> impl Future<Output = Result<Page>> + Send;
}

/// [`ScanSource`] over DynamoDB.
pub struct SdkScan {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl ScanSource for SdkScan {
    async fn page(&self, req: PageRequest) -> Result<Page> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(req.segment)
            .total_segments(req.total_segments)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_limit(req.limit)
            .set_exclusive_start_key(req.start)
            .send()
            .await
            .map_err(|e| Error::from_sdk("Scan", e))?;
        let items = out.items.unwrap_or_default();
        // An endpoint that does not report consumed capacity is charged what AWS would bill.
        let read_units = out
            .consumed_capacity
            .and_then(|c| c.capacity_units)
            .unwrap_or_else(|| budget::scan_units(items.iter().map(|i| item::size_of(i) as u64).sum()).max(1.0));
        Ok(Page {
            items,
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
            read_units,
        })
    }
}
