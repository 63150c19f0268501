//! Analysis templates with tensor-valued inputs: a HistFactory workspace whose
//! chosen templates (a sample's nominal yields, histosys lo/hi, normsys lo/hi,
//! shapesys/staterror uncertainties) and observed main data are supplied at
//! loss time, e.g. as candle tensors produced by a bKDE.
//!
//! The model evaluated for a set of values is the `hf` model itself, rebuilt
//! with [`Model::with_inputs`]; nothing here re-implements its likelihood.
//!
//! Constraints other than pyhf's (a free shape parameter, another width,
//! as INFERNO's benchmarks need) belong to the model:
//! [`crate::hf::ModelOptions::constraint_overrides`]; every loss then sees
//! them, the fits as well as the Fisher information.

use crate::hf::{InputKind, Model, ModelOptions, Workspace};
use crate::infer::Likelihood;
use crate::{Error, Result};

use super::YieldFloor;

/// One tensor-valued input of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSel {
    /// Nominal yields of `sample` in `channel`.
    Nominal { channel: String, sample: String },
    /// histosys `lo_data` of `modifier` on `sample` in `channel`.
    HistoLo {
        channel: String,
        sample: String,
        modifier: String,
    },
    /// histosys `hi_data`.
    HistoHi {
        channel: String,
        sample: String,
        modifier: String,
    },
    /// normsys `lo` factor (one number).
    NormLo {
        channel: String,
        sample: String,
        modifier: String,
    },
    /// normsys `hi` factor (one number).
    NormHi {
        channel: String,
        sample: String,
        modifier: String,
    },
    /// shapesys / staterror absolute uncertainties, one per bin (e.g. the
    /// square root of a bKDE's Σw²).
    Uncertainty {
        channel: String,
        sample: String,
        modifier: String,
    },
    /// transferfactor TF_MC, one per bin.
    TransferMc {
        channel: String,
        sample: String,
        modifier: String,
    },
    /// Observed main data of `channel`.
    Observed { channel: String },
}

impl InputSel {
    /// Nominal yields of a sample.
    pub fn nominal(channel: &str, sample: &str) -> Self {
        InputSel::Nominal {
            channel: channel.into(),
            sample: sample.into(),
        }
    }
    /// histosys lo template.
    pub fn histo_lo(channel: &str, sample: &str, modifier: &str) -> Self {
        InputSel::HistoLo {
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
        }
    }
    /// histosys hi template.
    pub fn histo_hi(channel: &str, sample: &str, modifier: &str) -> Self {
        InputSel::HistoHi {
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
        }
    }
    /// normsys lo factor.
    pub fn norm_lo(channel: &str, sample: &str, modifier: &str) -> Self {
        InputSel::NormLo {
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
        }
    }
    /// normsys hi factor.
    pub fn norm_hi(channel: &str, sample: &str, modifier: &str) -> Self {
        InputSel::NormHi {
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
        }
    }
    /// shapesys / staterror uncertainties.
    pub fn uncertainty(channel: &str, sample: &str, modifier: &str) -> Self {
        InputSel::Uncertainty {
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
        }
    }
    /// TF_MC of a transferfactor (one per bin).
    pub fn transfer_mc(channel: &str, sample: &str, modifier: &str) -> Self {
        InputSel::TransferMc {
            channel: channel.into(),
            sample: sample.into(),
            modifier: modifier.into(),
        }
    }
    /// Observed main data of a channel.
    pub fn observed(channel: &str) -> Self {
        InputSel::Observed {
            channel: channel.into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            InputSel::Nominal { channel, sample } => {
                format!("nominal yields of '{sample}' in '{channel}'")
            }
            InputSel::HistoLo {
                channel,
                sample,
                modifier,
            } => format!("histosys '{modifier}' lo_data of '{sample}' in '{channel}'"),
            InputSel::HistoHi {
                channel,
                sample,
                modifier,
            } => format!("histosys '{modifier}' hi_data of '{sample}' in '{channel}'"),
            InputSel::NormLo {
                channel,
                sample,
                modifier,
            } => format!("normsys '{modifier}' lo of '{sample}' in '{channel}'"),
            InputSel::NormHi {
                channel,
                sample,
                modifier,
            } => format!("normsys '{modifier}' hi of '{sample}' in '{channel}'"),
            InputSel::Uncertainty {
                channel,
                sample,
                modifier,
            } => format!("uncertainties of '{modifier}' on '{sample}' in '{channel}'"),
            InputSel::TransferMc {
                channel,
                sample,
                modifier,
            } => format!("TF_MC of transferfactor '{modifier}' on '{sample}' in '{channel}'"),
            InputSel::Observed { channel } => format!("observed data of '{channel}'"),
        }
    }
}

