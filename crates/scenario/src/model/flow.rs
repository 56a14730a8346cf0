//! `[[flow]]`: a weighted journey of `[[flow.step]]`s, each a request written in place
//! (an endpoint of its own, sent only by its flow) or an `[[endpoint]]` named with
//! `endpoint = "NAME"`. A step may `capture` values of its response into variables that
//! the later steps' templates use (`{{token}}`).
//!
//! Not here: running a flow, or finding a captured value in a response (the engine).

use std::ops::Range;
use std::time::Duration;

use super::endpoint::{endpoint, EndpointCx, Where};
use super::scenario::{Endpoint, JsonExpect};
use super::value::duration;
use crate::diag::Sink;
use crate::json_path::JsonPath;
use crate::raw;
use crate::secrets::Secrets;
use crate::template::Names;

/// A validated `[[flow]]`.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Its name: its row in every table, and its `[slo.flow.NAME]`.
    pub name: String,
    /// Its share of the arrivals (open model) or of the VUs' iterations (closed model),
    /// beside the endpoints' weights.
    pub weight: u32,
    /// The pause between one step's end and the next step's send.
    pub think_time: Duration,
    /// Whether an iteration keeps a cookie jar (`cookies`, else `[defaults] cookies`,
    /// on by default): each response's `Set-Cookie`s sent back by its later steps.
    pub cookies: bool,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// The variables its steps capture, by slot.
    pub vars: Vec<Var>,
}

impl Flow {
    /// The longest one iteration may take: every step's timeout (each attempt's, for a
    /// polling step, with the waits between them) and the think time between steps.
    pub fn bound(&self, endpoints: &[Endpoint]) -> Duration {
        let steps: Duration = self.steps.iter().map(|s| s.bound(endpoints)).sum();
        steps + self.think_time * (self.steps.len().saturating_sub(1) as u32)
    }
}

impl Step {
    /// The longest the step may take: its timeout, or a polling step's every attempt's
    /// with the waits between them.
    pub fn bound(&self, endpoints: &[Endpoint]) -> Duration {
        let timeout = endpoints[self.endpoint].timeout;
        match &self.until {
            Some(u) => timeout * u.max + u.every * (u.max - 1),
            None => timeout,
        }
    }
}

/// A polling step's rule: the step is sent again, `every` after each answer ends,
/// until an answer's JSON meets the condition (then its captures are taken), at most
/// `max` times. Each attempt is a request of the step's row; the time until the answer
/// was ready (from the first attempt's due time to the end of the one that met the
/// condition) is a row of its own, `<step>_ready`.
#[derive(Debug, Clone)]
pub struct Until {
    /// Where the condition looks.
    pub path: JsonPath,
    /// What must hold there.
    pub expect: JsonExpect,
    /// The wait between one attempt's end and the next attempt.
    pub every: Duration,
    /// The most attempts; an answer still not ready at the last is `poll_exhausted`.
    pub max: u32,
    /// Which polling step of the scenario this is, in order (its `_ready` row is
    /// `Scenario::ready_row` of this).
    pub poll: usize,
    /// Its `_ready` row's name.
    pub name: String,
}

/// A variable of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// As templates name it (`{{token}}`).
    pub name: String,
    /// Whether its value must never be shown (the default: a captured token is a
    /// credential).
    pub secret: bool,
}

/// One step of a flow.
#[derive(Debug, Clone)]
pub struct Step {
    /// The endpoint it sends (an index into `Scenario::endpoints`).
    pub endpoint: usize,
    /// What it takes from its response, in order.
    pub captures: Vec<Capture>,
    /// A polling step's rule.
    pub until: Option<Until>,
}

/// One value a step takes from its response into a variable.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The variable's slot in [`Flow::vars`].
    pub slot: usize,
    /// Where the value is.
    pub from: CaptureFrom,
}

