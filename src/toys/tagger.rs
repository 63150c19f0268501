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
use crate::infer::teststat::TestStat;
use crate::{Error, Result};

/// Range of `x` (jet-mass-like).
pub const X_RANGE: (f64, f64) = (40.0, 200.0);
/// Range of `y` (jet-pT-like).
pub const Y_RANGE: (f64, f64) = (450.0, 1200.0);
/// Number of features per event.
pub const N_FEATURES: usize = 3;
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
    q0: Loss,
    t0: Loss,
}

impl PassFail {
    /// The analysis on `grid` with a TF of `order = [o_x, o_y]`.
    pub fn new(grid: Grid, order: [usize; 2]) -> Result<Self> {
        let ws = Self::workspace(&grid, order)?;
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
            q0,
            t0,
        })
    }

    /// The workspace (placeholder yields; the template inputs replace them).
    /// `mu` may go down to −5, so that a deficit under the signal has a
    /// (negative) significance.
    pub fn workspace(grid: &Grid, order: [usize; 2]) -> Result<Workspace> {
        let nb = grid.n_bins();
        let coords = json!({"axes": ["x", "y"], "bins": grid.centres()});
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
                {"name": "mu", "bounds": [[-5.0, 10.0]]}]}}],
            "version": "1.0.0"
        }))
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
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

    /// The six template inputs for `h`: the QCD nominal of the fail region
    /// is the fail histogram, that of the pass region the same histogram
    /// times the overall pass/fail ratio `r = Σ pass / Σ fail`, with `r`
    /// treated as a constant: a constant factor is absorbed exactly by the
    /// exp-form Bernstein TF (its basis sums to 1), so q0 does not depend
    /// on `r` and it only moves the fits' starting point to a TF of `r`;
    /// the free yields and the TF carry the rest. The observed data
    /// are the Asimov data set of the truth, QCD plus `signal_in_data` ×
    /// signal in each region.
    pub fn inputs(&self, h: &Hists, signal_in_data: f64) -> Result<[Tensor; 6]> {
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
        Ok([
            h.qcd_fail.clone(),
            h.qcd_fail.affine(pass / fail, 0.0)?,
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

    /// [`Self::significance`] as a number.
    pub fn significance_value(&self, h: &Hists, signal_in_data: f64) -> Result<f64> {
        Ok(self
            .significance(h, signal_in_data)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?)
    }
}
