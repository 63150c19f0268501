//! The Asimov reach q_A of the fiducial toy, computed three ways: by
//! quadrature ([`exact_q_asimov`], the reference), by plain Monte Carlo from
//! the signal-plus-background density ([`plain_estimate`]) and by importance
//! sampling from a fitted Gaussian-mixture proposal ([`fit_proposal`],
//! [`importance_estimate`]); [`run`] compares the two estimators' variances
//! over seeded replicas ([`ReachConfig`] → [`ReachTable`]). Issue 14, after
//! Menary & Price, "Design by intelligent committee" (IML 2020).
//!
//! # The quantity
//!
//! H1 (signal present) has intensity λ1(x) = b f_b(x) + s f_s(x), H0 has
//! λ0(x) = b f_b(x). The expected (Asimov) Δχ² of the extended unbinned
//! likelihood ratio, with events drawn under H1, is
//!
//! ```text
//! q_A = 2 ∫ [λ1 ln(λ1/λ0) − (λ1 − λ0)] dx = 2 [N E_{p1}[h] − s],
//!       N = s + b,  p1 = λ1/N,  h = ln(λ1/λ0) = ln(1 + r),  r = s f_s/(b f_b).
//! ```
//!
//! The same integrand is b f_b ψ(r) with ψ(r) = (1 + r) ln(1 + r) − r ≥ 0,
//! so q_A = 2 ∫ b f_b ψ(r) dx: this form has no cancellation (ψ ≈ r²/2 where
//! the signal is small) and is what the quadrature integrates.
//!
//! Menary & Price write the reach as q = −2 N ⟨ln(p2/p1)⟩ over events from
//! p1. Read with p1, p2 the *intensities* λ1, λ0 of the two hypotheses, that
//! is 2 N ⟨h⟩, our expression without the −2s, which is the Poisson term of
//! the extended likelihood (the difference ∫(λ1 − λ0) = s of the expected
//! totals). Read with normalised densities p1 = λ1/N, p2 = λ0/b, it is
//! 2 N KL(p1‖p2) = 2 N ⟨h⟩ − 2 N ln(N/b), the shape-only part; the extended
//! q_A is that plus the counting part 2 [N ln(N/b) − s]. Both estimators here
//! estimate ⟨h⟩, so they serve either convention; the tables report q_A.
//!
//! # Support
//!
//! The signal's Gaussian mass peak reaches below the background's threshold
//! m_min, where λ0 = 0 and h = +∞: formally q_A = ∞. That region has signal
//! probability Φ((m_min − m0)/σ_m) (3.2e-14 for the default toy, so about
//! 2e-12 signal events per experiment) and no finite sample ever sees it. We
//! therefore define the reach on the background's support (the acceptance)
//! Ω = {m ≥ m_min, −π ≤ φ < π, Δy ≥ 0}: events outside Ω get h = 0, and the
//! signal yield in the −s term is the accepted one, s_Ω = s (1 − Φ((m_min −
//! m0)/σ_m)). Quadrature and estimators use the same definition, so the
//! estimators are unbiased for the quadrature's value.
//!
//! # Estimators
//!
//! * Plain: n events from p1 (the number of signal events is drawn
//!   Binomial(n, s/N), the rest are background, which is the same as choosing
//!   each event's process independently with probability s/N: the events are
//!   iid from p1); q̂ = 2 [N mean(h) − s_Ω].
//! * Importance-sampled: n events from the defensive mixture
//!   q = α p1 + (1 − α) g, where g is a K-component Gaussian mixture fitted
//!   (weighted EM, in the coordinates below) to a pilot sample from p1
//!   weighted by |h|, i.e. to the
//!   zero-variance proposal |h| p1 / ∫|h| p1; q̂ = 2 [N mean(w h) − s_Ω] with
//!   w = p1/q. Unbiased for any proposal that covers p1 (α > 0 guarantees
//!   it); proposal points outside p1's support have p1 = 0 and contribute 0.
//!
//! The Gaussian mixture is fitted in u = (m, φ, ln Δy), so g(x) =
//! g_u(m, φ, ln Δy)/Δy. Why: |h| p1 falls like Δy² ln Δy e^{−Δy} at large
//! Δy, and a Gaussian in Δy itself has a lighter tail there, which leaves a
//! rare high-Δy region with the largest h at the largest weight 1/α. Measured
//! on the default toy (K = 2, α = 0.2): the per-event variance of w h was
//! ~3.3e4 with Δy and 1.6e4 with ln Δy (plain: 6.1e5), and with Δy the
//! replica spread exceeded the per-replica standard errors by up to 2× (the
//! signature of a rare-event tail); with ln Δy they agree. In u the
//! log-normal tail is heavier than exponential, and no proposal mass falls at
//! Δy ≤ 0. Mass at m < m_min or φ outside [−π, π) is still wasted (p1 = 0
//! there), a few per cent for the default toy.
use std::f64::consts::PI;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, StandardNormal, StandardUniform};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::infer::asymptotics::normal_cdf;
use crate::infer::toys::splitmix;
use crate::toys::{Fiducial, ToyModel};
use crate::{Error, Result};

/// Events drawn per chunk by the estimators: bounds the memory of one
/// replica (a few MB) whatever n is.
const CHUNK: usize = 1 << 14;

/// Free parameters of one full-covariance Gaussian component in 3-D
/// (weight, mean, covariance): 1 + 3 + 6.
const PARAMS_PER_COMPONENT: usize = 10;

/// The smallest pilot per free parameter of the mixture that
/// [`ReachConfig::validate`] accepts.
pub const MIN_PILOT_PER_PARAMETER: usize = 50;

/// The smallest Kish effective sample size of the |h|-weighted pilot, per
/// free parameter, that [`fit_proposal`] accepts.
pub const MIN_PILOT_ESS_PER_PARAMETER: f64 = 20.0;

/// EM stops when the weighted mean log-likelihood changes by less than this.
const EM_TOL: f64 = 1e-9;

/// EM iteration cap (the proposal is usable unconverged: importance sampling
/// stays unbiased for any proposal, only its variance depends on the fit).
const EM_MAX_ITER: usize = 500;

// ---------------------------------------------------------------------------
// The target: p1, h and the accepted signal yield
// ---------------------------------------------------------------------------

/// ψ(r) = (1 + r) ln(1 + r) − r ≥ 0, by its series Σ_{k≥2} (−r)^k/(k(k−1))
/// for small r (the closed form cancels there).
fn psi(r: f64) -> f64 {
    if r < 1e-2 {
        // truncation error < r^7/42 ≤ 3e-16 r²
        r * r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 12.0 - r * (1.0 / 20.0 - r / 30.0))))
    } else {
        (1.0 + r) * r.ln_1p() - r
    }
}

