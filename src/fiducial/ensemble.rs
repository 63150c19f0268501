//! Ensembles of gradient-optimised selections: every member starts from a
//! random box (or union of boxes), climbs the expected discovery
//! significance Z0 through the profile fits (`grad::LossKind::Z0` on the
//! counting template of the selected yields) with Adam, and is then
//! evaluated with hard cuts on held-out events. Members that end in the same
//! optimum are clustered by the overlap of the held-out events they select,
//! and the distinct optima are combined into a union — the "committee".

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::selection::{CutBox, Scaler, Selection, SoftUnion};
use crate::grad::{Loss, LossKind, YieldFloor};
use crate::toys::{Events, ToyModel};
use crate::train::adam::{Adam, AdamParams};
use crate::{Error, Result};

/// Training and held-out events of the signal and the background, with
/// their expected yields.
#[derive(Debug, Clone)]
pub struct Data {
    /// Training events, [signal, background].
    pub train: [Events; 2],
    /// Held-out events, [signal, background].
    pub test: [Events; 2],
    /// Expected events, [signal, background].
    pub yields: [f64; 2],
    /// The unit-coordinate map of the observables.
    pub scaler: Scaler,
    u_train: [Tensor; 2],
}

impl Data {
    /// Draws `n_train`/`n_test` events of processes 0 (signal) and 1
    /// (background) of `toy` from one seed (test events from an independent
    /// stream).
    pub fn generate(
        toy: &dyn ToyModel,
        n_train: [usize; 2],
        n_test: [usize; 2],
        seed: u64,
    ) -> Result<Self> {
        for (what, n) in [("n_train", n_train), ("n_test", n_test)] {
            if n.contains(&0) {
                return Err(Error::InvalidInput(format!(
                    "fiducial data: {what} must be positive for signal and background, got {n:?}"
                )));
            }
        }
        let procs = toy.processes();
        if procs.len() < 2 {
            return Err(Error::InvalidInput(format!(
                "fiducial data: toy '{}' needs a signal and a background process",
                toy.name()
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let train = [
            toy.sample(0, n_train[0], &mut rng)?,
            toy.sample(1, n_train[1], &mut rng)?,
        ];
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let test = [
            toy.sample(0, n_test[0], &mut rng)?,
            toy.sample(1, n_test[1], &mut rng)?,
        ];
        let scaler = Scaler::new(&toy.feature_range())?;
        let dev = Device::Cpu;
        let u_train = [
            scaler.unit_tensor(&train[0], &dev)?,
            scaler.unit_tensor(&train[1], &dev)?,
        ];
        Ok(Self {
            train,
            test,
            yields: [procs[0].yield_scale, procs[1].yield_scale],
            scaler,
            u_train,
        })
    }

    /// Expected [signal, background] yields of a hard selection on the
    /// training (`test = false`) or held-out events.
    pub fn hard_yields(&self, sel: &Selection, test: bool) -> [f64; 2] {
        self.hard_yields_on(sel, if test { &self.test } else { &self.train })
    }

    /// Expected [signal, background] yields of a hard selection on the
    /// given [signal, background] events (each event weighs yield/n).
    pub fn hard_yields_on(&self, sel: &Selection, ev: &[Events; 2]) -> [f64; 2] {
        [0, 1].map(|p| sel.count(&ev[p]) as f64 * self.yields[p] / ev[p].len() as f64)
    }
}

/// The objective: Z0 of the one-bin counting template (the toy's analysis),
/// through the fits.
#[derive(Debug, Clone)]
pub struct Objective {
    loss: Loss,
}

impl Objective {
    /// Z0 on `toy`'s one-bin analysis with a yield floor of 1e-3 events.
    pub fn new(toy: &dyn ToyModel) -> Result<Self> {
        let template = toy.template(1, YieldFloor::Add(1e-3))?;
        if template.input_lens() != [1, 1] {
            return Err(Error::InvalidInput(format!(
                "fiducial objective: toy '{}' must supply one signal and one background yield",
                toy.name()
            )));
        }
        Ok(Self {
            loss: Loss::new(template, LossKind::Z0),
        })
    }

    /// Z0 of expected [signal, background] yields.
    pub fn z(&self, yields: [f64; 2]) -> Result<f64> {
        Ok(self.loss.evaluate(&yields, false)?.value)
    }

    /// Z0 of the soft selection on the training events, on the tape.
    pub fn soft(&self, sel: &SoftUnion, data: &Data) -> Result<Tensor> {
        let y = [0, 1]
            .map(|p| -> Result<Tensor> {
                let w = sel.weights(&data.u_train[p])?;
                Ok((w.sum_all()? * (data.yields[p] / data.train[p].len() as f64))?)
            })
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        self.loss.forward(&[&y[0], &y[1]])
    }
}

/// How one member is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate (unit coordinates per step).
    pub lr: f64,
    /// Sigmoid slope in unit coordinates (transition width = range/slope).
    pub slope: f64,
}

/// One optimised selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Index in the ensemble.
    pub index: usize,
    /// Starting boxes (physical units).
    pub start: Vec<CutBox>,
    /// Final boxes (physical units).
    pub boxes: Vec<CutBox>,
    /// Soft Z0 on the training events at the start and at the end.
    pub soft_z: (f64, f64),
    /// Hard-cut Z0 on the training events.
    pub hard_z_train: f64,
    /// Hard-cut Z0 on the held-out events.
    pub hard_z_test: f64,
    /// Hard-cut [signal, background] on the held-out events.
    pub test_yields: [f64; 2],
    /// Z0 of the hard selection's exact expected yields, where the toy's
    /// densities give them (filled in by [`super::run::run`]).
    pub exact_z: Option<f64>,
    /// Why the member stopped early (a fit that failed), if it did.
    pub failure: Option<String>,
}

/// A random starting union of `n_boxes` boxes: centres uniform in the
/// central 80 % of each range, half-widths 5–30 % of it.
pub fn random_start(scaler: &Scaler, n_boxes: usize, rng: &mut StdRng) -> Result<Vec<CutBox>> {
    let centre = Uniform::new(0.1, 0.9).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let half = Uniform::new(0.05, 0.3).map_err(|e| Error::InvalidInput(e.to_string()))?;
    Ok((0..n_boxes)
        .map(|_| {
            let (mut lo, mut hi) = (Vec::new(), Vec::new());
            for j in 0..scaler.dim() {
                let (c, h): (f64, f64) = (centre.sample(rng), half.sample(rng));
                lo.push(scaler.to_physical(j, c - h));
                hi.push(scaler.to_physical(j, c + h));
            }
            CutBox { lo, hi }
        })
        .collect())
}

/// Optimises one selection from `start`.
pub fn optimise(
    index: usize,
    start: &[CutBox],
    data: &Data,
    objective: &Objective,
    schedule: &Schedule,
) -> Result<Member> {
    let sel = SoftUnion::new(start, &data.scaler, schedule.slope, &Device::Cpu)?;
    let [lo, hi] = sel.vars();
    let mut adam = Adam::new(
        vec![(lo, schedule.lr), (hi, schedule.lr)],
        AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    )?;
    let mut first = None;
    let mut last = f64::NAN;
    let mut failure = None;
    for step in 0..=schedule.steps {
        let z = match objective.soft(&sel, data) {
            Ok(z) => z,
            Err(e) => {
                failure = Some(format!("step {step}: {e}"));
                break;
            }
        };
        last = z.to_scalar::<f64>()?;
        first.get_or_insert(last);
        if step == schedule.steps {
            break;
        }
        adam.step(&z.neg()?.backward()?)?;
    }
    let hard = sel.hard()?;
    let test_yields = data.hard_yields(&hard, true);
    Ok(Member {
        index,
        start: start.to_vec(),
        boxes: hard.boxes.clone(),
        soft_z: (first.unwrap_or(f64::NAN), last),
        hard_z_train: objective.z(data.hard_yields(&hard, false))?,
        hard_z_test: objective.z(test_yields)?,
        test_yields,
        exact_z: None,
        failure,
    })
}

/// Optimises `n` members from seeded random starts of `n_boxes` boxes each,
/// in parallel (`bar` advances by one per finished member).
pub fn run_ensemble(
    n: usize,
    n_boxes: usize,
    seed: u64,
    data: &Data,
    objective: &Objective,
    schedule: &Schedule,
    bar: &ProgressBar,
) -> Result<Vec<Member>> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng =
                StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            let start = random_start(&data.scaler, n_boxes, &mut rng)?;
            let m = optimise(i, &start, data, objective, schedule);
            bar.inc(1);
            m
        })
        .collect()
}

