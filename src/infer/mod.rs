//! Statistical inference: fits, test statistics, asymptotic and toy-based
//! CLs, upper limits.
//!
//! Everything here is written against the [`Likelihood`] trait, which
//! `hf::Model` implements; the fits never see HistFactory details.

pub mod asymptotics;
pub mod fit;
pub mod limits;
pub mod linalg;
pub mod profile;
pub mod teststat;
pub mod toys;

pub use asymptotics::{
    hypotest, normal_cdf, significance, AsymptoticCalculator, HypotestResult, SignificanceResult,
};
pub use fit::{fit, fixed_poi_fit, minimize, minimize_local, FitOptions, FitResult, FitSetup};
pub use limits::{upper_limit, upper_limit_scan, LimitOptions, UpperLimitResult};
pub use profile::{poi_interval, PoiInterval};
pub use teststat::{test_statistic, TestStat, TestStatValue};

use crate::Result;

/// What fits and test statistics need from a statistical model.
///
/// Conventions follow pyhf: parameters are ordered as pyhf orders them
/// (`Model.config.par_order`, each parameter set flattened in place), data is
/// the main-channel bins (channels in pyhf order, concatenated) followed by the
/// auxiliary data, and the objective is `twice_nll = -2 ln L` (pyhf's
/// `-2 * model.logpdf(pars, data)`), constraint terms included.
///
/// `Sync`, because the global fit runs its local fits from several starting
/// points in parallel.
pub trait Likelihood: Sync {
    /// Number of (scalar) parameters.
    fn n_pars(&self) -> usize;
    /// Parameter sets in order: `(name, first index, length)`, e.g.
    /// `("mu", 0, 1)`, `("uncorr_bkguncrt", 1, 500)`.
    fn par_sets(&self) -> Vec<(String, usize, usize)>;
    /// Index of the parameter of interest, if the measurement declares one.
    fn poi_index(&self) -> Option<usize>;
    /// Suggested initial values.
    fn init(&self) -> Vec<f64>;
    /// Suggested bounds `(lo, hi)`.
    fn bounds(&self) -> Vec<(f64, f64)>;
    /// Which parameters are held fixed by the measurement config.
    fn fixed(&self) -> Vec<bool>;
    /// Number of main-channel bins (the first part of `data`).
    fn n_main(&self) -> usize;
    /// Length of the full data vector (main bins + auxiliary data).
    fn n_data(&self) -> usize;
    /// The observed data (main + aux) of the workspace, if known.
    fn observed_data(&self) -> Vec<f64>;
    /// `-2 ln L(pars | data)`.
    fn twice_nll(&self, pars: &[f64], data: &[f64]) -> Result<f64>;
    /// `-2 ln L` with its exact gradient and exact Hessian (dense, row-major,
    /// `n_pars × n_pars`) w.r.t. the parameters. `grad` and `hess` are
    /// overwritten.
    fn twice_nll_grad_hess(
        &self,
        pars: &[f64],
        data: &[f64],
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Result<f64>;
    /// Expected data (main bins followed by aux data) at `pars`: the Asimov
    /// dataset for those parameter values.
    fn expected_data(&self, pars: &[f64]) -> Result<Vec<f64>>;
    /// Parameters along which `twice_nll` may have several local minima
    /// (see `hf::Model::nonconvex_parameters`), each with the values to start
    /// it from (e.g. `[-1.0, 1.0]`). The fitter starts from each of them and
    /// keeps the lowest minimum; a model that returns none (the default) is
    /// fitted from one start.
    fn nonconvex_pars(&self) -> Vec<(usize, Vec<f64>)> {
        Vec::new()
    }
    /// A pseudo-data set (main + aux) drawn from the model at `pars`, for
    /// toy-based inference ([`toys`]). The default reports that this
    /// likelihood cannot generate toys.
    fn sample_data(&self, pars: &[f64], rng: &mut dyn rand::Rng) -> Result<Vec<f64>> {
        let _ = (pars, rng);
        Err(crate::Error::InvalidInput(
            "this likelihood cannot generate pseudo-data (toys)".into(),
        ))
    }
}
