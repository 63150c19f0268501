//! The binned pass/fail toy analysis of the transfer-function workflow
//! (issue 11): a 2-D grid in `x` (like a jet mass, 40–200 GeV) and `y` (like
//! a jet pT, 450–1200 GeV), a smoothly falling QCD density, a resonant signal
//! (Gaussian in `x`, falling in `y`), a small resonant "other" background
//! (W/Z-like, with a normalisation uncertainty) and a tagger that splits
//! every process into a *pass* and a *fail* region.
//!
//! The densities are plain functions of `(x, y)` ([`PassFailToy::qcd_shape`],
//! …) so that event generators can reuse them; expected yields integrate them
//! over each bin with a 5×5-point Gauss–Legendre rule and normalise them to
//! the configured totals over the grid.
//!
//! The background tagger is described by its pass/fail *ratio*
//! `ρ(x, y)` ([`Tagger`]); its pass probability is `ρ / (1 + ρ)`. Binned
//! yields apply it at the bin centre (a "binned tagger"), so with
//! [`Tagger::Polynomial`] the pass/fail ratio of the expected QCD yields *is*
//! a Bernstein polynomial of the given order in the scaled bin-centre
//! coordinates and a transfer function of that order describes it exactly.
//! [`Tagger::NonPolynomial`] has a logistic step in `x` that no low-order
//! polynomial represents.

use rand::Rng;
use rand_distr::{Distribution, Poisson};

use crate::hf::modifiers::transfer::Basis;
use crate::{Error, Result};

/// Values per cell, `[ix][iy]`.
pub type Grid = Vec<Vec<f64>>;

/// A process's expected (or observed) yields in both regions.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionYields {
    /// Fail region, `[ix][iy]`.
    pub fail: Grid,
    /// Pass region, `[ix][iy]`.
    pub pass: Grid,
}

/// Expected yields of every process of the toy.
#[derive(Debug, Clone, PartialEq)]
pub struct ToyYields {
    /// QCD multijet (the background the transfer function estimates).
    pub qcd: RegionYields,
    /// The resonant signal at signal strength 1.
    pub signal: RegionYields,
    /// The W/Z-like background.
    pub other: RegionYields,
}

/// The background tagger: its pass/fail ratio over the plane.
#[derive(Debug, Clone, PartialEq)]
pub enum Tagger {
    /// `ρ(u, v) = Σ_k c_k B_k(u, v)`: a 2-D Bernstein polynomial of
    /// `order = [o_x, o_y]` in the coordinates scaled to `[0, 1]` by the
    /// grid's edges; `coefficients` in the transfer factor's order
    /// (`k = i_x·(o_y + 1) + i_y`), all > 0.
    Polynomial {
        /// Orders per axis.
        order: [usize; 2],
        /// Bernstein coefficients.
        coefficients: Vec<f64>,
    },
    /// `ρ = base · (1 + step · logistic((x − x0)/width)) · (1 + y_slope · v)`:
    /// a sharp rise at `x0` (GeV), linear in the scaled `v`.
    NonPolynomial {
        /// Ratio below the step.
        base: f64,
        /// Relative height of the step.
        step: f64,
        /// Position of the step in `x`.
        x0: f64,
        /// Width of the step in `x`.
        width: f64,
        /// Relative slope in the scaled `y`.
        y_slope: f64,
    },
}

impl Tagger {
    /// The default polynomial tagger: Bernstein order (2, 1), a ratio of
    /// 0.03–0.06 with a bump in `x` that rises with `y`.
    pub fn polynomial() -> Tagger {
        Tagger::Polynomial {
            order: [2, 1],
            coefficients: vec![0.030, 0.040, 0.070, 0.080, 0.040, 0.060],
        }
    }

    /// The default non-polynomial tagger: the ratio doubles across a step of
    /// width 4 GeV at x = 110 GeV.
    pub fn non_polynomial() -> Tagger {
        Tagger::NonPolynomial {
            base: 0.035,
            step: 1.0,
            x0: 110.0,
            width: 4.0,
            y_slope: 0.3,
        }
    }
}

