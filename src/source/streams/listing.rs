//! The stream task's view of the shard tree: each listing is checked for gaps (a shard ferry has
//! not finished that is no longer listed, a stream disabled or gone) before its new shards are
//! recorded, durably, with what is known of their birth.

use std::collections::HashMap;

use super::StreamTask;
use super::api::{self, StreamApi};
use super::gap::{Listed, STALE_LISTING_MS};
use super::lineage::Lineage;
use crate::checkpoint::ShardRow;
use crate::error::{Error, Result};

impl<S: StreamApi> StreamTask<S> {
    /// Lists shards, records new ones, and fails on a gap: a shard ferry has not finished that is
    /// no longer in the stream. `since`: the start of the previous listing in this run (0: none),
    /// before which a newly listed shard did not exist. Returns whether the listing was complete.
    pub(super) async fn discover(
        &self,
        lineage: &mut Lineage,
        rows: &mut HashMap<String, ShardRow>,
        listed: &mut HashMap<String, Listed>,
        since: i64,
        failing: &mut bool,
    ) -> Result<bool> {
        let listing = match self.api.list_shards(&self.stream_arn).await {
            Ok(l) => {
                if std::mem::take(failing) {
                    self.ctx.stats.health.recovered();
                }
                l
            }
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Err(Error::fatal(format!(
                    "table {}: stream {} no longer exists (disabled or replaced). ferry never replaces a stream; \
                     the changes since the last checkpoint cannot be read. Re-run the table from a fresh snapshot.",
                    self.ctx.table, self.stream_arn
                )));
            }
            Err(e) if !e.is_fatal() => {
                // Listed again at the next tick: the ticks are this call's backoff.
                tracing::warn!(table = %self.ctx.table, error = %e, "listing shards failed; will retry");
                self.ctx.stats.health.failed(e.message(), !*failing);
                *failing = true;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.check_listing(&listing, rows)?;
        self.record_new(listing.shards, lineage, rows, listed, since).await?;
        Ok(true)
    }

    /// Fails on a disabled stream, and on a gap: a shard ferry has not finished that is no longer
    /// listed.
    fn check_listing(&self, listing: &api::Listing, rows: &HashMap<String, ShardRow>) -> Result<()> {
        if listing.disabled {
            return Err(Error::fatal(format!(
                "table {}: stream {} was disabled while ferry was replaying it; changes made since are not \
                 in it. ferry never replaces a stream: re-enable one and re-run the table from a fresh snapshot.",
                self.ctx.table, self.stream_arn
            )));
        }
        let shards = &listing.shards;
        let present: std::collections::HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
        if let Some(lost) = rows
            .values()
            .find(|r| !r.done && !present.contains(r.shard_id.as_str()))
        {
            return Err(Error::fatal(format!(
                "table {}: gap in stream {}: shard {} disappeared (trimmed after 24 h) before ferry read it to the end{}. \
                 The destination cannot be brought in sync from this stream: re-run the table from a fresh snapshot.",
                self.ctx.table,
                self.stream_arn,
                lost.shard_id,
                lost.position
                    .as_ref()
                    .map(|p| format!(" (applied up to {p})"))
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Records the shards listed for the first time, with what is known of their birth (created
    /// after `since`, the previous listing of this run, when there was one).
    async fn record_new(
        &self,
        shards: Vec<api::ShardInfo>,
        lineage: &mut Lineage,
        rows: &mut HashMap<String, ShardRow>,
        listed: &mut HashMap<String, Listed>,
        since: i64,
    ) -> Result<()> {
        let mut new_rows = Vec::new();
        for s in shards {
            let facts = listed.entry(s.id.clone()).or_default();
            facts.first_seq = s.first_seq;
            if !lineage.contains(&s.id) {
                // Less a margin: a listing may lag the stream by a little.
                facts.born_after_ms = (since > 0).then_some(since - STALE_LISTING_MS);
                lineage.add(&s.id, s.parent.as_deref());
                let row = ShardRow {
                    shard_id: s.id.clone(),
                    parent_id: s.parent,
                    position: None,
                    last_record_ms: None,
                    done: false,
                    records: 0,
                    captured: false,
                };
                rows.insert(s.id, row.clone());
                new_rows.push(row);
            }
        }
        if !new_rows.is_empty() {
            self.ctx.store.put_shards(&self.ctx.table, &new_rows).await?;
        }
        Ok(())
    }
}
