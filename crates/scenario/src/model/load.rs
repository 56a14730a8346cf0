//! `[load]` and `[capacity]`: the model, the stages, the limits and the validity
//! thresholds, each with its default when the scenario sets none.
//!
//! Not here: the arrival schedule built from the stages (the engine), or judging a run's
//! validity (`loadgate_slo::judge`).

use std::time::Duration;

use super::scenario::{CapacityPlan, CapacityStep, Load, LoadModel, Stage, Validity};
use super::value::{duration, DURATION_HINT};
use crate::diag::Sink;
use crate::raw;

/// The load of `l`. `stages_blanked`: its stages were unreadable and are reported
/// already, so their absence is not reported again and no load is built.
pub(super) fn load(
    sink: &mut Sink<'_>,
    l: &raw::S<raw::Load>,
    timeout: Duration,
    stages_blanked: bool,
) -> Option<Load> {
    let span = l.span();
    let l = l.get_ref();
    let none = Vec::new();
    let (raw_stages, stages_span) = l
        .stages
        .as_ref()
        .map_or((&none, span.clone()), |s| (s.get_ref(), s.span()));
    let model = match l.model.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        Some(("open", _)) => LoadModel::Open,
        Some(("closed", _)) => LoadModel::Closed,
        Some((other, at)) => {
            sink.span(
                at,
                format!("unknown load model `{other}`"),
                Some("use \"open\" (arrival rate) or \"closed\" (virtual users)".into()),
            );
            return None;
        }
        // No `model`: the stages say which (rates are open, virtual users closed).
        None => {
            let stages = raw_stages;
            if !stages.is_empty() && stages.iter().all(|s| s.get_ref().target_rps.is_some()) {
                LoadModel::Open
            } else if !stages.is_empty() && stages.iter().all(|s| s.get_ref().vus.is_some()) {
                LoadModel::Closed
            } else if stages_blanked {
                return None;
            } else {
                sink.span(
                    span.clone(),
                    "the load has no `model`, and its stages do not say which (target_rps for open, vus for closed)",
                    Some("add model = \"open\" (arrival rate) or model = \"closed\" (virtual users)".into()),
                );
                return None;
            }
        }
    };
    let mut stages = Vec::new();
    if stages_blanked {
        return None;
    }
    if raw_stages.is_empty() {
        sink.span(
            stages_span.clone(),
            "no stages",
            Some("add e.g. stages = [{ duration = \"30s\", target_rps = 60 }]".into()),
        );
    }
    for st in raw_stages {
        let s = st.get_ref();
        let d = duration(sink, &s.duration, "stage duration");
        let target = match (model, &s.target_rps, &s.vus) {
            (LoadModel::Open, Some(r), None) => {
                if !(r.get_ref().is_finite() && *r.get_ref() >= 0.0) {
                    sink.span(
                        r.span(),
                        format!("target_rps {} must be zero or more", r.get_ref()),
                        None,
                    );
                }
                Some(*r.get_ref())
            }
            (LoadModel::Closed, None, Some(v)) => {
                if !(0..=100_000).contains(v.get_ref()) {
                    sink.span(
                        v.span(),
                        format!("vus {} must be between 0 and 100000", v.get_ref()),
                        None,
                    );
                }
                Some(*v.get_ref() as f64)
            }
            (LoadModel::Open, _, _) => {
                sink.span(
                    st.span(),
                    "an open-model stage needs `target_rps` (and no `vus`)",
                    Some("write { duration = \"30s\", target_rps = 60 }".into()),
                );
                None
            }
            (LoadModel::Closed, _, _) => {
                sink.span(
                    st.span(),
                    "a closed-model stage needs `vus` (and no `target_rps`)",
                    Some("write { duration = \"30s\", vus = 10 }".into()),
                );
                None
            }
        };
        if let (Some(d), Some(target)) = (d, target) {
            if d.is_zero() {
                sink.span(
                    s.duration.span(),
                    "stage duration must be greater than zero",
                    Some(DURATION_HINT.into()),
                );
            }
            stages.push(Stage {
                duration: d,
                target,
            });
        }
    }
    let start = match model {
        LoadModel::Open => l.start_rps.as_ref().map(|s| *s.get_ref()),
        LoadModel::Closed => l.start_vus.as_ref().map(|s| *s.get_ref() as f64),
    }
    .unwrap_or_else(|| stages.first().map_or(0.0, |s| s.target));
    if l.start_rps.is_some() && (start < 0.0 || !start.is_finite()) {
        sink.at(
            span.start,
            "the start rate or VU count must be zero or more",
            None,
        );
    }
    let peak = stages.iter().map(|s| s.target).fold(start, f64::max);
    if !stages.is_empty() && peak <= 0.0 {
        sink.span(
            stages_span,
            "the load never rises above zero",
            Some(match model {
                LoadModel::Open => "give a stage a positive target_rps".to_string(),
                LoadModel::Closed => "give a stage a positive vus".to_string(),
            }),
        );
    }
    let max_in_flight = match &l.max_in_flight {
        Some(m) if *m.get_ref() >= 1 => *m.get_ref() as usize,
        Some(m) => {
            sink.span(
                m.span(),
                format!("max_in_flight {} must be at least 1", m.get_ref()),
                None,
            );
            1
        }
        None => default_max_in_flight(peak, timeout),
    };
    let connections = match &l.connections {
        None => None,
        Some(c) if (1..=1_000_000).contains(c.get_ref()) => Some(*c.get_ref() as usize),
        Some(c) => {
            sink.span(
                c.span(),
                format!("connections {} must be between 1 and 1000000", c.get_ref()),
                Some("a fixed pool of N connections for the run, e.g. connections = 64".into()),
            );
            None
        }
    };
    let ratio = |sink: &mut Sink<'_>, v: &Option<raw::S<f64>>, default: f64, name: &str| match v {
        Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => {
            sink.span(
                r.span(),
                format!("{name} {} must be between 0 and 1", r.get_ref()),
                None,
            );
            default
        }
        None => default,
    };
    let validity = Validity {
        min_achieved_ratio: ratio(sink, &l.min_achieved_ratio, 0.95, "min_achieved_ratio"),
        max_late_ratio: ratio(sink, &l.max_late_ratio, 0.01, "max_late_ratio"),
        max_dropped_ratio: ratio(sink, &l.max_dropped_ratio, 0.001, "max_dropped_ratio"),
        mode: match &l.validity {
            None => loadgate_slo::judge::ValidityMode::Robust,
            Some(v) => match loadgate_slo::judge::ValidityMode::from_name(v.get_ref()) {
                Some(m) => m,
                None => {
                    sink.span(
                        v.span(),
                        format!("unknown validity `{}`", v.get_ref()),
                        Some("use \"robust\" (the default) or \"strict\"".into()),
                    );
                    loadgate_slo::judge::ValidityMode::Robust
                }
            },
        },
    };
    let think_time = l
        .think_time
        .as_ref()
        .and_then(|t| duration(sink, t, "think_time"))
        .unwrap_or(Duration::ZERO);
    if let (LoadModel::Open, Some(t)) = (model, &l.think_time) {
        sink.span(
            t.span(),
            "think_time applies to the closed model only",
            Some("remove it, or use model = \"closed\"".into()),
        );
    }
    let warmup = l
        .warmup
        .as_ref()
        .and_then(|t| duration(sink, t, "warmup"))
        .unwrap_or(Duration::ZERO);
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    // Only a warm-up that was written can be too long; a zero-length run without one is
    // reported by its stage (regression: this unwrapped the missing warm-up's span).
    if let Some(w) = l
        .warmup
        .as_ref()
        .filter(|_| !stages.is_empty() && whole_seconds(warmup) >= total)
    {
        sink.span(
            w.span(),
            format!(
                "warmup ({}, {} as whole seconds) is not shorter than the run ({})",
                humantime::format_duration(warmup),
                humantime::format_duration(whole_seconds(warmup)),
                humantime::format_duration(total)
            ),
            Some("the warm-up counts whole seconds: shorten it or lengthen the stages".into()),
        );
    }
    let late_tolerance = l
        .late_tolerance
        .as_ref()
        .and_then(|t| duration(sink, t, "late_tolerance"))
        .unwrap_or(Duration::from_millis(1));
    let send_window = match &l.send_window {
        Some(w) => match duration(sink, w, "send_window") {
            Some(d) if d >= late_tolerance => {
                sink.span(
                    w.span(),
                    format!(
                        "send_window ({}) must be shorter than late_tolerance ({})",
                        humantime::format_duration(d),
                        humantime::format_duration(late_tolerance)
                    ),
                    Some(
                        "a quarter of late_tolerance or less, or \"0s\" to wake for every send"
                            .into(),
                    ),
                );
                Duration::ZERO
            }
            Some(d) => d,
            None => Duration::ZERO,
        },
        None => default_send_window(late_tolerance),
    };
    if let (LoadModel::Closed, Some(w)) = (model, &l.send_window) {
        sink.span(
            w.span(),
            "send_window applies to the open model only",
            Some("remove it, or use model = \"open\"".into()),
        );
    }
    Some(Load {
        model,
        start,
        stages,
        max_in_flight,
        max_in_flight_set: l.max_in_flight.is_some(),
        connections,
        think_time,
        warmup,
        late_tolerance,
        send_window,
        validity,
        seed: l.seed,
    })
}

