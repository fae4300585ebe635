//! The fast convolution and max-pool (`nsl::model::{FastConv2d, fast_max_pool2d}`) against candle's
//! own `conv2d` / `max_pool2d` (the reference): equal outputs and equal gradients w.r.t. the input,
//! the weights and the bias, on seeded random data of several shapes, alone and inside a network.

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use nsl::model::{fast_conv2d, fast_max_pool2d, FastConv2d};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Uniform values in [-1, 1] from `seed`: distinct with probability 1, so max-pool has no ties.
fn random(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..=1.0)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Asserts `max |got − want| ≤ 1e-4 · max(1, max |want|)` (a relative tolerance on the tensor's scale).
fn assert_close(got: &Tensor, want: &Tensor, what: &str) -> Result<()> {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
    let diff = (got - want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    let scale = want.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?.max(1.0);
    assert!(diff <= 1e-4 * scale, "{what}: max difference {diff} (scale {scale})");
    Ok(())
}

/// One convolution shape: batch, in channels, height, width, out channels, kernel.
struct Case {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
}

fn cases() -> Vec<Case> {
    let case = |b, c, h, w, o, k| Case { b, c, h, w, o, k };
    vec![
        case(1, 1, 7, 9, 1, 1),
        case(5, 1, 12, 9, 8, 3),
        case(1, 3, 8, 6, 8, 3),
        case(5, 3, 9, 11, 3, 5),
        case(5, 8, 6, 10, 1, 5),
        case(1, 8, 5, 5, 3, 5),
        case(5, 8, 4, 7, 8, 1),
        case(5, 32, 13, 13, 64, 3),
        // Fewer kernel values than filters (K = 4 < O = 16): the weight gradient's other orientation.
        case(3, 1, 10, 9, 16, 2),
    ]
}

/// Output and gradients (input, weights, bias) of `loss = Σ y ⊙ r` for a random `r`, through
/// candle's conv2d (`fast = false`) or FastConv2d, with a ReLU after the convolution if `relu`
/// (fused into the op for FastConv2d).
fn conv_and_grads(case: &Case, seed: u64, fast: bool, relu: bool) -> Result<[Tensor; 4]> {
    let x = Var::from_tensor(&random(&[case.b, case.c, case.h, case.w], seed)?)?;
    let w = Var::from_tensor(&random(&[case.o, case.c, case.k, case.k], seed + 1)?)?;
    let b = Var::from_tensor(&random(&[case.o], seed + 2)?)?;
    let ys = if fast {
        let conv = FastConv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))?;
        if relu {
            conv.forward_relu(x.as_tensor())?
        } else {
            conv.forward(x.as_tensor())?
        }
    } else {
        let ys =
            x.as_tensor().conv2d(w.as_tensor(), 0, 1, 1, 1)?.broadcast_add(&b.as_tensor().reshape((case.o, 1, 1))?)?;
        if relu {
            ys.relu()?
        } else {
            ys
        }
    };
    let r = random(ys.dims(), seed + 3)?;
    let grads = (&ys * &r)?.sum_all()?.backward()?;
    let grad = |v: &Var| grads.get(v.as_tensor()).cloned().expect("every variable has a gradient");
    Ok([ys, grad(&x), grad(&w), grad(&b)])
}

fn describe(case: &Case) -> String {
    format!("x [{}, {}, {}, {}], w [{}, {}, {k}, {k}]", case.b, case.c, case.h, case.w, case.o, case.c, k = case.k)
}

#[test]
fn outputs_and_gradients_match_candle_conv2d() -> Result<()> {
    for (i, case) in cases().iter().enumerate() {
        let seed = 100 * i as u64;
        let want = conv_and_grads(case, seed, false, false)?;
        let got = conv_and_grads(case, seed, true, false)?;
        for (name, (g, w)) in ["output", "∂x", "∂w", "∂b"].iter().zip(got.iter().zip(&want)) {
            assert_close(g, w, &format!("{name} of {}", describe(case)))?;
        }
    }
    Ok(())
}

