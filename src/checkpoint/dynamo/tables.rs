//! The table rows (lifecycle state and live counters) and the retry health in the state table:
//! updates of named attributes, so that the state and the counters never roll each other back.

use super::update::Update;
use super::values::{self, Reader, n, s};
use super::{DynamoStore, ONE, TABLES};
use crate::checkpoint::direction::{self, SwitchRequest};
use crate::checkpoint::state::Progress;
use crate::checkpoint::{Phase, Retrying, TableRow};
use crate::clock::now_ms;
use crate::error::Result;

impl DynamoStore {
    pub(super) async fn table_row(&self, name: &str) -> Result<Option<TableRow>> {
        let what = format!("state table {}", self.table);
        self.get(TABLES, name)
            .await?
            .map(|i| values::table_row(&i, &what))
            .transpose()
    }

    pub(super) async fn table_rows(&self) -> Result<Vec<TableRow>> {
        let what = format!("state table {}", self.table);
        self.query(TABLES)
            .await?
            .iter()
            .map(|i| values::table_row(i, &what))
            .collect()
    }

    /// The state fields of a table row; the counters only when the row is new (the publisher
    /// owns them afterwards).
    pub(super) async fn write_table(&self, t: &TableRow) -> Result<()> {
        let opt_s = |v: &Option<String>| v.as_ref().map(s);
        let update = Update::default()
            .set("destination", s(&t.destination))
            .set("phase", s(t.phase.as_str()))
            .set_or_remove("error", opt_s(&t.error))
            .set_or_remove("stream_arn", opt_s(&t.stream_arn))
            .set_or_remove("capture_ms", t.capture_ms.map(n))
            .set_or_remove("replay_from_ms", t.replay_from_ms.map(n))
            .set("snapshot_segments", n(t.snapshot_segments))
            .set("snapshot_done", n(t.snapshot_done as i64))
            .set("stopped_cleanly", n(t.stopped_cleanly as i64))
            .set("direction", s(t.direction.as_str()))
            .set_or_remove("switches", direction::switches_to_text(&t.switches).as_ref().map(s))
            .set("updated_ms", n(now_ms()))
            .set_if_absent("records_applied", Some(n(t.records_applied)))
            .set_if_absent("newest_applied_ms", t.newest_applied_ms.map(n))
            .set_if_absent("caught_up", Some(n(t.caught_up as i64)))
            .set_if_absent("applied_as_of_ms", t.applied_as_of_ms.map(n));
        self.update(TABLES, &t.name, update, false).await.map(|_| ())
    }

    pub(super) async fn write_progress(&self, name: &str, p: Progress) -> Result<()> {
        let update = Update::default()
            .set("records_applied", n(p.records_applied))
            .set_some("newest_applied_ms", p.newest_applied_ms.map(n))
            .set("caught_up", n(p.caught_up as i64))
            .set_or_remove("applied_as_of_ms", p.applied_as_of_ms.map(n))
            .set("updated_ms", n(now_ms()));
        self.update(TABLES, name, update, true).await.map(|_| ())
    }

    pub(super) async fn write_error(&self, name: &str, error: &str) -> Result<()> {
        let update = Update::default()
            .set("phase", s(Phase::Failed.as_str()))
            .set("error", s(error))
            .set("stopped_cleanly", n(0))
            .set("updated_ms", n(now_ms()));
        self.update(TABLES, name, update, true).await.map(|_| ())
    }

    pub(super) async fn write_switch_request(&self, name: &str, r: SwitchRequest) -> Result<bool> {
        let update = Update::default()
            .set("switch_to", s(r.to.as_str()))
            .set("switch_asked_ms", n(r.asked_ms));
        self.update(TABLES, name, update, true).await
    }

    pub(super) async fn write_replay_from(&self, name: &str, ms: i64) -> Result<bool> {
        let update = Update::default()
            .set("replay_from_ms", n(ms))
            .set("updated_ms", n(now_ms()));
        self.update(TABLES, name, update, true).await
    }

    pub(super) async fn read_health(&self, table: &str) -> Result<Option<Retrying>> {
        let Some(item) = self.get(&format!("health#{table}"), ONE).await? else {
            return Ok(None);
        };
        let what = format!("state table {}", self.table);
        let r = Reader {
            item: &item,
            what: &what,
        };
        Ok(match r.opt_num("retrying_ms")? {
            Some(for_ms) => Some(Retrying {
                for_ms,
                last_error: r.opt_text("last_error")?.unwrap_or_default(),
            }),
            None => None,
        })
    }

    pub(super) async fn write_health(&self, table: &str, retrying: Option<&Retrying>) -> Result<()> {
        let update = Update::default()
            .set_or_remove("retrying_ms", retrying.map(|r| n(r.for_ms)))
            .set_or_remove("last_error", retrying.map(|r| s(&r.last_error)))
            .set("updated_ms", n(now_ms()));
        self.update(&format!("health#{table}"), ONE, update, false)
            .await
            .map(|_| ())
    }
}
