//! Switching direction on the local rig: `ferry cutover --switch` stops forward replication and
//! starts replaying the destination onto the source (reverse), `ferry rollback` switches back.
//! Under a random workload on the side the application writes in each phase, with a kill -9 of the
//! daemon in each phase (forward, reverse, forward again), no write is lost: both tables end equal
//! after every phase, the side written last holds the writes, and `ferry verify` agrees in the
//! row's direction. Starting reverse while forward runs is refused, by `ferry sync --reverse` and
//! by `ferry rollback` alike, and leaves the running daemon alone.

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferry_rig::compare::{compare, scan_all};
use ferry_rig::ferry_bin;
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::scenario::Scenario;
use ferry_rig::wait::{wait_equal, wait_for};
use ferry_rig::workload::{Counts, Workload};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A workload on one side's "Orders", counting as it goes.
struct Writes {
    stop: CancellationToken,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Writes {
    fn start(client: &aws_sdk_dynamodb::Client, seed: u64) -> Writes {
        let mut wl = Workload::new(client.clone(), "Orders");
        wl.seed = seed;
        wl.pause = Duration::from_millis(5);
        let stop = CancellationToken::new();
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn({
            let (stop, counts) = (stop.clone(), counts.clone());
            async move { wl.run_counting(stop, None, counts).await }
        });
        Writes { stop, counts, task }
    }

    /// Waits until `n` more operations than now were made.
    async fn more(&self, n: u64, f: &FerryDir) {
        let want = self.counts.total() + n;
        wait_for(
            Duration::from_secs(60),
            &format!("{want} workload writes"),
            || f.logs(),
            || async { (self.counts.total() >= want).then_some(()) },
        )
        .await;
    }

    /// Stops the writers (the application's write pause); the operations made.
    async fn pause(self) -> u64 {
        self.stop.cancel();
        self.task.await.unwrap().expect("workload");
        self.counts.total()
    }
}

/// kill -9 of the daemon, then a plain `ferry sync` again.
fn kill_and_restart(f: &FerryDir, mut sync: Running) -> Running {
    sync.kill().expect("kill -9");
    sync.wait().unwrap();
    f.spawn_sync(&[])
}

/// Runs `ferry <args>` to its end without blocking the runtime's workers.
async fn run_to_end(f: &FerryDir, args: &[&str]) -> Output {
    let child = f
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("ferry output")
}

/// A finished command's output and the daemon's logs, for failure messages.
fn shown(out: &Output, f: &FerryDir) -> String {
    format!(
        "exit: {}\nstdout:\n{}\nstderr:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        f.logs()
    )
}

fn has_line(out: &Output, start: &str) -> bool {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim_start().starts_with(start))
}

/// The `*-report.json` written into `dir`.
fn report(dir: &Path) -> Value {
    let path = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("no report folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-report.json"))
        .unwrap_or_else(|| panic!("no *-report.json in {}", dir.display()));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Whether a report's `switch` section holds Orders' switch point.
fn has_switch_point(switch: &Value) -> bool {
    switch["tables"].as_array().is_some_and(|t| {
        t.iter()
            .any(|p| p["table"] == "Orders" && p["at_ms"].as_i64().is_some())
    })
}

/// `ferry status --json` for "Orders".
fn orders(f: &FerryDir) -> Value {
    f.table_status("Orders")
        .unwrap_or_else(|| panic!("no status for Orders\n{}", f.logs()))
}

fn switches(t: &Value) -> Vec<Value> {
    t["switches"].as_array().cloned().unwrap_or_default()
}

/// One phase of the application writing `from` (seed `seed`) while ferry replicates it onto `to`,
/// with a kill -9 and a plain restart of the daemon midway: the restart keeps `direction`, and
/// after the write pause `to` equals `from` and holds writes it did not hold before.
async fn write_phase(
    f: &FerryDir,
    sync: Running,
    (from, to): (&aws_sdk_dynamodb::Client, &aws_sdk_dynamodb::Client),
    seed: u64,
    direction: &str,
) -> Running {
    let before = scan_all(to, "Orders").await.unwrap();
    let writes = Writes::start(from, seed);
    writes.more(200, f).await;
    let mut sync = kill_and_restart(f, sync);
    assert_eq!(
        orders(f)["direction"],
        direction,
        "a restart keeps the direction\n{}",
        f.logs()
    );
    writes.more(300, f).await;
    assert!(writes.pause().await > 0, "the workload wrote");
    wait_equal(from, "Orders", to, "Orders", Duration::from_secs(120), || f.logs()).await;
    let after = scan_all(to, "Orders").await.unwrap();
    assert!(
        before != after,
        "the writes reached the other table ({} items before, {} after)",
        before.len(),
        after.len()
    );
    assert!(
        sync.try_wait().unwrap().is_none(),
        "ferry sync keeps running\n{}",
        f.logs()
    );
    sync
}

