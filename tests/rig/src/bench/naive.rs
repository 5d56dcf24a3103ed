//! The naive baseline: a stream replayed one record at a time, shard by shard in lineage order,
//! through the SDK (no batching, no lanes).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;

use crate::convert::from_stream_item;

/// The stream ARN of `table`.
pub async fn stream_arn(c: &Client, table: &str) -> Result<String, String> {
    c.describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable {table}: {e:?}"))?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| format!("{table} has no stream"))
}

/// Every shard of the stream, parents before children.
pub async fn shards_in_lineage_order(s: &aws_sdk_dynamodbstreams::Client, arn: &str) -> Result<Vec<String>, String> {
    let mut all: Vec<(String, Option<String>)> = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let d = s
            .describe_stream()
            .stream_arn(arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(|e| format!("DescribeStream: {e:?}"))?
            .stream_description
            .ok_or("DescribeStream: no description")?;
        for sh in d.shards.unwrap_or_default() {
            all.push((sh.shard_id.unwrap_or_default(), sh.parent_shard_id));
        }
        match d.last_evaluated_shard_id {
            Some(id) => start = Some(id),
            None => break,
        }
    }
    Ok(lineage_order(all))
}

fn lineage_order(mut pending: Vec<(String, Option<String>)>) -> Vec<String> {
    let ids: HashSet<String> = pending.iter().map(|(id, _)| id.clone()).collect();
    let mut done: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|(id, parent)| {
            let ready = parent.as_ref().is_none_or(|p| !ids.contains(p) || done.contains(p));
            if ready {
                done.push(id.clone());
            }
            !ready
        });
        if pending.len() == before {
            done.extend(pending.drain(..).map(|(id, _)| id));
        }
    }
    done
}

/// Applies one stream record with one PutItem or DeleteItem.
async fn apply_one(dst: &Client, table: &str, r: aws_sdk_dynamodbstreams::types::Record) -> Result<(), String> {
    let rec = r.dynamodb.ok_or("record without dynamodb")?;
    match rec.new_image {
        Some(img) => {
            dst.put_item()
                .table_name(table)
                .set_item(Some(from_stream_item(img)?))
                .send()
                .await
                .map_err(|e| format!("PutItem: {e:?}"))?;
        }
        None => {
            let keys = from_stream_item(rec.keys.ok_or("record without keys")?)?;
            dst.delete_item()
                .table_name(table)
                .set_key(Some(keys))
                .send()
                .await
                .map_err(|e| format!("DeleteItem: {e:?}"))?;
        }
    }
    Ok(())
}

/// Reads one shard from TRIM_HORIZON and applies each record in order, up to `limit` records in
/// all (`done` counts across shards). Stops at the shard's end or at an empty page.
async fn naive_shard(
    s: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shard: &str,
    dst: &Client,
    table: &str,
    limit: usize,
    done: &mut usize,
) -> Result<(), String> {
    let mut iter = s
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(|e| format!("GetShardIterator: {e:?}"))?
        .shard_iterator;
    while let Some(it) = iter.take() {
        let page = s
            .get_records()
            .shard_iterator(it)
            .limit(1000)
            .send()
            .await
            .map_err(|e| format!("GetRecords: {e:?}"))?;
        let records = page.records.unwrap_or_default();
        if records.is_empty() {
            return Ok(());
        }
        for r in records {
            if *done >= limit {
                return Ok(());
            }
            apply_one(dst, table, r).await?;
            *done += 1;
        }
        iter = page.next_shard_iterator;
    }
    Ok(())
}

/// The naive replayer: GetRecords from TRIM_HORIZON, shards in lineage order, one sequential
/// PutItem/DeleteItem per record, for the first `limit` records. Returns (records, wall time).
pub async fn naive_replay(
    s: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    dst: &Client,
    table: &str,
    limit: usize,
) -> Result<(usize, Duration), String> {
    let start = Instant::now();
    let mut done = 0;
    for shard in shards_in_lineage_order(s, arn).await? {
        if done >= limit {
            break;
        }
        naive_shard(s, arn, &shard, dst, table, limit, &mut done).await?;
    }
    Ok((done, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_come_parents_first() {
        let order = lineage_order(vec![
            ("c".into(), Some("b".into())),
            ("b".into(), Some("a".into())),
            ("a".into(), Some("trimmed".into())),
        ]);
        assert_eq!(order, ["a", "b", "c"]);
    }
}