/// Members that select (nearly) the same held-out events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Indices of the members.
    pub members: Vec<usize>,
    /// The member with the highest training Z0 (the cluster's optimum).
    pub representative: usize,
    /// Hard-cut held-out Z0 of the representative.
    pub hard_z_test: f64,
    /// Fraction of the representative's selected held-out signal in each
    /// named region.
    pub region_fractions: Vec<(String, f64)>,
}

/// Jaccard similarity of two masks.
fn jaccard(a: &[bool], b: &[bool]) -> f64 {
    let (mut both, mut any) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        both += usize::from(*x && *y);
        any += usize::from(*x || *y);
    }
    if any == 0 {
        1.0
    } else {
        both as f64 / any as f64
    }
}

/// Clusters members by the held-out events (signal and background) their
/// hard selections keep: in order of decreasing training Z0, a member joins
/// the first cluster whose representative's selection overlaps its own with
/// Jaccard similarity ≥ `min_overlap`, otherwise it founds a cluster.
/// Deterministic; `regions` name parts of the observable space (e.g. the
/// toy's favoured quadrants) whose share of the selected signal is reported.
pub fn cluster(
    members: &[Member],
    data: &Data,
    min_overlap: f64,
    regions: &[(String, CutBox)],
) -> Result<Vec<Cluster>> {
    if !(min_overlap > 0.0 && min_overlap <= 1.0) {
        return Err(Error::InvalidInput(format!(
            "fiducial clustering: min_overlap must lie in (0, 1], got {min_overlap}"
        )));
    }
    let masks: Vec<Vec<bool>> = members
        .iter()
        .map(|m| {
            let sel = Selection {
                boxes: m.boxes.clone(),
            };
            let mut v = sel.mask(&data.test[0]);
            v.extend(sel.mask(&data.test[1]));
            v
        })
        .collect();
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|&a, &b| members[b].hard_z_train.total_cmp(&members[a].hard_z_train));
    let mut clusters: Vec<Cluster> = Vec::new();
    for i in order {
        match clusters
            .iter_mut()
            .find(|c| jaccard(&masks[c.representative], &masks[i]) >= min_overlap)
        {
            Some(c) => c.members.push(i),
            None => {
                let sig = &data.test[0];
                let n_sig = sig.len();
                let kept: Vec<&[f64]> = sig
                    .features
                    .chunks(sig.n_features)
                    .zip(&masks[i][..n_sig])
                    .filter_map(|(x, &m)| m.then_some(x))
                    .collect();
                let region_fractions = regions
                    .iter()
                    .map(|(name, r)| {
                        let f = if kept.is_empty() {
                            0.0
                        } else {
                            kept.iter().filter(|x| r.contains(x)).count() as f64 / kept.len() as f64
                        };
                        (name.clone(), f)
                    })
                    .collect();
                clusters.push(Cluster {
                    members: vec![i],
                    representative: i,
                    hard_z_test: members[i].hard_z_test,
                    region_fractions,
                });
            }
        }
    }
    Ok(clusters)
}

