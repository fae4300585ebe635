//! Training from Python: the estimators' native half, over `nsl::run` (the API `nsl train` calls).
//!
//! `fit` turns the estimator's settings (the `nsl train` settings as text, by their `--config`
//! names) and its inputs (numpy arrays, ids, encoded labels) into a [`RunSpec`], then checks,
//! opens and fits it exactly as the CLI does, so the same settings and data give the same weights.
//!
//! Training runs on a thread of its own with the GIL released. The calling thread waits for its
//! events (a batch done, an epoch done) and hands them to the Python callback, and between events
//! (at most every 100 ms) runs Python's signal handlers (`PyErr_CheckSignals`): Ctrl-C raises
//! KeyboardInterrupt there, which sets the run's stop flag; the trainer stops after its batch and
//! `fit` re-raises the KeyboardInterrupt. Nothing is written by `fit`. `evaluate` runs the same
//! way ([`relay`]): the attacks report their progress (`nsl::eval::ProgressFn`, what `nsl
//! evaluate`'s bar shows) and stop at their next report once Ctrl-C or the callback raised.

use crate::{raise, Class, SamplesTuple};
use ndarray::Array2;
use nsl::data::{Dataset, FeatureBuffer, Targets};
use nsl::eval::{embed, evaluate_task, predict_task, robustness_sweep_task, Attack, AttackConfig, Metric, Metrics};
use nsl::eval::{sweep_attacks, AttackError, AttackMethod, AttackProgress, AttackSweep, EvalAttack, EvalAttackConfig};
use nsl::graph::{EdgeKind, NeighborGraph};
use nsl::loss::{ClassWeights, Task};
use nsl::model::Model;
use nsl::regularize::{AdvRegConfig, GraphRegConfig, NormType, VatConfig};
use nsl::run::{read_for_run, FitHooks, FittedRun, GraphInput, RunColumns, RunError, RunSpec};
use nsl::train::{load_checkpoint, BatchProgress, CheckpointError, CheckpointMeta, EpochRecord, History, LrSchedule};
use nsl::train::{MultiplierSchedule, OptimizerConfig, TrainError, TrainState};
use nsl::ModelSpec;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyDictMethods};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A C-contiguous float32 numpy array shared with a [`Dataset`]: the dataset reads numpy's buffer
/// in place, and the reference keeps the array alive as long as the dataset.
struct NumpyBuffer {
    /// Keeps the array (and so its buffer) alive.
    _array: Py<PyArray2<f32>>,
    ptr: *const f32,
    len: usize,
}

// The buffer is only read (the estimators never write it, and the user is told not to change X
// during `fit`), and `Py` is Send + Sync; the raw pointer is what makes the compiler ask.
unsafe impl Send for NumpyBuffer {}
unsafe impl Sync for NumpyBuffer {}

impl std::fmt::Debug for NumpyBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NumpyBuffer({} values at {:p})", self.len, self.ptr)
    }
}

