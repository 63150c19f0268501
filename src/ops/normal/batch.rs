//! Branch-free, vectorisable evaluation of the signed tail and the density over
//! a slice, used by the bKDE kernels.
//!
//! Cody's approximations as in the scalar functions, but every lane computes
//! the small- and middle-range rationals and selects one (a single division),
//! and exp(−y²/2) is evaluated without a libm call: y is split as
//! y = y_h + y_l with y_h² exact (26-bit y_h), the exact part −y_h²/2 is
//! reduced by n·ln 2 (Cody–Waite), and exp(r), |r| ≤ 0.35, is a degree-13
//! Taylor polynomial (truncation < 1e-17). The whole loop is then straight-line
//! arithmetic that LLVM vectorises; on x86-64 it is compiled a second time with
//! AVX2+FMA and chosen at run time.

use super::{A, B, C, D, FRAC_1_SQRT_2PI, SMALL};

/// Beyond this |z| the batch evaluator returns a tail and density of 0
/// (Φ(−37.5) ≈ 4.6e-308, at the edge of the normal f64 range).
pub const BATCH_ZERO_BEYOND: f64 = 37.5;

const LN2_HI: f64 = 6.931_471_803_691_238_2e-1; // 0x3FE62E42FEE00000: n·LN2_HI exact for |n| < 2^11
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// 1.5·2^52: adding it rounds to an integer held in the low mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// exp(−y²/2) for 0 ≤ y ≤ 37.5, relative error ~2 ulp.
#[inline(always)]
fn gauss_poly(y: f64) -> f64 {
    // y_h: y with the low 27 mantissa bits cleared, so y_h² is exact
    let yh = f64::from_bits(y.to_bits() & 0xFFFF_FFFF_F800_0000);
    let yl = y - yh;
    let x = -0.5 * (yh * yh); // exact
    let xl = -0.5 * (yl * (y + yh)); // the small rest of −y²/2
    let t = x * INV_LN2 + ROUNDER;
    let n = t - ROUNDER; // round(x / ln 2), exact integer in f64
    let ni = (t.to_bits() as i64).wrapping_sub(ROUNDER.to_bits() as i64);
    let r = (x - n * LN2_HI) - n * LN2_LO + xl;
    // Taylor series of exp(r), |r| ≤ 0.35 + |xl|
    let mut e = 1.0 / 6_227_020_800.0; // 1/13!
    e = e * r + 1.0 / 479_001_600.0;
    e = e * r + 1.0 / 39_916_800.0;
    e = e * r + 1.0 / 3_628_800.0;
    e = e * r + 1.0 / 362_880.0;
    e = e * r + 1.0 / 40_320.0;
    e = e * r + 1.0 / 5_040.0;
    e = e * r + 1.0 / 720.0;
    e = e * r + 1.0 / 120.0;
    e = e * r + 1.0 / 24.0;
    e = e * r + 1.0 / 6.0;
    e = e * r + 0.5;
    e = e * r + 1.0;
    e = e * r + 1.0;
    // 2^n for n ≥ −1022 (guaranteed by the caller's y ≤ 37.5 via the select)
    let scale = f64::from_bits(ni.max(-1022).wrapping_add(1023).wrapping_shl(52) as u64);
    e * scale
}

/// Signed tail (Φ(z) for z ≤ 0, Φ(z) − 1 for z > 0) and φ(z), branch-free.
///
/// Cody's middle-range rational is used for every |z| > 0.674 (not only up to
/// √32): its relative error grows to ~1e-11 at |z| = 10, where the tail is
/// below 1e-23, so the *absolute* error stays below 1e-16 everywhere — which
/// is what a sum of kernel masses needs — and one division per lane suffices.
#[inline(always)]
fn lane(z: f64) -> (f64, f64) {
    let y = z.abs();
    let yc = y.min(BATCH_ZERO_BEYOND);
    let g = gauss_poly(yc);
    // small range: Q = 1/2 − y·Ns(y²)/Ds(y²)
    let ysq = yc * yc;
    let mut ns = A[4] * ysq;
    let mut ds = ysq;
    for i in 0..3 {
        ns = (ns + A[i]) * ysq;
        ds = (ds + B[i]) * ysq;
    }
    let ns = yc * (ns + A[3]);
    let ds = ds + B[3];
    // beyond: Q = g·Nm(y)/Dm(y)
    let mut nm = C[8] * yc;
    let mut dm = yc;
    for i in 0..7 {
        nm = (nm + C[i]) * yc;
        dm = (dm + D[i]) * yc;
    }
    let nm = nm + C[7];
    let dm = dm + D[7];

    let small = y <= SMALL;
    let ratio = if small { ns } else { nm } / if small { ds } else { dm };
    let q = if small { 0.5 - ratio } else { g * ratio };
    let beyond = y > BATCH_ZERO_BEYOND;
    let q = if beyond { 0.0 } else { q };
    let p = if beyond { 0.0 } else { g * FRAC_1_SQRT_2PI };
    let t = if z > 0.0 { -q } else { q };
    (t, p)
}

/// The loop behind [`signed_tail_pdf_batch`], for callers that are compiled
/// with wider vector units themselves (inlined into them, it vectorises for
/// their target features instead of the baseline's).
#[inline(always)]
pub(crate) fn run(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    let n = z.len().min(t.len()).min(p.len());
    let (z, t, p) = (&z[..n], &mut t[..n], &mut p[..n]);
    for k in 0..n {
        let (a, b) = lane(z[k]);
        t[k] = a;
        p[k] = b;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    run(z, t, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_avx512(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    run(z, t, p)
}

/// For each k: `t[k]` = signed tail at `z[k]` (see [`super::signed_tail`])
/// and `p[k]` = φ(z[k]); the shortest of the three lengths is used. Accuracy
/// (tested against mpmath): φ to a few ulp for |z| ≤ 37.5; the tail to ≤ 1e-14
/// relative for |z| ≤ 6 and ≤ 1e-16·|tail|/Φ(−6) absolute beyond (relative
/// ≲ 1e-11 at |z| = 10); for |z| > 37.5 both are 0 (the true tail is
/// < 5e-308), and ±∞ gives the limits (tail 0, density 0). Inputs must not
/// be NaN.
pub fn signed_tail_pdf_batch(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU supports the features this copy was compiled for.
            unsafe { run_avx512(z, t, p) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features this copy was compiled for.
            unsafe { run_avx2(z, t, p) };
            return;
        }
    }
    run(z, t, p)
}
