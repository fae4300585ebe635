//! [`Tuner`]: successive halving over trials of a recipe, scored on the validation samples.

use super::{Assignment, Plan, SearchSpace, TuneConfig, TuneError, Value};
use crate::loss::Task;
use crate::run::{FitHooks, RunSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The function that makes a trial's run from its settings: the base recipe with `assignment`
/// written in, parsed and checked by the code that parses recipes (`nsl train --config`'s, for
/// `nsl tune`). An empty assignment gives the base run. An error (a value the recipe rejects, an
/// unknown key) is a message; a trial whose settings are rejected is a failed trial.
pub type MakeSpec<'a> = dyn FnMut(&Assignment) -> Result<RunSpec, String> + 'a;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TrialStatus {
    /// Trained and scored.
    Done,
    /// Its settings were rejected, or training failed (the record holds the error).
    Failed,
    /// Stopped by the stop flag (Ctrl-C): not scored.
    Stopped,
}

impl TrialStatus {
    /// `done`, `failed` or `stopped`.
    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Done => "done",
            TrialStatus::Failed => "failed",
            TrialStatus::Stopped => "stopped",
        }
    }
}

/// One training of a trial: one rung, or one more seed of a finalist.
#[derive(Debug, Clone, Serialize)]
pub struct TrialRecord {
    /// The trial: 0 the base recipe (nothing drawn), then the draws from the space in order from 1.
    pub trial: usize,
    /// The rung (0 first); a finalist's extra seeds are on the last rung.
    pub rung: usize,
    /// The epochs it was given: the rung's, or fewer if its settings ask fewer.
    pub epochs: usize,
    /// Its training seed (the base recipe's `seed`, plus 1, 2, … for a finalist's extra seeds).
    pub seed: u64,
    /// The settings.
    pub settings: Assignment,
    /// How it ended.
    pub status: TrialStatus,
    /// Its score: the mean of the [`TuneConfig::score_epochs`] best validation accuracies of its
    /// epochs (the best one alone by default).
    pub score: Option<f64>,
    /// The best validation accuracy of its epochs (early stopping keeps that epoch's weights).
    pub best_accuracy: Option<f64>,
    /// The epoch of that accuracy (from 1).
    pub best_epoch: Option<usize>,
    /// The epochs trained (fewer than `epochs` when early stopping ended it).
    pub epochs_run: usize,
    /// Why it failed.
    pub error: Option<String>,
    /// Wall time, opening the run included.
    pub seconds: f64,
}

/// The settings the search chose (or the best found so far, when it was stopped).
#[derive(Debug, Clone, Serialize)]
pub struct Best {
    /// The trial: 0 when the base recipe was kept (no drawn trial beat its mean score).
    pub trial: usize,
    /// Its settings.
    pub settings: Assignment,
    /// The epochs it was scored with (the recipe's `epochs`).
    pub epochs: usize,
    /// The rung its scores come from.
    pub rung: usize,
    /// Its validation scores there, one per seed.
    pub scores: Vec<f64>,
    /// Their mean: the trial's score.
    pub mean: f64,
    /// Whether the plan ran to its end (every finalist with every seed).
    pub finished: bool,
    /// The base recipe's mean score on the same rung, over the same seeds (none when the search
    /// stopped before the base was scored).
    pub base_mean: Option<f64>,
}

impl Best {
    /// Whether the chosen settings are the base recipe's (trial 0).
    pub fn is_base(&self) -> bool {
        self.trial == 0
    }
}

/// What a search did.
#[derive(Debug, Clone, Serialize)]
pub struct TuneOutcome {
    /// The plan it followed.
    pub plan: Plan,
    /// Every training, in the order they ran.
    pub trials: Vec<TrialRecord>,
    /// The chosen settings; none if no trial was scored.
    pub best: Option<Best>,
    /// Whether the stop flag ended the search early.
    pub stopped: bool,
}

/// Where a search is, after each epoch of each training (for a progress bar).
#[derive(Debug, Clone, Copy)]
pub struct TuneProgress {
    /// The rung (the last one for a finalist's extra seeds).
    pub rung: usize,
    /// Whether this is a finalist's extra seed.
    pub finalist: bool,
    /// Epochs of the plan done so far (a training that stopped early counts its whole budget).
    pub epochs_done: usize,
    /// Epochs of the whole plan.
    pub epochs_total: usize,
}

