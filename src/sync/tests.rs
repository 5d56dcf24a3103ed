//! The table lifecycle driver over scripted seams: no AWS, a fake bulk loader and change source.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{KeySchemaElement, KeyType, StreamSpecification, TableDescription};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::seams::{Seams, TableApi};
use super::table::{RunCtx, TableRun};
use crate::apply::budget::WriteBudget;
use crate::checkpoint::{Capture, Direction, Lifecycle, StateStore, Store, TableState};
use crate::config::{Clients, TableConfig};
use crate::discover::View;
use crate::discover::check::Checked;
use crate::discover::schema::TableSchema;
use crate::error::Result;
use crate::plan::PlannedTable;
use crate::snapshot::{BulkLoader, Loaded};
use crate::source::{ChangeSource, TableContext};
use crate::telemetry::TableStats;

/// What the fakes saw, in order, and the source's current stream.
#[derive(Default)]
struct Script {
    calls: Mutex<Vec<&'static str>>,
    stream: Mutex<String>,
    /// The stored state when each bulk load started.
    stored_at_load: Mutex<Vec<TableState>>,
}

impl Script {
    fn log(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
    fn take_calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// How the fake bulk load ends.
#[derive(Clone, Copy)]
enum Load {
    Complete,
    /// Asked to stop midway (the daemon's shutdown).
    Stopped,
}

struct Fake {
    script: Arc<Script>,
    load: Load,
}

impl TableApi for Fake {
    fn current_stream(&self) -> BoxFuture<'_, Result<Option<String>>> {
        self.script.log("current_stream");
        Box::pin(async move { Ok(Some(self.script.stream.lock().unwrap().clone())) })
    }
    fn create_destination<'a>(
        &'a self,
        _: Option<&'a PlannedTable>,
        _: &'a TableDescription,
    ) -> BoxFuture<'a, Result<()>> {
        self.script.log("create_destination");
        Box::pin(async { Ok(()) })
    }
    fn enable_stream(&self) -> BoxFuture<'_, Result<TableDescription>> {
        self.script.log("enable_stream");
        Box::pin(async move { Ok(source(&self.script.stream.lock().unwrap())) })
    }
    fn clock_skew(&self) -> BoxFuture<'_, Option<i64>> {
        self.script.log("clock_skew");
        Box::pin(async { Some(0) })
    }
    fn capture_shards<'a>(&'a self, _: &'a str, _: &'a dyn StateStore) -> BoxFuture<'a, Result<usize>> {
        self.script.log("capture_shards");
        Box::pin(async { Ok(1) })
    }
    fn write_budget<'a>(
        &'a self,
        configured: Option<u32>,
        planned: &'a TableSchema,
    ) -> BoxFuture<'a, Result<WriteBudget>> {
        self.script.log("write_budget");
        let capacity = crate::apply::budget::Capacity::of_schema(planned);
        Box::pin(async move { Ok(crate::apply::budget::resolve(configured, &capacity)) })
    }
}

struct FakeLoader(Arc<Script>, Load, TableContext);

impl BulkLoader for FakeLoader {
    async fn load(self, _: &mut Lifecycle, capture: Capture) -> Result<Loaded> {
        let ctx = &self.2;
        self.0.log("load");
        let stored = TableState::read(&ctx.store.table(&ctx.table).await?.unwrap())?;
        self.0.stored_at_load.lock().unwrap().push(stored);
        Ok(match self.1 {
            Load::Complete => Loaded::Complete(capture),
            Load::Stopped => {
                ctx.stop.cancel();
                Loaded::Stopped
            }
        })
    }
}

/// Streams until stopped (a timer stops it a minute in).
struct FakeSource(Arc<Script>, TableContext);

impl ChangeSource for FakeSource {
    async fn run(self) -> Result<()> {
        let ctx = &self.1;
        self.0.log("stream");
        let stop = ctx.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            stop.cancel();
        });
        ctx.stop.cancelled().await;
        Ok(())
    }
}

