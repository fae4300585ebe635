//! IDX files, the format of the original MNIST distribution, gzipped or not.
//!
//! Layout (all numbers big-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 0–1 | `0x00 0x00` |
//! | 2 | element type: `0x08` u8, `0x09` i8, `0x0B` i16, `0x0C` i32, `0x0D` f32, `0x0E` f64 |
//! | 3 | number of dimensions `k` |
//! | 4 … 4+4k | the `k` sizes as u32, the first one the number of items |
//! | then | `size₀ · size₁ ⋯ size_{k-1}` elements, row-major |
//!
//! MNIST images are `0x00000803` (u8, 3 dimensions: n × 28 × 28), labels `0x00000801` (u8, n).

use super::{read_bounded, read_prefix, DataError, Dataset};
use crate::io::Location;
use ndarray::Array2;
use std::path::Path;

/// Options of [`read_idx`].
#[derive(Debug, Clone, PartialEq)]
pub struct IdxOptions {
    /// Divide unsigned-byte values by 255 so that pixels are in [0, 1] (NSL's tutorials do). Default true.
    pub scale: bool,
}

impl Default for IdxOptions {
    fn default() -> Self {
        IdxOptions { scale: true }
    }
}

/// The element type of an IDX file (its third magic byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementType {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl ElementType {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x08 => ElementType::U8,
            0x09 => ElementType::I8,
            0x0B => ElementType::I16,
            0x0C => ElementType::I32,
            0x0D => ElementType::F32,
            0x0E => ElementType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            ElementType::U8 | ElementType::I8 => 1,
            ElementType::I16 => 2,
            ElementType::I32 | ElementType::F32 => 4,
            ElementType::F64 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ElementType::U8 => "u8",
            ElementType::I8 => "i8",
            ElementType::I16 => "i16",
            ElementType::I32 => "i32",
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
        }
    }
}

/// The most dimensions [`is_idx_magic`] accepts when sniffing (items of up to 3 dimensions).
const MAX_SNIFF_DIMS: u8 = 4;

/// Whether `magic` (the first four bytes of a decompressed file) looks like an IDX header:
/// `0x00 0x00`, a known type byte and 1 to 4 dimensions.
pub(crate) fn is_idx_magic(magic: &[u8; 4]) -> bool {
    magic[0] == 0
        && magic[1] == 0
        && ElementType::from_byte(magic[2]).is_some()
        && (1..=MAX_SNIFF_DIMS).contains(&magic[3])
}

/// A parsed IDX file: element type, sizes and the raw element bytes (exactly as many as the sizes say).
struct IdxArray<'a> {
    element: ElementType,
    dims: Vec<usize>,
    data: &'a [u8],
}

