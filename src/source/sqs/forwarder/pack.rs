//! From a Lambda batch's records to messages: each record is read for its key's group and written
//! as a message part (inline, or a pointer to S3); per group, consecutive records are packed into
//! one message, in stream order, while its body stays within [`body_max`] of the queue's message
//! size.

use std::collections::HashMap;

use serde_json::Value;

use super::Target;
use crate::error::{Error, Result};
use crate::item::{KeyBytes, json::item_from_json};
use crate::source::sqs::message::{self, Offload, body_max};

/// One record, read.
pub(super) struct Rec {
    pub seq: String,
    event_id: String,
    group: String,
    /// Its part of a message body.
    part: String,
    /// The record JSON to store in S3 first, and where.
    offload: Option<(Offload, Vec<u8>)>,
}

/// One message, ready to send.
pub(super) struct Message {
    pub group: String,
    pub dedup: String,
    pub body: String,
    /// Positions in the batch of its records, ascending.
    pub records: Vec<usize>,
    /// Records to store in S3 before the message is sent.
    pub offloads: Vec<(Offload, Vec<u8>)>,
}

impl Message {
    /// The position of its first record: messages are sent in this order.
    pub fn first(&self) -> usize {
        self.records[0]
    }
}

/// A message being packed.
#[derive(Default)]
struct Open {
    records: Vec<usize>,
    offloads: Vec<(Offload, Vec<u8>)>,
    parts: Vec<String>,
    event_ids: Vec<String>,
    /// Its body's length so far.
    bytes: usize,
}

/// Packs `recs` (in stream order) into messages of at most `max` bytes, ordered by their first
/// record. A group's messages hold its records in stream order, one after another.
pub(super) fn pack(table: &str, recs: Vec<Rec>, max: usize) -> Vec<Message> {
    let empty = message::envelope_overhead(table);
    // Each group's message being filled, by its index in `open`.
    let mut filling: HashMap<String, usize> = HashMap::new();
    let mut open: Vec<(String, Open)> = Vec::new();
    for (i, r) in recs.into_iter().enumerate() {
        // A part after the first adds a comma.
        let adds = |o: &Open| usize::from(!o.parts.is_empty()) + r.part.len();
        let at = match filling.get(&r.group) {
            Some(&m) if open[m].1.bytes + adds(&open[m].1) <= max => m,
            _ => {
                filling.insert(r.group.clone(), open.len());
                let fresh = Open {
                    bytes: empty,
                    ..Open::default()
                };
                open.push((r.group, fresh));
                open.len() - 1
            }
        };
        let o = &mut open[at].1;
        o.bytes += adds(o);
        o.records.push(i);
        o.offloads.extend(r.offload);
        o.parts.push(r.part);
        o.event_ids.push(r.event_id);
    }
    open.into_iter()
        .map(|(group, o)| Message {
            group,
            body: message::body(table, &o.parts),
            dedup: message::dedup_id(o.event_ids.iter().map(String::as_str)),
            records: o.records,
            offloads: o.offloads,
        })
        .collect()
}

/// Reads one record of the Lambda event.
pub(super) fn record(target: &Target, record: &Value) -> Result<Rec> {
    let text = |v: Option<&Value>, what: &str| {
        v.and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::fatal(format!("no {what}")))
    };
    let event_id = text(record.get("eventID"), "eventID")?;
    let d = record
        .get("dynamodb")
        .ok_or_else(|| Error::fatal("no dynamodb section"))?;
    let seq = text(d.get("SequenceNumber"), "dynamodb.SequenceNumber")?;
    let keys = item_from_json(d.get("Keys").unwrap_or(&Value::Null))
        .map_err(|e| Error::fatal(format!("record {seq}: unreadable Keys: {e}")))?;
    // The key schema is not in the event; any fixed order gives one identity per key.
    let mut names: Vec<String> = keys.keys().cloned().collect();
    names.sort();
    let key = KeyBytes::of(&names, &keys)
        .filter(|_| !names.is_empty())
        .ok_or_else(|| Error::fatal(format!("record {seq}: Keys hold no scalar key attributes")))?;
    let group = message::group_id(&target.table, &key, target.groups);
    let part = message::inline_part(record);
    let max = body_max(target.message_max);
    let room = max - message::envelope_overhead(&target.table);
    let (part, offload) = if part.len() <= room {
        (part, None)
    } else {
        let bucket = target.offload_bucket.clone().ok_or_else(|| {
            Error::fatal(format!(
                "record {seq} is {} bytes, over the queue's {max}-byte room for a message, and no offload \
                 bucket is set (FERRY_OFFLOAD_BUCKET)",
                part.len()
            ))
        })?;
        let off = Offload {
            bucket,
            key: message::offload_key(&target.table, &event_id),
        };
        let pointer = message::pointer_part(&off, &seq);
        (pointer, Some((off, record.to_string().into_bytes())))
    };
    Ok(Rec {
        seq,
        event_id,
        group,
        part,
        offload,
    })
}
