//! From a DynamoDB Streams record to the change ferry applies.

use super::wire::{Event, RawRecord};

use crate::apply::Op;
use crate::discover::View;
use crate::error::{Error, Result};
use crate::item::{self, Image, KeyBytes};

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
    let key = KeyBytes::of(key_names, &keys).ok_or_else(|| {
        Error::fatal(format!(
            "stream record {seq}: key attributes {key_names:?} missing in {}",
            item::display_key(&keys)
        ))
    })?;
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
        (View::NewImage, Event::Remove) => Op::Delete(keys),
        // KEYS_ONLY/OLD_IMAGE carry no new image; and an event type ferry does not know
        // (DynamoDB Local 3.x labels TTL deletes this way) is settled by reading the source.
        _ => Op::Fetch(keys),
    };
    Ok(StreamChange { seq, time_ms, key, op })
}
