//! The 3-D synthetic mixture of INFERNO (de Castro & Dorigo,
//! arXiv:1806.04743, section 5), with its benchmarks 0–4.
//!
//! * background f_b(x | r, λ) = N((x0, x1) | (2 + r, 0), diag(5, 9)) · Exp(x2 | λ),
//! * signal f_s(x) = N((x0, x1) | (0, 0), I) · Exp(x2 | 2),
//!
//! with Exp(x | λ) = λ e^{−λx} (λ is a *rate*), s = 50 and b = 1000 expected
//! events, nominal r = 0 and λ = 3. The paper's text puts the signal mean at
//! (1, 1); both public implementations (`pablodecm/paper-inferno`,
//! `GilesStrong/pytorch_inferno`) use (0, 0), and so does this toy.
//!
//! Nuisance variations are applied to the nominal background events as the
//! reference code does (`transform_bkg`): x0 → x0 + (r′ − r), x2 → x2 · λ/λ′.
//! The variation processes are therefore event-by-event transforms of the
//! nominal background ([`ToyModel::base_process`]), so that their histograms
//! differ only by the shift, not by sampling noise.
//!
//! The analysis (one channel, softmax "bins"): the signal under a normfactor
//! `mu` (s = 50 μ), the background under a histosys `r` (hi/lo: r = ±δ_r),
//! a histosys `lambda` (hi/lo: λ = 3 ± δ_λ) and, in benchmark 4, a `lumi`
//! modifier whose Gaussian constraint (σ = 0.1) is N(b | 1000, 100). A
//! histosys parameter α maps to r = δ_r α (λ = 3 + δ_λ α); pyhf's unit
//! Gaussian constraint on α does not match the benchmarks (free in 1–2,
//! N(r | 0, 0.4) and N(λ | 3, 1) in 3–4), so [`ToyModel::template`] replaces
//! it with model-level constraint overrides
//! ([`crate::hf::ModelOptions::constraint_overrides`]), so the fits see the
//! benchmark's constraints as well as the Fisher information.
//!
//! The analytic densities ([`Inferno::signal_density`],
//! [`Inferno::background_density`]) serve the analytical-likelihood bound.

use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use serde_json::json;

use super::{
    check_process, signal_background_workspace, Analysis, Events, Process, Role, ToyModel,
};
use crate::grad::{InputSel, Template, YieldFloor};
use crate::hf::{ConstraintOverride, InterpCode, ModelOptions, OverrideKind};
use crate::{Error, Result};

/// Channel name of the INFERNO analysis.
pub const CHANNEL: &str = "inferno";
/// Name of the histosys of the background mean shift r.
pub const SYST_R: &str = "r";
/// Name of the histosys of the background exponential rate λ.
pub const SYST_LAMBDA: &str = "lambda";
/// Name of the lumi modifier carrying the background normalisation
/// (benchmark 4; pyhf's schema requires the name `lumi`).
pub const NORM_B: &str = "lumi";

/// Which INFERNO benchmark: its free parameters and constraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    /// 0: only s free.
    B0,
    /// 1: s and r free (r unconstrained).
    B1,
    /// 2: s, r and λ free (unconstrained).
    B2,
    /// 3: as 2 with constraints N(r | 0, 0.4) and N(λ | 3, 1).
    B3,
    /// 4: as 3 plus b free with constraint N(b | 1000, 100).
    B4,
}

impl Benchmark {
    /// Benchmark of index 0–4.
    pub fn from_index(i: usize) -> Result<Self> {
        Ok(match i {
            0 => Benchmark::B0,
            1 => Benchmark::B1,
            2 => Benchmark::B2,
            3 => Benchmark::B3,
            4 => Benchmark::B4,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "inferno: benchmark {i} does not exist (0–4)"
                )))
            }
        })
    }

    /// Index 0–4.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether r is a parameter of the fit.
    pub fn has_r(self) -> bool {
        self != Benchmark::B0
    }

    /// Whether λ is a parameter of the fit.
    pub fn has_lambda(self) -> bool {
        matches!(self, Benchmark::B2 | Benchmark::B3 | Benchmark::B4)
    }

    /// Whether r and λ carry their Gaussian constraints.
    pub fn constrained(self) -> bool {
        matches!(self, Benchmark::B3 | Benchmark::B4)
    }

    /// Whether b is a parameter of the fit.
    pub fn has_b(self) -> bool {
        self == Benchmark::B4
    }
}

