//! How many batches one table writes at once: an adaptive limit between 1 and `write_concurrency`,
//! found by measuring what the destination actually takes.
//!
//! Why adaptive: a fixed count is right for one destination only. Far away (a BatchWriteItem takes
//! tens of milliseconds) throughput is batches in flight over round trip, so more in flight is
//! faster. A busy endpoint instead queues the extra batches; since a lane waiting for a slot keeps
//! gathering changes, fewer slots then mean fuller batches and less work per change.
//!
//! Why throughput and not latency: on a shared or CPU-bound endpoint the round trip rises with
//! every batch added while throughput still grows (on the rig, 50 ms away, the best concurrency
//! runs at 3.6 times the unloaded round trip), so a latency target either stops too early or is a
//! guess. Records applied per second is what the limit is for, so it is what the limit follows
//! (records, not items: on hot keys fewer slots coalesce more records into each write):
//!
//! ```text
//!            ┌──────────────┐  windows at the base, twice it, the base again: the doubled one
//!   start ──▶│  slow start  │  wrote 1.2 × their mean → twice the base is the base; again
//!            └──────┬───────┘
//!                   │ gained less, or the maximum is reached: probe around the last base that paid
//!                   ▼
//!            ┌──────────────┐  windows alternate centre + δ and centre − δ; the centre
//!            │    probing   │  moves toward the side that wrote more, once the evidence
//!            └──────────────┘  says so (below); until then it stays
//! ```
//!
//! - Slow start judges a doubled limit against windows at the base on both sides of it, as
//!   probing does: a start that speeds up on its own (the reader filling the lanes, a warming
//!   destination) lifts each window over the one before whatever the limit, and compared with the
//!   window before alone it read as doubling paying. On the rig that took export loads to 64 in
//!   flight, where DynamoDB Local spent 13 % more CPU per item than the raw load's 32, a cost too
//!   flat for probing's steps of δ to see.
//! - A window lasts three round trips in slow start and eight when probing (0.2 s to 2 s), and
//!   counts only while the limit binds: most writes are sent with nearly every slot taken, by a
//!   lane that had more waiting than one batch. A table with little to write gives no evidence
//!   either way, and its limit stays; nor do slots taken by small batches (lanes that send all
//!   they have, as while a reader fills them at the start), whose rate is the supply's. A window that spans a pause (over twice its length) is
//!   dropped, as it would measure the pause.
//! - δ is an eighth of the centre, at least one. The centre moves by δ, doubled for each verdict
//!   the same way as the one before (up to 4 δ, half the centre): the best is not yet bracketed,
//!   and each verdict costs at least nine windows, so steps of δ alone took six verdicts (tens of
//!   seconds) to climb from 16 to 32. A verdict the other way, or a throttle, steps by δ again.
//! - Evidence: three probing windows in a row (one side, the other, the first again) make one
//!   comparison: the middle window against the mean of the two around it, which cancels a steady
//!   drift in the destination's speed. The centre moves only when three or more comparisons
//!   favour one side by 3 % or more on average, and by more than chance explains (Student's t at
//!   99 %). Why: one window's rate varies by ±20 % on a shared endpoint (pauses, other load), and
//!   a rule that trusts single windows walks the limit at random; on the rig a long load drifted
//!   from 36 to 3 batches in flight. Ten comparisons without a verdict say the two sides write
//!   the same; the evidence starts again and the centre stays.
//! - A throttle (UnprocessedItems, a throttling error) or any transient failure cuts the limit to
//!   0.7 of itself at once, at most once per round trip (attempts sent before a cut do not cut
//!   again), and probing resumes from there with fresh evidence.
//!
//! Slots are a semaphore: a lowered limit takes effect as writes in flight come back.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::telemetry::TableStats;
use evidence::Evidence;
use slow_start::Ladder;

mod evidence;
mod slow_start;

/// Where the limit starts: the fixed count ferry used before it adapted.
pub const INITIAL: usize = 16;
/// Factor applied on a throttle or failure.
const BACKOFF: f64 = 0.7;
/// Slow start doubles while the doubled limit writes this much more than the base around it.
const SLOW_START_GAIN: f64 = 1.2;
/// Verdicts the same way in a row double the centre's step, up to 2^this δ (half the centre).
const STREAK_MAX: u32 = 2;
/// Round trips per window: doubling shows in a few, a 3 % difference needs more.
const SLOW_START_RTTS: u32 = 3;
const PROBE_RTTS: u32 = 8;
const WINDOW_MIN: Duration = Duration::from_millis(200);
const WINDOW_MAX: Duration = Duration::from_secs(2);

