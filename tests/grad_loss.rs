//! Gradients of every loss w.r.t. every template input (nominal yields,
//! histosys lo/hi, normsys lo/hi, shapesys/staterror uncertainties, observed
//! data) against central finite differences of the whole pipeline *with
//! refits*, for each modifier type alone and all combined, in one and two
//! channels; plus error surfacing and the candle round trip.

use anagrad::grad::{AsimovSource, InputSel, Loss, LossKind, Template};
use anagrad::hf::{InputKind, InputSlice, ModelOptions, Workspace};
use anagrad::infer::fit::FitOptions;
use anagrad::infer::teststat::TestStat;
use anagrad::Error;
use candle_core::{Device, Tensor, Var};
use serde_json::{json, Value};

const TYPES: [&str; 7] = [
    "normfactor",
    "lumi",
    "normsys",
    "histosys",
    "shapesys",
    "staterror",
    "shapefactor",
];

/// One channel: signal (×`sig_scale`) rising, background falling (×`scale`).
fn channel(name: &str, nb: usize, scale: f64, sig_scale: f64, types: &[&str]) -> (Value, Vec<f64>) {
    let s: Vec<f64> = (0..nb)
        .map(|b| sig_scale * (2.0 + 3.0 * b as f64))
        .collect();
    let bkg: Vec<f64> = (0..nb).map(|b| scale * (40.0 - 9.0 * b as f64)).collect();
    let mut sig_mods = vec![json!({"name": "mu", "type": "normfactor", "data": null})];
    let mut bkg_mods = vec![];
    let mut samples = vec![];
    for &t in types {
        match t {
            // a free background normalisation (with the free shapefactor of the
            // combined case it would absorb the signal: see `combined`)
            "normfactor" => bkg_mods.push(json!({"name": "k_bkg", "type": "normfactor", "data": null})),
            "lumi" => {
                sig_mods.push(json!({"name": "lumi", "type": "lumi", "data": null}));
                bkg_mods.push(json!({"name": "lumi", "type": "lumi", "data": null}));
            }
            "normsys" => bkg_mods.push(json!({"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.88}})),
            "histosys" => bkg_mods.push(json!({"name": "bkg_shape", "type": "histosys", "data": {
                "hi_data": bkg.iter().enumerate().map(|(b, x)| x * (1.0 + 0.05 * (b as f64 + 1.0))).collect::<Vec<_>>(),
                "lo_data": bkg.iter().enumerate().map(|(b, x)| x * (1.0 - 0.04 * (b as f64 + 0.5))).collect::<Vec<_>>()}})),
            "shapesys" => bkg_mods.push(json!({"name": format!("bkg_unc_{name}"), "type": "shapesys",
                "data": bkg.iter().map(|x| 0.1 * x).collect::<Vec<_>>()})),
            "staterror" => {
                sig_mods.push(json!({"name": format!("stat_{name}"), "type": "staterror",
                    "data": s.iter().map(|x| 0.2 * x.sqrt()).collect::<Vec<_>>()}));
                bkg_mods.push(json!({"name": format!("stat_{name}"), "type": "staterror",
                    "data": bkg.iter().map(|x| 0.3 * x.sqrt()).collect::<Vec<_>>()}));
            }
            // small, so that even ×10 (its bound) it cannot absorb the signal
            // (q = 0 is a kink)
            "shapefactor" => samples.push(json!({"name": "bkg_free", "data": (0..nb).map(|b| scale * (0.05 + 0.02 * b as f64)).collect::<Vec<_>>(),
                "modifiers": [{"name": "sf", "type": "shapefactor", "data": null}]})),
            other => panic!("unknown {other}"),
        }
    }
    samples.push(json!({"name": "signal", "data": s, "modifiers": sig_mods}));
    samples.push(json!({"name": "background", "data": bkg, "modifiers": bkg_mods}));
    let obs: Vec<f64> = (0..nb)
        .map(|b| scale * (40.0 - 9.0 * b as f64) + 0.7 * sig_scale * (2.0 + 3.0 * b as f64) + 1.3)
        .collect();
    (json!({"name": name, "samples": samples}), obs)
}

fn workspace(types: &[&str], two_channels: bool) -> Workspace {
    let mut channels = vec![];
    let mut observations = vec![];
    let (c, o) = channel("SR", 3, 1.0, 1.0, types);
    channels.push(c);
    observations.push(json!({"name": "SR", "data": o}));
    if two_channels {
        // a shared shapefactor needs equal bin counts; the CR constrains it
        let nb = if types.contains(&"shapefactor") { 3 } else { 2 };
        // a background-dominated control region
        let (c, o) = channel("CR", nb, 1.7, 0.1, types);
        channels.push(c);
        observations.push(json!({"name": "CR", "data": o}));
    }
    let mut params = vec![json!({"name": "mu", "bounds": [[0.0, 10.0]], "inits": [1.0]})];
    if types.contains(&"lumi") {
        params.push(json!({"name": "lumi", "auxdata": [1.0], "sigmas": [0.05], "bounds": [[0.5, 1.5]], "inits": [1.0]}));
    }
    let ws = json!({
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": params}}],
        "version": "1.0.0"
    });
    Workspace::from_value(&ws).unwrap()
}

fn sel_of(s: &InputSlice) -> InputSel {
    let m = s.modifier.clone().unwrap_or_default();
    match s.kind {
        InputKind::Nominal => InputSel::nominal(&s.channel, &s.sample),
        InputKind::HistoLo => InputSel::histo_lo(&s.channel, &s.sample, &m),
        InputKind::HistoHi => InputSel::histo_hi(&s.channel, &s.sample, &m),
        InputKind::NormLo => InputSel::norm_lo(&s.channel, &s.sample, &m),
        InputKind::NormHi => InputSel::norm_hi(&s.channel, &s.sample, &m),
        InputKind::Uncertainty => InputSel::uncertainty(&s.channel, &s.sample, &m),
        InputKind::TransferMc => InputSel::transfer_mc(&s.channel, &s.sample, &m),
    }
}

/// Every input of the model, plus the observed data of every channel.
fn full_template(ws: &Workspace) -> Template {
    let mut t = Template::from_workspace(ws, &ModelOptions::default()).unwrap();
    let layout = t.model().input_layout().to_vec();
    for s in &layout {
        t = t.with_input(sel_of(s)).unwrap();
    }
    let chans: Vec<String> = t
        .model()
        .channels()
        .iter()
        .map(|(c, _)| c.clone())
        .collect();
    for c in chans {
        t = t.with_input(InputSel::observed(&c)).unwrap();
    }
    t
}

const LOSSES: [LossKind; 8] = [
    LossKind::Cls {
        test_mu: 1.0,
        stat: TestStat::Qmu,
    },
    LossKind::Cls {
        test_mu: 1.0,
        stat: TestStat::QmuTilde,
    },
    LossKind::P0,
    LossKind::Z0,
    LossKind::SigmaMu { hyp_mu: 1.0 },
    LossKind::GeneralisedVariance { hyp_mu: 0.0 },
    LossKind::ObservedTestStat {
        stat: TestStat::QmuTilde,
        test_mu: 1.0,
    },
    LossKind::ObservedTestStat {
        stat: TestStat::Q0,
        test_mu: 0.0,
    },
];

/// Richardson-extrapolated central difference with refits at relative step
/// `rel`.
fn fd_at(loss: &Loss, x: &[f64], i: usize, rel: f64) -> f64 {
    let h = rel * x[i].abs().max(0.1);
    let d = |h: f64| {
        let mut p = x.to_vec();
        let mut m = x.to_vec();
        p[i] += h;
        m[i] -= h;
        (loss.evaluate(&p, false).unwrap().value - loss.evaluate(&m, false).unwrap().value)
            / (2.0 * h)
    };
    (4.0 * d(0.5 * h) - d(h)) / 3.0
}

/// A finite difference and an estimate of its own error. The refitted values
/// carry ~1e-13 of noise (rounding in NLLs of O(30) and the fits' residuals),
/// so small steps are noisy, while large steps may cross a change of the
/// active set: of the steps 1e-2 … 1e-4 (relative) the consecutive pair
/// that agrees best is used, its difference being the error estimate.
fn fd(loss: &Loss, x: &[f64], i: usize) -> (f64, f64) {
    let d: Vec<f64> = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4]
        .iter()
        .map(|&r| fd_at(loss, x, i, r))
        .collect();
    (1..d.len())
        .map(|k| (d[k], (d[k] - d[k - 1]).abs()))
        .fold(
            (d[0], f64::INFINITY),
            |best, c| if c.1 < best.1 { c } else { best },
        )
}

fn check_case(types: &[&str], two_channels: bool) {
    check_losses(types, two_channels, &LOSSES, AsimovSource::Nominal);
}

fn check_losses(types: &[&str], two_channels: bool, losses: &[LossKind], asimov: AsimovSource) {
    check_losses_scaled(types, two_channels, losses, asimov, 1.0);
}

/// As [`check_losses`], with the observed data (the last inputs) scaled by
/// `obs_scale`.
fn check_losses_scaled(
    types: &[&str],
    two_channels: bool,
    losses: &[LossKind],
    asimov: AsimovSource,
    obs_scale: f64,
) {
    let ws = workspace(types, two_channels);
    let template = full_template(&ws);
    let mut x = template.current_values();
    let n_obs: usize = template.model().channels().iter().map(|(_, n)| n).sum();
    let nx = x.len();
    for v in &mut x[nx - n_obs..] {
        *v *= obs_scale;
    }
    for &kind in losses {
        let loss = Loss::new(template.clone(), kind).with_asimov(asimov);
        let fisher = matches!(
            kind,
            LossKind::SigmaMu { .. } | LossKind::GeneralisedVariance { .. }
        );
        if fisher && types.contains(&"shapefactor") && !two_channels {
            // one free factor per bin plus the POI: more parameters than bins
            // constrain, the Fisher information is singular
            assert!(matches!(
                loss.evaluate(&x, true).unwrap_err(),
                Error::InvalidInput(_)
            ));
            continue;
        }
        let v = loss
            .evaluate(&x, true)
            .unwrap_or_else(|e| panic!("{types:?} {kind:?}: {e}"));
        let g = v.grad.unwrap();
        let tight = loss.clone().with_fit_options(FitOptions {
            max_iter: 200,
            gtol: 1e-13,
        });
        let (fds, fd_err): (Vec<f64>, Vec<f64>) = (0..x.len()).map(|i| fd(&tight, &x, i)).unzip();
        let norm = fds.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        if let LossKind::Cls { .. } = kind {
            assert!(v.value < 1.0, "{types:?}: CLs = 1 (q = 0)");
        }
        assert!(
            norm > 0.0,
            "{types:?} {kind:?}: loss {} does not depend on the inputs",
            v.value
        );
        for i in 0..x.len() {
            let err = (g[i] - fds[i]).abs();
            // relative 1e-5 where the entry is not tiny next to the largest
            // one (or within twice the FD's own error estimate, which itself
            // must be below 1e-4 relative)
            let ok = if fds[i].abs() > 1e-2 * norm {
                assert!(
                    fd_err[i] <= 1e-4 * fds[i].abs(),
                    "{types:?} {kind:?} input {i}: FD unreliable ({} ± {})",
                    fds[i],
                    fd_err[i]
                );
                err <= (1e-5 * fds[i].abs()).max(2.0 * fd_err[i])
            } else {
                err <= (1e-7 * norm).max(2.0 * fd_err[i])
            };
            assert!(
                ok,
                "{types:?} 2ch={two_channels} {kind:?} input {i}: grad {} fd {} ± {} (loss {})",
                g[i], fds[i], fd_err[i], v.value
            );
        }
    }
}

#[test]
fn each_modifier_type_one_channel() {
    for t in TYPES {
        check_case(&[t], false);
    }
}

#[test]
fn each_modifier_type_two_channels() {
    for t in TYPES {
        check_case(&[t], true);
    }
}

/// Every modifier type at once. The extra free background normfactor is left
/// out here (the POI's normfactor remains): together with the free
/// shapefactor it lets the background absorb the signal, q = 0 exactly, and
/// the losses sit on their non-differentiable kink.
#[test]
fn all_modifiers_combined() {
    let combined = &TYPES[1..];
    check_case(combined, false);
    check_case(combined, true);
}

/// pyhf-style Asimov data (from the fit to the observed data with the POI
/// fixed): the implicit-function-theorem term for the Asimov parameters'
/// dependence on every input, including the observed data.
#[test]
fn asimov_from_conditional_fit() {
    let losses = [
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::QmuTilde,
        },
        LossKind::P0,
        LossKind::Z0,
    ];
    for t in ["histosys", "normsys", "shapesys", "staterror", "lumi"] {
        check_losses(&[t], false, &losses, AsimovSource::ConditionalFit);
    }
    check_losses(&TYPES[1..], true, &losses, AsimovSource::ConditionalFit);
}

/// Observed CLs as pyhf's `hypotest` (q on data, q_A on the conditional-fit
/// Asimov data): value against `infer::asymptotics::hypotest`, gradient
/// against finite differences, for q and q̃ in models where the observed
/// q̃ lies on either side of q_A.
#[test]
fn observed_cls_matches_hypotest_and_fd() {
    use anagrad::infer::asymptotics::hypotest;
    let (mut above, mut below) = (false, false);
    for (types, two) in [
        (vec!["histosys"], false),
        (vec!["staterror", "normsys"], true),
    ] {
        for stat in [TestStat::Qmu, TestStat::QmuTilde] {
            for (test_mu, scale) in [(1.0, 1.0), (3.0, 1.0), (2.0, 0.8)] {
                let kind = LossKind::ObservedCls { test_mu, stat };
                check_losses_scaled(&types, two, &[kind], AsimovSource::Nominal, scale);
                let ws = workspace(&types, two);
                let t = full_template(&ws);
                let mut x = t.current_values();
                let n_obs: usize = t.model().channels().iter().map(|(_, n)| n).sum();
                let nx = x.len();
                for v in &mut x[nx - n_obs..] {
                    *v *= scale;
                }
                let v = Loss::new(t.clone(), kind)
                    .evaluate(&x, false)
                    .unwrap()
                    .value;
                let inst = t.instantiate(&x).unwrap();
                let r = hypotest(
                    &inst.model,
                    &inst.observed_data(),
                    test_mu,
                    stat,
                    &FitOptions::default(),
                )
                .unwrap();
                assert!(
                    ((v - r.cls_obs) / r.cls_obs).abs() < 1e-8,
                    "{types:?} {stat} mu={test_mu}: {v} vs hypotest {}",
                    r.cls_obs
                );
                if stat == TestStat::QmuTilde {
                    above |= r.qmu > r.qmu_asimov;
                    below |= r.qmu < r.qmu_asimov && r.qmu > 0.0;
                }
            }
        }
    }
    assert!(above && below, "both q̃ branches covered: {above} {below}");
}

#[test]
fn candle_round_trip_matches_host_gradient() {
    let ws = workspace(&["histosys", "staterror"], true);
    let template = Template::from_workspace(&ws, &ModelOptions::default())
        .unwrap()
        .with_input(InputSel::nominal("SR", "signal"))
        .unwrap()
        .with_input(InputSel::histo_hi("SR", "background", "bkg_shape"))
        .unwrap();
    let x = template.current_values();
    let loss = Loss::new(
        template,
        LossKind::Cls {
            test_mu: 1.0,
            stat: TestStat::QmuTilde,
        },
    );
    let host = loss.evaluate(&x, true).unwrap();
    // f32 leaf tensors, scaled by 2 upstream so the chain rule is exercised.
    let dev = Device::Cpu;
    let half: Vec<f32> = x.iter().map(|&v| (v / 2.0) as f32).collect();
    let a = Var::from_slice(&half[..3], 3, &dev).unwrap();
    let b = Var::from_slice(&half[3..], 3, &dev).unwrap();
    let ta = a.as_tensor().affine(2.0, 0.0).unwrap();
    let tb = b.as_tensor().affine(2.0, 0.0).unwrap();
    let out = loss.forward(&[&ta, &tb]).unwrap();
    assert_eq!(out.dtype(), candle_core::DType::F32);
    let val = out.to_scalar::<f32>().unwrap() as f64;
    assert!(((val - host.value) / host.value).abs() < 1e-5);
    let grads = out.backward().unwrap();
    let ga = grads.get(&a).unwrap().to_vec1::<f32>().unwrap();
    let gb = grads.get(&b).unwrap().to_vec1::<f32>().unwrap();
    let hg = host.grad.unwrap();
    let norm = hg.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, g) in ga.iter().chain(&gb).enumerate() {
        // the host values were rounded to f32, so compare at f32 precision
        assert!(
            (*g as f64 - 2.0 * hg[i]).abs() < 1e-3 * 2.0 * norm,
            "{i}: {g} vs {}",
            2.0 * hg[i]
        );
    }
    // f64 inputs reproduce the host numbers exactly
    let t1 = Tensor::new(&x[..3], &dev).unwrap();
    let t2 = Tensor::new(&x[3..], &dev).unwrap();
    let out = loss.forward(&[&t1, &t2]).unwrap();
    assert_eq!(out.to_scalar::<f64>().unwrap(), host.value);
}