impl Seams for Fake {
    type Loader = FakeLoader;
    type Source = FakeSource;
    fn api(&self) -> &dyn TableApi {
        self
    }
    fn bulk_loader(&self, _: &TableRun, ctx: &RunCtx, _: u32) -> FakeLoader {
        FakeLoader(self.script.clone(), self.load, ctx.table.clone())
    }
    fn change_source(&self, _: &TableRun, ctx: &RunCtx, _: &Capture) -> FakeSource {
        FakeSource(self.script.clone(), ctx.table.clone())
    }
}

fn source(stream_arn: &str) -> TableDescription {
    TableDescription::builder()
        .table_name("src")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .stream_specification(StreamSpecification::builder().stream_enabled(true).build().unwrap())
        .latest_stream_arn(stream_arn)
        .item_count(10)
        .build()
}

/// Clients that are never called: the fakes stand in for them.
fn unused_clients() -> Clients {
    let conf = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    Clients {
        label: "source",
        dynamodb: aws_sdk_dynamodb::Client::new(&conf),
        streams: aws_sdk_dynamodbstreams::Client::new(&conf),
        s3: aws_sdk_s3::Client::new(&conf),
        lambda: aws_sdk_lambda::Client::new(&conf),
        sqs: aws_sdk_sqs::Client::new(&conf),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&conf),
        dynamodb_endpoint: "unused".into(),
    }
}

/// A run of table `src` on `store`; `fresh` tables have no destination and no stream yet.
fn table_run(store: &Arc<Store>, stream_arn: &str, fresh: bool) -> TableRun {
    let desc = source(stream_arn);
    TableRun {
        key: "src".into(),
        direction: Direction::Forward,
        cfg: TableConfig::with_defaults("src", "dst"),
        src: unused_clients(),
        dst: unused_clients(),
        store: store.clone(),
        stats: Arc::new(TableStats::default()),
        checked: Checked {
            destination: (!fresh).then(|| desc.clone()),
            view: (!fresh).then_some(View::NewImage),
            source: desc,
        },
        stop: CancellationToken::new(),
        list_every: Duration::from_secs(1),
        from_ms: None,
        enable_pitr: false,
        export_poll: Duration::from_secs(1),
        planned: None,
        slots: None,
        window: None,
        shards: None,
        segments: None,
        files: None,
    }
}

fn setup() -> (tempfile::TempDir, Arc<Store>, Arc<Script>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ferry.db")).unwrap());
    let script = Arc::new(Script::default());
    *script.stream.lock().unwrap() = "arn:stream/1".into();
    (dir, store, script)
}

fn stored(store: &Store) -> TableState {
    TableState::read(&store.table("src").unwrap().unwrap()).unwrap()
}

async fn run(store: &Arc<Store>, script: &Arc<Script>, load: Load, fresh: bool) -> Result<()> {
    let stream = script.stream.lock().unwrap().clone();
    let fake = Fake {
        script: script.clone(),
        load,
    };
    table_run(store, &stream, fresh).run_with(&fake).await.map(|_| ())
}

#[tokio::test(start_paused = true)]
async fn the_capture_point_is_persisted_before_the_bulk_load_starts() {
    let (_dir, store, script) = setup();
    run(&store, &script, Load::Complete, true).await.unwrap();
    assert_eq!(
        script.take_calls(),
        [
            "create_destination",
            "enable_stream",
            "clock_skew",
            "capture_shards",
            "current_stream",
            // Once the destination exists: a created table gets the budget of what was created.
            "write_budget",
            "load",
            "stream"
        ]
    );
    let at_load = script.stored_at_load.lock().unwrap().clone();
    let [TableState::BulkLoading { capture, segments }] = &at_load[..] else {
        panic!("the load started from {at_load:?}, not a persisted bulk-loading state");
    };
    assert_eq!(capture.stream_arn, "arn:stream/1");
    assert_eq!(*segments, 16);
    // The timer stopped the change source: the table rests, resumable, in streaming.
    let TableState::Stopped { at } = stored(&store) else {
        panic!("not stopped: {:?}", stored(&store));
    };
    assert_eq!(
        *at,
        TableState::Streaming {
            capture: capture.clone()
        }
    );
}

