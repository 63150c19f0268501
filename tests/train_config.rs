//! Training configuration: the embedded default, and errors that name the
//! offending key.

use anagrad::nn::Output;
use anagrad::train::{Objective, TrainConfig};
use anagrad::Error;

#[test]
fn embedded_default_is_the_issue_setup() {
    let c = TrainConfig::embedded_default().unwrap();
    assert_eq!(c.toy.name, "blobs");
    assert_eq!(c.training.objective, Objective::Cls);
    assert_eq!(c.network.hidden, vec![1024, 1024]);
    assert_eq!(c.network.output, Output::Sigmoid);
    assert_eq!(c.training.batch_size, 2000);
    assert_eq!(c.histogram.bins, 4);
    assert!(c.histogram.learnable_edges);
    assert_eq!(c.histogram.bandwidth, 0.09);
    assert_eq!(c.optimizer.lr, 1e-3);
    // round trip through TOML
    let again = TrainConfig::from_toml(&c.to_toml().unwrap()).unwrap();
    assert_eq!(again, c);
    // the full-length config ships as a file and parses
    let full = TrainConfig::from_path(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/neos_full.toml")
            .as_path(),
    )
    .unwrap();
    assert_eq!(full.training.max_steps, None);
    assert_eq!(full.total_steps(), 75);
}

fn key_of(text: &str) -> (String, String) {
    match TrainConfig::from_toml(text) {
        Err(Error::Config { key, message }) => (key, message),
        other => panic!("expected a config error for {text:?}, got {other:?}"),
    }
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[histogram]\nbins = 0", "histogram.bins"),
        ("[histogram]\nbandwidth = -0.1", "histogram.bandwidth"),
        ("[histogram]\nrange = [1.0, 0.0]", "histogram.range"),
        ("[training]\nbatch_size = 20000", "training.batch_size"),
        ("[training]\nmax_steps = 0", "training.max_steps"),
        ("[optimizer]\nlr = 0.0", "optimizer.lr"),
        ("[optimizer]\nbeta2 = 1.0", "optimizer.beta2"),
        ("[network]\nhidden = [8, 0]", "network.hidden[1]"),
        ("[network]\noutput = \"linear\"", "network.output"),
        (
            "[network]\noutput = \"softmax\"",
            "histogram.learnable_edges",
        ),
        ("[toy]\nname = \"nope\"", "toy.name"),
        ("[compare]\nseeds = []", "compare.seeds"),
    ];
    for (text, key) in cases {
        let (k, m) = key_of(text);
        assert_eq!(&k, key, "{text}: {m}");
    }
}

#[test]
fn syntax_and_unknown_keys_are_errors() {
    let (_, m) = key_of("[training]\nobjective = \"mse\"");
    assert!(m.contains("unknown variant"), "{m}");
    let (k, m) = key_of("[training]\nbatchsize = 10");
    assert!(m.contains("unknown field"), "{m}");
    assert!(k.contains("batchsize"), "{k}");
    let (_, m) = key_of("[training\n");
    assert!(!m.is_empty());
    let (_, m) = key_of("seed = \"one\"");
    assert!(m.contains("invalid type"), "{m}");
    assert!(TrainConfig::from_path(std::path::Path::new("/nonexistent/x.toml")).is_err());
}
