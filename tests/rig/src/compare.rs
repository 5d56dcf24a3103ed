//! Full-table comparison of two tables in canonical form (what the live tests and the demo use to
//! say "source and destination match").

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use serde_json::Value;

use ferry::item::{Item, canonical::canonical, json::item_to_json};

/// Every item of `table`, by canonical key.
pub async fn scan_all(c: &Client, table: &str) -> Result<BTreeMap<String, Value>, String> {
    Ok(scan_items(c, table)
        .await?
        .into_iter()
        .map(|item| {
            let key = item_to_json(&ferry::item::key_of(&["pk".into(), "sk".into()], &item)).to_string();
            (key, canonical(&item))
        })
        .collect())
}

/// Every item of `table`, read consistently.
pub async fn scan_items(c: &Client, table: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = c
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| format!("Scan {table}: {e:?}"))?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key.filter(|k| !k.is_empty()) {
            Some(k) => start = Some(k),
            None => return Ok(out),
        }
    }
}

/// The outcome of a comparison.
#[derive(Debug, Default)]
pub struct Diff {
    pub source_items: usize,
    pub destination_items: usize,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub differing: Vec<String>,
}

impl Diff {
    pub fn is_equal(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.differing.is_empty()
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source {} items, destination {} items; missing {}, extra {}, differing {}",
            self.source_items,
            self.destination_items,
            self.missing.len(),
            self.extra.len(),
            self.differing.len()
        )?;
        for (what, keys) in [
            ("missing", &self.missing),
            ("extra", &self.extra),
            ("differing", &self.differing),
        ] {
            if !keys.is_empty() {
                write!(
                    f,
                    "\n  {what}: {}",
                    keys.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                )?;
            }
        }
        Ok(())
    }
}

pub async fn compare(src: &Client, src_table: &str, dst: &Client, dst_table: &str) -> Result<Diff, String> {
    let a = scan_all(src, src_table).await?;
    let b = scan_all(dst, dst_table).await?;
    let mut d = Diff {
        source_items: a.len(),
        destination_items: b.len(),
        ..Diff::default()
    };
    for (k, v) in &a {
        match b.get(k) {
            None => d.missing.push(k.clone()),
            Some(w) if w != v => d.differing.push(k.clone()),
            _ => {}
        }
    }
    d.extra = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
    Ok(d)
}
