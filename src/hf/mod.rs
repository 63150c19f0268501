//! HistFactory: pyhf JSON workspaces (`spec`), the compiled model (`model`),
//! modifiers and interpolation codes.

pub mod interp;
pub mod model;
pub mod modifiers;
pub mod patchset;
pub mod spec;

pub use interp::{InterpCode, Scalar};
pub use model::{
    AuxConstraint, AuxDistribution, ConstraintOverride, InputKind, InputSlice, Model, ModelOptions,
    OverrideKind, ParSet,
};
pub use patchset::{Patch, PatchSet};
pub use spec::{
    Channel, Measurement, MeasurementConfig, Modifier, ModifierData, ModifierType, Observation,
    ParameterConfig, Sample, Validation, Warning, Workspace,
};
