//! The pyhf JSON workspace (schema 1.0.0): typed structs, reading with
//! located errors, writing, RFC 6902 patches and validation. Also anagrad's
//! transfer-function extension (channel `coordinates`, modifier types
//! `transferfactor` and `logshapefactor`): pyhf's schema rejects such a
//! workspace, so it never reaches a pyhf-only tool as silent garbage.
//!
//! Reading goes through `serde_json::Value` and a hand-written walker so that
//! every malformed input is reported with a JSON-path-like location such as
//! `channels[1].samples[0].modifiers[2] (histosys 'jes')` instead of serde's
//! generic "data did not match any variant".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

use super::modifiers::transfer::{Basis, Form, TfConstraint, TransferSpec};
use crate::{Error, Result};

/// A pyhf workspace: channels, observations and measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    /// Channels (regions), each with its samples.
    pub channels: Vec<Channel>,
    /// Measurements (POI and parameter configurations).
    pub measurements: Vec<Measurement>,
    /// Observed data, one entry per channel.
    pub observations: Vec<Observation>,
    /// Schema version; only `"1.0.0"` is accepted.
    pub version: String,
}

/// A channel (region) with its samples; its bin count is that of its first sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Unique channel name.
    pub name: String,
    /// Samples (at least one; all with the channel's bin count).
    pub samples: Vec<Sample>,
    /// Bin coordinates (anagrad extension, key `"coordinates"`; needed by
    /// transfer factors). `None` in a pure pyhf workspace.
    pub coordinates: Option<Coordinates>,
    /// Blinded bins (anagrad extension, key `"blinded"`): indices of bins
    /// whose observed counts are left out of the likelihood; their rates are
    /// still predicted (e.g. a signal window estimated from sidebands).
    pub blinded: Vec<usize>,
}

/// The analysis-variable coordinates of a channel's bins (anagrad extension):
/// `{"axes": ["x", "y"], "bins": [[x, y], ...], "ranges": [[lo, hi], ...]}`.
/// Transfer functions see each axis scaled to `[0, 1]` by its range
/// (default: the axis' minimum and maximum over the bins).
#[derive(Debug, Clone, PartialEq)]
pub struct Coordinates {
    /// Axis names (one or two).
    pub axes: Vec<String>,
    /// Per bin, one value per axis (typically the bin centre).
    pub bins: Vec<Vec<f64>>,
    /// Explicit scaling range per axis.
    pub ranges: Option<Vec<[f64; 2]>>,
}

impl Coordinates {
    /// The scaling range of each axis.
    pub fn axis_ranges(&self) -> Vec<[f64; 2]> {
        if let Some(r) = &self.ranges {
            return r.clone();
        }
        (0..self.axes.len())
            .map(|a| {
                let vals = self.bins.iter().filter_map(|b| b.get(a).copied());
                let lo = vals.clone().fold(f64::INFINITY, f64::min);
                let hi = vals.fold(f64::NEG_INFINITY, f64::max);
                [lo, hi]
            })
            .collect()
    }

    /// Per bin, the coordinates scaled to `[0, 1]` (0 on an axis whose
    /// range is a single value).
    pub fn scaled(&self) -> Vec<Vec<f64>> {
        let r = self.axis_ranges();
        self.bins
            .iter()
            .map(|b| {
                b.iter()
                    .zip(&r)
                    .map(|(&x, [lo, hi])| if hi > lo { (x - lo) / (hi - lo) } else { 0.0 })
                    .collect()
            })
            .collect()
    }

    /// Number of distinct values on axis `a`.
    pub fn distinct(&self, a: usize) -> usize {
        let mut v: Vec<f64> = self.bins.iter().filter_map(|b| b.get(a).copied()).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v.len()
    }
}

/// A sample: nominal yields per bin and the modifiers acting on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name, unique within its channel (shared across channels).
    pub name: String,
    /// Nominal yields per bin: finite; negative values (MC with negative
    /// weights) only under [`Validation::Lenient`].
    pub data: Vec<f64>,
    /// Modifiers acting on this sample.
    pub modifiers: Vec<Modifier>,
}

/// A modifier: its (parameter) name and its type-specific data.
#[derive(Debug, Clone, PartialEq)]
pub struct Modifier {
    /// Parameter (set) name; modifiers with equal names share parameters.
    pub name: String,
    /// Type and type-specific data.
    pub data: ModifierData,
}

/// The seven HistFactory modifier types and anagrad's two extensions, with their data shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum ModifierData {
    /// Correlated shape systematic: alternative histograms at α = ±1.
    HistoSys {
        lo_data: Vec<f64>,
        hi_data: Vec<f64>,
    },
    /// Luminosity (name must be `lumi`); configured by the measurement.
    Lumi,
    /// Free normalisation factor.
    NormFactor,
    /// Normalisation systematic: factors at α = ±1.
    NormSys { lo: f64, hi: f64 },
    /// Free per-bin factors.
    ShapeFactor,
    /// Uncorrelated per-bin systematic (absolute uncertainties), Poisson constrained.
    ShapeSys(Vec<f64>),
    /// MC statistical uncertainty (absolute, per bin), Gaussian constrained.
    StatError(Vec<f64>),
    /// Transfer function over the channel's bin coordinates (anagrad extension).
    TransferFactor(TransferSpec),
    /// Log-form free per-bin yields with reference counts `n0` (anagrad extension).
    LogShapeFactor(Vec<f64>),
}

/// Modifier type tags. The declaration order is pyhf's `histfactory_set`
/// order, which determines pyhf's parameter order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModifierType {
    HistoSys,
    Lumi,
    NormFactor,
    NormSys,
    ShapeFactor,
    ShapeSys,
    StatError,
    /// anagrad extension (after pyhf's types in the parameter order).
    TransferFactor,
    /// anagrad extension.
    LogShapeFactor,
}

impl ModifierType {
    /// The JSON spelling (`"histosys"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ModifierType::HistoSys => "histosys",
            ModifierType::Lumi => "lumi",
            ModifierType::NormFactor => "normfactor",
            ModifierType::NormSys => "normsys",
            ModifierType::ShapeFactor => "shapefactor",
            ModifierType::ShapeSys => "shapesys",
            ModifierType::StatError => "staterror",
            ModifierType::TransferFactor => "transferfactor",
            ModifierType::LogShapeFactor => "logshapefactor",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "histosys" => ModifierType::HistoSys,
            "lumi" => ModifierType::Lumi,
            "normfactor" => ModifierType::NormFactor,
            "normsys" => ModifierType::NormSys,
            "shapefactor" => ModifierType::ShapeFactor,
            "shapesys" => ModifierType::ShapeSys,
            "staterror" => ModifierType::StatError,
            "transferfactor" => ModifierType::TransferFactor,
            "logshapefactor" => ModifierType::LogShapeFactor,
            _ => return None,
        })
    }

    /// Whether the parameter set has one parameter per bin.
    pub fn is_binned(self) -> bool {
        matches!(
            self,
            ModifierType::ShapeFactor
                | ModifierType::ShapeSys
                | ModifierType::StatError
                | ModifierType::LogShapeFactor
        )
    }

    /// Whether this is one of anagrad's extensions (not readable by pyhf).
    pub fn is_extension(self) -> bool {
        matches!(
            self,
            ModifierType::TransferFactor | ModifierType::LogShapeFactor
        )
    }

    /// Whether the parameters carry a constraint term (and auxiliary data).
    pub fn is_constrained(self) -> bool {
        !matches!(
            self,
            ModifierType::NormFactor
                | ModifierType::ShapeFactor
                | ModifierType::TransferFactor
                | ModifierType::LogShapeFactor
        )
    }
}

