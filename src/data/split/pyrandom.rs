//! Python's `random` module generator (CPython's MT19937), bit for bit, so that NSL's preprocessing
//! scripts (`random.seed(1)` then `random.uniform(0, 1)` per row) can be reproduced exactly.
//!
//! References: Matsumoto & Nishimura's `mt19937ar.c` (`init_genrand`, `init_by_array`,
//! `genrand_int32`) and CPython's `Modules/_randommodule.c` (`random_seed`, `random_random`).

/// Degree of recurrence: the state holds `N` words.
const N: usize = 624;
/// Middle word offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The generator behind Python's `random.random()`.
pub(crate) struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl PyRandom {
    /// The state after Python's `random.seed(seed)` for a non-negative integer `seed`: CPython splits
    /// the seed into 32-bit words, least significant first (one word for 0), and calls `init_by_array`.
    pub(crate) fn new(seed: u64) -> Self {
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        if high == 0 {
            Self::from_key(&[low])
        } else {
            Self::from_key(&[low, high])
        }
    }

    /// `init_genrand(s)`.
    fn from_seed(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            state[i] = 1_812_433_253u32.wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30)).wrapping_add(i as u32);
        }
        PyRandom { state, index: N }
    }

    /// `init_by_array(key)`.
    fn from_key(key: &[u32]) -> Self {
        let mut rng = Self::from_seed(19_650_218);
        let mt = &mut rng.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        rng
    }

    /// `genrand_int32()`: the next 32 random bits (Python's `getrandbits(32)`).
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Regenerates the `N` words of state.
    fn twist(&mut self) {
        let mt = &mut self.state;
        for k in 0..N {
            let y = (mt[k] & UPPER_MASK) | (mt[(k + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 0 { 0 } else { MATRIX_A };
            mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// Python's `random.random()`: a float in [0, 1) with 53 random bits,
    /// `((a >> 5) · 2²⁶ + (b >> 6)) / 2⁵³` for two consecutive 32-bit outputs `a`, `b`.
    pub(crate) fn random(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Python's `random.uniform(a, b)` = `a + (b - a) · random()`.
    pub(crate) fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `python3 -c 'import random; random.seed(SEED); print([random.random() for _ in range(5)])'`
    /// (CPython 3, whose `random` has been unchanged since 3.2).
    fn first_five(seed: u64) -> [f64; 5] {
        let mut rng = PyRandom::new(seed);
        std::array::from_fn(|_| rng.random())
    }

    #[test]
    fn matches_python_seed_1() {
        // random.seed(1); [random.random() for _ in range(5)]
        let expected =
            [0.13436424411240122, 0.8474337369372327, 0.763774618976614, 0.2550690257394217, 0.49543508709194095];
        assert_eq!(first_five(1), expected);
    }

    #[test]
    fn matches_python_seed_0() {
        // random.seed(0); [random.random() for _ in range(5)]
        let expected =
            [0.8444218515250481, 0.7579544029403025, 0.420571580830845, 0.25891675029296335, 0.5112747213686085];
        assert_eq!(first_five(0), expected);
    }

    #[test]
    fn matches_python_seed_12345() {
        // random.seed(12345); [random.random() for _ in range(5)]
        let expected =
            [0.41661987254534116, 0.010169169457068361, 0.8252065092537432, 0.2986398551995928, 0.3684116894884757];
        assert_eq!(first_five(12345), expected);
    }

    #[test]
    fn matches_python_seeds_above_32_bits() {
        // random.seed(2**40 + 7); [random.random() for _ in range(5)]
        let expected =
            [0.6137037779936511, 0.8149162973309487, 0.9450115087592873, 0.5703906991004561, 0.47592409887048936];
        assert_eq!(first_five((1 << 40) + 7), expected);
        // random.seed(2**64 - 1); [random.random() for _ in range(5)]
        let expected =
            [0.021825695401270107, 0.3380953268613758, 0.21196748656082065, 0.6151259995625727, 0.9195709817171983];
        assert_eq!(first_five(u64::MAX), expected);
    }

    #[test]
    fn matches_python_getrandbits() {
        // random.seed(1); [random.getrandbits(32) for _ in range(3)]
        let mut rng = PyRandom::new(1);
        assert_eq!([rng.next_u32(), rng.next_u32(), rng.next_u32()], [577090037, 2444712010, 3639700191]);
    }

    #[test]
    fn keeps_matching_after_the_state_is_regenerated() {
        // random.seed(1); [random.random() for _ in range(1000)][-1]  (needs several twists)
        let mut rng = PyRandom::new(1);
        let last = (0..1000).map(|_| rng.random()).last();
        assert_eq!(last, Some(PYTHON_SEED_1_1000TH));
    }

    /// `python3 -c 'import random; random.seed(1); print([random.random() for _ in range(1000)][-1])'`
    const PYTHON_SEED_1_1000TH: f64 = 0.7062615472551386;
}
