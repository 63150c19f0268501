//! bKDE histogram: values against a direct reference, gradients against
//! central finite differences (f64), invariants, windowing, h → 0, the
//! multi-sample paths, bad inputs, and an MLP → bKDE → loss chain.

use anagrad::ops::hist::{self, BkdeOptions, Outside};
use anagrad::ops::normal;
use anagrad::Error;
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const CPU: Device = Device::Cpu;

fn t64(v: &[f64]) -> Tensor {
    Tensor::new(v, &CPU).unwrap()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Direct O(N·B) reference with Φ differences (outer edges at ∓∞ when folding).
fn reference(x: &[f64], w: Option<&[f64]>, e: &[f64], h: f64, fold: bool) -> Vec<f64> {
    let nb = e.len() - 1;
    (0..nb)
        .map(|b| {
            let lo = if fold && b == 0 {
                f64::NEG_INFINITY
            } else {
                e[b]
            };
            let hi = if fold && b == nb - 1 {
                f64::INFINITY
            } else {
                e[b + 1]
            };
            x.iter()
                .enumerate()
                .map(|(i, &xi)| {
                    let wi = w.map_or(1.0, |w| w[i]);
                    // difference of small tails: no cancellation on either side
                    let (a, c) = ((lo - xi) / h, (hi - xi) / h);
                    let k = if a > 0.0 {
                        normal::sf(a) - normal::sf(c)
                    } else if c <= 0.0 {
                        normal::cdf(c) - normal::cdf(a)
                    } else {
                        1.0 - normal::cdf(a) - normal::sf(c)
                    };
                    wi * k
                })
                .sum()
        })
        .collect()
}

/// Events around the edges: inside, next to and exactly on edges, outside.
fn events(rng: &mut StdRng, n: usize, e: &[f64], h: f64) -> Vec<f64> {
    let (lo, hi) = (e[0], e[e.len() - 1]);
    let span = hi - lo;
    (0..n)
        .map(|i| match i % 5 {
            0 => e[rng.random_range(0..e.len())],
            1 => e[rng.random_range(0..e.len())] + h * rng.random_range(-2.0..2.0),
            2 => lo - span * rng.random_range(0.0..0.5),
            _ => lo + span * rng.random_range(-0.2..1.2),
        })
        .collect()
}

fn weights(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-0.5..2.0)).collect()
}

struct Grads {
    dx: Vec<f64>,
    dw: Vec<f64>,
    de: Vec<f64>,
}

/// Analytic gradients of L = Σ g_b counts_b through candle's autograd.
fn autograd(x: &[f64], w: Option<&[f64]>, e: &[f64], g: &[f64], opts: &BkdeOptions) -> Grads {
    let xv = Var::new(x, &CPU).unwrap();
    let wv = w.map(|w| Var::new(w, &CPU).unwrap());
    let ev = Var::new(e, &CPU).unwrap();
    let counts = hist::bkde(
        xv.as_tensor(),
        wv.as_ref().map(|v| v.as_tensor()),
        ev.as_tensor(),
        opts,
    )
    .unwrap();
    let loss = (counts * t64(g)).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    Grads {
        dx: v64(grads.get(xv.as_tensor()).unwrap()),
        dw: wv.map_or(vec![], |v| v64(grads.get(v.as_tensor()).unwrap())),
        de: v64(grads.get(ev.as_tensor()).unwrap()),
    }
}

fn loss_value(x: &[f64], w: Option<&[f64]>, e: &[f64], g: &[f64], opts: &BkdeOptions) -> f64 {
    let wt = w.map(t64);
    let c = v64(&hist::bkde(&t64(x), wt.as_ref(), &t64(e), opts).unwrap());
    c.iter().zip(g).map(|(c, g)| c * g).sum()
}

/// Central finite difference of `f` in coordinate `i` of `v` with step `eps`.
fn central(v: &[f64], i: usize, eps: f64, f: impl Fn(&[f64]) -> f64) -> f64 {
    let mut p = v.to_vec();
    p[i] = v[i] + eps;
    let fp = f(&p);
    p[i] = v[i] - eps;
    let fm = f(&p);
    (fp - fm) / (2.0 * eps)
}

fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= rtol * scale,
            "{what}[{i}]: got {a:e}, want {b:e} (scale {scale:e}, rtol {rtol:e})"
        );
    }
}

