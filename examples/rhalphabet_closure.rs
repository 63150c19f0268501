//! rhalphalib's closure model (its test `test_rhalphabet`,
//! nsmith-/rhalphalib `tests/test_rhalphalib.py` at commit f901ebc) built
//! with anagrad's transfer-factor modifiers and fitted; the comparison with
//! rhalphalib's construction is in `papers/transfer/README.md`.
//!
//! The construction follows the test line by line:
//! - pT bins [450, 500, 550, 600, 675, 800, 1200], 23 m_SD bins of 7 GeV on
//!   [40, 201]; each cell's TF coordinates are pT at 30 % of its bin and
//!   ρ = 2 ln(m_SD/pT) at the m_SD bin centre, scaled as rhalphalib does
//!   (`(pT − 450)/750`, `(ρ + 6)/3.9`); cells with scaled ρ outside [0, 1]
//!   are masked (left out of both regions).
//! - Step 1, TF_MC: mock QCD simulation (fail: 1e5 × exponential of scale
//!   40 GeV, pass: 1e3 × scale 50 GeV, the same in every pT bin); the fail
//!   yields are rhalphalib's log-form free parameters
//!   (`logshapefactor`, `n0 (1 + 1/max(1, √n0))^(10 θ)`), the pass yields
//!   `qcdeff × Bernstein(2, 2)(pT, ρ) × fail` with `qcdeff` the overall MC
//!   pass/fail ratio (`transferfactor` with `mc = qcdeff`); Poisson terms
//!   on the (non-integer) templates, as RooFit's extended fit does.
//! - Step 2, data: W, Z, top (tqq) and H (hqq, the signal, POI `r`) Gaussian
//!   templates with `CMS_lumi` (lnN 1.027 → normsys), `CMS_jec` (a random
//!   per-bin ratio, N(1, 0.05), that rhalphalib turns into an asymmetric lnN
//!   of the nominal-weighted mean; seeded here) and `CMS_msdScale` (shape:
//!   up ×linspace(0.9, 1.1), down ×linspace(1.2, 0.8) → histosys), the
//!   top scale factors `tqqnormSF` (both regions) and `tqqeffSF` (pass ×SF,
//!   fail ×(1 + PF (1 − SF)), written exactly as two fail samples, the
//!   second with the negative nominal −PF·n), the muon control region
//!   (pass/fail, top + a fixed QCD template, 23 bins unmasked); QCD: free
//!   log-form fail yields from `n0` = fail data − all other fail samples,
//!   pass = `n0 f(θ) × qcdeff × TF_MC(pT, ρ) × TF_data(pT, ρ)` where TF_MC
//!   carries the step-1 mean and covariance as decorrelated unit Gaussians
//!   and TF_data is a free Bernstein (2, 2) on [0, 10].
//!
//! Then: the fit to rhalphalib's data (Asimov-like sums of templates,
//! `throwPoisson = False`), and `--toys` Poisson pseudo-datasets without
//! signal (`throwPoisson = True`) with the pass bins m_SD 117–138 GeV
//! (rhalphalib's commented-out blinding of bins 11–13) blinded, fitted
//! background-only: the pull (true − predicted background)/σ_pred in that
//! window (every pseudo-dataset also draws the global observables of the
//! constrained parameters, as pyhf's `sample()`). Writes `rhalphabet.json` into `--out` (default `rhalphabet-closure/`).
//!
//! `cargo run --release --example rhalphabet_closure [-- --toys 200 --out DIR]`

use std::path::PathBuf;
use std::time::Instant;

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::{fit, FitOptions, FitResult, FitSetup, Likelihood};
use anagrad::ops::normal::cdf;
use anagrad::transfer::closure::{sum_with_sigma, summarize, without_samples, Summary};
use anagrad::transfer::gof::{saturated, toy_rng};
use anagrad::transfer::report::{jacobian, sample_inputs};
use anagrad::{Error, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Poisson};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

const PT_EDGES: [f64; 7] = [450.0, 500.0, 550.0, 600.0, 675.0, 800.0, 1200.0];
const N_MSD: usize = 23;
const ORDER: [usize; 2] = [2, 2];
/// Blinded m_SD bins (117–138 GeV) in the toy closure.
const WINDOW: [usize; 3] = [11, 12, 13];

fn msd_edges() -> Vec<f64> {
    (0..=N_MSD).map(|i| 40.0 + 7.0 * i as f64).collect()
}