/// Where the values of one slot go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `Model::inputs()[offset..offset+len]`; `floored`: the yield floor applies.
    Input { offset: usize, floored: bool },
    /// Observed main data `[offset..offset+len]`.
    Data { offset: usize },
}

#[derive(Debug, Clone)]
struct Slot {
    sel: InputSel,
    target: Target,
    len: usize,
}

/// A HistFactory model with some inputs supplied at evaluation time.
///
/// ```no_run
/// # use anagrad::grad::{Template, InputSel};
/// # use anagrad::hf::{Workspace, ModelOptions};
/// # fn main() -> anagrad::Result<()> {
/// let ws = Workspace::from_path("examples/workspace.json".as_ref())?;
/// // Replace the signal histogram of channel "singlechannel" by a learned one:
/// let template = Template::from_workspace(&ws, &ModelOptions::default())?
///     .with_input(InputSel::nominal("singlechannel", "signal"))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Template {
    model: Model,
    slots: Vec<Slot>,
    floor: YieldFloor,
}

/// A template instantiated at concrete values.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The `hf` model with the supplied templates.
    pub model: Model,
    /// Observed main data (workspace observations, with supplied channels replaced).
    pub observed_main: Vec<f64>,
    /// For each supplied value (in slot order): where it went.
    pub(crate) targets: Vec<Target>,
}

impl Instance {
    /// Full observed data (main then the model's auxiliary data).
    pub fn observed_data(&self) -> Vec<f64> {
        let mut d = self.observed_main.clone();
        let full = self.model.observed_data();
        d.extend_from_slice(&full[self.model.n_main()..]);
        d
    }
}

impl Template {
    /// A template over `model` with no tensor-valued inputs yet.
    pub fn new(model: Model) -> Self {
        Template {
            model,
            slots: Vec::new(),
            floor: YieldFloor::None,
        }
    }

    /// Compiles `ws` (see [`Model::new`]).
    pub fn from_workspace(ws: &Workspace, opts: &ModelOptions) -> Result<Self> {
        Ok(Self::new(Model::new(ws, opts)?))
    }

    /// The yield floor applied to supplied yields (nominal and histosys
    /// templates; not to uncertainties, normsys factors or data).
    pub fn with_floor(mut self, floor: YieldFloor) -> Self {
        self.floor = floor;
        self
    }

    /// The floor in use.
    pub fn floor(&self) -> YieldFloor {
        self.floor
    }

    /// The underlying model (built from the workspace's own templates).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Adds a tensor-valued input; the values passed at evaluation follow the
    /// order in which inputs were added.
    pub fn with_input(mut self, sel: InputSel) -> Result<Self> {
        if self.slots.iter().any(|s| s.sel == sel) {
            return Err(Error::InvalidInput(format!(
                "template: {} is already an input",
                sel.describe()
            )));
        }
        let (target, len) = self.locate(&sel)?;
        self.slots.push(Slot { sel, target, len });
        Ok(self)
    }

    /// Number of values of each input, in order.
    pub fn input_lens(&self) -> Vec<usize> {
        self.slots.iter().map(|s| s.len).collect()
    }

    /// Total number of supplied values.
    pub fn n_values(&self) -> usize {
        self.slots.iter().map(|s| s.len).sum()
    }

