//! Workspace validation: one test per class of malformed input, each
//! asserting that the error names the place; patches; round-trips.

use std::path::Path;

use anagrad::hf::{InterpCode, Model, ModelOptions, Workspace};
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

/// Applies `edit` to the base workspace and returns the rendered error.
fn err_of(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = base();
    edit(&mut v);
    match Workspace::from_json_str(&v.to_string()) {
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
        let res = Workspace::from_json_str(&body).and_then(|mut ws| {
            for p in &patches {
                let text = std::fs::read_to_string(dir.join(p)).unwrap();
                ws.apply_patch(&text, p)?;
            }
            Model::new(&ws, &ModelOptions::default()).map(|_| ())
        });
        let e = res.expect_err(file).to_string();
        assert!(e.contains(expect), "{file}: error {e:?} lacks {expect:?}");
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
