//! What an operator watches during a weeks-long migration, against a live sync on the rig:
//! - JSON logs: every line parses, carries timestamp, level and the table, and no line at any
//!   level (FERRY_LOG=trace) shows the secret access key or an item's attribute value;
//! - the status page at `/` on the metrics address, loaded in headless Chromium: the tables and
//!   numbers it shows are those of `ferry status --json`, it refreshes itself, it loads nothing
//!   from elsewhere, it shows the report of a cutover, and a screenshot is kept as a test artifact.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use ferry_rig::bench::{free_port, http_get};
use ferry_rig::data::key_of;
use ferry_rig::ferry_bin;
use ferry_rig::process::terminate;
use ferry_rig::scenario::Scenario;
use ferry_rig::wait::{wait_caught_up, wait_for};
use ferry_rig::workload::{Counts, Workload};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "KnownSecretKey/ferry+test9f3e21d";
const ATTRIBUTE: &str = "known-attribute-value-7c41b0";

/// Puts item (p, sk) with `note = ATTRIBUTE`: not a key attribute, so no error message may name it.
async fn put_noted(rig: &Scenario, sk: i64) {
    let mut item = key_of("p", sk);
    item.insert("note".into(), Av::S(ATTRIBUTE.into()));
    rig.src
        .put_item()
        .table_name("Orders")
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

async fn destination_has(rig: &Scenario, sk: i64) -> bool {
    let key = key_of("p", sk);
    let got = rig.dst.get_item().table_name("Orders").set_key(Some(key)).send().await;
    got.ok().and_then(|o| o.item).is_some()
}

/// Every line of `text` is a JSON object with a timestamp and a level.
fn json_lines(text: &str, what: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: a log line is not JSON ({e}):\n{l}"));
            assert!(
                v["timestamp"].is_string() && v["level"].is_string(),
                "{what}: no timestamp or level:\n{l}"
            );
            v
        })
        .collect()
}

