//! Per-worker recording: one [`Shard`] per worker per interval, merged at boundaries.

use std::collections::BTreeMap;

use crate::failures::Failures;
use crate::{BySecond, LatencyHistogram, Outcome, OutcomeCounts, Timing, Timings};

/// One finished request, as the engine reports it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Index of the endpoint in the scenario.
    pub endpoint: usize,
    /// Latency in µs. In the open model this is measured from the *intended* send time
    /// (coordinated-omission corrected); in the closed model it equals `service_us`.
    pub latency_us: u64,
    /// Service time in µs, from the actual send to the end of the response.
    pub service_us: u64,
    /// What happened.
    pub outcome: Outcome,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Response body bytes received, as they came over the wire.
    pub bytes: u64,
    /// Response body bytes after undoing its `Content-Encoding`; `None` when the
    /// endpoint does not decode its responses (nothing reads their bodies).
    pub decoded_bytes: Option<u64>,
    /// The protocol the response came over; `None` when none arrived.
    pub protocol: Option<Protocol>,
    /// The request failed because loadgate itself ran out of a local resource (a file
    /// descriptor, a local port, socket memory) while opening its connection: a failure
    /// of the generator, not of the target (see [`EndpointShard::local_errors`]).
    pub local: bool,
    /// The request went to a second connection because the first closed before it was
    /// written (see [`EndpointShard::resent`]).
    pub resent: bool,
    /// How long opening a new connection for this request took (TCP, and TLS), µs;
    /// `None` when it reused one.
    pub connect_us: Option<u64>,
    /// When the first byte of the response arrived, in µs from the same start as
    /// `latency_us`; `None` when none did.
    pub ttfb_us: Option<u64>,
    /// It succeeded and met every per-request limit of its endpoint's `goodput` table
    /// (timed from the intended send, as latency): it counts toward goodput.
    pub good: bool,
    /// It succeeded and met those limits timed from its actual send: had the generator
    /// been on time, it would have been good (the twin that tells a generator's breach
    /// from the target's).
    pub good_service: bool,
    /// A streamed response (an endpoint with `stream`): what its reader counted; `None`
    /// for a response read whole. Its gaps were recorded as they ended
    /// ([`Shard::record_gap`]).
    pub stream: Option<StreamSample>,
    /// Redirects followed on the way to the answer.
    pub redirects: u8,
    /// Cookies its answers set that the session's jar dropped for its bounds (see
    /// [`EndpointShard::cookies_dropped`]).
    pub cookies_dropped: u32,
}

/// What one streamed response held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamSample {
    /// When the first content event (token) arrived, in µs from the same start as
    /// `latency_us`; `None` when none did.
    pub ttft_us: Option<u64>,
    /// Content events read.
    pub events: u64,
    /// Output tokens: as the server reported them (usage), else the content events.
    pub tokens: u64,
    /// Events over the reader's bound on one event (1 MiB), skipped unread: the
    /// target's big events, each counted as one content event.
    pub oversized: u64,
    /// Events loadgate skipped unread to keep the bytes its worker holds of unfinished
    /// events within its budget: loadgate's doing, not the target's.
    pub skipped: u64,
}

impl StreamSample {
    /// Time per output token after the first, µs: from the first token to the stream's
    /// end (`end_us`, on the same clock as `ttft_us`) over the tokens after the first;
    /// `None` for a stream of fewer than two tokens. At least 1 µs, so its inverse, the
    /// stream's tokens per second, is finite.
    pub fn time_per_token(&self, end_us: u64) -> Option<u64> {
        let first = self.ttft_us?;
        (self.tokens >= 2).then(|| (end_us.saturating_sub(first) / (self.tokens - 1)).max(1))
    }
}

/// An HTTP version a response came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.1 (or 1.0).
    #[default]
    Http1,
    /// HTTP/2.
    H2,
}

impl Protocol {
    /// Every protocol, in the order shown.
    pub const ALL: [Protocol; 2] = [Protocol::Http1, Protocol::H2];

    /// Its name as `summary.json` and the reports show it (ALPN's for HTTP/2).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::H2 => "h2",
        }
    }
}

/// Responses counted by the protocol they came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Protocols {
    /// Over HTTP/1.1.
    pub http1: u64,
    /// Over HTTP/2.
    pub h2: u64,
}

