//! numpy arrays (`.npy`, `.npz`) and the CIFAR-10/100 binary batches → a [`Dataset`], and a
//! dataset → `.npy` / `.npz`.
//!
//! # `.npy` ([format 1.0–3.0](https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html))
//!
//! | bytes | what |
//! |---|---|
//! | 0–5 | `\x93NUMPY` |
//! | 6, 7 | format version (1, 2 or 3) |
//! | 8–9 (v1) or 8–11 (v2, v3) | header length, little-endian |
//! | then | a Python dict literal: `{'descr': '<f4', 'fortran_order': False, 'shape': (n, 28, 28), }` |
//! | then | the elements, C order (or Fortran order when `fortran_order`) |
//!
//! Features: `float32`, `float64` or `uint8` (scaled by 1/255 as IDX bytes are, unless
//! [`NpyOptions::scale`] is off), either byte order. Item shape = the shape after the first axis,
//! with IDX's rule: a 2-D item `[h, w]` becomes `[1, h, w]`, a 1-D array has items `[1]`;
//! [`NpyOptions::channels_last`] moves `[h, w, c]` (Keras' CIFAR layout) to `[c, h, w]`. Labels:
//! a 1-D array (or `(n, 1)`) of any integer type, each value in `0..2³²`. Ids are the row numbers
//! (`"0"`, `"1"`, …) unless an `.npz` holds an `id` array of strings (what [`write_npz`] writes).
//!
//! # `.npz`
//!
//! A zip archive of `.npy` members (`np.savez`: stored; `np.savez_compressed`: deflate), read with
//! the `zip` crate that candle-core already depends on (deflate through `flate2`, also already a
//! dependency). The `.npy` reader is written here rather than taken from a crate (`npyz`, `ndarray-npy`):
//! the header is a 3-key dict, the element types nsl takes are four, and the errors must name the
//! file, the member and the byte as every other reader's do.
//!
//! # CIFAR-10/100 binary batches
//!
//! Fixed-size records, no header: CIFAR-10 (`data_batch_1.bin` … `test_batch.bin`) has 1 label byte
//! and 3,072 pixel bytes (1,024 red, then green, then blue, each 32 × 32 row-major: already
//! `[3, 32, 32]`) = 3,073 bytes; CIFAR-100 (`train.bin`, `test.bin`) has a coarse and a fine label
//! byte first = 3,074 bytes. The record size is recognized from the file's length (a length that is
//! a multiple of neither, or of both, is an error). Class names come from `batches.meta.txt`
//! (CIFAR-10), `fine_label_names.txt` / `coarse_label_names.txt` (CIFAR-100) next to the first
//! batch, when present with one name per class. Ids are `<file stem>/<record>` (`data_batch_1/0`).

use super::{read_bounded, DataError, Dataset};
use crate::io::{AtomicFile, Location};
use ndarray::{Array2, ArrayD, IxDyn};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The `.npy` magic string.
pub(crate) const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Options of [`read_npy`] and [`read_npz`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyOptions {
    /// Divide `uint8` features by 255 (`x / 255 ∈ [0, 1]`, as IDX). Default true.
    pub scale: bool,
    /// Read 3-D items as `[h, w, c]` and store them as `[c, h, w]` (what the CNN reads). Default false.
    pub channels_last: bool,
}

impl Default for NpyOptions {
    fn default() -> Self {
        NpyOptions { scale: true, channels_last: false }
    }
}

/// An element type of a `.npy` header (`descr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
    /// Fixed-width unicode (`<U7`): 4 bytes per character, UTF-32.
    Unicode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dtype {
    kind: Kind,
    /// Bytes per element.
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Dtype> {
        let (order, rest) = descr.split_at(descr.char_indices().nth(1)?.0);
        let big_endian = match order {
            ">" => true,
            "<" | "|" | "=" => false,
            _ => return None,
        };
        let (kind, size) = (rest.get(..1)?, rest.get(1..)?);
        let size: usize = size.parse().ok().filter(|&s| s > 0)?;
        let kind = match kind {
            "f" if size == 4 || size == 8 => Kind::Float,
            "i" if matches!(size, 1 | 2 | 4 | 8) => Kind::Int,
            "u" if matches!(size, 1 | 2 | 4 | 8) => Kind::Uint,
            "b" if size == 1 => Kind::Bool,
            "U" => return Some(Dtype { kind: Kind::Unicode, size: size.checked_mul(4)?, big_endian }),
            _ => return None,
        };
        Some(Dtype { kind, size, big_endian })
    }

    fn name(&self) -> String {
        match self.kind {
            Kind::Float => format!("float{}", self.size * 8),
            Kind::Int => format!("int{}", self.size * 8),
            Kind::Uint => format!("uint{}", self.size * 8),
            Kind::Bool => "bool".into(),
            Kind::Unicode => format!("str{}", self.size / 4),
        }
    }

    /// The bytes of one element in little-endian order.
    fn le<const N: usize>(&self, bytes: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes[..N]);
        if self.big_endian {
            out.reverse();
        }
        out
    }
}

