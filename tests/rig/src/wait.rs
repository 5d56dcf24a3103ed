//! Polling helpers shared by the live tests (each test file is its own process with its own
//! DynamoDB Local, started through deploy/local/start.sh and gone when the process ends).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::compare::{Diff, compare};
use crate::process::FerryDir;

/// Polls `check` until it returns `Some`, failing with `what` and `context()` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, context: impl Fn() -> String, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `ferry status` shows `table` in `phase`.
pub async fn wait_phase(f: &FerryDir, table: &str, phase: &str, timeout: Duration) {
    wait_for(
        timeout,
        &format!("{table} in phase {phase}"),
        || f.logs(),
        || async { (f.table_status(table)?["phase"] == phase).then_some(()) },
    )
    .await
}

/// Waits until the destination equals the source (the sync keeps converging meanwhile).
pub async fn wait_equal(
    src: &aws_sdk_dynamodb::Client,
    src_table: &str,
    dst: &aws_sdk_dynamodb::Client,
    dst_table: &str,
    timeout: Duration,
    context: impl Fn() -> String,
) -> Diff {
    let deadline = Instant::now() + timeout;
    loop {
        let d = compare(src, src_table, dst, dst_table).await.expect("compare");
        if d.is_equal() {
            return d;
        }
        if Instant::now() > deadline {
            panic!("destination never matched the source: {d}\n{}", context());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `ferry status` shows `table` streaming and caught up with its stream.
pub async fn wait_caught_up(f: &FerryDir, table: &str, timeout: Duration) {
    wait_for(
        timeout,
        "table caught up",
        || f.logs(),
        || async {
            let t = f.table_status(table)?;
            (t["phase"] == "streaming" && t["caught_up"] == true).then_some(())
        },
    )
    .await;
}
