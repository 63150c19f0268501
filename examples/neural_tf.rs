//! Neural vs polynomial transfer function on a blinded signal window
//! (issue 11, item 4): over pseudo-datasets of a binned pass/fail toy, the
//! pass-region background predicted in the blinded window by
//!
//! * a Bernstein transfer factor (linear form, 2DAlphabet's choice) of
//!   orders (2, 1) and (4, 1), and
//! * the neural transfer function (`anagrad::nn::transfer`: an MLP shape
//!   times a free normalisation, trained by maximum profile likelihood with
//!   early stopping on thinned data, an ensemble for its uncertainty),
//!
//! compared with the observed window counts (pull `(obs − pred) /
//! sqrt(pred + σ_pred²)`) and with the true expectation (relative bias).
//!
//! The toy is `toys::passfail::PassFailToy` on a 16 × 4 grid (x = 40–200
//! GeV, y = 450–1200 GeV; falling QCD, a W/Z-like background at 90 GeV with
//! a normsys): with `Tagger::polynomial()` the QCD pass/fail ratio is a
//! Bernstein (2, 1) polynomial, with `Tagger::non_polynomial()` it doubles
//! across a logistic step of width 4 GeV at `--step-x0` (default 110 GeV,
//! the window's lower edge). Data are background-only Poisson draws; every
//! fit has the POI fixed at 0 and the pass window (x in [110, 140] GeV, all
//! y) blinded. The QCD nominal is 2DAlphabet's fail data minus the other
//! background (times the overall pass/fail ratio in the pass region).
//!
//! Run: `cargo run --release --example neural_tf -- --toys 50` (default: 8
//! toys per variant); `--help` lists the options. Writes
//! `runs/neural_tf/results.json` and prints the table.

use std::time::Instant;

use anagrad::hf::Model;
use anagrad::hf::{ModelOptions, Workspace};
use anagrad::infer::fit::{fixed_poi_fit, FitOptions, FitSetup};
use anagrad::infer::Likelihood;
use anagrad::nn::transfer::{NeuralTfConfig, NeuralTransfer, PassPrediction};
use anagrad::toys::passfail::{Grid, PassFailToy, Tagger};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};
use rayon::prelude::*;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
struct Args {
    /// Pseudo-datasets per variant.
    #[arg(long, default_value_t = 8)]
    toys: usize,
    /// Ensemble members of the neural TF.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Variants: polynomial, non-polynomial or both.
    #[arg(long, default_value = "both")]
    variant: String,
    /// Position of the non-polynomial tagger's step in x (GeV).
    #[arg(long, default_value_t = 110.0)]
    step_x0: f64,
    /// Expected QCD events over the grid.
    #[arg(long, default_value_t = 200_000.0)]
    n_qcd: f64,
    /// Adam learning rate of the neural TF.
    #[arg(long, default_value_t = 0.005)]
    lr: f64,
    /// Maximum Adam steps.
    #[arg(long, default_value_t = 600)]
    max_epochs: usize,
    /// Early-stopping patience (steps).
    #[arg(long, default_value_t = 60)]
    patience: usize,
    /// Hidden-layer widths, comma-separated.
    #[arg(long, default_value = "16,16")]
    hidden: String,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder.
    #[arg(long, default_value = "runs/neural_tf")]
    out: String,
}

const NX: usize = 16;
const NY: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Polynomial,
    NonPolynomial { x0: f64 },
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Polynomial => "polynomial".into(),
            Variant::NonPolynomial { x0 } => format!("non-polynomial (step at {x0} GeV)"),
        }
    }

    fn toy(self, n_qcd: f64) -> PassFailToy {
        let tagger = match self {
            Variant::Polynomial => Tagger::polynomial(),
            Variant::NonPolynomial { x0 } => match Tagger::non_polynomial() {
                Tagger::NonPolynomial {
                    base,
                    step,
                    width,
                    y_slope,
                    ..
                } => Tagger::NonPolynomial {
                    base,
                    step,
                    x0,
                    width,
                    y_slope,
                },
                t => t,
            },
        };
        let mut toy = PassFailToy::new(NX, NY, tagger);
        toy.n_qcd = n_qcd;
        toy
    }
}

/// Bin index of cell `(ix, iy)` (x-major).
fn bin(ix: usize, iy: usize) -> usize {
    ix * NY + iy
}

