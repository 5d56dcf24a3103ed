//! `loader = "import"`: DynamoDB's native ImportTable creates the destination from the export's data
//! files (no write capacity used), with the destination side's credentials. ferry builds the table
//! from the source's description and polls DescribeImport for progress.
//!
//! ImportTable cannot create LSIs, a stream, tags or a table class; tables with LSIs use ferry's
//! loader instead (decided by [`import_possible`]).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    ImportStatus, ImportTableDescription, InputCompressionType, InputFormat, S3BucketSource, TableCreationParameters,
    TableDescription,
};

use super::manifest::Export;
use super::request::{Look, Poll};
use crate::config::Clients;
use crate::discover::schema::{Extras, TableSchema};
use crate::error::{Error, Result};
use crate::retry::Retrier;

/// `Err(reason)` when ImportTable cannot build this table like its source.
pub fn import_possible(src: &TableDescription) -> std::result::Result<(), String> {
    if !src.local_secondary_indexes().is_empty() {
        return Err(format!(
            "the source has {} local secondary index(es), which ImportTable cannot create",
            src.local_secondary_indexes().len()
        ));
    }
    Ok(())
}

/// ImportTable's table: `src`'s keys, billing and throughput, GSIs and SSE, through the one table
/// model.
pub fn creation_parameters(dest: &str, src: &TableDescription) -> Result<TableCreationParameters> {
    TableSchema::from_description(src, &Extras::default()).creation_parameters(dest)
}

/// Starts ImportTable over the export's `data/` folder. Returns the import ARN.
pub async fn start_import(
    dst: &Clients,
    dest: &str,
    src: &TableDescription,
    export: &Export,
    bucket_owner: Option<String>,
    token: &str,
    mut retrier: Retrier,
) -> Result<String> {
    let params = creation_parameters(dest, src)?;
    let source = S3BucketSource::builder()
        .s3_bucket(&export.bucket)
        .set_s3_bucket_owner(bucket_owner)
        .s3_key_prefix(format!("{}data/", export.folder))
        .build()
        .map_err(|e| Error::fatal(e.to_string()))?;
    let out = retrier
        .run(|| async {
            dst.dynamodb
                .import_table()
                .client_token(token)
                .s3_bucket_source(source.clone())
                .input_format(InputFormat::DynamodbJson)
                .input_compression_type(InputCompressionType::Gzip)
                .table_creation_parameters(params.clone())
                .send()
                .await
                .map_err(|e| Error::from_sdk("ImportTable", e).context(format!("importing into {dest:?}")))
        })
        .await?;
    out.import_table_description
        .and_then(|d| d.import_arn)
        .ok_or_else(|| Error::fatal("ImportTable returned no import ARN"))
}

/// Polls DescribeImport until the import completes, logging processed/imported counts and errors.
/// Returns the imported item count.
pub(super) async fn wait_import(dst: &Clients, dest: &str, import_arn: &str, poll: Poll) -> Result<i64> {
    let judge = |d: ImportTableDescription, elapsed: &str| {
        let (processed, imported, errors) = (d.processed_item_count, d.imported_item_count, d.error_count);
        match d.import_status {
            Some(ImportStatus::Completed) if errors > 0 => Err(Error::fatal(format!(
                "import {import_arn} into {dest:?} completed with {errors} item error(s) ({imported} of \
                 {processed} items imported); the errors are in CloudWatch Logs. The destination is \
                 incomplete: delete it and the table's state, fix the export, and run again."
            ))),
            Some(ImportStatus::Completed) => {
                tracing::info!(table = dest, processed, imported, elapsed, "import completed");
                Ok(Look::Done(imported))
            }
            Some(s @ (ImportStatus::Failed | ImportStatus::Cancelled | ImportStatus::Cancelling)) => {
                Err(Error::fatal(format!(
                    "import {import_arn} into {dest:?} {}: {} {} ({imported} of {processed} items imported, {errors} \
                 errors). Delete the destination table and the table's state, then run again.",
                    s.as_str().to_lowercase(),
                    d.failure_code.unwrap_or_default(),
                    d.failure_message.unwrap_or_default()
                )))
            }
            _ => Ok(Look::Running(format!(
                "in progress: {processed} items processed, {imported} imported, {errors} errors"
            ))),
        }
    };
    let describe = || async {
        dst.dynamodb
            .describe_import()
            .import_arn(import_arn)
            .send()
            .await
            .map_err(|e| Error::from_sdk("DescribeImport", e).context(format!("import {import_arn}")))?
            .import_table_description
            .ok_or_else(|| Error::fatal(format!("DescribeImport {import_arn}: no description")))
    };
    poll.wait(Duration::from_secs(10), describe, judge).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, BillingModeSummary, GlobalSecondaryIndexDescription, KeySchemaElement,
        KeyType, LocalSecondaryIndexDescription, Projection, ProjectionType, ScalarAttributeType,
    };

    fn key(n: &str, t: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    }

    fn source() -> TableDescription {
        TableDescription::builder()
            .table_name("T")
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(key("pk", KeyType::Hash))
            .billing_mode_summary(
                BillingModeSummary::builder()
                    .billing_mode(BillingMode::PayPerRequest)
                    .build(),
            )
            .global_secondary_indexes(
                GlobalSecondaryIndexDescription::builder()
                    .index_name("g")
                    .key_schema(key("pk", KeyType::Hash))
                    .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                    .build(),
            )
            .build()
    }

    #[test]
    fn builds_the_table_like_its_source() {
        let p = creation_parameters("Dest", &source()).unwrap();
        assert_eq!(p.table_name(), "Dest");
        assert_eq!(p.billing_mode(), Some(&BillingMode::PayPerRequest));
        assert_eq!(p.key_schema()[0].attribute_name(), "pk");
        assert_eq!(p.global_secondary_indexes()[0].index_name(), "g");
        assert!(p.provisioned_throughput().is_none());
        import_possible(&source()).unwrap();
    }

    #[test]
    fn tables_with_lsis_cannot_be_imported() {
        let mut t = source();
        t.local_secondary_indexes = Some(vec![LocalSecondaryIndexDescription::builder().index_name("l").build()]);
        let why = import_possible(&t).unwrap_err();
        assert!(why.contains("1 local secondary index"), "{why}");
    }
}
