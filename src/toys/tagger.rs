//! An event-level toy for a pass/fail analysis with a data-driven QCD
//! estimate (issue 11, item 5): events in `(x, y)` (like a jet mass on
//! 40–200 and a jet pT on 450–1200) from a smoothly falling QCD density and a
//! resonant signal (`x ~ N(125, 8)`, falling in `y`), each with tagger
//! features, and the differentiable chain that turns per-event pass weights
//! into the significance of the full pass/fail analysis with the transfer
//! factor profiled.
//!
//! * [`TaggerToy`]: the generator. Feature 0 is the tagger logit
//!   `f1 = a(x, y) + L` for QCD and `b + L` for signal, `L ~ Logistic(0, 1)`,
//!   so the QCD pass/fail ratio at a threshold `c` on `f1` is exactly
//!   `exp(a(x, y) − c)`: with [`Variant::Smooth`] `a` is a polynomial of
//!   order (2, 1) in the scaled coordinates, so an exp-form Bernstein TF of
//!   that order is exact at every threshold; [`Variant::NonPolynomial`] adds
//!   a logistic step in `x` that no low-order TF follows. Feature 1 separates
//!   signal and is independent of `(x, y)`; feature 2 is a noisy mass proxy
//!   (`(x + N(0, σ_m²) − 125) / 40`, the same law for both processes), the
//!   feature a classifier uses to sculpt the QCD mass distribution.
//! * [`Grid`], [`Binned`]: the fixed `(x, y)` grid and differentiable
//!   weighted histograms (candle `index_add`, which backpropagates to the
//!   weights).
//! * [`PassFail`]: the 2DAlphabet-style pass/fail workspace (free per-bin
//!   fail yields, exp-form Bernstein TF, signal strength `mu`) and its
//!   significance `Z_A = √q0` on the Asimov data set of the truth (signed:
//!   `−√t0` where μ̂ < 0), on candle's tape.

use candle_core::{DType, Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal, Open01};
use serde_json::json;

use crate::grad::{InputSel, Loss, LossKind, Template};
use crate::hf::{ModelOptions, Workspace};
use crate::infer::asymptotics::normal_cdf;
use crate::infer::teststat::TestStat;
use crate::{Error, Result};

/// Range of `x` (jet-mass-like).
pub const X_RANGE: (f64, f64) = (40.0, 200.0);
/// Range of `y` (jet-pT-like).
pub const Y_RANGE: (f64, f64) = (450.0, 1200.0);
/// Number of features per event.
pub const N_FEATURES: usize = 3;
/// `ε` of the QCD fail nominal `fail_b + ε (inclusive_b + mean inclusive)`
/// of [`PassFail::inputs`]: keeps every bin's nominal positive.
pub const NOMINAL_FLOOR: f64 = 1e-2;
/// Upper bound of the free per-bin fail yields `γ_b` (pyhf's default is 10):
/// a bin whose fail region a selection empties has its MLE at
/// `γ_b ≤ 1/ε = 100` ([`NOMINAL_FLOOR`]).
pub const FAIL_YIELD_BOUND: f64 = 1e3;
/// Signal mass and width.
pub const SIGNAL_MASS: (f64, f64) = (125.0, 8.0);

/// How the QCD pass rate varies over `(x, y)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `a(u, v)` a polynomial of order (2, 1) in the scaled coordinates.
    Smooth,
    /// The smooth `a` plus a logistic step in `x` (height 1, at 95, width 4).
    NonPolynomial,
}

impl Variant {
    /// Parses `smooth` / `nonpoly`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "smooth" => Ok(Variant::Smooth),
            "nonpoly" | "non-polynomial" => Ok(Variant::NonPolynomial),
            other => Err(Error::InvalidInput(format!(
                "unknown tagger-toy variant '{other}' (known: smooth, nonpoly)"
            ))),
        }
    }
}

/// The generator: expected yields and the shape of the tagger.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggerToy {
    /// Pass-rate variant.
    pub variant: Variant,
    /// Expected QCD events over the whole `(x, y)` range (both regions).
    pub qcd_yield: f64,
    /// Expected signal events (μ = 1).
    pub signal_yield: f64,
    /// Signal tagger logit offset `b`.
    pub signal_logit: f64,
    /// Mean of feature 1 for signal (QCD: 0; both unit width).
    pub feature_shift: f64,
    /// Resolution σ_m of the mass proxy (feature 2), in units of `x`.
    pub mass_resolution: f64,
}

