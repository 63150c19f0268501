//! The configuration of a pass/fail transfer-function analysis (JSON or
//! TOML, serde) and its translation into an anagrad workspace with the
//! transfer-factor extension ([`build`], [`build_workspace`]).
//!
//! A config holds the analysis axes (name, bin edges), observed counts per
//! region (`fail`, `pass`; nested `[ix][iy]` arrays, flat in 1-D), the other
//! samples per region (nominal + optional normsys), the signal templates,
//! the QCD settings (fail yields as `shapefactor` or `logshapefactor`; the TF
//! basis/order/form; an optional TF_MC as fixed values or as a two-step fit
//! to simulated pass/fail templates), blinded cells (pass region only),
//! masked cells (left out of both regions) and optional coordinate ranges.
//! Every problem is reported as [`Error::Config`] with the key that holds it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::mcfit::{fit_tf_mc, McFitResult};
use crate::hf::modifiers::transfer::Basis;
use crate::hf::Workspace;
use crate::toys::passfail::{PassFailToy, RegionYields, ToyYields};
use crate::{Error, Result};

/// Name of the fail (control) channel in the built workspace.
pub const FAIL: &str = "fail";
/// Name of the pass (signal) channel in the built workspace.
pub const PASS: &str = "pass";

/// One analysis axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// Axis name (e.g. `msd`, `pt`); becomes the coordinate axis name.
    pub name: String,
    /// Bin edges, increasing.
    pub edges: Vec<f64>,
}

/// Values per cell: `[ix][iy]` for two axes, `[ix]` for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Grid {
    /// One axis.
    OneD(Vec<f64>),
    /// Two axes, `[ix][iy]`.
    TwoD(Vec<Vec<f64>>),
}

impl Grid {
    /// As `[ix][iy]` rows (one column for 1-D).
    pub fn rows(&self) -> Vec<Vec<f64>> {
        match self {
            Grid::OneD(v) => v.iter().map(|&x| vec![x]).collect(),
            Grid::TwoD(v) => v.clone(),
        }
    }

    /// From `[ix][iy]` rows, flat when `ny == 1` and `one_d`.
    pub fn from_rows(rows: Vec<Vec<f64>>, one_d: bool) -> Grid {
        if one_d {
            Grid::OneD(rows.into_iter().map(|r| r[0]).collect())
        } else {
            Grid::TwoD(rows)
        }
    }
}

/// A quantity per region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regions {
    /// Fail (control) region.
    pub fail: Grid,
    /// Pass (signal) region.
    pub pass: Grid,
}

/// A normalisation systematic (pyhf normsys) acting in both regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormSysConfig {
    /// Parameter name.
    pub name: String,
    /// Factor at α = −1.
    pub lo: f64,
    /// Factor at α = +1.
    pub hi: f64,
}

/// A background other than QCD, taken from simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Sample name (not `qcd` or the signal's name).
    pub name: String,
    /// Nominal yields per region.
    pub yields: Regions,
    /// Normalisation systematics.
    #[serde(default)]
    pub normsys: Vec<NormSysConfig>,
}

/// The signal: templates per region scaled by the POI (a normfactor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// Sample name (default `signal`).
    #[serde(default = "default_signal")]
    pub name: String,
    /// POI name (default `mu`).
    #[serde(default = "default_poi")]
    pub poi: String,
    /// Yields at POI = 1.
    pub yields: Regions,
    /// Normalisation systematics.
    #[serde(default)]
    pub normsys: Vec<NormSysConfig>,
}

fn default_signal() -> String {
    "signal".into()
}
fn default_poi() -> String {
    "mu".into()
}
fn default_qcd() -> String {
    "qcd".into()
}
fn default_fail_name() -> String {
    "qcd_fail".into()
}
fn default_tf_name() -> String {
    "tf".into()
}
fn default_mc_name() -> String {
    "tf_mc".into()
}
fn default_basis() -> String {
    "bernstein".into()
}
fn default_form() -> String {
    "linear".into()
}

/// How the free fail-region QCD yields are parametrised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailYields {
    /// pyhf `shapefactor`: `n0_b · θ_b` (init 1, bounds [0, 10]).
    #[default]
    Shapefactor,
    /// rhalphalib's log form `n0_b (1 + 1/max(1, √n0_b))^(10 θ_b)` (init 0, bounds [−10, 10]).
    Logshapefactor,
}

