//! On-the-fly augmentation of image batches: a random shift (crop after zero-padding) and a
//! horizontal flip, seeded so that a run is reproducible and resumable.
//!
//! # Formula
//! For an item of shape `[c, h, w]` and `crop = N`, the image is padded with `N` zeros on every side
//! and a `h × w` window is cut at an offset `(i, j)` drawn uniformly from `{0, …, 2N}²`: with the
//! shift `(s, t) = (i − N, j − N)`,
//!
//! `out[k, y, x] = in[k, y + s, x + t]` where `0 ≤ y + s < h` and `0 ≤ x + t < w`, else `0`,
//!
//! the same shift for every channel. With `flip`, the result is then mirrored left to right with
//! probability ½: `out[k, y, x] ← out[k, y, w − 1 − x]`. This is torchvision's
//! `RandomCrop(size, padding=N)` followed by `RandomHorizontalFlip()`.
//!
//! ```
//! use nsl::augment::AugmentConfig;
//!
//! let config: AugmentConfig = "crop=1".parse().unwrap();
//! assert_eq!(config, AugmentConfig { crop: 1, flip: false });
//! // One 1 × 3 × 3 image holding 1…9: shifted by at most a pixel, so every value is one of the
//! // image's or a padding zero, and the center pixel 5 is still there.
//! let mut batch: Vec<f32> = (1..=9).map(|v| v as f32).collect();
//! config.apply(&mut batch, &[1, 3, 3], 0, 1, 0).unwrap();
//! assert!(batch.iter().all(|&v| (0.0..=9.0).contains(&v) && v.fract() == 0.0));
//! assert!(batch.contains(&5.0));
//! assert!(AugmentConfig::default().is_off());
//! ```
//!
//! # Randomness
//! Every batch draws from a ChaCha8 stream keyed by the run's seed, the epoch and the batch's
//! index (never from a stream carried across batches), one `(i, j)` pair and then, with `flip`,
//! one coin per image, in the batch's order. So a run gives the same images on any thread count,
//! and a run resumed after an epoch gives those of an uninterrupted one without saving anything.
//!
//! # Differences from NSL
//! NSL has no augmentation (its tutorials feed fixed `tf.data` pipelines); this follows
//! torchvision's transforms, applied to the training batch's centers only (neighbors, validation
//! and test samples are never changed). Off by default, and then no draw is made and no value is
//! touched: a run's weights are byte for byte those of a run without it.

use crate::config::{key_values, ConfigError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The augmentation of training images. `Default`: none (`crop` 0, no flip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Zero-padding on each side before a random crop back to the image's size: a random shift by
    /// up to `crop` pixels in each direction. Default 0 (none).
    pub crop: usize,
    /// Mirror each image left to right with probability ½. Default false (not for digits or text).
    pub flip: bool,
}

/// Why a batch cannot be augmented.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AugmentError {
    /// The samples are not images of shape `[channels, height, width]`.
    #[error(
        "augmentation needs image samples of item shape [channels, height, width], not {shape:?} \
         (convert images with `nsl convert`, which keeps their shape)"
    )]
    NotImages {
        /// The samples' item shape.
        shape: Vec<usize>,
    },
    /// The shift is as large as the image: a crop could hold no pixel of it.
    #[error("crop={crop} shifts by as much as the image's side ({height} × {width}): give crop < {}", height.min(width))]
    CropTooLarge {
        /// The configured crop.
        crop: usize,
        /// The image's height.
        height: usize,
        /// The image's width.
        width: usize,
    },
    /// The batch buffer is not a whole number of items.
    #[error("a batch of {len} values is not a whole number of items of shape {shape:?}")]
    BatchLength {
        /// The buffer's length.
        len: usize,
        /// The item shape.
        shape: Vec<usize>,
    },
}

const KEYS: &[&str] = &["crop", "flip"];

/// Keys the per-batch stream apart from the run's other seeded streams.
const DOMAIN: u64 = 0x0061_7567_6d65_6e74; // "augment"

impl AugmentConfig {
    /// True when it changes nothing (the default).
    pub fn is_off(&self) -> bool {
        self.crop == 0 && !self.flip
    }

