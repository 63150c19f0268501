//! Short INFERNO trainings (CI-sized): a softmax(logits/τ) network on the
//! `inferno_b*` toys with objective `inferno` (σ_μ through the Fisher
//! information with the benchmark's constraints) lowers its loss and its
//! test σ_μ (argmax histograms, ±shift templates), for every benchmark.

use anagrad::nn::Output;
use anagrad::train::{Objective, TrainConfig, Trainer};
use candle_core::Device;

fn tiny(benchmark: usize, steps: usize) -> TrainConfig {
    let text = format!(
        r#"
seed = 3
[toy]
name = "inferno_b{benchmark}"
n_train = 2000
n_test = 4000
[network]
hidden = [16, 16]
output = "softmax"
[histogram]
bins = 10
learnable_edges = false
temperature = 0.1
yield_floor = 0.001
[optimizer]
lr = 0.01
[training]
objective = "inferno"
batch_size = 500
max_steps = {steps}
eval_every = {steps}
"#
    );
    TrainConfig::from_toml(&text).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn the_inferno_objective_is_poi_uncert_with_the_toys_constraints() {
    let cfg = tiny(2, 1);
    assert_eq!(cfg.training.objective, Objective::PoiUncert);
    // a temperature needs a softmax output
    let bad = TrainConfig::from_toml("[histogram]\ntemperature = 0.1\n");
    assert!(bad.unwrap_err().to_string().contains("temperature"));
    let bad = TrainConfig::from_toml(
        "[network]\noutput = \"softmax\"\n[histogram]\nlearnable_edges = false\ntemperature = 0\n",
    );
    assert!(bad.is_err());
}

#[test]
fn training_lowers_sigma_mu_on_every_benchmark() {
    for b in 0..5 {
        let steps = 24;
        let cfg = tiny(b, steps);
        let mut t = Trainer::new(&cfg, &Device::Cpu).unwrap();
        let m0 = t.evaluate().unwrap().sigma_mu.unwrap();
        let mut losses = Vec::new();
        while !t.finished() {
            losses.push(t.train_step().unwrap());
        }
        let (first, last) = (mean(&losses[..4]), mean(&losses[losses.len() - 4..]));
        let m1 = t.evaluate().unwrap();
        let s1 = m1.sigma_mu.unwrap();
        eprintln!(
            "inferno_b{b}: train σ_μ {first:.4} → {last:.4}; test σ_μ {m0:.4} → {s1:.4} \
             (σ_s {:.2} → {:.2})",
            50.0 * m0,
            50.0 * s1
        );
        assert!(
            last < 0.9 * first,
            "b{b}: loss {first} → {last} ({losses:?})"
        );
        assert!(s1 < m0, "b{b}: test σ_μ {m0} → {s1}");
        // the benchmark's constraints are the model's, so the fit-based
        // metrics exist on every benchmark (they were refused before)
        let cls = m1.cls.unwrap_or(f64::NAN);
        assert!(cls > 0.0 && cls < 1.0, "b{b}: CLs {cls}");
        // the profile-likelihood σ_μ is close
        // to the Fisher one on Asimov data, not equal
        let prof = m1.sigma_mu_profile.unwrap_or(f64::NAN);
        assert!(
            (prof / s1 - 1.0).abs() < 0.3,
            "b{b}: profile {prof} vs Fisher {s1}"
        );
        assert_eq!(m1.yields.len(), t.toy().processes().len());
    }
}

#[test]
fn the_shipped_configs_parse() {
    for b in 0..5 {
        let path = format!("{}/configs/inferno_b{b}.toml", env!("CARGO_MANIFEST_DIR"));
        let c = TrainConfig::from_path(path.as_ref()).unwrap();
        assert_eq!(c.toy.name, format!("inferno_b{b}"));
        assert_eq!(c.network.hidden, [100, 100]);
        assert_eq!(c.histogram.bins, 10);
        assert_eq!(c.histogram.temperature, 0.1);
        assert_eq!(c.training.objective, Objective::PoiUncert);
        assert_eq!(c.total_steps(), 4000);
        assert_eq!(c.compare.seeds.len(), 20);
    }
    let path = format!("{}/configs/inferno_bce.toml", env!("CARGO_MANIFEST_DIR"));
    let c = TrainConfig::from_path(path.as_ref()).unwrap();
    assert_eq!(c.training.objective, Objective::Bce);
    assert_eq!((c.histogram.bins, c.total_steps()), (10, 4000));
    let path = format!("{}/configs/inferno_bkde.toml", env!("CARGO_MANIFEST_DIR"));
    let c = TrainConfig::from_path(path.as_ref()).unwrap();
    assert_eq!(c.training.objective, Objective::PoiUncert);
    assert!(c.histogram.learnable_edges);
    assert_eq!((c.histogram.bins, c.histogram.bandwidth), (10, 0.05));
}

/// The exact-gradient variant of the table (`configs/inferno_bkde.toml`,
/// shrunk): a one-output network, σ_μ through a bKDE with learned edges,
/// evaluated with hard histograms between the learned edges.
#[test]
fn the_bkde_variant_lowers_sigma_mu_and_moves_the_edges() {
    let mut cfg = tiny(2, 40);
    cfg.network.output = Output::Sigmoid;
    cfg.histogram.learnable_edges = true;
    cfg.histogram.temperature = 1.0;
    cfg.histogram.bandwidth = 0.05;
    cfg.validate().unwrap();
    assert_eq!(cfg.total_steps(), 40);
    let mut t = Trainer::new(&cfg, &Device::Cpu).unwrap();
    let m0 = t.evaluate().unwrap();
    while !t.finished() {
        t.train_step().unwrap();
    }
    let m1 = t.evaluate().unwrap();
    let (s0, s1) = (m0.sigma_mu.unwrap(), m1.sigma_mu.unwrap());
    eprintln!("bkde b2: test σ_s {:.2} → {:.2}", 50.0 * s0, 50.0 * s1);
    assert!(s1 < 0.8 * s0, "test σ_μ {s0} → {s1}");
    assert_ne!(m0.edges, m1.edges);
    assert_eq!(m1.edges.len(), 11);
}

#[test]
fn the_cross_entropy_baseline_is_evaluated_on_the_benchmark() {
    let path = format!("{}/configs/inferno_bce.toml", env!("CARGO_MANIFEST_DIR"));
    let mut c = TrainConfig::from_path(path.as_ref()).unwrap();
    assert_eq!(c.training.objective, Objective::Bce);
    c.toy.n_train = 1000;
    c.toy.n_test = 2000;
    c.network.hidden = vec![16];
    c.training.batch_size = 250;
    c.training.max_steps = Some(4);
    c.training.eval_every = 4;
    c.validate().unwrap();
    let mut t = Trainer::new(&c, &Device::Cpu).unwrap();
    while !t.finished() {
        t.train_step().unwrap();
    }
    let m = t.evaluate().unwrap();
    // 10 equal bins of the sigmoid output, σ_μ with benchmark 2's constraints
    assert_eq!(m.edges.len(), 11);
    assert!(m.sigma_mu.unwrap() > 0.0 && m.bce.is_some() && m.cls.is_some());
}
