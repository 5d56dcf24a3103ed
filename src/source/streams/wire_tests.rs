//! The GetRecords parser, alone and plugged into the SDK call.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::super::api::{SdkStreams, StartAt, StreamApi};
use super::super::consumer::{Pos, ShardConsumer};
use super::super::record;
use super::*;
use crate::apply::{Applier, ApplyIo, Limiter, WriteOp};
use crate::checkpoint::OrderedAck;
use crate::discover::View;
use crate::error::{Kind, Result};
use crate::telemetry::TableStats;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_smithy_types::Blob;

const PAGE: &str = r#"{"Records":[
  {"eventID":"1","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"ddblocal",
   "dynamodb":{"ApproximateCreationDateTime":1.763740800E9,"Keys":{"pk":{"S":"a"},"sk":{"N":"1"}},
     "NewImage":{"pk":{"S":"a"},"sk":{"N":"1"},"b":{"B":"AAEC"},"t":{"BOOL":true},"z":{"NULL":true},
       "ss":{"SS":["x","y"]},"ns":{"NS":["1.5"]},"bs":{"BS":["AA=="]},"l":{"L":[{"S":"q"},{"M":{"d":{"N":"2"}}}]},
       "s":{"S":"caf\u00e9 \"quoted\""}},
     "OldImage":{"pk":{"S":"a"},"sk":{"N":"1"},"big":{"L":[{"M":{"x":{"S":"ignored"}}}]}},
     "SequenceNumber":"000000000000000000001","SizeBytes":50,"StreamViewType":"NEW_AND_OLD_IMAGES"}},
  {"eventID":"2","eventName":"REMOVE","dynamodb":{"ApproximateCreationDateTime":1763740801,
     "Keys":{"pk":{"S":"a"},"sk":{"N":"1"}},"SequenceNumber":"000000000000000000002"}},
  {"eventID":"3","eventName":"TTL_OR_NEW","dynamodb":{"Keys":{"pk":{"S":"b"},"sk":{"N":"2"}},"SequenceNumber":"3"}}
],"NextShardIterator":"it-2"}"#;

