//! Runs long past the capture point, and shards far behind their tip, under paused time with a
//! clock the test controls.
//!
//! 25 h after capture, new shards (found by a listing in the run, or children of a shard the run
//! finished) are read from their start: they are younger than retention, so there is no gap. A
//! saved position that is really trimmed still stops the table. And empty pages from a shard
//! that is still catching up neither claim caught-up nor cost a sleep.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use super::super::api::StartAt;
use super::super::consumer::{Pos, ShardConsumer};
use super::*;
use crate::checkpoint::{OrderedAck, ShardRow};

const H: i64 = 3_600_000;
/// The capture point of the table in these tests.
const CAPTURED_AT: i64 = 1_800_000_000_000;

/// GetShardIterator's answer for a trimmed position, as the SDK reports it.
pub(super) fn trimmed() -> crate::error::Error {
    use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
    use aws_sdk_dynamodbstreams::types::error::TrimmedDataAccessException;
    use aws_smithy_types::error::ErrorMetadata;
    let code = "TrimmedDataAccessException";
    let meta = ErrorMetadata::builder().code(code).message("trimmed").build();
    let err = GetShardIteratorError::TrimmedDataAccessException(
        TrimmedDataAccessException::builder()
            .message("trimmed")
            .meta(meta)
            .build(),
    );
    let raw = aws_smithy_runtime_api::http::Response::new(
        400u16.try_into().unwrap(),
        aws_smithy_types::body::SdkBody::empty(),
    );
    crate::error::Error::from_sdk(
        "GetShardIterator",
        aws_smithy_runtime_api::client::result::SdkError::service_error(err, raw),
    )
}

/// Wall time that moves with tokio's (paused) clock, starting `offset_ms` after the capture.
fn clock_at(offset_ms: i64) -> Clock {
    let start = tokio::time::Instant::now();
    Clock::new(move || CAPTURED_AT + offset_ms + start.elapsed().as_millis() as i64)
}

fn row(id: &str, parent: Option<&str>, position: Option<u64>, last_record_ms: Option<i64>, done: bool) -> ShardRow {
    ShardRow {
        shard_id: id.into(),
        parent_id: parent.map(str::to_string),
        position: position.map(|p| format!("{p:021}")),
        last_record_ms,
        done,
        records: 0,
        captured: parent.is_none(),
    }
}

fn shard(
    id: &str,
    parent: &str,
    records: Vec<(&str, Option<i64>, u64)>,
    looks_open_for: u32,
    listed_after: u32,
) -> ScriptShard {
    ScriptShard {
        id: id.into(),
        parent: Some(parent.into()),
        records: records.into_iter().map(|(k, v, s)| (k.to_string(), v, s)).collect(),
        looks_open_for,
        listed_after,
        trimmed_before: 0,
    }
}

