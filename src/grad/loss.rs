//! Statistical losses as candle ops with exact gradients w.r.t. every
//! tensor-valued template input (see [`super::template`]).
//!
//! Each evaluation builds the `hf` model from the current values, runs the
//! `infer` fits (converged to a projected gradient ≤ 1e-10, otherwise
//! [`Error::FitFailed`]) and differentiates:
//!
//! * **test statistics** (expected CLs, p0/Z0, observed q and observed CLs)
//!   by the envelope theorem: at the converged fixed-POI and free fits,
//!   dq/du = ∂q/∂u with the fitted parameters held (free parameters have zero
//!   gradient, parameters at an active bound or fixed do not move), where
//!   ∂/∂u includes the data's own dependence on u (Asimov data are the
//!   expected data at the hypothesis point; auxiliary data follow shapesys τ).
//!   Each fit is first polished by one exact Newton step, since the envelope
//!   gradient's error is linear in the fit's residual gradient;
//! * the **Asimov parameters' own dependence** on u when the Asimov data come
//!   from a fit to observed data ([`AsimovSource::ConditionalFit`], pyhf's
//!   convention, always used by [`LossKind::ObservedCls`]) by the implicit-
//!   function theorem, as an adjoint: dq/du −= zᵀ ∂²f_obs/∂θ∂u with
//!   z = H⁻¹ ∂q/∂θ_A over the parameters that fit can move;
//! * **Fisher-information quantities** (σ_μ, generalised variance) at a fixed
//!   hypothesis point, where no fit is involved, from third derivatives
//!   d/du (wᵀ ∇²_θ(−2 ln L) w) with nested duals (`Dual2<DualSVec64<LANES>>`).
//!   σ_μ is INFERNO's loss (arXiv:1806.04743): [I⁻¹]_μμ on the Asimov data of
//!   the hypothesis point (free or re-scaled nuisance constraints, as
//!   INFERNO's benchmarks need, come with the model:
//!   [`crate::hf::ModelOptions::constraint_overrides`]).
//!
//! Derivatives w.r.t. the inputs are taken [`LANES`] inputs at a time with a
//! small fixed-size dual number (`DualSVec64<LANES>`) through
//! `Model::twice_nll_generic` / `expected_data_generic`: the same likelihood
//! code the fits use. Constants carry no derivative part, so only the seeded
//! inputs cost extra.
//!
//! The fits are global (`infer::fit::minimize`), as the envelope theorem
//! requires. Where a fit finds two distinct minima within
//! [`AMBIGUITY_TOL`] of each other in `-2 ln L`, the loss's value is
//! still defined but its gradient is not (it jumps between the branches), so
//! evaluating with gradients fails with [`Error::AmbiguousMinimum`] instead of
//! returning one branch's gradient. Likewise a minimum on a domain wall (an
//! empty bin's rate at 0, `FitResult::walls`), where the envelope gradient
//! misses the wall's term, fails with [`Error::WallMinimum`].
//!
//! Hypothesis points follow neos/relaxed by default
//! ([`AsimovSource::Nominal`]): the model's suggested initial parameters with
//! the POI set (0 for the background-only Asimov data of CLs, 1 for the
//! signal-plus-background Asimov data of p0 and Z0).

use candle_core::Tensor;
use num_dual::{Dual, Dual2, DualSVec64};

use super::op::{host_inputs, scalar_loss};
use super::template::{Instance, Target, Template};
use crate::hf::Model;
use crate::infer::asymptotics::normal_cdf;
use crate::infer::fit::{fixed_poi_fit, minimize, minimize_local, FitOptions, FitResult, FitSetup};
use crate::infer::teststat::{statistic_from_fits, TestStat};
use crate::infer::Likelihood;
use crate::{Error, Result};

/// Relative `-2 ln L` gap (absolute below 1) under which two distinct
/// minima of a fit make a gradient through it ill-defined.
pub const AMBIGUITY_TOL: f64 = 1e-6;

