//! The capacity search's page (`report.html` of a capacity directory): verdict and
//! headline, the plan, the per-step table sorted by rate, and the knee charts.

use std::fmt::Write as _;

use loadgate_slo::capacity::{num, CapacityReport, StepVerdict};
use loadgate_slo::summary::Verdict;

use crate::html::{page_end, page_start};
use crate::text::html;
use crate::Artifact;

/// `report.html` and the knee charts of a capacity search.
pub fn render_capacity(r: &CapacityReport) -> Vec<Artifact> {
    let charts = crate::charts::capacity(r);
    let (class, meaning) = match r.verdict {
        Verdict::Pass => ("pass", "the sustainable rate meets the requirement"),
        Verdict::Invalid => (
            "invalid",
            "loadgate could not send fast enough to show whether the target meets the requirement",
        ),
        _ => ("fail", "the sustainable rate is below the requirement"),
    };
    let meaning = if r.require_rps.is_none() && r.verdict == Verdict::Pass {
        "the search found a rate at which every budget holds"
    } else if r.require_rps.is_none() && r.verdict == Verdict::Fail {
        "no rate tried met every budget"
    } else {
        meaning
    };
    let mut o = String::with_capacity(64 * 1024);
    page_start(
        &mut o,
        &format!("{} — capacity of {}", r.verdict.word(), r.scenario),
        class,
        meaning,
    );
    let _ = writeln!(
        o,
        "<section id=\"capacity\"><h2>Capacity</h2><p><strong>{}</strong></p>",
        html(&r.headline())
    );
    o.push_str("<dl class=\"meta\">\n");
    let mut meta = vec![
        ("scenario", format!("{} ({})", r.scenario, r.scenario_file)),
        ("target", r.target.clone()),
        ("started", r.started_at.clone()),
        ("ended", r.ended_at.clone()),
        (
            "plan",
            format!(
                "from {} rps, {} per step, up to {} rps; {} s measured after {} s settling at each rate; at most {} bisection steps",
                num(r.plan.start_rps),
                r.plan.step,
                num(r.plan.max_rps),
                r.plan.step_duration_s,
                r.plan.settle_s,
                r.plan.refine
            ),
        ),
        ("stopped", r.stop.clone()),
        ("budgets", r.budgets.join("; ")),
        ("loadgate", r.loadgate_version.clone()),
    ];
    if let Some(req) = r.require_rps {
        meta.push(("required", format!("{} rps", num(req))));
    }
    for (k, v) in meta {
        let _ = writeln!(o, "<dt>{k}</dt><dd>{}</dd>", html(&v));
    }
    o.push_str("</dl>\n</section>\n");

    o.push_str("<section id=\"steps\"><h2>Steps (by offered rate)</h2>\n<table><thead><tr><th>offered rps</th><th>sent rps</th><th>succeeded rps</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>errors</th><th>result</th><th class=\"l\">why</th></tr></thead><tbody>\n");
    for s in r.steps_by_rate() {
        let (cls, word) = match s.verdict {
            StepVerdict::Pass => ("pass", "PASS"),
            StepVerdict::Breach => ("fail", "BREACH"),
            StepVerdict::GeneratorLimit => ("fail", "GENERATOR LIMIT"),
        };
        let why = if s.verdict == StepVerdict::GeneratorLimit {
            s.invalid_reasons.join("; ")
        } else {
            s.breached.join("; ")
        };
        // A step in which nothing succeeded has no latency (not 0 ms).
        let ms = |v: f64| {
            if crate::charts::answered(s) {
                format!("{v:.2}")
            } else {
                "—".to_string()
            }
        };
        let _ = writeln!(
            o,
            "<tr><td>{}{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td class=\"{cls}\">{word}</td><td class=\"l\">{}</td></tr>",
            num(s.rate_rps),
            if s.refinement { " (bisect)" } else { "" },
            s.achieved_rps,
            s.success_rps,
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            s.error_rate * 100.0,
            html(&why)
        );
    }
    o.push_str("</tbody></table>\n<p class=\"classes\">Each step is an open-model run at the offered rate; latency is measured from each request's intended send time, after the settle time. A generator limit means loadgate itself could not hold the rate, which says nothing about the target.</p>\n</section>\n");
    page_end(&mut o, &charts);
    let mut out = vec![Artifact {
        name: "report.html".into(),
        contents: o,
    }];
    out.extend(charts.into_iter().map(|c| Artifact {
        name: c.file.to_string(),
        contents: c.svg,
    }));
    out
}