/// A parsed `.npy`: element type, shape, order, and the element bytes (exactly as many as the shape says).
struct Npy<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    fortran: bool,
    data: &'a [u8],
}

/// Where an array comes from, for messages: the file, and the `.npz` member.
struct Origin<'a> {
    path: &'a Path,
    member: Option<&'a str>,
}

impl Origin<'_> {
    fn error(&self, location: Location, message: impl Into<String>) -> DataError {
        let message = message.into();
        match self.member {
            Some(member) => DataError::invalid(self.path, location, format!("member `{member}`: {message}")),
            None => DataError::invalid(self.path, location, message),
        }
    }
}

/// The value of `'key':` in a header dict, up to the next top-level comma or the closing brace.
fn header_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0usize;
    let end = rest
        .char_indices()
        .find(|&(_, c)| match c {
            '(' | '[' => {
                depth += 1;
                false
            }
            ')' | ']' => {
                depth = depth.saturating_sub(1);
                false
            }
            ',' | '}' => depth == 0,
            _ => false,
        })
        .map_or(rest.len(), |(i, _)| i);
    Some(rest[..end].trim())
}

/// Parses a `.npy` file's bytes and checks that the data has exactly the size the header says.
fn parse<'a>(origin: &Origin<'_>, bytes: &'a [u8]) -> Result<Npy<'a>, DataError> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err(origin.error(
            Location::Byte(0),
            format!(
                "not a .npy array: it starts with {:02x?}, not the magic `\\x93NUMPY`",
                &bytes[..bytes.len().min(6)]
            ),
        ));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(origin.error(Location::Byte(6), format!("unknown .npy format version {v} (1, 2 and 3 exist)"))),
    };
    let end = start + header_len;
    let header = bytes.get(start..end).ok_or_else(|| {
        origin.error(Location::Byte(8), format!("truncated: the header of {header_len} bytes is cut"))
    })?;
    let header = std::str::from_utf8(header)
        .map_err(|_| origin.error(Location::Byte(start as u64), "the header is not text"))?;
    let bad =
        |what: &str| origin.error(Location::Byte(start as u64), format!("{what} in the header `{}`", header.trim()));
    let descr = header_value(header, "descr").ok_or_else(|| bad("no 'descr'"))?;
    if descr.starts_with('[') {
        return Err(bad("a structured dtype (record fields) is not an array of numbers"));
    }
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = Dtype::parse(descr).ok_or_else(|| bad(&format!("unsupported dtype '{descr}'")))?;
    let fortran = match header_value(header, "fortran_order") {
        Some("True") => true,
        Some("False") | None => false,
        Some(other) => return Err(bad(&format!("'fortran_order': {other} is neither True nor False"))),
    };
    let shape_text = header_value(header, "shape").ok_or_else(|| bad("no 'shape'"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(&format!("'shape': {shape_text} is not a tuple")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad(&format!("'shape': {shape_text} is not a tuple of sizes")))?;
    let expected =
        shape.iter().try_fold(dtype.size, |acc, &d| acc.checked_mul(d)).ok_or_else(|| bad("sizes overflow"))?;
    let found = bytes.len() - end;
    if found != expected {
        let what = if found < expected { "truncated" } else { "has trailing bytes" };
        return Err(origin.error(
            Location::Byte(end as u64),
            format!("{what}: the header says {shape:?} {} = {expected} data bytes, found {found}", dtype.name()),
        ));
    }
    Ok(Npy { dtype, shape, fortran, data: &bytes[end..] })
}

/// The elements as `f64` in C order (`Fortran` arrays reordered).
fn values_f64(npy: &Npy<'_>) -> Vec<f64> {
    let t = npy.dtype;
    let chunks = npy.data.chunks_exact(t.size);
    let values: Vec<f64> = match (t.kind, t.size) {
        (Kind::Float, 4) => chunks.map(|c| f64::from(f32::from_le_bytes(t.le(c)))).collect(),
        (Kind::Float, _) => chunks.map(|c| f64::from_le_bytes(t.le(c))).collect(),
        (Kind::Int, 1) => chunks.map(|c| f64::from(c[0] as i8)).collect(),
        (Kind::Int, 2) => chunks.map(|c| f64::from(i16::from_le_bytes(t.le(c)))).collect(),
        (Kind::Int, 4) => chunks.map(|c| f64::from(i32::from_le_bytes(t.le(c)))).collect(),
        (Kind::Int, _) => chunks.map(|c| i64::from_le_bytes(t.le(c)) as f64).collect(),
        (Kind::Uint, 1) | (Kind::Bool, _) => chunks.map(|c| f64::from(c[0])).collect(),
        (Kind::Uint, 2) => chunks.map(|c| f64::from(u16::from_le_bytes(t.le(c)))).collect(),
        (Kind::Uint, 4) => chunks.map(|c| f64::from(u32::from_le_bytes(t.le(c)))).collect(),
        (Kind::Uint, _) => chunks.map(|c| u64::from_le_bytes(t.le(c)) as f64).collect(),
        (Kind::Unicode, _) => Vec::new(),
    };
    c_order(values, &npy.shape, npy.fortran)
}

/// `values` in C order: reorders a Fortran-order array (whose memory is the reversed shape in C order).
fn c_order<T: Clone>(values: Vec<T>, shape: &[usize], fortran: bool) -> Vec<T> {
    if !fortran || shape.len() < 2 {
        return values;
    }
    let reversed: Vec<usize> = shape.iter().rev().copied().collect();
    match ArrayD::from_shape_vec(IxDyn(&reversed), values) {
        Ok(array) => array.reversed_axes().as_standard_layout().iter().cloned().collect(),
        // The length was checked against the shape by `parse`.
        Err(_) => Vec::new(),
    }
}

/// The features of a parsed array: the matrix and the item shape.
fn features(origin: &Origin<'_>, npy: &Npy<'_>, options: &NpyOptions) -> Result<(Array2<f32>, Vec<usize>), DataError> {
    let t = npy.dtype;
    let values: Vec<f32> = match (t.kind, t.size) {
        (Kind::Float, 4) => {
            c_order(npy.data.chunks_exact(4).map(|c| f32::from_le_bytes(t.le(c))).collect(), &npy.shape, npy.fortran)
        }
        (Kind::Uint, 1) => {
            // The IDX reader's table: the same bits for the same bytes.
            let table: [f32; 256] = std::array::from_fn(|v| if options.scale { v as f32 / 255.0 } else { v as f32 });
            c_order(npy.data.iter().map(|&b| table[b as usize]).collect(), &npy.shape, npy.fortran)
        }
        (Kind::Float, _) => values_f64(npy).into_iter().map(|v| v as f32).collect(),
        _ => {
            return Err(origin
                .error(Location::Byte(8), format!("features must be float32, float64 or uint8, found {}", t.name())))
        }
    };
    let Some((&n, item)) = npy.shape.split_first() else {
        return Err(origin.error(Location::Byte(8), "a 0-d array (a scalar) holds no samples: expected shape (n, …)"));
    };
    let (item_shape, values) = match (item, options.channels_last) {
        ([], _) => (vec![1], values),
        (&[h, w], false) => (vec![1, h, w], values),
        (&[h, w, c], true) if h * w * c > 0 => {
            let mut out = vec![0.0f32; values.len()];
            let plane = h * w;
            for (s, sample) in values.chunks_exact(plane * c).enumerate() {
                for (p, pixel) in sample.chunks_exact(c).enumerate() {
                    for (k, &v) in pixel.iter().enumerate() {
                        out[s * plane * c + k * plane + p] = v;
                    }
                }
            }
            (vec![c, h, w], out)
        }
        (_, true) => {
            return Err(origin.error(
                Location::Byte(8),
                format!("channels-last needs items of shape (h, w, c), the array has shape {:?}", npy.shape),
            ))
        }
        (rest, false) => (rest.to_vec(), values),
    };
    let d: usize = item_shape.iter().product();
    if d == 0 {
        return Err(origin.error(Location::Byte(8), format!("items of shape {item_shape:?} hold no values")));
    }
    let matrix = Array2::from_shape_vec((n, d), values).map_err(|e| origin.error(Location::File, e.to_string()))?;
    Ok((matrix, item_shape))
}

/// The labels of a parsed array: a 1-D (or `(n, 1)`) integer array, each value in `0..2³²`.
fn labels(origin: &Origin<'_>, npy: &Npy<'_>) -> Result<Vec<u32>, DataError> {
    if !matches!(npy.dtype.kind, Kind::Int | Kind::Uint) {
        return Err(origin.error(
            Location::Byte(8),
            format!("labels must be integers, found {} (class ids: cast with .astype(int))", npy.dtype.name()),
        ));
    }
    if !matches!(npy.shape.as_slice(), [_] | [_, 1]) {
        return Err(origin.error(Location::Byte(8), format!("labels must be 1-D, found shape {:?}", npy.shape)));
    }
    values_f64(npy)
        .into_iter()
        .enumerate()
        .map(|(row, v)| {
            if v < 0.0 || v > f64::from(u32::MAX) {
                Err(origin.error(Location::Row(row), format!("label {v} is not in 0..2^32")))
            } else {
                Ok(v as u32)
            }
        })
        .collect()
}

/// The strings of a parsed unicode array (`<U…`), trailing NULs removed.
fn strings(origin: &Origin<'_>, npy: &Npy<'_>) -> Result<Vec<String>, DataError> {
    if npy.dtype.kind != Kind::Unicode || npy.shape.len() != 1 {
        return Err(origin.error(
            Location::Byte(8),
            format!("ids must be a 1-D array of strings, found {} of shape {:?}", npy.dtype.name(), npy.shape),
        ));
    }
    let size = npy.dtype.size;
    let ids = npy.data.chunks_exact(size.max(1)).enumerate().map(|(row, chunk)| {
        chunk
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(npy.dtype.le(c)))
            .take_while(|&u| u != 0)
            .map(|u| char::from_u32(u).ok_or_else(|| origin.error(Location::Row(row), "invalid character")))
            .collect::<Result<String, _>>()
    });
    ids.collect()
}