type ProgressFn<'a> = Box<dyn FnMut(TuneProgress) + Send + 'a>;
type TrialFn<'a> = Box<dyn FnMut(&TrialRecord) + Send + 'a>;

/// What a front end hooks into a search. `TuneHooks::default()` hooks nothing.
#[derive(Default)]
pub struct TuneHooks<'a> {
    stop: Option<Arc<AtomicBool>>,
    progress: Option<ProgressFn<'a>>,
    trial: Option<TrialFn<'a>>,
}

impl<'a> TuneHooks<'a> {
    /// Stops the search during the training running when `flag` becomes true (Ctrl-C): the
    /// outcome then holds the trainings done and the best found so far.
    pub fn stop_when(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Calls `f` after every epoch of every training.
    pub fn on_progress(mut self, f: impl FnMut(TuneProgress) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Calls `f` with each training's record as it ends.
    pub fn on_trial(mut self, f: impl FnMut(&TrialRecord) + Send + 'a) -> Self {
        self.trial = Some(Box::new(f));
        self
    }
}

/// Seconds a training costs, measured on the base recipe: for turning a wall-clock budget into a
/// plan of epochs once ([`Calibration::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibration {
    /// Opening the run (reading, neighbor tables, model).
    pub open_seconds: f64,
    /// One epoch once warm (the median of the epochs after the first), its validation included.
    pub epoch_seconds: f64,
}

impl Calibration {
    /// The largest plan whose estimated time, `epochs · epoch_seconds + trainings ·
    /// open_seconds`, is within `seconds`. Its `budget_epochs` reproduces it with
    /// [`Plan::for_budget`] on any machine.
    ///
    /// # Errors
    /// [`TuneError::BudgetTooSmall`] when no plan fits.
    pub fn plan(&self, seconds: f64, max_epochs: usize, config: &TuneConfig) -> Result<Plan, TuneError> {
        let estimate = |p: &Plan| p.epochs() as f64 * self.epoch_seconds + p.trainings() as f64 * self.open_seconds;
        let most = (seconds / self.epoch_seconds.max(1e-9)).floor().min(1e12) as usize;
        let fits = |budget: usize| Plan::for_budget(budget, max_epochs, config).ok().filter(|p| estimate(p) <= seconds);
        let Some(mut best) = fits(most).or_else(|| {
            // Bisect for the largest budget whose plan fits the time.
            let (mut lo, mut hi) = (0usize, most);
            let mut found = None;
            while hi > lo + 1 {
                let mid = lo + (hi - lo) / 2;
                match fits(mid) {
                    Some(p) => {
                        lo = mid;
                        found = Some(p);
                    }
                    None => hi = mid,
                }
            }
            found
        }) else {
            let needed = max_epochs.saturating_mul(config.finalist_seeds).saturating_mul(2);
            return Err(TuneError::BudgetTooSmall {
                budget: most,
                epochs: max_epochs,
                seeds: config.finalist_seeds,
                needed,
            });
        };
        // The smallest budget that gives the same plan: what `--budget-epochs` is told.
        best.budget_epochs = best.epochs();
        Ok(best)
    }
}

/// A search over a recipe's settings: successive halving over the epochs, each training scored
/// on its validation accuracies, the base recipe always a finalist (see the [module docs](super)).
pub struct Tuner<'a> {
    space: SearchSpace,
    config: TuneConfig,
    make: Box<MakeSpec<'a>>,
    max_epochs: usize,
}

