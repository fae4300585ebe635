//! [`Bow`]: the bag-of-words text model (see [`BowSpec`]) and its pooled embedding lookup.
//!
//! # How it is computed
//! An input row is the dataset's feature row: token groups hold ids as `f32` padded with −1,
//! dense groups hold floats. [`Bow::encode`] pools each token group's embedding rows with the
//! spec's [`Combiner`],
//!
//! ```text
//! pooled[b] = s(|ids_b|) · Σ_{i ∈ ids_b} E[i]     s(n) = 1/n (mean), 1 (sum), 1/√n (sqrtn)
//!                                                 (zeros when ids_b is empty)
//! ```
//!
//! and concatenates the pooled groups with the dense groups, in row order. That continuous
//! *encoded input* goes through, with a bag activation `σ`, `σ(pooled + bias)` for each token
//! group, then dropout, `[Dense → ReLU → Dropout] × hidden` and the logits layer
//! ([`Model::forward_encoded`]). Adversarial and virtual-adversarial perturbations act on the
//! encoded input (before the bias), never on the ids.
//!
//! With the sum combiner and a ReLU bag activation, a bag of distinct words computes
//! `ReLU(x·E + b)` for the multi-hot row `x`: the first layer of an MLP on the word flags. The
//! Glorot limit of `E: [vocab, embed]` is that of a `[vocab, embed]` dense weight, and the seeded
//! initialization draws the same values in the same order, so `bow:50,50,combiner=sum,
//! bag-activation=relu` starts where `mlp:50,50` starts (up to the summation order of floats).
//!
//! The lookup and pooling is one candle op (`EmbeddingBag`): the forward gathers and pools the
//! rows of `E`, the backward scatters `s(|ids_b|) · ∂L/∂pooled[b]` into the rows of `∂L/∂E` that
//! the batch used. candle's own `Embedding` (an `index_select`) followed by a masked mean would be four
//! ops over `[B, max_len, embed]` tensors; the bag op touches only the ids present.
//!
//! # Differences from NSL
//! NSL's text tutorials pad with id 0 and average with Keras' `GlobalAveragePooling1D`, which
//! counts the padding unless the embedding masks it; nsl pads with −1 and always averages over the
//! ids only. NSL perturbs whatever float inputs the Keras model takes (the tutorials feed
//! embeddings); nsl perturbs the pooled embeddings and the dense groups.

use super::dense::{dense as dense_layer, Dense};
use super::dropout::Dropout;
use super::net::{activate, dense_stack, layer_names};
use super::spec::{Activation, BowSpec, Combiner, InputGroup};
use super::Model;
use crate::kernels::{cpu_slice, with_slice};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use candle_nn::{Embedding, VarBuilder};

/// One input group of a [`Bow`], with where it starts in the row.
#[derive(Debug)]
enum Input {
    Dense {
        offset: usize,
        width: usize,
    },
    Tokens {
        name: String,
        offset: usize,
        max_len: usize,
        vocab: usize,
        embedding: Embedding,
        /// The bag's bias (`[embed]`), present with a bag activation.
        bias: Option<Tensor>,
    },
}

/// A bag-of-words model (see [`BowSpec`] and the [module docs](self)). Input `[B, d]` (the
/// dataset's rows), output logits `[B, classes]`. Layers are named `bag` (the pooled token groups,
/// after their bag activation, concatenated with the dense groups), `hidden0`, `hidden1`, …;
/// each token group's embedding table is the variable `embedding{k}.weight` (`[vocab, embed]`,
/// `k` counting token groups), and with a bag activation its bias is `bag{k}.bias` (`[embed]`).
#[derive(Debug)]
pub struct Bow {
    inputs: Vec<Input>,
    width: usize,
    encoded_width: usize,
    combiner: Combiner,
    bag_activation: Option<Activation>,
    hidden: Vec<Dense>,
    out: Dense,
    dropout: Dropout,
}

