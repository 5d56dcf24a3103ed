//! Soak benchmark (not a test): the real `ferry sync` for a long run on the rig (DynamoDB Local
//! started by `deploy/local/start.sh`, two accounts) under steady random writes (puts, updates,
//! conditional writes and deletes over a few thousand keys), with a forced shard rollover every
//! minute and a `kill -9` (ferry restarted at once) every 5 minutes. Every 5 s it samples the
//! running ferry's `/proc/<pid>/status` (VmRSS, VmHWM), `/proc/<pid>/fd` and `ferry status --json`;
//! it reports per window (5 min) max RSS, max fds, writes, records applied and lag. At the end it
//! stops the writes, waits for ferry to catch up, compares both tables item by item and runs
//! `ferry verify`. Verdict: RSS and fd growth after the first window (last window's max against the
//! max of the first window after it) and whether the tables are equal; exits non-zero if they
//! differ. Writes `<target>/ferry-bench/soak.json`.
//!
//!   cargo bench --bench soak                                  # 30 minutes
//!   FERRY_SOAK_MINUTES=4 FERRY_SOAK_KILL_SECS=90 FERRY_SOAK_ROLLOVER_SECS=30 cargo bench --bench soak
//!
//! FERRY_SOAK_WPS sets the write rate (200/s); FERRY_SOAK_WINDOW_SECS the window (300 s, or a
//! quarter of the run when the run is shorter than two windows); FERRY_BIN overrides the binary.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_rig::bench;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::compare::{Diff, compare};
use ferry_rig::data::{create_table, enable_stream, load, rich_item};
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::workload::{Counts, Workload};
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[path = "soak/report.rs"]
mod report;
use report::{Args, End, Run, Sample, report};

const TABLE: &str = "Orders";
const SAMPLE_SECS: f64 = 5.0;
/// Items in the source before its stream is on (the first life copies them by scan).
const SEED_ITEMS: i64 = 2_000;
/// Keys the writes spread over, besides a few hot ones.
const COLD_KEYS: i64 = 3_000;
/// Concurrent writers (each round's operations are shared among them).
const WRITERS: usize = 8;
/// Limits of the end phase (a failure of the run, not a measurement).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);
const EQUAL_TIMEOUT: Duration = Duration::from_secs(120);

impl Args {
    fn from_env() -> Args {
        let secs = bench::env_num("FERRY_SOAK_MINUTES", 30.0) * 60.0;
        let default_window = if secs < 600.0 { secs / 4.0 } else { 300.0 };
        Args {
            secs,
            rollover_secs: bench::env_num("FERRY_SOAK_ROLLOVER_SECS", 60.0),
            kill_secs: bench::env_num("FERRY_SOAK_KILL_SECS", 300.0),
            wps: bench::env_num("FERRY_SOAK_WPS", 200),
            window_secs: bench::env_num("FERRY_SOAK_WINDOW_SECS", default_window),
        }
    }
}

/// A `VmXXX:` figure of `/proc/<pid>/status`, in KB.
fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[soak] {}", msg.as_ref());
}

/// Writes at `wps` until `stop`: every 100 ms the workload makes the operations due so far (a new
/// seed each round, so the keys keep changing). Behind schedule, it writes as fast as it can.
async fn steady_writes(wl: Workload, wps: u64, stop: CancellationToken, counts: Arc<Counts>) -> Result<(), String> {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut round = wl.seed;
    while !stop.is_cancelled() {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * wps as f64) as u64;
        let behind = due.saturating_sub(counts.total()).min(wps);
        if behind == 0 {
            continue;
        }
        round += 1;
        let w = Workload {
            seed: round,
            ..wl.clone()
        };
        w.run_counting(stop.clone(), Some(behind), counts.clone()).await?;
    }
    Ok(())
}