#[tokio::test]
async fn a_stop_during_the_bulk_load_leaves_the_table_resumable_in_the_bulk_load() {
    let (_dir, store, script) = setup();
    run(&store, &script, Load::Stopped, false).await.unwrap();
    assert!(
        !script.take_calls().contains(&"stream"),
        "streamed before the bulk load finished"
    );
    let stopped = stored(&store);
    assert!(
        matches!(&stopped, TableState::Stopped { at } if matches!(**at, TableState::BulkLoading { .. })),
        "{stopped:?}"
    );
    let life = Lifecycle::resume(store.clone(), "src", "dst").await.unwrap();
    assert!(
        matches!(life.state(), TableState::BulkLoading { segments: 16, .. }),
        "{:?}",
        life.state()
    );
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_the_capture_does_not_capture_again() {
    let (_dir, store, script) = setup();
    run(&store, &script, Load::Stopped, false).await.unwrap();
    script.take_calls();
    run(&store, &script, Load::Complete, false).await.unwrap();
    assert_eq!(
        script.take_calls(),
        ["current_stream", "write_budget", "load", "stream"]
    );
    let at_load = script.stored_at_load.lock().unwrap().clone();
    assert_eq!(at_load.len(), 2);
    assert_eq!(
        at_load[0].capture(),
        at_load[1].capture(),
        "the second load got another capture point"
    );
}

#[tokio::test]
async fn a_changed_stream_fails_the_table_with_guidance_and_persists_why() {
    let (_dir, store, script) = setup();
    run(&store, &script, Load::Stopped, false).await.unwrap();
    script.take_calls();
    *script.stream.lock().unwrap() = "arn:stream/2".into();
    let err = run(&store, &script, Load::Complete, false).await.unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), crate::error::Kind::Fatal, "{err:?}");
    for part in [
        "its stream changed since the capture point",
        "arn:stream/1",
        "arn:stream/2",
        "fresh snapshot",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_eq!(
        script.take_calls(),
        ["current_stream"],
        "loaded after the stream changed"
    );
    let TableState::Failed { reason, at } = stored(&store) else {
        panic!("not failed: {:?}", stored(&store));
    };
    assert_eq!(reason, msg);
    assert!(matches!(*at, TableState::BulkLoading { .. }), "{at:?}");
}

#[tokio::test]
async fn counters_are_published_only_once_the_run_loaded_the_saved_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ferry.db")).unwrap();
    let mut row = crate::checkpoint::TableRow::new("Orders", "Orders");
    row.records_applied = 6_091;
    StateStore::put_table(&store, &row).await.unwrap();
    let stats = Arc::new(TableStats::default());
    let all = vec![("Orders".to_string(), "Orders".to_string(), stats.clone())];
    let mut published = super::Published::new();
    let applied = |store: &Store| store.table("Orders").unwrap().unwrap().records_applied;

    // A tick before the run loaded its counters would write fresh zeros over the saved ones.
    super::publish(&store, &all, &mut published).await.unwrap();
    assert_eq!(applied(&store), 6_091);
    stats.records_applied.store(6_091, std::sync::atomic::Ordering::Relaxed);
    stats.resumed.store(true, std::sync::atomic::Ordering::Relaxed);
    stats.records_applied.fetch_add(9, std::sync::atomic::Ordering::Relaxed);
    super::publish(&store, &all, &mut published).await.unwrap();
    assert_eq!(applied(&store), 6_100);
}

#[path = "switch_tests.rs"]
mod switch_tests;
