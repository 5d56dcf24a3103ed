//! Reading one side of a comparison: a segment of a parallel scan, reduced to (key, digest)
//! entries, paced by a read-unit budget; and consistent point reads of single keys for re-checks.
//! The AWS reads themselves sit behind [`TableReads`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use futures::future::BoxFuture;

use super::digest::{Entry, item_digest};
use crate::apply::{ApplyIo, DynamoIo, Limiter};
use crate::error::{Error, Result};
use crate::item::{Item, KeyBytes};
use crate::retry::{Policy, Retrier};
use crate::transform::Transform;

/// One page of a segment scan.
pub struct Page {
    pub items: Vec<Item>,
    /// Read units the endpoint reports for the page, if it does.
    pub units: Option<f64>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<Item>,
}

/// The reads verify makes of one table, behind a narrow trait so the comparison is tested
/// against scripted tables. (Repair writes go through the apply path's own seam, [`ApplyIo`].)
pub trait TableReads: Send + Sync {
    /// One page of segment `segment` of `total`, from `start` (Scan with ReturnConsumedCapacity).
    fn scan_page(&self, segment: i32, total: i32, consistent: bool, start: Option<Item>)
    -> BoxFuture<'_, Result<Page>>;
    /// Current items for `keys`, read consistently (absent items are not returned).
    fn get(&self, keys: Vec<Item>) -> BoxFuture<'_, Result<Vec<Item>>>;
}

/// [`TableReads`] through the SDK.
pub struct DynamoReads {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub key_names: Arc<[String]>,
}

impl TableReads for DynamoReads {
    fn scan_page(
        &self,
        segment: i32,
        total: i32,
        consistent: bool,
        start: Option<Item>,
    ) -> BoxFuture<'_, Result<Page>> {
        Box::pin(async move {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .segment(segment)
                .total_segments(total)
                .consistent_read(consistent)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::from_sdk("Scan", e))?;
            Ok(Page {
                units: page.consumed_capacity.and_then(|c| c.capacity_units),
                next: page.last_evaluated_key.filter(|k| !k.is_empty()),
                items: page.items.unwrap_or_default(),
            })
        })
    }

    fn get(&self, keys: Vec<Item>) -> BoxFuture<'_, Result<Vec<Item>>> {
        Box::pin(async move {
            let reader = DynamoIo {
                destination: self.client.clone(),
                destination_table: self.table.clone(),
                source: self.client.clone(),
                source_table: self.table.clone(),
                key_names: self.key_names.clone(),
                // Paid by the caller (verify's own budget).
                read_limiter: Arc::new(Limiter::new(0)),
                stop: tokio_util::sync::CancellationToken::new(),
                stats: Arc::default(),
            };
            reader.read_source(keys).await
        })
    }
}

/// One table on one side, as verify reads it.
#[derive(Clone)]
pub struct Side {
    pub reads: Arc<dyn TableReads>,
    pub table: String,
    pub key_names: Arc<[String]>,
    /// Strongly consistent scans (twice the read units).
    pub consistent: bool,
    /// Shared read-unit budget of this side.
    pub limiter: Arc<Limiter>,
    /// Read units spent, for the report.
    pub read_units: Arc<AtomicU64>,
    /// The source side of a table with a transform: every item read is compared as the
    /// destination should hold it (shaped, or left out by the filter).
    pub shape: Option<Arc<Transform>>,
}

impl Side {
    /// `table` read through the SDK, with verify's options.
    pub fn of(c: &crate::config::Clients, table: &str, key_names: &Arc<[String]>, opts: &super::VerifyOptions) -> Side {
        Side {
            reads: Arc::new(DynamoReads {
                client: c.dynamodb.clone(),
                table: table.to_string(),
                key_names: key_names.clone(),
            }),
            table: table.to_string(),
            key_names: key_names.clone(),
            consistent: opts.consistent,
            limiter: Arc::new(Limiter::new(opts.read_units_per_second)),
            read_units: Arc::new(AtomicU64::new(0)),
            shape: None,
        }
    }

    /// Every item of segment `segment` of `total`, as sorted entries.
    pub async fn scan_segment(&self, segment: i32, total: i32) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        // A one-off command with no stop to honour: throttles and outages are waited out.
        let mut retrier = Retrier::new(Policy::DAEMON, format!("scanning {} segment {segment}", self.table));
        loop {
            let page = retrier
                .run(|| self.reads.scan_page(segment, total, self.consistent, start.clone()))
                .await
                .map_err(|e| e.context(format!("scanning {} segment {segment}", self.table)))?;
            // Pay for the page after reading it: the cost is known only then (1 MB pages at most).
            let units = page
                .units
                .map(|u| u.ceil() as u32)
                .unwrap_or_else(|| self.estimate_units(&page.items));
            self.read_units.fetch_add(units as u64, Relaxed);
            self.limiter.acquire(units).await;
            for item in page.items {
                let key = KeyBytes::of(&self.key_names, &item).ok_or_else(|| {
                    Error::fatal(format!(
                        "scan of {} returned an item without its key attributes",
                        self.table
                    ))
                })?;
                if let Some(item) = self.shaped(item)? {
                    out.push(Entry {
                        key,
                        digest: item_digest(&item),
                    });
                }
            }
            match page.next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Read units for a page when the endpoint does not report them: 4 KB per unit, halved for
    /// eventually consistent reads.
    fn estimate_units(&self, items: &[Item]) -> u32 {
        let bytes: usize = items.iter().map(crate::item::size_of).sum();
        let units = bytes.div_ceil(4096).max(1) as u32;
        if self.consistent { units } else { units.div_ceil(2) }
    }

    /// Current items for `keys`, with strongly consistent reads (absent items are not returned),
    /// as [`Side::shaped`] makes them.
    pub async fn get(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let units = keys.len() as u32;
        self.read_units.fetch_add(units as u64, Relaxed);
        self.limiter.acquire(units).await;
        let items = self.reads.get(keys).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.extend(self.shaped(item)?);
        }
        Ok(out)
    }

    /// An item as it is compared: through the transform on the source side (`None`: the filter
    /// leaves it out, so the destination must not hold it).
    fn shaped(&self, item: Item) -> Result<Option<Item>> {
        let Some(shape) = &self.shape else {
            return Ok(Some(item));
        };
        let key = crate::item::display_key(&crate::item::key_of(&self.key_names, &item));
        shape
            .item(item)
            .map_err(|why| Error::fatal(format!("the transform of {} fails on key {key}: {why}", self.table)))
    }

    /// Key attribute names of the items this side returns (the destination's, through a
    /// transform).
    pub fn item_keys(&self) -> &[String] {
        self.shape.as_ref().map_or(&self.key_names, |t| t.dest_keys())
    }
}
