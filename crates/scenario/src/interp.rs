//! `${VAR}` and `${VAR:-default}` interpolation from the environment.

/// Result of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The string with every reference replaced.
    pub value: String,
    /// Whether any part came from the environment (such values are treated as secrets).
    pub from_env: bool,
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
    let mut from_env = false;
    let mut rest = input;
    let mut base = 0;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            base += i + 2;
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
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
        match (lookup(name), default) {
            (Some(v), _) => {
                out.push_str(&v);
                from_env = true;
            }
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(InterpError {
                    offset: base + i,
                    message: format!("environment variable `{name}` is not set"),
                    hint: format!("export {name}=..., or give a default with `${{{name}:-value}}`"),
                })
            }
        }
        let consumed = i + 2 + end + 1;
        base += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    Ok(Interpolated {
        value: out,
        from_env,
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
}
