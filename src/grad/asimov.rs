//! Asimov significance Z_A = sqrt(2 Σ_b [(s_b + b_b) ln(1 + s_b/b_b) − s_b])
//! (Cowan, Cranmer, Gross, Vitells 2011, eq. 97; no systematic uncertainties)
//! as a candle op with an exact gradient.
//!
//! Each bin's term is b·f(s/b) with f(x) = (1+x) ln(1+x) − x, evaluated with a
//! series for small |x| where the direct form cancels (at s/b = 1e-6 the naive
//! formula in f64 keeps only ~4 digits). ∂/∂s = ln(1+x), ∂/∂b = ln(1+x) − x.
//!
//! [`asimov_significance_uncertain`] is the variant with the background
//! profiled against a per-bin uncertainty σ_b (Cowan's formula; the Asimov
//! q0 of pyhf's shapesys model).

use candle_core::Tensor;
use num_dual::{DualNum, DualSVec64};

use super::op::{host_inputs, scalar_loss};
use super::YieldFloor;
use crate::{Error, Result};

/// Gradient of a loss w.r.t. the signal and the background yields, per bin.
pub type SignalBackgroundGrad = (Vec<f64>, Vec<f64>);

/// f(x) = (1+x) ln(1+x) − x, accurate to a few ulp for x > −1 (the direct
/// form cancels by a factor ≲ 20 above the series region).
fn f_term(x: f64) -> f64 {
    if x.abs() < 0.05 {
        // Σ_{k≥2} (−1)^k x^k / (k (k−1)); 14 terms reach 0.05^15/210 < 1e-21.
        let mut sum = 0.0;
        let mut pow = x * x;
        for k in 2..16 {
            let kf = k as f64;
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            sum += sign * pow / (kf * (kf - 1.0));
            pow *= x;
        }
        sum
    } else {
        (1.0 + x) * x.ln_1p() - x
    }
}

/// g(x) = ln(1+x) − x, accurate for x > −1.
fn g_term(x: f64) -> f64 {
    if x.abs() < 0.05 {
        // Σ_{k≥2} (−1)^{k+1} x^k / k
        let mut sum = 0.0;
        let mut pow = x * x;
        for k in 2..17 {
            let sign = if k % 2 == 0 { -1.0 } else { 1.0 };
            sum += sign * pow / k as f64;
            pow *= x;
        }
        sum
    } else {
        x.ln_1p() - x
    }
}

/// Z_A and its gradient w.r.t. `(s, b)` (both of length `s.len()`), on the host.
///
/// Errors: different lengths, a background ≤ 0 or a negative / non-finite
/// signal (after the floor), or Z_A = 0 when the gradient is requested (Z_A is
/// not differentiable where every s_b = 0).
pub fn asimov_significance_host(
    s: &[f64],
    b: &[f64],
    floor: YieldFloor,
    with_grad: bool,
) -> Result<(f64, Option<SignalBackgroundGrad>)> {
    if s.len() != b.len() {
        return Err(Error::InvalidInput(format!(
            "asimov_significance: signal has {} bins but background has {}",
            s.len(),
            b.len()
        )));
    }
    let mut q = 0.0;
    let mut xs = Vec::with_capacity(s.len());
    for (i, (&si, &bi)) in s.iter().zip(b).enumerate() {
        let si = floor.apply(si);
        let bi = floor.apply(bi);
        if !(bi > 0.0 && bi.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "asimov_significance: background yield {bi} in bin {i} must be > 0 (use a YieldFloor)"
            )));
        }
        if !(si >= 0.0 && si.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "asimov_significance: signal yield {si} in bin {i} must be ≥ 0 and finite"
            )));
        }
        let x = si / bi;
        q += bi * f_term(x);
        xs.push(x);
    }
    let z = (2.0 * q).sqrt();
    if !with_grad {
        return Ok((z, None));
    }
    if z <= 0.0 {
        return Err(Error::InvalidInput(
            "asimov_significance: Z_A = 0 (no signal), where its gradient is undefined".into(),
        ));
    }
    let ds = xs.iter().map(|&x| x.ln_1p() / z).collect();
    let db = xs.iter().map(|&x| g_term(x) / z).collect();
    Ok((z, Some((ds, db))))
}

