//! The Asimov reach of the fiducial toy (`fiducial::reach`): the quadrature
//! against an independent evaluation and a high-statistics Monte Carlo, both
//! estimators unbiased, the proposal normalised, importance sampling's
//! variance gain (at the same n, and 1e5 importance-sampled events against
//! 2e6 plain ones), and the error cases. All seeded; ~20 s in the dev
//! profile on 2 cores.

use std::sync::OnceLock;

use anagrad::fiducial::reach::{
    accepted_signal, exact_q_asimov, fit_gaussian_mixture, fit_proposal, importance_estimate,
    plain_estimate, q_asimov_quadrature, run, Estimator, GaussianMixture, QuadratureGrid,
    ReachConfig, ReachTable,
};
use anagrad::toys::Fiducial;
use anagrad::Error;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// q_A of the default toy from `tests/fixtures/fiducial_reach_exact.py`
/// (factorised densities, numpy).
const REFERENCE: f64 = 52.434526388869564;

fn toy() -> Fiducial {
    Fiducial::default()
}

fn exact() -> f64 {
    static EXACT: OnceLock<f64> = OnceLock::new();
    *EXACT.get_or_init(|| exact_q_asimov(&toy()).expect("quadrature"))
}

/// One small study shared by the unbiasedness and variance tests.
fn study() -> &'static ReachTable {
    static STUDY: OnceLock<ReachTable> = OnceLock::new();
    STUDY.get_or_init(|| {
        let cfg = ReachConfig {
            sizes: vec![2_000, 50_000],
            plain_extra: vec![],
            replicas: 40,
            seed: 7,
            ..ReachConfig::default()
        };
        let t = run(&toy(), &cfg).expect("study");
        println!("{}", t.to_markdown());
        t
    })
}

fn row(t: &ReachTable, e: Estimator, n: usize) -> &anagrad::fiducial::reach::ReachRow {
    t.rows
        .iter()
        .find(|r| r.estimator == e && r.n == n)
        .expect("row")
}

#[test]
fn quadrature_agrees_with_independent_evaluation_and_is_converged() {
    let q = exact();
    assert!(
        ((q - REFERENCE) / REFERENCE).abs() < 1e-12,
        "{q} vs {REFERENCE}"
    );
    // halving every panel count and the φ points moves it by 4.7e-11
    let g = QuadratureGrid::default();
    let coarse = QuadratureGrid {
        m_panels: g.m_panels / 2,
        phi_points: g.phi_points / 2,
        y_panels: g.y_panels / 2,
        ..g
    };
    let c = q_asimov_quadrature(&toy(), &coarse).unwrap();
    assert!(
        ((c.value - q) / q).abs() < 1e-9,
        "coarse {} vs {q}",
        c.value
    );
    assert!(
        c.tail_bound >= 0.0 && c.tail_bound < 1e-12 * q,
        "{}",
        c.tail_bound
    );
    // the accepted signal differs from s by Φ(−7.5) s ≈ 2e-12
    let sa = accepted_signal(&toy());
    assert!(sa < 60.0 && 60.0 - sa < 1e-11, "{sa}");
}

#[test]
fn quadrature_matches_high_statistics_plain_monte_carlo() {
    let mut rng = StdRng::seed_from_u64(2020);
    let e = plain_estimate(&toy(), 4_000_000, &mut rng).unwrap();
    let pull = (e.q - exact()) / e.se;
    println!("plain 4e6: {} ± {} (pull {pull:.2})", e.q, e.se);
    assert!(pull.abs() < 4.0, "{} ± {} vs {}", e.q, e.se, exact());
}

#[test]
fn both_estimators_are_unbiased() {
    let t = study();
    assert!((t.exact - exact()).abs() < 1e-12 * exact());
    for e in [Estimator::Plain, Estimator::Importance] {
        let r = row(t, e, 50_000);
        assert_eq!(r.replicas, 40);
        assert!(r.pull.abs() < 4.0, "{e:?}: pull {}", r.pull);
        // the per-replica standard errors describe the replica spread
        let ratio = r.mean_se / r.sd;
        assert!(ratio > 0.7 && ratio < 1.4, "{e:?}: mean se / sd = {ratio}");
    }
    // importance sampling is already unbiased at small n
    let r = row(t, Estimator::Importance, 2_000);
    assert!(r.pull.abs() < 4.0, "importance n = 2000: pull {}", r.pull);
}