#[test]
fn parses_every_type_and_skips_old_images() {
    let (recs, next) = parse_get_records(PAGE.as_bytes(), Images::Raw).unwrap();
    assert_eq!(next.as_deref(), Some("it-2"));
    assert_eq!(recs.len(), 3);
    let r = &recs[0];
    assert_eq!(
        (r.event, r.seq.as_str(), r.time_ms),
        (Event::Insert, "000000000000000000001", 1_763_740_800_000)
    );
    let Some(crate::item::Image::Raw(raw)) = &r.new_image else {
        panic!("an image DynamoDB takes as it is stays raw")
    };
    let start = PAGE.find(r#"{"pk":{"S":"a"},"sk":{"N":"1"},"b""#).unwrap();
    assert!(PAGE[start..].starts_with(raw.json()), "the image's bytes, unchanged");
    let img = raw.to_item();
    // For a transform, the same page read into maps: the same items.
    let (maps, _) = parse_get_records(PAGE.as_bytes(), Images::Maps).unwrap();
    assert_eq!(maps[0].new_image, Some(crate::item::Image::Map(img.clone())));
    assert_eq!(maps[1].new_image, None);
    assert_eq!(img["b"], Av::B(Blob::new(vec![0, 1, 2])));
    assert_eq!(img["s"], Av::S("café \"quoted\"".into()));
    assert_eq!(img["ns"], Av::Ns(vec!["1.5".into()]));
    assert_eq!(
        img["l"],
        Av::L(vec![
            Av::S("q".into()),
            Av::M(Item::from([("d".into(), Av::N("2".into()))]))
        ])
    );
    assert_eq!(img.len(), 10);
    assert_eq!((recs[1].event, recs[1].new_image.is_none()), (Event::Remove, true));
    assert_eq!(recs[2].event, Event::Other);
}

#[test]
fn an_end_of_shard_page_has_no_iterator() {
    let (recs, next) = parse_get_records(br#"{"Records":[]}"#, Images::Raw).unwrap();
    assert!(recs.is_empty() && next.is_none());
}

#[test]
fn malformed_pages_are_errors_not_empty_pages() {
    for bad in [
        &br#"{"Records":[{"dynamodb":{"Keys":{}}}]}"#[..],
        br#"{"Records":[{"dynamodb":{"Keys":{"pk":{"S":"x"},"SequenceNumber":"1"}}]}"#,
        b"{\"Records\":[",
        b"<html>",
    ] {
        assert!(
            parse_get_records(bad, Images::Raw).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// Keys are read by the key schema, record by record: keys it cannot read stop the table with the
/// record's sequence number.
#[test]
fn unreadable_keys_name_their_record() {
    for keys in [
        r#"{"pk":{"Q":"x"}}"#,
        r#"{"pk":{"S":"x","N":"1"}}"#,
        r#"{"sk":{"S":"x"}}"#,
        "{}",
    ] {
        let page = format!(r#"{{"Records":[{{"dynamodb":{{"Keys":{keys},"SequenceNumber":"7"}}}}]}}"#);
        let (mut recs, _) = parse_get_records(page.as_bytes(), Images::Raw).unwrap();
        let names = ["pk".to_string()];
        let e = record::parse(recs.remove(0), View::NewImage, &names).err().expect(keys);
        assert!(e.to_string().contains("stream record 7"), "{e}");
    }
}

/// A streams client whose endpoint answers each call with `answer(operation)`: (status, body).
fn sdk(answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> SdkStreams {
    let http = aws_smithy_http_client::test_util::infallible_client_fn(move |req| {
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or("");
        let (status, body) = answer(target.rsplit('.').next().unwrap_or(""));
        http::Response::builder().status(status).body(body).unwrap()
    });
    let conf = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "t"))
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .http_client(http)
        .build();
    SdkStreams(aws_sdk_dynamodbstreams::Client::from_conf(conf), Images::Raw)
}

/// Through the real SDK call: records come from ferry's parser, errors keep their codes.
#[tokio::test]
async fn plugs_into_the_sdk_call_for_records_and_errors() {
    let client = |status: u16, body: &'static str| sdk(move |_| (status, body.to_string()));
    let page = client(200, PAGE).records("it").await.unwrap();
    assert_eq!(page.records.len(), 3);
    assert_eq!(page.next.as_deref(), Some("it-2"));
    let err = client(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ExpiredIteratorException","message":"Iterator expired"}"#,
    )
    .records("it")
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Some("ExpiredIteratorException"));
    assert_eq!(err.kind(), crate::error::Kind::Retryable);
    let err = client(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException","message":"trimmed"}"#,
    )
    .records("it")
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Some("TrimmedDataAccessException"));
    assert!(err.message().contains("trimmed"), "{err}");
}

/// DynamoDB Local 3.x writes an empty map in a stream image as `{}`: read as `{"M":{}}` wherever an
/// attribute value goes (top level, in a list, in a map), and nowhere else.
#[test]
fn an_untagged_empty_object_is_an_empty_map() {
    let page = br#"{"Records":[{"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},
        "NewImage":{"pk":{"S":"a"},"m":{},"l":{"L":[{},{"S":"x"}]},"n":{"M":{"inner":{},"s":{"S":"y"}}}},
        "SequenceNumber":"7"}}]}"#;
    let (recs, _) = parse_get_records(page, Images::Raw).unwrap();
    let image = recs[0].new_image.clone().unwrap();
    assert!(
        matches!(image, crate::item::Image::Map(_)),
        "DynamoDB would refuse `{{}}`"
    );
    let img = image.into_item();
    let empty = || Av::M(Item::new());
    assert_eq!(img["m"], empty());
    assert_eq!(img["l"], Av::L(vec![empty(), Av::S("x".into())]));
    assert_eq!(
        img["n"],
        Av::M(Item::from([("inner".into(), empty()), ("s".into(), Av::S("y".into()))]))
    );
    // An image or a key set may be empty objects themselves: they are items, not values.
    let (recs, _) = parse_get_records(
        br#"{"Records":[{"dynamodb":{"Keys":{},"NewImage":{},"SequenceNumber":"8"}}]}"#,
        Images::Raw,
    )
    .unwrap();
    assert_eq!(
        (
            recs[0].keys.json(),
            recs[0].new_image.clone().map(|i| i.into_item().len())
        ),
        ("{}", Some(0))
    );
}

