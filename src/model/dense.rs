//! [`Dense`]: a fully connected layer `y = x·W + b` that is fast on CPU for the inputs nsl meets.
//!
//! candle's `Linear` stores `W` as `[out, in]` and multiplies by its (strided) transpose, and its
//! backward always computes the gradient of the input, even for a constant batch of features. Here
//! `W` is stored `[in, out]` (contiguous product), the input's gradient is computed only when
//! something upstream needs it, and when the input is mostly zeros — bag-of-words (Cora: 1.3 % of
//! the 1,433 words per paper) or images (MNIST: ~19 % of the pixels) — the product and the weight
//! gradient only visit the non-zero values.

use candle_core::{CpuStorage, CustomOp2, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use ndarray::ArrayView2;

/// Below this share of non-zero input values the sparse kernels are used.
const SPARSE_DENSITY: f64 = 0.1;

/// `y = x·W + b` with `W: [in, out]`, `b: [out]`.
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
    Ok(Dense { weight, bias })
}

impl Dense {
    /// The weight, `[in, out]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply_op2(&self.weight, SparseAwareMatmul)?.broadcast_add(&self.bias)
    }
}

/// `x·W` for a row-major `x: [n, in]` and `W: [in, out]`, skipping zeros of `x` when it is sparse.
struct SparseAwareMatmul;

fn slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("dense layer: {what} must be contiguous"),
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

/// Calls `f(index, value)` for the non-zero values of `row`, skipping zero blocks of 16 at once.
#[inline]
fn for_nonzero(row: &[f32], mut f: impl FnMut(usize, f32)) {
    const BLOCK: usize = 16;
    for (b, block) in row.chunks(BLOCK).enumerate() {
        if block.iter().fold(0u32, |acc, v| acc | u32::from(*v != 0.0)) == 0 {
            continue;
        }
        for (i, &v) in block.iter().enumerate() {
            if v != 0.0 {
                f(b * BLOCK + i, v);
            }
        }
    }
}

/// `out += x·W` (`x: [n, k]`, `w: [k, m]`, `out: [n, m]`), sparse or dense by the share of non-zeros.
fn matmul_into(x: &[f32], w: &[f32], n: usize, k: usize, m: usize, out: &mut [f32]) -> Result<()> {
    if is_sparse(x) {
        for (row, out_row) in x.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
            for_nonzero(row, |f, v| {
                for (o, &wv) in out_row.iter_mut().zip(&w[f * m..(f + 1) * m]) {
                    *o += v * wv;
                }
            });
        }
    } else {
        let shape_err = |e: ndarray::ShapeError| candle_core::Error::Msg(e.to_string());
        let (xa, wa) = (
            ArrayView2::from_shape((n, k), x).map_err(shape_err)?,
            ArrayView2::from_shape((k, m), w).map_err(shape_err)?,
        );
        let mut oa = ndarray::ArrayViewMut2::from_shape((n, m), out).map_err(shape_err)?;
        ndarray::linalg::general_mat_mul(1.0, &xa, &wa, 1.0, &mut oa);
    }
    Ok(())
}

impl CustomOp2 for SparseAwareMatmul {
    fn name(&self) -> &'static str {
        "sparse-aware-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let ((n, k), (k2, m)) = (l1.shape().dims2()?, l2.shape().dims2()?);
        if k != k2 {
            candle_core::bail!("dense layer: input has {k} features but the weight expects {k2}");
        }
        let (x, w) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?);
        let mut out = vec![0.0f32; n * m];
        matmul_into(x, w, n, k, m, &mut out)?;
        Ok((CpuStorage::F32(out), Shape::from((n, m))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // ∂/∂x = g·Wᵀ, only if x depends on a variable (e.g. a hidden layer, or an input whose
        // gradient adversarial training needs).
        let grad_x = if x.track_op() { Some(grad.matmul(&w.t()?)?) } else { None };
        // ∂/∂W = xᵀ·g, skipping zeros of x.
        let grad_w = x.apply_op2_no_bwd(&grad.contiguous()?, &TransposedMatmul)?;
        Ok((grad_x, Some(grad_w)))
    }
}

/// `xᵀ·g` for `x: [n, k]`, `g: [n, m]` → `[k, m]`, skipping zeros of `x` when it is sparse.
struct TransposedMatmul;

impl CustomOp2 for TransposedMatmul {
    fn name(&self) -> &'static str {
        "transposed-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let ((n, k), (n2, m)) = (l1.shape().dims2()?, l2.shape().dims2()?);
        if n != n2 {
            candle_core::bail!("dense layer backward: {n} inputs but {n2} gradient rows");
        }
        let (x, g) = (slice(s1, l1, "input")?, slice(s2, l2, "gradient")?);
        let mut out = vec![0.0f32; k * m];
        if is_sparse(x) {
            for (row, g_row) in x.chunks_exact(k).zip(g.chunks_exact(m)) {
                for_nonzero(row, |f, v| {
                    for (o, &gv) in out[f * m..(f + 1) * m].iter_mut().zip(g_row) {
                        *o += v * gv;
                    }
                });
            }
        } else {
            let shape_err = |e: ndarray::ShapeError| candle_core::Error::Msg(e.to_string());
            let xa = ArrayView2::from_shape((n, k), x).map_err(shape_err)?;
            let ga = ArrayView2::from_shape((n, m), g).map_err(shape_err)?;
            let mut oa = ndarray::ArrayViewMut2::from_shape((k, m), &mut out[..]).map_err(shape_err)?;
            ndarray::linalg::general_mat_mul(1.0, &xa.t(), &ga, 0.0, &mut oa);
        }
        Ok((CpuStorage::F32(out), Shape::from((k, m))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// Compares values and gradients with candle's own matmul, for a sparse and a dense input.
    #[test]
    fn matches_candle_matmul_and_its_gradients() {
        let dev = Device::Cpu;
        for density in [0.05f64, 0.9] {
            let vars = VarMap::new();
            let layer = dense(20, 7, VarBuilder::from_varmap(&vars, DType::F32, &dev)).unwrap();
            let mask =
                Tensor::rand(0f32, 1f32, (6, 20), &dev).unwrap().lt(density).unwrap().to_dtype(DType::F32).unwrap();
            let x = (Tensor::randn(0f32, 1f32, (6, 20), &dev).unwrap() * mask).unwrap();
            let xv = Var::from_tensor(&x).unwrap();
            let ours = layer.forward(xv.as_tensor()).unwrap();
            let reference = xv.as_tensor().matmul(layer.weight()).unwrap().broadcast_add(&layer.bias).unwrap();
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
