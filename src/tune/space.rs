//! [`SearchSpace`]: recipe keys and the distributions their values are drawn from.

use super::TuneError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A value written into a recipe: what a recipe's TOML key (or a sub-key of a `key=value,…`
/// setting) takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A text (a model spec, a distance name, …).
    Text(String),
}

impl fmt::Display for Value {
    /// As written in a `key=value` list (`0.003`, `2`, `true`, `kl`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "{s}"),
        }
    }
}

/// The distribution of one key's values. In a space TOML, one of `{ log_uniform = [a, b] }`,
/// `{ uniform = [a, b] }`, `{ int = [a, b] }`, `{ choice = [v, …] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// `exp(U(ln a, ln b))`, `0 < a ≤ b`: for rates and multipliers. Drawn values are rounded to
    /// three significant digits (and kept inside `[a, b]`), so the recipe shows what was trained.
    LogUniform([f64; 2]),
    /// `U(a, b)`, `a ≤ b`, rounded as `log_uniform`.
    Uniform([f64; 2]),
    /// An integer of `[a, b]`, each equally likely.
    Int([i64; 2]),
    /// One of the values, each equally likely.
    Choice(Vec<Value>),
}

impl Distribution {
    /// Checks the range.
    ///
    /// # Errors
    /// [`TuneError::Space`] naming `key`: a bound that is not finite, `a > b`, a non-positive
    /// bound of `log_uniform`, an empty `choice`.
    pub fn validate(&self, key: &str) -> Result<(), TuneError> {
        let range = |what: &str, [a, b]: [f64; 2], positive: bool| {
            if !a.is_finite() || !b.is_finite() {
                return Err(TuneError::space(key, format!("{what} = [{a}, {b}]: the bounds must be finite")));
            }
            if a > b {
                return Err(TuneError::space(key, format!("{what} = [{a}, {b}]: the lower bound is above the upper")));
            }
            if positive && a <= 0.0 {
                return Err(TuneError::space(key, format!("{what} = [{a}, {b}]: the bounds must be above 0")));
            }
            Ok(())
        };
        match self {
            Distribution::LogUniform(r) => range("log_uniform", *r, true),
            Distribution::Uniform(r) => range("uniform", *r, false),
            Distribution::Int([a, b]) if a > b => {
                Err(TuneError::space(key, format!("int = [{a}, {b}]: the lower bound is above the upper")))
            }
            Distribution::Int(_) => Ok(()),
            Distribution::Choice(v) if v.is_empty() => {
                Err(TuneError::space(key, "choice = []: give at least one value"))
            }
            Distribution::Choice(_) => Ok(()),
        }
    }

    /// A value drawn from the distribution.
    pub fn sample(&self, rng: &mut impl Rng) -> Value {
        match self {
            Distribution::LogUniform([a, b]) => {
                let x = (a.ln() + rng.random::<f64>() * (b.ln() - a.ln())).exp();
                Value::Float(round3(x).clamp(*a, *b))
            }
            Distribution::Uniform([a, b]) => Value::Float(round3(a + rng.random::<f64>() * (b - a)).clamp(*a, *b)),
            Distribution::Int([a, b]) => Value::Int(rng.random_range(*a..=*b)),
            Distribution::Choice(values) => values[rng.random_range(0..values.len())].clone(),
        }
    }

    /// The values at the ends of the range (each value of a choice), which a space is checked
    /// with before the search starts.
    pub fn extremes(&self) -> Vec<Value> {
        match self {
            Distribution::LogUniform([a, b]) | Distribution::Uniform([a, b]) => {
                vec![Value::Float(*a), Value::Float(*b)]
            }
            Distribution::Int([a, b]) => vec![Value::Int(*a), Value::Int(*b)],
            Distribution::Choice(values) => values.clone(),
        }
    }
}

/// `x` rounded to three significant digits.
fn round3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.2e}").parse().unwrap_or(x)
}

/// The settings of one trial: each key of the space with its drawn value, in key order.
pub type Assignment = Vec<(String, Value)>;

/// A search space: recipe keys, each with a [`Distribution`], kept in key order (so the same
/// seed draws the same trials whatever order the file lists them in).
///
/// A key is a recipe's TOML key (`learning_rate`, `dropout`, `unlabeled_ratio`, `epochs`, …) or
/// `SETTING.SUBKEY` for a sub-key of a `key=value,…` setting (`graph_reg.multiplier`,
/// `graph_reg.hops`, `vat.epsilon`, …): the tuner does not know the keys, the recipe parser does,
/// so a setting added to recipes later is searchable as it is.
///
/// ```
/// use nsl::tune::{Distribution, SearchSpace};
/// let space = SearchSpace::new([
///     ("dropout".to_string(), Distribution::Uniform([0.2, 0.8])),
///     ("graph_reg.hops".to_string(), Distribution::Int([1, 3])),
/// ])?;
/// assert_eq!(space.keys().collect::<Vec<_>>(), ["dropout", "graph_reg.hops"]);
/// assert!(SearchSpace::new([("dropout".to_string(), Distribution::Uniform([0.8, 0.2]))]).is_err());
/// # Ok::<(), nsl::tune::TuneError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSpace {
    keys: BTreeMap<String, Distribution>,
}

