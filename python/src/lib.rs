//! `anagrad._core`: the compiled part of the Python package.
//!
//! A thin layer over the library: workspaces, models, patchsets, the `infer`
//! calls (fits, hypothesis tests, upper limits, significance, toy ensembles
//! and their shards), the `grad` losses with their exact gradients, and
//! training runs (`train.rs`), with numpy arrays in and out. The pyhf-shaped
//! API (argument names, return shapes) lives in the pure-Python modules next
//! to it; this file only converts and calls.
//!
//! Every computation runs with the GIL released. Its rayon parallelism (the
//! multi-start global fits) uses the global pool unless a thread count is set
//! (`set_num_threads`, or `threads=` per call), in which case it runs inside a
//! cached pool of that size, so Dask workers do not oversubscribe cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anagrad::grad::{AsimovSource, InputSel, Loss, LossKind, Template, YieldFloor};
use anagrad::hf::{InputKind, InterpCode, Model, ModelOptions, PatchSet, Validation, Workspace};
use anagrad::infer::teststat::TestStat;
use anagrad::infer::toys::{
    self, Shard, ToyDistributions, ToyEnsemble, ToyHypotestResult, ToyOptions,
};
use anagrad::infer::{
    self, AsymptoticCalculator, FitOptions, FitResult, FitSetup, HypotestResult, Likelihood,
    LimitOptions, UpperLimitResult,
};
use anagrad::Error;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

mod train;

// ---------------------------------------------------------------- threads

/// Default thread count for calls without `threads=`; 0: rayon's global pool.
static DEFAULT_THREADS: AtomicUsize = AtomicUsize::new(0);
type Pools = Vec<(usize, Arc<rayon::ThreadPool>)>;
static POOLS: Mutex<Pools> = Mutex::new(Vec::new());

fn pool(n: usize) -> anagrad::Result<Arc<rayon::ThreadPool>> {
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("anagrad-{n}-{i}"))
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {n} threads: {e}")))?;
    let p = Arc::new(p);
    pools.push((n, p.clone()));
    Ok(p)
}

/// Runs `f` without the GIL, in a pool of `threads` (or the default) threads.
fn run<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> anagrad::Result<T> + Send,
) -> PyResult<T> {
    let n = threads.unwrap_or_else(|| DEFAULT_THREADS.load(Ordering::Relaxed));
    py.detach(|| if n == 0 { f() } else { pool(n)?.install(f) })
        .map_err(to_pyerr)
}

/// Sets the default number of threads of later calls (0: rayon's global pool,
/// sized by `RAYON_NUM_THREADS` or the number of cores).
#[pyfunction]
fn set_num_threads(n: usize) {
    DEFAULT_THREADS.store(n, Ordering::Relaxed);
}

/// The default number of threads (0: rayon's global pool).
#[pyfunction]
fn get_num_threads() -> usize {
    DEFAULT_THREADS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------- errors

/// The library's error as an exception of `anagrad.exceptions`, carrying its
/// located message.
fn to_pyerr(e: Error) -> PyErr {
    let name = match &e {
        Error::Io { .. } | Error::Json { .. } | Error::Workspace { .. } => "InvalidSpecification",
        Error::Patch { .. } => "InvalidPatch",
        Error::InvalidInput(_) | Error::Op { .. } | Error::Config { .. } => "InvalidInput",
        Error::AmbiguousMinimum { .. } => "AmbiguousMinimum",
        Error::NoMinimum { .. } => "NoMinimum",
        Error::FitFailed { .. } => "FailedMinimization",
        _ => "AnagradError",
    };
    let msg = e.to_string();
    Python::attach(|py| {
        let cls = py
            .import("anagrad.exceptions")
            .and_then(|m| m.getattr(name))
            .ok()
            .and_then(|c| c.cast_into::<PyType>().ok());
        match cls {
            Some(cls) => PyErr::from_type(cls, msg),
            None => PyRuntimeError::new_err(msg),
        }
    })
}

fn invalid(msg: impl Into<String>) -> PyErr {
    to_pyerr(Error::InvalidInput(msg.into()))
}

fn slice(a: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
    Ok(a.as_slice()
        .map_err(|e| invalid(format!("expected a contiguous float64 array: {e}")))?
        .to_vec())
}

fn arr<'py>(py: Python<'py>, v: Vec<f64>) -> Bound<'py, PyArray1<f64>> {
    PyArray1::from_vec(py, v)
}

// ---------------------------------------------------------------- workspace

/// A parsed and validated pyhf JSON workspace.
#[pyclass(frozen, name = "Workspace", module = "anagrad._core")]
struct PyWorkspace {
    ws: Workspace,
}

fn interp(name: Option<&str>, default: InterpCode) -> PyResult<InterpCode> {
    match name {
        None => Ok(default),
        Some(s) => s.parse::<InterpCode>().map_err(to_pyerr),
    }
}

