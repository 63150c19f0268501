//! The pipelines a study can differentiate: per dataset, dL/dθ through the
//! bKDE (candle autograd, f64), and the exact gradient of the expected
//! hard-histogram loss that it estimates (for `cut-z0`: the gradient of
//! Z0 at the expected hard yields, the N → ∞ objective).

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::config::{Binning, OutsideMode, PipelineConfig, StudyConfig};
use super::truth;
use crate::grad::{InputSel, Loss, LossKind, Template, YieldFloor};
use crate::hf::{ModelOptions, Workspace};
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
    /// Target bin fractions q_b (empty for `cut-z0`, which has none).
    target: Vec<f64>,
    /// The statistical objective of `cut-z0`.
    z0: Option<Loss>,
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
            PipelineConfig::CutZ0 { .. } => Vec::new(),
        };
        let z0 = match &cfg.pipeline {
            PipelineConfig::CutZ0 { .. } => Some(z0_loss(cfg.binning.bins)?),
            _ => None,
        };
        Ok(Self {
            kind: cfg.pipeline.clone(),
            binning: cfg.binning.clone(),
            edges,
            edges_host,
            target,
            z0,
        })
    }

    /// The target bin fractions q_b.
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// How [`Pipeline::truth`] is obtained.
    pub fn truth_method(&self) -> &'static str {
        match self.kind {
            PipelineConfig::CutZ0 { .. } => {
                "analytic d Z0(E[hard yields])/dθ (the N → ∞ objective; exact dZ0/dyields from grad::Loss, fits converged); at finite N, E[Z0(hard yields)] differs by O(1/N)"
            }
            _ => "analytic d E[L_hard]/dθ (multinomial moments of the hard histogram)",
        }
    }

    /// (E[L_hard], d E[L_hard]/dθ) at sample size `n`, exact; for `cut-z0`
    /// (Z0, dZ0/dθ) at the expected hard yields, independent of `n`.
    pub fn truth(&self, n: usize) -> Result<(f64, f64)> {
        let (edges, out) = (&self.edges_host, self.binning.outside);
        Ok(match &self.kind {
            PipelineConfig::GaussianShift { theta, target_mean } => {
                truth::gaussian_shift(edges, out, *theta, *target_mean, n)
            }
            PipelineConfig::CutThreshold {
                theta,
                data_mean,
                target_threshold,
                ..
            } => truth::cut_threshold(edges, out, *theta, *data_mean, *target_threshold, n),
            PipelineConfig::CutZ0 {
                theta,
                signal_mean,
                background_mean,
                signal_yield,
                background_yield,
                ..
            } => {
                let (s, ds) = truth::cut_yields(edges, out, *theta, *signal_mean, *signal_yield);
                let (b, db) =
                    truth::cut_yields(edges, out, *theta, *background_mean, *background_yield);
                let values: Vec<f64> = s.iter().chain(&b).copied().collect();
                let dy: Vec<f64> = ds.iter().chain(&db).copied().collect();
                let v = self.z0_loss()?.evaluate(&values, true)?;
                let g = v.grad.as_deref().unwrap_or(&[]);
                (v.value, g.iter().zip(&dy).map(|(g, d)| g * d).sum())
            }
        })
    }

    fn z0_loss(&self) -> Result<&Loss> {
        self.z0.as_ref().ok_or_else(|| Error::Op {
            op: "bandwidth-study",
            message: "cut-z0 pipeline built without its Z0 loss".into(),
        })
    }

    /// The θ at which the pipeline is evaluated.
    pub fn theta(&self) -> f64 {
        match &self.kind {
            PipelineConfig::GaussianShift { theta, .. }
            | PipelineConfig::CutThreshold { theta, .. }
            | PipelineConfig::CutZ0 { theta, .. } => *theta,
        }
    }

    /// The same pipeline evaluated at another θ (the target is unchanged).
    pub fn with_theta(&self, new_theta: f64) -> Self {
        let mut p = self.clone();
        match &mut p.kind {
            PipelineConfig::GaussianShift { theta, .. }
            | PipelineConfig::CutThreshold { theta, .. }
            | PipelineConfig::CutZ0 { theta, .. } => *theta = new_theta,
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
            PipelineConfig::CutZ0 {
                theta,
                signal_mean,
                background_mean,
                signal_yield,
                background_yield,
                slope,
            } => {
                if n < 2 {
                    return Err(Error::InvalidInput(
                        "the cut-z0 pipeline needs at least 2 events (signal and background)"
                            .into(),
                    ));
                }
                let th = Var::new(&[*theta], &dev)?;
                let k = Tensor::new(&[slope.unwrap_or(1.702 / h)], &dev)?;
                let ns = n / 2;
                let mut yields = Vec::with_capacity(2);
                for (zs, mean, total) in [
                    (z.narrow(0, 0, ns)?, *signal_mean, *signal_yield),
                    (
                        z.narrow(0, ns, n - ns)?,
                        *background_mean,
                        *background_yield,
                    ),
                ] {
                    let len = zs.elem_count();
                    let x = (zs + mean)?;
                    let w = soft_cut(&x, th.as_tensor(), &k, Keep::Above)?;
                    let c = bkde(&x, Some(&w), &self.edges, &opts)?;
                    yields.push((c.to_dtype(DType::F64)? * (total / len as f64))?);
                }
                let loss = self.z0_loss()?.forward(&[&yields[0], &yields[1]])?;
                return Ok((loss.to_scalar::<f64>()?, theta_grad(&loss, &th)?));
            }
        };
        let q = Tensor::from_slice(&self.target, self.target.len(), &dev)?;
        let diff = ((counts.to_dtype(DType::F64)? / n as f64)? - q)?;
        let loss = diff.sqr()?.sum_all()?;
        Ok((loss.to_scalar::<f64>()?, theta_grad(&loss, &theta)?))
    }
}

/// dL/dθ of a scalar loss on the tape of θ.
fn theta_grad(loss: &Tensor, theta: &Var) -> Result<f64> {
    let grads = loss.backward()?;
    let g = grads
        .get(theta.as_tensor())
        .ok_or_else(|| Error::Op {
            op: "bandwidth-study",
            message: "the loss does not depend on θ (no gradient on the tape)".into(),
        })?
        .to_vec1::<f64>()?;
    g.first().copied().ok_or_else(|| Error::Op {
        op: "bandwidth-study",
        message: "empty gradient for θ".into(),
    })
}

/// Discovery Z0 of a one-channel model, signal (normfactor μ, pyhf's default
/// bounds) plus background, over `bins` bins, with the signal and background
/// yields as the template's inputs (floored by +1e-3 as in neos, since bins
/// below the cut are ~empty).
fn z0_loss(bins: usize) -> Result<Loss> {
    let ones = vec![1.0; bins];
    let ws = Workspace::from_value(&serde_json::json!({
        "channels": [{"name": "SR", "samples": [
            {"name": "signal", "data": ones,
             "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "background", "data": ones, "modifiers": []}]}],
        "observations": [{"name": "SR", "data": ones}],
        "measurements": [{"name": "cut-z0", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))?;
    let template = Template::from_workspace(&ws, &ModelOptions::default())?
        .with_floor(YieldFloor::NEOS)
        .with_input(InputSel::nominal("SR", "signal"))?
        .with_input(InputSel::nominal("SR", "background"))?;
    Ok(Loss::new(template, LossKind::Z0))
}
