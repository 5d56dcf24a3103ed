//! The SQS change buffer's message format, shared by the forwarder (writer) and the consumer
//! (reader).
//!
//! A message body is a JSON envelope naming the source table and holding either the stream record
//! exactly as the Lambda event carried it (`record`), or, for a record too large for a message, a
//! pointer to an S3 object that holds that same record JSON (`offload`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::item::KeyBytes;

/// Bodies above this go to S3 (SQS takes at most 256 KiB per message, attributes included).
pub const INLINE_MAX: usize = 240 * 1024;
/// SendMessageBatch takes at most 256 KiB of payload in all.
pub const BATCH_MAX: usize = 256 * 1024;
/// SendMessageBatch takes at most 10 entries.
pub const BATCH_ENTRIES: usize = 10;

/// Where an offloaded record is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offload {
    pub bucket: String,
    pub key: String,
}

/// A message body as the consumer reads it (the record stays unparsed until it is needed).
#[derive(Deserialize)]
pub(crate) struct Envelope {
    pub table: String,
    #[serde(default)]
    pub record: Option<crate::source::streams::wire::WireRecord>,
    #[serde(default)]
    pub offload: Option<Offload>,
}

/// An inline body: `{"table":..,"record":<the stream record JSON>}`.
pub fn inline_body(table: &str, record: &serde_json::Value) -> String {
    serde_json::json!({ "table": table, "record": record }).to_string()
}

/// A pointer body: `{"table":..,"offload":{"bucket":..,"key":..},"seq":..}` (the sequence number is
/// there for people reading the queue; the consumer takes it from the stored record).
pub fn pointer_body(table: &str, offload: &Offload, seq: &str) -> String {
    serde_json::json!({ "table": table, "offload": offload, "seq": seq }).to_string()
}

/// The S3 key of an offloaded record: one object per stream record, so a resend overwrites the
/// same object with the same bytes.
pub fn offload_key(table: &str, event_id: &str) -> String {
    format!(
        "ferry-offload/{}/{}.json",
        sanitize(table, 255),
        sanitize(event_id, 128)
    )
}

/// `MessageGroupId`: the table and a hash of the item's canonical key bytes. One key always maps
/// to one group (per-key order), distinct keys spread over many groups (parallel consumption).
/// SHA-256 rather than the lane hash: groups must not change between ferry versions while messages
/// of an older forwarder are still queued.
pub fn group_id(table: &str, key: &KeyBytes) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    // 128 characters at most: 100 for the table, '#', 24 for the hash.
    format!("{}#{hex}", sanitize(table, 100))
}

/// Keeps the characters SQS ids and S3 keys accept (alphanumerics and punctuation), at most `max`.
fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as Av;

    fn key(n: &str) -> KeyBytes {
        let item = crate::item::Item::from([
            ("pk".to_string(), Av::S("a".into())),
            ("sk".to_string(), Av::N(n.into())),
        ]);
        KeyBytes::of(&["pk".to_string(), "sk".to_string()], &item).unwrap()
    }

    #[test]
    fn one_key_one_group_whatever_its_spelling() {
        assert_eq!(group_id("Orders", &key("1.50")), group_id("Orders", &key("1.5")));
        assert_ne!(group_id("Orders", &key("1")), group_id("Orders", &key("2")));
        assert_ne!(group_id("Orders", &key("1")), group_id("Users", &key("1")));
        let long = group_id(&"t".repeat(255), &key("1"));
        assert!(long.len() <= 128, "{}", long.len());
    }

    #[test]
    fn envelopes_round_trip() {
        let rec = serde_json::json!({"eventID":"e1","eventName":"INSERT","dynamodb":{
            "Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}},"SequenceNumber":"7","ApproximateCreationDateTime":1.5}});
        let env: Envelope = serde_json::from_str(&inline_body("T", &rec)).unwrap();
        assert_eq!(env.table, "T");
        let raw = env.record.unwrap().into_raw().unwrap();
        assert_eq!((raw.seq.as_str(), raw.time_ms), ("7", 1500));
        let off = Offload {
            bucket: "b".into(),
            key: offload_key("T", "e1"),
        };
        let env: Envelope = serde_json::from_str(&pointer_body("T", &off, "7")).unwrap();
        assert!(env.record.is_none());
        assert_eq!(env.offload, Some(off));
    }
}
