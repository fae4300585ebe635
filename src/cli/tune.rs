//! `nsl tune`: search a recipe's settings on the validation samples and write the best as a recipe.

use super::progress::WorkBar;
use super::train::{recipe_spec, DistillPairs, RecipeInputs};
use super::{set_pair, set_threads, ColumnArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use nsl::tune::{
    describe, Assignment, Distribution, Plan, SearchSpace, TrialStatus, TuneConfig, TuneError, TuneHooks, TuneOutcome,
    Tuner, Value,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The built-in base recipe: the few-labels recipe (Graph-MLP's training).
const FEW_LABELS: &str = include_str!("../../examples/recipes/few_labels.toml");

/// Flags of `nsl tune`.
#[derive(Args, Debug)]
#[command(after_help = "Example (Cora's Planetoid split, the few-labels recipe and its built-in space):\n  \
    nsl tune --samples tr.parquet --unlabeled un.parquet --graph cora_graph.parquet --validation va.parquet \\\n    \
    --budget 10m --out-recipe tuned.toml --trials trials.parquet --plot trials.svg\n  \
    nsl train --config tuned.toml --samples tr.parquet --unlabeled un.parquet --graph cora_graph.parquet \\\n    \
    --validation va.parquet --test te.parquet --out runs/tuned")]
pub struct TuneArgs {
    /// The base recipe (a `nsl train --config` TOML file): every trial is this recipe with the
    /// drawn settings written in, and its `epochs` are a trial's full epochs. Default: the
    /// few-labels recipe (examples/recipes/few_labels.toml).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    config: Option<PathBuf>,
    /// The search space: a TOML file of recipe keys (`learning_rate`, `dropout`, `epochs`, …) and
    /// sub-keys of `key=value,…` settings (`graph_reg.multiplier`, `graph_reg.hops`, or a
    /// `[graph_reg]` table), each `{ log_uniform = [a, b] }`, `{ uniform = [a, b] }`, `{ int = [a,
    /// b] }` or `{ choice = [v, …] }`. Default: the few-labels space (learning_rate, weight_decay,
    /// dropout, unlabeled_ratio, graph_reg.multiplier, graph_reg.hops, graph_reg.temperature;
    /// docs/formats.md), plus distill.multiplier and distill.temperature when the recipe (or
    /// --distill) distills from a teacher.
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    space: Option<PathBuf>,
    /// Labeled training samples (over the recipe's `samples`).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    samples: Option<PathBuf>,
    /// Unlabeled samples trained as centers (over the recipe's `unlabeled`).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    unlabeled: Option<PathBuf>,
    /// The neighbor graph (over the recipe's `graph`).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    graph: Option<PathBuf>,
    /// Labeled samples every trial is scored on (its best validation accuracy; early stopping
    /// on them inside each trial). Required (here or in the recipe).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    validation: Option<PathBuf>,
    /// Samples that may serve as neighbors (over the recipe's `pool`).
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    pool: Option<PathBuf>,
    /// Distillation from a teacher (`nsl train --distill`'s `teacher=FILE,multiplier=M,…`): each
    /// pair given wins over the recipe's `distill` (the pairs not given are kept), and the chosen
    /// recipe holds the result, so `nsl train --config` needs no --distill.
    #[arg(long, value_name = "teacher=FILE,…", help_heading = "Inputs")]
    distill: Option<String>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Wall-clock budget (`90s`, `10m`, `1h`): the base recipe is timed once and the budget becomes
    /// a plan of epochs, printed with the `--budget-epochs` that reproduces it on any machine.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, conflicts_with = "budget_epochs", help_heading = "Search")]
    budget: Option<f64>,
    /// Budget in epochs (summed over every trial): the same seed and budget give the same recipe.
    #[arg(long, value_name = "N", help_heading = "Search")]
    budget_epochs: Option<usize>,
    /// Seed of the drawn settings.
    #[arg(long, default_value_t = 0, help_heading = "Search")]
    seed: u64,
    /// Seeds each finalist, the base recipe included, trains with (the winner has the best mean
    /// validation score; the base recipe wins its ties).
    #[arg(long, default_value_t = 3, value_name = "N", help_heading = "Search")]
    finalist_seeds: usize,
    /// A training's score: the mean of its N best epochs' validation accuracies (1: the best).
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = "Search")]
    score_epochs: usize,
    /// Halving rate η: each rung keeps the best 1/η of its trials and trains them η times longer.
    #[arg(long, default_value_t = 3, help_heading = "Search")]
    eta: usize,
    /// The most halvings (rungs − 1).
    #[arg(long, default_value_t = 3, value_name = "K", help_heading = "Search")]
    max_halvings: usize,
    /// Early stopping's patience inside each trial when the recipe sets none.
    #[arg(long, default_value_t = 100, value_name = "N", help_heading = "Search")]
    patience: usize,
    /// The most trials of the first rung. Default: as many as the budget holds.
    #[arg(long, value_name = "N", help_heading = "Search")]
    max_trials: Option<usize>,
    /// The chosen recipe (TOML that `nsl train --config` accepts), written atomically.
    #[arg(long, value_name = "FILE", default_value = "tuned.toml", help_heading = "Output")]
    out_recipe: PathBuf,
    /// A Parquet table of every training: trial, rung, epochs, seed, status, score, best_epoch,
    /// epochs_run, seconds, error, and one column per key of the space.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    trials: Option<PathBuf>,
    /// An SVG of each trial's validation score against its epochs.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    plot: Option<PathBuf>,
    /// Print the summary as JSON on standard output.
    #[arg(long, help_heading = "Output")]
    json: bool,
}

/// `--budget`'s value: seconds, from `90s`, `10m`, `1h` or a plain number of seconds.
fn parse_duration(s: &str) -> std::result::Result<f64, String> {
    let bad = || format!("invalid value `{s}` for --budget: expected a time such as 90s, 10m or 1h");
    let t = s.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    Ok(value * unit)
}

/// Runs `nsl tune`.
pub fn run(args: &TuneArgs) -> Result<()> {
    let (mut base, base_name) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading --config {}", path.display()))?;
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("--config {}: invalid recipe", path.display()))?;
            (table, path.display().to_string())
        }
        None => {
            (toml::from_str(FEW_LABELS)?, "the built-in few-labels recipe (examples/recipes/few_labels.toml)".into())
        }
    };
    if let Some(pairs) = &args.distill {
        let under = match base.get("distill") {
            None => None,
            Some(toml::Value::String(s)) => Some(DistillPairs::from_str(s).context("--config: `distill`")?),
            Some(other) => bail!("--config: `distill` is {other}, not a `key=value,…` text"),
        };
        let merged = DistillPairs::from_str(pairs)?.over(under);
        base.insert("distill".into(), toml::Value::String(merged.to_string()));
    }
    let space = match &args.space {
        Some(path) => read_space(path)?,
        None if base.contains_key("distill") => SearchSpace::few_labels_distill(),
        None => SearchSpace::few_labels(),
    };
    if args.budget.is_none() && args.budget_epochs.is_none() {
        bail!("give a budget: --budget TIME (e.g. 10m) or --budget-epochs N");
    }
    for (flag, path) in
        [("--out-recipe", Some(&args.out_recipe)), ("--trials", args.trials.as_ref()), ("--plot", args.plot.as_ref())]
    {
        if let Some(path) = path {
            nsl::io::check_writable(path).with_context(|| format!("{flag} {}", path.display()))?;
        }
    }
    // Trials train one at a time on single-threaded models unless the recipe says otherwise.
    let threads = match base.get("threads") {
        Some(toml::Value::Integer(n)) => usize::try_from(*n).map_err(|_| anyhow!("threads = {n} in the recipe"))?,
        _ => 1,
    };
    set_threads(threads)?;
    let config = TuneConfig {
        seed: args.seed,
        eta: args.eta,
        max_halvings: args.max_halvings,
        min_epochs: 1,
        finalist_seeds: args.finalist_seeds,
        score_epochs: args.score_epochs,
        patience: args.patience,
        max_trials: args.max_trials,
    };
    let config = tune_flags(config)?;
    let inputs = RecipeInputs {
        samples: args.samples.clone(),
        unlabeled: args.unlabeled.clone(),
        graph: args.graph.clone(),
        validation: args.validation.clone(),
        pool: args.pool.clone(),
    };
    let make = |settings: &Assignment| recipe_spec(&apply(&base, settings)?, &inputs, &args.columns);
    let mut tuner = Tuner::new(space.clone(), config.clone(), make).map_err(tune_error)?;
    let stop = Arc::new(AtomicBool::new(false));
    super::stop_on_interrupt(Some(stop.clone()));
    let planned = plan(&mut tuner, args, &config, stop.clone());
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) => {
            super::stop_on_interrupt(None);
            return Err(e);
        }
    };
    errln!(
        "plan: {} (η {}, {} finalist seeds): {} epochs in {} trainings; reproduce with --seed {} --budget-epochs {}",
        plan.rungs.iter().map(|r| format!("{} × {} epochs", r.trials, r.epochs)).collect::<Vec<_>>().join(", then "),
        plan.eta,
        plan.finalist_seeds,
        plan.epochs(),
        plan.trainings(),
        args.seed,
        plan.budget_epochs
    );
    let bar = WorkBar::new();
    let rungs = plan.rungs.len();
    // One stage for the whole search (the bar's ETA is the plan's); a line when a rung starts.
    let mut shown: Option<(usize, bool)> = None;
    let hooks = TuneHooks::default()
        .stop_when(stop.clone())
        .on_progress(|p| {
            if shown != Some((p.rung, p.finalist)) && !super::progress::quiet() {
                shown = Some((p.rung, p.finalist));
                match (p.finalist, plan.rungs.get(p.rung)) {
                    (true, _) => {
                        errln!("finalists: {} more seeds each, {} epochs", plan.finalist_seeds - 1, plan.max_epochs)
                    }
                    (false, Some(r)) => {
                        errln!(
                            "rung {}/{rungs}: {} trial{} of {} epochs",
                            p.rung + 1,
                            r.trials,
                            if r.trials == 1 { "" } else { "s" },
                            r.epochs
                        )
                    }
                    (false, None) => {}
                }
            }
            bar.update("tuning", p.epochs_done as u64, p.epochs_total as u64);
        })
        .on_trial(|r| {
            if r.status == TrialStatus::Failed {
                errln!(
                    "trial {} (rung {}) failed: {} ({})",
                    r.trial,
                    r.rung + 1,
                    r.error.as_deref().unwrap_or("?"),
                    describe(&r.settings)
                );
            }
        });
    let outcome = tuner.run(&plan, hooks);
    super::stop_on_interrupt(None);
    bar.finish();
    report(&outcome, args, &base, &base_name, &space, &config)
}