/// What the estimators need of the toy, evaluated once.
struct Target<'a> {
    toy: &'a Fiducial,
    /// N = s + b.
    n_tot: f64,
    /// s_Ω: the signal yield inside the background's support.
    s_acc: f64,
}

impl<'a> Target<'a> {
    fn new(toy: &'a Fiducial) -> Result<Self> {
        toy.validate()?;
        Ok(Self {
            toy,
            n_tot: toy.s + toy.b,
            s_acc: accepted_signal(toy),
        })
    }

    /// (p1(x), h(x)), with h = 0 outside the background's support.
    fn eval(&self, x: &[f64; 3]) -> (f64, f64) {
        let fs = self.toy.signal_density(x);
        let fb = self.toy.background_density(x);
        let l0 = self.toy.b * fb;
        let ls = self.toy.s * fs;
        let p1 = (l0 + ls) / self.n_tot;
        let h = if l0 > 0.0 { (ls / l0).ln_1p() } else { 0.0 };
        (p1, h)
    }

    /// q̂ and its standard error from Σv, Σv² over n values of the
    /// per-event estimate v of E_{p1}[h].
    fn estimate(&self, sum: f64, sum2: f64, n: usize) -> Estimate {
        let nf = n as f64;
        let mean = sum / nf;
        let se = if n > 1 {
            let var = ((sum2 - nf * mean * mean) / (nf - 1.0)).max(0.0);
            2.0 * self.n_tot * (var / nf).sqrt()
        } else {
            f64::NAN
        };
        Estimate {
            q: 2.0 * (self.n_tot * mean - self.s_acc),
            se,
            n,
        }
    }
}

/// The expected signal yield inside the background's support Ω (the
/// acceptance m ≥ m_min; φ and Δy of the signal lie inside it):
/// s (1 − Φ((m_min − m0)/σ_m)). See the module docs, "Support".
pub fn accepted_signal(toy: &Fiducial) -> f64 {
    toy.s * normal_cdf((toy.m0 - toy.m_min) / toy.sigma_m)
}

// ---------------------------------------------------------------------------
// Quadrature
// ---------------------------------------------------------------------------

/// The tensor-product grid of [`q_asimov_quadrature`]: Gauss–Legendre panels
/// in m and Δy, the periodic trapezoidal rule in φ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuadratureGrid {
    /// The m window is m0 ± `m_halfwidth` σ_m, clipped below at m_min.
    pub m_halfwidth: f64,
    /// Gauss–Legendre panels across the m window.
    pub m_panels: usize,
    /// φ points (trapezoidal rule on the period [−π, π): exponentially
    /// convergent for the toy's smooth 2π-periodic densities).
    pub phi_points: usize,
    /// Upper end of the Δy range [0, y_max].
    pub y_max: f64,
    /// Gauss–Legendre panels across [0, y_max].
    pub y_panels: usize,
    /// Gauss–Legendre nodes per panel (m and Δy).
    pub nodes: usize,
}

impl Default for QuadratureGrid {
    /// The grid of [`exact_q_asimov`]: m0 ± 12 σ_m in 24 panels, 128 φ
    /// points, Δy ∈ [0, 60] in 30 panels, 10 nodes per panel.
    fn default() -> Self {
        Self {
            m_halfwidth: 12.0,
            m_panels: 24,
            phi_points: 128,
            y_max: 60.0,
            y_panels: 30,
            nodes: 10,
        }
    }
}

impl QuadratureGrid {
    /// The grid with twice the panels and φ points (same ranges): the
    /// refinement that checks the accuracy.
    pub fn refined(&self) -> Self {
        Self {
            m_panels: 2 * self.m_panels,
            phi_points: 2 * self.phi_points,
            y_panels: 2 * self.y_panels,
            ..*self
        }
    }

    fn validate(&self) -> Result<()> {
        if self.m_panels == 0 || self.phi_points == 0 || self.y_panels == 0 || self.nodes == 0 {
            return Err(Error::InvalidInput(format!(
                "reach quadrature: panels, points and nodes must be ≥ 1 ({self:?})"
            )));
        }
        let positive = |v: f64| v > 0.0 && v.is_finite();
        if !positive(self.m_halfwidth) || !positive(self.y_max) {
            return Err(Error::InvalidInput(format!(
                "reach quadrature: m_halfwidth and y_max must be positive and finite ({self:?})"
            )));
        }
        Ok(())
    }
}

/// The quadrature's value with its error budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quadrature {
    /// q_A on the grid.
    pub value: f64,
    /// An upper bound on the q_A left out of the integration box (m outside
    /// the window, Δy > y_max): 2 ∫ λ1 h − (λ1 − λ0) ≤ 2 ∫ b f_b r²/2 there,
    /// integrated over the m tails [m_min, window) and (window, window + 30
    /// σ_m] and over Δy ∈ (y_max, 2 y_max]. Beyond those the bound's
    /// integrand is below e^{−400} (m) or e^{−y_max} y_max⁴ (Δy) of its peak.
    pub tail_bound: f64,
    /// The grid used.
    pub grid: QuadratureGrid,
}

/// Gauss–Legendre nodes and weights on [−1, 1] (Newton on P_n; exact to
/// rounding for the n ≤ 64 used here).
fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        let mut x = (PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_n'(x) by the three-term recurrence
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pm = if n == 1 { 1.0 } else { p0 };
            dp = nf * (x * pn - pm) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        out[i] = (-x, w);
        out[n - 1 - i] = (x, w);
    }
    if n % 2 == 1 {
        // the middle node is exactly 0
        out[n / 2].0 = 0.0;
    }
    out
}

/// Nodes and weights of `panels` equal Gauss–Legendre panels on [a, b].
fn gl_panels(a: f64, b: f64, panels: usize, rule: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let width = (b - a) / panels as f64;
    let mut out = Vec::with_capacity(panels * rule.len());
    for p in 0..panels {
        let mid = a + (p as f64 + 0.5) * width;
        for &(t, w) in rule {
            out.push((mid + 0.5 * width * t, 0.5 * width * w));
        }
    }
    out
}

/// ∫ f over the tensor product of (m nodes) × (φ trapezoid) × (Δy nodes);
/// rayon over m nodes.
fn integrate3<F>(m: &[(f64, f64)], phi_points: usize, y: &[(f64, f64)], f: F) -> f64
where
    F: Fn(&[f64; 3]) -> f64 + Sync,
{
    let dphi = 2.0 * PI / phi_points as f64;
    m.par_iter()
        .map(|&(mi, wm)| {
            let mut acc_m = 0.0;
            for j in 0..phi_points {
                let phi = -PI + (j as f64 + 0.5) * dphi;
                let mut acc_y = 0.0;
                for &(yk, wy) in y {
                    acc_y += wy * f(&[mi, phi, yk]);
                }
                acc_m += acc_y;
            }
            wm * dphi * acc_m
        })
        .sum()
}

