//! The fiducial-cuts toy (issue 14; after Menary & Price, "Design by
//! intelligent committee", IML 2020): an EFT-like resonant signal whose
//! angular distribution is deformed in both signs, on a falling background.
//!
//! Three observables x = (m, φ, Δy):
//!
//! * background f_b = [ρ e^{−ρ (m − m_min)}, m ≥ m_min] · U(φ | −π, π) · Exp(Δy | mean 1),
//! * signal f_s = N(m | m0, σ_m) · (1 + κ sin 2φ)/(2π) · Gamma(Δy | 3, 1),
//!
//! with s = 60 and b = 2000 expected events. The interference-like term
//! κ sin 2φ is positive for φ ∈ (0, π/2) and φ ∈ (−π, −π/2) and negative
//! in the other two quadrants, so the likelihood-ratio-optimal selection
//! {f_s/f_b > k} consists of two *disjoint* regions (a mass window at high Δy
//! in each favoured φ quadrant; [`Fiducial::regions`]), which a single box
//! cannot cover without also taking a disfavoured quadrant. Both regions are
//! translates of each other by π in φ and have the same significance.
//!
//! The analysis is a counting experiment in the selected region: the signal
//! under a normfactor `mu`, the background with a ±10 % normsys
//! `bkg_norm` (so the expected significance needs the profile fits).
//! The densities are analytic ([`Fiducial::signal_density`],
//! [`Fiducial::background_density`]), which the reach estimate
//! (`fiducial::reach`) needs.

use std::f64::consts::PI;

use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal, StandardUniform};
use serde_json::json;

use super::{
    check_process, signal_background_workspace, Analysis, Events, Process, Role, ToyModel,
};
use crate::grad::InputSel;
use crate::{Error, Result};

/// Channel name of the counting analysis.
pub const CHANNEL: &str = "sr";
/// Name of the background normalisation normsys.
pub const BKG_NORM: &str = "bkg_norm";
/// Feature names, in column order.
pub const FEATURES: [&str; 3] = ["m", "phi", "dy"];

/// A favoured region of the toy's optimal selection: the φ quadrant where
/// the deformation is positive (m near m0, high Δy in both).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Short name.
    pub name: &'static str,
    /// φ interval (lo, hi) of the quadrant.
    pub phi: (f64, f64),
}

/// The fiducial-cuts toy; fields are its parameters (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Fiducial {
    /// Expected signal events.
    pub s: f64,
    /// Expected background events.
    pub b: f64,
    /// Signal mass peak.
    pub m0: f64,
    /// Signal mass resolution.
    pub sigma_m: f64,
    /// Lower end of the background mass spectrum.
    pub m_min: f64,
    /// Background mass slope ρ (1/units of m).
    pub rho: f64,
    /// Amplitude κ of the angular deformation, |κ| < 1.
    pub kappa: f64,
    /// Relative background normalisation uncertainty (the normsys).
    pub bkg_norm_unc: f64,
}

impl Default for Fiducial {
    fn default() -> Self {
        Self {
            s: 60.0,
            b: 2000.0,
            m0: 4.0,
            sigma_m: 0.4,
            m_min: 1.0,
            rho: 0.5,
            kappa: 0.9,
            bkg_norm_unc: 0.1,
        }
    }
}

fn uniform(rng: &mut dyn Rng) -> f64 {
    StandardUniform.sample(rng)
}

/// Signal Δy: Gamma(shape 3, scale 1) density.
fn gamma3(y: f64) -> f64 {
    if y < 0.0 {
        0.0
    } else {
        0.5 * y * y * (-y).exp()
    }
}

