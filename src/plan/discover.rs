//! `ferry discover`: reads every source table (read-only) and writes a plan folder for a person
//! to review and edit.

use std::path::Path;

use super::lambda_map::{self, Mapping};
use super::schema::{Extras, TableSchema};
use super::tables_csv::{self, TableInfo};
use super::toml_out;
use crate::config::{Clients, Config, Side, build_clients};
use crate::discover::{self, settings};
use crate::error::{Error, Result};
use crate::retry::Policy;

/// What discover wrote, for its summary line.
#[derive(Debug)]
pub struct Discovered {
    pub tables: usize,
    pub mappings: usize,
    /// For each table the config transforms: its steps, the destination it makes, and its
    /// problems on the discovered table.
    pub transforms: Vec<String>,
}

/// Writes `out/` from the source side. An existing plan is kept unless `force`: it may hold a
/// person's edits.
pub async fn run(config: &Config, out: &Path, force: bool) -> Result<Discovered> {
    let tables_path = out.join("tables.csv");
    if tables_path.exists() && !force {
        return Err(Error::fatal(format!(
            "{} already exists and may hold your edits; pass --force to overwrite it",
            tables_path.display()
        )));
    }
    let src = build_clients("source", &config.source).await?;
    let names = settings::list_tables(&src).await?;
    let mut infos = Vec::new();
    let mut schemas = Vec::new();
    let mut mappings = Vec::new();
    let mut lambda = Lambda::Unknown(lambda_on_dynamodb_endpoint(&config.source));
    let mut transforms = Vec::new();
    for name in &names {
        let (info, schema, maps) = table(&src, name, &mut lambda).await?;
        infos.push(info);
        // The schema file is the destination's: in the shape the config's transform gives it.
        let (schema, lines) = transformed(config, schema);
        transforms.extend(lines);
        schemas.push(schema);
        mappings.extend(maps);
    }
    let io = |p: &Path, e: std::io::Error| Error::fatal(format!("writing {}: {e}", p.display()));
    let schema_dir = out.join("schemas");
    std::fs::create_dir_all(&schema_dir).map_err(|e| io(&schema_dir, e))?;
    for s in &schemas {
        let p = schema_dir.join(format!("{}.json", s.table_name));
        std::fs::write(&p, s.to_json()).map_err(|e| io(&p, e))?;
    }
    lambda_map::write(&out.join("lambda-map.csv"), &mappings)?;
    let pairs: Vec<_> = names.iter().map(|n| (n.clone(), n.clone())).collect();
    let toml_path = out.join("ferry.toml");
    std::fs::write(&toml_path, toml_out::render(config, &pairs)).map_err(|e| io(&toml_path, e))?;
    // tables.csv last: its presence marks a complete plan.
    tables_csv::write(&tables_path, &infos)?;
    Ok(Discovered {
        tables: names.len(),
        mappings: mappings.len(),
        transforms,
    })
}

/// The destination's schema for a source table under the config's transform, and lines saying
/// what the transform does, the keys it makes, and its problems on the table.
fn transformed(config: &Config, schema: TableSchema) -> (TableSchema, Vec<String>) {
    let Some(t) = config.table(&schema.table_name).filter(|t| !t.transform.is_empty()) else {
        return (schema, Vec::new());
    };
    let name = &schema.table_name;
    let mut out: Vec<String> = t
        .transform
        .describe()
        .into_iter()
        .map(|s| format!("{name}: {s}"))
        .collect();
    let problems = crate::transform::check::against_table(&t.transform, &schema, name);
    out.extend(problems.into_iter().map(|p| format!("{name}: PROBLEM {p}")));
    let d = crate::transform::check::schema(&t.transform, &schema);
    out.push(format!(
        "{name}: the destination's keys will be [{}]",
        d.key_signature()
    ));
    (d, out)
}

