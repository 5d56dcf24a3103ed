//! A table's snapshot scan when its segments are leased to several workers (the DynamoDB state):
//! the holder of the table's lease offers every segment not yet copied as a lease of its own
//! ([`Offers`]) and reads nothing itself; whichever worker holds a segment's lease copies it
//! ([`super::scan::ScanTask`] with `only`), its position fenced by that lease, and ends the lease
//! done once the segment's row says so. The scan is complete when every offered segment's lease
//! is done; a segment that failed fails the table with its reason.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::scan::ScanTask;
use super::source::ScanSource;
use crate::checkpoint::lease::units::Offers;
use crate::error::{Error, Result};

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
        for id in &pending {
            offers.offer(id, None, None).await?;
        }
        tracing::info!(table = %self.ctx.table, segments = pending.len(), "snapshot segments offered to the workers");
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = self.ctx.stop.cancelled() => return Ok(false),
                _ = tick.tick() => {}
            }
            let reports = offers.reports();
            if let Some((id, why)) = reports.iter().find_map(|(id, l)| l.failed.as_ref().map(|w| (id, w))) {
                return Err(Error::fatal(format!(
                    "table {}: snapshot segment {id} failed: {why}",
                    self.ctx.table
                )));
            }
            let finished: Vec<i64> = pending
                .iter()
                .filter_map(|id| reports.get(id).and_then(|l| l.done.as_ref()).map(|d| d.records))
                .collect();
            let items = copied + finished.iter().sum::<i64>();
            self.ctx.stats.snapshot_items.store(items.max(0) as u64, Relaxed);
            if finished.len() == pending.len() {
                for id in &pending {
                    offers.remove_done(id).await?;
                }
                return Ok(true);
            }
        }
    }
}
