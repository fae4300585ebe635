//! Top-k candidate lists that stay exact although they are filled from `f32` values.
//!
//! A list keeps every candidate that could still be among the `k` best by the exact `f64`
//! cosine. With `m` the error bound of the `f32` values ([`super::kernel::margin`]) and `v_k`
//! the `k`-th largest `f32` value seen, a candidate with value `v < v_k − 2m` has an exact
//! similarity `< v_k − m`, below that of `k` others (each `≥ v_k − m`), so it can be dropped.
//! [`Candidates::finish`] then ranks the survivors by the exact cosine.

/// The candidate neighbors of one node.
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    /// `(f32 similarity, compact index)`, unordered, possibly with repeats (LSH rounds).
    items: Vec<(f32, u32)>,
    /// Values below this cannot make the top `k` (or are below the threshold's margin).
    floor: f32,
    /// Prune when the list reaches this length.
    cap: usize,
}

impl Candidates {
    /// An empty list that accepts values `≥ lo` (the threshold minus the margin).
    pub fn new(lo: f32, k: usize) -> Self {
        Candidates { items: Vec::new(), floor: lo, cap: min_cap(k) }
    }

    /// The smallest value still worth pushing.
    #[inline]
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// Adds a candidate if its value reaches the floor; prunes when the list is full.
    #[inline]
    pub fn push(&mut self, value: f32, index: u32, k: usize, margin2: f32) {
        if value >= self.floor {
            self.items.push((value, index));
            if self.items.len() >= self.cap {
                self.prune(k, margin2);
            }
        }
    }

    /// Drops repeats and every candidate that cannot be among the `k` best (see the module doc;
    /// `margin2` is twice the error bound).
    pub fn prune(&mut self, k: usize, margin2: f32) {
        // Repeats first: k copies of one neighbor must not push out the true k-th best.
        self.dedup();
        if self.items.len() > k {
            // k ≥ 1 (validated), so k − 1 is an index of the list.
            let (_, kth, _) = self.items.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            let floor = kth.0 - margin2;
            if floor > self.floor {
                self.floor = floor;
            }
            let f = self.floor;
            self.items.retain(|c| c.0 >= f);
        }
        self.cap = min_cap(k).max(2 * self.items.len());
    }

    /// Drops repeated indices (keeping the largest value of each).
    fn dedup(&mut self) {
        self.items.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)));
        self.items.dedup_by_key(|c| c.1);
    }

    /// The `k` best candidates by exact similarity `sim(j)`, among those with `sim(j) ≥ threshold`,
    /// best first; ties go to the smaller index.
    pub fn finish(mut self, k: usize, threshold: f64, sim: impl Fn(u32) -> f64) -> Vec<(u32, f64)> {
        self.dedup();
        let mut exact: Vec<(u32, f64)> =
            self.items.iter().map(|&(_, j)| (j, sim(j))).filter(|&(_, s)| s >= threshold).collect();
        exact.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        exact.truncate(k);
        exact
    }
}

fn min_cap(k: usize) -> usize {
    2 * k + 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_best_by_exact_similarity() {
        let mut c = Candidates::new(-1.0, 2);
        // f32 values close together: the exact ranking decides.
        for (v, j) in [(0.50, 7), (0.90, 1), (0.9001, 2), (0.8999, 3), (0.1, 4), (0.90, 1)] {
            c.push(v, j, 2, 0.001);
        }
        let exact = |j: u32| [0.0, 0.9, 0.89, 0.91, 0.1, 0.0, 0.0, 0.5][j as usize];
        assert_eq!(c.finish(2, -1.0, exact), vec![(3, 0.91), (1, 0.9)]);
    }

    #[test]
    fn pruning_never_drops_a_possible_winner() {
        let k = 3;
        let mut c = Candidates::new(-1.0, k);
        for j in 0..1000u32 {
            c.push(j as f32 / 1000.0, j, k, 0.01);
        }
        // The three largest values and all within 2·margin of the 3rd survive.
        c.prune(k, 0.01);
        assert!(c.items.iter().all(|&(v, _)| v >= 0.997 - 0.01 - 1e-6));
        assert!(c.items.iter().any(|&(_, j)| j == 999));
        assert!(c.items.len() <= 14);
        assert_eq!(c.finish(k, 0.0, |j| j as f64).iter().map(|p| p.0).collect::<Vec<_>>(), vec![999, 998, 997]);
    }

    #[test]
    fn threshold_filters_and_ties_go_to_smaller_index() {
        let mut c = Candidates::new(0.0, 5);
        for j in [4u32, 2, 9, 1] {
            c.push(0.5, j, 5, 0.0);
        }
        let sims = |j: u32| if j == 9 { 0.4 } else { 0.5 };
        assert_eq!(c.finish(5, 0.45, sims), vec![(1, 0.5), (2, 0.5), (4, 0.5)]);
    }
}
