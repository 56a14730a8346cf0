//! Human formatting of measured values.

use crate::Unit;

/// Formats a value given in the unit's base (µs, rps, ratio) for people.
pub fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Duration => format_us(v),
        Unit::Rate => format!("{v:.1} rps"),
        Unit::Ratio => format!("{:.2}%", v * 100.0),
    }
}

fn format_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1_000_000.0)
    } else if us >= 1_000.0 {
        format!("{:.1}ms", us / 1_000.0)
    } else {
        format!("{us:.0}µs")
    }
}
