//! The comparison against scripted tables (a fake at the [`TableReads`] seam), in paused time:
//! equal, missing, extra and changed keys, a difference that settles on re-check, and a
//! throttled scan.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use futures::future::BoxFuture;

use super::scan::{Page, TableReads};
use super::*;
use crate::apply::Limiter;
use crate::error::Kind as ErrorKind;
use crate::item::Item;

/// A table of items `{pk: S, v: N}`, scanned two items a page; a key's segment is its first
/// byte modulo the segment count, the same on both sides.
#[derive(Default)]
struct FakeTable {
    items: Mutex<BTreeMap<String, i64>>,
    /// Applied at the first point read: the change a running writer lands after the scan.
    on_first_get: Mutex<Option<(String, i64)>>,
    /// Scan calls still to throttle.
    throttle_scans: Mutex<u32>,
    scan_calls: Mutex<u32>,
}

fn item(pk: &str, v: i64) -> Item {
    Item::from([
        ("pk".to_string(), Av::S(pk.into())),
        ("v".to_string(), Av::N(v.to_string())),
    ])
}

fn pk(i: &Item) -> String {
    match i.get("pk") {
        Some(Av::S(s)) => s.clone(),
        other => panic!("no pk: {other:?}"),
    }
}

impl FakeTable {
    fn with(items: &[(&str, i64)]) -> FakeTable {
        let t = FakeTable::default();
        t.items
            .lock()
            .unwrap()
            .extend(items.iter().map(|(k, v)| (k.to_string(), *v)));
        t
    }
}

impl TableReads for FakeTable {
    fn scan_page(&self, segment: i32, total: i32, _: bool, start: Option<Item>) -> BoxFuture<'_, Result<Page>> {
        Box::pin(async move {
            *self.scan_calls.lock().unwrap() += 1;
            {
                let mut t = self.throttle_scans.lock().unwrap();
                if *t > 0 {
                    *t -= 1;
                    return Err(Error::new(
                        ErrorKind::Throttled,
                        "Scan: ProvisionedThroughputExceededException",
                    ));
                }
            }
            let after = start.as_ref().map(pk);
            let mine: Vec<Item> = self
                .items
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| (k.as_bytes()[0] as i32) % total == segment)
                .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
                .take(2)
                .map(|(k, v)| item(k, *v))
                .collect();
            let next = (mine.len() == 2).then(|| Item::from([("pk".to_string(), Av::S(pk(&mine[1])))]));
            Ok(Page {
                items: mine,
                units: Some(0.5),
                next,
            })
        })
    }

    fn get(&self, keys: Vec<Item>) -> BoxFuture<'_, Result<Vec<Item>>> {
        Box::pin(async move {
            let mut items = self.items.lock().unwrap();
            if let Some((k, v)) = self.on_first_get.lock().unwrap().take() {
                items.insert(k, v);
            }
            Ok(keys
                .iter()
                .filter_map(|k| items.get(&pk(k)).map(|v| item(&pk(k), *v)))
                .collect())
        })
    }
}

fn side(name: &str, table: Arc<FakeTable>) -> Side {
    Side {
        reads: table,
        table: name.into(),
        key_names: vec!["pk".to_string()].into(),
        shape: None,
        consistent: false,
        limiter: Arc::new(Limiter::new(0)),
        read_units: Arc::default(),
    }
}

async fn compare_fakes(src: Arc<FakeTable>, dst: Arc<FakeTable>) -> (TableReport, Vec<Finding>) {
    let (s, d) = (side("S", src), side("D", dst));
    compare(&s, &d, 4, None, &VerifyOptions::default()).await.unwrap()
}

