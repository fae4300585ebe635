//! [`TrainState`]: what a run needs to continue after a completed epoch, and its file.
//!
//! # What is saved
//! The weights, the optimizer (its step count and Adam's two moments), the position of every
//! random stream (the batch order's generator and the current order, the unlabeled centers' draw,
//! the model's dropout generators; adversarial and VAT seeds are derived from the seed, the epoch
//! and the batch, so they need nothing), the history so far, early stopping's best epoch and
//! weights, the [`TrainConfig`] and the regularizers' settings. A run resumed from it
//! ([`Trainer::resume_from`](super::Trainer::resume_from)) ends with the weights of an
//! uninterrupted run, bit for bit (same thread count).
//!
//! # The file
//! One safetensors file, written atomically ([`crate::io::AtomicFile`]): the `f32` tensors
//! `weight/NAME`, `adam.m/NAME`, `adam.v/NAME` and `best/NAME`, and the rest as JSON in the
//! header's `__metadata__` under `nsl.train_state`. A kill while it is written leaves the previous
//! file. Loading checks every tensor's type, size and place in the file before reading it.

use super::{History, TrainConfig};
use crate::io::AtomicFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The version of the state layout this nsl writes and reads.
const STATE_VERSION: u32 = 1;

/// The key of the JSON part in the safetensors header's `__metadata__`.
const META_KEY: &str = "nsl.train_state";

/// The largest state file header read.
const MAX_HEADER_BYTES: u64 = 1 << 30;

/// The state of a run after a completed epoch (see the module docs): saved by
/// [`Trainer::on_epoch_state`](super::Trainer::on_epoch_state), continued by
/// [`Trainer::resume_from`](super::Trainer::resume_from).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    pub(super) meta: StateMeta,
    /// Each variable's values, in name order (as `meta.variables`).
    pub(super) weights: Vec<Vec<f32>>,
    /// Adam's `(m, v)` per variable (empty for SGD).
    pub(super) moments: Vec<(Vec<f32>, Vec<f32>)>,
    /// Early stopping's best weights.
    pub(super) best_weights: Option<Vec<Vec<f32>>>,
}

/// The JSON part of a [`TrainState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateMeta {
    pub format_version: u32,
    /// Completed epochs.
    pub epoch: usize,
    pub config: TrainConfig,
    /// The regularizers and unlabeled centers' settings and the sample counts (compared on resume).
    pub setup: serde_json::Value,
    pub history: History,
    /// Variable names and shapes, in name order.
    pub variables: Vec<(String, Vec<usize>)>,
    pub optimizer_steps: u64,
    /// Early stopping: best validation accuracy and its epoch, epochs since.
    pub best: Option<(f64, usize)>,
    pub since_best: usize,
    /// The batch order after the last epoch's shuffle, and the shuffle generator's word position.
    pub order: Vec<usize>,
    pub order_rng: String,
    /// The unlabeled centers' draw: order, next index, generator position.
    pub unlabeled: Option<(Vec<usize>, usize, String)>,
    /// The model's random streams ([`Model::rng_positions`](crate::model::Model::rng_positions)).
    pub model_rng: Vec<String>,
}

/// Why a [`TrainState`] could not be saved, loaded or resumed from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state this nsl wrote (truncated, another format or version).
    #[error("{}: not a training state nsl can resume from: {message}", path.display())]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The state belongs to a run with other settings, model or data.
    #[error(
        "the saved state was made with {setting} = {saved}, this run has {current}: a run resumes with \
         the settings it started with"
    )]
    Mismatch {
        /// The setting, e.g. `batch_size` or `graph`.
        setting: String,
        /// Its value in the state.
        saved: String,
        /// Its value in this run.
        current: String,
    },
}

impl TrainState {
    /// The file a run keeps its state in, inside its `OUT.partial/` directory (`nsl train
    /// --checkpoint-every`, `--resume`; the Python estimators' `checkpoint` and `resume`).
    pub const FILE_NAME: &'static str = "state.safetensors";

    /// Completed epochs.
    pub fn epoch(&self) -> usize {
        self.meta.epoch
    }

    /// The history of the completed epochs.
    pub fn history(&self) -> &History {
        &self.meta.history
    }

    /// The training configuration of the run.
    pub fn config(&self) -> &TrainConfig {
        &self.meta.config
    }

    /// Writes the state to `path`, atomically (a kill while writing leaves the previous file).
    ///
    /// # Errors
    /// [`StateError::Io`] naming `path`.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Io { path: path.to_path_buf(), source };
        let meta = serde_json::to_string(&self.meta)
            .map_err(|e| StateError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        let mut tensors: Vec<(String, &[f32])> = Vec::new();
        for (i, (name, _)) in self.meta.variables.iter().enumerate() {
            tensors.push((format!("weight/{name}"), &self.weights[i]));
            if let Some((m, v)) = self.moments.get(i) {
                tensors.push((format!("adam.m/{name}"), m));
                tensors.push((format!("adam.v/{name}"), v));
            }
            if let Some(best) = &self.best_weights {
                tensors.push((format!("best/{name}"), &best[i]));
            }
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({ META_KEY: meta }));
        let mut offset = 0u64;
        for (name, values) in &tensors {
            let bytes = 4 * values.len() as u64;
            header.insert(
                name.clone(),
                serde_json::json!({ "dtype": "F32", "shape": [values.len()], "data_offsets": [offset, offset + bytes] }),
            );
            offset += bytes;
        }
        let mut json = serde_json::to_vec(&header)
            .map_err(|e| StateError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        json.resize(json.len().next_multiple_of(8), b' ');
        let mut out = AtomicFile::create(path).map_err(io)?;
        let mut w = std::io::BufWriter::new(out.file().map_err(io)?);
        w.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&json).map_err(io)?;
        for (_, values) in &tensors {
            for v in *values {
                w.write_all(&v.to_le_bytes()).map_err(io)?;
            }
        }
        w.flush().map_err(io)?;
        drop(w);
        out.commit().map_err(io)
    }