/// The INFERNO synthetic mixture; the fields default to the paper's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferno {
    /// Benchmark (which processes and parameters the analysis has).
    pub benchmark: Benchmark,
    /// Expected signal events s.
    pub s_exp: f64,
    /// Expected background events b.
    pub b_exp: f64,
    /// Nominal background mean shift r (x0 mean 2 + r).
    pub r: f64,
    /// Nominal background exponential rate λ.
    pub lambda: f64,
    /// Shift δ_r of the r templates (r ± δ_r); the paper's evaluation
    /// templates use 0.2.
    pub shift_r: f64,
    /// Shift δ_λ of the λ templates (λ ± δ_λ); the paper uses 0.5.
    pub shift_lambda: f64,
    /// Width of the r constraint in benchmarks 3–4 (0.4).
    pub sigma_r: f64,
    /// Width of the λ constraint in benchmarks 3–4 (1).
    pub sigma_lambda: f64,
    /// Relative width of the b constraint in benchmark 4 (100/1000).
    pub sigma_b_rel: f64,
}

impl Inferno {
    /// Model options of the benchmark's analysis: the histosys
    /// interpolation `histosys_interp` (code 4p in training and evaluation:
    /// the Fisher information at α = 0 needs only ∂ν/∂α = (hi − lo)/2, the
    /// same for 4p and for the paper's quadratic-inside / linear-outside
    /// interpolation, and pyhf's code 2 jumps at |α| = 1, where profile fits
    /// then find no minimum) and
    /// the benchmark's constraints on r and λ in place of pyhf's unit
    /// Gaussians: free in benchmarks 1–2, N(r | 0, σ_r) and N(λ | 3, σ_λ) on
    /// α (widths σ/δ) in 3–4.
    pub fn model_options(&self, histosys_interp: InterpCode) -> ModelOptions {
        let bm = self.benchmark;
        let mut overrides = Vec::new();
        for (on, name, sigma, shift) in [
            (bm.has_r(), SYST_R, self.sigma_r, self.shift_r),
            (
                bm.has_lambda(),
                SYST_LAMBDA,
                self.sigma_lambda,
                self.shift_lambda,
            ),
        ] {
            if on {
                overrides.push(ConstraintOverride {
                    parameter: name.to_string(),
                    constraint: if bm.constrained() {
                        OverrideKind::Normal {
                            sigma: sigma / shift,
                        }
                    } else {
                        OverrideKind::Free
                    },
                });
            }
        }
        ModelOptions {
            histosys_interp,
            constraint_overrides: overrides,
            ..ModelOptions::default()
        }
    }

    /// The toy of benchmark `benchmark` with the paper's values.
    pub fn new(benchmark: Benchmark) -> Self {
        Inferno {
            benchmark,
            s_exp: 50.0,
            b_exp: 1000.0,
            r: 0.0,
            lambda: 3.0,
            shift_r: 0.2,
            shift_lambda: 0.5,
            sigma_r: 0.4,
            sigma_lambda: 1.0,
            sigma_b_rel: 0.1,
        }
    }

    /// Signal density f_s(x).
    pub fn signal_density(x: &[f64; 3]) -> f64 {
        if x[2] < 0.0 {
            return 0.0;
        }
        let g = (-0.5 * (x[0] * x[0] + x[1] * x[1])).exp() / (2.0 * std::f64::consts::PI);
        g * 2.0 * (-2.0 * x[2]).exp()
    }

    /// Background density f_b(x | r, λ).
    pub fn background_density(x: &[f64; 3], r: f64, lambda: f64) -> f64 {
        if x[2] < 0.0 {
            return 0.0;
        }
        let d0 = x[0] - 2.0 - r;
        let q = d0 * d0 / 5.0 + x[1] * x[1] / 9.0;
        let g = (-0.5 * q).exp() / (2.0 * std::f64::consts::PI * (45.0f64).sqrt());
        g * lambda * (-lambda * x[2]).exp()
    }

    /// Mixture density p(x | s, r, λ, b) = (s f_s + b f_b) / (s + b).
    pub fn mixture_density(x: &[f64; 3], s: f64, r: f64, lambda: f64, b: f64) -> f64 {
        (s * Self::signal_density(x) + b * Self::background_density(x, r, lambda)) / (s + b)
    }

