//! The snapshot scan against a scripted source table and destination: it ends promptly on a
//! write failure or a stop (no reader left behind), keeps to its read budget, and rides out
//! source throttles.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::{self, ReadBudget};
use super::scan::ScanTask;
use super::source::{Page, PageRequest, ScanSource};
use crate::apply::{Applier, ApplyIo, Limiter, WriteOp};
use crate::checkpoint::Store;
use crate::error::{Error, Kind, Result};
use crate::item::{self, Item};
use crate::source::TableContext;
use crate::telemetry::TableStats;

const TABLE: &str = "Orders";

fn key_names() -> Arc<[String]> {
    vec!["pk".to_string()].into()
}

fn key_of(i: &Item) -> String {
    match i.get("pk") {
        Some(AttributeValue::S(k)) => k.clone(),
        other => panic!("no key: {other:?}"),
    }
}

/// A source table of `segments × per_segment` items of about `item_bytes` each, read like a
/// consistent Scan (1 unit per 4 KB of a page). It answers throttles for its first
/// `throttle_for` and records when each page was served and what it cost.
struct FakeTable {
    segments: usize,
    per_segment: usize,
    pad: String,
    throttle_for: Duration,
    /// For its first `slow_for`, every page takes `page_delay` to arrive.
    slow_for: Duration,
    page_delay: Duration,
    t0: Instant,
    served: Mutex<Vec<(Duration, f64)>>,
    throttled: AtomicUsize,
}

impl FakeTable {
    fn new(segments: usize, per_segment: usize, item_bytes: usize) -> Arc<FakeTable> {
        Arc::new(FakeTable {
            segments,
            per_segment,
            pad: "x".repeat(item_bytes.saturating_sub(2 + 10 + 4)),
            throttle_for: Duration::ZERO,
            slow_for: Duration::ZERO,
            page_delay: Duration::ZERO,
            t0: Instant::now(),
            served: Mutex::default(),
            throttled: AtomicUsize::new(0),
        })
    }

    fn item(&self, segment: usize, i: usize) -> Item {
        Item::from([
            ("pk".to_string(), AttributeValue::S(format!("{segment:03}-{i:06}"))),
            ("blob".to_string(), AttributeValue::S(self.pad.clone())),
        ])
    }

    fn item_bytes(&self) -> u64 {
        item::size_of(&self.item(0, 0)) as u64
    }

    fn pages(&self) -> usize {
        self.served.lock().unwrap().len()
    }
}

impl ScanSource for FakeTable {
    async fn page(&self, req: PageRequest) -> Result<Page> {
        assert_eq!(req.total_segments as usize, self.segments);
        if self.t0.elapsed() < self.throttle_for {
            self.throttled.fetch_add(1, Relaxed);
            return Err(Error::new(
                Kind::Throttled,
                "Scan failed: ProvisionedThroughputExceededException: the level of configured provisioned throughput for the table was exceeded",
            ));
        }
        if self.t0.elapsed() < self.slow_for {
            tokio::time::sleep(self.page_delay).await;
        }
        let from = req.start.as_ref().map_or(0, |k| {
            let k = key_of(k);
            k.split_once('-').unwrap().1.parse::<usize>().unwrap() + 1
        });
        let to = (from + req.limit.unwrap_or(100) as usize).min(self.per_segment);
        let items: Vec<Item> = (from..to).map(|i| self.item(req.segment as usize, i)).collect();
        let bytes: u64 = items.iter().map(|i| item::size_of(i) as u64).sum();
        let read_units = budget::scan_units(bytes);
        self.served.lock().unwrap().push((self.t0.elapsed(), read_units));
        Ok(Page {
            next: (to < self.per_segment)
                .then(|| items.last().map(|i| item::key_of(&["pk".to_string()], i)))
                .flatten(),
            items,
            read_units,
        })
    }
}

/// A destination that writes once `gate` is open, and fails every write after `fail_after`
/// batches with a validation error.
struct Dest {
    written: Mutex<HashSet<String>>,
    gate: watch::Receiver<bool>,
    fail_after: Option<usize>,
    batches: AtomicUsize,
}

impl Dest {
    fn new(fail_after: Option<usize>) -> (Arc<Dest>, watch::Sender<bool>) {
        let (open, gate) = watch::channel(true);
        let d = Dest {
            written: Mutex::default(),
            gate,
            fail_after,
            batches: AtomicUsize::new(0),
        };
        (Arc::new(d), open)
    }
}

