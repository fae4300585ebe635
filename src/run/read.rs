//! One sample reader for every format and task: what `nsl train`, `nsl evaluate`, `nsl predict`
//! and the Python package read samples with.

use super::error::{Context, RunError};
use crate::data::{self, Dataset, SampleColumns, TargetKind};
use crate::loss::Task;
use crate::tfrecord;
use crate::train::Checkpoint;
use std::path::Path;

/// Reads samples from any file nsl reads (Parquet, CSV, IDX, LINQS `.content`, TFRecord of
/// `tf.train.Example`s, recognized by extension or content).
///
/// Things worth a warning (TFRecord records that repeat an earlier id: the last one is kept, as
/// NSL) are pushed onto `notes`.
///
/// # Errors
/// The reader's error, naming the file and the record, row or line.
pub fn read_samples(path: &Path, columns: &SampleColumns, notes: &mut Vec<String>) -> Result<Dataset, RunError> {
    if !tfrecord::is_tfrecord(path) {
        return Ok(data::read_samples(path, columns)?);
    }
    let (dataset, report) = tfrecord::read_samples(&[path.to_path_buf()], columns)?;
    if report.duplicate_ids > 0 {
        notes.push(format!(
            "{}: {} records repeat an earlier id (the last one is kept, as NSL)",
            path.display(),
            report.duplicate_ids
        ));
    }
    Ok(dataset)
}

/// [`read_samples`] for samples whose labels are not used (pool, unlabeled or predicted samples):
/// for a task without classes (`class_labels` false) a Parquet or CSV table's label column, which
/// holds floats or lists or is absent, is left out ([`data::read_samples_without_labels`]).
///
/// # Errors
/// As [`read_samples`].
pub fn read_samples_for(
    path: &Path,
    columns: &SampleColumns,
    class_labels: bool,
    notes: &mut Vec<String>,
) -> Result<Dataset, RunError> {
    if class_labels || tfrecord::is_tfrecord(path) {
        read_samples(path, columns, notes)
    } else {
        Ok(data::read_samples_without_labels(path, columns)?)
    }
}

/// Reads the samples of `path` with the targets of `task`: class tasks as [`read_samples`] (binary
/// checked for labels 0 and 1, or two class names); multilabel and regression from Parquet or CSV
/// with the label column as their targets (`names`: a trained run's multilabel classes, which
/// also marks samples that are not the training samples).
///
/// # Errors
/// As [`read_samples`]; [`RunError::Settings`] for binary samples with other labels.
pub fn read_for_task(
    path: &Path,
    columns: &SampleColumns,
    task: Task,
    names: Option<&[String]>,
    notes: &mut Vec<String>,
) -> Result<Dataset, RunError> {
    let kind = match task {
        Task::Multilabel => TargetKind::MultiLabel,
        Task::Regression(_) => TargetKind::Values,
        _ => {
            let samples = read_samples(path, columns, notes)?;
            if task == Task::Binary {
                check_binary(&samples, &path.display().to_string(), &columns.label, names.is_none())?;
            }
            return Ok(samples);
        }
    };
    Ok(data::read_samples_with_targets(path, columns, kind, names)?)
}