impl Default for TaggerToy {
    fn default() -> Self {
        TaggerToy {
            variant: Variant::Smooth,
            qcd_yield: 1e5,
            signal_yield: 100.0,
            signal_logit: 3.0,
            feature_shift: 1.0,
            mass_resolution: 15.0,
        }
    }
}

/// Events of one process: coordinates, features and one weight per event
/// (the expected total divided by the number of events).
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// `x` per event.
    pub x: Vec<f64>,
    /// `y` per event.
    pub y: Vec<f64>,
    /// Row-major features, `n × N_FEATURES`.
    pub features: Vec<f64>,
    /// Weight of every event.
    pub weight: f64,
}

impl Events {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Feature `j` of every event.
    pub fn column(&self, j: usize) -> Vec<f64> {
        self.features
            .iter()
            .skip(j)
            .step_by(N_FEATURES)
            .copied()
            .collect()
    }

    /// The features as an `(n, N_FEATURES)` tensor of `dtype`.
    pub fn feature_tensor(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        Ok(
            Tensor::from_vec(self.features.clone(), (self.len(), N_FEATURES), device)?
                .to_dtype(dtype)?,
        )
    }
}

/// Scaled coordinates `(u, v) ∈ [0, 1]²`.
pub fn scaled(x: f64, y: f64) -> (f64, f64) {
    (
        (x - X_RANGE.0) / (X_RANGE.1 - X_RANGE.0),
        (y - Y_RANGE.0) / (Y_RANGE.1 - Y_RANGE.0),
    )
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// A draw from the exponential density `∝ exp(−(t − lo)/scale)` truncated to `[lo, hi]`.
fn truncated_exp<R: Rng + ?Sized>(lo: f64, hi: f64, scale: f64, rng: &mut R) -> f64 {
    let u: f64 = Open01.sample(rng);
    let tail = (-(hi - lo) / scale).exp();
    lo - scale * (1.0 - u * (1.0 - tail)).ln()
}

fn logistic<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u: f64 = Open01.sample(rng);
    (u / (1.0 - u)).ln()
}

impl TaggerToy {
    /// The QCD tagger logit offset `a(x, y)`: the QCD pass/fail ratio at a
    /// threshold `c` on feature 0 is `exp(a − c)`.
    pub fn qcd_logit(&self, x: f64, y: f64) -> f64 {
        let (u, v) = scaled(x, y);
        let smooth = -3.5 + 1.2 * u - 0.8 * u * u - 0.6 * v + 0.4 * u * v;
        match self.variant {
            Variant::Smooth => smooth,
            Variant::NonPolynomial => smooth + sigmoid((x - 95.0) / 4.0),
        }
    }

    /// QCD pass probability at threshold `c` on feature 0: `σ(a(x, y) − c)`.
    pub fn qcd_pass_probability(&self, x: f64, y: f64, c: f64) -> f64 {
        sigmoid(self.qcd_logit(x, y) - c)
    }

