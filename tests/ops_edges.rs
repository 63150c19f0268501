//! Learnable bin edges: monotone under any logits, fixed outer edges,
//! differentiable through the bKDE, and an optimiser step moves them.

use anagrad::ops::edges::LearnableEdges;
use anagrad::ops::hist::{self, BkdeOptions};
use candle_core::{DType, Device, Tensor};
use candle_nn::Optimizer;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

#[test]
fn uniform_and_from_edges() {
    let e = LearnableEdges::uniform(0.0, 1.0, 4, DType::F64, &Device::Cpu).unwrap();
    let v = e.to_vec().unwrap();
    let want = [0.0, 0.25, 0.5, 0.75, 1.0];
    for (a, b) in v.iter().zip(&want) {
        assert!((a - b).abs() < 1e-15);
    }
    let given = [-1.0, -0.2, 0.3, 4.0];
    let f = LearnableEdges::from_edges(&given, DType::F64, &Device::Cpu).unwrap();
    for (a, b) in f.to_vec().unwrap().iter().zip(&given) {
        assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    }
    assert_eq!(f.n_bins(), 3);
    assert_eq!(f.range(), (-1.0, 4.0));
    assert!(LearnableEdges::from_edges(&[0.0, 0.0, 1.0], DType::F64, &Device::Cpu).is_err());
    // narrower than the floor
    assert!(LearnableEdges::from_edges(&[0.0, 1e-9, 1.0], DType::F64, &Device::Cpu).is_err());
    assert!(LearnableEdges::from_edges_with_floor(
        &[0.0, 1e-9, 1.0],
        0.0,
        DType::F64,
        &Device::Cpu
    )
    .is_ok());
    assert!(LearnableEdges::uniform(1.0, 1.0, 3, DType::F64, &Device::Cpu).is_err());
    assert!(LearnableEdges::uniform(0.0, 1.0, 0, DType::F64, &Device::Cpu).is_err());
    let one = LearnableEdges::uniform(0.0, 2.0, 1, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(one.to_vec().unwrap(), vec![0.0, 2.0]);
}

#[test]
fn monotone_with_fixed_outer_edges_for_any_logits() {
    let mut rng = StdRng::seed_from_u64(13);
    let e = LearnableEdges::uniform(-2.0, 3.0, 6, DType::F64, &Device::Cpu).unwrap();
    for _ in 0..50 {
        let l: Vec<f64> = (0..6).map(|_| rng.random_range(-200.0..200.0)).collect();
        e.var()
            .set(&Tensor::new(l.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
        let v = e.to_vec().unwrap();
        assert_eq!(v[0], -2.0);
        assert_eq!(v[6], 3.0);
        assert!(v.windows(2).all(|p| p[1] > p[0]), "{v:?}");
        // no bin narrower than the floor ε·(hi−lo)/B (up to rounding)
        let floor = e.min_fraction() * 5.0 / 6.0;
        assert!(
            v.windows(2).all(|p| p[1] - p[0] >= floor * (1.0 - 1e-9)),
            "{v:?}"
        );
    }
}

#[test]
fn gradient_reaches_logits_and_optimiser_moves_inner_edges() {
    let mut rng = StdRng::seed_from_u64(14);
    let x: Vec<f64> = (0..2000)
        .map(|_| rng.random_range(0.0f64..1.0).powi(3))
        .collect();
    let xt = Tensor::new(x.as_slice(), &Device::Cpu).unwrap();
    let e = LearnableEdges::uniform(0.0, 1.0, 4, DType::F64, &Device::Cpu).unwrap();
    let before = e.to_vec().unwrap();
    // loss: spread of the yields → pushes edges towards equal-population bins
    let loss_of = |e: &LearnableEdges| -> Tensor {
        let c = (hist::bkde(&xt, None, &e.edges().unwrap(), &BkdeOptions::new(0.02)).unwrap()
            / 2000.0)
            .unwrap();
        let mean = c.mean_all().unwrap();
        c.broadcast_sub(&mean)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let l0 = loss_of(&e).to_scalar::<f64>().unwrap();
    // finite-difference check of d loss / d logits
    let grads = loss_of(&e).backward().unwrap();
    let g = grads
        .get(e.var().as_tensor())
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let base: Vec<f64> = e.var().as_tensor().to_vec1().unwrap();
    for k in 0..4 {
        let mut p = base.clone();
        p[k] += 1e-6;
        e.var()
            .set(&Tensor::new(p.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
        let lp = loss_of(&e).to_scalar::<f64>().unwrap();
        p[k] -= 2e-6;
        e.var()
            .set(&Tensor::new(p.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
        let lm = loss_of(&e).to_scalar::<f64>().unwrap();
        let fd = (lp - lm) / 2e-6;
        assert!(
            (g[k] - fd).abs() <= 1e-5 * fd.abs().max(1.0),
            "logit {k}: {} vs {fd}",
            g[k]
        );
    }
    e.var()
        .set(&Tensor::new(base.as_slice(), &Device::Cpu).unwrap())
        .unwrap();
    let mut opt = candle_nn::SGD::new(vec![e.var().clone()], 0.5).unwrap();
    for _ in 0..30 {
        opt.backward_step(&loss_of(&e)).unwrap();
    }
    let after = e.to_vec().unwrap();
    let l1 = loss_of(&e).to_scalar::<f64>().unwrap();
    assert!(l1 < l0, "loss {l0} → {l1}");
    assert_eq!((after[0], after[4]), (0.0, 1.0));
    assert!(
        after[1] < before[1],
        "first inner edge moves towards the dense region: {after:?}"
    );
}
