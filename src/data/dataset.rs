//! The [`Dataset`]: samples as ids + a dense feature matrix.

use super::{DataError, FeatureLayout};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use std::collections::HashMap;
use std::sync::Arc;

/// Row-major `f32` values owned elsewhere and shared with a [`Dataset`] without a copy: a numpy
/// array that the Python package keeps alive, a memory map. The values must not change while a
/// dataset holds the buffer.
///
/// ```
/// use nsl::data::{Dataset, FeatureBuffer};
/// use std::sync::Arc;
/// #[derive(Debug)]
/// struct Values(Vec<f32>);
/// impl FeatureBuffer for Values {
///     fn values(&self) -> &[f32] {
///         &self.0
///     }
/// }
/// let buffer = Arc::new(Values(vec![1.0, 2.0, 3.0, 4.0]));
/// let data = Dataset::from_shared(vec!["a".into(), "b".into()], buffer.clone(), (2, 2), vec![2], None, None)?;
/// assert_eq!(data.features().as_ptr(), buffer.0.as_ptr()); // the same memory, not a copy
/// assert_eq!(data.row(1).to_vec(), [3.0, 4.0]);
/// # Ok::<(), nsl::data::DataError>(())
/// ```
pub trait FeatureBuffer: Send + Sync + std::fmt::Debug {
    /// The values, row after row (`rows × cols` of them).
    fn values(&self) -> &[f32];
}

/// Where a dataset's feature matrix lives.
#[derive(Debug, Clone)]
enum Features {
    /// An array the dataset owns (what every reader makes).
    Owned(Array2<f32>),
    /// A shared buffer of `shape.0 × shape.1` values (checked in [`Dataset::from_shared`]).
    Shared { buffer: Arc<dyn FeatureBuffer>, shape: (usize, usize) },
}

impl Features {
    fn view(&self) -> ArrayView2<'_, f32> {
        match self {
            Features::Owned(a) => a.view(),
            // `from_shared` checked that the buffer holds exactly `shape.0 * shape.1` values, and
            // the buffer cannot change length behind a shared reference.
            Features::Shared { buffer, shape } => {
                ArrayView2::from_shape(*shape, buffer.values()).expect("buffer length checked in from_shared")
            }
        }
    }
}

impl PartialEq for Features {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

/// A set of samples held in memory: an id per row, a dense `f32` feature matrix (`n × d`, one row
/// per sample, each row the flattened item), the shape of one item (e.g. `[1433]` or `[1, 28, 28]`;
/// its product is `d`), and optionally an integer label per row with the class names they index.
///
/// The row is split into feature groups by a [`FeatureLayout`] (default: one dense group; see
/// [`Dataset::with_layout`] for token ids).
///
/// A `Dataset` is always valid: ids are unique, every feature is finite, the item shape matches the
/// width, and labels (if any) index into the class names (if any). [`Dataset::new`] checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    ids: Vec<String>,
    features: Features,
    item_shape: Vec<usize>,
    labels: Option<Vec<u32>>,
    class_names: Option<Vec<String>>,
    layout: FeatureLayout,
    index: HashMap<String, usize>,
    targets: Option<Targets>,
    weights: Option<Vec<f32>>,
}

/// The targets of the tasks whose targets are not one class index per sample (those are
/// [`Dataset::labels`]): one row per sample.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Targets {
    /// Multilabel: `[n, k]`, 1 where the sample has label `k`, else 0.
    MultiHot(Array2<f32>),
    /// Regression: `[n, k]` real values (`k` targets per sample).
    Values(Array2<f32>),
}

impl Targets {
    /// The `[n, k]` matrix.
    pub fn matrix(&self) -> ArrayView2<'_, f32> {
        match self {
            Targets::MultiHot(m) | Targets::Values(m) => m.view(),
        }
    }

    fn select(&self, rows: &[usize]) -> Targets {
        match self {
            Targets::MultiHot(m) => Targets::MultiHot(m.select(Axis(0), rows)),
            Targets::Values(m) => Targets::Values(m.select(Axis(0), rows)),
        }
    }
}

impl Dataset {
    /// Builds a dataset and checks it.
    ///
    /// # Errors
    /// [`DataError::Dataset`] naming the offending row and value when ids and rows differ in count,
    /// an id is empty or repeats, the rows have no features, a feature is NaN or infinite,
    /// `item_shape` does not multiply to the width,
    /// labels and rows differ in count, or a label is not below the number of class names.
    pub fn new(
        ids: Vec<String>,
        features: Array2<f32>,
        item_shape: Vec<usize>,
        labels: Option<Vec<u32>>,
        class_names: Option<Vec<String>>,
    ) -> Result<Self, DataError> {
        Self::checked(ids, Features::Owned(features), item_shape, labels, class_names)
    }