    /// Fisher information of the unbinned extended likelihood of the true
    /// densities at the nominal point, over (s, r, λ, b), without
    /// constraints: I_ij = ∫ ∂_i ν(x) ∂_j ν(x) / ν(x) dx with
    /// ν(x) = s f_s(x) + b f_b(x | r, λ).
    ///
    /// Quadrature: trapezoid rule with step 0.2 over x0 ∈ [2 + r − 20, 2 + r + 20]
    /// and x1 ∈ [−30, 30] (≥ 9σ of the background; spectrally accurate for
    /// these Gaussian integrands), 8-point Gauss–Legendre panels of width 0.5
    /// over x2 ∈ [0, 40/min(λ, 2)]; halving both steps changes no entry by
    /// more than 1e-9 of the diagonal (tested).
    pub fn analytic_fisher(&self) -> Result<[[f64; 4]; 4]> {
        self.analytic_fisher_with(0.2, 0.5)
    }

    /// [`Self::analytic_fisher`] with trapezoid step `h` in x0, x1 and
    /// Gauss–Legendre panels of width `panel` in x2 (to check convergence).
    pub fn analytic_fisher_with(&self, h: f64, panel: f64) -> Result<[[f64; 4]; 4]> {
        self.check()?;
        if !(h > 0.0 && h <= 1.0 && panel > 0.0 && panel <= 1.0) {
            return Err(Error::InvalidInput(format!(
                "inferno: quadrature step {h} and panel {panel} must be in (0, 1]"
            )));
        }
        let (s, b, r, l) = (self.s_exp, self.b_exp, self.r, self.lambda);
        // Gauss–Legendre nodes and weights on [−1, 1], 8 points
        const GL: [(f64, f64); 4] = [
            (0.183_434_642_495_650, 0.362_683_783_378_362),
            (0.525_532_409_916_329, 0.313_706_645_877_887),
            (0.796_666_477_413_627, 0.222_381_034_453_374),
            (0.960_289_856_497_536, 0.101_228_536_290_376),
        ];
        let x2_max = 40.0 / l.min(2.0);
        let width = panel;
        let panels = (x2_max / width).ceil() as usize;
        let mut x2s = Vec::with_capacity(panels * 8);
        for k in 0..panels {
            let c = (k as f64 + 0.5) * width;
            for &(t, w) in &GL {
                for sgn in [-1.0, 1.0] {
                    x2s.push((c + sgn * t * width / 2.0, w * width / 2.0));
                }
            }
        }
        let grid = |lo: f64, hi: f64| -> Vec<f64> {
            let n = ((hi - lo) / h).round() as usize;
            (0..=n).map(|i| lo + i as f64 * h).collect()
        };
        let x0s = grid(2.0 + r - 20.0, 2.0 + r + 20.0);
        let x1s = grid(-30.0, 30.0);
        let mut fi = [[0.0; 4]; 4];
        for &x0 in &x0s {
            for &x1 in &x1s {
                for &(x2, w2) in &x2s {
                    let x = [x0, x1, x2];
                    let fs = Self::signal_density(&x);
                    let fb = Self::background_density(&x, r, l);
                    let nu = s * fs + b * fb;
                    if nu <= 0.0 {
                        continue;
                    }
                    let d = [
                        fs,
                        b * fb * (x0 - 2.0 - r) / 5.0,
                        b * fb * (1.0 / l - x2),
                        fb,
                    ];
                    let w = w2 * h * h / nu;
                    for (row, di) in fi.iter_mut().zip(&d) {
                        for (f, dj) in row.iter_mut().zip(&d) {
                            *f += w * di * dj;
                        }
                    }
                }
            }
        }
        Ok(fi)
    }

