//! Published ATLAS likelihoods (HEPData, pyhf JSON) against pyhf 0.7.6 with
//! global fits: `tests/fixtures/published/*/{BkgOnly,patchset,refs}.json`,
//! references by `tests/fixtures/published/generate.py` (see README.md there).
//!
//! For every signal point: the bkg-only workspace plus the point's patch from
//! the patchset (applied with `Workspace::apply_patch`), the default model
//! options, then the MLE (`twice_nll` rtol 1e-9), the q̃ hypotest at μ = 1
//! (CLs_obs and the expected band rtol 1e-6) and the upper limit (observed
//! and expected band rtol 1e-5). All failures are collected and printed as
//! one table before the test fails.
//!
//! Where pyhf's log-likelihood itself is only defined to a floating-point
//! noise larger than those tolerances (refs.json `twice_nll_noise`: the 3L
//! eRJR likelihood has shapesys constraints with τ ~ 1e11, whose Poisson
//! terms cancel to ~1e-3 in `twice_nll`), the tolerance on `twice_nll` is
//! widened to twice that noise and the one on CLs and limits to
//! `max(rtol, 10 · noise)`; the table says so.
//!
//! Loading: the bkg-only workspace by `Workspace::from_path` plus the patch
//! by `apply_patch` (the path; [`published_plain_loading`] checks it
//! for every likelihood); only if that fails does [`load`] patch the JSON
//! before validation instead, and say so on stderr.
//!
//! References known not to be global (refs.json `hypotest_global: false`, set
//! when another program found a lower minimum of pyhf's own logpdf than the
//! generator; none today: the two staus points that carried it were
//! regenerated with anagrad's minima as extra starts of the generator's own
//! minimiser, see the fixture README) are compared on the MLE only; points
//! without a limit reference (limit above the POI bound, or not generated)
//! skip the limit. Both are printed as SKIPPED lines.
//!
//! `published_default` runs the points listed in [`DEFAULT_POINTS`] (three of
//! each of the five likelihoods: sbottom RegionA/B/C, the 120-parameter staus
//! one and 3L eRJR; the `test` profile is optimised); `published_all` runs
//! every point with a reference and is `#[ignore]`d
//! (`cargo test --test published -- --ignored`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::{
    fit, upper_limit, AsymptoticCalculator, FitOptions, FitSetup, Likelihood, LimitOptions,
    TestStat,
};
use serde_json::Value;

/// (folder, patch) pairs run by default, also in debug builds: three points of
/// each likelihood whose references exist, the 120-parameter staus one included
/// (sbottom RegionB: five, as two of its first three have their expected limits
/// above the POI bound, so two more points give it three limits).
const DEFAULT_POINTS: &[(&str, &str)] = &[
    ("atlas-susy-2018-04-staus-combined", "DS_200_1_Staus"),
    ("atlas-susy-2018-04-staus-combined", "DS_280_40_Staus"),
    ("atlas-susy-2018-04-staus-combined", "DS_400_1_Staus"),
    ("atlas-susy-2018-06-3l-erjr", "ERJR_200p0_100p0"),
    ("atlas-susy-2018-06-3l-erjr", "ERJR_300p0_100p0"),
    ("atlas-susy-2018-06-3l-erjr", "ERJR_500p0_0p0"),
    ("atlas-susy-2018-31-sbottom-regionb", "sbottom_1000_950_60"),
    ("atlas-susy-2018-31-sbottom-regionb", "sbottom_1300_1250_60"),
    ("atlas-susy-2018-31-sbottom-regionb", "sbottom_1500_1450_60"),
    ("atlas-susy-2018-31-sbottom-regionb", "sbottom_800_750_60"),
    ("atlas-susy-2018-31-sbottom-regionb", "sbottom_900_850_60"),
    ("atlas-susy-2018-31-sbottom-regiona", "sbottom_1000_250_60"),
    ("atlas-susy-2018-31-sbottom-regiona", "sbottom_1300_850_60"),
    ("atlas-susy-2018-31-sbottom-regiona", "sbottom_1400_750_60"),
    ("atlas-susy-2018-31-sbottom-regionc", "sbottom_1000_850_60"),
    ("atlas-susy-2018-31-sbottom-regionc", "sbottom_1200_1150_60"),
    ("atlas-susy-2018-31-sbottom-regionc", "sbottom_1400_1250_60"),
];

const RTOL_NLL: f64 = 1e-9;
const RTOL_CLS: f64 = 1e-6;
const RTOL_LIMIT: f64 = 1e-5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default()
}

struct Row {
    case: String,
    quantity: String,
    got: f64,
    want: f64,
    rel: f64,
    tol: f64,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    errors: Vec<String>,
    skipped: Vec<String>,
    checked: usize,
}

impl Report {
    fn rel(&mut self, case: &str, quantity: &str, got: f64, want: f64, tol: f64) {
        self.checked += 1;
        let rel = (got - want).abs() / want.abs().max(1e-300);
        if rel.is_nan() || rel > tol {
            self.rows.push(Row {
                case: case.to_string(),
                quantity: quantity.to_string(),
                got,
                want,
                rel,
                tol,
            });
        }
    }

