//! The transfer-function workflow (`anagrad::transfer`) on the pass/fail toy:
//! config → workspace → fit recovers the true TF, post-fit uncertainties
//! against finite differences, the F-test against a hand computation, the
//! GoF p-value on a correct model (and its independence of the thread
//! count), the two-step TF_MC, masked cells and 1-D configs, located errors
//! for bad configs, and the CLI end to end.

use anagrad::hf::Model;
use anagrad::infer::Likelihood;
use anagrad::toys::passfail::{PassFailToy, RegionYields, Tagger, ToyYields};
use anagrad::transfer::config::{Grid, McFitConfig, TfMc};
use anagrad::transfer::ftest::{f_p_value, f_statistic, ftest};
use anagrad::transfer::gof::{aux_entries, gof_toys};
use anagrad::transfer::report::sample_inputs;
use anagrad::transfer::{build, fit_config, TransferConfig, TransferFitOptions};
use anagrad::Error;
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn toy(nx: usize, ny: usize, n_qcd: f64) -> PassFailToy {
    let mut t = PassFailToy::new(nx, ny, Tagger::polynomial());
    t.n_qcd = n_qcd;
    t.n_signal *= n_qcd / 200_000.0;
    t.n_other *= n_qcd / 200_000.0;
    t
}

fn asimov(e: &ToyYields) -> RegionYields {
    let sum = |a: &Vec<Vec<f64>>, b: &Vec<Vec<f64>>, c: &Vec<Vec<f64>>| -> Vec<Vec<f64>> {
        a.iter()
            .zip(b)
            .zip(c)
            .map(|((x, y), z)| {
                x.iter()
                    .zip(y)
                    .zip(z)
                    .map(|((p, q), r)| p + q + r)
                    .collect()
            })
            .collect()
    };
    RegionYields {
        fail: sum(&e.qcd.fail, &e.signal.fail, &e.other.fail),
        pass: sum(&e.qcd.pass, &e.signal.pass, &e.other.pass),
    }
}

fn truth(t: &PassFailToy) -> Vec<f64> {
    match &t.tagger {
        Tagger::Polynomial { coefficients, .. } => coefficients.clone(),
        _ => unreachable!(),
    }
}

fn config_err(r: anagrad::Result<TransferConfig>) -> (String, String) {
    match r {
        Err(Error::Config { key, message }) => (key, message),
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected a config error, got a valid config"),
    }
}

#[test]
fn fit_recovers_the_true_tf() {
    // Asimov data: the fit reproduces the generating Bernstein coefficients.
    let t = toy(12, 5, 2.0e6);
    let e = t.expected().unwrap();
    let cfg = TransferConfig::from_toy(&t, &e, &asimov(&e), [2, 1]);
    let fit = fit_config(&cfg, &TransferFitOptions::default()).unwrap();
    let r = fit.report().unwrap();
    for (p, c) in r.tf.parts[0].parameters.iter().zip(truth(&t)) {
        assert!((p.value - c).abs() < 1e-7 * c, "{} vs {c}", p.value);
    }
    let mu = r.parameters.iter().find(|p| p.name == "mu").unwrap();
    assert!((mu.value - 1.0).abs() < 1e-6);
    assert!(r.saturated.abs() < 1e-6, "saturated {}", r.saturated);

    // Poisson data at high statistics: every coefficient and the TF at every
    // bin within 3.5 sigma of the truth.
    let data = t
        .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(11))
        .unwrap();
    let cfg = TransferConfig::from_toy(&t, &e, &data, [2, 1]);
    let fit = fit_config(&cfg, &TransferFitOptions::default()).unwrap();
    let r = fit.report().unwrap();
    for (k, (p, c)) in r.tf.parts[0].parameters.iter().zip(truth(&t)).enumerate() {
        let pull = (p.value - c) / p.unc;
        assert!(pull.abs() < 3.5, "tf[{k}] = {} ± {} vs {c}", p.value, p.unc);
    }
    let tf_true = t.true_tf();
    for p in &r.tf.at_bins {
        let want = tf_true[p.cell[0]][p.cell[1]];
        assert!(
            (p.value - want).abs() < 3.5 * p.unc,
            "cell {:?}: {} ± {} vs {want}",
            p.cell,
            p.value,
            p.unc
        );
    }
    // Bin-level uncertainties are sane: the TF is known to a few percent.
    assert!(r
        .tf
        .at_bins
        .iter()
        .all(|p| p.unc > 0.0 && p.unc < 0.1 * p.value));
}