impl Fiducial {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidInput(format!("fiducial toy: {what}")));
        if !(self.s > 0.0 && self.s.is_finite() && self.b > 0.0 && self.b.is_finite()) {
            return bad("s and b must be positive and finite");
        }
        if !(self.sigma_m > 0.0 && self.rho > 0.0 && self.sigma_m.is_finite()) {
            return bad("sigma_m and rho must be positive");
        }
        if self.kappa.is_nan() || self.kappa.abs() >= 1.0 {
            return bad("|kappa| must be < 1 (the angular density must stay positive)");
        }
        if !(self.bkg_norm_unc > 0.0 && self.bkg_norm_unc < 1.0) {
            return bad("bkg_norm_unc must lie in (0, 1)");
        }
        if !(self.m0.is_finite() && self.m_min.is_finite()) {
            return bad("m0 and m_min must be finite");
        }
        Ok(())
    }

    /// Normalised signal density at x = (m, φ, Δy).
    pub fn signal_density(&self, x: &[f64; 3]) -> f64 {
        (0..3).map(|j| self.marginal(true, j, x[j])).product()
    }

    /// Normalised background density at x = (m, φ, Δy).
    pub fn background_density(&self, x: &[f64; 3]) -> f64 {
        (0..3).map(|j| self.marginal(false, j, x[j])).product()
    }

    /// One-dimensional marginal density of observable `j` (0 = m, 1 = φ,
    /// 2 = Δy) of the signal (`signal = true`) or the background; the
    /// densities factorise, so the product of the three marginals is the
    /// full density.
    pub fn marginal(&self, signal: bool, j: usize, v: f64) -> f64 {
        match (signal, j) {
            (true, 0) => {
                let z = (v - self.m0) / self.sigma_m;
                (-0.5 * z * z).exp() / (self.sigma_m * (2.0 * PI).sqrt())
            }
            (true, 1) if (-PI..PI).contains(&v) => {
                (1.0 + self.kappa * (2.0 * v).sin()) / (2.0 * PI)
            }
            (true, 2) => gamma3(v),
            (false, 0) if v >= self.m_min => self.rho * (-self.rho * (v - self.m_min)).exp(),
            (false, 1) if (-PI..PI).contains(&v) => 1.0 / (2.0 * PI),
            (false, 2) if v >= 0.0 => (-v).exp(),
            _ => 0.0,
        }
    }

    /// Cumulative distribution of [`Self::marginal`] at `v`.
    pub fn marginal_cdf(&self, signal: bool, j: usize, v: f64) -> f64 {
        if v == f64::INFINITY {
            return 1.0;
        }
        if v == f64::NEG_INFINITY {
            return 0.0;
        }
        match (signal, j) {
            (true, 0) => {
                let z = (v - self.m0) / (self.sigma_m * std::f64::consts::SQRT_2);
                0.5 * statrs::function::erf::erfc(-z)
            }
            (_, 1) => {
                let p = v.clamp(-PI, PI);
                let k = if signal { self.kappa } else { 0.0 };
                // ∫_{−π}^{p} (1 + κ sin 2φ) dφ / 2π, with cos(−2π) = 1
                (p + PI - 0.5 * k * ((2.0 * p).cos() - 1.0)) / (2.0 * PI)
            }
            (true, 2) if v > 0.0 => 1.0 - (-v).exp() * (1.0 + v + 0.5 * v * v),
            (false, 0) if v > self.m_min => -(-self.rho * (v - self.m_min)).exp_m1(),
            (false, 2) if v > 0.0 => -(-v).exp_m1(),
            _ => 0.0,
        }
    }

    /// Probability of the box lo ≤ x < hi (per observable; infinite bounds
    /// allowed) under the signal or the background density (exact: the
    /// densities factorise).
    pub fn box_probability(&self, signal: bool, lo: &[f64], hi: &[f64]) -> f64 {
        (0..3)
            .map(|j| {
                if hi[j] <= lo[j] {
                    0.0
                } else {
                    (self.marginal_cdf(signal, j, hi[j]) - self.marginal_cdf(signal, j, lo[j]))
                        .max(0.0)
                }
            })
            .product()
    }

    /// The two favoured regions (φ quadrants with κ sin 2φ > 0 for κ > 0).
    pub fn regions(&self) -> [Region; 2] {
        if self.kappa >= 0.0 {
            [
                Region {
                    name: "A (0 < phi < pi/2)",
                    phi: (0.0, PI / 2.0),
                },
                Region {
                    name: "B (-pi < phi < -pi/2)",
                    phi: (-PI, -PI / 2.0),
                },
            ]
        } else {
            [
                Region {
                    name: "A (pi/2 < phi < pi)",
                    phi: (PI / 2.0, PI),
                },
                Region {
                    name: "B (-pi/2 < phi < 0)",
                    phi: (-PI / 2.0, 0.0),
                },
            ]
        }
    }

    fn sample_signal(&self, rng: &mut dyn Rng) -> [f64; 3] {
        let z: f64 = StandardNormal.sample(rng);
        let m = self.m0 + self.sigma_m * z;
        // rejection from the uniform: accept with (1 + κ sin 2φ)/(1 + |κ|)
        let phi = loop {
            let phi = -PI + 2.0 * PI * uniform(rng);
            let u = uniform(rng);
            if u * (1.0 + self.kappa.abs()) < 1.0 + self.kappa * (2.0 * phi).sin() {
                break phi;
            }
        };
        let dy: f64 = (0..3).map(|_| -> f64 { Exp1.sample(rng) }).sum();
        [m, phi, dy]
    }

    fn sample_background(&self, rng: &mut dyn Rng) -> [f64; 3] {
        let e: f64 = Exp1.sample(rng);
        let m = self.m_min + e / self.rho;
        let phi = -PI + 2.0 * PI * uniform(rng);
        let dy: f64 = Exp1.sample(rng);
        [m, phi, dy]
    }
}

