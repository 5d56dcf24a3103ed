//! End-to-end benchmark of ferry against one destination DynamoDB Local on 127.0.0.1 (the source
//! streams are served by a second one, see [`Rig`]): the endpoint's BatchWriteItem ceiling (fresh
//! puts, and each mix's own changes), a naive one-record-at-a-time stream replayer, the real
//! `ferry` binary replaying a stream of N changes (uniform and hot-key mixes), and the
//! replication lag under a steady write load. Every number printed is measured in this run. The
//! destination runs on cores of its own (`FERRY_BENCH_SHARED_CORES=1`: on all of them).
//!
//!   cargo bench --bench e2e
//!   FERRY_BENCH_N=20000 FERRY_BENCH_LAG_SECS=10 FERRY_BENCH_RATE=1000 cargo bench --bench e2e
//!   FERRY_LOG=info,ferry::apply::concurrency=debug FERRY_BENCH_LOGS=/tmp cargo bench --bench e2e
//!       # keeps each mix's ferry log (here with the limit's every window)
//!
//! Writes `<target>/ferry-bench/e2e.json` and `docs/bench/e2e.png`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::StreamViewType;
use ferry::item::Item;
use ferry_rig::bench::{self, LagProbe, LagReport, Mix, TABLE, cpu};
use ferry_rig::compare::{Diff, compare};
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::{Account, DynamoLocal};
use serde_json::json;

#[path = "e2e/ceiling.rs"]
mod ceiling;
#[path = "e2e/lag.rs"]
mod lag;
#[path = "e2e/report.rs"]
mod report;
use ceiling::{ceiling, mix_ceiling};
use lag::{Lag, lag_phase};
use report::{ddb_version, draw, json_report, now_utc, print_table};

const CEILING_WRITERS: [usize; 4] = [8, 16, 32, 64];
/// Items of the unmeasured warm-up load (the JVM's JIT) before the ceiling runs.
const WARMUP_ITEMS: usize = 20_000;
/// Replays the whole stream: the streams here are minutes old.
const REPLAY_OVERLAP_SECS: u64 = 3600;
const STREAM_WRITERS: usize = 16;
const MIX_CEILING_WRITERS: [usize; 2] = [16, 32];
const NAIVE_PREFIX: usize = 20_000;
const LAG_KEYS: usize = 5_000;
const LAG_WRITERS: usize = 64;
const SCAN_COMPARE_MAX_ITEMS: i64 = 30_000;
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

struct Args {
    n: usize,
    lag_secs: u64,
    rate: u64,
}

impl Args {
    fn from_env() -> Args {
        Args {
            n: bench::env_num("FERRY_BENCH_N", 200_000),
            lag_secs: bench::env_num("FERRY_BENCH_LAG_SECS", 60),
            rate: bench::env_num("FERRY_BENCH_RATE", 1_000),
        }
    }
}

/// What one mix measured.
struct MixResult {
    name: &'static str,
    /// The tuned BatchWriteItem load of this mix's own changes (see [`mix_ceiling`]): the mean of
    /// the best run before ferry's and the same writers' run after it.
    ceiling: f64,
    ceiling_before: f64,
    ceiling_after: f64,
    source_write_rate: f64,
    naive_records: usize,
    naive_rate: f64,
    ferry: FerryResult,
}

struct FerryResult {
    records: u64,
    secs: f64,
    /// When `/metrics` first showed applied records (startup, capture, destination creation).
    first_secs: f64,
    peak_rss_kb: u64,
    cpu_secs: f64,
    /// CPU of ferry and of both servers while ferry applied the changes.
    cpu: cpu::Split,
    compare: String,
}

impl FerryResult {
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn cpu_per_100k(&self) -> f64 {
        self.cpu_secs * 100_000.0 / self.records as f64
    }
}

fn main() {
    let args = Args::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    if std::env::var_os("FERRY_BENCH_REDRAW").is_some() {
        // Only redraw the chart from the last run's JSON (no measuring).
        let path = bench::report_path("e2e")
            .and_then(|p| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display())));
        match path.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
            Ok(report) => draw(&report),
            Err(e) => eprintln!("cannot redraw: {e}"),
        }
        return;
    }
    if let Err(e) = rt.block_on(run(&args)) {
        eprintln!("\nferry e2e benchmark FAILED: {e}");
        std::process::exit(1);
    }
    println!("\n(bench took {:.0} s)", started.elapsed().as_secs_f64());
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[e2e] {}", msg.as_ref());
}

