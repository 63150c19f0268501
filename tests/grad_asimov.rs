//! Z_A: value against independent expansions, gradient (through candle's
//! backward) against central finite differences, and input checks.

use anagrad::grad::{asimov_significance, asimov_significance_host, YieldFloor};
use candle_core::{DType, Device, Tensor, Var};

fn z_naive(s: &[f64], b: &[f64]) -> f64 {
    let q: f64 = s
        .iter()
        .zip(b)
        .map(|(&s, &b)| (s + b) * (1.0 + s / b).ln() - s)
        .sum();
    (2.0 * q).sqrt()
}

#[test]
fn value_matches_formula_and_small_signal_expansion() {
    let s = [5.0, 2.0, 0.3, 12.0];
    let b = [50.0, 10.0, 0.7, 3.0];
    let (z, _) = asimov_significance_host(&s, &b, YieldFloor::None, false).unwrap();
    // x = s/b ≥ 0.1 here, where the direct formula is accurate to ~1e-15.
    assert!((z - z_naive(&s, &b)).abs() < 1e-13 * z);

    // s/b = 1e-6: Z² = 2 b (x²/2 − x³/6 + x⁴/12 − …), exact to 1e-24 relative
    // with three terms; the naive formula keeps only ~4 digits here.
    let (s1, b1) = (1e-4, 100.0);
    let x: f64 = s1 / b1;
    let expected = (2.0 * b1 * (x * x / 2.0 - x.powi(3) / 6.0 + x.powi(4) / 12.0)).sqrt();
    let (z1, _) = asimov_significance_host(&[s1], &[b1], YieldFloor::None, false).unwrap();
    assert!(
        ((z1 - expected) / expected).abs() < 1e-14,
        "{z1} vs {expected}"
    );
    let naive = z_naive(&[s1], &[b1]);
    assert!(
        ((naive - expected) / expected).abs() > 1e-8,
        "naive is inaccurate here"
    );
}

#[test]
fn gradient_through_backward_matches_central_differences() {
    let s0: Vec<f64> = vec![5.0, 2.0, 0.03, 12.0, 1e-3];
    let b0: Vec<f64> = vec![50.0, 10.0, 0.7, 3.0, 40.0];
    let dev = Device::Cpu;
    let s = Var::from_slice(&s0, 5, &dev).unwrap();
    let b = Var::from_slice(&b0, 5, &dev).unwrap();
    let z = asimov_significance(s.as_tensor(), b.as_tensor(), YieldFloor::None).unwrap();
    let grads = z.backward().unwrap();
    let gs = grads.get(&s).unwrap().to_vec1::<f64>().unwrap();
    let gb = grads.get(&b).unwrap().to_vec1::<f64>().unwrap();
    let f = |s: &[f64], b: &[f64]| {
        asimov_significance_host(s, b, YieldFloor::None, false)
            .unwrap()
            .0
    };
    for i in 0..5 {
        for (which, g) in [(0, gs[i]), (1, gb[i])] {
            let base = if which == 0 { s0[i] } else { b0[i] };
            let h = 1e-5 * base.max(1.0);
            let (mut sp, mut sm, mut bp, mut bm) = (s0.clone(), s0.clone(), b0.clone(), b0.clone());
            if which == 0 {
                sp[i] += h;
                sm[i] -= h;
            } else {
                bp[i] += h;
                bm[i] -= h;
            }
            let fd = (f(&sp, &bp) - f(&sm, &bm)) / (2.0 * h);
            assert!(
                // 1e-10 absolute: the FD round-off floor (ε·Z/h) for tiny gradients
                (g - fd).abs() <= 1e-7 * g.abs() + 1e-10,
                "bin {i} input {which}: grad {g} fd {fd}"
            );
        }
    }
}

#[test]
fn f32_inputs_and_upstream_graph() {
    // Z_A of yields that are themselves computed: the gradient flows through.
    let dev = Device::Cpu;
    let w = Var::from_slice(&[2.0f32, 3.0], 2, &dev).unwrap();
    let s = w.as_tensor().affine(1.5, 0.0).unwrap();
    let b = Tensor::new(&[20.0f32, 30.0], &dev).unwrap();
    let z = asimov_significance(&s, &b, YieldFloor::None).unwrap();
    assert_eq!(z.dtype(), DType::F32);
    let g = z.backward().unwrap();
    let gw = g.get(&w).unwrap().to_vec1::<f32>().unwrap();
    let (zz, gr) =
        asimov_significance_host(&[3.0, 4.5], &[20.0, 30.0], YieldFloor::None, true).unwrap();
    let (ds, _) = gr.unwrap();
    assert!((z.to_scalar::<f32>().unwrap() as f64 - zz).abs() < 1e-6);
    for i in 0..2 {
        assert!((gw[i] as f64 - 1.5 * ds[i]).abs() < 1e-6);
    }
}

