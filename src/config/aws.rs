//! AWS clients for one side (source or destination) of a migration.
//!
//! Everything goes through `aws-config`, so the standard mechanisms work too: environment
//! credentials, `AWS_PROFILE`, `AWS_ENDPOINT_URL_<SERVICE>`, the shared config file's `services`
//! sections, SSO. The SDK's own retries are off: ferry's retry layer ([`crate::retry`]) decides.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::error::{Error, Result};

/// How to reach one side, as written in `ferry.toml`.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub role_arn: Option<String>,
    /// Endpoint for every service of this side (DynamoDB Local, moto, a VPC endpoint...).
    pub endpoint_url: Option<String>,
    pub endpoints: Endpoints,
}

impl Side {
    /// Each setting of `self`, else `base`'s. A side that names its own `endpoint_url` keeps none
    /// of `base`'s per-service endpoints: they would win over it.
    pub fn or(self, base: Side) -> Side {
        let e = self.endpoints;
        let b = match self.endpoint_url {
            Some(_) => Endpoints::default(),
            None => base.endpoints,
        };
        Side {
            region: self.region.or(base.region),
            profile: self.profile.or(base.profile),
            role_arn: self.role_arn.or(base.role_arn),
            endpoint_url: self.endpoint_url.or(base.endpoint_url),
            endpoints: Endpoints {
                dynamodb: e.dynamodb.or(b.dynamodb),
                streams: e.streams.or(b.streams),
                s3: e.s3.or(b.s3),
                sqs: e.sqs.or(b.sqs),
                lambda: e.lambda.or(b.lambda),
                sts: e.sts.or(b.sts),
                application_autoscaling: e.application_autoscaling.or(b.application_autoscaling),
            },
        }
    }
}

/// Per-service endpoint overrides; each wins over `endpoint_url`.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub dynamodb: Option<String>,
    pub streams: Option<String>,
    pub s3: Option<String>,
    pub sqs: Option<String>,
    pub lambda: Option<String>,
    pub sts: Option<String>,
    /// Application Auto Scaling (the destination's auto-scaling maximum sets its default write
    /// budget).
    pub application_autoscaling: Option<String>,
}

/// The clients ferry uses on one side.
#[derive(Clone, Debug)]
pub struct Clients {
    /// "source" or "destination", for messages.
    pub label: &'static str,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// Exports live in S3: written by the source side, read by the destination side.
    pub s3: aws_sdk_s3::Client,
    /// Event source mappings (discover reads the source's; a plan recreates them on the destination).
    pub lambda: aws_sdk_lambda::Client,
    /// The SQS change buffer (`change_source = "sqs"`).
    pub sqs: aws_sdk_sqs::Client,
    /// Application Auto Scaling: a provisioned destination's write capacity maximum, read for its
    /// default write budget ([`crate::apply::budget`]).
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// The DynamoDB endpoint in use, for messages ("the default AWS endpoint" when unset).
    pub dynamodb_endpoint: String,
}

pub async fn build_clients(label: &'static str, side: &Side) -> Result<Clients> {
    let conf = sdk_config(label, side).await?;
    let ddb_url = side.endpoints.dynamodb.clone().or_else(|| side.endpoint_url.clone());
    let mut ddb = aws_sdk_dynamodb::config::Builder::from(&conf);
    if let Some(u) = &side.endpoints.dynamodb {
        ddb = ddb.endpoint_url(u);
    }
    let mut streams = aws_sdk_dynamodbstreams::config::Builder::from(&conf);
    if let Some(u) = side.endpoints.streams.as_ref().or(side.endpoints.dynamodb.as_ref()) {
        streams = streams.endpoint_url(u);
    }
    // Path-style addressing works with every S3-compatible endpoint (moto, MinIO); AWS's own
    // endpoint keeps virtual-hosted style.
    let mut s3 = aws_sdk_s3::config::Builder::from(&conf);
    if let Some(u) = &side.endpoints.s3 {
        s3 = s3.endpoint_url(u);
    }
    if side.endpoints.s3.is_some() || side.endpoint_url.is_some() {
        s3 = s3.force_path_style(true);
    }
    let mut lambda = aws_sdk_lambda::config::Builder::from(&conf);
    if let Some(u) = &side.endpoints.lambda {
        lambda = lambda.endpoint_url(u);
    }
    let mut sqs = aws_sdk_sqs::config::Builder::from(&conf);
    if let Some(u) = &side.endpoints.sqs {
        sqs = sqs.endpoint_url(u);
    }
    let mut autoscaling = aws_sdk_applicationautoscaling::config::Builder::from(&conf);
    if let Some(u) = &side.endpoints.application_autoscaling {
        autoscaling = autoscaling.endpoint_url(u);
    }
    Ok(Clients {
        label,
        lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb.build()),
        streams: aws_sdk_dynamodbstreams::Client::from_conf(streams.build()),
        sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
        autoscaling: aws_sdk_applicationautoscaling::Client::from_conf(autoscaling.build()),
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
        dynamodb_endpoint: ddb_url.unwrap_or_else(|| "the default AWS endpoint".into()),
    })
}

async fn sdk_config(label: &str, side: &Side) -> Result<SdkConfig> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(r) = &side.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &side.profile {
        loader = loader.profile_name(p);
    }
    if let Some(u) = &side.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let base = loader.load().await;
    if base.region().is_none() {
        return Err(Error::fatal(format!(
            "no AWS region for [{label}]: set region = \"...\" in ferry.toml, AWS_REGION, or a profile's region"
        )));
    }
    let conf = match &side.role_arn {
        None => base,
        Some(role) => {
            let mut sts_conf = base.clone().into_builder();
            if let Some(u) = &side.endpoints.sts {
                sts_conf = sts_conf.endpoint_url(u);
            }
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(format!("ferry-{label}"))
                .configure(&sts_conf.build())
                .build()
                .await;
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
    };
    check_credentials(label, side, &conf).await?;
    Ok(conf)
}

/// Resolves credentials once at start-up so a missing profile or a refused role is reported
/// clearly, before anything else runs. The credentials themselves are never printed.
async fn check_credentials(label: &str, side: &Side, conf: &SdkConfig) -> Result<()> {
    let Some(provider) = conf.credentials_provider() else {
        return Err(Error::fatal(format!("no credentials provider for [{label}]")));
    };
    provider.provide_credentials().await.map(|_| ()).map_err(|e| {
        let via = match (&side.profile, &side.role_arn) {
            (_, Some(role)) => format!(" (assuming role {role})"),
            (Some(p), None) => format!(" (profile {p:?})"),
            _ => String::new(),
        };
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        Error::fatal(format!("cannot load AWS credentials for [{label}]{via}: {detail}"))
    })
}