/// Where a captured value is found.
#[derive(Debug, Clone)]
pub enum CaptureFrom {
    /// At a JSON path of the body (`$.token`; with `[*]`, the first element that has
    /// it). A string is taken as it is, a number or boolean as written, an object or
    /// array as JSON text; `null` or no value is not found.
    Json(JsonPath),
    /// A response header (its first value), by lower-cased name.
    Header(String),
    /// The value of the cookie of this name the response sets (`Set-Cookie`; the
    /// last one, when it is set twice).
    Cookie(String),
    /// The first match of a regular expression in the body: its first group, or the
    /// whole match when it has none.
    Regex(regex::Regex),
}

impl CaptureFrom {
    /// Whether the response body must be kept to find the value.
    pub fn needs_body(&self) -> bool {
        !matches!(self, CaptureFrom::Header(_) | CaptureFrom::Cookie(_))
    }

    /// How the capture is written (`json $.token`, `header x-request-id`), for messages.
    pub fn describe(&self) -> String {
        match self {
            CaptureFrom::Json(p) => format!("json {}", p.as_str()),
            CaptureFrom::Header(h) => format!("header {h}"),
            CaptureFrom::Cookie(c) => format!("cookie {c}"),
            CaptureFrom::Regex(r) => format!("regex {}", r.as_str()),
        }
    }
}

/// What the flows add to a scenario: the flows, and the endpoints their steps write in
/// place (pushed after the `[[endpoint]]`s).
pub(super) struct Flows<'a, 'n> {
    pub(super) cx: EndpointCx<'a>,
    pub(super) columns: &'n [String],
    pub(super) lists: &'n [String],
    /// `[defaults] cookies`.
    pub(super) cookies: bool,
}

/// Whether a new row's name may join the rows taken (saying why not at the span).
pub(super) type NameCheck = dyn Fn(&mut Sink<'_>, Range<usize>, &str, &[&str]) -> bool;

/// The names rows already have: the endpoints' (and steps'), the flows', the polls',
/// and the flow being read (`current`).
fn names_taken<'a>(
    endpoints: &'a [Endpoint],
    flows: &'a [Flow],
    polls: &'a [String],
    current: Option<&'a str>,
) -> Vec<&'a str> {
    endpoints
        .iter()
        .map(|e| e.name.as_str())
        .chain(flows.iter().map(|f| f.name.as_str()))
        .chain(polls.iter().map(String::as_str))
        .chain(current)
        .collect()
}

/// Names a variable may not take: the template language's own words.
const RESERVED: [&str; 4] = ["seq", "uuid", "random_int", "pick"];

