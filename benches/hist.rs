//! bKDE value + gradient throughput (criterion).
//!
//! Each case histograms N weighted events into B bins on [0, 1] and runs the
//! backward pass for d/dx, d/dw and d/de (loss Σ g_b·counts_b). Throughput is
//! reported as *effective* events·edges per second, N·(B+1) per iteration
//! (what the dense O(N·B) formulation evaluates). Events: 95 % uniform on
//! [0, 1], 5 % outside; bandwidth h = half a bin width (0.5/B), so the window
//! covers ~2·6·0.5 = 6 edges per event in f32 and ~9 in f64.
//!
//! Run: `cargo bench --bench hist` (filter e.g. `-- f32/N=1000000`). JAX side
//! by side: `python benches/relaxed_hist_timing.py` (relaxed 0.4.0, jit, CPU).
//!
//! Measured numbers: not yet recorded in this commit.

use std::time::Duration;

use anagrad::ops::hist::{self, BkdeOptions};
use candle_core::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn inputs(n: usize, b: usize, dtype: DType, dev: &Device) -> (Var, Var, Var, Tensor) {
    let mut rng = StdRng::seed_from_u64(n as u64 * 1000 + b as u64);
    let x: Vec<f64> = (0..n)
        .map(|i| {
            if i % 20 == 0 {
                rng.random_range(-0.3..1.3)
            } else {
                rng.random_range(0.0..1.0)
            }
        })
        .collect();
    let w: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
    let e: Vec<f64> = (0..=b).map(|k| k as f64 / b as f64).collect();
    let g: Vec<f64> = (0..b).map(|_| rng.random_range(-1.0..1.0)).collect();
    let t = |v: &[f64]| Tensor::new(v, dev).unwrap().to_dtype(dtype).unwrap();
    (
        Var::from_tensor(&t(&x)).unwrap(),
        Var::from_tensor(&t(&w)).unwrap(),
        Var::from_tensor(&t(&e)).unwrap(),
        t(&g),
    )
}

fn bench(c: &mut Criterion) {
    run_group(c, "bkde_value_grad", &Device::Cpu);
    #[cfg(feature = "cuda")]
    run_group(
        c,
        "bkde_value_grad_cuda",
        &Device::new_cuda(0).expect("a CUDA device"),
    );
}

fn run_group(c: &mut Criterion, name: &str, dev: &Device) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for dtype in [DType::F32, DType::F64] {
        let tag = if dtype == DType::F32 { "f32" } else { "f64" };
        for n in [10_000usize, 100_000, 1_000_000] {
            for b in [4usize, 20, 50] {
                let (x, w, e, g) = inputs(n, b, dtype, dev);
                let opts = BkdeOptions::new(0.5 / b as f64);
                group.throughput(Throughput::Elements((n * (b + 1)) as u64));
                group.bench_function(BenchmarkId::new(tag, format!("N={n}/B={b}")), |bench| {
                    bench.iter(|| {
                        let counts =
                            hist::bkde(x.as_tensor(), Some(w.as_tensor()), e.as_tensor(), &opts)
                                .unwrap();
                        let loss = (counts * &g).unwrap().sum_all().unwrap();
                        let grads = loss.backward().unwrap();
                        // wait for the device (a no-op on CPU)
                        dev.synchronize().unwrap();
                        std::hint::black_box(grads)
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
