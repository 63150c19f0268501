//! The compiled HistFactory model: pyhf's parameter layout (names, order,
//! inits, bounds, fixed flags, auxdata), expected data and `twice_nll`.
//!
//! The likelihood is written once ([`Model::twice_nll_generic`]), generic
//! over a num-dual scalar in the parameters, the data *and* the templates
//! (the flat [`Model::inputs`] vector), so the differentiable pipeline can
//! differentiate w.r.t. learned histograms. The fits use
//! [`Likelihood::twice_nll_grad_hess`], which gets the exact gradient and
//! Hessian from per-modifier first/second derivatives (each modifier is
//! evaluated once with a `Dual2`) combined bin by bin with the product and
//! sum rules over the few parameters each bin depends on.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use num_dual::Dual2_64;

use super::interp::{self, InterpCode, Scalar};
use super::modifiers::{
    self, histosys, logshapefactor, normsys, shapesys, staterror, ConstraintType,
};
use super::spec::{ModifierData, ModifierType, Validation, Warning, Workspace};
use crate::infer::Likelihood;
use crate::{Error, Result};

/// How to build a [`Model`] from a [`Workspace`]; `Default` matches pyhf's
/// `Workspace.model()` (first measurement, normsys code4, histosys code4p,
/// the measurement's POI).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// Measurement name; `None` takes the first one (as pyhf does).
    pub measurement: Option<String>,
    /// Interpolation of normsys modifiers (`Code1` or `Code4`).
    pub normsys_interp: InterpCode,
    /// Interpolation of histosys modifiers (`Code0`, `Code2` or `Code4p`).
    pub histosys_interp: InterpCode,
    /// Override the measurement's POI; `Some("")` builds a POI-less model.
    pub poi: Option<String>,
    /// Workspace validation: pyhf's harmless leniencies accepted with
    /// warnings ([`Model::warnings`], the default) or rejected.
    pub validation: Validation,
    /// Constraints that replace pyhf's unit Gaussian of scalar histosys,
    /// normsys or lumi parameters (none by default: pyhf's model). Not
    /// expressible in a pyhf workspace; e.g. INFERNO's benchmarks, where the
    /// nuisance parameters are free or have other widths.
    pub constraint_overrides: Vec<ConstraintOverride>,
}

/// A replacement for the Gaussian constraint of one scalar histosys,
/// normsys or lumi parameter ([`ModelOptions::constraint_overrides`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintOverride {
    /// Parameter name.
    pub parameter: String,
    /// What replaces the constraint.
    pub constraint: OverrideKind,
}

/// See [`ConstraintOverride`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OverrideKind {
    /// No constraint term: the parameter is free (within its bounds).
    Free,
    /// A Gaussian N(aux | θ, σ) of width `sigma` in the parameter's own
    /// units (for a histosys α: σ_physical / the shift of its hi/lo templates).
    Normal {
        /// The width, > 0.
        sigma: f64,
    },
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            measurement: None,
            normsys_interp: InterpCode::Code4,
            histosys_interp: InterpCode::Code4p,
            poi: None,
            validation: Validation::Lenient,
            constraint_overrides: Vec::new(),
        }
    }
}

/// What a slice of [`Model::inputs`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Nominal yields of a sample.
    Nominal,
    /// histosys `lo_data`.
    HistoLo,
    /// histosys `hi_data`.
    HistoHi,
    /// normsys `lo` factor (length 1).
    NormLo,
    /// normsys `hi` factor (length 1).
    NormHi,
    /// shapesys / staterror absolute uncertainties.
    Uncertainty,
    /// transferfactor TF_MC per bin.
    TransferMc,
}

/// The distribution of one auxiliary datum: what a toy draws it from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AuxDistribution {
    /// `N(aux | θ, σ)` (normsys, histosys, lumi, staterror, decorrelated TF coefficients).
    Normal { sigma: f64 },
    /// `Pois(aux | θ·τ)` (shapesys).
    Poisson { tau: f64 },
}

/// The constraint term behind one auxiliary datum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuxConstraint {
    /// The constrained parameter.
    pub par: usize,
    /// Its distribution (widths at the stored templates).
    pub dist: AuxDistribution,
}

/// One contiguous slice of the template vector [`Model::inputs`].
#[derive(Debug, Clone, PartialEq)]
pub struct InputSlice {
    /// Channel of the sample.
    pub channel: String,
    /// Sample the values belong to.
    pub sample: String,
    /// Modifier name (`None` for the nominal yields).
    pub modifier: Option<String>,
    /// Modifier type (`None` for the nominal yields).
    pub modifier_type: Option<ModifierType>,
    /// What the values are.
    pub kind: InputKind,
    /// First index in [`Model::inputs`].
    pub offset: usize,
    /// Number of values.
    pub len: usize,
}

/// A parameter set (one modifier name) in pyhf's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParSet {
    /// Modifier (parameter set) name.
    pub name: String,
    /// Its type (for a name shared by normsys and histosys: histosys, as pyhf registers it).
    pub modifier_type: ModifierType,
    /// Index of its first parameter.
    pub offset: usize,
    /// Number of parameters.
    pub size: usize,
    /// pyhf's `is_scalar` (names without `[i]`).
    pub is_scalar: bool,
}

#[derive(Debug, Clone)]
enum Mult {
    /// normfactor / lumi: the parameter itself.
    Scalar(usize),
    /// normsys: parameter and the input indices of lo, hi.
    Norm {
        par: usize,
        lo: usize,
        hi: usize,
        /// Index into the cached code-4 coefficients.
        k: usize,
    },
}

#[derive(Debug, Clone)]
struct Hist {
    par: usize,
    lo: usize,
    hi: usize,
}

/// A transfer factor on one term: `mc_b · η_b` or `mc_b · exp(η_b)` with
/// `η_b = a_b + Σ_k w_bk p_k` (rows in [`Model::tf_rows`]).
#[derive(Debug, Clone)]
struct Tf {
    /// First parameter.
    par: usize,
    /// Number of parameters.
    k: usize,
    /// Offset of the term's first row (`k + 1` numbers per bin) in `tf_rows`.
    row0: usize,
    /// Input offset of TF_MC.
    mc: Option<usize>,
    exp: bool,
}

/// One sample in one channel.
#[derive(Debug, Clone)]
struct Term {
    bin0: usize,
    nbins: usize,
    nom: usize,
    scalars: Vec<Mult>,
    /// First parameter index of per-bin factors (shapefactor, shapesys, staterror).
    perbin: Vec<usize>,
    hists: Vec<Hist>,
    /// logshapefactors: (first parameter, offset of the per-bin log-slopes in `log_coef`).
    logs: Vec<(usize, usize)>,
    tfs: Vec<Tf>,
}

#[derive(Debug, Clone)]
enum Src {
    Const(f64),
    /// staterror σ of one bin: (nominal index, uncertainty index) per subscribing sample.
    StatErr(Vec<(usize, usize)>),
    /// shapesys τ of one bin.
    Tau {
        nom: usize,
        unc: usize,
    },
}

#[derive(Debug, Clone)]
struct Constraint {
    par: usize,
    aux: usize,
    poisson: bool,
    /// Normal: σ. Poisson: τ.
    width: Src,
    default_aux: Src,
}

/// Σ lgamma(n+1) of the last data vector seen (fits evaluate many times at the same data).
#[derive(Debug, Default)]
struct LgCache(Mutex<Option<(Vec<f64>, f64)>>);

impl Clone for LgCache {
    fn clone(&self) -> Self {
        LgCache::default()
    }
}