impl Flows<'_, '_> {
    /// Validates every `[[flow]]`, pushing their steps written in place onto
    /// `endpoints` (whose first `standalone` are the `[[endpoint]]`s);
    /// `name_ok(sink, span, name, taken)` checks a new row's name against those taken.
    #[allow(clippy::type_complexity)]
    pub(super) fn build(
        &self,
        sink: &mut Sink<'_>,
        list: &raw::S<Vec<raw::Flow>>,
        endpoints: &mut Vec<Endpoint>,
        standalone: usize,
        secrets: &mut Secrets,
        name_ok: &NameCheck,
    ) -> Vec<Flow> {
        let mut flows: Vec<Flow> = Vec::new();
        // The `_ready` rows of polling steps, in order.
        let mut polls: Vec<String> = Vec::new();
        if list.get_ref().is_empty() {
            sink.span(
                list.span(),
                "the flow list is empty",
                Some("add a [[flow]] with a name and its [[flow.step]]s, or remove it".into()),
            );
        }
        for (fi, f) in list.get_ref().iter().enumerate() {
            let name = f.name.get_ref().trim().to_string();
            let taken = names_taken(endpoints, &flows, &polls, None);
            let mut ok = name_ok(sink, f.name.span(), &name, &taken);
            let weight = super::value::weight(sink, f.weight.as_ref()).unwrap_or_else(|| {
                ok = false;
                0
            });
            let think_time = f
                .think_time
                .as_ref()
                .and_then(|t| duration(sink, t, "think_time"))
                .unwrap_or(Duration::ZERO);
            let raw_steps = match &f.steps {
                Some(s) if !s.get_ref().is_empty() => s,
                other => {
                    sink.span(
                        other.as_ref().map_or(f.name.span(), |s| s.span()),
                        format!("flow `{name}` has no steps"),
                        Some("add [[flow.step]] tables after it, each a request (name, path, ...) or endpoint = \"NAME\"".into()),
                    );
                    continue;
                }
            };
            let mut vars: Vec<Var> = Vec::new();
            let mut steps = Vec::new();
            for (si, raw_step) in raw_steps.get_ref().iter().enumerate() {
                let index = match &raw_step.endpoint {
                    // A copy of the endpoint, a row of its own: a step's traffic is the
                    // flow's, never counted as the endpoint's arrivals.
                    Some(r) => self
                        .reference(sink, r, raw_step, &endpoints[..standalone])
                        .and_then(|i| {
                            let mut ep = endpoints[i].clone();
                            ep.name = match &raw_step.name {
                                Some(n) => n.get_ref().trim().to_string(),
                                None => format!("{name}_{}", ep.name),
                            };
                            ep.weight = 0;
                            if let Some(a) = &raw_step.auth {
                                ep.auth = *a.get_ref() && self.cx.auth_header.is_some();
                            }
                            let taken = names_taken(endpoints, &flows, &polls, Some(&name));
                            let span = raw_step.name.as_ref().map_or(r.span(), |n| n.span());
                            name_ok(sink, span, &ep.name, &taken).then(|| {
                                endpoints.push(ep);
                                endpoints.len() - 1
                            })
                        }),
                    None => {
                        let var_names: Vec<String> = vars.iter().map(|v| v.name.clone()).collect();
                        let names = Names {
                            lists: self.lists,
                            columns: self.columns,
                            vars: &var_names,
                        };
                        let cx = EndpointCx {
                            names: &names,
                            ..self.cx
                        };
                        let place = Where::Step { flow: fi, step: si };
                        let built = endpoint(sink, place, raw_steps.span(), raw_step, &cx, secrets);
                        built.and_then(|ep| {
                            let taken = names_taken(endpoints, &flows, &polls, Some(&name));
                            let span = raw_step.name.as_ref().map_or(0..0, |n| n.span());
                            name_ok(sink, span, &ep.name, &taken).then(|| {
                                endpoints.push(ep);
                                endpoints.len() - 1
                            })
                        })
                    }
                };
                let captures = self.captures(sink, raw_step, &mut vars);
                let until = match (&raw_step.until, index) {
                    (Some(u), Some(endpoint)) => {
                        let ready = format!("{}_ready", endpoints[endpoint].name);
                        let taken = names_taken(endpoints, &flows, &polls, Some(&name));
                        let parsed = until(sink, u);
                        if parsed.is_none() || !name_ok(sink, u.span(), &ready, &taken) {
                            ok = false;
                            None
                        } else {
                            polls.push(ready.clone());
                            parsed.map(|mut p| {
                                p.poll = polls.len() - 1;
                                p.name = ready;
                                p
                            })
                        }
                    }
                    _ => None,
                };
                match index {
                    Some(endpoint) => steps.push(Step {
                        endpoint,
                        captures,
                        until,
                    }),
                    None => ok = false,
                }
            }
            if ok {
                flows.push(Flow {
                    name,
                    weight,
                    think_time,
                    cookies: f.cookies.as_ref().map_or(self.cookies, |c| *c.get_ref()),
                    steps,
                    vars,
                });
            }
        }
        flows
    }

    /// A step `endpoint = "NAME"`: the `[[endpoint]]` it names, which it sends as it
    /// is (only `capture` may be written beside it).
    fn reference(
        &self,
        sink: &mut Sink<'_>,
        r: &raw::S<String>,
        step: &raw::Endpoint,
        standalone: &[Endpoint],
    ) -> Option<usize> {
        let besides = [
            ("path", step.path.as_ref().map(|v| v.span())),
            ("method", step.method.as_ref().map(|v| v.span())),
            ("json", step.json.as_ref().map(|v| v.span())),
            ("body", step.body.as_ref().map(|v| v.span())),
        ];
        if let Some((key, Some(span))) = besides.iter().find(|(_, s)| s.is_some()) {
            sink.span(
                span.clone(),
                format!("a step that names an endpoint takes it as it is: `{key}` cannot be set beside `endpoint`"),
                Some("write the request in the step itself (name, path, ...) instead of endpoint = \"...\"".into()),
            );
            return None;
        }
        let position = standalone.iter().position(|e| &e.name == r.get_ref());
        if position.is_none() {
            let names: Vec<&str> = standalone.iter().map(|e| e.name.as_str()).collect();
            sink.span(
                r.span(),
                format!(
                    "step names endpoint `{}`, which is not an [[endpoint]]",
                    r.get_ref()
                ),
                Some(if names.is_empty() {
                    "define it as an [[endpoint]], or write the request in the step".to_string()
                } else {
                    format!("the endpoints are: {}", names.join(", "))
                }),
            );
        }
        position
    }