#[test]
fn fused_relu_matches_conv2d_then_relu() -> Result<()> {
    // Random data never hits a pre-activation of exactly 0, where the two ReLU gradients differ.
    let mut cut_cases = 0;
    for (i, case) in cases().iter().enumerate() {
        let seed = 100 * i as u64 + 50;
        let want = conv_and_grads(case, seed, false, true)?;
        let got = conv_and_grads(case, seed, true, true)?;
        let zeros = want[0].eq(0f32)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
        cut_cases += usize::from(zeros > 0.0);
        for (name, (g, w)) in ["output", "∂x", "∂w", "∂b"].iter().zip(got.iter().zip(&want)) {
            assert_close(g, w, &format!("fused ReLU {name} of {}", describe(case)))?;
        }
    }
    assert!(cut_cases >= cases().len() - 1, "the ReLU must cut values off in the tests ({cut_cases} cases)");
    Ok(())
}

/// Output and gradients (input, weights, bias) of `loss = Σ pool(relu(conv(x))) ⊙ r`: fused in one
/// op (`fused`), or candle's conv2d, its ReLU, then `fast_max_pool2d` (whose gradient is checked
/// against direct loops below).
fn conv_relu_pool_and_grads(case: &Case, pool: usize, seed: u64, fused: bool) -> Result<[Tensor; 4]> {
    let x = Var::from_tensor(&random(&[case.b, case.c, case.h, case.w], seed)?)?;
    let w = Var::from_tensor(&random(&[case.o, case.c, case.k, case.k], seed + 1)?)?;
    let b = Var::from_tensor(&random(&[case.o], seed + 2)?)?;
    let ys = if fused {
        FastConv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))?.forward_relu_pool(x.as_tensor(), pool)?
    } else {
        let ys =
            x.as_tensor().conv2d(w.as_tensor(), 0, 1, 1, 1)?.broadcast_add(&b.as_tensor().reshape((case.o, 1, 1))?)?;
        fast_max_pool2d(&ys.relu()?, pool)?
    };
    let r = random(ys.dims(), seed + 3)?;
    let grads = (&ys * &r)?.sum_all()?.backward()?;
    let grad = |v: &Var| grads.get(v.as_tensor()).cloned().expect("every variable has a gradient");
    Ok([ys, grad(&x), grad(&w), grad(&b)])
}

#[test]
fn fused_relu_pool_matches_conv2d_relu_then_pool() -> Result<()> {
    // Includes NSL's second block (13×13 → 11×11 → 5×5: the last row and column are dropped),
    // NSL's first block (K = 9 < O = 32: the weight gradient's other orientation), pools of 2 and
    // 3, batches of 1 and 5, and several images per GEMM (small outputs).
    let case = |b, c, h, w, o, k| Case { b, c, h, w, o, k };
    let cases = [
        (case(5, 32, 13, 13, 64, 3), 2),
        (case(4, 1, 28, 28, 32, 3), 2),
        (case(1, 1, 28, 28, 8, 3), 2),
        (case(5, 3, 10, 9, 8, 3), 3),
        (case(5, 8, 7, 9, 3, 5), 2),
        (case(1, 3, 6, 5, 1, 1), 2),
    ];
    for (i, (case, pool)) in cases.iter().enumerate() {
        let seed = 700 + 10 * i as u64;
        let want = conv_relu_pool_and_grads(case, *pool, seed, false)?;
        let got = conv_relu_pool_and_grads(case, *pool, seed, true)?;
        for (name, (g, w)) in ["output", "∂x", "∂w", "∂b"].iter().zip(got.iter().zip(&want)) {
            assert_close(g, w, &format!("fused ReLU + pool {pool} {name} of {}", describe(case)))?;
        }
    }
    Ok(())
}

