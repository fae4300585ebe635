//! The convolution as a candle custom op: checks the shapes, runs the kernels on raw slices and
//! wraps their results back into tensors.

use super::backward::{conv_backward, OutGrad, Wanted};
use super::dims::{Channels, ConvDims};
use super::forward::conv_forward;
use crate::kernels::{cpu_slice, param_grads_wanted, with_slice};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::OnceLock;

/// The convolution as a custom op on `(x, w)` or `(x, w, b)`, optionally followed by a ReLU and a
/// `pool × pool` max-pool. One instance serves one call (forward, then backward).
#[derive(Debug)]
pub(super) struct ConvOp {
    relu: bool,
    pool: usize,
    /// The input's and the output's layouts.
    input: Channels,
    output: Channels,
    /// Whether the backward computes the weight and bias gradients (off in an input-gradient pass,
    /// see `kernels::input_gradient_only`).
    param_grads: bool,
    /// Set by the forward when pooling: each window's argmax offset, for the backward.
    argmax: OnceLock<Vec<u8>>,
}

impl ConvOp {
    /// The op for one call: a ReLU after the convolution if `relu`, then a `pool × pool` max-pool
    /// if `pool > 1` (checked against the shapes by the forward), from an `input` to an `output`
    /// layout.
    pub(super) fn new(relu: bool, pool: usize, input: Channels, output: Channels) -> Self {
        ConvOp { relu, pool, input, output, param_grads: param_grads_wanted(), argmax: OnceLock::new() }
    }

    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let d = ConvDims::new(x.1.dims(), w.1.dims(), self.pool, self.input, self.output)?;
        let bias = match b {
            Some((s, l)) => {
                if l.dims() != [d.o] {
                    bail!("fast_conv2d: bias {:?} does not match the {} filters", l.dims(), d.o);
                }
                Some(cpu_slice(s, l, "bias")?)
            }
            None => None,
        };
        let (xs, ws) = (cpu_slice(x.0, x.1, "input")?, cpu_slice(w.0, w.1, "weights")?);
        let (ys, argmax) = conv_forward(xs, ws, bias, self.relu, &d)?;
        if self.pool > 1 && self.argmax.set(argmax).is_err() {
            bail!("fast_conv2d: the op's forward ran twice");
        }
        Ok((CpuStorage::F32(ys), Shape::from(d.out_shape().to_vec())))
    }

    #[allow(clippy::type_complexity)]
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        want_bias: bool,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = ConvDims::new(x.dims(), w.dims(), self.pool, self.input, self.output)?;
        let out = d.out_shape();
        if grad.dims() != out || res.dims() != out {
            bail!("fast_conv2d: output gradient {:?} does not match the output {out:?}", grad.dims());
        }
        // An input that is neither a variable nor computed from one (plain data) needs no gradient.
        // Parameter gradients only if the caller keeps them (see `param_grads`).
        let p = self.param_grads;
        let want = Wanted { input: x.track_op(), weight: p && w.track_op(), bias: p && want_bias };
        if !(want.input || want.weight || want.bias) {
            return Ok((None, None, None));
        }
        let (dx, dw, db) = with_slice(x, "input", |xs| {
            with_slice(w, "weights", |ws| {
                with_slice(grad, "output gradient", |dy| {
                    with_slice(res, "output", |ys| {
                        let dy = if self.pool > 1 {
                            let Some(argmax) = self.argmax.get() else {
                                bail!("fast_conv2d: backward before forward");
                            };
                            OutGrad::Pooled { dy, out: ys, argmax, relu: self.relu }
                        } else {
                            OutGrad::Dense { dy, relu_out: self.relu.then_some(ys) }
                        };
                        conv_backward(xs, ws, dy, &d, want)
                    })
                })
            })
        })?;
        let dev = x.device();
        let dx = dx.map(|v| Tensor::from_vec(v, x.shape(), dev)).transpose()?;
        let dw = dw.map(|v| Tensor::from_vec(v, w.shape(), dev)).transpose()?;
        let db = db.map(|v| Tensor::from_vec(v, d.o, dev)).transpose()?;
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), None)
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = ConvOp::bwd(self, x, w, false, res, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-bias"
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
        self.fwd((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        ConvOp::bwd(self, x, w, b.track_op(), res, grad)
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::input_gradient_only;
    use crate::model::FastConv2d;
    use candle_core::{Device, Result, Tensor, Var};

    /// Inside `input_gradient_only` the op gives the same input gradient and no weight or bias
    /// gradient; outside it gives all three.
    #[test]
    fn input_gradient_only_skips_parameter_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::arange(0f32, 2.0 * 36.0, &dev)?.affine(0.1, -3.0)?.reshape((2, 1, 6, 6))?)?;
        let w = Var::from_tensor(&Tensor::arange(0f32, 18.0, &dev)?.affine(0.2, -1.5)?.reshape((2, 1, 3, 3))?)?;
        let b = Var::from_tensor(&Tensor::new(&[0.5f32, -0.25], &dev)?)?;
        let conv = FastConv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))?;
        let loss = |x: &Tensor| conv.forward_relu_pool(x, 2)?.sqr()?.sum_all();
        let all = loss(x.as_tensor())?.backward()?;
        let only = input_gradient_only(|| loss(x.as_tensor())?.backward())?;
        let dx = |g: &candle_core::backprop::GradStore| g.get(x.as_tensor()).map(|t| t.flatten_all()?.to_vec1::<f32>());
        assert_eq!(dx(&only).transpose()?, dx(&all).transpose()?);
        assert!(all.get(w.as_tensor()).is_some() && all.get(b.as_tensor()).is_some());
        assert!(only.get(w.as_tensor()).is_none() && only.get(b.as_tensor()).is_none());
        // The switch is restored after the call.
        assert!(crate::kernels::param_grads_wanted());
        Ok(())
    }
}
