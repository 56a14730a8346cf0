//! Escaping for the formats reports are written in, and shared number formatting.

use std::borrow::Cow;

/// Text safe inside HTML or XML element content, and (quotes included) inside any
/// attribute, so a string cannot break out wherever a template later puts it.
pub fn html(s: &str) -> Cow<'_, str> {
    html_escape::encode_quoted_attribute(s)
}

/// Text safe inside a double-quoted HTML or XML attribute.
pub fn attr(s: &str) -> Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(s)
}

/// Text safe inside a Markdown table cell: no HTML, no table breaks, no emphasis.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Microseconds for people: `850µs`, `12.3ms`, `1.24s`.
pub fn us(v: f64) -> String {
    loadgate_slo::format_value(v, loadgate_slo::Unit::Duration)
}

/// A budget margin for people, capped so silly thresholds stay readable.
pub fn margin(m: Option<f64>) -> String {
    match m {
        None => "–".to_string(),
        Some(m) if m < -9.99 => "<-999%".to_string(),
        Some(m) => format!("{:+.0}%", m * 100.0),
    }
}

/// Requests sent a second time, in words (never hidden: see `Reply::resent`).
pub fn resent(n: u64) -> String {
    format!(
        "resent: {n} request{} sent again on a new connection after the server closed the connection before reading {} (counted once, by the second answer)",
        if n == 1 { "" } else { "s" },
        if n == 1 { "it" } else { "them" }
    )
}

/// Redirects an endpoint's requests followed, in words.
pub fn redirects(n: u64) -> String {
    format!(
        "redirects followed: {n} (each request timed from its intended send to its final answer)"
    )
}

/// Cookies the target set that a session's jar dropped for its bounds, in words. The
/// bounds are the engine's (`session::MAX_COOKIES`, `MAX_COOKIE_BYTES`).
pub fn cookies_dropped(n: u64) -> String {
    format!(
        "{n} cookie{} dropped: the cookie jar holds 50 cookies of up to 4 KiB each, and later requests of the session went without {}",
        if n == 1 { "" } else { "s" },
        if n == 1 { "it" } else { "them" }
    )
}

/// An endpoint's failures explained, one line each: `check_failed 12: json $.status
/// equals "healthy", found "degraded"`, then how many were explained otherwise. The
/// texts are as `summary.json` holds them (masked of secrets, control characters
/// escaped); the caller escapes them for its format.
pub fn failure_lines(e: &loadgate_slo::summary::EndpointSummary) -> Vec<String> {
    let f = &e.failures;
    let mut lines: Vec<String> = f
        .examples
        .iter()
        .map(|x| match &x.found {
            Some(found) => format!(
                "{} {}: {}, found {found}",
                x.outcome.name(),
                x.count,
                x.what
            ),
            None => format!("{} {}: {}", x.outcome.name(), x.count, x.what),
        })
        .collect();
    if f.other > 0 {
        lines.push(format!(
            "{} more failure{} explained otherwise",
            f.other,
            if f.other == 1 { "" } else { "s" }
        ));
    }
    lines
}

/// Every budget a run breached, as `EXPR (SCOPE): MEASURED`, with no-data budgets
/// left out when `measured_only` (an interrupted run claims no breach it had no data for).
pub fn breached(s: &loadgate_slo::summary::RunSummary, measured_only: bool) -> Vec<String> {
    s.slo
        .iter()
        .filter(|r| !(r.pass || (measured_only && r.no_data)))
        .map(|r| format!("{} ({}): {}", r.expr, r.scope, r.measured_text))
        .collect()
}

/// A budget's result in a table: PASS, FAIL, FAIL with no data to judge (which never
/// holds), or FAIL the generator's own error could explain.
pub fn result(r: &loadgate_slo::BudgetResult) -> &'static str {
    match (r.pass, r.robust, r.no_data) {
        (true, ..) => "PASS",
        (false, _, true) => "FAIL (no data)",
        (false, true, false) => "FAIL",
        (false, false, false) => "FAIL (the generator could explain it)",
    }
}

