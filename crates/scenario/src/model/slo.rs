//! `[slo]`: the budgets on the whole run and on each endpoint, with their abort policy.
//!
//! Not here: the budget language (`loadgate_slo::parse`) or judging a run against it.

use std::time::Duration;

use super::scenario::{LoadModel, Slo, SloBudget};
use super::value::{duration, DURATION_HINT};
use crate::diag::Sink;
use crate::raw;

/// Why a row gets no traffic whatever the load (weight 0), and how to fix a budget on
/// it: such a budget can never be judged (no data fails it; a rate on nothing holds
/// trivially).
#[derive(Debug, Clone)]
pub(super) struct Idle {
    /// What keeps it idle: "endpoint `a` has weight 0: no arrival sends it".
    pub(super) why: String,
    /// What to do instead.
    pub(super) hint: String,
}

fn budgets(
    sink: &mut Sink<'_>,
    items: &[raw::S<raw::BudgetItem>],
    default_delay: Duration,
    model: Option<LoadModel>,
    scope: &[(&str, bool)],
    idle: Option<&Idle>,
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
        let unmeasurable = parsed.as_ref().ok().and_then(|b| {
            b.closed_model_problem()
                .filter(|_| model == Some(LoadModel::Closed))
                .or_else(|| b.stream_problem(scope))
        });
        if let Some((message, hint)) = unmeasurable {
            sink.at(body_start, message, hint);
            continue;
        }
        if let (Ok(_), Some(idle)) = (&parsed, idle) {
            sink.at(
                body_start,
                format!("{}, so its budget `{expr}` can never be judged", idle.why),
                Some(idle.hint.clone()),
            );
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
    flow_names: &[String],
    idle: &[Option<Idle>],
    model: Option<LoadModel>,
) -> Slo {
    let default_delay = s
        .abort_delay
        .as_ref()
        .and_then(|d| duration(sink, d, "abort_delay"))
        .unwrap_or(Duration::from_secs(10));
    let scope: Vec<(&str, bool)> = endpoint_names
        .iter()
        .map(String::as_str)
        .zip(streamed.iter().copied())
        .collect();
    let global = budgets(sink, &s.budgets, default_delay, model, &scope, None);
    let idle_of = |row: usize| idle.get(row).and_then(Option::as_ref);
    let mut endpoints = Vec::new();
    for (name, table) in &s.endpoint {
        let position = endpoint_names.iter().position(|n| n == name);
        // An endpoint that does not exist is reported below, its budgets as written.
        let one = position.map_or(&[][..], |i| &scope[i..=i]);
        let parsed = budgets(
            sink,
            &table.get_ref().budgets,
            default_delay,
            model,
            one,
            position.and_then(idle_of),
        );
        match position {
            Some(i) => endpoints.extend(parsed.into_iter().map(|b| (i, b))),
            None => sink.span(
                table.span(),
                format!("SLO for endpoint `{name}`, which does not exist"),
                Some(format!("the endpoints are: {}", endpoint_names.join(", "))),
            ),
        }
    }
    for (name, table) in &s.flow {
        let position = flow_names.iter().position(|n| n == name);
        // A flow's row streams nothing of its own.
        let scope = [(name.as_str(), false)];
        let parsed = budgets(
            sink,
            &table.get_ref().budgets,
            default_delay,
            model,
            &scope,
            position.and_then(|i| idle_of(endpoint_names.len() + i)),
        );
        match position {
            Some(i) => endpoints.extend(
                parsed
                    .into_iter()
                    .map(|b| (endpoint_names.len() + i, b)),
            ),
            None => sink.span(
                table.span(),
                format!("SLO for flow `{name}`, which does not exist"),
                Some(if flow_names.is_empty() {
                    "the scenario has no [[flow]]; budgets of an endpoint go under [slo.endpoint.NAME]".to_string()
                } else {
                    format!("the flows are: {}", flow_names.join(", "))
                }),
            ),
        }
    }
    Slo { global, endpoints }
}
