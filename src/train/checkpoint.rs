//! Checkpoints: a run directory with the weights (`model.safetensors`) and what is needed to rebuild
//! the model (`model.json`: spec, input shape, classes).
//!
//! Both files are written atomically ([`crate::io::AtomicFile`]) with the umask's permissions, so
//! a run directory can be shared. Loading trusts neither file: `model.json` is validated (format
//! version, class names, layer sizes) and the parameter count it implies is compared with the
//! safetensors header **before** the model is allocated, so a corrupt or foreign checkpoint is an
//! error naming the file, never a panic or a huge allocation.

use crate::data::Dataset;
use crate::io::AtomicFile;
use crate::loss::Task;
use crate::model::{build_model, InputGroup, Model, ModelSpec, MAX_WIDTH};
use candle_core::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The version of the checkpoint layout this nsl writes, and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The largest safetensors header read (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Everything about a trained model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// Version of this layout (`FORMAT_VERSION`, 1).
    pub format_version: u32,
    /// The model.
    pub spec: ModelSpec,
    /// Shape of one input item, e.g. `[1433]` or `[1, 28, 28]`.
    pub item_shape: Vec<usize>,
    /// Number of classes (outputs).
    pub classes: usize,
    /// Class names, if the training data had them (then exactly `classes` of them; 2 for a
    /// binary task's single output).
    pub class_names: Option<Vec<String>>,
    /// The task the model was trained for (its outputs' meaning). Absent in `model.json` =
    /// multiclass, as every run before tasks; written only for the other tasks.
    #[serde(default, skip_serializing_if = "is_multiclass")]
    pub task: Task,
    /// The seed the weights were initialized from.
    pub seed: u64,
    /// The training configuration and results, free-form (for the record).
    #[serde(default)]
    pub training: serde_json::Value,
}

impl CheckpointMeta {
    /// The metadata of a model `spec` for items of `item_shape` and `classes` classes, at the
    /// current `FORMAT_VERSION` (1). It is validated when saved and when loaded.
    pub fn new(
        spec: ModelSpec,
        item_shape: Vec<usize>,
        classes: usize,
        class_names: Option<Vec<String>>,
        seed: u64,
        training: serde_json::Value,
    ) -> Self {
        CheckpointMeta {
            format_version: FORMAT_VERSION,
            spec,
            item_shape,
            classes,
            class_names,
            task: Task::Multiclass,
            seed,
            training,
        }
    }

    /// The metadata with another task (default multiclass).
    pub fn with_task(mut self, task: Task) -> Self {
        self.task = task;
        self
    }

