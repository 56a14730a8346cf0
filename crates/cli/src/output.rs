//! What the binary prints, masked: a process-wide redactor, set once the scenario's
//! secrets are known (`run_flags::mask_secrets`), masks every console line
//! ([`print_out`], [`print_err`], the `say_out!`/`say_err!` macros) and the free text a
//! command writes ([`mask`]), before it is serialized or rendered.
//!
//! Not here: the output folder and its files (`loadgate_report::outdir::OutDir`, which
//! writes what it is given as it is).

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;

use loadgate_report::outdir::OutDir;

type Redactor = Box<dyn Fn(&str) -> Cow<'_, str> + Send + Sync>;

static REDACTOR: OnceLock<Redactor> = OnceLock::new();

/// Sets the function that masks secrets in everything written or printed from now on
/// (once per process; later calls are ignored).
pub(crate) fn set_redactor(f: Redactor) {
    let _ = REDACTOR.set(f);
}

/// `text` with every secret masked.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    match REDACTOR.get() {
        Some(f) => f(text),
        None => Cow::Borrowed(text),
    }
}

/// Masks every secret in `text`, in place. Only the free text a command writes is masked
/// this way (the target as shown, the scenario file's name, reasons and stop details):
/// never a number, a date, a budget, a name or a word of loadgate's own, so what is
/// written keeps its meaning and reads back.
pub(crate) fn mask(text: &mut String) {
    if let Cow::Owned(masked) = redact(text) {
        *text = masked;
    }
}

/// Prints `text` to standard output, redacted.
pub(crate) fn print_out(text: &str) {
    let _ = io::stdout().write_all(redact(text).as_bytes());
}

/// Prints `text` and a newline to standard error, redacted.
pub(crate) fn print_err(text: &str) {
    let mut line = redact(text).into_owned();
    line.push('\n');
    let _ = io::stderr().write_all(line.as_bytes());
}

/// Points `reports/latest` at `dir` (best effort), and warns when something other than
/// loadgate's link is in the way.
pub(crate) fn link_latest(reports: &Path, dir: &OutDir) {
    if let Err(e) = dir.link_latest(reports) {
        print_err(&format!("warning: {e}"));
    }
}
