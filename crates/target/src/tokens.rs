//! Signed, stateless credentials of the built-in routes: JWTs (HS256), session cookie
//! values and job ids, all authenticated with one HMAC-SHA256 key drawn at random when a
//! target starts, so nothing is stored per token, session or job and none outlives the
//! target. Each kind signs its own domain (a JWT's signing input starts with its
//! header, `eyJ`; the others with `lg_session.` and `lg_job.`), so one cannot pass for
//! another. Not here: HTTP (`api.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::hmac;

/// A JWT's header: `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// None was sent.
    Missing,
    /// Not one of this target's, or not well-formed.
    Invalid,
    /// This target's, but past its `exp`.
    Expired,
}

impl Rejected {
    /// The word the error bodies use.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Invalid => "invalid",
            Rejected::Expired => "expired",
        }
    }
}

/// The target's signing key.
pub(crate) struct Keys {
    key: hmac::Key,
}

/// Seconds since the Unix epoch, fractional.
fn unix(now: SystemTime) -> Duration {
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `exp` for a credential issued at `now` for `ttl`: rounded up to a whole second, so it
/// is valid at least `ttl`.
fn expiry(now: SystemTime, ttl: Duration) -> u64 {
    let end = unix(now) + ttl;
    end.as_secs() + u64::from(end.subsec_nanos() > 0)
}

/// Whether `exp` (seconds) has passed at `now`: a credential is refused from `exp` on.
fn expired(exp: u64, now: SystemTime) -> bool {
    unix(now) >= Duration::from_secs(exp)
}

impl Keys {
    /// A fresh random key.
    pub(crate) fn new() -> std::io::Result<Keys> {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| std::io::Error::other("cannot draw a random signing key"))?;
        Ok(Keys { key })
    }

    /// A JWT for `sub`: header, payload `{"exp","iat","sub"}` and signature, each
    /// base64url without padding.
    pub(crate) fn token(&self, sub: &str, ttl: Duration, now: SystemTime) -> String {
        let payload = serde_json::json!({
            "sub": sub,
            "iat": unix(now).as_secs(),
            "exp": expiry(now, ttl),
        });
        let input = format!("{}.{}", B64.encode(HEADER), B64.encode(payload.to_string()));
        let tag = hmac::sign(&self.key, input.as_bytes());
        format!("{input}.{}", B64.encode(tag.as_ref()))
    }

    /// The `sub` of a JWT this target issued, unless it is forged, garbled or expired.
    pub(crate) fn check_token(&self, token: &str, now: SystemTime) -> Result<String, Rejected> {
        let (input, signature) = token.rsplit_once('.').ok_or(Rejected::Invalid)?;
        let (header, payload) = input.split_once('.').ok_or(Rejected::Invalid)?;
        let signature = B64.decode(signature).map_err(|_| Rejected::Invalid)?;
        hmac::verify(&self.key, input.as_bytes(), &signature).map_err(|_| Rejected::Invalid)?;
        // Signed by this key, so issued here; read it all the same, never trusting it blindly.
        if B64.decode(header).ok().as_deref() != Some(HEADER.as_bytes()) {
            return Err(Rejected::Invalid);
        }
        let claims: serde_json::Value = B64
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(Rejected::Invalid)?;
        let sub = claims["sub"].as_str().ok_or(Rejected::Invalid)?;
        let exp = claims["exp"].as_u64().ok_or(Rejected::Invalid)?;
        if expired(exp, now) {
            return Err(Rejected::Expired);
        }
        Ok(sub.to_string())
    }

    /// A session cookie's value for `user`: base64url(`{"exp","user"}`), a dot and the
    /// base64url HMAC of `lg_session.` and that.
    pub(crate) fn session(&self, user: &str, ttl: Duration, now: SystemTime) -> String {
        let payload = serde_json::json!({"user": user, "exp": expiry(now, ttl)});
        let payload = B64.encode(payload.to_string());
        let tag = hmac::sign(&self.key, format!("lg_session.{payload}").as_bytes());
        format!("{payload}.{}", B64.encode(tag.as_ref()))
    }

    /// The user of a session cookie's value this target issued, unless forged, garbled
    /// or expired.
    pub(crate) fn check_session(&self, value: &str, now: SystemTime) -> Result<String, Rejected> {
        let (payload, signature) = value.split_once('.').ok_or(Rejected::Invalid)?;
        let signature = B64.decode(signature).map_err(|_| Rejected::Invalid)?;
        hmac::verify(
            &self.key,
            format!("lg_session.{payload}").as_bytes(),
            &signature,
        )
        .map_err(|_| Rejected::Invalid)?;
        let claims: serde_json::Value = B64
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(Rejected::Invalid)?;
        let user = claims["user"].as_str().ok_or(Rejected::Invalid)?;
        let exp = claims["exp"].as_u64().ok_or(Rejected::Invalid)?;
        if expired(exp, now) {
            return Err(Rejected::Expired);
        }
        Ok(user.to_string())
    }

    /// A job's id: base64url of its creation (ms from the target's start), its time
    /// (ms) and a serial number, 8 bytes each, then the HMAC of `lg_job.` and those.
    pub(crate) fn job_id(&self, created_ms: u64, time_ms: u64, serial: u64) -> String {
        let mut bytes = Vec::with_capacity(24 + 32);
        bytes.extend_from_slice(&created_ms.to_be_bytes());
        bytes.extend_from_slice(&time_ms.to_be_bytes());
        bytes.extend_from_slice(&serial.to_be_bytes());
        let tag = hmac::sign(&self.key, &[b"lg_job.", &bytes[..]].concat());
        bytes.extend_from_slice(tag.as_ref());
        B64.encode(bytes)
    }

    /// A job id's creation and time (ms), unless it is not one this target issued.
    pub(crate) fn check_job(&self, id: &str) -> Option<(u64, u64)> {
        let bytes = B64.decode(id).ok().filter(|b| b.len() == 24 + 32)?;
        let (fields, tag) = bytes.split_at(24);
        hmac::verify(&self.key, &[b"lg_job.", fields].concat(), tag).ok()?;
        let word =
            |i: usize| u64::from_be_bytes(fields[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Some((word(0), word(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    }

    #[test]
    fn a_token_is_a_jwt_valid_until_its_exp() {
        let keys = Keys::new().unwrap();
        let t = keys.token("alice", Duration::from_secs(2), at(1000.5));
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(B64.decode(parts[0]).unwrap(), HEADER.as_bytes());
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"sub": "alice", "iat": 1000, "exp": 1003})
        );
        assert_eq!(keys.check_token(&t, at(1000.6)), Ok("alice".into()));
        assert_eq!(keys.check_token(&t, at(1002.99)), Ok("alice".into()));
        assert_eq!(keys.check_token(&t, at(1003.0)), Err(Rejected::Expired));
        // Another target's key, a changed payload, `alg: none`, garbage: invalid.
        let other = Keys::new().unwrap();
        assert_eq!(other.check_token(&t, at(1001.0)), Err(Rejected::Invalid));
        let forged_payload = B64.encode(r#"{"sub":"root","iat":1000,"exp":9999999999}"#);
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(
            keys.check_token(&forged, at(1001.0)),
            Err(Rejected::Invalid)
        );
        let none = format!(
            "{}.{forged_payload}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#)
        );
        assert_eq!(keys.check_token(&none, at(1001.0)), Err(Rejected::Invalid));
        for garbage in ["", ".", "..", "a.b.c", "a.b.c.d", "€.€.€"] {
            assert_eq!(
                keys.check_token(garbage, at(1001.0)),
                Err(Rejected::Invalid)
            );
        }
        // An expired forgery is invalid, not expired.
        assert_eq!(other.check_token(&t, at(5000.0)), Err(Rejected::Invalid));
    }

    #[test]
    fn sessions_and_jobs_are_signed_and_cannot_pass_for_each_other() {
        let keys = Keys::new().unwrap();
        let s = keys.session("bob", Duration::from_secs(10), at(100.0));
        assert_eq!(keys.check_session(&s, at(105.0)), Ok("bob".into()));
        assert_eq!(keys.check_session(&s, at(110.0)), Err(Rejected::Expired));
        assert_eq!(keys.check_token(&s, at(105.0)), Err(Rejected::Invalid));
        let t = keys.token("bob", Duration::from_secs(10), at(100.0));
        assert_eq!(keys.check_session(&t, at(105.0)), Err(Rejected::Invalid));

        let id = keys.job_id(1234, 2000, 7);
        assert_eq!(keys.check_job(&id), Some((1234, 2000)));
        assert_eq!(Keys::new().unwrap().check_job(&id), None);
        // A client that rewrites the creation time gets no job.
        let mut bytes = B64.decode(&id).unwrap();
        bytes[7] ^= 1;
        assert_eq!(keys.check_job(&B64.encode(bytes)), None);
        assert_eq!(keys.check_job("nope"), None);
    }
}
