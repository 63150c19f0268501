//! Branch-free, vectorisable evaluation of the signed tail and the density over
//! a slice, used by the bKDE kernels.
//!
//! Cody's approximations as in the scalar functions, but every lane computes
//! the small- and middle-range rationals and selects one (a single division),
//! and exp(−y²/2) is evaluated without a libm call: y is split as
//! y = y_h + y_l with y_h² exact (26-bit y_h), the exact part −y_h²/2 is
//! reduced by n·ln 2 (Cody–Waite), and exp(r), |r| ≤ 0.35, is a degree-13
//! Taylor polynomial (truncation < 1e-17). The whole loop is then straight-line
//! arithmetic that LLVM vectorises; on x86-64 it is compiled again for AVX2
//! and AVX-512, with fused multiply-adds in the Horner steps (so those copies
//! round once per step and differ from the baseline in the last bits), and
//! chosen at run time. An f32 variant runs twice the lanes per vector for
//! kernels on f32 data.

use super::{A, B, C, D, FRAC_1_SQRT_2PI, SMALL};

/// Beyond this |z| the batch evaluator returns a tail and density of 0
/// (Φ(−37.5) ≈ 4.6e-308, at the edge of the normal f64 range).
pub const BATCH_ZERO_BEYOND: f64 = 37.5;

const LN2_HI: f64 = 6.931_471_803_691_238_2e-1; // 0x3FE62E42FEE00000: n·LN2_HI exact for |n| < 2^11
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// 1.5·2^52: adding it rounds to an integer held in the low mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// a·b + c, fused (one rounding) in the copies compiled for FMA hardware.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// [`madd`] in f32.
#[inline(always)]
fn madd32<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// exp(−y²/2) for 0 ≤ y ≤ 37.5, relative error ~2 ulp.
#[inline(always)]
fn gauss_poly<const FMA: bool>(y: f64) -> f64 {
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
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        e = madd::<FMA>(e, r, c);
    }
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
fn lane<const FMA: bool>(z: f64) -> (f64, f64) {
    let y = z.abs();
    let yc = y.min(BATCH_ZERO_BEYOND);
    let g = gauss_poly::<FMA>(yc);
    // small range: Q = 1/2 − y·Ns(y²)/Ds(y²), Horner in y²
    let ysq = yc * yc;
    let mut ns = A[4];
    let mut ds = 1.0;
    for i in 0..4 {
        ns = madd::<FMA>(ns, ysq, A[i]);
        ds = madd::<FMA>(ds, ysq, B[i]);
    }
    let ns = yc * ns;
    // beyond: Q = g·Nm(y)/Dm(y)
    let mut nm = C[8];
    let mut dm = 1.0;
    for i in 0..8 {
        nm = madd::<FMA>(nm, yc, C[i]);
        dm = madd::<FMA>(dm, yc, D[i]);
    }

    let small = y <= SMALL;
    let ratio = if small { ns } else { nm } / if small { ds } else { dm };
    let q = if small { 0.5 - ratio } else { g * ratio };
    let beyond = y > BATCH_ZERO_BEYOND;
    let q = if beyond { 0.0 } else { q };
    let p = if beyond { 0.0 } else { g * FRAC_1_SQRT_2PI };
    let t = if z > 0.0 { -q } else { q };
    (t, p)
}

/// Beyond this |z| the f32 evaluator returns a tail and density of 0
/// (Φ(−12.5) ≈ 3.7e-36, near the end of the normal f32 range).
pub const BATCH_F32_ZERO_BEYOND: f32 = 12.5;

/// ln 2 split for f32 Cody–Waite: 9 bits, so n·LN2_HI_F32 is exact.
const LN2_HI_F32: f32 = 0.693_359_375;
const LN2_LO_F32: f32 = -2.121_944_4e-4;
/// 1.5·2^23: adding it rounds an f32 to an integer in the low mantissa bits.
const ROUNDER_F32: f32 = 12_582_912.0;

