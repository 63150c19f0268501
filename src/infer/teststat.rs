//! Profile-likelihood test statistics with pyhf's conventions.
//!
//! All statistics start from `t = max(0, twice_nll(μ, θ̂̂) − twice_nll(μ̂, θ̂))`
//! (pyhf clips at zero), where the fixed-POI fit and the free fit use the
//! same bounds. The one-sided branches are
//! `qμ = q̃μ = 0 if μ̂ > μ` and `q0 = 0 if μ̂ < μ` (μ = 0 for discovery).
//! The tilde variants get their "μ̂ clipped at the POI's lower bound"
//! behaviour from the bounded free fit (pyhf's suggested POI bound starts at
//! 0); as in pyhf, the plain variants are computed with the same bounds, so
//! `qμ` and `q̃μ` coincide for identical bounds and differ only through the
//! asymptotic formulae ([`super::asymptotics`]). Relax the POI's lower bound
//! in the [`FitSetup`] to get the textbook unbounded `qμ`/`tμ`.

use std::fmt;
use std::str::FromStr;

use super::fit::{fit, fixed_poi_fit, FitOptions, FitResult, FitSetup};
use super::Likelihood;
use crate::{Error, Result};

/// Which test statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStat {
    /// Discovery `q0` (one-sided: 0 when μ̂ < μ).
    Q0,
    /// Upper-limit `qμ` (one-sided: 0 when μ̂ > μ).
    Qmu,
    /// `q̃μ` (as `qμ`, μ̂ bounded below by the POI's lower bound).
    QmuTilde,
    /// Two-sided `tμ`.
    Tmu,
    /// Two-sided `t̃μ` (μ̂ bounded below by the POI's lower bound).
    TmuTilde,
}

impl FromStr for TestStat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "q0" => Ok(TestStat::Q0),
            "q" | "qmu" => Ok(TestStat::Qmu),
            "qtilde" | "qmu_tilde" => Ok(TestStat::QmuTilde),
            "t" | "tmu" => Ok(TestStat::Tmu),
            "ttilde" | "tmu_tilde" => Ok(TestStat::TmuTilde),
            _ => Err(Error::InvalidInput(format!(
                "unknown test statistic '{s}' (expected q0, q, qtilde, t or ttilde)"
            ))),
        }
    }
}

impl fmt::Display for TestStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestStat::Q0 => "q0",
            TestStat::Qmu => "q",
            TestStat::QmuTilde => "qtilde",
            TestStat::Tmu => "t",
            TestStat::TmuTilde => "ttilde",
        })
    }
}

/// A test statistic with the two fits it came from.
#[derive(Debug, Clone)]
pub struct TestStatValue {
    /// The value of the statistic (≥ 0).
    pub value: f64,
    /// Fit with the POI fixed at the tested value.
    pub fixed_fit: FitResult,
    /// Free (unconditional) fit.
    pub free_fit: FitResult,
}

/// Evaluate `kind` at POI value `mu` given a converged free fit to the same
/// data (reused, e.g. across the points of a limit scan). The fixed-POI fit
/// is warm-started from the free fit.
pub fn test_statistic_with_free_fit<L: Likelihood + ?Sized>(
    kind: TestStat,
    model: &L,
    data: &[f64],
    mu: f64,
    setup: &FitSetup,
    opts: &FitOptions,
    free_fit: &FitResult,
) -> Result<TestStatValue> {
    if !mu.is_finite() {
        return Err(Error::InvalidInput(format!(
            "tested POI value {mu} is not finite"
        )));
    }
    let poi = model
        .poi_index()
        .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))?;
    let fixed_fit = fixed_poi_fit(model, data, mu, setup, Some(&free_fit.pars), opts)?;
    let value = statistic_from_fits(kind, mu, &fixed_fit, free_fit, poi);
    Ok(TestStatValue {
        value,
        fixed_fit,
        free_fit: free_fit.clone(),
    })
}

/// The statistic from a fixed-POI fit and a free fit (no fitting).
pub fn statistic_from_fits(
    kind: TestStat,
    mu: f64,
    fixed_fit: &FitResult,
    free_fit: &FitResult,
    poi: usize,
) -> f64 {
    statistic(
        kind,
        mu,
        fixed_fit.twice_nll,
        free_fit.twice_nll,
        free_fit.pars[poi],
    )
}

/// The statistic from the two `twice_nll` values and the free fit's μ̂.
pub fn statistic(
    kind: TestStat,
    mu: f64,
    fixed_twice_nll: f64,
    free_twice_nll: f64,
    muhat: f64,
) -> f64 {
    let t = (fixed_twice_nll - free_twice_nll).max(0.0);
    match kind {
        TestStat::Qmu | TestStat::QmuTilde if muhat > mu => 0.0,
        TestStat::Q0 if muhat < mu => 0.0,
        _ => t,
    }
}

/// Evaluate `kind` at POI value `mu`: a free fit and a fixed-POI fit.
pub fn test_statistic<L: Likelihood + ?Sized>(
    kind: TestStat,
    model: &L,
    data: &[f64],
    mu: f64,
    setup: &FitSetup,
    opts: &FitOptions,
) -> Result<TestStatValue> {
    let free_fit = fit(model, data, setup, opts)?;
    test_statistic_with_free_fit(kind, model, data, mu, setup, opts, &free_fit)
}