impl<'a> Tuner<'a> {
    /// A search of `space` around the base run `make(&[])`, checked before any training: the
    /// base run (it must have validation samples and a multiclass or binary task), and each key
    /// with the ends of its range (each value of a choice) written into the base recipe alone.
    ///
    /// # Errors
    /// [`TuneError::Config`], [`TuneError::Base`], [`TuneError::NoValidation`],
    /// [`TuneError::Task`]; [`TuneError::Space`] naming the key and the value the recipe rejects
    /// (an unknown key, a value out of the setting's range).
    pub fn new(
        space: SearchSpace,
        config: TuneConfig,
        make: impl FnMut(&Assignment) -> Result<RunSpec, String> + 'a,
    ) -> Result<Self, TuneError> {
        config.validate()?;
        let mut make: Box<MakeSpec<'a>> = Box::new(make);
        let base = make(&Vec::new()).map_err(TuneError::Base)?;
        if base.validation.is_none() {
            return Err(TuneError::NoValidation);
        }
        if !matches!(base.task, Task::Multiclass | Task::Binary) {
            return Err(TuneError::Task(base.task.to_string()));
        }
        let max_epochs = base.train.epochs;
        base.check().map_err(|e| TuneError::Base(e.to_string()))?;
        for (key, distribution) in space.iter() {
            for value in distribution.extremes() {
                let assignment = vec![(key.to_string(), value.clone())];
                let checked = make(&assignment).and_then(|spec| spec.check().map(drop).map_err(|e| e.to_string()));
                checked.map_err(|e| TuneError::space(key, format!("the recipe rejects {key} = {value}: {e}")))?;
            }
        }
        Ok(Tuner { space, config, make, max_epochs })
    }

    /// The full epochs `R` of a trial: the base recipe's `epochs`.
    pub fn max_epochs(&self) -> usize {
        self.max_epochs
    }

    /// The settings of the search.
    pub fn config(&self) -> &TuneConfig {
        &self.config
    }

