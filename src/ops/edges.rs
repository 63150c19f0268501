//! Learnable bin edges that stay monotone whatever the optimiser does: the
//! outer edges are fixed, the bin widths are a softmax of free logits (with a
//! floor) times the fixed range, and the edges are their cumulative sum.

use candle_core::{DType, Device, Tensor, Var};

use crate::ops::check;
use crate::Result;

/// Monotone, learnable bin edges on a fixed range `[lo, hi]`.
///
/// Bin fractions are p_b = ε/B + (1 − ε)·softmax(logits)_b and
/// `edges() = lo, lo + (hi−lo)·cumsum(p)[..B−1], hi`: every width is at least
/// ε·(hi−lo)/B (ε = [`Self::min_fraction`], default [`DEFAULT_MIN_FRACTION`]),
/// so inner edges move freely but never cross, collapse in floating point, or
/// leave the range. Optimise [`Self::var`] with any candle optimiser.
#[derive(Clone, Debug)]
pub struct LearnableEdges {
    lo: f64,
    hi: f64,
    min_fraction: f64,
    logits: Var,
}

/// Default floor ε of the bin fractions (see [`LearnableEdges`]).
pub const DEFAULT_MIN_FRACTION: f64 = 1e-4;

impl LearnableEdges {
    /// `n_bins` equal-width bins on `[lo, hi]` (all logits zero).
    pub fn uniform(lo: f64, hi: f64, n_bins: usize, dtype: DType, device: &Device) -> Result<Self> {
        const OP: &str = "learnable_edges";
        check_range(OP, lo, hi)?;
        if n_bins == 0 {
            return Err(check::err(OP, "need at least one bin"));
        }
        let logits = Var::zeros(n_bins, dtype, device)?;
        Ok(Self {
            lo,
            hi,
            min_fraction: DEFAULT_MIN_FRACTION,
            logits,
        })
    }

    /// Starts from the given strictly increasing edges (their outer edges
    /// become the fixed range), with the default floor; every bin must be
    /// wider than the floor ε·(hi−lo)/B.
    pub fn from_edges(edges: &[f64], dtype: DType, device: &Device) -> Result<Self> {
        Self::from_edges_with_floor(edges, DEFAULT_MIN_FRACTION, dtype, device)
    }

    /// [`Self::from_edges`] with an explicit floor ε ∈ [0, 1).
    pub fn from_edges_with_floor(
        edges: &[f64],
        min_fraction: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        const OP: &str = "learnable_edges";
        if !(0.0..1.0).contains(&min_fraction) {
            return Err(check::err(
                OP,
                format!("min_fraction must be in [0, 1), got {min_fraction}"),
            ));
        }
        let t = Tensor::new(edges, &Device::Cpu)?;
        let e = check::edges(OP, &t)?;
        let (lo, hi) = (e[0], e[e.len() - 1]);
        let nb = (e.len() - 1) as f64;
        let mut logits = Vec::with_capacity(e.len() - 1);
        for (b, p) in e.windows(2).enumerate() {
            let q = ((p[1] - p[0]) / (hi - lo) - min_fraction / nb) / (1.0 - min_fraction);
            if q <= 0.0 {
                return Err(check::err(
                    OP,
                    format!("bin {b} is narrower than the floor {min_fraction}·(hi−lo)/B"),
                ));
            }
            logits.push(q.ln());
        }
        let logits = Var::from_tensor(&Tensor::new(logits, device)?.to_dtype(dtype)?)?;
        Ok(Self {
            lo,
            hi,
            min_fraction,
            logits,
        })
    }

    /// The floor ε of the bin fractions.
    pub fn min_fraction(&self) -> f64 {
        self.min_fraction
    }

    /// The free parameters (B logits), to hand to an optimiser.
    pub fn var(&self) -> &Var {
        &self.logits
    }

    /// Number of bins B.
    pub fn n_bins(&self) -> usize {
        self.logits.elem_count()
    }

    /// Fixed outer edges (lo, hi).
    pub fn range(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    /// The B+1 edges as a tensor on the autograd tape (differentiable w.r.t.
    /// [`Self::var`]); the outer two are exactly `lo` and `hi`.
    pub fn edges(&self) -> Result<Tensor> {
        let b = self.n_bins();
        let dtype = self.logits.dtype();
        let dev = self.logits.device();
        let eps = self.min_fraction;
        let probs = ((candle_nn::ops::softmax(self.logits.as_tensor(), 0)? * (1.0 - eps))?
            + eps / b as f64)?;
        let lo = Tensor::new(&[self.lo], dev)?.to_dtype(dtype)?;
        let hi = Tensor::new(&[self.hi], dev)?.to_dtype(dtype)?;
        if b == 1 {
            return Ok(Tensor::cat(&[lo, hi], 0)?);
        }
        let inner = ((probs.narrow(0, 0, b - 1)?.cumsum(0)? * (self.hi - self.lo))? + self.lo)?;
        Ok(Tensor::cat(&[lo, inner, hi], 0)?)
    }

    /// Current edges as host f64 values.
    pub fn to_vec(&self) -> Result<Vec<f64>> {
        Ok(self.edges()?.to_dtype(DType::F64)?.to_vec1()?)
    }
}

fn check_range(op: &'static str, lo: f64, hi: f64) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(check::err(
            op,
            format!("need finite lo < hi, got [{lo}, {hi}]"),
        ));
    }
    Ok(())
}
