//! `nsl generate-embeddings`: synthetic Gaussian-cluster embeddings for benchmarks.

use super::progress::with_spinner;
use anyhow::{bail, Context, Result};
use nsl::build::synthetic::gaussian_clusters;
use nsl::Dataset;
use std::path::PathBuf;

/// Write synthetic embeddings: Gaussian clusters with a fixed seed (the recipe of the NSL
/// baseline benchmark: centres ~ N(0, I), point = centre + s·N(0, I) with s ~ U(0.2, 0.5) per
/// point). The Parquet output has columns `id` ("0".."N-1"), `features` (list<float32>) and
/// `label` (the point's cluster), ready for `nsl build-graph`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Number of points.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Dimension of each point.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Number of clusters. Default: N / 50 (at least 1), as in the NSL baseline benchmark.
    #[arg(long)]
    pub clusters: Option<usize>,
    /// Random seed (ChaCha8); the same seed gives the same file on any machine and thread count.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The Parquet file to write (atomically). Required.
    #[arg(long)]
    pub output: PathBuf,
}

/// Runs `nsl generate-embeddings`.
///
/// # Errors
/// `--n`, `--dim` or `--clusters` of 0, sizes that do not fit in the available memory
/// ([`nsl::io::check_memory`]), or an unwritable output.
pub fn run(args: &GenerateArgs) -> Result<()> {
    if args.n == 0 || args.dim == 0 {
        bail!("--n and --dim must be at least 1 (got --n {} --dim {})", args.n, args.dim);
    }
    let clusters = args.clusters.unwrap_or((args.n / 50).max(1));
    if clusters == 0 {
        bail!("--clusters must be at least 1");
    }
    // Checked before allocating: the features (n·dim f32, held twice while the table is built),
    // the cluster centres, and the ids (~24 bytes each plus their digits).
    let features = (args.n as u128).checked_mul(args.dim as u128).context("--n × --dim overflows")?;
    nsl::io::check_memory(
        format!("--n {} × --dim {} features (f32, twice while writing)", args.n, args.dim),
        features,
        8,
    )?;
    nsl::io::check_memory(
        format!("--clusters {clusters} × --dim {} centres", args.dim),
        clusters as u128 * args.dim as u128,
        8,
    )?;
    nsl::io::check_memory(format!("--n {} ids and labels", args.n), args.n as u128, 48)?;
    let (features, labels) = gaussian_clusters(args.n, args.dim, clusters, args.seed);
    let ids: Vec<String> = (0..args.n).map(|i| i.to_string()).collect();
    let dataset = Dataset::new(ids, features, vec![args.dim], Some(labels), None)?;
    with_spinner(format!("writing {}", args.output.display()), || nsl::data::write_samples(&dataset, &args.output))
        .with_context(|| format!("writing {}", args.output.display()))?;
    outln!(
        "wrote {} points x {} dims in {} clusters (seed {}) to {}",
        args.n,
        args.dim,
        clusters,
        args.seed,
        args.output.display()
    );
    Ok(())
}
