//! `ferry verify` on the local rig: equal tables, a deliberately damaged destination (exactly the
//! damaged keys reported, exit non-zero), `--repair`, and a live workload with `ferry sync`
//! running (in-flight changes are not reported, damage made behind its back is).

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use ferry_rig::compare::compare;
use ferry_rig::data::{create_table, key_of, load, rich_item};
use ferry_rig::ferry_bin;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const TABLE: &str = "[[table]]\nsource = \"Orders\"\nscan_segments = 4\n";

fn items(n: i64) -> Vec<ferry::item::Item> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..n)
        .map(|i| rich_item(&format!("p{}", i % 37), i, &mut rng))
        .collect()
}

fn example_keys(r: &Value, kind: &str) -> Vec<String> {
    ferry_rig::process::example_keys(r, kind, "sk")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn damage_is_reported_key_by_key_and_repaired() {
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    create_table(&dst, "Orders", None).await;
    let seed = items(1_500);
    load(&src, "Orders", seed.clone()).await;
    load(&dst, "Orders", seed.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &sa, &da, TABLE);

    let (code, r) = f.verify(&[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["equal"], true);
    assert_eq!(r["source_items"], 1_500);
    assert_eq!(r["segments_equal"], 4, "equal tables cost no key-by-key work: {r}");
    assert_eq!(r["source_digest"], r["destination_digest"]);

    // Damage: 3 deleted, 2 changed (one top-level, one deep inside a map), 1 extra.
    for sk in [3, 400, 1_499] {
        let k = key_of(&format!("p{}", sk % 37), sk);
        dst.delete_item()
            .table_name("Orders")
            .set_key(Some(k))
            .send()
            .await
            .unwrap();
    }
    let mut changed = seed[10].clone();
    changed.insert("s".into(), AttributeValue::S("tampered".into()));
    let mut deep = seed[20].clone();
    let AttributeValue::M(m) = deep.get_mut("deep").unwrap() else {
        panic!()
    };
    m.insert("n".into(), AttributeValue::N("-1".into()));
    let mut extra = key_of("intruder", 1);
    extra.insert("s".into(), AttributeValue::S("not in the source".into()));
    load(&dst, "Orders", vec![changed, deep, extra]).await;

    let (code, r) = f.verify(&[]);
    assert_eq!(code, 3, "{r}");
    assert_eq!(
        (r["missing"].as_u64(), r["extra"].as_u64(), r["differing"].as_u64()),
        (Some(3), Some(1), Some(2)),
        "{r}"
    );
    assert_eq!(example_keys(&r, "missing"), ["p19/1499", "p3/3", "p30/400"]);
    assert_eq!(example_keys(&r, "extra"), ["intruder/1"]);
    assert_eq!(example_keys(&r, "differing"), ["p10/10", "p20/20"]);
    let mut paths: Vec<String> = r["examples"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["deep.n", "s"]);
    assert_ne!(r["source_digest"], r["destination_digest"]);

    let (code, r) = f.verify(&["--repair"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["repair"]["keys"], 6);
    assert_eq!(r["repair"]["remaining"], 0);
    let diff = compare(&src, "Orders", &dst, "Orders").await.unwrap();
    assert!(diff.is_equal(), "{diff}");
    let (code, r) = f.verify(&["--sample", "0.5"]);
    assert_eq!(code, 0, "{r}");
    assert!(
        r["source_items"].as_u64().unwrap() < 1_500,
        "a sample reads part of the table: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_flight_changes_under_a_live_sync_are_not_reported() {
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    load(&src, "Orders", items(1_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let f = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &sa, &da, TABLE);
    let mut child = f.spawn_sync(&[]);
    wait_caught_up(&f, "Orders", Duration::from_secs(120)).await;

    let stop = CancellationToken::new();
    let mut wl = Workload::new(src.clone(), "Orders");
    wl.pause = Duration::from_millis(5);
    let writes = wl.spawn(stop.clone());
    // Until the workload has made the tables differ.
    wait_for(
        Duration::from_secs(30),
        "the workload to write",
        || f.logs(),
        || async {
            let n = compare(&src, "Orders", &dst, "Orders").await.ok()?;
            (!n.is_equal()).then_some(())
        },
    )
    .await;
    // Verify while the workload keeps writing and the sync keeps applying, until a run re-checked
    // keys (the scans saw changes in flight): none may be reported.
    let mut rechecked = false;
    for _ in 0..10 {
        let (code, r) = f.verify(&[]);
        assert_eq!(r["sync_running"], true, "{r}");
        assert_eq!(code, 0, "in-flight keys were reported: {r}\n{}", f.logs());
        assert_eq!(
            (
                r["missing"].as_u64(),
                r["extra"].as_u64(),
                r["differing"].as_u64(),
                r["unsettled"].as_u64()
            ),
            (Some(0), Some(0), Some(0), Some(0)),
            "{r}"
        );
        if r["rechecked"].as_u64() > Some(0) {
            rechecked = true;
            break;
        }
    }
    assert!(rechecked, "no verify run saw a change in flight");
    // With no time for the sync to catch up, keys behind it are neither equal nor different.
    let mut unsettled_seen = false;
    for _ in 0..10 {
        let (code, r) = f.verify(&["--recheck-wait", "0s"]);
        assert_ne!(code, 3, "a lagging sync is no proof of a difference: {r}");
        assert_eq!(
            (r["missing"].as_u64(), r["extra"].as_u64(), r["differing"].as_u64()),
            (Some(0), Some(0), Some(0)),
            "{r}"
        );
        if code == 4 {
            assert!(r["unsettled"].as_u64() > Some(0), "{r}");
            assert_eq!(r["equal"], false, "{r}");
            unsettled_seen = true;
            break;
        }
        assert_eq!(code, 0, "{r}");
    }
    assert!(unsettled_seen, "no run left a key unsettled");
    stop.cancel();
    let counts = writes.await.unwrap().expect("workload");
    assert!(counts.total() > 100, "the workload made {} writes", counts.total());
    // Verify only read: the sync converges once the writes stop.
    wait_equal(&src, "Orders", &dst, "Orders", Duration::from_secs(60), || f.logs()).await;
    let (code, r) = f.verify(&[]);
    assert_eq!((code, r["rechecked"].as_u64()), (0, Some(0)), "{r}");
    // Damage made behind the running sync's back is still reported: the keys hold still on both
    // sides over the re-check rounds.
    let gone = key_of("p5", 5);
    dst.delete_item()
        .table_name("Orders")
        .set_key(Some(gone))
        .send()
        .await
        .unwrap();
    load(&dst, "Orders", vec![key_of("intruder", 1)]).await;
    let (code, r) = f.verify(&[]);
    assert_eq!(code, 3, "{r}");
    assert_eq!(r["sync_running"], true, "{r}");
    assert_eq!(example_keys(&r, "missing"), ["p5/5"], "{r}");
    assert_eq!(example_keys(&r, "extra"), ["intruder/1"], "{r}");
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", f.logs());
}
