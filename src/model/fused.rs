//! The built-in [`Mlp`]'s own forward and backward passes, without a candle graph.
//!
//! For a small network candle's graph costs more than the arithmetic: every op allocates its
//! output, and the backward allocates a zero tensor and adds into it for every gradient. Here the
//! forward keeps each layer's output on a [`Tape`], the backward walks it back and adds the
//! parameter gradients straight into one buffer per parameter, and candle only differentiates the
//! losses with respect to the logits (or a hidden layer). The trainer takes this path for an
//! [`Mlp`] with ReLU activations (see [`Mlp::supports_tape`]).
//!
//! # Formula
//! Hidden layer `i`: `hᵢ = relu(aᵢ₋₁·Wᵢ + bᵢ)`, `aᵢ = hᵢ ⊙ maskᵢ` (dropout; `a₋₁ = x`); logits
//! `z = a·W + b`. Backward from `g = ∂L/∂z` down: `∂W += aᵀ·g`, `∂b += Σ_rows g`, `∂a = g·Wᵀ`,
//! `∂h = ∂a ⊙ mask + ∂L/∂h` (a regularized hidden layer), and `g = ∂h ⊙ 1[h > 0]` for the layer below.

use super::dense::{forward, input_grad, param_grads, relu_grad, Csr, Dense, Input};
use super::spec::Activation;
use super::Mlp;
use crate::kernels::with_slice;
use candle_core::{bail, Result, Tensor};

/// What a forward pass keeps for the backward: the input and every layer's output.
pub(crate) struct Tape {
    rows: usize,
    input: Vec<f32>,
    /// The input's non-zeros, when it is mostly zeros (bag-of-words features).
    sparse_input: Option<Csr>,
    hidden: Vec<Hidden>,
    logits: Vec<f32>,
}

/// A hidden layer's outputs on the tape.
struct Hidden {
    /// The ReLU output `h`.
    out: Vec<f32>,
    /// With dropout: the mask and `h ⊙ mask`.
    dropped: Option<(Vec<f32>, Vec<f32>)>,
}

impl Tape {
    /// The number of input rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The logits, `[rows, classes]` row-major.
    pub(crate) fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Hidden layer `i`'s output before dropout, `[rows, units]` row-major.
    pub(crate) fn hidden(&self, i: usize) -> &[f32] {
        &self.hidden[i].out
    }

    /// The input, `[rows, d]` row-major.
    pub(crate) fn input(&self) -> &[f32] {
        &self.input
    }

    /// The input of layer `layer` (0 = the first hidden layer): `x`, or the layer below after dropout.
    fn layer_input(&self, layer: usize) -> Input<'_> {
        match layer.checked_sub(1).map(|i| &self.hidden[i]) {
            None => self.sparse_input.as_ref().map_or(Input::Dense(&self.input), Input::Sparse),
            Some(h) => Input::Dense(h.dropped.as_ref().map_or(&h.out, |(_, a)| a)),
        }
    }
}

/// The `[in, out]` size of a layer.
fn dims(layer: &Dense) -> Result<(usize, usize)> {
    layer.weight().dims2()
}

impl Mlp {
    /// Whether [`Mlp::forward_tape`] and [`Mlp::backward_tape`] can run this network (ReLU only).
    pub(crate) fn supports_tape(&self) -> bool {
        self.activation == Activation::Relu
    }

    fn layers(&self) -> impl Iterator<Item = &Dense> {
        self.hidden.iter().chain(std::iter::once(&self.out))
    }

    /// The parameters in gradient-buffer order: `hidden0.weight`, `hidden0.bias`, …, `logits.bias`.
    pub(crate) fn parameters(&self) -> Vec<Tensor> {
        self.layers().flat_map(|l| [l.weight().clone(), l.bias().clone()]).collect()
    }

    /// Zeroed gradient buffers, one per [`Mlp::parameters`] entry.
    pub(crate) fn zero_grads(&self) -> Vec<Vec<f32>> {
        self.parameters().iter().map(|p| vec![0.0; p.elem_count()]).collect()
    }

    /// The hidden layer `layer` names (`hidden{i}`), `None` for the logits (`logits` or no name).
    ///
    /// # Errors
    /// An unknown name.
    pub(crate) fn hidden_index(&self, layer: Option<&str>) -> Result<Option<usize>> {
        match layer {
            None | Some("logits") => Ok(None),
            Some(name) => match name.strip_prefix("hidden").and_then(|i| i.parse::<usize>().ok()) {
                Some(i) if i < self.hidden.len() => Ok(Some(i)),
                _ => bail!(
                    "the model has no layer `{name}` (layers: {})",
                    super::net::layer_names("hidden", self.hidden.len())
                ),
            },
        }
    }