    /// A step's captures, each given a slot in `vars` (a variable captured again by a
    /// later step keeps its slot: the later value replaces it).
    fn captures(
        &self,
        sink: &mut Sink<'_>,
        step: &raw::Endpoint,
        vars: &mut Vec<Var>,
    ) -> Vec<Capture> {
        let mut out = Vec::new();
        for (name, c) in &step.capture {
            let bad_name = name.is_empty()
                || name.starts_with(|ch: char| ch.is_ascii_digit())
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            let clash = if bad_name {
                Some((
                    format!("`{name}` is not a variable name"),
                    "use letters, digits and `_`, starting with a letter: token, job_id"
                        .to_string(),
                ))
            } else if RESERVED.contains(&name.as_str()) {
                Some((
                    format!("`{name}` is a template word, not a variable name"),
                    "choose another name".to_string(),
                ))
            } else if self.columns.iter().any(|col| col == name) {
                Some((
                    format!(
                        "`{name}` is a column of the data file: {{{{{name}}}}} would be ambiguous"
                    ),
                    "choose another name".to_string(),
                ))
            } else {
                None
            };
            if let Some((message, hint)) = clash {
                sink.span(c.span(), message, Some(hint));
                continue;
            }
            let Some((from, secret)) = capture_source(sink, c, &format!("capture `{name}`")) else {
                continue;
            };
            let slot = match vars.iter().position(|v| &v.name == name) {
                Some(slot) => {
                    // Secret if any capture of it is.
                    vars[slot].secret |= secret;
                    slot
                }
                None => {
                    vars.push(Var {
                        name: name.clone(),
                        secret,
                    });
                    vars.len() - 1
                }
            };
            out.push(Capture { slot, from });
        }
        out
    }
}

/// Where a capture (`what`, for messages: ``capture `token` ``) looks, as written: a
/// JSON path, or a table with exactly one of `json`, `header`, `cookie` or `regex`; and whether
/// its value is secret (unless the table says `secret = false`).
fn capture_source(
    sink: &mut Sink<'_>,
    c: &raw::S<raw::Capture>,
    what: &str,
) -> Option<(CaptureFrom, bool)> {
    match c.get_ref() {
        raw::Capture::Path(p) => Some((json_from(sink, c.span(), p)?, true)),
        raw::Capture::Table(t) => {
            let given = [
                t.json.is_some(),
                t.header.is_some(),
                t.cookie.is_some(),
                t.regex.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                sink.span(
                    c.span(),
                    format!("{what} needs exactly one of `json`, `header`, `cookie` or `regex`"),
                    Some("write e.g. { json = \"$.token\" }, or just \"$.token\"".into()),
                );
                return None;
            }
            let from = if let Some(j) = &t.json {
                json_from(sink, c.span(), j)
            } else if let Some(h) = &t.header {
                header_from(sink, c.span(), h)
            } else if let Some(name) = &t.cookie {
                cookie_from(sink, c.span(), name)
            } else {
                let r = t.regex.as_ref().expect("one of the three");
                regex_from(sink, c.span(), r)
            };
            Some((from?, t.secret.unwrap_or(true)))
        }
    }
}