/// q_A by quadrature on `grid`, with the bound on what lies outside the
/// integration box. Integrates 2 b f_b ψ(r) (module docs) over the window
/// m0 ± `m_halfwidth` σ_m (clipped at m_min), all φ, Δy ∈ [0, y_max].
///
/// Accuracy (default grid, default toy q_A = 52.4345263888696): the
/// [`QuadratureGrid::refined`] grid (every panel count and the φ points
/// doubled, 8× the cost) changes the value by 1.8e-15 relative, doubling
/// any one of m, φ or Δy alone or widening the box (m0 ± 16 σ_m, Δy ≤ 80)
/// by ≤ 1.4e-15, and halving every count by 4.7e-11; the tail bound is
/// 4.9e-19 (1e-20 relative). An independent evaluation (the toy's
/// factorised densities, Δy and φ integrated per m in numpy:
/// `tests/fixtures/fiducial_reach_exact.py`) agrees to 2e-15. So the default
/// grid is accurate to ~1e-14 relative, far below the 1e-6 needed; the
/// rule relies on the densities being smooth in m and Δy on Ω and
/// 2π-periodic in φ (true for the toy). Takes ~1 s on 2 cores (dev profile).
pub fn q_asimov_quadrature(toy: &Fiducial, grid: &QuadratureGrid) -> Result<Quadrature> {
    toy.validate()?;
    grid.validate()?;
    let rule = gauss_legendre(grid.nodes);
    let lo = toy.m_min.max(toy.m0 - grid.m_halfwidth * toy.sigma_m);
    let hi = toy.m0 + grid.m_halfwidth * toy.sigma_m;
    if hi <= lo {
        return Err(Error::InvalidInput(format!(
            "reach quadrature: the m window [{lo}, {hi}] is empty (m0 far below m_min)"
        )));
    }
    let (s, b) = (toy.s, toy.b);
    // 2 (λ1 h − (λ1 − λ0)) = 2 b f_b ψ(r); zero outside the support Ω
    let integrand = |x: &[f64; 3]| {
        let fb = toy.background_density(x);
        if fb > 0.0 {
            let r = s * toy.signal_density(x) / (b * fb);
            2.0 * b * fb * psi(r)
        } else {
            0.0
        }
    };
    // the bound: ψ(r) ≤ r²/2 for r ≥ 0 (ψ' = ln(1 + r) ≤ r)
    let bound = |x: &[f64; 3]| {
        let fb = toy.background_density(x);
        if fb > 0.0 {
            let fs = toy.signal_density(x);
            s * s * fs * fs / (b * fb)
        } else {
            0.0
        }
    };
    let m_nodes = gl_panels(lo, hi, grid.m_panels, &rule);
    let y_nodes = gl_panels(0.0, grid.y_max, grid.y_panels, &rule);
    let value = integrate3(&m_nodes, grid.phi_points, &y_nodes, integrand);

    // tails: m below and above the window (Δy in range), and Δy beyond y_max
    let mut tail = 0.0;
    let coarse = grid.phi_points.min(64);
    if lo > toy.m_min {
        let nodes = gl_panels(toy.m_min, lo, 16, &rule);
        tail += integrate3(&nodes, coarse, &y_nodes, bound);
    }
    let nodes = gl_panels(hi, hi + 30.0 * toy.sigma_m, 30, &rule);
    tail += integrate3(&nodes, coarse, &y_nodes, bound);
    let all_m = gl_panels(toy.m_min, hi + 30.0 * toy.sigma_m, 60, &rule);
    let y_tail = gl_panels(grid.y_max, 2.0 * grid.y_max, grid.y_panels, &rule);
    tail += integrate3(&all_m, coarse, &y_tail, bound);
    Ok(Quadrature {
        value,
        tail_bound: tail,
        grid: *grid,
    })
}

/// The reference q_A of `toy` (the default [`QuadratureGrid`]); relative
/// accuracy ~1e-14 for the default toy (see [`q_asimov_quadrature`] for
/// how that is known).
pub fn exact_q_asimov(toy: &Fiducial) -> Result<f64> {
    Ok(q_asimov_quadrature(toy, &QuadratureGrid::default())?.value)
}

// ---------------------------------------------------------------------------
// Estimators
// ---------------------------------------------------------------------------

/// One estimate of q_A from n events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// q̂_A.
    pub q: f64,
    /// Its standard error from the sample variance of the per-event terms
    /// (NaN for n = 1).
    pub se: f64,
    /// Events used.
    pub n: usize,
}

fn check_n(n: usize, what: &str) -> Result<()> {
    if n == 0 {
        return Err(Error::InvalidInput(format!(
            "reach {what}: need at least one event (n = 0)"
        )));
    }
    Ok(())
}

/// Appends `n` events from p1 = λ1/N to `out` (row-major, 3 per event): the
/// number of signal events is Binomial(n, s/N), so each event is signal with
/// probability s/N independently.
fn sample_p1<R: Rng>(toy: &Fiducial, n: usize, rng: &mut R, out: &mut Vec<f64>) -> Result<()> {
    let f = toy.s / (toy.s + toy.b);
    let k = Binomial::new(n as u64, f)
        .map_err(|e| Error::InvalidInput(format!("reach: binomial({n}, {f}): {e}")))?
        .sample(rng) as usize;
    out.extend_from_slice(&toy.sample(0, k, rng)?.features);
    out.extend_from_slice(&toy.sample(1, n - k, rng)?.features);
    Ok(())
}

fn row(features: &[f64], i: usize) -> [f64; 3] {
    [features[3 * i], features[3 * i + 1], features[3 * i + 2]]
}

/// Plain Monte Carlo: n events from p1, q̂ = 2 [N mean(h) − s_Ω] (module
/// docs). Draws only from `rng`.
pub fn plain_estimate<R: Rng>(toy: &Fiducial, n: usize, rng: &mut R) -> Result<Estimate> {
    check_n(n, "plain estimate")?;
    let target = Target::new(toy)?;
    let (mut sum, mut sum2) = (0.0, 0.0);
    let mut buf = Vec::with_capacity(3 * CHUNK);
    let mut done = 0;
    while done < n {
        let c = CHUNK.min(n - done);
        buf.clear();
        sample_p1(toy, c, rng, &mut buf)?;
        let (mut cs, mut cs2) = (0.0, 0.0);
        for i in 0..c {
            let (_, h) = target.eval(&row(&buf, i));
            cs += h;
            cs2 += h * h;
        }
        sum += cs;
        sum2 += cs2;
        done += c;
    }
    Ok(target.estimate(sum, sum2, n))
}

