//! `nsl worker TASK`: the executors' side of the Spark jobs in `scripts/spark/`. Reads an Arrow
//! IPC stream on stdin and writes one on stdout; the job feeds it each partition's batches
//! (`mapInArrow`), so rows never travel as text.
//!
//! Tasks (input columns → output columns):
//! - `lsh-keys`: `id`, `embedding` → one row per round: `round` (int32), `code` (int64, the bucket
//!   code's bits), `codes` (list<int64>, every round's code), `id`, `embedding` (list<float32>).
//!   Zero vectors get no rows (the build skips them).
//! - `lsh-bucket`: rows sorted by (`round`, `code`, `ci`, `cj`), with `side` (int8), `codes`, `id`,
//!   `embedding` → the bucket's edges (`source`, `target`, `weight`, `kind`), both directions. A
//!   group with `ci = cj` is one bucket (or chunk), all its pairs; otherwise the pairs between its
//!   `side = 0` and `side = 1` rows. Pairs whose rows shared a bucket in an earlier round are left
//!   out (they were found in that round).
//! - `exact-block`: the same without `round`, `code` and `codes`: block pairs `(ci, cj)` of the
//!   exact search.
//! - `col-sums`: `embedding` → one row: `rows` (int64), `bins` (list<int64>), exact column sums.
//! - `col-mean`: `col-sums` rows → prints the merged mean on stdout as comma-separated `f32` bit
//!   patterns in hex (the `--center` argument of `lsh-keys`).
//! - `pack`: rows sorted by `source`: the sample itself (`role` 0: `features`, `label`) and its
//!   candidate neighbors (`role` 1: `target`, `features`, `weight`) → `nsl pack-nbrs`'s columns
//!   (features as list<float32>): the `K` best by weight, ties to the larger id.
//!
//! A subcommand rather than a Python extension module: the executors need only the release binary
//! (no wheel built per Python version and platform), the Rust side uses all cores of the task, and a
//! failure is a process exit with a message on stderr that the job reports.

use anyhow::{bail, Context, Result};
use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float32Builder, Int32Array, Int64Array, Int64Builder, Int8Array, ListArray,
    ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float32Type, Int64Type, Schema};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use clap::{Args, Subcommand};
use ndarray::ArrayView2;
use nsl::build::distributed::{block_pairs, lsh_codes, ColumnSums, SUM_BINS};
use std::io::{BufReader, BufWriter, Write};
use std::sync::Arc;

/// Output rows per batch written.
const OUT_ROWS: usize = 1 << 16;

/// The tasks of `nsl worker`.
#[derive(Subcommand, Debug)]
pub enum WorkerCommand {
    /// Rows → one record per LSH round keyed by (round, bucket code).
    LshKeys(KeysArgs),
    /// Rows grouped by (round, code, ci, cj) → the edges of each bucket or chunk pair.
    LshBucket(PairArgs),
    /// Rows grouped by block pair (ci, cj) → the edges of the exact search.
    ExactBlock(PairArgs),
    /// Embeddings → exact column sums (one row per input stream).
    ColSums,
    /// Column sums → the mean, as hex f32 bits on stdout.
    ColMean,
    /// Samples and candidate neighbors grouped by source → NSL's pack_nbrs rows.
    Pack(PackArgs),
}

/// Flags of `nsl worker lsh-keys`.
#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Hyperplanes per round (1 to 63).
    #[arg(long)]
    splits: u32,
    /// Rounds.
    #[arg(long)]
    rounds: u32,
    /// Seed of the hyperplanes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The mean to subtract before hashing, as `col-mean` prints it.
    #[arg(long, value_name = "HEX,...")]
    center: Option<String>,
}

/// Flags of `nsl worker lsh-bucket` and `exact-block`.
#[derive(Args, Debug)]
pub struct PairArgs {
    /// Minimum cosine similarity of an edge, inclusive.
    #[arg(long, allow_negative_numbers = true)]
    threshold: f64,
}

/// Flags of `nsl worker pack`.
#[derive(Args, Debug)]
pub struct PackArgs {
    /// Neighbors per sample.
    #[arg(long)]
    max_neighbors: usize,
    /// Write a `label` column (the samples have labels).
    #[arg(long)]
    label: bool,
}

