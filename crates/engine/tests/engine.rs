//! The engine against real servers on 127.0.0.1:0: counts, latency and rate accuracy,
//! coordinated-omission correction, outcome classes.
//!
//! Timing-sensitive tests take a lock so they do not share the two cores with each other.

mod common;

use std::sync::Mutex;

use loadgate_engine::{run, Control, IntervalView, Observer, RunData};
use loadgate_metrics::{Outcome, Timing};
use loadgate_target::Profile;

static SERIAL: Mutex<()> = Mutex::new(());

struct Count(u64);
impl Observer for Count {
    fn interval(&mut self, _: &IntervalView<'_>) -> Control {
        self.0 += 1;
        Control::Continue
    }
}

/// Runs `scenario` (TOML; `${BASE}` is the target's URL) against a target with `profile`.
fn check_run(profile: &str, scenario: &str) -> RunData {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let target = loadgate_target::loopback(profile);
    let base = target.base_url();
    run_scenario(scenario, &base)
}

fn run_scenario(scenario: &str, base: &str) -> RunData {
    run_insecure(scenario, base, false)
}

fn run_insecure(scenario: &str, base: &str, insecure: bool) -> RunData {
    let mut obs = Count(0);
    let mut cfg = common::config(scenario, base, 2, true);
    cfg.insecure = insecure;
    let data = run(cfg, &mut [&mut obs]).expect("run");
    assert!(obs.0 > 0, "the observer saw no interval");
    data
}

/// `rest` (endpoints, defaults, load) as a scenario aimed at `${BASE}`.
fn with_target(rest: &str) -> String {
    format!("name = \"t\"\ntarget = \"${{BASE}}\"\n{rest}")
}

/// An open-model `[load]` table at a constant rate.
fn open_load(duration: &str, rps: u32) -> String {
    format!("[load]\nmodel = \"open\"\nstages = [{{ duration = \"{duration}\", target_rps = {rps} }}]\n")
}

fn totals(d: &RunData) -> loadgate_metrics::EndpointShard {
    let mut all = d.measured.overall();
    all.merge_from(&d.warmup.overall());
    all
}

#[test]
fn every_sent_request_is_recorded_in_exactly_one_class() {
    let profile = r#"
[[route]]
path = "/ok"
latency = { dist = "uniform", min = "1ms", max = "5ms" }
[[route]]
path = "/flaky"
error_rate = 0.3
error_status = 503
"#;
    let scenario = with_target(
        r#"[[endpoint]]
name = "ok"
path = "/ok"
[[endpoint]]
name = "flaky"
path = "/flaky"
[[endpoint]]
name = "missing"
path = "/nope"
"#,
    ) + &open_load("2s", 150)
        + "warmup = \"1s\"\n";
    let d = check_run(profile, &scenario);
    let all = totals(&d);
    assert_eq!(all.sent, 300, "the schedule has exactly 300 arrivals");
    // Sends are counted in the interval their intended time falls in, so the measured
    // phase holds exactly the arrivals due in it: none leaks into the warm-up.
    assert_eq!(d.scheduled, Some(150.0));
    assert_eq!(d.measured.overall().sent, 150);
    assert_eq!(all.dropped, 0);
    assert_eq!(all.completed(), all.sent);
    // A request belongs to the phase it was due in, whenever it completed: the measured
    // phase completed exactly what was due in it.
    assert_eq!(d.measured.overall().completed(), 150);
    // Latency is recorded for the successes only.
    assert_eq!(all.successes(), all.latency().len());
    assert_eq!(all.successes(), all.timings[Timing::Service].len());
    let ep = |i: usize| {
        let mut e = d.measured.endpoints()[i].clone();
        e.merge_from(&d.warmup.endpoints()[i]);
        e
    };
    assert_eq!(ep(0).outcomes.get(Outcome::Success), 100);
    assert_eq!(
        ep(1).outcomes.get(Outcome::Success) + ep(1).outcomes.get(Outcome::Http5xx),
        100
    );
    assert!(
        ep(1).outcomes.get(Outcome::Http5xx) > 10,
        "error_rate 0.3 should give some 503s"
    );
    assert_eq!(ep(2).outcomes.get(Outcome::Http4xx), 100);
    assert_eq!(ep(2).statuses.get(&404), Some(&100));
}

