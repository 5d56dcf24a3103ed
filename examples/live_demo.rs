//! ferry's main job on the local rig, end to end: DynamoDB Local with two accounts, a source table
//! with data, `ferry sync` running while a random workload writes, then "caught up" and a full
//! comparison of source and destination. Run it with `bash deploy/local/demo.sh`.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::compare::compare;
use ferry_rig::data::{big_item, create_table, load, rich_item};
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

const ITEMS: i64 = 20_000;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

fn say(msg: impl AsRef<str>) {
    println!("[demo] {}", msg.as_ref());
}

async fn run() -> Result<(), String> {
    let bin = std::env::current_exe().map_err(|e| e.to_string())?;
    let ferry_bin = bin
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("ferry"))
        .ok_or("no target dir")?;
    if !ferry_bin.exists() {
        return Err(format!(
            "{} not built: run `cargo build --release --bin ferry` first",
            ferry_bin.display()
        ));
    }
    say("starting DynamoDB Local (deploy/local/start.sh)");
    let ddb = DynamoLocal::start()?;
    let (sa, da) = (Account::fresh("demosrc"), Account::fresh("demodst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    say(format!(
        "source account {}, destination account {} on {}",
        sa.access_key_id, da.access_key_id, ddb.endpoint
    ));
    create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut items: Vec<_> = (0..ITEMS)
        .map(|i| rich_item(&format!("customer-{}", i % 500), i, &mut rng))
        .collect();
    items.push(big_item("big", 0, 390, &mut rng));
    load(&src, "Orders", items).await;
    say(format!(
        "source table Orders: {} items (every attribute type, a GSI, an LSI, one 390 KB item)",
        ITEMS + 1
    ));

    let work = std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id()));
    let ferry = FerryDir::new(
        &ferry_bin,
        &work,
        &ddb,
        &sa,
        &da,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 8\n",
    );
    say(format!(
        "ferry.toml:\n{}",
        std::fs::read_to_string(&ferry.config).unwrap_or_default()
    ));

    let stop = CancellationToken::new();
    let wl = Workload::new(src.clone(), "Orders");
    let writes = tokio::spawn({
        let stop = stop.clone();
        async move { wl.run(stop, None).await }
    });
    say("workload started: puts, updates, conditional writes and deletes on hot and cold keys");
    let addr = format!("127.0.0.1:{}", ferry_rig::bench::free_port());
    let mut child = ferry.spawn_sync(&["--no-progress", "--metrics", &addr]);
    say(format!(
        "ferry sync started (logs in {}); status page at http://{addr}/",
        work.display()
    ));

    let started = Instant::now();
    let mut streaming_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let out = ferry.run(&["status", "-c", "ferry.toml"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().find(|l| l.starts_with("Orders")) {
            say(line);
        }
        if text.contains("streaming") {
            streaming_since.get_or_insert_with(Instant::now);
        }
        if streaming_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("no streaming phase after 5 minutes\n{}", ferry.logs()));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("ferry sync exited early ({status})\n{}", ferry.logs()));
        }
    }
    stop.cancel();
    let counts = writes.await.map_err(|e| e.to_string())??;
    say(format!(
        "workload stopped after {} writes; waiting until ferry has caught up",
        counts.total()
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = ferry.table_status("Orders").unwrap_or_default();
        if st["caught_up"] == true {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("not caught up after 2 minutes\n{}", ferry.logs()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut diff = compare(&src, "Orders", &dst, "Orders").await?;
    for _ in 0..20 {
        if diff.is_equal() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        diff = compare(&src, "Orders", &dst, "Orders").await?;
    }
    terminate(&child);
    let _ = child.wait();
    if !diff.is_equal() {
        return Err(format!("MISMATCH: {diff}\n{}", ferry.logs()));
    }
    say(format!(
        "MATCH: source and destination are identical ({} items compared in full) after {:.0} s",
        diff.source_items,
        started.elapsed().as_secs_f64()
    ));
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