/// Central differences of `f` w.r.t. the free parameters at `pars`.
fn fd_jacobian(
    f: &dyn Fn(&[f64]) -> Vec<f64>,
    pars: &[f64],
    free: &[usize],
) -> Vec<Vec<(usize, f64)>> {
    let m = f(pars).len();
    let mut rows = vec![Vec::new(); m];
    for &i in free {
        let h = 1e-5 * pars[i].abs().max(1e-2);
        let mut p = pars.to_vec();
        p[i] += h;
        let up = f(&p);
        p[i] -= 2.0 * h;
        let dn = f(&p);
        for b in 0..m {
            let d = (up[b] - dn[b]) / (2.0 * h);
            if d != 0.0 {
                rows[b].push((i, d));
            }
        }
    }
    rows
}

fn sigma(row: &[(usize, f64)], cov: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for &(i, a) in row {
        for &(j, b) in row {
            s += a * b * cov[i * n + j];
        }
    }
    s.sqrt()
}

#[test]
fn postfit_uncertainties_match_finite_differences() {
    let t = toy(8, 4, 2.0e5);
    let e = t.expected().unwrap();
    let data = t
        .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(3))
        .unwrap();
    let mut cfg = TransferConfig::from_toy(&t, &e, &data, [2, 1]);
    cfg.blinded = vec![vec![4, 0], vec![4, 1]];
    let fit = fit_config(&cfg, &TransferFitOptions::default()).unwrap();
    let r = fit.report().unwrap();
    let m = &fit.model;
    let n = m.n_pars();
    let cov = fit.covariance().unwrap();
    let free = fit.free();
    let pars = &fit.result.pars;
    let nm = m.n_main();
    let nb = fit.built.layout.n_bins();
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 2e-6 * b.abs().max(1e-12),
            "{what}: report {a} vs finite differences {b}"
        );
    };

    // Totals.
    let total = |p: &[f64]| m.expected_data(p).unwrap()[..nm].to_vec();
    let jt = fd_jacobian(&total, pars, &free);
    for (ri, reg) in r.regions.iter().enumerate() {
        for (b, bin) in reg.bins.iter().enumerate() {
            close(
                bin.total.unc,
                sigma(&jt[ri * nb + b], &cov, n),
                &format!("{} bin {b} total", reg.region),
            );
        }
    }
    // Per sample, and the TF as the pass/fail ratio of the QCD sample.
    let qcd_inp = sample_inputs(m, "qcd");
    let qcd = |p: &[f64]| m.expected_data_generic(p, &qcd_inp).unwrap()[..nm].to_vec();
    let jq = fd_jacobian(&qcd, pars, &free);
    for (ri, reg) in r.regions.iter().enumerate() {
        for (b, bin) in reg.bins.iter().enumerate() {
            let s = bin.samples.iter().find(|s| s.sample == "qcd").unwrap();
            close(
                s.unc,
                sigma(&jq[ri * nb + b], &cov, n),
                &format!("{} bin {b} qcd", reg.region),
            );
        }
    }
    let ratio = |p: &[f64]| {
        let q = qcd(p);
        (0..nb).map(|b| q[nb + b] / q[b]).collect::<Vec<_>>()
    };
    let jr = fd_jacobian(&ratio, pars, &free);
    let vr = ratio(pars);
    for (b, p) in r.tf.at_bins.iter().enumerate() {
        assert!((p.value - vr[b]).abs() < 1e-12 * vr[b]);
        close(p.unc, sigma(&jr[b], &cov, n), &format!("TF bin {b}"));
    }
    // Projections: data and prediction over the unblinded cells.
    let pass_x = r
        .projections
        .iter()
        .find(|p| p.region == "pass" && p.axis == 0)
        .unwrap();
    assert_eq!(pass_x.blinded_cells[4], 2);
    let open: Vec<usize> = (0..nb)
        .filter(|&b| fit.built.layout.cells[b].0 == 4 && !fit.built.layout.blinded.contains(&b))
        .collect();
    let row: Vec<(usize, f64)> = {
        let mut d = vec![0.0; n];
        for &b in &open {
            for &(i, a) in &jt[nb + b] {
                d[i] += a;
            }
        }
        (0..n).filter(|&i| d[i] != 0.0).map(|i| (i, d[i])).collect()
    };
    close(pass_x.prediction_unc[4], sigma(&row, &cov, n), "projection");
    // Pulls: the normsys of the W/Z-like background is a unit Gaussian.
    let wz = r.parameters.iter().find(|p| p.name == "wz_norm").unwrap();
    let c = wz.constraint.as_ref().unwrap();
    assert!((c.prefit_sigma - 1.0).abs() < 1e-12 && c.aux == 0.0);
    assert!((c.pull - wz.value / wz.unc).abs() < 1e-12);
}