pub(super) fn capacity_plan(sink: &mut Sink<'_>, c: &raw::Capacity) -> CapacityPlan {
    let mut plan = CapacityPlan::default();
    let positive = |sink: &mut Sink<'_>, v: &Option<raw::S<f64>>, name: &str| {
        let r = v.as_ref()?;
        if r.get_ref().is_finite() && *r.get_ref() > 0.0 {
            Some(*r.get_ref())
        } else {
            sink.span(
                r.span(),
                format!("{name} must be a rate above zero, not {}", r.get_ref()),
                Some("write requests per second, e.g. 50".into()),
            );
            None
        }
    };
    if let Some(v) = positive(sink, &c.start_rps, "start_rps") {
        plan.start_rps = v;
    }
    if let Some(v) = positive(sink, &c.max_rps, "max_rps") {
        plan.max_rps = v;
    }
    let step = positive(sink, &c.step_rps, "step_rps");
    match (&c.step_rps, &c.factor) {
        (Some(_), Some(f)) => sink.span(
            f.span(),
            "give either step_rps or factor, not both",
            Some("step_rps adds a fixed rate at each step; factor multiplies it".into()),
        ),
        (None, Some(f)) if f.get_ref().is_finite() && *f.get_ref() > 1.0 => {
            plan.step = CapacityStep::Multiply(*f.get_ref());
        }
        (None, Some(f)) => sink.span(
            f.span(),
            format!("factor must be above 1, not {}", f.get_ref()),
            Some("write e.g. factor = 1.5".into()),
        ),
        (Some(_), None) => {
            if let Some(d) = step {
                plan.step = CapacityStep::Add(d);
            }
        }
        (None, None) => {}
    }
    if plan.max_rps < plan.start_rps {
        let span = c
            .max_rps
            .as_ref()
            .or(c.start_rps.as_ref())
            .map(|v| v.span());
        if let Some(span) = span {
            sink.span(
                span,
                format!(
                    "max_rps ({}) is below start_rps ({})",
                    plan.max_rps, plan.start_rps
                ),
                Some("the search steps up from start_rps to max_rps".into()),
            );
        }
    }
    if let Some(d) = c.step_duration.as_ref() {
        match duration(sink, d, "step_duration") {
            Some(v) if v.is_zero() => sink.span(
                d.span(),
                "step_duration must be greater than zero",
                Some("write e.g. \"30s\"".into()),
            ),
            Some(v) => plan.step_duration = v,
            None => {}
        }
    }
    if let Some(d) = c.settle.as_ref() {
        if let Some(v) = duration(sink, d, "settle") {
            plan.settle = v;
        }
    }
    if let Some(r) = c.refine.as_ref() {
        match u32::try_from(*r.get_ref()) {
            Ok(v) if v <= 10 => plan.refine = v,
            _ => sink.span(
                r.span(),
                format!("refine must be between 0 and 10, not {}", r.get_ref()),
                Some("each refinement is one more step, bisecting the last interval".into()),
            ),
        }
    }
    plan
}

