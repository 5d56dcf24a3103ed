//! Preconditions, checked for every table before anything is written anywhere.

use aws_sdk_dynamodb::types::{StreamViewType, TableDescription};

use super::View;
use super::{describe, key_signature, key_signature_as};
use crate::config::{Clients, TableConfig};
use crate::error::{Error, Result};
use crate::retry::{Policy, call};

#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Enable a NEW_AND_OLD_IMAGES stream on a source that has none (never changes an existing one).
    pub enable_streams: bool,
    /// Accept a destination that already holds items.
    pub allow_nonempty: bool,
}

/// What the checks found, for the sync to act on.
#[derive(Debug)]
pub struct Checked {
    pub source: TableDescription,
    pub destination: Option<TableDescription>,
    /// `None` when the stream must first be enabled (with `--enable-streams`).
    pub view: Option<View>,
}

/// `resuming`: the state store already has this table's capture point, so the destination is
/// expected to hold data and is not required to be empty.
pub async fn check_table(
    src: &Clients,
    dst: &Clients,
    t: &TableConfig,
    opts: CheckOptions,
    resuming: bool,
) -> Result<Checked> {
    let source = describe(src, &t.source, Policy::STARTUP).await?.ok_or_else(|| {
        Error::fatal(format!(
            "source table {:?} not found ({} endpoint {})",
            t.source, src.label, src.dynamodb_endpoint
        ))
    })?;
    let view = stream_view(&source, t, opts)?;
    transform_fits(&source, t)?;
    let destination = describe(dst, &t.destination, Policy::STARTUP).await?;
    if let Some(d) = &destination {
        if same_table(&source, d) {
            return Err(Error::fatal(format!(
                "source and destination are the same table ({:?} at {}): ferry never writes to a source table",
                t.source, src.dynamodb_endpoint
            )));
        }
        let (s_keys, d_keys) = (key_signature_as(&source, |n| t.transform.renamed(n)), key_signature(d));
        if s_keys != d_keys {
            let renamed = if t.transform.is_empty() {
                ""
            } else {
                " (keys named as the transform renames them)"
            };
            return Err(Error::fatal(format!(
                "destination table {:?} exists with another key schema: source has [{s_keys}]{renamed}, destination has [{d_keys}]",
                t.destination
            )));
        }
        if !resuming && !opts.allow_nonempty && !is_empty(dst, &t.destination).await? {
            return Err(Error::fatal(format!(
                "destination table {:?} already holds items; ferry refuses to mix a copy into existing data. \
                 Empty it, name another destination, or pass --allow-nonempty.",
                t.destination
            )));
        }
    }
    Ok(Checked {
        source,
        destination,
        view,
    })
}

/// The table's transform must keep its key and index keys whole (every problem at once).
fn transform_fits(source: &TableDescription, t: &TableConfig) -> Result<()> {
    if t.transform.is_empty() {
        return Ok(());
    }
    let schema = super::schema::TableSchema::from_description(source, &Default::default());
    let problems = crate::transform::check::against_table(&t.transform, &schema, &t.source);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::fatal(format!(
        "the transform of {:?} cannot work on this table ({} problems):\n  {}",
        t.source,
        problems.len(),
        problems.join("\n  ")
    )))
}

/// How the source's stream is read; `None` when `--enable-streams` will first enable one.
pub fn stream_view(source: &TableDescription, t: &TableConfig, opts: CheckOptions) -> Result<Option<View>> {
    match source.stream_specification.as_ref().filter(|s| s.stream_enabled) {
        Some(spec) => {
            let vt = spec.stream_view_type.clone().unwrap_or(StreamViewType::NewAndOldImages);
            let view = View::of(vt.as_str()).ok_or_else(|| {
                Error::fatal(format!(
                    "source table {:?} has a stream view type ferry cannot read: {vt:?}",
                    t.source
                ))
            })?;
            Ok(Some(view))
        }
        None if opts.enable_streams => Ok(None),
        None => Err(Error::fatal(format!(
            "source table {:?} has no stream enabled; ferry replays changes from DynamoDB Streams. \
             Enable one (NEW_AND_OLD_IMAGES or NEW_IMAGE) or run `ferry sync --enable-streams`, which \
             enables NEW_AND_OLD_IMAGES (ferry never changes or disables an existing stream).",
            t.source
        ))),
    }
}

/// The same physical table seen through both sides. DynamoDB Local gives every account the same
/// ARN prefix and no TableId, so the creation time takes part too: two tables share both only if
/// they are one.
fn same_table(a: &TableDescription, b: &TableDescription) -> bool {
    if let (Some(x), Some(y)) = (&a.table_id, &b.table_id) {
        return x == y;
    }
    a.table_arn.is_some() && a.table_arn == b.table_arn && a.creation_date_time == b.creation_date_time
}

async fn is_empty(c: &Clients, table: &str) -> Result<bool> {
    let out = call("Scan", || c.dynamodb.scan().table_name(table).limit(1).send()).await?;
    Ok(out.count == 0 && out.last_evaluated_key.is_none_or(|k| k.is_empty()))
}
