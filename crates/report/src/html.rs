//! `report.html`: one self-contained page (inline CSS, inline SVG, no JavaScript, nothing
//! loaded from any network). Every string from a scenario, a target or the environment
//! goes through [`crate::text::html`] or [`crate::text::attr`].

use std::fmt::Write as _;

use loadgate_metrics::Outcome;
use loadgate_slo::summary::{EndpointSummary, Verdict};

use crate::charts::Chart;
use crate::rundir::RunDir;
use crate::text::{html, margin, us};

const CSS: &str = r#"
:root { color-scheme: light; --pass: #1a7f37; --fail: #cf222e; --invalid: #9a6700; --muted: #57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
header.verdict { border-radius: 8px; padding: 18px 22px; color: #fff; margin-bottom: 18px; }
header.pass { background: var(--pass); } header.fail { background: var(--fail); } header.invalid { background: var(--invalid); } header.regression { background: #8250df; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; opacity: .95; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin-bottom: 18px; overflow-x: auto; }
h2 { font-size: 17px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
tr.service td { color: var(--muted); font-size: 12px; }
tr.total td { font-weight: 600; }
td.pass { color: var(--pass); font-weight: 600; } td.fail { color: var(--fail); font-weight: 600; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.warn { border-left: 4px solid var(--invalid); padding: 6px 10px; background: #fff8c5; margin: 6px 0; }
figure { margin: 0 0 14px; } figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12px; }
.classes { color: var(--muted); font-size: 12px; text-align: left; }
.kind { color: var(--muted); font-size: 11px; }
"#;

/// The page up to `<main>`: head with the CSP and the CSS, then the verdict banner.
/// `title` is escaped here; `class` and `meaning` are loadgate's own words.
pub(crate) fn page_start(o: &mut String, title: &str, class: &str, meaning: &str) {
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <title>loadgate {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        html(title)
    );
    let _ = writeln!(
        o,
        "<header class=\"verdict {class}\" id=\"verdict\"><h1>{}</h1><p>{}</p></header>",
        html(title),
        html(meaning)
    );
}

/// The charts section and the end of the page.
pub(crate) fn page_end(o: &mut String, charts: &[Chart]) {
    o.push_str("<section id=\"charts\"><h2>Charts</h2>\n");
    for c in charts {
        let _ = writeln!(o, "<figure data-chart=\"{}\">{}<figcaption>{} (also <code>{}</code>)</figcaption></figure>", c.file, c.svg, html(&c.title), c.file);
    }
    o.push_str("</section>\n</main>\n</body>\n</html>\n");
}

pub(crate) fn verdict_words(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Pass => ("pass", "every budget held on a valid run"),
        Verdict::Fail => ("fail", "at least one SLO budget was breached"),
        Verdict::Regression => ("regression", "every budget held, but the run is worse than its baseline beyond the regression budgets and beyond noise"),
        Verdict::Invalid => ("invalid", "loadgate's own shortfall could have changed the verdict or the load the target saw, so the run neither passes nor fails"),
        Verdict::Interrupted => ("invalid", "the run was stopped before the end of its profile; the budgets judge only what was measured until then"),
    }
}

/// Renders `report.html` with `charts` inline.
pub fn report_html(
    run: &RunDir,
    charts: &[Chart],
    comparison: Option<&loadgate_slo::compare::Comparison>,
) -> String {
    let s = &run.summary;
    let (class, words) = verdict_words(s.verdict);
    // A failed run's banner names every breach with what was measured.
    let breached = crate::text::breached(s, false);
    let meaning = match s.verdict {
        Verdict::Fail if !breached.is_empty() => format!("breached: {}", breached.join("; ")),
        _ => words.to_string(),
    };
    let mut o = String::with_capacity(64 * 1024);
    page_start(
        &mut o,
        &format!("{} — {}", s.verdict.word(), s.scenario),
        class,
        &meaning,
    );

    o.push_str("<section id=\"run\"><h2>Run</h2><dl class=\"meta\">\n");
    let mut meta = vec![
        ("scenario", format!("{} ({})", s.scenario, s.scenario_file)),
        ("target", s.origins_shown()),
        ("load model", s.model.clone()),
        ("started", s.started_at.clone()),
        (
            "duration",
            format!(
                "{:.0} s profile, {:.1} s measured after {:.0} s warm-up, {:.1} s drain",
                s.duration_s, s.measured_s, s.warmup_s, s.drain_s
            ),
        ),
        (
            "stop",
            s.stop_detail
                .clone()
                .map_or(s.stop.clone(), |d| format!("{}: {d}", s.stop)),
        ),
        ("loadgate", s.loadgate_version.clone()),
        ("workers", workers_fact(s.workers, &s.pinned_cpus)),
    ];
    if let Some(p) = protocols_fact(s) {
        meta.push(("protocols", p));
    }
    if let Some(c) = &s.git_commit {
        meta.push(("git commit", c.clone()));
    }
    if let Some(c) = &s.ci_run {
        meta.push(("CI run", c.clone()));
    }
    if let Some(g) = &s.segment {
        meta.push((
            "segment",
            format!(
                "{}/{} of a split load{}",
                g.index,
                g.count,
                g.start_at
                    .as_ref()
                    .map(|t| format!(", schedule began at {t}"))
                    .unwrap_or_default()
            ),
        ));
    }
    for (k, v) in meta {
        let _ = writeln!(o, "<dt>{k}</dt><dd>{}</dd>", html(&v));
    }
    o.push_str("</dl>\n");
    for r in &s.invalid_reasons {
        let _ = writeln!(
            o,
            "<p class=\"warn\"><strong>Invalid run:</strong> {}</p>",
            html(r)
        );
    }
    if let Some(r) = &s.rate {
        let _ = writeln!(o, "<p>Rate: {}.</p>", html(&r.describe()));
    }
    if let Some(p) = &s.pauses {
        let _ = writeln!(
            o,
            "<p>Generator pauses (the machine kept loadgate, or one of its workers, from running): {}.</p>",
            html(&p.describe())
        );
    }
    o.push_str("</section>\n");

    segments_section(&mut o, s);

    o.push_str("<section id=\"slo\"><h2>SLO budgets</h2>\n");
    if s.slo.is_empty() {
        o.push_str("<p>No budgets: the verdict reflects run validity only.</p>\n");
    } else {
        o.push_str("<table><thead><tr><th>scope</th><th class=\"l\">budget</th><th>measured</th><th>margin</th><th>result</th></tr></thead><tbody>\n");
        let mut scopes: Vec<&str> = vec!["global"];
        for r in &s.slo {
            if !scopes.contains(&r.scope.as_str()) {
                scopes.push(&r.scope);
            }
        }
        for scope in scopes {
            for r in s.slo.iter().filter(|r| r.scope == scope) {
                let result = crate::text::result(r);
                let note = r
                    .window
                    .as_ref()
                    .map(|w| format!("<br><small>{}</small>", html(&crate::text::window(w))))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td class=\"l\"><code>{}</code>{note}</td><td>{}</td><td>{}</td><td class=\"{}\">{result}</td></tr>",
                    html(&r.scope),
                    html(&r.expr),
                    html(&r.measured_text),
                    margin(r.margin),
                    if r.pass { "pass" } else { "fail" },
                );
            }
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("</section>\n");

    if let Some(c) = comparison {
        o.push_str(&crate::compare::compare_section(c));
    }
    o.push_str("<section id=\"endpoints\"><h2>Endpoints (measured phase)</h2>\n<table><thead><tr><th>endpoint</th><th>requests</th><th>rps</th><th>errors</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody>\n");
    for e in s.endpoints.iter().chain(std::iter::once(&s.overall)) {
        let kind = s.row_kind(&e.name);
        endpoint_rows(
            &mut o,
            e,
            kind,
            std::ptr::eq(e, &s.overall),
            s.model == "open",
        );
    }
    o.push_str("</tbody></table>\n");
    o.push_str("<p class=\"classes\">Latency figures cover successful requests (the expected status, every check passed); failed requests are counted by class under each row, and a latency budget counts them as slower than its threshold.");
    if !s.flows.is_empty() {
        o.push_str(" A flow's row counts its iterations (from the first step's due time to the last step's end; its outcome is its first failed step's), a poll's its time until the answer was ready; neither is in <em>all</em>, which counts requests.");
    }
    if !s.auth.is_empty() {
        o.push_str(" The <em>auth</em> row counts the token fetches of <code>[auth]</code> (each a login loadgate sent for itself, not the load): not in <em>all</em>; a request that needed a token when none could be had counts as <code>auth_failed</code> in its own row.");
    }
    if s.model == "open" {
        o.push_str(" Latency is measured from each request's intended send time (coordinated-omission corrected); the grey row is service time from the moment loadgate started the request.");
    }
    o.push_str("</p>\n");
    o.push_str("</section>\n");
    goodput_section(&mut o, s);

    page_end(&mut o, charts);
    o
}

/// The good requests of each endpoint and of the run, with the limits they met, when
/// the scenario set any (the goodput chart draws them per second).
fn goodput_section(o: &mut String, s: &loadgate_slo::summary::RunSummary) {
    if s.goodput_limits.is_empty() {
        return;
    }
    o.push_str("<section id=\"goodput\"><h2>Goodput (measured phase)</h2>\n<table><thead><tr><th>endpoint</th><th class=\"l\">limits</th><th>requests</th><th>good</th><th>goodput rps</th><th>attainment</th></tr></thead><tbody>\n");
    for e in s.endpoints.iter().chain(std::iter::once(&s.overall)) {
        let total = std::ptr::eq(e, &s.overall);
        let limits = match s.goodput_limits.get(&e.name) {
            _ if total => String::new(),
            Some(l) => l.describe(),
            None => "none: every success".to_string(),
        };
        let _ = writeln!(
            o,
            "<tr{}><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}%</td></tr>",
            if total { " class=\"total\"" } else { "" },
            html(&e.name),
            html(&limits),
            e.requests,
            e.good,
            e.goodput_rps,
            e.attainment * 100.0
        );
    }
    o.push_str("</tbody></table>\n<p class=\"classes\">A request is good when it succeeded and met every goodput limit of its endpoint, each timed from its intended send, as latency; goodput is the good requests per second of the measured phase, attainment their share of the completed requests. The goodput chart draws each second's good requests over its successes, by the second they completed, as windowed goodput budgets count them.</p>\n</section>\n");
}

/// The worker count and where the workers ran: "2, pinned to CPUs 0, 1" or "4, not pinned".
/// The responses by protocol (`HTTP/1.1: 1200, h2: 0`), then, when the endpoints did
/// not all use the same, each endpoint's; `None` for a summary from before it was
/// counted.
fn protocols_fact(s: &loadgate_slo::summary::RunSummary) -> Option<String> {
    let list = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .filter(|(_, &n)| n > 0)
            .map(|(p, n)| format!("{p} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = list(&s.overall.protocols);
    if all.is_empty() {
        return None;
    }
    let each: Vec<String> = s.endpoints.iter().map(|e| list(&e.protocols)).collect();
    if s.endpoints.len() < 2 || each.iter().all(|e| e.is_empty() || *e == each[0]) {
        return Some(format!("responses over {all}"));
    }
    let per = s
        .endpoints
        .iter()
        .zip(&each)
        .filter(|(_, l)| !l.is_empty())
        .map(|(e, l)| format!("{}: {l}", e.name))
        .collect::<Vec<_>>()
        .join("; ");
    Some(format!("responses over {all} ({per})"))
}

fn workers_fact(workers: usize, pinned: &[usize]) -> String {
    if pinned.is_empty() {
        return format!("{workers}, not pinned");
    }
    let cpus: Vec<String> = pinned.iter().map(usize::to_string).collect();
    let some = if pinned.len() < workers {
        format!("{} of them ", pinned.len())
    } else {
        String::new()
    };
    let noun = if pinned.len() == 1 { "CPU" } else { "CPUs" };
    format!("{workers}, {some}pinned to {noun} {}", cpus.join(", "))
}

/// A merged run: each segment's run with what it sent, so a starved worker shows.
fn segments_section(o: &mut String, s: &loadgate_slo::summary::RunSummary) {
    if s.merged_from.is_empty() {
        return;
    }
    let total: u64 = s.merged_from.iter().map(|r| r.sent).sum();
    let _ = writeln!(
        o,
        "<section id=\"segments\"><h2>Segments ({} merged)</h2>\n<table><thead><tr><th class=\"l\">segment</th><th class=\"l\">run</th><th class=\"l\">started</th><th>workers</th><th>target rps</th><th>sent rps</th><th>of its share</th><th>share of all sends</th><th>late</th><th>dropped</th><th>error rate</th><th>own verdict</th></tr></thead><tbody>",
        s.merged_from.len()
    );
    for r in &s.merged_from {
        let ok = r.verdict != Verdict::Invalid;
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td class=\"{}\">{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{:.2}%</td><td class=\"{}\">{}</td></tr>",
            html(&r.segment),
            html(&r.run),
            html(&r.started_at),
            r.workers,
            r.target_rps.map_or("—".to_string(), |t| format!("{t:.1}")),
            r.achieved_rps,
            if ok { "" } else { "fail" },
            r.achieved_ratio
                .map_or("—".to_string(), |a| format!("{:.1}%", a * 100.0)),
            if total > 0 { r.sent as f64 * 100.0 / total as f64 } else { 0.0 },
            r.late,
            r.dropped,
            r.error_rate * 100.0,
            if r.verdict == Verdict::Pass { "pass" } else { "fail" },
            r.verdict.word()
        );
    }
    o.push_str("</tbody></table>\n<p class=\"classes\">Each segment sent every N-th arrival (or VU) of one schedule; the histograms above are their exact sum. A segment that was invalid on its own (late or dropped sends, or short of its share) makes the merged run invalid.</p>\n</section>\n");
}

fn endpoint_rows(o: &mut String, e: &EndpointSummary, kind: Option<&str>, total: bool, open: bool) {
    let l = &e.latency_us;
    let cells = |l: &loadgate_metrics::LatencyStats| {
        [
            l.min as f64,
            l.mean,
            l.p50 as f64,
            l.p90 as f64,
            l.p95 as f64,
            l.p99 as f64,
            l.p999 as f64,
            l.max as f64,
        ]
        .iter()
        .map(|&v| {
            if l.count == 0 {
                "<td>—</td>".to_string()
            } else {
                format!("<td>{}</td>", us(v))
            }
        })
        .collect::<String>()
    };
    let _ = writeln!(
        o,
        "<tr{}><td>{}{}</td><td>{}</td><td>{:.1}</td><td>{:.2}%</td>{}</tr>",
        if total { " class=\"total\"" } else { "" },
        html(&e.name),
        kind.map_or(String::new(), |k| format!(
            " <span class=\"kind\">{k}</span>"
        )),
        e.requests,
        e.rps,
        e.error_rate * 100.0,
        cells(l)
    );
    for (t, stats) in crate::text::timing_rows(e, open) {
        let _ = writeln!(
            o,
            "<tr class=\"service\"><td>{}</td><td>{}</td><td></td><td></td>{}</tr>",
            t.label(),
            stats.count,
            cells(stats)
        );
    }
    let classes: Vec<String> = e
        .outcomes
        .iter()
        .filter(|(c, n)| *n > 0 && *c != Outcome::Success)
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    if !classes.is_empty() {
        let _ = writeln!(
            o,
            "<tr><td></td><td colspan=\"11\" class=\"classes\">errors: {}</td></tr>",
            classes.join(", ")
        );
    }
    if let Some(line) = crate::text::streams(e) {
        let _ = writeln!(
            o,
            "<tr><td></td><td colspan=\"11\" class=\"classes\">{}</td></tr>",
            html(&line)
        );
    }
    if total && e.resent > 0 {
        let _ = writeln!(
            o,
            "<tr><td></td><td colspan=\"11\" class=\"classes\">{}</td></tr>",
            html(&crate::text::resent(e.resent))
        );
    }
    if e.redirects > 0 {
        let _ = writeln!(
            o,
            "<tr><td></td><td colspan=\"11\" class=\"classes\">{}</td></tr>",
            html(&crate::text::redirects(e.redirects))
        );
    }
    if !total && e.cookies_dropped > 0 {
        let _ = writeln!(
            o,
            "<tr><td></td><td colspan=\"11\" class=\"classes\">{}</td></tr>",
            html(&crate::text::cookies_dropped(e.cookies_dropped))
        );
    }
    // Each endpoint's own (the total's would repeat them).
    if !total {
        for line in crate::text::failure_lines(e) {
            let _ = writeln!(
                o,
                "<tr><td></td><td colspan=\"11\" class=\"classes\">failure: {}</td></tr>",
                html(&line)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::workers_fact;

    #[test]
    fn the_workers_fact_says_where_they_ran() {
        assert_eq!(workers_fact(2, &[0, 1]), "2, pinned to CPUs 0, 1");
        assert_eq!(workers_fact(4, &[]), "4, not pinned");
        assert_eq!(workers_fact(1, &[3]), "1, pinned to CPU 3");
        assert_eq!(workers_fact(2, &[1]), "2, 1 of them pinned to CPU 1");
    }
}
