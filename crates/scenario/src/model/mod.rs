//! The validated scenario and how a raw file becomes one.
//!
//! [`build`] reads the file, reporting every structural mistake at once, and checks the
//! scenario's name, target and `[defaults]`; each other part is read by the module that
//! owns it: `value` (one value: a duration, a `${VAR}`, a template, a path), `data` (the
//! CSV feeder), `endpoint` (requests and their checks), `load` (`[load]`, `[capacity]`
//! and their defaults) and `slo` (budgets). What they build is in `scenario` and
//! `target`.
//!
//! Not here: the file's raw shape (`raw`), the rules the engine sends paths and headers
//! by (`check`), how a diagnostic is shown (`diag`).

pub(crate) mod auth;
pub(crate) mod data;
pub(crate) mod endpoint;
pub(crate) mod flow;
pub(crate) mod load;
pub(crate) mod scenario;
pub(crate) mod slo;
pub(crate) mod stream;
pub(crate) mod target;
pub(crate) mod value;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check;
use crate::diag::{Diagnostics, Sink};
use crate::interp::Interpolated;
use crate::raw;
use crate::secrets::{url_secrets, Secrets};
use crate::template::Names;

use data::{data_feed, header_columns, header_lists};
use endpoint::EndpointCx;
use load::capacity_plan;
use scenario::{is_secret_name, Endpoint, HealthWait, HttpVersion, LoadModel, Scenario, TlsPaths};
use target::{LoadOptions, Target, TargetError};
use value::{duration, interp, no_control_chars, path_problem, resolve, target_interp, written};

/// An endpoint's tag in the interval log (`intervals.hlog`), which the run directory's
/// format defines: names that would share one are refused.
pub use loadgate_metrics::log_tag;

/// The longest scenario name, in bytes. It names the run directory, and the longest
/// suffix a command adds (`-capacity-20261122T024107Z`, 26 bytes) must still fit in a
/// file name's 255 bytes; the rest is room for a longer time stamp.
pub const MAX_NAME_BYTES: usize = 200;