/// Reads a whole file (gzipped or not) for an array reader.
fn read_all(path: &Path) -> Result<Vec<u8>, DataError> {
    read_bounded(path, false, crate::io::available_memory())
}

/// Reads a `.npy` array of features and, optionally, a `.npy` array of labels.
///
/// # Errors
/// [`DataError`] naming the file and the byte or row: not a `.npy`, an unsupported or wrong dtype
/// (features: float32, float64, uint8; labels: integers), a truncated array or trailing bytes, a
/// label count different from the sample count, labels that are not 1-D or negative, non-finite
/// features.
///
/// # Example
/// ```no_run
/// use nsl::data::{read_npy, NpyOptions};
/// use std::path::Path;
/// let digits = read_npy(Path::new("x.npy"), Some(Path::new("y.npy")), &NpyOptions::default())?;
/// # Ok::<(), nsl::DataError>(())
/// ```
pub fn read_npy(features_path: &Path, labels_path: Option<&Path>, options: &NpyOptions) -> Result<Dataset, DataError> {
    let bytes = read_all(features_path)?;
    let origin = Origin { path: features_path, member: None };
    let (matrix, item_shape) = features(&origin, &parse(&origin, &bytes)?, options)?;
    drop(bytes);
    let labels = match labels_path {
        Some(path) => {
            let bytes = read_all(path)?;
            let origin = Origin { path, member: None };
            Some(labels(&origin, &parse(&origin, &bytes)?)?)
        }
        None => None,
    };
    build(features_path, labels_path, matrix, item_shape, labels, None)
}

