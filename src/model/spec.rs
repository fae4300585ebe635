//! [`ModelSpec`]: a small, serializable description of a model, e.g. `mlp:50,50`, `cnn` or `bow:50,50`.

use crate::config::{key_values, ConfigError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The activation between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Activation {
    /// `max(0, x)` (default).
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `x · Φ(x)` (tanh approximation).
    Gelu,
}

impl Activation {
    /// The names `mlp:…,NAME` and `bag-activation=NAME` take, in the order of the variants.
    const NAMES: &'static [(&'static str, Activation)] = &[
        ("relu", Activation::Relu),
        ("tanh", Activation::Tanh),
        ("sigmoid", Activation::Sigmoid),
        ("gelu", Activation::Gelu),
    ];

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, a)| *a == self).map_or("relu", |(n, _)| n)
    }
}

/// A multi-layer perceptron: `[Dense(h) → activation → Dropout] × len(hidden)`, then `Dense(classes)`
/// giving logits. NSL's Cora model is `hidden = [50, 50]`, ReLU, dropout 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpSpec {
    /// Units of each hidden layer. Default `[50, 50]`.
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers. Default ReLU.
    pub activation: Activation,
    /// Dropout rate after each hidden layer, in training only. Default 0.5.
    pub dropout: f32,
}

impl Default for MlpSpec {
    fn default() -> Self {
        MlpSpec { hidden: vec![50, 50], activation: Activation::Relu, dropout: 0.5 }
    }
}

/// A convolutional network for images `[c, h, w]`: `Conv(f, k×k, valid) → activation`, with a
/// `MaxPool(p×p)` after every convolution but the last, then flatten, `[Dense(u) → activation →
/// Dropout] × len(dense)`, and `Dense(classes)` logits. NSL's MNIST tutorial model is filters
/// `[32, 64, 64]`, kernel 3, pool 2, dense `[64]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CnnSpec {
    /// Filters of each convolution. Default `[32, 64, 64]`.
    pub filters: Vec<usize>,
    /// Square kernel size. Default 3.
    pub kernel: usize,
    /// Square max-pool size and stride between convolutions. Default 2.
    pub pool: usize,
    /// Units of the dense layers after the convolutions. Default `[64]`.
    pub dense: Vec<usize>,
    /// Activation everywhere. Default ReLU.
    pub activation: Activation,
    /// Dropout rate after each dense layer, in training only. Default 0.
    pub dropout: f32,
}

impl Default for CnnSpec {
    fn default() -> Self {
        CnnSpec {
            filters: vec![32, 64, 64],
            kernel: 3,
            pool: 2,
            dense: vec![64],
            activation: Activation::Relu,
            dropout: 0.0,
        }
    }
}

impl CnnSpec {
    /// The smallest height (and width) of an image this network takes: the last convolution
    /// needs `kernel` rows, and each earlier convolution with its max-pool needs enough for the
    /// next: `s_last = k`, `s_i = p · s_(i+1) + k − 1` (a 'valid' convolution loses `k − 1`, a pool
    /// divides by `p`, rounding down). `usize::MAX` if that overflows. NSL's MNIST CNN
    /// (`[32, 64, 64]`, kernel 3, pool 2) takes 18×18 and up.
    ///
    /// # Example
    /// ```
    /// let cnn = nsl::model::CnnSpec::default();
    /// assert_eq!(cnn.min_image_side(), 18); // 3 → 2·3 + 2 = 8 → 2·8 + 2 = 18
    /// let two = nsl::model::CnnSpec { filters: vec![8, 8], kernel: 5, ..Default::default() };
    /// assert_eq!(two.min_image_side(), 14); // 5 → 2·5 + 4
    /// ```
    pub fn min_image_side(&self) -> usize {
        let mut side = self.kernel;
        for _ in 1..self.filters.len() {
            side = side
                .checked_mul(self.pool)
                .and_then(|s| s.checked_add(self.kernel.saturating_sub(1)))
                .unwrap_or(usize::MAX);
        }
        side
    }

