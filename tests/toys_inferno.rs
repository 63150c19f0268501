//! INFERNO's 3-D synthetic mixture (`toys::inferno`): sample moments against
//! the analytic ones (tolerances of 5 standard errors of each estimator),
//! the nuisance variations as event-by-event transforms of the nominal
//! background, the analytic densities, and the benchmarks' analyses.

use anagrad::grad::YieldFloor;
use anagrad::toys::inferno::{Benchmark, Inferno};
use anagrad::toys::{by_name, Events, Role, ToyModel};
use rand::rngs::StdRng;
use rand::SeedableRng;

const N: usize = 200_000;

fn col_stats(ev: &Events, j: usize) -> (f64, f64) {
    let x = ev.column(j);
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0);
    (m, v)
}

#[test]
fn sample_moments_match_the_analytic_ones() {
    let toy = Inferno::new(Benchmark::B4);
    let names: Vec<String> = toy.processes().iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        names,
        [
            "signal",
            "background",
            "bkg_r_up",
            "bkg_r_down",
            "bkg_lambda_up",
            "bkg_lambda_down"
        ]
    );
    for (p, name) in names.iter().enumerate() {
        let ev = toy
            .sample(p, N, &mut StdRng::seed_from_u64(p as u64))
            .unwrap();
        assert_eq!(ev.len(), N);
        let moments = toy.moments(p).unwrap();
        for (j, &(mean, var)) in moments.iter().enumerate() {
            let (m, v) = col_stats(&ev, j);
            // SE of the mean σ/√n; of the variance sqrt((μ4 − σ⁴)/n), with
            // μ4 = 3σ⁴ (normal) or 9σ⁴ (exponential)
            let kurt = if j == 2 { 9.0 } else { 3.0 };
            let se_m = (var / N as f64).sqrt();
            let se_v = ((kurt - 1.0) * var * var / N as f64).sqrt();
            assert!(
                (m - mean).abs() < 5.0 * se_m,
                "{} x{j}: mean {m} vs {mean} (SE {se_m:.2e})",
                name
            );
            assert!(
                (v - var).abs() < 5.0 * se_v,
                "{} x{j}: variance {v} vs {var} (SE {se_v:.2e})",
                name
            );
        }
        // x2 ≥ 0 always
        assert!(ev.column(2).iter().all(|&x| x >= 0.0));
    }
    // the analytic moments themselves: the paper's values
    assert_eq!(
        toy.moments(0).unwrap(),
        [(0.0, 1.0), (0.0, 1.0), (0.5, 0.25)]
    );
    assert_eq!(
        toy.moments(1).unwrap(),
        [(2.0, 5.0), (0.0, 9.0), (1.0 / 3.0, 1.0 / 9.0)]
    );
    assert_eq!(toy.moments(2).unwrap()[0], (2.2, 5.0));
    assert_eq!(toy.moments(5).unwrap()[2], (0.4, 0.16));
}

#[test]
fn variations_transform_the_nominal_background_event_by_event() {
    let toy = Inferno::new(Benchmark::B2);
    let n = 1000;
    let nominal = toy.sample(1, n, &mut StdRng::seed_from_u64(3)).unwrap();
    for p in 2..6 {
        assert_eq!(toy.base_process(p), Some(1));
        let derived = toy.derive(p, &nominal).unwrap();
        // sampling the variation on its own draws the same events
        let direct = toy.sample(p, n, &mut StdRng::seed_from_u64(3)).unwrap();
        assert_eq!(derived, direct);
        let (dr, scale) = match p {
            2 => (0.2, 1.0),
            3 => (-0.2, 1.0),
            4 => (0.0, 3.0 / 3.5),
            _ => (0.0, 3.0 / 2.5),
        };
        for (a, b) in nominal.features.chunks(3).zip(derived.features.chunks(3)) {
            assert!((b[0] - (a[0] + dr)).abs() < 1e-12);
            assert_eq!(b[1], a[1]);
            assert!((b[2] - a[2] * scale).abs() < 1e-12 * a[2].max(1.0));
        }
    }
    assert_eq!(toy.base_process(0), None);
    assert_eq!(toy.base_process(1), None);
    assert!(toy.derive(0, &nominal).is_err());
}

#[test]
fn densities_are_normalised_and_match_the_samplers() {
    // E_b[f_s / f_b] = ∫ f_s = 1 (and both densities must be right for it)
    let toy = Inferno::new(Benchmark::B0);
    let bkg = toy.sample(1, N, &mut StdRng::seed_from_u64(9)).unwrap();
    let w: Vec<f64> = bkg
        .features
        .chunks(3)
        .map(|x| {
            let x = [x[0], x[1], x[2]];
            Inferno::signal_density(&x) / Inferno::background_density(&x, 0.0, 3.0)
        })
        .collect();
    let n = w.len() as f64;
    let m = w.iter().sum::<f64>() / n;
    let se = (w.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0) / n).sqrt();
    assert!((m - 1.0).abs() < 5.0 * se, "E_b[f_s/f_b] = {m} ± {se}");
    // E_b[f_b(x|r=0.2)/f_b(x|r=0)] = 1 and E_b[f_b(x|λ=3.5)/f_b(x|λ=3)] = 1
    for (r, l) in [(0.2, 3.0), (0.0, 3.5)] {
        let w: Vec<f64> = bkg
            .features
            .chunks(3)
            .map(|x| {
                let x = [x[0], x[1], x[2]];
                Inferno::background_density(&x, r, l) / Inferno::background_density(&x, 0.0, 3.0)
            })
            .collect();
        let m = w.iter().sum::<f64>() / n;
        let se = (w.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0) / n).sqrt();
        assert!((m - 1.0).abs() < 5.0 * se, "r={r}, λ={l}: {m} ± {se}");
    }
    // point values
    let x = [0.5, -1.0, 0.25];
    let fs = (-0.5 * 1.25f64).exp() / (2.0 * std::f64::consts::PI) * 2.0 * (-0.5f64).exp();
    assert!((Inferno::signal_density(&x) - fs).abs() < 1e-15);
    let fb = (-0.5 * (2.25 / 5.0 + 1.0 / 9.0f64)).exp()
        / (2.0 * std::f64::consts::PI * 45f64.sqrt())
        * 3.0
        * (-0.75f64).exp();
    assert!((Inferno::background_density(&x, 0.0, 3.0) - fb).abs() < 1e-15);
    let mix = Inferno::mixture_density(&x, 50.0, 0.0, 3.0, 1000.0);
    assert!((mix - (50.0 * fs + 1000.0 * fb) / 1050.0).abs() < 1e-15);
    assert_eq!(Inferno::signal_density(&[0.0, 0.0, -1.0]), 0.0);
}

