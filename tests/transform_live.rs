//! Transforms on the local rig: a table copied with a renamed sort key (and index key), renamed
//! and dropped attributes (nested too), a constant, and a filter, under a random workload with
//! kill -9 and shard rollovers. The destination must equal the transformed, filtered source by a
//! full scan, computed here by hand (not by ferry's code); then `ferry verify` judges the
//! transformed copy equal, names exactly the keys damaged by hand, and `--repair` mends them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as Av, StreamViewType};
use ferry::item::canonical::canonical;
use ferry::item::{Item, json::item_to_json};
use ferry_rig::compare::scan_items;
use ferry_rig::data::{describe, load, rich_item};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::scenario::{Scenario, Stream};
use ferry_rig::wait::{wait_caught_up, wait_for, wait_phase};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const TABLE: &str = r#"[[table]]
source = "Orders"
scan_segments = 4
max_write_units_per_second = 3000
[table.transform]
rename = { sk = "sort", group = "team", s = "text", "deep.child" = "child_of_deep" }
drop = ["b", "n_precise", "deep.n"]
set = { origin = "eu" }
filter = "has(item.flag) && item.flag"
"#;

/// What the destination must hold for a source item, written out by hand.
fn expected(mut i: Item) -> Option<Item> {
    if i.get("flag") != Some(&Av::Bool(true)) {
        return None;
    }
    i.remove("b");
    i.remove("n_precise");
    let mut child = None;
    if let Some(Av::M(deep)) = i.get_mut("deep") {
        deep.remove("n");
        child = deep.remove("child");
    }
    if let Some(c) = child {
        i.insert("child_of_deep".into(), c);
    }
    for (from, to) in [("sk", "sort"), ("group", "team"), ("s", "text")] {
        if let Some(v) = i.remove(from) {
            i.insert(to.into(), v);
        }
    }
    i.insert("origin".into(), Av::S("eu".into()));
    Some(i)
}

fn key(i: &Item, sort: &str) -> String {
    let k = Item::from([("pk".to_string(), i["pk"].clone()), ("sk".to_string(), i[sort].clone())]);
    item_to_json(&k).to_string()
}

/// A source table, its transformed copy, and the ferry folder that copies it.
struct Pair<'a> {
    src: &'a Client,
    dst: &'a Client,
    table: &'a str,
    ferry: &'a FerryDir,
}

/// The transformed source against the destination: keys missing, extra and differing.
async fn diff(p: &Pair<'_>) -> (usize, Vec<String>) {
    let want: BTreeMap<String, Value> = scan_items(p.src, p.table)
        .await
        .unwrap()
        .into_iter()
        .filter_map(expected)
        .map(|i| (key(&i, "sort"), canonical(&i)))
        .collect();
    let have: BTreeMap<String, Value> = scan_items(p.dst, p.table)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (key(&i, "sort"), canonical(&i)))
        .collect();
    let mut wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(v))
        .map(|(k, _)| format!("missing or differing {k}"))
        .collect();
    wrong.extend(
        have.keys()
            .filter(|k| !want.contains_key(*k))
            .map(|k| format!("extra {k}")),
    );
    (want.len(), wrong)
}