    /// The analytical-likelihood bound on σ_s for this toy's benchmark:
    /// sqrt([I⁻¹]_ss) with [`Self::analytic_fisher`] over the benchmark's
    /// free parameters plus its constraints (1/σ² on the diagonal).
    pub fn analytic_sigma_s(&self) -> Result<f64> {
        let full = self.analytic_fisher()?;
        let bm = self.benchmark;
        let mut idx = vec![0];
        let mut curv = vec![0.0];
        let c = |sigma: f64| {
            if bm.constrained() {
                1.0 / (sigma * sigma)
            } else {
                0.0
            }
        };
        if bm.has_r() {
            idx.push(1);
            curv.push(c(self.sigma_r));
        }
        if bm.has_lambda() {
            idx.push(2);
            curv.push(c(self.sigma_lambda));
        }
        if bm.has_b() {
            idx.push(3);
            let sb = self.sigma_b_rel * self.b_exp;
            curv.push(1.0 / (sb * sb));
        }
        let m = idx.len();
        let mut a: Vec<Vec<f64>> = idx
            .iter()
            .enumerate()
            .map(|(p, &i)| {
                let mut row: Vec<f64> = idx.iter().map(|&j| full[i][j]).collect();
                row[p] += curv[p];
                row
            })
            .collect();
        // [A⁻¹]_00 = 1 / (Schur complement of the rest): eliminate 1..m
        for k in (1..m).rev() {
            let piv = a[k][k];
            if !(piv > 0.0 && piv.is_finite()) {
                return Err(Error::InvalidInput(format!(
                    "inferno: the analytic Fisher information is singular ({piv})"
                )));
            }
            let pivot_row = a[k][..k].to_vec();
            for row in a.iter_mut().take(k) {
                let f = row[k] / piv;
                for (x, p) in row.iter_mut().zip(&pivot_row) {
                    *x -= f * p;
                }
            }
        }
        Ok((1.0 / a[0][0]).sqrt())
    }

    /// Analytic mean and variance of each feature of process `process`.
    pub fn moments(&self, process: usize) -> Result<[(f64, f64); 3]> {
        check_process(self, process)?;
        Ok(match self.process_kind(process) {
            Kind::Signal => [(0.0, 1.0), (0.0, 1.0), (0.5, 0.25)],
            Kind::Background { dr, lambda } => {
                let r = self.r + dr;
                [
                    (2.0 + r, 5.0),
                    (0.0, 9.0),
                    (1.0 / lambda, 1.0 / (lambda * lambda)),
                ]
            }
        })
    }

    fn process_kind(&self, process: usize) -> Kind {
        let l = self.lambda;
        match process {
            0 => Kind::Signal,
            1 => Kind::Background { dr: 0.0, lambda: l },
            2 => Kind::Background {
                dr: self.shift_r,
                lambda: l,
            },
            3 => Kind::Background {
                dr: -self.shift_r,
                lambda: l,
            },
            4 => Kind::Background {
                dr: 0.0,
                lambda: l + self.shift_lambda,
            },
            _ => Kind::Background {
                dr: 0.0,
                lambda: l - self.shift_lambda,
            },
        }
    }

    fn check(&self) -> Result<()> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !(ok(self.s_exp)
            && ok(self.b_exp)
            && ok(self.lambda)
            && ok(self.shift_r)
            && ok(self.shift_lambda)
            && ok(self.sigma_r)
            && ok(self.sigma_lambda)
            && ok(self.sigma_b_rel)
            && self.r.is_finite()
            && self.shift_lambda < self.lambda)
        {
            return Err(Error::InvalidInput(format!(
                "inferno: yields, rates, shifts and widths must be finite and > 0 \
                 (and δ_λ < λ): {self:?}"
            )));
        }
        Ok(())
    }
}

impl Default for Inferno {
    fn default() -> Self {
        Inferno::new(Benchmark::B2)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Signal,
    /// Background with r = nominal + dr and rate `lambda`.
    Background {
        dr: f64,
        lambda: f64,
    },
}

impl ToyModel for Inferno {
    fn name(&self) -> &str {
        match self.benchmark {
            Benchmark::B0 => "inferno_b0",
            Benchmark::B1 => "inferno_b1",
            Benchmark::B2 => "inferno_b2",
            Benchmark::B3 => "inferno_b3",
            Benchmark::B4 => "inferno_b4",
        }
    }

    fn n_features(&self) -> usize {
        3
    }

    fn processes(&self) -> Vec<Process> {
        let p = |name: &str, role, yield_scale| Process {
            name: name.into(),
            role,
            yield_scale,
        };
        let (s, b) = (self.s_exp, self.b_exp);
        let mut out = vec![
            p("signal", Role::Signal, s),
            p("background", Role::Background, b),
        ];
        if self.benchmark.has_r() {
            out.push(p("bkg_r_up", Role::Variation, b));
            out.push(p("bkg_r_down", Role::Variation, b));
        }
        if self.benchmark.has_lambda() {
            out.push(p("bkg_lambda_up", Role::Variation, b));
            out.push(p("bkg_lambda_down", Role::Variation, b));
        }
        out
    }

