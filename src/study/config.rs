//! The study configuration (TOML). Every key has a default, and the defaults
//! are the default study of issue 6, so an empty file (or no file) runs it.
//!
//! ```toml
//! ns = [100, 1000, 10000]                 # sample sizes N
//! ratios = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]   # bandwidth / bin width
//! datasets = 500                          # independent datasets per cell
//! seed = 20260601
//!
//! [binning]
//! low = -3.0
//! high = 3.0
//! bins = 6
//! outside = "drop"                        # or "fold"
//!
//! [pipeline]
//! kind = "gaussian-shift"                 # x = θ + z, z ~ Normal(0, 1)
//! theta = 0.0
//! target_mean = 0.5                       # target p_b: bins of Normal(0.5, 1)
//! ```
//!
//! or, for the cut-threshold pipeline,
//!
//! ```toml
//! [pipeline]
//! kind = "cut-threshold"      # x ~ Normal(data_mean, 1), weights σ(slope·(x − θ))
//! theta = 0.3                 # the learnable cut threshold, d/dθ is studied
//! data_mean = 0.0
//! target_threshold = 0.0      # target p_b: fractions in bin b above this cut
//! # slope = 20.0              # fixed sigmoid slope; default 1.702 / h (as soft as the kernel)
//! ```
//!
//! or, for the cut pipeline with a statistical objective (discovery Z0 of a
//! HistFactory model, through `grad::Loss`),
//!
//! ```toml
//! [pipeline]
//! kind = "cut-z0"             # signal ~ Normal(signal_mean, 1), background ~ Normal(background_mean, 1)
//! theta = 0.5                 # the learnable cut threshold (keep x > θ), d Z0/dθ is studied
//! signal_mean = 1.0
//! background_mean = 0.0
//! signal_yield = 20.0         # expected signal events before the cut
//! background_yield = 100.0    # expected background events before the cut
//! # slope = 20.0              # as for cut-threshold
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How kernel mass beyond the outer edges is treated (mirrors
/// `ops::hist::Outside`; `drop` is the default there, in relaxed.hist and here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutsideMode {
    /// Mass beyond the range is lost (relaxed.hist's default).
    #[default]
    Drop,
    /// Mass beyond the range is added to the outer bins.
    Fold,
}

/// Equal-width binning of the histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Binning {
    /// Lower edge of the first bin.
    pub low: f64,
    /// Upper edge of the last bin.
    pub high: f64,
    /// Number of bins.
    pub bins: usize,
    /// Treatment of mass beyond the range.
    pub outside: OutsideMode,
}

impl Default for Binning {
    fn default() -> Self {
        Self {
            low: -3.0,
            high: 3.0,
            bins: 6,
            outside: OutsideMode::Drop,
        }
    }
}

impl Binning {
    /// The bin width (all bins are equal).
    pub fn width(&self) -> f64 {
        (self.high - self.low) / self.bins as f64
    }

    /// The `bins + 1` edges.
    pub fn edges(&self) -> Vec<f64> {
        let w = self.width();
        (0..=self.bins)
            .map(|i| {
                if i == self.bins {
                    self.high
                } else {
                    self.low + w * i as f64
                }
            })
            .collect()
    }
}