    /// The forward pass over `rows` inputs (`input`: `[rows, d]` row-major), with dropout if `train`.
    ///
    /// # Errors
    /// An input of the wrong width, or a dropout rate out of range.
    pub(crate) fn forward_tape(&self, input: Vec<f32>, rows: usize, train: bool) -> Result<Tape> {
        let width = dims(self.hidden.first().unwrap_or(&self.out))?.0;
        if input.len() != rows * width {
            bail!("the model expects {width} features per sample, got {} values for {rows} samples", input.len());
        }
        let sparse_input = Csr::of_sparse(&input, width);
        let mut tape =
            Tape { rows, input, sparse_input, hidden: Vec::with_capacity(self.hidden.len()), logits: Vec::new() };
        for (i, layer) in self.layers().enumerate() {
            let (k, m) = dims(layer)?;
            let relu = i < self.hidden.len();
            let out = with_slice(layer.weight(), "weight", |w| {
                with_slice(layer.bias(), "bias", |b| forward(tape.layer_input(i), w, b, (rows, k, m), relu))
            })?;
            if !relu {
                tape.logits = out;
                break;
            }
            let dropped = self.dropout.mask(out.len(), train)?.map(|mask| {
                let a = out.iter().zip(&mask).map(|(h, s)| h * s).collect();
                (mask, a)
            });
            tape.hidden.push(Hidden { out, dropped });
        }
        Ok(tape)
    }

    /// The backward pass from `dlogits` (`∂L/∂z`, `[rows, classes]`) and, if given, `∂L/∂hᵢ` of one
    /// hidden layer: adds the parameter gradients into `grads` (see [`Mlp::zero_grads`]), or writes
    /// them over it unless `accumulate`, and returns `∂L/∂x` if `want_input`.
    ///
    /// # Errors
    /// Gradients of the wrong size.
    pub(crate) fn backward_tape(
        &self,
        tape: &Tape,
        dlogits: &[f32],
        dhidden: Option<(usize, &[f32])>,
        grads: &mut [Vec<f32>],
        accumulate: bool,
        want_input: bool,
    ) -> Result<Option<Vec<f32>>> {
        let layers: Vec<&Dense> = self.layers().collect();
        if grads.len() != 2 * layers.len() || dlogits.len() != tape.logits.len() {
            bail!(
                "backward: {} gradient buffers and {} logit gradients do not fit the network",
                grads.len(),
                dlogits.len()
            );
        }
        let rows = tape.rows;
        let mut g = dlogits.to_vec();
        for (l, layer) in layers.iter().enumerate().rev() {
            let (k, m) = dims(layer)?;
            let (below, above) = grads.split_at_mut(2 * l + 1);
            param_grads(tape.layer_input(l), &g, (rows, k, m), (&mut below[2 * l], &mut above[0]), accumulate)?;
            if l == 0 && !want_input {
                return Ok(None);
            }
            let mut da = with_slice(layer.weight(), "weight", |w| input_grad(&g, w, (rows, k, m)))?;
            let Some(lower) = l.checked_sub(1).map(|i| &tape.hidden[i]) else { return Ok(Some(da)) };
            if let Some((mask, _)) = &lower.dropped {
                da.iter_mut().zip(mask).for_each(|(d, s)| *d *= s);
            }
            if let Some((_, dh)) = dhidden.filter(|(i, _)| *i + 1 == l) {
                if dh.len() != da.len() {
                    bail!("backward: {} hidden-layer gradients for {} values", dh.len(), da.len());
                }
                da.iter_mut().zip(dh).for_each(|(d, e)| *d += e);
            }
            relu_grad(&mut da, &lower.out);
            g = da;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{build_model, ModelSpec};
    use candle_core::{Device, Var};

    /// The tape's forward and backward give candle's values and gradients, with dropout off, for
    /// the logits and for a regularized hidden layer.
    #[test]
    fn matches_candle_autograd() {
        let dev = Device::Cpu;
        let spec: ModelSpec = "mlp:5,4".parse().unwrap();
        let (model, _vars) = build_model(&spec, &[6], 3, 7, &dev).unwrap();
        let mlp = model.as_mlp().unwrap();
        let x: Vec<f32> = (0..4 * 6).map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0).collect();
        let xv = Var::from_vec(x.clone(), (4, 6), &dev).unwrap();
        let (logits, hidden) = model.forward_with(xv.as_tensor(), false, Some("hidden1")).unwrap();
        let (tl, th) =
            (Tensor::randn(0f32, 1f32, (4, 3), &dev).unwrap(), Tensor::randn(0f32, 1f32, (4, 4), &dev).unwrap());
        let hidden = hidden.unwrap();
        let loss = ((&logits * &tl).unwrap().sum_all().unwrap() + (&hidden * &th).unwrap().sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();

        let tape = mlp.forward_tape(x, 4, false).unwrap();
        let close = |a: &[f32], b: &Tensor| {
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(a.len(), b.len());
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5)
        };
        assert!(close(tape.logits(), &logits));
        assert!(close(tape.hidden(1), &hidden));
        let mut ours = mlp.zero_grads();
        let (dl, dh) =
            (tl.flatten_all().unwrap().to_vec1::<f32>().unwrap(), th.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let dx = mlp.backward_tape(&tape, &dl, Some((1, &dh)), &mut ours, true, true).unwrap().unwrap();
        assert!(close(&dx, grads.get(xv.as_tensor()).unwrap()));
        for (g, p) in ours.iter().zip(mlp.parameters()) {
            assert!(close(g, grads.get(&p).unwrap()));
        }
    }
}
