//! Gradient variance vs bandwidth (`anagrad bandwidth-study`, issue 6).
//!
//! The bKDE trades bias for gradient variance: a small bandwidth h tends to
//! the hard histogram but gives noisy gradients, a large one smooth but
//! biased gradients. A study draws many seeded datasets per sample size N
//! and bandwidth-to-bin-width ratio r = h / bin width, computes dL/dθ of each
//! through the bKDE, and compares mean and spread with the exact gradient of
//! the expected hard-histogram loss; the RMSE-optimal r per N answers "which
//! bandwidth?".
//!
//! * [`config`]: the TOML configuration (defaults = the default study).
//! * [`truth`]: analytic d E[L_hard]/dθ.
//! * [`pipeline`]: the differentiable pipelines (Gaussian shift, cut threshold,
//!   cut with discovery Z0 through `grad::Loss`).
//! * [`bandwidth`]: the engine (seeded datasets, rayon, progress).
//! * [`stats`], [`output`], [`plot`]: aggregation, CSV/JSON, figures.
//! * [`cli`]: the `bandwidth-study` subcommand.

pub mod bandwidth;
pub mod cli;
pub mod config;
pub mod output;
pub mod pipeline;
pub mod plot;
pub mod stats;
pub mod truth;

pub use bandwidth::run_study;
pub use cli::{run, BandwidthStudyArgs};
pub use config::StudyConfig;
pub use output::StudyReport;