#[test]
fn ftest_matches_a_hand_computation() {
    assert!(
        (f_statistic(120.0, 100.0, 10, 13, 200) - (20.0 / 3.0) / (100.0 / 187.0)).abs() < 1e-12
    );
    let t = toy(10, 4, 2.0e5);
    let e = t.expected().unwrap();
    let data = t
        .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(5))
        .unwrap();
    let cfg = TransferConfig::from_toy(&t, &e, &data, [1, 1]);
    let opts = TransferFitOptions::default();
    let res = ftest(&cfg, &[1, 1], &[2, 1], None, &opts, &ProgressBar::hidden()).unwrap();
    // By hand: saturated statistic from expected data (Poisson part over
    // every bin, nothing blinded) plus the unit-Gaussian normsys term.
    let hand_chi2 = |order: [usize; 2]| -> (f64, usize) {
        let f = fit_config(&cfg.with_order(&order), &opts).unwrap();
        let m: &Model = &f.model;
        let lam = m.expected_data(&f.result.pars).unwrap();
        let mut s = 0.0;
        for (&l, &n) in lam.iter().zip(&f.data).take(m.n_main()) {
            s += 2.0 * (l - n + if n > 0.0 { n * (n / l).ln() } else { 0.0 });
        }
        let a = f.result.pars[m.par_index("wz_norm").unwrap()];
        s += a * a;
        (s, m.n_pars())
    };
    let (c1, p1) = hand_chi2([1, 1]);
    let (c2, p2) = hand_chi2([2, 1]);
    let n = 2 * 10 * 4;
    assert_eq!((res.p1, res.p2, res.n), (p1, p2, n));
    assert!((res.chi2_1 - c1).abs() < 1e-9 * c1 && (res.chi2_2 - c2).abs() < 1e-9 * c2);
    let f = ((c1 - c2) / (p2 - p1) as f64) / (c2 / (n - p2) as f64);
    assert!((res.f - f).abs() < 1e-9 * f.abs(), "{} vs {f}", res.f);
    // p = I_{d2/(d2 + d1 F)}(d2/2, d1/2)
    let (d1, d2) = ((p2 - p1) as f64, (n - p2) as f64);
    let p = statrs::function::beta::beta_reg(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * f));
    assert!((res.p_value - p).abs() < 1e-10, "{} vs {p}", res.p_value);
    assert!((f_p_value(f, p1, p2, n).unwrap() - p).abs() < 1e-10);
    // The generating order (2, 1) is preferred over (1, 1) on this toy.
    assert!(res.p_value < 0.05, "p = {}", res.p_value);
    assert!(f_p_value(1.0, 3, 3, 10).is_err());
}

