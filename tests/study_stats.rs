//! Per-cell statistics: Welford against cases with known mean and variance,
//! bias/RMSE, and the optimum per N.

use anagrad::study::stats::{optimal_ratios, Cell, Welford};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

#[test]
fn welford_exact_on_integers() {
    // 1..=n: mean (n+1)/2, sample variance n(n+1)/12.
    let n = 1001u64;
    let w: Welford = (1..=n).map(|i| i as f64).collect();
    assert_eq!(w.count(), n);
    assert!((w.mean() - 501.0).abs() < 1e-12);
    let var = (n * (n + 1)) as f64 / 12.0;
    assert!((w.variance() - var).abs() < 1e-9 * var);
}

#[test]
fn welford_stable_with_large_offset() {
    // A naive Σx² − (Σx)²/n loses every digit here; Welford must not.
    let w: Welford = [4.0, 7.0, 13.0, 16.0].iter().map(|x| 1e9 + x).collect();
    assert!((w.variance() - 30.0).abs() < 1e-6, "{}", w.variance());
}

#[test]
fn welford_merge_equals_single_pass() {
    let xs: Vec<f64> = (0..500)
        .map(|i| ((i * 37) % 101) as f64 * 0.3 - 4.0)
        .collect();
    let all: Welford = xs.iter().copied().collect();
    let mut a: Welford = xs[..123].iter().copied().collect();
    let b: Welford = xs[123..].iter().copied().collect();
    a.merge(&b);
    assert_eq!(a.count(), all.count());
    assert!((a.mean() - all.mean()).abs() < 1e-12);
    assert!((a.variance() - all.variance()).abs() < 1e-10);
    let mut empty = Welford::new();
    empty.merge(&all);
    assert_eq!(empty, all);
}

#[test]
fn welford_recovers_a_known_gaussian_variance() {
    // 200k draws of Normal(1.5, 0.7): the sample std has relative sd 1/√(2n) ≈ 0.16 %.
    let mut rng = StdRng::seed_from_u64(11);
    let n = 200_000;
    let w: Welford = (0..n)
        .map(|_| 1.5 + 0.7 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    assert!((w.mean() - 1.5).abs() < 4.0 * 0.7 / (n as f64).sqrt());
    assert!((w.std() / 0.7 - 1.0).abs() < 4.0 / (2.0 * n as f64).sqrt());
    assert!((w.sem() - 0.7 / (n as f64).sqrt()).abs() < 1e-5);
}

#[test]
fn too_few_values_give_nan() {
    assert!(Welford::new().mean().is_nan());
    let w: Welford = [3.0].into_iter().collect();
    assert_eq!(w.mean(), 3.0);
    assert!(w.std().is_nan());
}

#[test]
fn cell_bias_rmse_and_optimum() {
    let acc: Welford = [1.0, 3.0].into_iter().collect(); // mean 2, std √2
    let c = Cell::new(100, 0.1, 0.1, &acc, 1.5, 0.0);
    assert_eq!(c.bias, 0.5);
    assert!((c.rmse - (0.25f64 + 2.0).sqrt()).abs() < 1e-15);
    assert_eq!(c.datasets, 2);

    let mk = |n, ratio, rmse: f64| Cell {
        n,
        ratio,
        bandwidth: ratio,
        datasets: 10,
        mean: 0.0,
        std: rmse,
        truth: 0.0,
        truth_error: 0.0,
        bias: 0.0,
        rmse,
    };
    let cells = vec![
        mk(100, 0.1, 3.0),
        mk(100, 0.5, 1.0),
        mk(100, 1.0, 2.0),
        mk(1000, 0.1, 0.5),
        mk(1000, 0.5, f64::NAN),
        mk(1000, 1.0, 0.7),
    ];
    let opt = optimal_ratios(&cells);
    assert_eq!(opt.len(), 2);
    assert_eq!((opt[0].n, opt[0].ratio, opt[0].rmse), (100, 0.5, 1.0));
    assert_eq!((opt[1].n, opt[1].ratio, opt[1].rmse), (1000, 0.1, 0.5));
}
