//! Φ/φ against mpmath reference values (tests/fixtures/normal/generate.py).

use anagrad::ops::normal;
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/normal/reference.json"
    ))
    .expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn points(v: &Value, key: &str) -> Vec<[f64; 4]> {
    v[key]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            [
                p["x"].as_f64().expect("x"),
                p["cdf"].as_f64().expect("cdf"),
                p["sf"].as_f64().expect("sf"),
                p["pdf"].as_f64().expect("pdf"),
            ]
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs()
    }
}

#[test]
fn f64_relative_error_within_1e_14_for_abs_z_up_to_8() {
    let pts = points(&fixture(), "f64");
    let (mut max_cdf, mut max_sf, mut max_pdf) = (0.0f64, 0.0f64, 0.0f64);
    let mut n = 0;
    for [x, c, s, p] in &pts {
        if x.abs() > 8.0 {
            continue;
        }
        n += 1;
        max_cdf = max_cdf.max(rel(normal::cdf(*x), *c));
        max_sf = max_sf.max(rel(normal::sf(*x), *s));
        max_pdf = max_pdf.max(rel(normal::pdf(*x), *p));
    }
    println!("f64 |z|<=8 ({n} points): max rel err cdf {max_cdf:.2e}, sf {max_sf:.2e}, pdf {max_pdf:.2e}");
    assert!(n > 5000);
    assert!(max_cdf <= 1e-14, "cdf {max_cdf:e}");
    assert!(max_sf <= 1e-14, "sf {max_sf:e}");
    assert!(max_pdf <= 1e-14, "pdf {max_pdf:e}");
}

#[test]
fn f64_lower_tail_keeps_relative_accuracy_to_underflow() {
    let pts = points(&fixture(), "f64");
    let mut max_cdf = 0.0f64;
    let mut max_pdf = 0.0f64;
    let mut n = 0;
    for [x, c, _, p] in &pts {
        if *x >= -8.0 {
            continue;
        }
        n += 1;
        max_cdf = max_cdf.max(rel(normal::cdf(*x), *c));
        max_pdf = max_pdf.max(rel(normal::pdf(*x), *p));
        // the upper tail of the mirrored point is the same number
        assert_eq!(normal::sf(-x), normal::cdf(*x));
    }
    println!("f64 -37<z<-8 ({n} points): max rel err cdf {max_cdf:.2e}, pdf {max_pdf:.2e}");
    assert!(n > 250);
    assert!(max_cdf <= 1e-14, "tail cdf {max_cdf:e}");
    assert!(max_pdf <= 1e-14, "tail pdf {max_pdf:e}");
}

#[test]
fn f32_relative_error_within_5e_7() {
    let pts = points(&fixture(), "f32");
    let (mut max_cdf, mut max_sf, mut max_pdf) = (0.0f64, 0.0f64, 0.0f64);
    for [x, c, s, p] in &pts {
        if x.abs() > 8.0 {
            continue;
        }
        let x32 = *x as f32;
        assert_eq!(x32 as f64, *x, "fixture abscissa is an f32");
        max_cdf = max_cdf.max(rel(normal::cdf_f32(x32) as f64, *c));
        max_sf = max_sf.max(rel(normal::sf_f32(x32) as f64, *s));
        max_pdf = max_pdf.max(rel(normal::pdf_f32(x32) as f64, *p));
    }
    println!("f32 |z|<=8: max rel err cdf {max_cdf:.2e}, sf {max_sf:.2e}, pdf {max_pdf:.2e}");
    assert!(max_cdf <= 5e-7 && max_sf <= 5e-7 && max_pdf <= 5e-7);
}

#[test]
fn signed_tail_and_pdf_agree_with_cdf() {
    for k in -4000..=4000 {
        let x = k as f64 * 0.003;
        let (t, p) = normal::signed_tail_pdf(x);
        assert_eq!(t, normal::signed_tail(x));
        assert_eq!(p, normal::pdf(x));
        let want = if x <= 0.0 {
            normal::cdf(x)
        } else {
            normal::cdf(x) - 1.0
        };
        assert!((t - want).abs() <= 2e-16, "x={x}: {t} vs {want}");
        assert!(if x <= 0.0 { t >= 0.0 } else { t <= 0.0 });
    }
}

#[test]
fn special_values() {
    assert_eq!(normal::cdf(0.0), 0.5);
    assert_eq!(normal::cdf(f64::NEG_INFINITY), 0.0);
    assert_eq!(normal::cdf(f64::INFINITY), 1.0);
    assert_eq!(normal::pdf(f64::INFINITY), 0.0);
    assert_eq!(normal::cdf(-50.0), 0.0);
    assert!(normal::cdf(f64::NAN).is_nan());
    assert!(normal::pdf(f64::NAN).is_nan());
    assert!(normal::signed_tail(f64::NAN).is_nan());
    // monotone across the range boundaries of the approximation
    let mut prev = 0.0;
    for k in -40000..=40000 {
        let c = normal::cdf(k as f64 * 2e-4);
        assert!(c >= prev);
        prev = c;
    }
    let xs = [-1.0, 0.0, 2.0];
    let mut out = [0.0; 3];
    normal::cdf_slice(&xs, &mut out);
    assert_eq!(out, [normal::cdf(-1.0), 0.5, normal::cdf(2.0)]);
    normal::pdf_slice(&xs, &mut out);
    assert_eq!(out[1], normal::FRAC_1_SQRT_2PI);
}

