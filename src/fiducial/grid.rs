//! The baseline a physicist would run: the best single box on a grid.
//!
//! Each observable's range is cut into `cells` equal cells (the outermost
//! edges stand for "no cut", so events outside the range are kept by boxes
//! that reach the range's end); the events are histogrammed once into the
//! d-dimensional cells and a summed-area table gives the yields of every
//! box aligned to the cells in O(2^d). Every one of the C(cells + 1, 2)^d
//! boxes is ranked by Cowan's closed-form Asimov significance with a relative
//! background uncertainty (Cowan et al., the "Z_A with σ_b" formula), and the
//! `refine` best are re-evaluated with the exact objective (Z0 through the
//! profile fits), which picks the winner. The closed form and the exact Z0
//! describe the same counting experiment (Gaussian vs log-normal background
//! constraint) and rank boxes alike; `refine` is large enough that the exact
//! winner is among them (checked: the exact rank-1 box sits far inside the
//! closed-form top `refine`, see `GridResult::winner_prefilter_rank`).

use serde::{Deserialize, Serialize};

use super::ensemble::{Data, Objective};
use super::selection::{CutBox, Selection};
use crate::toys::Events;
use crate::{Error, Result};

/// Result of a grid search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridResult {
    /// Cells per observable.
    pub cells: usize,
    /// Boxes scanned.
    pub boxes_scanned: usize,
    /// The best box (by exact Z0 on the events it was chosen on).
    pub best: CutBox,
    /// Exact Z0 of the best box on the events it was chosen on.
    pub z_chosen_on: f64,
    /// Rank of the winner in the closed-form prefilter (0 = first).
    pub winner_prefilter_rank: usize,
}

/// Cowan's Asimov significance of s over b with an absolute background
/// uncertainty σ_b (→ the no-uncertainty formula as σ_b → 0).
pub fn cowan_z(s: f64, b: f64, sigma_b: f64) -> f64 {
    if s <= 0.0 || b <= 0.0 {
        return 0.0;
    }
    let v = sigma_b * sigma_b;
    let q = if v <= 0.0 {
        2.0 * ((s + b) * (1.0 + s / b).ln() - s)
    } else {
        // ln_1p keeps both terms accurate as σ_b → 0 (b²/σ_b² · ln(1 + O(σ_b²)))
        let first = (s / b).ln_1p() + (v / b).ln_1p() - ((s + b) * v / (b * b)).ln_1p();
        2.0 * ((s + b) * first - b * b / v * (v * s / (b * (b + v))).ln_1p())
    };
    q.max(0.0).sqrt()
}

/// Weighted counts of `ev` in the cells of the unit cube (out-of-range
/// values go to the first/last cell).
fn histogram(data: &Data, ev: &Events, cells: usize, weight: f64) -> Vec<f64> {
    let d = data.scaler.dim();
    let mut h = vec![0.0; cells.pow(d as u32)];
    for x in ev.features.chunks(d) {
        let mut idx = 0;
        for (j, &v) in x.iter().enumerate() {
            let u = data.scaler.to_unit(j, v);
            let c = ((u * cells as f64).floor().max(0.0) as usize).min(cells - 1);
            idx = idx * cells + c;
        }
        h[idx] += weight;
    }
    h
}

/// Inclusive prefix sums over every axis of a `cells^d` array: entry at
/// (i_1 … i_d) of the result (size (cells + 1)^d, leading zero planes) is
/// the sum over cells with index < i_j on every axis.
fn summed_area(h: &[f64], cells: usize, d: usize) -> Vec<f64> {
    let n = cells + 1;
    let mut s = vec![0.0; n.pow(d as u32)];
    // copy into the shifted array
    for (flat, &v) in h.iter().enumerate() {
        let mut rem = flat;
        let mut idx = 0;
        let mut stride = 1;
        for _ in 0..d {
            idx += (rem % cells + 1) * stride;
            rem /= cells;
            stride *= n;
        }
        s[idx] = v;
    }
    // cumulative sums along each axis
    let mut stride = 1;
    for _ in 0..d {
        for flat in 0..s.len() {
            if (flat / stride) % n != 0 {
                s[flat] += s[flat - stride];
            }
        }
        stride *= n;
    }
    s
}

/// Sum of the cells in [lo_j, hi_j) on every axis (edge indices).
fn box_sum(s: &[f64], n: usize, lo: &[usize], hi: &[usize]) -> f64 {
    let d = lo.len();
    let mut total = 0.0;
    for corner in 0..(1usize << d) {
        let mut idx = 0;
        let mut stride = 1;
        let mut sign = 1.0;
        // axis 0 is the slowest in `histogram`, i.e. the largest stride
        for j in (0..d).rev() {
            let e = if corner >> j & 1 == 1 {
                sign = -sign;
                lo[j]
            } else {
                hi[j]
            };
            idx += e * stride;
            stride *= n;
        }
        total += sign * s[idx];
    }
    total
}