    /// Checks everything but the weights and returns the model's `(tensors, parameters)`;
    /// `path` is the `model.json` named in errors.
    fn validate(&self, path: &Path) -> Result<(usize, u64), CheckpointError> {
        if self.format_version != FORMAT_VERSION {
            return Err(CheckpointError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: self.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let invalid = |message: String| CheckpointError::Invalid { path: path.to_path_buf(), message };
        if self.classes == 0 || self.classes > MAX_WIDTH {
            return Err(invalid(format!("classes {} is not in 1..={MAX_WIDTH}", self.classes)));
        }
        if self.task == Task::Binary && self.classes != 1 {
            return Err(invalid(format!("a binary model has 1 output, not {}", self.classes)));
        }
        if let Some(names) = &self.class_names {
            let expected = if self.task == Task::Binary { 2 } else { self.classes };
            if names.len() != expected {
                return Err(invalid(format!(
                    "{} class names for {} classes (there must be one name per class)",
                    names.len(),
                    expected
                )));
            }
        }
        let size = self.spec.size(&self.item_shape, self.classes).map_err(|e| invalid(e.to_string()))?;
        Ok((size.tensors, size.parameters))
    }
}

fn is_multiclass(task: &Task) -> bool {
    *task == Task::Multiclass
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The model, with the saved weights.
    pub model: Box<dyn Model>,
    /// Its variables.
    pub vars: VarMap,
    /// The metadata.
    pub meta: CheckpointMeta,
    /// The run directory it was loaded from.
    dir: PathBuf,
}

impl Checkpoint {
    /// The run directory the checkpoint was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks that `samples` can be fed to the model: each must have as many features as the
    /// model's items (`item_shape`'s product). The shapes themselves may differ (a flattened CSV
    /// of images fits a model trained on IDX images), since the model flattens or reshapes its input.
    ///
    /// # Errors
    /// [`CheckpointError::InputMismatch`] naming the run, both feature counts and the item shape,
    /// e.g. "samples have 8 features but the run's model expects 784 (item shape [1, 28, 28])".
    pub fn check_input(&self, samples: &Dataset) -> Result<(), CheckpointError> {
        let expected: usize = self.meta.item_shape.iter().product();
        if samples.dim() == expected {
            Ok(())
        } else {
            Err(CheckpointError::InputMismatch {
                path: self.dir.clone(),
                features: samples.dim(),
                expected,
                item_shape: self.meta.item_shape.clone(),
            })
        }
    }
}

impl Checkpoint {
    /// `samples` laid out as the model reads them. A `bow` model's token groups were as wide as
    /// the longest list of the files it was trained on, while each file read later has its own
    /// longest list: shorter lists are padded, and for longer ones the model is rebuilt with wider
    /// groups and the same weights (a bag is pooled whatever its length, so nothing else
    /// changes; `meta` then records the wider groups). Ids must be below the model's vocabulary.
    /// Other models need as many features as their items ([`Checkpoint::check_input`]).
    ///
    /// # Errors
    /// [`CheckpointError::InputMismatch`] for a feature count a dense model cannot take;
    /// [`CheckpointError::Samples`] for feature groups other than the model's, or a token id past
    /// its vocabulary (naming the row, the sample id, the group and the id).
    pub fn fit_samples(&mut self, samples: Dataset) -> Result<Dataset, CheckpointError> {
        use crate::data::{FeatureGroup, FeatureKind, FeatureLayout};
        let ModelSpec::Bow(bow) = &self.meta.spec else {
            self.check_input(&samples)?;
            return Ok(samples);
        };
        let unfit = |source| CheckpointError::Samples { path: self.dir.clone(), source };
        let groups = bow
            .inputs
            .iter()
            .map(|g| match g {
                InputGroup::Tokens { name, max_len, vocab } => {
                    FeatureGroup { name: name.clone(), kind: FeatureKind::Tokens { max_len: *max_len, vocab: *vocab } }
                }
                other => {
                    FeatureGroup { name: other.name().to_owned(), kind: FeatureKind::Dense { width: other.width() } }
                }
            })
            .collect();
        let model_layout = FeatureLayout::new(groups).map_err(unfit)?;
        if !samples.layout().has_tokens() {
            // A table of the padded ids themselves (a CSV, say): read as the model's groups.
            self.check_input(&samples)?;
            return samples.with_layout(model_layout).map_err(unfit);
        }
        let layout = model_layout.widen_to(samples.layout()).map_err(unfit)?;
        if layout != model_layout {
            let mut spec = bow.clone();
            for (input, group) in spec.inputs.iter_mut().zip(layout.groups()) {
                if let InputGroup::Tokens { max_len, .. } = input {
                    *max_len = group.kind.width();
                }
            }
            let spec = ModelSpec::Bow(spec);
            let item_shape = vec![layout.width()];
            let invalid =
                |e: candle_core::Error| CheckpointError::Invalid { path: self.dir.clone(), message: e.to_string() };
            let (model, mut vars) =
                build_model(&spec, &item_shape, self.meta.classes, self.meta.seed, &Device::Cpu).map_err(invalid)?;
            {
                let saved = self.vars.data().lock().map_err(|_| CheckpointError::Invalid {
                    path: self.dir.clone(),
                    message: "the variables' lock is poisoned".into(),
                })?;
                vars.set(saved.iter().map(|(name, var)| (name, var.as_tensor()))).map_err(invalid)?;
            }
            (self.model, self.vars, self.meta.spec, self.meta.item_shape) = (model, vars, spec, item_shape);
        }
        samples.conform(&layout).map_err(|source| CheckpointError::Samples { path: self.dir.clone(), source })
    }
}

/// Errors of saving or loading a checkpoint. Every variant names the file (or run directory).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `model.json` is not valid JSON for [`CheckpointMeta`].
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// `model.json` has a `format_version` this nsl does not read.
    #[error("{}: format_version {found} is not supported (this nsl reads format_version {supported})", path.display())]
    UnsupportedVersion {
        /// `model.json`.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// `FORMAT_VERSION`, the version this nsl reads.
        supported: u32,
    },
    /// `model.json` parses but describes no valid model (class names, layer sizes, input shape).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// `model.json`.
        path: PathBuf,
        /// What is wrong, with the values.
        message: String,
    },
    /// The weights could not be saved, or do not fit the model described in `model.json`.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Samples whose feature count differs from the model's input ([`Checkpoint::check_input`]).
    #[error(
        "{}: samples have {features} features but the run's model expects {expected} (item shape {item_shape:?})",
        path.display()
    )]
    InputMismatch {
        /// The run directory.
        path: PathBuf,
        /// Features per sample.
        features: usize,
        /// Features the model expects.
        expected: usize,
        /// The model's item shape.
        item_shape: Vec<usize>,
    },
    /// Samples whose feature groups do not fit the model's ([`Checkpoint::fit_samples`]).
    #[error("{}: {source}", path.display())]
    Samples {
        /// The run directory.
        path: PathBuf,
        /// What does not fit, naming the row and group.
        #[source]
        source: crate::data::DataError,
    },
}

