//! A table's health as its callers live it: how many of them are in a streak of failed attempts,
//! since when (monotonic clock), and the last error. Fed by the retry driver ([`crate::retry`]) only
//! on failure and recovery, so the hot path never takes its lock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Callers (lanes, shard readers, segment readers...) whose last attempt failed.
    failing: u32,
    /// When the oldest ongoing streak began.
    since: Option<Instant>,
    last_error: Option<String>,
}

impl Health {
    /// A caller's attempt failed; `first` when its streak starts with this failure.
    pub fn failed(&self, error: &str, first: bool) {
        let mut s = self.state.lock().unwrap();
        if first {
            s.failing += 1;
            s.since.get_or_insert_with(Instant::now);
        }
        s.last_error = Some(error.to_string());
    }

    /// A caller's streak ended (success, or it gave up and its work is abandoned).
    pub fn recovered(&self) {
        let mut s = self.state.lock().unwrap();
        s.failing = s.failing.saturating_sub(1);
        if s.failing == 0 {
            s.since = None;
            s.last_error = None;
        }
    }

    /// How long the table has been failing and the last error; `None` when no caller is failing.
    pub fn retrying(&self) -> Option<(Duration, String)> {
        let s = self.state.lock().unwrap();
        let since = s.since.filter(|_| s.failing > 0)?;
        Some((since.elapsed(), s.last_error.clone().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_lasts_while_any_caller_fails() {
        let h = Health::default();
        assert!(h.retrying().is_none());
        h.failed("a down", true);
        h.failed("b down", true);
        h.failed("b still down", false);
        assert_eq!(h.retrying().unwrap().1, "b still down");
        h.recovered();
        assert!(h.retrying().is_some(), "one caller is still failing");
        h.recovered();
        assert!(h.retrying().is_none());
        h.recovered(); // never below zero
        h.failed("again", true);
        assert!(h.retrying().is_some());
    }
}
