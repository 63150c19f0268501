//! How much INFERNO's loss changes when the nuisance derivatives come from the
//! ±shift templates (r ± 0.2, λ = 3 ± 0.5, what training and evaluation use)
//! instead of (nearly) exact derivatives (shifts 100× smaller, f64), for a
//! trained network on held-out events of the `inferno_b*` toy.
//!
//! ```sh
//! cargo run --release --example inferno_shifts -- runs/inferno_b2/checkpoint.json [n_events]
//! ```
//!
//! Prints σ_s = 50 σ_μ on softmax(logits/τ) histograms for τ = 0.1 (the
//! training loss) and 0.02, with the big and the small shifts.

use anagrad::grad::{Loss, LossKind, YieldFloor};
use anagrad::toys::inferno::{Benchmark, Inferno};
use anagrad::toys::{Events, ToyModel};
use anagrad::train::Trainer;
use anagrad::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let ckpt = args
        .get(1)
        .ok_or_else(|| Error::InvalidInput("usage: inferno_shifts CHECKPOINT.json [n]".into()))?;
    let n: usize = match args.get(2) {
        Some(s) => s
            .parse()
            .map_err(|e| Error::InvalidInput(format!("n_events: {e}")))?,
        None => 200_000,
    };
    let t = Trainer::from_checkpoint(ckpt.as_ref(), &Device::Cpu)?;
    let name = t.toy().name().to_string();
    let b = name
        .strip_prefix("inferno_b")
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| Error::InvalidInput(format!("{ckpt}: toy '{name}' is not inferno_b*")))?;
    let bm = Benchmark::from_index(b)?;
    let mut rng = StdRng::seed_from_u64(12345);
    let base = Inferno::new(bm);
    let sig = base.sample(0, n, &mut rng)?;
    let bkg = base.sample(1, n, &mut rng)?;
    println!("{name}, {n} events per process, {ckpt}");
    for tau in [0.1, 0.02] {
        let mut row = Vec::new();
        for scale in [1.0, 0.01] {
            let toy = Inferno {
                shift_r: base.shift_r * scale,
                shift_lambda: base.shift_lambda * scale,
                ..base.clone()
            };
            let mut events: Vec<Events> = vec![sig.clone(), bkg.clone()];
            for p in 2..toy.processes().len() {
                events.push(toy.derive(p, &bkg)?);
            }
            let yields = events
                .iter()
                .zip(toy.processes())
                .map(|(ev, p)| -> Result<Vec<f64>> {
                    let x = Tensor::from_vec(ev.features.clone(), (n, 3), &Device::Cpu)?
                        .to_dtype(DType::F32)?;
                    let z = t.network().logits(&x)?.to_dtype(DType::F64)?;
                    let h = candle_nn::ops::softmax(&z.affine(1.0 / tau, 0.0)?, D::Minus1)?
                        .sum(0)?
                        .affine(p.yield_scale / n as f64, 0.0)?;
                    Ok(h.to_vec1::<f64>()?)
                })
                .collect::<Result<Vec<_>>>()?;
            let a = toy.analysis(10)?;
            let values: Vec<f64> = a
                .inputs
                .iter()
                .flat_map(|(p, _)| yields[*p].iter().copied())
                .collect();
            let loss = Loss::new(
                toy.template(10, YieldFloor::Add(1e-3))?,
                LossKind::SigmaMu { hyp_mu: 1.0 },
            );
            row.push(50.0 * loss.evaluate(&values, false)?.value);
        }
        println!(
            "tau {tau}: sigma_s with shifts (0.2, 0.5): {:.4}, with shifts (0.002, 0.005): {:.4}, \
             ratio {:.5}",
            row[0],
            row[1],
            row[0] / row[1]
        );
    }
    Ok(())
}