    fn check(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidInput("tagger toy: n must be > 0".into()));
        }
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.qcd_yield) || !ok(self.signal_yield) || !ok(self.mass_resolution) {
            return Err(Error::InvalidInput(format!(
                "tagger toy: yields and mass resolution must be finite and > 0, got {self:?}"
            )));
        }
        if !self.signal_logit.is_finite() || !self.feature_shift.is_finite() {
            return Err(Error::InvalidInput(format!(
                "tagger toy: signal logit and feature shift must be finite, got {self:?}"
            )));
        }
        Ok(())
    }

    fn features<R: Rng + ?Sized>(
        &self,
        x: f64,
        logit: f64,
        shift: f64,
        rng: &mut R,
    ) -> Result<[f64; N_FEATURES]> {
        let unit = Normal::new(0.0, 1.0).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let f1 = logit + logistic(rng);
        let f2 = shift + unit.sample(rng);
        let f3 = (x + self.mass_resolution * unit.sample(rng) - SIGNAL_MASS.0) / 40.0;
        Ok([f1, f2, f3])
    }

    /// `n` QCD events: `y` exponential (scale 200) on the `y` range, `x | y`
    /// exponential with scale `40 + 40 v` on the `x` range; weight
    /// `qcd_yield / n`.
    pub fn sample_qcd<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Events> {
        self.check(n)?;
        let mut ev = Events {
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            features: Vec::with_capacity(n * N_FEATURES),
            weight: self.qcd_yield / n as f64,
        };
        for _ in 0..n {
            let y = truncated_exp(Y_RANGE.0, Y_RANGE.1, 200.0, rng);
            let v = scaled(X_RANGE.0, y).1;
            let x = truncated_exp(X_RANGE.0, X_RANGE.1, 40.0 + 40.0 * v, rng);
            let f = self.features(x, self.qcd_logit(x, y), 0.0, rng)?;
            ev.x.push(x);
            ev.y.push(y);
            ev.features.extend(f);
        }
        Ok(ev)
    }

    /// `n` signal events: `x ~ N(125, 8)` (inside the range), `y`
    /// exponential (scale 350) on the `y` range; weight `signal_yield / n`.
    pub fn sample_signal<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Events> {
        self.check(n)?;
        let mass = Normal::new(SIGNAL_MASS.0, SIGNAL_MASS.1)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut ev = Events {
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            features: Vec::with_capacity(n * N_FEATURES),
            weight: self.signal_yield / n as f64,
        };
        for _ in 0..n {
            let x = loop {
                let x = mass.sample(rng);
                if (X_RANGE.0..X_RANGE.1).contains(&x) {
                    break x;
                }
            };
            let y = truncated_exp(Y_RANGE.0, Y_RANGE.1, 350.0, rng);
            let f = self.features(x, self.signal_logit, self.feature_shift, rng)?;
            ev.x.push(x);
            ev.y.push(y);
            ev.features.extend(f);
        }
        Ok(ev)
    }
}

/// Sub-intervals per axis and bin of the midpoint rule in
/// [`TaggerToy::expected`] (the QCD pass probability varies on scales ≥ 4
/// in `x`, the bins are 20 wide at 8 bins: relative error ≲ 1e-4).
const QUAD: usize = 40;

/// Expected (infinite-statistics) yields of a hard cut `f1 ≥ c` on the
/// tagger logit, per grid bin: what the Monte-Carlo histograms of
/// [`Hists`] estimate, without their statistical noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// QCD in the pass region.
    pub qcd_pass: Vec<f64>,
    /// QCD in the fail region.
    pub qcd_fail: Vec<f64>,
    /// Signal (μ = 1) in the pass region.
    pub sig_pass: Vec<f64>,
    /// Signal (μ = 1) in the fail region.
    pub sig_fail: Vec<f64>,
}

impl Expected {
    /// The yields as [`Hists`] (f64 tensors on `device`, no tape).
    pub fn hists(&self, device: &Device) -> Result<Hists> {
        let t = |v: &Vec<f64>| -> Result<Tensor> { Ok(Tensor::new(v.as_slice(), device)?) };
        Ok(Hists {
            qcd_pass: t(&self.qcd_pass)?,
            qcd_fail: t(&self.qcd_fail)?,
            sig_pass: t(&self.sig_pass)?,
            sig_fail: t(&self.sig_fail)?,
        })
    }
}

/// `∫ f` over `[lo, hi]` by the midpoint rule with `n` intervals.
fn midpoint(lo: f64, hi: f64, n: usize, f: impl Fn(f64) -> f64) -> f64 {
    let h = (hi - lo) / n as f64;
    (0..n).map(|i| f(lo + (i as f64 + 0.5) * h)).sum::<f64>() * h
}

/// Density of the exponential `∝ exp(−(t − lo)/scale)` truncated to `[lo, hi]`.
fn truncated_exp_pdf(t: f64, lo: f64, hi: f64, scale: f64) -> f64 {
    (-(t - lo) / scale).exp() / (scale * (1.0 - (-(hi - lo) / scale).exp()))
}

impl TaggerToy {
    /// The QCD density in `(x, y)` (normalised to 1 on the ranges), as
    /// [`Self::sample_qcd`] draws it.
    pub fn qcd_density(&self, x: f64, y: f64) -> f64 {
        let v = scaled(X_RANGE.0, y).1;
        truncated_exp_pdf(y, Y_RANGE.0, Y_RANGE.1, 200.0)
            * truncated_exp_pdf(x, X_RANGE.0, X_RANGE.1, 40.0 + 40.0 * v)
    }