#[test]
fn gof_p_values_on_a_correct_model() {
    let t = toy(8, 4, 1.0e5);
    let e = t.expected().unwrap();
    let opts = TransferFitOptions::default();
    let mut ps = Vec::new();
    let mut means = Vec::new();
    let mut dof = 0;
    for seed in 0..4 {
        let data = t
            .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(100 + seed))
            .unwrap();
        let cfg = TransferConfig::from_toy(&t, &e, &data, [2, 1]);
        let fit = fit_config(&cfg, &opts).unwrap();
        let g = gof_toys(
            &fit.model,
            &fit.result,
            &fit.data,
            30,
            seed,
            &opts.fit,
            &ProgressBar::hidden(),
        )
        .unwrap();
        assert_eq!(g.failed, 0);
        assert!((0.0..=1.0).contains(&g.p_value));
        dof = g.n_bins - g.n_pars;
        means.push(g.toys.iter().sum::<f64>() / g.toys.len() as f64);
        ps.push(g.p_value);
    }
    // The toy statistic follows roughly a chi2 with n_bins - n_pars dof, and
    // the observed values are not extreme.
    let mean = means.iter().sum::<f64>() / means.len() as f64;
    assert!(
        (mean - dof as f64).abs() < 0.2 * dof as f64,
        "mean {mean} vs dof {dof}"
    );
    assert!(ps.iter().all(|&p| p > 0.005), "p-values {ps:?}");
    assert!(ps.iter().any(|&p| p > 0.1), "p-values {ps:?}");
}

#[test]
fn gof_toys_do_not_depend_on_the_thread_count() {
    let t = toy(6, 3, 5.0e4);
    let e = t.expected().unwrap();
    let data = t
        .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(9))
        .unwrap();
    let cfg = TransferConfig::from_toy(&t, &e, &data, [1, 1]);
    let opts = TransferFitOptions::default();
    let fit = fit_config(&cfg, &opts).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                gof_toys(
                    &fit.model,
                    &fit.result,
                    &fit.data,
                    12,
                    42,
                    &opts.fit,
                    &ProgressBar::hidden(),
                )
                .unwrap()
            })
    };
    let (a, b) = (run(1), run(3));
    assert_eq!(a.toys, b.toys);
    assert_eq!(a.p_value, b.p_value);
    assert_eq!(aux_entries(&fit.model).unwrap().len(), 1);
}

