//! Adversarial regularization makes a model harder to fool, in both loss forms: a small, fast set-up on
//! the bundled MNIST (2,000 training digits, 2 epochs, 1,000 held-out test digits attacked with FGSM).

use candle_core::Device;
use nsl::data::Dataset;
use nsl::data::{read_idx, IdxOptions};
use nsl::eval::{accuracy_on, adversarial_examples, Attack, AttackConfig};
use nsl::model::{build_model, Model, ModelSpec};
use nsl::regularize::{AdvLoss, AdvNeighborConfig, AdvRegConfig, DistanceConfig, DistanceType, NormType, Transform};
use nsl::train::{TrainConfig, Trainer};
use std::path::Path;

fn mnist(images: &str, labels: &str, n: usize) -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/mnist");
    let all = read_idx(&dir.join(images), Some(&dir.join(labels)), &IdxOptions::default()).unwrap();
    all.select(&(0..n).collect::<Vec<_>>()).unwrap()
}

/// Trains an MLP (with adversarial regularization if given) and returns its clean and FGSM accuracy on
/// `test` (ε 0.2, L∞, clipped to [0, 1], crafted on the model itself).
fn clean_and_robust(train: &Dataset, test: &Dataset, adversarial: Option<&AdvRegConfig>) -> (f64, f64) {
    let spec: ModelSpec = "mlp:64".parse::<ModelSpec>().unwrap().with_dropout(0.0);
    let (model, vars) = build_model(&spec, train.item_shape(), 10, 0, &Device::Cpu).unwrap();
    let mut trainer =
        Trainer::new(model.as_ref(), &vars, TrainConfig { epochs: 2, batch_size: 32, ..Default::default() });
    if let Some(config) = adversarial {
        trainer = trainer.with_adversarial(config);
    }
    trainer.fit(train, None).unwrap();
    let attack =
        AttackConfig { attack: Attack::Fgsm, norm: NormType::Infinity, epsilon: 0.2, clip: Some((0.0, 1.0)), seed: 0 };
    let x_adv = adversarial_examples(model.as_ref(), test, &attack, 500).unwrap();
    let model: &dyn Model = model.as_ref();
    let clean = nsl::eval::evaluate(model, test, 500).unwrap().accuracy;
    (clean, accuracy_on(model, &x_adv, test, 500).unwrap())
}

#[test]
fn adversarial_regularization_raises_fgsm_accuracy() {
    let train = mnist("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 2000);
    let test = mnist("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 1000);
    let neighbor = AdvNeighborConfig { step_size: 0.2, grad_norm: NormType::Infinity, ..Default::default() };
    let supervised =
        AdvRegConfig { multiplier: 0.2, neighbor: neighbor.clone(), loss: AdvLoss::Supervised, ..Default::default() };
    // The label-free form (virtual-adversarial style): the KL divergence between the predicted class
    // distributions on a digit and on its adversarial version.
    let distance = DistanceConfig {
        distance: DistanceType::KlDivergence,
        transform: Transform::Softmax,
        sum_over_axis: Some(-1),
        ..Default::default()
    };
    let label_free =
        AdvRegConfig { multiplier: 0.5, neighbor, loss: AdvLoss::Distance(distance), ..Default::default() };

    let (base_clean, base_robust) = clean_and_robust(&train, &test, None);
    let (sup_clean, sup_robust) = clean_and_robust(&train, &test, Some(&supervised));
    let (free_clean, free_robust) = clean_and_robust(&train, &test, Some(&label_free));
    let report = format!(
        "clean / FGSM: base {base_clean:.3} / {base_robust:.3}, supervised {sup_clean:.3} / {sup_robust:.3}, \
         label-free {free_clean:.3} / {free_robust:.3}"
    );
    eprintln!("{report}");
    assert!(base_clean > 0.8 && sup_clean > 0.8 && free_clean > 0.8, "{report}");
    assert!(sup_robust > base_robust + 0.08, "{report}");
    assert!(free_robust > base_robust + 0.04, "{report}");
}
