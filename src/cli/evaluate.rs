//! `nsl evaluate` and `nsl predict`: use a saved run on samples.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use nsl::data::Dataset;
use nsl::eval::{evaluate_task, predict_task, Metrics};
use nsl::eval::{robustness_sweep_task, sweep_attacks, Attack, AttackConfig, AttackMethod, AttackSweep};
use nsl::eval::{EvalAttack, EvalAttackConfig, MaskingWarning, RobustnessReport};
use nsl::loss::Task;
use nsl::regularize::NormType;
use nsl::train::{load_checkpoint, Checkpoint};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `nsl evaluate`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nsl evaluate --run runs/cora --samples test.parquet --json\n  \
    nsl evaluate --run runs/adv --samples mnist_test.parquet --attack fgsm --norm inf --epsilon 0.05,0.1,0.2,0.3 --clip 0:1\n  \
    nsl evaluate --run runs/adv --samples mnist_test.parquet --attack fgsm --epsilon 0.2 --attack-from runs/base --clip 0:1\n  \
    nsl evaluate --run runs/adv --samples mnist_test.parquet --attack autoattack --epsilon 0.3 --clip 0:1 --per-sample aa.parquet\n\n\
Attacks:\n  \
    fgsm, pgd      NSL's attacks along the task loss's gradient (any task; transfer with --attack-from)\n  \
    apgd-ce        APGD on the cross-entropy (Croce & Hein 2020), --iterations steps, --restarts\n  \
    apgd-dlr       APGD on the DLR loss (3+ classes)\n  \
    apgd-t         APGD on the targeted DLR loss, one run per --target-classes most likely classes (4+ classes)\n  \
    fab-t          FAB-T (Croce & Hein 2020): steps to the linearized boundary with each of --target-classes classes,\n                 \
