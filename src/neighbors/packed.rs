//! [`PackedParts`]: packed Parquet tables (`nsl pack-nbrs`, `scripts/spark/pack_nbrs.py`) read as
//! a stream of training batches through a seeded shuffle buffer.
//!
//! # How it is computed
//! [`PackedParts::open`] takes one packed Parquet file or a directory of parts (every `*.parquet`
//! file not starting with `.` or `_`, in sorted name order, as Spark writes them), reads only the
//! footers and the `label` column, and checks that every part has the same packed columns. An epoch
//! ([`PackedParts::epoch`]) then reads the parts again, record batch by record batch (1,024 rows),
//! keeping only the columns training needs (the neighbors' ids are not read), and passes the rows
//! through a shuffle buffer of [`PackedConfig::buffer`] rows:
//!
//! - while the buffer is not full, an arriving row takes the next free slot;
//! - once it is full, each arriving row draws a slot `j` uniformly (`random_range(0..buffer)`),
//!   the row in slot `j` is emitted and the new row takes its place;
//! - at the end of the input, the buffer's slots are emitted in the order of a slot permutation
//!   `order`, shuffled first (`order.shuffle(rng)`, Fisher–Yates). `order` is kept from one epoch
//!   to the next and only reset to `0..rows in the buffer` when that count changes.
//!
//! With a buffer at least as large as the table, nothing is emitted before the end, the slots hold
//! the rows in file order, and the emitted order is the slot permutation: each epoch shuffles the
//! previous epoch's permutation with the same generator — exactly what the in-memory trainer does
//! with its row order, so the same seed gives the same batches, and
//! [`Trainer::fit`](crate::train::Trainer::fit) on [`TrainData::Packed`](crate::train::TrainData::Packed) the same model as
//! [`Trainer::fit`](crate::train::Trainer::fit) with [`Trainer::with_graph`](crate::train::Trainer::with_graph)
//! on the unpacked samples. With a smaller buffer, rows leave the buffer at random but no earlier
//! than `buffer` rows after they came in: a local shuffle, as `tf.data.Dataset.shuffle`, so tables
//! written in a meaningful order (sorted by label) should be written in several parts with
//! [`PackedConfig::shuffle_parts`] on, or shuffled once when packed.
//!
//! Memory is the buffer (`buffer × (1 + K) × d` floats for `K` neighbor columns kept) plus one
//! record batch, whatever the table's size.
//!
//! # How it differs from NSL
//! NSL trains on packed `tf.train.Example` records through `tf.data` (`shuffle(buffer)` then
//! `batch`), whose buffer draws from TensorFlow's generator; here the generator is the trainer's
//! seeded ChaCha8 stream, and the end-of-input drain is the in-memory trainer's shuffle, so that a
//! large buffer reproduces in-memory training. NSL parses every neighbor column; here only the
//! first `max_neighbors` are read.

use super::NeighborTable;
use crate::data::{
    cast_to, is_float_list, is_integer, list_spans, parse_class_names, parse_item_shape, reject_null_elements,
    reject_nulls, DataError, Dataset, CLASS_NAMES_KEY, ITEM_SHAPE_KEY,
};
use crate::graph::packed;
use crate::io::Location;
use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Int64Type, Schema};
use ndarray::Array2;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per record batch read from a part.
const READ_ROWS: usize = 1024;

/// Salt of the part order's generator (a stream of its own: the rows' shuffle is the same with
/// or without it).
const PART_SALT: u64 = 0x7061_7274_7300_0000;

/// How a packed table is streamed. `Default`: a buffer of 10,000 rows, parts in a seeded order.
///
/// ```
/// use nsl::neighbors::PackedConfig;
/// let config = PackedConfig::default();
/// assert_eq!((config.buffer, config.shuffle_parts), (10_000, true));
/// assert!(config.validate().is_ok());
/// assert!(PackedConfig { buffer: 0, ..config }.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackedConfig {
    /// Rows of the shuffle buffer (see the [module docs](self)). At least the table's row count
    /// reproduces in-memory training; smaller bounds the memory. Default 10,000 (`tf.data`
    /// pipelines commonly use 10,000 too). Must be at least 1.
    pub buffer: usize,
    /// Read the parts of a directory in a seeded order drawn anew every epoch (from the seed and
    /// the epoch, independently of the rows' shuffle), instead of their sorted names. Ignored
    /// when training does not shuffle. Default `true`.
    pub shuffle_parts: bool,
}

