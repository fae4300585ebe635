//! Graph regularization (`nsl.configs.GraphRegConfig`, `nsl.keras.GraphRegularization`).
//!
//! # Formula
//! `L = L_sup(y, f(x)) + multiplier · L_graph`, with
//! `L_graph = Reduce_{(i,j)} wᵢⱼ · D(f(xᵢ), f(xⱼ))` over the (sample, neighbor) pairs of the batch
//! ([`pairwise_distance`]). `f` is the model's output (logits), or a named hidden layer.
//!
//! # The contrastive distance (`distance=contrastive`, not in NSL)
//! Graph-MLP's neighbor contrastive loss (Hu et al. 2021), over the batch's centers `sᵢ` and their
//! neighbors `t_p`: with `c(a, b) = cos(a, b) / τ` (`temperature` τ, default 0.5, Graph-MLP's `tau = 2`),
//!
//! `ℓᵢ = −log( Σ_{p∈P(i)} w_p e^{c(sᵢ, t_p)} / ( Σ_{p∈P(i)} e^{c(sᵢ, t_p)} + Σ_{k≠i} e^{c(sᵢ, s_k)} ) )`,
//!
//! averaged over the centers that have a neighbor: it pulls a center towards its (r-hop) neighbors
//! and pushes it away from the batch's other centers. Graph-MLP takes the positives from the batch
//! itself (`Â^r` restricted to it); here they are the sampled neighbors, so a small batch still has
//! them. The per-edge-type multipliers only reweight a center's positives against each other.
//!
//! # Positives from the batch (`in-batch=true`, not in NSL)
//! With `in-batch`, a center's pairs are only its (r-hop) neighbors that are centers of the same
//! batch, as in Graph-MLP (`Â^r` restricted to the batch): no neighbor rows go through the model,
//! the "neighbor" outputs are the batch's own. Each pair `(i, j)` then appears once among the
//! negatives already, so the contrastive denominator is `Σ_{k≠i} e^{c(sᵢ, s_k)}` alone. The
//! other distances take the in-batch pairs as they come. Cheaper by the neighbors' forward pass;
//! a center's positives depend on which of its neighbors the batch drew (use a large
//! `neighbors=` and many unlabeled centers per batch).

use super::distance::{pairwise_distance, DistanceConfig, DistanceType, Reduction, Transform};
use crate::config::{key_values, ConfigError};
use crate::neighbors::{NeighborBatch, NeighborConfig};
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Graph-regularization settings. `Default` is NSL's (`multiplier` 0.01, `l2`, sum by non-zero
/// weights), except `max_neighbors`, which NSL defaults to 0 (off) and is 1 here.
///
/// The neighbors per sample are a [`NeighborConfig`] of their own: the neighbor tables are built
/// with it ([`NeighborTable::new`](crate::neighbors::NeighborTable::new)`(…, config.neighbors)`),
/// and the trainer takes the number from the table, so it is stated once, here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphRegConfig {
    /// Weight of the graph loss in the total loss. Default 0.01 (NSL); NSL's Cora tutorial uses 0.1.
    pub multiplier: f64,
    /// Neighbors per sample, best weight first (`neighbors=` in [`from_kv`](Self::from_kv)).
    /// Default 1. Serialized as `max_neighbors` (a number), as before it was a type.
    #[serde(rename = "max_neighbors")]
    pub neighbors: NeighborConfig,
    /// Distance, transform and reduction. Default: NSL's `DistanceConfig` (`l2`, sum by non-zero weights).
    pub distance: DistanceConfig,
    /// Regularize this named layer (e.g. `hidden1`) instead of the logits. Default: the logits.
    pub layer: Option<String>,
    /// Stop the gradient on the neighbor side (NSL lets it flow through both). Default false.
    pub stop_gradient: bool,
    /// Multiplier of edges between two labeled samples (Neural Graph Machines' α₁). Default:
    /// `multiplier`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplier_ll: Option<f64>,
    /// Multiplier of edges between a labeled and an unlabeled sample (α₂). Default: `multiplier`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplier_lu: Option<f64>,
    /// Multiplier of edges between two unlabeled samples (α₃; only with unlabeled centers). Default:
    /// `multiplier`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplier_uu: Option<f64>,
    /// Neighbors from r-hop neighborhoods: the graph is replaced by
    /// [`NeighborGraph::multi_hop`](crate::graph::NeighborGraph::multi_hop)`(hops, neighbors.max_neighbors)`
    /// (weights `Σ_{h≤R} Â^h`) by [`GraphRegConfig::neighbor_graph`]. Default 1 (the graph as it is).
    pub hops: usize,
    /// The contrastive distance's temperature τ (see the module docs): `Some` replaces `distance`
    /// by Graph-MLP's neighbor contrastive loss (`distance=contrastive`). Default `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contrastive: Option<f64>,
    /// Take each center's neighbors from the batch's own centers instead of sampling neighbor rows
    /// (see the module docs, "Positives from the batch"). Default false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_batch: bool,
}

