//! Goodness of fit: the saturated-model statistic
//! `2 Σ [λ − n + n ln(n/λ)]` over the unblinded main bins at the best fit
//! (plus the constraint terms relative to their maximum, see [`saturated`]),
//! and its distribution from toys generated from the best fit (Poisson main
//! data; the auxiliary data of constrained parameters fluctuated around
//! their best-fit values like pyhf's `make_pdf(pars).sample()`), each toy
//! refitted. Toys run on rayon; toy `i` draws from its own generator seeded
//! by `(seed, i)`, so results do not depend on the thread count.

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hf::{AuxDistribution, Model};
use crate::infer::{fit, FitOptions, FitResult, FitSetup, Likelihood};
use crate::{Error, Result};

/// How one auxiliary datum is distributed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AuxKind {
    /// `aux ~ N(θ, sigma)`.
    Gaussian {
        /// Constraint width.
        sigma: f64,
    },
    /// `aux ~ Pois(θ·tau)`.
    Poisson {
        /// Scale τ.
        tau: f64,
    },
}

/// One auxiliary datum: its position after the main bins and its parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct AuxEntry {
    /// Index into the auxiliary part of the data.
    pub aux: usize,
    /// The constrained parameter.
    pub par: usize,
    /// Its distribution.
    pub kind: AuxKind,
}

/// The auxiliary data of a model: which parameter each constrains and how
/// (from [`Model::aux_constraints`]).
pub fn aux_entries(model: &Model) -> Result<Vec<AuxEntry>> {
    Ok(model
        .aux_constraints()
        .into_iter()
        .enumerate()
        .map(|(aux, c)| AuxEntry {
            aux,
            par: c.par,
            kind: match c.dist {
                AuxDistribution::Normal { sigma } => AuxKind::Gaussian { sigma },
                AuxDistribution::Poisson { tau } => AuxKind::Poisson { tau },
            },
        })
        .collect())
}

/// Per main bin, whether it is blinded (left out of the likelihood).
pub fn blinded_mask(model: &Model) -> Vec<bool> {
    let ws = model.workspace();
    let mut out = Vec::with_capacity(model.n_main());
    for (name, nb) in model.channels() {
        let bl = ws
            .channels
            .iter()
            .find(|c| &c.name == name)
            .map(|c| c.blinded.clone())
            .unwrap_or_default();
        out.extend((0..*nb).map(|b| bl.contains(&b)));
    }
    out
}

/// The Poisson part of the saturated-model statistic,
/// `2 Σ [λ − n + n ln(n/λ)]` over the unblinded main bins
/// (`n ln(n/λ) = 0` for `n = 0`).
pub fn saturated_main(model: &Model, pars: &[f64], data: &[f64]) -> Result<f64> {
    let lam = model.expected_data(pars)?;
    let mask = blinded_mask(model);
    let mut s = 0.0;
    for b in 0..model.n_main() {
        if mask[b] {
            continue;
        }
        let (n, l) = (data[b], lam[b]);
        s += l - n;
        if n > 0.0 {
            s += n * (n / l).ln();
        }
    }
    Ok(2.0 * s)
}

/// The constraint part: each constraint term relative to its maximum,
/// `((a − θ)/σ)²` (Gaussian) or `2 [θτ − a + a ln(a/(θτ))]` (Poisson).
pub fn constraint_part(aux: &[AuxEntry], n_main: usize, pars: &[f64], data: &[f64]) -> f64 {
    aux.iter()
        .map(|e| {
            let a = data[n_main + e.aux];
            let th = pars[e.par];
            match e.kind {
                AuxKind::Gaussian { sigma } => ((a - th) / sigma).powi(2),
                AuxKind::Poisson { tau } => {
                    let l = th * tau;
                    2.0 * (l - a + if a > 0.0 { a * (a / l).ln() } else { 0.0 })
                }
            }
        })
        .sum()
}

/// The saturated-model statistic: [`saturated_main`] plus [`constraint_part`]
/// (as Combine's saturated model, whose constraint terms sit at their
/// maximum), i.e. `twice_nll` minus its value for a model that fits every
/// unblinded bin and every auxiliary datum exactly. Nested fits therefore
/// give non-increasing values.
pub fn saturated_with(model: &Model, aux: &[AuxEntry], pars: &[f64], data: &[f64]) -> Result<f64> {
    Ok(saturated_main(model, pars, data)? + constraint_part(aux, model.n_main(), pars, data))
}