/// Runs a worker task on stdin and stdout.
pub fn run(cmd: &WorkerCommand) -> Result<()> {
    let reader = StreamReader::try_new(BufReader::new(std::io::stdin().lock()), None)
        .context("reading the Arrow IPC stream on stdin")?;
    let out = BufWriter::new(std::io::stdout().lock());
    match cmd {
        WorkerCommand::LshKeys(a) => lsh_keys(reader, out, a),
        WorkerCommand::LshBucket(a) => pairs(reader, out, a.threshold, true),
        WorkerCommand::ExactBlock(a) => pairs(reader, out, a.threshold, false),
        WorkerCommand::ColSums => col_sums(reader, out),
        WorkerCommand::ColMean => col_mean(reader, out),
        WorkerCommand::Pack(a) => pack(reader, out, a),
    }
}

type Input = StreamReader<BufReader<std::io::StdinLock<'static>>>;
type Output = BufWriter<std::io::StdoutLock<'static>>;

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch.column_by_name(name).with_context(|| format!("input has no `{name}` column"))
}

/// The ids of a batch as strings (any type Arrow casts to utf8).
fn ids(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let c = cast(column(batch, name)?, &DataType::Utf8).with_context(|| format!("column `{name}` as strings"))?;
    let s = c.as_string::<i32>().clone();
    if s.null_count() > 0 {
        bail!("column `{name}` has a null id");
    }
    Ok(s)
}

/// The embeddings of a batch, row-major, and their width (`None` for an empty batch).
fn embeddings(batch: &RecordBatch, name: &str) -> Result<(Vec<f32>, Option<usize>)> {
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let c = cast(column(batch, name)?, &DataType::List(item))
        .with_context(|| format!("column `{name}` as a list of float32"))?;
    let list = c.as_list::<i32>();
    let mut width = None;
    let mut out = Vec::new();
    for r in 0..list.len() {
        if list.is_null(r) {
            bail!("row {r}: null `{name}`");
        }
        let v = list.value(r);
        let v = v.as_primitive::<Float32Type>();
        if v.null_count() > 0 {
            bail!("row {r}: null value in `{name}`");
        }
        match width {
            None => width = Some(v.len()),
            Some(w) if w != v.len() => bail!("row {r}: {} values in `{name}` but {w} before", v.len()),
            _ => {}
        }
        out.extend_from_slice(v.values());
    }
    Ok((out, width))
}

fn list_f32(rows: &[f32], d: usize) -> ListArray {
    let mut b = ListBuilder::new(Float32Builder::with_capacity(rows.len()));
    for row in rows.chunks_exact(d.max(1)) {
        b.values().append_slice(row);
        b.append(true);
    }
    b.finish()
}

fn list_type(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

fn parse_center(text: &str) -> Result<Vec<f32>> {
    text.split(',')
        .map(|h| {
            u32::from_str_radix(h.trim(), 16).map(f32::from_bits).with_context(|| format!("bad --center value `{h}`"))
        })
        .collect()
}

fn lsh_keys(reader: Input, out: Output, a: &KeysArgs) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("round", DataType::Int32, false),
        Field::new("code", DataType::Int64, false),
        Field::new("codes", list_type(DataType::Int64), false),
        Field::new("id", DataType::Utf8, false),
        Field::new("embedding", list_type(DataType::Float32), false),
    ]));
    let center = a.center.as_deref().map(parse_center).transpose()?;
    let mut writer = StreamWriter::try_new(out, &schema)?;
    let rounds = a.rounds as usize;
    for batch in reader {
        let batch = batch.context("reading an input batch")?;
        let ids = ids(&batch, "id")?;
        let (data, Some(d)) = embeddings(&batch, "embedding")? else { continue };
        let n = ids.len();
        let view = ArrayView2::from_shape((n, d), &data[..])?;
        let codes = lsh_codes(view, a.seed, a.splits, a.rounds, center.as_deref())?;
        let k = codes.rows.len();
        let mut round = Vec::with_capacity(k * rounds);
        let mut code = Vec::with_capacity(k * rounds);
        let mut all = ListBuilder::new(Int64Builder::with_capacity(k * rounds * rounds));
        let mut id = StringBuilder::new();
        let mut emb = ListBuilder::new(Float32Builder::with_capacity(k * rounds * d));
        for (j, &row) in codes.rows.iter().enumerate() {
            let row = row as usize;
            let cs = &codes.codes[j * rounds..(j + 1) * rounds];
            for (r, &c) in cs.iter().enumerate() {
                round.push(r as i32);
                code.push(c as i64);
                all.values().append_slice(&cs.iter().map(|&x| x as i64).collect::<Vec<_>>());
                all.append(true);
                id.append_value(ids.value(row));
                emb.values().append_slice(&data[row * d..(row + 1) * d]);
                emb.append(true);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(round)),
            Arc::new(Int64Array::from(code)),
            Arc::new(all.finish()),
            Arc::new(id.finish()),
            Arc::new(emb.finish()),
        ];
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    writer.finish()?;
    Ok(())
}

