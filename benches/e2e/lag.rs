//! The e2e bench's lag phase: ferry streams while a steady writer runs against the source, and a
//! probe measures how long each write takes to reach the destination.

use super::*;

/// Writes in the lag phase's first seconds also time its start: the reader polls an idle shard
/// every 250 ms until the first records come, and the first second was the slowest of most runs.
/// The lag at a steady rate is measured after them.
pub(super) const LAG_RAMP: Duration = Duration::from_secs(5);

pub(super) struct Lag {
    pub(super) report: LagReport,
    pub(super) sorted_ms: Vec<f64>,
    /// The writes made after [`LAG_RAMP`].
    pub(super) steady_sorted_ms: Vec<f64>,
    pub(super) per_second: Vec<(u64, f64, f64)>,
}

pub(super) async fn lag_phase(rig: &Rig, ferry_bin: &Path, args: &Args) -> Result<Lag, String> {
    let (sa, da) = (Account::fresh("lagsrc"), Account::fresh("lagdst"));
    let (src, dst) = (rig.src().client(&sa), rig.dst.client(&da));
    bench::create_plain_table(&src, Some(StreamViewType::NewAndOldImages)).await?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ferry = ferry_dir(ferry_bin, work.path(), rig, &sa, &da);
    let addr = format!("127.0.0.1:{}", bench::free_port());
    let child = ferry.spawn_sync(&["--metrics", &addr, "--no-progress"]);
    wait_streaming(&ferry).await?;
    say(format!(
        "lag: ferry is tailing; {} writes/s for {} s over {LAG_KEYS} keys",
        args.rate, args.lag_secs
    ));
    let probe = LagProbe {
        src: src.clone(),
        dst: dst.clone(),
        table: TABLE.into(),
        rate: args.rate,
        duration: Duration::from_secs(args.lag_secs),
        keys: LAG_KEYS,
        writers: LAG_WRITERS,
    };
    let meter = cpu::Meter::start(&[
        ("source JVM", rig.src().pid),
        ("destination JVM", rig.dst.pid),
        ("this bench (writer and probe)", Some(std::process::id())),
    ]);
    let ferry_cpu0 = bench::cpu_seconds(child.id()).unwrap_or(0.0);
    let report = probe.run().await;
    let ferry_cpu = bench::cpu_seconds(child.id()).map_or(f64::NAN, |c| c - ferry_cpu0);
    let split = meter.stop(&[("ferry", ferry_cpu)]);
    let calls = ferry_calls(&addr, report.as_ref().map_or(1.0, |r| r.write_secs)).await;
    stop(child).await;
    ferry.keep_log("lag");
    let report = report.map_err(|e| format!("lag probe: {e}\n{}", ferry.logs()))?;
    let diff = compare(&src, TABLE, &dst, TABLE).await?;
    if !diff.is_equal() {
        return Err(format!(
            "lag: DESTINATION DIFFERS FROM SOURCE: {diff}\n{}",
            ferry.logs()
        ));
    }
    say(format!(
        "lag: {} writes in {:.1} s ({:.0}/s achieved); the probe read {:.0} keys/s in {:.0} BatchGetItems/s \
         from the destination; compare: equal ({diff})",
        report.writes,
        report.write_secs,
        report.writes as f64 / report.write_secs,
        report.probe_keys as f64 / report.write_secs,
        report.probe_calls as f64 / report.write_secs,
    ));
    say(format!("lag: {calls}"));
    say(format!("lag: CPU: {}", split.describe(report.writes)));
    let steady: Vec<_> = report
        .samples
        .iter()
        .filter(|s| s.written_at >= LAG_RAMP)
        .copied()
        .collect();
    Ok(Lag {
        sorted_ms: bench::sorted_lags_ms(&report.samples),
        steady_sorted_ms: bench::sorted_lags_ms(&steady),
        per_second: bench::lag_per_second(&report.samples),
        report,
    })
}

/// ferry's own calls during the phase, from its metrics.
async fn ferry_calls(addr: &str, secs: f64) -> String {
    let body = bench::http_get(addr, "/metrics").await.unwrap_or_default();
    let m = |name| bench::metric(&body, name, TABLE).unwrap_or(f64::NAN);
    let (calls, items) = (m("ferry_write_calls_total"), m("ferry_items_written_total"));
    let (reads, read) = (m("ferry_read_calls_total"), m("ferry_records_read_total"));
    format!(
        "ferry read {:.0} records/s in {:.0} GetRecords/s and made {:.0} BatchWriteItems/s of {:.1} items each",
        read / secs,
        reads / secs,
        calls / secs,
        items / calls
    )
}

/// Waits until `ferry status` shows the table streaming (its stream position captured).
async fn wait_streaming(ferry: &FerryDir) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ferry.table_status(TABLE).is_some_and(|t| t["phase"] == "streaming") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("ferry never reached the streaming phase\n{}", ferry.logs()))
}
