//! Feature propagation over a graph: SGC's `Â^K·X`, SIGN's `[X, ÂX, …, Â^K X]`, APPNP's personalized
//! PageRank and S²GC's mixed-order mean.
//!
//! # Modes
//! - `sgc`: `Â^K·X` (Wu et al. 2019).
//! - `sign`: `[X, ÂX, …, Â^K X]` side by side (Frasca et al. 2020).
//! - `appnp`: `K` steps of `Z ← (1 − α)·Â·Z + α·X` from `Z = X` (Gasteiger et al. 2019): the
//!   personalized-PageRank smoothing, which keeps a share `α` of each node's own features however
//!   large `K` is, so it does not over-smooth as `Â^K·X` does.
//! - `mixed`: `1/(K+1)·Σ_{k=0..K} Â^k·X`, the mean over every order (S²GC, Zhu & Koniusz 2021;
//!   GRAND's mixed-order propagation, Feng et al. 2020). S²GC's own formula is
//!   `1/K·Σ_{k=1..K} ((1 − α)·Â^k·X + α·X)`; with `α = 1/(K+1)` it is this mean.
//!
//! # How it is computed
//! `Â = D^-1/2 (A + I) D^-1/2` is the symmetrically normalized adjacency with self-loops (SGC, Wu
//! et al. 2019), over the samples only: `A_ij` is the weight of the edge between samples `i` and
//! `j`. A graph that is not symmetric is made symmetric with the larger weight of the two
//! directions (as [`NeighborGraph::make_undirected`]), the graph's own self-loops are ignored
//! (the diagonal of `A + I` is exactly 1), and graph nodes that are not samples are ignored with
//! their edges (all of it counted in the [`PropagateReport`]). A sample without any edge to another
//! sample has `Â_ii = 1` and keeps its own features.
//!
//! `Â` is a CSR matrix; each product `Â·Y` computes the output rows in parallel (rayon), each row a
//! sum in a fixed order, so the result does not depend on the thread count. Memory: the input, the
//! output and one `n × d` buffer (SGC), or the `n × (K+1)·d` output (SIGN).

use crate::data::{DataError, Dataset};
use crate::graph::hops::NormalizedAdjacency;
use crate::graph::{NeighborGraph, MAX_HOPS};
use ndarray::{s, Array2};
use std::fmt;

/// Which features [`propagate`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PropagateMode {
    /// `Â^K·X`: the features smoothed over `K` hops, the same width as `X` (SGC). The default.
    #[default]
    Sgc,
    /// `[X, ÂX, Â²X, …, Â^K X]` side by side: `(K + 1)·d` features (SIGN-style, Frasca et al. 2020),
    /// so a model can weigh each hop itself.
    Sign,
    /// `K` steps of `Z ← (1 − α)·Â·Z + α·X` from `Z = X`: personalized PageRank (APPNP, Gasteiger et
    /// al. 2019), the same width as `X`; `α` is [`PropagateConfig::alpha`].
    Appnp,
    /// `1/(K+1)·Σ_{k=0..K} Â^k·X`, the mean of every order from 0 to `K` (S²GC / GRAND's mixed-order
    /// propagation), the same width as `X`.
    Mixed,
}

impl PropagateMode {
    /// The name on the command line: `sgc` or `sign`.
    pub fn as_str(self) -> &'static str {
        match self {
            PropagateMode::Sgc => "sgc",
            PropagateMode::Sign => "sign",
            PropagateMode::Appnp => "appnp",
            PropagateMode::Mixed => "mixed",
        }
    }

    /// `K` when none is given: 10 for `appnp` (APPNP's choice), 16 for `mixed` (S²GC's on Cora), 2
    /// otherwise (SGC's on Cora; [`PropagateConfig::default`]).
    pub fn default_hops(self) -> usize {
        match self {
            PropagateMode::Appnp => 10,
            PropagateMode::Mixed => 16,
            PropagateMode::Sgc | PropagateMode::Sign => 2,
        }
    }

    /// The formula, for reports: `Â^K·X`, `[X, ÂX, …, Â^K X]`, …
    pub fn formula(self) -> &'static str {
        match self {
            PropagateMode::Sgc => "Â^K·X",
            PropagateMode::Sign => "[X, ÂX, …, Â^K X]",
            PropagateMode::Appnp => "Z ← (1−α)ÂZ + αX",
            PropagateMode::Mixed => "mean of Â^k·X, k = 0…K",
        }
    }
}

