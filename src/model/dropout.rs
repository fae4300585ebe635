//! Dropout with a seeded mask (candle's own dropout draws from an unseedable generator).

use candle_core::{Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;

/// Inverted dropout: in training, each value is zeroed with probability `p` and the others are
/// scaled by `1 / (1 − p)`; in evaluation the input passes unchanged. The masks come from a ChaCha
/// generator seeded at construction, so a run is reproducible.
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    rng: Mutex<ChaCha8Rng>,
}

impl Dropout {
    /// Dropout with rate `p` in `[0, 1)`, masks drawn from `seed`.
    pub fn new(p: f32, seed: u64) -> Self {
        Dropout { p, rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)) }
    }

    /// The position of the mask generator in its stream (ChaCha words drawn so far): with
    /// [`Dropout::set_position`], what a resumed run needs to draw the masks an uninterrupted one
    /// would.
    ///
    /// # Errors
    /// If the generator's lock is poisoned.
    pub fn position(&self) -> Result<u128> {
        Ok(self.rng.lock().map_err(|_| candle_core::Error::Msg("dropout lock poisoned".into()))?.get_word_pos())
    }

    /// Moves the mask generator to `position` (see [`Dropout::position`]).
    ///
    /// # Errors
    /// If the generator's lock is poisoned.
    pub fn set_position(&self, position: u128) -> Result<()> {
        self.rng.lock().map_err(|_| candle_core::Error::Msg("dropout lock poisoned".into()))?.set_word_pos(position);
        Ok(())
    }

    /// [`Dropout::position`] as a model's list of random-stream positions
    /// ([`Model::rng_positions`](super::Model::rng_positions) of a model whose one stream is this).
    ///
    /// # Errors
    /// If the generator's lock is poisoned.
    pub(crate) fn positions(&self) -> Result<Vec<u128>> {
        Ok(vec![self.position()?])
    }

    /// Restores [`Dropout::positions`].
    ///
    /// # Errors
    /// Not exactly one position, or a poisoned lock.
    pub(crate) fn set_positions(&self, positions: &[u128]) -> Result<()> {
        match positions {
            [p] => self.set_position(*p),
            _ => candle_core::bail!("the model has one random stream (dropout), got {} positions", positions.len()),
        }
    }

    /// Applies dropout when `train` is true.
    ///
    /// # Errors
    /// A candle error from the multiplication, or if `p` is not in `[0, 1)`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self.mask(xs.elem_count(), train)? {
            Some(mask) => xs * Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?,
            None => Ok(xs.clone()),
        }
    }

    /// The next mask for `len` values (`0` or `1 / (1 − p)` each), or `None` when dropout is off
    /// (`train` false or `p` 0).
    ///
    /// # Errors
    /// If `p` is not in `[0, 1)`.
    pub(crate) fn mask(&self, len: usize, train: bool) -> Result<Option<Vec<f32>>> {
        if !train || self.p == 0.0 {
            return Ok(None);
        }
        if !(0.0..1.0).contains(&self.p) {
            candle_core::bail!("dropout rate {} is not in [0, 1)", self.p);
        }
        let scale = 1.0 / (1.0 - self.p);
        // A value is dropped when a uniform 32-bit draw is below p·2³²; drawn in bulk.
        let threshold = (f64::from(self.p) * 4_294_967_296.0) as u64;
        let mut bits = vec![0u32; len];
        self.rng.lock().map_err(|_| candle_core::Error::Msg("dropout lock poisoned".into()))?.fill(&mut bits[..]);
        Ok(Some(bits.into_iter().map(|b| if u64::from(b) < threshold { 0.0 } else { scale }).collect()))
    }
}
