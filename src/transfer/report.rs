//! The fit of a transfer-function analysis and what 2DAlphabet/rhalphalib
//! users look at afterwards: the best fit, post-fit yields per region, bin
//! and sample with uncertainties (linear propagation of the fit covariance
//! through the exact Jacobian of the expected data, from num-dual numbers of
//! `Model::expected_data_generic`), the TF surface at the bin centres and on
//! a fine grid with its ±1σ band, pulls of every parameter and 1-D
//! projections of data vs prediction per region.

use std::time::Instant;

use num_dual::Dual64;
use serde::{Deserialize, Serialize};

use super::config::{build, Built, TransferConfig, PASS};
use super::gof::{aux_entries, blinded_mask, n_unblinded, saturated_main, saturated_with, AuxKind};
use super::mcfit::McFitResult;
use crate::hf::modifiers::transfer::{Form, TransferSpec};
use crate::hf::{InputKind, Model, ModelOptions, ModifierData};
use crate::infer::{fit, FitOptions, FitResult, FitSetup, Likelihood};
use crate::{Error, Result};

/// Options of a transfer fit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransferFitOptions {
    /// Fix the POI at this value (e.g. 0 for a background-only fit).
    pub fix_poi: Option<f64>,
    /// Fit tolerance and iteration budget.
    pub fit: FitOptions,
}

/// A converged fit of a config, with everything needed to report on it.
#[derive(Debug, Clone)]
pub struct TransferFit {
    /// Workspace, layout and TF_MC fit.
    pub built: Built,
    /// The compiled model.
    pub model: Model,
    /// Observed data (main + aux).
    pub data: Vec<f64>,
    /// The fit.
    pub result: FitResult,
    /// Wall-clock seconds of the fit alone (model built).
    pub fit_time_s: f64,
}

/// Builds the workspace of `cfg` and fits it to the observed data.
pub fn fit_config(cfg: &TransferConfig, opts: &TransferFitOptions) -> Result<TransferFit> {
    let built = build(cfg)?;
    fit_built(built, opts)
}

/// Fits an already built workspace.
pub fn fit_built(built: Built, opts: &TransferFitOptions) -> Result<TransferFit> {
    let model = Model::new(&built.workspace, &ModelOptions::default())?;
    let data = model.observed_data();
    let mut setup = FitSetup::from_model(&model);
    if let Some(v) = opts.fix_poi {
        let poi = model.poi_index().ok_or_else(|| Error::Config {
            key: "signal".into(),
            message: "a fixed POI needs a signal (the model has no POI)".into(),
        })?;
        setup = setup.with_fixed(poi, v);
    }
    let t0 = Instant::now();
    let result = fit(&model, &data, &setup, &opts.fit)?;
    let fit_time_s = t0.elapsed().as_secs_f64();
    Ok(TransferFit {
        built,
        model,
        data,
        result,
        fit_time_s,
    })
}

/// A value with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// Central value.
    pub value: f64,
    /// ±1σ.
    pub unc: f64,
}

/// A sample's post-fit yield.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleYield {
    /// Sample name.
    pub sample: String,
    /// Yield.
    pub value: f64,
    /// Its uncertainty.
    pub unc: f64,
}

/// Post-fit yields of one channel bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinReport {
    /// Cell indices `[ix, iy]` (`[ix]` in 1-D).
    pub cell: Vec<usize>,
    /// Bin centres.
    pub coords: Vec<f64>,
    /// Left out of the likelihood.
    pub blinded: bool,
    /// Observed count.
    pub data: f64,
    /// Total prediction.
    pub total: Value,
    /// Per sample.
    pub samples: Vec<SampleYield>,
}

/// Post-fit yields of one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionReport {
    /// `fail` or `pass`.
    pub region: String,
    /// One entry per (unmasked) cell.
    pub bins: Vec<BinReport>,
}

