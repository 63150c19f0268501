//! Upper limits on the POI at a CLs level (default 0.05), observed and the
//! five-point expected band, by bracketing root finding (Brent's method) or
//! by linear interpolation on a scan grid (pyhf's `upper_limit(scan=…)`).
//!
//! CLs(μ) is evaluated with an [`AsymptoticCalculator`], so the fits that do
//! not depend on μ are done once; each new μ costs two fixed-POI fits.

use serde::Serialize;

use super::asymptotics::{AsymptoticCalculator, HypotestResult};
use super::Likelihood;
use crate::{Error, Result};

/// Observed and expected upper limits.
#[derive(Debug, Clone, Serialize)]
pub struct UpperLimitResult {
    /// CLs level (e.g. 0.05 for 95% CL).
    pub level: f64,
    /// Observed upper limit.
    pub obs_limit: f64,
    /// Expected limits (n_sigma = 2, 1, 0, −1, −2, pyhf's order).
    pub exp_limits: [f64; 5],
    /// Every hypothesis test that was evaluated, in increasing POI order.
    pub tested: Vec<HypotestResult>,
}

/// Options for [`upper_limit`].
#[derive(Debug, Clone)]
pub struct LimitOptions {
    /// CLs level.
    pub level: f64,
    /// Relative tolerance on the limits.
    pub rtol: f64,
    /// Absolute tolerance on the limits.
    pub atol: f64,
    /// Initial bracket; `None` uses the POI's bounds (as pyhf does).
    pub bracket: Option<(f64, f64)>,
}

impl Default for LimitOptions {
    fn default() -> Self {
        LimitOptions {
            level: 0.05,
            rtol: 1e-10,
            atol: 1e-12,
            bracket: None,
        }
    }
}

/// Index 0: observed CLs, 1..=5: expected band.
fn curve(r: &HypotestResult, k: usize) -> f64 {
    let v = if k == 0 { r.cls_obs } else { r.cls_exp[k - 1] };
    // At μ where the Asimov statistic vanishes (μ = 0) CLs is 0/0; its limit
    // there is 1 (s+b and b distributions coincide).
    if v.is_nan() && r.qmu_asimov == 0.0 {
        1.0
    } else {
        v
    }
}

struct Evaluator<'c, 'a, L: Likelihood + ?Sized> {
    calc: &'c AsymptoticCalculator<'a, L>,
    cache: Vec<HypotestResult>,
}

impl<L: Likelihood + ?Sized> Evaluator<'_, '_, L> {
    fn eval(&mut self, mu: f64) -> Result<&HypotestResult> {
        if let Some(i) = self.cache.iter().position(|r| r.poi_test == mu) {
            return Ok(&self.cache[i]);
        }
        let r = self.calc.hypotest(mu)?;
        self.cache.push(r);
        Ok(self.cache.last().expect("just pushed"))
    }

    /// The tightest cached bracket for curve `k`: largest μ with CLs ≥ level
    /// below the smallest μ with CLs < level.
    fn best_bracket(&self, k: usize, level: f64) -> Option<((f64, f64), (f64, f64))> {
        let mut lo: Option<(f64, f64)> = None;
        let mut hi: Option<(f64, f64)> = None;
        for r in &self.cache {
            let v = curve(r, k) - level;
            if v.is_nan() {
                continue;
            }
            if v >= 0.0 {
                if lo.is_none_or(|(_, lv)| v < lv) {
                    lo = Some((r.poi_test, v));
                }
            } else if hi.is_none_or(|(_, hv)| v > hv) {
                hi = Some((r.poi_test, v));
            }
        }
        Some((lo?, hi?))
    }

    /// Brent's method for curve `k` on a sign-changing bracket.
    fn brent(&mut self, k: usize, level: f64, rtol: f64, atol: f64) -> Result<f64> {
        let ((mut a, mut fa), (mut b, mut fb)) = self.best_bracket(k, level).ok_or_else(|| {
            Error::InvalidInput("upper limit: no bracket of the CLs level found".into())
        })?;
        if fa == 0.0 {
            return Ok(a);
        }
        let mut c = a;
        let mut fc = fa;
        let mut d = b - a;
        let mut e = d;
        for _ in 0..200 {
            if (fb > 0.0) == (fc > 0.0) {
                c = a;
                fc = fa;
                d = b - a;
                e = d;
            }
            if fc.abs() < fb.abs() {
                a = b;
                b = c;
                c = a;
                fa = fb;
                fb = fc;
                fc = fa;
            }
            let tol = 0.5 * (atol + rtol * b.abs());
            let m = 0.5 * (c - b);
            if m.abs() <= tol || fb == 0.0 {
                return Ok(b);
            }
            if e.abs() >= tol && fa.abs() > fb.abs() {
                let s = fb / fa;
                let (mut p, mut q);
                if a == c {
                    p = 2.0 * m * s;
                    q = 1.0 - s;
                } else {
                    let qq = fa / fc;
                    let r = fb / fc;
                    p = s * (2.0 * m * qq * (qq - r) - (b - a) * (r - 1.0));
                    q = (qq - 1.0) * (r - 1.0) * (s - 1.0);
                }
                if p > 0.0 {
                    q = -q;
                } else {
                    p = -p;
                }
                if 2.0 * p < (3.0 * m * q - (tol * q).abs()).min((e * q).abs()) {
                    e = d;
                    d = p / q;
                } else {
                    d = m;
                    e = m;
                }
            } else {
                d = m;
                e = m;
            }
            a = b;
            fa = fb;
            b += if d.abs() > tol { d } else { tol.copysign(m) };
            fb = curve(self.eval(b)?, k) - level;
            if fb.is_nan() {
                return Err(Error::InvalidInput(format!(
                    "upper limit: CLs is undefined at POI value {b}"
                )));
            }
        }
        Err(Error::InvalidInput(
            "upper limit: root finding did not converge in 200 steps".into(),
        ))
    }

