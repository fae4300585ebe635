//! [`NeighborTable`]: each training sample's neighbors, resolved to feature rows.

use super::NeighborConfig;
use crate::data::{DataError, Dataset};
use crate::graph::NeighborGraph;
use candle_core::{Device, Result as CandleResult, Tensor};
use ndarray::Array2;
use std::collections::HashMap;

/// What joining the samples with the graph found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NeighborReport {
    /// Training samples with at least one neighbor.
    pub samples_with_neighbors: usize,
    /// (sample, neighbor) pairs kept, at most `max_neighbors` per sample.
    pub pairs: usize,
    /// Distinct neighbor samples whose features are held.
    pub distinct_neighbors: usize,
    /// Out-edges of training samples whose target is neither a training sample nor in the pool
    /// (skipped, as NSL does).
    pub unknown_targets: usize,
    /// Graph nodes that are not samples at all (neither training nor pool).
    pub unknown_nodes: usize,
}

/// The neighbors of every training sample: `(feature row, weight)` pairs into a compact feature
/// matrix that holds each neighbor once.
#[derive(Debug, Clone)]
pub struct NeighborTable {
    /// Pairs of sample `i` are `pairs[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    /// `(row in features, weight)`.
    pairs: Vec<(u32, f32)>,
    /// For each pair: whether its neighbor came from the pool (not from the samples themselves).
    from_pool: Vec<bool>,
    features: Array2<f32>,
    /// The sample id of each feature row.
    ids: Vec<String>,
    /// What the table was built with.
    config: NeighborConfig,
}

/// The (sample, neighbor, weight) pairs of one batch, ready for a regularizer; the neighbors'
/// features travel separately (see [`NeighborTable::batch`] and [`NeighborTable::append_batch`]).
#[derive(Debug, Clone)]
pub struct NeighborBatch {
    /// For each pair, the position of its sample in the batch, `[P]` (u32).
    pub sample_index: Tensor,
    /// Edge weights, `[P]`.
    pub weights: Tensor,
    /// `batch size × max_neighbors`: the number of slots NSL's padded layout would have.
    pub slots: usize,
}

impl NeighborBatch {
    /// The batch of pairs `(sample_index[p], weights[p])` on `device`; `slots` as in the field.
    ///
    /// # Errors
    /// A candle error if the tensors cannot be made.
    pub fn new(sample_index: Vec<u32>, weights: Vec<f32>, slots: usize, device: &Device) -> CandleResult<Self> {
        let pairs = weights.len();
        Ok(NeighborBatch {
            sample_index: Tensor::from_vec(sample_index, pairs, device)?,
            weights: Tensor::from_vec(weights, pairs, device)?,
            slots,
        })
    }

    /// Number of (sample, neighbor) pairs.
    pub fn pairs(&self) -> usize {
        self.weights.elem_count()
    }
}

impl NeighborTable {
    /// Joins `samples` with `graph`. A neighbor is looked up first among `samples`, then in `pool`
    /// (a labeled sample wins over a pool sample with the same id, as in NSL). Each sample keeps its
    /// `config.max_neighbors` best out-edges among the resolvable ones ([`NeighborGraph::top_k`]
    /// order). A graph regularizer's table is built with its
    /// [`neighbors`](crate::regularize::GraphRegConfig::neighbors); a number converts (`2`).
    ///
    /// # Errors
    /// [`DataError::Dataset`] if the pool's feature width differs from the samples'.
    pub fn new(
        samples: &Dataset,
        pool: Option<&Dataset>,
        graph: &NeighborGraph,
        config: impl Into<NeighborConfig>,
    ) -> Result<(Self, NeighborReport), DataError> {
        let config = config.into();
        let max_neighbors = config.max_neighbors;
        if let Some(p) = pool {
            if p.dim() != samples.dim() {
                return Err(DataError::Dataset(format!(
                    "pool samples have {} features but training samples have {}",
                    p.dim(),
                    samples.dim()
                )));
            }
        }
        let resolve = |id: &str| -> Option<(&Dataset, usize)> {
            samples.position(id).map(|r| (samples, r)).or_else(|| pool.and_then(|p| p.position(id).map(|r| (p, r))))
        };
        let mut report = NeighborReport {
            unknown_nodes: graph.ids().iter().filter(|id| resolve(id).is_none()).count(),
            ..Default::default()
        };
        // Compact feature rows: (from pool?, row) → index.
        let mut slot_of: HashMap<(bool, usize), u32> = HashMap::new();
        let mut gathered: Vec<(bool, usize)> = Vec::new();
        let mut offsets = Vec::with_capacity(samples.len() + 1);
        let mut pairs = Vec::new();
        let mut from_pool = Vec::new();
        offsets.push(0);
        for id in samples.ids() {
            let mut kept = 0;
            for (target, edge) in graph.top_k(id, usize::MAX) {
                let weight = edge.weight;
                if kept == max_neighbors {
                    break;
                }
                let Some((source, row)) = resolve(target) else {
                    report.unknown_targets += 1;
                    continue;
                };
                let key = (!std::ptr::eq(source, samples), row);
                let next = gathered.len() as u32;
                let slot = *slot_of.entry(key).or_insert(next);
                if slot == next {
                    gathered.push(key);
                }
                pairs.push((slot, weight));
                from_pool.push(key.0);
                kept += 1;
            }
            report.samples_with_neighbors += usize::from(kept > 0);
            offsets.push(pairs.len());
        }
        let mut features = Array2::zeros((gathered.len(), samples.dim()));
        let mut ids = Vec::with_capacity(gathered.len());
        for (slot, &(from_pool, row)) in gathered.iter().enumerate() {
            let source = if from_pool { pool.unwrap_or(samples) } else { samples };
            features.row_mut(slot).assign(&source.row(row));
            ids.push(source.ids()[row].clone());
        }
        report.pairs = pairs.len();
        report.distinct_neighbors = gathered.len();
        Ok((NeighborTable { offsets, pairs, from_pool, features, ids, config }, report))
    }

