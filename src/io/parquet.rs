//! Parquet output and recognition, shared by the samples, graph, packed-neighbor and
//! adversarial-record writers.

use super::AtomicFile;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowLeafColumn, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
use std::io::{self, Read};
use std::path::Path;

/// The zstd level of every Parquet file nsl writes.
///
/// Level 3 is zstd's own default and what the graph writer used; the samples, packed-neighbor and
/// adversarial-record writers used level 1 (the `parquet` crate's default). On nsl's tables (id
/// strings, `float32` features) level 3 writes slightly smaller files for slightly more
/// compression time, both within a few percent, and zstd decompresses at the same speed whatever
/// the level, so files are read as fast.
pub const ZSTD_LEVEL: i32 = 3;

/// The first (and last) four bytes of every Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";

/// What can go wrong while writing a Parquet file with [`write_parquet`]. Callers add the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParquetWriteError {
    /// Creating, writing or committing the file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A record batch could not be built.
    #[error("building a record batch: {0}")]
    Arrow(#[from] ArrowError),
    /// The Parquet encoder rejected the schema or a batch.
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] ParquetError),
}

/// Writes `batches` (each with `schema`) as one Parquet file at `path`, atomically (see
/// [`AtomicFile`]), zstd-compressed at [`ZSTD_LEVEL`]: [`ParquetStream`] fed from an iterator.
///
/// `options` carries everything else (key/value metadata, row-group size, per-column
/// dictionaries); its compression setting is overridden, so that every nsl file uses the same one.
/// The batches are pulled one at a time, so a caller can build them lazily and bound its memory.
/// With no batch the file holds the schema and no rows.
///
/// # Errors
/// [`ParquetWriteError`]: the first failing batch, encoder error or I/O error. The destination is
/// untouched and no temporary file is left behind then.
pub fn write_parquet<I>(
    path: &Path,
    schema: SchemaRef,
    options: WriterPropertiesBuilder,
    batches: I,
) -> Result<(), ParquetWriteError>
where
    I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
{
    let mut stream = ParquetStream::create(path, schema, options)?;
    for batch in batches {
        stream.write(&batch?)?;
    }
    stream.finish()
}

/// A Parquet file written batch by batch as its rows are produced, committed atomically by
/// [`ParquetStream::finish`].
///
/// Memory stays bounded whatever the file's size: the batches of one row group (the row-group
/// size of the writer options, the `parquet` crate's `max_row_group_row_count`) are held, then
/// encoded and flushed to the temporary file, **one column per thread** (rayon), so that a file of
/// a few wide string columns is written at the speed of several cores. The file is the one the
/// `parquet` crate's `ArrowWriter` writes from the same batches and options, byte for byte: each
/// column chunk is encoded by the same column writer whatever the thread, and the chunks are
/// appended in column order. (Options the parallel path does not implement — a byte limit on row
/// groups, content-defined chunking — make the stream hand the batches to `ArrowWriter` as they
/// come.) [`write_parquet`] is this type fed from an iterator.
///
/// Dropping the stream without [`ParquetStream::finish`] (an error on the caller's side, a panic)
/// removes the temporary file and leaves an existing `path` as it was.
///
/// ```
/// use arrow::array::{ArrayRef, Int64Array, RecordBatch};
/// use arrow::datatypes::{DataType, Field, Schema};
/// use nsl::io::ParquetStream;
/// use parquet::file::properties::WriterProperties;
/// use std::sync::Arc;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("x.parquet");
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
/// let mut stream = ParquetStream::create(&path, schema.clone(), WriterProperties::builder())?;
/// for chunk in [[1i64, 2], [3, 4]] {
///     let column: ArrayRef = Arc::new(Int64Array::from(chunk.to_vec()));
///     stream.write(&RecordBatch::try_new(schema.clone(), vec![column])?)?;
/// }
/// assert_eq!(stream.rows(), 4);
/// assert!(!path.exists(), "nothing is visible before the commit");
/// stream.finish()?;
/// assert!(nsl::io::is_parquet(&path)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParquetStream {
    inner: Inner,
    rows: u64,
}

enum Inner {
    /// Batches go to the `parquet` crate's writer as they come.
    Sequential(Box<ArrowWriter<AtomicFile>>),
    /// Row groups encoded one column per thread.
    Parallel(Box<Parallel>),
}

