//! A measurement, not a check: the same changes through the stream path and through the SQS
//! change buffer, in one run. N uniform changes (~1 KB items) are written to a source table; then
//! `ferry sync` replays them from the stream into one destination, and from a moto FIFO queue into
//! two others, the queue filled by the forwarder as its template deploys it (the stream trigger's
//! batches of up to 1,000 records, `SENDS_IN_FLIGHT` calls in flight), fed the same stream records:
//! - **drain**: the forwarder queues all N first, then ferry drains the backlog (the buffer's use:
//!   ferry was away past the stream's 24 hours, the forwarder was not);
//! - **live**: the forwarder runs beside ferry, at most `FERRY_SQS_DEPTH` records ahead of ferry's
//!   applied count, as it does when ferry keeps up.
//!
//! moto's FIFO queue does work in proportion to its depth on every call (each message sent
//! recounts the queue several times), so a deep backlog measures moto: with Lambda's default
//! batches of 100 the drain queues ten times the messages. Prints the rates, the ratios, and
//! each process's CPU per 100k changes.
//!
//!   cargo bench --bench sqs_throughput                                       # N = 20,000
//!   FERRY_SQS_MEASURE_N=5000 FERRY_SQS_DEPTH=500 cargo bench --bench sqs_throughput
//!   FERRY_SQS_SENDS=1 cargo bench --bench sqs_throughput     # one SendMessageBatch at a time
//!   FERRY_BENCH_LOGS=/tmp cargo bench --bench sqs_throughput   # keeps each ferry's log
//!   FERRY_SQS_GROUPS=10 cargo bench --bench sqs_throughput   # key buckets (message groups), 5 by default
//!   FERRY_SQS_LAMBDA_BATCH=100 cargo bench --bench sqs_throughput   # the trigger's BatchSize (Lambda's default)
//!   FERRY_SQS_QUEUE_KIB=256 cargo bench --bench sqs_throughput   # the queue's MaximumMessageSize (1 MiB by default)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry::source::sqs::forwarder::{Entry, SENDS_IN_FLIGHT, SdkSender, Sender, Target, queue_message_max};
use ferry::source::sqs::message::GROUPS;
use ferry_rig::bench::cpu::{Meter, Split};
use ferry_rig::bench::{self, Mix, TABLE};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::pump::pump;
use ferry_rig::{Account, DynamoLocal};
use tokio_util::sync::CancellationToken;

const SOURCE_WRITERS: usize = 16;
/// The forwarder template's `BatchSize` (deploy/aws/forwarder.yaml).
const LAMBDA_BATCH: usize = 1000;

/// What one path measured.
struct PathRun {
    secs: f64,
    /// Where the CPU went while the path ran: ferry, DynamoDB Local (source and destination), moto.
    cpu: Split,
    /// ferry's reads: GetRecords or ReceiveMessage calls answered.
    read_calls: f64,
    write_calls: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let n: usize = bench::env_num("FERRY_SQS_MEASURE_N", 20_000);
    let depth: u64 = bench::env_num("FERRY_SQS_DEPTH", 1_000);
    let (ddb, moto) = (DynamoLocal::shared(), Moto::shared());
    let sa = Account::fresh("src");
    let src = ddb.client(&sa);
    bench::create_plain_table(&src, Some(StreamViewType::NewAndOldImages))
        .await
        .unwrap();
    let changes = bench::changes(Mix::Uniform, n, 42);
    let keys = bench::keys_touched(&changes);
    let took = bench::write_lanes(&src, TABLE, bench::plan_batches(&changes, SOURCE_WRITERS))
        .await
        .unwrap();
    eprintln!(
        "[sqs] wrote {n} uniform changes over {} keys to the source in {:.1} s",
        keys.len(),
        took.as_secs_f64()
    );
    let stream = stream_path(ddb, moto, &sa, n as u64, &keys).await;
    report("stream", n, &stream);
    let drained = sqs_drain(ddb, moto, &sa, n as u64, &keys).await;
    report("SQS (drain)", n, &drained);
    let live = sqs_live(ddb, moto, &sa, n as u64, depth, &keys).await;
    report("SQS (live)", n, &live);
    eprintln!(
        "[sqs] SQS path / stream path, same {n} changes: {:.2} draining a queued backlog; {:.2} beside a live \
         forwarder (at most {depth} records ahead)",
        stream.secs / drained.secs,
        stream.secs / live.secs
    );
}

