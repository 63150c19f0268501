//! Transfer-factor fits against the independent references of
//! `tests/fixtures/transfer` (a hand-written NLL minimised in scipy/jax
//! from several starts, every start at the same minimum): twice_nll rtol
//! 1e-9, best-fit values and uncertainties 1e-5 (values relative to
//! max(|value|, uncertainty), so coefficients near 0 are judged on the scale
//! the data resolve), for the free fit and fits at mu = 0 and mu = 1.

use std::path::Path;

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::fit::{fit, fixed_poi_fit, FitOptions, FitSetup};
use anagrad::infer::Likelihood;
use serde_json::Value;

fn dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/transfer"
    ))
}

#[test]
fn transfer_fits_match_the_references() {
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("refs.json")).unwrap()).unwrap();
    let models = refs["models"].as_object().unwrap();
    assert!(models.len() >= 12, "only {} reference models", models.len());
    let mut failures = Vec::new();
    for (name, r) in models {
        let ws = Workspace::from_path(&dir().join(r["file"].as_str().unwrap())).unwrap();
        let m = Model::new(&ws, &ModelOptions::default()).unwrap();
        assert_eq!(m.n_pars() as u64, r["n_pars"].as_u64().unwrap(), "{name}");
        let data = m.observed_data();
        let setup = FitSetup::from_model(&m);
        let opts = FitOptions::default();
        let unc_ref = &r["free"]["uncertainties"];
        for (label, res) in [
            ("free", fit(&m, &data, &setup, &opts)),
            (
                "fixed_mu0",
                fixed_poi_fit(&m, &data, 0.0, &setup, None, &opts),
            ),
            (
                "fixed_mu1",
                fixed_poi_fit(&m, &data, 1.0, &setup, None, &opts),
            ),
        ] {
            let res = match res {
                Ok(x) => x,
                Err(e) => {
                    failures.push(format!("{name} {label}: {e}"));
                    continue;
                }
            };
            let fr = &r[label];
            let want = fr["twice_nll"].as_f64().unwrap();
            if (res.twice_nll - want).abs() > 1e-9 * want.abs() {
                failures.push(format!(
                    "{name} {label}: twice_nll {} vs {want}",
                    res.twice_nll
                ));
            }
            let unc = if label == "free" {
                Some(res.uncertainties().unwrap())
            } else {
                None
            };
            for (i, pn) in m.par_names().iter().enumerate() {
                let v = fr["pars"][pn]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name}: no ref for {pn}"));
                let scale = v.abs().max(unc_ref[pn].as_f64().unwrap());
                if (res.pars[i] - v).abs() > 1e-5 * scale {
                    failures.push(format!("{name} {label}: {pn} = {} vs {v}", res.pars[i]));
                }
                if let Some(u) = &unc {
                    let w = unc_ref[pn].as_f64().unwrap();
                    if (u[i] - w).abs() > 1e-5 * w {
                        failures.push(format!("{name}: uncertainty of {pn} {} vs {w}", u[i]));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