impl FeatureBuffer for NumpyBuffer {
    fn values(&self) -> &[f32] {
        // SAFETY: `ptr` points to `len` f32 values of a C-contiguous array (checked in
        // `shared_features`) that `_array` keeps alive; numpy does not move an array's data.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The dataset of one input dict: `x` (float32, C-contiguous, shared), `ids`, and the targets:
/// `labels` + `names`, or `multi_hot` + `names`, or `values`; `weights`.
fn dataset(py: Python<'_>, input: &Bound<'_, PyDict>) -> PyResult<Dataset> {
    let arg: String = item(input, "arg")?.map_or(Ok("X".to_string()), |a| a.extract())?;
    let value = |e: nsl::DataError| raise(py, Class::Value, format!("{arg}: {}", strip(e.to_string())));
    let x = item(input, "x")?.ok_or_else(|| raise(py, Class::Value, format!("{arg}: no features")))?;
    let x = x.cast_into::<PyArray2<f32>>().map_err(|_| {
        raise(py, Class::Value, format!("{arg}: expected a 2-D float32 array (the Python layer converts X)"))
    })?;
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let ids: Vec<String> = match item(input, "ids")? {
        Some(ids) => ids.extract()?,
        None => (0..n).map(|i| i.to_string()).collect(),
    };
    let shape: Vec<usize> = item(input, "item_shape")?.map_or(Ok(vec![d]), |s| s.extract())?;
    let labels: Option<Vec<u32>> = match item(input, "labels")? {
        Some(l) => match l.cast::<PyArray1<u32>>() {
            Ok(a) => Some(a.readonly().as_array().to_vec()),
            Err(_) => Some(l.extract()?),
        },
        None => None,
    };
    let names: Option<Vec<String>> = item(input, "names")?.map(|l| l.extract()).transpose()?;
    let class_names = if labels.is_some() { names.clone() } else { None };
    let data = if x.is_c_contiguous() && n * d > 0 {
        let len = n * d;
        // The array is C-contiguous with n·d elements; `values` only reads through the pointer.
        let ptr = x.data() as *const f32;
        let buffer = Arc::new(NumpyBuffer { _array: x.unbind(), ptr, len });
        Dataset::from_shared(ids, buffer, (n, d), shape, labels, class_names).map_err(value)?
    } else {
        let owned: Array2<f32> = x.readonly().as_array().to_owned();
        Dataset::new(ids, owned, shape, labels, class_names).map_err(value)?
    };
    let data = if let Some(m) = item(input, "multi_hot")? {
        let m = m.cast_into::<PyArray2<f32>>()?.readonly().as_array().to_owned();
        data.with_targets(Targets::MultiHot(m), names).map_err(value)?
    } else if let Some(m) = item(input, "values")? {
        let m = m.cast_into::<PyArray2<f32>>()?.readonly().as_array().to_owned();
        data.with_targets(Targets::Values(m), None).map_err(value)?
    } else {
        data
    };
    // Bag-of-words rows: token ids padded with -1, in the layout the Python layer describes.
    let data = match item(input, "layout")? {
        Some(l) => {
            let text: String = l.extract()?;
            let layout: nsl::data::FeatureLayout = serde_json::from_str(&text)
                .map_err(|e| raise(py, Class::Value, format!("{arg}: feature layout: {e}")))?;
            data.with_layout(layout).map_err(value)?
        }
        None => data,
    };
    match item(input, "weights")? {
        Some(w) => {
            let w = w.cast_into::<PyArray1<f32>>()?.readonly().as_array().to_vec();
            data.with_weights(w).map_err(value)
        }
        None => Ok(data),
    }
}

/// `invalid dataset: …` reads oddly after the argument's name.
fn strip(message: String) -> String {
    message.strip_prefix("invalid dataset: ").map(str::to_string).unwrap_or(message)
}

fn item<'py>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(dict.get_item(key)?.filter(|v| !v.is_none()))
}

/// The estimator's settings (`nsl train`'s `--config` names, values as the CLI's text) as a
/// [`RunSpec`]; every value parsed by the parser the CLI's flag uses.
fn spec_of(py: Python<'_>, settings: &Bound<'_, PyDict>) -> PyResult<RunSpec> {
    let mut spec = RunSpec::default();
    let mut optimizer: Option<OptimizerConfig> = None;
    let mut learning_rate: Option<f64> = None;
    for (key, value) in settings.iter() {
        let key: String = key.extract()?;
        let text: String = value.extract()?;
        let bad = |e: &dyn std::fmt::Display| raise(py, Class::Value, format!("{key}: {e}"));
        fn num<T: FromStr>(text: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            text.trim().parse::<T>().map_err(|e| format!("`{text}` is not a valid number ({e})"))
        }
        match key.as_str() {
            "model" => spec.model = ModelSpec::from_str(&text).map_err(|e| bad(&e))?,
            "dropout" => spec.dropout = Some(num(&text).map_err(|e| bad(&e))?),
            "epochs" => spec.train.epochs = num(&text).map_err(|e| bad(&e))?,
            "batch_size" => spec.train.batch_size = num(&text).map_err(|e| bad(&e))?,
            "optimizer" => optimizer = Some(OptimizerConfig::from_str(&text).map_err(|e| bad(&e))?),
            "learning_rate" => learning_rate = Some(num(&text).map_err(|e| bad(&e))?),
            "weight_decay" => spec.train.weight_decay = num(&text).map_err(|e| bad(&e))?,
            "lr_schedule" => spec.train.lr_schedule = LrSchedule::from_str(&text).map_err(|e| bad(&e))?,
            "graph_reg" => spec.graph_reg = Some(GraphRegConfig::from_kv(&text).map_err(|e| bad(&e))?),
            "adv_reg" => spec.adv_reg = Some(AdvRegConfig::from_kv(&text).map_err(|e| bad(&e))?),
            "vat" => spec.vat = Some(VatConfig::from_kv(&text).map_err(|e| bad(&e))?),
            "graph_reg_schedule" | "adv_reg_schedule" | "vat_schedule" => {
                let schedule = MultiplierSchedule::from_kv(&text).map_err(|e| bad(&e))?;
                let s = &mut spec.train.multiplier_schedules;
                match key.as_str() {
                    "graph_reg_schedule" => s.graph = schedule,
                    "adv_reg_schedule" => s.adversarial = schedule,
                    _ => s.vat = schedule,
                }
            }
            "unlabeled_ratio" => spec.unlabeled_config.ratio = num(&text).map_err(|e| bad(&e))?,
            "entropy" => spec.unlabeled_config.entropy = num(&text).map_err(|e| bad(&e))?,
            "early_stopping" => {
                let (patience, metric) = patience(&text).map_err(|e| bad(&e))?;
                spec.train.early_stopping = Some(patience);
                spec.early_stopping_metric = metric;
            }
            "seed" => spec.train.seed = num(&text).map_err(|e| bad(&e))?,
            "init_seed" => spec.init_seed = Some(num(&text).map_err(|e| bad(&e))?),
            "threads" => spec.train.threads = Some(num(&text).map_err(|e| bad(&e))?),
            "strict" => spec.strict = boolean(&text).map_err(|e| bad(&e))?,
            "task" => spec.task = Task::from_str(&text).map_err(|e| bad(&e))?,
            "class_weights" => spec.class_weights = Some(ClassWeights::Balanced),
            "record_adversarial" => spec.record_adversarial = Some(PathBuf::from(text)),
            "record_every" => spec.record_every = num(&text).map_err(|e| bad(&e))?,
            other => return Err(raise(py, Class::Value, format!("unknown setting `{other}`"))),
        }
    }
    let mut optimizer = optimizer.unwrap_or_default();
    if let Some(lr) = learning_rate {
        optimizer = optimizer.with_learning_rate(lr);
    }
    spec.train.optimizer = optimizer;
    Ok(spec)
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{text}`: expected true or false")),
    }
}

/// `patience=N[,metric=NAME]` or `N` (as `nsl train --early-stopping`).
fn patience(text: &str) -> Result<(usize, Option<Metric>), String> {
    let mut patience = None;
    let mut metric = None;
    for part in text.split(',').map(str::trim) {
        match part.split_once('=') {
            None => patience = Some(part),
            Some(("patience", v)) => patience = Some(v),
            Some(("metric", v)) => metric = Some(Metric::from_str(v).map_err(|e| e.to_string())?),
            Some((k, _)) => return Err(format!("unknown key `{k}`: expected patience or metric")),
        }
    }
    let p = patience.ok_or("no patience: expected patience=N[,metric=NAME]")?;
    let p: usize = p.parse().map_err(|_| format!("patience `{p}` is not a count of epochs"))?;
    Ok((p, metric))
}

/// A run error as the package's exception: settings and inputs are the caller's (NslValueError),
/// files NslFileError, the rest NslError.
pub(crate) fn run_err(py: Python<'_>, e: RunError) -> PyErr {
    let class = match &e {
        RunError::Settings(_) | RunError::Config(_) | RunError::Input(_) | RunError::Data(_) | RunError::Graph(_) => {
            Class::Value
        }
        RunError::ClassWeights(_) | RunError::Memory(_) => Class::Value,
        RunError::Io { .. } => Class::File,
        _ => Class::Other,
    };
    raise(py, class, strip(e.to_string()))
}

/// What the worker thread (training, evaluation) tells the Python thread.
enum Event {
    Batch(BatchProgress),
    Epoch(Box<EpochRecord>, usize),
    /// `done` of `total` units of the stage `attack` at `epsilon` (an attack's steps per sample;
    /// for FGSM/PGD sweeps, the ε done).
    Attack {
        attack: String,
        epsilon: f64,
        done: u64,
        total: u64,
    },
}

fn event_dict<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match event {
        Event::Batch(p) => {
            d.set_item("event", "batch")?;
            d.set_item("epoch", p.epoch)?;
            d.set_item("epochs", p.epochs)?;
            d.set_item("batch", p.batch)?;
            d.set_item("batches", p.batches)?;
        }
        Event::Epoch(record, epochs) => {
            let json = serde_json::to_string(record.as_ref()).map_err(|e| raise(py, Class::Other, e.to_string()))?;
            let parsed = py.import("json")?.call_method1("loads", (json,))?.cast_into::<PyDict>()?;
            d.set_item("event", "epoch")?;
            d.set_item("epochs", *epochs)?;
            d.update(parsed.as_mapping())?;
        }
        Event::Attack { attack, epsilon, done, total } => {
            d.set_item("event", "attack")?;
            d.set_item("attack", attack)?;
            d.set_item("epsilon", *epsilon)?;
            d.set_item("done", *done)?;
            d.set_item("total", *total)?;
        }
    }
    Ok(d)
}

/// Runs `work` on a thread of its own with the GIL released, while this thread hands the events
/// `work` sends to `progress` and, between events (at most 100 ms apart), runs Python's signal
/// handlers. The first exception (KeyboardInterrupt from Ctrl-C, or one the callback raised) sets
/// `stop`, which `work` watches; it is returned beside `work`'s result once `work` has ended, and
/// no event is handed on after it.
fn relay<T: Send>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    stop: &AtomicBool,
    work: impl FnOnce(mpsc::Sender<Event>) -> T + Send,
) -> (std::thread::Result<T>, Option<PyErr>) {
    let (tx, rx) = mpsc::channel::<Event>();
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || work(tx));
        let mut raised: Option<PyErr> = None;
        loop {
            // Waits without the GIL (a poisoned lock, which no code here can cause, ends the wait).
            let received = py.detach(|| rx.lock().ok().map(|r| r.recv_timeout(Duration::from_millis(100))));
            match received {
                Some(Ok(event)) if raised.is_none() => {
                    if let Some(progress) = progress {
                        if let Err(e) = event_dict(py, &event).and_then(|d| progress.call1((d,))) {
                            raised = Some(e);
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
                Some(Ok(_)) | Some(Err(mpsc::RecvTimeoutError::Timeout)) => {}
                Some(Err(mpsc::RecvTimeoutError::Disconnected)) | None => break,
            }
            if raised.is_none() {
                if let Err(e) = py.check_signals() {
                    raised = Some(e);
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
        (py.detach(|| worker.join()), raised)
    })
}

/// A fitted or loaded run: the model with its metadata (and, after `fit`, the whole run).
#[pyclass(name = "Run", module = "nsl_rs._native", frozen)]
pub(crate) struct PyRun {
    inner: Inner,
    /// The address of the training features as the trainer read them (0 for a loaded run).
    input_pointer: usize,
}

// One value per estimator, never moved after it is made.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Fitted(Box<FittedRun>),
    Loaded { model: Box<dyn Model>, vars: candle_nn::VarMap, meta: CheckpointMeta, history: History },
}

impl PyRun {
    fn model(&self) -> &dyn Model {
        match &self.inner {
            Inner::Fitted(f) => f.model(),
            Inner::Loaded { model, .. } => model.as_ref(),
        }
    }

    fn meta(&self) -> &CheckpointMeta {
        match &self.inner {
            Inner::Fitted(f) => f.meta(),
            Inner::Loaded { meta, .. } => meta,
        }
    }

    fn history(&self) -> &History {
        match &self.inner {
            Inner::Fitted(f) => f.history(),
            Inner::Loaded { history, .. } => history,
        }
    }
}

/// Trains a run: `settings` (text, by `nsl train`'s config names), `inputs` (`train`, and
/// optionally `validation`, `unlabeled`, `pool`: dicts of `x`, `ids`, targets, `weights`), the
/// graph as a path or `(sources, targets, weights)`, `progress` (called with event dicts; None:
/// no events).
#[pyfunction]
#[pyo3(signature = (settings, inputs, graph_path, graph_edges, progress, checkpoint=None, checkpoint_every=1, resume=None))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub(crate) fn fit(
    py: Python<'_>,
    settings: Bound<'_, PyDict>,
    inputs: Bound<'_, PyDict>,
    graph_path: Option<PathBuf>,
    graph_edges: Option<(Vec<String>, Vec<String>, Vec<f32>)>,
    progress: Option<Bound<'_, PyAny>>,
    checkpoint: Option<PathBuf>,
    checkpoint_every: usize,
    resume: Option<PathBuf>,
) -> PyResult<PyRun> {
    let mut spec = spec_of(py, &settings)?;
    let input = |name: &str| -> PyResult<Option<Dataset>> {
        item(&inputs, name)?
            .map(|d| d.cast_into::<PyDict>().map_err(PyErr::from).and_then(|d| dataset(py, &d)))
            .transpose()
    };
    let train = input("train")?.ok_or_else(|| raise(py, Class::Value, "X: no training samples".into()))?;
    let input_pointer = train.features().as_ptr() as usize;
    spec.samples = Some(train.into());
    spec.validation = input("validation")?.map(Into::into);
    spec.unlabeled = input("unlabeled")?.map(Into::into);
    spec.pool = input("pool")?.map(Into::into);
    spec.graph = match (graph_path, graph_edges) {
        (Some(path), _) => Some(GraphInput::Path(path)),
        (None, Some((sources, targets, weights))) => {
            Some(GraphInput::Graph(graph_of(py, &sources, &targets, &weights)?))
        }
        (None, None) => None,
    };
    // The state to continue from: a run's `OUT.partial/` directory (the CLI's or `checkpoint`'s)
    // or its state file, read before the inputs are opened.
    let state = match resume {
        Some(path) => {
            let file = if path.is_dir() { path.join(TrainState::FILE_NAME) } else { path };
            Some(py.detach(|| TrainState::load(&file)).map_err(|e| raise(py, Class::File, format!("resume: {e}")))?)
        }
        None => None,
    };
    if checkpoint_every == 0 {
        return Err(raise(py, Class::Value, "checkpoint_every: 0; give a number of epochs >= 1".into()));
    }
    let state_file = match checkpoint {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| raise(py, Class::File, format!("checkpoint: {}: {e}", dir.display())))?;
            Some(dir.join(TrainState::FILE_NAME))
        }
        None => None,
    };
    let open = py.detach(|| spec.check().and_then(|c| c.open())).map_err(|e| run_err(py, e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let epochs = open.checked().spec().train.epochs;
    // Events cross to Python only when someone shows them (`progress` None: nobody; batch events:
    // a bar, or a callback that asked): otherwise the waiting thread would take the GIL once per
    // batch or epoch for nothing.
    let batches = progress.as_ref().is_some_and(|p| p.getattr("batches").and_then(|b| b.extract()).unwrap_or(true));
    let epoch_events = progress.is_some();
    let flag = stop.clone();
    let result = relay(py, progress.as_ref(), &stop, move |tx| {
        let (batch_tx, epoch_tx) = (tx.clone(), tx);
        let mut hooks = FitHooks::default().stop_when(flag);
        if epoch_events {
            hooks = hooks.on_epoch(move |record| {
                let _ = epoch_tx.send(Event::Epoch(Box::new(record.clone()), epochs));
            });
        }
        if batches {
            hooks = hooks.on_progress(move |p| {
                let _ = batch_tx.send(Event::Batch(p));
            });
        }
        if let Some(path) = state_file {
            hooks = hooks.on_epoch_state(checkpoint_every, move |state| state.save(&path));
        }
        if let Some(state) = state {
            hooks = hooks.resume_from(state);
        }
        open.fit(hooks)
    });
    match result {
        (_, Some(e)) => Err(e),
        (Ok(Ok(fitted)), None) => Ok(PyRun { inner: Inner::Fitted(Box::new(fitted)), input_pointer }),
        (Ok(Err(RunError::Train(TrainError::Stopped { .. }))), None) => {
            Err(pyo3::exceptions::PyKeyboardInterrupt::new_err("training stopped"))
        }
        (Ok(Err(e)), None) => Err(run_err(py, e)),
        (Err(_), None) => Err(raise(py, Class::Other, "the training thread panicked".into())),
    }
}

/// `model`'s layer `layer` (None: the logits) for every sample of `data`, without the GIL. The
/// layer name is tried on one row of zeros first, so that an unknown name is the caller's error
/// (NslValueError, listing the model's layers) and anything later nsl's (NslError).
fn embed_values(py: Python<'_>, model: &dyn Model, data: &Dataset, layer: Option<&str>) -> PyResult<Array2<f32>> {
    let name = layer.unwrap_or("logits");
    let probe = candle_core::Tensor::zeros((1, data.dim()), candle_core::DType::F32, &candle_core::Device::Cpu)
        .and_then(|zeros| model.forward_with(&zeros, false, layer));
    match probe {
        Ok((_, None)) if layer.is_some() => {
            return Err(raise(py, Class::Value, format!("layer: the model did not return layer `{name}`")))
        }
        Err(e) => return Err(raise(py, Class::Value, format!("layer: {e}"))),
        Ok(_) => {}
    }
    py.detach(|| embed(model, data, layer, 1024)).map_err(|e| raise(py, Class::Other, format!("layer `{name}`: {e}")))
}

/// `nsl embed --run RUN --samples SAMPLES --layer LAYER`: the samples read as the CLI reads them
/// (the run's `columns.json`, labels mapped onto the run's classes), embedded as it embeds them;
/// returns the embeddings as a samples tuple (ids, values, labels, class names, `[width]`) and
/// the reader's warnings.
#[pyfunction]
#[pyo3(signature = (run, samples, layer=None))]
pub(crate) fn embed_file<'py>(
    py: Python<'py>,
    run: PathBuf,
    samples: PathBuf,
    layer: Option<String>,
) -> PyResult<(SamplesTuple<'py>, Vec<String>)> {
    for (what, path) in [("run", run.join("model.json")), ("samples", samples.clone())] {
        if !path.exists() {
            return Err(raise(py, Class::File, format!("{what}: {}: no such file", path.display())));
        }
    }
    let mut checkpoint = py.detach(|| load_checkpoint(&run)).map_err(|e| match e {
        CheckpointError::Io { .. } => raise(py, Class::File, format!("run: {e}")),
        e => raise(py, Class::Other, format!("run: {e}")),
    })?;
    let mut notes = Vec::new();
    let data = py
        .detach(|| {
            let columns = RunColumns::load(&run)?.to_columns();
            read_for_run(&mut checkpoint, &samples, &columns, false, &mut notes)
        })
        .map_err(|e| run_err(py, e))?;
    let values = embed_values(py, checkpoint.model.as_ref(), &data, layer.as_deref())?;
    let width = values.ncols();
    let (ids, _, _, labels, names) = data.into_parts();
    let labels = labels.map(|l| l.into_pyarray(py));
    Ok(((ids, values.into_pyarray(py), labels, names, vec![width]), notes))
}

/// A graph of the given edges (explicit edges; a repeated edge keeps the larger weight).
fn graph_of(py: Python<'_>, sources: &[String], targets: &[String], weights: &[f32]) -> PyResult<NeighborGraph> {
    if sources.len() != targets.len() || sources.len() != weights.len() {
        return Err(raise(py, Class::Value, "graph: sources, targets and weights differ in length".into()));
    }
    let mut graph = NeighborGraph::with_capacity(0, sources.len());
    for (i, ((s, t), &w)) in sources.iter().zip(targets).zip(weights).enumerate() {
        graph
            .add_edge(s, t, w, EdgeKind::Explicit)
            .map_err(|e| raise(py, Class::Value, format!("graph: edge {i} (`{s}` -> `{t}`): {e}")))?;
    }
    Ok(graph)
}

fn json_err(py: Python<'_>, e: serde_json::Error) -> PyErr {
    raise(py, Class::Other, e.to_string())
}

#[pymethods]
impl PyRun {
    /// The model's outputs for `x` (float32 `n × d`): probabilities (multiclass: softmax;
    /// binary, multilabel: sigmoid) or values (regression).
    fn predict<'py>(&self, py: Python<'py>, x: Bound<'py, PyArray2<f32>>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let input = PyDict::new(py);
        input.set_item("x", x)?;
        let data = dataset(py, &input)?;
        self.check_width(py, &data)?;
        let task = self.meta().task;
        let rows = py
            .detach(|| predict_task(self.model(), &data, task, 1024))
            .map_err(|e| raise(py, Class::Other, e.to_string()))?;
        let k = rows.first().map_or(self.meta().classes, Vec::len);
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        let array =
            Array2::from_shape_vec((data.len(), k), flat).map_err(|e| raise(py, Class::Other, e.to_string()))?;
        Ok(array.into_pyarray(py))
    }

    /// The values of one layer of the model for `x` (float32 `n × d`): `layer` names a hidden
    /// layer (`hidden0`, … of an MLP; `dense0`, … of a CNN), None the logits; computed as `nsl
    /// embed` computes them (`nsl::eval::embed`, batches of 1024, evaluation mode), without the GIL.
    #[pyo3(signature = (x, layer=None))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        x: Bound<'py, PyArray2<f32>>,
        layer: Option<String>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let input = PyDict::new(py);
        input.set_item("x", x)?;
        let data = dataset(py, &input)?;
        self.check_width(py, &data)?;
        Ok(embed_values(py, self.model(), &data, layer.as_deref())?.into_pyarray(py))
    }

