//! Branch-free masks of a gradient, shared by the backward pass and the pool's gradient scatter
//! (a leaf module, so that `backward` and `pool` need not import each other).

/// `g` if `keep`, else 0, as a bit mask so that loops vectorize (a branch on data would be
/// mispredicted half the time).
#[inline(always)]
pub(super) fn keep_if(g: f32, keep: bool) -> f32 {
    f32::from_bits(g.to_bits() & 0u32.wrapping_sub(u32::from(keep)))
}

/// `g` where the ReLU output `y` is positive, else 0: one value of ReLU's gradient (the slice
/// version for the dense layers is `dense::relu_grad`).
#[inline(always)]
pub(super) fn through_relu(g: f32, y: f32) -> f32 {
    keep_if(g, y > 0.0)
}