/// Fail if `fit` has a second minimum within [`AMBIGUITY_TOL`].
fn unambiguous(fit: &FitResult, context: &str) -> Result<()> {
    if !fit.walls.is_empty() {
        return Err(Error::WallMinimum {
            context: context.to_string(),
            message: format!(
                "the expected rate of bin(s) {:?} (no observed events) is 0 at the minimum: \
                 the gradient through this fit would miss the wall's term",
                fit.walls
            ),
        });
    }
    if fit.is_ambiguous(AMBIGUITY_TOL) {
        return Err(Error::AmbiguousMinimum {
            context: context.to_string(),
            message: format!(
                "{} distinct minima, the lowest two at -2 ln L = {} and {:?}: the gradient \
                 through this fit is discontinuous here",
                fit.minima, fit.twice_nll, fit.runner_up
            ),
        });
    }
    Ok(())
}

/// Which loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossKind {
    /// Expected (median) CLs at POI `test_mu` with `stat` (`Qmu` or
    /// `QmuTilde`) on background-only Asimov data: `CLs = 2 Φ(−√qμ,A)`
    /// (what `relaxed.infer.hypotest` and neos minimise).
    Cls { test_mu: f64, stat: TestStat },
    /// Discovery p-value `Φ(−√q0)` on signal-plus-background (POI = 1)
    /// Asimov data.
    P0,
    /// Discovery significance `√q0` on signal-plus-background Asimov data.
    Z0,
    /// Cramér–Rao σ of the POI, `sqrt((I⁻¹)_μμ)`, with the Fisher
    /// information `I` of the free parameters at the hypothesis point
    /// (POI = `hyp_mu`) on its own Asimov data.
    SigmaMu { hyp_mu: f64 },
    /// Generalised variance `1/det I` (I as for `SigmaMu`).
    GeneralisedVariance { hyp_mu: f64 },
    /// A test statistic at POI `test_mu` on the observed data (workspace
    /// observations, or the `Observed` inputs of the template).
    ObservedTestStat { stat: TestStat, test_mu: f64 },
    /// Observed CLs at `test_mu` with `stat` (`Qmu` or `QmuTilde`) as pyhf's
    /// asymptotic `hypotest` computes it: q on the observed data and q_A on
    /// the Asimov data of the fit to the observed data with POI = 0 (always
    /// [`AsimovSource::ConditionalFit`], whatever the loss's setting).
    ObservedCls { test_mu: f64, stat: TestStat },
    /// `−2 ln L` at the best fit to the observed data (POI fixed at `poi`
    /// if given, else free): twice the profile negative log-likelihood, with
    /// the envelope-theorem gradient ∂(−2 ln L)/∂u at the optimum. Fitting
    /// template inputs (e.g. a neural transfer function's TF_MC) by
    /// minimising it is maximum profile likelihood.
    ObservedNll { poi: Option<f64> },
}

impl LossKind {
    fn name(&self) -> &'static str {
        match self {
            LossKind::Cls { .. } => "grad::cls",
            LossKind::P0 => "grad::p0",
            LossKind::Z0 => "grad::z0",
            LossKind::SigmaMu { .. } => "grad::sigma_mu",
            LossKind::GeneralisedVariance { .. } => "grad::generalised_variance",
            LossKind::ObservedTestStat { .. } => "grad::observed_test_stat",
            LossKind::ObservedCls { .. } => "grad::observed_cls",
            LossKind::ObservedNll { .. } => "grad::observed_nll",
        }
    }
}

/// Which parameters generate the Asimov data of CLs, p0 and Z0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsimovSource {
    /// The model's suggested initial parameters with the POI set (neos,
    /// relaxed): the data depend on the templates only through the expected
    /// yields.
    #[default]
    Nominal,
    /// The fit to the observed data with the POI fixed (pyhf's asymptotic
    /// calculator): the data also depend on the templates through the fitted
    /// parameters θ_A, differentiated with the implicit-function theorem
    /// dθ_A/du = −H⁻¹ ∂²(−2 ln L)/∂θ∂u (parameters held at a bound or fixed do
    /// not move). The Fisher losses keep the nominal hypothesis point.
    ConditionalFit,
}

/// Value and (optionally) gradient of a loss w.r.t. the template's values.
#[derive(Debug, Clone, PartialEq)]
pub struct LossValue {
    pub value: f64,
    pub grad: Option<Vec<f64>>,
}

