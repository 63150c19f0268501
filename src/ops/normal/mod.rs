//! Fast standard-normal CDF Φ and PDF φ, shared by the CPU kernels (and, as
//! CUDA source, by the GPU kernels).
//!
//! Φ uses W. J. Cody's rational Chebyshev approximations (ACM TOMS 715,
//! "ANORM", the algorithm behind R's `pnorm`): a rational function in x² for
//! |x| ≤ 0.674, and `exp(-x²/2)·R(|x|)` beyond, where the exponential is split
//! as `exp(-k²/512)·exp(-(x-k/16)(x+k/16)/2)` so that rounding of x² is not
//! amplified in the tail. The small tail is always computed directly (never as
//! `1 - Φ` or `0.5·(1+erf)`), so Φ(x) for x ≪ 0 keeps full relative accuracy
//! down to underflow (x ≈ −37.5).
//!
//! Measured accuracy against mpmath (tests/ops_normal.rs,
//! tests/fixtures/normal/): max relative error of Φ, 1−Φ and φ over |x| ≤ 8 is
//! a few 1e-16 in f64 (bound asserted: 1e-14) and ≤ 0.5 ulp + 1e-15 in f32
//! (bound asserted: 5e-7); the lower tail keeps ≲ 1e-15 relative down to −37.

// Coefficients are kept with the digits Cody published, so that they can be
// checked against the paper; the compiler rounds them to the nearest double.
#![allow(clippy::excessive_precision)]

/// Cody's coefficients for |x| ≤ 0.67448975: Φ(x) = 1/2 + x·P(x²)/Q(x²).
const A: [f64; 5] = [
    2.2352520354606839287,
    161.02823106855587881,
    1067.6894854603709582,
    18154.981253343561249,
    0.065682337918207449113,
];
const B: [f64; 4] = [
    47.20258190468824187,
    976.09855173777669322,
    10260.932208618978205,
    45507.789335026729956,
];
/// 0.67448975 < |x| ≤ √32: Φ(−|x|) = exp(−x²/2)·P(|x|)/Q(|x|).
const C: [f64; 9] = [
    0.39894151208813466764,
    8.8831497943883759412,
    93.506656132177855979,
    597.27027639480026226,
    2494.5375852903726711,
    6848.1904505362823326,
    11602.651437647350124,
    9842.7148383839780218,
    1.0765576773720192317e-8,
];
const D: [f64; 8] = [
    22.266688044328115691,
    235.38790178262499861,
    1519.377599407554805,
    6485.558298266760755,
    18615.571640885098091,
    34900.952721145977266,
    38912.003286093271411,
    19685.429676859990727,
];
/// |x| > √32: Φ(−|x|) = exp(−x²/2)/|x|·(1/√(2π) − P(1/x²)/Q(1/x²)/x²).
const P: [f64; 6] = [
    0.21589853405795699,
    0.1274011611602473639,
    0.022235277870649807,
    0.001421619193227893466,
    2.9112874951168792e-5,
    0.02307344176494017303,
];
const Q: [f64; 5] = [
    1.28426009614491121,
    0.468238212480865118,
    0.0659881378689285515,
    0.00378239633202758244,
    7.29751555083966205e-5,
];

pub(crate) mod batch;
mod exp_table;
pub use batch::{
    signed_tail_pdf_batch, signed_tail_pdf_batch_f32, BATCH_F32_ZERO_BEYOND, BATCH_ZERO_BEYOND,
};
use exp_table::EXP_HALF_SQ;

const SMALL: f64 = 0.67448975;
const SQRT_32: f64 = 5.656854249492380195206754896838;
/// 1/√(2π).
pub const FRAC_1_SQRT_2PI: f64 = 0.398942280401432677939946059934;
/// Beyond this |x| the small tail Φ(−|x|) underflows to 0 in f64.
const UNDERFLOW: f64 = 38.5;

#[inline(always)]
fn small_ratio(x: f64) -> f64 {
    let xsq = x * x;
    let mut num = A[4] * xsq;
    let mut den = xsq;
    for i in 0..3 {
        num = (num + A[i]) * xsq;
        den = (den + B[i]) * xsq;
    }
    x * (num + A[3]) / (den + B[3])
}

#[inline(always)]
fn mid_ratio(y: f64) -> f64 {
    let mut num = C[8] * y;
    let mut den = y;
    for i in 0..7 {
        num = (num + C[i]) * y;
        den = (den + D[i]) * y;
    }
    (num + C[7]) / (den + D[7])
}

#[inline(always)]
fn large_ratio(y: f64) -> f64 {
    let xsq = 1.0 / (y * y);
    let mut num = P[5] * xsq;
    let mut den = xsq;
    for i in 0..4 {
        num = (num + P[i]) * xsq;
        den = (den + Q[i]) * xsq;
    }
    let t = xsq * (num + P[4]) / (den + Q[4]);
    (FRAC_1_SQRT_2PI - t) / y
}

