//! Classification of what happened to one request.

use serde::{Deserialize, Serialize};

/// The class of one request's outcome. Every sent request lands in exactly one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An expected status and every check passed.
    Success,
    /// A 4xx status other than 429 that the endpoint did not expect.
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// 429 Too Many Requests (rate limited) that the endpoint did not expect.
    #[serde(rename = "http_429")]
    Http429,
    /// A 5xx status that the endpoint did not expect.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// No complete response within the request timeout.
    Timeout,
    /// Streams: no token (an endpoint that does not stream: no byte of the response
    /// body) within the endpoint's `first_byte_timeout`.
    FirstByteTimeout,
    /// Streams: a gap between two reads of the body longer than the endpoint's
    /// `idle_timeout` (the stream stalled).
    IdleTimeout,
    /// The connection could not be established (refused, unreachable, TLS handshake).
    ConnectError,
    /// The connection broke after it was established (reset, EOF mid-response).
    IoError,
    /// Streams: the body ended without the stream's terminator (e.g. `data: [DONE]`),
    /// or in the middle of an event.
    StreamTruncated,
    /// The peer spoke something that is not valid HTTP (also a redirect without a
    /// `Location`, or with one that is not an http or https URL).
    ProtocolError,
    /// Redirects past the endpoint's `redirects` limit (a loop, or a chain too long):
    /// no answer came.
    TooManyRedirects,
    /// A response arrived but a check failed (unexpected status class, body, JSON; a
    /// stream with an error event or without a token).
    CheckFailed,
    /// Flows: the response passed its checks but held no value where a step's
    /// `capture` looks (no such JSON path, header or match), so the flow cannot go on.
    CaptureFailed,
    /// Flows: a polling step's last attempt still did not meet its `until` (the answer
    /// was never ready).
    PollExhausted,
    /// `[auth]`: not sent, for want of a token: the target answered the token's fetch
    /// with no token (see the fetches' row), so a request that needs one cannot be made.
    AuthFailed,
}

impl Outcome {
    /// How many classes there are.
    pub const COUNT: usize = 16;

    /// Every class, in report order.
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Success,
        Outcome::Http4xx,
        Outcome::Http429,
        Outcome::Http5xx,
        Outcome::Timeout,
        Outcome::FirstByteTimeout,
        Outcome::IdleTimeout,
        Outcome::ConnectError,
        Outcome::IoError,
        Outcome::StreamTruncated,
        Outcome::ProtocolError,
        Outcome::TooManyRedirects,
        Outcome::CheckFailed,
        Outcome::CaptureFailed,
        Outcome::PollExhausted,
        Outcome::AuthFailed,
    ];

    /// The snake_case name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Http4xx => "http_4xx",
            Outcome::Http429 => "http_429",
            Outcome::Http5xx => "http_5xx",
            Outcome::Timeout => "timeout",
            Outcome::FirstByteTimeout => "first_byte_timeout",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::IoError => "io_error",
            Outcome::StreamTruncated => "stream_truncated",
            Outcome::ProtocolError => "protocol_error",
            Outcome::TooManyRedirects => "too_many_redirects",
            Outcome::CheckFailed => "check_failed",
            Outcome::CaptureFailed => "capture_failed",
            Outcome::PollExhausted => "poll_exhausted",
            Outcome::AuthFailed => "auth_failed",
        }
    }

    /// Whether a response was received and parsed (needed for `check_rate`).
    pub fn got_response(self) -> bool {
        matches!(
            self,
            Outcome::Success
                | Outcome::Http4xx
                | Outcome::Http429
                | Outcome::Http5xx
                | Outcome::CheckFailed
                | Outcome::CaptureFailed
                | Outcome::PollExhausted
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A counter per [`Outcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts([u64; Outcome::COUNT]);

impl OutcomeCounts {
    /// Adds one to `outcome`.
    #[inline]
    pub fn incr(&mut self, outcome: Outcome) {
        self.0[outcome.index()] += 1;
    }

    /// The count for `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()]
    }

    /// Sum over all classes.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Everything that is not [`Outcome::Success`].
    pub fn errors(&self) -> u64 {
        self.total() - self.get(Outcome::Success)
    }

    /// Requests for which a parsed HTTP response arrived.
    pub fn responses(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.got_response())
            .map(|&o| self.get(o))
            .sum()
    }

    /// Adds every counter of `other`.
    pub fn add(&mut self, other: &OutcomeCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Removes the counts of `other`, which must have been added before.
    pub fn subtract(&mut self, other: &OutcomeCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_sub(*b);
        }
    }

    /// (class, count) pairs in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL.iter().map(move |&o| (o, self.get(o)))
    }
}

impl Serialize for OutcomeCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(Outcome::COUNT))?;
        for (o, n) in self.iter() {
            m.serialize_entry(o.name(), &n)?;
        }
        m.end()
    }
}

impl schemars::JsonSchema for OutcomeCounts {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OutcomeCounts".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
        let properties: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    serde_json::json!({ "type": "integer", "minimum": 0 }),
                )
            })
            .collect();
        schemars::json_schema!({
            "description": "Requests per outcome class.",
            "type": "object",
            "properties": properties,
            "required": names,
            "additionalProperties": false
        })
    }
}

impl schemars::JsonSchema for Outcome {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Outcome".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
        schemars::json_schema!({
            "description": "An outcome class.",
            "type": "string",
            "enum": names
        })
    }
}

impl<'de> Deserialize<'de> for OutcomeCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<Outcome, u64>::deserialize(d)?;
        let mut c = OutcomeCounts::default();
        for (o, n) in map {
            c.0[o.index()] = n;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_json() {
        let mut c = OutcomeCounts::default();
        c.incr(Outcome::Http429);
        c.incr(Outcome::Success);
        c.incr(Outcome::Success);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"http_429\":1"), "{json}");
        let back: OutcomeCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.errors(), 1);
        assert_eq!(back.responses(), 3);
    }
}
