//! Helpers shared by the binary's end-to-end tests: a scenario folder per case, the
//! `loadgate` process, signals, and the embedded target's fast profile.
//!
//! Runs take a lock so they do not compete for the two cores.

#![allow(dead_code)]

pub(crate) mod pki;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

pub(crate) const FAST_PROFILE: &str = r#"
[[route]]
path = "/api/health"
health = { unhealthy_for = "0s" }
[[route]]
method = "POST"
path = "/api/intelligence/analyze"
latency = { dist = "uniform", min = "1ms", max = "3ms" }
validate = { json_string = "userId" }
response = '{"status":"ok"}'
[[route]]
path = "/slow"
latency = { dist = "fixed", value = "500ms" }
[[route]]
path = "/sick"
health = { unhealthy_for = "1h" }
[[route]]
path = "/"
response = '{"status":"ok"}'
"#;

pub(crate) struct Case {
    pub dir: tempfile::TempDir,
}

impl Case {
    pub(crate) fn new(scenario: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("profile.toml"), FAST_PROFILE).unwrap();
        std::fs::write(dir.path().join("s.toml"), scenario).unwrap();
        Case { dir }
    }

    /// A case whose embedded target runs `profile` (`profile.toml`) in place of the
    /// fast one.
    pub(crate) fn with_profile(scenario: &str, profile: &str) -> Case {
        let c = Case::new(scenario);
        c.profile(profile);
        c
    }

    /// Replaces the case's target profile (`profile.toml`) with `profile`.
    pub(crate) fn profile(&self, profile: &str) {
        std::fs::write(self.dir.path().join("profile.toml"), profile).unwrap();
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Runs `loadgate ARGS` in the case folder; `{s}` is the scenario, `{out}` the run dir.
    pub(crate) fn loadgate(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.loadgate_under(&[], args, env)
    }

    /// Like [`Case::loadgate`], started by the command `wrapper` (e.g. `prlimit ... --`).
    pub(crate) fn loadgate_under(
        &self,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let out = self.out();
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(env!("CARGO_BIN_EXE_loadgate"));
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_loadgate")),
        };
        cmd.current_dir(self.dir.path());
        for a in args {
            let a = a.replace("{out}", out.to_str().unwrap());
            cmd.arg(a.replace("{s}", "s.toml"));
        }
        cmd.env_remove("LOADGATE_TARGET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub(crate) fn summary(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.out().join("summary.json")).unwrap()).unwrap()
    }
}

