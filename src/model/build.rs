//! [`build_model`]: every built-in model from its spec (apart from the models, so that no model
//! file needs another: `bow` builds on `net`'s dense stack, and only this file knows both).

use super::bow::Bow;
use super::init::glorot_init;
use super::net::{Cnn, Mlp};
use super::spec::ModelSpec;
use super::Model;
use candle_core::{DType, Device, Result};
use candle_nn::{VarBuilder, VarMap};

/// Builds the model `spec` for items of shape `item_shape` and `classes` classes, with weights
/// initialized from `seed` (Glorot-uniform, zero biases; see [`glorot_init`]; embedding tables
/// `[vocab, embed]` Glorot-uniform too). A `bow` spec must carry its input groups
/// ([`ModelSpec::for_inputs`]). Returns the model and
/// the variables the optimizer trains and checkpoints save.
///
/// # Errors
/// A candle error if the spec does not fit the input (e.g. a CNN on items that are not `[c, h, w]`).
pub fn build_model(
    spec: &ModelSpec,
    item_shape: &[usize],
    classes: usize,
    seed: u64,
    device: &Device,
) -> Result<(Box<dyn Model>, VarMap)> {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, device);
    let model: Box<dyn Model> = match spec {
        ModelSpec::Mlp(mlp) => Box::new(Mlp::new(mlp, item_shape.iter().product(), classes, vb, seed)?),
        ModelSpec::Cnn(cnn) => {
            let shape = match *item_shape {
                [c, h, w] => [c, h, w],
                [h, w] => [1, h, w],
                _ => candle_core::bail!("a CNN needs image items [c, h, w] or [h, w], not {item_shape:?}"),
            };
            Box::new(Cnn::new(cnn, shape, classes, vb, seed)?)
        }
        ModelSpec::Bow(bow) => {
            let width: usize = bow.inputs.iter().map(|g| g.width()).sum();
            if width != item_shape.iter().product::<usize>() {
                candle_core::bail!(
                    "the bow model's input groups take {width} values per row but items {item_shape:?} hold {}",
                    item_shape.iter().product::<usize>()
                );
            }
            Box::new(Bow::new(bow, classes, vb, seed)?)
        }
    };
    glorot_init(&vars, seed)?;
    Ok((model, vars))
}