--iterations steps; a point counts only within ε\n  \
    square         Square Attack (Andriushchenko et al. 2020): random search, no gradients, --queries\n  \
    autoattack     AutoAttack's standard sequence: apgd-ce, apgd-t, fab-t, square, each on the points still\n                 \
robust; a point is robust only if every attack fails (L∞ and L2)\n\
The apgd/fab-t/square/autoattack results come with a gradient-masking check (warnings on standard error and in --json).")]
pub struct EvaluateArgs {
    /// Run directory written by `nsl train`. Repeat it to score an ensemble: the mean of the runs'
    /// probabilities (or values), as `nsl predict --run A --run B …` writes; every run must have the
    /// same task and classes and read the same features of the samples. Attacks then attack the
    /// ensemble itself.
    #[arg(help_heading = "Inputs", long, value_name = "DIR", required = true)]
    run: Vec<PathBuf>,
    /// Labeled samples to evaluate on (any supported format).
    #[arg(help_heading = "Inputs", long, value_name = "FILE")]
    samples: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Column of per-sample weights in the samples (finite, ≥ 0, as `train --weight-column`): the
    /// loss becomes `Σ wᵢ ℓᵢ / n` (the training loss's reduction) and every metric counts each sample
    /// `wᵢ` times (weighted accuracy, F1 counts, ROC-AUC pairs, MSE/MAE), under `--attack` too
    /// (the attack's gradient itself is unweighted). Default: unweighted.
    #[arg(help_heading = "Inputs", long, value_name = "NAME")]
    weight_column: Option<String>,
    /// Also measure the task's metrics under this attack, crafted along the gradient of the run's
    /// task loss. It perturbs the model's encoded input: the features for `mlp`/`cnn`, the pooled
    /// embeddings (and dense groups) for `bow`, never token ids. Default: clean metrics only.
    #[arg(help_heading = "Attack", long, value_name = "ATTACK")]
    attack: Option<AttackName>,
    /// Norm of the attack's perturbation. Default L∞, the norm robustness benchmarks (AutoAttack,
    /// RobustBench) report; note that `train --adv-reg` defaults to L2, NSL's default for training
    /// (give `--norm l2` to attack in the norm a run was trained with). The JSON says which (`norm`).
    #[arg(help_heading = "Attack", long, value_enum, default_value_t = Norm::Inf, value_name = "NORM")]
    norm: Norm,
    /// Attack strengths ε, comma-separated.
    #[arg(
        help_heading = "Attack",
        long,
        value_delimiter = ',',
        default_value = "0.05,0.1,0.2,0.3",
        value_name = "EPS,…"
    )]
    epsilon: Vec<f64>,
    /// PGD: number of steps (at least 1).
    #[arg(help_heading = "Attack", long, default_value_t = 40, value_name = "N")]
    pgd_steps: usize,
    /// PGD: size of each step (finite, > 0).
    #[arg(help_heading = "Attack", long, default_value_t = 0.01, value_name = "SIZE", allow_negative_numbers = true)]
    pgd_step_size: f64,
    /// APGD and FAB-T (apgd-ce, apgd-dlr, apgd-t, fab-t, autoattack): iterations per run.
    #[arg(help_heading = "Attack", long, default_value_t = 100, value_name = "N")]
    iterations: usize,
    /// APGD-CE/DLR: random restarts; APGD-T, FAB-T: restarts per target class; Square: restarts. Each
    /// restart attacks only the points still robust. AutoAttack's standard version uses 1.
    #[arg(help_heading = "Attack", long, default_value_t = 1, value_name = "N")]
    restarts: usize,
    /// Square: queries (forward passes) per restart and sample.
    #[arg(help_heading = "Attack", long, default_value_t = 5000, value_name = "N")]
    queries: usize,
    /// APGD-T, FAB-T: number of target classes, the most likely after the prediction (fewer if the model
    /// has fewer classes).
    #[arg(help_heading = "Attack", long, default_value_t = 9, value_name = "N")]
    target_classes: usize,
    /// Samples attacked together by apgd/square/autoattack (one pass through the model per step).
    #[arg(help_heading = "Attack", long, default_value_t = 500, value_name = "N")]
    attack_batch_size: usize,
    /// With apgd/square/autoattack: write a Parquet table of every sample at every ε (columns
    /// `epsilon`, `id`, `label`, `clean_prediction`, `robust`, `broken_by` (the attack that broke it;
    /// null if robust or misclassified clean), `adversarial_prediction`, `perturbation_norm` (in
    /// the --norm)), written atomically when every attack is done.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    per_sample: Option<PathBuf>,
    /// PGD: start from a random point of the ε-ball.
    #[arg(help_heading = "Attack", long)]
    random_init: bool,
    /// Valid input range MIN:MAX that perturbed features (for `bow`: the perturbed encoding) are
    /// clipped to (e.g. 0:1 for pixels). Default: no clipping.
    #[arg(help_heading = "Attack", long, value_name = "MIN:MAX", value_parser = parse_clip)]
    clip: Option<(f32, f32)>,
    /// Craft the perturbations on this other run's model (a transfer attack, as in NSL's tutorial)
    /// instead of on the evaluated model itself (white-box); both runs must read the same features
    /// (not `bow`, which is attacked in its own embedding space) and have the same task. Default:
    /// white-box.
    #[arg(help_heading = "Attack", long, value_name = "DIR")]
    attack_from: Option<PathBuf>,
    /// Write the robustness curve (accuracy against ε; subset accuracy for multilabel; not for
    /// regression) as an SVG. Default: no plot.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// CPU threads for the model's kernels (every attack is batch-parallel over them). Default:
    /// `RAYON_NUM_THREADS`, else one per core.
    #[arg(help_heading = "Attack", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Seed of PGD's random start and of the apgd/square random choices.
    #[arg(help_heading = "Attack", long, default_value_t = 0)]
    seed: u64,
    /// Print the result as JSON: `task`, `accuracy` (absent for regression), `loss`, `weighted` (true
    /// with `--weight-column`, else absent), `samples`, the
    /// task's metrics (`accuracy`, `macro_f1` for multiclass; `accuracy`, `roc_auc`, `macro_f1` for
    /// binary; `macro_f1`, `micro_f1`, `subset_accuracy` for multilabel; `mse`, `mae`, `rmse` for
    /// regression), and with `--attack` also `epsilon`, `robust_accuracy` (absent for regression)
    /// and `robust_metrics` (the task's metrics; one value per ε, in the order given). With
    /// apgd/square/autoattack, `robust_metrics` is replaced by `results`: per ε, `clean_accuracy`,
    /// `stages` (each attack's `attack`, cumulative `robust_accuracy`, `broken`, `attacked`,
    /// `seconds`), `robust_accuracy`, `fgsm_accuracy`; and `masking_check` (`warnings`, each with a
    /// `kind` and a `message`).
    #[arg(help_heading = "Output", long)]
    json: bool,
}

/// The result of `nsl evaluate`.
#[derive(Serialize)]
struct EvaluateOutput {
    task: Task,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    loss: f64,
    /// The loss and metrics are weighted (`--weight-column`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    weighted: bool,
    samples: usize,
    #[serde(flatten)]
    metrics: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    attack: Option<AttackConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attack_from: Option<PathBuf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    epsilon: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    robust_accuracy: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    robust_metrics: Vec<Metrics>,
    /// The evaluation attacks' settings (apgd/square/autoattack).
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation_attack: Option<EvaluationAttackSettings>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    results: Vec<RobustnessReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    masking_check: Option<MaskingOutput>,
}

