//! Several `ferry sync` workers sharing one migration through the DynamoDB state backend (the
//! state table in a third account of DynamoDB Local): a standby takes over a holder killed with
//! -9, a holder frozen past its lease writes nothing stale when it wakes, a SIGTERM hands the
//! migration over at once, and a table's shards, read by other workers than the table's, survive
//! their reader's kill and a rollover.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::compare::compare;
use ferry_rig::process::{FerryDir, Running, signal, terminate};
use ferry_rig::scenario::{Scenario, Stream};
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, ferry_bin};
use tokio_util::sync::CancellationToken;

/// Short for the tests' sake, long enough that a loaded rig does not lose a lease to one slow call.
const FAILOVER_SECONDS: u64 = 6;

async fn setup(items: i64, table_toml: &str) -> Scenario {
    setup_via(items, table_toml, None).await
}

/// [`setup`], with the state table reached through `endpoint` (a fault proxy) when given.
async fn setup_via(items: i64, table_toml: &str, endpoint: Option<&str>) -> Scenario {
    let rig = Scenario::setup(ferry_bin!())
        .stream(Stream::AfterLoad(StreamViewType::NewAndOldImages))
        .items(items, 11)
        .keys("seed-", 31)
        .tables(table_toml)
        .build()
        .await;
    rig.ferry
        .state_in_dynamodb_via(&Account::fresh("state"), FAILOVER_SECONDS, endpoint);
    rig
}

/// Waits until the `n`th worker's log shows `line`; how long that took.
async fn wait_log(f: &FerryDir, n: u32, line: &str, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(
        timeout,
        line,
        || f.logs(),
        || async { f.log(n).contains(line).then_some(()) },
    )
    .await;
    t0.elapsed()
}

/// Waits until the `n`th worker took Orders over from another worker; how long that took.
async fn took_over(f: &FerryDir, n: u32) -> Duration {
    let t0 = Instant::now();
    let taken = |line: &str| line.contains("holding table Orders (taken from ") && !line.contains("from nobody");
    wait_for(
        Duration::from_secs(60),
        "a takeover",
        || f.logs(),
        || async { f.log(n).lines().any(taken).then_some(()) },
    )
    .await;
    t0.elapsed()
}

fn table_status(f: &FerryDir) -> serde_json::Value {
    f.table_status("Orders").unwrap_or_default()
}

