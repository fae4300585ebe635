//! Reading, writing and exporting neighbor graphs: Parquet, NSL TSV, LINQS cites, GraphML, DOT,
//! JSON and CSV.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, LargeStringArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use nsl::graph::{export, ExportFormat};
use nsl::graph::{read_cites, UnknownIds};
use nsl::graph::{read_tsv, write_tsv, EdgeKind, NeighborGraph};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::reader::FileReader;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `datasets/cora/…`.
fn cora(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora").join(file)
}

/// The paper ids of `cora.content.gz` (first column), read independently of `nsl::data`.
fn cora_ids() -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(cora("cora.content.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(|l| l.split('\t').next().unwrap().to_owned()).collect()
}

/// A directed graph with every kind, a self-loop, weights that `%f` would round, ids that need
/// quoting in CSV/XML/DOT, and an isolated node:
/// a→b 0.1 explicit, b→a 0.25 similarity, a→"c,\"q\"" 1e-7 adversarial, "c,\"q\""→"c,\"q\"" 3 explicit,
/// "<d&e>"→a 0.123456789 similarity, isolated "lonely".
fn mixed_graph() -> NeighborGraph {
    let mut g = NeighborGraph::new();
    g.add_edge("a", "b", 0.1, EdgeKind::Explicit).unwrap();
    g.add_edge("b", "a", 0.25, EdgeKind::Similarity).unwrap();
    g.add_edge("a", "c,\"q\"", 1e-7, EdgeKind::Adversarial).unwrap();
    g.add_edge("c,\"q\"", "c,\"q\"", 3.0, EdgeKind::Explicit).unwrap();
    g.add_edge("<d&e>", "a", 0.123_456_79, EdgeKind::Similarity).unwrap();
    g.add_node("lonely");
    g.set_provenance("mixed fixture");
    g
}

/// A seeded random graph with `edges` directed edges over `nodes` nodes, random kinds and weights
/// spread over many binades (so that any rounding would show).
fn random_graph(nodes: usize, edges: usize, seed: u64) -> NeighborGraph {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut g = NeighborGraph::new();
    while g.edge_count() < edges {
        let s = format!("n{}", rng.random_range(0..nodes));
        let t = format!("n{}", rng.random_range(0..nodes));
        let w: f32 = rng.random::<f32>() * 10f32.powi(rng.random_range(-8..4));
        let kind = EdgeKind::ALL[rng.random_range(0..3)];
        g.add_edge(&s, &t, w, kind).unwrap();
    }
    g
}

/// Every edge as `(source, target) → (weight bits, kind)`: equality means exact f32 equality.
fn edge_map(g: &NeighborGraph) -> BTreeMap<(String, String), (u32, EdgeKind)> {
    g.edges().map(|(s, t, e)| ((s.to_owned(), t.to_owned()), (e.weight.to_bits(), e.kind))).collect()
}

fn write_gz(path: &Path, text: &str) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

// ---------------------------------------------------------------- TSV

#[test]
fn tsv_reads_like_nsl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.tsv");
    // No weight → 1.0; extra columns ignored; duplicate keeps the max; comments, blank lines and
    // CRLF tolerated.
    std::fs::write(&path, "# a comment\na\tb\nb\tc\t0.5\textra\tcols\n\n  \nb\tc\t0.75\r\nb\tc\t0.25\nc\ta\t2e-3\n")
        .unwrap();
    let g = read_tsv(&path, EdgeKind::Similarity).unwrap();
    assert_eq!(g.node_count(), 3);
    assert_eq!(g.edge_count(), 3);
    assert_eq!(g.weight("a", "b"), Some(1.0));
    assert_eq!(g.weight("b", "c"), Some(0.75));
    assert_eq!(g.weight("c", "a"), Some(2e-3));
    assert!(g.edges().all(|(_, _, e)| e.kind == EdgeKind::Similarity));
    assert!(g.provenance().contains("g.tsv"));
}

#[test]
fn tsv_gzip_is_transparent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.tsv.gz");
    write_gz(&path, "a\tb\t0.5\nb\ta\t0.5\n");
    let g = read_tsv(&path, EdgeKind::Explicit).unwrap();
    assert_eq!(g.edge_count(), 2);
    assert!(g.is_symmetric());
}

