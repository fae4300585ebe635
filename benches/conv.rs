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
use candle_nn::{AdamW, Conv2d, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use nsl::model::{fast_conv2d, fast_max_pool2d, FastConv2d};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::process::Command;
use std::time::Instant;

const BATCH: usize = 32;
const STEPS_PER_EPOCH: usize = 10_000usize.div_ceil(BATCH);
const CHILD_ENV: &str = "NSL_CONV_BENCH_BACKEND";
/// glibc malloc settings that keep freed buffers for reuse instead of returning them to the OS
/// (and page-faulting them back in on the next step): every op allocates its output afresh.
const MALLOC_TUNED: [&str; 2] = ["MALLOC_MMAP_THRESHOLD_=67108864", "MALLOC_TRIM_THRESHOLD_=1073741824"];

/// Which layers the CNN uses.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    /// candle_nn::conv2d and Tensor::max_pool2d.
    Candle,
    /// FastConv2d, candle's max_pool2d (whose gradient is wrong: for reference only).
    FastConv,
    /// FastConv2d and fast_max_pool2d.
    FastConvPool,
    /// FastConv2d::forward_relu (conv + ReLU fused) and fast_max_pool2d.
    Fused,
    /// FastConv2d::forward_relu_pool (conv + ReLU + pool fused), forward_relu for the last conv.
    FusedPool,
}

impl Backend {
    const ALL: [Backend; 5] =
        [Backend::Candle, Backend::FastConv, Backend::FastConvPool, Backend::Fused, Backend::FusedPool];

    fn name(self) -> &'static str {
        match self {
            Backend::Candle => "candle conv2d + max_pool2d",
            Backend::FastConv => "FastConv2d + candle max_pool2d",
            Backend::FastConvPool => "FastConv2d + fast_max_pool2d",
            Backend::Fused => "FastConv2d::forward_relu + fast_max_pool2d",
            Backend::FusedPool => "FastConv2d::forward_relu_pool",
        }
    }
}

struct Cnn {
    convs: Vec<FastConv2d>,
    candle_convs: Vec<Conv2d>,
    dense: Linear,
    out: Linear,
    backend: Backend,
}

impl Cnn {
    fn new(backend: Backend, vb: VarBuilder) -> Result<Self> {
        let (mut convs, mut candle_convs) = (Vec::new(), Vec::new());
        for (i, (cin, cout)) in [(1, 32), (32, 64), (64, 64)].into_iter().enumerate() {
            let vb = vb.pp(format!("conv{i}"));
            if backend == Backend::Candle {
                candle_convs.push(candle_nn::conv2d(cin, cout, 3, Default::default(), vb)?);
            } else {
                convs.push(fast_conv2d(cin, cout, 3, vb)?);
            }
        }
        let dense = candle_nn::linear(576, 64, vb.pp("dense0"))?;
        let out = candle_nn::linear(64, 10, vb.pp("logits"))?;
        Ok(Cnn { convs, candle_convs, dense, out, backend })
    }

    fn conv_relu(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        match self.backend {
            Backend::Candle => self.candle_convs[i].forward(x)?.relu(),
            Backend::FastConv | Backend::FastConvPool => self.convs[i].forward(x)?.relu(),
            Backend::Fused | Backend::FusedPool => self.convs[i].forward_relu(x),
        }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut x = xs.clone();
        for i in 0..3 {
            let pool = i < 2;
            x = match self.backend {
                Backend::FusedPool if pool => self.convs[i].forward_relu_pool(&x, 2)?,
                Backend::Candle | Backend::FastConv if pool => self.conv_relu(i, &x)?.max_pool2d(2)?,
                _ if pool => fast_max_pool2d(&self.conv_relu(i, &x)?, 2)?,
                _ => self.conv_relu(i, &x)?,
            };
        }
        self.out.forward(&self.dense.forward(&x.flatten_from(1)?)?.relu()?)
    }
}

/// Timings of one measured step, in ms.
#[derive(Clone, Copy)]
struct Timing {
    /// The fastest run: the least disturbed by other processes on a shared machine.
    best: f64,
    /// The median run: shows the spread.
    median: f64,
    /// Process CPU time (user + system, all threads) per run, averaged: insensitive to waiting
    /// for a core on a busy machine; on 2 threads it includes rayon's idle spinning.
    cpu: f64,
}