impl fmt::Display for PropagateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `sgc`, `sign`, `appnp` or `mixed`.
impl std::str::FromStr for PropagateMode {
    type Err = crate::config::ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::config::named(
            "propagation mode",
            &[
                ("sgc", PropagateMode::Sgc),
                ("sign", PropagateMode::Sign),
                ("appnp", PropagateMode::Appnp),
                ("mixed", PropagateMode::Mixed),
            ],
            s,
        )
    }
}

/// Options of [`propagate`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PropagateConfig {
    /// `K`, the power of `Â`, in `1..=`[`MAX_HOPS`]. Default 2 (SGC's choice for Cora).
    pub hops: usize,
    /// What to write. Default [`PropagateMode::Sgc`].
    pub mode: PropagateMode,
    /// Divide each feature row by the sum of its absolute values (L1) before propagating, as the
    /// GCN and SGC pipelines do with bag-of-words features (a row of zeros stays zero); in SIGN
    /// mode the first block is then the normalized `X`. Default false (the features as given).
    pub row_normalize: bool,
    /// `α` of [`PropagateMode::Appnp`], the share of the node's own features kept at each step, in
    /// `[0, 1]` (0 gives `Â^K·X`, 1 gives `X`); the other modes ignore it. Default 0.1 (APPNP's).
    pub alpha: f64,
}

impl Default for PropagateConfig {
    fn default() -> Self {
        PropagateConfig { hops: 2, mode: PropagateMode::Sgc, row_normalize: false, alpha: 0.1 }
    }
}

impl PropagateConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`PropagateError::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<(), PropagateError> {
        if !(1..=MAX_HOPS).contains(&self.hops) {
            return Err(PropagateError::InvalidConfig {
                option: "hops",
                value: self.hops.to_string(),
                // `MAX_HOPS`, spelled out for a `&'static str` (checked by `rejects_bad_hops`).
                expected: "an integer from 1 to 64",
            });
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(PropagateError::InvalidConfig {
                option: "alpha",
                value: self.alpha.to_string(),
                expected: "a number from 0 to 1",
            });
        }
        Ok(())
    }
}

/// What can go wrong in [`propagate`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PropagateError {
    /// A setting out of range.
    #[error("invalid {option} `{value}`: expected {expected}")]
    InvalidConfig {
        /// The setting (a [`PropagateConfig`] field).
        option: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// More samples than 32-bit row indices can address.
    #[error("{rows} samples: at most 4294967295 are supported")]
    TooManyRows {
        /// Number of samples.
        rows: usize,
    },
    /// The samples hold token ids, which averaging over neighbors would turn into meaningless values.
    #[error("feature group `{group}` holds token ids: propagation averages dense features only")]
    TokenIds {
        /// The token group.
        group: String,
    },
    /// The propagated features do not form a valid dataset (e.g. an overflow to infinity).
    #[error(transparent)]
    Data(#[from] DataError),
}

/// How the graph met the samples in a [`propagate`] run (serializable for `--json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PropagateReport {
    /// Whether the rows were L1-normalized before propagating.
    pub row_normalized: bool,
    /// Samples (rows of the input and of the output).
    pub samples: usize,
    /// Width of the input features.
    pub input_dim: usize,
    /// Width of the output features: `d` (SGC) or `(K + 1)·d` (SIGN).
    pub output_dim: usize,
    /// `K`.
    pub hops: usize,
    /// The mode.
    pub mode: PropagateMode,
    /// `α`, in [`PropagateMode::Appnp`] only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Samples without any edge to another sample: they keep their own features.
    pub isolated_samples: usize,
    /// Graph nodes that are not samples, ignored with their edges.
    pub ignored_nodes: usize,
    /// Directed edges with an end that is not a sample.
    pub ignored_edges: usize,
    /// Self-loops of the graph, ignored (the diagonal of `A + I` is 1).
    pub ignored_self_loops: usize,
    /// Directed edges between samples whose reverse is missing or weighs differently; when not 0
    /// the graph was symmetrized with the larger weight of the two directions.
    pub asymmetric_edges: usize,
}

