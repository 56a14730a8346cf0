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
///
/// Memory follows the data, not the bound: nothing is allocated until the first value,
/// and the counts then cover only up to the largest value recorded (HdrHistogram's
/// auto-resize; 16 KiB for values under 2 ms, doubling the covered range for each 8 KiB
/// more), where a histogram allocated for the whole bound would hold 139 KiB for a 60 s
/// bound. Bucket layout and precision are the same whatever the size, so adding and
/// subtracting stay exact, and the serialized form states the bound as before.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    /// `None` until a value is recorded or added; boxed so an empty histogram (most of
    /// a 1000-endpoint interval shard) costs a pointer.
    hist: Option<Box<Histogram<u64>>>,
    /// The upper bound: larger values are recorded at it.
    bound: u64,
    saturated: u64,
}

/// Two histograms are equal when they have the same bound and saturation count and hold
/// the same counts in the same buckets, however far each one's count array reaches.
impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &LatencyHistogram) -> bool {
        let (a, b) = (self.inner(), other.inner());
        self.bound == other.bound
            && self.saturated == other.saturated
            && a.len() == b.len()
            && a.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .eq(b
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value())))
    }
}

/// The histogram every empty [`LatencyHistogram`] shows through
/// [`LatencyHistogram::inner`].
fn empty() -> &'static Histogram<u64> {
    static EMPTY: std::sync::OnceLock<Histogram<u64>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(compact)
}

