//! A run's scenario from its file or URL and its flags: `--target`, `--slo`, `--rps`,
//! `--duration`, ... applied, a URL run's one-request scenario written and parsed like
//! any file, secrets registered for masking, basic auth from the URL.

use loadgate_scenario::{Header, LoadModel, Overrides, Scenario, Target, Template};

use crate::exit::Failure;
use crate::{output, LoadFlags, RunArgs};

/// Applies `--duration`, `--rps`, `--vus`, `--connections`, then the flags `run` shares
/// with `capacity` ([`apply_load_flags`]).
pub(crate) fn apply_flags(scenario: &mut Scenario, args: &RunArgs) -> Result<(), Failure> {
    let o = Overrides {
        duration: args.duration,
        rps: args.rps,
        vus: args.vus,
        connections: args.connections,
        ..Overrides::default()
    };
    if args.connections == Some(0) {
        return Err(Failure::config(
            "--connections 0: expected at least one connection",
        ));
    }
    if let Some(r) = args.rps {
        if !(r.is_finite() && r > 0.0) {
            return Err(Failure::config(format!(
                "--rps {r}: expected a rate above zero"
            )));
        }
    }
    if args.vus == Some(0) {
        return Err(Failure::config(
            "--vus 0: expected at least one virtual user",
        ));
    }
    if args.duration.is_some_and(|d| d.is_zero()) {
        return Err(Failure::config(
            "--duration: expected a duration above zero",
        ));
    }
    apply_load_flags(scenario, &args.load, o, false)
}

/// Applies `--target` and `--slo` (with `base`, the command's own overrides), and
/// basic auth from a target URL. `open_load`: the load runs open whatever the scenario
/// says (a capacity search's steps), so a budget only the closed model cannot measure
/// (send lag) is taken; otherwise it is refused when the load, flags applied, is closed.
pub(crate) fn apply_load_flags(
    scenario: &mut Scenario,
    load: &LoadFlags,
    mut o: Overrides,
    open_load: bool,
) -> Result<(), Failure> {
    match target_flag(load.target.as_deref())? {
        None => {}
        Some(Target::Embedded) => scenario.target = Target::Embedded,
        Some(Target::Url(u)) => o.target = Some(u),
    }
    let scope: Vec<(&str, bool)> = scenario
        .endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.stream.is_some()))
        .collect();
    let refused = |expr: &str, (message, hint): (String, String)| {
        Failure::config(format!("--slo '{expr}': {message}\n  hint: {hint}"))
    };
    let base = o.slo.len();
    for expr in &load.slo {
        let b = loadgate_slo::parse(expr).map_err(|e| {
            Failure::config(format!(
                "--slo '{expr}': {} (at column {})\n  hint: {}",
                e.message,
                e.offset + 1,
                e.hint
            ))
        })?;
        if let Some(problem) = b.stream_problem(&scope) {
            return Err(refused(expr, problem));
        }
        o.slo.push(b);
    }
    let file_model = scenario.load.model;
    scenario.apply(&o);
    if !open_load && scenario.load.model == LoadModel::Closed {
        // The load runs closed: its budgets must be measurable in it. The flags' own
        // first, named by the flag; then the file's, which the scenario refused already
        // unless a flag (`--vus`) made the load closed.
        for (expr, b) in load.slo.iter().zip(&o.slo[base..]) {
            if let Some(problem) = b.closed_model_problem() {
                return Err(refused(expr, problem));
            }
        }
        for (_, b) in scenario.slo.scoped() {
            if let Some((message, hint)) = b.budget.closed_model_problem() {
                let why = match file_model {
                    LoadModel::Open => " (the flags made this load closed)",
                    LoadModel::Closed => "",
                };
                return Err(Failure::config(format!(
                    "{}: {message}{why}\n  hint: {hint}",
                    scenario.source.display()
                )));
            }
        }
    }
    if let Some(a) = &scenario.auth {
        if a.scope == loadgate_scenario::AuthScope::Vu && scenario.load.model == LoadModel::Open {
            return Err(Failure::config(format!(
                "{}: [auth] scope = \"vu\" needs virtual users, and the flags made this load open (arrivals, no VUs)\n  hint: run it with --vus, or write scope = \"run\" (one token shared by the run)",
                scenario.source.display()
            )));
        }
    }
    add_basic_auth(scenario);
    Ok(())
}

/// The scenario file, or the one-request scenario of a URL run (`loadgate run URL`).
pub(crate) fn load_scenario(
    args: &RunArgs,
    options: &loadgate_scenario::LoadOptions,
) -> Result<Scenario, Failure> {
    let given = args.scenario.to_string_lossy();
    if !(given.starts_with("http://") || given.starts_with("https://")) {
        for (flag, set) in [
            ("--method", args.method.is_some()),
            ("--header", !args.headers.is_empty()),
            ("--body", args.body.is_some()),
            ("--json", args.json.is_some()),
        ] {
            if set {
                return Err(Failure::config(format!(
                    "{flag} applies to a URL run (`loadgate run https://host/path {flag} ...`)\n  hint: set it on the endpoint in {}",
                    args.scenario.display()
                )));
            }
        }
        return loadgate_scenario::load_with(&args.scenario, options)
            .map_err(|e| Failure::config(e.to_string()));
    }
    let text = url_scenario(&given, args)?;
    loadgate_scenario::parse_with(
        std::path::Path::new("(command line)"),
        &text,
        &|name| std::env::var(name).ok(),
        options,
    )
    .map_err(|e| Failure::config(flag_errors(&e, &text)))
}

