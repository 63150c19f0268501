//! Closure studies of the transfer-function method on the binned pass/fail
//! toy ([`crate::toys::passfail`]): the background predicted in a blinded
//! pass-region window by a background-only fit, compared with the truth over
//! many pseudo-datasets ([`closure_toys`]), and the F-test order selection
//! repeated on pseudo-datasets of a known generating order
//! ([`ftest_toys`]). `examples/transfer_closure.rs` runs both at full
//! size, `tests/transfer_closure.rs` a small version.
//!
//! Each pseudo-dataset has its own seed ([`super::gof::toy_rng`]), so the
//! results do not depend on the number of threads.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::{build, TransferConfig, PASS};
use super::ftest::select_order;
use super::gof::toy_rng;
use super::report::{fit_config, jacobian, variance, TransferFit, TransferFitOptions};
use crate::hf::{InputKind, Model, ModelOptions};
use crate::infer::{fit, FitResult, FitSetup, Likelihood};
use crate::toys::passfail::{PassFailToy, ToyYields};
use crate::{Error, Result};

/// The post-fit background in a set of pass-region cells.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowPrediction {
    /// Predicted background (every sample but the signal), summed over the cells.
    pub predicted: f64,
    /// Its ±1σ from the fit covariance (linear propagation, exact Jacobian).
    pub sigma: f64,
    /// The QCD part alone.
    pub qcd: f64,
    /// Its ±1σ.
    pub qcd_sigma: f64,
    /// Observed counts in the cells (left out of the fit when blinded).
    pub observed: f64,
}

/// The background predicted by `fit` in the pass-region `cells` (`[ix, iy]`),
/// with its uncertainty from the fit covariance. The signal sample (if the
/// config has one) is excluded; `qcd` is the config's QCD sample.
pub fn window_prediction(
    fit: &TransferFit,
    cfg: &TransferConfig,
    cells: &[[usize; 2]],
) -> Result<WindowPrediction> {
    let model = &fit.model;
    let layout = &fit.built.layout;
    let mut offset = 0;
    let mut pass_offset = None;
    for (name, nb) in model.channels() {
        if name == PASS {
            pass_offset = Some(offset);
        }
        offset += nb;
    }
    let pass_offset = pass_offset
        .ok_or_else(|| Error::InvalidInput("internal: the model has no pass channel".into()))?;
    let bins: Vec<usize> = cells
        .iter()
        .map(|&[i, j]| {
            let b = (i < layout.nx && j < layout.ny)
                .then(|| layout.bin_of[i * layout.ny + j])
                .flatten()
                .ok_or_else(|| Error::Config {
                    key: "window".into(),
                    message: format!("cell [{i}, {j}] is outside the grid or masked"),
                })?;
            Ok(pass_offset + b)
        })
        .collect::<Result<_>>()?;
    let signal: Vec<&str> = cfg.signal.iter().map(|s| s.name.as_str()).collect();
    let (predicted, sigma) =
        sum_with_sigma(model, &fit.result, &without_samples(model, &signal), &bins)?;
    let (qcd, qcd_sigma) = sum_with_sigma(
        model,
        &fit.result,
        &super::report::sample_inputs(model, &cfg.qcd.name),
        &bins,
    )?;
    Ok(WindowPrediction {
        predicted,
        sigma,
        qcd,
        qcd_sigma,
        observed: bins.iter().map(|&g| fit.data[g]).sum(),
    })
}

/// The templates of `model` with the listed samples' nominal and histosys
/// inputs zeroed: the expected data then holds every other sample.
pub fn without_samples(model: &Model, samples: &[&str]) -> Vec<f64> {
    let mut inp = model.inputs().to_vec();
    for sl in model.input_layout() {
        if samples.contains(&sl.sample.as_str())
            && matches!(
                sl.kind,
                InputKind::Nominal | InputKind::HistoLo | InputKind::HistoHi
            )
        {
            inp[sl.offset..sl.offset + sl.len].fill(0.0);
        }
    }
    inp
}

