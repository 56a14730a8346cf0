//! The core of `[auth]`: a token held for a scope (the run, or a VU), fetched once,
//! shared by the requests that need it, fetched again ahead of a JWT's `exp` (the old
//! one still used meanwhile) or after a 401, with one fetch in flight per scope (no
//! stampede) and none sooner than [`RETRY`] after one that failed.
//!
//! Pure of I/O: the caller gives the fetch (it sends the login and finds the token in
//! its answer, see `worker/auth.rs`) by starting it when [`TokenCell::get`] asks and
//! ending it with [`Fetching::finish`]. Shared between workers (a run's token): a lock
//! held for a few instructions, and a [`Notify`] that wakes the requests of every
//! worker that wait for the first token.
//!
//! Not here: sending the login, or reading the token out of its answer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::sync::Notify;

/// How long after a fetch that failed the next may begin: meanwhile the requests that
/// need a token get none (`auth_failed`), so a broken login is not hammered at the
/// load's rate.
pub const RETRY: Duration = Duration::from_secs(1);

/// A token as fetched: its value, the header value that carries it, when it should be
/// fetched again and when it can no longer be used.
#[derive(Clone)]
pub struct Token {
    /// The token itself (a secret: masked wherever an answer shows it).
    pub value: Arc<str>,
    /// What its header carries (`Bearer <token>`).
    pub header: Arc<str>,
    /// When to begin fetching a new one (the old one is used until it comes); `None`:
    /// only after a 401 (a token that is no JWT, or has no `exp`).
    pub refresh_at: Option<Instant>,
    /// When it expires (a JWT's `exp`): past it a request waits for the new one.
    pub expires_at: Option<Instant>,
    /// When it came: a 401 to it sooner than [`RETRY`] after is no reason to fetch
    /// another at once (see [`TokenCell::refused`]).
    pub fetched_at: Instant,
}

/// Shows no value: a token is a credential.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("refresh_at", &self.refresh_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The token `value` (carried as `header`) fetched at `now` (wall clock `wall`):
    /// refreshed `before` its JWT's `exp` when given, else when 10% of its lifetime
    /// (from `iat`, or from the fetch) is left; never by time when it is no JWT with
    /// an `exp`; never sooner than half its time left. A token that looks expired on arrival (the target's clock behind
    /// loadgate's) is given its lifetime from `iat` when it has one, else used until a
    /// 401: never fetched again at once, which would make every request a login.
    pub fn new(
        value: &str,
        header: &str,
        now: Instant,
        wall: SystemTime,
        before: Option<Duration>,
    ) -> Token {
        let times = jwt_claims(value).and_then(|(exp, iat)| {
            let wall_s = wall.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            let by_wall = exp as f64 - wall_s;
            let life = iat.map(|iat| exp as f64 - iat as f64).filter(|l| *l > 0.0);
            let left = match life {
                Some(life) if by_wall > 0.0 => by_wall.min(life),
                Some(life) => life,
                None if by_wall > 0.0 => by_wall,
                None => return None,
            };
            // Never in the first half of what is left: a target that hands out the same
            // token again (cached) would otherwise be asked for it on every request.
            let margin = before
                .map_or(life.unwrap_or(left) * 0.1, |b| b.as_secs_f64())
                .min(left / 2.0);
            let at = |s: f64| now + Duration::from_secs_f64(s.clamp(0.0, 1e9));
            Some((at(left - margin), at(left)))
        });
        Token {
            value: value.into(),
            header: header.into(),
            refresh_at: times.map(|t| t.0),
            expires_at: times.map(|t| t.1),
            fetched_at: now,
        }
    }

    /// Whether a new one should be fetched for a request sent at `now`.
    pub fn stale(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }

    /// Whether it can no longer be sent at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
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

#[derive(Default)]
struct Inner {
    token: Option<Token>,
    /// A fetch is in flight.
    fetching: bool,
    /// The last fetch failed: no other begins before this.
    retry_at: Option<Instant>,
    /// Fetches begun.
    fetches: u64,
    /// The last fetch was dropped unfinished (its worker gave up on it: the run was
    /// stopped and its grace ran out).
    cancelled: bool,
}

/// The token of one scope, shared by its requests (across workers for a run's). Cheap
/// to clone: clones share the token.
#[derive(Clone, Default)]
pub struct TokenCell {
    inner: Arc<Mutex<Inner>>,
    done: Arc<Notify>,
}

impl std::fmt::Debug for TokenCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCell")
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