    /// `nsl evaluate`'s result as JSON: loss and metrics of `input` (a dict as `fit`'s inputs),
    /// and with `settings["attack"]` (any `nsl evaluate --attack`: fgsm, pgd, apgd-ce, apgd-dlr,
    /// apgd-t, fab-t, square, autoattack) the metrics under the attack for each epsilon.
    /// `source`: craft the FGSM/PGD perturbations on this other run's model (a transfer attack).
    /// With `per_sample` and an evaluation attack, also the `--per-sample` table's columns.
    /// `progress` is called with `event="attack"` dicts (see [`relay`]: the GIL released,
    /// Ctrl-C stops the attack at its next report and raises KeyboardInterrupt).
    #[pyo3(signature = (input, settings, source=None, per_sample=false, progress=None))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        input: Bound<'py, PyDict>,
        settings: Bound<'py, PyDict>,
        source: Option<Bound<'py, PyRun>>,
        per_sample: bool,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(String, Option<Bound<'py, PyDict>>)> {
        let data = dataset(py, &input)?;
        self.check_width(py, &data)?;
        let (task, model) = (self.meta().task, self.model());
        // Every setting checked, and the attack chosen, before any work.
        let attack = AttackSettings::read(py, &settings)?;
        let plan = match &attack {
            None => Plan::Clean,
            Some(s) => match s.method.sequence(s.norm) {
                attacks if attacks.is_empty() => Plan::Gradient(self.gradient_config(py, &data, s, source.as_ref())?),
                attacks => Plan::Evaluation(attacks, self.evaluation_config(py, s, source.is_some())?),
            },
        };
        let source_run = source.as_ref().map(|s| s.get());
        let source_model = source_run.map_or(model, |s| s.model());
        let stop = AtomicBool::new(false);
        let epsilons = attack.as_ref().map_or(&[][..], |s| s.epsilons.as_slice());
        let name = attack.as_ref().map_or("", |s| s.method.name());
        let (result, raised) = relay(py, progress.as_ref(), &stop, |tx| {
            let clean = evaluate_task(model, &data, task, 1024).map_err(|e| Failure::Clean(e.to_string()))?;
            let attacked = match &plan {
                Plan::Clean => Attacked::Nothing,
                Plan::Gradient(config) => {
                    // One ε at a time, as `nsl evaluate` (the same figures): progress and the stop
                    // flag between them.
                    let n = epsilons.len() as u64;
                    let mut sweep = Vec::with_capacity(epsilons.len());
                    for (i, &epsilon) in epsilons.iter().enumerate() {
                        if stop.load(Ordering::SeqCst) {
                            return Err(Failure::Stopped);
                        }
                        let event = |done| Event::Attack { attack: name.into(), epsilon, done, total: n };
                        let _ = tx.send(event(i as u64));
                        sweep.extend(
                            robustness_sweep_task(model, source_model, &data, task, config, &[epsilon], 256)
                                .map_err(|e| Failure::Gradient(e.to_string()))?,
                        );
                        let _ = tx.send(event(i as u64 + 1));
                    }
                    Attacked::Gradient(sweep)
                }
                Plan::Evaluation(attacks, config) => {
                    let report = attack_reporter(&tx, &stop);
                    let sweep = sweep_attacks(model, &data, task, attacks, config, epsilons, Some(&report));
                    Attacked::Evaluation(Box::new(sweep.map_err(Failure::Attack)?))
                }
            };
            Ok((clean, attacked))
        });
        let (clean, attacked) = match (result, raised) {
            (_, Some(e)) => return Err(e),
            (Err(_), None) => return Err(raise(py, Class::Other, "the evaluation thread panicked".into())),
            (Ok(Ok(done)), None) => done,
            (Ok(Err(failure)), None) => {
                return Err(match failure {
                    Failure::Clean(e) => raise(py, Class::Value, format!("y: {e}")),
                    Failure::Gradient(e) => raise(py, Class::Other, e),
                    Failure::Attack(e @ AttackError::Candle(_)) => {
                        raise(py, Class::Other, format!("attack {name}: {e}"))
                    }
                    Failure::Attack(AttackError::Stopped { .. }) | Failure::Stopped => {
                        pyo3::exceptions::PyKeyboardInterrupt::new_err("evaluation stopped")
                    }
                    Failure::Attack(e) => raise(py, Class::Value, format!("attack {name}: {e}")),
                });
            }
        };
        let mut out = serde_json::json!({
            "task": task.to_string(),
            "loss": clean.loss,
            "samples": clean.samples,
        });
        if !clean.accuracy.is_nan() {
            out["accuracy"] = clean.accuracy.into();
        }
        if clean.weighted {
            out["weighted"] = true.into();
        }
        let mut metrics = serde_json::to_value(&clean.metrics).map_err(|e| json_err(py, e))?;
        if let Some(m) = metrics.as_object_mut() {
            m.remove("accuracy");
            for (k, v) in m.iter() {
                out[k] = v.clone();
            }
        }
        let mut table = None;
        match (attacked, &plan, &attack) {
            (Attacked::Gradient(sweep), Plan::Gradient(config), _) => {
                let robust = |m: &Metrics| match task {
                    Task::Multilabel => m.subset_accuracy,
                    _ => m.accuracy,
                };
                out["attack"] = serde_json::to_value(config).map_err(|e| json_err(py, e))?;
                out["epsilon"] = sweep.iter().map(|p| p.0).collect::<Vec<_>>().into();
                out["robust_accuracy"] = sweep.iter().filter_map(|p| robust(&p.1)).collect::<Vec<_>>().into();
                out["robust_metrics"] = serde_json::to_value(sweep.iter().map(|p| &p.1).collect::<Vec<_>>())
                    .map_err(|e| json_err(py, e))?;
            }
            (Attacked::Evaluation(sweep), _, Some(settings)) => {
                if per_sample {
                    table = Some(per_sample_columns(py, &data, &sweep)?);
                }
                out["epsilon"] = sweep.reports.iter().map(|r| r.epsilon).collect::<Vec<_>>().into();
                out["robust_accuracy"] = sweep.reports.iter().map(|r| r.robust_accuracy).collect::<Vec<_>>().into();
                let mut attack = serde_json::to_value(&sweep.config).map_err(|e| json_err(py, e))?;
                attack["method"] = settings.method.name().into();
                attack["attacks"] = serde_json::to_value(&sweep.attacks).map_err(|e| json_err(py, e))?;
                out["evaluation_attack"] = attack;
                out["results"] = serde_json::to_value(&sweep.reports).map_err(|e| json_err(py, e))?;
                let mut warnings = Vec::new();
                for w in &sweep.warnings {
                    let mut v = serde_json::to_value(w).map_err(|e| json_err(py, e))?;
                    v["message"] = w.to_string().into();
                    warnings.push(v);
                }
                out["masking_check"] = serde_json::json!({ "passed": warnings.is_empty(), "warnings": warnings });
            }
            _ => {}
        }
        let text = serde_json::to_string(&out).map_err(|e| json_err(py, e))?;
        Ok((text, table))
    }