/// The rows of one group of a pair task.
#[derive(Default)]
struct Group {
    key: Option<(i32, i64, i32, i32)>,
    side: Vec<i8>,
    ids: Vec<String>,
    emb: Vec<f32>,
    codes: Vec<Vec<i64>>,
}

/// Edges collected for output, flushed in batches.
struct Edges {
    writer: StreamWriter<Output>,
    schema: Arc<Schema>,
    source: StringBuilder,
    target: StringBuilder,
    weight: Vec<f32>,
}

impl Edges {
    fn push(&mut self, s: &str, t: &str, w: f32) -> Result<()> {
        self.source.append_value(s);
        self.target.append_value(t);
        self.weight.push(w);
        if self.weight.len() >= OUT_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let n = self.weight.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.target.finish()),
            Arc::new(Float32Array::from(std::mem::take(&mut self.weight))),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n("similarity", n))),
        ];
        self.writer.write(&RecordBatch::try_new(self.schema.clone(), columns)?)?;
        Ok(())
    }
}

fn pairs(reader: Input, out: Output, threshold: f64, lsh: bool) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("weight", DataType::Float32, false),
        Field::new("kind", DataType::Utf8, false),
    ]));
    let writer = StreamWriter::try_new(out, &schema)?;
    let mut edges =
        Edges { writer, schema, source: StringBuilder::new(), target: StringBuilder::new(), weight: Vec::new() };
    let mut group = Group::default();
    let mut width: Option<usize> = None;
    for batch in reader {
        let batch = batch.context("reading an input batch")?;
        let n = batch.num_rows();
        if n == 0 {
            continue;
        }
        let int32 = |name: &str| -> Result<Int32Array> {
            Ok(cast(column(&batch, name)?, &DataType::Int32)?.as_primitive::<arrow::datatypes::Int32Type>().clone())
        };
        let (ci, cj) = (int32("ci")?, int32("cj")?);
        let side = cast(column(&batch, "side")?, &DataType::Int8)?;
        let side: &Int8Array = side.as_primitive();
        let (round, code) = if lsh {
            let code = cast(column(&batch, "code")?, &DataType::Int64)?;
            (int32("round")?, code.as_primitive::<Int64Type>().clone())
        } else {
            (Int32Array::from(vec![0; n]), Int64Array::from(vec![0; n]))
        };
        let codes = if lsh {
            Some(cast(column(&batch, "codes")?, &list_type(DataType::Int64))?.as_list::<i32>().clone())
        } else {
            None
        };
        let ids = ids(&batch, "id")?;
        let (data, d) = embeddings(&batch, "embedding")?;
        let d = d.unwrap_or(0);
        match width {
            Some(w) if w != d => bail!("embeddings of width {d} after width {w}"),
            _ => width = Some(d),
        }
        for r in 0..n {
            let key = (round.value(r), code.value(r), ci.value(r), cj.value(r));
            if group.key != Some(key) {
                finish_group(&mut group, d, threshold, &mut edges)?;
                group.key = Some(key);
            }
            group.side.push(side.value(r));
            group.ids.push(ids.value(r).to_owned());
            group.emb.extend_from_slice(&data[r * d..(r + 1) * d]);
            if let Some(c) = &codes {
                let v = c.value(r);
                group.codes.push(v.as_primitive::<Int64Type>().values().to_vec());
            }
        }
    }
    finish_group(&mut group, width.unwrap_or(0), threshold, &mut edges)?;
    edges.flush()?;
    edges.writer.finish()?;
    Ok(())
}

