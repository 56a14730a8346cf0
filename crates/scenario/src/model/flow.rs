//! `[[flow]]`: a weighted journey of `[[flow.step]]`s, each a request written in place
//! (an endpoint of its own, sent only by its flow) or an `[[endpoint]]` named with
//! `endpoint = "NAME"`. A step may `capture` values of its response into variables that
//! the later steps' templates use (`{{token}}`).
//!
//! Not here: running a flow, or finding a captured value in a response (the engine).

use std::ops::Range;
use std::time::Duration;

use super::endpoint::{endpoint, EndpointCx, Where};
use super::scenario::Endpoint;
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
    /// The longest one iteration may take: every step's timeout and the think time
    /// between them.
    pub fn bound(&self, endpoints: &[Endpoint]) -> Duration {
        let steps: Duration = self
            .steps
            .iter()
            .map(|s| endpoints[s.endpoint].timeout)
            .sum();
        steps + self.think_time * (self.steps.len().saturating_sub(1) as u32)
    }
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
    /// The first match of a regular expression in the body: its first group, or the
    /// whole match when it has none.
    Regex(regex::Regex),
}

impl CaptureFrom {
    /// Whether the response body must be kept to find the value.
    pub fn needs_body(&self) -> bool {
        !matches!(self, CaptureFrom::Header(_))
    }

    /// How the capture is written (`json $.token`, `header x-request-id`), for messages.
    pub fn describe(&self) -> String {
        match self {
            CaptureFrom::Json(p) => format!("json {}", p.as_str()),
            CaptureFrom::Header(h) => format!("header {h}"),
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
        name_ok: &dyn Fn(&mut Sink<'_>, Range<usize>, &str, &[&str]) -> bool,
    ) -> Vec<Flow> {
        let mut flows: Vec<Flow> = Vec::new();
        if list.get_ref().is_empty() {
            sink.span(
                list.span(),
                "the flow list is empty",
                Some("add a [[flow]] with a name and its [[flow.step]]s, or remove it".into()),
            );
        }
        for (fi, f) in list.get_ref().iter().enumerate() {
            let name = f.name.get_ref().trim().to_string();
            let taken: Vec<&str> = endpoints
                .iter()
                .map(|e| e.name.as_str())
                .chain(flows.iter().map(|f| f.name.as_str()))
                .collect();
            let mut ok = name_ok(sink, f.name.span(), &name, &taken);
            let weight = match &f.weight {
                None => 1,
                Some(w) if (0..=1_000_000).contains(w.get_ref()) => *w.get_ref() as u32,
                Some(w) => {
                    sink.span(
                        w.span(),
                        format!("weight {} is out of range", w.get_ref()),
                        Some("use a whole number from 0 to 1000000".into()),
                    );
                    ok = false;
                    0
                }
            };
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
                    Some(r) => self.reference(sink, r, raw_step, &endpoints[..standalone]),
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
                            let taken: Vec<&str> = endpoints
                                .iter()
                                .map(|e| e.name.as_str())
                                .chain(flows.iter().map(|f| f.name.as_str()))
                                .chain(std::iter::once(name.as_str()))
                                .collect();
                            let span = raw_step.name.as_ref().map_or(0..0, |n| n.span());
                            name_ok(sink, span, &ep.name, &taken).then(|| {
                                endpoints.push(ep);
                                endpoints.len() - 1
                            })
                        })
                    }
                };
                let captures = self.captures(sink, raw_step, &mut vars);
                match index {
                    Some(endpoint) => steps.push(Step { endpoint, captures }),
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
            ("name", step.name.as_ref().map(|v| v.span())),
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
            let (from, secret) = match c.get_ref() {
                raw::Capture::Path(p) => (json_from(sink, c.span(), p), true),
                raw::Capture::Table(t) => {
                    let given = [t.json.is_some(), t.header.is_some(), t.regex.is_some()];
                    if given.iter().filter(|g| **g).count() != 1 {
                        sink.span(
                            c.span(),
                            format!(
                                "capture `{name}` needs exactly one of `json`, `header` or `regex`"
                            ),
                            Some(
                                "write e.g. token = { json = \"$.token\" }, or token = \"$.token\""
                                    .into(),
                            ),
                        );
                        continue;
                    }
                    let from = if let Some(j) = &t.json {
                        json_from(sink, c.span(), j)
                    } else if let Some(h) = &t.header {
                        header_from(sink, c.span(), h)
                    } else {
                        let r = t.regex.as_ref().expect("one of the three");
                        regex_from(sink, c.span(), r)
                    };
                    (from, t.secret.unwrap_or(true))
                }
            };
            let Some(from) = from else { continue };
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