/// The expected data for templates `inputs` at the best fit of `result`,
/// summed over the main bins `bins`, and its ±1σ from the fit covariance
/// (linear propagation through the exact Jacobian; fixed parameters do not
/// contribute).
pub fn sum_with_sigma(
    model: &Model,
    result: &FitResult,
    inputs: &[f64],
    bins: &[usize],
) -> Result<(f64, f64)> {
    let n = model.n_pars();
    let cov = result.covariance()?;
    let free: Vec<usize> = (0..n).filter(|&i| !result.fixed[i]).collect();
    let (v, rows) = jacobian(model, &result.pars, inputs, &free)?;
    let mut dense = vec![0.0; n];
    for &g in bins {
        let r = rows.get(g).ok_or_else(|| {
            Error::InvalidInput(format!(
                "main bin {g} outside the model's {} bins",
                rows.len()
            ))
        })?;
        for &(i, a) in r {
            dense[i] += a;
        }
    }
    let row: Vec<(usize, f64)> = dense
        .iter()
        .enumerate()
        .filter(|(_, a)| **a != 0.0)
        .map(|(i, &a)| (i, a))
        .collect();
    Ok((
        bins.iter().map(|&g| v[g]).sum(),
        variance(&row, &cov, n).sqrt(),
    ))
}

/// Mean and width of a sample with their standard errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Its standard error, `sd/√n`.
    pub mean_err: f64,
    /// Standard deviation (`n − 1` normalisation).
    pub width: f64,
    /// Its standard error for a normal sample, `sd/√(2(n − 1))`.
    pub width_err: f64,
}

/// [`Summary`] of `v` (NaN fields for fewer than two values).
pub fn summarize(v: &[f64]) -> Summary {
    let n = v.len();
    if n < 2 {
        return Summary {
            n,
            mean: v.first().copied().unwrap_or(f64::NAN),
            mean_err: f64::NAN,
            width: f64::NAN,
            width_err: f64::NAN,
        };
    }
    let nf = n as f64;
    let mean = v.iter().sum::<f64>() / nf;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    Summary {
        n,
        mean,
        mean_err: sd / nf.sqrt(),
        width: sd,
        width_err: sd / (2.0 * (nf - 1.0)).sqrt(),
    }
}

/// Settings of a closure study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosureOptions {
    /// Pseudo-datasets.
    pub n_toys: usize,
    /// Master seed.
    pub seed: u64,
    /// Bernstein TF order of the fit.
    pub order: [usize; 2],
    /// Blinded pass-region cells `[ix, iy]`: the window whose background is predicted.
    pub window: Vec<[usize; 2]>,
    /// Signal strength of the pseudo-data (the fit is background-only, POI fixed at 0).
    pub mu_gen: f64,
    /// Draw the auxiliary data (the W/Z normsys's global observable) of
    /// every pseudo-dataset from its constraint around the truth, as pyhf's
    /// `make_pdf(pars).sample()` does; `false` keeps them at the nominal
    /// value (a conditional ensemble, in which the prior's share of σ_pred
    /// does not scatter the prediction).
    pub fluctuate_aux: bool,
}

/// One pseudo-dataset of a closure study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosureToy {
    /// Toy index (its seed is `toy_rng(seed, index)`).
    pub index: usize,
    /// The prediction.
    pub prediction: WindowPrediction,
    /// True expected background (QCD + the other backgrounds) in the window.
    pub truth: f64,
    /// True expected QCD in the window.
    pub truth_qcd: f64,
    /// `(truth − predicted)/σ_pred`.
    pub pull: f64,
    /// `(truth_qcd − qcd)/σ_qcd`.
    pub pull_qcd: f64,
    /// `(observed − predicted)/√(σ_pred² + predicted)`.
    pub pull_observed: f64,
}