/// Parses the header of `bytes` and checks that the data has exactly the size the header announces.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<IdxArray<'a>, DataError> {
    if bytes.is_empty() {
        return Err(DataError::invalid(path, Location::File, "file is empty (expected an IDX header)"));
    }
    if bytes.len() < 4 {
        return Err(DataError::invalid(
            path,
            Location::Byte(0),
            format!("file has only {} bytes, too short for the 4-byte IDX magic number", bytes.len()),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let element = match ElementType::from_byte(bytes[2]) {
        Some(element) if bytes[0] == 0 && bytes[1] == 0 && bytes[3] > 0 => element,
        _ => {
            return Err(DataError::invalid(
                path,
                Location::Byte(0),
                format!(
                    "wrong magic number 0x{magic:08X}: expected 0x0000TTNN with TT the type (08 u8, 09 i8, \
                     0B i16, 0C i32, 0D f32, 0E f64) and NN ≥ 1 the number of dimensions (MNIST images are \
                     0x00000803, labels 0x00000801)"
                ),
            ))
        }
    };
    let ndims = bytes[3] as usize;
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::invalid(
            path,
            Location::Byte(4),
            format!(
                "header announces {ndims} dimensions ({header_len} header bytes) but the file has only {} bytes",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> =
        bytes[4..header_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let expected = dims.iter().try_fold(element.size(), |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        DataError::invalid(path, Location::Byte(4), format!("sizes {dims:?} of {} overflow", element.name()))
    })?;
    let found = bytes.len() - header_len;
    if found != expected {
        let what = if found < expected { "truncated" } else { "has trailing bytes" };
        return Err(DataError::invalid(
            path,
            Location::Byte(header_len as u64),
            format!("{what}: header says {dims:?} {} values = {expected} data bytes, found {found}", element.name()),
        ));
    }
    Ok(IdxArray { element, dims, data: &bytes[header_len..] })
}

/// Reads an IDX file (gzipped or not), its header first: the rest is read only up to the size the
/// header announces (and at most 64 MiB beyond it, to report trailing bytes), so that a file that
/// is not IDX (`/dev/zero` has the magic `00 00 00 00`) or an endless one fails after a few bytes
/// instead of being buffered whole.
fn read_idx_file(path: &Path) -> Result<Vec<u8>, DataError> {
    // 4 magic bytes and at most 255 sizes of 4 bytes.
    let mut head = [0u8; 4 + 4 * 255];
    let len = read_prefix(path, &mut head[..4], true)?;
    let ndims = head[3] as usize;
    let header_len = 4 + 4 * ndims;
    let magic_ok = len == 4 && head[0] == 0 && head[1] == 0 && ElementType::from_byte(head[2]).is_some() && ndims > 0;
    if !magic_ok {
        // The parser's message for an empty, short or wrong header.
        parse(path, &head[..len])?;
    }
    let len = read_prefix(path, &mut head[..header_len], true)?;
    if len < header_len {
        parse(path, &head[..len])?;
    }
    let element = ElementType::from_byte(head[2]).map_or(1, ElementType::size);
    let expected = head[4..header_len]
        .chunks_exact(4)
        .try_fold(element as u64, |acc, c| acc.checked_mul(u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))));
    let max = expected
        .and_then(|e| e.checked_add(header_len as u64 + (64 << 20)))
        .unwrap_or(u64::MAX)
        .min(crate::io::available_memory());
    read_bounded(path, false, max)
}

/// Converts the elements to `f32`, scaling unsigned bytes by 1/255 when `scale`.
fn to_f32(array: &IdxArray<'_>, scale: bool) -> Vec<f32> {
    let data = array.data;
    match array.element {
        ElementType::U8 => {
            // A 256-entry table keeps the hot loop a plain lookup.
            let table: [f32; 256] = std::array::from_fn(|v| if scale { v as f32 / 255.0 } else { v as f32 });
            data.iter().map(|&b| table[b as usize]).collect()
        }
        ElementType::I8 => data.iter().map(|&b| b as i8 as f32).collect(),
        ElementType::I16 => data.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]]) as f32).collect(),
        ElementType::I32 => data.chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
        ElementType::F32 => data.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect(),
        ElementType::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    }
}

/// Reads the labels file: a 1-D IDX of integers (float types are accepted when every value is a whole
/// number), each non-negative.
fn read_labels(path: &Path) -> Result<Vec<u32>, DataError> {
    let bytes = read_idx_file(path)?;
    let array = parse(path, &bytes)?;
    if array.dims.len() != 1 {
        return Err(DataError::invalid(
            path,
            Location::Byte(3),
            format!(
                "labels must be a 1-D IDX file (magic 0x000008NN with NN = 01), found {} dimensions {:?}",
                array.dims.len(),
                array.dims
            ),
        ));
    }
    let values: Vec<f64> = match array.element {
        // f32 cannot hold every i32 exactly: read integer labels as f64.
        ElementType::I32 => {
            array.data.chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
        }
        _ => to_f32(&array, false).into_iter().map(f64::from).collect(),
    };
    values
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if v.fract() != 0.0 || !v.is_finite() {
                Err(format!("label {v} is not a whole number"))
            } else if v < 0.0 {
                Err(format!("label {v} is negative"))
            } else if v > u32::MAX as f64 {
                Err(format!("label {v} is too large"))
            } else {
                Ok(v as u32)
            }
            .map_err(|message| DataError::invalid(path, Location::Row(row), message))
        })
        .collect()
}

