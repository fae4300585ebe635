//! [`ConfigError`]: a setting that cannot be used, and the small text languages settings are
//! written in.
//!
//! The `*Config` types check their values with `validate()`, and some of them parse a compact text
//! form: names of enums ([`DistanceType`](crate::regularize::DistanceType) from `"l2"`), a model
//! ([`ModelSpec`](crate::model::ModelSpec) from `"mlp:50,50"`), or `key=value` lists
//! ([`GraphRegConfig::from_kv`](crate::regularize::GraphRegConfig::from_kv)). All of them report
//! a [`ConfigError`] naming the setting, the bad value and what is allowed.
//!
//! # The `key=value` language
//! `key=value` pairs separated by commas; spaces around a pair are ignored, empty pairs are
//! skipped, and `_` in a key is the same as `-` (`step_size` = `step-size`). Values are taken as
//! written (no space after `=`).

use std::fmt;

/// A setting that cannot be used. Every variant names the setting and the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value out of range, of the wrong type, or not one of the accepted names.
    #[error("invalid value `{value}` for {field}: expected {expected}")]
    InvalidValue {
        /// The setting, e.g. ``"`multiplier` in --graph-reg"`` or `"graph-reg multiplier"`.
        field: String,
        /// The value as given.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A key that a `key=value` list does not know.
    #[error("unknown key `{key}` in {flag} (known: {})", known.join(", "))]
    UnknownKey {
        /// The list's name, e.g. `--graph-reg`.
        flag: &'static str,
        /// The key as given.
        key: String,
        /// The keys the list knows.
        known: &'static [&'static str],
    },
    /// A pair of a `key=value` list without `=`.
    #[error("`{pair}` in {flag} is not KEY=VALUE")]
    NotKeyValue {
        /// The list's name, e.g. `--graph-reg`.
        flag: &'static str,
        /// The pair as given.
        pair: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::InvalidValue`].
    pub(crate) fn invalid(field: impl Into<String>, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        ConfigError::InvalidValue { field: field.into(), value: value.to_string(), expected: expected.into() }
    }
}

/// One pair of a `key=value` list.
pub(crate) struct KeyValue<'a> {
    /// The list's name (for messages).
    flag: &'static str,
    /// The key as written.
    raw_key: &'a str,
    /// The key, trimmed, with `-` for `_`.
    pub key: String,
    /// The value as written.
    pub value: &'a str,
}

impl KeyValue<'_> {
    /// The setting, for messages: ``"`key` in --flag"``.
    pub fn field(&self) -> String {
        format!("`{}` in {}", self.raw_key, self.flag)
    }

    /// An [`ConfigError::InvalidValue`] for this pair.
    pub fn invalid(&self, expected: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.field(), self.value, expected)
    }

    /// The value parsed as a `T`, `expected` describing it in the error.
    pub fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, ConfigError> {
        self.value.parse().map_err(|_| self.invalid(expected))
    }

    /// The value looked up in a table of names (see [`named`]).
    pub fn named<T: Copy + PartialEq>(&self, names: &[(&str, T)]) -> Result<T, ConfigError> {
        lookup(names, self.value).ok_or_else(|| self.invalid(one_of(names)))
    }

    /// An [`ConfigError::UnknownKey`] for this pair.
    pub fn unknown(&self, known: &'static [&'static str]) -> ConfigError {
        ConfigError::UnknownKey { flag: self.flag, key: self.raw_key.trim().to_string(), known }
    }
}

/// Splits a `key=value,…` list (see the module docs); `flag` names the list in errors.
pub(crate) fn key_values<'a>(
    flag: &'static str,
    spec: &'a str,
) -> impl Iterator<Item = Result<KeyValue<'a>, ConfigError>> + 'a {
    spec.split(',').map(str::trim).filter(|pair| !pair.is_empty()).map(move |pair| {
        let (raw_key, value) =
            pair.split_once('=').ok_or_else(|| ConfigError::NotKeyValue { flag, pair: pair.to_string() })?;
        Ok(KeyValue { flag, raw_key, key: raw_key.trim().replace('_', "-"), value })
    })
}

/// The value of `text` in a table of `(name, value)` pairs, where a value may have several names.
pub(crate) fn lookup<T: Copy>(names: &[(&str, T)], text: &str) -> Option<T> {
    names.iter().find(|(name, _)| *name == text).map(|&(_, value)| value)
}

/// Parses an enum from its names: [`ConfigError::InvalidValue`] for `field` if `text` is none of them.
pub(crate) fn named<T: Copy + PartialEq>(field: &str, names: &[(&str, T)], text: &str) -> Result<T, ConfigError> {
    lookup(names, text).ok_or_else(|| ConfigError::invalid(field, text, one_of(names)))
}

/// `"a, b or c"`: the first name of each value of the table (the others are aliases).
pub(crate) fn one_of<T: PartialEq>(names: &[(&str, T)]) -> String {
    let firsts: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, (_, value))| !names[..*i].iter().any(|(_, earlier)| earlier == value))
        .map(|(_, (name, _))| *name)
        .collect();
    match firsts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => String::new(),
    }
}

/// Offsets XORed into a seed to draw an independent random stream from it, named in one place so
/// that two streams never share one by accident. Changing one changes the weights runs train.
pub(crate) mod seed_streams {
    /// Dropout masks, from the model's initial-weights seed.
    pub(crate) const DROPOUT: u64 = 0xD80;
    /// The order in which unlabeled centers join the batches, from the shuffling seed (`unlabeld`
    /// in ASCII).
    pub(crate) const UNLABELED_DRAW: u64 = 0x756e_6c61_6265_6c64;
    /// Virtual adversarial training's random directions, from the batch's adversarial seed
    /// (`VAT\0` in ASCII).
    pub(crate) const VAT_DIRECTION: u64 = 0x5641_5400;
    /// GRAND's DropNode masks, from the run's seed (`dropnode` in ASCII).
    pub(crate) const DROPNODE: u64 = 0x6472_6f70_6e6f_6465;
    /// GRAND's input dropout, from the run's seed (its hidden dropout uses [`DROPOUT`]).
    pub(crate) const INPUT_DROPOUT: u64 = 0xD81;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pairs_and_normalizes_keys() {
        let pairs: Vec<(String, &str)> = key_values("--x", " a=1 ,, step_size=0.2,")
            .map(|kv| kv.map(|kv| (kv.key, kv.value)))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pairs, vec![("a".to_string(), "1"), ("step-size".to_string(), "0.2")]);
        let err = key_values("--x", "a=1,b").find_map(Result::err).unwrap();
        assert_eq!(err, ConfigError::NotKeyValue { flag: "--x", pair: "b".into() });
        assert_eq!(err.to_string(), "`b` in --x is not KEY=VALUE");
    }

    #[test]
    fn names_list_each_value_once() {
        let names = [("a", 1), ("alias", 1), ("b", 2), ("c", 3)];
        assert_eq!(one_of(&names), "a, b or c");
        assert_eq!(named("letter", &names, "alias"), Ok(1));
        let err = named("letter", &names, "d").unwrap_err();
        assert_eq!(err.to_string(), "invalid value `d` for letter: expected a, b or c");
    }
}
