//! 2DAlphabet's Fisher F-test between nested TF orders and an
//! order-selection helper.
//!
//! With `χ²` the saturated statistic of each fit, `p` its number of
//! non-fixed parameters and `n` the number of unblinded bins (both regions),
//! `F = ((χ²₁ − χ²₂)/(p₂ − p₁)) / (χ²₂/(n − p₂))`; its p-value is the
//! survival function of the F distribution with `(p₂ − p₁, n − p₂)` degrees
//! of freedom (statrs) and, optionally, the fraction of toys generated from
//! the lower-order fit (both orders refitted on each) with a larger `F`.

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::config::{build, TransferConfig};
use super::gof::{
    aux_entries, n_unblinded, sample_toy, saturated, saturated_with, toy_rng, warm_setup,
};
use super::report::{fit_built, TransferFit, TransferFitOptions};
use crate::infer::{fit, Likelihood};
use crate::{Error, Result};

/// Toy-based F-test p-value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FToys {
    /// Toys requested.
    pub n_toys: usize,
    /// Master seed.
    pub seed: u64,
    /// `F` of each converged toy, in toy order.
    pub f: Vec<f64>,
    /// Toys with a failed fit (left out).
    pub failed: usize,
    /// Fraction of converged toys with `F ≥` the observed one.
    pub p_value: f64,
}

/// One F-test between a lower and a higher order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FTestResult {
    /// Lower TF order.
    pub order1: Vec<usize>,
    /// Higher TF order.
    pub order2: Vec<usize>,
    /// Saturated statistic of the lower-order fit.
    pub chi2_1: f64,
    /// Saturated statistic of the higher-order fit.
    pub chi2_2: f64,
    /// Non-fixed parameters of the lower-order fit.
    pub p1: usize,
    /// Non-fixed parameters of the higher-order fit.
    pub p2: usize,
    /// Unblinded bins.
    pub n: usize,
    /// The F statistic.
    pub f: f64,
    /// Its p-value from the F distribution.
    pub p_value: f64,
    /// Its p-value from toys, if requested.
    pub toys: Option<FToys>,
}

/// `((χ²₁ − χ²₂)/(p₂ − p₁)) / (χ²₂/(n − p₂))`.
pub fn f_statistic(chi2_1: f64, chi2_2: f64, p1: usize, p2: usize, n: usize) -> f64 {
    ((chi2_1 - chi2_2) / (p2 as f64 - p1 as f64)) / (chi2_2 / (n as f64 - p2 as f64))
}

/// `P(F' ≥ f)` for `F' ~ F(p₂ − p₁, n − p₂)`.
pub fn f_p_value(f: f64, p1: usize, p2: usize, n: usize) -> Result<f64> {
    if p2 <= p1 || n <= p2 {
        return Err(Error::InvalidInput(format!(
            "F-test needs p1 < p2 < n, found p1 = {p1}, p2 = {p2}, n = {n}"
        )));
    }
    let d = FisherSnedecor::new((p2 - p1) as f64, (n - p2) as f64)
        .map_err(|e| Error::InvalidInput(format!("F distribution: {e}")))?;
    Ok(if f <= 0.0 { 1.0 } else { d.sf(f) })
}

/// The F-test between two fits of nested orders (`fit1` the lower).
pub fn ftest_fits(
    fit1: &TransferFit,
    fit2: &TransferFit,
    toys: Option<(usize, u64)>,
    opts: &TransferFitOptions,
    bar: &ProgressBar,
) -> Result<FTestResult> {
    let order = |f: &TransferFit| -> Vec<usize> {
        f.built
            .workspace
            .channels
            .iter()
            .flat_map(|c| &c.samples)
            .flat_map(|s| &s.modifiers)
            .find_map(|m| match &m.data {
                crate::hf::ModifierData::TransferFactor(t) if t.constraint.is_none() => {
                    Some(t.order.clone())
                }
                _ => None,
            })
            .unwrap_or_default()
    };
    let (o1, o2) = (order(fit1), order(fit2));
    let p = |f: &TransferFit| f.result.fixed.iter().filter(|x| !**x).count();
    let (p1, p2) = (p(fit1), p(fit2));
    let n = n_unblinded(&fit1.model);
    let chi2_1 = saturated(&fit1.model, &fit1.result.pars, &fit1.data)?;
    let chi2_2 = saturated(&fit2.model, &fit2.result.pars, &fit2.data)?;
    let f = f_statistic(chi2_1, chi2_2, p1, p2, n);
    let p_value = f_p_value(f, p1, p2, n)?;
    let toys = match toys {
        None => None,
        Some((n_toys, seed)) => Some(f_toys(fit1, fit2, n_toys, seed, f, opts, bar)?),
    };
    Ok(FTestResult {
        order1: o1,
        order2: o2,
        chi2_1,
        chi2_2,
        p1,
        p2,
        n,
        f,
        p_value,
        toys,
    })
}

