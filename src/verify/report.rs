//! What verify found, per table: counts, digests, example keys with their differing attribute
//! paths, and what a repair did. Rendered as text for people and as JSON for scripts.

use serde::Serialize;

use super::diff::Kind;

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub destination: String,
    /// Segments of the comparison, and how many were read (fewer with `--sample`).
    pub segments_total: u32,
    pub segments_compared: u32,
    /// Segments whose digests matched: no key-by-key work was done for them.
    pub segments_equal: u32,
    pub sample: Option<f64>,
    pub source_items: u64,
    pub destination_items: u64,
    /// Order-independent digests of everything compared on each side (equal tables, equal digests).
    pub source_digest: String,
    pub destination_digest: String,
    pub missing: usize,
    pub extra: usize,
    pub differing: usize,
    /// Up to `--examples` keys per kind.
    pub examples: Vec<Example>,
    /// Keys re-read after the first pass (consistent point reads on both sides).
    pub rechecked: usize,
    /// Keys whose source kept changing through every re-check while a sync ran: in flight, not
    /// differences (every stream record carries the full item, so they converge).
    pub in_flight: usize,
    /// Keys that still differed when a running sync stayed behind for the whole re-check wait:
    /// not proven either way (the table is not reported equal; verify again, or raise
    /// `--recheck-wait`).
    pub unsettled: usize,
    /// A `ferry sync` was running: differences were re-checked after its lag had passed.
    pub sync_running: bool,
    pub repair: Option<Repair>,
    pub read_units_source: u64,
    pub read_units_destination: u64,
    pub seconds: f64,
    /// No difference left (after the repair, when one ran).
    pub equal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub kind: Kind,
    /// The key in DynamoDB JSON.
    pub key: serde_json::Value,
    /// Differing attribute paths (for `differing`).
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// Keys rewritten from the source (or deleted, when the source no longer has them).
    pub keys: usize,
    /// Keys still different after the repair.
    pub remaining: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Equal,
    Different,
    /// Nothing proven different, but some keys could not be re-checked behind a lagging sync.
    Unsettled,
}

impl TableReport {
    pub fn verdict(&self) -> Verdict {
        let different = self
            .repair
            .as_ref()
            .map_or(self.missing + self.extra + self.differing, |r| r.remaining);
        if self.equal {
            Verdict::Equal
        } else if different > 0 || self.unsettled == 0 {
            Verdict::Different
        } else {
            Verdict::Unsettled
        }
    }

    pub fn render(&self) -> String {
        let verdict = match self.verdict() {
            Verdict::Equal => "EQUAL",
            Verdict::Different => "DIFFERENT",
            Verdict::Unsettled => "UNSETTLED",
        };
        let mut s = format!("{} -> {}: {verdict}\n", self.table, self.destination);
        let sampled = self
            .sample
            .map(|f| format!(" (sample {:.1}%)", f * 100.0))
            .unwrap_or_default();
        s.push_str(&format!(
            "  compared {} source and {} destination items in {}/{} segments{sampled}, {} segments equal by digest, {:.1}s\n",
            self.source_items,
            self.destination_items,
            self.segments_compared,
            self.segments_total,
            self.segments_equal,
            self.seconds
        ));
        s.push_str(&format!(
            "  digests: source {} destination {}\n",
            self.source_digest, self.destination_digest
        ));
        s.push_str(&format!(
            "  missing in destination: {}, extra in destination: {}, differing: {}{}\n",
            self.missing,
            self.extra,
            self.differing,
            if self.sync_running {
                " (re-checked after the sync's lag)"
            } else {
                ""
            }
        ));
        self.render_details(&mut s);
        if let Some(r) = &self.repair {
            s.push_str(&format!(
                "  repair: {} keys rewritten from the source, {} still different\n",
                r.keys, r.remaining
            ));
        }
        s
    }

    /// The unsettled and in-flight counts, and the example keys.
    fn render_details(&self, s: &mut String) {
        if self.unsettled > 0 {
            s.push_str(&format!(
                "  not settled (the sync stayed behind for the whole re-check wait; verify again or raise --recheck-wait): {}\n",
                self.unsettled
            ));
        }
        if self.in_flight > 0 {
            s.push_str(&format!(
                "  in flight (still changing at the source, being applied by the sync): {}\n",
                self.in_flight
            ));
        }
        for e in &self.examples {
            let kind = match e.kind {
                Kind::Missing => "missing",
                Kind::Extra => "extra",
                Kind::Differing => "differing",
            };
            s.push_str(&format!("    {kind} {}", e.key));
            if !e.paths.is_empty() {
                s.push_str(&format!(" at {}", e.paths.join(", ")));
            }
            s.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_report_names_counts_examples_and_paths() {
        let r = TableReport {
            table: "Orders".into(),
            destination: "OrdersCopy".into(),
            segments_total: 4,
            segments_compared: 4,
            segments_equal: 3,
            sample: None,
            source_items: 10,
            destination_items: 9,
            source_digest: "aa".into(),
            destination_digest: "bb".into(),
            missing: 1,
            extra: 0,
            differing: 1,
            examples: vec![
                Example {
                    kind: Kind::Missing,
                    key: serde_json::json!({"pk": {"S": "a"}}),
                    paths: vec![],
                },
                Example {
                    kind: Kind::Differing,
                    key: serde_json::json!({"pk": {"S": "b"}}),
                    paths: vec!["m.x".into(), "s".into()],
                },
            ],
            rechecked: 2,
            in_flight: 0,
            unsettled: 0,
            sync_running: false,
            repair: None,
            read_units_source: 1,
            read_units_destination: 1,
            seconds: 0.5,
            equal: false,
        };
        let text = r.render();
        assert!(text.starts_with("Orders -> OrdersCopy: DIFFERENT\n"), "{text}");
        assert!(
            text.contains("missing in destination: 1, extra in destination: 0, differing: 1"),
            "{text}"
        );
        assert!(text.contains(r#"missing {"pk":{"S":"a"}}"#), "{text}");
        assert!(text.contains(r#"differing {"pk":{"S":"b"}} at m.x, s"#), "{text}");
    }
}
