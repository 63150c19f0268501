//! Workspace validation: one test per class of malformed input, each
//! asserting that the error names the place (strict validation, where
//! every check is an error); pyhf's harmless leniencies accepted with
//! located warnings by default; patches and patchsets; round-trips.

use std::path::Path;

use anagrad::hf::{InterpCode, Model, ModelOptions, PatchSet, Validation, Workspace};
use anagrad::infer::Likelihood;
use anagrad::Error;
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "channels": [
            {"name": "CR", "samples": [
                {"name": "bkg", "data": [10.0, 20.0, 30.0], "modifiers": [
                    {"name": "bkg_norm", "type": "normfactor", "data": null}
                ]}
            ]},
            {"name": "SR", "samples": [
                {"name": "sig", "data": [1.0, 2.0, 3.0, 4.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": null},
                    {"name": "lumi", "type": "lumi", "data": null},
                    {"name": "jes", "type": "histosys", "data": {"lo_data": [0.9, 1.8, 2.7, 3.6], "hi_data": [1.1, 2.2, 3.3, 4.4]}}
                ]},
                {"name": "bkg", "data": [5.0, 6.0, 7.0, 8.0], "modifiers": [
                    {"name": "unc", "type": "shapesys", "data": [1.0, 1.0, 1.0, 1.0]},
                    {"name": "stat", "type": "staterror", "data": [0.5, 0.5, 0.5, 0.5]},
                    {"name": "bkg_xsec", "type": "normsys", "data": {"lo": 0.9, "hi": 1.1}}
                ]}
            ]}
        ],
        "observations": [
            {"name": "CR", "data": [10.0, 20.0, 30.0]},
            {"name": "SR", "data": [6.0, 8.0, 10.0, 12.0]}
        ],
        "measurements": [
            {"name": "meas", "config": {"poi": "mu", "parameters": [
                {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.5, 1.5]], "inits": [1.0]}
            ]}}
        ],
        "version": "1.0.0"
    })
}

/// Applies `edit` to the base workspace and returns the rendered error of
/// strict validation.
fn err_of(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = base();
    edit(&mut v);
    match Workspace::from_json_str_with(&v.to_string(), Validation::Strict) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message {msg:?} lacks {p:?}");
    }
}

#[test]
fn base_is_valid() {
    let ws = Workspace::from_json_str(&base().to_string()).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert_eq!(m.poi_name(), Some("mu"));
    // pyhf order: histosys, lumi, normfactor (first appearance), normsys, shapesys, staterror
    let names: Vec<String> = m.par_sets().into_iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        ["jes", "lumi", "bkg_norm", "mu", "bkg_xsec", "unc", "stat"]
    );
}

#[test]
fn histosys_wrong_bin_count() {
    let msg = err_of(|v| {
        v["channels"][1]["samples"][0]["modifiers"][2]["data"]["hi_data"] = json!([1.0, 2.0, 3.0]);
    });
    assert_has(
        &msg,
        &[
            "channels[1].samples[0].modifiers[2] (histosys 'jes')",
            "hi_data has 3 bins, channel 'SR' has 4",
        ],
    );
}

#[test]
fn sample_wrong_bin_count() {
    let msg = err_of(|v| v["channels"][1]["samples"][1]["data"] = json!([1.0, 2.0]));
    assert_has(
        &msg,
        &["channels[1].samples[1].data ('bkg')", "has 2 bins", "has 4"],
    );
}

#[test]
fn uncertainty_wrong_bin_count() {
    let msg = err_of(|v| v["channels"][1]["samples"][1]["modifiers"][1]["data"] = json!([1.0]));
    assert_has(
        &msg,
        &["modifiers[1] (staterror 'stat')", "data has 1 bins"],
    );
}

#[test]
fn unknown_modifier_type() {
    let msg =
        err_of(|v| v["channels"][0]["samples"][0]["modifiers"][0]["type"] = json!("normfactr"));
    assert_has(
        &msg,
        &[
            "channels[0].samples[0].modifiers[0] (normfactr 'bkg_norm')",
            "unknown modifier type",
        ],
    );
}

#[test]
fn wrong_modifier_data_shape() {
    let msg =
        err_of(|v| v["channels"][1]["samples"][1]["modifiers"][2]["data"] = json!([0.9, 1.1]));
    assert_has(
        &msg,
        &[
            "modifiers[2].data (normsys 'bkg_xsec')",
            "expected an object",
        ],
    );
    let msg = err_of(|v| v["channels"][0]["samples"][0]["modifiers"][0]["data"] = json!(1.0));
    assert_has(
        &msg,
        &["modifiers[0].data (normfactor 'bkg_norm')", "data null"],
    );
}

