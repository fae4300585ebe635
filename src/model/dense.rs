//! [`Dense`]: a fully connected layer `y = act(x·W + b)` that is fast on CPU for the inputs nsl meets.
//!
//! candle's `Linear` is three ops (a product with a strided transpose of `W: [out, in]`, a broadcast
//! add, the activation), each with its own buffers and backward, and always computes the gradient of
//! its input, even for a constant batch of features. Here the whole layer is one op: `W` is stored
//! `[in, out]`, the product runs on the `gemm` crate with the bias and a ReLU fused in, the
//! backward computes `∂W`, `∂b` and — only when something upstream needs it — `∂x` in one go, and
//! when the input is mostly zeros (bag-of-words: 1.3 % of Cora's 1,433 words per paper) the
//! product and the weight gradient only visit the non-zero values.

use crate::kernels::{cpu_slice, param_grads_wanted, sgemm, transpose, with_slice, Mat};
use candle_core::{CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use std::sync::OnceLock;

/// Below this share of non-zero input values the sparse kernels are used.
const SPARSE_DENSITY: f64 = 0.1;

/// Products with at least this many multiply-adds split over the rayon threads. Below it, waking
/// the second thread costs more than it saves: measured on 2 cores, splitting MNIST's first layer
/// (32 × 784 × 256) made a training step slower.
const PARALLEL_MIN_WORK: usize = 1 << 23;

/// `y = x·W + b` with `W: [in, out]`, `b: [out]`, for `x: [n, in]` and `y: [n, out]`.
///
/// Built from its tensors with [`Dense::new`], or with fresh variables by [`dense`].
///
/// ```
/// use candle_core::{Device, Module, Tensor};
/// use nsl::model::Dense;
/// // [1, 2]·[[1, 0, 2], [0, 1, -1]] + [0.5, 0, 0] = [1.5, 2, 0].
/// let dev = Device::Cpu;
/// let w = Tensor::new(&[[1f32, 0.0, 2.0], [0.0, 1.0, -1.0]], &dev)?;
/// let layer = Dense::new(w, Tensor::new(&[0.5f32, 0.0, 0.0], &dev)?)?;
/// let y = layer.forward(&Tensor::new(&[[1f32, 2.0]], &dev)?)?;
/// assert_eq!(y.to_vec2::<f32>()?, [[1.5, 2.0, 0.0]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

/// A [`Dense`] layer with variables `weight` (`[in, out]`) and `bias` (`[out]`) in `vb`.
///
/// # Errors
/// A candle error if the variables cannot be created.
pub fn dense(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Dense> {
    let bound = (6.0 / (in_dim + out_dim) as f64).sqrt();
    let weight = vb.get_with_hints((in_dim, out_dim), "weight", Init::Uniform { lo: -bound, up: bound })?;
    let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Dense::new(weight, bias)
}

impl Dense {
    /// A layer with the given weight `[in, out]` and bias `[out]`.
    ///
    /// # Errors
    /// A candle error naming both shapes if the weight is not rank 2 or the bias is not `[out]`.
    pub fn new(weight: Tensor, bias: Tensor) -> Result<Self> {
        let fits = matches!((weight.dims(), bias.dims()), ([_, out], [len]) if out == len);
        if !fits {
            candle_core::bail!(
                "dense layer: weight {:?} must be [in, out] and bias {:?} must be [out]",
                weight.dims(),
                bias.dims()
            );
        }
        Ok(Dense { weight, bias })
    }

    /// The weight, `[in, out]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `max(0, x·W + b)` in one op.
    ///
    /// # Errors
    /// A candle error if `x` is not `[n, in]` f32 on the CPU.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        x.apply_op3(&self.weight, &self.bias, DenseOp::new(true))
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply_op3(&self.weight, &self.bias, DenseOp::new(false))
    }
}

/// The layer as a custom op on `(x, W, b)`, optionally followed by a ReLU. One instance serves one
/// call (forward, then backward).
struct DenseOp {
    relu: bool,
    /// Whether the backward computes `∂W` and `∂b` (off in an input-gradient pass, see
    /// `kernels::input_gradient_only`).
    param_grads: bool,
    /// Set by the forward: the input's non-zeros if it is sparse, for the backward's `∂W`.
    sparse_input: OnceLock<Option<Csr>>,
}

impl DenseOp {
    fn new(relu: bool) -> Self {
        DenseOp { relu, param_grads: param_grads_wanted(), sparse_input: OnceLock::new() }
    }
}

/// Whether `x` is sparse enough for the sparse kernels, judged on an evenly spread sample of at most
/// 4,096 values (a full count would cost as much as the sparse product itself).
fn is_sparse(x: &[f32]) -> bool {
    if x.is_empty() {
        return false;
    }
    let step = (x.len() / 4096).max(1);
    let (seen, nonzero) =
        x.iter().step_by(step).fold((0usize, 0usize), |(s, nz), v| (s + 1, nz + usize::from(*v != 0.0)));
    (nonzero as f64) < SPARSE_DENSITY * seen as f64
}

/// The non-zero values of a row-major matrix, row by row (compressed sparse rows).
#[derive(Debug, Default)]
pub(super) struct Csr {
    /// Row `r`'s entries are `starts[r]..starts[r + 1]`.
    starts: Vec<usize>,
    columns: Vec<u32>,
    values: Vec<f32>,
}

impl Csr {
    /// The non-zeros of `x` (`[rows, k]` row-major), if it is sparse enough to be worth it.
    pub(super) fn of_sparse(x: &[f32], k: usize) -> Option<Csr> {
        if k == 0 || !is_sparse(x) {
            return None;
        }
        let mut csr = Csr { starts: Vec::with_capacity(x.len() / k + 1), ..Csr::default() };
        csr.starts.push(0);
        for row in x.chunks_exact(k) {
            // Blocks of 16 zeros are skipped at once.
            for (b, block) in row.chunks(16).enumerate() {
                if block.iter().fold(0u32, |acc, v| acc | u32::from(*v != 0.0)) == 0 {
                    continue;
                }
                for (i, &v) in block.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                    csr.columns.push((b * 16 + i) as u32);
                    csr.values.push(v);
                }
            }
            csr.starts.push(csr.values.len());
        }
        Some(csr)
    }

    /// The `(column, value)` pairs of every row.
    fn rows(&self) -> impl Iterator<Item = impl Iterator<Item = (usize, f32)> + '_> + '_ {
        self.starts
            .windows(2)
            .map(|w| self.columns[w[0]..w[1]].iter().map(|&c| c as usize).zip(self.values[w[0]..w[1]].iter().copied()))
    }
}

