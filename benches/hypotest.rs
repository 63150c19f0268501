//! Hypothesis test with the expected band (`AsymptoticCalculator` + `hypotest`
//! at μ = 1, q̃μ) on pyhf's benchmark model
//! `pyhf.simplemodels.uncorrelated_background(signal=[30]*n, bkg=[100]*n,
//! bkg_uncertainty=[10]*n)` with 120 observed per bin, at 1 … 500 bins —
//! the same work as `anagrad cls WS` and pyhf's
//! `pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)`.
//!
//! Run: `cargo bench --bench hypotest`. Whole-process comparisons against
//! pyhf and NextStat: `benches/cli_timing.py` (see its docstring).
//!
//! Measured on the development machine (2 shared cores), release build:
//! see the table at the end of this comment, filled from
//! `cargo bench --bench hypotest` and `benches/cli_timing.py`.
//!
//! | bins | anagrad in-process | anagrad CLI (whole process) | NextStat CLI | pyhf 0.7.6 in-process (numpy) |
//! |------|--------------------|-----------------------------|--------------|-------------------------------|
//! | (filled in by the timing run)                                                                              |

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::{AsymptoticCalculator, FitOptions, FitSetup, Likelihood, TestStat};

/// The workspace `pyhf.simplemodels.uncorrelated_background` builds.
fn uncorrelated_background(n: usize) -> String {
    let v = |x: f64| vec![x; n];
    serde_json::json!({
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
    })
    .to_string()
}

fn bench_hypotest(c: &mut Criterion) {
    let mut group = c.benchmark_group("hypotest_uncorrelated_background");
    group.sample_size(20);
    for &n in &[1usize, 10, 50, 100, 200, 500] {
        let json = uncorrelated_background(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &json, |b, json| {
            b.iter(|| {
                // everything `anagrad cls` does after reading the file
                let ws = Workspace::from_json_str(json).expect("workspace");
                let model = Model::new(&ws, &ModelOptions::default()).expect("model");
                let data = model.observed_data();
                let calc = AsymptoticCalculator::new(
                    &model,
                    &data,
                    FitSetup::from_model(&model),
                    FitOptions::default(),
                    TestStat::QmuTilde,
                )
                .expect("calculator");
                calc.hypotest(1.0).expect("hypotest")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_hypotest);
criterion_main!(benches);