/// The search's settings from the flags, checked (naming the flag).
fn tune_flags(config: TuneConfig) -> Result<TuneConfig> {
    match config.validate() {
        Ok(()) => Ok(config),
        Err(TuneError::Config { field, value, expected }) => {
            bail!("--{} {value}: expected {expected}", field.replace('_', "-"))
        }
        Err(e) => Err(e.into()),
    }
}

/// The plan: from `--budget-epochs`, or from `--budget` after timing the base recipe. Either way
/// the base run is opened once, so that its inputs' errors show before the search.
fn plan(tuner: &mut Tuner<'_>, args: &TuneArgs, config: &TuneConfig, stop: Arc<AtomicBool>) -> Result<Plan> {
    let budget_error = |e: TuneError| match e {
        TuneError::BudgetTooSmall { .. } if args.budget.is_some() => anyhow!("--budget: {e}"),
        TuneError::BudgetTooSmall { .. } => anyhow!("--budget-epochs: {e}"),
        e => tune_error(e),
    };
    let epochs = tuner.max_epochs();
    if let Some(budget) = args.budget_epochs {
        // Before reading anything: a budget that cannot work says so at once.
        let plan = Plan::for_budget(budget, epochs, config).map_err(budget_error)?;
        super::progress::with_spinner("opening the base recipe", || tuner.calibrate(1, Some(stop)))
            .map_err(interrupted_or)?;
        return Ok(plan);
    }
    let seconds = args.budget.unwrap_or(0.0);
    // The least budget a plan needs; a clearly smaller wall-clock budget fails before any timing.
    let calibration = super::progress::with_spinner("timing the base recipe", || tuner.calibrate(5, Some(stop)))
        .map_err(interrupted_or)?;
    let plan = calibration.plan(seconds, epochs, config).map_err(budget_error)?;
    errln!(
        "timed the base recipe: opening {:.2} s, an epoch {:.3} s: a budget of {seconds:.0} s is {} epochs",
        calibration.open_seconds,
        calibration.epoch_seconds,
        plan.budget_epochs
    );
    Ok(plan)
}

