//! Optimizers that update every parameter in one fused pass over its values.
//!
//! candle-nn's `AdamW` spends about ten tensor operations (and allocations) per variable per step,
//! which dominates the step time of small models; here each variable is updated in place, in its own
//! storage, by one vectorized loop.

use crate::config::{named, ConfigError};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The optimizer and its learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum OptimizerConfig {
    /// Adam with Keras' defaults: β₁ 0.9, β₂ 0.999, ε 1e-7.
    Adam {
        /// Learning rate. Keras default 0.001.
        learning_rate: f64,
    },
    /// Plain stochastic gradient descent.
    Sgd {
        /// Learning rate.
        learning_rate: f64,
    },
}

/// Adam with learning rate 0.001 ([`OptimizerConfig::adam`]).
impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::adam()
    }
}

impl OptimizerConfig {
    /// Adam with Keras' default learning rate, 0.001.
    pub const fn adam() -> Self {
        OptimizerConfig::Adam { learning_rate: 0.001 }
    }

    /// SGD with Keras' default learning rate, 0.01.
    pub const fn sgd() -> Self {
        OptimizerConfig::Sgd { learning_rate: 0.01 }
    }

    /// The learning rate.
    pub const fn learning_rate(&self) -> f64 {
        match *self {
            OptimizerConfig::Adam { learning_rate } | OptimizerConfig::Sgd { learning_rate } => learning_rate,
        }
    }

    /// The same optimizer with another learning rate.
    pub const fn with_learning_rate(self, learning_rate: f64) -> Self {
        match self {
            OptimizerConfig::Adam { .. } => OptimizerConfig::Adam { learning_rate },
            OptimizerConfig::Sgd { .. } => OptimizerConfig::Sgd { learning_rate },
        }
    }
}

/// Parses `adam` or `sgd`, with Keras' default learning rate.
impl std::str::FromStr for OptimizerConfig {
    type Err = ConfigError;
    fn from_str(s: &str) -> std::result::Result<Self, ConfigError> {
        named("optimizer", &[("adam", OptimizerConfig::adam()), ("sgd", OptimizerConfig::sgd())], s)
    }
}

/// The state of an optimizer over a fixed list of variables.
pub(crate) struct Optimizer {
    config: OptimizerConfig,
    vars: Vec<Var>,
    /// Adam's first and second moments, one buffer per variable (empty for SGD).
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    step: i32,
    /// L2 weight decay λ: every gradient gets `λ·θ` added before the update (0: off).
    weight_decay: f32,
}

impl Optimizer {
    pub(crate) fn new(config: OptimizerConfig, vars: Vec<Var>) -> Self {
        let moments = match config {
            OptimizerConfig::Adam { .. } => {
                vars.iter().map(|v| (vec![0.0; v.elem_count()], vec![0.0; v.elem_count()])).collect()
            }
            OptimizerConfig::Sgd { .. } => Vec::new(),
        };
        Optimizer { config, vars, moments, step: 0, weight_decay: 0.0 }
    }