#[test]
fn importance_sampling_has_a_smaller_variance_at_the_same_n() {
    let t = study();
    for n in [2_000, 50_000] {
        let r = row(t, Estimator::Importance, n);
        let ratio = r.var_ratio.expect("ratio");
        println!("n = {n}: var(plain)/var(importance) = {ratio:.1}");
        // measured (seed 7, 40 replicas): 28.9 at n = 2000, 44.8 at n = 50 000
        assert!(ratio > 14.0, "n = {n}: var ratio {ratio}");
    }
}

#[test]
fn importance_1e5_beats_plain_2e6() {
    // per-event variances from each run's own sample variance, averaged over
    // runs (more precise than replica spreads for the same cost)
    let toy = toy();
    let mut rng = StdRng::seed_from_u64(11);
    let prop = fit_proposal(&toy, 20_000, 2, 0.2, &mut rng).unwrap();
    let is_var: f64 = (0..8)
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(100 + i);
            importance_estimate(&prop, 100_000, &mut rng)
                .unwrap()
                .se
                .powi(2)
        })
        .sum::<f64>()
        / 8.0;
    let plain_var: f64 = (0..3)
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(200 + i);
            plain_estimate(&toy, 2_000_000, &mut rng)
                .unwrap()
                .se
                .powi(2)
        })
        .sum::<f64>()
        / 3.0;
    let ratio = plain_var / is_var;
    println!("var(plain 2e6) / var(importance 1e5) = {ratio:.2} ({plain_var:.4} / {is_var:.4})");
    // measured: 1.88 (0.3056 / 0.1622)
    assert!(ratio > 1.3, "ratio {ratio}");
}

#[test]
fn proposal_is_normalised_and_its_weights_are_bounded() {
    let toy = toy();
    let mut rng = StdRng::seed_from_u64(5);
    let prop = fit_proposal(&toy, 20_000, 2, 0.2, &mut rng).unwrap();
    assert_eq!(prop.mixture.len(), 2);
    // the two components sit in the two favoured φ quadrants
    let mut phis: Vec<f64> = prop.mixture.means.iter().map(|m| m[1]).collect();
    phis.sort_by(f64::total_cmp);
    assert!(phis[0] > -std::f64::consts::PI && phis[0] < -std::f64::consts::FRAC_PI_2);
    assert!(phis[1] > 0.0 && phis[1] < std::f64::consts::FRAC_PI_2);

    // the mixture (in u = (m, φ, ln Δy)) integrates to 1: midpoint rule on a
    // box of ±9 component sd around the components, exponentially accurate
    let mix = &prop.mixture;
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for (mu, c) in mix.means.iter().zip(&mix.covariances) {
        for d in 0..3 {
            let sd = c[d][d].sqrt();
            lo[d] = lo[d].min(mu[d] - 9.0 * sd);
            hi[d] = hi[d].max(mu[d] + 9.0 * sd);
        }
    }
    let n = 120;
    let h: Vec<f64> = (0..3).map(|d| (hi[d] - lo[d]) / n as f64).collect();
    let mut sum = 0.0;
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let u = [
                    lo[0] + (i as f64 + 0.5) * h[0],
                    lo[1] + (j as f64 + 0.5) * h[1],
                    lo[2] + (k as f64 + 0.5) * h[2],
                ];
                sum += mix.density(&u);
            }
        }
    }
    let integral = sum * h[0] * h[1] * h[2];
    assert!((integral - 1.0).abs() < 1e-6, "∫ g = {integral}");

    // q = α p1 + (1 − α) g as sampled is the q of `density`: E_q[p1/q] = 1,
    // and the weights p1/q are bounded by 1/α
    let draws = prop.sample(200_000, &mut rng).unwrap();
    let w: Vec<f64> = draws
        .iter()
        .map(|x| prop.p1_density(x) / prop.density(x))
        .collect();
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (w.len() - 1) as f64;
    let se = (var / w.len() as f64).sqrt();
    assert!((mean - 1.0).abs() < 4.0 * se, "E_q[p1/q] = {mean} ± {se}");
    let max = w.iter().copied().fold(0.0, f64::max);
    assert!(max <= 1.0 / prop.alpha + 1e-12, "max weight {max}");
}