#[test]
fn two_step_tf_mc_masked_cells_and_one_axis() {
    let t = toy(10, 4, 2.0e5);
    let e = t.expected().unwrap();
    let data = t
        .pseudo_data(&e, 1.0, &mut StdRng::seed_from_u64(21))
        .unwrap();
    let mc = t
        .mc_templates(&e, 10.0, &mut StdRng::seed_from_u64(22))
        .unwrap();
    let mut cfg = TransferConfig::from_toy(&t, &e, &data, [0, 0]);
    cfg.qcd.tf_mc = Some(TfMc::Fit(McFitConfig {
        fail: Grid::TwoD(mc.fail.clone()),
        pass: Grid::TwoD(mc.pass.clone()),
        order: vec![2, 1],
        name: "tf_mc".into(),
    }));
    cfg.masked = vec![vec![0, 3], vec![9, 0]];
    let fit = fit_config(&cfg, &TransferFitOptions::default()).unwrap();
    let mcf = fit.built.mc_fit.as_ref().unwrap();
    assert_eq!(mcf.n_cells, 38);
    for (k, (m, c)) in mcf.mean.iter().zip(truth(&t)).enumerate() {
        assert!(
            (m - c).abs() < 4.0 * mcf.uncertainties[k],
            "tf_mc[{k}] {m} vs {c}"
        );
    }
    let r = fit.report().unwrap();
    assert_eq!(r.regions[0].bins.len(), 38);
    assert_eq!(r.tf.parts.len(), 2);
    assert!(r.tf.parts[0].constrained && !r.tf.parts[1].constrained);
    // The residual TF is a constant near 1; its decorrelated MC parameters are pulled little.
    let res = r.tf.parts[1].parameters[0];
    assert!((res.value - 1.0).abs() < 4.0 * res.unc, "residual {res:?}");
    let pulls: Vec<f64> = r
        .parameters
        .iter()
        .filter(|p| p.name.starts_with("tf_mc["))
        .map(|p| p.constraint.as_ref().unwrap().pull_prefit)
        .collect();
    assert_eq!(pulls.len(), 6);
    assert!(pulls.iter().all(|p| p.abs() < 4.0), "{pulls:?}");

    // One axis: the msd projection of the same toy, exp-Chebyshev TF.
    let sum_y = |g: &Vec<Vec<f64>>| Grid::OneD(g.iter().map(|r| r.iter().sum()).collect());
    let mut c1 = cfg.clone();
    c1.axes.truncate(1);
    c1.masked.clear();
    c1.qcd.tf_mc = None;
    c1.qcd.tf.order = vec![2];
    c1.qcd.tf.basis = "chebyshev".into();
    c1.qcd.tf.form = "exp".into();
    c1.data.fail = sum_y(&data.fail);
    c1.data.pass = sum_y(&data.pass);
    for s in c1.samples.iter_mut() {
        s.yields.fail = sum_y(&e.other.fail);
        s.yields.pass = sum_y(&e.other.pass);
    }
    let sig = c1.signal.as_mut().unwrap();
    sig.yields.fail = sum_y(&e.signal.fail);
    sig.yields.pass = sum_y(&e.signal.pass);
    c1.blinded = vec![vec![5]];
    let fit = fit_config(&c1, &TransferFitOptions::default()).unwrap();
    let r = fit.report().unwrap();
    assert_eq!(r.tf.grid_axes.len(), 1);
    assert_eq!(r.projections.len(), 2);
    assert_eq!(r.n_bins, 19);
    let ws = build(&c1).unwrap().workspace;
    assert_eq!(ws.channels[1].blinded, vec![5]);
}

