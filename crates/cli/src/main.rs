//! `loadgate`: the command-line front end. Parses flags, maps every error to a
//! documented exit code in one place, and leaves the work to the library crates.

/// `eprintln!` with every secret masked ([`output::redact`]): what the console shows.
macro_rules! say_err {
    ($($t:tt)*) => { $crate::output::print_err(&format!($($t)*)) };
}

/// `println!` with every secret masked.
macro_rules! say_out {
    ($($t:tt)*) => { $crate::output::print_out(&format!("{}\n", format_args!($($t)*))) };
}

mod capacity_cmd;
mod console;
mod exit;
mod merge_cmd;
mod observers;
mod output;
mod progress;
mod reach;
mod report_cmd;
mod run_cmd;
mod run_flags;
mod startup;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::exit::{Exit, Failure};

/// Load testing and SLO gating for web APIs.
#[derive(Parser)]
#[command(
    name = "loadgate",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit codes: 0 pass · 1 a budget breached · 2 usage or scenario error · 3 invalid run (loadgate's own shortfall) · 4 target never healthy · 5 regression against --baseline · 6 target unreachable before any load · 7 output not written · 70 a bug in loadgate · 130 interrupted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario, judge it against its SLO budgets, and write a run directory.
    Run(Box<RunArgs>),
    /// Find the highest arrival rate at which every SLO budget holds: step the rate up
    /// until a budget breaks (or loadgate cannot keep up), then bisect. Writes
    /// capacity.json and a report with knee charts.
    Capacity(Box<CapacityArgs>),
    /// Render the reports of a run directory again (HTML, SVG, JUnit, Markdown), with no traffic.
    Report {
        /// A run directory written by `loadgate run` (or its summary.json).
        run: PathBuf,
        /// Write the reports here instead of into the run directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also append summary.md to this file (e.g. "$GITHUB_STEP_SUMMARY"; empty, as
        /// that variable is outside GitHub Actions: nowhere else).
        #[arg(long, value_name = "PATH", value_parser = any_path())]
        summary_md: Option<PathBuf>,
    },
    /// Compare a run with a baseline run, per endpoint and metric (exit 5 on a regression).
    Compare {
        /// Baseline run directory (or its summary.json).
        baseline: PathBuf,
        /// New run directory (or its summary.json).
        new: PathBuf,
        /// A regression budget such as `p95:+10%`, `p95:+50ms`, `throughput:-5%`,
        /// `error_rate:+0.5pp`. Repeatable; default: p50:+10% p95:+10% p99:+20%
        /// throughput:-5% error_rate:+0.5pp.
        #[arg(long = "budget", value_name = "BUDGET")]
        budgets: Vec<String>,
        /// Write compare.md and compare.json here (default: the new run directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge the run directories of the segments of one split load (`run --segment I/N`)
    /// into one run directory: histograms added exactly, counts summed per second,
    /// budgets judged on the merged data, every report rendered.
    Merge(MergeArgs),
    /// Write a commented starter scenario for a URL (no traffic is sent).
    Init {
        /// The endpoint to start from, e.g. https://staging.example.com/api/health.
        url: String,
        /// The file to write; an existing file is never replaced.
        #[arg(long, default_value = "scenario.toml")]
        out: PathBuf,
    },
    /// Check scenario files without sending any traffic.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check them as `run --target` loads them: the scenario's `target` is replaced
        /// (by a base URL or `embedded`) and not read, so `${TARGET_URL}` may be unset.
        #[arg(long, env = "LOADGATE_TARGET")]
        target: Option<String>,
        /// The TLS files `run` would be given: checked as `run` reads them.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Serve the embedded demo target until interrupted.
    ServeTarget {
        /// Target profile (TOML); the built-in demo profile when absent.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Server threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Serve HTTPS (h2 and http/1.1 by ALPN) with a fresh self-signed certificate;
        /// clients need `--insecure`.
        #[arg(long)]
        tls: bool,
    },
}

/// Flags `run` and `capacity` share: where the load goes, the budgets, the health wait,
/// TLS and the workers.
#[derive(Debug, Args, Clone)]
pub struct LoadFlags {
    /// Base URL to send load to (or `embedded`), overriding the scenario's `target`.
    #[arg(long, env = "LOADGATE_TARGET")]
    pub target: Option<String>,
    /// An SLO budget such as `p95 < 2s`; adds to or replaces the scenario's global budget
    /// on the same metric. Repeatable.
    #[arg(long = "slo", value_name = "EXPR")]
    pub slo: Vec<String>,
    /// Poll this path on the target until it answers 200 before sending any load.
    #[arg(long, value_name = "PATH", value_parser = parse_health_path)]
    pub wait_healthy: Option<String>,
    /// How long `--wait-healthy` waits before giving up.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub health_timeout: Duration,
    /// Do not verify TLS certificates (for staging hosts with self-signed certificates).
    #[arg(long)]
    pub insecure: bool,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub workers: usize,
    /// Do not pin open-model workers to CPUs of their own (by default each worker gets
    /// one when there are enough; a VM's host can otherwise hold both workers on one
    /// halted vCPU while the other is free).
    #[arg(long)]
    pub no_pin: bool,
    /// `--cacert`, `--cert`, `--key`.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// The TLS files read from the flags, the scenario and the environment, before any
    /// load (not a flag).
    #[arg(skip)]
    pub tls_files: std::sync::Arc<loadgate_engine::TlsFiles>,
}

/// The TLS files named on the command line: `run`, `capacity` and `validate` take the
/// same, so `validate` refuses first what `run` would.
#[derive(Debug, Args, Clone, Default)]
pub struct TlsArgs {
    /// Trust the CAs in this PEM file (or bundle) too, e.g. a company CA, beside the
    /// built-in roots (repeatable). Replaces the scenario's `[tls] ca_file` and
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`.
    #[arg(long, value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
    /// Client certificate (PEM, end entity first) sent to servers that ask for one
    /// (mTLS); replaces the scenario's `[tls] cert_file`.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted);
    /// without it, the key is read from the `--cert` file.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    /// The flags as `tls::load` takes them.
    pub(crate) fn flags(&self) -> tls::TlsFlags<'_> {
        tls::TlsFlags {
            cacert: &self.cacert,
            cert: self.cert.as_deref(),
            key: self.key.as_deref(),
        }
    }
}

impl LoadFlags {
    /// Reads and checks the TLS files of `scenario` under these flags (exit 2 for one
    /// that cannot be used).
    pub(crate) fn load_tls(
        &mut self,
        scenario: &loadgate_scenario::Scenario,
    ) -> Result<(), Failure> {
        self.tls_files = tls::load(scenario, &self.tls.flags(), &|n| std::env::var_os(n))?;
        Ok(())
    }
}

/// Flags of `loadgate run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Scenario file (TOML), or an http(s) URL for a one-request scenario (`loadgate run
    /// https://staging.example.com/api/health -d 30s -c 20`).
    pub scenario: PathBuf,
    /// Target, budgets, health wait, TLS and workers.
    #[command(flatten)]
    pub load: LoadFlags,
    /// Run length, replacing the stages with one constant stage (e.g. `30s`). A URL run
    /// lasts 10 s unless this says otherwise.
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Constant arrival rate in requests per second (open model).
    #[arg(long, conflicts_with = "vus")]
    pub rps: Option<f64>,
    /// Constant number of virtual users (closed model). A URL run uses 10 unless this
    /// or `--rps` says otherwise.
    #[arg(long, short = 'c')]
    pub vus: Option<u32>,
    /// A URL run's method.
    #[arg(long, short = 'm', value_name = "METHOD")]
    pub method: Option<String>,
    /// A URL run's header, `Name: value` (repeatable). Values may hold `${VAR}`, taken
    /// from the environment and masked in every output.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A URL run's request body.
    #[arg(long, conflicts_with = "json")]
    pub body: Option<String>,
    /// A URL run's JSON request body (sent with `content-type: application/json`). For the
    /// run's result as JSON on stdout, see `--format json`.
    #[arg(long, value_name = "JSON")]
    pub json: Option<String>,
    /// A fixed pool of N HTTP/1.1 connections for the run (as `[load] connections`):
    /// requests that find every one busy wait for one, timed from their intended send.
    /// Default: a connection per request in flight.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Write the run directory here instead of `reports/<scenario>-<UTC time>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder that holds run directories and the `latest` link.
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// After Ctrl-C or SIGTERM, how long in-flight requests may still finish (a second
    /// Ctrl-C stops waiting at once).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub grace: Duration,
    /// Compare with this baseline run (directory or summary.json): deltas in the
    /// reports, and exit 5 when worse beyond the regression budgets and beyond noise.
    #[arg(long, value_name = "RUN")]
    pub baseline: Option<PathBuf>,
    /// Regression budget for --baseline (repeatable), e.g. `p95:+10%`.
    #[arg(long = "budget", value_name = "BUDGET", requires = "baseline")]
    pub budgets: Vec<String>,
    /// Do not render report.html, the SVG charts, junit.xml and summary.md.
    #[arg(long)]
    pub no_report: bool,
    /// Also append summary.md to this file (e.g. "$GITHUB_STEP_SUMMARY"; empty, as that
    /// variable is outside GitHub Actions: nowhere else).
    #[arg(long, value_name = "PATH", conflicts_with = "no_report", value_parser = any_path())]
    pub summary_md: Option<PathBuf>,
    /// No live progress: only the tables, the rate, invalid and verdict lines, and where
    /// the files went.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the result for scripts: `json` writes the summary.json document on stdout
    /// (the tables and verdict go to stderr); the exit code is the same.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Run only this share of the load: segment I of N (e.g. `2/4`), or k6's fraction
    /// form `1/4:2/4`. N processes running segments 1/N..N/N send exactly the arrivals
    /// (open model), VUs (closed) and data rows of one run, with no overlap; merge their
    /// run directories with `loadgate merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_segment)]
    pub segment: Option<loadgate_engine::Segment>,
    /// Begin the schedule at this UTC time (RFC 3339, e.g. `2026-11-22T10:00:00Z`), so
    /// that segments started at slightly different moments run their schedules together.
    #[arg(long, value_name = "RFC3339", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

/// Flags of `loadgate merge`.
#[derive(Debug, Args, Clone)]
pub struct MergeArgs {
    /// The segments' run directories (or their summary.json files), in any order.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Write the merged run directory here instead of `reports/<scenario>-merged-<UTC time>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder that holds run directories and the `latest` link.
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// Do not render report.html, the SVG charts, junit.xml and summary.md.
    #[arg(long)]
    pub no_report: bool,
    /// Also append summary.md to this file (e.g. "$GITHUB_STEP_SUMMARY"; empty, as that
    /// variable is outside GitHub Actions: nowhere else).
    #[arg(long, value_name = "PATH", conflicts_with = "no_report", value_parser = any_path())]
    pub summary_md: Option<PathBuf>,
}

/// Flags of `loadgate capacity`; the plan flags override the scenario's `[capacity]`.
#[derive(Debug, Args, Clone)]
pub struct CapacityArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Target, budgets, health wait, TLS and workers.
    #[command(flatten)]
    pub load: LoadFlags,
    /// First rate tried, in requests per second (default: the scenario's `[capacity]`,
    /// else 10, or the throughput budget's rate when that is higher).
    #[arg(long, value_name = "RPS")]
    pub start_rps: Option<f64>,
    /// Add this rate at each step (default: multiply by `--factor`).
    #[arg(long, value_name = "RPS", conflicts_with = "factor")]
    pub step_rps: Option<f64>,
    /// Multiply the rate by this factor at each step (above 1; default 2).
    #[arg(long)]
    pub factor: Option<f64>,
    /// Highest rate tried (default 10000).
    #[arg(long, value_name = "RPS")]
    pub max_rps: Option<f64>,
    /// Measured length of each step (e.g. `30s`; default 10s).
    #[arg(long, value_parser = parse_duration)]
    pub step_duration: Option<Duration>,
    /// Time at each step's rate before measuring (e.g. `10s`; default 5s).
    #[arg(long, value_parser = parse_duration)]
    pub settle: Option<Duration>,
    /// Most bisection steps between the last passing and the first failing rate
    /// (default 3).
    #[arg(long)]
    pub refine: Option<u32>,
    /// Pass only if the sustainable rate is at least this (exit 1 below it, 3 when
    /// loadgate itself could not reach it).
    #[arg(long, value_name = "RPS")]
    pub require_rps: Option<f64>,
    /// Write the results here instead of `reports/<scenario>-capacity-<UTC time>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder for the results directory.
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// No progress lines, only the result.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    loadgate_scenario::parse_duration(s)
        .map_err(|e| format!("{e}; write e.g. 30s, 500ms or 2m (units: us, ms, s, m, h)"))
}

/// A path flag that may be given empty (`--summary-md "$GITHUB_STEP_SUMMARY"` where the
/// variable is unset), which the command treats as not given.
fn any_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

/// A `--wait-healthy` path: like an endpoint's, it starts with `/`.
fn parse_health_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` must start with `/` (a path on the target, e.g. /api/health)"
        ))
    }
}

fn parse_segment(s: &str) -> Result<loadgate_engine::Segment, String> {
    loadgate_engine::Segment::parse(s)
}

fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339(s.trim()).map_err(|e| {
        format!("`{s}` is not a UTC time ({e})\n  hint: write RFC 3339 in UTC, e.g. 2026-11-22T10:00:00Z (date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ)")
    })
}

fn main() -> ExitCode {
    // Before any thread or runtime exists.
    startup::prepare();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_cmd::run(*args),
        Command::Capacity(args) => capacity_cmd::run(*args),
        Command::Merge(args) => merge_cmd::run(args),
        Command::Validate { files, target, tls } => validate(&files, target.as_deref(), &tls),
        Command::Init { url, out } => init(&url, &out),
        Command::Compare {
            baseline,
            new,
            budgets,
            out,
        } => report_cmd::compare_cmd(&baseline, &new, &budgets, out.as_deref()),
        Command::Report {
            run,
            out,
            summary_md,
        } => report_cmd::report(&run, out.as_deref(), summary_md.as_deref()),
        Command::ServeTarget {
            profile,
            addr,
            threads,
            tls,
        } => serve_target(profile, addr, threads, tls),
    };
    match result {
        Ok(exit) => exit.code(),
        Err(failure) => {
            say_err!("error: {failure}");
            failure.exit.code()
        }
    }
}

/// `loadgate init URL`: a starter scenario that validates and runs as written.
fn init(url: &str, out: &std::path::Path) -> Result<Exit, Failure> {
    let u = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            Failure::config(format!(
                "init: `{url}` is not an http(s) URL with a host\n  hint: e.g. loadgate init https://staging.example.com/api/health"
            ))
        })?;
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let path = match u.query() {
        Some(query) => format!("{}?{query}", u.path()),
        None => u.path().to_string(),
    };
    let name = out
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let text = format!(
        r#"# A starter scenario for {origin}{path_shown}, written by `loadgate init`.
#   loadgate validate {file}          # check it, no traffic
#   loadgate run {file}               # run it: tables, verdict, reports/latest/
# Every key is in the README's "Scenario reference".

name = {name}
# Where the load goes (or "${{TARGET_URL}}", set in CI); --target overrides it.
target = {origin_q}

[defaults]
timeout = "10s"                     # per request; a slower answer is a timeout (an error)
# headers = {{ Authorization = "Bearer ${{API_TOKEN}}" }}   # values from the environment are masked in every output

[[endpoint]]
name = {endpoint}
method = "GET"
path = {path_q}
checks = {{ status = [200] }}
# For POST: method = "POST" and json = {{ query = "hello" }} (or body = '...').
# More endpoints: more [[endpoint]] tables, with weight = N for their share of the mix.

[load]
model = "open"                      # requests arrive on a schedule, whatever the target does
stages = [{{ duration = "30s", target_rps = 10 }}]
# warmup = "10s"                    # measured apart, not judged

[slo]
budgets = ["p95 < 2s", "error_rate < 1%"]
# More, as the deployment guides set them: "p99 < 5s", "mean < 500ms", "throughput > 9rps",
# "error_rate < 5% over 1m" (must hold in every minute, not just overall).
"#,
        origin = u.origin().ascii_serialization(),
        path_shown = if path == "/" { "" } else { path.as_str() },
        file = out.display(),
        name = q(&name),
        origin_q = q(&u.origin().ascii_serialization()),
        endpoint = q(&format!("GET {}", u.path())),
        path_q = q(&path),
    );
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    if let Err(e) = written {
        return Err(Failure::config(format!(
            "init: cannot write {}: {e}\n  hint: pass --out NEW.toml (an existing file is never replaced)",
            out.display()
        )));
    }
    say_out!(
        "wrote {}: check it with `loadgate validate {0}`, run it with `loadgate run {0}`",
        out.display()
    );
    Ok(Exit::Pass)
}

fn validate(files: &[PathBuf], target: Option<&str>, flags: &TlsArgs) -> Result<Exit, Failure> {
    // What `run` refuses: a closed scenario's send-lag budget too (a capacity search
    // takes it, its steps being open).
    let options = loadgate_scenario::LoadOptions {
        target: run_flags::target_flag(target)?,
        open_load: false,
    };
    let mut bad = 0;
    for f in files {
        match loadgate_scenario::load_with(f, &options) {
            Ok(s) => {
                // The embedded target's profile is part of the scenario: check it too.
                let embedded = s.target == loadgate_scenario::Target::Embedded;
                if let Some(Err(e)) = s
                    .target_profile
                    .as_deref()
                    .filter(|_| embedded)
                    .map(loadgate_target::Profile::load)
                {
                    bad += 1;
                    say_err!("{e}");
                    continue;
                }
                // The TLS flags, the `[tls]` files and SSL_CERT_FILE, as `run` reads them.
                if let Err(e) = tls::load(&s, &flags.flags(), &|n| std::env::var_os(n)) {
                    bad += 1;
                    say_err!("{}", e.message);
                    continue;
                }
                let budgets = s.slo.global.len() + s.slo.endpoints.len();
                say_out!(
                    "{}: ok: scenario `{}`, {} endpoint(s), {} model, {} at peak {:.0} {}, {} SLO budget(s)",
                    f.display(),
                    s.name,
                    s.endpoints.len(),
                    match s.load.model {
                        loadgate_scenario::LoadModel::Open => "open",
                        loadgate_scenario::LoadModel::Closed => "closed",
                    },
                    humantime::format_duration(s.load.duration()),
                    s.load.peak(),
                    match s.load.model {
                        loadgate_scenario::LoadModel::Open => "rps",
                        loadgate_scenario::LoadModel::Closed => "VUs",
                    },
                    budgets
                );
            }
            Err(e) => {
                bad += 1;
                say_err!("{e}");
            }
        }
    }
    if bad > 0 {
        return Err(Failure::config(format!(
            "{bad} of {} scenario file(s) are invalid",
            files.len()
        )));
    }
    Ok(Exit::Pass)
}

fn serve_target(
    profile: Option<PathBuf>,
    addr: SocketAddr,
    threads: usize,
    tls: bool,
) -> Result<Exit, Failure> {
    let profile = match profile {
        Some(p) => {
            loadgate_target::Profile::load(&p).map_err(|e| Failure::config(e.to_string()))?
        }
        None => loadgate_target::Profile::demo(),
    };
    let routes = profile.routes.len();
    let server = if tls {
        loadgate_target::spawn_tls(profile, addr, threads)
    } else {
        loadgate_target::spawn(profile, addr, threads)
    }
    .map_err(|e| Failure::config(format!("cannot listen on {addr}: {e}")))?;
    say_out!(
        "loadgate demo target listening on {} ({routes} routes); Ctrl-C to stop",
        server.base_url()
    );
    server.wait();
    Ok(Exit::Pass)
}
