//! Slow start: doubling the limit while that pays, each doubling judged against the base on both
//! sides of it (see the parent module for why).

use super::{Pace, Phase, SLOW_START_GAIN, State, delta};

/// Slow start's windows so far around one doubling of `base`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Ladder {
    base: usize,
    /// The window at `base` before the doubled one.
    before: Option<f64>,
    /// The doubled window (the limit is back at `base` once it is known).
    doubled: Option<f64>,
}

impl Ladder {
    pub(super) fn at(base: usize, before: Option<f64>) -> Phase {
        Phase::SlowStart(Ladder {
            base,
            before,
            doubled: None,
        })
    }
}

impl Pace {
    /// Slow start's next limit after a window at `s.limit` that applied `rate` records/s.
    pub(super) fn slow_start(&self, s: &mut State, l: Ladder, rate: f64) -> usize {
        let doubled = (l.base * 2).min(self.max);
        // The doubled window against the mean of the windows either side of it at the base.
        let paid = match (l.before, l.doubled) {
            (Some(before), Some(d)) => d >= (before + rate) / 2.0 * SLOW_START_GAIN,
            _ => false,
        };
        match (l.before, l.doubled) {
            (None, _) if doubled > l.base => {
                s.phase = Phase::SlowStart(Ladder {
                    before: Some(rate),
                    ..l
                });
                doubled
            }
            (Some(_), None) => {
                s.phase = Phase::SlowStart(Ladder {
                    doubled: Some(rate),
                    ..l
                });
                l.base
            }
            (Some(_), Some(d)) if paid && doubled < self.max => {
                // The doubled limit paid: it is the base, and the window there is the one before
                // the next doubling.
                s.phase = Ladder::at(doubled, Some(d));
                (doubled * 2).min(self.max)
            }
            _ => {
                // Doubling stopped paying, or the maximum is reached: probe around the last limit
                // that paid.
                s.centre = if paid { doubled } else { l.base };
                s.phase = Phase::Up;
                (s.centre + delta(s.centre)).min(self.max)
            }
        }
    }
}
