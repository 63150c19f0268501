//! # anagrad — differentiable particle-physics analysis
//!
//! anagrad makes the whole analysis chain differentiable: events → summary
//! statistic → (soft) cuts → binned-KDE histograms → a HistFactory model →
//! profile-likelihood test statistics → CLs / significance.
//!
//! * [`hf`]: pyhf-compatible HistFactory workspaces (JSON schema 1.0.0) and the
//!   compiled model, whose log-likelihood is written once, generic over a
//!   `num_dual` scalar, in both parameters and yields.
//! * [`infer`]: bounded Newton fits with exact Hessians, test statistics
//!   (q0, qμ, q̃μ, tμ, t̃μ), asymptotic CLs and upper limits.
//! * [`ops`]: event-level differentiable ops on candle tensors (sigmoid cuts,
//!   fused binned-KDE histograms, learnable bin edges).
//! * [`toys`], [`nn`], [`train`]: toy models, summary-statistic networks and
//!   end-to-end training on analysis objectives (`anagrad train`).
//!
//! See `DESIGN.md` in the shared folder for the architecture.

pub mod error;
pub mod fiducial;
pub mod grad;
pub mod hf;
pub mod infer;
pub mod nn;
pub mod ops;
pub(crate) mod progress;
pub mod study;
pub mod toys;
pub mod train;
pub mod transfer;

pub use error::{Error, Result};
