//! The study pipelines: dL/dθ through the bKDE (candle autograd) against
//! central finite differences of the loss on the same dataset, and the
//! cut-threshold study's mean gradient against its analytic hard-histogram
//! truth at a small bandwidth.

use anagrad::study::bandwidth::dataset;
use anagrad::study::config::{OutsideMode, PipelineConfig, StudyConfig};
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
