//! The `anagrad` binary end to end: JSON keys and values (against the
//! library, and against pyhf where a fixture has them), `-` for stdin, `-p`
//! patches, `--output-file`, and clean failures with located messages.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::{
    fit, significance, AsymptoticCalculator, FitOptions, FitSetup, Likelihood, TestStat,
};
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_anagrad"))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workspace.json")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run anagrad")
}

fn json_ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn example_model() -> Model {
    let ws = Workspace::from_path(&example()).unwrap();
    Model::new(&ws, &ModelOptions::default()).unwrap()
}

#[test]
fn cls_matches_library_and_pyhf_fixture() {
    let ex = example();
    let out = json_ok(&run(&["cls", ex.to_str().unwrap()]));
    let m = example_model();
    let calc = AsymptoticCalculator::new(
        &m,
        &m.observed_data(),
        FitSetup::from_model(&m),
        FitOptions::default(),
        TestStat::QmuTilde,
    )
    .unwrap();
    let r = calc.hypotest(1.0).unwrap();
    assert_eq!(out["CLs_obs"].as_f64().unwrap(), r.cls_obs);
    assert_eq!(floats(&out["CLs_exp"]), r.cls_exp.to_vec());
    let exp = floats(&out["CLs_exp"]);
    assert_eq!(exp.len(), 5);
    for k in 0..4 {
        assert!(exp[k] < exp[k + 1], "pyhf order: n_sigma 2 … −2");
    }
    // pyhf's numbers for the same workspace, when the fixture has them
    let fx: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyhf/refs/example.json"),
        )
        .unwrap(),
    )
    .unwrap();
    if let Some(h) = fx["hypotest"]["qtilde"].as_object() {
        let want = h["CLs_obs"].as_f64().unwrap();
        let got = out["CLs_obs"].as_f64().unwrap();
        assert!(((got - want) / want).abs() < 1e-5, "{got} vs pyhf {want}");
        for (g, w) in exp.iter().zip(floats(&h["CLs_exp"])) {
            assert!(((g - w) / w).abs() < 1e-5, "{g} vs pyhf {w}");
        }
    }
    // --test-stat q and --test-poi are honoured
    let q = json_ok(&run(&[
        "cls",
        ex.to_str().unwrap(),
        "--test-stat",
        "q",
        "--test-poi",
        "2.5",
    ]));
    assert_eq!(q["test_stat"], "q");
    assert_eq!(q["poi_test"].as_f64().unwrap(), 2.5);
}

