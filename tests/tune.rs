//! `nsl tune` and `nsl::tune` (issue 26): the halving plan, reproducibility, the stop hook, bad
//! input before the search, and the outputs. Tiny fixtures: 36 samples, a few epochs.

use nsl::data::{write_samples, Dataset};
use nsl::graph::{write_graph, EdgeKind, NeighborGraph};
use nsl::regularize::GraphRegConfig;
use nsl::run::RunSpec;
use nsl::tune::{Distribution, Plan, Rung, SearchSpace, TrialStatus, TuneConfig, TuneError, TuneHooks, Tuner, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod common;
use common::{fails, names, ok};

// ---- fixtures ------------------------------------------------------------------------------

/// Sample `i` of class `i % 2`: a point near `(1, 0, 0, 0)` or `(0, 1, 0, 0)`, blurred by
/// `i`-dependent offsets so that no two samples are alike.
fn sample(i: usize) -> [f32; 4] {
    let c = (i % 2) as f32;
    let wobble = ((i * 7) % 11) as f32 / 11.0 - 0.5;
    [1.0 - c + 0.6 * wobble, c - 0.4 * wobble, 0.3 * wobble, ((i * 5) % 3) as f32 / 3.0]
}

/// Samples `range` as a dataset (ids `s<i>`, labels `i % 2`).
fn samples(range: std::ops::Range<usize>) -> Dataset {
    let ids: Vec<String> = range.clone().map(|i| format!("s{i}")).collect();
    let rows: Vec<f32> = range.clone().flat_map(sample).collect();
    let x = ndarray::Array2::from_shape_vec((range.len(), 4), rows).unwrap();
    let labels = Some(range.map(|i| (i % 2) as u32).collect());
    Dataset::new(ids, x, vec![4], labels, None).unwrap()
}

/// A ring through each class (`s0 - s2 - s4 - …`, `s1 - s3 - …`) over 36 samples.
fn class_rings() -> NeighborGraph {
    let mut g = NeighborGraph::new();
    for i in 0..36 {
        g.add_edge(&format!("s{i}"), &format!("s{}", (i + 2) % 36), 1.0, EdgeKind::Explicit).unwrap();
    }
    g.make_undirected();
    g
}

/// 12 labeled samples, 12 validation, 12 unlabeled; 9 epochs of a small contrastive recipe.
fn base_spec() -> RunSpec {
    let mut spec = RunSpec {
        samples: Some(samples(0..12).into()),
        validation: Some(samples(12..24).into()),
        unlabeled: Some(samples(24..36).into()),
        ..RunSpec::default()
    };
    spec.unlabeled_config.ratio = 2.0;
    spec.graph = Some(class_rings().into());
    spec.graph_reg = Some("multiplier=1,neighbors=4,distance=contrastive,layer=hidden1,in-batch=true".parse().unwrap());
    spec.model = "mlp:8,8".parse().unwrap();
    spec.train.epochs = 9;
    spec.train.batch_size = 4;
    spec
}

/// The base with `settings` written in: what a recipe parser does for `nsl tune`.
fn make(settings: &Vec<(String, Value)>) -> Result<RunSpec, String> {
    let mut spec = base_spec();
    for (key, value) in settings {
        match (key.as_str(), value) {
            ("learning_rate", Value::Float(lr)) => spec.train.optimizer = spec.train.optimizer.with_learning_rate(*lr),
            ("dropout", Value::Float(d)) => spec.dropout = Some(*d as f32),
            ("graph_reg.multiplier", Value::Float(m)) => {
                let reg = spec.graph_reg.take().unwrap_or_default();
                spec.graph_reg = Some(GraphRegConfig { multiplier: *m, ..reg });
            }
            ("graph_reg.layer", Value::Text(layer)) => {
                let text = format!("multiplier=1,neighbors=4,distance=contrastive,layer={layer},in-batch=true");
                spec.graph_reg = Some(text.parse().map_err(|e: nsl::ConfigError| e.to_string())?);
            }
            _ => return Err(format!("unknown key `{key}`")),
        }
    }
    Ok(spec)
}

fn space() -> SearchSpace {
    SearchSpace::new([
        ("learning_rate".to_string(), Distribution::LogUniform([1e-3, 0.3])),
        ("dropout".to_string(), Distribution::Uniform([0.0, 0.5])),
        ("graph_reg.multiplier".to_string(), Distribution::LogUniform([0.1, 3.0])),
    ])
    .unwrap()
}

fn two_seeds() -> TuneConfig {
    TuneConfig { finalist_seeds: 2, ..TuneConfig::default() }
}

// ---- the plan ------------------------------------------------------------------------------

#[test]
fn the_halving_plan_of_a_budget_is_hand_checkable() {
    // R = 400 (the few-labels recipe), η = 3, 3 finalist seeds: rungs of 400/27 = 14, 400/9 = 44,
    // 400/3 = 133 and 400 epochs. The least plan, n₀ = 27: 27·14 + 9·44 + 3·133 + 1·400 + 1·2·400
    // = 378 + 396 + 399 + 400 + 800 = 2373 epochs.
    let config = TuneConfig::default();
    let plan = Plan::for_budget(2373, 400, &config).unwrap();
    let rungs = [(27, 14), (9, 44), (3, 133), (1, 400)].map(|(trials, epochs)| Rung { trials, epochs });
    assert_eq!(plan.rungs, rungs);
    assert_eq!(plan.epochs(), 2373);
    assert_eq!(plan.trainings(), 27 + 9 + 3 + 1 + 2);
    // One epoch less: two halvings (44, 133, 400), n₀ = 9: 9·44 + 3·133 + 400 + 800 = 1995; n₀ = 10
    // costs 2035, …, n₀ = 17 (n₁ = 5, n₂ = 1): 748 + 665 + 400 + 800 = 2613 > 2372; n₀ = 15: 660 +
    // 665 + 1200 = 2525 > 2372; n₀ = 14: 616 + 532 + 1200 = 2348 ≤ 2372.
    let plan = Plan::for_budget(2372, 400, &config).unwrap();
    let rungs = [(14, 44), (4, 133), (1, 400)].map(|(trials, epochs)| Rung { trials, epochs });
    assert_eq!(plan.rungs, rungs);
    assert_eq!(plan.epochs(), 2348);
    // Less than one trial of 400 epochs with 3 seeds.
    let err = Plan::for_budget(1199, 400, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a budget of 1199 epochs is too small for one trial: one trial of 400 epochs with 3 finalist seeds needs \
         1200 epochs"
    );
}

// ---- the search ----------------------------------------------------------------------------

#[test]
fn the_same_seed_gives_the_same_search_and_another_seed_another() {
    let run = |seed| {
        let config = TuneConfig { seed, ..two_seeds() };
        let mut tuner = Tuner::new(space(), config.clone(), make).unwrap();
        let plan = Plan::for_budget(36, tuner.max_epochs(), &config).unwrap();
        // 9 epochs, η = 3: rungs of 1, 3 and 9 epochs; 9 + 9 + 9 + 9 (the finalist's second seed).
        assert_eq!(plan.rungs.iter().map(|r| (r.trials, r.epochs)).collect::<Vec<_>>(), [(9, 1), (3, 3), (1, 9)]);
        tuner.run(&plan, TuneHooks::default())
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a.trials.len(), 9 + 3 + 1 + 1);
    assert!(a.trials.iter().all(|r| r.status == TrialStatus::Done), "{:?}", a.trials);
    let key = |o: &nsl::tune::TuneOutcome| {
        o.trials.iter().map(|r| (r.trial, r.rung, r.seed, r.settings.clone(), r.score)).collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
    assert_ne!(a.trials[0].settings, c.trials[0].settings);
    // Rung 0 scores trials 0 and 8 at 1.0, the other seven at 0.5: rung 1 takes 0 and 8, then
    // the earliest of the ties, 1.
    let rung0: Vec<f64> = a.trials.iter().filter(|r| r.rung == 0).map(|r| r.score.unwrap()).collect();
    assert_eq!(rung0, [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0]);
    let rung1: Vec<usize> = a.trials.iter().filter(|r| r.rung == 1).map(|r| r.trial).collect();
    assert_eq!(rung1, [0, 8, 1]);
    let best = a.best.unwrap();
    assert!(best.finished);
    assert_eq!((best.rung, best.epochs, best.scores.len()), (2, 9, 2));
    // The finalist is the best of rung 1 (ties to the earlier trial).
    let rung1_best = a
        .trials
        .iter()
        .filter(|r| r.rung == 1)
        .min_by(|x, y| y.score.partial_cmp(&x.score).unwrap().then(x.trial.cmp(&y.trial)));
    assert_eq!(best.trial, rung1_best.unwrap().trial);
    // Every training was given its rung's epochs; the finalist's seeds are the base seed 0 and 1.
    let finalist: Vec<u64> = a.trials.iter().filter(|r| r.rung == 2).map(|r| r.seed).collect();
    assert_eq!(finalist, [0, 1]);
}

#[test]
fn the_stop_hook_keeps_the_best_found_so_far() {
    let config = two_seeds();
    let mut tuner = Tuner::new(space(), config.clone(), make).unwrap();
    let plan = Plan::for_budget(36, tuner.max_epochs(), &config).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let mut seen = 0;
    // Ctrl-C during the fifth training of rung 0: it ends stopped, the four before are kept.
    let hooks = TuneHooks::default().stop_when(stop).on_progress(move |p| {
        if p.epochs_done == 5 {
            flag.store(true, Ordering::SeqCst);
        }
    });
    let outcome = tuner.run(
        &plan,
        hooks.on_trial(|_| {
            seen += 1;
        }),
    );
    assert!(outcome.stopped);
    assert_eq!(seen, 5);
    let statuses: Vec<TrialStatus> = outcome.trials.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [[TrialStatus::Done; 4].as_slice(), &[TrialStatus::Stopped]].concat());
    let best = outcome.best.unwrap();
    assert!(!best.finished);
    assert_eq!(best.rung, 0);
    let top = outcome.trials[..4].iter().map(|r| r.score.unwrap()).fold(0.0, f64::max);
    assert_eq!(best.mean, top);
}

#[test]
fn a_rejected_value_is_a_failed_trial_not_a_crash() {
    // `layer=hidden1` needs two hidden layers: with `hidden2` the run's model has no such layer
    // (found when it opens, so the check before the search lets it through).
    let space = SearchSpace::new([(
        "graph_reg.layer".to_string(),
        Distribution::Choice(vec![Value::Text("hidden1".into()), Value::Text("hidden7".into())]),
    )])
    .unwrap();
    let config = TuneConfig { finalist_seeds: 1, ..TuneConfig::default() };
    let mut tuner = Tuner::new(space, config.clone(), make).unwrap();
    let plan = Plan::for_budget(27, tuner.max_epochs(), &config).unwrap();
    let outcome = tuner.run(&plan, TuneHooks::default());
    let failed: Vec<_> = outcome.trials.iter().filter(|r| r.status == TrialStatus::Failed).collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|r| r.error.as_deref().is_some_and(|e| e.contains("hidden7")) && r.score.is_none()));
    assert_eq!(outcome.best.unwrap().settings, vec![("graph_reg.layer".to_string(), Value::Text("hidden1".into()))]);
}

