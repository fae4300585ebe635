//! File helpers shared by every reader and writer, and the [`Location`] that error messages use to
//! point at the offending line, row or column.
//!
//! | need | helper |
//! |---|---|
//! | read a file that may be gzipped (sniffed by its magic bytes) | [`open_maybe_gz`], [`read_maybe_gz`] |
//! | write a file atomically (no half-written output, ever) | [`AtomicFile`], [`write_bytes`] |
//! | check before long work that an output can be written | [`check_writable`] |
//! | write a Parquet file (atomically, one compression for all) | [`write_parquet`] |
//! | recognize a Parquet file (by its magic bytes) | [`is_parquet`] |
//! | write several files that become visible together | [`OutputSet`] (and [`finish_pending_commits`], which readers call) |
//! | write a directory that replaces the old one whole | [`StagedDir`] |
//! | refuse two outputs naming one file, or an output naming an input | [`check_paths`] |
//! | remove the temporary files on `SIGINT`/`SIGTERM` | [`remove_live_temp_files_and_exit`] |
//! | check a size before allocating; bound a line's length | [`check_memory`], [`read_line_limited`] |
//!
//! These functions return `io::Error` (or [`ParquetWriteError`]) without the path: each caller
//! maps them into its own typed error naming the file (e.g. `GraphError::Io { path, source }`).

mod atomic;
mod journal;
mod limits;
mod live;
mod parquet;
mod staged;

pub use atomic::{check_writable, stdout_is_an_output, write_bytes, AtomicFile};
pub use journal::finish_pending_commits;
pub use limits::{
    available_memory, check_memory, read_line_limited, read_to_end_limited, MemoryLimitError, FALLBACK_MEMORY_BYTES,
    MAX_LINE_BYTES,
};
pub use live::{live_temp_files, remove_live_temp_files, remove_live_temp_files_and_exit};
pub use parquet::{is_parquet, write_parquet, ParquetStream, ParquetWriteError, ZSTD_LEVEL};
pub use staged::{check_paths, check_replaceable, OutputSet, PathConflict, StagedDir};

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Where in a file something went wrong. Displayed after the file name, e.g. `cora.cites: line 12, column 2`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Location {
    /// The file as a whole.
    #[default]
    File,
    /// A 1-based line of a text file.
    Line(usize),
    /// A 1-based line and a column (1-based index or name).
    LineColumn(usize, String),
    /// A 0-based row of a table.
    Row(usize),
    /// A 0-based row and a named column of a table.
    RowColumn(usize, String),
    /// A named column of a table.
    Column(String),
    /// A byte offset in a binary file.
    Byte(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(l) => write!(f, ": line {l}"),
            Location::LineColumn(l, c) => write!(f, ": line {l}, column {c}"),
            Location::Row(r) => write!(f, ": row {r}"),
            Location::RowColumn(r, c) => write!(f, ": row {r}, column `{c}`"),
            Location::Column(c) => write!(f, ": column `{c}`"),
            Location::Byte(b) => write!(f, ": byte {b}"),
        }
    }
}

/// Opens `path` for reading, decompressing it on the fly when it starts with the gzip magic bytes
/// (`1f 8b`), whatever its extension.
///
/// # Errors
/// The `io::Error` of opening or peeking at the file, and `InvalidData` for a file named `.gz`
/// that is not gzip (an empty one included). A truncated gzip stream surfaces later, as an
/// `UnexpectedEof` from the returned reader.
pub fn open_maybe_gz(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let head = reader.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
    } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        // A `.gz` name promises gzip: an empty or plain file under it is damaged (a 0-byte `.gz`
        // is no gzip stream at all; the smallest holds 20 bytes), not an empty input.
        let found = match head.len() {
            0 => "it is empty".to_owned(),
            _ => format!("it starts with the bytes {:02x?}", &head[..head.len().min(4)]),
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("named `.gz` but not gzip-compressed ({found}; gzip starts with 1f 8b)"),
        ))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads the whole (possibly gzipped) file into memory.
///
/// # Errors
/// Any `io::Error` of opening, reading or decompressing the file.
pub fn read_maybe_gz(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open_maybe_gz(path)?.read_to_end(&mut out)?;
    Ok(out)
}

/// The names in `dir`, sorted (for the tests of this module's writers).
#[cfg(test)]
pub(crate) fn test_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gz_is_transparent() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.txt");
        let gz = dir.path().join("a.txt.gz");
        std::fs::write(&plain, b"hello\n").unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"hello\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_maybe_gz(&plain).unwrap(), b"hello\n");
        assert_eq!(read_maybe_gz(&gz).unwrap(), b"hello\n");
    }
}
