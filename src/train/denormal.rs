//! Flush-to-zero while training, as TensorFlow does on CPU.
//!
//! Adam's moments of rarely-active weights (MNIST's border pixels, Cora's rare words) decay
//! geometrically into the subnormal range, where every x86 multiply or divide touching them takes
//! a slow microcode path: without this, each epoch of an MLP on MNIST was slower than the last.
//! With the MXCSR flags FTZ and DAZ set, subnormal results and
//! inputs count as zero; values that small (< 1.2·10⁻³⁸) change no result that matters.

/// Sets flush-to-zero on every thread of the rayon pool (the caller must be one of them or be
/// idle) and restores the previous mode when dropped.
pub(crate) struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    previous: u32,
}

#[cfg(target_arch = "x86_64")]
mod imp {
    /// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) flags.
    const FTZ_DAZ: u32 = 0x8040;

    fn get() -> u32 {
        let mut csr = 0u32;
        // SAFETY: stmxcsr stores the 32-bit MXCSR register into the given location, nothing else.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr
    }

    fn set(csr: u32) {
        // SAFETY: ldmxcsr loads MXCSR from the given location; `csr` only differs from a value read
        // from the register in the FTZ/DAZ bits, which change only how subnormals are handled.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly)) };
    }

    impl super::FlushDenormals {
        pub(crate) fn new() -> Self {
            let previous = get();
            rayon::broadcast(|_| set(get() | FTZ_DAZ));
            set(previous | FTZ_DAZ);
            super::FlushDenormals { previous }
        }
    }

    impl Drop for super::FlushDenormals {
        fn drop(&mut self) {
            let flags = self.previous & FTZ_DAZ;
            rayon::broadcast(|_| set((get() & !FTZ_DAZ) | flags));
            set((get() & !FTZ_DAZ) | flags);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl FlushDenormals {
    pub(crate) fn new() -> Self {
        FlushDenormals {}
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::FlushDenormals;

    #[test]
    fn subnormal_products_become_zero_and_the_mode_is_restored() {
        let tiny = std::hint::black_box(1e-30f32);
        assert!(tiny * 1e-10 > 0.0, "subnormal results exist by default");
        {
            let _guard = FlushDenormals::new();
            assert_eq!(std::hint::black_box(tiny) * 1e-10, 0.0);
        }
        assert!(std::hint::black_box(tiny) * 1e-10 > 0.0);
    }
}
