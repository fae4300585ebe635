//! The teacher of a distilled run ([`RunSpec::distill`](super::RunSpec::distill)): a table of class
//! probabilities by sample id, matched to the training and unlabeled samples.
//!
//! The term itself is [`distill_loss`](crate::loss::distill_loss) (GLNN); this module reads the
//! teacher and lines its rows up with the samples.

use super::error::RunError;
use crate::config::{key_values, ConfigError};
use crate::data::{Dataset, SampleColumns};
use crate::loss::DistillConfig;
use ndarray::Array2;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A teacher's class probabilities by sample id, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherTable {
    /// One id per row.
    pub ids: Vec<String>,
    /// `[rows, classes]`, each row ≥ 0 with a positive sum (rows are divided by their sum when
    /// used).
    pub probabilities: Array2<f32>,
    /// The classes of the columns, when the file names them (`nsl predict`'s `p_<class>`).
    pub class_names: Option<Vec<String>>,
}

/// Where a run's teacher comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TeacherInput {
    /// A file: `nsl predict`'s CSV (`id,prediction,p_<class>…`; every `p_` column, in order), or
    /// any samples table nsl reads (Parquet, CSV, …) whose features are the probabilities (e.g.
    /// `nsl graph propagate` over such a table).
    Path(PathBuf),
    /// A table in memory.
    Table(TeacherTable),
}

/// Distillation from a teacher ([`RunSpec::distill`](super::RunSpec::distill)): the teacher and
/// the term's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillSpec {
    /// The teacher's probabilities.
    pub teacher: TeacherInput,
    /// Multiplier and temperature. Default [`DistillConfig::default`].
    pub config: DistillConfig,
}

impl DistillSpec {
    /// The keys [`from_kv`](Self::from_kv) knows.
    pub const KEYS: &'static [&'static str] = &["teacher", "multiplier", "temperature"];

    /// Parses `teacher=FILE[,multiplier=M][,temperature=T]` (`nsl train --distill`; the file name
    /// cannot hold a comma) and validates the values.
    ///
    /// ```
    /// use nsl::run::{DistillSpec, TeacherInput};
    /// let spec = DistillSpec::from_kv("teacher=sgc.csv,multiplier=2").unwrap();
    /// assert_eq!(spec.teacher, TeacherInput::Path("sgc.csv".into()));
    /// assert_eq!((spec.config.multiplier, spec.config.temperature), (2.0, 1.0));
    /// assert!(DistillSpec::from_kv("multiplier=2").is_err()); // no teacher
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the pair: not `key=value`, an unknown key, a value that does not
    /// parse or is out of range, or no `teacher`.
    pub fn from_kv(spec: &str) -> Result<Self, ConfigError> {
        let mut config = DistillConfig::default();
        let mut teacher = None;
        for kv in key_values("--distill", spec) {
            let kv = kv?;
            if kv.key == "teacher" {
                if kv.value.is_empty() {
                    return Err(kv.invalid("a file of the teacher's probabilities"));
                }
                teacher = Some(TeacherInput::Path(PathBuf::from(kv.value)));
            } else if !config.apply(&kv)? {
                return Err(kv.unknown(Self::KEYS));
            }
        }
        config.validate()?;
        let teacher = teacher
            .ok_or_else(|| ConfigError::invalid("--distill", spec, "teacher=FILE (the teacher's probabilities)"))?;
        Ok(DistillSpec { teacher, config })
    }
}

/// Parses [`DistillSpec::from_kv`]'s form.
impl FromStr for DistillSpec {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DistillSpec::from_kv(s)
    }
}

/// Reads a teacher file (see [`TeacherInput::Path`]).
///
/// # Errors
/// The reader's error naming the file and row; [`RunError::Input`] for a CSV without `p_`
/// columns, a probability that is negative or not finite, or a row summing to 0 (naming the id).
pub fn read_teacher(path: &Path) -> Result<TeacherTable, RunError> {
    let mut notes = Vec::new();
    let names = probability_columns(path);
    let columns = match &names {
        Some(names) => {
            SampleColumns { features: names.iter().map(|n| format!("p_{n}")).collect(), ..Default::default() }
        }
        None => SampleColumns { exclude: vec!["prediction".into()], ..Default::default() },
    };
    let samples = super::read_samples(path, &columns, &mut notes)?;
    let table =
        TeacherTable { ids: samples.ids().to_vec(), probabilities: samples.features().to_owned(), class_names: names };
    for (row, id) in table.probabilities.rows().into_iter().zip(&table.ids) {
        if let Some(v) = row.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(RunError::Input(format!(
                "{}: the teacher's probability {v} of `{id}` is not a finite number ≥ 0",
                path.display()
            )));
        }
        if row.sum() <= 0.0 {
            return Err(RunError::Input(format!("{}: the teacher's probabilities of `{id}` sum to 0", path.display())));
        }
    }
    Ok(table)
}

/// The classes of a CSV's `p_<class>` columns (`nsl predict`'s output), in order; `None` for
/// another file, or a CSV without them.
fn probability_columns(path: &Path) -> Option<Vec<String>> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if !(name.ends_with(".csv") || name.ends_with(".csv.gz")) {
        return None;
    }
    // The header line alone (the reader proper reads the whole file next).
    let mut header = Vec::new();
    crate::io::read_line_limited(&mut crate::io::open_maybe_gz(path).ok()?, &mut header, crate::io::MAX_LINE_BYTES)
        .ok()?;
    let mut reader = ::csv::ReaderBuilder::new().trim(::csv::Trim::All).from_reader(header.as_slice());
    let names: Vec<String> =
        reader.headers().ok()?.iter().filter_map(|h| h.strip_prefix("p_")).map(String::from).collect();
    (!names.is_empty()).then_some(names)
}

