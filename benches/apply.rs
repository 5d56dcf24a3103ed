//! CPU cost of the streaming apply path without I/O, per core: parse a GetRecords response (the
//! SDK's own deserializer on a canned 1,000-record page of ~1 KB items), turn records into changes,
//! coalesce per key, build BatchWriteItem request bodies, and advance ordered checkpoints.
//!
//! `cargo bench --bench apply`. Target: ≥ 500,000 stream records per second per core (issue 16).

use std::sync::Arc;

use aws_sdk_dynamodbstreams::types::Record;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry::apply::write::request_body;
use ferry::apply::{Applier, ApplyIo, DynamoIo, Limiter, WriteOp};
use ferry::checkpoint::OrderedAck;
use ferry::discover::View;
use ferry::item::Item;
use ferry::source::streams::api::{SdkStreams, StreamApi};
use ferry::source::streams::consumer::{self, Pos};
use ferry::source::streams::record;
use ferry::source::streams::wire::{Images, RawRecord, parse_get_records};
use ferry::telemetry::TableStats;
use ferry::transform::{At, Filter, Path, Spec, Transform};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const PAGE: usize = 1000;

// The same allocator as the `ferry` binary.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A GetRecords response body as DynamoDB sends it.
fn page_json(hot: bool, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let records: Vec<Value> = (0..PAGE)
        .map(|i| {
            let key = if hot && rng.random_bool(0.5) {
                format!("hot-{}", rng.random_range(0..20))
            } else {
                format!("k-{seed}-{i}")
            };
            let keys = json!({ "pk": { "S": key }, "sk": { "N": "1" } });
            let remove = rng.random_bool(0.1);
            let mut image = keys.clone();
            if !remove {
                let obj = image.as_object_mut().unwrap();
                obj.insert("payload".into(), json!({ "S": "x".repeat(900) }));
                obj.insert("n".into(), json!({ "N": rng.random::<u32>().to_string() }));
                obj.insert("tags".into(), json!({ "SS": ["a", "b", "c"] }));
                obj.insert("m".into(), json!({ "M": { "a": { "N": "1" }, "b": { "BOOL": true } } }));
            }
            let mut d = json!({
                "ApproximateCreationDateTime": 1.7e9,
                "Keys": keys,
                "SequenceNumber": format!("{:021}", seed * 10_000 + i as u64),
                "SizeBytes": 1000,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if !remove {
                d["NewImage"] = image;
            }
            json!({
                "eventID": format!("e{i}"),
                "eventName": if remove { "REMOVE" } else { "MODIFY" },
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": d,
            })
        })
        .collect();
    json!({ "Records": records, "NextShardIterator": "next" }).to_string()
}

fn streams_client(body: String) -> aws_sdk_dynamodbstreams::Client {
    let http = aws_smithy_http_client::test_util::infallible_client_fn(move |_req| {
        http::Response::builder().status(200).body(body.clone()).unwrap()
    });
    let conf = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "bench"))
        .http_client(http)
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(conf)
}

/// The stock SDK deserializer (what ferry replaced), for comparison.
async fn sdk_page(c: &aws_sdk_dynamodbstreams::Client) -> Vec<Record> {
    let out = c.get_records().shard_iterator("it").limit(1000).send().await.unwrap();
    out.records.unwrap_or_default()
}

/// ferry's GetRecords call: the SDK request with ferry's page parser.
async fn get_page(s: &SdkStreams) -> Vec<RawRecord> {
    s.records("it").await.unwrap().records
}

/// Builds the BatchWriteItem bodies (the real cost of preparing the requests) and writes nowhere.
struct NoIo(Vec<String>);
impl ApplyIo for NoIo {
    async fn write_batch(&self, ops: &[WriteOp]) -> ferry::Result<Vec<WriteOp>> {
        std::hint::black_box(request_body("bench", ops));
        Ok(Vec::new())
    }
    async fn read_source(&self, _: Vec<Item>) -> ferry::Result<Vec<Item>> {
        Ok(Vec::new())
    }
    fn key_names(&self) -> &[String] {
        &self.0
    }
    fn destination(&self) -> &str {
        "bench"
    }
}

/// rename sk → sort and m.a → m.alpha, drop tags, keep the items `filter` keeps (every item).
fn transform(filter: &str) -> Spec {
    let at = |p: &str| At {
        value: Path::parse(p).unwrap(),
        at: "bench".into(),
    };
    Spec {
        rename: vec![
            (at("sk"), Path::parse("sort").unwrap()),
            (at("m.a"), Path::parse("m.alpha").unwrap()),
        ],
        drop: vec![at("tags")],
        set: Vec::new(),
        filter: Some(At {
            value: Arc::new(Filter::compile(filter).unwrap()),
            at: "bench".into(),
        }),
    }
}

