//! Destination settings that wait for the cutover: turning them on earlier would get in the way
//! of the copy (deletion protection) or act on a half-copied table (Lambda triggers).

use serde::Serialize;

use crate::config::{Clients, Config, TableConfig};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::retry::{Policy, call};

#[derive(Debug, Clone, Serialize)]
pub struct SettingApplied {
    pub table: String,
    pub setting: String,
    /// "enabled", "already enabled", "would enable" (dry run), or why nothing was done.
    pub action: String,
}

/// Deletion protection: the destination gets it when the source has it.
pub async fn deletion_protection(
    src: &Clients,
    dst: &Clients,
    t: &TableConfig,
    dry_run: bool,
) -> Result<Option<SettingApplied>> {
    let s = crate::discover::describe(src, &t.source, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("source table {:?} does not exist", t.source)))?;
    if s.deletion_protection_enabled != Some(true) {
        return Ok(None);
    }
    let d = crate::discover::describe(dst, &t.destination, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("destination table {:?} does not exist", t.destination)))?;
    let action = if d.deletion_protection_enabled == Some(true) {
        "already enabled"
    } else if dry_run {
        "would enable"
    } else {
        call("UpdateTable", || {
            dst.dynamodb
                .update_table()
                .table_name(&t.destination)
                .deletion_protection_enabled(true)
                .send()
        })
        .await
        .map_err(|e| e.context(format!("enabling deletion protection on {}", t.destination)))?;
        "enabled"
    };
    Ok(Some(SettingApplied {
        table: t.destination.clone(),
        setting: "deletion protection".into(),
        action: action.into(),
    }))
}

/// Lambda event source mappings of a `--plan`: `ferry sync --plan` created them on the destination
/// stream disabled, at LATEST; enabling them now means they fire only on writes after the cutover,
/// never on replicated history. Without a plan ferry created no mapping, and says so.
pub async fn enable_lambda_mappings(
    config: &Config,
    dst: &Clients,
    plan: Option<&Plan>,
    dry_run: bool,
) -> Result<Vec<SettingApplied>> {
    let Some(plan) = plan else {
        return Ok(vec![SettingApplied {
            table: "*".into(),
            setting: "Lambda event source mappings".into(),
            action: "none: sync ran without --plan, so ferry created no mapping".into(),
        }]);
    };
    let mut out = Vec::new();
    for t in &config.tables {
        let Some(planned) = plan.table(&t.source) else { continue };
        let enabled = if dry_run {
            Vec::new()
        } else {
            crate::plan::enable_mappings(dst, planned).await?
        };
        for m in &planned.mappings {
            let action = if dry_run {
                "would enable at LATEST"
            } else if enabled.contains(&m.destination_function) {
                "enabled at LATEST"
            } else {
                "already enabled"
            };
            out.push(SettingApplied {
                table: planned.destination.clone(),
                setting: format!("Lambda mapping to {}", m.destination_function),
                action: action.into(),
            });
        }
    }
    Ok(out)
}
