//! The asymptotic calculator (Cowan, Cranmer, Gross, Vitells 2011) with the
//! conventions of pyhf 0.7.6's `AsymptoticCalculator` (base distribution
//! "normal").
//!
//! * Asimov data: the expected data (main bins and auxiliary data) at the fit
//!   to the *observed* data with the POI fixed at 0 (at 1 for `q0`).
//! * Test statistic in `−μ̂/σ` space: `√qμ − √qμ,A` for `q`/`q0`; for `q̃μ`,
//!   `(qμ − qμ,A)/(2√qμ,A)` when `√qμ ≥ √qμ,A`.
//! * Distributions: normal with unit width, shifted by `−√qμ,A` (s+b) and 0
//!   (b only); `CLs+b`, `CLb` are right-tail p-values, `CLs = CLs+b/CLb`.
//! * Expected band: the b-only distribution's quantiles at
//!   `n_sigma = 2, 1, 0, −1, −2` (pyhf's order).
//!
//! The fits that do not depend on the tested POI value (free fit to the
//! data, Asimov generation, free fit to the Asimov data) are done once per
//! [`AsymptoticCalculator`] and reused for every tested value.

use serde::Serialize;

use super::fit::{fit, fixed_poi_fit, minimize_local, FitOptions, FitResult, FitSetup};
use super::teststat::{statistic, statistic_from_fits, TestStat};
use super::Likelihood;
use crate::{Error, Result};

/// `n_sigma` of the expected band, in pyhf's order.
pub const N_SIGMA: [f64; 5] = [2.0, 1.0, 0.0, -1.0, -2.0];

/// Standard normal CDF `Φ(x) = erfc(−x/√2)/2`, to a few ulp·x² relative
/// accuracy in both tails (statrs' erfc is only good to ~1e-10 relative).
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x / std::f64::consts::SQRT_2;
    if y <= 0.0 {
        0.5 * erfc_pos(-y)
    } else {
        1.0 - 0.5 * erfc_pos(y)
    }
}

/// `erfc(y)` for `y ≥ 0`: `1 − erf` by the all-positive series
/// `erf(y) = 2/√π e^{−y²} Σ 2ⁿ y^{2n+1}/(2n+1)!!` below 2 (erfc ≥ 4.7e-3 there,
/// so the subtraction loses < 3 digits), the continued fraction
/// `erfc(y) = e^{−y²}/√π · 1/(y + ½/(y + 1/(y + 3/2/(y + …))))` above.
fn erfc_pos(y: f64) -> f64 {
    const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
    if y > 27.0 {
        return 0.0;
    }
    if y < 2.0 {
        let y2 = 2.0 * y * y;
        let mut term = y;
        let mut sum = y;
        let mut k = 0.0;
        while term > 1e-17 * sum {
            k += 1.0;
            term *= y2 / (2.0 * k + 1.0);
            sum += term;
        }
        1.0 - 2.0 * FRAC_1_SQRT_PI * (-y * y).exp() * sum
    } else {
        // modified Lentz evaluation of y + a1/(y + a2/(y + …)), a_k = k/2
        let tiny = 1e-300;
        let mut f = y;
        let mut c = y;
        let mut d = 0.0;
        for k in 1..5000 {
            let a = 0.5 * k as f64;
            d = y + a * d;
            if d.abs() < tiny {
                d = tiny;
            }
            d = 1.0 / d;
            c = y + a / c;
            if c.abs() < tiny {
                c = tiny;
            }
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        FRAC_1_SQRT_PI * (-y * y).exp() / f
    }
}

/// Result of a hypothesis test at one POI value (pyhf's `hypotest` with
/// `return_tail_probs=True, return_expected_set=True`).
#[derive(Debug, Clone, Serialize)]
pub struct HypotestResult {
    /// The tested POI value.
    pub poi_test: f64,
    /// `qtilde`, `q` or `q0`.
    pub test_stat: String,
    /// Observed CLs (for `q0`: CLs+b, i.e. p0, as pyhf returns it).
    #[serde(rename = "CLs_obs")]
    pub cls_obs: f64,
    /// Expected CLs band (n_sigma = 2, 1, 0, −1, −2).
    #[serde(rename = "CLs_exp")]
    pub cls_exp: [f64; 5],
    /// Observed CLs+b.
    #[serde(rename = "CLsb_obs")]
    pub clsb_obs: f64,
    /// Observed CLb.
    #[serde(rename = "CLb_obs")]
    pub clb_obs: f64,
    /// Expected CLs+b band.
    #[serde(rename = "CLsb_exp")]
    pub clsb_exp: [f64; 5],
    /// Expected CLb band.
    #[serde(rename = "CLb_exp")]
    pub clb_exp: [f64; 5],
    /// Test statistic on the observed data.
    pub qmu: f64,
    /// Test statistic on the Asimov data.
    #[serde(rename = "qmu_A")]
    pub qmu_asimov: f64,
    /// The calculator's transformed statistic (in `−μ̂/σ` space).
    pub teststat: f64,
}

/// Discovery test (pyhf's `hypotest(0, …, test_stat="q0")`).
#[derive(Debug, Clone, Serialize)]
pub struct SignificanceResult {
    /// Observed p-value of the background-only hypothesis.
    pub p0_obs: f64,
    /// Expected p0 band (n_sigma = 2, 1, 0, −1, −2, pyhf's order).
    pub p0_exp: [f64; 5],
    /// Observed significance `Z = Φ⁻¹(1 − p0)`.
    #[serde(rename = "Z_obs")]
    pub z_obs: f64,
    /// Expected significance band.
    #[serde(rename = "Z_exp")]
    pub z_exp: [f64; 5],
    /// `q0` on the observed data.
    pub q0: f64,
    /// `q0` on the Asimov data (generated at μ = 1).
    #[serde(rename = "q0_A")]
    pub q0_asimov: f64,
}

/// A unit-width normal test-statistic distribution (pyhf's
/// `AsymptoticTestStatDistribution` with no cutoff).
#[derive(Debug, Clone, Copy)]
struct Dist {
    shift: f64,
}

impl Dist {
    fn pvalue(&self, v: f64) -> f64 {
        normal_cdf(-(v - self.shift))
    }
    fn expected_value(&self, n_sigma: f64) -> f64 {
        self.shift + n_sigma
    }
}

/// The asymptotic calculator for one model and data set.
#[derive(Debug, Clone)]
pub struct AsymptoticCalculator<'a, L: Likelihood + ?Sized> {
    model: &'a L,
    data: Vec<f64>,
    setup: FitSetup,
    opts: FitOptions,
    kind: TestStat,
    poi: usize,
    free_fit: FitResult,
    asimov_pars: Vec<f64>,
    asimov_data: Vec<f64>,
    /// `(twice_nll, μ̂)` of the free fit to the Asimov data (its Hessian is not kept).
    free_fit_asimov: (f64, f64),
}