/// Finds the pairs of the buffered group, writes them (both directions) and empties the group.
fn finish_group(g: &mut Group, d: usize, threshold: f64, edges: &mut Edges) -> Result<()> {
    let Some((round, _, ci, cj)) = g.key else { return Ok(()) };
    let n = g.ids.len();
    // Left rows (side 0) first, then right rows; a diagonal group is all one side.
    let mut order: Vec<usize> = (0..n).collect();
    let split = if ci == cj {
        None
    } else {
        order.sort_by_key(|&r| g.side[r]);
        Some(order.iter().filter(|&&r| g.side[r] == 0).count())
    };
    let mut emb = Vec::with_capacity(n * d);
    let before = round.max(0) as usize;
    let mut earlier = Vec::with_capacity(n * before);
    for &r in &order {
        emb.extend_from_slice(&g.emb[r * d..(r + 1) * d]);
        if before > 0 {
            let c = g.codes.get(r).filter(|c| c.len() >= before).context("a row has fewer codes than its round")?;
            earlier.extend(c[..before].iter().map(|&x| x as u64));
        }
    }
    let view = ArrayView2::from_shape((n, d), &emb[..])?;
    let found = block_pairs(view, split, &earlier, threshold)?;
    for e in &found.pairs {
        let (s, t) = (&g.ids[order[e.source as usize]], &g.ids[order[e.target as usize]]);
        edges.push(s, t, e.weight)?;
        edges.push(t, s, e.weight)?;
    }
    g.key = None;
    g.side.clear();
    g.ids.clear();
    g.emb.clear();
    g.codes.clear();
    Ok(())
}

fn col_sums(reader: Input, out: Output) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("rows", DataType::Int64, false),
        Field::new("bins", list_type(DataType::Int64), false),
    ]));
    let mut sums: Option<ColumnSums> = None;
    for batch in reader {
        let batch = batch.context("reading an input batch")?;
        let (data, Some(d)) = embeddings(&batch, "embedding")? else { continue };
        let s = sums.get_or_insert_with(|| ColumnSums::new(d));
        if s.dim() != d {
            bail!("embeddings of width {d} after width {}", s.dim());
        }
        data.chunks_exact(d.max(1)).for_each(|row| s.add_row(row));
    }
    let mut writer = StreamWriter::try_new(out, &schema)?;
    if let Some(s) = sums {
        let mut bins = ListBuilder::new(Int64Builder::new());
        bins.values().append_slice(&s.bins);
        bins.append(true);
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![s.rows as i64])), Arc::new(bins.finish())];
        writer.write(&RecordBatch::try_new(schema, columns)?)?;
    }
    writer.finish()?;
    Ok(())
}

fn col_mean(reader: Input, mut out: Output) -> Result<()> {
    let mut total: Option<ColumnSums> = None;
    for batch in reader {
        let batch = batch.context("reading an input batch")?;
        let rows = cast(column(&batch, "rows")?, &DataType::Int64)?;
        let rows = rows.as_primitive::<Int64Type>();
        let bins = column(&batch, "bins")?.as_list_opt::<i32>().context("`bins` is not a list")?;
        for r in 0..batch.num_rows() {
            let b = bins.value(r);
            let b = cast(&b, &DataType::Int64)?;
            let b = b.as_primitive::<Int64Type>().values().to_vec();
            if !b.len().is_multiple_of(SUM_BINS) {
                bail!("{} bins: not a multiple of {SUM_BINS}", b.len());
            }
            let part = ColumnSums { rows: rows.value(r) as u64, bins: b };
            match &mut total {
                None => total = Some(part),
                Some(t) if t.bins.len() == part.bins.len() => t.merge(&part),
                Some(t) => bail!("column sums of {} and {} columns", t.dim(), part.dim()),
            }
        }
    }
    let total = total.context("no column sums on stdin")?;
    let hex: Vec<String> = total.mean().iter().map(|m| format!("{:08x}", m.to_bits())).collect();
    writeln!(out, "{}", hex.join(","))?;
    out.flush()?;
    Ok(())
}

/// One sample and its candidate neighbors.
#[derive(Default)]
struct PackGroup {
    source: Option<String>,
    sample: Option<(Vec<f32>, Option<i64>)>,
    /// (target, features, weight).
    nbrs: Vec<(String, Vec<f32>, f32)>,
}

