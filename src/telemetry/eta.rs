//! How long the bulk load has left: its rate over the last minute, measured on the monotonic clock
//! (a rate since the start would hide a slowdown for hours on a day-long load).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window the rate is measured over.
const WINDOW: Duration = Duration::from_secs(60);
/// Samples closer together than this are not kept (the exporter publishes every 100 ms).
const STEP: Duration = Duration::from_secs(1);

/// Items done over time, for a rate and an ETA.
#[derive(Debug, Default)]
pub struct Eta {
    samples: VecDeque<(Instant, u64)>,
}

impl Eta {
    /// Records `done` items at `now`; a count that went back (a new run) starts over.
    pub fn sample(&mut self, now: Instant, done: u64) {
        if self.samples.back().is_some_and(|(_, d)| *d > done) {
            self.samples.clear();
        }
        if self.samples.back().is_some_and(|(t, _)| now.duration_since(*t) < STEP) {
            return;
        }
        self.samples.push_back((now, done));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= WINDOW {
            self.samples.pop_front();
        }
    }

    /// Items per second over the window, once two samples span at least a second.
    pub fn rate(&self) -> Option<f64> {
        let ((t0, d0), (t1, d1)) = (self.samples.front()?, self.samples.back()?);
        let secs = t1.duration_since(*t0).as_secs_f64();
        (secs >= STEP.as_secs_f64()).then(|| (d1 - d0) as f64 / secs)
    }

    /// Seconds until `expected` items are done at the current rate; `None` while the rate is
    /// unknown or zero. Past `expected` (an approximate count) it is 0.
    pub fn seconds_left(&self, expected: u64) -> Option<f64> {
        let done = self.samples.back()?.1;
        let rate = self.rate().filter(|r| *r > 0.0)?;
        Some(expected.saturating_sub(done) as f64 / rate)
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_last_minute_not_the_whole_load() {
        let t0 = Instant::now();
        let mut eta = Eta::default();
        eta.sample(t0, 0);
        assert_eq!(eta.seconds_left(1_000), None, "one sample has no rate");
        // Ten minutes at 100 items/s, then a minute and more at 10 items/s.
        let mut done = 0;
        for s in 1..=600 {
            done = 100 * s;
            eta.sample(t0 + Duration::from_secs(s), done);
        }
        assert_eq!(eta.rate(), Some(100.0));
        for s in 601..=700 {
            done += 10;
            eta.sample(t0 + Duration::from_secs(s), done);
        }
        assert_eq!(eta.rate(), Some(10.0));
        assert_eq!(eta.seconds_left(done + 5_000), Some(500.0));
        assert_eq!(eta.seconds_left(done - 1), Some(0.0), "past an approximate count");
    }

    #[test]
    fn a_count_that_goes_back_starts_over_and_a_stall_has_no_eta() {
        let t0 = Instant::now();
        let mut eta = Eta::default();
        eta.sample(t0, 500);
        eta.sample(t0 + Duration::from_secs(5), 1_000);
        eta.sample(t0 + Duration::from_secs(6), 10);
        assert_eq!(eta.rate(), None);
        eta.sample(t0 + Duration::from_secs(8), 10);
        assert_eq!(eta.rate(), Some(0.0));
        assert_eq!(eta.seconds_left(100), None);
    }
}
