//! `plan/schemas/<table>.json`: everything needed to rebuild one table, in CreateTable's field
//! names (plus `TimeToLiveSpecification` and `PointInTimeRecoverySpecification`, in the names of
//! their own update calls) so a person can read and edit it.
//!
//! `TableName` is the source table; the destination's name comes from `tables.csv`. The table is
//! created with keys, indexes, billing, SSE and table class; stream, TTL, PITR, deletion protection
//! and tags are restored after the bulk load ([`super::restore`]).

use std::path::Path;

use aws_sdk_dynamodb::types::{self as ddb, TableDescription};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TableSchema {
    pub table_name: String,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    /// PROVISIONED or PAY_PER_REQUEST.
    pub billing_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<Throughput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_throughput: Option<OnDemand>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<GlobalIndex>,
    #[serde(default)]
    pub local_secondary_indexes: Vec<LocalIndex>,
    #[serde(default, rename = "SSESpecification", skip_serializing_if = "Option::is_none")]
    pub sse_specification: Option<Sse>,
    /// STANDARD or STANDARD_INFREQUENT_ACCESS.
    #[serde(default = "standard")]
    pub table_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_specification: Option<Stream>,
    #[serde(default)]
    pub deletion_protection_enabled: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_specification: Option<Ttl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery_specification: Option<Pitr>,
}

