//! The transfer-factor extension of the workspace (transferfactor,
//! logshapefactor, channel coordinates): the likelihood against a
//! hand-written one, the fast derivatives against hyper-dual numbers of the
//! generic likelihood, JSON round trips, and located errors for bad input.

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::Likelihood;
use num_dual::HyperDual64;
use serde_json::{json, Value};

const NX: usize = 5;
const NY: usize = 4;

fn coords() -> Value {
    let bins: Vec<Value> = (0..NX)
        .flat_map(|i| {
            (0..NY).map(move |j| json!([40.0 + 10.0 * i as f64, 500.0 + 100.0 * j as f64]))
        })
        .collect();
    json!({"axes": ["msd", "pt"], "bins": bins})
}

fn fail_n0() -> Vec<f64> {
    (0..NX * NY)
        .map(|b| 400.0 * (-0.3 * (b / NY) as f64).exp() * (1.0 - 0.1 * (b % NY) as f64))
        .collect()
}

/// A 2-D pass/fail workspace: qcd fail yields (`fail_mod`) shared by the
/// pass region through a transfer factor `tf`, a signal with POI `mu`.
fn workspace(tf: Value, fail_mod: Value) -> Value {
    let n0 = fail_n0();
    let nb = n0.len();
    let sig_pass: Vec<f64> = (0..nb)
        .map(|b| if b / NY == 2 { 12.0 } else { 1.0 })
        .collect();
    let sig_fail: Vec<f64> = sig_pass.iter().map(|x| 0.2 * x).collect();
    let obs_fail: Vec<f64> = n0.iter().map(|x| (x * 1.03).round()).collect();
    let obs_pass: Vec<f64> = (0..nb)
        .map(|b| (n0[b] * (0.05 + 0.01 * (b % NY) as f64) + sig_pass[b] * 0.8).round())
        .collect();
    json!({
        "channels": [
            {"name": "fail", "coordinates": coords(), "samples": [
                {"name": "qcd", "data": n0, "modifiers": [fail_mod.clone()]},
                {"name": "sig", "data": sig_fail, "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]}
            ]},
            {"name": "pass", "coordinates": coords(), "samples": [
                {"name": "qcd", "data": n0, "modifiers": [fail_mod, tf]},
                {"name": "sig", "data": sig_pass, "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": null},
                    {"name": "lumi_like", "type": "normsys", "data": {"lo": 0.95, "hi": 1.06}}
                ]}
            ]}
        ],
        "observations": [{"name": "fail", "data": obs_fail}, {"name": "pass", "data": obs_pass}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    })
}

fn shapefactor() -> Value {
    json!({"name": "qcdfail", "type": "shapefactor", "data": null})
}

fn variants() -> Vec<(&'static str, Value)> {
    let mc: Vec<f64> = (0..NX * NY).map(|b| 0.05 + 0.002 * b as f64).collect();
    vec![
        (
            "bernstein_linear_21",
            workspace(
                json!({"name": "tf", "type": "transferfactor", "data": {"basis": "bernstein", "order": [2, 1]}}),
                shapefactor(),
            ),
        ),
        (
            "polynomial_exp_12_mc",
            workspace(
                json!({"name": "tf", "type": "transferfactor", "data": {"basis": "polynomial", "order": [1, 2], "form": "exp", "mc": mc}}),
                shapefactor(),
            ),
        ),
        (
            "chebyshev_exp_22_log",
            workspace(
                json!({"name": "tf", "type": "transferfactor", "data": {"basis": "chebyshev", "order": [2, 2], "form": "exp"}}),
                json!({"name": "qcdfail", "type": "logshapefactor", "data": fail_n0()}),
            ),
        ),
        (
            "bernstein_exp_11_constrained",
            workspace(
                json!({"name": "tf", "type": "transferfactor", "data": {"basis": "bernstein", "order": [1, 1], "form": "exp",
                    "constraint": {"mean": [-3.0, -2.9, -2.8, -2.6], "cov": [[0.04, 0.01, 0.0, 0.0], [0.01, 0.05, 0.0, 0.01], [0.0, 0.0, 0.03, 0.0], [0.0, 0.01, 0.0, 0.06]]}}}),
                shapefactor(),
            ),
        ),
    ]
}

