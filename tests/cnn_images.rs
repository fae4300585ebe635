//! The CNN on images of any `[c, h, w]` (issue 27 point 3): three channels and non-square
//! images give the values of a plain candle network with the same weights (the fast kernels'
//! channels-last layout and odd-sized pools included); `nsl train --model cnn --augment
//! crop=4,flip` trains on a CIFAR-like `3×32×32` `.npz` and on `1×20×28` images, and `nsl
//! embed` reads their dense layer; images too small for the pools are refused with the least size.

mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{fails, ok};
use nsl::data::{Dataset, SampleColumns};
use nsl::model::{build_model, Activation, CnnSpec, ModelSpec};
use rand::{Rng, SeedableRng};

/// `n` random images of `shape` in [0, 1), labels `i % 3`.
fn images(n: usize, shape: [usize; 3], seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d: usize = shape.iter().product();
    let x = ndarray::Array2::from_shape_fn((n, d), |_| rng.random_range(0.0..1.0f32));
    let labels = (0..n).map(|i| (i % 3) as u32).collect();
    Dataset::new((0..n).map(|i| format!("img{i}")).collect(), x, shape.to_vec(), Some(labels), None).unwrap()
}

/// The CNN of `spec` written with candle's own ops (`conv2d`, `max_pool2d`, `matmul`) on the
/// model's variables: `(dense0, logits)`.
fn reference(vars: &candle_nn::VarMap, spec: &CnnSpec, x: &Tensor, act: fn(&Tensor) -> Result<Tensor>) -> [Tensor; 2] {
    let data = vars.data().lock().unwrap();
    let var = |name: &str| data[name].as_tensor().clone();
    let mut h = x.clone();
    for i in 0..spec.filters.len() {
        let (w, b) = (var(&format!("conv{i}.weight")), var(&format!("conv{i}.bias")));
        let o = b.dim(0).unwrap();
        h = act(&h.conv2d(&w, 0, 1, 1, 1).unwrap().broadcast_add(&b.reshape((1, o, 1, 1)).unwrap()).unwrap()).unwrap();
        if i + 1 < spec.filters.len() {
            h = h.max_pool2d(spec.pool).unwrap();
        }
    }
    let h = h.flatten_from(1).unwrap();
    let dense = |h: &Tensor, name: &str| {
        h.matmul(&var(&format!("{name}.weight"))).unwrap().broadcast_add(&var(&format!("{name}.bias"))).unwrap()
    };
    let dense0 = act(&dense(&h, "dense0")).unwrap();
    let logits = dense(&dense0, "logits");
    [dense0, logits]
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn three_channel_and_non_square_images_give_candle_s_values() {
    // Odd sizes after the convolutions (13×17 → 6×8 pooled, the last row and column dropped).
    // ReLU runs the fused channels-last kernels, tanh the plain convolution and pool.
    for (shape, activation) in
        [([3, 15, 19], Activation::Relu), ([1, 20, 28], Activation::Relu), ([3, 15, 19], Activation::Tanh)]
    {
        let spec = CnnSpec { filters: vec![4, 5], dense: vec![6], activation, ..CnnSpec::default() };
        let (model, vars) = build_model(&ModelSpec::Cnn(spec.clone()), &shape, 3, 7, &Device::Cpu).unwrap();
        let data = images(5, shape, 1);
        let values: Vec<f32> = data.features().iter().copied().collect();
        let x = Tensor::from_vec(values, (5, data.dim()), &Device::Cpu).unwrap();
        let act: fn(&Tensor) -> Result<Tensor> =
            if activation == Activation::Relu { |t| t.relu() } else { |t| t.tanh() };
        let [dense0, logits] = reference(&vars, &spec, &x.reshape((5, shape[0], shape[1], shape[2])).unwrap(), act);
        let (got_logits, got_dense0) = model.forward_with(&x, false, Some("dense0")).unwrap();
        let got_dense0 = got_dense0.unwrap();
        assert_eq!(got_dense0.dims(), &[5, 6], "{shape:?}");
        assert_eq!(got_logits.dims(), &[5, 3], "{shape:?}");
        assert!(max_abs_diff(&got_dense0, &dense0) < 1e-5, "{shape:?} {activation:?}: dense0");
        assert!(max_abs_diff(&got_logits, &logits) < 1e-5, "{shape:?} {activation:?}: logits");
        // `nsl::eval::embed` returns the same layer.
        let embedded = nsl::eval::embed(model.as_ref(), &data, Some("dense0"), 2).unwrap();
        let got = got_dense0.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(embedded.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>(), got);
    }
}

#[test]
fn the_cli_trains_and_embeds_cifar_like_and_non_square_images_with_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // A CIFAR-like .npz (3 × 32 × 32, read wherever a samples file is) and 1 × 20 × 28 Parquet.
    nsl::data::write_npz(&images(12, [3, 32, 32], 2), dir.path().join("cifar.npz").as_path()).unwrap();
    nsl::data::write_samples(&images(12, [1, 20, 28], 3), dir.path().join("rect.parquet").as_path()).unwrap();
    for (samples, width) in [("cifar.npz", 3 * 32 * 32), ("rect.parquet", 20 * 28)] {
        let run = path(&format!("{samples}.run"));
        ok(&[
            "train",
            "--samples",
            &path(samples),
            "--model",
            "cnn:4,4,dense=8",
            "--augment",
            "crop=4,flip",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--quiet",
            "--out",
            &run,
        ]);
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{run}/model.json")).unwrap()).unwrap();
        let shape: Vec<usize> = serde_json::from_value(meta["item_shape"].clone()).unwrap();
        assert_eq!(shape.iter().product::<usize>(), width, "{samples}: {shape:?}");
        let out = path(&format!("{samples}.emb.parquet"));
        ok(&["embed", "--run", &run, "--samples", &path(samples), "--layer", "dense0", "--output", &out]);
        let emb = nsl::data::read_samples(std::path::Path::new(&out), &SampleColumns::default()).unwrap();
        assert_eq!((emb.len(), emb.dim()), (12, 8), "{samples}");
        assert_eq!(emb.ids()[11], "img11");
        assert!(emb.features().iter().all(|v| v.is_finite() && *v >= 0.0), "{samples}: after the ReLU");
    }
}

#[test]
fn images_too_small_for_the_pools_are_refused_with_the_least_size() {
    // NSL's CNN (3 convolutions, kernel 3, pool 2) needs 18×18: 8×8 leaves 0×0 before the third.
    let spec = CnnSpec::default();
    assert_eq!(spec.min_image_side(), 18);
    let err = build_model(&ModelSpec::Cnn(spec.clone()), &[1, 8, 8], 10, 0, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("too small for convolution 2 (0×0 left after convolution 1 and its 2×2 max-pool"), "{err}");
    assert!(err.contains("at least 18×18"), "{err}");
    // 17 rows are one too few (17 → 15 → 7 → 5 → 2 < 3); 18 × 40 is enough.
    assert!(build_model(&ModelSpec::Cnn(spec.clone()), &[3, 17, 40], 10, 0, &Device::Cpu).is_err());
    assert!(build_model(&ModelSpec::Cnn(spec), &[3, 18, 40], 10, 0, &Device::Cpu).is_ok());
    // The CLI refuses before training, with the same message.
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("small.parquet");
    nsl::data::write_samples(&images(6, [1, 8, 8], 4), &samples).unwrap();
    let run = dir.path().join("run");
    let err =
        fails(&["train", "--samples", samples.to_str().unwrap(), "--model", "cnn", "--out", run.to_str().unwrap()]);
    assert!(err.contains("at least 18×18"), "{err}");
    assert!(!run.exists());
}
