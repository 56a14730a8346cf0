//! What a scenario's run is judged by: its budgets rewritten for a segment or a capacity
//! step, the rate its throughput budgets ask for, its plan and labels.

use std::path::Path;

use loadgate_scenario::{parse, Scenario};
use loadgate_slo::Op;

/// Two endpoints weighted 3:1, with the `[slo]` tables given.
fn scenario(slo: &str) -> Scenario {
    let text = format!(
        r#"name = "t"
target = "http://127.0.0.1:9"
[load]
model = "open"
stages = [{{ duration = "2s", target_rps = 10 }}]
[[endpoint]]
name = "big"
path = "/a"
weight = 3
[[endpoint]]
name = "small"
path = "/b"
weight = 1
{slo}"#
    );
    parse(Path::new("s.toml"), &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_throughput_floor_is_the_highest_rate_any_budget_asks_of_the_whole_load() {
    let cases = [
        ("", None),
        ("[slo]\nbudgets = [\"throughput > 50rps\"]", Some(50.0)),
        // 10 rps of a quarter of the load asks for 40 of the whole.
        (
            "[slo.endpoint.small]\nbudgets = [\"throughput > 10rps\"]",
            Some(40.0),
        ),
        (
            "[slo]\nbudgets = [\"throughput > 50rps\"]\n[slo.endpoint.small]\nbudgets = [\"throughput >= 20rps\"]",
            Some(80.0),
        ),
        // Goodput is a rate of the whole load too.
        ("[slo]\nbudgets = [\"goodput > 30rps\"]", Some(30.0)),
        // A ceiling asks for no rate.
        ("[slo]\nbudgets = [\"throughput < 500rps\"]", None),
    ];
    for (slo, want) in cases {
        let got = scenario(slo)
            .throughput_floor()
            .expect("weights are positive");
        assert_eq!(got, want, "{slo}");
    }
}

#[test]
fn a_throughput_budget_on_an_endpoint_without_weight_can_never_be_met() {
    let mut s = scenario("[slo.endpoint.small]\nbudgets = [\"throughput > 10rps\"]");
    s.endpoints[1].weight = 0;
    let e = s.throughput_floor().expect_err("weight 0");
    assert_eq!(e.endpoint, "small");
    assert!(e.to_string().contains("hint: give it a weight"), "{e}");
}

#[test]
fn a_capacity_step_asks_its_throughput_budgets_for_the_rate_it_offered() {
    let mut s = scenario("[slo]\nbudgets = [\"throughput > 50rps\", \"p95 < 2s\"]\n[slo.endpoint.small]\nbudgets = [\"throughput > 10rps\"]");
    let tolerance = s.load.validity.min_achieved_ratio;
    s.offer_throughput(100.0);
    let global = &s
        .slo
        .global
        .iter()
        .find(|b| b.budget.text.starts_with("throughput"))
        .unwrap()
        .budget;
    assert_eq!(global.op, Op::Ge);
    assert!((global.threshold - 100.0 * tolerance).abs() < 1e-9);
    assert!(
        global.text.contains("of the 100 rps offered"),
        "{}",
        global.text
    );
    let small = &s.slo.endpoints[0].1.budget;
    assert!(
        (small.threshold - 25.0 * tolerance).abs() < 1e-9,
        "{}",
        small.threshold
    );
    // Other budgets are as written.
    let p95 = s
        .slo
        .global
        .iter()
        .find(|b| b.budget.text.starts_with("p95"))
        .unwrap();
    assert_eq!(p95.budget.text, "p95 < 2s");
}

#[test]
fn a_segment_judges_its_share_of_each_throughput_budget() {
    let mut s = scenario("[slo]\nbudgets = [\"throughput > 50rps\", \"p95 < 2s\"]");
    s.share_throughput("2/4", 4);
    let t = &s
        .slo
        .global
        .iter()
        .find(|b| b.budget.text.starts_with("throughput"))
        .unwrap()
        .budget;
    assert!((t.threshold - 12.5).abs() < 1e-9);
    assert!(
        t.text.contains("segment 2/4's share: 12.5 rps"),
        "{}",
        t.text
    );
    // The whole load is judged as written.
    let mut whole = scenario("[slo]\nbudgets = [\"throughput > 50rps\"]");
    whole.share_throughput("1/1", 1);
    assert_eq!(whole.slo.global[0].budget.threshold, 50.0);
}

#[test]
fn the_plan_lists_budgets_global_first_and_endpoints_with_weights() {
    let s =
        scenario("[slo]\nbudgets = [\"p95 < 2s\"]\n[slo.endpoint.small]\nbudgets = [\"p99 < 1s\"]");
    let plan = s.segment_plan();
    assert_eq!(plan.budgets, ["global: p95 < 2s", "small: p99 < 1s"]);
    assert_eq!(plan.endpoints, ["big*3", "small*1"]);
    assert_eq!(plan.model, "open");
    assert_eq!(s.load_summary().profile, plan.profile);
}

/// A segment sends its share of the load, so each goodput budget, windowed or not, is
/// judged on that share of its threshold there, as each throughput budget is; a share
/// (attainment) is not a rate and stays as written.
#[test]
fn a_segment_judges_its_share_of_each_goodput_budget() {
    let mut s = scenario(
        "[slo]\nbudgets = [\"goodput > 40rps over 30s\", \"attainment > 99% over 10s\"]\n\
         [slo.endpoint.small]\nbudgets = [\"goodput >= 8rps\"]",
    );
    s.share_throughput("1/4", 4);
    let got: Vec<(f64, Option<u64>, String)> = s
        .slo
        .scoped()
        .into_iter()
        .map(|(_, b)| {
            let b = &b.budget;
            (b.threshold, b.window_s, b.text.clone())
        })
        .collect();
    assert_eq!(got[0].0, 10.0);
    assert_eq!(got[0].1, Some(30));
    assert!(
        got[0].2.contains("segment 1/4's share: 10 rps"),
        "{}",
        got[0].2
    );
    assert_eq!((got[1].0, got[1].1), (0.99, Some(10)), "{}", got[1].2);
    assert_eq!(got[2].0, 2.0, "{}", got[2].2);
}

/// What each endpoint's good requests met is stated for `summary.json`: only endpoints
/// that set a limit, each limit in µs.
#[test]
fn the_goodput_limits_of_each_endpoint_that_sets_any() {
    let text = r#"name = "t"
target = "http://127.0.0.1:9"
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 10 }]
[[endpoint]]
name = "big"
path = "/a"
goodput = { latency = "2s", ttfb = "300ms" }
[[endpoint]]
name = "small"
path = "/b"
"#;
    let s = parse(Path::new("s.toml"), text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let limits = s.goodput_limits();
    assert_eq!(limits.keys().collect::<Vec<_>>(), ["big"]);
    let big = limits["big"];
    assert_eq!(
        (big.latency_us, big.ttfb_us, big.ttft_us, big.itl_us),
        (Some(2_000_000), Some(300_000), None, None)
    );
    assert_eq!(big.describe(), "latency ≤ 2.00s, ttfb ≤ 300.0ms");
    assert!(scenario("").goodput_limits().is_empty());
}
