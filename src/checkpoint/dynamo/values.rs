//! Rows as DynamoDB items: plain column values to attributes and back, and the table row's own
//! mapping. Flags are numbers (0/1), as in the SQLite file; an absent value is an absent attribute.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use rusqlite::types::Value;

use crate::checkpoint::{Phase, TableRow, direction};
use crate::error::{Error, Result};

pub type Item = HashMap<String, Av>;

/// A column value as an attribute; `None` for a null (the attribute is left out).
pub fn to_av(v: Value) -> Option<Av> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(Av::N(i.to_string())),
        Value::Real(f) => Some(Av::N(f.to_string())),
        Value::Text(s) => Some(Av::S(s)),
        Value::Blob(b) => Some(Av::B(Blob::new(b))),
    }
}

/// An attribute as a column value (`Null` when absent).
pub fn from_av(av: Option<&Av>) -> std::result::Result<Value, String> {
    Ok(match av {
        None | Some(Av::Null(_)) => Value::Null,
        Some(Av::N(n)) => match n.parse::<i64>() {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Real(n.parse().map_err(|_| format!("{n:?} is not a number"))?),
        },
        Some(Av::S(s)) => Value::Text(s.clone()),
        Some(Av::B(b)) => Value::Blob(b.as_ref().to_vec()),
        Some(Av::Bool(b)) => Value::Integer(*b as i64),
        Some(other) => return Err(format!("unexpected attribute {other:?}")),
    })
}

/// A sort key for a key column: numbers zero-padded so that they sort as numbers.
pub fn sort_key(v: &Value) -> String {
    match v {
        Value::Integer(i) => format!("{i:020}"),
        Value::Text(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

pub fn s(v: impl Into<String>) -> Av {
    Av::S(v.into())
}

pub fn n(v: i64) -> Av {
    Av::N(v.to_string())
}

/// Reads one item's attributes, naming the item in every error.
pub struct Reader<'a> {
    pub item: &'a Item,
    pub what: &'a str,
}

impl Reader<'_> {
    fn value(&self, name: &str) -> Result<Value> {
        from_av(self.item.get(name)).map_err(|e| Error::fatal(format!("{}: attribute {name}: {e}", self.what)))
    }

    fn wrong(&self, name: &str, want: &str) -> Error {
        Error::fatal(format!("{}: attribute {name} is missing or not {want}", self.what))
    }

    pub fn text(&self, name: &str) -> Result<String> {
        self.opt_text(name)?.ok_or_else(|| self.wrong(name, "a string"))
    }

    pub fn opt_text(&self, name: &str) -> Result<Option<String>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            _ => Err(self.wrong(name, "a string")),
        }
    }

    pub fn num(&self, name: &str) -> Result<i64> {
        self.opt_num(name)?.ok_or_else(|| self.wrong(name, "a number"))
    }

    pub fn opt_num(&self, name: &str) -> Result<Option<i64>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(i)),
            _ => Err(self.wrong(name, "a whole number")),
        }
    }

    pub fn flag(&self, name: &str) -> Result<bool> {
        Ok(self.opt_num(name)?.unwrap_or(0) != 0)
    }
}

/// A table row from its item (`sk` is the table's name).
pub fn table_row(item: &Item, what: &str) -> Result<TableRow> {
    let r = Reader { item, what };
    let name = r.text("sk")?;
    let tag = r.text("phase")?;
    let phase = Phase::parse(&tag).ok_or_else(|| {
        Error::fatal(format!(
            "{what}: table {name}: unknown state {tag:?} (written by another ferry version?)"
        ))
    })?;
    Ok(TableRow {
        destination: r.text("destination")?,
        phase,
        error: r.opt_text("error")?,
        stream_arn: r.opt_text("stream_arn")?,
        capture_ms: r.opt_num("capture_ms")?,
        replay_from_ms: r.opt_num("replay_from_ms")?,
        snapshot_segments: r.num("snapshot_segments")?,
        snapshot_done: r.flag("snapshot_done")?,
        stopped_cleanly: r.flag("stopped_cleanly")?,
        records_applied: r.opt_num("records_applied")?.unwrap_or(0),
        newest_applied_ms: r.opt_num("newest_applied_ms")?,
        caught_up: r.flag("caught_up")?,
        applied_as_of_ms: r.opt_num("applied_as_of_ms")?,
        updated_ms: r.num("updated_ms")?,
        direction: direction::direction_from_text(&name, r.opt_text("direction")?.as_deref())?,
        switches: direction::switches_from_text(&name, r.opt_text("switches")?.as_deref())?,
        switch_request: direction::request_from_parts(
            &name,
            r.opt_text("switch_to")?.as_deref(),
            r.opt_num("switch_asked_ms")?,
        )?,
        name,
    })
}
