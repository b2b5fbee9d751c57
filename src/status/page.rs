//! The pages themselves, rendered from a [`Snapshot`]: HTML for people
//! (no scripts, no external assets: it must work on an air-gapped host and
//! through any proxy) and Prometheus' text format for machines.

use std::fmt::Write as _;

use super::chart;
use super::{Snapshot, SnapshotRow};

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub(super) fn human_duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The status page: one self-contained HTML document (no scripts, no
/// external assets) that reloads itself every 2 s and fits a phone.
pub fn render_html(s: &Snapshot) -> String {
    let (state, colour) = match &s.unhealthy {
        None => ("flowing".to_string(), "#1a7f37"),
        Some(why) => (format!("unhealthy: {why}"), "#cf222e"),
    };
    let lag = match (s.lag_s, s.measured.lag_bytes) {
        (Some(sec), Some(b)) => {
            format!("{} ({} behind)", human_duration(sec), human_bytes(b as f64))
        }
        (_, Some(b)) => format!("{} behind", human_bytes(b as f64)),
        _ => "unknown (server head not read yet)".into(),
    };
    let mut rows = String::new();
    let mut row = |k: &str, id: &str, v: &str| {
        let _ = writeln!(rows, "<tr><th>{k}</th><td id=\"{id}\">{}</td></tr>", esc(v));
    };
    row("state", "state", &state);
    row("lag", "lag", &lag);
    row(
        "read position",
        "read",
        &format!("{}:{}", s.read_file, s.read_pos),
    );
    row(
        "server head",
        "head",
        s.measured.head.as_deref().unwrap_or("unknown"),
    );
    row(
        "released checkpoint",
        "released",
        s.released.as_deref().unwrap_or("none yet"),
    );
    row(
        "written checkpoint",
        "written",
        &match (&s.written, s.written_age_s) {
            (Some(w), Some(a)) => format!("{w} ({} ago)", human_duration(a)),
            _ => "none yet".into(),
        },
    );
    row("waiting queue", "depth", &s.depth.to_string());
    row(
        "rate (last minute)",
        "rate",
        &format!(
            "{:.0} rows/s, {}/s",
            s.measured.rows_per_s,
            human_bytes(s.measured.bytes_per_s)
        ),
    );
    row(
        "totals",
        "totals",
        &format!(
            "{} rows read, {} sent ({}), {} checkpoints",
            s.rows_read,
            s.rows_sent,
            human_bytes(s.bytes_sent as f64),
            s.checkpoints_written
        ),
    );
    row(
        "last error",
        "error",
        &match &s.last_error {
            Some((at, e)) => format!("{} ago: {e}", human_duration(s.now_s.saturating_sub(*at))),
            None => "none".into(),
        },
    );
    row("source", "mysql", &s.mysql);
    if s.failovers > 0 {
        row("source", "failovers", &s.failovers.to_string());
    }
    if let Some(h) = &s.schema {
        row(
            "schema",
            "schema history",
            &format!(
                "{} tables, version {}; last DDL: {}",
                h.tables,
                h.versions,
                h.last_ddl.as_deref().unwrap_or("none")
            ),
        );
    }
    row("brokers", "brokers", &s.brokers);
    row("topic", "topic", &s.topic);
    row("uptime", "uptime", &human_duration(s.uptime_s));
    row("version", "version", s.version);
    let mut tables = String::new();
    for (t, n) in &s.tables {
        let _ = writeln!(tables, "<tr><td>{}</td><td>{n}</td></tr>", esc(t));
    }
    if tables.is_empty() {
        tables.push_str("<tr><td colspan=\"2\">no rows sent yet</td></tr>\n");
    }
    let mut snapshots = String::new();
    if !s.snapshots.is_empty() {
        snapshots.push_str("<h2>Snapshots</h2>\n<table>\n");
        for (i, r) in s.snapshots.iter().enumerate() {
            let pct = if r.estimate > 0 {
                100.0 * r.sent as f64 / r.estimate as f64
            } else {
                100.0
            };
            let text = if r.done {
                format!(
                    "done: {} rows in {:.1} s ({:.0} rows/s)",
                    r.sent, r.elapsed_s, r.rows_per_s
                )
            } else {
                format!(
                    "{} of about {} rows ({pct:.0}%), {:.0} rows/s, {} left",
                    r.sent,
                    r.estimate,
                    r.rows_per_s,
                    r.left_s.map_or("unknown".to_string(), human_duration)
                )
            };
            let _ = writeln!(
                snapshots,
                "<tr><td colspan=\"2\"><strong>{}</strong><br><progress id=\"snapshot-{i}\" max=\"{}\" value=\"{}\">{pct:.0}%</progress><br><span id=\"snapshot-{i}-text\">{}</span></td></tr>",
                esc(&r.table),
                r.estimate.max(1),
                r.sent,
                esc(&text)
            );
        }
        snapshots.push_str("</table>\n");
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="2">
<title>binlog2kafka: {name}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;max-width:48rem;color:#1f2328}}
h1{{font-size:1.3rem;margin:0 0 .2rem}} h2{{font-size:1.05rem;margin:1.2rem 0 .4rem}}
.state{{display:inline-block;padding:.2rem .6rem;border-radius:1rem;color:#fff;background:{colour}}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #d0d7de;vertical-align:top;word-break:break-all}}
th{{width:38%;font-weight:600;word-break:normal}} svg{{margin-right:.5rem}} progress{{width:100%;height:1.1rem;margin:.2rem 0}} footer{{margin-top:1rem;color:#656d76;font-size:.85rem}}
</style></head>
<body>
<h1>binlog2kafka &middot; {name}</h1>
<p><span class="state">{state_short}</span></p>
<p id="charts">{charts}</p>
<table>
{rows}</table>
{snapshots}<h2>Rows sent per table</h2>
<table>
{tables}</table>
<footer>Refreshes every 2 s. Metrics: <a href="/metrics">/metrics</a> &middot; health: <a href="/healthz">/healthz</a></footer>
</body></html>
"#,
        name = esc(&s.pipeline),
        charts = chart::rate_and_lag("pipeline", &s.measured.history, s.now_s),
        state_short = if s.unhealthy.is_none() {
            "flowing"
        } else {
            "unhealthy"
        },
    )
}

/// The same figures in Prometheus' text format.
pub fn render_metrics(s: &Snapshot) -> String {
    let mut families = Families::default();
    add_metrics(s, &mut families);
    families.render()
}

/// Several pipelines' figures (a fleet host's), each sample labelled with
/// its pipeline, each family described once.
pub fn render_metrics_labelled(snaps: &[Snapshot]) -> String {
    let mut all = Families::default();
    for s in snaps {
        let mut f = Families::default();
        add_metrics(s, &mut f);
        all.merge(f, &s.pipeline);
    }
    all.render()
}

/// One metric family: name, type, help, samples (labels, value).
type Family = (String, &'static str, &'static str, Vec<(String, f64)>);

/// Metric families in the order first named.
#[derive(Default)]
struct Families(Vec<Family>);

impl Families {
    fn add(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &'static str,
        samples: &[(String, f64)],
    ) {
        match self.0.iter_mut().find(|f| f.0 == name) {
            Some(f) => f.3.extend_from_slice(samples),
            None => self
                .0
                .push((name.to_string(), kind, help, samples.to_vec())),
        }
    }

    /// Adds `other`'s samples with `pipeline="…"` first among their labels
    /// (the info metric has it already).
    fn merge(&mut self, other: Families, pipeline: &str) {
        let tag = format!("pipeline=\"{}\"", label(pipeline));
        for (name, kind, help, samples) in other.0 {
            let samples: Vec<(String, f64)> = samples
                .into_iter()
                .map(|(l, v)| {
                    let l = if l.contains("pipeline=\"") {
                        l
                    } else if l.is_empty() {
                        format!("{{{tag}}}")
                    } else {
                        format!("{{{tag},{}", &l[1..])
                    };
                    (l, v)
                })
                .collect();
            self.add(&name, kind, help, &samples);
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, samples) in &self.0 {
            let _ = writeln!(out, "# HELP binlog2kafka_{name} {help}");
            let _ = writeln!(out, "# TYPE binlog2kafka_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "binlog2kafka_{name}{labels} {v}");
            }
        }
        out
    }
}

/// A label value with Prometheus' escapes.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn add_metrics(s: &Snapshot, families: &mut Families) {
    let mut metric =
        |name: &str, kind: &'static str, help: &'static str, samples: &[(String, f64)]| {
            families.add(name, kind, help, samples)
        };
    let one = |v: f64| vec![(String::new(), v)];
    metric(
        "info",
        "gauge",
        "Constant 1, labelled with the version and pipeline.",
        &[(
            format!(
                "{{version=\"{}\",pipeline=\"{}\"}}",
                s.version,
                label(&s.pipeline)
            ),
            1.0,
        )],
    );
    metric(
        "up",
        "gauge",
        "1 when /healthz would answer 200.",
        &one(s.unhealthy.is_none() as u8 as f64),
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        &one(s.uptime_s as f64),
    );
    metric(
        "rows_read_total",
        "counter",
        "Row changes decoded from the binlog.",
        &one(s.rows_read as f64),
    );
    metric(
        "rows_sent_total",
        "counter",
        "Row changes Kafka acknowledged.",
        &one(s.rows_sent as f64),
    );
    metric(
        "bytes_sent_total",
        "counter",
        "Bytes of message values Kafka acknowledged.",
        &one(s.bytes_sent as f64),
    );
    metric(
        "checkpoints_written_total",
        "counter",
        "Checkpoints written to the commit-log topic.",
        &one(s.checkpoints_written as f64),
    );
    metric(
        "failovers_total",
        "counter",
        "Times the reader moved to another server of mysql.host.",
        &one(s.failovers as f64),
    );
    if let Some(h) = &s.schema {
        metric(
            "schema_tables",
            "gauge",
            "Tables the schema history tracks.",
            &one(h.tables as f64),
        );
        metric(
            "schema_versions_total",
            "counter",
            "The schema history's version: 1 at the first capture, one more for each DDL that changed a tracked table.",
            &one(h.versions as f64),
        );
    }
    metric(
        "source_info",
        "gauge",
        "Constant 1, labelled with the server being read.",
        &[(format!("{{server=\"{}\"}}", label(&s.mysql)), 1.0)],
    );
    metric(
        "waiting_queue_depth",
        "gauge",
        "Changes read but not yet released.",
        &one(s.depth as f64),
    );
    metric(
        "rows_per_second",
        "gauge",
        "Rows acknowledged per second over the last minute.",
        &one(s.measured.rows_per_s),
    );
    metric(
        "bytes_per_second",
        "gauge",
        "Value bytes acknowledged per second over the last minute.",
        &one(s.measured.bytes_per_s),
    );
    metric(
        "read_position",
        "gauge",
        "Byte offset of the next event the reader reads, labelled with its file.",
        &[(
            format!("{{file=\"{}\"}}", label(&s.read_file)),
            s.read_pos as f64,
        )],
    );
    metric(
        "last_event_timestamp_seconds",
        "gauge",
        "Server timestamp of the newest event read.",
        &one(s.read_ts as f64),
    );
    if let Some(b) = s.measured.lag_bytes {
        metric(
            "lag_bytes",
            "gauge",
            "Binlog bytes between the reader and the server's head.",
            &one(b as f64),
        );
    }
    if let Some(sec) = s.lag_s {
        metric(
            "lag_seconds",
            "gauge",
            "Seconds the reader is behind the server (0 when at its head).",
            &one(sec as f64),
        );
    }
    if let Some(a) = s.written_age_s {
        metric(
            "checkpoint_age_seconds",
            "gauge",
            "Seconds since a checkpoint was last written.",
            &one(a as f64),
        );
    }
    let tables: Vec<(String, f64)> = s
        .tables
        .iter()
        .map(|(t, n)| {
            let (db, table) = t.split_once('.').unwrap_or((t, ""));
            (
                format!("{{database=\"{}\",table=\"{}\"}}", label(db), label(table)),
                *n as f64,
            )
        })
        .collect();
    metric(
        "table_rows_sent_total",
        "counter",
        "Row changes Kafka acknowledged, per table.",
        &tables,
    );
    if !s.snapshots.is_empty() {
        let per = |f: &dyn Fn(&SnapshotRow) -> f64| -> Vec<(String, f64)> {
            s.snapshots
                .iter()
                .map(|r| {
                    let (db, table) = r.table.split_once('.').unwrap_or((&r.table, ""));
                    (
                        format!("{{database=\"{}\",table=\"{}\"}}", label(db), label(table)),
                        f(r),
                    )
                })
                .collect()
        };
        metric(
            "snapshot_rows_sent",
            "gauge",
            "Rows a table's snapshot has handed on (from before a restart too).",
            &per(&|r| r.sent as f64),
        );
        metric(
            "snapshot_rows_estimate",
            "gauge",
            "The table's rows as information_schema estimates them (exact once done).",
            &per(&|r| r.estimate as f64),
        );
        metric(
            "snapshot_rows_per_second",
            "gauge",
            "A table's snapshot rate in this run.",
            &per(&|r| r.rows_per_s),
        );
        metric(
            "snapshot_seconds_left",
            "gauge",
            "Seconds a running snapshot needs at its rate (0 once done).",
            &per(&|r| r.left_s.unwrap_or(0) as f64),
        );
        metric(
            "snapshot_done",
            "gauge",
            "1 once a table's snapshot is complete.",
            &per(&|r| if r.done { 1.0 } else { 0.0 }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Measured;

    fn snap() -> Snapshot {
        Snapshot {
            pipeline: "shop <main>".into(),
            version: "0.1.0",
            mysql: "127.0.0.1:3306".into(),
            brokers: "127.0.0.1:9092".into(),
            topic: "cdc".into(),
            uptime_s: 3700,
            read_file: "binlog.000007".into(),
            read_pos: 123_456,
            read_ts: 1_700_000_000,
            released: Some("binlog.000007:120000".into()),
            written: Some("binlog.000007:110000".into()),
            written_age_s: Some(1),
            depth: 12,
            rows_read: 1000,
            rows_sent: 990,
            bytes_sent: 250_000,
            checkpoints_written: 40,
            failovers: 1,
            schema: Some(crate::pipeline::SchemaStatus {
                tables: 12,
                versions: 3,
                last_ddl: Some("binlog.000007:100: ALTER TABLE t ADD c INT".into()),
            }),
            measured: Measured {
                rows_per_s: 16.5,
                bytes_per_s: 4200.0,
                lag_bytes: Some(2048),
                head: Some("binlog.000007:125504".into()),
                history: {
                    let mut h = crate::status::History::default();
                    h.record(1_700_000_003 - 60, 12.0, Some(1));
                    h.record(1_700_000_003, 16.5, Some(3));
                    h
                },
            },
            lag_s: Some(3),
            tables: [("shop.orders".to_string(), 990)].into_iter().collect(),
            snapshots: vec![SnapshotRow {
                table: "shop.orders".into(),
                sent: 250,
                estimate: 1000,
                superseded: 3,
                rows_per_s: 125.0,
                left_s: Some(6),
                done: false,
                elapsed_s: 2.0,
            }],
            last_error: None,
            unhealthy: None,
            now_s: 1_700_000_003,
        }
    }

    #[test]
    fn the_page_shows_position_lag_and_escapes_names() {
        let html = render_html(&snap());
        assert!(html.contains("binlog.000007:123456"));
        assert!(html.contains("3s (2.0 KB behind)"));
        assert!(html.contains("shop &lt;main&gt;"), "names are escaped");
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no external assets");
        assert!(html.contains("<svg id=\"pipeline-rate\""), "{html}");
        assert!(html.contains("<svg id=\"pipeline-lag\""), "{html}");
        assert!(html.contains("rows/s (max 16)"), "{html}");
    }

    #[test]
    fn a_hosts_metrics_label_every_sample_with_its_pipeline() {
        let a = snap();
        let mut b = snap();
        b.pipeline = "other".into();
        b.rows_sent = 7;
        let m = render_metrics_labelled(&[a, b]);
        assert_eq!(
            m.matches("# TYPE binlog2kafka_rows_sent_total counter")
                .count(),
            1,
            "{m}"
        );
        assert!(
            m.contains("binlog2kafka_rows_sent_total{pipeline=\"shop <main>\"} 990\n"),
            "{m}"
        );
        assert!(
            m.contains("binlog2kafka_rows_sent_total{pipeline=\"other\"} 7\n"),
            "{m}"
        );
        assert!(m.contains(
            "binlog2kafka_table_rows_sent_total{pipeline=\"other\",database=\"shop\",table=\"orders\"} 990\n"
        ), "{m}");
        assert!(
            m.contains("binlog2kafka_info{version=\"0.1.0\",pipeline=\"other\"} 1\n"),
            "{m}"
        );
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("pipeline=\""), "{line}");
        }
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let m = render_metrics(&snap());
        assert!(m.contains("binlog2kafka_rows_sent_total 990\n"));
        assert!(m.contains("binlog2kafka_lag_bytes 2048\n"));
        assert!(m.contains(
            "binlog2kafka_table_rows_sent_total{database=\"shop\",table=\"orders\"} 990\n"
        ));
        assert!(m.contains("binlog2kafka_up 1\n"));
        assert!(
            m.contains("binlog2kafka_snapshot_rows_sent{database=\"shop\",table=\"orders\"} 250\n")
        );
        assert!(m.contains(
            "binlog2kafka_snapshot_seconds_left{database=\"shop\",table=\"orders\"} 6\n"
        ));
        let page = render_html(&snap());
        assert!(
            page.contains("<progress id=\"snapshot-0\" max=\"1000\" value=\"250\">25%</progress>"),
            "{page}"
        );
        assert!(
            page.contains("250 of about 1000 rows (25%), 125 rows/s, 6s left"),
            "{page}"
        );
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("binlog2kafka_"), "{line}");
            value.parse::<f64>().unwrap();
        }
    }
}
