//! `${VAR}` and `${VAR:-default}` interpolation from the environment.
//!
//! Besides the value, the result says which parts came from the environment, so that
//! the caller can register them as secrets and point a diagnostic at the reference
//! (`${NAME}`) instead of showing what it stands for.

use std::ops::Range;

/// Result of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The string with every reference replaced.
    pub value: String,
    /// Whether any part came from the environment (such values are treated as secrets).
    pub from_env: bool,
    /// Every reference the environment answered, in order.
    pub env: Vec<EnvValue>,
    /// How `value` maps back to the input, piece by piece, in order.
    pieces: Vec<(Range<usize>, Origin)>,
    /// The input's length.
    input_len: usize,
}

/// A part of an interpolated value that came from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    /// The variable's name.
    pub name: String,
    /// Where its value is in [`Interpolated::value`].
    pub value: Range<usize>,
    /// Where its reference (`${NAME}` or `${NAME:-default}`) is in the input.
    pub reference: Range<usize>,
}

/// Where a byte of an interpolated value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This byte offset of the input (literal text or a default).
    Text(usize),
    /// The value of the environment reference with this index in [`Interpolated::env`].
    Env(usize),
}

impl Interpolated {
    /// Where byte `at` of `value` comes from; the end of the input for `at` past the end.
    pub fn origin(&self, at: usize) -> Origin {
        for (out, origin) in &self.pieces {
            if out.contains(&at) {
                return match *origin {
                    Origin::Text(start) => Origin::Text(start + (at - out.start)),
                    env => env,
                };
            }
        }
        Origin::Text(self.input_len)
    }

    /// The environment reference whose value holds byte `at` of `value`, if any.
    pub fn env_at(&self, at: usize) -> Option<&EnvValue> {
        match self.origin(at) {
            Origin::Env(i) => self.env.get(i),
            Origin::Text(_) => None,
        }
    }
}

/// A reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpError {
    /// Byte offset of the `${` in the input.
    pub offset: usize,
    /// What went wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Replaces `${VAR}` / `${VAR:-default}` using `lookup`. `$${` is a literal `${`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpError> {
    let mut out = String::with_capacity(input.len());
    let mut env = Vec::new();
    let mut pieces = Vec::new();
    // Appends `text`, which comes from `origin`.
    let push = |out: &mut String, pieces: &mut Vec<_>, text: &str, origin: Origin| {
        if !text.is_empty() {
            pieces.push((out.len()..out.len() + text.len(), origin));
            out.push_str(text);
        }
    };
    let mut rest = input;
    let mut base = 0;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            push(&mut out, &mut pieces, &rest[..i - 1], Origin::Text(base));
            push(&mut out, &mut pieces, "${", Origin::Text(base + i));
            base += i + 2;
            rest = &rest[i + 2..];
            continue;
        }
        push(&mut out, &mut pieces, &rest[..i], Origin::Text(base));
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(InterpError {
                offset: base + i,
                message: "unterminated `${`".into(),
                hint: "close the reference with `}`, or write `$${` for a literal `${`".into(),
            });
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InterpError {
                offset: base + i,
                message: format!("`${{{inner}}}` is not a valid variable reference"),
                hint: "write `${NAME}` or `${NAME:-default}` with letters, digits and `_`".into(),
            });
        }
        let consumed = i + 2 + end + 1;
        match (lookup(name), default) {
            (Some(v), _) => {
                let start = out.len();
                push(&mut out, &mut pieces, &v, Origin::Env(env.len()));
                env.push(EnvValue {
                    name: name.to_string(),
                    value: start..out.len(),
                    reference: base + i..base + consumed,
                });
            }
            (None, Some(d)) => {
                let at = base + i + 2 + name.len() + 2;
                push(&mut out, &mut pieces, d, Origin::Text(at));
            }
            (None, None) => {
                return Err(InterpError {
                    offset: base + i,
                    message: format!("environment variable `{name}` is not set"),
                    hint: format!("export {name}=..., or give a default with `${{{name}:-value}}`"),
                })
            }
        }
        base += consumed;
        rest = &rest[consumed..];
    }
    push(&mut out, &mut pieces, rest, Origin::Text(base));
    Ok(Interpolated {
        value: out,
        from_env: !env.is_empty(),
        env,
        pieces,
        input_len: input.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    #[test]
    fn references_defaults_and_escapes() {
        let r = interpolate("Bearer ${TOKEN}", &env).unwrap();
        assert_eq!(r.value, "Bearer s3cret");
        assert!(r.from_env);
        let r = interpolate("${TARGET_URL:-http://localhost:3000}/x", &env).unwrap();
        assert_eq!(r.value, "http://localhost:3000/x");
        assert!(!r.from_env);
        assert_eq!(interpolate("cost $${X}", &env).unwrap().value, "cost ${X}");
    }

    #[test]
    fn missing_variables_name_the_variable() {
        let e = interpolate("ab${NOPE}", &env).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("`NOPE`"));
        assert!(interpolate("${oops", &env).is_err());
        assert!(interpolate("${a b}", &env).is_err());
    }

    #[test]
    fn every_byte_maps_back_to_the_input() {
        let r = interpolate("a$${b}${TOKEN}c${X:-de}", &env).unwrap();
        assert_eq!(r.value, "a${b}s3cretcde");
        assert_eq!(r.origin(0), Origin::Text(0));
        assert_eq!(r.origin(1), Origin::Text(2));
        assert_eq!(r.origin(4), Origin::Text(5));
        assert_eq!(r.origin(7), Origin::Env(0));
        assert_eq!(r.env_at(7).map(|e| e.name.as_str()), Some("TOKEN"));
        assert_eq!(r.env[0].reference, 6..14);
        assert_eq!(r.env[0].value, 5..11);
        assert_eq!(r.origin(11), Origin::Text(14));
        assert_eq!(r.origin(12), Origin::Text(20));
        assert_eq!(r.origin(99), Origin::Text(23));
    }
}
