//! The permutation of a channels-last CNN activation back to channels-first before the flatten
//! (`[B, H, W, C] → [B, C, H, W]`), as a custom op: one tiled transpose per image, forward and
//! backward.
//!
//! Why: `x.permute((0, 3, 1, 2))` followed by the flatten made candle copy the tensor element by
//! element (`copy_strided_src`: the permuted innermost dimension has stride `C`, so every block is
//! one value long), and its backward handed the next op a strided gradient, copied the same way.
//! The values are the same; only the copies change.

use crate::kernels::{cpu_slice, transpose, with_slice};
use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `[B, H, W, C] → [B, C, H, W]`, contiguous. f32 CPU tensors take the custom op; others are
/// permuted and copied by candle.
///
/// # Errors
/// If `x` is not rank 4.
pub(crate) fn channels_first(x: &Tensor) -> Result<Tensor> {
    let (_, h, w, c) = x.dims4()?;
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.permute((0, 3, 1, 2))?.contiguous();
    }
    x.contiguous()?.apply_op1(ToChannelsFirst { positions: h * w, channels: c })
}

/// Each image `[N, C]` (N = H·W positions) transposed to `[C, N]`; `backward` transposes back.
struct ToChannelsFirst {
    positions: usize,
    channels: usize,
}

/// Transposes every `[rows, cols]` image of `src` into `dst`, images in parallel.
fn transpose_images(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let per = rows * cols;
    let mut dst = vec![0f32; src.len()];
    if per > 0 {
        dst.par_chunks_mut(per).zip(src.par_chunks(per)).with_min_len(8).for_each(|(d, s)| transpose(s, rows, cols, d));
    }
    dst
}

impl CustomOp1 for ToChannelsFirst {
    fn name(&self) -> &'static str {
        "channels-first"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[b, h, w, c] = layout.dims() else { bail!("channels_first: input {:?} must be rank 4", layout.dims()) };
        let x = cpu_slice(storage, layout, "channels-last activation")?;
        Ok((CpuStorage::F32(transpose_images(x, self.positions, self.channels)), Shape::from((b, c, h, w))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, c, h, w) = grad.dims4()?;
        if arg.dims() != [b, h, w, c] {
            bail!("channels_first: gradient {:?} does not match the input {:?}", grad.dims(), arg.dims());
        }
        let dx =
            with_slice(grad, "channels-first gradient", |g| Ok(transpose_images(g, self.channels, self.positions)))?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::channels_first;
    use candle_core::{DType, Device, Result, Tensor, Var};

    /// The op gives candle's permutation and, for `Σ y ⊙ r`, the gradient `r` permuted back; on a
    /// shape whose sides are not multiples of the transpose's tiles, and through the f64 fallback.
    #[test]
    fn channels_first_is_the_permutation() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::arange(0f32, 3.0 * 4.0 * 5.0 * 9.0, &dev)?.reshape((3, 4, 5, 9))?)?;
        let y = channels_first(x.as_tensor())?;
        let want = x.as_tensor().permute((0, 3, 1, 2))?.contiguous()?;
        assert_eq!(y.dims(), [3, 9, 4, 5]);
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, want.flatten_all()?.to_vec1::<f32>()?);
        let r = Tensor::arange(0f32, 540.0, &dev)?.affine(0.5, -7.0)?.reshape((3, 9, 4, 5))?;
        let grads = (&y * &r)?.sum_all()?.backward()?;
        let dx = grads.get(x.as_tensor()).expect("a gradient");
        let want_dx = r.permute((0, 2, 3, 1))?.contiguous()?;
        assert_eq!(dx.flatten_all()?.to_vec1::<f32>()?, want_dx.flatten_all()?.to_vec1::<f32>()?);
        let y64 = channels_first(&x.as_tensor().to_dtype(DType::F64)?)?;
        assert_eq!(y64.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?, want.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
