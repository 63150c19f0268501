//! End-to-end training of summary statistics (and bin edges) on analysis
//! objectives: the neos pipeline events → network → bKDE → HistFactory →
//! CLs, and its baselines.
//!
//! * [`config`]: the TOML configuration and its validation.
//! * [`adam`]: Adam with a saveable state.
//! * [`trainer`]: data, network, edges, one step, test evaluation, checkpoints.
//! * [`run`]: the loop (progress bar, metrics JSON/CSV, figures) and the
//!   comparison of objectives.
//! * [`cli`]: `anagrad train`.
//!
//! ```no_run
//! use anagrad::train::{config::TrainConfig, run::{train, RunOptions}};
//! # fn main() -> anagrad::Result<()> {
//! let mut cfg = TrainConfig::embedded_default()?;
//! cfg.training.max_steps = Some(10);
//! let report = train(&cfg, &RunOptions::new("runs/example"))?;
//! println!("test CLs at the best step: {:?}", report.best.and_then(|m| m.cls));
//! # Ok(()) }
//! ```

pub mod adam;
pub mod cli;
pub mod config;
pub mod output;
pub mod plot;
pub mod run;
pub mod trainer;

pub use cli::{run as run_cli, TrainArgs};
pub use config::{Objective, TrainConfig};
pub use run::{compare, resume, train, CompareReport, RunOptions, TrainReport};
pub use trainer::{StepRecord, TestMetrics, Trainer};
