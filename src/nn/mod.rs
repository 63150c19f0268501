//! Summary-statistic networks: a multilayer perceptron on candle tensors with
//! our own seeded initialisation (candle's CPU generator cannot be seeded).
//!
//! Weights are stored `(fan_in, fan_out)` so a layer is one `x · W + b`
//! without a transpose.
//!
//! [`transfer`]: a neural transfer function (an MLP over bin coordinates as a
//! transfer factor's shape) fitted by maximum profile likelihood.

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod fused;
pub mod transfer;

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0) (neos's choice).
    #[default]
    Relu,
    /// tanh(x).
    Tanh,
    /// x·σ(x).
    Silu,
    /// Logistic σ(x).
    Sigmoid,
}

/// What the last layer outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// σ(z), one value in (0, 1) per output unit (neos: one unit, then a bKDE).
    #[default]
    Sigmoid,
    /// softmax over the output units (each unit a soft bin).
    Softmax,
    /// The raw pre-activation z.
    Linear,
}

/// Architecture of an [`Mlp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Layer widths including input and output, e.g. `[2, 1024, 1024, 1]`.
    pub sizes: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Output transfer function.
    pub output: Output,
}

impl MlpConfig {
    /// Checks the sizes (at least input and output, all > 0).
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() < 2 {
            return Err(Error::Config {
                key: "network.sizes".into(),
                message: format!(
                    "need at least an input and an output size, got {:?}",
                    self.sizes
                ),
            });
        }
        if let Some(i) = self.sizes.iter().position(|&s| s == 0) {
            return Err(Error::Config {
                key: format!("network.sizes[{i}]"),
                message: "layer widths must be > 0".into(),
            });
        }
        if self.output == Output::Softmax && self.sizes[self.sizes.len() - 1] < 2 {
            return Err(Error::Config {
                key: "network.output".into(),
                message: "a softmax output needs at least 2 units".into(),
            });
        }
        Ok(())
    }
}

/// One dense layer.
#[derive(Debug, Clone)]
pub struct Dense {
    /// Weights, `(fan_in, fan_out)`.
    pub w: Var,
    /// Bias, `(fan_out)`.
    pub b: Var,
}

/// A multilayer perceptron.
#[derive(Debug, Clone)]
pub struct Mlp {
    config: MlpConfig,
    layers: Vec<Dense>,
}

impl Mlp {
    /// A network with Glorot-normal weights (σ = √(2/(fan_in+fan_out)), as
    /// neos's `stax.Dense`) and zero biases, drawn from `rng` in layer
    /// order (weights row-major), in f64 and then cast to `dtype`.
    pub fn new(
        config: MlpConfig,
        dtype: DType,
        device: &Device,
        rng: &mut dyn Rng,
    ) -> Result<Self> {
        config.validate()?;
        let mut layers = Vec::with_capacity(config.sizes.len() - 1);
        for win in config.sizes.windows(2) {
            let (fi, fo) = (win[0], win[1]);
            let std = (2.0 / (fi + fo) as f64).sqrt();
            let w: Vec<f64> = (0..fi * fo)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    std * z
                })
                .collect();
            let w = Tensor::from_vec(w, (fi, fo), device)?.to_dtype(dtype)?;
            let b = Tensor::zeros(fo, dtype, device)?;
            layers.push(Dense {
                w: Var::from_tensor(&w)?,
                b: Var::from_tensor(&b)?,
            });
        }
        Ok(Mlp { config, layers })
    }

    /// The architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// The layers.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Every trainable variable: `w0, b0, w1, b1, …`.
    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [l.w.clone(), l.b.clone()])
            .collect()
    }

    /// Number of trainable numbers.
    pub fn n_params(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.w.elem_count() + l.b.elem_count())
            .sum()
    }

    /// Network output for `x` of shape `(n, sizes[0])`: `(n, sizes[last])`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.logits(x)?;
        Ok(match self.config.output {
            Output::Sigmoid => candle_nn::ops::sigmoid(&h)?,
            // not `softmax_last_dim`: that op records no backward (candle-nn 0.11)
            Output::Softmax => candle_nn::ops::softmax(&h, candle_core::D::Minus1)?,
            Output::Linear => h,
        })
    }

    /// The last layer's pre-activation z for `x` (before the output function).
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let (_, d) = x.dims2().map_err(|_| {
            Error::InvalidInput(format!(
                "mlp: input must be (events × features), got shape {:?}",
                x.dims()
            ))
        })?;
        if d != self.config.sizes[0] {
            return Err(Error::InvalidInput(format!(
                "mlp: input has {d} features, the network expects {}",
                self.config.sizes[0]
            )));
        }
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            h = if i < last {
                fused::dense_act(&h, l.w.as_tensor(), l.b.as_tensor(), self.config.activation)?
            } else {
                h.matmul(l.w.as_tensor())?.broadcast_add(l.b.as_tensor())?
            };
        }
        Ok(h)
    }

    /// Replaces every variable's value (same order and shapes as [`Self::vars`]).
    pub fn set_values(&self, values: &[Tensor]) -> Result<()> {
        let vars = self.vars();
        if values.len() != vars.len() {
            return Err(Error::InvalidInput(format!(
                "mlp: {} tensors given for {} variables",
                values.len(),
                vars.len()
            )));
        }
        for (i, (v, t)) in vars.iter().zip(values).enumerate() {
            if v.dims() != t.dims() {
                return Err(Error::InvalidInput(format!(
                    "mlp: variable {i} has shape {:?}, got {:?}",
                    v.dims(),
                    t.dims()
                )));
            }
            v.set(&t.to_dtype(v.dtype())?.to_device(v.device())?)?;
        }
        Ok(())
    }
}
