//! The table model built from a source's `TableDescription` (and what discover read besides).

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
            provisioned_throughput: throughput(provisioned, d.provisioned_throughput.as_ref()),
            on_demand_throughput: on_demand(d.on_demand_throughput.as_ref()),
            global_secondary_indexes: d
                .global_secondary_indexes()
                .iter()
                .map(|g| GlobalIndex {
                    index_name: g.index_name.clone().unwrap_or_default(),
                    key_schema: keys(g.key_schema()),
                    projection: projection(g.projection.as_ref()),
                    provisioned_throughput: throughput(provisioned, g.provisioned_throughput.as_ref()),
                    on_demand_throughput: on_demand(g.on_demand_throughput.as_ref()),
                })
                .collect(),
            local_secondary_indexes: d
                .local_secondary_indexes()
                .iter()
                .map(|l| LocalIndex {
                    index_name: l.index_name.clone().unwrap_or_default(),
                    key_schema: keys(l.key_schema()),
                    projection: projection(l.projection.as_ref()),
                })
                .collect(),
            sse_specification: sse(d),
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
            ..TableSchema::restored_later(extras)
        }
    }

    /// What discover reads besides DescribeTable, with every other field empty.
    fn restored_later(extras: &Extras) -> TableSchema {
        TableSchema {
            table_name: String::new(),
            attribute_definitions: Vec::new(),
            key_schema: Vec::new(),
            billing_mode: String::new(),
            provisioned_throughput: None,
            on_demand_throughput: None,
            global_secondary_indexes: Vec::new(),
            local_secondary_indexes: Vec::new(),
            sse_specification: None,
            table_class: standard(),
            stream_specification: None,
            deletion_protection_enabled: false,
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

/// Provisioned throughput (at least 1 each way) on a provisioned table; none on demand.
fn throughput(provisioned: bool, p: Option<&ddb::ProvisionedThroughputDescription>) -> Option<Throughput> {
    provisioned.then(|| Throughput {
        read_capacity_units: p.and_then(|p| p.read_capacity_units).unwrap_or(1).max(1),
        write_capacity_units: p.and_then(|p| p.write_capacity_units).unwrap_or(1).max(1),
    })
}

/// On-demand maximums, if any is set (DynamoDB reports unset ones as -1).
fn on_demand(o: Option<&ddb::OnDemandThroughput>) -> Option<OnDemand> {
    let o = o?;
    let set = |v: Option<i64>| v.filter(|x| *x > 0);
    (set(o.max_read_request_units).is_some() || set(o.max_write_request_units).is_some()).then(|| OnDemand {
        max_read_request_units: set(o.max_read_request_units),
        max_write_request_units: set(o.max_write_request_units),
    })
}

fn keys(ks: &[ddb::KeySchemaElement]) -> Vec<KeyElement> {
    ks.iter()
        .map(|k| KeyElement {
            attribute_name: k.attribute_name.clone(),
            key_type: k.key_type.as_str().to_string(),
        })
        .collect()
}

fn projection(p: Option<&ddb::Projection>) -> Projection {
    Projection {
        projection_type: p
            .and_then(|p| p.projection_type.as_ref())
            .map_or("ALL".to_string(), |t| t.as_str().to_string()),
        non_key_attributes: p.map(|p| p.non_key_attributes().to_vec()).unwrap_or_default(),
    }
}

/// The source's KMS key belongs to the source account: the model asks for KMS with the
/// destination's AWS-managed key unless a person names one.
fn sse(d: &TableDescription) -> Option<Sse> {
    d.sse_description
        .as_ref()
        .filter(|s| s.status == Some(ddb::SseStatus::Enabled) && s.sse_type == Some(ddb::SseType::Kms))
        .map(|_| Sse {
            enabled: true,
            sse_type: Some("KMS".into()),
            kms_master_key_id: None,
        })
}