/// The parametric transfer function fitted to data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TfConfig {
    /// Parameter-set name (default `tf`): parameters `tf[k]`.
    #[serde(default = "default_tf_name")]
    pub name: String,
    /// `bernstein` (default), `polynomial` or `chebyshev`.
    #[serde(default = "default_basis")]
    pub basis: String,
    /// Order per axis.
    pub order: Vec<usize>,
    /// `linear` (default) or `exp`.
    #[serde(default = "default_form")]
    pub form: String,
}

/// rhalphalib's two-step TF_MC: a Bernstein TF fitted to simulated QCD
/// pass/fail templates, then a Gaussian-constrained (decorrelated) factor
/// in the data fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McFitConfig {
    /// Simulated fail-region QCD.
    pub fail: Grid,
    /// Simulated pass-region QCD.
    pub pass: Grid,
    /// Bernstein order per axis.
    pub order: Vec<usize>,
    /// Parameter-set name in the data fit (default `tf_mc`).
    #[serde(default = "default_mc_name")]
    pub name: String,
}

/// A TF_MC: fixed per-cell values or a two-step fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TfMc {
    /// Fixed TF_MC per cell (the transferfactor's `mc`).
    Values(Grid),
    /// Fit to simulated templates ([`McFitConfig`]).
    Fit(McFitConfig),
}

/// The data-driven QCD estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QcdConfig {
    /// Sample name (default `qcd`).
    #[serde(default = "default_qcd")]
    pub name: String,
    /// Fail-yield parametrisation (default `shapefactor`).
    #[serde(default)]
    pub fail_yields: FailYields,
    /// Parameter-set name of the fail yields (default `qcd_fail`).
    #[serde(default = "default_fail_name")]
    pub fail_name: String,
    /// The transfer function fitted to data.
    pub tf: TfConfig,
    /// Optional TF_MC.
    #[serde(default)]
    pub tf_mc: Option<TfMc>,
}

/// A complete pass/fail transfer-function analysis (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// One or two axes.
    pub axes: Vec<Axis>,
    /// Scaling range per axis for the TF (default: the outer bin edges).
    #[serde(default)]
    pub ranges: Option<Vec<[f64; 2]>>,
    /// Observed counts.
    pub data: Regions,
    /// Other backgrounds.
    #[serde(default)]
    pub samples: Vec<SampleConfig>,
    /// The signal (optional: without it the model has no POI).
    #[serde(default)]
    pub signal: Option<SignalConfig>,
    /// The QCD estimate.
    pub qcd: QcdConfig,
    /// Pass-region cells left out of the likelihood (`[ix, iy]`; `[ix]` in 1-D).
    #[serde(default)]
    pub blinded: Vec<Vec<usize>>,
    /// Cells left out of both regions entirely (e.g. a ρ cut).
    #[serde(default)]
    pub masked: Vec<Vec<usize>>,
}

/// Which cells of the grid are bins of the two channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Bins along `x`.
    pub nx: usize,
    /// Bins along `y` (1 for a single axis).
    pub ny: usize,
    /// Channel bin → cell `(ix, iy)` (masked cells skipped, `iy` fastest).
    pub cells: Vec<(usize, usize)>,
    /// Cell `ix·ny + iy` → channel bin.
    pub bin_of: Vec<Option<usize>>,
    /// Channel bins of the blinded pass cells.
    pub blinded: Vec<usize>,
    /// Bin edges per axis.
    pub edges: Vec<Vec<f64>>,
    /// Bin centres per axis.
    pub centres: Vec<Vec<f64>>,
    /// TF scaling range per axis.
    pub ranges: Vec<[f64; 2]>,
}

impl Layout {
    /// Number of bins of each channel.
    pub fn n_bins(&self) -> usize {
        self.cells.len()
    }

    /// Number of axes.
    pub fn n_axes(&self) -> usize {
        self.centres.len()
    }

    /// The coordinates (bin centres) of channel bin `b`.
    pub fn coords(&self, b: usize) -> Vec<f64> {
        let (ix, iy) = self.cells[b];
        let mut c = vec![self.centres[0][ix]];
        if self.n_axes() == 2 {
            c.push(self.centres[1][iy]);
        }
        c
    }

