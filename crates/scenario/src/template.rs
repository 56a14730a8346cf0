//! Request templates: `{{seq}}`, `{{uuid}}`, `{{random_int(a,b)}}`, `{{pick(list)}}`,
//! `{{column}}` from the data file and, in a flow's step, `{{variable}}` captured by an
//! earlier step.
//!
//! A template is compiled once when the scenario loads, into literal byte runs and
//! placeholders; rendering appends to a reusable buffer and never re-parses text.

use std::fmt::Write as _;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;

/// How substituted values are escaped for the place they land in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is (plain `body`, header values).
    None,
    /// Inside a JSON string (bodies given as `json`).
    JsonString,
    /// Percent-encoded (paths and queries).
    Url,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(Vec<u8>),
    Seq,
    Uuid,
    RandomInt(i64, i64),
    Pick(usize),
    Column(usize),
    /// A flow variable (by its slot in the flow's variables).
    Var(usize),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    escape: Escape,
}

/// A template that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the problem in the template text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Names a template may refer to.
#[derive(Debug)]
pub struct Names<'a> {
    /// Names of the lists defined in `[lists]`, by index.
    pub lists: &'a [String],
    /// Column names of the data file, by index (empty when there is none).
    pub columns: &'a [String],
    /// A flow step's variables captured by the steps before it, by slot (empty outside
    /// a flow).
    pub vars: &'a [String],
}

/// Per-request values a template needs.
#[derive(Debug)]
pub struct RenderCtx<'a, R: Rng> {
    /// The request's sequence number (global arrival index in the open model).
    pub seq: u64,
    /// Random source.
    pub rng: &'a mut R,
    /// The data-file row for this request, if the scenario has a data file.
    pub row: Option<&'a [String]>,
    /// The scenario's lists, by index.
    pub lists: &'a [Vec<String>],
    /// A flow iteration's variables, by slot (empty outside a flow; a slot no step
    /// filled renders empty).
    pub vars: &'a [String],
}

const URL_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl Template {
    /// Compiles `text`.
    pub fn compile(
        text: &str,
        escape: Escape,
        names: &Names<'_>,
    ) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut base = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest.as_bytes()[..open].to_vec()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateError {
                offset: base + open,
                message: "unterminated `{{`".into(),
                hint: "close the placeholder with `}}`".into(),
            })?;
            let inner = after[..close].trim();
            let at = base + open;
            parts.push(compile_placeholder(inner, at, names)?);
            let consumed = open + 2 + close + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.as_bytes().to_vec()));
        }
        Ok(Template { parts, escape })
    }

    /// A template with no placeholders.
    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Lit(text.as_bytes().to_vec())],
            escape: Escape::None,
        }
    }

    /// Whether rendering always gives the same bytes.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Whether rendering needs a data-file row.
    pub fn uses_row(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Column(_)))
    }

    /// Flow variables (by slot) whose values rendering inserts.
    pub fn vars(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            _ => None,
        })
    }

    /// Data-file columns (by index) whose values rendering inserts.
    pub(crate) fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(c) => Some(*c),
            _ => None,
        })
    }

    /// Lists (by index) whose values rendering inserts.
    pub(crate) fn lists(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Pick(l) => Some(*l),
            _ => None,
        })
    }

    /// Appends the rendered bytes to `out`.
    pub fn render<R: Rng>(&self, ctx: &mut RenderCtx<'_, R>, out: &mut Vec<u8>) {
        let mut scratch = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Seq => push_display(out, ctx.seq),
                Part::RandomInt(a, b) => push_display(out, ctx.rng.gen_range(*a..=*b)),
                Part::Uuid => {
                    let v: u128 = ctx.rng.gen();
                    // RFC 4122 version 4, variant 1.
                    let v = (v & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
                    let h = format!("{v:032x}");
                    for (i, chunk) in [&h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]]
                        .iter()
                        .enumerate()
                    {
                        if i > 0 {
                            out.push(b'-');
                        }
                        out.extend_from_slice(chunk.as_bytes());
                    }
                }
                Part::Pick(list) => {
                    let items = &ctx.lists[*list];
                    let item = &items[ctx.rng.gen_range(0..items.len())];
                    self.push_escaped(out, item, &mut scratch);
                }
                Part::Column(col) => {
                    let value = ctx.row.and_then(|r| r.get(*col)).map_or("", String::as_str);
                    self.push_escaped(out, value, &mut scratch);
                }
                Part::Var(slot) => {
                    let value = ctx.vars.get(*slot).map_or("", String::as_str);
                    self.push_escaped(out, value, &mut scratch);
                }
            }
        }
    }

    /// Renders to a new `String` (for tests and one-off use).
    pub fn render_string<R: Rng>(&self, ctx: &mut RenderCtx<'_, R>) -> String {
        let mut out = Vec::new();
        self.render(ctx, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn push_escaped(&self, out: &mut Vec<u8>, value: &str, scratch: &mut String) {
        match self.escape {
            Escape::None => out.extend_from_slice(value.as_bytes()),
            Escape::Url => {
                for piece in utf8_percent_encode(value, URL_SET) {
                    out.extend_from_slice(piece.as_bytes());
                }
            }
            Escape::JsonString => {
                scratch.clear();
                for c in value.chars() {
                    match c {
                        '"' => scratch.push_str("\\\""),
                        '\\' => scratch.push_str("\\\\"),
                        '\n' => scratch.push_str("\\n"),
                        '\r' => scratch.push_str("\\r"),
                        '\t' => scratch.push_str("\\t"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(scratch, "\\u{:04x}", c as u32);
                        }
                        c => scratch.push(c),
                    }
                }
                out.extend_from_slice(scratch.as_bytes());
            }
        }
    }
}

/// A piece of template text: literal text (a byte range of the text) or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(std::ops::Range<usize>),
    Placeholder,
}

