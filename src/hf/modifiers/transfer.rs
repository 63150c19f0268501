//! transferfactor (anagrad extension, not pyhf): a smooth per-bin factor
//! `TF(u, v; c)` evaluated at each bin's scaled coordinates, the
//! control-region → signal-region transfer function of 2DAlphabet /
//! rhalphalib. A pass-region sample that shares the fail region's free
//! per-bin yields (a `shapefactor` or `logshapefactor` of the same name)
//! and carries this modifier predicts the pass region from the fail region.
//!
//! `η_b = Σ_k c_k φ_k(u_b, v_b)` with `φ_k` a product of 1-D polynomial,
//! Bernstein or Chebyshev basis functions (independent orders per axis);
//! the factor is `mc_b · η_b` (linear) or `mc_b · exp(η_b)` (positive
//! without clamps, as rabbit's SmoothABCD). With a `{mean, cov}` constraint
//! (rhalphalib's two-step TF_MC) the parameters are decorrelated unit
//! Gaussians `z` with `c = mean + L z`, `L` the Cholesky factor of `cov`.

use super::{ConstraintType, Defaults};

/// Type-level defaults; inits and bounds depend on the basis and form
/// ([`TransferSpec::inits`], [`TransferSpec::bounds`]).
pub const DEFAULTS: Defaults = Defaults {
    init: None,
    bounds: None,
    constraint: ConstraintType::Unconstrained,
    aux: None,
};

/// The 1-D basis family of a transfer function (the same on every axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `u^i`.
    Polynomial,
    /// `C(n, i) u^i (1 − u)^(n − i)`: coefficients ≥ 0 give a positive TF.
    Bernstein,
    /// `T_i(2u − 1)`.
    Chebyshev,
}

impl Basis {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Polynomial => "polynomial",
            Basis::Bernstein => "bernstein",
            Basis::Chebyshev => "chebyshev",
        }
    }

    /// Parses the JSON spelling.
    pub fn parse(s: &str) -> Option<Basis> {
        Some(match s {
            "polynomial" => Basis::Polynomial,
            "bernstein" => Basis::Bernstein,
            "chebyshev" => Basis::Chebyshev,
            _ => return None,
        })
    }

    /// The `order + 1` basis functions at `u ∈ [0, 1]`.
    pub fn eval(self, order: usize, u: f64) -> Vec<f64> {
        match self {
            Basis::Polynomial => (0..=order).map(|i| u.powi(i as i32)).collect(),
            Basis::Bernstein => {
                let mut binom = 1.0;
                (0..=order)
                    .map(|i| {
                        if i > 0 {
                            binom = binom * (order + 1 - i) as f64 / i as f64;
                        }
                        binom * u.powi(i as i32) * (1.0 - u).powi((order - i) as i32)
                    })
                    .collect()
            }
            Basis::Chebyshev => {
                let x = 2.0 * u - 1.0;
                let mut t = Vec::with_capacity(order + 1);
                for i in 0..=order {
                    t.push(match i {
                        0 => 1.0,
                        1 => x,
                        _ => 2.0 * x * t[i - 1] - t[i - 2],
                    });
                }
                t
            }
        }
    }
}

/// How the series becomes the factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `TF = mc · η`.
    Linear,
    /// `TF = mc · exp(η)`.
    Exp,
}

impl Form {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Linear => "linear",
            Form::Exp => "exp",
        }
    }
}

/// A Gaussian prior on the coefficients (e.g. from a fit to simulation),
/// applied through decorrelated unit-Gaussian parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct TfConstraint {
    /// Central coefficients.
    pub mean: Vec<f64>,
    /// Their covariance (symmetric positive definite).
    pub cov: Vec<Vec<f64>>,
}

/// The data of a `transferfactor` modifier.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferSpec {
    /// Basis family.
    pub basis: Basis,
    /// Polynomial order per coordinate axis (1 or 2 axes).
    pub order: Vec<usize>,
    /// Linear or exponentiated series.
    pub form: Form,
    /// Fixed per-bin factor TF_MC (default 1); an input of the model, so
    /// losses can differentiate w.r.t. it.
    pub mc: Option<Vec<f64>>,
    /// Optional Gaussian prior (decorrelated parameters).
    pub constraint: Option<TfConstraint>,
}

impl TransferSpec {
    /// Number of coefficients (parameters): `Π (order_i + 1)`.
    pub fn n_coefficients(&self) -> usize {
        self.order.iter().map(|o| o + 1).product()
    }

    /// Whether two declarations can share one parameter set (all but `mc`).
    pub fn same_parameters(&self, other: &TransferSpec) -> bool {
        self.basis == other.basis
            && self.order == other.order
            && self.form == other.form
            && self.constraint == other.constraint
    }

    /// Suggested inits: a constant TF of 1 (Bernstein linear: all 1;
    /// other linear bases: `c_0 = 1`; exp: all 0); 0 for decorrelated ones.
    pub fn inits(&self) -> Vec<f64> {
        let k = self.n_coefficients();
        if self.constraint.is_some() || self.form == Form::Exp {
            return vec![0.0; k];
        }
        match self.basis {
            Basis::Bernstein => vec![1.0; k],
            _ => {
                let mut v = vec![0.0; k];
                v[0] = 1.0;
                v
            }
        }
    }

