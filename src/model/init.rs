//! Seeded weight initialization. candle's CPU random generator cannot be seeded, so the models are
//! built with candle's initializers and then overwritten here from a seeded ChaCha generator.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Re-initializes every variable of `vars` from `seed`, in name order, as Keras does by default:
/// biases (names ending in `bias`) to zero, every other tensor Glorot-uniform,
/// `U(−a, a)` with `a = sqrt(6 / (fan_in + fan_out))`, where for a dense weight `[out, in]`
/// `fan_in = in`, `fan_out = out`, and for a convolution `[out, in, kh, kw]`
/// `fan_in = in·kh·kw`, `fan_out = out·kh·kw`.
///
/// The same seed always gives the same weights.
///
/// # Errors
/// A candle error if a variable cannot be set (or the map's lock is poisoned).
pub fn glorot_init(vars: &VarMap, seed: u64) -> Result<()> {
    let data = vars.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let dims = shape.dims();
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; shape.elem_count()]
        } else {
            let (fan_in, fan_out) = fans(dims);
            let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
            (0..shape.elem_count()).map(|_| rng.random_range(-limit..=limit)).collect()
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

fn fans(dims: &[usize]) -> (usize, usize) {
    match dims {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp] => (*inp, *out),
        [out, inp, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            (inp * receptive, out * receptive)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;

    fn weights(seed: u64) -> Vec<f32> {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let layer = candle_nn::linear(30, 20, vb.pp("dense")).unwrap();
        glorot_init(&vars, seed).unwrap();
        assert!(layer.bias().unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|&b| b == 0.0));
        layer.weight().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn same_seed_same_weights_within_glorot_limit() {
        let (a, b, c) = (weights(7), weights(7), weights(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let limit = (6.0f32 / 50.0).sqrt();
        assert!(a.iter().all(|w| w.abs() <= limit));
        assert!(a.iter().any(|w| w.abs() > limit / 2.0));
    }
}
