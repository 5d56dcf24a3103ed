//! Creating the destination from the source's description: keys, attribute definitions, GSIs and
//! LSIs with their projections, billing mode and throughput, table class, SSE.
//!
//! Streams, TTL, PITR, deletion protection and tags are restored later (after the bulk load), so
//! replicated writes do not fire destination triggers and the load is not slowed.

use aws_sdk_dynamodb::types::TableDescription;

use super::schema::{Extras, TableSchema};
use crate::config::Clients;
use crate::error::{Error, Result};
use crate::transform::Spec;

/// CreateTable for `name` like `src`, through the one table model, its keys and index keys
/// named as `transform` renames them.
pub async fn create_like(
    dst: &Clients,
    name: &str,
    src: &TableDescription,
    transform: &Spec,
) -> Result<TableDescription> {
    let source = TableSchema::from_description(src, &Extras::default());
    crate::transform::check::schema(transform, &source)
        .create(dst, name)
        .await
}

/// Enables a NEW_AND_OLD_IMAGES stream on a source without one (only with `--enable-streams`).
pub async fn enable_stream(src: &Clients, name: &str) -> Result<TableDescription> {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let spec = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| Error::fatal(e.to_string()))?;
    src.dynamodb
        .update_table()
        .table_name(name)
        .stream_specification(spec)
        .send()
        .await
        .map_err(|e| Error::from_sdk("UpdateTable", e).context(format!("enabling the stream of {name:?}")))?;
    tracing::info!(
        table = name,
        "enabled a NEW_AND_OLD_IMAGES stream on the source (--enable-streams)"
    );
    super::wait_active(src, name).await
}