/// The in-flight cap when a scenario sets none: room for the peak rate with every
/// request running into its timeout, with a quarter to spare (a timeout fires up to
/// 10 ms late, and the workers' shares of arrivals are not exactly equal), between 64
/// and 50,000. The cap never binds when the target merely hangs: every request then
/// times out, the target's failure, and no arrival is dropped for want of room.
pub fn default_max_in_flight(peak: f64, timeout: Duration) -> usize {
    let room = peak * (timeout.as_secs_f64() + 0.1) * 1.25;
    (room.ceil() as usize).clamp(64, 50_000)
}

/// The send window when the scenario sets none: a quarter of the late tolerance, at most
/// 250 µs. Waking the thread costs tens of microseconds of CPU on a virtual machine, so
/// at 20,000 requests/s one wake-up per send takes most of a core; a 250 µs window sends
/// several arrivals per wake-up. Each such send is at most the window behind its
/// intended time, and its latency is still measured from that intended time.
pub fn default_send_window(late_tolerance: Duration) -> Duration {
    (late_tolerance / 4).min(Duration::from_micros(250))
}

/// The warm-up as the run measures it: whole seconds, rounded up.
pub fn whole_seconds(warmup: Duration) -> Duration {
    Duration::from_secs(warmup.as_secs_f64().ceil() as u64)
}
