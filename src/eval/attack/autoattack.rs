//! AutoAttack's driver (`AutoAttack.run_standard_evaluation` in fra31/auto-attack,
//! `autoattack/autoattack.py`): the clean predictions, then each attack of the sequence on the
//! points still robust; a point is robust only if it is classified correctly and every attack
//! failed. After each attack, a candidate counts only if the model's arg-max on it is not the
//! label (the reference's final check) and within ε.

use super::apgd::apgd;
use super::config::{AttackError, EvalAttack, EvalAttackConfig};
use super::dlr::{argmax, cross_entropy};
use super::fab::fab_targeted;
use super::oracle::{logits, loss_and_grad, Meter, ProgressFn};
use super::square::square;
use crate::data::Dataset;
use crate::loss::Task;
use crate::model::Model;
use crate::regularize::NormType;
use crate::tensor::{to_array2, to_tensor};
use ndarray::{s, Array2, ArrayView2, Axis};
use serde::Serialize;
use std::time::Instant;

/// What became of one sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleOutcome {
    /// The model's class on the clean input.
    pub clean_prediction: u32,
    /// The first attack of the sequence that found a misclassified point (`None`: robust, or
    /// misclassified already when clean).
    pub broken_by: Option<EvalAttack>,
    /// The model's class on that point.
    pub adversarial_prediction: Option<u32>,
    /// The norm (the threat model's) of that point's perturbation, `‖x_adv − x‖ₚ`.
    pub perturbation_norm: Option<f64>,
}

/// One attack of the sequence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageResult {
    /// The attack.
    pub attack: EvalAttack,
    /// Robust accuracy after it: the share of all samples still classified correctly under every
    /// attack so far (cumulative).
    pub robust_accuracy: f64,
    /// Samples it broke (among those the attacks before it left).
    pub broken: usize,
    /// Samples it attacked.
    pub attacked: usize,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// The result of [`run_attacks`] at one ε.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RobustnessReport {
    /// Radius of the attacks.
    pub epsilon: f64,
    /// Norm of the threat model.
    pub norm: NormType,
    /// Accuracy on the clean inputs.
    pub clean_accuracy: f64,
    /// The attacks in order, with the cumulative robust accuracy after each.
    pub stages: Vec<StageResult>,
    /// Robust accuracy after the whole sequence (the clean accuracy if it is empty).
    pub robust_accuracy: f64,
    /// Accuracy under one FGSM step of size ε along the cross-entropy's gradient (the threat
    /// model's norm), the masking check's reference.
    pub fgsm_accuracy: f64,
    /// Correctly classified samples whose input gradient of the cross-entropy is exactly zero
    /// (gradient attacks cannot start from them).
    pub zero_gradients: usize,
    /// Number of classes of the model.
    pub classes: usize,
    /// Number of samples.
    pub samples: usize,
    /// Every sample's outcome, in input order.
    #[serde(skip)]
    pub outcomes: Vec<SampleOutcome>,
    /// The adversarial inputs (encoded, see [`run_attacks`]): each broken sample's point, the
    /// clean input elsewhere.
    #[serde(skip)]
    pub adversarial: Array2<f32>,
}

/// The width of a row and the `[c, h, w]` layout Square gives it: the item shape when it is an
/// image (`[c, h, w]`, or `[h, w]` as one channel), `[1, 1, d]` otherwise.
pub fn attack_layout(item_shape: &[usize], width: usize) -> [usize; 3] {
    match item_shape {
        [c, h, w] if c * h * w == width => [*c, *h, *w],
        [h, w] if h * w == width => [1, *h, *w],
        _ => [1, 1, width],
    }
}

