//! One model of a table's description: keys, attribute definitions, billing and throughput, GSIs,
//! LSIs, SSE, table class, stream, TTL, PITR, deletion protection and tags, in CreateTable's field
//! names (plus `TimeToLiveSpecification` and `PointInTimeRecoverySpecification`, in the names of
//! their own update calls) so a person can read and edit it as a plan's schema file.
//!
//! It is built once ([`from`]: from a source's `TableDescription`; or read from a plan's schema
//! file, [`crate::plan::schema`]) and every request that creates a table is built from it by one set
//! of builders ([`build`]): CreateTable and ImportTable's `TableCreationParameters`. The table is
//! created with keys, indexes, billing, SSE and table class; stream, TTL, PITR, deletion protection
//! and tags are restored after the bulk load.

mod build;
mod from;

use serde::{Deserialize, Serialize};

/// Every struct of the schema file: CreateTable's field names, and an unknown field is an error
/// (a misspelt setting in a plan file must not be silently dropped).
macro_rules! schema_structs {
    ($($(#[$doc:meta])* pub struct $name:ident $body:tt)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        pub struct $name $body
    )*};
}

schema_structs! {
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

    pub struct AttributeDefinition {
        pub attribute_name: String,
        /// S, N or B.
        pub attribute_type: String,
    }

    pub struct KeyElement {
        pub attribute_name: String,
        /// HASH or RANGE.
        pub key_type: String,
    }

    pub struct Throughput {
        pub read_capacity_units: i64,
        pub write_capacity_units: i64,
    }

    pub struct OnDemand {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_read_request_units: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_write_request_units: Option<i64>,
    }

    pub struct Projection {
        /// ALL, KEYS_ONLY or INCLUDE.
        pub projection_type: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub non_key_attributes: Vec<String>,
    }

    pub struct GlobalIndex {
        pub index_name: String,
        pub key_schema: Vec<KeyElement>,
        pub projection: Projection,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioned_throughput: Option<Throughput>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub on_demand_throughput: Option<OnDemand>,
    }

    pub struct LocalIndex {
        pub index_name: String,
        pub key_schema: Vec<KeyElement>,
        pub projection: Projection,
    }

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

    pub struct Stream {
        pub stream_enabled: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stream_view_type: Option<String>,
    }

    pub struct Tag {
        pub key: String,
        pub value: String,
    }

    pub struct Ttl {
        pub enabled: bool,
        pub attribute_name: String,
    }

    pub struct Pitr {
        pub point_in_time_recovery_enabled: bool,
    }
}

fn standard() -> String {
    "STANDARD".into()
}

/// What discover reads besides DescribeTable.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub ttl_attribute: Option<String>,
    pub pitr: bool,
    pub tags: Vec<(String, String)>,
}

impl TableSchema {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a schema always serializes") + "\n"
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
}
