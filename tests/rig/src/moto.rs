//! moto on the rig: S3 (exports), DynamoDB with PITR export/import, and STS for a second account.
//! Started through `deploy/local/start.sh moto`, like DynamoDB Local.
//!
//! [`write_export`] writes an export exactly as AWS DynamoDB lays it out (manifest-summary.json,
//! manifest-files.json with MD5s and item counts, several gzip'd data files), because moto's own
//! exports have no manifests.

use std::io::Write;
use std::sync::OnceLock;

use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

use super::REGION;
use ferry::item::{Item, json};

/// A running moto server.
#[derive(Debug, Clone)]
pub struct Moto {
    pub endpoint: String,
    /// The server's process, when this process started it (for CPU figures in benches).
    pub pid: Option<u32>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// moto's default account (every plain access key acts in it).
pub const ACCOUNT: &str = "123456789012";

impl Moto {
    /// The process-wide moto: the one named by `FERRY_MOTO_ENDPOINT`, or one started now that exits
    /// when this process does.
    pub fn shared() -> &'static Moto {
        MOTO.get_or_init(|| match std::env::var("FERRY_MOTO_ENDPOINT") {
            Ok(endpoint) => Moto { endpoint, pid: None },
            Err(_) => Self::start().unwrap_or_else(|e| panic!("cannot start moto: {e}")),
        })
    }

    pub fn start() -> Result<Moto, String> {
        let out = super::start_server("moto", None)?;
        let endpoint = out
            .get("FERRY_MOTO_ENDPOINT")
            .ok_or("start.sh printed no FERRY_MOTO_ENDPOINT")?;
        Ok(Moto {
            endpoint: endpoint.clone(),
            pid: out.get("FERRY_MOTO_PID").and_then(|p| p.parse().ok()),
        })
    }

    pub fn s3(&self, creds: Credentials) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn dynamodb(&self, creds: Credentials) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// Credentials acting in another moto account: STS AssumeRole of a role in `account` (moto
    /// does not require the role to exist).
    pub async fn assume(&self, account: &str, creds: Credentials) -> Result<Credentials, String> {
        use aws_credential_types::provider::ProvideCredentials;
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .load()
            .await;
        let provider = aws_config::sts::AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/ferry-rig"))
            .session_name("ferry-rig")
            .configure(&base)
            .build()
            .await;
        provider
            .provide_credentials()
            .await
            .map_err(|e| format!("AssumeRole in {account}: {e:?}"))
    }

    /// A cross-account move's two sides: `table` created (streamed) in the default account, and
    /// DynamoDB of `account` with its `bucket` for exports.
    pub async fn cross_account(
        &self,
        account: &str,
        table: &str,
        bucket: &str,
    ) -> (aws_sdk_dynamodb::Client, aws_sdk_dynamodb::Client) {
        let src = self.dynamodb(default_credentials());
        let dst_creds = self.assume(account, default_credentials()).await.expect("assume role");
        ensure_bucket(&self.s3(dst_creds.clone()), bucket)
            .await
            .expect("bucket");
        create_streamed_table(&src, table).await;
        (src, self.dynamodb(dst_creds))
    }
}

/// Plain credentials for moto's default account.
pub fn default_credentials() -> Credentials {
    Credentials::new("moto-rig", "moto-secret", None, None, "ferry-rig")
}

/// Where [`write_export`] put an export.
#[derive(Debug, Clone)]
pub struct WrittenExport {
    pub bucket: String,
    /// `<prefix>/AWSDynamoDB/<id>/`
    pub folder: String,
    /// Data file keys, in manifest order.
    pub files: Vec<String>,
    pub items: u64,
}

impl WrittenExport {
    pub fn s3_url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.folder)
    }
}

/// Creates `bucket` if needed.
pub async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), String> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = format!("{e:?}");
            if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists") {
                Ok(())
            } else {
                Err(format!("CreateBucket {bucket}: {text}"))
            }
        }
    }
}