/// The toy pass/fail analysis (see the module docs). All fields are public
/// so that studies can vary them; [`PassFailToy::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PassFailToy {
    /// Bin edges in `x` (GeV), increasing.
    pub x_edges: Vec<f64>,
    /// Bin edges in `y` (GeV), increasing.
    pub y_edges: Vec<f64>,
    /// Expected QCD events over the grid (pass + fail).
    pub n_qcd: f64,
    /// QCD falls as `exp(−x / x_scale)`.
    pub qcd_x_scale: f64,
    /// QCD falls as `y^(−y_power)`.
    pub qcd_y_power: f64,
    /// Expected signal events over the grid at signal strength 1 (pass + fail).
    pub n_signal: f64,
    /// Signal mass `m0` (GeV).
    pub signal_mass: f64,
    /// Signal width in `x` (GeV).
    pub signal_width: f64,
    /// Signal falls as `y^(−y_power)`.
    pub signal_y_power: f64,
    /// Signal pass efficiency of the tagger.
    pub signal_pass_eff: f64,
    /// Expected W/Z-like events over the grid (pass + fail).
    pub n_other: f64,
    /// Mass of the W/Z-like peak (GeV).
    pub other_mass: f64,
    /// Its width in `x` (GeV).
    pub other_width: f64,
    /// Its pass efficiency.
    pub other_pass_eff: f64,
    /// Relative normalisation uncertainty of the W/Z-like background (normsys).
    pub other_norm_unc: f64,
    /// The background tagger.
    pub tagger: Tagger,
}

/// Gauss–Legendre nodes and weights on [−1, 1] (5 points).
const GL_X: [f64; 5] = [
    -0.906_179_845_938_664,
    -0.538_469_310_105_683,
    0.0,
    0.538_469_310_105_683,
    0.906_179_845_938_664,
];
const GL_W: [f64; 5] = [
    0.236_926_885_056_189,
    0.478_628_670_499_366,
    0.568_888_888_888_889,
    0.478_628_670_499_366,
    0.236_926_885_056_189,
];

fn uniform_edges(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .collect()
}

impl PassFailToy {
    /// The default toy on a uniform `nx × ny` grid over 40–200 GeV × 450–1200 GeV.
    pub fn new(nx: usize, ny: usize, tagger: Tagger) -> PassFailToy {
        PassFailToy {
            x_edges: uniform_edges(40.0, 200.0, nx),
            y_edges: uniform_edges(450.0, 1200.0, ny),
            n_qcd: 200_000.0,
            qcd_x_scale: 60.0,
            qcd_y_power: 4.0,
            n_signal: 400.0,
            signal_mass: 125.0,
            signal_width: 8.0,
            signal_y_power: 3.0,
            signal_pass_eff: 0.6,
            n_other: 3000.0,
            other_mass: 90.0,
            other_width: 8.0,
            other_pass_eff: 0.15,
            other_norm_unc: 0.1,
            tagger,
        }
    }

