//! [`ClassWeights`]: a weight per class, multiplied into every sample's weight.
//!
//! `balanced` is scikit-learn's `class_weight='balanced'`: `wₖ = n / (k · countₖ)` over the `n`
//! training samples and the `k` classes present in them, so that every class weighs as much in
//! total. A file gives the weights by hand, one `class<TAB>weight` line per class (class by name,
//! or by index when the samples have no class names); classes it leaves out weigh 1 (Keras'
//! `class_weight` dict). Keras passes them to the loss as per-sample weights, as nsl does: a
//! sample's weight is its `--weight-column` value times its class's weight.

use std::path::{Path, PathBuf};

/// Where class weights come from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClassWeights {
    /// `n / (k · countₖ)` (scikit-learn's `balanced`).
    Balanced,
    /// `class<TAB>weight` lines of this file.
    File(PathBuf),
}

impl std::str::FromStr for ClassWeights {
    type Err = std::convert::Infallible;

    /// `balanced`, or else the path of a weights file.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "balanced" => ClassWeights::Balanced,
            path => ClassWeights::File(PathBuf::from(path)),
        })
    }
}

/// Class weights that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The weights file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the weights file that is not `class<TAB>weight` with a known class and a finite
    /// weight ≥ 0.
    #[error("{}, line {line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong, with the value.
        message: String,
    },
}

impl ClassWeights {
    /// The weight of each of the `classes` classes for training `labels` (each `< classes`);
    /// `names` are the class names indexed by label, if the samples have them.
    ///
    /// # Errors
    /// [`WeightsError`] for an unreadable file or a bad line (naming the file and line): not two
    /// tab-separated fields, a class that is not one of the samples', a repeated class, a weight that
    /// is not a finite number ≥ 0.
    pub fn per_class(
        &self,
        labels: &[u32],
        classes: usize,
        names: Option<&[String]>,
    ) -> Result<Vec<f32>, WeightsError> {
        match self {
            ClassWeights::Balanced => Ok(balanced_class_weights(labels, classes)),
            ClassWeights::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| WeightsError::Io { path: path.clone(), source })?;
                parse_weights(path, &text, classes, names)
            }
        }
    }
}

/// `n / (k · countₖ)`, `k` counting the classes present; 0 for a class without samples.
pub fn balanced_class_weights(labels: &[u32], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let n = labels.len() as f64;
    counts.iter().map(|&c| if c == 0 { 0.0 } else { (n / (present as f64 * c as f64)) as f32 }).collect()
}

fn parse_weights(path: &Path, text: &str, classes: usize, names: Option<&[String]>) -> Result<Vec<f32>, WeightsError> {
    let mut weights = vec![1.0f32; classes];
    let mut seen = vec![false; classes];
    for (i, line) in text.lines().enumerate() {
        let bad = |message: String| WeightsError::Line { path: path.to_path_buf(), line: i + 1, message };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((class, weight)) = line.split_once('\t') else {
            return Err(bad(format!("`{line}` is not class<TAB>weight")));
        };
        let index = match names {
            Some(names) => names.iter().position(|n| n == class),
            None => class.trim().parse::<usize>().ok().filter(|&c| c < classes),
        };
        let Some(index) = index else {
            let known = match names {
                Some(names) => names.join(", "),
                None => format!("0 to {}", classes.saturating_sub(1)),
            };
            return Err(bad(format!("class `{class}` is not one of the samples' classes ({known})")));
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(bad(format!("class `{class}` is given twice")));
        }
        match weight.trim().parse::<f32>() {
            Ok(w) if w.is_finite() && w >= 0.0 => weights[index] = w,
            _ => return Err(bad(format!("weight `{weight}` is not a finite number ≥ 0"))),
        }
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn: `compute_class_weight('balanced', classes=[0,1,2], y=[0,0,0,1,2,2])` =
    /// `[6/9, 6/3, 6/6]`.
    #[test]
    fn balanced_matches_sklearn() {
        let w = balanced_class_weights(&[0, 0, 0, 1, 2, 2], 3);
        for (a, b) in w.iter().zip([6.0 / 9.0, 2.0, 1.0]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        // A class without samples weighs 0 and does not count in k.
        assert_eq!(balanced_class_weights(&[0, 0, 2, 2], 3), vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn file_weights_by_name_and_errors() {
        let names = vec!["cat".to_string(), "dog".to_string()];
        let p = Path::new("w.tsv");
        assert_eq!(parse_weights(p, "dog\t2.5\n", 2, Some(&names)).unwrap(), vec![1.0, 2.5]);
        assert_eq!(parse_weights(p, "# c\n1\t3\n", 2, None).unwrap(), vec![1.0, 3.0]);
        let err = parse_weights(p, "cat\t1\nbird\t2\n", 2, Some(&names)).unwrap_err().to_string();
        assert!(err.contains("w.tsv, line 2") && err.contains("`bird`"), "{err}");
        let err = parse_weights(p, "cat\t-1\n", 2, Some(&names)).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("`-1`"), "{err}");
        assert!(parse_weights(p, "cat 1\n", 2, Some(&names)).is_err());
        assert!(parse_weights(p, "cat\t1\ncat\t2\n", 2, Some(&names)).is_err());
    }
}