/// A 3-D Gaussian mixture with full covariances (the proposal's g).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GaussianMixture {
    /// Component weights (sum to 1).
    pub weights: Vec<f64>,
    /// Component means.
    pub means: Vec<[f64; 3]>,
    /// Component covariances.
    pub covariances: Vec<[[f64; 3]; 3]>,
    /// Lower Cholesky factors of the covariances.
    #[serde(skip)]
    chol: Vec<[[f64; 3]; 3]>,
    /// ln of each component's normalisation, ln[w_k (2π)^{−3/2} / det L_k].
    #[serde(skip)]
    log_norm: Vec<f64>,
}

/// Lower Cholesky factor of a 3×3 covariance, or `None` when it is not
/// numerically positive definite (a pivot ≤ 1e-12 of the largest variance).
// index loops: the textbook matrix notation reads better than iterators here
#[allow(clippy::needless_range_loop)]
fn cholesky3(c: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let scale = c[0][0].max(c[1][1]).max(c[2][2]);
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    let mut l = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..=i {
            let mut v = c[i][j];
            for k in 0..j {
                v -= l[i][k] * l[j][k];
            }
            if i == j {
                if v.is_nan() || v <= 1e-12 * scale {
                    return None;
                }
                l[i][i] = v.sqrt();
            } else {
                l[i][j] = v / l[j][j];
            }
        }
    }
    Some(l)
}

impl GaussianMixture {
    /// A mixture from weights, means and covariances; an error when the
    /// lengths differ, a weight is not positive, or a covariance is not
    /// positive definite (names the component).
    pub fn new(
        weights: Vec<f64>,
        means: Vec<[f64; 3]>,
        covariances: Vec<[[f64; 3]; 3]>,
    ) -> Result<Self> {
        let k = weights.len();
        if k == 0 || means.len() != k || covariances.len() != k {
            return Err(Error::InvalidInput(format!(
                "gaussian mixture: {} weights, {} means, {} covariances (need the same number ≥ 1)",
                k,
                means.len(),
                covariances.len()
            )));
        }
        let total: f64 = weights.iter().sum();
        if !(total > 0.0 && total.is_finite()) || weights.iter().any(|&w| w.is_nan() || w <= 0.0) {
            return Err(Error::InvalidInput(format!(
                "gaussian mixture: weights must be positive and finite, got {weights:?}"
            )));
        }
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut chol = Vec::with_capacity(k);
        let mut log_norm = Vec::with_capacity(k);
        for (i, c) in covariances.iter().enumerate() {
            let l = cholesky3(c).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "gaussian mixture: covariance of component {i} is singular or not \
                     positive definite: {c:?}"
                ))
            })?;
            let log_det_l = l[0][0].ln() + l[1][1].ln() + l[2][2].ln();
            log_norm.push(weights[i].ln() - 1.5 * (2.0 * PI).ln() - log_det_l);
            chol.push(l);
        }
        Ok(Self {
            weights,
            means,
            covariances,
            chol,
            log_norm,
        })
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the mixture has no components (never, for a constructed one).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// ln[w_k N(x; μ_k, Σ_k)] for each component k, written into `out`.
    fn component_logs(&self, x: &[f64; 3], out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            let l = &self.chol[k];
            let mu = &self.means[k];
            // z = L⁻¹ (x − μ) by forward substitution
            let d0 = x[0] - mu[0];
            let d1 = x[1] - mu[1];
            let d2 = x[2] - mu[2];
            let z0 = d0 / l[0][0];
            let z1 = (d1 - l[1][0] * z0) / l[1][1];
            let z2 = (d2 - l[2][0] * z0 - l[2][1] * z1) / l[2][2];
            *o = self.log_norm[k] - 0.5 * (z0 * z0 + z1 * z1 + z2 * z2);
        }
    }

    /// The mixture density at x.
    pub fn density(&self, x: &[f64; 3]) -> f64 {
        let mut logs = [0.0; 16];
        if self.len() <= logs.len() {
            self.component_logs(x, &mut logs[..self.len()]);
            logs[..self.len()].iter().map(|l| l.exp()).sum()
        } else {
            let mut logs = vec![0.0; self.len()];
            self.component_logs(x, &mut logs);
            logs.iter().map(|l| l.exp()).sum()
        }
    }

    /// One draw: a component by its weight, then μ + L z.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> [f64; 3] {
        let u: f64 = StandardUniform.sample(rng);
        let mut k = self.len() - 1;
        let mut acc = 0.0;
        for (i, &w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                k = i;
                break;
            }
        }
        let z: [f64; 3] = [
            StandardNormal.sample(rng),
            StandardNormal.sample(rng),
            StandardNormal.sample(rng),
        ];
        let l = &self.chol[k];
        let mu = &self.means[k];
        [
            mu[0] + l[0][0] * z[0],
            mu[1] + l[1][0] * z[0] + l[1][1] * z[1],
            mu[2] + l[2][0] * z[0] + l[2][1] * z[1] + l[2][2] * z[2],
        ]
    }
}

/// The result of a weighted EM fit.
struct EmFit {
    mixture: GaussianMixture,
    loglik: f64,
    iterations: usize,
    converged: bool,
}

/// The M-step: weights, means and covariances from responsibilities
/// `resp[i*k + c]` and event weights `w`; `start`/`iter` give context.
// index loops: matrix notation, as in `cholesky3`
#[allow(clippy::needless_range_loop)]
fn m_step(
    points: &[[f64; 3]],
    w: &[f64],
    resp: &[f64],
    k: usize,
    start: usize,
    iter: usize,
) -> Result<GaussianMixture> {
    let ctx = |c: usize| {
        format!("reach proposal: weighted EM, start {start}, iteration {iter}, component {c}")
    };
    let mut weights = vec![0.0; k];
    let mut means = vec![[0.0; 3]; k];
    for (i, x) in points.iter().enumerate() {
        for c in 0..k {
            let a = w[i] * resp[i * k + c];
            weights[c] += a;
            for d in 0..3 {
                means[c][d] += a * x[d];
            }
        }
    }
    for c in 0..k {
        if weights[c].is_nan() || weights[c] <= 1e-12 {
            return Err(Error::FitFailed {
                context: ctx(c),
                message: format!(
                    "the component lost all its weight ({:e}); use fewer components",
                    weights[c]
                ),
            });
        }
        for d in 0..3 {
            means[c][d] /= weights[c];
        }
    }
    let mut covs = vec![[[0.0; 3]; 3]; k];
    for (i, x) in points.iter().enumerate() {
        for c in 0..k {
            let a = w[i] * resp[i * k + c];
            let d = [x[0] - means[c][0], x[1] - means[c][1], x[2] - means[c][2]];
            for r in 0..3 {
                for s in 0..=r {
                    covs[c][r][s] += a * d[r] * d[s];
                }
            }
        }
    }
    for c in 0..k {
        for r in 0..3 {
            for s in 0..=r {
                covs[c][r][s] /= weights[c];
                covs[c][s][r] = covs[c][r][s];
            }
        }
        if cholesky3(&covs[c]).is_none() {
            return Err(Error::FitFailed {
                context: ctx(c),
                message: format!(
                    "the fitted covariance is singular (not positive definite): {:?}; \
                     the pilot's weighted points of this component are (nearly) degenerate \
                     — use a larger pilot or fewer components",
                    covs[c]
                ),
            });
        }
    }
    GaussianMixture::new(weights, means, covs)
}

