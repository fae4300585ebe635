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
    // + 3·400 (the base recipe, trial 0) = 378 + 396 + 399 + 400 + 800 + 1200 = 3573 epochs.
    let config = TuneConfig::default();
    let plan = Plan::for_budget(3573, 400, &config).unwrap();
    let rungs = [(27, 14), (9, 44), (3, 133), (1, 400)].map(|(trials, epochs)| Rung { trials, epochs });
    assert_eq!(plan.rungs, rungs);
    assert_eq!(plan.epochs(), 3573);
    assert_eq!(plan.trainings(), 27 + 9 + 3 + 1 + 2 + 3);
    // One epoch less: two halvings (44, 133, 400), n₀ = 9: 9·44 + 3·133 + 400 + 800 + 1200 = 3195;
    // …, n₀ = 15 (n₁ = 5, n₂ = 1): 660 + 665 + 2400 = 3725 > 3572; n₀ = 14: 616 + 532 + 2400 = 3548.
    let plan = Plan::for_budget(3572, 400, &config).unwrap();
    let rungs = [(14, 44), (4, 133), (1, 400)].map(|(trials, epochs)| Rung { trials, epochs });
    assert_eq!(plan.rungs, rungs);
    assert_eq!(plan.epochs(), 3548);
    // Less than one drawn trial and the base, 400 epochs with 3 seeds each.
    let err = Plan::for_budget(2399, 400, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a budget of 2399 epochs is too small for one trial: one drawn trial and the base recipe, 400 epochs with 3 \
         finalist seeds each, need 2400 epochs"
    );
}

// ---- the search ----------------------------------------------------------------------------

#[test]
fn the_same_seed_gives_the_same_search_and_another_seed_another() {
    let run = |seed| {
        let config = TuneConfig { seed, ..two_seeds() };
        let mut tuner = Tuner::new(space(), config.clone(), make).unwrap();
        let plan = Plan::for_budget(54, tuner.max_epochs(), &config).unwrap();
        // 9 epochs, η = 3: rungs of 1, 3 and 9 epochs; 9 + 9 + 9 + 9 (the finalist's second seed)
        // + 18 (the base recipe's two seeds).
        assert_eq!(plan.rungs.iter().map(|r| (r.trials, r.epochs)).collect::<Vec<_>>(), [(9, 1), (3, 3), (1, 9)]);
        tuner.run(&plan, TuneHooks::default())
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a.trials.len(), 9 + 3 + 1 + 1 + 2);
    assert!(a.trials.iter().all(|r| r.status == TrialStatus::Done), "{:?}", a.trials);
    let key = |o: &nsl::tune::TuneOutcome| {
        o.trials.iter().map(|r| (r.trial, r.rung, r.seed, r.settings.clone(), r.score)).collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
    assert_ne!(a.trials[0].settings, c.trials[0].settings);
    // Rung 0 scores trials 1 and 9 at 1.0, the other seven at 0.5: rung 1 takes 1 and 9, then
    // the earliest of the ties, 2.
    let rung0: Vec<f64> = a.trials.iter().filter(|r| r.rung == 0).map(|r| r.score.unwrap()).collect();
    assert_eq!(rung0, [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0]);
    let rung1: Vec<usize> = a.trials.iter().filter(|r| r.rung == 1).map(|r| r.trial).collect();
    assert_eq!(rung1, [1, 9, 2]);
    let best = a.best.unwrap();
    assert!(best.finished);
    assert_eq!((best.rung, best.epochs, best.scores.len()), (2, 9, 2));
    // The last rung: the base recipe (trial 0, nothing drawn) first, then the best of rung 1 (ties
    // to the earlier trial); then both again with the second seed.
    let rung1_best = a
        .trials
        .iter()
        .filter(|r| r.rung == 1)
        .min_by(|x, y| y.score.partial_cmp(&x.score).unwrap().then(x.trial.cmp(&y.trial)))
        .unwrap()
        .trial;
    let last: Vec<(usize, u64, bool)> =
        a.trials.iter().filter(|r| r.rung == 2).map(|r| (r.trial, r.seed, r.settings.is_empty())).collect();
    assert_eq!(last, [(0, 0, true), (rung1_best, 0, false), (0, 1, true), (rung1_best, 1, false)]);
    let mean = |trial| {
        a.trials.iter().filter(|r| r.rung == 2 && r.trial == trial).map(|r| r.score.unwrap()).sum::<f64>() / 2.0
    };
    assert_eq!(best.base_mean, Some(mean(0)));
    // The drawn finalist wins only if it beats the base's mean.
    assert_eq!(best.trial, if mean(rung1_best) > mean(0) { rung1_best } else { 0 });
}

#[test]
fn the_stop_hook_keeps_the_best_found_so_far() {
    let config = two_seeds();
    let mut tuner = Tuner::new(space(), config.clone(), make).unwrap();
    let plan = Plan::for_budget(54, tuner.max_epochs(), &config).unwrap();
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
    assert_eq!(best.base_mean, None);
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
    let plan = Plan::for_budget(36, tuner.max_epochs(), &config).unwrap();
    let outcome = tuner.run(&plan, TuneHooks::default());
    let failed: Vec<_> = outcome.trials.iter().filter(|r| r.status == TrialStatus::Failed).collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|r| r.error.as_deref().is_some_and(|e| e.contains("hidden7")) && r.score.is_none()));
    // The winner is the base (`hidden1`) or a drawn `hidden1`, never a failed trial.
    let best = outcome.best.unwrap();
    assert!(best.settings.iter().all(|(_, v)| *v == Value::Text("hidden1".into())), "{best:?}");
}