#[test]
fn bad_configs_give_located_errors() {
    let t = toy(8, 4, 1.0e5);
    let e = t.expected().unwrap();
    let cfg = TransferConfig::from_toy(&t, &e, &asimov(&e), [2, 1]);
    let json = serde_json::to_value(&cfg).unwrap();
    let parse = |v: &serde_json::Value| TransferConfig::from_json_str(&v.to_string());
    assert!(parse(&json).is_ok());

    // Orders too high for the number of bins.
    let mut v = json.clone();
    v["qcd"]["tf"]["order"] = serde_json::json!([8, 1]);
    let (k, m) = config_err(parse(&v));
    assert_eq!(k, "qcd.tf.order[0]");
    assert!(m.contains("needs at least 9 distinct bin centres"), "{m}");
    // The wrong number of orders (coordinates of an axis missing).
    let mut v = json.clone();
    v["qcd"]["tf"]["order"] = serde_json::json!([2]);
    assert_eq!(config_err(parse(&v)).0, "qcd.tf.order");
    // A region missing.
    let mut v = json.clone();
    v["data"].as_object_mut().unwrap().remove("pass");
    match parse(&v) {
        Err(Error::Json { source, .. }) => {
            assert!(
                source.to_string().contains("missing field `pass`"),
                "{source}"
            )
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    // Mismatched bins: rows and columns.
    let mut v = json.clone();
    v["data"]["pass"].as_array_mut().unwrap().pop();
    let (k, m) = config_err(parse(&v));
    assert_eq!(k, "data.pass");
    assert!(
        m.contains("has 7 entries along axis 'msd', which has 8 bins"),
        "{m}"
    );
    let mut v = json.clone();
    v["samples"][0]["yields"]["fail"][3]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(1.0));
    assert_eq!(config_err(parse(&v)).0, "samples[0].yields.fail[3]");
    // A flat array with two axes; negative counts; NaN-free but bad edges.
    let mut v = json.clone();
    v["data"]["fail"] = serde_json::json!([1.0, 2.0]);
    assert_eq!(config_err(parse(&v)).0, "data.fail");
    let mut v = json.clone();
    v["data"]["fail"][2][1] = serde_json::json!(-3.0);
    assert_eq!(config_err(parse(&v)).0, "data.fail[2][1]");
    let mut v = json.clone();
    v["axes"][1]["edges"] = serde_json::json!([450.0, 400.0, 1200.0]);
    assert_eq!(config_err(parse(&v)).0, "axes[1].edges");
    // Cells outside the grid, a blinded cell that is masked.
    let mut v = json.clone();
    v["blinded"] = serde_json::json!([[8, 0]]);
    assert_eq!(config_err(parse(&v)).0, "blinded[0]");
    let mut v = json.clone();
    v["blinded"] = serde_json::json!([[1, 1]]);
    v["masked"] = serde_json::json!([[1, 1]]);
    assert!(config_err(parse(&v)).1.contains("is masked"));
    // Unknown basis, ranges that exclude bin centres, unknown keys.
    let mut v = json.clone();
    v["qcd"]["tf"]["basis"] = serde_json::json!("legendre");
    assert_eq!(config_err(parse(&v)).0, "qcd.tf.basis");
    let mut v = json.clone();
    v["ranges"] = serde_json::json!([[60.0, 200.0], [450.0, 1200.0]]);
    assert_eq!(config_err(parse(&v)).0, "ranges[0]");
    let mut v = json.clone();
    v["qcd"]["tf"]["orders"] = serde_json::json!([1, 1]);
    assert!(matches!(parse(&v), Err(Error::Json { .. })));
    // A two-step TF_MC whose order is too high.
    let mut c = cfg.clone();
    c.qcd.tf_mc = Some(TfMc::Fit(McFitConfig {
        fail: Grid::TwoD(e.qcd.fail.clone()),
        pass: Grid::TwoD(e.qcd.pass.clone()),
        order: vec![2, 4],
        name: "tf_mc".into(),
    }));
    let (k, _) = config_err(c.validate().map(|_| c.clone()));
    assert_eq!(k, "qcd.tf_mc.fit.order[1]");
}

#[test]
fn cli_toy_fit_gof_ftest() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_anagrad");
    let cfg = dir.path().join("toy.json");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(exe).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let c = cfg.to_str().unwrap();
    run(&[
        "transfer", "toy", "--nx", "8", "--ny", "3", "--blind", "--out", c,
    ]);
    let fit_dir = dir.path().join("fit");
    let text = run(&["transfer", "fit", c, "-o", fit_dir.to_str().unwrap()]);
    assert!(text.contains("output folder:"), "{text}");
    for f in [
        "fit.json",
        "workspace.json",
        "tf_surface.png",
        "projections.svg",
        "pulls.png",
        "tf_slices.svg",
    ] {
        assert!(fit_dir.join(f).exists(), "{f} missing");
    }
    let gof_dir = dir.path().join("gof");
    let text = run(&[
        "transfer",
        "gof",
        c,
        "--ntoys",
        "8",
        "--seed",
        "2",
        "-q",
        "-o",
        gof_dir.to_str().unwrap(),
    ]);
    assert!(text.contains("p-value"), "{text}");
    assert!(gof_dir.join("gof.json").exists() && gof_dir.join("gof.png").exists());
    let f_dir = dir.path().join("ftest");
    let text = run(&[
        "transfer",
        "ftest",
        c,
        "--orders",
        "1,1:2,1",
        "--ntoys",
        "4",
        "-q",
        "-o",
        f_dir.to_str().unwrap(),
    ]);
    assert!(text.contains("F-test [1, 1] vs [2, 1]"), "{text}");
    assert!(f_dir.join("ftest.json").exists());
    // A bad config: a located error and a non-zero exit.
    std::fs::write(&cfg, "{\"axes\": []}").unwrap();
    let out = std::process::Command::new(exe)
        .args(["transfer", "fit", c])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing field"));
}