/// Weighted EM from a hard initial assignment `init` (component per point).
fn em(points: &[[f64; 3]], w: &[f64], init: &[usize], k: usize, start: usize) -> Result<EmFit> {
    let n = points.len();
    let mut resp = vec![0.0; n * k];
    for (i, &c) in init.iter().enumerate() {
        resp[i * k + c] = 1.0;
    }
    let mut mix = m_step(points, w, &resp, k, start, 0)?;
    let mut prev = f64::NEG_INFINITY;
    let mut logs = vec![0.0; k];
    for iter in 1..=EM_MAX_ITER {
        // E-step (log-sum-exp) and the log-likelihood of the current mixture
        let mut loglik = 0.0;
        for (i, x) in points.iter().enumerate() {
            mix.component_logs(x, &mut logs);
            let mx = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let tot: f64 = logs.iter().map(|l| (l - mx).exp()).sum();
            let lse = mx + tot.ln();
            loglik += w[i] * lse;
            for c in 0..k {
                resp[i * k + c] = (logs[c] - lse).exp();
            }
        }
        if !loglik.is_finite() {
            return Err(Error::FitFailed {
                context: format!("reach proposal: weighted EM, start {start}, iteration {iter}"),
                message: format!("the weighted log-likelihood is {loglik}"),
            });
        }
        if (loglik - prev).abs() < EM_TOL {
            return Ok(EmFit {
                mixture: mix,
                loglik,
                iterations: iter,
                converged: true,
            });
        }
        prev = loglik;
        mix = m_step(points, w, &resp, k, start, iter)?;
    }
    Ok(EmFit {
        mixture: mix,
        loglik: prev,
        iterations: EM_MAX_ITER,
        converged: false,
    })
}