    /// Checks edges, yields, efficiencies and the tagger.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, m: String| Error::Config {
            key: key.into(),
            message: m,
        };
        for (key, e) in [("x_edges", &self.x_edges), ("y_edges", &self.y_edges)] {
            if e.len() < 2 || e.windows(2).any(|w| w[1] <= w[0]) || e.iter().any(|v| !v.is_finite())
            {
                return Err(bad(
                    key,
                    "needs at least two finite, increasing edges".into(),
                ));
            }
        }
        for (key, v) in [
            ("n_qcd", self.n_qcd),
            ("n_signal", self.n_signal),
            ("n_other", self.n_other),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(key, format!("must be finite and ≥ 0, found {v}")));
            }
        }
        for (key, v) in [
            ("signal_pass_eff", self.signal_pass_eff),
            ("other_pass_eff", self.other_pass_eff),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(key, format!("must lie in [0, 1], found {v}")));
            }
        }
        match &self.tagger {
            Tagger::Polynomial {
                order,
                coefficients,
            } => {
                let k = (order[0] + 1) * (order[1] + 1);
                if coefficients.len() != k || coefficients.iter().any(|c| c.is_nan() || *c <= 0.0) {
                    return Err(bad(
                        "tagger.coefficients",
                        format!("order {order:?} needs {k} positive coefficients"),
                    ));
                }
            }
            Tagger::NonPolynomial { base, width, .. } => {
                if !(*base > 0.0 && *width > 0.0) {
                    return Err(bad("tagger", "base and width must be > 0".into()));
                }
            }
        }
        Ok(())
    }

    /// Number of bins in `x` and `y`.
    pub fn shape(&self) -> (usize, usize) {
        (self.x_edges.len() - 1, self.y_edges.len() - 1)
    }

    /// Bin centres in `x`.
    pub fn x_centres(&self) -> Vec<f64> {
        self.x_edges
            .windows(2)
            .map(|w| 0.5 * (w[0] + w[1]))
            .collect()
    }

    /// Bin centres in `y`.
    pub fn y_centres(&self) -> Vec<f64> {
        self.y_edges
            .windows(2)
            .map(|w| 0.5 * (w[0] + w[1]))
            .collect()
    }

    /// `(x, y)` scaled to `[0, 1]` by the outer edges.
    pub fn scaled(&self, x: f64, y: f64) -> (f64, f64) {
        let (x0, x1) = (self.x_edges[0], self.x_edges[self.x_edges.len() - 1]);
        let (y0, y1) = (self.y_edges[0], self.y_edges[self.y_edges.len() - 1]);
        ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0))
    }

    /// Unnormalised QCD density `exp(−x/x_scale) · (y/450)^(−power)`.
    pub fn qcd_shape(&self, x: f64, y: f64) -> f64 {
        (-x / self.qcd_x_scale).exp() * (y / 450.0).powf(-self.qcd_y_power)
    }

    /// Unnormalised signal density: Gaussian in `x`, power law in `y`.
    pub fn signal_shape(&self, x: f64, y: f64) -> f64 {
        let z = (x - self.signal_mass) / self.signal_width;
        (-0.5 * z * z).exp() * (y / 450.0).powf(-self.signal_y_power)
    }

    /// Unnormalised W/Z-like density: Gaussian in `x`, falling like QCD in `y`.
    pub fn other_shape(&self, x: f64, y: f64) -> f64 {
        let z = (x - self.other_mass) / self.other_width;
        (-0.5 * z * z).exp() * (y / 450.0).powf(-self.qcd_y_power)
    }

    /// The background tagger's pass/fail ratio `ρ(x, y)`.
    pub fn pass_ratio(&self, x: f64, y: f64) -> f64 {
        let (u, v) = self.scaled(x, y);
        match &self.tagger {
            Tagger::Polynomial {
                order,
                coefficients,
            } => {
                let bu = Basis::Bernstein.eval(order[0], u.clamp(0.0, 1.0));
                let bv = Basis::Bernstein.eval(order[1], v.clamp(0.0, 1.0));
                let mut r = 0.0;
                for (i, a) in bu.iter().enumerate() {
                    for (j, b) in bv.iter().enumerate() {
                        r += coefficients[i * (order[1] + 1) + j] * a * b;
                    }
                }
                r
            }
            Tagger::NonPolynomial {
                base,
                step,
                x0,
                width,
                y_slope,
            } => {
                let s = 1.0 / (1.0 + (-(x - x0) / width).exp());
                base * (1.0 + step * s) * (1.0 + y_slope * v)
            }
        }
    }

    /// The background tagger's pass probability `ρ / (1 + ρ)`.
    pub fn pass_probability(&self, x: f64, y: f64) -> f64 {
        let r = self.pass_ratio(x, y);
        r / (1.0 + r)
    }

    /// `∫ f` over every cell, `[ix][iy]`, normalised to `total` over the grid.
    fn integrate(&self, f: impl Fn(f64, f64) -> f64, total: f64) -> Grid {
        let mut g: Grid = self
            .x_edges
            .windows(2)
            .map(|wx| {
                self.y_edges
                    .windows(2)
                    .map(|wy| {
                        let (cx, hx) = (0.5 * (wx[0] + wx[1]), 0.5 * (wx[1] - wx[0]));
                        let (cy, hy) = (0.5 * (wy[0] + wy[1]), 0.5 * (wy[1] - wy[0]));
                        let mut s = 0.0;
                        for (a, wa) in GL_X.iter().zip(GL_W) {
                            for (b, wb) in GL_X.iter().zip(GL_W) {
                                s += wa * wb * f(cx + hx * a, cy + hy * b);
                            }
                        }
                        s * hx * hy
                    })
                    .collect()
            })
            .collect();
        let sum: f64 = g.iter().flatten().sum();
        let scale = if sum > 0.0 { total / sum } else { 0.0 };
        for v in g.iter_mut().flatten() {
            *v *= scale;
        }
        g
    }

    /// Splits per-cell totals with a per-cell pass probability.
    fn split(total: &Grid, p: impl Fn(usize, usize) -> f64) -> RegionYields {
        let pass: Grid = total
            .iter()
            .enumerate()
            .map(|(i, r)| r.iter().enumerate().map(|(j, &t)| t * p(i, j)).collect())
            .collect();
        let fail = total
            .iter()
            .zip(&pass)
            .map(|(r, pr)| r.iter().zip(pr).map(|(t, p)| t - p).collect())
            .collect();
        RegionYields { fail, pass }
    }

    /// Expected yields of every process per region and cell (signal at
    /// strength 1). The QCD split uses the tagger at the bin centre.
    pub fn expected(&self) -> Result<ToyYields> {
        self.validate()?;
        let (xc, yc) = (self.x_centres(), self.y_centres());
        let qcd = self.integrate(|x, y| self.qcd_shape(x, y), self.n_qcd);
        let sig = self.integrate(|x, y| self.signal_shape(x, y), self.n_signal);
        let oth = self.integrate(|x, y| self.other_shape(x, y), self.n_other);
        Ok(ToyYields {
            qcd: Self::split(&qcd, |i, j| self.pass_probability(xc[i], yc[j])),
            signal: Self::split(&sig, |_, _| self.signal_pass_eff),
            other: Self::split(&oth, |_, _| self.other_pass_eff),
        })
    }

    /// The true pass/fail ratio of the expected QCD yields at every cell.
    pub fn true_tf(&self) -> Grid {
        let yc = self.y_centres();
        self.x_centres()
            .iter()
            .map(|&x| yc.iter().map(|&y| self.pass_ratio(x, y)).collect())
            .collect()
    }

    /// Poisson pseudo-data of `qcd + mu · signal + other` in both regions.
    pub fn pseudo_data<R: Rng + ?Sized>(
        &self,
        expected: &ToyYields,
        mu: f64,
        rng: &mut R,
    ) -> Result<RegionYields> {
        let draw = |q: &Grid, s: &Grid, o: &Grid, rng: &mut R| -> Result<Grid> {
            q.iter()
                .zip(s)
                .zip(o)
                .map(|((qr, sr), or)| {
                    qr.iter()
                        .zip(sr)
                        .zip(or)
                        .map(|((q, s), o)| poisson(q + mu * s + o, rng))
                        .collect()
                })
                .collect()
        };
        let e = expected;
        Ok(RegionYields {
            fail: draw(&e.qcd.fail, &e.signal.fail, &e.other.fail, rng)?,
            pass: draw(&e.qcd.pass, &e.signal.pass, &e.other.pass, rng)?,
        })
    }

    /// Simulated QCD pass/fail templates with `stat_factor` times the data's
    /// statistics: Poisson counts of `stat_factor · expected`, divided by
    /// `stat_factor` (MC events of weight `1/stat_factor`). Inputs of the
    /// two-step TF_MC fit.
    pub fn mc_templates<R: Rng + ?Sized>(
        &self,
        expected: &ToyYields,
        stat_factor: f64,
        rng: &mut R,
    ) -> Result<RegionYields> {
        if !(stat_factor > 0.0 && stat_factor.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "stat_factor must be finite and > 0, found {stat_factor}"
            )));
        }
        let draw = |g: &Grid, rng: &mut R| -> Result<Grid> {
            g.iter()
                .map(|r| {
                    r.iter()
                        .map(|&v| Ok(poisson(v * stat_factor, rng)? / stat_factor))
                        .collect()
                })
                .collect()
        };
        Ok(RegionYields {
            fail: draw(&expected.qcd.fail, rng)?,
            pass: draw(&expected.qcd.pass, rng)?,
        })
    }
}

