//! moto on the rig (S3 and SQS for the change buffer), started through `deploy/local/start.sh moto`
//! and gone when this process ends.

use std::process::Command;
use std::sync::OnceLock;

use super::{REGION, repo_dir};

/// A running moto server.
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

    /// Starts a new server owned by this process.
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
        // moto takes any key as account 123456789012.
        aws_credential_types::Credentials::new("moto", "moto-secret", None, None, "ferry-rig")
    }

    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Creates a FIFO queue `<name>.fifo` with the given visibility timeout; returns its URL.
    pub async fn fifo_queue(&self, name: &str, visibility_seconds: u32) -> String {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        self.sqs_client()
            .create_queue()
            .queue_name(format!("{name}.fifo"))
            .attributes(A::FifoQueue, "true")
            .attributes(A::VisibilityTimeout, visibility_seconds.to_string())
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("queue URL")
    }

    pub async fn bucket(&self, name: &str) {
        self.s3_client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("CreateBucket");
    }
}