/// The state of the parallel path: the file writer and column-writer factory of an `ArrowWriter`
/// (so the schema, options and embedded Arrow schema are the same), and the batches of the open
/// row group.
struct Parallel {
    file: SerializedFileWriter<AtomicFile>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    max_rows: usize,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

impl std::fmt::Debug for ParquetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetStream").field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl ParquetStream {
    /// Starts writing `path` (a temporary sibling until [`ParquetStream::finish`]) with `schema`,
    /// zstd at [`ZSTD_LEVEL`] and the rest of `options` (see [`write_parquet`]).
    ///
    /// # Errors
    /// [`ParquetWriteError::Io`] if the temporary file cannot be created,
    /// [`ParquetWriteError::Parquet`] if the encoder rejects the schema or options.
    pub fn create(path: &Path, schema: SchemaRef, options: WriterPropertiesBuilder) -> Result<Self, ParquetWriteError> {
        let level = ZstdLevel::try_new(ZSTD_LEVEL)?;
        let props = options.set_compression(Compression::ZSTD(level)).build();
        let simple = props.max_row_group_bytes().is_none() && props.content_defined_chunking().is_none();
        let max_rows = props.max_row_group_row_count();
        let out = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
        let inner = match max_rows {
            Some(max_rows) if simple && max_rows > 0 => {
                let (file, factory) = writer.into_serialized_writer()?;
                Inner::Parallel(Box::new(Parallel {
                    file,
                    factory,
                    schema,
                    max_rows,
                    pending: Vec::new(),
                    pending_rows: 0,
                }))
            }
            _ => Inner::Sequential(Box::new(writer)),
        };
        Ok(ParquetStream { inner, rows: 0 })
    }

    /// Adds one batch (its schema must be the stream's); encodes and flushes a row group when it
    /// is full.
    ///
    /// # Errors
    /// [`ParquetWriteError::Parquet`] for a batch of another schema or an encoder error,
    /// [`ParquetWriteError::Io`] if flushing a row group fails.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetWriteError> {
        match &mut self.inner {
            Inner::Sequential(writer) => writer.write(batch)?,
            Inner::Parallel(p) => p.write(batch)?,
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the last row group and the footer, then renames the file into place (fsynced).
    ///
    /// # Errors
    /// [`ParquetWriteError`]; the destination is then untouched and the temporary file removed.
    pub fn finish(self) -> Result<(), ParquetWriteError> {
        // `into_inner` flushes the open row group and writes the footer (row-group index, metadata).
        let out = match self.inner {
            Inner::Sequential(writer) => writer.into_inner()?,
            Inner::Parallel(mut p) => {
                p.flush()?;
                p.file.into_inner()?
            }
        };
        out.commit()?;
        Ok(())
    }
}

impl Parallel {
    /// `ArrowWriter::write` with a row-count limit: a batch that overflows the open row group is
    /// split at the limit.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetWriteError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut rest = batch.clone();
        loop {
            let room = self.max_rows - self.pending_rows;
            let now = if rest.num_rows() > room {
                let head = rest.slice(0, room);
                rest = rest.slice(room, rest.num_rows() - room);
                head
            } else {
                std::mem::replace(&mut rest, RecordBatch::new_empty(self.schema.clone()))
            };
            self.pending_rows += now.num_rows();
            self.pending.push(now);
            if self.pending_rows >= self.max_rows {
                self.flush()?;
            }
            if rest.num_rows() == 0 {
                return Ok(());
            }
        }
    }

    /// Encodes the open row group, one column writer per thread, and appends it to the file.
    fn flush(&mut self) -> Result<(), ParquetWriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let writers = self.factory.create_column_writers(self.file.flushed_row_groups().len())?;
        // The leaves of each column writer, batch after batch (a nested field has several).
        let mut leaves: Vec<Vec<ArrowLeafColumn>> = (0..writers.len()).map(|_| Vec::new()).collect();
        for batch in self.pending.drain(..) {
            let mut slot = leaves.iter_mut();
            for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                for leaf in compute_leaves(field, column)? {
                    slot.next()
                        .ok_or_else(|| ParquetError::General("more leaf columns than column writers".into()))?
                        .push(leaf);
                }
            }
        }
        self.pending_rows = 0;
        let chunks: Vec<Result<ArrowColumnChunk, ParquetError>> = writers
            .into_par_iter()
            .zip(leaves)
            .map(|(mut writer, leaves)| {
                for leaf in &leaves {
                    writer.write(leaf)?;
                }
                writer.close()
            })
            .collect();
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk?.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }
}

