//! `nsl embed`: a trained run's hidden layer (or logits) for every sample, as a samples table of
//! embeddings that `nsl build-graph` reads (NSL's "synthesized graph" recipe, issue 27).

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{Context, Result};
use clap::Args;
use nsl::data::Dataset;
use std::path::PathBuf;

/// Flags of `nsl embed`.
#[derive(Args, Debug)]
#[command(after_help = "Example (a graph from a trained model's embeddings):\n  \
    nsl embed --run runs/base --samples pool.parquet --layer hidden0 --output pool_emb.parquet\n  \
    nsl build-graph --input pool_emb.parquet --threshold 0.9 --output pool_graph.parquet")]
pub struct EmbedArgs {
    /// Run directory written by `nsl train`.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Samples to embed, read with the columns the run was trained on (its `columns.json`; the
    /// column flags below override them). A table without the id column gets row numbers as ids.
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// The layer: `hidden0`, `hidden1`, … (an MLP's hidden layers, after the activation),
    /// `dense0`, … (a CNN's dense layers), or `logits`. Default `logits`; an unknown name lists the
    /// model's layers.
    #[arg(long, value_name = "NAME", default_value = "logits")]
    layer: String,
    /// Output Parquet samples table (written atomically): `id`, `features` (the layer's values,
    /// `fixed_size_list<float32>`), and `label` when the samples have labels.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

/// Runs `nsl embed`.
pub fn run(args: &EmbedArgs) -> Result<()> {
    let (model_json, weights) = (args.run.join("model.json"), args.run.join("model.safetensors"));
    nsl::io::check_paths(
        &[("--output", &args.output)],
        &[("--samples", &args.samples), ("--run", &model_json), ("--run", &weights)],
    )?;
    let mut checkpoint = nsl::train::load_checkpoint(&args.run)?;
    let columns = args.columns.over(&nsl::run::RunColumns::load(&args.run).map_err(super::run_error)?);
    let mut notes = Vec::new();
    let samples = with_spinner("reading samples", || {
        nsl::run::read_for_run(&mut checkpoint, &args.samples, &columns, false, &mut notes)
    });
    for note in notes {
        errln!("warning: {note}");
    }
    let samples = samples.map_err(super::run_error)?;
    let layer = (args.layer != "logits").then_some(args.layer.as_str());
    let values = with_spinner("embedding", || nsl::eval::embed(checkpoint.model.as_ref(), &samples, layer, 1024))
        .with_context(|| format!("--layer {}", args.layer))?;
    let width = values.ncols();
    let embeddings = Dataset::new(
        samples.ids().to_vec(),
        values,
        vec![width],
        samples.labels().map(<[u32]>::to_vec),
        samples.class_names().map(<[String]>::to_vec),
    )?;
    with_spinner("writing embeddings", || nsl::data::write_samples(&embeddings, &args.output))
        .with_context(|| format!("writing --output {}", args.output.display()))?;
    outln!(
        "embeddings: {} samples × {width} values (layer `{}`) → {}",
        embeddings.len(),
        args.layer,
        args.output.display()
    );
    Ok(())
}