fn pack(reader: Input, out: Output, a: &PackArgs) -> Result<()> {
    let k = a.max_neighbors;
    let mut fields =
        vec![Field::new("id", DataType::Utf8, false), Field::new("features", list_type(DataType::Float32), false)];
    if a.label {
        fields.push(Field::new("label", DataType::Int64, false));
    }
    fields.push(Field::new(nsl::graph::packed::NUM_NEIGHBORS, DataType::Int64, false));
    for j in 0..k {
        fields.push(Field::new(nsl::graph::packed::neighbor_id(j), DataType::Utf8, false));
        fields.push(Field::new(nsl::graph::packed::neighbor_features(j), list_type(DataType::Float32), false));
        fields.push(Field::new(nsl::graph::packed::neighbor_weight(j), DataType::Float32, false));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut writer = StreamWriter::try_new(out, &schema)?;
    let mut rows: Vec<PackGroup> = Vec::new();
    let mut group = PackGroup::default();
    let mut width: Option<usize> = None;
    for batch in reader {
        let batch = batch.context("reading an input batch")?;
        let n = batch.num_rows();
        if n == 0 {
            continue;
        }
        let source = ids(&batch, "source")?;
        let role = cast(column(&batch, "role")?, &DataType::Int8)?;
        let role: &Int8Array = role.as_primitive();
        let target = cast(column(&batch, "target")?, &DataType::Utf8)?;
        let target = target.as_string::<i32>();
        let weight = cast(column(&batch, "weight")?, &DataType::Float32)?;
        let weight = weight.as_primitive::<Float32Type>();
        let label = if a.label { Some(cast(column(&batch, "label")?, &DataType::Int64)?) } else { None };
        let (data, d) = embeddings(&batch, "features")?;
        let d = d.unwrap_or(0);
        match width {
            Some(w) if w != d => bail!("features of width {d} after width {w}"),
            _ => width = Some(d),
        }
        for r in 0..n {
            let s = source.value(r);
            if group.source.as_deref() != Some(s) {
                if group.source.is_some() {
                    rows.push(std::mem::take(&mut group));
                }
                group.source = Some(s.to_owned());
            }
            let f = data[r * d..(r + 1) * d].to_vec();
            if role.value(r) == 0 {
                if group.sample.is_some() {
                    bail!("sample id `{s}` appears twice");
                }
                let l = match &label {
                    Some(l) if l.is_null(r) => bail!("sample `{s}` has no label"),
                    Some(l) => Some(l.as_primitive::<Int64Type>().value(r)),
                    None => None,
                };
                group.sample = Some((f, l));
            } else {
                if target.is_null(r) || weight.is_null(r) {
                    bail!("neighbor row of `{s}` without target or weight");
                }
                group.nbrs.push((target.value(r).to_owned(), f, weight.value(r)));
            }
            if rows.len() >= 4096 {
                write_packed(&mut writer, &schema, &mut rows, k, d, a.label)?;
            }
        }
    }
    if group.source.is_some() {
        rows.push(group);
    }
    write_packed(&mut writer, &schema, &mut rows, k, width.unwrap_or(0), a.label)?;
    writer.finish()?;
    Ok(())
}

/// Writes the packed rows of `groups` (those with a sample row) and empties it.
fn write_packed(
    writer: &mut StreamWriter<Output>,
    schema: &Arc<Schema>,
    groups: &mut Vec<PackGroup>,
    k: usize,
    d: usize,
    label: bool,
) -> Result<()> {
    let mut id = StringBuilder::new();
    let mut feats = Vec::new();
    let mut labels = Vec::new();
    let mut num = Vec::new();
    let mut nbr_id: Vec<StringBuilder> = (0..k).map(|_| StringBuilder::new()).collect();
    let mut nbr_f: Vec<Vec<f32>> = vec![Vec::new(); k];
    let mut nbr_w: Vec<Vec<f32>> = vec![Vec::new(); k];
    for g in groups.drain(..) {
        let (Some(source), Some((f, l))) = (g.source, g.sample) else { continue };
        let mut nbrs = g.nbrs;
        nbrs.sort_by(|x, y| nsl::graph::neighbor_order((x.0.as_str(), x.2), (y.0.as_str(), y.2)));
        nbrs.truncate(k);
        id.append_value(&source);
        feats.extend_from_slice(&f);
        labels.push(l.unwrap_or(0));
        num.push(nbrs.len() as i64);
        for j in 0..k {
            match nbrs.get(j) {
                Some((t, f, w)) => {
                    nbr_id[j].append_value(t);
                    nbr_f[j].extend_from_slice(f);
                    nbr_w[j].push(*w);
                }
                None => {
                    nbr_id[j].append_value("");
                    nbr_f[j].extend(std::iter::repeat_n(0.0, d));
                    nbr_w[j].push(0.0);
                }
            }
        }
    }
    if num.is_empty() {
        return Ok(());
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(id.finish()), Arc::new(list_f32(&feats, d))];
    if label {
        columns.push(Arc::new(Int64Array::from(labels)));
    }
    columns.push(Arc::new(Int64Array::from(num)));
    for j in 0..k {
        columns.push(Arc::new(nbr_id[j].finish()));
        columns.push(Arc::new(list_f32(&nbr_f[j], d)));
        columns.push(Arc::new(Float32Array::from(std::mem::take(&mut nbr_w[j]))));
    }
    writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    Ok(())
}
