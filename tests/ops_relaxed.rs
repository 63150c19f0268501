//! Parity with relaxed 0.4.0 (`relaxed.hist`, `relaxed.cut`; JAX, float64):
//! values and gradients from tests/fixtures/relaxed/generate.py.

use anagrad::ops::cut::{self, Keep};
use anagrad::ops::hist::{self, BkdeOptions, Outside};
use candle_core::{Device, Tensor, Var};
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/relaxed/reference.json"
    ))
    .expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn vec(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// max |a − b| / max |b|
fn rel_dev(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale
}

#[test]
fn hist_matches_relaxed_values_and_gradients() {
    let fx = fixture();
    let cases = fx["hist"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let (mut worst_c, mut worst_gx, mut worst_ge) = (0.0f64, 0.0f64, 0.0f64);
    let (mut ours_vs_mp, mut relaxed_vs_mp) = (0.0f64, 0.0f64);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let data = vec(&c["data"]);
        let edges = vec(&c["edges"]);
        let g = vec(&c["cotangent"]);
        let opts = BkdeOptions::new(c["bandwidth"].as_f64().unwrap())
            .outside(if c["reflect_infinities"].as_bool().unwrap() {
                Outside::Fold
            } else {
                Outside::Drop
            })
            .density(c["density"].as_bool().unwrap());
        let xv = Var::new(data.as_slice(), &Device::Cpu).unwrap();
        let ev = Var::new(edges.as_slice(), &Device::Cpu).unwrap();
        let counts = hist::bkde(xv.as_tensor(), None, ev.as_tensor(), &opts).unwrap();
        let got = v64(&counts);
        let loss = (counts * Tensor::new(g.as_slice(), &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let gx = v64(grads.get(xv.as_tensor()).unwrap());
        let ge = v64(grads.get(ev.as_tensor()).unwrap());

        let want = vec(&c["counts"]);
        let dc = rel_dev(&got, &want);
        let dx = rel_dev(&gx, &vec(&c["grad_data"]));
        let de = rel_dev(&ge, &vec(&c["grad_edges"]));
        assert!(
            dc <= 1e-10,
            "{name}: counts differ by {dc:e}: {got:?} vs {want:?}"
        );
        assert!(dx <= 1e-10, "{name}: d/ddata differs by {dx:e}");
        assert!(de <= 1e-10, "{name}: d/dedges differs by {de:e}");
        worst_c = worst_c.max(dc);
        worst_gx = worst_gx.max(dx);
        worst_ge = worst_ge.max(de);
        if let Some(mp) = c.get("counts_mpmath") {
            let mp = vec(mp);
            ours_vs_mp = ours_vs_mp.max(rel_dev(&got, &mp));
            relaxed_vs_mp = relaxed_vs_mp.max(rel_dev(&want, &mp));
        }
    }
    println!(
        "relaxed parity: counts {worst_c:.1e}, d/dx {worst_gx:.1e}, d/de {worst_ge:.1e}; \
         vs mpmath: anagrad {ours_vs_mp:.1e}, relaxed {relaxed_vs_mp:.1e}"
    );
    // both are exact to a few ulp of the largest bin
    assert!(ours_vs_mp <= 1e-13, "anagrad vs mpmath {ours_vs_mp:e}");
}

#[test]
fn cut_matches_relaxed_values_and_gradients() {
    let fx = fixture();
    for c in fx["cut"].as_array().unwrap() {
        let keep = if c["keep"].as_str().unwrap() == "above" {
            Keep::Above
        } else {
            Keep::Below
        };
        let data = vec(&c["data"]);
        let g = vec(&c["cotangent"]);
        let xv = Var::new(data.as_slice(), &Device::Cpu).unwrap();
        let tv = Var::new(c["threshold"].as_f64().unwrap(), &Device::Cpu).unwrap();
        let sv = Var::new(c["slope"].as_f64().unwrap(), &Device::Cpu).unwrap();
        let w = cut::soft_cut(xv.as_tensor(), tv.as_tensor(), sv.as_tensor(), keep).unwrap();
        let got = v64(&w);
        let loss = (w * Tensor::new(g.as_slice(), &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        assert!(rel_dev(&got, &vec(&c["weights"])) <= 1e-12);
        assert!(
            rel_dev(
                &v64(grads.get(xv.as_tensor()).unwrap()),
                &vec(&c["grad_data"])
            ) <= 1e-10
        );
        let gt = grads
            .get(tv.as_tensor())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let gs = grads
            .get(sv.as_tensor())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let (wt, ws) = (
            c["grad_threshold"].as_f64().unwrap(),
            c["grad_slope"].as_f64().unwrap(),
        );
        assert!(
            (gt - wt).abs() <= 1e-10 * wt.abs().max(1.0),
            "threshold grad {gt} vs {wt}"
        );
        assert!(
            (gs - ws).abs() <= 1e-10 * ws.abs().max(1.0),
            "slope grad {gs} vs {ws}"
        );
    }
}