#[test]
fn a_fixed_50ms_route_measures_50_to_53ms() {
    let profile = "[[route]]\npath = \"/slow\"\nlatency = { dist = \"fixed\", value = \"50ms\" }\n";
    let scenario = with_target(
        r#"[[endpoint]]
name = "slow"
path = "/slow"
[load]
model = "closed"
stages = [{ duration = "2s", vus = 4 }]
"#,
    );
    let d = check_run(profile, &scenario);
    let p50 = d.measured.overall().latency().quantile(0.5);
    assert!((50_000..=53_000).contains(&p50), "p50 = {p50} µs");
    let n = d.measured.overall().completed();
    assert!(
        (140..=170).contains(&n),
        "4 VUs x 2 s / 50 ms ≈ 160, got {n}"
    );
}

#[test]
fn open_model_achieves_its_rate_within_two_percent() {
    let profile = "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"2ms\" }\n";
    let scenario = with_target(
        r#"[[endpoint]]
name = "root"
path = "/"
"#,
    ) + &open_load("4s", 400)
        + "warmup = \"1s\"\n";
    let d = check_run(profile, &scenario);
    let sent = d.measured.overall().sent as f64;
    let completed = d.measured.overall().completed() as f64;
    let scheduled = d.scheduled.unwrap();
    assert!((scheduled - 1200.0).abs() < 1.0, "{scheduled}");
    assert!(
        (sent / scheduled - 1.0).abs() < 0.02,
        "sent {sent} of {scheduled}"
    );
    let rate = completed / d.measured_s;
    assert!((rate / 400.0 - 1.0).abs() < 0.02, "completed at {rate} rps");
    assert_eq!(d.measured.overall().dropped, 0);
}

#[test]
fn a_generator_that_cannot_keep_up_accounts_for_every_arrival() {
    // Ten million arrivals in one second: far more than two workers can send. Each
    // arrival must end up sent, dropped (in-flight cap) or never sent, exactly once.
    let profile = "[[route]]\npath = \"/\"\n";
    let scenario = with_target("[[endpoint]]\nname = \"root\"\npath = \"/\"\n")
        + &open_load("1s", 10_000_000)
        + "max_in_flight = 20\n";
    let d = check_run(profile, &scenario);
    let all = totals(&d);
    // However fast the machine, 20 requests in flight cannot carry ten million a
    // second: some arrivals were dropped or never sent (which of the two depends on the
    // machine's speed and load, so neither is asserted alone: issue 19).
    assert!(
        all.dropped + d.missed > 0,
        "the generator could not have sent them all"
    );
    assert_eq!(
        all.sent + all.dropped + d.missed,
        10_000_000,
        "sent {} dropped {} never sent {}",
        all.sent,
        all.dropped,
        d.missed
    );
    assert!(all.completed() > 0, "answers were read while catching up");
}

/// GET of the target's release-lag path over a plain socket; the JSON body.
fn release_lag_over_http(base: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        loadgate_target::RELEASE_LAG_PATH
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap()
}

/// Runs `scenario` against a target with `profile` (a freeze of 1 s every 5 s), under
/// the lock; returns the run, the target's release lag at the quantiles that matter for
/// p90, p99 and p99.9 (ms; `None` when no response was held), and the connections the
/// target accepted during the run.
fn freeze_run(profile: &str, scenario: &str) -> (RunData, Option<[f64; 3]>, u64) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let profile = Profile::parse("profile.toml", profile).unwrap();
    let target = loadgate_target::spawn(profile, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let d = run_scenario(scenario, &target.base_url());
    let accepted = target.accepted();
    let lag_ms = |u: f64| target.release_lag_us(u).map(|us| us as f64 / 1e3);
    // The same figures over HTTP, as compare.sh reads them from `serve-target`.
    let served = release_lag_over_http(&target.base_url());
    assert_eq!(
        served["lag_us"]["p50"]
            .as_u64()
            .filter(|_| served["held"] != 0),
        target.release_lag_us(0.5),
        "{served}"
    );
    let lag = (|| Some([lag_ms(0.5)?, lag_ms(0.05)?, lag_ms(0.005)?]))();
    (d, lag, accepted)
}

