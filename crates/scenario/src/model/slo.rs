//! `[slo]`: the budgets on the whole run and on each endpoint, with their abort policy.
//!
//! Not here: the budget language (`loadgate_slo::parse`) or judging a run against it.

use std::time::Duration;

use super::scenario::{LoadModel, Slo, SloBudget};
use super::value::{duration, DURATION_HINT};
use crate::diag::Sink;
use crate::raw;

/// Budgets measuring streams (first token, gaps) where nothing streams: what is said.
pub fn stream_problem(b: &loadgate_slo::Budget, scope: &str) -> Option<(String, String)> {
    use loadgate_metrics::Timing;
    matches!(b.timing, Timing::Ttft | Timing::TtftService | Timing::Itl).then(|| {
        (
            format!(
                "budget `{}` measures streamed responses, and {scope} streams",
                b.text
            ),
            "add stream = \"sse\" (or \"ndjson\", \"chunks\") to the endpoint, or budget the first byte with ttfb_".to_string(),
        )
    })
}

fn budgets(
    sink: &mut Sink<'_>,
    items: &[raw::S<raw::BudgetItem>],
    default_delay: Duration,
    model: Option<LoadModel>,
    unstreamed: Option<&str>,
) -> Vec<SloBudget> {
    let mut out = Vec::new();
    for item in items {
        let (expr, abort, delay, body_start) = match item.get_ref() {
            raw::BudgetItem::Expr(e) => (
                e.as_str(),
                false,
                None,
                sink.string_body_start(&item.span()),
            ),
            raw::BudgetItem::Table(t) => (
                t.expr.as_str(),
                t.abort_on_fail,
                t.abort_delay.as_deref(),
                item.span().start,
            ),
        };
        let abort_delay = match delay {
            None => default_delay,
            Some(d) => match humantime::parse_duration(d) {
                Ok(d) => d,
                Err(e) => {
                    sink.span(
                        item.span(),
                        format!("abort_delay `{d}` is not a duration ({e})"),
                        DURATION_HINT.to_string(),
                    );
                    continue;
                }
            },
        };
        let parsed = loadgate_slo::parse(expr);
        let unmeasurable = parsed
            .as_ref()
            .ok()
            .filter(|_| model == Some(LoadModel::Closed))
            .and_then(|b| b.closed_model_problem());
        if let Some((message, hint)) = unmeasurable {
            sink.at(body_start, message, hint);
            continue;
        }
        let no_stream = parsed
            .as_ref()
            .ok()
            .zip(unstreamed)
            .and_then(|(b, scope)| stream_problem(b, scope));
        if let Some((message, hint)) = no_stream {
            sink.at(body_start, message, hint);
            continue;
        }
        match parsed {
            Ok(budget) => out.push(SloBudget {
                budget,
                abort_on_fail: abort,
                abort_delay,
            }),
            Err(e) => {
                let at = if matches!(item.get_ref(), raw::BudgetItem::Expr(_)) {
                    body_start + e.offset
                } else {
                    body_start
                };
                sink.at(
                    at,
                    format!("invalid SLO budget `{expr}`: {}", e.message),
                    e.hint,
                );
            }
        }
    }
    out
}

pub(super) fn slo(
    sink: &mut Sink<'_>,
    s: &raw::Slo,
    endpoint_names: &[String],
    streamed: &[bool],
    model: Option<LoadModel>,
) -> Slo {
    let default_delay = s
        .abort_delay
        .as_ref()
        .and_then(|d| duration(sink, d, "abort_delay"))
        .unwrap_or(Duration::from_secs(10));
    let any_stream = streamed.iter().any(|s| *s);
    let global = budgets(
        sink,
        &s.budgets,
        default_delay,
        model,
        (!any_stream).then_some("no endpoint"),
    );
    let mut endpoints = Vec::new();
    for (name, table) in &s.endpoint {
        let i = endpoint_names.iter().position(|n| n == name);
        let this = format!("endpoint `{name}` never");
        let unstreamed = i
            .filter(|&i| !streamed.get(i).copied().unwrap_or(false))
            .map(|_| this.as_str());
        let parsed = budgets(
            sink,
            &table.get_ref().budgets,
            default_delay,
            model,
            unstreamed,
        );
        match i {
            Some(i) => endpoints.extend(parsed.into_iter().map(|b| (i, b))),
            None => sink.span(
                table.span(),
                format!("SLO for endpoint `{name}`, which does not exist"),
                Some(format!("the endpoints are: {}", endpoint_names.join(", "))),
            ),
        }
    }
    Slo { global, endpoints }
}