#[test]
fn tsv_writes_exact_shortest_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tsv");
    let mut g = NeighborGraph::new();
    g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
    g.add_edge("a", "c", 0.1, EdgeKind::Explicit).unwrap();
    g.add_edge("c", "a", 1e-7, EdgeKind::Explicit).unwrap();
    g.add_edge("c", "b", 0.123_456_79, EdgeKind::Explicit).unwrap();
    write_tsv(&g, &path).unwrap();
    // NSL's '%f' would print 1.000000, 0.100000, 0.000000 and 0.123457.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\tb\t1\na\tc\t0.1\nc\ta\t0.0000001\nc\tb\t0.12345679\n");
}

#[test]
fn tsv_parquet_tsv_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut original = random_graph(500, 3_000, 7);
    original.add_edge("x", "x", 0.5, EdgeKind::Explicit).unwrap(); // a self-loop
    let (tsv1, pq, tsv2) = (dir.path().join("1.tsv"), dir.path().join("g.parquet"), dir.path().join("2.tsv"));

    // The TSV format has no kinds: compare kinds through the Parquet leg only.
    write_tsv(&original, &tsv1).unwrap();
    let from_tsv = read_tsv(&tsv1, EdgeKind::Explicit).unwrap();
    let weights = |g: &NeighborGraph| -> BTreeMap<(String, String), u32> {
        edge_map(g).into_iter().map(|(k, (w, _))| (k, w)).collect()
    };
    assert_eq!(weights(&from_tsv), weights(&original));

    nsl::graph::write_graph(&from_tsv, &pq).unwrap();
    let from_pq = nsl::graph::read_graph(&pq).unwrap();
    assert_eq!(edge_map(&from_pq), edge_map(&from_tsv));
    write_tsv(&from_pq, &tsv2).unwrap();
    assert_eq!(std::fs::read(&tsv1).unwrap(), std::fs::read(&tsv2).unwrap(), "TSV bytes differ after the round trip");
    assert!(!from_pq.is_symmetric());
}

#[test]
fn symmetric_graph_round_trips_as_symmetric() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = random_graph(300, 1_000, 11);
    g.make_undirected();
    assert!(g.is_symmetric());
    let (pq, t) = (dir.path().join("g.parquet"), dir.path().join("g.tsv"));
    nsl::graph::write_graph(&g, &pq).unwrap();
    write_tsv(&g, &t).unwrap();
    for back in [nsl::graph::read_graph(&pq).unwrap(), read_tsv(&t, EdgeKind::Explicit).unwrap()] {
        assert!(back.is_symmetric());
        assert_eq!(back.edge_count(), g.edge_count());
    }
    assert_eq!(edge_map(&nsl::graph::read_graph(&pq).unwrap()), edge_map(&g));
}

// ---------------------------------------------------------------- Parquet

#[test]
fn parquet_round_trip_keeps_edges_kinds_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    let mut g = random_graph(2_000, 20_000, 3);
    g.set_provenance("random_graph(2000, 20000, seed 3)");
    nsl::graph::write_graph(&g, &first).unwrap();
    let back = nsl::graph::read_graph(&first).unwrap();
    assert_eq!(edge_map(&back), edge_map(&g));
    assert_eq!(back.provenance(), g.provenance());
    nsl::graph::write_graph(&back, &second).unwrap();
    let again = nsl::graph::read_graph(&second).unwrap();
    assert_eq!(edge_map(&again), edge_map(&g));
    // Same edges in the same order, so the same ids in the same order.
    assert_eq!(again.ids(), back.ids());
    let kinds: std::collections::BTreeSet<EdgeKind> = again.edges().map(|(_, _, e)| e.kind).collect();
    assert_eq!(kinds.len(), 3);
}

