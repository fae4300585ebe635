//! Weighted distances between sample and neighbor outputs, with NSL's semantics
//! (`nsl.lib.pairwise_distance_wrapper`, `nsl.configs.DistanceConfig`).
//!
//! # Formula
//! For sources `s` (a sample's output, replicated once per neighbor) and targets `t` (the neighbors'
//! outputs), both `[M, d]`, and weights `w` (`[M]` or `[M, 1]`, the edge weights; 0 for padding):
//!
//! 1. `s, t ← T(s), T(t)` with the transform `T` (none, softmax or sigmoid over the axis);
//! 2. the distance `D`, elementwise `[M, d]`, or per vector `[M, 1]` when `sum_over_axis` is set:
//!    - `l1`: `|s − t|` (summed over the axis),
//!    - `l2`: `(s − t)²` (summed over the axis; **squared**, as NSL),
//!    - `cosine`: `1 − Σ ŝ·t̂` with `x̂ = x / sqrt(max(Σx², 1e-12))` (needs the axis),
//!    - `kl_divergence`: `Σ s·(log(s + 1e-7) − log(t + 1e-7))` (needs the axis),
//!    - `jensen_shannon_divergence`: `½ KL(s‖m) + ½ KL(t‖m)`, `m = (s + t)/2` (needs the axis);
//! 3. the reduction of `w·D` (with `w` broadcast to `D`'s shape):
//!    `none` → `w·D`; `sum` → `Σ w·D`; `mean` → `Σ w·D / Σ w`; `sum_over_batch_size` →
//!    `Σ w·D / numel(D)`; `sum_by_nonzero_weights` (NSL's default) → `Σ w·D / #{w ≠ 0}`, 0 when no
//!    weight is non-zero.
//!
//! With the default reduction and `l2`, this is `Σᵢⱼ wᵢⱼ‖sᵢ − tᵢⱼ‖² / #{(i,j): wᵢⱼ ≠ 0}` when
//! `sum_over_axis = Some(-1)` (NSL's tutorials) and that divided by `d` without it (NSL's library
//! default). NSL gets the per-vector form by rescaling elementwise means by `d`; summing over the
//! axis first is the same number.

use crate::config::{named, ConfigError};
use candle_core::{Result, Tensor, D};
use std::str::FromStr;

/// The distance between a sample's output and a neighbor's (`nsl.configs.DistanceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistanceType {
    /// `|s − t|`.
    L1,
    /// `(s − t)²`, the **squared** Euclidean distance (NSL's default).
    #[default]
    L2,
    /// `1 − cos(s, t)`.
    Cosine,
    /// `KL(s ‖ t)`; `s` and `t` must be distributions (use the softmax transform on logits).
    KlDivergence,
    /// Jensen–Shannon divergence of `s` and `t`.
    JensenShannonDivergence,
}

/// A transform applied to both sides before the distance (`nsl.configs.TransformType`, plus sigmoid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Use the outputs as they are (default).
    #[default]
    None,
    /// Softmax over the axis (the last one when `sum_over_axis` is unset).
    Softmax,
    /// Elementwise logistic sigmoid.
    Sigmoid,
}

/// How weighted distances become one number (`tf.compat.v1.losses.Reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// No reduction: `w·D`, one value per element (or per vector with `sum_over_axis`).
    None,
    /// `Σ w·D`.
    Sum,
    /// `Σ w·D / Σ w` (0 when `Σ w = 0`).
    Mean,
    /// `Σ w·D / numel(D)`.
    SumOverBatchSize,
    /// `Σ w·D / #{w ≠ 0}` (0 when no weight is non-zero). NSL's default.
    #[default]
    SumByNonzeroWeights,
}

