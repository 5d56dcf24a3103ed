//! moto clients per Region (Lambda, IAM, and DynamoDB with tags and PITR), for the plan tests.
//!
//! moto puts every access key in one account (123456789012); Regions are separate, so a test
//! uses one Region as the source and another as the destination.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::moto::Moto;

impl Moto {
    pub(super) fn credentials() -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new("moto", "moto-secret", None, None, "ferry-rig")
    }

    pub fn dynamodb_in(&self, region: &str) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    pub fn s3_in(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn sqs_in(&self, region: &str) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    pub fn streams_in(&self, region: &str) -> aws_sdk_dynamodbstreams::Client {
        let conf = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_dynamodbstreams::Client::from_conf(conf)
    }

    /// Application Auto Scaling (moto registers DynamoDB scalable targets without checking the table).
    pub fn autoscaling_in(&self, region: &str) -> aws_sdk_applicationautoscaling::Client {
        let conf = aws_sdk_applicationautoscaling::Config::builder()
            .behavior_version(aws_sdk_applicationautoscaling::config::BehaviorVersion::latest())
            .region(aws_sdk_applicationautoscaling::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_applicationautoscaling::Client::from_conf(conf)
    }

    pub fn lambda_in(&self, region: &str) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    /// ferry's clients for one Region of this moto.
    pub fn clients(&self, label: &'static str, region: &str) -> ferry::config::Clients {
        ferry::config::Clients {
            label,
            dynamodb: self.dynamodb_in(region),
            streams: self.streams_in(region),
            lambda: self.lambda_in(region),
            s3: self.s3_in(region),
            sqs: self.sqs_in(region),
            autoscaling: self.autoscaling_in(region),
            dynamodb_endpoint: self.endpoint.clone(),
        }
    }

    /// Creates an IAM role (Lambda's CreateFunction needs one that exists) and returns its ARN.
    /// moto checks no signature, so a plain form POST naming the service does.
    pub fn create_role(&self, name: &str) -> Result<String, String> {
        let body = format!("Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D");
        let hostport = self.endpoint.trim_start_matches("http://").trim_end_matches('/');
        let mut s = TcpStream::connect(hostport).map_err(|e| format!("connecting to {hostport}: {e}"))?;
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=moto/20260101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
        let arn = resp
            .split("<Arn>")
            .nth(1)
            .and_then(|r| r.split("</Arn>").next())
            .ok_or_else(|| format!("CreateRole failed: {}", resp.lines().next().unwrap_or("")))?;
        Ok(arn.to_string())
    }
}
