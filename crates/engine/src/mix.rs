//! The traffic mix: which endpoint request number `i` goes to.

use rand::Rng;

/// A deterministic weighted interleaving (smooth weighted round-robin): over any window
/// of `sum(weights)` consecutive requests each endpoint gets exactly its weight, spread
/// out rather than bunched.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    table: Vec<u16>,
    weights: Vec<u32>,
    total: u64,
}

/// Longest interleaving table; larger weight sums fall back to a weighted random pick.
const MAX_TABLE: u64 = 65_536;

impl Mix {
    /// A mix over endpoints with `weights` (at least one positive).
    pub(crate) fn new(weights: &[u32]) -> Mix {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut table = Vec::new();
        if total <= MAX_TABLE && weights.len() <= usize::from(u16::MAX) {
            let mut current: Vec<i64> = vec![0; weights.len()];
            for _ in 0..total {
                for (c, &w) in current.iter_mut().zip(weights) {
                    *c += i64::from(w);
                }
                let (best, _) = current
                    .iter()
                    .enumerate()
                    .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
                    .expect("weights is non-empty");
                current[best] -= total as i64;
                table.push(best as u16);
            }
        }
        Mix {
            table,
            weights: weights.to_vec(),
            total,
        }
    }

    /// The endpoint for request `i`.
    #[inline]
    pub(crate) fn pick<R: Rng>(&self, i: u64, rng: &mut R) -> usize {
        if !self.table.is_empty() {
            return usize::from(self.table[(i % self.table.len() as u64) as usize]);
        }
        let mut x = rng.gen_range(0..self.total);
        for (e, &w) in self.weights.iter().enumerate() {
            if x < u64::from(w) {
                return e;
            }
            x -= u64::from(w);
        }
        self.weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_window_matches_the_weights_and_zero_weight_never_runs() {
        let m = Mix::new(&[3, 1, 0, 2]);
        let mut rng = rand::thread_rng();
        let mut counts = [0; 4];
        for i in 0..600 {
            counts[m.pick(i, &mut rng)] += 1;
        }
        assert_eq!(counts, [300, 100, 0, 200]);
        // spread out: the heaviest endpoint never runs 3 times in a row
        let seq: Vec<_> = (0..6).map(|i| m.pick(i, &mut rng)).collect();
        assert!(
            !seq.windows(3).any(|w| w.iter().all(|&e| e == 0)),
            "{seq:?}"
        );
    }
}