#[test]
fn fit_failure_surfaces_as_error() {
    let ws = workspace(&["histosys", "normsys"], false);
    let template = Template::from_workspace(&ws, &ModelOptions::default())
        .unwrap()
        .with_input(InputSel::nominal("SR", "signal"))
        .unwrap();
    let x = template.current_values();
    // One Newton iteration cannot reach a projected gradient of 1e-10.
    let loss = Loss::new(
        template,
        LossKind::ObservedTestStat {
            stat: TestStat::QmuTilde,
            test_mu: 1.0,
        },
    )
    .with_fit_options(FitOptions {
        max_iter: 1,
        gtol: 1e-10,
    });
    let t = Var::from_slice(&x, x.len(), &Device::Cpu).unwrap();
    let err = loss.forward(&[t.as_tensor()]).unwrap_err();
    assert!(matches!(err, Error::FitFailed { .. }), "{err}");
    assert!(matches!(
        loss.evaluate(&x, true).unwrap_err(),
        Error::FitFailed { .. }
    ));
}

#[test]
fn bad_inputs_are_errors() {
    let ws = workspace(&["histosys"], false);
    let template = Template::from_workspace(&ws, &ModelOptions::default()).unwrap();
    assert!(template
        .clone()
        .with_input(InputSel::nominal("SR", "nope"))
        .is_err());
    assert!(template
        .clone()
        .with_input(InputSel::observed("XX"))
        .is_err());
    let t = template
        .with_input(InputSel::nominal("SR", "background"))
        .unwrap();
    assert!(t
        .clone()
        .with_input(InputSel::nominal("SR", "background"))
        .is_err());
    let cls = LossKind::Cls {
        test_mu: 1.0,
        stat: TestStat::Qmu,
    };
    let loss = Loss::new(t.clone(), cls);
    // wrong length
    assert!(loss.evaluate(&[1.0, 2.0], false).is_err());
    // an empty background bin: the background-only expectation is 0 there
    assert!(matches!(
        loss.evaluate(&[0.0, 31.0, 22.0], false).unwrap_err(),
        Error::InvalidInput(_)
    ));
    // ... which the neos floor makes usable
    let floored = Loss::new(t.with_floor(anagrad::grad::YieldFloor::NEOS), cls);
    assert!(floored.evaluate(&[0.0, 31.0, 22.0], true).is_ok());
    // negative yields and non-finite values are errors
    assert!(loss.evaluate(&[-40.0, 31.0, 22.0], false).is_err());
    assert!(loss.evaluate(&[f64::NAN, 31.0, 22.0], false).is_err());
    let dev = Device::Cpu;
    let wrong = Tensor::new(&[1.0f64, 2.0], &dev).unwrap();
    assert!(loss.forward(&[&wrong]).is_err());
}
