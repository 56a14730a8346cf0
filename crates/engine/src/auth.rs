//! The core of `[auth]` (issue 22): a token held for a scope (a VU, a flow iteration,
//! or a worker), fetched once, shared by the requests that need it, refreshed before a
//! JWT's `exp` or after a 401, with one fetch in flight per scope (no stampede).
//!
//! Pure of I/O and clock: the caller gives the instants and the fetch (a future that
//! sends the login request and finds the token in its answer). Not yet wired: the
//! scenario's `[auth]` table, the auth row and its accounting are to come; see the
//! README's sessions section.
//!
//! Not here: sending the login, or reading the token out of its answer.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::sync::Notify;

/// A token as fetched: its value, and when it should be fetched again (`None`: only
/// after a 401, a token that is no JWT or has no `exp`).
#[derive(Clone)]
pub struct Token {
    /// The value the header carries (after its scheme).
    pub value: Rc<str>,
    /// When to fetch a new one before using it again.
    pub refresh_at: Option<Instant>,
}

/// Shows no value: a token is a credential.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The token `value` fetched at `now` (wall clock `wall`): refreshed `before` its
    /// JWT's `exp` when given, else when 10% of its lifetime (from `iat`, or from the
    /// fetch) is left; never by time when it is no JWT with an `exp`.
    pub fn new(value: &str, now: Instant, wall: SystemTime, before: Option<Duration>) -> Token {
        let claims = jwt_claims(value);
        let refresh_at = claims.and_then(|(exp, iat)| {
            let wall_s = wall.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            let left = (exp as f64 - wall_s).max(0.0);
            let life = iat.map_or(left, |iat| (exp as f64 - iat as f64).max(0.0));
            let margin = before.map_or(life * 0.1, |b| b.as_secs_f64());
            Some(now + Duration::from_secs_f64((left - margin).max(0.0)))
        });
        Token {
            value: value.into(),
            refresh_at,
        }
    }

    /// Whether it must be fetched again before a request sent at `now`.
    pub fn stale(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }
}

/// A JWT's `exp` and `iat` (seconds since the epoch), read without verifying; `None`
/// when the value is no JWT or has no numeric `exp`.
pub fn jwt_claims(token: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 8192 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let num = |k: &str| claims.get(k).and_then(|v| v.as_f64()).filter(|v| *v >= 0.0);
    Some((num("exp")? as u64, num("iat").map(|v| v as u64)))
}

enum State {
    Empty,
    Fetching(Rc<Notify>),
    Ready(Token),
    /// The last fetch failed: the next request fetches again.
    Failed,
}

/// The token of one scope, shared by its requests (one worker's single-threaded
/// runtime: `Rc`, no lock). Cheap to clone: clones share the token.
#[derive(Clone)]
pub struct TokenCell {
    state: Rc<RefCell<State>>,
    /// Fetches begun (the first and every refresh).
    fetches: Rc<std::cell::Cell<u64>>,
}

impl std::fmt::Debug for TokenCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCell")
            .field("fetches", &self.fetches.get())
            .finish_non_exhaustive()
    }
}

impl Default for TokenCell {
    fn default() -> Self {
        TokenCell {
            state: Rc::new(RefCell::new(State::Empty)),
            fetches: Rc::default(),
        }
    }
}

impl TokenCell {
    /// An empty cell: the first request fetches.
    pub fn new() -> TokenCell {
        TokenCell::default()
    }

    /// How many fetches began: 1 for the first token, plus one per refresh (and per
    /// retry after a failed fetch).
    pub fn fetches(&self) -> u64 {
        self.fetches.get()
    }

