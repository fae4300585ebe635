//! ndarray ↔ candle conversions (one place; placeholder until the conv helper's version lands).

use candle_core::{Device, Result, Tensor};
use ndarray::{Array2, ArrayView2};

/// `x` as a `[rows, cols]` f32 tensor on the CPU (copied into standard layout if needed).
pub(crate) fn to_tensor(x: ArrayView2<f32>) -> Result<Tensor> {
    let standard = x.as_standard_layout();
    match standard.as_slice() {
        Some(s) => Tensor::from_slice(s, x.dim(), &Device::Cpu),
        None => candle_core::bail!("internal: an array in standard layout has no contiguous slice"),
    }
}

/// A `[rows, cols]` tensor as an ndarray.
pub(crate) fn to_array2(t: &Tensor) -> Result<Array2<f32>> {
    let shape = t.dims2()?;
    Array2::from_shape_vec(shape, t.flatten_all()?.to_vec1::<f32>()?).map_err(|e| candle_core::Error::Msg(e.to_string()))
}
