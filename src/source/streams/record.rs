//! From a DynamoDB Streams record to the change ferry applies.

use aws_sdk_dynamodbstreams::types::{OperationType, Record, StreamViewType};

use crate::apply::Op;
use crate::error::{Error, Result};
use crate::item::{self, KeyBytes, convert};

/// A record reduced to what the apply path needs.
pub struct StreamChange {
    pub seq: String,
    /// ApproximateCreationDateTime in ms (rounded down to the second on AWS, the minute on
    /// DynamoDB Local).
    pub time_ms: i64,
    pub key: KeyBytes,
    pub op: Op,
}

/// How a table's stream view type maps onto operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// NEW_IMAGE, NEW_AND_OLD_IMAGES: inserts and modifies carry the full new item.
    NewImage,
    /// KEYS_ONLY, OLD_IMAGE: the current item is read from the source before writing.
    KeysOnly,
}

impl View {
    /// From the view type's name (the DynamoDB and Streams SDKs each have their own enum).
    pub fn of(view_type: &str) -> Option<View> {
        match StreamViewType::from(view_type) {
            StreamViewType::NewImage | StreamViewType::NewAndOldImages => Some(View::NewImage),
            StreamViewType::KeysOnly | StreamViewType::OldImage => Some(View::KeysOnly),
            _ => None,
        }
    }
}

pub fn parse(rec: Record, view: View, key_names: &[String]) -> Result<StreamChange> {
    let d = rec
        .dynamodb
        .ok_or_else(|| Error::fatal("stream record without a dynamodb section"))?;
    let seq = d
        .sequence_number
        .ok_or_else(|| Error::fatal("stream record without a sequence number"))?;
    let time_ms = d
        .approximate_creation_date_time
        .map_or(0, |t| t.to_millis().unwrap_or(0));
    let bad = |what: String| Error::fatal(format!("stream record {seq}: {what}"));
    let keys = convert::from_stream_item(d.keys.unwrap_or_default()).map_err(&bad)?;
    let key = KeyBytes::of(key_names, &keys).ok_or_else(|| {
        bad(format!(
            "key attributes {key_names:?} missing in {}",
            item::display_key(&keys)
        ))
    })?;
    let op = match (view, rec.event_name) {
        (View::NewImage, Some(OperationType::Insert | OperationType::Modify)) => {
            let image = d
                .new_image
                .ok_or_else(|| bad("INSERT/MODIFY without NewImage".into()))?;
            Op::Put(convert::from_stream_item(image).map_err(&bad)?)
        }
        (View::NewImage, Some(OperationType::Remove)) => Op::Delete(keys),
        // KEYS_ONLY/OLD_IMAGE carry no new image; and an event type this SDK does not know
        // (DynamoDB Local 3.x labels TTL deletes this way) is settled by reading the source.
        _ => Op::Fetch(keys),
    };
    Ok(StreamChange {
        seq,
        time_ms,
        key,
        op,
    })
}