/// [`saturated_with`] with the model's [`aux_entries`].
pub fn saturated(model: &Model, pars: &[f64], data: &[f64]) -> Result<f64> {
    let aux = aux_entries(model)?;
    saturated_with(model, &aux, pars, data)
}

/// Number of unblinded main bins.
pub fn n_unblinded(model: &Model) -> usize {
    blinded_mask(model).iter().filter(|b| !**b).count()
}

/// A pseudo-dataset from the expectation at `pars` ([`Model::sample_data`]:
/// Poisson main bins, aux data drawn from the constraint terms centred at
/// `pars`, as pyhf's `make_pdf(pars).sample()`).
pub fn sample_toy<R: rand::Rng>(model: &Model, pars: &[f64], rng: &mut R) -> Result<Vec<f64>> {
    model.sample_data(pars, rng)
}

/// The generator of toy `i` of a run with master seed `seed`.
pub fn toy_rng(seed: u64, i: u64) -> StdRng {
    use crate::infer::toys::splitmix;
    StdRng::seed_from_u64(splitmix(splitmix(seed) ^ splitmix(i.wrapping_add(0x5151))))
}

/// The fit setup of a refit started from `start` (inside the bounds).
pub fn warm_setup(model: &Model, start: &[f64], fixed: &[bool]) -> FitSetup {
    let mut s = FitSetup::from_model(model);
    s.fixed = fixed.to_vec();
    s.init = start
        .iter()
        .zip(&s.bounds)
        .zip(fixed)
        .map(|((&x, &(lo, hi)), &f)| if f { x } else { x.clamp(lo, hi) })
        .collect();
    s
}

/// The goodness-of-fit result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GofResult {
    /// The saturated statistic of the observed data at its best fit.
    pub observed: f64,
    /// Number of unblinded main bins.
    pub n_bins: usize,
    /// Number of non-fixed parameters of the fit.
    pub n_pars: usize,
    /// Toys requested.
    pub n_toys: usize,
    /// Master seed.
    pub seed: u64,
    /// The statistic of each converged toy, in toy order.
    pub toys: Vec<f64>,
    /// Toys whose fit failed (left out).
    pub failed: usize,
    /// Fraction of converged toys with a statistic ≥ the observed one.
    pub p_value: f64,
}

/// Saturated GoF with `n_toys` toys from the best fit `best` of `model`
/// (`fixed`: the fit's fixed flags, e.g. a fixed POI).
pub fn gof_toys(
    model: &Model,
    best: &FitResult,
    observed_data: &[f64],
    n_toys: usize,
    seed: u64,
    opts: &FitOptions,
    bar: &ProgressBar,
) -> Result<GofResult> {
    let aux = aux_entries(model)?;
    let observed = saturated_with(model, &aux, &best.pars, observed_data)?;
    let setup = warm_setup(model, &best.pars, &best.fixed);
    let stats: Vec<Option<f64>> = (0..n_toys)
        .into_par_iter()
        .map(|i| {
            let mut rng = toy_rng(seed, i as u64);
            let out = sample_toy(model, &best.pars, &mut rng)
                .and_then(|d| {
                    let r = fit(model, &d, &setup, opts)?;
                    saturated_with(model, &aux, &r.pars, &d)
                })
                .ok();
            bar.inc(1);
            out
        })
        .collect();
    let failed = stats.iter().filter(|s| s.is_none()).count();
    let toys: Vec<f64> = stats.into_iter().flatten().collect();
    if toys.is_empty() && n_toys > 0 {
        return Err(Error::FitFailed {
            context: "goodness-of-fit toys".into(),
            message: format!("all {n_toys} toy fits failed"),
        });
    }
    let above = toys.iter().filter(|&&t| t >= observed).count();
    Ok(GofResult {
        observed,
        n_bins: n_unblinded(model),
        n_pars: best.fixed.iter().filter(|f| !**f).count(),
        n_toys,
        seed,
        p_value: if toys.is_empty() {
            f64::NAN
        } else {
            above as f64 / toys.len() as f64
        },
        toys,
        failed,
    })
}
