//! A GetRecords page read in one pass, for tables whose new images stay raw.
//!
//! Why: serde_json capturing each new image as raw text scanned every string of it (a quarter of
//! the apply path's CPU), and the sizing walk then scanned it again. This reader goes over the page
//! once with the item cursor: the envelope, each record's fields, and the images, checking JSON's
//! syntax and DynamoDB's shape as it goes. It reads what the serde reader of [`super::wire`] reads
//! (the same records from the same page, the same pages refused); a property test holds the two to
//! that, and the serde reader stays for transforms (images as maps) and for naming the first
//! unreadable record of a refused page.

use super::wire::{Event, RawRecord};
use crate::item::cursor::Cursor;
use crate::item::{Image, RawKeys};

/// The records of a GetRecords response body and its next shard iterator.
pub(super) fn parse(text: &str) -> Result<(Vec<RawRecord>, Option<String>), String> {
    let mut c = Cursor::new(text);
    let (mut records, mut next) = (None, None);
    c.entries(|c, name| match &*name.decoded()? {
        "Records" => once(&mut records, "Records", c, |c| list(c, record)),
        "NextShardIterator" => once(&mut next, "NextShardIterator", c, |c| optional(c, string)),
        _ => c.skip(),
    })?;
    c.end()?;
    Ok((records.unwrap_or_default(), next.flatten()))
}

/// Reads a field into `slot`; a field given twice is an error, as serde has it.
fn once<T>(
    slot: &mut Option<T>,
    name: &str,
    c: &mut Cursor<'_>,
    read: impl FnOnce(&mut Cursor<'_>) -> Result<T, String>,
) -> Result<(), String> {
    if slot.is_some() {
        return Err(c.error(&format!("duplicate field `{name}`")));
    }
    *slot = Some(read(c)?);
    Ok(())
}

/// `null`, or a value read by `read`.
fn optional<T>(
    c: &mut Cursor<'_>,
    read: impl FnOnce(&mut Cursor<'_>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if c.null() {
        return Ok(None);
    }
    read(c).map(Some)
}

fn string(c: &mut Cursor<'_>) -> Result<String, String> {
    let s = c.string()?;
    Ok(s.decoded()?.into_owned())
}

fn list<T>(c: &mut Cursor<'_>, each: fn(&mut Cursor<'_>) -> Result<T, String>) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    c.items(|c| {
        out.push(each(c)?);
        Ok(())
    })?;
    Ok(out)
}

/// The parts of one record, as the serde reader's `WireRecord` holds them.
#[derive(Default)]
struct Parts {
    event: Option<Option<Event>>,
    time_s: Option<Option<f64>>,
    keys: Option<Option<RawKeys>>,
    new_image: Option<Option<Image>>,
    old_image: Option<()>,
    seq: Option<Option<String>>,
}

fn record(c: &mut Cursor<'_>) -> Result<RawRecord, String> {
    let mut p = Parts::default();
    let mut dynamodb: Option<Option<()>> = None;
    c.entries(|c, name| match &*name.decoded()? {
        "eventName" => once(&mut p.event, "eventName", c, |c| optional(c, event)),
        "dynamodb" => {
            let p = &mut p;
            once(&mut dynamodb, "dynamodb", c, |c| optional(c, |c| stream_record(c, p)))
        }
        _ => c.skip(),
    })?;
    if dynamodb.flatten().is_none() {
        return Err(c.error("a stream record without its dynamodb section"));
    }
    Ok(RawRecord {
        event: p.event.flatten().unwrap_or(Event::Other),
        seq: p
            .seq
            .flatten()
            .ok_or_else(|| c.error("a stream record without a sequence number"))?,
        time_ms: p.time_s.flatten().map_or(0, |s| (s * 1000.0) as i64),
        keys: p.keys.flatten().unwrap_or_default(),
        new_image: p.new_image.flatten(),
    })
}

fn stream_record(c: &mut Cursor<'_>, p: &mut Parts) -> Result<(), String> {
    c.entries(|c, name| match &*name.decoded()? {
        "ApproximateCreationDateTime" => once(&mut p.time_s, "ApproximateCreationDateTime", c, |c| {
            optional(c, seconds)
        }),
        "Keys" => once(&mut p.keys, "Keys", c, |c| optional(c, RawKeys::read)),
        "NewImage" => once(&mut p.new_image, "NewImage", c, |c| optional(c, Image::read)),
        "OldImage" => once(&mut p.old_image, "OldImage", c, |c| c.skip()),
        "SequenceNumber" => once(&mut p.seq, "SequenceNumber", c, |c| optional(c, string)),
        _ => c.skip(),
    })
}

fn event(c: &mut Cursor<'_>) -> Result<Event, String> {
    let s = c.string()?;
    Ok(match &*s.decoded()? {
        "INSERT" => Event::Insert,
        "MODIFY" => Event::Modify,
        "REMOVE" => Event::Remove,
        _ => Event::Other,
    })
}

/// A number of seconds, rounded as serde_json rounds it.
fn seconds(c: &mut Cursor<'_>) -> Result<f64, String> {
    let n = c.number()?;
    serde_json::from_str(n).map_err(|e| c.error(&e.to_string()))
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
