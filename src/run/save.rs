//! `FittedRun::save`: the staged run directory, committed whole.

use super::check::CheckedRun;
use super::columns::RunColumns;
use super::error::{Context, RunError};
use super::fit::FittedRun;
use crate::io::{OutputSet, StagedDir};
use crate::report::training_curves_svg_with_test;
use crate::train::{save_checkpoint, AdversarialRecord};
use std::path::{Path, PathBuf};

/// The files a run directory holds; an existing run directory is replaced only if it holds
/// nothing else (it may be a user's directory, not a run).
pub const RUN_FILES: [&str; 7] =
    ["model.safetensors", "model.json", "columns.json", "history.json", "history.csv", "summary.json", "curves.svg"];

/// What [`FittedRun::save`] wrote besides the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// With `record_adversarial`: the neighbors recorded, the graph file and its node table.
    pub record: Option<(usize, PathBuf, PathBuf)>,
}

impl CheckedRun {
    /// Checks the run directory `out` before training (so that a long run does not fail at the
    /// end): it must be a directory or not exist, an existing one may hold only a run's files and
    /// must be replaceable, and the adversarial record must not overwrite an input. `spell` names
    /// settings in messages (`nsl train` passes its flags' spelling). Returns whether the record
    /// goes inside the run directory.
    ///
    /// # Errors
    /// [`RunError::Paths`] for an output naming an input, [`RunError::Settings`] or
    /// [`RunError::Io`] for a run directory that cannot be (re)placed.
    pub fn check_out(&self, out: &Path, spell: &dyn Fn(&str) -> String) -> Result<bool, RunError> {
        let flag = spell("out");
        if out.exists() && !out.is_dir() {
            return Err(RunError::Input(format!(
                "{flag} {} is a file; a run is saved as a directory (model.json, model.safetensors, …): name a \
                 directory",
                out.display()
            )));
        }
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let mut allowed: Vec<String> = RUN_FILES.iter().map(|s| s.to_string()).collect();
        let mut inside = false;
        if let Some(record) = &self.spec.record_adversarial {
            let nodes = AdversarialRecord::nodes_path(record);
            let names: Vec<(String, &Path)> = self.input_files().into_iter().map(|(n, p)| (spell(n), p)).collect();
            let inputs: Vec<(&str, &Path)> = names.iter().map(|(n, p)| (n.as_str(), *p)).collect();
            let record_flag = spell("record_adversarial");
            let nodes_flag = format!("{record_flag}'s nodes table");
            crate::io::check_paths(&[(&record_flag, record), (&nodes_flag, &nodes)], &inputs)?;
            let parent = record.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            inside = canonical(parent) == canonical(out);
            if inside {
                for p in [record.as_path(), nodes.as_path()] {
                    allowed.extend(p.file_name().map(|n| n.to_string_lossy().into_owned()));
                }
            }
        }
        // A run directory that cannot be replaced whole (read-only) fails now, not after training.
        crate::io::check_replaceable(out).map_err(|e| RunError::io(format!("{flag} {}", out.display()), e))?;
        if out.is_dir() {
            let reading = || format!("reading {flag} {}", out.display());
            let entries = std::fs::read_dir(out).map_err(|e| RunError::io(reading(), e))?;
            let mut others = Vec::new();
            for entry in entries {
                let name = entry.map_err(|e| RunError::io(reading(), e))?.file_name();
                let name = name.to_string_lossy().into_owned();
                // Stale temporary files of an interrupted nsl write go with the old run.
                let stale_temp = name.starts_with('.') && name.ends_with(".tmp");
                if !allowed.contains(&name) && !stale_temp {
                    others.push(name);
                }
            }
            if !others.is_empty() {
                others.sort();
                others.truncate(5);
                return Err(RunError::Input(format!(
                    "{flag} {} holds files that are not a run's ({}): a run directory is replaced as a whole, so \
                     name a new or run directory",
                    out.display(),
                    others.join(", ")
                )));
            }
        }
        Ok(inside)
    }
}

