//! `anagrad cls --calctype toybased`, `anagrad toys merge` and
//! `anagrad upper-limit --calctype toybased` end to end (small ensembles):
//! pyhf's keys, the library's numbers, the output folder (distributions,
//! result, figure), shards merged into the unsharded result, clean errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::toys::{hypotest_toys, ToyDistributions, ToyOptions};
use anagrad::infer::{FitSetup, Likelihood, TestStat};
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_anagrad"))
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

/// The pyhf docs' `uncorrelated_background` model (shapesys), observed 51, 48.
fn workspace(dir: &Path) -> PathBuf {
    let p = dir.join("ws.json");
    std::fs::write(
        &p,
        serde_json::json!({
            "channels": [{"name": "singlechannel", "samples": [
                {"name": "signal", "data": [12.0, 11.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
                {"name": "background", "data": [50.0, 52.0], "modifiers": [
                    {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [3.0, 7.0]}]}]}],
            "observations": [{"name": "singlechannel", "data": [51.0, 48.0]}],
            "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
            "version": "1.0.0"
        })
        .to_string(),
    )
    .unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn cls_toybased_matches_the_library_and_writes_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let out = tmp.path().join("toys");
    let v = json_ok(&run(&[
        "cls",
        s(&ws),
        "--calctype",
        "toybased",
        "--ntoys",
        "300",
        "--seed",
        "9",
        "--out",
        s(&out),
    ]));
    for key in [
        "CLs_obs", "CLs_exp", "CLsb_obs", "CLb_obs", "CLsb_exp", "CLb_exp",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["CLs_exp"].as_array().unwrap().len(), 5);
    let m = Model::new(
        &Workspace::from_path(&ws).unwrap(),
        &ModelOptions::default(),
    )
    .unwrap();
    let lib = hypotest_toys(
        &m,
        &m.observed_data(),
        1.0,
        TestStat::QmuTilde,
        &FitSetup::from_model(&m),
        &ToyOptions {
            ntoys: 300,
            seed: 9,
            ..ToyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(v, serde_json::to_value(&lib).unwrap());
    for f in [
        "distributions.json",
        "distributions_result.json",
        "distributions.svg",
        "distributions.png",
    ] {
        assert!(out.join(f).is_file(), "{f} not written");
    }
    let d: ToyDistributions =
        serde_json::from_str(&std::fs::read_to_string(out.join("distributions.json")).unwrap())
            .unwrap();
    assert_eq!(d.result().unwrap(), lib);
    // --output-file gets the same JSON.
    let f = tmp.path().join("cls.json");
    let o = run(&[
        "cls",
        s(&ws),
        "--calctype",
        "toybased",
        "--ntoys",
        "300",
        "--seed",
        "9",
        "--out",
        s(&out),
        "--output-file",
        s(&f),
        "--quiet",
    ]);
    assert!(o.status.success());
    let w: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    assert_eq!(w, v);
}

#[test]
fn shards_merge_into_the_unsharded_result() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let whole = tmp.path().join("whole");
    let common = [
        "--calctype",
        "toybased",
        "--ntoys",
        "200",
        "--seed",
        "4",
        "--test-poi",
        "1.5",
    ];
    let mut args = vec!["cls", s(&ws)];
    args.extend(common);
    args.extend(["--out", s(&whole)]);
    let full = json_ok(&run(&args));
    let shards = tmp.path().join("shards");
    for k in 1..=3 {
        let sh = format!("{k}/3");
        let mut args = vec!["cls", s(&ws)];
        args.extend(common);
        args.extend(["--out", s(&shards), "--shard", &sh]);
        let v = json_ok(&run(&args));
        assert_eq!(v["shard"], Value::String(sh.clone()));
    }
    let files: Vec<PathBuf> = (1..=3)
        .map(|k| shards.join(format!("distributions_shard_{k}_of_3.json")))
        .collect();
    let merged_dir = tmp.path().join("merged");
    let mut args = vec!["toys", "merge"];
    args.extend(files.iter().rev().map(|f| s(f)));
    args.extend(["-o", s(&merged_dir)]);
    let merged = json_ok(&run(&args));
    assert_eq!(merged, full, "merged shards differ from the unsharded run");
    // The same distributions, bit for bit; only the provenance (`shards`) differs.
    let read = |p: PathBuf| -> ToyDistributions {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (a, b) = (
        read(merged_dir.join("distributions.json")),
        read(whole.join("distributions.json")),
    );
    assert_eq!(a.shards.len(), 3);
    assert!(
        a.signal_plus_background == b.signal_plus_background
            && a.background == b.background
            && a.observed == b.observed,
        "merged distributions differ from the unsharded run"
    );
    assert!(merged_dir.join("distributions.png").is_file());
    // Two shards only: merged with a warning about the missing toys.
    let o = run(&[
        "toys",
        "merge",
        s(&files[0]),
        s(&files[1]),
        "-o",
        s(&merged_dir),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cover"));
    // The same shard twice: refused.
    let o = run(&[
        "toys",
        "merge",
        s(&files[0]),
        s(&files[0]),
        "-o",
        s(&merged_dir),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("twice"));
}

#[test]
fn upper_limit_toybased_on_a_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let out = tmp.path().join("ul");
    let v = json_ok(&run(&[
        "upper-limit",
        s(&ws),
        "--calctype",
        "toybased",
        "--ntoys",
        "200",
        "--seed",
        "2",
        "--scan",
        "0:3:7",
        "--out",
        s(&out),
        "--quiet",
    ]));
    let obs = v["obs_limit"].as_f64().unwrap();
    let exp: Vec<f64> = v["exp_limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(obs > 0.0 && obs < 3.0, "obs limit {obs}");
    assert_eq!(exp.len(), 5);
    assert!(exp.windows(2).all(|w| w[0] <= w[1] + 1e-12), "band {exp:?}");
    assert_eq!(v["tested"].as_array().unwrap().len(), 7);
    assert!(out.join("upper_limit.json").is_file());
    // Without a grid: a clear error.
    let o = run(&["upper-limit", s(&ws), "--calctype", "toybased"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--scan"));
}

#[test]
fn bad_toy_options_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let o = run(&["cls", s(&ws), "--calctype", "toybased", "--shard", "4/3"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard '4/3'"));
    let o = run(&["cls", s(&ws), "--shard", "1/3"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("toybased"));
    let o = run(&["cls", s(&ws), "--test-stat", "q0"]);
    assert!(!o.status.success());
    let o = run(&["cls", s(&ws), "--calctype", "toybased", "--ntoys", "0"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ntoys"));
}
