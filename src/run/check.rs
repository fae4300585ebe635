//! `RunSpec::check`: every rule that relates a run's settings to each other, in one place.

use super::error::RunError;
use super::spec::{GraphInput, Input, Packed, RunSpec};
use crate::loss::Task;
use crate::model::ModelSpec;
use crate::neighbors::PackedConfig;
use crate::train::MultiplierSchedule;
use std::path::{Path, PathBuf};

/// Where the training samples come from, once [`RunSpec::check`] has decided.
#[derive(Debug, Clone)]
pub(crate) enum Form {
    /// [`RunSpec::samples`] (a file or in memory), neighbors from [`RunSpec::graph`].
    Plain,
    /// NSL-packed TFRecord records, read whole: samples, pool and graph in one file.
    Records(PathBuf),
    /// A packed Parquet table streamed every epoch.
    Stream(PathBuf, PackedConfig),
}

/// A [`RunSpec`] whose settings go together: what [`RunSpec::check`] returns, and what
/// [`CheckedRun::open`](super::CheckedRun::open) reads the inputs of.
#[derive(Debug, Clone)]
pub struct CheckedRun {
    pub(crate) spec: RunSpec,
    pub(crate) form: Form,
    /// The model with the run's dropout.
    pub(crate) model: ModelSpec,
    /// Seed of the initial weights and dropout masks.
    pub(crate) init_seed: u64,
}

impl CheckedRun {
    /// The columns the input files are read with: [`RunSpec::columns`], never the weight column as
    /// a feature, and row numbers as ids for a table without an id column when no graph needs them.
    pub fn read_columns(&self) -> crate::data::SampleColumns {
        let mut columns = self.spec.columns.clone();
        columns.exclude.extend(self.spec.weight_column.iter().cloned());
        columns.row_ids = self.spec.graph.is_none() && self.spec.packed.is_none() && self.spec.pool.is_none();
        columns
    }

    /// The settings.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The seed of the initial weights and dropout masks.
    pub fn init_seed(&self) -> u64 {
        self.init_seed
    }

    /// The model to build (with the run's dropout; [`CheckedRun::open`](super::CheckedRun::open)
    /// fits its input layer to the samples).
    pub fn model(&self) -> &ModelSpec {
        &self.model
    }

    /// The packed table's stream settings, when the run streams one.
    pub fn stream(&self) -> Option<&PackedConfig> {
        match &self.form {
            Form::Stream(_, config) => Some(config),
            _ => None,
        }
    }

    /// The training samples' file (the packed file for packed samples), if they are one.
    pub fn samples_path(&self) -> Option<&Path> {
        match &self.form {
            Form::Plain => self.spec.samples.as_ref().and_then(Input::path),
            Form::Records(p) | Form::Stream(p, _) => Some(p),
        }
    }

    /// Every input file, with the setting that names it (for [`crate::io::check_paths`] against
    /// the outputs).
    pub fn input_files(&self) -> Vec<(&'static str, &Path)> {
        let s = &self.spec;
        let samples = match self.form {
            Form::Stream(..) => "packed",
            _ => "samples",
        };
        [
            (samples, self.samples_path()),
            ("pool", s.pool.as_ref().and_then(Input::path)),
            ("unlabeled", s.unlabeled.as_ref().and_then(Input::path)),
            ("graph", s.graph.as_ref().and_then(GraphInput::path)),
            ("validation", s.validation.as_ref().and_then(Input::path)),
            ("test", s.test.as_ref().and_then(Input::path)),
            (
                "distill",
                s.distill.as_ref().and_then(|d| match &d.teacher {
                    super::TeacherInput::Path(p) => Some(p.as_path()),
                    super::TeacherInput::Table(_) => None,
                }),
            ),
        ]
        .into_iter()
        .filter_map(|(name, path)| path.map(|p| (name, p)))
        .collect()
    }
}