/// The settings of an apgd/square/autoattack evaluation, as `--json` reports them.
#[derive(Serialize)]
struct EvaluationAttackSettings {
    method: &'static str,
    attacks: Vec<EvalAttack>,
    #[serde(flatten)]
    config: EvalAttackConfig,
}

/// The masking check, as `--json` reports it.
#[derive(Serialize)]
struct MaskingOutput {
    /// No warning.
    passed: bool,
    warnings: Vec<WarningOutput>,
}

#[derive(Serialize)]
struct WarningOutput {
    #[serde(flatten)]
    warning: MaskingWarning,
    message: String,
}

/// `--attack`'s choices.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum AttackName {
    // One step of size ε (Goodfellow et al. 2015).
    Fgsm,
    // `--pgd-steps` steps of `--pgd-step-size`, projected onto the ε-ball (Madry et al. 2018).
    Pgd,
    // APGD on the cross-entropy.
    ApgdCe,
    // APGD on the DLR loss.
    ApgdDlr,
    // APGD on the targeted DLR loss.
    ApgdT,
    // Square Attack.
    Square,
    // FAB-T, the targeted Fast Adaptive Boundary attack.
    FabT,
    // AutoAttack's standard sequence.
    Autoattack,
}

impl AttackName {
    /// The library's name for it ([`AttackMethod`]: its name and the evaluation attacks it runs).
    fn method(self) -> AttackMethod {
        match self {
            AttackName::Fgsm => AttackMethod::Fgsm,
            AttackName::Pgd => AttackMethod::Pgd,
            AttackName::ApgdCe => AttackMethod::ApgdCe,
            AttackName::ApgdDlr => AttackMethod::ApgdDlr,
            AttackName::ApgdT => AttackMethod::ApgdT,
            AttackName::Square => AttackMethod::Square,
            AttackName::FabT => AttackMethod::FabT,
            AttackName::Autoattack => AttackMethod::AutoAttack,
        }
    }

    fn as_str(self) -> &'static str {
        self.method().name()
    }

    /// The evaluation attacks it runs at `norm` (none for FGSM and PGD).
    fn sequence(self, norm: NormType) -> Vec<EvalAttack> {
        self.method().sequence(norm)
    }
}

/// `--norm`'s choices (the library's [`NormType`]).
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Norm {
    // Largest absolute value (L∞).
    #[value(alias = "infinity", alias = "linf")]
    Inf,
    // Euclidean norm.
    L2,
    // Sum of absolute values.
    L1,
}

impl From<Norm> for NormType {
    fn from(norm: Norm) -> Self {
        match norm {
            Norm::Inf => NormType::Infinity,
            Norm::L2 => NormType::L2,
            Norm::L1 => NormType::L1,
        }
    }
}

/// Parses `MIN:MAX` with `MIN ≤ MAX`.
fn parse_clip(text: &str) -> std::result::Result<(f32, f32), String> {
    let parsed = text.split_once(':').and_then(|(lo, hi)| Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?)));
    match parsed {
        Some((lo, hi)) if lo <= hi => Ok((lo, hi)),
        _ => Err(format!("`{text}` is not MIN:MAX with MIN ≤ MAX")),
    }
}

/// Flags of `nsl predict`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  nsl predict --run runs/cora --samples test.parquet --output predictions.csv\n  \
    nsl predict --run runs/t0 --run runs/t1 --run runs/t2 --samples all.parquet --output teacher.csv")]