async fn run(args: &Args) -> Result<(), String> {
    let ferry_bin = ferry_bin()?;
    say("starting DynamoDB Local (deploy/local/start.sh)");
    let rig = Rig::start()?;
    let version = ddb_version();
    say(format!(
        "DynamoDB Local {version}: destination (measured endpoint) at {}, source streams at {}",
        rig.dst.endpoint,
        rig.src().endpoint
    ));
    say(bench::layout(&rig.cores));
    let date = now_utc();
    let mixes_run = [(Mix::Uniform, "uniform"), (Mix::Hot, "hot-key")];
    if let Ok(only) = std::env::var("FERRY_BENCH_ONLY") {
        // A quick look at one mix (no ceiling, lag or report): `FERRY_BENCH_ONLY=uniform` or `hot`.
        for (mix, name) in mixes_run.into_iter().filter(|(_, n)| n.starts_with(only.as_str())) {
            mix_phase(&rig, &ferry_bin, mix, name, args.n).await?;
        }
        return Ok(());
    }
    let ceiling = ceiling(&rig.dst, args.n).await?;
    let mut mixes = Vec::new();
    for (mix, name) in mixes_run {
        mixes.push(mix_phase(&rig, &ferry_bin, mix, name, args.n).await?);
    }
    let layout = match &rig.cores {
        // The lag phase's steady writes to the source need every core; it measures delay.
        Some(c) => c
            .share(&[rig.dst.pid, rig.src().pid])
            .map(|()| "destination on its own core")?,
        None => "all processes on all cores",
    };
    let lag = lag_phase(&rig, &ferry_bin, args).await?;
    let title = format!(
        "ferry e2e benchmark — DynamoDB Local {version} on 127.0.0.1, N = {} changes, ~1 KB items, {date}, {layout}",
        args.n
    );
    print_table(&title, ceiling, &mixes, &lag, args);
    let report = json_report(&title, ceiling, &mixes, &lag, args);
    bench::write_report("e2e", &report)?;
    draw(&report);
    Ok(())
}

/// The servers: every write ferry or a baseline makes goes to `dst`, the endpoint whose ceiling is
/// measured. The source tables and their streams live in a second DynamoDB Local process, as a
/// real source lives in another account or Region: in one JVM, the source's GetRecords work would
/// compete with the destination's writes and be counted against ferry. `FERRY_BENCH_ONE_ENDPOINT=1`
/// puts both in one process. The destination has cores of its own ([`bench::Cores`]).
struct Rig {
    dst: DynamoLocal,
    src: Option<DynamoLocal>,
    cores: Option<bench::Cores>,
}

impl Rig {
    fn start() -> Result<Rig, String> {
        let cores = bench::Cores::split();
        let dst = bench::start_destination(&cores)?;
        let src = match std::env::var("FERRY_BENCH_ONE_ENDPOINT").as_deref() {
            Ok("1") => None,
            _ => Some(DynamoLocal::start()?),
        };
        Ok(Rig { dst, src, cores })
    }

    fn src(&self) -> &DynamoLocal {
        self.src.as_ref().unwrap_or(&self.dst)
    }
}

/// The `ferry` binary cargo built for this bench (same profile).
fn ferry_bin() -> Result<PathBuf, String> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ferry"));
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: run the bench through `cargo bench --bench e2e` (which builds it), \
             or `cargo build --release --bin ferry`",
            bin.display()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Phases

async fn mix_phase(rig: &Rig, ferry_bin: &Path, mix: Mix, name: &'static str, n: usize) -> Result<MixResult, String> {
    let sa = Account::fresh("src");
    let src = rig.src().client(&sa);
    bench::create_plain_table(&src, Some(StreamViewType::NewAndOldImages)).await?;
    let changes = bench::changes(mix, n, 42);
    let keys = bench::keys_touched(&changes);
    let lanes = bench::plan_batches(&changes, STREAM_WRITERS);
    let (ceiling_before, ceiling_cpu, writers) = mix_ceiling(&rig.dst, &changes, name, &MIX_CEILING_WRITERS).await?;
    let took = bench::write_lanes(&src, TABLE, lanes).await?;
    let source_write_rate = n as f64 / took.as_secs_f64();
    say(format!(
        "{name}: wrote {n} changes to the source stream in {:.1} s ({source_write_rate:.0}/s)",
        took.as_secs_f64()
    ));
    let (naive_records, naive_rate) = naive(rig, &sa, n).await?;
    say(format!(
        "{name}: naive replay of the first {naive_records} records: {naive_rate:.0} records/s"
    ));
    let ferry = ferry_phase(rig, ferry_bin, &sa, n as u64, name, &keys).await?;
    say(format!(
        "{name}: ferry applied {} records in {:.2} s ({:.0}/s; first applied seen after {:.2} s), peak RSS {} MB, CPU {:.1} s",
        ferry.records,
        ferry.secs,
        ferry.rate(),
        ferry.first_secs,
        ferry.peak_rss_kb / 1024,
        ferry.cpu_secs
    ));
    // DynamoDB Local's cost per item drifts from one load to the next in one JVM: the ceiling is
    // measured again after ferry's run, as export_load does, and ferry is judged on the mean.
    let after = format!("{name} (after ferry)");
    let (ceiling_after, after_cpu, _) = mix_ceiling(&rig.dst, &changes, &after, &[writers]).await?;
    say(format!(
        "{name}: CPU of the ceiling's best run: {}",
        ceiling_cpu.describe(n)
    ));
    say(format!("{name}: CPU while ferry applied: {}", ferry.cpu.describe(n)));
    say(format!(
        "{name}: CPU of the ceiling after ferry: {}",
        after_cpu.describe(n)
    ));
    bench::drop_table(&src).await;
    Ok(MixResult {
        name,
        ceiling: (ceiling_before + ceiling_after) / 2.0,
        ceiling_before,
        ceiling_after,
        source_write_rate,
        naive_records,
        naive_rate,
        ferry,
    })
}