#[test]
fn one_and_two_threads_agree() -> Result<()> {
    // 5 images in groups run in parallel; 1 image runs alone with a multi-threaded GEMM.
    for case in [Case { b: 5, c: 8, h: 13, w: 11, o: 16, k: 3 }, Case { b: 1, c: 8, h: 13, w: 11, o: 16, k: 3 }] {
        let run = |threads: usize| -> Result<Vec<Tensor>> {
            let pool =
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(candle_core::Error::wrap)?;
            pool.install(|| -> Result<Vec<Tensor>> {
                let mut all = conv_and_grads(&case, 7, true, true)?.to_vec();
                all.extend(conv_relu_pool_and_grads(&case, 2, 8, true)?);
                Ok(all)
            })
        };
        let (one, two) = (run(1)?, run(2)?);
        let names = ["ReLU", "ReLU + pool"]
            .iter()
            .flat_map(|op| ["output", "∂x", "∂w", "∂b"].map(|name| format!("{name} ({op})")));
        assert_eq!(one.len(), 8);
        for (name, (a, b)) in names.zip(one.iter().zip(&two)) {
            assert_close(a, b, &format!("{name} of {}", describe(&case)))?;
        }
    }
    Ok(())
}

#[test]
fn no_bias_matches_candle_conv2d() -> Result<()> {
    let x = random(&[2, 3, 7, 8], 1)?;
    let w = Var::from_tensor(&random(&[4, 3, 3, 3], 2)?)?;
    let fast = FastConv2d::new(w.as_tensor().clone(), None)?;
    let got = fast.forward(&x)?;
    let want = x.conv2d(w.as_tensor(), 0, 1, 1, 1)?;
    assert_close(&got, &want, "output without bias")?;
    let g_got = got.sqr()?.sum_all()?.backward()?;
    let g_want = want.sqr()?.sum_all()?.backward()?;
    assert_close(g_got.get(w.as_tensor()).unwrap(), g_want.get(w.as_tensor()).unwrap(), "∂w without bias")
}

#[test]
fn plain_input_gets_no_gradient() -> Result<()> {
    // The input is data, not a variable: only the weights and bias get gradients (no wasted col2im).
    let vars = VarMap::new();
    let conv = fast_conv2d(2, 3, 3, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))?;
    let x = random(&[2, 2, 6, 6], 3)?;
    let grads = conv.forward(&x)?.sum_all()?.backward()?;
    assert!(grads.get(&x).is_none());
    assert!(grads.get(conv.weight()).is_some());
    assert!(grads.get(conv.bias().unwrap()).is_some());
    Ok(())
}

#[test]
fn bias_gradient_is_the_sum_of_the_output_gradient() -> Result<()> {
    // loss = Σ y: ∂b[o] = B·OH·OW = 2·4·4 = 32 for every filter, by hand.
    let bias = Var::zeros(3, DType::F32, &Device::Cpu)?;
    let conv = FastConv2d::new(random(&[3, 2, 3, 3], 4)?, Some(bias.as_tensor().clone()))?;
    let grads = conv.forward(&random(&[2, 2, 6, 6], 5)?)?.sum_all()?.backward()?;
    let db = grads.get(conv.bias().unwrap()).unwrap().to_vec1::<f32>()?;
    assert_eq!(db, vec![32.0; 3]);
    Ok(())
}

#[test]
fn hand_computed_convolution() -> Result<()> {
    // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,0],[0,-1]], b = 10:
    // y[i][j] = x[i][j] − x[i+1][j+1] + 10 = −4 + 10 = 6 everywhere.
    let dev = Device::Cpu;
    let x = Tensor::arange(1f32, 10.0, &dev)?.reshape((1, 1, 3, 3))?;
    let w = Tensor::new(&[1f32, 0.0, 0.0, -1.0], &dev)?.reshape((1, 1, 2, 2))?;
    let conv = FastConv2d::new(w, Some(Tensor::new(&[10f32], &dev)?))?;
    assert_eq!(conv.forward(&x)?.flatten_all()?.to_vec1::<f32>()?, vec![6.0; 4]);
    Ok(())
}

#[test]
fn same_variables_as_candle_conv2d() -> Result<()> {
    // Both constructors read `weight` and `bias` of the same shapes: one VarMap serves both, so a
    // checkpoint saved with one layer loads into the other.
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let fast = fast_conv2d(3, 5, 3, vb.pp("conv"))?;
    let slow = candle_nn::conv2d(3, 5, 3, Default::default(), vb.pp("conv"))?;
    let mut names: Vec<String> = vars.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["conv.bias", "conv.weight"]);
    let x = random(&[2, 3, 9, 7], 6)?;
    assert_close(&fast.forward(&x)?, &slow.forward(&x)?, "shared variables")
}

