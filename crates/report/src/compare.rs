//! The baseline comparison for people: `compare.md` and the HTML deltas section.

use std::fmt::Write as _;

use loadgate_slo::compare::{Comparison, Movement};

use crate::text::{html, md, us};

fn fmt_value(budget: &str, v: f64) -> String {
    if budget.starts_with("throughput") || budget.starts_with("rps") {
        format!("{v:.1} rps")
    } else if budget.starts_with("error_rate") {
        format!("{:.2}%", v * 100.0)
    } else {
        us(v)
    }
}

fn fmt_delta(budget: &str, d: f64, rel: Option<f64>) -> String {
    let abs = if budget.starts_with("error_rate") {
        format!("{:+.2}pp", d * 100.0)
    } else if d >= 0.0 {
        format!("+{}", fmt_value(budget, d))
    } else {
        format!("-{}", fmt_value(budget, -d))
    };
    match rel {
        Some(r) if !budget.starts_with("error_rate") => format!("{abs} ({:+.1}%)", r * 100.0),
        _ => abs,
    }
}

fn word(m: Movement) -> &'static str {
    match m {
        Movement::Ok => "ok",
        Movement::Improved => "improved",
        Movement::Regression => "REGRESSION",
        Movement::WithinNoise => "within noise",
    }
}

/// `compare.md`.
pub fn compare_md(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} loadgate compare: {}\n",
        if c.regression || !c.incomparable.is_empty() {
            "❌"
        } else {
            "✅"
        },
        if !c.incomparable.is_empty() {
            "not comparable"
        } else if c.regression {
            "REGRESSION"
        } else {
            "no regression"
        }
    );
    for r in &c.incomparable {
        let _ = writeln!(o, "> **Not comparable:** {}\n", md(r));
    }
    let _ = writeln!(
        o,
        "Baseline {} · new {} · budgets {}\n",
        md(&c.baseline),
        md(&c.new),
        md(&c.budgets.join(", "))
    );
    o.push_str(
        "| endpoint | budget | baseline | new | delta | result |\n|---|---|---:|---:|---:|---|\n",
    );
    for r in &c.rows {
        let _ = writeln!(
            o,
            "| {} | `{}` | {} | {} | {} | {} |",
            md(&r.scope),
            r.budget,
            fmt_value(&r.budget, r.baseline),
            fmt_value(&r.budget, r.new),
            fmt_delta(&r.budget, r.delta, r.delta_rel),
            word(r.movement)
        );
    }
    if !c.distributions.is_empty() {
        o.push_str("\n| endpoint | timing | KS distance | critical (α=0.01) | distributions |\n|---|---|---:|---:|---|\n");
        for d in &c.distributions {
            let _ = writeln!(
                o,
                "| {} | {} | {:.4} | {:.4} | {} |",
                md(&d.scope),
                md(&d.timing),
                d.ks_distance,
                d.critical,
                if d.differ {
                    "differ"
                } else {
                    "same within noise"
                }
            );
        }
    }
    for (label, list) in [
        ("only in the baseline", &c.only_in_baseline),
        ("only in the new run", &c.only_in_new),
    ] {
        if !list.is_empty() {
            let _ = writeln!(
                o,
                "\nEndpoints {label}: {}",
                list.iter().map(|n| md(n)).collect::<Vec<_>>().join(", ")
            );
        }
    }
    o
}

/// The HTML section of `report.html` when a baseline is given.
pub fn compare_section(c: &Comparison) -> String {
    let mut o = String::from("<section id=\"baseline\"><h2>Against the baseline</h2>\n");
    for r in &c.incomparable {
        let _ = writeln!(
            o,
            "<p class=\"warn\"><strong>Not comparable:</strong> {}; the differences below decide nothing.</p>",
            html(r)
        );
    }
    let _ = writeln!(
        o,
        "<p>Baseline {} · budgets <code>{}</code></p>",
        html(&c.baseline),
        html(&c.budgets.join(", "))
    );
    o.push_str("<table><thead><tr><th>endpoint</th><th class=\"l\">budget</th><th>baseline</th><th>new</th><th>delta</th><th>result</th></tr></thead><tbody>\n");
    for r in &c.rows {
        let class = match r.movement {
            Movement::Regression => "fail",
            Movement::Improved => "pass",
            _ => "",
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            html(&r.scope),
            html(&r.budget),
            fmt_value(&r.budget, r.baseline),
            fmt_value(&r.budget, r.new),
            fmt_delta(&r.budget, r.delta, r.delta_rel),
            word(r.movement)
        );
    }
    o.push_str("</tbody></table>\n");
    for d in &c.distributions {
        let _ = writeln!(
            o,
            "<p class=\"classes\">{} ({}): Kolmogorov–Smirnov distance {:.4} (critical {:.4} at α = 0.01, n = {} vs {}): {}.</p>",
            html(&d.scope),
            html(&d.timing),
            d.ks_distance,
            d.critical,
            d.n_baseline,
            d.n_new,
            if d.differ { "the distributions differ" } else { "the distributions are the same within noise" }
        );
    }
    for (label, list) in [
        ("only in the baseline", &c.only_in_baseline),
        ("only in this run", &c.only_in_new),
    ] {
        if !list.is_empty() {
            let _ = writeln!(
                o,
                "<p class=\"warn\">Endpoints {label}: {}</p>",
                html(&list.join(", "))
            );
        }
    }
    o.push_str("</section>\n");
    o
}