#[pymethods]
impl PyWorkspace {
    /// Parses a workspace from its JSON text (`strict`: reject pyhf's
    /// harmless leniencies instead of warning).
    #[new]
    #[pyo3(signature = (json, strict = false))]
    fn new(json: &str, strict: bool) -> PyResult<Self> {
        let v = if strict {
            Validation::Strict
        } else {
            Validation::Lenient
        };
        Ok(PyWorkspace {
            ws: Workspace::from_json_str_with(json, v).map_err(to_pyerr)?,
        })
    }

    /// The workspace as JSON text.
    fn to_json(&self) -> String {
        self.ws.to_json_string()
    }

    /// Measurement names in file order.
    fn measurement_names(&self) -> Vec<String> {
        self.ws
            .measurement_names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Located warnings (pyhf's leniencies accepted by default).
    fn warnings(&self) -> PyResult<Vec<String>> {
        Ok(self
            .ws
            .validate()
            .map_err(to_pyerr)?
            .iter()
            .map(|w| w.to_string())
            .collect())
    }

    /// A copy with an RFC 6902 JSON patch applied (`label` names it in errors).
    #[pyo3(signature = (patch_json, label = "patch"))]
    fn patched(&self, patch_json: &str, label: &str) -> PyResult<PyWorkspace> {
        let mut ws = self.ws.clone();
        ws.apply_patch(patch_json, label).map_err(to_pyerr)?;
        Ok(PyWorkspace { ws })
    }

    /// Compiles the model of a measurement.
    #[pyo3(signature = (measurement = None, poi = None, normsys = None, histosys = None, strict = false))]
    fn model(
        &self,
        py: Python<'_>,
        measurement: Option<String>,
        poi: Option<String>,
        normsys: Option<&str>,
        histosys: Option<&str>,
        strict: bool,
    ) -> PyResult<PyModel> {
        let opts = ModelOptions {
            measurement,
            normsys_interp: interp(normsys, InterpCode::Code4)?,
            histosys_interp: interp(histosys, InterpCode::Code4p)?,
            poi,
            validation: if strict {
                Validation::Strict
            } else {
                Validation::Lenient
            },
            constraint_overrides: Vec::new(),
        };
        let model = run(py, None, || Model::new(&self.ws, &opts))?;
        Ok(PyModel {
            model: Arc::new(model),
        })
    }
}

// ---------------------------------------------------------------- model

/// A compiled HistFactory model (pyhf's `Model`).
#[pyclass(frozen, name = "Model", module = "anagrad._core")]
struct PyModel {
    model: Arc<Model>,
}

fn kind_str(k: InputKind) -> &'static str {
    match k {
        InputKind::Nominal => "nominal",
        InputKind::HistoLo => "lo_data",
        InputKind::HistoHi => "hi_data",
        InputKind::NormLo => "lo",
        InputKind::NormHi => "hi",
        InputKind::Uncertainty => "uncertainty",
        InputKind::TransferMc => "tf_mc",
    }
}

fn setup_from(
    m: &Model,
    init: Option<PyReadonlyArray1<'_, f64>>,
    bounds: Option<PyReadonlyArray1<'_, f64>>,
    fixed: Option<Vec<bool>>,
) -> PyResult<FitSetup> {
    let mut s = FitSetup::from_model(m);
    let n = s.init.len();
    if let Some(i) = init {
        let v = slice(&i)?;
        if v.len() != n {
            return Err(invalid(format!(
                "init_pars has {} values, the model has {n} parameters",
                v.len()
            )));
        }
        s.init = v;
    }
    if let Some(b) = bounds {
        let v = slice(&b)?;
        if v.len() != 2 * n {
            return Err(invalid(format!(
                "par_bounds has {} pairs, the model has {n} parameters",
                v.len() / 2
            )));
        }
        s.bounds = v.chunks(2).map(|c| (c[0], c[1])).collect();
    }
    if let Some(f) = fixed {
        if f.len() != n {
            return Err(invalid(format!(
                "fixed_params has {} values, the model has {n} parameters",
                f.len()
            )));
        }
        s.fixed = f;
    }
    Ok(s)
}

fn stat(name: &str) -> PyResult<TestStat> {
    name.parse::<TestStat>().map_err(to_pyerr)
}

fn fit_dict<'py>(
    py: Python<'py>,
    r: &FitResult,
    unc: Option<Vec<f64>>,
    corr: Option<Vec<f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pars", arr(py, r.pars.clone()))?;
    d.set_item("twice_nll", r.twice_nll)?;
    d.set_item("grad_norm", r.grad_norm)?;
    d.set_item("iterations", r.iterations)?;
    d.set_item("starts", r.starts)?;
    d.set_item("minima", r.minima)?;
    d.set_item("runner_up", r.runner_up)?;
    d.set_item("kinks", r.kinks.clone())?;
    if let Some(u) = unc {
        d.set_item("uncertainties", arr(py, u))?;
    }
    if let Some(c) = corr {
        d.set_item("correlations", arr(py, c))?;
    }
    Ok(d)
}