/// `samples` (read from `path`) weighted by `column` when the table has it (loss and metrics are
/// then weighted); unweighted, with a note, when it has not.
///
/// # Errors
/// [`RunError::Data`] for a weight that is missing, negative or not finite, naming the row.
pub fn weigh_if_present(
    samples: Dataset,
    path: &Path,
    id_column: &str,
    column: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Dataset, RunError> {
    let Some(column) = column else { return Ok(samples) };
    if !data::has_column(path, column)? {
        notes.push(format!("{} has no weight column `{column}`: its loss and metrics are unweighted", path.display()));
        return Ok(samples);
    }
    Ok(data::attach_weights(samples, path, id_column, column)?)
}

/// Checks that class samples (named `name` in messages) fit the binary task: two classes (for the
/// training samples, both named when names are used), labels 0 and 1.
pub(crate) fn check_binary(samples: &Dataset, name: &str, label: &str, training: bool) -> Result<(), RunError> {
    if let Some(found) = samples.class_names().filter(|n| n.len() > 2 || (training && n.len() != 2)) {
        return Err(RunError::settings(format!(
            "{name}: @task binary needs two classes, the label column `{label}` has {} ({})",
            found.len(),
            found.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(row) = samples.labels().and_then(|l| l.iter().position(|&v| v > 1)) {
        return Err(RunError::settings(format!(
            "{name}: row {row} (id `{}`): @task binary needs labels 0 and 1 (or two class names)",
            samples.ids()[row]
        )));
    }
    Ok(())
}

/// Reads samples to score with a saved run (`nsl evaluate`, `nsl predict`): with the targets of
/// the run's task when `targets` (predictions need none: a table without valid ones is then read
/// without), laid out as the run's inputs ([`Checkpoint::fit_samples`]), their class labels
/// mapped onto the run's classes by name.
///
/// # Errors
/// As [`read_for_task`]; [`RunError::Checkpoint`] for samples that do not fit the model,
/// [`RunError::Input`] for an empty table or a label the run does not know.
pub fn read_for_run(
    checkpoint: &mut Checkpoint,
    path: &Path,
    columns: &SampleColumns,
    targets: bool,
    notes: &mut Vec<String>,
) -> Result<Dataset, RunError> {
    let task = checkpoint.meta.task;
    let names = checkpoint.meta.class_names.clone();
    let samples = match (task.has_classes(), targets) {
        (true, _) => read_samples_for(path, columns, true, notes)?,
        (false, true) => read_for_task(path, columns, task, names.as_deref(), notes)?,
        // Predictions need no targets: a table without (valid) ones is read as it is.
        (false, false) => match read_for_task(path, columns, task, names.as_deref(), notes) {
            Ok(samples) => samples,
            Err(_) => read_samples_for(path, columns, false, notes)?,
        },
    };
    let samples =
        checkpoint.fit_samples(samples).context_with(|| format!("cannot use the samples in {}", path.display()))?;
    if samples.is_empty() {
        return Err(RunError::Input(format!(
            "{}: the table has no samples (nothing to evaluate or predict)",
            path.display()
        )));
    }
    match task.has_classes() {
        true => align_labels(checkpoint, samples, path, notes),
        false => Ok(samples),
    }
}

/// Makes the samples' label indices mean the run's classes. String labels are indexed by their
/// sorted distinct names *in each file*, so a test table missing one class would otherwise be
/// scored against shifted classes: labels are mapped through the names when both sides have them
/// (a name the run does not know is an error), and every label must be below the run's class count.
fn align_labels(
    checkpoint: &Checkpoint,
    samples: Dataset,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Dataset, RunError> {
    let Some(labels) = samples.labels() else { return Ok(samples) };
    // A binary model has one output for two classes.
    let classes = if checkpoint.meta.task == Task::Binary { 2 } else { checkpoint.meta.classes };
    let remapped = match (&checkpoint.meta.class_names, samples.class_names()) {
        (Some(run_names), Some(names)) if run_names.as_slice() != names => {
            let mut index = Vec::with_capacity(names.len());
            for name in names {
                match run_names.iter().position(|n| n == name) {
                    Some(i) => index.push(i as u32),
                    None => {
                        return Err(RunError::Input(format!(
                            "{}: label `{name}` is not one of the run's classes ({}): the run {} was trained on \
                             other labels",
                            path.display(),
                            run_names.join(", "),
                            checkpoint.dir().display()
                        )))
                    }
                }
            }
            Some((labels.iter().map(|&l| index[l as usize]).collect::<Vec<u32>>(), run_names.clone()))
        }
        (None, Some(names)) => {
            notes.push(format!(
                "{} has named labels ({}) but the run {} was trained on unnamed ones: label i is taken as class i",
                path.display(),
                names.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                checkpoint.dir().display()
            ));
            None
        }
        _ => None,
    };
    let labels = remapped.as_ref().map_or(labels, |(l, _)| l.as_slice());
    if let Some(row) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(RunError::Input(format!(
            "{}: row {row} (id `{}`) has label {} but the run {} predicts {classes} classes",
            path.display(),
            samples.ids()[row],
            labels[row],
            checkpoint.dir().display()
        )));
    }
    match remapped {
        Some((labels, names)) => Ok(Dataset::new(
            samples.ids().to_vec(),
            samples.features().to_owned(),
            samples.item_shape().to_vec(),
            Some(labels),
            Some(names),
        )?),
        None => Ok(samples),
    }
}
