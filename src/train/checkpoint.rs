//! Checkpoints: a run directory with the weights (`model.safetensors`) and what is needed to rebuild
//! the model (`model.json`: spec, input shape, classes).

use crate::io::{write_atomic_path, write_bytes_atomic};
use crate::model::{build_model, Model, ModelSpec};
use candle_core::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything about a trained model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// Version of this layout (1).
    pub format_version: u32,
    /// The model.
    pub spec: ModelSpec,
    /// Shape of one input item, e.g. `[1433]` or `[1, 28, 28]`.
    pub item_shape: Vec<usize>,
    /// Number of classes (outputs).
    pub classes: usize,
    /// Class names, if the training data had them.
    pub class_names: Option<Vec<String>>,
    /// The seed the weights were initialized from.
    pub seed: u64,
    /// The training configuration and results, free-form (for the record).
    #[serde(default)]
    pub training: serde_json::Value,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The model, with the saved weights.
    pub model: Box<dyn Model>,
    /// Its variables.
    pub vars: VarMap,
    /// The metadata.
    pub meta: CheckpointMeta,
}

/// Errors of saving or loading a checkpoint.
#[derive(Debug, thiserror::Error)]
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
    /// `model.json` is not valid.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The weights could not be saved, or do not fit the model described in `model.json`.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

const WEIGHTS: &str = "model.safetensors";
const META: &str = "model.json";

/// Saves `vars` and `meta` into the directory `dir` (created if missing); each file is written atomically.
///
/// # Errors
/// [`CheckpointError`] naming the file that could not be written.
pub fn save_checkpoint(dir: &Path, meta: &CheckpointMeta, vars: &VarMap) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.to_path_buf(), source })?;
    let weights = dir.join(WEIGHTS);
    write_atomic_path(&weights, |tmp| {
        vars.save(tmp).map_err(|e| CheckpointError::Weights { path: weights.clone(), message: e.to_string() })
    })
    .or_else(|e| match e {
        CheckpointError::Io { source, .. } => Err(CheckpointError::Io { path: weights.clone(), source }),
        other => Err(other),
    })?;
    let meta_path = dir.join(META);
    let json =
        serde_json::to_vec_pretty(meta).map_err(|source| CheckpointError::Json { path: meta_path.clone(), source })?;
    write_bytes_atomic(&meta_path, &json).map_err(|source| CheckpointError::Io { path: meta_path, source })
}

impl From<std::io::Error> for CheckpointError {
    fn from(source: std::io::Error) -> Self {
        CheckpointError::Io { path: PathBuf::new(), source }
    }
}

/// Loads the checkpoint in `dir`: rebuilds the model from `model.json` and sets its weights from
/// `model.safetensors`.
///
/// # Errors
/// [`CheckpointError`] naming the file: missing files, invalid JSON, or weights that do not match
/// the model spec (a checkpoint of another model).
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let meta_path = dir.join(META);
    let text = std::fs::read(&meta_path).map_err(|source| CheckpointError::Io { path: meta_path.clone(), source })?;
    let meta: CheckpointMeta =
        serde_json::from_slice(&text).map_err(|source| CheckpointError::Json { path: meta_path.clone(), source })?;
    let weights = dir.join(WEIGHTS);
    let bad = |message: String| CheckpointError::Weights { path: weights.clone(), message };
    let (model, mut vars) = build_model(&meta.spec, &meta.item_shape, meta.classes, meta.seed, &Device::Cpu)
        .map_err(|e| CheckpointError::Weights { path: meta_path.clone(), message: e.to_string() })?;
    if !weights.is_file() {
        return Err(bad("missing (no trained weights in this run directory)".into()));
    }
    let expected = vars.all_vars().len();
    let stored = candle_core::safetensors::load(&weights, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
    if stored.len() != expected {
        return Err(bad(format!(
            "holds {} tensors but the model {} in {} has {expected}: a checkpoint of another model",
            stored.len(),
            meta.spec,
            meta_path.display()
        )));
    }
    vars.load(&weights)
        .map_err(|e| bad(format!("does not fit the model {} in {}: {e}", meta.spec, meta_path.display())))?;
    Ok(Checkpoint { model, vars, meta })
}