    /// Suggested bounds: `[0, 100]` for linear Bernstein coefficients
    /// (positivity), `[-5, 5]` for decorrelated ones, `[-100, 100]` otherwise.
    pub fn bounds(&self) -> Vec<(f64, f64)> {
        let b = if self.constraint.is_some() {
            (-5.0, 5.0)
        } else if self.form == Form::Linear && self.basis == Basis::Bernstein {
            (0.0, 100.0)
        } else {
            (-100.0, 100.0)
        };
        vec![b; self.n_coefficients()]
    }

    /// The basis functions `φ_k` at scaled coordinates `u` (one per axis),
    /// `k = i_x·(o_y + 1) + i_y`.
    pub fn basis_row(&self, u: &[f64]) -> Vec<f64> {
        let mut row = vec![1.0];
        for (ax, &o) in self.order.iter().enumerate() {
            let f = self.basis.eval(o, u.get(ax).copied().unwrap_or(0.0));
            row = row
                .iter()
                .flat_map(|&r| f.iter().map(move |&x| r * x))
                .collect();
        }
        row
    }

    /// Lower Cholesky factor of the constraint covariance (row-major
    /// `K × K`), `None` when it is not positive definite.
    pub fn cholesky(c: &TfConstraint) -> Option<Vec<f64>> {
        let k = c.mean.len();
        let mut a: Vec<f64> = c.cov.iter().flatten().copied().collect();
        if a.len() != k * k || !crate::infer::linalg::cholesky(&mut a, k) {
            return None;
        }
        for i in 0..k {
            for j in i + 1..k {
                a[i * k + j] = 0.0;
            }
        }
        Some(a)
    }

    /// Per bin, the affine map from the parameters to `η`:
    /// `[a_b, w_b0, …, w_b(K−1)]` with `η_b = a_b + Σ_k w_bk p_k` (`a = 0`
    /// and `w = φ` without a constraint; `a = φ·mean`, `w = φ·L` with one).
    /// `None` when the constraint's covariance is not positive definite.
    pub fn affine_rows(&self, coords: &[Vec<f64>]) -> Option<Vec<f64>> {
        let k = self.n_coefficients();
        let decor = match &self.constraint {
            Some(c) => Some((c.mean.clone(), Self::cholesky(c)?)),
            None => None,
        };
        let mut out = Vec::with_capacity(coords.len() * (k + 1));
        for u in coords {
            let phi = self.basis_row(u);
            match &decor {
                None => {
                    out.push(0.0);
                    out.extend_from_slice(&phi);
                }
                Some((mean, l)) => {
                    out.push(phi.iter().zip(mean).map(|(p, m)| p * m).sum());
                    for j in 0..k {
                        out.push((j..k).map(|i| phi[i] * l[i * k + j]).sum());
                    }
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernstein_is_a_partition_of_unity() {
        for o in 0..6 {
            for &u in &[0.0, 0.13, 0.5, 0.97, 1.0] {
                let s: f64 = Basis::Bernstein.eval(o, u).iter().sum();
                assert!((s - 1.0).abs() < 1e-14, "order {o} u {u}: {s}");
            }
        }
    }

    #[test]
    fn chebyshev_matches_cosine_form() {
        for &u in &[0.0, 0.2, 0.5, 0.9, 1.0] {
            let x: f64 = 2.0 * u - 1.0;
            let t = Basis::Chebyshev.eval(5, u);
            for (i, ti) in t.iter().enumerate() {
                let want = (i as f64 * x.acos()).cos();
                assert!((ti - want).abs() < 1e-12, "T_{i}({x}) = {ti} vs {want}");
            }
        }
    }

    #[test]
    fn two_d_row_orders_y_fastest() {
        let s = TransferSpec {
            basis: Basis::Polynomial,
            order: vec![1, 2],
            form: Form::Linear,
            mc: None,
            constraint: None,
        };
        let r = s.basis_row(&[0.5, 0.25]);
        let want = [1.0, 0.25, 0.0625, 0.5, 0.125, 0.03125];
        assert_eq!(r.len(), 6);
        for (a, b) in r.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn decorrelated_rows_reproduce_the_mean_and_covariance() {
        let c = TfConstraint {
            mean: vec![0.3, -0.2],
            cov: vec![vec![0.04, 0.01], vec![0.01, 0.09]],
        };
        let s = TransferSpec {
            basis: Basis::Polynomial,
            order: vec![1],
            form: Form::Exp,
            mc: None,
            constraint: Some(c),
        };
        let rows = s.affine_rows(&[vec![0.7]]).unwrap();
        // η = 0.3 − 0.2·0.7; var η = φᵀ C φ = 0.04 + 2·0.7·0.01 + 0.49·0.09.
        assert!((rows[0] - 0.16).abs() < 1e-15);
        let var = rows[1] * rows[1] + rows[2] * rows[2];
        assert!((var - (0.04 + 0.014 + 0.0441)).abs() < 1e-15);
        let bad = TfConstraint {
            mean: vec![0.0, 0.0],
            cov: vec![vec![1.0, 2.0], vec![2.0, 1.0]],
        };
        assert!(TransferSpec::cholesky(&bad).is_none());
    }
}