/// The pipeline whose gradient dL/dθ is studied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PipelineConfig {
    /// x = θ + z with z ~ Normal(0, 1) (θ moves the data),
    /// L = Σ_b (c_b/N − q_b)², q_b the bin probabilities of Normal(target_mean, 1).
    GaussianShift {
        /// The point θ where dL/dθ is evaluated.
        #[serde(default)]
        theta: f64,
        /// Mean of the Gaussian whose bin probabilities are the target.
        #[serde(default = "default_target_mean")]
        target_mean: f64,
    },
    /// x ~ Normal(data_mean, 1) (independent of θ), event weights
    /// w = σ(slope·(x − θ)) (a soft "keep above θ" cut), c = bKDE(x, w),
    /// L = Σ_b (c_b/N − q_b)², q_b = P(x in bin b and x > target_threshold).
    CutThreshold {
        /// The cut threshold θ where dL/dθ is evaluated.
        #[serde(default = "default_cut_theta")]
        theta: f64,
        /// Mean of the (unit-variance) data.
        #[serde(default)]
        data_mean: f64,
        /// The hard cut that defines the target fractions.
        #[serde(default)]
        target_threshold: f64,
        /// Fixed sigmoid slope; `None` ties it to the bandwidth, 1.702/h,
        /// where the logistic matches the Gaussian kernel's CDF to 0.01.
        #[serde(default)]
        slope: Option<f64>,
    },
    /// Each dataset's N events are split into ⌊N/2⌋ signal events
    /// x ~ Normal(signal_mean, 1) and the rest background
    /// x ~ Normal(background_mean, 1); weights w = σ(slope·(x − θ)) (keep
    /// above θ); yields s = S/N_s · bKDE(x_s, w_s), b = B/N_b · bKDE(x_b, w_b);
    /// L = discovery Z0 (`grad::LossKind::Z0`) of a one-channel model with
    /// signal (normfactor μ) and background, yields floored by +1e-3 (neos).
    CutZ0 {
        /// The cut threshold θ where dZ0/dθ is evaluated.
        #[serde(default = "default_cut_z0_theta")]
        theta: f64,
        /// Mean of the (unit-variance) signal.
        #[serde(default = "default_signal_mean")]
        signal_mean: f64,
        /// Mean of the (unit-variance) background.
        #[serde(default)]
        background_mean: f64,
        /// Expected signal events S before the cut.
        #[serde(default = "default_signal_yield")]
        signal_yield: f64,
        /// Expected background events B before the cut.
        #[serde(default = "default_background_yield")]
        background_yield: f64,
        /// Fixed sigmoid slope; `None` ties it to the bandwidth (1.702/h).
        #[serde(default)]
        slope: Option<f64>,
    },
}

fn default_cut_z0_theta() -> f64 {
    0.5
}

fn default_signal_mean() -> f64 {
    1.0
}

fn default_signal_yield() -> f64 {
    20.0
}

fn default_background_yield() -> f64 {
    100.0
}

fn default_target_mean() -> f64 {
    0.5
}

fn default_cut_theta() -> f64 {
    0.3
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self::GaussianShift {
            theta: 0.0,
            target_mean: default_target_mean(),
        }
    }
}

/// A complete study configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudyConfig {
    /// Sample sizes N (events per dataset).
    pub ns: Vec<usize>,
    /// Bandwidth-to-bin-width ratios r (h = r × bin width).
    pub ratios: Vec<f64>,
    /// Independent datasets per (N, r) cell.
    pub datasets: usize,
    /// Master seed; dataset d of sample size index i uses a seed derived from (seed, i, d).
    pub seed: u64,
    /// The histogram binning.
    pub binning: Binning,
    /// The pipeline.
    pub pipeline: PipelineConfig,
}

impl Default for StudyConfig {
    fn default() -> Self {
        Self {
            ns: vec![100, 1000, 10000],
            ratios: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
            datasets: 500,
            seed: 20_260_601,
            binning: Binning::default(),
            pipeline: PipelineConfig::default(),
        }
    }
}

