//! Speed of NSL's tutorial MNIST CNN at batch 32 with candle's conv2d/max_pool2d against
//! nsl's FastConv2d/fast_max_pool2d, on 1 and 2 threads. Prints a Markdown table.
//!
//! `cargo bench --bench conv` (release). The parent process re-runs itself once per thread count
//! with `RAYON_NUM_THREADS` set, so candle, gemm and rayon all see the same thread count.
//!
//! The CNN: input `[32, 1, 28, 28]`, conv 3×3 1→32, ReLU, max-pool 2, conv 3×3 32→64, ReLU,
//! max-pool 2, conv 3×3 64→64, ReLU, flatten 576, dense 64 (ReLU), dense 10.
//! Measured per batch (median over repeats):
//! - forward: the logits;
//! - fwd+bwd: the cross-entropy loss and its gradients w.r.t. all weights;
//! - adv step: one step of adversarial regularization as NSL trains it (multiplier 0.2, FGSM
//!   L∞ step 0.2): forward+backward on the clean batch with the input as a variable (gradients
//!   w.r.t. weights and input), the adversarial batch `clip(x + 0.2·sign(∂L/∂x), 0, 1)`,
//!   forward+backward on it, the gradients combined `g_clean + 0.2·g_adv`, and an Adam update;
//! - adv epoch: 313 adv steps (10 000 images at batch 32), NSL's epoch for issue 5's target.

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use nsl::model::{fast_conv2d, fast_max_pool2d};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::process::Command;
use std::time::Instant;

const BATCH: usize = 32;
const STEPS_PER_EPOCH: usize = 10_000usize.div_ceil(BATCH);
const CHILD_ENV: &str = "NSL_CONV_BENCH_BACKEND";

/// Which layers the CNN uses.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    /// candle_nn::conv2d and Tensor::max_pool2d.
    Candle,
    /// FastConv2d, candle's max_pool2d.
    FastConv,
    /// FastConv2d and fast_max_pool2d.
    FastConvPool,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Candle, Backend::FastConv, Backend::FastConvPool];

    fn name(self) -> &'static str {
        match self {
            Backend::Candle => "candle conv2d + max_pool2d",
            Backend::FastConv => "FastConv2d + candle max_pool2d",
            Backend::FastConvPool => "FastConv2d + fast_max_pool2d",
        }
    }
}

struct Cnn {
    convs: Vec<Box<dyn Module>>,
    dense: Linear,
    out: Linear,
    fast_pool: bool,
}

impl Cnn {
    fn new(backend: Backend, vb: VarBuilder) -> Result<Self> {
        let mut convs: Vec<Box<dyn Module>> = Vec::new();
        for (i, (cin, cout)) in [(1, 32), (32, 64), (64, 64)].into_iter().enumerate() {
            let vb = vb.pp(format!("conv{i}"));
            convs.push(match backend {
                Backend::Candle => Box::new(candle_nn::conv2d(cin, cout, 3, Default::default(), vb)?),
                _ => Box::new(fast_conv2d(cin, cout, 3, vb)?),
            });
        }
        let dense = candle_nn::linear(576, 64, vb.pp("dense0"))?;
        let out = candle_nn::linear(64, 10, vb.pp("logits"))?;
        Ok(Cnn { convs, dense, out, fast_pool: backend == Backend::FastConvPool })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut x = xs.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.forward(&x)?.relu()?;
            if i + 1 < self.convs.len() {
                x = if self.fast_pool { fast_max_pool2d(&x, 2)? } else { x.max_pool2d(2)? };
            }
        }
        self.out.forward(&self.dense.forward(&x.flatten_from(1)?)?.relu()?)
    }
}

/// Median milliseconds of `f` over `repeats` runs after 2 warm-up runs.
fn time_ms(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..2 {
        f()?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One child run: `[forward, fwd+bwd, adv step]` in ms for `backend` on this process's threads.
fn measure(backend: Backend) -> Result<[f64; 3]> {
    let dev = Device::Cpu;
    let vars = VarMap::new();
    let model = Cnn::new(backend, VarBuilder::from_varmap(&vars, DType::F32, &dev))?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let pixels: Vec<f32> = (0..BATCH * 784).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let xs = Tensor::from_vec(pixels, (BATCH, 1, 28, 28), &dev)?;
    let labels: Vec<u32> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();
    let ys = Tensor::new(labels.as_slice(), &dev)?;
    let repeats = if backend == Backend::Candle { 15 } else { 40 };

    let forward = time_ms(repeats, || model.forward(&xs).map(drop))?;
    let fwd_bwd = time_ms(repeats, || candle_nn::loss::cross_entropy(&model.forward(&xs)?, &ys)?.backward().map(drop))?;
    let mut opt = AdamW::new(vars.all_vars(), ParamsAdamW { lr: 1e-3, weight_decay: 0.0, ..Default::default() })?;
    let adv_step = time_ms(repeats, || {
        let x = Var::from_tensor(&xs)?;
        let mut grads = candle_nn::loss::cross_entropy(&model.forward(x.as_tensor())?, &ys)?.backward()?;
        let gx = grads.remove(x.as_tensor()).ok_or_else(|| candle_core::Error::Msg("no input gradient".into()))?;
        let x_adv = (&xs + (gx.sign()? * 0.2)?)?.clamp(0f32, 1f32)?.detach();
        let grads_adv = candle_nn::loss::cross_entropy(&model.forward(&x_adv)?, &ys)?.backward()?;
        for var in vars.all_vars() {
            if let (Some(g), Some(ga)) = (grads.get(var.as_tensor()), grads_adv.get(var.as_tensor())) {
                let combined = (g + (ga * 0.2)?)?;
                grads.insert(var.as_tensor(), combined);
            }
        }
        opt.step(&grads)
    })?;
    Ok([forward, fwd_bwd, adv_step])
}

fn main() -> Result<()> {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        let backend = Backend::ALL.into_iter().find(|b| b.name() == name).expect("parent passes a known backend");
        let [f, fb, adv] = measure(backend)?;
        println!("{f} {fb} {adv}");
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!("NSL tutorial CNN, batch {BATCH}, median ms per batch (adv epoch = {STEPS_PER_EPOCH} adv steps)\n");
    println!("| layers | threads | forward (ms) | fwd+bwd (ms) | adv step (ms) | adv epoch (s) |");
    println!("|---|---|---|---|---|---|");
    for threads in [1, 2] {
        for backend in Backend::ALL {
            let out = Command::new(&exe)
                .env(CHILD_ENV, backend.name())
                .env("RAYON_NUM_THREADS", threads.to_string())
                .output()?;
            if !out.status.success() {
                eprintln!("{}", String::from_utf8_lossy(&out.stderr));
                candle_core::bail!("the benchmark of {} on {threads} threads failed", backend.name());
            }
            let values: Vec<f64> =
                String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let [f, fb, adv] = values[..] else { candle_core::bail!("unexpected child output {values:?}") };
            println!(
                "| {} | {threads} | {f:.1} | {fb:.1} | {adv:.1} | {:.2} |",
                backend.name(),
                adv * STEPS_PER_EPOCH as f64 / 1e3
            );
        }
    }
    Ok(())
}