    /// Parses `crop=N,flip` (`flip` alone or `flip=true|false`; `none` for no augmentation):
    /// `key=value` pairs separated by commas, as the other `--…` lists.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the value: an unknown key, a crop that is not a whole
    /// number ≥ 0, a flip that is not true or false.
    pub fn from_kv(spec: &str) -> Result<Self, ConfigError> {
        let mut config = AugmentConfig::default();
        if spec.trim() == "none" {
            return Ok(config);
        }
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if pair == "flip" {
                config.flip = true;
                continue;
            }
            for kv in key_values("--augment", pair) {
                let kv = kv?;
                match kv.key.as_str() {
                    "crop" => config.crop = kv.parse("a number of pixels ≥ 0")?,
                    "flip" => config.flip = kv.parse("true or false")?,
                    _ => return Err(kv.unknown(KEYS)),
                }
            }
        }
        Ok(config)
    }

    /// Checks that items of `shape` can be augmented: `[c, h, w]` (unless augmentation is off,
    /// which fits any shape), with `crop` below both sides.
    ///
    /// # Errors
    /// [`AugmentError::NotImages`] or [`AugmentError::CropTooLarge`].
    pub fn check_shape(&self, shape: &[usize]) -> Result<(), AugmentError> {
        if self.is_off() {
            return Ok(());
        }
        let &[_, height, width] = shape else {
            return Err(AugmentError::NotImages { shape: shape.to_vec() });
        };
        if self.crop > 0 && (self.crop >= height || self.crop >= width) {
            return Err(AugmentError::CropTooLarge { crop: self.crop, height, width });
        }
        Ok(())
    }

    /// Augments, in place, a batch of items of shape `[c, h, w]` stored one after another
    /// (row-major), with the stream of (`seed`, `epoch`, `batch`) (see the module doc). Does
    /// nothing when off.
    ///
    /// # Errors
    /// Those of [`AugmentConfig::check_shape`], and [`AugmentError::BatchLength`] when `items` is
    /// not a whole number of items.
    pub fn apply(
        &self,
        items: &mut [f32],
        shape: &[usize],
        seed: u64,
        epoch: usize,
        batch: usize,
    ) -> Result<(), AugmentError> {
        if self.is_off() {
            return Ok(());
        }
        self.check_shape(shape)?;
        let (channels, height, width) = (shape[0], shape[1], shape[2]);
        let size = channels * height * width;
        if size == 0 || !items.len().is_multiple_of(size) {
            return Err(AugmentError::BatchLength { len: items.len(), shape: shape.to_vec() });
        }
        let mut rng = ChaCha8Rng::from_seed(stream_key(seed, epoch, batch));
        let mut scratch = vec![0.0f32; size];
        // (i64: rand draws the same values on every platform, unlike for isize.)
        let n = self.crop as i64;
        for item in items.chunks_exact_mut(size) {
            let (s, t) = match self.crop {
                0 => (0, 0),
                _ => (rng.random_range(-n..=n) as isize, rng.random_range(-n..=n) as isize),
            };
            let mirror = self.flip && rng.random_bool(0.5);
            if (s, t) == (0, 0) && !mirror {
                continue;
            }
            scratch.fill(0.0);
            for k in 0..channels {
                let plane = k * height * width;
                for y in 0..height {
                    let from_y = y as isize + s;
                    if from_y < 0 || from_y >= height as isize {
                        continue;
                    }
                    let from_row = plane + from_y as usize * width;
                    for x in 0..width {
                        let from_x = x as isize + t;
                        if from_x < 0 || from_x >= width as isize {
                            continue;
                        }
                        let to_x = if mirror { width - 1 - x } else { x };
                        scratch[plane + y * width + to_x] = item[from_row + from_x as usize];
                    }
                }
            }
            item.copy_from_slice(&scratch);
        }
        Ok(())
    }
}

/// The 32-byte ChaCha key of one batch's stream.
fn stream_key(seed: u64, epoch: usize, batch: usize) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (slot, word) in key.chunks_exact_mut(8).zip([seed, DOMAIN, epoch as u64, batch as u64]) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    key
}

impl std::str::FromStr for AugmentConfig {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AugmentConfig::from_kv(s)
    }
}