impl ToyModel for Fiducial {
    fn name(&self) -> &str {
        "fiducial"
    }

    fn n_features(&self) -> usize {
        3
    }

    fn processes(&self) -> Vec<Process> {
        vec![
            Process {
                name: "signal".into(),
                role: Role::Signal,
                yield_scale: self.s,
            },
            Process {
                name: "background".into(),
                role: Role::Background,
                yield_scale: self.b,
            },
        ]
    }

    fn sample(&self, process: usize, n: usize, rng: &mut dyn Rng) -> Result<Events> {
        check_process(self, process)?;
        self.validate()?;
        let mut features = Vec::with_capacity(3 * n);
        for _ in 0..n {
            let x = if process == 0 {
                self.sample_signal(rng)
            } else {
                self.sample_background(rng)
            };
            features.extend_from_slice(&x);
        }
        Ok(Events {
            n_features: 3,
            features,
            weights: None,
        })
    }

    fn analysis(&self, n_bins: usize) -> Result<Analysis> {
        self.validate()?;
        if n_bins == 0 {
            return Err(Error::InvalidInput(
                "fiducial: need at least one bin".into(),
            ));
        }
        let u = self.bkg_norm_unc;
        let bkg = json!([{"name": BKG_NORM, "type": "normsys",
                          "data": {"hi": 1.0 + u, "lo": 1.0 - u}}]);
        Ok(Analysis {
            workspace: signal_background_workspace(CHANNEL, n_bins, bkg, json!([]))?,
            inputs: vec![
                (0, InputSel::nominal(CHANNEL, "signal")),
                (1, InputSel::nominal(CHANNEL, "background")),
            ],
        })
    }

