//! The SQS change buffer's message format, shared by the forwarder (writer) and the consumer
//! (reader).
//!
//! A message body is a JSON envelope naming the source table and the format (`"v":2`) and holding
//! a list of stream records, in stream order, all of one message group: each part is either the
//! record exactly as the Lambda event carried it (`record`), or, for a record too large for a
//! message, a pointer to an S3 object that holds that same record JSON (`offload`).
//!
//! A group is a bucket of keys (a hash of the key modulo [`GROUPS`]): one key always maps to one
//! group, so per key the queue's order is stream order, and a message carries a Lambda batch's
//! records of one bucket rather than one record. SQS (and a local stand-in more so) costs per
//! call and per message, not per byte: twenty records a message is about a twentieth of the calls
//! and message charges.
//!
//! Format 1 (one record per message, grouped by the key itself; forwarders before 2026-12-07)
//! is still read, and always settled by reading the source: its groups differ from format 2's, so
//! a key's format-1 message still queued at an upgrade may come out after a newer format-2 one.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::item::KeyBytes;

/// The largest message SQS takes, and the most one SendMessageBatch carries: 1 MiB since AWS raised
/// both from 256 KiB (2025). A queue's `MaximumMessageSize` may hold its messages lower.
pub const SQS_MESSAGE_MAX: usize = 1024 * 1024;
/// What the forwarder assumes of a queue whose `MaximumMessageSize` it cannot read: the limit
/// before 2025, and the default of queues created then.
pub const FALLBACK_MESSAGE_MAX: usize = 256 * 1024;

/// Room for a message body on a queue taking messages of `queue_max` bytes: a sixteenth is kept
/// back for what SQS counts besides the body (240 KiB of 256 KiB, 960 KiB of 1 MiB). A record
/// larger than that goes to S3 and the message carries a pointer.
pub fn body_max(queue_max: usize) -> usize {
    queue_max - queue_max / 16
}
/// SendMessageBatch takes at most 10 entries.
pub const BATCH_ENTRIES: usize = 10;

/// Where an offloaded record is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offload {
    pub bucket: String,
    pub key: String,
}

/// The format the forwarder writes.
pub const FORMAT: u32 = 2;
/// Key buckets, each one message group. A Lambda batch of 1,000 records over distinct keys (the
/// template's) is five messages of about 200 records. The consumer holds at most one receive's
/// worth of each group at a time (SQS hands out up to 10 of a group's messages in one call, and
/// none while they are in flight). Fewer, fuller messages cost fewer calls per record (moto,
/// 2026-12-07, N = 10,000, batches of 100: 3 groups 0.42 of the stream path, 5 groups 0.39, 10
/// groups 0.10, 20 groups 0.16).
pub const GROUPS: u32 = 5;

/// A message body as the consumer reads it (the records stay unparsed until they are needed).
#[derive(Deserialize)]
pub(crate) struct Envelope {
    pub table: String,
    /// The format; absent in format 1.
    #[serde(default)]
    pub v: Option<u32>,
    /// Format 2's records.
    #[serde(default)]
    pub records: Vec<Part>,
    /// Format 1's one record, inline ...
    #[serde(default)]
    pub record: Option<crate::source::streams::wire::WireRecord>,
    /// ... or offloaded.
    #[serde(default)]
    pub offload: Option<Offload>,
}

/// One record of a message: inline, or a pointer to S3.
#[derive(Deserialize, Default)]
pub(crate) struct Part {
    #[serde(default)]
    pub record: Option<crate::source::streams::wire::WireRecord>,
    #[serde(default)]
    pub offload: Option<Offload>,
}

/// An inline part: `{"record":<the stream record JSON>}`.
pub fn inline_part(record: &serde_json::Value) -> String {
    serde_json::json!({ "record": record }).to_string()
}

/// A pointer part: `{"offload":{"bucket":..,"key":..},"seq":..}` (the sequence number is there for
/// people reading the queue; the consumer takes it from the stored record).
pub fn pointer_part(offload: &Offload, seq: &str) -> String {
    serde_json::json!({ "offload": offload, "seq": seq }).to_string()
}