impl Protocols {
    /// Adds `other`.
    pub fn add(&mut self, other: &Protocols) {
        self.http1 += other.http1;
        self.h2 += other.h2;
    }

    /// Responses over `p`.
    pub fn get(&self, p: Protocol) -> u64 {
        match p {
            Protocol::Http1 => self.http1,
            Protocol::H2 => self.h2,
        }
    }

    /// Counts one response over `p`.
    #[inline]
    pub fn incr(&mut self, p: Protocol) {
        match p {
            Protocol::Http1 => self.http1 += 1,
            Protocol::H2 => self.h2 += 1,
        }
    }
}

/// What an endpoint's successful streams held, summed, and the events skipped unread
/// in any of its streamed responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamCounts {
    /// Successful streamed responses.
    pub streams: u64,
    /// Their content events.
    pub events: u64,
    /// Their output tokens.
    pub tokens: u64,
    /// Events of any streamed response (successful or not) over the bound on one event,
    /// skipped unread ([`StreamSample::oversized`]).
    pub oversized: u64,
    /// Events of any streamed response that loadgate skipped unread for its memory
    /// budget ([`StreamSample::skipped`]).
    pub skipped: u64,
}

impl StreamCounts {
    /// Adds `other`, saturating: the tokens are the server's usage reports, any whole
    /// number up to 2^64-1.
    pub fn add(&mut self, other: &StreamCounts) {
        self.streams = self.streams.saturating_add(other.streams);
        self.events = self.events.saturating_add(other.events);
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.oversized = self.oversized.saturating_add(other.oversized);
        self.skipped = self.skipped.saturating_add(other.skipped);
    }
}

impl Sample {
    /// A request of `endpoint` that ended in `outcome` after `latency_us` (its service
    /// time the same), with no status, body, resend or new connection: a start that
    /// tests and benches complete with struct update syntax.
    pub fn new(endpoint: usize, outcome: Outcome, latency_us: u64) -> Sample {
        Sample {
            endpoint,
            latency_us,
            service_us: latency_us,
            outcome,
            status: None,
            bytes: 0,
            decoded_bytes: None,
            protocol: None,
            local: false,
            resent: false,
            connect_us: None,
            ttfb_us: None,
            good: outcome == Outcome::Success,
            good_service: outcome == Outcome::Success,
            stream: None,
            redirects: 0,
            cookies_dropped: 0,
        }
    }
}

/// Everything recorded for one endpoint.
///
/// The timings of successful requests (latency, service time, time to first byte) hold
/// **successful** requests only (outcome [`Outcome::Success`]): the distribution of good
/// answers. A failed request's time says how fast it failed, not how fast the target
/// served; failures are counted per class in `outcomes`, and a budget on such a timing
/// counts them as slower than any threshold (see `loadgate-slo`). Send lag holds every
/// send, connect time every new connection (see [`Timing`]).
#[derive(Debug, Clone)]
pub struct EndpointShard {
    /// One histogram per timing.
    pub timings: Timings<LatencyHistogram>,
    /// Connections opened for this endpoint's requests.
    pub connects: u64,
    /// Successful requests by the second of the run they were due in (open model) or
    /// sent in (closed): what a throughput window counts, so that it is never more than
    /// was sent in it and never short at the start for answers slower than a second.
    pub due_successes: BySecond,
    /// Counter per outcome class.
    pub outcomes: OutcomeCounts,
    /// Counter per HTTP status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Response body bytes, as they came over the wire.
    pub bytes: u64,
    /// Response body bytes after undoing their `Content-Encoding`, of the responses
    /// that were decoded; `None` when none was (no check or stream reads the body).
    pub decoded_bytes: Option<u64>,
    /// Responses by the protocol they came over.
    pub protocols: Protocols,
    /// Requests that were sent (or, for dropped ones, due).
    pub sent: u64,
    /// Sends later than the tolerance behind their intended time (open model).
    pub late: u64,
    /// Arrivals that could not be sent because `max_in_flight` was reached.
    pub dropped: u64,
    /// Requests that failed because loadgate ran out of a local resource (also counted
    /// in their outcome class, `connect_error`). Any makes the run invalid.
    pub local_errors: u64,
    /// Arrivals whose request could not be built (a template rendered something that is
    /// not a valid URL or header value): never sent, a failure of the generator's
    /// input. Any makes the run invalid.
    pub unbuilt: u64,
    /// Requests sent a second time on a new connection because the first one closed
    /// before the request was written (HTTP/2 only; shown, never hidden).
    pub resent: u64,
    /// What the successful streamed responses held (endpoints with `stream`).
    pub streams: StreamCounts,
    /// Requests that succeeded within every per-request limit (goodput).
    pub good: u64,
    /// Requests that succeeded within those limits timed from their actual send.
    pub good_service: u64,
    /// Redirects followed (every hop of every request).
    pub redirects: u64,
    /// Cookies its answers set that the session's jar dropped for its bounds (at most
    /// 50 cookies of 4 KiB each): what later requests of the session did not send.
    pub cookies_dropped: u64,
    /// The first few distinct explanations of its failures ([`Shard::record_failure`]);
    /// boxed at the first failure, so an endpoint that never failed costs a pointer.
    pub failures: Option<Box<Failures>>,
}

