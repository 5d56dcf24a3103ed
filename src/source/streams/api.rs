//! The three DynamoDB Streams calls ferry makes, behind a trait so the shard scheduler and
//! consumers can be driven by a scripted stream in unit tests.

use std::future::Future;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;

use super::wire::{FastGetRecords, Images, RawRecord};

use crate::error::{Error, Result};

/// A stream's shards and whether it still takes records.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub shards: Vec<ShardInfo>,
    /// DISABLING or DISABLED: no new records will come; changes now go elsewhere (or nowhere).
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardInfo {
    pub id: String,
    pub parent: Option<String>,
    /// `SequenceNumberRange.StartingSequenceNumber`: the shard's first sequence number.
    pub first_seq: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartAt {
    TrimHorizon,
    /// Resume after a record already applied.
    After(String),
}

pub struct Page {
    pub records: Vec<RawRecord>,
    /// `None` at SHARD_END.
    pub next: Option<String>,
}

/// Contract: `list_shards` returns every shard currently in the stream (all pages); `records`
/// returns records of one shard in sequence order, each once along an iterator chain.
pub trait StreamApi: Send + Sync + 'static {
    fn list_shards(&self, stream_arn: &str) -> impl Future<Output = Result<Listing>> + Send;
    fn iterator(&self, stream_arn: &str, shard_id: &str, at: &StartAt) -> impl Future<Output = Result<String>> + Send;
    fn records(&self, iterator: &str) -> impl Future<Output = Result<Page>> + Send;
}

/// The Streams API through the SDK, reading new images in the given form.
pub struct SdkStreams(pub aws_sdk_dynamodbstreams::Client, pub Images);

/// GetRecords page size: the service maximum.
const PAGE: i32 = 1000;

impl StreamApi for SdkStreams {
    async fn list_shards(&self, stream_arn: &str) -> Result<Listing> {
        let mut out = Vec::new();
        let mut disabled = false;
        let mut start: Option<String> = None;
        loop {
            let resp = self
                .0
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| Error::from_sdk("DescribeStream", e))?;
            let desc = resp
                .stream_description
                .ok_or_else(|| Error::retryable("DescribeStream: empty description"))?;
            disabled |= matches!(
                desc.stream_status.as_ref().map(|s| s.as_str()),
                Some("DISABLING" | "DISABLED")
            );
            for s in desc.shards.unwrap_or_default() {
                if let Some(id) = s.shard_id {
                    out.push(ShardInfo {
                        id,
                        parent: s.parent_shard_id,
                        first_seq: s.sequence_number_range.and_then(|r| r.starting_sequence_number),
                    });
                }
            }
            match desc.last_evaluated_shard_id {
                Some(id) => start = Some(id),
                None => {
                    return Ok(Listing { shards: out, disabled });
                }
            }
        }
    }

    async fn iterator(&self, stream_arn: &str, shard_id: &str, at: &StartAt) -> Result<String> {
        let req = self.0.get_shard_iterator().stream_arn(stream_arn).shard_id(shard_id);
        let req = match at {
            StartAt::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartAt::After(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        };
        let resp = req.send().await.map_err(|e| Error::from_sdk("GetShardIterator", e))?;
        resp.shard_iterator
            .ok_or_else(|| Error::retryable("GetShardIterator returned no iterator"))
    }

    async fn records(&self, iterator: &str) -> Result<Page> {
        let slot = super::wire::Slot::default();
        let resp = self
            .0
            .get_records()
            .shard_iterator(iterator)
            .limit(PAGE)
            .customize()
            .interceptor(FastGetRecords {
                slot: slot.clone(),
                images: self.1,
            })
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetRecords", e))?;
        let records = match slot.lock().unwrap().take() {
            Some(Ok(records)) => records,
            Some(Err(e)) => {
                return Err(Error::fatal(format!(
                    "{e}. The page will not read differently on a retry, so the table stops here; its \
                     checkpoint stays before this page. Report it to the ferry maintainers with the \
                     versions of ferry and of the streams endpoint"
                )));
            }
            None => Vec::new(),
        };
        Ok(Page {
            records,
            next: resp.next_shard_iterator,
        })
    }
}
