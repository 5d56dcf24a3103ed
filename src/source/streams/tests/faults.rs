//! The stream task through GetRecords faults, in paused time: iterators that expire (re-opened
//! after the last record read) and a throttle storm. Nothing may be lost, and nothing repeated
//! past the checkpoint.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{RecordingIo, Scripted, spawn_tree, tree};
use crate::checkpoint::Store;
use crate::error::{Error, Kind, Result};
use crate::telemetry::TableStats;

/// The error DynamoDB Streams answers for an iterator older than 15 minutes.
fn expired() -> Error {
    use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
    use aws_smithy_types::error::ErrorMetadata;
    let meta = ErrorMetadata::builder()
        .code("ExpiredIteratorException")
        .message("Iterator expired")
        .build();
    let raw = aws_smithy_runtime_api::http::Response::new(
        400u16.try_into().unwrap(),
        aws_smithy_types::body::SdkBody::empty(),
    );
    let err = aws_smithy_runtime_api::client::result::SdkError::service_error(GetRecordsError::generic(meta), raw);
    Error::from_sdk("GetRecords", err)
}

/// The scripted faults of one GetRecords call.
pub(super) fn inject(s: &Scripted) -> Result<()> {
    let n = {
        let mut calls = s.record_calls.lock().unwrap();
        *calls += 1;
        *calls
    };
    let mut throttles = s.throttle_records.lock().unwrap();
    if *throttles > 0 {
        *throttles -= 1;
        return Err(Error::new(
            Kind::Throttled,
            "GetRecords: ProvisionedThroughputExceededException",
        ));
    }
    if s.expire_every > 0 && n % s.expire_every == 0 {
        return Err(expired());
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn expired_iterators_and_a_throttle_storm_lose_and_repeat_nothing() {
    assert_eq!(expired().code(), Some("ExpiredIteratorException"));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let io = RecordingIo::default();
    let (mut script, expected) = tree(io.clone());
    script.expire_every = 5;
    *script.throttle_records.lock().unwrap() = 25;
    let (stats, stop) = (Arc::new(TableStats::default()), CancellationToken::new());
    let (run, api) = spawn_tree(script, &io, &store, &stats, &stop);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let done = store.shards("T").unwrap().iter().filter(|s| s.done).count();
        if done == 4 && io.0.lock().unwrap().current == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not converged: {done} shards done"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    run.await.unwrap().unwrap();

    assert!(
        stats.throttles.load(Relaxed) >= 25,
        "the storm was retried as throttles"
    );
    let calls = *api.record_calls.lock().unwrap();
    assert!(calls >= 2 * 5, "iterators expired along the way ({calls} calls)");
    let d = io.0.lock().unwrap();
    for (k, h) in &d.history {
        assert!(
            h.windows(2).all(|w| w[0] < w[1]),
            "key {k} saw values out of order or twice: {h:?}"
        );
    }
    let total: i64 = store.shards("T").unwrap().iter().map(|s| s.records).sum();
    assert_eq!(
        total,
        40 + 30 + 30 + 20 + 20 + 25,
        "every record acknowledged exactly once"
    );
}
