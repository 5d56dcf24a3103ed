//! Key-by-key comparison of the keys a run touched (a full scan is too slow for large runs), plus
//! a count of items outside them.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use ferry::item::Item;

use super::{Change, TABLE};
use crate::compare::Diff;
use crate::data::{HASH, RANGE};

/// The keys `changes` touch, once each.
pub fn keys_touched(changes: &[Change]) -> Vec<Item> {
    let mut seen = HashSet::new();
    changes
        .iter()
        .filter(|c| seen.insert(c.pk().to_string()))
        .map(|c| {
            let (Change::Put(i) | Change::Delete(i)) = c;
            ferry::item::key_of(&[HASH.into(), RANGE.into()], i)
        })
        .collect()
}

/// Consistent BatchGetItem of `keys` (≤100), retrying unprocessed keys: canonical key → canonical
/// item.
async fn get_many(c: &Client, keys: Vec<Item>) -> Result<HashMap<String, serde_json::Value>, String> {
    use ferry::item::{canonical::canonical, json::item_to_json};
    let mut out = HashMap::new();
    let mut todo = keys;
    while !todo.is_empty() {
        let ka = KeysAndAttributes::builder()
            .set_keys(Some(std::mem::take(&mut todo)))
            .consistent_read(true)
            .build()
            .map_err(|e| e.to_string())?;
        let resp = c
            .batch_get_item()
            .request_items(TABLE, ka)
            .send()
            .await
            .map_err(|e| format!("BatchGetItem: {e:?}"))?;
        for item in resp.responses.and_then(|mut r| r.remove(TABLE)).into_iter().flatten() {
            let key = ferry::item::key_of(&[HASH.into(), RANGE.into()], &item);
            out.insert(item_to_json(&key).to_string(), canonical(&item));
        }
        todo = resp
            .unprocessed_keys
            .and_then(|mut m| m.remove(TABLE))
            .map(|ka| ka.keys)
            .unwrap_or_default();
    }
    Ok(out)
}

/// Deletes `TABLE` (frees DynamoDB Local's memory for the next phase); errors ignored.
pub async fn drop_table(c: &Client) {
    let _ = c.delete_table().table_name(TABLE).send().await;
}

/// `ItemCount` of `TABLE` (DynamoDB Local keeps it current).
pub async fn item_count(c: &Client) -> Result<i64, String> {
    c.describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(|e| format!("DescribeTable: {e:?}"))?
        .table
        .and_then(|t| t.item_count)
        .ok_or_else(|| "DescribeTable: no ItemCount".to_string())
}

/// Source and destination compared item by item over every key the workload touched (100 keys a
/// BatchGetItem, consistent reads), plus both tables' `ItemCount` so that items outside those keys
/// count too. DynamoDB Local's Scan slows down with table size (a 160k-item table takes minutes),
/// so this is the comparison for large tables.
pub async fn compare_by_keys(src: &Client, dst: &Client, keys: &[Item]) -> Result<Diff, String> {
    use futures::StreamExt;
    let chunks = futures::stream::iter(keys.chunks(100).map(|chunk| async move {
        let (a, b) = tokio::join!(get_many(src, chunk.to_vec()), get_many(dst, chunk.to_vec()));
        Ok::<_, String>((a?, b?))
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    let mut d = Diff::default();
    for r in chunks {
        let (a, b) = r?;
        d.source_items += a.len();
        d.destination_items += b.len();
        for (k, v) in &a {
            match b.get(k) {
                None => d.missing.push(k.clone()),
                Some(w) if w != v => d.differing.push(k.clone()),
                _ => {}
            }
        }
        d.extra.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    }
    count_outside(src, dst, &mut d).await?;
    Ok(d)
}

/// Items beyond the compared keys: on the source they mean the key list is wrong; on the
/// destination they are extra items.
async fn count_outside(src: &Client, dst: &Client, d: &mut Diff) -> Result<(), String> {
    let (s, t) = (item_count(src).await?, item_count(dst).await?);
    if s != d.source_items as i64 {
        return Err(format!(
            "source ItemCount {s} but {} items under the written keys: the key list is incomplete",
            d.source_items
        ));
    }
    let outside = t - d.destination_items as i64;
    if outside != 0 {
        d.extra.push(format!(
            "{outside} items outside the written keys (destination ItemCount {t})"
        ));
    }
    Ok(())
}