#[test]
fn stdin_and_output_file() {
    let ex = example();
    let text = std::fs::read_to_string(&ex).unwrap();
    let mut child = bin()
        .args(["cls", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let from_stdin = json_ok(&child.wait_with_output().unwrap());
    let from_file = json_ok(&run(&["cls", ex.to_str().unwrap()]));
    assert_eq!(from_stdin, from_file);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let out = run(&[
        "cls",
        ex.to_str().unwrap(),
        "--output-file",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout with --output-file"
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written, from_file);
}

#[test]
fn patch_changes_the_model() {
    let ex = example();
    let dir = tempfile::tempdir().unwrap();
    let patch = r#"[{"op": "replace", "path": "/measurements/0/config/poi", "value": "mu_ttbar"}]"#;
    let ppath = dir.path().join("poi.patch.json");
    std::fs::write(&ppath, patch).unwrap();
    let out = json_ok(&run(&[
        "fit",
        ex.to_str().unwrap(),
        "-p",
        ppath.to_str().unwrap(),
    ]));
    let mut ws = Workspace::from_path(&ex).unwrap();
    ws.apply_patch(patch, "poi.patch.json").unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert_eq!(m.par_sets()[m.poi_index().unwrap()].0, "mu_ttbar");
    let r = fit(
        &m,
        &m.observed_data(),
        &FitSetup::from_model(&m),
        &FitOptions::default(),
    )
    .unwrap();
    assert_eq!(out["twice_nll"].as_f64().unwrap(), r.twice_nll);
    // a patch that changes the data changes CLs
    let data_patch = r#"[{"op": "replace", "path": "/observations/0/data/0", "value": 400.0}]"#;
    let dpath = dir.path().join("data.patch.json");
    std::fs::write(&dpath, data_patch).unwrap();
    let a = json_ok(&run(&["cls", ex.to_str().unwrap()]));
    let b = json_ok(&run(&[
        "cls",
        ex.to_str().unwrap(),
        "--patch",
        dpath.to_str().unwrap(),
    ]));
    assert_ne!(a["CLs_obs"], b["CLs_obs"]);
}

#[test]
fn fit_significance_upper_limit_inspect_keys() {
    let ex = example();
    let ex = ex.to_str().unwrap();
    let m = example_model();

    let f = json_ok(&run(&["fit", ex, "--value"]));
    let pars = f["mle_parameters"].as_object().unwrap();
    let unc = f["uncertainties"].as_object().unwrap();
    assert_eq!(pars.len(), m.par_sets().len());
    for (name, _, len) in m.par_sets() {
        assert_eq!(pars[&name].as_array().unwrap().len(), len);
        assert_eq!(unc[&name].as_array().unwrap().len(), len);
    }
    assert!(f["twice_nll"].as_f64().unwrap().is_finite());

    let s = json_ok(&run(&["significance", ex]));
    let lib = significance(&m, &m.observed_data(), &FitOptions::default()).unwrap();
    assert_eq!(s["p0_obs"].as_f64().unwrap(), lib.p0_obs);
    assert_eq!(s["Z_obs"].as_f64().unwrap(), lib.z_obs);
    assert_eq!(floats(&s["p0_exp"]).len(), 5);
    assert_eq!(floats(&s["Z_exp"]).len(), 5);

    let ul = json_ok(&run(&["upper-limit", ex]));
    let obs = ul["obs_limit"].as_f64().unwrap();
    let exp = floats(&ul["exp_limits"]);
    assert_eq!(exp.len(), 5);
    // CLs at the observed limit is the level
    let c = json_ok(&run(&["cls", ex, "--test-poi", &obs.to_string()]));
    assert!((c["CLs_obs"].as_f64().unwrap() - 0.05).abs() < 1e-8);
    let sc = json_ok(&run(&["upper-limit", ex, "--scan", "0:5:51"]));
    assert!((sc["obs_limit"].as_f64().unwrap() - obs).abs() < 2e-2 * obs);
    assert_eq!(sc["tested"].as_array().unwrap().len(), 51);

    let text = run(&["inspect", ex]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    for word in [
        "channels",
        "samples",
        "parameters",
        "measurement",
        "normsys",
    ] {
        assert!(text.contains(word), "inspect output lacks {word}:\n{text}");
    }
    let j = json_ok(&run(&["inspect", ex, "--json"]));
    assert_eq!(j["n_parameters"].as_u64().unwrap() as usize, m.n_pars());
    assert_eq!(
        j["parameters"].as_array().unwrap().len(),
        m.par_sets().len()
    );
}

#[test]
fn bad_inputs_fail_cleanly_with_located_messages() {
    // a histosys with a wrong bin count: located error, non-zero exit, no panic
    let mut ws: Value = serde_json::from_str(&std::fs::read_to_string(example()).unwrap()).unwrap();
    let mods = ws["channels"][0]["samples"][0]["modifiers"]
        .as_array_mut()
        .unwrap();
    mods.push(serde_json::json!({
        "name": "broken", "type": "histosys",
        "data": {"hi_data": [1.0], "lo_data": [1.0]}
    }));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, ws.to_string()).unwrap();
    let out = run(&["cls", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("channels[0].samples[0].modifiers["), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let missing = dir.path().join("nope.json");
    let out = run(&["cls", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("nope.json"), "{err}");
    assert!(err.starts_with("error: "), "{err}");

    std::fs::write(&bad, "{ not json").unwrap();
    let out = run(&["fit", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("error: "));

    let out = run(&[
        "upper-limit",
        example().to_str().unwrap(),
        "--scan",
        "5:1:3",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("--scan"));
}

#[test]
fn cls_help_explains_every_option() {
    let out = run(&["cls", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "WORKSPACE",
        "--test-poi",
        "--test-stat",
        "--measurement",
        "--patch",
        "--normsys-interp",
        "--histosys-interp",
        "--output-file",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
}