    /// The error message for images `item_shape` that leave `h × w` before convolution `i`, too
    /// few for the kernel: names the pool that shrank them and the least size the network takes.
    pub(crate) fn too_small(&self, item_shape: &[usize], i: usize, h: usize, w: usize) -> String {
        let k = self.kernel;
        let left = match i {
            0 => format!("{h}×{w}"),
            _ => format!("{h}×{w} left after convolution {} and its {p}×{p} max-pool", i - 1, p = self.pool),
        };
        format!(
            "images {item_shape:?} are too small for convolution {i} ({left}, kernel {k}×{k}): this CNN ({} \
             convolutions, kernel {k}, pool {}) takes images of at least {m}×{m}; resize them, or use fewer \
             convolutions or a smaller kernel or pool",
            self.filters.len(),
            self.pool,
            m = self.min_image_side()
        )
    }
}

/// One input group of a [`BowSpec`]: the model-side view of a dataset's feature group (the
/// dataset's `nsl::data::FeatureLayout`, which the model layer does not know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum InputGroup {
    /// `width` float values, passed through to the dense layers.
    Dense {
        /// The group's name.
        name: String,
        /// Number of values.
        width: usize,
    },
    /// Token ids in `0..vocab`, `max_len` columns padded with −1: embedded and mean-pooled.
    Tokens {
        /// The group's name.
        name: String,
        /// Columns the group occupies.
        max_len: usize,
        /// Number of embedding rows.
        vocab: usize,
    },
}

impl InputGroup {
    /// The group's name.
    pub fn name(&self) -> &str {
        match self {
            InputGroup::Dense { name, .. } | InputGroup::Tokens { name, .. } => name,
        }
    }

    /// Columns the group occupies in an input row.
    pub fn width(&self) -> usize {
        match *self {
            InputGroup::Dense { width, .. } => width,
            InputGroup::Tokens { max_len, .. } => max_len,
        }
    }
}

/// How a token group's embedding rows are combined into one vector per row: the combiners of
/// TensorFlow's `embedding_lookup_sparse` (and `embedding_column`), over the row's `n` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Combiner {
    /// `(1 / n) · Σ E[i]` (default; TF's default too).
    #[default]
    Mean,
    /// `Σ E[i]`: on a bag of distinct words this is the product of the multi-hot row with `E`,
    /// i.e. a dense layer's pre-activation on the word flags.
    Sum,
    /// `(1 / √n) · Σ E[i]`.
    Sqrtn,
}

impl Combiner {
    /// The factor the sum of `n` embedding rows is multiplied by (`n > 0`).
    pub fn scale(self, n: usize) -> f32 {
        match self {
            Combiner::Mean => 1.0 / n as f32,
            Combiner::Sum => 1.0,
            Combiner::Sqrtn => 1.0 / (n as f32).sqrt(),
        }
    }

    const NAMES: &'static [(&'static str, Combiner)] =
        &[("mean", Combiner::Mean), ("sum", Combiner::Sum), ("sqrtn", Combiner::Sqrtn)];
}