#[test]
fn other_dtypes_fall_back_to_candle() -> Result<()> {
    let x = random(&[2, 3, 7, 6], 8)?.to_dtype(DType::F64)?;
    let w = random(&[4, 3, 3, 3], 9)?.to_dtype(DType::F64)?;
    let b = random(&[4], 10)?.to_dtype(DType::F64)?;
    let got = FastConv2d::new(w.clone(), Some(b.clone()))?.forward(&x)?;
    let want = x.conv2d(&w, 0, 1, 1, 1)?.broadcast_add(&b.reshape((4, 1, 1))?)?;
    assert_eq!(got.dtype(), DType::F64);
    assert_close(&got.to_dtype(DType::F32)?, &want.to_dtype(DType::F32)?, "f64 fallback")
}

#[test]
fn non_contiguous_input_is_accepted() -> Result<()> {
    let x = random(&[2, 3, 8, 7], 11)?.transpose(2, 3)?; // [2, 3, 7, 8], strided
    let w = random(&[4, 3, 3, 3], 12)?;
    let got = FastConv2d::new(w.clone(), None)?.forward(&x)?;
    assert_close(&got, &x.contiguous()?.conv2d(&w, 0, 1, 1, 1)?, "transposed input")
}

#[test]
fn bad_shapes_are_errors() -> Result<()> {
    let w = random(&[4, 3, 3, 3], 13)?;
    let conv = FastConv2d::new(w.clone(), None)?;
    let msg = |r: Result<Tensor>| r.expect_err("must fail").to_string();
    assert!(msg(conv.forward(&random(&[2, 2, 8, 8], 14)?)).contains("2 channels"));
    assert!(msg(conv.forward(&random(&[2, 3, 2, 8], 15)?)).contains("does not fit"));
    assert!(conv.forward(&random(&[3, 8, 8], 16)?).is_err());
    assert!(FastConv2d::new(w, Some(random(&[5], 17)?)).is_err());
    assert!(FastConv2d::new(random(&[4, 3, 3], 18)?, None).is_err());
    assert!(msg(conv.forward_relu_pool(&random(&[2, 3, 8, 8], 21)?, 0)).contains("pool size 0"));
    assert!(msg(conv.forward_relu_pool(&random(&[2, 3, 8, 8], 22)?, 17)).contains("pool size 17"));
    assert!(msg(conv.forward_relu_pool(&random(&[2, 3, 8, 8], 23)?, 7)).contains("does not fit"));
    assert!(fast_max_pool2d(&random(&[1, 1, 1, 5], 19)?, 2).is_err());
    assert!(fast_max_pool2d(&random(&[1, 1, 4, 4], 20)?, 0).is_err());
    assert!(msg(fast_max_pool2d(&random(&[1, 1, 20, 20], 24)?, 17)).contains("pool size 17"));
    Ok(())
}

// ----- max-pool -----

/// Output and input gradient of `Σ fast_max_pool2d(x) ⊙ r` for a random `r` from `seed`.
fn pool_and_grad(x: &Tensor, size: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let x = Var::from_tensor(x)?;
    let ys = fast_max_pool2d(x.as_tensor(), size)?;
    let r = random(ys.dims(), seed)?;
    let grads = (&ys * &r)?.sum_all()?.backward()?;
    Ok((ys, grads.get(x.as_tensor()).unwrap().clone()))
}

/// The reference max-pool gradient by direct loops: each window's gradient goes to its argmax
/// (the data must have no ties).
fn reference_pool_grad(x: &[f32], h: usize, w: usize, size: usize, g: &[f32]) -> Vec<f32> {
    let (oh, ow) = (h / size, w / size);
    let mut dx = vec![0.0; x.len()];
    for plane in 0..x.len() / (h * w) {
        for i in 0..oh {
            for j in 0..ow {
                let idx = (0..size * size)
                    .map(|t| plane * h * w + (i * size + t / size) * w + j * size + t % size)
                    .max_by(|&a, &b| x[a].total_cmp(&x[b]))
                    .unwrap();
                dx[idx] += g[(plane * oh + i) * ow + j];
            }
        }
    }
    dx
}

