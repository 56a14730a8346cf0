//! Execution segments: one machine's exact share of a load that several run together.
//!
//! Segment `I/N` (1-based `I`) takes every N-th unit of work, starting at the `I`-th:
//! arrivals `I-1, I-1+N, I-1+2N, ...` of the open model's schedule, global VUs
//! `I-1, I-1+N, ...` of the closed model, and rows `I-1, I-1+N, ...` of the data file.
//! The N segments are therefore disjoint and their union is the whole: N machines each
//! running one segment send exactly the arrivals one machine would have sent, at the same
//! intended times, so their histograms add up to what one machine would have measured.
//!
//! k6 writes segments as fractions (`0:1/4`); equal shares are what keeps every one of
//! them a simple stride, so that is what [`Segment::parse`] accepts.

use std::fmt;

/// Segment `index + 1` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// 0-based.
    pub index: u64,
    /// How many segments share the load (at least 1).
    pub count: u64,
}

impl Default for Segment {
    fn default() -> Self {
        Segment::WHOLE
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl Segment {
    /// The whole load (`1/1`).
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Parses `I/N` (1 <= I <= N) or k6's fraction form `a:b` where `a = (I-1)/N` and
    /// `b = I/N` (e.g. `0:1/4`, `1/4:1/2`, `3/4:1`).
    pub fn parse(text: &str) -> Result<Segment, String> {
        let t = text.trim();
        if let Some((a, b)) = t.split_once(':') {
            let (a, b) = (fraction(a)?, fraction(b)?);
            // b - a = 1/N and a = (I-1)/N, in integers: with a = p/q and b = r/s,
            // N = qs / (rq - ps), I - 1 = a * N.
            let (p, q) = a;
            let (r, s) = b;
            let width = r * q - p * s; // (b - a) * q * s
            if width <= 0 || (q * s) % width != 0 || q * s / width > MAX_COUNT as i128 {
                return Err(format!(
                    "`{t}` is not an equal share: from {p}/{q} to {r}/{s} must be one N-th of the load\n  hint: write I/N (e.g. 2/4), or a:b with b - a = 1/N (e.g. 1/4:2/4)"
                ));
            }
            let n = q * s / width;
            if (p * n) % q != 0 {
                return Err(format!(
                    "`{t}` does not start on a 1/{n} boundary\n  hint: write I/N (e.g. 2/4), or a:b with a = (I-1)/N"
                ));
            }
            let index = p * n / q;
            if !(0..n).contains(&index) || r > s {
                return Err(format!(
                    "`{t}` lies outside 0:1\n  hint: fractions run from 0 to 1"
                ));
            }
            return Ok(Segment {
                index: index as u64,
                count: n as u64,
            });
        }
        let Some((i, n)) = t.split_once('/') else {
            return Err(format!(
                "`{t}` is not a segment\n  hint: write I/N, e.g. 1/4 for the first of four workers (or k6's 0:1/4)"
            ));
        };
        let num = |s: &str, what: &str| {
            s.trim().parse::<u64>().map_err(|_| {
                format!(
                    "`{t}`: the {what} `{}` is not a whole number\n  hint: write I/N, e.g. 1/4",
                    s.trim()
                )
            })
        };
        let (i, n) = (num(i, "index")?, num(n, "count")?);
        if n == 0 || n > MAX_COUNT {
            return Err(format!(
                "`{t}`: the count must be between 1 and {MAX_COUNT}"
            ));
        }
        if i == 0 || i > n {
            return Err(format!(
                "`{t}`: the index must be between 1 and {n}\n  hint: segments are numbered from 1 (with JOB_COMPLETION_INDEX, pass $((JOB_COMPLETION_INDEX+1))/{n})"
            ));
        }
        Ok(Segment {
            index: i - 1,
            count: n,
        })
    }

    /// Whether this is the whole load.
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// The global number of this segment's `k`-th unit (arrival, VU or row).
    pub fn global(self, k: u64) -> u64 {
        self.index + self.count * k
    }

    /// How many of the units `0..total` are this segment's.
    pub fn len_of(self, total: u64) -> u64 {
        total.saturating_sub(self.index).div_ceil(self.count)
    }

    /// This segment's share of the expected arrivals between the cumulative counts
    /// `from` and `to` (from the open schedule's N(t)). The whole load keeps the
    /// fractional expectation; a segment counts the whole arrivals that fall in it, so
    /// the shares of all N segments add up to the whole load's count within one.
    pub fn share(self, from: f64, to: f64) -> f64 {
        if self.is_whole() {
            return to - from;
        }
        let whole = |x: f64| x.max(0.0).ceil() as u64;
        (self.len_of(whole(to)) - self.len_of(whole(from))) as f64
    }

    /// Which row of `rows` this segment's `k`-th use takes: its own rows
    /// (`index, index + count, ...`) in turn. With `count` dividing `rows` this is row
    /// `global(k) % rows`, as for one machine.
    pub fn row(self, k: u64, rows: usize) -> usize {
        let mine = self.len_of(rows as u64).max(1);
        self.global(k % mine) as usize
    }
}

/// At most this many segments.
pub(crate) const MAX_COUNT: u64 = 100_000;

/// `p/q` or a whole number, as (numerator, denominator).
fn fraction(s: &str) -> Result<(i128, i128), String> {
    let s = s.trim();
    let bad = || {
        format!("`{s}` is not a fraction\n  hint: write fractions like 0, 1/4 or 1 (as in 0:1/4)")
    };
    let (p, q) = match s.split_once('/') {
        Some((p, q)) => (p.trim(), q.trim()),
        None => (s, "1"),
    };
    let p: i128 = p.parse().map_err(|_| bad())?;
    let q: i128 = q.parse().map_err(|_| bad())?;
    if q <= 0 || p < 0 || p > q || q > MAX_COUNT as i128 {
        return Err(bad());
    }
    Ok((p, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_notations_name_the_same_segments() {
        assert_eq!(
            Segment::parse("1/4").unwrap(),
            Segment { index: 0, count: 4 }
        );
        assert_eq!(
            Segment::parse("4/4").unwrap(),
            Segment { index: 3, count: 4 }
        );
        assert_eq!(
            Segment::parse("0:1/4").unwrap(),
            Segment { index: 0, count: 4 }
        );
        assert_eq!(
            Segment::parse("1/4:2/4").unwrap(),
            Segment { index: 1, count: 4 }
        );
        assert_eq!(
            Segment::parse("1/4:1/2").unwrap(),
            Segment { index: 1, count: 4 }
        );
        assert_eq!(
            Segment::parse("2/3:1").unwrap(),
            Segment { index: 2, count: 3 }
        );
        assert_eq!(
            Segment::parse("1/3:1/2").unwrap(),
            Segment { index: 2, count: 6 }
        );
        assert_eq!(Segment::parse("0:1").unwrap(), Segment::WHOLE);
        assert_eq!(Segment::parse("3/8").unwrap().to_string(), "3/8");
    }

    #[test]
    fn unequal_or_malformed_segments_are_refused_with_a_hint() {
        for bad in [
            "0/4", "5/4", "1/0", "x/4", "4", "0:1/3:1", "0:2/5", "1/3:3/4", "1/2:1/4", "1/8:3/8",
            "",
        ] {
            let e = Segment::parse(bad).unwrap_err();
            assert!(e.contains("hint") || e.contains("between"), "{bad}: {e}");
        }
    }

    #[test]
    fn segments_partition_arrivals_vus_and_rows() {
        for n in 1..=7u64 {
            for total in [0u64, 1, 5, 6, 7, 100, 101] {
                let mut seen = vec![0u32; total as usize];
                let mut lens = 0;
                for s in 0..n {
                    let seg = Segment { index: s, count: n };
                    let len = seg.len_of(total);
                    lens += len;
                    for k in 0..len {
                        seen[seg.global(k) as usize] += 1;
                    }
                    assert!(seg.global(len) >= total);
                }
                assert_eq!(lens, total);
                assert!(seen.iter().all(|&c| c == 1), "n {n} total {total}");
            }
        }
    }

    #[test]
    fn shares_add_up_to_the_whole_within_one() {
        let n = 4;
        for (a, b) in [(0.0, 1000.0), (12.5, 99.25), (3.0, 3.0), (0.0, 0.4)] {
            let sum: f64 = (0..n)
                .map(|s| Segment { index: s, count: n }.share(a, b))
                .sum();
            assert!((sum - (b - a)).abs() <= 1.0, "{a}..{b}: {sum}");
        }
    }

    #[test]
    fn rows_are_split_without_overlap_and_match_one_machine_when_n_divides_them() {
        let rows = 8;
        let mut used = std::collections::BTreeSet::new();
        for s in 0..4 {
            let seg = Segment { index: s, count: 4 };
            for k in 0..10 {
                let r = seg.row(k, rows);
                assert_eq!(r as u64 % 4, s);
                assert_eq!(r as u64, seg.global(k) % rows as u64);
                used.insert(r);
            }
        }
        assert_eq!(used.len(), rows);
        // 7 rows over 3 segments: 3 + 2 + 2, each its own.
        let got: Vec<Vec<usize>> = (0..3)
            .map(|s| {
                (0..6)
                    .map(|k| Segment { index: s, count: 3 }.row(k, 7))
                    .collect()
            })
            .collect();
        assert_eq!(got[0], [0, 3, 6, 0, 3, 6]);
        assert_eq!(got[1], [1, 4, 1, 4, 1, 4]);
        assert_eq!(got[2], [2, 5, 2, 5, 2, 5]);
    }
}