/// Checks p90, p99 and p99.9 of `d` against a 1-in-5 freeze's analytic figures plus the
/// target's release `lag`, within 2% or 10 ms each. 20% of arrivals wait uniformly
/// 0..1 s: p90 = 500 ms, p99 = 950 ms, p99.9 = 995 ms (analytic). The analytic figures
/// assume the held responses leave at the freeze's end all at once; the target lets them
/// go one after another, over some milliseconds (more when the machine is busy), in
/// about the order they arrived, so the request at fraction u of the freeze waits
/// (1 - u) s plus the release lag at quantile u, which the target measures itself.
///
/// `pooled`: with `connections = N` the target holds only the N requests on the pool's
/// connections; the others wait in loadgate and go out when the freeze ends, so the
/// target's release lag (of those N) bounds theirs from above but not from below. Then
/// each figure must lie between the analytic one and it plus the lag (each ± the same
/// tolerance), whatever the machine's speed made the lag.
fn assert_freeze_measured(d: &RunData, lag: Option<[f64; 3]>, pooled: bool) {
    let lag = lag.expect("responses were held");
    let all = d.measured.overall();
    assert_eq!(all.completed(), all.successes(), "{:?}", all.outcomes);
    let ms = |q: f64| all.latency().quantile(q) as f64 / 1000.0;
    let mut report = String::new();
    let mut ok = true;
    for ((q, analytic), lag) in [(0.90, 500.0), (0.99, 950.0), (0.999, 995.0)]
        .into_iter()
        .zip(lag)
    {
        let truth = analytic + lag;
        let got = ms(q);
        let allowed = (truth * 0.02f64).max(10.0);
        let low = if pooled { analytic } else { truth };
        ok &= got >= low - allowed && got <= truth + allowed;
        report += &format!(
            "p{}: {got:.1} ms (truth {analytic} + release lag {}{lag:.1}, ±{allowed:.0}); ",
            q * 100.0,
            if pooled { "up to " } else { "" }
        );
    }
    let mean = all.latency().mean() / 1000.0;
    report += &format!("mean {mean:.1} ms (truth 100)");
    eprintln!("{report}");
    assert!(ok, "{report}");
}

#[test]
fn a_one_second_freeze_every_five_seconds_is_measured_as_it_was() {
    // Issue 5's coordinated-omission check, one period long instead of three: all
    // responses freeze for 1.0 s every 5 s, 1000 requests/s for 5 s. Any 5 s window holds
    // exactly 1 s of freeze. loadgate must be within 2% or 10 ms of the truth; a tool
    // that measures from the actual send (coordinated omission) reports a p90 near zero.
    let profile = "[stall]\nevery = \"5s\"\nfreeze = \"1s\"\n[[route]]\npath = \"/\"\n";
    let scenario =
        with_target("[[endpoint]]\nname = \"root\"\npath = \"/\"\n") + &open_load("5s", 1000);
    let (d, lag, _) = freeze_run(profile, &scenario);
    assert_eq!(d.measured.overall().completed(), 5000);
    assert_freeze_measured(&d, lag, false);
}

