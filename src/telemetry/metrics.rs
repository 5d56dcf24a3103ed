//! Prometheus metrics (`ferry sync --metrics 127.0.0.1:9464` serves `/metrics`, see [`crate::page`]).
//!
//! The pipeline counts in plain atomics ([`super::TableStats`]); once a second they are published
//! here, so the hot path never touches the metrics registry.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::MetricKindMask;

use super::TableStats;
use crate::checkpoint::Phase;

/// A gauge not set for this long leaves `/metrics` (live gauges are set every second): how a
/// finished stream shard's series goes away, as the recorder cannot unregister one.
pub const IDLE_GAUGES: Duration = Duration::from_secs(60);

/// The exporter as [`crate::page::serve`] configures it, gauges dropped after `idle`.
pub fn builder(idle: Duration) -> PrometheusBuilder {
    PrometheusBuilder::new().idle_timeout(MetricKindMask::GAUGE, Some(idle))
}

/// Set while the daemon serves metrics, tables or not: how a dashboard lists the daemons.
pub fn publish_info() {
    metrics::gauge!("ferry_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

pub fn publish(table: &str, s: &TableStats) {
    let t = || ("table", table.to_string());
    let counter = |name: &'static str, v: u64| metrics::counter!(name, &[t()]).absolute(v);
    counter("ferry_records_applied_total", s.records_applied.load(Relaxed));
    counter("ferry_records_read_total", s.records_read.load(Relaxed));
    counter("ferry_read_calls_total", s.read_calls.load(Relaxed));
    counter("ferry_items_written_total", s.items_written.load(Relaxed));
    counter("ferry_write_units_total", s.write_units.load(Relaxed));
    counter("ferry_write_calls_total", s.write_calls.load(Relaxed));
    counter("ferry_retries_total", s.retries.load(Relaxed));
    counter("ferry_throttles_total", s.throttles.load(Relaxed));
    counter("ferry_coalesced_total", s.coalesced.load(Relaxed));
    counter("ferry_snapshot_items_total", s.snapshot_items.load(Relaxed));
    metrics::gauge!("ferry_write_concurrency", &[t()]).set(s.write_concurrency.load(Relaxed) as f64);
    metrics::gauge!("ferry_lag_seconds", &[t()]).set(lag_seconds(s, crate::clock::now_ms()));
    let retrying = s.health.retrying();
    metrics::gauge!("ferry_retrying", &[t()]).set(if retrying.is_some() { 1.0 } else { 0.0 });
    metrics::gauge!("ferry_retrying_seconds", &[t()]).set(retrying.map_or(0.0, |(d, _)| d.as_secs_f64()));
    let depth = s.queue_depth.load(Relaxed);
    if depth >= 0 {
        counter("ferry_records_dropped_total", s.records_dropped.load(Relaxed));
        metrics::gauge!("ferry_queue_depth", &[t()]).set(depth as f64);
        metrics::gauge!("ferry_queue_in_flight", &[t()]).set(s.queue_in_flight.load(Relaxed).max(0) as f64);
    }
    let dead = s.dead_letter_depth.load(Relaxed);
    if dead >= 0 {
        metrics::gauge!("ferry_dead_letter_depth", &[t()]).set(dead as f64);
    }
    publish_phase(table, s, Instant::now());
}

/// `ferry_table_phase` (1 for the phase the table is in, 0 for the others) and, while the bulk
/// load runs, its progress and how old the replay point it must still read from is (0 after).
fn publish_phase(table: &str, s: &TableStats, now: Instant) {
    let phase = *s.phase.lock().expect("phase lock");
    let Some(phase) = phase else { return };
    for p in Phase::ALL {
        let labels = [("table", table.to_string()), ("phase", p.as_str().to_string())];
        metrics::gauge!("ferry_table_phase", &labels).set(if p == phase { 1.0 } else { 0.0 });
    }
    let t = || ("table", table.to_string());
    let mut eta = s.snapshot_eta.lock().expect("eta lock");
    if phase != Phase::Snapshot {
        // 0, not absent: a load that just ended must not leave its last ETA behind for a minute.
        eta.clear();
        metrics::gauge!("ferry_snapshot_eta_seconds", &[t()]).set(0.0);
        metrics::gauge!("ferry_replay_start_age_seconds", &[t()]).set(0.0);
        return;
    }
    eta.sample(now, s.snapshot_items.load(Relaxed));
    if let Ok(expected) = u64::try_from(s.snapshot_expected.load(Relaxed)) {
        metrics::gauge!("ferry_snapshot_items_expected", &[t()]).set(expected as f64);
        if let Some(left) = eta.seconds_left(expected) {
            metrics::gauge!("ferry_snapshot_eta_seconds", &[t()]).set(left);
        }
    }
    let from = s.replay_from_ms.load(Relaxed);
    if from > 0 {
        let age = (crate::clock::now_ms() - from).max(0) as f64 / 1000.0;
        metrics::gauge!("ferry_replay_start_age_seconds", &[t()]).set(age);
    }
}

/// See [`super::lag_ms`]; 0 until known.
pub fn lag_seconds(s: &TableStats, now_ms: i64) -> f64 {
    let known = |v: i64| Some(v).filter(|v| *v > 0);
    super::lag_ms(
        now_ms,
        s.caught_up.load(Relaxed),
        known(s.newest_applied_ms.load(Relaxed)),
        known(s.applied_as_of_ms.load(Relaxed)),
    )
    .unwrap_or(0) as f64
        / 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};

    use super::*;

    fn rendered(f: impl FnOnce()) -> String {
        let recorder = builder(IDLE_GAUGES).build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn a_bulk_load_shows_its_phase_eta_and_how_old_its_replay_point_is() {
        let s = TableStats::default();
        s.show_row(Phase::Snapshot, Some(crate::clock::now_ms() - 3_600_000));
        s.snapshot_expected.store(10_000, Relaxed);
        let t0 = Instant::now();
        let text = rendered(|| {
            publish_phase("T", &s, t0);
            s.snapshot_items.store(1_000, Relaxed);
            publish_phase("T", &s, t0 + Duration::from_secs(10));
        });
        assert!(
            text.contains("ferry_table_phase{table=\"T\",phase=\"snapshot\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ferry_table_phase{table=\"T\",phase=\"streaming\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("ferry_snapshot_items_expected{table=\"T\"} 10000"),
            "{text}"
        );
        // 100 items/s, 9,000 to go.
        assert!(text.contains("ferry_snapshot_eta_seconds{table=\"T\"} 90"), "{text}");
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("ferry_replay_start_age_seconds{table=\"T\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("replay age");
        assert!((3_599.0..3_700.0).contains(&age), "{age}");
    }

    #[test]
    fn a_streaming_table_shows_a_zero_load_eta_and_a_table_not_started_no_phase() {
        let s = TableStats::default();
        assert!(!rendered(|| publish_phase("T", &s, Instant::now())).contains("ferry_table_phase"));
        s.show_row(Phase::Streaming, Some(1));
        s.snapshot_expected.store(10, Relaxed);
        let text = rendered(|| publish_phase("T", &s, Instant::now()));
        assert!(text.contains("phase=\"streaming\"} 1"), "{text}");
        assert!(text.contains("ferry_snapshot_eta_seconds{table=\"T\"} 0"), "{text}");
        assert!(text.contains("ferry_replay_start_age_seconds{table=\"T\"} 0"), "{text}");
    }
}
