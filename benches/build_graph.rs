//! Benchmark of `nsl::build` (issue 3): the cases of `docs/benchmarks.md`, one JSON line each.
//!
//! ```text
//! cargo bench --bench build_graph -- [CASE ...]        # default: all cases
//!   gemm            f32 GEMM rate of the kernel the builder uses (2048³, 1 and 2 threads)
//!   mnist           MNIST 10k (784-d, pixels/255 then L2-normalized to f32, as the NSL
//!                   baseline made them), threshold 0.9, exact
//!   synth100k       100,000 × 128 Gaussian clusters, threshold 0.9: exact, then LSH settings
//!   synth1m         1,000,000 × 64 Gaussian clusters, threshold 0.9, LSH
//! ```
//! `scripts/bench_build_graph.sh` runs each case in its own process under `/usr/bin/time -v`.
//! "build_s" is `GraphBuilder::build_edges` (the whole computation: normalization, pair search,
//! weights, recall excluded); "graph_s" adds the `NeighborGraph` with ids (`GraphBuilder::build`).

use ndarray::{linalg::general_mat_mul, Array2};
use nsl::build::synthetic::gaussian_clusters;
use nsl::build::{BuildConfig, GraphBuilder};
use rayon::prelude::*;
use std::io::Read;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let all = ["gemm", "mnist", "synth100k", "synth1m"];
    let cases: Vec<&str> = if args.is_empty() { all.to_vec() } else { args.iter().map(String::as_str).collect() };
    for case in cases {
        match case {
            "gemm" => gemm(),
            "mnist" => mnist(),
            "synth100k" => synth100k(),
            "synth100k-exact" => synth(100_000, 128, &[(0, 1)], Some(1000)),
            "synth100k-lsh" => synth(100_000, 128, &lsh_settings_100k(), Some(1000)),
            "synth1m" => synth(1_000_000, 64, &lsh_settings_1m(), Some(1000)),
            other => eprintln!("unknown case {other}; known: {all:?}, synth100k-exact, synth100k-lsh"),
        }
    }
}

fn lsh_settings_100k() -> Vec<(u32, u32)> {
    env_settings("LSH_100K").unwrap_or_else(|| vec![(7, 11), (8, 12)])
}

fn lsh_settings_1m() -> Vec<(u32, u32)> {
    env_settings("LSH_1M").unwrap_or_else(|| vec![(10, 18)])
}

/// `SPLITSxROUNDS,...` from an environment variable.
fn env_settings(var: &str) -> Option<Vec<(u32, u32)>> {
    let text = std::env::var(var).ok()?;
    Some(
        text.split(',')
            .filter_map(|s| {
                let (a, b) = s.split_once('x')?;
                Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
            })
            .collect(),
    )
}

fn machine() -> serde_json::Value {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    serde_json::json!({
        "threads": rayon::current_num_threads(),
        "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>(),
    })
}

/// GFLOP/s of `n³` products (n = 2048) with `nsl::build::gram`, the builder's kernel (the `gemm`
/// crate): one product on one thread, and one product per thread on all threads at once (how the
/// builder uses it: independent blocks in parallel); the same for ndarray's `general_mat_mul`
/// (matrixmultiply) for comparison; and the builder's block shape, 512 × d × 512, on all threads.
fn gemm() {
    let n = 2048;
    let threads = rayon::current_num_threads();
    let a = Array2::<f32>::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 17) as f32 / 17.0);
    let bt = a.t().to_owned(); // b = btᵀ, so a·b = gram(a, bt)
    let flops = 2.0 * (n as f64).powi(3);
    let time = |f: &(dyn Fn() + Sync)| {
        f(); // warm-up
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let rate = |product: &(dyn Fn(&mut Array2<f32>) + Sync)| {
        let one = time(&|| product(&mut Array2::<f32>::zeros((n, n))));
        let all = time(&|| (0..threads).into_par_iter().for_each(|_| product(&mut Array2::<f32>::zeros((n, n)))));
        (flops / one / 1e9, threads as f64 * flops / all / 1e9)
    };
    let (g1, g_all) = rate(&|c| nsl::build::gram(a.view(), bt.view(), c.as_slice_mut().unwrap()));
    let (m1, m_all) = rate(&|c| general_mat_mul(1.0, &a, &bt.t(), 0.0, c));
    let mut blocks = Vec::new();
    for d in [64usize, 128, 784] {
        let x = Array2::<f32>::from_shape_fn((512, d), |(i, j)| ((i * 7 + j * 13) % 17) as f32 / 17.0);
        let reps = (4e9 / (2.0 * 512.0 * 512.0 * d as f64)) as usize + 1;
        let secs = time(&|| {
            (0..threads * reps).into_par_iter().for_each(|_| {
                let mut c = vec![0.0f32; 512 * 512];
                nsl::build::gram(x.view(), x.view(), &mut c);
            })
        });
        let rate = 2.0 * 512.0 * 512.0 * d as f64 * (threads * reps) as f64 / secs / 1e9;
        blocks.push(serde_json::json!({"d": d, "gflops_all_threads": rate}));
    }
    println!(
        "{}",
        serde_json::json!({
            "case": "gemm", "n": n,
            "gram_gflops_1_thread": g1, "gram_gflops_all_threads": g_all,
            "ndarray_gflops_1_thread": m1, "ndarray_gflops_all_threads": m_all,
            "gram_block_512": blocks,
            "machine": machine(),
        })
    );
}

