//! A measurement, not a check, of several `ferry sync` workers (`[state] backend = "dynamodb"`):
//! 1. how long 1, 2 and 3 workers take to bulk-copy many tables into a fresh destination (on one
//!    2-core host with DynamoDB Local, the host and DynamoDB Local are the limit: this shows the
//!    cost of coordination more than the gain of spreading, which needs hosts of their own);
//! 2. what the state table costs while the tables stream: calls per table per hour by operation,
//!    counted by a proxy in front of the state endpoint, and the write and read units they come to
//!    (items under 1 KB: a write 1 unit, a transactional write 2 per item; a consistent read 1).
//!    Each table on DynamoDB Local streams from one open shard, so a table's figure is its table
//!    lease and coordination plus one shard's lease and positions.
//!
//!   cargo bench --bench workers                                         # 12 tables x 4,000 items
//!   FERRY_WORKERS_TABLES=6 FERRY_WORKERS_ITEMS=1000 cargo bench --bench workers   # a quick run

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::bench::output::write_report;
use ferry_rig::data::{create_table, load, sized_item};
use ferry_rig::faults::proxy::FaultProxy;
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::wait::wait_for;
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal, ferry_bin};
use tokio_util::sync::CancellationToken;

const FAILOVER_SECONDS: u64 = 10;
/// How long the streaming window is counted.
const WINDOW: Duration = Duration::from_secs(60);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let (tables, items) = (env("FERRY_WORKERS_TABLES", 12), env("FERRY_WORKERS_ITEMS", 4_000));
    let ddb = DynamoLocal::shared();
    let src_account = Account::fresh("src");
    let src = ddb.client(&src_account);
    let names: Vec<String> = (0..tables).map(|i| format!("T{i:02}")).collect();
    let mut toml = String::new();
    for name in &names {
        create_table(&src, name, Some(StreamViewType::NewAndOldImages)).await;
        load(
            &src,
            name,
            (0..items as i64)
                .map(|k| sized_item(&format!("p{}", k % 64), k, 300))
                .collect(),
        )
        .await;
        toml.push_str(&format!("[[table]]\nsource = \"{name}\"\n"));
    }
    let mut runs = Vec::new();
    let mut costs = None;
    for workers in 1..=3u32 {
        let dir = tempfile::tempdir().unwrap();
        let dst_account = Account::fresh("dst");
        let f = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &src_account, &dst_account, &toml);
        let proxy = FaultProxy::start(&ddb.endpoint).await;
        f.state_in_dynamodb_via(&Account::fresh("state"), FAILOVER_SECONDS, Some(&proxy.endpoint));
        let t0 = Instant::now();
        let children: Vec<Running> = (0..workers).map(|_| f.spawn_sync(&[])).collect();
        wait_for(
            Duration::from_secs(1800),
            "every table streaming",
            || f.logs(),
            || async {
                let all = f.status();
                let all = all.as_array()?;
                (all.len() == tables && all.iter().all(|t| t["phase"] == "streaming")).then_some(())
            },
        )
        .await;
        let secs = t0.elapsed().as_secs_f64();
        let copied = (tables * items) as f64;
        println!(
            "{workers} worker(s): {tables} tables x {items} items copied in {secs:.1} s ({:.0} items/s)",
            copied / secs
        );
        runs.push(serde_json::json!({"workers": workers, "seconds": secs, "items_per_second": copied / secs}));
        if workers == 3 {
            costs = Some(streaming_costs(&src, &names, &proxy, tables).await);
        }
        for c in &children {
            terminate(c);
        }
        for mut c in children {
            c.wait().unwrap();
        }
    }
    let costs = costs.unwrap();
    write_report(
        "workers",
        &serde_json::json!({"tables": tables, "items_per_table": items, "failover_seconds": FAILOVER_SECONDS,
            "runs": runs, "state_table_per_table_hour": costs}),
    )
    .unwrap();
}

/// State-table calls per table per hour over [`WINDOW`] of streaming under a light workload (a
/// writer on every fourth table), with their estimated units.
async fn streaming_costs(
    src: &aws_sdk_dynamodb::Client,
    names: &[String],
    proxy: &FaultProxy,
    tables: usize,
) -> serde_json::Value {
    let stop = CancellationToken::new();
    let writers: Vec<_> = names
        .iter()
        .step_by(4)
        .map(|name| {
            let mut wl = Workload::new(src.clone(), name);
            (wl.writers, wl.pause) = (1, Duration::from_millis(50));
            let stop = stop.clone();
            tokio::spawn(async move { wl.run(stop, None).await })
        })
        .collect();
    let before = proxy.forwarded_all();
    tokio::time::sleep(WINDOW).await;
    let after = proxy.forwarded_all();
    stop.cancel();
    for w in writers {
        let _ = w.await;
    }
    let per_hour = 3600.0 / WINDOW.as_secs_f64() / tables as f64;
    let calls: BTreeMap<String, f64> = after
        .iter()
        .map(|(op, n)| (op.clone(), (n - before.get(op).copied().unwrap_or(0)) as f64 * per_hour))
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let of = |op: &str| calls.get(op).copied().unwrap_or(0.0);
    // A fenced state write is a transaction of the lease check and one write (2 units each).
    let writes =
        of("UpdateItem") + of("PutItem") + of("DeleteItem") + of("BatchWriteItem") + 4.0 * of("TransactWriteItems");
    let reads = of("Query") + of("GetItem");
    for (op, n) in &calls {
        println!("state table, per table (one open shard) per hour: {op} {n:.0}");
    }
    println!("state table, per table (one open shard) per hour: ~{writes:.0} write units, ~{reads:.0} read units");
    serde_json::json!({"calls": calls, "write_units": writes, "read_units": reads})
}
