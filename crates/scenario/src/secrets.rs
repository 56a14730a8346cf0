//! Values from the environment, and how to keep them out of everything loadgate shows.
//!
//! A scenario registers every value it substituted from the environment (`${VAR}`)
//! while it loads; a caller adds what it takes from elsewhere (a `--target` URL with a
//! password). [`Secrets::redact`] then replaces every registered value in a text meant
//! for people or files by `${NAME}`, also in the forms a value takes on its way there:
//! percent-encoded, base64 (a Basic authorization header), escaped as a target writes
//! it back in its JSON or HTML (`\"`, `\u00e9`, `&quot;`). Callers mask text before they
//! escape it for JSON, HTML or Markdown.
//!
//! What is a secret:
//! - a value of at least [`MIN_SECRET_LEN`] bytes (surrounding whitespace not counted):
//!   shorter ones (`${WORKERS:-4}`, `${ID}` = `7`) would blank every such digit in a
//!   report and hide nothing worth hiding;
//! - never a default (`${X:-default}`): it is in the scenario file for all to read;
//! - of a URL (a target), only the user name, the password, each query value and the
//!   fragment: not the scheme, host, port or path, which a report needs to be read and
//!   which would blank every endpoint's path.
//!
//! Not here: deciding which headers to hide (`Scenario::is_secret_header`), or where to
//! redact (the callers that write output).

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};

/// The shortest value registered as a secret, in bytes, not counting surrounding
/// whitespace.
pub const MIN_SECRET_LEN: usize = 4;

/// Values that must never be shown, each with the name of the variable it came from.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Variable names, by index.
    names: Vec<String>,
    /// Every form of every value with the index of its name, longest first.
    forms: Vec<(String, usize)>,
}

impl fmt::Debug for Secrets {
    /// Names only: a `Debug` print must not show what they stand for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// What the engine puts in a path for a template value (the unreserved characters kept).
const URL_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// What the WHATWG URL standard (the `url` crate) encodes in a query.
const QUERY_SET: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>');
/// ... in a path.
const PATH_SET: &AsciiSet = &QUERY_SET.add(b'?').add(b'`').add(b'{').add(b'}');
/// ... in a user name or password.
const USERINFO_SET: &AsciiSet = &PATH_SET
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'=')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'|');

impl Secrets {
    /// No secrets.
    pub fn new() -> Secrets {
        Secrets::default()
    }

    /// Registers `value`, which came from variable `name`, with the forms it may take in
    /// output. Returns whether it was registered: a value shorter than
    /// [`MIN_SECRET_LEN`] bytes (surrounding whitespace not counted) is not.
    pub fn add(&mut self, name: &str, value: &str) -> bool {
        if value.trim().len() < MIN_SECRET_LEN {
            return false;
        }
        let index = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        for form in forms(value) {
            if !self.forms.iter().any(|(f, _)| *f == form) {
                self.forms.push((form, index));
            }
        }
        // Longest first: a value that holds another is replaced whole. Stable, so the
        // first name registered for a value keeps it.
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
        true
    }

    /// Registers the secret parts of `url`, which came (wholly or partly) from `name`:
    /// the user name, the password, the `user:password` pair (which a Basic
    /// authorization header carries in base64), each query value and the fragment, each
    /// as written and percent-decoded. The scheme, host, port and path are not secrets.
    pub fn add_url(&mut self, name: &str, url: &url::Url) {
        for part in url_secrets(url) {
            self.add(name, &part);
        }
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// The names of the variables whose values are registered, in the order first seen.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// `text` with every occurrence of every registered value, in any of its forms,
    /// replaced by `${NAME}`. Longer values win over shorter ones they overlap.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        // Ranges to replace, with the name's index; longest forms claim bytes first.
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        for (form, name) in &self.forms {
            for (at, _) in text.match_indices(form.as_str()) {
                let end = at + form.len();
                if !found.iter().any(|&(s, e, _)| at < e && s < end) {
                    found.push((at, end, *name));
                }
            }
        }
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        found.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, name) in found {
            out.push_str(&text[last..start]);
            out.push_str("${");
            out.push_str(&self.names[name]);
            out.push('}');
            last = end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }
}

/// The secret parts of `url` (see [`Secrets::add_url`]).
pub(crate) fn url_secrets(url: &url::Url) -> Vec<String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut parts = Vec::new();
    let (user, password) = (url.username(), url.password().unwrap_or(""));
    if !user.is_empty() || !password.is_empty() {
        parts.extend([user.to_string(), decode(user)]);
        parts.extend([password.to_string(), decode(password)]);
        // As a Basic authorization header carries them (in base64, one of the forms).
        parts.push(format!("{}:{}", decode(user), decode(password)));
    }
    for piece in url.query().unwrap_or("").split('&') {
        // A piece without `=` may be a bare token: all of it is the value.
        let value = piece.split_once('=').map_or(piece, |(_, v)| v);
        parts.extend([value.to_string(), decode(&value.replace('+', " "))]);
    }
    if let Some(f) = url.fragment() {
        parts.extend([f.to_string(), decode(f)]);
    }
    parts
}