#[test]
fn bad_input_is_an_error_before_the_search() {
    // No validation samples.
    let no_validation = |_: &Vec<(String, Value)>| {
        let mut spec = base_spec();
        spec.validation = None;
        Ok(spec)
    };
    assert!(matches!(Tuner::new(space(), two_seeds(), no_validation), Err(TuneError::NoValidation)));
    // A key the recipe does not know, named.
    let unknown = SearchSpace::new([("learnin_rate".to_string(), Distribution::LogUniform([1e-3, 1e-2]))]).unwrap();
    let err = Tuner::new(unknown, two_seeds(), make).err().unwrap();
    assert_eq!(
        err.to_string(),
        "search space key `learnin_rate`: the recipe rejects learnin_rate = 0.001: unknown key `learnin_rate`"
    );
    // A range whose end the run rejects: dropout 1 is not in [0, 1).
    let dropout = SearchSpace::new([("dropout".to_string(), Distribution::Uniform([0.2, 1.0]))]).unwrap();
    let err = Tuner::new(dropout, two_seeds(), make).err().unwrap();
    assert!(err.to_string().starts_with("search space key `dropout`: the recipe rejects dropout = 1:"), "{err}");
    // An invalid range.
    let err = SearchSpace::new([("learning_rate".to_string(), Distribution::LogUniform([1e-2, 1e-3]))]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "search space key `learning_rate`: log_uniform = [0.01, 0.001]: the lower bound is above the upper"
    );
    // A budget too small for one trial of 9 epochs with 2 seeds.
    assert!(matches!(Plan::for_budget(17, 9, &two_seeds()), Err(TuneError::BudgetTooSmall { needed: 18, .. })));
}