async fn table(src: &Clients, name: &str, lambda: &mut Lambda) -> Result<(TableInfo, TableSchema, Vec<Mapping>)> {
    let d = discover::describe(src, name, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("source table {name:?} vanished while discovering")))?;
    let arn = d.table_arn.clone().unwrap_or_default();
    let extras = Extras {
        ttl_attribute: settings::ttl(src, name).await?,
        pitr: unsupported_is_none(settings::pitr(src, name).await, "point-in-time recovery", name)?.unwrap_or(false),
        tags: unsupported_is_none(settings::tags(src, &arn).await, "tags", name)?.unwrap_or_default(),
    };
    let schema = TableSchema::from_description(&d, &extras);
    let maps = match (schema.stream_view(), &d.latest_stream_arn, &*lambda) {
        (Some(_), Some(_), Lambda::Absent) => Vec::new(),
        (Some(_), Some(stream), Lambda::Unknown(shared)) => {
            let read = match (settings::mappings(src, stream).await, shared) {
                (Err(e), Some(url)) if e.code() == Some("InternalFailure") => {
                    tracing::warn!(
                        "the Lambda endpoint {url} is also the DynamoDB endpoint, and it answers \
                         ListEventSourceMappings with InternalFailure as DynamoDB Local (which has no Lambda) \
                         does: the plan records no Lambda mappings for any table. Set [source.endpoints] \
                         lambda to a Lambda endpoint to read them. ({e})"
                    );
                    *lambda = Lambda::Absent;
                    Ok(Vec::new())
                }
                (r, _) => r,
            };
            unsupported_is_none(read, "Lambda mappings", name)?
                .unwrap_or_default()
                .iter()
                .map(|m| super::lambda::from_sdk(name, m))
                .collect()
        }
        _ => Vec::new(),
    };
    let tp = d.provisioned_throughput.as_ref();
    let info = TableInfo {
        source: name.to_string(),
        size_bytes: d.table_size_bytes.unwrap_or(0),
        item_count: d.item_count.unwrap_or(0),
        billing_mode: schema.billing_mode.clone(),
        read_capacity: tp.and_then(|t| t.read_capacity_units).unwrap_or(0),
        write_capacity: tp.and_then(|t| t.write_capacity_units).unwrap_or(0),
        stream_view_type: schema.stream_view().unwrap_or_default().to_string(),
        pitr: extras.pitr,
        ttl_attribute: extras.ttl_attribute.clone().unwrap_or_default(),
        deletion_protection: schema.deletion_protection_enabled,
        table_class: schema.table_class.clone(),
        gsi_count: schema.global_secondary_indexes.len(),
        lsi_count: schema.local_secondary_indexes.len(),
    };
    Ok((info, schema, maps))
}

/// What discover knows of the source's Lambda.
enum Lambda {
    /// Not known yet; holds the Lambda endpoint when it is also the DynamoDB endpoint.
    Unknown(Option<String>),
    /// The endpoint is DynamoDB Local's, which has no Lambda: no table has mappings to read.
    Absent,
}

/// The Lambda endpoint of a side when ferry.toml sends Lambda calls to its DynamoDB endpoint (one
/// `endpoint_url` for every service, say). Never so on AWS, where each service has its own endpoint.
fn lambda_on_dynamodb_endpoint(side: &Side) -> Option<String> {
    let lambda = side.endpoints.lambda.as_ref().or(side.endpoint_url.as_ref())?;
    let ddb = side.endpoints.dynamodb.as_ref().or(side.endpoint_url.as_ref())?;
    (lambda.trim_end_matches('/') == ddb.trim_end_matches('/')).then(|| lambda.clone())
}

/// DynamoDB-compatible endpoints without an API (DynamoDB Local has no tags, PITR or Lambda)
/// answer with an "unknown operation"; that reads as "not set", with a warning. Any other error
/// (a refused permission, say) stops discover: a plan must not silently lose a setting.
fn unsupported_is_none<T>(r: Result<T>, what: &str, table: &str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_unsupported(&e) => {
            tracing::warn!(
                table,
                "the source endpoint does not support {what}; the plan records none: {e}"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn is_unsupported(e: &Error) -> bool {
    matches!(
        e.code(),
        Some("UnknownOperationException" | "UnsupportedOperationException" | "NotImplemented")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_counts_as_absent_only_when_sent_to_the_dynamodb_endpoint() {
        let local = "http://127.0.0.1:8000".to_string();
        let mut side = Side::default();
        assert_eq!(
            lambda_on_dynamodb_endpoint(&side),
            None,
            "AWS: every service has its own endpoint"
        );
        side.endpoint_url = Some(local.clone());
        assert_eq!(lambda_on_dynamodb_endpoint(&side), Some(local.clone()));
        side.endpoints.lambda = Some("http://127.0.0.1:5000".into());
        assert_eq!(
            lambda_on_dynamodb_endpoint(&side),
            None,
            "Lambda on its own endpoint (moto)"
        );
        side.endpoint_url = None;
        side.endpoints.dynamodb = Some(format!("{local}/"));
        side.endpoints.lambda = Some(local.clone());
        assert_eq!(lambda_on_dynamodb_endpoint(&side), Some(local));
    }
}
