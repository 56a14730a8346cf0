//! The budget expression language.
//!
//! ```text
//! budget  := ["service_"] metric op number unit [window]
//! metric  := "p" number | "mean" | "avg" | "min" | "max"
//!          | "throughput" | "rps" | "error_rate" | "check_rate"
//! op      := "<" | "<=" | ">" | ">="
//! unit    := "us" | "µs" | "ms" | "s" | "m" | "h"   (latency metrics; also usec, msec,
//!            sec, min, hr and their plural words, as duration flags take them)
//!          | "rps" | "/s"                        (throughput)
//!          | "%"                                 (error_rate, check_rate)
//! window  := "over" number ("s" | "m" | "min" | "h")   (whole seconds, at least 1 s)
//! ```
//! Units are required so `p95 < 2` cannot silently mean two microseconds.
//!
//! A budget with a window (`p95 < 2s over 30s`, `error_rate < 5% over 5m`, `goodput >
//! 40rps over 30s`) must hold in every window of that length in the measured phase,
//! sliding by one second, not just over the whole run: an outage that a whole-run figure
//! averages away breaks it.

use loadgate_metrics::Timing;
use serde::{Deserialize, Serialize};

/// What a budget measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Metric {
    /// A latency percentile, e.g. 95.0 or 99.9.
    Percentile(f64),
    /// Mean latency.
    Mean,
    /// Smallest latency.
    Min,
    /// Largest latency.
    Max,
    /// Successful requests per second over the measured phase.
    Throughput,
    /// Share of requests whose outcome is not success.
    ErrorRate,
    /// Share of received responses that passed every check.
    CheckRate,
    /// Requests per second of the measured phase that succeeded within every
    /// per-request limit of their endpoint (its `goodput` table).
    Goodput,
    /// Share of completed requests that did so.
    Attainment,
}

/// The comparison a budget requires of the measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// Whether `measured op threshold` holds.
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
        }
    }
}

/// The kind of quantity, which fixes the base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Microseconds.
    Duration,
    /// Requests per second.
    Rate,
    /// A fraction in 0..=1.
    Ratio,
}

/// One parsed budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The expression as written (trimmed).
    pub text: String,
    /// What is measured.
    pub metric: Metric,
    /// Which timing a duration metric (percentile, mean, min, max) measures: the
    /// `<timing>_` prefix (`ttfb_p95`), latency without one. Latency for the others.
    pub timing: Timing,
    /// The comparison.
    pub op: Op,
    /// The threshold in the base unit of [`Budget::unit`].
    pub threshold: f64,
    /// The kind of quantity.
    pub unit: Unit,
    /// `over N`: the budget must hold in every window of this many seconds (sliding by
    /// one second) instead of over the whole measured phase.
    pub window_s: Option<u64>,
    /// Written as a stream's speed (`tokens_per_s_p10 > 20`): the budget is the same
    /// bound on time per output token (`tpot_p90 < 50ms`, the percentile mirrored, the
    /// comparison turned round, the threshold inverted), judged as that, and shown in
    /// tokens per second ([`Budget::shown`]); the speed as written.
    pub speed: Option<f64>,
}

impl Budget {
    /// A key identifying what the budget constrains, e.g. `p95`, so that `--slo` can
    /// replace a file's budget on the same metric.
    pub fn key(&self) -> String {
        let m = match self.metric {
            Metric::Percentile(p) => format!("p{p}"),
            Metric::Mean => "mean".into(),
            Metric::Min => "min".into(),
            Metric::Max => "max".into(),
            Metric::Throughput => "throughput".into(),
            Metric::ErrorRate => "error_rate".into(),
            Metric::CheckRate => "check_rate".into(),
            Metric::Goodput => "goodput".into(),
            Metric::Attainment => "attainment".into(),
        };
        let dir = match self.op {
            Op::Lt | Op::Le => "upper",
            Op::Gt | Op::Ge => "lower",
        };
        let window = self.window_s.map(|w| format!("@{w}s")).unwrap_or_default();
        format!("{}{m}:{dir}{window}", self.timing_prefix())
    }

    /// `ttfb_` for a budget on time to first byte, nothing for latency: how the budget's
    /// metric name begins.
    pub fn timing_prefix(&self) -> String {
        match self.timing {
            Timing::Latency => String::new(),
            t => format!("{}_", t.name()),
        }
    }

