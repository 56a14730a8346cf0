//! The console summary: per-endpoint table, SLO table, rate line and verdict.

use std::fmt::Write as _;

use loadgate_slo::summary::{EndpointSummary, RateSummary, RunSummary, Verdict};
use loadgate_slo::BudgetResult;

fn ms(us: u64) -> String {
    loadgate_slo::format_value(us as f64, loadgate_slo::Unit::Duration)
}

/// The per-endpoint table: each endpoint's latency, and under it its other timings
/// (see `loadgate_report::text::timing_rows`).
pub(crate) fn endpoint_table(
    endpoints: &[EndpointSummary],
    all: &EndpointSummary,
    open: bool,
) -> String {
    let mut out = String::new();
    let width = endpoints
        .iter()
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(3)
        .clamp(24, 40); // at least "  first byte (service)"
    let _ = writeln!(
        out,
        "{:<width$}  {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "requests", "rps", "errors", "min", "mean", "p50", "p90", "p95", "p99", "max"
    );
    let _ = writeln!(
        out,
        "{:<width$}  {:>25} latency of successful requests; failed ones count in errors (a latency budget ranks them above its threshold, so its figure can be higher)",
        "", ""
    );
    for e in endpoints.iter().chain(std::iter::once(all)) {
        let counts = format!(
            "{:>8} {:>8.1} {:>6.2}%",
            e.requests,
            e.rps,
            e.error_rate * 100.0
        );
        let _ = writeln!(
            out,
            "{:<width$}  {counts} {}",
            truncate(&e.name, width),
            latency_cells(&e.latency_us)
        );
        for (t, stats) in loadgate_report::text::timing_rows(e, open) {
            let _ = writeln!(
                out,
                "{:<width$}  {:>8} {:>16} {}",
                truncate(&format!("  {}", t.label()), width),
                stats.count,
                "",
                latency_cells(stats)
            );
        }
        let classes: Vec<String> = e
            .outcomes
            .iter()
            .filter(|(o, n)| *n > 0 && *o != loadgate_metrics::Outcome::Success)
            .map(|(o, n)| match o {
                // Shown for what they are, whatever the verdict.
                loadgate_metrics::Outcome::ConnectError if e.local_errors > 0 => format!(
                    "{} {n} ({} of them loadgate's own: no free descriptor, port or socket memory)",
                    o.name(),
                    e.local_errors
                ),
                _ => format!("{} {n}", o.name()),
            })
            .collect();
        if !classes.is_empty() {
            let _ = writeln!(out, "{:<width$}  errors: {}", "", classes.join(", "));
        }
        // Each endpoint's own explanations (the total's would repeat them).
        if !std::ptr::eq(e, all) {
            for line in loadgate_report::text::failure_lines(e) {
                let _ = writeln!(out, "{:<width$}    {line}", "");
            }
        }
        if e.redirects > 0 {
            let _ = writeln!(
                out,
                "{:<width$}  {}",
                "",
                loadgate_report::text::redirects(e.redirects)
            );
        }
        if !std::ptr::eq(e, all) && e.cookies_dropped > 0 {
            let _ = writeln!(
                out,
                "{:<width$}  {}",
                "",
                loadgate_report::text::cookies_dropped(e.cookies_dropped)
            );
        }
        if let Some(line) = loadgate_report::text::streams(e) {
            let _ = writeln!(out, "{:<width$}  {line}", "");
        }
        if let Some(line) = transfer(e) {
            let _ = writeln!(out, "{:<width$}  {line}", "");
        }
        if std::ptr::eq(e, all) && e.connects > 0 {
            let _ = writeln!(out, "{:<width$}  {}", "", connections(e));
        }
        if std::ptr::eq(e, all) && e.resent > 0 {
            let _ = writeln!(
                out,
                "{:<width$}  {}",
                "",
                loadgate_report::text::resent(e.resent)
            );
        }
    }
    out
}