pub struct PredictArgs {
    /// Run directory written by `nsl train`. Repeat it for an ensemble: the mean of the runs'
    /// probabilities (or values), each run reading the samples with its own columns; every run must
    /// have the same task and classes (a distillation teacher from several seeds, `nsl train
    /// --distill`).
    #[arg(long, value_name = "DIR", required = true)]
    run: Vec<PathBuf>,
    /// Samples to predict, read with the columns the run was trained on (its `columns.json`; the
    /// column flags below override them). The label column, if the table has one, is neither a
    /// feature nor used: predictions never depend on it. A CSV/Parquet table without the id column
    /// gets row numbers as ids.
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Output CSV: `id,prediction,p_<class>…` (written atomically). Default: standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl EvaluateArgs {
    /// The evaluated run, or the ensemble's runs joined by ` + `.
    fn runs(&self) -> String {
        self.run.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(" + ")
    }
}

/// Runs `nsl evaluate`.
pub fn run_evaluate(args: &EvaluateArgs) -> Result<()> {
    if let Some(plot) = &args.plot {
        for run in &args.run {
            check_output("--plot", plot, &args.samples, run)?;
        }
    }
    if let Some(threads) = args.threads {
        super::set_threads(threads as usize)?;
    }
    let (first, others) = args.run.split_first().context("--run: no run given")?;
    let (mut checkpoint, samples) = load(first, &args.samples, &args.columns, true)?;
    if !others.is_empty() {
        let mut members = Vec::with_capacity(args.run.len());
        for run in others {
            let (other, rows) = load(run, &args.samples, &args.columns, true)?;
            check_member(&args.samples, (first, &checkpoint, &samples), (run, &other, &rows))?;
            if rows.features() != samples.features() {
                bail!(
                    "--run {}: its columns read other features of {} than --run {}'s; an ensemble in `nsl evaluate` \
                     reads one input (`nsl predict` lets each run read its own)",
                    run.display(),
                    args.samples.display(),
                    first.display()
                );
            }
            members.push(other.model);
        }
        members.insert(0, checkpoint.model);
        checkpoint.model = Box::new(nsl::eval::Ensemble::new(members, checkpoint.meta.task)?);
    }
    let samples = match &args.weight_column {
        Some(column) => {
            let recorded = nsl::run::RunColumns::load(first).map_err(super::run_error)?;
            nsl::data::attach_weights(samples, &args.samples, &args.columns.over(&recorded).id, column)?
        }
        None => samples,
    };
    let task = checkpoint.meta.task;
    if args.attack.is_some() && args.plot.is_some() && matches!(task, Task::Regression(_)) {
        bail!(
            "--plot draws robust accuracy; {} is a regression run (its robust errors are in the output)",
            args.runs()
        );
    }
    let result = evaluate_task(checkpoint.model.as_ref(), &samples, task, 1024)?;
    let mut metrics = result.metrics.clone();
    // `accuracy` is the evaluation's own (top level), as before tasks.
    metrics.accuracy = None;
    let mut output = EvaluateOutput {
        task,
        accuracy: Some(result.accuracy).filter(|a| !a.is_nan()),
        loss: result.loss,
        weighted: result.weighted,
        samples: result.samples,
        metrics,
        attack: None,
        attack_from: args.attack_from.clone(),
        epsilon: Vec::new(),
        robust_accuracy: Vec::new(),
        robust_metrics: Vec::new(),
        evaluation_attack: None,
        results: Vec::new(),
        masking_check: None,
    };
    if let Some(attack_name) = args.attack.filter(|a| !a.sequence(args.norm.into()).is_empty()) {
        run_evaluation_attacks(args, attack_name, &checkpoint, &samples, &mut output)?;
        return print_output(args, &output, task);
    }
    if let Some(attack_name) = args.attack {
        classic_attack_sweep(args, attack_name, &checkpoint, &samples, result.accuracy, &mut output)?;
    }
    print_output(args, &output, task)
}

/// `--attack fgsm|pgd`: its settings, checked.
fn classic_attack(args: &EvaluateArgs, attack_name: AttackName) -> Result<AttackConfig> {
    let attack = match attack_name {
        AttackName::Pgd => {
            // Issue 22: 0 steps or a step ≤ 0 leaves the inputs clean (or moves them away from the
            // loss), and the "robust" accuracy is then at or above the clean one.
            if args.pgd_steps == 0 {
                bail!("--pgd-steps 0: PGD needs at least 1 step");
            }
            if !(args.pgd_step_size.is_finite() && args.pgd_step_size > 0.0) {
                bail!("--pgd-step-size {} must be a finite number > 0", args.pgd_step_size);
            }
            Attack::Pgd { steps: args.pgd_steps, step_size: args.pgd_step_size, random_init: args.random_init }
        }
        _ => Attack::Fgsm,
    };
    if let Some(bad) = args.epsilon.iter().find(|e| !(e.is_finite() && **e >= 0.0)) {
        bail!("--epsilon {bad} must be a finite number ≥ 0");
    }
    Ok(AttackConfig { attack, norm: args.norm.into(), epsilon: args.epsilon[0], clip: args.clip, seed: args.seed })
}

/// `--attack-from`: the run whose model crafts the perturbations, checked against the evaluated
/// run (the samples, the classes and the task must fit both).
fn attack_source(args: &EvaluateArgs, checkpoint: &Checkpoint, samples: &Dataset) -> Result<Option<Checkpoint>> {
    let Some(source) = args.attack_from.as_deref().map(load_checkpoint).transpose()? else { return Ok(None) };
    // The attack's gradients come from the source model: it must take these samples and
    // predict the same classes, or the attack fails deep inside a layer.
    source.check_input(samples).with_context(|| {
        format!("--attack-from {}: the attack's source run cannot take the samples", source.dir().display())
    })?;
    if source.meta.classes != checkpoint.meta.classes {
        bail!(
            "--attack-from {}: the attack's source run predicts {} classes, the evaluated run {} predicts {}",
            source.dir().display(),
            source.meta.classes,
            args.runs(),
            checkpoint.meta.classes
        );
    }
    if source.meta.task != checkpoint.meta.task {
        bail!(
            "--attack-from {}: the attack's source run was trained for {}, the evaluated run {} for {}",
            source.dir().display(),
            source.meta.task,
            args.runs(),
            checkpoint.meta.task
        );
    }
    Ok(Some(source))
}

/// `--attack fgsm|pgd`: the task's metrics at every ε (one at a time, for the progress: fraction,
/// ε, ETA) into `output`, and the `--plot` (from the `clean` accuracy).
fn classic_attack_sweep(
    args: &EvaluateArgs,
    attack_name: AttackName,
    checkpoint: &Checkpoint,
    samples: &Dataset,
    clean: f64,
    output: &mut EvaluateOutput,
) -> Result<()> {
    let (task, config) = (checkpoint.meta.task, classic_attack(args, attack_name)?);
    let source = attack_source(args, checkpoint, samples)?;
    let source_model = source.as_ref().map_or(checkpoint.model.as_ref(), |s| s.model.as_ref());
    let bar = super::progress::WorkBar::new();
    let (n, stage) = (args.epsilon.len() as u64, format!("{} (ε {})", attack_name.as_str(), list(&args.epsilon)));
    let mut sweep = Vec::with_capacity(args.epsilon.len());
    for (i, &epsilon) in args.epsilon.iter().enumerate() {
        bar.update(&stage, i as u64, n);
        let model = checkpoint.model.as_ref();
        sweep.extend(robustness_sweep_task(model, source_model, samples, task, &config, &[epsilon], 256)?);
        bar.update(&stage, i as u64 + 1, n);
    }
    bar.finish();
    // Robust accuracy as the evaluation's own accuracy is defined: subset accuracy for multilabel.
    let robust = |m: &Metrics| match task {
        Task::Multilabel => m.subset_accuracy,
        _ => m.accuracy,
    };
    let curve: Vec<(f64, f64)> = sweep.iter().filter_map(|(e, m)| robust(m).map(|a| (*e, a))).collect();
    output.attack = Some(config);
    output.epsilon = sweep.iter().map(|p| p.0).collect();
    output.robust_accuracy = curve.iter().map(|p| p.1).collect();
    output.robust_metrics = sweep.into_iter().map(|p| p.1).collect();
    if let Some(plot) = &args.plot {
        let mut points = vec![(0.0, clean)];
        points.extend(curve.iter().copied().filter(|p| p.0 > 0.0));
        let name = args.runs();
        let how = if args.attack_from.is_some() { "transfer" } else { "white-box" };
        nsl::report::robustness_curves_svg(&[(name, points)], &format!("{} ({how})", attack_name.as_str()), plot)
            .with_context(|| format!("writing --plot {}", plot.display()))?;
    }
    Ok(())
}

/// `values` comma-separated, as given.
fn list(values: &[f64]) -> String {
    values.iter().map(f64::to_string).collect::<Vec<_>>().join(",")
}

/// Prints `nsl evaluate`'s result (JSON or text).
fn print_output(args: &EvaluateArgs, output: &EvaluateOutput, task: Task) -> Result<()> {
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        let weighted = args.weight_column.as_deref().map(|c| format!(", weighted by `{c}`")).unwrap_or_default();
        match output.accuracy {
            Some(accuracy) => {
                outln!("accuracy {accuracy:.4} ({} samples{weighted}), loss {:.4}", output.samples, output.loss)
            }
            None => outln!("{} samples{weighted}, loss {:.4}", output.samples, output.loss),
        }
        if task != Task::Multiclass {
            outln!("{task} metrics: {}", serde_json::to_string(&output.metrics)?);
        }
        let how = match &args.attack_from {
            Some(from) => format!("crafted on {}", from.display()),
            None => "white-box".into(),
        };
        let name = args.attack.map_or("", AttackName::as_str);
        for report in &output.results {
            let stages: Vec<String> =
                report.stages.iter().map(|s| format!("{} {:.4}", s.attack, s.robust_accuracy)).collect();
            outln!(
                "  ε={:<6} clean {:.4} → {} (cumulative); robust accuracy {:.4} (FGSM alone {:.4})",
                report.epsilon,
                report.clean_accuracy,
                stages.join(" → "),
                report.robust_accuracy,
                report.fgsm_accuracy
            );
        }
        if let Some(check) = &output.masking_check {
            match check.passed {
                true => outln!("masking check: passed (no sign of gradient masking)"),
                false => {
                    for w in &check.warnings {
                        outln!("masking check: warning: {}", w.message);
                    }
                }
            }
        }
        let epsilons = if output.results.is_empty() { output.epsilon.as_slice() } else { &[] };
        for (i, eps) in epsilons.iter().enumerate() {
            match (output.robust_accuracy.get(i), task) {
                (Some(acc), Task::Multiclass) => outln!("  {name} ε={eps:<6} robust accuracy {acc:.4} ({how})"),
                _ => outln!(
                    "  {name} ε={eps:<6} robust {task} metrics {} ({how})",
                    serde_json::to_string(&output.robust_metrics[i])?
                ),
            }
        }
    }
    Ok(())
}