/// The default temperature of `distance=contrastive` (Graph-MLP's `tau = 2` multiplies the
/// cosine, i.e. τ = 0.5).
pub const CONTRASTIVE_TEMPERATURE: f64 = 0.5;

impl Default for GraphRegConfig {
    fn default() -> Self {
        GraphRegConfig {
            multiplier: 0.01,
            neighbors: NeighborConfig::default(),
            distance: DistanceConfig::default(),
            layer: None,
            stop_gradient: false,
            multiplier_ll: None,
            multiplier_lu: None,
            multiplier_uu: None,
            hops: 1,
            contrastive: None,
            in_batch: false,
        }
    }
}

impl GraphRegConfig {
    /// The settings of NSL's tutorials, the base of [`from_kv`](Self::from_kv): the `Default`
    /// with `sum_over_axis = Some(-1)`, one distance per (sample, neighbor) pair rather than per
    /// element (NSL's library default, kept by `Default`, divides the `l2` loss by the output width).
    pub fn tutorial() -> Self {
        GraphRegConfig {
            distance: DistanceConfig { sum_over_axis: Some(-1), ..DistanceConfig::default() },
            ..GraphRegConfig::default()
        }
    }

    /// The keys [`from_kv`](Self::from_kv) knows.
    pub const KEYS: &'static [&'static str] = &[
        "multiplier",
        "multiplier-ll",
        "multiplier-lu",
        "multiplier-uu",
        "neighbors",
        "distance",
        "transform",
        "reduction",
        "sum-over-axis",
        "layer",
        "stop-gradient",
        "hops",
        "temperature",
        "in-batch",
    ];

    /// Parses `key=value` pairs (`nsl train --graph-reg`, e.g. `multiplier=0.1,neighbors=2`) over
    /// [`GraphRegConfig::tutorial`], then [validates](Self::validate) the result. Pairs are
    /// separated by commas, and `_` in a key is the same as `-`. The keys:
    ///
    /// - `multiplier`: a number ≥ 0 (default 0.01); sets all three edge types;
    /// - `multiplier-ll`, `multiplier-lu`, `multiplier-uu`: per edge type (labeled–labeled,
    ///   labeled–unlabeled, unlabeled–unlabeled, as Neural Graph Machines; default `multiplier`);
    /// - `hops`: neighbors from r-hop neighborhoods (default 1);
    /// - `neighbors` or `max-neighbors`: neighbors per sample (default 1);
    /// - `distance`: `l1`, `l2`, `cosine`, `kl` (`kl_divergence`), `jsd` (`jensen_shannon_divergence`),
    ///   or `contrastive` (Graph-MLP's neighbor contrastive loss, see the module docs) (default `l2`);
    /// - `temperature`: the contrastive distance's τ > 0 (default 0.5);
    /// - `transform`: `none`, `softmax`, `sigmoid` (default `none`);
    /// - `reduction`: `sum_by_nonzero_weights`, `sum`, `mean`, `sum_over_batch_size` (default
    ///   `sum_by_nonzero_weights`);
    /// - `sum-over-axis`: an axis, or `none` for elementwise distances (default `-1`);
    /// - `layer`: a hidden layer's name (default: the logits);
    /// - `stop-gradient`: `true` or `false` (default `false`);
    /// - `in-batch`: `true` takes a center's neighbors from the batch's centers only (Graph-MLP's
    ///   positives, see the module docs) (default `false`).
    ///
    /// ```
    /// use nsl::regularize::{DistanceType, GraphRegConfig};
    /// let config = GraphRegConfig::from_kv("multiplier=0.1,neighbors=2,distance=cosine").unwrap();
    /// assert_eq!((config.multiplier, config.neighbors.max_neighbors), (0.1, 2));
    /// assert_eq!(config.distance.distance, DistanceType::Cosine);
    /// assert_eq!(GraphRegConfig::from_kv("").unwrap(), GraphRegConfig::tutorial());
    /// assert!(GraphRegConfig::from_kv("colour=red").is_err());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the pair: not `key=value`, an unknown key, a value that does not
    /// parse (or `reduction=none`, which gives no single loss), or a value `validate` refuses.
    pub fn from_kv(spec: &str) -> std::result::Result<Self, ConfigError> {
        let mut config = GraphRegConfig::tutorial();
        let mut temperature = None;
        for kv in key_values("--graph-reg", spec) {
            let kv = kv?;
            match kv.key.as_str() {
                "multiplier" => config.multiplier = kv.parse("a number")?,
                "multiplier-ll" => config.multiplier_ll = Some(kv.parse("a number")?),
                "multiplier-lu" => config.multiplier_lu = Some(kv.parse("a number")?),
                "multiplier-uu" => config.multiplier_uu = Some(kv.parse("a number")?),
                "hops" => config.hops = kv.parse("a number of hops ≥ 1")?,
                "neighbors" | "max-neighbors" => {
                    let expected = "a number of neighbors ≥ 1";
                    config.neighbors.max_neighbors =
                        usize::try_from(kv.parse::<i64>(expected)?).map_err(|_| kv.invalid(expected))?;
                }
                "distance" if kv.value == "contrastive" => {
                    config.contrastive = Some(config.contrastive.unwrap_or(CONTRASTIVE_TEMPERATURE))
                }
                "distance" => {
                    config.distance.distance = kv
                        .named(DistanceType::NAMES)
                        .map_err(|_| kv.invalid("l1, l2, cosine, kl, jsd or contrastive"))?;
                    config.contrastive = None;
                }
                "temperature" => {
                    temperature = Some(kv.parse("a temperature > 0")?);
                }
                "transform" => config.distance.transform = kv.named(Transform::NAMES)?,
                "reduction" => {
                    config.distance.reduction = match kv.named(Reduction::NAMES)? {
                        Reduction::None => {
                            return Err(kv.invalid("a reduction to one loss (none gives one per pair; use sum)"))
                        }
                        reduction => reduction,
                    }
                }
                "sum-over-axis" => {
                    config.distance.sum_over_axis =
                        if kv.value == "none" { None } else { Some(kv.parse("an axis (e.g. -1) or none")?) }
                }
                "layer" => config.layer = Some(kv.value.to_string()),
                "stop-gradient" => config.stop_gradient = kv.parse("true or false")?,
                "in-batch" => config.in_batch = kv.parse("true or false")?,
                _ => return Err(kv.unknown(Self::KEYS)),
            }
        }
        match (&mut config.contrastive, temperature) {
            (Some(t), Some(given)) => *t = given,
            (None, Some(_)) => {
                return Err(ConfigError::invalid("graph-reg temperature", "set", "distance=contrastive"));
            }
            _ => {}
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] if `multiplier` is negative or not finite.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            return Err(ConfigError::invalid("graph-reg multiplier", self.multiplier, "a finite number ≥ 0"));
        }
        for (name, m) in [("ll", self.multiplier_ll), ("lu", self.multiplier_lu), ("uu", self.multiplier_uu)] {
            if let Some(m) = m.filter(|m| !(m.is_finite() && *m >= 0.0)) {
                return Err(ConfigError::invalid(format!("graph-reg multiplier-{name}"), m, "a finite number ≥ 0"));
            }
        }
        if let Some(t) = self.contrastive.filter(|t| !(t.is_finite() && *t > 0.0)) {
            return Err(ConfigError::invalid("graph-reg temperature", t, "a finite number > 0"));
        }
        self.neighbors.validate().map_err(|e| match e {
            ConfigError::InvalidValue { field, value, expected } => {
                ConfigError::InvalidValue { field: format!("graph-reg {field}"), value, expected }
            }
            e => e,
        })?;
        if !(1..=crate::graph::MAX_HOPS).contains(&self.hops) {
            return Err(ConfigError::invalid("graph-reg hops", self.hops, format!("1 to {}", crate::graph::MAX_HOPS)));
        }
        Ok(())
    }

    /// The multipliers of labeled–labeled, labeled–unlabeled and unlabeled–unlabeled edges.
    pub fn edge_multipliers(&self) -> [f64; 3] {
        let m = self.multiplier;
        [self.multiplier_ll.unwrap_or(m), self.multiplier_lu.unwrap_or(m), self.multiplier_uu.unwrap_or(m)]
    }

    /// The largest of [`edge_multipliers`](Self::edge_multipliers): the graph term's scale, each
    /// pair's weight being scaled by its type's multiplier over this one (exactly 1 when all three
    /// are equal).
    pub fn max_multiplier(&self) -> f64 {
        self.edge_multipliers().into_iter().fold(0.0, f64::max)
    }

    /// The graph the neighbors come from: `graph` itself, or its r-hop graph when `hops > 1`.
    ///
    /// # Errors
    /// [`ConfigError`] for hops out of range.
    pub fn neighbor_graph<'g>(
        &self,
        graph: &'g crate::graph::NeighborGraph,
    ) -> std::result::Result<std::borrow::Cow<'g, crate::graph::NeighborGraph>, ConfigError> {
        match self.hops {
            1 => Ok(std::borrow::Cow::Borrowed(graph)),
            hops => Ok(std::borrow::Cow::Owned(graph.multi_hop(hops, self.neighbors.max_neighbors.max(1))?)),
        }
    }
}

