//! Where changes come from: DynamoDB Streams or a FIFO SQS queue that buffers them (`sqs`).

pub mod sqs;
pub mod streams;

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
        let (records, _) = super::streams::wire::parse_get_records(page).unwrap();
        let ack = Arc::new(crate::checkpoint::OrderedAck::new(None));
        let (changes, last) = super::streams::consumer::page_changes(
            records,
            super::streams::View::NewImage,
            &["pk".to_string()],
            i64::MAX / 2,
            &ack,
        )
        .unwrap();
        assert_eq!(last.as_deref(), Some("2"));
        let written: Vec<_> = changes
            .iter()
            .map(|c| match &c.op {
                crate::apply::Op::Put(i) => i["pk"].as_s().unwrap().clone(),
                _ => panic!("a put"),
            })
            .collect();
        assert_eq!(written, ["untimed"]);
    }
}