fn report(name: &str, n: usize, r: &PathRun) {
    eprintln!(
        "[sqs] {name} path: {n} changes applied in {:.1} s ({:.0}/s); {:.0} reads/s, {:.0} BatchWriteItems/s; \
         CPU: {}; moto {:.0} % of a core",
        r.secs,
        n as f64 / r.secs,
        r.read_calls / r.secs,
        r.write_calls / r.secs,
        r.cpu.describe(n),
        100.0 * r.cpu.of(MOTO) / r.cpu.wall(),
    );
}

async fn stream_path(ddb: &DynamoLocal, moto: &Moto, sa: &Account, n: u64, keys: &[ferry::item::Item]) -> PathRun {
    let tables = format!("[[table]]\nsource = \"{TABLE}\"\nsnapshot = \"none\"\nreplay_overlap_seconds = 3600\n");
    let mut run = Run::start(ddb, sa, &tables, "stream").await;
    let cpu = meter(ddb, moto, &run);
    let started = Instant::now();
    let secs = run.wait(n, started).await;
    run.finish(ddb, sa, keys, cpu, secs).await
}

/// A fresh FIFO queue and the `ferry sync` tables that drain it.
async fn sqs_queue(moto: &Moto, name: &str) -> (String, String) {
    let max_message = std::env::var("FERRY_SQS_QUEUE_KIB")
        .ok()
        .map(|k| k.parse::<u32>().expect("KiB") * 1024);
    let queue_url = moto
        .fifo_queue_sized(&format!("{name}{}", std::process::id()), 30, max_message)
        .await;
    let tables = format!(
        "[source.endpoints]\nsqs = \"{m}\"\n\n[[table]]\nsource = \"{TABLE}\"\nsnapshot = \"none\"\n\
         replay_overlap_seconds = 3600\nchange_source = \"sqs\"\nqueue_url = \"{queue_url}\"\n\
         queue_visibility_timeout_seconds = 30\n",
        m = moto.endpoint
    );
    (queue_url, tables)
}

