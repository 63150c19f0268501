//! Significance with the background estimate in the loop (issue 11, item 5):
//! a tagger threshold and a small tagger network trained on the expected
//! significance Z_A = √q0 of the *full* pass/fail analysis (free per-bin fail
//! yields, exp-form Bernstein transfer factor profiled, signal strength μ),
//! with exact gradients through the fits, compared with the classic choices
//! on held-out test events.
//!
//! (a) Threshold on the tagger logit (feature 0): trained on Z_A − Z_spur
//!     (soft cut σ((f − c)/0.2) during training) vs the threshold maximising
//!     s/√b in the pass-region signal window (|x − 125| ≤ 16, summed over y),
//!     both from the exact expected yields of the toy and from the training
//!     events, vs a grid scan of the hard-cut Z_A − Z_spur on the training
//!     events. Each is evaluated on the test events and on the exact
//!     expected yields (infinitely many test events).
//! (b) An MLP over the three features (3→16→16→1, tanh) trained with BCE vs
//!     the same network fine-tuned on Z_A − Z_spur − λ Z_spur² (pass weight
//!     σ(z/0.3)), starting from the BCE weights at the BCE network's own
//!     best threshold (`--init scratch`: from the same random
//!     initialisation as the BCE network instead); each evaluated at z ≥ 0 (the trained
//!     network only) and at its own best hard-cut threshold from a scan of
//!     the same figure of merit on the training events (and, for BCE, at the
//!     threshold of maximal s/√b on the training events).
//!
//! Every test number is on the test events (another seed) with hard cuts:
//! Z_A on the Asimov data set of the truth (QCD + signal), the spurious
//! significance Z_spur (signed √q0 on the QCD-only truth: what the background
//! model's mis-modelling, or the test sample's Monte-Carlo noise, alone fakes;
//! negative for a deficit), their difference, and s/√b in the window.
//!
//! Objective: `za-spur` (default) as above; `za` trains on Z_A alone, which
//! rewards selections that sculpt QCD into a peak the low-order TF cannot
//! follow (a fake signal: Z_spur grows with Z_A); see
//! papers/transfer/significance.md.
//!
//! Run: `cargo run --release --example transfer_significance -- [--seeds 1,2,3]
//! [--variants smooth,nonpoly] [--objective za|za-spur] [--penalty 0.5]
//! [--init bce|scratch] [--quick]`.

use std::time::Instant;

use anagrad::grad::{bce, BceScores};
use anagrad::nn::{Activation, Mlp, MlpConfig, Output};
use anagrad::ops::cut::{hard_cut, soft_cut, Keep};
use anagrad::toys::tagger::{
    Binned, Events, Grid, Hists, PassFail, TaggerToy, Variant, N_FEATURES, SIGNAL_MASS,
};
use anagrad::train::adam::{Adam, AdamParams};
use anagrad::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const ADAM: AdamParams = AdamParams {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
};
/// Soft-cut width in logit units (threshold training).
const CUT_WIDTH: f64 = 0.2;
/// Soft-cut width on the network output.
const NET_WIDTH: f64 = 0.3;
/// Fewest QCD MC events a threshold must leave in the pass-region window.
const MIN_MC: usize = 100;
/// Signal window half-width: ±2σ of the signal mass.
const WINDOW: f64 = 2.0 * SIGNAL_MASS.1;
/// Largest fraction of the QCD events a scanned threshold may pass.
const MAX_PASS_FRACTION: f64 = 0.1;
/// Smallest fraction of a bin's QCD that must stay in the fail region for
/// the bin to be kept in a hard-cut evaluation.
const MIN_FAIL_FRACTION: f64 = 0.05;
/// Learning rate of the network trained on the significance.
const NET_LR: f64 = 1e-2;
/// Failed objective evaluations after which the network training stops.
const MAX_FAILURES: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Objective {
    /// Z_A on the truth Asimov data.
    Za,
    /// Z_A − Z_spur (− λ Z_spur² for the network).
    ZaSpur,
}