/// The samples with propagated features: same ids, labels and class names, in the same order.
///
/// `Â = D^-1/2 (A + I) D^-1/2` is built over the samples (SGC's normalization): `A_ij` is the
/// weight of the edge between samples `i` and `j`, a graph that is not symmetric is symmetrized
/// with the larger weight of the two directions (as [`NeighborGraph::make_undirected`]), the
/// graph's own self-loops are ignored (the diagonal of `A + I` is 1), and graph nodes that are not
/// samples are ignored with their edges (all counted by [`propagate_with_report`]). A sample
/// without edges keeps its features. Products are sparse (CSR) with rows in parallel, each row
/// summed in a fixed order, so the result does not depend on the thread count.
///
/// # Errors
/// [`PropagateError::InvalidConfig`] for a bad `config`; [`PropagateError::Data`] if a propagated
/// value is not finite (only possible with huge inputs or weights).
///
/// # Example
/// ```
/// use ndarray::array;
/// use nsl::graph::{EdgeKind, NeighborGraph};
/// use nsl::neighbors::{propagate, PropagateConfig};
/// use nsl::Dataset;
/// // The path a - b - c; Â = [[1/2, 1/√6, 0], [1/√6, 1/3, 1/√6], [0, 1/√6, 1/2]].
/// let ids = ["a", "b", "c"].map(String::from).to_vec();
/// let ds = Dataset::new(ids, array![[6.0f32], [0.0], [0.0]], vec![1], None, None)?;
/// let mut g = NeighborGraph::new();
/// g.add_edge("a", "b", 1.0, EdgeKind::Explicit)?;
/// g.add_edge("b", "c", 1.0, EdgeKind::Explicit)?;
/// let one = propagate(&ds, &g, &PropagateConfig { hops: 1, ..Default::default() })?;
/// assert!((one.row(0)[0] - 3.0).abs() < 1e-6 && (one.row(1)[0] - 6f32.sqrt()).abs() < 1e-6);
/// // Â²: row a is [5/12, 5/(6√6), 1/6], so (Â²X)_c = 6 · 1/6 = 1.
/// let two = propagate(&ds, &g, &PropagateConfig::default())?;
/// assert!((two.row(2)[0] - 1.0).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn propagate(
    samples: &Dataset,
    graph: &NeighborGraph,
    config: &PropagateConfig,
) -> Result<Dataset, PropagateError> {
    propagate_with_report(samples, graph, config).map(|(dataset, _)| dataset)
}

/// [`propagate`], also saying how the graph met the samples.
///
/// # Errors
/// As [`propagate`].
pub fn propagate_with_report(
    samples: &Dataset,
    graph: &NeighborGraph,
    config: &PropagateConfig,
) -> Result<(Dataset, PropagateReport), PropagateError> {
    config.validate()?;
    let adjacency = adjacency_over(samples, graph)?;
    let (n, d, k) = (samples.len(), samples.dim(), config.hops);

    let mut x = samples.features().as_standard_layout().into_owned();
    if config.row_normalize {
        row_normalize_l1(&mut x);
    }
    let features = match config.mode {
        PropagateMode::Sgc => powers(&adjacency, x, k, |_| {}),
        PropagateMode::Sign => {
            let mut out = Array2::zeros((n, (k + 1) * d));
            out.slice_mut(s![.., ..d]).assign(&x);
            for h in 1..=k {
                let (done, rest) = out.view_mut().split_at(ndarray::Axis(1), h * d);
                adjacency.multiply(done.slice(s![.., (h - 1) * d..]), rest.slice_move(s![.., ..d]));
            }
            out
        }
        PropagateMode::Appnp => {
            // α·X is added at every step; computed in f32 as the products are.
            let alpha = config.alpha as f32;
            let kept = x.mapv(|v| alpha * v);
            powers(&adjacency, x, k, |z| z.zip_mut_with(&kept, |z, &a| *z = (1.0 - alpha) * *z + a))
        }
        PropagateMode::Mixed => mixed_order(&adjacency, x, k),
    };
    let item_shape = match config.mode {
        PropagateMode::Sgc | PropagateMode::Appnp | PropagateMode::Mixed => samples.item_shape().to_vec(),
        PropagateMode::Sign => vec![(k + 1) * d],
    };
    let report = PropagateReport {
        row_normalized: config.row_normalize,
        samples: n,
        input_dim: d,
        output_dim: features.ncols(),
        hops: k,
        mode: config.mode,
        alpha: (config.mode == PropagateMode::Appnp).then_some(config.alpha),
        isolated_samples: adjacency.stats.isolated_rows,
        ignored_nodes: adjacency.stats.ignored_nodes,
        ignored_edges: adjacency.stats.ignored_edges,
        ignored_self_loops: adjacency.stats.self_loops,
        asymmetric_edges: adjacency.stats.asymmetric_edges,
    };
    let dataset = Dataset::new(
        samples.ids().to_vec(),
        features,
        item_shape,
        samples.labels().map(<[u32]>::to_vec),
        samples.class_names().map(<[String]>::to_vec),
    )?;
    Ok((dataset, report))
}