    fn feature_range(&self) -> Vec<(f64, f64)> {
        vec![
            (self.m_min, self.m0 + 10.0 * self.sigma_m),
            (-PI, PI),
            (0.0, 8.0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn densities_are_normalised() {
        let t = Fiducial::default();
        // midpoint rule on a box that holds all but ~1e-6 of each density
        let (nm, np, ny) = (400, 200, 400);
        let (m_lo, m_hi, y_hi) = (t.m_min, t.m_min + 40.0, 40.0);
        let (dm, dp, dy) = (
            (m_hi - m_lo) / nm as f64,
            2.0 * PI / np as f64,
            y_hi / ny as f64,
        );
        let (mut is, mut ib) = (0.0, 0.0);
        for i in 0..nm {
            for j in 0..np {
                for k in 0..ny {
                    let x = [
                        m_lo + (i as f64 + 0.5) * dm,
                        -PI + (j as f64 + 0.5) * dp,
                        (k as f64 + 0.5) * dy,
                    ];
                    is += t.signal_density(&x);
                    ib += t.background_density(&x);
                }
            }
        }
        let v = dm * dp * dy;
        assert!((is * v - 1.0).abs() < 2e-3, "signal integral {}", is * v);
        assert!(
            (ib * v - 1.0).abs() < 2e-3,
            "background integral {}",
            ib * v
        );
    }

    #[test]
    fn marginal_cdfs_integrate_the_marginals() {
        let t = Fiducial::default();
        for signal in [true, false] {
            for (j, (a, b)) in [(0, (1.2, 6.0)), (1, (-2.0, 2.5)), (2, (0.3, 5.0))] {
                let n = 20_000;
                let h = (b - a) / n as f64;
                let integral: f64 = (0..n)
                    .map(|i| t.marginal(signal, j, a + (i as f64 + 0.5) * h) * h)
                    .sum();
                let cdf = t.marginal_cdf(signal, j, b) - t.marginal_cdf(signal, j, a);
                assert!(
                    (integral - cdf).abs() < 1e-7,
                    "{signal} {j}: {integral} vs {cdf}"
                );
            }
            let all = [f64::NEG_INFINITY; 3];
            let p = t.box_probability(signal, &all, &[f64::INFINITY; 3]);
            assert!((p - 1.0).abs() < 1e-12, "{p}");
        }
    }

    #[test]
    fn sample_moments_match_the_analytic_ones() {
        let t = Fiducial::default();
        let k = t.kappa;
        // (mean, variance) of m, φ, Δy: E_s[φ] = −κ/2 and E_s[φ²] = π²/3
        // (∫φ sin 2φ dφ = −π, ∫φ² sin 2φ dφ = 0 over (−π, π))
        let expect = [
            [
                (4.0, 0.16),
                (-k / 2.0, PI * PI / 3.0 - k * k / 4.0),
                (3.0, 3.0),
            ],
            [(3.0, 4.0), (0.0, PI * PI / 3.0), (1.0, 1.0)],
        ];
        let mut rng = StdRng::seed_from_u64(11);
        let n = 100_000;
        for (p, exp) in expect.iter().enumerate() {
            let ev = t.sample(p, n, &mut rng).unwrap();
            for (j, &(mean, var)) in exp.iter().enumerate() {
                let c = ev.column(j);
                let m = c.iter().sum::<f64>() / n as f64;
                let v = c.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
                assert!(
                    (m - mean).abs() < 5.0 * (var / n as f64).sqrt(),
                    "p{p} x{j}: mean {m} vs {mean}"
                );
                // the variance's s.e. ≈ var·sqrt(2/n) (×~2 for the heavier tails)
                assert!(
                    (v - var).abs() < 10.0 * var * (2.0 / n as f64).sqrt(),
                    "p{p} x{j}: var {v} vs {var}"
                );
            }
        }
    }

    #[test]
    fn signal_prefers_the_two_regions() {
        let t = Fiducial::default();
        let mut rng = StdRng::seed_from_u64(3);
        let ev = t.sample(0, 40_000, &mut rng).unwrap();
        let phi = ev.column(1);
        let [a, b] = t.regions();
        let inside = |r: Region| {
            phi.iter().filter(|&&p| p > r.phi.0 && p < r.phi.1).count() as f64 / phi.len() as f64
        };
        // each favoured quadrant holds (1/4)(1 + 2κ/π) of the signal
        let expect = 0.25 * (1.0 + 2.0 * t.kappa / PI);
        let se = (expect * (1.0 - expect) / phi.len() as f64).sqrt();
        for r in [a, b] {
            assert!(
                (inside(r) - expect).abs() < 5.0 * se,
                "{}: {}",
                r.name,
                inside(r)
            );
        }
    }
}
