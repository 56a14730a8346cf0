//! One value of the file: a duration, a string with `${VAR}`s, a template, a name, a
//! path, each read with its mistakes reported where they are written. A value from the
//! environment is never shown: a message names its variable (`${NAME}`) instead.
//!
//! Not here: which values a part of the scenario takes (the sibling modules), the
//! interpolation and template languages themselves (`interp`, `template`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check;
use crate::diag::Sink;
use crate::interp::{interpolate, Interpolated, Origin};
use crate::raw;
use crate::secrets::Secrets;
use crate::template::{Escape, Names, Template};

pub(super) const DURATION_HINT: &str =
    "write a duration with a unit (us, ms, s, m or h), e.g. \"30s\", \"500ms\", \"2m\" or \"1m30s\"";

/// A duration as flags and scenario files write it (`30s`, `500ms`, `2m`, `1m30s`,
/// `10sec`); the error says what was wrong without the parser's own examples.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        let why = match e {
            humantime::DurationError::UnknownUnit { unit, .. } => format!("unknown unit `{unit}`"),
            humantime::DurationError::NumberExpected(_) => "a number was expected".into(),
            humantime::DurationError::InvalidCharacter(_) => {
                "it has a character a duration cannot hold".into()
            }
            humantime::DurationError::NumberOverflow => "it is too long".into(),
            humantime::DurationError::Empty => "it is empty".into(),
        };
        let why =
            if s.trim().chars().all(|c| c.is_ascii_digit() || c == '.') && !s.trim().is_empty() {
                "it has no unit".to_string()
            } else {
                why
            };
        format!("`{s}` is not a duration: {why}")
    })
}

pub(super) fn duration(sink: &mut Sink<'_>, v: &raw::S<String>, what: &str) -> Option<Duration> {
    match parse_duration(v.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            sink.span(v.span(), format!("{what}: {e}"), DURATION_HINT.to_string());
            None
        }
    }
}

/// `v` interpolated; every value it took from the environment is registered in
/// `secrets` (unless `secrets` is `None`: the caller registers what is secret).
pub(super) fn interp(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Option<&mut Secrets>,
) -> Option<Interpolated> {
    match interpolate(v.get_ref(), env) {
        Ok(i) => {
            if let Some(secrets) = secrets {
                for e in &i.env {
                    secrets.add(&e.name, &i.value[e.value.clone()]);
                }
            }
            Some(i)
        }
        Err(e) => {
            let at = sink.string_body_start(&v.span()) + e.offset;
            sink.at(at, e.message, e.hint);
            None
        }
    }
}

/// The target's `${VAR}`s: like any value's, and an unset one's hint also names the
/// flag that replaces the target unread.
pub(super) fn target_interp(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Interpolated> {
    let before = sink.found.len();
    let i = interp(sink, v, env, None);
    for d in &mut sink.found[before..] {
        if let Some(h) = d.hint.as_mut().filter(|h| h.starts_with("export ")) {
            h.push_str(", or pass --target URL (or set LOADGATE_TARGET)");
        }
    }
    i
}

/// Where byte `at` of interpolated value `i` of `v` is written in the file, and the
/// variable whose value holds it (if one does): then the file position is its reference.
pub(super) fn place<'i>(
    sink: &Sink<'_>,
    v: &raw::S<String>,
    i: &'i Interpolated,
    at: usize,
) -> (usize, Option<&'i str>) {
    let body = sink.string_body_start(&v.span());
    let (offset, name) = match i.origin(at) {
        Origin::Text(o) => (o, None),
        Origin::Env(n) => (i.env[n].reference.start, Some(i.env[n].name.as_str())),
    };
    ((body + offset).min(v.span().end), name)
}

/// Compiles interpolated value `i` of `v` as a template. An error inside a value from the
/// environment names the variable, never the value.
pub(super) fn template(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    i: &Interpolated,
    escape: Escape,
    names: &Names<'_>,
) -> Option<Template> {
    match Template::compile(&i.value, escape, names) {
        Ok(t) => Some(t),
        Err(e) => {
            match place(sink, v, i, e.offset) {
                (at, None) => sink.at(at, e.message, e.hint),
                (at, Some(name)) => sink.at(
                    at,
                    format!("the value of `${{{name}}}` holds a template placeholder that does not compile"),
                    Some(format!("placeholders such as `{{{{seq}}}}` belong in the scenario file: remove `{{{{` from {name}")),
                ),
            }
            None
        }
    }
}

/// `v` as written in the scenario, for a message: the `${NAME}` text, never a value.
pub(super) fn written(v: &raw::S<String>) -> String {
    shorten(v.get_ref())
}

/// `s` for a message: whole when short, else its start and its length.
pub(super) fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        format!("`{s}`")
    } else {
        let start: String = s.chars().take(32).collect();
        format!("`{start}...` ({} bytes)", s.len())
    }
}

/// Refuses a control character in name `v` (trimmed as names are), pointing at it.
pub(super) fn no_control_chars(sink: &mut Sink<'_>, v: &raw::S<String>, what: &str, hint: &str) {
    let raw = v.get_ref();
    let lead = raw.len() - raw.trim_start().len();
    if let Some((i, c)) = raw.trim().char_indices().find(|(_, c)| c.is_control()) {
        let at = sink.string_body_start(&v.span()) + lead + i;
        sink.at(
            at.min(v.span().end),
            format!("{what} has {}", check::describe(c)),
            Some(hint.to_string()),
        );
    }
}

/// Reports a path the engine would refuse (`Some` problem from [`check::path`] on
/// interpolated value `i` of `v`).
pub(super) fn path_problem(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    i: &Interpolated,
    what: &str,
    p: check::PathProblem,
) {
    match p {
        check::PathProblem::Char { bad, in_query } => match place(sink, v, i, bad.offset) {
            (at, None) => sink.at(
                at,
                format!(
                    "{what} has {}{}, which a URL cannot hold",
                    check::describe(bad.c),
                    if in_query { " in its query" } else { "" }
                ),
                Some(check::percent_hint(bad.c)),
            ),
            // Not even the character: it is part of a secret.
            (at, Some(name)) => sink.at(
                at,
                format!(
                    "{what} {} has a character a URL cannot hold{} in the value of `${{{name}}}`",
                    written(v),
                    if in_query { " in its query" } else { "" }
                ),
                Some(format!(
                    "percent-encode it in {name} (e.g. %20 for a space)"
                )),
            ),
        },
        check::PathProblem::TooLong { len } => sink.span(
            v.span(),
            format!(
                "{what} is too long: {len} bytes after the target's own path, at most {}",
                check::MAX_PATH_LEN
            ),
            Some("shorten the path (or the target URL's path)".into()),
        ),
    }
}

pub(super) fn resolve(scenario: &Path, rel: &str) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        scenario.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// A `weight`: a whole number from 0 to 1,000,000, 1 when unset; `None` (said why) when
/// out of range.
pub(super) fn weight(sink: &mut Sink<'_>, w: Option<&raw::S<i64>>) -> Option<u32> {
    match w {
        None => Some(1),
        Some(w) if (0..=1_000_000).contains(w.get_ref()) => Some(*w.get_ref() as u32),
        Some(w) => {
            sink.span(
                w.span(),
                format!("weight {} is out of range", w.get_ref()),
                Some("use a whole number from 0 to 1000000".into()),
            );
            None
        }
    }
}
