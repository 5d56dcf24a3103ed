//! moto on the rig (S3, Lambda, IAM, and DynamoDB with tags and PITR): started through
//! `deploy/local/start.sh moto`, one per process, gone when the process ends.
//!
//! moto puts every access key in one account (123456789012); Regions are separate, so a test
//! uses one Region as the source and another as the destination.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;

use super::repo_dir;

#[derive(Debug, Clone)]
pub struct Moto {
    pub endpoint: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

impl Moto {
    /// The process-wide moto: the one named by `FERRY_MOTO_ENDPOINT`, or one started now.
    pub fn shared() -> &'static Moto {
        MOTO.get_or_init(|| match std::env::var("FERRY_MOTO_ENDPOINT") {
            Ok(endpoint) => Moto { endpoint },
            Err(_) => Self::start().unwrap_or_else(|e| panic!("cannot start moto: {e}")),
        })
    }

    /// Starts a moto server owned by this process.
    pub fn start() -> Result<Moto, String> {
        let out = Command::new("bash")
            .arg(repo_dir().join("deploy/local/start.sh"))
            .args(["moto", "--owner-pid", &std::process::id().to_string()])
            .output()
            .map_err(|e| format!("running deploy/local/start.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "deploy/local/start.sh moto failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let endpoint = text
            .lines()
            .find_map(|l| l.strip_prefix("FERRY_MOTO_ENDPOINT="))
            .ok_or("start.sh printed no FERRY_MOTO_ENDPOINT")?;
        Ok(Moto {
            endpoint: endpoint.to_string(),
        })
    }

    fn credentials() -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new("moto", "moto-secret", None, None, "ferry-rig")
    }

    pub fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    pub fn streams(&self, region: &str) -> aws_sdk_dynamodbstreams::Client {
        let conf = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_dynamodbstreams::Client::from_conf(conf)
    }

    pub fn lambda(&self, region: &str) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    /// ferry's clients for one Region of this moto.
    pub fn clients(&self, label: &'static str, region: &str) -> crate::config::Clients {
        crate::config::Clients {
            label,
            dynamodb: self.dynamodb(region),
            streams: self.streams(region),
            lambda: self.lambda(region),
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
