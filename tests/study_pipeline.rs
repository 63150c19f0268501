//! The study pipelines: dL/dθ through the bKDE (candle autograd) against
//! central finite differences of the loss on the same dataset, and the
//! cut-threshold study's mean gradient against its analytic hard-histogram
//! truth at a small bandwidth; the cut-z0 pipeline (Z0 through `grad::Loss`)
//! against finite differences and its truth against finite differences of
//! Z0 at the expected yields.

use anagrad::study::bandwidth::dataset;
use anagrad::study::config::{Binning, OutsideMode, PipelineConfig, StudyConfig};
use anagrad::study::pipeline::Pipeline;
use anagrad::study::run_study;
use indicatif::ProgressBar;

fn cut_config(slope: Option<f64>) -> StudyConfig {
    StudyConfig {
        pipeline: PipelineConfig::CutThreshold {
            theta: 0.3,
            data_mean: 0.2,
            target_threshold: 0.0,
            slope,
        },
        ..StudyConfig::default()
    }
}

fn check_fd(cfg: &StudyConfig, h: f64) {
    let p = Pipeline::new(cfg).unwrap();
    let data = dataset(cfg.seed, 300, 4);
    let (_, g) = p.loss_and_gradient(&data, h).unwrap();
    let eps = 1e-4 * h.max(0.05);
    let lp = p
        .with_theta(p.theta() + eps)
        .loss_and_gradient(&data, h)
        .unwrap()
        .0;
    let lm = p
        .with_theta(p.theta() - eps)
        .loss_and_gradient(&data, h)
        .unwrap()
        .0;
    let fd = (lp - lm) / (2.0 * eps);
    assert!(
        (g - fd).abs() <= 1e-6 * g.abs().max(1e-3),
        "{:?} h={h}: autograd {g} vs finite difference {fd}",
        cfg.pipeline
    );
}

fn z0_config(slope: Option<f64>) -> StudyConfig {
    StudyConfig {
        ns: vec![400],
        ratios: vec![0.05, 0.5],
        datasets: 24,
        binning: Binning {
            low: -2.0,
            high: 2.0,
            bins: 4,
            outside: OutsideMode::Fold,
        },
        pipeline: PipelineConfig::CutZ0 {
            theta: 0.5,
            signal_mean: 1.0,
            background_mean: 0.0,
            signal_yield: 20.0,
            background_yield: 100.0,
            slope,
        },
        ..StudyConfig::default()
    }
}

#[test]
fn cut_z0_gradient_matches_finite_differences() {
    for slope in [None, Some(8.0)] {
        let cfg = z0_config(slope);
        for h in [0.05, 0.3, 1.0] {
            check_fd(&cfg, h);
        }
    }
}

#[test]
fn cut_z0_truth_and_study() {
    let cfg = z0_config(None);
    let p = Pipeline::new(&cfg).unwrap();
    let (z, g) = p.truth(1).unwrap();
    let eps = 1e-5;
    let zp = p.with_theta(0.5 + eps).truth(1).unwrap().0;
    let zm = p.with_theta(0.5 - eps).truth(1).unwrap().0;
    let fd = (zp - zm) / (2.0 * eps);
    assert!((g - fd).abs() < 1e-6 * g.abs(), "truth {g} vs fd {fd}");
    // Without systematics Z0 is the Asimov formula
    // √(2 Σ_b [(s+b) ln(1 + s/b) − s]) at the floored expected yields; the
    // reference values are that formula in Python (math.erf), dZ0/dθ by
    // central differences with step 1e-6.
    assert!((z - 2.488_187_819_561_805).abs() < 1e-8, "Z0 = {z}");
    assert!((g + 0.248_170_347_827).abs() < 1e-7, "dZ0/dθ = {g}");
    // A cut inside the signal-rich bin only removes events: Z0 decreases.
    assert!(g < 0.0);

    let report = run_study(&cfg, &ProgressBar::hidden()).unwrap();
    assert_eq!(report.cells.len(), 2);
    for c in &report.cells {
        assert!(c.mean.is_finite() && c.std.is_finite() && c.std > 0.0);
        assert_eq!(c.truth, g);
    }
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["truth_method"].as_str().unwrap().contains("Z0"));
    let back: StudyConfig = serde_json::from_value(json["config"].clone()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn cut_z0_config_errors() {
    let e = StudyConfig::from_toml_str("ns = [1, 10]\n[pipeline]\nkind = \"cut-z0\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ns[0]"), "{e}");
    let e = StudyConfig::from_toml_str("[pipeline]\nkind = \"cut-z0\"\nsignal_yield = 0.0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pipeline.signal_yield"), "{e}");
    let e = StudyConfig::from_toml_str("[pipeline]\nkind = \"cut-z0\"\ntheta = 1.0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pipeline.theta"), "{e}");
    let e = StudyConfig::from_toml_str("[pipeline]\nkind = \"cut-z0\"\ntarget_mean = 1.0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("target_mean"), "{e}");
    let ok = StudyConfig::from_toml_str("[pipeline]\nkind = \"cut-z0\"\n").unwrap();
    assert!(matches!(ok.pipeline, PipelineConfig::CutZ0 { theta, .. } if theta == 0.5));
}

#[test]
fn gradients_match_finite_differences() {
    for h in [0.05, 0.3, 1.0] {
        check_fd(&StudyConfig::default(), h);
        let mut fold = StudyConfig::default();
        fold.binning.outside = OutsideMode::Fold;
        check_fd(&fold, h);
        check_fd(&cut_config(None), h);
        check_fd(&cut_config(Some(8.0)), h);
    }
}

#[test]
fn cut_threshold_study_is_unbiased_at_small_bandwidth() {
    // Soft cut as wide as the kernel (slope 1.702/h): as h → 0 the pipeline
    // tends to the hard cut + hard histogram, whose expected-loss gradient is
    // analytic. At r = 0.02 the bias is far below the MC error of 400 datasets.
    let cfg = StudyConfig {
        ns: vec![1000],
        ratios: vec![0.02, 1.0],
        datasets: 400,
        ..cut_config(None)
    };
    let report = run_study(&cfg, &ProgressBar::hidden()).unwrap();
    let small = &report.cells[0];
    let sem = small.std / (small.datasets as f64).sqrt();
    assert!(
        small.bias.abs() < 4.0 * sem,
        "r=0.02: mean {} vs true {} (sem {sem})",
        small.mean,
        small.truth
    );
    assert!(
        small.truth.abs() > 10.0 * sem,
        "the test must resolve the gradient"
    );
    // A bandwidth of a whole bin is visibly biased (and less noisy).
    let wide = &report.cells[1];
    let sem_w = wide.std / (wide.datasets as f64).sqrt();
    assert!(
        wide.bias.abs() > 4.0 * sem_w,
        "r=1: bias {} sem {sem_w}",
        wide.bias
    );
    assert!(wide.std < small.std);
}

#[test]
fn results_are_reproducible() {
    let cfg = StudyConfig {
        ns: vec![200],
        ratios: vec![0.1],
        datasets: 16,
        ..StudyConfig::default()
    };
    let a = run_study(&cfg, &ProgressBar::hidden()).unwrap();
    let b = run_study(&cfg, &ProgressBar::hidden()).unwrap();
    assert_eq!(a.cells, b.cells);
    let c = run_study(&StudyConfig { seed: 1, ..cfg }, &ProgressBar::hidden()).unwrap();
    assert_ne!(a.cells[0].mean, c.cells[0].mean);
}