#[test]
fn estimators_are_reproducible_from_the_seed() {
    let toy = toy();
    let a = plain_estimate(&toy, 5_000, &mut StdRng::seed_from_u64(3)).unwrap();
    let b = plain_estimate(&toy, 5_000, &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(a, b);
    let p = fit_proposal(&toy, 10_000, 2, 0.2, &mut StdRng::seed_from_u64(4)).unwrap();
    let a = importance_estimate(&p, 5_000, &mut StdRng::seed_from_u64(3)).unwrap();
    let b = importance_estimate(&p, 5_000, &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(a, b);
}

fn config_key(r: anagrad::Result<()>) -> String {
    match r {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn config_errors_name_the_key() {
    let ok = ReachConfig::default();
    ok.validate().unwrap();
    let with = |f: &dyn Fn(&mut ReachConfig)| {
        let mut c = ok.clone();
        f(&mut c);
        config_key(c.validate())
    };
    assert_eq!(with(&|c| c.sizes.clear()), "reach.sizes");
    assert_eq!(with(&|c| c.sizes = vec![10, 0]), "reach.sizes[1]");
    assert_eq!(with(&|c| c.plain_extra = vec![0]), "reach.plain_extra[0]");
    assert_eq!(with(&|c| c.replicas = 1), "reach.replicas");
    assert_eq!(with(&|c| c.components = 0), "reach.components");
    assert_eq!(with(&|c| c.pilot = 10), "reach.pilot");
    for a in [0.0, -0.1, 1.5, f64::NAN] {
        assert_eq!(with(&|c| c.defensive = a), "reach.defensive", "α = {a}");
    }
    let mut c = ok.clone();
    c.defensive = 1.0;
    c.validate().unwrap();
    // run() checks the config first
    let bad = ReachConfig {
        replicas: 0,
        ..ok.clone()
    };
    assert!(matches!(run(&toy(), &bad), Err(Error::Config { key, .. }) if key == "reach.replicas"));
}

#[test]
fn config_reads_as_a_toml_table() {
    #[derive(Debug, serde::Deserialize)]
    struct File {
        reach: ReachConfig,
    }
    let f: File = toml::from_str("[reach]\nsizes = [1_000, 5_000]\nreplicas = 8\n").unwrap();
    assert_eq!(f.reach.sizes, vec![1_000, 5_000]);
    assert_eq!(f.reach.replicas, 8);
    assert_eq!(f.reach.pilot, ReachConfig::default().pilot);
    let err = toml::from_str::<File>("[reach]\nreplica = 8\n").unwrap_err();
    assert!(err.to_string().contains("replica"), "{err}");
}

#[test]
fn estimator_errors_are_typed() {
    let toy = toy();
    let mut rng = StdRng::seed_from_u64(1);
    assert!(matches!(
        plain_estimate(&toy, 0, &mut rng),
        Err(Error::InvalidInput(_))
    ));
    let bad_toy = Fiducial {
        kappa: 1.5,
        ..toy.clone()
    };
    assert!(plain_estimate(&bad_toy, 10, &mut rng).is_err());
    assert!(exact_q_asimov(&bad_toy).is_err());

    let prop = fit_proposal(&toy, 10_000, 2, 0.2, &mut rng).unwrap();
    assert!(matches!(
        importance_estimate(&prop, 0, &mut rng),
        Err(Error::InvalidInput(_))
    ));
    let msg = |r: anagrad::Result<anagrad::fiducial::reach::Proposal>| match r {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    };
    assert!(msg(fit_proposal(&toy, 10_000, 0, 0.2, &mut rng)).contains("components"));
    assert!(msg(fit_proposal(&toy, 10_000, 2, 0.0, &mut rng)).contains("defensive"));
    assert!(msg(fit_proposal(&toy, 10_000, 2, 1.01, &mut rng)).contains("defensive"));
    assert!(msg(fit_proposal(&toy, 100, 2, 0.2, &mut rng)).contains("too small"));
    // large enough by count, but the |h| weights are concentrated: the
    // effective size of 1000 pilot events is ~50 (< 20 per parameter)
    assert!(msg(fit_proposal(&toy, 1_000, 2, 0.2, &mut rng)).contains("effective size"));
}

#[test]
fn singular_covariances_are_errors() {
    // points on the plane u₃ = 0: every start's covariance is singular
    let pts: Vec<[f64; 3]> = (0..400)
        .map(|i| [(i % 20) as f64, (i / 20) as f64, 0.0])
        .collect();
    let w = vec![1.0; pts.len()];
    match fit_gaussian_mixture(&pts, &w, 2) {
        Err(Error::FitFailed { context, message }) => {
            assert!(context.contains("component"), "{context}");
            assert!(message.contains("singular"), "{message}");
        }
        other => panic!("expected FitFailed, got {other:?}"),
    }
    let sing = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let eye = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let r = GaussianMixture::new(vec![0.5, 0.5], vec![[0.0; 3]; 2], vec![eye, sing]);
    assert!(
        matches!(&r, Err(Error::InvalidInput(m)) if m.contains("component 1")),
        "{r:?}"
    );
    assert!(fit_gaussian_mixture(&pts, &w, 0).is_err());
    assert!(fit_gaussian_mixture(&pts[..5], &w[..5], 1).is_err());
}
