//! The MLP builder: seeded initialisation, shapes, output transfer functions
//! configuration errors, and the fused layer kernels against candle's own ops.

use anagrad::nn::{Activation, Mlp, MlpConfig, Output};
use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn cfg(sizes: &[usize], output: Output) -> MlpConfig {
    MlpConfig {
        sizes: sizes.to_vec(),
        activation: Activation::Relu,
        output,
    }
}

#[test]
fn seeded_init_is_reproducible_and_glorot_scaled() {
    let dev = Device::Cpu;
    let a = Mlp::new(
        cfg(&[2, 64, 64, 1], Output::Sigmoid),
        DType::F32,
        &dev,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let b = Mlp::new(
        cfg(&[2, 64, 64, 1], Output::Sigmoid),
        DType::F32,
        &dev,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let c = Mlp::new(
        cfg(&[2, 64, 64, 1], Output::Sigmoid),
        DType::F32,
        &dev,
        &mut StdRng::seed_from_u64(2),
    )
    .unwrap();
    assert_eq!(a.n_params(), 2 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
    let w = |m: &Mlp, i: usize| {
        m.layers()[i]
            .w
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(w(&a, 1), w(&b, 1));
    assert_ne!(w(&a, 1), w(&c, 1));
    // 4096 draws with σ = √(2/128) = 0.125: sample std within 5%
    let v = w(&a, 1);
    let n = v.len() as f64;
    let sd = (v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n).sqrt();
    assert!((sd / 0.125 - 1.0).abs() < 0.05, "std {sd}");
}

#[test]
fn forward_shapes_and_outputs() {
    let dev = Device::Cpu;
    let x = Tensor::new(&[[0.5f64, -1.0], [2.0, 0.0], [-3.0, 1.0]], &dev).unwrap();
    let sig = Mlp::new(
        cfg(&[2, 8, 1], Output::Sigmoid),
        DType::F64,
        &dev,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let y = sig.forward(&x).unwrap();
    assert_eq!(y.dims(), &[3, 1]);
    for v in y.flatten_all().unwrap().to_vec1::<f64>().unwrap() {
        assert!(v > 0.0 && v < 1.0);
    }
    let soft = Mlp::new(
        cfg(&[2, 8, 5], Output::Softmax),
        DType::F64,
        &dev,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let p = soft.forward(&x).unwrap();
    assert_eq!(p.dims(), &[3, 5]);
    for row in p.to_vec2::<f64>().unwrap() {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // wrong feature count
    let bad = Tensor::new(&[[1.0f64, 2.0, 3.0]], &dev).unwrap();
    assert!(sig.forward(&bad).is_err());
}

#[test]
fn config_errors() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(1);
    for (sizes, out) in [
        (vec![2], Output::Sigmoid),
        (vec![2, 0, 1], Output::Sigmoid),
        (vec![2, 4, 1], Output::Softmax),
    ] {
        let e = Mlp::new(cfg(&sizes, out), DType::F32, &dev, &mut rng).unwrap_err();
        assert!(matches!(e, anagrad::Error::Config { .. }), "{e}");
    }
}

/// The unfused layer stack written with candle's own ops, as the reference for
/// the fused bias+activation kernels.
fn reference_forward(mlp: &Mlp, x: &Tensor) -> Tensor {
    let last = mlp.layers().len() - 1;
    let mut h = x.clone();
    for (i, l) in mlp.layers().iter().enumerate() {
        h = h
            .matmul(l.w.as_tensor())
            .unwrap()
            .broadcast_add(l.b.as_tensor())
            .unwrap();
        if i < last {
            h = match mlp.config().activation {
                Activation::Relu => h.relu().unwrap(),
                Activation::Tanh => h.tanh().unwrap(),
                Activation::Silu => h.silu().unwrap(),
                Activation::Sigmoid => candle_nn::ops::sigmoid(&h).unwrap(),
            };
        }
    }
    candle_nn::ops::sigmoid(&h).unwrap()
}

/// Fused forward and backward (bias + activation in one pass, activation and
/// bias gradients in parallel passes) agree with candle's unfused ops, for
/// every activation, in f64 (to rounding) and f32, with batches that span
/// several parallel chunks.
#[test]
fn fused_layers_match_unfused_ops() {
    let dev = Device::Cpu;
    for dtype in [DType::F64, DType::F32] {
        for act in [
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Silu,
        ] {
            let config = MlpConfig {
                sizes: vec![3, 40, 24, 1],
                activation: act,
                output: Output::Sigmoid,
            };
            let mut rng = StdRng::seed_from_u64(5);
            let mlp = Mlp::new(config, dtype, &dev, &mut rng).unwrap();
            // non-zero biases, so that their gradient and the bias add are exercised
            for l in mlp.layers() {
                let n = l.b.elem_count();
                let b: Vec<f64> = (0..n).map(|i| 0.1 * ((i % 7) as f64 - 3.0)).collect();
                l.b.set(
                    &Tensor::from_vec(b, n, &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
            }
            let n = 3000; // > one 256-row chunk of the bias-gradient reduction
            let xv: Vec<f64> = (0..n * 3)
                .map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0)
                .collect();
            let x = Tensor::from_vec(xv, (n, 3), &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let gv: Vec<f64> = (0..n).map(|i| ((i * 13 % 17) as f64 - 8.0) / 8.0).collect();
            let g = Tensor::from_vec(gv, (n, 1), &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();

            let fused = mlp.forward(&x).unwrap();
            let reference = reference_forward(&mlp, &x);
            let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
            let diff = |a: &Tensor, b: &Tensor| -> f64 {
                let a = a
                    .to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                let b = b
                    .to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                a.iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max)
                    / scale
            };
            assert!(diff(&fused, &reference) < tol, "{act:?} {dtype:?} forward");

            let gf = (fused * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gr = (reference * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (k, v) in mlp.vars().iter().enumerate() {
                let a = gf.get(v.as_tensor()).expect("fused gradient");
                let b = gr.get(v.as_tensor()).expect("reference gradient");
                let d = diff(a, b);
                assert!(
                    d < tol * 10.0,
                    "{act:?} {dtype:?} gradient of var {k}: {d:e}"
                );
            }
        }
    }
}