    /// The current (workspace) values of every input, concatenated: a
    /// starting point, and what an unchanged template evaluates to.
    pub fn current_values(&self) -> Vec<f64> {
        let obs = self.model.observed_data();
        let mut out = Vec::with_capacity(self.n_values());
        for s in &self.slots {
            match s.target {
                Target::Input { offset, .. } => {
                    out.extend_from_slice(&self.model.inputs()[offset..offset + s.len])
                }
                Target::Data { offset } => out.extend_from_slice(&obs[offset..offset + s.len]),
            }
        }
        out
    }

    fn locate(&self, sel: &InputSel) -> Result<(Target, usize)> {
        let (channel, sample, modifier, kind) = match sel {
            InputSel::Observed { channel } => {
                let mut off = 0;
                for (name, nb) in self.model.channels() {
                    if name == channel {
                        return Ok((Target::Data { offset: off }, *nb));
                    }
                    off += nb;
                }
                return Err(Error::InvalidInput(format!(
                    "template: no channel '{channel}' in the model"
                )));
            }
            InputSel::Nominal { channel, sample } => (channel, sample, None, InputKind::Nominal),
            InputSel::HistoLo {
                channel,
                sample,
                modifier,
            } => (channel, sample, Some(modifier), InputKind::HistoLo),
            InputSel::HistoHi {
                channel,
                sample,
                modifier,
            } => (channel, sample, Some(modifier), InputKind::HistoHi),
            InputSel::NormLo {
                channel,
                sample,
                modifier,
            } => (channel, sample, Some(modifier), InputKind::NormLo),
            InputSel::NormHi {
                channel,
                sample,
                modifier,
            } => (channel, sample, Some(modifier), InputKind::NormHi),
            InputSel::Uncertainty {
                channel,
                sample,
                modifier,
            } => (channel, sample, Some(modifier), InputKind::Uncertainty),
            InputSel::TransferMc {
                channel,
                sample,
                modifier,
            } => (channel, sample, Some(modifier), InputKind::TransferMc),
        };
        let hit = self.model.input_layout().iter().find(|s| {
            &s.channel == channel
                && &s.sample == sample
                && s.kind == kind
                && s.modifier.as_deref() == modifier.map(|m| m.as_str())
        });
        match hit {
            Some(s) => Ok((
                Target::Input {
                    offset: s.offset,
                    floored: matches!(
                        kind,
                        InputKind::Nominal | InputKind::HistoLo | InputKind::HistoHi
                    ),
                },
                s.len,
            )),
            None => Err(Error::InvalidInput(format!(
                "template: the model has no {}",
                sel.describe()
            ))),
        }
    }

    /// Builds the model for `values` (all inputs concatenated in order).
    pub fn instantiate(&self, values: &[f64]) -> Result<Instance> {
        if values.len() != self.n_values() {
            return Err(Error::InvalidInput(format!(
                "template: {} values given, the inputs ({}) need {}",
                values.len(),
                self.slots
                    .iter()
                    .map(|s| format!("{} [{}]", s.sel.describe(), s.len))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.n_values()
            )));
        }
        let mut inputs = self.model.inputs().to_vec();
        let n_main = self.model.n_main();
        let mut observed_main = self.model.observed_data()[..n_main].to_vec();
        let mut targets = Vec::with_capacity(values.len());
        let mut k = 0;
        for s in &self.slots {
            for j in 0..s.len {
                let v = values[k];
                if !v.is_finite() {
                    return Err(Error::InvalidInput(format!(
                        "template: value {j} of the {} is {v}",
                        s.sel.describe()
                    )));
                }
                match s.target {
                    Target::Input { offset, floored } => {
                        let v = if floored { self.floor.apply(v) } else { v };
                        inputs[offset + j] = v;
                        targets.push(Target::Input {
                            offset: offset + j,
                            floored,
                        });
                    }
                    Target::Data { offset } => {
                        observed_main[offset + j] = v;
                        targets.push(Target::Data { offset: offset + j });
                    }
                }
                k += 1;
            }
        }
        let model = self.model.with_inputs(inputs)?;
        Ok(Instance {
            model,
            observed_main,
            targets,
        })
    }
}