pub(crate) fn build(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    options: &LoadOptions,
) -> Result<Scenario, Diagnostics> {
    let mut sink = Sink::new(path, text);
    // Every structural mistake at once: the parser stops at the first, so the line it
    // points at (an unknown key, a value of the wrong type) is blanked, offsets kept,
    // and the file read again. A mistake that blanking cannot get past (TOML syntax, a
    // missing table) ends the search; so does anything that only blanking caused.
    let mut blanked = text.as_bytes().to_vec();
    let mut structural = 0;
    // The keys of the lines blanked: what they leave missing was reported already.
    let mut blanked_keys: Vec<String> = Vec::new();
    let mut file: raw::File = loop {
        let now = String::from_utf8_lossy(&blanked).into_owned();
        match toml::from_str(&now) {
            Ok(f) => break f,
            Err(e) => {
                let span = e.span();
                let msg = e
                    .message()
                    .trim()
                    .replace("expected i64", "expected a whole number")
                    .replace("expected u64", "expected a whole number, 0 or more")
                    .replace("expected u32", "expected a whole number, 0 or more")
                    .replace("expected u16", "expected a whole number, 0 or more")
                    .replace("expected f64", "expected a number");
                let line_local = [
                    "unknown field",
                    "invalid type",
                    "invalid value",
                    "unknown variant",
                ]
                .iter()
                .any(|k| msg.starts_with(k));
                if structural > 0 && !line_local {
                    return Err(Diagnostics(sink.found));
                }
                let load_flat = ["duration", "vus", "target_rps", "rps"]
                    .iter()
                    .any(|k| msg.starts_with(&format!("unknown field `{k}`")))
                    && msg.contains("`stages`");
                let hint = if load_flat {
                    Some("a load's lengths and levels go in its stages: stages = [{ duration = \"30s\", target_rps = 60 }] (open model), or stages = [{ duration = \"30s\", vus = 20 }] (closed)".to_string())
                } else if msg.starts_with("invalid type: string")
                    && (msg.ends_with("expected a whole number")
                        || msg.ends_with("0 or more")
                        || msg.ends_with("expected a number"))
                {
                    Some("write the number without quotes (e.g. 5, not \"5\")".to_string())
                } else if msg.starts_with("invalid type: integer")
                    || msg.starts_with("invalid type: floating point")
                {
                    if msg.ends_with("expected a string") {
                        Some("write it in quotes (e.g. \"10s\" for a duration)".to_string())
                    } else {
                        None
                    }
                } else if ["timeout", "timout", "connect_timeout"]
                    .iter()
                    .any(|k| msg.starts_with(&format!("unknown field `{k}`")))
                    && msg.contains("`checks`")
                {
                    Some("a request timeout goes on the endpoint itself (timeout = \"60s\") or in [defaults] for every endpoint; connect_timeout goes in [defaults]".to_string())
                } else if msg.starts_with("unknown field") {
                    Some("check the spelling; unknown keys are rejected so typos cannot be silently ignored".to_string())
                } else if msg.starts_with("missing field") {
                    Some("add it; see the scenario reference in README.md".to_string())
                } else {
                    None
                };
                sink.at(span.clone().map_or(0, |s| s.start), msg, hint);
                structural += 1;
                let Some(span) = span.filter(|_| line_local && structural < 50) else {
                    return Err(Diagnostics(sink.found));
                };
                let start = blanked[..span.start]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = blanked[span.end.min(blanked.len())..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(blanked.len(), |i| span.end + i);
                if let Some((key, _)) =
                    String::from_utf8_lossy(&blanked[start..end]).split_once('=')
                {
                    blanked_keys.push(key.trim().to_string());
                }
                for b in &mut blanked[start..end] {
                    *b = b' ';
                }
            }
        }
    };

    // No `name`: the file's name without `.toml` names the run.
    let stem = || {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    };
    let name = file
        .name
        .as_ref()
        .map_or_else(stem, |n| n.get_ref().trim().to_string());
    let name_span = file.name.as_ref().map_or(0..0, |n| n.span());
    if name.is_empty() || name.contains(['/', '\\']) {
        sink.span(
            name_span.clone(),
            "name must be non-empty and must not contain `/` or `\\`",
            Some("it names the run directory".into()),
        );
    } else if name.len() > MAX_NAME_BYTES {
        sink.span(
            name_span,
            format!(
                "name is {} bytes long, at most {MAX_NAME_BYTES}",
                name.len()
            ),
            Some("shorten it: it names the run directory (NAME-20261122T024107Z), and a file name holds at most 255 bytes".into()),
        );
    }
    if let Some(n) = &file.name {
        no_control_chars(
            &mut sink,
            n,
            "name",
            "remove it: the name becomes the run directory's name, and junit.xml cannot hold control characters",
        );
    }

    let mut secrets = Secrets::new();
    // An override replaces the file's target unread: `${TARGET_URL}` may be unset.
    let target = match &options.target {
        Some(t) => Some(t.clone()),
        None => target_interp(&mut sink, &file.target, env).and_then(|t| {
            let parsed = Target::parse(&t.value)
                .map_err(|e| url_error(&mut sink, &file.target, "target", t.from_env, e))
                .ok()?;
            if let Target::Url(u) = &parsed {
                register_target(&mut secrets, &t, u);
            }
            Some(parsed)
        }),
    };
    let prefix = target.as_ref().map(check::path_prefix).unwrap_or_default();

    let d = &file.defaults;
    let timeout = d
        .timeout
        .as_ref()
        .and_then(|t| duration(&mut sink, t, "timeout"))
        .unwrap_or(Duration::from_secs(30));
    let connect_timeout = d
        .connect_timeout
        .as_ref()
        .and_then(|t| duration(&mut sink, t, "connect_timeout"))
        .unwrap_or(Duration::from_secs(5));
    if let Some(t) = d.timeout.as_ref().filter(|_| timeout.is_zero()) {
        sink.span(t.span(), "timeout must be greater than zero", None);
    }
    let http = match d.http.as_ref().map(|h| (h.get_ref().as_str(), h.span())) {
        None | Some(("auto", _)) => HttpVersion::Auto,
        Some(("http1", _)) => HttpVersion::Http1,
        Some(("http2", _)) => HttpVersion::Http2,
        Some((other, span)) => {
            sink.span(
                span,
                format!("unknown http version `{other}`"),
                Some("use \"auto\", \"http1\" or \"http2\"".into()),
            );
            HttpVersion::Auto
        }
    };

    let max_body = match &d.max_body {
        None => 4 << 20,
        Some(v) => match v.get_ref().trim().parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() > 0 && b.as_u64() <= 1 << 30 => b.as_u64() as usize,
            _ => {
                sink.span(
                    v.span(),
                    format!(
                        "max_body `{}` is not a size between 1 byte and 1 GiB",
                        v.get_ref()
                    ),
                    Some("write e.g. \"4MiB\", \"512KiB\" or \"100MB\"".into()),
                );
                4 << 20
            }
        },
    };
    let redact_headers: Vec<String> = file
        .redact_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();

    let mut list_names = Vec::new();
    let mut lists = Vec::new();
    for (n, v) in &file.lists {
        if v.get_ref().is_empty() {
            sink.span(
                v.span(),
                format!("list `{n}` is empty"),
                Some("give it at least one value".into()),
            );
        }
        list_names.push(n.clone());
        lists.push(v.get_ref().iter().map(|x| x.get_ref().clone()).collect());
    }

    let (data, csv_rows) = file
        .data
        .as_ref()
        .and_then(|d| data_feed(&mut sink, path, d, env, &mut secrets))
        .unzip();
    let columns: Vec<String> = data.as_ref().map(|d| d.columns.clone()).unwrap_or_default();
    let names = Names {
        lists: &list_names,
        columns: &columns,
        vars: &[],
    };

    let is_secret = |name: &str| is_secret_name(name, &redact_headers);
    // `[auth]`'s header: every request carries it unless it says `auth = false`.
    let auth_header: Option<String> = file.auth.as_ref().map(|a| {
        a.get_ref()
            .header
            .as_ref()
            .map_or("Authorization".to_string(), |h| h.get_ref().clone())
    });
    let cookies = d.cookies.as_ref().is_none_or(|c| *c.get_ref());
    let endpoint_cookies = d.cookies.as_ref().is_some_and(|c| *c.get_ref());
    let cx = EndpointCx {
        default_headers: &d.headers,
        names: &names,
        env,
        is_secret: &is_secret,
        prefix: &prefix,
        timeout,
        first_byte_timeout: stream::stream_timeout(
            &mut sink,
            d.first_byte_timeout.as_ref(),
            "first_byte_timeout",
            timeout,
            "[defaults] timeout",
        ),
        idle_timeout: stream::stream_timeout(
            &mut sink,
            d.idle_timeout.as_ref(),
            "idle_timeout",
            timeout,
            "[defaults] timeout",
        ),
        goodput: stream::good_limits(&mut sink, d.goodput.as_ref()),
        compression: d.compression.as_ref().is_none_or(|c| *c.get_ref()),
        redirects: d
            .redirects
            .as_ref()
            .and_then(|r| endpoint::redirects(&mut sink, r))
            .unwrap_or(endpoint::DEFAULT_REDIRECTS),
        auth_header: auth_header.as_deref(),
    };
    let mut endpoints = Vec::new();
    let list_span = file.endpoints.as_ref().map_or(0..0, |e| e.span());
    match (&file.endpoints, &file.flows) {
        (None, None) => sink.at(
            0,
            "the scenario has no endpoints",
            Some("add at least one [[endpoint]] table with a name and a path, or a [[flow]] of steps".into()),
        ),
        (Some(eps), _) if eps.get_ref().is_empty() => sink.span(
            eps.span(),
            "the endpoint list is empty",
            Some("add at least one [[endpoint]] table with a name and a path".into()),
        ),
        _ => {}
    }
    for (index, e) in file
        .endpoints
        .as_ref()
        .map(|e| e.get_ref().as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let place = endpoint::Where::Endpoint(index);
        if let Some(ep) =
            endpoint::endpoint(&mut sink, place, list_span.clone(), e, &cx, &mut secrets)
        {
            let taken: Vec<&str> = endpoints
                .iter()
                .map(|x: &Endpoint| x.name.as_str())
                .collect();
            let span = e.name.as_ref().map_or(0..0, |n| n.span());
            row_name_ok(&mut sink, span, &ep.name, &taken);
            endpoints.push(ep);
        }
    }
    let standalone = endpoints.len();
    let flows = match &file.flows {
        Some(list) => flow::Flows {
            cx,
            columns: &columns,
            lists: &list_names,
            cookies,
        }
        .build(
            &mut sink,
            list,
            &mut endpoints,
            standalone,
            &mut secrets,
            &row_name_ok,
        ),
        None => Vec::new(),
    };
    if let (Some(data), Some(rows)) = (&data, &csv_rows) {
        header_columns(&mut sink, data, rows, &endpoints);
    }
    header_lists(&mut sink, &file.lists, &endpoints);
    if !endpoints.is_empty()
        && endpoints.iter().all(|e| e.weight == 0)
        && flows.iter().all(|f| f.weight == 0)
    {
        let span = file
            .endpoints
            .as_ref()
            .map(|e| e.span())
            .or_else(|| file.flows.as_ref().map(|f| f.span()))
            .unwrap_or(0..0);
        sink.span(
            span,
            "endpoint weights sum to zero",
            Some("give at least one endpoint (or flow) a positive weight".into()),
        );
    }

    // No `[load]`: ten virtual users for ten seconds (flags such as --rps, --vus and
    // --duration replace it, as they replace any load).
    let default_load = raw::S::new(
        0..0,
        raw::Load {
            model: Some(raw::S::new(0..0, "closed".to_string())),
            stages: Some(raw::S::new(
                0..0,
                vec![raw::S::new(
                    0..0,
                    raw::Stage {
                        duration: raw::S::new(0..0, "10s".to_string()),
                        target_rps: None,
                        vus: Some(raw::S::new(0..0, 10)),
                    },
                )],
            )),
            start_rps: None,
            start_vus: None,
            max_in_flight: None,
            connections: None,
            think_time: None,
            warmup: None,
            late_tolerance: None,
            send_window: None,
            min_achieved_ratio: None,
            max_late_ratio: None,
            max_dropped_ratio: None,
            validity: None,
            seed: None,
        },
    );
    let raw_load = file.load.as_ref().unwrap_or(&default_load);
    // Stages that blanking took away were reported as what was wrong with them.
    // Stages that blanking took away were reported as what was wrong with them.
    // So were stage figures written flat in [load] (`vus = 5`, `duration = "10s"`).
    let stages_blanked = raw_load.get_ref().stages.is_none()
        && blanked_keys
            .iter()
            .any(|k| ["stages", "duration", "vus", "target_rps", "rps"].contains(&k.as_str()));
    // The in-flight room follows the longest timeout of an endpoint.
    let longest = endpoints.iter().map(|e| e.timeout).max().unwrap_or(timeout);
    let load = load::load(&mut sink, raw_load, longest, stages_blanked);
    let auth = file.auth.take().and_then(|a| {
        let taken: Vec<&str> = endpoints
            .iter()
            .map(|e| e.name.as_str())
            .chain(flows.iter().map(|f| f.name.as_str()))
            .chain(
                flows
                    .iter()
                    .flat_map(|f| &f.steps)
                    .filter_map(|s| Some(s.until.as_ref()?.name.as_str())),
            )
            .collect();
        let open = options.open_load || load.as_ref().is_some_and(|l| l.model == LoadModel::Open);
        auth::auth(&mut sink, a, &cx, &mut secrets, &taken, open)
    });
    // Every row's name and whether it streams, as written: the [[endpoint]]s, then the
    // steps written in place, in the order they become endpoints; then the flows.
    let raw_endpoints: Vec<&raw::Endpoint> = file
        .endpoints
        .iter()
        .flat_map(|e| e.get_ref().iter())
        .collect();
    let trimmed = |n: &Option<raw::S<String>>| {
        n.as_ref()
            .map_or(String::new(), |n| n.get_ref().trim().to_string())
    };
    let mut row_names: Vec<String> = raw_endpoints.iter().map(|e| trimmed(&e.name)).collect();
    let mut streamed: Vec<bool> = raw_endpoints.iter().map(|e| e.stream.is_some()).collect();
    // Rows no arrival ever reaches (weight 0), where a budget could never be judged:
    // a weightless [[endpoint]] (its uses in flows are the steps' rows), and every row
    // of a weightless flow.
    let weightless = |w: &Option<raw::S<i64>>| w.as_ref().is_some_and(|w| *w.get_ref() == 0);
    let mut idle: Vec<Option<slo::Idle>> = raw_endpoints
        .iter()
        .map(|e| {
            weightless(&e.weight).then(|| slo::Idle {
                why: format!(
                    "endpoint `{}` has weight 0: no arrival sends it",
                    trimmed(&e.name)
                ),
                hint: "give it a weight, or remove the budget".to_string(),
            })
        })
        .collect();
    // A step that names an endpoint is a row of its own too: `name`, or
    // `<flow>_<endpoint>`, streaming as the endpoint does.
    for f in file.flows.iter().flat_map(|f| f.get_ref().iter()) {
        let flow = f.name.get_ref().trim();
        let idle_flow = weightless(&f.weight);
        for step in f.steps.iter().flat_map(|s| s.get_ref().iter()) {
            let row = match &step.endpoint {
                None => {
                    streamed.push(step.stream.is_some());
                    trimmed(&step.name)
                }
                Some(r) => {
                    let at = raw_endpoints
                        .iter()
                        .position(|e| trimmed(&e.name) == r.get_ref().trim());
                    let row = match &step.name {
                        Some(n) => n.get_ref().trim().to_string(),
                        None => format!("{flow}_{}", r.get_ref().trim()),
                    };
                    streamed.push(at.is_some_and(|i| raw_endpoints[i].stream.is_some()));
                    // A budget on the endpoint meant for its requests in a flow: they
                    // are this step's.
                    if let (false, Some(Some(e))) = (idle_flow, at.map(|i| &mut idle[i])) {
                        {
                            e.hint = format!(
                                "its requests in flow `{flow}` are the step's row: put the budget under [slo.endpoint.{row}], or give `{}` a weight",
                                r.get_ref().trim()
                            );
                        }
                    }
                    row
                }
            };
            idle.push(idle_flow.then(|| slo::Idle {
                why: format!(
                    "step `{row}` is in flow `{flow}`, which has weight 0: no arrival starts it"
                ),
                hint: format!("give flow `{flow}` a weight, or remove the budget"),
            }));
            row_names.push(row);
        }
    }
    // Then the flows, then each polling step's time until ready (`<step>_ready`).
    let raw_flows: Vec<&raw::Flow> = file.flows.iter().flat_map(|f| f.get_ref().iter()).collect();
    let flow_idle = |f: &raw::Flow| {
        let flow = f.name.get_ref().trim();
        weightless(&f.weight).then(|| slo::Idle {
            why: format!("flow `{flow}` has weight 0: no arrival starts it"),
            hint: format!(
                "give flow `{flow}` a weight (`weight = 1` in its [[flow]]), or remove the budget"
            ),
        })
    };
    idle.extend(raw_flows.iter().map(|f| flow_idle(f)));
    idle.extend(raw_flows.iter().flat_map(|f| {
        let why = flow_idle(f);
        f.steps
            .iter()
            .flat_map(|s| s.get_ref().iter())
            .filter(|s| s.until.is_some())
            .map(move |_| why.clone())
    }));
    let flow_names: Vec<String> = raw_flows
        .iter()
        .map(|f| f.name.get_ref().trim().to_string())
        .chain(
            raw_flows
                .iter()
                .flat_map(|f| f.steps.iter().flat_map(|s| s.get_ref().iter()))
                .filter(|s| s.until.is_some())
                .map(|s| {
                    let step = s.endpoint.as_ref().or(s.name.as_ref());
                    format!("{}_ready", step.map_or("", |n| n.get_ref().trim()))
                }),
        )
        .collect();
    let slo = slo::slo(
        &mut sink,
        &file.slo,
        &row_names,
        &streamed,
        &flow_names,
        &idle,
        // A capacity search's steps run open whatever the file says.
        match options.open_load {
            true => Some(LoadModel::Open),
            false => load.as_ref().map(|l| l.model),
        },
    );

    let target_profile = file
        .target_profile
        .as_ref()
        .map(|p| resolve(path, p.get_ref()));
    // The profile matters only to the embedded target; it must be there for it.
    if let (Some(Target::Embedded), Some(raw), Some(resolved)) =
        (&target, file.target_profile.as_ref(), &target_profile)
    {
        if let Err(e) = std::fs::metadata(resolved) {
            sink.span(
                raw.span(),
                format!("cannot read target profile {}: {e}", resolved.display()),
                Some("the path is relative to the scenario file; leave target_profile out for the built-in demo profile".into()),
            );
        }
    }
    let health = file.health.as_ref().and_then(|h| {
        let timeout = match &h.timeout {
            Some(t) => duration(&mut sink, t, "health timeout")?,
            None => Duration::from_secs(60),
        };
        let path = interp(&mut sink, &h.path, env, Some(&mut secrets))?;
        if !path.value.starts_with('/') {
            sink.span(
                h.path.span(),
                format!("health path {} must start with `/`", written(&h.path)),
                Some("write e.g. \"/api/health\"".into()),
            );
            return None;
        }
        // Polled as the target URL followed by this path, never templated.
        if let Some(p) = check::path(&prefix, &path.value, false) {
            path_problem(&mut sink, &h.path, &path, "health path", p);
            return None;
        }
        Some(HealthWait {
            path: path.value,
            timeout,
        })
    });

    let capacity = file
        .capacity
        .as_ref()
        .map(|c| capacity_plan(&mut sink, c))
        .unwrap_or_default();
    let tls = file
        .tls
        .as_ref()
        .map(|t| tls_paths(&mut sink, path, t))
        .unwrap_or_default();

    // Every message above shows the scenario's text, not a value from the environment;
    // this catches any that a value still reached (a parser's message, say).
    for d in &mut sink.found {
        d.message = secrets.redact(&d.message).into_owned();
        d.hint = d.hint.as_deref().map(|h| secrets.redact(h).into_owned());
        if let Some(f) = d.file.to_str() {
            d.file = PathBuf::from(secrets.redact(f).into_owned());
        }
    }
    sink.finish()?;
    Ok(Scenario {
        secrets,
        capacity,
        target_profile,
        health,
        name,
        source: path.to_path_buf(),
        target: target.expect("no diagnostics means the target parsed"),
        endpoint_cookies,
        timeout,
        connect_timeout,
        http,
        max_body,
        endpoints,
        flows,
        auth,
        lists,
        list_names,
        data,
        load: load.expect("no diagnostics means the load parsed"),
        slo,
        redact_headers,
        tls,
        cookies,
    })
}

