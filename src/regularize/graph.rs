//! Graph regularization (`nsl.configs.GraphRegConfig`, `nsl.keras.GraphRegularization`).
//!
//! # Formula
//! `L = L_sup(y, f(x)) + multiplier · L_graph`, with
//! `L_graph = Reduce_{(i,j)} wᵢⱼ · D(f(xᵢ), f(xⱼ))` over the (sample, neighbor) pairs of the batch
//! ([`pairwise_distance`]). `f` is the model's output (logits), or a named hidden layer.

use super::distance::{pairwise_distance, DistanceConfig, Reduction};
use crate::neighbors::NeighborBatch;
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Graph-regularization settings. `Default` is NSL's (`multiplier` 0.01, `l2`, sum by non-zero
/// weights), except `max_neighbors`, which NSL defaults to 0 (off) and is 1 here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphRegConfig {
    /// Weight of the graph loss in the total loss. Default 0.01 (NSL); NSL's Cora tutorial uses 0.1.
    pub multiplier: f64,
    /// Neighbors per sample, best weight first. Default 1.
    pub max_neighbors: usize,
    /// Distance, transform and reduction. Default: NSL's `DistanceConfig` (`l2`, sum by non-zero weights).
    pub distance: DistanceConfig,
    /// Regularize this named layer (e.g. `hidden1`) instead of the logits. Default: the logits.
    pub layer: Option<String>,
    /// Stop the gradient on the neighbor side (NSL lets it flow through both). Default false.
    pub stop_gradient: bool,
}

impl Default for GraphRegConfig {
    fn default() -> Self {
        GraphRegConfig {
            multiplier: 0.01,
            max_neighbors: 1,
            distance: DistanceConfig::default(),
            layer: None,
            stop_gradient: false,
        }
    }
}

impl GraphRegConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the field if `multiplier` is negative or not finite.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            return Err(format!("graph-reg multiplier {} must be a finite number ≥ 0", self.multiplier));
        }
        Ok(())
    }
}

/// The graph loss `L_graph` (unscaled: the caller multiplies by `multiplier`) between the batch's
/// sample outputs `samples` (`[B, k]`) and the neighbor outputs `neighbors` (`[P, k]`, one row per
/// pair of `batch`).
///
/// Zero-weight (padding) pairs are never in `batch`; for `sum_over_batch_size` the count is NSL's
/// padded `B · max_neighbors` slots. With no pairs the loss is 0.
///
/// # Errors
/// A candle error if the shapes do not match.
pub fn graph_loss(
    samples: &Tensor,
    neighbors: &Tensor,
    batch: &NeighborBatch,
    config: &GraphRegConfig,
) -> Result<Tensor> {
    if batch.weights.elem_count() == 0 {
        return Tensor::zeros((), samples.dtype(), samples.device());
    }
    let sources = samples.index_select(&batch.sample_index, 0)?;
    let targets = if config.stop_gradient { neighbors.detach() } else { neighbors.clone() };
    let distance = &config.distance;
    if distance.reduction == Reduction::SumOverBatchSize {
        let summed = DistanceConfig { reduction: Reduction::Sum, ..*distance };
        let per_slot = (sources.elem_count() / sources.dim(0)?.max(1)) as f64;
        let elements =
            if distance.sum_over_axis.is_some() { batch.slots as f64 } else { batch.slots as f64 * per_slot };
        return pairwise_distance(&sources, &targets, &batch.weights, &summed)? / elements.max(1.0);
    }
    pairwise_distance(&sources, &targets, &batch.weights, distance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn batch(weights: Vec<f32>) -> NeighborBatch {
        let dev = Device::Cpu;
        let n = weights.len();
        NeighborBatch {
            features: Tensor::zeros((n, 1), candle_core::DType::F32, &dev).unwrap(),
            sample_index: Tensor::from_vec((0..n as u32).map(|i| i / 2).collect::<Vec<u32>>(), n, &dev).unwrap(),
            weights: Tensor::from_vec(weights, n, &dev).unwrap(),
            slots: n,
        }
    }

    #[test]
    fn two_neighbors_average_over_pairs() {
        // NSL's `_test_training_with_two_neighbors`: [(ŷ−ŷ₀)² + (ŷ−ŷ₁)²] / 2.
        let dev = Device::Cpu;
        let samples = Tensor::new(&[[2.0f32]], &dev).unwrap();
        let neighbors = Tensor::new(&[[1.0f32], [4.0]], &dev).unwrap();
        let loss = graph_loss(&samples, &neighbors, &batch(vec![1.0, 1.0]), &GraphRegConfig::default()).unwrap();
        assert_eq!(loss.to_scalar::<f32>().unwrap(), (1.0 + 4.0) / 2.0);
    }

    #[test]
    fn zero_without_pairs_positive_with() {
        let dev = Device::Cpu;
        let samples = Tensor::new(&[[2.0f32]], &dev).unwrap();
        let empty = NeighborBatch {
            features: Tensor::zeros((0, 1), candle_core::DType::F32, &dev).unwrap(),
            sample_index: Tensor::zeros(0, candle_core::DType::U32, &dev).unwrap(),
            weights: Tensor::zeros(0, candle_core::DType::F32, &dev).unwrap(),
            slots: 1,
        };
        let none = graph_loss(&samples, &samples, &empty, &GraphRegConfig::default()).unwrap();
        assert_eq!(none.to_scalar::<f32>().unwrap(), 0.0);
        let neighbors = Tensor::new(&[[1.0f32]], &dev).unwrap();
        let some = graph_loss(&samples, &neighbors, &batch(vec![0.5]), &GraphRegConfig::default()).unwrap();
        assert!(some.to_scalar::<f32>().unwrap() > 0.0);
    }
}
