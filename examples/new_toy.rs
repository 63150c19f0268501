//! A new toy in under 60 lines: a 1-D exponential background with a Gaussian
//! signal peak and a slope systematic, trained on CLs for a few steps.
//! Run: `cargo run --release --example new_toy`.
use anagrad::grad::InputSel;
use anagrad::hf::Workspace;
use anagrad::toys::{Analysis, Events, Process, Role, ToyModel};
use anagrad::Result;
use rand::Rng;
use rand_distr::{Distribution, Exp, Normal};

struct Peak;

#[rustfmt::skip]
impl ToyModel for Peak {
    fn name(&self) -> &str { "peak" }
    fn n_features(&self) -> usize { 1 }
    fn processes(&self) -> Vec<Process> {
        let p = |name: &str, role, yield_scale| Process { name: name.into(), role, yield_scale };
        vec![p("signal", Role::Signal, 30.0), p("bkg", Role::Background, 200.0),
             p("bkg_up", Role::Variation, 200.0), p("bkg_down", Role::Variation, 200.0)]
    }
    fn sample(&self, process: usize, n: usize, rng: &mut dyn Rng) -> Result<Events> {
        let bad = |e: String| anagrad::Error::InvalidInput(e);
        let x: Vec<f64> = match process {
            0 => { let d = Normal::new(2.0, 0.3).map_err(|e| bad(e.to_string()))?; (0..n).map(|_| d.sample(rng)).collect() }
            p => {
                let rate = [1.0, 0.8, 1.25][p - 1];
                let d = Exp::new(rate).map_err(|e| bad(e.to_string()))?;
                (0..n).map(|_| d.sample(rng)).collect()
            }
        };
        Ok(Events { n_features: 1, features: x, weights: None })
    }
    fn analysis(&self, n_bins: usize) -> Result<Analysis> {
        let ones = vec![1.0; n_bins];
        let ws = serde_json::json!({
            "channels": [{"name": "ch", "samples": [
                {"name": "signal", "data": ones, "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
                {"name": "bkg", "data": ones, "modifiers": [{"name": "slope", "type": "histosys",
                    "data": {"hi_data": ones, "lo_data": ones}}]}]}],
            "observations": [{"name": "ch", "data": ones}],
            "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
            "version": "1.0.0"});
        let inputs = vec![(0, InputSel::nominal("ch", "signal")), (1, InputSel::nominal("ch", "bkg")),
            (2, InputSel::histo_hi("ch", "bkg", "slope")), (3, InputSel::histo_lo("ch", "bkg", "slope"))];
        Ok(Analysis { workspace: Workspace::from_value(&ws)?, inputs })
    }
    fn feature_range(&self) -> Vec<(f64, f64)> { vec![(0.0, 5.0)] }
}

#[rustfmt::skip]
fn main() -> Result<()> {
    use anagrad::train::{run, RunOptions, TrainConfig, Trainer};
    let mut cfg = TrainConfig::default();
    cfg.network.hidden = vec![32, 32];
    (cfg.toy.n_train, cfg.toy.n_test, cfg.training.batch_size, cfg.training.max_steps) = (2000, 2000, 500, Some(40));
    cfg.optimizer.lr = 1e-2;
    let mut trainer = Trainer::with_toy(&cfg, Box::new(Peak), &candle_core::Device::Cpu)?;
    let report = run::run(&mut trainer, &RunOptions::new("runs/new_toy"))?;
    println!("best test CLs {:?} at step {:?}; results in {}", report.best.and_then(|m| m.cls), report.best_step, report.out.display());
    Ok(())
}