    /// A table from neighbor lists already resolved, as packed records carry them: sample `i` has
    /// the next `counts[i]` rows of `features` (`[Σ counts, d]`, best first) with the next
    /// `counts[i]` `weights`. Every neighbor counts as a training sample's (none from the pool), and
    /// its id is empty.
    ///
    /// # Errors
    /// [`DataError::Dataset`] if the counts do not add up to the rows of `features` and the number
    /// of weights, or a count exceeds `config.max_neighbors`.
    pub fn from_lists(
        counts: &[usize],
        features: Array2<f32>,
        weights: Vec<f32>,
        config: impl Into<NeighborConfig>,
    ) -> Result<Self, DataError> {
        let config = config.into();
        let max_neighbors = config.max_neighbors;
        let total: usize = counts.iter().sum();
        if total != features.nrows() || total != weights.len() {
            return Err(DataError::Dataset(format!(
                "neighbor counts add up to {total} but there are {} feature rows and {} weights",
                features.nrows(),
                weights.len()
            )));
        }
        if let Some(row) = counts.iter().position(|&c| c > max_neighbors) {
            return Err(DataError::Dataset(format!(
                "sample {row} has {} neighbors, more than max_neighbors {max_neighbors}",
                counts[row]
            )));
        }
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        offsets.push(0);
        for &c in counts {
            offsets.push(offsets[offsets.len() - 1] + c);
        }
        let pairs = weights.into_iter().enumerate().map(|(slot, w)| (slot as u32, w)).collect();
        Ok(NeighborTable {
            offsets,
            pairs,
            from_pool: vec![false; total],
            features,
            ids: vec![String::new(); total],
            config,
        })
    }

    /// The settings the table was built with.
    pub fn config(&self) -> NeighborConfig {
        self.config
    }

    /// The configured maximum number of neighbors per sample (the trainer's, for the batches of
    /// this table).
    pub fn max_neighbors(&self) -> usize {
        self.config.max_neighbors
    }