impl<'a, L: Likelihood + ?Sized> AsymptoticCalculator<'a, L> {
    /// Prepare the calculator: free fit to `data`, the Asimov data set and
    /// the free fit to it. `kind` must be `QmuTilde`, `Qmu` or `Q0`.
    pub fn new(
        model: &'a L,
        data: &[f64],
        setup: FitSetup,
        opts: FitOptions,
        kind: TestStat,
    ) -> Result<Self> {
        if !matches!(kind, TestStat::QmuTilde | TestStat::Qmu | TestStat::Q0) {
            return Err(Error::InvalidInput(format!(
                "the asymptotic calculator supports q0, q and qtilde, not {kind}"
            )));
        }
        let poi = model
            .poi_index()
            .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))?;
        let mut free_fit = fit(model, data, &setup, &opts)?;
        // only values are needed from here on; recycle the n × n buffer
        free_fit.release_hessian();
        let asimov_mu = if kind == TestStat::Q0 { 1.0 } else { 0.0 };
        let asimov_fit =
            fixed_poi_fit(model, data, asimov_mu, &setup, Some(&free_fit.pars), &opts)?;
        let asimov_data = model.expected_data(&asimov_fit.pars)?;
        if asimov_data.len() != model.n_data() {
            return Err(Error::InvalidInput(format!(
                "expected_data returned {} entries, the model has {} data entries",
                asimov_data.len(),
                model.n_data()
            )));
        }
        // Every term of the Asimov likelihood is minimal at the generating
        // parameters, so that point is a global minimum: one local fit from
        // it suffices (it only polishes to the criterion).
        let free_fit_asimov = minimize_local(
            model,
            &asimov_data,
            &setup,
            Some(&asimov_fit.pars),
            &opts,
            "maximum-likelihood fit to the Asimov data",
        )?;
        Ok(AsymptoticCalculator {
            model,
            data: data.to_vec(),
            setup,
            opts,
            kind,
            poi,
            free_fit,
            asimov_pars: asimov_fit.pars.clone(),
            asimov_data,
            free_fit_asimov: (free_fit_asimov.twice_nll, free_fit_asimov.pars[poi]),
        })
    }

    /// The free fit to the observed data (without its Hessian: refit with
    /// [`fit`] for uncertainties).
    pub fn free_fit(&self) -> &FitResult {
        &self.free_fit
    }

    /// The Asimov data set (main bins followed by auxiliary data).
    pub fn asimov_data(&self) -> &[f64] {
        &self.asimov_data
    }

    /// The parameters that generated the Asimov data.
    pub fn asimov_pars(&self) -> &[f64] {
        &self.asimov_pars
    }

    /// The test statistic in use.
    pub fn test_stat(&self) -> TestStat {
        self.kind
    }

    /// Index of the POI.
    pub fn poi_index(&self) -> usize {
        self.poi
    }

    /// The fit setup (inits, bounds, fixed flags).
    pub fn setup(&self) -> &FitSetup {
        &self.setup
    }

    /// `(q on data, q on Asimov data)` at POI value `mu`.
    pub fn test_statistics(&self, mu: f64) -> Result<(f64, f64)> {
        if !mu.is_finite() {
            return Err(Error::InvalidInput(format!(
                "tested POI value {mu} is not finite"
            )));
        }
        let fixed = fixed_poi_fit(
            self.model,
            &self.data,
            mu,
            &self.setup,
            Some(&self.free_fit.pars),
            &self.opts,
        )?;
        let q = statistic_from_fits(self.kind, mu, &fixed, &self.free_fit, self.poi);
        let fixed_a = fixed_poi_fit(
            self.model,
            &self.asimov_data,
            mu,
            &self.setup,
            Some(&fixed.pars),
            &self.opts,
        )?;
        let (free_a_nll, free_a_muhat) = self.free_fit_asimov;
        let qa = statistic(self.kind, mu, fixed_a.twice_nll, free_a_nll, free_a_muhat);
        Ok((q, qa))
    }

    /// Hypothesis test at POI value `mu` (observed and expected CLs, CLs+b, CLb).
    pub fn hypotest(&self, mu: f64) -> Result<HypotestResult> {
        let (q, qa) = self.test_statistics(mu)?;
        Ok(self.hypotest_from_statistics(mu, q, qa))
    }

    fn hypotest_from_statistics(&self, mu: f64, q: f64, qa: f64) -> HypotestResult {
        let sq = q.sqrt();
        let sqa = qa.sqrt();
        let teststat = match self.kind {
            TestStat::QmuTilde if sq >= sqa => (q - qa) / (2.0 * sqa),
            _ => sq - sqa,
        };
        let sb = Dist { shift: -sqa };
        let b = Dist { shift: 0.0 };
        let pv = |t: f64| {
            let clsb = sb.pvalue(t);
            let clb = b.pvalue(t);
            (clsb, clb, clsb / clb)
        };
        let (clsb_obs, clb_obs, cls) = pv(teststat);
        let mut clsb_exp = [0.0; 5];
        let mut clb_exp = [0.0; 5];
        let mut cls_exp = [0.0; 5];
        for (k, &ns) in N_SIGMA.iter().enumerate() {
            let (a, bb, c) = pv(b.expected_value(ns));
            clsb_exp[k] = a;
            clb_exp[k] = bb;
            cls_exp[k] = c;
        }
        let is_q0 = self.kind == TestStat::Q0;
        HypotestResult {
            poi_test: mu,
            test_stat: self.kind.to_string(),
            cls_obs: if is_q0 { clsb_obs } else { cls },
            cls_exp: if is_q0 { clsb_exp } else { cls_exp },
            clsb_obs,
            clb_obs,
            clsb_exp,
            clb_exp,
            qmu: q,
            qmu_asimov: qa,
            teststat,
        }
    }
}