    /// The token for a request sent at `now`: the one held while it is fresh, else
    /// the one a fetch already in flight brings, else a new fetch (`fetch()`), which
    /// every request that comes meanwhile waits for. `None` when the fetch failed
    /// (the requests that waited for it get `None` too: none is sent without its
    /// token).
    pub async fn get<F, Fut>(&self, now: Instant, fetch: F) -> Option<Token>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Token>>,
    {
        loop {
            let waiting = {
                let state = self.state.borrow();
                match &*state {
                    State::Ready(t) if !t.stale(now) => return Some(t.clone()),
                    State::Fetching(n) => Some(n.clone()),
                    _ => None,
                }
            };
            match waiting {
                Some(notify) => {
                    let notified = notify.notified();
                    // Registered before looking again, so no wake-up is lost.
                    if matches!(&*self.state.borrow(), State::Fetching(_)) {
                        notified.await;
                    }
                    match &*self.state.borrow() {
                        State::Ready(t) => return Some(t.clone()),
                        State::Failed => return None,
                        _ => continue,
                    }
                }
                None => break,
            }
        }
        let notify = Rc::new(Notify::new());
        *self.state.borrow_mut() = State::Fetching(notify.clone());
        self.fetches.set(self.fetches.get() + 1);
        let got = fetch().await;
        *self.state.borrow_mut() = match &got {
            Some(t) => State::Ready(t.clone()),
            None => State::Failed,
        };
        notify.notify_waiters();
        got
    }

    /// A measured request sent with `used` was answered 401: the token is dropped (if
    /// it is still the one held), so the next request fetches a new one. The 401
    /// stays counted as what it was: nothing is sent again.
    pub fn refused(&self, used: &Token) {
        let mut state = self.state.borrow_mut();
        if matches!(&*state, State::Ready(t) if Rc::ptr_eq(&t.value, &used.value)) {
            *state = State::Empty;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"HS256"}"#), b(claims))
    }

    #[test]
    fn a_jwt_is_refreshed_before_its_exp_and_another_token_only_on_a_401() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        // 100 s to live, issued now: 10% of it (10 s) before exp by default.
        let t = Token::new(&jwt(r#"{"exp":1100,"iat":1000}"#), now, wall, None);
        assert_eq!(t.refresh_at, Some(now + Duration::from_secs(90)));
        let t = Token::new(
            &jwt(r#"{"exp":1100}"#),
            now,
            wall,
            Some(Duration::from_secs(30)),
        );
        assert_eq!(t.refresh_at, Some(now + Duration::from_secs(70)));
        assert!(!t.stale(now + Duration::from_secs(69)));
        assert!(t.stale(now + Duration::from_secs(70)));
        // Already expired: refreshed before its first use.
        let t = Token::new(&jwt(r#"{"exp":900}"#), now, wall, None);
        assert!(t.stale(now));
        for opaque in [
            "abc",
            "a.b.c",
            &jwt(r#"{"sub":"x"}"#),
            &jwt(r#"{"exp":"soon"}"#),
        ] {
            assert_eq!(
                Token::new(opaque, now, wall, None).refresh_at,
                None,
                "{opaque}"
            );
        }
    }

    #[test]
    fn requests_of_one_scope_share_one_fetch_and_a_401_makes_the_next_fetch() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let cell = TokenCell::new();
            let now = Instant::now();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let first = {
                let cell = cell.clone();
                tokio::task::spawn_local(async move {
                    cell.get(now, || async move {
                        rx.await.ok()?;
                        Some(Token {
                            value: "one".into(),
                            refresh_at: None,
                        })
                    })
                    .await
                })
            };
            tokio::task::yield_now().await;
            // Nine more requests while the fetch is in flight: none fetches.
            let waiters: Vec<_> = (0..9)
                .map(|_| {
                    let cell = cell.clone();
                    tokio::task::spawn_local(async move {
                        cell.get(now, || async { panic!("a second fetch") }).await
                    })
                })
                .collect();
            tokio::task::yield_now().await;
            tx.send(()).unwrap();
            let got = first.await.unwrap().unwrap();
            for w in waiters {
                assert_eq!(&*w.await.unwrap().unwrap().value, "one");
            }
            assert_eq!(cell.fetches(), 1);
            cell.refused(&got);
            let again = cell
                .get(now, || async {
                    Some(Token {
                        value: "two".into(),
                        refresh_at: None,
                    })
                })
                .await
                .unwrap();
            assert_eq!(&*again.value, "two");
            assert_eq!(cell.fetches(), 2);
            // A 401 for the old token does not drop the new one.
            cell.refused(&got);
            assert_eq!(cell.fetches(), 2);
            let same = cell.get(now, || async { None }).await.unwrap();
            assert_eq!(&*same.value, "two");
            // A failed fetch: those waiting get nothing, the next request fetches again.
            cell.refused(&same);
            assert!(cell.get(now, || async { None }).await.is_none());
            assert_eq!(cell.fetches(), 3);
        });
    }
}