/// Checks the label count and builds the dataset (ids: `ids`, else the row numbers).
fn build(
    features_path: &Path,
    labels_path: Option<&Path>,
    matrix: Array2<f32>,
    item_shape: Vec<usize>,
    labels: Option<Vec<u32>>,
    ids: Option<Vec<String>>,
) -> Result<Dataset, DataError> {
    let n = matrix.nrows();
    if let Some(labels) = &labels {
        if labels.len() != n {
            return Err(DataError::invalid(
                labels_path.unwrap_or(features_path),
                Location::File,
                format!("{} labels but {n} samples in {}", labels.len(), features_path.display()),
            ));
        }
    }
    let ids = ids.unwrap_or_else(|| (0..n).map(|i| i.to_string()).collect());
    Dataset::new(ids, matrix, item_shape, labels, None).map_err(|e| e.in_file(features_path))
}

/// Reads the members of an `.npz` (their names without `.npy`).
fn open_npz(path: &Path) -> Result<zip::ZipArchive<std::io::Cursor<Vec<u8>>>, DataError> {
    let bytes = read_all(path)?;
    zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| DataError::invalid(path, Location::File, format!("not a readable .npz (zip) archive: {e}")))
}

/// The keys (member names without `.npy`) of an `.npz`.
fn npz_keys(path: &Path, archive: &zip::ZipArchive<std::io::Cursor<Vec<u8>>>) -> Result<Vec<String>, DataError> {
    archive
        .file_names()
        .map(|name| {
            name.map(|n| n.strip_suffix(".npy").unwrap_or(&n[..]).to_string())
                .map_err(|e| DataError::invalid(path, Location::File, format!("corrupt .npz: {e}")))
        })
        .collect()
}

