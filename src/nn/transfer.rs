//! Neural transfer function (issue 11, item 4): the pass/fail transfer
//! factor's shape is an MLP over the bins' scaled coordinates,
//! `TF_MC(u, v; φ) = exp(f(u, v; φ) − mean_b f)`, fed into the model as the
//! `mc` input of a `transferfactor` of order 0 whose single coefficient
//! `NAME[0]` stays a free normalisation in the fit (DeepTransfer's split of
//! shape and normalisation; the centring removes the network's own flat
//! direction).
//!
//! * [`NeuralTf`]: the network and the coordinates it is evaluated at.
//! * [`NeuralTransfer`]: a workspace with such a transferfactor; trains φ by
//!   maximum profile likelihood (Adam on `grad::LossKind::ObservedNll`,
//!   whose envelope-theorem gradient reaches φ through candle's backward),
//!   with early stopping on held-out data made by binomial thinning, and an
//!   ensemble over seeds and thinning splits for the shape uncertainty.
//! * [`PassPrediction`]: the post-fit background of a channel per bin with
//!   its profile-fit uncertainty (delta method), usable with any fit (also a
//!   polynomial transfer factor's, for comparisons).
//!
//! Held-out data: every observed count is split as `n_train ~ Binomial(n,
//! f)`, `n_val = n − n_train`; for Poisson `n` the two are independent
//! Poisson counts with means `f λ` and `(1 − f) λ`. The training and
//! validation models are the workspace with every sample's templates
//! (nominal, histosys, absolute shapesys/staterror uncertainties) scaled by
//! `f` and `1 − f`, so their parameters mean the same as in the full model.
//! Early stopping keeps the weights of the epoch with the lowest validation
//! profile `−2 ln L` (the fail yields, normalisation and POI profiled on the
//! validation data, the shape from training).
//!
//! Uncertainty: each ensemble member is trained on its own thinning split
//! (with `f = 1/2` the spread of thinned-data estimates around their mean
//! reproduces, to first order, the sampling variance of the full-data
//! estimate: the half-sample bootstrap) from its own initial weights. Every
//! member's shape is then used in a fit to the full data; the spread of their
//! predictions is the shape uncertainty, added in quadrature to the profile
//! uncertainty of the fit with the ensemble's (geometric-mean) shape. Why not
//! a Laplace approximation: an early-stopped network is not at a mode of the
//! profile likelihood, the Hessian over a few hundred weights with tens of
//! bins is singular, and the profile Hessian w.r.t. φ would need second
//! derivatives through the inner fits; an ensemble needs none of that, sees
//! multi-modality and data fluctuations, and its members are independent.

use candle_core::{DType, Device, Tensor, Var};
use num_dual::Dual64;
use rand::Rng;
use rand_distr::{Binomial, Distribution};

use super::{Activation, Mlp, MlpConfig, Output};
use crate::grad::{InputSel, Loss, LossKind, Template};
use crate::hf::modifiers::transfer::Form;
use crate::hf::{Model, ModelOptions, ModifierData, Workspace};
use crate::infer::fit::{fixed_poi_fit, minimize, FitOptions, FitResult, FitSetup};
use crate::infer::Likelihood;
use crate::train::adam::{Adam, AdamParams};
use crate::{Error, Result};

/// Settings of a neural transfer-function fit.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuralTfConfig {
    /// Hidden-layer widths (input: the number of coordinate axes; output: 1).
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// The output layer's initial weights are Glorot draws times this
    /// (small: the fit starts near a flat TF).
    pub output_init_scale: f64,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Maximum number of Adam steps.
    pub max_epochs: usize,
    /// Stop after this many steps without a validation improvement.
    pub patience: usize,
    /// A validation `−2 ln L` must drop by more than this to count.
    pub min_delta: f64,
    /// Fraction `f` of the counts for training (binomial thinning); `1`
    /// trains on all data for `max_epochs` steps without validation.
    pub train_fraction: f64,
    /// Number of ensemble members (each its own initial weights and split).
    pub members: usize,
    /// POI fixed at this value in every fit, or free (`None`).
    pub poi: Option<f64>,
    /// Inner-fit options.
    pub fit: FitOptions,
}

impl Default for NeuralTfConfig {
    fn default() -> Self {
        NeuralTfConfig {
            hidden: vec![16, 16],
            activation: Activation::Tanh,
            output_init_scale: 0.1,
            learning_rate: 0.02,
            max_epochs: 300,
            patience: 30,
            min_delta: 1e-4,
            train_fraction: 0.5,
            members: 4,
            poi: None,
            fit: FitOptions::default(),
        }
    }
}

