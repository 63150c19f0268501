//! CUDA bKDE against the CPU path (only with `--features cuda`, on a machine
//! with an NVIDIA GPU; run by scripts/gpu-check.sh).
#![cfg(feature = "cuda")]

use anagrad::ops::hist::{self, BkdeOptions, Outside};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn close(what: &str, a: &[f64], b: &[f64], rtol: f64) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let dev = a
        .iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale;
    println!("{what}: max rel deviation {dev:.2e}");
    assert!(dev <= rtol, "{what}: {dev:e} > {rtol:e}");
}

/// Value and all three gradients on `dev` for (S × N) or (N) inputs.
fn run(
    dev: &Device,
    x: &Tensor,
    w: Option<&Tensor>,
    e: &Tensor,
    g: &Tensor,
    o: &BkdeOptions,
) -> [Vec<f64>; 4] {
    let xv = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
    let wv = w.map(|w| Var::from_tensor(&w.to_device(dev).unwrap()).unwrap());
    let ev = Var::from_tensor(&e.to_device(dev).unwrap()).unwrap();
    let wt = wv.as_ref().map(|v| v.as_tensor());
    let c = if x.rank() == 1 {
        hist::bkde(xv.as_tensor(), wt, ev.as_tensor(), o).unwrap()
    } else {
        hist::bkde_multi(xv.as_tensor(), wt, ev.as_tensor(), o).unwrap()
    };
    let loss = (&c * g.to_device(dev).unwrap()).unwrap().sum_all().unwrap();
    let gr = loss.backward().unwrap();
    [
        v64(&c),
        v64(gr.get(xv.as_tensor()).unwrap()),
        wv.as_ref()
            .map_or(vec![], |v| v64(gr.get(v.as_tensor()).unwrap())),
        v64(gr.get(ev.as_tensor()).unwrap()),
    ]
}

#[test]
fn cuda_matches_cpu() {
    let gpu = Device::new_cuda(0).expect("a CUDA device");
    let mut rng = StdRng::seed_from_u64(99);
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
        for &(s, n, b) in &[
            (1usize, 100_000usize, 20usize),
            (3, 20_000, 50),
            (2, 1000, 300),
        ] {
            let x: Vec<f64> = (0..s * n).map(|_| rng.random_range(-0.2..1.2)).collect();
            let w: Vec<f64> = (0..s * n).map(|_| rng.random_range(0.0..2.0)).collect();
            let e: Vec<f64> = (0..=b).map(|k| k as f64 / b as f64).collect();
            let g: Vec<f64> = (0..s * b).map(|_| rng.random_range(-1.0..1.0)).collect();
            let shape: Vec<usize> = if s == 1 { vec![n] } else { vec![s, n] };
            let gshape: Vec<usize> = if s == 1 { vec![b] } else { vec![s, b] };
            let t = |v: &[f64], sh: &[usize]| {
                Tensor::from_slice(v, sh, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap()
            };
            let (xt, wt, et, gt) = (
                t(&x, &shape),
                t(&w, &shape),
                t(&e, &[b + 1]),
                t(&g, &gshape),
            );
            for outside in [Outside::Drop, Outside::Fold] {
                for weighted in [true, false] {
                    let o = BkdeOptions::new(0.7 / b as f64).outside(outside);
                    let wo = weighted.then_some(&wt);
                    let cpu = run(&Device::Cpu, &xt, wo, &et, &gt, &o);
                    let cuda = run(&gpu, &xt, wo, &et, &gt, &o);
                    let tag =
                        format!("{dtype:?} S={s} N={n} B={b} {outside:?} weighted={weighted}");
                    close(&format!("{tag} counts"), &cuda[0], &cpu[0], tol);
                    close(&format!("{tag} dx"), &cuda[1], &cpu[1], tol);
                    close(&format!("{tag} dw"), &cuda[2], &cpu[2], tol);
                    close(&format!("{tag} de"), &cuda[3], &cpu[3], tol);
                }
            }
        }
    }
}

#[test]
fn cuda_bad_input_and_empty() {
    let gpu = Device::new_cuda(0).expect("a CUDA device");
    let e = Tensor::new(&[0.0f64, 1.0, 2.0], &gpu).unwrap();
    let bad = Tensor::new(&[0.5f64, f64::NAN], &gpu).unwrap();
    assert!(matches!(
        hist::bkde(&bad, None, &e, &BkdeOptions::new(0.1)),
        Err(anagrad::Error::Op { .. })
    ));
    let empty = Tensor::zeros(0, DType::F64, &gpu).unwrap();
    let c = hist::bkde(&empty, None, &e, &BkdeOptions::new(0.1)).unwrap();
    assert_eq!(v64(&c), vec![0.0, 0.0]);
}