fn model(ws: &Value) -> Model {
    let ws = Workspace::from_value(ws).unwrap();
    Model::new(&ws, &ModelOptions::default()).unwrap()
}

/// A point away from the inits, inside the bounds.
fn point(m: &Model) -> Vec<f64> {
    let b = m.bounds();
    m.init()
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let d = 0.05 * (((i * 7) % 5) as f64 - 2.0);
            let (lo, hi) = b[i];
            (x + d * (1.0 + x.abs())).clamp(lo + 1e-3, hi - 1e-3)
        })
        .collect()
}

/// The same likelihood written out by hand from the JSON (Bernstein, 2-D).
fn hand_nll(ws: &Value, m: &Model, pars: &[f64]) -> f64 {
    let p = |name: &str| pars[m.par_index(name).unwrap()];
    let nb = NX * NY;
    let n0 = fail_n0();
    let c = &ws["channels"];
    let (ox, oy) = (2usize, 1usize);
    let binom =
        |n: usize, k: usize| -> f64 { (0..k).map(|i| (n - i) as f64 / (i + 1) as f64).product() };
    let bern = |n: usize, i: usize, u: f64| {
        binom(n, i) * u.powi(i as i32) * (1.0 - u).powi((n - i) as i32)
    };
    let mut nll = 0.0;
    for (ci, ch) in ["fail", "pass"].iter().enumerate() {
        let obs = &ws["observations"][ci]["data"];
        let sig = &c[ci]["samples"][1]["data"];
        for b in 0..nb {
            let (ix, iy) = (b / NY, b % NY);
            let (u, v) = (ix as f64 / (NX - 1) as f64, iy as f64 / (NY - 1) as f64);
            let mut qcd = n0[b] * p(&format!("qcdfail[{b}]"));
            let mut s = sig[b].as_f64().unwrap() * p("mu");
            if *ch == "pass" {
                let mut tf = 0.0;
                for i in 0..=ox {
                    for j in 0..=oy {
                        tf += p(&format!("tf[{}]", i * (oy + 1) + j))
                            * bern(ox, i, u)
                            * bern(oy, j, v);
                    }
                }
                qcd *= tf;
                // normsys code4 at alpha: exp-like polynomial; use the value at alpha = 0 region checks below
                let a = p("lumi_like");
                s *= code4(a, 0.95, 1.06);
            }
            let lam = qcd + s;
            let n = obs[b].as_f64().unwrap();
            nll += lam - n * lam.ln() + ln_gamma(n + 1.0);
        }
    }
    let a = p("lumi_like");
    nll += 0.5 * a * a + 0.5 * (2.0 * std::f64::consts::PI).ln();
    2.0 * nll
}

fn ln_gamma(x: f64) -> f64 {
    statrs::function::gamma::ln_gamma(x)
}

/// pyhf's normsys code 4 (exponential outside |α| ≥ 1, 6th-order polynomial inside).
fn code4(a: f64, lo: f64, hi: f64) -> f64 {
    if a >= 1.0 {
        return hi.powf(a);
    }
    if a <= -1.0 {
        return lo.powf(-a);
    }
    let (l, h) = (lo.ln(), hi.ln());
    let b = [
        hi - lo,
        hi * h + lo * l,
        hi * h * h - lo * l * l,
        hi * h.powi(3) + lo * l.powi(3),
        hi * h.powi(4) - lo * l.powi(4),
        hi * h.powi(5) + lo * l.powi(5),
    ];
    #[rustfmt::skip]
    let ainv = [
        [15.0 / 16.0, -15.0 / 16.0, 7.0 / 16.0, 7.0 / 16.0, -1.0 / 16.0, 1.0 / 16.0],
        [3.0 / 2.0, 3.0 / 2.0, -9.0 / 16.0, 9.0 / 16.0, 1.0 / 16.0, 1.0 / 16.0],
        [-5.0 / 8.0, 5.0 / 8.0, -5.0 / 8.0, -5.0 / 8.0, 1.0 / 8.0, -1.0 / 8.0],
        [-3.0 / 2.0, -3.0 / 2.0, 7.0 / 8.0, -7.0 / 8.0, -1.0 / 8.0, -1.0 / 8.0],
        [3.0 / 16.0, -3.0 / 16.0, 3.0 / 16.0, 3.0 / 16.0, -1.0 / 16.0, 1.0 / 16.0],
        [1.0 / 2.0, 1.0 / 2.0, -5.0 / 16.0, 5.0 / 16.0, 1.0 / 16.0, 1.0 / 16.0],
    ];
    let mut r = 1.0;
    for (k, row) in ainv.iter().enumerate() {
        let coef: f64 = row.iter().zip(b).map(|(x, y)| x * y).sum();
        r += coef * a.powi(k as i32 + 1);
    }
    r
}