/// A failed calibration: Ctrl-C is an interruption (exit 130), anything else the run's error.
fn interrupted_or(e: TuneError) -> anyhow::Error {
    match e {
        TuneError::Stopped => {
            super::Interrupted("interrupted before the search started: nothing written".into()).into()
        }
        e => tune_error(e),
    }
}

/// A library error with the flag a user would change.
fn tune_error(e: TuneError) -> anyhow::Error {
    match e {
        TuneError::Space { .. } | TuneError::EmptySpace => anyhow!("--space: {e}"),
        TuneError::NoValidation => anyhow!("--validation: {e}"),
        TuneError::Base(_) => anyhow!("--config: {e}"),
        e => e.into(),
    }
}

/// Reads a search space: keys with a distribution, or a table of sub-keys (`[graph_reg]`).
fn read_space(path: &Path) -> Result<SearchSpace> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading --space {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("--space {}: invalid TOML", path.display()))?;
    let mut entries = Vec::new();
    flatten_space(path, "", &table, &mut entries)?;
    SearchSpace::new(entries).map_err(|e| anyhow!("--space {}: {e}", path.display()))
}

/// The names a distribution is written with.
const DISTRIBUTIONS: [&str; 4] = ["log_uniform", "uniform", "int", "choice"];

fn flatten_space(path: &Path, prefix: &str, table: &toml::Table, out: &mut Vec<(String, Distribution)>) -> Result<()> {
    for (name, value) in table {
        let key = match prefix {
            "" => name.clone(),
            _ => format!("{prefix}.{name}"),
        };
        match value {
            toml::Value::Table(t) if t.len() == 1 && t.keys().all(|k| DISTRIBUTIONS.contains(&k.as_str())) => {
                let distribution: Distribution = value.clone().try_into().map_err(|e: toml::de::Error| {
                    anyhow!("--space {}: key `{key}`: {}", path.display(), e.message().trim())
                })?;
                out.push((key, distribution));
            }
            toml::Value::Table(t) if prefix.is_empty() && !t.keys().any(|k| DISTRIBUTIONS.contains(&k.as_str())) => {
                flatten_space(path, &key, t, out)?
            }
            _ => bail!(
                "--space {}: key `{key}`: expected one of {{ log_uniform = [a, b] }}, {{ uniform = [a, b] }}, \
                 {{ int = [a, b] }}, {{ choice = [v, …] }}",
                path.display()
            ),
        }
    }
    Ok(())
}

