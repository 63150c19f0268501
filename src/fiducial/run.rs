//! The fiducial-cuts study end to end: events → ensemble of optimised boxes
//! → clusters of distinct optima → committee union → hard-cut held-out
//! evaluation against the grid-search single box.

use std::fmt::Write as _;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::config::FiducialConfig;
use super::ensemble::{
    cluster, committee, run_ensemble, Cluster, Data, Member, Objective, Schedule,
};
use super::grid::{best_box, GridResult};
use super::selection::{CutBox, Selection};
use crate::toys::Fiducial;
use crate::{Error, Result};

/// A region counts as found by a cluster when at least this share of the
/// cluster's selected held-out signal lies in it …
pub const REGION_SHARE: f64 = 0.6;
/// … and the cluster's held-out Z0 is at least this fraction of the best
/// cluster's (so that a collapsed box in the right quadrant does not count).
pub const REGION_MIN_Z: f64 = 0.5;

/// A grid-search baseline and its held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridBaseline {
    /// The search.
    pub search: GridResult,
    /// Hard-cut Z0 of its best box on the held-out events.
    pub hard_z_test: f64,
    /// Held-out [signal, background] of its best box.
    pub test_yields: [f64; 2],
    /// Z0 of its best box's exact expected yields.
    pub exact_z: f64,
}

/// The toy's favoured regions as named boxes (its φ quadrant, any m and Δy),
/// for [`super::ensemble::cluster`].
pub fn region_boxes(toy: &Fiducial) -> Vec<(String, CutBox)> {
    toy.regions()
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                CutBox {
                    lo: vec![f64::NEG_INFINITY, r.phi.0, f64::NEG_INFINITY],
                    hi: vec![f64::INFINITY, r.phi.1, f64::INFINITY],
                },
            )
        })
        .collect()
}

/// Exact expected [signal, background] yields of a union of boxes under the
/// toy's densities: inclusion–exclusion over the intersections of the boxes
/// (each a box, whose probability factorises).
pub fn exact_yields(toy: &Fiducial, sel: &Selection) -> Result<[f64; 2]> {
    let k = sel.boxes.len();
    if k == 0 || k > 16 {
        return Err(Error::InvalidInput(format!(
            "exact yields: need 1 … 16 boxes, got {k}"
        )));
    }
    let mut p = [0.0; 2];
    for subset in 1usize..(1 << k) {
        let mut lo = [f64::NEG_INFINITY; 3];
        let mut hi = [f64::INFINITY; 3];
        for (i, b) in sel.boxes.iter().enumerate() {
            if subset >> i & 1 == 1 {
                for j in 0..3 {
                    lo[j] = lo[j].max(b.lo[j]);
                    hi[j] = hi[j].min(b.hi[j]);
                }
            }
        }
        let sign = if subset.count_ones() % 2 == 1 {
            1.0
        } else {
            -1.0
        };
        for (pi, signal) in p.iter_mut().zip([true, false]) {
            *pi += sign * toy.box_probability(signal, &lo, &hi);
        }
    }
    Ok([toy.s * p[0].max(0.0), toy.b * p[1].max(0.0)])
}

/// Everything a run produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiducialReport {
    /// The configuration.
    pub config: FiducialConfig,
    /// Every member.
    pub members: Vec<Member>,
    /// Distinct optima.
    pub clusters: Vec<Cluster>,
    /// The committee union after joint fine-tuning.
    pub committee: Member,
    /// Clusters the committee was built from.
    pub committee_clusters: Vec<usize>,
    /// Names of the toy's favoured regions and the clusters that found each.
    pub regions_found: Vec<(String, Vec<usize>)>,
    /// Best single box on the grid, chosen on training events.
    pub grid_train: GridBaseline,
    /// Best single box on the grid, chosen on the held-out events themselves
    /// (an optimistic baseline: it has seen the events it is scored on).
    pub grid_oracle: GridBaseline,
    /// Wall time of the ensemble, the committee and the grid searches (s).
    pub seconds: [f64; 3],
}

