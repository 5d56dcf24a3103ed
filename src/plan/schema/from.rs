//! A source table's description (and what discover read besides) as a plan schema.

use aws_sdk_dynamodb::types::{self as ddb, TableDescription};

use super::*;

impl TableSchema {
    /// The plan's view of a source table.
    pub fn from_description(d: &TableDescription, extras: &Extras) -> TableSchema {
        let billing = d
            .billing_mode_summary
            .as_ref()
            .and_then(|b| b.billing_mode.as_ref())
            .map_or("PROVISIONED".to_string(), |b| b.as_str().to_string());
        let provisioned = billing == "PROVISIONED";
        let tp = |p: Option<&ddb::ProvisionedThroughputDescription>| {
            provisioned.then(|| Throughput {
                read_capacity_units: p.and_then(|p| p.read_capacity_units).unwrap_or(1).max(1),
                write_capacity_units: p.and_then(|p| p.write_capacity_units).unwrap_or(1).max(1),
            })
        };
        let od = |o: Option<&ddb::OnDemandThroughput>| {
            let o = o?;
            let set = |v: Option<i64>| v.filter(|x| *x > 0);
            (set(o.max_read_request_units).is_some() || set(o.max_write_request_units).is_some()).then(|| OnDemand {
                max_read_request_units: set(o.max_read_request_units),
                max_write_request_units: set(o.max_write_request_units),
            })
        };
        let keys = |ks: &[ddb::KeySchemaElement]| {
            ks.iter()
                .map(|k| KeyElement {
                    attribute_name: k.attribute_name.clone(),
                    key_type: k.key_type.as_str().to_string(),
                })
                .collect()
        };
        let proj = |p: Option<&ddb::Projection>| Projection {
            projection_type: p
                .and_then(|p| p.projection_type.as_ref())
                .map_or("ALL".to_string(), |t| t.as_str().to_string()),
            non_key_attributes: p.map(|p| p.non_key_attributes().to_vec()).unwrap_or_default(),
        };
        TableSchema {
            table_name: d.table_name.clone().unwrap_or_default(),
            attribute_definitions: d
                .attribute_definitions()
                .iter()
                .map(|a| AttributeDefinition {
                    attribute_name: a.attribute_name.clone(),
                    attribute_type: a.attribute_type.as_str().to_string(),
                })
                .collect(),
            key_schema: keys(d.key_schema()),
            billing_mode: billing,
            provisioned_throughput: tp(d.provisioned_throughput.as_ref()),
            on_demand_throughput: od(d.on_demand_throughput.as_ref()),
            global_secondary_indexes: d
                .global_secondary_indexes()
                .iter()
                .map(|g| GlobalIndex {
                    index_name: g.index_name.clone().unwrap_or_default(),
                    key_schema: keys(g.key_schema()),
                    projection: proj(g.projection.as_ref()),
                    provisioned_throughput: tp(g.provisioned_throughput.as_ref()),
                    on_demand_throughput: od(g.on_demand_throughput.as_ref()),
                })
                .collect(),
            local_secondary_indexes: d
                .local_secondary_indexes()
                .iter()
                .map(|l| LocalIndex {
                    index_name: l.index_name.clone().unwrap_or_default(),
                    key_schema: keys(l.key_schema()),
                    projection: proj(l.projection.as_ref()),
                })
                .collect(),
            // The source's KMS key belongs to the source account: the plan asks for KMS with the
            // destination's AWS-managed key unless a person names one.
            sse_specification: d
                .sse_description
                .as_ref()
                .filter(|s| s.status == Some(ddb::SseStatus::Enabled) && s.sse_type == Some(ddb::SseType::Kms))
                .map(|_| Sse {
                    enabled: true,
                    sse_type: Some("KMS".into()),
                    kms_master_key_id: None,
                }),
            table_class: d
                .table_class_summary
                .as_ref()
                .and_then(|c| c.table_class.as_ref())
                .map_or_else(standard, |c| c.as_str().to_string()),
            stream_specification: d.stream_specification.as_ref().map(|s| Stream {
                stream_enabled: s.stream_enabled,
                stream_view_type: s
                    .stream_view_type
                    .as_ref()
                    .filter(|_| s.stream_enabled)
                    .map(|v| v.as_str().to_string()),
            }),
            deletion_protection_enabled: d.deletion_protection_enabled.unwrap_or(false),
            tags: extras
                .tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            time_to_live_specification: extras.ttl_attribute.as_ref().map(|a| Ttl {
                enabled: true,
                attribute_name: a.clone(),
            }),
            point_in_time_recovery_specification: Some(Pitr {
                point_in_time_recovery_enabled: extras.pitr,
            }),
        }
    }
}
