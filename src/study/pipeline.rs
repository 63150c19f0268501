//! The pipelines a study can differentiate: per dataset, dL/dθ through the
//! bKDE (candle autograd, f64), and the exact gradient of the expected
//! hard-histogram loss that it estimates.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::config::{Binning, OutsideMode, PipelineConfig, StudyConfig};
use super::truth;
use crate::ops::cut::{soft_cut, Keep};
use crate::ops::hist::{bkde, BkdeOptions, Outside};
use crate::{Error, Result};

/// A pipeline ready to evaluate: the config plus the precomputed tensors.
#[derive(Debug, Clone)]
pub struct Pipeline {
    kind: PipelineConfig,
    binning: Binning,
    edges: Tensor,
    edges_host: Vec<f64>,
    /// Target bin fractions q_b.
    target: Vec<f64>,
}

/// One dataset's random input: standard normals `z`, turned into events by the pipeline.
#[derive(Debug, Clone)]
pub struct Dataset {
    z: Vec<f64>,
}

impl Dataset {
    /// Draws `n` standard normals from `rng`.
    pub fn draw<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Self {
        Self {
            z: (0..n)
                .map(|_| rng.sample::<f64, _>(StandardNormal))
                .collect(),
        }
    }

    /// Wraps given standard normals.
    pub fn from_normals(z: Vec<f64>) -> Self {
        Self { z }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.z.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.z.is_empty()
    }
}

fn outside(mode: OutsideMode) -> Outside {
    match mode {
        OutsideMode::Drop => Outside::Drop,
        OutsideMode::Fold => Outside::Fold,
    }
}

impl Pipeline {
    /// Builds the pipeline of a (validated) configuration.
    pub fn new(cfg: &StudyConfig) -> Result<Self> {
        cfg.validate()?;
        let edges_host = cfg.binning.edges();
        let edges = Tensor::from_slice(&edges_host, edges_host.len(), &Device::Cpu)?;
        let eff = truth::effective_edges(&edges_host, cfg.binning.outside);
        let target = match &cfg.pipeline {
            PipelineConfig::GaussianShift { target_mean, .. } => {
                truth::gaussian_bin_probs(&eff, *target_mean)
            }
            PipelineConfig::CutThreshold {
                data_mean,
                target_threshold,
                ..
            } => truth::cut_bin_probs(&eff, *data_mean, *target_threshold),
        };
        Ok(Self {
            kind: cfg.pipeline.clone(),
            binning: cfg.binning.clone(),
            edges,
            edges_host,
            target,
        })
    }

    /// The target bin fractions q_b.
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// How [`Pipeline::truth`] is obtained.
    pub fn truth_method(&self) -> &'static str {
        "analytic d E[L_hard]/dθ (multinomial moments of the hard histogram)"
    }

    /// (E[L_hard], d E[L_hard]/dθ) at sample size `n`, exact.
    pub fn truth(&self, n: usize) -> (f64, f64) {
        let (edges, out) = (&self.edges_host, self.binning.outside);
        match &self.kind {
            PipelineConfig::GaussianShift { theta, target_mean } => {
                truth::gaussian_shift(edges, out, *theta, *target_mean, n)
            }
            PipelineConfig::CutThreshold {
                theta,
                data_mean,
                target_threshold,
                ..
            } => truth::cut_threshold(edges, out, *theta, *data_mean, *target_threshold, n),
        }
    }

    /// The θ at which the pipeline is evaluated.
    pub fn theta(&self) -> f64 {
        match &self.kind {
            PipelineConfig::GaussianShift { theta, .. }
            | PipelineConfig::CutThreshold { theta, .. } => *theta,
        }
    }

    /// The same pipeline evaluated at another θ (the target is unchanged).
    pub fn with_theta(&self, new_theta: f64) -> Self {
        let mut p = self.clone();
        match &mut p.kind {
            PipelineConfig::GaussianShift { theta, .. }
            | PipelineConfig::CutThreshold { theta, .. } => *theta = new_theta,
        }
        p
    }

    /// dL/dθ of one dataset with bandwidth `h`, through the bKDE and candle's autograd.
    pub fn gradient(&self, data: &Dataset, h: f64) -> Result<f64> {
        Ok(self.loss_and_gradient(data, h)?.1)
    }

    /// (L, dL/dθ) of one dataset with bandwidth `h`.
    pub fn loss_and_gradient(&self, data: &Dataset, h: f64) -> Result<(f64, f64)> {
        let n = data.len();
        if n == 0 {
            return Err(Error::InvalidInput(
                "a dataset needs at least one event".into(),
            ));
        }
        let dev = Device::Cpu;
        let z = Tensor::from_slice(&data.z, n, &dev)?;
        let opts = BkdeOptions::new(h).outside(outside(self.binning.outside));
        let (counts, theta) = match &self.kind {
            PipelineConfig::GaussianShift { theta, .. } => {
                let th = Var::new(&[*theta], &dev)?;
                let x = z.broadcast_add(th.as_tensor())?;
                let c = bkde(&x, None, &self.edges, &opts)?;
                (c, th)
            }
            PipelineConfig::CutThreshold {
                theta,
                data_mean,
                slope,
                ..
            } => {
                let th = Var::new(&[*theta], &dev)?;
                let x = (z + *data_mean)?;
                // 1.702/h: the logistic that matches Φ((x − θ)/h) to 0.01.
                let k = Tensor::new(&[slope.unwrap_or(1.702 / h)], &dev)?;
                let w = soft_cut(&x, th.as_tensor(), &k, Keep::Above)?;
                let c = bkde(&x, Some(&w), &self.edges, &opts)?;
                (c, th)
            }
        };
        let q = Tensor::from_slice(&self.target, self.target.len(), &dev)?;
        let diff = ((counts.to_dtype(DType::F64)? / n as f64)? - q)?;
        let loss = diff.sqr()?.sum_all()?;
        let grads = loss.backward()?;
        let g = grads
            .get(theta.as_tensor())
            .ok_or_else(|| Error::Op {
                op: "bandwidth-study",
                message: "the loss does not depend on θ (no gradient on the tape)".into(),
            })?
            .to_vec1::<f64>()?;
        Ok((loss.to_scalar::<f64>()?, g[0]))
    }
}
