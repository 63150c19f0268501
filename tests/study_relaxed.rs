//! Acceptance of issue 6: anagrad's default study agrees with relaxed 0.4.0
//! (tests/fixtures/bandwidth_relaxed.json, from papers/bandwidth/relaxed_study.py)
//! within Monte-Carlo error in every cell:
//!   |Δmean| ≤ 4·√(σ_a² + σ_r²)/√500  and  σ_a/σ_r − 1 within ±15 %.
//! The datasets are independent (rand vs numpy), so this is a statistical test
//! at ~4σ per cell for the means.
//!
//! This runs the full default study (10 500 gradients, about 6 s of CPU in
//! the test profile); papers/bandwidth/compare.py does the same check on the
//! CLI's output.

use anagrad::study::config::StudyConfig;
use anagrad::study::run_study;
use indicatif::ProgressBar;

struct RelaxedCell {
    n: usize,
    ratio: f64,
    mean: f64,
    std: f64,
    truth: f64,
}

fn fixture() -> (usize, Vec<RelaxedCell>) {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/bandwidth_relaxed.json")).unwrap();
    assert_eq!(doc["relaxed_version"], "0.4.0");
    assert_eq!(doc["outside"], "drop");
    let datasets = doc["datasets"].as_u64().unwrap() as usize;
    let cells = doc["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| RelaxedCell {
            n: c["n"].as_u64().unwrap() as usize,
            ratio: c["ratio"].as_f64().unwrap(),
            mean: c["mean"].as_f64().unwrap(),
            std: c["std"].as_f64().unwrap(),
            truth: c["true"].as_f64().unwrap(),
        })
        .collect();
    (datasets, cells)
}

fn compare(ns: &[usize]) {
    let (datasets, reference) = fixture();
    let cfg = StudyConfig {
        ns: ns.to_vec(),
        ..StudyConfig::default()
    };
    assert_eq!(cfg.datasets, datasets);
    let report = run_study(&cfg, &ProgressBar::hidden()).unwrap();
    let mut failures = Vec::new();
    for c in &report.cells {
        let r = reference
            .iter()
            .find(|r| r.n == c.n && r.ratio == c.ratio)
            .unwrap_or_else(|| panic!("no relaxed cell for N={} r={}", c.n, c.ratio));
        assert!(
            (c.truth - r.truth).abs() < 1e-12,
            "analytic truth differs from scipy's"
        );
        let tol = 4.0 * (c.std.powi(2) + r.std.powi(2)).sqrt() / (datasets as f64).sqrt();
        let dmean = (c.mean - r.mean).abs();
        let std_ratio = c.std / r.std;
        println!(
            "N={:6} r={:5} mean {:+.5e} vs {:+.5e} (|Δ|/tol {:.2})  std {:.4e} vs {:.4e} (ratio {:.3})",
            c.n,
            c.ratio,
            c.mean,
            r.mean,
            dmean / tol,
            c.std,
            r.std,
            std_ratio
        );
        if dmean > tol || !(0.85..=1.15).contains(&std_ratio) {
            failures.push(format!("N={} r={}", c.n, c.ratio));
        }
    }
    assert!(
        failures.is_empty(),
        "cells outside the acceptance band: {failures:?}"
    );
}

#[test]
fn agrees_with_relaxed_full_default_study() {
    compare(&[100, 1000, 10000]);
}
