//! Changes, items and fakes the apply path's unit tests (and other modules' tests) share.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

struct NoAck;
impl AckSink for NoAck {
    fn ack_all(&self, _: &[u64]) {}
}

pub fn key_item(k: &str) -> Item {
    Item::from([("pk".to_string(), AttributeValue::S(k.to_string()))])
}

pub fn put(v: usize) -> Op {
    Op::Put(Item::from([("v".to_string(), AttributeValue::N(v.to_string()))]))
}

pub fn big_put(v: usize, bytes: usize) -> Op {
    Op::Put(Item::from([
        ("v".to_string(), AttributeValue::N(v.to_string())),
        ("blob".to_string(), AttributeValue::S("x".repeat(bytes))),
    ]))
}

/// The parts of [`ApplyIo`] a write-only fake leaves alone: a table keyed by `pk`, named "dest".
macro_rules! write_only {
    () => {
        async fn read_source(&self, _: Vec<$crate::item::Item>) -> $crate::error::Result<Vec<$crate::item::Item>> {
            unreachable!("a write-only fake")
        }
        fn key_names(&self) -> &[String] {
            static K: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            K.get_or_init(|| vec!["pk".to_string()])
        }
        fn destination(&self) -> &str {
            "dest"
        }
    };
}
pub(crate) use write_only;

/// A put of `{pk: k, v: v}` taking its place `index` in `sink`.
pub fn put_change(k: &str, v: usize, sink: Arc<dyn AckSink>, index: u64) -> Change {
    let item = Item::from([
        ("pk".to_string(), AttributeValue::S(k.to_string())),
        ("v".to_string(), AttributeValue::N(v.to_string())),
    ]);
    let key = KeyBytes::of(&["pk".to_string()], &item).unwrap();
    Change {
        key,
        op: Op::Put(item),
        ticket: Ticket { sink, index },
    }
}

pub fn change(k: &str, op: Op, index: u64) -> Change {
    change_with_key(KeyBytes::of(&["pk".to_string()], &key_item(k)).unwrap(), op, index)
}

pub fn change_with_key(key: KeyBytes, op: Op, index: u64) -> Change {
    Change {
        key,
        op,
        ticket: Ticket {
            sink: Arc::new(NoAck),
            index,
        },
    }
}