impl ApplyIo for Dest {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
        let _ = self.gate.clone().wait_for(|open| *open).await;
        let n = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_after.is_some_and(|limit| n > limit) {
            return Err(Error::fatal(
                "BatchWriteItem failed: ValidationException: One or more parameter values were invalid",
            ));
        }
        let mut w = self.written.lock().unwrap();
        for op in ops {
            let WriteOp::Put(i) = op else {
                panic!("the scan only puts")
            };
            w.insert(key_of(&i));
        }
        Ok(vec![])
    }
    async fn read_source(&self, _: Vec<Item>) -> Result<Vec<Item>> {
        unreachable!("the scan writes full items")
    }
    fn key_names(&self) -> &[String] {
        static K: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        K.get_or_init(|| vec!["pk".to_string()])
    }
    fn destination(&self) -> &str {
        "OrdersCopy"
    }
}

struct Rig {
    table: Arc<FakeTable>,
    dest: Arc<Dest>,
    store: Arc<Store>,
    stats: Arc<TableStats>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(table: Arc<FakeTable>, dest: Arc<Dest>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        Rig {
            store: Arc::new(Store::open(&dir.path().join("state.db")).unwrap()),
            table,
            dest,
            stats: Arc::default(),
            stop: CancellationToken::new(),
            _dir: dir,
        }
    }

    /// The scan and its apply path (`lanes` lanes, no write budget).
    fn scan(&self, read_units_per_second: u32, lanes: usize) -> (ScanTask<FakeTable>, Applier) {
        let t = &self.table;
        let task = ScanTask {
            source: t.clone(),
            ctx: TableContext::new(
                TABLE.into(),
                key_names(),
                self.store.clone(),
                self.stats.clone(),
                self.stop.clone(),
                || panic!("the test passes its own apply path"),
            ),
            segments: t.segments as u32,
            read_limiter: Arc::new(Limiter::new(read_units_per_second)),
            read_budget: ReadBudget {
                units_per_second: read_units_per_second,
                basis: "test".to_string(),
            },
            table_bytes: t.item_bytes() * (t.segments * t.per_segment) as u64,
            table_items: (t.segments * t.per_segment) as u64,
            only: None,
            leasing: None,
        };
        let applier = Applier::start(self.dest.clone(), lanes, Arc::new(Limiter::new(0)), self.stats.clone());
        (task, applier)
    }

    /// Every saved resume point lies after written items only.
    fn assert_positions_durable(&self) -> i64 {
        let written = self.dest.written.lock().unwrap();
        let mut saved = 0;
        for row in self.store.segments(TABLE).unwrap() {
            let seg = row.segment as usize;
            for i in 0..row.items as usize {
                let k = key_of(&self.table.item(seg, i));
                assert!(
                    written.contains(&k),
                    "segment {seg} saved {} items but {k} is not written",
                    row.items
                );
            }
            saved += row.items;
        }
        saved
    }
}

