//! Target profiles: routes and their behaviour, from TOML.

use std::path::Path;
use std::time::Duration;

use loadgate_scenario::line_col;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Deserialize;

/// The built-in profile text.
pub(crate) const DEMO_PROFILE: &str = include_str!("../profiles/demo.toml");

/// What the target does.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Routes, matched by method and path (query ignored).
    pub routes: Vec<Route>,
    /// Periodic freeze of every response.
    pub stall: Option<Stall>,
}

/// Freeze all responses for `freeze` at the start of every `every` period.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// Period.
    pub every: Duration,
    /// Length of the freeze at the start of each period.
    pub freeze: Duration,
    /// `mode = "world"`: the whole server stops, as a stop-the-world GC pause or a
    /// stopped process does: no response leaves and no connection is accepted (new ones
    /// wait in the kernel's listen queue, and past its length their SYNs are dropped).
    /// The default, `"responses"`, holds responses and keeps accepting.
    pub world: bool,
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: String,
    /// Path, without query.
    pub path: String,
    /// Response time before any stall.
    pub latency: Latency,
    /// Share of requests answered with `error_status`.
    pub error_rate: f64,
    /// Status for injected errors.
    pub error_status: u16,
    /// Requests per second above which 429 with `Retry-After` is returned (per 1 s window).
    pub rate_limit_rps: Option<u32>,
    /// A capacity model: the route serves one request at a time, each taking
    /// `1 / capacity_rps` seconds, first come first served. Below the rate, latency is
    /// one service time; above it, the queue (and latency) grows without bound.
    pub capacity_rps: Option<u32>,
    /// Request-body validation (400 when it fails).
    pub validate: Option<Validate>,
    /// Response body.
    pub response: String,
    /// A health route: JSON status, 503 while degraded.
    pub unhealthy_for: Option<Duration>,
    /// Periodic bursts of an error status.
    pub burst: Option<Burst>,
    /// The head (and the body's first byte) leave after `latency`; the rest of the body
    /// this much later: a slow body behind a quick first byte, as a streaming answer.
    pub body_after: Option<Duration>,
}

/// For `len` at the start of every `every`, the route answers `status` (with
/// `Retry-After: 1`), as an overloaded backend behind a load balancer does.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// Period.
    pub every: Duration,
    /// Length of each burst.
    pub len: Duration,
    /// Status during a burst.
    pub status: u16,
}

/// Body validation.
#[derive(Debug, Clone)]
pub struct Validate {
    /// A top-level JSON field that must be a string.
    pub json_string: String,
    /// Longest accepted string, in characters.
    pub max_len: Option<usize>,
}

/// A latency distribution.
#[derive(Debug, Clone, Copy)]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between two bounds.
    Uniform(Duration, Duration),
    /// Log-normal with the given median, and `p99` at the 99th percentile.
    LogNormal {
        /// Median.
        median: Duration,
        /// 99th percentile.
        p99: Duration,
    },
}

impl Latency {
    /// Draws one latency.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(a, b) => {
                if b <= a {
                    a
                } else {
                    rng.gen_range(a..=b)
                }
            }
            Latency::LogNormal { median, p99 } => {
                let m = median.as_secs_f64().max(1e-6);
                // z(0.99) = 2.3263: p99 = median * exp(2.3263 * sigma)
                let sigma = ((p99.as_secs_f64().max(m) / m).ln() / 2.326_348).max(1e-9);
                let d = LogNormal::new(m.ln(), sigma).expect("sigma is positive");
                Duration::from_secs_f64(d.sample(rng).min(3600.0))
            }
        }
    }
}

/// A profile file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Unreadable.
    #[error("cannot read target profile {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Several problems, each with its position.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ProfileError>),
    /// Invalid, with position.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// File.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

