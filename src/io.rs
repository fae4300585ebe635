//! File helpers shared by every reader and writer: transparent gzip input, atomic output, and the
//! [`Location`] that error messages use to point at the offending line, row or column.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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
/// The `io::Error` of opening or peeking at the file. A truncated gzip stream surfaces later, as an
/// `UnexpectedEof` from the returned reader.
pub fn open_maybe_gz(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let head = reader.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
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

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is renamed over
/// `path` only when `write` succeeded. A failure (or a panic) never leaves a half-written `path`
/// behind, and an existing `path` stays untouched until the new content is complete.
///
/// # Errors
/// Whatever `write` returns, or the `io::Error` of creating, flushing or renaming the file,
/// converted with `From<io::Error>`.
pub fn write_atomic<E, F>(path: &Path, write: F) -> Result<(), E>
where
    E: From<io::Error>,
    F: FnOnce(&mut BufWriter<File>) -> Result<(), E>,
{
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`], for writers that need the `File` itself (e.g. Parquet's `ArrowWriter`).
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_file<E, F>(path: &Path, write: F) -> Result<(), E>
where
    E: From<io::Error>,
    F: FnOnce(File) -> Result<File, E>,
{
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let file = write(file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`], for writers that insist on a path (e.g. safetensors): `write` gets the
/// temporary path to fill, which is renamed to `path` when `write` succeeded and removed otherwise.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_path<E, F>(path: &Path, write: F) -> Result<(), E>
where
    E: From<io::Error>,
    F: FnOnce(&Path) -> Result<(), E>,
{
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(E::from));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary sibling of `path` used by the atomic writers: `.NAME.PID.tmp` in the same
/// directory, so the final rename never crosses a file system.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp_name = format!(".{name}.{}.tmp", std::process::id());
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tmp_name),
        _ => PathBuf::from(tmp_name),
    }
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
///
/// # Errors
/// The `io::Error` of writing or renaming.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |out| out.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let r: io::Result<()> = write_atomic(&path, |out| {
            out.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temp file left behind");
    }

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
