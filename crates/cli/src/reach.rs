//! The target before any load: its name resolves, a connection (and TLS) opens (to the
//! target and to every other origin an endpoint's `base` names), the embedded target
//! starts, the health check is waited for (the target's only), and `--start-at` lies
//! ahead.

use std::time::{Duration, Instant};

use loadgate_engine::{StopSignal, TlsProblem};
use loadgate_scenario::{Scenario, Target};

use crate::exit::{Exit, Failure};
use crate::run_flags::strip_credentials;
use crate::LoadFlags;

/// The health check to wait for before load: `--wait-healthy` wins over `[health]`.
pub(crate) fn health_of(scenario: &Scenario, load: &LoadFlags) -> Option<(String, Duration)> {
    match (&load.wait_healthy, &scenario.health) {
        (Some(path), _) => Some((path.clone(), load.health_timeout)),
        (None, Some(h)) => Some((h.path.clone(), h.timeout)),
        (None, None) => None,
    }
}

/// A start time must lie ahead (one second of slack for clocks and start-up) and within
/// a day, so a typo cannot make a run wait for a year.
pub(crate) fn check_start_at(at: Option<std::time::SystemTime>) -> Result<(), Failure> {
    let Some(at) = at else { return Ok(()) };
    let shown = humantime::format_rfc3339_seconds(at);
    match at.duration_since(std::time::SystemTime::now()) {
        Err(e) if e.duration() > Duration::from_secs(1) => Err(Failure::config(format!(
            "--start-at {shown}: that time passed {} ago, so this segment could not keep the shared schedule\n  hint: start every segment before the agreed time, e.g. --start-at $(date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ)",
            humantime::format_duration(Duration::from_secs(e.duration().as_secs()))
        ))),
        Ok(ahead) if ahead > Duration::from_secs(86_400) => Err(Failure::config(format!(
            "--start-at {shown}: that is more than a day ahead\n  hint: pick a time a few minutes from now, in UTC"
        ))),
        _ => Ok(()),
    }
}

/// Checks every origin a run sends to before anything is written, without sending it a
/// request: the URL target and each other origin an endpoint's `base` names. Its name
/// resolves, a connection opens and, for https, the TLS handshake succeeds. An origin
/// that refuses or cannot be reached is exit 6, like an unresolvable host, named; when a
/// health check will be waited for, the target's refusal is left to it (the target may
/// still be starting), but the health check polls only the target, so an endpoint's own
/// base must answer now.
pub(crate) fn preflight(
    scenario: &Scenario,
    load: &LoadFlags,
    health: bool,
) -> Result<(), Failure> {
    if let Target::Url(u) = &scenario.target {
        resolve(u, &Whose::Target)?;
        reach(scenario, u, &Whose::Target, load, health)?;
    }
    for u in scenario.other_bases() {
        // Every endpoint sent there, to name them.
        let names: Vec<&str> = scenario
            .endpoints
            .iter()
            .filter(|e| e.base.as_ref().is_some_and(|b| b.origin() == u.origin()))
            .map(|e| e.name.as_str())
            .collect();
        let whose = Whose::Base(names.join("`, `"));
        resolve(u, &whose)?;
        reach(scenario, u, &whose, load, false)?;
    }
    Ok(())
}

/// Which origin a probe is for, as its failure names it.
enum Whose {
    /// The scenario's target (or `--target`).
    Target,
    /// The `base` of these endpoints (names joined by "`, `").
    Base(String),
}

impl Whose {
    /// `the target`, or ``endpoint `agent`'s base``.
    fn name(&self) -> String {
        match self {
            Whose::Target => "the target".into(),
            Whose::Base(names) if names.contains('`') => format!("endpoints `{names}`' base"),
            Whose::Base(names) => format!("endpoint `{names}`'s base"),
        }
    }

    /// Where to fix the URL.
    fn fix(&self) -> &'static str {
        match self {
            Whose::Target => "check the URL (--target / LOADGATE_TARGET / target)",
            Whose::Base(_) => "check the endpoint's `base` in the scenario (--target replaces only the scenario's target, never an endpoint's base)",
        }
    }
}

