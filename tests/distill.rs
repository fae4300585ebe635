//! Distillation from a teacher (issue 26, GLNN) through the run API: the teacher's probabilities
//! are matched to the samples by id, they move the model, and bad teachers are refused with a
//! message naming the problem. (The term's value and gradient: `loss::distill` unit tests.)

use ndarray::{array, Array2};
use nsl::data::Dataset;
use nsl::loss::{DistillConfig, Task};
use nsl::run::{DistillSpec, RunSpec, TeacherInput, TeacherTable};
use nsl::train::OptimizerConfig;

/// Four labeled samples, two per class, and two unlabeled ones (one like each class).
fn tiny_split() -> (Dataset, Dataset) {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let x = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]];
    let names = Some(vec!["a".to_string(), "b".to_string()]);
    let train = Dataset::new(ids(&["l0", "l1", "l2", "l3"]), x, vec![2], Some(vec![0, 0, 1, 1]), names).unwrap();
    let unlabeled = Dataset::new(ids(&["u0", "u1"]), array![[0.8f32, 0.2], [0.2, 0.8]], vec![2], None, None).unwrap();
    (train, unlabeled)
}

/// A teacher giving every listed id the same probabilities.
fn teacher_of(ids: &[&str], p: &[f32]) -> TeacherTable {
    let rows = Array2::from_shape_fn((ids.len(), p.len()), |(_, c)| p[c]);
    TeacherTable { ids: ids.iter().map(|s| s.to_string()).collect(), probabilities: rows, class_names: None }
}

fn spec(teacher: Option<(TeacherTable, f64)>) -> RunSpec {
    let (train, unlabeled) = tiny_split();
    let mut spec = RunSpec {
        samples: Some(train.into()),
        unlabeled: Some(unlabeled.into()),
        model: "mlp:8".parse().unwrap(),
        dropout: Some(0.0),
        ..Default::default()
    };
    spec.train.epochs = 150;
    spec.train.batch_size = 4;
    spec.train.optimizer = OptimizerConfig::default().with_learning_rate(0.05);
    spec.distill = teacher.map(|(table, multiplier)| DistillSpec {
        teacher: TeacherInput::Table(table),
        config: DistillConfig { multiplier, ..Default::default() },
    });
    spec
}

/// The predicted class of each training sample.
fn predictions(spec: RunSpec) -> Vec<usize> {
    let (train, _) = tiny_split();
    let fitted = spec.check().unwrap().open().unwrap().fit(Default::default()).unwrap();
    let p = fitted.predict(&train).unwrap();
    p.iter().map(|row| if row[1] > row[0] { 1 } else { 0 }).collect()
}

#[test]
fn a_teacher_that_outweighs_the_labels_moves_the_model() {
    let all = ["l0", "l1", "l2", "l3", "u0", "u1"];
    // Without a teacher (or with multiplier 0) the labels are learned.
    assert_eq!(predictions(spec(None)), [0, 0, 1, 1]);
    assert_eq!(predictions(spec(Some((teacher_of(&all, &[0.0, 1.0]), 0.0)))), [0, 0, 1, 1]);
    // A teacher sure of class b everywhere, weighted 50 times the labels, wins.
    assert_eq!(predictions(spec(Some((teacher_of(&all, &[0.0, 1.0]), 50.0)))), [1, 1, 1, 1]);
}

#[test]
fn bad_teachers_are_refused_before_training() {
    let open_error = |spec: RunSpec| match spec.check().unwrap().open() {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the run opened"),
    };
    // An unlabeled sample missing.
    let partial = teacher_of(&["l0", "l1", "l2", "l3", "u0"], &[0.5, 0.5]);
    assert_eq!(
        open_error(spec(Some((partial, 1.0)))),
        "the teacher (in memory): the teacher has no row for the unlabeled sample `u1` (1 of 2 unlabeled samples \
         missing)"
    );
    // Three classes for a two-class model.
    let wide = teacher_of(&["l0", "l1", "l2", "l3", "u0", "u1"], &[0.2, 0.3, 0.5]);
    assert_eq!(
        open_error(spec(Some((wide, 1.0)))),
        "the teacher (in memory): the teacher has 3 class probabilities per sample, the model 2 classes"
    );
    // Class names that differ from the training samples'.
    let mut named = teacher_of(&["l0", "l1", "l2", "l3", "u0", "u1"], &[0.5, 0.5]);
    named.class_names = Some(vec!["b".into(), "a".into()]);
    assert!(open_error(spec(Some((named, 1.0))))
        .contains("the teacher's classes [b, a] are not the training samples' [a, b]"));
    // Another task.
    let mut binary = spec(Some((teacher_of(&["l0"], &[0.5, 0.5]), 1.0)));
    binary.task = Task::Binary;
    let Err(err) = binary.check() else { panic!("the settings were accepted") };
    let err = err.to_string();
    assert!(err.contains("distill teaches class probabilities: it needs task multiclass"), "{err}");
}
