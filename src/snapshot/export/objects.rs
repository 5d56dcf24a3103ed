//! The S3 reads of an export load (the destination side's credentials), behind a narrow trait so
//! the manifest reading and the loader are tested against a scripted bucket: slow bodies, a
//! throttle storm (503 SlowDown) in the middle of a file, truncated objects.
//!
//! The SDK implementation makes one call each and classifies its error ([`Error::from_sdk`]);
//! retrying is the caller's ([`crate::retry::Retrier`]).

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::manifest::url;
use crate::error::{Error, Result};

/// An object's body as it arrives, chunk by chunk. An error mid-body keeps its kind (a dropped
/// connection is retryable, a throttle stays a throttle).
pub type Chunks = BoxStream<'static, Result<Vec<u8>>>;

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Object keys, relative to the bucket root.
    pub keys: Vec<String>,
    /// Common prefixes (with a delimiter).
    pub folders: Vec<String>,
    /// The continuation token of the next page; `None` after the last.
    pub next: Option<String>,
}

/// The S3 calls of an export load.
pub trait ExportObjects: Send + Sync {
    /// A small object (a manifest) whole; `None` when it does not exist.
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;
    /// An object's body as a stream; `None` when it does not exist.
    fn open<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Chunks>>>;
    /// One page of the keys under `prefix` (ListObjectsV2), grouped at `delimiter` when given.
    fn list<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
        delimiter: Option<&'a str>,
        token: Option<String>,
    ) -> BoxFuture<'a, Result<Listing>>;
}

/// [`ExportObjects`] through the SDK.
pub struct S3Objects(pub aws_sdk_s3::Client);

impl S3Objects {
    /// GetObject: `None` when the object does not exist.
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<aws_sdk_s3::primitives::ByteStream>> {
        match self.0.get_object().bucket(bucket).key(key).send().await {
            Ok(r) => Ok(Some(r.body)),
            Err(e) => {
                let e = Error::from_sdk("GetObject", e);
                if matches!(e.code(), Some("NoSuchKey" | "NotFound")) {
                    return Ok(None);
                }
                Err(e.context(url(bucket, key)))
            }
        }
    }
}

impl ExportObjects for S3Objects {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let Some(body) = self.get_object(bucket, key).await? else {
                return Ok(None);
            };
            let body = body
                .collect()
                .await
                .map_err(|e| Error::retryable(format!("reading {}: {e}", url(bucket, key))))?;
            Ok(Some(body.into_bytes().to_vec()))
        })
    }

    fn open<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Chunks>>> {
        Box::pin(async move {
            let Some(body) = self.get_object(bucket, key).await? else {
                return Ok(None);
            };
            let chunks = futures::stream::unfold(body, |mut body| async move {
                let next = body.next().await?;
                Some((
                    next.map(|b| b.to_vec()).map_err(|e| Error::retryable(e.to_string())),
                    body,
                ))
            });
            Ok(Some(Box::pin(chunks) as Chunks))
        })
    }

    fn list<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
        delimiter: Option<&'a str>,
        token: Option<String>,
    ) -> BoxFuture<'a, Result<Listing>> {
        Box::pin(async move {
            let page = self
                .0
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ListObjectsV2", e).context(url(bucket, prefix)))?;
            let truncated = page.is_truncated() == Some(true);
            Ok(Listing {
                keys: page
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string))
                    .collect(),
                folders: page
                    .common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string))
                    .collect(),
                next: page.next_continuation_token().map(str::to_string).filter(|_| truncated),
            })
        })
    }
}
