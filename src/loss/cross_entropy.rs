//! The supervised loss (softmax cross-entropy) as one op.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// The mean softmax cross-entropy of `logits` (`[n, classes]`, f32) against integer `labels`
/// (`[n]`, u32): Keras' `SparseCategoricalCrossentropy(from_logits=True)`, candle-nn's
/// `loss::cross_entropy`, in one op instead of a chain of ten small ones.
///
/// # Formula
/// `L = (1/n) Σᵢ (log Σⱼ exp zᵢⱼ − zᵢ,yᵢ)`, and `∂L/∂zᵢⱼ = (softmax(zᵢ)ⱼ − 1[j = yᵢ]) / n`.
///
/// # Errors
/// Shapes that do not match, a label ≥ `classes`, or tensors off the CPU.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    logits.contiguous()?.apply_op2(&labels.contiguous()?, CrossEntropy)
}

struct CrossEntropy;

/// The labels as row indices, checked against the number of classes.
fn labels_of(labels: &[u32], classes: usize) -> Result<impl Iterator<Item = usize> + '_> {
    if let Some(bad) = labels.iter().find(|&&y| y as usize >= classes) {
        bail!("cross-entropy: label {bad} is out of range for {classes} classes");
    }
    Ok(labels.iter().map(|&y| y as usize))
}

/// `softmax(row)` written into `out`; returns `log Σ exp(row)`.
fn softmax_into(row: &[f32], out: &mut [f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &z) in out.iter_mut().zip(row) {
        *o = (z - max).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o /= sum);
    max + sum.ln()
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, classes) = l1.shape().dims2()?;
        if l2.dims() != [n] {
            bail!("cross-entropy: {:?} labels for {n} rows of logits", l2.dims());
        }
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            bail!("cross-entropy: inputs must be contiguous");
        };
        let (z, labels) = (&s1.as_slice::<f32>()?[a..b], &s2.as_slice::<u32>()?[c..d]);
        let mut probabilities = vec![0.0f32; classes];
        let mut total = 0.0f64;
        for (row, y) in z.chunks_exact(classes.max(1)).zip(labels_of(labels, classes)?) {
            total += f64::from(softmax_into(row, &mut probabilities) - row[y]);
        }
        Ok((CpuStorage::F32(vec![(total / n.max(1) as f64) as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, classes) = logits.dims2()?;
        let scale = grad.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()? / n.max(1) as f32;
        let z = logits.flatten_all()?.to_vec1::<f32>()?;
        let labels = labels.to_vec1::<u32>()?;
        let mut dz = vec![0.0f32; z.len()];
        for ((row, out), y) in
            z.chunks_exact(classes.max(1)).zip(dz.chunks_exact_mut(classes.max(1))).zip(labels_of(&labels, classes)?)
        {
            softmax_into(row, out);
            out[y] -= 1.0;
            out.iter_mut().for_each(|v| *v *= scale);
        }
        Ok((Some(Tensor::from_vec(dz, (n, classes), logits.device())?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Value and gradient equal candle-nn's cross-entropy.
    #[test]
    fn matches_candle_nn() {
        let dev = Device::Cpu;
        let z = Var::from_tensor(&Tensor::randn(0f32, 3f32, (5, 4), &dev).unwrap()).unwrap();
        let y = Tensor::new(&[0u32, 3, 1, 1, 2], &dev).unwrap();
        let (ours, theirs) =
            (cross_entropy(z.as_tensor(), &y).unwrap(), candle_nn::loss::cross_entropy(z.as_tensor(), &y).unwrap());
        let (a, b) = (ours.to_scalar::<f32>().unwrap(), theirs.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let (ga, gb) = ((ours * 2.0).unwrap().backward().unwrap(), (theirs * 2.0).unwrap().backward().unwrap());
        let d = (ga.get(z.as_tensor()).unwrap() - gb.get(z.as_tensor()).unwrap()).unwrap().abs().unwrap();
        assert!(d.max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-6);
    }

    #[test]
    fn labels_out_of_range_are_an_error() {
        let z = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = cross_entropy(&z, &Tensor::new(&[0u32, 3], &Device::Cpu).unwrap()).unwrap_err().to_string();
        assert!(err.contains("label 3 is out of range for 3 classes"), "{err}");
    }
}
