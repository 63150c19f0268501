//! Interpolation codes 0, 1, 2, 4 and 4p, exactly as `pyhf.interpolators`
//! (pyhf 0.7.6, α0 = 1 for code 4), generic over the scalar so that the same
//! code yields values and exact derivatives in α and in the templates.
//!
//! pyhf applies codes 1 and 4 to normsys (multiplicative factors) and codes
//! 0, 2 and 4p to histosys (additive deltas). For completeness the functions
//! here accept every code: a multiplicative code used additively gives
//! `nom·(factor(lo/nom, hi/nom) − 1)`, an additive one used multiplicatively
//! gives `1 + delta(lo, 1, hi)`; `Model::new` only allows pyhf's pairings.

use std::fmt;
use std::str::FromStr;

use num_dual::DualNum;

use crate::Error;

/// The scalar type every likelihood computation is generic over: `f64` or
/// any num-dual number over `f64`.
pub trait Scalar: DualNum<Primitive = f64> + Copy {}
impl<T: DualNum<Primitive = f64> + Copy> Scalar for T {}

/// HistFactory interpolation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterpCode {
    /// Piecewise linear (additive).
    Code0,
    /// Piecewise exponential (multiplicative).
    Code1,
    /// Quadratic inside |α| ≤ 1, linear outside (additive; pyhf's variant,
    /// which is discontinuous at |α| = 1).
    Code2,
    /// Exponential outside |α| ≥ 1, 6th-order polynomial inside (multiplicative).
    Code4,
    /// Linear outside |α| > 1, 6th-order polynomial inside (additive).
    Code4p,
}

impl InterpCode {
    /// The spelling used by pyhf and the CLI (`"code4p"`).
    pub fn as_str(self) -> &'static str {
        match self {
            InterpCode::Code0 => "code0",
            InterpCode::Code1 => "code1",
            InterpCode::Code2 => "code2",
            InterpCode::Code4 => "code4",
            InterpCode::Code4p => "code4p",
        }
    }
}

impl fmt::Display for InterpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InterpCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "code0" => InterpCode::Code0,
            "code1" => InterpCode::Code1,
            "code2" => InterpCode::Code2,
            "code4" => InterpCode::Code4,
            "code4p" => InterpCode::Code4p,
            _ => {
                return Err(Error::InvalidInput(format!(
                "unknown interpolation code '{s}' (expected code0, code1, code2, code4 or code4p)"
            )))
            }
        })
    }
}

/// pyhf's inverse of the code-4 boundary-condition matrix for α0 = 1.
const A_INV: [[f64; 6]; 6] = [
    [
        15.0 / 16.0,
        -15.0 / 16.0,
        -7.0 / 16.0,
        -7.0 / 16.0,
        1.0 / 16.0,
        -1.0 / 16.0,
    ],
    [
        3.0 / 2.0,
        3.0 / 2.0,
        -9.0 / 16.0,
        9.0 / 16.0,
        1.0 / 16.0,
        1.0 / 16.0,
    ],
    [
        -5.0 / 8.0,
        5.0 / 8.0,
        5.0 / 8.0,
        5.0 / 8.0,
        -1.0 / 8.0,
        1.0 / 8.0,
    ],
    [
        3.0 / -2.0,
        3.0 / -2.0,
        -7.0 / -8.0,
        7.0 / -8.0,
        -1.0 / 8.0,
        -1.0 / 8.0,
    ],
    [
        3.0 / 16.0,
        -3.0 / 16.0,
        -3.0 / 16.0,
        -3.0 / 16.0,
        1.0 / 16.0,
        -1.0 / 16.0,
    ],
    [
        1.0 / 2.0,
        1.0 / 2.0,
        -5.0 / 16.0,
        5.0 / 16.0,
        1.0 / 16.0,
        1.0 / 16.0,
    ],
];

/// Code-4 polynomial coefficients a1..a6 for relative variations `up = hi/nom`
/// and `dn = lo/nom` (pyhf: `A_inverse @ b`).
pub fn code4_coefficients<T: Scalar>(dn: T, up: T) -> [T; 6] {
    let lu = up.ln();
    let ld = dn.ln();
    let one = T::from(1.0);
    let b = [
        up - one,
        dn - one,
        lu * up,
        -(ld * dn),
        lu * lu * up,
        ld * ld * dn,
    ];
    let mut a = [T::from(0.0); 6];
    for (r, row) in A_INV.iter().enumerate() {
        let mut s = T::from(0.0);
        for c in 0..6 {
            s += b[c] * row[c];
        }
        a[r] = s;
    }
    a
}

