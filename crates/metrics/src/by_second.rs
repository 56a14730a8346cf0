//! Counts keyed by the second of the run a request was due in.

use serde::{Deserialize, Serialize};

/// Counts by second of the run (the second a request was due in, open model, or sent
/// in, closed model), as a short list sorted by second. One interval's completions were
/// due in a few recent seconds, so the list stays short and a count is a short scan from
/// its end: no allocation once the seconds recur, nothing kept per request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BySecond(Vec<(u64, u64)>);

impl BySecond {
    /// Adds `n` to `second`.
    #[inline]
    pub fn add(&mut self, second: u64, n: u64) {
        match self.0.iter().rposition(|&(s, _)| s <= second) {
            Some(i) if self.0[i].0 == second => self.0[i].1 += n,
            Some(i) => self.0.insert(i + 1, (second, n)),
            None => self.0.insert(0, (second, n)),
        }
    }

    /// Adds every count of `other`.
    pub fn merge_from(&mut self, other: &BySecond) {
        for &(s, n) in &other.0 {
            self.add(s, n);
        }
    }

    /// Adds every count of `other` with its seconds moved `offset` later (a segment
    /// that began later than the first).
    pub fn merge_shifted(&mut self, other: &BySecond, offset: u64) {
        for &(s, n) in &other.0 {
            self.add(s + offset, n);
        }
    }

    /// Forgets every count, keeping the allocation.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// (second, count) pairs in ascending order of second.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().copied()
    }

    /// Bytes held by the list.
    pub fn allocated_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<(u64, u64)>()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stay_sorted_and_merge() {
        let mut a = BySecond::default();
        for s in [5, 3, 5, 9, 0, 3] {
            a.add(s, 1);
        }
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [(0, 1), (3, 2), (5, 2), (9, 1)]
        );
        let mut b = BySecond::default();
        b.add(4, 7);
        b.merge_from(&a);
        b.merge_shifted(&a, 10);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 7 + 6 + 6);
        assert_eq!(b.iter().next(), Some((0, 1)));
        assert_eq!(b.iter().last(), Some((19, 1)));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "[[0,1],[3,2],[5,2],[9,1]]");
        a.clear();
        assert!(a.is_empty());
    }
}