const WEIGHTS: &str = "model.safetensors";
const META: &str = "model.json";

/// Saves `vars` and `meta` into the directory `dir` (created if missing); each file is written
/// atomically, readable by others as the umask allows. `meta` is validated first, so a checkpoint
/// that could not be loaded is never written.
///
/// # Errors
/// [`CheckpointError`] naming the file that could not be written, or `model.json` when `meta` is
/// invalid ([`CheckpointError::UnsupportedVersion`], [`CheckpointError::Invalid`]).
pub fn save_checkpoint(dir: &Path, meta: &CheckpointMeta, vars: &VarMap) -> Result<(), CheckpointError> {
    let meta_path = dir.join(META);
    meta.validate(&meta_path)?;
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.to_path_buf(), source })?;
    let weights = dir.join(WEIGHTS);
    let mut out =
        AtomicFile::create(&weights).map_err(|source| CheckpointError::Io { path: weights.clone(), source })?;
    write_safetensors(vars, &mut out, &weights)?;
    out.commit().map_err(|source| CheckpointError::Io { path: weights.clone(), source })?;
    let json =
        serde_json::to_vec_pretty(meta).map_err(|source| CheckpointError::Json { path: meta_path.clone(), source })?;
    crate::io::write_bytes(&meta_path, &json).map_err(|source| CheckpointError::Io { path: meta_path, source })
}

/// One tensor entry of a safetensors header, fields in the order the safetensors crate writes them.
#[derive(Serialize, Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Writes `vars` in the safetensors format to `out` (`path` is named in errors): the `u64`
/// little-endian header length, the JSON header (tensors sorted by name, padded with spaces to a
/// multiple of 8 bytes) and the little-endian `f32` data. The bytes are those of
/// [`VarMap::save`], which can only write to a path and replaces it with its own `0600` file; this
/// streams into the [`AtomicFile`] instead.
fn write_safetensors(vars: &VarMap, out: &mut AtomicFile, path: &Path) -> Result<(), CheckpointError> {
    use std::io::Write;
    let bad = |message: String| CheckpointError::Weights { path: path.to_path_buf(), message };
    let io_error = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let vars = vars.data().lock().map_err(|_| bad("the variables' lock is poisoned".into()))?;
    let sorted: std::collections::BTreeMap<&str, &candle_core::Var> =
        vars.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut header = std::collections::BTreeMap::new();
    let mut offset = 0u64;
    for (&name, var) in &sorted {
        if var.dtype() != candle_core::DType::F32 {
            return Err(bad(format!("variable `{name}` is {:?}; checkpoints hold F32 only", var.dtype())));
        }
        let bytes = 4 * var.elem_count() as u64;
        let shape = var.dims().iter().map(|&d| d as u64).collect();
        header.insert(name, TensorEntry { dtype: "F32".into(), shape, data_offsets: (offset, offset + bytes) });
        offset += bytes;
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
    json.resize(json.len().next_multiple_of(8), b' ');
    out.write_all(&(json.len() as u64).to_le_bytes()).map_err(io_error)?;
    out.write_all(&json).map_err(io_error)?;
    for var in sorted.values() {
        let values = var.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| bad(e.to_string()))?;
        for v in values {
            out.write_all(&v.to_le_bytes()).map_err(io_error)?;
        }
    }
    Ok(())
}

