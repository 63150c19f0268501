//! Toy models: seeded event generators for every process of an analysis
//! (signal, backgrounds, systematic variations) together with the analysis
//! template their histograms fill.
//!
//! * [`ToyModel`]: the trait a toy implements (processes, sampling, template).
//! * [`blobs`]: the neos Gaussian-blobs toy (arXiv:2203.05570).
//! * [`fiducial`]: the fiducial-cuts toy (an angular deformation of both
//!   signs on a falling background; two disjoint optimal regions).
//! * [`inferno`]: INFERNO's 3-D synthetic mixture and its benchmarks
//!   (arXiv:1806.04743).

pub mod blobs;
pub mod fiducial;
pub mod inferno;
pub mod passfail;
pub mod tagger;

use rand::Rng;

use crate::grad::{InputSel, Template, YieldFloor};
use crate::hf::{ModelOptions, Workspace};
use crate::{Error, Result};

pub use blobs::Blobs;
pub use fiducial::Fiducial;
pub use inferno::Inferno;

/// What a process is, for objectives that need labels (BCE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Signal (label 1).
    Signal,
    /// Nominal background (label 0).
    Background,
    /// A systematic variation of a background (label 0 with augmentation;
    /// otherwise only used for its histogram).
    Variation,
}

/// One process of a toy.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// Name, unique within the toy.
    pub name: String,
    /// Role (labels for classifier objectives).
    pub role: Role,
    /// Expected total yield of the process: a histogram of a batch of n
    /// events is divided by n and multiplied by this (neos: scale × LUMI).
    pub yield_scale: f64,
}

/// Events of one process: `n × d` features (row-major) and optional weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// Number of features per event.
    pub n_features: usize,
    /// Row-major features, `n × n_features`.
    pub features: Vec<f64>,
    /// Per-event weights (`None`: all 1).
    pub weights: Option<Vec<f64>>,
}

impl Events {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.features
            .len()
            .checked_div(self.n_features)
            .unwrap_or(0)
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Feature `j` of every event.
    pub fn column(&self, j: usize) -> Vec<f64> {
        self.features
            .iter()
            .skip(j)
            .step_by(self.n_features.max(1))
            .copied()
            .collect()
    }
}

/// The analysis a toy's histograms fill: a workspace (its histograms are
/// placeholders of the right length) and, in order, which process's
/// histogram supplies which template input.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The HistFactory workspace (observations are placeholders).
    pub workspace: Workspace,
    /// `(process index, template input)`, one per supplied histogram.
    pub inputs: Vec<(usize, InputSel)>,
}

impl Analysis {
    /// The [`Template`] with these inputs, the given yield floor and the
    /// default model options.
    pub fn template(&self, floor: YieldFloor) -> Result<Template> {
        self.template_with(floor, &ModelOptions::default())
    }

    /// As [`Self::template`], with the given model options (e.g. constraint
    /// overrides or another interpolation code).
    pub fn template_with(&self, floor: YieldFloor, opts: &ModelOptions) -> Result<Template> {
        let mut t = Template::from_workspace(&self.workspace, opts)?.with_floor(floor);
        for (_, sel) in &self.inputs {
            t = t.with_input(sel.clone())?;
        }
        Ok(t)
    }
}

/// A toy model: processes with seeded samplers and the analysis template.
///
/// Implementations must draw *only* from the given `rng`, so that a seed
/// fixes every event.
pub trait ToyModel: Send + Sync {
    /// Short name (used in configs and output).
    fn name(&self) -> &str;

    /// Number of features per event.
    fn n_features(&self) -> usize;

    /// The processes, in a fixed order (indices are used everywhere else).
    fn processes(&self) -> Vec<Process>;

    /// Draws `n` events of process `process`.
    fn sample(&self, process: usize, n: usize, rng: &mut dyn Rng) -> Result<Events>;

    /// The analysis template for histograms with `n_bins` bins.
    fn analysis(&self, n_bins: usize) -> Result<Analysis>;

    /// Suggested plotting range per feature (for contour figures).
    fn feature_range(&self) -> Vec<(f64, f64)>;

    /// The process whose events this process's events are an event-by-event
    /// transform of ([`Self::derive`]), e.g. a systematic variation of the
    /// same simulated events; `None` (the default): sampled on its own.
    /// Trainers then derive these events from the base's and batch them with
    /// the base's event order.
    fn base_process(&self, _process: usize) -> Option<usize> {
        None
    }

    /// The events of `process` computed from its [`Self::base_process`]'s
    /// events (same order, same length).
    fn derive(&self, process: usize, _base: &Events) -> Result<Events> {
        Err(Error::InvalidInput(format!(
            "toy '{}': process {process} is not derived from another",
            self.name()
        )))
    }

    /// The template the losses use (default: [`Analysis::template`] of
    /// [`Self::analysis`]); a toy may change the model options (e.g.
    /// constraint overrides).
    fn template(&self, n_bins: usize, floor: YieldFloor) -> Result<Template> {
        self.analysis(n_bins)?.template(floor)
    }
}

/// The toy of a config name: `"blobs"`, `"fiducial"`, or `"inferno_b0"` … `"inferno_b4"`
/// (INFERNO's synthetic mixture at that benchmark).
pub fn by_name(name: &str) -> Result<Box<dyn ToyModel>> {
    let inferno = |i| -> Result<Box<dyn ToyModel>> {
        Ok(Box::new(Inferno::new(inferno::Benchmark::from_index(i)?)))
    };
    match name {
        "blobs" => Ok(Box::new(Blobs::default())),
        "fiducial" => Ok(Box::new(Fiducial::default())),
        "inferno_b0" => inferno(0),
        "inferno_b1" => inferno(1),
        "inferno_b2" => inferno(2),
        "inferno_b3" => inferno(3),
        "inferno_b4" => inferno(4),
        other => Err(Error::Config {
            key: "toy.name".into(),
            message: format!(
                "unknown toy '{other}' (known: blobs, fiducial, inferno_b0, inferno_b1, inferno_b2, \
                 inferno_b3, inferno_b4)"
            ),
        }),
    }
}

/// The one-channel workspace of a signal-plus-background toy: `n_bins`
/// placeholder bins, the signal under the normfactor `mu` (the POI), the
/// background with `bkg_modifiers`, measurement parameters `parameters`
/// (both JSON arrays in pyhf's schema).
pub(crate) fn signal_background_workspace(
    channel: &str,
    n_bins: usize,
    bkg_modifiers: serde_json::Value,
    parameters: serde_json::Value,
) -> Result<Workspace> {
    let ones = vec![1.0; n_bins];
    Workspace::from_value(&serde_json::json!({
        "channels": [{
            "name": channel,
            "samples": [
                {"name": "signal", "data": ones,
                 "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
                {"name": "background", "data": ones, "modifiers": bkg_modifiers}
            ]
        }],
        "observations": [{"name": channel, "data": ones}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": parameters}}],
        "version": "1.0.0"
    }))
}

/// Index of the first process with `role`, or an error naming the toy.
pub fn process_with_role(toy: &dyn ToyModel, role: Role) -> Result<usize> {
    toy.processes()
        .iter()
        .position(|p| p.role == role)
        .ok_or_else(|| Error::InvalidInput(format!("toy '{}' has no {role:?} process", toy.name())))
}

/// Checks a process index against the toy.
pub(crate) fn check_process(toy: &dyn ToyModel, process: usize) -> Result<()> {
    let n = toy.processes().len();
    if process >= n {
        return Err(Error::InvalidInput(format!(
            "toy '{}': process {process} out of range (it has {n})",
            toy.name()
        )));
    }
    Ok(())
}