/// `norm × diff(expon.cdf(edges, scale))`.
fn expo_sample(norm: f64, scale: f64) -> Vec<f64> {
    let c: Vec<f64> = msd_edges()
        .iter()
        .map(|x| 1.0 - (-x / scale).exp())
        .collect();
    c.windows(2).map(|w| norm * (w[1] - w[0])).collect()
}

/// `norm × diff(norm.cdf(edges, loc, scale))`.
fn gaus_sample(norm: f64, loc: f64, scale: f64) -> Vec<f64> {
    let c: Vec<f64> = msd_edges().iter().map(|x| cdf((x - loc) / scale)).collect();
    c.windows(2).map(|w| norm * (w[1] - w[0])).collect()
}

/// The (pT, m_SD) cells: scaled coordinates and validity.
struct Geometry {
    /// `[pt bin][msd bin]` → (ptscaled, rhoscaled).
    coords: Vec<Vec<[f64; 2]>>,
    /// `[pt bin][msd bin]` → ρ within [−6, −2.1].
    valid: Vec<Vec<bool>>,
}

impl Geometry {
    fn new() -> Geometry {
        let me = msd_edges();
        let mut coords = Vec::new();
        let mut valid = Vec::new();
        for w in PT_EDGES.windows(2) {
            let pt = w[0] + 0.3 * (w[1] - w[0]);
            let (mut c, mut v) = (Vec::new(), Vec::new());
            for m in me.windows(2) {
                let msd = 0.5 * (m[0] + m[1]);
                let rho = 2.0 * (msd / pt).ln();
                let ps = (pt - 450.0) / (1200.0 - 450.0);
                let rs = (rho + 6.0) / (-2.1 + 6.0);
                let ok = (0.0..=1.0).contains(&rs);
                c.push([ps, if ok { rs } else { 1.0 }]);
                v.push(ok);
            }
            coords.push(c);
            valid.push(v);
        }
        Geometry { coords, valid }
    }

    /// Valid cells `(pt bin, msd bin)`, pT-major: the bins of the pass and fail channels.
    fn cells(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, row) in self.valid.iter().enumerate() {
            for (j, &ok) in row.iter().enumerate() {
                if ok {
                    out.push((i, j));
                }
            }
        }
        out
    }

    fn bins(&self) -> Vec<[f64; 2]> {
        self.cells()
            .iter()
            .map(|&(i, j)| self.coords[i][j])
            .collect()
    }
}

fn coordinates(g: &Geometry) -> Value {
    json!({"axes": ["pt", "rho"], "bins": g.bins(), "ranges": [[0.0, 1.0], [0.0, 1.0]]})
}

/// Per-cell values of a per-msd template, the same in every pT bin, on the valid cells.
fn on_cells(g: &Geometry, t: &[f64]) -> Vec<f64> {
    g.cells().iter().map(|&(_, j)| t[j]).collect()
}

fn model_of(ws: &Value) -> Result<Model> {
    Model::new(&Workspace::from_value(ws)?, &ModelOptions::default())
}

/// Step 1: the TF_MC fit to the mock simulation.
struct McFit {
    qcdeff: f64,
    mean: Vec<f64>,
    cov: Vec<Vec<f64>>,
    unc: Vec<f64>,
    chi2: f64,
    n_bins: usize,
    /// Fitted qcdeff·TF_MC vs the true MC pass/fail ratio at every valid cell.
    fitted: Vec<f64>,
    truth: Vec<f64>,
}