/// `Â` over the rows of `samples` (graph nodes that are not samples ignored), once the samples are
/// known to be dense features that 32-bit row indices can address.
///
/// # Errors
/// [`PropagateError::TokenIds`], [`PropagateError::TooManyRows`].
pub(crate) fn adjacency_over(samples: &Dataset, graph: &NeighborGraph) -> Result<NormalizedAdjacency, PropagateError> {
    if let Some(group) = samples.layout().first_token_group() {
        return Err(PropagateError::TokenIds { group: group.to_owned() });
    }
    let n = samples.len();
    if u32::try_from(n).is_err() {
        return Err(PropagateError::TooManyRows { rows: n });
    }
    let row_of: Vec<Option<u32>> = graph.ids().iter().map(|id| samples.position(id).map(|r| r as u32)).collect();
    Ok(NormalizedAdjacency::build(graph, &row_of, n))
}

/// Divides each row of `x` by the sum of its absolute values (L1), in `f64`; a row of zeros stays zero.
pub(crate) fn row_normalize_l1(x: &mut Array2<f32>) {
    for mut row in x.axis_iter_mut(ndarray::Axis(0)) {
        let sum: f64 = row.iter().map(|v| f64::from(v.abs())).sum();
        if sum > 0.0 {
            row.mapv_inplace(|v| (f64::from(v) / sum) as f32);
        }
    }
}

/// `1/(K+1)·Σ_{k=0..K} Â^k·x` ([`PropagateMode::Mixed`]; GRAND's propagation of every DropNode view).
pub(crate) fn mixed_order(adjacency: &NormalizedAdjacency, x: Array2<f32>, k: usize) -> Array2<f32> {
    let mut sum = x.clone();
    powers(adjacency, x, k, |z| sum += &*z);
    let scale = 1.0 / (k + 1) as f32;
    sum.mapv_inplace(|v| v * scale);
    sum
}

