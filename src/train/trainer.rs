//! The training state and one optimisation step: data, network, bin edges,
//! Adam, the objective, test-set evaluation with hard histograms, and
//! checkpoints that restore the state exactly.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::adam::{Adam, AdamParams};
use super::config::{Objective, Precision, TrainConfig};
use crate::grad::{
    asimov_significance, asimov_significance_host, bce, BceScores, Loss, LossKind, Template,
    YieldFloor,
};
use crate::infer::teststat::TestStat;
use crate::infer::{poi_interval, FitOptions, FitSetup, Likelihood};
use crate::nn::{Mlp, MlpConfig, Output};
use crate::ops::edges::LearnableEdges;
use crate::ops::hist::{bkde_multi, hard_hist, BkdeOptions, Outside};
use crate::toys::{Process, Role, ToyModel};
use crate::{Error, Result};

/// Test-set metrics at one step, all from hard histograms (bKDE bandwidth 0)
/// except the BCE values, which use the network scores. A metric whose fit
/// failed or whose value is undefined is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Expected CLs at μ = 1.
    pub cls: Option<f64>,
    /// Discovery significance √q0 on signal-plus-background Asimov data.
    pub z0: Option<f64>,
    /// σ_μ (Fisher information at μ = 1).
    pub sigma_mu: Option<f64>,
    /// Generalised variance 1/det I at μ = 1.
    pub generalised_variance: Option<f64>,
    /// Asimov significance Z_A (no systematics).
    pub z_asimov: Option<f64>,
    /// BCE, signal vs nominal background (sigmoid output only).
    pub bce: Option<f64>,
    /// BCE, signal vs nominal + variations (sigmoid output only).
    pub bce_aug: Option<f64>,
    /// σ_μ as the half-width of the profile-likelihood interval
    /// −2 ln λ(μ) ≤ 1 on the μ = 1 Asimov data of the toy's template
    /// ([`profile_sigma_mu`]); `None` where a fit or the interval fails.
    #[serde(default)]
    pub sigma_mu_profile: Option<f64>,
    /// Bin edges used (sigmoid output) or bin indices 0..=B (softmax).
    pub edges: Vec<f64>,
    /// Hard-histogram yields per process (rows in the toy's process order).
    pub yields: Vec<Vec<f64>>,
}

impl TestMetrics {
    /// The metric that ranks steps for `objective` (lower is better).
    pub fn rank_value(&self, objective: Objective) -> Option<f64> {
        match objective {
            Objective::Cls => self.cls,
            Objective::Discovery => self.z0.map(|z| -z),
            Objective::PoiUncert => self.sigma_mu,
            Objective::GeneralisedVariance => self.generalised_variance,
            Objective::ZAsimov => self.z_asimov.map(|z| -z),
            Objective::Bce => self.bce,
            Objective::BceAug => self.bce_aug,
        }
    }
}

/// One training step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step number, from 1.
    pub step: usize,
    /// Epoch (from 0) the step belongs to.
    pub epoch: usize,
    /// Training loss (bKDE histograms of the batch) before the update.
    pub loss: f64,
    /// Wall time of the step (forward, backward, update), seconds.
    pub step_seconds: f64,
    /// Test metrics after the update, where evaluated.
    pub test: Option<TestMetrics>,
}

/// The best evaluated step so far (by the objective's test metric).
#[derive(Debug, Clone)]
pub struct Best {
    /// Step number.
    pub step: usize,
    /// Its metrics.
    pub metrics: TestMetrics,
    /// Copies of the network weights at that step.
    pub weights: Vec<Tensor>,
}

/// Serialised part of a checkpoint (the tensors go to a safetensors file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointMeta {
    format: u32,
    config: TrainConfig,
    step: usize,
    adam_t: Vec<u64>,
    records: Vec<StepRecord>,
    best: Option<(usize, TestMetrics)>,
}

const CHECKPOINT_FORMAT: u32 = 1;

