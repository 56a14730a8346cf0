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

/// The 1-based rank of the `quantile` (0.0..=1.0) of `count` values: the nearest-rank
/// definition, `ceil(quantile * count)`, at least 1.
///
/// loadgate's pN is the smallest recorded value such that at least N% of the values are
/// at or below it. Every percentile in tables, budgets, charts and comparisons goes
/// through here. HdrHistogram's Java and Python readers round the rank instead
/// (`floor(quantile * count + 0.5)`), so for small counts they can give the next lower
/// value (p99 of 83 values: the 82nd there, the 83rd here). A product that is a whole
/// number up to float error (`0.07 * 100`) counts as that whole number.
pub fn nearest_rank(quantile: f64, count: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    let exact = quantile.clamp(0.0, 1.0) * count as f64;
    let whole = exact.round();
    let rank = if (exact - whole).abs() <= 1e-9 * whole.max(1.0) {
        whole
    } else {
        exact.ceil()
    };
    (rank as u64).clamp(1, count)
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

    /// The nearest-rank value at `quantile` (0.0..=1.0), in microseconds; 0 when empty.
    /// See [`nearest_rank`] for the definition every percentile of loadgate uses.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.value_at_rank(nearest_rank(quantile, self.hist.len()))
    }

    /// The `rank`-th smallest value (1-based, clamped to `1..=len`), reported as the
    /// highest value its bucket holds; 0 when empty.
    pub fn value_at_rank(&self, rank: u64) -> u64 {
        let n = self.hist.len();
        if n == 0 {
            return 0;
        }
        let rank = rank.clamp(1, n);
        // The crate walks to the first bucket whose running count reaches ceil(q * n);
        // asking for q = (rank - 1/2) / n lands on `rank` whatever the float rounding.
        self.hist.value_at_quantile((rank as f64 - 0.5) / n as f64)
    }

    /// How many values were recorded above `us` (at bucket resolution: values in the
    /// same bucket as `us` count as equal to it).
    pub fn count_above(&self, us: u64) -> u64 {
        let n = self.hist.len();
        if n == 0 || us >= self.hist.high() {
            return 0;
        }
        n - self.hist.count_between(0, us)
    }

    /// Every recorded bucket as `(value, count)`, in ascending order: a compact copy that
    /// [`LatencyHistogram::add_sparse`] and [`LatencyHistogram::subtract_sparse`] take
    /// back exactly (a sliding window keeps its seconds this way).
    pub fn to_sparse(&self) -> Vec<(u64, u64)> {
        self.hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// Adds values given by [`LatencyHistogram::to_sparse`].
    pub fn add_sparse(&mut self, sparse: &[(u64, u64)]) {
        let high = self.hist.high();
        for &(v, n) in sparse {
            let _ = self.hist.record_n(v.min(high), n);
        }
    }

    /// Removes values given by [`LatencyHistogram::to_sparse`] that were added before.
    /// `scratch` is a histogram of the same bound, reused to spare an allocation.
    pub fn subtract_sparse(&mut self, sparse: &[(u64, u64)], scratch: &mut LatencyHistogram) {
        scratch.reset();
        scratch.add_sparse(sparse);
        self.subtract(scratch);
    }

    /// Removes every value of `other`, which must have been added before (a sliding
    /// window's oldest second leaving it).
    pub fn subtract(&mut self, other: &LatencyHistogram) {
        // Values were added to this histogram, so every count is at least as large.
        let _ = self.hist.subtract(&other.hist);
        self.saturated = self.saturated.saturating_sub(other.saturated);
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
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
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
    fn percentiles_are_nearest_rank() {
        assert_eq!(nearest_rank(0.99, 83), 83, "ceil(82.17)");
        assert_eq!(nearest_rank(0.95, 100), 95);
        assert_eq!(
            nearest_rank(0.07, 100),
            7,
            "0.07 * 100 is 7.000000000000001"
        );
        assert_eq!(nearest_rank(0.5, 1), 1);
        assert_eq!(nearest_rank(0.0, 10), 1);
        assert_eq!(nearest_rank(1.0, 10), 10);
        assert_eq!(nearest_rank(0.5, 0), 0);
        let mut h = LatencyHistogram::new(60_000_000);
        for v in 1..=83u64 {
            h.record(v * 10);
        }
        assert_eq!(h.quantile(0.99), 830, "the 83rd of 83");
        assert_eq!(h.quantile(0.5), 420, "the 42nd");
        let mut h = LatencyHistogram::new(60_000_000);
        for v in 1..=100u64 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.07), 7);
        assert_eq!(h.value_at_rank(1), 1);
        assert_eq!(h.value_at_rank(500), 100, "clamped");
        assert_eq!(h.count_above(90), 10);
        assert_eq!(h.count_above(0), 100);
    }

    #[test]
    fn subtracting_undoes_adding() {
        let mut a = LatencyHistogram::new(60_000_000);
        let mut b = LatencyHistogram::new(60_000_000);
        for v in [5, 50, 500] {
            a.record(v);
        }
        b.record(70_000_000);
        b.record(9);
        let before = a.clone();
        a.add(&b);
        a.subtract(&b);
        assert_eq!(a.inner(), before.inner());
        assert_eq!(a.saturated(), 0);
        let sparse = b.to_sparse();
        let mut scratch = LatencyHistogram::new(60_000_000);
        a.add_sparse(&sparse);
        assert_eq!(a.len(), 5);
        a.subtract_sparse(&sparse, &mut scratch);
        assert_eq!(a.inner(), before.inner());
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
