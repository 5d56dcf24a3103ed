//! A table's bulk load when its parts are leased to several workers (the DynamoDB state): the
//! holder of the table's lease offers every part not yet loaded (a segment of the scan, a data
//! file of the export) as a lease of its own ([`Offers`]) and loads nothing itself; whichever
//! worker holds a part's lease loads it ([`super::scan::ScanTask`] or
//! [`super::export::load::FileLoader`] with `only`), its position fenced by that lease, and ends
//! the lease done once the part's row says so. The load is complete when every offered part's
//! lease is done; a part that failed fails the table with its reason.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::scan::ScanTask;
use super::source::ScanSource;
use crate::checkpoint::lease::units::Offers;
use crate::error::{Error, Result};
use crate::telemetry::TableStats;

/// One table's bulk load, spread.
pub struct Spread<'a> {
    pub table: &'a str,
    /// "snapshot segment", "export file".
    pub part: &'a str,
    pub stats: &'a TableStats,
    pub stop: &'a CancellationToken,
}

impl Spread<'_> {
    /// Offers the parts `pending` (by id) and waits until every one is loaded: `true` then,
    /// `false` when stopped first. `loaded`: the items of the parts loaded before.
    pub async fn run(&self, offers: &dyn Offers, pending: Vec<String>, loaded: i64) -> Result<bool> {
        for id in &pending {
            offers.offer(id, None, None).await?;
        }
        tracing::info!(table = %self.table, parts = pending.len(), "{}s offered to the workers", self.part);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(false),
                _ = tick.tick() => {}
            }
            let reports = offers.reports();
            if let Some((id, why)) = reports.iter().find_map(|(id, l)| l.failed.as_ref().map(|w| (id, w))) {
                return Err(Error::fatal(format!(
                    "table {}: {} {id} failed: {why}",
                    self.table, self.part
                )));
            }
            let finished: Vec<i64> = pending
                .iter()
                .filter_map(|id| reports.get(id).and_then(|l| l.done.as_ref()).map(|d| d.records))
                .collect();
            let items = loaded + finished.iter().sum::<i64>();
            self.stats.snapshot_items.store(items.max(0) as u64, Relaxed);
            if finished.len() == pending.len() {
                for id in &pending {
                    offers.remove_done(id).await?;
                }
                return Ok(true);
            }
        }
    }
}

impl<S: ScanSource> ScanTask<S> {
    /// Offers the segments not yet copied and waits until every one is: `true` when the whole
    /// table is copied, `false` when stopped first.
    pub(super) async fn coordinate(&self, offers: &dyn Offers) -> Result<bool> {
        let saved = self.ctx.store.segments(&self.ctx.table).await?;
        let copied: i64 = saved.iter().filter(|r| r.done).map(|r| r.items).sum();
        let pending: Vec<String> = (0..self.segments as i64)
            .filter(|i| !saved.iter().any(|r| r.segment == *i && r.done))
            .map(|i| i.to_string())
            .collect();
        let spread = Spread {
            table: &self.ctx.table,
            part: "snapshot segment",
            stats: &self.ctx.stats,
            stop: &self.ctx.stop,
        };
        spread.run(offers, pending, copied).await
    }
}