/// Where `[auth]`'s token (`what`: the key, for messages) is, as a capture looks; a
/// token is always secret.
pub(super) fn capture_from(
    sink: &mut Sink<'_>,
    c: &raw::S<raw::Capture>,
    what: &str,
) -> Option<CaptureFrom> {
    capture_source(sink, c, &format!("`{what}`")).map(|(from, _)| from)
}

/// The most attempts a polling step may make.
const MAX_POLLS: i64 = 10_000;

/// A step's `until`: its JSON condition, interval (default 1 s) and most attempts
/// (default 10).
fn until(sink: &mut Sink<'_>, u: &raw::S<raw::Until>) -> Option<Until> {
    let r = u.get_ref();
    let path = match JsonPath::parse(r.path.get_ref()) {
        Ok(p) => Some(p),
        Err(e) => {
            sink.span(
                r.path.span(),
                e.to_string(),
                Some("write e.g. path = \"$.status\"".into()),
            );
            None
        }
    };
    let expect = match (&r.equals, r.exists) {
        (Some(v), None) => Some(JsonExpect::Equals(
            serde_json::to_value(v).expect("TOML values convert to JSON"),
        )),
        (None, Some(b)) => Some(JsonExpect::Exists(b)),
        _ => {
            sink.span(
                u.span(),
                "`until` needs exactly one of `equals` or `exists`",
                Some("write e.g. until = { path = \"$.status\", equals = \"done\", every = \"500ms\", max = 20 }".into()),
            );
            None
        }
    };
    let every = match &r.every {
        Some(e) => duration(sink, e, "every")?,
        None => Duration::from_secs(1),
    };
    let max = match &r.max {
        None => 10,
        Some(m) if (1..=MAX_POLLS).contains(m.get_ref()) => *m.get_ref() as u32,
        Some(m) => {
            sink.span(
                m.span(),
                format!("max {} is out of range", m.get_ref()),
                Some(format!(
                    "a polling step makes from 1 to {MAX_POLLS} attempts"
                )),
            );
            return None;
        }
    };
    Some(Until {
        path: path?,
        expect: expect?,
        every,
        max,
        poll: 0,
        name: String::new(),
    })
}

fn json_from(sink: &mut Sink<'_>, span: Range<usize>, text: &str) -> Option<CaptureFrom> {
    match JsonPath::parse(text) {
        Ok(p) => Some(CaptureFrom::Json(p)),
        Err(e) => {
            sink.span(
                span,
                e.to_string(),
                Some("write e.g. \"$.token\" or \"$.data.items[0].id\"".into()),
            );
            None
        }
    }
}

fn header_from(sink: &mut Sink<'_>, span: Range<usize>, h: &str) -> Option<CaptureFrom> {
    if crate::check::header_name_ok(h) {
        Some(CaptureFrom::Header(h.to_ascii_lowercase()))
    } else {
        sink.span(
            span,
            format!("`{h}` is not a header name"),
            Some("write e.g. header = \"x-request-id\"".into()),
        );
        None
    }
}

fn cookie_from(sink: &mut Sink<'_>, span: Range<usize>, name: &str) -> Option<CaptureFrom> {
    // A cookie's name is an HTTP token (RFC 6265 section 4.1.1), as a header's is.
    if crate::check::header_name_ok(name) {
        Some(CaptureFrom::Cookie(name.to_string()))
    } else {
        sink.span(
            span,
            format!("`{name}` is not a cookie name"),
            Some("write e.g. cookie = \"session\"".into()),
        );
        None
    }
}

/// The regular expressions a capture may hold: bounded in what they may compile to,
/// so a scenario cannot make the generator's per-response matching costly.
const REGEX_SIZE: usize = 1 << 20;

fn regex_from(sink: &mut Sink<'_>, span: Range<usize>, r: &str) -> Option<CaptureFrom> {
    match regex::RegexBuilder::new(r).size_limit(REGEX_SIZE).build() {
        Ok(re) => Some(CaptureFrom::Regex(re)),
        Err(e) => {
            let detail = e.to_string();
            let first = detail
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_string();
            sink.span(
                span,
                format!("capture regex does not compile: {first}"),
                Some("write e.g. regex = \"id=(\\\\w+)\": the first group is captured".into()),
            );
            None
        }
    }
}