impl DistanceType {
    /// Every name [`FromStr`] accepts, the short one of each distance first.
    pub(crate) const NAMES: &'static [(&'static str, DistanceType)] = &[
        ("l1", DistanceType::L1),
        ("l2", DistanceType::L2),
        ("cosine", DistanceType::Cosine),
        ("kl", DistanceType::KlDivergence),
        ("kl_divergence", DistanceType::KlDivergence),
        ("jsd", DistanceType::JensenShannonDivergence),
        ("jensen_shannon_divergence", DistanceType::JensenShannonDivergence),
    ];
}

/// Parses `l1`, `l2`, `cosine`, `kl` (or `kl_divergence`), `jsd` (or `jensen_shannon_divergence`).
impl FromStr for DistanceType {
    type Err = ConfigError;
    fn from_str(s: &str) -> std::result::Result<Self, ConfigError> {
        named("distance", Self::NAMES, s)
    }
}

impl Transform {
    /// Every name [`FromStr`] accepts.
    pub(crate) const NAMES: &'static [(&'static str, Transform)] =
        &[("none", Transform::None), ("softmax", Transform::Softmax), ("sigmoid", Transform::Sigmoid)];
}

/// Parses `none`, `softmax`, `sigmoid`.
impl FromStr for Transform {
    type Err = ConfigError;
    fn from_str(s: &str) -> std::result::Result<Self, ConfigError> {
        named("transform", Self::NAMES, s)
    }
}

impl Reduction {
    /// Every name [`FromStr`] accepts: the reductions to one number, then `none`.
    pub(crate) const NAMES: &'static [(&'static str, Reduction)] = &[
        ("sum_by_nonzero_weights", Reduction::SumByNonzeroWeights),
        ("sum", Reduction::Sum),
        ("mean", Reduction::Mean),
        ("sum_over_batch_size", Reduction::SumOverBatchSize),
        ("none", Reduction::None),
    ];
}

/// Parses `sum_by_nonzero_weights`, `sum`, `mean`, `sum_over_batch_size`, `none` (serde's names).
impl FromStr for Reduction {
    type Err = ConfigError;
    fn from_str(s: &str) -> std::result::Result<Self, ConfigError> {
        named("reduction", Self::NAMES, s)
    }
}

/// Which distance, transform and reduction to use (`nsl.configs.DistanceConfig`). `Default` is NSL's:
/// `l2`, no transform, `sum_by_nonzero_weights`, no `sum_over_axis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DistanceConfig {
    /// The distance. Default `l2`.
    pub distance: DistanceType,
    /// Transform of both sides before the distance. Default none.
    pub transform: Transform,
    /// The reduction. Default `sum_by_nonzero_weights`.
    pub reduction: Reduction,
    /// Axis to sum the distance over, giving one distance per (sample, neighbor) vector; negative
    /// counts from the end (`-1`: the last axis, as all NSL tutorials use). Required by `cosine`,
    /// `kl_divergence` and `jensen_shannon_divergence`. Default none (elementwise).
    pub sum_over_axis: Option<isize>,
}

/// The weighted, reduced distance between `sources` and `targets` (same shape, `[M, …]`) with
/// `weights` of shape `[M]` or `[M, 1]` (see the module docs for the formula).
///
/// Gradients flow into both sides; call `.detach()` on one side to stop them there.
///
/// # Errors
/// A candle error if the shapes do not match, or if the distance needs `sum_over_axis` and it is unset.
pub fn pairwise_distance(
    sources: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
    config: &DistanceConfig,
) -> Result<Tensor> {
    if sources.dims() != targets.dims() {
        candle_core::bail!("sources {:?} and targets {:?} differ in shape", sources.dims(), targets.dims());
    }
    let rows = sources.dim(0)?;
    if weights.elem_count() != rows {
        candle_core::bail!("{} weights for {rows} (sample, neighbor) pairs", weights.elem_count());
    }
    let axis = match config.sum_over_axis {
        Some(a) => Some(resolve_axis(a, sources.rank())?),
        None => None,
    };
    let (s, t) = (transform(sources, config.transform, axis)?, transform(targets, config.transform, axis)?);
    let distance = elementwise_or_vector_distance(&s, &t, config.distance, axis)?;
    reduce(&distance, weights, config.reduction)
}

