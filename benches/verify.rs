//! Benchmark of `ferry verify` against DynamoDB Local on 127.0.0.1: N ~1 KB items in a source and
//! an equal destination table (two accounts), then, in the same run, the endpoint's raw parallel
//! scan rate (one table, and both tables at once, as verify reads them) and the real `ferry`
//! binary's verify throughput. Every number printed is measured in this run.
//!
//!   cargo bench --bench verify                      # N = 1,000,000
//!   FERRY_BENCH_N=20000 cargo bench --bench verify  # a quick run
//!
//! FERRY_BENCH_SEGMENTS sets TotalSegments for both the raw scans and verify (default: what
//! `ferry verify` picks for N items, one segment per ~4,000); FERRY_BIN overrides the `ferry`
//! binary.

use std::path::PathBuf;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use ferry_rig::bench::{self, Change, TABLE};
use ferry_rig::process::FerryDir;
use ferry_rig::{Account, DynamoLocal};

const LOAD_WRITERS: usize = 16;

/// Items in the table, read by a parallel scan that only counts them (the endpoint's scan rate).
async fn raw_scan(c: &Client, segments: i32) -> Result<u64, String> {
    let tasks: Vec<_> = (0..segments)
        .map(|s| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut start = None;
                loop {
                    let page = c
                        .scan()
                        .table_name(TABLE)
                        .segment(s)
                        .total_segments(segments)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(|e| format!("Scan: {e:?}"))?;
                    n += page.items().len() as u64;
                    match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                        Some(k) => start = Some(k),
                        None => return Ok::<_, String>(n),
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total)
}

async fn load(c: &Client, n: usize) -> Result<(), String> {
    bench::create_plain_table(c, None).await?;
    let changes: Vec<Change> = (0..n as i64)
        .map(|i| Change::Put(bench::item(&format!("k{i:09}"), i, 1)))
        .collect();
    bench::write_lanes(c, TABLE, bench::plan_batches(&changes, LOAD_WRITERS)).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let n: usize = bench::env_num("FERRY_BENCH_N", 1_000_000);
    let segments: i32 = bench::env_num(
        "FERRY_BENCH_SEGMENTS",
        ferry::snapshot::scan::segments_for(None, n as u64) as i32,
    );
    let ddb = DynamoLocal::start()?;
    let (sa, da) = (Account::fresh("vsrc"), Account::fresh("vdst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    let t = Instant::now();
    tokio::try_join!(load(&src, n), load(&dst, n))?;
    println!("loaded {n} items into each table in {:.1}s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let one = raw_scan(&src, segments).await?;
    let one_rate = one as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (a, b) = tokio::try_join!(raw_scan(&src, segments), raw_scan(&dst, segments))?;
    let both_rate = a.min(b) as f64 / t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ferry")));
    let f = FerryDir::new(
        &bin,
        dir.path(),
        &ddb,
        &sa,
        &da,
        &format!("[[table]]\nsource = \"{TABLE}\"\n"),
    );
    let seg = segments.to_string();
    let t = Instant::now();
    let out = f.run(&["verify", "-c", "ferry.toml", "--json", "--segments", &seg]);
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "ferry verify failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let compared = report[0]["source_items"].as_u64().unwrap_or(0);
    let verify_rate = compared as f64 / secs;

    println!("\nverify benchmark, N = {n} items of ~1 KB per table, TotalSegments = {segments}");
    println!("| measure | items/s |");
    println!("| --- | --- |");
    println!("| raw parallel scan, one table | {one_rate:.0} |");
    println!("| raw parallel scan, both tables at once (per table) | {both_rate:.0} |");
    println!("| ferry verify (items compared per second, process start to exit) | {verify_rate:.0} |");
    println!(
        "verify / raw scan of both tables: {:.2} (equal: {}, segments equal by digest: {})",
        verify_rate / both_rate,
        report[0]["equal"],
        report[0]["segments_equal"]
    );
    Ok(())
}