impl fmt::Display for ModifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ModifierData {
    /// The type tag of this modifier.
    pub fn modifier_type(&self) -> ModifierType {
        match self {
            ModifierData::HistoSys { .. } => ModifierType::HistoSys,
            ModifierData::Lumi => ModifierType::Lumi,
            ModifierData::NormFactor => ModifierType::NormFactor,
            ModifierData::NormSys { .. } => ModifierType::NormSys,
            ModifierData::ShapeFactor => ModifierType::ShapeFactor,
            ModifierData::ShapeSys(_) => ModifierType::ShapeSys,
            ModifierData::StatError(_) => ModifierType::StatError,
            ModifierData::TransferFactor(_) => ModifierType::TransferFactor,
            ModifierData::LogShapeFactor(_) => ModifierType::LogShapeFactor,
        }
    }
}

impl Modifier {
    /// The type tag of this modifier.
    pub fn modifier_type(&self) -> ModifierType {
        self.data.modifier_type()
    }
}

/// Observed counts of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The channel observed.
    pub name: String,
    /// Observed counts per bin.
    pub data: Vec<f64>,
}

/// A named measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Unique measurement name.
    pub name: String,
    /// POI and parameter configurations.
    pub config: MeasurementConfig,
}

/// POI and parameter configurations of a measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementConfig {
    /// Name of the parameter of interest.
    pub poi: String,
    /// Per-parameter-set overrides.
    pub parameters: Vec<ParameterConfig>,
}

/// User configuration of one parameter set (overrides the modifier defaults).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParameterConfig {
    /// The parameter set configured.
    pub name: String,
    /// Initial values, one per parameter.
    pub inits: Option<Vec<f64>>,
    /// Bounds `[lo, hi]`, one per parameter.
    pub bounds: Option<Vec<[f64; 2]>>,
    /// Auxiliary data of the constraint (constrained types only).
    pub auxdata: Option<Vec<f64>>,
    /// Poisson constraint scale factors τ (shapesys only).
    pub factors: Option<Vec<f64>>,
    /// Gaussian constraint widths (staterror, lumi).
    pub sigmas: Option<Vec<f64>>,
    /// Hold every parameter of the set fixed (or float all).
    pub fixed: Option<bool>,
}

/// How strictly a workspace is checked.
///
/// Both modes reject everything that would make the model garbage (wrong bin
/// counts, non-finite numbers, negative observations or uncertainties,
/// duplicate names, bounds with lo > hi, inconsistent shared modifiers, ...).
/// They differ only where pyhf is lenient and the leniency is harmless:
/// [`Validation::Lenient`] (the default, as pyhf) accepts those inputs and
/// reports each as a located [`Warning`]; [`Validation::Strict`] rejects them
/// with a located error. The relaxed checks:
///
/// - a measurement's parameter configuration for a parameter the model does
///   not have (ROOT's exporter writes `lumi` into every measurement): ignored;
/// - negative nominal yields of a sample (MC with negative weights): accepted
///   as long as the total expected rate of every bin they enter is positive
///   at the nominal parameters (checked by [`Model::new`](super::Model::new),
///   an error otherwise, in both modes);
/// - an observation of a channel the workspace does not have: ignored;
/// - a measurement whose POI is not a parameter of the model (a published
///   background-only workspace, whose signal patch adds the POI): accepted;
///   building a model for that measurement is still an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Accept pyhf's harmless leniencies, with a warning each (default).
    #[default]
    Lenient,
    /// Reject them: a located error instead of each warning.
    Strict,
}

/// A located warning about an input accepted under [`Validation::Lenient`]
/// (or about something the library could not check); displayed as
/// `location: message`, like errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// JSON-path-like location, e.g. `measurements[0].config.parameters[0] ('lumi')`.
    pub location: String,
    /// What was accepted or ignored, and why it is harmless.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(location: impl Into<String>, message: impl Into<String>) -> Warning {
        Warning {
            location: tidy_location(&location.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A check that pyhf does not make: an error under [`Validation::Strict`],
/// a warning (`message` plus `lenient_note`) under [`Validation::Lenient`].
fn relaxed(
    mode: Validation,
    warnings: &mut Vec<Warning>,
    location: impl Into<String>,
    message: String,
    lenient_note: &str,
) -> Result<()> {
    match mode {
        Validation::Strict => Err(werr(location, message)),
        Validation::Lenient => {
            warnings.push(Warning::new(location, format!("{message}; {lenient_note}")));
            Ok(())
        }
    }
}

fn werr(location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Workspace {
        location: tidy_location(&location.into()),
        message: message.into(),
    }
}

/// Moves the innermost `('name')` / `(type 'name')` annotation of a path to
/// its end: `measurements[0] ('m').config.parameters[1] ('mu').bounds[0]`
/// becomes `measurements[0].config.parameters[1].bounds[0] ('mu')`, so every
/// location reads as a plain JSON path plus what it names.
fn tidy_location(loc: &str) -> String {
    let mut path = String::new();
    let mut note = None;
    let mut rest = loc;
    while let Some(i) = rest.find(" (") {
        let after = &rest[i + 2..];
        match after.find("')") {
            Some(j) => {
                path.push_str(&rest[..i]);
                note = Some(&after[..j + 1]);
                rest = &after[j + 2..];
            }
            None => break,
        }
    }
    path.push_str(rest);
    match note {
        Some(n) => format!("{path} ({n})"),
        None => path,
    }
}

// ---------------------------------------------------------------- reading

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn as_object<'a>(v: &'a Value, loc: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>> {
    let m = v
        .as_object()
        .ok_or_else(|| werr(loc, format!("expected an object, found {}", json_type(v))))?;
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(werr(
                loc,
                format!("unknown key '{k}' (allowed: {})", allowed.join(", ")),
            ));
        }
    }
    Ok(m)
}

fn field<'a>(m: &'a Map<String, Value>, key: &str, loc: &str) -> Result<&'a Value> {
    m.get(key)
        .ok_or_else(|| werr(loc, format!("missing required key '{key}'")))
}

fn string_field(m: &Map<String, Value>, key: &str, loc: &str) -> Result<String> {
    let v = field(m, key, loc)?;
    v.as_str().map(str::to_owned).ok_or_else(|| {
        werr(
            format!("{loc}.{key}"),
            format!("expected a string, found {}", json_type(v)),
        )
    })
}

fn number(v: &Value, loc: &str) -> Result<f64> {
    v.as_f64().ok_or_else(|| {
        let shown = match v {
            Value::String(_) | Value::Bool(_) | Value::Null => format!(" ({v})"),
            _ => String::new(),
        };
        werr(
            loc,
            format!("expected a number, found {}{shown}", json_type(v)),
        )
    })
}

fn numbers(v: &Value, loc: &str) -> Result<Vec<f64>> {
    let a = v.as_array().ok_or_else(|| {
        werr(
            loc,
            format!("expected an array of numbers, found {}", json_type(v)),
        )
    })?;
    if a.is_empty() {
        return Err(werr(
            loc,
            "expected at least one number, found an empty array",
        ));
    }
    a.iter()
        .enumerate()
        .map(|(i, x)| number(x, &format!("{loc}[{i}]")))
        .collect()
}

