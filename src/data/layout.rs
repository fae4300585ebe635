//! [`FeatureLayout`]: which columns of a dataset's feature row belong to which feature group.
//!
//! Everything downstream of the readers (batches, neighbor buffers, splits, checkpoints) moves one
//! dense `f32` row per sample. A layout splits that row into named groups, in order:
//!
//! - [`FeatureKind::Dense`]: `width` float values (a fixed-size float list, or scalar columns
//!   gathered together);
//! - [`FeatureKind::Tokens`]: a variable-length list of integer token ids, stored in `max_len`
//!   columns as `f32` (exact: ids are below [`MAX_VOCAB`] = 2²⁴) followed by [`PAD`] (−1) up to
//!   `max_len`.
//!
//! The default layout is one dense group named `features` covering the whole row: every dataset
//! that has no token group behaves exactly as before layouts existed. A layout travels with a
//! Parquet samples table in the metadata key [`FEATURE_LAYOUT_KEY`] (JSON), so a table written by
//! [`write_samples`](super::write_samples) reads back with the same groups.
//!
//! NSL has no layout: its Keras models take a dict of named input tensors, and an integer feature
//! (Cora's `words`) is padded by `tf.io.FixedLenFeature` to its declared length with a default of 0.
//! nsl pads with −1 instead, so that id 0 stays a real token.

use super::{DataError, Dataset};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Metadata key of a samples table's [`FeatureLayout`] (a JSON list of groups).
pub const FEATURE_LAYOUT_KEY: &str = "nsl.feature_layout";

/// The value that fills a token group's columns after its ids.
pub const PAD: f32 = -1.0;

/// The largest vocabulary a token group may have: every id below it is exact as an `f32` (2²⁴).
pub const MAX_VOCAB: usize = 1 << 24;

/// What one feature group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum FeatureKind {
    /// `width` float values.
    Dense {
        /// Number of values.
        width: usize,
    },
    /// Token ids in `0..vocab`, at most `max_len` per sample, padded with [`PAD`].
    Tokens {
        /// Columns the group occupies (the longest list).
        max_len: usize,
        /// One more than the largest allowed id.
        vocab: usize,
    },
}

impl FeatureKind {
    /// Columns the group occupies in a feature row.
    pub fn width(&self) -> usize {
        match *self {
            FeatureKind::Dense { width } => width,
            FeatureKind::Tokens { max_len, .. } => max_len,
        }
    }
}

/// A named group of a feature row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureGroup {
    /// The group's name: its column in a samples table.
    pub name: String,
    /// What it holds.
    pub kind: FeatureKind,
}

/// The feature groups of a dataset, in row order (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureLayout {
    groups: Vec<FeatureGroup>,
}

impl FeatureLayout {
    /// One dense group named `features` of `width` values: the layout of every dataset without
    /// token groups.
    pub fn dense(width: usize) -> Self {
        FeatureLayout { groups: vec![FeatureGroup { name: "features".into(), kind: FeatureKind::Dense { width } }] }
    }

    /// A layout of the given groups.
    ///
    /// # Errors
    /// [`DataError::Dataset`] when there is no group, two groups share a name, a group is empty,
    /// or a token group's vocabulary is 0 or above [`MAX_VOCAB`].
    pub fn new(groups: Vec<FeatureGroup>) -> Result<Self, DataError> {
        if groups.is_empty() {
            return Err(DataError::Dataset("a feature layout needs at least one group".into()));
        }
        for (i, group) in groups.iter().enumerate() {
            if groups[..i].iter().any(|g| g.name == group.name) {
                return Err(DataError::Dataset(format!("two feature groups are named `{}`", group.name)));
            }
            if group.kind.width() == 0 {
                return Err(DataError::Dataset(format!("feature group `{}` has no columns", group.name)));
            }
            if let FeatureKind::Tokens { vocab, .. } = group.kind {
                if vocab == 0 || vocab > MAX_VOCAB {
                    return Err(DataError::Dataset(format!(
                        "feature group `{}`: vocabulary size {vocab} is not in 1..={MAX_VOCAB} (token ids are stored \
                         as f32, exact below 2^24)",
                        group.name
                    )));
                }
            }
        }
        Ok(FeatureLayout { groups })
    }

    /// The groups, in row order.
    pub fn groups(&self) -> &[FeatureGroup] {
        &self.groups
    }