/// The best single box on a `cells`-grid, chosen on the training
/// (`on_test = false`) or held-out events, ranked by [`cowan_z`] with
/// σ_b = `rel_bkg_unc`·b and refined with the exact objective for the best
/// `refine` boxes.
pub fn best_box(
    data: &Data,
    objective: &Objective,
    cells: usize,
    rel_bkg_unc: f64,
    refine: usize,
    on_test: bool,
) -> Result<GridResult> {
    let d = data.scaler.dim();
    let pairs = cells * (cells + 1) / 2;
    let n_boxes = (pairs as f64).powi(d as i32);
    if cells < 2 || n_boxes > 5e8 {
        return Err(Error::InvalidInput(format!(
            "fiducial grid: {cells} cells per observable over {d} observables gives {n_boxes:.3e} \
             boxes; use 2 … {} cells",
            ((2.0 * 5e8f64.powf(1.0 / d as f64)).sqrt()) as usize
        )));
    }
    if refine == 0 || rel_bkg_unc.is_nan() || rel_bkg_unc < 0.0 {
        return Err(Error::InvalidInput(
            "fiducial grid: refine must be ≥ 1 and rel_bkg_unc ≥ 0".into(),
        ));
    }
    let ev = if on_test { &data.test } else { &data.train };
    let hs = [0, 1].map(|p| histogram(data, &ev[p], cells, data.yields[p] / ev[p].len() as f64));
    let [ss, sb] = hs.map(|h| summed_area(&h, cells, d));
    let n = cells + 1;
    let edge_pairs: Vec<(usize, usize)> = (0..cells)
        .flat_map(|a| (a + 1..=cells).map(move |b| (a, b)))
        .collect();
    // keep the `refine` best by the closed form (a small sorted buffer)
    let mut top: Vec<(f64, Vec<usize>, Vec<usize>)> = Vec::with_capacity(refine + 1);
    let total = edge_pairs.len().pow(d as u32);
    let (mut lo, mut hi) = (vec![0; d], vec![0; d]);
    for flat in 0..total {
        let mut rem = flat;
        for j in 0..d {
            let (a, b) = edge_pairs[rem % edge_pairs.len()];
            rem /= edge_pairs.len();
            lo[j] = a;
            hi[j] = b;
        }
        let s = box_sum(&ss, n, &lo, &hi);
        let b = box_sum(&sb, n, &lo, &hi);
        let z = cowan_z(s, b, rel_bkg_unc * b);
        if top.len() < refine || z > top[top.len() - 1].0 {
            let pos = top.partition_point(|t| t.0 >= z);
            top.insert(pos, (z, lo.clone(), hi.clone()));
            top.truncate(refine);
        }
    }
    let to_box = |lo: &[usize], hi: &[usize]| CutBox {
        lo: lo
            .iter()
            .enumerate()
            .map(|(j, &e)| {
                if e == 0 {
                    f64::NEG_INFINITY
                } else {
                    data.scaler.to_physical(j, e as f64 / cells as f64)
                }
            })
            .collect(),
        hi: hi
            .iter()
            .enumerate()
            .map(|(j, &e)| {
                if e == cells {
                    f64::INFINITY
                } else {
                    data.scaler.to_physical(j, e as f64 / cells as f64)
                }
            })
            .collect(),
    };
    let mut best: Option<(f64, usize, CutBox)> = None;
    for (rank, (_, lo, hi)) in top.iter().enumerate() {
        let b = to_box(lo, hi);
        let y = data.hard_yields_on(
            &Selection {
                boxes: vec![b.clone()],
            },
            ev,
        );
        let z = objective.z(y)?;
        if best.as_ref().is_none_or(|(bz, _, _)| z > *bz) {
            best = Some((z, rank, b));
        }
    }
    let (z, rank, b) =
        best.ok_or_else(|| Error::InvalidInput("fiducial grid: no box scanned".into()))?;
    Ok(GridResult {
        cells,
        boxes_scanned: total,
        best: b,
        z_chosen_on: z,
        winner_prefilter_rank: rank,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_sums_match_direct_sums() {
        let (cells, d) = (4, 3);
        let h: Vec<f64> = (0..cells * cells * cells)
            .map(|i| (i * 7 % 11) as f64)
            .collect();
        let s = summed_area(&h, cells, d);
        let (lo, hi) = ([1, 0, 2], [3, 4, 3]);
        let mut direct = 0.0;
        for a in lo[0]..hi[0] {
            for b in lo[1]..hi[1] {
                for c in lo[2]..hi[2] {
                    direct += h[(a * cells + b) * cells + c];
                }
            }
        }
        assert_eq!(box_sum(&s, cells + 1, &lo, &hi), direct);
    }

    #[test]
    fn cowan_tends_to_the_simple_formula() {
        let z0 = cowan_z(10.0, 50.0, 0.0);
        let z1 = cowan_z(10.0, 50.0, 1e-6);
        assert!((z0 - z1).abs() < 1e-6, "{z0} {z1}");
        assert!(cowan_z(10.0, 50.0, 5.0) < z0);
    }
}