#[test]
fn missing_and_unknown_keys() {
    let msg = err_of(|v| {
        v["channels"][0]["samples"][0]
            .as_object_mut()
            .unwrap()
            .remove("modifiers");
    });
    assert_has(
        &msg,
        &["channels[0].samples[0]", "missing required key 'modifiers'"],
    );
    let msg = err_of(|v| v["channels"][0]["samples"][0]["colour"] = json!("red"));
    assert_has(&msg, &["channels[0].samples[0]", "unknown key 'colour'"]);
}

#[test]
fn unknown_poi() {
    let msg = err_of(|v| v["measurements"][0]["config"]["poi"] = json!("mu_sig"));
    assert_has(
        &msg,
        &[
            "measurements[0].config.poi ('meas')",
            "'mu_sig' is not a parameter",
        ],
    );
}

#[test]
fn multi_bin_poi() {
    let msg = err_of(|v| v["measurements"][0]["config"]["poi"] = json!("unc"));
    assert_has(
        &msg,
        &["measurements[0].config.poi ('meas')", "single parameter"],
    );
}

#[test]
fn negative_observation() {
    let msg = err_of(|v| v["observations"][1]["data"][2] = json!(-1.0));
    assert_has(&msg, &["observations[1].data[2] ('SR')", ">= 0"]);
}

#[test]
fn negative_uncertainty() {
    let msg = err_of(|v| v["channels"][1]["samples"][1]["modifiers"][0]["data"][3] = json!(-0.5));
    assert_has(&msg, &["modifiers[0].data[3] (shapesys 'unc')", ">= 0"]);
}

#[test]
fn non_finite_yields_rejected() {
    // JSON cannot spell NaN; a workspace built in Rust can.
    let mut ws = Workspace::from_json_str(&base().to_string()).unwrap();
    ws.channels[1].samples[0].data[1] = f64::NAN;
    let msg = ws.validate().unwrap_err().to_string();
    assert_has(&msg, &["channels[1].samples[0].data[1] ('sig')", "finite"]);
    assert!(Model::new(&ws, &ModelOptions::default()).is_err());
}

#[test]
fn duplicate_names() {
    let msg = err_of(|v| v["channels"][1]["name"] = json!("CR"));
    assert_has(&msg, &["channels[1] ('CR')", "duplicate channel name"]);
    let msg = err_of(|v| v["channels"][1]["samples"][1]["name"] = json!("sig"));
    assert_has(
        &msg,
        &["channels[1].samples[1] ('sig')", "duplicate sample name"],
    );
    let msg = err_of(|v| {
        let m = v["measurements"][0].clone();
        v["measurements"].as_array_mut().unwrap().push(m);
    });
    assert_has(
        &msg,
        &["measurements[1] ('meas')", "duplicate measurement name"],
    );
    let msg = err_of(|v| {
        let m = v["channels"][0]["samples"][0]["modifiers"][0].clone();
        v["channels"][0]["samples"][0]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(m);
    });
    assert_has(
        &msg,
        &[
            "channels[0].samples[0].modifiers[1] (normfactor 'bkg_norm')",
            "appears twice",
        ],
    );
}

#[test]
fn unknown_parameter_config() {
    let msg = err_of(|v| {
        v["measurements"][0]["config"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "nope", "fixed": true}));
    });
    assert_has(
        &msg,
        &[
            "measurements[0].config.parameters[1] ('nope')",
            "not a parameter of the model",
        ],
    );
}

#[test]
fn parameter_config_wrong_length_and_attribute() {
    let msg = err_of(|v| {
        v["measurements"][0]["config"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "unc", "inits": [1.0, 1.0]}));
    });
    assert_has(
        &msg,
        &[
            "parameters[1].inits ('unc')",
            "has 2 values",
            "4 parameters",
        ],
    );
    let msg = err_of(|v| {
        v["measurements"][0]["config"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "mu", "sigmas": [1.0]}));
    });
    assert_has(
        &msg,
        &["parameters[1].sigmas ('mu')", "does not use 'sigmas'"],
    );
}

#[test]
fn bounds_lo_above_hi() {
    let msg =
        err_of(|v| v["measurements"][0]["config"]["parameters"][0]["bounds"] = json!([[1.5, 0.5]]));
    assert_has(
        &msg,
        &["parameters[0].bounds[0] ('lumi')", "above upper bound"],
    );
    let msg =
        err_of(|v| v["measurements"][0]["config"]["parameters"][0]["bounds"] = json!([[0.5]]));
    assert_has(&msg, &["parameters[0].bounds[0] ('lumi')", "pair"]);
}

#[test]
fn observation_missing_or_unknown_channel() {
    let msg = err_of(|v| v["observations"][1]["name"] = json!("XR"));
    assert_has(&msg, &["observations[1] ('XR')", "no channel named 'XR'"]);
    let msg = err_of(|v| {
        v["observations"].as_array_mut().unwrap().pop();
    });
    assert_has(&msg, &["channels[1] ('SR')", "no observation"]);
    let msg = err_of(|v| v["observations"][0]["data"] = json!([1.0, 2.0]));
    assert_has(&msg, &["observations[0].data ('CR')", "has 2 bins"]);
}