/// A message body of `parts` (each from [`inline_part`] or [`pointer_part`], in stream order).
pub fn body<S: AsRef<str>>(table: &str, parts: &[S]) -> String {
    let mut out = serde_json::json!({ "table": table, "v": FORMAT }).to_string();
    out.pop();
    out.push_str(",\"records\":[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(p.as_ref());
    }
    out.push_str("]}");
    out
}

/// A body of one inline record.
#[cfg(test)]
pub(crate) fn inline_body(table: &str, record: &serde_json::Value) -> String {
    body(table, &[inline_part(record)])
}

/// A body of one offloaded record.
#[cfg(test)]
pub(crate) fn pointer_body(table: &str, offload: &Offload, seq: &str) -> String {
    body(table, &[pointer_part(offload, seq)])
}

/// Bytes [`body`] adds to its parts, besides one comma between two parts.
pub fn envelope_overhead(table: &str) -> usize {
    body::<&str>(table, &[]).len()
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

/// `MessageGroupId`: the table and the key's bucket of `groups` (written in the id, so buckets of
/// another count are other groups). One key always maps to one group (per-key order). SHA-256
/// of the item's canonical key bytes rather than the lane hash: groups must not change between
/// ferry versions while messages of an older forwarder are still queued.
pub fn group_id(table: &str, key: &KeyBytes, groups: u32) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // 128 characters at most: 100 for the table, the rest for the bucket.
    format!("{}#{}of{groups}", sanitize(table, 100), n % u64::from(groups.max(1)))
}

/// `MessageDeduplicationId` of a message: a hash of its records' eventIDs, so the same records
/// sent again (a Lambda retry) are dropped by SQS within its 5-minute window.
pub fn dedup_id<'a>(event_ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for id in event_ids {
        h.update(id.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(
            group_id("Orders", &key("1.50"), 10),
            group_id("Orders", &key("1.5"), 10)
        );
        assert_ne!(group_id("Orders", &key("1"), 10), group_id("Users", &key("1"), 10));
        assert_ne!(group_id("Orders", &key("1"), 10), group_id("Orders", &key("1"), 16));
        let spread: std::collections::HashSet<String> =
            (0..200).map(|i| group_id("Orders", &key(&i.to_string()), 10)).collect();
        assert_eq!(spread.len(), 10, "keys spread over every bucket: {spread:?}");
        let long = group_id(&"t".repeat(255), &key("1"), u32::MAX);
        assert!(long.len() <= 128, "{}", long.len());
        assert_eq!(dedup_id(["a", "bc"]), dedup_id(["a", "bc"]));
        assert_ne!(dedup_id(["a", "bc"]), dedup_id(["ab", "c"]));
        assert!(dedup_id(["a"]).len() <= 128);
    }

    #[test]
    fn envelopes_round_trip() {
        let rec = serde_json::json!({"eventID":"e1","eventName":"INSERT","dynamodb":{
            "Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}},"SequenceNumber":"7","ApproximateCreationDateTime":1.5}});
        let off = Offload {
            bucket: "b".into(),
            key: offload_key("T", "e1"),
        };
        let text = body("T", &[inline_part(&rec), pointer_part(&off, "8")]);
        assert_eq!(
            text.len(),
            envelope_overhead("T") + inline_part(&rec).len() + 1 + pointer_part(&off, "8").len()
        );
        let env: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!((env.table.as_str(), env.v), ("T", Some(FORMAT)));
        let mut parts = env.records.into_iter();
        let raw = parts.next().unwrap().record.unwrap().into_raw().unwrap();
        assert_eq!((raw.seq.as_str(), raw.time_ms), ("7", 1500));
        let pointer = parts.next().unwrap();
        assert!(pointer.record.is_none());
        assert_eq!(pointer.offload, Some(off));
        // Format 1: the record at the top.
        let v1 = serde_json::json!({"table": "T", "record": rec}).to_string();
        let env: Envelope = serde_json::from_str(&v1).unwrap();
        assert!(env.v.is_none() && env.records.is_empty() && env.record.is_some());
    }
}