fn standard() -> String {
    "STANDARD".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttributeDefinition {
    pub attribute_name: String,
    /// S, N or B.
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct KeyElement {
    pub attribute_name: String,
    /// HASH or RANGE.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Throughput {
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OnDemand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_read_request_units: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_write_request_units: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Projection {
    /// ALL, KEYS_ONLY or INCLUDE.
    pub projection_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GlobalIndex {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: Projection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<Throughput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_throughput: Option<OnDemand>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LocalIndex {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sse {
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    /// KMS (AES256 is the default when SSE is off).
    #[serde(rename = "SSEType", default, skip_serializing_if = "Option::is_none")]
    pub sse_type: Option<String>,
    /// A key of the destination account; unset means the AWS-managed key.
    #[serde(rename = "KMSMasterKeyId", default, skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Stream {
    pub stream_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Ttl {
    pub enabled: bool,
    pub attribute_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Pitr {
    pub point_in_time_recovery_enabled: bool,
}

/// What discover reads besides DescribeTable.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub ttl_attribute: Option<String>,
    pub pitr: bool,
    pub tags: Vec<(String, String)>,
}

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

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a schema always serializes") + "\n"
    }

    /// Reads and checks one schema file; every problem names the file (and line and column for
    /// JSON errors).
    pub fn load(path: &Path) -> std::result::Result<TableSchema, Vec<String>> {
        let file = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{file}: cannot read: {e}")])?;
        let schema: TableSchema = serde_json::from_str(&text)
            .map_err(|e| vec![format!("{file}:{}:{}: invalid schema: {e}", e.line(), e.column())])?;
        let problems = schema.problems();
        if problems.is_empty() {
            Ok(schema)
        } else {
            Err(problems.into_iter().map(|p| format!("{file}: {p}")).collect())
        }
    }

    /// What DynamoDB would refuse, found before anything is created.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let defined: Vec<&str> = self
            .attribute_definitions
            .iter()
            .map(|a| a.attribute_name.as_str())
            .collect();
        for a in &self.attribute_definitions {
            one_of(&mut out, "AttributeType", &a.attribute_type, &["S", "N", "B"]);
        }
        let mut used = Vec::new();
        let mut keys = |what: &str, ks: &[KeyElement], out: &mut Vec<String>| {
            if ks.is_empty() || ks.len() > 2 || ks[0].key_type != "HASH" || ks.get(1).is_some_and(|k| k.key_type != "RANGE")
            {
                out.push(format!("{what}: KeySchema must be one HASH key, then at most one RANGE key"));
            }
            for k in ks {
                if !defined.contains(&k.attribute_name.as_str()) {
                    out.push(format!(
                        "{what}: key attribute {:?} is not in AttributeDefinitions",
                        k.attribute_name
                    ));
                }
                used.push(k.attribute_name.clone());
            }
        };
        keys("the table", &self.key_schema, &mut out);
        for g in &self.global_secondary_indexes {
            keys(&format!("index {:?}", g.index_name), &g.key_schema, &mut out);
        }
        for l in &self.local_secondary_indexes {
            keys(&format!("index {:?}", l.index_name), &l.key_schema, &mut out);
            if l.key_schema.first() != self.key_schema.first() {
                out.push(format!(
                    "index {:?}: a local index must share the table's HASH key",
                    l.index_name
                ));
            }
        }
        for a in &defined {
            if !used.iter().any(|u| u == a) {
                out.push(format!(
                    "attribute {a:?} is defined but no key or index uses it (DynamoDB refuses that)"
                ));
            }
        }
        let projections = self
            .global_secondary_indexes
            .iter()
            .map(|g| &g.projection)
            .chain(self.local_secondary_indexes.iter().map(|l| &l.projection));
        for p in projections {
            one_of(&mut out, "ProjectionType", &p.projection_type, &["ALL", "KEYS_ONLY", "INCLUDE"]);
        }
        one_of(&mut out, "BillingMode", &self.billing_mode, &["PROVISIONED", "PAY_PER_REQUEST"]);
        let provisioned = self.billing_mode == "PROVISIONED";
        if provisioned && self.provisioned_throughput.is_none() {
            out.push("BillingMode PROVISIONED needs ProvisionedThroughput".into());
        }
        if !provisioned && self.provisioned_throughput.is_some() {
            out.push("ProvisionedThroughput is only allowed with BillingMode PROVISIONED".into());
        }
        one_of(
            &mut out,
            "TableClass",
            &self.table_class,
            &["STANDARD", "STANDARD_INFREQUENT_ACCESS"],
        );
        if let Some(v) = self.stream_specification.as_ref().and_then(|s| s.stream_view_type.as_ref()) {
            one_of(
                &mut out,
                "StreamViewType",
                v,
                &["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"],
            );
        }
        if self.stream_specification.as_ref().is_some_and(|s| s.stream_enabled && s.stream_view_type.is_none()) {
            out.push("StreamSpecification: an enabled stream needs StreamViewType".into());
        }
        out
    }

    pub fn stream_view(&self) -> Option<&str> {
        self.stream_specification
            .as_ref()
            .filter(|s| s.stream_enabled)
            .and_then(|s| s.stream_view_type.as_deref())
    }

    pub fn ttl_attribute(&self) -> Option<&str> {
        self.time_to_live_specification
            .as_ref()
            .filter(|t| t.enabled)
            .map(|t| t.attribute_name.as_str())
    }

    pub fn pitr(&self) -> bool {
        self.point_in_time_recovery_specification
            .as_ref()
            .is_some_and(|p| p.point_in_time_recovery_enabled)
    }

    /// "pk (S, HASH), sk (N, RANGE)", comparable with [`crate::discover::key_signature`].
    pub fn key_signature(&self) -> String {
        self.key_schema
            .iter()
            .map(|k| {
                let ty = self
                    .attribute_definitions
                    .iter()
                    .find(|a| a.attribute_name == k.attribute_name)
                    .map_or("?", |a| a.attribute_type.as_str());
                format!("{} ({ty}, {})", k.attribute_name, k.key_type)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

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

fn one_of(out: &mut Vec<String>, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        out.push(format!("{field} {value:?} must be one of {}", allowed.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TableSchema {
        serde_json::from_str(
            r#"{"TableName":"Orders","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},
            {"AttributeName":"g","AttributeType":"N"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],
            "BillingMode":"PAY_PER_REQUEST","GlobalSecondaryIndexes":[{"IndexName":"byG",
            "KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_valid_schema_has_no_problems_and_round_trips() {
        let s = sample();
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(serde_json::from_str::<TableSchema>(&s.to_json()).unwrap(), s);
        assert_eq!(s.table_class, "STANDARD");
    }

    #[test]
    fn an_index_on_an_undefined_attribute_is_named() {
        let mut s = sample();
        s.global_secondary_indexes[0].key_schema[0].attribute_name = "nope".into();
        let p = s.problems().join("\n");
        assert!(
            p.contains("index \"byG\": key attribute \"nope\" is not in AttributeDefinitions"),
            "{p}"
        );
        assert!(p.contains("attribute \"g\" is defined but no key or index uses it"), "{p}");
    }

    #[test]
    fn billing_and_enums_are_checked() {
        let mut s = sample();
        s.billing_mode = "PROVISIONED".into();
        s.table_class = "COLD".into();
        let p = s.problems().join("\n");
        assert!(p.contains("PROVISIONED needs ProvisionedThroughput"), "{p}");
        assert!(p.contains("TableClass \"COLD\" must be one of"), "{p}");
    }
}