    /// Reads a state written by [`TrainState::save`].
    ///
    /// # Errors
    /// [`StateError::Io`] if it cannot be read, [`StateError::Invalid`] if it is not a complete
    /// state of this version (every tensor is checked against the variables the JSON part lists).
    pub fn load(path: &Path) -> Result<TrainState, StateError> {
        let invalid = |message: String| StateError::Invalid { path: path.to_path_buf(), message };
        let io = |source| StateError::Io { path: path.to_path_buf(), source };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut prefix = [0u8; 8];
        file.read_exact(&mut prefix).map_err(|_| invalid(format!("{size} bytes: too short")))?;
        let len = u64::from_le_bytes(prefix);
        if len > MAX_HEADER_BYTES || len > size - 8 {
            return Err(invalid(format!("header of {len} bytes in a file of {size}")));
        }
        let mut json = vec![0u8; len as usize];
        file.read_exact(&mut json).map_err(io)?;
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&json).map_err(|e| invalid(format!("header: {e}")))?;
        let meta_text = header
            .get("__metadata__")
            .and_then(|m| m.get(META_KEY))
            .and_then(|m| m.as_str())
            .ok_or_else(|| invalid(format!("no `{META_KEY}` in the header's metadata")))?;
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let VersionOnly { format_version } =
            serde_json::from_str(meta_text).map_err(|e| invalid(format!("metadata: {e}")))?;
        if format_version != STATE_VERSION {
            return Err(invalid(format!("format_version {format_version} (this nsl reads {STATE_VERSION})")));
        }
        let meta: StateMeta = serde_json::from_str(meta_text).map_err(|e| invalid(format!("metadata: {e}")))?;
        let data_len = size - 8 - len;
        // Every tensor's place, checked against the file before anything is allocated for it.
        let mut entries: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (name, entry) in header.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
            let dtype = entry.get("dtype").and_then(|d| d.as_str());
            let offsets = entry.get("data_offsets").and_then(|o| o.as_array()).and_then(|o| match o.as_slice() {
                [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                _ => None,
            });
            match (dtype, offsets) {
                (Some("F32"), Some((a, b))) if a <= b && b <= data_len && (b - a) % 4 == 0 => {
                    entries.insert(name, (a, b));
                }
                _ => return Err(invalid(format!("tensor `{name}`: not F32 within the file"))),
            }
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io)?;
        let mut take = |name: String, expected: usize| -> Result<Vec<f32>, StateError> {
            let (a, b) = entries.remove(name.as_str()).ok_or_else(|| invalid(format!("no tensor `{name}`")))?;
            if (b - a) / 4 != expected as u64 {
                return Err(invalid(format!("tensor `{name}` has {} values, its variable {expected}", (b - a) / 4)));
            }
            Ok(data[a as usize..b as usize]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let adam = matches!(meta.config.optimizer, super::OptimizerConfig::Adam { .. });
        let (mut weights, mut moments, mut best) = (Vec::new(), Vec::new(), Vec::new());
        for (name, shape) in &meta.variables {
            let n = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| invalid(format!("shape {shape:?}")))?;
            weights.push(take(format!("weight/{name}"), n)?);
            if adam {
                moments.push((take(format!("adam.m/{name}"), n)?, take(format!("adam.v/{name}"), n)?));
            }
            if meta.best.is_some() {
                best.push(take(format!("best/{name}"), n)?);
            }
        }
        if let Some(extra) = entries.keys().next() {
            return Err(invalid(format!("unexpected tensor `{extra}`")));
        }
        let best_weights = meta.best.is_some().then_some(best);
        Ok(TrainState { meta, weights, moments, best_weights })
    }

    /// Checks that this state continues a run of `config` and `setup` over `variables`.
    pub(super) fn check(
        &self,
        config: &TrainConfig,
        setup: &serde_json::Value,
        variables: &[(String, Vec<usize>)],
    ) -> Result<(), StateError> {
        let saved = serde_json::to_value(&self.meta.config).unwrap_or_default();
        let current = serde_json::to_value(config).unwrap_or_default();
        first_difference(&saved, &current)?;
        first_difference(&self.meta.setup, setup)?;
        if self.meta.variables != variables {
            return Err(StateError::Mismatch {
                setting: "the model's variables".into(),
                saved: describe(&self.meta.variables),
                current: describe(variables),
            });
        }
        Ok(())
    }
}

fn describe(vars: &[(String, Vec<usize>)]) -> String {
    vars.iter().map(|(n, s)| format!("{n}{s:?}")).collect::<Vec<_>>().join(" ")
}

/// The first top-level key whose value differs between two JSON objects, as a mismatch.
fn first_difference(saved: &serde_json::Value, current: &serde_json::Value) -> Result<(), StateError> {
    if saved == current {
        return Ok(());
    }
    let none = serde_json::Value::Null;
    let keys: std::collections::BTreeSet<&String> = saved
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .chain(current.as_object().into_iter().flat_map(|o| o.keys()))
        .collect();
    for key in keys {
        let (a, b) = (saved.get(key).unwrap_or(&none), current.get(key).unwrap_or(&none));
        if a != b {
            return Err(StateError::Mismatch { setting: key.clone(), saved: a.to_string(), current: b.to_string() });
        }
    }
    Err(StateError::Mismatch { setting: "settings".into(), saved: saved.to_string(), current: current.to_string() })
}
