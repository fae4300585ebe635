//! `CheckedRun::open`: the inputs read, their layouts merged, the neighbor tables and the model
//! built.

use super::check::{CheckedRun, Form};
use super::distill::{read_teacher, teacher_rows, TeacherInput};
use super::error::{Context, RunError};
use super::read::{check_binary, read_for_task, read_samples_for, weigh_if_present};
use super::spec::{GraphInput, Input};
use crate::data::{Dataset, SampleColumns};
use crate::graph::NeighborGraph;
use crate::loss::Task;
use crate::model::{build_model, Model, ModelSpec};
use crate::neighbors::{NeighborReport, NeighborTable, PackedParts};
use candle_nn::VarMap;

/// The neighbors of a run's centers: of the training samples (with the report of how the graph
/// resolved), and of the unlabeled centers.
pub(crate) struct Tables {
    pub(crate) train: NeighborTable,
    pub(crate) report: NeighborReport,
    pub(crate) unlabeled: Option<NeighborTable>,
}

/// A run with its inputs read and its model built, ready to [`fit`](OpenRun::fit).
pub struct OpenRun {
    pub(crate) checked: CheckedRun,
    /// The training samples (for a streamed table, a one-row stand-in with its shape and classes).
    pub(crate) train: Dataset,
    pub(crate) stream: Option<PackedParts>,
    pub(crate) unlabeled: Option<Dataset>,
    pub(crate) validation: Option<Dataset>,
    pub(crate) test: Option<Dataset>,
    pub(crate) tables: Option<Tables>,
    /// The teacher's probabilities of the training and unlabeled samples, row for row.
    pub(crate) distill: Option<(ndarray::Array2<f32>, Option<ndarray::Array2<f32>>)>,
    /// The model spec, its input fitted to the samples' feature groups.
    pub(crate) spec: ModelSpec,
    pub(crate) model: Box<dyn Model>,
    pub(crate) vars: VarMap,
    /// The model's outputs.
    pub(crate) outputs: usize,
    pub(crate) notes: Vec<String>,
}

impl OpenRun {
    /// The checked settings.
    pub fn checked(&self) -> &CheckedRun {
        &self.checked
    }