/// Runs `ferry <command>` (`cutover --switch` or `rollback`) with a `--then` that touches a file,
/// and checks what it tells the operator: success, its `line`, the `--then` run, the report's
/// switch to `direction`, the status's direction. Returns the status's switch points.
async fn switch(f: &FerryDir, command: &[&str], line: &str, direction: &str) -> Vec<Value> {
    let dir = f.dir.join(format!("{direction}-report"));
    std::fs::create_dir_all(&dir).unwrap();
    let then = format!("touch '{}'", dir.join("then").display());
    let mut args = command.to_vec();
    args.extend([
        "-c",
        "ferry.toml",
        "--max-lag",
        "2s",
        "--quiet-for",
        "2s",
        "--timeout",
        "5m",
    ]);
    args.extend(["--report-dir", dir.to_str().unwrap(), "--then", then.as_str()]);
    let out = run_to_end(f, &args).await;
    assert!(out.status.success(), "{command:?} failed\n{}", shown(&out, f));
    assert!(has_line(&out, line), "no `{line}` line\n{}", shown(&out, f));
    assert!(dir.join("then").exists(), "--then did not run\n{}", shown(&out, f));
    let r = report(&dir);
    assert_eq!(r["outcome"], "complete", "{r}");
    // The figure for the closing notes: how long the switch itself paused the writes.
    eprintln!("{command:?}: the switch took {} s", r["timings"]["switch_seconds"]);
    assert_eq!(r["switch"]["to"], direction, "{r}");
    assert!(has_switch_point(&r["switch"]), "no switch point for Orders: {r}");
    let t = orders(f);
    assert_eq!(t["direction"], direction, "{t}\n{}", f.logs());
    let points = switches(&t);
    assert_eq!(
        points.last().map(|p| &p["direction"]),
        Some(&Value::from(direction)),
        "{t}"
    );
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switch_and_a_rollback_lose_no_write_with_a_kill_in_each_phase() {
    let s = Scenario::setup(ferry_bin!()).items(800, 5).keys("p", 19).build().await;
    let (src, dst, f) = (&s.src, &s.dst, &s.ferry);

    // 1. Forward, under writes on the source, with a kill -9 while it streams.
    let sync = s.sync_caught_up(&[]).await;
    let sync = write_phase(f, sync, (src, dst), 7, "forward").await;

    // 2. The switch: waits for quiet, verifies, asks the daemon, waits for reverse past S. The
    // replay overlap has converged before `switched:`.
    let points = switch(f, &["cutover", "--switch", "--enable-streams"], "switched:", "reverse").await;
    assert_eq!(points.len(), 1, "S: {points:?}");
    let d = compare(src, "Orders", dst, "Orders").await.unwrap();
    assert!(d.is_equal(), "equal at the switch: {d}\n{}", f.logs());

    // 3. Reverse, under writes on the destination, with a kill -9: the restart resumes reverse.
    let sync = write_phase(f, sync, (dst, src), 11, "reverse").await;

    // 4. Verify in the reverse direction.
    let (code, v) = f.verify(&[]);
    assert_eq!(code, 0, "verify in reverse: {v}\n{}", f.logs());

    // 5. Roll back: the mirror of the switch.
    let points = switch(f, &["rollback"], "rolled back:", "forward").await;
    assert_eq!(points.len(), 2, "S and R: {points:?}");
    assert!(
        points[1]["at_ms"].as_i64() > points[0]["at_ms"].as_i64(),
        "R comes after S: {points:?}"
    );
    let d = compare(src, "Orders", dst, "Orders").await.unwrap();
    assert!(d.is_equal(), "equal at the rollback: {d}\n{}", f.logs());

    // 6. Forward again, under writes on the source, with a kill -9.
    let mut sync = write_phase(f, sync, (src, dst), 13, "forward").await;
    let (code, v) = f.verify(&[]);
    assert_eq!(code, 0, "verify forward again: {v}\n{}", f.logs());

    terminate(&sync);
    assert!(sync.wait().unwrap().success(), "{}", f.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starting_reverse_while_forward_runs_is_refused() {
    let s = Scenario::setup(ferry_bin!()).items(200, 9).keys("p", 7).build().await;
    let f = &s.ferry;
    let mut sync = s.sync_caught_up(&[]).await;

    let out = f.run(&["sync", "-c", "ferry.toml", "--reverse"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "sync --reverse must be refused\n{}",
        shown(&out, f)
    );
    assert!(
        err.contains("replicates forward") && err.contains("cutover --switch"),
        "the refusal says why and what to run\n{}",
        shown(&out, f)
    );
    assert!(
        sync.try_wait().unwrap().is_none(),
        "the daemon keeps running\n{}",
        f.logs()
    );
    let t = orders(f);
    assert_eq!(t["direction"], "forward", "{t}");
    assert!(switches(&t).is_empty(), "no switch point: {t}");

    // The destination has no stream (ferry created it without one): a switch is refused before
    // anything waits or changes, naming the table and the flag.
    let out = f.run(&["cutover", "-c", "ferry.toml", "--switch", "--timeout", "5s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a switch with no stream to read\n{}",
        shown(&out, f)
    );
    assert!(
        err.contains("has no stream") && err.contains("--enable-streams"),
        "the refusal says why and what to pass\n{}",
        shown(&out, f)
    );
    assert_eq!(orders(f)["direction"], "forward", "{}", f.logs());

    let out = f.run(&["rollback", "-c", "ferry.toml", "--timeout", "5s"]);
    assert!(
        !out.status.success(),
        "rollback of a forward pair must fail\n{}",
        shown(&out, f)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forward"),
        "the refusal says the pair already replicates forward\n{}",
        shown(&out, f)
    );
    assert!(
        sync.try_wait().unwrap().is_none(),
        "the daemon keeps running\n{}",
        f.logs()
    );
    assert_eq!(orders(f)["direction"], "forward", "{}", f.logs());

    terminate(&sync);
    assert!(sync.wait().unwrap().success(), "{}", f.logs());
}
