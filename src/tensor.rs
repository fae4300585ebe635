//! ndarray ↔ candle conversion for 2-D `f32` data (features, logits, input gradients): one place
//! for it, with no silent fallback.
//!
//! A tensor is built from a row-major slice, so an array view in any other layout (a transposed
//! view, a column slice, a stepped slice) must first be copied into standard layout; a view
//! already in standard layout is read in place and copied once, into the tensor. Taking the
//! slice with `as_slice().unwrap_or(&[])` instead turns a layout bug into a confusing
//! "shape mismatch" from candle; here a layout that cannot be read is a named error.

use candle_core::{bail, Device, Result, Tensor};
use ndarray::{Array2, ArrayView2};

/// `a` as an `f32` tensor of the same shape `[rows, cols]` on the CPU (`.to_device` moves it).
///
/// A view in standard layout is copied once, into the tensor; any other layout is first copied
/// into standard layout.
///
/// # Errors
/// A candle error if the tensor cannot be created.
pub(crate) fn to_tensor(a: ArrayView2<'_, f32>) -> Result<Tensor> {
    let standard = a.as_standard_layout();
    let Some(values) = standard.as_slice() else {
        // Unreachable: `as_standard_layout` returns a standard-layout array, whose slice exists.
        bail!("to_tensor: the {:?} array is not contiguous after `as_standard_layout`", a.dim());
    };
    Tensor::from_slice(values, a.dim(), &Device::Cpu)
}

/// The values of a rank-2 `f32` tensor (any layout, any device) as an array of the same shape.
///
/// # Errors
/// A candle error if `t` is not rank 2 or not `f32` (no conversion is made).
pub(crate) fn to_array2(t: &Tensor) -> Result<Array2<f32>> {
    let shape = t.dims2()?;
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    Array2::from_shape_vec(shape, values).map_err(candle_core::Error::wrap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use ndarray::{array, s};

    /// `[[0, 1, 2], [3, 4, 5]]`, a fixture in standard layout.
    fn two_by_three() -> Array2<f32> {
        array![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    }

    #[test]
    fn standard_layout_keeps_shape_and_values() -> Result<()> {
        let t = to_tensor(two_by_three().view())?;
        assert_eq!(t.dims(), [2, 3]);
        assert_eq!(t.to_vec2::<f32>()?, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
        Ok(())
    }

    #[test]
    fn non_standard_layouts_are_copied_in_row_major_order() -> Result<()> {
        let a = two_by_three();
        // A transposed view (column-major strides): `as_slice` would be `None` here.
        let transposed = a.t();
        assert!(transposed.as_slice().is_none());
        let t = to_tensor(transposed)?;
        assert_eq!(t.dims(), [3, 2]);
        assert_eq!(t.to_vec2::<f32>()?, [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]);
        // A column slice and a stepped slice (row strides 3 and 2, not contiguous).
        let columns = a.slice(s![.., 1..]);
        assert!(columns.as_slice().is_none());
        assert_eq!(to_tensor(columns)?.to_vec2::<f32>()?, [[1.0, 2.0], [4.0, 5.0]]);
        assert_eq!(to_tensor(a.slice(s![.., ..;2]))?.to_vec2::<f32>()?, [[0.0, 2.0], [3.0, 5.0]]);
        Ok(())
    }

    #[test]
    fn round_trips_through_a_tensor() -> Result<()> {
        let a = two_by_three();
        assert_eq!(to_array2(&to_tensor(a.view())?)?, a);
        assert_eq!(to_array2(&to_tensor(a.t())?)?, a.t());
        let empty = Array2::<f32>::zeros((0, 4));
        assert_eq!(to_array2(&to_tensor(empty.view())?)?, empty);
        Ok(())
    }

    #[test]
    fn to_array2_reads_strided_tensors_and_rejects_other_ranks_and_dtypes() -> Result<()> {
        // A transposed tensor is not contiguous: the values come out in its logical order.
        let t = to_tensor(two_by_three().view())?.t()?;
        assert!(!t.is_contiguous());
        assert_eq!(to_array2(&t)?, two_by_three().t());
        let dev = Device::Cpu;
        assert!(to_array2(&Tensor::zeros(3, DType::F32, &dev)?).is_err());
        assert!(to_array2(&Tensor::zeros((1, 2, 3), DType::F32, &dev)?).is_err());
        assert!(to_array2(&Tensor::zeros((2, 2), DType::F64, &dev)?).is_err());
        Ok(())
    }
}