#[test]
fn forward_matches_direct_reference() {
    let mut rng = StdRng::seed_from_u64(1);
    let e = [-1.0, -0.3, 0.0, 0.25, 1.5, 2.0];
    for &h in &[1e-4, 0.01, 0.2, 1.0, 50.0] {
        let x = events(&mut rng, 400, &e, h);
        let w = weights(&mut rng, 400);
        for outside in [Outside::Drop, Outside::Fold] {
            let fold = outside == Outside::Fold;
            let opts = BkdeOptions::new(h).outside(outside);
            let got = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
            assert_close(
                &format!("h={h} {outside:?}"),
                &got,
                &reference(&x, Some(&w), &e, h, fold),
                1e-13,
            );
            let got = v64(&hist::bkde(&t64(&x), None, &t64(&e), &opts).unwrap());
            assert_close(
                &format!("h={h} {outside:?} unweighted"),
                &got,
                &reference(&x, None, &e, h, fold),
                1e-13,
            );
        }
    }
}

/// Edges whose spacing varies a lot: a tight cluster (so that one kernel
/// window holds many edges) and wide bins elsewhere.
fn clustered_edges() -> Vec<f64> {
    let mut e = vec![-1.0, 0.0];
    e.extend((1..=12).map(|k| 0.5 + 1e-3 * k as f64));
    e.extend([0.8, 2.0, 2.001, 5.0]);
    e
}

#[test]
fn non_uniform_edges_and_wide_windows_match_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    // (edges, bandwidth, window): a cluster inside one window (many edges
    // per event, the first-edge guess often wrong); many edges with the
    // whole range in every window (per-edge sums kept in place instead of
    // one row per first edge)
    let many: Vec<f64> = (0..=300).map(|k| (k as f64 / 300.0).powi(2)).collect();
    let cases = [
        (clustered_edges(), 0.01, None),
        (clustered_edges(), 0.3, None),
        (many.clone(), 0.05, Some(f64::INFINITY)),
        (many, 0.002, None),
    ];
    for (e, h, window) in cases {
        // more events than one chunk, so that a chunk boundary is crossed
        let n = 4500;
        let x = events(&mut rng, n, &e, h);
        let w = weights(&mut rng, n);
        for outside in [Outside::Drop, Outside::Fold] {
            let mut opts = BkdeOptions::new(h).outside(outside);
            opts.window = window;
            let got = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
            let want = reference(&x, Some(&w), &e, h, outside == Outside::Fold);
            assert_close(
                &format!("B={} h={h} {outside:?}", e.len() - 1),
                &got,
                &want,
                1e-13,
            );
        }
    }
}

#[test]
fn non_uniform_gradients_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(12);
    let e = clustered_edges();
    let h = 0.004;
    let x = events(&mut rng, 60, &e, h);
    let w = weights(&mut rng, 60);
    let g: Vec<f64> = (0..e.len() - 1)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    for outside in [Outside::Drop, Outside::Fold] {
        let opts = BkdeOptions::new(h).outside(outside);
        let an = autograd(&x, Some(&w), &e, &g, &opts);
        let eps = 1e-4 * h;
        let fx: Vec<f64> = (0..x.len())
            .map(|i| central(&x, i, eps, |p| loss_value(p, Some(&w), &e, &g, &opts)))
            .collect();
        assert_close(&format!("{outside:?} dx"), &an.dx, &fx, 1e-6);
        let fe: Vec<f64> = (0..e.len())
            .map(|j| central(&e, j, eps, |p| loss_value(&x, Some(&w), p, &g, &opts)))
            .collect();
        assert_close(&format!("{outside:?} de"), &an.de, &fe, 1e-6);
        let fw: Vec<f64> = (0..w.len())
            .map(|i| central(&w, i, 0.1, |p| loss_value(&x, Some(p), &e, &g, &opts)))
            .collect();
        assert_close(&format!("{outside:?} dw"), &an.dw, &fw, 1e-9);
        // and against the unwindowed op (every edge for every event)
        let full = autograd(&x, Some(&w), &e, &g, &opts.clone().window(f64::INFINITY));
        assert_close("dx vs unwindowed", &an.dx, &full.dx, 1e-13);
        assert_close("dw vs unwindowed", &an.dw, &full.dw, 1e-13);
        assert_close("de vs unwindowed", &an.de, &full.de, 1e-13);
    }
}

