//! Parity with relaxed 0.4.0 / JAX on the neos toy (fixture written by
//! `tests/fixtures/neos/generate.py`): values and gradients w.r.t. the four
//! histograms (signal, nominal background, background up, background down) of
//! expected CLs, discovery p0, σ_μ and the generalised variance.
//!
//! Which side is closer to the finite differences: on this toy relaxed's fits
//! are one-dimensional and its L-BFGS-B converges to machine precision, so
//! relaxed's gradients and ours agree to ~1e-12 relative, and both agree with
//! the Richardson-extrapolated central differences (with refits) to the FD's
//! own accuracy (≲ 3e-8 relative); each case below measures and asserts which
//! side is closer, allowing for ties at the FD noise level. relaxed's CLs
//! *value* differs from the precise one by ~2e-12 relative because it
//! computes 1 − Φ(x) by subtraction; ours (and the fixture's `exact_value`)
//! use Φ(−x).

use anagrad::grad::{InputSel, Loss, LossKind, Template, YieldFloor};
use anagrad::hf::{ModelOptions, Workspace};
use anagrad::infer::teststat::TestStat;
use serde_json::{json, Value};

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/neos/neos_ref.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn vecf(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn matf(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(vecf).collect()
}

/// The neos model as a workspace: the fixture's pyhf spec plus a measurement
/// with POI `mu` (pyhf's default bounds) and a placeholder observation.
pub fn neos_template(fx: &Value) -> Template {
    let spec = &fx["pyhf_spec"];
    let nbins = vecf(&fx["histograms"][0]).len();
    let ws = json!({
        "channels": spec["channels"],
        "observations": [{"name": "singlechannel", "data": vec![1.0; nbins]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    });
    let ws = Workspace::from_value(&ws).unwrap();
    Template::from_workspace(&ws, &ModelOptions::default())
        .unwrap()
        .with_floor(YieldFloor::NEOS)
        .with_input(InputSel::nominal("singlechannel", "signal"))
        .unwrap()
        .with_input(InputSel::nominal("singlechannel", "background"))
        .unwrap()
        .with_input(InputSel::histo_hi(
            "singlechannel",
            "background",
            "correlated_bkg_uncertainty",
        ))
        .unwrap()
        .with_input(InputSel::histo_lo(
            "singlechannel",
            "background",
            "correlated_bkg_uncertainty",
        ))
        .unwrap()
}

fn check(name: &str, kind: LossKind) {
    let fx = fixture();
    let q = &fx["quantities"][name];
    let hists = matf(&fx["histograms"]);
    let values: Vec<f64> = hists.concat();
    let loss = Loss::new(neos_template(&fx), kind);
    let ours = loss.evaluate(&values, true).unwrap();
    let g = ours.grad.unwrap();

    let exact = q["exact_value"].as_f64().unwrap();
    let relaxed = q["relaxed_value"].as_f64().unwrap();
    let rel = |a: f64, b: f64| ((a - b) / b).abs();
    assert!(
        rel(ours.value, exact) < 1e-10,
        "{name}: value {} vs exact {exact}",
        ours.value
    );
    assert!(
        rel(ours.value, relaxed) < 1e-9,
        "{name}: value {} vs relaxed {relaxed}",
        ours.value
    );

    let flat = |v: &Value| matf(v).concat();
    let relaxed_g = flat(&q["relaxed_grad"]);
    let exact_g = flat(&q["exact_grad"]);
    let fd_g = flat(&q["fd_grad"]);
    let norm = fd_g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let (mut err_ours, mut err_relaxed) = (0.0f64, 0.0f64);
    for i in 0..g.len() {
        // relative to the largest gradient entry: the FD's absolute accuracy
        // is set by it, not by the (sometimes tiny) entry itself
        let e_exact = (g[i] - exact_g[i]).abs() / norm;
        assert!(
            e_exact < 1e-9,
            "{name}[{i}]: {} vs exact {}",
            g[i],
            exact_g[i]
        );
        err_ours = err_ours.max((g[i] - fd_g[i]).abs() / norm);
        err_relaxed = err_relaxed.max((relaxed_g[i] - fd_g[i]).abs() / norm);
    }
    println!(
        "{name}: max |grad − FD| / max|FD|: anagrad {err_ours:.2e}, relaxed {err_relaxed:.2e} ({} closer)",
        if err_ours <= err_relaxed { "anagrad" } else { "relaxed" }
    );
    assert!(err_ours < 1e-7, "{name}: anagrad vs FD {err_ours:e}");
    // Neither side may be worse than the other beyond the FD noise level.
    assert!(
        err_ours <= err_relaxed + 1e-8,
        "{name}: relaxed closer to FD"
    );
}

#[test]
fn cls_matches_relaxed() {
    check(
        "cls",
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::Qmu,
        },
    );
}

#[test]
fn cls_qtilde_equals_qmu_on_background_only_asimov() {
    check(
        "cls",
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::QmuTilde,
        },
    );
}

#[test]
fn p0_matches_relaxed() {
    check("p0", LossKind::P0);
}

#[test]
fn sigma_mu_matches_relaxed() {
    check("sigma_mu", LossKind::SigmaMu { hyp_mu: 1.0 });
    check("sigma_mu_bonly", LossKind::SigmaMu { hyp_mu: 0.0 });
}

#[test]
fn generalised_variance_matches_reference() {
    check(
        "generalised_variance",
        LossKind::GeneralisedVariance { hyp_mu: 0.0 },
    );
}

/// The whole neos chain on the fixture's network outputs: `ops::hist::bkde`
/// (4 bins on [0, 1], bandwidth 0.09) → neos scaling → CLs, with
/// `loss.backward()` reaching the outputs; compared with relaxed's
/// histograms and its jax.grad w.r.t. the outputs (relaxed.hist + hypotest).
#[test]
fn cls_through_bkde_matches_relaxed_gradient_wrt_network_outputs() {
    use anagrad::ops::hist::{bkde, BkdeOptions};
    use candle_core::{Device, Tensor, Var};

    let fx = fixture();
    let outputs = matf(&fx["outputs"]);
    let hists = matf(&fx["histograms"]);
    let edges = Tensor::new(vecf(&fx["bins"]), &Device::Cpu).unwrap();
    let opts = BkdeOptions::new(fx["bandwidth"].as_f64().unwrap());
    let lumi = fx["lumi"].as_f64().unwrap();
    let names: Vec<String> = fx["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let vars: Vec<Var> = outputs
        .iter()
        .map(|o| Var::from_slice(o, o.len(), &Device::Cpu).unwrap())
        .collect();
    let mut yields = Vec::new();
    for (k, var) in vars.iter().enumerate() {
        let scale = fx["scales"][&names[k]].as_f64().unwrap();
        let n = outputs[k].len() as f64;
        let h = bkde(var.as_tensor(), None, &edges, &opts).unwrap();
        let h = h.affine(scale / n * lumi, 0.0).unwrap();
        for (a, b) in h.to_vec1::<f64>().unwrap().iter().zip(&hists[k]) {
            assert!(
                (a - b).abs() < 1e-12 * b.abs().max(1.0),
                "{names:?}[{k}]: {a} vs {b}"
            );
        }
        yields.push(h);
    }
    let loss = Loss::new(
        neos_template(&fx),
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::Qmu,
        },
    );
    let refs: Vec<&Tensor> = yields.iter().collect();
    let cls = loss.forward(&refs).unwrap();
    let value = cls.to_scalar::<f64>().unwrap();
    let q = &fx["quantities"]["cls"];
    assert!(((value - q["exact_value"].as_f64().unwrap()) / value).abs() < 1e-10);
    let grads = cls.backward().unwrap();
    let want = matf(&q["relaxed_grad_outputs"]);
    let norm = want.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    for (k, var) in vars.iter().enumerate() {
        let g = grads.get(var).unwrap().to_vec1::<f64>().unwrap();
        for (i, (a, b)) in g.iter().zip(&want[k]).enumerate() {
            assert!(
                (a - b).abs() < 1e-9 * norm,
                "sample {k} event {i}: {a} vs relaxed {b}"
            );
        }
    }
}
