//! `[state]`: where ferry keeps its positions. The embedded SQLite file is the default (one
//! worker); `backend = "dynamodb"` keeps them in a DynamoDB table that several workers share under
//! leases ([`crate::checkpoint::lease`]), reached like a side and by default through the
//! destination's settings.

use std::path::PathBuf;
use std::time::Duration;

use super::reader::{Errors, Obj};
use super::{Side, side_keys};

#[derive(Debug, Clone)]
pub enum StateConfig {
    /// The embedded SQLite file (a relative path is relative to the config file).
    Sqlite(PathBuf),
    /// A DynamoDB table shared by every worker of the migration.
    Dynamo(Box<DynamoState>),
}

#[derive(Debug, Clone)]
pub struct DynamoState {
    pub table: String,
    /// How to reach it: the destination's settings, with each key `[state]` sets in its place.
    pub side: Side,
    /// A worker whose lease has not been renewed for this long (on the taker's clock) is taken
    /// over.
    pub failover: Duration,
}

pub const DEFAULT_PATH: &str = "ferry-state.db";
pub const DEFAULT_TABLE: &str = "ferry-state";
/// Below this, a renewal every third of it leaves too little room for one slow call.
const MIN_FAILOVER_SECONDS: u64 = 3;
const FAILOVER_WHY: &str = "a worker renews its lease every third of failover_seconds, and a shorter \
     lease would be lost to one slow call";

/// The SQLite backend's keys and the DynamoDB backend's, for messages about a key under the wrong
/// backend.
const SQLITE_KEYS: [&str; 1] = ["path"];
const DYNAMO_KEYS: [&str; 7] = [
    "table",
    "failover_seconds",
    "region",
    "profile",
    "role_arn",
    "endpoint_url",
    "endpoints",
];

/// Reads `[state]` (absent: SQLite at the default path).
pub(super) fn state(root: &mut Obj, errs: &mut Errors, destination: &Side) -> StateConfig {
    let Some(mut st) = root.table(errs, "state") else {
        return StateConfig::Sqlite(PathBuf::from(DEFAULT_PATH));
    };
    let backend = match st.string_at(errs, "backend") {
        None => "sqlite".to_string(),
        Some((b, _)) if b == "sqlite" || b == "dynamodb" => b,
        Some((b, span)) => {
            errs.at(
                span,
                format!("backend in [state] must be \"sqlite\" or \"dynamodb\", found {b:?}"),
            );
            "sqlite".to_string()
        }
    };
    let (others, other) = if backend == "sqlite" {
        (&DYNAMO_KEYS[..], "dynamodb")
    } else {
        (&SQLITE_KEYS[..], "sqlite")
    };
    for key in others {
        if let Some(span) = st.span_of(key) {
            errs.at(
                span,
                format!("{key} in [state] applies to backend = \"{other}\", and this one is \"{backend}\""),
            );
        }
    }
    let config = if backend == "sqlite" {
        StateConfig::Sqlite(PathBuf::from(
            st.string(errs, "path").unwrap_or_else(|| DEFAULT_PATH.into()),
        ))
    } else {
        let failover = st.uint_in(errs, "failover_seconds", MIN_FAILOVER_SECONDS, 3600, FAILOVER_WHY);
        StateConfig::Dynamo(Box::new(DynamoState {
            table: st.string(errs, "table").unwrap_or_else(|| DEFAULT_TABLE.into()),
            failover: Duration::from_secs(failover.unwrap_or(10)),
            side: side_keys(&mut st, errs, destination.clone()),
        }))
    };
    st.finish(errs);
    config
}