/// Runs apgd/square/autoattack at every ε: the masking check, `--plot` and `--per-sample`.
fn run_evaluation_attacks(
    args: &EvaluateArgs,
    attack_name: AttackName,
    checkpoint: &Checkpoint,
    samples: &Dataset,
    output: &mut EvaluateOutput,
) -> Result<()> {
    let name = attack_name.as_str();
    let (attacks, config) = evaluation_attack_settings(args, attack_name, checkpoint)?;
    if args.weight_column.is_some() {
        errln!("note: robust accuracies under --attack {name} are unweighted (each sample counts once)");
    }
    if args.clip.is_none() && !checkpoint.model.has_encoder() {
        errln!("note: no --clip: the attacks may leave the valid input range (use --clip 0:1 for pixels)");
    }
    let bar = super::progress::WorkBar::new();
    let sweep = sweep_attacks(
        checkpoint.model.as_ref(),
        samples,
        checkpoint.meta.task,
        &attacks,
        &config,
        &args.epsilon,
        Some(&|p: &nsl::eval::AttackProgress| {
            bar.update(&format!("{} ε={}", p.attack, p.epsilon), p.done, p.total);
            std::ops::ControlFlow::Continue(())
        }),
    )
    .with_context(|| format!("--attack {name}"))?;
    bar.finish();
    write_evaluation_attacks(args, name, samples, sweep, output)
}

