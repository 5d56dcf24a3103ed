//! `ferry checkpoint list` and `ferry checkpoint set`: reading and moving a table's stream
//! positions by hand (to replay after damage at the destination, or to skip ahead).
//!
//! Moving is safe in both directions as far as ordering goes: every stream record carries the
//! item's full final state, so replaying an in-order suffix from any earlier point converges to
//! the source. Moving forward skips changes: that is the operator's explicit choice.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::lock::DaemonLock;
use super::store::{ShardRow, Store, TableRow};
use crate::clock::fmt_ms;
use crate::error::{Error, Result};
use crate::source::streams::api::StreamApi;
use crate::source::streams::seek::seek;

#[derive(Debug, Clone, Serialize)]
pub struct TableCheckpoints {
    pub table: String,
    pub phase: String,
    pub stream_arn: Option<String>,
    /// Records created before this are taken as already in the snapshot.
    pub replay_from: Option<String>,
    pub shards: Vec<ShardCheckpoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardCheckpoint {
    pub shard_id: String,
    pub parent_id: Option<String>,
    /// Sequence number of the last applied record (resume after it); `null`: from the trim horizon.
    pub position: Option<String>,
    /// ApproximateCreationDateTime of the last applied record.
    pub last_record_time: Option<String>,
    pub done: bool,
    pub records: i64,
}

pub fn list(store: &Store, tables: &[String]) -> Result<Vec<TableCheckpoints>> {
    let mut out = Vec::new();
    for name in tables {
        let Some(t) = store.table(name)? else { continue };
        let shards = store
            .shards(name)?
            .into_iter()
            .map(|s| ShardCheckpoint {
                shard_id: s.shard_id,
                parent_id: s.parent_id,
                position: s.position,
                last_record_time: s.last_record_ms.map(fmt_ms),
                done: s.done,
                records: s.records,
            })
            .collect();
        out.push(TableCheckpoints {
            table: t.name,
            phase: t.phase.as_str().to_string(),
            stream_arn: t.stream_arn,
            replay_from: t.replay_from_ms.map(fmt_ms),
            shards,
        });
    }
    Ok(out)
}

pub fn render_list(list: &[TableCheckpoints]) -> String {
    if list.is_empty() {
        return "no tables in the state store yet (has `ferry sync` run?)\n".into();
    }
    let mut s = String::new();
    for t in list {
        s.push_str(&format!(
            "{} ({}), replay from {}\n",
            t.table,
            t.phase,
            t.replay_from.as_deref().unwrap_or("-")
        ));
        for sh in &t.shards {
            s.push_str(&format!(
                "  {} {} position {} last record {} ({} records)\n",
                sh.shard_id,
                if sh.done { "done" } else { "open" },
                sh.position.as_deref().unwrap_or("trim-horizon"),
                sh.last_record_time.as_deref().unwrap_or("-"),
                sh.records
            ));
        }
    }
    s
}

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
    /// Held from planning to writing: no daemon may run on the table meanwhile.
    _lock: DaemonLock,
}

/// Computes the new position of every shard. Refused while a daemon holds the state store, before
/// the snapshot is finished, and when the target lies in a shard that has been trimmed away.
pub async fn plan_set<S: StreamApi>(store: &Store, api: &S, table: &str, target: Target) -> Result<SetPlan> {
    let lock = DaemonLock::acquire(&store.path)
        .map_err(|e| Error::fatal(format!("{e}: stop `ferry sync` before moving a checkpoint")))?;
    let row = store.table(table)?.ok_or_else(|| {
        Error::fatal(format!(
            "table {table:?} is not in the state store (has `ferry sync` run?)"
        ))
    })?;
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
    let saved = store.shards(table)?;
    let mut rows: HashMap<String, ShardRow> = HashMap::new();
    for old in saved.iter().cloned() {
        if !present.contains(old.shard_id.as_str()) {
            // Trimmed from the stream. Fine if everything in it is older than the target.
            let before = target != Target::TrimHorizon && old.done && old.last_record_ms.is_none_or(|m| m < t_ms);
            if !before && target != Target::TrimHorizon {
                return Err(Error::fatal(format!(
                    "table {table}: shard {} holds records at or after the target but has been trimmed from \
                     the stream (retention is 24 h): they cannot be replayed. Pick a later time, or re-run the \
                     table from a fresh snapshot.",
                    old.shard_id
                )));
            }
            rows.insert(old.shard_id.clone(), old);
        }
    }
    for s in &listed {
        let found = if target == Target::TrimHorizon {
            crate::source::streams::seek::Seek {
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
        _lock: lock,
    })
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
    pub fn apply(mut self, store: &Store) -> Result<()> {
        let from = match self.target {
            Target::At(t) => t,
            Target::TrimHorizon => 0,
            Target::Latest => self.table.replay_from_ms.unwrap_or(0),
        };
        self.table.replay_from_ms = Some(self.table.replay_from_ms.map_or(from, |r| r.min(from)));
        self.table.error = None;
        store.put_shards(&self.table.name, &self.shards)?;
        store.put_table(&self.table)?;
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
    /// Held from planning to writing: no daemon may run on the table meanwhile.
    _lock: DaemonLock,
}

pub fn plan_set_queue(store: &Store, table: &str, target: Target) -> Result<QueueSetPlan> {
    let lock = DaemonLock::acquire(&store.path)
        .map_err(|e| Error::fatal(format!("{e}: stop `ferry sync` before moving a checkpoint")))?;
    if store.table(table)?.is_none() {
        return Err(Error::fatal(format!(
            "table {table:?} is not in the state store (has `ferry sync` run?)"
        )));
    }
    let replay_from_ms = match target {
        Target::At(t) => t,
        Target::TrimHorizon => 0,
        Target::Latest => crate::clock::now_ms(),
    };
    Ok(QueueSetPlan {
        table: table.to_string(),
        replay_from_ms,
        _lock: lock,
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

    pub fn apply(self, store: &Store) -> Result<()> {
        store.set_replay_from(&self.table, self.replay_from_ms)?;
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
}