#[test]
fn likelihood_matches_a_hand_written_one() {
    let (_, ws) = &variants()[0];
    let m = model(ws);
    assert_eq!(m.n_pars(), 1 + 1 + 2 * NX * NY / 2 + 6);
    for pars in [m.init(), point(&m)] {
        let want = hand_nll(ws, &m, &pars);
        let got = m.twice_nll(&pars, &m.observed_data()).unwrap();
        assert!(
            (got - want).abs() <= 1e-11 * want.abs(),
            "twice_nll {got} vs hand-written {want}"
        );
    }
}

#[test]
fn fast_derivatives_match_hyper_duals_of_the_generic_likelihood() {
    for (name, ws) in variants() {
        let m = model(&ws);
        let n = m.n_pars();
        let pars = point(&m);
        let data = m.observed_data();
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n * n];
        let v = m.twice_nll_grad_hess(&pars, &data, &mut g, &mut h).unwrap();
        let v0 = m.twice_nll(&pars, &data).unwrap();
        assert!(
            (v - v0).abs() <= 1e-10 * v0.abs(),
            "{name}: value {v} vs {v0}"
        );
        let dd: Vec<HyperDual64> = data.iter().map(|&x| HyperDual64::from(x)).collect();
        let id: Vec<HyperDual64> = m.inputs().iter().map(|&x| HyperDual64::from(x)).collect();
        for i in 0..n {
            for j in i..n {
                let pd: Vec<HyperDual64> = pars
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| HyperDual64::new(x, f64::from(k == i), f64::from(k == j), 0.0))
                    .collect();
                let r = m.twice_nll_generic(&pd, &dd, &id).unwrap();
                let names = m.par_names();
                assert!(
                    (r.eps1eps2 - h[i * n + j]).abs() <= 1e-8 * (1.0 + r.eps1eps2.abs()),
                    "{name}: d2/d{}d{}: fast {} vs hyper-dual {}",
                    names[i],
                    names[j],
                    h[i * n + j],
                    r.eps1eps2
                );
                let (a, b) = (h[i * n + j], h[j * n + i]);
                assert!(
                    (a - b).abs() <= 1e-14 * a.abs().max(b.abs()),
                    "{name}: asymmetric Hessian {a} {b}"
                );
                if j == i {
                    assert!(
                        (r.eps1 - g[i]).abs() <= 1e-8 * (1.0 + g[i].abs()),
                        "{name}: d/d{}: fast {} vs hyper-dual {}",
                        names[i],
                        g[i],
                        r.eps1
                    );
                }
            }
        }
    }
}

