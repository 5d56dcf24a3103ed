//! Per-shard series (`ferry_shard_lag_seconds{table,shard}`).
//!
//! Shards roll over about every 4 h, so a finished shard's series must leave `/metrics`. The
//! Prometheus recorder cannot unregister a series; it drops gauges that were not set for
//! [`crate::telemetry::metrics::IDLE_GAUGES`]. Active shards are set every second; a finished
//! shard is set to 0 once and then never again, so its series goes away.

/// A shard's lag in seconds: 0 at its tip with nothing in flight (`idle`), else now minus the
/// time of its last applied record.
pub fn lag(idle: bool, applied_ms: Option<i64>, now_ms: i64) -> f64 {
    if idle {
        return 0.0;
    }
    applied_ms.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0)
}

/// Sets the lag of every active shard.
pub fn lags<'a>(table: &str, shards: impl Iterator<Item = (&'a str, f64)>) {
    for (id, lag) in shards {
        gauge(table, id).set(lag);
    }
}

/// A shard read to its end: last value 0, then no more updates.
pub fn finished(table: &str, shard: &str) {
    gauge(table, shard).set(0.0);
}

fn gauge(table: &str, shard: &str) -> metrics::Gauge {
    metrics::gauge!("ferry_shard_lag_seconds", "table" => table.to_string(), "shard" => shard.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn series(text: &str, shard: &str) -> bool {
        text.lines()
            .any(|l| l.starts_with("ferry_shard_lag_seconds") && l.contains(&format!("shard=\"{shard}\"")))
    }

    #[test]
    fn a_finished_shards_series_leaves_the_scrape_while_active_ones_stay() {
        // The exporter's own configuration, with a short idle time so the test does not wait 60 s.
        let recorder = crate::telemetry::metrics::builder(Duration::from_millis(200)).build_recorder();
        let handle = recorder.handle();
        let publish = |shards: &[(&str, f64)]| {
            metrics::with_local_recorder(&recorder, || lags("T", shards.iter().copied()));
        };
        publish(&[("old", 3.0), ("new", 1.0)]);
        metrics::with_local_recorder(&recorder, || finished("T", "old"));
        let text = handle.render();
        assert!(series(&text, "old") && series(&text, "new"), "{text}");
        // Only "new" is still active: published as the stream task does, until "old" is gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            publish(&[("new", 0.5)]);
            let text = handle.render();
            assert!(series(&text, "new"), "an active shard's series must stay: {text}");
            if !series(&text, "old") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the finished shard's series never left: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
