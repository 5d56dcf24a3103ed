//! The forwarder Lambda on the rig: reads a table's stream from DynamoDB Local, turns each
//! GetRecords page into the Lambda event a stream trigger delivers, and calls the forwarder with
//! Lambda's retry rule for `ReportBatchItemFailures` (retry the batch from the reported record).

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Record, Shard, ShardIteratorType};
use ferry::item::json::item_to_json;
use ferry::source::sqs::forwarder::{Sender, Target, forward};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::convert::from_stream_item;

/// What a pump did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pumped {
    pub records: u64,
    pub invocations: u64,
    /// Invocations that reported a batch item failure (and were retried).
    pub partial_failures: u64,
    pub offloaded: u64,
}

/// The stream record as a Lambda DynamoDB event record.
pub fn lambda_record(r: &Record, stream_arn: &str) -> Value {
    let d = r.dynamodb.clone().expect("stream record body");
    let img = |m: Option<std::collections::HashMap<_, _>>| {
        m.map(|m| item_to_json(&from_stream_item(m).expect("stream image")))
    };
    let mut body = json!({
        "ApproximateCreationDateTime": d.approximate_creation_date_time.map(|t| t.as_secs_f64()),
        "Keys": img(d.keys.clone()),
        "SequenceNumber": d.sequence_number,
        "SizeBytes": d.size_bytes,
        "StreamViewType": d.stream_view_type.as_ref().map(|v| v.as_str().to_string()),
    });
    if let Some(n) = img(d.new_image) {
        body["NewImage"] = n;
    }
    if let Some(o) = img(d.old_image) {
        body["OldImage"] = o;
    }
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|e| e.as_str().to_string()),
        "eventVersion": r.event_version,
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    })
}

/// Follows the stream's shards (parents before children) from TRIM_HORIZON and forwards every
/// record, in batches of at most `batch` records. Returns once `stop` is cancelled and a read of
/// every open shard came back empty with nothing pending (everything written so far is forwarded).
pub async fn pump<S: Sender>(
    streams: &Client,
    stream_arn: &str,
    sender: &S,
    target: &Target,
    batch: usize,
    stop: CancellationToken,
) -> Result<Pumped, String> {
    let mut done = Pumped::default();
    let mut reader = ShardReader::default();
    loop {
        let desc = streams
            .describe_stream()
            .stream_arn(stream_arn)
            .send()
            .await
            .map_err(|e| format!("DescribeStream: {e:?}"))?;
        let shards = desc
            .stream_description
            .map(|s| s.shards.unwrap_or_default())
            .unwrap_or_default();
        let stopping = stop.is_cancelled();
        let mut all_idle = true;
        for s in &shards {
            let records = reader.read(streams, stream_arn, s, &shards, batch).await?;
            if !records.is_empty() {
                all_idle = false;
                let events: Vec<Value> = records.iter().map(|r| lambda_record(r, stream_arn)).collect();
                invoke(sender, target, events, &mut done).await?;
            }
        }
        if stopping && all_idle {
            return Ok(done);
        }
        if all_idle {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Where the pump is in each shard.
#[derive(Default)]
struct ShardReader {
    /// Shards read to their end.
    finished: Vec<String>,
    /// The next iterator per shard started; `None` once the shard is finished.
    iters: HashMap<String, Option<String>>,
}

impl ShardReader {
    /// The next page of shard `s` (of `shards`), or nothing while its parent is unfinished or
    /// once it is finished itself.
    async fn read(
        &mut self,
        streams: &Client,
        stream_arn: &str,
        s: &Shard,
        shards: &[Shard],
        batch: usize,
    ) -> Result<Vec<Record>, String> {
        let id = s.shard_id.clone().unwrap_or_default();
        let parent_pending = s
            .parent_shard_id
            .as_ref()
            .is_some_and(|p| shards.iter().any(|x| x.shard_id.as_ref() == Some(p)) && !self.finished.contains(p));
        if self.finished.contains(&id) || parent_pending {
            return Ok(Vec::new());
        }
        let it = match self.iters.get(&id) {
            Some(Some(it)) => it.clone(),
            Some(None) => return Ok(Vec::new()),
            None => streams
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(&id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| format!("GetShardIterator: {e:?}"))?
                .shard_iterator
                .ok_or("no shard iterator")?,
        };
        let page = streams
            .get_records()
            .shard_iterator(&it)
            .limit(batch as i32)
            .send()
            .await
            .map_err(|e| format!("GetRecords: {e:?}"))?;
        match page.next_shard_iterator {
            Some(next) => {
                self.iters.insert(id, Some(next));
            }
            None => {
                self.finished.push(id.clone());
                self.iters.insert(id, None);
            }
        }
        Ok(page.records.unwrap_or_default())
    }
}

/// One Lambda delivery of `events`, retried from the reported failure until all are forwarded.
async fn invoke<S: Sender>(
    sender: &S,
    target: &Target,
    mut events: Vec<Value>,
    done: &mut Pumped,
) -> Result<(), String> {
    loop {
        done.invocations += 1;
        let r = forward(sender, target, &json!({ "Records": events }))
            .await
            .map_err(|e| format!("forwarder invocation failed: {e}"))?;
        done.offloaded += r.offloaded as u64;
        let Some(seq) = r.failed_at else {
            done.records += events.len() as u64;
            return Ok(());
        };
        done.partial_failures += 1;
        let from = events
            .iter()
            .position(|e| e["dynamodb"]["SequenceNumber"] == seq.as_str())
            .ok_or_else(|| format!("the forwarder reported an unknown sequence number {seq}"))?;
        done.records += from as u64;
        events.drain(..from);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
