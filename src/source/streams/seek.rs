//! Finding a stream position by time: in one shard, the first record created at or after T.
//!
//! Reads the shard from TRIM_HORIZON and stops at the first record with
//! ApproximateCreationDateTime ≥ T. The result is expressed in the positions the store already
//! knows (resume after a sequence number, or from the trim horizon), so existing state files stay
//! readable. Stopping early is always on the safe side: an open shard's empty page ends the search,
//! and ferry then replays more, never less.

use super::api::{StartAt, StreamApi};
use crate::error::Result;
use crate::retry::{Policy, Retrier};

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
    // A one-off command's search: retried as long as it takes (GetRecords throttles at five
    // calls a second per shard), with no table to report to.
    let mut retrier = Retrier::new(Policy::DAEMON, format!("searching shard {shard_id}"));
    let mut iter = retrier
        .run(|| api.iterator(stream_arn, shard_id, &StartAt::TrimHorizon))
        .await?;
    let mut after: Option<(String, i64)> = None;
    loop {
        let page = retrier.run(|| api.records(&iter)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::streams::api::{Listing, Page};
    use crate::source::streams::wire::{Event, RawRecord};

    /// One shard of records with the given times, two records a page; an open shard ends in
    /// empty pages, a closed one at SHARD_END.
    struct Shard {
        times: Vec<i64>,
        open: bool,
    }

    impl StreamApi for Shard {
        async fn list_shards(&self, _: &str) -> Result<Listing> {
            unreachable!()
        }
        async fn iterator(&self, _: &str, _: &str, at: &StartAt) -> Result<String> {
            assert_eq!(*at, StartAt::TrimHorizon, "a search reads from the trim horizon");
            Ok("0".into())
        }
        async fn records(&self, iterator: &str) -> Result<Page> {
            let i: usize = iterator.parse().unwrap();
            let end = (i + 2).min(self.times.len());
            let records = (i..end)
                .map(|j| RawRecord {
                    event: Event::Modify,
                    seq: format!("{j:03}"),
                    time_ms: self.times[j],
                    keys: crate::item::RawKeys::default(),
                    new_image: None,
                })
                .collect();
            let next = (end < self.times.len() || self.open).then(|| end.to_string());
            Ok(Page { records, next })
        }
    }

    async fn at(times: &[i64], open: bool, t: i64) -> Seek {
        let s = Shard {
            times: times.to_vec(),
            open,
        };
        seek(&s, "arn", "shard", t).await.unwrap()
    }

    #[tokio::test]
    async fn finds_the_last_record_before_t_across_pages() {
        let times = [10, 20, 20, 30, 40];
        assert_eq!(
            at(&times, false, 5).await,
            Seek {
                after: None,
                done: false
            }
        );
        assert_eq!(
            at(&times, false, 10).await,
            Seek {
                after: None,
                done: false
            }
        );
        // Equal times (DynamoDB Local rounds to the minute): all of them are at or after t.
        assert_eq!(
            at(&times, false, 20).await,
            Seek {
                after: Some(("000".into(), 10)),
                done: false
            }
        );
        assert_eq!(
            at(&times, false, 35).await,
            Seek {
                after: Some(("003".into(), 30)),
                done: false
            }
        );
        // Everything older: a closed shard is finished, an open one resumes after its last record.
        assert_eq!(
            at(&times, false, i64::MAX).await,
            Seek {
                after: Some(("004".into(), 40)),
                done: true
            }
        );
        assert_eq!(
            at(&times, true, i64::MAX).await,
            Seek {
                after: Some(("004".into(), 40)),
                done: false
            }
        );
        assert_eq!(
            at(&[], true, 0).await,
            Seek {
                after: None,
                done: false
            }
        );
    }
}