impl NeuralTfConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(Error::Config {
                key: format!("neural_tf.{key}"),
                message,
            })
        };
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return bad(&format!("hidden[{i}]"), "layer widths must be > 0".into());
        }
        if !(self.output_init_scale.is_finite() && self.output_init_scale >= 0.0) {
            return bad(
                "output_init_scale",
                format!("must be finite and ≥ 0, found {}", self.output_init_scale),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                format!("must be finite and > 0, found {}", self.learning_rate),
            );
        }
        if !(self.train_fraction > 0.0 && self.train_fraction <= 1.0) {
            return bad(
                "train_fraction",
                format!("must lie in (0, 1], found {}", self.train_fraction),
            );
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return bad(
                "min_delta",
                format!("must be finite and ≥ 0, found {}", self.min_delta),
            );
        }
        if self.members == 0 {
            return bad("members", "need at least one ensemble member".into());
        }
        if self.poi.is_some_and(|p| !p.is_finite()) {
            return bad("poi", "must be finite".into());
        }
        Ok(())
    }
}

/// An MLP transfer-function shape at fixed bin coordinates.
#[derive(Debug, Clone)]
pub struct NeuralTf {
    mlp: Mlp,
    /// `(n_bins, n_axes)` inputs `2u − 1`.
    x: Tensor,
    n_bins: usize,
}

impl NeuralTf {
    /// A network over `coords` (per bin, the coordinates scaled to `[0, 1]`,
    /// one per axis), f64 on the CPU, weights drawn from `rng`.
    pub fn new(coords: &[Vec<f64>], config: &NeuralTfConfig, rng: &mut dyn Rng) -> Result<Self> {
        config.validate()?;
        let d = coords.first().map_or(0, Vec::len);
        if coords.is_empty() || d == 0 {
            return Err(Error::InvalidInput(
                "neural TF: no bin coordinates (need at least one bin with one axis)".into(),
            ));
        }
        let mut flat = Vec::with_capacity(coords.len() * d);
        for (b, c) in coords.iter().enumerate() {
            if c.len() != d {
                return Err(Error::InvalidInput(format!(
                    "neural TF: coordinates[{b}] has {} values, bin 0 has {d}",
                    c.len()
                )));
            }
            for (a, &u) in c.iter().enumerate() {
                if !u.is_finite() {
                    return Err(Error::InvalidInput(format!(
                        "neural TF: coordinates[{b}][{a}] is {u}"
                    )));
                }
                flat.push(2.0 * u - 1.0);
            }
        }
        let mut sizes = vec![d];
        sizes.extend(&config.hidden);
        sizes.push(1);
        let mlp = Mlp::new(
            MlpConfig {
                sizes,
                activation: config.activation,
                output: Output::Linear,
            },
            DType::F64,
            &Device::Cpu,
            rng,
        )?;
        if let Some(last) = mlp.layers().last() {
            last.w
                .set(&(last.w.as_tensor() * config.output_init_scale)?)?;
        }
        let x = Tensor::from_vec(flat, (coords.len(), d), &Device::Cpu)?;
        Ok(NeuralTf {
            mlp,
            x,
            n_bins: coords.len(),
        })
    }

    /// The network.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// Centred log shape `f_b − mean f`, shape `(n_bins,)`, on the tape.
    pub fn log_tf(&self) -> Result<Tensor> {
        let f = self.mlp.forward(&self.x)?.flatten_all()?;
        let m = f.mean_all()?;
        Ok(f.broadcast_sub(&m)?)
    }

    /// `TF_MC = exp(log_tf)`, shape `(n_bins,)`, on the tape.
    pub fn tf_mc(&self) -> Result<Tensor> {
        Ok(self.log_tf()?.exp()?)
    }

    /// [`Self::tf_mc`] as host values.
    pub fn tf_mc_values(&self) -> Result<Vec<f64>> {
        Ok(self.tf_mc()?.to_vec1::<f64>()?)
    }

    /// The variables the fit moves: every weight and bias except the output
    /// bias (the centring makes the TF independent of it).
    pub fn trainable(&self) -> Vec<Var> {
        let mut v = self.mlp.vars();
        v.pop();
        v
    }

