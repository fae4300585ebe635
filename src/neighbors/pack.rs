//! NSL's `pack_nbrs` output as a Parquet table, for users whose pipeline needs neighbors copied into
//! every record (nsl's trainer does not: it joins on the fly).

use super::NeighborTable;
use crate::data::{DataError, Dataset, CLASS_NAMES_KEY, ITEM_SHAPE_KEY};
use crate::graph::packed;
use crate::io::write_parquet;
use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Rows per record batch written: bounds the Arrow copy (a row group holds several).
const WRITE_BATCH_ROWS: usize = 16_384;

/// Writes one row per sample of `samples`, in order, with NSL's `pack_nbrs` columns:
///
/// | column | type | |
/// |---|---|---|
/// | `id`, `features`, `label` | as the samples table | the sample |
/// | `NL_num_nbrs` | int64 | number of real neighbors `K ≤ max_neighbors` |
/// | `NL_nbr_{j}_id` | utf8 | neighbor `j`'s id (`""` for padding) |
/// | `NL_nbr_{j}_features` | fixed_size_list\<float32\>\[d\] | its features (zeros for padding) |
/// | `NL_nbr_{j}_weight` | float32 | the edge weight (0 for padding) |
///
/// for `j < K_max`, the largest neighbor count of any sample (at most `max_neighbors`: a table
/// whose samples have at most 3 neighbors gets 3 groups of columns, whatever `max_neighbors` is).
/// NSL leaves missing neighbors out and pads when parsing (zeros, weight 0); here they are padded
/// in the file, so every row has the same columns. The file metadata carries the samples'
/// `nsl.item_shape` and, when known, `nsl.class_names` (as the samples table), which
/// [`PackedParts`](super::PackedParts) reads back. The write is atomic
/// ([`crate::io::write_parquet`]).
///
/// # Errors
/// [`DataError::Io`] naming `path` if the file cannot be written, [`DataError::Parquet`] if the
/// table cannot be built or encoded, [`DataError::Dataset`] if the features are too wide for Arrow
/// or the table would not fit in the available memory.
pub fn pack_neighbors(samples: &Dataset, table: &NeighborTable, path: &Path) -> Result<(), DataError> {
    let d = samples.dim();
    let n = samples.len();
    // As many neighbor columns as the sample with the most neighbors has, not `max_neighbors`:
    // memory grows with the neighbors that exist (`--max-neighbors 100000` on 40 rows would
    // otherwise build 300,000 columns).
    let k = (0..n).map(|r| table.neighbors(r).count()).max().unwrap_or(0).min(table.max_neighbors());
    crate::io::check_memory(
        format!("the packed table ({n} samples × {k} neighbors × {d} features)"),
        (n as u128) * (k as u128 + 1) * (d as u128),
        4,
    )
    .map_err(|e| DataError::Dataset(e.to_string()))?;
    let width =
        i32::try_from(d).map_err(|_| DataError::Dataset(format!("{d} features do not fit a fixed_size_list")))?;
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let list = |values: Vec<f32>| -> Result<ArrayRef, arrow::error::ArrowError> {
        Ok(Arc::new(FixedSizeListArray::try_new(item.clone(), width, Arc::new(Float32Array::from(values)), None)?))
    };
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("features", DataType::FixedSizeList(item.clone(), width), false),
    ];
    if samples.labels().is_some() {
        fields.push(Field::new("label", DataType::Int64, false));
    }
    fields.push(Field::new(packed::NUM_NEIGHBORS, DataType::Int64, false));
    for j in 0..k {
        fields.push(Field::new(packed::neighbor_id(j), DataType::Utf8, false));
        fields.push(Field::new(packed::neighbor_features(j), DataType::FixedSizeList(item.clone(), width), false));
        fields.push(Field::new(packed::neighbor_weight(j), DataType::Float32, false));
    }
    // The samples table's metadata (docs/formats.md), so that a stream of the packed table knows
    // the item shape and the class names the labels index.
    let mut metadata = HashMap::from([(
        ITEM_SHAPE_KEY.to_owned(),
        samples.item_shape().iter().map(usize::to_string).collect::<Vec<_>>().join(","),
    )]);
    if let Some(names) = samples.class_names() {
        let json = serde_json::to_string(names).map_err(|e| DataError::Dataset(e.to_string()))?;
        metadata.insert(CLASS_NAMES_KEY.to_owned(), json);
    }
    let pairs: Vec<KeyValue> = metadata.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));

    // Rows `start..end`, built one batch at a time so that the Arrow copy stays small.
    let build = |start: usize, end: usize| -> Result<RecordBatch, arrow::error::ArrowError> {
        let rows = start..end;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&samples.ids()[start..end])),
            list(samples.features().slice(ndarray::s![start..end, ..]).iter().copied().collect())?,
        ];
        if let Some(labels) = samples.labels() {
            columns.push(Arc::new(Int64Array::from_iter_values(labels[start..end].iter().map(|&l| i64::from(l)))));
        }
        columns.push(Arc::new(Int64Array::from_iter_values(rows.clone().map(|r| table.neighbors(r).count() as i64))));
        for j in 0..k {
            let mut ids = Vec::with_capacity(end - start);
            let mut features = Vec::with_capacity((end - start) * d);
            let mut weights = Vec::with_capacity(end - start);
            for r in rows.clone() {
                match table.neighbors(r).nth(j) {
                    Some((id, f, w)) => {
                        ids.push(id.to_owned());
                        features.extend(f.iter().copied());
                        weights.push(w);
                    }
                    None => {
                        ids.push(String::new());
                        features.extend(std::iter::repeat_n(0.0, d));
                        weights.push(0.0);
                    }
                }
            }
            columns.push(Arc::new(StringArray::from(ids)));
            columns.push(list(features)?);
            columns.push(Arc::new(Float32Array::from(weights)));
        }
        RecordBatch::try_new(schema.clone(), columns)
    };
    let batches = (0..n).step_by(WRITE_BATCH_ROWS).map(|start| build(start, (start + WRITE_BATCH_ROWS).min(n)));
    let options = WriterProperties::builder().set_key_value_metadata(Some(pairs));
    write_parquet(path, schema.clone(), options, batches).map_err(|e| DataError::parquet_write(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeKind, NeighborGraph};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float32Type, Int64Type};
    use ndarray::array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn packs_and_pads_like_nsl() {
        let samples =
            Dataset::new(vec!["a".into(), "b".into()], array![[1.0, 2.0], [3.0, 4.0]], vec![2], Some(vec![0, 1]), None)
                .unwrap();
        let mut g = NeighborGraph::new();
        g.add_edge("a", "b", 0.5, EdgeKind::Explicit).unwrap();
        let (table, _) = NeighborTable::new(&samples, None, &g, 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("packed.parquet");
        pack_neighbors(&samples, &table, &path).unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap().build().unwrap();
        let batch = reader.into_iter().next().unwrap().unwrap();
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        assert_eq!(col("NL_num_nbrs").as_primitive::<Int64Type>().values().to_vec(), vec![1, 0]);
        assert_eq!(col("NL_nbr_0_id").as_string::<i32>().value(0), "b");
        assert_eq!(col("NL_nbr_0_weight").as_primitive::<Float32Type>().values().to_vec(), vec![0.5, 0.0]);
        let feats = col("NL_nbr_0_features");
        let feats = feats.as_fixed_size_list();
        assert_eq!(feats.value(0).as_primitive::<Float32Type>().values().to_vec(), vec![3.0, 4.0]);
        // `b` is padded; no sample has a second neighbor, so there is no `NL_nbr_1_*` group.
        assert!(col("NL_nbr_0_id").as_string::<i32>().value(1).is_empty() && feats.len() == 2);
        assert_eq!(batch.num_columns(), 3 + 1 + 3);
        assert!(batch.column_by_name("NL_nbr_1_weight").is_none());
    }
}