/// `crop=N,flip` (the form [`AugmentConfig::from_kv`] reads), `none` when off.
impl fmt::Display for AugmentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.crop, self.flip) {
            (0, false) => f.write_str("none"),
            (0, true) => f.write_str("flip"),
            (n, false) => write!(f, "crop={n}"),
            (n, true) => write!(f, "crop={n},flip"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 × 3 × 3 image holding 1…9 row by row.
    fn digits() -> Vec<f32> {
        (1..=9).map(|v| v as f32).collect()
    }

    /// The first `(shift, mirror)` the stream of (seed, epoch, batch) draws, as `apply` does.
    fn first_draw(config: AugmentConfig, seed: u64, epoch: usize, batch: usize) -> ((isize, isize), bool) {
        let mut rng = ChaCha8Rng::from_seed(stream_key(seed, epoch, batch));
        let n = config.crop as i64;
        let shift = match config.crop {
            0 => (0, 0),
            _ => (rng.random_range(-n..=n) as isize, rng.random_range(-n..=n) as isize),
        };
        (shift, config.flip && rng.random_bool(0.5))
    }

    /// A (seed, epoch) whose first draw is `want`, searched over seeds.
    fn seed_for(config: AugmentConfig, want: ((isize, isize), bool)) -> u64 {
        (0..10_000).find(|&s| first_draw(config, s, 1, 0) == want).expect("some seed draws it")
    }

    #[test]
    fn a_shift_moves_pixels_and_pads_with_zeros() {
        let config = AugmentConfig { crop: 1, flip: false };
        // out[y, x] = in[y + s, x + t]: with (s, t) = (1, -1) row y takes row y + 1, shifted right.
        let seed = seed_for(config, ((1, -1), false));
        let mut image = digits();
        config.apply(&mut image, &[1, 3, 3], seed, 1, 0).unwrap();
        assert_eq!(image, vec![0.0, 4.0, 5.0, 0.0, 7.0, 8.0, 0.0, 0.0, 0.0]);
        let seed = seed_for(config, ((-1, 0), false));
        let mut image = digits();
        config.apply(&mut image, &[1, 3, 3], seed, 1, 0).unwrap();
        assert_eq!(image, vec![0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn a_flip_mirrors_each_row_of_every_channel() {
        let config = AugmentConfig { crop: 0, flip: true };
        let seed = seed_for(config, ((0, 0), true));
        // Two channels of 1 × 3: the same mirror for both.
        let mut image = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        config.apply(&mut image, &[2, 1, 3], seed, 1, 0).unwrap();
        assert_eq!(image, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        let seed = seed_for(config, ((0, 0), false));
        let mut image = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        config.apply(&mut image, &[2, 1, 3], seed, 1, 0).unwrap();
        assert_eq!(image, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn shift_then_flip() {
        let config = AugmentConfig { crop: 1, flip: true };
        let seed = seed_for(config, ((0, 1), true));
        // Shift: rows [2 3 0] [5 6 0] [8 9 0]; then mirrored.
        let mut image = digits();
        config.apply(&mut image, &[1, 3, 3], seed, 1, 0).unwrap();
        assert_eq!(image, vec![0.0, 3.0, 2.0, 0.0, 6.0, 5.0, 0.0, 9.0, 8.0]);
    }

    #[test]
    fn every_shift_is_drawn_and_the_stream_depends_on_epoch_and_batch() {
        let config = AugmentConfig { crop: 2, flip: false };
        let mut seen = std::collections::HashSet::new();
        for batch in 0..400 {
            seen.insert(first_draw(config, 0, 1, batch).0);
        }
        assert_eq!(seen.len(), 25, "all of {{-2, …, 2}}²");
        let run = |epoch, batch| {
            let mut items: Vec<f32> = (0..8 * 9).map(|v| v as f32).collect();
            config.apply(&mut items, &[1, 3, 3], 7, epoch, batch).unwrap();
            items
        };
        assert_eq!(run(1, 0), run(1, 0));
        assert_ne!(run(1, 0), run(2, 0));
        assert_ne!(run(1, 0), run(1, 1));
    }

    #[test]
    fn off_touches_nothing_and_fits_any_shape() {
        let mut items = vec![f32::NAN, 1.0, 2.0];
        AugmentConfig::default().apply(&mut items, &[3], 0, 1, 0).unwrap();
        assert!(items[0].is_nan() && items[1..] == [1.0, 2.0]);
    }

    #[test]
    fn bad_shapes_and_values_are_errors() {
        let config = AugmentConfig { crop: 2, flip: false };
        assert_eq!(config.check_shape(&[784]), Err(AugmentError::NotImages { shape: vec![784] }));
        assert_eq!(config.check_shape(&[1, 2, 28]), Err(AugmentError::CropTooLarge { crop: 2, height: 2, width: 28 }));
        assert!(config.check_shape(&[3, 32, 32]).is_ok());
        let mut items = vec![0.0; 10];
        assert_eq!(
            config.apply(&mut items, &[1, 3, 3], 0, 1, 0),
            Err(AugmentError::BatchLength { len: 10, shape: vec![1, 3, 3] })
        );
        assert_eq!(
            "crop=2,flop=1".parse::<AugmentConfig>().unwrap_err().to_string(),
            "unknown key `flop` in --augment (known: crop, flip)"
        );
        assert_eq!(
            "crop=-1".parse::<AugmentConfig>().unwrap_err().to_string(),
            "invalid value `-1` for `crop` in --augment: expected a number of pixels ≥ 0"
        );
        assert!("crop".parse::<AugmentConfig>().is_err());
    }

    #[test]
    fn parses_and_prints() {
        for (text, config) in [
            ("crop=4,flip", AugmentConfig { crop: 4, flip: true }),
            ("flip", AugmentConfig { crop: 0, flip: true }),
            ("crop=2", AugmentConfig { crop: 2, flip: false }),
            ("none", AugmentConfig::default()),
        ] {
            assert_eq!(text.parse::<AugmentConfig>().unwrap(), config);
            assert_eq!(config.to_string(), text);
        }
        assert_eq!("crop=1, flip=false".parse::<AugmentConfig>().unwrap(), AugmentConfig { crop: 1, flip: false });
    }
}
