//! Binary cross-entropy: values against a direct f64 computation, gradients
//! against the closed form (sigmoid(z) − y)/n, and neos's augmentation.

use anagrad::grad::{bce, BceScores};
use candle_core::{Device, Tensor, Var};

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn reference(sig: &[f64], bkgs: &[&[f64]]) -> f64 {
    let mut total = 0.0;
    let mut n = 0usize;
    for &z in sig {
        total -= sigmoid(z).ln();
        n += 1;
    }
    for b in bkgs {
        for &z in *b {
            total -= (1.0 - sigmoid(z)).ln();
            n += 1;
        }
    }
    total / n as f64
}

#[test]
fn logits_value_and_gradient() {
    let dev = Device::Cpu;
    let sig = [0.3, 2.0, -1.0, 40.0];
    let nom = [-0.5, 1.5, -30.0];
    let up = [0.2, -2.2];
    let down = [3.0];
    let vs = Var::from_slice(&sig, 4, &dev).unwrap();
    let vn = Var::from_slice(&nom, 3, &dev).unwrap();
    let vu = Var::from_slice(&up, 2, &dev).unwrap();
    let vd = Var::from_slice(&down, 1, &dev).unwrap();

    // plain: nominal background only
    let l = bce(vs.as_tensor(), &[vn.as_tensor()], BceScores::Logits).unwrap();
    let want = reference(&sig, &[&nom]);
    assert!((l.to_scalar::<f64>().unwrap() - want).abs() < 1e-14);

    // augmented: nominal + up + down, every event weighted equally
    let l = bce(
        vs.as_tensor(),
        &[vn.as_tensor(), vu.as_tensor(), vd.as_tensor()],
        BceScores::Logits,
    )
    .unwrap();
    let want = reference(&sig, &[&nom, &up, &down]);
    assert!((l.to_scalar::<f64>().unwrap() - want).abs() < 1e-14);
    let g = l.backward().unwrap();
    let n = 10.0;
    for (var, vals, y) in [
        (&vs, &sig[..], 1.0),
        (&vn, &nom[..], 0.0),
        (&vu, &up[..], 0.0),
    ] {
        let gv = g.get(var).unwrap().to_vec1::<f64>().unwrap();
        for (gi, &z) in gv.iter().zip(vals) {
            let want = (sigmoid(z) - y) / n;
            assert!((gi - want).abs() < 1e-15, "{gi} vs {want}");
        }
    }
}

#[test]
fn probabilities_match_logits_after_sigmoid() {
    let dev = Device::Cpu;
    let zs = Tensor::new(&[0.3f64, 2.0, -1.0], &dev).unwrap();
    let zb = Tensor::new(&[-0.5f64, 1.5], &dev).unwrap();
    let a = bce(&zs, &[&zb], BceScores::Logits).unwrap();
    let ps = candle_nn::ops::sigmoid(&zs).unwrap();
    let pb = candle_nn::ops::sigmoid(&zb).unwrap();
    let b = bce(&ps, &[&pb], BceScores::Probabilities).unwrap();
    let (a, b) = (a.to_scalar::<f64>().unwrap(), b.to_scalar::<f64>().unwrap());
    assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    // p = 1 for a background event: clamped, large and finite
    let one = Tensor::new(&[1.0f64], &dev).unwrap();
    let c = bce(&ps, &[&one], BceScores::Probabilities).unwrap();
    let c = c.to_scalar::<f64>().unwrap();
    assert!(c.is_finite() && c > 20.0);
}

#[test]
fn bad_inputs_are_errors() {
    let dev = Device::Cpu;
    let e = Tensor::new(&[0u32; 0], &dev).unwrap();
    let ints = Tensor::new(&[1u32], &dev).unwrap();
    let f = Tensor::new(&[0.5f64], &dev).unwrap();
    let f32t = Tensor::new(&[0.5f32], &dev).unwrap();
    assert!(bce(&ints, &[&f], BceScores::Logits).is_err());
    assert!(bce(&f, &[&f32t], BceScores::Logits).is_err());
    let empty = e.to_dtype(candle_core::DType::F64).unwrap();
    assert!(bce(&empty, &[], BceScores::Logits).is_err());
}