/// Fits a K-component Gaussian mixture to weighted points by EM, from
/// deterministic starts: for each coordinate axis, the points split into K
/// slabs of equal weight along it (the K weighted quantiles). The highest
/// weighted log-likelihood wins (for the fiducial toy the φ split finds the
/// two favoured quadrants); a start that fails (a component emptying or a
/// singular covariance) is skipped, and its error is returned only when
/// every start fails. Returns the mixture and the summary of the fit.
pub fn fit_gaussian_mixture(
    points: &[[f64; 3]],
    weights: &[f64],
    components: usize,
) -> Result<(GaussianMixture, EmSummary)> {
    if components == 0 {
        return Err(Error::InvalidInput(
            "gaussian mixture fit: components must be ≥ 1".into(),
        ));
    }
    if points.len() != weights.len() {
        return Err(Error::InvalidInput(format!(
            "gaussian mixture fit: {} points but {} weights",
            points.len(),
            weights.len()
        )));
    }
    if weights.iter().any(|&w| !(w >= 0.0 && w.is_finite())) {
        return Err(Error::InvalidInput(
            "gaussian mixture fit: weights must be finite and ≥ 0".into(),
        ));
    }
    // drop zero weights (they carry no information) and normalise
    let (pts, w): (Vec<[f64; 3]>, Vec<f64>) = points
        .iter()
        .zip(weights)
        .filter(|(_, &w)| w > 0.0)
        .map(|(p, &w)| (*p, w))
        .unzip();
    let total: f64 = w.iter().sum();
    if pts.len() < PARAMS_PER_COMPONENT * components || total.is_nan() || total <= 0.0 {
        return Err(Error::InvalidInput(format!(
            "gaussian mixture fit: {} points with positive weight, need ≥ {} for {components} \
             components",
            pts.len(),
            PARAMS_PER_COMPONENT * components
        )));
    }
    let w: Vec<f64> = w.iter().map(|x| x / total).collect();
    let mut best: Option<(EmFit, usize)> = None;
    let mut first_err = None;
    for axis in 0..3 {
        let mut order: Vec<usize> = (0..pts.len()).collect();
        order.sort_by(|&a, &b| pts[a][axis].total_cmp(&pts[b][axis]));
        let mut init = vec![0; pts.len()];
        let mut cum = 0.0;
        for &i in &order {
            // the slab of the point's weighted mid-rank
            let mid = cum + 0.5 * w[i];
            init[i] = ((mid * components as f64) as usize).min(components - 1);
            cum += w[i];
        }
        match em(&pts, &w, &init, components, axis) {
            Ok(fit) => {
                if best.as_ref().is_none_or(|(b, _)| fit.loglik > b.loglik) {
                    best = Some((fit, axis));
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (best, first_err) {
        (Some((fit, axis)), _) => {
            let summary = EmSummary {
                loglik: fit.loglik,
                iterations: fit.iterations,
                converged: fit.converged,
                start_axis: axis,
            };
            Ok((fit.mixture, summary))
        }
        (None, Some(e)) => Err(e),
        (None, None) => unreachable!("three starts ran, each gave a fit or an error"),
    }
}

/// How the proposal's EM fit went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmSummary {
    /// Weighted mean log-likelihood of the winning start.
    pub loglik: f64,
    /// Its EM iterations.
    pub iterations: usize,
    /// Whether it met the tolerance (1e-9 in the mean log-likelihood) before
    /// the cap (500 iterations).
    pub converged: bool,
    /// The axis (0 m, 1 φ, 2 Δy) along which the winning start was split.
    pub start_axis: usize,
}

/// The defensive importance-sampling proposal q = α p1 + (1 − α) g.
///
/// Why defensive: the weights w = p1/q are then bounded by 1/α, so no region
/// that g misses (g is a crude fit to |h| p1) can blow up the variance; the
/// price is that a fraction α of the events is spent as in plain sampling.
/// α = 0.2 (the default) caps the weights at 5 and costs at most a factor
/// 1/(1 − α) = 1.25 in variance where g is good.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    /// The toy (p1's parameters).
    #[serde(skip)]
    pub toy: Fiducial,
    /// The fitted mixture, in u = (m, φ, ln Δy) (see [`Self::g_density`]).
    pub mixture: GaussianMixture,
    /// The defensive fraction α ∈ (0, 1].
    pub alpha: f64,
    /// Pilot events drawn from p1 for the fit.
    pub pilot: usize,
    /// Kish effective sample size of the |h|-weighted pilot.
    pub pilot_ess: f64,
    /// The EM fit.
    pub em: EmSummary,
}

impl Proposal {
    /// p1(x) = λ1(x)/N.
    pub fn p1_density(&self, x: &[f64; 3]) -> f64 {
        let t = &self.toy;
        (t.b * t.background_density(x) + t.s * t.signal_density(x)) / (t.s + t.b)
    }

    /// g(x): the mixture's density in u = (m, φ, ln Δy) times the Jacobian
    /// 1/Δy; 0 for Δy ≤ 0.
    pub fn g_density(&self, x: &[f64; 3]) -> f64 {
        if x[2] > 0.0 {
            self.mixture.density(&[x[0], x[1], x[2].ln()]) / x[2]
        } else {
            0.0
        }
    }

    /// q(x) = α p1(x) + (1 − α) g(x).
    pub fn density(&self, x: &[f64; 3]) -> f64 {
        self.alpha * self.p1_density(x) + (1.0 - self.alpha) * self.g_density(x)
    }

    /// Appends `n` draws from q (row-major, 3 per event): Binomial(n, α) of
    /// them from p1, the rest from g (a mixture draw u, then Δy = e^{u₃}).
    fn sample_into<R: Rng>(&self, n: usize, rng: &mut R, out: &mut Vec<f64>) -> Result<()> {
        let k = if self.alpha >= 1.0 {
            n
        } else {
            Binomial::new(n as u64, self.alpha)
                .map_err(|e| {
                    Error::InvalidInput(format!("reach: binomial({n}, {}): {e}", self.alpha))
                })?
                .sample(rng) as usize
        };
        sample_p1(&self.toy, k, rng, out)?;
        for _ in k..n {
            let u = self.mixture.sample(rng);
            out.extend_from_slice(&[u[0], u[1], u[2].exp()]);
        }
        Ok(())
    }

    /// `n` draws from q, one `[m, φ, Δy]` per event.
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R) -> Result<Vec<[f64; 3]>> {
        let mut buf = Vec::with_capacity(3 * n);
        self.sample_into(n, rng, &mut buf)?;
        Ok(buf.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
    }
}

/// Fits the proposal: `pilot` events from p1 weighted by |h|, a
/// `components`-component Gaussian mixture in u = (m, φ, ln Δy) by weighted
/// EM ([`fit_gaussian_mixture`]; module docs for why ln Δy), then the defensive mixture with fraction
/// `defensive` (α). Errors on components = 0, α ∉ (0, 1], a pilot smaller
/// than [`MIN_PILOT_PER_PARAMETER`] per mixture parameter or with too small
/// an effective size ([`MIN_PILOT_ESS_PER_PARAMETER`]), and a singular fitted
/// covariance.
pub fn fit_proposal<R: Rng>(
    toy: &Fiducial,
    pilot: usize,
    components: usize,
    defensive: f64,
    rng: &mut R,
) -> Result<Proposal> {
    if components == 0 {
        return Err(Error::InvalidInput(
            "reach proposal: components must be ≥ 1".into(),
        ));
    }
    if !(defensive > 0.0 && defensive <= 1.0) {
        return Err(Error::InvalidInput(format!(
            "reach proposal: the defensive fraction must lie in (0, 1], got {defensive}"
        )));
    }
    let min_pilot = MIN_PILOT_PER_PARAMETER * PARAMS_PER_COMPONENT * components;
    if pilot < min_pilot {
        return Err(Error::InvalidInput(format!(
            "reach proposal: pilot of {pilot} events is too small for {components} components \
             (need ≥ {min_pilot})"
        )));
    }
    let target = Target::new(toy)?;
    let mut buf = Vec::with_capacity(3 * pilot);
    sample_p1(toy, pilot, rng, &mut buf)?;
    let points: Vec<[f64; 3]> = buf.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let weights: Vec<f64> = points.iter().map(|x| target.eval(x).1.abs()).collect();
    let (sw, sw2) = weights
        .iter()
        .fold((0.0, 0.0), |(a, b), &w| (a + w, b + w * w));
    let ess = if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 };
    let min_ess = MIN_PILOT_ESS_PER_PARAMETER * (PARAMS_PER_COMPONENT * components) as f64;
    if ess.is_nan() || ess < min_ess {
        return Err(Error::InvalidInput(format!(
            "reach proposal: the |h|-weighted pilot has effective size {ess:.1} < {min_ess} \
             ({pilot} events, {components} components); use a larger pilot"
        )));
    }
    // fit in u = (m, φ, ln Δy); pilot events have Δy > 0 almost surely
    // (those with Δy ≤ 0 would have h = 0 and weight 0 anyway)
    let upoints: Vec<[f64; 3]> = points
        .iter()
        .map(|x| [x[0], x[1], if x[2] > 0.0 { x[2].ln() } else { 0.0 }])
        .collect();
    let weights: Vec<f64> = points
        .iter()
        .zip(weights)
        .map(|(x, w)| if x[2] > 0.0 { w } else { 0.0 })
        .collect();
    let (mixture, em) = fit_gaussian_mixture(&upoints, &weights, components)?;
    Ok(Proposal {
        toy: toy.clone(),
        mixture,
        alpha: defensive,
        pilot,
        pilot_ess: ess,
        em,
    })
}

/// Importance-sampled estimate: n events from `proposal`'s q,
/// q̂ = 2 [N mean(w h) − s_Ω], w = p1/q (module docs). Draws only from `rng`.
pub fn importance_estimate<R: Rng>(proposal: &Proposal, n: usize, rng: &mut R) -> Result<Estimate> {
    check_n(n, "importance-sampled estimate")?;
    let target = Target::new(&proposal.toy)?;
    let (mut sum, mut sum2) = (0.0, 0.0);
    let mut buf = Vec::with_capacity(3 * CHUNK);
    let mut done = 0;
    let a = proposal.alpha;
    while done < n {
        let c = CHUNK.min(n - done);
        buf.clear();
        proposal.sample_into(c, rng, &mut buf)?;
        let (mut cs, mut cs2) = (0.0, 0.0);
        for i in 0..c {
            let x = row(&buf, i);
            let (p1, h) = target.eval(&x);
            if p1 > 0.0 && h != 0.0 {
                let q = a * p1 + (1.0 - a) * proposal.g_density(&x);
                let v = p1 / q * h;
                cs += v;
                cs2 += v * v;
            }
        }
        sum += cs;
        sum2 += cs2;
        done += c;
    }
    Ok(target.estimate(sum, sum2, n))
}

// ---------------------------------------------------------------------------
// The variance study
// ---------------------------------------------------------------------------

/// The variance study's settings; embeddable as a `[reach]` TOML table, every
/// key optional:
///
/// ```toml
/// [reach]
/// sizes = [1_000, 10_000, 100_000, 1_000_000]   # n for both estimators
/// plain_extra = [2_000_000]                      # n for plain sampling only
/// replicas = 50                                  # independent replicas per row
/// pilot = 20_000                                 # pilot events for the proposal fit
/// components = 2                                 # Gaussian components of g
/// defensive = 0.2                                # α of q = α p1 + (1 − α) g
/// refit_proposal = false                         # one proposal per replica?
/// seed = 14
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReachConfig {
    /// Sample sizes at which both estimators run.
    pub sizes: Vec<usize>,
    /// Further sample sizes for the plain estimator only (the paper's 2e6).
    pub plain_extra: Vec<usize>,
    /// Independent replicas per (estimator, n).
    pub replicas: usize,
    /// Pilot events from p1 for the proposal fit.
    pub pilot: usize,
    /// Components K of the Gaussian mixture g.
    pub components: usize,
    /// Defensive fraction α ∈ (0, 1] of q = α p1 + (1 − α) g (see [`Proposal`]).
    pub defensive: f64,
    /// `false` (default): one proposal, fitted once from its own seeded
    /// pilot, serves every importance-sampled replica, so the reported
    /// variances are conditional on that proposal (how a fitted proposal is
    /// used in practice; the pilot is a one-off cost). `true`: every replica
    /// fits its own proposal from its own pilot, and the variances include
    /// the proposal's randomness (costs one EM fit per replica).
    pub refit_proposal: bool,
    /// Master seed; every replica's seed is derived from it, the estimator
    /// and n.
    pub seed: u64,
}

impl Default for ReachConfig {
    fn default() -> Self {
        Self {
            sizes: vec![1_000, 10_000, 100_000, 1_000_000],
            plain_extra: vec![2_000_000],
            replicas: 50,
            pilot: 20_000,
            components: 2,
            defensive: 0.2,
            refit_proposal: false,
            seed: 14,
        }
    }
}

fn config_err(key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl ReachConfig {
    /// Checks every key; the error names it (`reach.<key>`).
    pub fn validate(&self) -> Result<()> {
        if self.sizes.is_empty() {
            return Err(config_err(
                "reach.sizes",
                "the list of sample sizes is empty",
            ));
        }
        for (name, list) in [("sizes", &self.sizes), ("plain_extra", &self.plain_extra)] {
            for (i, &n) in list.iter().enumerate() {
                if n == 0 {
                    return Err(config_err(
                        format!("reach.{name}[{i}]"),
                        "sample size must be ≥ 1",
                    ));
                }
            }
        }
        if self.replicas < 2 {
            return Err(config_err(
                "reach.replicas",
                format!(
                    "need ≥ 2 replicas for a standard deviation, got {}",
                    self.replicas
                ),
            ));
        }
        if self.components == 0 {
            return Err(config_err(
                "reach.components",
                "the Gaussian mixture needs ≥ 1 component",
            ));
        }
        if !(self.defensive > 0.0 && self.defensive <= 1.0) {
            return Err(config_err(
                "reach.defensive",
                format!(
                    "the defensive fraction α must lie in (0, 1] (α = 0 leaves the \
                     importance weights unbounded), got {}",
                    self.defensive
                ),
            ));
        }
        let min_pilot = MIN_PILOT_PER_PARAMETER * PARAMS_PER_COMPONENT * self.components;
        if self.pilot < min_pilot {
            return Err(config_err(
                "reach.pilot",
                format!(
                    "a pilot of {} events is too small for {} components: need ≥ {min_pilot} \
                     ({MIN_PILOT_PER_PARAMETER} per mixture parameter)",
                    self.pilot, self.components
                ),
            ));
        }
        Ok(())
    }
}

/// Which estimator a row of the table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Plain Monte Carlo from p1.
    Plain,
    /// Importance sampling from the defensive proposal.
    Importance,
}

impl Estimator {
    fn label(self) -> &'static str {
        match self {
            Estimator::Plain => "plain",
            Estimator::Importance => "importance",
        }
    }

    fn stream(self) -> u64 {
        match self {
            Estimator::Plain => 1,
            Estimator::Importance => 2,
        }
    }
}

