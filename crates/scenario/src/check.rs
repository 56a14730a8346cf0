//! What the engine would refuse to send, found when the scenario loads.
//!
//! Paths, header names and header values are checked with the `http` crate's own rules,
//! through the calls the engine's client makes (`PathAndQuery::try_from`,
//! `HeaderName::from_bytes`, `HeaderValue::from_bytes`), so that `validate` refuses what
//! `run` would refuse and the two cannot drift apart. These functions find the problem
//! and the character; the caller says where it is in which file.
//!
//! Not here: file positions, messages' context (which header, which endpoint).

use http::header::{HeaderName, HeaderValue};
use http::uri::PathAndQuery;

use crate::model::target::{without_credentials, Target};
use crate::template::{pieces, Piece};

/// A character the engine would refuse, at a byte offset of the checked text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadChar {
    pub offset: usize,
    pub c: char,
}

/// Why the engine would refuse a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// A character a URL cannot hold where it stands (before or after the `?`).
    Char { bad: BadChar, in_query: bool },
    /// The target's path and this path together are longer than a URI may be.
    TooLong { len: usize },
}

/// The longest path and query the engine sends (`http`'s limit).
pub(crate) const MAX_PATH_LEN: usize = u16::MAX as usize - 1;

/// What the engine puts before every request path: the target URL's path without a
/// trailing slash (`Prepared::new`: the base URL parsed as an `http::Uri`).
pub(crate) fn path_prefix(target: &Target) -> String {
    match target {
        Target::Embedded => String::new(),
        Target::Url(u) => without_credentials(u)
            .parse::<http::Uri>()
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default(),
    }
}

/// Checks path `text` as the engine builds the request line: `prefix`, then the rendered
/// path. When `templated`, only the literal parts are checked: placeholders render
/// percent-encoded values, which a URL always holds (they stand in as `0` here).
pub(crate) fn path(prefix: &str, text: &str, templated: bool) -> Option<PathProblem> {
    let pieces = if templated {
        pieces(text)
    } else {
        vec![Piece::Lit(0..text.len())]
    };
    let mut whole = String::from(prefix);
    for p in &pieces {
        match p {
            Piece::Lit(r) => whole.push_str(&text[r.clone()]),
            Piece::Placeholder => whole.push('0'),
        }
    }
    if PathAndQuery::try_from(whole.as_str()).is_ok() {
        return None;
    }
    // Which character: `http` takes different characters before and after the `?`, and
    // checks nothing after a `#`.
    let mut in_query = false;
    for p in &pieces {
        let Piece::Lit(r) = p else { continue };
        for (i, c) in text[r.clone()].char_indices() {
            match c {
                '#' => return Some(PathProblem::TooLong { len: whole.len() }),
                '?' if !in_query => in_query = true,
                c => {
                    let probe = if in_query {
                        format!("/?{c}")
                    } else {
                        format!("/{c}")
                    };
                    if PathAndQuery::try_from(probe.as_str()).is_err() {
                        let bad = BadChar {
                            offset: r.start + i,
                            c,
                        };
                        return Some(PathProblem::Char { bad, in_query });
                    }
                }
            }
        }
    }
    Some(PathProblem::TooLong { len: whole.len() })
}

/// The first character of `value` that a header value cannot hold (anything but tab
/// and printable characters).
pub(crate) fn header_value(value: &str) -> Option<BadChar> {
    if HeaderValue::from_bytes(value.as_bytes()).is_ok() {
        return None;
    }
    value
        .char_indices()
        .find(|(_, c)| HeaderValue::from_bytes(c.encode_utf8(&mut [0; 4]).as_bytes()).is_err())
        .map(|(offset, c)| BadChar { offset, c })
}

/// The first character in the literal parts of header template `text` that a header
/// value cannot hold; what placeholders insert is checked by its values.
pub(crate) fn header_template(text: &str) -> Option<BadChar> {
    pieces(text).into_iter().find_map(|p| match p {
        Piece::Lit(r) => header_value(&text[r.clone()]).map(|b| BadChar {
            offset: r.start + b.offset,
            c: b.c,
        }),
        Piece::Placeholder => None,
    })
}

/// Whether the engine takes `name` as a header name.
pub(crate) fn header_name_ok(name: &str) -> bool {
    HeaderName::from_bytes(name.as_bytes()).is_ok()
}

/// `c` for people: "a space", "a line break (U+000A)", "the control character U+0001"
/// or "`<`".
pub(crate) fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '\n' | '\r' => format!("a line break (U+{:04X})", c as u32),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// How to write `c` in a URL instead: "write %20 for a space".
pub(crate) fn percent_hint(c: char) -> String {
    let encoded: String = c
        .encode_utf8(&mut [0; 4])
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    format!("write {encoded} for {}", describe(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_http_crate() {
        assert_eq!(path("", "/a/b?c=d", false), None);
        let bad = |offset, c, in_query| {
            Some(PathProblem::Char {
                bad: BadChar { offset, c },
                in_query,
            })
        };
        assert_eq!(path("", "/a b", false), bad(2, ' ', false));
        assert_eq!(path("", "/a\"b", false), None);
        assert_eq!(path("", "/a?\"b", false), bad(3, '"', true));
        assert_eq!(path("/base", "/{{seq}} x", true), bad(8, ' ', false));
        assert_eq!(path("", "/é", false), None);
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
        assert_eq!(path("", &long, false), None);
        assert_eq!(
            path("/p", &long, false),
            Some(PathProblem::TooLong {
                len: MAX_PATH_LEN + 2
            })
        );
    }

    #[test]
    fn header_values_take_tab_and_printable_characters() {
        assert_eq!(header_value("a\tb é"), None);
        assert_eq!(
            header_value("ab\u{7f}"),
            Some(BadChar {
                offset: 2,
                c: '\u{7f}'
            })
        );
        assert_eq!(
            header_template("{{seq}}\r"),
            Some(BadChar { offset: 7, c: '\r' })
        );
        assert_eq!(percent_hint(' '), "write %20 for a space");
        assert_eq!(percent_hint('<'), "write %3C for `<`");
    }
}