impl fmt::Display for Combiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Combiner::NAMES.iter().find(|(_, c)| c == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bag-of-words text model: each token group is embedded (`embed` values per id, one table per
/// group) and pooled over its ids by the [`Combiner`] (padding excluded; an empty list pools to
/// zeros); with a `bag_activation`, a bias and that activation follow the pooling (the bag is then
/// a hidden layer of its own). Dense groups pass through, all are concatenated, then
/// `[Dense(h) → ReLU → Dropout] × len(hidden)` and `Dense(classes)` logits. Parsed from
/// `bow:EMBED,HIDDEN…[,combiner=mean|sum|sqrtn][,bag-activation=none|relu|tanh|sigmoid|gelu]`;
/// the default `bow` is `bow:50` (mean, no bag activation, no hidden layer). Dropout (the spec's
/// rate) applies to the encoding and after each hidden layer.
///
/// On a bag of distinct words, `bow:50,50,combiner=sum,bag-activation=relu` computes the same
/// function as `mlp:50,50` on the multi-hot word flags (the embedding table is the first layer's
/// weight), with the same seeded initial weights.
///
/// NSL's text tutorials use Keras `Embedding` + `GlobalAveragePooling1D` (which, without a mask,
/// averages over the padding too); nsl averages over the ids only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BowSpec {
    /// Values per embedded id. Default 50.
    pub embed: usize,
    /// Units of each hidden layer. Default none (`bow:50`: the pooled embeddings feed the logits).
    pub hidden: Vec<usize>,
    /// How each token group's embedding rows are pooled. Default [`Combiner::Mean`].
    pub combiner: Combiner,
    /// When set, each pooled token group gets a bias (variable `bag{k}.bias`) and this activation
    /// before dropout. Default `None` (the pooled embeddings go to the dense layers as they are).
    pub bag_activation: Option<Activation>,
    /// Dropout rate on the encoding and after each hidden layer, in training only. Default 0.5.
    pub dropout: f32,
    /// The input groups, in row order: filled from the data by [`ModelSpec::for_inputs`] (and
    /// stored in `model.json`). Default empty (the model cannot be built until filled).
    pub inputs: Vec<InputGroup>,
}

impl BowSpec {
    /// Width of the encoded input (what perturbations move): `embed` per token group plus the
    /// dense groups' widths.
    pub fn encoded_width(&self) -> usize {
        self.inputs
            .iter()
            .map(|g| match g {
                InputGroup::Tokens { .. } => self.embed,
                InputGroup::Dense { width, .. } => *width,
            })
            .sum()
    }
}

impl Default for BowSpec {
    fn default() -> Self {
        BowSpec {
            embed: 50,
            hidden: Vec::new(),
            combiner: Combiner::Mean,
            bag_activation: None,
            dropout: 0.5,
            inputs: Vec::new(),
        }
    }
}

/// Which model to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ModelSpec {
    /// A multi-layer perceptron.
    Mlp(MlpSpec),
    /// A convolutional network.
    Cnn(CnnSpec),
    /// A bag-of-words model over token groups (and dense groups).
    Bow(BowSpec),
}

/// `mlp:50,50` with ReLU and dropout 0.5 (NSL's Cora model; the default of `nsl train --model`).
impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec::Mlp(MlpSpec::default())
    }
}

