//! Optimise one sigmoid-cut threshold by gradient ascent on the discovery
//! significance Z0 of a counting experiment with a 10% background
//! normalisation uncertainty — the whole chain (events → soft cut → yields →
//! HistFactory model → fits → Z0) is differentiated exactly.
//!
//! Toy: signal x ~ N(2, 0.7²) (20 expected events), background
//! x ~ N(0, 1.5²) (500 expected events), each represented by 4000 seeded
//! Monte-Carlo events with weights expected/4000. The yields after the cut
//! enter a one-bin workspace (signal with normfactor `mu`; background with a
//! normsys ±10%) and `grad::LossKind::Z0` returns √q0 on signal-plus-background
//! Asimov data with its gradient; `loss.backward()` carries it to the cut
//! threshold. Run: `cargo run --release --example optimise_cut`.

use anagrad::grad::{InputSel, Loss, LossKind, Template};
use anagrad::hf::{ModelOptions, Workspace};
use anagrad::ops::cut::{hard_cut, soft_cut, Keep};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

fn sample(rng: &mut StdRng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n)
        .map(|_| mean + sd * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn main() -> anagrad::Result<()> {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(7);
    let n = 4000;
    let xs = Tensor::new(sample(&mut rng, n, 2.0, 0.7), &dev)?;
    let xb = Tensor::new(sample(&mut rng, n, 0.0, 1.5), &dev)?;
    let (ws_sig, ws_bkg) = (20.0 / n as f64, 500.0 / n as f64);

    let workspace = Workspace::from_value(&serde_json::json!({
        "channels": [{"name": "sr", "samples": [
            {"name": "signal", "data": [20.0],
             "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "background", "data": [500.0],
             "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}],
        "observations": [{"name": "sr", "data": [520.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))?;
    let template = Template::from_workspace(&workspace, &ModelOptions::default())?
        .with_input(InputSel::nominal("sr", "signal"))?
        .with_input(InputSel::nominal("sr", "background"))?;
    let z0 = Loss::new(template, LossKind::Z0);

    // the cut: keep x above `threshold`, slope 10 per unit of x
    let threshold = Var::new(0.0f64, &dev)?;
    let slope = Tensor::new(10.0f64, &dev)?;
    let lr = 1.0;
    println!("step  threshold   soft Z0   loss = −Z0");
    let mut first = None;
    let mut last = 0.0;
    for step in 0..=20 {
        let s = (soft_cut(&xs, threshold.as_tensor(), &slope, Keep::Above)?.sum_all()? * ws_sig)?;
        let b = (soft_cut(&xb, threshold.as_tensor(), &slope, Keep::Above)?.sum_all()? * ws_bkg)?;
        let z = z0.forward(&[&s, &b])?;
        let zv = z.to_scalar::<f64>()?;
        first.get_or_insert(zv);
        last = zv;
        let grads = z.neg()?.backward()?;
        let g = grads
            .get(&threshold)
            .ok_or_else(|| {
                anagrad::Error::InvalidInput("no gradient reached the threshold".into())
            })?
            .to_scalar::<f64>()?;
        println!(
            "{step:>4}  {:>9.4}  {:>8.4}  {:>10.4}",
            threshold.as_tensor().to_scalar::<f64>()?,
            zv,
            -zv
        );
        // gradient descent on −Z0
        threshold.set(&(threshold.as_tensor() - g * lr)?)?;
    }
    let c = threshold.as_tensor().to_scalar::<f64>()?;
    let hard = |x: &Tensor, w: f64| -> anagrad::Result<Tensor> {
        Ok((hard_cut(x, c, Keep::Above)?
            .sum_all()?
            .to_dtype(DType::F64)?
            * w)?)
    };
    let (hs, hb) = (hard(&xs, ws_sig)?, hard(&xb, ws_bkg)?);
    let zh = z0.forward(&[&hs, &hb])?.to_scalar::<f64>()?;
    println!(
        "soft Z0 {:.4} → {:.4}; hard cut at {c:.4}: s = {:.2}, b = {:.2}, Z0 = {zh:.4}",
        first.unwrap_or(0.0),
        last,
        hs.to_scalar::<f64>()?,
        hb.to_scalar::<f64>()?
    );
    Ok(())
}