/// A constrained parameter's prior and pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstraintReport {
    /// Central value of the constraint (aux datum, in parameter units).
    pub aux: f64,
    /// Pre-fit width.
    pub prefit_sigma: f64,
    /// `(θ̂ − aux) / σ̂` with the post-fit σ̂.
    pub pull: f64,
    /// `(θ̂ − aux) / σ_prefit` (the usual pull-plot abscissa).
    pub pull_prefit: f64,
    /// `σ̂ / σ_prefit`.
    pub constraint: f64,
}

/// One parameter after the fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParReport {
    /// pyhf-style name.
    pub name: String,
    /// Best-fit value.
    pub value: f64,
    /// Post-fit uncertainty (0 if fixed).
    pub unc: f64,
    /// Held fixed in the fit.
    pub fixed: bool,
    /// Prior and pull of a constrained parameter; `None` for free ones.
    pub constraint: Option<ConstraintReport>,
}

/// One transferfactor modifier of the pass-region QCD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfPartReport {
    /// Parameter-set name.
    pub name: String,
    /// Basis.
    pub basis: String,
    /// Orders per axis.
    pub order: Vec<usize>,
    /// `linear` or `exp`.
    pub form: String,
    /// Constrained (two-step TF_MC): parameters are decorrelated `z`.
    pub constrained: bool,
    /// Fitted parameters.
    pub parameters: Vec<Value>,
}

/// The TF at a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfPoint {
    /// Cell (bin-centre points) or empty (grid points).
    pub cell: Vec<usize>,
    /// Coordinates.
    pub coords: Vec<f64>,
    /// Value.
    pub value: f64,
    /// ±1σ.
    pub unc: f64,
}

/// The TF along one axis with the other held at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfSlice {
    /// Axis varied (0 or 1).
    pub axis: usize,
    /// Value of the other axis (absent in 1-D).
    pub at: Option<f64>,
    /// `(coordinate, value, unc)`.
    pub points: Vec<[f64; 3]>,
}

/// The fitted TF surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfReport {
    /// The transferfactor modifiers whose product is the TF.
    pub parts: Vec<TfPartReport>,
    /// Pass/fail QCD ratio at every channel bin (fixed TF_MC values included).
    pub at_bins: Vec<TfPoint>,
    /// Grid coordinates per axis (41 per axis in 2-D, 101 in 1-D).
    pub grid_axes: Vec<Vec<f64>>,
    /// Product of the parametric factors on the grid, `[ix][iy]` (fixed TF_MC values not included).
    pub grid_value: Vec<Vec<f64>>,
    /// Its ±1σ.
    pub grid_unc: Vec<Vec<f64>>,
    /// 1-D slices (at every bin centre of the other axis, and along it at up to 6 x values).
    pub slices: Vec<TfSlice>,
}

/// A 1-D projection (sum over the other axis) of one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// Region.
    pub region: String,
    /// Axis projected on.
    pub axis: usize,
    /// Axis name.
    pub axis_name: String,
    /// Bin edges.
    pub edges: Vec<f64>,
    /// Observed counts summed over unblinded cells.
    pub data: Vec<f64>,
    /// Prediction over the same cells.
    pub prediction: Vec<f64>,
    /// Its ±1σ.
    pub prediction_unc: Vec<f64>,
    /// Per sample, over the same cells.
    pub samples: Vec<(String, Vec<f64>)>,
    /// Prediction over every unmasked cell, blinded ones included.
    pub prediction_all: Vec<f64>,
    /// Number of blinded cells in each projection bin.
    pub blinded_cells: Vec<usize>,
}

/// Everything `anagrad transfer fit` writes (`fit.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Axis names.
    pub axes: Vec<String>,
    /// `-2 ln L` at the best fit.
    pub twice_nll: f64,
    /// Saturated-model statistic at the best fit (unblinded bins and constraint terms).
    pub saturated: f64,
    /// Its Poisson part alone, `2 Σ [λ − n + n ln(n/λ)]` over the unblinded bins.
    pub saturated_main: f64,
    /// Unblinded main bins.
    pub n_bins: usize,
    /// Non-fixed parameters.
    pub n_pars: usize,
    /// Seconds spent in the fit.
    pub fit_time_s: f64,
    /// Newton iterations.
    pub iterations: usize,
    /// POI name, if any.
    pub poi: Option<String>,
    /// Every parameter.
    pub parameters: Vec<ParReport>,
    /// Post-fit yields per region.
    pub regions: Vec<RegionReport>,
    /// The TF surface.
    pub tf: TfReport,
    /// 1-D projections per region and axis.
    pub projections: Vec<Projection>,
    /// The two-step TF_MC fit, if any.
    pub mc_fit: Option<McFitResult>,
}

