//! Which way a table pair replicates, and the switches between the two ways.
//!
//! After `ferry cutover --switch` the application writes to the destination, and ferry replays the
//! destination's stream onto the source (reverse), so the old table stays a live fallback;
//! `ferry rollback` switches back. The two directions never run at once on one pair: each would
//! replay the other's writes back (an echo), and an echoed older image could land after a newer
//! write on the other side. The pair's state row holds its one direction; only the daemon running
//! the pair flips it, after draining the direction it stops (see `sync::pair`).

use serde::{Deserialize, Serialize};

use crate::clock::fmt_ms;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Source → destination: the migration itself.
    #[default]
    Forward,
    /// Destination → source, after a switch: the old table follows the new one.
    Reverse,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        [Direction::Forward, Direction::Reverse]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    pub fn other(self) -> Direction {
        match self {
            Direction::Forward => Direction::Reverse,
            Direction::Reverse => Direction::Forward,
        }
    }

    /// "source → destination", for people.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Forward => "source → destination",
            Direction::Reverse => "destination → source",
        }
    }
}

/// Where a pair changed direction: the new direction replays the other table's stream from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchPoint {
    /// The direction entered.
    pub direction: Direction,
    /// S: every change of the direction left was durable before this time (ms).
    pub at_ms: i64,
}

impl SwitchPoint {
    pub fn at(&self) -> String {
        fmt_ms(self.at_ms)
    }
}

/// A switch asked for by `cutover --switch` or `rollback`, for the daemon to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchRequest {
    pub to: Direction,
    /// When it was asked: the direction being left drains every change made before this.
    pub asked_ms: i64,
}

/// The stored form of the switch points (a JSON list in one column or attribute).
pub fn switches_to_text(points: &[SwitchPoint]) -> Option<String> {
    (!points.is_empty()).then(|| serde_json::to_string(points).expect("switch points serialize"))
}

pub fn switches_from_text(table: &str, text: Option<&str>) -> Result<Vec<SwitchPoint>> {
    match text {
        None | Some("") => Ok(Vec::new()),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| Error::fatal(format!("table {table}: unreadable switch points {t:?}: {e}"))),
    }
}

/// A stored direction this ferry does not know is an error: guessing could run both ways.
pub fn direction_from_text(table: &str, text: Option<&str>) -> Result<Direction> {
    match text {
        None => Ok(Direction::Forward),
        Some(t) => Direction::parse(t).ok_or_else(|| {
            Error::fatal(format!(
                "table {table}: unknown direction {t:?} (written by another ferry version?)"
            ))
        }),
    }
}

/// A stored request, from its two fields; `None` when none was asked.
pub fn request_from_parts(table: &str, to: Option<&str>, asked_ms: Option<i64>) -> Result<Option<SwitchRequest>> {
    match (to, asked_ms) {
        (Some(to), Some(asked_ms)) => Ok(Some(SwitchRequest {
            to: direction_from_text(table, Some(to))?,
            asked_ms,
        })),
        _ => Ok(None),
    }
}