const ROWS: &[(&str, i64)] = &[("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6), ("g", 7)];

#[tokio::test(start_paused = true)]
async fn equal_tables_compare_by_segment_digest_alone() {
    let (r, findings) = compare_fakes(Arc::new(FakeTable::with(ROWS)), Arc::new(FakeTable::with(ROWS))).await;
    assert!(r.equal && findings.is_empty());
    assert_eq!((r.segments_total, r.segments_equal, r.rechecked), (4, 4, 0));
    assert_eq!((r.source_items, r.destination_items), (7, 7));
    assert_eq!(r.source_digest, r.destination_digest);
}

#[tokio::test(start_paused = true)]
async fn missing_extra_and_changed_keys_are_found_and_named() {
    let mut dst: Vec<(&str, i64)> = ROWS.iter().copied().filter(|(k, _)| *k != "b").collect();
    dst.push(("x", 9));
    dst.iter_mut().filter(|(k, _)| *k == "e").for_each(|r| r.1 = 50);
    let (r, findings) = compare_fakes(Arc::new(FakeTable::with(ROWS)), Arc::new(FakeTable::with(&dst))).await;
    assert!(!r.equal);
    assert_eq!((r.missing, r.extra, r.differing, r.rechecked), (1, 1, 1, 3));
    let kinds: Vec<(Kind, String)> = findings
        .iter()
        .map(|f| (f.kind, pk(&f.key.to_item(&["pk".to_string()]).unwrap())))
        .collect();
    assert_eq!(
        kinds,
        [
            (Kind::Missing, "b".into()),
            (Kind::Differing, "e".into()),
            (Kind::Extra, "x".into())
        ]
    );
    let changed = r.examples.iter().find(|e| e.kind == Kind::Differing).unwrap();
    assert_eq!(changed.paths, ["v"]);
}

#[tokio::test(start_paused = true)]
async fn a_difference_that_settles_before_the_recheck_is_not_reported() {
    let mut dst: Vec<(&str, i64)> = ROWS.to_vec();
    dst[2].1 = 30;
    let dst = FakeTable::with(&dst);
    // The write in flight during the scan lands before the point reads.
    *dst.on_first_get.lock().unwrap() = Some(("c".into(), 3));
    let (r, findings) = compare_fakes(Arc::new(FakeTable::with(ROWS)), Arc::new(dst)).await;
    assert_eq!(r.rechecked, 1, "the scan saw the difference");
    assert!(r.equal && findings.is_empty(), "{findings:?}");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_scan_is_retried_to_the_same_answer() {
    let src = Arc::new(FakeTable::with(ROWS));
    *src.throttle_scans.lock().unwrap() = 6;
    let (r, _) = compare_fakes(src.clone(), Arc::new(FakeTable::with(ROWS))).await;
    assert!(r.equal);
    assert_eq!(r.source_items, 7);
    assert_eq!(*src.throttle_scans.lock().unwrap(), 0);
    assert!(
        *src.scan_calls.lock().unwrap() >= 6 + 4,
        "every segment read after the storm"
    );
}

#[test]
fn a_sample_spreads_over_more_segments() {
    let (t, all) = segments(8, None);
    assert_eq!((t, all.len()), (8, 8));
    let (t, some) = segments(8, Some(0.1));
    assert_eq!(t, 40);
    assert_eq!(some.len(), 4);
    assert!(some.iter().all(|s| *s < 40));
    assert_eq!(segments(8, Some(1.0)).1.len(), 8);
}

#[tokio::test(start_paused = true)]
async fn a_filtered_source_is_compared_as_the_destination_should_hold_it() {
    use crate::transform::{At, Filter, Spec, Transform};
    let spec = Spec {
        filter: Some(At {
            value: Arc::new(Filter::compile("item.v % 2 == 1").unwrap()),
            at: "ferry.toml:1:1".into(),
        }),
        ..Spec::default()
    };
    let odd: Vec<_> = ROWS.iter().copied().filter(|(_, v)| v % 2 == 1).collect();
    let mut s = side("S", Arc::new(FakeTable::with(ROWS)));
    s.shape = Some(Arc::new(Transform::new(spec, s.key_names.clone())));
    let d = side("D", Arc::new(FakeTable::with(&odd)));
    let (r, findings) = compare(&s, &d, 4, None, &VerifyOptions::default()).await.unwrap();
    assert!(r.equal && findings.is_empty(), "{findings:?}");
    assert_eq!(
        (r.source_items, r.destination_items),
        (4, 4),
        "the left-out items are not counted"
    );

    // An item the filter leaves out, found at the destination, is extra; a kept one gone, missing.
    let mut damaged = odd.clone();
    damaged.retain(|(k, _)| *k != "c");
    damaged.push(("b", 2));
    let d = side("D", Arc::new(FakeTable::with(&damaged)));
    let (r, findings) = compare(&s, &d, 4, None, &VerifyOptions::default()).await.unwrap();
    let kinds: Vec<_> = findings
        .iter()
        .map(|f| (f.kind, pk(&f.key.to_item(&["pk".to_string()]).unwrap())))
        .collect();
    assert_eq!(kinds, [(Kind::Extra, "b".into()), (Kind::Missing, "c".into())]);
    assert!(!r.equal);
}
