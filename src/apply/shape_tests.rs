//! The lane shapes every change through the table's transform (fakes at the `ApplyIo` seam).

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::checkpoint::OrderedAck;

/// The lane shapes every kind of change through the table's transform: a put outside the filter
/// deletes, a bulk-loaded item outside it is skipped (yet acknowledged), a read-through is shaped
/// once read, a delete's key is renamed, and an item the transform cannot shape stops the table
/// naming its key.
#[tokio::test(start_paused = true)]
async fn the_lane_shapes_puts_loads_deletes_and_read_throughs_by_the_transform() {
    use crate::transform::{At, Filter, Path, Spec, Transform};
    struct Recorder {
        writes: Mutex<Vec<WriteOp>>,
        source: Item,
    }
    impl ApplyIo for Recorder {
        async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
            let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
            assert!(!ops.is_empty(), "DynamoDB refuses an empty BatchWriteItem");
            self.writes.lock().unwrap().extend(ops);
            Ok(Vec::new())
        }
        async fn read_source(&self, _: Vec<Item>) -> Result<Vec<Item>> {
            Ok(vec![self.source.clone()])
        }
        fn key_names(&self) -> &[String] {
            static K: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            K.get_or_init(|| vec!["pk".to_string()])
        }
        fn destination(&self) -> &str {
            "dest"
        }
    }
    let at = |value| At {
        value,
        at: "ferry.toml:1:1".into(),
    };
    let spec = Spec {
        rename: vec![(at(Path::top("pk")), Path::top("id"))],
        filter: Some(At {
            value: Arc::new(Filter::compile("item.v > 1").unwrap()),
            at: "ferry.toml:1:1".into(),
        }),
        ..Spec::default()
    };
    let item = |k: &str, v: &str| {
        Item::from([
            ("pk".to_string(), AttributeValue::S(k.into())),
            ("v".to_string(), AttributeValue::S(v.into())),
        ])
    };
    let n = |k: &str, v: i64| {
        Item::from([
            ("pk".to_string(), AttributeValue::S(k.into())),
            ("v".to_string(), AttributeValue::N(v.to_string())),
        ])
    };
    let io = Arc::new(Recorder {
        writes: Mutex::default(),
        source: n("f", 5),
    });
    let shape = Arc::new(Transform::new(spec, vec!["pk".to_string()].into()));
    let applier = Applier::start_with_stop(
        io.clone(),
        1,
        Arc::new(Limiter::new(0)),
        Arc::default(),
        shape,
        CancellationToken::new(),
    );
    let ack: Arc<OrderedAck<()>> = Arc::new(OrderedAck::new(None));
    // A batch of nothing but skipped items writes nothing, and is acknowledged.
    let lone = Change {
        key: KeyBytes::of(&["pk".to_string()], &n("y", 0)).unwrap(),
        op: Op::Load(n("y", 0)),
        ticket: Ticket {
            sink: ack.clone(),
            index: ack.register_all([(None, true)]),
        },
    };
    applier.submit(lone).await.unwrap();
    ack.drained().await;
    let ops = [
        // A raw stream image goes through the transform like any other.
        Op::PutRaw(crate::item::RawItem::of(&n("a", 2))),
        Op::Put(n("b", 1)),
        Op::Load(n("c", 0)),
        Op::Delete(test_support::key_item("d")),
        Op::Fetch(test_support::key_item("f")),
    ];
    let first = ack.register_all(ops.iter().map(|_| (None, true)));
    let changes: Vec<Change> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let key = match &op {
                Op::Put(x) | Op::Load(x) | Op::Delete(x) | Op::Fetch(x) => {
                    KeyBytes::of(&["pk".to_string()], x).unwrap()
                }
                Op::PutRaw(r) | Op::LoadRaw(r) => KeyBytes::of(&["pk".to_string()], &r.to_item()).unwrap(),
            };
            Change {
                key,
                op,
                ticket: Ticket {
                    sink: ack.clone(),
                    index: first + i as u64,
                },
            }
        })
        .collect();
    applier.submit_all(changes).await.unwrap();
    ack.drained().await;
    let id = |k: &str| Item::from([("id".to_string(), AttributeValue::S(k.into()))]);
    let with_id = |k: &str, v: i64| {
        Item::from([
            ("id".to_string(), AttributeValue::S(k.into())),
            ("v".to_string(), AttributeValue::N(v.to_string())),
        ])
    };
    assert_eq!(
        *io.writes.lock().unwrap(),
        [
            WriteOp::Put(with_id("a", 2)),
            WriteOp::Delete(id("b")),
            WriteOp::Delete(id("d")),
            WriteOp::Put(with_id("f", 5)),
        ]
    );
    // A string where the filter compares a number: this item cannot be judged.
    let change = Change {
        key: KeyBytes::of(&["pk".to_string()], &item("z", "x")).unwrap(),
        op: Op::Put(item("z", "x")),
        ticket: Ticket {
            sink: ack.clone(),
            index: ack.register_all([(None, true)]),
        },
    };
    let _ = applier.submit(change).await;
    let err = applier.finish().await.unwrap_err();
    assert!(
        err.is_fatal() && err.message().contains(r#"key {"pk":{"S":"z"}}"#),
        "{err:?}"
    );
}