#[test]
fn max_pool_matches_candle_forward_and_reference_backward() -> Result<()> {
    // The forward is compared with candle's max_pool2d. The gradient is compared with direct
    // loops, not with candle: candle 0.11.1's max_pool2d backward multiplies the gradient by the
    // window's share of maxima (1/4 for a unique maximum in 2×2) and misaligns windows when the
    // size is not a multiple of the window (its upsample_nearest2d uses a fractional scale).
    // 11×11 → 5×5 is the second pool of NSL's MNIST CNN; the last row and column are dropped.
    let shapes = [([1, 1, 4, 6], 2), ([5, 3, 8, 8], 2), ([2, 8, 26, 26], 2), ([3, 2, 9, 6], 3)];
    let odd = [([2, 3, 11, 11], 2), ([1, 2, 7, 10], 3), ([3, 1, 5, 4], 2)];
    for (i, (shape, size)) in shapes.iter().chain(&odd).enumerate() {
        let x = random(shape, 80 + i as u64)?;
        let (ys, g) = pool_and_grad(&x, *size, 90 + i as u64)?;
        assert_close(&ys, &x.max_pool2d(*size)?, &format!("pool output {shape:?}"))?;
        let r = random(ys.dims(), 90 + i as u64)?.flatten_all()?.to_vec1::<f32>()?;
        let want = reference_pool_grad(&x.flatten_all()?.to_vec1()?, shape[2], shape[3], *size, &r);
        assert_close(&g, &Tensor::from_vec(want, &shape[..], &Device::Cpu)?, &format!("pool ∂x {shape:?}"))?;
    }
    Ok(())
}