#[test]
fn parameters_inits_bounds_and_constraints() {
    let vs = variants();
    let m = model(&vs[0].1);
    let i = m.par_index("tf[0]").unwrap();
    assert_eq!(m.init()[i], 1.0);
    assert_eq!(m.bounds()[i], (0.0, 100.0));
    assert!(m.par_index("tf[5]").is_some() && m.par_index("tf[6]").is_none());
    let m = model(&vs[2].1);
    let i = m.par_index("qcdfail[3]").unwrap();
    assert_eq!((m.init()[i], m.bounds()[i]), (0.0, (-10.0, 10.0)));
    assert_eq!(m.init()[m.par_index("tf[8]").unwrap()], 0.0);
    // The decorrelated constraint: 4 unit Gaussians with auxdata 0 next to lumi_like's.
    let m = model(&vs[3].1);
    let aux = m.observed_data()[2 * NX * NY..].to_vec();
    assert_eq!(aux, vec![0.0; 5]);
    let i = m.par_index("tf[2]").unwrap();
    assert_eq!(m.bounds()[i], (-5.0, 5.0));
    // At z = 0 the pass/fail ratio is exp(φ·mean): at the corner u = v = 0 that is exp(-3).
    let pars = m.init();
    let rates = m.expected_data(&pars).unwrap();
    let n0 = fail_n0();
    let sig_pass0 = 1.0;
    assert!(((rates[NX * NY] - sig_pass0) / n0[0] - (-3.0f64).exp()).abs() < 1e-14);
}

#[test]
fn workspace_round_trips_through_json() {
    for (name, ws) in variants() {
        let w = Workspace::from_value(&ws).unwrap();
        let back = Workspace::from_value(&w.to_value()).unwrap();
        assert_eq!(w, back, "{name}");
        let (m1, m2) = (model(&ws), model(&back.to_value()));
        let p = point(&m1);
        assert_eq!(
            m1.twice_nll(&p, &m1.observed_data()).unwrap(),
            m2.twice_nll(&p, &m2.observed_data()).unwrap()
        );
    }
}

fn err(ws: &Value) -> String {
    match Workspace::from_value(ws).and_then(|w| Model::new(&w, &ModelOptions::default())) {
        Ok(_) => panic!("accepted a bad workspace"),
        Err(e) => e.to_string(),
    }
}

fn tf(data: Value) -> Value {
    json!({"name": "tf", "type": "transferfactor", "data": data})
}

