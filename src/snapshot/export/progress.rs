//! The export load's progress lines (rate and ETA), and the early warning when the load would
//! outrun the stream's retention.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::load::{FileLoader, STREAM_RETENTION_MS};
use crate::clock::now_ms;

/// Progress log lines with rate and ETA, and the early warning when the load would outrun the
/// stream's retention.
pub(super) struct Report {
    started: Instant,
    items_at_start: u64,
    last: Instant,
    warned: bool,
}

impl Report {
    pub(super) fn new(items_at_start: u64) -> Self {
        Self {
            started: Instant::now(),
            items_at_start,
            last: Instant::now(),
            warned: false,
        }
    }

    pub(super) fn tick(&mut self, l: &FileLoader) {
        if self.last.elapsed() < l.report_every {
            return;
        }
        self.last = Instant::now();
        let done = l.stats.snapshot_items.load(Relaxed);
        let total = l.export.item_count;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (done.saturating_sub(self.items_at_start)) as f64 / secs;
        let eta = total
            .filter(|_| rate > 0.0)
            .map(|t| Duration::from_secs_f64(t.saturating_sub(done) as f64 / rate));
        let fmt = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
        tracing::info!(
            table = %l.table,
            loaded = done,
            total = total.map(|t| t.to_string()).unwrap_or_else(|| "unknown".into()),
            items_per_s = rate as u64,
            elapsed = %fmt(self.started.elapsed()),
            eta = %eta.map(fmt).unwrap_or_else(|| "unknown".into()),
            "export load progress"
        );
        let left_ms = l.export_time_ms + STREAM_RETENTION_MS - now_ms();
        if let Some(eta) = eta
            && !self.warned
            && eta.as_millis() as i64 > left_ms
        {
            self.warned = true;
            tracing::warn!(
                table = %l.table,
                eta = %fmt(eta),
                retention_left = %fmt(Duration::from_millis(left_ms.max(0) as u64)),
                "the export load will likely finish after the source stream trims the records from the export time: \
                 the table would then stop with a gap. Raise the write budget (max_write_units_per_second, by \
                 default 80% of the destination's write capacity) or write_concurrency, or start again from a \
                 fresh export"
            );
        }
    }
}