fn assert_clean(text: &str, what: &str) {
    // A line that leaks may be a whole response body: show its start.
    let short = |l: &str| l.chars().take(400).collect::<String>();
    for (i, l) in text.lines().enumerate() {
        assert!(
            !l.contains(SECRET),
            "{what} line {} shows the secret access key:\n{}",
            i + 1,
            short(l)
        );
        assert!(
            !l.contains(ATTRIBUTE),
            "{what} line {} shows an attribute value:\n{}",
            i + 1,
            short(l)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_logs_parse_and_no_line_at_any_level_shows_a_secret_or_an_attribute_value() {
    let rig = Scenario::setup(ferry_bin!()).items(200, 5).build().await;
    // The rig's profiles share one secret: give this run a known one.
    let profiles = rig.ferry.dir.join("aws-config");
    let text = std::fs::read_to_string(&profiles)
        .unwrap()
        .replace("rig-secret", SECRET);
    std::fs::write(&profiles, text).unwrap();
    put_noted(&rig, 1_000_001).await; // copied by the snapshot

    let log_path = rig.ferry.dir.join("sync-json.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let args = ["sync", "-c", "ferry.toml", "--log-format", "json", "--metrics", &addr];
    let child = rig
        .ferry
        .command(&args)
        .env("FERRY_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn ferry sync");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail = || read_log().lines().rev().take(30).collect::<Vec<_>>().join("\n");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    put_noted(&rig, 1_000_002).await; // applied from the stream
    wait_for(
        Duration::from_secs(60),
        "the streamed item at the destination",
        tail,
        || async { destination_has(&rig, 1_000_002).await.then_some(()) },
    )
    .await;
    // The page's server logs too.
    http_get(&addr, "/status.json").await.expect("status.json");
    terminate(&child);
    let mut child = child;
    child.wait().expect("ferry sync exits");

    let verify = rig
        .ferry
        .command(&["verify", "-c", "ferry.toml", "--log-format", "json"])
        .env("FERRY_LOG", "trace")
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let verify_log = String::from_utf8_lossy(&verify.stderr).to_string();

    let text = read_log();
    let lines = json_lines(&text, "sync");
    assert!(
        lines.len() > 100,
        "a trace-level run logs more than {} lines",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .any(|l| l["table"] == "Orders" && l["level"] == "INFO" && l["message"].is_string()),
        "no info line names the table at the top level"
    );
    assert!(lines.iter().any(|l| l["shard"].is_string()), "no line names a shard");
    json_lines(&verify_log, "verify");
    assert_clean(&text, "sync log");
    assert_clean(&verify_log, "verify log");
}

/// What the page reads: `/status.json`, parsed.
async fn page_data(addr: &str) -> Option<Value> {
    serde_json::from_str(&http_get(addr, "/status.json").await.ok()?).ok()
}

/// Debian's Chromium (installed by `deploy/local/install.sh` with FERRY_RIG_APT=1).
fn chromium() -> PathBuf {
    let path = std::env::var_os("FERRY_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: run `FERRY_RIG_APT=1 bash deploy/local/install.sh` as root (installs Debian's chromium), \
         or set FERRY_CHROMIUM",
        path.display()
    );
    path
}

/// Headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`); its stdout.
fn browse(profile: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Runs the page's timers (its refresh every 2 s) for this much virtual time.
        .arg("--virtual-time-budget=5000")
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `data-value` of the element with `data-field="{field}"` inside the card of `table`.
fn shown(dom: &str, table: &str, field: &str) -> Option<String> {
    let card = &dom[dom.find(&format!("data-table=\"{table}\""))?..];
    let at = &card[card.find(&format!("data-field=\"{field}\""))?..];
    let end = at.find('>')?;
    let tag = &at[..end];
    let v = &tag[tag.find("data-value=\"")? + 12..];
    Some(v[..v.find('"')?].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_page_shows_in_chromium_what_ferry_status_says_during_a_live_sync() {
    let rig = Scenario::setup(ferry_bin!()).items(500, 11).keys("s", 17).build().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let child = rig.ferry.spawn_sync(&["--metrics", &addr]);
    let stop = CancellationToken::new();
    let counts = Arc::new(Counts::default());
    let writes = tokio::spawn({
        let (wl, stop, counts) = (Workload::new(rig.src.clone(), "Orders"), stop.clone(), counts.clone());
        async move { wl.run_counting(stop, None, counts).await }
    });
    wait_for(
        Duration::from_secs(120),
        "streaming, 300 writes in",
        || rig.ferry.logs(),
        || async {
            let streaming = rig
                .ferry
                .table_status("Orders")
                .is_some_and(|t| t["phase"] == "streaming");
            (streaming && counts.total() >= 300).then_some(())
        },
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");

    // While writes go on: the page loads, shows the table streaming, and refreshes itself.
    wait_for(
        Duration::from_secs(30),
        "status.json streaming",
        String::new,
        || async { (page_data(&addr).await?["tables"][0]["phase"] == "streaming").then_some(()) },
    )
    .await;
    let dom = browse(profile.path(), &url, &["--dump-dom"]);
    assert_eq!(shown(&dom, "Orders", "phase").as_deref(), Some("streaming"), "{dom}");
    let loads: u32 = dom
        .split("data-loads=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        loads >= 2,
        "the page read status.json {loads} time(s) in 5 s: it does not refresh itself"
    );

    // Writes stop; once caught up the numbers are still, and must be those of `ferry status`.
    stop.cancel();
    writes.await.unwrap().expect("workload");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    // The page's data is read at most every 2 s: wait until it too has seen the table caught up.
    wait_for(
        Duration::from_secs(30),
        "status.json caught up",
        String::new,
        || async { (page_data(&addr).await?["tables"][0]["caught_up"] == true).then_some(()) },
    )
    .await;
    let status = rig.ferry.table_status("Orders").expect("status");
    let dom = browse(profile.path(), &url, &["--dump-dom"]);
    let field = |f: &str| shown(&dom, "Orders", f).unwrap_or_else(|| panic!("the page shows no {f}:\n{dom}"));
    assert_eq!(field("records_applied"), status["records_applied"].to_string());
    assert!(status["records_applied"].as_i64().unwrap() >= 300);
    assert_eq!(field("snapshot"), status["snapshot"]["items_copied"].to_string());
    assert_eq!(
        field("shards"),
        format!("{}/{}", status["shards_open"], status["shards_done"])
    );
    assert_eq!(
        field("lag"),
        "0",
        "caught up: ferry status says lag {}",
        status["lag_seconds"]
    );
    assert!(
        dom.contains("data-field=\"caught-up\""),
        "the page does not say caught up"
    );
    let points: u32 = dom
        .split("data-points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next()?.parse().ok())
        .unwrap_or(0);
    assert!(points >= 1, "the lag chart has no sample");

    // Self-contained: the page names no other origin (the SVG namespace is a name, not a load).
    let html = http_get(&addr, "/").await.expect("GET /");
    let elsewhere = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
        .count();
    assert_eq!(elsewhere, 0, "the page refers to another origin");
    // /metrics is still served beside it, with the table's phase.
    let metrics = http_get(&addr, "/metrics").await.expect("GET /metrics");
    assert!(
        metrics.contains("ferry_table_phase{table=\"Orders\",phase=\"streaming\"} 1"),
        "{metrics}"
    );

    // A cutover (the daemon keeps running): the page shows its report.
    let cut = rig
        .ferry
        .run(&["cutover", "-c", "ferry.toml", "--quiet-for", "1s", "--timeout", "2m"]);
    assert!(
        cut.status.success(),
        "cutover: {}",
        String::from_utf8_lossy(&cut.stderr)
    );
    wait_for(
        Duration::from_secs(30),
        "status.json to read the report",
        String::new,
        || async { page_data(&addr).await?["last_report"].is_object().then_some(()) },
    )
    .await;
    let dom = browse(profile.path(), &url, &["--dump-dom"]);
    assert!(
        dom.contains("data-field=\"outcome\">complete<"),
        "no complete cutover report shown:\n{dom}"
    );
    assert!(
        dom.contains("data-field=\"verdict\">equal<"),
        "the report's verify verdict is not shown:\n{dom}"
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        profile.path(),
        &url,
        &[
            "--window-size=1280,860",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot {}",
        shot.display()
    );
    println!("status page screenshot: {}", shot.display());
    terminate(&child);
}