    fn into_tested(mut self) -> Vec<HypotestResult> {
        self.cache.sort_by(|x, y| x.poi_test.total_cmp(&y.poi_test));
        self.cache
    }
}

/// Upper limits by root finding: the bracket (default: the POI's bounds, the
/// lower one raised to 0 if negative) is
/// widened like pyhf's `toms748_scan` (lower end halved, upper end doubled)
/// until it brackets the level for all six curves, then each curve's root is
/// found with Brent's method to `atol + rtol·|μ|`. A default upper end where
/// a fit has no minimum ([`Error::NoMinimum`]) is moved halfway down instead.
pub fn upper_limit<L: Likelihood + ?Sized>(
    calc: &AsymptoticCalculator<'_, L>,
    opts: &LimitOptions,
) -> Result<UpperLimitResult> {
    let level = opts.level;
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::InvalidInput(format!(
            "CLs level {level} must lie in (0, 1)"
        )));
    }
    let (mut lo, mut hi) = opts.bracket.unwrap_or_else(|| {
        // an upper limit lies above μ = 0; a negative POI bound would start the
        // bracket where the expected rates can turn negative
        let (lo, hi) = calc.setup().bounds[calc.poi_index()];
        (lo.max(0.0), hi)
    });
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(Error::InvalidInput(format!(
            "upper limit: invalid POI bracket ({lo}, {hi})"
        )));
    }
    let mut ev = Evaluator {
        calc,
        cache: Vec::new(),
    };
    let mut tries = 0;
    loop {
        let r = ev.eval(lo)?;
        if !(0..6).any(|k| curve(r, k) < level) {
            break;
        }
        tries += 1;
        if tries > 60 || lo == 0.0 {
            return Err(Error::InvalidInput(format!(
                "upper limit: CLs is below {level} already at POI value {lo}"
            )));
        }
        lo /= 2.0;
    }
    tries = 0;
    let mut shrunk = 0;
    loop {
        // The default upper end (the POI's bound) can sit where a fit has no
        // minimum (pyhf's code-2 jump): any μ above the limits will do, so
        // move it towards the lower end.
        let r = match ev.eval(hi) {
            Err(Error::NoMinimum { .. }) if shrunk < 8 && opts.bracket.is_none() => {
                shrunk += 1;
                hi = lo + 0.5 * (hi - lo);
                continue;
            }
            r => r?,
        };
        if !(0..6).any(|k| curve(r, k) > level) {
            break;
        }
        tries += 1;
        if tries > 60 {
            return Err(Error::InvalidInput(format!(
                "upper limit: CLs stays above {level} up to POI value {hi}"
            )));
        }
        hi *= 2.0;
    }
    let obs = ev.brent(0, level, opts.rtol, opts.atol)?;
    let mut exp = [0.0; 5];
    for (k, e) in exp.iter_mut().enumerate() {
        *e = ev.brent(k + 1, level, opts.rtol, opts.atol)?;
    }
    Ok(UpperLimitResult {
        level,
        obs_limit: obs,
        exp_limits: exp,
        tested: ev.into_tested(),
    })
}

/// numpy's `interp(x, xp, fp)` for increasing `xp` (clamped at the ends).
pub(crate) fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    if x <= xp[0] {
        return fp[0];
    }
    if x >= xp[n - 1] {
        return fp[n - 1];
    }
    // first interval [xp[j], xp[j+1]) containing x
    let mut j = 0;
    while j + 1 < n && x >= xp[j + 1] {
        j += 1;
    }
    let (x0, x1) = (xp[j], xp[j + 1]);
    if x1 == x0 {
        return fp[j];
    }
    fp[j] + (x - x0) * (fp[j + 1] - fp[j]) / (x1 - x0)
}

/// Upper limits from a scan (pyhf's `upper_limit(data, model, scan)`): CLs at
/// every grid point, and the crossing of `level` by linear interpolation of
/// μ against CLs (numpy's `interp` on the reversed arrays).
pub fn upper_limit_scan<L: Likelihood + ?Sized>(
    calc: &AsymptoticCalculator<'_, L>,
    grid: &[f64],
    level: f64,
) -> Result<UpperLimitResult> {
    if grid.len() < 2 {
        return Err(Error::InvalidInput(
            "upper limit scan: the grid needs at least 2 points".into(),
        ));
    }
    let tested: Vec<HypotestResult> = grid
        .iter()
        .map(|&mu| calc.hypotest(mu))
        .collect::<Result<_>>()?;
    let mus_rev: Vec<f64> = grid.iter().rev().copied().collect();
    let lim = |k: usize| {
        let xp: Vec<f64> = tested.iter().rev().map(|r| curve(r, k)).collect();
        interp(level, &xp, &mus_rev)
    };
    Ok(UpperLimitResult {
        level,
        obs_limit: lim(0),
        exp_limits: [lim(1), lim(2), lim(3), lim(4), lim(5)],
        tested,
    })
}

/// A linear grid `start, …, stop` with `n` points (numpy's `linspace`).
pub fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => (0..n)
            .map(|i| {
                if i == n - 1 {
                    stop
                } else {
                    start + (stop - start) * i as f64 / (n - 1) as f64
                }
            })
            .collect(),
    }
}