fn hypo_dict<'py>(py: Python<'py>, r: &HypotestResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("poi_test", r.poi_test)?;
    d.set_item("test_stat", r.test_stat.clone())?;
    d.set_item("CLs_obs", r.cls_obs)?;
    d.set_item("CLs_exp", arr(py, r.cls_exp.to_vec()))?;
    d.set_item("CLsb_obs", r.clsb_obs)?;
    d.set_item("CLb_obs", r.clb_obs)?;
    d.set_item("CLsb_exp", arr(py, r.clsb_exp.to_vec()))?;
    d.set_item("CLb_exp", arr(py, r.clb_exp.to_vec()))?;
    d.set_item("qmu", r.qmu)?;
    d.set_item("qmu_A", r.qmu_asimov)?;
    d.set_item("teststat", r.teststat)?;
    Ok(d)
}

fn limit_dict<'py>(py: Python<'py>, r: &UpperLimitResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("level", r.level)?;
    d.set_item("obs_limit", r.obs_limit)?;
    d.set_item("exp_limits", arr(py, r.exp_limits.to_vec()))?;
    let tested = PyList::empty(py);
    for t in &r.tested {
        tested.append(hypo_dict(py, t)?)?;
    }
    d.set_item("tested", tested)?;
    Ok(d)
}

#[pymethods]
impl PyModel {
    /// Parameter names as pyhf spells them (`name` or `name[i]`).
    fn par_names(&self) -> Vec<String> {
        self.model.par_names().to_vec()
    }