/// Code 4 with precomputed coefficients (see [`code4_coefficients`]).
pub fn code4_with<T: Scalar>(alpha: T, dn: T, up: T, a: &[T; 6]) -> T {
    let x = alpha.re();
    if x >= 1.0 {
        up.powd(alpha.abs())
    } else if x > -1.0 {
        // 1 + Σ a_i α^i
        let mut p = alpha;
        let mut s = T::from(0.0);
        for ai in a.iter() {
            s += *ai * p;
            p *= alpha;
        }
        s + T::from(1.0)
    } else {
        dn.powd(alpha.abs())
    }
}

/// Multiplicative interpolation (normsys): the factor at `alpha` given the
/// factors `lo`, `hi` at α = −1, +1 (nominal 1).
pub fn factor<T: Scalar>(code: InterpCode, alpha: T, lo: T, hi: T) -> T {
    match code {
        InterpCode::Code1 => {
            if alpha.re() > 0.0 {
                hi.powd(alpha.abs())
            } else {
                lo.powd(alpha.abs())
            }
        }
        InterpCode::Code4 => code4_with(alpha, lo, hi, &code4_coefficients(lo, hi)),
        InterpCode::Code0 | InterpCode::Code2 | InterpCode::Code4p => {
            T::from(1.0) + delta(code, alpha, lo, T::from(1.0), hi)
        }
    }
}