/// `base` with `settings` written in: a recipe key takes its value; `SETTING.SUBKEY` sets (or
/// adds) `SUBKEY=value` in the `key=value,…` text of `SETTING` (`_` and `-` alike in sub-keys).
fn apply(base: &toml::Table, settings: &Assignment) -> std::result::Result<toml::Table, String> {
    let mut recipe = base.clone();
    for (key, value) in settings {
        match key.split_once('.') {
            None => {
                recipe.insert(key.clone(), to_toml(value));
            }
            Some((setting, sub)) => {
                let list = match recipe.get(setting) {
                    None => "",
                    Some(toml::Value::String(s)) => s.as_str(),
                    Some(other) => {
                        return Err(format!(
                            "`{setting}` is {other} in the recipe, not a `key=value,…` text: `{key}` cannot be set"
                        ))
                    }
                };
                let list = set_pair(list, sub, &value.to_string());
                recipe.insert(setting.to_string(), toml::Value::String(list));
            }
        }
    }
    Ok(recipe)
}

fn to_toml(value: &Value) -> toml::Value {
    match value {
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Int(i) => toml::Value::Integer(*i),
        Value::Float(x) => toml::Value::Float(*x),
        Value::Text(s) => toml::Value::String(s.clone()),
    }
}

/// Writes the recipe, the table and the plot, and reports the outcome (an interruption after
/// writing what was found).
fn report(
    outcome: &TuneOutcome,
    args: &TuneArgs,
    base: &toml::Table,
    base_name: &str,
    space: &SearchSpace,
    config: &TuneConfig,
) -> Result<()> {
    let mut written = Vec::new();
    if let Some(path) = &args.trials {
        nsl::tune::write_trials(outcome, space, path)?;
        written.push(format!("trials → {}", path.display()));
    }
    if let Some(path) = &args.plot {
        nsl::tune::write_plot(
            outcome,
            &format!("nsl tune, seed {}, {} epochs", args.seed, outcome.plan.budget_epochs),
            path,
        )?;
        written.push(format!("plot → {}", path.display()));
    }
    let Some(best) = &outcome.best else {
        let what = if outcome.stopped { "interrupted before any trial was scored" } else { "no trial was scored" };
        let message = format!("{what}: no recipe written{}", join_written(&written));
        if outcome.stopped {
            return Err(super::Interrupted(message).into());
        }
        bail!("{message} (every trial failed: see the errors above or --trials)");
    };
    let text = recipe_text(outcome, args, base, base_name, config)?;
    nsl::io::write_bytes(&args.out_recipe, text.as_bytes())
        .with_context(|| format!("writing --out-recipe {}", args.out_recipe.display()))?;
    written.insert(0, format!("recipe → {}", args.out_recipe.display()));
    let failed = outcome.trials.iter().filter(|r| r.status == TrialStatus::Failed).count();
    if args.json {
        let summary = serde_json::json!({
            "seed": args.seed,
            "budget_epochs": outcome.plan.budget_epochs,
            "plan": outcome.plan,
            "trainings": outcome.trials.len(),
            "failed": failed,
            "seconds": outcome.trials.iter().map(|r| r.seconds).sum::<f64>(),
            "best": best,
            "settings": best.settings.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "interrupted": outcome.stopped,
            "recipe": args.out_recipe,
            "trials": args.trials,
            "plot": args.plot,
        });
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "best: trial {} ({}), validation score {:.4} (mean of {} seed{}: {}) at {} epochs",
            best.trial,
            match best.is_base() {
                true => "the base recipe: no drawn trial beat it".to_string(),
                false => format!(
                    "{}; the base recipe: {}",
                    describe(&best.settings),
                    best.base_mean.map_or("not scored".into(), |m| format!("{m:.4}"))
                ),
            },
            best.mean,
            best.scores.len(),
            if best.scores.len() == 1 { "" } else { "s" },
            best.scores.iter().map(|s| format!("{s:.4}")).collect::<Vec<_>>().join(", "),
            best.epochs
        );
        outln!("{} trainings ({failed} failed){}", outcome.trials.len(), join_written(&written));
    }
    if outcome.stopped {
        return Err(super::Interrupted(format!(
            "interrupted: the best found so far (rung {} of {}) is written{}",
            best.rung + 1,
            outcome.plan.rungs.len(),
            join_written(&written)
        ))
        .into());
    }
    Ok(())
}