#[test]
fn max_pool_hand_computed() -> Result<()> {
    // 3×3 → 1×1 (last row/column dropped): max of [[1, 5], [4, 2]] is 5 at (0, 1); ties route
    // the gradient to the first maximum only.
    let dev = Device::Cpu;
    let x = Var::new(&[[[[1f32, 5.0, 9.0], [4.0, 2.0, 9.0], [9.0, 9.0, 9.0]]]], &dev)?;
    let ys = fast_max_pool2d(x.as_tensor(), 2)?;
    assert_eq!(ys.flatten_all()?.to_vec1::<f32>()?, [5.0]);
    let g = ys.affine(3.0, 0.0)?.sum_all()?.backward()?;
    assert_eq!(
        g.get(x.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?,
        [0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    let tie = Var::new(&[[[[7f32, 7.0], [7.0, 7.0]]]], &dev)?;
    let g = fast_max_pool2d(tie.as_tensor(), 2)?.sum_all()?.backward()?;
    assert_eq!(g.get(tie.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?, [1.0, 0.0, 0.0, 0.0]);
    Ok(())
}

/// Values `(k + 0.5) / 4` for integers `k` in `[-8, 8)` from `seed`: many ties within pool
/// windows, and no zeros (where candle's ReLU gradient, 1, differs from the fused one, 0).
fn tied(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (rng.random_range(-8i32..8) as f32 + 0.5) / 4.0).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

#[test]
fn max_pool_matches_the_fused_pool_exactly() -> Result<()> {
    // A 1×1 identity convolution without bias passes x through unchanged (1·x + 0·others is exact),
    // so `forward_relu_pool` pools x and applies the ReLU: `fast_max_pool2d(relu(x))` must give the
    // same values and send the gradient to the same elements (each window's first maximum), ties
    // included. Pools of 2 (the unrolled kernel) and 3, with trailing rows and columns dropped.
    let dev = Device::Cpu;
    for (i, (shape, size)) in [([2, 3, 9, 11], 2), ([1, 2, 10, 7], 3), ([3, 1, 4, 5], 2)].into_iter().enumerate() {
        let seed = 900 + 10 * i as u64;
        let x = Var::from_tensor(&tied(&shape, seed)?)?;
        let eye = Tensor::eye(shape[1], DType::F32, &dev)?.reshape((shape[1], shape[1], 1, 1))?;
        let fused = FastConv2d::new(eye, None)?.forward_relu_pool(x.as_tensor(), size)?;
        let separate = fast_max_pool2d(&x.as_tensor().relu()?, size)?;
        assert_eq!(fused.dims(), separate.dims());
        let values = fused.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(values, separate.flatten_all()?.to_vec1::<f32>()?, "pool output {shape:?}");
        let r = random(fused.dims(), seed + 1)?;
        let grad = |ys: &Tensor| -> Result<Vec<f32>> {
            let grads = (ys * &r)?.sum_all()?.backward()?;
            grads.get(x.as_tensor()).expect("x has a gradient").flatten_all()?.to_vec1::<f32>()
        };
        let (g_fused, g_separate) = (grad(&fused)?, grad(&separate)?);
        assert_eq!(g_fused, g_separate, "pool ∂x {shape:?}");
        // One gradient value per window whose maximum is positive, none elsewhere.
        let positive = values.iter().filter(|v| **v > 0.0).count();
        assert!(positive > 0);
        assert_eq!(g_fused.iter().filter(|g| **g != 0.0).count(), positive, "pool ∂x {shape:?}");
    }
    Ok(())
}

// ----- through a network -----

/// A small CNN on `[B, 2, 12, 10]` images: conv 3×3 2→4, ReLU, pool 2, conv 3×3 4→6, ReLU, dense 3,
/// with candle's conv2d (`fast = false`) or FastConv2d.
/// Returns the loss and the gradients of the input and of every variable, in name order.
fn small_net_grads(fast: bool) -> Result<(f32, Vec<(String, Tensor)>)> {
    let dev = Device::Cpu;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
    let conv = |i: usize, o: usize, name: &str| -> Result<Box<dyn Module>> {
        Ok(if fast {
            Box::new(fast_conv2d(i, o, 3, vb.pp(name))?)
        } else {
            Box::new(candle_nn::conv2d(i, o, 3, Default::default(), vb.pp(name))?)
        })
    };
    let (c0, c1) = (conv(2, 4, "conv0")?, conv(4, 6, "conv1")?);
    let dense = candle_nn::linear(6 * 3 * 2, 3, vb.pp("dense"))?;
    // Same seeded weights for both runs (candle's own initializer cannot be seeded).
    let mut names: Vec<String> = vars.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    {
        let data = vars.data().lock().unwrap();
        for (i, name) in names.iter().enumerate() {
            let var = &data[name];
            var.set(&(random(var.dims(), 500 + i as u64)? * 0.5)?)?;
        }
    }
    let x = Var::from_tensor(&random(&[4, 2, 12, 10], 600)?)?;
    let h = fast_max_pool2d(&c0.forward(x.as_tensor())?.relu()?, 2)?; // [4, 4, 5, 4]
    let h = c1.forward(&h)?.relu()?.flatten_from(1)?; // [4, 6·3·2]
    let logits = dense.forward(&h)?;
    let labels = Tensor::new(&[0u32, 2, 1, 2], &dev)?;
    let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
    let grads = loss.backward()?;
    let mut out = vec![("input".to_string(), grads.get(x.as_tensor()).unwrap().clone())];
    for name in names {
        let var = vars.data().lock().unwrap()[&name].clone();
        out.push((name, grads.get(var.as_tensor()).unwrap().clone()));
    }
    Ok((loss.to_scalar::<f32>()?, out))
}

#[test]
fn network_loss_and_gradients_match_candle() -> Result<()> {
    // Only the convolutions differ between the two runs (both pool with fast_max_pool2d).
    let (loss_fast, grads_fast) = small_net_grads(true)?;
    let (loss_ref, grads_ref) = small_net_grads(false)?;
    assert!((loss_fast - loss_ref).abs() <= 1e-4 * loss_ref.abs().max(1.0), "loss {loss_fast} vs {loss_ref}");
    assert_eq!(grads_fast.len(), 7);
    for ((name, g), (_, want)) in grads_fast.iter().zip(&grads_ref) {
        assert_close(g, want, &format!("network gradient of {name}"))?;
        assert!(want.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "{name}: gradient must not vanish");
    }
    Ok(())
}