/// The 10k MNIST training images as the NSL baseline embedded them: pixels / 255 in f64,
/// L2-normalized in f64, rounded to f32. (The IDX file is parsed here directly.)
fn mnist_embeddings() -> Array2<f32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/mnist/train-images-idx3-ubyte.gz");
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let be = |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize;
    assert_eq!(be(0), 0x803, "{path}: not an IDX image file");
    let (n, h, w) = (be(4), be(8), be(12));
    let d = h * w;
    let pixels = &bytes[16..16 + n * d];
    let mut x = Array2::<f32>::zeros((n, d));
    for (mut row, img) in x.rows_mut().into_iter().zip(pixels.chunks_exact(d)) {
        let v: Vec<f64> = img.iter().map(|&p| f64::from(p) / 255.0).collect();
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
        for (o, a) in row.iter_mut().zip(&v) {
            *o = (a / norm) as f32;
        }
    }
    x
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn run(case: &str, x: &Array2<f32>, config: BuildConfig, baseline: serde_json::Value) {
    let (n, d) = x.dim();
    let builder = GraphBuilder::new(config.clone());
    let t = Instant::now();
    let (edges, report) = builder.build_edges(x.view()).expect("build");
    let build_s = t.elapsed().as_secs_f64();
    drop(edges);
    // The same again with ids and the NeighborGraph, without the recall sample (skipped with GRAPH=0).
    let (mut graph_s, mut phases_with_graph, mut directed) = (None, None, report.directed_edges);
    if std::env::var("GRAPH").map_or(true, |v| v != "0") {
        let names = ids(n);
        let t = Instant::now();
        let (graph, graph_report) = GraphBuilder::new(BuildConfig { recall_sample: None, ..config.clone() })
            .build(&names, x.view())
            .expect("build");
        graph_s = Some(t.elapsed().as_secs_f64());
        phases_with_graph = Some(graph_report.phases);
        directed = graph.edge_count();
    }
    let exact_flops = (n as f64) * (n as f64) * d as f64; // 2·N²·d/2
    println!(
        "{}",
        serde_json::json!({
            "case": case, "n": n, "d": d, "threshold": config.threshold,
            "lsh_splits": config.lsh_splits, "lsh_rounds": config.rounds(),
            "build_s": build_s, "recall_s_included": report.recall.is_some(),
            "build_without_recall_and_graph_s": graph_s,
            "edges": report.edges, "directed_edges": directed,
            "compared_pairs": report.compared_pairs, "rechecked_pairs": report.rechecked_pairs,
            "estimated_recall": report.estimated_recall, "recall": report.recall,
            "phases": report.phases, "phases_with_graph": phases_with_graph,
            "exact_gflops_equivalent": if config.lsh_splits == 0 { Some(exact_flops / report.seconds / 1e9) } else { None },
            "baseline": baseline,
            "machine": machine(),
        })
    );
}

fn mnist() {
    let t = Instant::now();
    let x = mnist_embeddings();
    eprintln!("mnist embeddings in {:.2} s", t.elapsed().as_secs_f64());
    for threshold in [0.9, 0.95] {
        let baseline = if threshold == 0.9 {
            serde_json::json!({"nsl_s": 79.4, "numpy_s": 2.1, "edges": 23038})
        } else {
            serde_json::json!({"nsl_s": 93.5, "numpy_s": 1.8, "edges": 1787})
        };
        run("mnist", &x, BuildConfig { threshold, ..BuildConfig::default() }, baseline);
    }
}

fn synth100k() {
    synth(100_000, 128, &[(0, 1)], Some(1000));
    synth(100_000, 128, &lsh_settings_100k(), Some(1000));
}

fn synth(n: usize, d: usize, settings: &[(u32, u32)], recall: Option<usize>) {
    let t = Instant::now();
    // The baseline's recipe: N/50 clusters; its numpy seed was 42 + N, ours is the same number for ChaCha8.
    let (x, _) = gaussian_clusters(n, d, n / 50, 42 + n as u64);
    eprintln!("{n} x {d} generated in {:.2} s", t.elapsed().as_secs_f64());
    for &(splits, rounds) in settings {
        let baseline = match (n, splits) {
            (100_000, 0) => serde_json::json!({"numpy_exact_s": 44.6, "edges": 985717}),
            (100_000, _) => serde_json::json!({"nsl_lsh_7x11_s": 465.5, "edges": 980930, "recall": 0.9951}),
            _ => serde_json::Value::Null,
        };
        let config = BuildConfig {
            threshold: 0.9,
            lsh_splits: splits,
            lsh_rounds: rounds,
            seed: 1,
            recall_sample: recall,
            ..BuildConfig::default()
        };
        run(&format!("synth{n}x{d}"), &x, config, baseline);
    }
}
