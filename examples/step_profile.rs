//! Where the time of one neos training step goes (CPU, f32): network
//! forward, bKDE, the CLs loss (fits on the host), backward, Adam.
//! Run: `cargo run --release --example step_profile [steps]`.
use std::time::Instant;

use anagrad::grad::{Loss, LossKind, YieldFloor};
use anagrad::infer::teststat::TestStat;
use anagrad::nn::{Activation, Mlp, MlpConfig, Output};
use anagrad::ops::edges::LearnableEdges;
use anagrad::ops::hist::{bkde_multi, BkdeOptions};
use anagrad::toys::{Blobs, ToyModel};
use anagrad::train::adam::{Adam, AdamParams};
use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> anagrad::Result<()> {
    anagrad::train::keep_freed_memory();
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dev = Device::Cpu;
    let toy = Blobs::default();
    let mut rng = StdRng::seed_from_u64(0);
    let n = 2000;
    let mut xs = Vec::new();
    for p in 0..4 {
        let ev = toy.sample(p, n, &mut rng)?;
        xs.push(Tensor::from_vec(ev.features, (n, 2), &dev)?.to_dtype(DType::F32)?);
    }
    let x = Tensor::cat(&xs, 0)?;
    let cfg = MlpConfig {
        sizes: vec![2, 1024, 1024, 1],
        activation: Activation::Relu,
        output: Output::Sigmoid,
    };
    let mlp = Mlp::new(cfg, DType::F32, &dev, &mut rng)?;
    let edges = LearnableEdges::uniform(0.0, 1.0, 4, DType::F32, &dev)?;
    let template = toy.analysis(4)?.template(YieldFloor::NEOS)?;
    let loss = Loss::new(
        template,
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::Qmu,
        },
    );
    let mut vars: Vec<_> = mlp.vars().into_iter().map(|v| (v, 1e-3)).collect();
    vars.push((edges.var().clone(), 1e-3));
    let mut adam = Adam::new(
        vars,
        AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    )?;
    let scale = Tensor::new(
        &[
            [20.0f32 / n as f32],
            [100.0 / n as f32],
            [100.0 / n as f32],
            [100.0 / n as f32],
        ],
        &dev,
    )?;
    let mut t = [0.0f64; 6];
    let mut totals = Vec::with_capacity(steps);
    for k in 0..=steps {
        let t0 = Instant::now();
        let s = mlp.forward(&x)?.reshape((4, n))?;
        let t1 = Instant::now();
        let h = bkde_multi(&s, None, &edges.edges()?, &BkdeOptions::new(0.09))?
            .broadcast_mul(&scale)?;
        let t2 = Instant::now();
        let rows: Vec<Tensor> = (0..4)
            .map(|i| h.get(i))
            .collect::<candle_core::Result<_>>()?;
        let l = loss.forward(&rows.iter().collect::<Vec<_>>())?;
        let t3 = Instant::now();
        let g = l.backward()?;
        let t4 = Instant::now();
        adam.step(&g)?;
        let t5 = Instant::now();
        if k > 0 {
            totals.push((t5 - t0).as_secs_f64());
            if std::env::var_os("STEP_PROFILE_EACH").is_some() {
                println!(
                    "step {k}: forward {:.0} ms, backward {:.0} ms, total {:.0} ms",
                    (t1 - t0).as_secs_f64() * 1e3,
                    (t4 - t3).as_secs_f64() * 1e3,
                    (t5 - t0).as_secs_f64() * 1e3
                );
            }
            for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0]
                .iter()
                .enumerate()
            {
                t[i] += d.as_secs_f64() / steps as f64;
            }
        }
    }
    let names = [
        "forward (MLP)",
        "bKDE",
        "CLs loss (fits)",
        "backward",
        "Adam",
        "total",
    ];
    for (nm, v) in names.iter().zip(t) {
        println!("{nm:>16}: {:8.1} ms", v * 1e3);
    }
    // the mean hides a noisy neighbour; the median and minimum do not
    totals.sort_by(f64::total_cmp);
    if let (Some(min), Some(med)) = (totals.first(), totals.get(totals.len() / 2)) {
        println!("  step median/min: {:8.1} / {:.1} ms", med * 1e3, min * 1e3);
    }
    Ok(())
}
