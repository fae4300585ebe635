//! NSL's Cora tutorial, end to end on the bundled data: an MLP [50, 50] with dropout 0.5, trained
//! for 100 epochs (batch 128, Adam) with and without graph regularization (multiplier 0.1, 1
//! neighbor, L2), on NSL's 80/20 split, test papers serving as unlabeled neighbors.
//!
//! ```sh
//! cargo run --release --example cora_graph_reg                  # 3 seeds, the tutorial's settings
//! cargo run --release --example cora_graph_reg -- 5 0.2 2       # seeds, multiplier, neighbors
//! ```

use nsl::data::read_content;
use nsl::data::{split, SplitConfig, SplitMethod};
use nsl::eval::evaluate;
use nsl::graph::{read_cites, UnknownIds};
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{DistanceConfig, GraphRegConfig};
use nsl::train::{TrainConfig, Trainer};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: &str| std::env::args().nth(i).unwrap_or_else(|| default.to_string());
    let (seeds, multiplier, neighbors): (u64, f64, usize) =
        (arg(1, "3").parse()?, arg(2, "0.1").parse()?, arg(3, "1").parse()?);

    let cora = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora");
    let papers = read_content(&cora.join("cora.content.gz"))?;
    let known = |id: &str| papers.position(id).is_some();
    let (graph, _) = read_cites(&cora.join("cora.cites.gz"), &known, UnknownIds::Error)?;
    let nsl_split = SplitConfig { train_fraction: 0.8, seed: 1, stratify: false, method: SplitMethod::NslUniform };
    let (train, test) = split(&papers, &nsl_split)?;

    let reg = GraphRegConfig {
        multiplier,
        neighbors: neighbors.into(),
        distance: DistanceConfig { sum_over_axis: Some(-1), ..Default::default() },
        ..Default::default()
    };
    let (table, _) = NeighborTable::new(&train, Some(&test), &graph, reg.neighbors)?;
    let spec: ModelSpec = "mlp:50,50".parse::<ModelSpec>()?.with_dropout(0.5);
    println!(
        "Cora: {} train / {} test papers; multiplier {multiplier}, {neighbors} neighbor(s)",
        train.len(),
        test.len()
    );
    println!("seed  base acc  graph-reg acc  base s/epoch  graph-reg s/epoch");
    let (mut base_sum, mut reg_sum) = (0.0, 0.0);
    for seed in 0..seeds {
        let config = TrainConfig {
            epochs: 100,
            batch_size: 128,
            seed,
            threads: Some(1), // small model: one thread is fastest on 2 cores
            ..Default::default()
        };
        let run = |graph_reg: bool| -> Result<(f64, f64), Box<dyn std::error::Error>> {
            let (model, vars) = build_model(&spec, train.item_shape(), 7, seed, &candle_core::Device::Cpu)?;
            let mut trainer = Trainer::new(model.as_ref(), &vars, config.clone());
            if graph_reg {
                trainer = trainer.with_graph(&table, &reg);
            }
            let history = trainer.fit(&train, None)?;
            Ok((evaluate(model.as_ref(), &test, 1024)?.accuracy, history.steady_epoch_seconds().unwrap_or(0.0)))
        };
        let (base, base_s) = run(false)?;
        let (regularized, reg_s) = run(true)?;
        println!("{seed:>4}  {:>8.2}%  {:>12.2}%  {base_s:>12.4}  {reg_s:>17.4}", base * 100.0, regularized * 100.0);
        base_sum += base;
        reg_sum += regularized;
    }
    let n = seeds.max(1) as f64;
    println!("mean  {:>8.2}%  {:>12.2}%", base_sum / n * 100.0, reg_sum / n * 100.0);
    Ok(())
}
