//! The shapes of one convolution and how its batch is grouped for the GEMMs.

use candle_core::{bail, Result};

/// A GEMM below this many output columns runs far from peak, so images with fewer output
/// positions are grouped (e.g. 3×3 outputs: 15 images per GEMM).
const MIN_GEMM_COLS: usize = 128;

/// The largest pool window (fused into a convolution or not): offsets within a window fit in a byte.
pub(super) const MAX_POOL: usize = 16;

/// Where the channels of an image tensor are: `First`, NCHW `[B, C, H, W]` (candle's layout, and
/// that of the public layers), or `Last`, NHWC `[B, H, W, C]`.
///
/// A CNN keeps its activations channels-last between convolutions (see `Cnn`): im2col then copies
/// `KH` runs of `KW·C` contiguous values per output position (96 for the 3×3 convolution of 32
/// channels in NSL's CNN) instead of `C·KH·KW` runs of a row's few values, col2im adds back along
/// the same runs, and the pool is a maximum over rows of channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    /// NCHW.
    First,
    /// NHWC.
    Last,
}

/// The shapes of one convolution (and of the max-pool fused after it), and how the batch is grouped.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConvDims {
    pub(super) b: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    /// Pool window (1: no pooling) and the pooled height and width.
    pub(super) pool: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    /// Images per group (one GEMM each).
    pub(super) group: usize,
    /// The input's and the output's layouts.
    pub(super) input: Channels,
    pub(super) output: Channels,
}

impl ConvDims {
    /// The dims for an input of shape `x`, weights of shape `w` and a `pool × pool` max-pool after
    /// the convolution (1: none), checked, with the batch grouped for the current rayon pool. The
    /// input `x` is laid out as `input` (`[B, C, H, W]` or `[B, H, W, C]`), the output as `output`.
    pub(super) fn new(x: &[usize], w: &[usize], pool: usize, input: Channels, output: Channels) -> Result<Self> {
        let (x, w) = match (input, x) {
            (Channels::First, _) => (x.to_vec(), w),
            (Channels::Last, &[b, h, wi, c]) => (vec![b, c, h, wi], w),
            (Channels::Last, _) => bail!("fast_conv2d: channels-last input {x:?} must be rank 4 ([B, H, W, C])"),
        };
        if (input, output) == (Channels::Last, Channels::First) {
            bail!("fast_conv2d: a channels-last input gives a channels-last output");
        }
        let ([b, c, h, wi], [o, wc, kh, kw]) = (&x[..], w) else {
            bail!("fast_conv2d: input {x:?} and weights {w:?} must both be rank 4 ([B, C, H, W], [O, C, KH, KW])");
        };
        if c != wc {
            bail!("fast_conv2d: input {x:?} has {c} channels but the weights {w:?} expect {wc}");
        }
        if *kh == 0 || *kw == 0 || h < kh || wi < kw {
            bail!("fast_conv2d: kernel {kh}×{kw} does not fit input images of {h}×{wi} (input {x:?})");
        }
        let (oh, ow) = (h - kh + 1, wi - kw + 1);
        if pool == 0 || pool > MAX_POOL || oh < pool || ow < pool {
            bail!("fast_conv2d: pool window {pool}×{pool} does not fit the convolution's {oh}×{ow} output");
        }
        // As few groups as keep each GEMM at least MIN_GEMM_COLS wide, rounded up to a multiple of
        // the thread count, then images spread evenly over them (e.g. 32 images of 3×3 outputs on
        // 2 threads: 4 groups of 8 rather than 15 + 15 + 2).
        let threads = rayon::current_num_threads().max(1);
        let cols = pool * pool * (oh / pool) * (ow / pool);
        let mut groups = b.div_ceil(MIN_GEMM_COLS.div_ceil(cols)).max(1);
        if groups >= threads {
            groups = groups.div_ceil(threads) * threads;
        }
        let group = b.div_ceil(groups).max(1);
        let (b, c, h, w, o, kh, kw) = (*b, *c, *h, *wi, *o, *kh, *kw);
        Ok(ConvDims { b, c, h, w, o, kh, kw, pool, ph: oh / pool, pw: ow / pool, group, input, output })
    }

    /// GEMM columns per image: the convolution output positions that some pool window reads,
    /// `pool² · PH · PW` (all `OH · OW` positions without a pool), in window-major order: column
    /// `q·PH·PW + i·PW + j`, `q = p·pool + r`, is position `(i·pool + p, j·pool + r)`, the `q`-th
    /// element of pool window `(i, j)`. Each pool window's elements then lie `PH·PW` apart, so
    /// the pool is an elementwise maximum of `pool²` contiguous blocks, and rows and columns that no
    /// window reads (the 11th of an 11×11 output pooled by 2) are never computed.
    pub(super) fn n(&self) -> usize {
        self.pool * self.pool * self.out_n()
    }

    /// Width of one row of an input plane split by column phase (see `forward::split_phases`):
    /// `⌈W / pool⌉`.
    pub(super) fn phase_w(&self) -> usize {
        self.w.div_ceil(self.pool)
    }

    /// Op output positions per image (after the pool, if any).
    pub(super) fn out_n(&self) -> usize {
        self.ph * self.pw
    }

    /// Rows of the im2col matrix (the GEMM's inner dimension in the forward).
    pub(super) fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Values of one input image.
    pub(super) fn image_in(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Values of one op output image, `[O, PH, PW]`.
    pub(super) fn image_out(&self) -> usize {
        self.o * self.out_n()
    }

    /// The op's output shape (in its layout).
    pub(super) fn out_shape(&self) -> [usize; 4] {
        match self.output {
            Channels::First => [self.b, self.o, self.ph, self.pw],
            Channels::Last => [self.b, self.ph, self.pw, self.o],
        }
    }

    /// The convolution output position `(y, x)` of GEMM column (or, channels-last, row) `r` of an
    /// image, in the window-major order of [`ConvDims::n`].
    #[inline(always)]
    pub(super) fn position(&self, r: usize) -> (usize, usize) {
        let (s, pn) = (self.pool, self.out_n());
        let (q, u) = (r / pn, r % pn);
        ((u / self.pw) * s + q / s, (u % self.pw) * s + q % s)
    }

    /// Number of groups of images.
    pub(super) fn groups(&self) -> usize {
        self.b.div_ceil(self.group)
    }

    /// Images in group `g` (the last one may be smaller).
    pub(super) fn images(&self, g: usize) -> usize {
        self.group.min(self.b - g * self.group)
    }

    /// Whether groups run in parallel (single-threaded GEMMs), or one after the other with
    /// multi-threaded GEMMs (when there are fewer groups than threads).
    pub(super) fn parallel_groups(&self) -> bool {
        self.groups() >= rayon::current_num_threads()
    }
}