impl EndpointShard {
    /// Nothing recorded yet, histograms bounded at `max_us`. Allocates nothing: each
    /// histogram takes memory at its first value (see [`LatencyHistogram`]).
    pub fn new(max_us: u64) -> Self {
        EndpointShard {
            timings: Timings::from_fn(|_| LatencyHistogram::new(max_us)),
            connects: 0,
            due_successes: BySecond::default(),
            outcomes: OutcomeCounts::default(),
            statuses: BTreeMap::new(),
            bytes: 0,
            decoded_bytes: None,
            protocols: Protocols::default(),
            sent: 0,
            late: 0,
            dropped: 0,
            local_errors: 0,
            unbuilt: 0,
            resent: 0,
            streams: StreamCounts::default(),
            good: 0,
            good_service: 0,
            redirects: 0,
            cookies_dropped: 0,
            failures: None,
        }
    }

    /// Adds everything in `other`.
    pub fn merge_from(&mut self, other: &EndpointShard) {
        for (t, h) in self.timings.iter_mut() {
            h.add(&other.timings[t]);
        }
        self.connects += other.connects;
        self.due_successes.merge_from(&other.due_successes);
        self.outcomes.add(&other.outcomes);
        for (&code, &n) in &other.statuses {
            *self.statuses.entry(code).or_insert(0) += n;
        }
        self.bytes += other.bytes;
        self.decoded_bytes = add_some(self.decoded_bytes, other.decoded_bytes);
        self.protocols.add(&other.protocols);
        self.sent += other.sent;
        self.late += other.late;
        self.dropped += other.dropped;
        self.local_errors += other.local_errors;
        self.unbuilt += other.unbuilt;
        self.resent += other.resent;
        self.streams.add(&other.streams);
        self.good += other.good;
        self.good_service += other.good_service;
        self.redirects += other.redirects;
        self.cookies_dropped += other.cookies_dropped;
        if let Some(f) = other.failures.as_deref().filter(|f| !f.is_empty()) {
            self.failures.get_or_insert_default().merge_from(f);
        }
    }

    fn reset(&mut self) {
        self.timings.iter_mut().for_each(|(_, h)| h.reset());
        self.connects = 0;
        self.due_successes.clear();
        self.outcomes = OutcomeCounts::default();
        // Keep the keys: the same codes recur, so no allocation next interval.
        self.statuses.values_mut().for_each(|n| *n = 0);
        self.bytes = 0;
        self.decoded_bytes = None;
        self.protocols = Protocols::default();
        self.sent = 0;
        self.late = 0;
        self.dropped = 0;
        self.local_errors = 0;
        self.unbuilt = 0;
        self.resent = 0;
        self.streams = StreamCounts::default();
        self.good = 0;
        self.good_service = 0;
        self.redirects = 0;
        self.cookies_dropped = 0;
        if let Some(f) = &mut self.failures {
            f.clear();
        }
    }

    /// Bytes this endpoint's data holds beyond its fixed size: the timing histograms'
    /// counts, the due-second counts and the status-code map.
    pub fn allocated_bytes(&self) -> usize {
        let histograms = self
            .timings
            .values()
            .map(LatencyHistogram::allocated_bytes)
            .sum::<usize>();
        // An estimate: a key and a count per status code (a handful per endpoint).
        let statuses = self.statuses.len() * 2 * std::mem::size_of::<u64>();
        histograms
            + self.due_successes.allocated_bytes()
            + statuses
            + self
                .failures
                .as_deref()
                .map_or(0, |f| std::mem::size_of::<Failures>() + f.allocated_bytes())
    }