/// Whether `name`, a new row's (an endpoint's, a step's or a flow's), may join the
/// rows `taken`: unique, not a word the reports use for every row, and with a tag of the
/// interval log of its own. Says why not at `span`.
pub(super) fn row_name_ok(
    sink: &mut Sink<'_>,
    span: Range<usize>,
    name: &str,
    taken: &[&str],
) -> bool {
    if taken.contains(&name) {
        sink.span(
            span,
            format!("endpoint name `{name}` is used twice"),
            Some("endpoint names must be unique (steps and flows included)".into()),
        );
    } else if name == "all" || name == "global" {
        sink.span(
            span,
            format!("endpoint name `{name}` is taken: it names every endpoint together in the reports and budgets"),
            Some("choose another name".into()),
        );
    } else if let Some(other) = taken.iter().find(|x| log_tag(x) == log_tag(name)) {
        sink.span(
            span,
            format!(
                "endpoint names `{other}` and `{name}` would share a tag of the interval log (`{}`), where spaces, commas and dots become `_` (a dot marks a timing: `.ttfb`)",
                log_tag(name)
            ),
            Some("rename one of them".into()),
        );
    } else {
        return true;
    }
    false
}

/// Says why URL `v` (the scenario's `target`, or an endpoint's `base`: `what`) is not
/// one load can go to, showing the scenario's text, never a value from the environment.
pub(super) fn url_error(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    what: &str,
    from_env: bool,
    e: TargetError,
) {
    let urls = match what {
        "target" => "use an http:// or https:// URL, or \"embedded\"",
        _ => "use an http:// or https:// URL, e.g. \"http://ml:8000\"",
    };
    match e {
        TargetError::Scheme(_) if from_env => sink.span(
            v.span(),
            format!("{what} {} has a scheme that is not supported", written(v)),
            Some(urls.into()),
        ),
        TargetError::Scheme(scheme) => sink.span(
            v.span(),
            format!("{what} scheme `{scheme}` is not supported"),
            Some(urls.into()),
        ),
        TargetError::Query => sink.span(
            v.span(),
            format!(
                "{what} {} has a query (`?…`) or fragment (`#…`): a {what} is a base URL that each endpoint's path is joined to",
                written(v)
            ),
            Some("put the query in the endpoints' paths, e.g. path = \"/api/health?key=${API_KEY}\"".into()),
        ),
        TargetError::NotUrl(why) => sink.span(
            v.span(),
            format!("{what} is not a valid URL ({why})"),
            Some(match what {
                "target" => "write e.g. \"https://staging.example.com\" or \"embedded\"".into(),
                _ => "write e.g. \"http://ml:8000\" or \"https://ml.example.com/v1\"".into(),
            }),
        ),
    }
}