/// The pieces of `text`, split as [`Template::compile`] splits it; `text` must compile.
pub(crate) fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut base = 0;
    while let Some(open) = text[base..].find("{{") {
        if open > 0 {
            out.push(Piece::Lit(base..base + open));
        }
        let after = base + open + 2;
        let Some(close) = text[after..].find("}}") else {
            // Not a template that compiles; the rest is as good as literal.
            out.push(Piece::Lit(base + open..text.len()));
            return out;
        };
        out.push(Piece::Placeholder);
        base = after + close + 2;
    }
    if base < text.len() {
        out.push(Piece::Lit(base..text.len()));
    }
    out
}

fn push_display(out: &mut Vec<u8>, v: impl itoa_like::Int) {
    v.push_to(out);
}

mod itoa_like {
    //! Integer formatting without a heap allocation.
    pub(super) trait Int {
        fn push_to(self, out: &mut Vec<u8>);
    }
    impl Int for u64 {
        fn push_to(self, out: &mut Vec<u8>) {
            let mut buf = [0u8; 20];
            let mut i = buf.len();
            let mut v = self;
            loop {
                i -= 1;
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            out.extend_from_slice(&buf[i..]);
        }
    }
    impl Int for i64 {
        fn push_to(self, out: &mut Vec<u8>) {
            if self < 0 {
                out.push(b'-');
            }
            self.unsigned_abs().push_to(out);
        }
    }
}

fn compile_placeholder(inner: &str, at: usize, names: &Names<'_>) -> Result<Part, TemplateError> {
    let err = |message: String, hint: &str| TemplateError {
        offset: at,
        message,
        hint: hint.to_string(),
    };
    const KNOWN: &str = "use {{seq}}, {{uuid}}, {{random_int(a,b)}}, {{pick(list)}} or a data-file column such as {{userId}}";
    if let Some(open) = inner.find('(') {
        let func = inner[..open].trim();
        let args_text = inner[open + 1..].strip_suffix(')').ok_or_else(|| {
            err(
                format!("`{{{{{inner}}}}}` is missing its closing `)`"),
                KNOWN,
            )
        })?;
        let args: Vec<&str> = args_text.split(',').map(str::trim).collect();
        return match func {
            "random_int" => {
                let nums: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
                match nums.as_slice() {
                    [a, b] if args.len() == 2 && a <= b => Ok(Part::RandomInt(*a, *b)),
                    [a, b] if args.len() == 2 => Err(err(
                        format!("random_int({a},{b}) has its bounds reversed"),
                        "write the smaller bound first: random_int(min,max)",
                    )),
                    _ => Err(err(
                        format!("random_int takes two integers, got `{args_text}`"),
                        "write e.g. {{random_int(1,100)}}",
                    )),
                }
            }
            "pick" => {
                let [name] = args.as_slice() else {
                    return Err(err(
                        format!("pick takes one list name, got `{args_text}`"),
                        "write e.g. {{pick(topics)}}",
                    ));
                };
                names
                    .lists
                    .iter()
                    .position(|l| l == name)
                    .map(Part::Pick)
                    .ok_or_else(|| {
                        let defined = if names.lists.is_empty() {
                            "none".to_string()
                        } else {
                            names.lists.join(", ")
                        };
                        err(
                            format!("pick names the list `{name}`, which is not defined"),
                            &format!("define it under [lists] (defined: {defined})"),
                        )
                    })
            }
            other => Err(err(format!("unknown template function `{other}`"), KNOWN)),
        };
    }
    match inner {
        "seq" => Ok(Part::Seq),
        "uuid" => Ok(Part::Uuid),
        "" => Err(err("empty placeholder `{{}}`".into(), KNOWN)),
        name => names
            .vars
            .iter()
            .position(|v| v == name)
            .map(Part::Var)
            .or_else(|| {
                names
                    .columns
                    .iter()
                    .position(|c| c == name)
                    .map(Part::Column)
            })
            .ok_or_else(|| {
                if names.columns.is_empty() {
                    err(
                        format!(
                            "unknown placeholder `{{{{{name}}}}}` (the scenario has no data file)"
                        ),
                        KNOWN,
                    )
                } else {
                    err(
                        format!("unknown placeholder `{{{{{name}}}}}`"),
                        &format!("the data file's columns are: {}", names.columns.join(", ")),
                    )
                }
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn names() -> (Vec<String>, Vec<String>) {
        (vec!["topics".into()], vec!["userId".into(), "plan".into()])
    }

    fn render(text: &str, escape: Escape, row: &[String]) -> String {
        let (lists, columns) = names();
        let t = Template::compile(
            text,
            escape,
            &Names {
                lists: &lists,
                columns: &columns,
                vars: &[],
            },
        )
        .unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let list_values = vec![vec!["a\"b".to_string()]];
        t.render_string(&mut RenderCtx {
            seq: 42,
            rng: &mut rng,
            row: Some(row),
            lists: &list_values,
            vars: &[],
        })
    }

    #[test]
    fn placeholders_render() {
        let row = ["u 1".to_string(), "pro".to_string()];
        assert_eq!(
            render("/users/{{userId}}?n={{seq}}", Escape::Url, &row),
            "/users/u%201?n=42"
        );
        assert_eq!(
            render("{\"q\":\"{{pick(topics)}}\"}", Escape::JsonString, &row),
            "{\"q\":\"a\\\"b\"}"
        );
        let n: i64 = render("{{random_int(-5, 5)}}", Escape::None, &row)
            .parse()
            .unwrap();
        assert!((-5..=5).contains(&n));
        let u = render("{{uuid}}", Escape::None, &row);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }

    #[test]
    fn pieces_split_like_compile() {
        use Piece::*;
        assert_eq!(
            pieces("/a/{{seq}}{{uuid}}b"),
            vec![Lit(0..3), Placeholder, Placeholder, Lit(18..19)]
        );
        assert_eq!(pieces("{{seq}}"), vec![Placeholder]);
        assert_eq!(pieces("x{y}"), vec![Lit(0..4)]);
    }

    #[test]
    fn errors_point_at_the_placeholder() {
        let (lists, columns) = names();
        let n = Names {
            lists: &lists,
            columns: &columns,
            vars: &[],
        };
        let e = Template::compile("ab{{pick(nope)}}", Escape::None, &n).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("`nope`"), "{e:?}");
        assert!(Template::compile("{{random_int(5,1)}}", Escape::None, &n).is_err());
        assert!(Template::compile("{{random_int(a)}}", Escape::None, &n).is_err());
        assert!(Template::compile("{{seq", Escape::None, &n).is_err());
        assert!(Template::compile("{{nope}}", Escape::None, &n)
            .unwrap_err()
            .hint
            .contains("userId"));
        assert!(Template::compile("{{frob(1)}}", Escape::None, &n).is_err());
    }
}