/// A compiled HistFactory model (pyhf's `Model` for one measurement).
#[derive(Debug, Clone)]
pub struct Model {
    ws: Workspace,
    opts: ModelOptions,
    measurement: String,
    channels: Vec<(String, usize)>,
    par_sets: Vec<ParSet>,
    par_names: Vec<String>,
    init: Vec<f64>,
    bounds: Vec<(f64, f64)>,
    fixed: Vec<bool>,
    poi: Option<usize>,
    terms: Vec<Term>,
    constraints: Vec<Constraint>,
    n_main: usize,
    n_aux: usize,
    inputs: Vec<f64>,
    layout: Vec<InputSlice>,
    /// For each input slice: (workspace channel, sample, modifier) it came from.
    origin: Vec<(usize, usize, Option<usize>)>,
    observed: Vec<f64>,
    /// Constraint widths (σ or τ) at the stored inputs.
    width_cache: Vec<f64>,
    /// Code-4 coefficients of each normsys (term, modifier) at the stored inputs.
    code4_cache: Vec<[f64; 6]>,
    /// Affine rows of the transfer factors ([`Tf`]).
    tf_rows: Vec<f64>,
    /// Log-slopes `c_b` of the logshapefactors (factor `exp(c_b θ_b)`).
    log_coef: Vec<f64>,
    /// Per main bin: left out of the likelihood (a blinded bin).
    blind: Vec<bool>,
    /// Per main bin: (term, local bin) entries and the sorted active parameters.
    bin_ptr: Vec<usize>,
    bin_entries: Vec<(u32, u32)>,
    act_ptr: Vec<usize>,
    act_pars: Vec<u32>,
    max_active: usize,
    lg_cache: LgCache,
    /// Warnings of the workspace validation ([`Model::warnings`]).
    warnings: Vec<Warning>,
    /// [`Model::nonconvex_starts`], computed on first use.
    nonconvex: std::sync::OnceLock<Vec<(usize, Vec<f64>)>>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

/// ln Γ(x) for x > 0.
fn ln_gamma(x: f64) -> f64 {
    statrs::function::gamma::ln_gamma(x)
}

/// ψ(x), ψ'(x), ψ''(x) for x > 0 (recurrence to x ≥ 10, then asymptotic series).
fn polygamma012(mut x: f64) -> (f64, f64, f64) {
    let (mut p0, mut p1, mut p2) = (0.0, 0.0, 0.0);
    while x < 10.0 {
        let r = 1.0 / x;
        p0 -= r;
        p1 += r * r;
        p2 -= 2.0 * r * r * r;
        x += 1.0;
    }
    let r = 1.0 / x;
    let r2 = r * r;
    p0 += x.ln()
        - 0.5 * r
        - r2 * (1.0 / 12.0
            - r2 * (1.0 / 120.0 - r2 * (1.0 / 252.0 - r2 * (1.0 / 240.0 - r2 / 132.0))));
    p1 += r
        + 0.5 * r2
        + r * r2
            * (1.0 / 6.0
                - r2 * (1.0 / 30.0 - r2 * (1.0 / 42.0 - r2 * (1.0 / 30.0 - r2 * 5.0 / 66.0))));
    p2 += -r2
        - r * r2
        - r2 * r2
            * (0.5 - r2 * (1.0 / 6.0 - r2 * (1.0 / 6.0 - r2 * (3.0 / 10.0 - r2 * 5.0 / 6.0))));
    (p0, p1, p2)
}

/// The derivative part of lgamma(n+1) around n.re(): exact for duals up to third order.
fn lgamma_rest<T: Scalar>(n: T) -> T {
    let n0 = n.re();
    let d = n - T::from(n0);
    let (p0, p1, p2) = polygamma012(n0 + 1.0);
    d * p0 + d * d * (p1 * 0.5) + d * d * d * (p2 / 6.0)
}

/// The Poisson log-term relative to its data-only part: for n > 0,
/// `n·ln(λ/n) − (λ − n)` = (n·ln λ − λ) − (n·ln n − n), written as
/// `n·(ln1p(δ) − δ)` with `δ = (λ − n)/n` so that it keeps full relative
/// precision when n and λ are large and close (shapesys τ of 10¹¹ in
/// published likelihoods: the plain form loses 10⁻³ of `twice_nll` to
/// cancellation, more than a fit's tolerance); the data-only part goes into
/// [`stirling_rest`]. For n = 0 it is pyhf's `xlogy(0, λ) − λ = −λ`.
///
/// −∞ where the Poisson term is undefined: λ < 0 (pyhf returns a finite, ever
/// larger value for λ < 0 at n = 0) or λ = 0 with n > 0. `twice_nll` is then
/// +∞, which the fitter treats as a rejected step, so fits never step to a
/// non-positive rate in a bin with events, nor to a negative one anywhere.
#[inline]
fn pois_core<T: Scalar>(n: T, lam: T) -> T {
    let l = lam.re();
    if n.re() > 0.0 {
        if l > 0.0 {
            let d = lam - n;
            let delta = d / n;
            n * (delta.ln_1p() - delta)
        } else {
            T::from(f64::NEG_INFINITY)
        }
    } else if l >= 0.0 {
        -lam
    } else {
        T::from(f64::NEG_INFINITY)
    }
}

/// The data-only part of the Poisson term that [`pois_core`] leaves out:
/// `ln Γ(n+1) − n·ln n + n` for n > 0 (Stirling's series for large n, where
/// the difference would cancel), `ln Γ(n+1)` for n = 0.
fn stirling_rest(n: f64) -> f64 {
    if n <= 0.0 {
        return ln_gamma(n + 1.0);
    }
    if n < 30.0 {
        return ln_gamma(n + 1.0) - n * n.ln() + n;
    }
    // ln Γ(n+1) = n ln n − n + ½ ln(2πn) + Σ B_2k / (2k(2k−1) n^(2k−1))
    let r = 1.0 / n;
    let r2 = r * r;
    0.5 * (LN_2PI + n.ln())
        + r * (1.0 / 12.0
            - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 / 1188.0))))
}

/// The derivative part of `n·ln n − n` around n.re() (n > 0), for duals.
fn nlogn_rest<T: Scalar>(n: T) -> T {
    let n0 = n.re();
    if n0 <= 0.0 {
        return T::from(0.0);
    }
    let k = |x: T| x * x.ln() - x;
    k(n) - T::from(n0 * n0.ln() - n0)
}

/// (workspace channel, sample, modifier) indices.
type Loc3 = (usize, usize, usize);

const LN_2PI: f64 = 1.837_877_066_409_345_3;