    /// The space searched.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// Opens the base run (reads its inputs, builds its neighbor tables and model) and trains it
    /// for `epochs` epochs (at most the base recipe's), timing both: the inputs' errors show
    /// before the search, and a wall-clock budget becomes a plan ([`Calibration::plan`]).
    ///
    /// # Errors
    /// [`TuneError::Calibration`] with the run's error; [`TuneError::Stopped`] if `stop` was set.
    pub fn calibrate(&mut self, epochs: usize, stop: Option<Arc<AtomicBool>>) -> Result<Calibration, TuneError> {
        let mut spec = (self.make)(&Vec::new()).map_err(TuneError::Base)?;
        spec.train.epochs = epochs.clamp(1, self.max_epochs);
        spec.train.early_stopping = None;
        spec.test = None;
        let started = Instant::now();
        let open = spec.check().and_then(|c| c.open()).map_err(TuneError::Calibration)?;
        let open_seconds = started.elapsed().as_secs_f64();
        let mut hooks = FitHooks::default();
        if let Some(flag) = stop.clone() {
            hooks = hooks.stop_when(flag);
        }
        let started = Instant::now();
        let fitted = open.fit(hooks);
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(TuneError::Stopped);
        }
        let fitted = fitted.map_err(TuneError::Calibration)?;
        let epochs = fitted.history().epochs.len().max(1);
        // The first epoch is slow (allocations, caches): the median of the others is what the
        // plan's epochs cost (an epoch's time includes its validation).
        let epoch_seconds =
            fitted.history().steady_epoch_seconds().unwrap_or_else(|| started.elapsed().as_secs_f64() / epochs as f64);
        Ok(Calibration { open_seconds, epoch_seconds })
    }

    /// Runs `plan`: draws `plan.rungs[0].trials` settings from the space (trials 1, 2, …, seeded
    /// by [`TuneConfig::seed`], in order), trains them rung by rung, keeping the best of each rung
    /// for the next (ties go to the earlier trial); the last rung trains the base recipe (trial 0)
    /// first, then the promoted trials; then every finalist, the base included, trains with its
    /// extra seeds. The winner is the best mean score over the seeds, ties to the earlier trial:
    /// the base, unless a drawn trial beats it. Never fails: a training that fails is recorded
    /// with its error.
    pub fn run(&mut self, plan: &Plan, mut hooks: TuneHooks<'_>) -> TuneOutcome {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        let first = plan.rungs.first().map_or(0, |r| r.trials);
        let mut alive: Vec<(usize, Assignment)> = (1..=first).map(|i| (i, self.space.sample(&mut rng))).collect();
        let mut records: Vec<TrialRecord> = Vec::new();
        let total = plan.epochs();
        let mut done = 0;
        let last = plan.rungs.len().saturating_sub(1);
        let mut stopped = false;
        'rungs: for (k, rung) in plan.rungs.iter().enumerate() {
            if k > 0 {
                let mut scored: Vec<&TrialRecord> =
                    records.iter().filter(|r| r.rung == k - 1 && r.score.is_some()).collect();
                scored.sort_by(|a, b| {
                    b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then(a.trial.cmp(&b.trial))
                });
                alive = scored.iter().take(rung.trials).map(|r| (r.trial, r.settings.clone())).collect();
            }
            if k == last {
                // The base recipe is always a finalist, trained first.
                alive.insert(0, (0, Vec::new()));
            }
            for (trial, settings) in &alive {
                let job = Job { trial: *trial, rung: k, epochs: rung.epochs, offset: 0, finalist: false };
                stopped = self.train_and_record(&job, settings, (&mut done, total), &mut hooks, &mut records);
                if stopped {
                    break 'rungs;
                }
            }
        }
        if !stopped {
            let finalists: Vec<(usize, Assignment)> = records
                .iter()
                .filter(|r| r.rung == last && r.score.is_some())
                .map(|r| (r.trial, r.settings.clone()))
                .collect();
            'seeds: for offset in 1..plan.finalist_seeds as u64 {
                for (trial, settings) in &finalists {
                    let job = Job { trial: *trial, rung: last, epochs: plan.max_epochs, offset, finalist: true };
                    stopped = self.train_and_record(&job, settings, (&mut done, total), &mut hooks, &mut records);
                    if stopped {
                        break 'seeds;
                    }
                }
            }
        }
        let best = best(&records, plan, !stopped);
        TuneOutcome { plan: plan.clone(), trials: records, best, stopped }
    }

    /// Trains `settings` as `job` says, adds its epochs to `done`, gives the record to the trial
    /// hook and keeps it; true if the training was stopped (the search ends).
    fn train_and_record(
        &mut self,
        job: &Job,
        settings: &Assignment,
        (done, total): (&mut usize, usize),
        hooks: &mut TuneHooks<'_>,
        records: &mut Vec<TrialRecord>,
    ) -> bool {
        let record = self.train(job, settings, (*done, total), hooks);
        *done += job.epochs;
        let stopped = record.status == TrialStatus::Stopped;
        if let Some(f) = hooks.trial.as_mut() {
            f(&record);
        }
        records.push(record);
        stopped
    }

    /// One training of `settings` as `job` says; `done` of `total` epochs of the plan are behind.
    fn train(
        &mut self,
        job: &Job,
        settings: &Assignment,
        (done, total): (usize, usize),
        hooks: &mut TuneHooks<'_>,
    ) -> TrialRecord {
        let started = Instant::now();
        let &Job { trial, rung, epochs, offset, finalist } = job;
        let mut record = TrialRecord {
            trial,
            rung,
            epochs,
            seed: 0,
            settings: settings.clone(),
            status: TrialStatus::Failed,
            score: None,
            best_accuracy: None,
            best_epoch: None,
            epochs_run: 0,
            error: None,
            seconds: 0.0,
        };
        let mut spec = match (self.make)(settings) {
            Ok(spec) => spec,
            Err(e) => {
                record.error = Some(e);
                return record;
            }
        };
        spec.train.epochs = spec.train.epochs.min(epochs);
        spec.train.early_stopping.get_or_insert(self.config.patience);
        spec.train.seed = spec.train.seed.wrapping_add(offset);
        spec.init_seed = spec.init_seed.map(|s| s.wrapping_add(offset));
        // A trial never sees the test samples, nor writes anything.
        spec.test = None;
        spec.record_adversarial = None;
        record.epochs = spec.train.epochs;
        record.seed = spec.train.seed;
        let mut fit = FitHooks::default();
        if let Some(flag) = hooks.stop.clone() {
            fit = fit.stop_when(flag);
        }
        if let Some(progress) = hooks.progress.as_mut() {
            fit = fit.on_epoch(move |e| {
                progress(TuneProgress { rung, finalist, epochs_done: done + e.epoch, epochs_total: total })
            });
        }
        let fitted = spec.check().and_then(|c| c.open()).and_then(|o| o.fit(fit));
        record.seconds = started.elapsed().as_secs_f64();
        if hooks.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            record.status = TrialStatus::Stopped;
            record.error = Some("stopped".into());
            return record;
        }
        let fitted = match fitted {
            Ok(fitted) => fitted,
            Err(e) => {
                record.error = Some(e.to_string());
                return record;
            }
        };
        let history = fitted.history();
        record.epochs_run = history.epochs.len();
        let accuracies: Vec<(usize, f64)> = history
            .epochs
            .iter()
            .filter_map(|e| e.validation_accuracy.filter(|a| a.is_finite()).map(|a| (e.epoch, a)))
            .collect();
        match score(&accuracies, self.config.score_epochs) {
            Some((epoch, best, score)) => {
                record.status = TrialStatus::Done;
                record.score = Some(score);
                record.best_accuracy = Some(best);
                record.best_epoch = Some(epoch);
            }
            None => record.error = Some("no finite validation accuracy".into()),
        }
        record
    }
}