impl FittedRun {
    /// Saves the run into the directory `out`: weights and `model.json` (what `nsl evaluate`,
    /// `nsl predict` and [`load_checkpoint`](crate::train::load_checkpoint) read), the history
    /// (JSON, CSV), `summary.json` and `curves.svg`, written whole into a hidden sibling of `out`
    /// that then replaces `out` in one step ([`StagedDir`]): a failure or a kill leaves the old run
    /// or the new one, never new weights beside an old `model.json`. The adversarial record
    /// (graph + nodes) goes into the run when its file is inside `out`, else beside, committed as
    /// a set after the run.
    ///
    /// # Errors
    /// As [`CheckedRun::check_out`], and [`RunError::Io`], [`RunError::Checkpoint`] or
    /// [`RunError::Report`] for a file that cannot be written, naming it.
    pub fn save(&self, out: &Path) -> Result<Saved, RunError> {
        let spell = |n: &str| n.to_string();
        let record_inside = self.open.checked.check_out(out, &spell)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| RunError::io(format!("creating {}", dir.display()), e))?;
        }
        let staged = StagedDir::create(out).map_err(|e| RunError::io(format!("out {}", out.display()), e))?;
        let run = staged.path();
        save_checkpoint(run, &self.meta, &self.open.vars)
            .context_with(|| format!("writing the run {}", out.display()))?;
        let spec = &self.open.checked.spec;
        RunColumns::new(&spec.columns, spec.weight_column.as_deref()).write(run)?;
        let json = |value: serde_json::Result<Vec<u8>>| value.map_err(|e| RunError::io("writing JSON", e.into()));
        for (name, bytes) in [
            ("history.json", json(serde_json::to_vec_pretty(&self.history))?),
            ("history.csv", self.history.to_csv().into_bytes()),
            ("summary.json", json(serde_json::to_vec_pretty(&self.summary(out)))?),
        ] {
            crate::io::write_bytes(&run.join(name), &bytes)
                .map_err(|e| RunError::io(format!("writing {}", out.join(name).display()), e))?;
        }
        let title = format!("nsl train {}", self.open.spec);
        let test_accuracy = self.test.as_ref().map(|t| t.accuracy);
        training_curves_svg_with_test(&self.history, &title, test_accuracy, &run.join("curves.svg"))
            .context_with(|| format!("writing {}", out.join("curves.svg").display()))?;
        let mut outputs = OutputSet::new();
        let record = match (&self.open.checked.spec.record_adversarial, &self.record) {
            (Some(path), Some(record)) => {
                let nodes = AdversarialRecord::nodes_path(path);
                if record_inside {
                    // Inside the run directory: written into the staged run, committed with it.
                    let name = path.file_name().ok_or_else(|| {
                        RunError::settings(format!("@record_adversarial {} names no file", path.display()))
                    })?;
                    record.write(&run.join(name))?;
                } else {
                    write_record_beside(record, path, &nodes, &mut outputs)?;
                }
                Some((record.examples.len(), path.clone(), nodes))
            }
            _ => None,
        };
        staged.commit().map_err(|e| RunError::io(format!("saving the run {}", out.display()), e))?;
        outputs.commit().map_err(|e| RunError::io("writing the adversarial record", e))?;
        Ok(Saved { record })
    }
}

/// Writes the adversarial record to `path` and its node table to `nodes`, staged in `outputs`.
fn write_record_beside(
    record: &AdversarialRecord,
    path: &Path,
    nodes: &Path,
    outputs: &mut OutputSet,
) -> Result<(), RunError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RunError::io(format!("creating {}", dir.display()), e))?;
    }
    let what = |p: &Path| format!("record_adversarial {}", p.display());
    let graph_out = outputs.add(path).map_err(|e| RunError::io(what(path), e))?;
    let nodes_out = outputs.add(nodes).map_err(|e| RunError::io(what(nodes), e))?;
    record.write(&graph_out)?;
    if AdversarialRecord::nodes_path(&graph_out) != nodes_out {
        std::fs::rename(AdversarialRecord::nodes_path(&graph_out), &nodes_out)
            .map_err(|e| RunError::io(format!("writing {}", nodes.display()), e))?;
    }
    Ok(())
}