    /// Probability of a signal event in `[x0, x1] × [y0, y1]` (as
    /// [`Self::sample_signal`] draws them).
    fn signal_probability(x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
        let (m, w) = SIGNAL_MASS;
        let phi = |x: f64| normal_cdf((x - m) / w);
        let px = (phi(x1) - phi(x0)) / (phi(X_RANGE.1) - phi(X_RANGE.0));
        let cdf_y = |y: f64| {
            (1.0 - (-(y - Y_RANGE.0) / 350.0).exp())
                / (1.0 - (-(Y_RANGE.1 - Y_RANGE.0) / 350.0).exp())
        };
        px * (cdf_y(y1) - cdf_y(y0))
    }

    /// Expected QCD pass and total yields in `[x0, x1] × [y0, y1]` at a
    /// hard cut `f1 ≥ c`.
    fn qcd_pass_total(&self, x0: f64, x1: f64, y0: f64, y1: f64, c: f64) -> (f64, f64) {
        let (mut pass, mut total) = (0.0, 0.0);
        let (hx, hy) = ((x1 - x0) / QUAD as f64, (y1 - y0) / QUAD as f64);
        for i in 0..QUAD {
            let x = x0 + (i as f64 + 0.5) * hx;
            for j in 0..QUAD {
                let y = y0 + (j as f64 + 0.5) * hy;
                let d = self.qcd_density(x, y);
                total += d;
                pass += d * self.qcd_pass_probability(x, y, c);
            }
        }
        let k = self.qcd_yield * hx * hy;
        (pass * k, total * k)
    }

    /// Expected yields per bin of `grid` for a hard cut `f1 ≥ c` (midpoint
    /// rule for QCD, closed form for the signal).
    pub fn expected(&self, grid: &Grid, c: f64) -> Result<Expected> {
        self.check(1)?;
        if !c.is_finite() {
            return Err(Error::InvalidInput(format!(
                "expected yields: threshold must be finite, got {c}"
            )));
        }
        let eff = sigmoid(self.signal_logit - c);
        let nb = grid.n_bins();
        let mut e = Expected {
            qcd_pass: Vec::with_capacity(nb),
            qcd_fail: Vec::with_capacity(nb),
            sig_pass: Vec::with_capacity(nb),
            sig_fail: Vec::with_capacity(nb),
        };
        for xw in grid.x_edges.windows(2) {
            for yw in grid.y_edges.windows(2) {
                let (p, t) = self.qcd_pass_total(xw[0], xw[1], yw[0], yw[1], c);
                let s = self.signal_yield * Self::signal_probability(xw[0], xw[1], yw[0], yw[1]);
                e.qcd_pass.push(p);
                e.qcd_fail.push(t - p);
                e.sig_pass.push(s * eff);
                e.sig_fail.push(s * (1.0 - eff));
            }
        }
        Ok(e)
    }

    /// Expected signal and QCD yields in the pass region (`f1 ≥ c`) inside
    /// the mass window `|x − 125| ≤ half_width`, summed over `y`: the
    /// ingredients of the window s/√b.
    pub fn expected_window(&self, c: f64, half_width: f64) -> Result<(f64, f64)> {
        self.check(1)?;
        let x0 = (SIGNAL_MASS.0 - half_width).max(X_RANGE.0);
        let x1 = (SIGNAL_MASS.0 + half_width).min(X_RANGE.1);
        if !(c.is_finite() && x1 > x0) {
            return Err(Error::InvalidInput(format!(
                "expected window yields: need a finite threshold and a window inside the x range, got c = {c}, half width {half_width}"
            )));
        }
        let s = self.signal_yield
            * Self::signal_probability(x0, x1, Y_RANGE.0, Y_RANGE.1)
            * sigmoid(self.signal_logit - c);
        // finer in y: the whole range in one cell
        let b = midpoint(Y_RANGE.0, Y_RANGE.1, 4 * QUAD, |y| {
            midpoint(x0, x1, QUAD, |x| {
                self.qcd_density(x, y) * self.qcd_pass_probability(x, y, c)
            })
        }) * self.qcd_yield;
        Ok((s, b))
    }
}

