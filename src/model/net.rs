//! The built-in networks ([`Mlp`], [`Cnn`]) and the dense stack they share with [`Bow`](super::Bow)
//! ([`build_model`](super::build_model) makes one from a [`ModelSpec`](super::ModelSpec)).

use super::conv::{channels_first, fast_conv2d, fast_max_pool2d, Channels, FastConv2d};
use super::dense::{dense as dense_layer, Dense};
use super::dropout::Dropout;
use super::spec::{Activation, CnnSpec, MlpSpec};
use super::Model;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

pub(super) fn activate(xs: &Tensor, activation: Activation) -> Result<Tensor> {
    match activation {
        Activation::Relu => xs.relu(),
        Activation::Tanh => xs.tanh(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(xs),
        Activation::Gelu => xs.gelu(),
    }
}

/// `[Dense → activation → dropout] × layers`, then the logits; returns the logits and, if `layer`
/// names one (`{prefix}{i}` or `logits`), that layer's output (before dropout).
#[allow(clippy::too_many_arguments)]
pub(super) fn dense_stack(
    mut h: Tensor,
    layers: &[Dense],
    out: &Dense,
    activation: Activation,
    dropout: &Dropout,
    train: bool,
    layer: Option<&str>,
    prefix: &str,
) -> Result<(Tensor, Option<Tensor>)> {
    let mut picked = None;
    for (i, dense) in layers.iter().enumerate() {
        h = match activation {
            Activation::Relu => dense.forward_relu(&h)?,
            other => activate(&dense.forward(&h)?, other)?,
        };
        if layer == Some(format!("{prefix}{i}").as_str()) {
            picked = Some(h.clone());
        }
        h = dropout.forward_t(&h, train)?;
    }
    let logits = out.forward(&h)?;
    match layer {
        Some("logits") => picked = Some(logits.clone()),
        Some(name) if picked.is_none() => {
            candle_core::bail!("the model has no layer `{name}` (layers: {})", layer_names(prefix, layers.len()))
        }
        _ => {}
    }
    Ok((logits, picked))
}

/// A multi-layer perceptron (see [`MlpSpec`]). Input `[B, d]`, output logits `[B, classes]`.
/// Hidden layers are named `hidden0`, `hidden1`, … (their activations, before dropout).
#[derive(Debug)]
pub struct Mlp {
    pub(super) hidden: Vec<Dense>,
    pub(super) out: Dense,
    pub(super) activation: Activation,
    pub(super) dropout: Dropout,
}

impl Mlp {
    /// Builds the layers in `vb` (weights `hidden{i}.weight`, `logits.weight`, …).
    ///
    /// # Errors
    /// A candle error if a variable cannot be created.
    pub fn new(spec: &MlpSpec, input_dim: usize, classes: usize, vb: VarBuilder, seed: u64) -> Result<Self> {
        let mut hidden = Vec::with_capacity(spec.hidden.len());
        let mut width = input_dim;
        for (i, &units) in spec.hidden.iter().enumerate() {
            hidden.push(dense_layer(width, units, vb.pp(format!("hidden{i}")))?);
            width = units;
        }
        let out = dense_layer(width, classes, vb.pp("logits"))?;
        Ok(Mlp {
            hidden,
            out,
            activation: spec.activation,
            dropout: Dropout::new(spec.dropout, seed ^ crate::config::seed_streams::DROPOUT),
        })
    }
}

impl Model for Mlp {
    fn as_mlp(&self) -> Option<&Mlp> {
        Some(self)
    }

    fn rng_positions(&self) -> Result<Vec<u128>> {
        self.dropout.positions()
    }

    fn set_rng_positions(&self, positions: &[u128]) -> Result<()> {
        self.dropout.set_positions(positions)
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_with(xs, train, None)?.0)
    }

    fn forward_with(&self, xs: &Tensor, train: bool, layer: Option<&str>) -> Result<(Tensor, Option<Tensor>)> {
        dense_stack(xs.clone(), &self.hidden, &self.out, self.activation, &self.dropout, train, layer, "hidden")
    }
}

/// A convolutional network (see [`CnnSpec`]). Input `[B, c·h·w]` (flattened images), output logits.
/// Dense layers are named `dense0`, `dense1`, ….
#[derive(Debug)]
pub struct Cnn {
    input_shape: [usize; 3],
    convs: Vec<FastConv2d>,
    pool: usize,
    dense: Vec<Dense>,
    out: Dense,
    activation: Activation,
    dropout: Dropout,
}