#[test]
fn gradients_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(2);
    let e = vec![-1.0, -0.3, 0.0, 0.25, 1.5, 2.0];
    for &h in &[1e-3, 0.05, 0.3, 5.0, 200.0] {
        for outside in [Outside::Drop, Outside::Fold] {
            for weighted in [true, false] {
                let opts = BkdeOptions::new(h).outside(outside);
                let x = events(&mut rng, 30, &e, h);
                let w = weights(&mut rng, 30);
                let wo = weighted.then_some(w.as_slice());
                let g: Vec<f64> = (0..e.len() - 1)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let an = autograd(&x, wo, &e, &g, &opts);
                let tag = format!("h={h} {outside:?} weighted={weighted}");
                // the function varies on the scale of h (and of the data)
                let eps = 1e-4 * h;
                let fx: Vec<f64> = (0..x.len())
                    .map(|i| central(&x, i, eps, |p| loss_value(p, wo, &e, &g, &opts)))
                    .collect();
                assert_close(&format!("{tag} dx"), &an.dx, &fx, 1e-6);
                let fe: Vec<f64> = (0..e.len())
                    .map(|j| central(&e, j, eps, |p| loss_value(&x, wo, p, &g, &opts)))
                    .collect();
                assert_close(&format!("{tag} de"), &an.de, &fe, 1e-6);
                if weighted {
                    // linear in w: the difference quotient is exact up to rounding
                    let fw: Vec<f64> = (0..w.len())
                        .map(|i| central(&w, i, 0.1, |p| loss_value(&x, Some(p), &e, &g, &opts)))
                        .collect();
                    assert_close(&format!("{tag} dw"), &an.dw, &fw, 1e-9);
                }
                if outside == Outside::Fold {
                    // folded outer edges do not influence the counts
                    assert_eq!(an.de[0], 0.0);
                    assert_eq!(an.de[e.len() - 1], 0.0);
                }
            }
        }
    }
}

#[test]
fn density_gradient_matches_central_differences() {
    let mut rng = StdRng::seed_from_u64(3);
    let e = vec![0.0, 0.2, 0.5, 0.55, 1.0];
    let opts = BkdeOptions::new(0.08).density(true);
    let x = events(&mut rng, 40, &e, 0.08);
    let w: Vec<f64> = (0..40).map(|_| rng.random_range(0.1..2.0)).collect();
    let g: Vec<f64> = (0..4).map(|_| rng.random_range(-1.0..1.0)).collect();
    let an = autograd(&x, Some(&w), &e, &g, &opts);
    let fe: Vec<f64> = (0..e.len())
        .map(|j| central(&e, j, 1e-6, |p| loss_value(&x, Some(&w), p, &g, &opts)))
        .collect();
    assert_close("density de", &an.de, &fe, 1e-6);
    let fx: Vec<f64> = (0..x.len())
        .map(|i| central(&x, i, 1e-6, |p| loss_value(p, Some(&w), &e, &g, &opts)))
        .collect();
    assert_close("density dx", &an.dx, &fx, 1e-6);
    let fw: Vec<f64> = (0..w.len())
        .map(|i| central(&w, i, 1e-4, |p| loss_value(&x, Some(p), &e, &g, &opts)))
        .collect();
    assert_close("density dw", &an.dw, &fw, 1e-6);
    // unit area
    let d = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
    let area: f64 = d
        .iter()
        .zip(e.windows(2))
        .map(|(d, p)| d * (p[1] - p[0]))
        .sum();
    assert!((area - 1.0).abs() < 1e-14, "area {area}");
}

#[test]
fn invariants_nonnegative_folding_conserves_mass() {
    let mut rng = StdRng::seed_from_u64(4);
    let e = [0.0, 0.1, 0.4, 0.45, 1.0];
    for &h in &[1e-5, 0.03, 0.5, 30.0] {
        let x = events(&mut rng, 2000, &e, h);
        let w: Vec<f64> = (0..2000).map(|_| rng.random_range(0.0..3.0)).collect();
        let total: f64 = w.iter().sum();
        let drop =
            v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &BkdeOptions::new(h)).unwrap());
        assert!(drop.iter().all(|c| *c >= 0.0), "{drop:?}");
        assert!(drop.iter().sum::<f64>() <= total * (1.0 + 1e-15));
        let fold = v64(&hist::bkde(
            &t64(&x),
            Some(&t64(&w)),
            &t64(&e),
            &BkdeOptions::new(h).outside(Outside::Fold),
        )
        .unwrap());
        assert!(fold.iter().all(|c| *c >= 0.0));
        let s: f64 = fold.iter().sum();
        assert!(
            (s - total).abs() <= 1e-13 * total,
            "h={h}: Σcounts {s} vs Σw {total}"
        );
    }
}