/// Parses `mlp`, `mlp:256,128`, `cnn`, `cnn:32,64,64`, `bow`, `bow:64,50` (the numbers are the
/// hidden units, the conv filters, or the embedding size then the hidden units; everything else
/// keeps its default). A `bow` spec also takes `key=value` items after its numbers:
/// `combiner=mean|sum|sqrtn` and `bag-activation=none|relu|tanh|sigmoid|gelu`
/// (`bow:50,50,combiner=sum,bag-activation=relu`). A `cnn` spec takes `dense=U[+U…]`, the units
/// of its dense layers (`cnn:32,64,64,dense=256`; default `dense=64`). An MLP's list may end with its activation,
/// `relu` (default), `tanh`, `sigmoid` or `gelu`: `mlp:256,256,gelu` (other than `relu`, the MLP
/// trains on candle's autograd rather than its own tape, which is slower).
impl FromStr for ModelSpec {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `mlp:…,gelu`: a trailing activation name, taken off before the numbers are read.
        let (s, activation) = match text.rsplit_once([',', ':']) {
            Some((head, word)) if text.trim_start().to_ascii_lowercase().starts_with("mlp") => {
                match crate::config::lookup(Activation::NAMES, &word.trim().to_ascii_lowercase()) {
                    Some(a) => (head, a),
                    None => (text, Activation::Relu),
                }
            }
            _ => (text, Activation::Relu),
        };
        let (kind, rest) = match s.split_once(':') {
            Some((k, n)) => (k.trim(), Some(n)),
            None => (s.trim(), None),
        };
        // Numbers first, then `key=value` items (bow only).
        let (numbers, options) = match rest {
            None => (None, ""),
            Some(rest) => {
                let split = rest.find('=').map_or(rest.len(), |eq| rest[..eq].rfind(',').map_or(0, |c| c + 1));
                let (numbers, options) = rest.split_at(split);
                let numbers = numbers.trim_end_matches(',');
                let numbers = (!numbers.trim().is_empty())
                    .then(|| sizes(&format!("a layer size of model `{text}`"), numbers, ','))
                    .transpose()?;
                (numbers, options)
            }
        };
        let kind = kind.to_ascii_lowercase();
        if !options.is_empty() && kind != "bow" && kind != "cnn" {
            return Err(ConfigError::invalid("model", s, "options (KEY=VALUE) for cnn and bow only"));
        }
        match kind.as_str() {
            "mlp" => Ok(ModelSpec::Mlp(MlpSpec {
                hidden: numbers.unwrap_or_else(|| MlpSpec::default().hidden),
                activation,
                ..Default::default()
            })),
            "cnn" => {
                let mut cnn =
                    CnnSpec { filters: numbers.unwrap_or_else(|| CnnSpec::default().filters), ..Default::default() };
                for kv in key_values("--model", options) {
                    let kv = kv?;
                    match kv.key.as_str() {
                        "dense" => cnn.dense = sizes(&format!("the dense units of model `{text}`"), kv.value, '+')?,
                        _ => return Err(kv.unknown(&["dense"])),
                    }
                }
                Ok(ModelSpec::Cnn(cnn))
            }
            "bow" => {
                let mut bow = match numbers.as_deref() {
                    None => BowSpec::default(),
                    Some([embed, hidden @ ..]) => {
                        BowSpec { embed: *embed, hidden: hidden.to_vec(), ..Default::default() }
                    }
                    Some([]) => return Err(ConfigError::invalid("model", s, BOW_FORM)),
                };
                for kv in key_values("--model", options) {
                    let kv = kv?;
                    match kv.key.as_str() {
                        "combiner" => bow.combiner = kv.named(Combiner::NAMES)?,
                        "bag-activation" => {
                            bow.bag_activation = kv.named(BAG_ACTIVATIONS)?;
                        }
                        _ => return Err(kv.unknown(&["combiner", "bag-activation"])),
                    }
                }
                Ok(ModelSpec::Bow(bow))
            }
            _ => Err(ConfigError::invalid("model", s, format!("mlp[:UNITS,…], cnn[:FILTERS,…] or {BOW_FORM}"))),
        }
    }
}

/// Positive integers separated by `sep` (layer sizes); `field` names them in the error.
fn sizes(field: &str, list: &str, sep: char) -> Result<Vec<usize>, ConfigError> {
    list.split(sep)
        .map(|u| match u.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(ConfigError::invalid(field, u, "a positive integer")),
            Ok(v) => Ok(v),
        })
        .collect()
}

/// The values of `bag-activation=`.
const BAG_ACTIVATIONS: &[(&str, Option<Activation>)] = &[
    ("none", None),
    ("relu", Some(Activation::Relu)),
    ("tanh", Some(Activation::Tanh)),
    ("sigmoid", Some(Activation::Sigmoid)),
    ("gelu", Some(Activation::Gelu)),
];

