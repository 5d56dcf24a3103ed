//! One segment of the snapshot scan: reads its pages within the read budget and hands each page
//! to the apply path, registering the page's resume point so that it commits only once every item
//! before it is durable.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use tokio_util::sync::CancellationToken;

use super::source::{Page, PageRequest, ScanSource};
use crate::apply::{Applier, Change, Limiter, Op, Ticket};
use crate::checkpoint::OrderedAck;
use crate::error::{Error, Result};
use crate::item::{Item, KeyBytes, json};
use crate::retry::Retrier;
use crate::telemetry::TableStats;

/// Resume point of a segment: the key to continue after (`None` = segment finished), and the
/// items copied up to there.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SegPos {
    pub(super) next: Option<String>,
    pub(super) items: i64,
}

pub(super) struct SegmentReader<S> {
    pub(super) source: Arc<S>,
    pub(super) table: String,
    pub(super) segment: i32,
    pub(super) total: i32,
    /// Scan `Limit` that keeps a page within the read budget ([`super::budget::page_limit`]).
    pub(super) limit: Option<i32>,
    pub(super) start: Option<String>,
    pub(super) items_before: i64,
    pub(super) key_names: Arc<[String]>,
    pub(super) applier: Arc<Applier>,
    pub(super) ack: Arc<OrderedAck<SegPos>>,
    pub(super) stop: CancellationToken,
    pub(super) limiter: Arc<Limiter>,
    /// Read units charged by every reader of this scan.
    pub(super) read_units: Arc<AtomicU64>,
    pub(super) stats: Arc<TableStats>,
}

impl<S: ScanSource> SegmentReader<S> {
    pub(super) async fn run(self) -> Result<()> {
        let mut start_key = self.saved_start()?;
        let mut items_total = self.items_before;
        // Read units consumed but not yet charged (fractions of a unit).
        let mut owed = 0.0f64;
        loop {
            // Every wait below ends on a stop or a failure of the apply path (whose error
            // `finish` reports).
            let page = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ok(()),
                _ = self.applier.failed.cancelled() => return Ok(()),
                p = self.read_page(start_key.clone(), &mut owed) => p?,
            };
            let next = page.next;
            let items = page.items;
            items_total += items.len() as i64;
            let pos = SegPos {
                next: next.as_ref().map(|k| json::item_to_json(k).to_string()),
                items: items_total,
            };
            let n = items.len();
            if n == 0 {
                self.ack.register_done(Some(pos));
            } else {
                let changes = self.changes(items, pos)?;
                // A stop while the apply queue is full: items not queued are never acknowledged,
                // so the saved position stays before them.
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => return Ok(()),
                    r = self.applier.submit_all(changes) => r?,
                }
            }
            match next {
                Some(k) => start_key = Some(k),
                None => return Ok(()),
            }
        }
    }

    /// The saved resume point of the segment (`None`: from its start).
    fn saved_start(&self) -> Result<Option<Item>> {
        let Some(text) = &self.start else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::fatal(format!("state store: bad scan position for {}: {e}", self.table)))?;
        json::item_from_json(&v)
            .map(Some)
            .map_err(|e| Error::fatal(format!("state store: bad scan position: {e}")))
    }

    /// A page's items as puts. The page's last item carries the resume point `pos`: it commits
    /// only once every item of the page (and of the pages before) is written.
    fn changes(&self, items: Vec<Item>, pos: SegPos) -> Result<Vec<Change>> {
        let n = items.len();
        let first = self
            .ack
            .register_all((0..n).map(|i| (if i + 1 == n { Some(pos.clone()) } else { None }, true)));
        let mut changes = Vec::with_capacity(n);
        for (i, item) in items.into_iter().enumerate() {
            let key = KeyBytes::of(&self.key_names, &item).ok_or_else(|| {
                Error::fatal(format!(
                    "scan of {} returned an item without its key attributes",
                    self.table
                ))
            })?;
            let ticket = Ticket {
                sink: self.ack.clone(),
                index: first + i as u64,
            };
            changes.push(Change {
                key,
                op: Op::Load(item),
                ticket,
            });
        }
        Ok(changes)
    }

    /// Reads one page (throttles and transient errors retried with backoff), then pays the read
    /// budget what it consumed.
    async fn read_page(&self, start: Option<Item>, owed: &mut f64) -> Result<Page> {
        let req = PageRequest {
            segment: self.segment,
            total_segments: self.total,
            start,
            limit: self.limit,
        };
        let page = Retrier::daemon(
            format!("scanning {} segment {}", self.table, self.segment),
            &self.stop,
            &self.stats,
        )
        .run(|| self.source.page(req.clone()))
        .await
        .map_err(|e| e.context(format!("scanning {} segment {}", self.table, self.segment)))?;
        *owed += page.read_units.max(0.0);
        let whole = owed.floor();
        *owed -= whole;
        self.limiter.acquire(whole as u32).await;
        self.read_units.fetch_add(whole as u64, Relaxed);
        Ok(page)
    }
}