fn join_written(written: &[String]) -> String {
    match written.is_empty() {
        true => String::new(),
        false => format!(": {}", written.join(", ")),
    }
}

/// The chosen recipe: the base with the best settings, its epochs and early stopping written in,
/// under comments that say how it was chosen. Nothing in it depends on the clock, so the same
/// seed and budget give the same bytes.
fn recipe_text(
    outcome: &TuneOutcome,
    args: &TuneArgs,
    base: &toml::Table,
    base_name: &str,
    config: &TuneConfig,
) -> Result<String> {
    let Some(best) = &outcome.best else { bail!("no trial was scored") };
    let mut recipe = apply(base, &best.settings).map_err(|e| anyhow!(e))?;
    recipe.insert("epochs".into(), toml::Value::Integer(best.epochs as i64));
    let patience = match base.get("early_stopping") {
        Some(_) => None,
        None => {
            recipe.insert("early_stopping".into(), toml::Value::String(format!("patience={}", config.patience)));
            Some(config.patience)
        }
    };
    let data = [
        ("--samples", &args.samples),
        ("--unlabeled", &args.unlabeled),
        ("--graph", &args.graph),
        ("--validation", &args.validation),
        ("--pool", &args.pool),
    ]
    .iter()
    .filter_map(|(flag, p)| p.as_ref().map(|p| format!("{flag} {}", p.display())))
    .collect::<Vec<_>>()
    .join(" ");
    let first = outcome.plan.rungs.first().map_or(0, |r| r.trials);
    let mut head = vec![
        format!("nsl train --config {} {data} --out runs/tuned", args.out_recipe.display()),
        String::new(),
        format!(
            "Chosen by `nsl tune --seed {} --budget-epochs {}` (η {}, {} rungs, {} trials drawn, {} finalist seeds)",
            args.seed,
            outcome.plan.budget_epochs,
            outcome.plan.eta,
            outcome.plan.rungs.len(),
            first,
            outcome.plan.finalist_seeds
        ),
        format!("from {base_name}."),
        match config.score_epochs {
            1 => "A training's score: its best validation accuracy.".to_string(),
            k => format!("A training's score: the mean of its {k} best epochs' validation accuracies."),
        },
        format!(
            "Trial {}: validation score {:.4} (the mean of {} seed{}: {}) at {} epochs.",
            best.trial,
            best.mean,
            best.scores.len(),
            if best.scores.len() == 1 { "" } else { "s" },
            best.scores.iter().map(|s| format!("{s:.4}")).collect::<Vec<_>>().join(", "),
            best.epochs
        ),
    ];
    match (best.is_base(), best.base_mean) {
        (true, _) => head.push(
            "Trial 0 is the base recipe, kept: no drawn trial beat its mean score over the same seeds.".to_string(),
        ),
        (false, Some(base)) => {
            head.push(format!("It beat the base recipe (trial 0, always a finalist): {base:.4} over the same seeds."))
        }
        (false, None) => head.push("The base recipe (trial 0) was not scored.".to_string()),
    }
    if !best.is_base() {
        head.push(format!("Searched: {}.", describe(&best.settings)));
    }
    if let Some(p) = patience {
        head.push(format!(
            "Scored with early stopping on the validation samples (patience {p}): train with --validation."
        ));
    }
    if outcome.stopped || !best.finished {
        head.push(format!(
            "The search was interrupted: the best found by then (rung {} of {}), not the plan's winner.",
            best.rung + 1,
            outcome.plan.rungs.len()
        ));
    }
    let mut text: String =
        head.iter().map(|l| if l.is_empty() { "#\n".to_string() } else { format!("# {l}\n") }).collect();
    text.push_str(&toml::to_string(&recipe).context("writing the recipe as TOML")?);
    Ok(text)
}
