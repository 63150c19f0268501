//! Profile-likelihood intervals of the parameter of interest (MINOS-style):
//! the POI values where −2 ln λ(μ) = twice_nll(μ, θ̂̂) − twice_nll(μ̂, θ̂)
//! reaches `delta` (1 for the 68 % interval), every point a global
//! fixed-POI fit. Used to evaluate INFERNO's benchmarks as the paper does
//! (the interval width on Asimov data) rather than by the Fisher information.

use serde::{Deserialize, Serialize};

use super::fit::{fit, fixed_poi_fit, FitOptions, FitSetup};
use super::Likelihood;
use crate::{Error, Result};

/// A profile-likelihood interval of the POI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoiInterval {
    /// The maximum-likelihood POI value.
    pub mle: f64,
    /// Lower end (the POI's lower bound if the curve stays below `delta`).
    pub lo: f64,
    /// Upper end (the POI's upper bound if the curve stays below `delta`).
    pub hi: f64,
    /// Whether the lower end is the POI's bound rather than a crossing.
    pub lo_at_bound: bool,
    /// Whether the upper end is the POI's bound rather than a crossing.
    pub hi_at_bound: bool,
    /// Number of fixed-POI fits made.
    pub fits: usize,
}

impl PoiInterval {
    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        0.5 * (self.hi - self.lo)
    }
}

/// The interval {μ : −2 ln λ(μ) ≤ delta} around the MLE of `model` on
/// `data`: brackets each crossing by steps of 1/sqrt(I_μμ) (doubling),
/// then bisects to |Δμ| ≤ 1e-10·max(1, |μ|) (−2 ln λ is monotone on each
/// side of the MLE, so bisection cannot miss the crossing).
pub fn poi_interval<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    opts: &FitOptions,
    delta: f64,
) -> Result<PoiInterval> {
    if !(delta.is_finite() && delta > 0.0) {
        return Err(Error::InvalidInput(format!(
            "profile interval: delta must be finite and > 0, got {delta}"
        )));
    }
    let poi = model
        .poi_index()
        .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))?;
    let best = fit(model, data, setup, opts)?;
    let mle = best.pars[poi];
    let (b_lo, b_hi) = setup.bounds[poi];
    // 1/sqrt(I_μμ) from the free fit's Hessian of twice_nll (= 2 I): the
    // conditional σ_μ, which underestimates the profile width; it only sets
    // the first bracketing step (the steps double)
    let n = best.pars.len();
    let sigma = 1.0 / (0.5 * best.hessian.get(poi * n + poi).copied().unwrap_or(0.0)).sqrt();
    let step0 = if sigma.is_finite() && sigma > 0.0 {
        sigma
    } else {
        0.1 * (b_hi - b_lo)
    };
    let mut fits = 0usize;
    let mut warm = best.pars.clone();
    let mut q = |mu: f64, warm: &mut Vec<f64>| -> Result<f64> {
        fits += 1;
        let r = fixed_poi_fit(model, data, mu, setup, Some(warm), opts)?;
        warm.clone_from(&r.pars);
        Ok(r.twice_nll - best.twice_nll)
    };
    let mut side = |dir: f64, warm: &mut Vec<f64>| -> Result<(f64, bool)> {
        let bound = if dir > 0.0 { b_hi } else { b_lo };
        let (mut inner, mut step) = (mle, step0);
        let outer = loop {
            let mu = mle + dir * step;
            if (mu - bound) * dir >= 0.0 {
                if q(bound, warm)? < delta {
                    return Ok((bound, true));
                }
                break bound;
            }
            if q(mu, warm)? >= delta {
                break mu;
            }
            inner = mu;
            step *= 2.0;
        };
        let (mut a, mut b) = (inner, outer);
        let tol = 1e-10 * mle.abs().max(1.0);
        while (b - a).abs() > tol {
            let mid = 0.5 * (a + b);
            if q(mid, warm)? < delta {
                a = mid;
            } else {
                b = mid;
            }
        }
        Ok((0.5 * (a + b), false))
    };
    let (hi, hi_at_bound) = side(1.0, &mut warm)?;
    warm.clone_from(&best.pars);
    let (lo, lo_at_bound) = side(-1.0, &mut warm)?;
    Ok(PoiInterval {
        mle,
        lo,
        hi,
        lo_at_bound,
        hi_at_bound,
        fits,
    })
}
