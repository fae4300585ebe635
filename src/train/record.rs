//! [`AdversarialRecord`]: the adversarial neighbors generated during training, kept as graph data so
//! that `nsl graph stats|export` can show where the model is fragile.

use crate::graph::{EdgeKind, GraphError, NeighborGraph};
use crate::io::write_parquet;
use crate::regularize::NormType;
use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One generated adversarial neighbor.
#[derive(Debug, Clone, PartialEq)]
pub struct AdversarialExample {
    /// The sample it perturbs.
    pub sample_id: String,
    /// The epoch it was generated in.
    pub epoch: usize,
    /// The perturbed features.
    pub features: Vec<f32>,
    /// `‖x_adv − x‖` in the configured norm.
    pub perturbation_norm: f32,
    /// The sample's label.
    pub label: u32,
    /// The model's prediction on the sample (in that training step).
    pub prediction: u32,
    /// The model's prediction on the adversarial neighbor.
    pub adversarial_prediction: u32,
}

impl AdversarialExample {
    /// The id of the neighbor node: `{sample_id}~adv{epoch}`.
    pub fn neighbor_id(&self) -> String {
        format!("{}~adv{}", self.sample_id, self.epoch)
    }
}

/// All recorded adversarial neighbors of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdversarialRecord {
    /// The neighbors, in generation order.
    pub examples: Vec<AdversarialExample>,
    /// The adversarial multiplier, used as the edge weight.
    pub multiplier: f32,
}

/// `‖v‖` in the given norm.
pub(crate) fn norm(v: &[f32], norm: NormType) -> f32 {
    match norm {
        NormType::L1 => v.iter().map(|x| x.abs()).sum(),
        NormType::L2 => v.iter().map(|x| x * x).sum::<f32>().sqrt(),
        NormType::Infinity => v.iter().fold(0.0, |m, x| m.max(x.abs())),
    }
}

impl AdversarialRecord {
    /// The neighbors as a graph: an `adversarial` edge of weight `multiplier` from each sample to its
    /// neighbor node [`AdversarialExample::neighbor_id`].
    ///
    /// # Errors
    /// [`GraphError::BadWeight`] if the multiplier is negative or not finite.
    pub fn to_graph(&self) -> Result<NeighborGraph, GraphError> {
        let mut g = NeighborGraph::with_capacity(2 * self.examples.len(), self.examples.len());
        for e in &self.examples {
            g.add_edge(&e.sample_id, &e.neighbor_id(), self.multiplier, EdgeKind::Adversarial)?;
        }
        g.set_provenance("nsl train --record-adversarial");
        Ok(g)
    }

    /// Where [`AdversarialRecord::write`] puts the node table for graph file `graph`:
    /// `NAME.nodes.parquet` next to it.
    pub fn nodes_path(graph: &Path) -> PathBuf {
        let stem = graph.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        graph.with_file_name(format!("{stem}.nodes.parquet"))
    }

    /// Writes the graph to `graph` (Parquet or TSV by extension) and the node table to
    /// [`AdversarialRecord::nodes_path`]: `id`, `sample_id`, `epoch`, `features`
    /// (`fixed_size_list<float32>`), `perturbation_norm`, `label`, `prediction`, `adversarial_prediction`.
    /// Both writes are atomic.
    ///
    /// # Errors
    /// [`GraphError`] naming the file that could not be written ([`GraphError::Io`],
    /// [`GraphError::Parquet`]).
    pub fn write(&self, graph: &Path) -> Result<(), GraphError> {
        crate::graph::write_graph(&self.to_graph()?, graph)?;
        let nodes = Self::nodes_path(graph);
        let d = self.examples.first().map_or(0, |e| e.features.len());
        // Arrow's fixed_size_list length is an i32: let Arrow's own error say so.
        let width = i32::try_from(d).map_err(|_| {
            let too_wide = arrow::error::ArrowError::InvalidArgumentError(format!(
                "{d} features per neighbor do not fit a fixed_size_list (at most {})",
                i32::MAX
            ));
            GraphError::parquet_write(&nodes, too_wide.into())
        })?;
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("sample_id", DataType::Utf8, false),
            Field::new("epoch", DataType::Int64, false),
            Field::new("features", DataType::FixedSizeList(item.clone(), width), false),
            Field::new("perturbation_norm", DataType::Float32, false),
            Field::new("label", DataType::Int64, false),
            Field::new("prediction", DataType::Int64, false),
            Field::new("adversarial_prediction", DataType::Int64, false),
        ]));
        let e = &self.examples;
        let int = |f: &dyn Fn(&AdversarialExample) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(e.iter().map(f)))
        };
        let build = || -> Result<RecordBatch, arrow::error::ArrowError> {
            let values = Float32Array::from_iter_values(e.iter().flat_map(|x| x.features.iter().copied()));
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(e.iter().map(AdversarialExample::neighbor_id))),
                    Arc::new(StringArray::from_iter_values(e.iter().map(|x| x.sample_id.as_str()))),
                    int(&|x| x.epoch as i64),
                    Arc::new(FixedSizeListArray::try_new(item.clone(), width, Arc::new(values), None)?),
                    Arc::new(Float32Array::from_iter_values(e.iter().map(|x| x.perturbation_norm))),
                    int(&|x| i64::from(x.label)),
                    int(&|x| i64::from(x.prediction)),
                    int(&|x| i64::from(x.adversarial_prediction)),
                ],
            )
        };
        write_parquet(&nodes, schema.clone(), WriterProperties::builder(), [build()])
            .map_err(|err| GraphError::parquet_write(&nodes, err))
    }
}
