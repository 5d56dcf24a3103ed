//! Finding a stream position by time: in one shard, the first record created at or after T.
//!
//! Reads the shard from TRIM_HORIZON and stops at the first record with
//! ApproximateCreationDateTime ≥ T. The result is expressed in the positions the store already
//! knows (resume after a sequence number, or from the trim horizon), so existing state files stay
//! readable. Stopping early is always on the safe side: an open shard's empty page ends the search,
//! and ferry then replays more, never less.

use super::api::{StartAt, StreamApi};
use crate::error::Result;
use crate::retry::Policy;

/// Where a shard's consumer should resume so that it applies every record at or after T.
#[derive(Debug, Clone, PartialEq)]
pub struct Seek {
    /// The last record before T, to resume after (`None`: from the trim horizon).
    pub after: Option<(String, i64)>,
    /// The shard is closed and every record in it is older than T.
    pub done: bool,
}

/// Searches `shard_id` for the first record at or after `t_ms` (`i64::MAX`: the shard's end).
pub async fn seek<S: StreamApi>(api: &S, stream_arn: &str, shard_id: &str, t_ms: i64) -> Result<Seek> {
    let mut iter = crate::retry::retry(
        Policy::DAEMON,
        |_| {},
        || api.iterator(stream_arn, shard_id, &StartAt::TrimHorizon),
    )
    .await?;
    let mut after: Option<(String, i64)> = None;
    loop {
        let page = crate::retry::retry(Policy::DAEMON, |_| {}, || api.records(&iter)).await?;
        let empty = page.records.is_empty();
        for r in page.records {
            if r.time_ms >= t_ms {
                return Ok(Seek { after, done: false });
            }
            after = Some((r.seq, r.time_ms));
        }
        match page.next {
            None => return Ok(Seek { after, done: true }),
            Some(_) if empty => return Ok(Seek { after, done: false }),
            Some(next) => iter = next,
        }
    }
}