/// A fetch begun: whoever holds it must [`finish`](Fetching::finish) it; dropped
/// unfinished (its task cancelled), it counts as failed and as cancelled
/// ([`TokenCell::cancelled`]), so no request waits for it.
pub struct Fetching {
    cell: TokenCell,
    /// How many fetches the cell had begun with this one (1 for the first).
    pub number: u64,
    finished: bool,
}

impl std::fmt::Debug for Fetching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetching")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl Fetching {
    /// Ends the fetch with what it brought (`None`: no token) at `now`, waking every
    /// request waiting for it.
    pub fn finish(mut self, got: Option<Token>, now: Instant) {
        self.finished = true;
        self.cell.end(got, now, false);
    }
}

impl Drop for Fetching {
    fn drop(&mut self) {
        if !self.finished {
            self.cell.end(None, Instant::now(), true);
        }
    }
}

/// What a request finds in the cell.
enum Found {
    /// A token to send with, and whether to begin fetching the next meanwhile.
    Use(Token, Option<Fetching>),
    /// No token yet: one is being fetched (by this request: `Some`).
    Wait(Option<Fetching>),
    /// No token, and none fetched before the retry time.
    None,
}

impl TokenCell {
    /// An empty cell: the first request fetches.
    pub fn new() -> TokenCell {
        TokenCell::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while the lock was held left a plain value: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many fetches began: 1 for the first token, plus one per refresh (and per
    /// fetch after one that failed).
    pub fn fetches(&self) -> u64 {
        self.lock().fetches
    }

    fn look(&self, now: Instant) -> Found {
        let mut g = self.lock();
        let may_fetch = !g.fetching && g.retry_at.is_none_or(|r| now >= r);
        let begin = |g: &mut Inner| {
            g.fetching = true;
            g.fetches += 1;
            Fetching {
                cell: self.clone(),
                number: g.fetches,
                finished: false,
            }
        };
        match g.token.clone().filter(|t| !t.expired(now)) {
            Some(t) => {
                let fetch = (t.stale(now) && may_fetch).then(|| begin(&mut g));
                Found::Use(t, fetch)
            }
            None if g.fetching => Found::Wait(None),
            None if may_fetch => Found::Wait(Some(begin(&mut g))),
            None => Found::None,
        }
    }

    fn end(&self, got: Option<Token>, now: Instant, cancelled: bool) {
        {
            let mut g = self.lock();
            g.fetching = false;
            g.cancelled = cancelled;
            match got {
                Some(t) => {
                    g.token = Some(t);
                    g.retry_at = None;
                }
                // A token still usable is kept until it expires.
                None => g.retry_at = Some(now + RETRY),
            }
        }
        self.done.notify_waiters();
    }

    /// The token for a request sent now: the one held while it has not expired
    /// (beginning the next fetch once it is stale), else the one a fetch in flight
    /// brings, else a new fetch's. `start` is given the fetch to run when one must
    /// begin (the caller spawns it: no request's own time is spent on it). `None`:
    /// the fetch failed, or one failed less than [`RETRY`] ago.
    pub async fn get(&self, start: impl FnOnce(Fetching)) -> Option<Token> {
        let mut start = Some(start);
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            // Registered before looking, so no wake-up between the two is lost.
            notified.as_mut().enable();
            match self.look(Instant::now()) {
                Found::Use(t, fetch) => {
                    if let (Some(f), Some(s)) = (fetch, start.take()) {
                        s(f);
                    }
                    return Some(t);
                }
                Found::None => return None,
                Found::Wait(fetch) => {
                    if let Some(f) = fetch {
                        match start.take() {
                            Some(s) => s(f),
                            // Asked to begin a second fetch in one call: it cannot
                            // (the first ended meanwhile, and failed).
                            None => return None,
                        }
                    }
                    notified.await;
                    let g = self.lock();
                    match g.token.clone().filter(|t| !t.expired(Instant::now())) {
                        Some(t) => return Some(t),
                        None if g.fetching => continue,
                        None => return None,
                    }
                }
            }
        }
    }

    /// The token held now, if any, usable or not (to mask it wherever an answer shows
    /// it, also one to a request that did not carry it).
    pub fn held(&self) -> Option<Token> {
        self.lock().token.clone()
    }

    /// The token at once when it is held and usable (beginning the next fetch, given
    /// to `start`, once it is stale); `None` when a request would have to wait.
    pub fn ready(&self, start: impl FnOnce(Fetching)) -> Option<Token> {
        match self.look(Instant::now()) {
            Found::Use(t, fetch) => {
                if let Some(f) = fetch {
                    start(f);
                }
                Some(t)
            }
            // Began nothing that was not asked for: dropping `fetch` would end it.
            Found::Wait(Some(f)) => {
                start(f);
                None
            }
            Found::Wait(None) | Found::None => None,
        }
    }

    /// Whether the last fetch was given up on unfinished (the run abandoned it), not
    /// failed: the requests that waited for it were abandoned with it, never sent, and
    /// no failure of the target's.
    pub fn cancelled(&self) -> bool {
        self.lock().cancelled
    }

    /// A measured request sent with `used` was answered 401 at `now`: the token is
    /// dropped (if it is still the one held), so the next request waits for a new one.
    /// One that came less than [`RETRY`] ago is kept until then and fetched again at
    /// that time (used meanwhile, its 401s counted as the target's): a target that
    /// refuses every token would otherwise make a login of every other request. The 401
    /// stays counted as what it was: nothing is sent again.
    pub fn refused(&self, used: &Token, now: Instant) {
        let mut g = self.lock();
        let Some(held) = g
            .token
            .as_mut()
            .filter(|t| Arc::ptr_eq(&t.value, &used.value))
        else {
            return;
        };
        let again = held.fetched_at + RETRY;
        if now < again {
            held.refresh_at = Some(held.refresh_at.map_or(again, |at| at.min(again)));
        } else {
            g.token = None;
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

    fn token(value: &str, refresh_at: Option<Instant>, expires_at: Option<Instant>) -> Token {
        Token {
            value: value.into(),
            header: format!("Bearer {value}").into(),
            refresh_at,
            expires_at,
            fetched_at: Instant::now()
                .checked_sub(RETRY)
                .unwrap_or_else(Instant::now),
        }
    }

    #[test]
    fn a_jwt_is_refreshed_before_its_exp_and_another_token_only_on_a_401() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        // 100 s to live, issued now: 10% of it (10 s) before exp by default.
        let t = Token::new(&jwt(r#"{"exp":1100,"iat":1000}"#), "", now, wall, None);
        assert_eq!(t.refresh_at, Some(now + Duration::from_secs(90)));
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(100)));
        let before = Some(Duration::from_secs(30));
        let t = Token::new(&jwt(r#"{"exp":1100}"#), "", now, wall, before);
        assert_eq!(t.refresh_at, Some(now + Duration::from_secs(70)));
        assert!(!t.stale(now + Duration::from_secs(69)));
        assert!(t.stale(now + Duration::from_secs(70)));
        assert!(!t.expired(now + Duration::from_secs(99)));
        assert!(t.expired(now + Duration::from_secs(100)));
        // Expired by loadgate's clock on arrival (the target's behind): its lifetime
        // from `iat`, or used until a 401, never fetched again at once.
        let t = Token::new(&jwt(r#"{"exp":900,"iat":840}"#), "", now, wall, None);
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(60)));
        assert!(!t.stale(now));
        let t = Token::new(&jwt(r#"{"exp":900}"#), "", now, wall, None);
        assert_eq!((t.refresh_at, t.expires_at), (None, None));
        // Issued earlier than now (a cached token): what is left by the clock.
        let t = Token::new(&jwt(r#"{"exp":1030,"iat":900}"#), "", now, wall, None);
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(30)));
        for opaque in [
            "abc",
            "a.b.c",
            &jwt(r#"{"sub":"x"}"#),
            &jwt(r#"{"exp":"soon"}"#),
        ] {
            let t = Token::new(opaque, "", now, wall, None);
            assert_eq!((t.refresh_at, t.expires_at), (None, None), "{opaque}");
        }
    }

    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn requests_of_one_scope_share_one_fetch_and_a_401_makes_the_next_fetch() {
        local(async {
            let cell = TokenCell::new();
            let (tx, rx) = tokio::sync::oneshot::channel::<Fetching>();
            let first = {
                let cell = cell.clone();
                tokio::task::spawn_local(async move {
                    cell.get(|f| tx.send(f).map_err(|_| ()).unwrap()).await
                })
            };
            tokio::task::yield_now().await;
            // Nine more requests while the fetch is in flight: none fetches.
            let waiters: Vec<_> = (0..9)
                .map(|_| {
                    let cell = cell.clone();
                    tokio::task::spawn_local(
                        async move { cell.get(|_| panic!("a second fetch")).await },
                    )
                })
                .collect();
            tokio::task::yield_now().await;
            assert!(cell.ready(|_| panic!("a second fetch")).is_none());
            let fetch = rx.await.unwrap();
            assert_eq!(fetch.number, 1);
            fetch.finish(Some(token("one", None, None)), Instant::now());
            let got = first.await.unwrap().unwrap();
            for w in waiters {
                assert_eq!(&*w.await.unwrap().unwrap().value, "one");
            }
            assert_eq!(cell.fetches(), 1);
            cell.refused(&got, Instant::now());
            let mut next = None;
            assert!(cell.ready(|f| next = Some(f)).is_none());
            next.unwrap()
                .finish(Some(token("two", None, None)), Instant::now());
            let again = cell.ready(|_| panic!("fresh")).unwrap();
            assert_eq!(&*again.value, "two");
            assert_eq!(cell.fetches(), 2);
            // A 401 for the old token does not drop the new one.
            cell.refused(&got, Instant::now());
            assert_eq!(&*cell.ready(|_| panic!("fresh")).unwrap().value, "two");
        });
    }

    /// Regression: a target that refused every token (a 401 storm) made a login of
    /// every other request, the login hammered at the load's rate.
    #[test]
    fn a_token_refused_within_retry_of_its_fetch_is_used_until_then_and_fetched_again_once() {
        let cell = TokenCell::new();
        let mut f = None;
        assert!(cell.ready(|x| f = Some(x)).is_none());
        let now = Instant::now();
        let young = Token::new("young", "Bearer young", now, SystemTime::now(), None);
        f.take().unwrap().finish(Some(young.clone()), now);
        for _ in 0..100 {
            cell.refused(&young, now);
            let held = cell.ready(|_| panic!("a login per 401")).unwrap();
            assert_eq!(&*held.value, "young");
            assert_eq!(held.refresh_at, Some(now + RETRY));
        }
        assert_eq!(cell.fetches(), 1);
        // Once RETRY has passed: one fetch, the refused token used meanwhile.
        let mut refresh = None;
        let held = cell.look(now + RETRY);
        assert!(matches!(held, Found::Use(_, Some(_))));
        if let Found::Use(t, fetch) = held {
            assert_eq!(&*t.value, "young");
            refresh = fetch;
        }
        refresh.unwrap().finish(None, now + RETRY);
        // A 401 to a token older than RETRY drops it at once.
        cell.refused(&young, now + RETRY);
        assert!(cell
            .ready(|_| panic!("within RETRY of the failure"))
            .is_none());
    }

    #[test]
    fn a_stale_token_is_used_while_the_next_is_fetched_and_a_failed_fetch_waits_before_another() {
        local(async {
            let cell = TokenCell::new();
            let now = Instant::now();
            let mut f = None;
            cell.ready(|x| f = Some(x));
            // Stale (past its refresh time) but not expired: used, and one refresh begins.
            let old = token("old", Some(now), Some(now + Duration::from_secs(3600)));
            f.take().unwrap().finish(Some(old), now);
            let mut refresh = None;
            assert_eq!(&*cell.ready(|x| refresh = Some(x)).unwrap().value, "old");
            assert!(refresh.is_some());
            assert_eq!(
                &*cell.ready(|_| panic!("one refresh")).unwrap().value,
                "old"
            );
            // The refresh fails: the old token is still used; no other fetch before RETRY.
            refresh.take().unwrap().finish(None, Instant::now());
            assert_eq!(&*cell.ready(|_| panic!("retry")).unwrap().value, "old");
            assert_eq!(cell.fetches(), 2);
            // A fetch whose task is dropped unfinished fails: nobody waits for it.
            let cell = TokenCell::new();
            let mut f = None;
            cell.ready(|x| f = Some(x));
            let waiter = {
                let cell = cell.clone();
                tokio::task::spawn_local(async move { cell.get(|_| panic!("retry")).await })
            };
            tokio::task::yield_now().await;
            drop(f);
            assert!(waiter.await.unwrap().is_none());
            assert!(cell.cancelled());
            // Within RETRY of the failure: no token, no fetch.
            assert!(cell.get(|_| panic!("retry")).await.is_none());
        });
    }

    #[test]
    fn workers_on_other_threads_wait_for_one_fetch() {
        let cell = TokenCell::new();
        let mut f = None;
        assert!(cell.ready(|x| f = Some(x)).is_none());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cell = cell.clone();
                std::thread::spawn(move || {
                    local(async move { cell.get(|_| panic!("second")).await })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        f.unwrap()
            .finish(Some(token("shared", None, None)), Instant::now());
        for t in threads {
            assert_eq!(&*t.join().unwrap().unwrap().value, "shared");
        }
        assert_eq!(cell.fetches(), 1);
    }
}