/// At most this many clusters (the best by training Z0) enter the
/// committee's exhaustive search over their unions (2^12 hard evaluations).
pub const COMMITTEE_MAX_CLUSTERS: usize = 12;

/// The committee: among all unions of the clusters' optima (every subset of
/// the best [`COMMITTEE_MAX_CLUSTERS`] clusters), the one with the highest
/// hard-cut training Z0, then optimised jointly with `schedule`. Exhaustive
/// rather than greedy because a single wide box that straddles two optima
/// can beat each narrow optimum alone and still lose to their union.
/// Returns the fine-tuned union (index = `usize::MAX`) and the clusters it
/// was built from.
pub fn committee(
    clusters: &[Cluster],
    members: &[Member],
    data: &Data,
    objective: &Objective,
    schedule: &Schedule,
) -> Result<(Member, Vec<usize>)> {
    let mut order: Vec<usize> = (0..clusters.len()).collect();
    order.sort_by(|&a, &b| {
        members[clusters[b].representative]
            .hard_z_train
            .total_cmp(&members[clusters[a].representative].hard_z_train)
    });
    order.truncate(COMMITTEE_MAX_CLUSTERS);
    if order.is_empty() {
        return Err(Error::InvalidInput(
            "fiducial committee: no clusters".into(),
        ));
    }
    let mut best: Option<(f64, Vec<usize>)> = None;
    for subset in 1usize..(1 << order.len()) {
        let used: Vec<usize> = (0..order.len())
            .filter(|&k| subset >> k & 1 == 1)
            .map(|k| order[k])
            .collect();
        let boxes: Vec<CutBox> = used
            .iter()
            .flat_map(|&c| members[clusters[c].representative].boxes.iter().cloned())
            .collect();
        let z = objective.z(data.hard_yields(&Selection { boxes }, false))?;
        // ties (and near-ties) go to the smaller union
        if best
            .as_ref()
            .is_none_or(|(bz, bu)| z > *bz * (1.0 + 1e-9) || (z >= *bz && used.len() < bu.len()))
        {
            best = Some((z, used));
        }
    }
    let (_, used) =
        best.ok_or_else(|| Error::InvalidInput("fiducial committee: no union".into()))?;
    let boxes: Vec<CutBox> = used
        .iter()
        .flat_map(|&c| members[clusters[c].representative].boxes.iter().cloned())
        .collect();
    Ok((
        optimise(usize::MAX, &boxes, data, objective, schedule)?,
        used,
    ))
}
