//! The export load's progress lines (rate and ETA), and the early warning when the load would
//! outrun the stream's retention.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::load::{FileLoader, STREAM_RETENTION_MS};
use crate::clock::now_ms;
use crate::telemetry::Eta;

/// Progress log lines with rate and ETA, and the early warning when the load would outrun the
/// stream's retention.
pub(super) struct Report {
    started: Instant,
    /// The rate of the last minute, as `ferry_snapshot_eta_seconds` has it.
    eta: Eta,
    last: Instant,
    warned: bool,
}

impl Report {
    pub(super) fn new(items_at_start: u64) -> Self {
        let mut eta = Eta::default();
        eta.sample(Instant::now(), items_at_start);
        Self {
            started: Instant::now(),
            eta,
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
        self.eta.sample(self.last, done);
        let rate = self.eta.rate().unwrap_or(0.0);
        let eta = total
            .and_then(|t| self.eta.seconds_left(t))
            .map(Duration::from_secs_f64);
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