/// Runs the study (`bar` counts the ensemble's members, then the
/// committee).
pub fn run(cfg: &FiducialConfig, bar: &ProgressBar) -> Result<FiducialReport> {
    cfg.validate()?;
    let toy = cfg.toy();
    let data = Data::generate(&toy, cfg.data.n_train, cfg.data.n_test, cfg.seed)?;
    let objective = Objective::new(&toy)?;
    let e = &cfg.ensemble;
    let schedule = Schedule {
        steps: e.steps,
        lr: e.lr,
        slope: e.slope,
    };
    let t0 = Instant::now();
    let exact_z = |boxes: &[CutBox]| -> Result<f64> {
        objective.z(exact_yields(
            &toy,
            &Selection {
                boxes: boxes.to_vec(),
            },
        )?)
    };
    let mut members = run_ensemble(
        e.members, e.boxes, cfg.seed, &data, &objective, &schedule, bar,
    )?;
    for m in &mut members {
        m.exact_z = Some(exact_z(&m.boxes)?);
    }
    let regions = region_boxes(&toy);
    let clusters = cluster(&members, &data, e.min_overlap, &regions)?;
    let t_ens = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (mut committee, committee_clusters) = committee(
        &clusters,
        &members,
        &data,
        &objective,
        &Schedule {
            steps: e.committee_steps,
            ..schedule
        },
    )?;
    committee.exact_z = Some(exact_z(&committee.boxes)?);
    bar.inc(1);
    let t_com = t1.elapsed().as_secs_f64();
    let best_z = clusters
        .iter()
        .map(|c| c.hard_z_test)
        .fold(f64::NEG_INFINITY, f64::max);
    let regions_found = regions
        .iter()
        .enumerate()
        .map(|(k, (name, _))| {
            let found = clusters
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.region_fractions[k].1 >= REGION_SHARE
                        && c.hard_z_test >= REGION_MIN_Z * best_z
                })
                .map(|(i, _)| i)
                .collect();
            (name.clone(), found)
        })
        .collect();
    let t2 = Instant::now();
    let baseline = |on_test: bool| -> Result<GridBaseline> {
        let search = best_box(
            &data,
            &objective,
            cfg.grid.cells,
            toy.bkg_norm_unc,
            cfg.grid.refine,
            on_test,
        )?;
        let sel = Selection {
            boxes: vec![search.best.clone()],
        };
        let test_yields = data.hard_yields(&sel, true);
        Ok(GridBaseline {
            exact_z: exact_z(&sel.boxes)?,
            hard_z_test: objective.z(test_yields)?,
            test_yields,
            search,
        })
    };
    let grid_train = baseline(false)?;
    let grid_oracle = baseline(true)?;
    let t_grid = t2.elapsed().as_secs_f64();
    Ok(FiducialReport {
        config: cfg.clone(),
        members,
        clusters,
        committee,
        committee_clusters,
        regions_found,
        grid_train,
        grid_oracle,
        seconds: [t_ens, t_com, t_grid],
    })
}

fn fmt_box(b: &CutBox, names: &[&str]) -> String {
    let mut s = String::new();
    for (j, n) in names.iter().enumerate() {
        let (lo, hi) = (b.lo[j], b.hi[j]);
        let part = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => format!("{lo:.2} ≤ {n} < {hi:.2}"),
            (true, false) => format!("{n} ≥ {lo:.2}"),
            (false, true) => format!("{n} < {hi:.2}"),
            (false, false) => continue,
        };
        if !s.is_empty() {
            s.push_str(", ");
        }
        s.push_str(&part);
    }
    s
}

impl FiducialReport {
    /// The summary tables (markdown).
    pub fn to_markdown(&self, names: &[&str]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "ensemble: {} members of {} box(es), {} clusters (Jaccard ≥ {})\n",
            self.members.len(),
            self.config.ensemble.boxes,
            self.clusters.len(),
            self.config.ensemble.min_overlap
        );
        let _ = writeln!(
            s,
            "| cluster | members | Z0 train (hard) | Z0 held-out (hard) | Z0 exact | held-out s / b | region shares | box |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for (i, c) in self.clusters.iter().enumerate() {
            let m = &self.members[c.representative];
            let shares: Vec<String> = c
                .region_fractions
                .iter()
                .map(|(n, f)| format!("{}: {f:.2}", n.split(' ').next().unwrap_or(n)))
                .collect();
            let boxes: Vec<String> = m.boxes.iter().map(|b| fmt_box(b, names)).collect();
            let _ = writeln!(
                s,
                "| {i} | {} | {:.3} | {:.3} | {:.3} | {:.1} / {:.1} | {} | {} |",
                c.members.len(),
                m.hard_z_train,
                m.hard_z_test,
                m.exact_z.unwrap_or(f64::NAN),
                m.test_yields[0],
                m.test_yields[1],
                shares.join(", "),
                boxes.join(" ∪ ")
            );
        }
        let _ = writeln!(s);
        for (name, found) in &self.regions_found {
            let _ = writeln!(s, "region {name}: found by clusters {found:?}");
        }
        let _ = writeln!(
            s,
            "\n| selection | Z0 train | Z0 held-out | Z0 exact | held-out s / b |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        let c = &self.committee;
        let _ = writeln!(
            s,
            "| committee union of clusters {:?} (fine-tuned) | {:.3} | {:.3} | {:.3} | {:.1} / {:.1} |",
            self.committee_clusters,
            c.hard_z_train,
            c.hard_z_test,
            c.exact_z.unwrap_or(f64::NAN),
            c.test_yields[0],
            c.test_yields[1]
        );
        for (what, g) in [
            (
                "grid best single box (chosen on training events)",
                &self.grid_train,
            ),
            (
                "grid best single box (chosen on the held-out events)",
                &self.grid_oracle,
            ),
        ] {
            let _ = writeln!(
                s,
                "| {what} | {} | {:.3} | {:.3} | {:.1} / {:.1} |",
                if std::ptr::eq(g, &self.grid_train) {
                    format!("{:.3}", g.search.z_chosen_on)
                } else {
                    "—".into()
                },
                g.hard_z_test,
                g.exact_z,
                g.test_yields[0],
                g.test_yields[1]
            );
        }
        let _ = writeln!(s, "\ncommittee boxes:");
        for b in &c.boxes {
            let _ = writeln!(s, "  {}", fmt_box(b, names));
        }
        let _ = writeln!(
            s,
            "grid boxes: train-chosen {}; held-out-chosen {}",
            fmt_box(&self.grid_train.search.best, names),
            fmt_box(&self.grid_oracle.search.best, names)
        );
        let _ = writeln!(
            s,
            "time: ensemble {:.1} s, committee {:.1} s, grid searches {:.1} s",
            self.seconds[0], self.seconds[1], self.seconds[2]
        );
        s
    }
}
