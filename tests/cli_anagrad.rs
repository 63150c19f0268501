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

fn qtilde_calculator(m: &Model) -> AsymptoticCalculator<'_, Model> {
    AsymptoticCalculator::new(
        m,
        &m.observed_data(),
        FitSetup::from_model(m),
        FitOptions::default(),
        TestStat::QmuTilde,
    )
    .unwrap()
}

#[test]
fn cls_matches_library_and_pyhf_fixture() {
    let ex = example();
    let out = json_ok(&run(&["cls", ex.to_str().unwrap()]));
    let m = example_model();
    let calc = qtilde_calculator(&m);
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

/// `fit --fix-poi` is pyhf's fixed_poi_fit; `fit --asimov [--fix-poi MU]` are the
/// hypotest's fits on the background-only Asimov data, so their twice_nll
/// difference is the hypotest's q̃_A at MU.
#[test]
fn fit_fix_poi_and_asimov_are_the_hypotests_fits() {
    let ex = example();
    let ex = ex.to_str().unwrap();
    let m = example_model();
    let poi = m.poi_index().unwrap();
    let mu = 1.3;
    let fixed = json_ok(&run(&["fit", ex, "--fix-poi", "1.3"]));
    let poi_name = &m.par_sets()[poi].0;
    assert_eq!(floats(&fixed["mle_parameters"][poi_name]), vec![mu]);
    assert_eq!(fixed["data"], "observed");
    let calc = qtilde_calculator(&m);
    let free_a = json_ok(&run(&["fit", ex, "--asimov"]));
    let fixed_a = json_ok(&run(&["fit", ex, "--asimov", "--fix-poi", "1.3"]));
    assert_eq!(fixed_a["fixed_poi"].as_f64(), Some(mu));
    assert!(fixed_a["data"].as_str().unwrap().starts_with("asimov"));
    // the Asimov data are generated at POI 0: the free fit returns there
    assert!(floats(&free_a["mle_parameters"][poi_name])[0].abs() < 1e-6);
    let qa = fixed_a["twice_nll"].as_f64().unwrap() - free_a["twice_nll"].as_f64().unwrap();
    let (_, qa_lib) = calc.test_statistics(mu).unwrap();
    assert!(
        (qa - qa_lib).abs() < 1e-7 * qa_lib.max(1.0),
        "{qa} vs {qa_lib}"
    );
    assert!(qa > 0.1, "q_A at 1.3 should be clearly positive: {qa}");
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
        "--strict",
        "--patchset",
        "--patch-name",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn example_value() -> Value {
    serde_json::from_str(&std::fs::read_to_string(example()).unwrap()).unwrap()
}

/// ROOT's exporter style: a `lumi` configuration but no lumi modifier. Runs
/// with a located warning on stderr and the fit of the workspace without the
/// configuration; `--strict` makes it the old error.
#[test]
fn lumi_config_without_lumi_modifier_warns_and_strict_rejects() {
    let mut v = example_value();
    for c in v["channels"].as_array_mut().unwrap() {
        for s in c["samples"].as_array_mut().unwrap() {
            s["modifiers"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["type"] != "lumi");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root_style = dir.path().join("root_style.json");
    std::fs::write(&root_style, v.to_string()).unwrap();
    let mut clean = v.clone();
    clean["measurements"][0]["config"]["parameters"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["name"] != "lumi");
    let clean_path = dir.path().join("clean.json");
    std::fs::write(&clean_path, clean.to_string()).unwrap();

    let out = run(&["fit", root_style.to_str().unwrap()]);
    let f = json_ok(&out);
    let err = stderr_of(&out);
    assert!(
        err.starts_with("warning: measurements[0].config.parameters[0] ('lumi'): configures 'lumi', which is not a parameter of the model"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out_clean = run(&["fit", clean_path.to_str().unwrap(), "--strict"]);
    assert!(stderr_of(&out_clean).is_empty());
    let g = json_ok(&out_clean);
    assert_eq!(f["twice_nll"], g["twice_nll"]);
    assert_eq!(f["mle_parameters"], g["mle_parameters"]);
    assert!(f["mle_parameters"].get("lumi").is_none());
    // every command that reads a workspace takes --strict
    for cmd in ["cls", "fit", "significance", "upper-limit", "inspect"] {
        let out = run(&[cmd, root_style.to_str().unwrap(), "--strict"]);
        assert!(!out.status.success(), "{cmd}");
        let err = stderr_of(&out);
        assert!(
            err.starts_with("error: measurements[0].config.parameters[0]")
                && err.contains("not a parameter of the model"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn negative_yields_warn_or_fail_with_located_messages() {
    let dir = tempfile::tempdir().unwrap();
    let with = |data: Value| {
        let mut v = example_value();
        v["channels"][1]["samples"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "negw", "data": data, "modifiers": []}));
        let p = dir.path().join("neg.json");
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    // CR (channels[1]) has ttbar + wjets in the hundreds: small negative yields are fine
    let ok = with(serde_json::json!([-5.0, 2.0, -1.5]));
    let out = run(&["cls", ok.to_str().unwrap()]);
    let c = json_ok(&out);
    assert!(c["CLs_obs"].as_f64().unwrap().is_finite());
    let err = stderr_of(&out);
    assert!(
        err.starts_with("warning: channels[1].samples[2].data[0] ('negw'): negative nominal yield -5 (and 1 more bins)"),
        "{err}"
    );
    let out = run(&["cls", ok.to_str().unwrap(), "--strict"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.starts_with(
            "error: channels[1].samples[2].data[0] ('negw'): nominal yield must be finite and >= 0"
        ),
        "{err}"
    );
    // a bin whose total rate is negative: located error in both modes
    let bad = with(serde_json::json!([0.0, -1e4, 0.0]));
    for extra in [None, Some("--strict")] {
        let mut args = vec!["fit", bad.to_str().unwrap()];
        args.extend(extra);
        let out = run(&args);
        assert!(!out.status.success());
        let err = stderr_of(&out);
        assert!(err.contains("error: channels[1]"), "{err}");
        if extra.is_none() {
            assert!(
                err.contains("channels[1] ('CR') bin 1: the total expected rate"),
                "{err}"
            );
        }
    }
}

/// A patchset for examples/workspace.json: signal hypotheses as patches of
/// the signal yields, with the example's digest as pyhf computes it.
fn example_patchset(dir: &Path) -> (PathBuf, Value) {
    let digest = anagrad::hf::patchset::workspace_digest(&example_value());
    let sig = |k: f64| {
        serde_json::json!([{"op": "replace", "path": "/channels/0/samples/0/data",
                            "value": [2.1 * k, 5.3 * k, 9.8 * k, 6.2 * k]}])
    };
    let ps = serde_json::json!({
        "metadata": {"description": "example signal grid", "references": {"hepdata": "ins0000000"},
                     "digests": {"sha256": digest}, "labels": ["m", "scale"]},
        "patches": [
            {"metadata": {"name": "m300_x2", "values": [300, 2.0]}, "patch": sig(2.0)},
            {"metadata": {"name": "m400_x05", "values": [400, 0.5]}, "patch": sig(0.5)}
        ],
        "version": "1.0.0"
    });
    let path = dir.join("patchset.json");
    std::fs::write(&path, ps.to_string()).unwrap();
    (path, ps)
}

#[test]
fn patchset_equals_the_same_patch_and_combines_with_p() {
    let ex = example();
    let ex = ex.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ps, ps_json) = example_patchset(dir.path());
    let ps = ps.to_str().unwrap();
    let plain = dir.path().join("m400.patch.json");
    std::fs::write(&plain, ps_json["patches"][1]["patch"].to_string()).unwrap();
    let plain = plain.to_str().unwrap();
    let data = dir.path().join("data.patch.json");
    std::fs::write(
        &data,
        r#"[{"op": "replace", "path": "/observations/0/data/0", "value": 95.0}]"#,
    )
    .unwrap();
    let data = data.to_str().unwrap();

    let by_set = run(&["cls", ex, "--patchset", ps, "--patch-name", "m400_x05"]);
    assert!(stderr_of(&by_set).is_empty(), "{}", stderr_of(&by_set));
    let by_set = json_ok(&by_set);
    let by_patch = json_ok(&run(&["cls", ex, "-p", plain]));
    assert_eq!(by_set, by_patch);
    let nominal = json_ok(&run(&["cls", ex]));
    assert_ne!(by_set["CLs_obs"], nominal["CLs_obs"]);
    // combined with -p (the patchset's patch first, as `pyhf patchset apply` then `-p`)
    let both = json_ok(&run(&[
        "fit",
        ex,
        "--patchset",
        ps,
        "--patch-name",
        "m400_x05",
        "-p",
        data,
    ]));
    let both_plain = json_ok(&run(&["fit", ex, "-p", plain, "-p", data]));
    assert_eq!(both, both_plain);
    // `patchset apply` writes the same workspace
    let applied = dir.path().join("applied.json");
    let out = run(&[
        "patchset",
        "apply",
        ex,
        ps,
        "--name",
        "m400_x05",
        "--output-file",
        applied.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let from_file = json_ok(&run(&["cls", applied.to_str().unwrap()]));
    assert_eq!(from_file, by_set);
    // `patchset ls`
    let out = run(&["patchset", "ls", ps]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("m  scale"), "{text}");
    assert!(
        text.contains("m300_x2") && text.contains("m400_x05"),
        "{text}"
    );
    let j = json_ok(&run(&["patchset", "ls", ps, "--json"]));
    assert_eq!(j["patches"][1]["name"], "m400_x05");
    assert_eq!(j["labels"], serde_json::json!(["m", "scale"]));
}

#[test]
fn patchset_errors_are_located() {
    let ex = example();
    let ex = ex.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ps, mut ps_json) = example_patchset(dir.path());
    let ps = ps.to_str().unwrap();
    // unknown patch name: the available ones are listed
    let out = run(&["cls", ex, "--patchset", ps, "--patch-name", "m500"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.starts_with("error: patch patchset ")
            && err.contains("no patch named 'm500' (available: m300_x2, m400_x05)"),
        "{err}"
    );
    // --patch-name needs --patchset and vice versa
    assert!(!run(&["cls", ex, "--patch-name", "m300_x2"])
        .status
        .success());
    assert!(!run(&["cls", ex, "--patchset", ps]).status.success());
    // a different background-only workspace: digest mismatch
    let other = dir.path().join("other.json");
    let mut v = example_value();
    v["observations"][0]["data"][0] = serde_json::json!(89);
    std::fs::write(&other, v.to_string()).unwrap();
    let out = run(&[
        "cls",
        other.to_str().unwrap(),
        "--patchset",
        ps,
        "--patch-name",
        "m300_x2",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("digests.sha256"),
        "{}",
        stderr_of(&out)
    );
    // a malformed patchset
    ps_json["patches"][0]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("values");
    let bad = dir.path().join("bad_ps.json");
    std::fs::write(&bad, ps_json.to_string()).unwrap();
    let out = run(&[
        "fit",
        ex,
        "--patchset",
        bad.to_str().unwrap(),
        "--patch-name",
        "m300_x2",
    ]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("bad_ps.json")
            && err.contains("patches[0].metadata: missing required key 'values'"),
        "{err}"
    );
}