/// [`GraphRegConfig::from_kv`].
impl FromStr for GraphRegConfig {
    type Err = ConfigError;
    fn from_str(s: &str) -> std::result::Result<Self, ConfigError> {
        GraphRegConfig::from_kv(s)
    }
}

/// The graph loss `L_graph` (unscaled: the caller multiplies by `multiplier`) between the batch's
/// sample outputs `samples` (`[B, k]`) and the neighbor outputs `neighbors` (`[P, k]`, one row per
/// pair of `batch`; with [`GraphRegConfig::in_batch`], rows of `samples` themselves).
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
    let targets = if config.stop_gradient { neighbors.detach() } else { neighbors.clone() };
    if let Some(temperature) = config.contrastive {
        let positives = Positives::Rows { outputs: &targets, outside: !config.in_batch };
        return contrastive_loss(samples, positives, batch, temperature);
    }
    let sources = samples.index_select(&batch.sample_index, 0)?;
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

/// [`graph_loss`] with [`GraphRegConfig::in_batch`] pairs: pair `p`'s neighbor is row
/// `positions[p]` (u32, `[P]`) of `samples` itself, so no neighbor outputs are needed. The
/// contrastive distance then reads each pair's similarity from the batch's `[B, B]` similarities
/// instead of building `[P, k]` tensors (P is ~30 B with 2-hop neighborhoods).
///
/// # Errors
/// A candle error if the shapes do not match.
pub fn graph_loss_in_batch(
    samples: &Tensor,
    positions: &Tensor,
    batch: &NeighborBatch,
    config: &GraphRegConfig,
) -> Result<Tensor> {
    match config.contrastive {
        Some(temperature) if !config.stop_gradient && batch.weights.elem_count() > 0 => {
            contrastive_loss(samples, Positives::Samples(positions), batch, temperature)
        }
        _ => graph_loss(samples, &samples.index_select(positions, 0)?, batch, config),
    }
}