/// `[tls]`: each path resolved against the scenario's folder and there to be read (what
/// is in it the binary checks); a key needs its certificate.
fn tls_paths(sink: &mut Sink<'_>, scenario: &Path, t: &raw::Tls) -> TlsPaths {
    let mut file = |key: &str, value: &Option<raw::S<String>>| {
        let value = value.as_ref()?;
        let resolved = resolve(scenario, value.get_ref());
        if let Err(e) = std::fs::File::open(&resolved) {
            sink.span(
                value.span(),
                format!("cannot read [tls] {key} {}: {e}", resolved.display()),
                Some("the path is relative to the scenario file; give a PEM file".into()),
            );
        }
        Some(resolved)
    };
    let paths = TlsPaths {
        ca_file: file("ca_file", &t.ca_file),
        cert_file: file("cert_file", &t.cert_file),
        key_file: file("key_file", &t.key_file),
    };
    if let (Some(k), None) = (&t.key_file, &t.cert_file) {
        sink.span(
            k.span(),
            "[tls] key_file without cert_file: a key is sent only with its certificate",
            Some("add cert_file = \"client.pem\" (the client certificate, PEM)".into()),
        );
    }
    paths
}

/// Registers the secret parts of target `u`, interpolated as `t`, when any part of it came
/// from the environment: each under the variable whose value holds it (else the first).
pub(super) fn register_target(secrets: &mut Secrets, t: &Interpolated, u: &url::Url) {
    let Some(first) = t.env.first() else {
        return;
    };
    for part in url_secrets(u) {
        let name = t
            .env
            .iter()
            .find(|e| t.value[e.value.clone()].contains(part.as_str()))
            .unwrap_or(first);
        secrets.add(&name.name, &part);
    }
}