/// `K` steps of `Z ← step(Â·Z)` from `Z = x`, two buffers swapped in turn: `step` sees each
/// product before it becomes the next `Z` (SGC's `Â^K·X` with a step that does nothing).
fn powers(
    adjacency: &NormalizedAdjacency,
    x: Array2<f32>,
    k: usize,
    mut step: impl FnMut(&mut Array2<f32>),
) -> Array2<f32> {
    let mut next = Array2::zeros(x.raw_dim());
    let mut current = x;
    for _ in 0..k {
        adjacency.multiply(current.view(), next.view_mut());
        step(&mut next);
        std::mem::swap(&mut current, &mut next);
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::EdgeKind;
    use ndarray::array;

    /// Same shape and every value within `tol`.
    fn close(a: ndarray::ArrayView2<'_, f32>, b: ndarray::ArrayView2<'_, f32>, tol: f32) -> bool {
        a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= tol)
    }

    /// The undirected path a - b - c (weight 1) plus a lone sample d; labels 0, 1, 0, 1.
    fn path_samples() -> (Dataset, NeighborGraph) {
        let ids = ["a", "b", "c", "d"].map(String::from).to_vec();
        let x = array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0], [7.0, 8.0]];
        let names = Some(vec!["x".to_string(), "y".to_string()]);
        let ds = Dataset::new(ids, x, vec![2], Some(vec![0, 1, 0, 1]), names).unwrap();
        let mut g = NeighborGraph::new();
        g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge("b", "c", 1.0, EdgeKind::Explicit).unwrap();
        g.make_undirected();
        (ds, g)
    }

    #[test]
    fn sgc_two_hops_matches_hand_values() {
        let (ds, g) = path_samples();
        let (out, report) = propagate_with_report(&ds, &g, &PropagateConfig::default()).unwrap();
        let r6 = 6f32.sqrt();
        // Â² = [[5/12, 5/(6√6), 1/6], [5/(6√6), 4/9, 5/(6√6)], [1/6, 5/(6√6), 5/12]] on a, b, c.
        let expected = array![
            [5.0 / 12.0, 5.0 / (6.0 * r6)],
            [5.0 / (6.0 * r6), 4.0 / 9.0],
            [1.0 / 6.0, 5.0 / (6.0 * r6)],
            [7.0, 8.0]
        ];
        assert!(close(out.features().view(), expected.view(), 1e-6), "{}", out.features());
        assert_eq!(out.ids(), ds.ids());
        assert_eq!(out.labels(), ds.labels());
        assert_eq!(out.class_names(), ds.class_names());
        assert_eq!(report.isolated_samples, 1);
        assert_eq!((report.ignored_nodes, report.asymmetric_edges), (0, 0));
    }

    #[test]
    fn sign_concatenates_every_power() {
        let (ds, g) = path_samples();
        let cfg = PropagateConfig { hops: 2, mode: PropagateMode::Sign, ..Default::default() };
        let out = propagate(&ds, &g, &cfg).unwrap();
        assert_eq!(out.dim(), 6);
        assert_eq!(out.item_shape(), [6]);
        let x = ds.features();
        let one = propagate(&ds, &g, &PropagateConfig { hops: 1, ..Default::default() }).unwrap();
        let two = propagate(&ds, &g, &PropagateConfig::default()).unwrap();
        let f = out.features();
        assert_eq!(f.slice(s![.., 0..2]), x);
        assert!(close(f.slice(s![.., 2..4]).view(), one.features().view(), 1e-7));
        assert!(close(f.slice(s![.., 4..6]).view(), two.features().view(), 1e-7));
        // Âx for a: 1/2·x_a + 1/√6·x_b.
        assert!((f[[0, 2]] - 0.5).abs() < 1e-6 && (f[[0, 3]] - 1.0 / 6f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn nodes_that_are_not_samples_are_ignored() {
        let (ds, mut g) = path_samples();
        g.add_edge("a", "zz", 5.0, EdgeKind::Explicit).unwrap();
        g.add_edge("d", "d", 1.0, EdgeKind::Explicit).unwrap();
        let (out, report) = propagate_with_report(&ds, &g, &PropagateConfig::default()).unwrap();
        let (plain, _) = propagate_with_report(&ds, &path_samples().1, &PropagateConfig::default()).unwrap();
        assert_eq!(out, plain);
        assert_eq!((report.ignored_nodes, report.ignored_edges, report.ignored_self_loops), (1, 1, 1));
    }

    #[test]
    fn row_normalize_divides_by_the_l1_norm_first() {
        let (ds, g) = path_samples();
        let cfg = PropagateConfig { hops: 1, mode: PropagateMode::Sign, row_normalize: true, alpha: 0.1 };
        let out = propagate(&ds, &g, &cfg).unwrap();
        // d = [7, 8] has L1 norm 15 and no edges; the zero row c stays zero.
        let f = out.features();
        assert!((f[[3, 0]] - 7.0 / 15.0).abs() < 1e-7 && (f[[3, 3]] - 8.0 / 15.0).abs() < 1e-7);
        assert_eq!(f.row(2).slice(s![..2]).to_vec(), [0.0, 0.0]);
    }

    #[test]
    fn appnp_matches_hand_values() {
        let (ds, g) = path_samples();
        let cfg = PropagateConfig { hops: 2, mode: PropagateMode::Appnp, alpha: 0.1, ..Default::default() };
        let (out, report) = propagate_with_report(&ds, &g, &cfg).unwrap();
        // Z₂ = 0.81·Â²X + 0.09·ÂX + 0.1·X. Row a: Â²X = [5/12, 5/(6√6)], ÂX = [1/2, 1/√6], X = [1, 0].
        // Row c: Â²X = [1/6, 5/(6√6)], ÂX = [0, 1/√6], X = [0, 0]. d (no edges) keeps [7, 8].
        let r6 = 6f32.sqrt();
        let expected = array![
            [0.81 * 5.0 / 12.0 + 0.09 * 0.5 + 0.1, 0.81 * 5.0 / (6.0 * r6) + 0.09 / r6],
            [0.81 * 5.0 / (6.0 * r6) + 0.09 / r6, 0.81 * 4.0 / 9.0 + 0.09 / 3.0 + 0.1],
            [0.81 / 6.0, 0.81 * 5.0 / (6.0 * r6) + 0.09 / r6],
            [7.0, 8.0]
        ];
        assert!(close(out.features().view(), expected.view(), 1e-6), "{}", out.features());
        assert_eq!((out.item_shape(), report.alpha), (&[2][..], Some(0.1)));
        // α = 0 is SGC's Â^K·X; α = 1 keeps X.
        let sgc = propagate(&ds, &g, &PropagateConfig::default()).unwrap();
        let zero = propagate(&ds, &g, &PropagateConfig { alpha: 0.0, ..cfg }).unwrap();
        assert!(close(zero.features().view(), sgc.features().view(), 1e-7));
        let one = propagate(&ds, &g, &PropagateConfig { alpha: 1.0, ..cfg }).unwrap();
        assert_eq!(one.features(), ds.features());
    }

    #[test]
    fn mixed_is_the_mean_of_every_order() {
        let (ds, g) = path_samples();
        let cfg = PropagateConfig { hops: 2, mode: PropagateMode::Mixed, ..Default::default() };
        let (out, report) = propagate_with_report(&ds, &g, &cfg).unwrap();
        // (X + ÂX + Â²X)/3. Row a: [(1 + 1/2 + 5/12)/3, (0 + 1/√6 + 5/(6√6))/3] = [23/36, 11/(18√6)].
        let r6 = 6f32.sqrt();
        let f = out.features();
        assert!((f[[0, 0]] - 23.0 / 36.0).abs() < 1e-6 && (f[[0, 1]] - 11.0 / (18.0 * r6)).abs() < 1e-6, "{f}");
        // Row b: [(0 + 1/√6 + 5/(6√6))/3, (1 + 1/3 + 4/9)/3] = [11/(18√6), 16/27].
        assert!((f[[1, 0]] - 11.0 / (18.0 * r6)).abs() < 1e-6 && (f[[1, 1]] - 16.0 / 27.0).abs() < 1e-6, "{f}");
        assert_eq!(f.row(3).to_vec(), [7.0, 8.0]);
        assert_eq!((out.dim(), report.alpha), (2, None));
    }

    #[test]
    fn rejects_bad_alpha() {
        let (ds, g) = path_samples();
        for alpha in [-0.1, 1.5, f64::NAN] {
            let cfg = PropagateConfig { mode: PropagateMode::Appnp, alpha, ..Default::default() };
            let e = propagate(&ds, &g, &cfg).unwrap_err();
            assert!(matches!(e, PropagateError::InvalidConfig { option: "alpha", .. }), "{e}");
        }
        assert_eq!("appnp".parse::<PropagateMode>().unwrap(), PropagateMode::Appnp);
        assert_eq!("mixed".parse::<PropagateMode>().unwrap(), PropagateMode::Mixed);
        assert_eq!((PropagateMode::Appnp.default_hops(), PropagateMode::Sgc.default_hops()), (10, 2));
    }

    #[test]
    fn rejects_bad_hops() {
        let (ds, g) = path_samples();
        for hops in [0, MAX_HOPS + 1] {
            let e = propagate(&ds, &g, &PropagateConfig { hops, ..Default::default() }).unwrap_err();
            assert!(matches!(e, PropagateError::InvalidConfig { option: "hops", .. }), "{e}");
            assert!(e.to_string().ends_with(&format!("from 1 to {MAX_HOPS}")), "{e}");
        }
        assert_eq!("sign".parse::<PropagateMode>().unwrap(), PropagateMode::Sign);
        assert!("gcn".parse::<PropagateMode>().is_err());
    }
}
