//! Toy-based inference against pyhf 0.7.6's `ToyCalculator`
//! (`tests/fixtures/toys/*.json`, written by `generate.py` there): on every
//! model, anagrad's own toys (its own seeds, the same N = 2000 per
//! hypothesis) must have the same test-statistic distributions as pyhf's
//! (two-sample Kolmogorov–Smirnov, p > 0.01 for each hypothesis), and
//! CLs_obs, CLs+b, CLb and the expected CLs band must agree within the two
//! ensembles' statistical error. A high-count model checks that the toys
//! converge to the asymptotic CLs.
//!
//! The two ensembles are independent, so differences are only statistical:
//! the tolerance is 4 standard errors of the difference (binomial for the
//! observed p-values; bootstrap over our toys for the band, with one toy's
//! worth of CLs as its floor, ×√2 for pyhf's equally large ensemble), plus
//! 1/N for discrete p-values.

use std::path::PathBuf;

use anagrad::hf::{Model, ModelOptions, Workspace};
use anagrad::infer::toys::{percentile_sorted, toy_distributions, ToyDistributions, ToyOptions};
use anagrad::infer::{hypotest, FitOptions, FitSetup, Likelihood, TestStat};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

const NTOYS: usize = 2000;

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/toys")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Asymptotic Kolmogorov survival function Q(λ) = 2 Σ (−1)^{j−1} e^{−2j²λ²}.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=200 {
        let j = j as f64;
        let term = (-2.0 * j * j * lambda * lambda).exp();
        sum += if j as i64 % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Two-sample KS statistic D and its asymptotic p-value (with Stephens'
/// small-sample correction λ = (√nₑ + 0.12 + 0.11/√nₑ) D, nₑ = nm/(n+m)).
/// Values are first rounded to 1e-4: the same monotone map on both samples
/// keeps the null hypothesis, and it makes pyhf's SLSQP fits (converged to
/// ~1e-6 in q) and ours tie where the exact statistics do (q = 0, discrete
/// data); ties only make the test conservative.
fn ks_two_sample(a: &[f64], b: &[f64]) -> (f64, f64) {
    let q = |v: &[f64]| {
        let mut v: Vec<f64> = v.iter().map(|x| (x * 1e4).round() / 1e4).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (q(a), q(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let ne = n * m / (n + m);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    (d, kolmogorov_q(lambda))
}

/// `#(x ≥ t)/N` for sorted `x`.
fn tail(sorted: &[f64], t: f64) -> f64 {
    (sorted.len() - sorted.partition_point(|&x| x < t)) as f64 / sorted.len() as f64
}

/// The expected CLs band (pyhf's definition) from sorted samples.
fn band(sb: &[f64], b: &[f64], q0: bool) -> [f64; 5] {
    let mut v: Vec<f64> = b
        .iter()
        .map(|&t| {
            let clsb = tail(sb, t);
            if q0 {
                clsb
            } else {
                clsb / tail(b, t)
            }
        })
        .collect();
    v.sort_by(f64::total_cmp);
    [2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681].map(|p| percentile_sorted(&v, p))
}

/// Bootstrap standard deviation of each band entry over our toys.
fn band_sd(sb: &[f64], b: &[f64], q0: bool, seed: u64) -> [f64; 5] {
    let mut rng = StdRng::seed_from_u64(seed);
    let reps = 200;
    let mut acc = [[0.0f64; 2]; 5];
    for _ in 0..reps {
        let mut rs = |x: &[f64]| {
            let mut v: Vec<f64> = (0..x.len())
                .map(|_| x[rng.random_range(0..x.len())])
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (s2, b2) = (rs(sb), rs(b));
        let e = band(&s2, &b2, q0);
        for k in 0..5 {
            acc[k][0] += e[k];
            acc[k][1] += e[k] * e[k];
        }
    }
    acc.map(|[s, s2]| {
        let m = s / reps as f64;
        (s2 / reps as f64 - m * m).max(0.0).sqrt()
    })
}

fn stat_of(name: &str) -> TestStat {
    match name {
        "qtilde" => TestStat::QmuTilde,
        "q" => TestStat::Qmu,
        "q0" => TestStat::Q0,
        other => panic!("unknown test statistic {other}"),
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Runs our ensemble on a fixture's model and compares everything.
fn compare(name: &str, seed: u64) {
    let t0 = std::time::Instant::now();
    let f = fixture(name);
    assert_eq!(f["ntoys"].as_u64().unwrap() as usize, NTOYS);
    let ws = Workspace::from_value(&f["workspace"]).unwrap();
    let model = Model::new(&ws, &ModelOptions::default()).unwrap();
    let data = model.observed_data();
    let stat = stat_of(f["test_stat"].as_str().unwrap());
    let q0 = stat == TestStat::Q0;
    let poi = f["poi_test"].as_f64().unwrap();
    let opts = ToyOptions {
        ntoys: NTOYS,
        seed,
        ..ToyOptions::default()
    };
    let d: ToyDistributions = toy_distributions(
        &model,
        &data,
        poi,
        stat,
        &FitSetup::from_model(&model),
        &opts,
    )
    .unwrap();
    let r = d.result().unwrap();
    let secs = t0.elapsed().as_secs_f64();

    // Same observed statistic (pyhf's SLSQP is converged to ~1e-6).
    let t_py = f["teststat"].as_f64().unwrap();
    assert!(
        (r.teststat - t_py).abs() <= 1e-4 * (1.0 + t_py.abs()),
        "{name}: observed statistic {} vs pyhf {t_py}",
        r.teststat
    );
    // Same generating points (conditional fits to the observed data).
    for (ours, key) in [
        (
            &d.signal_plus_background.generating_pars,
            "signal_plus_background",
        ),
        (&d.background.generating_pars, "background"),
    ] {
        let py = floats(&f["generating_pars"][key]);
        for (a, b) in ours.iter().zip(&py) {
            assert!(
                (a - b).abs() < 2e-3,
                "{name}: {key} generating pars {ours:?} vs pyhf {py:?}"
            );
        }
    }
    assert_eq!(
        r.failed,
        [0, 0],
        "{name}: failed toys {:?}",
        d.background.failures
    );

    // Distributions: two-sample KS per hypothesis.
    let sb = sorted(d.signal_plus_background.samples());
    let b = sorted(d.background.samples());
    let sb_py = sorted(floats(&f["signal_plus_background"]));
    let b_py = sorted(floats(&f["background"]));
    let (d_sb, p_sb) = ks_two_sample(&sb, &sb_py);
    let (d_b, p_b) = ks_two_sample(&b, &b_py);

    // Observed p-values: binomial errors of both ensembles.
    let n = NTOYS as f64;
    let var = |p: f64| (p * (1.0 - p) / n).max(1.0 / (n * n));
    let clsb_py = f["CLsb_obs"].as_f64().unwrap();
    let clb_py = f["CLb_obs"].as_f64().unwrap();
    let cls_py = f["CLs_obs"].as_f64().unwrap();
    let sd_clsb = (2.0 * var(clsb_py.max(r.clsb_obs))).sqrt();
    let sd_clb = (2.0 * var(clb_py.max(r.clb_obs))).sqrt();
    let cls_mid = 0.5 * (cls_py + r.cls_obs);
    let sd_cls = if q0 {
        sd_clsb
    } else {
        let (psb, pb) = (0.5 * (clsb_py + r.clsb_obs), 0.5 * (clb_py + r.clb_obs));
        cls_mid * (2.0 * (var(psb) / (psb * psb).max(1e-300) + var(pb) / (pb * pb))).sqrt()
    };
    // The band: bootstrap over our toys, the same for pyhf's.
    let ours_band = r.cls_exp;
    let py_band = floats(&f["CLs_exp"]);
    let bsd = band_sd(&sb, &b, q0, seed ^ 0xb007);

    eprintln!(
        "{name:>20} ({secs:.1} s): KS s+b D={d_sb:.4} p={p_sb:.3}, b D={d_b:.4} p={p_b:.3}; \
         CLs_obs {:.4} vs pyhf {cls_py:.4} (sd {sd_clsb:.4}/{sd_cls:.4}); \
         band {:?} vs pyhf {:?} (sd {:?})",
        r.cls_obs,
        ours_band.map(|x| (x * 1e4).round() / 1e4),
        py_band
            .iter()
            .map(|x| (x * 1e4).round() / 1e4)
            .collect::<Vec<_>>(),
        bsd.map(|x| (x * 1e4).round() / 1e4),
    );
    assert_eq!(ours_band, band(&sb, &b, q0), "{name}: band recomputation");
    assert!(
        p_sb > 0.01,
        "{name}: s+b distributions differ (KS p = {p_sb})"
    );
    assert!(p_b > 0.01, "{name}: b distributions differ (KS p = {p_b})");
    let tol = |sd: f64| 4.0 * sd + 1.0 / n;
    assert!(
        (r.clsb_obs - clsb_py).abs() <= tol(sd_clsb),
        "{name}: CLsb_obs {} vs pyhf {clsb_py}",
        r.clsb_obs
    );
    assert!(
        (r.clb_obs - clb_py).abs() <= tol(sd_clb),
        "{name}: CLb_obs {} vs pyhf {clb_py}",
        r.clb_obs
    );
    assert!(
        (r.cls_obs - cls_py).abs() <= tol(sd_cls),
        "{name}: CLs_obs {} vs pyhf {cls_py}",
        r.cls_obs
    );
    for k in 0..5 {
        // The bootstrap cannot see toys that are not there: where the band
        // entry rests on a handful of s+b toys (the far tail), one toy's
        // worth of CLs (1/(N·CLb), the Poisson s.d. of a count of 0 or 1)
        // is its floor.
        let clb_k = if q0 { 1.0 } else { r.clb_exp[k].max(1.0 / n) };
        let one_toy = 1.0 / (n * clb_k);
        let sd = std::f64::consts::SQRT_2 * bsd[k].hypot(one_toy);
        assert!(
            (ours_band[k] - py_band[k]).abs() <= tol(sd),
            "{name}: CLs_exp[{k}] {} vs pyhf {} (bootstrap sd {})",
            ours_band[k],
            py_band[k],
            bsd[k]
        );
    }
}

#[test]
fn onebin_lowcount_matches_pyhf() {
    compare("onebin_lowcount", 101);
}

#[test]
fn onebin_lowcount_discovery_matches_pyhf() {
    compare("onebin_lowcount_q0", 102);
}

#[test]
fn shapesys_matches_pyhf() {
    compare("shapesys", 103);
}

#[test]
fn histosys_matches_pyhf() {
    compare("histosys", 104);
}

#[test]
fn twochannel_matches_pyhf() {
    compare("twochannel", 105);
}

/// High counts (pyhf's uncorrelated_background at ~1000 events per bin):
/// the toys reproduce the asymptotic CLs and band.
#[test]
fn toys_converge_to_asymptotics_at_high_counts() {
    let ws = Workspace::from_value(&serde_json::json!({
        "channels": [{"name": "singlechannel", "samples": [
            {"name": "signal", "data": [40.0, 50.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "background", "data": [1000.0, 1200.0], "modifiers": [
                {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [30.0, 40.0]}]}]}],
        "observations": [{"name": "singlechannel", "data": [1010.0, 1190.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))
    .unwrap();
    let model = Model::new(&ws, &ModelOptions::default()).unwrap();
    let data = model.observed_data();
    let mu = 1.0;
    let asym = hypotest(
        &model,
        &data,
        mu,
        TestStat::QmuTilde,
        &FitOptions::default(),
    )
    .unwrap();
    let opts = ToyOptions {
        ntoys: NTOYS,
        seed: 7,
        ..ToyOptions::default()
    };
    let d = toy_distributions(
        &model,
        &data,
        mu,
        TestStat::QmuTilde,
        &FitSetup::from_model(&model),
        &opts,
    )
    .unwrap();
    let r = d.result().unwrap();
    let n = NTOYS as f64;
    let sd = |p: f64| (p * (1.0 - p) / n).sqrt().max(1.0 / n);
    let bsd = band_sd(
        &sorted(d.signal_plus_background.samples()),
        &sorted(d.background.samples()),
        false,
        99,
    );
    eprintln!(
        "high counts: CLs_obs toys {:.4} vs asymptotic {:.4}; CLsb {:.4} vs {:.4}; CLb {:.4} vs {:.4}; \
         band {:?} vs {:?} (sd {:?})",
        r.cls_obs, asym.cls_obs, r.clsb_obs, asym.clsb_obs, r.clb_obs, asym.clb_obs, r.cls_exp,
        asym.cls_exp, bsd
    );
    assert_eq!(r.failed, [0, 0]);
    // 4 standard errors of the toys, plus 0.01 for what is left of the
    // asymptotic approximation at these counts.
    let ok = |toy: f64, exact: f64, sd: f64| (toy - exact).abs() <= 4.0 * sd + 0.01;
    assert!(ok(r.clsb_obs, asym.clsb_obs, sd(asym.clsb_obs)));
    assert!(ok(r.clb_obs, asym.clb_obs, sd(asym.clb_obs)));
    let sd_cls = asym.cls_obs
        * (sd(asym.clsb_obs).powi(2) / asym.clsb_obs.powi(2)
            + sd(asym.clb_obs).powi(2) / asym.clb_obs.powi(2))
        .sqrt();
    assert!(
        ok(r.cls_obs, asym.cls_obs, sd_cls),
        "CLs_obs toys {} vs asymptotic {}",
        r.cls_obs,
        asym.cls_obs
    );
    // The band except its n_sigma = -2 end: there the toys' CLs is capped at
    // 1 (over 2.3 % of the background toys have q~ = 0, so CLs = 1), which
    // the asymptotic formula (0.77 here) does not reproduce.
    for (k, ((toy, exact), sd)) in r
        .cls_exp
        .iter()
        .zip(&asym.cls_exp)
        .zip(&bsd)
        .enumerate()
        .take(4)
    {
        assert!(
            ok(*toy, *exact, *sd),
            "CLs_exp[{k}] toys {toy} vs asymptotic {exact}"
        );
    }
}
