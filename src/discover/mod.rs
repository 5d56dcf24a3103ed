//! Reading tables: descriptions, preconditions, and creating a destination like its source.

pub mod check;
pub mod create;
pub mod schema;
pub mod settings;

use aws_sdk_dynamodb::types::{KeyType, TableDescription, TableStatus};

use crate::config::Clients;
use crate::error::{Error, Result};
use crate::retry::Policy;

/// DescribeTable, with `None` for a table that does not exist.
pub async fn describe(c: &Clients, name: &str, policy: Policy) -> Result<Option<TableDescription>> {
    let r = crate::retry::retry(
        policy,
        |_| {},
        || async {
            match c.dynamodb.describe_table().table_name(name).send().await {
                Ok(out) => Ok(out.table),
                Err(e) => {
                    let e = Error::from_sdk("DescribeTable", e);
                    if e.code() == Some("ResourceNotFoundException") {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        },
    )
    .await;
    r.map_err(|e| e.context(format!("{} table {name} at {}", c.label, c.dynamodb_endpoint)))
}

/// Key attribute names, hash key first.
pub fn key_names(t: &TableDescription) -> Vec<String> {
    let mut ks: Vec<_> = t.key_schema().iter().collect();
    ks.sort_by_key(|k| if k.key_type == KeyType::Hash { 0 } else { 1 });
    ks.into_iter().map(|k| k.attribute_name.clone()).collect()
}

/// "pk (S, HASH), sk (N, RANGE)" for messages and comparison.
pub fn key_signature(t: &TableDescription) -> String {
    let mut ks: Vec<_> = t.key_schema().iter().collect();
    ks.sort_by_key(|k| if k.key_type == KeyType::Hash { 0 } else { 1 });
    ks.iter()
        .map(|k| {
            let ty = t
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name == k.attribute_name)
                .map_or("?".to_string(), |a| a.attribute_type.as_str().to_string());
            format!("{} ({ty}, {})", k.attribute_name, k.key_type.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until the table and all its indexes are ACTIVE.
pub async fn wait_active(c: &Clients, name: &str) -> Result<TableDescription> {
    for attempt in 0u32.. {
        if let Some(t) = describe(c, name, Policy::DAEMON).await? {
            let gsis_active = t
                .global_secondary_indexes()
                .iter()
                .all(|g| g.index_status.as_ref().is_none_or(|s| s.as_str() == "ACTIVE"));
            if t.table_status == Some(TableStatus::Active) && gsis_active {
                return Ok(t);
            }
        }
        let wait = std::time::Duration::from_millis((100 * (attempt as u64 + 1)).min(2_000));
        tokio::time::sleep(wait).await;
    }
    unreachable!()
}