impl Default for PackedConfig {
    fn default() -> Self {
        PackedConfig { buffer: 10_000, shuffle_parts: true }
    }
}

impl PackedConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`](crate::config::ConfigError) for a buffer of 0 rows.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        if self.buffer == 0 {
            return Err(crate::config::ConfigError::invalid("shuffle buffer", 0, "at least 1 row"));
        }
        Ok(())
    }
}

/// A packed Parquet table (one file or a directory of parts), opened and checked: see the
/// [module docs](self).
///
/// The table has NSL's `pack_nbrs` columns as [`pack_neighbors`](super::pack_neighbors) writes
/// them: `id` (utf8), `features` (a `list`, `large_list` or `fixed_size_list` of `float32` or
/// `float64`), optionally `label` (an integer type), `NL_num_nbrs` (an integer type) and, for
/// `j < K`, `NL_nbr_{j}_features` and `NL_nbr_{j}_weight` (`float32`/`float64`). Other columns
/// (`NL_nbr_{j}_id`, anything else) are ignored.
#[derive(Debug, Clone)]
pub struct PackedParts {
    files: Vec<PathBuf>,
    rows: usize,
    dim: usize,
    neighbor_columns: usize,
    item_shape: Vec<usize>,
    class_names: Option<Vec<String>>,
    /// The largest label, if the table has labels.
    max_label: Option<u32>,
    labels: bool,
}

/// One training batch of a packed table: the centers and their neighbors.
#[derive(Debug)]
pub struct PackedBatch {
    /// The centers (ids, features, labels if the table has them), in emitted order.
    pub samples: Dataset,
    /// Their neighbors (row `i` of `samples` is sample `i` of the table; the neighbors' ids are
    /// not read and are empty).
    pub neighbors: NeighborTable,
}

/// The column layout of one part, checked against the first part's.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    labels: bool,
    neighbor_columns: usize,
    /// `Some(d)` for a `fixed_size_list` features column.
    fixed_width: Option<usize>,
}

impl PackedParts {
    /// Opens `path`: a packed Parquet file, or a directory of them (its `*.parquet` files not
    /// starting with `.` or `_`, sorted by name; other files such as Spark's `_SUCCESS` are
    /// skipped). Reads each part's footer and its `label` column (the largest label sizes the
    /// model; class names come from the metadata `nsl.class_names` when present).
    ///
    /// # Errors
    /// [`DataError`] naming the file (and the row and column where there is one): a directory with
    /// no Parquet part, an unreadable file, a table that is not packed (no `NL_num_nbrs`), a missing
    /// column or one of the wrong type, parts whose columns differ (naming both files), a null or
    /// negative label, no row at all.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let files = part_files(path)?;
        let mut first: Option<(PathBuf, Layout)> = None;
        let mut parts = PackedParts {
            files: files.clone(),
            rows: 0,
            dim: 0,
            neighbor_columns: 0,
            item_shape: Vec::new(),
            class_names: None,
            max_label: None,
            labels: false,
        };
        let mut item_shape = None;
        for file in &files {
            let builder = open_builder(file)?;
            let schema = builder.schema().clone();
            let layout = check_schema(file, &schema)?;
            match &first {
                None => {
                    let metadata = schema.metadata();
                    item_shape = metadata.get(ITEM_SHAPE_KEY).map(|v| parse_item_shape(file, v)).transpose()?;
                    parts.class_names =
                        metadata.get(CLASS_NAMES_KEY).map(|v| parse_class_names(file, v)).transpose()?;
                    first = Some((file.clone(), layout.clone()));
                }
                Some((first_file, expected)) => {
                    if let Some(difference) = layout_difference(expected, &layout) {
                        return Err(DataError::invalid(
                            file,
                            Location::File,
                            format!(
                                "this part's columns differ from those of the first part {}: {difference}",
                                first_file.display()
                            ),
                        ));
                    }
                }
            }
            parts.rows += usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
            if layout.labels {
                let max = max_label(file, builder)?;
                parts.max_label = parts.max_label.max(max);
            }
        }
        let Some((first_file, layout)) = first else {
            return Err(DataError::invalid(path, Location::File, "no Parquet part"));
        };
        parts.labels = layout.labels;
        parts.neighbor_columns = layout.neighbor_columns;
        if parts.rows == 0 {
            return Err(DataError::invalid(path, Location::File, "the packed table has no row"));
        }
        parts.dim = match layout.fixed_width {
            Some(d) => d,
            None => first_width(&parts.files)?,
        };
        if parts.dim == 0 {
            return Err(DataError::invalid(
                &first_file,
                Location::Column("features".into()),
                "the rows have no feature",
            ));
        }
        parts.item_shape = match item_shape {
            Some(shape) if shape.iter().product::<usize>() == parts.dim => shape,
            Some(shape) => {
                return Err(DataError::invalid(
                    &first_file,
                    Location::File,
                    format!(
                        "metadata {ITEM_SHAPE_KEY} {shape:?} does not hold the {} feature values per row",
                        parts.dim
                    ),
                ))
            }
            None => vec![parts.dim],
        };
        if let (Some(names), Some(max)) = (&parts.class_names, parts.max_label) {
            if max as usize >= names.len() {
                return Err(DataError::invalid(
                    &first_file,
                    Location::Column("label".into()),
                    format!("label {max} but only {} class names in {CLASS_NAMES_KEY}", names.len()),
                ));
            }
        }
        Ok(parts)
    }

    /// The part files, in sorted order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Rows of all parts (from the footers).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Width of a feature row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The shape of one item: the metadata `nsl.item_shape` when present, else `[dim]`.
    pub fn item_shape(&self) -> &[usize] {
        &self.item_shape
    }

    /// Neighbor columns `K` of the table (`NL_nbr_{j}_*` for `j < K`).
    pub fn neighbor_columns(&self) -> usize {
        self.neighbor_columns
    }

    /// Whether the table has a `label` column.
    pub fn has_labels(&self) -> bool {
        self.labels
    }

    /// Class names from the metadata `nsl.class_names`, if present.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// The largest label, if the table has labels.
    pub fn max_label(&self) -> Option<u32> {
        self.max_label
    }

    /// Number of classes: the class names if known, else one more than the largest label.
    pub fn num_classes(&self) -> Option<usize> {
        match (&self.class_names, self.max_label) {
            (Some(names), _) => Some(names.len()),
            (None, Some(max)) => Some(max as usize + 1),
            (None, None) => None,
        }
    }

    /// Starts an epoch: the parts are read again (in a seeded order for `epoch` when
    /// `config.shuffle_parts` and `shuffle` are set, else sorted) and their rows go through the
    /// shuffle buffer, whose draws come from `shuffle`'s generator and whose end-of-input
    /// permutation is `shuffle`'s `order` (see the [module docs](self)); without `shuffle` the rows
    /// come in file order. Each sample keeps its first `max_neighbors` neighbors (the packed
    /// columns are best first).
    pub fn epoch<'p>(
        &'p self,
        config: &PackedConfig,
        max_neighbors: usize,
        seed: u64,
        epoch: usize,
        shuffle: Option<(&'p mut Vec<usize>, &'p mut ChaCha8Rng)>,
    ) -> PackedEpoch<'p> {
        let mut part_order: Vec<usize> = (0..self.files.len()).collect();
        if shuffle.is_some() && config.shuffle_parts && part_order.len() > 1 {
            part_order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ PART_SALT ^ epoch as u64));
        }
        let k = self.neighbor_columns.min(max_neighbors);
        PackedEpoch {
            parts: self,
            part_order,
            next_part: 0,
            reader: None,
            max_neighbors,
            buffer_rows: config.buffer.max(1),
            shuffle,
            decoded: Rows::new(self.dim, k),
            buffer: Rows::new(self.dim, k),
            out: Rows::new(self.dim, k),
            drain: None,
        }
    }
}

/// One epoch over a [`PackedParts`] (see [`PackedParts::epoch`]): batches in the shuffle buffer's
/// order.
pub struct PackedEpoch<'p> {
    parts: &'p PackedParts,
    part_order: Vec<usize>,
    next_part: usize,
    /// The open part, its path and the rows read from it so far.
    reader: Option<(ParquetRecordBatchReader, &'p Path, usize)>,
    max_neighbors: usize,
    buffer_rows: usize,
    shuffle: Option<(&'p mut Vec<usize>, &'p mut ChaCha8Rng)>,
    decoded: Rows,
    buffer: Rows,
    /// Emitted rows not yet batched.
    out: Rows,
    /// Once the input is exhausted: the next position of the buffer's permutation to emit.
    drain: Option<usize>,
}

impl std::fmt::Debug for PackedEpoch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedEpoch").field("next_part", &self.next_part).finish_non_exhaustive()
    }
}

impl PackedEpoch<'_> {
    /// The next batch of up to `size` rows (the last one of the epoch may be smaller), or `None`
    /// at the end of the epoch.
    ///
    /// # Errors
    /// [`DataError`] naming the file, row and column of a bad value: a null, a feature list of
    /// another length than the table's, a NaN or infinite feature or weight, an `NL_num_nbrs`
    /// outside `0..=K`, a negative label, an empty or repeated id within the batch.
    pub fn next_batch(&mut self, size: usize) -> Result<Option<PackedBatch>, DataError> {
        let size = size.max(1);
        loop {
            if self.out.len() >= size {
                return self.cut(size).map(Some);
            }
            if let Some(position) = self.drain {
                let order_len = self.shuffle.as_ref().map_or(0, |(order, _)| order.len());
                if position >= order_len {
                    return match self.out.len() {
                        0 => Ok(None),
                        n => self.cut(n).map(Some),
                    };
                }
                let end = (position + size - self.out.len()).min(order_len);
                if let Some((order, _)) = &self.shuffle {
                    for &slot in &order[position..end] {
                        self.out.push_from(&self.buffer, slot);
                    }
                }
                self.drain = Some(end);
                continue;
            }
            if self.read()? {
                let decoded = std::mem::replace(&mut self.decoded, Rows::new(0, 0));
                for i in 0..decoded.len() {
                    self.feed(&decoded, i);
                }
                self.decoded = decoded;
                continue;
            }
            // The input is exhausted: shuffle the buffer's permutation and drain it.
            if let Some((order, rng)) = self.shuffle.as_mut() {
                if order.len() != self.buffer.len() {
                    **order = (0..self.buffer.len()).collect();
                }
                order.shuffle(&mut **rng);
            }
            self.drain = Some(0);
        }
    }

    /// Passes decoded row `i` through the shuffle buffer.
    fn feed(&mut self, decoded: &Rows, i: usize) {
        match self.shuffle.as_mut() {
            None => self.out.push_from(decoded, i),
            Some(_) if self.buffer.len() < self.buffer_rows => self.buffer.push_from(decoded, i),
            Some((_, rng)) => {
                let slot = rng.random_range(0..self.buffer_rows);
                self.out.push_from(&self.buffer, slot);
                self.buffer.set_from(slot, decoded, i);
            }
        }
    }

    /// Reads the next record batch into `self.decoded`; false at the end of the last part.
    fn read(&mut self) -> Result<bool, DataError> {
        loop {
            if self.reader.is_none() {
                let Some(&part) = self.part_order.get(self.next_part) else { return Ok(false) };
                self.next_part += 1;
                let path = self.parts.files[part].as_path();
                self.reader = Some((open_reader(path, self.decoded.k)?, path, 0));
            }
            let Some((reader, path, row0)) = self.reader.as_mut() else { continue };
            match reader.next() {
                None => self.reader = None,
                Some(batch) => {
                    let batch = batch.map_err(|e| {
                        DataError::invalid(*path, Location::Row(*row0), format!("cannot read the table: {e}"))
                    })?;
                    self.decoded.clear();
                    decode(path, *row0, &batch, self.parts, &mut self.decoded)?;
                    *row0 += batch.num_rows();
                    return Ok(true);
                }
            }
        }
    }

    /// The first `n` emitted rows as a batch.
    fn cut(&mut self, n: usize) -> Result<PackedBatch, DataError> {
        let (d, k) = (self.out.d, self.out.k);
        let stride = (k + 1) * d;
        let mut centers = Vec::with_capacity(n * d);
        let mut counts = Vec::with_capacity(n);
        let (mut neighbor_features, mut weights) = (Vec::new(), Vec::new());
        for r in 0..n {
            let row = &self.out.features[r * stride..(r + 1) * stride];
            centers.extend_from_slice(&row[..d]);
            let count = self.out.counts[r] as usize;
            counts.push(count);
            neighbor_features.extend_from_slice(&row[d..d + count * d]);
            weights.extend_from_slice(&self.out.weights[r * k..r * k + count]);
        }
        let ids: Vec<String> = self.out.ids.drain(..n).collect();
        let labels = self.parts.labels.then(|| self.out.labels.drain(..n).collect());
        self.out.remove_front(n);
        let centers = Array2::from_shape_vec((n, d), centers).map_err(|e| DataError::Dataset(e.to_string()))?;
        let samples =
            Dataset::new(ids, centers, self.parts.item_shape.clone(), labels, self.parts.class_names.clone())?;
        let pairs = weights.len();
        let neighbor_features =
            Array2::from_shape_vec((pairs, d), neighbor_features).map_err(|e| DataError::Dataset(e.to_string()))?;
        let neighbors = NeighborTable::from_lists(&counts, neighbor_features, weights, self.max_neighbors)?;
        Ok(PackedBatch { samples, neighbors })
    }
}

/// Rows of a packed table in fixed-size slots: per row its id, label, neighbor count, `k`
/// weights and `(1 + k) × d` features (the center's, then each neighbor's, zeros past the count).
#[derive(Debug)]
struct Rows {
    d: usize,
    k: usize,
    ids: Vec<String>,
    labels: Vec<u32>,
    counts: Vec<u32>,
    weights: Vec<f32>,
    features: Vec<f32>,
}

impl Rows {
    fn new(d: usize, k: usize) -> Self {
        Rows {
            d,
            k,
            ids: Vec::new(),
            labels: Vec::new(),
            counts: Vec::new(),
            weights: Vec::new(),
            features: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.counts.len()
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.labels.clear();
        self.counts.clear();
        self.weights.clear();
        self.features.clear();
    }

    fn stride(&self) -> usize {
        (self.k + 1) * self.d
    }

    /// Appends row `i` of `src` (of the same `d` and `k`).
    fn push_from(&mut self, src: &Rows, i: usize) {
        let (s, k) = (self.stride(), self.k);
        self.ids.push(src.ids[i].clone());
        if let Some(&l) = src.labels.get(i) {
            self.labels.push(l);
        }
        self.counts.push(src.counts[i]);
        self.weights.extend_from_slice(&src.weights[i * k..(i + 1) * k]);
        self.features.extend_from_slice(&src.features[i * s..(i + 1) * s]);
    }

    /// Overwrites slot `slot` with row `i` of `src`.
    fn set_from(&mut self, slot: usize, src: &Rows, i: usize) {
        let (s, k) = (self.stride(), self.k);
        self.ids[slot].clone_from(&src.ids[i]);
        if let (Some(l), Some(&from)) = (self.labels.get_mut(slot), src.labels.get(i)) {
            *l = from;
        }
        self.counts[slot] = src.counts[i];
        self.weights[slot * k..(slot + 1) * k].copy_from_slice(&src.weights[i * k..(i + 1) * k]);
        self.features[slot * s..(slot + 1) * s].copy_from_slice(&src.features[i * s..(i + 1) * s]);
    }

    /// Drops the first `n` rows' counts, weights and features (ids and labels are drained by the
    /// caller).
    fn remove_front(&mut self, n: usize) {
        let s = self.stride();
        self.counts.drain(..n);
        self.weights.drain(..n * self.k);
        self.features.drain(..n * s);
    }
}

/// The part files of `path`: itself, or a directory's Parquet parts in sorted order.
fn part_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| DataError::io(path, e))? {
        let entry = entry.map_err(|e| DataError::io(path, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let part = name.ends_with(".parquet") || name.ends_with(".pq");
        if part && !name.starts_with('.') && !name.starts_with('_') && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::invalid(
            path,
            Location::File,
            "the directory holds no Parquet part (`*.parquet` files not starting with `.` or `_`)",
        ));
    }
    Ok(files)
}

fn open_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, DataError> {
    crate::data::open_parquet(path)
}

/// A reader of the columns training needs: id, features, label, the count and `k` neighbors'
/// features and weights.
fn open_reader(path: &Path, k: usize) -> Result<ParquetRecordBatchReader, DataError> {
    let builder = open_builder(path)?;
    let mut needed = vec!["id".to_owned(), "features".to_owned(), "label".to_owned(), packed::NUM_NEIGHBORS.to_owned()];
    for j in 0..k {
        needed.push(packed::neighbor_features(j));
        needed.push(packed::neighbor_weight(j));
    }
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| needed.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(READ_ROWS)
        .build()
        .map_err(|e| DataError::invalid(path, Location::File, format!("cannot read the table: {e}")))
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64)
}

/// Checks the packed columns of a part's schema.
fn check_schema(path: &Path, schema: &Schema) -> Result<Layout, DataError> {
    let column = |name: &str| schema.field_with_name(name).ok();
    let present = || schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    if column(packed::NUM_NEIGHBORS).is_none() {
        return Err(DataError::invalid(
            path,
            Location::File,
            format!(
                "not a packed table: no column `NL_num_nbrs` (columns: {}); write one with `nsl pack-nbrs --samples … \
                 --graph … --output packed.parquet` or scripts/spark/pack_nbrs.py",
                present()
            ),
        ));
    }
    let require = |name: &str, accept: fn(&DataType) -> bool, expected: &str| -> Result<(), DataError> {
        match column(name) {
            None => Err(DataError::invalid(
                path,
                Location::Column(name.into()),
                format!("missing column (columns: {})", present()),
            )),
            Some(f) if !accept(f.data_type()) => Err(DataError::invalid(
                path,
                Location::Column(name.into()),
                format!("type {} (expected {expected})", f.data_type()),
            )),
            Some(_) => Ok(()),
        }
    };
    require("id", |t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View), "utf8")?;
    require("features", is_float_list, "a list of float32 or float64")?;
    require(packed::NUM_NEIGHBORS, is_integer, "an integer type")?;
    let labels = column("label").is_some();
    if labels {
        require("label", is_integer, "an integer type")?;
    }
    let mut k = 0;
    while column(&packed::neighbor_weight(k)).is_some() || column(&packed::neighbor_features(k)).is_some() {
        require(&packed::neighbor_weight(k), is_float, "float32 or float64")?;
        require(&packed::neighbor_features(k), is_float_list, "a list of float32 or float64")?;
        k += 1;
    }
    let fixed_width = match column("features").map(|f| f.data_type()) {
        Some(DataType::FixedSizeList(_, n)) => usize::try_from(*n).ok(),
        _ => None,
    };
    Ok(Layout { labels, neighbor_columns: k, fixed_width })
}

/// How two parts' layouts differ, if they do.
fn layout_difference(a: &Layout, b: &Layout) -> Option<String> {
    if a.labels != b.labels {
        let has = |l: bool| if l { "a `label` column" } else { "no `label` column" };
        return Some(format!("the first part has {}, this one {}", has(a.labels), has(b.labels)));
    }
    if a.neighbor_columns != b.neighbor_columns {
        return Some(format!(
            "{} neighbor columns (NL_nbr_0_… to NL_nbr_{}_…) against {}",
            b.neighbor_columns,
            b.neighbor_columns.saturating_sub(1),
            a.neighbor_columns
        ));
    }
    match (a.fixed_width, b.fixed_width) {
        (Some(x), Some(y)) if x != y => Some(format!("{y} features per row against {x}")),
        _ => None,
    }
}

/// The largest label of a part, checking for nulls and negative values.
fn max_label(path: &Path, builder: ParquetRecordBatchReaderBuilder<File>) -> Result<Option<u32>, DataError> {
    let root =
        builder.schema().index_of("label").map_err(|e| DataError::invalid(path, Location::File, e.to_string()))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [root]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * READ_ROWS)
        .build()
        .map_err(|e| DataError::invalid(path, Location::File, format!("cannot read the table: {e}")))?;
    let (mut max, mut row0) = (None, 0);
    for batch in reader {
        let batch = batch.map_err(|e| DataError::invalid(path, Location::Row(row0), format!("cannot read: {e}")))?;
        let labels = labels_of(path, row0, batch.column(0))?;
        max = max.max(labels.iter().copied().max());
        row0 += batch.num_rows();
    }
    Ok(max)
}

/// An integer column as `u32` labels.
fn labels_of(path: &Path, row0: usize, array: &ArrayRef) -> Result<Vec<u32>, DataError> {
    let values = integers(path, row0, "label", array)?;
    values
        .iter()
        .enumerate()
        .map(|(r, &v)| {
            u32::try_from(v).map_err(|_| {
                DataError::invalid(
                    path,
                    Location::RowColumn(row0 + r, "label".into()),
                    format!("label {v} (expected 0 or more)"),
                )
            })
        })
        .collect()
}

/// An integer column as `i64`s, rejecting nulls.
fn integers(path: &Path, row0: usize, name: &str, array: &ArrayRef) -> Result<Vec<i64>, DataError> {
    reject_nulls(path, row0, name, array.as_ref())?;
    let values = cast_to(path, name, array.as_ref(), &DataType::Int64)?;
    Ok(values.as_primitive::<Int64Type>().values().to_vec())
}

/// A float column as `f32`s, rejecting nulls and non-finite values.
fn floats(path: &Path, row0: usize, name: &str, array: &ArrayRef) -> Result<Vec<f32>, DataError> {
    reject_nulls(path, row0, name, array.as_ref())?;
    let values = cast_to(path, name, array.as_ref(), &DataType::Float32)?;
    let values = values.as_primitive::<Float32Type>().values().to_vec();
    if let Some(r) = values.iter().position(|v| !v.is_finite()) {
        return Err(DataError::invalid(
            path,
            Location::RowColumn(row0 + r, name.into()),
            format!("value {} is not finite", values[r]),
        ));
    }
    Ok(values)
}

/// A float-list column's values as `f32`, and each row's `(start, len)` in them.
type FloatLists = (Vec<f32>, Vec<(usize, usize)>);

/// A float-list column: its values as `f32` and each row's `(start, len)`, rejecting nulls.
fn float_lists(path: &Path, row0: usize, name: &str, array: &ArrayRef) -> Result<FloatLists, DataError> {
    reject_nulls(path, row0, name, array.as_ref())?;
    let (values, spans) = list_spans(path, name, array, "a list of float32 or float64")?;
    reject_null_elements(path, row0, name, values.as_ref(), &spans, "null element")?;
    let values = cast_to(path, name, values.as_ref(), &DataType::Float32)?;
    Ok((values.as_primitive::<Float32Type>().values().to_vec(), spans))
}

/// The feature width of the first row of the first non-empty part (list columns).
fn first_width(files: &[PathBuf]) -> Result<usize, DataError> {
    for file in files {
        let builder = open_builder(file)?;
        let root = builder
            .schema()
            .index_of("features")
            .map_err(|e| DataError::invalid(file, Location::File, e.to_string()))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [root]);
        let mut reader = builder
            .with_projection(mask)
            .with_batch_size(1)
            .build()
            .map_err(|e| DataError::invalid(file, Location::File, format!("cannot read the table: {e}")))?;
        if let Some(batch) = reader.next() {
            let batch = batch.map_err(|e| DataError::invalid(file, Location::Row(0), format!("cannot read: {e}")))?;
            let (_, spans) = float_lists(file, 0, "features", batch.column(0))?;
            if let Some(&(_, len)) = spans.first() {
                return Ok(len);
            }
        }
    }
    Ok(0)
}

/// Decodes a record batch (rows `row0..` of `path`) into `out`.
fn decode(path: &Path, row0: usize, batch: &RecordBatch, parts: &PackedParts, out: &mut Rows) -> Result<(), DataError> {
    let (d, k) = (out.d, out.k);
    let labels = parts.labels;
    let column = |name: &str| -> Result<&ArrayRef, DataError> {
        batch
            .column_by_name(name)
            .ok_or_else(|| DataError::invalid(path, Location::Column(name.into()), "missing column"))
    };
    let n = batch.num_rows();
    let ids = cast_to(path, "id", column("id")?.as_ref(), &DataType::Utf8)?;
    reject_nulls(path, row0, "id", ids.as_ref())?;
    out.ids.extend(ids.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_owned()));
    if labels {
        out.labels.extend(labels_of(path, row0, column("label")?)?);
    }
    let counts = integers(path, row0, packed::NUM_NEIGHBORS, column(packed::NUM_NEIGHBORS)?)?;
    let first = out.counts.len();
    for (r, &c) in counts.iter().enumerate() {
        // Only the first `k` columns are read: a count past them is cut to `k`.
        let Some(c) = u32::try_from(c).ok().filter(|&c| c as usize <= parts.neighbor_columns) else {
            return Err(DataError::invalid(
                path,
                Location::RowColumn(row0 + r, packed::NUM_NEIGHBORS.into()),
                format!("{c} neighbors (expected 0 to {}, the table's neighbor columns)", parts.neighbor_columns),
            ));
        };
        out.counts.push(c.min(k as u32));
    }
    let stride = (k + 1) * d;
    let base = out.features.len();
    out.features.resize(base + n * stride, 0.0);
    out.weights.resize(out.weights.len() + n * k, 0.0);
    let (values, spans) = float_lists(path, row0, "features", column("features")?)?;
    for (r, &(start, len)) in spans.iter().enumerate() {
        check_width(path, row0 + r, "features", len, d)?;
        copy_finite(path, row0 + r, "features", &values[start..start + len], &mut out.features[base + r * stride..])?;
    }
    for j in 0..k {
        let weight_name = packed::neighbor_weight(j);
        let weights = floats(path, row0, &weight_name, column(&weight_name)?)?;
        let name = packed::neighbor_features(j);
        let (values, spans) = float_lists(path, row0, &name, column(&name)?)?;
        for r in 0..n {
            if (out.counts[first + r] as usize) <= j {
                continue; // padding: zeros and weight 0 whatever the file holds
            }
            let (start, len) = spans[r];
            check_width(path, row0 + r, &name, len, d)?;
            let at = base + r * stride + (j + 1) * d;
            copy_finite(path, row0 + r, &name, &values[start..start + len], &mut out.features[at..])?;
            out.weights[(first + r) * k + j] = weights[r];
        }
    }
    Ok(())
}

fn check_width(path: &Path, row: usize, name: &str, len: usize, d: usize) -> Result<(), DataError> {
    if len != d {
        return Err(DataError::invalid(
            path,
            Location::RowColumn(row, name.into()),
            format!("{len} values (expected {d}, as the table's other feature rows)"),
        ));
    }
    Ok(())
}

/// Copies `values` to the front of `to`, rejecting NaN and infinite values.
fn copy_finite(path: &Path, row: usize, name: &str, values: &[f32], to: &mut [f32]) -> Result<(), DataError> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(DataError::invalid(
            path,
            Location::RowColumn(row, format!("{name}[{i}]")),
            format!("value {} is not finite", values[i]),
        ));
    }
    to[..values.len()].copy_from_slice(values);
    Ok(())
}