/// An empty auto-resizing histogram: its counts start at the fewest HdrHistogram allows
/// for 3 significant digits (values below 2048 µs) and grow as larger values arrive.
fn compact() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("sigfig 3 is valid")
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
    /// A histogram tracking 1 µs ..= `max_us` (at least 1 s). Allocates nothing until a
    /// value arrives.
    pub fn new(max_us: u64) -> Self {
        LatencyHistogram {
            hist: None,
            bound: max_us.max(1_000_000),
            saturated: 0,
        }
    }

    /// Records one value. Never panics; allocates only for the first value since the
    /// last [`LatencyHistogram::reset`] that found it empty, and when a value beyond
    /// every one before it needs a wider count array (at most once per doubling).
    #[inline]
    pub fn record(&mut self, us: u64) {
        if us > self.bound {
            self.saturated += 1;
        }
        let us = us.min(self.bound);
        let hist = self.hist.get_or_insert_with(|| Box::new(compact()));
        if hist.record(us).is_err() {
            // Only a count array beyond `usize` fails to grow; keep the sample anyway.
            hist.saturating_record(us);
        }
    }

    /// Adds every value of `other`, exactly (same bucket layout at any size). The bound
    /// becomes the wider of the two.
    pub fn add(&mut self, other: &LatencyHistogram) {
        self.bound = self.bound.max(other.bound);
        self.saturated += other.saturated;
        let Some(theirs) = other.hist.as_deref().filter(|h| !h.is_empty()) else {
            return;
        };
        match &mut self.hist {
            Some(mine) => mine
                .add(theirs)
                .expect("an auto-resizing histogram takes any value of another"),
            None => {
                let mut mine = Box::new(compact());
                mine.add(theirs)
                    .expect("an auto-resizing histogram takes any value of another");
                self.hist = Some(mine);
            }
        }
    }

    /// Forgets every value. Keeps the allocation of a histogram that recorded something
    /// since the last reset (the same endpoint is likely busy again next interval) and
    /// frees that of one that stayed empty, so a recycled shard holds memory only for
    /// the endpoints that had traffic in its last interval.
    pub fn reset(&mut self) {
        match &mut self.hist {
            Some(h) if !h.is_empty() => h.reset(),
            _ => self.hist = None,
        }
        self.saturated = 0;
    }

    /// Bytes held by the counts (8 per bucket; none while nothing was recorded): what
    /// this histogram costs in memory beyond its fixed size.
    pub fn allocated_bytes(&self) -> usize {
        self.hist.as_deref().map_or(0, |h| {
            h.distinct_values() * std::mem::size_of::<u64>() + std::mem::size_of::<Histogram<u64>>()
        })
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.hist.as_deref().map_or(0, Histogram::len)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many values were above the bound and recorded at it.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The upper bound in microseconds.
    pub fn high(&self) -> u64 {
        self.bound
    }

    /// The nearest-rank value at `quantile` (0.0..=1.0), in microseconds; 0 when empty.
    /// See [`nearest_rank`] for the definition every percentile of loadgate uses.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.is_empty() {
            return 0;
        }
        self.value_at_rank(nearest_rank(quantile, self.len()))
    }

    /// The `rank`-th smallest value (1-based, clamped to `1..=len`), reported as the
    /// highest value its bucket holds; 0 when empty.
    pub fn value_at_rank(&self, rank: u64) -> u64 {
        let n = self.len();
        if n == 0 {
            return 0;
        }
        let rank = rank.clamp(1, n);
        // The crate walks to the first bucket whose running count reaches ceil(q * n);
        // asking for q = (rank - 1/2) / n lands on `rank` whatever the float rounding.
        self.inner()
            .value_at_quantile((rank as f64 - 0.5) / n as f64)
    }

    /// How many values were recorded above `us` (at bucket resolution: values in the
    /// same bucket as `us` count as equal to it).
    pub fn count_above(&self, us: u64) -> u64 {
        let n = self.len();
        if n == 0 || us >= self.bound {
            return 0;
        }
        n - self.inner().count_between(0, us)
    }

    /// Every recorded bucket as `(value, count)`, in ascending order: a compact copy that
    /// [`LatencyHistogram::add_sparse`] and [`LatencyHistogram::subtract_sparse`] take
    /// back exactly (a sliding window keeps its seconds this way).
    pub fn to_sparse(&self) -> Vec<(u64, u64)> {
        match self.hist.as_deref() {
            Some(h) => h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Adds values given by [`LatencyHistogram::to_sparse`].
    pub fn add_sparse(&mut self, sparse: &[(u64, u64)]) {
        if sparse.is_empty() {
            return;
        }
        let high = self.bound;
        let hist = self.hist.get_or_insert_with(|| Box::new(compact()));
        for &(v, n) in sparse {
            if hist.record_n(v.min(high), n).is_err() {
                hist.saturating_record_n(v.min(high), n);
            }
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
        if let (Some(mine), Some(theirs)) = (self.hist.as_deref_mut(), other.hist.as_deref()) {
            // Values were added to this histogram, so every count is at least as large
            // and every value is within its counts.
            let _ = mine.subtract(theirs);
        }
        self.saturated = self.saturated.saturating_sub(other.saturated);
    }

    /// The largest value recorded (its bucket's highest equivalent), µs; 0 when empty.
    pub fn max(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.inner().max()
        }
    }

    /// Mean in microseconds; 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.inner().mean()
        }
    }

    /// Summary figures.
    pub fn stats(&self) -> LatencyStats {
        if self.is_empty() {
            return LatencyStats::default();
        }
        let h = self.inner();
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

    /// The underlying HdrHistogram, for reading values (plotting, comparisons). Its
    /// `high()` is how far its counts reach so far, not the bound: serialize through
    /// [`LatencyHistogram::to_hdr`] or [`LatencyHistogram::to_base64`], which state the
    /// bound.
    pub fn inner(&self) -> &Histogram<u64> {
        match self.hist.as_deref() {
            Some(h) => h,
            None => empty(),
        }
    }

    /// A copy with counts allocated for the whole bound, as an interval-log entry
    /// states it (`highest trackable value` = the bound). Allocates the full range:
    /// for writing one histogram at a time, not for keeping.
    pub fn to_hdr(&self) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, self.bound, SIGFIG)
            .expect("bounds are valid: low=1, high>=2*low, sigfig=3");
        // Every recorded value is at most the bound, so it fits.
        h.add(self.inner())
            .expect("recorded values are within the bound");
        h
    }

    /// Standard HdrHistogram V2-deflate encoding, base64 (as in `.hlog` files), with the
    /// bound as the highest trackable value.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.to_hdr(), &mut buf)
            .expect("serializing into a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// Reads a histogram written by [`LatencyHistogram::to_base64`] (or any V2 encoder).
    /// Its bound is the encoding's highest trackable value; its counts are kept as
    /// compact as if the values had been recorded.
    pub fn from_base64(text: &str, saturated: u64) -> Result<Self, DecodeError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
        let full: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(DecodeError::Hdr)?;
        let mut h = LatencyHistogram {
            hist: None,
            bound: full.high(),
            saturated,
        };
        if !full.is_empty() {
            let mut compact = Box::new(compact());
            compact
                .add(&full)
                .expect("an auto-resizing histogram takes any value of another");
            h.hist = Some(compact);
        }
        Ok(h)
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
        assert_eq!(back, h);
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
        assert_eq!(a, before);
        assert_eq!(a.saturated(), 0);
        let sparse = b.to_sparse();
        let mut scratch = LatencyHistogram::new(60_000_000);
        a.add_sparse(&sparse);
        assert_eq!(a.len(), 5);
        a.subtract_sparse(&sparse, &mut scratch);
        assert_eq!(a, before);
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

    /// Issue 18: every histogram used to allocate counts for its whole bound (139 KiB
    /// for 60 s), four per endpoint per shard, so 1000 endpoints ran out of memory.
    #[test]
    fn memory_follows_the_values_not_the_bound() {
        let mut h = LatencyHistogram::new(3_600_000_000);
        assert_eq!(h.allocated_bytes(), 0, "nothing before the first value");
        for v in [120, 800, 1_900] {
            h.record(v);
        }
        let small = h.allocated_bytes();
        assert!(
            small <= 17 * 1024,
            "values under 2 ms: 2048 buckets, {small} bytes"
        );
        h.record(30_000);
        let wider = h.allocated_bytes();
        assert!(
            wider <= 49 * 1024,
            "30 ms: 4 doublings, 8 KiB each, {wider} bytes"
        );
        assert_eq!(h.len(), 4);
        assert_eq!(h.high(), 3_600_000_000, "the bound is kept");
        h.record(u64::MAX);
        assert_eq!((h.saturated(), h.max() >= 3_599_000_000), (1, true));
        // A reset keeps the counts of a histogram that was used, frees an unused one.
        h.reset();
        assert!(h.is_empty() && h.allocated_bytes() > 0);
        h.reset();
        assert_eq!(h.allocated_bytes(), 0);
    }

    /// The compact counts encode exactly as a histogram allocated for the whole bound
    /// (the encoding stops at the largest value and states the bound), so
    /// histograms.json and intervals.hlog are byte for byte what they were.
    #[test]
    fn encoding_is_that_of_a_histogram_allocated_for_its_bound() {
        let values = [1, 7, 250, 1_999, 50_000, 2_000_000, 59_000_000];
        for n in [0, 1, 3, values.len()] {
            let mut compact = LatencyHistogram::new(60_000_000);
            let mut full = Histogram::<u64>::new_with_bounds(1, 60_000_000, SIGFIG).unwrap();
            for &v in &values[..n] {
                compact.record(v);
                full.record(v).unwrap();
            }
            let mut buf = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&full, &mut buf)
                .unwrap();
            let expected = base64::engine::general_purpose::STANDARD.encode(buf);
            assert_eq!(compact.to_base64(), expected, "{n} values");
            let hdr = compact.to_hdr();
            assert_eq!((hdr.high(), &hdr), (60_000_000, &full));
            let back = LatencyHistogram::from_base64(&expected, 0).unwrap();
            assert_eq!(back, compact);
            assert!(back.allocated_bytes() <= compact.allocated_bytes());
        }
    }

    /// Adding histograms whose counts reach different lengths is exact in either order.
    #[test]
    fn adding_compact_histograms_is_exact_in_any_order() {
        let mut one = LatencyHistogram::new(60_000_000);
        let (mut a, mut b) = (one.clone(), one.clone());
        for i in 0..5_000u64 {
            let v = 1 + (i * 7919) % if i % 2 == 0 { 1_500 } else { 40_000_000 };
            one.record(v);
            if i % 3 == 0 {
                a.record(v);
            } else {
                b.record(v);
            }
        }
        let mut ab = LatencyHistogram::new(60_000_000);
        ab.add(&a);
        ab.add(&b);
        let mut ba = LatencyHistogram::new(60_000_000);
        ba.add(&b);
        ba.add(&a);
        assert_eq!(ab, one);
        assert_eq!(ba, one);
        assert_eq!(ab.to_base64(), ba.to_base64());
        assert_eq!(ab.to_base64(), one.to_base64());
    }
}
