//! Structured symmetric solves for Newton steps.
//!
//! HistFactory Hessians are mostly "block arrowhead": a few global parameters
//! (normfactors, normsys, lumi, …) couple to everything, while per-bin
//! parameters (staterror, shapesys gammas) only couple to the other per-bin
//! parameters of the same bin and to the globals. [`Pattern::analyse`] finds
//! such a split (small diagonal blocks + a dense border) from the exact zeros
//! of the Hessian; [`Factor`] then eliminates the blocks by Schur complement
//! and factors the small border system by Cholesky. A general matrix gets a
//! border of all indices, i.e. a plain dense Cholesky.

/// Below this many unknowns a dense factorisation is as cheap as any analysis.
const DENSE_MAX: usize = 48;
/// Largest diagonal block the structured path accepts.
const BLOCK_MAX: usize = 16;

/// Split of the unknowns of a symmetric matrix into independent diagonal
/// blocks and a dense border coupled to everything.
///
/// Indices are positions in the sub-index list the pattern was built for.
#[derive(Debug, Clone)]
pub struct Pattern {
    m: usize,
    blocks: Vec<Vec<usize>>,
    border: Vec<usize>,
}

impl Pattern {
    /// Dense pattern: everything in the border.
    pub fn dense(m: usize) -> Self {
        Pattern {
            m,
            blocks: Vec::new(),
            border: (0..m).collect(),
        }
    }

    /// Number of unknowns.
    pub fn len(&self) -> usize {
        self.m
    }

    /// True when there are no unknowns.
    pub fn is_empty(&self) -> bool {
        self.m == 0
    }

    /// Number of border (dense) unknowns.
    pub fn border_len(&self) -> usize {
        self.border.len()
    }

    /// Analyse the sparsity of `H[idx, idx]` (`h` is `n × n`, row-major).
    ///
    /// Vertices are added to a union–find in order of increasing degree until
    /// a component would exceed `BLOCK_MAX`; the rest form the border. Falls
    /// back to [`Pattern::dense`] when that does not pay off.
    pub fn analyse(h: &[f64], n: usize, idx: &[usize]) -> Self {
        let m = idx.len();
        if m <= DENSE_MAX {
            return Self::dense(m);
        }
        // adjacency lists of the off-diagonal exact nonzeros; with `idx`
        // increasing, the upper triangle is a contiguous scan of each row
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); m];
        let increasing = idx.windows(2).all(|w| w[0] < w[1]);
        if increasing {
            let mut pos = vec![usize::MAX; n];
            for (a, &i) in idx.iter().enumerate() {
                pos[i] = a;
            }
            for (a, &i) in idx.iter().enumerate() {
                let row = &h[i * n + i + 1..(i + 1) * n];
                // mostly zeros: test 16 entries at a time (vectorises), then look closer
                for (c, chunk) in row.chunks(16).enumerate() {
                    if chunk.iter().fold(false, |acc, &v| acc | (v != 0.0)) {
                        for (off, &v) in chunk.iter().enumerate() {
                            if v != 0.0 {
                                let b = pos[i + 1 + 16 * c + off];
                                if b != usize::MAX {
                                    adj[a].push(b);
                                    adj[b].push(a);
                                }
                            }
                        }
                    }
                }
            }
        } else {
            for a in 0..m {
                let row = &h[idx[a] * n..idx[a] * n + n];
                for b in (a + 1)..m {
                    if row[idx[b]] != 0.0 {
                        adj[a].push(b);
                        adj[b].push(a);
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by_key(|&a| adj[a].len());
        let mut parent: Vec<usize> = (0..m).collect();
        let mut size = vec![1usize; m];
        let mut added = vec![false; m];
        fn find(parent: &mut [usize], mut a: usize) -> usize {
            while parent[a] != a {
                parent[a] = parent[parent[a]];
                a = parent[a];
            }
            a
        }
        let mut n_added = 0;
        'outer: for &v in &order {
            // the component v would join: v plus the distinct added neighbour roots
            let mut roots: Vec<usize> = Vec::new();
            let mut total = 1;
            for &w in &adj[v] {
                if added[w] {
                    let r = find(&mut parent, w);
                    if !roots.contains(&r) {
                        roots.push(r);
                        total += size[r];
                        if total > BLOCK_MAX {
                            break 'outer;
                        }
                    }
                }
            }
            added[v] = true;
            n_added += 1;
            for r in roots {
                let rv = find(&mut parent, v);
                if rv != r {
                    parent[r] = rv;
                    size[rv] += size[r];
                }
            }
        }
        let border: Vec<usize> = (0..m).filter(|&a| !added[a]).collect();
        if n_added == 0 || border.len() * 2 > m {
            return Self::dense(m);
        }
        let mut by_root: std::collections::HashMap<usize, usize> = Default::default();
        let mut blocks: Vec<Vec<usize>> = Vec::new();
        for (a, &is_added) in added.iter().enumerate() {
            if is_added {
                let r = find(&mut parent, a);
                let k = *by_root.entry(r).or_insert_with(|| {
                    blocks.push(Vec::new());
                    blocks.len() - 1
                });
                blocks[k].push(a);
            }
        }
        Pattern { m, blocks, border }
    }

    /// `sᵀ H[idx, idx] s` using only the entries the pattern allows to be
    /// nonzero (exact for the matrix it was built from).
    pub fn quad_form(&self, h: &[f64], n: usize, idx: &[usize], s: &[f64]) -> f64 {
        let at = |a: usize, b: usize| h[idx[a] * n + idx[b]];
        let mut acc = 0.0;
        for blk in &self.blocks {
            for &a in blk {
                if s[a] == 0.0 {
                    continue;
                }
                let mut row = 0.0;
                for &b in blk {
                    row += at(a, b) * s[b];
                }
                for &c in &self.border {
                    row += 2.0 * at(a, c) * s[c];
                }
                acc += s[a] * row;
            }
        }
        for &c in &self.border {
            if s[c] == 0.0 {
                continue;
            }
            let mut row = 0.0;
            for &d in &self.border {
                row += at(c, d) * s[d];
            }
            acc += s[c] * row;
        }
        acc
    }
}

/// In-place dense Cholesky of a `k × k` row-major matrix (lower triangle
/// used). Returns `false` if the matrix is not (numerically) positive definite.
pub(crate) fn cholesky(a: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in (j + 1)..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    true
}

/// Solve `L y = b` in place (`L` lower triangle of `l`, `k × k`).
fn forward(l: &[f64], k: usize, b: &mut [f64]) {
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= l[i * k + p] * b[p];
        }
        b[i] = s / l[i * k + i];
    }
}

