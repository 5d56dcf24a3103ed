//! The forwarder's AWS side: its configuration from the Lambda's environment, and the SQS and S3
//! clients behind [`Sender`].

use aws_sdk_sqs::types::QueueAttributeName;

use super::{Entry, SENDS_IN_FLIGHT, Sender, Target};
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};
use crate::source::sqs::message::{FALLBACK_MESSAGE_MAX, GROUPS, SQS_MESSAGE_MAX};

/// The Lambda's configuration from its environment: `FERRY_QUEUE_URL`, `FERRY_TABLE`, and
/// optionally `FERRY_OFFLOAD_BUCKET`, `FERRY_SENDS_IN_FLIGHT` (1 sends one call at a time, for a
/// queue endpoint that does poorly with concurrent calls) and `FERRY_S3_PATH_STYLE=1` (for an
/// S3-compatible endpoint that needs path-style addressing). Clients come from the standard AWS environment (the
/// function's role, `AWS_ENDPOINT_URL_*`), with the SDK's retries off like everywhere in ferry.
pub async fn from_env() -> Result<(SdkSender, Target)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let queue_url = var("FERRY_QUEUE_URL").ok_or_else(|| Error::fatal("FERRY_QUEUE_URL is not set"))?;
    let table = var("FERRY_TABLE").ok_or_else(|| Error::fatal("FERRY_TABLE is not set"))?;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(var("FERRY_S3_PATH_STYLE").is_some())
        .build();
    let sender = SdkSender {
        sqs: aws_sdk_sqs::Client::new(&conf),
        s3: aws_sdk_s3::Client::from_conf(s3),
    };
    let message_max = queue_message_max(&sender.sqs, &queue_url).await;
    let target = Target {
        message_max,
        queue_url,
        offload_bucket: var("FERRY_OFFLOAD_BUCKET"),
        table,
        sends_in_flight: match var("FERRY_SENDS_IN_FLIGHT") {
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Error::fatal(format!(
                    "FERRY_SENDS_IN_FLIGHT={v:?} is not a whole number of at least 1"
                ))
            })?,
            None => SENDS_IN_FLIGHT,
        },
        groups: GROUPS,
    };
    Ok((sender, target))
}

/// The queue's `MaximumMessageSize` (GetQueueAttributes, once per cold start), at most SQS's
/// 1 MiB. Packing to it rather than to the 256 KiB of queues made before 2025, a 1 MiB queue
/// takes up to four times fewer messages and calls, and most items of up to 400 KB travel inline
/// with both images rather than through S3. If it cannot be read (a role without
/// `sqs:GetQueueAttributes`, a failing call), 256 KiB, with a warning.
pub async fn queue_message_max(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> usize {
    let read = Retrier::new(Policy::STARTUP, "GetQueueAttributes")
        .run(|| async {
            sqs.get_queue_attributes()
                .queue_url(queue_url)
                .attribute_names(QueueAttributeName::MaximumMessageSize)
                .send()
                .await
                .map_err(|e| Error::from_sdk("GetQueueAttributes", e))
        })
        .await;
    let size = read.and_then(|out| {
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| Error::fatal("no MaximumMessageSize in the answer"))
    });
    match size {
        Ok(n) => n.clamp(1024, SQS_MESSAGE_MAX),
        Err(e) => {
            tracing::warn!(queue = queue_url, error = %e, "cannot read the queue's MaximumMessageSize; packing messages of up to 256 KiB (grant the forwarder sqs:GetQueueAttributes)");
            FALLBACK_MESSAGE_MAX
        }
    }
}

/// The real [`Sender`]: SQS and S3 clients.
#[derive(Clone, Debug)]
pub struct SdkSender {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Sender for SdkSender {
    async fn send_batch(&self, queue_url: &str, entries: &[Entry]) -> Result<Vec<String>> {
        let list = entries
            .iter()
            .map(|e| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .message_body(&e.body)
                    .message_group_id(&e.group)
                    .message_deduplication_id(&e.dedup)
                    .build()
                    .map_err(|err| Error::fatal(format!("building a SendMessageBatch entry: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(list))
            .send()
            .await
            .map_err(|e| Error::from_sdk("SendMessageBatch", e))?;
        for f in out.failed() {
            tracing::warn!(
                id = f.id(),
                code = f.code(),
                message = f.message(),
                "SendMessageBatch entry failed"
            );
        }
        Ok(out.failed().iter().map(|f| f.id().to_string()).collect())
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::from_sdk("PutObject", e))
    }
}
