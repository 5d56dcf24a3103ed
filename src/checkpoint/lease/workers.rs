//! The workers of a migration, beside the leases: each an item `pk = "workers"`, `sk = <worker>`
//! whose `beats` every coordination round adds one to. They tell how many workers share the
//! tables ([`super::share`]) and what `ferry status` shows. A worker is gone once its beats stood
//! still for a lease duration on the reader's own clock ([`super::watch::Observed`]), or at once
//! when it left (a graceful stop deletes its item). `seen_ms` is the writer's wall clock, shown
//! to people and never used for a decision.

use aws_sdk_dynamodb::types::AttributeValue as Av;

use super::{Leases, number, text};
use crate::checkpoint::dynamo::{conditional, query_all};
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// The partition of the workers in the state table.
pub const WORKERS: &str = "workers";

#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    pub worker: String,
    pub beats: i64,
    /// When the worker last beat, on its own wall clock (for display).
    pub seen_ms: i64,
}

impl Leases {
    /// One heartbeat of this worker (registering it on the first).
    pub async fn beat(&self) -> Result<()> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Av::S(WORKERS.into()))
            .key("sk", Av::S(self.worker.clone()))
            .update_expression("SET beats = if_not_exists(beats, :zero) + :one, seen_ms = :now")
            .expression_attribute_values(":zero", Av::N("0".into()))
            .expression_attribute_values(":one", Av::N("1".into()))
            .expression_attribute_values(":now", Av::N(now_ms().to_string()));
        self.retrier("beating")
            .run(|| async {
                update
                    .clone()
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("UpdateItem", e))?;
                Ok(())
            })
            .await
    }

    /// Every registered worker (gone ones too, until their items are removed).
    pub async fn workers(&self) -> Result<Vec<Beat>> {
        let items = query_all(&self.client, &self.table, WORKERS, self.retrier("listing workers")).await?;
        Ok(items.iter().filter_map(beat_of).collect())
    }

    /// Removes a worker gone for long (its beats stood still for many lease durations), unless it
    /// beat again since it was read.
    pub async fn forget(&self, gone: &Beat) -> Result<()> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Av::S(WORKERS.into()))
            .key("sk", Av::S(gone.worker.clone()))
            .condition_expression("beats = :read")
            .expression_attribute_values(":read", Av::N(gone.beats.to_string()));
        conditional(self.retrier("forgetting a worker"), "DeleteItem", || {
            delete.clone().send()
        })
        .await
        .map(|_| ())
    }

    /// Leaves the registry (a graceful stop): the others count one worker less at once.
    pub async fn leave(&self) -> Result<()> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Av::S(WORKERS.into()))
            .key("sk", Av::S(self.worker.clone()));
        self.retrier("leaving")
            .run(|| async {
                delete
                    .clone()
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("DeleteItem", e))?;
                Ok(())
            })
            .await
    }
}

/// A worker item (`None` for a malformed one, which is skipped).
pub(crate) fn beat_of(item: &std::collections::HashMap<String, Av>) -> Option<Beat> {
    Some(Beat {
        worker: text(item, "sk")?,
        beats: number(item, "beats")?,
        seen_ms: number(item, "seen_ms").unwrap_or(0),
    })
}