/// The teacher's probabilities of `samples`, row for row, each row divided by its sum.
///
/// # Errors
/// [`RunError::Input`] naming `source` when the teacher has another number of classes than
/// `classes`, other class names than `class_names` (when both are known), or no row for one of
/// the samples (`what`: "training", "unlabeled"; the first missing id and how many are missing).
pub(crate) fn teacher_rows(
    teacher: &TeacherTable,
    source: &str,
    samples: &Dataset,
    what: &str,
    classes: usize,
    class_names: Option<&[String]>,
) -> Result<Array2<f32>, RunError> {
    let width = teacher.probabilities.ncols();
    if width != classes {
        return Err(RunError::Input(format!(
            "{source}: the teacher has {width} class probabilities per sample, the model {classes} classes"
        )));
    }
    if let (Some(theirs), Some(ours)) = (&teacher.class_names, class_names) {
        if theirs.as_slice() != ours {
            return Err(RunError::Input(format!(
                "{source}: the teacher's classes [{}] are not the training samples' [{}] (in this order)",
                theirs.join(", "),
                ours.join(", ")
            )));
        }
    }
    let mut row_of: HashMap<&str, usize> = HashMap::with_capacity(teacher.ids.len());
    for (r, id) in teacher.ids.iter().enumerate() {
        if row_of.insert(id.as_str(), r).is_some() {
            return Err(RunError::Input(format!("{source}: the teacher gives `{id}` twice")));
        }
    }
    let missing: Vec<&String> = samples.ids().iter().filter(|id| !row_of.contains_key(id.as_str())).collect();
    if let Some(first) = missing.first() {
        return Err(RunError::Input(format!(
            "{source}: the teacher has no row for the {what} sample `{first}` ({} of {} {what} samples missing)",
            missing.len(),
            samples.len()
        )));
    }
    let mut out = Array2::zeros((samples.len(), classes));
    for (mut row, id) in out.rows_mut().into_iter().zip(samples.ids()) {
        let from = teacher.probabilities.row(row_of[id.as_str()]);
        let sum: f32 = from.sum();
        row.iter_mut().zip(from).for_each(|(o, v)| *o = v / sum);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A teacher of three samples, two classes, in another order than the samples, one row not
    /// summing to 1.
    fn teacher() -> TeacherTable {
        TeacherTable {
            ids: vec!["c".into(), "a".into(), "b".into()],
            probabilities: array![[0.5f32, 0.5], [0.9, 0.1], [1.0, 3.0]],
            class_names: Some(vec!["x".into(), "y".into()]),
        }
    }

    fn samples(ids: &[&str]) -> Dataset {
        let x = Array2::zeros((ids.len(), 1));
        Dataset::new(ids.iter().map(|s| s.to_string()).collect(), x, vec![1], None, None).unwrap()
    }

    #[test]
    fn rows_are_matched_by_id_and_normalized() {
        let names = ["x".to_string(), "y".to_string()];
        let rows = teacher_rows(&teacher(), "t.csv", &samples(&["b", "a"]), "training", 2, Some(&names)).unwrap();
        assert_eq!(rows, array![[0.25f32, 0.75], [0.9, 0.1]]);
    }

    #[test]
    fn refuses_missing_ids_wrong_classes_and_duplicates() {
        let t = teacher();
        let err = teacher_rows(&t, "t.csv", &samples(&["a", "d", "e"]), "unlabeled", 2, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv: the teacher has no row for the unlabeled sample `d` (2 of 3 unlabeled samples missing)"
        );
        let err = teacher_rows(&t, "t.csv", &samples(&["a"]), "training", 3, None).unwrap_err();
        assert_eq!(err.to_string(), "t.csv: the teacher has 2 class probabilities per sample, the model 3 classes");
        let other = ["y".to_string(), "x".to_string()];
        let err = teacher_rows(&t, "t.csv", &samples(&["a"]), "training", 2, Some(&other)).unwrap_err();
        assert!(err.to_string().contains("[x, y] are not the training samples' [y, x]"), "{err}");
        let mut twice = t.clone();
        twice.ids[0] = "a".into();
        let err = teacher_rows(&twice, "t.csv", &samples(&["a"]), "training", 2, None).unwrap_err();
        assert_eq!(err.to_string(), "t.csv: the teacher gives `a` twice");
    }

    #[test]
    fn parses_the_flag() {
        let spec: DistillSpec = "teacher=p.csv,temperature=2".parse().unwrap();
        assert_eq!(spec.config.temperature, 2.0);
        assert!("teacher=p.csv,colour=red".parse::<DistillSpec>().unwrap_err().to_string().contains("unknown key"));
        assert!("teacher=p.csv,temperature=0".parse::<DistillSpec>().is_err());
        assert!("teacher=".parse::<DistillSpec>().is_err());
    }

    /// `nsl predict`'s CSV: the `p_` columns in order, `prediction` left out; a negative value refused.
    #[test]
    fn reads_predict_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "id,prediction,p_x,p_y\na,x,0.9,0.1\nb,y,0.2,0.8\n").unwrap();
        let t = read_teacher(&path).unwrap();
        assert_eq!(t.ids, ["a", "b"]);
        assert_eq!(t.probabilities, array![[0.9f32, 0.1], [0.2, 0.8]]);
        assert_eq!(t.class_names, Some(vec!["x".to_string(), "y".to_string()]));
        std::fs::write(&path, "id,prediction,p_x,p_y\na,x,-0.1,1.1\n").unwrap();
        let err = read_teacher(&path).unwrap_err().to_string();
        assert!(err.contains("-0.1 of `a` is not a finite number ≥ 0"), "{err}");
    }
}