    /// Builds a dataset whose `rows × cols` feature matrix is `buffer`'s values, shared rather
    /// than copied (see [`FeatureBuffer`]), and checks it as [`Dataset::new`] does. Everything
    /// that reads the features ([`Dataset::features`], [`Dataset::row`], training) reads the
    /// buffer in place; [`Dataset::select`], [`Dataset::conform`] and [`Dataset::into_parts`]
    /// make owned copies.
    ///
    /// # Errors
    /// [`DataError::Dataset`] when the buffer does not hold `rows × cols` values, else as
    /// [`Dataset::new`].
    pub fn from_shared(
        ids: Vec<String>,
        buffer: Arc<dyn FeatureBuffer>,
        (rows, cols): (usize, usize),
        item_shape: Vec<usize>,
        labels: Option<Vec<u32>>,
        class_names: Option<Vec<String>>,
    ) -> Result<Self, DataError> {
        let len = buffer.values().len();
        if rows.checked_mul(cols) != Some(len) {
            return Err(DataError::Dataset(format!(
                "a buffer of {len} values cannot hold {rows} rows of {cols} features"
            )));
        }
        Self::checked(ids, Features::Shared { buffer, shape: (rows, cols) }, item_shape, labels, class_names)
    }

    /// Whether the features are a shared [`FeatureBuffer`] (not copied) rather than owned.
    pub fn shares_features(&self) -> bool {
        matches!(self.features, Features::Shared { .. })
    }

    fn checked(
        ids: Vec<String>,
        features: Features,
        item_shape: Vec<usize>,
        labels: Option<Vec<u32>>,
        class_names: Option<Vec<String>>,
    ) -> Result<Self, DataError> {
        let (n, d) = features.view().dim();
        if ids.len() != n {
            return Err(DataError::Dataset(format!("{} ids but {n} feature rows", ids.len())));
        }
        if item_shape.iter().product::<usize>() != d {
            return Err(DataError::Dataset(format!(
                "item shape {item_shape:?} holds {} values but rows have {d}",
                item_shape.iter().product::<usize>()
            )));
        }
        if n > 0 && d == 0 {
            return Err(DataError::Dataset(format!(
                "the {n} rows have no features (every feature list is empty, or no feature column was found)"
            )));
        }
        let mut index = HashMap::with_capacity(n);
        for (row, id) in ids.iter().enumerate() {
            // `pack-nbrs` pads missing neighbors with the empty id: an empty sample id would be
            // ambiguous with it (and names nothing in a graph).
            if id.is_empty() {
                return Err(DataError::Dataset(format!("row {row}: empty id (every sample needs a non-empty id)")));
            }
            if let Some(first) = index.insert(id.clone(), row) {
                return Err(DataError::Dataset(format!("duplicate id `{id}` in rows {first} and {row}")));
            }
        }
        for (row, values) in features.view().axis_iter(Axis(0)).enumerate() {
            if let Some(col) = values.iter().position(|v| !v.is_finite()) {
                return Err(DataError::Dataset(format!(
                    "row {row} (id `{}`), feature {col}: value {} is not finite",
                    ids[row], values[col]
                )));
            }
        }
        if let Some(labels) = &labels {
            if labels.len() != n {
                return Err(DataError::Dataset(format!("{} labels but {n} rows", labels.len())));
            }
            if let Some(names) = &class_names {
                if let Some(row) = labels.iter().position(|&l| l as usize >= names.len()) {
                    return Err(DataError::Dataset(format!(
                        "row {row}: label {} but only {} class names",
                        labels[row],
                        names.len()
                    )));
                }
            }
        }
        Ok(Dataset {
            ids,
            features,
            item_shape,
            labels,
            class_names,
            layout: FeatureLayout::dense(d),
            index,
            targets: None,
            weights: None,
        })
    }

