//! rhalphalib's two-step TF_MC: a linear Bernstein transfer function is
//! fitted to simulated QCD pass/fail templates with anagrad's own fit (a
//! small pass/fail workspace whose "data" are the templates, free per-bin
//! fail yields, continuous Poisson terms), and the mean and covariance of
//! its coefficients (free fail yields profiled) become the Gaussian
//! `constraint` of a `transferfactor` in the data fit.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::{Layout, McFitConfig, TransferConfig, FAIL, PASS};
use crate::hf::modifiers::transfer::{Basis, Form, TransferSpec};
use crate::hf::{Model, ModelOptions, Workspace};
use crate::infer::{fit, FitOptions, FitSetup, Likelihood};
use crate::{Error, Result};

/// The TF_MC fit: coefficients, their covariance and the fitted TF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McFitResult {
    /// Bernstein order per axis.
    pub order: Vec<usize>,
    /// Best-fit coefficients (the constraint's mean).
    pub mean: Vec<f64>,
    /// Their covariance (the constraint's `cov`), profiled over the fail yields.
    pub cov: Vec<Vec<f64>>,
    /// `√diag(cov)`.
    pub uncertainties: Vec<f64>,
    /// `-2 ln L` of the fit to the templates.
    pub twice_nll: f64,
    /// Cells used (those with simulated fail yield > 0).
    pub n_cells: usize,
    /// The fitted TF_MC at every channel bin of the data layout.
    pub tf_at_bins: Vec<f64>,
}

/// Fits the TF_MC of `m` on the cells of `layout` that have simulated fail
/// yields > 0.
pub fn fit_tf_mc(cfg: &TransferConfig, m: &McFitConfig, layout: &Layout) -> Result<McFitResult> {
    let fail = layout.flatten(&m.fail.rows());
    let pass = layout.flatten(&m.pass.rows());
    let used: Vec<usize> = (0..layout.n_bins()).filter(|&b| fail[b] > 0.0).collect();
    let k: usize = m.order.iter().map(|o| o + 1).product();
    if used.len() < k {
        return Err(Error::Config {
            key: "qcd.tf_mc.fit.fail".into(),
            message: format!(
                "{} cells have a simulated fail yield > 0, the Bernstein order {:?} needs at least {k}",
                used.len(),
                m.order
            ),
        });
    }
    let coords: Vec<Vec<f64>> = used.iter().map(|&b| layout.coords(b)).collect();
    let coordinates = json!({
        "axes": cfg.axes.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        "bins": coords,
        "ranges": layout.ranges,
    });
    let f: Vec<f64> = used.iter().map(|&b| fail[b]).collect();
    let p: Vec<f64> = used.iter().map(|&b| pass[b]).collect();
    let ratio = p.iter().sum::<f64>() / f.iter().sum::<f64>();
    let sf = json!({"name": "mc_fail", "type": "shapefactor", "data": null});
    let tf = json!({"name": "tf_mc", "type": "transferfactor",
        "data": {"basis": "bernstein", "order": m.order, "form": "linear"}});
    let mut params = Vec::new();
    if ratio > 0.0 && ratio < 100.0 {
        params.push(json!({"name": "tf_mc", "inits": vec![ratio; k]}));
    }
    let ws = json!({
        "channels": [
            {"name": FAIL, "coordinates": coordinates, "samples": [
                {"name": "qcd_mc", "data": f, "modifiers": [sf]}]},
            {"name": PASS, "coordinates": coordinates, "samples": [
                {"name": "qcd_mc", "data": f, "modifiers": [sf, tf]}]}
        ],
        "observations": [{"name": FAIL, "data": f}, {"name": PASS, "data": p}],
        "measurements": [{"name": "tf_mc", "config": {"poi": "", "parameters": params}}],
        "version": "1.0.0"
    });
    let ws = Workspace::from_value(&ws).map_err(|e| Error::Config {
        key: "qcd.tf_mc.fit".into(),
        message: format!("the TF_MC workspace is invalid: {e}"),
    })?;
    let model = Model::new(&ws, &ModelOptions::default())?;
    let data = model.observed_data();
    let r = fit(
        &model,
        &data,
        &FitSetup::from_model(&model),
        &FitOptions::default(),
    )
    .map_err(|e| Error::FitFailed {
        context: "TF_MC fit to the simulated templates".into(),
        message: e.to_string(),
    })?;
    let cov = r.covariance()?;
    let n = model.n_pars();
    let set = model
        .param_sets()
        .iter()
        .find(|s| s.name == "tf_mc")
        .ok_or_else(|| Error::InvalidInput("internal: tf_mc parameters missing".into()))?;
    let idx: Vec<usize> = (set.offset..set.offset + set.size).collect();
    let mean: Vec<f64> = idx.iter().map(|&i| r.pars[i]).collect();
    let cov_k: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| {
            idx.iter()
                .map(|&j| 0.5 * (cov[i * n + j] + cov[j * n + i]))
                .collect()
        })
        .collect();
    let spec = TransferSpec {
        basis: Basis::Bernstein,
        order: m.order.clone(),
        form: Form::Linear,
        mc: None,
        constraint: None,
    };
    let tf_at_bins = (0..layout.n_bins())
        .map(|b| {
            let u: Vec<f64> = layout
                .coords(b)
                .iter()
                .enumerate()
                .map(|(a, &x)| layout.scale(a, x))
                .collect();
            spec.basis_row(&u)
                .iter()
                .zip(&mean)
                .map(|(a, c)| a * c)
                .sum()
        })
        .collect();
    Ok(McFitResult {
        order: m.order.clone(),
        uncertainties: (0..k).map(|i| cov_k[i][i].max(0.0).sqrt()).collect(),
        mean,
        cov: cov_k,
        twice_nll: r.twice_nll,
        n_cells: used.len(),
        tf_at_bins,
    })
}
