//! Exact gradients of the expected hard-histogram loss.
//!
//! With hard counts c_b of N independent events, each landing in bin b with
//! probability p_b(θ), c_b ~ Binomial(N, p_b), so
//! E[(c_b/N − q_b)²] = p_b(1 − p_b)/N + (p_b − q_b)² and
//!
//! d/dθ E[L] = Σ_b p_b′(θ) [(1 − 2 p_b)/N + 2 (p_b − q_b)].
//!
//! For the cut-z0 pipeline (a nonlinear objective of the yields) the truth
//! is the N → ∞ limit instead: Z0 at the expected hard yields, whose
//! θ-derivative follows from [`cut_yields`] and the loss's exact dZ0/dyields.
//!
//! The single-dataset hard-histogram gradient is zero almost everywhere;
//! this is the quantity a bKDE gradient estimates as h → 0.

use crate::ops::normal::{cdf, pdf};

use super::config::OutsideMode;

/// Φ and φ with the infinite edges of folded outer bins handled exactly.
fn cdf_ext(x: f64) -> f64 {
    if x == f64::INFINITY {
        1.0
    } else if x == f64::NEG_INFINITY {
        0.0
    } else {
        cdf(x)
    }
}

fn pdf_ext(x: f64) -> f64 {
    if x.is_infinite() {
        0.0
    } else {
        pdf(x)
    }
}

/// The edges of the hard histogram that the bKDE tends to: with
/// `OutsideMode::Fold` the outer bins extend to ±∞.
pub fn effective_edges(edges: &[f64], outside: OutsideMode) -> Vec<f64> {
    let mut e = edges.to_vec();
    if outside == OutsideMode::Fold && e.len() >= 2 {
        e[0] = f64::NEG_INFINITY;
        let last = e.len() - 1;
        e[last] = f64::INFINITY;
    }
    e
}

/// P(x in bin b) for x ~ Normal(mean, 1).
pub fn gaussian_bin_probs(edges: &[f64], mean: f64) -> Vec<f64> {
    edges
        .windows(2)
        .map(|w| cdf_ext(w[1] - mean) - cdf_ext(w[0] - mean))
        .collect()
}

/// P(x in bin b and x > cut) for x ~ Normal(mean, 1).
pub fn cut_bin_probs(edges: &[f64], mean: f64, cut: f64) -> Vec<f64> {
    edges
        .windows(2)
        .map(|w| {
            let lo = w[0].max(cut);
            if lo >= w[1] {
                0.0
            } else {
                cdf_ext(w[1] - mean) - cdf_ext(lo - mean)
            }
        })
        .collect()
}

/// E[Σ_b (c_b/N − q_b)²] for multinomial hard counts with bin probabilities `p`.
pub fn expected_loss(p: &[f64], q: &[f64], n: usize) -> f64 {
    let n = n as f64;
    p.iter()
        .zip(q)
        .map(|(&p, &q)| p * (1.0 - p) / n + (p - q) * (p - q))
        .sum()
}

/// d/dθ of [`expected_loss`], given dp_b/dθ.
pub fn expected_loss_grad(p: &[f64], dp: &[f64], q: &[f64], n: usize) -> f64 {
    let n = n as f64;
    p.iter()
        .zip(dp)
        .zip(q)
        .map(|((&p, &dp), &q)| dp * ((1.0 - 2.0 * p) / n + 2.0 * (p - q)))
        .sum()
}

/// Gaussian-shift pipeline (x = θ + z): returns (E[L_hard], dE[L_hard]/dθ).
pub fn gaussian_shift(
    edges: &[f64],
    outside: OutsideMode,
    theta: f64,
    target_mean: f64,
    n: usize,
) -> (f64, f64) {
    let e = effective_edges(edges, outside);
    let p = gaussian_bin_probs(&e, theta);
    let q = gaussian_bin_probs(&e, target_mean);
    // d/dθ [Φ(e_{b+1} − θ) − Φ(e_b − θ)]
    let dp: Vec<f64> = e
        .windows(2)
        .map(|w| pdf_ext(w[0] - theta) - pdf_ext(w[1] - theta))
        .collect();
    (expected_loss(&p, &q, n), expected_loss_grad(&p, &dp, &q, n))
}

/// Cut-threshold pipeline (keep x > θ, x ~ Normal(data_mean, 1)): returns
/// (E[L_hard], dE[L_hard]/dθ). Only the bin that contains θ moves: its
/// lower boundary is θ, so dp_b/dθ = −φ(θ − data_mean) there. θ must not sit
/// on an edge (checked by the config).
pub fn cut_threshold(
    edges: &[f64],
    outside: OutsideMode,
    theta: f64,
    data_mean: f64,
    target_threshold: f64,
    n: usize,
) -> (f64, f64) {
    let e = effective_edges(edges, outside);
    let p = cut_bin_probs(&e, data_mean, theta);
    let q = cut_bin_probs(&e, data_mean, target_threshold);
    let dp: Vec<f64> = e
        .windows(2)
        .map(|w| {
            if w[0] < theta && theta < w[1] {
                -pdf_ext(theta - data_mean)
            } else {
                0.0
            }
        })
        .collect();
    (expected_loss(&p, &q, n), expected_loss_grad(&p, &dp, &q, n))
}

/// Expected hard yields `total · P(x in bin b and x > θ)` of x ~ Normal(mean, 1)
/// and their θ-derivatives (nonzero only in the bin that contains θ).
pub fn cut_yields(
    edges: &[f64],
    outside: OutsideMode,
    theta: f64,
    mean: f64,
    total: f64,
) -> (Vec<f64>, Vec<f64>) {
    let e = effective_edges(edges, outside);
    let y = cut_bin_probs(&e, mean, theta)
        .into_iter()
        .map(|p| total * p)
        .collect();
    let dy = e
        .windows(2)
        .map(|w| {
            if w[0] < theta && theta < w[1] {
                -total * pdf_ext(theta - mean)
            } else {
                0.0
            }
        })
        .collect();
    (y, dy)
}
