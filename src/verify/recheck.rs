//! Re-checks of candidate keys by consistent point reads on both sides, timed against a running
//! `ferry sync` (seen through the state store it publishes to) so that changes still in flight are
//! not reported as differences.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::VerifyOptions;
use super::diff::{self, Kind};
use super::scan::Side;
use crate::checkpoint::StateStore;
use crate::clock::now_ms;
use crate::error::Result;
use crate::item::{Item, KeyBytes};

/// Rounds of re-checks while a sync runs. A key must differ, with neither side moving, in two
/// rounds in a row to be reported; keys still moving after the last round are in flight.
const MAX_ROUNDS: usize = 4;

/// A key that differs, with the attribute paths that do (for `Differing`).
#[derive(Debug, Clone)]
pub struct Finding {
    pub key: KeyBytes,
    pub kind: Kind,
    pub paths: Vec<String>,
    /// The key attributes as read (numbers spelled as the table returns them), for reports.
    pub shown: Option<crate::item::Item>,
}

/// The outcome of re-checks.
pub(super) struct Settled {
    pub findings: Vec<Finding>,
    /// Keys whose source changed during every round while a sync ran: their changes are on their
    /// way (each stream record carries the full item), so they are not differences.
    pub in_flight: usize,
    /// Keys that differed while the sync stayed behind the moment of the read for longer than
    /// the re-check wait: neither proven equal nor proven different.
    pub unsettled: usize,
}

/// Re-reads `keys` on both sides. Without a running sync, one consistent read of each side
/// decides. With one, reads form a chain: source, then per round wait until the sync is past the
/// previous source read, read the destination, read the source again. A key whose destination
/// matches the source's latest state is equal.
///
/// Two reads of the source cannot prove it held still between them: a hot key deleted, written
/// and deleted again reads "absent" both times while the destination shows the write in between.
/// So one quiet round proves nothing; a key is reported only when it differs in two rounds in a row
/// with the source unchanged across three reads and the destination unchanged across two. The
/// destination is the sharper witness: it was read after the sync passed the previous source read,
/// so any change it shows came from a source write made since. A key that moves goes on to the next
/// round; after [`MAX_ROUNDS`] the keys still moving are in flight. If the sync does not get past a
/// read within `opts.recheck_wait`, the keys that still differ are unsettled: a lagging sync is no
/// proof either way.
pub(super) async fn settle(
    s: &Side,
    d: &Side,
    keys: Vec<KeyBytes>,
    watch: Option<&SyncWatch<'_>>,
    opts: &VerifyOptions,
) -> Result<Settled> {
    let Some(watch) = watch else {
        let dst = read(d, &keys).await?;
        let src = read(s, &keys).await?;
        let findings = keys
            .into_iter()
            .filter_map(|k| {
                let (a, b) = (src.get(&k), dst.get(&k));
                finding(k, a, b, &d.key_names)
            })
            .collect();
        return Ok(Settled {
            findings,
            in_flight: 0,
            unsettled: 0,
        });
    };
    let mut src = read(s, &keys).await?;
    let mut open: Vec<Candidate> = keys.into_iter().map(Candidate::new).collect();
    let (mut findings, mut unsettled) = (Vec::new(), 0);
    for round in 0..MAX_ROUNDS {
        if open.is_empty() {
            break;
        }
        let keys: Vec<KeyBytes> = open.iter().map(|c| c.key.clone()).collect();
        let behind = !watch.wait_past(now_ms(), opts.recheck_wait).await?;
        let dst = read(d, &keys).await?;
        let after = read(s, &keys).await?;
        let reads = Reads {
            before: &src,
            dst: &dst,
            after: &after,
            behind,
        };
        let judged = reads.judge(open, &d.key_names);
        findings.extend(judged.findings);
        unsettled += judged.unsettled;
        open = judged.open;
        src = after;
        if behind {
            tracing::warn!(table = %s.table, keys = unsettled, wait = ?opts.recheck_wait, "the sync stayed behind the re-check; these keys are not settled");
            break;
        }
        if round + 1 < MAX_ROUNDS && !open.is_empty() {
            tracing::info!(table = %s.table, keys = open.len(), "keys still changing, or not yet proven different; re-checking");
        }
    }
    findings.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Settled {
        findings,
        in_flight: open.len(),
        unsettled,
    })
}