/// What an endpoint's responses brought, compactly: the body bytes as they came over
/// the wire, the decoded bytes only when decoding changed them, and the protocols the
/// responses came over when any is known; `None` when there is nothing to say.
fn transfer(e: &EndpointSummary) -> Option<String> {
    let mut parts = Vec::new();
    if e.bytes > 0 || e.decoded_bytes.is_some_and(|d| d > 0) {
        let mut body = format!("body {}", bytes(e.bytes));
        if let Some(d) = e.decoded_bytes.filter(|&d| d != e.bytes) {
            body.push_str(&format!(" ({} decoded)", bytes(d)));
        }
        parts.push(body);
    }
    let protocols: Vec<String> = e
        .protocols
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    if !protocols.is_empty() {
        parts.push(format!("over {}", protocols.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A byte count for people: B, KiB, MiB or GiB.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

/// Connections opened and how long they took: time that a request spent waiting for a
/// connection to open is inside its latency; this says how much of it there was.
pub(crate) fn connections(e: &EndpointSummary) -> String {
    let c = &e.connect_us;
    format!(
        "connections opened in the measured phase: {}, connect p50 {} p99 {} max {}",
        e.connects,
        ms(c.p50),
        ms(c.p99),
        ms(c.max)
    )
}

/// min, mean, p50, p90, p95, p99 and max, each right-aligned in 9 columns.
fn latency_cells(l: &loadgate_metrics::LatencyStats) -> String {
    [l.min, l.mean as u64, l.p50, l.p90, l.p95, l.p99, l.max]
        .iter()
        .map(|&v| {
            // Nothing succeeded: no latency to show, not a latency of zero.
            let cell = if l.count == 0 {
                "—".to_string()
            } else {
                ms(v)
            };
            format!("{cell:>9}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// The SLO table.
pub(crate) fn slo_table(results: &[BudgetResult]) -> String {
    if results.is_empty() {
        return "no SLO budgets: the verdict only reflects run validity\n".to_string();
    }
    let mut out = String::new();
    // Each column as wide as its widest cell, and its heading.
    let width = |cell: fn(&BudgetResult) -> &str, heading: usize| {
        results
            .iter()
            .map(|r| cell(r).chars().count())
            .fold(heading, usize::max)
    };
    let sw = width(|r| &r.scope, 6);
    let bw = width(|r| &r.expr, 6);
    let mw = width(|r| &r.measured_text, 8);
    let _ = writeln!(
        out,
        "{:<sw$}  {:<bw$}  {:>mw$}  {:>8}  result",
        "scope", "budget", "measured", "margin"
    );
    for r in results {
        let margin = loadgate_report::text::margin(r.margin);
        let result = loadgate_report::text::result(r);
        let _ = writeln!(
            out,
            "{:<sw$}  {:<bw$}  {:>mw$}  {:>8}  {result}",
            r.scope, r.expr, r.measured_text, margin,
        );
        if let Some(w) = &r.window {
            let _ = writeln!(out, "{:<sw$}  {}", "", loadgate_report::text::window(w));
        }
    }
    out
}

/// What the verdict line adds: the breached budgets with their measured values, or how
/// far an interrupted run got.
pub(crate) fn verdict_detail(s: &RunSummary) -> String {
    let breached = loadgate_report::text::breached(s, false);
    // An interrupted run claims no breach for a budget it had no data for yet, nor for
    // a throughput budget: the stop cut its rate short (requests it abandoned, seconds
    // it never sent), not the target.
    let breached_measured: Vec<String> = loadgate_report::text::breached(s, true)
        .into_iter()
        .filter(|b| !b.starts_with("throughput"))
        .collect();
    match s.verdict {
        Verdict::Fail if breached.is_empty() => s.stop_detail.clone().unwrap_or_default(),
        Verdict::Fail => format!("breached: {}", breached.join("; ")),
        Verdict::Invalid => "loadgate could not hold the load; see `invalid:` above".into(),
        Verdict::Interrupted if breached_measured.is_empty() => format!(
            "stopped after {:.1} s; no budget was breached in what was measured",
            s.warmup_s + s.measured_s
        ),
        Verdict::Interrupted => format!(
            "stopped after {:.1} s; in what was measured, breached: {}",
            s.warmup_s + s.measured_s,
            breached_measured.join("; ")
        ),
        _ => String::new(),
    }
}

/// The open model's rate line.
pub(crate) fn rate_line(r: &RateSummary) -> String {
    format!("rate: {}\n", r.describe())
}

/// The last line.
pub(crate) fn verdict_line(v: Verdict, detail: &str) -> String {
    format!(
        "verdict: {}{}\n",
        v.word(),
        if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console says what the summary says of an endpoint's bodies and protocols,
    /// compactly: decoded bytes only when decoding changed the count, protocols only
    /// those that carried responses, nothing when nothing is known.
    #[test]
    fn the_endpoint_table_shows_body_bytes_decoded_bytes_and_protocols() {
        let shard = loadgate_metrics::EndpointShard::new(60_000_000);
        let mut e = EndpointSummary {
            bytes: 3 << 20,
            decoded_bytes: Some(12 << 20),
            ..EndpointSummary::of("api", &shard, 1.0)
        };
        e.protocols.clear();
        e.protocols.insert("HTTP/1.1".into(), 0);
        e.protocols.insert("h2".into(), 1200);
        assert_eq!(
            transfer(&e).as_deref(),
            Some("body 3.0 MiB (12.0 MiB decoded); over h2 1200")
        );
        let table = endpoint_table(std::slice::from_ref(&e), &e, true);
        assert!(
            table.contains("body 3.0 MiB (12.0 MiB decoded); over h2 1200"),
            "{table}"
        );
        // Not compressed: the decoded count is the wire's, said once.
        e.decoded_bytes = Some(3 << 20);
        assert_eq!(transfer(&e).as_deref(), Some("body 3.0 MiB; over h2 1200"));
        e.protocols.clear();
        e.decoded_bytes = None;
        e.bytes = 900;
        assert_eq!(transfer(&e).as_deref(), Some("body 900 B"));
        e.bytes = 0;
        assert_eq!(transfer(&e), None);
    }
}