/// The attacks of `--attack` (apgd/square/autoattack) and their settings, every ε checked before
/// any attack runs, and the outputs checked against the inputs.
fn evaluation_attack_settings(
    args: &EvaluateArgs,
    attack_name: AttackName,
    checkpoint: &Checkpoint,
) -> Result<(Vec<EvalAttack>, EvalAttackConfig)> {
    let (task, name) = (checkpoint.meta.task, attack_name.as_str());
    if args.attack_from.is_some() {
        bail!("--attack {name} is white-box (it attacks the evaluated model itself); --attack-from works with fgsm and pgd");
    }
    if !matches!(task, Task::Multiclass) {
        bail!(
            "--attack {name}: {} is a {task} run; apgd, fab-t, square and autoattack attack multiclass classifiers (fgsm and \
             pgd work for every task)",
            args.runs()
        );
    }
    let attacks = attack_name.sequence(args.norm.into());
    let config = EvalAttackConfig {
        norm: args.norm.into(),
        epsilon: args.epsilon.first().copied().unwrap_or(0.0),
        clip: args.clip,
        iterations: args.iterations,
        restarts: args.restarts,
        target_classes: args.target_classes,
        queries: args.queries,
        seed: args.seed,
        batch_size: args.attack_batch_size,
        ..EvalAttackConfig::default()
    };
    for &epsilon in &args.epsilon {
        EvalAttackConfig { epsilon, ..config.clone() }
            .validate(&attacks, checkpoint.meta.classes)
            .with_context(|| format!("--attack {name}"))?;
    }
    if let Some(path) = &args.per_sample {
        let run_files: Vec<_> =
            args.run.iter().flat_map(|run| [run.join("model.safetensors"), run.join("model.json")]).collect();
        let mut inputs: Vec<(&str, &std::path::Path)> = vec![("--samples", args.samples.as_path())];
        inputs.extend(run_files.iter().map(|p| ("--run", p.as_path())));
        nsl::io::check_paths(&[("--per-sample", path.as_path())], &inputs)?;
        if let Some(plot) = &args.plot {
            nsl::io::check_paths(&[("--plot", plot.as_path()), ("--per-sample", path.as_path())], &inputs)?;
        }
    }
    Ok((attacks, config))
}