/// Regression (issue 17): against a server that stops the world (no answer and no
/// accept) for 1 s every 5 s, loadgate opened a connection for each held request, and
/// those past the listen queue waited for the kernel to send their SYN again a second
/// later: p99 986 ms against the analytic 951. With `connections = N` the pool is open
/// before the freeze and arrivals wait for a connection, timed from their intended send:
/// the truth within 2% or 10 ms, and never more connections than N.
#[test]
fn a_stop_the_world_freeze_is_measured_as_it_was_with_a_fixed_pool() {
    let profile =
        "[stall]\nevery = \"5s\"\nfreeze = \"1s\"\nmode = \"world\"\n[[route]]\npath = \"/\"\n";
    let scenario = with_target("[[endpoint]]\nname = \"root\"\npath = \"/\"\n")
        + &open_load("5s", 500)
        + "connections = 16\n";
    let (d, lag, accepted) = freeze_run(profile, &scenario);
    let all = d.measured.overall();
    assert_eq!(all.completed(), 2500);
    assert_eq!(accepted, 16, "the target saw the pool, no more");
    assert_eq!(all.connects, 16);
    assert_freeze_measured(&d, lag, true);
}

/// The default (a connection per request in flight) into a stopped world: the time the
/// connections waited to open is shown, not hidden in the latency. Connections past
/// the target's listen queue (128 here) open only when the kernel sends their SYN again,
/// a second later (its initial retransmission timeout).
#[test]
fn connections_opened_into_a_stopped_world_show_their_wait_as_connect_time() {
    let profile =
        "[stall]\nevery = \"5s\"\nfreeze = \"1s\"\nmode = \"world\"\n[[route]]\npath = \"/\"\n";
    let scenario =
        with_target("[[endpoint]]\nname = \"root\"\npath = \"/\"\n") + &open_load("2s", 1000);
    let (d, _, accepted) = freeze_run(profile, &scenario);
    let all = d.measured.overall();
    assert_eq!(all.completed(), 2000);
    assert!(all.connects > 128, "{} connections", all.connects);
    assert_eq!(all.connects, accepted);
    assert_eq!(all.timings[Timing::Connect].len(), all.connects);
    assert!(
        all.timings[Timing::Connect].max() >= 900_000,
        "a SYN retransmitted after about 1 s: connect max {} µs",
        all.timings[Timing::Connect].max()
    );
}

#[test]
fn refused_connections_timeouts_and_5xx_are_classified() {
    // Refused: a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scenario = with_target(
        r#"[defaults]
connect_timeout = "1s"
[[endpoint]]
name = "root"
path = "/"
"#,
    ) + &open_load("1s", 20);
    let d = {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        run_scenario(&scenario, &format!("http://127.0.0.1:{port}"))
    };
    let all = totals(&d);
    assert_eq!(
        all.outcomes.get(Outcome::ConnectError),
        20,
        "{:?}",
        all.outcomes
    );

    let profile = r#"
[[route]]
path = "/hang"
latency = { dist = "fixed", value = "5s" }
[[route]]
path = "/boom"
error_rate = 1.0
error_status = 502
"#;
    let scenario = with_target(
        r#"[defaults]
timeout = "300ms"
[[endpoint]]
name = "hang"
path = "/hang"
[[endpoint]]
name = "boom"
path = "/boom"
"#,
    ) + &open_load("1s", 20);
    let d = check_run(profile, &scenario);
    let took = d.ended_at.duration_since(d.started_at).unwrap();
    assert!(
        took.as_secs_f64() < 3.0,
        "the run must not wait for the hanging route"
    );
    let hang = &d.measured.endpoints()[0];
    let boom = &d.measured.endpoints()[1];
    assert_eq!(
        hang.outcomes.get(Outcome::Timeout),
        10,
        "{:?}",
        hang.outcomes
    );
    assert_eq!(
        boom.outcomes.get(Outcome::Http5xx),
        10,
        "{:?}",
        boom.outcomes
    );
}

/// A short run of `GET /__loadgate/version` that expects `version` in every answer.
fn version_run(http: &str, base: &str, insecure: bool, version: &str) -> RunData {
    let scenario = with_target(&format!(
        "[defaults]\nhttp = \"{http}\"\nconnect_timeout = \"1s\"\n[[endpoint]]\nname = \"v\"\npath = \"{}\"\nchecks = {{ body_contains = \"{version}\" }}\n",
        loadgate_target::VERSION_PATH
    )) + &open_load("1s", 20);
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    run_insecure(&scenario, base, insecure)
}