/// Reads an IDX images file (gzipped or not) and optionally its labels file.
///
/// - ids are `"0"`, `"1"`, … `"n-1"` (the item's position in the file);
/// - the item shape is the trailing sizes, with a leading channel of 1 for 2-D items
///   (MNIST `n × 28 × 28` → `[1, 28, 28]`); 1-D items keep `[d]`, 3-D items are taken as they are,
///   and a 1-D file has items of shape `[1]`;
/// - values become `f32`; unsigned bytes are divided by 255 when `options.scale` (`x / 255 ∈ [0, 1]`);
/// - labels (a 1-D IDX file of integers, e.g. MNIST's `…-labels-idx1-ubyte`) become the dataset's
///   labels; there are no class names.
///
/// # Errors
/// [`DataError`] naming the file and, where it applies, the byte offset or item: an empty file, a
/// truncated or corrupt gzip stream, a wrong magic number (found and expected), fewer (or more) data
/// bytes than the header says (expected and found), labels that are not 1-D, negative or not whole
/// numbers, a label count different from the image count, and non-finite float values.
///
/// # Example
/// ```no_run
/// use nsl::data::{read_idx, IdxOptions};
/// use std::path::Path;
/// let train = read_idx(
///     Path::new("datasets/mnist/train-images-idx3-ubyte.gz"),
///     Some(Path::new("datasets/mnist/train-labels-idx1-ubyte.gz")),
///     &IdxOptions::default(),
/// )?;
/// assert_eq!(train.item_shape(), [1, 28, 28]);
/// # Ok::<(), nsl::DataError>(())
/// ```
pub fn read_idx(images: &Path, labels: Option<&Path>, options: &IdxOptions) -> Result<Dataset, DataError> {
    let bytes = read_idx_file(images)?;
    let array = parse(images, &bytes)?;
    let n = array.dims[0];
    let item_shape = match &array.dims[1..] {
        [] => vec![1],
        [h, w] => vec![1, *h, *w],
        rest => rest.to_vec(),
    };
    let d: usize = item_shape.iter().product();
    let values = to_f32(&array, options.scale);
    drop(bytes);
    let labels = match labels {
        Some(path) => {
            let labels = read_labels(path)?;
            if labels.len() != n {
                return Err(DataError::invalid(
                    path,
                    Location::File,
                    format!("{} labels but {n} images in {}", labels.len(), images.display()),
                ));
            }
            Some(labels)
        }
        None => None,
    };
    let features = Array2::from_shape_vec((n, d), values)
        .map_err(|e| DataError::invalid(images, Location::File, e.to_string()))?;
    let ids = (0..n).map(|i| i.to_string()).collect();
    Dataset::new(ids, features, item_shape, labels, None).map_err(|e| e.in_file(images))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(element: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, element, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_i16_big_endian() {
        let bytes = idx(0x0B, &[2], &[0x01, 0x02, 0xFF, 0xFE]);
        let array = parse(Path::new("x"), &bytes).unwrap();
        assert_eq!(to_f32(&array, true), vec![258.0, -2.0]);
    }

    #[test]
    fn sniffing_rejects_text() {
        assert!(is_idx_magic(&[0, 0, 8, 3]));
        assert!(!is_idx_magic(b"id,x"));
        assert!(!is_idx_magic(&[0, 0, 8, 0]));
        assert!(!is_idx_magic(&[0, 0, 7, 1]));
        assert!(!is_idx_magic(&[0, 0, 8, 5]));
    }
}