fn array<'a>(v: &'a Value, loc: &str, min1: bool) -> Result<&'a Vec<Value>> {
    let a = v
        .as_array()
        .ok_or_else(|| werr(loc, format!("expected an array, found {}", json_type(v))))?;
    if min1 && a.is_empty() {
        return Err(werr(
            loc,
            "expected at least one entry, found an empty array",
        ));
    }
    Ok(a)
}

fn name_of(v: &Value) -> String {
    v.get("name")
        .and_then(Value::as_str)
        .map(|s| format!(" ('{s}')"))
        .unwrap_or_default()
}

fn parse_modifier(v: &Value, loc: &str) -> Result<Modifier> {
    let m = as_object(v, loc, &["name", "type", "data"])?;
    let name = string_field(m, "name", loc)?;
    let ty_v = field(m, "type", loc)?;
    let ty_s = ty_v.as_str().ok_or_else(|| {
        werr(
            format!("{loc}.type"),
            format!("expected a string, found {}", json_type(ty_v)),
        )
    })?;
    let loc = format!("{loc} ({ty_s} '{name}')");
    let ty = ModifierType::parse(ty_s).ok_or_else(|| {
        werr(
            &loc,
            format!(
                "unknown modifier type '{ty_s}' (expected one of histosys, lumi, normfactor, \
                 normsys, shapefactor, shapesys, staterror, or anagrad's extensions \
                 transferfactor, logshapefactor)"
            ),
        )
    })?;
    let data = field(m, "data", &loc)?;
    let dloc = format!("{loc}.data");
    let expect_null = |d: &Value| -> Result<()> {
        if d.is_null() {
            Ok(())
        } else {
            Err(werr(
                &dloc,
                format!("a {ty_s} modifier takes data null, found {}", json_type(d)),
            ))
        }
    };
    let data = match ty {
        ModifierType::NormFactor => {
            expect_null(data)?;
            ModifierData::NormFactor
        }
        ModifierType::ShapeFactor => {
            expect_null(data)?;
            ModifierData::ShapeFactor
        }
        ModifierType::Lumi => {
            expect_null(data)?;
            ModifierData::Lumi
        }
        ModifierType::NormSys => {
            let d = as_object(data, &dloc, &["lo", "hi"])?;
            let lo = number(field(d, "lo", &dloc)?, &format!("{dloc}.lo"))?;
            let hi = number(field(d, "hi", &dloc)?, &format!("{dloc}.hi"))?;
            ModifierData::NormSys { lo, hi }
        }
        ModifierType::HistoSys => {
            let d = as_object(data, &dloc, &["lo_data", "hi_data"])?;
            let lo_data = numbers(field(d, "lo_data", &dloc)?, &format!("{dloc}.lo_data"))?;
            let hi_data = numbers(field(d, "hi_data", &dloc)?, &format!("{dloc}.hi_data"))?;
            ModifierData::HistoSys { lo_data, hi_data }
        }
        ModifierType::ShapeSys => ModifierData::ShapeSys(numbers(data, &dloc)?),
        ModifierType::StatError => ModifierData::StatError(numbers(data, &dloc)?),
        ModifierType::TransferFactor => ModifierData::TransferFactor(parse_transfer(data, &dloc)?),
        ModifierType::LogShapeFactor => ModifierData::LogShapeFactor(numbers(data, &dloc)?),
    };
    Ok(Modifier { name, data })
}