#[derive(Debug, Clone)]
struct Opts {
    seeds: Vec<u64>,
    variants: Vec<Variant>,
    objective: Objective,
    penalty: f64,
    /// Start the objective network from the BCE network (else from the
    /// same random initialisation).
    init_from_bce: bool,
    n_qcd: usize,
    n_sig: usize,
    n_test_qcd: usize,
    n_test_sig: usize,
    cut_steps: usize,
    bce_steps: usize,
    net_steps: usize,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        seeds: vec![1, 2, 3],
        variants: vec![Variant::Smooth, Variant::NonPolynomial],
        objective: Objective::ZaSpur,
        penalty: 0.5,
        init_from_bce: true,
        n_qcd: 300_000,
        n_sig: 30_000,
        n_test_qcd: 1_000_000,
        n_test_sig: 100_000,
        cut_steps: 60,
        bce_steps: 1500,
        net_steps: 100,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let bad = |m: String| Error::InvalidInput(m);
    while i < args.len() {
        let val = |i: usize| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| bad(format!("{} needs a value", args[i])))
        };
        match args[i].as_str() {
            "--seeds" => {
                o.seeds = val(i)?
                    .split(',')
                    .map(|s| s.parse().map_err(|_| bad(format!("bad seed '{s}'"))))
                    .collect::<Result<_>>()?;
                i += 1;
            }
            "--variants" => {
                o.variants = val(i)?
                    .split(',')
                    .map(Variant::parse)
                    .collect::<Result<_>>()?;
                i += 1;
            }
            "--objective" => {
                o.objective = match val(i)?.as_str() {
                    "za" => Objective::Za,
                    "za-spur" => Objective::ZaSpur,
                    s => return Err(bad(format!("unknown objective '{s}' (za, za-spur)"))),
                };
                i += 1;
            }
            "--penalty" => {
                let v = val(i)?;
                o.penalty = v
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| bad(format!("bad penalty '{v}' (a number >= 0)")))?;
                i += 1;
            }
            "--init" => {
                o.init_from_bce = match val(i)?.as_str() {
                    "bce" => true,
                    "scratch" => false,
                    s => return Err(bad(format!("unknown init '{s}' (bce, scratch)"))),
                };
                i += 1;
            }
            "--quick" => {
                o.n_qcd = 100_000;
                o.n_sig = 10_000;
                o.n_test_qcd = 300_000;
                o.n_test_sig = 30_000;
                o.cut_steps = 30;
                o.bce_steps = 400;
                o.net_steps = 40;
            }
            s => return Err(bad(format!("unknown argument '{s}'"))),
        }
        i += 1;
    }
    if o.seeds.is_empty() || o.variants.is_empty() {
        return Err(bad("need at least one seed and one variant".into()));
    }
    Ok(o)
}

/// One sample's events on the device: binned, with feature tensors.
struct Sample {
    ev: Events,
    binned: Binned,
    /// Tagger logit (feature 0).
    logit: Tensor,
    /// Standardised features, `(n, 3)`.
    feats: Tensor,
    in_window: Vec<bool>,
}

impl Sample {
    fn new(ev: Events, grid: &Grid, norm: &[(f64, f64)], dev: &Device) -> Result<Self> {
        let binned = Binned::new(&ev, grid, dev)?;
        let logit = Tensor::new(ev.column(0), dev)?;
        let std: Vec<f64> = ev
            .features
            .chunks(N_FEATURES)
            .flat_map(|r| r.iter().zip(norm).map(|(v, (m, s))| (v - m) / s))
            .collect();
        let feats = Tensor::from_vec(std, (ev.len(), N_FEATURES), dev)?;
        let in_window =
            ev.x.iter()
                .map(|x| (x - SIGNAL_MASS.0).abs() <= WINDOW)
                .collect();
        Ok(Sample {
            ev,
            binned,
            logit,
            feats,
            in_window,
        })
    }
}

/// Mean and standard deviation of each feature over both samples.
fn feature_norm(a: &Events, b: &Events) -> Vec<(f64, f64)> {
    (0..N_FEATURES)
        .map(|j| {
            let v: Vec<f64> = a.column(j).into_iter().chain(b.column(j)).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (m, s.max(1e-12))
        })
        .collect()
}

