//! The one set of builders from the table model to the SDK's request types: CreateTable (a plan's
//! schema, or a destination created like its source) and ImportTable's `TableCreationParameters`.

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{self as ddb, TableCreationParameters, TableDescription};

use super::*;
use crate::config::Clients;
use crate::error::{Error, Result};

impl TableSchema {
    /// CreateTable for the destination: keys, indexes, billing, SSE, table class. The rest is
    /// restored after the bulk load.
    pub async fn create(&self, dst: &Clients, name: &str) -> Result<TableDescription> {
        let mut req = dst
            .dynamodb
            .create_table()
            .table_name(name)
            .set_key_schema(Some(self.keys(&self.key_schema)?))
            .billing_mode(ddb::BillingMode::from(self.billing_mode.as_str()))
            .set_on_demand_throughput(self.on_demand_throughput.as_ref().map(on_demand_of))
            .set_attribute_definitions(Some(self.attributes()?))
            .set_provisioned_throughput(self.throughput(self.provisioned_throughput.as_ref())?)
            .set_global_secondary_indexes(self.global_indexes(true)?)
            .set_sse_specification(self.sse());
        for l in &self.local_secondary_indexes {
            let lb = ddb::LocalSecondaryIndex::builder()
                .index_name(&l.index_name)
                .set_key_schema(Some(self.keys(&l.key_schema)?))
                .projection(projection(&l.projection));
            req = req.local_secondary_indexes(lb.build().map_err(|e| self.bad(e))?);
        }
        if self.table_class != "STANDARD" {
            req = req.table_class(ddb::TableClass::from(self.table_class.as_str()));
        }
        req.send()
            .await
            .map_err(|e| Error::from_sdk("CreateTable", e).context(format!("creating destination table {name:?}")))?;
        crate::discover::wait_active(dst, name).await
    }

    /// ImportTable's table for `dest`: keys, billing and throughput, GSIs, SSE. ImportTable takes no
    /// LSIs nor table class, and ferry has never passed it on-demand maximums.
    pub fn creation_parameters(&self, dest: &str) -> Result<TableCreationParameters> {
        TableCreationParameters::builder()
            .table_name(dest)
            .set_attribute_definitions(Some(self.attributes()?))
            .set_key_schema(Some(self.keys(&self.key_schema)?))
            .billing_mode(ddb::BillingMode::from(self.billing_mode.as_str()))
            .set_provisioned_throughput(self.throughput(self.provisioned_throughput.as_ref())?)
            .set_global_secondary_indexes(self.global_indexes(false)?)
            .set_sse_specification(self.sse())
            .build()
            .map_err(|e| self.bad(e))
    }

    fn bad(&self, e: BuildError) -> Error {
        Error::fatal(format!("schema of {}: {e}", self.table_name))
    }

    fn keys(&self, ks: &[KeyElement]) -> Result<Vec<ddb::KeySchemaElement>> {
        ks.iter()
            .map(|k| {
                ddb::KeySchemaElement::builder()
                    .attribute_name(&k.attribute_name)
                    .key_type(ddb::KeyType::from(k.key_type.as_str()))
                    .build()
                    .map_err(|e| self.bad(e))
            })
            .collect()
    }

    fn attributes(&self) -> Result<Vec<ddb::AttributeDefinition>> {
        self.attribute_definitions
            .iter()
            .map(|a| {
                ddb::AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ddb::ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .map_err(|e| self.bad(e))
            })
            .collect()
    }

    fn throughput(&self, t: Option<&Throughput>) -> Result<Option<ddb::ProvisionedThroughput>> {
        t.map(|t| {
            ddb::ProvisionedThroughput::builder()
                .read_capacity_units(t.read_capacity_units)
                .write_capacity_units(t.write_capacity_units)
                .build()
                .map_err(|e| self.bad(e))
        })
        .transpose()
    }

    /// The GSIs, `None` if there are none (an empty list is refused); with their on-demand
    /// maximums if `on_demand`.
    fn global_indexes(&self, on_demand: bool) -> Result<Option<Vec<ddb::GlobalSecondaryIndex>>> {
        let gsis = self
            .global_secondary_indexes
            .iter()
            .map(|g| {
                ddb::GlobalSecondaryIndex::builder()
                    .index_name(&g.index_name)
                    .set_key_schema(Some(self.keys(&g.key_schema)?))
                    .projection(projection(&g.projection))
                    .set_on_demand_throughput(g.on_demand_throughput.as_ref().filter(|_| on_demand).map(on_demand_of))
                    .set_provisioned_throughput(self.throughput(g.provisioned_throughput.as_ref())?)
                    .build()
                    .map_err(|e| self.bad(e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((!gsis.is_empty()).then_some(gsis))
    }

    fn sse(&self) -> Option<ddb::SseSpecification> {
        self.sse_specification.as_ref().map(|s| {
            ddb::SseSpecification::builder()
                .enabled(s.enabled)
                .set_sse_type(s.sse_type.as_deref().map(ddb::SseType::from))
                .set_kms_master_key_id(s.kms_master_key_id.clone())
                .build()
        })
    }
}

fn on_demand_of(o: &OnDemand) -> ddb::OnDemandThroughput {
    ddb::OnDemandThroughput::builder()
        .set_max_read_request_units(o.max_read_request_units)
        .set_max_write_request_units(o.max_write_request_units)
        .build()
}

fn projection(p: &Projection) -> ddb::Projection {
    ddb::Projection::builder()
        .projection_type(ddb::ProjectionType::from(p.projection_type.as_str()))
        .set_non_key_attributes((!p.non_key_attributes.is_empty()).then(|| p.non_key_attributes.clone()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> TableSchema {
        let text = r#"{"TableName": "T", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "OnDemandThroughput": {"MaxReadRequestUnits": 10},
            "SSESpecification": {"Enabled": true, "SSEType": "KMS"}}"#;
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn import_parameters_carry_keys_billing_gsis_and_sse_without_on_demand_maximums() {
        let mut s = schema();
        assert!(
            s.creation_parameters("D").unwrap().global_secondary_indexes.is_none(),
            "none, not empty"
        );
        s.global_secondary_indexes.push(GlobalIndex {
            index_name: "g".into(),
            key_schema: s.key_schema.clone(),
            projection: Projection {
                projection_type: "INCLUDE".into(),
                non_key_attributes: vec!["a".into()],
            },
            provisioned_throughput: None,
            on_demand_throughput: Some(OnDemand {
                max_read_request_units: Some(5),
                max_write_request_units: None,
            }),
        });
        let p = s.creation_parameters("D").unwrap();
        assert_eq!(p.table_name(), "D");
        assert_eq!(p.billing_mode(), Some(&ddb::BillingMode::PayPerRequest));
        assert_eq!(p.key_schema()[0].key_type(), &ddb::KeyType::Hash);
        assert_eq!(
            p.attribute_definitions()[0].attribute_type(),
            &ddb::ScalarAttributeType::S
        );
        let g = &p.global_secondary_indexes()[0];
        assert_eq!(g.projection().unwrap().non_key_attributes(), ["a"]);
        assert!(g.on_demand_throughput().is_none());
        assert_eq!(p.sse_specification().unwrap().sse_type(), Some(&ddb::SseType::Kms));
        // CreateTable keeps them.
        let gsis = s.global_indexes(true).unwrap().unwrap();
        assert_eq!(
            gsis[0].on_demand_throughput().unwrap().max_read_request_units(),
            Some(5)
        );
    }
}