/// [`ApplyIo`] through the SDK, to an in-memory endpoint that processes every batch.
fn sdk_io(keys: &[String]) -> DynamoIo {
    let http = aws_smithy_http_client::test_util::infallible_client_fn(|_req| {
        http::Response::builder()
            .status(200)
            .body(r#"{"UnprocessedItems":{}}"#)
            .unwrap()
    });
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "bench"))
        .http_client(http)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    DynamoIo {
        destination: client.clone(),
        destination_table: "bench".into(),
        source: client,
        source_table: "source".into(),
        key_names: keys.into(),
        read_limiter: Arc::new(Limiter::new(0)),
        stop: Default::default(),
        stats: Arc::default(),
    }
}

/// What a shard consumer does with each page, on one core: parse → changes → lanes (coalesce,
/// shape, batch, write through `io`) → acks.
fn page_step<I: ApplyIo>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    (client, keys): (&aws_sdk_dynamodbstreams::Client, &[String]),
    (name, mix): (&str, &str),
    transform: Spec,
    io: Arc<I>,
) {
    let stats = Arc::new(TableStats::default());
    let shape = Arc::new(Transform::new(transform, keys.to_vec().into()));
    // As ferry reads pages for this transform.
    let streams = SdkStreams(client.clone(), Images::for_transform(shape.spec()));
    let applier = rt.block_on(async {
        Applier::start_with_stop(
            io,
            16,
            Arc::new(Limiter::new(0)),
            stats.clone(),
            shape,
            Default::default(),
        )
    });
    let ack = Arc::new(OrderedAck::<Pos>::new(None));
    g.bench_function(BenchmarkId::new(name, mix), |b| {
        b.to_async(rt).iter(|| async {
            let page = get_page(&streams).await;
            let (changes, _) = consumer::page_changes(page, View::NewImage, keys, 0, &ack).unwrap();
            applier.submit_all(changes).await.unwrap();
            ack.drained().await;
        })
    });
    drop(applier);
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let keys: Vec<String> = vec!["pk".into(), "sk".into()];
    let mut g = c.benchmark_group("apply_path");
    g.throughput(Throughput::Elements(PAGE as u64));
    g.sample_size(30);
    for (mix, hot) in [("uniform", false), ("hot_keys", true)] {
        let rt = rt();
        let client = rt.block_on(async { streams_client(page_json(hot, 1)) });
        let streams = SdkStreams(client.clone(), Images::Raw);

        g.bench_function(BenchmarkId::new("get_records_stock_sdk_parse", mix), |b| {
            b.to_async(&rt)
                .iter(|| async { std::hint::black_box(sdk_page(&client).await) })
        });
        // The body alone (no SDK call around it): what reading a page costs ferry.
        let body = page_json(hot, 1);
        g.bench_function(BenchmarkId::new("get_records_body_only", mix), |b| {
            b.iter(|| std::hint::black_box(parse_get_records(body.as_bytes(), Images::Raw).unwrap()))
        });
        g.bench_function(BenchmarkId::new("get_records_ferry_parse", mix), |b| {
            b.to_async(&rt)
                .iter(|| async { std::hint::black_box(get_page(&streams).await) })
        });

        let records = rt.block_on(get_page(&streams));
        g.bench_function(BenchmarkId::new("records_to_changes", mix), |b| {
            b.iter_batched(
                || records.clone(),
                |recs| {
                    for r in recs {
                        std::hint::black_box(record::parse(r, View::NewImage, &keys).unwrap());
                    }
                },
                criterion::BatchSize::SmallInput,
            )
        });

        // The whole path on one core: parse → changes → lanes (coalesce, shape, batch, requests)
        // → acks; without a transform, and with a rename (of the sort key and a nested entry), a
        // drop and a filter that every item passes (so all write the same number of items): one
        // the fast path answers, and one only the CEL interpreter can.
        // The third filter iterates a set, which only the interpreter does.
        let variants = [
            ("full_path_one_core", Spec::default()),
            (
                "full_path_one_core_transformed",
                transform("item.n >= 0 && has(item.m)"),
            ),
            (
                "full_path_one_core_transformed_interpreted",
                transform("item.n >= 0 && item.m.b"),
            ),
        ];
        for (name, transform) in variants {
            let io = Arc::new(NoIo(keys.clone()));
            page_step(&mut g, &rt, (&client, &keys), (name, mix), transform, io);
        }
        // The same with the real write stage: request bodies, signing and the SDK call, against
        // an HTTP client in memory that accepts every batch.
        let sdk = [
            ("full_path_with_sdk_call", Spec::default()),
            (
                "full_path_with_sdk_call_transformed",
                transform("item.n >= 0 && has(item.m)"),
            ),
        ];
        for (name, transform) in sdk {
            let io = Arc::new(rt.block_on(async { sdk_io(&keys) }));
            page_step(&mut g, &rt, (&client, &keys), (name, mix), transform, io);
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
