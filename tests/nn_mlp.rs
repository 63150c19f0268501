//! The MLP builder: seeded initialisation, shapes, output transfer functions
//! and configuration errors.

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