#[test]
fn bad_yields_are_errors_and_floor_is_applied() {
    assert!(asimov_significance_host(&[1.0], &[0.0], YieldFloor::None, false).is_err());
    assert!(asimov_significance_host(&[-1.0], &[2.0], YieldFloor::None, false).is_err());
    assert!(asimov_significance_host(&[1.0, 2.0], &[2.0], YieldFloor::None, false).is_err());
    assert!(asimov_significance_host(&[f64::NAN], &[2.0], YieldFloor::None, false).is_err());
    // Z_A = 0: the value is fine, the gradient is not defined.
    assert!(asimov_significance_host(&[0.0], &[2.0], YieldFloor::None, false).is_ok());
    assert!(asimov_significance_host(&[0.0], &[2.0], YieldFloor::None, true).is_err());
    // With the neos floor an empty background bin is usable and equals the
    // unfloored computation on shifted yields.
    let (z, _) = asimov_significance_host(&[1.0], &[0.0], YieldFloor::NEOS, false).unwrap();
    let (z2, _) = asimov_significance_host(&[1.001], &[0.001], YieldFloor::None, false).unwrap();
    assert_eq!(z, z2);
}

mod uncertain {
    use anagrad::grad::{
        asimov_significance_host, asimov_significance_uncertain,
        asimov_significance_uncertain_host, InputSel, Loss, LossKind, Template, YieldFloor,
    };
    use anagrad::hf::{ModelOptions, Workspace};
    use candle_core::{Device, Var};
    use serde_json::json;

    /// Cowan's formula is the Asimov q0 of a Poisson auxiliary measurement of
    /// the background: exactly pyhf's shapesys (τ = (b/σ)²). Compare with the
    /// full pipeline (`LossKind::Z0`: fits, envelope gradients) on 3 bins,
    /// values and gradients w.r.t. s, b and σ.
    #[test]
    fn equals_z0_of_the_shapesys_model() {
        let s = [3.0, 7.0, 12.0];
        let b = [50.0, 20.0, 6.0];
        let sig = [5.0, 3.0, 2.0];
        let ws = Workspace::from_value(&json!({
            "channels": [{"name": "c", "samples": [
                {"name": "signal", "data": s, "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
                {"name": "bkg", "data": b, "modifiers": [{"name": "u", "type": "shapesys", "data": sig}]}]}],
            "observations": [{"name": "c", "data": [1.0, 1.0, 1.0]}],
            "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
            "version": "1.0.0"
        }))
        .unwrap();
        let t = Template::from_workspace(&ws, &ModelOptions::default())
            .unwrap()
            .with_input(InputSel::nominal("c", "signal"))
            .unwrap()
            .with_input(InputSel::nominal("c", "bkg"))
            .unwrap()
            .with_input(InputSel::uncertainty("c", "bkg", "u"))
            .unwrap();
        let x = t.current_values();
        let full = Loss::new(t, LossKind::Z0).evaluate(&x, true).unwrap();
        let (z, g) =
            asimov_significance_uncertain_host(&s, &b, &sig, YieldFloor::None, true).unwrap();
        assert!(((z - full.value) / z).abs() < 1e-9, "{z} vs {}", full.value);
        let gf = full.grad.unwrap();
        let g = g.unwrap();
        let norm = gf.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..9 {
            assert!(
                (g[i] - gf[i]).abs() < 1e-8 * norm,
                "{i}: {} vs {}",
                g[i],
                gf[i]
            );
        }
        // and it is below the no-uncertainty Z_A, approaching it as σ → 0
        let (z0, _) = asimov_significance_host(&s, &b, YieldFloor::None, false).unwrap();
        assert!(z < z0);
        let tiny = [1e-4; 3];
        let (zt, _) =
            asimov_significance_uncertain_host(&s, &b, &tiny, YieldFloor::None, false).unwrap();
        assert!(((zt - z0) / z0).abs() < 1e-8, "{zt} vs {z0}");
    }

    #[test]
    fn gradient_through_backward_and_errors() {
        let dev = Device::Cpu;
        let s = Var::from_slice(&[3.0f64, 7.0], 2, &dev).unwrap();
        let b = Var::from_slice(&[50.0f64, 20.0], 2, &dev).unwrap();
        let u = Var::from_slice(&[5.0f64, 3.0], 2, &dev).unwrap();
        let z = asimov_significance_uncertain(
            s.as_tensor(),
            b.as_tensor(),
            u.as_tensor(),
            YieldFloor::None,
        )
        .unwrap();
        let grads = z.backward().unwrap();
        let f = |v: &[f64]| {
            asimov_significance_uncertain_host(
                &v[0..2],
                &v[2..4],
                &v[4..6],
                YieldFloor::None,
                false,
            )
            .unwrap()
            .0
        };
        let x = [3.0, 7.0, 50.0, 20.0, 5.0, 3.0];
        let got: Vec<f64> = [&s, &b, &u]
            .iter()
            .flat_map(|v| grads.get(v).unwrap().to_vec1::<f64>().unwrap())
            .collect();
        for i in 0..6 {
            let h = 1e-5 * x[i];
            let (mut p, mut m) = (x, x);
            p[i] += h;
            m[i] -= h;
            let fd = (f(&p) - f(&m)) / (2.0 * h);
            assert!(
                (got[i] - fd).abs() < 1e-7 * fd.abs() + 1e-10,
                "{i}: {} vs {fd}",
                got[i]
            );
        }
        assert!(asimov_significance_uncertain_host(
            &[1.0],
            &[2.0],
            &[0.0],
            YieldFloor::None,
            false
        )
        .is_err());
        assert!(asimov_significance_uncertain_host(
            &[1.0],
            &[0.0],
            &[1.0],
            YieldFloor::None,
            false
        )
        .is_err());
        assert!(asimov_significance_uncertain_host(
            &[1.0, 2.0],
            &[2.0],
            &[1.0],
            YieldFloor::None,
            false
        )
        .is_err());
    }
}