/// exp(−y²/2) for 0 ≤ y ≤ 38.5 with the rounding of y² kept out of the
/// exponent: y = k/16 + r, y² = k²/256 + (y − k/16)(y + k/16); the first
/// factor comes correctly rounded from a table, the second is one `exp` of a
/// small, accurately computed argument.
#[inline(always)]
fn gauss(y: f64) -> f64 {
    let k = ((y * 16.0) as usize).min(EXP_HALF_SQ.len() - 1);
    let ysq = k as f64 * 0.0625;
    let del = (y - ysq) * (y + ysq);
    EXP_HALF_SQ[k] * (-0.5 * del).exp()
}

/// Upper tail Q(y) = Φ(−y) = 1 − Φ(y) for y ≥ 0 (NaN propagates).
#[inline(always)]
fn upper_tail(y: f64) -> f64 {
    if y <= SMALL {
        0.5 - small_ratio(y)
    } else if y > UNDERFLOW {
        0.0
    } else if y <= SQRT_32 {
        gauss(y) * mid_ratio(y)
    } else {
        gauss(y) * large_ratio(y)
    }
}

/// Upper tail Q(y) and density φ(y) for y ≥ 0, sharing the exponential.
#[inline(always)]
fn upper_tail_pdf(y: f64) -> (f64, f64) {
    if y <= SMALL {
        (0.5 - small_ratio(y), (-0.5 * y * y).exp() * FRAC_1_SQRT_2PI)
    } else if y > UNDERFLOW {
        (0.0, 0.0)
    } else {
        let g = gauss(y);
        let r = if y <= SQRT_32 {
            mid_ratio(y)
        } else {
            large_ratio(y)
        };
        (g * r, g * FRAC_1_SQRT_2PI)
    }
}

/// Standard-normal CDF Φ(x), relative error ≲ 1e-15 everywhere it does not
/// underflow (the lower tail is computed directly, never as 1 − Φ(−x)).
#[inline]
pub fn cdf(x: f64) -> f64 {
    if x <= 0.0 {
        upper_tail(-x)
    } else {
        1.0 - upper_tail(x)
    }
}

/// Survival function 1 − Φ(x) = Φ(−x), accurate in the upper tail.
#[inline]
pub fn sf(x: f64) -> f64 {
    cdf(-x)
}

/// Standard-normal density φ(x) = exp(−x²/2)/√(2π), with the exponent split
/// so that its relative error stays at a few ulp for large |x|.
#[inline]
pub fn pdf(x: f64) -> f64 {
    let y = x.abs();
    if y <= SMALL {
        (-0.5 * y * y).exp() * FRAC_1_SQRT_2PI
    } else if y > UNDERFLOW {
        0.0
    } else {
        gauss(y) * FRAC_1_SQRT_2PI
    }
}

/// The *signed small tail* of Φ: `Φ(x)` for x ≤ 0 and `Φ(x) − 1 = −Φ(−x)` for
/// x > 0. Differences of Φ at two points are then computed without
/// cancellation: Φ(b) − Φ(a) = tail(b) − tail(a) + [a ≤ 0 < b].
#[inline(always)]
pub fn signed_tail(x: f64) -> f64 {
    if x <= 0.0 {
        upper_tail(-x)
    } else {
        -upper_tail(x)
    }
}

/// [`signed_tail`] and [`pdf`] at once (one exponential).
#[inline(always)]
pub fn signed_tail_pdf(x: f64) -> (f64, f64) {
    if x <= 0.0 {
        upper_tail_pdf(-x)
    } else {
        let (q, p) = upper_tail_pdf(x);
        (-q, p)
    }
}

/// Φ for f32 inputs: evaluated in f64 and rounded once, so the result is
/// within 0.5 ulp (plus ~1e-15 relative) of the true Φ at the f32 input.
#[inline]
pub fn cdf_f32(x: f32) -> f32 {
    cdf(x as f64) as f32
}

/// 1 − Φ for f32 inputs (see [`cdf_f32`]).
#[inline]
pub fn sf_f32(x: f32) -> f32 {
    sf(x as f64) as f32
}

/// φ for f32 inputs (see [`cdf_f32`]).
#[inline]
pub fn pdf_f32(x: f32) -> f32 {
    pdf(x as f64) as f32
}

/// Φ applied element-wise, `out[i] = Φ(xs[i])`; panics never, lengths must
/// match (extra elements of the longer slice are left untouched).
pub fn cdf_slice(xs: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = cdf(x);
    }
}

/// φ applied element-wise (see [`cdf_slice`]).
pub fn pdf_slice(xs: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = pdf(x);
    }
}

/// CUDA C source of the same Φ/φ (device functions `anagrad_signed_tail_pdf`
/// and friends), prepended to the kernels compiled with NVRTC.
pub const CUDA_SOURCE: &str = include_str!("normal.cuh");