async fn wait_transformed_equal(p: &Pair<'_>) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (n, wrong) = diff(p).await;
        if wrong.is_empty() {
            return n;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "the destination never matched the transformed source: {} keys, e.g. {:?}\n{}",
                wrong.len(),
                &wrong[..wrong.len().min(5)],
                p.ferry.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn examples(r: &Value, kind: &str) -> Vec<String> {
    ferry_rig::process::example_keys(r, kind, "sort")
}

fn label(i: &Item) -> String {
    let (Av::S(pk), Av::N(sort)) = (&i["pk"], &i["sort"]) else {
        panic!("{i:?}")
    };
    format!("{pk}/{sort}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transformed_copy_survives_kills_and_rollovers_and_verify_judges_it() {
    let rig = Scenario::setup(ferry_bin!())
        .stream(Stream::AfterLoad(StreamViewType::NewAndOldImages))
        .items(4_000, 42)
        .keys("seed-", 97)
        .tables(TABLE)
        .build()
        .await;
    let ddb = DynamoLocal::shared();
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(3);
    let writes = wl.spawn(stop.clone());

    // kill -9 in the middle of the snapshot, then once while streaming, with rollovers between.
    let mut child = rig.ferry.spawn_sync(&[]);
    wait_for(
        Duration::from_secs(60),
        "snapshot progress",
        || rig.ferry.logs(),
        || async {
            let t = rig.ferry.table_status("Orders")?;
            (t["snapshot"]["items_copied"].as_i64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let mut child = rig.ferry.spawn_sync(&[]);
    wait_phase(&rig.ferry, "Orders", "streaming", Duration::from_secs(120)).await;
    ddb.rollover().expect("rollover");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let mut child = rig.ferry.spawn_sync(&[]);
    ddb.rollover().expect("rollover");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    let pair = Pair {
        src: &rig.src,
        dst: &rig.dst,
        table: "Orders",
        ferry: &rig.ferry,
    };
    let kept = wait_transformed_equal(&pair).await;
    let all = scan_items(&rig.src, "Orders").await.unwrap().len();
    assert!(
        kept > 500 && kept < all,
        "the filter keeps some items and leaves others: {kept} of {all}"
    );

    // The destination was created in the transform's shape: renamed sort key and index key.
    let d = describe(&rig.dst, "Orders").await;
    let names = |ks: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        ks.iter().map(|k| k.attribute_name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(d.key_schema()), ["pk", "sort"]);
    assert_eq!(names(d.global_secondary_indexes()[0].key_schema()), ["team", "sort"]);
    let t = rig.ferry.table_status("Orders").unwrap();
    assert!(t["shards_done"].as_u64().unwrap() >= 2, "rollovers were followed: {t}");

    // An item that leaves the filter is deleted at the destination.
    let leaving = scan_items(&rig.dst, "Orders").await.unwrap().remove(0);
    let (pk, sort) = (leaving["pk"].clone(), leaving["sort"].clone());
    rig.src
        .update_item()
        .table_name("Orders")
        .key("pk", pk.clone())
        .key("sk", sort.clone())
        .update_expression("SET flag = :f")
        .expression_attribute_values(":f", Av::Bool(false))
        .send()
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the item left the filter",
        || rig.ferry.logs(),
        || async {
            let got = rig
                .dst
                .get_item()
                .table_name("Orders")
                .key("pk", pk.clone())
                .key("sort", sort.clone());
            got.consistent_read(true)
                .send()
                .await
                .ok()?
                .item
                .is_none()
                .then_some(())
        },
    )
    .await;
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", rig.ferry.logs());

    verify_damage_and_repair(&pair, kept - 1).await;
}

/// `ferry verify` judges the transformed copy equal, then names exactly the keys damaged by
/// hand, and `--repair` mends them through the transform.
async fn verify_damage_and_repair(p: &Pair<'_>, kept: usize) {
    let (code, r) = p.ferry.verify(&[]);
    assert_eq!(code, 0, "the transformed copy verifies equal: {r}");
    assert_eq!(r["source_items"].as_u64(), Some(kept as u64), "{r}");

    // Damage by hand: one kept item changed, one deleted, and one the filter leaves out written
    // in the destination's shape.
    let dst_items = scan_items(p.dst, p.table).await.unwrap();
    let mut changed = dst_items[0].clone();
    changed.insert("text".into(), Av::S("tampered".into()));
    let gone = dst_items[1].clone();
    let outsider = scan_items(p.src, p.table)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.get("flag") == Some(&Av::Bool(false)))
        .unwrap();
    let mut outsider = expected(Item::from_iter(
        outsider
            .into_iter()
            .map(|(k, v)| if k == "flag" { (k, Av::Bool(true)) } else { (k, v) }),
    ))
    .unwrap();
    outsider.insert("flag".into(), Av::Bool(false));
    for item in [changed.clone(), outsider.clone()] {
        p.dst
            .put_item()
            .table_name(p.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    p.dst
        .delete_item()
        .table_name(p.table)
        .key("pk", gone["pk"].clone())
        .key("sort", gone["sort"].clone())
        .send()
        .await
        .unwrap();
    let (code, r) = p.ferry.verify(&[]);
    assert_eq!(code, 3, "{r}");
    assert_eq!(
        (r["missing"].as_u64(), r["extra"].as_u64(), r["differing"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(examples(&r, "missing"), [label(&gone)]);
    assert_eq!(examples(&r, "extra"), [label(&outsider)]);
    assert_eq!(examples(&r, "differing"), [label(&changed)]);

    let (code, r) = p.ferry.verify(&["--repair"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["repair"]["keys"], 3, "{r}");
    assert!(diff(p).await.1.is_empty(), "repaired through the transform");
}

/// The same transform with `snapshot = "export"` on moto: the export's files are loaded by ferry's
/// loader through the same transform (ImportTable is refused: it cannot transform), kill -9
/// lands in the load, and the stream carries the changes made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_loaded_by_ferry_goes_through_the_same_transform() {
    const DST_ACCOUNT: &str = "111111111111";
    let (table, bucket) = ("OrdersT", "ferry-dst-orderst");
    let moto = Moto::shared();
    let (src, dst) = moto.cross_account(DST_ACCOUNT, table, bucket).await;
    let mut rng = StdRng::seed_from_u64(11);
    let items = (0..600)
        .map(|i| rich_item(&format!("m-{}", i % 13), i, &mut rng))
        .collect();
    load(&src, table, items).await;

    let transform = &TABLE[TABLE.find("[table.transform]").unwrap()..];
    let config = |loader: &str| {
        format!(
            "[source]\nprofile = \"src\"\nendpoint_url = \"{m}\"\n\n\
             [destination]\nprofile = \"dst\"\nendpoint_url = \"{m}\"\nrole_arn = \"arn:aws:iam::{DST_ACCOUNT}:role/ferry-dst\"\n\n\
             [state]\npath = \"state/ferry.db\"\n\n[export]\nbucket = \"{bucket}\"\nprefix = \"exports\"\n\
             bucket_owner = \"{DST_ACCOUNT}\"\n\n[[table]]\nsource = \"{table}\"\nsnapshot = \"export\"\nloader = \"{loader}\"\n{transform}",
            m = moto.endpoint,
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (sa, da) = (Account::fresh("tsrc"), Account::fresh("tdst"));
    let ferry = FerryDir::custom(&ferry_bin!(), dir.path(), &sa, &da, &config("import"));
    let out = ferry.run(&["sync", "-c", "ferry.toml", "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("loader = \"import\" cannot transform"),
        "{stderr}"
    );
    std::fs::write(dir.path().join("ferry.toml"), config("ferry")).unwrap();

    let during = Workload::new(src.clone(), table);
    let during = tokio::spawn(async move { during.run(CancellationToken::new(), Some(300)).await });
    let mut child = ferry.spawn_sync(&["--enable-pitr"]);
    wait_for(
        Duration::from_secs(120),
        "the export's load",
        || ferry.logs(),
        || async {
            let t = ferry.table_status(table)?;
            (t["snapshot"]["items_copied"].as_i64().unwrap_or(0) > 0 || t["phase"] == "streaming").then_some(())
        },
    )
    .await;
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let mut child = ferry.spawn_sync(&["--enable-pitr"]);
    wait_phase(&ferry, table, "streaming", Duration::from_secs(120)).await;
    during.await.unwrap().expect("workload during the load");
    wait_caught_up(&ferry, table, Duration::from_secs(120)).await;
    let pair = Pair {
        src: &src,
        dst: &dst,
        table,
        ferry: &ferry,
    };
    let kept = wait_transformed_equal(&pair).await;
    assert!(kept > 100, "{kept}");
    assert!(ferry.all_logs().contains("export started"), "{}", ferry.logs());
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", ferry.logs());
    verify_damage_and_repair(&pair, kept).await;
}