/// Z_A of signal and background yield tensors (same number of elements, any
/// shape, summed over every element), as a scalar tensor on the inputs' tape.
///
/// ```
/// # use candle_core::{Device, Tensor};
/// # use anagrad::grad::{asimov_significance, YieldFloor};
/// let s = Tensor::new(&[5.0f64, 2.0], &Device::Cpu).unwrap();
/// let b = Tensor::new(&[50.0f64, 10.0], &Device::Cpu).unwrap();
/// let z = asimov_significance(&s, &b, YieldFloor::None).unwrap();
/// assert!((z.to_scalar::<f64>().unwrap() - 0.92728).abs() < 1e-5);
/// ```
pub fn asimov_significance(s: &Tensor, b: &Tensor, floor: YieldFloor) -> Result<Tensor> {
    if s.elem_count() != b.elem_count() {
        return Err(Error::InvalidInput(format!(
            "asimov_significance: signal has {} elements but background has {}",
            s.elem_count(),
            b.elem_count()
        )));
    }
    let n = s.elem_count();
    let inputs = host_inputs("asimov_significance", &[s, b])?;
    let (sv, bv) = inputs.values.split_at(n);
    let (z, grads) = asimov_significance_host(sv, bv, floor, inputs.track)?;
    let grad = grads.map(|(mut ds, db)| {
        ds.extend(db);
        ds
    });
    scalar_loss("asimov_significance", &inputs, z, grad)
}

/// Per-bin Z_A² with a background uncertainty σ (Cowan, "Discovery
/// sensitivity for a counting experiment with background uncertainty"):
/// 2[(s+b) ln((s+b)(b+σ²)/(b²+(s+b)σ²)) − (b²/σ²) ln(1 + σ²s/(b(b+σ²)))],
/// written with ln_1p so that σ → 0 stays accurate term by term.
fn z2_uncertain<T: DualNum<Primitive = f64> + Copy>(s: T, b: T, sigma: T) -> T {
    let s2 = sigma * sigma;
    let n = s + b;
    let first = n * ((s / b).ln_1p() + (s2 / b).ln_1p() - (n * s2 / (b * b)).ln_1p());
    let second = b * b / s2 * (s2 * s / (b * (b + s2))).ln_1p();
    (first - second) * 2.0
}