/// A layer's input: dense values, or their non-zeros when mostly zeros.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Dense(&'a [f32]),
    Sparse(&'a Csr),
}

/// Whether a product of `n·k·m` multiply-adds is worth splitting over the rayon threads.
fn parallel(n: usize, k: usize, m: usize) -> bool {
    n * k * m >= PARALLEL_MIN_WORK
}

/// `act(x·W + b)` for `x: [n, k]`, `W: [k, m]`, `b: [m]`, all row-major; `act` is a ReLU or the
/// identity.
pub(super) fn forward(
    x: Input,
    w: &[f32],
    b: &[f32],
    (n, k, m): (usize, usize, usize),
    relu: bool,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(n * m);
    for _ in 0..n {
        out.extend_from_slice(b);
    }
    match x {
        Input::Sparse(csr) => {
            for (row, out_row) in csr.rows().zip(out.chunks_exact_mut(m)) {
                for (f, v) in row {
                    out_row.iter_mut().zip(&w[f * m..(f + 1) * m]).for_each(|(o, &wv)| *o += v * wv);
                }
            }
        }
        Input::Dense(x) => sgemm((n, m, k), Mat::rows(x, k), Mat::rows(w, m), &mut out, true, parallel(n, k, m))?,
    }
    if relu {
        out.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    Ok(out)
}

/// `∂W (+)= xᵀ·g` and `∂b (+)= Σ_rows g` for `x: [n, k]`, `g: [n, m]`: added to the buffers if
/// `accumulate`, else written over them.
pub(super) fn param_grads(
    x: Input,
    g: &[f32],
    (n, k, m): (usize, usize, usize),
    (grad_w, grad_b): (&mut [f32], &mut [f32]),
    accumulate: bool,
) -> Result<()> {
    if !accumulate {
        grad_b.fill(0.0);
    }
    for row in g.chunks_exact(m) {
        grad_b.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    match x {
        Input::Sparse(csr) => {
            if !accumulate {
                grad_w.fill(0.0);
            }
            for (row, g_row) in csr.rows().zip(g.chunks_exact(m)) {
                for (f, v) in row {
                    grad_w[f * m..(f + 1) * m].iter_mut().zip(g_row).for_each(|(o, &gv)| *o += v * gv);
                }
            }
            Ok(())
        }
        Input::Dense(x) => {
            sgemm((k, m, n), Mat::transposed(x, k), Mat::rows(g, m), grad_w, accumulate, parallel(n, k, m))
        }
    }
}

/// `∂x = g·Wᵀ` for `g: [n, m]`, `W: [k, m]`.
///
/// Computed as `(∂x)ᵀ = W·gᵀ` into a `[k, n]` buffer, then transposed: the `gemm` crate packs a
/// strided right operand (`Wᵀ`, here the large one) element by element, and writing a transposed
/// destination directly is slower still.
pub(super) fn input_grad(g: &[f32], w: &[f32], (n, k, m): (usize, usize, usize)) -> Result<Vec<f32>> {
    let mut transposed = vec![0.0f32; k * n];
    sgemm((k, n, m), Mat::rows(w, m), Mat::transposed(g, m), &mut transposed, false, parallel(n, k, m))?;
    let mut out = vec![0.0f32; n * k];
    transpose(&transposed, k, n, &mut out);
    Ok(out)
}

/// `g ← g · 1[y > 0]`: the gradient through a ReLU whose output is `y`.
pub(super) fn relu_grad(g: &mut [f32], y: &[f32]) {
    g.iter_mut().zip(y).for_each(|(g, &y)| *g = if y > 0.0 { *g } else { 0.0 });
}

impl CustomOp3 for DenseOp {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((n, k), (k2, m)) = (l1.shape().dims2()?, l2.shape().dims2()?);
        if k != k2 || l3.dims() != [m] {
            candle_core::bail!(
                "dense layer: input [{n}, {k}] does not fit weight [{k2}, {m}] and bias {:?}",
                l3.dims()
            );
        }
        let (x, w, b) = (cpu_slice(s1, l1, "input")?, cpu_slice(s2, l2, "weight")?, cpu_slice(s3, l3, "bias")?);
        let csr = self.sparse_input.get_or_init(|| Csr::of_sparse(x, k));
        let input = csr.as_ref().map_or(Input::Dense(x), Input::Sparse);
        Ok((CpuStorage::F32(forward(input, w, b, (n, k, m), self.relu)?), Shape::from((n, m))))
    }

    /// With `g` the output's gradient (times `1[y > 0]` after a ReLU): `∂b = Σ_rows g`,
    /// `∂W = xᵀ·g` (skipping zeros of a sparse `x`) and, if `x` depends on a variable (a hidden
    /// layer, or an input whose gradient adversarial training needs), `∂x = g·Wᵀ`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let ((n, k), (_, m)) = (x.dims2()?, w.dims2()?);
        let mut g = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        if self.relu {
            with_slice(res, "output", |y| {
                relu_grad(&mut g, y);
                Ok(())
            })?;
        }
        let device = w.device();
        let params = match self.param_grads {
            true => {
                let (mut grad_w, mut grad_b) = (vec![0.0f32; k * m], vec![0.0f32; m]);
                with_slice(x, "input", |xs| {
                    let input = match self.sparse_input.get() {
                        Some(Some(csr)) => Input::Sparse(csr),
                        _ => Input::Dense(xs),
                    };
                    param_grads(input, &g, (n, k, m), (&mut grad_w, &mut grad_b), false)
                })?;
                (Some(Tensor::from_vec(grad_w, (k, m), device)?), Some(Tensor::from_vec(grad_b, m, device)?))
            }
            false => (None, None),
        };
        let grad_x = match x.track_op() {
            true => Some(Tensor::from_vec(
                with_slice(w, "weight", |ws| input_grad(&g, ws, (n, k, m)))?,
                (n, k),
                x.device(),
            )?),
            false => None,
        };
        Ok((grad_x, params.0, params.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// Compares values and gradients with candle's matmul + bias + ReLU, for a sparse and a dense input.
    #[test]
    fn matches_candle_matmul_and_its_gradients() {
        let dev = Device::Cpu;
        for (density, relu) in [(0.05f64, false), (0.9, false), (0.05, true), (0.9, true)] {
            let vars = VarMap::new();
            let layer = dense(20, 7, VarBuilder::from_varmap(&vars, DType::F32, &dev)).unwrap();
            // A non-zero bias, so no pre-activation is exactly 0 (where candle's ReLU gradient is 1
            // and TensorFlow's, like ours, 0).
            vars.data().lock().unwrap()["bias"].set(&Tensor::randn(0f32, 1f32, 7, &dev).unwrap()).unwrap();
            let mask =
                Tensor::rand(0f32, 1f32, (6, 20), &dev).unwrap().lt(density).unwrap().to_dtype(DType::F32).unwrap();
            let x = (Tensor::randn(0f32, 1f32, (6, 20), &dev).unwrap() * mask).unwrap();
            let xv = Var::from_tensor(&x).unwrap();
            let linear = xv.as_tensor().matmul(layer.weight()).unwrap().broadcast_add(&layer.bias).unwrap();
            let (ours, reference) = match relu {
                true => (layer.forward_relu(xv.as_tensor()).unwrap(), linear.relu().unwrap()),
                false => (layer.forward(xv.as_tensor()).unwrap(), linear),
            };
            let diff = (&ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "forward differs by {diff}");
            let target = Tensor::randn(0f32, 1f32, (6, 7), &dev).unwrap();
            let loss = |y: &Tensor| (y * &target).unwrap().sum_all().unwrap();
            let (g1, g2) = (loss(&ours).backward().unwrap(), loss(&reference).backward().unwrap());
            for t in [layer.weight(), &layer.bias, xv.as_tensor()] {
                let d = (g1.get(t).unwrap() - g2.get(t).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
                assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "gradient differs (density {density})");
            }
        }
    }

    /// `y = x·W + b` by hand: `[1, 2]·[[1, 0, 2], [0, 1, −1]] + [0.5, 0, −1] = [1.5, 2, −1]`, and
    /// `[−3, 0]` gives `[−2.5, 0, −7]` (`[0, 0, 0]` after the ReLU).
    #[test]
    fn new_from_literals_computes_by_hand_values() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[1f32, 0.0, 2.0], [0.0, 1.0, -1.0]], &dev)?;
        let layer = Dense::new(w, Tensor::new(&[0.5f32, 0.0, -1.0], &dev)?)?;
        let x = Tensor::new(&[[1f32, 2.0], [-3.0, 0.0]], &dev)?;
        assert_eq!(layer.forward(&x)?.to_vec2::<f32>()?, [[1.5, 2.0, -1.0], [-2.5, 0.0, -7.0]]);
        assert_eq!(layer.forward_relu(&x)?.to_vec2::<f32>()?, [[1.5, 2.0, 0.0], [0.0, 0.0, 0.0]]);
        Ok(())
    }

    #[test]
    fn new_rejects_mismatched_shapes_naming_both() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::zeros((2, 3), DType::F32, &dev)?;
        let err = Dense::new(w.clone(), Tensor::zeros(4, DType::F32, &dev)?).expect_err("bias of 4 for 3 outputs");
        let msg = err.to_string();
        assert!(msg.contains("[2, 3]") && msg.contains("[4]"), "{msg}");
        assert!(Dense::new(w.clone(), Tensor::zeros((1, 3), DType::F32, &dev)?).is_err());
        assert!(Dense::new(w.flatten_all()?, Tensor::zeros(6, DType::F32, &dev)?).is_err());
        Ok(())
    }

    #[test]
    fn constant_inputs_get_no_gradient() {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let layer = dense(4, 2, VarBuilder::from_varmap(&vars, DType::F32, &dev)).unwrap();
        let x = Tensor::ones((3, 4), DType::F32, &dev).unwrap();
        let grads = layer.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(layer.weight()).is_some());
    }
}