/// The result of [`closure_toys`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosureResult {
    /// The settings.
    pub options: ClosureOptions,
    /// Converged toys, in toy order.
    pub toys: Vec<ClosureToy>,
    /// Toys whose fit failed (left out), with the error.
    pub failed: Vec<(usize, String)>,
    /// Pull against the truth (the acceptance quantity).
    pub pull: Summary,
    /// The same for the QCD part alone.
    pub pull_qcd: Summary,
    /// Pull of the observed window counts.
    pub pull_observed: Summary,
    /// Mean of `(predicted − truth)/truth`.
    pub rel_bias: f64,
    /// Mean of `σ_pred/truth`.
    pub rel_sigma: f64,
}

/// The config of one pseudo-dataset of `toy` for a closure or F-test study:
/// the toy's grid, background-only data drawn at `mu_gen`, a Bernstein TF of
/// `order`, the `window` blinded.
pub fn toy_config(
    toy: &PassFailToy,
    expected: &ToyYields,
    order: [usize; 2],
    window: &[[usize; 2]],
    mu_gen: f64,
    rng: &mut rand::rngs::StdRng,
) -> Result<TransferConfig> {
    let data = toy.pseudo_data(expected, mu_gen, rng)?;
    let mut cfg = TransferConfig::from_toy(toy, expected, &data, order);
    cfg.blinded = window.iter().map(|c| c.to_vec()).collect();
    Ok(cfg)
}

fn cell_sum(g: &[Vec<f64>], cells: &[[usize; 2]]) -> f64 {
    cells.iter().map(|&[i, j]| g[i][j]).sum()
}

/// Runs the closure study (parallel over toys; see the module docs).
pub fn closure_toys(toy: &PassFailToy, opts: &ClosureOptions) -> Result<ClosureResult> {
    let expected = toy.expected()?;
    let truth_qcd = cell_sum(&expected.qcd.pass, &opts.window);
    let truth = truth_qcd + cell_sum(&expected.other.pass, &opts.window);
    let fit_opts = TransferFitOptions {
        fix_poi: Some(0.0),
        ..Default::default()
    };
    let runs: Vec<(usize, Result<ClosureToy>)> = (0..opts.n_toys)
        .into_par_iter()
        .map(|i| {
            let run = || -> Result<ClosureToy> {
                let mut rng = toy_rng(opts.seed, i as u64);
                let cfg = toy_config(
                    toy,
                    &expected,
                    opts.order,
                    &opts.window,
                    opts.mu_gen,
                    &mut rng,
                )?;
                let fit = if opts.fluctuate_aux {
                    let built = build(&cfg)?;
                    let model = Model::new(&built.workspace, &ModelOptions::default())?;
                    let mut data = model.observed_data();
                    let n_main = model.n_main();
                    // Aux data from the constraints at the nominal parameters (the truth).
                    let aux = model.sample_data(&model.init(), &mut rng)?;
                    data[n_main..].copy_from_slice(&aux[n_main..]);
                    let mut setup = FitSetup::from_model(&model);
                    let poi = model.poi_index().ok_or_else(|| {
                        Error::InvalidInput("internal: the toy config has no POI".into())
                    })?;
                    setup = setup.with_fixed(poi, 0.0);
                    let result = fit(&model, &data, &setup, &fit_opts.fit)?;
                    TransferFit {
                        built,
                        model,
                        data,
                        result,
                        fit_time_s: 0.0,
                    }
                } else {
                    fit_config(&cfg, &fit_opts)?
                };
                let p = window_prediction(&fit, &cfg, &opts.window)?;
                Ok(ClosureToy {
                    index: i,
                    truth,
                    truth_qcd,
                    pull: (truth - p.predicted) / p.sigma,
                    pull_qcd: (truth_qcd - p.qcd) / p.qcd_sigma,
                    pull_observed: (p.observed - p.predicted)
                        / (p.sigma * p.sigma + p.predicted).sqrt(),
                    prediction: p,
                })
            };
            (i, run())
        })
        .collect();
    let mut toys = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in runs {
        match r {
            Ok(t) => toys.push(t),
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    let col = |f: fn(&ClosureToy) -> f64| toys.iter().map(f).collect::<Vec<_>>();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(ClosureResult {
        pull: summarize(&col(|t| t.pull)),
        pull_qcd: summarize(&col(|t| t.pull_qcd)),
        pull_observed: summarize(&col(|t| t.pull_observed)),
        rel_bias: mean(col(|t| (t.prediction.predicted - t.truth) / t.truth)),
        rel_sigma: mean(col(|t| t.prediction.sigma / t.truth)),
        options: opts.clone(),
        toys,
        failed,
    })
}

/// Settings of an F-test order-selection study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FTestStudyOptions {
    /// Pseudo-datasets.
    pub n_toys: usize,
    /// Master seed.
    pub seed: u64,
    /// First order of the selection.
    pub start: [usize; 2],
    /// Highest order per axis.
    pub max: [usize; 2],
    /// Significance level of each F-test.
    pub alpha: f64,
    /// Blinded pass-region cells.
    pub window: Vec<[usize; 2]>,
}

/// The result of [`ftest_toys`] for one generating toy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FTestStudy {
    /// The settings.
    pub options: FTestStudyOptions,
    /// The generating order (the tagger's Bernstein order).
    pub generating: [usize; 2],
    /// Chosen order per converged toy, in toy order.
    pub chosen: Vec<[usize; 2]>,
    /// Toys whose selection failed, with the error.
    pub failed: Vec<(usize, String)>,
    /// `(order, count)` over the chosen orders, most frequent first.
    pub counts: Vec<([usize; 2], usize)>,
    /// Fraction of converged toys that chose the generating order.
    pub fraction_correct: f64,
}

