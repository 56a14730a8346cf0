//! A latency histogram that never panics on out-of-range values.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant decimal digits kept by every histogram: 0.1% relative error.
const SIGFIG: u8 = 3;

/// HdrHistogram of latencies in microseconds, with a fixed upper bound.
///
/// Values above the bound are recorded at the bound and counted in
/// [`LatencyHistogram::saturated`], so an unexpectedly slow response is visible rather
/// than a panic or a silently dropped sample.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    saturated: u64,
}

/// Summary figures of one histogram, all latencies in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyStats {
    /// Number of recorded values.
    pub count: u64,
    /// Smallest value.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

/// A serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not valid base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not a valid HdrHistogram V2 encoding.
    #[error("histogram is not a valid HdrHistogram V2 encoding: {0:?}")]
    Hdr(hdrhistogram::serialization::DeserializeError),
}

impl LatencyHistogram {
    /// A histogram tracking 1 µs ..= `max_us` (at least 1 s).
    pub fn new(max_us: u64) -> Self {
        let high = max_us.max(1_000_000);
        let hist = Histogram::new_with_bounds(1, high, SIGFIG)
            .expect("bounds are valid: low=1, high>=2*low, sigfig=3");
        LatencyHistogram { hist, saturated: 0 }
    }

    /// Records one value. Never allocates, never panics.
    #[inline]
    pub fn record(&mut self, us: u64) {
        let high = self.hist.high();
        if us > high {
            self.saturated += 1;
        }
        self.hist.saturating_record(us.min(high));
    }

    /// Adds every value of `other`. Histograms with a different bound are resized.
    pub fn add(&mut self, other: &LatencyHistogram) {
        if other.hist.high() > self.hist.high() {
            self.hist.auto(true);
        }
        self.hist
            .add(&other.hist)
            .expect("auto-resize was enabled for a wider histogram");
        self.hist.auto(false);
        self.saturated += other.saturated;
    }

    /// Forgets every value, keeping the allocation.
    pub fn reset(&mut self) {
        self.hist.reset();
        self.saturated = 0;
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// How many values were above the bound and recorded at it.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The upper bound in microseconds.
    pub fn high(&self) -> u64 {
        self.hist.high()
    }

    /// The value at `quantile` (0.0..=1.0), in microseconds; 0 when empty.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.hist.value_at_quantile(quantile.clamp(0.0, 1.0))
    }

    /// The largest value recorded (its bucket's highest equivalent), µs; 0 when empty.
    pub fn max(&self) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.max()
        }
    }

    /// Mean in microseconds; 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.mean()
        }
    }

    /// Summary figures.
    pub fn stats(&self) -> LatencyStats {
        if self.hist.is_empty() {
            return LatencyStats::default();
        }
        let h = &self.hist;
        LatencyStats {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// The underlying HdrHistogram, for interval logs and plotting.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Standard HdrHistogram V2-deflate encoding, base64 (as in `.hlog` files).
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut buf)
            .expect("serializing into a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// Reads a histogram written by [`LatencyHistogram::to_base64`] (or any V2 encoder).
    pub fn from_base64(text: &str, saturated: u64) -> Result<Self, DecodeError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(DecodeError::Hdr)?;
        Ok(LatencyHistogram { hist, saturated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_saturate_instead_of_panicking() {
        let mut h = LatencyHistogram::new(1_000_000);
        h.record(0);
        h.record(u64::MAX);
        h.record(5_000_000);
        assert_eq!(h.len(), 3);
        assert_eq!(h.saturated(), 2);
        assert!(h.stats().max >= 1_000_000);
    }

    #[test]
    fn percentiles_have_three_significant_digits() {
        let mut h = LatencyHistogram::new(60_000_000);
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.001, "{p99}");
    }

    #[test]
    fn serialization_round_trips_exactly() {
        let mut h = LatencyHistogram::new(60_000_000);
        for v in [1, 7, 250, 50_000, 2_000_000, 59_000_000] {
            h.record(v);
        }
        let text = h.to_base64();
        let back = LatencyHistogram::from_base64(&text, h.saturated()).unwrap();
        assert_eq!(back.inner(), h.inner());
        assert!(LatencyHistogram::from_base64("not base64!", 0).is_err());
        assert!(LatencyHistogram::from_base64("AAAA", 0).is_err());
    }

    #[test]
    fn adding_a_wider_histogram_keeps_its_values() {
        let mut narrow = LatencyHistogram::new(1_000_000);
        let mut wide = LatencyHistogram::new(100_000_000);
        wide.record(50_000_000);
        narrow.record(10);
        narrow.add(&wide);
        assert_eq!(narrow.len(), 2);
        assert!(narrow.stats().max >= 49_000_000);
    }
}