#[test]
fn http1_by_default_and_h2c_by_prior_knowledge() {
    let target = loadgate_target::loopback("");
    for (http, version) in [
        ("auto", "HTTP/1.1"),
        ("http1", "HTTP/1.1"),
        ("http2", "HTTP/2.0"),
    ] {
        let d = version_run(http, &target.base_url(), false, version);
        assert_eq!(
            totals(&d).outcomes.get(Outcome::Success),
            20,
            "{http}: {:?}",
            totals(&d).outcomes
        );
    }
}

#[test]
fn tls_negotiates_h2_by_alpn_and_rejects_untrusted_certificates_by_default() {
    let target = loadgate_target::spawn_tls(
        Profile::parse("p", "").unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        1,
    )
    .unwrap();
    assert!(target.base_url().starts_with("https://"));
    // A self-signed certificate is not trusted: every request is a connect error.
    let d = version_run("auto", &target.base_url(), false, "HTTP");
    assert_eq!(
        totals(&d).outcomes.get(Outcome::ConnectError),
        20,
        "{:?}",
        totals(&d).outcomes
    );
    // With --insecure: HTTP/2 by ALPN, or HTTP/1.1 when asked for.
    let d = version_run("auto", &target.base_url(), true, "HTTP/2.0");
    assert_eq!(
        totals(&d).outcomes.get(Outcome::Success),
        20,
        "{:?}",
        totals(&d).outcomes
    );
    let d = version_run("http1", &target.base_url(), true, "HTTP/1.1");
    assert_eq!(
        totals(&d).outcomes.get(Outcome::Success),
        20,
        "{:?}",
        totals(&d).outcomes
    );
}

#[test]
fn rate_limits_and_validation_errors_have_their_own_classes() {
    let profile = r#"
[[route]]
path = "/limited"
rate_limit_rps = 5
[[route]]
method = "POST"
path = "/validated"
validate = { json_string = "query", max_len = 10 }
"#;
    let scenario = with_target(
        r#"[[endpoint]]
name = "limited"
path = "/limited"
[[endpoint]]
name = "too_long"
method = "POST"
path = "/validated"
json = { query = "this query is far longer than ten characters" }
[[endpoint]]
name = "fine"
method = "POST"
path = "/validated"
json = { query = "short" }
"#,
    ) + &open_load("1s", 60);
    let d = check_run(profile, &scenario);
    let ep = |i: usize| {
        let mut e = d.measured.endpoints()[i].clone();
        e.merge_from(&d.warmup.endpoints()[i]);
        e
    };
    let limited = ep(0).outcomes;
    // 20 requests in about one second of a 5-per-second window: at most 10 pass.
    assert!(limited.get(Outcome::Http429) >= 10, "{limited:?}");
    assert_eq!(
        limited.get(Outcome::Success) + limited.get(Outcome::Http429),
        20
    );
    assert_eq!(
        ep(1).outcomes.get(Outcome::Http4xx),
        20,
        "{:?}",
        ep(1).outcomes
    );
    assert_eq!(ep(1).statuses.get(&400), Some(&20));
    assert_eq!(ep(2).outcomes.get(Outcome::Success), 20);
}

/// Runs GET / against a fault server: `rps` for `secs` seconds with `timeout`.
fn fault_run(
    fault: loadgate_target::Fault,
    timeout: &str,
    rps: u32,
    secs: u32,
    checks: &str,
) -> RunData {
    // The lock first: a server with a lifetime (DieAfter) must not age while we wait.
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let server = loadgate_target::spawn_fault(fault, "127.0.0.1:0".parse().unwrap()).unwrap();
    let scenario = with_target(&format!("[defaults]\ntimeout = \"{timeout}\"\nconnect_timeout = \"1s\"\n[[endpoint]]\nname = \"f\"\npath = \"/\"\n{checks}\n"))
                + &open_load(&format!("{secs}s"), rps);
    run_scenario(&scenario, &server.base_url())
}

