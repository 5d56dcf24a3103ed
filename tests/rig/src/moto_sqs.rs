//! moto clients for the SQS change buffer (the FIFO queue and the offload bucket).

use super::REGION;
use super::moto::Moto;

impl Moto {
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        self.sqs_in(REGION)
    }

    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        self.s3_in(REGION)
    }

    /// Creates a FIFO queue `<name>.fifo` with the given visibility timeout; returns its URL.
    pub async fn fifo_queue(&self, name: &str, visibility_seconds: u32) -> String {
        self.fifo_queue_sized(name, visibility_seconds, None).await
    }

    /// A FIFO queue whose messages take at most `max_message_bytes` (moto's default: 1 MiB).
    pub async fn fifo_queue_sized(
        &self,
        name: &str,
        visibility_seconds: u32,
        max_message_bytes: Option<u32>,
    ) -> String {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        self.sqs_client()
            .create_queue()
            .queue_name(format!("{name}.fifo"))
            .attributes(A::FifoQueue, "true")
            .attributes(A::VisibilityTimeout, visibility_seconds.to_string())
            .set_attributes(max_message_bytes.map(|n| [(A::MaximumMessageSize, n.to_string())].into()))
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