    /// Columns of a feature row (the sum of the groups' widths).
    pub fn width(&self) -> usize {
        self.groups.iter().map(|g| g.kind.width()).sum()
    }

    /// Whether some group holds token ids.
    pub fn has_tokens(&self) -> bool {
        self.groups.iter().any(|g| matches!(g.kind, FeatureKind::Tokens { .. }))
    }

    /// Each group with its first column in the row.
    pub fn offsets(&self) -> impl Iterator<Item = (usize, &FeatureGroup)> {
        self.groups.iter().scan(0, |offset, g| {
            let start = *offset;
            *offset += g.kind.width();
            Some((start, g))
        })
    }

    /// The name of the first token group, if any (for "this needs dense features" messages).
    pub fn first_token_group(&self) -> Option<&str> {
        self.groups.iter().find(|g| matches!(g.kind, FeatureKind::Tokens { .. })).map(|g| g.name.as_str())
    }

    /// The layout that holds the rows of both `self` and `other`, for files read apart that feed one
    /// model (training, validation, test, pool and unlabeled files of a run): the same groups in the
    /// same order (names are not compared: a file may name its columns differently), each dense
    /// group of the same width, each token group as wide as the longer of the two (`max_len`) with
    /// the larger vocabulary. A token group's `max_len` is only how many columns a row sets aside
    /// for its ids: the `bow` model pools each bag whatever its length, so padding every file to the
    /// widest changes no result. Merging the layouts of the parts of one table gives the layout of
    /// the whole table, so training on the parts equals training on the table.
    ///
    /// # Errors
    /// [`DataError::Dataset`] naming the groups when the two layouts have different groups or a
    /// dense group has another width.
    pub fn merge(&self, other: &FeatureLayout) -> Result<FeatureLayout, DataError> {
        self.combine(other, |a, b| a.max(b), |a, b| a.max(b))
    }

    /// The layout a model of layout `self` reads `other`'s rows in: `merge`'s, except that the
    /// vocabularies stay `self`'s (a model's embedding tables cannot grow; [`Dataset::conform`]
    /// then refuses an id past them, naming the row).
    ///
    /// [`Dataset::conform`]: super::Dataset::conform
    ///
    /// # Errors
    /// As [`FeatureLayout::merge`].
    pub fn widen_to(&self, other: &FeatureLayout) -> Result<FeatureLayout, DataError> {
        self.combine(other, |a, b| a.max(b), |a, _| a)
    }