    /// Writes the run directory (as `nsl train --out`), then `nsl_rs.json` (the estimator's
    /// Python side: classes, parameters) beside it, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf, python_meta: String) -> PyResult<()> {
        // A run directory saved before holds our nsl_rs.json, which FittedRun::save would take
        // for a user's file (it replaces only run directories): it goes first.
        match std::fs::remove_file(path.join("nsl_rs.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(raise(py, Class::File, format!("{}: {e}", path.join("nsl_rs.json").display())))
            }
            _ => {}
        }
        match &self.inner {
            Inner::Fitted(f) => {
                py.detach(|| f.save(&path)).map_err(|e| run_err(py, e))?;
            }
            Inner::Loaded { vars, meta, history, .. } => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| raise(py, Class::File, format!("{}: {e}", path.display())))?;
                nsl::train::save_checkpoint(&path, meta, vars).map_err(|e| raise(py, Class::File, e.to_string()))?;
                let h = serde_json::to_string_pretty(history).map_err(|e| json_err(py, e))?;
                write_atomic(&path.join("history.json"), h.as_bytes()).map_err(|e| raise(py, Class::File, e))?;
            }
        }
        write_atomic(&path.join("nsl_rs.json"), python_meta.as_bytes()).map_err(|e| raise(py, Class::File, e))
    }

    /// The run in directory `path` (written by `nsl train` or `save`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyRun> {
        let checkpoint = py.detach(|| load_checkpoint(&path)).map_err(|e| raise(py, Class::File, e.to_string()))?;
        let history = std::fs::read_to_string(path.join("history.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<History>(&t).ok())
            .unwrap_or_default();
        let python = std::fs::read_to_string(path.join("nsl_rs.json")).ok();
        let mut meta = checkpoint.meta;
        if let Some(p) = python.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
            if !meta.training.is_object() {
                meta.training = serde_json::json!({});
            }
            if let Some(setup) = meta.training.as_object_mut() {
                setup.insert("python".into(), p);
            }
        }
        Ok(PyRun {
            inner: Inner::Loaded { model: checkpoint.model, vars: checkpoint.vars, meta, history },
            input_pointer: 0,
        })
    }

    /// `model.json`'s content (and, for a loaded run, `python`: what `save` stored in nsl_rs.json).
    fn meta_json(&self, py: Python<'_>) -> PyResult<String> {
        let mut v = serde_json::to_value(self.meta()).map_err(|e| json_err(py, e))?;
        if let Some(p) = self.meta().training.get("python") {
            v["python"] = p.clone();
        }
        serde_json::to_string(&v).map_err(|e| json_err(py, e))
    }

    /// The history (one dict per epoch), as JSON.
    fn history_json(&self, py: Python<'_>) -> PyResult<String> {
        serde_json::to_string(&self.history().epochs).map_err(|e| json_err(py, e))
    }

    /// Where the trainer read the training features: equal to `X.ctypes.data` when a
    /// C-contiguous float32 X was not copied.
    fn input_pointer(&self) -> usize {
        self.input_pointer
    }
}

