//! The neural transfer function (`nn::transfer`): the gradient of the
//! profile `−2 ln L` w.r.t. network weights through candle's backward
//! against central finite differences with refits, closure of the fitted TF
//! on a high-statistics toy, binomial thinning, and located errors.

use anagrad::grad::LossKind;
use anagrad::hf::{ModelOptions, Workspace};
use anagrad::nn::transfer::{NeuralTf, NeuralTfConfig, NeuralTransfer};
use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};
use serde_json::{json, Value};

const NX: usize = 6;
const NY: usize = 4;

/// The true pass/fail ratio at scaled coordinates: smooth, not a low-order
/// polynomial in the exp form (a Gaussian bump on a slope).
fn true_tf(u: f64, v: f64) -> f64 {
    0.05 * (0.8 * u - 0.3 * v + 0.5 * (-((u - 0.45) / 0.25).powi(2)).exp()).exp()
}

fn uv(b: usize) -> (f64, f64) {
    (
        (b / NY) as f64 / (NX - 1) as f64,
        (b % NY) as f64 / (NY - 1) as f64,
    )
}

/// A 2-D pass/fail workspace with `scale` times the default statistics,
/// Poisson pseudo-data from `seed` (or the rounded expectation without).
fn workspace(scale: f64, seed: Option<u64>) -> Value {
    let nb = NX * NY;
    let n0: Vec<f64> = (0..nb)
        .map(|b| {
            let (u, v) = uv(b);
            scale * 4000.0 * (-1.5 * u).exp() * (-v).exp()
        })
        .collect();
    let sig_pass: Vec<f64> = (0..nb)
        .map(|b| {
            if b / NY == 3 {
                10.0 * scale
            } else {
                0.5 * scale
            }
        })
        .collect();
    let sig_fail: Vec<f64> = sig_pass.iter().map(|x| 0.3 * x).collect();
    let exp_fail: Vec<f64> = n0.clone();
    let exp_pass: Vec<f64> = (0..nb)
        .map(|b| {
            let (u, v) = uv(b);
            n0[b] * true_tf(u, v)
        })
        .collect();
    let mut rng = seed.map(StdRng::seed_from_u64);
    let mut draw = |x: f64| match &mut rng {
        Some(r) => Poisson::new(x).unwrap().sample(r),
        None => x.round(),
    };
    let obs_fail: Vec<f64> = exp_fail.iter().map(|&x| draw(x)).collect();
    let obs_pass: Vec<f64> = exp_pass.iter().map(|&x| draw(x)).collect();
    let bins: Vec<Value> = (0..nb)
        .map(|b| {
            json!([
                40.0 + 20.0 * (b / NY) as f64,
                500.0 + 100.0 * (b % NY) as f64
            ])
        })
        .collect();
    let coords = json!({"axes": ["x", "y"], "bins": bins});
    let sf = json!({"name": "qcd_fail", "type": "shapefactor", "data": null});
    let tf = json!({"name": "tf", "type": "transferfactor",
        "data": {"basis": "polynomial", "order": [0, 0], "form": "exp"}});
    let mu = json!({"name": "mu", "type": "normfactor", "data": null});
    json!({
        "channels": [
            {"name": "fail", "coordinates": coords, "samples": [
                {"name": "qcd", "data": n0, "modifiers": [sf]},
                {"name": "sig", "data": sig_fail, "modifiers": [mu]}
            ]},
            {"name": "pass", "coordinates": coords, "samples": [
                {"name": "qcd", "data": n0, "modifiers": [sf, tf]},
                {"name": "sig", "data": sig_pass, "modifiers": [mu]}
            ]}
        ],
        "observations": [{"name": "fail", "data": obs_fail}, {"name": "pass", "data": obs_pass}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    })
}

fn transfer(ws: &Value) -> anagrad::Result<NeuralTransfer> {
    let w = Workspace::from_value(ws)?;
    NeuralTransfer::new(&w, "pass", "qcd", "tf", &ModelOptions::default())
}

/// d(−2 ln L at the best fit)/dφ through `Loss::forward` + candle backward,
/// against central differences of refitted values, for weights in every
/// layer; POI free, POI fixed at 0, and with a blinded window.
#[test]
fn profile_nll_gradient_wrt_weights_matches_finite_differences() {
    let ws = workspace(1.0, Some(11));
    let window: Vec<usize> = (3 * NY..4 * NY).collect();
    let cases = [
        ("free POI", transfer(&ws).unwrap(), None),
        ("POI = 0", transfer(&ws).unwrap(), Some(0.0)),
        (
            "blinded window",
            transfer(&ws).unwrap().with_blinded(&window).unwrap(),
            None,
        ),
    ];
    for (name, nt, poi) in cases {
        let config = NeuralTfConfig {
            hidden: vec![8, 8],
            output_init_scale: 1.0,
            poi,
            ..NeuralTfConfig::default()
        };
        let net = nt.network(&config, &mut StdRng::seed_from_u64(5)).unwrap();
        let loss = nt.loss(nt.workspace(), &config).unwrap();
        assert_eq!(loss.kind(), LossKind::ObservedNll { poi });
        let l = loss.forward(&[&net.tf_mc().unwrap()]).unwrap();
        let grads = l.backward().unwrap();
        let vars = net.mlp().vars();
        // (variable, flat index): first-layer weights and bias, hidden, output.
        let picks = [(0, 0), (0, 9), (1, 3), (2, 17), (3, 5), (4, 2), (4, 6)];
        let mut exact = Vec::new();
        let mut fd = Vec::new();
        for &(vi, k) in &picks {
            let var = &vars[vi];
            let g = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap();
            exact.push(g.to_vec1::<f64>().unwrap()[k]);
            let orig = var.as_tensor().copy().unwrap();
            let w0 = orig.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let h = 1e-4 * w0[k].abs().max(0.1);
            let val = |d: f64| {
                let mut w = w0.clone();
                w[k] += d;
                var.set(&Tensor::from_vec(w, orig.shape(), orig.device()).unwrap())
                    .unwrap();
                let v = loss
                    .evaluate(&net.tf_mc_values().unwrap(), false)
                    .unwrap()
                    .value;
                var.set(&orig).unwrap();
                v
            };
            fd.push((val(h) - val(-h)) / (2.0 * h));
        }
        let scale = exact.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let mut worst: f64 = 0.0;
        for (i, (&e, &f)) in exact.iter().zip(&fd).enumerate() {
            let rel = (e - f).abs() / scale;
            worst = worst.max(rel);
            assert!(
                rel <= 1e-5,
                "{name}: weight {:?}: backward {e} vs fd {f} (rel. to max |grad| {scale}: {rel:e})",
                picks[i]
            );
        }
        eprintln!("{name}: max |grad| {scale:.4e}, worst rel. deviation {worst:.2e}");
    }
}

/// On a high-statistics toy (background-only fits, as the data hold no
/// signal) the trained networks (early stopping on a thinned validation
/// half) reproduce the smooth true TF to within 2.5 % in every bin.
#[test]
fn neural_tf_reproduces_a_smooth_true_tf() {
    let ws = workspace(200.0, Some(3));
    let nt = transfer(&ws).unwrap();
    let config = NeuralTfConfig {
        hidden: vec![8, 8],
        members: 2,
        max_epochs: 1500,
        learning_rate: 0.03,
        poi: Some(0.0),
        ..NeuralTfConfig::default()
    };
    let fit = nt.fit(&config, &mut StdRng::seed_from_u64(1)).unwrap();
    let mut worst: f64 = 0.0;
    for b in 0..NX * NY {
        let (u, v) = uv(b);
        let t = true_tf(u, v);
        let rel = fit.tf[b] / t - 1.0;
        worst = worst.max(rel.abs());
    }
    for m in &fit.members {
        eprintln!(
            "member: best epoch {} of {} (early stop {}), val -2lnL {:.3} -> {:.3}",
            m.report.best_epoch,
            m.report.epochs_run,
            m.report.stopped_early,
            m.report.val_nll[0],
            m.report.val_nll[m.report.best_epoch]
        );
        assert!(m.report.val_nll[m.report.best_epoch] < m.report.val_nll[0]);
    }
    eprintln!("worst |TF/true - 1| = {worst:.4}");
    // Per-bin statistical precision of the pass/fail ratio here is 0.2-1 %.
    assert!(worst < 0.025, "worst relative TF deviation {worst}");
    // A flat TF (the untrained start) is far off: the network did the work.
    let flat = (0..NX * NY)
        .map(|b| {
            let (u, v) = uv(b);
            true_tf(u, v)
        })
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
    assert!(flat.1 / flat.0 > 2.0);
}

#[test]
fn thinning_splits_counts_and_scales_templates() {
    let nt = transfer(&workspace(1.0, Some(2))).unwrap();
    let (tr, va) = nt.thin(0.3, &mut StdRng::seed_from_u64(4)).unwrap();
    let ws = nt.workspace();
    let (mut ntr, mut ntot) = (0.0, 0.0);
    for ((o, t), v) in ws
        .observations
        .iter()
        .zip(&tr.observations)
        .zip(&va.observations)
    {
        for ((n, a), b) in o.data.iter().zip(&t.data).zip(&v.data) {
            assert_eq!(a + b, *n);
            assert!(a.fract() == 0.0 && *a >= 0.0 && *b >= 0.0);
            ntr += a;
            ntot += n;
        }
    }
    let f = ntr / ntot;
    assert!((f - 0.3).abs() < 0.01, "training fraction {f}");
    let s = &ws.channels[1].samples[1].data;
    assert!((tr.channels[1].samples[1].data[0] - 0.3 * s[0]).abs() < 1e-12);
    assert!((va.channels[1].samples[1].data[0] - 0.7 * s[0]).abs() < 1e-12);
}

fn err<T>(r: anagrad::Result<T>) -> String {
    match r {
        Ok(_) => panic!("bad input accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_inputs_give_located_errors() {
    let ws = workspace(1.0, Some(2));

    let mut w = ws.clone();
    w["channels"][1]
        .as_object_mut()
        .unwrap()
        .remove("coordinates");
    // The hf validation already wants coordinates for the transferfactor.
    let e = err(transfer(&w));
    assert!(e.contains("bin coordinates of channel 'pass'"), "{e}");

    let w = Workspace::from_value(&ws).unwrap();
    let o = ModelOptions::default();
    let e = err(NeuralTransfer::new(&w, "sr", "qcd", "tf", &o));
    assert!(
        e.contains("no channel 'sr'") && e.contains("fail, pass"),
        "{e}"
    );
    let e = err(NeuralTransfer::new(&w, "pass", "qcdx", "tf", &o));
    assert!(
        e.contains("channels[1] ('pass').samples") && e.contains("no sample 'qcdx'"),
        "{e}"
    );
    let e = err(NeuralTransfer::new(&w, "pass", "qcd", "qcd_fail", &o));
    assert!(
        e.contains("channels[1].samples[0].modifiers[0] ('qcd_fail')")
            && e.contains("is a shapefactor, not a transferfactor"),
        "{e}"
    );

    let mut w = ws.clone();
    w["channels"][1]["samples"][0]["modifiers"][1]["data"]["order"] = json!([1, 0]);
    let e = err(transfer(&w));
    assert!(
        e.contains("modifiers[1] ('tf').data.order") && e.contains("order 0 on every axis"),
        "{e}"
    );

    let mut w = ws.clone();
    w["observations"][1]["data"][5] = json!(3.5);
    let nt = transfer(&w).unwrap();
    let e = err(nt.thin(0.5, &mut StdRng::seed_from_u64(0)));
    assert!(
        e.contains("observations[1].data[5] ('pass')") && e.contains("non-negative integer"),
        "{e}"
    );
    let e = err(nt.thin(1.0, &mut StdRng::seed_from_u64(0)));
    assert!(e.contains("(0, 1)"), "{e}");

    let nt = transfer(&ws).unwrap();
    let e = err(nt.with_blinded(&[3, 99]));
    assert!(
        e.contains("blinded") && e.contains("bin 99 does not exist"),
        "{e}"
    );

    let c = NeuralTfConfig::default();
    let mut rng = StdRng::seed_from_u64(0);
    let e = err(NeuralTf::new(&[vec![0.0, 1.0], vec![0.5]], &c, &mut rng));
    assert!(
        e.contains("coordinates[1] has 1 values, bin 0 has 2"),
        "{e}"
    );
    let e = err(NeuralTf::new(&[], &c, &mut rng));
    assert!(e.contains("no bin coordinates"), "{e}");
    let e = err(NeuralTf::new(&[vec![f64::NAN]], &c, &mut rng));
    assert!(e.contains("coordinates[0][0] is NaN"), "{e}");

    let nt = transfer(&ws).unwrap();
    let small = NeuralTf::new(&[vec![0.0, 0.0], vec![1.0, 1.0]], &c, &mut rng).unwrap();
    let e = err(nt.train(&small, &c, &mut rng));
    assert!(
        e.contains("the network has 2 bins, channel 'pass' has 24"),
        "{e}"
    );
    let e = err(nt.fit_with(&[1.0; 5], None, &c.fit));
    assert!(e.contains("5 values given") && e.contains("need 24"), "{e}");
    let bad = NeuralTfConfig {
        train_fraction: 0.0,
        ..c.clone()
    };
    let e = err(nt.train(&small, &bad, &mut rng));
    assert!(
        e.contains("neural_tf.train_fraction") && e.contains("(0, 1]"),
        "{e}"
    );
    let bad = NeuralTfConfig {
        hidden: vec![8, 0],
        ..c.clone()
    };
    let e = err(nt.network(&bad, &mut rng));
    assert!(e.contains("neural_tf.hidden[1]"), "{e}");

    let (model, r) = nt.fit_with(&[1.0; 24], None, &c.fit).unwrap();
    let p = anagrad::nn::transfer::PassPrediction::from_fit(&model, &r, "pass").unwrap();
    let e = err(p.window(&[1, 24]));
    assert!(
        e.contains("window bin 24 does not exist") && e.contains("24 bins"),
        "{e}"
    );
    let e = err(anagrad::nn::transfer::PassPrediction::from_fit(
        &model, &r, "sr",
    ));
    assert!(e.contains("no channel 'sr'"), "{e}");
}
