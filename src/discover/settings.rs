//! Reading the source settings a table description does not carry: TTL, PITR and tags from
//! DynamoDB, and the Lambda event source mappings on its stream. Read-only.

use aws_sdk_dynamodb::types::{PointInTimeRecoveryStatus, TimeToLiveStatus};
use aws_sdk_lambda::types::EventSourceMappingConfiguration;

use crate::config::Clients;
use crate::error::Result;
use crate::retry::call;

/// The TTL attribute when TTL is enabled (or being enabled).
pub async fn ttl(c: &Clients, table: &str) -> Result<Option<String>> {
    let out = call("DescribeTimeToLive", || {
        c.dynamodb.describe_time_to_live().table_name(table).send()
    })
    .await
    .map_err(|e| e.context(format!("reading the TTL of {table:?}")))?;
    Ok(out.time_to_live_description.and_then(|d| {
        matches!(
            d.time_to_live_status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        )
        .then_some(d.attribute_name)
        .flatten()
    }))
}

pub async fn pitr(c: &Clients, table: &str) -> Result<bool> {
    let out = call("DescribeContinuousBackups", || {
        c.dynamodb.describe_continuous_backups().table_name(table).send()
    })
    .await
    .map_err(|e| e.context(format!("reading the point-in-time recovery setting of {table:?}")))?;
    Ok(out
        .continuous_backups_description
        .and_then(|d| d.point_in_time_recovery_description)
        .and_then(|p| p.point_in_time_recovery_status)
        == Some(PointInTimeRecoveryStatus::Enabled))
}

/// Every tag of a table, in key order.
pub async fn tags(c: &Clients, table_arn: &str) -> Result<Vec<(String, String)>> {
    let mut tags = all_pages(|next| async move {
        let out = call("ListTagsOfResource", || {
            c.dynamodb
                .list_tags_of_resource()
                .resource_arn(table_arn)
                .set_next_token(next.clone())
                .send()
        })
        .await
        .map_err(|e| e.context(format!("reading the tags of {table_arn}")))?;
        let page = out.tags().iter().map(|t| (t.key.clone(), t.value.clone())).collect();
        Ok((page, out.next_token))
    })
    .await?;
    tags.sort();
    Ok(tags)
}

/// Every event source mapping whose source is `stream_arn`.
pub async fn mappings(c: &Clients, stream_arn: &str) -> Result<Vec<EventSourceMappingConfiguration>> {
    all_pages(|marker| async move {
        let out = call("ListEventSourceMappings", || {
            c.lambda
                .list_event_source_mappings()
                .event_source_arn(stream_arn)
                .set_marker(marker.clone())
                .send()
        })
        .await
        .map_err(|e| e.context(format!("listing the Lambda event source mappings of {stream_arn}")))?;
        let page = out
            .event_source_mappings()
            .iter()
            .filter(|m| m.event_source_arn.as_deref() == Some(stream_arn))
            .cloned()
            .collect();
        Ok((page, out.next_marker))
    })
    .await
}

/// Every table name on this side.
pub async fn list_tables(c: &Clients) -> Result<Vec<String>> {
    all_pages(|start| async move {
        let out = call("ListTables", || {
            c.dynamodb
                .list_tables()
                .set_exclusive_start_table_name(start.clone())
                .send()
        })
        .await
        .map_err(|e| e.context(format!("listing the {} tables at {}", c.label, c.dynamodb_endpoint)))?;
        Ok((out.table_names().to_vec(), out.last_evaluated_table_name))
    })
    .await
}

/// Every item of a paged listing: `page(token)` reads one page (the first with `None`) and returns
/// its items and the next page's token, `None` after the last.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut next = None;
    loop {
        let (items, token) = page(next).await?;
        all.extend(items);
        next = token;
        if next.is_none() {
            return Ok(all);
        }
    }
}
