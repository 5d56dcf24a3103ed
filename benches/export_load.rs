//! Bulk load from a point-in-time export: N generated ~1 KB items in a real-format export in moto's
//! S3 (manifests, MD5s, 16 gzip'd files), loaded into DynamoDB Local by the real `ferry` binary
//! (`snapshot = "export"`, ferry's loader), against a raw concurrent BatchWriteItem load of the same
//! items into the same DynamoDB Local, measured in the same run, once before ferry and once after.
//! Prints items/s, the ratio to the raw loads' mean, CPU per 100k items, and ferry's peak RSS.
//! DynamoDB Local runs on cores of its own (`FERRY_BENCH_SHARED_CORES=1`: on all of them).
//! Targets: ratio ≥ 0.95 (issue 16), peak RSS ≤ 256 MB.
//!
//!   cargo bench --bench export_load                       # N = 1,000,000
//!   FERRY_BENCH_N=20000 cargo bench --bench export_load   # a quick run
//!   FERRY_LOG=info,ferry::apply::concurrency=debug FERRY_BENCH_LOGS=/tmp cargo bench --bench export_load
//!       # keeps ferry's log (here with the limit's every window)

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, StreamViewType, WriteRequest};
use ferry::item::Item;
use ferry_rig::bench::{Cores, cpu_seconds, layout, peak_rss_kb, start_destination};
use ferry_rig::data::{create_table, send_batch, sized_item};
use ferry_rig::moto::{ExportSpec, Moto, default_credentials, write_export};
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::{Account, DynamoLocal};
use futures::StreamExt;

const FILES: u64 = 16;
/// Concurrent BatchWriteItem calls of the raw load (ferry's default write_concurrency is 16).
const RAW_WRITERS: usize = 32;
/// Items of the unmeasured warm-up load (DynamoDB Local's JIT) before anything is measured. After
/// 20,000 the JVM's CPU per item still fell by a quarter between the two raw loads of one run.
const WARMUP_ITEMS: u64 = 200_000;

fn item(i: u64) -> Item {
    sized_item(&format!("p{}", i % 100_003), i as i64, 1000)
}

async fn count(c: &Client, table: &str) -> i64 {
    c.describe_table()
        .table_name(table)
        .send()
        .await
        .ok()
        .and_then(|o| o.table)
        .and_then(|t| t.item_count)
        .unwrap_or(-1)
}