#[test]
fn parquet_schema_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.parquet");
    let g = mixed_graph();
    nsl::graph::write_graph(&g, &path).unwrap();

    let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let fields: Vec<(&str, &DataType, bool)> =
        schema.fields().iter().map(|f| (f.name().as_str(), f.data_type(), f.is_nullable())).collect();
    let dict = DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8));
    assert_eq!(
        fields,
        [
            ("source", &DataType::Utf8, false),
            ("target", &DataType::Utf8, false),
            ("weight", &DataType::Float32, false),
            ("kind", &dict, false)
        ]
    );
    let kv: BTreeMap<String, Option<String>> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(kv["nsl.format_version"].as_deref(), Some("1"));
    assert_eq!(kv["nsl.directed"].as_deref(), Some("true"));
    assert_eq!(kv["nsl.provenance"].as_deref(), Some("mixed fixture"));
    // The isolated node counts, although only nodes with edges are stored.
    assert_eq!(kv["nsl.nodes"].as_deref(), Some("5"));
    assert_eq!(builder.metadata().file_metadata().num_rows(), 5);
    let column = builder.metadata().row_group(0).column(0);
    assert!(matches!(column.compression(), parquet::basic::Compression::ZSTD(_)));

    // The rows, in edge order.
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    let batch = &batches[0];
    let source = batch.column(0).as_string::<i32>();
    let weight = batch.column(2).as_primitive::<arrow::datatypes::Float32Type>();
    let kind = arrow::compute::cast(batch.column(3), &DataType::Utf8).unwrap();
    let kind = kind.as_string::<i32>();
    let rows: Vec<(&str, f32, &str)> =
        (0..batch.num_rows()).map(|i| (source.value(i), weight.value(i), kind.value(i))).collect();
    assert_eq!(rows[0], ("a", 0.1, "explicit"));
    assert_eq!(rows[1], ("b", 0.25, "similarity"));
    assert_eq!(rows[2], ("a", 1e-7, "adversarial"));

    // A symmetric graph says so.
    let mut sym = g.clone();
    sym.make_undirected();
    nsl::graph::write_graph(&sym, &path).unwrap();
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let directed = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .find(|kv| kv.key == "nsl.directed")
        .cloned();
    assert_eq!(directed.unwrap().value.as_deref(), Some("false"));
}

#[test]
fn parquet_stores_only_nodes_with_edges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.parquet");
    nsl::graph::write_graph(&mixed_graph(), &path).unwrap();
    let back = nsl::graph::read_graph(&path).unwrap();
    assert_eq!(back.node_count(), 4);
    assert!(back.node("lonely").is_none());
    let empty = dir.path().join("empty.parquet");
    nsl::graph::write_graph(&NeighborGraph::new(), &empty).unwrap();
    assert_eq!(nsl::graph::read_graph(&empty).unwrap().edge_count(), 0);
}

