//! Value + exact gradient of the grad:: losses.
//!
//! * `cls_neos`: expected CLs of the neos model (signal + background with one
//!   histosys, 4 bins; gradient w.r.t. all four histograms = 16 inputs),
//!   host-side (`Loss::evaluate`) and through candle (`forward` + `backward`).
//!   Target ≤ 50 µs.
//! * `cls_bins/{B}`: the same model with B bins (target ≤ 1 ms at 50 bins).
//! * `cls_np/{K}`: 20 bins, K histosys on the background.
//! * After the criterion groups a scaling table (median of repeated runs) of
//!   CLs, p0 and σ_μ over bins and nuisance parameters is printed.
//!
//! Run: `cargo bench --bench losses`.
//!
//! Measured 2026-12-01, release profile, 2-core dev machine at load ≈ 4
//! (`cargo bench --bench losses -- "cls_neos|cls_bins/50"`):
//! `cls_neos/host` 15.5 µs, `cls_neos/candle_forward_backward` 19.3 µs
//! (target ≤ 50 µs: met); `cls_bins/50` 238 µs (target ≤ 1 ms: met).
//! Scaling table (median µs; bins, NPs, inputs | CLs, p0, σ_μ):
//! ```text
//!    4    1      16 |       14.0       22.4       12.0
//!   10    1      40 |       24.4       36.8       58.3
//!   20    1      80 |       56.5       53.5       97.5
//!   50    1     200 |      221.5      200.2      497.9
//!  100    1     400 |      735.5      786.4     1917.0
//!   20    2     120 |       89.7       85.2      193.1
//!   20    5     240 |      257.1      241.6      710.9
//!   20   10     440 |      654.7     1160.0     2164.6
//!   50    5     600 |     1240.6     1185.1     4011.9
//! ```

use std::hint::black_box;
use std::time::Instant;

use anagrad::grad::{InputSel, Loss, LossKind, Template, YieldFloor};
use anagrad::hf::{ModelOptions, Workspace};
use anagrad::infer::teststat::TestStat;
use candle_core::{Device, Var};
use criterion::{criterion_group, Criterion};
use serde_json::json;

/// neos-like model: `bins` bins, `nps` histosys on the background; the
/// template inputs are the signal and background nominals and every
/// histosys lo/hi.
fn model(bins: usize, nps: usize) -> (Template, Vec<f64>) {
    let x = |b: usize| (b as f64 + 0.5) / bins as f64;
    let sig: Vec<f64> = (0..bins).map(|b| 0.2 + 10.0 * x(b).powi(3)).collect();
    let bkg: Vec<f64> = (0..bins)
        .map(|b| 2.0 + 50.0 * (1.0 - x(b)).powi(2))
        .collect();
    let mods: Vec<_> = (0..nps)
        .map(|k| {
            let a = 0.05 + 0.03 * k as f64;
            json!({"name": format!("np{k}"), "type": "histosys", "data": {
                "hi_data": bkg.iter().enumerate().map(|(b, v)| v * (1.0 + a * (x(b) - 0.3 * k as f64).cos())).collect::<Vec<_>>(),
                "lo_data": bkg.iter().enumerate().map(|(b, v)| v * (1.0 - a * (x(b) + 0.2).sin())).collect::<Vec<_>>()}})
        })
        .collect();
    let ws = json!({
        "channels": [{"name": "ch", "samples": [
            {"name": "signal", "data": sig, "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "background", "data": bkg, "modifiers": mods}]}],
        "observations": [{"name": "ch", "data": vec![1.0; bins]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    });
    let ws = Workspace::from_value(&ws).expect("workspace");
    let mut t = Template::from_workspace(&ws, &ModelOptions::default())
        .expect("model")
        .with_floor(YieldFloor::NEOS)
        .with_input(InputSel::nominal("ch", "signal"))
        .expect("input")
        .with_input(InputSel::nominal("ch", "background"))
        .expect("input");
    for k in 0..nps {
        let name = format!("np{k}");
        t = t
            .with_input(InputSel::histo_hi("ch", "background", &name))
            .expect("input")
            .with_input(InputSel::histo_lo("ch", "background", &name))
            .expect("input");
    }
    let v = t.current_values();
    (t, v)
}

fn cls() -> LossKind {
    LossKind::Cls {
        test_mu: 1.0,
        stat: TestStat::QmuTilde,
    }
}

fn bench(c: &mut Criterion) {
    let (t, v) = model(4, 1);
    let loss = Loss::new(t.clone(), cls());
    c.bench_function("cls_neos/host", |b| {
        b.iter(|| black_box(loss.evaluate(black_box(&v), true).expect("cls")))
    });
    let dev = Device::Cpu;
    let lens = t.input_lens();
    let vars: Vec<Var> = {
        let mut off = 0;
        lens.iter()
            .map(|&n| {
                let var = Var::from_slice(&v[off..off + n], n, &dev).expect("var");
                off += n;
                var
            })
            .collect()
    };
    c.bench_function("cls_neos/candle_forward_backward", |b| {
        b.iter(|| {
            let ts: Vec<&candle_core::Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
            let out = loss.forward(&ts).expect("forward");
            black_box(out.backward().expect("backward"))
        })
    });
    let mut g = c.benchmark_group("cls_bins");
    for bins in [4usize, 10, 20, 50, 100] {
        let (t, v) = model(bins, 1);
        let loss = Loss::new(t, cls());
        g.bench_function(format!("{bins}"), |b| {
            b.iter(|| black_box(loss.evaluate(&v, true).expect("cls")))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("cls_np");
    for nps in [1usize, 2, 5, 10] {
        let (t, v) = model(20, nps);
        let loss = Loss::new(t, cls());
        g.bench_function(format!("{nps}"), |b| {
            b.iter(|| black_box(loss.evaluate(&v, true).expect("cls")))
        });
    }
    g.finish();
}

fn median_us(mut f: impl FnMut()) -> f64 {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 15 || (start.elapsed().as_secs_f64() < 0.3 && times.len() < 2000) {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

fn scaling_table() {
    println!("\nvalue + gradient, median µs (host, Loss::evaluate):");
    println!(
        "{:>5} {:>4} {:>7} | {:>10} {:>10} {:>10}",
        "bins", "NPs", "inputs", "CLs", "p0", "sigma_mu"
    );
    for (bins, nps) in [
        (4, 1),
        (10, 1),
        (20, 1),
        (50, 1),
        (100, 1),
        (20, 2),
        (20, 5),
        (20, 10),
        (50, 5),
    ] {
        let (t, v) = model(bins, nps);
        let row: Vec<f64> = [cls(), LossKind::P0, LossKind::SigmaMu { hyp_mu: 1.0 }]
            .into_iter()
            .map(|k| {
                let loss = Loss::new(t.clone(), k);
                median_us(|| {
                    black_box(loss.evaluate(&v, true).expect("loss"));
                })
            })
            .collect();
        println!(
            "{bins:>5} {nps:>4} {:>7} | {:>10.1} {:>10.1} {:>10.1}",
            v.len(),
            row[0],
            row[1],
            row[2]
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    scaling_table();
}
