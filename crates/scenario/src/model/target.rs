//! Where load goes: a target as a scenario's `target` and the `--target` flag take it,
//! and how a target URL is shown to people and sent to by the engine.
//!
//! Not here: which parts of a URL are secrets (`secrets`), the paths joined to it
//! (`check`).

/// Where to send load.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The embedded demo target, started in-process with `Scenario::target_profile`.
    Embedded,
    /// A base URL such as `https://staging.example.com`.
    Url(url::Url),
}

impl Target {
    /// Reads a target as a scenario's `target` and the `--target` flag take it:
    /// `embedded`, or an http:// or https:// URL with a host that the engine can send to.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        if text == "embedded" {
            return Ok(Target::Embedded);
        }
        let u = url::Url::parse(text).map_err(|e| TargetError::NotUrl(e.to_string()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(TargetError::Scheme(u.scheme().to_string()));
        }
        if u.host().is_none() {
            return Err(TargetError::NotUrl("no host".into()));
        }
        // Each endpoint's path is joined to the target, so a query or fragment here
        // would end up in the middle of every request's path.
        if u.query().is_some() || u.fragment().is_some() {
            return Err(TargetError::Query);
        }
        // The engine and the health check parse the URL (without credentials) again.
        without_credentials(&u)
            .parse::<http::Uri>()
            .map_err(|e| TargetError::NotUrl(e.to_string()))?;
        Ok(Target::Url(u))
    }
}

/// Why a target is not usable. Never holds the URL itself, which may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL the engine can send to; the parser's reason.
    #[error("not a valid URL ({0})")]
    NotUrl(String),
    /// A URL whose scheme is not http or https; the scheme.
    #[error("scheme `{0}` is not supported")]
    Scheme(String),
    /// A URL with a query (`?…`) or fragment (`#…`).
    #[error("a target is a base URL that each endpoint's path is joined to, so it takes no query (`?…`) or fragment (`#…`); put the query in the endpoints' paths, e.g. path = \"/api/health?key=${{API_KEY}}\"")]
    Query,
}

/// What a caller decides about a scenario beyond its file (see [`crate::load_with`]).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Send load here instead of to the file's `target` (`--target`, `LOADGATE_TARGET`).
    /// The file's `target` is then neither interpolated nor checked, so a scenario with
    /// `target = "${TARGET_URL}"` loads while `TARGET_URL` is unset; paths are checked
    /// under this target's path.
    pub target: Option<Target>,
    /// Every run of the scenario is open-model whatever its `[load]` says: the steps of
    /// a capacity search. Budgets only the closed model could not measure (send lag)
    /// are then taken in a closed scenario; `run` and `validate` leave this unset.
    pub open_load: bool,
}

/// A URL for people (the scenario's target and `--target` alike):
/// `scheme://host[:port]/path`, never a user name or password, every query value shown
/// as `***` (keys kept; a query piece without `=` is all value), no fragment. A trailing
/// `/` is dropped when there is no query.
pub fn redact_url(u: &url::Url) -> String {
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    match u.query() {
        None => out.push_str(u.path().trim_end_matches('/')),
        Some(q) => {
            out.push_str(u.path());
            out.push('?');
            let shown: Vec<String> = q
                .split('&')
                .map(|piece| match piece.split_once('=') {
                    Some((key, _)) => format!("{key}=***"),
                    None if piece.is_empty() => String::new(),
                    None => "***".to_string(),
                })
                .collect();
            out.push_str(&shown.join("&"));
        }
    }
    out
}

/// The URL the engine sends to: `u` without its user name and password (which go in an
/// authorization header instead) and without a trailing `/`. Not for people: it keeps
/// the query and fragment (see [`redact_url`]).
pub fn without_credentials(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string().trim_end_matches('/').to_string()
}
