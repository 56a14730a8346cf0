//! `summary.md`: the verdict, the SLO table and the endpoint table in GitHub-flavoured
//! Markdown, for `$GITHUB_STEP_SUMMARY` and pull-request comments.

use std::fmt::Write as _;

use loadgate_slo::summary::{RunSummary, Verdict};

use crate::text::{margin, md, us};

/// Renders `summary.md`.
pub fn summary_md(s: &RunSummary) -> String {
    let mut out = String::new();
    let icon = match s.verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Invalid => "⚠️",
        Verdict::Regression => "📉",
        Verdict::Interrupted => "⏹️",
    };
    let _ = writeln!(
        out,
        "## {icon} loadgate: {} — {}\n",
        s.verdict.word(),
        md(&s.scenario)
    );
    let _ = writeln!(
        out,
        "Target `{}` · {} model · {:.0} s measured{} · {} · loadgate {}\n",
        s.origins_shown().replace('`', "'"),
        s.model,
        s.measured_s,
        if s.warmup_s > 0.0 {
            format!(" after {:.0} s warm-up", s.warmup_s)
        } else {
            String::new()
        },
        s.started_at,
        s.loadgate_version
    );
    for r in &s.invalid_reasons {
        let _ = writeln!(out, "> **Invalid run:** {}", md(r));
    }
    if let Some(d) = &s.stop_detail {
        let _ = writeln!(out, "> **Stopped early ({}):** {}", s.stop, md(d));
    }
    if !s.invalid_reasons.is_empty() || s.stop_detail.is_some() {
        out.push('\n');
    }
    if s.slo.is_empty() {
        out.push_str("No SLO budgets.\n\n");
    } else {
        out.push_str("| scope | budget | measured | margin | result |\n|---|---|---:|---:|---|\n");
        for r in &s.slo {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                md(&r.scope),
                r.expr.replace('`', "'"),
                md(&r.measured_text),
                margin(r.margin),
                if r.pass { "✅ pass" } else { "❌ fail" }
            );
        }
        out.push('\n');
    }
    out.push_str("| endpoint | requests | rps | errors | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let cell = |l: &loadgate_metrics::LatencyStats, v: u64| {
        if l.count == 0 {
            "—".to_string()
        } else {
            us(v as f64)
        }
    };
    for e in s.endpoints.iter().chain(std::iter::once(&s.overall)) {
        let l = &e.latency_us;
        let name = if std::ptr::eq(e, &s.overall) {
            "**all**".to_string()
        } else {
            md(&e.name)
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {:.2}% | {} | {} | {} | {} |",
            e.requests,
            e.rps,
            e.error_rate * 100.0,
            cell(l, l.p50),
            cell(l, l.p95),
            cell(l, l.p99),
            cell(l, l.max)
        );
    }
    out.push_str("\nLatency of successful requests; failed ones count in errors (and above every latency budget).\n");
    let explained: Vec<_> = s
        .endpoints
        .iter()
        .filter(|e| !e.failures.is_empty() || e.redirects > 0 || e.cookies_dropped > 0)
        .collect();
    if !explained.is_empty() {
        out.push('\n');
        for e in explained {
            if e.redirects > 0 {
                let _ = writeln!(
                    out,
                    "- {}: {}",
                    md(&e.name),
                    md(&crate::text::redirects(e.redirects))
                );
            }
            if e.cookies_dropped > 0 {
                let _ = writeln!(
                    out,
                    "- {}: {}",
                    md(&e.name),
                    md(&crate::text::cookies_dropped(e.cookies_dropped))
                );
            }
            for line in crate::text::failure_lines(e) {
                let _ = writeln!(out, "- {}: {}", md(&e.name), md(&line));
            }
        }
    }
    if s.overall.resent > 0 {
        let _ = writeln!(out, "\n{}.", md(&crate::text::resent(s.overall.resent)));
    }
    if let Some(r) = &s.rate {
        let _ = writeln!(out, "\nRate: {}.", md(&r.describe()));
    }
    if let Some(p) = &s.pauses {
        let _ = writeln!(
            out,
            "\nGenerator pauses (the machine kept loadgate, or one of its workers, from running): {}.",
            md(&p.describe())
        );
    }
    out
}
