//! The fleet's view: every pipeline of every host, from the status records
//! the hosts write to the fleet's compacted status topic (the latest per
//! pipeline). Rendered here as a page and as the table `binlog2kafka fleet
//! status` prints; the topic itself is the fleet's business.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::chart;
use super::history::History;
use super::page::{esc, human_bytes, human_duration};

/// One pipeline as the host running it last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStatus {
    pub pipeline: String,
    /// The host that runs it (`hostname/pid`).
    pub host: String,
    /// `running`, `unhealthy` or `failed`.
    pub state: String,
    /// Why unhealthy, or the failure.
    #[serde(default)]
    pub detail: Option<String>,
    pub rows_per_s: f64,
    #[serde(default)]
    pub lag_s: Option<u64>,
    #[serde(default)]
    pub lag_bytes: Option<u64>,
    pub rows_sent: u64,
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// When written, ms since the epoch.
    pub at_ms: u64,
    /// The pipeline's own page on its host, when that host serves one.
    #[serde(default)]
    pub page: Option<String>,
    /// The last hour, for the charts (it follows the pipeline to its next
    /// host).
    #[serde(default)]
    pub history: History,
}

/// What a fleet page shows.
pub struct FleetView<'a> {
    pub fleet: &'a str,
    /// This host, and what it knows of the group.
    pub host: &'a str,
    pub generation: i32,
    pub leader: bool,
    pub members: usize,
    /// Every defined pipeline, with whether it is paused.
    pub defined: &'a BTreeMap<String, bool>,
    pub statuses: &'a BTreeMap<String, PipelineStatus>,
    pub now_ms: u64,
    /// A record older than this says its host went silent.
    pub stale_after_ms: u64,
}

/// One line of the fleet's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub pipeline: String,
    pub host: String,
    pub state: String,
    pub lag: String,
    pub rate: String,
    pub detail: String,
}

impl FleetView<'_> {
    /// Each defined pipeline, by name: its state as its host last said,
    /// unless it is paused, never reported, or its host went silent.
    pub fn lines(&self) -> Vec<Line> {
        self.defined
            .iter()
            .map(|(name, paused)| {
                let st = self.statuses.get(name);
                let age_ms = st.map(|s| self.now_ms.saturating_sub(s.at_ms));
                let state = match (paused, st, age_ms) {
                    (true, _, _) => "paused".to_string(),
                    (false, None, _) => "not reported yet".to_string(),
                    (false, Some(_), Some(a)) if a > self.stale_after_ms => {
                        format!("unknown (no report for {})", human_duration(a / 1000))
                    }
                    (false, Some(s), _) => s.state.clone(),
                };
                let reported = st.filter(|_| !paused);
                // A failed pipeline has no lag or rate to speak of.
                let live = reported.filter(|s| s.state != "failed");
                Line {
                    pipeline: name.clone(),
                    host: reported.map_or("-".into(), |s| s.host.clone()),
                    lag: live.map_or("-".into(), |s| match (s.lag_s, s.lag_bytes) {
                        (Some(sec), Some(b)) => {
                            format!("{} ({})", human_duration(sec), human_bytes(b as f64))
                        }
                        (None, Some(b)) => human_bytes(b as f64),
                        _ => "unknown".into(),
                    }),
                    rate: live.map_or("-".into(), |s| format!("{:.0} rows/s", s.rows_per_s)),
                    detail: reported.and_then(|s| s.detail.clone()).unwrap_or_default(),
                    state,
                }
            })
            .collect()
    }

    /// The table `binlog2kafka fleet status` prints.
    pub fn text(&self) -> String {
        let lines = self.lines();
        let head = Line {
            pipeline: "PIPELINE".into(),
            host: "HOST".into(),
            state: "STATE".into(),
            lag: "LAG".into(),
            rate: "RATE".into(),
            detail: "DETAIL".into(),
        };
        let all: Vec<&Line> = std::iter::once(&head).chain(lines.iter()).collect();
        let width = |f: &dyn Fn(&Line) -> usize| all.iter().map(|l| f(l)).max().unwrap_or(0);
        let w = [
            width(&|l| l.pipeline.chars().count()),
            width(&|l| l.host.chars().count()),
            width(&|l| l.state.chars().count()),
            width(&|l| l.lag.chars().count()),
            width(&|l| l.rate.chars().count()),
        ];
        let mut out = String::new();
        for l in all {
            let row = format!(
                "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {:w4$}  {}",
                l.pipeline,
                l.host,
                l.state,
                l.lag,
                l.rate,
                l.detail,
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4]
            );
            let _ = writeln!(out, "{}", row.trim_end());
        }
        out
    }

    /// The fleet's page: the table, with each pipeline's charts.
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for (i, l) in self.lines().iter().enumerate() {
            let st = self
                .statuses
                .get(&l.pipeline)
                .filter(|_| self.defined.get(&l.pipeline) == Some(&false));
            let name = match st.and_then(|s| s.page.as_deref()) {
                Some(url) => format!("<a href=\"{}\">{}</a>", esc(url), esc(&l.pipeline)),
                None => esc(&l.pipeline),
            };
            let colour = match l.state.as_str() {
                "running" => "#1a7f37",
                "paused" => "#656d76",
                "failed" | "unhealthy" => "#cf222e",
                _ => "#9a6700",
            };
            let charts = st.map_or(String::new(), |s| {
                chart::rate_and_lag(&format!("p{i}"), &s.history, self.now_ms / 1000)
            });
            let _ = writeln!(
                rows,
                "<tr id=\"pipeline-{}\"><td>{name}</td><td>{}</td><td><span class=\"state\" style=\"background:{colour}\">{}</span>{}</td><td>{}</td><td>{}</td><td class=\"charts\">{charts}</td></tr>",
                esc(&l.pipeline),
                esc(&l.host),
                esc(&l.state),
                if l.detail.is_empty() {
                    String::new()
                } else {
                    format!("<br><small class=\"detail\">{}</small>", esc(&l.detail))
                },
                esc(&l.lag),
                esc(&l.rate),
            );
        }
        if rows.is_empty() {
            rows.push_str("<tr><td colspan=\"6\">no pipeline defined yet: binlog2kafka pipeline put FILE</td></tr>\n");
        }
        let hosts: std::collections::BTreeSet<&str> = self
            .statuses
            .values()
            .filter(|s| self.now_ms.saturating_sub(s.at_ms) <= self.stale_after_ms)
            .map(|s| s.host.as_str())
            .collect();
        format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>binlog2kafka fleet: {fleet}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;color:#1f2328}}