/// A rectangular `(x, y)` grid; bin `b = ix · ny + iy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Edges in `x` (increasing).
    pub x_edges: Vec<f64>,
    /// Edges in `y` (increasing).
    pub y_edges: Vec<f64>,
}

impl Grid {
    /// `nx × ny` equal bins over the toy's ranges.
    pub fn uniform(nx: usize, ny: usize) -> Result<Self> {
        if nx == 0 || ny == 0 {
            return Err(Error::InvalidInput(format!(
                "grid: need at least one bin per axis, got {nx} x {ny}"
            )));
        }
        let edges = |(lo, hi): (f64, f64), n: usize| -> Vec<f64> {
            (0..=n)
                .map(|i| lo + (hi - lo) * i as f64 / n as f64)
                .collect()
        };
        Ok(Grid {
            x_edges: edges(X_RANGE, nx),
            y_edges: edges(Y_RANGE, ny),
        })
    }

    /// Number of bins per axis.
    pub fn shape(&self) -> (usize, usize) {
        (self.x_edges.len() - 1, self.y_edges.len() - 1)
    }

    /// Total number of bins.
    pub fn n_bins(&self) -> usize {
        let (nx, ny) = self.shape();
        nx * ny
    }

    /// Bin of `(x, y)`, `None` outside the grid (upper edges inclusive).
    pub fn bin(&self, x: f64, y: f64) -> Option<usize> {
        let find = |e: &[f64], t: f64| -> Option<usize> {
            let n = e.len() - 1;
            if !(t >= e[0] && t <= e[n]) {
                return None;
            }
            Some(e[1..].partition_point(|&hi| hi <= t).min(n - 1))
        };
        let (_, ny) = self.shape();
        Some(find(&self.x_edges, x)? * ny + find(&self.y_edges, y)?)
    }

    /// Bin centres `[x, y]`, in bin order.
    pub fn centres(&self) -> Vec<[f64; 2]> {
        let c = |e: &[f64]| -> Vec<f64> { e.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect() };
        let (cx, cy) = (c(&self.x_edges), c(&self.y_edges));
        cx.iter()
            .flat_map(|&x| cy.iter().map(move |&y| [x, y]))
            .collect()
    }
}

/// The bin of every event of a sample on a grid, for differentiable
/// weighted histograms.
#[derive(Debug, Clone)]
pub struct Binned {
    idx: Tensor,
    weight: f64,
    n_bins: usize,
}

impl Binned {
    /// Bins `events` on `grid`; an event outside the grid is an error.
    pub fn new(events: &Events, grid: &Grid, device: &Device) -> Result<Self> {
        let idx = events
            .x
            .iter()
            .zip(&events.y)
            .enumerate()
            .map(|(i, (&x, &y))| {
                grid.bin(x, y).map(|b| b as u32).ok_or_else(|| {
                    Error::InvalidInput(format!("event {i} at ({x}, {y}) is outside the grid"))
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        Ok(Binned {
            idx: Tensor::new(idx, device)?,
            weight: events.weight,
            n_bins: grid.n_bins(),
        })
    }

    /// `Σ_events weight · w_e` per bin (shape `n_bins`), on the tape of `w`
    /// (one value per event, any float dtype).
    pub fn hist(&self, w: &Tensor) -> Result<Tensor> {
        let w = w.flatten_all()?;
        if w.elem_count() != self.idx.elem_count() {
            return Err(Error::InvalidInput(format!(
                "hist: {} weights for {} events",
                w.elem_count(),
                self.idx.elem_count()
            )));
        }
        let zeros = Tensor::zeros(self.n_bins, w.dtype(), w.device())?;
        Ok(zeros
            .index_add(&self.idx, &w, 0)?
            .affine(self.weight, 0.0)?)
    }

    /// [`Self::hist`] of the pass weights `p` and of `1 − p`: `(pass, fail)`.
    pub fn pass_fail(&self, p: &Tensor) -> Result<(Tensor, Tensor)> {
        let p = p.flatten_all()?;
        let fail = p.affine(-1.0, 1.0)?;
        Ok((self.hist(&p)?, self.hist(&fail)?))
    }
}

/// Histograms of one selection: QCD and signal in both regions.
#[derive(Debug, Clone)]
pub struct Hists {
    /// QCD in the pass region.
    pub qcd_pass: Tensor,
    /// QCD in the fail region.
    pub qcd_fail: Tensor,
    /// Signal (μ = 1) in the pass region.
    pub sig_pass: Tensor,
    /// Signal (μ = 1) in the fail region.
    pub sig_fail: Tensor,
}

impl Hists {
    /// The bins whose QCD fail-region yield is at least `min_fail_fraction`
    /// of their inclusive QCD yield (and positive): the rule by which an
    /// evaluation drops bins that a selection has (nearly) emptied of
    /// fail-region events, where the fail region no longer predicts the
    /// pass region.
    pub fn populated_bins(&self, min_fail_fraction: f64) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&min_fail_fraction) {
            return Err(Error::InvalidInput(format!(
                "populated bins: the fraction must be in [0, 1), got {min_fail_fraction}"
            )));
        }
        let v = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(DType::F64)?.to_vec1()?) };
        let (pass, fail) = (v(&self.qcd_pass)?, v(&self.qcd_fail)?);
        Ok(pass
            .iter()
            .zip(&fail)
            .enumerate()
            .filter(|(_, (&p, &f))| f > 0.0 && f >= min_fail_fraction * (p + f))
            .map(|(b, _)| b)
            .collect())
    }

