//! Toy-based inference (`infer::toys`): exactness on a model whose toy
//! p-values are Poisson tail sums, shards and threads that cannot change
//! the result, and failing toys that are reported rather than fatal.

use anagrad::hf::{InterpCode, Model, ModelOptions, Workspace};
use anagrad::infer::toys::{hypotest_toys, toy_distributions, Shard, ToyDistributions, ToyOptions};
use anagrad::infer::{FitSetup, Likelihood, TestStat};
use serde_json::json;
use statrs::distribution::{DiscreteCDF, Poisson};

/// One bin, signal 10 (POI `mu`), background 50, no nuisance parameters.
fn counting(observed: f64) -> Model {
    let ws = Workspace::from_value(&json!({
        "channels": [{"name": "sr", "samples": [
            {"name": "sig", "data": [10.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "bkg", "data": [50.0], "modifiers": []}]}],
        "observations": [{"name": "sr", "data": [observed]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))
    .unwrap();
    Model::new(&ws, &ModelOptions::default()).unwrap()
}

/// |toy − exact| within 4 binomial standard errors.
fn close(name: &str, toy: f64, exact: f64, n: usize) {
    let se = (exact * (1.0 - exact) / n as f64)
        .sqrt()
        .max(1.0 / n as f64);
    assert!(
        (toy - exact).abs() <= 4.0 * se,
        "{name}: toys {toy} vs exact {exact} (binomial s.e. {se:.2e})"
    );
}

#[test]
fn toy_pvalues_are_poisson_tail_sums() {
    let n = 4000;
    let opts = ToyOptions {
        ntoys: n,
        seed: 11,
        ..ToyOptions::default()
    };
    // Discovery: q0 grows with n above b, so p0 = P(N >= n_obs | b).
    let m = counting(65.0);
    let setup = FitSetup::from_model(&m);
    let r = hypotest_toys(&m, &m.observed_data(), 0.0, TestStat::Q0, &setup, &opts).unwrap();
    let b = Poisson::new(50.0).unwrap();
    close("p0", r.clsb_obs, 1.0 - b.cdf(64), n);
    assert_eq!(r.cls_obs, r.clsb_obs);
    assert_eq!(r.failed, [0, 0]);
    // Exclusion with qtilde at mu = 1: qtilde falls with n below s + b, so
    // CLs+b = P(N <= n_obs | s+b), CLb = P(N <= n_obs | b).
    let m = counting(52.0);
    let setup = FitSetup::from_model(&m);
    let r = hypotest_toys(
        &m,
        &m.observed_data(),
        1.0,
        TestStat::QmuTilde,
        &setup,
        &opts,
    )
    .unwrap();
    let sb = Poisson::new(60.0).unwrap();
    close("CLs+b", r.clsb_obs, sb.cdf(52), n);
    close("CLb", r.clb_obs, b.cdf(52), n);
    let exact_cls = sb.cdf(52) / b.cdf(52);
    assert!(
        (r.cls_obs - exact_cls).abs() < 0.03,
        "CLs {} vs {exact_cls}",
        r.cls_obs
    );
    // The median expected CLs: the background toy at the median count.
    let nmed = 50.0;
    let med = sb.cdf(nmed as u64) / b.cdf(nmed as u64);
    assert!(
        (r.cls_exp[2] - med).abs() < 0.05,
        "median CLs {} vs {med}",
        r.cls_exp[2]
    );
    eprintln!(
        "p0 / CLs+b / CLb / CLs: toys vs exact ok; CLs_exp {:?}",
        r.cls_exp
    );
}

#[test]
fn shards_and_threads_do_not_change_the_ensemble() {
    let m = counting(55.0);
    let data = m.observed_data();
    let setup = FitSetup::from_model(&m);
    let base = ToyOptions {
        ntoys: 300,
        seed: 5,
        ..ToyOptions::default()
    };
    let whole = toy_distributions(&m, &data, 1.0, TestStat::QmuTilde, &setup, &base).unwrap();
    let parts: Vec<ToyDistributions> = (1..=3)
        .map(|k| {
            let o = ToyOptions {
                shard: Shard::parse(&format!("{k}/3")).unwrap(),
                ..base.clone()
            };
            toy_distributions(&m, &data, 1.0, TestStat::QmuTilde, &setup, &o).unwrap()
        })
        .rev()
        .collect();
    let merged = ToyDistributions::merge(parts.clone()).unwrap();
    assert!(merged.is_complete());
    assert_eq!(merged.signal_plus_background, whole.signal_plus_background);
    assert_eq!(merged.background, whole.background);
    assert_eq!(merged.result().unwrap(), whole.result().unwrap());
    // A shard merged twice is refused.
    let dup = vec![parts[0].clone(), parts[0].clone()];
    assert!(ToyDistributions::merge(dup).is_err());
    // One thread gives the same bits.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let single = pool
        .install(|| toy_distributions(&m, &data, 1.0, TestStat::QmuTilde, &setup, &base))
        .unwrap();
    assert_eq!(single, whole);
}

/// pyhf's histosys code 2 makes some fits minimum-less (the infimum sits at
/// the jump at |α| = 1): such toys are counted and reported, the ensemble
/// goes on.
#[test]
fn failing_toys_are_reported_not_fatal() {
    let ws = Workspace::from_value(&json!({"channels":[{"name":"sr","samples":[
        {"name":"sig","data":[20.0,25.0],"modifiers":[{"name":"mu","type":"normfactor","data":null}]},
        {"name":"bkg","data":[80.0,130.0],"modifiers":[{"name":"jes","type":"histosys",
            "data":{"lo_data":[70.0,60.0],"hi_data":[90.0,70.0]}}]}]}],
        "observations":[{"name":"sr","data":[95.0,120.0]}],
        "measurements":[{"name":"m","config":{"poi":"mu","parameters":[]}}],"version":"1.0.0"}))
    .unwrap();
    let m = Model::new(
        &ws,
        &ModelOptions {
            histosys_interp: InterpCode::Code2,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let setup = FitSetup::from_model(&m);
    let opts = ToyOptions {
        ntoys: 200,
        seed: 3,
        ..ToyOptions::default()
    };
    let d = toy_distributions(
        &m,
        &m.observed_data(),
        1.0,
        TestStat::QmuTilde,
        &setup,
        &opts,
    )
    .unwrap();
    let failed = d.signal_plus_background.failures.len() + d.background.failures.len();
    let r = d.result().unwrap();
    eprintln!(
        "code2 toys: {failed} of 400 failed; first: {:?}",
        d.background.failures.first()
    );
    assert!(
        failed > 0,
        "no toy failed: the test needs a model that provokes failures"
    );
    assert_eq!(r.failed[0] + r.failed[1], failed);
    assert_eq!(r.ntoys[0] + r.ntoys[1] + failed, 400);
    assert!(d
        .signal_plus_background
        .failures
        .iter()
        .chain(&d.background.failures)
        .all(|(_, msg)| msg.contains("no minimum")));
    assert!(r.cls_obs.is_finite());
    let _ = m.n_pars();
}

/// The toy-based upper limit with root finding on the interpolated CLs
/// lands on the exact limit of the counting model, where CLs(μ) =
/// P(N ≤ n | μs + b) / P(N ≤ n | b), within the toys' statistical error.
#[test]
fn refined_toy_limit_finds_the_exact_root() {
    use anagrad::infer::toys::upper_limit_toys_refined;
    let m = counting(52.0);
    let setup = FitSetup::from_model(&m);
    let b = Poisson::new(50.0).unwrap();
    let cls = |mu: f64| Poisson::new(50.0 + 10.0 * mu).unwrap().cdf(52) / b.cdf(52);
    let (mut lo, mut hi) = (0.0, 5.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if cls(mid) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let exact = 0.5 * (lo + hi);
    let opts = ToyOptions {
        ntoys: 1000,
        seed: 21,
        ..ToyOptions::default()
    };
    let grid = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    let (obs0, _, t0) = upper_limit_toys_refined(
        &m,
        &m.observed_data(),
        &grid,
        0.05,
        TestStat::QmuTilde,
        &setup,
        &opts,
        0,
    )
    .unwrap();
    let (obs, exp, tested) = upper_limit_toys_refined(
        &m,
        &m.observed_data(),
        &grid,
        0.05,
        TestStat::QmuTilde,
        &setup,
        &opts,
        3,
    )
    .unwrap();
    eprintln!(
        "exact {exact}; scan {obs0}; refined {obs} ({} points); expected {exp:?}",
        tested.len()
    );
    assert_eq!(t0.len(), grid.len());
    assert!(tested.len() > grid.len(), "no refinement step was taken");
    assert!(tested.windows(2).all(|w| w[0].poi_test <= w[1].poi_test));
    let nearest = tested
        .iter()
        .map(|r| (r.poi_test - exact).abs())
        .fold(f64::INFINITY, f64::min);
    assert!(
        nearest < 0.2,
        "no tested point near the exact root {exact} (nearest {nearest})"
    );
    assert!(
        (obs - exact).abs() < 0.25,
        "refined limit {obs} vs exact {exact}"
    );
}
