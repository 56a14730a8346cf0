//! `junit.xml`: one testsuite per run, one testcase per SLO budget, plus one for the run's
//! validity, so CI systems list budgets like tests.

use std::fmt::Write as _;

use loadgate_slo::summary::RunSummary;

use crate::text::{attr, html};

/// Renders `junit.xml`.
pub fn junit_xml(s: &RunSummary) -> String {
    let suite = format!("loadgate.{}", s.scenario);
    let interrupted = s.verdict == loadgate_slo::summary::Verdict::Interrupted;
    let tests = s.slo.len() + 1 + usize::from(interrupted);
    // A budget an interrupted run had no data for yet is skipped, not failed.
    let skipped = |r: &loadgate_slo::BudgetResult| interrupted && r.no_data;
    let failures = s.slo.iter().filter(|r| !r.pass && !skipped(r)).count()
        + usize::from(!s.invalid_reasons.is_empty());
    let skips = s.slo.iter().filter(|r| skipped(r)).count();
    // An interrupted run did not run its course: an error, whatever the budgets said.
    let errors = usize::from(interrupted);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"loadgate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">", s.measured_s);
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skips}\" time=\"{:.3}\" timestamp=\"{}\">",
        attr(&suite),
        s.measured_s,
        attr(s.started_at.trim_end_matches('Z'))
    );
    out.push_str("    <properties>\n");
    for (k, v) in [
        ("target", s.origins_shown().as_str()),
        ("model", s.model.as_str()),
        ("verdict", s.verdict.word()),
        ("loadgate_version", s.loadgate_version.as_str()),
    ] {
        let _ = writeln!(out, "      <property name=\"{k}\" value=\"{}\"/>", attr(v));
    }
    out.push_str("    </properties>\n");
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"run is valid\" time=\"0\"",
        attr(&format!("{suite}.validity"))
    );
    if s.invalid_reasons.is_empty() {
        out.push_str("/>\n");
    } else {
        let joined = s.invalid_reasons.join("; ");
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\" type=\"invalid\">{}</failure>\n    </testcase>",
            attr(&joined),
            html(&joined)
        );
    }
    if interrupted {
        let msg = s
            .stop_detail
            .clone()
            .unwrap_or_else(|| "interrupted before the end of the profile".into());
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"run completed\" time=\"0\">\n      <error message=\"{}\" type=\"interrupted\">{}</error>\n    </testcase>",
            attr(&format!("{suite}.run")),
            attr(&msg),
            html(&msg)
        );
    }
    for r in &s.slo {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            attr(&format!("{suite}.{}", r.scope)),
            attr(&r.expr)
        );
        if r.pass {
            out.push_str("/>\n");
        } else if skipped(r) {
            out.push_str(">\n      <skipped message=\"no data before the run was interrupted\"/>\n    </testcase>\n");
        } else {
            let msg = format!("{} ({}): measured {}", r.expr, r.scope, r.measured_text);
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"slo\">{}</failure>\n    </testcase>",
                attr(&msg),
                html(&msg)
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
