//! normfactor: a free scalar factor `μ` multiplying the sample (pyhf
//! defaults: init 1, bounds [0, 10], unconstrained).

use super::{ConstraintType, Defaults};

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(1.0),
    bounds: Some((0.0, 10.0)),
    constraint: ConstraintType::Unconstrained,
    aux: None,
};
