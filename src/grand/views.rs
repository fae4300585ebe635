//! GRAND's random views and consistency term: DropNode, the mixed-order propagation of a view,
//! sharpening and the squared-distance consistency loss.

use crate::graph::hops::NormalizedAdjacency;
use crate::neighbors::mixed_order;
use candle_core::{Result, Tensor, D};
use ndarray::{Array2, ArrayView2, Axis};
use rand::RngCore;

/// DropNode's mask: one flag per node, `true` (kept) with probability `1 − δ`, from `rng`. A node
/// is dropped when a uniform 32-bit draw is below `δ·2³²` (as [`crate::model::Dropout`] draws).
pub(super) fn dropnode_mask(rng: &mut impl RngCore, nodes: usize, dropnode: f32) -> Vec<bool> {
    let threshold = (f64::from(dropnode) * 4_294_967_296.0) as u64;
    (0..nodes).map(|_| u64::from(rng.next_u32()) >= threshold).collect()
}

/// The features with the rows of dropped nodes zeroed; kept rows are not rescaled (the official
/// code's convention: inference scales by `1 − δ` instead, [`inference_features`]).
pub(super) fn drop_nodes(x: ArrayView2<'_, f32>, keep: &[bool]) -> Array2<f32> {
    let mut out = x.to_owned();
    for (mut row, &kept) in out.axis_iter_mut(Axis(0)).zip(keep) {
        if !kept {
            row.fill(0.0);
        }
    }
    out
}

/// One training view: `X̄ = 1/(K+1)·Σ_{k=0..K} Â^k·X̃`, `X̃` the features with the dropped rows zeroed.
pub(super) fn view(
    adjacency: &NormalizedAdjacency,
    x: ArrayView2<'_, f32>,
    keep: &[bool],
    order: usize,
) -> Array2<f32> {
    mixed_order(adjacency, drop_nodes(x, keep), order)
}

/// The inference features: `(1 − δ)·X` propagated as a view is, the expectation of a training
/// view's input (no node dropped).
pub(super) fn inference_features(
    adjacency: &NormalizedAdjacency,
    x: ArrayView2<'_, f32>,
    dropnode: f32,
    order: usize,
) -> Array2<f32> {
    let scaled = x.mapv(|v| v * (1.0 - dropnode));
    mixed_order(adjacency, scaled, order)
}

/// Sharpening: `p_c^{1/T} / Σ_j p_j^{1/T}` per row of `p` (`n × C` probabilities).
pub(super) fn sharpen(p: &Tensor, temperature: f64) -> Result<Tensor> {
    let powered = p.powf(1.0 / temperature)?;
    powered.broadcast_div(&powered.sum_keepdim(D::Minus1)?)
}

