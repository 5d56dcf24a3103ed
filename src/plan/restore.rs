//! Restoring a planned table's settings on its destination after the bulk load: table class,
//! deletion protection, TTL, PITR, tags, stream, then the Lambda mappings on that stream.
//!
//! Each step is a small type with one job: it reads the destination's current setting and
//! changes it only where it differs from the plan, so a rerun (after a crash between steps, or
//! after someone changed a setting) converges to the plan. Steps whose plan value is "off" and
//! whose API the endpoint may lack (tags, PITR) make no call at all.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    PointInTimeRecoverySpecification, StreamSpecification, StreamViewType, TableClass, TableDescription, Tag,
    TimeToLiveSpecification,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::PlannedTable;
use super::schema::TableSchema;
use crate::config::Clients;
use crate::discover::{self, settings};
use crate::error::{Error, Result};
use crate::retry::{Policy, call};

/// Runs every step for one table; returns what changed (empty when all was already in place).
pub async fn restore(dst: &Clients, table: &PlannedTable) -> Result<Vec<String>> {
    let ctx = Ctx {
        dst,
        name: &table.destination,
        want: &table.schema,
    };
    let mut done = Vec::new();
    done.extend(TableClassStep.run(&ctx).await?);
    done.extend(DeletionProtectionStep.run(&ctx).await?);
    done.extend(TtlStep.run(&ctx).await?);
    done.extend(PitrStep.run(&ctx).await?);
    done.extend(TagsStep.run(&ctx).await?);
    done.extend(StreamStep.run(&ctx).await?);
    if !table.mappings.is_empty() {
        let stream_arn = ctx
            .describe()
            .await?
            .latest_stream_arn
            .ok_or_else(|| Error::fatal(format!("destination {:?} reports no stream ARN", ctx.name)))?;
        done.extend(super::lambda::converge(dst, &stream_arn, &table.mappings).await?);
    }
    Ok(done)
}

/// What every step needs: the destination, its name, and the plan's schema.
pub struct Ctx<'a> {
    pub dst: &'a Clients,
    pub name: &'a str,
    pub want: &'a TableSchema,
}

impl Ctx<'_> {
    async fn describe(&self) -> Result<TableDescription> {
        discover::describe(self.dst, self.name, Policy::STARTUP)
            .await?
            .ok_or_else(|| Error::fatal(format!("destination table {:?} does not exist", self.name)))
    }

    /// UpdateTable, then wait until the table is ACTIVE again (one update at a time).
    async fn update(
        &self,
        what: &str,
        f: impl Fn(
            aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
    ) -> Result<()> {
        let doing = format!("{what} on");
        self.call("UpdateTable", &doing, || {
            f(self.dst.dynamodb.update_table().table_name(self.name)).send()
        })
        .await?;
        discover::wait_active(self.dst, self.name).await?;
        Ok(())
    }

    /// One call on the destination under the start-up policy; a failure names the table and
    /// what was being done to it (`doing` reads before "destination").
    async fn call<T, E, Fut>(&self, op: &str, doing: &str, send: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        call(op, send)
            .await
            .map_err(|e| e.context(format!("{doing} destination {:?}", self.name)))
    }
}

fn built<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
    r.map_err(|e| Error::fatal(e.to_string()))
}

pub struct TableClassStep;
impl TableClassStep {
    pub async fn run(&self, c: &Ctx<'_>) -> Result<Option<String>> {
        let d = c.describe().await?;
        let have = d
            .table_class_summary
            .and_then(|s| s.table_class)
            .map_or("STANDARD".to_string(), |t| t.as_str().to_string());
        if have == c.want.table_class {
            return Ok(None);
        }
        let class = TableClass::from(c.want.table_class.as_str());
        c.update("setting the table class", |u| u.table_class(class.clone()))
            .await?;
        Ok(Some(format!("table class {have} -> {}", c.want.table_class)))
    }
}

pub struct DeletionProtectionStep;
impl DeletionProtectionStep {
    pub async fn run(&self, c: &Ctx<'_>) -> Result<Option<String>> {
        let want = c.want.deletion_protection_enabled;
        if c.describe().await?.deletion_protection_enabled.unwrap_or(false) == want {
            return Ok(None);
        }
        c.update("setting deletion protection", |u| u.deletion_protection_enabled(want))
            .await?;
        Ok(Some(format!("deletion protection {}", on_off(want))))
    }
}