    /// Parameter sets in pyhf's `par_order`: `(name, type, offset, size, is_scalar)`.
    fn par_sets(&self) -> Vec<(String, String, usize, usize, bool)> {
        self.model
            .param_sets()
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.modifier_type.as_str().to_string(),
                    p.offset,
                    p.size,
                    p.is_scalar,
                )
            })
            .collect()
    }

    fn poi_index(&self) -> Option<usize> {
        self.model.poi_index()
    }

    fn poi_name(&self) -> Option<String> {
        self.model.poi_name().map(String::from)
    }

    fn measurement_name(&self) -> String {
        self.model.measurement_name().to_string()
    }

    fn init<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        arr(py, self.model.init())
    }

    /// Bounds, flattened `(lo0, hi0, lo1, hi1, …)`.
    fn bounds<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        arr(
            py,
            self.model
                .bounds()
                .iter()
                .flat_map(|&(a, b)| [a, b])
                .collect(),
        )
    }

    fn fixed(&self) -> Vec<bool> {
        self.model.fixed()
    }

    /// Channels in pyhf order with their bin counts.
    fn channels(&self) -> Vec<(String, usize)> {
        self.model.channels().to_vec()
    }

    /// Samples of each channel, in the workspace's order.
    fn channel_samples(&self) -> Vec<(String, Vec<String>)> {
        self.model
            .workspace()
            .channels
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.samples.iter().map(|s| s.name.clone()).collect(),
                )
            })
            .collect()
    }

    fn n_main(&self) -> usize {
        self.model.n_main()
    }

    fn n_data(&self) -> usize {
        self.model.n_data()
    }

    /// Observed data (main bins followed by the auxiliary data).
    fn observed_data<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        arr(py, self.model.observed_data())
    }

    /// Located warnings about inputs accepted under lenient validation.
    fn warnings(&self) -> Vec<String> {
        self.model
            .warnings()
            .iter()
            .map(|w| w.to_string())
            .collect()
    }

    /// Modifiers with parameters that can make the likelihood non-convex.
    fn nonconvex_parameters(&self) -> Vec<usize> {
        self.model.nonconvex_parameters()
    }

    /// The template vector (nominal yields, histosys lo/hi, normsys lo/hi,
    /// shapesys/staterror uncertainties, TF_MC).
    fn inputs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        arr(py, self.model.inputs().to_vec())
    }

    /// What each slice of `inputs()` is: `(channel, sample, modifier,
    /// modifier_type, role, offset, len)`.
    #[allow(clippy::type_complexity)]
    fn input_layout(
        &self,
    ) -> Vec<(
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        usize,
        usize,
    )> {
        self.model
            .input_layout()
            .iter()
            .map(|s| {
                (
                    s.channel.clone(),
                    s.sample.clone(),
                    s.modifier.clone(),
                    s.modifier_type.map(|t| t.as_str().to_string()),
                    kind_str(s.kind).to_string(),
                    s.offset,
                    s.len,
                )
            })
            .collect()
    }

    /// The same model with a new template vector.
    fn with_inputs(&self, py: Python<'_>, inputs: PyReadonlyArray1<'_, f64>) -> PyResult<PyModel> {
        let v = slice(&inputs)?;
        let m = run(py, None, || self.model.with_inputs(v))?;
        Ok(PyModel { model: Arc::new(m) })
    }

    /// `-2 ln L(pars | data)`.
    fn twice_nll(
        &self,
        py: Python<'_>,
        pars: PyReadonlyArray1<'_, f64>,
        data: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<f64> {
        let (p, d) = (slice(&pars)?, slice(&data)?);
        run(py, None, || self.model.twice_nll(&p, &d))
    }

    /// `-2 ln L`, its gradient and its Hessian (flattened, row-major).
    #[allow(clippy::type_complexity)]
    fn twice_nll_grad_hess<'py>(
        &self,
        py: Python<'py>,
        pars: PyReadonlyArray1<'_, f64>,
        data: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<(f64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
        let (p, d) = (slice(&pars)?, slice(&data)?);
        let n = self.model.n_pars();
        if p.len() != n {
            return Err(invalid(format!(
                "pars has length {}, the model has {n} parameters",
                p.len()
            )));
        }
        let (v, g, h) = run(py, None, || {
            let mut g = vec![0.0; n];
            let mut h = vec![0.0; n * n];
            let v = self.model.twice_nll_grad_hess(&p, &d, &mut g, &mut h)?;
            Ok((v, g, h))
        })?;
        Ok((v, arr(py, g), arr(py, h)))
    }

    /// Expected data (main bins followed by the auxiliary data).
    fn expected_data<'py>(
        &self,
        py: Python<'py>,
        pars: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let p = slice(&pars)?;
        let v = run(py, None, || self.model.expected_data(&p))?;
        Ok(arr(py, v))
    }

    /// Maximum-likelihood fit (POI fixed at `poi_value` if given).
    #[pyo3(signature = (data, init = None, bounds = None, fixed = None, poi_value = None,
        uncertainties = false, correlations = false, threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn fit<'py>(
        &self,
        py: Python<'py>,
        data: PyReadonlyArray1<'_, f64>,
        init: Option<PyReadonlyArray1<'_, f64>>,
        bounds: Option<PyReadonlyArray1<'_, f64>>,
        fixed: Option<Vec<bool>>,
        poi_value: Option<f64>,
        uncertainties: bool,
        correlations: bool,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = slice(&data)?;
        let setup = setup_from(&self.model, init, bounds, fixed)?;
        let m = &*self.model;
        let (r, unc, corr) = run(py, threads, || {
            let opts = FitOptions::default();
            let r = match poi_value {
                Some(mu) => infer::fixed_poi_fit(m, &d, mu, &setup, None, &opts)?,
                None => infer::fit(m, &d, &setup, &opts)?,
            };
            let unc = if uncertainties {
                Some(r.uncertainties()?)
            } else {
                None
            };
            let corr = if correlations {
                Some(r.correlation()?)
            } else {
                None
            };
            Ok((r, unc, corr))
        })?;
        fit_dict(py, &r, unc, corr)
    }

    /// Asymptotic hypothesis tests at each POI value of `poi_values` (one
    /// calculator: the fits that do not depend on μ are done once).
    #[pyo3(signature = (poi_values, data, init = None, bounds = None, fixed = None,
        test_stat = "qtilde", threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn hypotest<'py>(
        &self,
        py: Python<'py>,
        poi_values: Vec<f64>,
        data: PyReadonlyArray1<'_, f64>,
        init: Option<PyReadonlyArray1<'_, f64>>,
        bounds: Option<PyReadonlyArray1<'_, f64>>,
        fixed: Option<Vec<bool>>,
        test_stat: &str,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let d = slice(&data)?;
        let setup = setup_from(&self.model, init, bounds, fixed)?;
        let kind = stat(test_stat)?;
        let m = &*self.model;
        let rs = run(py, threads, || {
            let calc = AsymptoticCalculator::new(m, &d, setup, FitOptions::default(), kind)?;
            poi_values
                .iter()
                .map(|&mu| calc.hypotest(mu))
                .collect::<anagrad::Result<Vec<_>>>()
        })?;
        let out = PyList::empty(py);
        for r in &rs {
            out.append(hypo_dict(py, r)?)?;
        }
        Ok(out)
    }

    /// Observed and expected upper limits: Brent root finding (`scan=None`)
    /// or linear interpolation on the grid `scan` (pyhf's `linear_grid_scan`).
    #[pyo3(signature = (data, scan = None, level = 0.05, init = None, bounds = None,
        fixed = None, test_stat = "qtilde", bracket = None, rtol = 1e-10, atol = 1e-12,
        threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn upper_limit<'py>(
        &self,
        py: Python<'py>,
        data: PyReadonlyArray1<'_, f64>,
        scan: Option<Vec<f64>>,
        level: f64,
        init: Option<PyReadonlyArray1<'_, f64>>,
        bounds: Option<PyReadonlyArray1<'_, f64>>,
        fixed: Option<Vec<bool>>,
        test_stat: &str,
        bracket: Option<(f64, f64)>,
        rtol: f64,
        atol: f64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = slice(&data)?;
        let setup = setup_from(&self.model, init, bounds, fixed)?;
        let kind = stat(test_stat)?;
        let m = &*self.model;
        let r = run(py, threads, || {
            let calc = AsymptoticCalculator::new(m, &d, setup, FitOptions::default(), kind)?;
            match &scan {
                Some(grid) => infer::upper_limit_scan(&calc, grid, level),
                None => infer::upper_limit(
                    &calc,
                    &LimitOptions {
                        level,
                        rtol,
                        atol,
                        bracket,
                    },
                ),
            }
        })?;
        limit_dict(py, &r)
    }

    /// Discovery test (q0, Asimov data at μ = 1): p0 and Z, observed and expected.
    #[pyo3(signature = (data, threads = None))]
    fn significance<'py>(
        &self,
        py: Python<'py>,
        data: PyReadonlyArray1<'_, f64>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = slice(&data)?;
        let m = &*self.model;
        let r = run(py, threads, || {
            infer::significance(m, &d, &FitOptions::default())
        })?;
        let out = PyDict::new(py);
        out.set_item("p0_obs", r.p0_obs)?;
        out.set_item("p0_exp", arr(py, r.p0_exp.to_vec()))?;
        out.set_item("Z_obs", r.z_obs)?;
        out.set_item("Z_exp", arr(py, r.z_exp.to_vec()))?;
        out.set_item("q0", r.q0)?;
        out.set_item("q0_A", r.q0_asimov)?;
        Ok(out)
    }

    /// The toy distributions of a test at `poi_test` (pyhf's
    /// `ToyCalculator`): the observed statistic, the conditional fits the
    /// toys are drawn at, and the statistic of every toy of shard
    /// `shard = (index, count)` (zero-based: toys `i % count == index`),
    /// toy `i` seeded from `(seed, hypothesis, i)`.
    #[pyo3(signature = (poi_test, data, init = None, bounds = None, fixed = None,
        test_stat = "qtilde", ntoys = 2000, seed = 0, shard = (0, 1), progress = false,
        threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn toy_distributions(
        &self,
        py: Python<'_>,
        poi_test: f64,
        data: PyReadonlyArray1<'_, f64>,
        init: Option<PyReadonlyArray1<'_, f64>>,
        bounds: Option<PyReadonlyArray1<'_, f64>>,
        fixed: Option<Vec<bool>>,
        test_stat: &str,
        ntoys: usize,
        seed: u64,
        shard: (usize, usize),
        progress: bool,
        threads: Option<usize>,
    ) -> PyResult<PyToyDistributions> {
        let d = slice(&data)?;
        let setup = setup_from(&self.model, init, bounds, fixed)?;
        let kind = stat(test_stat)?;
        let opts = ToyOptions {
            ntoys,
            seed,
            shard: Shard {
                index: shard.0,
                count: shard.1,
            },
            fit: FitOptions::default(),
            progress,
        };
        let m = &*self.model;
        let d = run(py, threads, || {
            toys::toy_distributions(m, &d, poi_test, kind, &setup, &opts)
        })?;
        Ok(PyToyDistributions { d })
    }
}

