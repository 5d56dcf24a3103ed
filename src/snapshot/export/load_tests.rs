//! The loader against a scripted bucket (a fake at the [`ExportObjects`] seam) and a recording
//! destination, in paused time: a slow body, a throttle storm (503 SlowDown) in the middle of a
//! file, and a truncated file, which must be named with its line.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use md5::Digest;

use super::*;
use crate::apply::{ApplyIo, Limiter, WriteOp};
use crate::checkpoint::Store;
use crate::clock::now_ms;
use crate::error::Kind;
use crate::snapshot::export::manifest::DataFile;
use crate::snapshot::export::objects::{Chunks, Listing};
use crate::snapshot::export::reader::Expect;

const KEY: &str = "f/data/1.json.gz";
const ITEMS: usize = 50;
const CHUNK: usize = 100;

/// One object, served `CHUNK` bytes at a time.
#[derive(Default)]
struct Bucket {
    object: Vec<u8>,
    /// Every chunk takes this long to arrive.
    chunk_delay: Duration,
    /// Opens still to fail after their first chunk with a 503 SlowDown.
    slowdowns: Mutex<u32>,
    /// Serve only this many bytes, then end the body.
    truncate_at: Option<usize>,
    opens: Mutex<u32>,
}

impl ExportObjects for Bucket {
    fn get<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async { Ok(None) })
    }

    fn open<'a>(&'a self, _: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Chunks>>> {
        Box::pin(async move {
            assert!(key.starts_with("f/data/"), "{key}");
            *self.opens.lock().unwrap() += 1;
            let slow_down = {
                let mut n = self.slowdowns.lock().unwrap();
                let hit = *n > 0;
                *n = n.saturating_sub(1);
                hit
            };
            let end = self.truncate_at.unwrap_or(self.object.len());
            let mut chunks: Vec<Result<Vec<u8>>> = self.object[..end].chunks(CHUNK).map(|c| Ok(c.to_vec())).collect();
            if slow_down {
                chunks.truncate(1);
                chunks.push(Err(Error::new(
                    Kind::Throttled,
                    "SlowDown: Please reduce your request rate",
                )));
            }
            let delay = self.chunk_delay;
            let body = futures::stream::iter(chunks).then(move |c| async move {
                tokio::time::sleep(delay).await;
                c
            });
            Ok(Some(Box::pin(body) as Chunks))
        })
    }

    fn list<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Option<&'a str>,
        _: Option<String>,
    ) -> BoxFuture<'a, Result<Listing>> {
        Box::pin(async { Ok(Listing::default()) })
    }
}

/// Counts the puts of every key.
#[derive(Default)]
struct Dest {
    puts: Mutex<HashMap<String, u32>>,
}

impl ApplyIo for Dest {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
        for op in ops {
            if let WriteOp::Put(i) = op
                && let Some(Av::S(k)) = i.get("pk")
            {
                *self.puts.lock().unwrap().entry(k.clone()).or_default() += 1;
            }
        }
        Ok(Vec::new())
    }
    crate::apply::test_support::write_only!();
}

/// The gzip'd export file of `ITEMS` items, and what its manifest says about it.
fn export_file() -> (Vec<u8>, Expect) {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..ITEMS {
        writeln!(gz, r#"{{"Item":{{"pk":{{"S":"k{i}"}},"v":{{"N":"{i}"}}}}}}"#).unwrap();
    }
    let bytes = gz.finish().unwrap();
    let md5 = STANDARD.encode(md5::Md5::digest(&bytes));
    let expect = Expect {
        items: Some(ITEMS as u64),
        md5: Some(md5),
    };
    (bytes, expect)
}

/// A loader of table "T" from an export of `files` (ITEMS items each), read through a fake
/// bucket (its S3 client is never called), saving into `store`.
fn loader(files: Vec<DataFile>, store: &Arc<Store>, stats: &Arc<TableStats>) -> FileLoader {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    );
    FileLoader {
        s3,
        export: Arc::new(Export {
            bucket: "b".into(),
            folder: "f/".into(),
            export_time_ms: Some(now_ms()),
            item_count: Some((files.len() * ITEMS) as u64),
            files,
        }),
        table: "T".into(),
        key_names: vec!["pk".to_string()].into(),
        store: store.clone(),
        stats: stats.clone(),
        stop: CancellationToken::new(),
        parallel_files: 4,
        export_time_ms: now_ms(),
        report_every: Duration::from_secs(3600),
        only: None,
        leasing: None,
    }
}

struct Loaded {
    result: Result<bool>,
    dest: Arc<Dest>,
    stats: Arc<TableStats>,
    done: Option<SegmentRow>,
}

async fn load(bucket: Arc<Bucket>, expect: Expect) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ferry.db")).unwrap());
    let stats = Arc::new(TableStats::default());
    let files = vec![DataFile {
        key: KEY.into(),
        expect,
    }];
    let loader = loader(files, &store, &stats);
    let dest = Arc::new(Dest::default());
    let applier = Applier::start(dest.clone(), 2, Arc::new(Limiter::new(0)), stats.clone());
    let result = loader.run_with(bucket, applier).await;
    let done = store.segments("T").unwrap().into_iter().find(|s| s.segment == 0);
    Loaded {
        result,
        dest,
        stats,
        done,
    }
}

