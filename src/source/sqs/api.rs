//! The AWS calls of the SQS consumer, behind two narrow traits so its timing (visibility
//! extension while writes are slow, throttle storms, slow offload fetches) is tested against a
//! scripted queue in paused time: [`QueueApi`] for the queue, [`Offloads`] for the S3 objects
//! that hold records too big for a message.
//!
//! The SDK implementations make one call each and classify its error
//! ([`Error::from_sdk`]); retrying is the caller's ([`crate::retry::Retrier`]).

use std::collections::HashMap;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use futures::future::BoxFuture;

use crate::error::{Error, Result};

/// A queue's attributes, by name.
pub type Attributes = HashMap<QueueAttributeName, String>;

/// One entry of a batch call that failed while the call itself worked.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub code: String,
    pub message: Option<String>,
}

/// The SQS calls ferry makes on a change queue and its dead-letter queue.
pub trait QueueApi: Send + Sync {
    /// Up to 10 messages (with their receive count), hidden for `visibility_seconds` from the
    /// call on; long-polls up to `wait_seconds` when none is there.
    fn receive<'a>(
        &'a self,
        url: &'a str,
        visibility_seconds: i32,
        wait_seconds: i32,
    ) -> BoxFuture<'a, Result<Vec<Message>>>;
    /// Hides the messages of `receipts` for `visibility_seconds` more (ChangeMessageVisibilityBatch).
    fn change_visibility<'a>(
        &'a self,
        url: &'a str,
        receipts: &'a [String],
        visibility_seconds: i32,
    ) -> BoxFuture<'a, Result<()>>;
    /// Deletes the messages of `receipts` (DeleteMessageBatch); the entries that failed.
    fn delete<'a>(&'a self, url: &'a str, receipts: &'a [String]) -> BoxFuture<'a, Result<Vec<Failed>>>;
    /// The queue's attributes `names` (GetQueueAttributes).
    fn attributes<'a>(&'a self, url: &'a str, names: &'a [QueueAttributeName]) -> BoxFuture<'a, Result<Attributes>>;
    /// A queue's URL from its name and owner (GetQueueUrl).
    fn queue_url<'a>(&'a self, name: &'a str, account: &'a str) -> BoxFuture<'a, Result<String>>;
}

/// Reads the S3 object of an offloaded record.
pub trait Offloads: Send + Sync {
    /// The whole object (GetObject, body included); `NoSuchKey` when it does not exist.
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>>>;
}

/// [`QueueApi`] through the SDK.
pub struct SdkQueue(pub aws_sdk_sqs::Client);

impl QueueApi for SdkQueue {
    fn receive<'a>(
        &'a self,
        url: &'a str,
        visibility_seconds: i32,
        wait_seconds: i32,
    ) -> BoxFuture<'a, Result<Vec<Message>>> {
        Box::pin(async move {
            let out = self
                .0
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(super::turn::FULL as i32)
                .wait_time_seconds(wait_seconds)
                .visibility_timeout(visibility_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ReceiveMessage", e))?;
            Ok(out.messages.unwrap_or_default())
        })
    }

    fn change_visibility<'a>(
        &'a self,
        url: &'a str,
        receipts: &'a [String],
        visibility_seconds: i32,
    ) -> BoxFuture<'a, Result<()>> {
        let entries: Vec<_> = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(visibility_seconds)
                    .build()
                    .expect("id and receipt are set")
            })
            .collect();
        Box::pin(async move {
            self.0
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| Error::from_sdk("ChangeMessageVisibilityBatch", e))
        })
    }

    fn delete<'a>(&'a self, url: &'a str, receipts: &'a [String]) -> BoxFuture<'a, Result<Vec<Failed>>> {
        let entries: Vec<_> = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .expect("id and receipt are set")
            })
            .collect();
        Box::pin(async move {
            let out = self
                .0
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| Error::from_sdk("DeleteMessageBatch", e))?;
            Ok(out
                .failed()
                .iter()
                .map(|f| Failed {
                    code: f.code().to_string(),
                    message: f.message().map(str::to_string),
                })
                .collect())
        })
    }

    fn attributes<'a>(&'a self, url: &'a str, names: &'a [QueueAttributeName]) -> BoxFuture<'a, Result<Attributes>> {
        Box::pin(async move {
            let out = self
                .0
                .get_queue_attributes()
                .queue_url(url)
                .set_attribute_names(Some(names.to_vec()))
                .send()
                .await
                .map_err(|e| Error::from_sdk("GetQueueAttributes", e))?;
            Ok(out.attributes.unwrap_or_default())
        })
    }

    fn queue_url<'a>(&'a self, name: &'a str, account: &'a str) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let out = self
                .0
                .get_queue_url()
                .queue_name(name)
                .queue_owner_aws_account_id(account)
                .send()
                .await
                .map_err(|e| Error::from_sdk("GetQueueUrl", e))?;
            Ok(out.queue_url.unwrap_or_default())
        })
    }
}

/// [`Offloads`] through the SDK.
pub struct SdkOffloads(pub aws_sdk_s3::Client);

impl Offloads for SdkOffloads {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let out = self
                .0
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| Error::from_sdk("GetObject", e))?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| Error::retryable(format!("reading s3://{bucket}/{key}: {e}")))?;
            Ok(body.into_bytes().to_vec())
        })
    }
}