/// The generator of replica `replica` of `estimator` at size `n` of a run
/// with master seed `seed` (stream 0 is the shared proposal's pilot).
pub fn replica_rng(seed: u64, estimator: Estimator, n: usize, replica: usize) -> StdRng {
    StdRng::seed_from_u64(splitmix(
        splitmix(splitmix(splitmix(seed) ^ estimator.stream()) ^ n as u64) ^ replica as u64,
    ))
}

/// One row: an estimator at one n over the replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachRow {
    /// The estimator.
    pub estimator: Estimator,
    /// Events per replica.
    pub n: usize,
    /// Replicas.
    pub replicas: usize,
    /// Mean of q̂_A over the replicas.
    pub mean: f64,
    /// Standard deviation of q̂_A over the replicas.
    pub sd: f64,
    /// sd / exact q_A.
    pub rel_sd: f64,
    /// (mean − exact) / (sd/√replicas): the bias in units of the mean's
    /// standard error.
    pub pull: f64,
    /// Mean over replicas of the per-replica standard error (from the
    /// sample variance of the events), to compare with `sd`.
    pub mean_se: f64,
    /// Importance rows: var(plain, n) / var(importance, n); `None` for plain.
    pub var_ratio: Option<f64>,
    /// Wall time of the row (all replicas, in parallel), seconds.
    pub wall_s: f64,
}

/// Variance of plain sampling at `plain_n` over that of importance sampling
/// at `importance_n`: > 1 means the smaller importance-sampled run is the
/// more precise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Events of the importance-sampled run.
    pub importance_n: usize,
    /// Events of the plain run.
    pub plain_n: usize,
    /// var(plain, plain_n) / var(importance, importance_n).
    pub var_ratio: f64,
}

/// The variance study's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReachTable {
    /// The reference q_A (quadrature).
    pub exact: f64,
    /// The quadrature's bound on the reach outside its box (see [`Quadrature`]).
    pub exact_tail_bound: f64,
    /// The settings.
    pub config: ReachConfig,
    /// The proposal shared by the importance rows (`None` with
    /// `refit_proposal`).
    pub proposal: Option<Proposal>,
    /// One row per (n, estimator): for each size plain then importance,
    /// then the plain-only sizes.
    pub rows: Vec<ReachRow>,
    /// Every importance size against every plain-only size.
    pub comparisons: Vec<Comparison>,
    /// Wall time of the whole run (quadrature, pilot, all rows), seconds.
    pub wall_s: f64,
}

fn summarise(
    estimator: Estimator,
    n: usize,
    est: &[Estimate],
    exact: f64,
    wall_s: f64,
) -> ReachRow {
    let r = est.len() as f64;
    let mean = est.iter().map(|e| e.q).sum::<f64>() / r;
    let var = est.iter().map(|e| (e.q - mean).powi(2)).sum::<f64>() / (r - 1.0);
    let sd = var.sqrt();
    ReachRow {
        estimator,
        n,
        replicas: est.len(),
        mean,
        sd,
        rel_sd: sd / exact,
        pull: (mean - exact) / (sd / r.sqrt()),
        mean_se: est.iter().map(|e| e.se).sum::<f64>() / r,
        var_ratio: None,
        wall_s,
    }
}