/// A training run in progress.
pub struct Trainer {
    cfg: TrainConfig,
    toy: Box<dyn ToyModel>,
    processes: Vec<Process>,
    device: Device,
    dtype: DType,
    /// Per process, training features (n_train × d).
    train: Vec<Tensor>,
    /// Per process, training weights (n_train), if the toy weights events.
    train_w: Option<Vec<Tensor>>,
    /// All processes' test features stacked ((P·n_test) × d).
    test: Tensor,
    test_w: Option<Tensor>,
    mlp: Mlp,
    edges: Option<LearnableEdges>,
    fixed_edges: Vec<f64>,
    input_procs: Vec<usize>,
    objective_loss: Option<Loss>,
    metric_losses: [Loss; 4],
    /// The analysis template (profile-likelihood evaluation).
    template: Template,
    floor: YieldFloor,
    adam: Adam,
    step: usize,
    perm_cache: Option<(usize, Vec<Tensor>)>,
    records: Vec<StepRecord>,
    best: Option<Best>,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent seeded streams: `stream` 0 data, 1 weights, 2+e epoch e.
fn stream(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix(splitmix(seed) ^ stream))
}

fn events_tensor(
    ev: &crate::toys::Events,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Option<Tensor>)> {
    let n = ev.len();
    let x = Tensor::from_vec(ev.features.clone(), (n, ev.n_features), device)?.to_dtype(dtype)?;
    let w = match &ev.weights {
        Some(w) => Some(Tensor::from_vec(w.clone(), n, device)?.to_dtype(dtype)?),
        None => None,
    };
    Ok((x, w))
}

/// Events of every process: sampled in process order from `rng`, except
/// those derived from another process's events ([`ToyModel::base_process`]),
/// which draw nothing.
fn sample_processes(
    toy: &dyn ToyModel,
    n_proc: usize,
    n: usize,
    rng: &mut StdRng,
) -> Result<Vec<crate::toys::Events>> {
    let mut out: Vec<crate::toys::Events> = Vec::with_capacity(n_proc);
    for p in 0..n_proc {
        let ev = match toy.base_process(p) {
            Some(b) if b < p && toy.base_process(b).is_none() => toy.derive(p, &out[b])?,
            Some(b) => {
                return Err(Error::InvalidInput(format!(
                    "toy '{}': process {p} is derived from process {b}, which must come \
                     before it and be sampled itself",
                    toy.name()
                )))
            }
            None => toy.sample(p, n, rng)?,
        };
        if ev.len() != n {
            return Err(Error::InvalidInput(format!(
                "toy '{}': process {p} has {} events, {n} were asked for",
                toy.name(),
                ev.len()
            )));
        }
        out.push(ev);
    }
    Ok(out)
}

impl Trainer {
    /// Builds the data (seeded), the network (seeded), the edges and the
    /// optimiser for `cfg` on `device`.
    pub fn new(cfg: &TrainConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        Self::with_toy(cfg, crate::toys::by_name(&cfg.toy.name)?, device)
    }