#[test]
fn f32_and_f64_agree_to_f32_precision() {
    let mut rng = StdRng::seed_from_u64(5);
    let e = [-1.0, -0.5, 0.0, 0.5, 1.0];
    for &h in &[0.02, 0.3] {
        // f32-representable inputs, so both runs see the same numbers
        let x: Vec<f64> = events(&mut rng, 5000, &e, h)
            .iter()
            .map(|v| *v as f32 as f64)
            .collect();
        let w: Vec<f64> = (0..5000)
            .map(|_| rng.random_range(0.5..1.5) as f32 as f64)
            .collect();
        let g: Vec<f64> = vec![0.3, -1.0, 0.7, 0.2];
        let opts = BkdeOptions::new(h);
        let c64 = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
        let f32t = |v: &[f64]| t64(v).to_dtype(DType::F32).unwrap();
        let c32 = v64(&hist::bkde(&f32t(&x), Some(&f32t(&w)), &f32t(&e), &opts).unwrap());
        assert_close(&format!("h={h} counts"), &c32, &c64, 3e-7);
        // gradients in f32 too
        let xv = Var::from_tensor(&f32t(&x)).unwrap();
        let wv = Var::from_tensor(&f32t(&w)).unwrap();
        let ev = Var::from_tensor(&f32t(&e)).unwrap();
        let c = hist::bkde(xv.as_tensor(), Some(wv.as_tensor()), ev.as_tensor(), &opts).unwrap();
        let loss = (c * f32t(&g)).unwrap().sum_all().unwrap();
        let gr = loss.backward().unwrap();
        let an = autograd(&x, Some(&w), &e, &g, &opts);
        assert_close(
            "f32 dx",
            &v64(gr.get(xv.as_tensor()).unwrap()),
            &an.dx,
            1e-6,
        );
        assert_close(
            "f32 dw",
            &v64(gr.get(wv.as_tensor()).unwrap()),
            &an.dw,
            1e-6,
        );
        assert_close(
            "f32 de",
            &v64(gr.get(ev.as_tensor()).unwrap()),
            &an.de,
            1e-6,
        );
    }
}

#[test]
fn windowed_and_unwindowed_agree_to_1e_13() {
    let mut rng = StdRng::seed_from_u64(6);
    let e: Vec<f64> = (0..=40).map(|k| k as f64 * 0.025).collect();
    for &h in &[0.002, 0.01, 0.05] {
        let x = events(&mut rng, 20000, &e, h);
        let w: Vec<f64> = (0..20000).map(|_| rng.random_range(0.0..2.0)).collect();
        let g: Vec<f64> = (0..40).map(|_| rng.random_range(-1.0..1.0)).collect();
        for outside in [Outside::Drop, Outside::Fold] {
            let win = BkdeOptions::new(h).outside(outside);
            let full = BkdeOptions::new(h).outside(outside).window(f64::INFINITY);
            let a = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &win).unwrap());
            let b = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &full).unwrap());
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-13 * b.abs(),
                    "h={h} bin {i}: {a:e} vs {b:e}"
                );
            }
            let ga = autograd(&x, Some(&w), &e, &g, &win);
            let gb = autograd(&x, Some(&w), &e, &g, &full);
            assert_close("window dx", &ga.dx, &gb.dx, 1e-13);
            assert_close("window dw", &ga.dw, &gb.dw, 1e-13);
            assert_close("window de", &ga.de, &gb.de, 1e-13);
        }
    }
}