impl PyRun {
    fn check_width(&self, py: Python<'_>, data: &Dataset) -> PyResult<()> {
        let width: usize = self.meta().item_shape.iter().product();
        if data.dim() != width {
            return Err(raise(py, Class::Value, format!("X has {} features, the model takes {width}", data.dim())));
        }
        Ok(())
    }
}

/// `evaluate`'s attack settings, parsed and checked as `nsl evaluate`'s flags (the same names
/// without `--`, and the same defaults: PGD 40 steps of 0.01, APGD/FAB 100 iterations, Square
/// 5,000 queries, 9 target classes, batches of 500).
struct AttackSettings {
    method: AttackMethod,
    epsilons: Vec<f64>,
    norm: NormType,
    steps: usize,
    step_size: f64,
    random_start: bool,
    clip: Option<(f32, f32)>,
    seed: u64,
    iterations: usize,
    restarts: usize,
    queries: usize,
    target_classes: usize,
    batch_size: usize,
}

impl AttackSettings {
    /// `None` without `settings["attack"]`.
    fn read(py: Python<'_>, settings: &Bound<'_, PyDict>) -> PyResult<Option<AttackSettings>> {
        let text = |k: &str| -> PyResult<Option<String>> { settings.get_item(k)?.map(|v| v.extract()).transpose() };
        let Some(attack) = text("attack")? else { return Ok(None) };
        let bad = |m: String| raise(py, Class::Value, m);
        let method = AttackMethod::from_str(&attack).map_err(|e| bad(format!("attack: {e}")))?;
        fn parse<T: FromStr>(key: &str, text: Option<String>, default: T, what: &str) -> Result<T, String> {
            match text {
                None => Ok(default),
                Some(t) => t.trim().parse().map_err(|_| format!("{key}: `{t}` is not {what}")),
            }
        }
        let count = |k: &str, default: usize| parse(k, text(k)?, default, "a whole number >= 0").map_err(bad);
        let epsilons: Vec<f64> = text("epsilon")?
            .unwrap_or_default()
            .split(',')
            .map(|e| e.trim().parse::<f64>().map_err(|_| bad(format!("epsilon: `{e}` is not a number"))))
            .collect::<PyResult<_>>()?;
        if let Some(e) = epsilons.iter().find(|e| !(e.is_finite() && **e >= 0.0)) {
            return Err(bad(format!("epsilon: {e} must be a finite number >= 0")));
        }
        let norm = match text("norm")?.as_deref().unwrap_or("inf") {
            "inf" | "linf" | "infinity" => NormType::Infinity,
            "l2" => NormType::L2,
            "l1" => NormType::L1,
            n => return Err(bad(format!("norm: `{n}`: expected inf, l2 or l1"))),
        };
        let clip = match text("clip")? {
            Some(c) => {
                let parsed = c
                    .split_once(':')
                    .and_then(|(lo, hi)| Some((lo.trim().parse::<f32>().ok()?, hi.trim().parse::<f32>().ok()?)));
                match parsed {
                    Some((lo, hi)) if lo <= hi => Some((lo, hi)),
                    _ => return Err(bad(format!("clip: `{c}` is not MIN:MAX with MIN <= MAX"))),
                }
            }
            None => None,
        };
        Ok(Some(AttackSettings {
            method,
            epsilons,
            norm,
            steps: count("steps", 40)?,
            step_size: parse("step_size", text("step_size")?, 0.01, "a number").map_err(bad)?,
            random_start: parse("random_start", text("random_start")?, false, "true or false").map_err(bad)?,
            clip,
            seed: parse("seed", text("seed")?, 0u64, "a whole number >= 0").map_err(bad)?,
            iterations: count("iterations", 100)?,
            restarts: count("restarts", 1)?,
            queries: count("queries", 5000)?,
            target_classes: count("target_classes", 9)?,
            batch_size: count("attack_batch_size", 500)?,
        }))
    }
}