impl Bow {
    /// Builds the layers in `vb` for the spec's input groups.
    ///
    /// # Errors
    /// A candle error if a variable cannot be created, or if `spec.inputs` is empty (fill it with
    /// [`ModelSpec::for_inputs`](super::ModelSpec::for_inputs)) or a size is 0.
    pub fn new(spec: &BowSpec, classes: usize, vb: VarBuilder, seed: u64) -> Result<Self> {
        if spec.inputs.is_empty() {
            bail!("a bow model needs its input groups: build the spec with ModelSpec::for_inputs(dataset groups)");
        }
        if spec.embed == 0 {
            bail!("a bow model needs an embedding size of at least 1");
        }
        let (mut inputs, mut offset, mut encoded, mut tables) = (Vec::new(), 0, 0, 0);
        for group in &spec.inputs {
            match group {
                InputGroup::Dense { width, .. } => {
                    inputs.push(Input::Dense { offset, width: *width });
                    encoded += width;
                }
                InputGroup::Tokens { name, max_len, vocab, .. } => {
                    if *vocab == 0 {
                        bail!("token group `{name}` has an empty vocabulary");
                    }
                    let embedding = candle_nn::embedding(*vocab, spec.embed, vb.pp(format!("embedding{tables}")))?;
                    let bias = match spec.bag_activation {
                        Some(_) => Some(vb.pp(format!("bag{tables}")).get_with_hints(
                            spec.embed,
                            "bias",
                            candle_nn::Init::Const(0.0),
                        )?),
                        None => None,
                    };
                    tables += 1;
                    inputs.push(Input::Tokens {
                        name: name.clone(),
                        offset,
                        max_len: *max_len,
                        vocab: *vocab,
                        embedding,
                        bias,
                    });
                    encoded += spec.embed;
                }
            }
            offset += group.width();
        }
        let mut hidden = Vec::with_capacity(spec.hidden.len());
        let mut width = encoded;
        for (i, &units) in spec.hidden.iter().enumerate() {
            hidden.push(dense_layer(width, units, vb.pp(format!("hidden{i}")))?);
            width = units;
        }
        let out = dense_layer(width, classes, vb.pp("logits"))?;
        Ok(Bow {
            inputs,
            width: offset,
            encoded_width: encoded,
            combiner: spec.combiner,
            bag_activation: spec.bag_activation,
            hidden,
            out,
            dropout: Dropout::new(spec.dropout, seed ^ crate::config::seed_streams::DROPOUT),
        })
    }

    /// The encoded input of rows `xs` (`[B, d]`): each token group pooled through its
    /// embedding by the spec's combiner, dense groups as they are, concatenated in row order (`[B, encoded width]`).
    ///
    /// # Errors
    /// A candle error if `xs` is not `[B, d]`, or a token cell holds something other than ids in
    /// `0..vocab` followed by −1 padding (the message names the group, the row and the value).
    pub fn encode(&self, xs: &Tensor) -> Result<Tensor> {
        let (rows, d) = xs.dims2()?;
        if d != self.width {
            bail!("bow model: input rows have {d} values but the model's groups take {}", self.width);
        }
        let xs = xs.contiguous()?;
        let mut parts = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            match input {
                Input::Dense { offset, width } => parts.push(xs.narrow(1, *offset, *width)?),
                Input::Tokens { name, offset, max_len, vocab, embedding, .. } => {
                    let (ids, offsets) = with_slice(&xs, "token ids", |values| {
                        bag_ids(values, rows, d, *offset, *max_len, *vocab, name)
                    })?;
                    let op = EmbeddingBag { ids, offsets, combiner: self.combiner };
                    parts.push(embedding.embeddings().apply_op1(op)?);
                }
            }
        }
        match parts.as_slice() {
            [one] => Ok(one.clone()),
            _ => Tensor::cat(&parts, 1),
        }
    }

    /// `σ(pooled + bias)` on each token group's part of `encoded` (dense groups unchanged), for a
    /// bag activation `σ`; `encoded` itself without one.
    fn activate_bags(&self, encoded: &Tensor) -> Result<Tensor> {
        let Some(activation) = self.bag_activation else {
            return Ok(encoded.clone());
        };
        let (mut parts, mut at) = (Vec::with_capacity(self.inputs.len()), 0);
        for input in &self.inputs {
            match input {
                Input::Dense { width, .. } => {
                    parts.push(encoded.narrow(1, at, *width)?);
                    at += width;
                }
                Input::Tokens { embedding, bias, .. } => {
                    let embed = embedding.hidden_size();
                    let part = encoded.narrow(1, at, embed)?;
                    let part = match bias {
                        Some(bias) => part.broadcast_add(bias)?,
                        None => part,
                    };
                    parts.push(activate(&part, activation)?);
                    at += embed;
                }
            }
        }
        match parts.as_slice() {
            [one] => Ok(one.clone()),
            _ => Tensor::cat(&parts, 1),
        }
    }
}

