//! ferry's default settings against a destination with real network latency: a fault proxy adds
//! `FERRY_BENCH_DELAY_MS` (default 5) to every call to the destination DynamoDB Local, as a
//! Region away would. Measures, in one run and through the same proxy:
//! - a tuned raw writer: the same N changes as concurrent BatchWriteItem lanes that know them in
//!   advance (per-key order kept), at several concurrencies, the best taken;
//! - `ferry sync` with its default settings replaying the same N changes from a stream (the
//!   adaptive limit, at most 64 batches in flight), with the limit it ended at;
//! - `ferry sync` with `write_concurrency = 16`, the fixed count ferry had before it adapted.
//!
//! Target (issue 16): default ferry ≥ 0.9 of the tuned raw writer. The destination DynamoDB Local
//! runs on cores of its own (`FERRY_BENCH_SHARED_CORES=1`: on all of them).
//!
//!   cargo bench --bench latency
//!   FERRY_BENCH_N=50000 FERRY_BENCH_DELAY_MS=10 cargo bench --bench latency
//!   FERRY_LOG=info,ferry::apply::concurrency=debug FERRY_BENCH_LOGS=/tmp cargo bench --bench latency
//!       # keeps each ferry run's log (here with the limit's every window)
//!
//! Writes `<target>/ferry-bench/latency.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::bench::{self, Mix, TABLE};
use ferry_rig::faults::Rule;
use ferry_rig::faults::proxy::FaultProxy;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::{Account, DynamoLocal};
use serde_json::json;

/// Concurrencies of the raw writer.
const RAW_WRITERS: [usize; 4] = [16, 32, 64, 128];
/// Writers of the source stream (unmeasured).
const STREAM_WRITERS: usize = 16;
const WARMUP_ITEMS: usize = 20_000;
/// Replays the whole stream: it is minutes old.
const REPLAY_OVERLAP_SECS: u64 = 3600;

fn say(msg: impl AsRef<str>) {
    eprintln!("[latency] {}", msg.as_ref());
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    if let Err(e) = rt.block_on(run()) {
        eprintln!("\nferry latency benchmark FAILED: {e}");
        std::process::exit(1);
    }
    println!("\n(bench took {:.0} s)", started.elapsed().as_secs_f64());
}