/// A loss over a [`Template`].
#[derive(Debug, Clone)]
pub struct Loss {
    template: Template,
    kind: LossKind,
    fit: FitOptions,
    asimov: AsimovSource,
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

fn normal_pdf(x: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

impl Loss {
    /// `kind` over `template` with the default fit options.
    pub fn new(template: Template, kind: LossKind) -> Self {
        Loss {
            template,
            kind,
            fit: FitOptions::default(),
            asimov: AsimovSource::Nominal,
        }
    }

    /// Chooses how the Asimov data of CLs, p0 and Z0 are generated.
    pub fn with_asimov(mut self, asimov: AsimovSource) -> Self {
        self.asimov = asimov;
        self
    }

    /// Overrides the fit options (iteration budget, tolerance).
    pub fn with_fit_options(mut self, fit: FitOptions) -> Self {
        self.fit = fit;
        self
    }

    /// The template.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The loss kind.
    pub fn kind(&self) -> LossKind {
        self.kind
    }

    /// The loss as a scalar tensor on the tape of `inputs` (one tensor per
    /// template input, in order, each with that input's number of elements;
    /// any float dtype, all on one device). Fit failures and invalid yields
    /// are returned here, before anything is put on the tape.
    pub fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let lens = self.template.input_lens();
        if inputs.len() != lens.len() {
            return Err(Error::InvalidInput(format!(
                "{}: {} tensors given, the template has {} inputs",
                self.kind.name(),
                inputs.len(),
                lens.len()
            )));
        }
        for (i, (t, &n)) in inputs.iter().zip(&lens).enumerate() {
            if t.elem_count() != n {
                return Err(Error::InvalidInput(format!(
                    "{}: input {i} has {} elements, the template needs {n}",
                    self.kind.name(),
                    t.elem_count()
                )));
            }
        }
        let host = host_inputs(self.kind.name(), inputs)?;
        let v = self.evaluate(&host.values, host.track)?;
        scalar_loss(self.kind.name(), &host, v.value, v.grad)
    }

    /// Value and, if `with_grad`, the exact gradient w.r.t. `values` (all
    /// template inputs concatenated), on the host.
    pub fn evaluate(&self, values: &[f64], with_grad: bool) -> Result<LossValue> {
        let inst = self.template.instantiate(values)?;
        match self.kind {
            LossKind::Cls { test_mu, stat } => {
                if !matches!(stat, TestStat::Qmu | TestStat::QmuTilde) {
                    return Err(Error::InvalidInput(format!(
                        "grad::cls: expected CLs needs q or qtilde, not {stat}"
                    )));
                }
                let (q, dq) = self.asimov_test_stat(&inst, stat, test_mu, 0.0, with_grad)?;
                let sq = q.sqrt();
                let value = 2.0 * normal_cdf(-sq);
                let dv = if q > 0.0 { -normal_pdf(sq) / sq } else { 0.0 };
                Ok(chain(value, dv, dq))
            }
            LossKind::P0 | LossKind::Z0 => {
                let (q, dq) = self.asimov_test_stat(&inst, TestStat::Q0, 0.0, 1.0, with_grad)?;
                let sq = q.sqrt();
                if self.kind == LossKind::P0 {
                    let dv = if q > 0.0 {
                        -normal_pdf(sq) / (2.0 * sq)
                    } else {
                        0.0
                    };
                    Ok(chain(normal_cdf(-sq), dv, dq))
                } else {
                    // q0 = 0 only on its one-sided branch (μ̂ below 0), where it
                    // is 0 in a neighbourhood and the gradient is 0
                    let dv = if q > 0.0 { 0.5 / sq } else { 0.0 };
                    Ok(chain(sq, dv, dq))
                }
            }
            LossKind::ObservedTestStat { stat, test_mu } => {
                let data = inst.observed_data();
                let (q, dq, _) = self.test_stat_on(
                    &inst,
                    stat,
                    test_mu,
                    &data,
                    DataSource::Observed,
                    with_grad,
                )?;
                Ok(chain(q, 1.0, dq))
            }
            LossKind::ObservedCls { test_mu, stat } => {
                if !matches!(stat, TestStat::Qmu | TestStat::QmuTilde) {
                    return Err(Error::InvalidInput(format!(
                        "grad::observed_cls: CLs needs q or qtilde, not {stat}"
                    )));
                }
                let data = inst.observed_data();
                let (q, dq, _) = self.test_stat_on(
                    &inst,
                    stat,
                    test_mu,
                    &data,
                    DataSource::Observed,
                    with_grad,
                )?;
                let pyhf = Loss {
                    asimov: AsimovSource::ConditionalFit,
                    ..self.clone()
                };
                let (qa, dqa) = pyhf.asimov_test_stat(&inst, stat, test_mu, 0.0, with_grad)?;
                let (value, dv_dq, dv_dqa) = observed_cls(q, qa, stat == TestStat::QmuTilde)?;
                let grad = match (dq, dqa) {
                    (Some(a), Some(b)) => Some(
                        a.iter()
                            .zip(&b)
                            .map(|(x, y)| dv_dq * x + dv_dqa * y)
                            .collect(),
                    ),
                    _ => None,
                };
                Ok(LossValue { value, grad })
            }
            LossKind::ObservedNll { poi } => {
                let model = &inst.model;
                let data = inst.observed_data();
                let setup = FitSetup::from_model(model);
                let fit = match poi {
                    Some(mu) => fixed_poi_fit(model, &data, mu, &setup, None, &self.fit)?,
                    None => minimize(model, &data, &setup, None, &self.fit, "free fit")?,
                };
                if !with_grad {
                    return Ok(LossValue {
                        value: fit.twice_nll,
                        grad: None,
                    });
                }
                unambiguous(&fit, "fit to the observed data")?;
                let p = polish(model, &fit, &data)?;
                let grad = directional(&inst, |u, obs_main| {
                    let mut d = obs_main.to_vec();
                    d.extend(model.auxdata_generic(u)?);
                    nll_at(model, &p, &d, u)
                })?;
                Ok(LossValue {
                    value: fit.twice_nll,
                    grad: Some(grad),
                })
            }
            LossKind::SigmaMu { hyp_mu } => self.fisher_loss(&inst, hyp_mu, true, with_grad),
            LossKind::GeneralisedVariance { hyp_mu } => {
                self.fisher_loss(&inst, hyp_mu, false, with_grad)
            }
        }
    }

    fn poi(model: &Model) -> Result<usize> {
        model
            .poi_index()
            .ok_or_else(|| Error::InvalidInput("the model has no parameter of interest".into()))
    }

    /// The hypothesis point (suggested inits, POI = `mu`) and its Asimov data.
    fn hypothesis(model: &Model, mu: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        let poi = Self::poi(model)?;
        let mut pars = model.init();
        pars[poi] = mu;
        let data = model.expected_data(&pars)?;
        check_positive(&data[..model.n_main()], mu)?;
        Ok((pars, data))
    }

    fn asimov_test_stat(
        &self,
        inst: &Instance,
        stat: TestStat,
        test_mu: f64,
        hyp_mu: f64,
        with_grad: bool,
    ) -> Result<(f64, Option<Vec<f64>>)> {
        let model = &inst.model;
        if self.asimov == AsimovSource::Nominal {
            let (pars, data) = Self::hypothesis(model, hyp_mu)?;
            let (q, g, _) = self.test_stat_on(
                inst,
                stat,
                test_mu,
                &data,
                DataSource::Asimov(&pars),
                with_grad,
            )?;
            return Ok((q, g));
        }
        // pyhf: Asimov parameters from the fit to the observed data, POI fixed.
        let obs = inst.observed_data();
        let setup = FitSetup::from_model(model);
        let cond = fixed_poi_fit(model, &obs, hyp_mu, &setup, None, &self.fit)?;
        if with_grad {
            unambiguous(&cond, "Asimov parameters: fit to the observed data")?;
        }
        let pars_a = polish(model, &cond, &obs)?;
        let data = model.expected_data(&pars_a)?;
        check_positive(&data[..model.n_main()], hyp_mu)?;
        let (q, g, fits) = self.test_stat_on(
            inst,
            stat,
            test_mu,
            &data,
            DataSource::Asimov(&pars_a),
            with_grad,
        )?;
        let (Some(mut grad), Some((p_fixed, p_free))) = (g, fits) else {
            return Ok((q, None));
        };
        // a = ∂q/∂θ_A at fixed u (through the Asimov data only)
        let moving = moving_set(model, &cond, &obs)?;
        if moving.idx.is_empty() {
            return Ok((q, Some(grad)));
        }
        let u0: Vec<D> = model.inputs().iter().map(|&x| D::from(x)).collect();
        let mut a = Vec::with_capacity(moving.idx.len());
        for chunk in moving.idx.chunks(LANES) {
            let mut p: Vec<D> = pars_a.iter().map(|&x| D::from(x)).collect();
            for (j, &i) in chunk.iter().enumerate() {
                p[i] = p[i].derivative(j);
            }
            let d = model.expected_data_generic(&p, &u0)?;
            let r = nll_at(model, &p_fixed, &d, &u0)? - nll_at(model, &p_free, &d, &u0)?;
            for j in 0..chunk.len() {
                a.push(r.eps.0.as_ref().map_or(0.0, |m| m[j]));
            }
        }
        // z = H⁻¹ a on the moving parameters; dq/du −= zᵀ ∂²f_obs/∂θ∂u
        let z_m = cholesky(&moving.hess, moving.idx.len())
            .map(|l| cholesky_solve(&l, moving.idx.len(), &a))
            .ok_or_else(|| Error::FitFailed {
                context: format!("Asimov fit with the POI fixed at {hyp_mu}"),
                message: "the Hessian at the minimum is not positive definite".into(),
            })?;
        let z = embed(&z_m, &moving.idx, pars_a.len());
        let corr = directional(inst, |u, obs_main| {
            let p: Vec<Dual<D>> = pars_a
                .iter()
                .zip(&z)
                .map(|(&x, &zi)| Dual::new(D::from(x), D::from(zi)))
                .collect();
            let mut d: Vec<D> = obs_main.to_vec();
            d.extend(model.auxdata_generic(u)?);
            let d: Vec<Dual<D>> = d.into_iter().map(Dual::from_re).collect();
            let uu: Vec<Dual<D>> = u.iter().map(|&x| Dual::from_re(x)).collect();
            Ok(model.twice_nll_generic(&p, &d, &uu)?.eps)
        })?;
        for (g, c) in grad.iter_mut().zip(corr) {
            *g -= c;
        }
        Ok((q, Some(grad)))
    }

    fn test_stat_on(
        &self,
        inst: &Instance,
        stat: TestStat,
        test_mu: f64,
        data: &[f64],
        source: DataSource,
        with_grad: bool,
    ) -> Result<TestStatGrad> {
        let model = &inst.model;
        let poi = Self::poi(model)?;
        let setup = FitSetup::from_model(model);
        // On Asimov data every term is minimal at the generating parameters:
        // a global minimum, so one local fit from there suffices.
        let free = match source {
            DataSource::Asimov(p) => {
                minimize_local(model, data, &setup, Some(p), &self.fit, "free fit")?
            }
            DataSource::Observed => minimize(model, data, &setup, None, &self.fit, "free fit")?,
        };
        let fixed = fixed_poi_fit(model, data, test_mu, &setup, Some(&free.pars), &self.fit)?;
        let q = statistic_from_fits(stat, test_mu, &fixed, &free, poi);
        if !with_grad {
            return Ok((q, None, None));
        }
        // The statistic is identically 0 on this branch (one-sided or clipped).
        if q == 0.0 {
            return Ok((q, Some(vec![0.0; inst.targets.len()]), None));
        }
        unambiguous(&free, "free fit")?;
        unambiguous(&fixed, &format!("fit with the POI fixed at {test_mu}"))?;
        let p_fixed = polish(model, &fixed, data)?;
        let p_free = polish(model, &free, data)?;
        let grad = directional(inst, |u, obs_main| {
            let d = match source {
                DataSource::Asimov(p) => {
                    let p: Vec<D> = p.iter().map(|&x| D::from(x)).collect();
                    model.expected_data_generic(&p, u)?
                }
                DataSource::Observed => {
                    let mut d = obs_main.to_vec();
                    d.extend(model.auxdata_generic(u)?);
                    d
                }
            };
            let f0 = nll_at(model, &p_fixed, &d, u)?;
            let f1 = nll_at(model, &p_free, &d, u)?;
            Ok(f0 - f1)
        })?;
        Ok((q, Some(grad), Some((p_fixed, p_free))))
    }

    fn fisher_loss(
        &self,
        inst: &Instance,
        hyp_mu: f64,
        sigma: bool,
        with_grad: bool,
    ) -> Result<LossValue> {
        let model = &inst.model;
        let poi = Self::poi(model)?;
        let (pars, data) = Self::hypothesis(model, hyp_mu)?;
        let n = pars.len();
        let fixed = model.fixed();
        let free: Vec<usize> = (0..n).filter(|&i| !fixed[i]).collect();
        let m = free.len();
        let kpoi = free.iter().position(|&i| i == poi).ok_or_else(|| {
            Error::InvalidInput("the parameter of interest is fixed; σ_μ is undefined".into())
        })?;
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n * n];
        model.twice_nll_grad_hess(&pars, &data, &mut g, &mut h)?;
        // Fisher information of the free parameters: half the Hessian of −2 ln L.
        let mut fisher = vec![0.0; m * m];
        for (a, &i) in free.iter().enumerate() {
            for (b, &j) in free.iter().enumerate() {
                fisher[a * m + b] = 0.5 * h[i * n + j];
            }
        }
        let l = cholesky(&fisher, m).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the Fisher information at the hypothesis point (POI = {hyp_mu}) is not positive \
                 definite: some free parameter is not constrained (e.g. a shapefactor without a \
                 control region)"
            ))
        })?;
        let linv = lower_inverse(&l, m);
        // Directions w (full parameter space) whose curvature derivative we need,
        // and how each contributes to the gradient.
        let (value, dirs, coef): (f64, Vec<Vec<f64>>, f64) = if sigma {
            // v = I⁻¹ e_μ = L⁻ᵀ L⁻¹ e_μ
            let y: Vec<f64> = (0..m).map(|a| linv[a * m + kpoi]).collect();
            let mut v = vec![0.0; m];
            for (b, vb) in v.iter_mut().enumerate() {
                *vb = (0..m).map(|a| linv[a * m + b] * y[a]).sum();
            }
            let s = v[kpoi].sqrt();
            // dσ = −vᵀ dI v / (2σ), dI = dH / 2
            (s, vec![embed(&v, &free, n)], -1.0 / (4.0 * s))
        } else {
            // 1/det I = Π 1/L_aa²; d(1/det I) = −(1/det I) tr(I⁻¹ dI),
            // tr(I⁻¹ dI) = Σ_a c_aᵀ dI c_a with c_a the rows of L⁻¹.
            let det: f64 = (0..m).map(|a| l[a * m + a] * l[a * m + a]).product();
            let gv = 1.0 / det;
            let rows = (0..m)
                .map(|a| embed(&linv[a * m..(a + 1) * m], &free, n))
                .collect();
            (gv, rows, -gv / 2.0)
        };
        if !with_grad {
            return Ok(LossValue { value, grad: None });
        }
        let grad = directional(inst, |u, _| {
            // data at the hypothesis point, as a function of u only
            let p: Vec<D> = pars.iter().map(|&x| D::from(x)).collect();
            let d = model.expected_data_generic(&p, u)?;
            let d2: Vec<Dual2<D>> = d.iter().map(|&x| Dual2::from_re(x)).collect();
            let u2: Vec<Dual2<D>> = u.iter().map(|&x| Dual2::from_re(x)).collect();
            let mut total = D::from(0.0);
            for w in &dirs {
                let p2: Vec<Dual2<D>> = pars
                    .iter()
                    .zip(w)
                    .map(|(&x, &wi)| Dual2::new(D::from(x), D::from(wi), D::from(0.0)))
                    .collect();
                let f = model.twice_nll_generic(&p2, &d2, &u2)?;
                total += f.v2;
            }
            Ok(total * coef)
        })?;
        Ok(LossValue {
            value,
            grad: Some(grad),
        })
    }
}

