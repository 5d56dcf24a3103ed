use std::sync::atomic::AtomicUsize;

use super::*;

/// A destination for `workers` writers that always have a batch ready: a write takes `delay`
/// or its wait in a queue served at `per_second` batches (none when 0), whichever is longer.
/// Returns the limit after `run` of simulated time and the batches written.
async fn drive(pace: Arc<Pace>, workers: usize, delay: Duration, per_second: u32, run: Duration) -> (usize, usize) {
    let queue = move |n: usize| match per_second {
        0 => Duration::ZERO,
        p => Duration::from_secs_f64(n as f64 / p as f64),
    };
    drive_with(pace, workers, run, move |n| delay.max(queue(n))).await
}

/// [`drive`] with a write that takes `took(n)` when `n` are in flight.
async fn drive_with(
    pace: Arc<Pace>,
    workers: usize,
    run: Duration,
    took: impl Fn(usize) -> Duration + Clone + Send + 'static,
) -> (usize, usize) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + run;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (pace, in_flight, written, took) = (pace.clone(), in_flight.clone(), written.clone(), took.clone());
        tasks.spawn(async move {
            while Instant::now() < end {
                let _slot = pace.acquire().await;
                let a = pace.send(true);
                let n = in_flight.fetch_add(1, Relaxed) + 1;
                tokio::time::sleep(took(n)).await;
                in_flight.fetch_sub(1, Relaxed);
                written.fetch_add(1, Relaxed);
                pace.done(a, Outcome::Written(25));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (pace.limit(), written.load(Relaxed))
}

fn pace(max: usize) -> Arc<Pace> {
    Arc::new(Pace::new(max, Arc::default()))
}

/// Far away and unlimited (50 ms a batch, no queue): throughput is batches in flight over the
/// round trip, so the limit doubles from 16 to the maximum within the first seconds.
#[tokio::test(start_paused = true)]
async fn a_distant_destination_gets_every_slot_it_may_have() {
    let p = pace(64);
    let (limit, written) = drive(p.clone(), 64, Duration::from_millis(50), 0, Duration::from_secs(20)).await;
    assert!(limit >= 56, "at the maximum or one probe below it: {limit}");
    // 64 in flight for 20 s would write 25,600 batches.
    assert!(written > 25_600 * 9 / 10, "{written}");
}

/// A busy endpoint (400 batches/s, 5 ms away): two in flight already keep it busy, so doubling
/// gains nothing and the limit does not climb; the endpoint stays busy.
#[tokio::test(start_paused = true)]
async fn a_saturated_endpoint_keeps_the_limit_low_and_busy() {
    let p = pace(64);
    let (limit, written) = drive(p.clone(), 64, Duration::from_millis(5), 400, Duration::from_secs(20)).await;
    assert!(limit <= 18, "more would only queue: {limit}");
    assert!(written as f64 >= 400.0 * 20.0 * 0.95, "{written} of 8000");
}

/// The same endpoint behind a 50 ms network: 20 batches in flight fill it. The limit grows past
/// 16, and stays near what fills it.
#[tokio::test(start_paused = true)]
async fn far_and_busy_settles_where_the_endpoint_saturates() {
    let p = pace(64);
    let (limit, written) = drive(p.clone(), 64, Duration::from_millis(50), 400, Duration::from_secs(20)).await;
    assert!((18..=36).contains(&limit), "{limit}");
    assert!(written as f64 >= 400.0 * 20.0 * 0.9, "{written}");
}

/// Throttles cut the limit by 30 %, once per round trip however many writes report them.
#[tokio::test(start_paused = true)]
async fn throttles_cut_once_per_round_trip() {
    let p = pace(64);
    tokio::time::advance(Duration::from_millis(10)).await;
    let sent: Vec<Attempt> = (0..16).map(|_| p.send(true)).collect();
    tokio::time::advance(Duration::from_millis(10)).await;
    for a in sent {
        p.done(a, Outcome::Overloaded);
    }
    assert_eq!(p.limit(), 11, "16 × 0.7, once for the 16 throttles of one round trip");
    let a = p.send(true);
    tokio::time::advance(Duration::from_millis(10)).await;
    p.done(a, Outcome::Overloaded);
    assert_eq!(p.limit(), 7, "a write sent after the cut counts again");
    for _ in 0..10 {
        let a = p.send(true);
        p.done(a, Outcome::Overloaded);
    }
    assert_eq!(p.limit(), 1, "never below one");
}

/// A table with little to write (one batch in flight of 16 slots) does not grow its limit.
#[tokio::test(start_paused = true)]
async fn an_idle_table_does_not_grow() {
    let p = pace(64);
    let (limit, _) = drive(p.clone(), 1, Duration::from_millis(50), 0, Duration::from_secs(10)).await;
    assert_eq!(limit, 16);
}

/// Every slot taken, but by lanes that sent all they had (small batches, as while a reader is
/// still filling the lanes): the changes come no faster than they are written, so those windows
/// say nothing about the limit, however fast they grow. 50 ms away, where slots held back by the
/// limit double it at once (`a_distant_destination_gets_every_slot_it_may_have`).
#[tokio::test(start_paused = true)]
async fn slots_taken_without_a_backlog_do_not_move_the_limit() {
    let p = pace(64);
    let end = Instant::now() + Duration::from_secs(10);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let p = p.clone();
        tasks.spawn(async move {
            while Instant::now() < end {
                let _slot = p.acquire().await;
                let a = p.send(false);
                tokio::time::sleep(Duration::from_millis(50)).await;
                p.done(a, Outcome::Written(25));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    assert_eq!(p.limit(), 16);
}

/// Writes sent before the limit changed and back just after it are the old limit's: counted in
/// the new limit's window, they lifted the window after a doubling (twice the writes coming back
/// at the base) and sank the doubled one, and slow start stopped where doubling still paid.
#[tokio::test(start_paused = true)]
async fn writes_sent_before_a_change_do_not_count_for_the_new_limit() {
    let p = pace(64);
    let held: Vec<Slot> = futures::future::join_all((0..16).map(|_| p.acquire())).await;
    let first: Vec<Attempt> = (0..16).map(|_| p.send(true)).collect();
    tokio::time::advance(Duration::from_millis(50)).await;
    for a in first {
        p.done(a, Outcome::Written(25));
    }
    let second: Vec<Attempt> = (0..16).map(|_| p.send(true)).collect();
    tokio::time::advance(Duration::from_millis(200)).await;
    // The first of these ends slow start's first window: the limit doubles.
    for a in second {
        p.done(a, Outcome::Written(25));
    }
    assert_eq!(p.limit(), 32);
    let s = p.state.lock().unwrap();
    assert_eq!(
        (s.window.records, s.window.sends),
        (0, 0),
        "15 writes sent at 16 are not 32's"
    );
    drop(s);
    drop(held);
}

/// A lowered limit retires slots as they come back: no more than the new limit are in use after.
#[tokio::test(start_paused = true)]
async fn a_lowered_limit_takes_effect_as_writes_return() {
    let p = pace(16);
    let held: Vec<Slot> = futures::future::join_all((0..16).map(|_| p.acquire())).await;
    tokio::time::advance(Duration::from_millis(10)).await;
    let a = p.send(true);
    p.done(a, Outcome::Overloaded);
    assert_eq!(p.limit(), 11);
    drop(held);
    let again: Vec<Slot> = futures::future::join_all((0..11).map(|_| p.acquire())).await;
    let twelfth = tokio::time::timeout(Duration::from_secs(1), p.acquire()).await;
    assert!(twelfth.is_err(), "only 11 slots remain");
    drop(again);
}

/// A window that spans a pause (the table had nothing to write for a minute) says nothing about
/// the limit: a burst after it does not read as a slow window, and slow start goes on from there.
#[tokio::test(start_paused = true)]
async fn a_pause_is_not_read_as_a_slow_window() {
    let p = pace(64);
    let held: Vec<Slot> = futures::future::join_all((0..16).map(|_| p.acquire())).await;
    let first = p.send(true);
    tokio::time::advance(Duration::from_millis(50)).await;
    p.done(first, Outcome::Written(25));
    // A minute with nothing to write, then one full round of writes: the window is discarded.
    tokio::time::advance(Duration::from_secs(60)).await;
    let burst: Vec<Attempt> = (0..16).map(|_| p.send(true)).collect();
    tokio::time::advance(Duration::from_millis(50)).await;
    for a in burst {
        p.done(a, Outcome::Written(25));
    }
    assert_eq!(p.limit(), 16, "no step from a window that spans the pause");
    drop(held);
    // Busy again: slow start still doubles as the destination rewards it.
    let (limit, _) = drive(p.clone(), 64, Duration::from_millis(50), 0, Duration::from_secs(5)).await;
    assert!(limit > 16, "{limit}");
}

/// The limits slow start sets over `windows` windows from 16, the i-th writing `rate(limit, i)`.
fn slow_start(rate: impl Fn(usize, usize) -> f64, windows: usize) -> Vec<usize> {
    let p = Pace::new(64, Arc::default());
    let mut s = p.state.lock().unwrap();
    (0..windows)
        .map(|i| {
            let r = rate(s.limit, i);
            s.limit = p.step(&mut s, r);
            s.limit
        })
        .collect()
}

/// A destination that 16 in flight already keep busy, but which speeds up by 30 % a window
/// over the first windows (the reader filling the lanes, a warming JVM): each window beats the
/// one before whatever the limit, which is not a reason to double it.
#[test]
fn a_rising_start_does_not_read_as_doubling_paying() {
    let limits = slow_start(|_, i| 1000.0 * (1.0 + 0.3 * i.min(6) as f64), 12);
    assert!(limits.iter().all(|l| *l <= 32), "{limits:?}");
    assert!(limits[3..].iter().all(|l| *l <= 18), "probing around 16: {limits:?}");
}

/// Far away (writes per second grow with the limit), slow start still doubles to the maximum,
/// each doubling checked against the base on both sides: 16, 32, 16, 64, 32, then probing.
#[test]
fn a_distant_destination_doubles_to_the_maximum() {
    let limits = slow_start(|limit, _| 100.0 * limit as f64, 5);
    assert_eq!(limits, vec![32, 16, 64, 32, 64]);
}

/// Rates of alternating probe windows (upper side first): `up` and `down` scaled by a
/// deterministic ±`noise` factor per window and by `drift` per window (the destination slowing).
fn windows(up: f64, down: f64, noise: f64, drift: f64, n: usize) -> Vec<(bool, f64)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let jitter = 1.0 + noise * ((x % 2001) as f64 / 1000.0 - 1.0);
            let side = i % 2 == 0;
            let base = if side { up } else { down };
            (side, base * jitter * (1.0 - drift).powi(i as i32))
        })
        .collect()
}

fn verdicts(ws: &[(bool, f64)]) -> Vec<bool> {
    let mut e = Evidence::default();
    ws.iter().filter_map(|&(up, rate)| e.add(up, rate)).collect()
}

/// Both sides write the same but single windows vary by ±20 % (a shared endpoint): at most one
/// verdict in 400 windows (13 minutes of 2 s windows), where trusting single windows moved the
/// limit at random.
#[test]
fn noise_alone_does_not_move_the_centre() {
    let v = verdicts(&windows(4500.0, 4500.0, 0.2, 0.0, 400));
    assert!(v.len() <= 1, "{v:?}");
}

/// The destination slows by 4 % a window while both sides write the same: each upper window is
/// measured just before a lower one (a pair would read 4 %, enough to move), but comparing a window
/// with both neighbours cancels the drift.
#[test]
fn a_steady_slowdown_is_not_read_as_a_difference() {
    assert_eq!(verdicts(&windows(4500.0, 4500.0, 0.0, 0.04, 100)), Vec::<bool>::new());
}

/// A real difference shows in nine windows (three comparisons), either way, through ±5 % noise.
#[test]
fn a_real_difference_moves_the_centre_its_way() {
    assert_eq!(verdicts(&windows(5000.0, 4000.0, 0.05, 0.0, 9)).first(), Some(&true));
    assert_eq!(verdicts(&windows(4000.0, 5000.0, 0.05, 0.0, 9)).first(), Some(&false));
}

/// The limits of `windows` probing windows from a centre of 16, each writing `rate(limit)`.
fn probe(rate: impl Fn(usize) -> f64, windows: usize) -> Vec<usize> {
    let p = Pace::new(64, Arc::default());
    let mut s = p.state.lock().unwrap();
    s.phase = Phase::Up;
    s.limit = 18;
    (0..windows)
        .map(|_| {
            let r = rate(s.limit);
            let next = p.step(&mut s, r);
            s.limit = next;
            next
        })
        .collect()
}

/// Past where slow start stopped, an endpoint that keeps gaining, a little less with each batch
/// added (6 ms away, each batch in flight adding 1 ms: the best is the maximum, but from 16 a
/// doubling gains under slow start's 20 %). Verdicts the same way in a row take longer steps: the
/// limit reaches 55 in 45 windows, where steps of δ alone were still probing 41 and 51 after 120.
#[test]
fn a_long_climb_takes_longer_steps() {
    let limits = probe(|n| 1000.0 * n as f64 / (6.0 + n as f64), 120);
    let reached = limits.iter().position(|l| *l >= 55).map(|i| i + 1);
    assert_eq!(reached, Some(45), "{limits:?}");
    assert!(limits[60..].iter().all(|l| *l >= 55), "it stays there: {limits:?}");
}

/// An endpoint whose best is 24 (more in flight beyond it only queue and cost): longer steps
/// overshoot, and the verdicts the other way bring the limit back near the best.
#[test]
fn longer_steps_come_back_to_the_best() {
    let best = |n: usize| 1000.0 * n as f64 / (6.0 + n as f64);
    let limits = probe(|n| best(n.min(24)) * (1.0 - 0.01 * n.saturating_sub(24) as f64), 200);
    assert!(limits.iter().all(|l| *l <= 33), "{limits:?}");
    assert!(limits[80..].iter().all(|l| (20..=28).contains(l)), "{limits:?}");
}