/// Additive interpolation (histosys): the delta added to `nom` at `alpha`
/// given the templates `lo`, `hi` at α = −1, +1.
pub fn delta<T: Scalar>(code: InterpCode, alpha: T, lo: T, nom: T, hi: T) -> T {
    let x = alpha.re();
    match code {
        InterpCode::Code0 => {
            if x > 0.0 {
                alpha * (hi - nom)
            } else {
                alpha * (nom - lo)
            }
        }
        InterpCode::Code2 => {
            let half = 0.5;
            let a = (hi + lo) * half - nom;
            let b = (hi - lo) * half;
            if x > 1.0 {
                (b + a * 2.0) * (alpha - 1.0)
            } else if x >= -1.0 {
                a * alpha * alpha + b * alpha
            } else {
                // pyhf 0.7.6 (`alphasets + mask_off`): α (b − 2a), not the
                // (α + 1)(b − 2a) that would be continuous; checked against
                // pyhf's code2 interpolator (−3 at α = −2 below)
                (b - a * 2.0) * alpha
            }
        }
        InterpCode::Code4p => {
            let d_up = hi - nom;
            let d_dn = nom - lo;
            if x > 1.0 {
                alpha * d_up
            } else if x < -1.0 {
                alpha * d_dn
            } else {
                let s = (d_up + d_dn) * 0.5;
                let a = (d_up - d_dn) * 0.0625;
                let a2 = alpha * alpha;
                let tmp3 = a2 * ((a2 * 3.0 - 10.0) * a2 + 15.0);
                tmp3 * a + alpha * s
            }
        }
        InterpCode::Code1 | InterpCode::Code4 => {
            nom * (factor(code, alpha, lo / nom, hi / nom) - T::from(1.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_dual::Dual2_64;

    fn d2(code: InterpCode, mult: bool, a: f64) -> (f64, f64, f64) {
        let x = Dual2_64::new(a, 1.0, 0.0);
        let (lo, nom, hi) = (0.8, 1.0, 1.3);
        let r = if mult {
            factor(code, x, Dual2_64::from(lo), Dual2_64::from(hi))
        } else {
            delta(code, x, lo.into(), nom.into(), hi.into())
        };
        (r.re, r.v1, r.v2)
    }

    #[test]
    fn parse_codes() {
        for c in ["code0", "code1", "code2", "code4", "code4p"] {
            assert_eq!(c.parse::<InterpCode>().unwrap().as_str(), c);
        }
        assert!("code3".parse::<InterpCode>().is_err());
    }

    #[test]
    fn hand_computed_values() {
        // code1: (hi)^α, lo^(−α)
        assert!((factor::<f64>(InterpCode::Code1, 0.5, 0.8, 1.3) - 1.3f64.powf(0.5)).abs() < 1e-15);
        assert!((factor::<f64>(InterpCode::Code1, -2.0, 0.8, 1.3) - 0.64).abs() < 1e-15);
        // code0 linear
        assert!((delta::<f64>(InterpCode::Code0, 0.5, 8.0, 10.0, 13.0) - 1.5).abs() < 1e-15);
        assert!((delta::<f64>(InterpCode::Code0, -0.5, 8.0, 10.0, 13.0) + 1.0).abs() < 1e-15);
        // code2 inside: a α² + b α with a = 0.5, b = 2.5
        assert!(
            (delta::<f64>(InterpCode::Code2, 0.5, 8.0, 10.0, 13.0) - (0.125 + 1.25)).abs() < 1e-15
        );
        // pyhf's code2 outside: (b + 2a)(α − 1) above, α (b − 2a) below
        // (values from pyhf 0.7.6's interpolator: 3.5 and −3)
        assert!((delta::<f64>(InterpCode::Code2, 2.0, 8.0, 10.0, 13.0) - 3.5).abs() < 1e-15);
        assert!((delta::<f64>(InterpCode::Code2, -2.0, 8.0, 10.0, 13.0) - (-3.0)).abs() < 1e-15);
        // code4p: α(S + α A (15 + α²(−10 + 3α²))) inside, linear outside
        let (up, dn) = (3.0, 2.0);
        let (s, a) = (0.5 * (up + dn), 0.0625 * (up - dn));
        let al: f64 = 0.3;
        let want = al * (s + al * a * (15.0 + al * al * (-10.0 + al * al * 3.0)));
        assert!((delta::<f64>(InterpCode::Code4p, al, 8.0, 10.0, 13.0) - want).abs() < 1e-14);
        assert!((delta::<f64>(InterpCode::Code4p, 1.5, 8.0, 10.0, 13.0) - 4.5).abs() < 1e-15);
        assert!((delta::<f64>(InterpCode::Code4p, -1.5, 8.0, 10.0, 13.0) + 3.0).abs() < 1e-15);
        // code4 at 0 is 1 and outside is exponential
        assert!((factor::<f64>(InterpCode::Code4, 0.0, 0.8, 1.3) - 1.0).abs() < 1e-15);
        assert!((factor::<f64>(InterpCode::Code4, 1.7, 0.8, 1.3) - 1.3f64.powf(1.7)).abs() < 1e-14);
        assert!(
            (factor::<f64>(InterpCode::Code4, -1.7, 0.8, 1.3) - 0.8f64.powf(1.7)).abs() < 1e-14
        );
    }

    #[test]
    fn continuity_at_boundaries() {
        let eps = 1e-9;
        // code4 and code4p: value, first and second derivative continuous at ±1
        for (code, mult) in [(InterpCode::Code4, true), (InterpCode::Code4p, false)] {
            for b in [1.0, -1.0] {
                let l = d2(code, mult, b - eps);
                let r = d2(code, mult, b + eps);
                assert!((l.0 - r.0).abs() < 1e-8, "{code} value at {b}: {l:?} {r:?}");
                assert!((l.1 - r.1).abs() < 1e-7, "{code} d1 at {b}: {l:?} {r:?}");
                assert!((l.2 - r.2).abs() < 1e-6, "{code} d2 at {b}: {l:?} {r:?}");
            }
        }
        // code0/code1 continuous in value at 0 (kink in the derivative)
        for (code, mult) in [(InterpCode::Code0, false), (InterpCode::Code1, true)] {
            let l = d2(code, mult, -eps);
            let r = d2(code, mult, eps);
            assert!((l.0 - r.0).abs() < 1e-8);
        }
        // pyhf's code2 is continuous at 0 but jumps by a + b at α = 1
        let l = d2(InterpCode::Code2, false, 1.0 - eps);
        let r = d2(InterpCode::Code2, false, 1.0 + eps);
        let (a, b) = (0.5 * (1.3 + 0.8) - 1.0, 0.5 * (1.3 - 0.8));
        assert!(((l.0 - r.0) - (a + b)).abs() < 1e-8);
    }

    #[test]
    fn dual_derivatives_match_finite_differences() {
        for code in [InterpCode::Code0, InterpCode::Code2, InterpCode::Code4p] {
            for a in [-1.7, -0.6, 0.2, 0.9, 1.4] {
                let (_, d1, d2v) = d2(code, false, a);
                let h = 1e-5;
                let f = |x: f64| delta(code, x, 0.8, 1.0, 1.3);
                let fd1 = (f(a + h) - f(a - h)) / (2.0 * h);
                let fd2 = (f(a + h) - 2.0 * f(a) + f(a - h)) / (h * h);
                assert!((d1 - fd1).abs() < 1e-8, "{code} {a}");
                assert!((d2v - fd2).abs() < 1e-4, "{code} {a}");
            }
        }
        for code in [InterpCode::Code1, InterpCode::Code4] {
            for a in [-1.7, -0.6, 0.2, 0.9, 1.4] {
                let (_, d1, d2v) = d2(code, true, a);
                let h = 1e-5;
                let f = |x: f64| factor(code, x, 0.8, 1.3);
                let fd1 = (f(a + h) - f(a - h)) / (2.0 * h);
                let fd2 = (f(a + h) - 2.0 * f(a) + f(a - h)) / (h * h);
                assert!((d1 - fd1).abs() < 1e-8, "{code} {a}");
                assert!((d2v - fd2).abs() < 1e-4, "{code} {a}");
            }
        }
    }
}