h1{{font-size:1.3rem;margin:0 0 .2rem}}
.state{{display:inline-block;padding:.1rem .5rem;border-radius:1rem;color:#fff}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #d0d7de;vertical-align:top}}
.charts{{white-space:nowrap}} .chart{{display:inline-block;margin-right:.5rem}} .detail{{color:#cf222e;word-break:break-all}} footer{{margin-top:1rem;color:#656d76;font-size:.85rem}}
</style></head>
<body>
<h1>binlog2kafka fleet &middot; {fleet}</h1>
<p id="summary">{defined} pipelines, {hosts} hosts reporting; this host: {host} ({role}, generation {generation}, {members} members)</p>
<table>
<tr><th>pipeline</th><th>host</th><th>state</th><th>lag</th><th>rate</th><th>last hour</th></tr>
{rows}</table>
<footer>Refreshes every 10 s. Metrics of this host's pipelines: <a href="/metrics">/metrics</a> &middot; health: <a href="/healthz">/healthz</a></footer>
</body></html>
"#,
            fleet = esc(self.fleet),
            defined = self.defined.len(),
            hosts = hosts.len(),
            host = esc(self.host),
            role = if self.leader { "leader" } else { "member" },
            generation = self.generation,
            members = self.members,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, host: &str, at_ms: u64) -> PipelineStatus {
        let mut history = History::default();
        history.record(at_ms / 1000 - 120, 10.0, Some(0));
        history.record(at_ms / 1000 - 60, 20.0, Some(4));
        history.record(at_ms / 1000, 30.0, Some(2));
        PipelineStatus {
            pipeline: name.into(),
            host: host.into(),
            state: "running".into(),
            detail: None,
            rows_per_s: 30.0,
            lag_s: Some(2),
            lag_bytes: Some(2048),
            rows_sent: 100,
            checkpoint: Some("bin.000001:4".into()),
            at_ms,
            page: Some(format!("http://{host}:8080/pipeline/{name}")),
            history,
        }
    }

    #[test]
    fn every_defined_pipeline_is_listed_with_what_its_host_said() {
        let now = 1_700_000_000_000;
        let defined: BTreeMap<String, bool> = [
            ("a".to_string(), false),
            ("b".to_string(), false),
            ("c".to_string(), true),
            ("d".to_string(), false),
        ]
        .into_iter()
        .collect();
        let mut statuses = BTreeMap::new();
        statuses.insert("a".to_string(), status("a", "h1", now - 5_000));
        statuses.insert("b".to_string(), status("b", "h2", now - 60_000));
        let mut failed = status("d", "h1", now);
        failed.state = "failed".into();
        failed.detail = Some("Access denied for user 'cdc'".into());
        statuses.insert("d".to_string(), failed);
        // A deleted pipeline's last record is not shown.
        statuses.insert("gone".to_string(), status("gone", "h1", now));
        let view = FleetView {
            fleet: "f",
            host: "h1",
            generation: 3,
            leader: true,
            members: 2,
            defined: &defined,
            statuses: &statuses,
            now_ms: now,
            stale_after_ms: 30_000,
        };
        let lines = view.lines();
        let states: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l.pipeline.as_str(), l.state.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                ("a", "running"),
                ("b", "unknown (no report for 1m 0s)"),
                ("c", "paused"),
                ("d", "failed")
            ]
        );
        assert_eq!(lines[0].lag, "2s (2.0 KB)");
        assert_eq!(lines[3].detail, "Access denied for user 'cdc'");
        let text = view.text();
        assert!(text.starts_with("PIPELINE  HOST  STATE"), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
        let html = view.html();
        assert!(html.contains("<svg id=\"p0-rate\""), "{html}");
        assert!(
            html.contains("href=\"http://h1:8080/pipeline/a\""),
            "{html}"
        );
        assert!(!html.contains("gone"), "{html}");
        assert!(!html.contains("<script"), "no scripts");
    }
}