    /// Latency of successful requests (see [`Timing::Latency`]).
    pub fn latency(&self) -> &LatencyHistogram {
        &self.timings[Timing::Latency]
    }

    /// Completed requests (every outcome class).
    pub fn completed(&self) -> u64 {
        self.outcomes.total()
    }

    /// Completed requests whose outcome is [`Outcome::Success`].
    pub fn successes(&self) -> u64 {
        self.outcomes.get(Outcome::Success)
    }
}

/// The sum of two counts either of which may be absent; absent only when both are.
pub fn add_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// How a shard's rows are laid out: the endpoints arrivals pick, then the steps flows
/// send (requests too), then the flows' and polls' rows, then the requests loadgate
/// sends for itself (`[auth]`'s token fetches): requests, but neither arrivals nor the
/// load measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rows {
    /// Endpoints that arrivals pick.
    pub endpoints: usize,
    /// Endpoints that only flows send (their steps).
    pub steps: usize,
    /// Flows' and polls' rows.
    pub flows: usize,
    /// The token fetches' row (0 or 1).
    pub auth: usize,
}

/// Recorded data for every row, owned by one worker or by the aggregator: a row per
/// endpoint (requests: the scenario's endpoints, then the steps its flows send), then a
/// row per flow or poll (one sample per iteration or poll: its duration and outcome),
/// then the token fetches' row. The flows', polls' and token fetches' rows are not the
/// load's requests: [`Shard::overall`] leaves them out.
#[derive(Debug, Clone)]
pub struct Shard {
    endpoints: Vec<EndpointShard>,
    /// How many rows, from the first, are endpoints'.
    requests: usize,
    /// How many rows, from the first, are endpoints that arrivals pick (the rest of
    /// the requests are flows' steps).
    standalone: usize,
    /// How many rows, at the end, are the token fetches'.
    auth: usize,
}

impl Shard {
    /// A shard for `endpoints` endpoints with histograms bounded at `max_us`.
    pub fn new(endpoints: usize, max_us: u64) -> Self {
        Shard::with_flows(endpoints, 0, max_us)
    }

    /// A shard for `endpoints` endpoints and, after them, `flows` flows (or polls).
    pub fn with_flows(endpoints: usize, flows: usize, max_us: u64) -> Self {
        let rows = Rows {
            endpoints,
            steps: 0,
            flows,
            auth: 0,
        };
        Shard::with_rows(rows, max_us)
    }

    /// A shard of `rows`, histograms bounded at `max_us`.
    pub fn with_rows(rows: Rows, max_us: u64) -> Self {
        Shard {
            endpoints: (0..rows.endpoints + rows.steps + rows.flows + rows.auth)
                .map(|_| EndpointShard::new(max_us))
                .collect(),
            requests: rows.endpoints + rows.steps,
            standalone: rows.endpoints,
            auth: rows.auth,
        }
    }

    /// A shard of the given endpoints' data (e.g. read back from a run directory), laid
    /// out as `rows` says.
    pub fn from_endpoints(endpoints: Vec<EndpointShard>, rows: Rows) -> Self {
        let requests = (rows.endpoints + rows.steps).min(endpoints.len());
        Shard {
            standalone: rows.endpoints.min(requests),
            requests,
            auth: rows.auth.min(endpoints.len() - requests),
            endpoints,
        }
    }

    /// How the rows are laid out.
    pub fn rows(&self) -> Rows {
        Rows {
            endpoints: self.standalone,
            steps: self.requests - self.standalone,
            flows: self.endpoints.len() - self.requests - self.auth,
            auth: self.auth,
        }
    }

    /// What the arrivals of the load became: iterations of a flow and requests of an
    /// endpoint sent, and dropped (at `max_in_flight`, or a request that never had its
    /// turn in a fixed pool), each on its arrival's row: a flow's steps are not
    /// arrivals, and a step that never had its turn is counted dropped on its own row
    /// and, once, as its iteration's on the flow's. The rate the generator achieved is
    /// these sends against the arrivals scheduled. Token fetches are none of it.
    pub fn arrivals(&self) -> (u64, u64) {
        let composite = self.requests..self.endpoints.len() - self.auth;
        let rows = || {
            self.endpoints[..self.standalone]
                .iter()
                .chain(&self.endpoints[composite.clone()])
        };
        let sent = rows().map(|e| e.sent).sum();
        let dropped = rows().map(|e| e.dropped).sum();
        (sent, dropped)
    }

