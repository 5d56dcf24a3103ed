//! The cutover report: what was checked and changed, in Markdown for people and JSON for tools.

use std::path::Path;

use serde::Serialize;

use super::settings::SettingApplied;
use super::switch::SwitchReport;
use crate::error::{Error, Result};
use crate::verify::report::TableReport;

#[derive(Debug, Clone, Serialize)]
pub struct CutoverReport {
    pub started: String,
    pub finished: String,
    pub dry_run: bool,
    /// "complete", "dry run", or why it stopped.
    pub outcome: String,
    pub tables: Vec<TableCutover>,
    pub settings: Vec<SettingApplied>,
    pub timings: Timings,
    /// `--switch` / `ferry rollback`: the direction entered and each table's switch point.
    pub switch: Option<SwitchReport>,
    /// `ferry rollback`'s report (its files are its own, so the cutover's stay).
    #[serde(skip)]
    pub rollback: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableCutover {
    pub table: String,
    pub destination: String,
    /// Replication lag when the wait ended.
    pub lag_seconds: Option<f64>,
    pub records_applied: i64,
    pub verify: Option<TableReport>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub wait_seconds: f64,
    pub verify_seconds: f64,
    pub settings_seconds: f64,
    /// With a switch: from the request to the new direction applied past S (the part of the
    /// write pause that the switch itself adds).
    pub switch_seconds: Option<f64>,
    pub total_seconds: f64,
}

impl CutoverReport {
    /// A report begun at `started`, with nothing checked yet.
    pub fn new(started: String, dry_run: bool, rollback: bool) -> CutoverReport {
        CutoverReport {
            started,
            finished: String::new(),
            dry_run,
            outcome: String::new(),
            tables: Vec::new(),
            settings: Vec::new(),
            timings: Timings::default(),
            switch: None,
            rollback,
        }
    }

    pub fn ok(&self) -> bool {
        self.outcome == "complete" || self.outcome == "dry run"
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# ferry {} report\n\n- outcome: **{}**\n- started: {}\n- finished: {}\n\
             - waited {:.1}s, verified in {:.1}s, settings in {:.1}s, {:.1}s in all\n\n",
            if self.rollback { "rollback" } else { "cutover" },
            self.outcome,
            self.started,
            self.finished,
            self.timings.wait_seconds,
            self.timings.verify_seconds,
            self.timings.settings_seconds,
            self.timings.total_seconds
        );
        if let Some(w) = self.timings.switch_seconds {
            s.push_str(&format!(
                "- the switch took {w:.1}s (from the request to the new direction past S)\n\n"
            ));
        }
        s.push_str("| table | destination | lag (s) | records applied | items (src / dst) | missing | extra | differing | digest |\n");
        s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for t in &self.tables {
            let lag = t.lag_seconds.map_or("-".into(), |l| format!("{l:.1}"));
            match &t.verify {
                Some(v) => s.push_str(&format!(
                    "| {} | {} | {lag} | {} | {} / {} | {} | {} | {} | `{}` |\n",
                    t.table,
                    t.destination,
                    t.records_applied,
                    v.source_items,
                    v.destination_items,
                    v.missing,
                    v.extra,
                    v.differing,
                    v.source_digest
                )),
                None => s.push_str(&format!(
                    "| {} | {} | {lag} | {} | - | - | - | - | - |\n",
                    t.table, t.destination, t.records_applied
                )),
            }
        }
        s.push_str("\n## Settings\n\n");
        if self.settings.is_empty() {
            s.push_str("none\n");
        }
        for x in &self.settings {
            s.push_str(&format!("- {}: {}: {}\n", x.table, x.setting, x.action));
        }
        match &self.switch {
            None => s.push_str("\n`ferry sync` keeps running: stop it once the applications use the destination.\n"),
            Some(sw) => {
                s.push_str(&format!("\n## Switch\n\nferry now replicates {}:\n\n", sw.to.arrow()));
                for t in &sw.tables {
                    s.push_str(&format!("- {}: from {} (S)\n", t.table, t.at));
                }
                s.push_str(&format!("\n{}\n", super::switch::announce(sw)));
            }
        }
        s
    }

    /// The report's file name: a rollback's is its own, so the cutover's stays.
    fn name(&self) -> &'static str {
        match self.rollback {
            true => "rollback-report",
            false => "cutover-report",
        }
    }

    /// Writes `cutover-report.md` and `cutover-report.json` (a rollback: `rollback-report.*`)
    /// into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::fatal(format!("cannot create {}: {e}", dir.display())))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::fatal(e.to_string()))?;
        let (md, js) = (format!("{}.md", self.name()), format!("{}.json", self.name()));
        for (name, text) in [(md.as_str(), self.markdown()), (js.as_str(), json)] {
            let path = dir.join(name);
            // Write then rename: a report is never half-written.
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| Error::fatal(format!("cannot write {}: {e}", path.display())))?;
        }
        Ok(())
    }
}
