//! Gradient-optimised fiducial cuts with ensembles of starts (issue 14;
//! after Menary & Price, "Design by intelligent committee", IML 2020), on the
//! [`crate::toys::fiducial`] toy.
//!
//! * [`selection`]: hard boxes and unions, and their sigmoid twin.
//! * [`ensemble`]: members optimised from random starts on Z0 through the
//!   fits, clustering of their optima, the committee union.
//! * [`grid`]: the grid-search baseline (best single box).
//! * [`config`], [`run`], [`plot`], [`cli`]: `anagrad fiducial-cuts`.
//! * [`reach`]: the Asimov reach q_A by quadrature, plain and
//!   importance-sampled Monte Carlo, and their variance study.

pub mod config;
pub mod ensemble;
pub mod grid;
pub mod run;
pub mod selection;

pub use config::FiducialConfig;
pub use run::{run, FiducialReport};
pub mod cli;
pub mod plot;
pub mod reach;

pub use cli::{run as run_cli, FiducialCutsArgs};