/// Sparse rows: per main bin, `(parameter, ∂λ/∂θ)`.
pub type SparseRows = Vec<Vec<(usize, f64)>>;

/// The main expected data at `pars` for templates `inputs` and its exact
/// Jacobian w.r.t. the `free` parameters (one forward-mode pass each).
pub fn jacobian(
    model: &Model,
    pars: &[f64],
    inputs: &[f64],
    free: &[usize],
) -> Result<(Vec<f64>, SparseRows)> {
    let n_main = model.n_main();
    let inp: Vec<Dual64> = inputs.iter().map(|&x| Dual64::from(x)).collect();
    let mut p: Vec<Dual64> = pars.iter().map(|&x| Dual64::from(x)).collect();
    let base = model.expected_data_generic(&p, &inp)?;
    let value: Vec<f64> = base[..n_main].iter().map(|x| x.re).collect();
    let mut rows: SparseRows = vec![Vec::new(); n_main];
    for &i in free {
        p[i] = Dual64::from(pars[i]).derivative();
        let e = model.expected_data_generic(&p, &inp)?;
        p[i] = Dual64::from(pars[i]);
        for (b, x) in e[..n_main].iter().enumerate() {
            if x.eps != 0.0 {
                rows[b].push((i, x.eps));
            }
        }
    }
    Ok((value, rows))
}

/// `rᵀ C r` for a sparse row `r` and a dense `n × n` covariance.
pub fn variance(row: &[(usize, f64)], cov: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for &(i, a) in row {
        for &(j, b) in row {
            s += a * b * cov[i * n + j];
        }
    }
    s.max(0.0)
}

/// The sum of several sparse rows.
fn sum_rows<'a>(rows: impl Iterator<Item = &'a Vec<(usize, f64)>>, n: usize) -> Vec<(usize, f64)> {
    let mut dense = vec![0.0; n];
    let mut used = vec![false; n];
    for r in rows {
        for &(i, a) in r {
            dense[i] += a;
            used[i] = true;
        }
    }
    (0..n).filter(|&i| used[i]).map(|i| (i, dense[i])).collect()
}

