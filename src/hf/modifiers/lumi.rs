//! lumi: a scalar factor with a Gaussian constraint whose init, bounds,
//! auxdatum and width all come from the measurement's parameter config
//! (pyhf has no defaults for it).

use super::{ConstraintType, Defaults};

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: None,
    bounds: None,
    constraint: ConstraintType::Normal,
    aux: None,
};
