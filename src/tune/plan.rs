//! [`Plan`]: how a budget of epochs is spent on rungs of successive halving.

use super::{TuneConfig, TuneError};
use serde::Serialize;

/// One rung: how many trials train, and for how many epochs each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rung {
    /// Trials trained at this rung.
    pub trials: usize,
    /// The epochs each trains (at most; early stopping may end it sooner).
    pub epochs: usize,
}

/// A deterministic schedule of successive halving: the rungs, then the finalists' extra seeds.
///
/// For `K` halvings with rate `η` and full epochs `R`, rung `k = 0…K` trains `n_k = ⌊n₀/η^k⌋`
/// drawn trials for `r_k = ⌊R/η^(K−k)⌋` epochs; the `n_K` trials of the last rung are the
/// finalists, each trained with `finalist_seeds − 1` more seeds for `R` epochs. The base recipe
/// (trial 0) is always a finalist besides them: it trains on the last rung only, with the same
/// `finalist_seeds` seeds. The cost is `Σ_k n_k·r_k + n_K·(finalist_seeds − 1)·R +
/// finalist_seeds·R` epochs. [`Plan::for_budget`] takes the most halvings (at most
/// `max_halvings`, with `r_0 ≥ min_epochs`) for which `n₀ = η^K` fits the budget, then the largest
/// `n₀` that fits.
///
/// ```
/// use nsl::tune::{Plan, TuneConfig};
/// // R = 400 epochs, η = 3, 3 finalist seeds: rungs of 14, 44, 133 and 400 epochs.
/// let plan = Plan::for_budget(4200, 400, &TuneConfig::default())?;
/// let rungs: Vec<(usize, usize)> = plan.rungs.iter().map(|r| (r.trials, r.epochs)).collect();
/// assert_eq!(rungs, [(44, 14), (14, 44), (4, 133), (1, 400)]);
/// // 44·14 + 14·44 + 4·133 + 1·400 + 1·2·400 + 3·400 (the base) = 4164 epochs; n₀ = 45: 4355.
/// assert_eq!(plan.epochs(), 4164);
/// # Ok::<(), nsl::tune::TuneError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The rungs, first (most trials, fewest epochs) to last (the finalists, full epochs).
    pub rungs: Vec<Rung>,
    /// The halving rate η.
    pub eta: usize,
    /// Seeds per finalist, the last rung's run included.
    pub finalist_seeds: usize,
    /// The full epochs `R` (the base recipe's).
    pub max_epochs: usize,
    /// The budget the plan was made for, in epochs.
    pub budget_epochs: usize,
}

impl Plan {
    /// The plan that spends at most `budget` epochs on trials of up to `max_epochs` epochs.
    ///
    /// # Errors
    /// [`TuneError::Config`] for an invalid `config` or `max_epochs` 0;
    /// [`TuneError::BudgetTooSmall`] when one drawn trial and the base, each with its finalist
    /// seeds, do not fit.
    pub fn for_budget(budget: usize, max_epochs: usize, config: &TuneConfig) -> Result<Plan, TuneError> {
        config.validate()?;
        if max_epochs == 0 {
            return Err(TuneError::Config { field: "epochs", value: "0".into(), expected: "at least 1" });
        }
        let (eta, seeds) = (config.eta, config.finalist_seeds);
        let most = (0..=config.max_halvings)
            .take_while(|&k| eta.checked_pow(k as u32).is_some_and(|p| max_epochs / p >= config.min_epochs))
            .last()
            .unwrap_or(0);
        let cap = config.max_trials.unwrap_or(usize::MAX);
        for halvings in (0..=most).rev() {
            let least = eta.pow(halvings as u32);
            if least > cap || cost(least, halvings, max_epochs, eta, seeds) > budget {
                continue;
            }
            // The cost grows with n₀: double, then bisect, for the largest n₀ that fits.
            let (mut fits, mut over) = (least, least.saturating_mul(2));
            while over <= cap && cost(over, halvings, max_epochs, eta, seeds) <= budget {
                fits = over;
                over = over.saturating_mul(2);
            }
            let mut over = over.min(cap.saturating_add(1));
            while over - fits > 1 {
                let mid = fits + (over - fits) / 2;
                if cost(mid, halvings, max_epochs, eta, seeds) <= budget {
                    fits = mid;
                } else {
                    over = mid;
                }
            }
            return Ok(Plan {
                rungs: rungs(fits, halvings, max_epochs, eta),
                eta,
                finalist_seeds: seeds,
                max_epochs,
                budget_epochs: budget,
            });
        }
        Err(TuneError::BudgetTooSmall { budget, epochs: max_epochs, seeds, needed: cost(1, 0, max_epochs, eta, seeds) })
    }

