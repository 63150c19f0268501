//! Maximum-likelihood and fixed-parameter fits.
//!
//! A projected Newton method with exact Hessians (from
//! [`Likelihood::twice_nll_grad_hess`]), Levenberg–Marquardt damping for
//! indefinite Hessians and poor quadratic models, and an active set for
//! parameters held at a bound. Linear systems go through
//! [`super::linalg`], which exploits the block-arrowhead structure of
//! HistFactory Hessians.
//!
//! **Convergence criterion.** With `f = twice_nll`, `g = ∇f`, and the
//! projected gradient `pg_i = x_i − clamp(x_i − g_i, lo_i, hi_i)` over the
//! non-fixed parameters, a fit has converged when
//! `max_i |pg_i| ≤ gtol · max(1, |f|)` (default `gtol = 1e-10`). A fit that
//! does not reach this within the iteration budget returns
//! [`Error::FitFailed`]; an unconverged point is never returned.
//!
//! **Global minima.** HistFactory likelihoods are not always convex: a
//! histosys or normsys whose variations lie on the same side of the nominal
//! in some bin, the quadratic terms of the smooth interpolation codes, or a
//! modifier shared by samples pulled in opposite directions can give
//! `twice_nll` several local minima, and a local method converges to whichever
//! basin it starts in. [`minimize`] therefore asks the model which parameters
//! can do this ([`Likelihood::nonconvex_pars`]; for `hf::Model` the
//! parameters along which some bin's rate is non-monotonic or has a kink) and,
//! when there are any, also starts from each side of 0 for each of them (and
//! from all of them on one side together), then re-starts from the best point
//! with each such parameter moved to the other side until nothing lower is
//! found. The lowest converged minimum wins; [`FitResult::minima`] says how
//! many distinct minima were found and [`FitResult::runner_up`] how far the
//! next one lies, so callers whose result would jump between branches (the
//! gradients of `grad`) can refuse nearly degenerate minima. Models with no
//! such parameter (pyhf's benchmark models, shapesys/staterror/normfactor
//! only) keep a single start.
//!
//! At the floating-point floor (parameters whose curvature is so large that
//! roundoff in the rates alone leaves a gradient above the tolerance), a
//! point where no descent step exists is also accepted when the Newton
//! decrement `gᵀH⁻¹g` is below the squared tolerance (the same criterion in
//! the Hessian's metric; see `at_noise_floor`).
//!
//! **Domain walls.** `-2 ln L` is `+∞` where a main bin with no observed
//! events gets a negative expected rate (pyhf's `−λ` would go on), and a
//! minimum can lie on such a wall (`rate = 0`, e.g. a negative signal strength
//! against a small background) with a gradient that does not vanish there.
//! Walls that trial steps cross are kept as linearised constraints
//! `rate_b ≥ 0` (Newton steps projected onto them), and a point on them is a
//! minimum when `g − Σ ν_b ∇rate_b` (least-squares multipliers `ν_b ≥ 0`)
//! meets the gradient criterion above; [`FitResult::walls`] lists them. Fits
//! that never cross a wall are unchanged.
//!
//! **Kinks.** pyhf's interpolation codes 0 (histosys) and 1 (normsys) are not
//! differentiable at α = 0, and minima can sit exactly there. When Newton
//! steps stall next to 0, such parameters are pinned at 0, the rest is
//! re-fitted to the criterion above, and the point is accepted only if the
//! one-sided derivatives of every pinned parameter bracket zero (within the
//! same tolerance); they are listed in [`FitResult::kinks`].

use std::cell::RefCell;

use super::linalg::{Factor, Pattern};
use super::Likelihood;
use crate::{Error, Result};