/// The state a run left 25 h ago: the captured root finished (and since gone from the stream),
/// `mid` read up to its first record, its child `new0` known but never read.
fn store_a_day_later(dir: &std::path::Path) -> Arc<Store> {
    let store = Arc::new(Store::open(&dir.join("s.db")).unwrap());
    store
        .put_shards(
            "T",
            &[
                row("root", None, Some(2), Some(CAPTURED_AT - 60_000), true),
                row("mid", Some("root"), Some(3), Some(CAPTURED_AT + 60_000), false),
                row("new0", Some("mid"), None, None, false),
            ],
        )
        .unwrap();
    store
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    // Virtual time: the deadline is a bound on the scripted run, not a timing threshold.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_day_after_capture_new_shards_are_read_from_their_start_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_a_day_later(dir.path());
    let io = RecordingIo::default();
    let clock = clock_at(25 * H);
    let mut script = Scripted::new(
        vec![
            // mid's first record was applied 25 h ago; the rest was written since.
            shard(
                "mid",
                "root",
                vec![
                    ("k1", Some(1), 3),
                    ("k1", Some(2), 4),
                    ("k2", Some(1), 5),
                    ("k3", Some(1), 6),
                ],
                3,
                0,
            ),
            // Split sibling known from the earlier run: proven young by mid's last record.
            shard("new0", "mid", vec![("k5", Some(1), 20), ("k5", Some(2), 21)], 0, 0),
            // Found by a listing of this run.
            shard(
                "new1",
                "mid",
                vec![("k1", Some(3), 7), ("k2", Some(2), 8), ("k4", Some(1), 9)],
                2,
                2,
            ),
            shard(
                "new2",
                "new1",
                vec![("k1", Some(4), 10), ("k3", Some(2), 11), ("k2", None, 12)],
                u32::MAX,
                5,
            ),
        ],
        io.clone(),
    );
    script.clock = clock.clone();
    let stats = Arc::new(TableStats::default());
    let stop = CancellationToken::new();
    let mut t = task(
        script,
        "arn:stream",
        CAPTURED_AT - 300_000,
        store.clone(),
        stats.clone(),
        stop.clone(),
    );
    t.clock = clock;
    let applier = Applier::start(Arc::new(io.clone()), 2, Arc::new(Limiter::new(0)), stats);
    let run = tokio::spawn(t.run(applier));

    let expected: HashMap<String, Option<i64>> = [
        ("k1", Some(4)),
        ("k2", None),
        ("k3", Some(2)),
        ("k4", Some(1)),
        ("k5", Some(2)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    wait_until("every record since the saved positions applied", || {
        run.is_finished() || io.0.lock().unwrap().current == expected
    })
    .await;
    assert!(!run.is_finished(), "the table stopped: {:?}", run.await);
    stop.cancel();
    run.await.unwrap().unwrap();

    let d = io.0.lock().unwrap();
    assert_eq!(
        d.history["k1"],
        vec![2, 3, 4],
        "mid's saved record is not applied again; order kept"
    );
    let mut done: Vec<String> = store
        .shards("T")
        .unwrap()
        .into_iter()
        .filter(|s| s.done)
        .map(|s| s.shard_id)
        .collect();
    done.sort();
    assert_eq!(done, vec!["mid", "new0", "new1", "root"]);
}

#[tokio::test(start_paused = true)]
async fn a_day_after_capture_a_trimmed_saved_position_still_stops_the_table_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_a_day_later(dir.path());
    let io = RecordingIo::default();
    let clock = clock_at(25 * H);
    let mut mid = shard(
        "mid",
        "root",
        vec![("k1", Some(1), 3), ("k1", Some(2), 4), ("k2", Some(1), 5)],
        0,
        0,
    );
    // Records 3 and 4 are gone: resuming after 3 is impossible.
    mid.trimmed_before = 5;
    let new0 = shard("new0", "mid", vec![("k5", Some(1), 20)], u32::MAX, 0);
    let mut script = Scripted::new(vec![mid, new0], io.clone());
    script.clock = clock.clone();
    let stats = Arc::new(TableStats::default());
    let mut t = task(
        script,
        "arn:stream",
        CAPTURED_AT - 300_000,
        store,
        stats.clone(),
        CancellationToken::new(),
    );
    t.clock = clock;
    let applier = Applier::start(Arc::new(io.clone()), 2, Arc::new(Limiter::new(0)), stats);
    let err = t.run(applier).await.unwrap_err();
    assert!(err.is_fatal());
    assert!(
        err.to_string().contains(&format!(
            "gap in stream arn:stream: shard mid was trimmed past sequence number {:021}",
            3
        )),
        "{err}"
    );
    assert!(
        err.to_string().contains("fresh snapshot"),
        "the message says what to do: {err}"
    );
    assert!(io.0.lock().unwrap().current.is_empty(), "nothing applied past a gap");
}

/// One shard far behind: `walk` empty pages, each with a new iterator, before its records; then
/// an open tip (the same iterator back). Each read notes the virtual time and whether the shard
/// claimed to be caught up.
struct Behind {
    walk: u32,
    idle: Arc<AtomicBool>,
    ack: Arc<OrderedAck<Pos>>,
    reads: Mutex<Vec<(tokio::time::Instant, bool, Option<i64>)>>,
}

impl StreamApi for Behind {
    async fn list_shards(&self, _: &str) -> Result<Listing> {
        unreachable!()
    }
    async fn iterator(&self, _: &str, _: &str, at: &StartAt) -> Result<String> {
        assert_eq!(*at, StartAt::TrimHorizon);
        Ok("walk-0".into())
    }
    async fn records(&self, iterator: &str) -> Result<Page> {
        self.reads
            .lock()
            .unwrap()
            .push((tokio::time::Instant::now(), self.idle.load(Relaxed), self.ack.marked()));
        if iterator == "tip" {
            return Ok(Page {
                records: vec![],
                next: Some("tip".into()),
            });
        }
        let n: u32 = iterator.strip_prefix("walk-").unwrap().parse().unwrap();
        if n < self.walk {
            return Ok(Page {
                records: vec![],
                next: Some(format!("walk-{}", n + 1)),
            });
        }
        let script = Scripted::new(vec![], RecordingIo::default());
        let records = (1..=3).map(|i| script.record(&format!("k{i}"), Some(1), i)).collect();
        Ok(Page {
            records,
            next: Some("tip".into()),
        })
    }
}

/// One shard's consumer read from its trim horizon (no gap to prove) into a 2-lane applier over
/// `io`: what the single-shard tests drive.
pub(super) fn one_shard<S: StreamApi>(
    api: Arc<S>,
    io: &RecordingIo,
    ack: Arc<OrderedAck<Pos>>,
    idle: Arc<AtomicBool>,
    stop: CancellationToken,
) -> (ShardConsumer<S>, Arc<TableStats>) {
    let stats = Arc::new(TableStats::default());
    let applier = Applier::start(Arc::new(io.clone()), 2, Arc::new(Limiter::new(0)), stats.clone());
    let c = ShardConsumer {
        api,
        stream_arn: "arn".into(),
        shard_id: "s".into(),
        table: "T".into(),
        start: StartAt::TrimHorizon,
        horizon: None,
        clock: Clock::default(),
        replay_from_ms: 0,
        view: View::NewImage,
        key_names: vec!["pk".to_string()].into(),
        applier: Arc::new(applier),
        ack,
        stats: stats.clone(),
        idle,
        stop,
    };
    (c, stats)
}

#[tokio::test(start_paused = true)]
async fn empty_pages_from_a_shard_far_behind_are_read_past_at_once_and_claim_nothing() {
    let walk = super::super::consumer::TIP_PAGES - 1;
    let idle = Arc::new(AtomicBool::new(false));
    let ack = Arc::new(OrderedAck::new(None));
    let api = Arc::new(Behind {
        walk,
        idle: idle.clone(),
        ack: ack.clone(),
        reads: Mutex::new(vec![]),
    });
    let io = RecordingIo::default();
    let stop = CancellationToken::new();
    let (c, _) = one_shard(api.clone(), &io, ack.clone(), idle.clone(), stop.clone());
    let run = tokio::spawn(c.run());
    wait_until("the shard at its tip, caught up", || idle.load(Relaxed)).await;
    assert_eq!(
        io.0.lock().unwrap().current.len(),
        3,
        "its records applied before it counts as caught up"
    );
    stop.cancel();
    run.await.unwrap().unwrap();

    let reads = api.reads.lock().unwrap();
    let walked = &reads[..=walk as usize];
    assert!(
        walked.iter().all(|(_, idle, mark)| !idle && mark.is_none()),
        "caught-up claimed while records remained: {walked:?}"
    );
    assert!(
        walked.iter().all(|(t, _, _)| *t == walked[0].0),
        "slept between empty pages of a shard far behind"
    );
    assert!(
        ack.marked().is_some(),
        "at the tip the shard is applied up to its read time"
    );
}