    /// The dataset with multilabel or regression `targets` in place of its labels (which are
    /// dropped); `names` are the multilabel classes indexed by column, if known.
    ///
    /// # Errors
    /// [`DataError::Dataset`] naming the row: targets and rows differ in count, a value is not
    /// finite, a multi-hot value is not 0 or 1, or `names` do not match the width.
    pub fn with_targets(mut self, targets: Targets, names: Option<Vec<String>>) -> Result<Dataset, DataError> {
        let m = targets.matrix();
        if m.nrows() != self.len() {
            return Err(DataError::Dataset(format!("{} target rows but {} samples", m.nrows(), self.len())));
        }
        for (row, values) in m.axis_iter(Axis(0)).enumerate() {
            let bad = match &targets {
                Targets::MultiHot(_) => values.iter().position(|&v| v != 0.0 && v != 1.0),
                Targets::Values(_) => values.iter().position(|v| !v.is_finite()),
            };
            if let Some(col) = bad {
                return Err(DataError::Dataset(format!(
                    "row {row} (id `{}`), target {col}: value {} is not {}",
                    self.ids[row],
                    values[col],
                    if matches!(targets, Targets::MultiHot(_)) { "0 or 1" } else { "finite" }
                )));
            }
        }
        if let Some(names) = names.as_ref().filter(|n| n.len() != m.ncols()) {
            return Err(DataError::Dataset(format!("{} label names for {} target columns", names.len(), m.ncols())));
        }
        self.labels = None;
        self.class_names = names;
        self.targets = Some(targets);
        Ok(self)
    }

    /// The multilabel or regression targets, if set with [`Dataset::with_targets`].
    pub fn targets(&self) -> Option<&Targets> {
        self.targets.as_ref()
    }