fn bernstein2(u: [f64; 2], c: &[f64]) -> f64 {
    let b = |t: f64| [(1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t];
    let (bu, bv) = (b(u[0]), b(u[1]));
    let mut s = 0.0;
    for i in 0..3 {
        for j in 0..3 {
            s += c[i * 3 + j] * bu[i] * bv[j];
        }
    }
    s
}

fn mc_fit(g: &Geometry) -> Result<McFit> {
    let fail_t = expo_sample(1e5, 40.0);
    let pass_t = expo_sample(1e3, 50.0);
    // qcdeff from the unmasked sums over every pT bin (as the test, before masking).
    let qcdeff = pass_t.iter().sum::<f64>() / fail_t.iter().sum::<f64>();
    let fail = on_cells(g, &fail_t);
    let pass = on_cells(g, &pass_t);
    let nb = fail.len();
    let lsf = json!({"name": "qcdparam", "type": "logshapefactor", "data": fail});
    let tf = json!({"name": "tf_MCtempl", "type": "transferfactor", "data": {
        "basis": "bernstein", "order": ORDER, "form": "linear", "mc": vec![qcdeff; nb]}});
    let ws = json!({
        "channels": [
            {"name": "fail", "coordinates": coordinates(g), "samples": [
                {"name": "qcd", "data": fail, "modifiers": [lsf]}]},
            {"name": "pass", "coordinates": coordinates(g), "samples": [
                {"name": "qcd", "data": fail, "modifiers": [lsf, tf]}]}],
        "observations": [{"name": "fail", "data": fail}, {"name": "pass", "data": pass}],
        "measurements": [{"name": "qcdmodel", "config": {"poi": "", "parameters": [
            {"name": "tf_MCtempl", "inits": vec![1.0; 9], "bounds": vec![[0.0, 10.0]; 9]}]}}],
        "version": "1.0.0"
    });
    let model = model_of(&ws)?;
    let data = model.observed_data();
    let r = fit(
        &model,
        &data,
        &FitSetup::from_model(&model),
        &FitOptions::default(),
    )?;
    let cov = r.covariance()?;
    let n = model.n_pars();
    let off = model
        .par_names()
        .iter()
        .position(|p| p == "tf_MCtempl[0]")
        .ok_or_else(|| Error::InvalidInput("tf_MCtempl[0] missing".into()))?;
    let mean: Vec<f64> = (0..9).map(|k| r.pars[off + k]).collect();
    let cov_k: Vec<Vec<f64>> = (0..9)
        .map(|a| (0..9).map(|b| cov[(off + a) * n + off + b]).collect())
        .collect();
    let fitted = g
        .bins()
        .iter()
        .map(|&u| qcdeff * bernstein2(u, &mean))
        .collect();
    let truth = pass.iter().zip(&fail).map(|(p, f)| p / f).collect();
    Ok(McFit {
        qcdeff,
        unc: (0..9).map(|k| cov_k[k][k].sqrt()).collect(),
        mean,
        cov: cov_k,
        chi2: saturated(&model, &r.pars, &data)?,
        n_bins: 2 * nb,
        fitted,
        truth,
    })
}

/// A Gaussian template with rhalphalib's mock systematics.
struct Templ {
    name: String,
    nominal: Vec<f64>,
    mods: Vec<Value>,
}

/// Asymmetric lnN from a per-bin ratio `r` (rhalphalib's shape → norm conversion).
fn jec_normsys(r: &[f64], nominal: &[f64]) -> Value {
    let s: f64 = nominal.iter().sum();
    let up = r.iter().zip(nominal).map(|(a, n)| a * n).sum::<f64>() / s;
    let down = r.iter().zip(nominal).map(|(a, n)| n / a).sum::<f64>() / s;
    json!({"name": "CMS_jec", "type": "normsys", "data": {"hi": up, "lo": down}})
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Everything of the data model except the observations.
struct DataModel {
    /// Per channel (fail, pass, muonCRfail, muonCRpass): the non-QCD samples.
    channels: Vec<(String, Vec<Templ>)>,
    /// Expected counts per channel (truth, r = `mu`).
    truth: Vec<Vec<f64>>,
    /// True QCD per channel.
    truth_qcd: Vec<Vec<f64>>,
    /// True background (everything but the signal) per channel.
    truth_bkg: Vec<Vec<f64>>,
}

/// The data-model templates; `mu` scales the signal in the truth.
fn data_model(g: &Geometry, mu: f64, seed: u64) -> DataModel {
    let mut rng = StdRng::seed_from_u64(seed);
    let jec_dist = Normal::new(1.0, 0.05).expect("valid normal");
    let mut jec = |n: usize| -> Vec<f64> { (0..n).map(|_| jec_dist.sample(&mut rng)).collect() };
    let cells = g.cells();
    let msd_up = linspace(0.9, 1.1, N_MSD);
    let msd_dn = linspace(1.2, 0.8, N_MSD);
    let mut channels = Vec::new();
    let mut truth = Vec::new();
    let mut truth_qcd = Vec::new();
    let mut truth_bkg = Vec::new();
    // Main channels: per-cell samples (the same per-msd template in every pT bin);
    // CMS_jec ratios are drawn per pT bin and sample, as rhalphalib's channels.
    for region in ["fail", "pass"] {
        let is_pass = region == "pass";
        let spec: [(&str, f64, f64, f64); 4] = [
            ("zqq", if is_pass { 200.0 } else { 100.0 }, 91.0, 8.0),
            ("wqq", if is_pass { 100.0 } else { 300.0 }, 80.0, 8.0),
            ("tqq", if is_pass { 40.0 } else { 80.0 }, 150.0, 20.0),
            ("hqq", if is_pass { 20.0 } else { 5.0 }, 125.0, 8.0),
        ];
        let mut samples = Vec::new();
        for (name, norm, loc, scale) in spec {
            let t = gaus_sample(norm, loc, scale);
            let nominal = on_cells(g, &t);
            // jec per pT bin → one normsys modifier per pT bin would need one
            // sample per pT bin; rhalphalib's per-channel lnN is reproduced by
            // splitting the sample by pT bin below.
            let mut per_pt = Vec::new();
            for ipt in 0..PT_EDGES.len() - 1 {
                let r = jec(N_MSD);
                let idx: Vec<usize> = cells
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.0 == ipt)
                    .map(|(b, _)| b)
                    .collect();
                let nom_pt: Vec<f64> = idx.iter().map(|&b| nominal[b]).collect();
                let r_pt: Vec<f64> = idx.iter().map(|&b| r[cells[b].1]).collect();
                per_pt.push((idx, jec_normsys(&r_pt, &nom_pt)));
            }
            for (ipt, (idx, jmod)) in per_pt.into_iter().enumerate() {
                let mut nom = vec![0.0; nominal.len()];
                for &b in &idx {
                    nom[b] = nominal[b];
                }
                let hi: Vec<f64> = nom
                    .iter()
                    .enumerate()
                    .map(|(b, v)| v * msd_up[cells[b].1])
                    .collect();
                let lo: Vec<f64> = nom
                    .iter()
                    .enumerate()
                    .map(|(b, v)| v * msd_dn[cells[b].1])
                    .collect();
                let mut mods = vec![
                    jmod,
                    json!({"name": "CMS_msdScale", "type": "histosys", "data": {"hi_data": hi, "lo_data": lo}}),
                    json!({"name": "CMS_lumi", "type": "normsys", "data": {"hi": 1.027, "lo": 1.0 / 1.027}}),
                ];
                match name {
                    "hqq" => mods.push(json!({"name": "r", "type": "normfactor", "data": null})),
                    "tqq" => {
                        mods.push(json!({"name": "tqqnormSF", "type": "normfactor", "data": null}));
                        if is_pass {
                            mods.push(
                                json!({"name": "tqqeffSF", "type": "normfactor", "data": null}),
                            );
                        }
                    }
                    _ => {}
                }
                samples.push(Templ {
                    name: format!("{name}_pt{ipt}"),
                    nominal: nom,
                    mods,
                });
            }
        }
        channels.push((region.to_string(), samples));
    }
    // tqqeffSF in the fail region: × (1 + PF (1 − SF)) per pT bin = (1 + PF) − PF·SF.
    for ipt in 0..PT_EDGES.len() - 1 {
        let key = format!("tqq_pt{ipt}");
        let sum = |ch: usize| -> f64 {
            channels[ch]
                .1
                .iter()
                .find(|t| t.name == key)
                .map_or(0.0, |t| t.nominal.iter().sum())
        };
        let pf = sum(1) / sum(0);
        let fail = &mut channels[0].1;
        let k = fail.iter().position(|t| t.name == key).expect("tqq sample");
        let base: Vec<f64> = fail[k].nominal.clone();
        let scaled = |f: f64, v: &Value| -> Value {
            // histosys data scale with the nominal
            let mut v = v.clone();
            if v["type"] == "histosys" {
                for key in ["hi_data", "lo_data"] {
                    let arr: Vec<f64> = v["data"][key]
                        .as_array()
                        .expect("array")
                        .iter()
                        .map(|x| f * x.as_f64().expect("number"))
                        .collect();
                    v["data"][key] = json!(arr);
                }
            }
            v
        };
        let mods = fail[k].mods.clone();
        fail[k].nominal = base.iter().map(|v| v * (1.0 + pf)).collect();
        fail[k].mods = mods.iter().map(|m| scaled(1.0 + pf, m)).collect();
        let mut comp_mods: Vec<Value> = mods.iter().map(|m| scaled(-pf, m)).collect();
        comp_mods.push(json!({"name": "tqqeffSF", "type": "normfactor", "data": null}));
        fail.push(Templ {
            name: format!("tqqeffcomp_pt{ipt}"),
            nominal: base.iter().map(|v| -pf * v).collect(),
            mods: comp_mods,
        });
    }
    for (ch, region) in [(0usize, "fail"), (1, "pass")] {
        let q = on_cells(
            g,
            &expo_sample(if region == "pass" { 1e3 } else { 1e5 }, 40.0),
        );
        let mut t = q.clone();
        let mut sig = vec![0.0; t.len()];
        for s in &channels[ch].1 {
            let is_sig = s.name.starts_with("hqq");
            for ((a, z), b) in t.iter_mut().zip(sig.iter_mut()).zip(&s.nominal) {
                if is_sig {
                    *z += b;
                } else {
                    *a += b;
                }
            }
        }
        truth_bkg.push(t.clone());
        truth.push(t.iter().zip(&sig).map(|(a, z)| a + mu * z).collect());
        truth_qcd.push(q);
    }
    // Muon CR: tqq (with the SFs) and a fixed QCD template, CMS_jec only.
    let mut mu_templ = Vec::new();
    for region in ["fail", "pass"] {
        let is_pass = region == "pass";
        let tq = gaus_sample(10.0 * if is_pass { 30.0 } else { 60.0 }, 150.0, 20.0);
        let qc = expo_sample(10.0 * if is_pass { 5e2 } else { 1e3 }, 40.0);
        let rt = jec(N_MSD);
        let rq = jec(N_MSD);
        mu_templ.push((tq.clone(), qc.clone(), rt, rq));
        truth.push(tq.iter().zip(&qc).map(|(a, b)| a + b).collect());
        truth_bkg.push(tq.iter().zip(&qc).map(|(a, b)| a + b).collect());
        truth_qcd.push(qc);
    }
    let pf = mu_templ[1].0.iter().sum::<f64>() / mu_templ[0].0.iter().sum::<f64>();
    for (k, region) in ["muonCRfail", "muonCRpass"].into_iter().enumerate() {
        let (tq, qc, rt, rq) = &mu_templ[k];
        let jt = jec_normsys(rt, tq);
        let jq = jec_normsys(rq, qc);
        let mut samples = Vec::new();
        let sf = json!({"name": "tqqnormSF", "type": "normfactor", "data": null});
        let eff = json!({"name": "tqqeffSF", "type": "normfactor", "data": null});
        if k == 1 {
            samples.push(Templ {
                name: "tqq".into(),
                nominal: tq.clone(),
                mods: vec![jt, sf, eff],
            });
        } else {
            samples.push(Templ {
                name: "tqq".into(),
                nominal: tq.iter().map(|v| v * (1.0 + pf)).collect(),
                mods: vec![jt.clone(), sf.clone()],
            });
            samples.push(Templ {
                name: "tqqeffcomp".into(),
                nominal: tq.iter().map(|v| -pf * v).collect(),
                mods: vec![jt, sf, eff],
            });
        }
        samples.push(Templ {
            name: "qcd_mc".into(),
            nominal: qc.clone(),
            mods: vec![jq],
        });
        channels.push((region.to_string(), samples));
    }
    DataModel {
        channels,
        truth,
        truth_qcd,
        truth_bkg,
    }
}

/// The data workspace for observed counts `obs` (per channel), with the
/// pass-region cells `blinded` left out of the likelihood.
fn data_workspace(
    g: &Geometry,
    dm: &DataModel,
    mc: &McFit,
    obs: &[Vec<f64>],
    blinded: &[usize],
) -> Value {
    let nb = g.cells().len();
    // n0 = fail data − every other fail sample (rhalphalib's initial_qcd; ≥ 1 here).
    let mut n0 = obs[0].clone();
    for s in &dm.channels[0].1 {
        for (a, b) in n0.iter_mut().zip(&s.nominal) {
            *a -= b;
        }
    }
    let n0: Vec<f64> = n0.iter().map(|v| v.max(1.0)).collect();
    let lsf = json!({"name": "qcdparam", "type": "logshapefactor", "data": n0});
    let tf_mc = json!({"name": "tf_MCtempl_deco", "type": "transferfactor", "data": {
        "basis": "bernstein", "order": ORDER, "form": "linear", "mc": vec![mc.qcdeff; nb],
        "constraint": {"mean": mc.mean, "cov": mc.cov}}});
    let tf = json!({"name": "tf_dataResidual", "type": "transferfactor", "data": {
        "basis": "bernstein", "order": ORDER, "form": "linear"}});
    let mut channels = Vec::new();
    let mut observations = Vec::new();
    for (k, (name, samples)) in dm.channels.iter().enumerate() {
        let mut ss: Vec<Value> = samples
            .iter()
            .map(|t| json!({"name": t.name, "data": t.nominal, "modifiers": t.mods}))
            .collect();
        let mut ch = json!({"name": name});
        if k < 2 {
            let mods = if k == 0 {
                vec![lsf.clone()]
            } else {
                vec![lsf.clone(), tf_mc.clone(), tf.clone()]
            };
            ss.insert(0, json!({"name": "qcd", "data": n0, "modifiers": mods}));
            ch["coordinates"] = coordinates(g);
            if k == 1 && !blinded.is_empty() {
                ch["blinded"] = json!(blinded);
            }
        }
        ch["samples"] = json!(ss);
        channels.push(ch);
        observations.push(json!({"name": name, "data": obs[k]}));
    }
    json!({
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": "testModel", "config": {"poi": "r", "parameters": [
            {"name": "tf_dataResidual", "inits": vec![1.0; 9], "bounds": vec![[0.0, 10.0]; 9]},
            {"name": "tqqeffSF", "inits": [1.0], "bounds": [[0.0, 10.0]]},
            {"name": "tqqnormSF", "inits": [1.0], "bounds": [[0.0, 10.0]]}]}}],
        "version": "1.0.0"
    })
}