#[derive(Clone, Copy)]
enum DataSource<'a> {
    /// Expected data at these parameters (depends on the inputs).
    Asimov(&'a [f64]),
    /// The instance's observed main data plus the model's auxiliary data.
    Observed,
}

/// pyhf's observed CLs from q and q_A (test statistic in −μ̂/σ space, s+b
/// distribution shifted by −√q_A), with ∂CLs/∂q and ∂CLs/∂q_A.
fn observed_cls(q: f64, qa: f64, tilde: bool) -> Result<(f64, f64, f64)> {
    if qa.is_nan() || qa <= 0.0 {
        return Err(Error::InvalidInput(format!(
            "grad::observed_cls: the Asimov test statistic is {qa}; CLs needs q_A > 0"
        )));
    }
    let (sq, sqa) = (q.sqrt(), qa.sqrt());
    // 1/(2√q), taken as 0 at q = 0, where q's own gradient vanishes
    let inv2sq = if q > 0.0 { 0.5 / sq } else { 0.0 };
    let (a, c, da_dq, da_dqa, dc_dq, dc_dqa) = if tilde && sq > sqa {
        let k = 0.5 / sqa;
        let k3 = 0.25 / (qa * sqa);
        (
            (q + qa) * k,
            (q - qa) * k,
            k,
            k - (q + qa) * k3,
            k,
            -k - (q - qa) * k3,
        )
    } else {
        // CLs+b = Φ(−√q), CLb = Φ(−(√q − √q_A))
        (sq, sq - sqa, inv2sq, 0.0, inv2sq, -0.5 / sqa)
    };
    let (num, den) = (normal_cdf(-a), normal_cdf(-c));
    let (dn_dq, dn_dqa) = (-normal_pdf(a) * da_dq, -normal_pdf(a) * da_dqa);
    let (dd_dq, dd_dqa) = (-normal_pdf(c) * dc_dq, -normal_pdf(c) * dc_dqa);
    let v = num / den;
    Ok((
        v,
        (dn_dq * den - num * dd_dq) / (den * den),
        (dn_dqa * den - num * dd_dqa) / (den * den),
    ))
}

