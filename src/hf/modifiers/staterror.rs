//! staterror: one factor γ_b per bin shared by every sample that lists the
//! modifier, with a Gaussian constraint of width
//! σ_b = sqrt(Σ_s (δ_sb / Σ_s ν_sb)²) (pyhf's combined relative MC
//! uncertainty). Bins with σ_b = 0 are fixed at 1 with σ set to 1
//! (defaults: init 1, bounds [1e-10, 10], auxdatum 1).

use super::{ConstraintType, Defaults};
use crate::hf::interp::Scalar;

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(1.0),
    bounds: Some((1e-10, 10.0)),
    constraint: ConstraintType::Normal,
    aux: Some(1.0),
};

/// Combined relative uncertainty of one bin from the subscribing samples'
/// (nominal yield, absolute uncertainty) pairs (pyhf: zero when Σ ν ≤ 0).
pub fn rel_uncertainty<T: Scalar, I: Iterator<Item = (T, T)> + Clone>(samples: I) -> T {
    let mut total = T::from(0.0);
    for (n, _) in samples.clone() {
        total += n;
    }
    if total.re() <= 0.0 {
        return T::from(0.0);
    }
    let mut s = T::from(0.0);
    for (_, u) in samples {
        s += super::py_square(u / total);
    }
    s.sqrt()
}
