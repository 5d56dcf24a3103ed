//! Reading tables: descriptions, preconditions, a destination's write capacity, and creating a
//! destination like its source.

pub mod capacity;
pub mod check;
pub mod create;
pub mod schema;
pub mod settings;
mod view;

pub use view::View;

use aws_sdk_dynamodb::types::{KeyType, TableDescription, TableStatus};

use crate::config::Clients;
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};

/// DescribeTable, with `None` for a table that does not exist.
pub async fn describe(c: &Clients, name: &str, policy: Policy) -> Result<Option<TableDescription>> {
    crate::retry::retry(policy, |_| {}, || describe_once(c, name)).await
}

/// One DescribeTable; `None` when the table does not exist.
async fn describe_once(c: &Clients, name: &str) -> Result<Option<TableDescription>> {
    match c.dynamodb.describe_table().table_name(name).send().await {
        Ok(out) => Ok(out.table),
        Err(e) => match Error::from_sdk("DescribeTable", e) {
            e if e.code() == Some("ResourceNotFoundException") => Ok(None),
            e => Err(e.context(format!("{} table {name} at {}", c.label, c.dynamodb_endpoint))),
        },
    }
}

/// Key attribute names, hash key first.
pub fn key_names(t: &TableDescription) -> Vec<String> {
    let mut ks: Vec<_> = t.key_schema().iter().collect();
    ks.sort_by_key(|k| if k.key_type == KeyType::Hash { 0 } else { 1 });
    ks.into_iter().map(|k| k.attribute_name.clone()).collect()
}

/// "pk (S, HASH), sk (N, RANGE)" for messages and comparison.
pub fn key_signature(t: &TableDescription) -> String {
    key_signature_as(t, |n| n)
}

/// [`key_signature`] with the key attributes named as `name` says (a transform's renames).
pub fn key_signature_as<'a>(t: &'a TableDescription, name: impl Fn(&'a str) -> &'a str) -> String {
    let mut ks: Vec<_> = t.key_schema().iter().collect();
    ks.sort_by_key(|k| if k.key_type == KeyType::Hash { 0 } else { 1 });
    ks.iter()
        .map(|k| {
            let ty = t
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name == k.attribute_name)
                .map_or("?".to_string(), |a| a.attribute_type.as_str().to_string());
            format!("{} ({ty}, {})", name(&k.attribute_name), k.key_type.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until the table and all its indexes are ACTIVE (a table just created may not be
/// listed yet).
pub async fn wait_active(c: &Clients, name: &str) -> Result<TableDescription> {
    let active = |t: Option<TableDescription>| {
        let t = t.filter(|t| {
            let indexes = t.global_secondary_indexes().iter();
            t.table_status == Some(TableStatus::Active)
                && indexes
                    .map(|g| g.index_status.as_ref())
                    .all(|s| s.is_none_or(|s| s.as_str() == "ACTIVE"))
        });
        Ok(t)
    };
    Retrier::new(Policy::DAEMON, format!("waiting for table {name:?} to be active"))
        .poll(std::time::Duration::from_millis(500), || describe_once(c, name), active)
        .await
}