/// Solve `Lᵀ x = y` in place.
fn backward(l: &[f64], k: usize, b: &mut [f64]) {
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in (i + 1)..k {
            s -= l[p * k + i] * b[p];
        }
        b[i] = s / l[i * k + i];
    }
}

/// Cholesky factorisation of `H[idx, idx] + diag(shift)` following a
/// [`Pattern`].
#[derive(Debug, Clone)]
pub struct Factor<'p> {
    pattern: &'p Pattern,
    /// Per block: its Cholesky factor (b × b).
    block_l: Vec<Vec<f64>>,
    /// Per block: `L_B⁻¹ H_BC` (b × c, row-major).
    block_x: Vec<Vec<f64>>,
    /// Cholesky factor of the border Schur complement (c × c).
    border_l: Vec<f64>,
}

impl<'p> Factor<'p> {
    /// Factor `H[idx, idx] + diag(shift)`; `None` if it is not positive
    /// definite (then increase the shift).
    pub fn new(
        pattern: &'p Pattern,
        h: &[f64],
        n: usize,
        idx: &[usize],
        shift: &[f64],
    ) -> Option<Factor<'p>> {
        let at = |a: usize, b: usize| h[idx[a] * n + idx[b]];
        let c = pattern.border.len();
        let mut schur = vec![0.0; c * c];
        for (i, &a) in pattern.border.iter().enumerate() {
            for (j, &b) in pattern.border.iter().enumerate() {
                schur[i * c + j] = at(a, b);
            }
            schur[i * c + i] += shift[a];
        }
        let mut block_l = Vec::with_capacity(pattern.blocks.len());
        let mut block_x = Vec::with_capacity(pattern.blocks.len());
        for blk in &pattern.blocks {
            let b = blk.len();
            let mut l = vec![0.0; b * b];
            for (i, &p) in blk.iter().enumerate() {
                for (j, &q) in blk.iter().enumerate() {
                    l[i * b + j] = at(p, q);
                }
                l[i * b + i] += shift[p];
            }
            if !cholesky(&mut l, b) {
                return None;
            }
            // X = L_B⁻¹ H_BC, column by column
            let mut x = vec![0.0; b * c];
            let mut col = vec![0.0; b];
            for (j, &q) in pattern.border.iter().enumerate() {
                for (i, &p) in blk.iter().enumerate() {
                    col[i] = at(p, q);
                }
                forward(&l, b, &mut col);
                for i in 0..b {
                    x[i * c + j] = col[i];
                }
            }
            // S -= Xᵀ X
            for i in 0..c {
                for j in 0..=i {
                    let mut s = 0.0;
                    for r in 0..b {
                        s += x[r * c + i] * x[r * c + j];
                    }
                    schur[i * c + j] -= s;
                    if i != j {
                        schur[j * c + i] -= s;
                    }
                }
            }
            block_l.push(l);
            block_x.push(x);
        }
        if !cholesky(&mut schur, c) {
            return None;
        }
        Some(Factor {
            pattern,
            block_l,
            block_x,
            border_l: schur,
        })
    }

    /// Solve `(H + diag(shift)) x = rhs` (both indexed like the sub-index list).
    pub fn solve(&self, rhs: &[f64]) -> Vec<f64> {
        let p = &self.pattern;
        let c = p.border.len();
        // Block LDLᵀ: with L_B L_Bᵀ = H_BB and X_B = L_B⁻¹ H_BC,
        // z_B = L_B⁻¹ r_B, S x_C = r_C − Σ X_Bᵀ z_B, x_B = L_B⁻ᵀ (z_B − X_B x_C).
        let mut zs: Vec<Vec<f64>> = Vec::with_capacity(p.blocks.len());
        let mut rc: Vec<f64> = p.border.iter().map(|&a| rhs[a]).collect();
        for (k, blk) in p.blocks.iter().enumerate() {
            let b = blk.len();
            let mut z: Vec<f64> = blk.iter().map(|&a| rhs[a]).collect();
            forward(&self.block_l[k], b, &mut z);
            let x = &self.block_x[k];
            for (j, r) in rc.iter_mut().enumerate() {
                let mut s = 0.0;
                for i in 0..b {
                    s += x[i * c + j] * z[i];
                }
                *r -= s;
            }
            zs.push(z);
        }
        forward(&self.border_l, c, &mut rc);
        backward(&self.border_l, c, &mut rc);
        let mut out = vec![0.0; p.m];
        for (j, &a) in p.border.iter().enumerate() {
            out[a] = rc[j];
        }
        for (k, blk) in p.blocks.iter().enumerate() {
            let b = blk.len();
            let x = &self.block_x[k];
            let z = &mut zs[k];
            for i in 0..b {
                let mut s = 0.0;
                for j in 0..c {
                    s += x[i * c + j] * rc[j];
                }
                z[i] -= s;
            }
            backward(&self.block_l[k], b, z);
            for (i, &a) in blk.iter().enumerate() {
                out[a] = z[i];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrowhead(m: usize) -> Vec<f64> {
        let mut h = vec![0.0; m * m];
        h[0] = 2.0 * m as f64;
        for i in 1..m {
            h[i * m + i] = 3.0 + i as f64 * 0.01;
            h[i] = 0.5;
            h[i * m] = 0.5;
        }
        h
    }

    #[test]
    fn structured_matches_dense() {
        let m = 120;
        let h = arrowhead(m);
        let idx: Vec<usize> = (0..m).collect();
        let pat = Pattern::analyse(&h, m, &idx);
        assert_eq!(pat.border_len(), 1);
        let shift = vec![0.1; m];
        let rhs: Vec<f64> = (0..m).map(|i| (i as f64).sin()).collect();
        let xs = Factor::new(&pat, &h, m, &idx, &shift).unwrap().solve(&rhs);
        let xd = Factor::new(&Pattern::dense(m), &h, m, &idx, &shift)
            .unwrap()
            .solve(&rhs);
        for i in 0..m {
            assert!((xs[i] - xd[i]).abs() < 1e-12, "{i}: {} {}", xs[i], xd[i]);
        }
        // residual of the structured solve
        for i in 0..m {
            let mut r = shift[i] * xs[i] - rhs[i];
            for j in 0..m {
                r += h[i * m + j] * xs[j];
            }
            assert!(r.abs() < 1e-12);
        }
        let q = pat.quad_form(&h, m, &idx, &rhs);
        let mut qd = 0.0;
        for i in 0..m {
            for j in 0..m {
                qd += rhs[i] * h[i * m + j] * rhs[j];
            }
        }
        assert!((q - qd).abs() < 1e-10 * qd.abs());
        // a non-increasing sub-index list takes the general scan
        let rev: Vec<usize> = (0..m).rev().collect();
        let pr = Pattern::analyse(&h, m, &rev);
        assert_eq!(pr.border_len(), 1);
        let rhs_rev: Vec<f64> = rev.iter().map(|&i| rhs[i]).collect();
        let xr = Factor::new(&pr, &h, m, &rev, &shift)
            .unwrap()
            .solve(&rhs_rev);
        for (k, &i) in rev.iter().enumerate() {
            assert!((xr[k] - xs[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn indefinite_is_rejected() {
        let m = 60;
        let mut h = arrowhead(m);
        h[5 * m + 5] = -1.0;
        let idx: Vec<usize> = (0..m).collect();
        let pat = Pattern::analyse(&h, m, &idx);
        assert!(Factor::new(&pat, &h, m, &idx, &vec![0.0; m]).is_none());
        assert!(Factor::new(&pat, &h, m, &idx, &vec![2.0; m]).is_some());
    }
}
