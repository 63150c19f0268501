//! Training configuration (TOML): toy, network, histogram, optimiser and
//! training loop, with defaults and validation that names the offending key.

use serde::{Deserialize, Serialize};

use crate::nn::{Activation, Output};
use crate::{Error, Result};

/// The embedded default configuration (`anagrad train` with no file).
pub const DEFAULT_TOML: &str = include_str!("../../configs/train_default.toml");

/// What the network is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Expected CLs at μ = 1 (q_μ, background-only Asimov data): neos.
    Cls,
    /// Discovery p-value p0 on signal-plus-background Asimov data.
    Discovery,
    /// σ_μ from the Fisher information at μ = 1: INFERNO's loss
    /// (`"inferno"` is accepted as an alias; the toy's template supplies the
    /// benchmark's constraints).
    #[serde(alias = "inferno")]
    PoiUncert,
    /// Generalised variance 1/det I at μ = 1.
    GeneralisedVariance,
    /// −Z_A, the Asimov significance without systematics.
    ZAsimov,
    /// Binary cross-entropy, signal vs nominal background.
    Bce,
    /// Binary cross-entropy, signal vs nominal + up + down background.
    BceAug,
}

impl Objective {
    /// Every objective, in a fixed order.
    pub const ALL: [Objective; 7] = [
        Objective::Cls,
        Objective::Discovery,
        Objective::PoiUncert,
        Objective::GeneralisedVariance,
        Objective::ZAsimov,
        Objective::Bce,
        Objective::BceAug,
    ];

    /// The config / output name.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Cls => "cls",
            Objective::Discovery => "discovery",
            Objective::PoiUncert => "poi_uncert",
            Objective::GeneralisedVariance => "generalised_variance",
            Objective::ZAsimov => "z_asimov",
            Objective::Bce => "bce",
            Objective::BceAug => "bce_aug",
        }
    }

    /// Whether the objective is a classifier loss on event scores.
    pub fn is_bce(self) -> bool {
        matches!(self, Objective::Bce | Objective::BceAug)
    }
}

/// Floating-point type of the event-level computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit (default; what neos/JAX use).
    #[default]
    F32,
    /// 64-bit.
    F64,
}

/// `[toy]`: which toy and how many events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToyConfig {
    /// Toy name (`blobs`).
    pub name: String,
    /// Training events per process.
    pub n_train: usize,
    /// Test events per process (held out; every reported metric uses them).
    pub n_test: usize,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            name: "blobs".into(),
            n_train: 10_000,
            n_test: 10_000,
        }
    }
}

/// `[network]`: the summary statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Hidden-layer widths (input and output sizes follow from the toy and
    /// the histogram).
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Output: `sigmoid` (one unit, then a bKDE over `histogram.bins`) or
    /// `softmax` (`histogram.bins` units, each a soft bin).
    pub output: Output,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            hidden: vec![1024, 1024],
            activation: Activation::Relu,
            output: Output::Sigmoid,
        }
    }
}

/// `[histogram]`: binning of the summary statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    /// Number of bins.
    pub bins: usize,
    /// Outer edges (fixed).
    pub range: [f64; 2],
    /// bKDE bandwidth during training (sigmoid output only).
    pub bandwidth: f64,
    /// Learn the inner bin edges (sigmoid output only).
    pub learnable_edges: bool,
    /// Constant added to every yield before the model is built (neos: 1e-3).
    pub yield_floor: f64,
    /// Softmax temperature τ of the training histograms, softmax(z/τ)
    /// (softmax output only; INFERNO: 0.1). Test histograms are argmax.
    pub temperature: f64,
}

impl Default for HistogramConfig {
    fn default() -> Self {
        HistogramConfig {
            bins: 4,
            range: [0.0, 1.0],
            bandwidth: 0.09,
            learnable_edges: true,
            yield_floor: 1e-3,
            temperature: 1.0,
        }
    }
}

/// `[optimizer]`: Adam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// Learning rate of the network weights.
    pub lr: f64,
    /// Learning rate of the bin-edge logits (`None`: `lr`).
    pub edges_lr: Option<f64>,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            lr: 1e-3,
            edges_lr: None,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// `[training]`: the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// What is minimised.
    pub objective: Objective,
    /// Events per process per step.
    pub batch_size: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// If set, stop after this many steps (overrides `epochs`).
    pub max_steps: Option<usize>,
    /// Evaluate on the test set every this many steps (0: once per epoch);
    /// the last step is always evaluated.
    pub eval_every: usize,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: usize,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            objective: Objective::Cls,
            batch_size: 2000,
            epochs: 15,
            max_steps: None,
            eval_every: 0,
            checkpoint_every: 0,
        }
    }
}

/// `[compare]`: `anagrad train --compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareConfig {
    /// Objectives trained side by side (same data, same initial weights).
    pub objectives: Vec<Objective>,
    /// Seeds; each gives its own data set and initial weights.
    pub seeds: Vec<u64>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            objectives: vec![
                Objective::Cls,
                Objective::Bce,
                Objective::BceAug,
                Objective::PoiUncert,
            ],
            seeds: vec![0],
        }
    }
}