// ---------------------------------------------------------------- toys

/// `(generating_poi, generating_pars, indices, values, failures)`.
type EnsembleState = (
    f64,
    Vec<f64>,
    Vec<usize>,
    Vec<Option<f64>>,
    Vec<(usize, String)>,
);
/// `(poi_test, test_stat, seed, ntoys, shards, observed, s+b, b)`.
type ToyState = (
    f64,
    String,
    u64,
    usize,
    Vec<(usize, usize)>,
    f64,
    EnsembleState,
    EnsembleState,
);

fn ensemble_state(e: &ToyEnsemble) -> EnsembleState {
    (
        e.generating_poi,
        e.generating_pars.clone(),
        e.indices.clone(),
        e.values.clone(),
        e.failures.clone(),
    )
}

fn ensemble_from(s: EnsembleState, which: &str) -> PyResult<ToyEnsemble> {
    let (generating_poi, generating_pars, indices, values, failures) = s;
    if indices.len() != values.len() {
        return Err(invalid(format!(
            "ToyDistributions: {which} has {} toy indices and {} values",
            indices.len(),
            values.len()
        )));
    }
    Ok(ToyEnsemble {
        generating_poi,
        generating_pars,
        indices,
        values,
        failures,
    })
}

fn ensemble_dict<'py>(py: Python<'py>, e: &ToyEnsemble) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("generating_poi", e.generating_poi)?;
    d.set_item("generating_pars", arr(py, e.generating_pars.clone()))?;
    d.set_item("indices", e.indices.clone())?;
    d.set_item(
        "values",
        arr(py, e.values.iter().map(|v| v.unwrap_or(f64::NAN)).collect()),
    )?;
    d.set_item("failures", e.failures.clone())?;
    Ok(d)
}

fn toy_result_dict<'py>(py: Python<'py>, r: &ToyHypotestResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("poi_test", r.poi_test)?;
    d.set_item("test_stat", r.test_stat.clone())?;
    d.set_item("CLs_obs", r.cls_obs)?;
    d.set_item("CLsb_obs", r.clsb_obs)?;
    d.set_item("CLb_obs", r.clb_obs)?;
    d.set_item("CLs_exp", arr(py, r.cls_exp.to_vec()))?;
    d.set_item("CLsb_exp", arr(py, r.clsb_exp.to_vec()))?;
    d.set_item("CLb_exp", arr(py, r.clb_exp.to_vec()))?;
    d.set_item("teststat", r.teststat)?;
    d.set_item("ntoys", (r.ntoys[0], r.ntoys[1]))?;
    d.set_item("failed", (r.failed[0], r.failed[1]))?;
    Ok(d)
}