#[test]
fn inconsistent_shared_modifiers() {
    // shapesys cannot be shared
    let msg = err_of(|v| {
        v["channels"][0]["samples"][0]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "unc", "type": "shapesys", "data": [1.0, 1.0, 1.0]}));
    });
    assert_has(&msg, &["(shapesys 'unc')", "cannot be shared"]);
    // a normfactor also declared as a normsys
    let msg = err_of(|v| {
        v["channels"][1]["samples"][1]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "mu", "type": "normsys", "data": {"lo": 0.9, "hi": 1.1}}));
    });
    assert_has(
        &msg,
        &[
            "channels[1].samples[1].modifiers[3] (normsys 'mu')",
            "also declared as a normfactor",
        ],
    );
    // shapefactor over channels with different bin counts
    let msg = err_of(|v| {
        let sf = json!({"name": "sf", "type": "shapefactor", "data": null});
        v["channels"][0]["samples"][0]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(sf.clone());
        v["channels"][1]["samples"][1]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(sf);
    });
    assert_has(&msg, &["(shapefactor 'sf')", "different bin counts"]);
    // staterror used in different channels by different samples
    let msg = err_of(|v| {
        v["channels"][0]["samples"][0]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "stat", "type": "staterror", "data": [1.0, 1.0, 1.0]}));
        v["channels"][1]["samples"][0]["modifiers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "stat", "type": "staterror", "data": [0.1, 0.1, 0.1, 0.1]}));
        v["channels"][1]["samples"][0]["name"] = json!("sig2");
    });
    assert_has(&msg, &["staterror 'stat'", "same channels"]);
    // normsys and histosys may share a name (one parameter)
    let mut v = base();
    v["channels"][1]["samples"][1]["modifiers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "jes", "type": "normsys", "data": {"lo": 0.95, "hi": 1.05}}));
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert_eq!(m.par_sets().iter().filter(|s| s.0 == "jes").count(), 1);
}

#[test]
fn lumi_needs_configuration() {
    let msg = err_of(|v| v["measurements"][0]["config"]["parameters"] = json!([]));
    assert_has(
        &msg,
        &["measurements[0].config.parameters ('meas')", "lumi"],
    );
    let msg = err_of(|v| {
        v["measurements"][0]["config"]["parameters"][0]
            .as_object_mut()
            .unwrap()
            .remove("sigmas");
    });
    assert_has(&msg, &["parameters[0] ('lumi')", "needs 'sigmas'"]);
    let msg = err_of(|v| v["channels"][1]["samples"][0]["modifiers"][1]["name"] = json!("lumi2"));
    assert_has(&msg, &["(lumi 'lumi2')", "must be named 'lumi'"]);
}

