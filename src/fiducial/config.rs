//! The fiducial-cuts configuration (TOML; `configs/fiducial_cuts.toml` is
//! the shipped run). Every key has a default; unknown keys are errors, and
//! invalid values name their key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::reach::ReachConfig;
use crate::toys::Fiducial;
use crate::{Error, Result};

/// `[toy]`: the fiducial toy's parameters (see [`Fiducial`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToySection {
    /// Expected signal events.
    pub s: f64,
    /// Expected background events.
    pub b: f64,
    /// Amplitude of the angular deformation.
    pub kappa: f64,
    /// Relative background normalisation uncertainty.
    pub bkg_norm_unc: f64,
}

impl Default for ToySection {
    fn default() -> Self {
        let t = Fiducial::default();
        Self {
            s: t.s,
            b: t.b,
            kappa: t.kappa,
            bkg_norm_unc: t.bkg_norm_unc,
        }
    }
}

/// `[data]`: Monte-Carlo events per process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// Training events [signal, background].
    pub n_train: [usize; 2],
    /// Held-out events [signal, background].
    pub n_test: [usize; 2],
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            n_train: [20_000, 100_000],
            n_test: [20_000, 100_000],
        }
    }
}

/// `[ensemble]`: the members and how each is optimised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleSection {
    /// Members (random starts).
    pub members: usize,
    /// Boxes per member (1: single boxes, the committee then unites them).
    pub boxes: usize,
    /// Adam steps per member.
    pub steps: usize,
    /// Adam learning rate (unit coordinates).
    pub lr: f64,
    /// Sigmoid slope in unit coordinates (transition = range/slope).
    pub slope: f64,
    /// Jaccard overlap of selected held-out events above which two members
    /// are the same optimum.
    pub min_overlap: f64,
    /// Adam steps of the committee's joint fine-tuning.
    pub committee_steps: usize,
}

impl Default for EnsembleSection {
    fn default() -> Self {
        Self {
            members: 24,
            boxes: 1,
            steps: 300,
            lr: 0.01,
            slope: 50.0,
            min_overlap: 0.5,
            committee_steps: 200,
        }
    }
}

/// `[grid]`: the single-box grid-search baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridSection {
    /// Cells per observable.
    pub cells: usize,
    /// Boxes re-evaluated with the exact Z0 after the closed-form ranking.
    pub refine: usize,
}

impl Default for GridSection {
    fn default() -> Self {
        Self {
            cells: 20,
            refine: 300,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FiducialConfig {
    /// Master seed (events, starts).
    pub seed: u64,
    /// The toy.
    pub toy: ToySection,
    /// Event samples.
    pub data: DataSection,
    /// The ensemble.
    pub ensemble: EnsembleSection,
    /// The grid baseline.
    pub grid: GridSection,
    /// The Asimov-reach variance study (plain vs importance sampling).
    pub reach: ReachConfig,
}

impl Default for FiducialConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            toy: ToySection::default(),
            data: DataSection::default(),
            ensemble: EnsembleSection::default(),
            grid: GridSection::default(),
            reach: ReachConfig::default(),
        }
    }
}

fn bad(key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl FiducialConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| bad("(file)", e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a TOML file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("(file)", format!("{}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// The toy these settings describe.
    pub fn toy(&self) -> Fiducial {
        Fiducial {
            s: self.toy.s,
            b: self.toy.b,
            kappa: self.toy.kappa,
            bkg_norm_unc: self.toy.bkg_norm_unc,
            ..Fiducial::default()
        }
    }

    /// Checks every value, naming the key of the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.toy()
            .validate()
            .map_err(|e| bad("toy", e.to_string()))?;
        for (key, n) in [
            ("data.n_train", self.data.n_train),
            ("data.n_test", self.data.n_test),
        ] {
            if n.iter().any(|&v| v < 100) {
                return Err(bad(
                    key,
                    format!("need ≥ 100 events per process, got {n:?}"),
                ));
            }
        }
        let e = &self.ensemble;
        if e.members == 0 {
            return Err(bad("ensemble.members", "must be ≥ 1"));
        }
        if !(1..=8).contains(&e.boxes) {
            return Err(bad(
                "ensemble.boxes",
                format!("must be 1 … 8, got {}", e.boxes),
            ));
        }
        if !(e.lr > 0.0 && e.lr.is_finite()) {
            return Err(bad(
                "ensemble.lr",
                format!("must be positive, got {}", e.lr),
            ));
        }
        if !(e.slope > 0.0 && e.slope.is_finite()) {
            return Err(bad(
                "ensemble.slope",
                format!("must be positive, got {}", e.slope),
            ));
        }
        if !(e.min_overlap > 0.0 && e.min_overlap <= 1.0) {
            return Err(bad(
                "ensemble.min_overlap",
                format!("must lie in (0, 1], got {}", e.min_overlap),
            ));
        }
        if !(2..=60).contains(&self.grid.cells) {
            return Err(bad(
                "grid.cells",
                format!("must be 2 … 60, got {}", self.grid.cells),
            ));
        }
        if self.grid.refine == 0 {
            return Err(bad("grid.refine", "must be ≥ 1"));
        }
        self.reach.validate()
    }
}