    /// The same optimizer with L2 weight decay `λ` ([`TrainConfig::weight_decay`](super::TrainConfig)):
    /// each update uses the gradient `g + λ·θ` of `L + λ/2·‖θ‖²`, over every variable (biases
    /// included), as PyTorch's `Adam(weight_decay=λ)` and Graph-MLP. 0 leaves the updates as they were.
    pub(crate) fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay as f32;
        self
    }

    /// One update from `grads` (variables without a gradient are left alone).
    pub(crate) fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        for i in 0..self.vars.len() {
            let Some(grad) = grads.get(self.vars[i].as_tensor()) else { continue };
            crate::kernels::with_slice(grad, "gradient", |g| self.update(i, g))?;
        }
        Ok(())
    }

    /// One update from gradients given as `(variable index, values)` (see [`Optimizer::index_of`]).
    pub(crate) fn step_slices<'g>(&mut self, grads: impl IntoIterator<Item = (usize, &'g [f32])>) -> Result<()> {
        self.step += 1;
        for (i, g) in grads {
            self.update(i, g)?;
        }
        Ok(())
    }

    /// Sets the learning rate of the next updates (a schedule's value for the coming step).
    pub(crate) fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config = self.config.with_learning_rate(learning_rate);
    }

    /// Updates done so far (the global step).
    pub(crate) fn steps(&self) -> u64 {
        u64::try_from(self.step).unwrap_or(0)
    }

    /// Adam's moments `(m, v)` per variable, in the variables' order (empty for SGD).
    pub(crate) fn moments(&self) -> &[(Vec<f32>, Vec<f32>)] {
        &self.moments
    }

    /// Restores the step count and Adam's moments of a saved run.
    ///
    /// # Errors
    /// Moments that do not fit the variables (another optimizer or model).
    pub(crate) fn restore(&mut self, steps: u64, moments: Vec<(Vec<f32>, Vec<f32>)>) -> Result<()> {
        let fits = moments.len() == self.moments.len()
            && moments.iter().zip(&self.moments).all(|(a, b)| a.0.len() == b.0.len() && a.1.len() == b.1.len());
        if !fits {
            candle_core::bail!(
                "optimizer state: {} moment buffers, the optimizer has {} (another optimizer or model)",
                moments.len(),
                self.moments.len()
            );
        }
        self.step = i32::try_from(steps)
            .map_err(|_| candle_core::Error::Msg(format!("optimizer state: {steps} steps is too many")))?;
        self.moments = moments;
        Ok(())
    }

    /// The index of the variable whose tensor is `t`.
    pub(crate) fn index_of(&self, t: &Tensor) -> Option<usize> {
        self.vars.iter().position(|v| v.as_tensor().id() == t.id())
    }

    /// Updates variable `i` from its gradient `g`, in place in the variable's storage.
    ///
    /// Adam, as Keras: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `θ ← θ − lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)`. SGD: `θ ← θ − lr·g`. With weight decay λ > 0,
    /// `g` is first replaced by `g + λ·θ`.
    fn update(&mut self, i: usize, g: &[f32]) -> Result<()> {
        let var = &self.vars[i];
        if var.elem_count() != g.len() {
            candle_core::bail!("optimizer: {} gradient values for {} parameters", g.len(), var.elem_count());
        }
        let arch = pulp::Arch::new();
        // With decay, the decayed gradient is built first (a copy); without, `g` is used as it is,
        // so runs without decay keep their exact floating-point results.
        let decayed: Vec<f32>;
        let g = if self.weight_decay > 0.0 {
            let wd = self.weight_decay;
            decayed = crate::kernels::with_slice(var.as_tensor(), "weights", |theta| {
                Ok(g.iter().zip(theta).map(|(&g, &t)| g + wd * t).collect())
            })?;
            &decayed[..]
        } else {
            g
        };
        match self.config {
            OptimizerConfig::Adam { learning_rate } => {
                let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-7f32);
                let lr_t = (learning_rate as f32) * (1.0 - b2.powi(self.step)).sqrt() / (1.0 - b1.powi(self.step));
                let (m, v) = &mut self.moments[i];
                var.inplace_op1(&InPlace::new(|theta: &mut [f32]| {
                    // Compiled for the CPU's widest vectors; zipped slices have no bounds checks.
                    arch.dispatch(|| {
                        for (((t, m), v), &g) in theta.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                            *m = flush_subnormal(b1 * *m + (1.0 - b1) * g);
                            *v = flush_subnormal(b2 * *v + (1.0 - b2) * g * g);
                            *t -= lr_t * *m / (v.sqrt() + eps);
                        }
                    })
                }))
            }
            OptimizerConfig::Sgd { learning_rate } => var.inplace_op1(&InPlace::new(|theta: &mut [f32]| {
                let lr = learning_rate as f32;
                arch.dispatch(|| theta.iter_mut().zip(g).for_each(|(t, &g)| *t -= lr * g))
            })),
        }
    }
}

/// `x`, or 0 if `x` is subnormal (|x| < `f32::MIN_POSITIVE`).
///
/// Adam's moments of rarely-active weights decay geometrically (×0.9 and ×0.999 per step) into
/// subnormal floats, which x86 handles in slow microcode: epochs got slower and slower. Flushing the
/// moments here keeps them out of that range without touching the thread's floating-point
/// environment (the FTZ/DAZ bits, which Rust documents changing as undefined behaviour). A compare
/// and a select: the loop stays vectorized.
#[inline(always)]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Runs a function on a variable's values, in place.
struct InPlace<F>(RefCell<F>);

impl<F: FnMut(&mut [f32])> InPlace<F> {
    fn new(f: F) -> Self {
        InPlace(RefCell::new(f))
    }
}

