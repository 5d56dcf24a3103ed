//! Where changes come from: DynamoDB Streams or a FIFO SQS queue that buffers them (`sqs`), each
//! a [`ChangeSource`]; and the [`TableContext`] that change sources and bulk loaders
//! ([`crate::snapshot::BulkLoader`]) are run with.

pub mod sqs;
pub mod streams;

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::apply::Applier;
use crate::checkpoint::StateStore;
use crate::error::Result;
use crate::telemetry::TableStats;

/// What one table's bulk loader and change source share: which table, its item key, where
/// positions are saved, its counters, its stop, and how to open the apply path to the destination.
#[derive(Clone)]
pub struct TableContext {
    /// The source table's name (the state store's key).
    pub table: String,
    pub key_names: Arc<[String]>,
    pub store: Arc<dyn StateStore>,
    pub stats: Arc<TableStats>,
    /// The run's stop: cancelled on shutdown.
    pub stop: CancellationToken,
    applier: Arc<dyn Fn() -> Applier + Send + Sync>,
}

impl TableContext {
    pub fn new(
        table: String,
        key_names: Arc<[String]>,
        store: Arc<dyn StateStore>,
        stats: Arc<TableStats>,
        stop: CancellationToken,
        applier: impl Fn() -> Applier + Send + Sync + 'static,
    ) -> TableContext {
        TableContext {
            table,
            key_names,
            store,
            stats,
            stop,
            applier: Arc::new(applier),
        }
    }

    /// The same context with a stop of its own, which this stage may cancel (a loader stops its
    /// other readers on a first error) and which the run's stop still cancels.
    pub fn child(&self) -> TableContext {
        TableContext {
            stop: self.stop.child_token(),
            ..self.clone()
        }
    }

    /// A context for tests that pass their own apply path to the stage they run.
    #[cfg(test)]
    pub fn for_test(
        table: &str,
        key_names: &[&str],
        store: Arc<dyn StateStore>,
        stats: Arc<TableStats>,
        stop: CancellationToken,
    ) -> TableContext {
        let key_names: Vec<String> = key_names.iter().map(|k| k.to_string()).collect();
        TableContext::new(table.into(), key_names.into(), store, stats, stop, || {
            panic!("this test passes its own apply path")
        })
    }

    /// A new apply path to the destination (its lanes start now; finish it to drain them).
    pub fn applier(&self) -> Applier {
        (self.applier)()
    }
}

/// Hands a table's changes on to the destination, after its bulk load, until stopped.
///
/// Contract:
/// - **Reads** the changes made to the source table since the capture point (a DynamoDB stream's
///   shards, or the SQS queue a forwarder fills from that stream), dropping those older than the
///   replay point ([`before_replay_point`]).
/// - **Order**: changes to one item are applied in the order the source made them (a shard is read
///   after its parent; an SQS message group is received in order); items are independent.
/// - **Acknowledges** (saves a shard's position, deletes a message) only what the apply path made
///   durable, and everything before it, so a restart replays at most what was in flight.
/// - **Returns** `Ok(())` when its context's stop is cancelled, once in-flight writes are drained and
///   positions flushed; `Err` on a fatal error (also drained and flushed). It never completes on
///   its own: a source table always may change.
///
/// A source is built with its table's [`TableContext`] and opens its apply path from it.
pub trait ChangeSource {
    fn run(self) -> impl Future<Output = Result<()>> + Send;
}

impl<S: streams::api::StreamApi> ChangeSource for streams::StreamTask<S> {
    async fn run(self) -> Result<()> {
        let applier = self.ctx.applier();
        streams::StreamTask::run(self, applier).await
    }
}

impl ChangeSource for sqs::consumer::SqsTask {
    async fn run(self) -> Result<()> {
        let applier = self.ctx.applier();
        sqs::consumer::SqsTask::run(self, applier).await
    }
}

/// Whether a change is older than the replay point, so already in the snapshot and skipped. A
/// record without a creation time (0: the field is absent) is never skipped: applying a change
/// twice converges, skipping one does not.
pub fn before_replay_point(time_ms: i64, replay_from_ms: i64) -> bool {
    time_ms > 0 && time_ms < replay_from_ms
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_without_a_time_is_applied() {
        assert!(!super::before_replay_point(0, 1_700_000_000_000));
        assert!(super::before_replay_point(1_699_999_999_999, 1_700_000_000_000));
        assert!(!super::before_replay_point(1_700_000_000_000, 1_700_000_000_000));
    }

    /// Through the shard consumer's page step: a record with no ApproximateCreationDateTime is
    /// written even when the replay point is far in the future; a timed older one is skipped.
    #[test]
    fn a_stream_record_without_a_creation_time_is_never_skipped() {
        use std::sync::Arc;
        let page = br#"{"Records":[
          {"eventID":"1","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":1000,
             "Keys":{"pk":{"S":"old"}},"NewImage":{"pk":{"S":"old"}},"SequenceNumber":"1"}},
          {"eventID":"2","eventName":"INSERT","dynamodb":{
             "Keys":{"pk":{"S":"untimed"}},"NewImage":{"pk":{"S":"untimed"}},"SequenceNumber":"2"}}
        ],"NextShardIterator":"it"}"#;
        let (records, _) = super::streams::wire::parse_get_records(page, Default::default()).unwrap();
        let ack = Arc::new(crate::checkpoint::OrderedAck::new(None));
        let (changes, last) = super::streams::consumer::page_changes(
            records,
            crate::discover::View::NewImage,
            &["pk".to_string()],
            i64::MAX / 2,
            &ack,
        )
        .unwrap();
        assert_eq!(last.as_deref(), Some("2"));
        let written: Vec<_> = changes
            .iter()
            .map(|c| match &c.op {
                crate::apply::Op::PutRaw(i) => i.to_item()["pk"].as_s().unwrap().clone(),
                _ => panic!("a put"),
            })
            .collect();
        assert_eq!(written, ["untimed"]);
    }
}
