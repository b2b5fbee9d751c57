//! Small line charts of the last hour, as inline SVG rendered here: no
//! script, no external asset, nothing for the browser to fetch.

use std::fmt::Write as _;

use super::history::{History, MINUTES};

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 56.0;
/// Room above the plot for the chart's label.
const TOP: f64 = 14.0;
/// The line's colour (the tests look for it on a screenshot).
pub const STROKE: &str = "#0969da";

/// The two charts of a pipeline: rows per second and lag in seconds.
pub fn rate_and_lag(id: &str, history: &History, now_s: u64) -> String {
    let now = now_s / 60;
    let rate: Vec<(u64, Option<f64>)> = history
        .points()
        .map(|p| (p.minute, Some(p.rows_per_s)))
        .collect();
    let lag: Vec<(u64, Option<f64>)> = history
        .points()
        .map(|p| (p.minute, p.lag_s.map(|s| s as f64)))
        .collect();
    format!(
        "{}{}",
        line(&format!("{id}-rate"), "rows/s", now, &rate),
        line(&format!("{id}-lag"), "lag s", now, &lag)
    )
}

/// One chart over the hour that ends at minute `now`: a line through the
/// known values, broken where a minute is missing or unknown.
pub fn line(id: &str, label: &str, now: u64, values: &[(u64, Option<f64>)]) -> String {
    let first = now.saturating_sub(MINUTES - 1);
    let shown: Vec<(u64, Option<f64>)> = values
        .iter()
        .filter(|(m, _)| (first..=now).contains(m))
        .cloned()
        .collect();
    let max = shown.iter().filter_map(|(_, v)| *v).fold(0.0f64, f64::max);
    let scale = if max > 0.0 { max } else { 1.0 };
    let x = |m: u64| (m - first) as f64 * WIDTH / (MINUTES - 1) as f64;
    let y = |v: f64| HEIGHT - 1.0 - (v / scale) * (HEIGHT - TOP - 2.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\"><title>{label}, last hour, at most {}</title>",
        number(max)
    );
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{b}\" x2=\"{WIDTH}\" y2=\"{b}\" stroke=\"#d0d7de\"/>",
        b = HEIGHT - 0.5
    );
    let known = shown.iter().any(|(_, v)| v.is_some());
    let _ = write!(
        svg,
        "<text x=\"2\" y=\"10\" font-size=\"10\" fill=\"#656d76\">{label}{}</text>",
        if known {
            format!(" (max {})", number(max))
        } else {
            ": no data yet".to_string()
        }
    );
    // Runs of consecutive known minutes, each its own line.
    let mut run: Vec<(f64, f64)> = Vec::new();
    let mut prev: Option<u64> = None;
    let flush = |run: &mut Vec<(f64, f64)>, svg: &mut String| {
        match run.len() {
            0 => {}
            // A lone minute: a short dash, so it shows.
            1 => {
                let (px, py) = run[0];
                let _ = write!(
                    svg,
                    "<polyline points=\"{:.1},{py:.1} {:.1},{py:.1}\" fill=\"none\" stroke=\"{STROKE}\" stroke-width=\"2\"/>",
                    (px - 2.0).max(0.0),
                    (px + 2.0).min(WIDTH)
                );
            }
            _ => {
                let pts: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                let _ = write!(
                    svg,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{STROKE}\" stroke-width=\"2\"/>",
                    pts.join(" ")
                );
            }
        }
        run.clear();
    };
    for (m, v) in &shown {
        let contiguous = prev.is_some_and(|p| p + 1 == *m);
        if !contiguous {
            flush(&mut run, &mut svg);
        }
        match v {
            Some(v) => run.push((x(*m), y(*v))),
            None => flush(&mut run, &mut svg),
        }
        prev = Some(*m);
    }
    flush(&mut run, &mut svg);
    svg.push_str("</svg>");
    svg
}

fn number(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_spans_the_hour_and_breaks_at_unknown_minutes() {
        let v = [
            (100, Some(0.0)),
            (101, Some(50.0)),
            (102, None),
            (103, Some(100.0)),
            (104, Some(100.0)),
        ];
        let svg = line("c", "rows/s", 104, &v);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        // The newest minute is at the right edge, the largest value at the top.
        assert!(svg.contains("240.0,15.0"), "{svg}");
        assert!(svg.contains("(max 100)"), "{svg}");
        assert!(svg.starts_with("<svg id=\"c\""));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn minutes_older_than_the_hour_are_not_drawn() {
        let svg = line("c", "lag s", 200, &[(100, Some(5.0))]);
        assert!(!svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("no data yet"), "{svg}");
    }

    #[test]
    fn a_lone_minute_is_a_dash() {
        let svg = line("c", "rows/s", 100, &[(100, Some(3.0))]);
        assert!(svg.contains("points=\"238.0,15.0 240.0,15.0\""), "{svg}");
    }
}
