//! [`ModelSpec`]: a small, serializable description of a model, e.g. `mlp:50,50` or `cnn`.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The activation between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// Which model to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ModelSpec {
    /// A multi-layer perceptron.
    Mlp(MlpSpec),
    /// A convolutional network.
    Cnn(CnnSpec),
}

/// `mlp:50,50` with ReLU and dropout 0.5 (NSL's Cora model; the default of `nsl train --model`).
impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec::Mlp(MlpSpec::default())
    }
}

/// Parses `mlp`, `mlp:256,128`, `cnn`, `cnn:32,64,64` (the numbers are the hidden units or the conv
/// filters; everything else keeps its default).
impl FromStr for ModelSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, numbers) = match s.split_once(':') {
            Some((k, n)) => (k.trim(), Some(n)),
            None => (s.trim(), None),
        };
        let numbers = numbers
            .map(|n| {
                n.split(',')
                    .map(|x| match x.trim().parse::<usize>() {
                        Ok(0) | Err(_) => {
                            Err(ConfigError::invalid(format!("a layer size of model `{s}`"), x, "a positive integer"))
                        }
                        Ok(v) => Ok(v),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        match kind.to_ascii_lowercase().as_str() {
            "mlp" => Ok(ModelSpec::Mlp(MlpSpec {
                hidden: numbers.unwrap_or_else(|| MlpSpec::default().hidden),
                ..Default::default()
            })),
            "cnn" => Ok(ModelSpec::Cnn(CnnSpec {
                filters: numbers.unwrap_or_else(|| CnnSpec::default().filters),
                ..Default::default()
            })),
            _ => Err(ConfigError::invalid("model", s, "mlp[:UNITS,…] or cnn[:FILTERS,…]")),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: &[usize]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        match self {
            ModelSpec::Mlp(m) => write!(f, "mlp:{}", join(&m.hidden)),
            ModelSpec::Cnn(c) => write!(f, "cnn:{}", join(&c.filters)),
        }
    }
}

impl ModelSpec {
    /// Sets the dropout rate of the model's dense layers.
    pub fn with_dropout(mut self, dropout: f32) -> Self {
        match &mut self {
            ModelSpec::Mlp(m) => m.dropout = dropout,
            ModelSpec::Cnn(c) => c.dropout = dropout,
        }
        self
    }

    /// The dropout rate of the model's dense layers.
    pub fn dropout(&self) -> f32 {
        match self {
            ModelSpec::Mlp(m) => m.dropout,
            ModelSpec::Cnn(c) => c.dropout,
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
        assert_eq!(
            "mlp:0".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `0` for a layer size of model `mlp:0`: expected a positive integer"
        );
        assert_eq!(
            "rnn".parse::<ModelSpec>().unwrap_err().to_string(),
            "invalid value `rnn` for model: expected mlp[:UNITS,…] or cnn[:FILTERS,…]"
        );
        let json = serde_json::to_string(&ModelSpec::default()).unwrap();
        assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), ModelSpec::default());
    }
}