/// A test statistic, its gradient, and the polished (fixed-POI, free) fits.
type TestStatGrad = (f64, Option<Vec<f64>>, Option<(Vec<f64>, Vec<f64>)>);

fn check_positive(main: &[f64], mu: f64) -> Result<()> {
    for (b, &l) in main.iter().enumerate() {
        if !(l > 0.0 && l.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "expected yield {l} in main bin {b} at the hypothesis point (POI = {mu}); \
                 yields must be > 0 (see grad::YieldFloor)"
            )));
        }
    }
    Ok(())
}

/// The parameters a converged fit can move (free, not held at a bound), with
/// the Hessian of −2 ln L restricted to them.
struct Moving {
    idx: Vec<usize>,
    /// Full gradient of −2 ln L at the fit.
    grad: Vec<f64>,
    hess: Vec<f64>,
}

fn moving_set(model: &Model, fit: &FitResult, data: &[f64]) -> Result<Moving> {
    let n = fit.pars.len();
    let mut g = vec![0.0; n];
    let mut h = vec![0.0; n * n];
    model.twice_nll_grad_hess(&fit.pars, data, &mut g, &mut h)?;
    let bounds = model.bounds();
    let idx: Vec<usize> = (0..n)
        .filter(|&i| {
            let (lo, hi) = bounds[i];
            let x = fit.pars[i];
            let held = (x <= lo && g[i] > 0.0) || (x >= hi && g[i] < 0.0);
            !fit.fixed[i] && !held
        })
        .collect();
    let m = idx.len();
    let mut hess = vec![0.0; m * m];
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            hess[a * m + b] = h[i * n + j];
        }
    }
    Ok(Moving { idx, grad: g, hess })
}