type ByKey = HashMap<KeyBytes, Item>;

/// Reads `keys` from one side (by its own names: a transform may rename key attributes).
async fn read(side: &Side, keys: &[KeyBytes]) -> Result<ByKey> {
    let items: Vec<_> = keys.iter().filter_map(|k| k.to_item(&side.key_names)).collect();
    Ok(index(side.get(items).await?, side.item_keys()))
}

/// A key under re-check while a sync runs.
struct Candidate {
    key: KeyBytes,
    /// The destination as read in the previous round, if the key differed then with its source
    /// holding still: one more such round, destination unchanged, proves the difference.
    quiet: Option<Option<Item>>,
}

impl Candidate {
    fn new(key: KeyBytes) -> Candidate {
        Candidate { key, quiet: None }
    }
}

/// One round's reads of the keys.
struct Reads<'a> {
    /// The source as read at the end of the previous round (or before the first).
    before: &'a ByKey,
    /// The destination, read after the sync passed the moment of `before`.
    dst: &'a ByKey,
    /// The source, read after the destination.
    after: &'a ByKey,
    /// The sync did not get past the moment of `before` in time.
    behind: bool,
}

/// What one round decided.
struct Judged {
    findings: Vec<Finding>,
    /// Keys going on to the next round.
    open: Vec<Candidate>,
    unsettled: usize,
}

impl Reads<'_> {
    fn judge(&self, keys: Vec<Candidate>, key_names: &[String]) -> Judged {
        let mut j = Judged {
            findings: Vec::new(),
            open: Vec::new(),
            unsettled: 0,
        };
        for mut c in keys {
            let (src, dst) = (self.after.get(&c.key), self.dst.get(&c.key));
            if diff::classify(src, dst).is_none() {
                continue;
            }
            if self.behind {
                j.unsettled += 1;
                continue;
            }
            let source_moved = diff::classify(self.before.get(&c.key), src).is_some();
            if source_moved {
                c.quiet = None;
                j.open.push(c);
                continue;
            }
            let dst_held = c
                .quiet
                .as_ref()
                .is_some_and(|q| diff::classify(q.as_ref(), dst).is_none());
            if dst_held {
                j.findings.extend(finding(c.key, src, dst, key_names));
            } else {
                c.quiet = Some(dst.cloned());
                j.open.push(c);
            }
        }
        j
    }
}

/// The finding for `key` if its two sides differ.
fn finding(key: KeyBytes, src: Option<&Item>, dst: Option<&Item>, key_names: &[String]) -> Option<Finding> {
    let (kind, paths) = diff::classify(src, dst)?;
    let shown = src.or(dst).map(|i| crate::item::key_of(key_names, i));
    Some(Finding {
        key,
        kind,
        paths,
        shown,
    })
}

fn index(items: Vec<Item>, key_names: &[String]) -> ByKey {
    items
        .into_iter()
        .filter_map(|i| KeyBytes::of(key_names, &i).map(|k| (k, i)))
        .collect()
}

/// A running `ferry sync` on the table, seen through the state store it publishes to every second.
pub(super) struct SyncWatch<'a> {
    store: &'a dyn StateStore,
    table: String,
}

/// The daemon publishes at least once a second; older than this, it is not running.
const STALE_MS: i64 = 5_000;

impl<'a> SyncWatch<'a> {
    /// The daemon syncing `table`, if one publishes to `store` now.
    pub async fn of(store: Option<&'a dyn StateStore>, table: &str) -> Option<Self> {
        let store = store?;
        let row = store.table(table).await.ok()??;
        let running = now_ms() - row.updated_ms < STALE_MS && row.phase.as_str() == "streaming";
        running.then(|| SyncWatch {
            store,
            table: table.to_string(),
        })
    }

