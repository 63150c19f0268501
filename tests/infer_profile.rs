//! Profile-likelihood intervals of the POI (`infer::poi_interval`) against
//! the closed form of a counting experiment and, with a nuisance parameter,
//! against the profile curve itself.

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::{fit, fixed_poi_fit, poi_interval, FitOptions, FitSetup, Likelihood};
use serde_json::json;

fn model(with_syst: bool) -> Model {
    let bkg_mods = if with_syst {
        json!([{"name": "bnorm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}])
    } else {
        json!([])
    };
    let ws = Workspace::from_value(&json!({
        "channels": [{"name": "sr", "samples": [
            {"name": "sig", "data": [10.0, 20.0],
             "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "bkg", "data": [50.0, 30.0], "modifiers": bkg_mods}]}],
        "observations": [{"name": "sr", "data": [63.0, 47.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))
    .unwrap();
    Model::new(&ws, &ModelOptions::default()).unwrap()
}

#[test]
fn counting_experiment_matches_the_closed_form() {
    let m = model(false);
    let data = m.observed_data();
    let setup = FitSetup::from_model(&m);
    let iv = poi_interval(&m, &data, &setup, &FitOptions::default(), 1.0).unwrap();
    // −2 ln λ(μ) = 2 Σ_b [ν_b − n_b + n_b ln(n_b/ν_b)], ν = μ s + b
    let (s, b, n) = ([10.0, 20.0], [50.0, 30.0], [63.0, 47.0]);
    let q = |mu: f64| -> f64 {
        (0..2)
            .map(|i| {
                let nu = mu * s[i] + b[i];
                2.0 * (nu - n[i] + n[i] * (n[i] / nu).ln())
            })
            .sum()
    };
    let qmin = q(iv.mle);
    for end in [iv.lo, iv.hi] {
        assert!(
            (q(end) - qmin - 1.0).abs() < 1e-8,
            "{end}: {}",
            q(end) - qmin
        );
    }
    assert!(iv.lo < iv.mle && iv.mle < iv.hi && !iv.lo_at_bound && !iv.hi_at_bound);
}

#[test]
fn with_a_nuisance_the_ends_lie_on_the_profile_curve() {
    let m = model(true);
    let data = m.observed_data();
    let setup = FitSetup::from_model(&m);
    let opts = FitOptions::default();
    let iv = poi_interval(&m, &data, &setup, &opts, 1.0).unwrap();
    let best = fit(&m, &data, &setup, &opts).unwrap().twice_nll;
    for end in [iv.lo, iv.hi] {
        let q = fixed_poi_fit(&m, &data, end, &setup, None, &opts)
            .unwrap()
            .twice_nll
            - best;
        assert!((q - 1.0).abs() < 1e-8, "{end}: {q}");
    }
    // profiling a nuisance widens the interval
    let m0 = model(false);
    let plain = poi_interval(
        &m0,
        &m0.observed_data(),
        &FitSetup::from_model(&m0),
        &opts,
        1.0,
    )
    .unwrap();
    assert!(iv.half_width() > plain.half_width());
    // bad delta
    assert!(poi_interval(&m, &data, &setup, &opts, 0.0).is_err());
}
