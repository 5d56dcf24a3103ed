use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

#[test]
fn delay_is_bounded_by_cap_and_exponential_ceiling() {
    let p = Policy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        max_attempts: None,
    };
    for _ in 0..200 {
        assert!(p.delay(0) <= Duration::from_millis(10));
        assert!(p.delay(2) <= Duration::from_millis(40));
        assert!(p.delay(30) <= Duration::from_millis(100));
    }
    for _ in 0..200 {
        assert!(
            Policy::DAEMON.delay(1000) <= Duration::from_secs(20),
            "the daemon's backoff is capped"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn daemon_work_retries_transient_errors_forever_and_fatal_stops_at_once() {
    let n = AtomicU32::new(0);
    // Far past any bounded budget: an outage of hours at the 20 s cap.
    let out = retry(
        Policy::DAEMON,
        |_| {},
        || async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            match i % 3 {
                _ if i >= 1_000 => Ok(i),
                0 => Err(Error::retryable("connection refused")),
                1 => Err(Error::new(Kind::Throttled, "slow down")),
                _ => Err(Error::retryable("HTTP 503")),
            }
        },
    )
    .await;
    assert_eq!(out.unwrap(), 1_000);

    n.store(0, Ordering::SeqCst);
    let out: Result<()> = retry(
        Policy::DAEMON,
        |_| {},
        || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(Error::fatal("ValidationException"))
        },
    )
    .await;
    assert!(out.unwrap_err().is_fatal());
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn one_off_calls_give_up_after_a_bound_throttles_included() {
    for err in [Error::retryable("net down"), Error::new(Kind::Throttled, "slow down")] {
        let n = AtomicU32::new(0);
        let out: Result<()> = retry(
            Policy::STARTUP,
            |_| {},
            || {
                let err = Error::new(err.kind(), err.message());
                n.fetch_add(1, Ordering::SeqCst);
                async move { Err(err) }
            },
        )
        .await;
        let e = out.unwrap_err();
        assert_eq!(
            e.kind(),
            err.kind(),
            "the kind stays for a caller that retries the whole step"
        );
        assert!(e.message().contains("gave up after 4 attempts"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_the_backoff_ends_retrying_with_stopped() {
    let stop = CancellationToken::new();
    let stats = Arc::new(TableStats::default());
    let mut r = Retrier::daemon("writing to T", &stop, &stats);
    let n = AtomicU32::new(0);
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(600)).await;
            stop.cancel();
        })
    };
    let out: Result<()> = r
        .run(|| async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(Error::retryable("connection refused"))
        })
        .await;
    stopper.await.unwrap();
    let e = out.unwrap_err();
    assert!(e.is_stopped(), "{e:?}");
    assert!(n.load(Ordering::SeqCst) > 10, "retried until the stop");
    assert!(
        stats.health.retrying().is_none(),
        "a stopped caller no longer counts as failing"
    );
}

#[tokio::test(start_paused = true)]
async fn the_table_shows_retrying_while_failing_and_not_after() {
    let stop = CancellationToken::new();
    let stats = Arc::new(TableStats::default());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut r = Retrier::daemon("reading shard s-1", &stop, &stats);
    let n = AtomicU32::new(0);
    let out = r
        .run(|| async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            seen.lock().unwrap().push(stats.health.retrying().map(|(_, e)| e));
            match i {
                0 => Err(Error::new(Kind::Throttled, "slow down")),
                1 | 2 => Err(Error::retryable(format!("HTTP 503 #{i}"))),
                _ => Ok(i),
            }
        })
        .await;
    assert_eq!(out.unwrap(), 3);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            None,
            None,
            Some("HTTP 503 #1".to_string()),
            Some("HTTP 503 #2".to_string())
        ],
        "throttles are pacing, not failing; failures show until the call works"
    );
    assert!(stats.health.retrying().is_none());
    assert_eq!(stats.throttles.load(Ordering::SeqCst), 1);
    assert_eq!(stats.retries.load(Ordering::SeqCst), 2);
}

/// One look at a scripted job: the `n`th entry of `script` (its last, once past the end).
fn look(n: &AtomicU32, script: &[Result<Option<u32>>]) -> Result<Option<u32>> {
    let i = n.fetch_add(1, Ordering::SeqCst) as usize;
    match &script[i.min(script.len() - 1)] {
        Ok(v) => Ok(*v),
        Err(e) => Err(Error::new(e.kind(), e.message())),
    }
}

#[tokio::test(start_paused = true)]
async fn a_poll_keeps_looking_through_transient_errors_until_done() {
    let stats = Arc::new(TableStats::default());
    let stop = CancellationToken::new();
    let n = AtomicU32::new(0);
    let script = [
        Err(Error::retryable("HTTP 503")),
        Ok(None),
        Err(Error::new(Kind::Throttled, "slow down")),
        Ok(None),
        Ok(Some(7)),
    ];
    let started = Instant::now();
    let mut r = Retrier::daemon("export", &stop, &stats);
    let done = r
        .poll(Duration::from_secs(10), || async { look(&n, &script) }, Ok)
        .await
        .unwrap();
    assert_eq!(done, 7);
    assert_eq!(n.load(Ordering::SeqCst), 5);
    // Two pending looks, each followed by one interval.
    assert!(started.elapsed() >= Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!(stats.retries.load(Relaxed), 1);
    assert_eq!(stats.throttles.load(Relaxed), 1);
    assert!(stats.health.retrying().is_none(), "healthy again once a look works");
}

#[tokio::test(start_paused = true)]
async fn a_poll_ends_on_a_failed_job_at_once() {
    let stats = Arc::new(TableStats::default());
    let stop = CancellationToken::new();
    let n = AtomicU32::new(0);
    let mut r = Retrier::daemon("import", &stop, &stats);
    let judge = |v: Option<u32>| match v {
        Some(_) => Err(Error::fatal("import failed: bad data")),
        None => Ok(None::<u32>),
    };
    let script = [Ok(None), Ok(Some(1))];
    let err = r
        .poll(Duration::from_secs(10), || async { look(&n, &script) }, judge)
        .await
        .unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains("bad data"), "{err}");
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_poll_ends_on_stop_while_pending_or_retrying() {
    for script in [vec![Ok(None)], vec![Err(Error::retryable("connection refused"))]] {
        let stats = Arc::new(TableStats::default());
        let stop = CancellationToken::new();
        let n = AtomicU32::new(0);
        let canceller = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                stop.cancel();
            })
        };
        let mut r = Retrier::daemon("export", &stop, &stats);
        let err = r
            .poll(Duration::from_secs(10), || async { look(&n, &script) }, Ok)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Kind::Stopped, "{err}");
        assert!(n.load(Ordering::SeqCst) > 10, "it kept looking until the stop");
        canceller.await.unwrap();
    }
}