/// Z_A with an absolute background uncertainty `sigma` per bin (the
/// "conditional" variant: the background is profiled with a Poisson
/// auxiliary measurement of relative precision σ/b, exactly pyhf's shapesys),
/// Z_A = sqrt(Σ_b Z_b²), and its gradient w.r.t. `(s, b, sigma)` (each
/// `s.len()` long, concatenated) on the host.
///
/// Accuracy: the bracket cancels like the σ = 0 formula for s ≪ b (relative
/// error ~ ε·b/s); use [`asimov_significance`] where σ = 0.
pub fn asimov_significance_uncertain_host(
    s: &[f64],
    b: &[f64],
    sigma: &[f64],
    floor: YieldFloor,
    with_grad: bool,
) -> Result<(f64, Option<Vec<f64>>)> {
    let n = s.len();
    if b.len() != n || sigma.len() != n {
        return Err(Error::InvalidInput(format!(
            "asimov_significance_uncertain: signal {n}, background {}, sigma {} bins",
            b.len(),
            sigma.len()
        )));
    }
    let mut q = 0.0;
    let mut parts = Vec::with_capacity(if with_grad { n } else { 0 });
    for i in 0..n {
        let (si, bi, ui) = (floor.apply(s[i]), floor.apply(b[i]), sigma[i]);
        if !(bi > 0.0 && bi.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "asimov_significance_uncertain: background yield {bi} in bin {i} must be > 0"
            )));
        }
        if !(si >= 0.0 && si.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "asimov_significance_uncertain: signal yield {si} in bin {i} must be ≥ 0 and finite"
            )));
        }
        if !(ui > 0.0 && ui.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "asimov_significance_uncertain: uncertainty {ui} in bin {i} must be > 0 \
                 (for σ = 0 use asimov_significance)"
            )));
        }
        if with_grad {
            let x = DualSVec64::<3>::from(si).derivative(0);
            let y = DualSVec64::<3>::from(bi).derivative(1);
            let z = DualSVec64::<3>::from(ui).derivative(2);
            let r = z2_uncertain(x, y, z);
            q += r.re;
            let e = r.eps.0.map_or([0.0; 3], |m| [m[0], m[1], m[2]]);
            parts.push(e);
        } else {
            q += z2_uncertain(si, bi, ui);
        }
    }
    let z = q.max(0.0).sqrt();
    if !with_grad {
        return Ok((z, None));
    }
    if z <= 0.0 {
        return Err(Error::InvalidInput(
            "asimov_significance_uncertain: Z_A = 0 (no signal), where its gradient is undefined"
                .into(),
        ));
    }
    // dZ = dq / (2Z)
    let mut grad = vec![0.0; 3 * n];
    for (i, e) in parts.iter().enumerate() {
        grad[i] = e[0] / (2.0 * z);
        grad[n + i] = e[1] / (2.0 * z);
        grad[2 * n + i] = e[2] / (2.0 * z);
    }
    Ok((z, Some(grad)))
}

/// [`asimov_significance_uncertain_host`] on tensors (same number of
/// elements each), as a scalar tensor on the inputs' tape.
pub fn asimov_significance_uncertain(
    s: &Tensor,
    b: &Tensor,
    sigma: &Tensor,
    floor: YieldFloor,
) -> Result<Tensor> {
    let n = s.elem_count();
    if b.elem_count() != n || sigma.elem_count() != n {
        return Err(Error::InvalidInput(format!(
            "asimov_significance_uncertain: {n}, {} and {} elements",
            b.elem_count(),
            sigma.elem_count()
        )));
    }
    let inputs = host_inputs("asimov_significance_uncertain", &[s, b, sigma])?;
    let v = &inputs.values;
    let (z, grad) = asimov_significance_uncertain_host(
        &v[..n],
        &v[n..2 * n],
        &v[2 * n..],
        floor,
        inputs.track,
    )?;
    scalar_loss("asimov_significance_uncertain", &inputs, z, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f_and_g_match_mpmath() {
        // (x, f(x), g(x)) from mpmath at 40 digits, on both sides of the
        // series/direct switch at |x| = 0.05.
        let refs = [
            (0.049, 0.001181358555453969, -0.001162670585839877),
            (-0.049, 0.0012206031686538442, -0.0012412164367467465),
            (0.03, 0.00044556630879073484, -0.00044119775845559726),
            (-0.02, 0.00020134682883094057, -0.00020270731751944842),
            (1e-6, 4.999998333334166e-13, -4.999996666669167e-13),
            (0.3, 0.041073543807738366, -0.03763573553250895),
        ];
        for (x, f, g) in refs {
            assert!(
                ((f_term(x) - f) / f).abs() < 4e-15,
                "f({x}) = {}",
                f_term(x)
            );
            assert!(
                ((g_term(x) - g) / g).abs() < 4e-15,
                "g({x}) = {}",
                g_term(x)
            );
        }
    }

    #[test]
    fn small_signal_limit_is_s_over_sqrt_b() {
        // Z_A → s/sqrt(b) for s ≪ b, with relative correction ~ s/(3b).
        let (z, _) = asimov_significance_host(&[1e-4], &[100.0], YieldFloor::None, false).unwrap();
        let approx = 1e-4 / 10.0;
        assert!(((z - approx) / approx).abs() < 1e-6);
    }
}