#[test]
fn small_bandwidth_converges_to_hard_histogram() {
    let mut rng = StdRng::seed_from_u64(7);
    let e = [0.0, 0.3, 0.35, 0.8, 1.0];
    // keep events at least 1e-6 away from edges so that h = 1e-8 is deep in the limit
    let x: Vec<f64> = (0..3000)
        .map(|_| loop {
            let v: f64 = rng.random_range(-0.2..1.2);
            if e.iter().all(|ej: &f64| (v - ej).abs() > 1e-6) {
                break v;
            }
        })
        .collect();
    let w: Vec<f64> = (0..3000).map(|_| rng.random_range(0.0..2.0)).collect();
    for outside in [Outside::Drop, Outside::Fold] {
        let (hc, hs) = hist::hard_hist(&t64(&x), Some(&t64(&w)), &t64(&e), outside).unwrap();
        let (hc, hs) = (v64(&hc), v64(&hs));
        let mut prev_err = f64::INFINITY;
        for &h in &[1e-2, 1e-3, 1e-4, 1e-8] {
            let opts = BkdeOptions::new(h).outside(outside);
            let c = v64(&hist::bkde(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
            let err = c
                .iter()
                .zip(&hc)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                err <= prev_err,
                "error grows as h shrinks: {err} after {prev_err}"
            );
            prev_err = err;
            if h == 1e-8 {
                assert_close("h→0 counts", &c, &hc, 1e-14);
                let s = v64(&hist::bkde_sumw2(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
                assert_close("h→0 sumw2", &s, &hs, 1e-14);
            }
        }
    }
}

#[test]
fn hard_histogram_conventions() {
    let e = t64(&[0.0, 1.0, 2.0]);
    let x = t64(&[-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]);
    let w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let (c, s) = hist::hard_hist(&x, Some(&w), &e, Outside::Drop).unwrap();
    assert_eq!(v64(&c), vec![5.0, 9.0]); // [0,1) and [1,2] (last bin closed)
    assert_eq!(v64(&s), vec![13.0, 41.0]);
    let (c, _) = hist::hard_hist(&x, Some(&w), &e, Outside::Fold).unwrap();
    assert_eq!(v64(&c), vec![6.0, 15.0]);
    let (c, s) = hist::hard_hist(&x, None, &e, Outside::Drop).unwrap();
    assert_eq!(v64(&c), vec![2.0, 2.0]);
    assert_eq!(v64(&s), vec![2.0, 2.0]);
    // (S × N) values give (S × B)
    let x2 = Tensor::new(&[[0.5f64, 1.5], [1.5, 1.7]], &CPU).unwrap();
    let (c, _) = hist::hard_hist(&x2, None, &e, Outside::Drop).unwrap();
    assert_eq!(c.dims(), &[2, 2]);
    assert_eq!(v64(&c), vec![1.0, 1.0, 0.0, 2.0]);
}

#[test]
fn sumw2_is_weighted_by_squares_and_differentiable() {
    let mut rng = StdRng::seed_from_u64(8);
    let e = vec![0.0, 0.5, 1.0, 1.5];
    let h = 0.2;
    let x = events(&mut rng, 50, &e, h);
    let w = weights(&mut rng, 50);
    let w2: Vec<f64> = w.iter().map(|v| v * v).collect();
    let opts = BkdeOptions::new(h).outside(Outside::Fold);
    let s = v64(&hist::bkde_sumw2(&t64(&x), Some(&t64(&w)), &t64(&e), &opts).unwrap());
    assert_close("sumw2", &s, &reference(&x, Some(&w2), &e, h, true), 1e-13);
    let unweighted = v64(&hist::bkde_sumw2(&t64(&x), None, &t64(&e), &opts).unwrap());
    assert_close(
        "sumw2 unweighted",
        &unweighted,
        &reference(&x, None, &e, h, true),
        1e-13,
    );
    // d/dw of Σ g·sumw2 = 2 w_i Σ g_b K_ib
    let g = [0.4, -0.9, 1.3];
    let wv = Var::new(w.as_slice(), &CPU).unwrap();
    let xv = Var::new(x.as_slice(), &CPU).unwrap();
    let sw = hist::bkde_sumw2(xv.as_tensor(), Some(wv.as_tensor()), &t64(&e), &opts).unwrap();
    let grads = (sw * t64(&g))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dw = v64(grads.get(wv.as_tensor()).unwrap());
    let f = |p: &[f64]| {
        let p2: Vec<f64> = p.iter().map(|v| v * v).collect();
        loss_value(&x, Some(&p2), &e, &g, &opts)
    };
    let fw: Vec<f64> = (0..w.len()).map(|i| central(&w, i, 1e-5, f)).collect();
    assert_close("sumw2 dw", &dw, &fw, 1e-8);
    let dx = v64(grads.get(xv.as_tensor()).unwrap());
    let fx: Vec<f64> = (0..x.len())
        .map(|i| central(&x, i, 1e-6, |p| loss_value(p, Some(&w2), &e, &g, &opts)))
        .collect();
    assert_close("sumw2 dx", &dx, &fx, 1e-6);
}

#[test]
fn multi_sample_matches_single_calls() {
    let mut rng = StdRng::seed_from_u64(9);
    let e = vec![-0.5, 0.0, 0.3, 1.0, 1.2];
    let h = 0.1;
    let (s, n) = (4, 3000);
    let xs: Vec<Vec<f64>> = (0..s).map(|_| events(&mut rng, n, &e, h)).collect();
    let ws: Vec<Vec<f64>> = (0..s).map(|_| weights(&mut rng, n)).collect();
    let flat_x: Vec<f64> = xs.concat();
    let flat_w: Vec<f64> = ws.concat();
    let xm = Var::from_tensor(&t64(&flat_x).reshape((s, n)).unwrap()).unwrap();
    let wm = Var::from_tensor(&t64(&flat_w).reshape((s, n)).unwrap()).unwrap();
    let ev = Var::new(e.as_slice(), &CPU).unwrap();
    for outside in [Outside::Drop, Outside::Fold] {
        let opts = BkdeOptions::new(h).outside(outside);
        let m =
            hist::bkde_multi(xm.as_tensor(), Some(wm.as_tensor()), ev.as_tensor(), &opts).unwrap();
        assert_eq!(m.dims(), &[s, e.len() - 1]);
        let rows = v64(&m);
        for k in 0..s {
            let one = v64(&hist::bkde(&t64(&xs[k]), Some(&t64(&ws[k])), &t64(&e), &opts).unwrap());
            // same numbers, summed in another order (chunks straddle samples)
            assert_close(&format!("row {k}"), &rows[k * 4..(k + 1) * 4], &one, 1e-14);
        }
        // gradient of a loss mixing rows equals the sum over single calls
        let g: Vec<f64> = (0..s * 4).map(|_| rng.random_range(-1.0..1.0)).collect();
        let gt = t64(&g).reshape((s, 4)).unwrap();
        let grads = (m * gt).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = v64(grads.get(xm.as_tensor()).unwrap());
        let dw = v64(grads.get(wm.as_tensor()).unwrap());
        let de = v64(grads.get(ev.as_tensor()).unwrap());
        let mut de_sum = vec![0.0; e.len()];
        for k in 0..s {
            let an = autograd(&xs[k], Some(&ws[k]), &e, &g[k * 4..(k + 1) * 4], &opts);
            assert_eq!(&dx[k * n..(k + 1) * n], an.dx.as_slice());
            assert_eq!(&dw[k * n..(k + 1) * n], an.dw.as_slice());
            for (a, b) in de_sum.iter_mut().zip(&an.de) {
                *a += b;
            }
        }
        assert_close("multi de", &de, &de_sum, 1e-13);
    }
    // a list of samples of different lengths, some unweighted
    let lens = [10usize, 5000, 0, 777];
    let xl: Vec<Tensor> = lens
        .iter()
        .map(|&l| t64(&events(&mut rng, l, &e, h)))
        .collect();
    let wl: Vec<Tensor> = lens.iter().map(|&l| t64(&weights(&mut rng, l))).collect();
    let samples: Vec<(&Tensor, Option<&Tensor>)> = vec![
        (&xl[0], Some(&wl[0])),
        (&xl[1], None),
        (&xl[2], Some(&wl[2])),
        (&xl[3], Some(&wl[3])),
    ];
    let opts = BkdeOptions::new(h);
    let l = hist::bkde_list(&samples, &t64(&e), &opts).unwrap();
    assert_eq!(l.dims(), &[4, 4]);
    let rows = v64(&l);
    for (k, (x, w)) in samples.iter().enumerate() {
        let one = v64(&hist::bkde(x, *w, &t64(&e), &opts).unwrap());
        assert_close(
            &format!("list row {k}"),
            &rows[k * 4..(k + 1) * 4],
            &one,
            1e-14,
        );
    }
    assert!(rows[8..12].iter().all(|v| *v == 0.0));
}

#[test]
fn empty_input_gives_zeros() {
    let e = t64(&[0.0, 1.0, 2.0]);
    let x = t64(&[]);
    for opts in [
        BkdeOptions::new(0.1),
        BkdeOptions::new(0.1).outside(Outside::Fold).density(true),
    ] {
        let c = hist::bkde(&x, Some(&t64(&[])), &e, &opts).unwrap();
        assert_eq!(v64(&c), vec![0.0, 0.0]);
        let c = hist::bkde(&x, None, &e, &opts).unwrap();
        assert_eq!(v64(&c), vec![0.0, 0.0]);
    }
    let xm = Tensor::zeros((3, 0), DType::F32, &CPU).unwrap();
    let c = hist::bkde_multi(
        &xm,
        None,
        &e.to_dtype(DType::F32).unwrap(),
        &BkdeOptions::new(0.1),
    )
    .unwrap();
    assert_eq!(c.dims(), &[3, 2]);
    assert!(v64(&c).iter().all(|v| *v == 0.0));
    let (c, s) = hist::hard_hist(&x, None, &e, Outside::Drop).unwrap();
    assert_eq!((v64(&c), v64(&s)), (vec![0.0, 0.0], vec![0.0, 0.0]));
}

fn is_op_error(r: anagrad::Result<Tensor>, needle: &str) {
    match r {
        Err(Error::Op { op, message }) => {
            assert!(
                message.contains(needle),
                "{op}: '{message}' lacks '{needle}'"
            )
        }
        Err(other) => panic!("expected Error::Op containing '{needle}', got {other}"),
        Ok(t) => panic!("expected an error containing '{needle}', got {t}"),
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let e = t64(&[0.0, 1.0, 2.0]);
    let x = t64(&[0.5, 1.5]);
    let w = t64(&[1.0, 1.0]);
    let o = BkdeOptions::new(0.1);
    is_op_error(
        hist::bkde(&t64(&[0.5, f64::NAN]), None, &e, &o),
        "values[1]",
    );
    is_op_error(
        hist::bkde(&t64(&[f64::INFINITY, 0.0]), None, &e, &o),
        "values[0]",
    );
    is_op_error(
        hist::bkde(&x, Some(&t64(&[1.0, f64::NEG_INFINITY])), &e, &o),
        "weights[1]",
    );
    is_op_error(
        hist::bkde(&x, Some(&t64(&[f64::NAN, 1.0])), &e, &o),
        "weights[0]",
    );
    is_op_error(
        hist::bkde(&x, None, &t64(&[0.0, 2.0, 1.0]), &o),
        "strictly increasing",
    );
    is_op_error(
        hist::bkde(&x, None, &t64(&[0.0, 1.0, 1.0]), &o),
        "strictly increasing",
    );
    is_op_error(hist::bkde(&x, None, &t64(&[0.0]), &o), "at least 2 edges");
    is_op_error(
        hist::bkde(&x, None, &t64(&[0.0, f64::NAN]), &o),
        "not finite",
    );
    for h in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        is_op_error(hist::bkde(&x, None, &e, &BkdeOptions::new(h)), "bandwidth");
    }
    is_op_error(
        hist::bkde(&x, None, &e, &BkdeOptions::new(0.1).window(0.0)),
        "window",
    );
    is_op_error(
        hist::bkde(&x, Some(&t64(&[1.0, 2.0, 3.0])), &e, &o),
        "shape",
    );
    is_op_error(
        hist::bkde(&x, None, &e.to_dtype(DType::F32).unwrap(), &o),
        "dtype",
    );
    is_op_error(
        hist::bkde(&x, Some(&w.to_dtype(DType::F32).unwrap()), &e, &o),
        "dtype",
    );
    is_op_error(
        hist::bkde(&x.to_dtype(DType::U32).unwrap(), None, &e, &o),
        "dtype",
    );
    is_op_error(hist::bkde(&x.reshape((1, 2)).unwrap(), None, &e, &o), "1-D");
    is_op_error(hist::bkde_multi(&x, None, &e, &o), "2-D");
    is_op_error(hist::bkde(&x, None, &e.reshape((1, 3)).unwrap(), &o), "1-D");
    is_op_error(
        hist::bkde(
            &x,
            Some(&t64(&[1.0, -1.0])),
            &e,
            &BkdeOptions::new(0.1).outside(Outside::Fold).density(true),
        ),
        "total mass",
    );
    is_op_error(hist::bkde_sumw2(&x, Some(&t64(&[1.0])), &e, &o), "shape");
    is_op_error(hist::bkde_list(&[], &e, &o), "no samples");
    match hist::hard_hist(&t64(&[f64::NAN]), None, &e, Outside::Drop) {
        Err(Error::Op { .. }) => {}
        other => panic!("hard_hist NaN: {other:?}"),
    }
}

/// A small candle-nn MLP (2 → 8 → 1, tanh, sigmoid) maps events to [0, 1];
/// the loss is a function of their bKDE. Its gradient w.r.t. every network
/// weight matches central finite differences.
#[test]
fn mlp_to_bkde_gradient_matches_finite_differences() {
    use candle_nn::{Linear, Module};
    let mut rng = StdRng::seed_from_u64(10);
    let n = 300;
    let feats: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-2.0..2.0)).collect();
    let xin = t64(&feats).reshape((n, 2)).unwrap();
    let w_ev: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
    let mut init = |len: usize, scale: f64| -> Vec<f64> {
        (0..len).map(|_| rng.random_range(-scale..scale)).collect()
    };
    let params: Vec<(Vec<f64>, Vec<usize>)> = vec![
        (init(16, 0.8), vec![8, 2]),
        (init(8, 0.3), vec![8]),
        (init(8, 0.8), vec![1, 8]),
        (init(1, 0.3), vec![1]),
    ];
    let edges = t64(&[0.0, 0.25, 0.5, 0.75, 1.0]);
    let target = t64(&[40.0, 90.0, 90.0, 80.0]);
    let opts = BkdeOptions::new(0.05).outside(Outside::Fold);
    let forward = |ps: &[Tensor]| -> Tensor {
        let l1 = Linear::new(ps[0].clone(), Some(ps[1].clone()));
        let l2 = Linear::new(ps[2].clone(), Some(ps[3].clone()));
        let hdn = l1.forward(&xin).unwrap().tanh().unwrap();
        let out = candle_nn::ops::sigmoid(&l2.forward(&hdn).unwrap())
            .unwrap()
            .squeeze(1)
            .unwrap();
        let counts = hist::bkde(&out, Some(&t64(&w_ev)), &edges, &opts).unwrap();
        // a smooth non-linear loss of the yields
        let d = (counts - &target).unwrap();
        (d.sqr().unwrap().sum_all().unwrap() / 100.0).unwrap()
    };
    let vars: Vec<Var> = params
        .iter()
        .map(|(v, s)| Var::from_tensor(&t64(v).reshape(s.as_slice()).unwrap()).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = forward(&tensors).backward().unwrap();
    for (k, (v, shape)) in params.iter().enumerate() {
        let an = v64(grads.get(vars[k].as_tensor()).unwrap());
        let fd: Vec<f64> = (0..v.len())
            .map(|i| {
                central(v, i, 1e-6, |p| {
                    let mut ps: Vec<Tensor> = params
                        .iter()
                        .map(|(v, s)| t64(v).reshape(s.as_slice()).unwrap())
                        .collect();
                    ps[k] = t64(p).reshape(shape.as_slice()).unwrap();
                    forward(&ps).to_scalar::<f64>().unwrap()
                })
            })
            .collect();
        assert_close(&format!("mlp param {k}"), &an, &fd, 1e-6);
    }
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let mut rng = StdRng::seed_from_u64(13);
    let e = clustered_edges();
    let h = 0.02;
    // several chunks, samples of different lengths (boundaries inside chunks)
    let lens = [9000usize, 3, 12000];
    let xs: Vec<Vec<f64>> = lens.iter().map(|&l| events(&mut rng, l, &e, h)).collect();
    let ws: Vec<Vec<f64>> = lens.iter().map(|&l| weights(&mut rng, l)).collect();
    let g: Vec<f64> = (0..lens.len() * (e.len() - 1))
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    for dtype in [DType::F64, DType::F32] {
        let run = || {
            let xv: Vec<Var> = xs
                .iter()
                .map(|x| Var::from_tensor(&t64(x).to_dtype(dtype).unwrap()).unwrap())
                .collect();
            let wv: Vec<Var> = ws
                .iter()
                .map(|w| Var::from_tensor(&t64(w).to_dtype(dtype).unwrap()).unwrap())
                .collect();
            let ev = Var::from_tensor(&t64(&e).to_dtype(dtype).unwrap()).unwrap();
            let samples: Vec<(&Tensor, Option<&Tensor>)> = xv
                .iter()
                .zip(&wv)
                .map(|(x, w)| (x.as_tensor(), Some(w.as_tensor())))
                .collect();
            let opts = BkdeOptions::new(h).outside(Outside::Fold);
            let c = hist::bkde_list(&samples, ev.as_tensor(), &opts).unwrap();
            let gt = t64(&g).to_dtype(dtype).unwrap().reshape(c.dims()).unwrap();
            let grads = (&c * gt).unwrap().sum_all().unwrap().backward().unwrap();
            let mut out = v64(&c);
            for v in xv.iter().chain(&wv).chain([&ev]) {
                out.extend(v64(grads.get(v.as_tensor()).unwrap()));
            }
            out
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(run);
        assert_eq!(one, three, "{dtype:?}");
    }
}