fn f_toys(
    fit1: &TransferFit,
    fit2: &TransferFit,
    n_toys: usize,
    seed: u64,
    f_obs: f64,
    opts: &TransferFitOptions,
    bar: &ProgressBar,
) -> Result<FToys> {
    let (m1, m2) = (&fit1.model, &fit2.model);
    let aux1 = aux_entries(m1)?;
    let aux2 = aux_entries(m2)?;
    let n_main = m1.n_main();
    // For each aux datum of model 2: the aux datum of model 1 of the same
    // parameter name, if any.
    let map: Vec<Option<usize>> = aux2
        .iter()
        .map(|e2| {
            let name = &m2.par_names()[e2.par];
            aux1.iter()
                .find(|e1| &m1.par_names()[e1.par] == name)
                .map(|e1| e1.aux)
        })
        .collect();
    let obs2 = m2.observed_data();
    let s1 = warm_setup(m1, &fit1.result.pars, &fit1.result.fixed);
    let s2 = warm_setup(m2, &fit2.result.pars, &fit2.result.fixed);
    let (p1, p2) = (
        s1.fixed.iter().filter(|x| !**x).count(),
        s2.fixed.iter().filter(|x| !**x).count(),
    );
    let n = n_unblinded(m1);
    let vals: Vec<Option<f64>> = (0..n_toys)
        .into_par_iter()
        .map(|i| {
            let mut rng = toy_rng(seed, i as u64);
            let mut run = || -> Result<f64> {
                let d1 = sample_toy(m1, &fit1.result.pars, &mut rng)?;
                let mut d2 = d1[..n_main].to_vec();
                for (k, src) in map.iter().enumerate() {
                    d2.push(match src {
                        Some(a) => d1[n_main + a],
                        None => obs2[n_main + aux2[k].aux],
                    });
                }
                let r1 = fit(m1, &d1, &s1, &opts.fit)?;
                let r2 = fit(m2, &d2, &s2, &opts.fit)?;
                let c1 = saturated_with(m1, &aux1, &r1.pars, &d1)?;
                let c2 = saturated_with(m2, &aux2, &r2.pars, &d2)?;
                Ok(f_statistic(c1, c2, p1, p2, n))
            };
            let out = run().ok();
            bar.inc(1);
            out
        })
        .collect();
    let failed = vals.iter().filter(|v| v.is_none()).count();
    let f: Vec<f64> = vals.into_iter().flatten().collect();
    let above = f.iter().filter(|&&x| x >= f_obs).count();
    Ok(FToys {
        n_toys,
        seed,
        p_value: if f.is_empty() {
            f64::NAN
        } else {
            above as f64 / f.len() as f64
        },
        f,
        failed,
    })
}

/// Fits `cfg` at TF order `order`.
pub fn fit_order(
    cfg: &TransferConfig,
    order: &[usize],
    opts: &TransferFitOptions,
) -> Result<TransferFit> {
    let c = cfg.with_order(order);
    fit_built(build(&c)?, opts)
}

/// The F-test between orders `o1` (lower) and `o2` of `cfg`.
pub fn ftest(
    cfg: &TransferConfig,
    o1: &[usize],
    o2: &[usize],
    toys: Option<(usize, u64)>,
    opts: &TransferFitOptions,
    bar: &ProgressBar,
) -> Result<FTestResult> {
    if o1.len() != o2.len() || o1.iter().zip(o2).any(|(a, b)| a > b) || o1 == o2 {
        return Err(Error::Config {
            key: "orders".into(),
            message: format!("{o1:?} and {o2:?} are not nested (each order of the first ≤ the second's, not equal)"),
        });
    }
    let f1 = fit_order(cfg, o1, opts)?;
    let f2 = fit_order(cfg, o2, opts)?;
    ftest_fits(&f1, &f2, toys, opts, bar)
}

/// The result of [`select_order`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSelection {
    /// Every F-test run, in order.
    pub tests: Vec<FTestResult>,
    /// The selected order.
    pub chosen: Vec<usize>,
    /// The significance level used.
    pub alpha: f64,
}

/// Raises the TF order one axis at a time, starting at `start`: at each
/// step the F-tests of `current + e_a` against `current` (every axis `a`
/// below its `max`) run, and the order moves to the candidate with the
/// smallest p-value while that is below `alpha`.
pub fn select_order(
    cfg: &TransferConfig,
    start: &[usize],
    max: &[usize],
    alpha: f64,
    opts: &TransferFitOptions,
) -> Result<OrderSelection> {
    if start.len() != cfg.axes.len() || max.len() != cfg.axes.len() {
        return Err(Error::Config {
            key: "orders".into(),
            message: format!(
                "start and max orders need one entry per axis ({})",
                cfg.axes.len()
            ),
        });
    }
    let mut cache: Vec<(Vec<usize>, TransferFit)> = Vec::new();
    fn get(
        cache: &mut Vec<(Vec<usize>, TransferFit)>,
        cfg: &TransferConfig,
        o: &[usize],
        opts: &TransferFitOptions,
    ) -> Result<usize> {
        if let Some(k) = cache.iter().position(|(c, _)| c == o) {
            return Ok(k);
        }
        let f = fit_order(cfg, o, opts)?;
        cache.push((o.to_vec(), f));
        Ok(cache.len() - 1)
    }
    let mut current = start.to_vec();
    let mut tests = Vec::new();
    let hidden = ProgressBar::hidden();
    loop {
        let mut best: Option<FTestResult> = None;
        for a in 0..current.len() {
            if current[a] >= max[a] {
                continue;
            }
            let mut cand = current.clone();
            cand[a] += 1;
            if cfg.with_order(&cand).validate().is_err() {
                continue;
            }
            let k1 = get(&mut cache, cfg, &current, opts)?;
            let k2 = get(&mut cache, cfg, &cand, opts)?;
            let t = ftest_fits(&cache[k1].1, &cache[k2].1, None, opts, &hidden)?;
            if best.as_ref().is_none_or(|b| t.p_value < b.p_value) {
                best = Some(t.clone());
            }
            tests.push(t);
        }
        match best {
            Some(b) if b.p_value < alpha => current = b.order2.clone(),
            _ => break,
        }
    }
    Ok(OrderSelection {
        tests,
        chosen: current,
        alpha,
    })
}