/// A probe's step around `centre`: an eighth of it, at least one.
fn delta(centre: usize) -> usize {
    (centre / 8).max(1)
}

/// The adaptive limit of one table's apply path (shared by its lanes).
pub struct Pace {
    slots: Arc<Semaphore>,
    max: usize,
    state: Mutex<State>,
    stats: Arc<TableStats>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Doubling `base`, the last limit that paid: the windows go base, doubled, base.
    SlowStart(Ladder),
    /// Measuring the centre plus δ.
    Up,
    /// Measuring the centre minus δ.
    Down,
}

struct State {
    limit: usize,
    /// Slots to retire as they come back: the limit was lowered below the slots in use.
    debt: usize,
    centre: usize,
    /// The way the last verdicts moved the centre, and how many in a row after the first.
    streak: Option<(bool, u32)>,
    phase: Phase,
    evidence: Evidence,
    window: Window,
    /// Smoothed round trip of successful writes.
    rtt: Option<Duration>,
    /// Attempts sent before this instant do not cut the limit (once per round trip).
    cut: Instant,
}

struct Window {
    start: Instant,
    records: u64,
    sends: u64,
    /// Sends the limit held back: (nearly) every slot taken, and more waiting in the lane.
    full: u64,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            records: 0,
            sends: 0,
            full: 0,
        }
    }
}

/// A slot: one batch may be written while it is held.
pub struct Slot<'a> {
    permit: Option<OwnedSemaphorePermit>,
    pace: &'a Pace,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.pace.state.lock().unwrap();
        if s.debt > 0 {
            s.debt -= 1;
            self.permit.take().expect("held").forget();
        }
    }
}

/// One attempt at a BatchWriteItem, as the limit sees it.
#[derive(Clone, Copy)]
pub struct Attempt {
    sent: Instant,
}

/// What an attempt came to.
pub enum Outcome {
    /// Every request written; the batch stood for this many records (coalesced ones included).
    Written(usize),
    /// Throttled, partly unprocessed, or failed transiently.
    Overloaded,
}

impl Pace {
    /// A limit between 1 and `max` (at least 1), starting at [`INITIAL`] or `max` if lower.
    pub fn new(max: usize, stats: Arc<TableStats>) -> Pace {
        let max = max.max(1);
        let limit = INITIAL.min(max);
        stats.write_concurrency.store(limit as u64, Relaxed);
        let now = Instant::now();
        Pace {
            slots: Arc::new(Semaphore::new(limit)),
            max,
            state: Mutex::new(State {
                limit,
                debt: 0,
                centre: limit,
                streak: None,
                phase: Ladder::at(limit, None),
                evidence: Evidence::default(),
                window: Window::new(now),
                rtt: None,
                cut: now,
            }),
            stats,
        }
    }

