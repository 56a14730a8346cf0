//! Sessions: what a user keeps between its requests. A [`Jar`] holds the cookies a
//! target set (RFC 6265, through `cookie_store`: domain, path, `Secure`, expiry) and
//! gives each request the `Cookie` header that matches its URL.
//!
//! Who holds a jar: a flow iteration in the open model (each arrival is a new user), a
//! VU in the closed model (across its iterations, as k6 and Gatling do); a standalone
//! endpoint in the open model holds none. The worker decides; this module only keeps
//! cookies.
//!
//! Bounded: a jar keeps at most [`MAX_COOKIES`] cookies of at most
//! [`MAX_COOKIE_BYTES`] each (RFC 6265 section 6.1's minimums); more are dropped and
//! counted. No public-suffix list is read (loadgate talks to the scenario's own
//! origins, not the open web), so a target may set a cookie for a parent domain.
//!
//! Not here: sending, or deciding which requests get a jar.

use cookie_store::{Cookie, CookieStore};
use http::HeaderMap;
use loadgate_scenario::Secrets;
use url::Url;

use crate::client::Origin;

/// The most cookies one jar holds.
pub const MAX_COOKIES: usize = 50;
/// The longest `Set-Cookie` value (name, value and attributes) a jar keeps.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// One user's cookies. Shows only its size: its values are credentials.
#[derive(Default)]
pub struct Jar {
    store: CookieStore,
    /// Cookies refused for the jar's bounds.
    dropped: u64,
}

impl std::fmt::Debug for Jar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jar")
            .field("cookies", &self.store.iter_any().count())
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl Jar {
    /// An empty jar.
    pub fn new() -> Jar {
        Jar::default()
    }

    /// The `Cookie` header value for a request to `path` (origin form) on `origin`:
    /// every unexpired cookie that matches, `name=value` joined by `; `; `None` when
    /// none does.
    pub fn header_for(&self, origin: &Origin, path: &[u8]) -> Option<String> {
        // A jar a target never set a cookie in costs no URL per request.
        if self.is_empty() {
            return None;
        }
        let url = url_of(origin, path)?;
        let mut out = String::new();
        for (name, value) in self.store.get_request_values(&url) {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        (!out.is_empty()).then_some(out)
    }

    /// Stores the `Set-Cookie`s of a response to `path` on `origin`. A cookie that does
    /// not parse or does not match the URL is ignored (as a browser does); one past the
    /// jar's bounds is dropped and counted.
    pub fn store(&mut self, origin: &Origin, path: &[u8], headers: &HeaderMap) {
        let mut set = headers.get_all(http::header::SET_COOKIE).iter().peekable();
        if set.peek().is_none() {
            return;
        }
        let Some(url) = url_of(origin, path) else {
            return;
        };
        for value in set {
            if value.len() > MAX_COOKIE_BYTES {
                self.dropped += 1;
                continue;
            }
            let Ok(text) = value.to_str() else { continue };
            let Ok(cookie) = Cookie::parse(text, &url) else {
                continue;
            };
            let cookie = cookie.into_owned();
            let (domain, path, name) = (
                String::from(&cookie.domain),
                String::from(&cookie.path),
                cookie.name().to_string(),
            );
            let known = self.store.contains_any(&domain, &path, &name);
            if !known && self.store.iter_any().count() >= MAX_COOKIES {
                self.forget_expired();
                if self.store.iter_any().count() >= MAX_COOKIES {
                    self.dropped += 1;
                    continue;
                }
            }
            let _ = self.store.insert(cookie, &url);
        }
    }

    /// Every cookie value the jar holds, for a failure's explanation to mask.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.store.iter_any().map(|c| c.value())
    }

    /// How many cookies were dropped for the jar's bounds.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many cookies it holds, expired ones not yet forgotten included.
    pub fn len(&self) -> usize {
        self.store.iter_any().count()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn forget_expired(&mut self) {
        let live: Vec<Cookie<'static>> = self.store.iter_unexpired().cloned().collect();
        self.store =
            CookieStore::from_cookies(live.into_iter().map(Ok::<_, ()>), false).unwrap_or_default();
    }
}

/// `secrets` with every value `jar` holds added (as `${cookie}`), for what a failure
/// shows of the target's answer: a cookie is a credential.
pub(crate) fn masked(secrets: &Secrets, jar: &Jar) -> Secrets {
    let mut all = secrets.clone();
    for value in jar.values() {
        all.add("cookie", value);
    }
    all
}

/// The URL of a request to `path` (origin form) on `origin`.
fn url_of(origin: &Origin, path: &[u8]) -> Option<Url> {
    let path = std::str::from_utf8(path).ok()?;
    Url::parse(&format!("{}://{}{path}", origin.scheme, origin.authority)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Origin {
        Origin::of(&url.parse().unwrap()).unwrap()
    }

    fn set(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::SET_COOKIE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn path_secure_and_host_are_respected() {
        // Not a loopback host: cookie_store sends Secure cookies to a loopback one
        // over plain HTTP (a trustworthy origin, as browsers do).
        let o = origin("http://shop.test:8080");
        let mut jar = Jar::new();
        jar.store(
            &o,
            b"/login",
            &set(&["a=1; Path=/", "b=2; Path=/api", "s=3; Secure"]),
        );
        assert_eq!(jar.header_for(&o, b"/").as_deref(), Some("a=1"));
        let api = jar.header_for(&o, b"/api/me").unwrap();
        assert!(api.contains("a=1") && api.contains("b=2") && !api.contains("s=3"));
        let tls = origin("https://shop.test:8080");
        assert!(jar.header_for(&tls, b"/").unwrap().contains("s=3"));
        let other = origin("http://other.test:8080");
        assert_eq!(jar.header_for(&other, b"/"), None);
    }

    #[test]
    fn expired_and_deleted_cookies_are_not_sent() {
        let o = origin("http://localhost:1");
        let mut jar = Jar::new();
        jar.store(&o, b"/", &set(&["a=1", "gone=x; Max-Age=0"]));
        assert_eq!(jar.header_for(&o, b"/").as_deref(), Some("a=1"));
        jar.store(
            &o,
            b"/",
            &set(&["a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]),
        );
        assert_eq!(jar.header_for(&o, b"/"), None);
    }

    #[test]
    fn a_jar_is_bounded_and_counts_what_it_drops() {
        let o = origin("http://localhost:1");
        let mut jar = Jar::new();
        let many: Vec<String> = (0..MAX_COOKIES + 7).map(|i| format!("c{i}=v")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        jar.store(&o, b"/", &set(&refs));
        let huge = format!("big={}", "x".repeat(MAX_COOKIE_BYTES));
        jar.store(&o, b"/", &set(&[&huge]));
        assert_eq!(jar.len(), MAX_COOKIES);
        assert_eq!(jar.dropped(), 8);
        // A cookie it holds can still be replaced.
        jar.store(&o, b"/", &set(&["c0=new"]));
        assert!(jar.header_for(&o, b"/").unwrap().contains("c0=new"));
        assert_eq!(jar.dropped(), 8);
    }
}