    fn sample(&self, process: usize, n: usize, rng: &mut dyn Rng) -> Result<Events> {
        check_process(self, process)?;
        self.check()?;
        let mut features = Vec::with_capacity(3 * n);
        let signal = matches!(self.process_kind(process), Kind::Signal);
        for _ in 0..n {
            let z0: f64 = StandardNormal.sample(rng);
            let z1: f64 = StandardNormal.sample(rng);
            let e: f64 = Exp1.sample(rng);
            if signal {
                features.extend([z0, z1, e / 2.0]);
            } else {
                features.extend([2.0 + self.r + 5f64.sqrt() * z0, 3.0 * z1, e / self.lambda]);
            }
        }
        let nominal = Events {
            n_features: 3,
            features,
            weights: None,
        };
        if process > 1 {
            self.derive(process, &nominal)
        } else {
            Ok(nominal)
        }
    }

    fn base_process(&self, process: usize) -> Option<usize> {
        (process > 1 && process < self.processes().len()).then_some(1)
    }

    fn derive(&self, process: usize, base: &Events) -> Result<Events> {
        check_process(self, process)?;
        let Kind::Background { dr, lambda } = self.process_kind(process) else {
            return Err(Error::InvalidInput(
                "inferno: the signal is not a background variation".into(),
            ));
        };
        if base.n_features != 3 {
            return Err(Error::InvalidInput(format!(
                "inferno: base events have {} features, need 3",
                base.n_features
            )));
        }
        let scale = self.lambda / lambda;
        let mut features = base.features.clone();
        for ev in features.chunks_exact_mut(3) {
            ev[0] += dr;
            ev[2] *= scale;
        }
        Ok(Events {
            n_features: 3,
            features,
            weights: base.weights.clone(),
        })
    }

    fn analysis(&self, n_bins: usize) -> Result<Analysis> {
        self.check()?;
        if n_bins == 0 {
            return Err(Error::InvalidInput("inferno: need at least one bin".into()));
        }
        let ones = vec![1.0; n_bins];
        let bm = self.benchmark;
        let mut bkg_mods = Vec::new();
        let histo = |name: &str| {
            json!({"name": name, "type": "histosys",
                   "data": {"hi_data": ones, "lo_data": ones}})
        };
        if bm.has_r() {
            bkg_mods.push(histo(SYST_R));
        }
        if bm.has_lambda() {
            bkg_mods.push(histo(SYST_LAMBDA));
        }
        let mut params = vec![];
        if bm.has_b() {
            bkg_mods.push(json!({"name": NORM_B, "type": "lumi", "data": null}));
            params.push(json!({"name": NORM_B, "auxdata": [1.0], "inits": [1.0],
                               "sigmas": [self.sigma_b_rel], "bounds": [[0.2, 1.8]]}));
        }
        let workspace =
            signal_background_workspace(CHANNEL, n_bins, json!(bkg_mods), json!(params))?;
        let mut inputs = vec![
            (0, InputSel::nominal(CHANNEL, "signal")),
            (1, InputSel::nominal(CHANNEL, "background")),
        ];
        let mut k = 2;
        for (on, name) in [(bm.has_r(), SYST_R), (bm.has_lambda(), SYST_LAMBDA)] {
            if on {
                inputs.push((k, InputSel::histo_hi(CHANNEL, "background", name)));
                inputs.push((k + 1, InputSel::histo_lo(CHANNEL, "background", name)));
                k += 2;
            }
        }
        Ok(Analysis { workspace, inputs })
    }

    /// The analysis template with the benchmark's constraints on r and λ:
    /// none (benchmarks 1–2) or N(r | 0, σ_r), N(λ | 3, σ_λ) expressed on α
    /// (width σ/δ), as model-level constraint overrides
    /// ([`Inferno::model_options`]).
    fn template(&self, n_bins: usize, floor: YieldFloor) -> Result<Template> {
        self.analysis(n_bins)?
            .template_with(floor, &self.model_options(InterpCode::Code4p))
    }

    fn feature_range(&self) -> Vec<(f64, f64)> {
        vec![(-5.0, 9.0), (-9.0, 9.0), (0.0, 2.0)]
    }
}
