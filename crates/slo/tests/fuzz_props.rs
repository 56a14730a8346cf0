//! Any input to the budget parsers is an error or a budget, never a panic; errors point
//! inside the input.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn budget_expressions_never_panic(s in "\\PC{0,40}") {
        if let Err(e) = loadgate_slo::parse(&s) {
            prop_assert!(e.offset <= s.len());
        }
    }

    #[test]
    fn near_miss_expressions_never_panic(
        metric in prop::sample::select(vec!["p95", "p99.9", "p(95)", "mean", "throughput", "error_rate", "service_p50", "p", "p1000", ""]),
        op in prop::sample::select(vec!["<", "<=", ">", ">=", "=", "=<", ""]),
        num in "[0-9.]{0,6}",
        unit in prop::sample::select(vec!["ms", "s", "us", "µs", "rps", "%", "m", "", "xs"]),
    ) {
        let s = format!("{metric} {op} {num}{unit}");
        if let Err(e) = loadgate_slo::parse(&s) {
            prop_assert!(e.offset <= s.len());
        }
    }

    #[test]
    fn compare_budgets_never_panic(s in "\\PC{0,30}") {
        let _ = loadgate_slo::compare::parse_budget(&s);
    }
}
