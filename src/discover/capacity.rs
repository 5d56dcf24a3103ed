//! Reading what the destination can write ([`crate::apply::budget`]'s facts): its description,
//! and for a provisioned table the auto-scaling maximum of its write capacity from Application
//! Auto Scaling. Read-only.

use std::collections::BTreeSet;
use std::sync::Mutex;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_dynamodb::types::TableDescription;

use crate::apply::budget::{self, Capacity, Mode, Scaling, WriteBudget};
use crate::config::Clients;
use crate::discover::schema::TableSchema;
use crate::error::{Error, Result};
use crate::retry::{Policy, call};

/// The write budget of the destination `name` for `max_write_units_per_second = configured`: as
/// configured (nothing is read then), else from the table as it is now, else (it does not exist
/// yet) from `planned`, the schema ferry creates it from.
pub async fn write_budget(
    dst: &Clients,
    name: &str,
    configured: Option<u32>,
    policy: Policy,
    planned: Option<&TableSchema>,
) -> Result<WriteBudget> {
    if let Some(n) = configured {
        return Ok(budget::configured(n));
    }
    let capacity = match (super::describe(dst, name, policy).await?, planned) {
        (Some(d), _) => of_table(dst, name, &d).await,
        (None, Some(s)) => Capacity::of_schema(s),
        (None, None) => {
            return Err(Error::fatal(format!(
                "destination table {name:?} does not exist ({} endpoint {})",
                dst.label, dst.dynamodb_endpoint
            )));
        }
    };
    Ok(budget::resolve(None, &capacity))
}

/// The capacity of the existing table `name` described as `d`: its auto-scaling is read when it
/// is provisioned.
pub async fn of_table(dst: &Clients, name: &str, d: &TableDescription) -> Capacity {
    let mut c = Capacity::of_description(d, Scaling::None);
    if let Mode::Provisioned { scaling, .. } = &mut c.mode {
        *scaling = write_scaling(&dst.autoscaling, name).await;
    }
    c
}

/// The auto-scaling of table `name`'s write capacity. Never fails: the budget then falls back to
/// the provisioned capacity, and says why (a warning is logged once per table and process).
pub async fn write_scaling(autoscaling: &aws_sdk_applicationautoscaling::Client, name: &str) -> Scaling {
    let resource = format!("table/{name}");
    let read = call("DescribeScalableTargets", || {
        autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Dynamodb)
            .resource_ids(&resource)
            .scalable_dimension(ScalableDimension::DynamoDbTableWriteCapacityUnits)
            .send()
    })
    .await;
    let out = match read {
        Ok(out) => out,
        Err(e) => return unreadable(name, e),
    };
    let target = out.scalable_targets().iter().find(|t| {
        t.resource_id == resource && t.scalable_dimension == ScalableDimension::DynamoDbTableWriteCapacityUnits
    });
    match target {
        // A suspended scale-out leaves the table at its provisioned capacity.
        Some(t) if t.suspended_state.as_ref().and_then(|s| s.dynamic_scaling_out_suspended) != Some(true) => {
            Scaling::Max(t.max_capacity as i64)
        }
        _ => Scaling::None,
    }
}

fn unreadable(name: &str, e: Error) -> Scaling {
    static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = WARNED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_string());
    if first {
        tracing::warn!(
            table = name,
            "cannot read the auto-scaling of the destination's write capacity; its default write budget \
             follows the provisioned capacity (allow application-autoscaling:DescribeScalableTargets, or set \
             max_write_units_per_second): {e}"
        );
    }
    Scaling::Unreadable(e.code().unwrap_or(e.message()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Application Auto Scaling client whose every call gets `status` and `body`.
    fn answering(status: u16, body: &'static str) -> aws_sdk_applicationautoscaling::Client {
        let http = aws_smithy_http_client::test_util::infallible_client_fn(move |_| {
            http::Response::builder().status(status).body(body).unwrap()
        });
        let conf = aws_sdk_applicationautoscaling::Config::builder()
            .behavior_version(aws_sdk_applicationautoscaling::config::BehaviorVersion::latest())
            .region(aws_sdk_applicationautoscaling::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "t"))
            .http_client(http)
            .build();
        aws_sdk_applicationautoscaling::Client::from_conf(conf)
    }

    const TARGET: &str = r#"{"ScalableTargets":[{"ServiceNamespace":"dynamodb","ResourceId":"table/T",
        "ScalableDimension":"dynamodb:table:WriteCapacityUnits","MinCapacity":5,"MaxCapacity":400,
        "RoleARN":"arn:aws:iam::1:role/r","CreationTime":1700000000}]}"#;
    const SUSPENDED: &str = r#"{"ScalableTargets":[{"ServiceNamespace":"dynamodb","ResourceId":"table/T",
        "ScalableDimension":"dynamodb:table:WriteCapacityUnits","MinCapacity":5,"MaxCapacity":400,
        "RoleARN":"arn:aws:iam::1:role/r","CreationTime":1700000000,
        "SuspendedState":{"DynamicScalingOutSuspended":true}}]}"#;

    #[tokio::test]
    async fn a_registered_target_gives_its_maximum_unless_scale_out_is_suspended() {
        assert_eq!(write_scaling(&answering(200, TARGET), "T").await, Scaling::Max(400));
        assert_eq!(
            write_scaling(&answering(200, TARGET), "Other").await,
            Scaling::None,
            "another table's target"
        );
        assert_eq!(write_scaling(&answering(200, SUSPENDED), "T").await, Scaling::None);
        assert_eq!(
            write_scaling(&answering(200, r#"{"ScalableTargets":[]}"#), "T").await,
            Scaling::None
        );
    }

    #[tokio::test]
    async fn a_refused_read_is_unreadable_with_its_code_not_an_error() {
        let denied = answering(400, r#"{"__type":"AccessDeniedException","message":"not allowed"}"#);
        assert_eq!(
            write_scaling(&denied, "T").await,
            Scaling::Unreadable("AccessDeniedException".into())
        );
    }
}