    /// The dataset with a weight per sample (multiplied into every loss term).
    ///
    /// # Errors
    /// [`DataError::Dataset`] naming the row: weights and rows differ in count, or a weight is
    /// negative or not finite.
    pub fn with_weights(mut self, weights: Vec<f32>) -> Result<Dataset, DataError> {
        if weights.len() != self.len() {
            return Err(DataError::Dataset(format!("{} weights but {} samples", weights.len(), self.len())));
        }
        if let Some(row) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(DataError::Dataset(format!(
                "row {row} (id `{}`): weight {} is not a finite number ≥ 0",
                self.ids[row], weights[row]
            )));
        }
        self.weights = Some(weights);
        Ok(self)
    }

    /// The samples' weights, if set with [`Dataset::with_weights`].
    pub fn weights(&self) -> Option<&[f32]> {
        self.weights.as_deref()
    }

    /// The width of the targets: the number of classes for labels, else the targets' columns.
    pub fn target_width(&self) -> Option<usize> {
        match &self.targets {
            Some(t) => Some(t.matrix().ncols()),
            None => self.num_classes(),
        }
    }

    /// Returns the dataset with its feature row split into the groups of `layout`.
    ///
    /// # Errors
    /// [`DataError::Dataset`] when the layout's width differs from [`Dataset::dim`] or a token
    /// group's cell holds something other than ids in `0..vocab` then padding
    /// ([`FeatureLayout::check`]).
    pub fn with_layout(mut self, layout: FeatureLayout) -> Result<Dataset, DataError> {
        layout.check(self.features.view())?;
        self.layout = layout;
        Ok(self)
    }

    /// Returns the dataset with its rows laid out in `layout`, a layout with the same groups (as
    /// [`FeatureLayout::merge`] or [`FeatureLayout::widen_to`] give): dense groups are copied, each
    /// token group's ids are moved to the group's new columns and padded with [`PAD`] up to its
    /// `max_len`. The ids, labels, targets and weights are kept; the item shape becomes the new
    /// width.
    ///
    /// This is how files read apart are fed to one model: each file's token groups are as wide as
    /// its own longest list, the model's as wide as the widest.
    ///
    /// # Errors
    /// [`DataError::Dataset`] when the groups differ ([`FeatureLayout::merge`]'s message), a row
    /// holds more ids than the group's `max_len`, or an id is not below the group's vocabulary
    /// (naming the row, the sample id, the group and the id).
    ///
    /// [`PAD`]: super::PAD
    pub fn conform(self, layout: &FeatureLayout) -> Result<Dataset, DataError> {
        use super::layout::{token_ids, FeatureKind};
        if &self.layout == layout {
            return Ok(self);
        }
        // Checks that the groups correspond (and gives their message when they do not).
        layout.merge(&self.layout)?;
        let mut features = Array2::from_elem((self.len(), layout.width()), super::PAD);
        for ((to, group), (from, own)) in layout.offsets().zip(self.layout.offsets()) {
            match (group.kind, own.kind) {
                (FeatureKind::Tokens { max_len, vocab }, FeatureKind::Tokens { max_len: own_len, .. }) => {
                    for (row, (source, mut target)) in
                        self.features.view().rows().into_iter().zip(features.rows_mut()).enumerate()
                    {
                        let cell = source.iter().skip(from).take(own_len).copied();
                        for (k, id) in token_ids(cell).enumerate() {
                            if k >= max_len {
                                return Err(DataError::Dataset(format!(
                                    "row {row} (id `{}`), token group `{}`: more than the {max_len} ids a row of \
                                     the model holds",
                                    self.ids[row], own.name
                                )));
                            }
                            if id as usize >= vocab {
                                return Err(DataError::Dataset(format!(
                                    "row {row} (id `{}`), token group `{}`[{k}]: token id {id} is past the \
                                     vocabulary of {vocab} ids (0..{vocab}) it is read into (a trained model has one \
                                     embedding per id: train with --vocab-size, the tokenizer's vocabulary size, \
                                     so that every id has one)",
                                    self.ids[row], own.name
                                )));
                            }
                            target[to + k] = id as f32;
                        }
                    }
                }
                _ => {
                    let w = group.kind.width();
                    features
                        .slice_mut(ndarray::s![.., to..to + w])
                        .assign(&self.features.view().slice(ndarray::s![.., from..from + w]));
                }
            }
        }
        let width = features.ncols();
        Ok(Dataset { features: Features::Owned(features), item_shape: vec![width], layout: layout.clone(), ..self })
    }

    /// The feature groups of a row.
    pub fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Width of a feature row (the product of [`Dataset::item_shape`]).
    pub fn dim(&self) -> usize {
        self.features.view().ncols()
    }

    /// Sample ids, one per row.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The `n × d` feature matrix.
    pub fn features(&self) -> ArrayView2<'_, f32> {
        self.features.view()
    }

    /// The features of row `row`.
    ///
    /// # Panics
    /// If `row >= len()`.
    pub fn row(&self, row: usize) -> ArrayView1<'_, f32> {
        self.features.view().index_axis_move(Axis(0), row)
    }

    /// The shape of one item, e.g. `[1433]` or `[1, 28, 28]`.
    pub fn item_shape(&self) -> &[usize] {
        &self.item_shape
    }

    /// Labels, one per row, if the data had them.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// Class names indexed by label, if known.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// Number of classes: the class names if known, else one more than the largest label.
    pub fn num_classes(&self) -> Option<usize> {
        match (&self.class_names, &self.labels) {
            (Some(names), _) => Some(names.len()),
            (None, Some(labels)) => Some(labels.iter().max().map_or(0, |&m| m as usize + 1)),
            (None, None) => None,
        }
    }

    /// The row of sample `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// A new dataset with the given rows, in the given order.
    ///
    /// # Errors
    /// [`DataError::Dataset`] if a row is out of range or repeats.
    pub fn select(&self, rows: &[usize]) -> Result<Dataset, DataError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(DataError::Dataset(format!("row {bad} out of range for {} samples", self.len())));
        }
        let mut out = Dataset::new(
            rows.iter().map(|&r| self.ids[r].clone()).collect(),
            self.features.view().select(Axis(0), rows),
            self.item_shape.clone(),
            self.labels.as_ref().map(|l| rows.iter().map(|&r| l[r]).collect()),
            self.class_names.clone(),
        )?;
        out.targets = self.targets.as_ref().map(|t| t.select(rows));
        out.weights = self.weights.as_ref().map(|w| rows.iter().map(|&r| w[r]).collect());
        out.layout = self.layout.clone();
        Ok(out)
    }

    /// Returns the dataset with a different item shape of the same size (e.g. `[784]` → `[1, 28, 28]`).
    ///
    /// # Errors
    /// [`DataError::Dataset`] if the new shape's product differs from [`Dataset::dim`].
    pub fn with_item_shape(mut self, item_shape: Vec<usize>) -> Result<Dataset, DataError> {
        if item_shape.iter().product::<usize>() != self.dim() {
            return Err(DataError::Dataset(format!("item shape {item_shape:?} does not hold {} values", self.dim())));
        }
        self.item_shape = item_shape;
        Ok(self)
    }

    /// Splits the dataset into its parts: `(ids, features, item_shape, labels, class_names)` (the
    /// layout is dropped: read it with [`Dataset::layout`] first). Shared features are copied.
    #[allow(clippy::type_complexity)] // a plain tuple reads best at the destructuring call sites
    pub fn into_parts(self) -> (Vec<String>, Array2<f32>, Vec<usize>, Option<Vec<u32>>, Option<Vec<String>>) {
        let features = match self.features {
            Features::Owned(a) => a,
            shared @ Features::Shared { .. } => shared.view().to_owned(),
        };
        (self.ids, features, self.item_shape, self.labels, self.class_names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn tiny() -> Dataset {
        Dataset::new(
            vec!["a".into(), "b".into(), "c".into()],
            array![[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
            vec![2],
            Some(vec![0, 1, 0]),
            Some(vec!["x".into(), "y".into()]),
        )
        .unwrap()
    }

    #[test]
    fn rejects_duplicates_nan_and_bad_labels() {
        let e = Dataset::new(vec!["a".into(), "a".into()], Array2::zeros((2, 1)), vec![1], None, None);
        assert!(e.unwrap_err().to_string().contains("duplicate id `a`"));
        let e = Dataset::new(vec!["a".into()], array![[f32::NAN]], vec![1], None, None);
        assert!(e.unwrap_err().to_string().contains("not finite"));
        let e = Dataset::new(vec!["a".into()], array![[1.0]], vec![1], Some(vec![2]), Some(vec!["x".into()]));
        assert!(e.unwrap_err().to_string().contains("label 2"));
        let e = Dataset::new(vec!["a".into()], array![[1.0, 2.0]], vec![3], None, None);
        assert!(e.is_err());
    }

    #[derive(Debug)]
    struct Values(Vec<f32>);
    impl FeatureBuffer for Values {
        fn values(&self) -> &[f32] {
            &self.0
        }
    }

    #[test]
    fn shared_features_are_read_in_place_and_checked() {
        let buffer = Arc::new(Values(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
        let ids = || vec!["a".to_string(), "b".into(), "c".into()];
        let d = Dataset::from_shared(ids(), buffer.clone(), (3, 2), vec![2], Some(vec![0, 1, 0]), None).unwrap();
        assert!(d.shares_features());
        assert_eq!(d.features().as_ptr(), buffer.0.as_ptr());
        assert_eq!(d, tiny_unnamed());
        assert_eq!(d.select(&[2]).unwrap().row(0).to_vec(), vec![4.0, 5.0]);
        assert!(!d.select(&[2]).unwrap().shares_features());
        assert_eq!(d.clone().into_parts().1, tiny_unnamed().into_parts().1);
        let e = Dataset::from_shared(ids(), buffer.clone(), (2, 2), vec![2], None, None).unwrap_err().to_string();
        assert!(e.contains("6 values cannot hold 2 rows of 2"), "{e}");
        let nan = Arc::new(Values(vec![0.0, 1.0, f32::INFINITY, 3.0]));
        let e = Dataset::from_shared(ids()[..2].to_vec(), nan, (2, 2), vec![2], None, None).unwrap_err().to_string();
        assert!(e.contains("row 1 (id `b`), feature 0: value inf is not finite"), "{e}");
    }

    fn tiny_unnamed() -> Dataset {
        let (ids, x, shape, labels, _) = tiny().into_parts();
        Dataset::new(ids, x, shape, labels, None).unwrap()
    }

    #[test]
    fn select_keeps_rows_and_labels() {
        let d = tiny().select(&[2, 0]).unwrap();
        assert_eq!(d.ids(), ["c", "a"]);
        assert_eq!(d.row(0).to_vec(), vec![4.0, 5.0]);
        assert_eq!(d.labels(), Some(&[0, 0][..]));
        assert_eq!(d.position("a"), Some(1));
        assert_eq!(d.num_classes(), Some(2));
    }

    #[test]
    fn targets_and_weights_follow_select() {
        let d = tiny()
            .with_targets(Targets::Values(array![[1.0], [2.0], [3.0]]), None)
            .unwrap()
            .with_weights(vec![0.5, 1.0, 2.0])
            .unwrap();
        assert_eq!(d.labels(), None);
        let s = d.select(&[2, 1]).unwrap();
        assert_eq!(s.targets(), Some(&Targets::Values(array![[3.0], [2.0]])));
        assert_eq!(s.weights(), Some(&[2.0, 1.0][..]));
        let e = tiny().with_weights(vec![1.0, -1.0, 1.0]).unwrap_err().to_string();
        assert!(e.contains("row 1 (id `b`)"), "{e}");
        let e = tiny().with_targets(Targets::MultiHot(array![[1.0], [0.5], [0.0]]), None).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("0 or 1"), "{e}");
    }
}