    /// Like [`Self::new`] with a toy of your own (`cfg.toy.name` is then
    /// only a label; checkpoints of such runs resume only through this
    /// constructor's toy, not [`Self::from_checkpoint`]).
    pub fn with_toy(cfg: &TrainConfig, toy: Box<dyn ToyModel>, device: &Device) -> Result<Self> {
        cfg.validate_values()?;
        let processes = toy.processes();
        let dtype = match cfg.precision {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        };
        let mut rng = stream(cfg.seed, 0);
        let (mut train, mut train_w, mut test, mut test_w) = (vec![], vec![], vec![], vec![]);
        let mut any_weights = false;
        for (n, xs, ws) in [
            (cfg.toy.n_train, &mut train, &mut train_w),
            (cfg.toy.n_test, &mut test, &mut test_w),
        ] {
            for ev in sample_processes(toy.as_ref(), processes.len(), n, &mut rng)? {
                any_weights |= ev.weights.is_some();
                let (x, w) = events_tensor(&ev, dtype, device)?;
                xs.push(x);
                ws.push(w);
            }
        }
        let ones = |n: usize| Tensor::ones(n, dtype, device);
        let train_w = if any_weights {
            Some(
                train_w
                    .into_iter()
                    .map(|w| w.map_or_else(|| ones(cfg.toy.n_train), Ok))
                    .collect::<candle_core::Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        let test_w = if any_weights {
            let ws = test_w
                .into_iter()
                .map(|w| w.map_or_else(|| ones(cfg.toy.n_test), Ok))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Some(Tensor::stack(&ws, 0)?)
        } else {
            None
        };
        let test = Tensor::cat(&test, 0)?;

        let h = &cfg.histogram;
        let out_units = match cfg.network.output {
            Output::Softmax => h.bins,
            _ => 1,
        };
        let mut sizes = vec![toy.n_features()];
        sizes.extend(&cfg.network.hidden);
        sizes.push(out_units);
        let mlp = Mlp::new(
            MlpConfig {
                sizes,
                activation: cfg.network.activation,
                output: cfg.network.output,
            },
            dtype,
            device,
            &mut stream(cfg.seed, 1),
        )?;
        let (lo, hi) = (h.range[0], h.range[1]);
        let fixed_edges: Vec<f64> = (0..=h.bins)
            .map(|b| lo + (hi - lo) * b as f64 / h.bins as f64)
            .collect();
        let edges = if h.learnable_edges && cfg.network.output == Output::Sigmoid {
            Some(LearnableEdges::uniform(lo, hi, h.bins, dtype, device)?)
        } else {
            None
        };

        let analysis = toy.analysis(h.bins)?;
        let floor = YieldFloor::Add(h.yield_floor);
        let template = toy.template(h.bins, floor)?;
        let input_procs = analysis.inputs.iter().map(|(p, _)| *p).collect();
        let cls_kind = LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::Qmu,
        };
        let objective_loss = match cfg.training.objective {
            Objective::Cls => Some(cls_kind),
            Objective::Discovery => Some(LossKind::P0),
            Objective::PoiUncert => Some(LossKind::SigmaMu { hyp_mu: 1.0 }),
            Objective::GeneralisedVariance => Some(LossKind::GeneralisedVariance { hyp_mu: 1.0 }),
            _ => None,
        }
        .map(|k| Loss::new(template.clone(), k));
        let metric_losses = [
            Loss::new(template.clone(), cls_kind),
            Loss::new(template.clone(), LossKind::Z0),
            Loss::new(template.clone(), LossKind::SigmaMu { hyp_mu: 1.0 }),
            Loss::new(
                template.clone(),
                LossKind::GeneralisedVariance { hyp_mu: 1.0 },
            ),
        ];

        let o = &cfg.optimizer;
        let mut vars: Vec<_> = mlp.vars().into_iter().map(|v| (v, o.lr)).collect();
        if let Some(e) = &edges {
            vars.push((e.var().clone(), o.edges_lr.unwrap_or(o.lr)));
        }
        let adam = Adam::new(
            vars,
            AdamParams {
                beta1: o.beta1,
                beta2: o.beta2,
                eps: o.eps,
            },
        )?;
        Ok(Trainer {
            cfg: cfg.clone(),
            toy,
            processes,
            device: device.clone(),
            dtype,
            train,
            train_w,
            test,
            test_w,
            mlp,
            edges,
            fixed_edges,
            input_procs,
            objective_loss,
            metric_losses,
            template,
            floor,
            adam,
            step: 0,
            perm_cache: None,
            records: Vec::new(),
            best: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The toy.
    pub fn toy(&self) -> &dyn ToyModel {
        self.toy.as_ref()
    }

    /// The network.
    pub fn network(&self) -> &Mlp {
        &self.mlp
    }

    /// Steps done.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Whether every configured step is done.
    pub fn finished(&self) -> bool {
        self.step >= self.cfg.total_steps()
    }

    /// Every step's record so far.
    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    /// The best evaluated step so far.
    pub fn best(&self) -> Option<&Best> {
        self.best.as_ref()
    }

    /// Current bin edges (host values).
    pub fn edges(&self) -> Result<Vec<f64>> {
        match (&self.edges, self.cfg.network.output) {
            (Some(e), _) => e.to_vec(),
            (None, Output::Softmax) => {
                Ok((0..=self.cfg.histogram.bins).map(|b| b as f64).collect())
            }
            (None, _) => Ok(self.fixed_edges.clone()),
        }
    }

    fn edges_tensor(&self) -> Result<Tensor> {
        match &self.edges {
            Some(e) => e.edges(),
            None => {
                Ok(Tensor::new(self.fixed_edges.as_slice(), &self.device)?.to_dtype(self.dtype)?)
            }
        }
    }

    /// Per-process index tensors of epoch `epoch` (a seeded shuffle).
    fn permutation(&mut self, epoch: usize) -> Result<Vec<Tensor>> {
        if let Some((e, p)) = &self.perm_cache {
            if *e == epoch {
                return Ok(p.clone());
            }
        }
        let mut rng = stream(self.cfg.seed, 2 + epoch as u64);
        let n = self.cfg.toy.n_train;
        let mut out: Vec<Tensor> = Vec::with_capacity(self.processes.len());
        for p in 0..self.processes.len() {
            // derived events are batched in their base's order
            if let Some(b) = self.toy.base_process(p).filter(|&b| b < p) {
                out.push(out[b].clone());
                continue;
            }
            let mut idx: Vec<u32> = (0..n as u32).collect();
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                idx.swap(i, j);
            }
            out.push(Tensor::from_vec(idx, n, &self.device)?);
        }
        self.perm_cache = Some((epoch, out.clone()));
        Ok(out)
    }

    /// Network summaries of `x`: (P·n) × units → (P, n) or (P, n, units).
    fn summaries(&self, x: &Tensor, n_proc: usize, n: usize) -> Result<Tensor> {
        let tau = self.cfg.histogram.temperature;
        let out = if self.cfg.network.output == Output::Softmax && tau != 1.0 {
            // softmax(logits / τ) (INFERNO)
            let z = self.mlp.logits(x)?.affine(1.0 / tau, 0.0)?;
            candle_nn::ops::softmax(&z, candle_core::D::Minus1)?
        } else {
            self.mlp.forward(x)?
        };
        Ok(match self.cfg.network.output {
            Output::Softmax => out.reshape((n_proc, n, self.cfg.histogram.bins))?,
            _ => out.reshape((n_proc, n))?,
        })
    }

    /// Soft histograms (P × B) of summaries for training, scaled to yields.
    fn soft_yields(&self, s: &Tensor, w: Option<&Tensor>, n: usize) -> Result<Tensor> {
        let counts = match self.cfg.network.output {
            Output::Softmax => match w {
                Some(w) => s.broadcast_mul(&w.unsqueeze(2)?)?.sum(1)?,
                None => s.sum(1)?,
            },
            _ => {
                let opts = BkdeOptions::new(self.cfg.histogram.bandwidth);
                bkde_multi(s, w, &self.edges_tensor()?, &opts)?
            }
        };
        self.scale_counts(&counts, n)
    }

    fn scale_counts(&self, counts: &Tensor, n: usize) -> Result<Tensor> {
        let scale: Vec<f64> = self
            .processes
            .iter()
            .map(|p| p.yield_scale / n as f64)
            .collect();
        let scale = Tensor::from_vec(scale, (self.processes.len(), 1), counts.device())?
            .to_dtype(counts.dtype())?;
        Ok(counts.broadcast_mul(&scale)?)
    }

    fn role_rows(&self, role: Role) -> Vec<usize> {
        self.processes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == role)
            .map(|(i, _)| i)
            .collect()
    }

    fn bce_of(&self, scores: &Tensor, aug: bool) -> Result<Tensor> {
        let sig = self.role_rows(Role::Signal);
        let mut bkg = self.role_rows(Role::Background);
        if aug {
            bkg.extend(self.role_rows(Role::Variation));
        }
        if sig.is_empty() || bkg.is_empty() {
            return Err(Error::InvalidInput(format!(
                "toy '{}': BCE needs a signal and a background process",
                self.toy.name()
            )));
        }
        let rows = |ix: &[usize]| -> Result<Tensor> {
            let t: Vec<Tensor> = ix
                .iter()
                .map(|&i| scores.get(i))
                .collect::<candle_core::Result<_>>()?;
            Ok(Tensor::cat(&t, 0)?)
        };
        let s = rows(&sig)?;
        let bs: Vec<Tensor> = bkg
            .iter()
            .map(|&i| scores.get(i))
            .collect::<candle_core::Result<_>>()?;
        let refs: Vec<&Tensor> = bs.iter().collect();
        bce(&s, &refs, BceScores::Probabilities)
    }

    fn signal_background(&self, yields: &Tensor) -> Result<(Tensor, Tensor)> {
        let sig = self.role_rows(Role::Signal);
        let bkg = self.role_rows(Role::Background);
        if sig.is_empty() || bkg.is_empty() {
            return Err(Error::InvalidInput(format!(
                "toy '{}': Z_A needs a signal and a background process",
                self.toy.name()
            )));
        }
        let sum = |ix: &[usize]| -> Result<Tensor> {
            let t: Vec<Tensor> = ix
                .iter()
                .map(|&i| yields.get(i))
                .collect::<candle_core::Result<_>>()?;
            Ok(Tensor::stack(&t, 0)?.sum(0)?)
        };
        Ok((sum(&sig)?, sum(&bkg)?))
    }

    /// The training loss of one batch (on the tape).
    fn batch_loss(&self, x: &Tensor, w: Option<&Tensor>, n: usize) -> Result<Tensor> {
        let p = self.processes.len();
        let s = self.summaries(x, p, n)?;
        let objective = self.cfg.training.objective;
        if objective.is_bce() {
            return self.bce_of(&s, objective == Objective::BceAug);
        }
        let yields = self.soft_yields(&s, w, n)?;
        if objective == Objective::ZAsimov {
            let (sig, bkg) = self.signal_background(&yields)?;
            return Ok(asimov_significance(&sig, &bkg, self.floor)?.neg()?);
        }
        let loss = self.objective_loss.as_ref().ok_or_else(|| {
            Error::InvalidInput(format!("no loss for objective {}", objective.name()))
        })?;
        let rows: Vec<Tensor> = self
            .input_procs
            .iter()
            .map(|&i| yields.get(i))
            .collect::<candle_core::Result<_>>()?;
        let refs: Vec<&Tensor> = rows.iter().collect();
        loss.forward(&refs).map_err(|e| match e {
            Error::FitFailed { context, message } => Error::FitFailed {
                context: format!("training step {}: {context}", self.step + 1),
                message,
            },
            other => other,
        })
    }

    /// One optimisation step; returns the batch loss before the update.
    pub fn train_step(&mut self) -> Result<f64> {
        let spe = self.cfg.steps_per_epoch();
        let epoch = self.step / spe;
        let k = self.step % spe;
        let b = self.cfg.training.batch_size;
        let t0 = Instant::now();
        let perm = self.permutation(epoch)?;
        let mut xs = Vec::with_capacity(perm.len());
        let mut ws = Vec::new();
        for (p, idx) in perm.iter().enumerate() {
            let ix = idx.narrow(0, k * b, b)?;
            xs.push(self.train[p].index_select(&ix, 0)?);
            if let Some(tw) = &self.train_w {
                ws.push(tw[p].index_select(&ix, 0)?);
            }
        }
        let x = Tensor::cat(&xs, 0)?;
        let w = if ws.is_empty() {
            None
        } else {
            Some(Tensor::stack(&ws, 0)?)
        };
        let loss = self.batch_loss(&x, w.as_ref(), b)?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(Error::InvalidInput(format!(
                "training step {}: the loss is {value}",
                self.step + 1
            )));
        }
        let grads = loss.backward()?;
        self.adam.step(&grads)?;
        self.step += 1;
        let secs = t0.elapsed().as_secs_f64();
        let eval = self.step.is_multiple_of(self.cfg.eval_interval()) || self.finished();
        let test = if eval { Some(self.evaluate()?) } else { None };
        if let Some(m) = &test {
            let obj = self.cfg.training.objective;
            if let Some(v) = m.rank_value(obj) {
                let better = match &self.best {
                    Some(bst) => bst.metrics.rank_value(obj).is_none_or(|old| v < old),
                    None => true,
                };
                if better {
                    let weights = self
                        .mlp
                        .vars()
                        .iter()
                        .map(|v| v.as_tensor().copy())
                        .collect::<candle_core::Result<_>>()?;
                    self.best = Some(Best {
                        step: self.step,
                        metrics: m.clone(),
                        weights,
                    });
                }
            }
        }
        self.records.push(StepRecord {
            step: self.step,
            epoch,
            loss: value,
            step_seconds: secs,
            test,
        });
        Ok(value)
    }

    /// Network outputs on the test set: (P, n_test) or (P, n_test, B).
    pub fn test_summaries(&self) -> Result<Tensor> {
        let s = self.summaries(&self.test, self.processes.len(), self.cfg.toy.n_test)?;
        Ok(s.detach())
    }

    /// The first `k` test events of each process as (feature 0, feature 1).
    pub fn test_points(&self, k: usize) -> Result<Vec<Vec<(f64, f64)>>> {
        let n = self.cfg.toy.n_test;
        let k = k.min(n);
        let d = self.toy.n_features();
        let mut out = Vec::with_capacity(self.processes.len());
        for p in 0..self.processes.len() {
            let rows = self
                .test
                .narrow(0, p * n, k)?
                .to_dtype(DType::F64)?
                .to_vec2::<f64>()?;
            out.push(
                rows.iter()
                    .map(|r| (r[0], if d > 1 { r[1] } else { 0.0 }))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// Test metrics at the current weights (hard histograms).
    pub fn evaluate(&self) -> Result<TestMetrics> {
        let n = self.cfg.toy.n_test;
        let s = self.test_summaries()?;
        let edges = self.edges()?;
        let counts = match self.cfg.network.output {
            Output::Softmax => {
                let probs = s.to_dtype(DType::F64)?.to_vec3::<f64>()?;
                let w: Option<Vec<Vec<f64>>> = match &self.test_w {
                    Some(w) => Some(w.to_dtype(DType::F64)?.to_vec2()?),
                    None => None,
                };
                let nb = self.cfg.histogram.bins;
                let mut c = vec![0.0; probs.len() * nb];
                for (p, rows) in probs.iter().enumerate() {
                    for (i, r) in rows.iter().enumerate() {
                        let arg = r
                            .iter()
                            .enumerate()
                            .fold(
                                (0, f64::NEG_INFINITY),
                                |a, (j, &v)| if v > a.1 { (j, v) } else { a },
                            )
                            .0;
                        c[p * nb + arg] += w.as_ref().map_or(1.0, |w| w[p][i]);
                    }
                }
                Tensor::from_vec(c, (probs.len(), nb), &Device::Cpu)?
            }
            _ => {
                let e = Tensor::new(edges.as_slice(), s.device())?.to_dtype(s.dtype())?;
                hard_hist(&s, self.test_w.as_ref(), &e, Outside::Drop)?.0
            }
        };
        let yields_t = self.scale_counts(&counts.to_dtype(DType::F64)?, n)?;
        let yields: Vec<Vec<f64>> = yields_t.to_vec2()?;
        let values: Vec<f64> = self
            .input_procs
            .iter()
            .flat_map(|&i| yields[i].iter().copied())
            .collect();
        let metric = |l: &Loss| -> Option<f64> {
            l.evaluate(&values, false)
                .ok()
                .map(|v| v.value)
                .filter(|v| v.is_finite())
        };
        let z_asimov = {
            let sig = self.role_rows(Role::Signal);
            let bkg = self.role_rows(Role::Background);
            let nb = yields.first().map_or(0, |r| r.len());
            let sum = |ix: &[usize]| -> Vec<f64> {
                (0..nb)
                    .map(|b| ix.iter().map(|&i| yields[i][b]).sum())
                    .collect()
            };
            if sig.is_empty() || bkg.is_empty() {
                None
            } else {
                asimov_significance_host(&sum(&sig), &sum(&bkg), self.floor, false)
                    .ok()
                    .map(|v| v.0)
            }
        };
        let (bce_v, bce_aug) = if self.cfg.network.output == Output::Sigmoid {
            let f = |aug| -> Option<f64> {
                self.bce_of(&s, aug)
                    .and_then(|t| Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?))
                    .ok()
            };
            (f(false), f(true))
        } else {
            (None, None)
        };
        Ok(TestMetrics {
            cls: metric(&self.metric_losses[0]),
            z0: metric(&self.metric_losses[1]),
            sigma_mu: metric(&self.metric_losses[2]),
            generalised_variance: metric(&self.metric_losses[3]),
            z_asimov,
            bce: bce_v,
            bce_aug,
            sigma_mu_profile: profile_sigma_mu(&self.template, &values).ok(),
            edges,
            yields,
        })
    }

    /// Writes `<stem>.json` (configuration, step, records, best step) and
    /// `<stem>.safetensors` (variables, Adam moments, best weights) into `dir`.
    pub fn save_checkpoint(&self, dir: &Path, stem: &str) -> Result<()> {
        let (t, m, v) = self.adam.state();
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (i, var) in self.adam.vars().iter().enumerate() {
            tensors.insert(format!("var.{i}"), var.as_tensor().to_device(&Device::Cpu)?);
            tensors.insert(format!("m.{i}"), m[i].to_device(&Device::Cpu)?);
            tensors.insert(format!("v.{i}"), v[i].to_device(&Device::Cpu)?);
        }
        if let Some(b) = &self.best {
            for (i, w) in b.weights.iter().enumerate() {
                tensors.insert(format!("best.{i}"), w.to_device(&Device::Cpu)?);
            }
        }
        let st = dir.join(format!("{stem}.safetensors"));
        candle_core::safetensors::save(&tensors, &st)?;
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT,
            config: self.cfg.clone(),
            step: self.step,
            adam_t: t,
            records: self.records.clone(),
            best: self.best.as_ref().map(|b| (b.step, b.metrics.clone())),
        };
        super::output::write_json(&dir.join(format!("{stem}.json")), &meta)
    }

    /// Restores a run from a checkpoint written by [`Self::save_checkpoint`]
    /// (`json` is the `.json` file; the `.safetensors` file sits next to it).
    pub fn from_checkpoint(json: &Path, device: &Device) -> Result<Self> {
        let text = std::fs::read_to_string(json).map_err(|source| Error::Io {
            path: json.display().to_string(),
            source,
        })?;
        let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|source| Error::Json {
            context: json.display().to_string(),
            source,
        })?;
        if meta.format != CHECKPOINT_FORMAT {
            return Err(Error::InvalidInput(format!(
                "{}: checkpoint format {} (this build reads {CHECKPOINT_FORMAT})",
                json.display(),
                meta.format
            )));
        }
        let mut tr = Trainer::new(&meta.config, device)?;
        let st = json.with_extension("safetensors");
        let mut map = candle_core::safetensors::load(&st, device)?;
        let mut take = |k: String| -> Result<Tensor> {
            map.remove(&k).ok_or_else(|| {
                Error::InvalidInput(format!("{}: tensor '{k}' missing", st.display()))
            })
        };
        let n = tr.adam.vars().len();
        let (mut ms, mut vs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let var = &tr.adam.vars()[i];
            let val = take(format!("var.{i}"))?;
            if val.dims() != var.dims() {
                return Err(Error::InvalidInput(format!(
                    "{}: variable {i} has shape {:?}, the configured network needs {:?}",
                    st.display(),
                    val.dims(),
                    var.dims()
                )));
            }
            var.set(&val.to_dtype(var.dtype())?)?;
            ms.push(take(format!("m.{i}"))?);
            vs.push(take(format!("v.{i}"))?);
        }
        tr.adam.set_state(meta.adam_t, ms, vs)?;
        if let Some((step, metrics)) = meta.best {
            let k = tr.mlp.vars().len();
            let weights = (0..k)
                .map(|i| take(format!("best.{i}")))
                .collect::<Result<Vec<_>>>()?;
            tr.best = Some(Best {
                step,
                metrics,
                weights,
            });
        }
        tr.step = meta.step;
        tr.records = meta.records;
        Ok(tr)
    }

    /// Evaluates `f` with the best step's weights loaded, then restores the
    /// current ones.
    pub fn with_best_weights<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        let Some(best) = &self.best else {
            return f(self);
        };
        let current: Vec<Tensor> = self
            .mlp
            .vars()
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?;
        self.mlp.set_values(&best.weights)?;
        let out = f(self);
        self.mlp.set_values(&current)?;
        out
    }