/// A windowed budget's windows in words: how many broke it and where the worst was.
pub fn window(w: &loadgate_slo::window::WindowSummary) -> String {
    let place = format!("{:.0}-{:.0} s", w.worst_start_s, w.worst_end_s);
    if w.windows == 0 && !w.partial {
        format!(
            "no window of {} s had a completed request to judge",
            w.length_s
        )
    } else if w.partial {
        format!(
            "judged once over the whole measured phase ({place}): it is shorter than the {} s window",
            w.length_s
        )
    } else if w.breaching == 0 {
        format!(
            "held in all {} windows of {} s; the worst was {place}",
            w.windows, w.length_s
        )
    } else {
        format!(
            "broken in {} of {} windows of {} s; the worst was {place}",
            w.breaching, w.windows, w.length_s
        )
    }
}

/// What an endpoint's successful streams held, in one plain-text line for people
/// (escape it for HTML or Markdown); `None` when it streamed nothing.
pub fn streams(e: &loadgate_slo::summary::EndpointSummary) -> Option<String> {
    let s = e.stream?;
    let mut line = format!(
        "streams: {} ({:.1} content events and {:.1} tokens each; {:.1} tokens/s in all)",
        s.streams,
        s.events_per_stream,
        s.tokens as f64 / s.streams.max(1) as f64,
        s.tokens_per_s
    );
    if let Some(v) = s.request_tokens_per_s {
        line.push_str(&format!(
            "; each stream's speed after its first token: median {:.1} tokens/s, 90% of streams at least {:.1}, 99% at least {:.1}",
            v.p50, v.p10, v.p1
        ));
    }
    if s.oversized > 0 {
        line.push_str(&format!(
            "; {} events over 1 MiB skipped unread (each counted as one content event)",
            s.oversized
        ));
    }
    if s.skipped > 0 {
        line.push_str(&format!(
            "; {} events skipped unread by loadgate, not the target: its worker's memory budget for unfinished events was spent",
            s.skipped
        ));
    }
    Some(line)
}

/// The timings an endpoint table lists under an endpoint's latency row, each with its
/// figures: every timing that holds a value, except latency itself (the row), time to
/// first byte's service variant (in `summary.json`; a table row would repeat the first
/// byte less the send lag, which has its own row) and, in the closed model, service
/// time (equal to latency: there is no schedule to lag behind).
pub fn timing_rows(
    e: &loadgate_slo::summary::EndpointSummary,
    open: bool,
) -> impl Iterator<Item = (loadgate_metrics::Timing, &loadgate_metrics::LatencyStats)> {
    use loadgate_metrics::Timing;
    Timing::ALL.into_iter().filter_map(move |t| {
        let stats = e.timing(t);
        let shown = !matches!(
            t,
            Timing::Latency | Timing::TtfbService | Timing::TtftService
        ) && stats.count > 0
            && (open || !matches!(t, Timing::Service | Timing::SendLag));
        shown.then_some((t, stats))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `hostile` escaped for `format` reads `written`.
    #[track_caller]
    fn check(format: &str, hostile: &str, written: &str) {
        let escaped = match format {
            "html" => html(hostile).into_owned(),
            "attr" => attr(hostile).into_owned(),
            "md" => md(hostile),
            _ => unreachable!("no escaping for {format}"),
        };
        assert_eq!(escaped, written, "{format}: {hostile}");
    }

    #[test]
    fn hostile_strings_are_neutralised() {
        for (format, hostile, written) in [
            (
                "html",
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("html", "x\" y='z'", "x&quot; y=&#x27;z&#x27;"),
            ("attr", "a\"b<", "a&quot;b&lt;"),
            ("md", "a|b <i>*x*</i>", "a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt;"),
        ] {
            check(format, hostile, written);
        }
    }
}