/// What [`write_export`] writes.
#[derive(Debug, Clone)]
pub struct ExportSpec<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub export_id: &'a str,
    pub export_time_ms: i64,
    /// Items `0..n`.
    pub n: u64,
    /// Data files (contiguous ranges of items).
    pub files: u64,
}

/// Writes `item(i)` for every i in `0..spec.n` as an AWS-format full export in gzip'd data files,
/// with both manifests.
pub async fn write_export(
    s3: &aws_sdk_s3::Client,
    spec: &ExportSpec<'_>,
    item: impl Fn(u64) -> Item,
) -> Result<WrittenExport, String> {
    let ExportSpec {
        bucket,
        prefix,
        export_id,
        n,
        files,
        ..
    } = *spec;
    ensure_bucket(s3, bucket).await?;
    let folder = format!("{}/AWSDynamoDB/{export_id}/", prefix.trim_matches('/'));
    let mut manifest_files = String::new();
    let mut keys = Vec::new();
    let per = n.div_ceil(files.max(1));
    for f in 0..files.max(1) {
        let (lo, hi) = (f * per, ((f + 1) * per).min(n));
        let bytes = gzip_lines(lo..hi.max(lo), &item)?;
        let key = format!("{folder}data/file-{f:04}.json.gz");
        let md5 = STANDARD.encode(Md5::digest(&bytes));
        put(s3, bucket, &key, bytes).await?;
        manifest_files.push_str(
            &serde_json::json!({
                "itemCount": hi.saturating_sub(lo),
                "md5Checksum": md5,
                "etag": format!("rig-{f}"),
                "dataFileS3Key": key,
            })
            .to_string(),
        );
        manifest_files.push('\n');
        keys.push(key);
    }
    let files_key = format!("{folder}manifest-files.json");
    put(s3, bucket, &files_key, manifest_files.into_bytes()).await?;
    let summary = manifest_summary(spec, &files_key);
    put(
        s3,
        bucket,
        &format!("{folder}manifest-summary.json"),
        summary.to_string().into_bytes(),
    )
    .await?;
    put(s3, bucket, &format!("{folder}_started"), Vec::new()).await?;
    Ok(WrittenExport {
        bucket: bucket.into(),
        folder,
        files: keys,
        items: n,
    })
}

/// One data file: a gzip'd `{"Item": ...}` line per item.
fn gzip_lines(items: std::ops::Range<u64>, item: impl Fn(u64) -> Item) -> Result<Vec<u8>, String> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in items {
        let line = serde_json::json!({ "Item": json::item_to_json(&item(i)) });
        gz.write_all(line.to_string().as_bytes()).map_err(|e| e.to_string())?;
        gz.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    gz.finish().map_err(|e| e.to_string())
}

/// `manifest-summary.json` of the export `spec` describes.
fn manifest_summary(spec: &ExportSpec<'_>, files_key: &str) -> serde_json::Value {
    let ExportSpec {
        bucket,
        prefix,
        export_id,
        export_time_ms,
        n,
        ..
    } = *spec;
    let time = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(export_time_ms as u64),
    );
    serde_json::json!({
        "version": "2020-06-30",
        "exportArn": format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/rig/export/{export_id}"),
        "startTime": time.to_string(),
        "endTime": time.to_string(),
        "tableArn": format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/rig"),
        "tableId": "rig",
        "exportTime": time.to_string(),
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": null,
        "manifestFilesS3Key": files_key,
        "billedSizeBytes": 0,
        "itemCount": n,
        "outputFormat": "DYNAMODB_JSON",
    })
}

pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("PutObject s3://{bucket}/{key}: {e:?}"))
}

/// A source table in moto: pk (S) + sk (N), a GSI `by_group` on group, on demand, with a
/// NEW_AND_OLD_IMAGES stream.
pub async fn create_streamed_table(c: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, StreamSpecification, StreamViewType,
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let attr = |n: &str, t| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    c.create_table()
        .table_name(name)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("group", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_group")
                .key_schema(key("group", KeyType::Hash))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");
}