/// Runs [`select_order`] (background-only fits, the window blinded) on
/// `n_toys` pseudo-datasets of a toy with a [`Tagger::Polynomial`] tagger.
///
/// [`Tagger::Polynomial`]: crate::toys::passfail::Tagger::Polynomial
pub fn ftest_toys(toy: &PassFailToy, opts: &FTestStudyOptions) -> Result<FTestStudy> {
    let generating = match &toy.tagger {
        crate::toys::passfail::Tagger::Polynomial { order, .. } => *order,
        _ => {
            return Err(Error::InvalidInput(
                "the F-test study needs a polynomial tagger (a generating order)".into(),
            ))
        }
    };
    let expected = toy.expected()?;
    let fit_opts = TransferFitOptions {
        fix_poi: Some(0.0),
        ..Default::default()
    };
    let runs: Vec<(usize, Result<[usize; 2]>)> = (0..opts.n_toys)
        .into_par_iter()
        .map(|i| {
            let run = || -> Result<[usize; 2]> {
                let mut rng = toy_rng(opts.seed, i as u64);
                let cfg = toy_config(toy, &expected, opts.start, &opts.window, 0.0, &mut rng)?;
                let sel = select_order(&cfg, &opts.start, &opts.max, opts.alpha, &fit_opts)?;
                Ok([sel.chosen[0], sel.chosen[1]])
            };
            (i, run())
        })
        .collect();
    let mut chosen = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in runs {
        match r {
            Ok(o) => chosen.push(o),
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    let mut counts: Vec<([usize; 2], usize)> = Vec::new();
    for o in &chosen {
        match counts.iter_mut().find(|(c, _)| c == o) {
            Some(e) => e.1 += 1,
            None => counts.push((*o, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let right = chosen.iter().filter(|o| **o == generating).count();
    Ok(FTestStudy {
        options: opts.clone(),
        generating,
        fraction_correct: right as f64 / chosen.len().max(1) as f64,
        chosen,
        failed,
        counts,
    })
}
