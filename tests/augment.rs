//! On-the-fly augmentation of training images (issue 27 point 3, used by issue 23's robust recipe):
//! `TrainConfig::augment` and `nsl train --augment` are reproducible, resumable, change nothing
//! when off, and refuse what they cannot augment before any training.

mod common;

use candle_core::Device;
use common::{fails, ok};
use nsl::augment::{AugmentConfig, AugmentError};
use nsl::data::Dataset;
use nsl::model::{build_model, ModelSpec};
use nsl::regularize::AdvRegConfig;
use nsl::train::{StateError, TrainConfig, TrainError, TrainState, Trainer};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// `n` 1 × 6 × 6 images of two classes: a bright bar in the top rows (class 0) or in the bottom
/// rows (class 1), with noise.
fn bars(n: usize, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 36), |(i, j)| {
        let row = j / 6;
        let bright = if labels[i] == 0 { row < 2 } else { row >= 4 };
        (if bright { 0.8 } else { 0.1 } + rng.random_range(-0.1..0.1f32)).clamp(0.0, 1.0)
    });
    Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![1, 6, 6], Some(labels), None).unwrap()
}

fn weights(vars: &candle_nn::VarMap) -> Vec<f32> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

/// Trains an MLP with TRADES (whose inner PGD starts from the augmented image) for 4 epochs;
/// `stop_after`: the state sink fails after that epoch, `resume`: continue from a state.
fn run(
    augment: AugmentConfig,
    data: &Dataset,
    stop_after: Option<usize>,
    resume: Option<TrainState>,
) -> (Result<Vec<f32>, TrainError>, Option<TrainState>) {
    let adv = AdvRegConfig::from_kv("objective=trades,epsilon=0.1,step-size=0.03,pgd-iterations=2,norm=inf,clip=0:1")
        .unwrap();
    let spec: ModelSpec = "mlp:8".parse().unwrap();
    let (model, vars) = build_model(&spec, data.item_shape(), 2, 5, &Device::Cpu).unwrap();
    let config = TrainConfig { epochs: 4, batch_size: 8, seed: 3, augment, ..Default::default() };
    let mut last = None;
    let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_adversarial(&adv).on_epoch_state(1, |s| {
        last = Some(s.clone());
        match stop_after {
            Some(e) if s.epoch() == e => Err(StateError::Invalid { path: "stop".into(), message: "".into() }),
            _ => Ok(()),
        }
    });
    if let Some(state) = resume {
        trainer = trainer.resume_from(state);
    }
    let fitted = trainer.fit(data, None);
    drop(trainer);
    (fitted.map(|_| weights(&vars)), last)
}

#[test]
fn the_same_seed_gives_the_same_weights_and_augmentation_changes_them() {
    let data = bars(40, 1);
    let augment: AugmentConfig = "crop=2,flip".parse().unwrap();
    let first = run(augment, &data, None, None).0.unwrap();
    assert_eq!(first, run(augment, &data, None, None).0.unwrap());
    let off = run(AugmentConfig::default(), &data, None, None).0.unwrap();
    assert_ne!(first, off);
    assert_ne!(first, run("crop=1".parse().unwrap(), &data, None, None).0.unwrap());
}

#[test]
fn a_resumed_run_ends_with_the_uninterrupted_weights() {
    let data = bars(40, 2);
    let augment = AugmentConfig { crop: 1, flip: true };
    let whole = run(augment, &data, None, None).0.unwrap();
    let (stopped, state) = run(augment, &data, Some(2), None);
    assert!(stopped.is_err());
    let (resumed, _) = run(augment, &data, None, state);
    assert_eq!(resumed.unwrap(), whole);
}

#[test]
fn samples_that_are_not_images_are_refused_before_training() {
    let data = bars(10, 3);
    let flat = Dataset::new(
        data.ids().to_vec(),
        data.features().to_owned(),
        vec![36],
        data.labels().map(|l| l.to_vec()),
        None,
    )
    .unwrap();
    let (result, state) = run(AugmentConfig { crop: 1, flip: false }, &flat, None, None);
    match result {
        Err(TrainError::Augment(AugmentError::NotImages { shape })) => assert_eq!(shape, vec![36]),
        other => panic!("expected NotImages, got {other:?}"),
    }
    assert!(state.is_none(), "no epoch ran");
    // Off, any shape trains.
    assert!(run(AugmentConfig::default(), &flat, None, None).0.is_ok());
}

// ---- the command line ----

/// Writes 40 synthetic 28 × 28 digits as IDX and converts them to `s.parquet` (item shape [1, 28, 28]).
fn digits(dir: &Path) -> String {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let n = 40u32;
    let pixels: Vec<u8> =
        (0..n * 784).map(|i| if (i % 784) / 28 < 14 + (i / 784 % 2) * 10 { 200 } else { 10 }).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    std::fs::write(p("x.gz"), common::gzip(&common::idx_bytes(0x08, &[n, 28, 28], &pixels))).unwrap();
    std::fs::write(p("y.gz"), common::gzip(&common::idx_bytes(0x08, &[n], &labels))).unwrap();
    ok(&["convert", "--idx-images", &p("x.gz"), "--idx-labels", &p("y.gz"), "--samples", &p("s.parquet")]);
    p("s.parquet")
}

#[test]
fn the_flag_and_the_config_key_train_and_off_changes_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let samples = digits(dir.path());
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--samples", &samples, "--model", "mlp:8", "--epochs", "2", "--out"];
        let out = p(out);
        args.push(&out);
        args.extend_from_slice(extra);
        ok(&args);
        std::fs::read(dir.path().join(out).join("model.safetensors")).unwrap()
    };
    let plain = train("plain", &[]);
    assert_eq!(plain, train("none", &["--augment", "none"]), "off: the weights of a run without the flag");
    let shifted = train("shifted", &["--augment", "crop=2"]);
    assert_ne!(plain, shifted);
    std::fs::write(p("recipe.toml"), "augment = \"crop=2\"\n").unwrap();
    assert_eq!(shifted, train("from_file", &["--config", &p("recipe.toml")]), "the TOML key is the flag");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("shifted/model.json")).unwrap()).unwrap();
    assert_eq!(model["training"]["config"]["augment"], serde_json::json!({ "crop": 2, "flip": false }), "{model}");
}

#[test]
fn bad_values_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let samples = digits(dir.path());
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    let base = ["train", "--samples", &samples, "--model", "mlp:8", "--epochs", "1", "--out", out];
    let with = |augment: &str| {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--augment", augment]);
        common::fails_with(2, &args)
    };
    assert!(with("crop=two").contains("invalid value `two` for `crop` in --augment"), "{}", with("crop=two"));
    assert!(with("shift=2").contains("unknown key `shift` in --augment (known: crop, flip)"));
    let mut args = base.to_vec();
    args.extend_from_slice(&["--augment", "crop=28"]);
    let err = fails(&args);
    assert!(err.contains("crop=28 shifts by as much as the image's side (28 × 28): give crop < 28"), "{err}");
    assert!(!Path::new(out).exists() && !Path::new(&format!("{out}.partial")).exists(), "nothing written");
    // CSV rows have no image shape.
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "id,a,b,label\nx,0.1,0.2,0\ny,0.3,0.4,1\n").unwrap();
    let err =
        fails(&["train", "--samples", csv.to_str().unwrap(), "--epochs", "1", "--out", out, "--augment", "crop=1"]);
    assert!(err.contains("augmentation needs image samples of item shape [channels, height, width], not [2]"), "{err}");
    assert!(!Path::new(out).exists() && !Path::new(&format!("{out}.partial")).exists());
}