    /// How many rows, from the first, are endpoints' (the rest are flows').
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Records one finished request: its times only if it succeeded, its outcome in
    /// any case. Allocation-free once a status code has been seen and the endpoint's
    /// histograms hold a value (a reset keeps those of the endpoints that had traffic).
    #[inline]
    pub fn record(&mut self, s: &Sample) {
        let e = &mut self.endpoints[s.endpoint];
        if s.outcome == Outcome::Success {
            let t = &mut e.timings;
            t[Timing::Latency].record(s.latency_us);
            t[Timing::Service].record(s.service_us);
            if let Some(ttfb) = s.ttfb_us {
                // The service variant leaves out the same send lag as service time.
                let lag = s.latency_us.saturating_sub(s.service_us);
                t[Timing::Ttfb].record(ttfb);
                t[Timing::TtfbService].record(ttfb.saturating_sub(lag));
            }
            if let Some(st) = &s.stream {
                if let Some(ttft) = st.ttft_us {
                    let lag = s.latency_us.saturating_sub(s.service_us);
                    t[Timing::Ttft].record(ttft);
                    t[Timing::TtftService].record(ttft.saturating_sub(lag));
                    if let Some(tpot) = st.time_per_token(s.latency_us) {
                        t[Timing::Tpot].record(tpot);
                    }
                }
                e.streams.add(&StreamCounts {
                    streams: 1,
                    events: st.events,
                    tokens: st.tokens,
                    ..StreamCounts::default()
                });
            }
        }
        if let Some(st) = &s.stream {
            // Skipped events are counted whatever the outcome: what loadgate left unread
            // is said even of a stream that failed.
            e.streams.oversized = e.streams.oversized.saturating_add(st.oversized);
            e.streams.skipped = e.streams.skipped.saturating_add(st.skipped);
        }
        e.outcomes.incr(s.outcome);
        let success = s.outcome == Outcome::Success;
        e.good += (success && s.good) as u64;
        e.good_service += (success && s.good_service) as u64;
        if let Some(code) = s.status {
            *e.statuses.entry(code).or_insert(0) += 1;
        }
        e.bytes += s.bytes;
        if s.decoded_bytes.is_some() {
            e.decoded_bytes = add_some(e.decoded_bytes, s.decoded_bytes);
        }
        if let Some(p) = s.protocol {
            e.protocols.incr(p);
        }
        e.local_errors += s.local as u64;
        e.resent += s.resent as u64;
        e.redirects += u64::from(s.redirects);
        e.cookies_dropped += u64::from(s.cookies_dropped);
        if let Some(us) = s.connect_us {
            e.connects += 1;
            e.timings[Timing::Connect].record(us);
        }
    }

    /// Counts one send for `endpoint`: its lag behind the intended time (open model;
    /// `None` in the closed model, which has no schedule) and whether that was late.
    #[inline]
    pub fn record_send(&mut self, endpoint: usize, lag_us: Option<u64>, late: bool) {
        let e = &mut self.endpoints[endpoint];
        e.sent += 1;
        e.late += late as u64;
        if let Some(lag) = lag_us {
            e.timings[Timing::SendLag].record(lag);
        }
    }

    /// Counts a successful request of `endpoint` that was due in second `due_s` of the
    /// run (see [`EndpointShard::due_successes`]).
    #[inline]
    pub fn record_due_success(&mut self, endpoint: usize, due_s: u64) {
        self.endpoints[endpoint].due_successes.add(due_s, 1);
    }

    /// Records one gap between two content events of a stream of `endpoint`, µs, as
    /// the gap ends: gaps go straight into the histogram, never into the request.
    #[inline]
    pub fn record_gap(&mut self, endpoint: usize, gap_us: u64) {
        self.endpoints[endpoint].timings[Timing::Itl].record(gap_us);
    }