/// The base URL to send load to, starting the embedded target if the scenario asks for
/// it (it runs as long as the returned handle lives), then waiting for health.
pub(crate) fn start_target(
    scenario: &Scenario,
    load: &LoadFlags,
    stop: &StopSignal,
) -> Result<(String, Option<loadgate_target::RunningTarget>), Failure> {
    let (base_url, target) = match &scenario.target {
        Target::Embedded => {
            let profile = match &scenario.target_profile {
                Some(p) => {
                    loadgate_target::Profile::load(p).map_err(|e| Failure::config(e.to_string()))?
                }
                None => loadgate_target::Profile::demo(),
            };
            let server = loadgate_target::spawn(
                profile,
                "127.0.0.1:0".parse().expect("valid address"),
                2,
            )
            .map_err(|e| Failure::internal(format!("cannot start the embedded target: {e}")))?;
            (server.base_url(), Some(server))
        }
        Target::Url(u) => (strip_credentials(u), None),
    };

    if let Some((path, timeout)) = health_of(scenario, load) {
        wait_healthy(scenario, &base_url, &path, timeout, load, stop)?;
    }
    Ok((base_url, target))
}

/// Polls `path` until it answers 200, or gives up after `timeout` (exit 4).
pub(crate) fn wait_healthy(
    scenario: &Scenario,
    base: &str,
    path: &str,
    timeout: Duration,
    load: &LoadFlags,
    stop: &StopSignal,
) -> Result<(), Failure> {
    let uri: http::Uri = format!(
        "{}{}{}",
        base,
        if path.starts_with('/') { "" } else { "/" },
        path
    )
    .parse()
    .map_err(|e| Failure::config(format!("--wait-healthy {path}: not a valid path ({e})")))?;
    let (rt, client) = probe_client(
        scenario,
        load,
        scenario.connect_timeout.min(Duration::from_secs(5)),
    )?;
    rt.block_on(async {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            match client.probe(uri.clone(), Duration::from_secs(5).min(timeout)).await {
                Ok(200) => {
                    say_err!("target healthy: GET {base}{path} answered 200");
                    return Ok(());
                }
                Ok(code) => last = format!("status {code}"),
                Err(e) => last = format!("{} ({})", e.outcome.name(), e.detail),
            }
            if stop.is_triggered() {
                return Err(Failure {
                    exit: Exit::Interrupted,
                    message: format!(
                        "interrupted while waiting for GET {path} to answer 200 (last: {last}); no load was sent"
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(Failure {
                    exit: Exit::Unhealthy,
                    message: format!(
                        "target never became healthy: GET {base}{path} did not answer 200 within {} (last: {last}); no load was sent\n  hint: check the deployment (and that this is the host you meant: --target or the scenario's `target`), or raise --health-timeout",
                        humantime::format_duration(timeout)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Fails before any load when the host name of `u` (`whose`) does not resolve.
fn resolve(u: &url::Url, whose: &Whose) -> Result<(), Failure> {
    let host = u
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = u.port_or_known_default().unwrap_or(80);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = host.clone();
    // getaddrinfo cannot be cancelled; bound the wait instead.
    std::thread::spawn(move || {
        let _ = tx.send(
            std::net::ToSocketAddrs::to_socket_addrs(&(h.as_str(), port))
                .map(|mut a| a.next().is_some()),
        );
    });
    let unresolvable = |why: String| Failure {
        exit: Exit::Unreachable,
        message: format!(
            "cannot resolve {}: {why}\n  hint: {} and this machine's DNS",
            match whose {
                Whose::Target => format!("the target host `{host}`"),
                Whose::Base(_) => format!("the host `{host}` of {}", whose.name()),
            },
            whose.fix()
        ),
    };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(unresolvable("no addresses".into())),
        Ok(Err(e)) => Err(unresolvable(e.to_string())),
        Err(_) => Err(unresolvable("no answer within 10 s".into())),
    }
}

/// One connection before any load (TCP, and TLS for https), no request: a target that
/// refuses or cannot be reached would otherwise show up as nothing but connect errors,
/// and a failed TLS handshake too, so say why and how to fix it. Anything a request
/// would show (404, slow, resets) is left to the run, where it is data.
fn reach(
    scenario: &Scenario,
    u: &url::Url,
    whose: &Whose,
    load: &LoadFlags,
    health: bool,
) -> Result<(), Failure> {
    let base = strip_credentials(u);
    let uri: http::Uri = format!("{base}/")
        .parse()
        .map_err(|e| Failure::config(format!("target {base}: {e}")))?;
    let (rt, client) = probe_client(scenario, load, scenario.connect_timeout)?;
    let result = rt.block_on(client.reach(&uri, scenario.connect_timeout));
    let port = u.port_or_known_default().unwrap_or(80);
    let host = u.host_str().unwrap_or_default();
    match result {
        Err(e) if e.tls.is_none() && !health => Err(Failure {
            exit: Exit::Unreachable,
            message: format!(
                "cannot connect to {} {host}:{port}{}: {}\n  hint: {}",
                whose.name(),
                // The URL only when it says more than the address (a scheme or a path).
                if base == format!("http://{host}:{port}") {
                    String::new()
                } else {
                    format!(" ({base})")
                },
                e.detail,
                match whose {
                    Whose::Target => "check that the service is running and listening there, or pass --wait-healthy PATH to wait for it to come up",
                    Whose::Base(_) => "check that the service is running and listening there (a health check waits for the scenario's target only, not for an endpoint's base)",
                }
            ),
        }),
        Err(e) if e.tls.is_some() => {
            let tls = e.tls.unwrap_or_default();
            let (why, hint) = tls_reason(e.tls_problem.unwrap_or(TlsProblem::Other), load);
            Err(Failure {
                exit: Exit::Unreachable,
                message: format!(
                    "TLS handshake with {}{base} failed: {why} ({tls})\n  hint: {hint}",
                    match whose {
                        Whose::Target => String::new(),
                        Whose::Base(_) => format!("{} ", whose.name()),
                    }
                ),
            })
        }
        _ => Ok(()),
    }
}

/// What a failed handshake means and what to do, for a run with `load`'s TLS flags.
fn tls_reason(problem: TlsProblem, load: &LoadFlags) -> (&'static str, String) {
    let cas = load.tls_files.extra_cas();
    match problem {
        TlsProblem::UnknownAuthority => (
            "certificate signed by unknown authority",
            if cas == 0 {
                "trust the CA that signed it: pass --cacert FILE (a PEM bundle), set [tls] ca_file in the scenario, or SSL_CERT_FILE; for a staging host you trust, --insecure".into()
            } else {
                format!("none of the built-in roots nor the {cas} CA certificate(s) given signed it: give the CA that did (--cacert FILE, [tls] ca_file or SSL_CERT_FILE); for a staging host you trust, --insecure")
            },
        ),
        TlsProblem::WrongName => (
            "certificate is for another host name",
            "use the host name the certificate names in the target URL; for a staging host you trust, pass --insecure".into(),
        ),
        TlsProblem::Expired => (
            "certificate expired or not yet valid",
            "renew the server's certificate (or check this machine's clock); for a staging host you trust, pass --insecure".into(),
        ),
        TlsProblem::BadServerCertificate => (
            "the server's certificate is not trusted",
            "for a staging host you trust, pass --insecure".into(),
        ),
        TlsProblem::ClientCertRequired => (
            "the server requires a client certificate (mTLS) and none was given",
            "pass --cert FILE --key FILE, or set [tls] cert_file and key_file in the scenario".into(),
        ),
        TlsProblem::ClientCertRejected => (
            "the server rejected the client certificate",
            "check that the server trusts the CA that signed it, and that it has not expired (--cert/--key, [tls] cert_file/key_file)".into(),
        ),
        _ => (
            "no TLS session",
            "check that this port speaks TLS (an http:// URL?) and that the server accepts TLS 1.2 or 1.3".into(),
        ),
    }
}

/// A single-threaded runtime and an HTTP client for one-off probes before the run.
fn probe_client(
    scenario: &Scenario,
    load: &LoadFlags,
    connect_timeout: Duration,
) -> Result<(tokio::runtime::Runtime, loadgate_engine::HttpClient), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(e.to_string()))?;
    let options = loadgate_engine::ClientOptions {
        connect_timeout,
        http: scenario.http,
        insecure: load.insecure,
        connections: None,
        tls_files: load.tls_files.clone(),
    };
    let client = rt
        .block_on(async { loadgate_engine::HttpClient::new(options) })
        .map_err(|e| Failure::config(e.to_string()))?;
    Ok((rt, client))
}