/// The forwarder's moto queue, fed by [`pump`] from the source's stream until `stop`.
async fn start_pump(
    ddb: &DynamoLocal,
    sa: &Account,
    arn: String,
    queue_url: String,
    sender: Arc<Gated>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<ferry_rig::pump::Pumped> {
    let target = Target {
        message_max: queue_message_max(&sender.inner.sqs, &queue_url).await,
        queue_url,
        offload_bucket: None,
        table: TABLE.into(),
        sends_in_flight: bench::env_num("FERRY_SQS_SENDS", SENDS_IN_FLIGHT),
        groups: bench::env_num("FERRY_SQS_GROUPS", GROUPS as usize) as u32,
    };
    let streams = ddb.streams_client(sa);
    let batch = bench::env_num("FERRY_SQS_LAMBDA_BATCH", LAMBDA_BATCH);
    tokio::spawn(async move { pump(&streams, &arn, &*sender, &target, batch, stop).await.unwrap() })
}

/// The SQS buffer's use: a backlog already queued (the forwarder ran beside the source's writes,
/// ferry was away). The forwarder queues all `n` changes first, then ferry drains the queue.
async fn sqs_drain(ddb: &DynamoLocal, moto: &Moto, sa: &Account, n: u64, keys: &[ferry::item::Item]) -> PathRun {
    let (queue_url, tables) = sqs_queue(moto, "drain").await;
    let sender = Gated::new(moto, u64::MAX);
    let stop = CancellationToken::new();
    let arn = bench::stream_arn(&ddb.client(sa), TABLE).await.unwrap();
    let started = Instant::now();
    let pumping = start_pump(ddb, sa, arn, queue_url, sender.clone(), stop.clone()).await;
    while sender.sent.load(Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = started.elapsed().as_secs_f64();
    stop.cancel();
    let pumped = pumping.await.unwrap();
    eprintln!(
        "[sqs] drain: {} ({:.0} records/s)",
        sender.describe(&pumped, queued),
        n as f64 / queued
    );
    let mut run = Run::start(ddb, sa, &tables, "sqs-drain").await;
    let cpu = meter(ddb, moto, &run);
    let started = Instant::now();
    let secs = run.wait(n, started).await;
    run.finish(ddb, sa, keys, cpu, secs).await
}

/// A live forwarder beside a running ferry: the forwarder runs at most `depth` records ahead of
/// ferry's applied count.
async fn sqs_live(
    ddb: &DynamoLocal,
    moto: &Moto,
    sa: &Account,
    n: u64,
    depth: u64,
    keys: &[ferry::item::Item],
) -> PathRun {
    let (queue_url, tables) = sqs_queue(moto, "live").await;
    let mut run = Run::start(ddb, sa, &tables, "sqs-live").await;
    let sender = Gated::new(moto, depth);
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(watch_applied(run.addr.clone(), sender.clone(), stop.clone()));
    let arn = bench::stream_arn(&ddb.client(sa), TABLE).await.unwrap();
    let cpu = meter(ddb, moto, &run);
    let started = Instant::now();
    let pumping = start_pump(ddb, sa, arn, queue_url, sender.clone(), stop.clone()).await;
    let secs = run.wait(n, started).await;
    stop.cancel();
    let pumped = pumping.await.unwrap();
    watcher.await.unwrap();
    eprintln!("[sqs] live: {}", sender.describe(&pumped, secs));
    run.finish(ddb, sa, keys, cpu, secs).await
}

/// Keeps the gate's applied count at ferry's `ferry_records_applied_total` until `stop`.
async fn watch_applied(addr: String, gate: Arc<Gated>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let body = bench::http_get(&addr, "/metrics").await.unwrap_or_default();
        if let Some(v) = bench::metric(&body, "ferry_records_applied_total", TABLE) {
            gate.applied.store(v as u64, Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real moto sender, holding each call until the queue holds at most `depth` unapplied
/// records (those sent minus ferry's applied count).
struct Gated {
    inner: SdkSender,
    sent: AtomicU64,
    applied: AtomicU64,
    depth: u64,
    /// Time held at the gate, and in SendMessageBatch calls (µs).
    gated_us: AtomicU64,
    sending_us: AtomicU64,
}

impl Gated {
    fn new(moto: &Moto, depth: u64) -> Arc<Gated> {
        Arc::new(Gated {
            inner: SdkSender {
                sqs: moto.sqs_client(),
                s3: moto.s3_client(),
            },
            sent: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            depth,
            gated_us: AtomicU64::new(0),
            sending_us: AtomicU64::new(0),
        })
    }

    fn describe(&self, pumped: &ferry_rig::pump::Pumped, secs: f64) -> String {
        let s = |us: &AtomicU64| us.load(Relaxed) as f64 / 1e6;
        let held = match self.depth {
            u64::MAX => String::new(),
            d => format!(", {:.1} s held because ferry was {d} records behind", s(&self.gated_us)),
        };
        format!(
            "the forwarder sent {} records in {} invocations ({} retried) over {secs:.1} s: {:.1} s in \
             SendMessageBatch calls{held}",
            pumped.records,
            pumped.invocations,
            pumped.partial_failures,
            s(&self.sending_us),
        )
    }
}

impl Sender for Gated {
    async fn send_batch(&self, queue_url: &str, entries: &[Entry]) -> ferry::Result<Vec<String>> {
        let t = Instant::now();
        while self.sent.load(Relaxed) > self.applied.load(Relaxed) + self.depth {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.gated_us.fetch_add(t.elapsed().as_micros() as u64, Relaxed);
        let t = Instant::now();
        let failed = self.inner.send_batch(queue_url, entries).await?;
        self.sending_us.fetch_add(t.elapsed().as_micros() as u64, Relaxed);
        let records: usize = entries
            .iter()
            .filter(|e| !failed.contains(&e.id))
            .map(|e| {
                let body: serde_json::Value = serde_json::from_str(&e.body).expect("a message body");
                body["records"].as_array().map_or(0, Vec::len)
            })
            .sum();
        self.sent.fetch_add(records as u64, Relaxed);
        Ok(failed)
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> ferry::Result<()> {
        self.inner.put_object(bucket, key, body).await
    }
}

/// One `ferry sync` into a fresh destination account, with its metrics on a free port.
struct Run {
    ferry: FerryDir,
    child: ferry_rig::process::Running,
    addr: String,
    da: Account,
    name: &'static str,
    _dir: tempfile::TempDir,
}

impl Run {
    async fn start(ddb: &DynamoLocal, sa: &Account, tables: &str, name: &'static str) -> Run {
        let da = Account::fresh("dst");
        let dir = tempfile::tempdir().unwrap();
        let ferry = FerryDir::new(&ferry_bin!(), dir.path(), ddb, sa, &da, tables);
        let addr = format!("127.0.0.1:{}", bench::free_port());
        let child = ferry.spawn_sync(&["--metrics", &addr, "--no-progress"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ferry.table_status(TABLE).is_some_and(|t| t["phase"] == "streaming") {
            assert!(
                Instant::now() < deadline,
                "{name}: ferry never reached streaming\n{}",
                ferry.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Run {
            ferry,
            child,
            addr,
            da,
            name,
            _dir: dir,
        }
    }

    /// Seconds from `started` until all `n` changes are applied.
    async fn wait(&mut self, n: u64, started: Instant) -> f64 {
        let stall = Duration::from_secs(60);
        match bench::wait_applied(&mut self.child, &self.addr, TABLE, n, started, stall).await {
            Ok(a) => a.done.as_secs_f64(),
            Err(e) => panic!("{}: {e}\n{}", self.name, self.ferry.logs()),
        }
    }

    /// Takes the CPU and call figures, stops ferry, and checks the destination against the source.
    async fn finish(
        self,
        ddb: &DynamoLocal,
        sa: &Account,
        keys: &[ferry::item::Item],
        cpu: Meter,
        secs: f64,
    ) -> PathRun {
        let body = bench::http_get(&self.addr, "/metrics").await.unwrap_or_default();
        let m = |name| bench::metric(&body, name, TABLE).unwrap_or(f64::NAN);
        let (read_calls, write_calls) = (m("ferry_read_calls_total"), m("ferry_write_calls_total"));
        let cpu = cpu.stop(&[]);
        terminate(&self.child);
        let mut child = self.child;
        let _ = child.wait();
        self.ferry.keep_log(self.name);
        let dst = ddb.client(&self.da);
        let diff = bench::compare_by_keys(&ddb.client(sa), &dst, keys).await.unwrap();
        assert!(
            diff.is_equal(),
            "{}: DESTINATION DIFFERS FROM SOURCE: {diff}\n{}",
            self.name,
            self.ferry.logs()
        );
        eprintln!("[sqs] {}: destination equal to the source ({diff})", self.name);
        bench::drop_table(&dst).await;
        PathRun {
            secs,
            cpu,
            read_calls,
            write_calls,
        }
    }
}

const MOTO: &str = "moto";

/// CPU of ferry, DynamoDB Local and moto from now on.
fn meter(ddb: &DynamoLocal, moto: &Moto, run: &Run) -> Meter {
    Meter::start(&[
        ("ferry", Some(run.child.id())),
        ("DynamoDB Local", ddb.pid),
        (MOTO, moto.pid),
    ])
}
