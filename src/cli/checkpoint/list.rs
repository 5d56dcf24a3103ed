//! `ferry checkpoint list`: every table's stream positions as the state store holds them.

use serde::Serialize;

use crate::checkpoint::StateStore;
use crate::clock::fmt_ms;
use crate::error::Result;

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

pub async fn list(store: &dyn StateStore, tables: &[String]) -> Result<Vec<TableCheckpoints>> {
    let mut out = Vec::new();
    for name in tables {
        let Some(t) = store.table(name).await? else { continue };
        let shards = store
            .shards(name)
            .await?
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
