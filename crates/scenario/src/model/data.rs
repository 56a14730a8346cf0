//! The `[data]` feeder: the CSV file read into rows, and the values a header template
//! would insert (from the file or from `[lists]`) checked where they are written.
//!
//! Not here: how rows are handed to requests (the engine).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::scenario::{DataFeed, DataMode, Endpoint};
use super::value::{interp, resolve};
use crate::check;
use crate::diag::Sink;
use crate::raw;
use crate::secrets::Secrets;

/// Where a data file's rows are, to point at a value in it.
pub(super) struct CsvRows {
    /// The data file.
    path: PathBuf,
    /// The data file for people: as the scenario names it (`${VAR}` not replaced).
    shown: PathBuf,
    /// Byte offset of each row in it.
    starts: Vec<usize>,
}

pub(super) fn data_feed(
    sink: &mut Sink<'_>,
    path: &Path,
    d: &raw::Data,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Option<(DataFeed, CsvRows)> {
    let mode = match d.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("sequential", _)) => DataMode::Sequential,
        Some(("random", _)) => DataMode::Random,
        Some((other, span)) => {
            sink.span(
                span,
                format!("unknown data mode `{other}`"),
                Some("use \"sequential\" or \"random\"".into()),
            );
            DataMode::Sequential
        }
    };
    let rel = interp(sink, &d.file, env, Some(secrets))?;
    let csv_path = resolve(path, &rel.value);
    // A name from the environment is shown as written: `data/${DATASET}.csv`.
    let shown = if rel.from_env {
        resolve(path, d.file.get_ref())
    } else {
        csv_path.clone()
    };
    let mut reader = match csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(&csv_path)
    {
        Ok(r) => r,
        Err(e) => {
            sink.span(
                d.file.span(),
                format!("cannot read data file {}: {e}", shown.display()),
                Some("the path is relative to the scenario file".into()),
            );
            return None;
        }
    };
    let columns: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            sink.span(
                d.file.span(),
                format!(
                    "data file {} has no readable header row: {e}",
                    shown.display()
                ),
                None,
            );
            return None;
        }
    };
    let mut rows = Vec::new();
    let mut starts = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => {
                starts.push(r.position().map_or(0, |p| p.byte() as usize));
                rows.push(r.iter().map(str::to_string).collect());
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let csv_text = std::fs::read_to_string(&csv_path).unwrap_or_default();
                let mut csv_sink = Sink::new(&shown, &csv_text);
                let offset = e.position().map_or(0, |p| p.byte() as usize);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!(
                            "row on line {line} has {len} fields, the header has {expected_len}"
                        )
                    }
                    _ => format!("cannot parse the data file: {e}"),
                };
                csv_sink.at(
                    offset,
                    message,
                    Some("every row needs one value per header column".into()),
                );
                sink.found.extend(csv_sink.found);
                return None;
            }
        }
    }
    if rows.is_empty() {
        sink.span(
            d.file.span(),
            format!("data file {} has no rows", shown.display()),
            Some("add rows below the header".into()),
        );
        return None;
    }
    Some((
        DataFeed {
            columns,
            rows,
            mode,
        },
        CsvRows {
            path: csv_path,
            shown,
            starts,
        },
    ))
}

/// Byte offset in CSV `text` of byte `at` of the value of field `field` in the record
/// that starts at `start` (comma-separated, `"` quotes, `""` inside quotes).
fn csv_offset(text: &str, start: usize, field: usize, at: usize) -> usize {
    let b = text.as_bytes();
    let mut i = start;
    for _ in 0..field {
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'"' => quoted = !quoted,
                b',' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if b.get(i) != Some(&b'"') {
        return (i + at).min(text.len());
    }
    i += 1;
    let mut n = 0;
    while i < b.len() && n < at {
        i += if b[i] == b'"' { 2 } else { 1 };
        n += 1;
    }
    i.min(text.len())
}

/// Refuses data-file values a header template would insert but a header cannot hold:
/// the first bad value of each such column, at its place in the data file.
pub(super) fn header_columns(
    sink: &mut Sink<'_>,
    data: &DataFeed,
    csv: &CsvRows,
    endpoints: &[Endpoint],
) {
    let mut users: BTreeMap<usize, (&str, &str)> = BTreeMap::new();
    for e in endpoints {
        for h in &e.headers {
            for c in h.value.columns() {
                users.entry(c).or_insert((h.name.as_str(), e.name.as_str()));
            }
        }
    }
    let mut text = None;
    for (col, (header, endpoint)) in users {
        let mut bad = data
            .rows
            .iter()
            .enumerate()
            .filter_map(|(r, row)| Some((r, check::header_value(row.get(col)?)?)));
        let Some((row, first)) = bad.next() else {
            continue;
        };
        let more = bad.count();
        let text: &String =
            text.get_or_insert_with(|| std::fs::read_to_string(&csv.path).unwrap_or_default());
        let mut csv_sink = Sink::new(&csv.shown, text);
        let at = csv_offset(text, csv.starts[row], col, first.offset);
        csv_sink.at(
            at,
            format!(
                "a `{}` value has {}, which header `{header}` of endpoint `{endpoint}` cannot send{}",
                data.columns[col],
                check::describe(first.c),
                if more > 0 {
                    format!(" ({} rows have such values; this is the first)", more + 1)
                } else {
                    String::new()
                }
            ),
            Some("remove it from the data file, or use the column only in paths and bodies: a header value holds tab and printable characters only".into()),
        );
        sink.found.extend(csv_sink.found);
    }
}

/// Refuses `[lists]` values a header template would insert but a header cannot hold.
pub(super) fn header_lists(
    sink: &mut Sink<'_>,
    lists: &BTreeMap<String, raw::S<Vec<raw::S<String>>>>,
    endpoints: &[Endpoint],
) {
    let mut users: BTreeMap<usize, (&str, &str)> = BTreeMap::new();
    for e in endpoints {
        for h in &e.headers {
            for l in h.value.lists() {
                users.entry(l).or_insert((h.name.as_str(), e.name.as_str()));
            }
        }
    }
    for (index, (header, endpoint)) in users {
        let Some((name, values)) = lists.iter().nth(index) else {
            continue;
        };
        for v in values.get_ref() {
            if let Some(bad) = check::header_value(v.get_ref()) {
                let at = sink.string_body_start(&v.span()) + bad.offset;
                sink.at(
                    at.min(v.span().end),
                    format!(
                        "a value of list `{name}` has {}, which header `{header}` of endpoint `{endpoint}` cannot send",
                        check::describe(bad.c)
                    ),
                    Some("remove it: a value put into a header holds tab and printable characters only".into()),
                );
            }
        }
    }
}