    /// Why this budget could never be measured in the closed model, which has no
    /// schedule to lag behind (`None` when it can be): a run would fail it for want of
    /// data, so a scenario refuses it.
    pub fn closed_model_problem(&self) -> Option<(String, String)> {
        (self.timing == Timing::SendLag).then(|| {
            (
                format!(
                    "budget `{}` measures send lag, which the closed model does not have: a virtual user sends when its previous request ends, with no intended time to be late for",
                    self.text
                ),
                "use send-lag budgets with model = \"open\"; in the closed model budget the latency itself (`p99 < 500ms`)".to_string(),
            )
        })
    }

    /// Why this budget could not be measured right on a scope of the endpoints
    /// `scope` (`(name, whether it streams)`), if it could not: a budget on streams
    /// where no endpoint of the scope streams could only fail for want of data, and one
    /// on the first token where not every endpoint streams would rank the first tokens
    /// among requests that have none (gaps between tokens rank only the gaps, so the
    /// run's may mix endpoints). A scenario refuses it.
    pub fn stream_problem(&self, scope: &[(&str, bool)]) -> Option<(String, String)> {
        // A figure per stream (its first token, its time per token) is ranked among the
        // scope's requests, as latency is.
        let first_token = matches!(
            self.timing,
            Timing::Ttft | Timing::TtftService | Timing::Tpot
        );
        if !first_token && self.timing != Timing::Itl {
            return None;
        }
        let (plain, _) = *scope.iter().find(|(_, streams)| !streams)?;
        let hint = "add stream = \"sse\" (or \"ndjson\", \"chunks\") to an endpoint that answers a stream, or budget its latency or first byte (`ttfb_p95 < 1s`)";
        if !scope.iter().any(|(_, streams)| *streams) {
            let which = match scope.len() {
                1 => format!("endpoint `{plain}` does not stream"),
                _ => "no endpoint streams".to_string(),
            };
            return Some((
                format!("budget `{}` measures streams, and {which}", self.text),
                hint.to_string(),
            ));
        }
        first_token.then(|| {
            (
                format!(
                    "budget `{}` measures {}, which endpoint `{plain}` does not stream: ranked among every request of the run, the streams would read as slower than they are",
                    self.text,
                    match self.timing {
                        Timing::Tpot => "each stream's speed",
                        _ => "the first token",
                    }
                ),
                "budget each streamed endpoint under [slo.endpoint.NAME]".to_string(),
            )
        })
    }

    /// A value in this budget's base unit (µs of time per token for a speed budget) as
    /// it is written and shown: tokens per second for a speed budget.
    pub fn shown(&self, v: f64) -> f64 {
        match self.speed {
            Some(_) => 1e6 / v.max(1.0),
            None => v,
        }
    }

    /// Whether this budget measures a timing (a percentile, mean, min or max of
    /// latency, service time, time to first byte, ...), as opposed to a rate or a share.
    pub fn is_latency(&self) -> bool {
        self.unit == Unit::Duration
    }
}

