//! The seven HistFactory modifier types, one file each: pyhf's default
//! parameter configuration (inits, bounds, constraint, auxdata) and the
//! generic math each modifier contributes to the expected rates or to its
//! constraint term.

pub mod histosys;
pub mod lumi;
pub mod normfactor;
pub mod normsys;
pub mod shapefactor;
pub mod shapesys;
pub mod staterror;

use super::spec::ModifierType;

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
    pub init: Option<f64>,
    pub bounds: Option<(f64, f64)>,
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
    }
}