/// Whether the file at `path` starts with the Parquet magic bytes `PAR1`. A file shorter than
/// four bytes is not Parquet. Formats are recognized by these bytes before any extension.
///
/// # Errors
/// The `io::Error` of opening or reading the file.
pub fn is_parquet(path: &Path) -> io::Result<bool> {
    let mut head = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path)?.take(MAGIC.len() as u64).read_to_end(&mut head)?;
    Ok(head == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
    }

    fn batch(values: &[i64]) -> Result<RecordBatch, ArrowError> {
        let column: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
        RecordBatch::try_new(schema(), vec![column])
    }

    #[test]
    fn writes_batches_with_the_one_compression() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        // The caller's compression is overridden.
        let options = WriterProperties::builder().set_compression(Compression::SNAPPY);
        write_parquet(&path, schema(), options, [batch(&[1, 2]), batch(&[3])]).unwrap();
        assert!(is_parquet(&path).unwrap());
        let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(builder.metadata().file_metadata().num_rows(), 3);
        // The file records the codec, not the level.
        let compression = builder.metadata().row_group(0).column(0).compression();
        assert!(matches!(compression, Compression::ZSTD(_)), "{compression:?}");
    }

    /// Batches of 7, 0 and 40 rows over string, float and nullable columns.
    fn mixed_batches() -> (SchemaRef, Vec<RecordBatch>) {
        use arrow::array::{Float32Array, StringArray};
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, false),
            Field::new("x", DataType::Int64, true),
            Field::new("f", DataType::Float32, false),
        ]));
        let batch = |lo: i64, n: i64| {
            let s: ArrayRef =
                Arc::new(StringArray::from_iter_values((lo..lo + n).map(|i| format!("id{}", i * 7 % 13))));
            let x: ArrayRef = Arc::new(Int64Array::from_iter((lo..lo + n).map(|i| (i % 3 != 0).then_some(i))));
            let f: ArrayRef = Arc::new(Float32Array::from_iter_values((lo..lo + n).map(|i| i as f32 / 3.0)));
            RecordBatch::try_new(schema.clone(), vec![s, x, f]).unwrap()
        };
        (schema.clone(), vec![batch(0, 7), batch(7, 0), batch(7, 40)])
    }

    #[test]
    fn the_parallel_stream_writes_the_bytes_of_arrow_writer() {
        // Row groups of 5 rows: batches are split across row groups, the last one is partial.
        for max_rows in [5, 47, 1000] {
            let (schema, batches) = mixed_batches();
            let options = || {
                WriterProperties::builder().set_max_row_group_row_count(Some(max_rows)).set_key_value_metadata(Some(
                    vec![parquet::file::metadata::KeyValue::new("k".to_owned(), "v".to_owned())],
                ))
            };
            let level = ZstdLevel::try_new(ZSTD_LEVEL).unwrap();
            let mut want = Vec::new();
            let props = options().set_compression(Compression::ZSTD(level)).build();
            let mut writer = ArrowWriter::try_new(&mut want, schema.clone(), Some(props)).unwrap();
            for b in &batches {
                writer.write(b).unwrap();
            }
            writer.close().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.parquet");
            let mut stream = ParquetStream::create(&path, schema.clone(), options()).unwrap();
            assert!(matches!(stream.inner, Inner::Parallel(_)));
            for b in &batches {
                stream.write(b).unwrap();
            }
            assert_eq!(stream.rows(), 47);
            stream.finish().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), want, "row groups of {max_rows}");
            let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(builder.metadata().num_row_groups(), 47usize.div_ceil(max_rows));
        }
    }

    #[test]
    fn a_dropped_stream_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut stream = ParquetStream::create(&path, schema(), WriterProperties::builder()).unwrap();
        stream.write(&batch(&[1, 2]).unwrap()).unwrap();
        drop(stream);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temporary file left behind");
    }

    #[test]
    fn a_failing_batch_leaves_the_old_file_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        std::fs::write(&path, "old").unwrap();
        let bad = Err(ArrowError::InvalidArgumentError("no such batch".into()));
        let err = write_parquet(&path, schema(), WriterProperties::builder(), [batch(&[1]), bad]).unwrap_err();
        assert!(matches!(err, ParquetWriteError::Arrow(_)), "{err:?}");
        assert!(err.to_string().contains("no such batch"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }

    #[test]
    fn sniffs_the_magic_bytes_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.parquet");
        std::fs::write(&fake, "id,x\n").unwrap();
        assert!(!is_parquet(&fake).unwrap());
        let short = dir.path().join("short.parquet");
        std::fs::write(&short, "PA").unwrap();
        assert!(!is_parquet(&short).unwrap());
        let real = dir.path().join("real.csv");
        write_parquet(&real, schema(), WriterProperties::builder(), [batch(&[1])]).unwrap();
        assert!(is_parquet(&real).unwrap());
        assert_eq!(is_parquet(&dir.path().join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