/// Starts the `n`th worker and waits until it has joined (it holds nothing while the others
/// hold their share).
async fn standby(f: &FerryDir, n: u32) -> Running {
    let child = f.spawn_sync(&[]);
    wait_log(f, n, "worker started", Duration::from_secs(60)).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_take_over_a_killed_holder_mid_snapshot_and_mid_stream_and_a_sigterm_hands_over_at_once() {
    // A write budget stretches the snapshot so that the first kill lands in it.
    let rig = setup(
        6_000,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 4\nmax_write_units_per_second = 500\n",
    )
    .await;
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(10);
    let writes = wl.spawn(stop.clone());
    let f = &rig.ferry;
    let mut first = f.spawn_sync(&[]);
    wait_log(f, 1, "holding table Orders (taken from nobody", Duration::from_secs(60)).await;
    let mut second = standby(f, 2).await;
    let phase = wait_for(
        Duration::from_secs(60),
        "snapshot progress",
        || f.logs(),
        || async {
            let t = table_status(f);
            (t["snapshot"]["items_copied"].as_i64().unwrap_or(0) > 0).then(|| t["phase"].clone())
        },
    )
    .await;
    first.kill().expect("kill -9");
    assert_eq!(phase, "snapshot", "killed mid-snapshot\n{}", f.logs());
    first.wait().unwrap();
    let took = took_over(f, 2).await;
    eprintln!("takeover mid-snapshot after kill -9: {took:?} (failover {FAILOVER_SECONDS} s)");
    assert!(
        took < Duration::from_secs(FAILOVER_SECONDS * 4),
        "took {took:?}\n{}",
        f.logs()
    );

    wait_for(
        Duration::from_secs(180),
        "streaming",
        || f.logs(),
        || async { (table_status(f)["phase"] == "streaming").then_some(()) },
    )
    .await;
    let mut third = standby(f, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill().expect("kill -9");
    second.wait().unwrap();
    let took = took_over(f, 3).await;
    eprintln!("takeover mid-stream after kill -9: {took:?}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    rig.wait_caught_up(Duration::from_secs(120)).await;
    rig.wait_equal(Duration::from_secs(90)).await;

    // A graceful stop releases the lease: the next standby takes it without waiting out the
    // failover time, and resumes exactly where the flushed checkpoint says (nothing replayed).
    let applied = table_status(f)["records_applied"].as_i64().unwrap();
    let mut fourth = standby(f, 4).await;
    terminate(&third);
    assert!(third.wait().unwrap().success(), "{}", f.logs());
    assert!(f.log(3).contains("released the lease"), "{}", f.log(3));
    wait_log(f, 4, "holding table Orders (taken from nobody", Duration::from_secs(30)).await;
    wait_log(f, 4, "streaming changes", Duration::from_secs(30)).await;
    rig.wait_caught_up(Duration::from_secs(60)).await;
    assert_eq!(
        table_status(f)["records_applied"].as_i64().unwrap(),
        applied,
        "the new holder applied no record again\n{}",
        f.logs()
    );
    terminate(&fourth);
    assert!(fourth.wait().unwrap().success(), "{}", f.logs());
    assert!(rig.wait_equal(Duration::from_secs(30)).await.is_equal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_frozen_past_its_lease_writes_nothing_stale_when_it_wakes() {
    // A small write budget keeps batches queued in the holder when it freezes.
    let rig = setup(
        500,
        "[[table]]\nsource = \"Orders\"\nmax_write_units_per_second = 40\nwrite_concurrency = 2\n",
    )
    .await;
    let f = &rig.ferry;
    let mut frozen = f.spawn_sync(&[]);
    rig.wait_caught_up(Duration::from_secs(120)).await;
    let mut taker = standby(f, 2).await;

    // Writes over and over to five hot keys, faster than the holder may apply them.
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    (wl.cold_keys, wl.writers, wl.pause) = (50, 2, Duration::from_millis(20));
    let writes = wl.spawn(stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&frozen, "STOP");
    took_over(f, 2).await;
    // The taker applies newer images of the same keys while the holder is frozen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    rig.wait_caught_up(Duration::from_secs(120)).await;
    rig.wait_equal(Duration::from_secs(120)).await;

    signal(&frozen, "CONT");
    // Awake, it finds its lease gone: its state writes are refused and it stands by again.
    wait_log(f, 1, ": table Orders: no longer held here", Duration::from_secs(60)).await;
    let log = f.log(1);
    assert!(
        log.contains("is no longer this worker's"),
        "a refused state write\n{log}"
    );
    let diff = compare(&rig.src, "Orders", &rig.dst, "Orders").await.expect("compare");
    assert!(
        diff.is_equal(),
        "a stale image reached the destination: {diff}\n{}",
        f.logs()
    );
    eprintln!(
        "the frozen holder held writes when it woke: {}",
        log.contains("holding writes to Orders")
    );
    terminate(&frozen);
    terminate(&taker);
    assert!(frozen.wait().unwrap().success(), "{}", f.logs());
    assert!(taker.wait().unwrap().success(), "{}", f.logs());
}

/// The worker id in the `n`th worker's log.
fn worker_of(f: &FerryDir, n: u32) -> String {
    let log = f.log(n);
    let line = log
        .lines()
        .find(|l| l.contains("worker started"))
        .expect("a started worker");
    line.split("worker=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string()
}

/// The worker (1-based, among `workers`) that took `table` last, by log time.
fn holder_of(f: &FerryDir, workers: u32, table: &str) -> Option<u32> {
    let needle = format!("holding table {table} (");
    (1..=workers)
        .filter_map(|n| {
            let log = f.log(n);
            let last = log.lines().rfind(|l| l.contains(&needle))?;
            Some((last.split(' ').next()?.to_string(), n))
        })
        .max()
        .map(|(_, n)| n)
}

/// Waits until some worker other than `victim` logs a take of `table` from it.
async fn taken_from(f: &FerryDir, workers: u32, victim: u32, table: &str) -> Duration {
    let t0 = Instant::now();
    let needle = format!("holding table {table} (taken from {}", worker_of(f, victim));
    wait_for(
        Duration::from_secs(240),
        &needle,
        || f.logs(),
        || async {
            (1..=workers)
                .any(|n| n != victim && f.log(n).contains(&needle))
                .then_some(())
        },
    )
    .await;
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_share_thirty_tables_through_kills_and_shard_rollovers() {
    use ferry_rig::data::{create_table, load, sized_item};
    use ferry_rig::{DynamoLocal, process::FerryDir as Dir};
    let ddb = DynamoLocal::shared();
    let (src_account, dst_account) = (Account::fresh("src"), Account::fresh("dst"));
    let (src, dst) = (ddb.client(&src_account), ddb.client(&dst_account));
    let names: Vec<String> = (0..30).map(|i| format!("T{i:02}")).collect();
    let mut toml = String::new();
    for (i, name) in names.iter().enumerate() {
        create_table(&src, name, Some(StreamViewType::NewAndOldImages)).await;
        let count = if i == 0 { 20_000 } else { 40 };
        load(
            &src,
            name,
            (0..count)
                .map(|k| sized_item(&format!("p{}", k % 50), k, 200))
                .collect(),
        )
        .await;
        toml.push_str(&format!("[[table]]\nsource = \"{name}\"\n"));
        if i == 0 {
            // Stretches the big snapshot so that a kill lands in it.
            toml.push_str("max_write_units_per_second = 1000\n");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let f = &Dir::new(&ferry_bin!(), dir.path(), ddb, &src_account, &dst_account, &toml);
    f.state_in_dynamodb(&Account::fresh("state"), FAILOVER_SECONDS);

    let stop = CancellationToken::new();
    let mut writers = Vec::new();
    for name in &names[..4] {
        let mut wl = Workload::new(src.clone(), name);
        (wl.writers, wl.pause, wl.cold_keys) = (1, Duration::from_millis(20), 300);
        let stop = stop.clone();
        writers.push(tokio::spawn(async move { wl.run(stop, None).await }));
    }
    let mut workers: Vec<Running> = (0..3).map(|_| f.spawn_sync(&[])).collect();

    // Kill -9 the holder of the big table while its snapshot runs.
    let (victim, phase) = wait_for(
        Duration::from_secs(300),
        "the big snapshot under way",
        || f.logs(),
        || async {
            let t = f.table_status("T00")?;
            (t["snapshot"]["items_copied"].as_i64().unwrap_or(0) > 0)
                .then(|| holder_of(f, 3, "T00").map(|n| (n, t["phase"].clone())))
                .flatten()
        },
    )
    .await;
    workers[victim as usize - 1].kill().unwrap();
    workers[victim as usize - 1].wait().unwrap();
    assert_eq!(phase, "snapshot", "killed mid-snapshot\n{}", f.logs());
    let took = taken_from(f, 3, victim, "T00").await;
    eprintln!("T00 taken over {took:?} after kill -9 of worker {victim} mid-snapshot");
    // The big table's snapshot segments are a fair share of their own: several workers copy them.
    let copiers = (1..=3)
        .filter(|n| {
            f.log(*n)
                .lines()
                .any(|l| l.contains("holding snapshot segment") && l.contains("of table T00 ("))
        })
        .count();
    assert!(
        copiers >= 2,
        "T00's segments copied by {copiers} worker(s)\n{}",
        f.logs()
    );
    assert!(
        took < Duration::from_secs(FAILOVER_SECONDS * 4),
        "{took:?}\n{}",
        f.logs()
    );

    // Rollovers while every table streams, then kill -9 one of the two survivors.
    wait_for(
        Duration::from_secs(900),
        "every table streaming",
        || f.logs(),
        || async {
            let all = f.status();
            let all = all.as_array()?;
            (all.len() == 30 && all.iter().all(|t| t["phase"] == "streaming")).then_some(())
        },
    )
    .await;
    // `ferry status` names each table's worker (never the dead one) and lists every worker.
    let dead = worker_of(f, victim);
    for t in f.status().as_array().unwrap() {
        let by = t["worker"].as_str().unwrap_or_else(|| panic!("no worker for {t}"));
        assert_ne!(by, dead, "{t}");
    }
    let text = String::from_utf8(f.run(&["status", "-c", "ferry.toml"]).stdout).unwrap();
    for n in 1..=3 {
        assert!(text.contains(&format!("worker {}: ", worker_of(f, n))), "{text}");
    }
    assert!(text.contains(&format!("worker {dead}: 0 table(s)")), "{text}");
    // A table's shards are a fair share of their own: some are read by another worker than the
    // one holding their table.
    let split = f
        .status()
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            let readers = t["shard_workers"].as_object().cloned().unwrap_or_default();
            readers.values().any(|w| *w != t["worker"])
        })
        .count();
    eprintln!("{split} of 30 tables have a shard read by another worker than their own");
    assert!(split > 0, "{}", f.logs());
    for _ in 0..2 {
        ddb.rollover().expect("rollover");
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    let second = (1..=3).find(|n| *n != victim).unwrap();
    let lost: Vec<String> = names
        .iter()
        .filter(|t| holder_of(f, 3, t) == Some(second))
        .cloned()
        .collect();
    workers[second as usize - 1].kill().unwrap();
    workers[second as usize - 1].wait().unwrap();
    if let Some(t) = lost.first() {
        let took = taken_from(f, 3, second, t).await;
        eprintln!(
            "{t} taken over {took:?} after kill -9 of worker {second} mid-stream ({} tables)",
            lost.len()
        );
    }

    stop.cancel();
    for w in writers {
        w.await.unwrap().expect("workload");
    }
    for name in &names {
        wait_caught_up(f, name, Duration::from_secs(180)).await;
        wait_equal(&src, name, &dst, name, Duration::from_secs(180), || f.logs()).await;
    }
    let survivor = (1..=3).find(|n| *n != victim && *n != second).unwrap();
    let last = &mut workers[survivor as usize - 1];
    terminate(last);
    assert!(last.wait().unwrap().success(), "{}", f.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_of_the_state_table_longer_than_a_lease_moves_no_table_and_loses_no_write() {
    let proxy = ferry_rig::faults::proxy::FaultProxy::start(&ferry_rig::DynamoLocal::shared().endpoint).await;
    let rig = setup_via(300, "[[table]]\nsource = \"Orders\"\n", Some(&proxy.endpoint)).await;
    let f = &rig.ferry;
    let mut holder = f.spawn_sync(&[]);
    rig.wait_caught_up(Duration::from_secs(120)).await;
    let mut idle = standby(f, 2).await;
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    (wl.writers, wl.pause) = (2, Duration::from_millis(20));
    let writes = wl.spawn(stop.clone());

    // No worker can renew or look for three lease durations; then each holder's renewal lands
    // before anyone has watched a whole lease duration afresh.
    let outage = Duration::from_secs(FAILOVER_SECONDS * 3);
    proxy.outage_for(outage);
    tokio::time::sleep(outage + Duration::from_secs(FAILOVER_SECONDS * 2)).await;
    assert!(
        !f.log(2).contains("holding table Orders") && !f.log(2).contains("holding shard"),
        "the idle worker took the table or its shard\n{}",
        f.logs()
    );
    // Finished snapshot segments are no longer held either; a lost lease ends with its error.
    assert!(!f.log(1).contains("no longer held here: "), "{}", f.logs());

    stop.cancel();
    writes.await.unwrap().expect("workload");
    rig.wait_caught_up(Duration::from_secs(120)).await;
    rig.wait_equal(Duration::from_secs(60)).await;
    terminate(&holder);
    terminate(&idle);
    assert!(holder.wait().unwrap().success(), "{}", f.logs());
    assert!(idle.wait().unwrap().success(), "{}", f.logs());
}

/// Which worker reads each open shard of `table` (from `ferry status --json`).
fn shard_readers(f: &FerryDir, table: &str) -> Vec<String> {
    let t = f.table_status(table).unwrap_or_default();
    let readers = t["shard_workers"].as_object().cloned().unwrap_or_default();
    readers
        .values()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_read_by_another_worker_than_its_tables_survives_that_workers_kill_and_a_rollover() {
    use ferry_rig::data::{create_table, load, sized_item};
    use ferry_rig::{DynamoLocal, process::FerryDir as Dir};
    let ddb = DynamoLocal::shared();
    let (src_account, dst_account) = (Account::fresh("src"), Account::fresh("dst"));
    let (src, dst) = (ddb.client(&src_account), ddb.client(&dst_account));
    let names = ["Alpha", "Bravo"];
    let mut toml = String::new();
    for name in names {
        create_table(&src, name, Some(StreamViewType::NewAndOldImages)).await;
        load(
            &src,
            name,
            (0..200).map(|k| sized_item(&format!("p{}", k % 20), k, 100)).collect(),
        )
        .await;
        toml.push_str(&format!("[[table]]\nsource = \"{name}\"\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let f = &Dir::new(&ferry_bin!(), dir.path(), ddb, &src_account, &dst_account, &toml);
    f.state_in_dynamodb(&Account::fresh("state"), FAILOVER_SECONDS);

    // Alone, the first worker holds both tables and reads both shards.
    let mut first = f.spawn_sync(&[]);
    for name in names {
        wait_caught_up(f, name, Duration::from_secs(120)).await;
    }
    let one = worker_of(f, 1);
    wait_for(
        Duration::from_secs(30),
        "both shards read by the first worker",
        || f.logs(),
        || async { names.iter().all(|t| shard_readers(f, t) == [one.clone()]).then_some(()) },
    )
    .await;
    // A second worker claims one table (the first by name); a claim must narrow the gap, so the
    // table's shard stays where it is: table Alpha is coordinated by one worker, read by the other.
    let mut second = standby(f, 2).await;
    let two = worker_of(f, 2);
    wait_log(f, 2, "holding table Alpha (taken from nobody", Duration::from_secs(60)).await;
    let a = f.table_status("Alpha").unwrap();
    assert_eq!(a["worker"], two.as_str(), "{a}");
    assert_eq!(shard_readers(f, "Alpha"), std::slice::from_ref(&one), "{a}");

    let stop = CancellationToken::new();
    let mut writers = Vec::new();
    for name in names {
        let mut wl = Workload::new(src.clone(), name);
        (wl.writers, wl.pause, wl.cold_keys) = (1, Duration::from_millis(20), 100);
        let stop = stop.clone();
        writers.push(tokio::spawn(async move { wl.run(stop, None).await }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The reader of both shards dies: the survivor takes table Bravo and both shards once their leases
    // stood still for the failover time.
    first.kill().unwrap();
    first.wait().unwrap();
    let t0 = Instant::now();
    wait_for(
        Duration::from_secs(60),
        "every lease on the survivor",
        || f.logs(),
        || async {
            let all = names.iter().all(|t| {
                f.table_status(t).is_some_and(|s| s["worker"] == two.as_str()) && shard_readers(f, t) == [two.clone()]
            });
            all.then_some(())
        },
    )
    .await;
    let took = t0.elapsed();
    eprintln!("shards taken over {took:?} after kill -9 of their reader (failover {FAILOVER_SECONDS} s)");
    assert!(
        took < Duration::from_secs(FAILOVER_SECONDS * 4),
        "{took:?}\n{}",
        f.logs()
    );

    // A rollover while writes go on: each table's child is offered only once its parent is done.
    ddb.rollover().expect("rollover");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    for w in writers {
        w.await.unwrap().expect("workload");
    }
    for name in names {
        wait_caught_up(f, name, Duration::from_secs(120)).await;
        wait_equal(&src, name, &dst, name, Duration::from_secs(120), || f.logs()).await;
        let t = f.table_status(name).unwrap();
        assert!(
            t["shards_done"].as_u64().unwrap() >= 1,
            "the rollover finished a shard: {t}"
        );
        assert_eq!(
            shard_readers(f, name).len(),
            t["shards_open"].as_u64().unwrap() as usize,
            "a finished shard's lease is gone: {t}"
        );
    }
    terminate(&second);
    assert!(second.wait().unwrap().success(), "{}", f.logs());
}
