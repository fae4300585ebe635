//! TFRecord files of `tf.train.Example`s, the format of every NSL pipeline: read, written, and
//! NSL's `pack_nbrs` on them.
//!
//! - **Framing** ([`RecordReader`], [`RecordWriter`]): each record is `u64 length`, the masked
//!   CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data (all little-endian).
//!   Both checksums are checked on read; a bad one or a truncated record is an error naming the file
//!   and the 0-based record number. Gzip-compressed files (TensorFlow's `compression_type="GZIP"`)
//!   are recognized by their magic bytes on read and written with [`Compression::Gzip`]. The reader
//!   streams: it holds one record at a time.
//! - **`tf.train.Example`** ([`Example`], [`Feature`]): a hand-written protobuf codec that reads
//!   packed and unpacked lists and writes what TensorFlow writes (see [`Example::decode`]).
//! - **Samples** ([`read_samples`], [`read_embeddings`], [`read_packed`], [`write_samples`]):
//!   Examples to and from nsl's [`Dataset`](crate::data::Dataset), with NSL's feature names
//!   (`id`, `words`, `label`, `embedding`) and NSL's reading rules (id in `bytes_list[0]`, the
//!   last of a repeated id wins).
//! - **`pack_nbrs`** ([`pack_nbrs`], [`merge_neighbors`]): NSL's neighbor packing, writing the same
//!   records NSL writes (`NL_num_nbrs`, `NL_nbr_<j>_weight`, `NL_nbr_<j>_<feature>`).
//!
//! ```
//! use nsl::tfrecord::{Example, Feature, RecordReader, RecordWriter};
//! let mut ex = Example::new();
//! ex.insert("id", Feature::Bytes(vec![b"paper1".to_vec()]));
//! ex.insert("words", Feature::Int64(vec![0, 1, 1]));
//! let mut w = RecordWriter::new(Vec::new());
//! w.write_record(&ex.encode())?;
//! let bytes = w.into_inner();
//! let mut r = RecordReader::new(Box::new(std::io::Cursor::new(bytes)), "in-memory");
//! let back = Example::decode(&r.next().unwrap()?)?;
//! assert_eq!(back, ex);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod crc;
mod example;
mod framing;
mod pack;
mod samples;

pub use crc::{crc32c, masked_crc32c};
pub use example::{DecodeError, Example, Feature};
pub use framing::{has_tfrecord_extension, is_tfrecord, Compression, RecordReader, RecordWriter};
pub use pack::{merge_neighbors, pack_nbrs, PackConfig, PackReport};
pub use samples::{
    read_embeddings, read_examples, read_packed, read_samples, write_samples, FeatureType, PackedSamples, ReadReport,
    WriteOptions, DEFAULT_FEATURE_NAMES,
};

use std::io::Write;
use std::path::{Path, PathBuf};

/// What can go wrong reading or writing TFRecord files. Every variant from a file names it and, when
/// reading, the 0-based number of the record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TfRecordError {
    /// The file could not be opened or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed inside the file (e.g. a corrupt or truncated gzip stream).
    #[error("{}: record {record} (0-based), byte {offset}: read failed: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The 0-based record being read.
        record: u64,
        /// Offset in the (decompressed) stream where reading failed.
        offset: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends inside a record.
    #[error(
        "{}: record {record} (0-based) at byte {offset} is truncated: its {part} needs {expected} bytes, the file has {found}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The 0-based record.
        record: u64,
        /// Offset of the record's first byte in the (decompressed) stream.
        offset: u64,
        /// Which part is cut: `header`, `data` or `data checksum`.
        part: &'static str,
        /// Bytes that part needs.
        expected: u64,
        /// Bytes that were left.
        found: u64,
    },
    /// A checksum does not match: the file is corrupt (or not TFRecord).
    #[error(
        "{}: record {record} (0-based) at byte {offset}: {part} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})",
        path.display()
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The 0-based record.
        record: u64,
        /// Offset of the record's first byte in the (decompressed) stream.
        offset: u64,
        /// `length` or `data`.
        part: &'static str,
        /// The masked CRC-32C in the file.
        stored: u32,
        /// The masked CRC-32C of the bytes read.
        computed: u32,
    },
    /// A record is not a valid `tf.train.Example`.
    #[error("{}: record {record} (0-based) is not a tf.train.Example: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The 0-based record.
        record: u64,
        /// What the decoder found.
        #[source]
        source: DecodeError,
    },
    /// An Example lacks a feature, or a feature has the wrong type or size.
    #[error("{}: record {record} (0-based): {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 0-based record (the row, for [`write_samples`]).
        record: u64,
        /// What is wrong, naming the feature and the values.
        message: String,
    },
    /// The values read do not form a valid dataset (e.g. a NaN feature).
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

/// Writes a TFRecord file atomically ([`AtomicFile`](crate::io::AtomicFile)): `fill` appends
/// records; the file appears at `path` only when it returned `Ok`. Returns the number of records.
fn write_records<F>(path: &Path, compression: Compression, fill: F) -> Result<u64, TfRecordError>
where
    F: FnOnce(&mut RecordWriter<&mut dyn Write>) -> std::io::Result<()>,
{
    let write = || -> std::io::Result<u64> {
        let mut out = crate::io::AtomicFile::create(path)?;
        let records = match compression {
            Compression::None => {
                let mut w = RecordWriter::new(&mut out as &mut dyn Write);
                fill(&mut w)?;
                w.records()
            }
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
                let mut w = RecordWriter::new(&mut gz as &mut dyn Write);
                fill(&mut w)?;
                let records = w.records();
                gz.finish()?;
                records
            }
        };
        out.commit()?;
        Ok(records)
    };
    write().map_err(|source| TfRecordError::Io { path: path.to_path_buf(), source })
}