/// The same items with BatchWriteItem, RAW_WRITERS calls in flight; items/s.
async fn raw_load(c: &Client, table: &str, n: u64) -> f64 {
    let started = Instant::now();
    let batches = (0..n.div_ceil(25)).map(|b| {
        let reqs: Vec<WriteRequest> = (b * 25..((b + 1) * 25).min(n))
            .map(|i| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item(i))).build().unwrap())
                    .build()
            })
            .collect();
        let c = c.clone();
        async move { send_batch(&c, table, reqs).await }
    });
    let mut s = futures::stream::iter(batches).buffer_unordered(RAW_WRITERS);
    while let Some(r) = s.next().await {
        r.expect("raw BatchWriteItem");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// A raw load of the N items into a fresh database: items/s, and the JVM's CPU seconds.
async fn raw_baseline(ddb: &DynamoLocal, account: &str, n: u64) -> (f64, f64) {
    let raw = ddb.client(&Account::fresh(account));
    create_table(&raw, "Raw", None).await;
    eprintln!("raw BatchWriteItem load ({account}) ...");
    let jvm = jvm_cpu(ddb);
    let rate = raw_load(&raw, "Raw", n).await;
    let jvm = jvm_cpu(ddb) - jvm;
    assert_eq!(count(&raw, "Raw").await, n as i64, "raw load incomplete");
    (rate, jvm)
}

/// DynamoDB Local's CPU seconds so far (NaN when this process did not start it).
fn jvm_cpu(ddb: &DynamoLocal) -> f64 {
    ddb.pid.and_then(cpu_seconds).unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("FERRY_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // DynamoDB Local on cores of its own (`bench::Cores`): moto, ferry and the raw writer on the rest.
    let cores = Cores::split();
    let ddb = &start_destination(&cores).expect("DynamoDB Local");
    let moto = Moto::shared();
    let s3 = moto.s3(default_credentials());
    eprintln!("writing a {n}-item export to moto S3 ...");
    let spec = ExportSpec {
        bucket: "ferry-bench",
        prefix: "bench",
        export_id: "01700000000000-bench000",
        export_time_ms: ferry::clock::now_ms(),
        n,
        files: FILES,
    };
    let export = write_export(&s3, &spec, item).await.expect("export");

    let warm = ddb.client(&Account::fresh("warmup"));
    create_table(&warm, "Warm", None).await;
    eprintln!("warm-up load ...");
    raw_load(&warm, "Warm", WARMUP_ITEMS.min(n)).await;

    // Raw baseline into its own database, before ferry and again after it (A-B-A): DynamoDB Local's
    // speed drifts within a run (its CPU per item moved by up to a quarter from one load to the
    // next), so one raw load would measure the drift along with ferry.
    let (raw_before, raw_jvm_before) = raw_baseline(ddb, "rawbefore", n).await;

    // ferry: an empty source with a stream (nothing to replay), the export reused via export_s3.
    let (sa, da) = (Account::fresh("bsrc"), Account::fresh("bdst"));
    create_table(&ddb.client(&sa), "Orders", Some(StreamViewType::NewAndOldImages)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[source]\nprofile = \"src\"\nendpoint_url = \"{d}\"\n[source.endpoints]\ns3 = \"{m}\"\n\n\
         [destination]\nprofile = \"dst\"\nendpoint_url = \"{d}\"\n[destination.endpoints]\ns3 = \"{m}\"\n\n\
         [state]\npath = \"state/ferry.db\"\n\n[[table]]\nsource = \"Orders\"\nsnapshot = \"export\"\nexport_s3 = \"{url}\"\n",
        d = ddb.endpoint,
        m = moto.endpoint,
        url = export.s3_url(),
    );
    let bin = std::env::var_os("FERRY_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_ferry")));
    let ferry = FerryDir::custom(&bin, dir.path(), &sa, &da, &config);
    eprintln!("ferry load ...");
    let jvm = jvm_cpu(ddb);
    let addr = format!("127.0.0.1:{}", ferry_rig::bench::free_port());
    let child = ferry.spawn_sync(&["--metrics", &addr, "--no-progress"]);
    let pid = child.id();
    let mut started = None;
    let mut peak = 0;
    let elapsed = loop {
        let t = ferry.table_status("Orders");
        peak = peak.max(peak_rss_kb(pid).unwrap_or(0));
        if let Some(t) = &t {
            if t["phase"] == "snapshot" && started.is_none() {
                started = Some(Instant::now());
            }
            if t["snapshot"]["done"] == true {
                break started.map(|s| s.elapsed()).unwrap_or_default();
            }
            assert!(t["error"].is_null(), "ferry failed: {}\n{}", t["error"], ferry.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    peak = peak.max(peak_rss_kb(pid).unwrap_or(0));
    let (ferry_cpu, ferry_jvm) = (cpu_seconds(pid).unwrap_or(f64::NAN), jvm_cpu(ddb) - jvm);
    let body = ferry_rig::bench::http_get(&addr, "/metrics").await.unwrap_or_default();
    let m = |name| ferry_rig::bench::metric(&body, name, "Orders").unwrap_or(f64::NAN);
    let (per_call, in_flight) = (
        m("ferry_items_written_total") / m("ferry_write_calls_total"),
        m("ferry_write_concurrency"),
    );
    terminate(&child);
    ferry.keep_log("export");
    let dst = ddb.client(&da);
    assert_eq!(
        count(&dst, "Orders").await,
        n as i64,
        "ferry load incomplete\n{}",
        ferry.logs()
    );
    let (raw_after, raw_jvm_after) = raw_baseline(ddb, "rawafter", n).await;
    let raw_rate = (raw_before + raw_after) / 2.0;
    let per_100k = |secs: f64| secs * 100_000.0 / n as f64;
    let rate = n as f64 / elapsed.as_secs_f64().max(0.001);
    println!("export load, N = {n} items of ~1 KB, {FILES} files; {}", layout(&cores));
    println!("  raw BatchWriteItem ({RAW_WRITERS} in flight), before ferry: {raw_before:>10.0} items/s");
    println!("  raw BatchWriteItem, after ferry:                {raw_after:>10.0} items/s");
    println!("  raw, mean of the two:            {raw_rate:>10.0} items/s");
    println!(
        "  ferry loader:                     {rate:>10.0} items/s  ({:.1} s)",
        elapsed.as_secs_f64()
    );
    println!(
        "  ratio ferry / raw:                {:>10.2}   (target >= 0.95)",
        rate / raw_rate
    );
    println!("  ferry's writes: {per_call:.1} items per BatchWriteItem, {in_flight} in flight at the end");
    println!(
        "  ferry peak RSS:                   {:>10.0} MB  (target <= 256)",
        peak as f64 / 1024.0
    );
    // Everything shares the machine's cores: what ferry (and moto, serving the export) spends is
    // CPU the JVM does not get during ferry's load, and the raw loads have no such cost.
    println!(
        "  CPU s per 100k items: raw loads, DynamoDB Local {:.2} / {:.2}; ferry's load, DynamoDB Local {:.2} + ferry {:.2} (moto not counted)",
        per_100k(raw_jvm_before),
        per_100k(raw_jvm_after),
        per_100k(ferry_jvm),
        per_100k(ferry_cpu)
    );
}