mod raw {
    use serde::Deserialize;
    use serde_spanned::Spanned;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        #[serde(default)]
        pub route: Vec<Route>,
        pub stall: Option<Spanned<Stall>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Stall {
        pub every: Spanned<String>,
        pub freeze: Spanned<String>,
        pub mode: Option<Spanned<String>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Route {
        #[serde(default = "get")]
        pub method: String,
        pub path: String,
        pub latency: Option<Spanned<super::RawLatency>>,
        pub error_rate: Option<Spanned<f64>>,
        pub error_status: Option<u16>,
        pub rate_limit_rps: Option<u32>,
        pub capacity_rps: Option<Spanned<u32>>,
        pub validate: Option<Validate>,
        pub response: Option<String>,
        pub health: Option<Health>,
        pub burst: Option<Spanned<Burst>>,
        pub body_after: Option<Spanned<String>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Burst {
        pub every: Spanned<String>,
        #[serde(rename = "for")]
        pub len: Spanned<String>,
        pub status: Option<u16>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Validate {
        pub json_string: String,
        pub max_len: Option<usize>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Health {
        pub unhealthy_for: Spanned<String>,
    }
    fn get() -> String {
        "GET".into()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[doc(hidden)]
pub(crate) struct RawLatency {
    dist: String,
    value: Option<String>,
    min: Option<String>,
    max: Option<String>,
    median: Option<String>,
    p99: Option<String>,
}

impl Profile {
    /// The built-in demo profile.
    pub fn demo() -> Profile {
        Profile::parse("demo.toml", DEMO_PROFILE).expect("the built-in profile is valid")
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// Parses profile `text` (`file` is used in messages).
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        let invalid = |at: usize, message: String| {
            let (line, column) = line_col(text, at);
            ProfileError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: raw::File = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            )
        })?;
        let dur = |s: &serde_spanned::Spanned<String>| {
            humantime::parse_duration(s.get_ref()).map_err(|e| {
                invalid(
                    s.span().start,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"50ms\"",
                        s.get_ref()
                    ),
                )
            })
        };
        let mut errors = Vec::new();
        let stall = (|| -> Result<Option<Stall>, ProfileError> {
            Ok(match &raw.stall {
                None => None,
                Some(s) => {
                    let world = match s.get_ref().mode.as_ref() {
                        None => false,
                        Some(m) if m.get_ref() == "responses" => false,
                        Some(m) if m.get_ref() == "world" => true,
                        Some(m) => {
                            return Err(invalid(
                                m.span().start,
                                format!(
                                    "unknown stall mode `{}`; write \"responses\" (hold responses, keep accepting) or \"world\" (stop everything)",
                                    m.get_ref()
                                ),
                            ))
                        }
                    };
                    let st = Stall {
                        every: dur(&s.get_ref().every)?,
                        freeze: dur(&s.get_ref().freeze)?,
                        world,
                    };
                    if st.every.is_zero() || st.freeze >= st.every {
                        return Err(invalid(
                            s.span().start,
                            "stall needs 0 < freeze < every".into(),
                        ));
                    }
                    Some(st)
                }
            })
        })()
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let mut routes = Vec::new();
        for r in raw.route {
            // Each route is checked on its own, so every broken route is reported.
            let parsed = (|| -> Result<Route, ProfileError> {
                let latency = match &r.latency {
                    None => Latency::Fixed(Duration::ZERO),
                    Some(l) => {
                        let at = l.span().start;
                        let l = l.get_ref();
                        let need = |v: &Option<String>,
                                    name: &str|
                         -> Result<Duration, ProfileError> {
                            let v = v.as_ref().ok_or_else(|| {
                                invalid(at, format!("latency dist `{}` needs `{name}`", l.dist))
                            })?;
                            humantime::parse_duration(v).map_err(|e| {
                                invalid(at, format!("latency {name} `{v}` is not a duration ({e})"))
                            })
                        };
                        match l.dist.as_str() {
                            "fixed" => Latency::Fixed(need(&l.value, "value")?),
                            "uniform" => {
                                Latency::Uniform(need(&l.min, "min")?, need(&l.max, "max")?)
                            }
                            "lognormal" => Latency::LogNormal {
                                median: need(&l.median, "median")?,
                                p99: need(&l.p99, "p99")?,
                            },
                            other => {
                                return Err(invalid(
                                    at,
                                    format!(
                                "unknown latency dist `{other}`; use fixed, uniform or lognormal"
                            ),
                                ))
                            }
                        }
                    }
                };
                let error_rate = r.error_rate.as_ref().map_or(0.0, |e| *e.get_ref());
                if let Some(e) = r
                    .error_rate
                    .as_ref()
                    .filter(|e| !(0.0..=1.0).contains(e.get_ref()))
                {
                    return Err(invalid(
                        e.span().start,
                        format!("error_rate {} must be between 0 and 1", e.get_ref()),
                    ));
                }
                let unhealthy_for = r
                    .health
                    .as_ref()
                    .map(|h| dur(&h.unhealthy_for))
                    .transpose()?;
                let burst = match &r.burst {
                    None => None,
                    Some(b) => {
                        let (every, len) = (dur(&b.get_ref().every)?, dur(&b.get_ref().len)?);
                        if every.is_zero() || len > every {
                            return Err(invalid(
                                b.span().start,
                                "burst needs 0 < for <= every".into(),
                            ));
                        }
                        Some(Burst {
                            every,
                            len,
                            status: b.get_ref().status.unwrap_or(503),
                        })
                    }
                };
                let capacity_rps = match r.capacity_rps {
                    Some(c) if *c.get_ref() == 0 => {
                        return Err(invalid(
                            c.span().start,
                            "capacity_rps must be at least 1".into(),
                        ));
                    }
                    c => c.map(|c| *c.get_ref()),
                };
                Ok(Route {
                    capacity_rps,
                    method: r.method.to_ascii_uppercase(),
                    path: r.path,
                    latency,
                    error_rate,
                    error_status: r.error_status.unwrap_or(500),
                    rate_limit_rps: r.rate_limit_rps,
                    validate: r.validate.map(|v| Validate {
                        json_string: v.json_string,
                        max_len: v.max_len,
                    }),
                    response: r.response.unwrap_or_else(|| "{\"status\":\"ok\"}".into()),
                    unhealthy_for,
                    burst,
                    body_after: r.body_after.as_ref().map(dur).transpose()?,
                })
            })();
            match parsed {
                Ok(route) => routes.push(route),
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        if !errors.is_empty() {
            return Err(ProfileError::Many(errors));
        }
        Ok(Profile { routes, stall })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn demo_profile_parses() {
        let p = Profile::demo();
        assert!(p.routes.iter().any(|r| r.path == "/api/agent/query"));
    }

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let l = Latency::LogNormal {
            median: Duration::from_millis(100),
            p99: Duration::from_millis(900),
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut v: Vec<f64> = (0..100_000)
            .map(|_| l.sample(&mut rng).as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        assert!((v[50_000] - 0.1).abs() < 0.005, "{}", v[50_000]);
        assert!((v[99_000] - 0.9).abs() < 0.06, "{}", v[99_000]);
    }

    #[test]
    fn bad_profiles_say_where() {
        let e = Profile::parse(
            "p.toml",
            "[[route]]\npath = \"/\"\nlatency = { dist = \"gamma\" }\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.toml:3:11: unknown latency dist"),
            "{e}"
        );
        let e = Profile::parse("p.toml", "[[route]]\npath = \"/a\"\nlatency = { dist = \"fixed\" }\n[[route]]\npath = \"/b\"\nburst = { every = \"1s\", for = \"2s\" }\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("p.toml:3:11: latency dist `fixed` needs `value`")
                && text.contains("p.toml:6:9: burst needs"),
            "every broken route is reported: {text}"
        );
        let e = Profile::parse("p.toml", "[stall]\nevery = \"1s\"\nfreez = \"1s\"\n").unwrap_err();
        assert!(
            e.to_string().contains("p.toml:3:1: unknown field `freez`"),
            "{e}"
        );
    }
}
