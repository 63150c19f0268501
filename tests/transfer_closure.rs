//! A small version of `examples/transfer_closure.rs` that CI runs: closure
//! of the blinded-window background prediction on the polynomial toy and the
//! F-test picking the generating TF order (issue 11).

use anagrad::toys::passfail::{PassFailToy, Tagger};
use anagrad::transfer::closure::{
    closure_toys, ftest_toys, summarize, ClosureOptions, FTestStudyOptions,
};

/// The window x = 110–140 GeV (bins 7–9 of 16) at every y bin.
fn window(ny: usize) -> Vec<[usize; 2]> {
    (7..10).flat_map(|i| (0..ny).map(move |j| [i, j])).collect()
}

#[test]
fn polynomial_tf_closes_in_the_blinded_window() {
    let n = 30;
    let toy = PassFailToy::new(16, 4, Tagger::polynomial());
    let r = closure_toys(
        &toy,
        &ClosureOptions {
            n_toys: n,
            seed: 5,
            order: [2, 1],
            window: window(4),
            mu_gen: 0.0,
            fluctuate_aux: true,
        },
    )
    .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.toys.len(), n);
    // For pulls ~ N(0, 1) over n = 30 toys: the mean has σ = 1/√30 = 0.18 and
    // the width σ ≈ 1/√(2·29) = 0.13; the bounds are 3σ.
    let p = r.pull;
    assert!(p.mean.abs() < 0.55, "pull mean {p:?}");
    assert!((p.width - 1.0).abs() < 0.4, "pull width {p:?}");
    // The prediction is unbiased at the level of its own uncertainty.
    assert!(r.rel_bias.abs() < 3.0 * r.rel_sigma / (n as f64).sqrt());
    for t in &r.toys {
        assert!(t.prediction.sigma > 0.0 && t.prediction.qcd <= t.prediction.predicted);
        assert!(t.prediction.observed > 0.0);
    }
}

#[test]
fn ftest_picks_the_generating_order_in_most_toys() {
    let n = 12;
    let toy = PassFailToy::new(16, 4, Tagger::polynomial());
    let s = ftest_toys(
        &toy,
        &FTestStudyOptions {
            n_toys: n,
            seed: 3,
            start: [0, 0],
            max: [3, 2],
            alpha: 0.05,
            window: window(4),
        },
    )
    .unwrap();
    assert!(s.failed.is_empty(), "{:?}", s.failed);
    assert_eq!(s.generating, [2, 1]);
    // With a true selection probability of 0.85 (two 5 % tests at the
    // generating order), P(fewer than 8 of 12) = 2.4 %; the seed is fixed.
    let right = s.chosen.iter().filter(|o| **o == [2, 1]).count();
    assert!(right >= 8, "chosen {:?}", s.counts);
}

#[test]
fn summary_errors() {
    let s = summarize(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(s.n, 4);
    assert!((s.mean - 2.5).abs() < 1e-15);
    let sd = (5.0f64 / 3.0).sqrt();
    assert!((s.width - sd).abs() < 1e-15);
    assert!((s.mean_err - sd / 2.0).abs() < 1e-15);
    assert!((s.width_err - sd / 6.0f64.sqrt()).abs() < 1e-15);
}