fn parse_transfer(v: &Value, loc: &str) -> Result<TransferSpec> {
    let d = as_object(v, loc, &["basis", "order", "form", "mc", "constraint"])?;
    let basis_s = string_field(d, "basis", loc)?;
    let basis = Basis::parse(&basis_s).ok_or_else(|| {
        werr(
            format!("{loc}.basis"),
            format!("unknown basis '{basis_s}' (expected polynomial, bernstein or chebyshev)"),
        )
    })?;
    let oloc = format!("{loc}.order");
    let order = numbers(field(d, "order", loc)?, &oloc)?
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            if o >= 0.0 && o.fract() == 0.0 && o <= 20.0 {
                Ok(o as usize)
            } else {
                Err(werr(
                    format!("{oloc}[{i}]"),
                    format!("an order is an integer in 0..=20, found {o}"),
                ))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if order.len() > 2 {
        return Err(werr(
            &oloc,
            format!(
                "one order per coordinate axis (1 or 2 axes), found {}",
                order.len()
            ),
        ));
    }
    let form = match d.get("form") {
        None | Some(Value::Null) => Form::Linear,
        Some(Value::String(f)) if f == "linear" => Form::Linear,
        Some(Value::String(f)) if f == "exp" => Form::Exp,
        Some(x) => {
            return Err(werr(
                format!("{loc}.form"),
                format!("expected \"linear\" or \"exp\", found {x}"),
            ))
        }
    };
    let mc = match d.get("mc") {
        None | Some(Value::Null) => None,
        Some(x) => Some(numbers(x, &format!("{loc}.mc"))?),
    };
    let constraint = match d.get("constraint") {
        None | Some(Value::Null) => None,
        Some(c) => {
            let cloc = format!("{loc}.constraint");
            let cm = as_object(c, &cloc, &["mean", "cov"])?;
            let mean = numbers(field(cm, "mean", &cloc)?, &format!("{cloc}.mean"))?;
            let covloc = format!("{cloc}.cov");
            let cov = array(field(cm, "cov", &cloc)?, &covloc, true)?
                .iter()
                .enumerate()
                .map(|(i, r)| numbers(r, &format!("{covloc}[{i}]")))
                .collect::<Result<Vec<_>>>()?;
            Some(TfConstraint { mean, cov })
        }
    };
    Ok(TransferSpec {
        basis,
        order,
        form,
        mc,
        constraint,
    })
}

fn parse_coordinates(v: &Value, loc: &str) -> Result<Coordinates> {
    let m = as_object(v, loc, &["axes", "bins", "ranges"])?;
    let aloc = format!("{loc}.axes");
    let axes = array(field(m, "axes", loc)?, &aloc, true)?
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.as_str().map(str::to_owned).ok_or_else(|| {
                werr(
                    format!("{aloc}[{i}]"),
                    format!("expected a string, found {}", json_type(a)),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bloc = format!("{loc}.bins");
    let bins = array(field(m, "bins", loc)?, &bloc, true)?
        .iter()
        .enumerate()
        .map(|(i, b)| numbers(b, &format!("{bloc}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let ranges = match m.get("ranges") {
        None | Some(Value::Null) => None,
        Some(r) => {
            let rloc = format!("{loc}.ranges");
            let mut out = Vec::new();
            for (i, pair) in array(r, &rloc, true)?.iter().enumerate() {
                let pl = format!("{rloc}[{i}]");
                let p = numbers(pair, &pl)?;
                if p.len() != 2 {
                    return Err(werr(
                        pl,
                        format!("a range is a pair [lo, hi], found {} numbers", p.len()),
                    ));
                }
                out.push([p[0], p[1]]);
            }
            Some(out)
        }
    };
    Ok(Coordinates { axes, bins, ranges })
}

fn parse_sample(v: &Value, loc: &str) -> Result<Sample> {
    let m = as_object(v, loc, &["name", "data", "modifiers"])?;
    let name = string_field(m, "name", loc)?;
    let data = numbers(field(m, "data", loc)?, &format!("{loc}.data"))?;
    let mods = array(
        field(m, "modifiers", loc)?,
        &format!("{loc}.modifiers"),
        false,
    )?;
    let modifiers = mods
        .iter()
        .enumerate()
        .map(|(i, x)| parse_modifier(x, &format!("{loc}.modifiers[{i}]")))
        .collect::<Result<_>>()?;
    Ok(Sample {
        name,
        data,
        modifiers,
    })
}

fn parse_channel(v: &Value, loc: &str) -> Result<Channel> {
    let m = as_object(v, loc, &["name", "samples", "coordinates", "blinded"])?;
    let name = string_field(m, "name", loc)?;
    let samples = array(field(m, "samples", loc)?, &format!("{loc}.samples"), true)?
        .iter()
        .enumerate()
        .map(|(i, x)| parse_sample(x, &format!("{loc}.samples[{i}]")))
        .collect::<Result<_>>()?;
    let coordinates = match m.get("coordinates") {
        None | Some(Value::Null) => None,
        Some(c) => Some(parse_coordinates(c, &format!("{loc}.coordinates"))?),
    };
    let blinded = match m.get("blinded") {
        None | Some(Value::Null) => Vec::new(),
        Some(b) => {
            let bl = format!("{loc}.blinded");
            array(b, &bl, false)?
                .iter()
                .enumerate()
                .map(|(i, x)| match x.as_u64() {
                    Some(k) => Ok(k as usize),
                    None => Err(werr(
                        format!("{bl}[{i}]"),
                        format!("expected a bin index (an integer >= 0), found {x}"),
                    )),
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    Ok(Channel {
        name,
        samples,
        coordinates,
        blinded,
    })
}

fn parse_parameter(v: &Value, loc: &str) -> Result<ParameterConfig> {
    let m = as_object(
        v,
        loc,
        &[
            "name", "inits", "bounds", "auxdata", "factors", "sigmas", "fixed",
        ],
    )?;
    let name = string_field(m, "name", loc)?;
    let opt_nums = |k: &str| -> Result<Option<Vec<f64>>> {
        m.get(k)
            .map(|x| numbers(x, &format!("{loc}.{k}")))
            .transpose()
    };
    let bounds = match m.get("bounds") {
        None => None,
        Some(b) => {
            let bl = format!("{loc}.bounds");
            let a = array(b, &bl, true)?;
            let mut out = Vec::with_capacity(a.len());
            for (i, pair) in a.iter().enumerate() {
                let pl = format!("{bl}[{i}]");
                let p = numbers(pair, &pl)?;
                if p.len() != 2 {
                    return Err(werr(
                        pl,
                        format!("a bound is a pair [lo, hi], found {} numbers", p.len()),
                    ));
                }
                out.push([p[0], p[1]]);
            }
            Some(out)
        }
    };
    let fixed = match m.get("fixed") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(x) => {
            return Err(werr(
                format!("{loc}.fixed"),
                format!("expected a boolean, found {}", json_type(x)),
            ))
        }
    };
    Ok(ParameterConfig {
        name,
        inits: opt_nums("inits")?,
        bounds,
        auxdata: opt_nums("auxdata")?,
        factors: opt_nums("factors")?,
        sigmas: opt_nums("sigmas")?,
        fixed,
    })
}

fn parse_measurement(v: &Value, loc: &str) -> Result<Measurement> {
    let m = as_object(v, loc, &["name", "config"])?;
    let name = string_field(m, "name", loc)?;
    let cloc = format!("{loc}.config");
    let c = as_object(field(m, "config", loc)?, &cloc, &["poi", "parameters"])?;
    let poi = string_field(c, "poi", &cloc)?;
    let ploc = format!("{cloc}.parameters");
    let parameters = array(field(c, "parameters", &cloc)?, &ploc, false)?
        .iter()
        .enumerate()
        .map(|(i, x)| parse_parameter(x, &format!("{ploc}[{i}]{}", name_of(x))))
        .collect::<Result<_>>()?;
    Ok(Measurement {
        name,
        config: MeasurementConfig { poi, parameters },
    })
}

fn parse_observation(v: &Value, loc: &str) -> Result<Observation> {
    let m = as_object(v, loc, &["name", "data"])?;
    Ok(Observation {
        name: string_field(m, "name", loc)?,
        data: numbers(field(m, "data", loc)?, &format!("{loc}.data"))?,
    })
}

// ---------------------------------------------------------------- writing

fn nums_value(x: &[f64]) -> Value {
    Value::Array(x.iter().map(|&v| Value::from(v)).collect())
}

fn modifier_value(m: &Modifier) -> Value {
    let data = match &m.data {
        ModifierData::Lumi | ModifierData::NormFactor | ModifierData::ShapeFactor => Value::Null,
        ModifierData::NormSys { lo, hi } => serde_json::json!({ "hi": hi, "lo": lo }),
        ModifierData::HistoSys { lo_data, hi_data } => {
            serde_json::json!({ "hi_data": nums_value(hi_data), "lo_data": nums_value(lo_data) })
        }
        ModifierData::ShapeSys(d)
        | ModifierData::StatError(d)
        | ModifierData::LogShapeFactor(d) => nums_value(d),
        ModifierData::TransferFactor(t) => {
            let mut m = Map::new();
            m.insert("basis".into(), Value::from(t.basis.as_str()));
            m.insert(
                "order".into(),
                Value::Array(t.order.iter().map(|&o| Value::from(o)).collect()),
            );
            m.insert("form".into(), Value::from(t.form.as_str()));
            if let Some(mc) = &t.mc {
                m.insert("mc".into(), nums_value(mc));
            }
            if let Some(c) = &t.constraint {
                m.insert(
                    "constraint".into(),
                    serde_json::json!({
                        "mean": nums_value(&c.mean),
                        "cov": c.cov.iter().map(|r| nums_value(r)).collect::<Vec<_>>(),
                    }),
                );
            }
            Value::Object(m)
        }
    };
    serde_json::json!({ "name": m.name, "type": m.modifier_type().as_str(), "data": data })
}

fn parameter_value(p: &ParameterConfig) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(p.name.clone()));
    if let Some(x) = &p.inits {
        m.insert("inits".into(), nums_value(x));
    }
    if let Some(b) = &p.bounds {
        m.insert(
            "bounds".into(),
            Value::Array(b.iter().map(|pair| nums_value(pair)).collect()),
        );
    }
    if let Some(x) = &p.auxdata {
        m.insert("auxdata".into(), nums_value(x));
    }
    if let Some(x) = &p.factors {
        m.insert("factors".into(), nums_value(x));
    }
    if let Some(x) = &p.sigmas {
        m.insert("sigmas".into(), nums_value(x));
    }
    if let Some(f) = p.fixed {
        m.insert("fixed".into(), Value::Bool(f));
    }
    Value::Object(m)
}

// ---------------------------------------------------------------- API

impl Workspace {
    /// Parses and validates a workspace from JSON text
    /// ([`Validation::Lenient`]; the warnings come from [`Workspace::validate`]).
    pub fn from_json_str(s: &str) -> Result<Workspace> {
        Self::from_json_str_with(s, Validation::Lenient)
    }

    /// Parses and validates a workspace from JSON text with the given validation.
    pub fn from_json_str_with(s: &str, validation: Validation) -> Result<Workspace> {
        let v: Value = serde_json::from_str(s).map_err(|source| Error::Json {
            context: "workspace".into(),
            source,
        })?;
        Self::from_value_with(&v, validation)
    }

    /// Reads, parses and validates a workspace file ([`Validation::Lenient`]).
    pub fn from_path(path: &Path) -> Result<Workspace> {
        Self::from_path_with(path, Validation::Lenient)
    }

    /// Reads, parses and validates a workspace file with the given validation.
    pub fn from_path_with(path: &Path, validation: Validation) -> Result<Workspace> {
        Self::from_value_with(&read_json(path)?, validation)
    }

    /// Builds and validates a workspace from a parsed JSON value ([`Validation::Lenient`]).
    pub fn from_value(v: &Value) -> Result<Workspace> {
        Self::from_value_with(v, Validation::Lenient)
    }

    /// Builds and validates a workspace from a parsed JSON value with the given validation.
    pub fn from_value_with(v: &Value, validation: Validation) -> Result<Workspace> {
        let m = as_object(
            v,
            "workspace",
            &["channels", "measurements", "observations", "version"],
        )?;
        let version = string_field(m, "version", "workspace")?;
        let channels = array(field(m, "channels", "workspace")?, "channels", true)?
            .iter()
            .enumerate()
            .map(|(i, x)| parse_channel(x, &format!("channels[{i}]")))
            .collect::<Result<_>>()?;
        let measurements = array(field(m, "measurements", "workspace")?, "measurements", true)?
            .iter()
            .enumerate()
            .map(|(i, x)| parse_measurement(x, &format!("measurements[{i}]{}", name_of(x))))
            .collect::<Result<_>>()?;
        let observations = array(field(m, "observations", "workspace")?, "observations", true)?
            .iter()
            .enumerate()
            .map(|(i, x)| parse_observation(x, &format!("observations[{i}]{}", name_of(x))))
            .collect::<Result<_>>()?;
        let ws = Workspace {
            channels,
            measurements,
            observations,
            version,
        };
        ws.validate_with(validation)?;
        Ok(ws)
    }

    /// The workspace as a JSON value (pyhf's layout and key names).
    pub fn to_value(&self) -> Value {
        let channels = self
            .channels
            .iter()
            .map(|c| {
                let samples = c
                    .samples
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name,
                            "data": nums_value(&s.data),
                            "modifiers": s.modifiers.iter().map(modifier_value).collect::<Vec<_>>(),
                        })
                    })
                    .collect::<Vec<_>>();
                let mut v = serde_json::json!({ "name": c.name, "samples": samples });
                if let (Some(co), Some(obj)) = (&c.coordinates, v.as_object_mut()) {
                    let mut m = Map::new();
                    m.insert(
                        "axes".into(),
                        Value::Array(co.axes.iter().map(|a| Value::from(a.clone())).collect()),
                    );
                    m.insert(
                        "bins".into(),
                        Value::Array(co.bins.iter().map(|b| nums_value(b)).collect()),
                    );
                    if let Some(r) = &co.ranges {
                        m.insert(
                            "ranges".into(),
                            Value::Array(r.iter().map(|p| nums_value(p)).collect()),
                        );
                    }
                    obj.insert("coordinates".into(), Value::Object(m));
                }
                if let (false, Some(obj)) = (c.blinded.is_empty(), v.as_object_mut()) {
                    obj.insert(
                        "blinded".into(),
                        Value::Array(c.blinded.iter().map(|&b| Value::from(b)).collect()),
                    );
                }
                v
            })
            .collect::<Vec<_>>();
        let measurements = self
            .measurements
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "config": {
                        "poi": m.config.poi,
                        "parameters": m.config.parameters.iter().map(parameter_value).collect::<Vec<_>>(),
                    }
                })
            })
            .collect::<Vec<_>>();
        let observations = self
            .observations
            .iter()
            .map(|o| serde_json::json!({ "name": o.name, "data": nums_value(&o.data) }))
            .collect::<Vec<_>>();
        serde_json::json!({
            "channels": channels,
            "measurements": measurements,
            "observations": observations,
            "version": self.version,
        })
    }

    /// The workspace as pretty-printed JSON text.
    pub fn to_json_string(&self) -> String {
        // Serialising a `Value` built from finite numbers cannot fail.
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }

    /// Applies an RFC 6902 JSON patch (as `pyhf cls -p` does) and re-validates
    /// ([`Validation::Lenient`]). `label` names the patch in errors (e.g. its
    /// file name). On error the workspace is left unchanged.
    pub fn apply_patch(&mut self, patch_json: &str, label: &str) -> Result<()> {
        self.apply_patch_with(patch_json, label, Validation::Lenient)
    }

    /// [`Workspace::apply_patch`] with the given validation of the result.
    pub fn apply_patch_with(
        &mut self,
        patch_json: &str,
        label: &str,
        validation: Validation,
    ) -> Result<()> {
        let patch: json_patch::Patch =
            serde_json::from_str(patch_json).map_err(|e| Error::Patch {
                patch: label.to_owned(),
                message: format!("not a valid RFC 6902 JSON patch: {e}"),
            })?;
        let mut v = self.to_value();
        json_patch::patch(&mut v, &patch).map_err(|e| Error::Patch {
            patch: label.to_owned(),
            message: e.to_string(),
        })?;
        *self = patched_workspace(&v, label, validation)?;
        Ok(())
    }

    /// Names of the measurements, in file order.
    pub fn measurement_names(&self) -> Vec<&str> {
        self.measurements.iter().map(|m| m.name.as_str()).collect()
    }

    /// The measurement named `name`, or the first one (pyhf's default) when `None`.
    pub fn measurement(&self, name: Option<&str>) -> Result<&Measurement> {
        match name {
            None => self
                .measurements
                .first()
                .ok_or_else(|| werr("measurements", "no measurements have been defined")),
            Some(n) => self
                .measurements
                .iter()
                .find(|m| m.name == n)
                .ok_or_else(|| {
                    werr(
                        "measurements",
                        format!(
                            "no measurement named '{n}' (available: {})",
                            self.measurement_names().join(", ")
                        ),
                    )
                }),
        }
    }

    /// Checks everything pyhf would reject (and a few things pyhf silently
    /// mishandles), reporting the first problem with its location; returns
    /// the warnings of [`Validation::Lenient`] (pyhf's harmless leniencies).
    pub fn validate(&self) -> Result<Vec<Warning>> {
        self.validate_with(Validation::Lenient)
    }

    /// [`Workspace::validate`] with the given validation: under
    /// [`Validation::Strict`] every would-be warning is an error instead.
    pub fn validate_with(&self, validation: Validation) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        self.validate_into(validation, &mut warnings)?;
        Ok(warnings)
    }

    fn validate_into(&self, mode: Validation, warnings: &mut Vec<Warning>) -> Result<()> {
        if self.version != "1.0.0" {
            return Err(werr(
                "version",
                format!(
                    "unsupported schema version '{}', expected '1.0.0'",
                    self.version
                ),
            ));
        }
        let pars = self.parameter_sets(mode, warnings)?;
        self.validate_observations(mode, warnings)?;
        if self.measurements.is_empty() {
            return Err(werr("measurements", "at least one measurement is required"));
        }
        let mut seen = HashMap::new();
        for (i, m) in self.measurements.iter().enumerate() {
            let loc = format!("measurements[{i}] ('{}')", m.name);
            if let Some(j) = seen.insert(m.name.as_str(), i) {
                return Err(werr(
                    loc,
                    format!("duplicate measurement name (also measurements[{j}])"),
                ));
            }
            validate_measurement(m, &loc, &pars, mode, warnings)?;
        }
        Ok(())
    }

    fn validate_observations(&self, mode: Validation, warnings: &mut Vec<Warning>) -> Result<()> {
        let nbins: HashMap<&str, usize> = self
            .channels
            .iter()
            .map(|c| (c.name.as_str(), c.samples[0].data.len()))
            .collect();
        let mut seen = HashMap::new();
        for (i, o) in self.observations.iter().enumerate() {
            let loc = format!("observations[{i}] ('{}')", o.name);
            if let Some(j) = seen.insert(o.name.as_str(), i) {
                return Err(werr(
                    loc,
                    format!(
                        "duplicate observation for channel '{}' (also observations[{j}])",
                        o.name
                    ),
                ));
            }
            let Some(&n) = nbins.get(o.name.as_str()) else {
                relaxed(
                    mode,
                    warnings,
                    &loc,
                    format!("no channel named '{}' in the workspace", o.name),
                    "the observation is ignored (as pyhf does)",
                )?;
                continue;
            };
            if o.data.len() != n {
                return Err(werr(
                    format!("{loc}.data"),
                    format!("has {} bins, channel '{}' has {n}", o.data.len(), o.name),
                ));
            }
            for (b, &x) in o.data.iter().enumerate() {
                if !x.is_finite() || x < 0.0 {
                    return Err(werr(
                        format!("{loc}.data[{b}]"),
                        format!("observed count must be finite and >= 0, found {x}"),
                    ));
                }
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            if !seen.contains_key(c.name.as_str()) {
                return Err(werr(
                    format!("channels[{i}] ('{}')", c.name),
                    "no observation for this channel",
                ));
            }
        }
        Ok(())
    }

    /// The parameter sets the channels declare, keyed by name, after checking
    /// the channel/sample/modifier structure and the sharing rules.
    pub(crate) fn parameter_sets(
        &self,
        mode: Validation,
        warnings: &mut Vec<Warning>,
    ) -> Result<BTreeMap<String, ParSetDecl>> {
        if self.channels.is_empty() {
            return Err(werr("channels", "at least one channel is required"));
        }
        let mut chan_seen = HashMap::new();
        let mut decls: BTreeMap<String, ParSetDecl> = BTreeMap::new();
        // staterror name -> global sample name -> channels covered
        let mut stat_cover: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        let nbins_of: HashMap<&str, usize> = self
            .channels
            .iter()
            .filter_map(|c| c.samples.first().map(|s| (c.name.as_str(), s.data.len())))
            .collect();
        for (ci, c) in self.channels.iter().enumerate() {
            let cloc = format!("channels[{ci}] ('{}')", c.name);
            if let Some(j) = chan_seen.insert(c.name.as_str(), ci) {
                return Err(werr(
                    cloc,
                    format!("duplicate channel name (also channels[{j}])"),
                ));
            }
            let Some(first) = c.samples.first() else {
                return Err(werr(cloc, "a channel needs at least one sample"));
            };
            let nbins = first.data.len();
            if nbins == 0 {
                return Err(werr(
                    format!("{cloc}.samples[0].data"),
                    "a sample needs at least one bin",
                ));
            }
            if let Some(co) = &c.coordinates {
                validate_coordinates(co, &format!("{cloc}.coordinates"), nbins)?;
            }
            let mut blind_seen = BTreeSet::new();
            for (i, &b) in c.blinded.iter().enumerate() {
                if b >= nbins || !blind_seen.insert(b) {
                    return Err(werr(
                        format!("{cloc}.blinded[{i}]"),
                        if b >= nbins {
                            format!("bin {b} does not exist (the channel has {nbins} bins)")
                        } else {
                            format!("bin {b} is listed twice")
                        },
                    ));
                }
            }
            let mut samp_seen = HashMap::new();
            for (si, s) in c.samples.iter().enumerate() {
                let sloc = format!("channels[{ci}].samples[{si}] ('{}')", s.name);
                if let Some(j) = samp_seen.insert(s.name.as_str(), si) {
                    return Err(werr(
                        sloc,
                        format!(
                            "duplicate sample name in channel '{}' (also samples[{j}])",
                            c.name
                        ),
                    ));
                }
                if s.data.len() != nbins {
                    return Err(werr(
                        format!("{sloc}.data"),
                        format!(
                            "has {} bins, channel '{}' has {nbins}",
                            s.data.len(),
                            c.name
                        ),
                    ));
                }
                let dloc = format!("{sloc}.data");
                check_finite(&s.data, &dloc, "nominal yield", mode == Validation::Strict)?;
                let negative: Vec<usize> = (0..nbins).filter(|&b| s.data[b] < 0.0).collect();
                if let Some(&b0) = negative.first() {
                    let more = match negative.len() {
                        1 => String::new(),
                        n => format!(" (and {} more bins)", n - 1),
                    };
                    warnings.push(Warning::new(
                        format!("{dloc}[{b0}]"),
                        format!(
                            "negative nominal yield {}{more}; accepted (as pyhf does) because the total rate of each bin must be positive at the nominal parameters",
                            s.data[b0]
                        ),
                    ));
                }
                let mut mod_seen = HashMap::new();
                for (mi, m) in s.modifiers.iter().enumerate() {
                    let ty = m.modifier_type();
                    let mloc = format!(
                        "channels[{ci}].samples[{si}].modifiers[{mi}] ({ty} '{}')",
                        m.name
                    );
                    if let Some(j) = mod_seen.insert((ty, m.name.as_str()), mi) {
                        return Err(werr(
                            mloc,
                            format!("the same modifier appears twice on this sample (also modifiers[{j}])"),
                        ));
                    }
                    let bins_msg = |what: &str, n: usize| {
                        werr(
                            &mloc,
                            format!("{what} has {n} bins, channel '{}' has {nbins}", c.name),
                        )
                    };
                    match &m.data {
                        ModifierData::Lumi if m.name != "lumi" => {
                            return Err(werr(
                                &mloc,
                                "a lumi modifier must be named 'lumi' (pyhf schema 1.0.0)",
                            ));
                        }
                        ModifierData::NormSys { lo, hi } if !lo.is_finite() || !hi.is_finite() => {
                            return Err(werr(
                                &mloc,
                                format!("lo/hi must be finite, found lo={lo}, hi={hi}"),
                            ));
                        }
                        ModifierData::HistoSys { lo_data, hi_data } => {
                            if lo_data.len() != nbins {
                                return Err(bins_msg("lo_data", lo_data.len()));
                            }
                            if hi_data.len() != nbins {
                                return Err(bins_msg("hi_data", hi_data.len()));
                            }
                            check_finite(lo_data, &format!("{mloc}.data.lo_data"), "yield", false)?;
                            check_finite(hi_data, &format!("{mloc}.data.hi_data"), "yield", false)?;
                        }
                        ModifierData::ShapeSys(d) | ModifierData::StatError(d) => {
                            if d.len() != nbins {
                                return Err(bins_msg("data", d.len()));
                            }
                            check_finite(d, &format!("{mloc}.data"), "uncertainty", true)?;
                        }
                        ModifierData::LogShapeFactor(d) => {
                            if d.len() != nbins {
                                return Err(bins_msg("data", d.len()));
                            }
                            check_positive(d, &format!("{mloc}.data"), "reference count")?;
                        }
                        ModifierData::TransferFactor(t) => {
                            validate_transfer(t, &mloc, c, nbins)?;
                        }
                        _ => {}
                    }
                    let n_pars = match &m.data {
                        ModifierData::TransferFactor(t) => t.n_coefficients(),
                        _ if ty.is_binned() => nbins,
                        _ => 1,
                    };
                    match decls.get_mut(&m.name) {
                        None => {
                            decls.insert(
                                m.name.clone(),
                                ParSetDecl {
                                    ty,
                                    n_pars,
                                    first_location: mloc.clone(),
                                    also_histosys: ty == ModifierType::HistoSys,
                                    also_normsys: ty == ModifierType::NormSys,
                                    data: m.data.clone(),
                                },
                            );
                        }
                        Some(d) => {
                            let compatible = d.ty == ty
                                || matches!(
                                    (d.ty, ty),
                                    (ModifierType::HistoSys, ModifierType::NormSys)
                                        | (ModifierType::NormSys, ModifierType::HistoSys)
                                );
                            if !compatible {
                                return Err(werr(
                                    mloc,
                                    format!(
                                        "parameter '{}' is also declared as a {} modifier at {}; only normsys and histosys may share a name across types",
                                        m.name, d.ty, d.first_location
                                    ),
                                ));
                            }
                            if ty == ModifierType::ShapeSys {
                                return Err(werr(
                                    mloc,
                                    format!(
                                        "shapesys '{}' is already declared at {}; shapesys modifiers cannot be shared",
                                        m.name, d.first_location
                                    ),
                                ));
                            }
                            match (&d.data, &m.data) {
                                (
                                    ModifierData::TransferFactor(a),
                                    ModifierData::TransferFactor(b),
                                ) if !a.same_parameters(b) => {
                                    return Err(werr(
                                        mloc,
                                        format!(
                                            "transferfactor '{}' is shared with {}, which has a different basis, order, form or constraint",
                                            m.name, d.first_location
                                        ),
                                    ));
                                }
                                (
                                    ModifierData::LogShapeFactor(a),
                                    ModifierData::LogShapeFactor(b),
                                ) if a != b => {
                                    return Err(werr(
                                        mloc,
                                        format!(
                                            "logshapefactor '{}' is shared with {}, whose reference counts differ (bin counts {} and {})",
                                            m.name, d.first_location, b.len(), a.len()
                                        ),
                                    ));
                                }
                                _ => {}
                            }
                            if ty == ModifierType::ShapeFactor && d.n_pars != nbins {
                                return Err(werr(
                                    mloc,
                                    format!(
                                        "shapefactor '{}' is shared by channels with different bin counts ({} here, {} at {})",
                                        m.name, nbins, d.n_pars, d.first_location
                                    ),
                                ));
                            }
                            d.also_histosys |= ty == ModifierType::HistoSys;
                            d.also_normsys |= ty == ModifierType::NormSys;
                        }
                    }
                    if ty == ModifierType::StatError {
                        stat_cover
                            .entry(m.name.clone())
                            .or_default()
                            .entry(s.name.clone())
                            .or_default()
                            .insert(c.name.clone());
                    }
                }
            }
        }
        // pyhf requires every sample subscribing to a staterror to cover the same channels.
        for (name, per_sample) in &stat_cover {
            let mut it = per_sample.iter();
            if let Some((s0, cov0)) = it.next() {
                for (s, cov) in it {
                    if cov != cov0 {
                        let loc = decls
                            .get(name)
                            .map(|d| d.first_location.clone())
                            .unwrap_or_default();
                        return Err(werr(
                            loc,
                            format!(
                                "staterror '{name}' covers channels {:?} for sample '{s0}' but {:?} for sample '{s}'; every sample must use it in the same channels",
                                cov0, cov
                            ),
                        ));
                    }
                }
                let n: usize = cov0
                    .iter()
                    .map(|c| nbins_of.get(c.as_str()).copied().unwrap_or(0))
                    .sum();
                if let Some(d) = decls.get_mut(name) {
                    d.n_pars = n;
                }
            }
        }
        Ok(decls)
    }
}