async fn naive(rig: &Rig, sa: &Account, n: usize) -> Result<(usize, f64), String> {
    let dst = rig.dst.client(&Account::fresh("naive"));
    bench::create_plain_table(&dst, None).await?;
    let arn = bench::stream_arn(&rig.src().client(sa), TABLE).await?;
    let streams = rig.src().streams_client(sa);
    let (records, took) = bench::naive_replay(&streams, &arn, &dst, TABLE, n.min(NAIVE_PREFIX)).await?;
    bench::drop_table(&dst).await;
    Ok((records, records as f64 / took.as_secs_f64()))
}

fn ferry_dir(ferry_bin: &Path, work: &Path, rig: &Rig, sa: &Account, da: &Account) -> FerryDir {
    let toml = format!(
        "[[table]]\nsource = \"{TABLE}\"\nsnapshot = \"none\"\nreplay_overlap_seconds = {REPLAY_OVERLAP_SECS}\n"
    );
    FerryDir::between(ferry_bin, work, (rig.src(), sa), (&rig.dst, da), &toml)
}

async fn ferry_phase(
    rig: &Rig,
    ferry_bin: &Path,
    sa: &Account,
    n: u64,
    name: &str,
    keys: &[Item],
) -> Result<FerryResult, String> {
    let da = Account::fresh("dst");
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ferry = ferry_dir(ferry_bin, work.path(), rig, sa, &da);
    let addr = format!("127.0.0.1:{}", bench::free_port());
    let start = Instant::now();
    let meter = cpu::Meter::start(&[("source JVM", rig.src().pid), ("destination JVM", rig.dst.pid)]);
    let mut child = ferry.spawn_sync(&["--metrics", &addr, "--no-progress"]);
    let waited = bench::wait_applied(&mut child, &addr, TABLE, n, start, Duration::from_secs(60)).await;
    let body = bench::http_get(&addr, "/metrics").await.unwrap_or_default();
    let m = |name| bench::metric(&body, name, TABLE).unwrap_or(f64::NAN);
    say(format!(
        "{name}: ferry ended at {} batches in flight, {:.1} items per BatchWriteItem",
        m("ferry_write_concurrency"),
        m("ferry_items_written_total") / m("ferry_write_calls_total")
    ));
    let pid = child.id();
    let (peak_rss_kb, cpu_secs) = (bench::peak_rss_kb(pid), bench::cpu_seconds(pid));
    let split = meter.stop(&[("ferry", cpu_secs.unwrap_or(f64::NAN))]);
    stop(child).await;
    ferry.keep_log(name);
    let took = waited.map_err(|e| format!("{name}: {e}\n{}", ferry.logs()))?;
    let (diff, how) = verify(&rig.src().client(sa), &rig.dst.client(&da), keys).await?;
    say(format!("{name}: {how}: {diff}"));
    bench::drop_table(&rig.dst.client(&da)).await;
    if !diff.is_equal() {
        return Err(format!(
            "{name}: DESTINATION DIFFERS FROM SOURCE after ferry: {diff}\n{}",
            ferry.logs()
        ));
    }
    Ok(FerryResult {
        records: n,
        secs: took.done.as_secs_f64(),
        first_secs: took.first.as_secs_f64(),
        peak_rss_kb: peak_rss_kb.ok_or("no VmHWM in /proc")?,
        cpu_secs: cpu_secs.ok_or("no CPU times in /proc")?,
        cpu: split,
        compare: format!("{how}: equal ({diff})"),
    })
}

/// Source vs destination: `compare::compare` (full Scans) up to `SCAN_COMPARE_MAX_ITEMS` source
/// items, key by key over every written key above that (DynamoDB Local's Scan gets slower per page
/// as a table grows: ~10 min for 160k items). `FERRY_BENCH_SCAN_COMPARE=1` forces the Scan, `=0`
/// the key-by-key comparison.
async fn verify(src: &Client, dst: &Client, keys: &[Item]) -> Result<(Diff, String), String> {
    let scan = match std::env::var("FERRY_BENCH_SCAN_COMPARE").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => bench::item_count(src).await? <= SCAN_COMPARE_MAX_ITEMS,
    };
    let started = Instant::now();
    let (diff, how) = if scan {
        (compare(src, TABLE, dst, TABLE).await?, "compare::compare (Scan)")
    } else {
        (
            bench::compare_by_keys(src, dst, keys).await?,
            "key-by-key compare (BatchGetItem + ItemCount)",
        )
    };
    let how = format!("{how}, {:.1} s", started.elapsed().as_secs_f64());
    Ok((diff, how))
}

/// SIGTERM, then a kill if ferry is still running after 15 s.
async fn stop(mut child: Running) {
    terminate(&child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say("ferry did not stop within 15 s of SIGTERM; killing it");
}
