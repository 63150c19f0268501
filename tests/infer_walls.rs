//! Fits whose minimum lies on a domain wall: a main bin with no observed
//! events whose expected rate is driven to 0 (e.g. a negative signal
//! strength against a small background). anagrad's `-2 ln L` is `+∞` for a
//! negative rate, so the minimum is a constrained one, `rate_b = 0` with a
//! gradient that does not vanish; before the fitter knew about walls these
//! fits stopped with "no descent step found at iteration 1" (every step
//! along `−g` leaves the domain). References: `tests/fixtures/walls/
//! generate.py` (pyhf's logpdf minimised subject to rates ≥ 0 from several
//! starts, and a dense scan / the analytic minimum for the small model).

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::{fit, FitOptions, FitSetup, Likelihood};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/walls/reference.json")).unwrap()
}

fn check(m: &Model, want: f64, want_mu: f64, wall: usize, mu_tol: f64) {
    let data = m.observed_data();
    let r = fit(m, &data, &FitSetup::from_model(m), &FitOptions::default()).unwrap();
    let mu = r.pars[m.poi_index().unwrap()];
    assert!(
        (r.twice_nll - want).abs() <= 1e-8 * want.abs().max(1.0),
        "twice_nll {} vs reference {want}",
        r.twice_nll
    );
    assert!((mu - want_mu).abs() < mu_tol, "mu {mu} vs {want_mu}");
    assert_eq!(r.walls, vec![wall]);
    assert!(r.grad_norm <= 1e-10 * r.twice_nll.abs().max(1.0));
    let rates = m.expected_data(&r.pars).unwrap();
    assert!(rates[wall] >= 0.0 && rates[wall] < 1e-9, "{}", rates[wall]);
    // on the minimum, below pyhf's unconstrained value (which needs a
    // negative rate), never at a non-finite point
    assert!(m.twice_nll(&r.pars, &data).unwrap().is_finite());
}

#[test]
fn small_pyhf_model_minimum_on_the_wall_of_its_empty_bin() {
    let r = reference();
    let s = &r["small"];
    let ws = Workspace::from_value(&s["workspace"]).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    // analytic: b = 33/26, mu = -2 b
    check(&m, s["twice_nll"].as_f64().unwrap(), -33.0 / 13.0, 0, 1e-7);
    let b = m.par_index("b").unwrap();
    let data = m.observed_data();
    let fr = fit(&m, &data, &FitSetup::from_model(&m), &FitOptions::default()).unwrap();
    assert!((fr.pars[b] - 33.0 / 26.0).abs() < 1e-7);
    // pyhf alone would go on to a negative rate in the empty bin, lower still
    assert!(s["pyhf_unconstrained_twice_nll"].as_f64().unwrap() < fr.twice_nll - 1.0);
}

#[test]
fn tagger_spurious_signal_fit_converges_on_the_wall() {
    let r = reference();
    let t = &r["tagger_spur"];
    let ws = Workspace::from_json_str(include_str!("fixtures/walls/tagger_spur.json")).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    let data = m.observed_data();
    // the numpy logpdf of the generator is anagrad's at its own optimum
    let pars: Vec<f64> = t["pars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let rates = m.expected_data(&pars).unwrap();
    assert!(rates[51].abs() < 1e-6);
    let wall = t["wall_bins"][0].as_u64().unwrap() as usize;
    // SLSQP's mu is good to ~1e-6 (flat direction along the wall)
    check(
        &m,
        t["twice_nll"].as_f64().unwrap(),
        t["mu"].as_f64().unwrap(),
        wall,
        1e-5,
    );
    let _ = data;
}

/// Convex fits with all rates well inside the domain are untouched: no wall,
/// the same iterations as before walls were handled.
#[test]
fn interior_minimum_has_no_walls() {
    let ws = Workspace::from_json_str(include_str!("fixtures/walls/tagger_spur.json")).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    // the same model with signal in the data (the Z_A fit): an interior minimum
    let mut data = m.observed_data();
    let mut p = m.init();
    p[m.poi_index().unwrap()] = 1.0;
    let asimov = m.expected_data(&p).unwrap();
    data[..m.n_main()].copy_from_slice(&asimov[..m.n_main()]);
    let r = fit(&m, &data, &FitSetup::from_model(&m), &FitOptions::default()).unwrap();
    assert!(r.walls.is_empty());
    assert!((r.pars[m.poi_index().unwrap()] - 1.0).abs() < 1e-6);
}

#[test]
fn losses_give_the_wall_minimum_but_refuse_its_envelope_gradient() {
    use anagrad::grad::{InputSel, Loss, LossKind, Template};
    use anagrad::Error;
    let r = reference();
    let s = &r["small"];
    let ws = Workspace::from_value(&s["workspace"]).unwrap();
    let t = Template::from_workspace(&ws, &ModelOptions::default())
        .unwrap()
        .with_input(InputSel::nominal("sr", "sig"))
        .unwrap();
    let loss = Loss::new(t, LossKind::ObservedNll { poi: None });
    let v = loss.evaluate(&[1.0, 1.0, 1.0], false).unwrap().value;
    let want = s["twice_nll"].as_f64().unwrap();
    assert!(
        (v - want).abs() <= 1e-8 * want.abs().max(1.0),
        "{v} vs {want}"
    );
    let e = loss.evaluate(&[1.0, 1.0, 1.0], true).unwrap_err();
    assert!(matches!(e, Error::WallMinimum { .. }), "{e}");
    assert!(e.to_string().contains("[0]"), "{e}");
}