/// Writes one record batch to a Parquet file with arrow-rs, as another tool would.
fn write_table(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn parquet_reader_accepts_other_tools_tables() {
    let dir = tempfile::tempdir().unwrap();
    // int64 ids, float64 weights, no kind column, an extra column.
    let ints = dir.path().join("ints.parquet");
    write_table(
        &ints,
        vec![
            ("target", Arc::new(Int64Array::from(vec![2, 3, 1])) as ArrayRef),
            ("source", Arc::new(Int64Array::from(vec![1, 1, 2]))),
            ("weight", Arc::new(Float64Array::from(vec![0.5, 1.0, 0.5]))),
            ("note", Arc::new(StringArray::from(vec!["x", "y", "z"]))),
        ],
    );
    let g = nsl::graph::read_graph(&ints).unwrap();
    assert_eq!(g.edge_count(), 3);
    assert_eq!(g.weight("1", "3"), Some(1.0));
    assert!(g.edges().all(|(_, _, e)| e.kind == EdgeKind::Explicit));
    assert!(g.provenance().contains("ints.parquet"));

    // large_utf8 ids and a plain-string kind column, nullable fields without nulls.
    let large = dir.path().join("large.parquet");
    write_table(
        &large,
        vec![
            ("source", Arc::new(LargeStringArray::from(vec!["a", "b"])) as ArrayRef),
            ("target", Arc::new(LargeStringArray::from(vec!["b", "a"]))),
            ("weight", Arc::new(arrow::array::Float32Array::from(vec![0.5, 0.5]))),
            ("kind", Arc::new(StringArray::from(vec!["similarity", "adversarial"]))),
        ],
    );
    let g = nsl::graph::read_graph(&large).unwrap();
    assert_eq!(g.neighbors("a").next().unwrap().1.kind, EdgeKind::Similarity);
    assert_eq!(g.neighbors("b").next().unwrap().1.kind, EdgeKind::Adversarial);
    assert!(g.is_symmetric());
}

#[test]
fn write_graph_dispatches_on_extension_and_read_graph_on_content() {
    let dir = tempfile::tempdir().unwrap();
    let g = mixed_graph();
    let pq = dir.path().join("g.pq");
    let t = dir.path().join("g.txt");
    nsl::graph::write_graph(&g, &pq).unwrap();
    nsl::graph::write_graph(&g, &t).unwrap();
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");
    // A Parquet file with a .tsv name is still read as Parquet.
    let renamed = dir.path().join("really_parquet.tsv");
    std::fs::rename(&pq, &renamed).unwrap();
    assert_eq!(edge_map(&nsl::graph::read_graph(&renamed).unwrap()), edge_map(&g));
    assert_eq!(nsl::graph::read_graph(&t).unwrap().edge_count(), g.edge_count());
}

#[test]
fn write_graph_uses_the_export_extension_table_and_ignores_old_content() {
    use nsl::graph::GraphFormat;
    let dir = tempfile::tempdir().unwrap();
    let g = mixed_graph();
    // `PQ` in any case is Parquet for writing, exactly as for `ExportFormat::from_path`.
    let upper = dir.path().join("g.PQ");
    nsl::graph::write_graph(&g, &upper).unwrap();
    assert!(nsl::io::is_parquet(&upper).unwrap());
    assert_eq!(GraphFormat::from_extension(&upper), GraphFormat::Parquet);
    // Overwriting a Parquet file under a TSV name writes TSV: the name decides for outputs.
    let tsv_name = dir.path().join("g.tsv");
    std::fs::copy(&upper, &tsv_name).unwrap();
    nsl::graph::write_graph(&g, &tsv_name).unwrap();
    assert!(!nsl::io::is_parquet(&tsv_name).unwrap());
    assert_eq!(nsl::graph::read_graph(&tsv_name).unwrap().edge_count(), g.edge_count());
    // Content first, then the name: a file too short to sniff falls back on its extension.
    let short = dir.path().join("short.parquet");
    std::fs::write(&short, "ab").unwrap();
    assert_eq!(GraphFormat::detect(&short), GraphFormat::Parquet);
    assert_eq!(GraphFormat::detect(&dir.path().join("new.parquet")), GraphFormat::Parquet);
    assert_eq!(GraphFormat::detect(&dir.path().join("new.graph")), GraphFormat::Tsv);
}

// ---------------------------------------------------------------- LINQS cites

#[test]
fn cora_cites_is_undirected() {
    let ids = cora_ids();
    let known: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let (g, report) = read_cites(&cora("cora.cites.gz"), &|id| known.contains(id), UnknownIds::Error).unwrap();
    assert_eq!(report.links, 5_278);
    assert_eq!(report.duplicate_links, 0);
    assert_eq!(report.self_loops, 0);
    assert_eq!(report.skipped_unknown, 0);
    assert_eq!(g.edge_count(), 10_556);
    assert_eq!(g.node_count(), 2_708);
    assert!(g.is_symmetric());
    assert!(g.edges().all(|(_, _, e)| e.weight == 1.0 && e.kind == EdgeKind::Explicit));
    // The first line of the file is `0\t633`.
    assert_eq!(g.weight("633", "0"), Some(1.0));
}

#[test]
fn cites_counts_duplicates_and_self_loops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.cites");
    std::fs::write(&path, "1\t2\n2 1\n\n3\t3\n1   3\n").unwrap();
    let (g, report) = read_cites(&path, &|_| true, UnknownIds::Error).unwrap();
    assert_eq!((report.links, report.duplicate_links, report.self_loops), (3, 1, 1));
    // 1-2 and 1-3 both ways, 3→3 once.
    assert_eq!(g.edge_count(), 5);
    assert_eq!(g.weight("3", "3"), Some(1.0));
}

// ---------------------------------------------------------------- exports

