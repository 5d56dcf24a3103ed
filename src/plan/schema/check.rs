//! What DynamoDB would refuse in a schema file, found before anything is created.

use super::*;

impl TableSchema {
    /// What DynamoDB would refuse, found before anything is created.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.attribute_definitions {
            one_of(&mut out, "AttributeType", &a.attribute_type, &["S", "N", "B"]);
        }
        self.key_problems(&mut out);
        let projections = self
            .global_secondary_indexes
            .iter()
            .map(|g| &g.projection)
            .chain(self.local_secondary_indexes.iter().map(|l| &l.projection));
        for p in projections {
            one_of(
                &mut out,
                "ProjectionType",
                &p.projection_type,
                &["ALL", "KEYS_ONLY", "INCLUDE"],
            );
        }
        self.billing_problems(&mut out);
        self.stream_problems(&mut out);
        out
    }

    /// The table's and indexes' key schemas against the attribute definitions, and definitions
    /// no key uses.
    fn key_problems(&self, out: &mut Vec<String>) {
        let defined: Vec<&str> = self
            .attribute_definitions
            .iter()
            .map(|a| a.attribute_name.as_str())
            .collect();
        let mut used = Vec::new();
        let mut keys = |what: &str, ks: &[KeyElement], out: &mut Vec<String>| {
            key_schema_problems(what, ks, &defined, out);
            used.extend(ks.iter().map(|k| k.attribute_name.clone()));
        };
        keys("the table", &self.key_schema, out);
        for g in &self.global_secondary_indexes {
            keys(&format!("index {:?}", g.index_name), &g.key_schema, out);
        }
        for l in &self.local_secondary_indexes {
            keys(&format!("index {:?}", l.index_name), &l.key_schema, out);
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
    }

    /// Billing mode, provisioned throughput and table class.
    fn billing_problems(&self, out: &mut Vec<String>) {
        one_of(
            out,
            "BillingMode",
            &self.billing_mode,
            &["PROVISIONED", "PAY_PER_REQUEST"],
        );
        let provisioned = self.billing_mode == "PROVISIONED";
        if provisioned && self.provisioned_throughput.is_none() {
            out.push("BillingMode PROVISIONED needs ProvisionedThroughput".into());
        }
        if !provisioned && self.provisioned_throughput.is_some() {
            out.push("ProvisionedThroughput is only allowed with BillingMode PROVISIONED".into());
        }
        one_of(
            out,
            "TableClass",
            &self.table_class,
            &["STANDARD", "STANDARD_INFREQUENT_ACCESS"],
        );
    }

    fn stream_problems(&self, out: &mut Vec<String>) {
        if let Some(v) = self
            .stream_specification
            .as_ref()
            .and_then(|s| s.stream_view_type.as_ref())
        {
            one_of(
                out,
                "StreamViewType",
                v,
                &["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"],
            );
        }
        if self
            .stream_specification
            .as_ref()
            .is_some_and(|s| s.stream_enabled && s.stream_view_type.is_none())
        {
            out.push("StreamSpecification: an enabled stream needs StreamViewType".into());
        }
    }
}

/// One key schema: its shape, and that each key attribute is defined.
fn key_schema_problems(what: &str, ks: &[KeyElement], defined: &[&str], out: &mut Vec<String>) {
    if ks.is_empty() || ks.len() > 2 || ks[0].key_type != "HASH" || ks.get(1).is_some_and(|k| k.key_type != "RANGE") {
        out.push(format!(
            "{what}: KeySchema must be one HASH key, then at most one RANGE key"
        ));
    }
    for k in ks {
        if !defined.contains(&k.attribute_name.as_str()) {
            out.push(format!(
                "{what}: key attribute {:?} is not in AttributeDefinitions",
                k.attribute_name
            ));
        }
    }
}

fn one_of(out: &mut Vec<String>, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        out.push(format!("{field} {value:?} must be one of {}", allowed.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

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
        assert!(
            p.contains("attribute \"g\" is defined but no key or index uses it"),
            "{p}"
        );
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

    #[test]
    fn problems_point_at_their_line() {
        let mut s = sample();
        s.global_secondary_indexes[0].key_schema[0].attribute_name = "nope".into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Orders.json");
        std::fs::write(&path, s.to_json()).unwrap();
        let errs = TableSchema::load(&path).unwrap_err();
        let line = s.to_json().lines().position(|l| l.contains("\"byG\"")).unwrap() + 1;
        let want = format!("{}:{line}:", path.display());
        assert!(errs[0].starts_with(&want), "{errs:?} should start with {want}");
    }
}