    fn finish(self, what: &str) {
        for s in &self.skipped {
            eprintln!("SKIPPED {s}");
        }
        if self.rows.is_empty() && self.errors.is_empty() {
            eprintln!("{what}: {} comparisons passed", self.checked);
            return;
        }
        let mut s = format!(
            "{what}: {} of {} comparisons out of tolerance, {} errors\n",
            self.rows.len(),
            self.checked,
            self.errors.len()
        );
        let _ = writeln!(
            s,
            "{:<58} {:<16} {:>22} {:>22} {:>9} {:>8}",
            "case", "quantity", "anagrad", "pyhf (global)", "rel", "tol"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<58} {:<16} {:>22.15e} {:>22.15e} {:>9.2e} {:>8.0e}",
                r.case, r.quantity, r.got, r.want, r.rel, r.tol
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "ERROR {e}");
        }
        panic!("{s}");
    }
}

/// Reads the point's patch (its JSON-patch operations) from the folder's patchset.
fn patch_ops(folder: &str, patch: &str) -> Value {
    let ps: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(folder).join("patchset.json")).unwrap(),
    )
    .unwrap();
    ps["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == patch)
        .unwrap_or_else(|| panic!("{folder}: no patch {patch}"))["patch"]
        .clone()
}

/// The plain path: `Workspace::from_path(BkgOnly.json)` + `apply_patch`.
fn load_plain(folder: &str, patch: &str) -> anagrad::Result<Workspace> {
    let ops = patch_ops(folder, patch);
    let mut ws = Workspace::from_path(&root().join(folder).join("BkgOnly.json"))?;
    ws.apply_patch(&serde_json::to_string(&ops).unwrap(), patch)?;
    Ok(ws)
}

/// Loads the bkg-only workspace and applies the point's patch by the plain
/// path ([`load_plain`]). Only if that fails (until the bkg-only workspace,
/// whose POI `mu_SIG` exists only after the signal patch, is accepted by
/// `from_path`: pyhf checks the POI when it builds the model) is the patch
/// applied to the JSON before validation instead, so that the numbers are still
/// compared; that fallback is printed, and [`published_plain_loading`] fails
/// for it.
fn load(folder: &str, patch: &str) -> anagrad::Result<Model> {
    let ws = match load_plain(folder, patch) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!(
                "{folder}/{patch}: from_path + apply_patch failed ({e}); patching the JSON instead"
            );
            let mut v: Value = serde_json::from_str(
                &std::fs::read_to_string(root().join(folder).join("BkgOnly.json")).unwrap(),
            )
            .unwrap();
            let patch_ops: json_patch::Patch =
                serde_json::from_value(patch_ops(folder, patch)).unwrap();
            json_patch::patch(&mut v, &patch_ops).unwrap();
            Workspace::from_value(&v)?
        }
    };
    Model::new(&ws, &ModelOptions::default())
}