/// Only the version of `model.json`, read before the rest so that a file of another version is
/// reported as such even if its fields differ.
#[derive(Deserialize)]
struct VersionOnly {
    format_version: u32,
}

/// Loads the checkpoint in `dir`: validates `model.json`, checks the weights' header against it,
/// rebuilds the model and sets its weights from `model.safetensors`.
///
/// # Errors
/// [`CheckpointError`] naming the file: missing files, invalid JSON, an unsupported
/// `format_version`, class names that do not match `classes`, layer sizes out of range, or
/// weights that do not match the model spec (a checkpoint of another model).
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let meta_path = dir.join(META);
    let text = std::fs::read(&meta_path).map_err(|source| CheckpointError::Io { path: meta_path.clone(), source })?;
    let json_error = |source| CheckpointError::Json { path: meta_path.clone(), source };
    let VersionOnly { format_version } = serde_json::from_slice(&text).map_err(json_error)?;
    if format_version != FORMAT_VERSION {
        return Err(CheckpointError::UnsupportedVersion {
            path: meta_path,
            found: format_version,
            supported: FORMAT_VERSION,
        });
    }
    let meta: CheckpointMeta = serde_json::from_slice(&text).map_err(json_error)?;
    let (tensors, parameters) = meta.validate(&meta_path)?;

    let weights = dir.join(WEIGHTS);
    let bad = |message: String| CheckpointError::Weights { path: weights.clone(), message };
    if !weights.is_file() {
        return Err(bad("missing (no trained weights in this run directory)".into()));
    }
    // Compare sizes from the header before allocating the model: a model.json describing a huge
    // network next to a small weights file must fail here, not in the allocator.
    let stored = safetensors_header(&weights)?;
    if stored.tensors != tensors || stored.parameters != parameters {
        return Err(bad(format!(
            "holds {} parameters in {} tensors, but the model {} described in {} (items {:?}, {} classes) has {parameters} \
             in {tensors}: this file does not fit it (a checkpoint of another model?)",
            stored.parameters,
            stored.tensors,
            meta.spec,
            meta_path.display(),
            meta.item_shape,
            meta.classes
        )));
    }
    let (model, mut vars) = build_model(&meta.spec, &meta.item_shape, meta.classes, meta.seed, &Device::Cpu)
        .map_err(|e| CheckpointError::Invalid { path: meta_path.clone(), message: e.to_string() })?;
    vars.load(&weights)
        .map_err(|e| bad(format!("does not fit the model {} in {}: {e}", meta.spec, meta_path.display())))?;
    check_finite(&vars).map_err(bad)?;
    Ok(Checkpoint { model, vars, meta, dir: dir.to_path_buf() })
}

/// Fails naming the first tensor (by name) that holds a NaN or an infinity, and where: such a
/// model predicts NaN for every sample, and `evaluate` would report `loss NaN` as a result.
fn check_finite(vars: &VarMap) -> Result<(), String> {
    let vars = vars.data().lock().map_err(|_| "the variables' lock is poisoned".to_string())?;
    let sorted: std::collections::BTreeMap<&str, &candle_core::Var> =
        vars.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (name, var) in sorted {
        let values = var.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| e.to_string())?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(format!(
                "tensor `{name}` holds {v} at element {i} of {}: a model with non-finite weights predicts nothing \
                 (a run saved after its loss diverged, or a damaged file)",
                values.len()
            ));
        }
    }
    Ok(())
}

/// Sizes read from a safetensors header.
struct StoredSizes {
    tensors: usize,
    parameters: u64,
}