/// Main-bin offsets of the model's channels by name.
fn offset_of(model: &Model, name: &str) -> Result<usize> {
    let mut off = 0;
    for (c, nb) in model.channels() {
        if c == name {
            return Ok(off);
        }
        off += nb;
    }
    Err(Error::InvalidInput(format!("no channel '{name}'")))
}

#[derive(Serialize)]
struct Par {
    name: String,
    value: f64,
    unc: f64,
}

#[derive(Serialize)]
struct AsimovSummary {
    n_pars: usize,
    n_bins: usize,
    n_masked_cells: usize,
    twice_nll: f64,
    saturated_chi2: f64,
    fit_time_s: f64,
    /// Largest |post-fit − true| / true pass QCD over the valid cells.
    max_rel_dev_pass_qcd: f64,
    /// Post-fit total pass QCD vs truth.
    pass_qcd: [f64; 3],
    /// Largest |fitted − true| / true of the total TF (truth 0.01 everywhere).
    max_rel_dev_tf: f64,
    parameters: Vec<Par>,
}

#[derive(Serialize)]
struct Output {
    commit: &'static str,
    valid_cells_per_pt_bin: Vec<usize>,
    masked_cells: Vec<[usize; 2]>,
    qcdeff: f64,
    tf_mc_mean: Vec<f64>,
    tf_mc_unc: Vec<f64>,
    tf_mc_fit_chi2: f64,
    tf_mc_fit_bins: usize,
    tf_mc_max_rel_dev: f64,
    tf_mc_rms_rel_dev: f64,
    asimov: AsimovSummary,
    toys: usize,
    toys_failed: usize,
    window_truth: f64,
    window_pull: Summary,
    window_pull_qcd: Summary,
    window_rel_sigma: f64,
    window_rel_bias: f64,
    toys_time_s: f64,
}

