//! `ferry checkpoint set`: moving a table's stream positions by hand (to replay after damage at the
//! destination, or to skip ahead).
//!
//! Moving is safe in both directions as far as ordering goes: every stream record carries the
//! item's full final state, so replaying an in-order suffix from any earlier point converges to
//! the source. Moving forward skips changes: that is the operator's explicit choice.

use std::collections::{HashMap, HashSet};

use crate::checkpoint::{ShardRow, StateStore, TableRow};
use crate::clock::fmt_ms;
use crate::error::{Error, Result};
use crate::source::streams::api::StreamApi;
use crate::source::streams::seek::{Seek, seek};

/// Where `ferry checkpoint set` moves a table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The first record at or after this time (ms), in every shard.
    At(i64),
    /// The oldest record the stream still holds.
    TrimHorizon,
    /// After the newest record in the stream now.
    Latest,
}

/// A computed move, shown to the operator before it is written.
pub struct SetPlan {
    pub table: TableRow,
    pub target: Target,
    pub shards: Vec<ShardRow>,
}

/// Computes the new position of every shard (the caller keeps daemons off the table: see
/// [`super::guard`]). Refused before the snapshot is finished, and when the target lies in a
/// shard that has been trimmed away.
pub async fn plan_set<S: StreamApi>(store: &dyn StateStore, api: &S, table: &str, target: Target) -> Result<SetPlan> {
    let row = stored_table(store, table).await?;
    let arn = match (&row.stream_arn, row.snapshot_done) {
        (Some(arn), true) => arn.clone(),
        _ => {
            return Err(Error::fatal(format!(
                "table {table:?} has not finished its snapshot yet; a stream position can be moved once it streams"
            )));
        }
    };
    let listed = api.list_shards(&arn).await?.shards;
    let present: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let t_ms = match target {
        Target::At(t) => t,
        Target::TrimHorizon => i64::MIN,
        Target::Latest => i64::MAX,
    };
    let saved = store.shards(table).await?;
    let mut rows = trimmed_rows(table, &saved, &present, target, t_ms)?;
    for s in &listed {
        let found = if target == Target::TrimHorizon {
            Seek {
                after: None,
                done: false,
            }
        } else {
            seek(api, &arn, &s.id, t_ms).await?
        };
        let records = saved.iter().find(|r| r.shard_id == s.id).map_or(0, |r| r.records);
        rows.insert(
            s.id.clone(),
            ShardRow {
                shard_id: s.id.clone(),
                parent_id: s.parent.clone(),
                position: found.after.as_ref().map(|(seq, _)| seq.clone()),
                last_record_ms: found.after.as_ref().map(|(_, t)| *t),
                done: found.done,
                records,
                captured: false,
            },
        );
    }
    reopen_descendants(&mut rows);
    let mut shards: Vec<ShardRow> = rows.into_values().collect();
    shards.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    Ok(SetPlan {
        table: row,
        target,
        shards,
    })
}

async fn stored_table(store: &dyn StateStore, table: &str) -> Result<TableRow> {
    store.table(table).await?.ok_or_else(|| {
        Error::fatal(format!(
            "table {table:?} is not in the state store (has `ferry sync` run?)"
        ))
    })
}

/// The saved shards trimmed from the stream (not in `present`), kept as they are. Fine only if
/// everything in them is older than the target: records at or after it could not be replayed.
fn trimmed_rows(
    table: &str,
    saved: &[ShardRow],
    present: &HashSet<&str>,
    target: Target,
    t_ms: i64,
) -> Result<HashMap<String, ShardRow>> {
    let mut rows = HashMap::new();
    for old in saved.iter().filter(|s| !present.contains(s.shard_id.as_str())) {
        let before = target != Target::TrimHorizon && old.done && old.last_record_ms.is_none_or(|m| m < t_ms);
        if !before && target != Target::TrimHorizon {
            return Err(Error::fatal(format!(
                "table {table}: shard {} holds records at or after the target but has been trimmed from \
                 the stream (retention is 24 h): they cannot be replayed. Pick a later time, or re-run the \
                 table from a fresh snapshot.",
                old.shard_id
            )));
        }
        rows.insert(old.shard_id.clone(), old.clone());
    }
    Ok(rows)
}