#[test]
fn benchmarks_by_name_and_their_analyses() {
    let expect = [(2, 2, 0), (4, 4, 1), (6, 6, 2), (6, 6, 2), (6, 6, 3)];
    for (i, &(n_proc, n_inputs, n_nuis)) in expect.iter().enumerate() {
        let toy = by_name(&format!("inferno_b{i}")).unwrap();
        assert_eq!(toy.name(), format!("inferno_b{i}"));
        assert_eq!(toy.n_features(), 3);
        let procs = toy.processes();
        assert_eq!(procs.len(), n_proc);
        assert_eq!(procs[0].role, Role::Signal);
        assert_eq!(procs[0].yield_scale, 50.0);
        assert!(procs[1..].iter().all(|p| p.yield_scale == 1000.0));
        let a = toy.analysis(10).unwrap();
        assert_eq!(a.inputs.len(), n_inputs);
        let t = toy.template(10, YieldFloor::None).unwrap();
        assert_eq!(t.n_values(), 10 * n_inputs);
        // mu plus the nuisance parameters
        assert_eq!(t.model().par_names().len(), 1 + n_nuis);
    }
    assert!(by_name("inferno_b5").is_err());
    assert!(Benchmark::from_index(5).is_err());
}

#[test]
fn analytic_bound_reproduces_the_papers_row() {
    // "Analytical likelihood" row of the paper's table (paper/table.tex of
    // pablodecm/paper-inferno), given to 2 decimals. Ours are 0.04–0.11 %
    // below it on every benchmark (14.7046, 15.5026, 15.6344, 15.6051,
    // 16.8770): the quadrature is checked below; the paper's numbers come
    // from its own numerical evaluation, which we have not re-run.
    let paper = [14.71, 15.52, 15.65, 15.62, 16.89];
    for (i, &want) in paper.iter().enumerate() {
        let toy = Inferno::new(Benchmark::from_index(i).unwrap());
        let got = toy.analytic_sigma_s().unwrap();
        eprintln!("benchmark {i}: analytic σ_s {got:.4} (paper {want})");
        assert!((got - want).abs() <= 0.02, "benchmark {i}: {got} vs {want}");
    }
    // the quadrature is converged: halving both steps changes nothing
    let fine = Inferno::new(Benchmark::B4)
        .analytic_fisher_with(0.1, 0.25)
        .unwrap();
    let coarse = Inferno::new(Benchmark::B4).analytic_fisher().unwrap();
    for i in 0..4 {
        for j in 0..4 {
            let d = (fine[i][j] - coarse[i][j]).abs();
            assert!(
                d <= 1e-9 * (fine[i][i] * fine[j][j]).sqrt(),
                "I[{i}][{j}]: {} vs {}",
                coarse[i][j],
                fine[i][j]
            );
        }
    }
    // and agrees with Monte Carlo: I_ss = ∫ f_s² / ν against
    // under the mixture, E_p[f_s² / ν²] (s + b)
    let toy = Inferno::new(Benchmark::B0);
    let fi = toy.analytic_fisher().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let n = 400_000;
    let sig = toy.sample(0, n / 20, &mut rng).unwrap();
    let bkg = toy.sample(1, n, &mut rng).unwrap();
    // stratified: (s E_s[g] + b E_b[g]) with g = f_s² / ν²
    let g = |ev: &Events| -> (f64, f64) {
        let v: Vec<f64> = ev
            .features
            .chunks(3)
            .map(|x| {
                let x = [x[0], x[1], x[2]];
                let fs = Inferno::signal_density(&x);
                let nu = 50.0 * fs + 1000.0 * Inferno::background_density(&x, 0.0, 3.0);
                fs * fs / (nu * nu)
            })
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (v.len() as f64 - 1.0);
        (m, var / v.len() as f64)
    };
    let ((ms, vs), (mb, vb)) = (g(&sig), g(&bkg));
    let mc = 50.0 * ms + 1000.0 * mb;
    let se = (2500.0 * vs + 1e6 * vb).sqrt();
    eprintln!(
        "I_ss {} vs MC {mc} ± {se} ({:.1e} relative)",
        fi[0][0],
        se / mc
    );
    assert!(
        (fi[0][0] - mc).abs() < 5.0 * se,
        "I_ss {} vs MC {mc} ± {se}",
        fi[0][0]
    );
}