/// Hypothesis test at `poi_test` with the model's suggested setup (pyhf's
/// `hypotest(poi_test, data, model, test_stat=…, return_expected_set=True)`).
pub fn hypotest<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    poi_test: f64,
    kind: TestStat,
    opts: &FitOptions,
) -> Result<HypotestResult> {
    let calc =
        AsymptoticCalculator::new(model, data, FitSetup::from_model(model), opts.clone(), kind)?;
    calc.hypotest(poi_test)
}

/// Discovery significance with `q0` (Asimov data at μ = 1), with the
/// model's suggested setup.
pub fn significance<L: Likelihood + ?Sized>(
    model: &L,
    data: &[f64],
    opts: &FitOptions,
) -> Result<SignificanceResult> {
    let calc = AsymptoticCalculator::new(
        model,
        data,
        FitSetup::from_model(model),
        opts.clone(),
        TestStat::Q0,
    )?;
    let (q0, q0a) = calc.test_statistics(0.0)?;
    let sq = q0.sqrt();
    let sqa = q0a.sqrt();
    // p0 = Φ(−√q0) exactly as pyhf's CLs+b at μ = 0; Z is then √q0 itself,
    // which avoids an inverse-CDF round trip in the far tail.
    let mut p0_exp = [0.0; 5];
    let mut z_exp = [0.0; 5];
    for (k, &ns) in N_SIGMA.iter().enumerate() {
        z_exp[k] = ns + sqa;
        p0_exp[k] = normal_cdf(-z_exp[k]);
    }
    Ok(SignificanceResult {
        p0_obs: normal_cdf(-sq),
        p0_exp,
        z_obs: sq,
        z_exp,
        q0,
        q0_asimov: q0a,
    })
}
