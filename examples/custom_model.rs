//! Your own Candle model, graph-regularized, in a few lines: anything that implements
//! `candle_nn::Module` (or `ModuleT`) is an `nsl::model::Model`.
//!
//! Run with `cargo run --release --example custom_model`.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use nsl::data::read_content;
use nsl::data::{split, SplitConfig};
use nsl::eval::evaluate;
use nsl::graph::{read_cites, UnknownIds};
use nsl::neighbors::NeighborTable;
use nsl::regularize::GraphRegConfig;
use nsl::train::{TrainConfig, Trainer};
use std::path::Path;

/// A plain Candle model: logistic regression on top of one tanh layer.
struct TwoLayer {
    hidden: Linear,
    out: Linear,
}

impl Module for TwoLayer {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.out.forward(&self.hidden.forward(xs)?.tanh()?)
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let cora = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora");
    let papers = read_content(&cora.join("cora.content.gz"))?;
    let known = |id: &str| papers.position(id).is_some();
    let (graph, _) = read_cites(&cora.join("cora.cites.gz"), &known, UnknownIds::Error)?;
    let (train, test) = split(&papers, &SplitConfig::default())?;

    // The model, built the Candle way; seed its weights with nsl's Glorot initializer.
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let model = TwoLayer { hidden: linear(papers.dim(), 32, vb.pp("hidden"))?, out: linear(32, 7, vb.pp("out"))? };
    nsl::model::glorot_init(&vars, 0)?;

    // Graph regularization along the citations, the test papers serving as unlabeled neighbors.
    let (neighbors, _) = NeighborTable::new(&train, Some(&test), &graph, 2)?;
    let reg = GraphRegConfig { multiplier: 0.1, neighbors: 2.into(), ..Default::default() };
    let config = TrainConfig { epochs: 30, batch_size: 128, ..Default::default() };
    let history = Trainer::new(&model, &vars, config).with_graph(&neighbors, &reg).fit(&train, None)?;

    let last = history.epochs.last().map_or(0.0, |e| e.accuracy);
    println!("train accuracy {last:.3}, test accuracy {:.3}", evaluate(&model, &test, 512)?.accuracy);
    Ok(())
}
