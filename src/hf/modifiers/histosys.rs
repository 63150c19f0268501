//! histosys: an additive shape systematic interpolated per bin between the
//! templates `lo_data`, `hi_data` at α = ∓1 (pyhf: code4p by default, code0
//! and code2 allowed; init 0, bounds [−5, 5], unit Gaussian constraint).

use super::{ConstraintType, Defaults};
use crate::hf::interp::{self, InterpCode, Scalar};

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(0.0),
    bounds: Some((-5.0, 5.0)),
    constraint: ConstraintType::Normal,
    aux: Some(0.0),
};

/// The delta added to the nominal yield `nom` of one bin at `alpha`.
#[inline]
pub fn delta<T: Scalar>(code: InterpCode, alpha: T, lo: T, nom: T, hi: T) -> T {
    interp::delta(code, alpha, lo, nom, hi)
}