/// A budget expression that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Byte offset into the expression where the problem is.
    pub offset: usize,
    /// What was expected.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.pos += self.rest().chars().next().map_or(0, char::len_utf8);
        }
    }
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.rest().chars().next().filter(|&c| f(c)) {
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }
    /// A non-negative number (digits and `.`) and where it began; `message` and `hint`
    /// when there is none.
    fn number(&mut self, message: &str, hint: &str) -> Result<(f64, &'a str, usize), ParseError> {
        self.skip_ws();
        let start = self.pos;
        let text = self.take_while(|ch| ch.is_ascii_digit() || ch == '.');
        let value = text.parse().map_err(|_| self.err(start, message, hint))?;
        Ok((value, text, start))
    }

    fn err(&self, at: usize, message: impl Into<String>, hint: impl Into<String>) -> ParseError {
        ParseError {
            offset: at,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

const METRIC_HINT: &str = "use one of p50, p90, p95, p99, p99.9 (any pN), mean, min, max, throughput, error_rate, check_rate, goodput, attainment; a timing other than latency prefixes its name: service_, ttfb_, ttfb_service_, ttft_, ttft_service_, itl_, tpot_, send_lag_, connect_ (e.g. `ttfb_p95 < 300ms`); a stream's speed is `tokens_per_s_p10 > 20`";

/// Splits a metric word into the timing its prefix names and the rest: `ttfb_p95` →
/// (Ttfb, `p95`), `p95` → (Latency, `p95`). The longest timing name that prefixes the
/// word wins (`ttfb_service_p95` is time to first byte's service variant).
pub(crate) fn split_timing(word: &str) -> (Timing, &str) {
    Timing::ALL
        .into_iter()
        .filter_map(|t| {
            let rest = word.strip_prefix(t.name())?.strip_prefix('_')?;
            Some((t, rest))
        })
        .max_by_key(|(t, _)| t.name().len())
        .unwrap_or((Timing::Latency, word))
}

/// Parses one budget expression such as `p95 < 2s`.
pub fn parse(input: &str) -> Result<Budget, ParseError> {
    let mut c = Cursor { s: input, pos: 0 };
    c.skip_ws();
    let metric_start = c.pos;
    let word = c.take_while(|ch| {
        ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == '(' || ch == ')'
    });
    if word.is_empty() {
        return Err(c.err(metric_start, "expected a metric name", METRIC_HINT));
    }
    if let Some(stat) = word.strip_prefix("tokens_per_s_") {
        return speed(input, &mut c, metric_start, word, stat);
    }
    let (timing, name) = split_timing(word);
    let plain = word == name;
    let metric = match name {
        "mean" | "avg" => Metric::Mean,
        "min" => Metric::Min,
        "max" => Metric::Max,
        "med" | "median" => Metric::Percentile(50.0),
        "throughput" | "rps" if plain => Metric::Throughput,
        "error_rate" if plain => Metric::ErrorRate,
        "check_rate" if plain => Metric::CheckRate,
        "goodput" if plain => Metric::Goodput,
        "attainment" if plain => Metric::Attainment,
        _ => {
            let digits = name
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .or_else(|| name.strip_prefix('p'))
                .filter(|d| !d.is_empty() && d.chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
            let p = digits.and_then(|d| d.parse::<f64>().ok()).ok_or_else(|| {
                let lower = word.to_ascii_lowercase();
                let hint = if lower != word && parse(&input.replacen(word, &lower, 1)).is_ok() {
                    format!("metric names are lower case: `{lower}`")
                } else {
                    METRIC_HINT.to_string()
                };
                c.err(metric_start, format!("unknown metric `{word}`"), hint)
            })?;
            if !(0.0..=100.0).contains(&p) {
                return Err(c.err(
                    metric_start,
                    format!("percentile `{word}` is outside 0..100"),
                    "write a percentile such as p95 or p99.9",
                ));
            }
            Metric::Percentile(p)
        }
    };
    let unit = match metric {
        Metric::Throughput | Metric::Goodput => Unit::Rate,
        Metric::ErrorRate | Metric::CheckRate | Metric::Attainment => Unit::Ratio,
        _ => Unit::Duration,
    };

    c.skip_ws();
    let op_start = c.pos;
    let op = if c.rest().starts_with("<=") {
        c.pos += 2;
        Op::Le
    } else if c.rest().starts_with(">=") {
        c.pos += 2;
        Op::Ge
    } else if c.rest().starts_with('<') {
        c.pos += 1;
        Op::Lt
    } else if c.rest().starts_with('>') {
        c.pos += 1;
        Op::Gt
    } else {
        return Err(c.err(
            op_start,
            "expected a comparison `<`, `<=`, `>` or `>=`",
            format!("write e.g. `{word} < 2s`"),
        ));
    };

    let (value, num, num_start) = c.number(
        "expected a non-negative number",
        "write e.g. `p95 < 2s`, `throughput > 50rps` or `error_rate < 1%`",
    )?;
    c.skip_ws();
    let unit_start = c.pos;
    let unit_text = c.take_while(|ch| !ch.is_whitespace());
    let expected = match unit {
        Unit::Duration => "a duration unit: us, ms, s, m or h (e.g. `2s`, `500ms`)",
        Unit::Rate => "a rate unit: rps (e.g. `50rps`)",
        Unit::Ratio => "a percentage: % (e.g. `1%`)",
    };
    let scale = match (unit, unit_text) {
        // The spellings a duration flag (`-d 10sec`) and a scenario's durations accept.
        (Unit::Duration, "us" | "µs" | "usec") => 1.0,
        (Unit::Duration, "ms" | "msec") => 1_000.0,
        (Unit::Duration, "s" | "sec" | "secs" | "second" | "seconds") => 1_000_000.0,
        (Unit::Duration, "m" | "min" | "mins" | "minute" | "minutes") => 60_000_000.0,
        (Unit::Duration, "h" | "hr" | "hrs" | "hour" | "hours") => 3_600_000_000.0,
        (Unit::Rate, "rps" | "/s" | "req/s") => 1.0,
        (Unit::Ratio, "%") => 0.01,
        (_, "") => {
            return Err(c.err(
                unit_start,
                format!("missing unit after `{num}`"),
                format!("units are required: add {expected}"),
            ))
        }
        (_, other) => {
            return Err(c.err(
                unit_start,
                format!("unit `{other}` does not fit `{word}`"),
                format!("use {expected}"),
            ))
        }
    };
    c.skip_ws();
    let window_s = if c.rest().starts_with("over") {
        c.pos += 4;
        Some(window(&mut c)?)
    } else {
        None
    };
    c.skip_ws();
    if !c.rest().is_empty() {
        return Err(c.err(
            c.pos,
            format!("unexpected `{}` after the budget", c.rest()),
            "write one budget per string, optionally with a window: `p95 < 2s over 30s`",
        ));
    }
    let threshold = value * scale;
    if !threshold.is_finite() {
        return Err(too_large(&c, num_start, num));
    }
    if unit == Unit::Ratio && threshold > 1.0 {
        return Err(c.err(
            num_start,
            format!("{num}% is more than 100%"),
            "a percentage is between 0% and 100%",
        ));
    }
    Ok(Budget {
        text: input.trim().to_string(),
        metric,
        timing,
        op,
        threshold,
        unit,
        window_s,
        speed: None,
    })
}

/// A budget on streams' own speed, `tokens_per_s_<stat> op number [unit] [window]`
/// (`stat`: pN, median, min or max; the unit, `/s`, `tok/s` or `tokens/s`, may be left
/// out: the name says it): parsed as the same bound on time per output token.
fn speed(
    input: &str,
    c: &mut Cursor<'_>,
    metric_start: usize,
    word: &str,
    stat: &str,
) -> Result<Budget, ParseError> {
    const HINT: &str = "write a stream speed budget as `tokens_per_s_p50 > 20` (pN, median, min or max; the speed that 100-N% of the streams reached or beat)";
    let metric = match stat {
        "min" => Metric::Max,
        "max" => Metric::Min,
        "med" | "median" => Metric::Percentile(50.0),
        "mean" | "avg" => {
            return Err(c.err(
                metric_start,
                format!("`{word}` is not measured: the mean of speeds is not the speed of the mean time per token"),
                "budget a percentile (`tokens_per_s_p50 > 20`) or the mean time per token (`tpot_mean < 50ms`)",
            ))
        }
        _ => {
            let p = stat
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .or_else(|| stat.strip_prefix('p'))
                .filter(|d| !d.is_empty() && d.chars().all(|ch| ch.is_ascii_digit() || ch == '.'))
                .and_then(|d| d.parse::<f64>().ok())
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| c.err(metric_start, format!("unknown metric `{word}`"), HINT))?;
            Metric::Percentile(100.0 - p)
        }
    };
    c.skip_ws();
    let op_start = c.pos;
    let op = [("<=", Op::Ge), (">=", Op::Le), ("<", Op::Gt), (">", Op::Lt)]
        .into_iter()
        .find(|(text, _)| c.rest().starts_with(text))
        .map(|(text, flipped)| {
            c.pos += text.len();
            flipped
        })
        .ok_or_else(|| {
            c.err(
                op_start,
                "expected a comparison `<`, `<=`, `>` or `>=`",
                format!("write e.g. `{word} > 20`"),
            )
        })?;
    let (per_s, num, num_start) = c.number("expected a speed in tokens per second", HINT)?;
    c.skip_ws();
    let unit_start = c.pos;
    let mut unit = c.take_while(|ch| !ch.is_whitespace());
    if unit.starts_with("over") {
        // No unit, a window.
        c.pos = unit_start;
        unit = "";
    }
    if !matches!(unit, "" | "/s" | "tok/s" | "tokens/s" | "tps") {
        return Err(c.err(
            unit_start,
            format!("unit `{unit}` does not fit `{word}`"),
            "a stream's speed is in tokens per second: write `20`, `20/s` or `20tok/s`",
        ));
    }
    if per_s <= 0.0 {
        return Err(c.err(
            num_start,
            format!("`{word}` needs a speed above 0, not `{num}`"),
            HINT,
        ));
    }
    if !per_s.is_finite() {
        return Err(too_large(c, num_start, num));
    }
    if !(1e6 / per_s).is_finite() {
        return Err(c.err(
            num_start,
            format!("the speed `{num}` is too small to measure"),
            HINT,
        ));
    }
    c.skip_ws();
    let window_s = if c.rest().starts_with("over") {
        c.pos += 4;
        Some(window(c)?)
    } else {
        None
    };
    c.skip_ws();
    if !c.rest().is_empty() {
        return Err(c.err(
            c.pos,
            format!("unexpected `{}` after the budget", c.rest()),
            "write one budget per string, optionally with a window: `tokens_per_s_p10 > 20 over 30s`",
        ));
    }
    Ok(Budget {
        text: input.trim().to_string(),
        metric,
        timing: Timing::Tpot,
        op,
        threshold: 1e6 / per_s,
        unit: Unit::Duration,
        window_s,
        speed: Some(per_s),
    })
}

/// A threshold past the largest float (it would be infinite: no chart could draw it and
/// JSON cannot hold it).
fn too_large(c: &Cursor<'_>, at: usize, num: &str) -> ParseError {
    c.err(
        at,
        format!("the number `{num}` is too large"),
        "write a threshold a run could measure, e.g. `p95 < 2s` or `tokens_per_s_p10 > 20`",
    )
}

const WINDOW_HINT: &str =
    "write a window in whole seconds, minutes or hours, e.g. `over 30s`, `over 5m` or `over 1h`";

/// The window after `over`, in whole seconds.
fn window(c: &mut Cursor<'_>) -> Result<u64, ParseError> {
    let (value, num, num_start) = c.number("expected a window length after `over`", WINDOW_HINT)?;
    c.skip_ws();
    let unit_start = c.pos;
    let unit = c.take_while(|ch| ch.is_ascii_alphabetic());
    let scale = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "" => {
            return Err(c.err(
                unit_start,
                format!("missing unit after `over {num}`"),
                WINDOW_HINT,
            ))
        }
        other => {
            return Err(c.err(
                unit_start,
                format!("`{other}` is not a window unit"),
                WINDOW_HINT,
            ))
        }
    };
    let seconds = value * scale;
    if !(seconds >= 1.0 && seconds.fract() == 0.0 && seconds <= 7.0 * 86_400.0) {
        return Err(c.err(
            num_start,
            format!(
                "a window of `{num}{unit}` is not a whole number of seconds between 1 s and 7 days"
            ),
            WINDOW_HINT,
        ));
    }
    Ok(seconds as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(s: &str, metric: Metric, op: Op, threshold: f64) {
        let b = parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        assert_eq!(
            (b.metric, b.op, b.threshold),
            (metric, op, threshold),
            "{s}"
        );
    }

    #[track_caller]
    fn err(s: &str, offset: usize, contains: &str) {
        let e = parse(s).expect_err(s);
        assert_eq!(e.offset, offset, "{s}: {e:?}");
        assert!(e.message.contains(contains), "{s}: {e:?}");
    }

    #[test]
    fn the_seed_budgets_parse() {
        ok("p95 < 2s", Metric::Percentile(95.0), Op::Lt, 2_000_000.0);
        ok("p99<5s", Metric::Percentile(99.0), Op::Lt, 5_000_000.0);
        ok("mean < 500ms", Metric::Mean, Op::Lt, 500_000.0);
        ok("max < 10s", Metric::Max, Op::Lt, 10_000_000.0);
        ok("throughput > 50rps", Metric::Throughput, Op::Gt, 50.0);
        ok("error_rate < 1%", Metric::ErrorRate, Op::Lt, 0.01);
        ok("check_rate > 99%", Metric::CheckRate, Op::Gt, 0.99);
        ok(
            "p99.9 <= 250 ms",
            Metric::Percentile(99.9),
            Op::Le,
            250_000.0,
        );
        ok("p(95) < 200ms", Metric::Percentile(95.0), Op::Lt, 200_000.0);
        assert_eq!(parse("service_p50 < 10ms").unwrap().timing, Timing::Service);
    }

    /// A stream's speed is the same bound on its time per output token: the percentile
    /// mirrored (`tokens_per_s_p10`, the speed 90% of streams reached, is `tpot_p90`),
    /// the comparison turned round, the threshold inverted; the unit may be left out.
    #[test]
    fn a_speed_budget_is_a_bound_on_time_per_token() {
        for (input, metric, op, us, window) in [
            (
                "tokens_per_s_p50 > 20",
                Metric::Percentile(50.0),
                Op::Lt,
                50_000.0,
                None,
            ),
            (
                "tokens_per_s_p10 >= 25/s",
                Metric::Percentile(90.0),
                Op::Le,
                40_000.0,
                None,
            ),
            (
                "tokens_per_s_p1 > 10 tok/s over 30s",
                Metric::Percentile(99.0),
                Op::Lt,
                100_000.0,
                Some(30),
            ),
            ("tokens_per_s_min > 4", Metric::Max, Op::Lt, 250_000.0, None),
            (
                "tokens_per_s_max < 1000tokens/s",
                Metric::Min,
                Op::Gt,
                1_000.0,
                None,
            ),
            (
                "tokens_per_s_p(10) > 20",
                Metric::Percentile(90.0),
                Op::Lt,
                50_000.0,
                None,
            ),
            (
                "tokens_per_s_median > 20",
                Metric::Percentile(50.0),
                Op::Lt,
                50_000.0,
                None,
            ),
            (
                "tokens_per_s_p50 > 20 over 1m",
                Metric::Percentile(50.0),
                Op::Lt,
                50_000.0,
                Some(60),
            ),
        ] {
            let b = parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(
                (
                    b.timing,
                    b.metric,
                    b.op,
                    b.threshold,
                    b.window_s,
                    b.speed.is_some()
                ),
                (Timing::Tpot, metric, op, us, window, true),
                "{input}"
            );
            assert_eq!(b.text, input);
        }
        let b = parse("tokens_per_s_p50 > 20").unwrap();
        assert!((b.shown(40_000.0) - 25.0).abs() < 1e-9);
        let r = b.result("global", crate::Measure::Value(40_000.0));
        assert!(r.pass, "25 tokens/s beats 20");
        assert_eq!((r.measured, r.threshold), (Some(25.0), 20.0));
        assert_eq!(r.measured_text, "25.0 tokens/s");
        assert!((r.margin.unwrap() - 0.25).abs() < 1e-9, "{r:?}");
        let r = b.result("global", crate::Measure::Value(62_500.0));
        assert!(!r.pass, "16 tokens/s is slower than 20");
        assert!(r.margin.unwrap() < 0.0);
        assert_eq!(parse("tpot_p90 < 50ms").unwrap().timing, Timing::Tpot);

        err("tokens_per_s_p50 > 20ms", 21, "unit `ms` does not fit");
        err("tokens_per_s_mean > 20", 0, "the mean of speeds");
        err("tokens_per_s_p50 > 0", 19, "a speed above 0");
        err("tokens_per_s_p500 > 20", 0, "unknown metric");
        err("tokens_per_s_p50 = 20", 17, "expected a comparison");
        err("tokens_per_s_p50 > 20 over", 26, "expected a window length");
    }

    /// The timing axis: `<timing>_<stat>`, latency without a prefix; rates and shares
    /// take no timing.
    #[test]
    fn a_prefix_names_the_timing() {
        for (input, timing, metric) in [
            ("p95 < 2s", Timing::Latency, Metric::Percentile(95.0)),
            (
                "latency_p95 < 2s",
                Timing::Latency,
                Metric::Percentile(95.0),
            ),
            (
                "service_p99 < 1s",
                Timing::Service,
                Metric::Percentile(99.0),
            ),
            ("ttfb_p95 < 300ms", Timing::Ttfb, Metric::Percentile(95.0)),
            (
                "ttfb_service_p(99.9) < 1s",
                Timing::TtfbService,
                Metric::Percentile(99.9),
            ),
            (
                "connect_p99 < 50ms",
                Timing::Connect,
                Metric::Percentile(99.0),
            ),
            (
                "send_lag_p99 < 5ms",
                Timing::SendLag,
                Metric::Percentile(99.0),
            ),
            ("send_lag_max < 1s", Timing::SendLag, Metric::Max),
            ("ttfb_mean < 100ms", Timing::Ttfb, Metric::Mean),
            (
                "ttfb_median < 100ms",
                Timing::Ttfb,
                Metric::Percentile(50.0),
            ),
        ] {
            let b = parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!((b.timing, b.metric), (timing, metric), "{input}");
        }
        for input in [
            "ttfb_throughput > 5rps",
            "connect_error_rate < 1%",
            "ttfb < 1s",
            "ttfbp95 < 1s",
            "first_byte_p95 < 1s",
        ] {
            let e = parse(input).expect_err(input);
            assert!(e.message.contains("unknown metric"), "{input}: {e:?}");
            assert!(e.hint.contains("ttfb_"), "{input}: {e:?}");
        }
        // Budgets on different timings do not replace each other.
        assert_ne!(
            parse("ttfb_p95 < 1s").unwrap().key(),
            parse("p95 < 1s").unwrap().key()
        );
    }

    #[test]
    fn mistakes_point_at_the_offending_column() {
        err("p95 < 2", 7, "missing unit");
        err("p95 < 2rps", 7, "does not fit");
        err("p95 = 2s", 4, "expected a comparison");
        err("latency < 2s", 0, "unknown metric");
        err("p95 < fast", 6, "expected a non-negative number");
        err("error_rate < 150%", 13, "more than 100%");
        err("p95 < 2s and more", 9, "unexpected");
        err("", 0, "expected a metric");
        err("p101 < 1s", 0, "outside 0..100");
        err("p95 < 2s over", 13, "expected a window length");
        err("p95 < 2s over 30", 16, "missing unit");
        err("p95 < 2s over 30ms", 16, "not a window unit");
        err("p95 < 2s over 0.5s", 14, "whole number of seconds");
        err("p95 < 2s over 30s please", 18, "unexpected");
    }

    /// A number too large (or a speed too small) for a float is refused where it is
    /// written: an infinite threshold hung the report's chart (a log axis with no end)
    /// and was written to `summary.json` as `null`.
    #[test]
    fn a_threshold_beyond_any_float_is_refused() {
        let huge = format!("1{}", "0".repeat(400));
        let big = format!("1{}", "0".repeat(305));
        let tiny = format!("0.{}1", "0".repeat(309));
        err(&format!("p95 < {huge}s"), 6, "too large");
        err(&format!("p95 < {big}h"), 6, "too large");
        err(&format!("throughput > {huge}rps"), 13, "too large");
        err(&format!("tokens_per_s_p50 > {huge}"), 19, "too large");
        err(&format!("tokens_per_s_p50 > {tiny}"), 19, "too small");
        let fits = format!("1{}", "0".repeat(300));
        ok(
            &format!("p95 < {fits}s"),
            Metric::Percentile(95.0),
            Op::Lt,
            1e306,
        );
    }

    #[test]
    fn windows_are_whole_seconds() {
        let w = |s: &str| parse(s).unwrap().window_s;
        assert_eq!(w("p95 < 2s over 30s"), Some(30));
        assert_eq!(w("error_rate < 5% over 5m"), Some(300));
        assert_eq!(w("throughput > 50rps over 1 min"), Some(60));
        assert_eq!(w("p99<1s over 1h"), Some(3600));
        assert_eq!(w("goodput > 40rps over 30s"), Some(30));
        assert_eq!(w("attainment > 99% over 10s"), Some(10));
        assert_eq!(w("attainment >= 99.5 % over 2 min"), Some(120));
        assert_eq!(w("p95 < 2s"), None);
        assert_ne!(
            parse("p95 < 2s over 30s").unwrap().key(),
            parse("p95 < 2s").unwrap().key(),
            "a windowed budget does not replace the whole-run one"
        );
    }

    #[test]
    fn keys_identify_metric_and_direction() {
        assert_eq!(
            parse("p95 < 2s").unwrap().key(),
            parse("p95 <= 3s").unwrap().key()
        );
        assert_ne!(
            parse("p95 < 2s").unwrap().key(),
            parse("p99 < 2s").unwrap().key()
        );
    }
}