/// Runs `attacks` in order on the **encoded inputs** `x` (`[n, d]`; see
/// [`Model::encode`](crate::model::Model::encode): the rows themselves for the MLP and the CNN)
/// with class labels `labels`, each attack on the points all earlier ones left robust.
/// `layout` is the `[c, h, w]` shape Square reads a row as (see [`attack_layout`]). Progress is
/// reported to `progress` if given.
///
/// # Errors
/// Before any attack: [`AttackError`] for invalid settings (see [`EvalAttackConfig::validate`]),
/// labels that do not match the rows or the model's classes, or a layout that is not the row
/// width. A candle error of a forward or backward pass. [`AttackError::Stopped`] when `progress`
/// returned `ControlFlow::Break`.
pub fn run_attacks(
    model: &dyn Model,
    x: ArrayView2<f32>,
    labels: &[u32],
    layout: [usize; 3],
    attacks: &[EvalAttack],
    config: &EvalAttackConfig,
    progress: Option<ProgressFn>,
) -> Result<RobustnessReport, AttackError> {
    let n = x.nrows();
    if labels.len() != n {
        return Err(AttackError::Input(format!("{n} inputs but {} labels", labels.len())));
    }
    if layout.iter().product::<usize>() != x.ncols() {
        return Err(AttackError::Input(format!("layout {layout:?} does not fit rows of width {}", x.ncols())));
    }
    let classes = match n {
        0 => attacks.iter().map(|a| a.min_classes()).max().unwrap_or(2),
        _ => logits(model, x.slice(s![0..1, ..]))?.ncols(),
    };
    config.validate(attacks, classes)?;
    if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes) {
        return Err(AttackError::Input(format!("label {bad} is out of range for a model with {classes} classes")));
    }
    let batch = config.batch_size.max(1);
    // Clean predictions.
    let mut clean = Vec::with_capacity(n);
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let z = logits(model, x.slice(s![start..end, ..]))?;
        clean.extend(z.rows().into_iter().map(|r| argmax(&r.to_vec()) as u32));
    }
    let y: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let mut robust: Vec<bool> = clean.iter().zip(labels).map(|(p, l)| p == l).collect();
    let correct = robust.iter().filter(|&&r| r).count();
    let share = |count: usize| if n == 0 { 0.0 } else { count as f64 / n as f64 };
    let mut outcomes: Vec<SampleOutcome> = clean
        .iter()
        .map(|&p| SampleOutcome {
            clean_prediction: p,
            broken_by: None,
            adversarial_prediction: None,
            perturbation_norm: None,
        })
        .collect();
    let (fgsm_correct, zero_gradients) = fgsm_reference(model, x, &y, &robust, config, progress)?;
    let mut adversarial = x.to_owned();
    let mut stages = Vec::with_capacity(attacks.len());
    for &attack in attacks {
        let started = Instant::now();
        let open: Vec<usize> = (0..n).filter(|&i| robust[i]).collect();
        let xs = x.select(Axis(0), &open);
        let ys: Vec<usize> = open.iter().map(|&i| y[i]).collect();
        let units = match attack {
            EvalAttack::Square => config.queries * config.restarts,
            EvalAttack::ApgdT | EvalAttack::FabT => {
                config.iterations * config.restarts * config.target_classes.min(classes - 1)
            }
            _ => config.iterations * config.restarts,
        };
        let mut meter = Meter::new(progress, attack.name(), config.epsilon, (open.len() * units) as u64);
        let found = match attack {
            EvalAttack::Square => square(model, xs.view(), &ys, &open, layout, config, &mut meter),
            EvalAttack::FabT => fab_targeted(model, xs.view(), &ys, &open, config, classes, &mut meter),
            _ => apgd(model, attack, xs.view(), &ys, &open, config, classes, &mut meter),
        };
        let found = found.map_err(|e| meter.error(e))?;
        // The reference's final check: a candidate counts if the model's arg-max is not the label
        // and (FAB-T's minimal-distance points; the others stay in the ball by construction) it is
        // within ε.
        let candidates: Vec<usize> = (0..open.len()).filter(|&j| found[j].is_some()).collect();
        // ε plus float rounding of the projections (the reference compares `res > eps` in f32).
        let within = config.epsilon * (1.0 + 1e-5);
        let mut broken = 0;
        for chunk in candidates.chunks(batch) {
            let mut points = Array2::<f32>::zeros((chunk.len(), x.ncols()));
            for (k, &j) in chunk.iter().enumerate() {
                if let Some(p) = &found[j] {
                    points.row_mut(k).assign(p);
                }
            }
            let z = logits(model, points.view())?;
            for (k, &j) in chunk.iter().enumerate() {
                let pred = argmax(&z.row(k).to_vec());
                let i = open[j];
                let delta: Vec<f32> = points.row(k).iter().zip(x.row(i)).map(|(a, b)| a - b).collect();
                let distance = norm_of(&delta, config.norm);
                if pred != y[i] && distance <= within {
                    robust[i] = false;
                    broken += 1;
                    adversarial.row_mut(i).assign(&points.row(k));
                    outcomes[i].broken_by = Some(attack);
                    outcomes[i].adversarial_prediction = Some(pred as u32);
                    outcomes[i].perturbation_norm = Some(distance);
                }
            }
        }
        stages.push(StageResult {
            attack,
            robust_accuracy: share(robust.iter().filter(|&&r| r).count()),
            broken,
            attacked: open.len(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(RobustnessReport {
        epsilon: config.epsilon,
        norm: config.norm,
        clean_accuracy: share(correct),
        robust_accuracy: share(robust.iter().filter(|&&r| r).count()),
        stages,
        fgsm_accuracy: share(fgsm_correct),
        zero_gradients,
        classes,
        samples: n,
        outcomes,
        adversarial,
    })
}

/// `‖v‖ₚ` for the threat model's norm.
fn norm_of(v: &[f32], norm: NormType) -> f64 {
    match norm {
        NormType::L2 => v.iter().map(|&a| f64::from(a) * f64::from(a)).sum::<f64>().sqrt(),
        NormType::L1 => v.iter().map(|&a| f64::from(a).abs()).sum(),
        _ => v.iter().fold(0.0f64, |m, &a| m.max(f64::from(a).abs())),
    }
}

/// FGSM at ε on the correctly classified samples: how many stay correct, and how many have a zero
/// input gradient.
fn fgsm_reference(
    model: &dyn Model,
    x: ArrayView2<f32>,
    y: &[usize],
    correct: &[bool],
    config: &EvalAttackConfig,
    progress: Option<ProgressFn>,
) -> Result<(usize, usize), AttackError> {
    let open: Vec<usize> = (0..x.nrows()).filter(|&i| correct[i]).collect();
    let mut meter = Meter::new(progress, "fgsm", config.epsilon, open.len() as u64);
    let eps = config.epsilon as f32;
    let (mut kept, mut zero) = (0, 0);
    for chunk in open.chunks(config.batch_size.max(1)) {
        let xs = x.select(Axis(0), chunk);
        let ys: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
        let (_, _, grad) = loss_and_grad(model, xs.view(), |r, z, g| cross_entropy(z, ys[r], g))?;
        let mut adv = xs.clone();
        for (mut row, g) in adv.rows_mut().into_iter().zip(grad.rows()) {
            let gn = match config.norm {
                NormType::L2 => g.iter().map(|v| v * v).sum::<f32>().sqrt(),
                _ => g.iter().fold(0.0f32, |m, v| m.max(v.abs())),
            };
            if gn == 0.0 {
                zero += 1;
            }
            for (a, &gv) in row.iter_mut().zip(g) {
                let step = match config.norm {
                    NormType::L2 => eps * gv / (gn + 1e-12),
                    _ => eps * gv.signum() * f32::from(u8::from(gv != 0.0)),
                };
                *a += step;
                if let Some((lo, hi)) = config.clip {
                    *a = a.clamp(lo, hi);
                }
            }
        }
        let z = logits(model, adv.view())?;
        kept += z.rows().into_iter().zip(&ys).filter(|(r, &l)| argmax(&r.to_vec()) == l).count();
        meter.add(chunk.len() as u64).map_err(|e| meter.error(e))?;
    }
    Ok((kept, zero))
}

/// [`run_attacks`] on labeled samples: the inputs are encoded by the model first
/// ([`Model::encode`](crate::model::Model::encode); a `bow` model is attacked in its pooled
/// embeddings, never its token ids), and Square reads each row with [`attack_layout`] (the item
/// shape for images; `[1, 1, d]` for an encoding).
///
/// # Errors
/// [`AttackError::Task`] for a task other than [`Task::Multiclass`] (a regression run has no
/// classes to attack; binary and multilabel models are not supported), [`AttackError::Input`]
/// for samples without labels, and everything [`run_attacks`] refuses, all before any attack.
pub fn evaluate_attacks(
    model: &dyn Model,
    data: &Dataset,
    task: Task,
    attacks: &[EvalAttack],
    config: &EvalAttackConfig,
    progress: Option<ProgressFn>,
) -> Result<RobustnessReport, AttackError> {
    if task != Task::Multiclass {
        return Err(AttackError::Task { task });
    }
    let Some(labels) = data.labels() else {
        return Err(AttackError::Input("attacks need labeled samples".into()));
    };
    // Settings first, before encoding anything (the class count is checked again with the model).
    config.validate(attacks, usize::MAX)?;
    let encoded = if model.has_encoder() {
        let mut rows: Option<Array2<f32>> = None;
        let batch = config.batch_size.max(1);
        for start in (0..data.len()).step_by(batch) {
            let end = (start + batch).min(data.len());
            let block = to_array2(&model.encode(&to_tensor(data.features().slice(s![start..end, ..]))?, false)?)?;
            rows.get_or_insert_with(|| Array2::zeros((data.len(), block.ncols())))
                .slice_mut(s![start..end, ..])
                .assign(&block);
        }
        rows.unwrap_or_else(|| Array2::zeros((0, data.dim())))
    } else {
        data.features().to_owned()
    };
    let layout =
        if model.has_encoder() { [1, 1, encoded.ncols()] } else { attack_layout(data.item_shape(), encoded.ncols()) };
    run_attacks(model, encoded.view(), labels, layout, attacks, config, progress)
}
