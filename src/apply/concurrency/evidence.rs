//! The probing windows' evidence: when the windows on either side of the centre say, beyond
//! what chance explains, that one side writes more (see the parent module for why).

/// One probe side must beat the other by this much (relative) for the centre to move.
const PROBE_GAIN: f64 = 0.03;
/// ... and by Student's t at 99 % (two-sided) standard errors, for 2, 3, ... comparisons.
const T_99: [f64; 9] = [63.66, 9.92, 5.84, 4.60, 4.03, 3.71, 3.50, 3.36, 3.25];
/// Comparisons needed before a verdict, and after which none means "the same".
const PROBE_MIN: usize = 3;
const PROBE_MAX: usize = 10;

/// What the probing windows around the current centre showed.
#[derive(Default)]
pub(super) struct Evidence {
    /// The windows of the comparison being gathered (they alternate sides).
    pub(super) recent: Vec<f64>,
    /// Comparisons so far: how much better the upper side wrote, relative.
    n: usize,
    sum: f64,
    sum_sq: f64,
}

impl Evidence {
    /// Adds a window of the side `up` (or the lower) that wrote `rate`; `Some(true)` when the
    /// evidence now says the upper side writes more, `Some(false)` the lower (and starts again).
    pub(super) fn add(&mut self, up: bool, rate: f64) -> Option<bool> {
        self.recent.push(rate);
        let [before, other, after] = self.recent[..] else {
            return None;
        };
        // Each comparison has windows of its own, so the comparisons are independent samples.
        self.recent.clear();
        let this_side = (before + after) / 2.0;
        let diff = (this_side - other) / ((this_side + other) / 2.0).max(f64::MIN_POSITIVE);
        let better_up = if up { diff } else { -diff };
        self.n += 1;
        self.sum += better_up;
        self.sum_sq += better_up * better_up;
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
        let se = (var / n).sqrt();
        let t = T_99.get(self.n.wrapping_sub(2)).copied().unwrap_or(f64::INFINITY);
        let verdict = (self.n >= PROBE_MIN && mean.abs() >= PROBE_GAIN && mean.abs() >= t * se).then_some(mean > 0.0);
        if verdict.is_some() || self.n >= PROBE_MAX {
            // The centre moves (windows around the old one say nothing about the new), or the
            // sides wrote the same: either way, start again.
            *self = Evidence::default();
        }
        verdict
    }
}