    /// Counts one failure of `endpoint` in its explanations (see [`Failures::record`]):
    /// `explain` is called only for a key not seen in this shard while there is room.
    #[inline]
    pub fn record_failure(
        &mut self,
        endpoint: usize,
        outcome: Outcome,
        key: u64,
        explain: impl FnOnce() -> (String, Option<String>),
    ) {
        self.endpoints[endpoint]
            .failures
            .get_or_insert_default()
            .record(outcome, key, explain);
    }

    /// Counts one arrival whose request could not be built.
    #[inline]
    pub fn record_unbuilt(&mut self, endpoint: usize) {
        self.endpoints[endpoint].unbuilt += 1;
    }

    /// Counts one request sent again on a new connection (see [`EndpointShard::resent`]).
    #[inline]
    pub fn record_resent(&mut self, endpoint: usize) {
        self.endpoints[endpoint].resent += 1;
    }

    /// Counts one arrival that was dropped because too many requests were in flight.
    #[inline]
    pub fn record_drop(&mut self, endpoint: usize) {
        self.endpoints[endpoint].dropped += 1;
    }

    /// Adds everything in `other` (same endpoint count).
    pub fn merge_from(&mut self, other: &Shard) {
        for (a, b) in self.endpoints.iter_mut().zip(&other.endpoints) {
            a.merge_from(b);
        }
    }

    /// Adds `other` into a run's totals: everything but the successes by due second,
    /// which only a second's shard needs (throughput windows are judged from those) and
    /// which would grow with the run's length in totals, 16 bytes per endpoint per
    /// second.
    pub fn merge_into_totals(&mut self, other: &Shard) {
        for (a, b) in self.endpoints.iter_mut().zip(&other.endpoints) {
            a.merge_from(b);
            a.due_successes.clear();
        }
    }

    /// Bytes held by this shard: its fixed part per endpoint and what each endpoint's
    /// data allocated (see [`EndpointShard::allocated_bytes`]). What a shard of many
    /// endpoints costs is this sum, so tests and benches assert it where it is made.
    pub fn allocated_bytes(&self) -> usize {
        self.endpoints.capacity() * std::mem::size_of::<EndpointShard>()
            + self
                .endpoints
                .iter()
                .map(EndpointShard::allocated_bytes)
                .sum::<usize>()
    }

    /// Forgets everything. Keeps the allocations of the endpoints that recorded
    /// something since the last reset and frees the others' histograms (see
    /// [`LatencyHistogram::reset`]), so a recycled shard stays as small as the traffic
    /// of its last interval.
    pub fn reset(&mut self) {
        self.endpoints.iter_mut().for_each(EndpointShard::reset);
    }

    /// Per-endpoint data, in scenario order.
    pub fn endpoints(&self) -> &[EndpointShard] {
        &self.endpoints
    }