#[test]
fn wrong_version_and_bad_json() {
    let msg = err_of(|v| v["version"] = json!("2.0.0"));
    assert_has(&msg, &["version", "1.0.0"]);
    match Workspace::from_json_str("{\"channels\": [") {
        Err(Error::Json { .. }) => {}
        other => panic!("expected a JSON error, got {other:?}"),
    }
    match Workspace::from_path(Path::new("/nonexistent/ws.json")) {
        Err(Error::Io { path, .. }) => assert!(path.contains("nonexistent")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn model_level_errors() {
    let ws = Workspace::from_json_str(&base().to_string()).unwrap();
    let opts = |f: &dyn Fn(&mut ModelOptions)| {
        let mut o = ModelOptions::default();
        f(&mut o);
        o
    };
    let e = Model::new(&ws, &opts(&|o| o.measurement = Some("other".into()))).unwrap_err();
    assert_has(&e.to_string(), &["no measurement named 'other'", "meas"]);
    let e = Model::new(&ws, &opts(&|o| o.poi = Some("zzz".into()))).unwrap_err();
    assert_has(&e.to_string(), &["'zzz'"]);
    let e = Model::new(&ws, &opts(&|o| o.normsys_interp = InterpCode::Code0)).unwrap_err();
    assert_has(&e.to_string(), &["normsys interpolation"]);
    let e = Model::new(&ws, &opts(&|o| o.histosys_interp = InterpCode::Code4)).unwrap_err();
    assert_has(&e.to_string(), &["histosys interpolation"]);
    let m = Model::new(&ws, &opts(&|o| o.poi = Some(String::new()))).unwrap();
    assert_eq!(m.poi_index(), None);
    // normsys factors must be positive for code1/code4
    let mut v = base();
    v["channels"][1]["samples"][1]["modifiers"][2]["data"]["lo"] = json!(0.0);
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let e = Model::new(&ws, &ModelOptions::default()).unwrap_err();
    assert_has(
        &e.to_string(),
        &[
            "channels[1].samples[1].modifiers[2] (normsys 'bkg_xsec')",
            "> 0",
        ],
    );
    // wrong lengths at evaluation time
    let ws = Workspace::from_json_str(&base().to_string()).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert!(m.twice_nll(&[1.0], &m.observed_data()).is_err());
    assert!(m.twice_nll(&m.init(), &[1.0]).is_err());
    assert!(m.expected_data(&[]).is_err());
    assert!(m.with_inputs(vec![1.0]).is_err());
}

#[test]
fn patches() {
    let mut ws = Workspace::from_json_str(&base().to_string()).unwrap();
    // a valid patch: change the POI's signal yields
    ws.apply_patch(
        r#"[{"op": "replace", "path": "/channels/1/samples/0/data", "value": [2.0, 4.0, 6.0, 8.0]}]"#,
        "sig.patch",
    )
    .unwrap();
    assert_eq!(ws.channels[1].samples[0].data, vec![2.0, 4.0, 6.0, 8.0]);
    let before = ws.clone();
    // a patch whose path does not exist
    let e = ws
        .apply_patch(r#"[{"op": "remove", "path": "/channels/7"}]"#, "bad.patch")
        .unwrap_err();
    assert!(matches!(e, Error::Patch { .. }), "{e:?}");
    assert_has(&e.to_string(), &["bad.patch"]);
    // not a patch at all
    let e = ws
        .apply_patch(r#"{"op": "remove"}"#, "notapatch")
        .unwrap_err();
    assert_has(&e.to_string(), &["notapatch", "RFC 6902"]);
    // a patch that yields an invalid workspace: located error, workspace unchanged
    let e = ws
        .apply_patch(
            r#"[{"op": "replace", "path": "/channels/1/samples/0/modifiers/2/data/hi_data", "value": [1.0, 2.0, 3.0]}]"#,
            "short.patch",
        )
        .unwrap_err();
    assert_has(
        &e.to_string(),
        &[
            "short.patch",
            "channels[1].samples[0].modifiers[2] (histosys 'jes')",
            "hi_data has 3 bins",
        ],
    );
    assert_eq!(ws, before);
}

#[test]
fn round_trip() {
    let ws = Workspace::from_json_str(&base().to_string()).unwrap();
    let text = ws.to_json_string();
    let ws2 = Workspace::from_json_str(&text).unwrap();
    assert_eq!(ws, ws2);
    assert_eq!(text, ws2.to_json_string());
    // serde impls agree with the explicit functions
    let via_serde: Workspace = serde_json::from_str(&serde_json::to_string(&ws).unwrap()).unwrap();
    assert_eq!(via_serde, ws);
    // the shipped example and every fixture workspace round-trip too
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("examples/workspace.json")];
    if let Ok(rd) = std::fs::read_dir(root.join("tests/fixtures/pyhf/workspaces")) {
        files.extend(rd.map(|e| e.unwrap().path()).filter(|p| {
            p.to_string_lossy().ends_with(".json") && !p.to_string_lossy().ends_with(".patch.json")
        }));
    }
    for f in files {
        let ws = Workspace::from_path(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let back = Workspace::from_json_str(&ws.to_json_string()).unwrap();
        assert_eq!(ws, back, "{}", f.display());
    }
}

/// The malformed workspaces the `refs` helper wrote (with pyhf's verdicts,
/// some of which pyhf accepts silently); paths are relative to
/// tests/fixtures/pyhf (or `ANAGRAD_PYHF_FIXTURES`).
#[test]
fn malformed_fixture_cases() {
    let dir = match std::env::var_os("ANAGRAD_PYHF_FIXTURES") {
        Some(p) => std::path::PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyhf"),
    };
    let Ok(text) = std::fs::read_to_string(dir.join("malformed/cases.json")) else {
        eprintln!("no malformed/cases.json yet; inline cases above cover every class");
        return;
    };
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let file = c["file"].as_str().unwrap();
        let expect = c["expect"].as_str().unwrap_or("");
        let body = std::fs::read_to_string(dir.join(file)).unwrap();
        let patches: Vec<String> = c["patches"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // strict: some of these pyhf accepts (and so does lenient validation)
        let strict = ModelOptions {
            validation: Validation::Strict,
            ..ModelOptions::default()
        };
        let res = Workspace::from_json_str_with(&body, Validation::Strict).and_then(|mut ws| {
            for p in &patches {
                let text = std::fs::read_to_string(dir.join(p)).unwrap();
                ws.apply_patch_with(&text, p, Validation::Strict)?;
            }
            Model::new(&ws, &strict).map(|_| ())
        });
        let e = res.expect_err(file).to_string();
        assert!(e.contains(expect), "{file}: error {e:?} lacks {expect:?}");
        // the harmless ones pyhf accepts: accepted by default, with a located warning
        let class = c["class"].as_str().unwrap_or("");
        let relaxed = [
            "negative sample yield",
            "unknown parameter",
            "channel that does not exist",
        ];
        if c["pyhf_verdict"] == "accepted" && relaxed.iter().any(|r| class.contains(r)) {
            let ws = Workspace::from_json_str(&body).expect(file);
            let m = Model::new(&ws, &ModelOptions::default()).expect(file);
            assert!(
                m.warnings().iter().any(|w| w.to_string().contains(expect)),
                "{file}: warnings {:?} lack {expect:?}",
                m.warnings()
            );
        }
    }
}

/// Every node of the base workspace replaced by values of the wrong shape,
/// removed, or set to edge-case numbers: reading, compiling and evaluating
/// must return errors or finite-shaped results, never panic.
#[test]
fn no_panic_on_mutated_workspaces() {
    fn paths(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    paths(x, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    paths(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let base = base();
    let mut all = Vec::new();
    paths(&base, String::new(), &mut all);
    let replacements = [
        json!(null),
        json!("x"),
        json!([]),
        json!({}),
        json!(-1.0),
        json!(0.0),
        json!(1e300),
        json!([0.0, 0.0, 0.0, 0.0]),
        json!(true),
    ];
    let mut n_ok = 0;
    let mut n_err = 0;
    for p in all.iter().filter(|p| !p.is_empty()) {
        let mut variants = Vec::new();
        let mut removed = base.clone();
        let (parent, last) = p.rsplit_once('/').unwrap();
        match removed.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(last);
            }
            Some(Value::Array(a)) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            _ => {}
        }
        variants.push(removed);
        for r in &replacements {
            let mut v = base.clone();
            *v.pointer_mut(p).unwrap() = r.clone();
            variants.push(v);
        }
        for v in variants {
            let res = Workspace::from_json_str(&v.to_string()).and_then(|ws| {
                let m = Model::new(&ws, &ModelOptions::default())?;
                let d = m.observed_data();
                let x = m.init();
                m.twice_nll(&x, &d)?;
                let n = m.n_pars();
                let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
                m.twice_nll_grad_hess(&x, &d, &mut g, &mut h)?;
                m.expected_data(&x)?;
                Ok(())
            });
            match res {
                Ok(()) => n_ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    n_err += 1
                }
            }
        }
    }
    assert!(n_ok > 10 && n_err > 100, "ok {n_ok}, err {n_err}");
}

// ------------------------------------------------ lenient (default) vs strict

fn strict() -> ModelOptions {
    ModelOptions {
        validation: Validation::Strict,
        ..ModelOptions::default()
    }
}

fn fit_of(m: &Model) -> anagrad::infer::FitResult {
    use anagrad::infer::{fit, FitOptions, FitSetup};
    fit(
        m,
        &m.observed_data(),
        &FitSetup::from_model(m),
        &FitOptions::default(),
    )
    .unwrap()
}

/// ROOT's exporter writes a `lumi` configuration into every measurement,
/// also when no sample has a lumi modifier: pyhf ignores it, so do we (with a
/// warning), and the fit is that of the workspace without it.
#[test]
fn config_of_unknown_parameter_is_ignored_with_a_warning() {
    let mut v = base();
    // no lumi modifier any more, the lumi configuration stays
    v["channels"][1]["samples"][0]["modifiers"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let w = ws.validate().unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_has(
        &w[0].to_string(),
        &[
            "measurements[0].config.parameters[0] ('lumi')",
            "configures 'lumi', which is not a parameter of the model",
            "ignored",
        ],
    );
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert_eq!(m.warnings(), &w[..]);
    assert!(m.par_index("lumi").is_none());
    // the same workspace without the configuration: no warning, the same fit
    let mut clean = v.clone();
    clean["measurements"][0]["config"]["parameters"] = json!([]);
    let mc = Model::new(
        &Workspace::from_json_str(&clean.to_string()).unwrap(),
        &strict(),
    )
    .unwrap();
    assert!(mc.warnings().is_empty());
    let (a, b) = (fit_of(&m), fit_of(&mc));
    assert_eq!(a.twice_nll, b.twice_nll);
    assert_eq!(a.pars, b.pars);
    // strict: the old error, in both places
    let e = Workspace::from_json_str_with(&v.to_string(), Validation::Strict).unwrap_err();
    assert_has(
        &e.to_string(),
        &["parameters[0] ('lumi')", "not a parameter of the model"],
    );
    let e = Model::new(&ws, &strict()).unwrap_err();
    assert_has(&e.to_string(), &["not a parameter of the model"]);
    // an ignored configuration is not checked further (pyhf does not read it)
    v["measurements"][0]["config"]["parameters"][0]["bounds"] = json!([[2.0, 1.0], [0.0, 1.0]]);
    assert!(Model::new(
        &Workspace::from_json_str(&v.to_string()).unwrap(),
        &ModelOptions::default()
    )
    .is_ok());
}

#[test]
fn observation_of_unknown_channel_is_ignored_with_a_warning() {
    let mut v = base();
    v["observations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "VR", "data": [1.0]}));
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert_eq!(m.warnings().len(), 1);
    assert_has(
        &m.warnings()[0].to_string(),
        &["observations[2] ('VR')", "no channel named 'VR'", "ignored"],
    );
    assert_eq!(m.n_main(), 7);
    let e = Model::new(&ws, &strict()).unwrap_err();
    assert_has(
        &e.to_string(),
        &["observations[2] ('VR')", "no channel named"],
    );
}

/// A published background-only workspace names the POI its signal patches add.
#[test]
fn background_only_workspace_with_the_poi_of_its_patches() {
    let mut v = base();
    // no signal sample: 'mu' is declared nowhere
    v["channels"][1]["samples"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    v["measurements"][0]["config"]["parameters"] = json!([]);
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let w = ws.validate().unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_has(
        &w[0].to_string(),
        &[
            "measurements[0].config.poi ('meas')",
            "the POI 'mu' is not a parameter",
        ],
    );
    // a model for that measurement needs the POI
    let e = Model::new(&ws, &ModelOptions::default()).unwrap_err();
    assert_has(&e.to_string(), &["'mu'", "not a parameter of the model"]);
    // ... unless built without one
    let no_poi = ModelOptions {
        poi: Some(String::new()),
        ..ModelOptions::default()
    };
    assert!(Model::new(&ws, &no_poi).unwrap().poi_index().is_none());
    // the signal patch adds the POI: a valid model, no warning left
    let mut ws = ws;
    ws.apply_patch(
        &json!([{"op": "add", "path": "/channels/1/samples/0", "value":
            {"name": "sig", "data": [1.0, 2.0, 3.0, 4.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": null}]}}])
        .to_string(),
        "signal.patch",
    )
    .unwrap();
    let m = Model::new(&ws, &strict()).unwrap();
    assert!(m.warnings().is_empty());
    assert!(m.poi_index().is_some());
    // strict: an error already when reading
    let e = Workspace::from_json_str_with(&v.to_string(), Validation::Strict).unwrap_err();
    assert_has(&e.to_string(), &["measurements[0].config.poi", "'mu'"]);
}

/// A sample with negative nominal yields (MC with negative weights) in SR.
fn with_negative_sample(data: Value) -> Value {
    let mut v = base();
    v["channels"][1]["samples"].as_array_mut().unwrap().push(
        json!({"name": "negw", "data": data, "modifiers": [
            {"name": "negw_xsec", "type": "normsys", "data": {"lo": 0.5, "hi": 1.5}}
        ]}),
    );
    v
}

#[test]
fn negative_yields_accepted_where_the_total_rate_is_positive() {
    let v = with_negative_sample(json!([-0.5, 0.0, -2.0, 0.25]));
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let m = Model::new(&ws, &ModelOptions::default()).unwrap();
    assert_eq!(m.warnings().len(), 1, "{:?}", m.warnings());
    assert_has(
        &m.warnings()[0].to_string(),
        &[
            "channels[1].samples[2].data[0] ('negw')",
            "negative nominal yield -0.5 (and 1 more bins)",
        ],
    );
    // a correct fit; every rate positive at the optimum
    let r = fit_of(&m);
    assert!(r.twice_nll.is_finite());
    let exp = m.expected_data(&r.pars).unwrap();
    assert!(exp[..m.n_main()].iter().all(|&x| x > 0.0), "{exp:?}");
    // strict: the old error, located
    let e = Model::new(&ws, &strict()).unwrap_err();
    assert_has(
        &e.to_string(),
        &["channels[1].samples[2].data[0] ('negw')", ">= 0", "-0.5"],
    );
    let e = Workspace::from_json_str_with(&v.to_string(), Validation::Strict).unwrap_err();
    assert_has(&e.to_string(), &["channels[1].samples[2].data[0] ('negw')"]);
}

#[test]
fn negative_yields_rejected_where_the_total_rate_is_not_positive() {
    // SR bin 2: sig 3 + bkg 7 − 12 = −2 at the nominal point
    let ws =
        Workspace::from_json_str(&with_negative_sample(json!([0.0, 0.0, -12.0, 0.0])).to_string())
            .unwrap();
    let e = Model::new(&ws, &ModelOptions::default()).unwrap_err();
    assert_has(
        &e.to_string(),
        &[
            "channels[1] ('SR') bin 2",
            "total expected rate at the nominal parameters",
            "is -2",
            "must be positive",
            "negw",
        ],
    );
    // exactly cancelling: a zero rate is rejected as well
    let ws =
        Workspace::from_json_str(&with_negative_sample(json!([-6.0, 0.0, 0.0, 0.0])).to_string())
            .unwrap();
    let e = Model::new(&ws, &ModelOptions::default()).unwrap_err();
    assert_has(&e.to_string(), &["channels[1] ('SR') bin 0", "is 0"]);
    // the suggested inits count: with mu initialised at 0 the signal does not help
    let mut v = with_negative_sample(json!([-5.5, 0.0, 0.0, 0.0]));
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    assert!(Model::new(&ws, &ModelOptions::default()).is_ok());
    v["measurements"][0]["config"]["parameters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "mu", "inits": [0.0]}));
    let ws = Workspace::from_json_str(&v.to_string()).unwrap();
    let e = Model::new(&ws, &ModelOptions::default()).unwrap_err();
    assert_has(&e.to_string(), &["channels[1] ('SR') bin 0", "is -0.5"]);
}

/// The Poisson term is undefined at a non-positive rate in a bin with events
/// and at a negative rate anywhere: `twice_nll` is +inf there (never NaN,
/// never finite), which the fitter treats as a rejected step.
#[test]
fn non_positive_rates_give_infinite_nll() {
    let one_bin = |obs: f64| {
        let v = json!({
            "channels": [{"name": "c", "samples": [
                {"name": "s", "data": [5.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
                {"name": "b", "data": [2.0], "modifiers": []}]}],
            "observations": [{"name": "c", "data": [obs]}],
            "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": [
                {"name": "mu", "bounds": [[-5.0, 5.0]]}]}}],
            "version": "1.0.0"});
        Model::new(
            &Workspace::from_json_str(&v.to_string()).unwrap(),
            &ModelOptions::default(),
        )
        .unwrap()
    };
    for obs in [0.0, 3.0] {
        let m = one_bin(obs);
        let d = m.observed_data();
        let n = m.n_pars();
        let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
        // λ = 2 + 5 mu: negative at mu = -1 whatever the count
        assert_eq!(
            m.twice_nll(&[-1.0], &d).unwrap(),
            f64::INFINITY,
            "n = {obs}"
        );
        assert_eq!(
            m.twice_nll_grad_hess(&[-1.0], &d, &mut g, &mut h).unwrap(),
            f64::INFINITY
        );
        let generic = m.twice_nll_generic(&[-1.0], &d, m.inputs()).unwrap();
        assert_eq!(generic, f64::INFINITY);
        // λ = 0: infinite with events, finite (the term is 0) without
        let at0 = m.twice_nll(&[-0.4], &d).unwrap();
        if obs > 0.0 {
            assert_eq!(at0, f64::INFINITY);
        } else {
            assert!(at0.is_finite());
        }
        assert!(m.twice_nll(&[1.0], &d).unwrap().is_finite());
    }
    // a fit with events never ends at a non-positive rate
    let m = one_bin(3.0);
    let r = fit_of(&m);
    assert!((2.0 + 5.0 * r.pars[0] - 3.0).abs() < 1e-8, "{:?}", r.pars);
}

// ------------------------------------------------------------------ patchsets

/// A patchset for the base workspace: two signal hypotheses replacing the SR
/// signal yields, `sha256` digest of the base JSON as pyhf computes it.
fn patchset_json(digest: &str) -> Value {
    let sig = |k: f64| {
        json!([{"op": "replace", "path": "/channels/1/samples/0/data",
                "value": [k, 2.0 * k, 3.0 * k, 4.0 * k]}])
    };
    json!({
        "metadata": {"name": "test", "description": "signal points", "references": {"hepdata": "ins1234567"},
                     "digests": {"sha256": digest}, "labels": ["m_sig"]},
        "patches": [
            {"metadata": {"name": "sig_100", "values": [100]}, "patch": sig(2.0)},
            {"metadata": {"name": "sig_200", "values": [200]}, "patch": sig(0.5)}
        ],
        "version": "1.0.0"
    })
}

fn base_patchset() -> PatchSet {
    let d = anagrad::hf::patchset::workspace_digest(&base());
    PatchSet::from_value(&patchset_json(&d), "ps.json").unwrap()
}

#[test]
fn patchset_apply_equals_the_same_json_patch() {
    let ps = base_patchset();
    assert_eq!(ps.names(), ["sig_100", "sig_200"]);
    assert_eq!(ps.labels, ["m_sig"]);
    let ws = Workspace::from_json_str(&base().to_string()).unwrap();
    let mut by_patch = ws.clone();
    by_patch
        .apply_patch(&ps.patch("sig_200").unwrap().operations.to_string(), "p")
        .unwrap();
    let a = ps.apply(&ws, "sig_200").unwrap();
    assert_eq!(a, by_patch);
    assert_eq!(a.channels[1].samples[0].data, vec![0.5, 1.0, 1.5, 2.0]);
    // from the JSON as read, with the digest checked
    let (b, warnings) = ps
        .apply_json(&base(), "sig_200", Validation::Lenient)
        .unwrap();
    assert_eq!(b, by_patch);
    assert!(warnings.is_empty());
    assert_ne!(ps.apply(&ws, "sig_100").unwrap(), by_patch);
}

#[test]
fn patchset_errors() {
    let ps = base_patchset();
    let ws = Workspace::from_json_str(&base().to_string()).unwrap();
    let e = ps.apply(&ws, "sig_300").unwrap_err().to_string();
    assert_has(
        &e,
        &[
            "ps.json",
            "no patch named 'sig_300'",
            "available: sig_100, sig_200",
        ],
    );
    // a background-only workspace other than the one the patchset was made for
    let mut other = base();
    other["observations"][0]["data"][0] = json!(11.0);
    let e = ps
        .apply_json(&other, "sig_100", Validation::Lenient)
        .unwrap_err()
        .to_string();
    assert_has(&e, &["ps.json", "sha256", "digest"]);
    // the digest depends on the spelling of numbers, as pyhf's does
    let mut ints = base();
    ints["observations"][0]["data"] = json!([10, 20, 30]);
    assert!(ps
        .apply_json(&ints, "sig_100", Validation::Lenient)
        .is_err());
    // md5 is not checked: a warning
    let mut md5 = patchset_json("x");
    md5["metadata"]["digests"] = json!({"md5": "098f6bcd4621d373cade4e832627b4f6"});
    let ps5 = PatchSet::from_value(&md5, "ps5.json").unwrap();
    let (_, w) = ps5
        .apply_json(&base(), "sig_100", Validation::Lenient)
        .unwrap();
    assert_has(&w[0].to_string(), &["digests.md5", "not checked"]);
    // a patch that makes the workspace invalid names the patch
    let mut bad = patchset_json("x");
    bad["patches"][0]["patch"][0]["value"] = json!([1.0]);
    let psb = PatchSet::from_value(&bad, "bad.json").unwrap();
    let e = psb.apply(&ws, "sig_100").unwrap_err().to_string();
    assert_has(&e, &["'sig_100'", "bad.json", "channels[1]", "has 1"]);
    // malformed patchsets: located
    let malformed = |edit: &dyn Fn(&mut Value)| {
        let mut v = patchset_json("x");
        edit(&mut v);
        PatchSet::from_value(&v, "m.json").unwrap_err().to_string()
    };
    assert_has(
        &malformed(&|v| {
            v["metadata"].as_object_mut().unwrap().remove("labels");
        }),
        &["m.json", "metadata", "missing required key 'labels'"],
    );
    assert_has(
        &malformed(&|v| v["patches"][1]["metadata"]["values"] = json!([1, 2])),
        &[
            "patches[1] ('sig_200').metadata.values",
            "has 2 values",
            "1 labels",
        ],
    );
    assert_has(
        &malformed(&|v| v["patches"][1]["metadata"]["name"] = json!("sig_100")),
        &[
            "patches[1] ('sig_100')",
            "duplicate patch name (also patches[0])",
        ],
    );
    assert_has(
        &malformed(&|v| v["patches"][1]["metadata"]["values"] = json!([100])),
        &["patches[1] ('sig_200')", "same values"],
    );
    assert_has(
        &malformed(&|v| v["patches"][0]["patch"] = json!([{"op": "jump", "path": "/x"}])),
        &["patches[0] ('sig_100').patch", "RFC 6902"],
    );
    assert_has(
        &malformed(&|v| v["version"] = json!("2.0.0")),
        &["version", "1.0.0"],
    );
    assert_has(
        &malformed(&|v| v["patches"] = json!([])),
        &["patches", "at least one patch"],
    );
    assert_has(
        &malformed(&|v| v["extra"] = json!(1)),
        &["unknown key 'extra'"],
    );
    assert!(PatchSet::from_json_str("{", "broken.json")
        .unwrap_err()
        .to_string()
        .contains("broken.json"));
}

/// Every published patchset under tests/fixtures/published applies to its
/// background-only workspace with pyhf's digest verified.
#[test]
fn published_patchsets_verify_their_digests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published");
    let Ok(rd) = std::fs::read_dir(&root) else {
        eprintln!("no tests/fixtures/published; the inline digests above cover the format");
        return;
    };
    let mut n = 0;
    for d in rd.map(|e| e.unwrap().path()) {
        let (bkg, psf) = (d.join("BkgOnly.json"), d.join("patchset.json"));
        if !bkg.exists() || !psf.exists() {
            continue;
        }
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(&bkg).unwrap()).unwrap();
        let ps = PatchSet::from_path(&psf).unwrap();
        assert!(ps.digests.contains_key("sha256"), "{}", d.display());
        assert!(ps.verify(&raw).unwrap().is_empty(), "{}", d.display());
        let parsed = Workspace::from_value(&raw).unwrap();
        for name in ps.names() {
            let (ws, _) = ps.apply_json(&raw, name, Validation::Lenient).unwrap();
            Model::new(&ws, &ModelOptions::default())
                .unwrap_or_else(|e| panic!("{} {name}: {e}", d.display()));
            assert_eq!(ps.apply(&parsed, name).unwrap(), ws);
        }
        n += 1;
    }
    eprintln!("{n} published patchsets verified");
}
