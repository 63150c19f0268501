//! staterror: one factor γ_b per bin shared by every sample that lists the
//! modifier, with a Gaussian constraint of width
//! σ_b = sqrt(Σ_s (δ_sb / Σ_s ν_sb)²) (pyhf's combined relative MC
//! uncertainty). Bins with σ_b = 0 are fixed at 1 with σ set to 1
//! (defaults: init 1, bounds [1e-10, 10], auxdatum 1).

use super::{ConstraintType, Defaults};
use crate::hf::interp::Scalar;

pub const DEFAULTS: Defaults = Defaults {
    init: Some(1.0),
    bounds: Some((1e-10, 10.0)),
    constraint: ConstraintType::Normal,
    aux: Some(1.0),
};

/// Combined relative uncertainty of one bin from the subscribing samples'
/// nominal yields and absolute uncertainties (pyhf: zero when Σ ν ≤ 0).
pub fn rel_uncertainty<T: Scalar>(nominals: impl Iterator<Item = T>, uncertainties: &[T]) -> T {
    let mut total = T::from(0.0);
    for n in nominals {
        total += n;
    }
    if total.re() <= 0.0 {
        return T::from(0.0);
    }
    let mut s = T::from(0.0);
    for &u in uncertainties {
        let r = u / total;
        s += r * r;
    }
    s.sqrt()
}
