//! The table run's seams: the AWS calls its own steps make ([`TableApi`]) and the bulk loader and
//! change source it drives ([`Seams`]). [`Sdk`] is the product's; the lifecycle tests script fakes.

use aws_sdk_dynamodb::types::TableDescription;
use futures::future::BoxFuture;

use super::table::{RunCtx, TableRun};
use crate::apply::budget::WriteBudget;
use crate::checkpoint::StateStore;
use crate::checkpoint::{Capture, Lifecycle};
use crate::config::Clients;
use crate::discover::schema::TableSchema;
use crate::discover::{self, capacity, create};
use crate::error::Result;
use crate::plan::PlannedTable;
use crate::retry::Policy;
use crate::snapshot::export::ExportSnapshot;
use crate::snapshot::scan::ScanTask;
use crate::snapshot::source::SdkScan;
use crate::snapshot::{BulkLoader, Loaded};
use crate::source::ChangeSource;
use crate::source::sqs::consumer::SqsTask;
use crate::source::streams::{self, StreamTask, api::SdkStreams};

/// The AWS calls of the table run's own steps (creating, capturing, checking the stream).
pub(super) trait TableApi: Send + Sync {
    /// The source's current stream ARN; `None` when its stream is off (or the table is gone).
    fn current_stream(&self) -> BoxFuture<'_, Result<Option<String>>>;
    /// Creates the destination from the plan's schema, else like the source (`like`).
    fn create_destination<'a>(
        &'a self,
        planned: Option<&'a PlannedTable>,
        like: &'a TableDescription,
    ) -> BoxFuture<'a, Result<()>>;
    /// Enables the source's stream; the source's description after.
    fn enable_stream(&self) -> BoxFuture<'_, Result<TableDescription>>;
    /// This host's clock minus the source endpoint's (ms), when it could be measured.
    fn clock_skew(&self) -> BoxFuture<'_, Option<i64>>;
    /// Saves the stream's shard tree in `store` as captured; how many shards it has.
    fn capture_shards<'a>(&'a self, stream_arn: &'a str, store: &'a dyn StateStore) -> BoxFuture<'a, Result<usize>>;
    /// The destination's write budget for `max_write_units_per_second = configured`: from the
    /// table as it is, or from `planned` (what ferry creates it from) while it does not exist.
    fn write_budget<'a>(
        &'a self,
        configured: Option<u32>,
        planned: &'a TableSchema,
    ) -> BoxFuture<'a, Result<WriteBudget>>;
}

/// What the lifecycle driver calls and drives: the AWS calls, and the loader and source to run.
pub(super) trait Seams: Send + Sync {
    type Loader: BulkLoader + Send;
    type Source: ChangeSource + Send;
    fn api(&self) -> &dyn TableApi;
    fn bulk_loader(&self, run: &TableRun, ctx: &RunCtx, segments: u32) -> Self::Loader;
    fn change_source(&self, run: &TableRun, ctx: &RunCtx, capture: &Capture) -> Self::Source;
}

/// The SDK's seams: the table's clients, and the loader and change source its config names.
pub(super) struct Sdk(pub SdkTable);

impl Seams for Sdk {
    type Loader = Bulk;
    type Source = Changes;
    fn api(&self) -> &dyn TableApi {
        &self.0
    }
    fn bulk_loader(&self, run: &TableRun, ctx: &RunCtx, segments: u32) -> Bulk {
        run.bulk_loader(ctx, segments)
    }
    fn change_source(&self, run: &TableRun, ctx: &RunCtx, capture: &Capture) -> Changes {
        run.change_source(ctx, capture)
    }
}

/// [`TableApi`] through the SDK.
pub(super) struct SdkTable {
    /// The pair's name in the state store.
    pub key: String,
    pub src: Clients,
    pub dst: Clients,
    pub source: String,
    pub destination: String,
    /// The destination's schema follows the table's transform (renamed key and index keys).
    pub transform: crate::transform::Spec,
}

impl TableApi for SdkTable {
    fn current_stream(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(async move {
            let now = discover::describe(&self.src, &self.source, Policy::DAEMON).await?;
            Ok(now.and_then(|t| {
                t.stream_specification
                    .as_ref()
                    .filter(|s| s.stream_enabled)
                    .and(t.latest_stream_arn.clone())
            }))
        })
    }

    fn create_destination<'a>(
        &'a self,
        planned: Option<&'a PlannedTable>,
        like: &'a TableDescription,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match planned {
                // The plan's schema file is the destination's (discover wrote it in the
                // transform's shape; `ferry plan` and the create step check its keys).
                Some(p) => p.schema.create(&self.dst, &self.destination).await?,
                None => create::create_like(&self.dst, &self.destination, like, &self.transform).await?,
            };
            Ok(())
        })
    }

    fn enable_stream(&self) -> BoxFuture<'_, Result<TableDescription>> {
        Box::pin(create::enable_stream(&self.src, &self.source))
    }

    fn clock_skew(&self) -> BoxFuture<'_, Option<i64>> {
        Box::pin(super::skew::measure(&self.src.dynamodb, &self.source))
    }

    fn capture_shards<'a>(&'a self, stream_arn: &'a str, store: &'a dyn StateStore) -> BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            streams::capture(
                &SdkStreams(self.src.streams.clone(), Default::default()),
                stream_arn,
                store,
                &self.key,
            )
            .await
        })
    }

    fn write_budget<'a>(
        &'a self,
        configured: Option<u32>,
        planned: &'a TableSchema,
    ) -> BoxFuture<'a, Result<WriteBudget>> {
        Box::pin(capacity::write_budget(
            &self.dst,
            &self.destination,
            configured,
            Policy::DAEMON,
            Some(planned),
        ))
    }
}

/// The bulk loader the config names.
pub(super) enum Bulk {
    Scan(ScanTask<SdkScan>),
    Export(Box<ExportSnapshot>),
}

impl BulkLoader for Bulk {
    async fn load(self, life: &mut Lifecycle, capture: Capture) -> Result<Loaded> {
        match self {
            Bulk::Scan(t) => t.load(life, capture).await,
            Bulk::Export(t) => t.load(life, capture).await,
        }
    }
}

/// The change source the config names.
pub(super) enum Changes {
    Stream(StreamTask<SdkStreams>),
    Sqs(SqsTask),
}

impl ChangeSource for Changes {
    async fn run(self) -> Result<()> {
        match self {
            Changes::Stream(t) => ChangeSource::run(t).await,
            Changes::Sqs(t) => ChangeSource::run(t).await,
        }
    }
}