/// The best epoch of `accuracies` (`(epoch, validation accuracy)`; the earlier of ties), its
/// accuracy, and the mean of the `k` best accuracies (all of them when fewer); none if empty.
fn score(accuracies: &[(usize, f64)], k: usize) -> Option<(usize, f64, f64)> {
    let (epoch, best) = accuracies.iter().copied().fold(None, |best: Option<(usize, f64)>, (epoch, a)| match best {
        Some((_, b)) if b >= a => best,
        _ => Some((epoch, a)),
    })?;
    let mut sorted: Vec<f64> = accuracies.iter().map(|&(_, a)| a).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let top = &sorted[..k.clamp(1, sorted.len())];
    Some((epoch, best, top.iter().sum::<f64>() / top.len() as f64))
}

/// One training to run: a trial at a rung, for at most `epochs` epochs, with the base seed plus
/// `offset` (a finalist's extra seeds).
struct Job {
    trial: usize,
    rung: usize,
    epochs: usize,
    offset: u64,
    finalist: bool,
}

/// The best trial: on the highest rung with a score, the best mean over its seeds there (ties to
/// the earlier trial, so the base recipe, trial 0, wins its ties).
fn best(records: &[TrialRecord], plan: &Plan, finished: bool) -> Option<Best> {
    let rung = records.iter().filter(|r| r.score.is_some()).map(|r| r.rung).max()?;
    let mut trials: Vec<usize> =
        records.iter().filter(|r| r.rung == rung && r.score.is_some()).map(|r| r.trial).collect();
    trials.sort_unstable();
    trials.dedup();
    let mut best: Option<Best> = None;
    let mut base_mean = None;
    for trial in trials {
        let rows: Vec<&TrialRecord> = records.iter().filter(|r| r.rung == rung && r.trial == trial).collect();
        // A finalist with a failed seed is out: its settings do not train reliably.
        if rows.iter().any(|r| r.status == TrialStatus::Failed) {
            continue;
        }
        let scores: Vec<f64> = rows.iter().filter_map(|r| r.score).collect();
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        if trial == 0 {
            base_mean = Some(mean);
        }
        if best.as_ref().is_none_or(|b| mean > b.mean) {
            best = Some(Best {
                trial,
                settings: rows[0].settings.clone(),
                epochs: rows[0].epochs,
                rung,
                scores,
                mean,
                finished: finished && rung + 1 == plan.rungs.len(),
                base_mean: None,
            });
        }
    }
    best.map(|b| Best { base_mean, ..b })
}

/// `settings` as `key = value` pairs, for messages.
pub fn describe(settings: &[(String, Value)]) -> String {
    settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn a_score_is_the_mean_of_the_best_epochs() {
        let accuracies = [(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.7)];
        // The best epoch is the earlier of the two 0.7s.
        assert_eq!(score(&accuracies, 1), Some((2, 0.7, 0.7)));
        let (epoch, best, three) = score(&accuracies, 3).unwrap();
        assert_eq!((epoch, best), (2, 0.7));
        assert!((three - (0.7 + 0.7 + 0.6) / 3.0).abs() < 1e-12);
        // More epochs asked than trained: all of them.
        assert!((score(&accuracies, 10).unwrap().2 - 0.625).abs() < 1e-12);
        assert_eq!(score(&[], 1), None);
    }
}