fn resolve_axis(axis: isize, rank: usize) -> Result<usize> {
    let resolved = if axis < 0 { rank as isize + axis } else { axis };
    if resolved < 1 || resolved >= rank as isize {
        candle_core::bail!("sum_over_axis {axis} is not a feature axis of a rank-{rank} tensor");
    }
    Ok(resolved as usize)
}

fn transform(x: &Tensor, transform: Transform, axis: Option<usize>) -> Result<Tensor> {
    match transform {
        Transform::None => Ok(x.clone()),
        Transform::Softmax => match axis {
            Some(a) => candle_nn::ops::softmax(x, a),
            None => candle_nn::ops::softmax(x, D::Minus1),
        },
        Transform::Sigmoid => candle_nn::ops::sigmoid(x),
    }
}

const LOG_EPSILON: f64 = 1e-7;

fn elementwise_or_vector_distance(
    s: &Tensor,
    t: &Tensor,
    distance: DistanceType,
    axis: Option<usize>,
) -> Result<Tensor> {
    let summed = |x: Tensor| match axis {
        Some(a) => x.sum_keepdim(a),
        None => Ok(x),
    };
    let needs_axis = || {
        axis.ok_or_else(|| candle_core::Error::Msg(format!("the {distance:?} distance needs sum_over_axis (e.g. -1)")))
    };
    match distance {
        DistanceType::L1 => summed((s - t)?.abs()?),
        DistanceType::L2 => summed((s - t)?.sqr()?),
        DistanceType::Cosine => {
            let a = needs_axis()?;
            let unit = |x: &Tensor| -> Result<Tensor> {
                let norm = x.sqr()?.sum_keepdim(a)?.maximum(1e-12)?.sqrt()?;
                x.broadcast_div(&norm)
            };
            (unit(s)? * unit(t)?)?.sum_keepdim(a)?.affine(-1.0, 1.0)
        }
        DistanceType::KlDivergence => kl(s, t, needs_axis()?),
        DistanceType::JensenShannonDivergence => {
            let a = needs_axis()?;
            let m = ((s + t)? * 0.5)?;
            (kl(s, &m, a)? + kl(t, &m, a)?)? * 0.5
        }
    }
}

/// `Σ_axis p·(log(p + 1e-7) − log(q + 1e-7))`, kept as a size-1 axis.
fn kl(p: &Tensor, q: &Tensor, axis: usize) -> Result<Tensor> {
    let log_p = (p + LOG_EPSILON)?.log()?;
    let log_q = (q + LOG_EPSILON)?.log()?;
    (p * (log_p - log_q)?)?.sum_keepdim(axis)
}

fn reduce(distance: &Tensor, weights: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let rows = distance.dim(0)?;
    let mut shape = vec![1; distance.rank()];
    shape[0] = rows;
    let w = weights.to_dtype(distance.dtype())?.reshape(shape)?.broadcast_as(distance.shape())?;
    let weighted = (distance * &w)?;
    let total = || weighted.sum_all();
    match reduction {
        Reduction::None => Ok(weighted),
        Reduction::Sum => total(),
        Reduction::Mean => div_no_nan(&total()?, &w.sum_all()?),
        Reduction::SumOverBatchSize => total()? / distance.elem_count() as f64,
        Reduction::SumByNonzeroWeights => {
            let nonzero = w.ne(0.0)?.to_dtype(distance.dtype())?.sum_all()?;
            div_no_nan(&total()?, &nonzero)
        }
    }
}