    /// Deep copies of every variable's value (see [`Self::restore`]).
    pub fn snapshot(&self) -> Result<Vec<Tensor>> {
        self.mlp
            .vars()
            .iter()
            .map(|v| Ok(v.as_tensor().copy()?))
            .collect()
    }

    /// Restores values from [`Self::snapshot`].
    pub fn restore(&self, values: &[Tensor]) -> Result<()> {
        self.mlp.set_values(values)
    }
}

/// One training run (one ensemble member).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Per evaluated state (after 0, 1, … Adam steps): training `−2 ln L`.
    pub train_nll: Vec<f64>,
    /// Per evaluated state: validation `−2 ln L` (empty without validation).
    pub val_nll: Vec<f64>,
    /// Number of steps of the kept weights.
    pub best_epoch: usize,
    /// Number of Adam steps taken.
    pub epochs_run: usize,
    /// Whether early stopping ended the run (rather than `max_epochs`).
    pub stopped_early: bool,
}

/// One ensemble member after training: its shape and its full-data fit.
#[derive(Debug, Clone)]
pub struct MemberFit {
    /// Training history.
    pub report: TrainReport,
    /// Its `TF_MC` per bin.
    pub tf_mc: Vec<f64>,
    /// Its full transfer factor per bin (`TF_MC` times the fitted normalisation).
    pub tf: Vec<f64>,
    /// The background it predicts per bin of the transfer channel (full-data fit).
    pub background: Vec<f64>,
    /// `−2 ln L` of its full-data fit.
    pub twice_nll: f64,
}

/// A window total with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowEstimate {
    /// Predicted background summed over the window's bins.
    pub prediction: f64,
    /// Profile-fit part of its uncertainty.
    pub sigma_fit: f64,
    /// Ensemble (shape) part (0 for a parametric TF).
    pub sigma_ensemble: f64,
    /// Both in quadrature.
    pub sigma: f64,
}

/// The neural transfer-function fit: ensemble shape, per-bin TF and
/// predicted background with uncertainties.
#[derive(Debug, Clone)]
pub struct NeuralTfFit {
    /// The members.
    pub members: Vec<MemberFit>,
    /// The ensemble's shape: `exp(mean_k log TF_MC,k)` per bin.
    pub tf_mc: Vec<f64>,
    /// The transfer factor per bin: `tf_mc` times the fitted normalisation.
    pub tf: Vec<f64>,
    /// Its uncertainty per bin (normalisation from the fit, shape from the
    /// members' spread, in quadrature).
    pub tf_unc: Vec<f64>,
    /// The full-data fit with the ensemble shape (background per bin and
    /// its profile-fit uncertainty).
    pub prediction: PassPrediction,
    /// Per bin, the members' standard deviation of the predicted background.
    pub background_unc_ensemble: Vec<f64>,
    /// Per bin, total background uncertainty.
    pub background_unc: Vec<f64>,
}

impl NeuralTfFit {
    /// Predicted background per bin of the transfer channel.
    pub fn background(&self) -> &[f64] {
        &self.prediction.background
    }

    /// The background summed over `bins` with its fit and ensemble
    /// uncertainties (correlations across bins included).
    pub fn window(&self, bins: &[usize]) -> Result<WindowEstimate> {
        let (prediction, sigma_fit) = self.prediction.window(bins)?;
        let sums: Vec<f64> = self
            .members
            .iter()
            .map(|m| bins.iter().map(|&b| m.background[b]).sum())
            .collect();
        let sigma_ensemble = std_dev(&sums);
        Ok(WindowEstimate {
            prediction,
            sigma_fit,
            sigma_ensemble,
            sigma: sigma_fit.hypot(sigma_ensemble),
        })
    }
}