impl Model {
    /// Compiles `ws` for the measurement and interpolation codes in `opts`.
    pub fn new(ws: &Workspace, opts: &ModelOptions) -> Result<Model> {
        let warnings = ws.validate_with(opts.validation)?;
        let decls = ws.parameter_sets(opts.validation, &mut Vec::new())?;
        let meas = ws.measurement(opts.measurement.as_deref())?;
        if !matches!(opts.normsys_interp, InterpCode::Code1 | InterpCode::Code4) {
            return Err(invalid(format!(
                "normsys interpolation must be code1 or code4 (as in pyhf), got {}",
                opts.normsys_interp
            )));
        }
        if !matches!(
            opts.histosys_interp,
            InterpCode::Code0 | InterpCode::Code2 | InterpCode::Code4p
        ) {
            return Err(invalid(format!(
                "histosys interpolation must be code0, code2 or code4p (as in pyhf), got {}",
                opts.histosys_interp
            )));
        }

        // pyhf orders channels, samples and (name, type) modifiers by name.
        let mut chan_order: Vec<usize> = (0..ws.channels.len()).collect();
        chan_order.sort_by(|&a, &b| ws.channels[a].name.cmp(&ws.channels[b].name));
        let mut channels = Vec::new();
        let mut chan_offset = HashMap::new();
        let mut off = 0;
        for &ci in &chan_order {
            let c = &ws.channels[ci];
            let nb = c.samples[0].data.len();
            chan_offset.insert(c.name.clone(), off);
            channels.push((c.name.clone(), nb));
            off += nb;
        }
        let n_main = off;
        let mut blind = vec![false; n_main];
        for &ci in &chan_order {
            let c = &ws.channels[ci];
            for &b in &c.blinded {
                blind[chan_offset[&c.name] + b] = true;
            }
        }
        let sorted_samples = |ci: usize| {
            let mut v: Vec<usize> = (0..ws.channels[ci].samples.len()).collect();
            v.sort_by(|&a, &b| {
                ws.channels[ci].samples[a]
                    .name
                    .cmp(&ws.channels[ci].samples[b].name)
            });
            v
        };

        // Parameter order: by modifier type in pyhf's histfactory_set order,
        // then by first appearance in the (channel, sample, modifier) walk;
        // staterror names are registered in sorted order.
        let mut first_seen: BTreeMap<ModifierType, Vec<String>> = BTreeMap::new();
        for &ci in &chan_order {
            for si in sorted_samples(ci) {
                let s = &ws.channels[ci].samples[si];
                let mut mods: Vec<(&str, ModifierType)> = s
                    .modifiers
                    .iter()
                    .map(|m| (m.name.as_str(), m.modifier_type()))
                    .collect();
                mods.sort();
                for (name, ty) in mods {
                    let v = first_seen.entry(ty).or_default();
                    if !v.iter().any(|x| x == name) {
                        v.push(name.to_owned());
                    }
                }
            }
        }
        if let Some(v) = first_seen.get_mut(&ModifierType::StatError) {
            v.sort();
        }
        let mut order: Vec<(String, ModifierType)> = Vec::new();
        for (ty, names) in &first_seen {
            for n in names {
                if !order.iter().any(|(x, _)| x == n) {
                    order.push((n.clone(), *ty));
                }
            }
        }
        if order.is_empty() {
            return Err(Error::Workspace {
                location: "channels".into(),
                message: "the model has no parameters (pyhf requires at least one modifier)".into(),
            });
        }
        let user: HashMap<&str, &super::spec::ParameterConfig> = meas
            .config
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect();

        // Per-bin data needed for the shapesys/staterror defaults.
        // staterror name -> channel name -> list of (ws channel, sample) subscribing
        let mut stat_subs: HashMap<String, BTreeMap<String, Vec<Loc3>>> = HashMap::new();
        let mut shapesys_at: HashMap<String, (usize, usize, usize)> = HashMap::new();
        for (ci, c) in ws.channels.iter().enumerate() {
            for (si, s) in c.samples.iter().enumerate() {
                for (mi, m) in s.modifiers.iter().enumerate() {
                    match m.modifier_type() {
                        ModifierType::StatError => stat_subs
                            .entry(m.name.clone())
                            .or_default()
                            .entry(c.name.clone())
                            .or_default()
                            .push((ci, si, mi)),
                        ModifierType::ShapeSys => {
                            shapesys_at.insert(m.name.clone(), (ci, si, mi));
                        }
                        _ => {}
                    }
                }
            }
        }

        // Inputs (templates) and their layout; remember where each came from.
        let mut inputs = Vec::new();
        let mut layout = Vec::new();
        let mut origin = Vec::new();
        // (ws channel, sample) -> nominal offset; (ci, si, mi) -> offset of first slice
        let mut nom_off: HashMap<(usize, usize), usize> = HashMap::new();
        let mut mod_off: HashMap<(usize, usize, usize), usize> = HashMap::new();
        for &ci in &chan_order {
            let c = &ws.channels[ci];
            for si in sorted_samples(ci) {
                let s = &c.samples[si];
                let mut push = |data: &[f64],
                                m: Option<(usize, &str, ModifierType)>,
                                kind: InputKind|
                 -> usize {
                    let off = inputs.len();
                    layout.push(InputSlice {
                        channel: c.name.clone(),
                        sample: s.name.clone(),
                        modifier: m.map(|x| x.1.to_owned()),
                        modifier_type: m.map(|x| x.2),
                        kind,
                        offset: inputs.len(),
                        len: data.len(),
                    });
                    origin.push((ci, si, m.map(|x| x.0)));
                    inputs.extend_from_slice(data);
                    off
                };
                let o = push(&s.data, None, InputKind::Nominal);
                nom_off.insert((ci, si), o);
                for (mi, m) in s.modifiers.iter().enumerate() {
                    let tag = Some((mi, m.name.as_str(), m.modifier_type()));
                    match &m.data {
                        ModifierData::HistoSys { lo_data, hi_data } => {
                            let o = push(lo_data, tag, InputKind::HistoLo);
                            mod_off.insert((ci, si, mi), o);
                            push(hi_data, tag, InputKind::HistoHi);
                        }
                        ModifierData::NormSys { lo, hi } => {
                            let o = push(&[*lo], tag, InputKind::NormLo);
                            mod_off.insert((ci, si, mi), o);
                            push(&[*hi], tag, InputKind::NormHi);
                        }
                        ModifierData::ShapeSys(u) | ModifierData::StatError(u) => {
                            let o = push(u, tag, InputKind::Uncertainty);
                            mod_off.insert((ci, si, mi), o);
                        }
                        ModifierData::TransferFactor(t) => {
                            if let Some(mc) = &t.mc {
                                let o = push(mc, tag, InputKind::TransferMc);
                                mod_off.insert((ci, si, mi), o);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }

        // Constraint overrides: scalar parameters with a Gaussian constraint only.
        let mut overrides: HashMap<&str, OverrideKind> = HashMap::new();
        for o in &opts.constraint_overrides {
            let name = o.parameter.as_str();
            let decl = decls.get(name).ok_or_else(|| {
                invalid(format!(
                    "constraint override: the model has no parameter '{name}'"
                ))
            })?;
            let ty = order
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .ok_or_else(|| invalid(format!("internal: no order entry for '{name}'")))?;
            if !matches!(
                ty,
                ModifierType::HistoSys | ModifierType::NormSys | ModifierType::Lumi
            ) || decl.n_pars != 1
            {
                return Err(invalid(format!(
                    "constraint override: '{name}' is a {ty:?} of {} parameters; only the \
                     Gaussian constraint of a scalar histosys, normsys or lumi can be replaced",
                    decl.n_pars
                )));
            }
            if let OverrideKind::Normal { sigma } = o.constraint {
                if !(sigma.is_finite() && sigma > 0.0) {
                    return Err(invalid(format!(
                        "constraint override of '{name}': sigma must be finite and > 0, got {sigma}"
                    )));
                }
            }
            if overrides.insert(name, o.constraint).is_some() {
                return Err(invalid(format!(
                    "constraint override: '{name}' is overridden twice"
                )));
            }
        }

        // Parameter sets with defaults and user overrides.
        let mut par_sets = Vec::new();
        let mut par_names = Vec::new();
        let mut init = Vec::new();
        let mut bounds = Vec::new();
        let mut fixed = Vec::new();
        let mut constraints = Vec::new();
        let mut par_index: HashMap<String, usize> = HashMap::new();
        // staterror: name -> channel -> offset of that channel's first parameter
        let mut stat_chan_par: HashMap<String, HashMap<String, usize>> = HashMap::new();
        let mut n_aux = 0;
        for (name, ty) in &order {
            let decl = decls
                .get(name)
                .ok_or_else(|| invalid(format!("internal: no declaration for '{name}'")))?;
            let n = decl.n_pars;
            let offset = init.len();
            let d = modifiers::defaults(*ty);
            let cfg = user.get(name.as_str()).copied();
            let mut p_init = vec![d.init.unwrap_or(f64::NAN); n];
            let mut p_bounds = vec![d.bounds.unwrap_or((f64::NAN, f64::NAN)); n];
            let mut p_fixed = vec![false; n];
            let mut widths: Vec<Src> = vec![Src::Const(1.0); n];
            let mut aux: Vec<Src> = vec![Src::Const(d.aux.unwrap_or(f64::NAN)); n];
            let mut constraint = d.constraint;
            match ty {
                ModifierType::TransferFactor => {
                    if let ModifierData::TransferFactor(t) = &decl.data {
                        p_init = t.inits();
                        p_bounds = t.bounds();
                        if t.constraint.is_some() {
                            // Decorrelated unit Gaussians N(0 | z, 1).
                            constraint = ConstraintType::Normal;
                            aux = vec![Src::Const(0.0); n];
                        }
                    }
                }
                ModifierType::ShapeSys => {
                    let &(ci, si, mi) = shapesys_at
                        .get(name)
                        .ok_or_else(|| invalid(format!("internal: shapesys '{name}' not found")))?;
                    let s = &ws.channels[ci].samples[si];
                    let (no, uo) = (nom_off[&(ci, si)], mod_off[&(ci, si, mi)]);
                    if let ModifierData::ShapeSys(u) = &s.modifiers[mi].data {
                        for b in 0..n {
                            if shapesys::is_valid(s.data[b], u[b]) {
                                widths[b] = Src::Tau {
                                    nom: no + b,
                                    unc: uo + b,
                                };
                            } else {
                                widths[b] = Src::Const(1.0);
                                p_fixed[b] = true;
                            }
                            aux[b] = widths[b].clone();
                        }
                    }
                }
                ModifierType::StatError => {
                    let per_chan = stat_subs.get(name).cloned().unwrap_or_default();
                    let mut k = 0;
                    let mut cmap = HashMap::new();
                    // channels in pyhf (sorted) order: BTreeMap keys are sorted
                    for (cname, subs) in &per_chan {
                        cmap.insert(cname.clone(), offset + k);
                        let nb = ws.channels[subs[0].0].samples[0].data.len();
                        for b in 0..nb {
                            let mut vals = Vec::new();
                            let mut pairs = Vec::new();
                            for &(ci, si, mi) in subs {
                                let s = &ws.channels[ci].samples[si];
                                if let ModifierData::StatError(u) = &s.modifiers[mi].data {
                                    vals.push((s.data[b], u[b]));
                                }
                                pairs.push((nom_off[&(ci, si)] + b, mod_off[&(ci, si, mi)] + b));
                            }
                            let sigma = staterror::rel_uncertainty(vals.iter().copied());
                            if sigma == 0.0 {
                                p_fixed[k + b] = true;
                                widths[k + b] = Src::Const(1.0);
                            } else {
                                widths[k + b] = Src::StatErr(pairs);
                            }
                        }
                        k += nb;
                    }
                    stat_chan_par.insert(name.clone(), cmap);
                }
                _ => {}
            }
            if let Some(c) = cfg {
                if let Some(v) = &c.inits {
                    p_init.clone_from(v);
                }
                if let Some(v) = &c.bounds {
                    p_bounds = v.iter().map(|b| (b[0], b[1])).collect();
                }
                if let Some(f) = c.fixed {
                    p_fixed = vec![f; n];
                }
                if let Some(v) = &c.auxdata {
                    aux = v.iter().map(|&x| Src::Const(x)).collect();
                }
                if let Some(v) = c.sigmas.as_ref().or(c.factors.as_ref()) {
                    widths = v.iter().map(|&x| Src::Const(x)).collect();
                }
            }
            match overrides.get(name.as_str()) {
                Some(OverrideKind::Free) => constraint = ConstraintType::Unconstrained,
                Some(OverrideKind::Normal { sigma }) => widths = vec![Src::Const(*sigma); n],
                None => {}
            }
            if constraint != ConstraintType::Unconstrained {
                for b in 0..n {
                    constraints.push(Constraint {
                        par: offset + b,
                        aux: n_aux + b,
                        poisson: constraint == ConstraintType::Poisson,
                        width: widths[b].clone(),
                        default_aux: aux[b].clone(),
                    });
                }
                n_aux += n;
            }
            let is_scalar = !ty.is_binned() && *ty != ModifierType::TransferFactor;
            if is_scalar {
                par_names.push(name.clone());
            } else {
                par_names.extend((0..n).map(|i| format!("{name}[{i}]")));
            }
            init.extend(p_init);
            bounds.extend(p_bounds);
            fixed.extend(p_fixed);
            par_index.insert(name.clone(), offset);
            par_sets.push(ParSet {
                name: name.clone(),
                modifier_type: *ty,
                offset,
                size: n,
                is_scalar,
            });
        }

        // Terms: one per (channel, sample), channels in pyhf order.
        let mut terms = Vec::new();
        let mut code4_cache = Vec::new();
        let mut tf_rows = Vec::new();
        let mut log_coef = Vec::new();
        for &ci in &chan_order {
            let c = &ws.channels[ci];
            let bin0 = chan_offset[&c.name];
            let nb = c.samples[0].data.len();
            for si in sorted_samples(ci) {
                let s = &c.samples[si];
                let mut t = Term {
                    bin0,
                    nbins: nb,
                    nom: nom_off[&(ci, si)],
                    scalars: vec![],
                    perbin: vec![],
                    hists: vec![],
                    logs: vec![],
                    tfs: vec![],
                };
                for (mi, m) in s.modifiers.iter().enumerate() {
                    let p = par_index[&m.name];
                    match &m.data {
                        ModifierData::NormFactor | ModifierData::Lumi => {
                            t.scalars.push(Mult::Scalar(p))
                        }
                        ModifierData::NormSys { lo, hi } => {
                            let bad = |x: f64| x <= 0.0;
                            if bad(*lo) || bad(*hi) {
                                return Err(Error::Workspace {
                                    location: format!(
                                        "channels[{ci}].samples[{si}].modifiers[{mi}] (normsys '{}')",
                                        m.name
                                    ),
                                    message: format!(
                                        "lo and hi must be > 0 for {} interpolation, found lo={lo}, hi={hi}",
                                        opts.normsys_interp
                                    ),
                                });
                            }
                            let o = mod_off[&(ci, si, mi)];
                            t.scalars.push(Mult::Norm {
                                par: p,
                                lo: o,
                                hi: o + 1,
                                k: code4_cache.len(),
                            });
                            code4_cache.push(interp::code4_coefficients(*lo, *hi));
                        }
                        ModifierData::HistoSys { .. } => {
                            let o = mod_off[&(ci, si, mi)];
                            t.hists.push(Hist {
                                par: p,
                                lo: o,
                                hi: o + nb,
                            });
                        }
                        ModifierData::ShapeFactor | ModifierData::ShapeSys(_) => t.perbin.push(p),
                        ModifierData::StatError(_) => {
                            let off = stat_chan_par
                                .get(&m.name)
                                .and_then(|cm| cm.get(&c.name))
                                .copied()
                                .ok_or_else(|| invalid("internal: staterror channel offset"))?;
                            t.perbin.push(off);
                        }
                        ModifierData::LogShapeFactor(n0) => {
                            t.logs.push((p, log_coef.len()));
                            log_coef.extend(n0.iter().map(|&x| logshapefactor::log_step(x)));
                        }
                        ModifierData::TransferFactor(spec) => {
                            let mloc = || {
                                format!(
                                    "channels[{ci}].samples[{si}].modifiers[{mi}] (transferfactor '{}')",
                                    m.name
                                )
                            };
                            let coords =
                                c.coordinates
                                    .as_ref()
                                    .map(|co| co.scaled())
                                    .ok_or_else(|| Error::Workspace {
                                        location: mloc(),
                                        message: "the channel has no bin coordinates".into(),
                                    })?;
                            let rows =
                                spec.affine_rows(&coords).ok_or_else(|| Error::Workspace {
                                    location: mloc(),
                                    message: "the constraint's covariance is not positive definite"
                                        .into(),
                                })?;
                            t.tfs.push(Tf {
                                par: p,
                                k: spec.n_coefficients(),
                                row0: tf_rows.len(),
                                mc: spec.mc.as_ref().map(|_| mod_off[&(ci, si, mi)]),
                                exp: spec.form == super::modifiers::transfer::Form::Exp,
                            });
                            tf_rows.extend(rows);
                        }
                    }
                }
                terms.push(t);
            }
        }

        // POI.
        let poi_name = match &opts.poi {
            Some(p) => p.clone(),
            None => meas.config.poi.clone(),
        };
        let poi = if poi_name.is_empty() {
            None
        } else {
            let ps = par_sets
                .iter()
                .find(|p| p.name == poi_name)
                .ok_or_else(|| {
                    invalid(format!(
                        "the parameter of interest '{poi_name}' is not a parameter of the model"
                    ))
                })?;
            if ps.size != 1 {
                return Err(invalid(format!(
                    "the parameter of interest '{poi_name}' has {} components; it must be a single parameter",
                    ps.size
                )));
            }
            Some(ps.offset)
        };

        // Per-bin sparsity structure for the fast derivatives.
        let mut per_bin: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n_main];
        for (ti, t) in terms.iter().enumerate() {
            for i in 0..t.nbins {
                per_bin[t.bin0 + i].push((ti as u32, i as u32));
            }
        }
        let mut bin_ptr = vec![0];
        let mut bin_entries = Vec::new();
        let mut act_ptr = vec![0];
        let mut act_pars = Vec::new();
        let mut max_active = 0;
        for entries in &per_bin {
            let mut act: Vec<u32> = Vec::new();
            for &(ti, i) in entries {
                let t = &terms[ti as usize];
                for m in &t.scalars {
                    act.push(match m {
                        Mult::Scalar(p) => *p as u32,
                        Mult::Norm { par, .. } => *par as u32,
                    });
                }
                act.extend(t.perbin.iter().map(|&p| (p + i as usize) as u32));
                act.extend(t.hists.iter().map(|h| h.par as u32));
                act.extend(t.logs.iter().map(|&(p, _)| (p + i as usize) as u32));
                for tf in &t.tfs {
                    act.extend((tf.par..tf.par + tf.k).map(|p| p as u32));
                }
            }
            act.sort_unstable();
            act.dedup();
            max_active = max_active.max(act.len());
            act_pars.extend(act);
            act_ptr.push(act_pars.len());
            bin_entries.extend_from_slice(entries);
            bin_ptr.push(bin_entries.len());
        }

        // A free parameter that only blinded bins see has a flat likelihood.
        let mut seen_par = vec![false; init.len()];
        for c in &constraints {
            seen_par[c.par] = true;
        }
        for b in (0..n_main).filter(|&b| !blind[b]) {
            for &p in &act_pars[act_ptr[b]..act_ptr[b + 1]] {
                seen_par[p as usize] = true;
            }
        }
        if let Some(p) = (0..init.len()).find(|&p| !seen_par[p] && !fixed[p]) {
            return Err(Error::Workspace {
                location: "channels (blinded)".into(),
                message: format!(
                    "parameter '{}' acts only on blinded bins, so the likelihood does not depend on it; fix it in the measurement or unblind a bin it acts on",
                    par_names[p]
                ),
            });
        }

        let mut model = Model {
            ws: ws.clone(),
            opts: opts.clone(),
            measurement: meas.name.clone(),
            channels,
            par_sets,
            par_names,
            init,
            bounds,
            fixed,
            poi,
            terms,
            constraints,
            n_main,
            n_aux,
            inputs,
            layout,
            origin,
            observed: Vec::new(),
            width_cache: Vec::new(),
            code4_cache,
            tf_rows,
            log_coef,
            blind,
            bin_ptr,
            bin_entries,
            act_ptr,
            act_pars,
            max_active,
            lg_cache: LgCache::default(),
            warnings,
            nonconvex: std::sync::OnceLock::new(),
        };
        model.width_cache = model
            .constraints
            .iter()
            .map(|c| model.src_value(&c.width, &model.inputs))
            .collect();
        let mut observed = Vec::with_capacity(n_main + n_aux);
        for (cname, _) in &model.channels {
            let o = ws
                .observations
                .iter()
                .find(|o| &o.name == cname)
                .ok_or_else(|| invalid(format!("no observation for channel '{cname}'")))?;
            observed.extend_from_slice(&o.data);
        }
        observed.extend(model.auxdata_generic(&model.inputs)?);
        model.observed = observed;
        model.check_nominal_rates()?;
        Ok(model)
    }

    /// Warnings about inputs accepted under [`Validation::Lenient`] (pyhf's
    /// harmless leniencies), located; empty under [`Validation::Strict`].
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The total expected rate of every main bin at the suggested inits must
    /// not be negative, and must be positive where a sample has a negative
    /// nominal yield (accepted under [`Validation::Lenient`] on this condition).
    fn check_nominal_rates(&self) -> Result<()> {
        let rates = self.main_rates(&self.init, &self.inputs, true);
        let mut b0 = 0;
        for (cname, nb) in &self.channels {
            let Some(ci) = self.ws.channels.iter().position(|c| &c.name == cname) else {
                continue;
            };
            let c = &self.ws.channels[ci];
            for b in 0..*nb {
                let rate = rates[b0 + b];
                let negative: Vec<&str> = c
                    .samples
                    .iter()
                    .filter(|s| s.data[b] < 0.0)
                    .map(|s| s.name.as_str())
                    .collect();
                if rate > 0.0 || (rate == 0.0 && negative.is_empty()) {
                    continue;
                }
                let note = if negative.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (samples with a negative nominal yield in this bin: {})",
                        negative.join(", ")
                    )
                };
                return Err(Error::Workspace {
                    location: format!("channels[{ci}] ('{cname}') bin {b}"),
                    message: format!(
                        "the total expected rate at the nominal parameters (suggested inits) is {rate}; it must be positive{note}"
                    ),
                });
            }
            b0 += nb;
        }
        Ok(())
    }

    fn src_value<T: Scalar>(&self, s: &Src, inputs: &[T]) -> T {
        match s {
            Src::Const(x) => T::from(*x),
            Src::Tau { nom, unc } => shapesys::tau(inputs[*nom], inputs[*unc]),
            Src::StatErr(pairs) => {
                staterror::rel_uncertainty(pairs.iter().map(|&(n, u)| (inputs[n], inputs[u])))
            }
        }
    }

    fn check_inputs_len(&self, n: usize) -> Result<()> {
        if n != self.inputs.len() {
            return Err(invalid(format!(
                "inputs has length {n}, the model has {} template values",
                self.inputs.len()
            )));
        }
        Ok(())
    }

    fn check_pars_len(&self, n: usize) -> Result<()> {
        if n != self.init.len() {
            return Err(invalid(format!(
                "pars has length {n}, the model has {} parameters",
                self.init.len()
            )));
        }
        Ok(())
    }

    fn check_data_len(&self, n: usize) -> Result<()> {
        if n != self.n_main + self.n_aux {
            return Err(invalid(format!(
                "data has length {n}, the model expects {} ({} main bins + {} auxiliary data)",
                self.n_main + self.n_aux,
                self.n_main,
                self.n_aux
            )));
        }
        Ok(())
    }

    /// The flat template vector: nominal yields, histosys lo/hi, normsys
    /// lo/hi and shapesys/staterror uncertainties (see [`Model::input_layout`]).
    pub fn inputs(&self) -> &[f64] {
        &self.inputs
    }

    /// What each slice of [`Model::inputs`] is.
    pub fn input_layout(&self) -> &[InputSlice] {
        &self.layout
    }

    /// The same model structure with new templates (e.g. learned histograms).
    /// Rebuilds the model, so pruning of zero-uncertainty bins and the
    /// auxiliary data follow the new values.
    pub fn with_inputs(&self, inputs: Vec<f64>) -> Result<Model> {
        self.check_inputs_len(inputs.len())?;
        let mut ws = self.ws.clone();
        for (sl, &(ci, si, mi)) in self.layout.iter().zip(&self.origin) {
            let vals = &inputs[sl.offset..sl.offset + sl.len];
            let s = &mut ws.channels[ci].samples[si];
            match (mi, sl.kind) {
                (None, _) => s.data.copy_from_slice(vals),
                (Some(mi), kind) => match (&mut s.modifiers[mi].data, kind) {
                    (ModifierData::HistoSys { lo_data, .. }, InputKind::HistoLo) => {
                        lo_data.copy_from_slice(vals)
                    }
                    (ModifierData::HistoSys { hi_data, .. }, InputKind::HistoHi) => {
                        hi_data.copy_from_slice(vals)
                    }
                    (ModifierData::NormSys { lo, .. }, InputKind::NormLo) => *lo = vals[0],
                    (ModifierData::NormSys { hi, .. }, InputKind::NormHi) => *hi = vals[0],
                    (ModifierData::ShapeSys(u), _) | (ModifierData::StatError(u), _) => {
                        u.copy_from_slice(vals)
                    }
                    (ModifierData::TransferFactor(t), InputKind::TransferMc) if t.mc.is_some() => {
                        if let Some(mc) = &mut t.mc {
                            mc.copy_from_slice(vals)
                        }
                    }
                    _ => {
                        return Err(invalid(
                            "internal: input layout does not match the workspace",
                        ))
                    }
                },
            }
        }
        Model::new(&ws, &self.opts)
    }

    /// Parameter names as pyhf spells them (`name` or `name[i]`).
    pub fn par_names(&self) -> &[String] {
        &self.par_names
    }

    /// Parameter sets in pyhf's `par_order`.
    pub fn param_sets(&self) -> &[ParSet] {
        &self.par_sets
    }

    /// Name of the parameter of interest, if any.
    pub fn poi_name(&self) -> Option<&str> {
        self.poi.map(|i| self.par_names[i].as_str())
    }

    /// Channels in pyhf's order with their bin counts.
    pub fn channels(&self) -> &[(String, usize)] {
        &self.channels
    }

    /// The measurement the model was built for.
    pub fn measurement_name(&self) -> &str {
        &self.measurement
    }

    /// The workspace the model was compiled from (all its measurements).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// The options the model was built with.
    pub fn options(&self) -> &ModelOptions {
        &self.opts
    }

    /// Index of a parameter by its pyhf name (`mu`, `gamma[3]`).
    pub fn par_index(&self, name: &str) -> Option<usize> {
        self.par_names.iter().position(|n| n == name)
    }

    /// The constraint terms in the order of the auxiliary data.
    pub fn aux_constraints(&self) -> Vec<AuxConstraint> {
        let mut out: Vec<Option<AuxConstraint>> = vec![None; self.n_aux];
        for (c, &w) in self.constraints.iter().zip(&self.width_cache) {
            out[c.aux] = Some(AuxConstraint {
                par: c.par,
                dist: if c.poisson {
                    AuxDistribution::Poisson { tau: w }
                } else {
                    AuxDistribution::Normal { sigma: w }
                },
            });
        }
        out.into_iter().flatten().collect()
    }

    /// A pseudo-data set drawn at `pars` as pyhf's `model.make_pdf(pars).sample()`
    /// does: Poisson main counts, and each auxiliary datum from its
    /// constraint (Normal around θ, Poisson with mean θ·τ).
    pub fn sample_data(&self, pars: &[f64], rng: &mut dyn rand::Rng) -> Result<Vec<f64>> {
        use rand_distr::{Distribution, Normal, Poisson};
        let exp = self.expected_data(pars)?;
        let pois = |lam: f64, rng: &mut dyn rand::Rng| -> Result<f64> {
            if lam == 0.0 {
                return Ok(0.0);
            }
            Poisson::new(lam)
                .map(|d| d.sample(rng))
                .map_err(|e| invalid(format!("cannot draw a Poisson count of mean {lam}: {e}")))
        };
        let mut out = Vec::with_capacity(exp.len());
        for &l in &exp[..self.n_main] {
            out.push(pois(l, rng)?);
        }
        for c in self.aux_constraints() {
            out.push(match c.dist {
                AuxDistribution::Normal { sigma } => Normal::new(pars[c.par], sigma)
                    .map(|d| d.sample(rng))
                    .map_err(|e| {
                        invalid(format!(
                            "cannot draw auxiliary data of '{}' (sigma {sigma}): {e}",
                            self.par_names[c.par]
                        ))
                    })?,
                AuxDistribution::Poisson { tau } => pois(pars[c.par] * tau, rng)?,
            });
        }
        Ok(out)
    }

    /// Default auxiliary data for the given templates (shapesys τ depends on them).
    pub fn auxdata_generic<T: Scalar>(&self, inputs: &[T]) -> Result<Vec<T>> {
        self.check_inputs_len(inputs.len())?;
        Ok(self
            .constraints
            .iter()
            .map(|c| self.src_value(&c.default_aux, inputs))
            .collect())
    }

    /// The normsys factor; `cached` means `inputs` are the stored templates,
    /// so the code-4 coefficients can come from the cache.
    #[inline]
    fn norm_factor<T: Scalar>(
        &self,
        m: (usize, usize, usize, usize),
        pars: &[T],
        inputs: &[T],
        cached: bool,
    ) -> T {
        let (par, lo, hi, k) = m;
        let code = self.opts.normsys_interp;
        if cached && code == InterpCode::Code4 {
            let c = self.code4_cache[k];
            let c = [
                T::from(c[0]),
                T::from(c[1]),
                T::from(c[2]),
                T::from(c[3]),
                T::from(c[4]),
                T::from(c[5]),
            ];
            interp::code4_with(pars[par], inputs[lo], inputs[hi], &c)
        } else {
            normsys::factor(code, pars[par], inputs[lo], inputs[hi])
        }
    }

    /// The product of a term's scalar factors (normfactors, lumi, normsys).
    #[inline]
    fn term_scale<T: Scalar>(&self, t: &Term, pars: &[T], inputs: &[T], cached: bool) -> T {
        let mut scale = T::from(1.0);
        for m in &t.scalars {
            scale *= match m {
                Mult::Scalar(p) => pars[*p],
                Mult::Norm { par, lo, hi, k } => {
                    self.norm_factor((*par, *lo, *hi, *k), pars, inputs, cached)
                }
            };
        }
        scale
    }

    /// A term's rate in its local bin `b`, given its [`Model::term_scale`].
    #[inline]
    fn term_bin<T: Scalar>(&self, t: &Term, b: usize, scale: T, pars: &[T], inputs: &[T]) -> T {
        let hcode = self.opts.histosys_interp;
        let nom = inputs[t.nom + b];
        let mut r = nom;
        for h in &t.hists {
            r += histosys::delta(hcode, pars[h.par], inputs[h.lo + b], nom, inputs[h.hi + b]);
        }
        r *= scale;
        for &p in &t.perbin {
            r *= pars[p + b];
        }
        for &(p, c) in &t.logs {
            r *= (pars[p + b] * self.log_coef[c + b]).exp();
        }
        for tf in &t.tfs {
            r *= self.tf_value(tf, b, pars, inputs);
        }
        r
    }

    /// A transfer factor's value in local bin `b`.
    #[inline]
    fn tf_value<T: Scalar>(&self, tf: &Tf, b: usize, pars: &[T], inputs: &[T]) -> T {
        let row = &self.tf_rows[tf.row0 + b * (tf.k + 1)..tf.row0 + (b + 1) * (tf.k + 1)];
        let mut eta = T::from(row[0]);
        for (j, &w) in row[1..].iter().enumerate() {
            if w != 0.0 {
                eta += pars[tf.par + j] * w;
            }
        }
        let f = if tf.exp { eta.exp() } else { eta };
        match tf.mc {
            Some(o) => f * inputs[o + b],
            None => f,
        }
    }

    fn main_rates<T: Scalar>(&self, pars: &[T], inputs: &[T], cached: bool) -> Vec<T> {
        let mut lam = vec![T::from(0.0); self.n_main];
        for t in &self.terms {
            let scale = self.term_scale(t, pars, inputs, cached);
            for b in 0..t.nbins {
                lam[t.bin0 + b] += self.term_bin(t, b, scale, pars, inputs);
            }
        }
        lam
    }

    /// Interpolated parameters (histosys, normsys) along which `twice_nll`
    /// may have several local minima: in some main bin the expected rate,
    /// as a function of that parameter alone (the others at their suggested
    /// inits, all samples of the bin summed), is not monotonic — same-side
    /// or one-sided variations, the quadratic terms of codes 2/4/4p
    /// overturning the linear one, samples pulled in opposite directions —
    /// or has a kink at α = 0 (codes 0 and 1 with asymmetric variations), or
    /// jumps (pyhf's code 2 at |α| = 1). Along every other parameter the
    /// Poisson and constraint terms are convex in the rates, so the fitter
    /// (`infer::fit::minimize`) starts from both sides of 0 only for these.
    pub fn nonconvex_parameters(&self) -> Vec<usize> {
        self.nonconvex_starts().iter().map(|(p, _)| *p).collect()
    }

    /// [`Model::nonconvex_parameters`] with the values each is started from:
    /// ±1, and also ±2 where the rate jumps at |α| = 1 (a local fit cannot
    /// cross the jump). Computed once per model.
    pub fn nonconvex_starts(&self) -> &[(usize, Vec<f64>)] {
        self.nonconvex.get_or_init(|| self.detect_nonconvex())
    }

    fn detect_nonconvex(&self) -> Vec<(usize, Vec<f64>)> {
        use num_dual::Dual64;
        // Beyond |α| = 1 every code is linear or exponential in α: one point
        // per side fixes the sign of the slope there; inside, a grid that
        // resolves the sixth-order polynomials, and both sides of the kink.
        const INNER: usize = 40;
        const JUMP: f64 = 1.0 + 1e-9;
        let mut grid: Vec<f64> = vec![-4.0, -1.5, -JUMP, -1e-9, 1e-9, JUMP, 1.5, 4.0];
        // not α = 0 itself: the piecewise codes take one side's branch there
        // and duals of |α| a made-up slope
        grid.extend(
            (0..=INNER)
                .filter(|&k| 2 * k != INNER)
                .map(|k| -1.0 + 2.0 * k as f64 / INNER as f64),
        );
        grid.sort_by(f64::total_cmp);
        let mut by_par: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (ti, t) in self.terms.iter().enumerate() {
            let pars = t
                .hists
                .iter()
                .map(|h| h.par)
                .chain(t.scalars.iter().filter_map(|m| match m {
                    Mult::Norm { par, .. } => Some(*par),
                    Mult::Scalar(_) => None,
                }));
            for p in pars {
                let v = by_par.entry(p).or_default();
                if v.last() != Some(&ti) {
                    v.push(ti);
                }
            }
        }
        let inputs: Vec<Dual64> = self.inputs.iter().map(|&x| Dual64::from(x)).collect();
        let mut out = Vec::new();
        for (p, terms) in by_par {
            let (lo, hi) = self.bounds[p];
            let pts: Vec<f64> = grid
                .iter()
                .copied()
                .filter(|&a| a >= lo && a <= hi)
                .collect();
            if pts.len() < 2 {
                continue;
            }
            // value and slope of each touched bin's total rate at every grid point
            let mut curves: BTreeMap<usize, Vec<Dual64>> = BTreeMap::new();
            let mut pars: Vec<Dual64> = self.init.iter().map(|&x| Dual64::from(x)).collect();
            for (j, &a) in pts.iter().enumerate() {
                pars[p] = Dual64::from(a).derivative();
                for &ti in &terms {
                    let t = &self.terms[ti];
                    let scale = self.term_scale(t, &pars, &inputs, false);
                    for b in 0..t.nbins {
                        let r = self.term_bin(t, b, scale, &pars, &inputs);
                        curves
                            .entry(t.bin0 + b)
                            .or_insert_with(|| vec![Dual64::from(0.0); pts.len()])[j] += r;
                    }
                }
            }
            let at = |a: f64| pts.iter().position(|&x| x == a).filter(|&k| k > 0);
            let (kink, jumps) = (at(1e-9), [at(-1.0), at(JUMP)]);
            let (mut flagged, mut jumped) = (false, false);
            for c in curves.values() {
                let d: Vec<f64> = c.iter().map(|x| x.eps).collect();
                let big = d.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
                if big == 0.0 {
                    continue;
                }
                let tol = 1e-6 * big;
                let non_monotone = d.iter().any(|&x| x > tol) && d.iter().any(|&x| x < -tol);
                let kinked = kink.is_some_and(|k| (d[k] - d[k - 1]).abs() > tol);
                // pyhf's code 2 jumps in value at |α| = 1
                let jump = jumps
                    .iter()
                    .flatten()
                    .any(|&k| (c[k].re - c[k - 1].re).abs() > 1e-9 * c[k].re.abs().max(1.0));
                flagged |= non_monotone || kinked || jump;
                jumped |= jump;
            }
            if flagged {
                let starts = if jumped {
                    vec![-2.0, -1.0, 1.0, 2.0]
                } else {
                    vec![-1.0, 1.0]
                };
                out.push((p, starts));
            }
        }
        out
    }

    /// Expected data (main bins in pyhf channel order, then the auxiliary
    /// expectations) for parameters `pars` and templates `inputs`.
    pub fn expected_data_generic<T: Scalar>(&self, pars: &[T], inputs: &[T]) -> Result<Vec<T>> {
        self.expected_impl(pars, inputs, false)
    }

    fn expected_impl<T: Scalar>(&self, pars: &[T], inputs: &[T], cached: bool) -> Result<Vec<T>> {
        self.check_pars_len(pars.len())?;
        self.check_inputs_len(inputs.len())?;
        let mut out = self.main_rates(pars, inputs, cached);
        for (ci, c) in self.constraints.iter().enumerate() {
            let th = pars[c.par];
            out.push(if !c.poisson {
                th
            } else if cached {
                th * self.width_cache[ci]
            } else {
                th * self.src_value(&c.width, inputs)
            });
        }
        Ok(out)
    }

    /// Σ [`stirling_rest`] over the main bins and the Poisson auxiliary data
    /// (cached): the data-only part of the Poisson terms.
    fn lgamma_sum(&self, data: &[f64]) -> f64 {
        if let Ok(g) = self.lg_cache.0.try_lock() {
            if let Some((d, s)) = g.as_ref() {
                if d.as_slice() == data {
                    return *s;
                }
            }
        }
        let mut s = 0.0;
        for (&n, &bl) in data[..self.n_main].iter().zip(&self.blind) {
            if !bl {
                s += stirling_rest(n);
            }
        }
        for c in &self.constraints {
            if c.poisson {
                s += stirling_rest(data[self.n_main + c.aux]);
            }
        }
        if let Ok(mut g) = self.lg_cache.0.try_lock() {
            *g = Some((data.to_vec(), s));
        }
        s
    }

    /// `-2 ln L(pars | data)` with templates `inputs`, generic in all three
    /// (pyhf's `-2 * model.logpdf(pars, data)`, continuous Poisson with lgamma
    /// and normalised Gaussian constraints).
    pub fn twice_nll_generic<T: Scalar>(&self, pars: &[T], data: &[T], inputs: &[T]) -> Result<T> {
        self.nll_impl(pars, data, inputs, false)
    }

    /// The one implementation of `twice_nll`; `cached` (stored templates
    /// only) takes the constraint widths and code-4 coefficients from the
    /// caches instead of recomputing them from `inputs`.
    fn nll_impl<T: Scalar>(&self, pars: &[T], data: &[T], inputs: &[T], cached: bool) -> Result<T> {
        self.check_pars_len(pars.len())?;
        self.check_data_len(data.len())?;
        self.check_inputs_len(inputs.len())?;
        let lam = self.main_rates(pars, inputs, cached);
        let mut ll = T::from(0.0);
        for (b, &l) in lam.iter().enumerate() {
            if self.blind[b] {
                continue;
            }
            ll += pois_core(data[b], l);
        }
        for (ci, c) in self.constraints.iter().enumerate() {
            let th = pars[c.par];
            let a = data[self.n_main + c.aux];
            let w = if cached {
                T::from(self.width_cache[ci])
            } else {
                self.src_value(&c.width, inputs)
            };
            if c.poisson {
                ll += pois_core(a, th * w);
            } else {
                let z = (a - th) / w;
                ll -= z * z * 0.5 + w.ln() + 0.5 * LN_2PI;
            }
        }
        // The data-only part: the value from the (cached) f64 sum, derivative
        // parts per datum (of lgamma(n+1), less those of n ln n − n).
        let re: Vec<f64> = data.iter().map(|x| x.re()).collect();
        let mut lg = T::from(self.lgamma_sum(&re));
        if TypeId::of::<T>() != TypeId::of::<f64>() {
            let aux = self
                .constraints
                .iter()
                .filter(|c| c.poisson)
                .map(|c| data[self.n_main + c.aux]);
            let main = data[..self.n_main]
                .iter()
                .zip(&self.blind)
                .filter(|(_, &bl)| !bl)
                .map(|(&n, _)| n);
            for n in main.chain(aux) {
                lg += lgamma_rest(n) - nlogn_rest(n);
            }
        }
        ll -= lg;
        Ok(ll * -2.0)
    }

    /// The normsys factor at the stored templates with first and second derivatives.
    fn norm_factor_d2(&self, x: Dual2_64, lo: usize, hi: usize, k: usize) -> Dual2_64 {
        let (lo, hi) = (
            Dual2_64::from(self.inputs[lo]),
            Dual2_64::from(self.inputs[hi]),
        );
        if self.opts.normsys_interp == InterpCode::Code4 {
            let c = self.code4_cache[k].map(Dual2_64::from);
            interp::code4_with(x, lo, hi, &c)
        } else {
            normsys::factor(self.opts.normsys_interp, x, lo, hi)
        }
    }

    /// Multiplies a term's rate `rate` in local bin `i`, with its local
    /// gradient `g` and Hessian `h` (`kk` active parameters), by a transfer
    /// factor (product rule; the factor's own Hessian is `T w wᵀ` for the
    /// exp form, zero for the linear one). Returns the new rate.
    #[allow(clippy::too_many_arguments)]
    fn apply_tf_d2(
        &self,
        tf: &Tf,
        i: usize,
        pars: &[f64],
        rate: f64,
        local_of: &[u32],
        kk: usize,
        g: &mut [f64],
        h: &mut [f64],
    ) -> f64 {
        let row = &self.tf_rows[tf.row0 + i * (tf.k + 1)..tf.row0 + (i + 1) * (tf.k + 1)];
        let w = &row[1..];
        let mut eta = row[0];
        for (j, &wj) in w.iter().enumerate() {
            eta += pars[tf.par + j] * wj;
        }
        let mc = tf.mc.map_or(1.0, |o| self.inputs[o + i]);
        // T and dT/dp_j = s·w_j.
        let (tv, s) = if tf.exp {
            let e = eta.exp() * mc;
            (e, e)
        } else {
            (eta * mc, mc)
        };
        for x in h[..kk * kk].iter_mut() {
            *x *= tv;
        }
        for (j, &wj) in w.iter().enumerate() {
            if wj == 0.0 {
                continue;
            }
            let lj = local_of[tf.par + j] as usize;
            let gj = s * wj;
            for m in 0..kk {
                let v = gj * g[m];
                h[lj * kk + m] += v;
                h[m * kk + lj] += v;
            }
            if tf.exp {
                for (l, &wl) in w.iter().enumerate() {
                    if wl != 0.0 {
                        h[lj * kk + local_of[tf.par + l] as usize] += rate * tv * wj * wl;
                    }
                }
            }
        }
        for x in g[..kk].iter_mut() {
            *x *= tv;
        }
        for (j, &wj) in w.iter().enumerate() {
            if wj != 0.0 {
                g[local_of[tf.par + j] as usize] += rate * s * wj;
            }
        }
        rate * tv
    }

    fn grad_hess_impl(
        &self,
        pars: &[f64],
        data: &[f64],
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Result<f64> {
        let n = self.init.len();
        self.check_pars_len(pars.len())?;
        self.check_data_len(data.len())?;
        if grad.len() != n || hess.len() != n * n {
            return Err(invalid(format!(
                "grad/hess have lengths {}/{}, expected {n}/{}",
                grad.len(),
                hess.len(),
                n * n
            )));
        }
        grad.fill(0.0);
        hess.fill(0.0);
        let inputs = &self.inputs;
        let hcode = self.opts.histosys_interp;
        // Scalar factors of each term: (par, value, d1, d2).
        let mut sc_ptr = Vec::with_capacity(self.terms.len() + 1);
        let mut sc: Vec<(usize, f64, f64, f64)> = Vec::new();
        sc_ptr.push(0);
        for t in &self.terms {
            for m in &t.scalars {
                sc.push(match m {
                    Mult::Scalar(p) => (*p, pars[*p], 1.0, 0.0),
                    Mult::Norm { par, lo, hi, k } => {
                        let x = Dual2_64::new(pars[*par], 1.0, 0.0);
                        let r = self.norm_factor_d2(x, *lo, *hi, *k);
                        (*par, r.re, r.v1, r.v2)
                    }
                });
            }
            sc_ptr.push(sc.len());
        }
        let k_max = self.max_active;
        let mut local_of = vec![u32::MAX; n];
        let mut g = vec![0.0; k_max];
        let mut h = vec![0.0; k_max * k_max];
        let mut fac: Vec<(usize, f64, f64, f64)> = Vec::new();
        let mut adds: Vec<(usize, f64, f64)> = Vec::new();
        let mut pre: Vec<f64> = Vec::new();
        let mut suf: Vec<f64> = Vec::new();
        // Per-term accumulators for terms with transfer factors (multi-parameter factors).
        let mut g2 = vec![0.0; k_max];
        let mut h2 = vec![0.0; k_max * k_max];
        let mut nll = 0.0;
        #[allow(clippy::needless_range_loop)]
        for b in 0..self.n_main {
            if self.blind[b] {
                continue;
            }
            let act = &self.act_pars[self.act_ptr[b]..self.act_ptr[b + 1]];
            let kk = act.len();
            for (k, &p) in act.iter().enumerate() {
                local_of[p as usize] = k as u32;
            }
            g[..kk].fill(0.0);
            h[..kk * kk].fill(0.0);
            let mut lam = 0.0;
            for &(ti, i) in &self.bin_entries[self.bin_ptr[b]..self.bin_ptr[b + 1]] {
                let t = &self.terms[ti as usize];
                let i = i as usize;
                fac.clear();
                adds.clear();
                let nom = inputs[t.nom + i];
                let mut a = nom;
                for hs in &t.hists {
                    let x = Dual2_64::new(pars[hs.par], 1.0, 0.0);
                    let r = histosys::delta(
                        hcode,
                        x,
                        Dual2_64::from(inputs[hs.lo + i]),
                        Dual2_64::from(nom),
                        Dual2_64::from(inputs[hs.hi + i]),
                    );
                    a += r.re;
                    adds.push((local_of[hs.par] as usize, r.v1, r.v2));
                }
                for &(p, v, d1, d2) in &sc[sc_ptr[ti as usize]..sc_ptr[ti as usize + 1]] {
                    fac.push((local_of[p] as usize, v, d1, d2));
                }
                for &po in &t.perbin {
                    let p = po + i;
                    fac.push((local_of[p] as usize, pars[p], 1.0, 0.0));
                }
                for &(po, c) in &t.logs {
                    let p = po + i;
                    let cb = self.log_coef[c + i];
                    let v = (pars[p] * cb).exp();
                    fac.push((local_of[p] as usize, v, v * cb, v * cb * cb));
                }
                let with_tf = !t.tfs.is_empty();
                if with_tf {
                    g2[..kk].fill(0.0);
                    h2[..kk * kk].fill(0.0);
                }
                let (gt, ht) = if with_tf {
                    (&mut g2[..], &mut h2[..])
                } else {
                    (&mut g[..], &mut h[..])
                };
                let kf = fac.len();
                pre.clear();
                suf.clear();
                pre.push(1.0);
                for j in 0..kf {
                    let last = pre[j];
                    pre.push(last * fac[j].1);
                }
                suf.resize(kf + 1, 1.0);
                for j in (0..kf).rev() {
                    suf[j] = suf[j + 1] * fac[j].1;
                }
                let f = pre[kf];
                let mut rate = a * f;
                for &(l, d1, d2) in &adds {
                    gt[l] += f * d1;
                    ht[l * kk + l] += f * d2;
                }
                for j in 0..kf {
                    let (lj, _, d1j, d2j) = fac[j];
                    let fj = pre[j] * suf[j + 1];
                    gt[lj] += a * fj * d1j;
                    ht[lj * kk + lj] += a * fj * d2j;
                    for &(lh, d1h, _) in &adds {
                        let v = fj * d1j * d1h;
                        ht[lj * kk + lh] += v;
                        ht[lh * kk + lj] += v;
                    }
                    let mut mid = 1.0;
                    for k in j + 1..kf {
                        let (lk, vk, d1k, _) = fac[k];
                        let v = a * pre[j] * mid * suf[k + 1] * d1j * d1k;
                        ht[lj * kk + lk] += v;
                        ht[lk * kk + lj] += v;
                        mid *= vk;
                    }
                }
                for tf in &t.tfs {
                    rate = self.apply_tf_d2(tf, i, pars, rate, &local_of, kk, gt, ht);
                }
                lam += rate;
                if with_tf {
                    for k in 0..kk {
                        g[k] += g2[k];
                    }
                    for k in 0..kk * kk {
                        h[k] += h2[k];
                    }
                }
            }
            let nb = data[b];
            nll -= 2.0 * pois_core(nb, lam);
            let (f1, f2) = if nb == 0.0 {
                (2.0, 0.0)
            } else {
                (2.0 * (1.0 - nb / lam), 2.0 * nb / (lam * lam))
            };
            for k in 0..kk {
                let pk = act[k] as usize;
                grad[pk] += f1 * g[k];
                let row = &mut hess[pk * n..(pk + 1) * n];
                for l in 0..kk {
                    row[act[l] as usize] += f2 * g[k] * g[l] + f1 * h[k * kk + l];
                }
            }
            for &p in act {
                local_of[p as usize] = u32::MAX;
            }
        }
        for (c, &w) in self.constraints.iter().zip(&self.width_cache) {
            let th = pars[c.par];
            let a = data[self.n_main + c.aux];
            let p = c.par;
            if c.poisson {
                nll -= 2.0 * pois_core(a, th * w);
                grad[p] += 2.0 * (w - if a == 0.0 { 0.0 } else { a / th });
                hess[p * n + p] += if a == 0.0 { 0.0 } else { 2.0 * a / (th * th) };
            } else {
                let z = (th - a) / w;
                nll += z * z + 2.0 * w.ln() + LN_2PI;
                grad[p] += 2.0 * z / w;
                hess[p * n + p] += 2.0 / (w * w);
            }
        }
        nll += 2.0 * self.lgamma_sum(data);
        Ok(nll)
    }
}

impl Likelihood for Model {
    fn n_pars(&self) -> usize {
        self.init.len()
    }
    fn par_sets(&self) -> Vec<(String, usize, usize)> {
        self.par_sets
            .iter()
            .map(|p| (p.name.clone(), p.offset, p.size))
            .collect()
    }
    fn poi_index(&self) -> Option<usize> {
        self.poi
    }
    fn init(&self) -> Vec<f64> {
        self.init.clone()
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        self.bounds.clone()
    }
    fn fixed(&self) -> Vec<bool> {
        self.fixed.clone()
    }
    fn n_main(&self) -> usize {
        self.n_main
    }
    fn n_data(&self) -> usize {
        self.n_main + self.n_aux
    }
    fn observed_data(&self) -> Vec<f64> {
        self.observed.clone()
    }
    fn twice_nll(&self, pars: &[f64], data: &[f64]) -> Result<f64> {
        self.nll_impl(pars, data, &self.inputs, true)
    }
    fn twice_nll_grad_hess(
        &self,
        pars: &[f64],
        data: &[f64],
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Result<f64> {
        self.grad_hess_impl(pars, data, grad, hess)
    }
    fn expected_data(&self, pars: &[f64]) -> Result<Vec<f64>> {
        self.expected_impl(pars, &self.inputs, true)
    }
    fn sample_data(&self, pars: &[f64], rng: &mut dyn rand::Rng) -> Result<Vec<f64>> {
        Model::sample_data(self, pars, rng)
    }
    fn nonconvex_pars(&self) -> Vec<(usize, Vec<f64>)> {
        self.nonconvex_starts().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygamma_values() {
        // ψ(1) = −γ, ψ'(1) = π²/6, ψ''(1) = −2ζ(3)
        let (p0, p1, p2) = polygamma012(1.0);
        assert!(
            (p0 + 0.577_215_664_901_532_9).abs() < 1e-13,
            "{p0} {p1} {p2}"
        );
        assert!((p1 - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-13);
        assert!((p2 + 2.0 * 1.202_056_903_159_594_3).abs() < 1e-13);
        let (q0, _, _) = polygamma012(37.5);
        let h = 1e-5;
        let fd = (ln_gamma(37.5 + h) - ln_gamma(37.5 - h)) / (2.0 * h);
        assert!((q0 - fd).abs() < 1e-8);
    }
}