/// GRAND's consistency loss over the views' probabilities `ps` (each `n × C`):
/// `1/S·Σ_s 1/n·Σ_i ‖sharpen(p̄)_i − p_s,i‖²`, `p̄` the mean of the views, the target detached (no
/// gradient flows through it).
pub(super) fn consistency(ps: &[Tensor], temperature: f64) -> Result<Tensor> {
    let Some(first) = ps.first() else { candle_core::bail!("consistency: no views") };
    let mut sum = first.clone();
    for p in &ps[1..] {
        sum = (sum + p)?;
    }
    let mean = (sum / ps.len() as f64)?;
    let target = sharpen(&mean, temperature)?.detach();
    let mut loss: Option<Tensor> = None;
    for p in ps {
        let term = (p - &target)?.sqr()?.sum(D::Minus1)?.mean_all()?;
        loss = Some(match loss {
            Some(l) => (l + term)?,
            None => term,
        });
    }
    let Some(loss) = loss else { candle_core::bail!("consistency: no views") };
    loss / ps.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeKind, NeighborGraph};
    use crate::neighbors::{propagate, PropagateConfig, PropagateMode};
    use crate::Dataset;
    use candle_core::{Device, Var};
    use ndarray::array;
    use rand::SeedableRng;

    /// The path a - b - c plus a lone d, and the adjacency over them in that order.
    fn path() -> (Dataset, NeighborGraph, NormalizedAdjacency) {
        let ids = ["a", "b", "c", "d"].map(String::from).to_vec();
        let x = array![[1.0f32, 0.0], [0.0, 1.0], [2.0, 2.0], [7.0, 8.0]];
        let ds = Dataset::new(ids, x, vec![2], None, None).unwrap();
        let mut g = NeighborGraph::new();
        g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge("b", "c", 1.0, EdgeKind::Explicit).unwrap();
        g.make_undirected();
        let row_of: Vec<Option<u32>> = g.ids().iter().map(|id| ds.position(id).map(|r| r as u32)).collect();
        let adjacency = NormalizedAdjacency::build(&g, &row_of, ds.len());
        (ds, g, adjacency)
    }

    #[test]
    fn dropnode_zeroes_whole_rows_without_rescaling() {
        let x = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let out = drop_nodes(x.view(), &[true, false, true]);
        assert_eq!(out, array![[1.0, 2.0], [0.0, 0.0], [5.0, 6.0]]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert!(dropnode_mask(&mut rng, 100, 0.0).iter().all(|&k| k));
        let mask = dropnode_mask(&mut rng, 10_000, 0.5);
        let kept = mask.iter().filter(|&&k| k).count();
        assert!((4_800..5_200).contains(&kept), "{kept}");
        // The same seed draws the same mask.
        let again = |s| dropnode_mask(&mut rand_chacha::ChaCha8Rng::seed_from_u64(s), 50, 0.3);
        assert_eq!(again(7), again(7));
    }

    #[test]
    fn a_view_is_propagate_s_mixed_mode_of_the_kept_rows() {
        let (ds, g, adjacency) = path();
        let cfg = PropagateConfig { hops: 3, mode: PropagateMode::Mixed, ..Default::default() };
        let full = propagate(&ds, &g, &cfg).unwrap();
        assert_eq!(view(&adjacency, ds.features(), &[true; 4], 3), full.features());
        // Dropping b is propagating the features with b's row zeroed.
        let keep = [true, false, true, true];
        let zeroed = Dataset::new(ds.ids().to_vec(), drop_nodes(ds.features(), &keep), vec![2], None, None).unwrap();
        assert_eq!(view(&adjacency, ds.features(), &keep, 3), propagate(&zeroed, &g, &cfg).unwrap().features());
        // Inference: (1 − δ)·X propagated; the lone d keeps (1 − δ)·x_d.
        let inference = inference_features(&adjacency, ds.features(), 0.25, 3);
        assert_eq!(inference.row(3).to_vec(), [5.25, 6.0]);
        let expected = full.features().mapv(|v| 0.75 * v);
        assert!(inference.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn sharpening_by_hand() {
        let p = Tensor::new(&[[0.75f32, 0.25], [0.5, 0.5]], &Device::Cpu).unwrap();
        // T = 0.5 squares: [0.5625, 0.0625] / 0.625 = [0.9, 0.1]; an even row stays even.
        let s = sharpen(&p, 0.5).unwrap().to_vec2::<f32>().unwrap();
        assert!((s[0][0] - 0.9).abs() < 1e-6 && (s[0][1] - 0.1).abs() < 1e-6, "{s:?}");
        assert_eq!(s[1], [0.5, 0.5]);
        // T = 1 leaves p as it is.
        assert_eq!(sharpen(&p, 1.0).unwrap().to_vec2::<f32>().unwrap(), p.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn consistency_by_hand_with_a_detached_target() {
        // Two views on two nodes. Node 1: views [1, 0] and [0.5, 0.5], mean [0.75, 0.25], sharpened
        // (T = 0.5) [0.9, 0.1]; distances² 0.01 + 0.01 = 0.02 and 0.16 + 0.16 = 0.32.
        // Node 2: views [0.5, 0.5] and [0.5, 0.5], target [0.5, 0.5], distances 0.
        // Loss = 1/2·((0.02 + 0)/2 + (0.32 + 0)/2) = 0.085.
        let a = Var::new(&[[1.0f32, 0.0], [0.5, 0.5]], &Device::Cpu).unwrap();
        let b = Var::new(&[[0.5f32, 0.5], [0.5, 0.5]], &Device::Cpu).unwrap();
        let loss = consistency(&[a.as_tensor().clone(), b.as_tensor().clone()], 0.5).unwrap();
        assert!((loss.to_scalar::<f32>().unwrap() - 0.085).abs() < 1e-6);
        // The target is constant: ∂L/∂p_s = 1/S·1/n·2·(p_s − target) = 0.5·(p_s − target).
        let grads = loss.backward().unwrap();
        let ga = grads.get(a.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!((ga[0][0] - 0.05).abs() < 1e-6 && (ga[0][1] + 0.05).abs() < 1e-6, "{ga:?}");
        let gb = grads.get(b.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!((gb[0][0] + 0.2).abs() < 1e-6 && gb[1] == [0.0, 0.0], "{gb:?}");
    }
}
