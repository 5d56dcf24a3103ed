//! Several `ferry sync` workers sharing one migration through the DynamoDB state backend (the
//! state table in a third account of DynamoDB Local): a standby takes over a holder killed with
//! -9, a holder frozen past its lease writes nothing stale when it wakes, and a SIGTERM hands the
//! migration over at once.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::compare::compare;
use ferry_rig::process::{FerryDir, Running, signal, terminate};
use ferry_rig::scenario::{Scenario, Stream};
use ferry_rig::wait::wait_for;
use ferry_rig::workload::Workload;
use ferry_rig::{Account, ferry_bin};
use tokio_util::sync::CancellationToken;

/// Short for the tests' sake, long enough that a loaded rig does not lose a lease to one slow call.
const FAILOVER_SECONDS: u64 = 6;

async fn setup(items: i64, table_toml: &str) -> Scenario {
    let rig = Scenario::setup(ferry_bin!())
        .stream(Stream::AfterLoad(StreamViewType::NewAndOldImages))
        .items(items, 11)
        .keys("seed-", 31)
        .tables(table_toml)
        .build()
        .await;
    rig.ferry.state_in_dynamodb(&Account::fresh("state"), FAILOVER_SECONDS);
    rig
}

/// Waits until the `n`th worker's log shows `line`; how long that took.
async fn wait_log(f: &FerryDir, n: u32, line: &str, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(
        timeout,
        line,
        || f.logs(),
        || async { f.log(n).contains(line).then_some(()) },
    )
    .await;
    t0.elapsed()
}

/// Waits until the `n`th worker took Orders over from another worker; how long that took.
async fn took_over(f: &FerryDir, n: u32) -> Duration {
    let t0 = Instant::now();
    let taken = |line: &str| line.contains("holding table Orders (taken from ") && !line.contains("from nobody");
    wait_for(
        Duration::from_secs(60),
        "a takeover",
        || f.logs(),
        || async { f.log(n).lines().any(taken).then_some(()) },
    )
    .await;
    t0.elapsed()
}

fn table_status(f: &FerryDir) -> serde_json::Value {
    f.table_status("Orders").unwrap_or_default()
}

/// Starts the `n`th worker and waits until it has joined (it holds nothing while the others
/// hold their share).
async fn standby(f: &FerryDir, n: u32) -> Running {
    let child = f.spawn_sync(&[]);
    wait_log(f, n, "worker started", Duration::from_secs(60)).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_take_over_a_killed_holder_mid_snapshot_and_mid_stream_and_a_sigterm_hands_over_at_once() {
    // A write budget stretches the snapshot so that the first kill lands in it.
    let rig = setup(
        6_000,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 4\nmax_write_units_per_second = 500\n",
    )
    .await;
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(10);
    let writes = tokio::spawn({
        let stop = stop.clone();
        async move { wl.run(stop, None).await }
    });
    let f = &rig.ferry;
    let mut first = f.spawn_sync(&[]);
    wait_log(f, 1, "holding table Orders (taken from nobody", Duration::from_secs(60)).await;
    let mut second = standby(f, 2).await;
    let phase = wait_for(
        Duration::from_secs(60),
        "snapshot progress",
        || f.logs(),
        || async {
            let t = table_status(f);
            (t["snapshot"]["items_copied"].as_i64().unwrap_or(0) > 0).then(|| t["phase"].clone())
        },
    )
    .await;
    first.kill().expect("kill -9");
    assert_eq!(phase, "snapshot", "killed mid-snapshot\n{}", f.logs());
    first.wait().unwrap();
    let took = took_over(f, 2).await;
    eprintln!("takeover mid-snapshot after kill -9: {took:?} (failover {FAILOVER_SECONDS} s)");
    assert!(
        took < Duration::from_secs(FAILOVER_SECONDS * 4),
        "took {took:?}\n{}",
        f.logs()
    );

    wait_for(
        Duration::from_secs(180),
        "streaming",
        || f.logs(),
        || async { (table_status(f)["phase"] == "streaming").then_some(()) },
    )
    .await;
    let mut third = standby(f, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill().expect("kill -9");
    second.wait().unwrap();
    let took = took_over(f, 3).await;
    eprintln!("takeover mid-stream after kill -9: {took:?}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    rig.wait_caught_up(Duration::from_secs(120)).await;
    rig.wait_equal(Duration::from_secs(90)).await;

    // A graceful stop releases the lease: the next standby takes it without waiting out the
    // failover time.
    let mut fourth = standby(f, 4).await;
    terminate(&third);
    assert!(third.wait().unwrap().success(), "{}", f.logs());
    assert!(f.log(3).contains("released the lease"), "{}", f.log(3));
    wait_log(f, 4, "holding table Orders (taken from nobody", Duration::from_secs(30)).await;
    terminate(&fourth);
    assert!(fourth.wait().unwrap().success(), "{}", f.logs());
    assert!(rig.wait_equal(Duration::from_secs(30)).await.is_equal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_frozen_past_its_lease_writes_nothing_stale_when_it_wakes() {
    // A small write budget keeps batches queued in the holder when it freezes.
    let rig = setup(
        500,
        "[[table]]\nsource = \"Orders\"\nmax_write_units_per_second = 40\nwrite_concurrency = 2\n",
    )
    .await;
    let f = &rig.ferry;
    let mut frozen = f.spawn_sync(&[]);
    rig.wait_caught_up(Duration::from_secs(120)).await;
    let mut taker = standby(f, 2).await;

    // Writes over and over to five hot keys, faster than the holder may apply them.
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    (wl.cold_keys, wl.writers, wl.pause) = (50, 2, Duration::from_millis(20));
    let writes = tokio::spawn({
        let stop = stop.clone();
        async move { wl.run(stop, None).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&frozen, "STOP");
    took_over(f, 2).await;
    // The taker applies newer images of the same keys while the holder is frozen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    rig.wait_caught_up(Duration::from_secs(120)).await;
    rig.wait_equal(Duration::from_secs(120)).await;

    signal(&frozen, "CONT");
    // Awake, it finds its lease gone: its state writes are refused and it stands by again.
    wait_log(f, 1, "table no longer held here", Duration::from_secs(60)).await;
    let log = f.log(1);
    assert!(
        log.contains("is no longer this worker's"),
        "a refused state write\n{log}"
    );
    let diff = compare(&rig.src, "Orders", &rig.dst, "Orders").await.expect("compare");
    assert!(
        diff.is_equal(),
        "a stale image reached the destination: {diff}\n{}",
        f.logs()
    );
    eprintln!(
        "the frozen holder held writes when it woke: {}",
        log.contains("holding writes to Orders")
    );
    terminate(&frozen);
    terminate(&taker);
    assert!(frozen.wait().unwrap().success(), "{}", f.logs());
    assert!(taker.wait().unwrap().success(), "{}", f.logs());
}