fn refs(folder: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(folder).join("refs.json"))
        .unwrap_or_else(|e| panic!("{folder}/refs.json: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["points"].as_array().unwrap().clone()
}

fn check_point(rep: &mut Report, folder: &str, r: &Value) {
    let name = r["name"].as_str().unwrap();
    let case = format!("{folder}/{name}");
    let noise = r["global_check"]["twice_nll_noise"].as_f64().unwrap_or(0.0);
    let want_nll = r["mle"]["twice_nll"].as_f64().unwrap();
    let tol_nll = RTOL_NLL.max(2.0 * noise / want_nll.abs().max(1.0));
    let tol_cls = RTOL_CLS.max(10.0 * noise);
    let tol_lim = RTOL_LIMIT.max(10.0 * noise);
    let model = match load(folder, name) {
        Ok(m) => m,
        Err(e) => {
            rep.errors.push(format!("{case}: model: {e}"));
            return;
        }
    };
    let data = model.observed_data();
    let opts = FitOptions::default();
    let setup = FitSetup::from_model(&model);
    match fit(&model, &data, &setup, &opts) {
        Ok(f) => {
            rep.rel(&case, "mle.twice_nll", f.twice_nll, want_nll, tol_nll);
            if let (Some(i), Some(p)) = (
                model.par_index(r["poi"].as_str().unwrap()),
                r["par_names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|n| n == &r["poi"]),
            ) {
                let want = floats(&r["mle"]["pars"])[p];
                // reported alongside (not a requirement of the issue): μ̂ atol 1e-5
                rep.checked += 1;
                if (f.pars[i] - want).abs() > 1e-5 {
                    rep.rows.push(Row {
                        case: case.clone(),
                        quantity: "mle.mu_hat(abs)".into(),
                        got: f.pars[i],
                        want,
                        rel: (f.pars[i] - want).abs(),
                        tol: 1e-5,
                    });
                }
            }
        }
        Err(e) => rep.errors.push(format!("{case}: MLE: {e}")),
    }
    // a reference whose hypotest fits are known not to be global (refs.json
    // `hypotest_global: false`, the evidence in its notes): only the MLE is compared
    if r["hypotest_global"] == Value::Bool(false) {
        rep.skipped.push(format!(
            "{case}: CLs and limit not compared ({})",
            r["notes"]
                .as_array()
                .and_then(|n| n
                    .iter()
                    .find_map(|n| n.as_str().filter(|n| n.starts_with("hypotest not global"))))
                .unwrap_or("see refs.json")
        ));
        return;
    }
    let h = &r["hypotest"];
    match AsymptoticCalculator::new(
        &model,
        &data,
        setup.clone(),
        opts.clone(),
        TestStat::QmuTilde,
    )
    .and_then(|c| c.hypotest(h["poi_value"].as_f64().unwrap()))
    {
        Ok(g) => {
            rep.rel(
                &case,
                "CLs_obs",
                g.cls_obs,
                h["CLs_obs"].as_f64().unwrap_or(f64::NAN),
                tol_cls,
            );
            for (k, (a, b)) in g.cls_exp.iter().zip(floats(&h["CLs_exp"])).enumerate() {
                rep.rel(&case, &format!("CLs_exp[{k}]"), *a, b, tol_cls);
            }
        }
        Err(e) => rep.errors.push(format!("{case}: hypotest: {e}")),
    }
    let ul = &r["upper_limit"];
    if !ul.is_object() {
        rep.skipped.push(format!(
            "{case}: no limit reference ({})",
            r["notes"]
                .as_array()
                .and_then(|n| n
                    .iter()
                    .find_map(|n| n.as_str().filter(|n| n.starts_with("upper_limit"))))
                .map_or("not generated yet", |n| n.lines().next().unwrap_or(n))
        ));
    }
    if ul.is_object() {
        match AsymptoticCalculator::new(&model, &data, setup, opts, TestStat::QmuTilde)
            .and_then(|c| upper_limit(&c, &LimitOptions::default()))
        {
            Ok(l) => {
                rep.rel(
                    &case,
                    "limit.obs",
                    l.obs_limit,
                    ul["obs"].as_f64().unwrap_or(f64::NAN),
                    tol_lim,
                );
                for (k, (a, b)) in l.exp_limits.iter().zip(floats(&ul["exp"])).enumerate() {
                    rep.rel(&case, &format!("limit.exp[{k}]"), *a, b, tol_lim);
                }
            }
            Err(e) => rep.errors.push(format!("{case}: upper limit: {e}")),
        }
    }
}

fn run(filter: impl Fn(&str, &str) -> bool, what: &str) {
    let mut rep = Report::default();
    let mut folders: Vec<String> = std::fs::read_dir(root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("refs.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut n = 0;
    for folder in &folders {
        for r in refs(folder) {
            let name = r["name"].as_str().unwrap().to_string();
            if filter(folder, &name) {
                let t = std::time::Instant::now();
                check_point(&mut rep, folder, &r);
                eprintln!("{folder}/{name}: {:.1} s", t.elapsed().as_secs_f64());
                n += 1;
            }
        }
    }
    assert!(n > 0, "{what}: no reference points found");
    rep.finish(what);
}

#[test]
fn published_default() {
    let missing: Vec<String> = DEFAULT_POINTS
        .iter()
        .filter(|(f, p)| {
            !root().join(f).join("refs.json").exists() || !refs(f).iter().any(|r| r["name"] == *p)
        })
        .map(|(f, p)| format!("{f}/{p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "default points without a reference: {missing:?}"
    );
    run(
        |f, p| DEFAULT_POINTS.contains(&(f, p)),
        "published likelihoods (default points)",
    );
}

#[test]
#[ignore = "every point with a reference: the default points today (as slow again); for references added later, run with -- --ignored"]
fn published_all() {
    run(|_, _| true, "published likelihoods (all points)");
}

/// The loading path for every likelihood of the corpus: the bkg-only
/// workspace by `Workspace::from_path`, then a signal patch by `apply_patch`
/// (the first patch of each patchset), then `Model::new`. Kept apart from the
/// numeric comparisons, which fall back to patching the JSON (see [`load`]).
#[test]
fn published_plain_loading() {
    let mut folders: Vec<String> = std::fs::read_dir(root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("patchset.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert!(folders.len() >= 5, "{folders:?}");
    let mut errors = Vec::new();
    for folder in &folders {
        let ps: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(folder).join("patchset.json")).unwrap(),
        )
        .unwrap();
        let patch = ps["patches"][0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        if let Err(e) =
            load_plain(folder, &patch).and_then(|ws| Model::new(&ws, &ModelOptions::default()))
        {
            errors.push(format!("{folder}/{patch}: {e}"));
        }
    }
    assert!(
        errors.is_empty(),
        "from_path(BkgOnly.json) + apply_patch + Model::new failed:\n{}",
        errors.join("\n")
    );
}