fn assert_each_put_once(dest: &Dest) {
    let puts = dest.puts.lock().unwrap();
    assert_eq!(puts.len(), ITEMS, "every item written");
    assert!(puts.values().all(|n| *n == 1), "no item written twice: {puts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_body_loads_whole_and_is_recorded_done() {
    let (object, expect) = export_file();
    let chunks = object.len().div_ceil(CHUNK);
    assert!(chunks > 1, "the file spans several chunks");
    let bucket = Arc::new(Bucket {
        object,
        chunk_delay: Duration::from_secs(20),
        ..Default::default()
    });
    let started = tokio::time::Instant::now();
    let l = load(bucket.clone(), expect).await;
    assert!(l.result.unwrap(), "the load completed");
    assert!(
        started.elapsed() >= Duration::from_secs(20 * chunks as u64),
        "the body was slow"
    );
    assert_each_put_once(&l.dest);
    assert_eq!(*bucket.opens.lock().unwrap(), 1, "a slow body is not a failure");
    let done = l.done.unwrap();
    assert!(done.done && done.items == ITEMS as i64, "{done:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slowdown_storm_mid_file_rereads_it_and_writes_each_item_once() {
    let (object, expect) = export_file();
    let bucket = Arc::new(Bucket {
        object,
        slowdowns: Mutex::new(3),
        ..Default::default()
    });
    let l = load(bucket.clone(), expect).await;
    assert!(l.result.unwrap(), "the load completed");
    assert_eq!(
        *bucket.opens.lock().unwrap(),
        4,
        "read again from the start after each SlowDown"
    );
    assert!(l.stats.throttles.load(Relaxed) >= 3, "counted as throttles");
    assert_each_put_once(&l.dest);
    assert!(l.done.unwrap().done);
}

#[tokio::test(start_paused = true)]
async fn a_truncated_file_stops_the_table_naming_the_file_and_line() {
    let (object, expect) = export_file();
    let cut = object.len() * 2 / 3;
    let bucket = Arc::new(Bucket {
        object,
        truncate_at: Some(cut),
        ..Default::default()
    });
    let l = load(bucket, expect).await;
    let err = l.result.unwrap_err();
    assert!(err.is_fatal(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("s3://b/f/data/1.json.gz") && msg.contains("line"), "{msg}");
    assert!(
        !l.done.is_some_and(|d| d.done),
        "a truncated file is not recorded loaded"
    );
}

/// An export of three files leased to two workers: the coordinator offers every file not loaded
/// and loads none; each worker loads only the file it holds; the load completes once every file's
/// lease says done.
#[tokio::test]
async fn export_files_leased_to_workers_are_each_loaded_once_and_the_load_waits_for_all() {
    use crate::checkpoint::lease::units::fake::Board;
    use crate::checkpoint::lease::units::{Done, UnitLease};
    let (object, expect) = export_file();
    let bucket = Arc::new(Bucket {
        object,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ferry.db")).unwrap());
    let stats = Arc::new(TableStats::default());
    let files: Vec<DataFile> = (0..3)
        .map(|i| DataFile {
            key: format!("f/data/{i}.json.gz"),
            expect: expect.clone(),
        })
        .collect();
    let loader = |only: Option<usize>, leasing: Option<Arc<Board>>| FileLoader {
        only,
        leasing: leasing.map(|b| b as Arc<dyn crate::checkpoint::lease::units::Offers>),
        ..loader(files.clone(), &store, &stats)
    };
    let dest = Arc::new(Dest::default());
    let applier = || Applier::start(dest.clone(), 2, Arc::new(Limiter::new(0)), stats.clone());
    let board = Arc::new(Board::default());
    let coordinating = tokio::spawn(loader(None, Some(board.clone())).run_with(bucket.clone(), applier()));
    let mut loaded = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while loaded.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "files offered: {loaded:?}");
        let free: Vec<String> = board
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (o, l))| o.is_none() && l.done.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in free {
            let i: usize = id.parse().unwrap();
            assert!(
                loader(Some(i), None).run_with(bucket.clone(), applier()).await.unwrap(),
                "file {i} loaded"
            );
            let row = store
                .segments("T")
                .unwrap()
                .into_iter()
                .find(|r| r.segment == i as i64)
                .unwrap();
            assert!(row.done, "its row says done before its lease does");
            let done = Done {
                records: row.items,
                ..Done::default()
            };
            board.0.lock().unwrap().insert(
                id,
                (
                    None,
                    UnitLease {
                        done: Some(done),
                        ..UnitLease::default()
                    },
                ),
            );
            loaded.push(i);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let complete = tokio::time::timeout(Duration::from_secs(10), coordinating)
        .await
        .expect("completes");
    assert!(complete.unwrap().unwrap(), "the load completes once every file is");
    let puts = dest.puts.lock().unwrap();
    assert_eq!(puts.len(), ITEMS);
    assert!(
        puts.values().all(|n| *n == 3),
        "each file's items written once per file: {puts:?}"
    );
    assert_eq!(stats.snapshot_items.load(Relaxed), 3 * ITEMS as u64);
    assert!(
        board.0.lock().unwrap().is_empty(),
        "the loaded files' leases are removed"
    );
}