struct Data {
    qcd: Sample,
    sig: Sample,
}

/// Evaluation of one method: hard cut at `c` on the test events, and (for
/// thresholds on the tagger logit) on the exact expected yields.
#[derive(Debug, Clone, Copy)]
struct Eval {
    c: f64,
    za: f64,
    spur: f64,
    ssb: f64,
    /// Z_A and Z_spur on the exact expected yields (NaN for networks).
    za_exact: f64,
    spur_exact: f64,
}

fn ssb(d: &Data, sq: &[f64], ss: &[f64], c: f64) -> f64 {
    let sum = |s: &Sample, scores: &[f64]| -> f64 {
        scores
            .iter()
            .zip(&s.in_window)
            .filter(|(v, w)| **w && **v >= c)
            .count() as f64
            * s.ev.weight
    };
    let (s, b) = (sum(&d.sig, ss), sum(&d.qcd, sq));
    if b > 0.0 {
        s / b.sqrt()
    } else {
        0.0
    }
}

fn hard_hists(d: &Data, sq: &Tensor, ss: &Tensor, c: f64) -> Result<Hists> {
    let pq = hard_cut(sq, c, Keep::Above)?;
    let ps = hard_cut(ss, c, Keep::Above)?;
    Hists::new(&d.qcd.binned, &pq, &d.sig.binned, &ps)
}

/// The signed significance of `h` with `mu` × signal in the Asimov data, NaN
/// (with a message) where a fit fails.
fn z_or_nan(a: &PassFail, h: &Hists, mu: f64, what: &str) -> f64 {
    match a.significance_value(h, mu) {
        Ok(z) => z,
        Err(e) => {
            eprintln!("  {what}, signal x {mu}: {e}");
            f64::NAN
        }
    }
}

/// The analysis for the hard-cut histograms `h`: `a` itself, or `a` on the
/// bins that keep at least `MIN_FAIL_FRACTION` of their QCD in the fail
/// region (a selection that passes (nearly) all QCD of a bin leaves no
/// fail-region events there to predict its pass region from).
fn analysis_for(a: &PassFail, h: &Hists) -> Result<PassFail> {
    let kept = h.populated_bins(MIN_FAIL_FRACTION)?;
    if kept.len() == a.bins().len() {
        return Ok(a.clone());
    }
    eprintln!(
        "  dropping {} of {} bins (fail-region QCD below {MIN_FAIL_FRACTION} of the bin's QCD)",
        a.bins().len() - kept.len(),
        a.bins().len()
    );
    PassFail::with_bins(a.grid().clone(), a.order(), kept)
}

fn evaluate(a: &PassFail, d: &Data, sq: &Tensor, ss: &Tensor, c: f64) -> Result<Eval> {
    let h = hard_hists(d, sq, ss, c)?;
    let (vq, vs): (Vec<f64>, Vec<f64>) = (sq.to_vec1()?, ss.to_vec1()?);
    let what = format!("evaluation at c = {c:.3}");
    let (za, spur) = match analysis_for(a, &h) {
        Ok(a) => (z_or_nan(&a, &h, 1.0, &what), z_or_nan(&a, &h, 0.0, &what)),
        Err(e) => {
            eprintln!("  {what}: {e}");
            (f64::NAN, f64::NAN)
        }
    };
    Ok(Eval {
        c,
        za,
        spur,
        ssb: ssb(d, &vq, &vs, c),
        za_exact: f64::NAN,
        spur_exact: f64::NAN,
    })
}

/// [`evaluate`] of the threshold `c` on the tagger logit, plus the same on
/// the toy's exact expected yields.
fn evaluate_cut(a: &PassFail, toy: &TaggerToy, d: &Data, c: f64) -> Result<Eval> {
    let mut e = evaluate(a, d, &d.qcd.logit, &d.sig.logit, c)?;
    let h = toy.expected(a.grid(), c)?.hists(&Device::Cpu)?;
    let what = format!("exact evaluation at c = {c:.3}");
    e.za_exact = z_or_nan(a, &h, 1.0, &what);
    e.spur_exact = z_or_nan(a, &h, 0.0, &what);
    Ok(e)
}