/// Reads the header of a safetensors file (`u64` little-endian length, then a JSON object of
/// `name → {dtype, shape, data_offsets}`) and checks that every tensor is `F32` and lies within
/// the file, so that the parameter count is backed by the file's bytes.
fn safetensors_header(path: &Path) -> Result<StoredSizes, CheckpointError> {
    let bad = |message: String| CheckpointError::Weights { path: path.to_path_buf(), message };
    let io_error = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|_| bad(format!("{len} bytes: too short for a safetensors file")))?;
    let header_len = u64::from_le_bytes(prefix);
    if header_len > MAX_HEADER_BYTES || header_len > len - 8 {
        return Err(bad(format!("header length {header_len} does not fit the file's {len} bytes")));
    }
    // header_len ≤ MAX_HEADER_BYTES fits a usize on every supported platform.
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io_error)?;
    let data_len = len - 8 - header_len;
    let entries: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("invalid header: {e}")))?;
    let mut sizes = StoredSizes { tensors: 0, parameters: 0 };
    for (name, value) in entries {
        if name == "__metadata__" {
            continue;
        }
        let entry: TensorEntry =
            serde_json::from_value(value).map_err(|e| bad(format!("invalid header entry `{name}`: {e}")))?;
        if entry.dtype != "F32" {
            return Err(bad(format!("tensor `{name}` is {}, expected F32", entry.dtype)));
        }
        let elements = entry.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let (start, end) = entry.data_offsets;
        let fits = elements.zip(end.checked_sub(start)).is_some_and(|(n, bytes)| n.checked_mul(4) == Some(bytes));
        if !fits || end > data_len {
            return Err(bad(format!(
                "tensor `{name}` of shape {:?} does not match its data at bytes {start}..{end} of {data_len}",
                entry.shape
            )));
        }
        sizes.tensors += 1;
        // A hostile header may overlap its tensors: saturate rather than overflow.
        sizes.parameters = sizes.parameters.saturating_add(elements.unwrap_or(0));
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// The metadata of an `mlp:4` on 3 features and 2 classes.
    fn tiny_meta() -> CheckpointMeta {
        CheckpointMeta::new("mlp:4".parse().unwrap(), vec![3], 2, None, 7, serde_json::json!({"note": "test"}))
    }

    /// A run directory holding a freshly initialized checkpoint of [`tiny_meta`].
    fn tiny_run() -> tempfile::TempDir {
        let meta = tiny_meta();
        let (_, vars) = build_model(&meta.spec, &meta.item_shape, meta.classes, meta.seed, &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), &meta, &vars).unwrap();
        dir
    }

    /// Rewrites `model.json` in `dir` with `edit` applied to its JSON.
    fn edit_meta(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(META);
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    }

    fn load_error(dir: &Path) -> CheckpointError {
        load_checkpoint(dir).err().expect("an invalid checkpoint loaded")
    }

    #[test]
    fn round_trip_with_the_current_version() {
        let dir = tiny_run();
        let loaded = load_checkpoint(dir.path()).unwrap();
        assert_eq!(loaded.meta, tiny_meta());
        assert_eq!(loaded.meta.format_version, FORMAT_VERSION);
        assert_eq!(loaded.dir(), dir.path());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn weights_are_byte_for_byte_what_candle_writes() {
        let dir = tempfile::tempdir().unwrap();
        let spec: ModelSpec = "cnn:2,3".parse().unwrap();
        let (_, vars) = build_model(&spec, &[1, 9, 9], 3, 5, &Device::Cpu).unwrap();
        let reference = dir.path().join("reference.safetensors");
        vars.save(&reference).unwrap();
        let ours = dir.path().join("ours.safetensors");
        let mut out = AtomicFile::create(&ours).unwrap();
        write_safetensors(&vars, &mut out, &ours).unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(&ours).unwrap(), std::fs::read(&reference).unwrap());
    }

    #[test]
    fn parameter_counts_match_the_built_models() {
        for (spec, shape) in
            [("mlp:4", vec![3]), ("mlp:5,6", vec![2, 3]), ("cnn:2,3", vec![1, 9, 9]), ("cnn:2", vec![8, 8])]
        {
            let spec: ModelSpec = spec.parse().unwrap();
            let (_, vars) = build_model(&spec, &shape, 3, 0, &Device::Cpu).unwrap();
            let all = vars.all_vars();
            let parameters: usize = all.iter().map(|v| v.elem_count()).sum();
            assert!(all.iter().all(|v| v.dtype() == DType::F32));
            let size = spec.size(&shape, 3).unwrap();
            assert_eq!((size.tensors, size.parameters), (all.len(), parameters as u64), "{spec}");
        }
    }

    #[test]
    fn unknown_format_version_names_the_file_and_the_supported_one() {
        let dir = tiny_run();
        // A future layout may have other fields too: the version is still what is reported.
        edit_meta(dir.path(), |m| {
            m["format_version"] = 99.into();
            m["future_field"] = true.into();
        });
        let err = load_error(dir.path());
        assert!(matches!(err, CheckpointError::UnsupportedVersion { found: 99, supported: 1, .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("model.json") && text.contains("99") && text.contains("format_version 1"), "{text}");
    }

    #[test]
    fn class_names_must_match_classes() {
        let dir = tiny_run();
        edit_meta(dir.path(), |m| m["class_names"] = serde_json::json!(["only one"]));
        let text = load_error(dir.path()).to_string();
        assert!(text.contains("model.json") && text.contains("1 class names for 2 classes"), "{text}");
        // Saving refuses it too, before writing anything.
        let meta = CheckpointMeta { class_names: Some(vec!["a".into()]), ..tiny_meta() };
        let out = tempfile::tempdir().unwrap();
        let err = save_checkpoint(&out.path().join("run"), &meta, &VarMap::new()).unwrap_err();
        assert!(matches!(err, CheckpointError::Invalid { .. }), "{err:?}");
        assert!(!out.path().join("run").exists());
    }

    #[test]
    fn absurd_sizes_are_errors_not_panics_or_allocations() {
        let image = serde_json::json!([1, 8, 8]);
        let cases = [
            ("hidden layer units", serde_json::json!({"type": "mlp", "hidden": [1usize << 30]}), None),
            ("hidden layer units 0", serde_json::json!({"type": "mlp", "hidden": [0]}), None),
            ("pool 0", serde_json::json!({"type": "cnn", "filters": [2, 2], "pool": 0}), Some(&image)),
            ("kernel 0", serde_json::json!({"type": "cnn", "filters": [2], "kernel": 0}), Some(&image)),
            (
                "too small for convolution 1",
                serde_json::json!({"type": "cnn", "filters": [2, 2], "kernel": 5}),
                Some(&image),
            ),
            ("a CNN needs image items", serde_json::json!({"type": "cnn", "filters": [2]}), None),
            ("dropout", serde_json::json!({"type": "mlp", "hidden": [4], "dropout": 1.5}), None),
            // 2^23 × 2^23 weights: every width in range, but 2^46 parameters the file does not hold.
            ("another model", serde_json::json!({"type": "mlp", "hidden": [1usize << 23, 1usize << 23]}), None),
        ];
        for (expected, spec, shape) in cases {
            let dir = tiny_run();
            edit_meta(dir.path(), |m| {
                m["spec"] = spec.clone();
                if let Some(shape) = shape {
                    m["item_shape"] = shape.clone();
                }
            });
            let text = load_error(dir.path()).to_string();
            assert!(text.contains(expected), "{spec}: `{expected}` missing from: {text}");
        }
        let dir = tiny_run();
        edit_meta(dir.path(), |m| m["item_shape"] = serde_json::json!([usize::MAX, usize::MAX]));
        let text = load_error(dir.path()).to_string();
        assert!(text.contains("item dimension"), "{text}");
    }

    #[test]
    fn a_truncated_weights_file_is_an_error() {
        let dir = tiny_run();
        let weights = dir.path().join(WEIGHTS);
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() - 4]).unwrap();
        let text = load_error(dir.path()).to_string();
        assert!(text.contains("model.safetensors") && text.contains("does not match its data"), "{text}");
        std::fs::write(&weights, [1u8, 2, 3]).unwrap();
        let text = load_error(dir.path()).to_string();
        assert!(text.contains("too short"), "{text}");
        std::fs::write(&weights, u64::MAX.to_le_bytes()).unwrap();
        let text = load_error(dir.path()).to_string();
        assert!(text.contains("header length"), "{text}");
    }

    #[test]
    fn check_input_compares_feature_counts() {
        let dir = tiny_run();
        let checkpoint = load_checkpoint(dir.path()).unwrap();
        let fits = Dataset::new(vec!["a".into()], ndarray::array![[1.0, 2.0, 3.0]], vec![3], None, None).unwrap();
        checkpoint.check_input(&fits).unwrap();
        let wide = Dataset::new(vec!["a".into()], ndarray::Array2::zeros((1, 8)), vec![8], None, None).unwrap();
        let err = checkpoint.check_input(&wide).unwrap_err();
        assert!(matches!(err, CheckpointError::InputMismatch { features: 8, expected: 3, .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("samples have 8 features but the run's model expects 3"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn the_weights_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tiny_run();
        let probe = dir.path().join("probe");
        std::fs::File::create(&probe).unwrap();
        let expected = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
        for file in [WEIGHTS, META] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, expected, "{file}");
        }
    }
}
