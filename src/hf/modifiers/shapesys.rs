//! shapesys: one factor γ_b per bin of a single sample, each with a Poisson
//! constraint `Pois(τ_b | γ_b τ_b)`, τ_b = (nominal_b / σ_b)². Bins with a
//! non-positive yield or uncertainty get τ = 1 and a fixed γ, as in pyhf
//! (defaults: init 1, bounds [1e-10, 10]).

use super::{ConstraintType, Defaults};
use crate::hf::interp::Scalar;

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(1.0),
    bounds: Some((1e-10, 10.0)),
    constraint: ConstraintType::Poisson,
    aux: None,
};

/// Whether the bin gets a floating, constrained γ (pyhf's `valid_bins`).
#[inline]
pub fn is_valid(nominal: f64, uncertainty: f64) -> bool {
    nominal > 0.0 && uncertainty > 0.0
}

/// τ = nominal² / σ², computed in pyhf's operation order.
#[inline]
pub fn tau<T: Scalar>(nominal: T, uncertainty: T) -> T {
    super::py_square(nominal) / super::py_square(uncertainty)
}
