//! The significance of the full pass/fail analysis (TF profiled) as a
//! function of a tagger threshold and of a tagger network's weights:
//! candle's backward through events → sigmoid cut → histograms → fits →
//! √q0 against central finite differences of the whole chain with refits.

use anagrad::nn::{Activation, Mlp, MlpConfig, Output};
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
            let h = 1e-4;
            let at = |v: f64| {
                za(&Tensor::new(v, &dev).unwrap())
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let fd = (at(c0 + h) - at(c0 - h)) / (2.0 * h);
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
        let shape = var.as_tensor().shape().clone();
        let flat = var.as_tensor().flatten_all().unwrap();
        let exact = grads.get(var).unwrap().flatten_all().unwrap().i(k).unwrap();
        let exact = exact.to_scalar::<f64>().unwrap();
        let base: Vec<f64> = flat.to_vec1().unwrap();
        let h = 1e-5 * base[k].abs().max(0.1);
        let at = |d: f64| -> f64 {
            let mut v = base.clone();
            v[k] += d;
            var.set(&Tensor::from_vec(v, shape.clone(), &dev).unwrap())
                .unwrap();
            za().to_scalar::<f64>().unwrap()
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        at(0.0);
        let rel = rel_dev(exact, fd);
        eprintln!("var {vi}[{k}]: exact {exact:.9e}, fd {fd:.9e}, rel {rel:.2e}");
        assert!(
            rel <= 1e-5,
            "var {vi}[{k}]: exact {exact} vs fd {fd} ({rel:e})"
        );
    }
    eprintln!("Z_A = {:.6}", z.to_scalar::<f64>().unwrap());
}