/// What the channels declare about one parameter set.
#[derive(Debug, Clone)]
pub(crate) struct ParSetDecl {
    /// The type of the first modifier with this name (normsys/histosys may mix).
    pub ty: ModifierType,
    pub n_pars: usize,
    pub first_location: String,
    pub also_histosys: bool,
    pub also_normsys: bool,
    /// The first declaration's data (sharing checks of the extensions).
    pub data: ModifierData,
}

fn check_positive(x: &[f64], loc: &str, what: &str) -> Result<()> {
    for (b, &v) in x.iter().enumerate() {
        if !(v.is_finite() && v > 0.0) {
            return Err(werr(
                format!("{loc}[{b}]"),
                format!("{what} must be finite and > 0, found {v}"),
            ));
        }
    }
    Ok(())
}

fn validate_coordinates(co: &Coordinates, loc: &str, nbins: usize) -> Result<()> {
    let na = co.axes.len();
    if na > 2 {
        return Err(werr(
            format!("{loc}.axes"),
            format!("one or two coordinate axes are supported, found {na}"),
        ));
    }
    if co.bins.len() != nbins {
        return Err(werr(
            format!("{loc}.bins"),
            format!(
                "has {} entries, the channel has {nbins} bins",
                co.bins.len()
            ),
        ));
    }
    for (b, x) in co.bins.iter().enumerate() {
        let bl = format!("{loc}.bins[{b}]");
        if x.len() != na {
            return Err(werr(
                bl,
                format!("has {} values, expected one per axis ({na})", x.len()),
            ));
        }
        check_finite(x, &bl, "coordinate", false)?;
    }
    if let Some(r) = &co.ranges {
        if r.len() != na {
            return Err(werr(
                format!("{loc}.ranges"),
                format!("has {} ranges, expected one per axis ({na})", r.len()),
            ));
        }
        for (a, [lo, hi]) in r.iter().enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(werr(
                    format!("{loc}.ranges[{a}]"),
                    format!("a range needs finite lo < hi, found [{lo}, {hi}]"),
                ));
            }
            for (b, x) in co.bins.iter().enumerate() {
                if x[a] < *lo || x[a] > *hi {
                    return Err(werr(
                        format!("{loc}.bins[{b}][{a}]"),
                        format!(
                            "coordinate {} of axis '{}' lies outside its range [{lo}, {hi}]",
                            x[a], co.axes[a]
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_transfer(t: &TransferSpec, mloc: &str, c: &Channel, nbins: usize) -> Result<()> {
    let Some(co) = &c.coordinates else {
        return Err(werr(
            mloc,
            format!(
                "a transferfactor needs the bin coordinates of channel '{}' (its key \"coordinates\")",
                c.name
            ),
        ));
    };
    if t.order.len() != co.axes.len() {
        return Err(werr(
            format!("{mloc}.data.order"),
            format!(
                "has {} orders, channel '{}' has {} coordinate axes ({})",
                t.order.len(),
                c.name,
                co.axes.len(),
                co.axes.join(", ")
            ),
        ));
    }
    for (a, &o) in t.order.iter().enumerate() {
        let d = co.distinct(a);
        if o + 1 > d {
            return Err(werr(
                format!("{mloc}.data.order[{a}]"),
                format!(
                    "order {o} on axis '{}' needs at least {} distinct coordinate values, channel '{}' has {d}",
                    co.axes[a],
                    o + 1,
                    c.name
                ),
            ));
        }
    }
    if let Some(mc) = &t.mc {
        if mc.len() != nbins {
            return Err(werr(
                format!("{mloc}.data.mc"),
                format!("has {} bins, channel '{}' has {nbins}", mc.len(), c.name),
            ));
        }
        check_positive(mc, &format!("{mloc}.data.mc"), "TF_MC")?;
    }
    if let Some(con) = &t.constraint {
        let k = t.n_coefficients();
        let cl = format!("{mloc}.data.constraint");
        if con.mean.len() != k {
            return Err(werr(
                format!("{cl}.mean"),
                format!(
                    "has {} values, the transfer function has {k} coefficients",
                    con.mean.len()
                ),
            ));
        }
        check_finite(&con.mean, &format!("{cl}.mean"), "mean", false)?;
        if con.cov.len() != k || con.cov.iter().any(|r| r.len() != k) {
            return Err(werr(
                format!("{cl}.cov"),
                format!("must be a {k} x {k} matrix"),
            ));
        }
        for i in 0..k {
            for j in 0..i {
                let (a, b) = (con.cov[i][j], con.cov[j][i]);
                if !(a.is_finite() && b.is_finite()) || (a - b).abs() > 1e-12 * (a.abs() + b.abs())
                {
                    return Err(werr(
                        format!("{cl}.cov[{i}][{j}]"),
                        format!("the covariance must be finite and symmetric, found {a} and cov[{j}][{i}] = {b}"),
                    ));
                }
            }
        }
        if TransferSpec::cholesky(con).is_none() {
            return Err(werr(
                format!("{cl}.cov"),
                "the covariance is not positive definite",
            ));
        }
    }
    Ok(())
}

fn check_finite(x: &[f64], loc: &str, what: &str, nonneg: bool) -> Result<()> {
    for (b, &v) in x.iter().enumerate() {
        if !v.is_finite() || (nonneg && v < 0.0) {
            let req = if nonneg { "finite and >= 0" } else { "finite" };
            return Err(werr(
                format!("{loc}[{b}]"),
                format!("{what} must be {req}, found {v}"),
            ));
        }
    }
    Ok(())
}

fn validate_measurement(
    m: &Measurement,
    loc: &str,
    pars: &BTreeMap<String, ParSetDecl>,
    mode: Validation,
    warnings: &mut Vec<Warning>,
) -> Result<()> {
    let poi = &m.config.poi;
    if !poi.is_empty() {
        match pars.get(poi) {
            None => relaxed(
                mode,
                warnings,
                format!("{loc}.config.poi"),
                format!("the POI '{poi}' is not a parameter of the model"),
                "accepted (as pyhf does) until a model is built for this measurement: a background-only workspace gets its POI from a signal patch",
            )?,
            Some(d) if d.n_pars > 1 => {
                return Err(werr(
                    format!("{loc}.config.poi"),
                    format!("the POI '{poi}' is a {} with {} parameters; the POI must be a single parameter", d.ty, d.n_pars),
                ))
            }
            _ => {}
        }
    }
    let mut seen = HashMap::new();
    let mut lumi_cfg = false;
    for (i, p) in m.config.parameters.iter().enumerate() {
        let ploc = format!("{loc}.config.parameters[{i}] ('{}')", p.name);
        if let Some(j) = seen.insert(p.name.as_str(), i) {
            return Err(werr(
                ploc,
                format!("duplicate parameter configuration (also parameters[{j}])"),
            ));
        }
        let Some(d) = pars.get(&p.name) else {
            relaxed(
                mode,
                warnings,
                &ploc,
                format!(
                    "configures '{}', which is not a parameter of the model",
                    p.name
                ),
                "the configuration is ignored (as pyhf does)",
            )?;
            continue;
        };
        let n = d.n_pars;
        let ty = d.ty;
        let check_len = |k: &str, len: usize| -> Result<()> {
            if len != n {
                Err(werr(
                    format!("{ploc}.{k}"),
                    format!(
                        "has {len} values, parameter set '{}' ({ty}) has {n} parameters",
                        p.name
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let unused = |k: &str| {
            werr(
                format!("{ploc}.{k}"),
                format!("a {ty} parameter does not use '{k}'"),
            )
        };
        if let Some(x) = &p.inits {
            check_len("inits", x.len())?;
            check_finite(x, &format!("{ploc}.inits"), "init", false)?;
        }
        if let Some(b) = &p.bounds {
            check_len("bounds", b.len())?;
            for (k, [lo, hi]) in b.iter().enumerate() {
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    return Err(werr(
                        format!("{ploc}.bounds[{k}]"),
                        format!("lower bound {lo} is above upper bound {hi}"),
                    ));
                }
            }
        }
        if let Some(x) = &p.auxdata {
            if !ty.is_constrained() {
                return Err(unused("auxdata"));
            }
            check_len("auxdata", x.len())?;
            check_finite(x, &format!("{ploc}.auxdata"), "auxdata", false)?;
        }
        if let Some(x) = &p.sigmas {
            if !matches!(ty, ModifierType::StatError | ModifierType::Lumi) {
                return Err(unused("sigmas"));
            }
            check_len("sigmas", x.len())?;
            for (k, &s) in x.iter().enumerate() {
                if !(s.is_finite() && s > 0.0) {
                    return Err(werr(
                        format!("{ploc}.sigmas[{k}]"),
                        format!("sigma must be finite and > 0, found {s}"),
                    ));
                }
            }
        }
        if let Some(x) = &p.factors {
            if ty != ModifierType::ShapeSys {
                return Err(unused("factors"));
            }
            check_len("factors", x.len())?;
            for (k, &s) in x.iter().enumerate() {
                if !(s.is_finite() && s > 0.0) {
                    return Err(werr(
                        format!("{ploc}.factors[{k}]"),
                        format!("factor must be finite and > 0, found {s}"),
                    ));
                }
            }
        }
        if ty == ModifierType::Lumi {
            lumi_cfg = true;
            for (k, present) in [
                ("inits", p.inits.is_some()),
                ("bounds", p.bounds.is_some()),
                ("auxdata", p.auxdata.is_some()),
                ("sigmas", p.sigmas.is_some()),
            ] {
                if !present {
                    return Err(werr(
                        &ploc,
                        format!("the lumi parameter needs '{k}' (pyhf has no default)"),
                    ));
                }
            }
        }
    }
    if !lumi_cfg {
        if let Some(d) = pars.values().find(|d| d.ty == ModifierType::Lumi) {
            return Err(werr(
                format!("{loc}.config.parameters"),
                format!(
                    "the model has a lumi modifier ({}) but the measurement does not configure 'lumi' (inits, bounds, auxdata, sigmas)",
                    d.first_location
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a JSON file into a value, with the path in errors.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let s = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&s).map_err(|source| Error::Json {
        context: path.display().to_string(),
        source,
    })
}

/// A workspace from a patched JSON value; invalid results are reported as
/// errors of the patch `label`.
pub(crate) fn patched_workspace(
    v: &Value,
    label: &str,
    validation: Validation,
) -> Result<Workspace> {
    Workspace::from_value_with(v, validation).map_err(|e| match e {
        Error::Workspace { location, message } => Error::Patch {
            patch: label.to_owned(),
            message: format!("the patched workspace is invalid: {location}: {message}"),
        },
        other => other,
    })
}

impl serde::Serialize for Workspace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Workspace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Workspace::from_value(&v).map_err(serde::de::Error::custom)
    }
}