/// `a / b`, or 0 where `b = 0` (TF's `div_no_nan`), for scalars.
fn div_no_nan(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let zero = b.eq(0.0)?;
    let safe_b = zero.where_cond(&Tensor::ones_like(b)?, b)?;
    zero.where_cond(&Tensor::zeros_like(a)?, &(a / safe_b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `f32` value of a scalar tensor.
    fn scalar(t: &Tensor) -> Result<f32> {
        t.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()
    }
    use candle_core::{Device, Var};

    fn t(rows: &[&[f32]]) -> Tensor {
        let d = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), d), &Device::Cpu).unwrap()
    }

    fn w(values: &[f32]) -> Tensor {
        Tensor::from_vec(values.to_vec(), (values.len(), 1), &Device::Cpu).unwrap()
    }

    /// Two (sample, neighbor) pairs and one padded pair: s − t = (1, 2), (3, −1), (5, 5).
    fn fixture() -> (Tensor, Tensor, Tensor) {
        let s = t(&[&[1.0, 2.0], &[3.0, 0.0], &[5.0, 5.0]]);
        let n = t(&[&[0.0, 0.0], &[0.0, 1.0], &[0.0, 0.0]]);
        (s, n, w(&[1.0, 0.5, 0.0]))
    }

    fn value(cfg: DistanceConfig) -> f32 {
        let (s, n, w) = fixture();
        scalar(&pairwise_distance(&s, &n, &w, &cfg).unwrap()).unwrap()
    }

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    #[test]
    fn names_parse_like_serde() {
        // Every name serde writes parses back, and the short names are accepted too.
        for (name, d) in DistanceType::NAMES {
            assert_eq!(name.parse::<DistanceType>().unwrap(), *d);
        }
        for d in [DistanceType::KlDivergence, DistanceType::JensenShannonDivergence, DistanceType::Cosine] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json.trim_matches('"').parse::<DistanceType>().unwrap(), d);
        }
        assert_eq!("sum_over_batch_size".parse::<Reduction>().unwrap(), Reduction::SumOverBatchSize);
        assert_eq!("softmax".parse::<Transform>().unwrap(), Transform::Softmax);
        let err = "l3".parse::<DistanceType>().unwrap_err();
        assert_eq!(err.to_string(), "invalid value `l3` for distance: expected l1, l2, cosine, kl or jsd");
        assert!("tanh".parse::<Transform>().unwrap_err().to_string().contains("none, softmax or sigmoid"));
    }

    #[test]
    fn l2_default_divides_by_d_and_nonzero_pairs() {
        // Σ w‖s−t‖² = 1·(1+4) + 0.5·(9+1) = 10; 2 non-zero pairs; d = 2.
        close(value(DistanceConfig::default()), 10.0 / (2.0 * 2.0));
        close(value(DistanceConfig { sum_over_axis: Some(-1), ..Default::default() }), 10.0 / 2.0);
    }

    #[test]
    fn l1_and_every_reduction() {
        // Σ w|s−t| per pair: 1·3 + 0.5·4 = 5; elementwise count 4 non-zero, numel 6, Σw (broadcast) = 3.
        let l1 = |reduction, axis| {
            value(DistanceConfig { distance: DistanceType::L1, reduction, sum_over_axis: axis, ..Default::default() })
        };
        close(l1(Reduction::Sum, None), 5.0);
        close(l1(Reduction::SumByNonzeroWeights, None), 5.0 / 4.0);
        close(l1(Reduction::Mean, None), 5.0 / 3.0);
        close(l1(Reduction::SumOverBatchSize, None), 5.0 / 6.0);
        close(l1(Reduction::Mean, Some(1)), 5.0 / 1.5);
        close(l1(Reduction::SumOverBatchSize, Some(-1)), 5.0 / 3.0);
        let (s, n, w) = fixture();
        let cfg = DistanceConfig {
            distance: DistanceType::L1,
            reduction: Reduction::None,
            sum_over_axis: Some(-1),
            ..Default::default()
        };
        let per_pair: Vec<f32> = pairwise_distance(&s, &n, &w, &cfg).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(per_pair, vec![3.0, 2.0, 0.0]);
    }

    #[test]
    fn zero_weights_give_zero_not_nan() {
        let (s, n, _) = fixture();
        let zeros = w(&[0.0, 0.0, 0.0]);
        for reduction in [Reduction::Mean, Reduction::SumByNonzeroWeights] {
            let cfg = DistanceConfig { reduction, ..Default::default() };
            assert_eq!(scalar(&pairwise_distance(&s, &n, &zeros, &cfg).unwrap()).unwrap(), 0.0);
        }
    }

    #[test]
    fn cosine_kl_and_jsd_match_hand_values() {
        let s = t(&[&[1.0, 0.0], &[0.6, 0.8]]);
        let n = t(&[&[0.0, 2.0], &[0.6, 0.8]]);
        let ones = w(&[1.0, 1.0]);
        let cfg = |distance| DistanceConfig { distance, sum_over_axis: Some(-1), ..Default::default() };
        // cos = 0 and 1 → distances 1 and 0, mean over 2 pairs.
        close(scalar(&pairwise_distance(&s, &n, &ones, &cfg(DistanceType::Cosine)).unwrap()).unwrap(), 0.5);
        // KL((0.6, 0.4) ‖ (0.5, 0.5)) = 0.6 ln 1.2 + 0.4 ln 0.8.
        let p = t(&[&[0.6, 0.4]]);
        let q = t(&[&[0.5, 0.5]]);
        let one = w(&[1.0]);
        let kl = 0.6f32 * 1.2f32.ln() + 0.4 * 0.8f32.ln();
        close(scalar(&pairwise_distance(&p, &q, &one, &cfg(DistanceType::KlDivergence)).unwrap()).unwrap(), kl);
        // JSD with m = (0.55, 0.45).
        let m = [0.55f32, 0.45];
        let jsd = 0.5 * (0.6 * (0.6 / m[0]).ln() + 0.4 * (0.4 / m[1]).ln())
            + 0.5 * (0.5 * (0.5 / m[0]).ln() + 0.5 * (0.5 / m[1]).ln());
        close(
            scalar(&pairwise_distance(&p, &q, &one, &cfg(DistanceType::JensenShannonDivergence)).unwrap()).unwrap(),
            jsd,
        );
        // Cosine without an axis is refused, as in NSL.
        let no_axis = DistanceConfig { distance: DistanceType::Cosine, ..Default::default() };
        assert!(pairwise_distance(&s, &n, &ones, &no_axis).is_err());
    }

    #[test]
    fn softmax_transform_applies_to_both_sides() {
        // softmax(0, ln 3) = (0.25, 0.75); softmax(0, 0) = (0.5, 0.5): squared distance 2·0.0625.
        let s = t(&[&[0.0, 3f32.ln()]]);
        let n = t(&[&[0.0, 0.0]]);
        let cfg = DistanceConfig { transform: Transform::Softmax, sum_over_axis: Some(-1), ..Default::default() };
        close(scalar(&pairwise_distance(&s, &n, &w(&[1.0]), &cfg).unwrap()).unwrap(), 0.125);
    }

    #[test]
    fn gradient_flows_into_both_sides() {
        // d/ds (s − t)² = 2(s − t), d/dt = −2(s − t), with one pair and d = 1.
        let s = Var::from_tensor(&t(&[&[3.0]])).unwrap();
        let n = Var::from_tensor(&t(&[&[1.0]])).unwrap();
        let loss = pairwise_distance(s.as_tensor(), n.as_tensor(), &w(&[1.0]), &DistanceConfig::default()).unwrap();
        let grads = loss.backward().unwrap();
        close(scalar(&grads.get(&s).unwrap().sum_all().unwrap()).unwrap(), 4.0);
        close(scalar(&grads.get(&n).unwrap().sum_all().unwrap()).unwrap(), -4.0);
    }
}
