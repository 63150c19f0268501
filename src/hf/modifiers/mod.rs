//! The seven HistFactory modifier types and anagrad's two extensions
//! (transferfactor, logshapefactor), one file each: the default parameter
//! configuration (inits, bounds, constraint, auxdata; pyhf's for pyhf's
//! types) and the generic math each modifier contributes to the expected
//! rates or to its constraint term.

pub mod histosys;
pub mod logshapefactor;
pub mod lumi;
pub mod normfactor;
pub mod normsys;
pub mod shapefactor;
pub mod shapesys;
pub mod staterror;
pub mod transfer;

use super::interp::Scalar;
use super::spec::ModifierType;

/// `x²` whose value is computed like pyhf's `x ** 2` (libm `pow`), which can
/// differ from `x·x` by one ulp; the derivative parts are those of `x·x`.
/// Keeps auxiliary data bit-identical to pyhf's.
#[inline]
pub fn py_square<T: Scalar>(x: T) -> T {
    let r = x.re();
    // black_box keeps LLVM from rewriting pow(r, 2.0) as r·r.
    let p = r.powf(std::hint::black_box(2.0));
    x * x + T::from(p - r * r)
}

/// The kind of constraint term a parameter set carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintType {
    /// Free parameter (normfactor, shapefactor).
    Unconstrained,
    /// Gaussian `N(aux | θ, σ)` (normsys, histosys, lumi, staterror).
    Normal,
    /// Poisson `Pois(aux | θ·τ)` (shapesys).
    Poisson,
}

/// pyhf's default configuration of one parameter of a given modifier type.
/// Lumi has no defaults: inits, bounds, auxdata and sigmas come from the
/// measurement (`None` here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    /// Suggested initial value.
    pub init: Option<f64>,
    /// Suggested bounds.
    pub bounds: Option<(f64, f64)>,
    /// Constraint term kind.
    pub constraint: ConstraintType,
    /// Default auxiliary datum for Gaussian constraints (Poisson ones use τ).
    pub aux: Option<f64>,
}

/// The defaults of `ty`, as in pyhf's `required_parset` functions.
pub fn defaults(ty: ModifierType) -> Defaults {
    match ty {
        ModifierType::HistoSys => histosys::DEFAULTS,
        ModifierType::Lumi => lumi::DEFAULTS,
        ModifierType::NormFactor => normfactor::DEFAULTS,
        ModifierType::NormSys => normsys::DEFAULTS,
        ModifierType::ShapeFactor => shapefactor::DEFAULTS,
        ModifierType::ShapeSys => shapesys::DEFAULTS,
        ModifierType::StatError => staterror::DEFAULTS,
        ModifierType::TransferFactor => transfer::DEFAULTS,
        ModifierType::LogShapeFactor => logshapefactor::DEFAULTS,
    }
}
