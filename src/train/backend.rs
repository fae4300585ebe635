//! The two ways a training step runs a model forward and backward, behind one [`Backend`] trait:
//!
//! - [`Autograd`]: any [`Model`], differentiated by candle's autograd;
//! - [`TapePass`]: the built-in [`Mlp`], through its own forward/backward tape
//!   ([`Mlp::forward_tape`](crate::model::Mlp)), candle only differentiating the losses with respect
//!   to the logits (or a hidden layer). Several times faster for small networks.
//!
//! The step itself ([`super::step`]) — the batch, every loss term, adversarial neighbors, records —
//! is written once over this trait; a backend only runs passes, turns a loss into parameter
//! gradients (and `∇ₓ` when asked), and hands them to the optimizer.

use super::optim::Optimizer;
use crate::model::{Mlp, Model, Tape};
use crate::tensor::to_array2;
use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor, Var};
use ndarray::Array2;

/// What a forward pass gives the losses: logits `[rows, classes]` and, if asked for, the regularized
/// hidden layer's output `[rows, units]`; for a model with an encoder ([`Model::has_encoder`]), the
/// encoded input `[rows, e]` that perturbations move instead of the raw rows.
pub(super) struct Outputs {
    pub logits: Tensor,
    pub hidden: Option<Tensor>,
    pub encoded: Option<Tensor>,
}

/// A model's forward and backward passes for one training step.
pub(super) trait Backend {
    /// What a pass keeps for its backward.
    type Pass;

    /// The forward pass (training mode) over `rows` inputs, `input` being `[rows, d]` row-major.
    /// `hidden`: also return the regularized layer's output. `input_grad = Some(n)`: the first `n`
    /// rows' gradient will be asked for by [`Backend::backward`].
    fn forward(
        &mut self,
        input: Vec<f32>,
        rows: usize,
        hidden: bool,
        input_grad: Option<usize>,
    ) -> Result<(Outputs, Self::Pass)>;

    /// Differentiates `loss`, which depends on the outputs of `passes`, and adds its parameter
    /// gradients to the step's. With `input_grad`, returns `∂loss/∂x` of the first pass's
    /// `input_grad` rows, `[n, d]`.
    fn backward(&mut self, loss: &Tensor, passes: &[&Self::Pass], input_grad: bool) -> Result<Option<Array2<f32>>>;

    /// The forward pass (training mode) over perturbed copies of the first `rows` inputs of
    /// `base`: `input` is `[rows, d]` in the space [`Outputs::encoded`] describes when `base` had
    /// one (the model's encoded input: the perturbation is added to it, so gradients still reach
    /// the encoder), else in the raw input space.
    fn forward_perturbed(&mut self, base: &Self::Pass, input: Vec<f32>, rows: usize) -> Result<(Outputs, Self::Pass)> {
        let _ = base;
        self.forward(input, rows, false, None)
    }

    /// Applies the step's gradients with `optimizer` and starts the next step from none.
    fn update(&mut self, optimizer: &mut Optimizer) -> Result<()>;
}

/// Any [`Model`], differentiated by candle.
pub(super) struct Autograd<'m> {
    model: &'m dyn Model,
    /// The regularized layer's name, if the graph regularizer names one.
    layer: Option<String>,
    /// Input width.
    d: usize,
    /// The trained variables (the optimizer's, in its order).
    vars: Vec<Var>,
    /// The step's parameter gradients so far.
    grads: Option<GradStore>,
}

impl<'m> Autograd<'m> {
    pub(super) fn new(model: &'m dyn Model, layer: Option<&str>, d: usize, vars: Vec<Var>) -> Self {
        Autograd { model, layer: layer.map(str::to_string), d, vars, grads: None }
    }
}

/// A pass of [`Autograd`]: the variable whose gradient is `∇ₓ` (the input rows themselves, or a
/// zero added to the encoded rows), if it is wanted, and the encoded input of a model with an
/// encoder.
pub(super) struct AutogradPass {
    x: Option<Var>,
    encoded: Option<Tensor>,
}