impl<F: FnMut(&mut [f32])> InplaceOp1 for InPlace<F> {
    fn name(&self) -> &'static str {
        "optimizer-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        match (storage, layout.contiguous_offsets()) {
            (CpuStorage::F32(values), Some((start, end))) => {
                (self.0.borrow_mut())(&mut values[start..end]);
                Ok(())
            }
            _ => candle_core::bail!("optimizer: variables must be contiguous f32"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Keras' Adam on f(θ) = θ², θ₀ = 1, lr 0.1: after one step θ = 1 − 0.1·g/(|g| + ε·…) ≈ 0.9.
    #[test]
    fn adam_first_steps_match_keras() {
        let var = Var::new(&[1.0f32], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(OptimizerConfig::Adam { learning_rate: 0.1 }, vec![var.clone()]);
        let mut thetas = Vec::new();
        for _ in 0..3 {
            let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            thetas.push(var.as_tensor().to_vec1::<f32>().unwrap()[0]);
        }
        // python3 (numpy), the Keras update rule:
        // t,m,v,th=0,0,0,1.0
        // for _ in range(3): g=2*th; t+=1; m=.9*m+.1*g; v=.999*v+.001*g*g;
        //   th-=.1*(1-.999**t)**.5/(1-.9**t)*m/(v**.5+1e-7)
        let expected = [0.900_000_16f32, 0.800_412_5, 0.701_586_6];
        for (a, b) in thetas.iter().zip(expected) {
            assert!((a - b).abs() < 1e-4, "{thetas:?}");
        }
    }

    #[test]
    fn names_and_default_learning_rates() {
        assert_eq!("adam".parse::<OptimizerConfig>().unwrap(), OptimizerConfig::default());
        assert_eq!("sgd".parse::<OptimizerConfig>().unwrap(), OptimizerConfig::Sgd { learning_rate: 0.01 });
        assert_eq!(OptimizerConfig::sgd().with_learning_rate(0.5).learning_rate(), 0.5);
        assert!(matches!(OptimizerConfig::sgd().with_learning_rate(0.5), OptimizerConfig::Sgd { .. }));
        let err = "rmsprop".parse::<OptimizerConfig>().unwrap_err();
        assert_eq!(err.to_string(), "invalid value `rmsprop` for optimizer: expected adam or sgd");
    }

    /// L2 decay on f(θ) = θ² (g = 2θ): the update sees 2θ + λθ.
    #[test]
    fn weight_decay_adds_lambda_theta_to_the_gradient() {
        // SGD, lr 0.5, λ 0.5, θ = [1, −2]: θ − 0.5·(2θ + 0.5θ) = −0.25·θ = [−0.25, 0.5].
        let var = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt =
            Optimizer::new(OptimizerConfig::Sgd { learning_rate: 0.5 }, vec![var.clone()]).with_weight_decay(0.5);
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), vec![-0.25, 0.5]);
        // Adam, lr 0.1, λ 1, on f(θ) = θ (g = 1, so the decay is not a mere rescaling), θ₀ = 1, three
        // steps; python3, PyTorch's Adam(weight_decay) rule with Keras' ε:
        // t,m,v,th=0,0,0,1.0
        // for _ in range(3): g=1+1.0*th; t+=1; m=.9*m+.1*g; v=.999*v+.001*g*g;
        //   th-=.1*(1-.999**t)**.5/(1-.9**t)*m/(v**.5+1e-7)
        // (without decay: 0.9000003, 0.8000005, 0.7000007)
        let var = Var::new(&[1.0f32], &Device::Cpu).unwrap();
        let mut opt =
            Optimizer::new(OptimizerConfig::Adam { learning_rate: 0.1 }, vec![var.clone()]).with_weight_decay(1.0);
        let mut thetas = Vec::new();
        for _ in 0..3 {
            let loss = var.as_tensor().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            thetas.push(var.as_tensor().to_vec1::<f32>().unwrap()[0]);
        }
        for (a, b) in thetas.iter().zip([0.900_000_2f32, 0.800_166_8, 0.700_623_8]) {
            assert!((a - b).abs() < 1e-5, "{thetas:?}");
        }
    }

    #[test]
    fn sgd_step() {
        let var = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(OptimizerConfig::Sgd { learning_rate: 0.5 }, vec![var.clone()]);
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), vec![0.0, 0.0]);
    }
}