thread_local! {
    /// Recycled `n × n` Hessian buffers: fits run back to back (a hypothesis
    /// test makes five) would otherwise page-fault and zero megabytes each.
    static HESS_POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` f64 with arbitrary contents (the model overwrites it).
fn take_buffer(len: usize) -> Vec<f64> {
    HESS_POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            p.iter()
                .position(|b| b.len() == len)
                .map(|k| p.swap_remove(k))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0.0; len])
}

fn give_buffer(b: Vec<f64>) {
    if b.len() < 4096 {
        return;
    }
    let _ = HESS_POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 4 {
            p.push(b);
        }
    });
}

/// Starting values, bounds and fixed flags of a fit (pyhf's `init_pars`,
/// `par_bounds`, `fixed_params`).
#[derive(Debug, Clone, PartialEq)]
pub struct FitSetup {
    /// Initial values; fixed parameters stay at these values.
    pub init: Vec<f64>,
    /// Bounds `(lo, hi)` of each parameter (ignored for fixed parameters).
    pub bounds: Vec<(f64, f64)>,
    /// Parameters held constant.
    pub fixed: Vec<bool>,
}

impl FitSetup {
    /// The model's suggested inits, bounds and fixed flags.
    pub fn from_model<L: Likelihood + ?Sized>(model: &L) -> Self {
        FitSetup {
            init: model.init(),
            bounds: model.bounds(),
            fixed: model.fixed(),
        }
    }

    /// A copy with parameter `index` fixed at `value` (like pyhf's
    /// `fixed_poi_fit`: the value may lie outside the parameter's bounds).
    pub fn with_fixed(&self, index: usize, value: f64) -> Self {
        let mut s = self.clone();
        if index < s.init.len() {
            s.init[index] = value;
            s.fixed[index] = true;
        }
        s
    }

    fn validate(&self, n: usize) -> Result<()> {
        if self.init.len() != n || self.bounds.len() != n || self.fixed.len() != n {
            return Err(Error::InvalidInput(format!(
                "fit setup has {} inits, {} bounds, {} fixed flags; the model has {n} parameters",
                self.init.len(),
                self.bounds.len(),
                self.fixed.len()
            )));
        }
        for (i, (&(lo, hi), &x)) in self.bounds.iter().zip(&self.init).enumerate() {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(Error::InvalidInput(format!(
                    "parameter {i}: invalid bounds ({lo}, {hi})"
                )));
            }
            if !x.is_finite() {
                return Err(Error::InvalidInput(format!(
                    "parameter {i}: initial value {x} is not finite"
                )));
            }
        }
        Ok(())
    }
}

/// Iteration budget and tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Maximum number of Newton iterations (Hessian evaluations after the first).
    pub max_iter: usize,
    /// Relative projected-gradient tolerance (see the module docs).
    pub gtol: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_iter: 200,
            gtol: 1e-10,
        }
    }
}

/// A converged fit.
#[derive(Debug, Clone)]
pub struct FitResult {
    /// Best-fit parameters (fixed ones at their fixed values).
    pub pars: Vec<f64>,
    /// `-2 ln L` at `pars`.
    pub twice_nll: f64,
    /// `max |pg_i|` at `pars` (see the module docs).
    pub grad_norm: f64,
    /// Newton iterations used.
    pub iterations: usize,
    /// Which parameters were held fixed.
    pub fixed: Vec<bool>,
    /// Non-fixed parameters that sit exactly at a non-differentiable point
    /// (0, for pyhf's piecewise interpolation codes 0 and 1) where the
    /// one-sided derivatives bracket zero; `grad_norm` excludes them.
    pub kinks: Vec<usize>,
    /// Exact Hessian of `twice_nll` at `pars` (`n × n`, row-major); empty
    /// after [`FitResult::release_hessian`].
    pub hessian: Vec<f64>,
    /// Number of starting points the fit was run from (1 for models without
    /// non-convex parameters; see the module docs).
    pub starts: usize,
    /// Number of distinct converged local minima found from those starts
    /// (this one included).
    pub minima: usize,
    /// `twice_nll` of the lowest *other* distinct minimum found, if any.
    pub runner_up: Option<f64>,
    /// Main bins with no observed events whose expected rate is 0 at `pars`
    /// and where `twice_nll` is undefined (+∞) for a negative rate: the
    /// minimum lies on that boundary of the likelihood's domain, a
    /// Karush–Kuhn–Tucker point of the constraints `rate_b ≥ 0` (see the
    /// module docs, "Domain walls"). Empty for interior minima. The
    /// minimiser then moves along the wall when the inputs change, so
    /// envelope-theorem derivatives of `twice_nll` are not those of the
    /// minimum.
    pub walls: Vec<usize>,
}

impl Drop for FitResult {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.hessian));
    }
}

impl FitResult {
    /// Whether another distinct minimum lies within `tol` of this one in
    /// `twice_nll`: then an infinitesimal change of the inputs can move the
    /// global minimum to another branch, and quantities at the minimum (and
    /// their gradients) are discontinuous there.
    pub fn is_ambiguous(&self, tol: f64) -> bool {
        self.runner_up
            .is_some_and(|r| r - self.twice_nll <= tol * self.twice_nll.abs().max(1.0))
    }

    /// Drop the stored Hessian (recycling its memory for later fits); the
    /// covariance is then no longer available.
    pub fn release_hessian(&mut self) {
        give_buffer(std::mem::take(&mut self.hessian));
    }

    /// Covariance `2 H⁻¹` over the non-fixed parameters (`n × n`, row-major;
    /// rows and columns of fixed parameters are zero).
    pub fn covariance(&self) -> Result<Vec<f64>> {
        let n = self.pars.len();
        if self.hessian.len() != n * n {
            return Err(Error::InvalidInput(
                "this fit result does not keep its Hessian (released)".into(),
            ));
        }
        let free: Vec<usize> = (0..n).filter(|&i| !self.fixed[i]).collect();
        let m = free.len();
        let pattern = Pattern::analyse(&self.hessian, n, &free);
        let factor =
            Factor::new(&pattern, &self.hessian, n, &free, &vec![0.0; m]).ok_or_else(|| {
                Error::FitFailed {
                    context: "uncertainties".into(),
                    message: "the Hessian at the minimum is not positive definite".into(),
                }
            })?;
        let mut cov = vec![0.0; n * n];
        let mut e = vec![0.0; m];
        for (k, &i) in free.iter().enumerate() {
            e[k] = 1.0;
            let col = factor.solve(&e);
            e[k] = 0.0;
            for (l, &j) in free.iter().enumerate() {
                cov[j * n + i] = 2.0 * col[l];
            }
        }
        Ok(cov)
    }

    /// `sqrt(diag(2 H⁻¹))` over the non-fixed parameters, 0 for fixed ones.
    pub fn uncertainties(&self) -> Result<Vec<f64>> {
        let n = self.pars.len();
        let cov = self.covariance()?;
        Ok((0..n).map(|i| cov[i * n + i].max(0.0).sqrt()).collect())
    }

    /// Correlation matrix (`n × n`, row-major) from [`FitResult::covariance`];
    /// rows and columns of fixed parameters are zero.
    pub fn correlation(&self) -> Result<Vec<f64>> {
        let n = self.pars.len();
        let cov = self.covariance()?;
        let sd: Vec<f64> = (0..n).map(|i| cov[i * n + i].max(0.0).sqrt()).collect();
        let mut corr = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                if sd[i] > 0.0 && sd[j] > 0.0 {
                    corr[i * n + j] = cov[i * n + j] / (sd[i] * sd[j]);
                }
            }
        }
        Ok(corr)
    }
}

/// Projected gradient (inf-norm) and the active set at `x`.
fn projected(x: &[f64], g: &[f64], setup: &FitSetup, free: &[usize], active: &mut [bool]) -> f64 {
    let mut norm: f64 = 0.0;
    for &i in free {
        let (lo, hi) = setup.bounds[i];
        let pg = x[i] - (x[i] - g[i]).clamp(lo, hi);
        norm = norm.max(pg.abs());
        active[i] = (x[i] <= lo && g[i] > 0.0) || (x[i] >= hi && g[i] < 0.0);
    }
    if norm.is_nan() {
        f64::INFINITY
    } else {
        norm
    }
}

fn failed(context: &str, message: String) -> Error {
    Error::FitFailed {
        context: context.to_string(),
        message,
    }
}

/// How a Newton run ended without converging.
struct Stall {
    x: Vec<f64>,
    iterations: usize,
    message: String,
}

enum Outcome {
    Converged(FitResult),
    Stalled(Stall),
}

/// Projected Newton with LM damping from `x` (already feasible), for at most
/// `budget` iterations. With `detect_stall`, returns early (as a stall) when
/// the damping stays heavy after many iterations — the signature of a
/// non-differentiable point (see [`minimize`]).
#[allow(clippy::too_many_arguments)]
fn newton<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    mut x: Vec<f64>,
    budget: usize,
    gtol: f64,
    detect_stall: bool,
    context: &str,
) -> Result<Outcome> {
    let n = model.n_pars();
    let free: Vec<usize> = (0..n).filter(|&i| !setup.fixed[i]).collect();
    let mut g = vec![0.0; n];
    let mut h = take_buffer(n * n);
    let mut f = model.twice_nll_grad_hess(&x, data, &mut g, &mut h)?;
    if !f.is_finite() {
        return Err(failed(
            context,
            format!("-2 ln L is {f} at the starting point"),
        ));
    }
    let mut xt = x.clone();
    let mut active = vec![false; n];
    let mut lambda: f64 = 0.0;
    let mut gn;
    let mut iter = 0;
    let mut stuck = false;
    // domain walls met by rejected steps (see `Walls`)
    let mut walls = Walls::default();
    loop {
        gn = projected(&x, &g, setup, &free, &mut active);
        let tol = gtol * f.abs().max(1.0);
        let mut on_walls = Vec::new();
        if gn > tol && !walls.bins.is_empty() {
            if let Some((r, at)) = walls.kkt(model, setup, &free, &x, &g)? {
                if r <= tol {
                    on_walls = at;
                    gn = r;
                }
            }
        }
        let stalling = stuck || iter >= budget || (detect_stall && iter >= 12 && lambda >= 1e-2);
        if gn <= tol || (stalling && at_noise_floor(&h, &g, n, &free, &active, tol)) {
            return Ok(Outcome::Converged(FitResult {
                pars: x,
                twice_nll: f,
                grad_norm: gn,
                iterations: iter,
                fixed: setup.fixed.clone(),
                kinks: Vec::new(),
                hessian: h,
                starts: 1,
                minima: 1,
                runner_up: None,
                walls: on_walls,
            }));
        }
        if stuck {
            give_buffer(h);
            return Ok(Outcome::Stalled(Stall {
                x,
                iterations: iter,
                message: format!(
                    "no descent step found at iteration {iter} (projected gradient {gn:.3e}, -2 ln L {f})"
                ),
            }));
        }
        if iter >= budget {
            give_buffer(h);
            return Ok(Outcome::Stalled(Stall {
                x,
                iterations: iter,
                message: format!(
                    "projected gradient {gn:.3e} above tolerance {tol:.3e} after {iter} iterations"
                ),
            }));
        }
        if detect_stall && iter >= 12 && lambda >= 1e-2 {
            give_buffer(h);
            return Ok(Outcome::Stalled(Stall {
                x,
                iterations: iter,
                message: format!(
                    "heavily damped steps (projected gradient {gn:.3e}) after {iter} iterations"
                ),
            }));
        }
        let inact: Vec<usize> = free.iter().copied().filter(|&i| !active[i]).collect();
        let m = inact.len();
        let pattern = Pattern::analyse(&h, n, &inact);
        // Marquardt scaling keeps the damping invariant to parameter units.
        let diag_mean = inact.iter().map(|&i| h[i * n + i].abs()).sum::<f64>() / m.max(1) as f64;
        let floor = (1e-6 * diag_mean).max(1e-12);
        let scale: Vec<f64> = inact
            .iter()
            .map(|&i| h[i * n + i].abs().max(floor))
            .collect();
        let rhs: Vec<f64> = inact.iter().map(|&i| -g[i]).collect();
        // roundoff of a sum of many O(|f|) terms: differences below this are noise
        let noise = 1e-10 * f.abs().max(1.0);
        let mut accepted = false;
        // linearised walls at x over the inactive parameters, and the
        // second-order corrections of their targets
        let mut lin: Option<WallRows> = None;
        let mut lifts: Vec<f64> = Vec::new();
        let mut soc = 0;
        for _attempt in 0..80 {
            if lambda > 1e14 {
                break;
            }
            let shift: Vec<f64> = scale.iter().map(|s| lambda * s).collect();
            let Some(factor) = Factor::new(&pattern, &h, n, &inact, &shift) else {
                lambda = bump(lambda);
                continue;
            };
            let mut d = factor.solve(&rhs);
            if !walls.bins.is_empty() {
                if lin.as_ref().is_none_or(|l| l.bins != walls.bins) {
                    let rows = walls.rows(model, &x, &inact)?;
                    lifts = vec![0.0; rows.bins.len()];
                    lin = Some(rows);
                }
                if let Some(l) = &lin {
                    d = l.constrain(&factor, d, &lifts);
                }
            }
            xt.copy_from_slice(&x);
            let mut s = vec![0.0; m];
            let mut moved = false;
            for (k, &i) in inact.iter().enumerate() {
                let (lo, hi) = setup.bounds[i];
                let v = (x[i] + d[k]).clamp(lo, hi);
                xt[i] = v;
                s[k] = v - x[i];
                moved |= s[k] != 0.0;
            }
            if !moved {
                lambda = bump(lambda);
                continue;
            }
            let lin: f64 = inact.iter().zip(&s).map(|(&i, sk)| g[i] * sk).sum();
            let pred = -(lin + 0.5 * pattern.quad_form(&h, n, &inact, &s));
            // value only at the trial point: one dense Hessian buffer per fit
            let ft = match model.twice_nll(&xt, data) {
                Ok(v) if v.is_finite() => v,
                // a trial point where the model is undefined (e.g. a negative
                // rate) is a rejected step, not a failure; a negative rate in
                // a bin without events is a wall: the next steps keep to its
                // side (linearised), or lift their target where its
                // curvature took the step across
                _ => {
                    match walls.crossed(model, data, &xt)? {
                        Crossed::New => {}
                        Crossed::Known(v) if soc < 8 && lifts.len() == v.len() => {
                            soc += 1;
                            for (l, r) in lifts.iter_mut().zip(v) {
                                if r < 0.0 {
                                    *l = (2.0 * *l).max(-2.0 * r);
                                }
                            }
                        }
                        _ => lambda = bump(lambda),
                    }
                    continue;
                }
            };
            let actual = f - ft;
            let ok = if pred.abs() <= noise {
                actual >= -noise
            } else {
                pred > 0.0 && actual >= 1e-4 * pred
            };
            if !ok {
                lambda = bump(lambda);
                continue;
            }
            let rho = if pred.abs() > noise {
                actual / pred
            } else {
                1.0
            };
            if rho > 0.5 {
                lambda = if lambda < 1e-9 { 0.0 } else { lambda * 0.1 };
            } else if rho < 0.25 {
                lambda = bump(lambda);
            }
            std::mem::swap(&mut x, &mut xt);
            f = model.twice_nll_grad_hess(&x, data, &mut g, &mut h)?;
            if !f.is_finite() {
                return Err(failed(
                    context,
                    format!("-2 ln L is {f} at an accepted step"),
                ));
            }
            accepted = true;
            break;
        }
        iter += 1;
        // without a step, x is unchanged: the top of the loop decides
        // between the noise floor and a stall
        stuck = !accepted;
    }
}

/// Domain walls: main bins with no observed events, where `twice_nll` is
/// `+∞` for a negative expected rate (see `hf::Model`; pyhf's continuous
/// Poisson term `−λ` goes on below 0 there). A minimum can lie on such a wall,
/// `rate_b = 0`, with a gradient that does not vanish (the empty bin asks for
/// a lower rate, the other bins for a higher one); every step along `−g` then
/// leaves the domain. Walls met by rejected trial steps are kept as
/// constraints `rate_b ≥ 0`, linearised at each point (rate gradients by
/// central differences of `expected_data`, exact for the linear dependence on
/// normfactors and per-bin factors), and a point is accepted as a minimum when
/// the Karush–Kuhn–Tucker conditions hold: `g − Σ ν_b ∇rate_b` meets the
/// gradient criterion with all `ν_b ≥ 0`.
#[derive(Default)]
struct Walls {
    bins: Vec<usize>,
}

/// What a rejected trial point says about the walls.
enum Crossed {
    /// It crossed a wall not yet known (now added).
    New,
    /// It crossed only known walls: their rates there, per known wall.
    Known(Vec<f64>),
    /// It is undefined for another reason.
    Other,
}

/// The walls linearised at a point, over the inactive parameters.
struct WallRows {
    bins: Vec<usize>,
    /// rate of each wall at the point
    rates: Vec<f64>,
    /// `∂rate/∂x` over the inactive parameters, one row per wall
    rows: Vec<Vec<f64>>,
}

/// Rates at or below this (times the largest rate) are on a wall.
const WALL_NEAR: f64 = 1e-9;

impl Walls {
    fn crossed<L: Likelihood + ?Sized>(
        &mut self,
        model: &L,
        data: &[f64],
        xt: &[f64],
    ) -> Result<Crossed> {
        let Ok(rates) = model.expected_data(xt) else {
            return Ok(Crossed::Other);
        };
        let nm = model.n_main().min(rates.len()).min(data.len());
        let mut new = false;
        let mut other = false;
        for b in 0..nm {
            if rates[b].is_nan() || rates[b] < 0.0 {
                if data[b] == 0.0 && rates[b].is_finite() {
                    if !self.bins.contains(&b) {
                        self.bins.push(b);
                        new = true;
                    }
                } else {
                    other = true;
                }
            }
        }
        self.bins.sort_unstable();
        Ok(if new {
            Crossed::New
        } else if other {
            Crossed::Other
        } else if self.bins.iter().any(|&b| rates[b] < 0.0) {
            Crossed::Known(self.bins.iter().map(|&b| rates[b]).collect())
        } else {
            Crossed::Other
        })
    }

    /// Rates and rate gradients of the walls at `x` over `idx`.
    fn rows<L: Likelihood + ?Sized>(
        &self,
        model: &L,
        x: &[f64],
        idx: &[usize],
    ) -> Result<WallRows> {
        let r0 = model.expected_data(x)?;
        let mut rows = vec![vec![0.0; idx.len()]; self.bins.len()];
        let mut xp = x.to_vec();
        for (k, &i) in idx.iter().enumerate() {
            let step = 1e-5 * x[i].abs().max(1.0);
            xp[i] = x[i] + step;
            let up = model.expected_data(&xp)?;
            xp[i] = x[i] - step;
            let dn = model.expected_data(&xp)?;
            xp[i] = x[i];
            for (w, &b) in self.bins.iter().enumerate() {
                rows[w][k] = (up[b] - dn[b]) / (2.0 * step);
            }
        }
        Ok(WallRows {
            bins: self.bins.clone(),
            rates: self.bins.iter().map(|&b| r0[b]).collect(),
            rows,
        })
    }

    /// The KKT residual at `x`: the projected gradient of `g − Σ ν_b ∇rate_b`
    /// with least-squares multipliers over the walls at `x` (rate ≤
    /// [`WALL_NEAR`] × the largest rate). Walls with a negative multiplier
    /// are not binding: they are dropped and the rest re-solved. Returns the
    /// residual and the binding walls, `None` when no wall is at `x`.
    fn kkt<L: Likelihood + ?Sized>(
        &self,
        model: &L,
        setup: &FitSetup,
        free: &[usize],
        x: &[f64],
        g: &[f64],
    ) -> Result<Option<(f64, Vec<usize>)>> {
        let rates = model.expected_data(x)?;
        let nm = model.n_main().min(rates.len());
        let top = rates[..nm].iter().fold(0.0f64, |m, r| m.max(r.abs()));
        let mut at: Vec<usize> = self
            .bins
            .iter()
            .copied()
            .filter(|&b| rates[b] <= WALL_NEAR * top)
            .collect();
        // parameters that the gradient (or the reduced one) keeps at a bound
        // do not take part in the multipliers
        let inside: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&i| {
                let (lo, hi) = setup.bounds[i];
                x[i] > lo && x[i] < hi
            })
            .collect();
        while !at.is_empty() {
            let sub = Walls { bins: at.clone() };
            let wr = sub.rows(model, x, free)?;
            // least squares over the parameters off their bounds
            let pos: Vec<usize> = inside
                .iter()
                .map(|i| free.iter().position(|j| j == i).unwrap_or(0))
                .collect();
            let k = at.len();
            let mut a = vec![0.0; k * k];
            let mut rhs = vec![0.0; k];
            for p in 0..k {
                for q in 0..k {
                    a[p * k + q] = pos.iter().map(|&c| wr.rows[p][c] * wr.rows[q][c]).sum();
                }
                rhs[p] = pos
                    .iter()
                    .zip(&inside)
                    .map(|(&c, &i)| wr.rows[p][c] * g[i])
                    .sum();
            }
            let Some(nu) = solve_small(&mut a, &mut rhs, k) else {
                return Ok(None);
            };
            if let Some(worst) = most_negative(&nu) {
                at.remove(worst);
                continue;
            }
            let mut gr = g.to_vec();
            for (c, &i) in free.iter().enumerate() {
                for (v, row) in nu.iter().zip(&wr.rows) {
                    gr[i] -= v * row[c];
                }
            }
            let mut act = vec![false; g.len()];
            let r = projected(x, &gr, setup, free, &mut act);
            // the walls' own rates cost ν·rate of -2 ln L
            let slack: f64 = nu.iter().zip(&wr.rates).map(|(v, r)| v * r.abs()).sum();
            return Ok(Some((r.max(slack), at)));
        }
        Ok(None)
    }
}

/// Index of the most negative multiplier, if any is negative: the wall an
/// active-set iteration releases next.
fn most_negative(nu: &[f64]) -> Option<usize> {
    nu.iter()
        .enumerate()
        .filter(|(_, v)| **v < 0.0)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

impl WallRows {
    /// The step `d` of `M d = −g` (from `factor`) corrected to
    /// `d + M⁻¹ Aᵀ ν` so that `rate_b + a_b·d = lift_b` on every wall whose
    /// multiplier `ν_b` is ≥ 0 (the others are left free, one at a time,
    /// most negative first).
    fn constrain(&self, factor: &Factor, d0: Vec<f64>, lifts: &[f64]) -> Vec<f64> {
        let y: Vec<Vec<f64>> = self.rows.iter().map(|a| factor.solve(a)).collect();
        let mut on: Vec<usize> = (0..self.bins.len()).collect();
        while !on.is_empty() {
            let k = on.len();
            let mut s = vec![0.0; k * k];
            let mut r = vec![0.0; k];
            for (p, &wp) in on.iter().enumerate() {
                for (q, &wq) in on.iter().enumerate() {
                    s[p * k + q] = dot(&self.rows[wp], &y[wq]);
                }
                r[p] = lifts[wp] - self.rates[wp] - dot(&self.rows[wp], &d0);
            }
            let Some(nu) = solve_small(&mut s, &mut r, k) else {
                return d0;
            };
            if let Some(worst) = most_negative(&nu) {
                on.remove(worst);
                continue;
            }
            let mut d = d0;
            for (p, &w) in on.iter().enumerate() {
                for (dk, yk) in d.iter_mut().zip(&y[w]) {
                    *dk += nu[p] * yk;
                }
            }
            return d;
        }
        d0
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves the small dense system `a x = b` (`k × k`, row-major) by Gaussian
/// elimination with partial pivoting; `None` when it is singular.
fn solve_small(a: &mut [f64], b: &mut [f64], k: usize) -> Option<Vec<f64>> {
    let big = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for c in 0..k {
        let p = (c..k).max_by(|&i, &j| a[i * k + c].abs().total_cmp(&a[j * k + c].abs()))?;
        let piv = a[p * k + c].abs();
        if piv.is_nan() || piv <= 1e-14 * big {
            return None;
        }
        if p != c {
            for j in 0..k {
                a.swap(p * k + j, c * k + j);
            }
            b.swap(p, c);
        }
        for i in c + 1..k {
            let m = a[i * k + c] / a[c * k + c];
            for j in c..k {
                a[i * k + j] -= m * a[c * k + j];
            }
            b[i] -= m * b[c];
        }
    }
    let mut x = vec![0.0; k];
    for c in (0..k).rev() {
        let s: f64 = (c + 1..k).map(|j| a[c * k + j] * x[j]).sum();
        x[c] = (b[c] - s) / a[c * k + c];
    }
    Some(x)
}

/// Whether a point where Newton steps make no more progress is a minimum to
/// the precision of `-2 ln L`: the Hessian over the free parameters off
/// their bounds is positive definite and the Newton decrement `gᵀH⁻¹g`
/// (what a full step would gain) is below `tol²` — the gradient criterion
/// measured in the Hessian's metric. Parameters with enormous curvature
/// (shapesys τ of 10¹¹ in some published likelihoods) keep a gradient of
/// 10⁻⁵ from roundoff in λ alone, while their step is 10⁻¹⁶ of their value.
fn at_noise_floor(
    h: &[f64],
    g: &[f64],
    n: usize,
    free: &[usize],
    active: &[bool],
    tol: f64,
) -> bool {
    let inact: Vec<usize> = free.iter().copied().filter(|&i| !active[i]).collect();
    if inact.is_empty() {
        return false;
    }
    let pattern = Pattern::analyse(h, n, &inact);
    let Some(factor) = Factor::new(&pattern, h, n, &inact, &vec![0.0; inact.len()]) else {
        return false;
    };
    let rhs: Vec<f64> = inact.iter().map(|&i| g[i]).collect();
    let d = factor.solve(&rhs);
    let dec: f64 = rhs.iter().zip(&d).map(|(a, b)| a * b).sum();
    dec.is_finite() && dec >= 0.0 && dec <= tol * tol
}

/// Parameters within this distance of 0 are kink candidates.
const KINK_NEAR: f64 = 1e-3;
/// Offset at which one-sided derivatives at a kink are evaluated.
const KINK_EPS: f64 = 1e-12;

/// Try to certify a nonsmooth minimum with some parameters exactly at 0.
///
/// pyhf's piecewise interpolations (codes 0 and 1) make `twice_nll`
/// non-differentiable at α = 0, and a minimum can sit exactly there (the
/// gradient jumps from negative to positive): no point satisfies the
/// gradient criterion and Newton steps stall. Parameters of the stalled point
/// that lie within [`KINK_NEAR`] of 0 (with 0 inside their bounds) are pinned
/// at 0, the others re-fitted, and each pinned parameter is accepted when its
/// one-sided derivatives (gradients at ±[`KINK_EPS`]) bracket zero within
/// the gradient tolerance — the first-order optimality condition of a kink.
/// Pins that fail the test are released and the procedure repeats.
fn kink_fit<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    stall: &Stall,
    budget: usize,
    gtol: f64,
    context: &str,
) -> Result<Option<FitResult>> {
    let n = model.n_pars();
    let mut pins: Vec<usize> = (0..n)
        .filter(|&i| {
            let (lo, hi) = setup.bounds[i];
            !setup.fixed[i] && stall.x[i].abs() < KINK_NEAR && lo < 0.0 && hi > 0.0
        })
        .collect();
    let mut x = stall.x.clone();
    let mut used = stall.iterations;
    let mut g = vec![0.0; n];
    let mut h = take_buffer(n * n);
    for _round in 0..4 {
        if pins.is_empty() {
            return Ok(None);
        }
        let mut pinned = setup.clone();
        for &i in &pins {
            pinned.fixed[i] = true;
            pinned.init[i] = 0.0;
            x[i] = 0.0;
        }
        let r = match newton(
            model,
            data,
            &pinned,
            x.clone(),
            budget.saturating_sub(used),
            gtol,
            false,
            context,
        )? {
            Outcome::Converged(r) => r,
            Outcome::Stalled(_) => return Ok(None),
        };
        used += r.iterations;
        let tol = gtol * r.twice_nll.abs().max(1.0);
        let mut side = r.pars.clone();
        for &i in &pins {
            side[i] = KINK_EPS;
        }
        model.twice_nll_grad_hess(&side, data, &mut g, &mut h)?;
        let right: Vec<f64> = pins.iter().map(|&i| g[i]).collect();
        let curv_r: Vec<f64> = pins.iter().map(|&i| h[i * n + i]).collect();
        for &i in &pins {
            side[i] = -KINK_EPS;
        }
        model.twice_nll_grad_hess(&side, data, &mut g, &mut h)?;
        let left: Vec<f64> = pins.iter().map(|&i| g[i]).collect();
        let curv_l: Vec<f64> = pins.iter().map(|&i| h[i * n + i]).collect();
        // First order: the one-sided derivatives bracket zero. Where they
        // are both ~0 there is no real kink, and a point with negative
        // curvature along the pin is a maximum or saddle (a start on a
        // symmetry axis stalls there too), not a minimum.
        let ok: Vec<bool> = (0..pins.len())
            .map(|k| {
                let (r, l) = (right[k], left[k]);
                r >= -tol && l <= tol && (r - l > tol || (curv_r[k] >= 0.0 && curv_l[k] >= 0.0))
            })
            .collect();
        if ok.iter().all(|&b| b) {
            let mut res = r;
            res.iterations = used;
            res.fixed = setup.fixed.clone();
            res.kinks = pins;
            return Ok(Some(res));
        }
        x = r.pars.clone();
        pins = pins
            .iter()
            .zip(&ok)
            .filter(|(_, &b)| b)
            .map(|(&i, _)| i)
            .collect();
    }
    Ok(None)
}

/// Minimise `twice_nll(·, data)` from the one start `start` (or
/// `setup.init`) with the local projected Newton method; free starting values
/// are clamped into their bounds. Use it only where the minimum is known to
/// be global (e.g. the free fit to an Asimov data set, whose every term is
/// minimal at the generating parameters); otherwise call [`minimize`].
///
/// If the Newton iteration stalls near parameters at 0 (pyhf interpolation
/// codes 0 and 1 are not differentiable there), the point is certified as a
/// nonsmooth minimum by one-sided derivatives instead (see
/// [`FitResult::kinks`]); otherwise the fit fails with [`Error::FitFailed`].
pub fn minimize_local<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    start: Option<&[f64]>,
    opts: &FitOptions,
    context: &str,
) -> Result<FitResult> {
    local_fit(model, data, setup, start, opts, context).0
}

/// [`minimize_local`], also returning, when the fit failed by stalling,
/// the stalled end point and its `-2 ln L` (the global search compares it
/// with the converged minima).
fn local_fit<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    start: Option<&[f64]>,
    opts: &FitOptions,
    context: &str,
) -> (Result<FitResult>, Option<(f64, Vec<f64>)>) {
    match local_fit_impl(model, data, setup, start, opts, context) {
        Ok(Ok(r)) => (Ok(r), None),
        Ok(Err(stall)) => {
            let f = model
                .twice_nll(&stall.x, data)
                .ok()
                .filter(|f| f.is_finite());
            (Err(failed(context, stall.message)), f.map(|f| (f, stall.x)))
        }
        Err(e) => (Err(e), None),
    }
}

fn local_fit_impl<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    start: Option<&[f64]>,
    opts: &FitOptions,
    context: &str,
) -> Result<std::result::Result<FitResult, Stall>> {
    let n = model.n_pars();
    setup.validate(n)?;
    if data.len() != model.n_data() {
        return Err(Error::InvalidInput(format!(
            "data has {} entries, the model expects {} (main bins + auxdata)",
            data.len(),
            model.n_data()
        )));
    }
    if let Some(s) = start {
        if s.len() != n {
            return Err(Error::InvalidInput(format!(
                "start point has {} parameters, the model has {n}",
                s.len()
            )));
        }
    }
    let x: Vec<f64> = (0..n)
        .map(|i| {
            if setup.fixed[i] {
                setup.init[i]
            } else {
                let v = start.map_or(setup.init[i], |s| s[i]);
                let v = if v.is_finite() { v } else { setup.init[i] };
                v.clamp(setup.bounds[i].0, setup.bounds[i].1)
            }
        })
        .collect();
    let mut x = x;
    let mut used = 0;
    loop {
        let stall = match newton(
            model,
            data,
            setup,
            x,
            opts.max_iter - used,
            opts.gtol,
            true,
            context,
        )? {
            Outcome::Converged(mut r) => {
                r.iterations += used;
                return Ok(Ok(r));
            }
            Outcome::Stalled(s) => s,
        };
        let stall = Stall {
            iterations: stall.iterations + used,
            ..stall
        };
        if let Some(r) = kink_fit(
            model,
            data,
            setup,
            &stall,
            opts.max_iter,
            opts.gtol,
            context,
        )? {
            return Ok(Ok(r));
        }
        used = stall.iterations;
        if used >= opts.max_iter {
            return Ok(Err(stall));
        }
        x = stall.x;
    }
}

/// Two minima closer than this (relative `twice_nll`, and max-norm of the
/// parameters) are the same minimum.
const SAME_F: f64 = 1e-9;
const SAME_X: f64 = 1e-4;

/// The global minimum of `twice_nll(·, data)` subject to the setup's bounds
/// and fixed parameters: the local fit from `start` (or `setup.init`), and,
/// if the model has non-convex parameters that are free here, the fits from
/// the starts described in the module docs; the lowest converged minimum is
/// returned with [`FitResult::starts`], [`FitResult::minima`] and
/// [`FitResult::runner_up`] filled in. Fails only if no start converges.
/// `context` names the fit in error messages.
pub fn minimize<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    start: Option<&[f64]>,
    opts: &FitOptions,
    context: &str,
) -> Result<FitResult> {
    let cands: Vec<(usize, Vec<f64>)> = model
        .nonconvex_pars()
        .into_iter()
        .filter(|(i, _)| *i < setup.fixed.len() && !setup.fixed[*i])
        .filter(|(i, _)| setup.bounds[*i].0 < 0.0 && setup.bounds[*i].1 > 0.0)
        .collect();
    let (mut first, mut first_stall) = local_fit(model, data, setup, start, opts, context);
    // A warm start can be a bad one (e.g. the free fit's parameters with the
    // POI overwritten, where some rate is not positive): the suggested inits
    // are the fallback.
    if start.is_some() && matches!(first, Err(Error::FitFailed { .. })) {
        let (r, st) = local_fit(model, data, setup, None, opts, context);
        if r.is_ok() {
            (first, first_stall) = (r, st);
        }
    }
    if cands.is_empty() {
        return first;
    }
    // argument errors are not a matter of starting points
    if let Err(e @ Error::InvalidInput(_)) = first {
        return Err(e);
    }
    let base: Vec<f64> = match start {
        Some(s) => s.to_vec(),
        None => setup.init.clone(),
    };
    let side = |x: &mut Vec<f64>, i: usize, v: f64| {
        let (lo, hi) = setup.bounds[i];
        x[i] = v.clamp(lo, hi);
    };
    // Starts that do not depend on the first minimum: the suggested inits
    // (when warm-started elsewhere) and all candidates on one side together.
    let mut batch: Vec<Vec<f64>> = Vec::new();
    if start.is_some() {
        batch.push(setup.init.clone());
    }
    if cands.len() > 1 {
        for sign in [1.0, -1.0] {
            let mut x = base.clone();
            for (i, _) in &cands {
                side(&mut x, *i, sign);
            }
            batch.push(x);
        }
    }
    // Each candidate at each of its start values (±1; also ±2 beyond a
    // jump), the others at the start: one start in each side's basin.
    // (Minima can also lie on the same side at different distances — a
    // same-side variation's dip — hence fixed values, not a mirror image.)
    for (i, values) in &cands {
        for &v in values {
            let mut x = base.clone();
            side(&mut x, *i, v);
            batch.push(x);
        }
    }
    let mut search = Search {
        minima: Vec::new(),
        best: None,
        tried: vec![base],
        failure: None,
        lowest_stall: first_stall,
    };
    let mut last = first.as_ref().map_or(f64::INFINITY, |r| r.twice_nll);
    search.add(first, setup);
    // When a start found a lower minimum, the same from there: its other
    // coordinates can open basins that the first ones did not (these fits
    // are short, starting next to a minimum). Until nothing lower is found.
    for _round in 0..4 {
        search.run_batch(
            model,
            data,
            setup,
            std::mem::take(&mut batch),
            opts,
            context,
        );
        let Some(best) = search.best.as_ref() else {
            break;
        };
        if best.twice_nll >= last - SAME_F * last.abs().max(1.0) {
            break;
        }
        last = best.twice_nll;
        let x0 = best.pars.clone();
        for (i, values) in &cands {
            for &v in values {
                if (x0[*i] - v).abs() > 0.5 {
                    let mut x = x0.clone();
                    side(&mut x, *i, v);
                    batch.push(x);
                }
            }
        }
    }
    let n_starts = search.tried.len();
    let Search {
        minima,
        best,
        failure,
        lowest_stall,
        ..
    } = search;
    let Some(mut best) = best else {
        return Err(failure.unwrap_or_else(|| failed(context, "no start converged".into())));
    };
    // An unconverged end point below every minimum: the infimum is not
    // attained (or lies in a basin no start converged in); either way the
    // best converged minimum is not the global one.
    if let Some((fs, xs)) = lowest_stall {
        if fs < best.twice_nll - 1e-7 * best.twice_nll.abs().max(1.0) {
            let near_jump: Vec<String> = cands
                .iter()
                .filter(|(i, _)| (xs[*i].abs() - 1.0).abs() < 1e-3)
                .map(|(i, _)| format!("{} = {:.6}", par_label(model, *i), xs[*i]))
                .collect();
            let hint = if near_jump.is_empty() {
                String::new()
            } else {
                format!(
                    "; at that point {} (pyhf's histosys code 2 jumps at |alpha| = 1: \
                     use code 4p, or code 0)",
                    near_jump.join(", ")
                )
            };
            return Err(Error::NoMinimum {
                context: context.to_string(),
                message: format!(
                    "a start ends, unconverged, at -2 ln L = {fs}, below the lowest converged \
                     minimum {} ({} starts, {} minima): the infimum is not attained{hint}",
                    best.twice_nll,
                    n_starts,
                    minima.len()
                ),
            });
        }
    }
    best.starts = n_starts;
    best.minima = minima.len().max(1);
    best.runner_up = minima
        .iter()
        .filter(|(f, x)| !same_minimum(best.twice_nll, &best.pars, *f, x))
        .map(|(f, _)| *f)
        .fold(None, |m: Option<f64>, f| Some(m.map_or(f, |m| m.min(f))));
    Ok(best)
}

/// The pyhf name of parameter `i` (`name` or `name[k]`).
fn par_label<L: Likelihood + ?Sized>(model: &L, i: usize) -> String {
    model
        .par_sets()
        .into_iter()
        .find(|(_, off, len)| (*off..off + len).contains(&i))
        .map(|(name, off, len)| {
            if len == 1 {
                name
            } else {
                format!("{name}[{}]", i - off)
            }
        })
        .unwrap_or_else(|| format!("parameter {i}"))
}

/// Whether the Hessian of a converged fit is not positive semi-definite
/// (to roundoff) over the parameters that are free, inside their bounds and
/// not at a kink: then the point is a saddle, not a minimum.
fn is_saddle(r: &FitResult, setup: &FitSetup) -> bool {
    let n = r.pars.len();
    if r.hessian.len() != n * n {
        return false;
    }
    let inner: Vec<usize> = (0..n)
        .filter(|&i| !r.fixed[i] && !r.kinks.contains(&i))
        .filter(|&i| r.pars[i] > setup.bounds[i].0 && r.pars[i] < setup.bounds[i].1)
        .collect();
    let m = inner.len();
    if m == 0 {
        return false;
    }
    let diag = inner
        .iter()
        .map(|&i| r.hessian[i * n + i].abs())
        .sum::<f64>()
        / m as f64;
    let pattern = Pattern::analyse(&r.hessian, n, &inner);
    Factor::new(
        &pattern,
        &r.hessian,
        n,
        &inner,
        &vec![1e-9 * diag.max(1e-300); m],
    )
    .is_none()
}

fn same_minimum(f1: f64, x1: &[f64], f2: f64, x2: &[f64]) -> bool {
    let df = (f1 - f2).abs() <= SAME_F * f1.abs().max(1.0);
    let dx = x1
        .iter()
        .zip(x2)
        .all(|(a, b)| (a - b).abs() <= SAME_X * a.abs().max(1.0));
    df && dx
}

/// The state of a multi-start search.
struct Search {
    /// `(twice_nll, pars)` of each distinct minimum found.
    minima: Vec<(f64, Vec<f64>)>,
    best: Option<FitResult>,
    /// Starting points already used (a repeated start is skipped).
    tried: Vec<Vec<f64>>,
    /// The first failure, reported if no start converges.
    failure: Option<Error>,
    /// The lowest `-2 ln L` (and point) where a start stalled unconverged.
    lowest_stall: Option<(f64, Vec<f64>)>,
}

impl Search {
    /// Local fits from the new starts of `xs` (in parallel), added in order
    /// so that the outcome does not depend on the number of threads.
    fn run_batch<L: Likelihood + ?Sized>(
        &mut self,
        model: &L,
        data: &[f64],
        setup: &FitSetup,
        xs: Vec<Vec<f64>>,
        opts: &FitOptions,
        context: &str,
    ) {
        use rayon::prelude::*;
        let mut fresh: Vec<Vec<f64>> = Vec::new();
        for x in xs {
            if !self.tried.contains(&x) && !fresh.contains(&x) {
                fresh.push(x);
            }
        }
        // in chunks, so that at most a few n × n Hessians are alive at once
        let chunk = 2 * rayon::current_num_threads().max(1);
        for xs in fresh.chunks(chunk) {
            let results: Vec<_> = xs
                .par_iter()
                .map(|x| local_fit(model, data, setup, Some(x), opts, context))
                .collect();
            for (x, (r, stall)) in xs.iter().zip(results) {
                self.tried.push(x.clone());
                if let Some((f, p)) = stall {
                    if self.lowest_stall.as_ref().is_none_or(|(g, _)| f < *g) {
                        self.lowest_stall = Some((f, p));
                    }
                }
                self.add(r, setup);
            }
        }
    }

    fn add(&mut self, r: Result<FitResult>, setup: &FitSetup) {
        let mut r = match r {
            Ok(r) => r,
            Err(e) => {
                self.failure.get_or_insert(e);
                return;
            }
        };
        // A start on a symmetry axis (e.g. α = 0 of a variation symmetric in
        // α) has zero gradient: "converged" there is a saddle, not a minimum.
        if is_saddle(&r, setup) {
            if self.best.is_none() && self.failure.is_none() {
                self.failure = Some(failed(
                    "global fit",
                    format!("stopped at a saddle point (-2 ln L = {})", r.twice_nll),
                ));
            }
            return;
        }
        if !self
            .minima
            .iter()
            .any(|(f, x)| same_minimum(r.twice_nll, &r.pars, *f, x))
        {
            self.minima.push((r.twice_nll, r.pars.clone()));
        }
        match &self.best {
            Some(b) if b.twice_nll <= r.twice_nll => r.release_hessian(),
            _ => self.best = Some(r),
        }
    }
}

fn bump(lambda: f64) -> f64 {
    if lambda < 1e-7 {
        1e-6
    } else {
        lambda * 10.0
    }
}

/// Unconstrained (all non-fixed parameters free) maximum-likelihood fit.
pub fn fit<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    setup: &FitSetup,
    opts: &FitOptions,
) -> Result<FitResult> {
    minimize(model, data, setup, None, opts, "maximum-likelihood fit")
}

/// Fit with the parameter of interest fixed at `poi_value` (pyhf's
/// `fixed_poi_fit`); `start` warm-starts the other parameters.
pub fn fixed_poi_fit<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    poi_value: f64,
    setup: &FitSetup,
    start: Option<&[f64]>,
    opts: &FitOptions,
) -> Result<FitResult> {
    let poi = model
        .poi_index()
        .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))?;
    let s = setup.with_fixed(poi, poi_value);
    minimize(
        model,
        data,
        &s,
        start,
        opts,
        &format!("fit with the POI fixed at {poi_value}"),
    )
}