    /// Waits until the daemon has applied everything written to the source before `t_ms`: its
    /// applied-as-of watermark passed `t_ms`, or every shard it reads has applied a record created
    /// after `t_ms`. Also ends when the daemon stops publishing (nothing more will come: what differs
    /// then is a difference). Returns false if `max` passed first.
    async fn wait_past(&self, t_ms: i64, max: Duration) -> Result<bool> {
        let deadline = Instant::now() + max;
        loop {
            let Some(row) = self.store.table(&self.table).await? else {
                return Ok(true);
            };
            let open: Vec<_> = self
                .store
                .shards(&self.table)
                .await?
                .into_iter()
                .filter(|s| !s.done)
                .collect();
            let shards_past = !open.is_empty() && open.iter().all(|s| s.last_record_ms.is_some_and(|m| m > t_ms));
            let past =
                row.applied_as_of_ms.is_some_and(|c| c >= t_ms) || shards_past || now_ms() - row.updated_ms > STALE_MS;
            if past {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue as Av;

    use super::*;

    fn names() -> Vec<String> {
        vec!["pk".to_string()]
    }

    fn item(v: &str) -> Item {
        Item::from([("pk".into(), Av::S("k".into())), ("v".into(), Av::S(v.into()))])
    }

    fn key() -> KeyBytes {
        KeyBytes::of(&names(), &item("")).unwrap()
    }

    fn side(state: Option<&str>) -> ByKey {
        state.map(|v| (key(), item(v))).into_iter().collect()
    }

    /// Runs the chain of rounds over the states read: the source before the first round, then per
    /// round (destination, source). Returns the round at which the key was reported, or the
    /// number of keys still open at the end.
    fn rounds(first: Option<&str>, reads: &[(Option<&str>, Option<&str>)]) -> Result<usize, usize> {
        let mut before = side(first);
        let mut open = vec![Candidate::new(key())];
        for (n, (dst, src)) in reads.iter().enumerate() {
            let (dst, after) = (side(*dst), side(*src));
            let r = Reads {
                before: &before,
                dst: &dst,
                after: &after,
                behind: false,
            };
            let j = r.judge(open, &names());
            if !j.findings.is_empty() {
                return Ok(n + 1);
            }
            open = j.open;
            before = after;
        }
        Err(open.len())
    }

    #[test]
    fn a_key_deleted_written_and_deleted_again_between_reads_is_not_reported() {
        // Absent at both source reads; the destination caught the write in between. The next
        // round's destination shows the delete applied.
        assert_eq!(rounds(None, &[(Some("w1"), None), (None, None)]), Err(0));
        // Again and again (a hot key): the destination never holds still, so never a finding.
        let hot = [
            (Some("w1"), None),
            (Some("w2"), None),
            (Some("w3"), None),
            (Some("w4"), None),
        ];
        assert_eq!(rounds(None, &hot), Err(1), "still in flight after the last round");
    }

    #[test]
    fn a_real_difference_is_reported_on_the_second_quiet_round() {
        assert_eq!(rounds(None, &[(Some("x"), None), (Some("x"), None)]), Ok(2));
        assert_eq!(
            rounds(Some("a"), &[(Some("b"), Some("a")), (Some("b"), Some("a"))]),
            Ok(2)
        );
        assert_eq!(rounds(Some("a"), &[(None, Some("a")), (None, Some("a"))]), Ok(2));
        // A round where the source moved starts the count again.
        let moved = [
            (None, Some("a")),
            (None, Some("b")),
            (None, Some("b")),
            (None, Some("b")),
        ];
        assert_eq!(rounds(Some("a"), &moved), Ok(4));
    }

    #[test]
    fn a_key_that_catches_up_is_equal() {
        assert_eq!(
            rounds(Some("a"), &[(Some("old"), Some("b")), (Some("b"), Some("b"))]),
            Err(0)
        );
    }
}