fn config_err(key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl StudyConfig {
    /// Parses and validates a TOML document.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text)
            .map_err(|e| config_err(error_key(text, &e), e.to_string().trim()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks every value; the first problem is returned with its key.
    pub fn validate(&self) -> Result<()> {
        if self.ns.is_empty() {
            return Err(config_err("ns", "the list of sample sizes is empty"));
        }
        for (i, &n) in self.ns.iter().enumerate() {
            if n == 0 {
                return Err(config_err(format!("ns[{i}]"), "sample size must be ≥ 1"));
            }
        }
        if self.ratios.is_empty() {
            return Err(config_err("ratios", "the list of ratios is empty"));
        }
        for (i, &r) in self.ratios.iter().enumerate() {
            if !(r.is_finite() && r > 0.0) {
                return Err(config_err(
                    format!("ratios[{i}]"),
                    format!("bandwidth/bin-width ratio must be finite and > 0, got {r}"),
                ));
            }
        }
        if self.datasets < 2 {
            return Err(config_err(
                "datasets",
                format!(
                    "need at least 2 datasets per cell for a standard deviation, got {}",
                    self.datasets
                ),
            ));
        }
        let b = &self.binning;
        if !(b.low.is_finite() && b.high.is_finite()) {
            return Err(config_err("binning", "low and high must be finite"));
        }
        if b.low >= b.high {
            return Err(config_err(
                "binning.high",
                format!("must be > binning.low ({} ≥ {})", b.low, b.high),
            ));
        }
        if b.bins == 0 {
            return Err(config_err("binning.bins", "need at least one bin"));
        }
        match &self.pipeline {
            PipelineConfig::GaussianShift { theta, target_mean } => {
                finite("pipeline.theta", *theta)?;
                finite("pipeline.target_mean", *target_mean)?;
            }
            PipelineConfig::CutThreshold {
                theta,
                data_mean,
                target_threshold,
                slope,
            } => {
                finite("pipeline.theta", *theta)?;
                finite("pipeline.data_mean", *data_mean)?;
                finite("pipeline.target_threshold", *target_threshold)?;
                check_slope(*slope)?;
                check_cut_off_edges(b, *theta)?;
            }
            PipelineConfig::CutZ0 {
                theta,
                signal_mean,
                background_mean,
                signal_yield,
                background_yield,
                slope,
            } => {
                finite("pipeline.theta", *theta)?;
                finite("pipeline.signal_mean", *signal_mean)?;
                finite("pipeline.background_mean", *background_mean)?;
                positive("pipeline.signal_yield", *signal_yield)?;
                positive("pipeline.background_yield", *background_yield)?;
                check_slope(*slope)?;
                check_cut_off_edges(b, *theta)?;
                // Half the events are signal, half background: both need one.
                if let Some((i, _)) = self.ns.iter().enumerate().find(|(_, &n)| n < 2) {
                    return Err(config_err(
                        format!("ns[{i}]"),
                        "the cut-z0 pipeline splits each dataset into signal and background: sample size must be ≥ 2",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Total number of gradient evaluations (cells × datasets).
    pub fn evaluations(&self) -> u64 {
        (self.ns.len() * self.ratios.len() * self.datasets) as u64
    }
}

/// The key a TOML/serde error is about: the span's text (a key, a value or,
/// for errors inside buffered tables such as `[pipeline]`, the table header),
/// completed with the field that serde names as unknown.
fn error_key(text: &str, e: &toml::de::Error) -> String {
    let spanned = e
        .span()
        .and_then(|s| text.get(s))
        .map(|k| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.contains('\n'));
    let unknown = e
        .message()
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field.to_string());
    match (spanned, unknown) {
        (Some(s), Some(f)) if s.starts_with('[') => format!("{}.{f}", s.trim_matches(['[', ']'])),
        (_, Some(f)) => f,
        (Some(s), None) => s.trim_matches(['[', ']']).to_string(),
        (None, None) => "<document>".to_string(),
    }
}

fn positive(key: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(config_err(key, format!("must be finite and > 0, got {v}")))
    }
}

fn check_slope(slope: Option<f64>) -> Result<()> {
    match slope {
        Some(s) if !(s.is_finite() && s > 0.0) => Err(config_err(
            "pipeline.slope",
            format!("must be finite and > 0, got {s}"),
        )),
        _ => Ok(()),
    }
}

/// The expected hard objective has a kink where the cut crosses a bin edge:
/// its θ-derivative does not exist there.
fn check_cut_off_edges(b: &Binning, theta: f64) -> Result<()> {
    let w = b.width();
    if b.edges()
        .iter()
        .any(|e| (e - theta).abs() < 1e-9 * w.max(1.0))
    {
        return Err(config_err(
            "pipeline.theta",
            format!("the cut threshold {theta} sits on a bin edge, where the expected hard-histogram loss is not differentiable"),
        ));
    }
    Ok(())
}

fn finite(key: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(config_err(key, format!("must be finite, got {v}")))
    }
}
