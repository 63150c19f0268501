//! Sigmoid cuts: smooth event weights σ(±slope·(x − threshold)) that tend to a
//! hard cut as the slope grows (the definition of `relaxed.cut`), composed
//! from candle ops so they are differentiable w.r.t. the data, the threshold
//! and the slope; products of cuts as event weights; and the hard twins for
//! evaluation.

use candle_core::{DType, Tensor};

use crate::ops::check;
use crate::Result;

/// Which side of the threshold a cut keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Keep x > threshold: weight σ(slope·(x − threshold)).
    Above,
    /// Keep x < threshold: weight σ(−slope·(x − threshold)).
    Below,
}

/// A sigmoid cut with tensor-valued threshold and slope (0-dim or
/// one-element tensors, e.g. candle `Var`s), so both can be learned.
#[derive(Clone, Debug)]
pub struct Cut {
    /// Cut position, in the units of the data.
    pub threshold: Tensor,
    /// Steepness (1/units of the data), > 0; the hard cut is slope → ∞.
    pub slope: Tensor,
    /// Side kept.
    pub keep: Keep,
}

impl Cut {
    /// A cut with constant threshold and slope of the given dtype on the
    /// data's device.
    pub fn constant(threshold: f64, slope: f64, keep: Keep, like: &Tensor) -> Result<Self> {
        Ok(Self {
            threshold: Tensor::new(threshold, like.device())?.to_dtype(like.dtype())?,
            slope: Tensor::new(slope, like.device())?.to_dtype(like.dtype())?,
            keep,
        })
    }

    /// Soft weights for `data` (any shape): see [`soft_cut`].
    pub fn weights(&self, data: &Tensor) -> Result<Tensor> {
        soft_cut(data, &self.threshold, &self.slope, self.keep)
    }

    /// Hard 0/1 weights at the current threshold: see [`hard_cut`].
    pub fn hard_weights(&self, data: &Tensor) -> Result<Tensor> {
        let thr = scalar("cut", "threshold", &self.threshold)?;
        hard_cut(data, thr, self.keep)
    }
}

/// Reads a 0-dim or one-element tensor as f64.
fn scalar(op: &'static str, what: &str, t: &Tensor) -> Result<f64> {
    if t.elem_count() != 1 {
        return Err(check::err(
            op,
            format!(
                "{what} must have exactly one element, got shape {:?}",
                t.dims()
            ),
        ));
    }
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0])
}

/// σ(slope·(x − threshold)) for [`Keep::Above`], σ(−slope·(x − threshold))
/// for [`Keep::Below`], element-wise over `data` (any shape). `threshold` and
/// `slope` are one-element tensors of the data's dtype; gradients flow to all
/// three. Computed as a numerically stable sigmoid (no overflow for large
/// |slope·(x − threshold)|).
pub fn soft_cut(data: &Tensor, threshold: &Tensor, slope: &Tensor, keep: Keep) -> Result<Tensor> {
    const OP: &str = "cut";
    let dtype = check::float_dtype(OP, "data", data)?;
    check::same_dtype(OP, dtype, &[("threshold", threshold), ("slope", slope)])?;
    check::same_device(OP, data, &[("threshold", threshold), ("slope", slope)])?;
    let thr = scalar(OP, "threshold", threshold)?;
    if !thr.is_finite() {
        return Err(check::err(
            OP,
            format!("threshold must be finite, got {thr}"),
        ));
    }
    check::positive(OP, "slope", scalar(OP, "slope", slope)?)?;
    check::finite(OP, "data", data)?;
    let thr = threshold.flatten_all()?.reshape(())?;
    let k = slope.flatten_all()?.reshape(())?;
    let arg = data.broadcast_sub(&thr)?.broadcast_mul(&k)?;
    let arg = match keep {
        Keep::Above => arg,
        Keep::Below => arg.neg()?,
    };
    Ok(candle_nn::ops::sigmoid(&arg)?)
}

/// Hard 0/1 weights: x ≥ threshold for [`Keep::Above`], x < threshold for
/// [`Keep::Below`] (the two partition the events). Not differentiable.
pub fn hard_cut(data: &Tensor, threshold: f64, keep: Keep) -> Result<Tensor> {
    const OP: &str = "hard_cut";
    let dtype = check::float_dtype(OP, "data", data)?;
    if !threshold.is_finite() {
        return Err(check::err(
            OP,
            format!("threshold must be finite, got {threshold}"),
        ));
    }
    check::finite(OP, "data", data)?;
    let mask = match keep {
        Keep::Above => data.ge(threshold)?,
        Keep::Below => data.lt(threshold)?,
    };
    Ok(mask.to_dtype(dtype)?)
}

/// Product of several weight tensors of the same shape (cuts on different
/// observables, or cut weights times event weights), differentiable.
pub fn product(weights: &[Tensor]) -> Result<Tensor> {
    const OP: &str = "cut_product";
    let (first, rest) = weights
        .split_first()
        .ok_or_else(|| check::err(OP, "no weights to multiply"))?;
    let dtype = check::float_dtype(OP, "weights[0]", first)?;
    let mut acc = first.clone();
    for (k, w) in rest.iter().enumerate() {
        if w.dims() != first.dims() {
            return Err(check::err(
                OP,
                format!(
                    "weights[{}] has shape {:?}, weights[0] has {:?}",
                    k + 1,
                    w.dims(),
                    first.dims()
                ),
            ));
        }
        check::same_dtype(OP, dtype, &[("weights", w)])?;
        acc = (acc * w)?;
    }
    Ok(acc)
}

/// Soft weights of several cuts, each on its own observable, multiplied:
/// Π_k σ(±slope_k·(x_k − threshold_k)).
pub fn soft_cuts(cuts: &[(&Tensor, &Cut)]) -> Result<Tensor> {
    let ws = cuts
        .iter()
        .map(|(x, c)| c.weights(x))
        .collect::<Result<Vec<_>>>()?;
    product(&ws)
}

/// Hard twin of [`soft_cuts`].
pub fn hard_cuts(cuts: &[(&Tensor, &Cut)]) -> Result<Tensor> {
    let ws = cuts
        .iter()
        .map(|(x, c)| c.hard_weights(x))
        .collect::<Result<Vec<_>>>()?;
    product(&ws)
}