/// Sample standard deviation (0 for fewer than two values).
fn std_dev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Post-fit background of one channel per bin (all samples with the POI set
/// to 0) and its profile-fit uncertainty by the delta method with the fit's
/// covariance.
#[derive(Debug, Clone)]
pub struct PassPrediction {
    /// The channel.
    pub channel: String,
    /// Background per bin.
    pub background: Vec<f64>,
    /// Its uncertainty per bin.
    pub background_unc: Vec<f64>,
    /// `−2 ln L` of the fit.
    pub twice_nll: f64,
    /// Fitted parameters.
    pub pars: Vec<f64>,
    /// `∂ background_b / ∂θ_i`, `(bins × pars)` row-major.
    jac: Vec<f64>,
    /// Covariance of the fitted parameters.
    cov: Vec<f64>,
}

impl PassPrediction {
    /// The prediction of `fit` (with its Hessian kept) of `model` in `channel`.
    pub fn from_fit(model: &Model, fit: &FitResult, channel: &str) -> Result<Self> {
        let mut off = 0;
        let mut nb = None;
        for (name, n) in model.channels() {
            if name == channel {
                nb = Some(*n);
                break;
            }
            off += n;
        }
        let nb = nb.ok_or_else(|| {
            Error::InvalidInput(format!("prediction: no channel '{channel}' in the model"))
        })?;
        let n = model.n_pars();
        let poi = model.poi_index();
        let mut pars = fit.pars.clone();
        if let Some(p) = poi {
            pars[p] = 0.0;
        }
        let inputs: Vec<Dual64> = model.inputs().iter().map(|&x| Dual64::from(x)).collect();
        let rates = model.expected_data(&pars)?;
        let background = rates[off..off + nb].to_vec();
        let mut jac = vec![0.0; nb * n];
        for i in 0..n {
            if fit.fixed[i] || Some(i) == poi {
                continue;
            }
            let pd: Vec<Dual64> = pars
                .iter()
                .enumerate()
                .map(|(k, &x)| {
                    if k == i {
                        Dual64::from(x).derivative()
                    } else {
                        Dual64::from(x)
                    }
                })
                .collect();
            let r = model.expected_data_generic(&pd, &inputs)?;
            for b in 0..nb {
                jac[b * n + i] = r[off + b].eps;
            }
        }
        let cov = fit.covariance()?;
        let mut p = PassPrediction {
            channel: channel.to_string(),
            background,
            background_unc: Vec::new(),
            twice_nll: fit.twice_nll,
            pars: fit.pars.clone(),
            jac,
            cov,
        };
        p.background_unc = (0..nb)
            .map(|b| p.variance(&p.jac[b * n..(b + 1) * n]).sqrt())
            .collect();
        Ok(p)
    }

    fn variance(&self, g: &[f64]) -> f64 {
        let n = g.len();
        let mut s = 0.0;
        for i in 0..n {
            if g[i] == 0.0 {
                continue;
            }
            for j in 0..n {
                s += g[i] * self.cov[i * n + j] * g[j];
            }
        }
        s.max(0.0)
    }

    /// The background summed over `bins` and its uncertainty.
    pub fn window(&self, bins: &[usize]) -> Result<(f64, f64)> {
        let nb = self.background.len();
        let n = self.pars.len();
        let mut g = vec![0.0; n];
        let mut sum = 0.0;
        for &b in bins {
            if b >= nb {
                return Err(Error::InvalidInput(format!(
                    "prediction: window bin {b} does not exist, channel '{}' has {nb} bins",
                    self.channel
                )));
            }
            sum += self.background[b];
            for (gi, j) in g.iter_mut().zip(&self.jac[b * n..(b + 1) * n]) {
                *gi += j;
            }
        }
        Ok((sum, self.variance(&g).sqrt()))
    }
}

/// A workspace whose transfer factor takes its shape from a network.
#[derive(Debug, Clone)]
pub struct NeuralTransfer {
    ws: Workspace,
    opts: ModelOptions,
    channel: String,
    sample: String,
    modifier: String,
    form: Form,
    coords: Vec<Vec<f64>>,
}

impl NeuralTransfer {
    /// Uses the transferfactor `modifier` on `sample` in `channel` of `ws`:
    /// it must have order 0 on every axis (its coefficient is the free
    /// normalisation; the network supplies the shape through `mc`, set to 1
    /// when absent), and the channel must have bin coordinates.
    pub fn new(
        ws: &Workspace,
        channel: &str,
        sample: &str,
        modifier: &str,
        opts: &ModelOptions,
    ) -> Result<Self> {
        let (ci, ch) = ws
            .channels
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == channel)
            .ok_or_else(|| Error::Workspace {
                location: "channels".into(),
                message: format!(
                    "neural TF: no channel '{channel}' (channels: {})",
                    ws.channels
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let cloc = format!("channels[{ci}] ('{channel}')");
        let coords = ch
            .coordinates
            .as_ref()
            .ok_or_else(|| Error::Workspace {
                location: cloc.clone(),
                message: format!(
                    "a neural transfer function needs the bin coordinates of channel '{channel}' \
                     (its key \"coordinates\")"
                ),
            })?
            .scaled();
        let si = ch
            .samples
            .iter()
            .position(|s| s.name == sample)
            .ok_or_else(|| Error::Workspace {
                location: format!("{cloc}.samples"),
                message: format!("neural TF: no sample '{sample}' in channel '{channel}'"),
            })?;
        let nb = ch.samples[si].data.len();
        let sloc = format!("channels[{ci}].samples[{si}] ('{sample}')");
        let mi = ch.samples[si]
            .modifiers
            .iter()
            .position(|m| m.name == modifier)
            .ok_or_else(|| Error::Workspace {
                location: format!("{sloc}.modifiers"),
                message: format!("neural TF: no modifier '{modifier}' on sample '{sample}'"),
            })?;
        let mloc = format!("channels[{ci}].samples[{si}].modifiers[{mi}] ('{modifier}')");
        let mut ws = ws.clone();
        let ModifierData::TransferFactor(t) = &mut ws.channels[ci].samples[si].modifiers[mi].data
        else {
            return Err(Error::Workspace {
                location: mloc,
                message: format!(
                    "neural TF: '{modifier}' is a {}, not a transferfactor",
                    ch.samples[si].modifiers[mi].modifier_type()
                ),
            });
        };
        if t.order.iter().any(|&o| o != 0) {
            return Err(Error::Workspace {
                location: format!("{mloc}.data.order"),
                message: format!(
                    "the network supplies the shape, so the transferfactor must have order 0 on \
                     every axis (only its normalisation free), found {:?}",
                    t.order
                ),
            });
        }
        if t.mc.is_none() {
            t.mc = Some(vec![1.0; nb]);
        }
        let form = t.form;
        if coords.len() != nb {
            return Err(Error::Workspace {
                location: format!("{cloc}.coordinates"),
                message: format!("{} coordinate bins, the channel has {nb}", coords.len()),
            });
        }
        // Validates the whole workspace once.
        Model::new(&ws, opts)?;
        Ok(NeuralTransfer {
            ws,
            opts: opts.clone(),
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
            form,
            coords,
        })
    }

    /// Leaves `bins` of the transfer channel out of every likelihood (e.g. the
    /// signal window): the network is fitted to the other bins and predicts
    /// these.
    pub fn with_blinded(mut self, bins: &[usize]) -> Result<Self> {
        let ch = self
            .ws
            .channels
            .iter_mut()
            .find(|c| c.name == self.channel)
            .ok_or_else(|| Error::InvalidInput("internal: transfer channel vanished".into()))?;
        for &b in bins {
            if !ch.blinded.contains(&b) {
                ch.blinded.push(b);
            }
        }
        ch.blinded.sort_unstable();
        Model::new(&self.ws, &self.opts)?;
        Ok(self)
    }

    /// The workspace in use (with `mc` present and the blinding applied).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// Per bin of the transfer channel, the coordinates scaled to `[0, 1]`.
    pub fn coordinates(&self) -> &[Vec<f64>] {
        &self.coords
    }

    /// A fresh network over this channel's coordinates.
    pub fn network(&self, config: &NeuralTfConfig, rng: &mut dyn Rng) -> Result<NeuralTf> {
        NeuralTf::new(&self.coords, config, rng)
    }

    /// The `ObservedNll` loss of `ws` (this workspace or a thinned copy) with
    /// `TF_MC` as its single input.
    pub fn loss(&self, ws: &Workspace, config: &NeuralTfConfig) -> Result<Loss> {
        let template = Template::from_workspace(ws, &self.opts)?.with_input(
            InputSel::transfer_mc(&self.channel, &self.sample, &self.modifier),
        )?;
        Ok(
            Loss::new(template, LossKind::ObservedNll { poi: config.poi })
                .with_fit_options(config.fit.clone()),
        )
    }

    /// Binomial thinning of the observed counts into a training and a
    /// validation workspace (templates scaled by `f` and `1 − f`).
    pub fn thin(&self, f: f64, rng: &mut dyn Rng) -> Result<(Workspace, Workspace)> {
        if !(f > 0.0 && f < 1.0) {
            return Err(Error::InvalidInput(format!(
                "neural TF: the training fraction of a split must lie in (0, 1), found {f}"
            )));
        }
        let mut train = scaled(&self.ws, f);
        let mut val = scaled(&self.ws, 1.0 - f);
        for (oi, o) in self.ws.observations.iter().enumerate() {
            for (j, &n) in o.data.iter().enumerate() {
                if !(n >= 0.0 && n.fract() == 0.0 && n < 9.0e15) {
                    return Err(Error::Workspace {
                        location: format!("observations[{oi}].data[{j}] ('{}')", o.name),
                        message: format!(
                            "binomial thinning needs non-negative integer counts, found {n}"
                        ),
                    });
                }
                let k = Binomial::new(n as u64, f)
                    .map_err(|e| Error::InvalidInput(format!("binomial({n}, {f}): {e}")))?
                    .sample(rng) as f64;
                train.observations[oi].data[j] = k;
                val.observations[oi].data[j] = n - k;
            }
        }
        Ok((train, val))
    }

    /// Trains `net` (one ensemble member): a thinning split drawn from
    /// `rng` (unless `train_fraction` is 1), Adam on the training profile
    /// `−2 ln L`, early stopping on the validation one; the kept
    /// (early-stopped) weights are left in `net`.
    pub fn train(
        &self,
        net: &NeuralTf,
        config: &NeuralTfConfig,
        rng: &mut dyn Rng,
    ) -> Result<TrainReport> {
        config.validate()?;
        if net.n_bins() != self.coords.len() {
            return Err(Error::InvalidInput(format!(
                "neural TF: the network has {} bins, channel '{}' has {}",
                net.n_bins(),
                self.channel,
                self.coords.len()
            )));
        }
        let (train_loss, val_loss) = if config.train_fraction < 1.0 {
            let (tw, vw) = self.thin(config.train_fraction, rng)?;
            (self.loss(&tw, config)?, Some(self.loss(&vw, config)?))
        } else {
            (self.loss(&self.ws, config)?, None)
        };
        let mut adam = Adam::new(
            net.trainable()
                .into_iter()
                .map(|v| (v, config.learning_rate))
                .collect(),
            AdamParams {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        )?;
        let mut report = TrainReport {
            train_nll: Vec::new(),
            val_nll: Vec::new(),
            best_epoch: 0,
            epochs_run: 0,
            stopped_early: false,
        };
        let mut best = (f64::INFINITY, net.snapshot()?);
        for epoch in 0..=config.max_epochs {
            let tf = net.tf_mc()?;
            let at = |e: Error| in_context(e, &format!("neural TF, epoch {epoch}"));
            let loss = train_loss.forward(&[&tf]).map_err(at)?;
            report
                .train_nll
                .push(loss.to_dtype(DType::F64)?.to_scalar::<f64>()?);
            if let Some(vl) = &val_loss {
                let v = vl
                    .evaluate(&tf.to_vec1::<f64>()?, false)
                    .map_err(|e| in_context(e, &format!("neural TF validation, epoch {epoch}")))?
                    .value;
                report.val_nll.push(v);
                if v < best.0 - config.min_delta {
                    best = (v, net.snapshot()?);
                    report.best_epoch = epoch;
                } else if epoch - report.best_epoch >= config.patience {
                    report.stopped_early = true;
                    break;
                }
            }
            if epoch == config.max_epochs {
                break;
            }
            let grads = loss.backward()?;
            adam.step(&grads)?;
            report.epochs_run = epoch + 1;
        }
        if val_loss.is_some() {
            net.restore(&best.1)?;
        } else {
            report.best_epoch = report.epochs_run;
        }
        Ok(report)
    }

    /// The fit to the full observed data with shape `tf_mc` (POI as
    /// configured): the model and the fit (Hessian kept).
    pub fn fit_with(
        &self,
        tf_mc: &[f64],
        poi: Option<f64>,
        fit: &FitOptions,
    ) -> Result<(Model, FitResult)> {
        let template = Template::from_workspace(&self.ws, &self.opts)?.with_input(
            InputSel::transfer_mc(&self.channel, &self.sample, &self.modifier),
        )?;
        let inst = template.instantiate(tf_mc)?;
        let model = inst.model;
        let data = model.observed_data();
        let setup = FitSetup::from_model(&model);
        let r = match poi {
            Some(mu) => fixed_poi_fit(&model, &data, mu, &setup, None, fit)?,
            None => minimize(&model, &data, &setup, None, fit, "neural TF full-data fit")?,
        };
        Ok((model, r))
    }

    /// The fitted normalisation factor `g(c_0)` (exp or linear) of `fit`.
    fn norm(&self, model: &Model, fit: &FitResult) -> Result<(f64, f64)> {
        let name = format!("{}[0]", self.modifier);
        let i = model.par_index(&name).ok_or_else(|| {
            Error::InvalidInput(format!("internal: no parameter '{name}' in the model"))
        })?;
        let c = fit.pars[i];
        let sd = fit.uncertainties()?[i];
        Ok(match self.form {
            Form::Exp => (c.exp(), c.exp() * sd),
            Form::Linear => (c, sd),
        })
    }

    /// Trains `config.members` networks (initial weights and splits drawn
    /// from `rng` in turn), fits the full data with each shape and with the
    /// ensemble's, and returns the per-bin TF and background predictions
    /// with uncertainties.
    pub fn fit(&self, config: &NeuralTfConfig, rng: &mut dyn Rng) -> Result<NeuralTfFit> {
        config.validate()?;
        let nb = self.coords.len();
        let mut members = Vec::with_capacity(config.members);
        for k in 0..config.members {
            let net = self.network(config, rng)?;
            let report = self
                .train(&net, config, rng)
                .map_err(|e| in_context(e, &format!("ensemble member {k}")))?;
            let tf_mc = net.tf_mc_values()?;
            let (model, r) = self.fit_with(&tf_mc, config.poi, &config.fit)?;
            let (g, _) = self.norm(&model, &r)?;
            let pred = PassPrediction::from_fit(&model, &r, &self.channel)?;
            members.push(MemberFit {
                report,
                tf: tf_mc.iter().map(|m| m * g).collect(),
                tf_mc,
                background: pred.background,
                twice_nll: r.twice_nll,
            });
        }
        let tf_mc: Vec<f64> = (0..nb)
            .map(|b| {
                (members.iter().map(|m| m.tf_mc[b].ln()).sum::<f64>() / members.len() as f64).exp()
            })
            .collect();
        let (model, r) = self.fit_with(&tf_mc, config.poi, &config.fit)?;
        let (g, g_sd) = self.norm(&model, &r)?;
        let prediction = PassPrediction::from_fit(&model, &r, &self.channel)?;
        let spread =
            |f: &dyn Fn(&MemberFit) -> f64| std_dev(&members.iter().map(f).collect::<Vec<_>>());
        let tf: Vec<f64> = tf_mc.iter().map(|m| m * g).collect();
        let tf_unc = (0..nb)
            .map(|b| (tf_mc[b] * g_sd).hypot(spread(&|m| m.tf[b])))
            .collect();
        let background_unc_ensemble: Vec<f64> =
            (0..nb).map(|b| spread(&|m| m.background[b])).collect();
        let background_unc = (0..nb)
            .map(|b| prediction.background_unc[b].hypot(background_unc_ensemble[b]))
            .collect();
        Ok(NeuralTfFit {
            members,
            tf_mc,
            tf,
            tf_unc,
            prediction,
            background_unc_ensemble,
            background_unc,
        })
    }
}

/// Adds `what` to the context of a fit failure.
fn in_context(e: Error, what: &str) -> Error {
    match e {
        Error::FitFailed { context, message } => Error::FitFailed {
            context: format!("{what}: {context}"),
            message,
        },
        Error::AmbiguousMinimum { context, message } => Error::AmbiguousMinimum {
            context: format!("{what}: {context}"),
            message,
        },
        Error::WallMinimum { context, message } => Error::WallMinimum {
            context: format!("{what}: {context}"),
            message,
        },
        other => other,
    }
}

/// `ws` with every sample's templates scaled by `f` (nominal, histosys,
/// shapesys/staterror absolute uncertainties; normsys factors, TF_MC and
/// logshapefactor reference counts are ratios or step scales and stay).
fn scaled(ws: &Workspace, f: f64) -> Workspace {
    let mut w = ws.clone();
    for c in &mut w.channels {
        for s in &mut c.samples {
            s.data.iter_mut().for_each(|x| *x *= f);
            for m in &mut s.modifiers {
                match &mut m.data {
                    ModifierData::HistoSys { lo_data, hi_data } => {
                        lo_data.iter_mut().for_each(|x| *x *= f);
                        hi_data.iter_mut().for_each(|x| *x *= f);
                    }
                    ModifierData::ShapeSys(u) | ModifierData::StatError(u) => {
                        u.iter_mut().for_each(|x| *x *= f)
                    }
                    _ => {}
                }
            }
        }
    }
    w
}