/// One Poisson draw (0 for a non-positive mean).
pub fn poisson<R: Rng + ?Sized>(lambda: f64, rng: &mut R) -> Result<f64> {
    if lambda.is_nan() || lambda <= 0.0 {
        return Ok(0.0);
    }
    let d = Poisson::new(lambda)
        .map_err(|e| Error::InvalidInput(format!("Poisson mean {lambda}: {e}")))?;
    Ok(d.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn polynomial_tagger_ratio_is_the_bernstein_polynomial() {
        let toy = PassFailToy::new(8, 4, Tagger::polynomial());
        let e = toy.expected().unwrap();
        let tf = toy.true_tf();
        for (i, row) in tf.iter().enumerate() {
            for (j, t) in row.iter().enumerate() {
                let r = e.qcd.pass[i][j] / e.qcd.fail[i][j];
                assert!((r - t).abs() < 1e-12 * r);
            }
        }
        let total: f64 = e.qcd.pass.iter().chain(&e.qcd.fail).flatten().sum();
        assert!((total - toy.n_qcd).abs() < 1e-6 * toy.n_qcd);
    }

    #[test]
    fn pseudo_data_is_reproducible() {
        let toy = PassFailToy::new(6, 3, Tagger::non_polynomial());
        let e = toy.expected().unwrap();
        let a = toy
            .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(7))
            .unwrap();
        let b = toy
            .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(7))
            .unwrap();
        assert_eq!(a, b);
        assert!(a.pass.iter().flatten().all(|v| v.fract() == 0.0));
    }
}