    /// Histograms from per-event pass weights of the two samples.
    pub fn new(qcd: &Binned, p_qcd: &Tensor, sig: &Binned, p_sig: &Tensor) -> Result<Self> {
        let (qcd_pass, qcd_fail) = qcd.pass_fail(p_qcd)?;
        let (sig_pass, sig_fail) = sig.pass_fail(p_sig)?;
        Ok(Hists {
            qcd_pass,
            qcd_fail,
            sig_pass,
            sig_fail,
        })
    }
}

/// The pass/fail analysis: channel `fail` (QCD with free per-bin yields
/// `qcd_fail[b]`, signal × `mu`) and channel `pass` (QCD with the same
/// nominal and free yields × an exp-form Bernstein transfer factor `tf`,
/// signal × `mu`), and its discovery significance with the TF profiled.
#[derive(Debug, Clone)]
pub struct PassFail {
    grid: Grid,
    order: [usize; 2],
    /// The grid bins the analysis uses, increasing.
    bins: Vec<usize>,
    /// Their indices as a tensor, `None` when all bins are used.
    select: Option<Tensor>,
    q0: Loss,
    t0: Loss,
}

impl PassFail {
    /// The analysis on every bin of `grid` with a TF of `order = [o_x, o_y]`.
    pub fn new(grid: Grid, order: [usize; 2]) -> Result<Self> {
        let bins = (0..grid.n_bins()).collect();
        Self::with_bins(grid, order, bins)
    }

    /// The analysis on the bins `bins` of `grid` only (the others are
    /// dropped from both regions, e.g. by [`Hists::populated_bins`]).
    pub fn with_bins(grid: Grid, order: [usize; 2], mut bins: Vec<usize>) -> Result<Self> {
        bins.sort_unstable();
        bins.dedup();
        if bins.is_empty() || bins.iter().any(|&b| b >= grid.n_bins()) {
            return Err(Error::InvalidInput(format!(
                "pass/fail: bins must be a non-empty subset of 0..{}, got {bins:?}",
                grid.n_bins()
            )));
        }
        let select = if bins.len() == grid.n_bins() {
            None
        } else {
            let idx: Vec<u32> = bins.iter().map(|&b| b as u32).collect();
            Some(Tensor::new(idx, &Device::Cpu)?)
        };
        let ws = Self::workspace_bins(&grid, order, &bins)?;
        let template = Template::from_workspace(&ws, &ModelOptions::default())?
            .with_input(InputSel::nominal("fail", "qcd"))?
            .with_input(InputSel::nominal("pass", "qcd"))?
            .with_input(InputSel::nominal("fail", "signal"))?
            .with_input(InputSel::nominal("pass", "signal"))?
            .with_input(InputSel::observed("fail"))?
            .with_input(InputSel::observed("pass"))?;
        let q0 = Loss::new(
            template.clone(),
            LossKind::ObservedTestStat {
                stat: TestStat::Q0,
                test_mu: 0.0,
            },
        );
        let t0 = Loss::new(
            template,
            LossKind::ObservedTestStat {
                stat: TestStat::Tmu,
                test_mu: 0.0,
            },
        );
        Ok(PassFail {
            grid,
            order,
            bins,
            select,
            q0,
            t0,
        })
    }

