//! `ferry-forwarder`: the Lambda function on the source table's stream that fills ferry's FIFO SQS
//! change buffer. Configured by `FERRY_QUEUE_URL`, `FERRY_TABLE`, `FERRY_OFFLOAD_BUCKET` and
//! optionally `FERRY_SENDS_IN_FLIGHT`; the event source mapping must enable
//! `ReportBatchItemFailures`. The logic lives in
//! `ferry::source::sqs::forwarder`.

use ferry::source::sqs::forwarder;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "info".into()))
        .without_time()
        .init();
    let (sender, target) = forwarder::from_env().await?;
    let (sender, target) = (&sender, &target);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let done = forwarder::forward(sender, target, &event.payload)
            .await
            .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
        tracing::info!(sent = done.sent, messages = done.messages, offloaded = done.offloaded, failed_at = ?done.failed_at, "forwarded");
        Ok::<Value, lambda_runtime::Error>(done.lambda_response())
    }))
    .await
}
