//! The timing axis end to end (issue 20): time to first byte, connect time and send lag
//! measured against the embedded target over real sockets, written in `summary.json`,
//! `histograms.json` and the interval log, shown in the endpoint table, and judged by
//! `<timing>_<stat>` budgets.

mod common;

use common::*;

/// A route whose head and first byte leave after 20 ms and whose body's rest leaves
/// 300 ms later: time to first byte and latency differ by the 300 ms.
const SLOW_BODY: &str = r#"
[[route]]
path = "/slow-body"
latency = { dist = "fixed", value = "20ms" }
body_after = "300ms"
response = '{"status":"ok","answer":"a body that arrives late"}'
"#;

fn slow_body_case(load: &str, budgets: &str) -> Case {
    let c = Case::new(&format!(
        "name = \"timings\"\ntarget = \"embedded\"\ntarget_profile = \"slow.toml\"\n\
         [[endpoint]]\nname = \"stream\"\npath = \"/slow-body\"\n\
         [load]\n{load}\n[slo]\nbudgets = [{budgets}]\n"
    ));
    std::fs::write(c.dir.path().join("slow.toml"), SLOW_BODY).unwrap();
    c
}

fn us(v: &serde_json::Value, key: &str, stat: &str) -> u64 {
    v[key][stat]
        .as_u64()
        .unwrap_or_else(|| panic!("{key}.{stat} in {v}"))
}

/// Time to first byte is taken when the head arrives, not at the end: on a route whose
/// body comes 300 ms after its head, the first byte is that much earlier than the end
/// of every answer. Send lag is recorded for every send of the open model.
#[test]
fn time_to_first_byte_is_the_head_not_the_end_and_every_send_has_a_lag() {
    let c = slow_body_case(
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "\"ttfb_p99 < 10s\", \"send_lag_p50 < 1s\", \"p50 > 300ms\"",
    );
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let all = &s["overall"];
    let ok = all["requests"].as_u64().unwrap() - all["errors"].as_u64().unwrap();
    assert!(ok > 0);
    assert_eq!(us(all, "ttfb_us", "count"), ok, "a first byte per success");
    assert_eq!(us(all, "ttfb_service_us", "count"), ok);
    // The route holds every body 300 ms behind its head.
    let (ttfb, latency) = (us(all, "ttfb_us", "p50"), us(all, "latency_us", "p50"));
    assert!(latency >= 300_000, "latency p50 {latency} µs");
    assert!(
        ttfb + 100_000 <= latency,
        "first byte p50 {ttfb} µs, end p50 {latency} µs"
    );
    assert!(us(all, "ttfb_service_us", "p50") <= ttfb);
    // Every send of the open model has its lag.
    assert_eq!(
        us(all, "send_lag_us", "count"),
        all["sent"].as_u64().unwrap()
    );
    // The budgets were judged on those timings.
    let slo = s["slo"].as_array().unwrap();
    for expr in ["ttfb_p99 < 10s", "send_lag_p50 < 1s"] {
        let r = slo.iter().find(|r| r["expr"] == expr).expect(expr);
        assert_eq!(r["pass"], true, "{r}");
    }
    // The console table lists the timings under the endpoint.
    assert!(text(&o).contains("  first byte"), "{}", text(&o));
    // histograms.json and the interval log carry the timing by name.
    let hist = std::fs::read_to_string(c.out().join("histograms.json")).unwrap();
    let hist: serde_json::Value = serde_json::from_str(&hist).unwrap();
    assert!(
        hist["measured"]["all"]["ttfb"].is_string(),
        "{}",
        hist["measured"]["all"]
    );
    let log = std::fs::read_to_string(c.out().join("intervals.hlog")).unwrap();
    assert!(
        log.contains("stream.ttfb"),
        "a tagged ttfb entry per second"
    );

    // A budget the first byte cannot meet fails the run.
    let c = slow_body_case(
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
        "\"ttfb_p50 > 10s\"",
    );
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
}

/// Connect time is recorded for the connections a run opens, never for a reused one:
/// two VUs sending one after another reuse their connections.
#[test]
fn connect_time_is_recorded_only_for_new_connections() {
    let c = slow_body_case(
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 2 }]",
        "\"connect_p99 < 10s\"",
    );
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let all = &s["overall"];
    let (connects, requests) = (
        all["connects"].as_u64().unwrap(),
        all["requests"].as_u64().unwrap(),
    );
    assert_eq!(us(all, "connect_us", "count"), connects);
    assert!(connects >= 1, "{all}");
    assert!(
        connects < requests,
        "{connects} connections for {requests} requests: reused ones record none"
    );
    // The closed model has no schedule, so no send lag, and a send-lag budget given by
    // flag is refused before any load, as one in the file is.
    assert_eq!(us(all, "send_lag_us", "count"), 0);
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "again",
            "-q",
            "--slo",
            "send_lag_p99 < 5ms",
        ],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o)
            .contains("--slo 'send_lag_p99 < 5ms': budget `send_lag_p99 < 5ms` measures send lag"),
        "{}",
        text(&o)
    );
    assert!(
        !c.dir.path().join("again").exists(),
        "refused before any load"
    );

    // An open scenario's send-lag budget, its load made closed by `--vus`: refused
    // before any load too (review: it ran and failed on "no data").
    let c = slow_body_case(
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 5 }]\nmax_late_ratio = 0.5",
        "\"send_lag_p99 < 50ms\"",
    );
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q", "--vus", "2"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("the flags made this load closed"),
        "{}",
        text(&o)
    );
    assert!(!c.out().exists(), "refused before any load");
}