#[test]
fn bad_input_gives_located_errors() {
    let mut ws = workspace(
        tf(json!({"basis": "bernstein", "order": [2, 1]})),
        shapefactor(),
    );
    ws["channels"][1]
        .as_object_mut()
        .unwrap()
        .remove("coordinates");
    let e = err(&ws);
    assert!(
        e.contains("channels[1].samples[0].modifiers[1] (transferfactor 'tf')")
            && e.contains("bin coordinates of channel 'pass'"),
        "{e}"
    );

    let e = err(&workspace(
        tf(json!({"basis": "bernstein", "order": [5, 1]})),
        shapefactor(),
    ));
    assert!(
        e.contains("data.order[0]") && e.contains("order 5 on axis 'msd' needs at least 6 distinct coordinate values, channel 'fail' has 5")
            || e.contains("channel 'pass' has 5"),
        "{e}"
    );

    let e = err(&workspace(
        tf(json!({"basis": "bernstein", "order": [2]})),
        shapefactor(),
    ));
    assert!(
        e.contains("has 1 orders") && e.contains("2 coordinate axes (msd, pt)"),
        "{e}"
    );

    let e = err(&workspace(
        tf(json!({"basis": "legendre", "order": [2, 1]})),
        shapefactor(),
    ));
    assert!(
        e.contains("data.basis") && e.contains("unknown basis 'legendre'"),
        "{e}"
    );

    let e = err(&workspace(
        tf(json!({"basis": "bernstein", "order": [1, 1], "mc": [1.0, 2.0]})),
        shapefactor(),
    ));
    assert!(
        e.contains("data.mc") && e.contains("has 2 bins, channel 'pass' has 20"),
        "{e}"
    );

    let e = err(&workspace(
        tf(
            json!({"basis": "polynomial", "order": [1, 0], "constraint": {"mean": [0.0, 0.0], "cov": [[1.0, 2.0], [2.0, 1.0]]}}),
        ),
        shapefactor(),
    ));
    assert!(
        e.contains("constraint.cov") && e.contains("not positive definite"),
        "{e}"
    );

    let mut ws = workspace(
        tf(json!({"basis": "bernstein", "order": [1, 1]})),
        shapefactor(),
    );
    ws["channels"][0]["coordinates"]["bins"][3] = json!([40.0]);
    let e = err(&ws);
    assert!(
        e.contains("channels[0].coordinates.bins[3] ('fail')")
            && e.contains("expected one per axis (2)"),
        "{e}"
    );

    let mut ws = workspace(
        tf(json!({"basis": "bernstein", "order": [1, 1]})),
        shapefactor(),
    );
    ws["channels"][1]["coordinates"]["ranges"] = json!([[40.0, 70.0], [500.0, 800.0]]);
    let e = err(&ws);
    assert!(
        e.contains("coordinates.bins[16][0]") && e.contains("outside its range [40, 70]"),
        "{e}"
    );

    let mut ws = workspace(
        tf(json!({"basis": "bernstein", "order": [1, 1]})),
        shapefactor(),
    );
    ws["channels"][1]["samples"][1]["modifiers"]
        .as_array_mut()
        .unwrap()
        .push(tf(json!({"basis": "bernstein", "order": [2, 1]})));
    let e = err(&ws);
    assert!(
        e.contains("transferfactor 'tf' is shared with") && e.contains("different basis, order"),
        "{e}"
    );

    let mut n0 = fail_n0();
    let ws0 = workspace(
        tf(json!({"basis": "bernstein", "order": [1, 1]})),
        json!({"name": "qcdfail", "type": "logshapefactor", "data": n0.clone()}),
    );
    let mut ws = ws0.clone();
    n0[4] = 1.0;
    ws["channels"][1]["samples"][0]["modifiers"][0]["data"] = json!(n0);
    let e = err(&ws);
    assert!(
        e.contains("logshapefactor 'qcdfail' is shared with")
            && e.contains("reference counts differ"),
        "{e}"
    );
    let mut ws = ws0;
    ws["channels"][0]["samples"][0]["modifiers"][0]["data"][2] = json!(-1.0);
    let e = err(&ws);
    assert!(
        e.contains("data[2]") && e.contains("reference count must be finite and > 0"),
        "{e}"
    );
}

#[test]
fn fits_converge_to_a_stationary_interior_point() {
    use anagrad::infer::fit::{fit, FitOptions, FitSetup};
    for (name, ws) in variants() {
        let m = model(&ws);
        let data = m.observed_data();
        let r = fit(&m, &data, &FitSetup::from_model(&m), &FitOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.grad_norm < 1e-6, "{name}: gradient {}", r.grad_norm);
        let unc = r.uncertainties().unwrap();
        let b = m.bounds();
        for (i, n) in m.par_names().iter().enumerate() {
            assert!(
                r.pars[i] > b[i].0 && r.pars[i] < b[i].1,
                "{name}: {n} at a bound"
            );
            assert!(
                unc[i].is_finite() && unc[i] > 0.0,
                "{name}: {n} uncertainty {}",
                unc[i]
            );
        }
        eprintln!(
            "{name}: twice_nll {} mu {} iterations {}",
            r.twice_nll,
            r.pars[m.poi_index().unwrap()],
            r.iterations
        );
    }
}

