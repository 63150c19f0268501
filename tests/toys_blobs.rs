//! The blobs toy: sample moments against the neos means and unit covariance,
//! seeding, and the analysis template it declares.

use anagrad::grad::{Loss, LossKind};
use anagrad::infer::teststat::TestStat;
use anagrad::toys::{by_name, Blobs, Role, ToyModel};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn moments(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let vx = x.iter().map(|a| (a - mx).powi(2)).sum::<f64>() / (n - 1.0);
    let vy = y.iter().map(|a| (a - my).powi(2)).sum::<f64>() / (n - 1.0);
    let cxy = x
        .iter()
        .zip(y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (n - 1.0);
    (mx, my, vx, vy, cxy)
}

#[test]
fn blob_moments_match_neos() {
    let toy = Blobs::default();
    let means = [[-1.0, 1.0], [1.0, -1.0], [2.5, 2.0], [-2.5, -1.5]];
    let n = 40_000;
    let mut rng = StdRng::seed_from_u64(7);
    for (p, m) in means.iter().enumerate() {
        let ev = toy.sample(p, n, &mut rng).unwrap();
        assert_eq!(ev.len(), n);
        assert!(ev.weights.is_none());
        let (mx, my, vx, vy, cxy) = moments(&ev.column(0), &ev.column(1));
        // standard errors: mean 1/√n = 0.005, variance √(2/n) = 0.007; 5σ bounds
        assert!((mx - m[0]).abs() < 0.025, "process {p}: mean x {mx}");
        assert!((my - m[1]).abs() < 0.025, "process {p}: mean y {my}");
        assert!((vx - 1.0).abs() < 0.035, "process {p}: var x {vx}");
        assert!((vy - 1.0).abs() < 0.035, "process {p}: var y {vy}");
        assert!(cxy.abs() < 0.025, "process {p}: cov {cxy}");
    }
}

#[test]
fn same_seed_same_events_and_bad_process_is_an_error() {
    let toy = Blobs::default();
    let a = toy.sample(1, 100, &mut StdRng::seed_from_u64(3)).unwrap();
    let b = toy.sample(1, 100, &mut StdRng::seed_from_u64(3)).unwrap();
    let c = toy.sample(1, 100, &mut StdRng::seed_from_u64(4)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let err = toy
        .sample(4, 10, &mut StdRng::seed_from_u64(3))
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    assert!(by_name("nope").is_err());
}

#[test]
fn processes_and_template_follow_neos() {
    let toy = by_name("blobs").unwrap();
    let ps = toy.processes();
    let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["signal", "bkg_nominal", "bkg_up", "bkg_down"]);
    assert_eq!(ps[0].role, Role::Signal);
    assert_eq!(ps[1].role, Role::Background);
    // signal ×2, backgrounds ×10, overall ×10
    assert_eq!(ps[0].yield_scale, 20.0);
    assert!(ps[1..].iter().all(|p| p.yield_scale == 100.0));

    let analysis = toy.analysis(4).unwrap();
    let template = analysis.template(anagrad::grad::YieldFloor::NEOS).unwrap();
    assert_eq!(template.input_lens(), vec![4, 4, 4, 4]);
    // Signal concentrated in the last bin, background in the first: CLs small.
    let values = [
        vec![0.5, 1.0, 3.0, 15.5],
        vec![60.0, 25.0, 10.0, 5.0],
        vec![50.0, 25.0, 15.0, 10.0],
        vec![70.0, 20.0, 7.0, 3.0],
    ]
    .concat();
    let cls = Loss::new(
        template,
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::Qmu,
        },
    )
    .evaluate(&values, false)
    .unwrap();
    assert!(cls.value > 0.0 && cls.value < 0.05, "CLs {}", cls.value);
    assert!(toy.analysis(0).is_err());
}