/// Both toy distributions of a test at one POI value (all toys, or one
/// shard's): picklable, so shards computed on Dask workers (or by the CLI's
/// `cls --calctype toybased --shard K/N`, read with `from_json`) can be
/// merged anywhere into the unsharded ensemble, bit for bit.
#[pyclass(frozen, eq, name = "ToyDistributions", module = "anagrad._core")]
#[derive(PartialEq)]
struct PyToyDistributions {
    d: ToyDistributions,
}

#[pymethods]
impl PyToyDistributions {
    /// Rebuilds an object from the state `__reduce__` gives (pickling).
    #[new]
    fn new(state: ToyState) -> PyResult<Self> {
        let (poi_test, test_stat, seed, ntoys, shards, observed, sb, b) = state;
        if let Some(&(k, n)) = shards.iter().find(|&&(k, n)| n == 0 || k >= n) {
            return Err(invalid(format!(
                "ToyDistributions: invalid shard ({k}, {n})"
            )));
        }
        Ok(PyToyDistributions {
            d: ToyDistributions {
                poi_test,
                test_stat,
                seed,
                ntoys,
                shards: shards
                    .into_iter()
                    .map(|(index, count)| Shard { index, count })
                    .collect(),
                observed,
                signal_plus_background: ensemble_from(sb, "signal_plus_background")?,
                background: ensemble_from(b, "background")?,
            },
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, (ToyState,))> {
        let d = &slf.get().d;
        let state: ToyState = (
            d.poi_test,
            d.test_stat.clone(),
            d.seed,
            d.ntoys,
            d.shards.iter().map(|s| (s.index, s.count)).collect(),
            d.observed,
            ensemble_state(&d.signal_plus_background),
            ensemble_state(&d.background),
        );
        Ok((slf.get_type(), (state,)))
    }

    /// The tested POI value.
    #[getter]
    fn poi_test(&self) -> f64 {
        self.d.poi_test
    }

    /// `qtilde`, `q` or `q0`.
    #[getter]
    fn test_stat(&self) -> String {
        self.d.test_stat.clone()
    }

    /// The master seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.d.seed
    }

    /// Toys per hypothesis in the whole ensemble.
    #[getter]
    fn ntoys(&self) -> usize {
        self.d.ntoys
    }

    /// The shards held, `(index, count)`, zero-based.
    #[getter]
    fn shards(&self) -> Vec<(usize, usize)> {
        self.d.shards.iter().map(|s| (s.index, s.count)).collect()
    }

    /// The test statistic on the observed data.
    #[getter]
    fn observed(&self) -> f64 {
        self.d.observed
    }

    /// Signal-plus-background toys (POI = `poi_test`; for q0: POI = 0): a
    /// dict with `generating_poi`, `generating_pars`, `indices`, `values`
    /// (NaN where the toy's fits failed) and `failures` (`(index, message)`).
    #[getter]
    fn signal_plus_background<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        ensemble_dict(py, &self.d.signal_plus_background)
    }

    /// Background toys (POI = 0; for q0: POI = 1), as `signal_plus_background`.
    #[getter]
    fn background<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        ensemble_dict(py, &self.d.background)
    }

    /// Whether the shards held cover the whole ensemble.
    fn is_complete(&self) -> bool {
        self.d.is_complete()
    }

    /// CLs, CLs+b, CLb (observed) and their expected bands from the toys
    /// held (pyhf's keys), with `teststat`, `ntoys` and `failed` (s+b, b).
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = run(py, None, || self.d.result())?;
        toy_result_dict(py, &r)
    }

    /// The JSON the CLI writes (`distributions*.json`); non-finite numbers
    /// become `null`, so `pickle` is the exact transport.
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        run(py, None, || {
            serde_json::to_string(&self.d).map_err(|e| Error::Json {
                context: "toy distributions".into(),
                source: e,
            })
        })
    }

    /// Reads the JSON the CLI writes (`anagrad cls --calctype toybased --out DIR`).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let d = run(py, None, || {
            serde_json::from_str::<ToyDistributions>(text).map_err(|e| Error::Json {
                context: "toy distributions".into(),
                source: e,
            })
        })?;
        Ok(PyToyDistributions { d })
    }

    fn __repr__(&self) -> String {
        let d = &self.d;
        let shards: Vec<String> = d
            .shards
            .iter()
            .map(|s| format!("{}/{}", s.index + 1, s.count))
            .collect();
        format!(
            "ToyDistributions(poi_test={}, test_stat='{}', seed={}, ntoys={}, shards=[{}], \
             toys held={}+{}, observed={})",
            d.poi_test,
            d.test_stat,
            d.seed,
            d.ntoys,
            shards.join(", "),
            d.signal_plus_background.indices.len(),
            d.background.indices.len(),
            d.observed
        )
    }
}