    /// All endpoints merged into one: every request, and no flow's row.
    pub fn overall(&self) -> EndpointShard {
        let mut all = EndpointShard::new(
            self.endpoints
                .first()
                .map_or(1_000_000, |e| e.latency().high()),
        );
        for e in &self.endpoints[..self.requests] {
            all.merge_from(e);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 18): the run totals kept every second's successes by due second,
    /// 16 bytes per endpoint per second: a 1-hour run did not cost what a 1-minute one did.
    #[test]
    fn totals_cost_the_same_after_an_hour_as_after_a_minute() {
        let second = |t: u64| {
            let mut s = Shard::new(3, 60_000_000);
            for e in 0..3 {
                s.record(&sample(e, Outcome::Success, 1_000));
                s.record_due_success(e, t);
            }
            s
        };
        let mut totals = Shard::new(3, 60_000_000);
        for t in 0..60 {
            totals.merge_into_totals(&second(t));
        }
        let minute = totals.allocated_bytes();
        for t in 60..3600 {
            totals.merge_into_totals(&second(t));
        }
        assert_eq!(totals.allocated_bytes(), minute);
        assert_eq!(totals.endpoints()[0].successes(), 3600);
    }

    fn sample(endpoint: usize, outcome: Outcome, us: u64) -> Sample {
        Sample {
            service_us: us / 2,
            status: Some(200),
            bytes: 10,
            ttfb_us: Some(us / 4),
            ..Sample::new(endpoint, outcome, us)
        }
    }

    #[test]
    fn merging_worker_shards_equals_recording_in_one() {
        let mut one = Shard::new(2, 10_000_000);
        let mut w1 = Shard::new(2, 10_000_000);
        let mut w2 = Shard::new(2, 10_000_000);
        for i in 0..1000u64 {
            let s = Sample {
                stream: Some(StreamSample {
                    ttft_us: Some(i * 12),
                    events: 4,
                    tokens: 5,
                    oversized: i % 2,
                    skipped: 1,
                }),
                ..sample(
                    (i % 2) as usize,
                    Outcome::ALL[i as usize % Outcome::COUNT],
                    i * 37,
                )
            };
            one.record(&s);
            one.record_gap(s.endpoint, i * 11);
            if i % 3 == 0 {
                w1.record(&s);
                w1.record_gap(s.endpoint, i * 11);
            } else {
                w2.record(&s);
                w2.record_gap(s.endpoint, i * 11);
            }
        }
        let mut merged = Shard::new(2, 10_000_000);
        merged.merge_from(&w1);
        merged.merge_from(&w2);
        for (a, b) in merged.endpoints().iter().zip(one.endpoints()) {
            assert_eq!(a.timings, b.timings);
            assert_eq!(a.outcomes, b.outcomes);
            assert_eq!(a.statuses, b.statuses);
            assert_eq!(a.streams, b.streams);
        }
        assert_eq!(merged.overall().completed(), 1000);
        // Successful streams count; a failed one's ttft is not a success's.
        let all = merged.overall();
        let successes = all.successes();
        assert_eq!(all.streams.streams, successes);
        assert_eq!(all.streams.tokens, 5 * successes);
        // Skipped events are said of every streamed response, failed or not.
        assert_eq!((all.streams.oversized, all.streams.skipped), (500, 1000));
        assert_eq!(all.timings[Timing::Ttft].len(), successes);
        assert_eq!(
            all.timings[Timing::Itl].len(),
            1000,
            "every gap, whatever the outcome"
        );
        w1.reset();
        assert_eq!(w1.overall().completed(), 0);
    }

    /// A server's usage report is the target's word, any whole number up to 2^64-1 (a
    /// `[*]` token path sums saturating to that): two such streams overflowed the sum of
    /// tokens (a panic in a debug build, a wrapped, small total in a release build). The
    /// counts saturate instead, in a shard and when shards merge.
    #[test]
    fn a_servers_huge_token_counts_saturate_the_sum() {
        let huge = Sample {
            stream: Some(StreamSample {
                ttft_us: Some(1_000),
                events: 2,
                tokens: u64::MAX,
                ..StreamSample::default()
            }),
            ..sample(0, Outcome::Success, 5_000)
        };
        let mut one = Shard::new(1, 10_000_000);
        one.record(&huge);
        one.record(&huge);
        assert_eq!(one.overall().streams.tokens, u64::MAX);
        let mut merged = Shard::new(1, 10_000_000);
        merged.merge_from(&one);
        merged.merge_from(&one);
        assert_eq!(merged.overall().streams.tokens, u64::MAX);
        assert_eq!(merged.overall().streams.streams, 4);
        assert_eq!(
            merged.overall().timings[Timing::Tpot].len(),
            4,
            "each stream's time per token, at least 1 µs"
        );
    }

    /// Issue 22: the protocol of each response and the decoded body bytes are counted
    /// and merge exactly; decoded bytes stay absent until a decoded response counts them.
    #[test]
    fn protocols_and_decoded_bytes_count_and_merge() {
        let mut w1 = Shard::new(1, 60_000_000);
        let mut w2 = Shard::new(1, 60_000_000);
        for i in 0..10u64 {
            let s = Sample {
                bytes: 10,
                protocol: Some(if i < 7 { Protocol::Http1 } else { Protocol::H2 }),
                ..sample(0, Outcome::Success, 100)
            };
            w1.record(&s);
        }
        // A failure has no protocol; nothing decoded yet.
        w1.record(&sample(0, Outcome::ConnectError, 100));
        assert_eq!(w1.endpoints()[0].decoded_bytes, None);
        w2.record(&Sample {
            bytes: 10,
            decoded_bytes: Some(1000),
            protocol: Some(Protocol::H2),
            ..sample(0, Outcome::Success, 100)
        });
        let mut merged = Shard::new(1, 60_000_000);
        merged.merge_from(&w1);
        merged.merge_from(&w2);
        let all = merged.overall();
        assert_eq!(all.protocols, Protocols { http1: 7, h2: 4 });
        assert_eq!((all.bytes, all.decoded_bytes), (120, Some(1000)));
        merged.reset();
        assert_eq!(merged.overall().protocols, Protocols::default());
        assert_eq!(merged.overall().decoded_bytes, None);
    }

    /// An iteration one of whose later steps never had its turn in a fixed pool was
    /// sent (its first step was) and dropped once: the step's row counts the request,
    /// the flow's row the iteration it cut short, and the run's drops count it once.
    #[test]
    fn a_dropped_step_is_one_drop_of_the_run_though_its_flow_row_shows_it_too() {
        let rows = Rows {
            endpoints: 1,
            steps: 2,
            flows: 1,
            auth: 1,
        };
        let mut s = Shard::with_rows(rows, 60_000_000);
        // A token fetch is no arrival, sent or dropped.
        s.record_send(4, None, false);
        s.record_drop(4);
        for _ in 0..3 {
            s.record_send(0, Some(10), false);
        }
        s.record_drop(0);
        // Two iterations sent (the flow's row counts them), the second's later step
        // dropped: on its row and on the flow's.
        for _ in 0..2 {
            s.record_send(1, Some(10), false);
            s.record_send(3, None, false);
        }
        s.record_send(2, Some(10), false);
        s.record_drop(2);
        s.record_drop(3);
        assert_eq!(s.arrivals(), (5, 2));
        assert_eq!(s.endpoints()[3].dropped, 1);
        assert_eq!(s.overall().dropped, 2, "the requests dropped");
    }

    /// Issue 18: a 1000-endpoint shard held four whole-range histograms per endpoint
    /// (557 MB at a 60 s bound) whether or not an endpoint saw traffic. Now an
    /// endpoint costs its fixed size until it records, and a busy one what its values
    /// need.
    #[test]
    fn a_shard_costs_what_its_endpoints_recorded() {
        let fixed = std::mem::size_of::<EndpointShard>();
        // Nine timings, their histograms empty until their first value, and the counters
        // (488 bytes before issue 22 added the protocols and decoded bytes, 544 before
        // the redirects, failure explanations and skipped stream events, 576 before the
        // outcome `auth_failed` and the cookies dropped).
        assert!(fixed <= 592, "fixed part per endpoint: {fixed} bytes");
        let mut interval = Shard::new(1000, 60_000_000);
        assert_eq!(
            interval.allocated_bytes(),
            1000 * fixed,
            "nothing but the fixed part"
        );
        for i in 0..600u64 {
            let endpoint = [3, 500, 999][(i % 3) as usize];
            let s = Sample {
                connect_us: i.is_multiple_of(50).then_some(300),
                ..sample(endpoint, Outcome::Success, 200 + i * 3)
            };
            interval.record(&s);
            interval.record_send(endpoint, Some(40), false);
        }
        // Three busy endpoints, six histograms each of values under 2 ms: 16 KiB each.
        let busy = interval.allocated_bytes() - 1000 * fixed;
        assert!(
            busy <= 3 * 6 * 17 * 1024,
            "{busy} bytes for 3 busy endpoints"
        );

        // The totals: every endpoint saw requests of up to 100 ms.
        let mut totals = Shard::new(1000, 60_000_000);
        totals.merge_from(&interval);
        let mut all = Shard::new(1000, 60_000_000);
        for e in 0..1000 {
            all.record(&sample(e, Outcome::Success, 100_000));
            all.record_send(e, Some(40), false);
        }
        totals.merge_from(&all);
        let per_endpoint = totals.allocated_bytes() / 1000;
        // Latency and service time to 100 ms (64 KiB each), time to first byte and its
        // service variant to 25 ms (48 KiB each), send lag (16 KiB): under half of the
        // 557 KB every endpoint cost before, however idle.
        assert!(
            per_endpoint <= 245 * 1024,
            "{per_endpoint} bytes per busy endpoint"
        );

        // A recycled shard keeps only the endpoints of its last interval.
        interval.reset();
        interval.record(&sample(7, Outcome::Success, 500));
        interval.reset();
        let kept = interval.allocated_bytes() - 1000 * fixed;
        assert!(
            kept <= 4 * 17 * 1024,
            "{kept} bytes kept for endpoint 7 alone"
        );
        assert_eq!(interval.overall().completed(), 0);
    }
}