impl Backend for Autograd<'_> {
    type Pass = AutogradPass;

    fn forward(
        &mut self,
        input: Vec<f32>,
        rows: usize,
        hidden: bool,
        input_grad: Option<usize>,
    ) -> Result<(Outputs, AutogradPass)> {
        let all = Tensor::from_vec(input, (rows, self.d), &Device::Cpu)?;
        let layer = if hidden { self.layer.as_deref() } else { None };
        if self.model.has_encoder() {
            // ∇ with respect to the encoded input: candle keeps gradients only for variables, so
            // a zero variable is added to the first rows; the encoder's own parameters still get
            // their gradient through the sum.
            let encoded = self.model.encode(&all, true)?;
            let (model_input, x) = match input_grad {
                Some(n) => {
                    let zero = Var::zeros((n, encoded.dim(1)?), encoded.dtype(), &Device::Cpu)?;
                    let probed = (encoded.narrow(0, 0, n)? + zero.as_tensor())?;
                    let joined = match rows > n {
                        true => Tensor::cat(&[&probed, &encoded.narrow(0, n, rows - n)?], 0)?,
                        false => probed,
                    };
                    (joined, Some(zero))
                }
                None => (encoded.clone(), None),
            };
            let (logits, hidden) = self.model.forward_encoded(&model_input, true, layer)?;
            let outputs = Outputs { logits, hidden, encoded: Some(encoded.clone()) };
            return Ok((outputs, AutogradPass { x, encoded: Some(encoded) }));
        }
        // The rows whose gradient is wanted become a variable, so that one backward gives ∇ₓ.
        let (model_input, x) = match input_grad {
            Some(n) => {
                let x = Var::from_tensor(&all.narrow(0, 0, n)?)?;
                let joined = match rows > n {
                    true => Tensor::cat(&[x.as_tensor(), &all.narrow(0, n, rows - n)?], 0)?,
                    false => x.as_tensor().clone(),
                };
                (joined, Some(x))
            }
            None => (all, None),
        };
        let (logits, hidden) = self.model.forward_with(&model_input, true, layer)?;
        Ok((Outputs { logits, hidden, encoded: None }, AutogradPass { x, encoded: None }))
    }

    fn forward_perturbed(
        &mut self,
        base: &AutogradPass,
        input: Vec<f32>,
        rows: usize,
    ) -> Result<(Outputs, AutogradPass)> {
        let Some(encoded) = &base.encoded else { return self.forward(input, rows, false, None) };
        // encoded + stop_gradient(perturbed − encoded): the values of `input`, with the gradient
        // of the adversarial loss flowing into the encoder (NSL's `x + stop_gradient(δ)`).
        let clean = encoded.narrow(0, 0, rows)?;
        let perturbed = Tensor::from_vec(input, (rows, clean.dim(1)?), &Device::Cpu)?;
        let model_input = (&clean + (perturbed - clean.detach())?)?;
        let (logits, _) = self.model.forward_encoded(&model_input, true, None)?;
        Ok((Outputs { logits, hidden: None, encoded: None }, AutogradPass { x: None, encoded: None }))
    }

    fn backward(&mut self, loss: &Tensor, passes: &[&AutogradPass], input_grad: bool) -> Result<Option<Array2<f32>>> {
        let mut grads = loss.backward()?;
        let gx = match (input_grad, passes.first().and_then(|p| p.x.as_ref())) {
            (true, Some(x)) => grads.remove(x.as_tensor()).map(|g| to_array2(&g)).transpose()?,
            _ => None,
        };
        match &mut self.grads {
            None => self.grads = Some(grads),
            Some(sum) => {
                for var in &self.vars {
                    if let Some(more) = grads.get(var.as_tensor()) {
                        let total = match sum.get(var.as_tensor()) {
                            Some(g) => (g + more)?,
                            None => more.clone(),
                        };
                        sum.insert(var.as_tensor(), total);
                    }
                }
            }
        }
        Ok(gx)
    }

    fn update(&mut self, optimizer: &mut Optimizer) -> Result<()> {
        match self.grads.take() {
            Some(grads) => optimizer.step(&grads),
            None => candle_core::bail!("no gradient was computed in this step"),
        }
    }
}

/// The built-in [`Mlp`] trained through its own passes, with its gradient buffers and where each
/// parameter sits among the optimizer's variables.
pub(super) struct TapeNet<'m> {
    mlp: &'m Mlp,
    /// The regularized hidden layer, if the graph regularizer names one.
    hidden: Option<usize>,
    grads: Vec<Vec<f32>>,
    /// Whether `grads` still holds the previous step's values (the next backward writes over them).
    stale: bool,
    /// Each parameter's index among the optimizer's variables.
    slots: Vec<usize>,
}