// ---- nsl tune ------------------------------------------------------------------------------

/// The fixture's files in `dir`: tr, va, un (Parquet samples) and g (Parquet graph), a recipe and
/// a space.
fn files(dir: &Path) -> PathBuf {
    write_samples(&samples(0..12), &dir.join("tr.parquet")).unwrap();
    write_samples(&samples(12..24), &dir.join("va.parquet")).unwrap();
    write_samples(&samples(24..36), &dir.join("un.parquet")).unwrap();
    write_graph(&class_rings(), &dir.join("g.parquet")).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        "# a small contrastive recipe\nmodel = \"mlp:8,8\"\nepochs = 9\nbatch_size = 4\nunlabeled_ratio = 2.0\n\
         graph_reg = \"multiplier=1,neighbors=4,distance=contrastive,layer=hidden1,in-batch=true\"\nthreads = 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("space.toml"),
        "learning_rate = { log_uniform = [1e-3, 0.3] }\ndropout = { uniform = [0, 0.5] }\n\
         [graph_reg]\nmultiplier = { log_uniform = [0.1, 3] }\n",
    )
    .unwrap();
    dir.to_path_buf()
}

fn tune_args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "tune",
        "--config",
        "recipe.toml",
        "--space",
        "space.toml",
        "--samples",
        "tr.parquet",
        "--unlabeled",
        "un.parquet",
        "--graph",
        "g.parquet",
        "--validation",
        "va.parquet",
        "--finalist-seeds",
        "2",
    ]
    .iter()
    .map(|a| match a.ends_with(".parquet") || a.ends_with(".toml") {
        true => format!("{dir}/{a}"),
        false => a.to_string(),
    })
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn run(args: &[String]) -> String {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_fails(args: &[String]) -> String {
    fails(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn nsl_tune_writes_a_recipe_nsl_train_accepts_and_the_same_seed_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = files(tmp.path());
    let d = dir.to_str().unwrap();
    let first = format!("{d}/a.toml");
    let json = run(&tune_args(
        d,
        &[
            "--budget-epochs",
            "36",
            "--seed",
            "3",
            "--out-recipe",
            &first,
            "--trials",
            &format!("{d}/t.parquet"),
            "--plot",
            &format!("{d}/t.svg"),
            "--json",
        ],
    ));
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(summary["budget_epochs"], 36);
    assert_eq!(summary["trainings"], 9 + 3 + 1 + 1);
    assert_eq!(summary["interrupted"], false);
    let second = format!("{d}/b.toml");
    run(&tune_args(d, &["--budget-epochs", "36", "--seed", "3", "--out-recipe", &second]));
    let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    assert_eq!(String::from_utf8_lossy(&a).replace("a.toml", "b.toml"), String::from_utf8_lossy(&b));
    let recipe = String::from_utf8(a).unwrap();
    assert!(recipe.contains("# Chosen by `nsl tune --seed 3 --budget-epochs 36`"), "{recipe}");
    assert!(recipe.contains("early_stopping = \"patience=100\"") && recipe.contains("epochs = 9\n"), "{recipe}");
    // The drawn values are written in (three significant digits), the rest of the recipe kept.
    let lr = summary["settings"]["learning_rate"].as_f64().unwrap();
    assert!(recipe.contains(&format!("learning_rate = {lr}\n")), "{recipe}");
    assert!(
        recipe.contains("layer=hidden1,in-batch=true,multiplier=") || recipe.contains("graph_reg = \"multiplier="),
        "{recipe}"
    );
    // nsl train takes it as it is.
    let out = ok(&[
        "train",
        "--config",
        &first,
        "--samples",
        &format!("{d}/tr.parquet"),
        "--unlabeled",
        &format!("{d}/un.parquet"),
        "--graph",
        &format!("{d}/g.parquet"),
        "--validation",
        &format!("{d}/va.parquet"),
        "--out",
        &format!("{d}/run"),
        "--json",
    ]);
    assert!(out.contains("\"epochs\": 9"), "{out}");
    // The table: one row per training, the space's keys as columns.
    let table = std::fs::File::open(format!("{d}/t.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(table).unwrap();
    let fields: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        fields,
        [
            "trial",
            "rung",
            "epochs",
            "seed",
            "status",
            "score",
            "best_epoch",
            "epochs_run",
            "seconds",
            "error",
            "dropout",
            "graph_reg.multiplier",
            "learning_rate"
        ]
    );
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 14);
    assert!(std::fs::read_to_string(format!("{d}/t.svg")).unwrap().starts_with("<svg"));
}

#[test]
fn nsl_tune_refuses_bad_input_before_the_search_naming_the_flag_or_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = files(tmp.path());
    let d = dir.to_str().unwrap();
    let out = format!("{d}/tuned.toml");
    let before = names(&dir);
    // No validation split.
    let mut args = tune_args(d, &["--budget-epochs", "36", "--out-recipe", &out]);
    let at = args.iter().position(|a| a == "--validation").unwrap();
    args.drain(at..at + 2);
    let err = run_fails(&args);
    assert!(err.contains("--validation: no validation samples"), "{err}");
    // A budget too small for one trial (9 epochs × 2 seeds).
    let err = run_fails(&tune_args(d, &["--budget-epochs", "17", "--out-recipe", &out]));
    assert!(err.contains("--budget-epochs: a budget of 17 epochs is too small for one trial"), "{err}");
    let err = run_fails(&tune_args(d, &["--budget", "0.001s", "--out-recipe", &out]));
    assert!(err.contains("--budget"), "{err}");
    // A space with an invalid range, and with an unknown key.
    std::fs::write(dir.join("space.toml"), "dropout = { uniform = [0.5, 0.1] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "36", "--out-recipe", &out]));
    assert!(
        err.contains("search space key `dropout`: uniform = [0.5, 0.1]: the lower bound is above the upper"),
        "{err}"
    );
    std::fs::write(dir.join("space.toml"), "drop_out = { uniform = [0.1, 0.5] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "36", "--out-recipe", &out]));
    assert!(
        err.contains(
            "--space: search space key `drop_out`: the recipe rejects drop_out = 0.1: unknown field `drop_out`"
        ),
        "{err}"
    );
    std::fs::write(dir.join("space.toml"), "[graph_reg]\nmultiplyer = { log_uniform = [0.1, 1] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "36", "--out-recipe", &out]));
    assert!(
        err.contains("search space key `graph_reg.multiplyer`") && err.contains("unknown key `multiplyer`"),
        "{err}"
    );
    std::fs::write(dir.join("space.toml"), "dropout = { normal = [0.1, 0.5] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "36", "--out-recipe", &out]));
    assert!(err.contains("key `dropout.normal`: expected one of { log_uniform"), "{err}");
    // An unwritable output.
    std::fs::write(dir.join("space.toml"), "dropout = { uniform = [0.1, 0.5] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "36", "--out-recipe", &format!("{d}/no/such/dir/t.toml")]));
    assert!(err.contains("--out-recipe"), "{err}");
    let err = run_fails(&tune_args(d, &["--budget-epochs", "36", "--out-recipe", &out, "--trials", d]));
    assert!(err.contains("--trials"), "{err}");
    // Nothing was written.
    assert_eq!(names(&dir), before);
}
