//! Sigmoid cuts: gradients w.r.t. data, threshold and slope against central
//! finite differences, products, hard twins, limits and bad inputs.

use anagrad::ops::cut::{self, Cut, Keep};
use anagrad::Error;
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn t64(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn loss(x: &[f64], thr: f64, slope: f64, keep: Keep, g: &[f64]) -> f64 {
    let w = cut::soft_cut(
        &t64(x),
        &Tensor::new(thr, &Device::Cpu).unwrap(),
        &Tensor::new(slope, &Device::Cpu).unwrap(),
        keep,
    )
    .unwrap();
    v64(&w).iter().zip(g).map(|(a, b)| a * b).sum()
}

#[test]
fn gradients_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(11);
    for keep in [Keep::Above, Keep::Below] {
        for &(thr, slope) in &[(0.2, 0.5), (-1.0, 4.0), (0.7, 60.0)] {
            let x: Vec<f64> = (0..40).map(|_| rng.random_range(-3.0..3.0)).collect();
            let g: Vec<f64> = (0..40).map(|_| rng.random_range(-1.0..1.0)).collect();
            let xv = Var::new(x.as_slice(), &Device::Cpu).unwrap();
            let tv = Var::new(thr, &Device::Cpu).unwrap();
            let sv = Var::new(slope, &Device::Cpu).unwrap();
            let w = cut::soft_cut(xv.as_tensor(), tv.as_tensor(), sv.as_tensor(), keep).unwrap();
            let grads = (w * t64(&g))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let dx = v64(grads.get(xv.as_tensor()).unwrap());
            let dt = grads
                .get(tv.as_tensor())
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let ds = grads
                .get(sv.as_tensor())
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let eps = 1e-5 / slope;
            for i in 0..x.len() {
                let mut p = x.clone();
                p[i] += eps;
                let fp = loss(&p, thr, slope, keep, &g);
                p[i] -= 2.0 * eps;
                let fm = loss(&p, thr, slope, keep, &g);
                let fd = (fp - fm) / (2.0 * eps);
                assert!(
                    (dx[i] - fd).abs() <= 1e-6 * (1.0 + fd.abs()) * slope,
                    "dx[{i}] {} vs {fd}",
                    dx[i]
                );
            }
            let fdt = (loss(&x, thr + eps, slope, keep, &g) - loss(&x, thr - eps, slope, keep, &g))
                / (2.0 * eps);
            assert!(
                (dt - fdt).abs() <= 1e-6 * (1.0 + fdt.abs()) * slope,
                "threshold {dt} vs {fdt}"
            );
            let es = 1e-6 * slope;
            let fds = (loss(&x, thr, slope + es, keep, &g) - loss(&x, thr, slope - es, keep, &g))
                / (2.0 * es);
            assert!(
                (ds - fds).abs() <= 1e-6 * (1.0 + fds.abs()),
                "slope {ds} vs {fds}"
            );
        }
    }
}

