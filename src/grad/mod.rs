//! Differentiable statistics: the bridge between event-level tensors and the
//! statistical model (see DESIGN.md, `grad/`).
//!
//! Every loss here is a candle op whose value and exact gradient are computed
//! on the host in f64 and whose backward returns that gradient scaled by the
//! incoming one, so `loss.backward()` reaches whatever produced the yields.
//!
//! * [`asimov`]: the Asimov significance Z_A, without systematics and with a
//!   per-bin background uncertainty.
//! * [`bce`]: binary cross-entropy on event-level scores (the classifier
//!   baseline neos compares against), with optional systematic augmentation.
//! * [`template`]: a HistFactory workspace whose chosen templates and data
//!   are supplied as tensors.
//! * [`loss`]: expected CLs, discovery p0/Z0, σ_μ (Cramér–Rao), generalised
//!   variance, observed test statistics and observed CLs over a template,
//!   with exact gradients through the fits.
//!
//! ```no_run
//! # use anagrad::grad::{InputSel, Loss, LossKind, Template, YieldFloor};
//! # use anagrad::hf::{ModelOptions, Workspace};
//! # use anagrad::infer::teststat::TestStat;
//! # fn main() -> anagrad::Result<()> {
//! # let ws = Workspace::from_path("examples/workspace.json".as_ref())?;
//! # let (signal_hist, bkg_hist) = (candle_core::Tensor::zeros(4, candle_core::DType::F32, &candle_core::Device::Cpu)?, candle_core::Tensor::zeros(4, candle_core::DType::F32, &candle_core::Device::Cpu)?);
//! let template = Template::from_workspace(&ws, &ModelOptions::default())?
//!     .with_floor(YieldFloor::NEOS)
//!     .with_input(InputSel::nominal("SR", "signal"))?
//!     .with_input(InputSel::nominal("SR", "ttbar"))?;
//! let cls = Loss::new(template, LossKind::Cls { test_mu: 1.0, stat: TestStat::QmuTilde });
//! let loss = cls.forward(&[&signal_hist, &bkg_hist])?; // Error::FitFailed surfaces here
//! let grads = loss.backward()?; // reaches whatever produced the histograms
//! # Ok(()) }
//! ```

pub mod asimov;
pub mod bce;
pub mod loss;
mod op;
pub mod template;

pub use asimov::{
    asimov_significance, asimov_significance_host, asimov_significance_uncertain,
    asimov_significance_uncertain_host,
};
pub use bce::{bce, BceScores};
pub use loss::{AsimovSource, Loss, LossKind, LossValue};
pub use template::{InputSel, Instance, Template};

/// What to do with yields that may be ≤ 0 (a bKDE bin far from every event
/// is ~0; a Poisson mean must be > 0).
///
/// neos adds 1e-3 to every bin of every histogram before building its model
/// ([`YieldFloor::Add`]`(1e-3)`); the shift changes the yields, not their
/// derivatives. With [`YieldFloor::None`] a non-positive yield where a positive
/// one is needed is an error.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum YieldFloor {
    /// Use the yields as they are; report an error where one is ≤ 0.
    #[default]
    None,
    /// Add this constant to every yield (neos: 1e-3).
    Add(f64),
}

impl YieldFloor {
    /// The neos choice, +1e-3 per bin.
    pub const NEOS: YieldFloor = YieldFloor::Add(1e-3);

    /// The floored value of one yield.
    pub fn apply(self, y: f64) -> f64 {
        match self {
            YieldFloor::None => y,
            YieldFloor::Add(eps) => y + eps,
        }
    }
}