pub struct TtlStep;
impl TtlStep {
    pub async fn run(&self, c: &Ctx<'_>) -> Result<Option<String>> {
        let want = c.want.ttl_attribute();
        let have = settings::ttl(c.dst, c.name).await?;
        if have.as_deref() == want {
            return Ok(None);
        }
        // DynamoDB changes the TTL attribute only by disabling, then enabling.
        if let Some(old) = &have {
            self.set(c, old, false).await?;
        }
        if let Some(attr) = want {
            self.set(c, attr, true).await?;
        }
        Ok(Some(format!(
            "TTL {} -> {}",
            have.as_deref().unwrap_or("off"),
            want.unwrap_or("off")
        )))
    }

    async fn set(&self, c: &Ctx<'_>, attr: &str, enabled: bool) -> Result<()> {
        let spec = ttl_spec(attr, enabled)?;
        c.call("UpdateTimeToLive", "setting TTL on", || {
            c.dst
                .dynamodb
                .update_time_to_live()
                .table_name(c.name)
                .time_to_live_specification(spec.clone())
                .send()
        })
        .await?;
        Ok(())
    }
}

fn ttl_spec(attr: &str, enabled: bool) -> Result<TimeToLiveSpecification> {
    built(
        TimeToLiveSpecification::builder()
            .attribute_name(attr)
            .enabled(enabled)
            .build(),
    )
}

pub struct PitrStep;
impl PitrStep {
    pub async fn run(&self, c: &Ctx<'_>) -> Result<Option<String>> {
        let want = c.want.pitr();
        if !want || settings::pitr(c.dst, c.name).await? {
            return Ok(None);
        }
        let spec = built(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build(),
        )?;
        c.call("UpdateContinuousBackups", "enabling PITR on", || {
            c.dst
                .dynamodb
                .update_continuous_backups()
                .table_name(c.name)
                .point_in_time_recovery_specification(spec.clone())
                .send()
        })
        .await?;
        Ok(Some("PITR on".into()))
    }
}

pub struct TagsStep;
impl TagsStep {
    pub async fn run(&self, c: &Ctx<'_>) -> Result<Option<String>> {
        if c.want.tags.is_empty() {
            return Ok(None);
        }
        let arn = c
            .describe()
            .await?
            .table_arn
            .ok_or_else(|| Error::fatal(format!("destination {:?} reports no ARN", c.name)))?;
        let have = settings::tags(c.dst, &arn).await?;
        let missing: Vec<Tag> = c
            .want
            .tags
            .iter()
            .filter(|t| !have.iter().any(|(k, v)| *k == t.key && *v == t.value))
            .map(|t| built(Tag::builder().key(&t.key).value(&t.value).build()))
            .collect::<Result<_>>()?;
        let extra: Vec<String> = have
            .iter()
            .filter(|(k, _)| !c.want.tags.iter().any(|t| t.key == *k))
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() {
            c.call("TagResource", "tagging", || {
                c.dst
                    .dynamodb
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(missing.clone()))
                    .send()
            })
            .await?;
        }
        if !extra.is_empty() {
            c.call("UntagResource", "untagging", || {
                c.dst
                    .dynamodb
                    .untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(extra.clone()))
                    .send()
            })
            .await?;
        }
        Ok((!missing.is_empty() || !extra.is_empty())
            .then(|| format!("tags: {} set, {} removed", missing.len(), extra.len())))
    }
}

pub struct StreamStep;
impl StreamStep {
    pub async fn run(&self, c: &Ctx<'_>) -> Result<Option<String>> {
        let d = c.describe().await?;
        let have = d
            .stream_specification
            .as_ref()
            .filter(|s| s.stream_enabled)
            .and_then(|s| s.stream_view_type.as_ref())
            .map(|v| v.as_str().to_string());
        let want = c.want.stream_view();
        if have.as_deref() == want {
            return Ok(None);
        }
        // The view type of an enabled stream cannot change: disable it first. This is the
        // destination ferry created, and its mappings stay disabled until cutover.
        if have.is_some() {
            let off = built(StreamSpecification::builder().stream_enabled(false).build())?;
            c.update("disabling the stream", |u| u.stream_specification(off.clone()))
                .await?;
        }
        if let Some(view) = want {
            let on = built(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build(),
            )?;
            c.update("enabling the stream", |u| u.stream_specification(on.clone()))
                .await?;
        }
        Ok(Some(format!(
            "stream {} -> {}",
            have.as_deref().unwrap_or("off"),
            want.unwrap_or("off")
        )))
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