    /// The workspace (placeholder yields; the template inputs replace them).
    /// `mu` may go down to −5, so that a deficit under the signal has a
    /// (negative) significance; the free fail yields go up to
    /// [`FAIL_YIELD_BOUND`].
    pub fn workspace(grid: &Grid, order: [usize; 2]) -> Result<Workspace> {
        let bins: Vec<usize> = (0..grid.n_bins()).collect();
        Self::workspace_bins(grid, order, &bins)
    }

    fn workspace_bins(grid: &Grid, order: [usize; 2], bins: &[usize]) -> Result<Workspace> {
        let nb = bins.len();
        let centres = grid.centres();
        let kept: Vec<[f64; 2]> = bins.iter().map(|&b| centres[b]).collect();
        let coords = json!({"axes": ["x", "y"], "bins": kept});
        let ones = vec![1.0; nb];
        let mu = json!({"name": "mu", "type": "normfactor", "data": null});
        let sf = json!({"name": "qcd_fail", "type": "shapefactor", "data": null});
        let tf = json!({"name": "tf", "type": "transferfactor",
            "data": {"basis": "bernstein", "order": order, "form": "exp"}});
        Workspace::from_value(&json!({
            "channels": [
                {"name": "fail", "coordinates": coords, "samples": [
                    {"name": "qcd", "data": ones, "modifiers": [sf]},
                    {"name": "signal", "data": ones, "modifiers": [mu]}]},
                {"name": "pass", "coordinates": coords, "samples": [
                    {"name": "qcd", "data": ones, "modifiers": [sf, tf]},
                    {"name": "signal", "data": ones, "modifiers": [mu]}]}
            ],
            "observations": [{"name": "fail", "data": vec![2.0; nb]},
                             {"name": "pass", "data": vec![2.0; nb]}],
            "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": [
                {"name": "mu", "bounds": [[-5.0, 10.0]]},
                {"name": "qcd_fail", "bounds": vec![[0.0, FAIL_YIELD_BOUND]; nb]}]}}],
            "version": "1.0.0"
        }))
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The grid bins the analysis uses.
    pub fn bins(&self) -> &[usize] {
        &self.bins
    }

    /// The TF order.
    pub fn order(&self) -> [usize; 2] {
        self.order
    }

    /// The q0 loss over the six template inputs `[qcd fail nominal, qcd pass
    /// nominal, signal fail, signal pass, observed fail, observed pass]`.
    pub fn q0_loss(&self) -> &Loss {
        &self.q0
    }

    /// The six template inputs for `h`. The QCD nominals only set the fits'
    /// starting point and the scale of the free per-bin yields (the
    /// likelihood depends on `γ_b · nominal_b` alone, so q0 and its gradient
    /// do not depend on them while no `γ_b` sits at its bound): the fail
    /// nominal is the QCD fail histogram plus `ε` ([`NOMINAL_FLOOR`]) times
    /// the bin's inclusive QCD (pass + fail) plus the mean inclusive yield
    /// per bin, and the pass nominal is the same times the overall pass/fail
    /// ratio `P / F` (a constant the exp-form Bernstein TF absorbs exactly,
    /// its basis summing to 1). So every fail bin keeps a positive nominal
    /// even where a selection passes all its QCD events (the fit then finds
    /// `γ_b ≤ 1/ε`, inside [`FAIL_YIELD_BOUND`]), and no fit starts at a
    /// zero pass prediction against observed events.
    /// The observed data are the Asimov data set of the truth, QCD plus
    /// `signal_in_data` × signal in each region.
    pub fn inputs(&self, h: &Hists, signal_in_data: f64) -> Result<[Tensor; 6]> {
        let selected;
        let h = match &self.select {
            None => h,
            Some(idx) => {
                let pick = |t: &Tensor| -> Result<Tensor> {
                    Ok(t.index_select(&idx.to_device(t.device())?, 0)?)
                };
                selected = Hists {
                    qcd_pass: pick(&h.qcd_pass)?,
                    qcd_fail: pick(&h.qcd_fail)?,
                    sig_pass: pick(&h.sig_pass)?,
                    sig_fail: pick(&h.sig_fail)?,
                };
                &selected
            }
        };
        let obs = |q: &Tensor, s: &Tensor| -> Result<Tensor> {
            Ok(if signal_in_data == 0.0 {
                q.clone()
            } else {
                q.add(&s.affine(signal_in_data, 0.0)?)?
            })
        };
        let total = |t: &Tensor| -> Result<f64> {
            Ok(t.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
        };
        let (pass, fail) = (total(&h.qcd_pass)?, total(&h.qcd_fail)?);
        if !(pass > 0.0 && fail > 0.0 && pass.is_finite() && fail.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "pass/fail: QCD yields must be > 0 in both regions, got pass {pass}, fail {fail}"
            )));
        }
        // fail + ε (inclusive + mean inclusive): ≥ ε × the bin's QCD, > 0 everywhere
        let mean = (pass + fail) / self.bins.len() as f64;
        let nominal = h
            .qcd_fail
            .add(&h.qcd_pass.add(&h.qcd_fail)?.affine(NOMINAL_FLOOR, 0.0)?)?
            .affine(1.0, NOMINAL_FLOOR * mean)?;
        Ok([
            nominal.clone(),
            nominal.affine(pass / fail, 0.0)?,
            h.sig_fail.clone(),
            h.sig_pass.clone(),
            obs(&h.qcd_fail, &h.sig_fail)?,
            obs(&h.qcd_pass, &h.sig_pass)?,
        ])
    }

    /// The signed significance of the full pass/fail analysis on the Asimov
    /// data set with signal strength `signal_in_data` (1: the expected
    /// significance `Z_A`; 0: the spurious significance of the background
    /// model alone), as a scalar on the tape of `h`: `√q0` where the fitted
    /// μ̂ > 0, else `−√t0` (two-sided `t0 = −2 ln λ(0)`), so it is continuous
    /// at μ̂ = 0 and its gradient does not vanish on the one-sided branch.
    pub fn significance(&self, h: &Hists, signal_in_data: f64) -> Result<Tensor> {
        let inputs = self.inputs(h, signal_in_data)?;
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let q0 = self.q0.forward(&refs)?;
        if q0.to_dtype(DType::F64)?.to_scalar::<f64>()? > 0.0 {
            return Ok(q0.sqrt()?);
        }
        let t0 = self.t0.forward(&refs)?;
        Ok(if t0.to_dtype(DType::F64)?.to_scalar::<f64>()? > 0.0 {
            t0.sqrt()?.neg()?
        } else {
            t0.affine(0.0, 0.0)?
        })
    }

    /// The training objective `Z_A − Z_spur − λ Z_spur²` on the tape of `h`
    /// ([`Self::significance`] with signal strength 1 and 0 in the Asimov
    /// data; `λ = penalty ≥ 0`). The difference removes, to first order, the
    /// significance that the background model's mis-modelling alone fakes;
    /// the quadratic term makes a selection pay for creating mis-modelling
    /// of either sign (a network can shape the QCD pass/fail ratio where the
    /// TF cannot follow). Returns `(objective, Z_A, Z_spur)`.
    pub fn objective(&self, h: &Hists, penalty: f64) -> Result<(Tensor, f64, f64)> {
        if !(penalty.is_finite() && penalty >= 0.0) {
            return Err(Error::InvalidInput(format!(
                "pass/fail objective: penalty must be finite and >= 0, got {penalty}"
            )));
        }
        let za = self.significance(h, 1.0)?;
        let spur = self.significance(h, 0.0)?;
        let (za_v, spur_v) = (
            za.to_dtype(DType::F64)?.to_scalar::<f64>()?,
            spur.to_dtype(DType::F64)?.to_scalar::<f64>()?,
        );
        let mut obj = za.sub(&spur)?;
        if penalty > 0.0 {
            obj = obj.sub(&spur.sqr()?.affine(penalty, 0.0)?)?;
        }
        Ok((obj, za_v, spur_v))
    }

    /// [`Self::significance`] as a number.
    pub fn significance_value(&self, h: &Hists, signal_in_data: f64) -> Result<f64> {
        Ok(self
            .significance(h, signal_in_data)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?)
    }
}