/// exp(−y²/2) in f32 for 0 ≤ y ≤ 12.5, relative error ~2 ulp (the same
/// exact split of y² as in f64, with a 12-bit y_h; Taylor degree 7,
/// truncation < 6e-9).
#[inline(always)]
fn gauss_poly_f32<const FMA: bool>(y: f32) -> f32 {
    let yh = f32::from_bits(y.to_bits() & 0xFFFF_F000);
    let yl = y - yh;
    let x = -0.5 * (yh * yh); // exact
    let xl = -0.5 * (yl * (y + yh));
    let t = x * std::f32::consts::LOG2_E + ROUNDER_F32;
    let n = t - ROUNDER_F32;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUNDER_F32.to_bits() as i32);
    let r = (x - n * LN2_HI_F32) - n * LN2_LO_F32 + xl;
    let mut e = 1.0 / 5_040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        e = madd32::<FMA>(e, r, c);
    }
    // 2^n, n ≥ −113 for y ≤ 12.5
    let scale = f32::from_bits((ni.max(-126).wrapping_add(127) as u32) << 23);
    e * scale
}

/// [`lane`] in f32 arithmetic for an f64 argument z, given as its f32
/// rounding `zf`, the rest δ = z − zf (f32) and the sign s of the tail (−1
/// for z > 0, else 1): δ is put back to first order (tail + φ·δ,
/// φ·(1 − z·δ)), so the result does not suffer the rounding of z, and the
/// sign follows z itself.
#[inline(always)]
fn lane_f32<const FMA: bool>(zf: f32, dz: f32, sign: f32) -> (f32, f32) {
    let y = zf.abs();
    let yc = y.min(BATCH_F32_ZERO_BEYOND);
    let g = gauss_poly_f32::<FMA>(yc);
    // Cody's middle-range rational alone: continued down to y = 0 it is
    // still within 5e-12 of Q(y)·e^{y²/2}, far below f32 resolution
    let mut nm = C[8] as f32;
    let mut dm = 1.0f32;
    for i in 0..8 {
        nm = madd32::<FMA>(nm, yc, C[i] as f32);
        dm = madd32::<FMA>(dm, yc, D[i] as f32);
    }
    let q = g * (nm / dm);
    let p = g * FRAC_1_SQRT_2PI as f32;
    let t = madd32::<FMA>(p, dz, sign * q);
    let p = madd32::<FMA>(-p, zf * dz, p);
    // ±∞ (where δ is NaN) ends here too
    let beyond = y > BATCH_F32_ZERO_BEYOND;
    let t = if beyond { 0.0 } else { t };
    let p = if beyond { 0.0 } else { p };
    (t, p)
}

/// z → (its f32 rounding, the rest, the sign of the tail).
#[inline(always)]
fn split_f32(z: &[f64], zf: &mut [f32], dz: &mut [f32], sg: &mut [f32]) {
    for (((zv, f), d), s) in z
        .iter()
        .zip(zf.iter_mut())
        .zip(dz.iter_mut())
        .zip(sg.iter_mut())
    {
        let v = *zv as f32;
        *f = v;
        *d = (zv - v as f64) as f32;
        *s = if *zv > 0.0 { -1.0 } else { 1.0 };
    }
}

/// f32 results → f64.
#[inline(always)]
fn widen_f32(tf: &[f32], pf: &[f32], t: &mut [f64], p: &mut [f64]) {
    for (((tv, pv), a), b) in t.iter_mut().zip(p.iter_mut()).zip(tf).zip(pf) {
        *tv = *a as f64;
        *pv = *b as f64;
    }
}

/// Elements per pass of the f32 loop.
const F32_BLOCK: usize = 64;

