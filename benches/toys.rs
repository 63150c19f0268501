//! Toys per second: one toy-based hypotest at μ = 1 (q̃μ, pyhf's
//! `ToyCalculator` semantics: the observed statistic, the two conditional
//! fits that generate the toys, and per toy a free and a fixed-μ fit) on
//! pyhf's benchmark model `pyhf.simplemodels.uncorrelated_background(
//! signal=[30]*n, bkg=[100]*n, bkg_uncertainty=[10]*n)`, 120 observed per
//! bin, at 1, 10 and 100 bins; on one thread and on all cores. Criterion
//! reports the time of `2 × NTOYS` toys (its throughput line: toys/s).
//!
//! Run: `cargo bench --bench toys`. Side by side with pyhf 0.7.6 (numpy) and
//! NextStat 0.10.1's CPU toys: `benches/toys_timing.py` (see its docstring).
//!
//! Measured 2026-12-06 on the development machine (2 cores, load average
//! 8–12 from other builds, so wall clocks include waiting for a core),
//! release build. In-process, this bench (`-- --warm-up-time 1
//! --measurement-time 5`, criterion median):
//!
//! | bins | toys/s, 1 thread | toys/s, 2 threads |
//! |---:|---:|---:|
//! | 1   | 59 600 | 66 900 |
//! | 10  | 30 000 | 21 400 |
//! | 100 | 1 310  | 1 130  |
//!
//! Side by side, `benches/toys_timing.py` (2000 toys per hypothesis for
//! anagrad's whole `cls --calctype toybased` process, which also writes the
//! distributions and renders the figure, best of 3; NextStat 0.10.1's
//! `hypotest_toys` in-process with 2000 toys; pyhf 0.7.6 numpy
//! `ToyCalculator` in-process with 200 / 50 / 10 toys), toys/s:
//!
//! | bins | anagrad 1t | anagrad 2t | NextStat 1t | NextStat 2t | pyhf numpy | anagrad/pyhf (1t) | anagrad/NextStat (1t / 2t) |
//! |---:|---:|---:|---:|---:|---:|---:|---:|
//! | 1   | 15 868 | 24 382 | 7 269 | 3 828 | 36.5  | 434×    | 2.2× / 6.4× |
//! | 10  | 9 998  | 12 720 | 2 322 | 3 411 | 8.6   | 1 161×  | 4.3× / 3.7× |
//! | 100 | 950    | 871    | 406   | 400   | 0.037 | 25 567× | 2.3× / 2.2× |
//!
//! Targets (≥ 100× pyhf numpy, ≥ NextStat's CPU toys): met at every size,
//! even counting anagrad's process start and figure against in-process
//! pyhf and NextStat. With two busy cores a second thread gains little.
//! CLs_obs of that run at 1 bin: anagrad 0.282, pyhf 0.274 (200 toys),
//! NextStat 0.397: NextStat's toys do not follow pyhf's ToyCalculator
//! semantics (ours are checked against pyhf in `tests/toys_pyhf.rs`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::toys::{hypotest_toys, ToyOptions};
use anagrad::infer::{FitSetup, Likelihood, TestStat};

/// The workspace `pyhf.simplemodels.uncorrelated_background` builds.
fn uncorrelated_background(n: usize) -> Model {
    let v = |x: f64| vec![x; n];
    let ws = Workspace::from_value(&serde_json::json!({
        "channels": [{
            "name": "singlechannel",
            "samples": [
                {"name": "signal", "data": v(30.0),
                 "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
                {"name": "background", "data": v(100.0),
                 "modifiers": [{"name": "uncorr_bkguncrt", "type": "shapesys", "data": v(10.0)}]}
            ]
        }],
        "observations": [{"name": "singlechannel", "data": v(120.0)}],
        "measurements": [{"name": "Measurement", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))
    .expect("workspace");
    Model::new(&ws, &ModelOptions::default()).expect("model")
}

fn bench_toys(c: &mut Criterion) {
    let mut group = c.benchmark_group("toys_uncorrelated_background");
    group.sample_size(10);
    let all = rayon::current_num_threads();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    for &(n, ntoys) in &[(1usize, 1000usize), (10, 500), (100, 100)] {
        let model = uncorrelated_background(n);
        let data = model.observed_data();
        let setup = FitSetup::from_model(&model);
        let opts = ToyOptions {
            ntoys,
            seed: 1,
            ..ToyOptions::default()
        };
        let run =
            || hypotest_toys(&model, &data, 1.0, TestStat::QmuTilde, &setup, &opts).expect("toys");
        group.throughput(Throughput::Elements(2 * ntoys as u64));
        group.bench_function(BenchmarkId::new("1thread", n), |b| {
            b.iter(|| one.install(run))
        });
        group.bench_function(BenchmarkId::new(format!("{all}threads"), n), |b| {
            b.iter(run)
        });
    }
    group.finish();
}

criterion_group!(benches, bench_toys);
criterion_main!(benches);