async fn run() -> Result<(), String> {
    let n: usize = bench::env_num("FERRY_BENCH_N", 100_000);
    let delay_ms: u64 = bench::env_num("FERRY_BENCH_DELAY_MS", 5);
    let ferry_bin = ferry_rig::ferry_bin!();
    // The destination on cores of its own (`bench::Cores`): the raw writer, the proxy, the source
    // JVM and ferry on the rest.
    let cores = bench::Cores::split();
    let dst = bench::start_destination(&cores)?;
    let src = DynamoLocal::start()?;
    say(bench::layout(&cores));
    bench::ceiling_run(&dst, WARMUP_ITEMS, 16).await?;
    let proxy = FaultProxy::start(&dst.endpoint).await;
    proxy.add(Rule::delay(Duration::from_millis(delay_ms)));
    // The destination as ferry and the raw writer see it: every call delayed.
    let far = DynamoLocal {
        endpoint: proxy.endpoint.clone(),
        admin: dst.admin.clone(),
        pid: dst.pid,
    };
    say(format!(
        "destination {} behind a {delay_ms} ms proxy at {}",
        dst.endpoint, far.endpoint
    ));

    let changes = bench::changes(Mix::Uniform, n, 42);
    let keys = bench::keys_touched(&changes);
    let mut raw = Vec::new();
    for w in RAW_WRITERS {
        let c = far.client(&Account::fresh("raw"));
        bench::create_plain_table(&c, None).await?;
        let took = bench::write_lanes(&c, TABLE, bench::plan_batches(&changes, w)).await?;
        bench::drop_table(&c).await;
        let rate = n as f64 / took.as_secs_f64();
        say(format!(
            "raw writer, {w} concurrent BatchWriteItem lanes: {rate:.0} changes/s"
        ));
        raw.push((w, rate));
    }
    let best_raw = raw.iter().map(|r| r.1).fold(0.0, f64::max);

    let sa = Account::fresh("src");
    let source = src.client(&sa);
    bench::create_plain_table(&source, Some(StreamViewType::NewAndOldImages)).await?;
    bench::write_lanes(&source, TABLE, bench::plan_batches(&changes, STREAM_WRITERS)).await?;
    drop(changes);
    let mut ferry = Vec::new();
    for (label, extra) in [
        ("default settings", ""),
        ("write_concurrency = 16", "write_concurrency = 16\n"),
    ] {
        let (rate, limit) = ferry_run(&ferry_bin, (&src, &sa), &far, n, extra, &keys).await?;
        say(format!(
            "ferry, {label}: {rate:.0} records/s ({:.2} of the tuned raw writer), ended at {limit} batches in flight",
            rate / best_raw
        ));
        ferry.push((label, rate, limit));
    }

    println!("\nferry against a destination {delay_ms} ms away (fault proxy), N = {n} uniform changes, ~1 KB items");
    println!("| writer | changes/s | / tuned raw |");
    println!("| --- | --- | --- |");
    for (w, r) in &raw {
        println!("| raw BatchWriteItem, {w} lanes | {r:.0} | {:.2} |", r / best_raw);
    }
    for (label, r, limit) in &ferry {
        println!(
            "| **ferry, {label}** (ended at {limit} in flight) | {r:.0} | {:.2} |",
            r / best_raw
        );
    }
    let report = json!({
        "delay_ms": delay_ms,
        "n": n,
        "raw": raw.iter().map(|(w, r)| json!({"writers": w, "per_second": r})).collect::<Vec<_>>(),
        "ferry": ferry.iter().map(|(l, r, c)| json!({"settings": l, "per_second": r, "of_raw": r / best_raw, "write_concurrency": c})).collect::<Vec<_>>(),
    });
    bench::write_report("latency", &report)
}

/// Runs `ferry sync` (snapshot none, `extra` table settings) until it has applied all `n`
/// records of the source stream to a fresh destination account behind the proxy; checks every
/// key; records/s from process start, and the write concurrency it ended at.
async fn ferry_run(
    bin: &Path,
    (src, sa): (&DynamoLocal, &Account),
    far: &DynamoLocal,
    n: usize,
    extra: &str,
    keys: &[ferry::item::Item],
) -> Result<(f64, f64), String> {
    let da = Account::fresh("dst");
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let toml = format!(
        "[[table]]\nsource = \"{TABLE}\"\nsnapshot = \"none\"\nreplay_overlap_seconds = {REPLAY_OVERLAP_SECS}\n{extra}"
    );
    let dir = FerryDir::between(bin, work.path(), (src, sa), (far, &da), &toml);
    let addr = format!("127.0.0.1:{}", bench::free_port());
    let start = Instant::now();
    let mut child = dir.spawn_sync(&["--metrics", &addr, "--no-progress"]);
    let waited = bench::wait_applied(&mut child, &addr, TABLE, n as u64, start, Duration::from_secs(60)).await;
    let body = bench::http_get(&addr, "/metrics").await.unwrap_or_default();
    let limit = bench::metric(&body, "ferry_write_concurrency", TABLE).unwrap_or(f64::NAN);
    terminate(&child);
    let _ = child.wait();
    dir.keep_log(if extra.is_empty() { "default" } else { "fixed" });
    let took = waited.map_err(|e| format!("{e}\n{}", dir.logs()))?;
    let diff = bench::compare_by_keys(&src.client(sa), &far.client(&da), keys).await?;
    bench::drop_table(&far.client(&da)).await;
    if !diff.is_equal() {
        return Err(format!("DESTINATION DIFFERS FROM SOURCE: {diff}\n{}", dir.logs()));
    }
    Ok((n as f64 / took.done.as_secs_f64(), limit))
}
