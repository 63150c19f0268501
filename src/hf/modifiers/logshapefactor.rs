//! logshapefactor (anagrad extension, not pyhf): rhalphalib's log-form free
//! per-bin yields, `n0_b · (1 + 1/max(1, √n0_b))^(10 θ_b)`, so that the
//! parameters of bins with very different counts have comparable scales.
//! One unconstrained θ per bin (init 0, bounds [−10, 10]); shared across
//! channels bin by bin like a shapefactor (then with equal `n0`).

use super::{ConstraintType, Defaults};

/// Defaults of this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(0.0),
    bounds: Some((-10.0, 10.0)),
    constraint: ConstraintType::Unconstrained,
    aux: None,
};

/// The factor's log-slope `c_b` (factor = `exp(c_b θ_b)`) for reference count `n0`.
pub fn log_step(n0: f64) -> f64 {
    10.0 * (1.0 / n0.sqrt().max(1.0)).ln_1p()
}
