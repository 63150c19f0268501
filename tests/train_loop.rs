//! Short training runs on the blobs toy with a tiny network (CI-sized): the
//! loss goes down, a resumed checkpoint continues bit-identically, and every
//! written file exists and parses.

use anagrad::train::{run, Objective, RunOptions, TrainConfig, Trainer};
use candle_core::Device;

fn tiny(objective: Objective, steps: usize) -> TrainConfig {
    let mut c = TrainConfig {
        seed: 11,
        ..Default::default()
    };
    c.toy.n_train = 600;
    c.toy.n_test = 500;
    c.network.hidden = vec![16, 16];
    c.training.objective = objective;
    c.training.batch_size = 200;
    c.training.max_steps = Some(steps);
    c.training.eval_every = 3;
    c.optimizer.lr = 1e-2;
    c.validate().unwrap();
    c
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn training_lowers_the_loss() {
    for obj in [Objective::Cls, Objective::Bce] {
        let cfg = tiny(obj, 24);
        let mut t = Trainer::new(&cfg, &Device::Cpu).unwrap();
        let mut losses = Vec::new();
        while !t.finished() {
            losses.push(t.train_step().unwrap());
        }
        let (first, last) = (mean(&losses[..4]), mean(&losses[losses.len() - 4..]));
        assert!(
            last < 0.7 * first,
            "{}: loss {first:.4e} → {last:.4e} ({losses:?})",
            obj.name()
        );
        // the test metric of the objective improves too
        let tests: Vec<_> = t.records().iter().filter_map(|r| r.test.clone()).collect();
        let m0 = tests.first().unwrap().rank_value(obj).unwrap();
        let m1 = tests.last().unwrap().rank_value(obj).unwrap();
        assert!(m1 < m0, "{}: test metric {m0} → {m1}", obj.name());
    }
}

#[test]
fn checkpoint_resume_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(Objective::Cls, 8);
    let mut straight = Trainer::new(&cfg, &Device::Cpu).unwrap();
    while !straight.finished() {
        straight.train_step().unwrap();
    }
    let mut first = Trainer::new(&cfg, &Device::Cpu).unwrap();
    for _ in 0..4 {
        first.train_step().unwrap();
    }
    first.save_checkpoint(dir.path(), "ck").unwrap();
    drop(first);
    let mut resumed = Trainer::from_checkpoint(&dir.path().join("ck.json"), &Device::Cpu).unwrap();
    assert_eq!(resumed.step(), 4);
    while !resumed.finished() {
        resumed.train_step().unwrap();
    }
    let bits = |t: &Trainer| -> Vec<Vec<u32>> {
        t.network()
            .vars()
            .iter()
            .map(|v| {
                v.flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            })
            .collect()
    };
    assert_eq!(bits(&straight), bits(&resumed));
    assert_eq!(straight.edges().unwrap(), resumed.edges().unwrap());
    let strip = |t: &Trainer| -> Vec<(usize, u64, Option<anagrad::train::TestMetrics>)> {
        t.records()
            .iter()
            .map(|r| (r.step, r.loss.to_bits(), r.test.clone()))
            .collect()
    };
    assert_eq!(strip(&straight), strip(&resumed));
    assert_eq!(
        straight.best().map(|b| b.step),
        resumed.best().map(|b| b.step)
    );
}

#[test]
fn written_files_exist_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(Objective::Cls, 6);
    let opts = RunOptions {
        out: dir.path().join("run"),
        device: Device::Cpu,
        progress: false,
        figures: true,
    };
    let report = run::train(&cfg, &opts).unwrap();
    assert_eq!(report.steps, 6);
    for f in &report.files {
        let meta = std::fs::metadata(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(meta.len() > 0, "{} is empty", f.display());
        let ext = f.extension().unwrap().to_str().unwrap();
        match ext {
            "json" => {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
                assert!(!v.is_null());
            }
            "toml" => {
                TrainConfig::from_path(f).unwrap();
            }
            "csv" => {
                let text = std::fs::read_to_string(f).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines.len(), 7, "header + 6 steps");
                let ncol = lines[0].split(',').count();
                assert!(lines.iter().all(|l| l.split(',').count() == ncol));
                // step 3 was evaluated: its test CLs parses as a number
                let cls: f64 = lines[3].split(',').nth(4).unwrap().parse().unwrap();
                assert!(cls > 0.0 && cls < 1.0);
            }
            "svg" => {
                let text = std::fs::read_to_string(f).unwrap();
                assert!(text.contains("<svg"), "{}", f.display());
            }
            "png" => {
                let bytes = std::fs::read(f).unwrap();
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
            }
            "safetensors" => {
                let m = candle_core::safetensors::load(f, &Device::Cpu).unwrap();
                assert!(m.contains_key("var.0"));
            }
            other => panic!("unexpected file type {other}"),
        }
    }
    let names: Vec<String> = report
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "config.toml",
        "metrics.json",
        "metrics.csv",
        "summary.json",
        "checkpoint.json",
        "checkpoint.safetensors",
        "metrics.svg",
        "metrics.png",
        "yields.png",
        "contours.svg",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // resuming a finished run is a no-op that rewrites the same results
    let again = run::resume(
        &opts.out.join("checkpoint.json"),
        &RunOptions {
            figures: false,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(again.steps, 6);
}

/// Adam's moments must not keep the step's graph alive: a gradient of a leaf
/// records the ops that made it (here dL/dw2 = h1ᵀ·g with h1 on the tape), and
/// moments built from it would chain every step's activations (this leaked
/// ~80 MB per neos step before the fix).
#[test]
fn adam_state_holds_no_graph() {
    use anagrad::train::adam::{Adam, AdamParams};
    use candle_core::{Tensor, Var};
    let dev = Device::Cpu;
    let var = |v: &[[f32; 2]; 2]| Var::from_tensor(&Tensor::new(v, &dev).unwrap()).unwrap();
    let w1 = var(&[[0.5, -1.0], [2.0, 0.25]]);
    let w2 = var(&[[1.5, 0.5], [-0.5, 1.0]]);
    let x = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &dev).unwrap();
    let params = AdamParams {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let mut adam = Adam::new(vec![(w1.clone(), 1e-2), (w2.clone(), 1e-2)], params).unwrap();
    for _ in 0..3 {
        let h1 = x.matmul(w1.as_tensor()).unwrap().relu().unwrap();
        let loss = h1
            .matmul(w2.as_tensor())
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        // the premise: a raw gradient does carry a graph
        assert!(grads.get(w2.as_tensor()).unwrap().track_op());
        adam.step(&grads).unwrap();
        let (_, m, v) = adam.state();
        assert!(m.iter().chain(&v).all(|t| !t.track_op()));
    }
}