fn chain(value: f64, dv: f64, dq: Option<Vec<f64>>) -> LossValue {
    LossValue {
        value,
        grad: dq.map(|g| g.into_iter().map(|x| dv * x).collect()),
    }
}

fn nll_at(model: &Model, pars: &[f64], data: &[D], u: &[D]) -> Result<D> {
    let p: Vec<D> = pars.iter().map(|&x| D::from(x)).collect();
    model.twice_nll_generic(&p, data, u)
}

/// One Newton step on the free parameters that are not held at a bound.
///
/// The envelope gradient at a point with residual gradient r is off by
/// −(∂²f/∂u∂θ) H⁻¹ r, linear in r: with the fits' tolerance (r ≲ 1e-10·|f|)
/// that reaches 1e-5 relative for weakly constrained parameters (staterror,
/// shapesys γ). One exact Newton step makes the residual O(r²).
fn polish(model: &Model, fit: &FitResult, data: &[f64]) -> Result<Vec<f64>> {
    let moving = moving_set(model, fit, data)?;
    let m = moving.idx.len();
    let mut pars = fit.pars.clone();
    if m == 0 {
        return Ok(pars);
    }
    // Not positive definite on this subspace: keep the fit's point (the fit
    // reported convergence; the correction is second order there).
    let Some(l) = cholesky(&moving.hess, m) else {
        return Ok(pars);
    };
    let rhs: Vec<f64> = moving.idx.iter().map(|&i| -moving.grad[i]).collect();
    let step = cholesky_solve(&l, m, &rhs);
    let bounds = model.bounds();
    for (a, &i) in moving.idx.iter().enumerate() {
        let (lo, hi) = bounds[i];
        pars[i] = (pars[i] + step[a]).clamp(lo, hi);
    }
    Ok(pars)
}

