//! Study configuration: defaults, parsing, and a typed error naming the key
//! for every bad input.

use anagrad::study::config::{OutsideMode, PipelineConfig, StudyConfig};
use anagrad::Error;

fn config_error(text: &str) -> (String, String) {
    match StudyConfig::from_toml_str(text) {
        Err(Error::Config { key, message }) => (key, message),
        Err(e) => panic!("expected Error::Config for {text:?}, got {e:?}"),
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
    }
}

#[test]
fn empty_document_is_the_default_study() {
    let cfg = StudyConfig::from_toml_str("").unwrap();
    assert_eq!(cfg, StudyConfig::default());
    assert_eq!(cfg.ns, vec![100, 1000, 10000]);
    assert_eq!(cfg.ratios, vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]);
    assert_eq!(cfg.datasets, 500);
    assert_eq!(
        cfg.binning.edges(),
        vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(cfg.binning.outside, OutsideMode::Drop);
    assert_eq!(
        cfg.pipeline,
        PipelineConfig::GaussianShift {
            theta: 0.0,
            target_mean: 0.5
        }
    );
    assert_eq!(cfg.evaluations(), 3 * 7 * 500);
}

#[test]
fn full_document_parses() {
    let cfg = StudyConfig::from_toml_str(
        r#"
        ns = [50, 500]
        ratios = [0.1, 0.3]
        datasets = 40
        seed = 7
        [binning]
        low = 0.0
        high = 2.0
        bins = 4
        outside = "fold"
        [pipeline]
        kind = "cut-threshold"
        theta = 0.7
        data_mean = 1.0
        target_threshold = 0.2
        slope = 30.0
        "#,
    )
    .unwrap();
    assert_eq!(cfg.ns, vec![50, 500]);
    assert_eq!(cfg.binning.edges(), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    assert_eq!(cfg.binning.outside, OutsideMode::Fold);
    assert_eq!(
        cfg.pipeline,
        PipelineConfig::CutThreshold {
            theta: 0.7,
            data_mean: 1.0,
            target_threshold: 0.2,
            slope: Some(30.0)
        }
    );
}

#[test]
fn unknown_top_level_key() {
    let (key, msg) = config_error("ratio = [0.1]\n");
    assert_eq!(key, "ratio");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn unknown_nested_keys() {
    let (key, msg) = config_error("[binning]\nnbins = 3\n");
    assert_eq!(key, "nbins");
    assert!(msg.contains("unknown field"), "{msg}");
    let (key, _) = config_error("[pipeline]\nkind = \"gaussian-shift\"\nslope = 3.0\n");
    assert_eq!(key, "pipeline.slope");
    let (_, msg) = config_error("[pipeline]\nkind = \"blobs-cls\"\n");
    assert!(msg.contains("unknown variant"), "{msg}");
}

#[test]
fn wrong_type() {
    let (key, msg) = config_error("datasets = \"many\"\n");
    assert!(key.contains("many"), "{key}");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn bad_ratios() {
    let (key, msg) = config_error("ratios = [0.1, 0.0]\n");
    assert_eq!(key, "ratios[1]");
    assert!(msg.contains("> 0"), "{msg}");
    let (key, _) = config_error("ratios = [-0.5]\n");
    assert_eq!(key, "ratios[0]");
    let (key, _) = config_error("ratios = [nan]\n");
    assert_eq!(key, "ratios[0]");
    let (key, _) = config_error("ratios = []\n");
    assert_eq!(key, "ratios");
}

#[test]
fn bad_sample_sizes_and_counts() {
    let (key, msg) = config_error("ns = []\n");
    assert_eq!(key, "ns");
    assert!(msg.contains("empty"), "{msg}");
    let (key, _) = config_error("ns = [10, 0]\n");
    assert_eq!(key, "ns[1]");
    let (key, _) = config_error("datasets = 1\n");
    assert_eq!(key, "datasets");
    // A negative count is a type error from serde (usize), still with the key's value.
    let (_, msg) = config_error("ns = [-5]\n");
    assert!(!msg.is_empty());
}

#[test]
fn bad_binning_and_pipeline_values() {
    assert_eq!(config_error("[binning]\nbins = 0\n").0, "binning.bins");
    assert_eq!(
        config_error("[binning]\nlow = 1.0\nhigh = 1.0\n").0,
        "binning.high"
    );
    assert_eq!(
        config_error("[pipeline]\nkind = \"cut-threshold\"\nslope = -1.0\n").0,
        "pipeline.slope"
    );
    let (key, msg) = config_error("[pipeline]\nkind = \"cut-threshold\"\ntheta = 1.0\n");
    assert_eq!(key, "pipeline.theta");
    assert!(msg.contains("edge"), "{msg}");
    assert_eq!(
        config_error("[pipeline]\nkind = \"gaussian-shift\"\ntheta = inf\n").0,
        "pipeline.theta"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = StudyConfig::from_path(std::path::Path::new("/nonexistent/study.toml")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/study.toml"));
}
