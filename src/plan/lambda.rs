//! Lambda event source mappings on the destination's stream.
//!
//! Contract: ferry creates each planned mapping DISABLED with StartingPosition LATEST, pointing at
//! the remapped function with the source mapping's settings, so it never fires on replicated
//! history. [`converge`] is idempotent: a mapping for the same function on the same stream is
//! reused and its settings fixed where they differ (its Enabled state is left alone). Cutover
//! calls [`enable_mappings`] once the destination is live. Mappings ferry does not plan are never
//! touched.

use aws_sdk_lambda::types::{
    DestinationConfig, EventSourceMappingConfiguration, EventSourcePosition, Filter, FilterCriteria,
    FunctionResponseType, OnFailure,
};

use super::PlannedTable;
use super::lambda_map::{Mapping, function_name};
use crate::config::Clients;
use crate::discover::settings;
use crate::error::{Error, Result};
use crate::retry::{Policy, call};

/// A source mapping as a plan row (destination function defaults to the same name).
pub fn from_sdk(table: &str, m: &EventSourceMappingConfiguration) -> Mapping {
    let source_function = function_name(m.function_arn.as_deref().unwrap_or_default());
    Mapping {
        line: 0,
        table: table.to_string(),
        uuid: m.uuid.clone().unwrap_or_default(),
        destination_function: source_function.clone(),
        source_function,
        skip: false,
        enabled: matches!(m.state.as_deref(), Some("Enabled" | "Enabling" | "Updating")),
        batch_size: m.batch_size,
        batching_window_seconds: m.maximum_batching_window_in_seconds,
        starting_position: m
            .starting_position
            .as_ref()
            .map_or(String::new(), |p| p.as_str().to_string()),
        filter_patterns: patterns(m),
        maximum_retry_attempts: m.maximum_retry_attempts,
        bisect_batch_on_error: m.bisect_batch_on_function_error,
        maximum_record_age_seconds: m.maximum_record_age_in_seconds,
        parallelization_factor: m.parallelization_factor,
        tumbling_window_seconds: m.tumbling_window_in_seconds,
        function_response_types: m
            .function_response_types()
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        on_failure_destination: on_failure(m),
    }
}

fn patterns(m: &EventSourceMappingConfiguration) -> Vec<String> {
    let mut p: Vec<String> = m
        .filter_criteria
        .as_ref()
        .map(|f| f.filters().iter().filter_map(|f| f.pattern.clone()).collect())
        .unwrap_or_default();
    p.sort();
    p
}

fn on_failure(m: &EventSourceMappingConfiguration) -> String {
    m.destination_config
        .as_ref()
        .and_then(|d| d.on_failure.as_ref())
        .and_then(|o| o.destination.clone())
        .unwrap_or_default()
}

/// The settings of `want` that `have` lacks, by name (empty: nothing to fix).
pub fn differences(want: &Mapping, have: &EventSourceMappingConfiguration) -> Vec<&'static str> {
    let mut d = Vec::new();
    let mut cmp = |name, w: Option<i32>, h: Option<i32>| {
        if w.is_some() && w != h {
            d.push(name);
        }
    };
    cmp("batch_size", want.batch_size, have.batch_size);
    cmp(
        "batching_window_seconds",
        want.batching_window_seconds,
        have.maximum_batching_window_in_seconds,
    );
    cmp(
        "maximum_retry_attempts",
        want.maximum_retry_attempts,
        have.maximum_retry_attempts,
    );
    cmp(
        "maximum_record_age_seconds",
        want.maximum_record_age_seconds,
        have.maximum_record_age_in_seconds,
    );
    cmp(
        "parallelization_factor",
        want.parallelization_factor,
        have.parallelization_factor,
    );
    cmp(
        "tumbling_window_seconds",
        want.tumbling_window_seconds,
        have.tumbling_window_in_seconds,
    );
    if want.bisect_batch_on_error.is_some() && want.bisect_batch_on_error != have.bisect_batch_on_function_error {
        d.push("bisect_batch_on_error");
    }
    if !super::lambda_map::same_patterns(&want.filter_patterns, &patterns(have)) {
        d.push("filter_criteria");
    }
    if want.on_failure_destination != on_failure(have) {
        d.push("on_failure_destination");
    }
    let have_types: Vec<String> = have
        .function_response_types()
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    if want.function_response_types != have_types {
        d.push("function_response_types");
    }
    d
}

fn filter_criteria(m: &Mapping) -> FilterCriteria {
    FilterCriteria::builder()
        .set_filters(Some(
            m.filter_patterns
                .iter()
                .map(|p| Filter::builder().pattern(p).build())
                .collect(),
        ))
        .build()
}

fn destination_config(m: &Mapping) -> DestinationConfig {
    let dest = (!m.on_failure_destination.is_empty()).then(|| m.on_failure_destination.clone());
    DestinationConfig::builder()
        .on_failure(OnFailure::builder().set_destination(dest).build())
        .build()
}

fn response_types(m: &Mapping) -> Vec<FunctionResponseType> {
    m.function_response_types
        .iter()
        .map(|t| FunctionResponseType::from(t.as_str()))
        .collect()
}