impl SearchSpace {
    /// A space of `entries`, each range checked.
    ///
    /// # Errors
    /// [`TuneError::Space`] for an invalid range or a key given twice (naming it),
    /// [`TuneError::EmptySpace`] for no key.
    pub fn new(entries: impl IntoIterator<Item = (String, Distribution)>) -> Result<Self, TuneError> {
        let mut keys = BTreeMap::new();
        for (key, distribution) in entries {
            let key = key.trim().to_string();
            if key.is_empty() || key.starts_with('.') || key.ends_with('.') || key.matches('.').count() > 1 {
                return Err(TuneError::space(
                    &key,
                    "expected a recipe key (`dropout`) or SETTING.SUBKEY (`graph_reg.hops`)",
                ));
            }
            distribution.validate(&key)?;
            if keys.insert(key.clone(), distribution).is_some() {
                return Err(TuneError::space(&key, "given twice"));
            }
        }
        if keys.is_empty() {
            return Err(TuneError::EmptySpace);
        }
        Ok(SearchSpace { keys })
    }

    /// The built-in space for the few-labels recipe (`examples/recipes/few_labels.toml`,
    /// Graph-MLP's training), around its settings:
    ///
    /// | key | distribution | the recipe's value |
    /// |---|---|---|
    /// | `learning_rate` | `log_uniform = [3e-4, 1e-2]` | 1e-3 |
    /// | `weight_decay` | `log_uniform = [1e-4, 3e-2]` | 5e-3 |
    /// | `dropout` | `uniform = [0.2, 0.8]` | 0.6 |
    /// | `unlabeled_ratio` | `int = [1, 4]` (ratio 4 keeps a Cora epoch within 0.05 s) | 3 |
    /// | `graph_reg.multiplier` | `log_uniform = [0.3, 30]` | 10 |
    /// | `graph_reg.hops` | `int = [1, 3]` | 2 |
    /// | `graph_reg.temperature` | `log_uniform = [0.2, 2]` | 0.5 |
    pub fn few_labels() -> Self {
        let entries = [
            ("learning_rate", Distribution::LogUniform([3e-4, 1e-2])),
            ("weight_decay", Distribution::LogUniform([1e-4, 3e-2])),
            ("dropout", Distribution::Uniform([0.2, 0.8])),
            ("unlabeled_ratio", Distribution::Int([1, 4])),
            ("graph_reg.multiplier", Distribution::LogUniform([0.3, 30.0])),
            ("graph_reg.hops", Distribution::Int([1, 3])),
            ("graph_reg.temperature", Distribution::LogUniform([0.2, 2.0])),
        ];
        SearchSpace { keys: entries.into_iter().map(|(k, d)| (k.to_string(), d)).collect() }
    }

    /// The built-in space for a few-labels recipe with distillation from a teacher (`distill`,
    /// e.g. `examples/recipes/few_labels_distill_citeseer.toml`): [`SearchSpace::few_labels`]'s
    /// keys and
    ///
    /// | key | distribution | the Citeseer recipe's value |
    /// |---|---|---|
    /// | `distill.multiplier` | `log_uniform = [1, 1000]` | 117 |
    /// | `distill.temperature` | `log_uniform = [0.5, 4]` | 1 (the default) |
    ///
    /// ```
    /// use nsl::tune::SearchSpace;
    /// let keys: Vec<String> = SearchSpace::few_labels_distill().keys().map(String::from).collect();
    /// assert_eq!(keys.len(), SearchSpace::few_labels().keys().count() + 2);
    /// assert!(keys.contains(&"distill.multiplier".to_string()));
    /// ```
    pub fn few_labels_distill() -> Self {
        let mut space = SearchSpace::few_labels();
        space.keys.insert("distill.multiplier".into(), Distribution::LogUniform([1.0, 1000.0]));
        space.keys.insert("distill.temperature".into(), Distribution::LogUniform([0.5, 4.0]));
        space
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The keys and their distributions, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Distribution)> {
        self.keys.iter().map(|(k, d)| (k.as_str(), d))
    }

    /// One trial's settings: a value for each key, drawn in key order.
    pub fn sample(&self, rng: &mut impl Rng) -> Assignment {
        self.keys.iter().map(|(k, d)| (k.clone(), d.sample(rng))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_stay_in_range_and_are_rounded() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let Value::Float(x) = Distribution::LogUniform([3e-4, 1e-2]).sample(&mut rng) else { panic!() };
            assert!((3e-4..=1e-2).contains(&x));
            assert_eq!(format!("{x:.2e}").parse::<f64>().unwrap(), x);
            let Value::Int(i) = Distribution::Int([1, 3]).sample(&mut rng) else { panic!() };
            assert!((1..=3).contains(&i));
        }
        assert_eq!(round3(0.0123456), 0.0123);
        assert_eq!(round3(12345.0), 12300.0);
    }

    #[test]
    fn bad_ranges_name_their_key() {
        let err = Distribution::LogUniform([0.0, 1.0]).validate("learning_rate").unwrap_err();
        assert_eq!(
            err.to_string(),
            "search space key `learning_rate`: log_uniform = [0, 1]: the bounds must be above 0"
        );
        assert!(Distribution::Int([3, 1]).validate("epochs").is_err());
        assert!(Distribution::Choice(vec![]).validate("model").is_err());
        assert!(Distribution::Uniform([f64::NAN, 1.0]).validate("dropout").is_err());
        assert!(SearchSpace::new([("a.b.c".to_string(), Distribution::Int([1, 2]))]).is_err());
    }
}