/// Which Monte-Carlo floor a threshold scan applies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Floor {
    /// At least `MIN_MC` QCD MC events in the pass-region signal window
    /// (s/√b scans: s/√b grows without bound as the window empties, so
    /// tighter cuts would be chosen on MC noise).
    Window,
    /// At least `MIN_MC` QCD MC events in the pass region and at most
    /// `MAX_PASS_FRACTION` of them (significance scans: the pass region must
    /// hold enough events to define the analysis, and it is the tagged
    /// minority that the fail region predicts).
    Regions,
}

/// Candidate thresholds: `n` percentiles (2nd..98th) of the signal scores
/// that pass the Monte-Carlo `floor`.
fn candidates(d: &Data, sq: &[f64], ss: &[f64], n: usize, floor: Floor) -> Vec<f64> {
    let mut v = ss.to_vec();
    v.sort_by(f64::total_cmp);
    let mut qcd: Vec<f64> = match floor {
        Floor::Window => sq
            .iter()
            .zip(&d.qcd.in_window)
            .filter(|(_, w)| **w)
            .map(|(s, _)| *s)
            .collect(),
        Floor::Regions => sq.to_vec(),
    };
    qcd.sort_by(f64::total_cmp);
    let (c_min, c_max) = if qcd.len() > 2 * MIN_MC {
        let k = ((1.0 - MAX_PASS_FRACTION) * qcd.len() as f64) as usize;
        (qcd[k.min(qcd.len() - 1)], qcd[qcd.len() - MIN_MC])
    } else {
        (f64::INFINITY, f64::NEG_INFINITY)
    };
    let c_min = if floor == Floor::Window {
        f64::NEG_INFINITY
    } else {
        c_min
    };
    (0..n)
        .map(|i| {
            let q = 0.02 + 0.96 * i as f64 / (n - 1) as f64;
            v[((v.len() - 1) as f64 * q) as usize]
        })
        .filter(|&c| c > c_min && c <= c_max)
        .collect()
}

fn best_ssb(d: &Data, sq: &Tensor, ss: &Tensor) -> Result<f64> {
    let (vq, vs): (Vec<f64>, Vec<f64>) = (sq.to_vec1()?, ss.to_vec1()?);
    let mut best = (f64::NEG_INFINITY, 0.0);
    for c in candidates(d, &vq, &vs, 97, Floor::Window) {
        let r = ssb(d, &vq, &vs, c);
        if r > best.0 {
            best = (r, c);
        }
    }
    Ok(best.1)
}

/// The threshold on the tagger logit that maximises the exact expected
/// s/√b in the window: a grid of step 0.005 on [−2, 8] (the best any
/// s/√b choice can do, free of Monte-Carlo noise).
fn best_ssb_exact(toy: &TaggerToy) -> Result<f64> {
    let mut best = (f64::NEG_INFINITY, 0.0);
    for i in 0..=2000 {
        let c = -2.0 + 0.005 * i as f64;
        let (s, b) = toy.expected_window(c, WINDOW)?;
        let r = s / b.sqrt();
        if r > best.0 {
            best = (r, c);
        }
    }
    Ok(best.1)
}

/// The hard-cut threshold that maximises the figure of merit of `obj`
/// (Z_A, or Z_A − Z_spur − λ Z_spur²) on the events `d`; thresholds whose
/// fits fail are skipped (and counted).
fn best_fom(
    a: &PassFail,
    d: &Data,
    sq: &Tensor,
    ss: &Tensor,
    obj: Objective,
    penalty: f64,
) -> Result<f64> {
    let (vq, vs): (Vec<f64>, Vec<f64>) = (sq.to_vec1()?, ss.to_vec1()?);
    let mut best = (f64::NEG_INFINITY, 0.0);
    let mut failed = Vec::new();
    let cands = candidates(d, &vq, &vs, 49, Floor::Regions);
    for &c in &cands {
        let h = hard_hists(d, sq, ss, c)?;
        let fom = analysis_for(a, &h).and_then(|a| match obj {
            Objective::Za => a.significance_value(&h, 1.0),
            Objective::ZaSpur => a.objective(&h, penalty).and_then(|(t, _, _)| scalar(&t)),
        });
        match fom {
            Ok(z) if z > best.0 => best = (z, c),
            Ok(_) => {}
            Err(e) => failed.push(format!("{c:.2} ({e})")),
        }
    }
    if !failed.is_empty() {
        eprintln!(
            "  scan: {} of {} thresholds skipped (fit failed), e.g. {}",
            failed.len(),
            cands.len(),
            failed[0]
        );
    }
    // NaN when no threshold could be evaluated
    Ok(if best.0.is_finite() { best.1 } else { f64::NAN })
}

