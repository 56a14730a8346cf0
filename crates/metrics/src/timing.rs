//! The timing axis: every duration a request yields is a value of one [`Timing`], kept
//! in a histogram per timing ([`Timings`]). Code that summarises, serializes, judges or
//! draws timings iterates [`Timing::ALL`] instead of naming each one, so a new timing
//! (time to first token, gaps between tokens) is a variant here and a value recorded
//! on the request path, not a field in a dozen structs.

use std::ops::{Index, IndexMut};

/// A kind of duration measured per request (or per connection, or per send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timing {
    /// From the intended send (open model; coordinated-omission corrected) or the send
    /// (closed model) to the end of the response. Successful requests.
    Latency,
    /// From the moment the generator started the request to the end of the response:
    /// latency without the generator's own send lag. Successful requests.
    Service,
    /// From the intended send (open model) or the send (closed) to the first byte of the
    /// response. Successful requests.
    Ttfb,
    /// Time to first byte from the moment the generator started the request.
    /// Successful requests.
    TtfbService,
    /// Streams: from the intended send (open model) or the send (closed) to the first
    /// event that carries content (a token). Successful streams.
    Ttft,
    /// Time to first token from the moment the generator started the request.
    /// Successful streams.
    TtftService,
    /// Streams: each gap between two content events of a stream (one value per gap,
    /// recorded as it ends, so a stream that later fails keeps the gaps it had; a gap
    /// that ran into the idle timeout, or the whole timeout, is recorded as at least as
    /// long as it had lasted). Every gap.
    Itl,
    /// Streams: time per output token after the first, `(end - first token) / (tokens -
    /// 1)`, one value per successful stream of at least two tokens (vLLM's TPOT; its
    /// inverse is the stream's tokens per second, which `tokens_per_s_p50 > 20` budgets).
    /// The send lag is not in it, so it has no service twin.
    Tpot,
    /// Open model: how long after its intended time each request was started (the
    /// generator's own delay, including a wait for a pooled connection). Every send.
    SendLag,
    /// How long opening a new connection took (TCP connect, and the TLS handshake).
    /// Every new connection; a request that reused one records nothing.
    Connect,
}

impl Timing {
    /// How many timings there are.
    pub const COUNT: usize = 10;

    /// Every timing, in the order reports list them.
    pub const ALL: [Timing; Timing::COUNT] = [
        Timing::Latency,
        Timing::Service,
        Timing::Ttfb,
        Timing::TtfbService,
        Timing::Ttft,
        Timing::TtftService,
        Timing::Itl,
        Timing::Tpot,
        Timing::SendLag,
        Timing::Connect,
    ];

    /// The name budgets, interval-log tags and reports use: `latency`, `service`,
    /// `ttfb`, `ttfb_service`, `ttft`, `ttft_service`, `itl`, `tpot`, `send_lag`,
    /// `connect`.
    pub fn name(self) -> &'static str {
        match self {
            Timing::Latency => "latency",
            Timing::Service => "service",
            Timing::Ttfb => "ttfb",
            Timing::TtfbService => "ttfb_service",
            Timing::Ttft => "ttft",
            Timing::TtftService => "ttft_service",
            Timing::Itl => "itl",
            Timing::Tpot => "tpot",
            Timing::SendLag => "send_lag",
            Timing::Connect => "connect",
        }
    }

    /// The timing named `name` (see [`Timing::name`]).
    pub fn from_name(name: &str) -> Option<Timing> {
        Timing::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The key of its figures in `summary.json` and `histograms.json`: `latency_us`,
    /// `ttfb_us`, ...
    pub fn key(self) -> &'static str {
        match self {
            Timing::Latency => "latency_us",
            Timing::Service => "service_us",
            Timing::Ttfb => "ttfb_us",
            Timing::TtfbService => "ttfb_service_us",
            Timing::Ttft => "ttft_us",
            Timing::TtftService => "ttft_service_us",
            Timing::Itl => "itl_us",
            Timing::Tpot => "tpot_us",
            Timing::SendLag => "send_lag_us",
            Timing::Connect => "connect_us",
        }
    }

    /// A short label for tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Timing::Latency => "latency",
            Timing::Service => "service time",
            Timing::Ttfb => "first byte",
            Timing::TtfbService => "first byte (service)",
            Timing::Ttft => "first token",
            Timing::TtftService => "first token (service)",
            Timing::Itl => "token gaps",
            Timing::Tpot => "time per token",
            Timing::SendLag => "send lag",
            Timing::Connect => "new connections",
        }
    }

    /// Whether it holds successful requests only, so that a budget on it ranks the
    /// failed requests above any threshold (as latency budgets do). The others hold
    /// every send or every new connection, and a budget on them ranks what they hold.
    pub fn of_successes(self) -> bool {
        matches!(
            self,
            Timing::Latency
                | Timing::Service
                | Timing::Ttfb
                | Timing::TtfbService
                | Timing::Ttft
                | Timing::TtftService
                | Timing::Tpot
        )
    }

    /// The same phase measured from the generator's actual send, for a timing measured
    /// from the intended send: a budget that fails on this timing but holds on its
    /// twin could have been broken by the generator's own delay.
    pub fn service_twin(self) -> Option<Timing> {
        match self {
            Timing::Latency => Some(Timing::Service),
            Timing::Ttfb => Some(Timing::TtfbService),
            Timing::Ttft => Some(Timing::TtftService),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An endpoint's tag in an interval log (`intervals.hlog`): its name with spaces and
/// commas as `_`, as the log's tags hold neither, and dots as `_`, because a timing
/// other than latency is filed under `<tag>.<timing>` (an endpoint `a.ttfb` must not
/// read as endpoint `a`'s time to first byte).
pub fn log_tag(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == ',' || c == '.' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// One `T` per [`Timing`], indexed by timing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timings<T>([T; Timing::COUNT]);

impl<T> Timings<T> {
    /// A value per timing, made by `f`.
    pub fn from_fn(mut f: impl FnMut(Timing) -> T) -> Timings<T> {
        Timings(Timing::ALL.map(&mut f))
    }

    /// Each timing with its value, in [`Timing::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Timing, &T)> {
        Timing::ALL.into_iter().zip(self.0.iter())
    }

    /// Each timing with its value, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Timing, &mut T)> {
        Timing::ALL.into_iter().zip(self.0.iter_mut())
    }

    /// Each value, in [`Timing::ALL`] order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    /// A value per timing made from this one's.
    pub fn map<U>(&self, mut f: impl FnMut(Timing, &T) -> U) -> Timings<U> {
        Timings::from_fn(|t| f(t, &self[t]))
    }
}

impl<T> Index<Timing> for Timings<T> {
    type Output = T;
    fn index(&self, t: Timing) -> &T {
        &self.0[t.index()]
    }
}

impl<T> IndexMut<Timing> for Timings<T> {
    fn index_mut(&mut self, t: Timing) -> &mut T {
        &mut self.0[t.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keys_and_order_agree() {
        for (i, t) in Timing::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i, "ALL is in declaration order");
            assert_eq!(Timing::from_name(t.name()), Some(t));
            assert_eq!(t.key(), format!("{}_us", t.name()));
        }
        assert_eq!(Timing::from_name("p95"), None);
        // A dotted name cannot pose as another endpoint's timing.
        assert_eq!(log_tag("a.ttfb"), "a_ttfb");
        assert_eq!(log_tag("get user, v2"), "get_user__v2");
        for t in Timing::ALL {
            if let Some(twin) = t.service_twin() {
                assert!(t.of_successes() && twin.of_successes());
                assert_eq!(twin.service_twin(), None);
            }
        }
    }
}