/// A whole training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of the data, the initial weights and the batch order.
    pub seed: u64,
    /// Precision of the event-level computation.
    pub precision: Precision,
    pub toy: ToyConfig,
    pub network: NetworkConfig,
    pub histogram: HistogramConfig,
    pub optimizer: OptimizerConfig,
    pub training: TrainingConfig,
    pub compare: CompareConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            precision: Precision::F32,
            toy: ToyConfig::default(),
            network: NetworkConfig::default(),
            histogram: HistogramConfig::default(),
            optimizer: OptimizerConfig::default(),
            training: TrainingConfig::default(),
            compare: CompareConfig::default(),
        }
    }
}

fn bad(key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl TrainConfig {
    /// Parses and validates a TOML document (missing keys take defaults;
    /// unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .and_then(|s| text.get(s))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            bad(&key, e.message().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The embedded default (see [`DEFAULT_TOML`]).
    pub fn embedded_default() -> Result<Self> {
        Self::from_toml(DEFAULT_TOML)
    }

    /// As TOML (what is written next to the results).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| bad("", format!("cannot serialise: {e}")))
    }

    /// Checks every value, and that `toy.name` is a built-in toy; the error
    /// names the key.
    pub fn validate(&self) -> Result<()> {
        crate::toys::by_name(&self.toy.name)?;
        self.validate_values()
    }

    /// Checks every value except the toy name.
    pub fn validate_values(&self) -> Result<()> {
        if self.toy.n_train == 0 {
            return Err(bad("toy.n_train", "must be > 0"));
        }
        if self.toy.n_test == 0 {
            return Err(bad("toy.n_test", "must be > 0"));
        }
        if let Some(i) = self.network.hidden.iter().position(|&h| h == 0) {
            return Err(bad(
                &format!("network.hidden[{i}]"),
                "layer widths must be > 0",
            ));
        }
        let h = &self.histogram;
        if h.bins == 0 {
            return Err(bad("histogram.bins", "must be > 0"));
        }
        if !(h.range[0].is_finite() && h.range[1].is_finite() && h.range[0] < h.range[1]) {
            return Err(bad(
                "histogram.range",
                format!("need finite lo < hi, got {:?}", h.range),
            ));
        }
        if !(h.bandwidth.is_finite() && h.bandwidth > 0.0) {
            return Err(bad(
                "histogram.bandwidth",
                format!("must be > 0, got {}", h.bandwidth),
            ));
        }
        if !(h.yield_floor.is_finite() && h.yield_floor >= 0.0) {
            return Err(bad("histogram.yield_floor", "must be ≥ 0"));
        }
        if !(h.temperature.is_finite() && h.temperature > 0.0) {
            return Err(bad(
                "histogram.temperature",
                format!("must be > 0, got {}", h.temperature),
            ));
        }
        if h.temperature != 1.0 && self.network.output != Output::Softmax {
            return Err(bad(
                "histogram.temperature",
                "a temperature applies to a softmax output only",
            ));
        }
        match self.network.output {
            Output::Sigmoid => {}
            Output::Softmax => {
                if h.bins < 2 {
                    return Err(bad("histogram.bins", "a softmax output needs ≥ 2 bins"));
                }
                if h.learnable_edges {
                    return Err(bad(
                        "histogram.learnable_edges",
                        "a softmax output has no bin edges to learn",
                    ));
                }
                if self.training.objective.is_bce() {
                    return Err(bad(
                        "training.objective",
                        "BCE needs a single sigmoid output (network.output = \"sigmoid\")",
                    ));
                }
            }
            Output::Linear => {
                return Err(bad(
                    "network.output",
                    "a summary statistic must be \"sigmoid\" or \"softmax\"",
                ))
            }
        }
        let o = &self.optimizer;
        for (k, v) in [("optimizer.lr", o.lr), ("optimizer.eps", o.eps)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(k, format!("must be > 0, got {v}")));
            }
        }
        if let Some(v) = o.edges_lr {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad("optimizer.edges_lr", format!("must be > 0, got {v}")));
            }
        }
        for (k, v) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(bad(k, format!("must be in [0, 1), got {v}")));
            }
        }
        let t = &self.training;
        if t.batch_size == 0 {
            return Err(bad("training.batch_size", "must be > 0"));
        }
        if t.batch_size > self.toy.n_train {
            return Err(bad(
                "training.batch_size",
                format!(
                    "{} exceeds the training events per process (toy.n_train = {})",
                    t.batch_size, self.toy.n_train
                ),
            ));
        }
        if t.epochs == 0 && t.max_steps.is_none() {
            return Err(bad("training.epochs", "must be > 0"));
        }
        if t.max_steps == Some(0) {
            return Err(bad("training.max_steps", "must be > 0"));
        }
        if self.compare.objectives.is_empty() {
            return Err(bad("compare.objectives", "list at least one objective"));
        }
        if self.compare.seeds.is_empty() {
            return Err(bad("compare.seeds", "list at least one seed"));
        }
        Ok(())
    }

    /// Training steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.toy.n_train / self.training.batch_size
    }

    /// Total number of steps.
    pub fn total_steps(&self) -> usize {
        self.training
            .max_steps
            .unwrap_or(self.training.epochs * self.steps_per_epoch())
    }

    /// Steps between test evaluations.
    pub fn eval_interval(&self) -> usize {
        match self.training.eval_every {
            0 => self.steps_per_epoch(),
            n => n,
        }
    }
}
