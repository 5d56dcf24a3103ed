//! The state in a DynamoDB table, so that several workers can share one migration: the same rows
//! as the SQLite file ([`super::StateStore`]), one item each.
//!
//! Layout (partition key `pk`, sort key `sk`, both strings):
//! - `pk = "tables"`, `sk` = the table's name: its lifecycle row and live counters (one partition,
//!   so listing every table is one query);
//! - `pk = "<rows>#<table>"` (`segments`, `shards`, `queues`, `exports`, `health`): a table's
//!   positions, `sk` the row's key (a segment's number zero-padded, a shard's id) or `-`.
//!
//! Every read is strongly consistent (read your writes). Every call runs under ferry's one retry
//! driver with the SDK's retries off: throttles and transient errors are retried forever, with
//! backoff. ferry creates the table on first use (on-demand, point-in-time recovery on where the
//! endpoint has it) and refuses a table of another shape.

mod fence;
mod setup;
mod tables;
mod update;
mod values;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{Put, PutRequest, TransactWriteItem, Update as TxUpdate, WriteRequest};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;
use rusqlite::types::Value;
use tokio_util::sync::CancellationToken;

use super::direction::SwitchRequest;
use super::lease::workers::{WORKERS, beat_of};
use super::lease::{Fence, LEASES, lease_of};
use super::rows::Record;
use super::state::{Crew, Progress, StateStore};
use super::{ExportRow, QueueRow, Retrying, SegmentRow, ShardRow, TableRow};
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};
use update::Update;
use values::{Item, from_av, s, sort_key, to_av};

/// The partition of the table rows.
const TABLES: &str = "tables";
/// The sort key of a row that is one per table.
const ONE: &str = "-";
/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// TransactWriteItems' limit.
const TRANSACTION: usize = 100;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// The lease every write is conditional on, while one is held ([`DynamoStore::hold`]).
    fence: std::sync::Mutex<Option<Fence>>,
    /// Ends every call's retries (the daemon's stop request).
    stop: CancellationToken,
}

impl DynamoStore {
    fn retrier(&self, what: &str) -> Retrier {
        Retrier::new(Policy::DAEMON, format!("{what} (state table {})", self.table)).stop_on(&self.stop)
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        self.retrier("reading")
            .run(|| async {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("GetItem", e))?;
                Ok(out.item)
            })
            .await
    }

    /// Every item of partition `pk`, in sort key order.
    async fn query(&self, pk: &str) -> Result<Vec<Item>> {
        query_all(&self.client, &self.table, pk, self.retrier("reading")).await
    }

    /// Applies `update` to an item; with `must_exist`, only to an existing one (`false` when there
    /// is none).
    async fn update(&self, pk: &str, sk: &str, update: Update, must_exist: bool) -> Result<bool> {
        if self.fence().is_some() {
            let mut write = TxUpdate::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression(update.expression())
                .set_expression_attribute_names(Some(update.names))
                .set_expression_attribute_values(Some(update.values));
            if must_exist {
                write = write.condition_expression("attribute_exists(pk)");
            }
            let write = write.build().map_err(|e| Error::fatal(e.to_string()))?;
            return self
                .transact(vec![TransactWriteItem::builder().update(write).build()])
                .await;
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(update.expression())
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values));
        if must_exist {
            request = request.condition_expression("attribute_exists(pk)");
        }
        let sent = conditional(self.retrier("writing"), "UpdateItem", || request.clone().send()).await?;
        Ok(sent.is_some())
    }

    /// Writes whole items: under a held lease in transactions, otherwise 25 a call until none is
    /// left unprocessed.
    async fn put_items(&self, items: Vec<Item>) -> Result<()> {
        if self.fence().is_some() {
            for chunk in items.chunks(TRANSACTION - 1) {
                let puts = chunk
                    .iter()
                    .map(|item| {
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item.clone()))
                            .build()
                    })
                    .map(|p| p.map(|p| TransactWriteItem::builder().put(p).build()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::fatal(e.to_string()))?;
                self.transact(puts).await?;
            }
            return Ok(());
        }
        for chunk in items.chunks(BATCH) {
            let mut pending = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build();
                    put.map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| Error::fatal(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut retrier = self.retrier("writing");
            while !pending.is_empty() {
                let out = retrier
                    .run(|| async {
                        self.client
                            .batch_write_item()
                            .request_items(&self.table, pending.clone())
                            .send()
                            .await
                            .map_err(|e| Error::from_sdk("BatchWriteItem", e))
                    })
                    .await?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    let e = Error::new(crate::error::Kind::Throttled, "BatchWriteItem left items unprocessed");
                    retrier.backoff(e).await?;
                }
            }
        }
        Ok(())
    }

    fn partition<R: Record>(table: &str) -> String {
        format!("{}#{table}", R::TABLE)
    }

    fn record<R: Record>(&self, item: &Item) -> Result<R> {
        let what = format!("state table {}", self.table);
        let values = R::COLUMNS
            .iter()
            .map(|c| from_av(item.get(*c)).map_err(|e| Error::fatal(format!("{what}: {} {c}: {e}", R::TABLE))))
            .collect::<Result<Vec<Value>>>()?;
        R::from_values(&values).map_err(|e| Error::fatal(format!("{what}: a {} row: {e}", R::TABLE)))
    }

    async fn row<R: Record>(&self, table: &str) -> Result<Option<R>> {
        match self.get(&Self::partition::<R>(table), ONE).await? {
            Some(item) => Ok(Some(self.record(&item)?)),
            None => Ok(None),
        }
    }

    async fn rows<R: Record>(&self, table: &str) -> Result<Vec<R>> {
        let items = self.query(&Self::partition::<R>(table)).await?;
        items.iter().map(|i| self.record(i)).collect()
    }

    /// Rows of `table` as items, one per key (the last row of a key wins: BatchWriteItem refuses
    /// a key twice).
    fn items<R: Record>(&self, table: &str, rows: &[R]) -> Vec<Item> {
        let pk = Self::partition::<R>(table);
        let mut by_key = std::collections::BTreeMap::new();
        for row in rows {
            let values = row.values();
            let sk = if R::KEY == 0 {
                ONE.to_string()
            } else {
                sort_key(&values[0])
            };
            let mut item: Item = R::COLUMNS
                .iter()
                .zip(values)
                .filter_map(|(c, v)| to_av(v).map(|av| (c.to_string(), av)))
                .collect();
            item.insert("pk".into(), s(&pk));
            item.insert("sk".into(), s(&sk));
            by_key.insert(sk, item);
        }
        by_key.into_values().collect()
    }

    async fn put_rows<R: Record>(&self, table: &str, rows: &[R]) -> Result<()> {
        self.put_items(self.items(table, rows)).await
    }
}

