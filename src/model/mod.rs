//! Models: the [`Model`] trait the trainer drives, the built-in [`Mlp`], [`Cnn`] and [`Bow`]
//! described by a serializable [`ModelSpec`], and seeded initialization.
//!
//! Any Candle module plugs in unchanged: every `candle_nn::ModuleT` (and so every `Module`) is a
//! [`Model`].

mod bow;
mod conv;
mod dense;
mod dropout;
mod fused;
mod init;
mod net;
mod size;
mod spec;

pub use bow::Bow;
pub use conv::{fast_conv2d, fast_max_pool2d, FastConv2d};
pub use dense::{dense, Dense};
pub use dropout::Dropout;
pub(crate) use fused::Tape;
pub use init::glorot_init;
pub use net::{build_model, Cnn, Mlp};
pub use size::{ModelSize, SizeError, MAX_WIDTH};
pub use spec::{Activation, BowSpec, CnnSpec, Combiner, InputGroup, MlpSpec, ModelSpec};

/// The value after a token group's ids in an input row (the data layer's `nsl::data::PAD`).
pub(crate) const PAD_ID: f32 = -1.0;

use candle_core::{Result, Tensor};

/// A classifier the trainer can drive: flattened inputs `[B, d]` in, logits `[B, classes]` out.
pub trait Model: Send + Sync {
    /// The logits for `xs`; `train` turns on training-only behaviour such as dropout.
    ///
    /// # Errors
    /// Any candle error of the forward pass.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor>;

    /// The logits and, if `layer` names one, that layer's output (for regularizing a hidden
    /// representation instead of the logits). The default supports only `layer = None`.
    ///
    /// # Errors
    /// Any candle error of the forward pass, or an unknown layer name.
    fn forward_with(&self, xs: &Tensor, train: bool, layer: Option<&str>) -> Result<(Tensor, Option<Tensor>)> {
        match layer {
            None => Ok((self.forward_t(xs, train)?, None)),
            Some(name) => candle_core::bail!("this model does not expose layer `{name}`"),
        }
    }

    /// The model's continuous input for rows `xs`: what adversarial and virtual-adversarial
    /// perturbations move. The default is `xs` itself; a model with discrete inputs (token ids,
    /// [`Bow`]) returns their encoding (pooled embeddings), and then [`Model::has_encoder`] is true.
    ///
    /// # Errors
    /// Any candle error of the encoding.
    fn encode(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let _ = train;
        Ok(xs.clone())
    }

    /// [`Model::forward_with`] from an encoded input ([`Model::encode`]); the default, for models
    /// without an encoder, is `forward_with` itself.
    ///
    /// # Errors
    /// Any candle error of the forward pass, or an unknown layer name.
    fn forward_encoded(&self, encoded: &Tensor, train: bool, layer: Option<&str>) -> Result<(Tensor, Option<Tensor>)> {
        self.forward_with(encoded, train, layer)
    }

    /// Whether [`Model::encode`] differs from the identity (the trainer then differentiates with
    /// respect to the encoded input). Default false.
    fn has_encoder(&self) -> bool {
        false
    }

    /// The model as a built-in [`Mlp`], if it is one: the trainer then runs the network's forward
    /// and backward passes itself, without a candle graph (several times faster for small
    /// networks), and candle only differentiates the losses. Other models use candle's autograd.
    fn as_mlp(&self) -> Option<&Mlp> {
        None
    }

    /// The positions of the model's own random streams (the built-in models' dropout masks), saved
    /// with a run's state so that a resumed run draws what an uninterrupted one would. The default
    /// (a model without seeded randomness) has none.
    ///
    /// # Errors
    /// A poisoned lock of a generator.
    fn rng_positions(&self) -> Result<Vec<u128>> {
        Ok(Vec::new())
    }

    /// Moves the model's random streams to `positions` (from [`Model::rng_positions`]).
    ///
    /// # Errors
    /// `positions` of another length than [`Model::rng_positions`] gives.
    fn set_rng_positions(&self, positions: &[u128]) -> Result<()> {
        match positions {
            [] => Ok(()),
            _ => candle_core::bail!("this model has no random stream, got {} positions", positions.len()),
        }
    }
}

impl<M: candle_nn::ModuleT + Send + Sync> Model for M {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        candle_nn::ModuleT::forward_t(self, xs, train)
    }
}
