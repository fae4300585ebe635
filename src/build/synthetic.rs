//! Synthetic embeddings for benchmarks and tests: Gaussian clusters with a fixed seed.
//!
//! The recipe is the one of the NSL baseline benchmark (`nsl_build_graph_bench.py`), so edge
//! counts are comparable (the random streams differ: numpy's PCG64 there, ChaCha8 here):
//! `clusters` centres `c_k ~ N(0, I_d)`; each point picks a cluster `k_i` uniformly, a scale
//! `s_i ~ U(0.2, 0.5)`, and is `x_i = c_{k_i} + s_i · z_i` with `z_i ~ N(0, I_d)`. Points are not
//! normalized. The baseline uses `clusters = N / 50`.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// Rows drawn per random stream; fixed so the output does not depend on the thread count.
const ROWS_PER_STREAM: usize = 4096;

/// `n × d` points in `clusters` Gaussian clusters (see the module doc), and each point's cluster.
/// The same `(n, d, clusters, seed)` always gives the same points, on any number of threads.
/// `clusters` is raised to 1 if 0.
pub fn gaussian_clusters(n: usize, d: usize, clusters: usize, seed: u64) -> (Array2<f32>, Vec<u32>) {
    let clusters = clusters.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f64> = (0..clusters * d).map(|_| rng.sample(StandardNormal)).collect();
    let assign: Vec<u32> = (0..n).map(|_| rng.random_range(0..clusters) as u32).collect();
    let scale: Vec<f64> = (0..n).map(|_| rng.random_range(0.2..0.5)).collect();
    let mut x = Array2::<f32>::zeros((n, d));
    if let Some(data) = x.as_slice_mut() {
        data.par_chunks_mut((ROWS_PER_STREAM * d).max(1)).enumerate().for_each(|(chunk, out)| {
            // Noise of each chunk of rows from its own stream, so chunks can be drawn in parallel.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(chunk as u64 + 1);
            for (r, row) in out.chunks_mut(d.max(1)).enumerate() {
                let i = chunk * ROWS_PER_STREAM + r;
                let c = &centres[assign[i] as usize * d..(assign[i] as usize + 1) * d];
                for (v, &m) in row.iter_mut().zip(c) {
                    let z: f64 = rng.sample(StandardNormal);
                    *v = (m + scale[i] * z) as f32;
                }
            }
        });
    }
    (x, assign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_clustered() {
        let (a, ka) = gaussian_clusters(300, 8, 3, 5);
        let (b, kb) = gaussian_clusters(300, 8, 3, 5);
        assert_eq!((a.clone(), ka.clone()), (b, kb));
        assert_ne!(a, gaussian_clusters(300, 8, 3, 6).0);
        assert!(ka.iter().all(|&k| k < 3));
        // Points of a cluster are closer to each other (noise ≤ 0.5) than to other clusters' points.
        let dist = |i: usize, j: usize| (&a.row(i) - &a.row(j)).mapv(|v| v * v).sum().sqrt();
        let same = (1..300).find(|&j| ka[j] == ka[0]).unwrap();
        let other = (1..300).find(|&j| ka[j] != ka[0]).unwrap();
        assert!(dist(0, same) < dist(0, other));
    }
}
