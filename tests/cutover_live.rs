//! `ferry cutover` on the local rig: a dry run changes nothing; with writes stopping during the
//! cutover it waits for the lag and the quiet period, verifies, enables deletion protection on the
//! destination (the source has it), writes its report and leaves `ferry sync` running.

use std::process::Stdio;
use std::time::Duration;

use ferry_rig::compare::compare;
use ferry_rig::ferry_bin;
use ferry_rig::process::terminate;
use ferry_rig::scenario::Scenario;
use ferry_rig::wait::wait_for;
use ferry_rig::workload::Workload;
use tokio_util::sync::CancellationToken;

async fn deletion_protection(c: &aws_sdk_dynamodb::Client) -> bool {
    let t = c
        .describe_table()
        .table_name("Orders")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    t.deletion_protection_enabled == Some(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cutover_waits_verifies_applies_settings_and_reports() {
    let s = Scenario::setup(ferry_bin!()).items(800, 5).keys("p", 19).build().await;
    let (src, dst, f) = (&s.src, &s.dst, &s.ferry);
    src.update_table()
        .table_name("Orders")
        .deletion_protection_enabled(true)
        .send()
        .await
        .unwrap();
    let mut sync = s.sync_caught_up(&[]).await;
    assert!(
        !deletion_protection(dst).await,
        "deletion protection waits for the cutover"
    );

    let dry = f.run(&["cutover", "-c", "ferry.toml", "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}\n{}", String::from_utf8_lossy(&dry.stderr));
    assert!(text.contains("would enable"), "{text}");
    assert!(!deletion_protection(dst).await, "a dry run changes nothing");
    assert!(!f.dir.join("state/cutover-report.json").exists());

    // Writes run while the cutover starts, and stop during it.
    let stop = CancellationToken::new();
    let wl = Workload::new(src.clone(), "Orders");
    let writes = wl.spawn(stop.clone());
    let reports = f.dir.join("reports");
    let cutover = f
        .command(&[
            "cutover",
            "-c",
            "ferry.toml",
            "--max-lag",
            "1s",
            "--quiet-for",
            "2s",
            "--timeout",
            "5m",
            "--report-dir",
            reports.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the workload to write",
        || f.logs(),
        || async { (!compare(src, "Orders", dst, "Orders").await.ok()?.is_equal()).then_some(()) },
    )
    .await;
    stop.cancel();
    assert!(writes.await.unwrap().expect("workload").total() > 0);
    let out = tokio::task::spawn_blocking(move || cutover.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        f.logs()
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("cutover-report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "complete", "{report}");
    let t = &report["tables"][0];
    assert_eq!(t["verify"]["equal"], true, "{report}");
    assert_eq!(t["verify"]["source_digest"], t["verify"]["destination_digest"]);
    assert!(t["lag_seconds"].as_f64().unwrap() <= 1.0, "{report}");
    assert!(
        report["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["setting"] == "deletion protection" && s["action"] == "enabled"),
        "{report}"
    );
    let md = std::fs::read_to_string(reports.join("cutover-report.md")).unwrap();
    assert!(md.contains("outcome: **complete**"), "{md}");
    assert!(deletion_protection(dst).await);
    assert!(compare(src, "Orders", dst, "Orders").await.unwrap().is_equal());

    // The daemon is still running after the cutover.
    assert!(sync.try_wait().unwrap().is_none(), "ferry sync must keep running");
    terminate(&sync);
    assert!(sync.wait().unwrap().success(), "{}", f.logs());
}