fn main() -> Result<()> {
    let mut n_toys = 200usize;
    let mut out = PathBuf::from("rhalphabet-closure");
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| Error::InvalidInput(format!("{k} needs a value")))?;
        match k.as_str() {
            "--toys" => {
                n_toys = v
                    .parse()
                    .map_err(|_| Error::InvalidInput(format!("--toys: '{v}'")))?
            }
            "--out" => out = PathBuf::from(v),
            _ => return Err(Error::InvalidInput(format!("unknown argument '{k}'"))),
        }
    }
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        path: out.display().to_string(),
        source,
    })?;
    let g = Geometry::new();
    let cells = g.cells();
    let nb = cells.len();
    let per_pt: Vec<usize> = g
        .valid
        .iter()
        .map(|r| r.iter().filter(|v| **v).count())
        .collect();
    let masked: Vec<[usize; 2]> = (0..6)
        .flat_map(|i| (0..N_MSD).map(move |j| [i, j]))
        .filter(|&[i, j]| !g.valid[i][j])
        .collect();
    println!(
        "valid cells per pT bin {per_pt:?} ({nb} of {}), masked {}",
        6 * N_MSD,
        masked.len()
    );

    // Step 1.
    let mc = mc_fit(&g)?;
    let dev: Vec<f64> = mc
        .fitted
        .iter()
        .zip(&mc.truth)
        .map(|(f, t)| (f - t) / t)
        .collect();
    let mc_max = dev.iter().fold(0.0f64, |a, d| a.max(d.abs()));
    let mc_rms = (dev.iter().map(|d| d * d).sum::<f64>() / dev.len() as f64).sqrt();
    println!(
        "TF_MC: qcdeff {:.6}, coefficients {:?} ± {:?}; chi2 {:.2} / {} bins; fitted vs true MC ratio: max {:.2} %, rms {:.2} %",
        mc.qcdeff,
        mc.mean.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>(),
        mc.unc.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>(),
        mc.chi2,
        mc.n_bins,
        100.0 * mc_max,
        100.0 * mc_rms
    );

    // Step 2: rhalphalib's data (sums of templates, r = 1).
    let dm = data_model(&g, 1.0, 2019);
    let ws = data_workspace(&g, &dm, &mc, &dm.truth, &[]);
    let model = model_of(&ws)?;
    let data = model.observed_data();
    let t0 = Instant::now();
    let r = fit(
        &model,
        &data,
        &FitSetup::from_model(&model),
        &FitOptions::default(),
    )?;
    let fit_time_s = t0.elapsed().as_secs_f64();
    let cov = r.covariance()?;
    let n = model.n_pars();
    let pass_off = offset_of(&model, "pass")?;
    let qcd_inputs = sample_inputs(&model, "qcd");
    let (qcd_exp, _) = jacobian(&model, &r.pars, &qcd_inputs, &[])?;
    let mut max_dev = 0.0f64;
    for b in 0..nb {
        let t = dm.truth_qcd[1][b];
        max_dev = max_dev.max(((qcd_exp[pass_off + b] - t) / t).abs());
    }
    let bins: Vec<usize> = (0..nb).map(|b| pass_off + b).collect();
    let (pq, pq_unc) = sum_with_sigma(&model, &r, &qcd_inputs, &bins)?;
    let tf_dev = total_tf_dev(&model, &r, &g, &mc)?;
    let names = model.par_names();
    let parameters: Vec<Par> = (0..n)
        .filter(|&i| !names[i].starts_with("qcdparam"))
        .map(|i| Par {
            name: names[i].clone(),
            value: r.pars[i],
            unc: cov[i * n + i].max(0.0).sqrt(),
        })
        .collect();
    let asimov = AsimovSummary {
        n_pars: r.fixed.iter().filter(|f| !**f).count(),
        n_bins: model.n_main(),
        n_masked_cells: masked.len(),
        twice_nll: r.twice_nll,
        saturated_chi2: saturated(&model, &r.pars, &data)?,
        fit_time_s,
        max_rel_dev_pass_qcd: max_dev,
        pass_qcd: [pq, pq_unc, dm.truth_qcd[1].iter().sum()],
        max_rel_dev_tf: tf_dev,
        parameters,
    };
    println!(
        "data fit: {} parameters, {} bins, saturated chi2 {:.4}, {:.3} s; pass QCD {:.2} ± {:.2} (true {:.2}), worst cell {:.3} %, worst TF {:.3} %",
        asimov.n_pars,
        asimov.n_bins,
        asimov.saturated_chi2,
        fit_time_s,
        pq,
        pq_unc,
        asimov.pass_qcd[2],
        100.0 * max_dev,
        100.0 * tf_dev
    );
    for p in &asimov.parameters {
        println!("  {:<22} {:+.5} ± {:.5}", p.name, p.value, p.unc);
    }

    // Poisson toys without signal, window blinded, background-only fits.
    let dm0 = data_model(&g, 0.0, 2019);
    let window_cells: Vec<usize> = (0..nb).filter(|&b| WINDOW.contains(&cells[b].1)).collect();
    let wtruth: f64 = window_cells.iter().map(|&b| dm0.truth_bkg[1][b]).sum();
    let wtruth_qcd: f64 = window_cells.iter().map(|&b| dm0.truth_qcd[1][b]).sum();
    let t1 = Instant::now();
    let runs: Vec<Result<(f64, f64, f64, f64)>> = (0..n_toys)
        .into_par_iter()
        .map(|i| {
            let mut rng = toy_rng(7, i as u64);
            let obs: Vec<Vec<f64>> = dm0
                .truth
                .iter()
                .map(|ch| {
                    ch.iter()
                        .map(|&l| {
                            Poisson::new(l)
                                .map(|p| p.sample(&mut rng))
                                .map_err(|e| Error::InvalidInput(e.to_string()))
                        })
                        .collect::<Result<Vec<f64>>>()
                })
                .collect::<Result<_>>()?;
            let ws = data_workspace(&g, &dm0, &mc, &obs, &window_cells);
            let model = model_of(&ws)?;
            let mut data = model.observed_data();
            // Global observables drawn around the truth (pyhf's sample()).
            let n_main = model.n_main();
            let aux = model.sample_data(&model.init(), &mut rng)?;
            data[n_main..].copy_from_slice(&aux[n_main..]);
            let poi = model
                .poi_index()
                .ok_or_else(|| Error::InvalidInput("no POI".into()))?;
            let setup = FitSetup::from_model(&model).with_fixed(poi, 0.0);
            let r: FitResult = fit(&model, &data, &setup, &FitOptions::default())?;
            let off = offset_of(&model, "pass")?;
            let wb: Vec<usize> = window_cells.iter().map(|&b| off + b).collect();
            let hqq: Vec<&str> = model
                .input_layout()
                .iter()
                .map(|s| s.sample.as_str())
                .filter(|s| s.starts_with("hqq"))
                .collect();
            let (p, s) = sum_with_sigma(&model, &r, &without_samples(&model, &hqq), &wb)?;
            let (pq, sq) = sum_with_sigma(&model, &r, &sample_inputs(&model, "qcd"), &wb)?;
            Ok((p, s, pq, sq))
        })
        .collect();
    let toys_time_s = t1.elapsed().as_secs_f64();
    let ok: Vec<(f64, f64, f64, f64)> = runs
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let failed = runs.len() - ok.len();
    if let Some(Err(e)) = runs.iter().find(|r| r.is_err()) {
        println!("first failed toy: {e}");
    }
    let pulls: Vec<f64> = ok.iter().map(|t| (wtruth - t.0) / t.1).collect();
    let pulls_q: Vec<f64> = ok.iter().map(|t| (wtruth_qcd - t.2) / t.3).collect();
    let nok = ok.len().max(1) as f64;
    let output = Output {
        commit: "f901ebc (nsmith-/rhalphalib tests/test_rhalphalib.py)",
        valid_cells_per_pt_bin: per_pt,
        masked_cells: masked,
        qcdeff: mc.qcdeff,
        tf_mc_mean: mc.mean.clone(),
        tf_mc_unc: mc.unc.clone(),
        tf_mc_fit_chi2: mc.chi2,
        tf_mc_fit_bins: mc.n_bins,
        tf_mc_max_rel_dev: mc_max,
        tf_mc_rms_rel_dev: mc_rms,
        asimov,
        toys: n_toys,
        toys_failed: failed,
        window_truth: wtruth,
        window_pull: summarize(&pulls),
        window_pull_qcd: summarize(&pulls_q),
        window_rel_sigma: ok.iter().map(|t| t.1 / wtruth).sum::<f64>() / nok,
        window_rel_bias: ok.iter().map(|t| (t.0 - wtruth) / wtruth).sum::<f64>() / nok,
        toys_time_s,
    };
    println!(
        "toys: {} ok, {} failed, {:.1} s; window truth {:.1}; pull mean {:+.3} ± {:.3}, width {:.3} ± {:.3} (QCD only: {:+.3} ± {:.3}, {:.3} ± {:.3}); σ_pred/truth {:.2} %, bias {:+.2} %",
        ok.len(),
        failed,
        toys_time_s,
        wtruth,
        output.window_pull.mean,
        output.window_pull.mean_err,
        output.window_pull.width,
        output.window_pull.width_err,
        output.window_pull_qcd.mean,
        output.window_pull_qcd.mean_err,
        output.window_pull_qcd.width,
        output.window_pull_qcd.width_err,
        100.0 * output.window_rel_sigma,
        100.0 * output.window_rel_bias
    );
    let path = out.join("rhalphabet.json");
    let text = serde_json::to_string_pretty(&output).map_err(|source| Error::Json {
        context: path.display().to_string(),
        source,
    })?;
    std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    println!("output folder: {}", out.display());
    Ok(())
}