/// The training objective on soft histograms: `(objective, Z_A, Z_spur)`.
fn objective(a: &PassFail, h: &Hists, obj: Objective, penalty: f64) -> Result<(Tensor, f64, f64)> {
    match obj {
        Objective::Za => {
            let z = a.significance(h, 1.0)?;
            let v = scalar(&z)?;
            Ok((z, v, f64::NAN))
        }
        Objective::ZaSpur => a.objective(h, penalty),
    }
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn train_cut(a: &PassFail, d: &Data, steps: usize, obj: Objective) -> Result<(f64, f64, f64)> {
    let dev = Device::Cpu;
    let c = Var::new(0.0f64, &dev)?;
    let slope = Tensor::new(1.0 / CUT_WIDTH, &dev)?;
    let mut adam = Adam::new(vec![(c.clone(), 0.1)], ADAM)?;
    let (mut first, mut last) = (None, 0.0);
    for step in 0..steps {
        let pq = soft_cut(&d.qcd.logit, c.as_tensor(), &slope, Keep::Above)?;
        let ps = soft_cut(&d.sig.logit, c.as_tensor(), &slope, Keep::Above)?;
        let h = Hists::new(&d.qcd.binned, &pq, &d.sig.binned, &ps)?;
        // the threshold alone cannot shape the QCD pass/fail ratio: no penalty
        let z = match objective(a, &h, obj, 0.0) {
            Ok((z, _, _)) => z,
            Err(e) => {
                // the threshold would not move: stop here
                eprintln!("  threshold training stopped at step {step}: {e}");
                break;
            }
        };
        last = scalar(&z)?;
        first.get_or_insert(last);
        adam.step(&z.neg()?.backward()?)?;
    }
    Ok((scalar(c.as_tensor())?, first.unwrap_or(0.0), last))
}

fn mlp(seed: u64) -> Result<Mlp> {
    let cfg = MlpConfig {
        sizes: vec![N_FEATURES, 16, 16, 1],
        activation: Activation::Tanh,
        output: Output::Linear,
    };
    let mut rng = StdRng::seed_from_u64(1000 + seed);
    Mlp::new(cfg, DType::F64, &Device::Cpu, &mut rng)
}

/// The network's output per event (no tape), in chunks of 200 000 events.
fn scores(net: &Mlp, s: &Sample) -> Result<Tensor> {
    let n = s.ev.len();
    let mut parts = Vec::new();
    for start in (0..n).step_by(200_000) {
        let x = s.feats.narrow(0, start, (n - start).min(200_000))?;
        parts.push(net.forward(&x)?.flatten_all()?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}

fn train_bce(net: &Mlp, d: &Data, steps: usize, seed: u64) -> Result<f64> {
    let mut rng = StdRng::seed_from_u64(2000 + seed);
    let vars = net.vars().into_iter().map(|v| (v, 3e-3)).collect();
    let mut adam = Adam::new(vars, ADAM)?;
    let batch = 1024;
    let mut last = 0.0;
    let pick = |s: &Sample, rng: &mut StdRng| -> Result<Tensor> {
        let idx: Vec<u32> = (0..batch)
            .map(|_| rng.random_range(0..s.ev.len()) as u32)
            .collect();
        Ok(s.feats.index_select(&Tensor::new(idx, &Device::Cpu)?, 0)?)
    };
    for _ in 0..steps {
        let xs = pick(&d.sig, &mut rng)?;
        let xq = pick(&d.qcd, &mut rng)?;
        let l = bce(&net.forward(&xs)?, &[&net.forward(&xq)?], BceScores::Logits)?;
        last = scalar(&l)?;
        adam.step(&l.backward()?)?;
    }
    Ok(last)
}

/// A copy of the network's weights.
fn snapshot(net: &Mlp) -> Result<Vec<Tensor>> {
    Ok(net
        .vars()
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?)
}

fn restore(net: &Mlp, w: &[Tensor]) -> Result<()> {
    for (v, t) in net.vars().iter().zip(w) {
        v.set(t)?;
    }
    Ok(())
}

/// Summary of a network training on the significance.
struct NetTraining {
    first: f64,
    best: f64,
    best_step: usize,
    steps: usize,
    failures: usize,
}

/// Trains `net` on the objective. A failed fit (the objective cannot be
/// evaluated at the new weights) restores the last weights that evaluated
/// and halves the learning rate (fresh Adam moments); after `MAX_FAILURES`
/// the training stops. The network ends at the weights with the best
/// training objective (early stopping on the training events).
fn train_net_z(
    net: &Mlp,
    a: &PassFail,
    d: &Data,
    steps: usize,
    obj: Objective,
    penalty: f64,
) -> Result<NetTraining> {
    let mut lr = NET_LR;
    let new_adam = |lr: f64| Adam::new(net.vars().into_iter().map(|v| (v, lr)).collect(), ADAM);
    let mut adam = new_adam(lr)?;
    let mut last_good = snapshot(net)?;
    let mut best = (f64::NEG_INFINITY, snapshot(net)?, 0);
    let (mut first, mut failures, mut done) = (None, 0, 0);
    for step in 0..steps {
        done = step + 1;
        let pq = candle_nn::ops::sigmoid(&(net.forward(&d.qcd.feats)? / NET_WIDTH)?)?;
        let ps = candle_nn::ops::sigmoid(&(net.forward(&d.sig.feats)? / NET_WIDTH)?)?;
        let h = Hists::new(&d.qcd.binned, &pq, &d.sig.binned, &ps)?;
        let (z, za, spur) = match objective(a, &h, obj, penalty) {
            Ok(r) => r,
            Err(e) => {
                failures += 1;
                lr *= 0.5;
                eprintln!(
                    "  step {step}: objective failed ({e}); back to the last weights, learning rate {lr:.2e}"
                );
                if failures >= MAX_FAILURES {
                    eprintln!("  stopping the training at step {step} ({failures} failed fits)");
                    break;
                }
                restore(net, &last_good)?;
                adam = new_adam(lr)?;
                continue;
            }
        };
        let v = scalar(&z)?;
        first.get_or_insert(v);
        if v > best.0 {
            best = (v, snapshot(net)?, step);
        }
        if step % 20 == 0 {
            eprintln!("  step {step}: objective {v:.3} (Z_A {za:.3}, Z_spur {spur:.3})");
        }
        last_good = snapshot(net)?;
        adam.step(&z.neg()?.backward()?)?;
    }
    restore(net, &best.1)?;
    Ok(NetTraining {
        first: first.unwrap_or(f64::NAN),
        best: best.0,
        best_step: best.2,
        steps: done,
        failures,
    })
}

/// Results of one (variant, seed): method name → evaluation.
type Row = Vec<(&'static str, Eval)>;

/// Number of threshold methods (rows with exact evaluations) at the top of a [`Row`].
const N_CUT_METHODS: usize = 4;

fn run_seed(o: &Opts, variant: Variant, seed: u64) -> Result<Row> {
    let dev = Device::Cpu;
    let toy = TaggerToy {
        variant,
        ..TaggerToy::default()
    };
    let grid = Grid::uniform(8, 4)?;
    let analysis = PassFail::new(grid.clone(), [2, 1])?;
    let draw = |s: u64, nq: usize, ns: usize| -> Result<(Events, Events)> {
        let mut rng = StdRng::seed_from_u64(s);
        Ok((
            toy.sample_qcd(nq, &mut rng)?,
            toy.sample_signal(ns, &mut rng)?,
        ))
    };
    let (tq, ts) = draw(seed, o.n_qcd, o.n_sig)?;
    let (eq, es) = draw(100_000 + seed, o.n_test_qcd, o.n_test_sig)?;
    let norm = feature_norm(&tq, &ts);
    let train = Data {
        qcd: Sample::new(tq, &grid, &norm, &dev)?,
        sig: Sample::new(ts, &grid, &norm, &dev)?,
    };
    let test = Data {
        qcd: Sample::new(eq, &grid, &norm, &dev)?,
        sig: Sample::new(es, &grid, &norm, &dev)?,
    };
    let mut row = Row::new();
    let tag = format!("{variant:?} seed {seed}");

    // (a) the threshold on the tagger logit
    let t0 = Instant::now();
    let (c_z, z_first, z_last) = train_cut(&analysis, &train, o.cut_steps, o.objective)?;
    let t_cut = t0.elapsed().as_secs_f64();
    let c_ssb_exact = best_ssb_exact(&toy)?;
    let c_ssb = best_ssb(&train, &train.qcd.logit, &train.sig.logit)?;
    let c_scan = best_fom(
        &analysis,
        &train,
        &train.qcd.logit,
        &train.sig.logit,
        o.objective,
        0.0,
    )?;
    let ev = |c: f64| evaluate_cut(&analysis, &toy, &test, c);
    row.push(("cut: trained (soft) on the objective", ev(c_z)?));
    row.push(("cut: max s/sqrt(b), exact yields", ev(c_ssb_exact)?));
    row.push(("cut: max s/sqrt(b), training events", ev(c_ssb)?));
    row.push(("cut: objective scan, training events", ev(c_scan)?));
    eprintln!(
        "{tag}: threshold training {t_cut:.1} s, soft objective {z_first:.3} -> {z_last:.3}, c = {c_z:.3} (s/sqrt(b) exact: {c_ssb_exact:.3}, on training events: {c_ssb:.3}; objective scan: {c_scan:.3})"
    );

    // (b) the tagger network
    let t0 = Instant::now();
    let net_b = mlp(seed)?;
    let bce_last = train_bce(&net_b, &train, o.bce_steps, seed)?;
    let t_bce = t0.elapsed().as_secs_f64();
    let (bq, bs) = (scores(&net_b, &train.qcd)?, scores(&net_b, &train.sig)?);
    let c_b_ssb = best_ssb(&train, &bq, &bs)?;
    let c_b_scan = best_fom(&analysis, &train, &bq, &bs, o.objective, o.penalty)?;
    let (bq_t, bs_t) = (scores(&net_b, &test.qcd)?, scores(&net_b, &test.sig)?);
    row.push((
        "BCE net, cut max s/sqrt(b)",
        evaluate(&analysis, &test, &bq_t, &bs_t, c_b_ssb)?,
    ));
    row.push((
        "BCE net, cut objective scan",
        evaluate(&analysis, &test, &bq_t, &bs_t, c_b_scan)?,
    ));
    let t0 = Instant::now();
    let net_z = mlp(seed)?;
    if o.init_from_bce {
        // start at the BCE network's own best operating point: its weights,
        // the output bias shifted by its scanned threshold
        let c0 = if c_b_scan.is_finite() {
            c_b_scan
        } else {
            c_b_ssb
        };
        let mut w = snapshot(&net_b)?;
        if let Some(b) = w.last_mut() {
            *b = b.affine(1.0, -c0)?;
        }
        restore(&net_z, &w)?;
    }
    let tr = train_net_z(
        &net_z,
        &analysis,
        &train,
        o.net_steps,
        o.objective,
        o.penalty,
    )?;
    let t_net = t0.elapsed().as_secs_f64();
    let (zq, zs) = (scores(&net_z, &train.qcd)?, scores(&net_z, &train.sig)?);
    let c_z_scan = best_fom(&analysis, &train, &zq, &zs, o.objective, o.penalty)?;
    let (zq_t, zs_t) = (scores(&net_z, &test.qcd)?, scores(&net_z, &test.sig)?);
    row.push((
        "objective net, cut z >= 0",
        evaluate(&analysis, &test, &zq_t, &zs_t, 0.0)?,
    ));
    row.push((
        "objective net, cut objective scan",
        evaluate(&analysis, &test, &zq_t, &zs_t, c_z_scan)?,
    ));
    eprintln!(
        "{tag}: BCE training {t_bce:.1} s (final BCE {bce_last:.4}); objective network training {t_net:.1} s, {} steps, {} failed fits, soft objective {:.3} -> best {:.3} at step {}",
        tr.steps, tr.failures, tr.first, tr.best, tr.best_step
    );
    for (name, e) in &row {
        eprintln!(
            "  {name:<38} c = {:>7.3}  Z_A = {:>6.3}  Z_spur = {:>6.3}  s/sqrt(b) = {:>6.3}  exact Z_A = {:>6.3}  Z_spur = {:>6.3}",
            e.c, e.za, e.spur, e.ssb, e.za_exact, e.spur_exact
        );
    }
    Ok(row)
}

/// Median, min and max of the finite values, and how many were finite.
fn median_range(v: &[f64]) -> (f64, f64, f64, usize) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let ok = v.len();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, ok);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    (med, v[0], v[n - 1], ok)
}

fn fmt_range(v: &[f64]) -> String {
    let (m, lo, hi, ok) = median_range(v);
    let failed = if ok < v.len() {
        format!(" ({} failed)", v.len() - ok)
    } else {
        String::new()
    };
    format!("{m:.3} [{lo:.3}, {hi:.3}]{failed}")
}

fn per_seed(v: &[f64]) -> String {
    v.iter()
        .map(|z| format!("{z:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_tables(variant: Variant, rows: &[Row]) {
    let col =
        |k: usize, f: fn(&Eval) -> f64| -> Vec<f64> { rows.iter().map(|r| f(&r[k].1)).collect() };
    println!(
        "\n{variant:?}: test events, hard cuts; median [min, max] over {} seeds",
        rows.len()
    );
    println!(
        "| method | c per seed | Z_A | Z_spur | Z_A - Z_spur | s/sqrt(b) window | per seed Z_A - Z_spur |\n|---|---|---|---|---|---|---|"
    );
    for (k, (name, _)) in rows[0].iter().enumerate() {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            per_seed(&col(k, |e| e.c)),
            fmt_range(&col(k, |e| e.za)),
            fmt_range(&col(k, |e| e.spur)),
            fmt_range(&col(k, |e| e.za - e.spur)),
            fmt_range(&col(k, |e| e.ssb)),
            per_seed(&col(k, |e| e.za - e.spur))
        );
    }
    println!(
        "\n{variant:?}: thresholds on the exact expected yields (infinitely many test events)"
    );
    println!(
        "| method | Z_A | Z_spur | Z_A - Z_spur | per seed Z_A - Z_spur |\n|---|---|---|---|---|"
    );
    for (k, (name, _)) in rows[0].iter().enumerate().take(N_CUT_METHODS) {
        println!(
            "| {name} | {} | {} | {} | {} |",
            fmt_range(&col(k, |e| e.za_exact)),
            fmt_range(&col(k, |e| e.spur_exact)),
            fmt_range(&col(k, |e| e.za_exact - e.spur_exact)),
            per_seed(&col(k, |e| e.za_exact - e.spur_exact))
        );
    }
}

fn main() -> Result<()> {
    let o = parse_opts()?;
    let start = Instant::now();
    println!(
        "transfer_significance: seeds {:?}, objective {:?}, network penalty {}, {} QCD + {} signal training events, {} + {} test events, grid 8x4, TF exp-Bernstein (2, 1)",
        o.seeds, o.objective, o.penalty, o.n_qcd, o.n_sig, o.n_test_qcd, o.n_test_sig
    );
    for &variant in &o.variants {
        let rows: Vec<Row> = o
            .seeds
            .iter()
            .map(|&s| run_seed(&o, variant, s))
            .collect::<Result<_>>()?;
        print_tables(variant, &rows);
    }
    println!("\ntotal run time {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