/// The bytes of the `.npz` member `key`.
fn npz_member(
    path: &Path,
    archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
    key: &str,
) -> Result<Vec<u8>, DataError> {
    let name = [format!("{key}.npy"), key.to_string()]
        .into_iter()
        .find(|name| archive.index_for_name(name).is_some())
        .ok_or_else(|| DataError::invalid(path, Location::File, format!("no member `{key}.npy`")))?;
    let mut member =
        archive.by_name(&name).map_err(|e| DataError::invalid(path, Location::File, format!("member `{key}`: {e}")))?;
    let max = crate::io::available_memory();
    if member.size() > max {
        return Err(DataError::invalid(
            path,
            Location::File,
            format!("member `{key}` has {} bytes, more than the {max} available", member.size()),
        ));
    }
    let mut bytes = Vec::with_capacity(member.size() as usize);
    member
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::invalid(path, Location::File, format!("member `{key}` is corrupt: {e}")))?;
    Ok(bytes)
}

/// Reads an `.npz` archive: the features from member `features_key`, the labels from member
/// `labels_key`. Without `features_key`: the only member, else `features`, else `x`; without
/// `labels_key`, a member `label` if present (what [`write_npz`] writes), else no labels. A member
/// `id` of strings gives the ids.
///
/// # Errors
/// As [`read_npy`], naming the member; a key the archive does not hold (the keys it holds are listed).
pub fn read_npz(
    path: &Path,
    features_key: Option<&str>,
    labels_key: Option<&str>,
    options: &NpyOptions,
) -> Result<Dataset, DataError> {
    let labels = labels_key.map_or(LabelsKey::IfPresent("label"), LabelsKey::Named);
    read_npz_as(path, features_key, labels, options)
}

