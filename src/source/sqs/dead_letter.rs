//! The change queue's dead-letter queue. With a redrive policy, SQS moves a message received
//! `maxReceiveCount` times (ferry crash-looping on it, say) to another queue; its message group
//! then unblocks, later changes to its key apply without it, and the change is lost unseen. So
//! ferry refuses such a queue, at start-up and whenever it shows up later, unless the table sets
//! `queue_allow_dead_letter = true`; then it watches the dead-letter queue's depth with the
//! queue's own and stops the table, naming the dead-letter queue, as soon as anything is in it.

use aws_sdk_sqs::types::QueueAttributeName;

use super::api::{QueueApi, SdkQueue};
use crate::config::QueueConfig;
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};

const REDRIVE: &[QueueAttributeName] = &[QueueAttributeName::RedrivePolicy];

/// A dead-letter queue ferry watches (with `queue_allow_dead_letter`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub arn: String,
    pub url: String,
    /// The redrive policy's `maxReceiveCount`, for messages.
    pub max_receive_count: Option<i64>,
}

/// The target ARN and `maxReceiveCount` of a `RedrivePolicy` attribute (SQS writes the count as
/// a number, CloudFormation and some tools as a string).
pub fn parse_policy(policy: &str) -> Option<(String, Option<i64>)> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    let arn = v.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = match v.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Some((arn, count))
}

/// Refuses a redrive policy without the opt-in; with it, the dead-letter queue to watch.
/// `policy` is the queue's `RedrivePolicy` attribute, if any.
pub fn judge(queue: &QueueConfig, policy: Option<&str>) -> Result<Option<(String, Option<i64>)>> {
    let Some(policy) = policy.filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let Some((arn, count)) = parse_policy(policy) else {
        return Err(Error::fatal(format!(
            "queue {} has a redrive policy ferry cannot read ({policy}); remove it",
            queue.url
        )));
    };
    if !queue.allow_dead_letter {
        let after = count.map_or(String::new(), |n| format!(" after {n} receives"));
        return Err(Error::fatal(format!(
            "queue {} has a redrive policy (dead-letter queue {arn}, maxReceiveCount {}): SQS \
             moves a message{after} to the dead-letter queue unapplied, and later changes to its key then \
             apply without it, so a change can be lost without a word. ferry will not read it. Remove the \
             redrive policy from the queue (deploy/aws/forwarder.yaml sets none), or set \
             queue_allow_dead_letter = true for this table: ferry then watches the dead-letter queue and \
             stops the table as soon as a message lands in it.",
            queue.url,
            count.map_or("?".to_string(), |n| n.to_string()),
        )));
    }
    Ok(Some((arn, count)))
}

/// Reads the queue's redrive policy and judges it; resolves the dead-letter queue's URL when the
/// table opted in. Called by `ferry sync` before anything is written, and by the consumer.
pub async fn check(sqs: &dyn QueueApi, queue: &QueueConfig) -> Result<Option<DeadLetter>> {
    let attrs = Retrier::new(Policy::STARTUP, "GetQueueAttributes")
        .run(|| sqs.attributes(&queue.url, REDRIVE))
        .await
        .map_err(|e| e.context(format!("reading the attributes of queue {}", queue.url)))?;
    let policy = attrs.get(&QueueAttributeName::RedrivePolicy).map(String::as_str);
    match judge(queue, policy)? {
        None => Ok(None),
        Some((arn, count)) => resolve(sqs, queue, &arn, count).await.map(Some),
    }
}

/// `ferry sync`'s start-up check of an SQS table: a refused redrive policy, or a dead-letter
/// queue that already holds messages, stops it before anything is written.
pub async fn precheck(sqs: &aws_sdk_sqs::Client, t: &crate::config::TableConfig) -> Result<()> {
    let crate::config::ChangeSource::Sqs(queue) = &t.change_source else {
        return Ok(());
    };
    let sqs = &SdkQueue(sqs.clone());
    let Some(dl) = check(sqs, queue).await? else {
        return Ok(());
    };
    match depth(sqs, &dl).await? {
        Some(n) if n > 0 => Err(not_empty(&queue.url, &dl, n)),
        _ => Ok(()),
    }
}