/// The masking check, `--plot`, `--per-sample` and the JSON of the evaluation attacks' `reports`.
fn write_evaluation_attacks(
    args: &EvaluateArgs,
    name: &'static str,
    samples: &Dataset,
    sweep: AttackSweep,
    output: &mut EvaluateOutput,
) -> Result<()> {
    let AttackSweep { attacks, config, reports, warnings } = sweep;
    for w in &warnings {
        errln!("warning: masking check: {w}");
    }
    if let Some(plot) = &args.plot {
        let mut points = vec![(0.0, output.accuracy.unwrap_or(0.0))];
        points.extend(reports.iter().filter(|r| r.epsilon > 0.0).map(|r| (r.epsilon, r.robust_accuracy)));
        nsl::report::robustness_curves_svg(&[(args.runs(), points)], &format!("{name} (white-box)"), plot)
            .with_context(|| format!("writing --plot {}", plot.display()))?;
    }
    if let Some(path) = &args.per_sample {
        write_per_sample(path, samples, &reports)
            .with_context(|| format!("writing --per-sample {}", path.display()))?;
        errln!("wrote {} rows to {}", samples.len() * reports.len(), path.display());
    }
    output.epsilon = reports.iter().map(|r| r.epsilon).collect();
    output.robust_accuracy = reports.iter().map(|r| r.robust_accuracy).collect();
    output.evaluation_attack = Some(EvaluationAttackSettings { method: name, attacks, config });
    output.masking_check = Some(MaskingOutput {
        passed: warnings.is_empty(),
        warnings: warnings.into_iter().map(|w| WarningOutput { message: w.to_string(), warning: w }).collect(),
    });
    output.results = reports;
    Ok(())
}

/// The `--per-sample` table: one row per sample and ε, written atomically.
fn write_per_sample(path: &std::path::Path, samples: &Dataset, reports: &[RobustnessReport]) -> Result<()> {
    use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("epsilon", DataType::Float64, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("label", DataType::UInt32, false),
        Field::new("clean_prediction", DataType::UInt32, false),
        Field::new("robust", DataType::Boolean, false),
        Field::new("broken_by", DataType::Utf8, true),
        Field::new("adversarial_prediction", DataType::UInt32, true),
        Field::new("perturbation_norm", DataType::Float64, true),
    ]));
    let labels = samples.labels().unwrap_or_default();
    let batches = reports.iter().map(|report| {
        let o = &report.outcomes;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![report.epsilon; o.len()])),
            Arc::new(StringArray::from_iter_values(samples.ids())),
            Arc::new(UInt32Array::from(labels.to_vec())),
            Arc::new(UInt32Array::from(o.iter().map(|s| s.clean_prediction).collect::<Vec<u32>>())),
            Arc::new(BooleanArray::from(
                o.iter()
                    .zip(labels)
                    .map(|(s, &l)| s.clean_prediction == l && s.broken_by.is_none())
                    .collect::<Vec<bool>>(),
            )),
            Arc::new(StringArray::from(o.iter().map(|s| s.broken_by.map(|a| a.name())).collect::<Vec<Option<&str>>>())),
            Arc::new(UInt32Array::from(o.iter().map(|s| s.adversarial_prediction).collect::<Vec<Option<u32>>>())),
            Arc::new(Float64Array::from(o.iter().map(|s| s.perturbation_norm).collect::<Vec<Option<f64>>>())),
        ];
        RecordBatch::try_new(schema.clone(), columns)
    });
    nsl::io::write_parquet(path, schema.clone(), parquet::file::properties::WriterProperties::builder(), batches)?;
    Ok(())
}