/// Makes the destination stream's mappings match the plan. Returns what it did, for the log.
pub async fn converge(dst: &Clients, stream_arn: &str, planned: &[Mapping]) -> Result<Vec<String>> {
    let existing = settings::mappings(dst, stream_arn).await?;
    let mut done = Vec::new();
    for want in planned {
        let fname = function_name(&want.destination_function);
        let have = existing
            .iter()
            .find(|m| function_name(m.function_arn.as_deref().unwrap_or_default()) == fname);
        match have {
            None => {
                create(dst, stream_arn, want).await?;
                done.push(format!("created the mapping to {fname} (disabled, LATEST)"));
            }
            Some(have) => {
                let diff = differences(want, have);
                if !diff.is_empty() {
                    update(dst, have.uuid.as_deref().unwrap_or_default(), want).await?;
                    done.push(format!("updated the mapping to {fname}: {}", diff.join(", ")));
                }
            }
        }
    }
    Ok(done)
}

async fn create(dst: &Clients, stream_arn: &str, m: &Mapping) -> Result<()> {
    let fname = function_name(&m.destination_function);
    call("CreateEventSourceMapping", || {
        dst.lambda
            .create_event_source_mapping()
            .event_source_arn(stream_arn)
            .function_name(&m.destination_function)
            .enabled(false)
            .starting_position(EventSourcePosition::Latest)
            .set_batch_size(m.batch_size)
            .set_maximum_batching_window_in_seconds(m.batching_window_seconds)
            .set_maximum_retry_attempts(m.maximum_retry_attempts)
            .set_bisect_batch_on_function_error(m.bisect_batch_on_error)
            .set_maximum_record_age_in_seconds(m.maximum_record_age_seconds)
            .set_parallelization_factor(m.parallelization_factor)
            .set_tumbling_window_in_seconds(m.tumbling_window_seconds)
            .set_filter_criteria((!m.filter_patterns.is_empty()).then(|| filter_criteria(m)))
            .set_destination_config((!m.on_failure_destination.is_empty()).then(|| destination_config(m)))
            .set_function_response_types((!m.function_response_types.is_empty()).then(|| response_types(m)))
            .send()
    })
    .await
    .map_err(|e| e.context(format!("creating the Lambda mapping of {stream_arn} to {fname}")))?;
    Ok(())
}

async fn update(dst: &Clients, uuid: &str, m: &Mapping) -> Result<()> {
    call("UpdateEventSourceMapping", || {
        dst.lambda
            .update_event_source_mapping()
            .uuid(uuid)
            .set_batch_size(m.batch_size)
            .set_maximum_batching_window_in_seconds(m.batching_window_seconds)
            .set_maximum_retry_attempts(m.maximum_retry_attempts)
            .set_bisect_batch_on_function_error(m.bisect_batch_on_error)
            .set_maximum_record_age_in_seconds(m.maximum_record_age_seconds)
            .set_parallelization_factor(m.parallelization_factor)
            .set_tumbling_window_in_seconds(m.tumbling_window_seconds)
            .filter_criteria(filter_criteria(m))
            .destination_config(destination_config(m))
            .set_function_response_types(Some(response_types(m)))
            .send()
    })
    .await
    .map_err(|e| e.context(format!("updating the Lambda mapping {uuid}")))?;
    Ok(())
}

/// For cutover: enables the planned mappings of one table on its destination's current stream.
/// They were created at LATEST, so they see only changes made after this call. Idempotent;
/// returns the functions whose mappings it enabled. A planned mapping that does not exist yet is
/// an error (run `ferry sync --plan` first).
pub async fn enable_mappings(dst: &Clients, table: &PlannedTable) -> Result<Vec<String>> {
    let desc = crate::discover::describe(dst, &table.destination, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("destination table {:?} does not exist", table.destination)))?;
    let Some(stream_arn) = desc
        .latest_stream_arn
        .filter(|_| desc.stream_specification.as_ref().is_some_and(|s| s.stream_enabled))
    else {
        return Err(Error::fatal(format!(
            "destination table {:?} has no stream, so its Lambda mappings cannot be enabled",
            table.destination
        )));
    };
    let existing = settings::mappings(dst, &stream_arn).await?;
    let mut enabled = Vec::new();
    for want in &table.mappings {
        let fname = function_name(&want.destination_function);
        let have = existing
            .iter()
            .find(|m| function_name(m.function_arn.as_deref().unwrap_or_default()) == fname)
            .ok_or_else(|| {
                Error::fatal(format!(
                    "no Lambda mapping from {stream_arn} to {fname}: run `ferry sync --plan` first"
                ))
            })?;
        if matches!(have.state.as_deref(), Some("Enabled" | "Enabling")) {
            continue;
        }
        let uuid = have.uuid.clone().unwrap_or_default();
        call("UpdateEventSourceMapping", || {
            dst.lambda
                .update_event_source_mapping()
                .uuid(&uuid)
                .enabled(true)
                .send()
        })
        .await
        .map_err(|e| e.context(format!("enabling the Lambda mapping {uuid} to {fname}")))?;
        enabled.push(fname);
    }
    Ok(enabled)
}