    /// The network's output on a grid over features 0 and 1 (2-D toys):
    /// `nx × ny` values (row-major in y then x) of the first output unit,
    /// or of the argmax bin for a softmax output.
    pub fn grid_output(
        &self,
        x: (f64, f64),
        y: (f64, f64),
        nx: usize,
        ny: usize,
    ) -> Result<Vec<f64>> {
        if self.toy.n_features() != 2 {
            return Err(Error::InvalidInput(
                "grid_output needs a 2-feature toy".into(),
            ));
        }
        let mut pts = Vec::with_capacity(2 * nx * ny);
        for j in 0..ny {
            for i in 0..nx {
                pts.push(x.0 + (x.1 - x.0) * (i as f64 + 0.5) / nx as f64);
                pts.push(y.0 + (y.1 - y.0) * (j as f64 + 0.5) / ny as f64);
            }
        }
        let t = Tensor::from_vec(pts, (nx * ny, 2), &self.device)?.to_dtype(self.dtype)?;
        let out = self.mlp.forward(&t)?.detach().to_dtype(DType::F64)?;
        Ok(match self.cfg.network.output {
            Output::Softmax => out.argmax(1)?.to_dtype(DType::F64)?.to_vec1()?,
            _ => out.flatten_all()?.to_vec1()?,
        })
    }
}

/// Half-width of the profile-likelihood interval −2 ln λ(μ) ≤ 1 on the μ = 1
/// Asimov data of `template` at `values` (every point a global fit); an
/// interval that reaches a bound of μ is an error.
pub fn profile_sigma_mu(template: &Template, values: &[f64]) -> Result<f64> {
    let inst = template.instantiate(values)?;
    let model = &inst.model;
    let poi = model
        .poi_index()
        .ok_or_else(|| Error::InvalidInput("the analysis has no POI".into()))?;
    let mut pars = model.init();
    pars[poi] = 1.0;
    let data = model.expected_data(&pars)?;
    let setup = FitSetup::from_model(model);
    let iv = poi_interval(model, &data, &setup, &FitOptions::default(), 1.0)?;
    if iv.lo_at_bound || iv.hi_at_bound {
        return Err(Error::InvalidInput(
            "the profile interval reaches a bound of the POI".into(),
        ));
    }
    Ok(iv.half_width())
}