/// Which `.npz` member holds the labels.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LabelsKey<'a> {
    /// This member, which must exist.
    Named(&'a str),
    /// This member if the archive holds it, else no labels.
    IfPresent(&'a str),
    /// No labels.
    Skip,
}

/// [`read_npz`] with the choice of labels of [`LabelsKey`].
pub(crate) fn read_npz_as(
    path: &Path,
    features_key: Option<&str>,
    labels_key: LabelsKey<'_>,
    options: &NpyOptions,
) -> Result<Dataset, DataError> {
    let mut archive = open_npz(path)?;
    let keys = npz_keys(path, &archive)?;
    let has = |k: &str| keys.iter().any(|key| key == k);
    let missing = |k: &str| {
        DataError::invalid(path, Location::File, format!("no array `{k}`: the archive holds {}", keys.join(", ")))
    };
    let features_key = match features_key {
        Some(k) if has(k) => k.to_string(),
        Some(k) => return Err(missing(k)),
        None => match keys.as_slice() {
            [only] => only.clone(),
            _ if has("features") => "features".into(),
            _ if has("x") => "x".into(),
            _ => {
                return Err(DataError::invalid(
                    path,
                    Location::File,
                    format!("which array holds the features? The archive holds {} (name one)", keys.join(", ")),
                ))
            }
        },
    };
    let labels_key = match labels_key {
        LabelsKey::Named(k) | LabelsKey::IfPresent(k) if has(k) => Some(k.to_string()),
        LabelsKey::Named(k) => return Err(missing(k)),
        LabelsKey::IfPresent(_) | LabelsKey::Skip => None,
    };
    let bytes = npz_member(path, &mut archive, &features_key)?;
    let origin = Origin { path, member: Some(&features_key) };
    let (matrix, item_shape) = features(&origin, &parse(&origin, &bytes)?, options)?;
    drop(bytes);
    let labels = match &labels_key {
        Some(key) => {
            let bytes = npz_member(path, &mut archive, key)?;
            let origin = Origin { path, member: Some(key) };
            Some(labels(&origin, &parse(&origin, &bytes)?)?)
        }
        None => None,
    };
    let ids = match has("id") && features_key != "id" {
        true => {
            let bytes = npz_member(path, &mut archive, "id")?;
            let origin = Origin { path, member: Some("id") };
            let ids = strings(&origin, &parse(&origin, &bytes)?)?;
            if ids.len() != matrix.nrows() {
                return Err(origin.error(Location::File, format!("{} ids but {} samples", ids.len(), matrix.nrows())));
            }
            Some(ids)
        }
        false => None,
    };
    build(path, None, matrix, item_shape, labels, ids)
}

/// A `.npy` header for `descr` and `shape`, padded so that the data starts at a multiple of 64
/// bytes (format 1.0, or 2.0 when the header does not fit in 65,535 bytes).
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let (version, prefix) = if dict.len() + 11 < 65_536 { (1u8, 10) } else { (2u8, 12) };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let header_len = total - prefix;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// The features as a `.npy` (`<f4`, shape `(n, *item_shape)`).
fn features_npy(dataset: &Dataset) -> Vec<u8> {
    let mut shape = vec![dataset.len()];
    shape.extend_from_slice(dataset.item_shape());
    let mut out = npy_header("<f4", &shape);
    out.reserve(dataset.len() * dataset.dim() * 4);
    for row in dataset.features().rows() {
        for &v in row {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Writes the features as one `.npy` array (`float32`, little-endian, shape `(n, *item_shape)`),
/// atomically. Ids and labels are not in it (see [`write_npz`]).
///
/// # Errors
/// [`DataError::Io`] naming the file.
pub fn write_npy(dataset: &Dataset, path: &Path) -> Result<(), DataError> {
    write_atomic(path, |file| file.write_all(&features_npy(dataset)))
}

/// Writes a dataset as an `.npz` archive (stored, as `np.savez`), atomically: `features`
/// (`float32`, shape `(n, *item_shape)`), `label` (`int64`, when labeled) and `id` (unicode
/// strings). `np.load(path)` reads it without pickle; [`read_npz`] reads it back.
///
/// # Errors
/// [`DataError::Io`] naming the file.
pub fn write_npz(dataset: &Dataset, path: &Path) -> Result<(), DataError> {
    let mut members: Vec<(&str, Vec<u8>)> = vec![("features", features_npy(dataset))];
    if let Some(labels) = dataset.labels() {
        let mut out = npy_header("<i8", &[labels.len()]);
        for &l in labels {
            out.extend_from_slice(&i64::from(l).to_le_bytes());
        }
        members.push(("label", out));
    }
    let width = dataset.ids().iter().map(|id| id.chars().count()).max().unwrap_or(0).max(1);
    let mut ids = npy_header(&format!("<U{width}"), &[dataset.len()]);
    for id in dataset.ids() {
        let mut n = 0;
        for c in id.chars() {
            ids.extend_from_slice(&(c as u32).to_le_bytes());
            n += 1;
        }
        ids.resize(ids.len() + 4 * (width - n), 0);
    }
    members.push(("id", ids));
    write_atomic(path, |file| {
        let mut zip = zip::ZipWriter::new(file);
        for (key, bytes) in &members {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
            zip.start_file(format!("{key}.npy"), options).map_err(std::io::Error::other)?;
            zip.write_all(bytes)?;
        }
        zip.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
}

/// Writes `path` through an [`AtomicFile`] (visible only when complete).
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<(), DataError> {
    let result = (|| {
        let mut out = AtomicFile::create(path)?;
        {
            let mut buffered = std::io::BufWriter::new(out.file()?);
            write(&mut buffered)?;
            buffered.flush()?;
        }
        out.commit()
    })();
    result.map_err(|e| DataError::io(path, e))
}

/// Which labels of a CIFAR-100 record [`read_cifar`] takes (CIFAR-10 records have one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CifarLabels {
    /// The 100 fine classes.
    #[default]
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// Options of [`read_cifar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarOptions {
    /// CIFAR-100: fine or coarse labels. Default [`CifarLabels::Fine`].
    pub labels: CifarLabels,
    /// Divide the pixel bytes by 255 (as IDX). Default true.
    pub scale: bool,
}

impl Default for CifarOptions {
    fn default() -> Self {
        CifarOptions { labels: CifarLabels::Fine, scale: true }
    }
}

/// Pixel bytes of a CIFAR record: 3 × 32 × 32.
const CIFAR_PIXELS: usize = 3 * 32 * 32;

/// Reads CIFAR-10 or CIFAR-100 binary batches, in the order given, into one dataset of
/// `[3, 32, 32]` items (see the [module doc](self)).
///
/// # Errors
/// [`DataError`] naming the file: no files, a length that is not a whole number of 3,073-byte
/// (CIFAR-10) or 3,074-byte (CIFAR-100) records (or of both), files of the two kinds mixed, a
/// CIFAR-10 label above 9 or a CIFAR-100 label above 99 (fine) or 19 (coarse).
pub fn read_cifar(paths: &[PathBuf], options: &CifarOptions) -> Result<Dataset, DataError> {
    let Some(first) = paths.first() else {
        return Err(DataError::Dataset("no CIFAR batch files given".into()));
    };
    let table: [f32; 256] = std::array::from_fn(|v| if options.scale { v as f32 / 255.0 } else { v as f32 });
    let mut kind: Option<(usize, &Path)> = None;
    let (mut ids, mut values, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for path in paths {
        let bytes = read_all(path)?;
        let record = cifar_record_size(path, bytes.len())?;
        if let Some((size, other)) = kind.filter(|&(size, _)| size != record) {
            return Err(DataError::invalid(
                path,
                Location::File,
                format!(
                    "has {record}-byte records (CIFAR-{}) but {} has {size}-byte records: batches of one dataset",
                    if record == 3073 { 10 } else { 100 },
                    other.display()
                ),
            ));
        }
        kind = Some((record, path));
        let (label_at, classes) = match (record, options.labels) {
            (3073, _) => (0, 10),
            (_, CifarLabels::Coarse) => (0, 20),
            (_, CifarLabels::Fine) => (1, 100),
        };
        let stem = path.file_stem().map_or_else(|| "cifar".into(), |s| s.to_string_lossy().into_owned());
        values.reserve(bytes.len() / record * CIFAR_PIXELS);
        for (i, chunk) in bytes.chunks_exact(record).enumerate() {
            let label = u32::from(chunk[label_at]);
            if label >= classes {
                return Err(DataError::invalid(
                    path,
                    Location::Byte((i * record + label_at) as u64),
                    format!("record {i}: label {label} is not below {classes}: not a CIFAR batch?"),
                ));
            }
            labels.push(label);
            ids.push(format!("{stem}/{i}"));
            values.extend(chunk[record - CIFAR_PIXELS..].iter().map(|&b| table[b as usize]));
        }
    }
    let record = kind.map_or(3073, |(size, _)| size);
    let names = cifar_class_names(first, record, options.labels);
    let n = ids.len();
    let matrix = Array2::from_shape_vec((n, CIFAR_PIXELS), values)
        .map_err(|e| DataError::invalid(first, Location::File, e.to_string()))?;
    Dataset::new(ids, matrix, vec![3, 32, 32], Some(labels), names).map_err(|e| e.in_file(first))
}

/// The record size of a CIFAR batch of `len` bytes.
fn cifar_record_size(path: &Path, len: usize) -> Result<usize, DataError> {
    match (len.is_multiple_of(3073), len.is_multiple_of(3074)) {
        _ if len == 0 => Err(DataError::invalid(path, Location::File, "file is empty (expected CIFAR records)")),
        (true, false) => Ok(3073),
        (false, true) => Ok(3074),
        (true, true) => Err(DataError::invalid(
            path,
            Location::File,
            format!("{len} bytes are a whole number of both CIFAR-10 (3,073-byte) and CIFAR-100 (3,074-byte) records"),
        )),
        (false, false) => Err(DataError::invalid(
            path,
            Location::File,
            format!(
                "{len} bytes are not a whole number of CIFAR-10 records (3,073 bytes: {} records and {} bytes left) \
                 or CIFAR-100 records (3,074 bytes: {} and {} left): truncated, or not a CIFAR batch",
                len / 3073,
                len % 3073,
                len / 3074,
                len % 3074
            ),
        )),
    }
}

/// The class names in the text file the CIFAR distribution puts next to the batches, when it is
/// there with one name per class.
fn cifar_class_names(first: &Path, record: usize, labels: CifarLabels) -> Option<Vec<String>> {
    let (file, count) = match (record, labels) {
        (3073, _) => ("batches.meta.txt", 10),
        (_, CifarLabels::Fine) => ("fine_label_names.txt", 100),
        (_, CifarLabels::Coarse) => ("coarse_label_names.txt", 20),
    };
    let path = first.parent()?.join(file);
    let text = std::fs::read_to_string(path).ok()?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    (names.len() == count).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin<'static> {
        Origin { path: Path::new("x.npy"), member: None }
    }

    #[test]
    fn header_round_trip() {
        let mut bytes = npy_header("<f4", &[2, 3]);
        assert_eq!(bytes.len() % 64, 0);
        for v in [0.5f32, 1.0, 2.0, 3.0, 4.0, 5.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let npy = parse(&origin(), &bytes).unwrap();
        assert_eq!(npy.shape, [2, 3]);
        let (m, shape) = features(&origin(), &npy, &NpyOptions::default()).unwrap();
        assert_eq!(shape, [3]);
        assert_eq!(m.row(1).to_vec(), [3.0, 4.0, 5.0]);
    }

    #[test]
    fn fortran_order_is_reordered() {
        // A 2 × 3 array [[1, 2, 3], [4, 5, 6]] in Fortran order: columns first.
        let mut bytes = npy_header("<f8", &[2, 3]);
        let at = bytes.windows(5).position(|w| w == b"False").unwrap();
        bytes[at..at + 5].copy_from_slice(b"True ");
        for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let npy = parse(&origin(), &bytes).unwrap();
        assert!(npy.fortran);
        let (m, _) = features(&origin(), &npy, &NpyOptions::default()).unwrap();
        assert_eq!(m.row(0).to_vec(), [1.0, 2.0, 3.0]);
    }

    #[test]
    fn big_endian_int_labels() {
        let mut bytes = npy_header(">i2", &[2]);
        bytes.extend_from_slice(&[0x01, 0x02, 0x00, 0x07]);
        assert_eq!(labels(&origin(), &parse(&origin(), &bytes).unwrap()).unwrap(), [258, 7]);
    }

    #[test]
    fn channels_last_moves_channels_first() {
        // One 1 × 2 image with 3 channels: pixels (1, 2, 3) and (4, 5, 6).
        let mut bytes = npy_header("<f4", &[1, 1, 2, 3]);
        for v in 1..=6 {
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
        }
        let npy = parse(&origin(), &bytes).unwrap();
        let (m, shape) = features(&origin(), &npy, &NpyOptions { scale: true, channels_last: true }).unwrap();
        assert_eq!(shape, [3, 1, 2]);
        assert_eq!(m.row(0).to_vec(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn cifar_lengths() {
        assert_eq!(cifar_record_size(Path::new("b"), 3073 * 2).unwrap(), 3073);
        assert_eq!(cifar_record_size(Path::new("b"), 3074 * 5).unwrap(), 3074);
        assert!(cifar_record_size(Path::new("b"), 3073 * 2 + 1).is_err());
    }
}