    /// The model, with its initial weights.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// The model spec, its input fitted to the samples.
    pub fn model_spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The training samples (for a streamed packed table, a one-row stand-in with its width,
    /// item shape and classes).
    pub fn train(&self) -> &Dataset {
        &self.train
    }

    /// The number of training samples (a streamed table's rows).
    pub fn train_len(&self) -> usize {
        self.stream.as_ref().map_or(self.train.len(), PackedParts::rows)
    }

    /// How the graph resolved into the training samples' neighbors, with graph regularization.
    pub fn neighbor_report(&self) -> Option<&NeighborReport> {
        self.tables.as_ref().map(|t| &t.report)
    }

    /// Warnings of the reading (repeated TFRecord ids, graph nodes that are not samples, a
    /// validation file without the weight column, …), for the front end to show.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Takes the warnings (see [`OpenRun::notes`]).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

impl CheckedRun {
    /// [`CheckedRun::open_with`] without stage reports.
    ///
    /// # Errors
    /// As [`CheckedRun::open_with`].
    pub fn open(self) -> Result<OpenRun, RunError> {
        self.open_with(|_| {})
    }

    /// Reads the inputs (one reader for every format and task, [`read_for_task`](super::read_for_task)),
    /// lays them out in one feature layout, builds the neighbor tables and the model (after one
    /// size check, [`ModelSpec::size`], and the memory it needs). `stage` is called with what is
    /// being done (`reading FILE`, `building the neighbor table`, …) before each step.
    ///
    /// # Errors
    /// A reader's error naming the file and row; [`RunError::Input`] for an empty or unlabeled
    /// training set or graph nodes that are not samples with `strict`; [`RunError::Memory`] for a
    /// model that does not fit the memory.
    pub fn open_with(mut self, mut stage: impl FnMut(&str)) -> Result<OpenRun, RunError> {
        // Samples and graphs in memory move out of the spec into the run (files stay named there).
        let spec = &mut self.spec;
        let [samples, pool, unlabeled, validation, test] =
            [&mut spec.samples, &mut spec.pool, &mut spec.unlabeled, &mut spec.validation, &mut spec.test]
                .map(take_if_in_memory);
        let graph = match spec.graph.take() {
            Some(GraphInput::Path(p)) => {
                spec.graph = Some(GraphInput::Path(p.clone()));
                Some(GraphInput::Path(p))
            }
            other => other,
        };
        let s = &self.spec;
        let task = s.task;
        let columns = &self.read_columns();
        let mut notes = Vec::new();
        let (mut stream, mut packed_pool, mut packed_graph) = (None, None, None);
        let (train, name) = match &self.form {
            Form::Stream(path, _) => {
                stage(&format!("opening {}", path.display()));
                let parts = PackedParts::open(path)?;
                let header = packed_header(&parts)?;
                stream = Some(parts);
                (header, path.display().to_string())
            }
            Form::Records(path) => {
                stage(&format!("reading {}", path.display()));
                let p = crate::tfrecord::read_packed(std::slice::from_ref(path), columns)?;
                (packed_pool, packed_graph) = (p.pool, Some(p.graph));
                (p.samples, path.display().to_string())
            }
            Form::Plain => {
                let input = samples.ok_or_else(|| RunError::settings("@samples is required"))?;
                let name = input.name("training");
                let samples = labeled(input, "training", columns, task, None, None, &mut notes, &mut stage)?;
                (samples, name)
            }
        };
        let Some(width) = train.target_width() else {
            return Err(RunError::settings(format!(
                "{name}: the training samples have no class labels (a label column of lists or floats needs @task \
                 multilabel or regression)"
            )));
        };
        if train.is_empty() {
            return Err(RunError::Input(format!("{name}: the training set is empty")));
        }
        let outputs = task.outputs(width);
        let mut train = train;
        if let (Some(column), Form::Plain, Some(Input::Path(path))) = (&s.weight_column, &self.form, &s.samples) {
            stage("reading weights");
            train = crate::data::attach_weights(train, path, &columns.id, column)?;
        }
        if let (Some(class_weights), Some(labels)) = (&s.class_weights, train.labels()) {
            let per_class = class_weights.per_class(labels, width, train.class_names())?;
            let base = train.weights().map_or_else(|| vec![1.0; train.len()], <[f32]>::to_vec);
            let weights = labels.iter().zip(base).map(|(&l, w)| w * per_class[l as usize]).collect();
            train = train.with_weights(weights)?;
        }
        let names = train.class_names().map(<[String]>::to_vec);
        let unlabeled = unlabeled.map(|u| unlabeled_or_pool(u, columns, task, &mut notes, &mut stage)).transpose()?;
        let pool = match (pool, &unlabeled) {
            (Some(p), _) => Some(unlabeled_or_pool(p, columns, task, &mut notes, &mut stage)?),
            (None, Some(u)) => Some(u.clone()),
            (None, None) => packed_pool,
        };
        let weight = s.weight_column.as_deref();
        let names = names.as_deref();
        let mut read_labeled =
            |input: Input, what: &str| labeled(input, what, columns, task, names, weight, &mut notes, &mut stage);
        let validation = validation.map(|v| read_labeled(v, "validation")).transpose()?;
        let test = test.map(|t| read_labeled(t, "test")).transpose()?;
        let (train, [pool, unlabeled, validation, test]) =
            one_layout(train, [("pool", pool), ("unlabeled", unlabeled), ("validation", validation), ("test", test)])?;
        let spec = self.model.clone().for_inputs(&crate::train::model_inputs(train.layout()))?;
        if let Some(adv) = &s.adv_reg {
            // Perturbations move the model's encoded input (pooled embeddings for token groups).
            let width = match &spec {
                ModelSpec::Bow(bow) => bow.encoded_width(),
                _ => train.dim(),
            };
            adv.validate(width)?;
            task.check_adv_objective(adv.objective)?;
        }
        check_model_size(&spec, train.item_shape(), outputs, s.train.batch_size)?;
        s.train.augment.check_shape(train.item_shape()).map_err(|e| RunError::Train(e.into()))?;
        let (model, vars) = build_model(&spec, train.item_shape(), outputs, self.init_seed, &candle_core::Device::Cpu)
            .map_err(RunError::Model)?;
        let graph = match (graph, packed_graph) {
            (Some(GraphInput::Path(path)), _) => {
                stage("reading graph");
                Some((crate::graph::read_graph(&path)?, path.display().to_string()))
            }
            (Some(GraphInput::Graph(g)), _) => Some((g, "the graph (in memory)".to_string())),
            (None, Some(g)) => Some((g, name.clone())),
            (None, None) => None,
        };
        let tables = match (graph, &s.graph_reg) {
            (Some((g, graph_name)), Some(reg)) => {
                let (tables, note) =
                    neighbor_tables(&g, &graph_name, reg, &train, pool.as_ref(), unlabeled.as_ref(), &mut stage)?;
                if let Some(note) = note {
                    if s.strict {
                        return Err(RunError::Input(note));
                    }
                    notes.push(note);
                }
                Some(tables)
            }
            _ => None,
        };
        let distill = match &s.distill {
            Some(d) => {
                let read;
                let (teacher, source) = match &d.teacher {
                    TeacherInput::Path(path) => {
                        stage(&format!("reading {}", path.display()));
                        read = read_teacher(path)?;
                        (&read, path.display().to_string())
                    }
                    TeacherInput::Table(t) => (t, "the teacher (in memory)".to_string()),
                };
                let names = train.class_names();
                let rows =
                    |samples: &Dataset, what: &str| teacher_rows(teacher, &source, samples, what, outputs, names);
                Some((rows(&train, "training")?, unlabeled.as_ref().map(|u| rows(u, "unlabeled")).transpose()?))
            }
            None => None,
        };
        Ok(OpenRun {
            checked: self,
            train,
            stream,
            unlabeled,
            validation,
            test,
            tables,
            distill,
            spec,
            model,
            vars,
            outputs,
            notes,
        })
    }
}

/// Labeled samples (training, validation or test) with the task's targets; a file's weight
/// `column` when it has one (training samples get theirs apart: a missing column is an error).
#[allow(clippy::too_many_arguments)]
fn labeled(
    input: Input,
    what: &str,
    columns: &SampleColumns,
    task: Task,
    names: Option<&[String]>,
    weight: Option<&str>,
    notes: &mut Vec<String>,
    stage: &mut impl FnMut(&str),
) -> Result<Dataset, RunError> {
    let name = input.name(what);
    match input {
        Input::Path(path) => {
            stage(&format!("reading {name}"));
            let samples = read_for_task(&path, columns, task, names, notes)?;
            weigh_if_present(samples, &path, &columns.id, weight, notes)
        }
        Input::Samples(samples) => {
            if task == Task::Binary {
                check_binary(&samples, &name, &columns.label, names.is_none())?;
            }
            Ok(samples)
        }
    }
}

/// Pool or unlabeled samples: their labels are never used, and for a task without classes the
/// label column (floats, lists) is left out rather than read as class labels.
fn unlabeled_or_pool(
    input: Input,
    columns: &SampleColumns,
    task: Task,
    notes: &mut Vec<String>,
    stage: &mut impl FnMut(&str),
) -> Result<Dataset, RunError> {
    match input {
        Input::Path(path) => {
            stage(&format!("reading {}", path.display()));
            read_samples_for(&path, columns, task.has_classes(), notes)
        }
        Input::Samples(samples) => Ok(samples),
    }
}

/// The input of `slot`: moved out when it is samples in memory (the spec keeps a file's name).
fn take_if_in_memory(slot: &mut Option<Input>) -> Option<Input> {
    match slot {
        Some(Input::Path(p)) => Some(Input::Path(p.clone())),
        _ => slot.take(),
    }
}

/// A one-row stand-in for a streamed packed table where the run needs the training samples'
/// shape: width, item shape, class names, number of classes (its label is the table's largest).
fn packed_header(parts: &PackedParts) -> Result<Dataset, RunError> {
    let features = ndarray::Array2::zeros((1, parts.dim()));
    let label = parts.max_label().unwrap_or(0);
    let names = parts.class_names().map(<[String]>::to_vec);
    Ok(Dataset::new(vec!["-".into()], features, parts.item_shape().to_vec(), Some(vec![label]), names)?)
}

/// The run's samples in one feature layout. Dense rows must have the training rows' width. Token
/// groups are as wide as each file's longest list, so files read apart (a text split into
/// training, validation and test files) are laid out in the merge of their layouts
/// ([`crate::data::FeatureLayout::merge`]): the widest list and the largest vocabulary of all the
/// run's files, the layout the same rows have in one table.
fn one_layout(
    train: Dataset,
    others: [(&str, Option<Dataset>); 4],
) -> Result<(Dataset, [Option<Dataset>; 4]), RunError> {
    if !train.layout().has_tokens() {
        for (name, other) in &others {
            if let Some(d) = other.as_ref().filter(|d| d.dim() != train.dim()) {
                return Err(RunError::Input(format!(
                    "{name} samples have {} features but the training samples have {}",
                    d.dim(),
                    train.dim()
                )));
            }
        }
        return Ok((train, others.map(|(_, d)| d)));
    }
    let mut layout = train.layout().clone();
    for (name, other) in &others {
        if let Some(d) = other {
            layout = layout
                .merge(d.layout())
                .context_with(|| format!("{name} samples do not fit the training samples' feature groups"))?;
        }
    }
    let train = train.conform(&layout)?;
    let mut conformed = [None, None, None, None];
    for (slot, (name, other)) in conformed.iter_mut().zip(others) {
        *slot = other
            .map(|d| d.conform(&layout))
            .transpose()
            .context_with(|| format!("{name} samples do not fit the run's feature groups"))?;
    }
    Ok((train, conformed))
}

/// The one size check of a run's model ([`ModelSpec::size`]), and the memory it needs: weights,
/// gradients and Adam's two moments (4 × parameters × 4 bytes), and a batch's activations.
fn check_model_size(spec: &ModelSpec, item_shape: &[usize], outputs: usize, batch_size: usize) -> Result<(), RunError> {
    let size = spec
        .size(item_shape, outputs)
        .map_err(|e| RunError::settings(format!("@model {spec} on items {item_shape:?}: {e}")))?;
    crate::io::check_memory(
        format!("model {spec}: {} parameters (weights, gradients and Adam's two moments, f32)", size.parameters),
        u128::from(size.parameters),
        16,
    )?;
    crate::io::check_memory(
        format!("model {spec}: a batch's activations (batch size {batch_size})"),
        u128::from(size.activations).saturating_mul(batch_size as u128),
        12,
    )?;
    Ok(())
}

/// The neighbor tables of the training samples (neighbors among them and the pool) and of the
/// unlabeled centers (neighbors among the training samples), along `reg`'s neighbor graph of `g`;
/// and a note when graph nodes are neither training nor pool samples.
fn neighbor_tables(
    g: &NeighborGraph,
    graph_name: &str,
    reg: &crate::regularize::GraphRegConfig,
    train: &Dataset,
    pool: Option<&Dataset>,
    unlabeled: Option<&Dataset>,
    stage: &mut impl FnMut(&str),
) -> Result<(Tables, Option<String>), RunError> {
    stage("r-hop neighbors");
    let g = reg.neighbor_graph(g)?;
    stage("building the neighbor table");
    let (table, report) = NeighborTable::new(train, pool, &g, reg.neighbors)?;
    let utable = unlabeled.map(|u| NeighborTable::new(u, Some(train), &g, reg.neighbors)).transpose()?;
    let note = (report.unknown_nodes > 0).then(|| {
        format!(
            "{graph_name}: {} graph nodes are neither training nor pool samples ({} edges from training samples \
             skipped)",
            report.unknown_nodes, report.unknown_targets
        )
    });
    Ok((Tables { train: table, report, unlabeled: utable.map(|(t, _)| t) }, note))
}
