//! TFRecord framing: each record is
//!
//! ```text
//! u64 length (little-endian) | u32 masked_crc32c(length bytes) | data[length] | u32 masked_crc32c(data)
//! ```
//!
//! optionally inside one gzip stream (TensorFlow's `compression_type="GZIP"`).

use super::crc::masked_crc32c;
use super::TfRecordError;
use crate::io::open_maybe_gz;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// Compression of a TFRecord file being written. Reading needs no option: gzip is recognized by
/// its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Plain records (TensorFlow's default, `compression_type=""`). Default.
    #[default]
    None,
    /// One gzip stream around all records (`compression_type="GZIP"`), at zlib's default level 6.
    Gzip,
}

/// A streaming reader of the records of one TFRecord file, plain or gzipped: an iterator of
/// record payloads, checked against both checksums as they are read. It holds one record in
/// memory at a time.
///
/// After the first error the iterator ends (it is fused): a bad record leaves the position of
/// the next one unknown.
pub struct RecordReader {
    path: PathBuf,
    reader: Box<dyn BufRead>,
    record: u64,
    offset: u64,
    done: bool,
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader").field("path", &self.path).field("record", &self.record).finish()
    }
}

impl RecordReader {
    /// Opens `path` (gzipped or not, recognized by content).
    ///
    /// # Errors
    /// [`TfRecordError::Io`] if the file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<RecordReader, TfRecordError> {
        let path = path.as_ref();
        let reader = open_maybe_gz(path).map_err(|source| TfRecordError::Io { path: path.to_path_buf(), source })?;
        Ok(RecordReader::new(reader, path))
    }

    /// Reads records from `reader` (already decompressed); `path` is only used in error messages.
    pub fn new(reader: Box<dyn BufRead>, path: impl Into<PathBuf>) -> RecordReader {
        RecordReader { path: path.into(), reader, record: 0, offset: 0, done: false }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records returned so far (the 0-based number of the next one).
    pub fn records_read(&self) -> u64 {
        self.record
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, TfRecordError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.read_error(filled, source)),
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    fn read_error(&self, extra: usize, source: io::Error) -> TfRecordError {
        TfRecordError::Read { path: self.path.clone(), record: self.record, offset: self.offset + extra as u64, source }
    }

    fn truncated(&self, start: u64, part: &'static str, expected: u64, found: u64) -> TfRecordError {
        TfRecordError::Truncated { path: self.path.clone(), record: self.record, offset: start, part, expected, found }
    }

    fn next_record(&mut self) -> Result<Option<Vec<u8>>, TfRecordError> {
        let start = self.offset;
        let mut header = [0u8; 12];
        let got = self.fill(&mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(self.truncated(start, "header", 12, got as u64));
        }
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let computed = masked_crc32c(&header[..8]);
        if stored != computed {
            return Err(TfRecordError::Checksum {
                path: self.path.clone(),
                record: self.record,
                offset: start,
                part: "length",
                stored,
                computed,
            });
        }
        let length = u64::from_le_bytes([
            header[0], header[1], header[2], header[3], header[4], header[5], header[6], header[7],
        ]);
        // Grow as the bytes arrive rather than trusting `length` for the allocation.
        let mut data = Vec::with_capacity(length.min(1 << 20) as usize);
        let got = (&mut self.reader).take(length).read_to_end(&mut data);
        let got = match got {
            Ok(n) => n,
            Err(source) => return Err(self.read_error(data.len(), source)),
        };
        self.offset += got as u64;
        if (got as u64) < length {
            return Err(self.truncated(start, "data", length, got as u64));
        }
        let mut footer = [0u8; 4];
        let got = self.fill(&mut footer)?;
        if got < footer.len() {
            return Err(self.truncated(start, "data checksum", 4, got as u64));
        }
        let stored = u32::from_le_bytes(footer);
        let computed = masked_crc32c(&data);
        if stored != computed {
            return Err(TfRecordError::Checksum {
                path: self.path.clone(),
                record: self.record,
                offset: start,
                part: "data",
                stored,
                computed,
            });
        }
        self.record += 1;
        Ok(Some(data))
    }
}

impl Iterator for RecordReader {
    type Item = Result<Vec<u8>, TfRecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.next_record().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }
}

/// Writes records with TFRecord framing to any byte sink (compress the sink for gzip).
#[derive(Debug)]
pub struct RecordWriter<W: Write> {
    inner: W,
    records: u64,
}

impl<W: Write> RecordWriter<W> {
    /// A writer appending records to `inner`.
    pub fn new(inner: W) -> Self {
        RecordWriter { inner, records: 0 }
    }

    /// Appends one record.
    ///
    /// # Errors
    /// The sink's `io::Error`.
    pub fn write_record(&mut self, data: &[u8]) -> io::Result<()> {
        let length = (data.len() as u64).to_le_bytes();
        let mut header = [0u8; 12];
        header[..8].copy_from_slice(&length);
        header[8..].copy_from_slice(&masked_crc32c(&length).to_le_bytes());
        self.inner.write_all(&header)?;
        self.inner.write_all(data)?;
        self.inner.write_all(&masked_crc32c(data).to_le_bytes())?;
        self.records += 1;
        Ok(())
    }

    /// Number of records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The sink.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Whether `path` holds TFRecord: its name ends in `.tfr`, `.tfrecord` or `.tfrecords` (optionally
/// followed by `.gz`), or its first 12 (decompressed) bytes are a record header whose length
/// checksum matches — a 1 in 2³² accident for any other file.
pub fn is_tfrecord(path: &Path) -> bool {
    if has_tfrecord_extension(path) {
        return true;
    }
    let Ok(mut reader) = open_maybe_gz(path) else {
        return false;
    };
    let mut header = [0u8; 12];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(k) => filled += k,
        }
    }
    u32::from_le_bytes([header[8], header[9], header[10], header[11]]) == masked_crc32c(&header[..8])
}

/// Whether the name of `path` ends in `.tfr`, `.tfrecord` or `.tfrecords`, optionally followed by
/// `.gz` (case-insensitive): how an output's format is chosen.
pub fn has_tfrecord_extension(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".tfr", ".tfrecord", ".tfrecords"].iter().any(|ext| name.ends_with(ext))
}
