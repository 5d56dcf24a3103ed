//! CreateTable from a schema file.

use aws_sdk_dynamodb::types::{self as ddb, TableDescription};

use super::*;
use crate::error::{Error, Result};

impl TableSchema {
    /// CreateTable for the destination: keys, indexes, billing, SSE, table class. The rest is
    /// restored after the bulk load.
    pub async fn create(&self, dst: &crate::config::Clients, name: &str) -> Result<TableDescription> {
        let b = |e: aws_sdk_dynamodb::error::BuildError| Error::fatal(format!("schema of {}: {e}", self.table_name));
        let keys = |ks: &[KeyElement]| -> Result<Vec<ddb::KeySchemaElement>> {
            ks.iter()
                .map(|k| {
                    ddb::KeySchemaElement::builder()
                        .attribute_name(&k.attribute_name)
                        .key_type(ddb::KeyType::from(k.key_type.as_str()))
                        .build()
                        .map_err(b)
                })
                .collect()
        };
        let tp = |t: &Throughput| {
            ddb::ProvisionedThroughput::builder()
                .read_capacity_units(t.read_capacity_units)
                .write_capacity_units(t.write_capacity_units)
                .build()
                .map_err(b)
        };
        let od = |o: &OnDemand| {
            ddb::OnDemandThroughput::builder()
                .set_max_read_request_units(o.max_read_request_units)
                .set_max_write_request_units(o.max_write_request_units)
                .build()
        };
        let proj = |p: &Projection| {
            ddb::Projection::builder()
                .projection_type(ddb::ProjectionType::from(p.projection_type.as_str()))
                .set_non_key_attributes((!p.non_key_attributes.is_empty()).then(|| p.non_key_attributes.clone()))
                .build()
        };
        let mut req = dst
            .dynamodb
            .create_table()
            .table_name(name)
            .set_key_schema(Some(keys(&self.key_schema)?))
            .billing_mode(ddb::BillingMode::from(self.billing_mode.as_str()))
            .set_on_demand_throughput(self.on_demand_throughput.as_ref().map(od));
        for a in &self.attribute_definitions {
            req = req.attribute_definitions(
                ddb::AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ddb::ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .map_err(b)?,
            );
        }
        if let Some(t) = &self.provisioned_throughput {
            req = req.provisioned_throughput(tp(t)?);
        }
        for g in &self.global_secondary_indexes {
            let mut gb = ddb::GlobalSecondaryIndex::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(keys(&g.key_schema)?))
                .projection(proj(&g.projection))
                .set_on_demand_throughput(g.on_demand_throughput.as_ref().map(od));
            if let Some(t) = &g.provisioned_throughput {
                gb = gb.provisioned_throughput(tp(t)?);
            }
            req = req.global_secondary_indexes(gb.build().map_err(b)?);
        }
        for l in &self.local_secondary_indexes {
            let lb = ddb::LocalSecondaryIndex::builder()
                .index_name(&l.index_name)
                .set_key_schema(Some(keys(&l.key_schema)?))
                .projection(proj(&l.projection));
            req = req.local_secondary_indexes(lb.build().map_err(b)?);
        }
        if let Some(s) = &self.sse_specification {
            req = req.sse_specification(
                ddb::SseSpecification::builder()
                    .enabled(s.enabled)
                    .set_sse_type(s.sse_type.as_deref().map(ddb::SseType::from))
                    .set_kms_master_key_id(s.kms_master_key_id.clone())
                    .build(),
            );
        }
        if self.table_class != "STANDARD" {
            req = req.table_class(ddb::TableClass::from(self.table_class.as_str()));
        }
        req.send()
            .await
            .map_err(|e| Error::from_sdk("CreateTable", e).context(format!("creating destination table {name:?}")))?;
        crate::discover::wait_active(dst, name).await
    }
}