/// Wall-clock length of a run.
fn took(d: &RunData) -> f64 {
    d.ended_at
        .duration_since(d.started_at)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn every_kind_of_target_misbehaviour_is_classified() {
    use loadgate_target::Fault::*;
    let cases = [
        (ResetMidHeaders, Outcome::IoError),
        (ResetMidBody, Outcome::IoError),
        (GarbageStatus, Outcome::ProtocolError),
        (BadChunked, Outcome::ProtocolError),
        // A body cut short of its Content-Length looks like a connection lost mid-body.
        (LengthMismatch, Outcome::IoError),
        // The server closes each connection after 3 answers without saying so; hyper
        // retries a request that was never sent on a closed connection.
        (CloseEvery(3), Outcome::Success),
    ];
    for (fault, class) in cases {
        let d = fault_run(fault, "2s", 20, 1, "");
        let all = totals(&d);
        assert_eq!(all.sent, 20, "{fault:?}");
        assert_eq!(all.outcomes.get(class), 20, "{fault:?}: {:?}", all.outcomes);
        assert!(took(&d) < 3.0, "{fault:?} took {:.1} s", took(&d));
    }
}

#[test]
fn a_hung_or_dripping_target_times_out_instead_of_hanging_the_run() {
    // Bound: duration + request timeout + a small grace.
    for fault in [loadgate_target::Fault::Hang, loadgate_target::Fault::Drip] {
        let d = fault_run(fault, "800ms", 10, 1, "");
        let all = totals(&d);
        assert_eq!(
            all.outcomes.get(Outcome::Timeout),
            10,
            "{fault:?}: {:?}",
            all.outcomes
        );
        assert!(
            took(&d) < 1.0 + 0.8 + 0.7,
            "{fault:?} took {:.2} s",
            took(&d)
        );
    }
}

#[test]
fn a_huge_body_is_counted_but_only_the_check_window_is_kept() {
    // 2 responses of 100 MiB each, with a body check that needs the body in memory.
    let n = 100 << 20;
    let d = fault_run(
        loadgate_target::Fault::HugeBody(n),
        "20s",
        2,
        1,
        "checks = { body_contains = \"xxxx\" }",
    );
    let all = totals(&d);
    assert_eq!(all.outcomes.get(Outcome::Success), 2, "{:?}", all.outcomes);
    assert_eq!(all.bytes, 2 * n, "every byte is counted");
    // What one exchange keeps of such a body: `exchange.rs`.
}

#[test]
fn a_target_that_dies_mid_run_is_refused_afterwards() {
    let d = fault_run(
        loadgate_target::Fault::DieAfter(std::time::Duration::from_millis(1000)),
        "1s",
        20,
        2,
        "",
    );
    let all = totals(&d);
    assert_eq!(all.sent, 40);
    assert_eq!(all.completed(), 40, "every request is classified");
    assert!(
        all.outcomes.get(Outcome::Success) >= 15,
        "{:?}",
        all.outcomes
    );
    let failed = all.outcomes.get(Outcome::ConnectError) + all.outcomes.get(Outcome::IoError);
    assert!(failed >= 15, "after the target died: {:?}", all.outcomes);
}

#[test]
fn bursts_of_503_are_counted_as_5xx() {
    // For 500 ms of every second the route answers 503 with Retry-After.
    let profile =
        "[[route]]\npath = \"/\"\nburst = { every = \"1s\", for = \"500ms\", status = 503 }\n";
    let scenario = with_target("[[endpoint]]\nname = \"r\"\npath = \"/\"\n") + &open_load("2s", 40);
    let d = check_run(profile, &scenario);
    let all = totals(&d);
    assert_eq!(all.completed(), 80);
    let (ok, bad) = (
        all.outcomes.get(Outcome::Success),
        all.outcomes.get(Outcome::Http5xx),
    );
    assert_eq!(ok + bad, 80, "{:?}", all.outcomes);
    assert!(
        (25..=55).contains(&bad),
        "about half in bursts: {:?}",
        all.outcomes
    );
    assert_eq!(all.statuses.get(&503).copied().unwrap_or(0), bad);
}