    /// `x` scaled to `[0, 1]` by the range of axis `a`.
    pub fn scale(&self, a: usize, x: f64) -> f64 {
        let [lo, hi] = self.ranges[a];
        (x - lo) / (hi - lo)
    }

    /// Per channel bin, the values of a `[ix][iy]` grid.
    pub fn flatten(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        self.cells.iter().map(|&(i, j)| rows[i][j]).collect()
    }
}

/// The result of [`build`]: the workspace, the cell layout and, for a
/// two-step TF_MC, the fit to simulation.
#[derive(Debug, Clone)]
pub struct Built {
    /// The workspace (transfer-factor extension).
    pub workspace: Workspace,
    /// Cells ↔ channel bins.
    pub layout: Layout,
    /// The TF_MC fit, when the config asks for one.
    pub mc_fit: Option<McFitResult>,
}

fn cerr(key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl TransferConfig {
    /// Reads a config from a `.toml` file, or JSON otherwise.
    pub fn from_path(path: &Path) -> Result<TransferConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let cfg: TransferConfig = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| cerr(path.display().to_string(), e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|source| Error::Json {
                context: path.display().to_string(),
                source,
            })?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses a JSON config and validates it.
    pub fn from_json_str(s: &str) -> Result<TransferConfig> {
        let cfg: TransferConfig = serde_json::from_str(s).map_err(|source| Error::Json {
            context: "transfer config".into(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The same analysis with another TF order.
    pub fn with_order(&self, order: &[usize]) -> TransferConfig {
        let mut c = self.clone();
        c.qcd.tf.order = order.to_vec();
        c
    }

    /// Whether the config has a single axis.
    pub fn one_d(&self) -> bool {
        self.axes.len() == 1
    }

    /// Checks everything [`build`] relies on; see [`TransferConfig::layout`].
    pub fn validate(&self) -> Result<()> {
        self.layout().map(|_| ())
    }

    fn check_grid(&self, g: &Grid, key: &str, nonneg: bool) -> Result<Vec<Vec<f64>>> {
        let nx = self.axes[0].edges.len() - 1;
        let ny = self.axes.get(1).map_or(1, |a| a.edges.len() - 1);
        match (g, self.one_d()) {
            (Grid::OneD(_), false) => {
                return Err(cerr(
                    key,
                    format!(
                        "is a flat array; with two axes it must be nested [ix][iy] ({nx} x {ny})"
                    ),
                ))
            }
            (Grid::TwoD(_), true) => {
                return Err(cerr(
                    key,
                    format!("is a nested array; with one axis it must be flat ({nx} values)"),
                ))
            }
            _ => {}
        }
        let rows = g.rows();
        if rows.len() != nx {
            return Err(cerr(
                key,
                format!(
                    "has {} entries along axis '{}', which has {nx} bins",
                    rows.len(),
                    self.axes[0].name
                ),
            ));
        }
        for (i, r) in rows.iter().enumerate() {
            if r.len() != ny {
                return Err(cerr(
                    format!("{key}[{i}]"),
                    format!(
                        "has {} entries along axis '{}', which has {ny} bins",
                        r.len(),
                        self.axes[1].name
                    ),
                ));
            }
            for (j, &v) in r.iter().enumerate() {
                if !v.is_finite() || (nonneg && v < 0.0) {
                    let at = if self.one_d() {
                        format!("{key}[{i}]")
                    } else {
                        format!("{key}[{i}][{j}]")
                    };
                    return Err(cerr(
                        at,
                        format!(
                            "must be finite{}, found {v}",
                            if nonneg { " and ≥ 0" } else { "" }
                        ),
                    ));
                }
            }
        }
        Ok(rows)
    }

    fn check_cells(&self, cells: &[Vec<usize>], key: &str) -> Result<Vec<(usize, usize)>> {
        let nx = self.axes[0].edges.len() - 1;
        let ny = self.axes.get(1).map_or(1, |a| a.edges.len() - 1);
        let na = self.axes.len();
        cells
            .iter()
            .enumerate()
            .map(|(k, c)| {
                if c.len() != na {
                    return Err(cerr(
                        format!("{key}[{k}]"),
                        format!("a cell has {na} indices (one per axis), found {}", c.len()),
                    ));
                }
                let (i, j) = (c[0], c.get(1).copied().unwrap_or(0));
                if i >= nx || j >= ny {
                    return Err(cerr(
                        format!("{key}[{k}]"),
                        format!("cell {c:?} lies outside the {nx} x {ny} grid"),
                    ));
                }
                Ok((i, j))
            })
            .collect()
    }

    fn check_normsys(list: &[NormSysConfig], key: &str) -> Result<()> {
        for (k, n) in list.iter().enumerate() {
            if !(n.lo > 0.0 && n.hi > 0.0 && n.lo.is_finite() && n.hi.is_finite()) {
                return Err(cerr(
                    format!("{key}[{k}]"),
                    format!(
                        "normsys '{}' needs finite factors > 0, found lo {} hi {}",
                        n.name, n.lo, n.hi
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_order(&self, order: &[usize], key: &str, layout: &Layout) -> Result<()> {
        if order.len() != self.axes.len() {
            return Err(cerr(
                key,
                format!(
                    "has {} orders, the config has {} axes",
                    order.len(),
                    self.axes.len()
                ),
            ));
        }
        for (a, &o) in order.iter().enumerate() {
            let mut v: Vec<usize> = layout
                .cells
                .iter()
                .map(|&(i, j)| if a == 0 { i } else { j })
                .collect();
            v.sort_unstable();
            v.dedup();
            if o + 1 > v.len() {
                return Err(cerr(
                    format!("{key}[{a}]"),
                    format!(
                        "order {o} on axis '{}' needs at least {} distinct bin centres, the unmasked cells have {}",
                        self.axes[a].name,
                        o + 1,
                        v.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Validates the config and returns its cell layout.
    pub fn layout(&self) -> Result<Layout> {
        if self.axes.is_empty() || self.axes.len() > 2 {
            return Err(cerr(
                "axes",
                format!("one or two axes are supported, found {}", self.axes.len()),
            ));
        }
        for (a, ax) in self.axes.iter().enumerate() {
            let e = &ax.edges;
            if e.len() < 2 || e.iter().any(|v| !v.is_finite()) || e.windows(2).any(|w| w[1] <= w[0])
            {
                return Err(cerr(
                    format!("axes[{a}].edges"),
                    format!(
                        "axis '{}' needs at least two finite, increasing edges",
                        ax.name
                    ),
                ));
            }
        }
        let nx = self.axes[0].edges.len() - 1;
        let ny = self.axes.get(1).map_or(1, |a| a.edges.len() - 1);
        let centres: Vec<Vec<f64>> = self
            .axes
            .iter()
            .map(|a| a.edges.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect())
            .collect();
        let ranges: Vec<[f64; 2]> = match &self.ranges {
            None => self
                .axes
                .iter()
                .map(|a| [a.edges[0], a.edges[a.edges.len() - 1]])
                .collect(),
            Some(r) => {
                if r.len() != self.axes.len() {
                    return Err(cerr(
                        "ranges",
                        format!(
                            "has {} ranges, expected one per axis ({})",
                            r.len(),
                            self.axes.len()
                        ),
                    ));
                }
                for (a, [lo, hi]) in r.iter().enumerate() {
                    let c = &centres[a];
                    if lo >= hi || c[0] < *lo || c[c.len() - 1] > *hi {
                        return Err(cerr(
                            format!("ranges[{a}]"),
                            format!(
                                "[{lo}, {hi}] must satisfy lo < hi and contain every bin centre of axis '{}'",
                                self.axes[a].name
                            ),
                        ));
                    }
                }
                r.clone()
            }
        };
        let masked = self.check_cells(&self.masked, "masked")?;
        let blinded = self.check_cells(&self.blinded, "blinded")?;
        let mut bin_of = vec![None; nx * ny];
        let mut cells = Vec::new();
        for i in 0..nx {
            for j in 0..ny {
                if !masked.contains(&(i, j)) {
                    bin_of[i * ny + j] = Some(cells.len());
                    cells.push((i, j));
                }
            }
        }
        if cells.is_empty() {
            return Err(cerr("masked", "every cell is masked"));
        }
        let mut blind_bins = Vec::new();
        for (k, &(i, j)) in blinded.iter().enumerate() {
            match bin_of[i * ny + j] {
                Some(b) => {
                    if !blind_bins.contains(&b) {
                        blind_bins.push(b)
                    }
                }
                None => {
                    return Err(cerr(
                        format!("blinded[{k}]"),
                        format!("cell {:?} is masked", self.blinded[k]),
                    ))
                }
            }
        }
        blind_bins.sort_unstable();
        let layout = Layout {
            nx,
            ny,
            cells,
            bin_of,
            blinded: blind_bins,
            edges: self.axes.iter().map(|a| a.edges.clone()).collect(),
            centres,
            ranges,
        };
        self.check_grid(&self.data.fail, "data.fail", true)?;
        self.check_grid(&self.data.pass, "data.pass", true)?;
        let mut names = vec![self.qcd.name.clone()];
        for (k, s) in self.samples.iter().enumerate() {
            let key = format!("samples[{k}]");
            self.check_grid(&s.yields.fail, &format!("{key}.yields.fail"), false)?;
            self.check_grid(&s.yields.pass, &format!("{key}.yields.pass"), false)?;
            Self::check_normsys(&s.normsys, &format!("{key}.normsys"))?;
            if names.contains(&s.name) {
                return Err(cerr(
                    format!("{key}.name"),
                    format!("sample name '{}' is used twice", s.name),
                ));
            }
            names.push(s.name.clone());
        }
        if let Some(s) = &self.signal {
            self.check_grid(&s.yields.fail, "signal.yields.fail", false)?;
            self.check_grid(&s.yields.pass, "signal.yields.pass", false)?;
            Self::check_normsys(&s.normsys, "signal.normsys")?;
            if names.contains(&s.name) {
                return Err(cerr(
                    "signal.name",
                    format!("sample name '{}' is used twice", s.name),
                ));
            }
        }
        let tf = &self.qcd.tf;
        if Basis::parse(&tf.basis).is_none() {
            return Err(cerr(
                "qcd.tf.basis",
                format!(
                    "unknown basis '{}' (bernstein, polynomial, chebyshev)",
                    tf.basis
                ),
            ));
        }
        if tf.form != "linear" && tf.form != "exp" {
            return Err(cerr(
                "qcd.tf.form",
                format!("unknown form '{}' (linear, exp)", tf.form),
            ));
        }
        self.check_order(&tf.order, "qcd.tf.order", &layout)?;
        let k: usize = tf.order.iter().map(|o| o + 1).product();
        let unblinded = layout.n_bins() - layout.blinded.len();
        if k > unblinded {
            return Err(cerr(
                "qcd.tf.order",
                format!("{k} TF coefficients exceed the {unblinded} unblinded pass bins"),
            ));
        }
        match &self.qcd.tf_mc {
            None => {}
            Some(TfMc::Values(g)) => {
                let rows = self.check_grid(g, "qcd.tf_mc.values", true)?;
                for &(i, j) in &layout.cells {
                    if rows[i][j] <= 0.0 {
                        return Err(cerr(
                            format!("qcd.tf_mc.values[{i}][{j}]"),
                            "TF_MC must be > 0 in every unmasked cell",
                        ));
                    }
                }
            }
            Some(TfMc::Fit(m)) => {
                self.check_grid(&m.fail, "qcd.tf_mc.fit.fail", true)?;
                self.check_grid(&m.pass, "qcd.tf_mc.fit.pass", true)?;
                self.check_order(&m.order, "qcd.tf_mc.fit.order", &layout)?;
                if m.name == tf.name || m.name == self.qcd.fail_name {
                    return Err(cerr(
                        "qcd.tf_mc.fit.name",
                        format!("'{}' is already a parameter-set name", m.name),
                    ));
                }
            }
        }
        if tf.name == self.qcd.fail_name {
            return Err(cerr(
                "qcd.tf.name",
                format!("'{}' is also the fail-yield parameter set", tf.name),
            ));
        }
        Ok(layout)
    }

    /// The QCD reference fail yields `n0` per channel bin: fail data minus
    /// the other backgrounds (not the signal), at least 1.
    pub fn qcd_nominal(&self, layout: &Layout) -> Vec<f64> {
        let mut n0 = layout.flatten(&self.data.fail.rows());
        for s in &self.samples {
            for (a, b) in n0.iter_mut().zip(layout.flatten(&s.yields.fail.rows())) {
                *a -= b;
            }
        }
        n0.iter().map(|v| v.max(1.0)).collect()
    }

    /// A config for the pass/fail toy: its grid and observed `data`, the
    /// W/Z-like background with its normsys, the signal, a TF of `order`
    /// (Bernstein, linear) and the given blinded cells.
    pub fn from_toy(
        toy: &PassFailToy,
        expected: &ToyYields,
        data: &RegionYields,
        order: [usize; 2],
    ) -> TransferConfig {
        let g = |rows: &Vec<Vec<f64>>| Grid::TwoD(rows.clone());
        let r = |y: &RegionYields| Regions {
            fail: g(&y.fail),
            pass: g(&y.pass),
        };
        TransferConfig {
            axes: vec![
                Axis {
                    name: "msd".into(),
                    edges: toy.x_edges.clone(),
                },
                Axis {
                    name: "pt".into(),
                    edges: toy.y_edges.clone(),
                },
            ],
            ranges: None,
            data: r(data),
            samples: vec![SampleConfig {
                name: "wz".into(),
                yields: r(&expected.other),
                normsys: vec![NormSysConfig {
                    name: "wz_norm".into(),
                    lo: 1.0 - toy.other_norm_unc,
                    hi: 1.0 + toy.other_norm_unc,
                }],
            }],
            signal: Some(SignalConfig {
                name: "signal".into(),
                poi: "mu".into(),
                yields: r(&expected.signal),
                normsys: Vec::new(),
            }),
            qcd: QcdConfig {
                name: "qcd".into(),
                fail_yields: FailYields::Shapefactor,
                fail_name: "qcd_fail".into(),
                tf: TfConfig {
                    name: "tf".into(),
                    basis: "bernstein".into(),
                    order: order.to_vec(),
                    form: "linear".into(),
                },
                tf_mc: None,
            },
            blinded: Vec::new(),
            masked: Vec::new(),
        }
    }
}

/// Suggested TF inits for an overall pass/fail ratio `ratio` (a constant TF
/// of that value); `None` leaves the model's defaults.
fn tf_inits(basis: Basis, form: &str, k: usize, ratio: f64) -> Option<Vec<f64>> {
    if !(ratio > 0.0 && ratio.is_finite()) {
        return None;
    }
    let level = if form == "exp" { ratio.ln() } else { ratio };
    Some(match (basis, form) {
        (Basis::Bernstein, _) => vec![level; k],
        _ => {
            let mut v = vec![0.0; k];
            v[0] = level;
            v
        }
    })
}

fn normsys_json(list: &[NormSysConfig]) -> Vec<Value> {
    list.iter()
        .map(|n| json!({"name": n.name, "type": "normsys", "data": {"lo": n.lo, "hi": n.hi}}))
        .collect()
}

/// Builds the workspace of the config (running the TF_MC fit first when the
/// config asks for a two-step TF_MC).
pub fn build(cfg: &TransferConfig) -> Result<Built> {
    let layout = cfg.layout()?;
    let mc_fit = match &cfg.qcd.tf_mc {
        Some(TfMc::Fit(m)) => Some(fit_tf_mc(cfg, m, &layout)?),
        _ => None,
    };
    let workspace = workspace_with(cfg, &layout, mc_fit.as_ref())?;
    Ok(Built {
        workspace,
        layout,
        mc_fit,
    })
}

/// The workspace of the config (see [`build`]).
pub fn build_workspace(cfg: &TransferConfig) -> Result<Workspace> {
    Ok(build(cfg)?.workspace)
}

/// The workspace for a given layout and (optional) TF_MC fit result.
pub(crate) fn workspace_with(
    cfg: &TransferConfig,
    layout: &Layout,
    mc_fit: Option<&McFitResult>,
) -> Result<Workspace> {
    let q = &cfg.qcd;
    let n0 = cfg.qcd_nominal(layout);
    let coords: Vec<Vec<f64>> = (0..layout.n_bins()).map(|b| layout.coords(b)).collect();
    let coordinates = json!({
        "axes": cfg.axes.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        "bins": coords,
        "ranges": layout.ranges,
    });
    let fail_mod = match q.fail_yields {
        FailYields::Shapefactor => {
            json!({"name": q.fail_name, "type": "shapefactor", "data": null})
        }
        FailYields::Logshapefactor => {
            json!({"name": q.fail_name, "type": "logshapefactor", "data": n0})
        }
    };
    let basis = Basis::parse(&q.tf.basis).ok_or_else(|| cerr("qcd.tf.basis", "unknown basis"))?;
    let mut tf_data = json!({"basis": basis.as_str(), "order": q.tf.order, "form": q.tf.form});
    let mc_values = match &q.tf_mc {
        Some(TfMc::Values(g)) => Some(layout.flatten(&g.rows())),
        _ => None,
    };
    if let Some(mc) = &mc_values {
        tf_data["mc"] = json!(mc);
    }
    let mut pass_qcd_mods = vec![fail_mod.clone()];
    if let (Some(TfMc::Fit(m)), Some(r)) = (&q.tf_mc, mc_fit) {
        pass_qcd_mods.push(json!({"name": m.name, "type": "transferfactor", "data": {
            "basis": "bernstein", "order": m.order, "form": "linear",
            "constraint": {"mean": r.mean, "cov": r.cov}}}));
    }
    pass_qcd_mods.push(json!({"name": q.tf.name, "type": "transferfactor", "data": tf_data}));

    let mut fail_samples = vec![json!({"name": q.name, "data": n0, "modifiers": [fail_mod]})];
    let mut pass_samples = vec![json!({"name": q.name, "data": n0, "modifiers": pass_qcd_mods})];
    let mut other_pass = vec![0.0; layout.n_bins()];
    if let Some(s) = &cfg.signal {
        let mut mods = vec![json!({"name": s.poi, "type": "normfactor", "data": null})];
        mods.extend(normsys_json(&s.normsys));
        fail_samples.push(json!({"name": s.name, "data": layout.flatten(&s.yields.fail.rows()), "modifiers": mods}));
        pass_samples.push(json!({"name": s.name, "data": layout.flatten(&s.yields.pass.rows()), "modifiers": mods}));
    }
    for s in &cfg.samples {
        let mods = normsys_json(&s.normsys);
        let pass = layout.flatten(&s.yields.pass.rows());
        for (a, b) in other_pass.iter_mut().zip(&pass) {
            *a += b;
        }
        fail_samples.push(json!({"name": s.name, "data": layout.flatten(&s.yields.fail.rows()), "modifiers": mods}));
        pass_samples.push(json!({"name": s.name, "data": pass, "modifiers": mods}));
    }
    let obs_fail = layout.flatten(&cfg.data.fail.rows());
    let obs_pass = layout.flatten(&cfg.data.pass.rows());

    // Inits: a constant TF equal to the overall (pass − other) / n0 ratio,
    // divided by the TF_MC where there is one.
    let unblind: Vec<usize> = (0..layout.n_bins())
        .filter(|b| !layout.blinded.contains(b))
        .collect();
    let num: f64 = unblind
        .iter()
        .map(|&b| (obs_pass[b] - other_pass[b]).max(0.0))
        .sum();
    let den: f64 = unblind
        .iter()
        .map(|&b| {
            let mc = match (&mc_values, mc_fit) {
                (Some(v), _) => v[b],
                (None, Some(r)) => r.tf_at_bins[b],
                _ => 1.0,
            };
            n0[b] * mc
        })
        .sum();
    let mut parameters = Vec::new();
    let k: usize = q.tf.order.iter().map(|o| o + 1).product();
    if let Some(inits) = tf_inits(basis, &q.tf.form, k, num / den) {
        let bounds = if basis == Basis::Bernstein && q.tf.form == "linear" {
            (0.0, 100.0)
        } else {
            (-100.0, 100.0)
        };
        if inits.iter().all(|v| *v > bounds.0 && *v < bounds.1) {
            parameters.push(json!({"name": q.tf.name, "inits": inits}));
        }
    }
    let fail_ch = json!({"name": FAIL, "coordinates": coordinates, "samples": fail_samples});
    let mut pass_ch = json!({"name": PASS, "coordinates": coordinates, "samples": pass_samples});
    if !layout.blinded.is_empty() {
        pass_ch["blinded"] = json!(layout.blinded);
    }
    let poi = cfg.signal.as_ref().map_or(String::new(), |s| s.poi.clone());
    let ws = json!({
        "channels": [fail_ch, pass_ch],
        "observations": [{"name": FAIL, "data": obs_fail}, {"name": PASS, "data": obs_pass}],
        "measurements": [{"name": "transfer", "config": {"poi": poi, "parameters": parameters}}],
        "version": "1.0.0"
    });
    Workspace::from_value(&ws)
}