/// `value` and the forms it takes in what loadgate shows: as is, percent-encoded as a URL
/// holds it, and base64 (a Basic authorization header). Escaping for JSON, HTML or
/// Markdown comes after redaction (loadgate masks the strings of what it writes before
/// serializing or rendering them), so those forms need no search of their own.
fn forms(value: &str) -> Vec<String> {
    let mut encoded = vec![value.to_string()];
    for set in [URL_SET, QUERY_SET, PATH_SET, USERINFO_SET] {
        encoded.push(utf8_percent_encode(value, set).to_string());
    }
    encoded.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    // As a target echoes it back inside its own JSON or HTML (a failing answer's body,
    // shown as found): `\"` and `\\`, `\/` as some encoders write it, `\u00e9` as
    // ASCII-only encoders (Python's, Java's) write what is not ASCII, and entities.
    encoded.extend(escaped(value));
    let mut out: Vec<String> = Vec::new();
    for e in encoded {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    for padded in [true, false] {
        let b = base64(value.as_bytes(), padded);
        if !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

/// `value` escaped as a JSON string's content (without its quotes) by the common
/// encoders, and as HTML text or an attribute value.
fn escaped(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).expect("a string serializes");
    let json = json[1..json.len() - 1].to_string();
    let slashed = json.replace('/', "\\/");
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    let mut html = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
    let html_x = html.replace("&#39;", "&#x27;");
    vec![
        json,
        slashed,
        ascii.replace('/', "\\/"),
        ascii,
        html,
        html_x,
    ]
}

/// Standard base64 (RFC 4648), with or without `=` padding.
fn base64(bytes: &[u8], padded: bool) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if padded {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::new();
        for (n, v) in pairs {
            s.add(n, v);
        }
        s
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes(), true), b64);
            assert_eq!(base64(plain.as_bytes(), false), b64.trim_end_matches('='));
        }
    }

    #[test]
    fn values_are_replaced_by_their_names_longest_first() {
        let s = secrets(&[("SHORT", "abcd"), ("LONG", "abcdefgh")]);
        assert_eq!(s.redact("x abcdefgh y abcd z"), "x ${LONG} y ${SHORT} z");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn values_are_found_in_the_forms_output_gives_them() {
        let v = "p&ss w<rd>\"'/é";
        let s = secrets(&[("PW", v)]);
        let pct = utf8_percent_encode(v, URL_SET).to_string();
        let form: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
        let basic = base64(v.as_bytes(), true);
        for shown in [v, &pct, &form, &basic] {
            let text = format!("<{shown}>");
            let out = s.redact(&text);
            assert_eq!(out, "<${PW}>", "form {shown:?}");
        }
    }

    /// Review of issue 22: a target that echoes a header back in its JSON error (as
    /// httpbin does, and Python's `json.dumps`) writes `\"`, `\\`, `\/` or `\u00e9`;
    /// an HTML page writes entities. The failure explanation's `found` showed such a
    /// secret as the target escaped it, unmasked, in every output.
    #[test]
    fn values_are_found_as_a_target_escapes_them_in_json_or_html() {
        let v = "tok\"quo/ted\\sécret<&>'";
        let s = secrets(&[("TOK", v)]);
        for shown in [
            r#"tok\"quo/ted\\sécret<&>'"#,
            r#"tok\"quo\/ted\\sécret<&>'"#,
            r#"tok\"quo/ted\\s\u00e9cret<&>'"#,
            r#"tok\"quo\/ted\\s\u00e9cret<&>'"#,
            "tok&quot;quo/ted\\sécret&lt;&amp;&gt;&#39;",
            "tok&quot;quo/ted\\sécret&lt;&amp;&gt;&#x27;",
        ] {
            let text = format!("{{\"error\": \"bad {shown}\"}}");
            assert_eq!(
                s.redact(&text),
                "{\"error\": \"bad ${TOK}\"}",
                "form {shown:?}"
            );
        }
    }

    #[test]
    fn short_values_are_not_secrets() {
        let mut s = Secrets::new();
        assert!(!s.add("N", "123"));
        assert!(!s.add("PAD", "  ab  "));
        assert!(s.is_empty());
        assert_eq!(s.redact("123 ab"), "123 ab");
        assert!(s.add("OK", "1234"));
    }

    #[test]
    fn urls_register_only_their_secret_parts() {
        let mut s = Secrets::new();
        let u = url::Url::parse(
            "https://bobby:p%40ss-word@api.example.com:8443/v1/items?key=k3y-value&flag&x=1#frag-ment",
        )
        .unwrap();
        s.add_url("TARGET_URL", &u);
        let text =
            "https://api.example.com:8443/v1/items bobby p@ss-word p%40ss-word k3y-value frag-ment";
        assert_eq!(
            s.redact(text),
            "https://api.example.com:8443/v1/items ${TARGET_URL} ${TARGET_URL} ${TARGET_URL} ${TARGET_URL} ${TARGET_URL}"
        );
        // The Basic authorization header the CLI builds from the URL's credentials.
        let basic = format!("Basic {}", base64(b"bobby:p@ss-word", true));
        assert_eq!(s.redact(&basic), "Basic ${TARGET_URL}");
    }

    #[test]
    fn debug_shows_names_only() {
        let s = secrets(&[("API_TOKEN", "sk-LEAK-123456")]);
        let shown = format!("{s:?} {s:#?}");
        assert!(shown.contains("API_TOKEN"), "{shown}");
        assert!(!shown.contains("LEAK"), "{shown}");
    }
}