/// A run that failed before any load leaves no run directory behind.
#[track_caller]
pub(crate) fn assert_never_started(c: &Case) {
    assert!(
        !c.out().exists(),
        "no run directory for a run that never started"
    );
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A scenario against the embedded target with `profile.toml`: one POST endpoint, then
/// the `[load]` and `[slo]` lines given. Nothing is added to them: a test that a busy
/// machine's late sends must not turn INVALID says `max_late_ratio = 0.5` in `load`.
pub(crate) fn scenario(load: &str, slo: &str) -> String {
    format!(
        r#"name = "t"
target = "embedded"
target_profile = "profile.toml"
[[endpoint]]
name = "analyze"
method = "POST"
path = "/api/intelligence/analyze"
json = {{ userId = "u-{{{{seq}}}}" }}
checks = {{ json = [{{ path = "$.status", equals = "ok" }}] }}
[load]
{load}
[slo]
{slo}
"#
    )
}

/// 2 s at 50 requests/s, late sends tolerated (a busy machine cannot make it INVALID).
pub(crate) const OPEN_2S: &str =
    "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 50 }]\nmax_late_ratio = 0.5";

/// Starts `loadgate ARGS` in the case folder without waiting for it.
pub(crate) fn spawn_loadgate(c: &Case, args: &[&str]) -> std::process::Child {
    let out = c.out();
    Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .current_dir(c.dir.path())
        .args(args.iter().map(|a| {
            a.replace("{out}", out.to_str().unwrap())
                .replace("{s}", "s.toml")
        }))
        .env_remove("LOADGATE_TARGET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Takes the run lock, starts `loadgate run {s} --out {out} EXTRA` and lets it run for
/// `ms` milliseconds.
pub(crate) fn start_run(
    c: &Case,
    extra: &[&str],
    ms: u64,
) -> (std::sync::MutexGuard<'static, ()>, std::process::Child) {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut args = vec!["run", "{s}", "--out", "{out}"];
    args.extend_from_slice(extra);
    let child = spawn_loadgate(c, &args);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    (serial, child)
}

pub(crate) fn sigint(child: &std::process::Child) {
    signal(child, "-INT");
}

/// Sends a signal to `child` with kill(1).
pub(crate) fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Waits at most `limit` for `child`; kills it and fails the test past that.
pub(crate) fn wait_bounded(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> (Output, std::time::Duration) {
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("loadgate did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

/// A GET / scenario (open model `load`, budgets `slo`, `defaults` lines) for runs against
/// whatever `--target` the test passes.
pub(crate) fn get_root_case(load: &str, slo: &str, defaults: &str) -> Case {
    Case::new(
        &scenario(load, slo)
            .replace(
                "[[endpoint]]",
                &format!("[defaults]\n{defaults}[[endpoint]]"),
            )
            .replace("method = \"POST\"", "method = \"GET\"")
            .replace("path = \"/api/intelligence/analyze\"", "path = \"/\""),
    )
}

/// `loadgate run` of the case's scenario against `url`, quietly.
pub(crate) fn run_against(c: &Case, url: &str) -> Output {
    c.loadgate(
        &["run", "{s}", "--out", "{out}", "-q", "--target", url],
        &[],
    )
}

/// `loadgate run ARGS` in `dir`, started now (not waited for).
pub(crate) fn spawn_in(dir: &std::path::Path, args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .current_dir(dir)
        .args(args)
        .env_remove("LOADGATE_TARGET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `s.toml` in `dir` as `n` segment processes that begin their schedule together
/// a little ahead (`--segment I/N --start-at`), each writing `segI` with `-q
/// --no-report`, then `extra` args, with `env` set; their outputs, in segment order.
pub(crate) fn run_segments(
    dir: &std::path::Path,
    n: usize,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Vec<Output> {
    let start = std::time::SystemTime::now() + std::time::Duration::from_millis(2500);
    let start_at = humantime::format_rfc3339_seconds(start).to_string();
    let children: Vec<_> = (1..=n)
        .map(|i| {
            let segment = format!("{i}/{n}");
            let out = format!("seg{i}");
            let fixed = [
                "run",
                "s.toml",
                "--segment",
                &segment,
                "--start-at",
                &start_at,
                "--out",
                &out,
                "-q",
                "--no-report",
            ];
            Command::new(env!("CARGO_BIN_EXE_loadgate"))
                .current_dir(dir)
                .args(fixed.iter().chain(extra))
                .env_remove("LOADGATE_TARGET")
                .envs(env.iter().copied())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// The `summary.json` of run folder `name` in `dir`.
pub(crate) fn summary_in(dir: &std::path::Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(name).join("summary.json")).unwrap()).unwrap()
}

pub(crate) fn merge(dir: &std::path::Path, runs: &[&str], out: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .current_dir(dir)
        .arg("merge")
        .args(runs)
        .args(["--out", out])
        .args(extra)
        .output()
        .unwrap()
}

/// Row `name` (an endpoint, step, flow or poll) of a `summary.json`.
pub(crate) fn row<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {s}"))
}

/// How many of a row's requests ended in outcome `o`.
pub(crate) fn outcome(e: &serde_json::Value, o: &str) -> u64 {
    e["outcomes"][o].as_u64().unwrap_or(0)
}

/// A request a test server read: its request line and its headers, names lower-cased
/// (its body is read and dropped).
pub(crate) struct Asked {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Asked {
    /// The first value of header `name` (lower-case), if it came.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it is `METHOD PATH` (the path with its query).
    pub(crate) fn is(&self, method: &str, path: &str) -> bool {
        self.line
            .strip_prefix(method)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|rest| rest.strip_prefix(path))
            .is_some_and(|rest| rest.starts_with(' '))
    }

    /// Its path, with its query.
    pub(crate) fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

/// The next request of a connection; `None` at its end.
fn read_asked(r: &mut impl std::io::BufRead) -> Option<Asked> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(Asked {
        line: line.trim_end().to_string(),
        headers,
    })
}

/// A threaded HTTP/1.1 server on 127.0.0.1:0 that answers each request with the raw
/// response `reply` makes of it (`None`: the connection is closed unanswered), one
/// thread per connection until the client closes it. Its URL.
pub(crate) fn http_server(
    reply: impl Fn(&Asked) -> Option<String> + Send + Sync + 'static,
) -> String {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reply = std::sync::Arc::new(reply);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = std::io::BufReader::new(conn);
                while let Some(asked) = read_asked(&mut r) {
                    let Some(answer) = reply(&asked) else { return };
                    if w.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// A raw HTTP/1.1 response: `status`, the header lines `headers` (each ending CR LF),
/// a content length and `body`.
pub(crate) fn http_reply(status: u16, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
}