/// A write that fails for good mid-scan ends the scan with that error, and every reader ends
/// with it: today's wait loop spun on the failure and never let the readers finish.
#[tokio::test(start_paused = true)]
async fn a_write_failure_mid_scan_ends_the_scan_with_its_error_and_every_reader() {
    let (dest, _open) = Dest::new(Some(5));
    let rig = Rig::new(FakeTable::new(8, 20_000, 100), dest);
    let (task, applier) = rig.scan(0, 4);

    let err = task.run(applier).await.unwrap_err();

    assert!(err.is_fatal(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("ValidationException") && msg.contains("cannot apply put of key"),
        "{msg}"
    );
    assert_eq!(
        Arc::strong_count(&rig.table),
        1,
        "a segment reader still holds the source"
    );
    assert!(
        rig.table.pages() < 8 * 200,
        "the scan went on reading after the failure"
    );
    rig.assert_positions_durable();
}

/// A stop while every reader waits on a full apply queue ends the readers at once; what was
/// queued is still written, and the saved positions cover written items only.
#[tokio::test(start_paused = true)]
async fn a_stop_while_readers_wait_on_a_full_apply_queue_ends_them() {
    let (dest, open) = Dest::new(None);
    let _ = open.send(false);
    let rig = Rig::new(FakeTable::new(4, 20_000, 100), dest);
    let (task, applier) = rig.scan(0, 2);
    let scan = tokio::spawn(task.run(applier));
    // With time paused, this returns only once every other task is idle: the lanes hold their
    // first batch at the closed gate and the readers wait for room in the apply queue.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pages = rig.table.pages();
    assert!(pages < 4 * 200, "the readers are not held back ({pages} pages read)");
    assert!(Arc::strong_count(&rig.table) > 2, "the readers are waiting");

    rig.stop.cancel();
    // The test and the scan's own handle remain once the readers are gone. (Before the fix,
    // readers never saw the stop while the queue stayed full: this waited for ever.)
    while Arc::strong_count(&rig.table) > 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(rig.table.pages(), pages, "no page read after the stop");

    let _ = open.send(true);
    assert!(!scan.await.unwrap().unwrap(), "a stopped scan is not finished");
    let saved = rig.assert_positions_durable();
    assert!(saved > 0, "the writes queued before the stop were saved");
}

/// Over any 30 s, the scan reads within 10% of its budget (counted with what the source says
/// each page consumed), and it uses the budget: the whole table takes about its expected time.
#[tokio::test(start_paused = true)]
async fn the_scan_keeps_to_its_read_budget() {
    const BUDGET: u32 = 50;
    let (dest, _open) = Dest::new(None);
    // 32 segments × 400 items of ~1 KB: 3,200 read units, 64 s at 50 units/s.
    let rig = Rig::new(FakeTable::new(32, 400, 1_000), dest);
    let (task, applier) = rig.scan(BUDGET, 4);

    assert!(task.run(applier).await.unwrap(), "the scan finishes");

    assert_eq!(rig.dest.written.lock().unwrap().len(), 32 * 400, "every item copied");
    let served = rig.table.served.lock().unwrap().clone();
    let total: f64 = served.iter().map(|(_, u)| u).sum();
    let busiest = busiest_30s(&served);
    let elapsed = served.last().unwrap().0.as_secs_f64();
    eprintln!(
        "read budget {BUDGET}/s: busiest 30 s read {busiest} units ({:.1}/s); {total} units in {elapsed:.1} s ({:.1}/s)",
        busiest / 30.0,
        total / elapsed
    );
    assert!(
        busiest <= 1.1 * 30.0 * BUDGET as f64,
        "busiest 30 s read {busiest} units"
    );
    assert!(
        total / elapsed >= 0.9 * BUDGET as f64,
        "the budget went unused: {total} units in {elapsed} s"
    );
}

/// A source that throttles for a while slows the scan; it never fails it.
#[tokio::test(start_paused = true)]
async fn source_throttles_slow_the_scan_without_failing_it() {
    let (dest, _open) = Dest::new(None);
    let mut table = FakeTable::new(4, 500, 200);
    Arc::get_mut(&mut table).unwrap().throttle_for = Duration::from_secs(120);
    let rig = Rig::new(table, dest);
    let (task, applier) = rig.scan(100, 2);

    assert!(task.run(applier).await.unwrap(), "the scan finishes");

    assert_eq!(rig.dest.written.lock().unwrap().len(), 4 * 500, "every item copied");
    assert!(rig.table.throttled.load(Relaxed) >= 4, "the source did throttle");
    assert!(rig.stats.throttles.load(Relaxed) >= 4, "throttles are counted");
    let first = rig.table.served.lock().unwrap()[0].0;
    assert!(first >= Duration::from_secs(120), "a page was served while throttling");
}

/// The most read units served in any 30 s.
fn busiest_30s(served: &[(Duration, f64)]) -> f64 {
    let window = Duration::from_secs(30);
    served
        .iter()
        .map(|(from, _)| {
            served
                .iter()
                .filter(|(t, _)| t >= from && *t < *from + window)
                .map(|(_, u)| u)
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
}

/// Slow pages leave the budget unused for a while; the scan must not make up for it in a burst
/// once pages come fast again.
#[tokio::test(start_paused = true)]
async fn slow_pages_do_not_bank_budget_for_a_burst() {
    const BUDGET: u32 = 50;
    let (dest, _open) = Dest::new(None);
    let mut table = FakeTable::new(16, 400, 1_000);
    let t = Arc::get_mut(&mut table).unwrap();
    (t.slow_for, t.page_delay) = (Duration::from_secs(60), Duration::from_secs(20));
    let rig = Rig::new(table, dest);
    let (task, applier) = rig.scan(BUDGET, 4);

    assert!(task.run(applier).await.unwrap(), "the scan finishes");

    assert_eq!(rig.dest.written.lock().unwrap().len(), 16 * 400, "every item copied");
    let served = rig.table.served.lock().unwrap().clone();
    assert!(served[0].0 >= Duration::from_secs(20), "the first pages were slow");
    let busiest = busiest_30s(&served);
    assert!(
        busiest <= 1.1 * 30.0 * BUDGET as f64,
        "busiest 30 s read {busiest} units after slow pages"
    );
}

mod spread;