    /// Waits for a slot (first come, first served).
    pub async fn acquire(&self) -> Slot<'_> {
        let permit = self.slots.clone().acquire_owned().await.expect("never closed");
        Slot {
            permit: Some(permit),
            pace: self,
        }
    }

    pub fn limit(&self) -> usize {
        self.state.lock().unwrap().limit
    }

    /// Marks an attempt as sent now (by a holder of a slot) for a lane that had more waiting than
    /// this batch (`backlog`) or not.
    pub fn send(&self, backlog: bool) -> Attempt {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        if now < s.window.start {
            // Settling after a change of the limit: not yet a window of it.
            return Attempt { sent: now };
        }
        let in_use = (s.limit + s.debt).saturating_sub(self.slots.available_permits());
        s.window.sends += 1;
        // Nearly every slot taken, and the lane had more than it sends: the limit is what holds
        // the table back. Without a backlog the changes came no faster than they were written
        // (slots taken by small batches, as while a reader fills the lanes), and the window
        // would measure the supply, not the limit.
        if backlog && in_use + s.limit / 8 >= s.limit {
            s.window.full += 1;
        }
        Attempt { sent: now }
    }

    /// Records how an attempt ended, and moves the limit if the rule says so.
    pub fn done(&self, a: Attempt, outcome: Outcome) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        match outcome {
            Outcome::Overloaded if a.sent >= s.cut => {
                let next = ((s.limit as f64 * BACKOFF) as usize).max(1);
                s.centre = next;
                s.phase = Phase::Up;
                s.evidence = Evidence::default();
                s.streak = None;
                s.cut = now;
                s.window = Window::new(now + s.rtt.unwrap_or_default());
                self.resize(&mut s, next);
            }
            Outcome::Overloaded => {}
            Outcome::Written(records) => {
                let rtt = now - a.sent;
                s.rtt = Some(s.rtt.map_or(rtt, |r| (r * 7 + rtt) / 8));
                if now < s.window.start {
                    // Sent at the limit before the change, or while slots were added: the window
                    // of the new limit starts one round trip after it.
                    return;
                }
                s.window.records += records as u64;
                let rtts = match s.phase {
                    Phase::SlowStart(_) => SLOW_START_RTTS,
                    _ => PROBE_RTTS,
                };
                let span = (s.rtt.unwrap_or_default() * rtts).clamp(WINDOW_MIN, WINDOW_MAX);
                if now - s.window.start >= span {
                    self.close_window(&mut s, now, span);
                }
            }
        }
    }

    /// Ends the window at `now` and, if it says anything, moves the limit; the next window starts
    /// a round trip after a change, once the writes sent at the old limit are back.
    fn close_window(&self, s: &mut State, now: Instant, span: Duration) {
        let elapsed = now - s.window.start;
        let w = std::mem::replace(&mut s.window, Window::new(now));
        // Only a limit in use says anything about what more or fewer would do; and a window that
        // spans a pause (nothing to write for a while) measures the pause.
        let paused = elapsed > span * 2;
        if paused {
            // The windows on either side of a pause are not neighbours.
            s.evidence.recent.clear();
        }
        if w.full * 2 < w.sends || w.sends == 0 || paused {
            return;
        }
        let rate = w.records as f64 / elapsed.as_secs_f64();
        let phase = s.phase;
        let next = self.step(s, rate);
        tracing::debug!(
            limit = s.limit,
            next,
            centre = s.centre,
            rate = rate as u64,
            per_send = w.records / w.sends,
            rtt_ms = s.rtt.unwrap_or_default().as_millis() as u64,
            ?phase,
            "write concurrency window"
        );
        if next != s.limit {
            s.window = Window::new(now + s.rtt.unwrap_or_default());
        }
        self.resize(s, next);
    }

    /// The next limit after a binding window that applied `rate` records/s.
    fn step(&self, s: &mut State, rate: f64) -> usize {
        match s.phase {
            Phase::SlowStart(l) => self.slow_start(s, l, rate),
            Phase::Up | Phase::Down => {
                let up = s.phase == Phase::Up;
                if let Some(more) = s.evidence.add(up, rate) {
                    s.streak = match s.streak {
                        Some((way, n)) if way == more => Some((more, (n + 1).min(STREAK_MAX))),
                        _ => Some((more, 0)),
                    };
                    let d = delta(s.centre) << s.streak.map_or(0, |(_, n)| n);
                    // Fewer in flight can write more: fuller batches on a busy endpoint.
                    s.centre = if more {
                        (s.centre + d).min(self.max)
                    } else {
                        s.centre.saturating_sub(d).max(1)
                    };
                    s.phase = Phase::Up;
                } else {
                    s.phase = if up { Phase::Down } else { Phase::Up };
                }
                match s.phase {
                    Phase::Down => s.centre.saturating_sub(delta(s.centre)).max(1),
                    _ => (s.centre + delta(s.centre)).min(self.max),
                }
            }
        }
    }

    fn resize(&self, s: &mut State, next: usize) {
        if next > s.limit {
            let mut add = next - s.limit;
            let repaid = add.min(s.debt);
            s.debt -= repaid;
            add -= repaid;
            self.slots.add_permits(add);
        } else {
            let cut = s.limit - next;
            let forgotten = self.slots.forget_permits(cut);
            s.debt += cut - forgotten;
        }
        s.limit = next;
        self.stats.write_concurrency.store(next as u64, Relaxed);
    }
}

#[cfg(test)]
#[path = "concurrency_tests.rs"]
mod tests;