/// A shard below an unfinished one must not be "done": per key, its records come after its
/// parent's. Such shards are read again from their start (more replay, never less).
fn reopen_descendants(rows: &mut HashMap<String, ShardRow>) {
    loop {
        let open: HashSet<String> = rows.values().filter(|r| !r.done).map(|r| r.shard_id.clone()).collect();
        let mut changed = false;
        for r in rows.values_mut() {
            if r.done && r.parent_id.as_ref().is_some_and(|p| open.contains(p)) {
                r.done = false;
                r.position = None;
                r.last_record_ms = None;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

impl SetPlan {
    pub fn describe(&self) -> String {
        let to = match self.target {
            Target::At(t) => format!("the first record at or after {}", fmt_ms(t)),
            Target::TrimHorizon => "the trim horizon (oldest record in the stream)".into(),
            Target::Latest => "the newest record now (everything in the stream is skipped)".into(),
        };
        let mut s = format!("table {}: move the stream position to {to}\n", self.table.name);
        for r in &self.shards {
            s.push_str(&format!(
                "  {} -> {}\n",
                r.shard_id,
                if r.done {
                    "done (every record is older)".to_string()
                } else {
                    match (&r.position, r.last_record_ms) {
                        (Some(p), Some(t)) => format!("after {p} ({})", fmt_ms(t)),
                        (Some(p), None) => format!("after {p}"),
                        (None, _) => "from its start".to_string(),
                    }
                }
            ));
        }
        s
    }

    /// Writes the new positions. Stream records older than the target are no longer taken as
    /// covered by the snapshot (a rewind must replay them).
    pub async fn apply(mut self, store: &dyn StateStore) -> Result<()> {
        let from = match self.target {
            Target::At(t) => t,
            Target::TrimHorizon => 0,
            Target::Latest => self.table.replay_from_ms.unwrap_or(0),
        };
        self.table.replay_from_ms = Some(self.table.replay_from_ms.map_or(from, |r| r.min(from)));
        self.table.error = None;
        store.put_shards(&self.table.name, &self.shards).await?;
        store.put_table(&self.table).await?;
        Ok(())
    }
}

/// A move of a table fed by the SQS change buffer (`change_source = "sqs"`). The queue has no
/// position to rewind: its only position is the replay point, before which records are dropped.
/// Moving it earlier keeps more of what is still queued (messages already deleted are gone);
/// moving it later drops more.
pub struct QueueSetPlan {
    pub table: String,
    pub replay_from_ms: i64,
}

pub async fn plan_set_queue(store: &dyn StateStore, table: &str, target: Target) -> Result<QueueSetPlan> {
    stored_table(store, table).await?;
    let replay_from_ms = match target {
        Target::At(t) => t,
        Target::TrimHorizon => 0,
        Target::Latest => crate::clock::now_ms(),
    };
    Ok(QueueSetPlan {
        table: table.to_string(),
        replay_from_ms,
    })
}

impl QueueSetPlan {
    pub fn describe(&self) -> String {
        format!(
            "table {}: drop queued records created before {}; apply the rest (messages already \
             deleted from the queue cannot be replayed)\n",
            self.table,
            fmt_ms(self.replay_from_ms)
        )
    }

    pub async fn apply(self, store: &dyn StateStore) -> Result<()> {
        store.set_replay_from(&self.table, self.replay_from_ms).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, parent: Option<&str>, done: bool) -> ShardRow {
        ShardRow {
            shard_id: id.into(),
            parent_id: parent.map(str::to_string),
            position: Some("9".into()),
            last_record_ms: Some(1),
            done,
            records: 0,
            captured: false,
        }
    }

    #[test]
    fn shards_below_an_unfinished_shard_are_read_again_from_their_start() {
        let mut rows: HashMap<String, ShardRow> = [
            row("root", None, false),
            row("a", Some("root"), true),
            row("a1", Some("a"), true),
            row("other", None, true),
        ]
        .into_iter()
        .map(|r| (r.shard_id.clone(), r))
        .collect();
        reopen_descendants(&mut rows);
        for id in ["a", "a1"] {
            assert!(!rows[id].done, "{id}");
            assert_eq!(rows[id].position, None, "{id}");
        }
        assert!(rows["other"].done);
        assert_eq!(rows["root"].position.as_deref(), Some("9"));
    }

    #[test]
    fn a_trimmed_shard_is_kept_only_if_all_its_records_are_older_than_the_target() {
        let saved = [row("gone", None, true), row("here", None, false)];
        let present: HashSet<&str> = ["here"].into();
        // Its last record (ms 1) is older than the target: kept as it is.
        let kept = trimmed_rows("T", &saved, &present, Target::At(2), 2).unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["gone"]);
        // At or after the target: those records cannot be replayed.
        let err = trimmed_rows("T", &saved, &present, Target::At(1), 1).unwrap_err();
        assert!(err.to_string().contains("shard gone holds records"), "{err}");
        // The trim horizon replays what the stream still holds: the trimmed shard is history.
        assert!(trimmed_rows("T", &saved, &present, Target::TrimHorizon, i64::MIN).is_ok());
    }
}
