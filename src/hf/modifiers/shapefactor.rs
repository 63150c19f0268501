//! shapefactor: one free factor per bin (pyhf defaults: init 1, bounds
//! [0, 10], unconstrained). Shared across channels bin by bin, which is why
//! the channels sharing one must have equal bin counts.

use super::{ConstraintType, Defaults};

/// pyhf's defaults for this modifier type.
pub const DEFAULTS: Defaults = Defaults {
    init: Some(1.0),
    bounds: Some((0.0, 10.0)),
    constraint: ConstraintType::Unconstrained,
    aux: None,
};