#[test]
fn batch_evaluator_matches_mpmath_and_scalar() {
    let pts = points(&fixture(), "f64");
    let z: Vec<f64> = pts
        .iter()
        .map(|p| p[0])
        .filter(|x| x.abs() <= 37.5)
        .collect();
    let mut t = vec![0.0; z.len()];
    let mut p = vec![0.0; z.len()];
    normal::signed_tail_pdf_batch(&z, &mut t, &mut p);
    let (mut max_t, mut max_p, mut max_tail) = (0.0f64, 0.0f64, 0.0f64);
    for (k, [x, c, s, d]) in pts.iter().filter(|p| p[0].abs() <= 37.5).enumerate() {
        assert_eq!(z[k], *x);
        // the signed tail is the smaller of Φ and 1 − Φ, with a sign
        let want = if *x <= 0.0 { *c } else { -*s };
        let e = rel(t[k], want);
        max_p = max_p.max(rel(p[k], *d));
        if x.abs() <= 6.0 {
            max_t = max_t.max(e);
        } else {
            // far tails: what matters in a sum of kernel masses is the
            // absolute error, which stays far below an ulp of 1
            assert!(
                (t[k] - want).abs() <= 1e-25 + 1e-7 * want.abs(),
                "x={x}: {} vs {want}",
                t[k]
            );
            if x.abs() <= 10.0 {
                max_tail = max_tail.max(e);
            }
        }
    }
    println!("batch: max rel err tail |z|<=6 {max_t:.2e}, 6<|z|<=10 {max_tail:.2e}; pdf |z|<=37.5 {max_p:.2e}");
    assert!(max_t <= 1e-14 && max_p <= 1e-14 && max_tail <= 1e-10);
    // beyond the documented range both are 0; odd lengths and empty input work
    let mut t = [1.0; 3];
    let mut p = [1.0; 3];
    normal::signed_tail_pdf_batch(&[-40.0, 40.0, 0.0], &mut t, &mut p);
    assert_eq!(t, [0.0, 0.0, 0.5]);
    assert_eq!(p[..2], [0.0, 0.0]);
    normal::signed_tail_pdf_batch(&[], &mut [], &mut []);
}

#[test]
fn f32_batch_evaluator_matches_mpmath() {
    let v = fixture();
    // f64 abscissae exercise the correction for rounding z to f32
    for key in ["f64", "f32"] {
        let pts = points(&v, key);
        let z: Vec<f64> = pts.iter().map(|p| p[0]).collect();
        let mut t = vec![0.0; z.len()];
        let mut p = vec![0.0; z.len()];
        normal::signed_tail_pdf_batch_f32(&z, &mut t, &mut p);
        let (mut max_t, mut max_p, mut max_far) = (0.0f64, 0.0f64, 0.0f64);
        let mut n = 0;
        for (k, [x, c, s, d]) in pts.iter().enumerate() {
            let want = if *x <= 0.0 { *c } else { -*s };
            if x.abs() <= 8.0 {
                n += 1;
                max_t = max_t.max(rel(t[k], want));
                max_p = max_p.max(rel(p[k], *d));
            } else if x.abs() <= 12.0 {
                max_far = max_far.max(rel(t[k], want)).max(rel(p[k], *d));
            } else if x.abs() > 12.5 {
                assert_eq!((t[k], p[k]), (0.0, 0.0), "x={x}");
            }
        }
        println!("batch f32 ({key} abscissae): max rel err |z|<=8 tail {max_t:.2e}, pdf {max_p:.2e}; 8<|z|<=12 {max_far:.2e}");
        assert!(n > 1000);
        assert!(max_t <= 5e-7 && max_p <= 5e-7, "{key}: {max_t:e} {max_p:e}");
        assert!(max_far <= 1e-6, "{key}: {max_far:e}");
    }
    // limits, the sign of the tail at 0, odd lengths and empty input
    let mut t = [1.0; 5];
    let mut p = [1.0; 5];
    let z = [f64::NEG_INFINITY, f64::INFINITY, 0.0, 1e-300, -1e-300];
    normal::signed_tail_pdf_batch_f32(&z, &mut t, &mut p);
    assert_eq!(t[..3], [0.0, 0.0, 0.5]);
    assert_eq!(p[..2], [0.0, 0.0]);
    assert!(t[3] < -0.49 && t[4] > 0.49, "{t:?}");
    normal::signed_tail_pdf_batch_f32(&[], &mut [], &mut []);
}

#[test]
fn f32_batch_dense_scan_against_f64() {
    // between the fixture's points: the f64 scalar functions (≲ 1e-15
    // relative, tested above) as reference on a fine grid
    let z: Vec<f64> = (-400_000..=400_000)
        .map(|k| k as f64 * 2e-5 + 1e-7)
        .collect();
    let mut t = vec![0.0; z.len()];
    let mut p = vec![0.0; z.len()];
    normal::signed_tail_pdf_batch_f32(&z, &mut t, &mut p);
    let (mut max_t, mut max_p, mut at) = (0.0f64, 0.0f64, 0.0);
    for (k, &x) in z.iter().enumerate() {
        let (wt, wp) = normal::signed_tail_pdf(x);
        if rel(t[k], wt) > max_t {
            at = x;
        }
        max_t = max_t.max(rel(t[k], wt));
        max_p = max_p.max(rel(p[k], wp));
    }
    println!("batch f32 dense |z|<=8: max rel err tail {max_t:.2e} (z={at}), pdf {max_p:.2e}");
    assert!(
        max_t <= 5e-7 && max_p <= 5e-7,
        "{max_t:e} at {at}, {max_p:e}"
    );
}