#[test]
fn graphml_of_a_symmetric_graph_lists_each_link_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cora.graphml");
    let (g, _) = read_cites(&cora("cora.cites.gz"), &|_| true, UnknownIds::Error).unwrap();
    export(&g, ExportFormat::Graphml, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#"edgedefault="undirected""#));
    assert!(text.contains(r#"<key id="weight" for="edge" attr.name="weight" attr.type="double"/>"#));
    assert!(text.contains(r#"<key id="kind" for="edge" attr.name="kind" attr.type="string"/>"#));
    assert_eq!(text.matches("<edge ").count(), 5_278);
    assert_eq!(text.matches("<node ").count(), 2_708);
}

#[test]
fn graphml_of_a_directed_graph_escapes_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.graphml");
    export(&mixed_graph(), ExportFormat::Graphml, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#"edgedefault="directed""#));
    assert_eq!(text.matches("<edge ").count(), 5);
    assert_eq!(text.matches("<node ").count(), 5);
    assert!(text.contains(r#"<node id="&lt;d&amp;e&gt;"/>"#));
    assert!(text.contains(r#"<edge source="a" target="c,&quot;q&quot;"><data key="weight">0.0000001</data><data key="kind">adversarial</data></edge>"#));
}

#[test]
fn dot_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.dot");
    export(&mixed_graph(), ExportFormat::Dot, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("digraph G {\n"));
    assert!(text.contains(r#"  "a" -> "c,\"q\"" [weight=0.0000001, kind=adversarial];"#));
    assert!(text.contains("  \"lonely\";\n"));
    assert_eq!(text.matches(" -> ").count(), 5);

    let mut sym = NeighborGraph::new();
    sym.add_edge("x", "y", 2.0, EdgeKind::Explicit).unwrap();
    sym.make_undirected();
    export(&sym, ExportFormat::Dot, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, "graph G {\n  \"x\";\n  \"y\";\n  \"x\" -- \"y\" [weight=2, kind=explicit];\n}\n");
}

#[test]
fn json_export_is_node_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    export(&mixed_graph(), ExportFormat::Json, &path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["directed"], true);
    assert_eq!(doc["multigraph"], false);
    assert_eq!(doc["graph"]["provenance"], "mixed fixture");
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 5);
    // Issue 25: the key networkx ≥ 3.4 reads (`edges`; the default of `node_link_graph` from 3.6).
    assert!(doc.get("links").is_none());
    let links = doc["edges"].as_array().unwrap();
    assert_eq!(links.len(), 5);
    assert_eq!(links[2]["source"], "a");
    assert_eq!(links[2]["target"], "c,\"q\"");
    assert_eq!(links[2]["kind"], "adversarial");
    // The JSON number reads back as the same f32.
    assert_eq!(links[4]["weight"].as_f64().unwrap() as f32, 0.123_456_79_f32);

    let (cora_graph, _) = read_cites(&cora("cora.cites.gz"), &|_| true, UnknownIds::Error).unwrap();
    export(&cora_graph, ExportFormat::Json, &path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["directed"], false);
    assert_eq!(doc["edges"].as_array().unwrap().len(), 5_278);
}

#[test]
fn csv_export_quotes_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.csv");
    let g = mixed_graph();
    export(&g, ExportFormat::Csv, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("source,target,weight,kind\n"));
    assert!(text.contains("a,\"c,\"\"q\"\"\",0.0000001,adversarial\n"));
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let mut back = NeighborGraph::new();
    for record in reader.records() {
        let r = record.unwrap();
        back.add_edge(&r[0], &r[1], r[2].parse().unwrap(), EdgeKind::parse(&r[3]).unwrap()).unwrap();
    }
    assert_eq!(edge_map(&back), edge_map(&g));
}

#[test]
fn export_parquet_and_tsv_match_the_writers() {
    let dir = tempfile::tempdir().unwrap();
    let g = mixed_graph();
    let (a, b) = (dir.path().join("a.tsv"), dir.path().join("b.tsv"));
    export(&g, ExportFormat::Tsv, &a).unwrap();
    write_tsv(&g, &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let pq = dir.path().join("g.parquet");
    export(&g, ExportFormat::Parquet, &pq).unwrap();
    assert_eq!(edge_map(&nsl::graph::read_graph(&pq).unwrap()), edge_map(&g));
    // No temporary files are left next to the outputs.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn null_free_nullable_columns_are_fine() {
    // Guards the "nullable but no nulls" path separately from the type checks.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, true),
        Field::new("target", DataType::Utf8, true),
        Field::new("weight", DataType::Float32, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some("a")])),
            Arc::new(StringArray::from(vec![Some("b")])),
            Arc::new(arrow::array::Float32Array::from(vec![Some(0.5)])),
        ],
    )
    .unwrap();
    assert_eq!(batch.column(0).null_count(), 0);
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    assert_eq!(nsl::graph::read_graph(&path).unwrap().weight("a", "b"), Some(0.5));
}
