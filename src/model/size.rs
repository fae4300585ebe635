//! [`ModelSpec::size`]: the one size check of a model spec, before anything is built.

use super::spec::{InputGroup, ModelSpec};

/// The widest layer (units, filters, vocabulary, item dimension) a model may have: a run that
/// trains can always be saved and loaded again.
pub const MAX_WIDTH: usize = 1 << 24;

/// What [`ModelSpec::size`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSize {
    /// Weight and bias tensors (what [`build_model`](super::build_model) makes).
    pub tensors: usize,
    /// Trainable parameters.
    pub parameters: u64,
    /// Values one sample's forward pass keeps: every layer's output (the convolutions' before
    /// pooling), up to the logits.
    pub activations: u64,
}

/// Why a spec does not fit its input: the size that is wrong, with its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SizeError(String);

impl ModelSpec {
    /// The size of the model [`build_model`](super::build_model) makes from `self` for items of
    /// `item_shape` and `outputs` outputs, after checking that every size is in `1..=`
    /// [`MAX_WIDTH`], the dropout in `[0, 1)`, images large enough for the convolutions, and a bag
    /// of words' input groups as wide as the items.
    ///
    /// # Errors
    /// [`SizeError`] naming the size that is out of range (or a count that overflows `u64`).
    ///
    /// # Example
    /// ```
    /// use nsl::model::ModelSpec;
    /// let spec: ModelSpec = "mlp:4".parse().unwrap();
    /// let size = spec.size(&[3], 2).unwrap();
    /// // 3·4 + 4 and 4·2 + 2
    /// assert_eq!((size.tensors, size.parameters, size.activations), (4, 26, 6));
    /// ```
    pub fn size(&self, item_shape: &[usize], outputs: usize) -> Result<ModelSize, SizeError> {
        let spec = self;
        let overflow =
            || SizeError(format!("the model {spec} on items {item_shape:?} has too many parameters to count"));
        if item_shape.is_empty() {
            return Err(SizeError("the item shape is empty".into()));
        }
        for &d in item_shape {
            width_ok("item dimension", d)?;
        }
        let dropout = spec.dropout();
        if !(0.0..1.0).contains(&dropout) {
            return Err(SizeError(format!("dropout {dropout} is not in [0, 1)")));
        }
        // A dense stack from `width` inputs through `layers` to the logits.
        let dense = |mut width: u64, layers: &[usize], name: &str| -> Result<ModelSize, SizeError> {
            let (mut parameters, mut activations) = (0u64, 0u64);
            for &units in layers.iter().chain(std::iter::once(&outputs)) {
                let units = width_ok(name, units)?;
                let layer = width.checked_mul(units).and_then(|w| w.checked_add(units)).ok_or_else(overflow)?;
                parameters = parameters.checked_add(layer).ok_or_else(overflow)?;
                activations += units;
                width = units;
            }
            Ok(ModelSize { tensors: 2 * (layers.len() + 1), parameters, activations })
        };
        match spec {
            ModelSpec::Mlp(mlp) => {
                let input = item_shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).ok_or_else(overflow)?;
                dense(input, &mlp.hidden, "hidden layer units")
            }
            ModelSpec::Cnn(cnn) => {
                let [c, h, w] = match *item_shape {
                    [c, h, w] => [c, h, w],
                    [h, w] => [1, h, w],
                    _ => {
                        return Err(SizeError(format!(
                            "a CNN needs image items [c, h, w] or [h, w], not {item_shape:?}"
                        )))
                    }
                };
                let kernel = width_ok("kernel", cnn.kernel)? as usize;
                let pool = width_ok("pool", cnn.pool)? as usize;
                let (mut channels, mut h, mut w) = (c as u64, h, w);
                let (mut parameters, mut activations) = (0u64, 0u64);
                for (i, &filters) in cnn.filters.iter().enumerate() {
                    let filters = width_ok("filters", filters)?;
                    if h < kernel || w < kernel {
                        return Err(SizeError(cnn.too_small(item_shape, i, h, w)));
                    }
                    let k2 = (kernel * kernel) as u64;
                    let layer = filters
                        .checked_mul(channels)
                        .and_then(|n| n.checked_mul(k2))
                        .and_then(|n| n.checked_add(filters))
                        .ok_or_else(overflow)?;
                    parameters = parameters.checked_add(layer).ok_or_else(overflow)?;
                    (channels, h, w) = (filters, h - kernel + 1, w - kernel + 1);
                    let maps = filters.checked_mul((h * w) as u64).ok_or_else(overflow)?;
                    activations = activations.checked_add(maps).ok_or_else(overflow)?;
                    if i + 1 < cnn.filters.len() {
                        (h, w) = (h / pool, w / pool);
                    }
                }
                let flat = channels.checked_mul(h as u64).and_then(|n| n.checked_mul(w as u64)).ok_or_else(overflow)?;
                let top = dense(flat, &cnn.dense, "dense layer units")?;
                Ok(ModelSize {
                    tensors: top.tensors + 2 * cnn.filters.len(),
                    parameters: parameters.checked_add(top.parameters).ok_or_else(overflow)?,
                    activations: activations.checked_add(top.activations).ok_or_else(overflow)?,
                })
            }
            ModelSpec::Bow(bow) => {
                // One `[vocab, embed]` table per token group (and with a bag activation an `[embed]`
                // bias), then a dense stack over the encoding.
                let embed = width_ok("embedding size", bow.embed)?;
                let bias = u64::from(bow.bag_activation.is_some());
                let (mut tables, mut parameters, mut input, mut width) = (0usize, 0u64, 0u64, 0u64);
                for group in &bow.inputs {
                    width += width_ok("input group width", group.width())?;
                    match group {
                        InputGroup::Tokens { vocab, .. } => {
                            let table = (width_ok("vocabulary size", *vocab)? + bias)
                                .checked_mul(embed)
                                .ok_or_else(overflow)?;
                            parameters = parameters.checked_add(table).ok_or_else(overflow)?;
                            (tables, input) = (tables + 1 + bias as usize, input + embed);
                        }
                        _ => input += group.width() as u64,
                    }
                }
                if width != item_shape.iter().map(|&d| d as u64).product::<u64>() {
                    return Err(SizeError(format!(
                        "the bow model's input groups take {width} values but items are {item_shape:?}"
                    )));
                }
                let top = dense(input, &bow.hidden, "hidden layer units")?;
                Ok(ModelSize {
                    tensors: top.tensors + tables,
                    parameters: parameters.checked_add(top.parameters).ok_or_else(overflow)?,
                    activations: input.checked_add(top.activations).ok_or_else(overflow)?,
                })
            }
        }
    }
}

/// `n` if it is a width in `1..=MAX_WIDTH`.
fn width_ok(what: &str, n: usize) -> Result<u64, SizeError> {
    if (1..=MAX_WIDTH).contains(&n) {
        Ok(n as u64)
    } else {
        Err(SizeError(format!("{what} {n} is not in 1..={MAX_WIDTH}")))
    }
}
