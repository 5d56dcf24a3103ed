//! Creating the destination from the source's description: keys, attribute definitions, GSIs and
//! LSIs with their projections, billing mode and throughput, table class, SSE.
//!
//! Streams, TTL, PITR, deletion protection and tags are restored later (after the bulk load), so
//! replicated writes do not fire destination triggers and the load is not slowed.

use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, LocalSecondaryIndex, OnDemandThroughput, ProvisionedThroughput,
    SseSpecification, SseStatus, SseType, TableClass, TableDescription,
};

use crate::config::Clients;
use crate::error::{Error, Result};

pub async fn create_like(dst: &Clients, name: &str, src: &TableDescription) -> Result<TableDescription> {
    let provisioned = billing_mode(src) == BillingMode::Provisioned;
    let mut req = dst
        .dynamodb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(src.attribute_definitions().to_vec()))
        .set_key_schema(Some(src.key_schema().to_vec()))
        .billing_mode(billing_mode(src));
    if provisioned {
        req = req.provisioned_throughput(throughput(
            src.provisioned_throughput.as_ref().and_then(|p| p.read_capacity_units),
            src.provisioned_throughput.as_ref().and_then(|p| p.write_capacity_units),
        )?);
    } else if let Some(od) = on_demand(src.on_demand_throughput.as_ref()) {
        req = req.on_demand_throughput(od);
    }
    for g in src.global_secondary_indexes() {
        let mut b = GlobalSecondaryIndex::builder()
            .set_index_name(g.index_name.clone())
            .set_key_schema(g.key_schema.clone())
            .set_projection(g.projection.clone());
        if provisioned {
            let p = g.provisioned_throughput.as_ref();
            b = b.provisioned_throughput(throughput(
                p.and_then(|p| p.read_capacity_units),
                p.and_then(|p| p.write_capacity_units),
            )?);
        } else if let Some(od) = on_demand(g.on_demand_throughput.as_ref()) {
            b = b.on_demand_throughput(od);
        }
        req = req.global_secondary_indexes(b.build().map_err(|e| Error::fatal(e.to_string()))?);
    }
    for l in src.local_secondary_indexes() {
        let b = LocalSecondaryIndex::builder()
            .set_index_name(l.index_name.clone())
            .set_key_schema(l.key_schema.clone())
            .set_projection(l.projection.clone());
        req = req.local_secondary_indexes(b.build().map_err(|e| Error::fatal(e.to_string()))?);
    }
    if let Some(class) = src.table_class_summary.as_ref().and_then(|c| c.table_class.clone())
        && class != TableClass::Standard
    {
        req = req.table_class(class);
    }
    if let Some(sse) = &src.sse_description
        && sse.status == Some(SseStatus::Enabled)
        && sse.sse_type == Some(SseType::Kms)
    {
        // The source's KMS key belongs to the source account; the destination uses its own
        // AWS-managed key unless the plan names one.
        req = req.sse_specification(SseSpecification::builder().enabled(true).sse_type(SseType::Kms).build());
    }
    req.send()
        .await
        .map_err(|e| Error::from_sdk("CreateTable", e).context(format!("creating destination table {name:?}")))?;
    super::wait_active(dst, name).await
}

fn billing_mode(src: &TableDescription) -> BillingMode {
    src.billing_mode_summary
        .as_ref()
        .and_then(|b| b.billing_mode.clone())
        .unwrap_or(BillingMode::Provisioned)
}

fn throughput(read: Option<i64>, write: Option<i64>) -> Result<ProvisionedThroughput> {
    ProvisionedThroughput::builder()
        .read_capacity_units(read.filter(|r| *r > 0).unwrap_or(1))
        .write_capacity_units(write.filter(|w| *w > 0).unwrap_or(1))
        .build()
        .map_err(|e| Error::fatal(e.to_string()))
}

fn on_demand(od: Option<&OnDemandThroughput>) -> Option<OnDemandThroughput> {
    let od = od?;
    let set = |v: Option<i64>| v.filter(|x| *x > 0);
    if set(od.max_read_request_units).is_none() && set(od.max_write_request_units).is_none() {
        return None;
    }
    Some(
        OnDemandThroughput::builder()
            .set_max_read_request_units(set(od.max_read_request_units))
            .set_max_write_request_units(set(od.max_write_request_units))
            .build(),
    )
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