    /// The neighbors of training sample `row`, best first: `(neighbor id, neighbor features, weight)`.
    pub fn neighbors(&self, row: usize) -> impl Iterator<Item = (&str, ndarray::ArrayView1<'_, f32>, f32)> + '_ {
        let range = self.offsets.get(row).copied().unwrap_or(0)..self.offsets.get(row + 1).copied().unwrap_or(0);
        self.pairs[range]
            .iter()
            .map(|&(slot, w)| (self.ids[slot as usize].as_str(), self.features.row(slot as usize), w))
    }

    /// The (sample, neighbor, weight) pairs of the training rows `rows` (in batch order) and the
    /// neighbors' features, `[P, d]`. Pairs of zero weight are dropped: they add nothing to any
    /// reduction except `sum_over_batch_size`, whose count is [`NeighborBatch::slots`].
    ///
    /// # Errors
    /// A candle error if the tensors cannot be made.
    pub fn batch(&self, rows: &[usize], device: &Device) -> CandleResult<(Tensor, NeighborBatch)> {
        let mut features = Vec::new();
        let batch = self.append_batch(rows, &mut features, device)?;
        let features = Tensor::from_vec(features, (batch.pairs(), self.features.ncols()), device)?;
        Ok((features, batch))
    }

    /// Like [`NeighborTable::batch`], appending the neighbors' features (row-major) to `features`
    /// instead, so that a trainer can put samples and neighbors in one buffer without copying twice.
    ///
    /// # Errors
    /// A candle error if the tensors cannot be made.
    pub fn append_batch(
        &self,
        rows: &[usize],
        features: &mut Vec<f32>,
        device: &Device,
    ) -> CandleResult<NeighborBatch> {
        let (mut sample_index, mut weights) = (Vec::new(), Vec::new());
        self.append_pairs(rows, 0, [1.0, 1.0], features, &mut sample_index, &mut weights);
        NeighborBatch::new(sample_index, weights, rows.len() * self.config.max_neighbors, device)
    }

    /// The pairs of `rows` (which sit at positions `first_position..` of a batch), their neighbors'
    /// features appended to `features`, their batch positions to `sample_index` and their weights,
    /// scaled by `scale[0]` for neighbors among the samples and `scale[1]` for neighbors from the
    /// pool, to `weights`. Pairs whose scaled weight is 0 are left out.
    pub fn append_pairs(
        &self,
        rows: &[usize],
        first_position: usize,
        scale: [f32; 2],
        features: &mut Vec<f32>,
        sample_index: &mut Vec<u32>,
        weights: &mut Vec<f32>,
    ) {
        for (position, &row) in rows.iter().enumerate() {
            let range = self.offsets[row]..self.offsets[row + 1];
            for (&(slot, weight), &pool) in self.pairs[range.clone()].iter().zip(&self.from_pool[range]) {
                let weight = weight * scale[usize::from(pool)];
                if weight == 0.0 {
                    continue;
                }
                extend_row(features, self.features.row(slot as usize));
                sample_index.push((first_position + position) as u32);
                weights.push(weight);
            }
        }
    }
}

/// Appends a feature row to a buffer: one `memcpy` when the row is contiguous (rows of a
/// standard-layout matrix are), element by element otherwise.
pub fn extend_row(buffer: &mut Vec<f32>, row: ndarray::ArrayView1<f32>) {
    match row.as_slice() {
        Some(values) => buffer.extend_from_slice(values),
        None => buffer.extend(row.iter().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::EdgeKind;
    use ndarray::array;

    fn fixture() -> (Dataset, Dataset, NeighborGraph) {
        let train =
            Dataset::new(vec!["a".into(), "b".into()], array![[1.0, 0.0], [0.0, 1.0]], vec![2], Some(vec![0, 1]), None)
                .unwrap();
        let pool =
            Dataset::new(vec!["u".into(), "a".into()], array![[5.0, 5.0], [9.0, 9.0]], vec![2], None, None).unwrap();
        let mut g = NeighborGraph::new();
        g.add_edge("a", "u", 0.5, EdgeKind::Explicit).unwrap();
        g.add_edge("a", "b", 0.9, EdgeKind::Explicit).unwrap();
        g.add_edge("a", "zz", 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge("b", "a", 0.3, EdgeKind::Explicit).unwrap();
        (train, pool, g)
    }

    #[test]
    fn resolves_best_neighbors_from_samples_then_pool() {
        let (train, pool, g) = fixture();
        let (table, report) = NeighborTable::new(&train, Some(&pool), &g, 2).unwrap();
        let a: Vec<(Vec<f32>, f32)> = table.neighbors(0).map(|(_, f, w)| (f.to_vec(), w)).collect();
        // zz is unknown (skipped); b (0.9) then u (0.5, from the pool).
        assert_eq!(a, vec![(vec![0.0, 1.0], 0.9), (vec![5.0, 5.0], 0.5)]);
        // b's neighbor a is the training sample a, not the pool's a.
        let b: Vec<(Vec<f32>, f32)> = table.neighbors(1).map(|(_, f, w)| (f.to_vec(), w)).collect();
        assert_eq!(table.neighbors(0).map(|(id, _, _)| id).collect::<Vec<_>>(), ["b", "u"]);
        assert_eq!(b, vec![(vec![1.0, 0.0], 0.3)]);
        assert_eq!(report.unknown_targets, 1);
        assert_eq!(report.unknown_nodes, 1);
        assert_eq!(report.pairs, 3);
        assert_eq!(report.distinct_neighbors, 3);
    }

    #[test]
    fn batch_gathers_pairs_in_batch_order() {
        let (train, pool, g) = fixture();
        let (table, _) = NeighborTable::new(&train, Some(&pool), &g, 1).unwrap();
        let (features, batch) = table.batch(&[1, 0], &Device::Cpu).unwrap();
        assert_eq!(batch.sample_index.to_vec1::<u32>().unwrap(), vec![0, 1]);
        assert_eq!(batch.weights.to_vec1::<f32>().unwrap(), vec![0.3, 0.9]);
        assert_eq!(features.to_vec2::<f32>().unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(batch.slots, 2);
    }
}
