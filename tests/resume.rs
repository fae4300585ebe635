//! Resuming an interrupted run (issue 12 item 5, issue 15 "an interrupted long run loses
//! everything"): the library's `TrainState` and `Trainer::resume_from`, and `nsl train --resume`
//! after a `SIGKILL`, end with the weights of an uninterrupted run, bit for bit.

use candle_core::Device;
use nsl::data::Dataset;
use nsl::graph::{EdgeKind, NeighborGraph};
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
use nsl::train::{
    MultiplierSchedule, MultiplierSchedules, StateError, TrainConfig, TrainError, TrainState, Trainer, UnlabeledConfig,
};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Two noisy blobs in 8 dimensions: `n` samples `{prefix}{i}`, labels 0/1.
fn blobs(n: usize, prefix: &str, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 8), |(i, j)| {
        let center = if labels[i] == 1 && j < 4 { 1.0 } else { 0.0 };
        center + rng.random_range(-0.8..0.8f32)
    });
    Dataset::new((0..n).map(|i| format!("{prefix}{i}")).collect(), features, vec![8], Some(labels), None).unwrap()
}

/// Labeled, unlabeled and validation samples, and a graph over the first two.
fn fixture() -> (Dataset, Dataset, Dataset, NeighborGraph) {
    let (labeled, unlabeled, validation) = (blobs(30, "l", 1), blobs(40, "u", 2), blobs(20, "v", 3));
    let mut g = NeighborGraph::new();
    for i in 0..40 {
        g.add_edge(&format!("u{i}"), &format!("u{}", (i + 2) % 40), 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge(&format!("u{i}"), &format!("l{}", i % 30), 0.5, EdgeKind::Explicit).unwrap();
    }
    g.make_undirected();
    (labeled, unlabeled, validation, g)
}

fn weights(vars: &candle_nn::VarMap) -> Vec<f32> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

/// Adam, dropout, a cosine learning rate with warm-up, graph regularization with a decaying
/// multiplier, unlabeled centers, VAT, PGD adversarial neighbors with random starts and early
/// stopping (patience long enough to run every epoch).
fn config() -> TrainConfig {
    TrainConfig {
        epochs: 6,
        batch_size: 8,
        seed: 7,
        early_stopping: Some(6),
        lr_schedule: "cosine,min=0.0001,warmup=1".parse().unwrap(),
        multiplier_schedules: MultiplierSchedules {
            graph: MultiplierSchedule::from_kv("decay=exponential,steps=5,rate=0.9,warmup=3").unwrap(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Trains with `config`; `stop_after`: the state sink fails after that epoch (an interruption),
/// `resume`: continue from a state. Returns the weights, the history's epochs and the last state.
fn run(
    config: TrainConfig,
    stop_after: Option<usize>,
    resume: Option<TrainState>,
) -> (Result<Vec<f32>, TrainError>, usize, Option<TrainState>) {
    let (labeled, pool, validation, g) = fixture();
    let reg = GraphRegConfig { multiplier: 0.3, neighbors: 2.into(), ..GraphRegConfig::tutorial() };
    let vat = VatConfig { multiplier: 0.5, ..Default::default() };
    let adv = AdvRegConfig::from_kv("multiplier=0.2,step-size=0.05,pgd-iterations=2,random-init=true").unwrap();
    let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.3);
    let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
    let (table, _) = NeighborTable::new(&labeled, Some(&pool), &g, reg.neighbors).unwrap();
    let (utable, _) = NeighborTable::new(&pool, Some(&labeled), &g, reg.neighbors).unwrap();
    let mut last = None;
    let mut trainer = Trainer::new(model.as_ref(), &vars, config)
        .with_graph(&table, &reg)
        .with_unlabeled(&pool, Some(&utable), UnlabeledConfig { ratio: 0.5, entropy: 0.1 })
        .with_vat(&vat)
        .with_adversarial(&adv)
        .on_epoch_state(1, |state| {
            last = Some(state.clone());
            match stop_after {
                Some(e) if state.epoch() == e => {
                    Err(StateError::Invalid { path: "interrupted".into(), message: "".into() })
                }
                _ => Ok(()),
            }
        });
    if let Some(state) = resume {
        trainer = trainer.resume_from(state);
    }
    let fitted = trainer.fit(&labeled, Some(&validation));
    drop(trainer);
    let epochs = fitted.as_ref().map_or(0, |h| h.epochs.len());
    (fitted.map(|_| weights(&vars)), epochs, last)
}

#[test]
fn a_resumed_run_ends_with_the_uninterrupted_weights() {
    let (whole, epochs, _) = run(config(), None, None);
    let whole = whole.unwrap();
    assert_eq!(epochs, 6);
    for stop in [1, 2, 4] {
        let (interrupted, _, state) = run(config(), Some(stop), None);
        assert!(interrupted.is_err(), "the sink's error stops the fit");
        let state = state.unwrap();
        assert_eq!(state.epoch(), stop);
        // Through the file, as the CLI does.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.safetensors");
        state.save(&path).unwrap();
        let loaded = TrainState::load(&path).unwrap();
        assert_eq!(loaded, state);
        let (resumed, epochs, _) = run(config(), None, Some(loaded));
        assert_eq!(epochs, 6, "the history covers the whole run");
        assert_eq!(resumed.unwrap(), whole, "resumed after epoch {stop}");
    }
}

#[test]
fn a_state_of_other_settings_is_refused() {
    let (_, _, state) = run(config(), Some(2), None);
    let other = TrainConfig { batch_size: 16, ..config() };
    let err = run(other, None, state).0.unwrap_err().to_string();
    assert_eq!(
        err,
        "the saved state was made with batch_size = 8, this run has 16: a run resumes with the settings it started with"
    );
}

#[test]
fn a_truncated_or_foreign_state_file_is_an_error_naming_it() {
    let (_, _, state) = run(config(), Some(1), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.safetensors");
    state.unwrap().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = TrainState::load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: not a training state", path.display())), "{err}");
    std::fs::write(&path, b"not a state").unwrap();
    assert!(TrainState::load(&path).unwrap_err().to_string().contains("not a training state"));
}

// ---- `nsl train --resume` after a SIGKILL ----

fn nsl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsl"))
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = nsl().current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "nsl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_err(dir: &Path, args: &[&str]) -> String {
    let out = nsl().current_dir(dir).args(args).output().unwrap();
    assert!(!out.status.success(), "nsl {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join(rel).to_string_lossy().into_owned()
}

/// Cora as `cora.parquet` + `graph.parquet` in `dir`, split into `train.parquet` (half) and
/// `unlabeled.parquet`.
fn cora(dir: &Path) {
    run_ok(
        dir,
        &[
            "convert",
            "--content",
            &data("cora/cora.content.gz"),
            "--cites",
            &data("cora/cora.cites.gz"),
            "--samples",
            "cora.parquet",
            "--graph",
            "graph.parquet",
        ],
    );
    run_ok(
        dir,
        &["split", "cora.parquet", "--train", "0.5", "--out-train", "train.parquet", "--out-test", "unlabeled.parquet"],
    );
}

/// Adam, dropout 0.5, graph regularization with a scheduled multiplier, unlabeled centers, a
/// cosine learning rate; 1 thread (results depend on the thread count).
fn train_args(out: &str, epochs: &str) -> Vec<String> {
    [
        "train",
        "--samples",
        "train.parquet",
        "--unlabeled",
        "unlabeled.parquet",
        "--graph",
        "graph.parquet",
        "--graph-reg",
        "multiplier=0.1,neighbors=2",
        "--graph-reg-schedule",
        "steps=100,rate=0.9,warmup=50",
        "--model",
        "mlp:50,50",
        "--dropout",
        "0.5",
        "--optimizer",
        "adam",
        "--lr-schedule",
        "cosine,min=0.0001,warmup=2",
        "--epochs",
        epochs,
        "--threads",
        "1",
        "--seed",
        "3",
        "--checkpoint-every",
        "1",
        "--out",
        out,
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Starts `args`, waits until its saved state holds at least `epochs` completed epochs, and kills
/// it with SIGKILL; returns the epoch of the state it left.
fn kill_after(dir: &Path, args: &[&str], state: &Path, epochs: usize) -> usize {
    let mut child = nsl()
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        // The state is written atomically: a load never sees half a file.
        if let Ok(s) = TrainState::load(state) {
            if s.epoch() >= epochs {
                break;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(300), "no state of epoch {epochs} after 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    TrainState::load(state).unwrap().epoch()
}

/// Issue 15, "training writes nothing until the end, so an interrupted long run loses everything".
#[test]
fn interrupted_train_keeps_its_completed_epochs_and_resumes_to_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cora(d);
    let epochs = "60";
    run_ok(d, &strs(&train_args("whole", epochs)));
    assert!(!d.join("whole.partial").exists(), "a saved run leaves no state behind");
    let killed_at = kill_after(d, &strs(&train_args("run", epochs)), &d.join("run.partial/state.safetensors"), 2);
    assert!((2..60).contains(&killed_at), "killed after epoch {killed_at}");
    assert!(!d.join("run").exists(), "a killed run is not visible");

    // Other values of the run's settings are refused, naming the flag; nothing is written.
    let err = run_err(d, &["train", "--resume", "run", "--epochs", "61"]);
    assert!(err.contains("--epochs 61 (the run has 60) differ from the interrupted run's settings"), "{err}");
    let err = run_err(d, &["train", "--resume", "run", "--lr-schedule", "constant"]);
    assert!(err.contains("--lr-schedule"), "{err}");
    assert!(!d.join("run").exists());

    // The same values may be repeated.
    let mut again = vec!["train", "--resume", "run", "--epochs", epochs, "--json"];
    again.extend(["--threads", "1"]);
    let summary = run_ok(d, &again);
    assert!(summary.contains("\"epochs\": 60"), "{summary}");
    let read = |run: &str, file: &str| std::fs::read(d.join(run).join(file)).unwrap();
    assert_eq!(read("run", "model.safetensors"), read("whole", "model.safetensors"), "resumed after epoch {killed_at}");
    assert_eq!(read("run", "model.json"), read("whole", "model.json"));
    let history = |run: &str| -> Vec<String> {
        // Every column but the epoch's seconds.
        String::from_utf8(read(run, "history.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').map_or(l, |(a, _)| a).to_string())
            .collect()
    };
    assert_eq!(history("run"), history("whole"), "the history covers every epoch");
    assert!(!d.join("run.partial").exists(), "the state is removed once the run is saved");
    let err = run_err(d, &["train", "--resume", "run"]);
    assert!(err.contains("no interrupted run to resume"), "{err}");
}

#[test]
fn a_state_of_another_runs_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cora(d);
    // Two interrupted runs that differ in their learning-rate schedule only.
    let a = train_args("a", "60");
    let mut b = train_args("b", "60");
    let at = b.iter().position(|x| x == "cosine,min=0.0001,warmup=2").unwrap();
    b[at] = "exponential,rate=0.9".into();
    kill_after(d, &strs(&a), &d.join("a.partial/state.safetensors"), 1);
    kill_after(d, &strs(&b), &d.join("b.partial/state.safetensors"), 1);
    std::fs::copy(d.join("b.partial/state.safetensors"), d.join("a.partial/state.safetensors")).unwrap();
    let err = run_err(d, &["train", "--resume", "a"]);
    assert!(
        err.contains(
            "the saved state was made with lr_schedule = {\"decay\":{\"kind\":\"exponential\",\"rate\":0.9},\"warmup\":0}, \
             this run has {\"decay\":{\"kind\":\"cosine\",\"min\":0.0001},\"warmup\":2}"
        ),
        "{err}"
    );
    assert!(!d.join("a").exists(), "nothing written");
}
