//! The CR → SR transfer-function workflow of 2DAlphabet / rhalphalib on top
//! of `hf` and `infer`: a pass/fail analysis described by a config
//! ([`config`]) becomes a workspace with the transfer-factor extension (the
//! factors themselves are modifiers in `hf::modifiers`), is fitted
//! ([`report`]: post-fit yields, TF surface with band, pulls, projections),
//! tested for goodness of fit ([`gof`]: saturated statistic with toys) and
//! for the TF order ([`ftest`]: Fisher F-test, order selection); [`mcfit`]
//! is rhalphalib's two-step TF_MC, [`plot`] draws the figures and [`cli`]
//! is `anagrad transfer`.

pub mod cli;
pub mod closure;
pub mod config;
pub mod ftest;
pub mod gof;
pub mod mcfit;
pub mod plot;
pub mod report;

pub use cli::TransferArgs;
pub use config::{build, build_workspace, Built, Layout, TransferConfig};
pub use ftest::{ftest, select_order, FTestResult, OrderSelection};
pub use gof::{gof_toys, saturated, GofResult};
pub use report::{fit_config, FitReport, TransferFit, TransferFitOptions};