impl<'m> TapeNet<'m> {
    /// The tape backend for `mlp`, or `None` if the network cannot run on the tape (see
    /// [`Mlp::supports_tape`]).
    pub(super) fn new(mlp: &'m Mlp, layer: Option<&str>, optimizer: &Optimizer) -> Result<Option<Self>> {
        if !mlp.supports_tape() {
            return Ok(None);
        }
        let slots = mlp.parameters().iter().map(|p| optimizer.index_of(p)).collect::<Option<Vec<usize>>>();
        let Some(slots) = slots else {
            candle_core::bail!("the model's parameters are not among the trained variables")
        };
        let hidden = mlp.hidden_index(layer)?;
        Ok(Some(TapeNet { mlp, hidden, grads: mlp.zero_grads(), stale: true, slots }))
    }
}

/// A pass of [`TapeNet`]: the tape, and the outputs as variables that the losses differentiate.
pub(super) struct TapePass {
    tape: Tape,
    logits: Var,
    hidden: Option<(usize, Var)>,
    /// Rows whose input gradient is wanted.
    input_grad: Option<usize>,
}

impl Backend for TapeNet<'_> {
    type Pass = TapePass;

    fn forward(
        &mut self,
        input: Vec<f32>,
        rows: usize,
        hidden: bool,
        input_grad: Option<usize>,
    ) -> Result<(Outputs, TapePass)> {
        let tape = self.mlp.forward_tape(input, rows, true)?;
        let classes = tape.logits().len() / rows.max(1);
        let logits = Var::from_slice(tape.logits(), (rows, classes), &Device::Cpu)?;
        let hidden = match self.hidden.filter(|_| hidden) {
            Some(i) => {
                let h = tape.hidden(i);
                Some((i, Var::from_slice(h, (rows, h.len() / rows.max(1)), &Device::Cpu)?))
            }
            None => None,
        };
        let outputs = Outputs {
            logits: logits.as_tensor().clone(),
            hidden: hidden.as_ref().map(|h| h.1.as_tensor().clone()),
            encoded: None,
        };
        Ok((outputs, TapePass { tape, logits, hidden, input_grad }))
    }

    fn backward(&mut self, loss: &Tensor, passes: &[&TapePass], input_grad: bool) -> Result<Option<Array2<f32>>> {
        let grads = loss.backward()?;
        let mut gx = None;
        for (k, pass) in passes.iter().enumerate() {
            let want = match (k, input_grad) {
                (0, true) => pass.input_grad,
                _ => None,
            };
            if let Some(mut g) = self.backprop(pass, &grads, want.is_some())? {
                if let Some(n) = want {
                    let d = pass.tape.input().len() / pass.tape.rows().max(1);
                    g.truncate(n * d);
                    gx = Some(Array2::from_shape_vec((n, d), g).map_err(|e| candle_core::Error::Msg(e.to_string()))?);
                }
            }
        }
        Ok(gx)
    }

    fn update(&mut self, optimizer: &mut Optimizer) -> Result<()> {
        if self.stale {
            candle_core::bail!("no gradient reached the model's parameters");
        }
        self.stale = true;
        optimizer.step_slices(self.slots.iter().copied().zip(self.grads.iter().map(Vec::as_slice)))
    }
}

impl TapeNet<'_> {
    /// Backpropagates the losses' gradients in `grads` with respect to a pass's logits (and hidden
    /// layer) through its tape, adding into the parameter gradients; returns `∂L/∂x` if `want_input`.
    fn backprop(&mut self, pass: &TapePass, grads: &GradStore, want_input: bool) -> Result<Option<Vec<f32>>> {
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let dh = match pass.hidden.as_ref().and_then(|(i, v)| grads.get(v.as_tensor()).map(|g| (*i, g))) {
            Some((i, g)) => Some((i, flat(g)?)),
            None => None,
        };
        let dl = match grads.get(pass.logits.as_tensor()) {
            Some(g) => flat(g)?,
            None if dh.is_some() || want_input => vec![0.0; pass.tape.logits().len()],
            None => return Ok(None),
        };
        let dh = dh.as_ref().map(|(i, g)| (*i, g.as_slice()));
        let dx = self.mlp.backward_tape(&pass.tape, &dl, dh, &mut self.grads, !self.stale, want_input)?;
        self.stale = false;
        Ok(dx)
    }
}