/// The loop behind [`signed_tail_pdf_batch_f32`] (see [`run`]), in three
/// passes per block: f64 → (z_f32, δ, sign), the lanes in pure f32 (so that
/// the compiler uses as many f32 lanes as a register holds, not the f64
/// count), f32 → f64.
#[inline(always)]
pub(crate) fn run_f32<const FMA: bool>(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    let n = z.len().min(t.len()).min(p.len());
    let (z, t, p) = (&z[..n], &mut t[..n], &mut p[..n]);
    let mut zf = [0.0f32; F32_BLOCK];
    let mut dz = [0.0f32; F32_BLOCK];
    let mut sg = [0.0f32; F32_BLOCK];
    let mut tf = [0.0f32; F32_BLOCK];
    let mut pf = [0.0f32; F32_BLOCK];
    for ((zb, tb), pb) in z
        .chunks(F32_BLOCK)
        .zip(t.chunks_mut(F32_BLOCK))
        .zip(p.chunks_mut(F32_BLOCK))
    {
        // full blocks with a constant trip count (no scalar remainder loop)
        if zb.len() == F32_BLOCK {
            split_f32(&zb[..F32_BLOCK], &mut zf, &mut dz, &mut sg);
        } else {
            split_f32(zb, &mut zf, &mut dz, &mut sg);
        }
        for k in 0..F32_BLOCK {
            (tf[k], pf[k]) = lane_f32::<FMA>(zf[k], dz[k], sg[k]);
        }
        let m = zb.len();
        if m == F32_BLOCK {
            widen_f32(&tf, &pf, &mut tb[..F32_BLOCK], &mut pb[..F32_BLOCK]);
        } else {
            widen_f32(&tf[..m], &pf[..m], tb, pb);
        }
    }
}

/// The loop behind [`signed_tail_pdf_batch`], for callers that are compiled
/// with wider vector units themselves (inlined into them, it vectorises for
/// their target features instead of the baseline's).
#[inline(always)]
pub(crate) fn run<const FMA: bool>(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    let n = z.len().min(t.len()).min(p.len());
    let (z, t, p) = (&z[..n], &mut t[..n], &mut p[..n]);
    for k in 0..n {
        let (a, b) = lane::<FMA>(z[k]);
        t[k] = a;
        p[k] = b;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    run::<true>(z, t, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_avx512(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    run::<true>(z, t, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_f32_avx2(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    run_f32::<true>(z, t, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_f32_avx512(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    run_f32::<true>(z, t, p)
}

/// Instruction sets the batch evaluators and the bKDE chunk kernels are
/// compiled for (each has a copy per set, chosen at run time).
#[derive(Clone, Copy)]
pub(crate) enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Base,
}

pub(crate) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let popcnt = std::arch::is_x86_feature_detected!("popcnt");
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && popcnt
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && popcnt
        {
            return Isa::Avx2;
        }
    }
    Isa::Base
}

/// For each k: `t[k]` = signed tail at `z[k]` (see [`super::signed_tail`])
/// and `p[k]` = φ(z[k]); the shortest of the three lengths is used. Accuracy
/// (tested against mpmath): φ to a few ulp for |z| ≤ 37.5; the tail to ≤ 1e-14
/// relative for |z| ≤ 6 and ≤ 1e-16·|tail|/Φ(−6) absolute beyond (relative
/// ≲ 1e-11 at |z| = 10); for |z| > 37.5 both are 0 (the true tail is
/// < 5e-308), and ±∞ gives the limits (tail 0, density 0). Inputs must not
/// be NaN.
pub fn signed_tail_pdf_batch(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    match isa() {
        // SAFETY: `isa()` found the features this copy was compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { run_avx512(z, t, p) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_avx2(z, t, p) },
        Isa::Base => run::<false>(z, t, p),
    }
}

/// [`signed_tail_pdf_batch`] computed in f32 arithmetic (twice the lanes
/// per vector), for kernels whose data are f32; arguments and results are
/// f64 and the argument's rounding to f32 is corrected to first order.
/// Accuracy (tested against mpmath): tail and density ≤ 5e-7 relative for
/// |z| ≤ 8, the tail ≤ 1e-6 relative up to |z| = 12; for |z| > 12.5 both
/// are 0 (the true tail is < 4e-36, below any f32 count's resolution), as
/// are the limits at ±∞. Inputs must not be NaN. Without FMA hardware it
/// is [`signed_tail_pdf_batch`] (whose f32 Horner steps would round twice).
pub fn signed_tail_pdf_batch_f32(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    match isa() {
        // SAFETY: `isa()` found the features this copy was compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { run_f32_avx512(z, t, p) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_f32_avx2(z, t, p) },
        // without FMA, f32 Horner steps round twice: f64 lanes keep the bound
        Isa::Base => run::<false>(z, t, p),
    }
}