#[test]
fn blinded_bins_leave_the_likelihood_but_keep_their_prediction() {
    let (_, ws) = &variants()[1];
    let window: Vec<usize> = (2 * NY..3 * NY).collect();
    let mut wb = ws.clone();
    wb["channels"][1]["blinded"] = json!(window);
    let (m, mb) = (model(ws), model(&wb));
    let p = point(&m);
    let data = m.observed_data();
    let rates = m.expected_data(&p).unwrap();
    assert_eq!(rates, mb.expected_data(&p).unwrap());
    // pass is the second channel in pyhf's (sorted) order.
    let removed: f64 = window
        .iter()
        .map(|&b| {
            let (n, l) = (data[NX * NY + b], rates[NX * NY + b]);
            -2.0 * (n * l.ln() - l - statrs::function::gamma::ln_gamma(n + 1.0))
        })
        .sum();
    let (full, blind) = (
        m.twice_nll(&p, &data).unwrap(),
        mb.twice_nll(&p, &data).unwrap(),
    );
    assert!(
        (full - removed - blind).abs() < 1e-9,
        "{full} - {removed} != {blind}"
    );
    let n = m.n_pars();
    let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
    let v = mb.twice_nll_grad_hess(&p, &data, &mut g, &mut h).unwrap();
    assert!((v - blind).abs() < 1e-9);
    assert_eq!(
        Workspace::from_value(&wb).unwrap().to_value()["channels"][1]["blinded"],
        json!(window)
    );

    // Blinding a bin in both regions leaves its fail yield unconstrained.
    let mut w2 = wb.clone();
    w2["channels"][0]["blinded"] = json!([2 * NY + 1]);
    let e = err(&w2);
    assert!(
        e.contains("parameter 'qcdfail[9]' acts only on blinded bins"),
        "{e}"
    );
    let mut w3 = wb;
    w3["channels"][1]["blinded"] = json!([3, 99]);
    let e = err(&w3);
    assert!(
        e.contains("channels[1].blinded[1]") && e.contains("bin 99 does not exist"),
        "{e}"
    );
}

/// Losses through the transfer-factor fits (observed CLs, Z0 on the Asimov
/// data of the conditional fit, σ_μ): their exact gradients w.r.t. the qcd
/// templates of both regions, the signal template, TF_MC and the observed
/// pass data match central finite differences with refits.
#[test]
fn losses_through_transfer_fits_match_finite_differences() {
    use anagrad::grad::{AsimovSource, InputSel, Loss, LossKind, Template};
    use anagrad::infer::teststat::TestStat;
    let (_, ws) = &variants()[1];
    let ws = Workspace::from_value(ws).unwrap();
    let template = Template::from_workspace(&ws, &ModelOptions::default())
        .unwrap()
        .with_input(InputSel::nominal("fail", "qcd"))
        .unwrap()
        .with_input(InputSel::nominal("pass", "qcd"))
        .unwrap()
        .with_input(InputSel::nominal("pass", "sig"))
        .unwrap()
        .with_input(InputSel::transfer_mc("pass", "qcd", "tf"))
        .unwrap()
        .with_input(InputSel::observed("pass"))
        .unwrap();
    let values = template.current_values();
    let losses = [
        Loss::new(
            template.clone(),
            LossKind::ObservedCls {
                test_mu: 1.0,
                stat: TestStat::QmuTilde,
            },
        ),
        Loss::new(template.clone(), LossKind::Z0).with_asimov(AsimovSource::ConditionalFit),
        Loss::new(template.clone(), LossKind::SigmaMu { hyp_mu: 1.0 }),
        Loss::new(template.clone(), LossKind::ObservedNll { poi: None }),
        Loss::new(template, LossKind::ObservedNll { poi: Some(0.0) }),
    ];
    for loss in &losses {
        let v = loss.evaluate(&values, true).unwrap();
        let g = v.grad.unwrap();
        let mut worst: f64 = 0.0;
        // Every 7th value covers all five inputs (20 values each).
        for k in (0..values.len()).step_by(7) {
            let h = 1e-4 * values[k].abs().max(1e-3);
            let mut up = values.clone();
            up[k] += h;
            let mut dn = values.clone();
            dn[k] -= h;
            let fd = (loss.evaluate(&up, false).unwrap().value
                - loss.evaluate(&dn, false).unwrap().value)
                / (2.0 * h);
            let scale = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            let rel = (g[k] - fd).abs() / scale;
            worst = worst.max(rel);
            assert!(
                rel <= 1e-5,
                "{:?}: d/dvalue[{k}] exact {} vs fd {fd} (rel. to max |grad| {scale}: {rel:e})",
                loss.kind(),
                g[k]
            );
        }
        eprintln!(
            "{:?}: value {} worst rel. deviation {worst:e}",
            loss.kind(),
            v.value
        );
    }
}