/// Where the contrastive loss finds each pair's neighbor.
enum Positives<'a> {
    /// In its own row of outputs (`[P, k]`); `outside`: not among the batch's centers, so the
    /// positive joins the denominator.
    Rows { outputs: &'a Tensor, outside: bool },
    /// At this position among the batch's samples (`[P]`, u32).
    Samples(&'a Tensor),
}

/// Graph-MLP's neighbor contrastive loss (see the module docs). Every exponent is shifted by
/// `−1/τ` (its maximum), so nothing overflows; the shift cancels in the ratio.
fn contrastive_loss(samples: &Tensor, positives: Positives, batch: &NeighborBatch, temperature: f64) -> Result<Tensor> {
    let (b, device) = (samples.dim(0)?, samples.device());
    let unit = |x: &Tensor| -> Result<Tensor> {
        // The floor goes under the square root: at a row of zeros (a sample without features,
        // such as Citeseer's 15) `sqrt`'s derivative is infinite, and 0 · ∞ would turn every
        // weight into NaN. Above the floor the values are those of `‖x‖` clamped at 1e-12.
        let norm = x.sqr()?.sum_keepdim(1)?.clamp(1e-24f32, f32::MAX)?.sqrt()?;
        x.broadcast_div(&norm)
    };
    let s = unit(samples)?;
    let inv = 1.0 / temperature;
    let similar = s.matmul(&s.t()?)?.affine(inv, -inv)?.exp()?;
    // Σ_{k≠i}: the whole row's sum less its diagonal term (no [B, B] mask kept for the gradient).
    let self_term = s.sqr()?.sum(1)?.affine(inv, -inv)?.exp()?;
    let neg = (similar.sum(1)? - self_term)?;
    let index: Vec<u32> = batch.sample_index.to_vec1()?;
    let (pos, outside) = match positives {
        Positives::Rows { outputs, outside } => {
            let t = unit(outputs)?;
            ((s.index_select(&batch.sample_index, 0)? * t)?.sum(1)?.affine(inv, -inv)?.exp()?, outside)
        }
        Positives::Samples(positions) => {
            let flat: Vec<u32> =
                index.iter().zip(positions.to_vec1::<u32>()?).map(|(&i, j)| i * b as u32 + j).collect();
            let flat = Tensor::from_vec(flat, index.len(), device)?;
            (similar.flatten_all()?.index_select(&flat, 0)?, false)
        }
    };
    // Which centers have a pair; sums over each center's pairs are scatter-adds (no [B, P] matrix).
    let mut has = vec![0f32; b];
    for &i in &index {
        has[i as usize] = 1.0;
    }
    let centers = has.iter().sum::<f32>().max(1.0);
    let zeros = Tensor::zeros(b, samples.dtype(), device)?;
    let per_center = |v: &Tensor| zeros.index_add(&batch.sample_index, v, 0);
    let numerator = per_center(&(&pos * &batch.weights)?)?;
    let denominator = if outside { (per_center(&pos)? + neg)? } else { neg };
    let has = Tensor::from_vec(has, b, device)?;
    let loss = ((denominator.affine(1.0, 1e-12)?.log()? - numerator.affine(1.0, 1e-12)?.log()?)? * has)?;
    loss.sum_all()? / centers as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn zero_neighbors_is_refused_by_the_config_not_only_the_flag() {
        let config = GraphRegConfig { neighbors: 0.into(), ..GraphRegConfig::default() };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("neighbors"), "{err}");
        assert!(GraphRegConfig::from_kv("neighbors=0").is_err());
        assert!(GraphRegConfig::from_kv("neighbors=1").is_ok());
    }

    fn batch(weights: Vec<f32>) -> NeighborBatch {
        let dev = Device::Cpu;
        let n = weights.len();
        NeighborBatch {
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

    #[test]
    fn the_contrastive_loss_matches_a_hand_computation() {
        // Two centers s₀ = (1, 0), s₁ = (0, 2); s₀ has neighbors t₀ = (1, 1) (w 1) and t₁ = (0, −1)
        // (w 0.5); s₁ has none. τ = 0.5: cos(s₀,t₀) = 1/√2, cos(s₀,t₁) = 0, cos(s₀,s₁) = 0.
        let dev = Device::Cpu;
        let samples = Tensor::new(&[[1.0f32, 0.0], [0.0, 2.0]], &dev).unwrap();
        let neighbors = Tensor::new(&[[1.0f32, 1.0], [0.0, -1.0]], &dev).unwrap();
        let batch = NeighborBatch {
            sample_index: Tensor::new(&[0u32, 0], &dev).unwrap(),
            weights: Tensor::new(&[1.0f32, 0.5], &dev).unwrap(),
            slots: 4,
        };
        let config = GraphRegConfig::from_kv("distance=contrastive,temperature=0.5").unwrap();
        let loss = graph_loss(&samples, &neighbors, &batch, &config).unwrap().to_scalar::<f32>().unwrap() as f64;
        let e = |c: f64| (c / 0.5).exp();
        let (p0, p1, n) = (e(1.0 / 2f64.sqrt()), e(0.0), e(0.0));
        let want = -((p0 + 0.5 * p1) / (p0 + p1 + n)).ln(); // averaged over the one center with neighbors
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        // Pulling t₀ onto s₀ lowers it.
        let closer = Tensor::new(&[[1.0f32, 0.1], [0.0, -1.0]], &dev).unwrap();
        let lower = graph_loss(&samples, &closer, &batch, &config).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!(lower < loss);
        assert!(GraphRegConfig::from_kv("temperature=0.5").is_err(), "temperature needs the contrastive distance");
        assert!(GraphRegConfig::from_kv("distance=contrastive,temperature=0").is_err());
        assert_eq!(GraphRegConfig::from_kv("distance=contrastive").unwrap().contrastive, Some(0.5));
    }

    /// Issue 26: a center whose output is all zeros (a sample without features) gives a finite
    /// loss and finite gradients, not NaN.
    #[test]
    fn the_contrastive_loss_is_finite_at_a_zero_row() {
        let dev = Device::Cpu;
        let var = candle_core::Var::new(&[[1.0f32, 0.0], [0.0, 0.0], [0.0, 1.0]], &dev).unwrap();
        let targets = Tensor::new(&[1u32, 0], &dev).unwrap();
        let batch = NeighborBatch {
            sample_index: Tensor::new(&[0u32, 1], &dev).unwrap(),
            weights: Tensor::new(&[1.0f32, 1.0], &dev).unwrap(),
            slots: 2,
        };
        let config = GraphRegConfig::from_kv("distance=contrastive,in-batch=true").unwrap();
        let loss = graph_loss_in_batch(var.as_tensor(), &targets, &batch, &config).unwrap();
        assert!(loss.to_scalar::<f32>().unwrap().is_finite());
        let grads = loss.backward().unwrap();
        let g = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    }

    #[test]
    fn the_in_batch_contrastive_loss_matches_a_hand_computation() {
        // Three centers s₀ = (1, 0), s₁ = (1, 1), s₂ = (0, 1); pairs (0→1, w 1), (0→2, w 0.5),
        // (2→1, w 1), the neighbors being the centers themselves. τ = 1, c(a, b) = cos(a, b):
        // c₀₁ = c₁₂ = 1/√2, c₀₂ = 0. Graph-MLP: ℓᵢ = −log(Σⱼ wᵢⱼ e^{cᵢⱼ} / Σ_{k≠i} e^{cᵢₖ}), averaged
        // over centers 0 and 2 (s₁ has no pair).
        let dev = Device::Cpu;
        let samples = Tensor::new(&[[1.0f32, 0.0], [1.0, 1.0], [0.0, 1.0]], &dev).unwrap();
        let targets = Tensor::new(&[1u32, 2, 1], &dev).unwrap();
        let neighbors = samples.index_select(&targets, 0).unwrap();
        let batch = NeighborBatch {
            sample_index: Tensor::new(&[0u32, 0, 2], &dev).unwrap(),
            weights: Tensor::new(&[1.0f32, 0.5, 1.0], &dev).unwrap(),
            slots: 3,
        };
        let config = GraphRegConfig::from_kv("distance=contrastive,temperature=1,in-batch=true").unwrap();
        assert!(config.in_batch);
        let loss = graph_loss(&samples, &neighbors, &batch, &config).unwrap().to_scalar::<f32>().unwrap() as f64;
        let (c, one) = ((1.0 / 2f64.sqrt()).exp(), 1.0f64);
        let l0 = -((c + 0.5 * one) / (c + one)).ln();
        let l2 = -(c / (c + one)).ln();
        let want = (l0 + l2) / 2.0;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        // The same from the positions (the similarities read from the [B, B] matrix).
        let read = graph_loss_in_batch(&samples, &targets, &batch, &config).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((read - want).abs() < 1e-5, "{read} vs {want}");
        // Sampled positives (in-batch off) add them to the denominator once more: a larger loss.
        let outside = GraphRegConfig { in_batch: false, ..config };
        let sampled = graph_loss(&samples, &neighbors, &batch, &outside).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!(sampled > loss + 0.1, "{sampled} vs {loss}");
        assert!(GraphRegConfig::from_kv("in-batch=maybe").is_err());
        assert!(!GraphRegConfig::from_kv("distance=contrastive").unwrap().in_batch);
    }

    #[test]
    fn kv_keys_values_and_defaults() {
        let c = GraphRegConfig::from_kv("multiplier=0.1,neighbors=2,distance=cosine,stop-gradient=true").unwrap();
        assert_eq!(c.multiplier, 0.1);
        assert_eq!(c.neighbors.max_neighbors, 2);
        assert_eq!(c.distance.distance, DistanceType::Cosine);
        assert_eq!(c.distance.sum_over_axis, Some(-1));
        assert!(c.stop_gradient);
        // The aliases, `_` for `-`, and the base: NSL's default but one distance per pair.
        let c = GraphRegConfig::from_kv(
            "max_neighbors=3,distance=kl_divergence,transform=softmax,reduction=mean,sum_over_axis=none,layer=h1",
        )
        .unwrap();
        assert_eq!((c.neighbors.max_neighbors, c.layer.as_deref()), (3, Some("h1")));
        assert_eq!(
            c.distance,
            DistanceConfig {
                distance: DistanceType::KlDivergence,
                transform: Transform::Softmax,
                reduction: Reduction::Mean,
                sum_over_axis: None
            }
        );
        let base = GraphRegConfig::from_kv("").unwrap();
        assert_eq!(
            base,
            GraphRegConfig {
                distance: DistanceConfig { sum_over_axis: Some(-1), ..Default::default() },
                ..Default::default()
            }
        );
        assert_eq!(GraphRegConfig::default().distance.sum_over_axis, None);
    }

    #[test]
    fn kv_errors_name_the_key_and_value() {
        let err = |spec: &str| GraphRegConfig::from_kv(spec).unwrap_err().to_string();
        assert_eq!(err("multiplier=-1"), "invalid value `-1` for graph-reg multiplier: expected a finite number ≥ 0");
        assert!(err("neighbors=-1").contains("`neighbors` in --graph-reg"), "{}", err("neighbors=-1"));
        assert_eq!(
            err("colour=red"),
            "unknown key `colour` in --graph-reg (known: multiplier, multiplier-ll, multiplier-lu, multiplier-uu, \
             neighbors, distance, transform, reduction, sum-over-axis, layer, stop-gradient, hops, temperature, in-batch)"
        );
        assert_eq!(
            err("distance=l3"),
            "invalid value `l3` for `distance` in --graph-reg: expected l1, l2, cosine, kl, jsd or contrastive"
        );
        assert!(err("reduction=none").contains("use sum"));
        assert_eq!(err("multiplier"), "`multiplier` in --graph-reg is not KEY=VALUE");
        assert!(matches!(GraphRegConfig::from_kv("stop-gradient=yes"), Err(ConfigError::InvalidValue { .. })));
    }
}