/// User + system CPU seconds of this process so far, from `/proc/self/stat` (Linux; USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Times `repeats` runs of `f` after 2 warm-up runs.
fn time_ms(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    for _ in 0..2 {
        f()?;
    }
    let mut times = Vec::with_capacity(repeats);
    let cpu_start = cpu_seconds();
    for _ in 0..repeats {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (cpu_seconds() - cpu_start) * 1e3 / repeats as f64;
    times.sort_by(f64::total_cmp);
    Ok(Timing { best: times[0], median: times[times.len() / 2], cpu })
}

/// One child run: `[forward, fwd+bwd, adv step]` for `backend` on this process's threads.
fn measure(backend: Backend) -> Result<[Timing; 3]> {
    let dev = Device::Cpu;
    let vars = VarMap::new();
    let model = Cnn::new(backend, VarBuilder::from_varmap(&vars, DType::F32, &dev))?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let pixels: Vec<f32> = (0..BATCH * 784).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let xs = Tensor::from_vec(pixels, (BATCH, 1, 28, 28), &dev)?;
    let labels: Vec<u32> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();
    let ys = Tensor::new(labels.as_slice(), &dev)?;
    let repeats = if backend == Backend::Candle { 20 } else { 60 };

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

/// `cargo bench --bench conv -- layers`: each convolution of the CNN alone at batch 32, on this
/// process's threads (`RAYON_NUM_THREADS`): the forward (fused ReLU and pool as in the CNN), the
/// backward to the input only (a PGD step), and to the weights and bias only; best of 30 runs, ms and
/// GFLOP/s of the layer's GEMM.
fn layers() -> Result<()> {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut random = |shape: &[usize]| -> Result<Tensor> {
        let n = shape.iter().product::<usize>();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &dev)
    };
    println!("| layer | pass | ms | GFLOP/s |");
    println!("|---|---|---|---|");
    // `-- layers 1`: only the second convolution (for a profiler).
    let only: Option<usize> = std::env::args().skip_while(|a| a != "layers").nth(1).and_then(|a| a.parse().ok());
    let all = [(1, 32, 28, 2), (32, 64, 13, 2), (64, 64, 5, 1)];
    for (i, &(cin, cout, hw, pool)) in all.iter().enumerate() {
        if only.is_some_and(|l| l != i) {
            continue;
        }
        let (x, w, b) = (random(&[BATCH, cin, hw, hw])?, random(&[cout, cin, 3, 3])?, random(&[cout])?);
        let n = (hw - 2) * (hw - 2);
        let gflop = (2 * BATCH * cout * n * cin * 9) as f64 / 1e9;
        let run = |conv: &FastConv2d, x: &Tensor| {
            if pool > 1 {
                conv.forward_relu_pool(x, pool)
            } else {
                conv.forward_relu(x)
            }
        };
        let fixed = FastConv2d::new(w.clone(), Some(b.clone()))?;
        let (wv, bv) = (Var::from_tensor(&w)?, Var::from_tensor(&b)?);
        let trained = FastConv2d::new(wv.as_tensor().clone(), Some(bv.as_tensor().clone()))?;
        let xv = Var::from_tensor(&x)?;
        type Pass<'a> = Box<dyn FnMut() -> Result<()> + 'a>;
        let passes: [(&str, Pass); 3] = [
            ("forward", Box::new(|| run(&fixed, &x).map(drop))),
            ("fwd + ∂x", Box::new(|| run(&fixed, xv.as_tensor())?.sum_all()?.backward().map(drop))),
            ("fwd + ∂w, ∂b", Box::new(|| run(&trained, &x)?.sum_all()?.backward().map(drop))),
        ];
        for (name, f) in passes {
            let t = time_ms(if only.is_some() { 1000 } else { 30 }, f)?.best;
            let flops = if name == "forward" { gflop } else { 2.0 * gflop };
            println!("| {cin}→{cout} on {hw}×{hw} | {name} | {t:.3} | {:.1} |", flops / t * 1e3);
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "layers") {
        return layers();
    }
    if let Ok(name) = std::env::var(CHILD_ENV) {
        let backend = Backend::ALL.into_iter().find(|b| b.name() == name).expect("parent passes a known backend");
        let values: Vec<String> =
            measure(backend)?.iter().flat_map(|t| [t.best, t.median, t.cpu]).map(|v| v.to_string()).collect();
        println!("{}", values.join(" "));
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!("NSL tutorial CNN, batch {BATCH}, ms per batch: best / median of the runs, and process CPU ms");
    println!(
        "per run; adv epoch = {STEPS_PER_EPOCH} × the best adv step. \"malloc tuned\" runs with {}.\n",
        MALLOC_TUNED.join(" ")
    );
    println!(
        "| layers | malloc | threads | forward | fwd+bwd | fwd+bwd CPU | adv step | adv step CPU | adv epoch (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let runs =
        Backend::ALL.into_iter().map(|b| (b, false)).chain([(Backend::Candle, true), (Backend::FusedPool, true)]);
    let runs: Vec<(Backend, bool)> = runs.collect();
    for threads in [1, 2] {
        for &(backend, tuned) in &runs {
            let mut cmd = Command::new(&exe);
            cmd.env(CHILD_ENV, backend.name()).env("RAYON_NUM_THREADS", threads.to_string());
            if tuned {
                cmd.envs(MALLOC_TUNED.iter().filter_map(|kv| kv.split_once('=')));
            }
            let out = cmd.output()?;
            if !out.status.success() {
                eprintln!("{}", String::from_utf8_lossy(&out.stderr));
                candle_core::bail!("the benchmark of {} on {threads} threads failed", backend.name());
            }
            let values: Vec<f64> =
                String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let [f, f_med, _, fb, fb_med, fb_cpu, adv, adv_med, adv_cpu] = values[..] else {
                candle_core::bail!("unexpected child output {values:?}")
            };
            println!(
                "| {} | {} | {threads} | {f:.1} / {f_med:.1} | {fb:.1} / {fb_med:.1} | {fb_cpu:.1} | {adv:.1} / {adv_med:.1} | {adv_cpu:.1} | {:.2} |",
                backend.name(),
                if tuned { "tuned" } else { "default" },
                adv * STEPS_PER_EPOCH as f64 / 1e3
            );
        }
    }
    Ok(())
}
