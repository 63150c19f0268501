//! The neos Gaussian-blobs toy (arXiv:2203.05570, `neos` / `relaxed`
//! examples): 2-D unit-covariance Gaussians for the signal, the nominal
//! background and its up/down variations.
//!
//! Yields follow neos: a batch histogram is divided by the batch size and
//! scaled by 2 (signal) or 10 (backgrounds), times LUMI = 10. The model is
//! one channel with the signal under a normfactor `mu` and the background
//! under a histosys `correlated_bkg_uncertainty` whose hi/lo templates are
//! the up/down histograms (pyhf's default interpolation, code 4p).

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;

use super::{
    check_process, signal_background_workspace, Analysis, Events, Process, Role, ToyModel,
};
use crate::grad::InputSel;
use crate::{Error, Result};

/// Channel name of the blobs analysis.
pub const CHANNEL: &str = "singlechannel";
/// Name of the background histosys.
pub const SYST: &str = "correlated_bkg_uncertainty";

/// The Gaussian-blobs toy; the fields default to neos's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Blobs {
    /// Signal mean.
    pub signal: [f64; 2],
    /// Nominal background mean.
    pub background: [f64; 2],
    /// Background "up" variation mean.
    pub background_up: [f64; 2],
    /// Background "down" variation mean.
    pub background_down: [f64; 2],
    /// Signal scale (neos: 2).
    pub signal_scale: f64,
    /// Background scale (neos: 10).
    pub background_scale: f64,
    /// Overall luminosity factor (neos: 10).
    pub lumi: f64,
}

impl Default for Blobs {
    fn default() -> Self {
        Blobs {
            signal: [-1.0, 1.0],
            background: [1.0, -1.0],
            background_up: [2.5, 2.0],
            background_down: [-2.5, -1.5],
            signal_scale: 2.0,
            background_scale: 10.0,
            lumi: 10.0,
        }
    }
}

impl Blobs {
    fn mean(&self, process: usize) -> [f64; 2] {
        match process {
            0 => self.signal,
            1 => self.background,
            2 => self.background_up,
            _ => self.background_down,
        }
    }
}

impl ToyModel for Blobs {
    fn name(&self) -> &str {
        "blobs"
    }

    fn n_features(&self) -> usize {
        2
    }

    fn processes(&self) -> Vec<Process> {
        let s = self.signal_scale * self.lumi;
        let b = self.background_scale * self.lumi;
        vec![
            Process {
                name: "signal".into(),
                role: Role::Signal,
                yield_scale: s,
            },
            Process {
                name: "bkg_nominal".into(),
                role: Role::Background,
                yield_scale: b,
            },
            Process {
                name: "bkg_up".into(),
                role: Role::Variation,
                yield_scale: b,
            },
            Process {
                name: "bkg_down".into(),
                role: Role::Variation,
                yield_scale: b,
            },
        ]
    }

    fn sample(&self, process: usize, n: usize, rng: &mut dyn Rng) -> Result<Events> {
        check_process(self, process)?;
        let m = self.mean(process);
        let mut features = Vec::with_capacity(2 * n);
        for _ in 0..n {
            for mj in m {
                let z: f64 = StandardNormal.sample(rng);
                features.push(mj + z);
            }
        }
        Ok(Events {
            n_features: 2,
            features,
            weights: None,
        })
    }

    fn analysis(&self, n_bins: usize) -> Result<Analysis> {
        if n_bins == 0 {
            return Err(Error::InvalidInput("blobs: need at least one bin".into()));
        }
        let ones = vec![1.0; n_bins];
        let bkg = json!([{"name": SYST, "type": "histosys",
                          "data": {"hi_data": ones, "lo_data": ones}}]);
        Ok(Analysis {
            workspace: signal_background_workspace(CHANNEL, n_bins, bkg, json!([]))?,
            inputs: vec![
                (0, InputSel::nominal(CHANNEL, "signal")),
                (1, InputSel::nominal(CHANNEL, "background")),
                (2, InputSel::histo_hi(CHANNEL, "background", SYST)),
                (3, InputSel::histo_lo(CHANNEL, "background", SYST)),
            ],
        })
    }

    fn feature_range(&self) -> Vec<(f64, f64)> {
        vec![(-5.0, 5.0), (-5.0, 5.0)]
    }
}