/// The templates with every sample but `sample` zeroed (nominal and
/// histosys variations), so the expected data is that sample's contribution.
pub fn sample_inputs(model: &Model, sample: &str) -> Vec<f64> {
    let mut inp = model.inputs().to_vec();
    for sl in model.input_layout() {
        if sl.sample != sample
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

/// The pass-region QCD's transferfactor modifiers with their parameter offsets.
fn tf_parts(tf: &TransferFit) -> Result<Vec<(String, TransferSpec, usize)>> {
    let qcd = &tf
        .built
        .workspace
        .channels
        .iter()
        .find(|c| c.name == PASS)
        .and_then(|c| c.samples.first())
        .ok_or_else(|| Error::InvalidInput("internal: no pass-region QCD sample".into()))?;
    let mut out = Vec::new();
    for m in &qcd.modifiers {
        if let ModifierData::TransferFactor(spec) = &m.data {
            let set = tf
                .model
                .param_sets()
                .iter()
                .find(|s| s.name == m.name)
                .ok_or_else(|| {
                    Error::InvalidInput(format!("internal: parameters of '{}' missing", m.name))
                })?;
            out.push((m.name.clone(), spec.clone(), set.offset));
        }
    }
    Ok(out)
}

/// The product of the parametric factors at scaled coordinates `u`, with
/// its sparse gradient.
fn tf_eval(
    parts: &[(String, TransferSpec, usize)],
    pars: &[f64],
    u: &[f64],
) -> Result<(f64, Vec<(usize, f64)>)> {
    let mut vals = Vec::with_capacity(parts.len());
    let mut grads = Vec::with_capacity(parts.len());
    for (name, spec, off) in parts {
        let row = spec.affine_rows(&[u.to_vec()]).ok_or_else(|| {
            Error::InvalidInput(format!(
                "transferfactor '{name}': covariance not positive definite"
            ))
        })?;
        let k = spec.n_coefficients();
        let eta = row[0] + (0..k).map(|j| row[1 + j] * pars[off + j]).sum::<f64>();
        let (f, scale) = match spec.form {
            Form::Linear => (eta, 1.0),
            Form::Exp => (eta.exp(), eta.exp()),
        };
        vals.push(f);
        grads.push(
            (0..k)
                .map(|j| (off + j, scale * row[1 + j]))
                .collect::<Vec<_>>(),
        );
    }
    let total: f64 = vals.iter().product();
    let mut g = Vec::new();
    for (a, ga) in grads.iter().enumerate() {
        let others: f64 = vals
            .iter()
            .enumerate()
            .filter(|(b, _)| *b != a)
            .map(|(_, v)| v)
            .product();
        g.extend(ga.iter().map(|&(i, d)| (i, d * others)));
    }
    Ok((total, g))
}

impl TransferFit {
    /// The covariance of the fit (`n × n`).
    pub fn covariance(&self) -> Result<Vec<f64>> {
        self.result.covariance()
    }

    /// Non-fixed parameter indices.
    pub fn free(&self) -> Vec<usize> {
        (0..self.model.n_pars())
            .filter(|&i| !self.result.fixed[i])
            .collect()
    }

    /// Sample names of the channels (QCD first, as built).
    pub fn sample_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for c in &self.built.workspace.channels {
            for s in &c.samples {
                if !names.contains(&s.name) {
                    names.push(s.name.clone());
                }
            }
        }
        names
    }

    /// The full report (see [`FitReport`]).
    pub fn report(&self) -> Result<FitReport> {
        let model = &self.model;
        let n = model.n_pars();
        let pars = &self.result.pars;
        let cov = self.covariance()?;
        let unc: Vec<f64> = (0..n).map(|i| cov[i * n + i].max(0.0).sqrt()).collect();
        let free = self.free();
        let layout = &self.built.layout;
        let one_d = layout.n_axes() == 1;
        let cell_vec = |b: usize| {
            let (i, j) = layout.cells[b];
            if one_d {
                vec![i]
            } else {
                vec![i, j]
            }
        };

        // Parameters and pulls.
        let aux = aux_entries(model)?;
        let obs_aux = &self.data[model.n_main()..];
        let mut parameters: Vec<ParReport> = (0..n)
            .map(|i| ParReport {
                name: model.par_names()[i].clone(),
                value: pars[i],
                unc: unc[i],
                fixed: self.result.fixed[i],
                constraint: None,
            })
            .collect();
        for e in &aux {
            let a = obs_aux[e.aux];
            let (centre, sigma) = match e.kind {
                AuxKind::Gaussian { sigma } => (a, sigma),
                AuxKind::Poisson { tau } => (a / tau, 1.0 / tau.sqrt()),
            };
            let p = &mut parameters[e.par];
            p.constraint = Some(ConstraintReport {
                aux: centre,
                prefit_sigma: sigma,
                pull: if p.unc > 0.0 {
                    (p.value - centre) / p.unc
                } else {
                    f64::NAN
                },
                pull_prefit: (p.value - centre) / sigma,
                constraint: p.unc / sigma,
            });
        }

        // Yields: totals and per sample, with their Jacobians.
        let (total, jrows) = jacobian(model, pars, model.inputs(), &free)?;
        let names = self.sample_names();
        let mut per_sample = Vec::new();
        for s in &names {
            let (v, r) = jacobian(model, pars, &sample_inputs(model, s), &free)?;
            per_sample.push((s.clone(), v, r));
        }
        let blind = blinded_mask(model);
        let mut regions = Vec::new();
        let mut offset = 0;
        for (cname, cnb) in model.channels() {
            let bins = (0..*cnb)
                .map(|b| {
                    let g = offset + b;
                    BinReport {
                        cell: cell_vec(b),
                        coords: layout.coords(b),
                        blinded: blind[g],
                        data: self.data[g],
                        total: Value {
                            value: total[g],
                            unc: variance(&jrows[g], &cov, n).sqrt(),
                        },
                        samples: per_sample
                            .iter()
                            .map(|(s, v, r)| SampleYield {
                                sample: s.clone(),
                                value: v[g],
                                unc: variance(&r[g], &cov, n).sqrt(),
                            })
                            .collect(),
                    }
                })
                .collect();
            regions.push(RegionReport {
                region: cname.clone(),
                bins,
            });
            offset += cnb;
        }

        // Projections.
        let mut projections = Vec::new();
        let mut offset = 0;
        for (cname, cnb) in model.channels() {
            for a in 0..layout.n_axes() {
                let ax = &self.built.layout.centres[a];
                let nt = ax.len();
                let mut data = vec![0.0; nt];
                let mut pred = vec![0.0; nt];
                let mut pred_all = vec![0.0; nt];
                let mut punc = vec![0.0; nt];
                let mut blinded_cells = vec![0; nt];
                let mut samples: Vec<(String, Vec<f64>)> =
                    names.iter().map(|s| (s.clone(), vec![0.0; nt])).collect();
                for (t, (d, (p, (pa, (pu, bc))))) in data
                    .iter_mut()
                    .zip(
                        pred.iter_mut().zip(
                            pred_all
                                .iter_mut()
                                .zip(punc.iter_mut().zip(blinded_cells.iter_mut())),
                        ),
                    )
                    .enumerate()
                {
                    let members: Vec<usize> = (0..*cnb)
                        .filter(|&b| {
                            let (i, j) = layout.cells[b];
                            (if a == 0 { i } else { j }) == t
                        })
                        .map(|b| offset + b)
                        .collect();
                    let open: Vec<usize> = members.iter().copied().filter(|&g| !blind[g]).collect();
                    *bc = members.len() - open.len();
                    *d = open.iter().map(|&g| self.data[g]).sum();
                    *p = open.iter().map(|&g| total[g]).sum();
                    *pa = members.iter().map(|&g| total[g]).sum();
                    let row = sum_rows(open.iter().map(|&g| &jrows[g]), n);
                    *pu = variance(&row, &cov, n).sqrt();
                    for ((_, sv), (_, v, _)) in samples.iter_mut().zip(&per_sample) {
                        sv[t] = open.iter().map(|&g| v[g]).sum();
                    }
                }
                projections.push(Projection {
                    region: cname.clone(),
                    axis: a,
                    axis_name: self.axis_name(a),
                    edges: self.edges(a),
                    data,
                    prediction: pred,
                    prediction_unc: punc,
                    samples,
                    prediction_all: pred_all,
                    blinded_cells,
                });
            }
            offset += cnb;
        }

        let tf = self.tf_report(&cov, &unc)?;
        Ok(FitReport {
            axes: (0..layout.n_axes()).map(|a| self.axis_name(a)).collect(),
            twice_nll: self.result.twice_nll,
            saturated: saturated_with(model, &aux, pars, &self.data)?,
            saturated_main: saturated_main(model, pars, &self.data)?,
            n_bins: n_unblinded(model),
            n_pars: free.len(),
            fit_time_s: self.fit_time_s,
            iterations: self.result.iterations,
            poi: model.poi_name().map(String::from),
            parameters,
            regions,
            tf,
            projections,
            mc_fit: self.built.mc_fit.clone(),
        })
    }

    fn axis_name(&self, a: usize) -> String {
        self.built
            .workspace
            .channels
            .first()
            .and_then(|c| c.coordinates.as_ref())
            .and_then(|c| c.axes.get(a).cloned())
            .unwrap_or_default()
    }

    fn edges(&self, a: usize) -> Vec<f64> {
        self.built.layout.edges[a].clone()
    }

    /// The TF surface (see [`TfReport`]).
    pub fn tf_report(&self, cov: &[f64], unc: &[f64]) -> Result<TfReport> {
        let parts = tf_parts(self)?;
        let n = self.model.n_pars();
        let pars = &self.result.pars;
        let layout = &self.built.layout;
        let na = layout.n_axes();
        let scaled = |x: &[f64]| -> Vec<f64> {
            x.iter()
                .enumerate()
                .map(|(a, &v)| layout.scale(a, v))
                .collect()
        };
        let mut at_bins = Vec::new();
        for b in 0..layout.n_bins() {
            let c = layout.coords(b);
            let (mut v, mut g) = tf_eval(&parts, pars, &scaled(&c))?;
            for (_, spec, _) in &parts {
                if let Some(mc) = &spec.mc {
                    v *= mc[b];
                    for x in &mut g {
                        x.1 *= mc[b];
                    }
                }
            }
            let (i, j) = layout.cells[b];
            at_bins.push(TfPoint {
                cell: if na == 1 { vec![i] } else { vec![i, j] },
                coords: c,
                value: v,
                unc: variance(&g, cov, n).sqrt(),
            });
        }
        let npts = if na == 1 { 101 } else { 41 };
        let grid_axes: Vec<Vec<f64>> = (0..na)
            .map(|a| {
                let e = self.edges(a);
                let (lo, hi) = (e[0], e[e.len() - 1]);
                (0..npts)
                    .map(|k| lo + (hi - lo) * k as f64 / (npts - 1) as f64)
                    .collect()
            })
            .collect();
        let ys = if na == 2 {
            grid_axes[1].clone()
        } else {
            vec![f64::NAN]
        };
        let mut grid_value = Vec::new();
        let mut grid_unc = Vec::new();
        for &x in &grid_axes[0] {
            let mut rv = Vec::new();
            let mut ru = Vec::new();
            for &y in &ys {
                let c = if na == 2 { vec![x, y] } else { vec![x] };
                let (v, g) = tf_eval(&parts, pars, &scaled(&c))?;
                rv.push(v);
                ru.push(variance(&g, cov, n).sqrt());
            }
            grid_value.push(rv);
            grid_unc.push(ru);
        }
        let mut slices = Vec::new();
        let along = |axis: usize, at: Option<f64>| -> Result<TfSlice> {
            let pts = grid_axes[axis]
                .iter()
                .map(|&t| {
                    let c = match (axis, at) {
                        (0, Some(y)) => vec![t, y],
                        (1, Some(x)) => vec![x, t],
                        _ => vec![t],
                    };
                    let (v, g) = tf_eval(&parts, pars, &scaled(&c))?;
                    Ok([t, v, variance(&g, cov, n).sqrt()])
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(TfSlice {
                axis,
                at,
                points: pts,
            })
        };
        if na == 1 {
            slices.push(along(0, None)?);
        } else {
            for &y in &layout.centres[1] {
                slices.push(along(0, Some(y))?);
            }
            let xc = &layout.centres[0];
            let m = xc.len().min(6);
            for k in 0..m {
                let idx = if m > 1 {
                    k * (xc.len() - 1) / (m - 1)
                } else {
                    0
                };
                slices.push(along(1, Some(xc[idx]))?);
            }
        }
        let report_parts = parts
            .iter()
            .map(|(name, spec, off)| TfPartReport {
                name: name.clone(),
                basis: spec.basis.as_str().into(),
                order: spec.order.clone(),
                form: spec.form.as_str().into(),
                constrained: spec.constraint.is_some(),
                parameters: (0..spec.n_coefficients())
                    .map(|j| Value {
                        value: pars[off + j],
                        unc: unc[off + j],
                    })
                    .collect(),
            })
            .collect();
        Ok(TfReport {
            parts: report_parts,
            at_bins,
            grid_axes,
            grid_value,
            grid_unc,
            slices,
        })
    }
}