/// Runs `nsl predict`.
pub fn run_predict(args: &PredictArgs) -> Result<()> {
    if let Some(output) = &args.output {
        for run in &args.run {
            check_output("--output", output, &args.samples, run)?;
        }
    }
    let (first, others) = args.run.split_first().context("--run: no run given")?;
    let (checkpoint, samples) = load(first, &args.samples, &args.columns, false)?;
    let task = checkpoint.meta.task;
    let mut probabilities = predict_task(checkpoint.model.as_ref(), &samples, task, 1024)?;
    for run in others {
        let (other, rows) = load(run, &args.samples, &args.columns, false)?;
        check_member(&args.samples, (first, &checkpoint, &samples), (run, &other, &rows))?;
        for (sum, p) in probabilities.iter_mut().zip(predict_task(other.model.as_ref(), &rows, task, 1024)?) {
            sum.iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
    }
    if !others.is_empty() {
        let n = args.run.len() as f32;
        probabilities.iter_mut().flatten().for_each(|v| *v /= n);
    }
    let names: Vec<String> = match &checkpoint.meta.class_names {
        Some(names) => names.clone(),
        None if task == Task::Binary => vec!["0".into(), "1".into()],
        None => (0..checkpoint.meta.classes).map(|c| c.to_string()).collect(),
    };
    // csv quotes the ids and class names that need it (a comma, a quote, a line break).
    let mut writer = csv::Writer::from_writer(Vec::new());
    let columns: Vec<String> = match task {
        // One probability, of the second class (label 1).
        Task::Binary => vec![format!("p_{}", names[1])],
        Task::Regression(_) if checkpoint.meta.classes == 1 => vec!["value".into()],
        Task::Regression(_) => (0..checkpoint.meta.classes).map(|k| format!("value_{k}")).collect(),
        _ => names.iter().map(|n| format!("p_{n}")).collect(),
    };
    let header: Vec<String> = match task {
        Task::Regression(_) => ["id".to_string()].into_iter().chain(columns).collect(),
        _ => ["id".to_string(), "prediction".to_string()].into_iter().chain(columns).collect(),
    };
    writer.write_record(header)?;
    for (id, p) in samples.ids().iter().zip(&probabilities) {
        let values = p.iter().map(|v| format!("{v:.6}"));
        let row: Vec<String> = match task {
            Task::Regression(_) => std::iter::once(id.clone()).chain(values).collect(),
            // The labels with p > 0.5, separated by `;`.
            Task::Multilabel => {
                let on: Vec<&str> = p.iter().zip(&names).filter(|(v, _)| **v > 0.5).map(|(_, n)| n.as_str()).collect();
                [id.clone(), on.join(";")].into_iter().chain(values).collect()
            }
            Task::Binary => {
                let class = &names[usize::from(p.first().is_some_and(|&v| v > 0.5))];
                [id.clone(), class.clone()].into_iter().chain(values).collect()
            }
            _ => {
                let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
                [id.clone(), names[best].clone()].into_iter().chain(values).collect()
            }
        };
        writer.write_record(row)?;
    }
    let csv = String::from_utf8(writer.into_inner().map_err(|e| e.into_error())?)?;
    match &args.output {
        Some(path) => {
            nsl::io::write_bytes(path, csv.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            errln!("wrote {} predictions to {}", probabilities.len(), path.display());
        }
        None => std::io::stdout().lock().write_all(csv.as_bytes())?,
    }
    Ok(())
}

/// Checks that the run `path` (its checkpoint and the rows it read) can join an ensemble with the
/// first run: the same task and classes, and the same rows of `samples`.
fn check_member(
    samples: &std::path::Path,
    (first, checkpoint, rows): (&std::path::Path, &Checkpoint, &Dataset),
    (path, other, other_rows): (&std::path::Path, &Checkpoint, &Dataset),
) -> Result<()> {
    let outputs = |m: &nsl::train::CheckpointMeta| {
        let names = m.class_names.as_ref().map(|n| format!(" ({})", n.join(", "))).unwrap_or_default();
        format!("a {} run with {} outputs{names}", m.task, m.classes)
    };
    let (meta, first_meta) = (&other.meta, &checkpoint.meta);
    if meta.task != first_meta.task || meta.classes != first_meta.classes || meta.class_names != first_meta.class_names
    {
        bail!(
            "--run {}: {}, but --run {} is {}: an ensemble needs the same task and classes",
            path.display(),
            outputs(meta),
            first.display(),
            outputs(first_meta)
        );
    }
    if other_rows.ids() != rows.ids() {
        bail!(
            "--run {}: its columns read other rows of {} than --run {}'s",
            path.display(),
            samples.display(),
            first.display()
        );
    }
    Ok(())
}

/// Loads the run's checkpoint and the samples (with the targets of the run's task when `targets`),
/// fitted to the model ([`nsl::run::read_for_run`]).
fn load(
    run: &std::path::Path,
    path: &std::path::Path,
    columns: &ColumnArgs,
    targets: bool,
) -> Result<(Checkpoint, Dataset)> {
    let mut checkpoint = load_checkpoint(run)?;
    // The columns the run was trained on, overridden by the flags given.
    let columns = columns.over(&nsl::run::RunColumns::load(run).map_err(super::run_error)?);
    let mut notes = Vec::new();
    let samples = with_spinner("reading samples", || {
        nsl::run::read_for_run(&mut checkpoint, path, &columns, targets, &mut notes)
    });
    for note in notes {
        errln!("warning: {note}");
    }
    Ok((checkpoint, samples.map_err(super::run_error)?))
}

/// Refuses an output (`flag`) that names the samples or the run's model files (a usage error,
/// through the one check of every command, `nsl::io::check_paths`).
fn check_output(flag: &str, output: &std::path::Path, samples: &std::path::Path, run: &std::path::Path) -> Result<()> {
    let (model, weights) = (run.join("model.json"), run.join("model.safetensors"));
    nsl::io::check_paths(&[(flag, output)], &[("--samples", samples), ("--run", &model), ("--run", &weights)])?;
    Ok(())
}
