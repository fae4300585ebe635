//! Text end to end, as NSL's synthesized-graph tutorial (reviews → embeddings → `build_graph` →
//! graph-regularized text classifier), on Cora's words as token lists (no package on the reachable
//! registries ships a public text data set that nsl could bundle; see datasets/README.md):
//!
//! 1. tokens: each paper's word indices (`nsl::data::multi_hot_to_tokens`, what
//!    `nsl convert --tokens` writes);
//! 2. embeddings, either `random`: the mean of a seeded random projection of each paper's words
//!    (128 Gaussian values per word), so that papers sharing words are close; or `bow`: the pooled
//!    layer (`Model::encode`) of a first `bow` model trained on the training papers (seed 100);
//! 3. a similarity graph over those embeddings (`GraphBuilder`, what `nsl build-graph` runs;
//!    cosine ≥ the threshold, at most `top_k` neighbors);
//! 4. the `bow` model trained on the tokens with and without graph regularization (multiplier 0.1,
//!    1 neighbor, L2), on NSL's 80/20 split, test papers as unlabeled neighbors.
//!
//! ```sh
//! cargo run --release --example text_bow                           # 3 seeds, bow embeddings, 0.9, top 3
//! cargo run --release --example text_bow -- 5 random 0.7 10 bow:50  # seeds, embeddings, threshold, top_k, model
//! ```

use nsl::build::{BuildConfig, GraphBuilder};
use nsl::data::{multi_hot_to_tokens, read_content, split, token_ids, Dataset, FeatureKind, SplitConfig, SplitMethod};
use nsl::eval::evaluate;
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{DistanceConfig, GraphRegConfig};
use nsl::train::{TrainConfig, Trainer};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

/// Each sample's embedding: the mean of its words' rows of a seeded `[vocab, dim]` Gaussian matrix.
fn random_projection(tokens: &Dataset, vocab: usize, dim: usize, seed: u64) -> Result<Dataset, nsl::data::DataError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let table: Vec<f32> = (0..vocab * dim).map(|_| StandardNormal.sample(&mut rng)).collect();
    let mut embeddings = ndarray::Array2::<f32>::zeros((tokens.len(), dim));
    for (row, mut out) in tokens.features().rows().into_iter().zip(embeddings.rows_mut()) {
        let ids: Vec<u32> = token_ids(row.iter().copied()).collect();
        for &id in &ids {
            let word = &table[id as usize * dim..(id as usize + 1) * dim];
            out.iter_mut().zip(word).for_each(|(o, &w)| *o += w / ids.len() as f32);
        }
    }
    Dataset::new(tokens.ids().to_vec(), embeddings, vec![dim], None, None)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: &str| std::env::args().nth(i).unwrap_or_else(|| default.to_string());
    let (seeds, source, threshold, top_k, model): (u64, String, f64, usize, ModelSpec) =
        (arg(1, "3").parse()?, arg(2, "bow"), arg(3, "0.9").parse()?, arg(4, "3").parse()?, arg(5, "bow:50").parse()?);

    let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora/cora.content.gz");
    let papers = multi_hot_to_tokens(&read_content(&content)?, "words")?;
    let group = &papers.layout().groups()[0];
    let FeatureKind::Tokens { max_len, vocab } = group.kind else { return Err("expected a token group".into()) };

    let nsl_split = SplitConfig { train_fraction: 0.8, seed: 1, stratify: false, method: SplitMethod::NslUniform };
    let (train, test) = split(&papers, &nsl_split)?;
    let spec = model.for_inputs(&nsl::train::model_inputs(papers.layout()))?;
    let config = |seed| TrainConfig { epochs: 100, batch_size: 128, seed, threads: Some(1), ..Default::default() };

    let embeddings = match source.as_str() {
        "random" => random_projection(&papers, vocab, 128, 0)?,
        "bow" => {
            // A first model, trained on the training papers only, embeds every paper.
            let (first, vars) = build_model(&spec, train.item_shape(), 7, 100, &candle_core::Device::Cpu)?;
            Trainer::new(first.as_ref(), &vars, config(100)).fit(&train, None)?;
            let (n, d) = papers.features().dim();
            let rows = candle_core::Tensor::from_iter(papers.features().iter().copied(), &candle_core::Device::Cpu)?
                .reshape((n, d))?;
            let pooled = first.encode(&rows, false)?;
            let width = pooled.dim(1)?;
            let values = ndarray::Array2::from_shape_vec((n, width), pooled.flatten_all()?.to_vec1::<f32>()?)?;
            Dataset::new(papers.ids().to_vec(), values, vec![width], None, None)?
        }
        other => return Err(format!("embeddings `{other}`: expected random or bow").into()),
    };
    let build = BuildConfig { threshold, top_k: Some(top_k), ..Default::default() };
    let (graph, _) = GraphBuilder::new(build).build_dataset(&embeddings)?;
    println!(
        "Cora's words: {} papers, ≤ {max_len} ids of {vocab}; graph from {source} embeddings at cosine ≥ {threshold}, \
         top {top_k}: {} directed edges",
        papers.len(),
        graph.edge_count()
    );

    let reg = GraphRegConfig {
        multiplier: 0.1,
        neighbors: 1.into(),
        distance: DistanceConfig { sum_over_axis: Some(-1), ..Default::default() },
        ..Default::default()
    };
    let (table, _) = NeighborTable::new(&train, Some(&test), &graph, 1)?;
    println!("model {spec}: seed, test accuracy without / with the built graph");
    let (mut base_sum, mut reg_sum) = (0.0, 0.0);
    for seed in 0..seeds {
        let run = |graph_reg: bool| -> Result<f64, Box<dyn std::error::Error>> {
            let (model, vars) = build_model(&spec, train.item_shape(), 7, seed, &candle_core::Device::Cpu)?;
            let mut trainer = Trainer::new(model.as_ref(), &vars, config(seed));
            if graph_reg {
                trainer = trainer.with_graph(&table, &reg);
            }
            trainer.fit(&train, None)?;
            Ok(evaluate(model.as_ref(), &test, 1024)?.accuracy)
        };
        let (base, regularized) = (run(false)?, run(true)?);
        println!("{seed:>4}  {:>6.2}%  {:>6.2}%", base * 100.0, regularized * 100.0);
        base_sum += base;
        reg_sum += regularized;
    }
    let n = seeds.max(1) as f64;
    println!("mean  {:>6.2}%  {:>6.2}%", base_sum / n * 100.0, reg_sum / n * 100.0);
    Ok(())
}