/// What `evaluate` runs, settled before any work.
enum Plan {
    /// Loss and metrics only.
    Clean,
    /// FGSM or PGD at each ε (`nsl evaluate --attack fgsm|pgd`).
    Gradient(AttackConfig),
    /// An evaluation attack or AutoAttack's sequence at each ε, with the masking check.
    Evaluation(Vec<EvalAttack>, EvalAttackConfig),
}

/// What the evaluation thread computed under attack.
enum Attacked {
    Nothing,
    Gradient(Vec<(f64, Metrics)>),
    Evaluation(Box<AttackSweep>),
}

/// Why the evaluation thread failed.
enum Failure {
    Clean(String),
    Gradient(String),
    Attack(AttackError),
    /// The stop flag was set between two ε of an FGSM/PGD sweep.
    Stopped,
}

/// The attacks' progress callback of `evaluate`: sends an [`Event::Attack`] when a stage starts or
/// ends (once) and at most every 100 ms between (the attacks report every step of a batch, which can be
/// thousands a second: each event takes the GIL), and stops the attack once `stop` is set.
fn attack_reporter<'a>(
    tx: &'a mpsc::Sender<Event>,
    stop: &'a AtomicBool,
) -> impl Fn(&AttackProgress) -> ControlFlow<()> + Sync + 'a {
    let last: Mutex<Option<(String, f64, u64, Instant)>> = Mutex::new(None);
    move |p: &AttackProgress| {
        if stop.load(Ordering::SeqCst) {
            return ControlFlow::Break(());
        }
        let now = Instant::now();
        if let Ok(mut last) = last.lock() {
            let due = match &*last {
                Some((attack, epsilon, done, at)) if attack == p.attack && *epsilon == p.epsilon => {
                    // Something new (a stage's end is reported again by each of its batches), and the
                    // stage's end or 100 ms since the last event.
                    *done != p.done && (p.done == p.total || now - *at >= REPORT_EVERY)
                }
                _ => true,
            };
            if due {
                *last = Some((p.attack.to_string(), p.epsilon, p.done, now));
                let _ = tx.send(Event::Attack {
                    attack: p.attack.into(),
                    epsilon: p.epsilon,
                    done: p.done,
                    total: p.total,
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// The shortest time between two attack events of one stage.
const REPORT_EVERY: Duration = Duration::from_millis(100);

impl PyRun {
    /// FGSM's or PGD's settings (`nsl evaluate --attack fgsm|pgd`), checked, with the transfer
    /// source's outputs checked against this model's.
    fn gradient_config(
        &self,
        py: Python<'_>,
        data: &Dataset,
        s: &AttackSettings,
        source: Option<&Bound<'_, PyRun>>,
    ) -> PyResult<AttackConfig> {
        let bad = |m: String| raise(py, Class::Value, m);
        let task = self.meta().task;
        let attack = match s.method {
            AttackMethod::Pgd => {
                if s.steps == 0 || !(s.step_size.is_finite() && s.step_size > 0.0) {
                    return Err(bad("steps, step_size: PGD needs at least 1 step of a size > 0".into()));
                }
                Attack::Pgd { steps: s.steps, step_size: s.step_size, random_init: s.random_start }
            }
            _ => Attack::Fgsm,
        };
        if let Some(src) = source.map(|s| s.get()) {
            src.check_width(py, data)?;
            if src.meta().classes != self.meta().classes || src.meta().task != task {
                return Err(bad(format!(
                    "attack_from: the source model predicts {} outputs for {}, this one {} for {task}",
                    src.meta().classes,
                    src.meta().task,
                    self.meta().classes
                )));
            }
        }
        Ok(AttackConfig { attack, norm: s.norm, epsilon: s.epsilons[0], clip: s.clip, seed: s.seed })
    }

    /// The settings of APGD, FAB-T, Square or AutoAttack (`nsl evaluate --attack
    /// apgd-ce|…|autoattack`); [`sweep_attacks`] checks them at every ε before any attack runs.
    fn evaluation_config(&self, py: Python<'_>, s: &AttackSettings, transfer: bool) -> PyResult<EvalAttackConfig> {
        if transfer {
            return Err(raise(
                py,
                Class::Value,
                format!(
                    "attack_from: {} is white-box (it attacks this model itself); attack_from works with fgsm and pgd",
                    s.method.name()
                ),
            ));
        }
        Ok(EvalAttackConfig {
            norm: s.norm,
            epsilon: s.epsilons[0],
            clip: s.clip,
            iterations: s.iterations,
            restarts: s.restarts,
            target_classes: s.target_classes,
            queries: s.queries,
            seed: s.seed,
            batch_size: s.batch_size,
            ..EvalAttackConfig::default()
        })
    }
}

/// `nsl evaluate --per-sample`'s columns, one row per sample and ε: `epsilon`, `id`, `label`,
/// `clean_prediction`, `robust`, `broken_by`, `adversarial_prediction`, `perturbation_norm`
/// (None where the CLI's table has a null).
fn per_sample_columns<'py>(py: Python<'py>, data: &Dataset, sweep: &AttackSweep) -> PyResult<Bound<'py, PyDict>> {
    let labels = data.labels().unwrap_or_default();
    let mut eps = Vec::new();
    let mut ids = Vec::new();
    let mut label = Vec::new();
    let mut clean = Vec::new();
    let mut robust = Vec::new();
    let mut broken_by = Vec::new();
    let mut adversarial = Vec::new();
    let mut norm = Vec::new();
    for report in &sweep.reports {
        for ((o, id), &l) in report.outcomes.iter().zip(data.ids()).zip(labels) {
            eps.push(report.epsilon);
            ids.push(id.to_string());
            label.push(l);
            clean.push(o.clean_prediction);
            robust.push(o.clean_prediction == l && o.broken_by.is_none());
            broken_by.push(o.broken_by.map(|a| a.name()));
            adversarial.push(o.adversarial_prediction);
            norm.push(o.perturbation_norm);
        }
    }
    let d = PyDict::new(py);
    d.set_item("epsilon", eps.into_pyarray(py))?;
    d.set_item("id", ids)?;
    d.set_item("label", label.into_pyarray(py))?;
    d.set_item("clean_prediction", clean.into_pyarray(py))?;
    d.set_item("robust", robust)?;
    d.set_item("broken_by", broken_by)?;
    d.set_item("adversarial_prediction", adversarial)?;
    d.set_item("perturbation_norm", norm)?;
    Ok(d)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(embed_file, m)?)?;
    m.add_class::<PyRun>()?;
    Ok(())
}