impl Cnn {
    /// Builds the layers in `vb` for images of shape `[c, h, w]`.
    ///
    /// # Errors
    /// A candle error if a variable cannot be created, or if the images are too small for the
    /// convolutions and pools.
    pub fn new(spec: &CnnSpec, input_shape: [usize; 3], classes: usize, vb: VarBuilder, seed: u64) -> Result<Self> {
        let [mut channels, mut h, mut w] = input_shape;
        let mut convs = Vec::with_capacity(spec.filters.len());
        for (i, &filters) in spec.filters.iter().enumerate() {
            if h < spec.kernel || w < spec.kernel {
                candle_core::bail!("{}", spec.too_small(&input_shape, i, h, w));
            }
            convs.push(fast_conv2d(channels, filters, spec.kernel, vb.pp(format!("conv{i}")))?);
            (channels, h, w) = (filters, h - spec.kernel + 1, w - spec.kernel + 1);
            if i + 1 < spec.filters.len() {
                (h, w) = (h / spec.pool, w / spec.pool);
            }
        }
        let mut width = channels * h * w;
        let mut dense = Vec::with_capacity(spec.dense.len());
        for (i, &units) in spec.dense.iter().enumerate() {
            dense.push(dense_layer(width, units, vb.pp(format!("dense{i}")))?);
            width = units;
        }
        let out = dense_layer(width, classes, vb.pp("logits"))?;
        Ok(Cnn {
            input_shape,
            convs,
            pool: spec.pool,
            dense,
            out,
            activation: spec.activation,
            dropout: Dropout::new(spec.dropout, seed ^ crate::config::seed_streams::DROPOUT),
        })
    }
}

impl Model for Cnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_with(xs, train, None)?.0)
    }

    fn rng_positions(&self) -> Result<Vec<u128>> {
        self.dropout.positions()
    }

    fn set_rng_positions(&self, positions: &[u128]) -> Result<()> {
        self.dropout.set_positions(positions)
    }

    fn forward_with(&self, xs: &Tensor, train: bool, layer: Option<&str>) -> Result<(Tensor, Option<Tensor>)> {
        let [c, h, w] = self.input_shape;
        let mut x = xs.reshape((xs.dim(0)?, c, h, w))?;
        if self.activation == Activation::Relu {
            // The fused kernels: convolution + ReLU (+ max-pool) in one op, the activations
            // channels-last from the first convolution's output on (see `Channels`: longer copies
            // in im2col, col2im and the pool), back to channels-first for the flatten, whose order
            // the dense weights (and checkpoints) follow.
            for (i, conv) in self.convs.iter().enumerate() {
                let pool = if i + 1 < self.convs.len() { self.pool } else { 1 };
                let input = if i == 0 { Channels::First } else { Channels::Last };
                x = conv.forward_relu_pool_as(&x, pool, input, Channels::Last)?;
            }
            let x = channels_first(&x)?.flatten_from(1)?;
            return dense_stack(x, &self.dense, &self.out, self.activation, &self.dropout, train, layer, "dense");
        }
        for (i, conv) in self.convs.iter().enumerate() {
            let pooled = i + 1 < self.convs.len();
            x = activate(&conv.forward(&x)?, self.activation)?;
            if pooled {
                x = fast_max_pool2d(&x, self.pool)?;
            }
        }
        dense_stack(x.flatten_from(1)?, &self.dense, &self.out, self.activation, &self.dropout, train, layer, "dense")
    }
}

/// The names of a stack's layers for messages: `hidden0, hidden1, logits`, `hidden0…hidden4, logits`
/// or just `logits`.
pub(super) fn layer_names(prefix: &str, hidden: usize) -> String {
    match hidden {
        0 => "logits".into(),
        1 => format!("{prefix}0, logits"),
        2 => format!("{prefix}0, {prefix}1, logits"),
        n => format!("{prefix}0…{prefix}{}, logits", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::layer_names;

    #[test]
    fn layer_names_list_what_exists() {
        assert_eq!(layer_names("hidden", 0), "logits");
        assert_eq!(layer_names("hidden", 1), "hidden0, logits");
        assert_eq!(layer_names("hidden", 5), "hidden0…hidden4, logits");
    }
}