/// Sends a conditional write (`op`, for messages) under `retrier`: its answer, or `None` when its
/// condition failed.
pub(super) async fn conditional<T, E, F, Fut>(mut retrier: Retrier, op: &str, send: F) -> Result<Option<T>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    retrier
        .run(|| async {
            match send().await {
                Ok(out) => Ok(Some(out)),
                Err(e) => match Error::from_sdk(op, e) {
                    e if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
                    e => Err(e),
                },
            }
        })
        .await
}

/// Every item of partition `pk` of `table`, in sort key order (strongly consistent; every page
/// under `retrier`).
pub(super) async fn query_all(client: &Client, table: &str, pk: &str, mut retrier: Retrier) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = retrier
            .run(|| async {
                client
                    .query()
                    .table_name(table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(pk))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.clone())
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("Query", e))
            })
            .await?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(items),
        }
    }
}

impl StateStore for DynamoStore {
    fn location(&self) -> String {
        format!("state table {}", self.table)
    }
    /// Some worker holds a lease (until the lease is taken over, also a worker that died).
    fn daemon_running(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async {
            let leases = self.query(LEASES).await?;
            Ok(leases.iter().any(|l| l.contains_key("owner")))
        })
    }
    fn workers(&self) -> BoxFuture<'_, Result<Option<Crew>>> {
        Box::pin(async {
            let workers = self.query(WORKERS).await?.iter().filter_map(beat_of).collect();
            let leases = self.query(LEASES).await?;
            let leases = leases.iter().map(|l| lease_of(l, &self.table)).collect::<Result<_>>()?;
            Ok(Some(Crew { workers, leases }))
        })
    }
    fn table<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<TableRow>>> {
        Box::pin(self.table_row(name))
    }
    fn tables(&self) -> BoxFuture<'_, Result<Vec<TableRow>>> {
        Box::pin(self.table_rows())
    }
    fn put_table<'a>(&'a self, row: &'a TableRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.write_table(row))
    }
    fn put_progress<'a>(&'a self, name: &'a str, p: Progress) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.write_progress(name, p))
    }
    fn put_error<'a>(&'a self, name: &'a str, error: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.write_error(name, error))
    }
    fn set_replay_from<'a>(&'a self, name: &'a str, ms: i64) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.write_replay_from(name, ms))
    }
    fn request_switch<'a>(&'a self, name: &'a str, r: SwitchRequest) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.write_switch_request(name, r))
    }
    /// Switching direction needs the SQLite state for now (`cutover --switch` refuses before).
    fn clear_shards<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            Err(Error::fatal(format!(
                "table {table}: switching direction needs the SQLite state for now ([state] in DynamoDB keeps shard leases)"
            )))
        })
    }
    fn segments<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<SegmentRow>>> {
        Box::pin(self.rows(table))
    }
    fn put_segment<'a>(&'a self, table: &'a str, row: &'a SegmentRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_rows(table, std::slice::from_ref(row)))
    }
    fn shards<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<ShardRow>>> {
        Box::pin(self.rows(table))
    }
    fn put_shards<'a>(&'a self, table: &'a str, rows: &'a [ShardRow]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_rows(table, rows))
    }
    fn queue<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<QueueRow>>> {
        Box::pin(self.row(table))
    }
    fn put_queue<'a>(&'a self, table: &'a str, row: &'a QueueRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_rows(table, std::slice::from_ref(row)))
    }
    fn export<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<ExportRow>>> {
        Box::pin(self.row(table))
    }
    fn put_export<'a>(&'a self, table: &'a str, row: &'a ExportRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_rows(table, std::slice::from_ref(row)))
    }
    fn health<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<Retrying>>> {
        Box::pin(self.read_health(table))
    }
    fn put_health<'a>(&'a self, table: &'a str, retrying: Option<&'a Retrying>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.write_health(table, retrying))
    }
}