/// Merges shards of one ensemble (same test, seed and size; any order) into
/// the distributions the unsharded run gives, bit for bit.
#[pyfunction]
fn toys_merge(
    py: Python<'_>,
    parts: Vec<Bound<'_, PyToyDistributions>>,
) -> PyResult<PyToyDistributions> {
    let parts: Vec<ToyDistributions> = parts.iter().map(|p| p.get().d.clone()).collect();
    let d = run(py, None, || ToyDistributions::merge(parts))?;
    Ok(PyToyDistributions { d })
}

// ---------------------------------------------------------------- patchsets

/// A pyhf patchset.
#[pyclass(frozen, name = "PatchSet", module = "anagrad._core")]
struct PyPatchSet {
    ps: PatchSet,
}

#[pymethods]
impl PyPatchSet {
    #[new]
    #[pyo3(signature = (json, label = "patchset"))]
    fn new(json: &str, label: &str) -> PyResult<Self> {
        Ok(PyPatchSet {
            ps: PatchSet::from_json_str(json, label).map_err(to_pyerr)?,
        })
    }

    fn names(&self) -> Vec<String> {
        self.ps.names().into_iter().map(String::from).collect()
    }

    /// `(name, values as JSON, operations as JSON)` of every patch.
    fn patches(&self) -> Vec<(String, String, String)> {
        self.ps
            .patches
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    serde_json::Value::Array(p.values.clone()).to_string(),
                    p.operations.to_string(),
                )
            })
            .collect()
    }

    /// `(name, description, labels, digests, references as JSON, version)`.
    #[allow(clippy::type_complexity)]
    fn metadata(
        &self,
    ) -> (
        Option<String>,
        String,
        Vec<String>,
        Vec<(String, String)>,
        String,
        String,
    ) {
        (
            self.ps.name.clone(),
            self.ps.description.clone(),
            self.ps.labels.clone(),
            self.ps
                .digests
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            serde_json::Value::Object(self.ps.references.clone()).to_string(),
            self.ps.version.clone(),
        )
    }

    /// Checks the digests against the workspace JSON (as pyhf computes them);
    /// returns the warnings (digests not checked).
    fn verify(&self, workspace_json: &str) -> PyResult<Vec<String>> {
        let v: serde_json::Value = serde_json::from_str(workspace_json)
            .map_err(|e| invalid(format!("workspace: invalid JSON: {e}")))?;
        Ok(self
            .ps
            .verify(&v)
            .map_err(to_pyerr)?
            .iter()
            .map(|w| w.to_string())
            .collect())
    }

    /// The workspace JSON with patch `name` applied (no digest check).
    fn apply_json(&self, workspace_json: &str, name: &str) -> PyResult<String> {
        let v: serde_json::Value = serde_json::from_str(workspace_json)
            .map_err(|e| invalid(format!("workspace: invalid JSON: {e}")))?;
        Ok(self.ps.apply_value(&v, name).map_err(to_pyerr)?.to_string())
    }
}

// ---------------------------------------------------------------- losses

fn input_sel(
    channel: &str,
    sample: Option<&str>,
    modifier: Option<&str>,
    role: &str,
) -> PyResult<InputSel> {
    fn need<'a>(x: Option<&'a str>, what: &str, role: &str) -> PyResult<&'a str> {
        x.ok_or_else(|| invalid(format!("input role '{role}' needs a {what}")))
    }
    Ok(match role {
        "observed" => InputSel::observed(channel),
        "nominal" => InputSel::nominal(channel, need(sample, "sample", role)?),
        "hi_data" => InputSel::histo_hi(
            channel,
            need(sample, "sample", role)?,
            need(modifier, "modifier", role)?,
        ),
        "lo_data" => InputSel::histo_lo(
            channel,
            need(sample, "sample", role)?,
            need(modifier, "modifier", role)?,
        ),
        "hi" => InputSel::norm_hi(
            channel,
            need(sample, "sample", role)?,
            need(modifier, "modifier", role)?,
        ),
        "lo" => InputSel::norm_lo(
            channel,
            need(sample, "sample", role)?,
            need(modifier, "modifier", role)?,
        ),
        "uncertainty" => InputSel::uncertainty(
            channel,
            need(sample, "sample", role)?,
            need(modifier, "modifier", role)?,
        ),
        "tf_mc" => InputSel::transfer_mc(
            channel,
            need(sample, "sample", role)?,
            need(modifier, "modifier", role)?,
        ),
        _ => {
            return Err(invalid(format!(
                "unknown input role '{role}' (expected nominal, hi_data, lo_data, hi, lo, \
                 uncertainty, tf_mc or observed)"
            )))
        }
    })
}

/// A differentiable statistical loss over a model whose chosen template
/// inputs are supplied at evaluation (`grad::Loss`).
#[pyclass(frozen, name = "Loss", module = "anagrad._core")]
struct PyLoss {
    loss: Loss,
}