impl Model for Bow {
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
        self.forward_encoded(&self.encode(xs)?, train, layer)
    }

    fn encode(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        Bow::encode(self, xs)
    }

    fn forward_encoded(&self, encoded: &Tensor, train: bool, layer: Option<&str>) -> Result<(Tensor, Option<Tensor>)> {
        if encoded.dim(1)? != self.encoded_width {
            bail!(
                "bow model: the encoded input has {} values per row but the model's is {} wide (token rows must go \
                 through Model::encode first; perturbations act on the encoded input)",
                encoded.dim(1)?,
                self.encoded_width
            );
        }
        // Dropout on the encoding too, like the MLP's after its first layer (which, on multi-hot
        // words, is a summed embedding bag with a bias and ReLU).
        let bags = self.activate_bags(encoded)?;
        let dropped = self.dropout.forward_t(&bags, train)?;
        let stack = |layer: Option<&str>| {
            dense_stack(dropped, &self.hidden, &self.out, Activation::Relu, &self.dropout, train, layer, "hidden")
        };
        let hidden = |name: &str| name.strip_prefix("hidden").and_then(|i| i.parse::<usize>().ok());
        match layer {
            // `layer=bag`: the pooled (and activated) groups with the dense ones, before dropout.
            Some("bag") => Ok((stack(None)?.0, Some(bags))),
            Some(name) if name != "logits" && hidden(name).is_none_or(|i| i >= self.hidden.len()) => {
                bail!("the model has no layer `{name}` (layers: bag, {})", layer_names("hidden", self.hidden.len()))
            }
            _ => stack(layer),
        }
    }

    fn has_encoder(&self) -> bool {
        true
    }
}

/// The ids of one token group over `rows` rows of width `d` (row-major `values`), concatenated,
/// and where each row's ids start (`rows + 1` offsets).
fn bag_ids(
    values: &[f32],
    rows: usize,
    d: usize,
    offset: usize,
    max_len: usize,
    vocab: usize,
    name: &str,
) -> Result<(Vec<u32>, Vec<usize>)> {
    let mut ids = Vec::with_capacity(rows * max_len);
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0);
    for row in 0..rows {
        let cell = &values[row * d + offset..row * d + offset + max_len];
        for (k, &v) in cell.iter().enumerate() {
            if v == crate::model::PAD_ID {
                break;
            }
            if !(v >= 0.0 && v < vocab as f32 && v.fract() == 0.0) {
                bail!("token group `{name}`, row {row}, position {k}: {v} is not a token id in 0..{vocab}");
            }
            ids.push(v as u32);
        }
        offsets.push(ids.len());
    }
    Ok((ids, offsets))
}

/// The pooled lookup of one token group as a custom op on the embedding table `[vocab, embed]`:
/// each row's ids' embeddings combined by `combiner`, `[rows, embed]`. One instance serves one call.
#[derive(Debug)]
struct EmbeddingBag {
    ids: Vec<u32>,
    /// Where each row's ids start in `ids` (`rows + 1` values).
    offsets: Vec<usize>,
    combiner: Combiner,
}

