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

/// Rounds of re-checks while a sync runs; keys whose source changed in every one are in flight.
const MAX_ROUNDS: usize = 3;

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
/// decides. With one, each round reads the source, waits until the sync is past that moment, reads
/// the destination, then the source again: a key whose destination matches the source's latest
/// state is equal; one whose source did not change over the round and whose destination still
/// differs is a real difference; one whose source changed is in flight and goes to the next round.
/// After [`MAX_ROUNDS`], keys whose source never stopped changing are counted as in flight. If the
/// sync does not get past the moment within `opts.recheck_wait`, the keys that still differ are
/// unsettled: a lagging sync is no proof either way.
pub(super) async fn settle(
    s: &Side,
    d: &Side,
    mut keys: Vec<KeyBytes>,
    watch: Option<&SyncWatch<'_>>,
    opts: &VerifyOptions,
) -> Result<Settled> {
    let mut findings = Vec::new();
    let mut unsettled = 0;
    for round in 0..MAX_ROUNDS {
        if keys.is_empty() {
            break;
        }
        let reads = read_round(s, d, &keys, watch, opts).await?;
        let behind = reads.behind;
        let (found, in_flight, lagged) = reads.judge(keys, &d.key_names);
        findings.extend(found);
        unsettled += lagged;
        keys = in_flight;
        if behind {
            tracing::warn!(table = %s.table, keys = unsettled, wait = ?opts.recheck_wait, "the sync stayed behind the re-check; these keys are not settled");
            break;
        }
        if round + 1 < MAX_ROUNDS && !keys.is_empty() {
            tracing::info!(table = %s.table, keys = keys.len(), "keys still changing at the source; re-checking");
        }
    }
    findings.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Settled {
        findings,
        in_flight: keys.len(),
        unsettled,
    })
}

type ByKey = HashMap<KeyBytes, Item>;

/// One round's reads of the keys.
struct Round {
    /// The source before waiting for the sync (only while one runs).
    before: Option<ByKey>,
    dst: ByKey,
    /// The source after the destination was read.
    after: ByKey,
    /// The sync did not get past the moment of the first read in time.
    behind: bool,
}

async fn read_round(
    s: &Side,
    d: &Side,
    keys: &[KeyBytes],
    watch: Option<&SyncWatch<'_>>,
    opts: &VerifyOptions,
) -> Result<Round> {
    // The same keys under each side's names (a transform may rename key attributes).
    let items: Vec<_> = keys.iter().filter_map(|k| k.to_item(&s.key_names)).collect();
    let d_items: Vec<_> = keys.iter().filter_map(|k| k.to_item(&d.key_names)).collect();
    let mut behind = false;
    let before = match watch {
        Some(w) => {
            let src = index(s.get(items.clone()).await?, s.item_keys());
            behind = !w.wait_past(now_ms(), opts.recheck_wait).await?;
            Some(src)
        }
        None => None,
    };
    let dst = index(d.get(d_items).await?, d.item_keys());
    let after = index(s.get(items).await?, s.item_keys());
    Ok(Round {
        before,
        dst,
        after,
        behind,
    })
}

impl Round {
    /// The keys that differ for real, those in flight (their source moved during the round), and
    /// how many differ but cannot be judged behind a lagging sync.
    fn judge(&self, keys: Vec<KeyBytes>, key_names: &[String]) -> (Vec<Finding>, Vec<KeyBytes>, usize) {
        let (mut findings, mut in_flight, mut unsettled) = (Vec::new(), Vec::new(), 0);
        for k in keys {
            let Some((kind, paths)) = diff::classify(self.after.get(&k), self.dst.get(&k)) else {
                continue;
            };
            if self.behind {
                unsettled += 1;
                continue;
            }
            let source_moved = self
                .before
                .as_ref()
                .is_some_and(|b| diff::classify(b.get(&k), self.after.get(&k)).is_some());
            if source_moved {
                in_flight.push(k);
            } else {
                let shown = self
                    .after
                    .get(&k)
                    .or(self.dst.get(&k))
                    .map(|i| crate::item::key_of(key_names, i));
                findings.push(Finding {
                    key: k,
                    kind,
                    paths,
                    shown,
                });
            }
        }
        (findings, in_flight, unsettled)
    }
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