/// The `bow` spec's form, for messages.
const BOW_FORM: &str = "bow[:EMBED,UNITS,…][,combiner=mean|sum|sqrtn][,bag-activation=none|relu|…]";

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: &[usize]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        match self {
            ModelSpec::Mlp(m) if m.activation != Activation::Relu => {
                write!(f, "mlp:{},{}", join(&m.hidden), m.activation.name())
            }
            ModelSpec::Mlp(m) => write!(f, "mlp:{}", join(&m.hidden)),
            ModelSpec::Cnn(c) if c.dense != CnnSpec::default().dense => {
                let dense = c.dense.iter().map(ToString::to_string).collect::<Vec<_>>().join("+");
                write!(f, "cnn:{},dense={dense}", join(&c.filters))
            }
            ModelSpec::Cnn(c) => write!(f, "cnn:{}", join(&c.filters)),
            ModelSpec::Bow(b) => {
                write!(f, "bow:{}", join(&[&[b.embed][..], &b.hidden].concat()))?;
                if b.combiner != Combiner::default() {
                    write!(f, ",combiner={}", b.combiner)?;
                }
                match b.bag_activation {
                    Some(a) => write!(f, ",bag-activation={a}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl ModelSpec {
    /// Sets the dropout rate of the model's dense layers.
    pub fn with_dropout(mut self, dropout: f32) -> Self {
        match &mut self {
            ModelSpec::Mlp(m) => m.dropout = dropout,
            ModelSpec::Cnn(c) => c.dropout = dropout,
            ModelSpec::Bow(b) => b.dropout = dropout,
        }
        self
    }

    /// The spec for inputs made of `inputs` (the dataset's feature groups, in row order): a `bow`
    /// spec records them (its embedding tables and pooling follow them); `mlp` and `cnn` read dense
    /// features only and refuse token groups.
    ///
    /// # Errors
    /// [`ConfigError`] naming the token group when the model cannot read token ids (and pointing
    /// at `bow`), or when a `bow` model is given no token group and no dense group.
    pub fn for_inputs(self, inputs: &[InputGroup]) -> Result<Self, ConfigError> {
        match self {
            ModelSpec::Bow(mut b) => {
                if inputs.is_empty() {
                    return Err(ConfigError::invalid("model", "bow", "a dataset with at least one feature group"));
                }
                b.inputs = inputs.to_vec();
                Ok(ModelSpec::Bow(b))
            }
            other => match inputs.iter().find(|g| matches!(g, InputGroup::Tokens { .. })) {
                Some(tokens) => Err(ConfigError::invalid(
                    "model",
                    other.to_string(),
                    format!(
                        "a model that reads token ids: feature group `{}` holds token ids, which {other} would read as                          numbers; use --model bow:EMBED,UNITS… (e.g. bow:50,50)",
                        tokens.name()
                    ),
                )),
                None => Ok(other),
            },
        }
    }

    /// The dropout rate of the model's dense layers.
    pub fn dropout(&self) -> f32 {
        match self {
            ModelSpec::Mlp(m) => m.dropout,
            ModelSpec::Cnn(c) => c.dropout,
            ModelSpec::Bow(b) => b.dropout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("mlp:50,50".parse::<ModelSpec>().unwrap(), ModelSpec::Mlp(MlpSpec::default()));
        assert_eq!("cnn".parse::<ModelSpec>().unwrap(), ModelSpec::Cnn(CnnSpec::default()));
        assert_eq!("mlp:256,128".parse::<ModelSpec>().unwrap().to_string(), "mlp:256,128");
        let gelu = "mlp:256,128,GELU".parse::<ModelSpec>().unwrap();
        assert_eq!(
            gelu,
            ModelSpec::Mlp(MlpSpec { hidden: vec![256, 128], activation: Activation::Gelu, dropout: 0.5 })
        );
        assert_eq!(gelu.to_string(), "mlp:256,128,gelu");
        assert_eq!("mlp:256,128,relu".parse::<ModelSpec>().unwrap().to_string(), "mlp:256,128");
        let tanh = "mlp:tanh".parse::<ModelSpec>().unwrap();
        assert_eq!(tanh, ModelSpec::Mlp(MlpSpec { activation: Activation::Tanh, ..Default::default() }));
        assert!("mlp:256,swish".parse::<ModelSpec>().is_err());
        assert!("cnn:32,gelu".parse::<ModelSpec>().is_err(), "only the MLP takes an activation");
        assert_eq!(
            "mlp:0,gelu".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `0` for a layer size of model `mlp:0,gelu`: expected a positive integer"
        );
        assert_eq!(
            "mlp:0".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `0` for a layer size of model `mlp:0`: expected a positive integer"
        );
        assert_eq!(
            "rnn".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `rnn` for model: expected mlp[:UNITS,…], cnn[:FILTERS,…] or \
             bow[:EMBED,UNITS,…][,combiner=mean|sum|sqrtn][,bag-activation=none|relu|…]"
        );
        let bow = "bow:64,32,16".parse::<ModelSpec>().unwrap();
        assert_eq!(bow, ModelSpec::Bow(BowSpec { embed: 64, hidden: vec![32, 16], ..Default::default() }));
        assert_eq!(bow.to_string(), "bow:64,32,16");
        assert_eq!("bow".parse::<ModelSpec>().unwrap().to_string(), "bow:50");
        assert_eq!("bow:8".parse::<ModelSpec>().unwrap().to_string(), "bow:8");
        let mlp_like = "bow:50,50,combiner=sum,bag_activation=relu".parse::<ModelSpec>().unwrap();
        assert_eq!(
            mlp_like,
            ModelSpec::Bow(BowSpec {
                hidden: vec![50],
                combiner: Combiner::Sum,
                bag_activation: Some(Activation::Relu),
                ..Default::default()
            })
        );
        assert_eq!(mlp_like.to_string(), "bow:50,50,combiner=sum,bag-activation=relu");
        assert_eq!(mlp_like.to_string().parse::<ModelSpec>().unwrap(), mlp_like);
        assert_eq!("bow:combiner=sqrtn".parse::<ModelSpec>().unwrap().to_string(), "bow:50,combiner=sqrtn");
        assert_eq!("bow:8,bag-activation=none,combiner=mean".parse::<ModelSpec>().unwrap().to_string(), "bow:8");
        assert_eq!(
            "bow:8,combiner=max".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `max` for `combiner` in --model: expected mean, sum or sqrtn"
        );
        assert_eq!(
            "bow:8,pool=sum".parse::<ModelSpec>().unwrap_err().to_string(),
            "unknown key `pool` in --model (known: combiner, bag-activation)"
        );
        assert_eq!(
            "bow:8,combiner=sum,9".parse::<ModelSpec>().unwrap_err().to_string(),
            "`9` in --model is not KEY=VALUE"
        );
        let e = "mlp:50,combiner=sum".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(e.contains("options (KEY=VALUE) for cnn and bow only"), "{e}");
        // cnn's dense layers: `dense=U[+U…]`, printed back only when not the default.
        let wide = "cnn:32,64,64,dense=256+128".parse::<ModelSpec>().unwrap();
        assert_eq!(wide, ModelSpec::Cnn(CnnSpec { dense: vec![256, 128], ..Default::default() }));
        assert_eq!(wide.to_string(), "cnn:32,64,64,dense=256+128");
        assert_eq!("cnn:dense=64".parse::<ModelSpec>().unwrap().to_string(), "cnn:32,64,64");
        assert_eq!(
            "cnn:dense=0".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `0` for the dense units of model `cnn:dense=0`: expected a positive integer"
        );
        assert!("cnn:pool=3".parse::<ModelSpec>().is_err());
        // model.json written before the combiner existed reads as the mean without a bag activation.
        let old = r#"{"type":"bow","embed":8,"hidden":[],"dropout":0.5,"inputs":[]}"#;
        assert_eq!(serde_json::from_str::<ModelSpec>(old).unwrap().to_string(), "bow:8");
        let words = InputGroup::Tokens { name: "words".into(), max_len: 3, vocab: 10 };
        let e = ModelSpec::default().for_inputs(std::slice::from_ref(&words)).unwrap_err().to_string();
        assert!(e.contains("feature group `words` holds token ids") && e.contains("bow:"), "{e}");
        let ModelSpec::Bow(b) = bow.for_inputs(std::slice::from_ref(&words)).unwrap() else { panic!("not bow") };
        assert_eq!(b.inputs, [words]);
        let json = serde_json::to_string(&ModelSpec::default()).unwrap();
        assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), ModelSpec::default());
    }
}
