//! Adversarial regularization on the bundled MNIST from the library, in a few lines: train a base
//! model and an adversarially-regularized one, then attack both with FGSM (ε = 0.2, L∞) crafted on
//! the base model, as NSL's tutorial does.
//!
//! Run with `cargo run --release --example mnist_adversarial` (`nsl demo` does the same, with pictures).

use nsl::data::{read_idx, IdxOptions};
use nsl::eval::{accuracy_on, adversarial_examples, Attack, AttackConfig};
use nsl::model::{build_model, ModelSpec};
use nsl::regularize::{AdvNeighborConfig, AdvRegConfig, NormType};
use nsl::train::{TrainConfig, Trainer};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/mnist");
    let read =
        |images: &str, labels: &str| read_idx(&mnist.join(images), Some(&mnist.join(labels)), &IdxOptions::default());
    let train = read("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")?;
    let test = read("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")?;

    let spec: ModelSpec = "mlp:256,128".parse::<ModelSpec>()?.with_dropout(0.0);
    let config = TrainConfig { epochs: 5, batch_size: 32, threads: Some(1), ..Default::default() };
    // NSL's tutorial: multiplier 0.2, FGSM step 0.2 in L∞.
    let adv = AdvRegConfig {
        multiplier: 0.2,
        neighbor: AdvNeighborConfig { step_size: 0.2, grad_norm: NormType::Infinity, ..Default::default() },
        ..Default::default()
    };

    let (base, base_vars) = build_model(&spec, train.item_shape(), 10, 0, &candle_core::Device::Cpu)?;
    Trainer::new(base.as_ref(), &base_vars, config.clone()).fit(&train, None)?;
    // Independent starting weights (seed 1000), as NSL's tutorial's two models have.
    let (robust, robust_vars) = build_model(&spec, train.item_shape(), 10, 1000, &candle_core::Device::Cpu)?;
    Trainer::new(robust.as_ref(), &robust_vars, config).with_adversarial(&adv).fit(&train, None)?;

    let attack =
        AttackConfig { attack: Attack::Fgsm, norm: NormType::Infinity, epsilon: 0.2, clip: Some((0.0, 1.0)), seed: 0 };
    let perturbed = adversarial_examples(base.as_ref(), &test, &attack, 500)?;
    let clean = test.features().to_owned();
    for (name, model) in [("base", &base), ("adversarially regularized", &robust)] {
        let (c, a) =
            (accuracy_on(model.as_ref(), &clean, &test, 1000)?, accuracy_on(model.as_ref(), &perturbed, &test, 1000)?);
        println!("{name:>26}: clean {:.2} %, adversarial {:.2} %", c * 100.0, a * 100.0);
    }
    Ok(())
}