#[test]
fn values_limits_and_hard_twin() {
    let x = t64(&[-2.0, -0.1, 0.0, 0.1, 2.0, 800.0, -800.0]);
    let c = Cut::constant(0.0, 1.0, Keep::Above, &x).unwrap();
    let w = v64(&c.weights(&x).unwrap());
    assert_eq!(w[2], 0.5);
    assert!((w[0] - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-16);
    assert_eq!(w[5], 1.0);
    assert_eq!(w[6], 0.0); // no overflow to NaN
    let below = v64(&Cut::constant(0.0, 1.0, Keep::Below, &x)
        .unwrap()
        .weights(&x)
        .unwrap());
    for (a, b) in w.iter().zip(&below) {
        assert!((a + b - 1.0).abs() < 1e-15);
    }
    // steep slope → hard cut (away from the threshold)
    let steep = v64(&Cut::constant(0.0, 1e4, Keep::Above, &x)
        .unwrap()
        .weights(&x)
        .unwrap());
    let hard = v64(&cut::hard_cut(&x, 0.0, Keep::Above).unwrap());
    assert_eq!(hard, vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    for (i, (s, h)) in steep.iter().zip(&hard).enumerate() {
        if i != 2 {
            assert!((s - h).abs() < 1e-12);
        }
    }
    let hb = v64(&cut::hard_cut(&x, 0.0, Keep::Below).unwrap());
    for (a, b) in hard.iter().zip(&hb) {
        assert_eq!(a + b, 1.0);
    }
}

#[test]
fn products_of_cuts_are_event_weights() {
    let mut rng = StdRng::seed_from_u64(12);
    let a: Vec<f64> = (0..100).map(|_| rng.random_range(-2.0..2.0)).collect();
    let b: Vec<f64> = (0..100).map(|_| rng.random_range(0.0..5.0)).collect();
    let (ta, tb) = (t64(&a), t64(&b));
    let ca = Cut::constant(0.5, 3.0, Keep::Above, &ta).unwrap();
    let cb = Cut::constant(2.0, 1.5, Keep::Below, &tb).unwrap();
    let w = v64(&cut::soft_cuts(&[(&ta, &ca), (&tb, &cb)]).unwrap());
    for i in 0..100 {
        let want = 1.0 / (1.0 + (-3.0 * (a[i] - 0.5)).exp()) / (1.0 + (1.5 * (b[i] - 2.0)).exp());
        assert!((w[i] - want).abs() < 1e-15);
    }
    let h = v64(&cut::hard_cuts(&[(&ta, &ca), (&tb, &cb)]).unwrap());
    for i in 0..100 {
        assert_eq!(h[i], if a[i] >= 0.5 && b[i] < 2.0 { 1.0 } else { 0.0 });
    }
    // a product is differentiable w.r.t. both thresholds
    let t1 = Var::new(0.5, &Device::Cpu).unwrap();
    let cv = Cut {
        threshold: t1.as_tensor().clone(),
        slope: ca.slope.clone(),
        keep: Keep::Above,
    };
    let p = cut::soft_cuts(&[(&ta, &cv), (&tb, &cb)]).unwrap();
    let grads = p.sum_all().unwrap().backward().unwrap();
    assert!(
        grads
            .get(t1.as_tensor())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            < 0.0
    );
}

fn op_err<T: std::fmt::Debug>(r: anagrad::Result<T>, needle: &str) {
    match r {
        Err(Error::Op { message, .. }) => {
            assert!(message.contains(needle), "'{message}' lacks '{needle}'")
        }
        other => panic!("expected Error::Op with '{needle}', got {other:?}"),
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let x = t64(&[0.0, 1.0]);
    let one = |v: f64| Tensor::new(v, &Device::Cpu).unwrap();
    op_err(
        cut::soft_cut(&t64(&[f64::NAN]), &one(0.0), &one(1.0), Keep::Above),
        "data[0]",
    );
    op_err(
        cut::soft_cut(&x, &one(f64::INFINITY), &one(1.0), Keep::Above),
        "threshold",
    );
    op_err(
        cut::soft_cut(&x, &one(0.0), &one(0.0), Keep::Above),
        "slope",
    );
    op_err(
        cut::soft_cut(&x, &one(0.0), &one(-1.0), Keep::Above),
        "slope",
    );
    op_err(
        cut::soft_cut(&x, &t64(&[0.0, 1.0]), &one(1.0), Keep::Above),
        "one element",
    );
    op_err(
        cut::soft_cut(
            &x,
            &one(0.0).to_dtype(DType::F32).unwrap(),
            &one(1.0),
            Keep::Above,
        ),
        "dtype",
    );
    op_err(cut::hard_cut(&x, f64::NAN, Keep::Above), "threshold");
    op_err(cut::product(&[]), "no weights");
    op_err(cut::product(&[x.clone(), t64(&[1.0])]), "shape");
    // empty data → empty weights
    let e = cut::soft_cut(&t64(&[]), &one(0.0), &one(1.0), Keep::Above).unwrap();
    assert_eq!(e.elem_count(), 0);
}