/// Expected yields per region: (qcd, other, signal), each `[fail, pass]` per
/// bin (x-major), and the toy.
struct Expected {
    toy: PassFailToy,
    qcd: [Vec<f64>; 2],
    other: [Vec<f64>; 2],
    signal: [Vec<f64>; 2],
}

fn flat(g: &Grid) -> Vec<f64> {
    g.iter().flatten().copied().collect()
}

fn expected(v: Variant, n_qcd: f64) -> anagrad::Result<Expected> {
    let toy = v.toy(n_qcd);
    let e = toy.expected()?;
    Ok(Expected {
        qcd: [flat(&e.qcd.fail), flat(&e.qcd.pass)],
        other: [flat(&e.other.fail), flat(&e.other.pass)],
        signal: [flat(&e.signal.fail), flat(&e.signal.pass)],
        toy,
    })
}

/// The blinded signal window: x in [110, 140] GeV, every y.
fn window() -> Vec<usize> {
    (7..10)
        .flat_map(|ix| (0..NY).map(move |iy| bin(ix, iy)))
        .collect()
}

/// A pass/fail workspace for observed data `obs` ([fail, pass]) with the pass
/// QCD carrying `tf` (a transferfactor JSON).
fn workspace(e: &Expected, obs: &[Vec<f64>; 2], tf: Value) -> anagrad::Result<Workspace> {
    let nb = NX * NY;
    // 2DAlphabet's nominal: fail data minus the other backgrounds; the pass
    // nominal carries the overall pass/fail ratio so that the TF is O(1).
    let n0: Vec<f64> = (0..nb)
        .map(|b| (obs[0][b] - e.other[0][b]).max(1.0))
        .collect();
    let r0 = obs[1].iter().sum::<f64>() / obs[0].iter().sum::<f64>();
    let n0_pass: Vec<f64> = n0.iter().map(|x| x * r0).collect();
    let t = &e.toy;
    let (xc, yc) = (t.x_centres(), t.y_centres());
    let bins: Vec<Value> = xc
        .iter()
        .flat_map(|x| yc.iter().map(move |y| json!([x, y])))
        .collect();
    let range = |e: &[f64]| json!([e[0], e[e.len() - 1]]);
    let coords = json!({"axes": ["x", "y"], "bins": bins,
        "ranges": [range(&t.x_edges), range(&t.y_edges)]});
    let sf = json!({"name": "qcd_fail", "type": "shapefactor", "data": null});
    let mu = json!({"name": "mu", "type": "normfactor", "data": null});
    let other_norm =
        json!({"name": "other_norm", "type": "normsys", "data": {"lo": 0.9, "hi": 1.1}});
    Workspace::from_value(&json!({
        "channels": [
            {"name": "fail", "coordinates": coords, "samples": [
                {"name": "qcd", "data": n0, "modifiers": [sf]},
                {"name": "other", "data": e.other[0], "modifiers": [other_norm]},
                {"name": "signal", "data": e.signal[0], "modifiers": [mu]}
            ]},
            {"name": "pass", "coordinates": coords, "blinded": window(), "samples": [
                {"name": "qcd", "data": n0_pass, "modifiers": [sf, tf]},
                {"name": "other", "data": e.other[1], "modifiers": [other_norm]},
                {"name": "signal", "data": e.signal[1], "modifiers": [mu]}
            ]}
        ],
        "observations": [{"name": "fail", "data": obs[0]}, {"name": "pass", "data": obs[1]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    }))
}

/// One method's window estimate on one toy.
#[derive(Clone, Copy, Debug, Default)]
struct Est {
    pred: f64,
    sigma: f64,
    sigma_ens: f64,
}

fn bernstein(e: &Expected, obs: &[Vec<f64>; 2], order: [usize; 2]) -> anagrad::Result<Est> {
    let ws = workspace(
        e,
        obs,
        json!({"name": "tf", "type": "transferfactor", "data": {"basis": "bernstein", "order": order}}),
    )?;
    let model = Model::new(&ws, &ModelOptions::default())?;
    let data = model.observed_data();
    let fit = fixed_poi_fit(
        &model,
        &data,
        0.0,
        &FitSetup::from_model(&model),
        None,
        &FitOptions::default(),
    )?;
    let p = PassPrediction::from_fit(&model, &fit, "pass")?;
    let (pred, sigma) = p.window(&window())?;
    Ok(Est {
        pred,
        sigma,
        sigma_ens: 0.0,
    })
}

fn neural(
    e: &Expected,
    obs: &[Vec<f64>; 2],
    config: &NeuralTfConfig,
    seed: u64,
) -> anagrad::Result<(Est, Vec<usize>)> {
    let ws = workspace(
        e,
        obs,
        json!({"name": "tf", "type": "transferfactor", "data": {"basis": "polynomial", "order": [0, 0], "form": "exp"}}),
    )?;
    let nt = NeuralTransfer::new(&ws, "pass", "qcd", "tf", &ModelOptions::default())?;
    let fit = nt.fit(config, &mut StdRng::seed_from_u64(seed))?;
    if std::env::var_os("NEURAL_TF_TRACE").is_some() {
        for (k, m) in fit.members.iter().enumerate() {
            let r = &m.report;
            let base = r.val_nll.first().copied().unwrap_or(0.0);
            let tb = r.train_nll[0];
            let pts: Vec<String> = (0..r.val_nll.len())
                .step_by(5)
                .map(|e| format!("{e}:{:.1}/{:.1}", r.train_nll[e] - tb, r.val_nll[e] - base))
                .collect();
            eprintln!(
                "seed {seed} member {k} best {} | {}",
                r.best_epoch,
                pts.join(" ")
            );
        }
    }
    let w = fit.window(&window())?;
    Ok((
        Est {
            pred: w.prediction,
            sigma: w.sigma,
            sigma_ens: w.sigma_ensemble,
        },
        fit.members.iter().map(|m| m.report.best_epoch).collect(),
    ))
}

struct Toy {
    obs: f64,
    truth: f64,
    est: Vec<anagrad::Result<Est>>,
    epochs: Vec<usize>,
}

const METHODS: [&str; 3] = ["Bernstein (2, 1)", "Bernstein (4, 1)", "neural"];

fn run_toy(v: Variant, args: &Args, config: &NeuralTfConfig, i: usize) -> anagrad::Result<Toy> {
    let e = expected(v, args.n_qcd)?;
    let seed = args.seed * 1_000_003 + i as u64 * 7919 + matches!(v, Variant::Polynomial) as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |x: f64| -> anagrad::Result<f64> {
        Ok(Poisson::new(x)
            .map_err(|er| anagrad::Error::InvalidInput(format!("poisson({x}): {er}")))?
            .sample(&mut rng))
    };
    let mut obs = [Vec::new(), Vec::new()];
    for (r, o) in obs.iter_mut().enumerate() {
        for b in 0..NX * NY {
            o.push(draw(e.qcd[r][b] + e.other[r][b])?);
        }
    }
    let win = window();
    let obs_w: f64 = win.iter().map(|&b| obs[1][b]).sum();
    let truth: f64 = win.iter().map(|&b| e.qcd[1][b] + e.other[1][b]).sum();
    let mut est = vec![bernstein(&e, &obs, [2, 1]), bernstein(&e, &obs, [4, 1])];
    let (n, epochs) = match neural(&e, &obs, config, seed ^ 0x5eed) {
        Ok((n, ep)) => (Ok(n), ep),
        Err(er) => (Err(er), vec![]),
    };
    est.push(n);
    Ok(Toy {
        obs: obs_w,
        truth,
        est,
        epochs,
    })
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    (m, s)
}

fn main() -> anagrad::Result<()> {
    let args = Args::parse();
    let variants: Vec<Variant> = match args.variant.as_str() {
        "polynomial" => vec![Variant::Polynomial],
        "non-polynomial" => vec![Variant::NonPolynomial { x0: args.step_x0 }],
        "both" => vec![
            Variant::NonPolynomial { x0: args.step_x0 },
            Variant::Polynomial,
        ],
        other => {
            return Err(anagrad::Error::InvalidInput(format!(
                "--variant: polynomial, non-polynomial or both, not '{other}'"
            )))
        }
    };
    let config = NeuralTfConfig {
        members: args.members,
        poi: Some(0.0),
        learning_rate: args.lr,
        max_epochs: args.max_epochs,
        patience: args.patience,
        hidden: args
            .hidden
            .split(',')
            .map(|h| {
                h.trim().parse().map_err(|_| {
                    anagrad::Error::InvalidInput(format!("--hidden: '{h}' is not a width"))
                })
            })
            .collect::<anagrad::Result<_>>()?,
        ..NeuralTfConfig::default()
    };
    std::fs::create_dir_all(&args.out).map_err(|e| anagrad::Error::Io {
        path: args.out.clone(),
        source: e,
    })?;
    let mut out = Vec::new();
    println!(
        "| variant | TF | fits ok | pull mean ± err | pull width | rel. bias of pred. (mean ± err) | mean σ_pred/pred |"
    );
    println!("|---|---|---|---|---|---|---|");
    for v in variants {
        let t0 = Instant::now();
        let toys: Vec<anagrad::Result<Toy>> = (0..args.toys)
            .into_par_iter()
            .map(|i| run_toy(v, &args, &config, i))
            .collect();
        let secs = t0.elapsed().as_secs_f64();
        let toys: Vec<Toy> = toys.into_iter().collect::<anagrad::Result<_>>()?;
        let mut rows = Vec::new();
        for (m, name) in METHODS.iter().enumerate() {
            let ok: Vec<(&Toy, Est)> = toys
                .iter()
                .filter_map(|t| t.est[m].as_ref().ok().map(|e| (t, *e)))
                .collect();
            for t in &toys {
                if let Err(e) = &t.est[m] {
                    eprintln!("{} / {name}: {e}", v.name());
                }
            }
            let pulls: Vec<f64> = ok
                .iter()
                .map(|(t, e)| (t.obs - e.pred) / (e.pred + e.sigma * e.sigma).sqrt())
                .collect();
            let bias: Vec<f64> = ok.iter().map(|(t, e)| e.pred / t.truth - 1.0).collect();
            let rel_sigma: Vec<f64> = ok.iter().map(|(_, e)| e.sigma / e.pred).collect();
            let rel_ens: Vec<f64> = ok.iter().map(|(_, e)| e.sigma_ens / e.pred).collect();
            let (pm, ps) = mean_sd(&pulls);
            let (bm, bs) = mean_sd(&bias);
            let n = ok.len() as f64;
            println!(
                "| {} | {name} | {}/{} | {pm:+.3} ± {:.3} | {ps:.3} | {:+.2} % ± {:.2} % | {:.2} % |",
                v.name(),
                ok.len(),
                toys.len(),
                ps / n.sqrt(),
                100.0 * bm,
                100.0 * bs / n.sqrt(),
                100.0 * mean_sd(&rel_sigma).0,
            );
            rows.push(json!({
                "method": name, "fits_ok": ok.len(), "pull_mean": pm, "pull_width": ps,
                "pull_mean_err": ps / n.sqrt(), "rel_bias_mean": bm, "rel_bias_sd": bs,
                "rel_sigma_mean": mean_sd(&rel_sigma).0, "rel_sigma_ensemble_mean": mean_sd(&rel_ens).0,
                "pulls": pulls, "rel_bias": bias,
            }));
        }
        let epochs: Vec<f64> = toys
            .iter()
            .flat_map(|t| t.epochs.iter().map(|&e| e as f64))
            .collect();
        let (em, es) = mean_sd(&epochs);
        eprintln!(
            "{}: {} toys in {secs:.1} s; neural TF early-stopped at epoch {em:.0} ± {es:.0}; \
             window truth {:.1}",
            v.name(),
            toys.len(),
            toys.first().map_or(0.0, |t| t.truth)
        );
        out.push(json!({
            "variant": v.name(), "toys": toys.len(), "seconds": secs, "methods": rows,
            "best_epochs": epochs, "window_truth": toys.first().map(|t| t.truth),
            "window_obs": toys.iter().map(|t| t.obs).collect::<Vec<_>>(),
        }));
    }
    let path = format!("{}/results.json", args.out);
    let body = serde_json::to_string_pretty(&json!({
        "toys": args.toys, "members": args.members, "step_x0": args.step_x0,
        "n_qcd": args.n_qcd, "seed": args.seed, "neural_config": format!("{config:?}"),
        "variants": out,
    }))
    .map_err(|e| anagrad::Error::Json {
        context: path.clone(),
        source: e,
    })?;
    std::fs::write(&path, body).map_err(|e| anagrad::Error::Io {
        path: path.clone(),
        source: e,
    })?;
    println!("\nresults: {path}");
    Ok(())
}