/// The dead-letter queue's URL from its ARN (`arn:aws:sqs:<region>:<account>:<name>`).
pub async fn resolve(sqs: &dyn QueueApi, queue: &QueueConfig, arn: &str, count: Option<i64>) -> Result<DeadLetter> {
    let parts: Vec<&str> = arn.split(':').collect();
    let (account, name) = match parts.as_slice() {
        [_, _, "sqs", _, account, name] => (*account, *name),
        _ => {
            return Err(Error::fatal(format!(
                "the redrive policy of queue {} names {arn:?}, not an SQS queue ARN",
                queue.url
            )));
        }
    };
    let url = Retrier::new(Policy::STARTUP, "GetQueueUrl")
        .run(|| sqs.queue_url(name, account))
        .await
        .map_err(|e| {
            e.context(format!(
                "finding the dead-letter queue {arn} of queue {} (the source role needs \
             sqs:GetQueueUrl and sqs:GetQueueAttributes on it)",
                queue.url
            ))
        })?;
    Ok(DeadLetter {
        arn: arn.to_string(),
        url,
        max_receive_count: count,
    })
}

/// Messages in the dead-letter queue: waiting, in flight and delayed. `None` on a transient error
/// (the next poll asks again).
pub async fn depth(sqs: &dyn QueueApi, dl: &DeadLetter) -> Result<Option<i64>> {
    const COUNTS: &[QueueAttributeName] = &[
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let attrs = match sqs.attributes(&dl.url, COUNTS).await {
        Ok(a) => a,
        Err(e) => {
            return if e.is_fatal() {
                Err(e.context(format!("dead-letter queue {}", dl.url)))
            } else {
                Ok(None)
            };
        }
    };
    let n = COUNTS
        .iter()
        .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<i64>().ok()))
        .sum();
    Ok(Some(n))
}

/// The error that stops a table whose dead-letter queue holds messages.
pub fn not_empty(queue_url: &str, dl: &DeadLetter, depth: i64) -> Error {
    let after = dl
        .max_receive_count
        .map_or(String::new(), |n| format!(" after {n} receives"));
    Error::fatal(format!(
        "{depth} message(s) are in the dead-letter queue {} of queue {queue_url}: SQS moved \
         them there{after}, unapplied, and later changes to their keys may have been applied without them. \
         The table is stopped. Find why they were stuck (ferry's log before this error), run `ferry verify \
         --repair` (it rewrites every key that differs from the source), then purge the dead-letter queue \
         and start `ferry sync` again.",
        dl.url
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(allow: bool) -> QueueConfig {
        QueueConfig {
            url: "https://sqs.us-east-1.amazonaws.com/1/t.fifo".into(),
            visibility_timeout_seconds: 30,
            receivers: 1,
            allow_dead_letter: allow,
        }
    }

    #[test]
    fn a_redrive_policy_is_refused_unless_the_table_opts_in() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:t-dlq.fifo","maxReceiveCount":"100"}"#;
        let err = judge(&queue(false), Some(policy)).unwrap_err();
        let msg = err.to_string();
        assert!(err.is_fatal(), "{msg}");
        for want in [
            "queue https://sqs.us-east-1.amazonaws.com/1/t.fifo has a redrive policy",
            "arn:aws:sqs:us-east-1:1:t-dlq.fifo",
            "maxReceiveCount 100",
            "queue_allow_dead_letter = true",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
        assert_eq!(
            judge(&queue(true), Some(policy)).unwrap(),
            Some(("arn:aws:sqs:us-east-1:1:t-dlq.fifo".to_string(), Some(100)))
        );
        assert_eq!(judge(&queue(false), None).unwrap(), None);
        assert_eq!(judge(&queue(false), Some("")).unwrap(), None);
        assert!(
            judge(&queue(true), Some("{}")).is_err(),
            "an unreadable policy is not ignored"
        );
    }

    #[test]
    fn the_stop_names_the_dead_letter_queue_and_what_to_do() {
        let dl = DeadLetter {
            arn: "arn:aws:sqs:us-east-1:1:t-dlq.fifo".into(),
            url: "https://q/t-dlq.fifo".into(),
            max_receive_count: Some(5),
        };
        let msg = not_empty("https://q/t.fifo", &dl, 2).to_string();
        for want in [
            "2 message(s)",
            "https://q/t-dlq.fifo",
            "after 5 receives",
            "ferry verify --repair",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
    }
}
