//! What the status page shows: the state store's table statuses (read as `ferry status` reads
//! them, at most every [`FRESH`]), each table's lag over the last hour, and the last cutover
//! report. Sampled in the background, so the lag chart fills while nobody looks.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Mutex, OnceCell};

use crate::checkpoint::{StateStore, backend};
use crate::clock::{fmt_ms, now_ms};
use crate::config::{Config, StateConfig};
use crate::error::Result;
use crate::status::{TableStatus, WorkerStatus};

/// Lag points kept per table: an hour at [`SAMPLE_EVERY`].
const POINTS: usize = 360;
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// A page that refreshes every two seconds reads the store at most this often.
const FRESH: Duration = Duration::from_secs(2);
/// How long one read of the store may take before the page shows the problem.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

pub struct Board {
    state: StateConfig,
    /// Where `ferry cutover` writes its report by default.
    home: PathBuf,
    /// Opened once it exists (the first sync creates it).
    store: OnceCell<Arc<dyn StateStore>>,
    view: Mutex<View>,
}

#[derive(Default)]
struct View {
    read_at: Option<Instant>,
    json: String,
    /// Per table: (ms, lag in seconds, or `None` while not streaming).
    history: BTreeMap<String, VecDeque<(i64, Option<f64>)>>,
}

#[derive(Serialize)]
struct Page<'a> {
    generated_at: String,
    /// Why there is nothing to show (no state store yet, or it cannot be read now).
    problem: Option<String>,
    tables: &'a [TableStatus],
    workers: &'a [WorkerStatus],
    /// Per table: [ms, lag seconds or null] over the last hour, oldest first.
    lag_history: &'a BTreeMap<String, VecDeque<(i64, Option<f64>)>>,
    /// The newest of `cutover-report.json` and `rollback-report.json` beside the state.
    last_report: Option<serde_json::Value>,
}

impl Board {
    pub fn new(config: &Config) -> Arc<Board> {
        Arc::new(Board {
            state: config.state.clone(),
            home: config.home(),
            store: OnceCell::new(),
            view: Mutex::new(View::default()),
        })
    }

    /// The page's data as JSON, read again if older than [`FRESH`].
    pub async fn json(&self) -> String {
        let mut view = self.view.lock().await;
        if view.read_at.is_none_or(|t| t.elapsed() >= FRESH) {
            self.read(&mut view).await;
        }
        view.json.clone()
    }

    async fn read(&self, view: &mut View) {
        // The store's own calls retry through outages: the page says so instead of hanging.
        let (tables, workers, problem) = match tokio::time::timeout(ANSWER_WITHIN, self.statuses()).await {
            Ok(Ok((t, w))) => (t, w, None),
            Ok(Err(e)) => (Vec::new(), Vec::new(), Some(e.to_string())),
            Err(_) => (
                Vec::new(),
                Vec::new(),
                Some(format!(
                    "the state store did not answer within {} s",
                    ANSWER_WITHIN.as_secs()
                )),
            ),
        };
        let now = now_ms();
        for t in tables.iter() {
            // A new table gets its first point at once; then one every SAMPLE_EVERY (a chart's
            // spacing, so the wall clock will do).
            let points = view.history.entry(t.table.clone()).or_default();
            if points
                .back()
                .is_none_or(|(ms, _)| now - ms >= SAMPLE_EVERY.as_millis() as i64)
            {
                points.push_back((now, t.lag_seconds));
            }
            while points.len() > POINTS {
                points.pop_front();
            }
        }
        let page = Page {
            generated_at: fmt_ms(now),
            problem,
            tables: &tables,
            workers: &workers,
            lag_history: &view.history,
            last_report: self.last_report(),
        };
        view.json = serde_json::to_string(&page).unwrap_or_else(|e| format!("{{\"problem\":\"{e}\"}}"));
        view.read_at = Some(Instant::now());
    }

    async fn statuses(&self) -> Result<(Vec<TableStatus>, Vec<WorkerStatus>)> {
        let store = self
            .store
            .get_or_try_init(|| async {
                backend::existing(&self.state)
                    .await?
                    .ok_or_else(|| crate::error::Error::retryable(format!("no {} yet", backend::describe(&self.state))))
            })
            .await?;
        let tables = crate::status::all(store.as_ref()).await?;
        let workers = crate::status::workers(store.as_ref()).await?;
        Ok((tables, workers))
    }

    fn last_report(&self) -> Option<serde_json::Value> {
        let newest = ["cutover-report.json", "rollback-report.json"]
            .iter()
            .map(|n| self.home.join(n))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max()?;
        let text = std::fs::read_to_string(newest.1).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Keeps the lag chart filling while nobody has the page open.
pub async fn sample_every(board: Arc<Board>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let mut view = board.view.lock().await;
        board.read(&mut view).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::checkpoint::{Store, TableRow};

    fn config(dir: &Path) -> Config {
        let text = format!(
            "[source]\nregion = \"us-east-1\"\n[destination]\nregion = \"us-east-1\"\n[state]\npath = \"{}\"\n\
             [[table]]\nsource = \"Orders\"\n",
            dir.join("ferry.db").display()
        );
        Config::parse(&dir.join("ferry.toml"), &text).unwrap()
    }

    fn page(json: &str) -> serde_json::Value {
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn the_page_says_why_it_is_empty_then_shows_the_store_and_the_newest_report() {
        let dir = tempfile::tempdir().unwrap();
        let board = Board::new(&config(dir.path()));
        let before = page(&board.json().await);
        assert!(before["problem"].as_str().unwrap().contains("no "), "{before}");
        assert_eq!(before["tables"], serde_json::json!([]));

        let store = Store::open(&dir.path().join("ferry.db")).unwrap();
        store.put_table(&TableRow::new("Orders", "OrdersCopy")).unwrap();
        // Read again only once the last read is FRESH old.
        assert_eq!(page(&board.json().await)["tables"], serde_json::json!([]));
        board.view.lock().await.read_at = None;
        let now = page(&board.json().await);
        assert_eq!(now["problem"], serde_json::Value::Null);
        assert_eq!(now["tables"][0]["table"], "Orders");
        assert_eq!(now["tables"][0]["destination"], "OrdersCopy");
        assert_eq!(now["lag_history"]["Orders"].as_array().unwrap().len(), 1);
        assert_eq!(now["last_report"], serde_json::Value::Null);

        // A second read within SAMPLE_EVERY adds no point.
        board.view.lock().await.read_at = None;
        assert_eq!(
            page(&board.json().await)["lag_history"]["Orders"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        std::fs::write(dir.path().join("rollback-report.json"), r#"{"outcome":"rolled back"}"#).unwrap();
        std::fs::write(dir.path().join("cutover-report.json"), r#"{"outcome":"complete"}"#).unwrap();
        // The cutover came first: its report is the older one.
        let earlier = std::time::SystemTime::now() - Duration::from_secs(60);
        let cutover = std::fs::File::options()
            .write(true)
            .open(dir.path().join("cutover-report.json"))
            .unwrap();
        cutover.set_modified(earlier).unwrap();
        board.view.lock().await.read_at = None;
        assert_eq!(page(&board.json().await)["last_report"]["outcome"], "rolled back");
    }
}