/// Solves `L Lᵀ x = b`.
fn cholesky_solve(l: &[f64], m: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; m];
    for i in 0..m {
        let s: f64 = (0..i).map(|k| l[i * m + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * m + i];
    }
    let mut x = vec![0.0; m];
    for i in (0..m).rev() {
        let s: f64 = (i + 1..m).map(|k| l[k * m + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * m + i];
    }
    x
}

/// Number of input directions per dual evaluation.
pub const LANES: usize = 8;

/// The dual type of the input derivatives.
type D = DualSVec64<LANES>;

/// d f(u, obs_main)/d value_k for every supplied value k, where `f` sees the
/// inputs `u` and the observed main data as duals seeded in up to [`LANES`]
/// directions at a time.
fn directional<F>(inst: &Instance, mut f: F) -> Result<Vec<f64>>
where
    F: FnMut(&[D], &[D]) -> Result<D>,
{
    let mut u: Vec<D> = inst.model.inputs().iter().map(|&x| D::from(x)).collect();
    let mut obs: Vec<D> = inst.observed_main.iter().map(|&x| D::from(x)).collect();
    let mut out = Vec::with_capacity(inst.targets.len());
    for chunk in inst.targets.chunks(LANES) {
        for (j, t) in chunk.iter().enumerate() {
            match *t {
                Target::Input { offset, .. } => u[offset] = u[offset].derivative(j),
                Target::Data { offset } => obs[offset] = obs[offset].derivative(j),
            }
        }
        let r = f(&u, &obs)?;
        for j in 0..chunk.len() {
            out.push(r.eps.0.as_ref().map_or(0.0, |m| m[j]));
        }
        for t in chunk {
            match *t {
                Target::Input { offset, .. } => u[offset] = D::from(u[offset].re),
                Target::Data { offset } => obs[offset] = D::from(obs[offset].re),
            }
        }
    }
    Ok(out)
}

fn embed(v: &[f64], free: &[usize], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for (a, &i) in free.iter().enumerate() {
        out[i] = v[a];
    }
    out
}

/// Dense Cholesky factor (lower, row-major) of a symmetric positive-definite
/// `m × m` matrix; `None` if it is not positive definite, or so close to
/// singular (a pivot below 1e-12 of its diagonal entry) that rounding decides.
fn cholesky(a: &[f64], m: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; m * m];
    for i in 0..m {
        for j in 0..=i {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= l[i * m + k] * l[j * m + k];
            }
            if i == j {
                if !(s > 1e-12 * a[i * m + i].abs() && s.is_finite()) {
                    return None;
                }
                l[i * m + i] = s.sqrt();
            } else {
                l[i * m + j] = s / l[j * m + j];
            }
        }
    }
    Some(l)
}

/// Inverse of a lower-triangular matrix (row-major).
fn lower_inverse(l: &[f64], m: usize) -> Vec<f64> {
    let mut inv = vec![0.0; m * m];
    for j in 0..m {
        inv[j * m + j] = 1.0 / l[j * m + j];
        for i in j + 1..m {
            let mut s = 0.0;
            for k in j..i {
                s -= l[i * m + k] * inv[k * m + j];
            }
            inv[i * m + j] = s / l[i * m + i];
        }
    }
    inv
}