#[test]
fn an_unreadable_page_names_its_first_unreadable_record() {
    let page = br#"{"Records":[
        {"dynamodb":{"Keys":{"pk":{"S":"a"}},"SequenceNumber":"000000000000000000011"}},
        {"dynamodb":{"Keys":{"pk":{"S":"b"}},"NewImage":{"pk":{"Q":"b"}},"SequenceNumber":"000000000000000000012"}}
    ]}"#;
    let err = parse_get_records(page, Images::Raw).unwrap_err();
    assert!(err.contains("sequence number 000000000000000000012"), "{err}");
    let err = parse_get_records(b"{\"Records\":[{\"dynamodb\":", Images::Raw).unwrap_err();
    assert!(err.starts_with("unreadable GetRecords response: "), "{err}");
}

/// Accepts every write.
struct Sink;

impl ApplyIo for Sink {
    async fn write_batch(&self, _: &[WriteOp]) -> Result<Vec<WriteOp>> {
        Ok(vec![])
    }
    crate::apply::test_support::write_only!();
}

/// A shard whose first page is good (sequence numbers 1 and 2) and whose second page is `bad`: the
/// consumer's error once it stops.
async fn consume_until_unreadable(bad: &'static str) -> crate::error::Error {
    let pages = Arc::new(AtomicUsize::new(0));
    let calls = pages.clone();
    let api = sdk(move |op| {
        match op {
        "GetShardIterator" => (200, r#"{"ShardIterator":"it-1"}"#.into()),
        "GetRecords" if calls.fetch_add(1, Ordering::SeqCst) == 0 => (
            200,
            r#"{"Records":[
              {"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}},"SequenceNumber":"1"}},
              {"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"b"}},"NewImage":{"pk":{"S":"b"},"m":{}},"SequenceNumber":"2"}}
            ],"NextShardIterator":"it-2"}"#
                .into(),
        ),
        "GetRecords" => (200, bad.into()),
        other => panic!("unexpected call {other}"),
    }
    });
    let stats = Arc::new(TableStats::default());
    let consumer = ShardConsumer {
        api: Arc::new(api),
        stream_arn: "arn:stream".into(),
        shard_id: "shardId-0001".into(),
        table: "T".into(),
        start: StartAt::TrimHorizon,
        horizon: None,
        clock: Default::default(),
        replay_from_ms: 0,
        view: View::NewImage,
        key_names: vec!["pk".to_string()].into(),
        applier: Arc::new(Applier::start(
            Arc::new(Sink),
            1,
            Arc::new(Limiter::new(0)),
            stats.clone(),
        )),
        ack: Arc::new(OrderedAck::<Pos>::new(None)),
        stats,
        idle: Arc::new(AtomicBool::new(false)),
        stop: CancellationToken::new(),
    };
    let err = consumer.run().await.expect_err("an unreadable page stops the shard");
    assert_eq!(pages.load(Ordering::SeqCst), 2, "read once, not retried");
    err
}

/// A page ferry cannot read stops the table at once (a retry reads the same bytes), naming the shard
/// and the sequence number: the unreadable record's, else the last one read.
#[tokio::test]
async fn an_unreadable_page_is_fatal_and_names_shard_and_sequence_number() {
    let err = consume_until_unreadable("<html>").await;
    assert_eq!(err.kind(), Kind::Fatal, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("shard shardId-0001"), "{msg}");
    assert!(msg.contains("after sequence number 2"), "{msg}");

    let err = consume_until_unreadable(
        r#"{"Records":[{"eventName":"MODIFY","dynamodb":{"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"x":{"S":1}},"SequenceNumber":"3"}}],"NextShardIterator":"it-3"}"#,
    )
    .await;
    assert_eq!(err.kind(), Kind::Fatal, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("shard shardId-0001") && msg.contains("record with sequence number 3"),
        "{msg}"
    );
}