impl RunSpec {
    /// Checks how the settings go together, without reading any input (a packed file is only
    /// recognized by its name or its first bytes, as TFRecord or not), the way every front end
    /// (`nsl train`, Python) needs it checked: one place for every rule.
    ///
    /// # Errors
    /// [`RunError::Settings`] naming the settings that do not go together (e.g. `record_adversarial
    /// needs adv_reg`), [`RunError::Config`] for a value out of range.
    pub fn check(self) -> Result<CheckedRun, RunError> {
        let form = self.form()?;
        let task = self.task;
        if !matches!(form, Form::Stream(..)) && (self.shuffle_buffer.is_some() || self.keep_part_order) {
            return Err(RunError::settings(
                "@shuffle_buffer and @keep_part_order apply to @packed DIR_OR_FILE (a packed Parquet table)",
            ));
        }
        if self.record_every == 0 {
            return Err(RunError::settings("@record_every 0: give a number of epochs ≥ 1 (1 records every epoch)"));
        }
        if self.record_adversarial.is_some() && self.adv_reg.is_none() {
            return Err(RunError::settings("@record_adversarial needs @adv_reg"));
        }
        if self.record_adversarial.is_some() && !task.has_classes() {
            return Err(RunError::settings(format!(
                "@record_adversarial records classes: it needs @task multiclass or binary, not {task}"
            )));
        }
        if self.class_weights.is_some() && !task.has_classes() {
            return Err(RunError::settings(format!(
                "@class_weights applies to @task multiclass or binary, not {task} (use @weight_column)"
            )));
        }
        let mut model = self.model.clone();
        if let Some(dropout) = self.dropout {
            if !(0.0..1.0).contains(&dropout) {
                return Err(RunError::settings(format!("@dropout {dropout} must be in [0, 1)")));
            }
            model = model.with_dropout(dropout);
        }
        self.train.validate()?;
        let schedules = &self.train.multiplier_schedules;
        let none = MultiplierSchedule::default();
        for (name, scheduled, needs, given) in [
            ("@graph_reg_schedule", schedules.graph != none, "@graph_reg", self.graph_reg.is_some()),
            ("@adv_reg_schedule", schedules.adversarial != none, "@adv_reg", self.adv_reg.is_some()),
            ("@vat_schedule", schedules.vat != none, "@vat", self.vat.is_some()),
        ] {
            if scheduled && !given {
                return Err(RunError::settings(format!("{name} needs {needs} (the multiplier it schedules)")));
            }
        }
        if self.train.early_stopping.is_some() && self.validation.is_none() {
            return Err(RunError::settings(
                "@early_stopping needs @validation (the samples whose accuracy it watches)",
            ));
        }
        self.unlabeled_config.validate()?;
        if let Some(reg) = &self.graph_reg {
            reg.validate()?;
        }
        if let Some(vat) = &self.vat {
            vat.validate()?;
        }
        if let Some(distill) = &self.distill {
            distill.config.validate()?;
            if task != Task::Multiclass {
                return Err(RunError::settings(format!(
                    "@distill teaches class probabilities: it needs @task multiclass, not {task}"
                )));
            }
            if !matches!(form, Form::Plain) {
                return Err(RunError::settings("@distill needs @samples (not @packed)"));
            }
        }
        self.check_packed(&form)?;
        match (&self.graph, &self.graph_reg, &form) {
            (Some(_), None, _) => {
                return Err(RunError::settings("@graph needs @graph_reg (e.g. multiplier=0.1,neighbors=1)"))
            }
            (None, Some(_), Form::Plain) => return Err(RunError::settings("@graph_reg needs @graph")),
            _ => {}
        }
        if self.weight_column.is_some() && matches!(self.samples, Some(Input::Samples(_))) {
            return Err(RunError::settings(
                "@weight_column names a column of a samples file: samples in memory carry their own weights",
            ));
        }
        let init_seed = self.init_seed.unwrap_or(self.train.seed);
        Ok(CheckedRun { spec: self, form, model, init_seed })
    }

    /// Where the training samples come from: `packed PATH` is a packed table to stream, or packed
    /// TFRecord records (as `samples PATH` with `packed`).
    fn form(&self) -> Result<Form, RunError> {
        let stream = || PackedConfig {
            buffer: self.shuffle_buffer.unwrap_or(PackedConfig::default().buffer),
            shuffle_parts: !self.keep_part_order,
        };
        let form = match (&self.packed, &self.samples) {
            (Some(Packed::Path(p)), Some(s)) => {
                return Err(RunError::settings(format!(
                    "@packed {} and @samples {}: give the packed samples once (@packed DIR_OR_FILE, or @samples \
                     FILE.tfr with @packed)",
                    p.display(),
                    s.name("training")
                )))
            }
            (Some(Packed::Path(p)), None) if !p.is_dir() && crate::tfrecord::is_tfrecord(p) => Form::Records(p.clone()),
            (Some(Packed::Path(p)), None) => Form::Stream(p.clone(), stream()),
            (Some(Packed::Records), Some(Input::Path(p))) => Form::Records(p.clone()),
            (Some(Packed::Records), Some(Input::Samples(_))) => {
                return Err(RunError::settings(
                    "@packed records are read from a TFRecord file: give @samples as a file, or the packed \
                     neighbors as @pool and @graph",
                ))
            }
            (None, Some(_)) => Form::Plain,
            (_, None) => return Err(RunError::settings("@samples is required, or @packed DIR_OR_FILE")),
        };
        if let Form::Stream(_, config) = &form {
            config.validate()?;
        }
        Ok(form)
    }

    /// Either packed form (a streamed Parquet table, or TFRecord records read whole) brings its
    /// own neighbors and class labels; a streamed one has no sample weights (so no class weights),
    /// and its neighbors were chosen when packing.
    fn check_packed(&self, form: &Form) -> Result<(), RunError> {
        let task = self.task;
        let form_name = match form {
            Form::Plain => return Ok(()),
            Form::Stream(..) => {
                if !task.has_classes() || self.weight_column.is_some() || self.class_weights.is_some() {
                    return Err(RunError::settings(format!(
                        "@packed tables carry class labels only: @task {task}, @weight_column and @class_weights \
                         need Parquet or CSV samples"
                    )));
                }
                if let Some(g) = &self.graph_reg {
                    if g.hops != 1 {
                        return Err(RunError::settings(format!(
                            "@graph_reg hops={}: a @packed table's neighbors were packed (hops=1)",
                            g.hops
                        )));
                    }
                    let [ll, lu, _] = g.edge_multipliers();
                    if ll != lu {
                        return Err(RunError::settings(format!(
                            "@graph_reg multiplier-lu={lu}: a @packed table does not say which neighbors are \
                             labeled (give multiplier-ll's {ll})"
                        )));
                    }
                }
                "table"
            }
            Form::Records(_) => {
                if !task.has_classes() || self.weight_column.is_some() {
                    return Err(RunError::settings(format!(
                        "@packed records carry class labels only: @task {task} and @weight_column need Parquet or \
                         CSV samples"
                    )));
                }
                if self.graph_reg.is_none() {
                    return Err(RunError::settings("@packed needs @graph_reg (e.g. multiplier=0.1,neighbors=1)"));
                }
                "records"
            }
        };
        if self.pool.is_some() || self.graph.is_some() || self.unlabeled.is_some() {
            return Err(RunError::settings(format!(
                "@packed takes the graph and the pool from the {form_name}: drop @graph, @pool and @unlabeled"
            )));
        }
        Ok(())
    }
}