/// The soak itself: samples, rollovers and kills until `args.secs` have passed.
async fn soak(args: &Args, ddb: &DynamoLocal, f: &FerryDir, counts: &Counts) -> Result<(Run, Running), String> {
    let mut run = Run::default();
    let t0 = Instant::now();
    let mut child = f.spawn_sync(&["--no-progress"]);
    let mut life = 1u32;
    let (mut next_sample, mut next_roll, mut next_kill) = (0.0, args.rollover_secs, args.kill_secs);
    loop {
        let t = t0.elapsed().as_secs_f64();
        if t >= args.secs {
            return Ok((run, child));
        }
        if let Ok(Some(status)) = child.try_wait() {
            run.incidents
                .push(format!("{t:.0}s: ferry (life {life}) exited on its own: {status}"));
            say(format!("ferry exited on its own ({status}); restarting\n{}", f.logs()));
            child = f.spawn_sync(&["--no-progress"]);
            life += 1;
        }
        if t >= next_roll {
            let n = ddb.rollover()?;
            run.rollovers.push(t);
            say(format!("{t:.0}s: rollover ({n} databases)"));
            next_roll += args.rollover_secs;
        }
        if t >= next_kill {
            child.kill().map_err(|e| format!("kill -9: {e}"))?;
            let _ = child.wait();
            child = f.spawn_sync(&["--no-progress"]);
            life += 1;
            run.kills.push(t);
            say(format!("{t:.0}s: kill -9, ferry restarted (life {life})"));
            next_kill += args.kill_secs;
        }
        if t >= next_sample {
            let pid = child.id();
            let st = f.table_status(TABLE).unwrap_or(Value::Null);
            if let Some(e) = st["error"].as_str() {
                run.incidents.push(format!("{t:.0}s: status error: {e}"));
            }
            run.samples.push(Sample {
                t,
                life,
                rss_kb: proc_kb(pid, "VmRSS:").unwrap_or(0),
                hwm_kb: proc_kb(pid, "VmHWM:").unwrap_or(0),
                fds: open_fds(pid).unwrap_or(0),
                applied: st["records_applied"].as_i64().unwrap_or(0),
                lag: st["lag_seconds"].as_f64(),
                writes: counts.total(),
            });
            next_sample += SAMPLE_SECS;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// With ferry still running: waits until `ferry status` shows the table caught up (the seconds
/// taken, None after [`CATCH_UP_TIMEOUT`]), then until a full comparison finds the tables equal
/// (the last records may still be in flight) or [`EQUAL_TIMEOUT`] passes.
async fn settle(f: &FerryDir, src: &aws_sdk_dynamodb::Client, dst: &aws_sdk_dynamodb::Client) -> (Option<f64>, Diff) {
    let start = Instant::now();
    let mut caught_up = None;
    while caught_up.is_none() && start.elapsed() < CATCH_UP_TIMEOUT {
        let t = f.table_status(TABLE).unwrap_or(Value::Null);
        if t["phase"] == "streaming" && t["caught_up"] == true && t["daemon_running"] == true {
            caught_up = Some(start.elapsed().as_secs_f64());
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let deadline = Instant::now() + EQUAL_TIMEOUT;
    loop {
        let d = compare(src, TABLE, dst, TABLE).await.unwrap_or_else(|e| Diff {
            missing: vec![format!("comparison failed: {e}")],
            ..Diff::default()
        });
        if d.is_equal() || Instant::now() > deadline {
            return (caught_up, d);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the soak; Ok(true) when the tables are equal at the end.
async fn run(args: &Args) -> Result<bool, String> {
    let bin = std::env::var_os("FERRY_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ferry")));
    say("starting DynamoDB Local (deploy/local/start.sh)");
    let ddb = DynamoLocal::start()?;
    let (sa, da) = (Account::fresh("soaksrc"), Account::fresh("soakdst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    create_table(&src, TABLE, None).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let seed = (0..SEED_ITEMS).map(|i| rich_item(&format!("seed-{}", i % 97), i, &mut rng));
    load(&src, TABLE, seed.collect()).await;
    enable_stream(&src, TABLE, StreamViewType::NewAndOldImages).await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let f = FerryDir::new(
        &bin,
        dir.path(),
        &ddb,
        &sa,
        &da,
        &format!("[[table]]\nsource = \"{TABLE}\"\n"),
    );

    let stop = CancellationToken::new();
    let counts = Arc::new(Counts::default());
    let wl = Workload {
        cold_keys: COLD_KEYS,
        writers: WRITERS,
        ..Workload::new(src.clone(), TABLE)
    };
    let writes = tokio::spawn(steady_writes(wl, args.wps, stop.clone(), counts.clone()));
    say(format!(
        "soak: {:.1} min, {} writes/s, rollover every {:.0} s, kill -9 every {:.0} s, windows of {:.0} s",
        args.secs / 60.0,
        args.wps,
        args.rollover_secs,
        args.kill_secs,
        args.window_secs
    ));
    let soaked = soak(args, &ddb, &f, &counts).await;
    stop.cancel();
    let wrote = writes.await.map_err(|e| e.to_string())?;
    let (run, mut child) = soaked?;
    wrote?;
    say(format!(
        "writes stopped after {} operations; waiting to catch up",
        counts.total()
    ));
    let (catch_up_s, diff) = settle(&f, &src, &dst).await;
    terminate(&child);
    let _ = child.wait();
    let out = f.run(&["verify", "-c", "ferry.toml", "--json"]);
    let verify: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let verify_equal = out.status.success() && verify[0]["equal"] == true;
    if !verify_equal {
        say(format!(
            "ferry verify: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    let end = End {
        operations: counts.total(),
        catch_up_s,
        diff,
        verify,
        verify_equal,
    };
    report(args, &run, &end)
}

fn main() {
    let args = Args::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(&args)) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("\nsoak: the tables differ at the end");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("\nsoak benchmark FAILED: {e}");
            std::process::exit(1);
        }
    }
}