    fn combine(
        &self,
        other: &FeatureLayout,
        max_len: impl Fn(usize, usize) -> usize,
        vocab: impl Fn(usize, usize) -> usize,
    ) -> Result<FeatureLayout, DataError> {
        let describe = |layout: &FeatureLayout| {
            layout
                .groups
                .iter()
                .map(|g| match g.kind {
                    FeatureKind::Dense { width } => format!("`{}` ({width} values)", g.name),
                    FeatureKind::Tokens { .. } => format!("`{}` (token ids)", g.name),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mismatch = || {
            DataError::Dataset(format!(
                "the feature groups differ: {} here, {} in the other file",
                describe(other),
                describe(self)
            ))
        };
        if self.groups.len() != other.groups.len() {
            return Err(mismatch());
        }
        let mut groups = Vec::with_capacity(self.groups.len());
        for (a, b) in self.groups.iter().zip(&other.groups) {
            let kind = match (a.kind, b.kind) {
                (FeatureKind::Dense { width: x }, FeatureKind::Dense { width: y }) if x == y => a.kind,
                // Two plain dense rows of different widths: the message every command gave before layouts.
                (FeatureKind::Dense { width: x }, FeatureKind::Dense { width: y }) if self.groups.len() == 1 => {
                    return Err(DataError::Dataset(format!("rows have {y} features, expected {x}")))
                }
                (FeatureKind::Tokens { max_len: l1, vocab: v1 }, FeatureKind::Tokens { max_len: l2, vocab: v2 }) => {
                    FeatureKind::Tokens { max_len: max_len(l1, l2), vocab: vocab(v1, v2) }
                }
                _ => return Err(mismatch()),
            };
            groups.push(FeatureGroup { name: a.name.clone(), kind });
        }
        FeatureLayout::new(groups)
    }

    /// Checks that `features` fits the layout: the width, and in each token group ids that are
    /// integers in `0..vocab` followed only by [`PAD`].
    ///
    /// # Errors
    /// [`DataError::Dataset`] naming the row, the group and the offending value.
    pub fn check(&self, features: ArrayView2<f32>) -> Result<(), DataError> {
        if features.ncols() != self.width() {
            return Err(DataError::Dataset(format!(
                "the feature layout has {} columns but rows have {}",
                self.width(),
                features.ncols()
            )));
        }
        for (offset, group) in self.offsets() {
            let FeatureKind::Tokens { max_len, vocab } = group.kind else { continue };
            for (row, values) in features.rows().into_iter().enumerate() {
                let mut padded = false;
                for (k, &v) in values.iter().skip(offset).take(max_len).enumerate() {
                    if v == PAD {
                        padded = true;
                    } else if padded || v < 0.0 || v.fract() != 0.0 || v >= vocab as f32 {
                        return Err(DataError::Dataset(format!(
                            "row {row}, token group `{}`[{k}]: value {v} is not a token id in 0..{vocab}{}",
                            group.name,
                            if padded { " (ids must come before the padding)" } else { "" }
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The ids of one token group's cell: the values before the first [`PAD`], as `u32`.
pub fn token_ids(cell: impl IntoIterator<Item = f32>) -> impl Iterator<Item = u32> {
    cell.into_iter().take_while(|&v| v != PAD).map(|v| v as u32)
}

/// A dataset of dense multi-hot rows (e.g. Cora's 1,433 word flags) as one token group `name`:
/// each row's ids are the columns holding a non-zero value, in increasing order; the vocabulary is
/// the row width and `max_len` the most non-zero values in a row (at least 1). Ids, labels and
/// class names are kept.
///
/// # Errors
/// [`DataError::Dataset`] when the dataset already has a token group or its rows are wider than
/// [`MAX_VOCAB`].
pub fn multi_hot_to_tokens(dataset: &Dataset, name: &str) -> Result<Dataset, DataError> {
    if let Some(group) = dataset.layout().first_token_group() {
        return Err(DataError::Dataset(format!("feature group `{group}` already holds token ids")));
    }
    let vocab = dataset.dim();
    if vocab > MAX_VOCAB {
        return Err(DataError::Dataset(format!(
            "{vocab} columns are more than the {MAX_VOCAB} ids a token group may have"
        )));
    }
    let rows: Vec<Vec<u32>> = dataset
        .features()
        .rows()
        .into_iter()
        .map(|row| row.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(i, _)| i as u32).collect())
        .collect();
    let max_len = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut features = Array2::from_elem((dataset.len(), max_len), PAD);
    for (mut target, ids) in features.rows_mut().into_iter().zip(&rows) {
        target.iter_mut().zip(ids).for_each(|(t, &id)| *t = id as f32);
    }
    let layout = FeatureLayout::new(vec![FeatureGroup {
        name: name.to_owned(),
        kind: FeatureKind::Tokens { max_len, vocab: vocab.max(1) },
    }])?;
    Dataset::new(
        dataset.ids().to_vec(),
        features,
        vec![max_len],
        dataset.labels().map(<[u32]>::to_vec),
        dataset.class_names().map(<[String]>::to_vec),
    )?
    .with_layout(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn mixed() -> FeatureLayout {
        FeatureLayout::new(vec![
            FeatureGroup { name: "x".into(), kind: FeatureKind::Dense { width: 2 } },
            FeatureGroup { name: "words".into(), kind: FeatureKind::Tokens { max_len: 3, vocab: 5 } },
        ])
        .unwrap()
    }

    #[test]
    fn offsets_width_and_checks() {
        let layout = mixed();
        assert_eq!(layout.width(), 5);
        assert_eq!(layout.offsets().map(|(o, _)| o).collect::<Vec<_>>(), [0, 2]);
        assert!(layout.check(array![[0.5, 1.0, 4.0, 0.0, -1.0], [0.0, 0.0, -1.0, -1.0, -1.0]].view()).is_ok());
        let e = layout.check(array![[0.5, 1.0, 5.0, -1.0, -1.0]].view()).unwrap_err().to_string();
        assert!(e.contains("row 0, token group `words`[0]: value 5"), "{e}");
        let e = layout.check(array![[0.5, 1.0, -1.0, 2.0, -1.0]].view()).unwrap_err().to_string();
        assert!(e.contains("before the padding"), "{e}");
        assert!(layout.check(array![[0.5, 1.0, 1.5, -1.0, -1.0]].view()).is_err());
        assert_eq!(token_ids([3.0, 0.0, PAD]).collect::<Vec<_>>(), [3, 0]);
    }

    #[test]
    fn multi_hot_rows_become_sorted_ids() {
        let dense = Dataset::new(
            vec!["a".into(), "b".into()],
            array![[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]],
            vec![4],
            Some(vec![1, 0]),
            None,
        )
        .unwrap();
        let tokens = multi_hot_to_tokens(&dense, "words").unwrap();
        assert_eq!(tokens.features(), array![[1.0, 3.0], [PAD, PAD]]);
        assert_eq!(tokens.layout().groups()[0].kind, FeatureKind::Tokens { max_len: 2, vocab: 4 });
        assert_eq!(tokens.labels(), Some(&[1, 0][..]));
        assert!(multi_hot_to_tokens(&tokens, "again").is_err());
    }

    /// Issue 22: files read apart take the widest list and the largest vocabulary; a model's
    /// vocabulary does not grow; other groups are refused by name.
    #[test]
    fn merge_takes_the_widest_lists_and_largest_vocabulary() {
        let other = FeatureLayout::new(vec![
            FeatureGroup { name: "x".into(), kind: FeatureKind::Dense { width: 2 } },
            FeatureGroup { name: "text".into(), kind: FeatureKind::Tokens { max_len: 5, vocab: 4 } },
        ])
        .unwrap();
        let merged = mixed().merge(&other).unwrap();
        assert_eq!(
            merged.groups()[1],
            FeatureGroup { name: "words".into(), kind: FeatureKind::Tokens { max_len: 5, vocab: 5 } }
        );
        assert_eq!(merged.width(), 7);
        let widened = other.widen_to(&mixed()).unwrap();
        assert_eq!(widened.groups()[1].kind, FeatureKind::Tokens { max_len: 5, vocab: 4 });
        let e = mixed().merge(&FeatureLayout::dense(5)).unwrap_err().to_string();
        assert!(
            e.contains("the feature groups differ: `features` (5 values) here, `x` (2 values), `words` (token ids)"),
            "{e}"
        );
        let e = FeatureLayout::dense(3).merge(&FeatureLayout::dense(4)).unwrap_err().to_string();
        assert!(e.contains("rows have 4 features, expected 3"), "{e}");
    }

    #[test]
    fn conform_pads_shorter_lists_and_names_unknown_ids() {
        let narrow = FeatureLayout::new(vec![
            FeatureGroup { name: "x".into(), kind: FeatureKind::Dense { width: 2 } },
            FeatureGroup { name: "words".into(), kind: FeatureKind::Tokens { max_len: 1, vocab: 5 } },
        ])
        .unwrap();
        let data =
            Dataset::new(vec!["a".into(), "b".into()], array![[0.5, 1.0, 4.0], [2.0, 3.0, PAD]], vec![3], None, None)
                .unwrap()
                .with_layout(narrow)
                .unwrap();
        let wide = data.clone().conform(&mixed()).unwrap();
        assert_eq!(wide.features(), array![[0.5, 1.0, 4.0, PAD, PAD], [2.0, 3.0, PAD, PAD, PAD]]);
        assert_eq!((wide.item_shape(), wide.layout()), (&[5][..], &mixed()));
        let small = FeatureLayout::new(vec![
            FeatureGroup { name: "x".into(), kind: FeatureKind::Dense { width: 2 } },
            FeatureGroup { name: "words".into(), kind: FeatureKind::Tokens { max_len: 3, vocab: 4 } },
        ])
        .unwrap();
        let e = data.conform(&small).unwrap_err().to_string();
        assert!(
            e.contains("row 0 (id `a`), token group `words`[0]: token id 4 is past the vocabulary of 4 ids"),
            "{e}"
        );
    }

    #[test]
    fn refuses_vocabularies_past_f32_exactness() {
        let big = FeatureGroup { name: "w".into(), kind: FeatureKind::Tokens { max_len: 1, vocab: MAX_VOCAB + 1 } };
        assert!(FeatureLayout::new(vec![big]).unwrap_err().to_string().contains("2^24"));
        let json = serde_json::to_string(&mixed()).unwrap();
        assert_eq!(serde_json::from_str::<FeatureLayout>(&json).unwrap(), mixed());
    }
}