/// The base recipe with a learning rate of `lr` and the fixture's trials: (the base's mean score,
/// the chosen trial and its mean).
fn search_around(lr: f64, space: SearchSpace) -> (f64, usize, f64) {
    let make = move |settings: &Vec<(String, Value)>| {
        let mut spec = base_spec();
        (spec.graph_reg, spec.graph, spec.unlabeled) = (None, None, None);
        spec.train.optimizer = spec.train.optimizer.with_learning_rate(lr);
        for (key, value) in settings {
            match (key.as_str(), value) {
                ("learning_rate", Value::Float(x)) => {
                    spec.train.optimizer = spec.train.optimizer.with_learning_rate(*x)
                }
                _ => return Err(format!("unknown key `{key}`")),
            }
        }
        Ok(spec)
    };
    let config = two_seeds();
    let mut tuner = Tuner::new(space, config.clone(), make).unwrap();
    let plan = Plan::for_budget(54, tuner.max_epochs(), &config).unwrap();
    let best = tuner.run(&plan, TuneHooks::default()).best.unwrap();
    assert_eq!(best.is_base(), best.trial == 0);
    (best.base_mean.unwrap(), best.trial, best.mean)
}

#[test]
fn the_base_recipe_is_kept_unless_a_drawn_trial_beats_it() {
    let rates = |a: f64, b: f64| SearchSpace::new([("learning_rate".to_string(), Distribution::LogUniform([a, b]))]);
    // A base that learns (rate 0.05) and draws that cannot (rates around 1e-9): the base is kept.
    let (base, trial, mean) = search_around(0.05, rates(1e-9, 2e-9).unwrap());
    assert_eq!(trial, 0);
    assert_eq!(mean, base);
    assert!(base > 0.9, "{base}");
    // A base that cannot learn (its initial weights' score, 0.75 here) and draws that can: a draw
    // wins.
    let (base, trial, mean) = search_around(1e-9, rates(0.03, 0.1).unwrap());
    assert_ne!(trial, 0);
    assert!(mean > base + 0.2, "{mean} vs {base}");
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
    // A budget too small for one drawn trial and the base, 9 epochs with 2 seeds each.
    assert!(matches!(Plan::for_budget(35, 9, &two_seeds()), Err(TuneError::BudgetTooSmall { needed: 36, .. })));
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
            "54",
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
    assert_eq!(summary["budget_epochs"], 54);
    assert_eq!(summary["trainings"], 9 + 3 + 1 + 1 + 2);
    assert_eq!(summary["interrupted"], false);
    let second = format!("{d}/b.toml");
    run(&tune_args(d, &["--budget-epochs", "54", "--seed", "3", "--out-recipe", &second]));
    let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    assert_eq!(String::from_utf8_lossy(&a).replace("a.toml", "b.toml"), String::from_utf8_lossy(&b));
    let recipe = String::from_utf8(a).unwrap();
    assert!(recipe.contains("# Chosen by `nsl tune --seed 3 --budget-epochs 54`"), "{recipe}");
    assert!(recipe.contains("early_stopping = \"patience=100\"") && recipe.contains("epochs = 9\n"), "{recipe}");
    // The drawn trial beat the base recipe, and says so; its values are written in (three
    // significant digits), the rest of the recipe kept.
    assert_ne!(summary["best"]["trial"], 0, "{json}");
    let base = summary["best"]["base_mean"].as_f64().unwrap();
    assert!(recipe.contains(&format!("# It beat the base recipe (trial 0, always a finalist): {base:.4}")), "{recipe}");
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
            "base",
            "rung",
            "epochs",
            "seed",
            "status",
            "score",
            "best_accuracy",
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
    assert_eq!(rows, 16);
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
    let mut args = tune_args(d, &["--budget-epochs", "54", "--out-recipe", &out]);
    let at = args.iter().position(|a| a == "--validation").unwrap();
    args.drain(at..at + 2);
    let err = run_fails(&args);
    assert!(err.contains("--validation: no validation samples"), "{err}");
    // A budget too small for one trial (and the base: 9 epochs × 2 seeds × 2).
    let err = run_fails(&tune_args(d, &["--budget-epochs", "35", "--out-recipe", &out]));
    assert!(err.contains("--budget-epochs: a budget of 35 epochs is too small for one trial"), "{err}");
    let err = run_fails(&tune_args(d, &["--budget", "0.001s", "--out-recipe", &out]));
    assert!(err.contains("--budget"), "{err}");
    // A space with an invalid range, and with an unknown key.
    std::fs::write(dir.join("space.toml"), "dropout = { uniform = [0.5, 0.1] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "54", "--out-recipe", &out]));
    assert!(
        err.contains("search space key `dropout`: uniform = [0.5, 0.1]: the lower bound is above the upper"),
        "{err}"
    );
    std::fs::write(dir.join("space.toml"), "drop_out = { uniform = [0.1, 0.5] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "54", "--out-recipe", &out]));
    assert!(
        err.contains(
            "--space: search space key `drop_out`: the recipe rejects drop_out = 0.1: unknown field `drop_out`"
        ),
        "{err}"
    );
    std::fs::write(dir.join("space.toml"), "[graph_reg]\nmultiplyer = { log_uniform = [0.1, 1] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "54", "--out-recipe", &out]));
    assert!(
        err.contains("search space key `graph_reg.multiplyer`") && err.contains("unknown key `multiplyer`"),
        "{err}"
    );
    std::fs::write(dir.join("space.toml"), "dropout = { normal = [0.1, 0.5] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "54", "--out-recipe", &out]));
    assert!(err.contains("key `dropout.normal`: expected one of { log_uniform"), "{err}");
    // An unwritable output.
    std::fs::write(dir.join("space.toml"), "dropout = { uniform = [0.1, 0.5] }\n").unwrap();
    let err = run_fails(&tune_args(d, &["--budget-epochs", "54", "--out-recipe", &format!("{d}/no/such/dir/t.toml")]));
    assert!(err.contains("--out-recipe"), "{err}");
    let err = run_fails(&tune_args(d, &["--budget-epochs", "54", "--out-recipe", &out, "--trials", d]));
    assert!(err.contains("--trials"), "{err}");
    // Nothing was written.
    assert_eq!(names(&dir), before);
}

/// A teacher file `DIR/teacher.parquet` for the 36 samples of [`files`]: sample `i`'s probability
/// of class `j` is `p(i, j)`. Returns its path.
fn write_teacher(dir: &str, p: impl Fn(usize, usize) -> f32) -> String {
    let ids: Vec<String> = (0..36).map(|i| format!("s{i}")).collect();
    let probabilities = ndarray::Array2::from_shape_fn((36, 2), |(i, j)| p(i, j));
    let teacher = format!("{dir}/teacher.parquet");
    write_samples(&Dataset::new(ids, probabilities, vec![2], None, None).unwrap(), Path::new(&teacher)).unwrap();
    teacher
}

#[test]
fn nsl_tune_distills_with_the_teacher_given_and_searches_its_multiplier() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = files(tmp.path());
    let d = dir.to_str().unwrap();
    // A teacher that knows every sample's class: probabilities 0.9 / 0.1 by the class `i % 2`.
    let teacher = write_teacher(d, |i, j| if i % 2 == j { 0.9 } else { 0.1 });
    // The recipe distills with multiplier 5 and a temperature of 2; --distill gives the teacher.
    let recipe = std::fs::read_to_string(dir.join("recipe.toml")).unwrap();
    std::fs::write(dir.join("recipe.toml"), format!("{recipe}distill = \"teacher=nowhere.csv,temperature=2\"\n"))
        .unwrap();
    let mut args = tune_args(d, &["--budget-epochs", "54", "--out-recipe", &format!("{d}/t.toml")]);
    // The built-in space: the few-labels keys and, with `distill`, its multiplier and temperature.
    let at = args.iter().position(|a| a == "--space").unwrap();
    args.drain(at..at + 2);
    args.extend(["--distill".to_string(), format!("teacher={teacher}"), "--trials".into(), format!("{d}/t.parquet")]);
    let json = run(&[args, vec!["--json".into()]].concat());
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(summary["failed"], 0, "{json}");
    let table = std::fs::File::open(format!("{d}/t.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(table).unwrap();
    let fields: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert!(fields.contains(&"distill.multiplier".to_string()) && fields.contains(&"distill.temperature".to_string()));
    // The chosen recipe holds the teacher given, so `nsl train --config` needs no --distill.
    let chosen = std::fs::read_to_string(format!("{d}/t.toml")).unwrap();
    assert!(chosen.contains(&format!("distill = \"teacher={teacher},temperature=")), "{chosen}");
}

/// `nsl train --distill` over a recipe's `distill`: each pair given replaces the recipe's, the others
/// are kept, so `--distill teacher=FILE` keeps the recipe's multiplier (it used to fall back to 1);
/// `--distill multiplier=M` alone takes the recipe's teacher, and without one it is an error.
#[test]
fn nsl_train_distill_pairs_replace_the_recipes_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = files(tmp.path());
    let d = dir.to_str().unwrap();
    // A teacher that contradicts the labels half the time: the multiplier shows in the weights.
    let teacher = write_teacher(d, |i, j| if (i / 2) % 2 == j { 0.95 } else { 0.05 });
    let recipe = std::fs::read_to_string(dir.join("recipe.toml")).unwrap();
    std::fs::write(dir.join("m30.toml"), format!("{recipe}distill = \"teacher=nowhere.csv,multiplier=30\"\n")).unwrap();
    std::fs::write(dir.join("t.toml"), format!("{recipe}distill = \"teacher={teacher}\"\n")).unwrap();
    let weights = |config: &str, distill: &str, out: &str| {
        let args: Vec<String> = [
            "train",
            "--config",
            &format!("{d}/{config}"),
            "--samples",
            &format!("{d}/tr.parquet"),
            "--unlabeled",
            &format!("{d}/un.parquet"),
            "--graph",
            &format!("{d}/g.parquet"),
            "--distill",
            distill,
            "--out",
            &format!("{d}/{out}"),
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run(&args);
        std::fs::read(format!("{d}/{out}/model.safetensors")).unwrap()
    };
    let merged = weights("m30.toml", &format!("teacher={teacher}"), "a");
    let given = weights("recipe.toml", &format!("teacher={teacher},multiplier=30"), "b");
    let one = weights("recipe.toml", &format!("teacher={teacher}"), "c");
    assert_eq!(merged, given, "the recipe's multiplier 30 is kept");
    assert_ne!(merged, one, "multiplier 30 trains other weights than 1");
    assert_eq!(weights("t.toml", "multiplier=30", "e"), given, "the recipe's teacher is kept");
    let err = run_fails(
        &["train", "--config", &format!("{d}/recipe.toml"), "--distill", "multiplier=30", "--out", &format!("{d}/f")]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    assert!(err.contains("`multiplier=30` for --distill") && err.contains("teacher=FILE"), "{err}");
}

/// `nsl predict` with several `--run`s: the mean of their probabilities (a teacher from several
/// seeds), the prediction its argmax; runs of another task or classes are refused, naming the run.
/// `nsl evaluate` scores that ensemble.
#[test]
fn nsl_predict_averages_the_probabilities_of_several_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = files(tmp.path());
    let d = dir.to_str().unwrap();
    let train = |seed: &str, out: &str, extra: &[&str]| {
        let mut args: Vec<String> = ["train", "--config", "recipe.toml", "--samples", "tr.parquet", "--unlabeled"]
            .iter()
            .chain(&["un.parquet", "--graph", "g.parquet", "--seed", seed, "--out", out, "-q"])
            .map(|a| if a.contains('.') || *a == out { format!("{d}/{a}") } else { a.to_string() })
            .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        run(&args);
    };
    train("0", "a", &[]);
    train("1", "b", &[]);
    let predict = |runs: &[&str]| -> Vec<(String, Vec<f64>)> {
        let mut args = vec!["predict".to_string(), "--samples".into(), format!("{d}/va.parquet")];
        for r in runs {
            args.extend(["--run".to_string(), format!("{d}/{r}")]);
        }
        let csv = run(&args);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("id,prediction,p_0,p_1"), "{csv}");
        lines
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                (cells[1].to_string(), cells[2..].iter().map(|v| v.parse().unwrap()).collect())
            })
            .collect()
    };
    let (a, b, both) = (predict(&["a"]), predict(&["b"]), predict(&["a", "b"]));
    assert_eq!(both.len(), 12);
    assert_ne!(a, b, "two seeds, two models");
    for ((pa, pb), (class, p)) in a.iter().zip(&b).zip(&both) {
        for k in 0..2 {
            assert!((p[k] - (pa.1[k] + pb.1[k]) / 2.0).abs() < 2e-6, "{p:?} vs {pa:?} and {pb:?}");
        }
        assert_eq!(class, if p[1] > p[0] { "1" } else { "0" });
    }
    train("0", "c", &["--task", "binary"]);
    let err = run_fails(
        &["predict", "--run", &format!("{d}/a"), "--run", &format!("{d}/c"), "--samples", &format!("{d}/va.parquet")]
            .map(String::from),
    );
    assert!(err.contains(&format!("--run {d}/c: a binary run")) && err.contains("the same task and classes"), "{err}");

    // `nsl evaluate` scores the same ensemble: the accuracy of the mean probabilities' argmax and
    // the mean of −ln p̄_y (labels: s{i} is class i mod 2).
    let evaluate = |runs: &[&str]| -> serde_json::Value {
        let mut args = vec!["evaluate".to_string(), "--samples".into(), format!("{d}/va.parquet"), "--json".into()];
        for r in runs {
            args.extend(["--run".to_string(), format!("{d}/{r}")]);
        }
        serde_json::from_str(&run(&args)).unwrap()
    };
    let scored = evaluate(&["a", "b"]);
    let labels = (12..24).map(|i| i % 2);
    let right = both.iter().zip(labels.clone()).filter(|((class, _), y)| class == &y.to_string()).count();
    let loss = both.iter().zip(labels).map(|((_, p), y)| -p[y].ln()).sum::<f64>() / 12.0;
    assert_eq!(scored["accuracy"].as_f64(), Some(right as f64 / 12.0), "{scored}");
    assert!((scored["loss"].as_f64().unwrap() - loss).abs() < 1e-4, "{scored} vs {loss}");
    assert_ne!(evaluate(&["a"])["loss"], scored["loss"]);
    let err = run_fails(
        &["evaluate", "--run", &format!("{d}/a"), "--run", &format!("{d}/c"), "--samples", &format!("{d}/va.parquet")]
            .map(String::from),
    );
    assert!(err.contains(&format!("--run {d}/c: a binary run")) && err.contains("the same task and classes"), "{err}");
}