impl EmbeddingBag {
    fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

impl CustomOp1 for EmbeddingBag {
    fn name(&self) -> &'static str {
        "embedding-bag"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (vocab, embed) = layout.shape().dims2()?;
        let table = cpu_slice(storage, layout, "embedding table")?;
        let mut out = vec![0f32; self.rows() * embed];
        for (row, span) in self.offsets.windows(2).enumerate() {
            let ids = &self.ids[span[0]..span[1]];
            if ids.is_empty() {
                continue;
            }
            let target = &mut out[row * embed..(row + 1) * embed];
            for &id in ids {
                let id = id as usize;
                if id >= vocab {
                    bail!("embedding bag: id {id} is past the table's {vocab} rows");
                }
                target.iter_mut().zip(&table[id * embed..(id + 1) * embed]).for_each(|(t, &e)| *t += e);
            }
            let scale = self.combiner.scale(ids.len());
            if scale != 1.0 {
                target.iter_mut().for_each(|t| *t *= scale);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((self.rows(), embed))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (vocab, embed) = arg.dims2()?;
        let mut grad = vec![0f32; vocab * embed];
        with_slice(grad_res, "pooled gradient", |g| {
            for (row, span) in self.offsets.windows(2).enumerate() {
                let ids = &self.ids[span[0]..span[1]];
                if ids.is_empty() {
                    continue;
                }
                let scale = self.combiner.scale(ids.len());
                let source = &g[row * embed..(row + 1) * embed];
                for &id in ids {
                    // Ids were checked against the table in the forward.
                    let target = &mut grad[id as usize * embed..(id as usize + 1) * embed];
                    target.iter_mut().zip(source).for_each(|(t, &s)| *t += s * scale);
                }
            }
            Ok(())
        })?;
        Ok(Some(Tensor::from_vec(grad, (vocab, embed), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// Two token groups' worth of one: vocab 3, embed 2, max_len 3; a dense group of width 1 first.
    fn tiny() -> (Bow, VarMap) {
        tiny_with(Combiner::Mean, None)
    }

    /// [`tiny`] with another combiner or a bag activation.
    fn tiny_with(combiner: Combiner, bag_activation: Option<Activation>) -> (Bow, VarMap) {
        let spec = BowSpec {
            embed: 2,
            hidden: vec![],
            dropout: 0.0,
            combiner,
            bag_activation,
            inputs: vec![
                InputGroup::Dense { name: "x".into(), width: 1 },
                InputGroup::Tokens { name: "words".into(), max_len: 3, vocab: 3 },
            ],
        };
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let bow = Bow::new(&spec, 2, vb, 0).unwrap();
        let table = Tensor::new(&[[1f32, 2.0], [3.0, 4.0], [10.0, 20.0]], &Device::Cpu).unwrap();
        vars.data().lock().unwrap()["embedding0.weight"].set(&table).unwrap();
        (bow, vars)
    }

    #[test]
    fn pools_ids_ignoring_padding_and_empty_lists_to_zero() {
        let (bow, _) = tiny();
        // Rows: x = 7 and ids [0, 2]; x = −1 and ids [1, 1, 1]; x = 0.5 and no ids.
        let xs = Tensor::new(&[[7f32, 0.0, 2.0, -1.0], [-1.0, 1.0, 1.0, 1.0], [0.5, -1.0, -1.0, -1.0]], &Device::Cpu)
            .unwrap();
        let encoded = bow.encode(&xs).unwrap().to_vec2::<f32>().unwrap();
        // (E[0] + E[2]) / 2 = (5.5, 11); E[1] = (3, 4); nothing = (0, 0).
        assert_eq!(encoded, [[7.0, 5.5, 11.0], [-1.0, 3.0, 4.0], [0.5, 0.0, 0.0]]);
        let bad = Tensor::new(&[[0f32, 3.0, -1.0, -1.0]], &Device::Cpu).unwrap();
        let e = bow.encode(&bad).unwrap_err().to_string();
        assert!(e.contains("token group `words`, row 0, position 0: 3 is not a token id in 0..3"), "{e}");
    }

    #[test]
    fn sum_and_sqrtn_combiners_and_the_bag_activation() {
        let rows = || Tensor::new(&[[0f32, 0.0, 2.0, 1.0], [0.0, 1.0, -1.0, -1.0]], &Device::Cpu).unwrap();
        let encoded = |combiner, bag_activation: Option<Activation>, bias: &[f32]| {
            let (bow, vars) = tiny_with(combiner, bag_activation);
            if bag_activation.is_some() {
                let b = Tensor::new(bias, &Device::Cpu).unwrap();
                vars.data().lock().unwrap()["bag0.bias"].set(&b).unwrap();
            }
            // The encoded input, then what the dense layers see (the bag activation applied).
            let e = Model::encode(&bow, &rows(), false).unwrap();
            (e.to_vec2::<f32>().unwrap(), bow.activate_bags(&e).unwrap().to_vec2::<f32>().unwrap())
        };
        // Row 0: ids 0, 2, 1 → Σ = (14, 26); row 1: id 1 → (3, 4).
        let (sum, same) = encoded(Combiner::Sum, None, &[]);
        assert_eq!(sum, [[0.0, 14.0, 26.0], [0.0, 3.0, 4.0]]);
        assert_eq!(same, sum);
        let (sqrtn, _) = encoded(Combiner::Sqrtn, None, &[]);
        let r3 = 3f32.sqrt();
        let expected = [0.0, 14.0 / r3, 26.0 / r3, 0.0, 3.0, 4.0];
        assert!(sqrtn.iter().flatten().zip(expected).all(|(a, b)| (a - b).abs() < 1e-5), "{sqrtn:?}");
        // ReLU(Σ + b) with b = (−10, −30): (4, 0) and (0, 0); the dense group passes unchanged.
        let (pre, post) = encoded(Combiner::Sum, Some(Activation::Relu), &[-10.0, -30.0]);
        assert_eq!(pre, sum);
        assert_eq!(post, [[0.0, 4.0, 0.0], [0.0, 0.0, 0.0]]);
    }

    #[test]
    fn the_bag_layer_is_the_activated_encoding() {
        let (bow, vars) = tiny_with(Combiner::Sum, Some(Activation::Relu));
        let b = Tensor::new(&[-10f32, -30.0], &Device::Cpu).unwrap();
        vars.data().lock().unwrap()["bag0.bias"].set(&b).unwrap();
        let rows = Tensor::new(&[[0f32, 0.0, 2.0, 1.0], [0.0, 1.0, -1.0, -1.0]], &Device::Cpu).unwrap();
        let (logits, bag) = bow.forward_with(&rows, false, Some("bag")).unwrap();
        assert_eq!(bag.unwrap().to_vec2::<f32>().unwrap(), [[0.0, 4.0, 0.0], [0.0, 0.0, 0.0]]);
        assert_eq!(logits.to_vec2::<f32>().unwrap(), bow.forward_t(&rows, false).unwrap().to_vec2::<f32>().unwrap());
        let (_, out) = bow.forward_with(&rows, false, Some("logits")).unwrap();
        assert_eq!(out.unwrap().to_vec2::<f32>().unwrap(), logits.to_vec2::<f32>().unwrap());
        let e = bow.forward_with(&rows, false, Some("hidden0")).unwrap_err().to_string();
        assert!(e.contains("no layer `hidden0` (layers: bag, logits)"), "{e}");
    }

    #[test]
    fn sum_bag_with_relu_is_the_mlp_on_word_flags() {
        use crate::model::{build_model, MlpSpec, ModelSpec};
        // Vocabulary 6, rows of distinct ids; the MLP reads the same rows as multi-hot flags.
        let ids: [&[usize]; 3] = [&[0, 3, 5], &[2], &[1, 2, 3, 4]];
        let mut tokens = vec![-1f32; 3 * 4];
        let mut flags = vec![0f32; 3 * 6];
        for (row, list) in ids.iter().enumerate() {
            for (k, &id) in list.iter().enumerate() {
                tokens[row * 4 + k] = id as f32;
                flags[row * 6 + id] = 1.0;
            }
        }
        let tokens = Tensor::from_vec(tokens, (3, 4), &Device::Cpu).unwrap();
        let flags = Tensor::from_vec(flags, (3, 6), &Device::Cpu).unwrap();
        let spec = BowSpec {
            embed: 5,
            hidden: vec![4],
            combiner: Combiner::Sum,
            bag_activation: Some(Activation::Relu),
            inputs: vec![InputGroup::Tokens { name: "words".into(), max_len: 4, vocab: 6 }],
            ..Default::default()
        };
        let mlp = ModelSpec::Mlp(MlpSpec { hidden: vec![5, 4], ..Default::default() });
        let (bow, bow_vars) = build_model(&ModelSpec::Bow(spec), &[4], 3, 7, &Device::Cpu).unwrap();
        let (mlp, mlp_vars) = build_model(&mlp, &[6], 3, 7, &Device::Cpu).unwrap();
        // The same seeded initial weights: the embedding table is the first layer's weight.
        let var = |vars: &VarMap, name: &str| vars.data().lock().unwrap()[name].as_tensor().to_vec2::<f32>().unwrap();
        assert_eq!(var(&bow_vars, "embedding0.weight"), var(&mlp_vars, "hidden0.weight"));
        // A bias on the bag so that the ReLU cuts something, the same on both.
        let bias = Tensor::new(&[0.1f32, -0.2, 0.3, -0.05, 0.0], &Device::Cpu).unwrap();
        bow_vars.data().lock().unwrap()["bag0.bias"].set(&bias).unwrap();
        mlp_vars.data().lock().unwrap()["hidden0.bias"].set(&bias).unwrap();
        let a = bow.forward_t(&tokens, false).unwrap().to_vec2::<f32>().unwrap();
        let b = mlp.forward_t(&flags, false).unwrap().to_vec2::<f32>().unwrap();
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn gradient_scatters_into_the_used_rows() {
        let (bow, vars) = tiny();
        let xs = Tensor::new(&[[0f32, 0.0, 2.0, -1.0], [0.0, 2.0, -1.0, -1.0]], &Device::Cpu).unwrap();
        let weights = Tensor::new(&[[1f32, 10.0], [100.0, 1000.0]], &Device::Cpu).unwrap();
        // L = Σ_b w_b · pooled_b: ∂L/∂E[0] = w_0 / 2, ∂L/∂E[2] = w_0 / 2 + w_1, ∂L/∂E[1] = 0.
        let loss = (bow.encode(&xs).unwrap().narrow(1, 1, 2).unwrap() * &weights).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let table: Var = vars.data().lock().unwrap()["embedding0.weight"].clone();
        let g = grads.get(table.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(g, [[0.5, 5.0], [0.0, 0.0], [100.5, 1005.0]]);
        // Logits exist and have the classes' width.
        assert_eq!(bow.forward_t(&xs, false).unwrap().dims(), [2, 2]);
    }
}
