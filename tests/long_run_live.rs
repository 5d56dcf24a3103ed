//! A sync restarted a day after its capture point, on the local rig: `ferry sync` runs under
//! libfaketime 25 h ahead (`FAKETIME="+25h"`, monotonic time left real) while forced shard
//! rollovers create new shards. Every new shard is younger than stream retention, so the table
//! keeps replicating and ends equal to the source (it used to stop at the first new shard).
//!
//! Needs libfaketime (`deploy/local/install.sh faketime`, Debian package `faketime`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::data::{create_table, enable_stream, load, rich_item};
use ferry_rig::ferry_bin;
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::wait::{wait_caught_up, wait_equal};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

fn faketime_lib() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu/faketime",
        "/usr/lib/aarch64-linux-gnu/faketime",
        "/usr/lib/faketime",
        "/usr/local/lib/faketime",
    ]
    .iter()
    .map(|d| PathBuf::from(d).join("libfaketime.so.1"))
    .find(|p| p.exists())
    .expect("libfaketime not found: run `deploy/local/install.sh faketime` (Debian package faketime)")
}

/// Writes at random for `rollovers` × 700 ms, forcing a shard rollover after each step, then a
/// little longer so the newest shard holds records too.
async fn writes_and_rollovers(src: &aws_sdk_dynamodb::Client, ddb: &DynamoLocal, rollovers: usize) {
    let stop = CancellationToken::new();
    let mut wl = Workload::new(src.clone(), "Orders");
    wl.pause = Duration::from_millis(2);
    let writes = wl.spawn(stop.clone());
    for _ in 0..rollovers {
        tokio::time::sleep(Duration::from_millis(700)).await;
        ddb.rollover().expect("rollover");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
}

fn shards_done(f: &FerryDir) -> u64 {
    f.table_status("Orders")
        .and_then(|t| t["shards_done"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_restarted_25_h_after_capture_follows_new_shards_to_equal_tables() {
    let faketime = faketime_lib();
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let src = ddb.client(&sa);
    let dst = ddb.client(&da);
    create_table(&src, "Orders", None).await;
    let mut rng = StdRng::seed_from_u64(7);
    load(
        &src,
        "Orders",
        (0..500)
            .map(|i| rich_item(&format!("seed-{}", i % 37), i, &mut rng))
            .collect(),
    )
    .await;
    enable_stream(&src, "Orders", StreamViewType::NewAndOldImages).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ferry = FerryDir::new(
        &ferry_bin!(),
        dir.path(),
        ddb,
        &sa,
        &da,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 2\n",
    );

    // Day one: capture, snapshot and stream through a rollover; stopped with every shard read.
    let mut day_one = ferry.spawn_sync(&[]);
    writes_and_rollovers(&src, ddb, 1).await;
    wait_caught_up(&ferry, "Orders", Duration::from_secs(120)).await;
    wait_equal(&src, "Orders", &dst, "Orders", Duration::from_secs(60), || ferry.logs()).await;
    terminate(&day_one);
    assert!(day_one.wait().unwrap().success(), "{}", ferry.logs());
    let done_on_day_one = shards_done(&ferry);

    // 25 h later by ferry's clock: the capture point is past stream retention; new shards come.
    let log_path = dir.path().join("sync-faked.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let log_tail = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut faked = Running(
        ferry
            .command(&["sync", "-c", "ferry.toml"])
            .env("LD_PRELOAD", &faketime)
            .env("FAKETIME", "+25h")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn faked ferry sync"),
    );
    writes_and_rollovers(&src, ddb, 3).await;
    wait_equal(&src, "Orders", &dst, "Orders", Duration::from_secs(120), log_tail).await;
    assert!(
        shards_done(&ferry) >= done_on_day_one + 3,
        "the shards closed by the rollovers were read to their end\n{}",
        log_tail()
    );
    assert!(
        faked.try_wait().unwrap().is_none(),
        "the faked sync stopped:\n{}",
        log_tail()
    );
    terminate(&faked);
    assert!(faked.wait().unwrap().success(), "{}", log_tail());
}