#[pymethods]
impl PyLoss {
    /// `inputs`: `(channel, sample, modifier, role)` per input, in the order
    /// of the values passed to `evaluate`. `kind`: `cls`, `p0`, `z0`,
    /// `sigma_mu`, `generalised_variance`, `observed_test_stat`,
    /// `observed_cls` or `observed_nll`.
    #[new]
    #[pyo3(signature = (model, inputs, kind, test_mu = 1.0, test_stat = "qtilde",
        hyp_mu = 1.0, poi = None, asimov = "nominal", floor = 0.0))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn new(
        model: &PyModel,
        inputs: Vec<(String, Option<String>, Option<String>, String)>,
        kind: &str,
        test_mu: f64,
        test_stat: &str,
        hyp_mu: f64,
        poi: Option<f64>,
        asimov: &str,
        floor: f64,
    ) -> PyResult<Self> {
        let st = stat(test_stat)?;
        let kind = match kind {
            "cls" => LossKind::Cls { test_mu, stat: st },
            "p0" => LossKind::P0,
            "z0" => LossKind::Z0,
            "sigma_mu" => LossKind::SigmaMu { hyp_mu },
            "generalised_variance" => LossKind::GeneralisedVariance { hyp_mu },
            "observed_test_stat" => LossKind::ObservedTestStat { stat: st, test_mu },
            "observed_cls" => LossKind::ObservedCls { test_mu, stat: st },
            "observed_nll" => LossKind::ObservedNll { poi },
            k => return Err(invalid(format!("unknown loss kind '{k}'"))),
        };
        let asimov = match asimov {
            "nominal" => AsimovSource::Nominal,
            "conditional_fit" | "fit" => AsimovSource::ConditionalFit,
            a => {
                return Err(invalid(format!(
                    "asimov must be 'nominal' or 'conditional_fit', not '{a}'"
                )))
            }
        };
        let floor = if floor == 0.0 {
            YieldFloor::None
        } else {
            YieldFloor::Add(floor)
        };
        let mut t = Template::new((*model.model).clone()).with_floor(floor);
        for (c, s, m, r) in &inputs {
            t = t
                .with_input(input_sel(c, s.as_deref(), m.as_deref(), r)?)
                .map_err(to_pyerr)?;
        }
        Ok(PyLoss {
            loss: Loss::new(t, kind).with_asimov(asimov),
        })
    }

    /// Number of values of each input, in order.
    fn input_lens(&self) -> Vec<usize> {
        self.loss.template().input_lens()
    }

    /// The workspace's own values of the inputs, concatenated.
    fn current_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        arr(py, self.loss.template().current_values())
    }

    /// `(value, gradient or None)` at `values` (all inputs concatenated).
    #[pyo3(signature = (values, with_grad = true, threads = None))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        values: PyReadonlyArray1<'_, f64>,
        with_grad: bool,
        threads: Option<usize>,
    ) -> PyResult<(f64, Option<Bound<'py, PyArray1<f64>>>)> {
        let v = slice(&values)?;
        let r = run(py, threads, || self.loss.evaluate(&v, with_grad))?;
        Ok((r.value, r.grad.map(|g| arr(py, g))))
    }
}

/// Asimov significance Z_A of signal `s` over background `b` (per bin,
/// combined in quadrature), with the background uncertainty `sigma` if
/// given; returns `(Z_A, dZ/ds, dZ/db[, dZ/dsigma])`.
#[pyfunction]
#[pyo3(signature = (s, b, sigma = None, floor = 0.0))]
#[allow(clippy::type_complexity)]
fn asimov_significance<'py>(
    py: Python<'py>,
    s: PyReadonlyArray1<'_, f64>,
    b: PyReadonlyArray1<'_, f64>,
    sigma: Option<PyReadonlyArray1<'_, f64>>,
    floor: f64,
) -> PyResult<(f64, Vec<Bound<'py, PyArray1<f64>>>)> {
    let (s, b) = (slice(&s)?, slice(&b)?);
    let floor = if floor == 0.0 {
        YieldFloor::None
    } else {
        YieldFloor::Add(floor)
    };
    let n = s.len();
    match sigma {
        None => {
            let (z, g) =
                anagrad::grad::asimov_significance_host(&s, &b, floor, true).map_err(to_pyerr)?;
            let (ds, db) = g.unwrap_or_else(|| (vec![0.0; n], vec![0.0; n]));
            Ok((z, vec![arr(py, ds), arr(py, db)]))
        }
        Some(sig) => {
            let sig = slice(&sig)?;
            let (z, g) =
                anagrad::grad::asimov_significance_uncertain_host(&s, &b, &sig, floor, true)
                    .map_err(to_pyerr)?;
            let g = g.unwrap_or_else(|| vec![0.0; 3 * n]);
            Ok((
                z,
                vec![
                    arr(py, g[..n].to_vec()),
                    arr(py, g[n..2 * n].to_vec()),
                    arr(py, g[2 * n..].to_vec()),
                ],
            ))
        }
    }
}

/// The compiled module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWorkspace>()?;
    m.add_class::<PyModel>()?;
    m.add_class::<PyPatchSet>()?;
    m.add_class::<PyLoss>()?;
    m.add_class::<PyToyDistributions>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(asimov_significance, m)?)?;
    m.add_function(wrap_pyfunction!(toys_merge, m)?)?;
    train::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