/// A URL run's scenario errors, each named by the flag that wrote the line it is on
/// (the generated scenario's lines and columns mean nothing to the user).
fn flag_errors(e: &loadgate_scenario::Diagnostics, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    e.0.iter()
        .map(|d| {
            let line = lines.get(d.line.saturating_sub(1)).copied().unwrap_or("");
            let flag = match line.split('=').next().unwrap_or("").trim() {
                "headers" => "-H/--header",
                "body" => "--body/--json",
                "method" => "-m/--method",
                "path" | "target" | "name" => "the URL",
                _ => "the command line",
            };
            let hint = d
                .hint
                .as_ref()
                .map(|h| format!("\n  hint: {h}"))
                .unwrap_or_default();
            format!("{flag}: {}{hint}", d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scenario a URL run stands for: one endpoint, the URL's path and query, the
/// method, headers and body the flags give, 10 VUs for 10 s unless `--rps`, `--vus` or
/// `--duration` say otherwise (they are applied after, as to any scenario), and the
/// `--slo` budgets.
fn url_scenario(given: &str, args: &RunArgs) -> Result<String, Failure> {
    let bad = |why: String| {
        Failure::config(format!(
            "{given}: {why}\n  hint: write a URL such as https://staging.example.com/api/health"
        ))
    };
    let u = url::Url::parse(given).map_err(|e| bad(e.to_string()))?;
    if u.host_str().is_none() {
        return Err(bad("no host".into()));
    }
    // TOML basic strings take JSON's escapes.
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let origin = u.origin().ascii_serialization();
    let name: String = u
        .host_str()
        .unwrap_or("url")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = match u.query() {
        Some(query) => format!("{}?{query}", u.path()),
        None => u.path().to_string(),
    };
    let method = args.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) = h.split_once(':').ok_or_else(|| {
            Failure::config(format!(
                "--header `{h}`: expected `Name: value`\n  hint: e.g. -H 'Authorization: Bearer ${{API_TOKEN}}'"
            ))
        })?;
        headers.push(format!("{} = {}", q(k.trim()), q(v.trim())));
    }
    let body = match (&args.body, &args.json) {
        (Some(b), _) => format!("body = {}\n", q(b)),
        (None, Some(j)) => {
            serde_json::from_str::<serde_json::Value>(j).map_err(|e| {
                Failure::config(format!(
                    "--json: not JSON ({e})\n  hint: e.g. --json '{{\"query\": \"hello\"}}'"
                ))
            })?;
            headers.push(format!("{} = {}", q("content-type"), q("application/json")));
            format!("body = {}\n", q(j))
        }
        (None, None) => String::new(),
    };
    let mut text = format!("name = {}\ntarget = {}\n", q(&name), q(&origin));
    text.push_str(&format!(
        "[[endpoint]]\nname = {}\nmethod = {}\npath = {}\n{body}",
        q(&format!("{method} {}", u.path())),
        q(&method),
        q(&path)
    ));
    if !headers.is_empty() {
        text.push_str(&format!("headers = {{ {} }}\n", headers.join(", ")));
    }
    text.push_str("[load]\nmodel = \"closed\"\nstages = [{ duration = \"10s\", vus = 10 }]\n");
    Ok(text)
}

/// From here on, everything printed or written masks the scenario's secrets: every
/// value it took from the environment, and the secret parts of a `--target` URL (or
/// `LOADGATE_TARGET`: user, password, query values, fragment).
pub(crate) fn mask_secrets(scenario: &mut Scenario, options: &loadgate_scenario::LoadOptions) {
    if let Some(Target::Url(u)) = &options.target {
        scenario.secrets.add_url("LOADGATE_TARGET", u);
    }
    let secrets = scenario.secrets.clone();
    output::set_redactor(Box::new(move |text| secrets.redact(text)));
}

/// `--target` (or `LOADGATE_TARGET`), checked as a scenario's `target` is: `embedded` or
/// an http(s) URL with a host. The message never shows the value (it may hold a password).
pub(crate) fn target_flag(value: Option<&str>) -> Result<Option<Target>, Failure> {
    value
        .map(|t| {
            Target::parse(t).map_err(|e| {
                Failure::config(format!(
                    "--target: {e}\n  hint: write e.g. --target https://staging.example.com, or --target embedded (LOADGATE_TARGET gives it when the flag does not)"
                ))
            })
        })
        .transpose()
}

/// Credentials in a base URL become a (secret) Basic Authorization header, as curl
/// does: the target's for the endpoints sent to it, an endpoint's own `base`'s for that
/// endpoint (never the target's: they go to another origin). The URL itself is never
/// shown with them. `[auth]`'s login takes them too; a request that carries `[auth]`'s
/// token in `Authorization` does not.
fn add_basic_auth(scenario: &mut Scenario) {
    let target = match &scenario.target {
        Target::Url(u) => Some(u.clone()),
        Target::Embedded => None,
    };
    let token_in_authorization = scenario
        .auth
        .as_ref()
        .is_some_and(|a| a.header.eq_ignore_ascii_case("authorization"));
    let login = scenario.auth.as_mut().map(|a| &mut a.endpoint);
    for e in scenario.endpoints.iter_mut().chain(login) {
        if e.auth && token_in_authorization {
            continue;
        }
        let Some(u) = e.base.as_ref().or(target.as_ref()) else {
            continue;
        };
        let Some(value) = basic_auth(u) else {
            continue;
        };
        if !e
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("authorization"))
        {
            e.headers.push(Header {
                name: "authorization".into(),
                value: Template::literal(&value),
                secret: true,
            });
        }
    }
}

/// The Basic authorization header value of the credentials in `u`, if it has any.
fn basic_auth(u: &url::Url) -> Option<String> {
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    use base64::Engine as _;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(u.username()),
        decode(u.password().unwrap_or(""))
    );
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

pub(crate) fn strip_credentials(u: &url::Url) -> String {
    loadgate_scenario::without_credentials(u)
}
