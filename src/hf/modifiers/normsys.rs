//! normsys: a multiplicative normalisation systematic interpolated between
//! the factors `lo`, `hi` at α = ∓1 (pyhf: code4 by default, code1 allowed;
//! init 0, bounds [−5, 5], unit Gaussian constraint with auxdatum 0).

use super::{ConstraintType, Defaults};
use crate::hf::interp::{self, InterpCode, Scalar};

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(0.0),
    bounds: Some((-5.0, 5.0)),
    constraint: ConstraintType::Normal,
    aux: Some(0.0),
};

/// The factor applied to the sample at `alpha`.
#[inline]
pub fn factor<T: Scalar>(code: InterpCode, alpha: T, lo: T, hi: T) -> T {
    interp::factor(code, alpha, lo, hi)
}