/// Runs the variance study: the exact q_A by quadrature, then for each size
/// in `sizes` the plain and the importance-sampled estimator and for each in
/// `plain_extra` the plain one, `replicas` seeded replicas each (rayon over
/// replicas; seeds from [`replica_rng`]).
///
/// Cost: the default study draws 3.2e8 events (1e8 of them in the plain
/// 2e6 × 50 row); every event is a draw and two density evaluations (plus
/// the mixture for importance sampling), ~1e7 events/s on 2 cores in the
/// dev profile, so the default study takes ~30 s there (measured; the
/// table records the wall time of each row and of the run).
pub fn run(toy: &Fiducial, cfg: &ReachConfig) -> Result<ReachTable> {
    cfg.validate()?;
    toy.validate()?;
    let t0 = Instant::now();
    let quad = q_asimov_quadrature(toy, &QuadratureGrid::default())?;
    let exact = quad.value;
    let fit = |rng: &mut StdRng| fit_proposal(toy, cfg.pilot, cfg.components, cfg.defensive, rng);
    let shared = if cfg.refit_proposal {
        None
    } else {
        let mut rng = StdRng::seed_from_u64(splitmix(splitmix(cfg.seed)));
        Some(fit(&mut rng)?)
    };
    let replicas = |estimator: Estimator, n: usize| -> Result<(Vec<Estimate>, f64)> {
        let t = Instant::now();
        let est = (0..cfg.replicas)
            .into_par_iter()
            .map(|r| {
                let mut rng = replica_rng(cfg.seed, estimator, n, r);
                match estimator {
                    Estimator::Plain => plain_estimate(toy, n, &mut rng),
                    Estimator::Importance => match &shared {
                        Some(p) => importance_estimate(p, n, &mut rng),
                        None => importance_estimate(&fit(&mut rng)?, n, &mut rng),
                    },
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((est, t.elapsed().as_secs_f64()))
    };
    let mut rows = Vec::new();
    for &n in &cfg.sizes {
        let (plain, tp) = replicas(Estimator::Plain, n)?;
        let plain_row = summarise(Estimator::Plain, n, &plain, exact, tp);
        let (imp, ti) = replicas(Estimator::Importance, n)?;
        let mut imp_row = summarise(Estimator::Importance, n, &imp, exact, ti);
        imp_row.var_ratio = Some((plain_row.sd / imp_row.sd).powi(2));
        rows.push(plain_row);
        rows.push(imp_row);
    }
    for &n in &cfg.plain_extra {
        let (plain, tp) = replicas(Estimator::Plain, n)?;
        rows.push(summarise(Estimator::Plain, n, &plain, exact, tp));
    }
    let mut comparisons = Vec::new();
    for &pn in &cfg.plain_extra {
        let Some(p) = rows
            .iter()
            .rev()
            .find(|r| r.estimator == Estimator::Plain && r.n == pn)
        else {
            continue;
        };
        for r in rows.iter().filter(|r| r.estimator == Estimator::Importance) {
            comparisons.push(Comparison {
                importance_n: r.n,
                plain_n: pn,
                var_ratio: (p.sd / r.sd).powi(2),
            });
        }
    }
    Ok(ReachTable {
        exact,
        exact_tail_bound: quad.tail_bound,
        config: cfg.clone(),
        proposal: shared,
        rows,
        comparisons,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

impl ReachTable {
    /// The table as Markdown: the exact value in the header, one line per
    /// row (estimator, n, mean q_A, sd, sd/q_A, (mean − exact)/se, variance
    /// ratio plain/importance at the same n, wall time), then the
    /// comparisons against the plain-only sizes.
    pub fn to_markdown(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "Asimov reach of the fiducial toy: exact q_A = {:.10} (quadrature; tail bound {:.1e})\n\n\
             {} replicas per row, seed {}; importance sampling: q = {} p1 + {} g, g a {}-component \
             Gaussian mixture in (m, φ, ln Δy) fitted to |h| p1 from a {}-event pilot{}.\n\n",
            self.exact,
            self.exact_tail_bound,
            c.replicas,
            c.seed,
            c.defensive,
            1.0 - c.defensive,
            c.components,
            c.pilot,
            if c.refit_proposal {
                " (refitted per replica)"
            } else {
                " (one proposal for all replicas)"
            }
        );
        s.push_str(
            "| estimator | n | mean q_A | sd | sd/q_A | (mean−exact)/se | var ratio plain/IS | wall [s] |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let ratio = r
                .var_ratio
                .map_or_else(|| "—".to_string(), |v| format!("{v:.1}"));
            s.push_str(&format!(
                "| {} | {} | {:.6} | {:.3e} | {:.2e} | {:+.2} | {} | {:.2} |\n",
                r.estimator.label(),
                r.n,
                r.mean,
                r.sd,
                r.rel_sd,
                r.pull,
                ratio,
                r.wall_s
            ));
        }
        if !self.comparisons.is_empty() {
            s.push('\n');
            for cmp in &self.comparisons {
                s.push_str(&format!(
                    "var(plain, n = {}) / var(importance, n = {}) = {:.2}\n",
                    cmp.plain_n, cmp.importance_n, cmp.var_ratio
                ));
            }
        }
        s.push_str(&format!("\nTotal wall time {:.1} s.\n", self.wall_s));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for n in [1, 2, 5, 10, 11] {
            let rule = gauss_legendre(n);
            let wsum: f64 = rule.iter().map(|r| r.1).sum();
            assert!((wsum - 2.0).abs() < 1e-14, "n = {n}: Σw = {wsum}");
            // ∫_{-1}^{1} x^{2n-2} = 2/(2n-1), exact for the n-point rule
            let p = 2 * n as i32 - 2;
            let got: f64 = rule.iter().map(|&(x, w)| w * x.powi(p)).sum();
            let want = 2.0 / (p as f64 + 1.0);
            assert!((got - want).abs() < 1e-13, "n = {n}: {got} vs {want}");
        }
    }

    #[test]
    fn psi_series_matches_closed_form() {
        for r in [1e-2, 9.9e-3, 5e-3] {
            let closed = (1.0 + r) * f64::ln_1p(r) - r;
            assert!((psi(r) - closed).abs() < 1e-10 * closed, "r = {r}");
        }
        assert_eq!(psi(0.0), 0.0);
    }

    #[test]
    fn cholesky_rejects_singular() {
        let c = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(cholesky3(&c).is_none());
        let c = [[2.0, 0.5, 0.0], [0.5, 1.0, 0.1], [0.0, 0.1, 3.0]];
        let l = cholesky3(&c).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| l[i][k] * l[j][k]).sum();
                assert!((v - c[i][j]).abs() < 1e-14);
            }
        }
    }
}
