//! The significance of the full pass/fail analysis (TF profiled) as a
//! function of a tagger threshold and of a tagger network's weights:
//! candle's backward through events → sigmoid cut → histograms → fits →
//! √q0 against central finite differences of the whole chain with refits.

use anagrad::nn::{Activation, Mlp, MlpConfig, Output};
use anagrad::ops::cut::hard_cut;
use anagrad::ops::cut::{soft_cut, Keep};
use anagrad::toys::tagger::{
    Binned, Events, Grid, Hists, PassFail, TaggerToy, Variant, N_FEATURES,
};
use candle_core::{DType, Device, IndexOp, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

struct Setup {
    qcd: Events,
    sig: Events,
    bq: Binned,
    bs: Binned,
    analysis: PassFail,
}

fn setup(variant: Variant) -> Setup {
    let toy = TaggerToy {
        variant,
        qcd_yield: 2e4,
        signal_yield: 150.0,
        ..TaggerToy::default()
    };
    let mut rng = StdRng::seed_from_u64(11);
    let qcd = toy.sample_qcd(4000, &mut rng).unwrap();
    let sig = toy.sample_signal(800, &mut rng).unwrap();
    let grid = Grid::uniform(4, 2).unwrap();
    let dev = Device::Cpu;
    let bq = Binned::new(&qcd, &grid, &dev).unwrap();
    let bs = Binned::new(&sig, &grid, &dev).unwrap();
    let analysis = PassFail::new(grid, [1, 1]).unwrap();
    Setup {
        qcd,
        sig,
        bq,
        bs,
        analysis,
    }
}

fn rel_dev(exact: f64, fd: f64) -> f64 {
    (exact - fd).abs() / exact.abs().max(fd.abs()).max(1e-12)
}

/// Central difference of `f` at `x0` with step `h`.
fn central(f: impl Fn(f64) -> f64, x0: f64, h: f64) -> f64 {
    (f(x0 + h) - f(x0 - h)) / (2.0 * h)
}

/// Central difference of `f()` w.r.t. entry `k` of `var` (step relative to
/// the entry), the entry restored afterwards.
fn entry_fd(var: &Var, k: usize, f: impl Fn() -> f64) -> f64 {
    let dev = var.device().clone();
    let shape = var.as_tensor().shape().clone();
    let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let set = |d: f64| {
        let mut v = base.clone();
        v[k] += d;
        var.set(&Tensor::from_vec(v, shape.clone(), &dev).unwrap())
            .unwrap();
    };
    let fd = central(
        |d| {
            set(d);
            f()
        },
        0.0,
        1e-5 * base[k].abs().max(0.1),
    );
    set(0.0);
    fd
}

#[test]
fn threshold_gradient_of_za_matches_finite_differences() {
    let dev = Device::Cpu;
    // signal strength 1 in the Asimov data: Z_A; 0: the spurious (signed)
    // significance of the background model, negative where μ̂ < 0
    for (variant, mu) in [
        (Variant::Smooth, 1.0),
        (Variant::NonPolynomial, 1.0),
        (Variant::NonPolynomial, 0.0),
    ] {
        let s = setup(variant);
        let tq = Tensor::new(s.qcd.column(0), &dev).unwrap();
        let ts = Tensor::new(s.sig.column(0), &dev).unwrap();
        let slope = Tensor::new(1.0 / 0.3f64, &dev).unwrap();
        let za = |c: &Tensor| -> Tensor {
            let pq = soft_cut(&tq, c, &slope, Keep::Above).unwrap();
            let ps = soft_cut(&ts, c, &slope, Keep::Above).unwrap();
            let h = Hists::new(&s.bq, &pq, &s.bs, &ps).unwrap();
            s.analysis.significance(&h, mu).unwrap()
        };
        for c0 in [0.5, 2.0] {
            let c = Var::new(c0, &dev).unwrap();
            let z = za(c.as_tensor());
            let g = z.backward().unwrap();
            let exact = g.get(&c).unwrap().to_scalar::<f64>().unwrap();
            let fd = central(
                |v| {
                    za(&Tensor::new(v, &dev).unwrap())
                        .to_scalar::<f64>()
                        .unwrap()
                },
                c0,
                1e-4,
            );
            let rel = rel_dev(exact, fd);
            eprintln!(
                "{variant:?} mu {mu} c = {c0}: Z = {:.6}, dZ/dc exact {exact:.9e}, fd {fd:.9e}, rel {rel:.2e}",
                z.to_scalar::<f64>().unwrap()
            );
            assert!(
                rel <= 1e-5,
                "{variant:?} c = {c0}: exact {exact} vs fd {fd} ({rel:e})"
            );
        }
    }
}

#[test]
fn network_weight_gradients_of_za_match_finite_differences() {
    let dev = Device::Cpu;
    let s = setup(Variant::NonPolynomial);
    let mut rng = StdRng::seed_from_u64(3);
    let cfg = MlpConfig {
        sizes: vec![N_FEATURES, 4, 1],
        activation: Activation::Tanh,
        output: Output::Linear,
    };
    let net = Mlp::new(cfg, DType::F64, &dev, &mut rng).unwrap();
    let xq = s.qcd.feature_tensor(DType::F64, &dev).unwrap();
    let xs = s.sig.feature_tensor(DType::F64, &dev).unwrap();
    let za = || -> Tensor {
        // pass weight σ(z / 0.3) of the network output z
        let pq = candle_nn::ops::sigmoid(&(net.forward(&xq).unwrap() / 0.3).unwrap()).unwrap();
        let ps = candle_nn::ops::sigmoid(&(net.forward(&xs).unwrap() / 0.3).unwrap()).unwrap();
        let h = Hists::new(&s.bq, &pq, &s.bs, &ps).unwrap();
        s.analysis.significance(&h, 1.0).unwrap()
    };
    let z = za();
    let grads = z.backward().unwrap();
    let vars = net.vars();
    // (variable, flat index): a first-layer weight of each kind of feature,
    // a first-layer bias and an output weight
    for (vi, k) in [(0usize, 0usize), (0, 6), (0, 9), (1, 2), (2, 1)] {
        let var = &vars[vi];
        let exact = grads.get(var).unwrap().flatten_all().unwrap().i(k).unwrap();
        let exact = exact.to_scalar::<f64>().unwrap();
        let fd = entry_fd(var, k, || za().to_scalar::<f64>().unwrap());
        let rel = rel_dev(exact, fd);
        eprintln!("var {vi}[{k}]: exact {exact:.9e}, fd {fd:.9e}, rel {rel:.2e}");
        assert!(
            rel <= 1e-5,
            "var {vi}[{k}]: exact {exact} vs fd {fd} ({rel:e})"
        );
    }
    eprintln!("Z_A = {:.6}", z.to_scalar::<f64>().unwrap());
}

#[test]
fn penalised_objective_gradient_matches_finite_differences() {
    // J = Z_A − Z_spur − λ Z_spur² (the network's training objective) w.r.t.
    // the threshold and two weights of a tagger network, with refits
    let dev = Device::Cpu;
    let s = setup(Variant::NonPolynomial);
    let lambda = 0.5;
    let tq = Tensor::new(s.qcd.column(0), &dev).unwrap();
    let ts = Tensor::new(s.sig.column(0), &dev).unwrap();
    let slope = Tensor::new(1.0 / 0.3f64, &dev).unwrap();
    let obj = |c: &Tensor| -> Tensor {
        let pq = soft_cut(&tq, c, &slope, Keep::Above).unwrap();
        let ps = soft_cut(&ts, c, &slope, Keep::Above).unwrap();
        let h = Hists::new(&s.bq, &pq, &s.bs, &ps).unwrap();
        s.analysis.objective(&h, lambda).unwrap().0
    };
    for c0 in [0.5, 2.0] {
        let c = Var::new(c0, &dev).unwrap();
        let j = obj(c.as_tensor());
        let exact = j
            .backward()
            .unwrap()
            .get(&c)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let fd = central(
            |v| {
                obj(&Tensor::new(v, &dev).unwrap())
                    .to_scalar::<f64>()
                    .unwrap()
            },
            c0,
            1e-4,
        );
        let rel = rel_dev(exact, fd);
        eprintln!(
            "J(c = {c0}) = {:.6}: dJ/dc exact {exact:.9e}, fd {fd:.9e}, rel {rel:.2e}",
            j.to_scalar::<f64>().unwrap()
        );
        assert!(rel <= 1e-5, "c = {c0}: exact {exact} vs fd {fd} ({rel:e})");
    }

    let mut rng = StdRng::seed_from_u64(5);
    let cfg = MlpConfig {
        sizes: vec![N_FEATURES, 4, 1],
        activation: Activation::Tanh,
        output: Output::Linear,
    };
    let net = Mlp::new(cfg, DType::F64, &dev, &mut rng).unwrap();
    let xq = s.qcd.feature_tensor(DType::F64, &dev).unwrap();
    let xs = s.sig.feature_tensor(DType::F64, &dev).unwrap();
    let obj_net = || -> (Tensor, f64) {
        let pq = candle_nn::ops::sigmoid(&(net.forward(&xq).unwrap() / 0.3).unwrap()).unwrap();
        let ps = candle_nn::ops::sigmoid(&(net.forward(&xs).unwrap() / 0.3).unwrap()).unwrap();
        let h = Hists::new(&s.bq, &pq, &s.bs, &ps).unwrap();
        let (j, _, spur) = s.analysis.objective(&h, lambda).unwrap();
        (j, spur)
    };
    let (j, spur) = obj_net();
    eprintln!(
        "network: J = {:.6}, Z_spur = {spur:.6}",
        j.to_scalar::<f64>().unwrap()
    );
    let grads = j.backward().unwrap();
    let vars = net.vars();
    for (vi, k) in [(0usize, 6usize), (2, 1)] {
        let var = &vars[vi];
        let exact = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .i(k)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let fd = entry_fd(var, k, || obj_net().0.to_scalar::<f64>().unwrap());
        let rel = rel_dev(exact, fd);
        eprintln!("var {vi}[{k}]: dJ exact {exact:.9e}, fd {fd:.9e}, rel {rel:.2e}");
        assert!(
            rel <= 1e-5,
            "var {vi}[{k}]: exact {exact} vs fd {fd} ({rel:e})"
        );
    }
    assert!(
        s.analysis
            .objective(
                &Hists::new(
                    &s.bq,
                    &Tensor::zeros(s.qcd.len(), DType::F64, &dev).unwrap(),
                    &s.bs,
                    &Tensor::zeros(s.sig.len(), DType::F64, &dev).unwrap()
                )
                .unwrap(),
                -1.0
            )
            .is_err(),
        "a negative penalty is an error"
    );
}

#[test]
fn selection_that_empties_a_fail_bin_still_evaluates() {
    // a hard selection passing every QCD event of bin 0 (and f1 >= 2
    // elsewhere): the fail nominal keeps that bin positive, so the fits no
    // longer start from -2 ln L = inf (they may still not converge: the TF
    // cannot follow a bin with no fail events); populated_bins drops the bin
    // and the analysis on the other bins evaluates
    let dev = Device::Cpu;
    let s = setup(Variant::Smooth);
    let grid = Grid::uniform(4, 2).unwrap();
    let in_bin0 = |e: &Events| -> Vec<f64> {
        e.x.iter()
            .zip(&e.y)
            .zip(e.column(0))
            .map(|((&x, &y), f)| {
                if grid.bin(x, y) == Some(0) || f >= 2.0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    };
    let pq = Tensor::new(in_bin0(&s.qcd), &dev).unwrap();
    let ps = Tensor::new(in_bin0(&s.sig), &dev).unwrap();
    let h = Hists::new(&s.bq, &pq, &s.bs, &ps).unwrap();
    let fail0: f64 = h.qcd_fail.to_vec1::<f64>().unwrap()[0];
    assert_eq!(fail0, 0.0, "bin 0 has no fail-region QCD");
    match s.analysis.significance_value(&h, 1.0) {
        Ok(z) => assert!(z.is_finite(), "Z_A = {z}"),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("all bins: {msg}");
            assert!(!msg.contains("starting point"), "{msg}");
        }
    }
    let kept = h.populated_bins(0.05).unwrap();
    assert_eq!(kept, (1..8).collect::<Vec<_>>());
    let masked = PassFail::with_bins(grid.clone(), [1, 1], kept).unwrap();
    let zm = masked.significance_value(&h, 1.0).unwrap();
    let spur = masked.significance_value(&h, 0.0).unwrap();
    eprintln!("without bin 0: Z_A = {zm:.4}, Z_spur = {spur:.4}");
    assert!(zm.is_finite() && spur.is_finite());
    assert!(PassFail::with_bins(grid.clone(), [1, 1], vec![]).is_err());
    assert!(PassFail::with_bins(grid, [1, 1], vec![8]).is_err());
}

#[test]
fn expected_yields_match_monte_carlo() {
    // the quadrature of TaggerToy::expected against a large MC sample, per
    // bin within 5 sigma of the MC statistical uncertainty
    let dev = Device::Cpu;
    for variant in [Variant::Smooth, Variant::NonPolynomial] {
        let toy = TaggerToy {
            variant,
            ..TaggerToy::default()
        };
        let mut rng = StdRng::seed_from_u64(21);
        let qcd = toy.sample_qcd(400_000, &mut rng).unwrap();
        let sig = toy.sample_signal(50_000, &mut rng).unwrap();
        let grid = Grid::uniform(8, 4).unwrap();
        let bq = Binned::new(&qcd, &grid, &dev).unwrap();
        let bs = Binned::new(&sig, &grid, &dev).unwrap();
        let c = 1.0;
        let cut = |e: &Events| {
            hard_cut(&Tensor::new(e.column(0), &dev).unwrap(), c, Keep::Above).unwrap()
        };
        let h = Hists::new(&bq, &cut(&qcd), &bs, &cut(&sig)).unwrap();
        let e = toy.expected(&grid, c).unwrap();
        let check = |name: &str, mc: &Tensor, ex: &[f64], w: f64| {
            let mc: Vec<f64> = mc.to_vec1().unwrap();
            let mut worst: f64 = 0.0;
            for (m, x) in mc.iter().zip(ex) {
                // Poisson error of the MC count m / w, in yield units
                let sigma = (x * w).sqrt().max(w);
                worst = worst.max((m - x).abs() / sigma);
            }
            eprintln!("{variant:?} {name}: worst deviation {worst:.2} sigma");
            assert!(worst < 5.0, "{variant:?} {name}: {worst} sigma");
        };
        check("qcd pass", &h.qcd_pass, &e.qcd_pass, qcd.weight);
        check("qcd fail", &h.qcd_fail, &e.qcd_fail, qcd.weight);
        check("signal pass", &h.sig_pass, &e.sig_pass, sig.weight);
        check("signal fail", &h.sig_fail, &e.sig_fail, sig.weight);
        // the window counts
        let (s_ex, b_ex) = toy.expected_window(c, 16.0).unwrap();
        let count = |ev: &Events| -> f64 {
            ev.x.iter()
                .zip(ev.column(0))
                .filter(|(x, f)| (**x - 125.0).abs() <= 16.0 && *f >= c)
                .count() as f64
                * ev.weight
        };
        let (s_mc, b_mc) = (count(&sig), count(&qcd));
        eprintln!("{variant:?} window: s {s_mc:.3} vs {s_ex:.3}, b {b_mc:.2} vs {b_ex:.2}");
        assert!((s_mc - s_ex).abs() < 5.0 * (s_ex * sig.weight).sqrt());
        assert!((b_mc - b_ex).abs() < 5.0 * (b_ex * qcd.weight).sqrt());
    }
}
