//! From a DynamoDB Streams record to the change ferry applies.

use super::wire::{Event, RawRecord};

use crate::apply::Op;
use crate::discover::View;
use crate::error::{Error, Result};
use crate::item::{Image, KeyBytes};

/// A record reduced to what the apply path needs.
pub struct StreamChange {
    pub seq: String,
    /// ApproximateCreationDateTime in ms (rounded down to the second on AWS, the minute on
    /// DynamoDB Local).
    pub time_ms: i64,
    pub key: KeyBytes,
    pub op: Op,
}

pub fn parse(rec: RawRecord, view: View, key_names: &[String]) -> Result<StreamChange> {
    let RawRecord {
        event,
        seq,
        time_ms,
        keys,
        new_image,
    } = rec;
    let key = keys.key_bytes(key_names).ok_or_else(|| {
        Error::fatal(format!(
            "stream record {seq}: key attributes {key_names:?} missing in {}",
            keys.json()
        ))
    })?;
    // Only a delete or a read-through needs the key as a map.
    let key_item = || key.to_item(key_names).expect("encoded from these names");
    let op = match (view, event) {
        (View::NewImage, Event::Insert | Event::Modify) => match new_image {
            Some(Image::Raw(raw)) => Op::PutRaw(raw),
            Some(Image::Map(image)) => Op::Put(image),
            None => {
                return Err(Error::fatal(format!(
                    "stream record {seq}: INSERT/MODIFY without NewImage"
                )));
            }
        },
        (View::NewImage, Event::Remove) => Op::Delete(key_item()),
        // KEYS_ONLY/OLD_IMAGE carry no new image; and an event type ferry does not know
        // (DynamoDB Local 3.x labels TTL deletes this way) is settled by reading the source.
        _ => Op::Fetch(key_item()),
    };
    Ok(StreamChange { seq, time_ms, key, op })
}