    /// The epochs the plan trains, if no trial stops early (the base's included).
    pub fn epochs(&self) -> usize {
        let last = self.rungs.last().map_or(0, |r| r.trials);
        self.rungs.iter().map(|r| r.trials * r.epochs).sum::<usize>()
            + last * (self.finalist_seeds - 1) * self.max_epochs
            + self.finalist_seeds * self.max_epochs
    }

    /// The trainings the plan runs (each opens the run once; the base's included).
    pub fn trainings(&self) -> usize {
        let last = self.rungs.last().map_or(0, |r| r.trials);
        self.rungs.iter().map(|r| r.trials).sum::<usize>() + last * (self.finalist_seeds - 1) + self.finalist_seeds
    }
}

/// The rungs for `n0` first trials and `halvings` halvings.
fn rungs(n0: usize, halvings: usize, max_epochs: usize, eta: usize) -> Vec<Rung> {
    (0..=halvings)
        .map(|k| Rung {
            trials: (n0 / eta.pow(k as u32)).max(1),
            epochs: (max_epochs / eta.pow((halvings - k) as u32)).max(1),
        })
        .collect()
}

/// The epochs of the plan of `n0` first trials and `halvings` halvings, the base's `seeds`
/// trainings included, saturating.
fn cost(n0: usize, halvings: usize, max_epochs: usize, eta: usize, seeds: usize) -> usize {
    let rungs = rungs(n0, halvings, max_epochs, eta);
    let last = rungs.last().map_or(0, |r| r.trials);
    rungs
        .iter()
        .fold(0usize, |sum, r| sum.saturating_add(r.trials.saturating_mul(r.epochs)))
        .saturating_add(last.saturating_mul(seeds - 1).saturating_mul(max_epochs))
        .saturating_add(seeds.saturating_mul(max_epochs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_halve_less() {
        let config = TuneConfig::default();
        // One drawn trial and the base, 10 epochs with 3 seeds each, need 60: 59 is too small.
        let err = Plan::for_budget(59, 10, &config).unwrap_err();
        assert!(matches!(err, TuneError::BudgetTooSmall { needed: 60, .. }), "{err}");
        // 10 epochs: 10/27 = 0 < 1, so at most 2 halvings (rungs of 1, 3, 10 epochs);
        // n₀ = 9 costs 9·1 + 3·3 + 1·10 + 2·10 + 30 = 78 > 70; one halving (3, 10): n₀ = 3 costs
        // 3·3 + 1·10 + 20 + 30 = 69 ≤ 70, n₀ = 4 costs 72.
        let plan = Plan::for_budget(70, 10, &config).unwrap();
        assert_eq!(plan.rungs, [Rung { trials: 3, epochs: 3 }, Rung { trials: 1, epochs: 10 }]);
        assert_eq!(plan.epochs(), 69);
        assert_eq!(plan.trainings(), 3 + 1 + 2 + 3);
        // Exactly one drawn trial.
        let plan = Plan::for_budget(60, 10, &config).unwrap();
        assert_eq!(plan.rungs, [Rung { trials: 1, epochs: 10 }]);
        let capped = Plan::for_budget(100_000, 10, &TuneConfig { max_trials: Some(20), ..config }).unwrap();
        assert_eq!(capped.rungs[0].trials, 20);
    }
}