/// Largest |fitted − true| / true of the total pass/fail QCD ratio
/// (`qcdeff × TF_MC × TF_data`; true 0.01 in every cell).
fn total_tf_dev(model: &Model, r: &FitResult, g: &Geometry, mc: &McFit) -> Result<f64> {
    let names = model.par_names();
    let find = |p: &str| {
        names
            .iter()
            .position(|n| n == p)
            .ok_or_else(|| Error::InvalidInput(format!("{p} missing")))
    };
    let (zo, to) = (find("tf_MCtempl_deco[0]")?, find("tf_dataResidual[0]")?);
    // c = mean + L z with L the Cholesky factor of cov.
    let l = cholesky(&mc.cov);
    let c_mc: Vec<f64> = (0..9)
        .map(|i| mc.mean[i] + (0..=i).map(|j| l[i][j] * r.pars[zo + j]).sum::<f64>())
        .collect();
    let c_d: Vec<f64> = (0..9).map(|k| r.pars[to + k]).collect();
    let truth = expo_sample(1e3, 40.0)[0] / expo_sample(1e5, 40.0)[0];
    Ok(g.bins()
        .iter()
        .map(|&u| {
            let v = mc.qcdeff * bernstein2(u, &c_mc) * bernstein2(u, &c_d);
            ((v - truth) / truth).abs()
        })
        .fold(0.0, f64::max))
}

fn cholesky(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                l[i][j] = (a[i][i] - s).max(0.0).sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    l
}
