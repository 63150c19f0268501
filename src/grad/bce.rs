//! Binary cross-entropy on event-level classifier scores: the baseline that
//! neos compares its inference-aware objective against.
//!
//! Signal events have label 1, background events label 0, and the loss is the
//! mean over all events. With systematic augmentation (neos's "BCE with
//! augmentation") the background consists of the nominal *and* the up/down
//! variation samples, so the classifier also learns to reject the variations.
//!
//! Composed from candle ops (elementwise, exact enough: the only rounding
//! beyond f64/f32 arithmetic is ln(1 + e^{−|z|}) instead of log1p, an absolute
//! error below 1 ulp of 1).

use candle_core::Tensor;

use crate::{Error, Result};

/// What the network outputs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BceScores {
    /// Raw logits z (probability sigmoid(z)); numerically stable form
    /// max(z, 0) − z·y + ln(1 + e^{−|z|}).
    Logits,
    /// Probabilities p ∈ [0, 1] (e.g. after a sigmoid output layer); each
    /// log is clamped at −100 as torch's `BCELoss` does, so p = 0 or 1 gives a
    /// large finite loss instead of infinity.
    Probabilities,
}

fn check(what: &str, t: &Tensor) -> Result<Tensor> {
    if !t.dtype().is_float() {
        return Err(Error::InvalidInput(format!(
            "bce: {what} scores have dtype {:?}; floating point needed",
            t.dtype()
        )));
    }
    Ok(t.flatten_all()?)
}

/// Sum over events of the per-event loss for a fixed label.
fn summed(z: &Tensor, label: f64, scores: BceScores) -> Result<Tensor> {
    let per_event = match scores {
        BceScores::Logits => {
            // max(z,0) − z·y + ln(1 + exp(−|z|))
            let soft = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
            z.relu()?.sub(&z.affine(label, 0.0)?)?.add(&soft)?
        }
        BceScores::Probabilities => {
            let p = if label > 0.5 {
                z.clone()
            } else {
                z.affine(-1.0, 1.0)?
            };
            p.log()?.maximum(-100.0)?.neg()?
        }
    };
    Ok(per_event.sum_all()?)
}

/// Mean binary cross-entropy of `signal` (label 1) and every tensor in
/// `backgrounds` (label 0), each event weighted equally.
///
/// Without augmentation pass `&[nominal]`; with neos's augmentation pass
/// `&[nominal, up, down]`. The result has the dtype and device of the inputs.
pub fn bce(signal: &Tensor, backgrounds: &[&Tensor], scores: BceScores) -> Result<Tensor> {
    let s = check("signal", signal)?;
    let mut n = s.elem_count();
    let mut total = summed(&s, 1.0, scores)?;
    for (i, b) in backgrounds.iter().enumerate() {
        let b = check(&format!("background {i}"), b)?;
        if b.dtype() != s.dtype() {
            return Err(Error::InvalidInput(format!(
                "bce: background {i} has dtype {:?} but the signal has {:?}",
                b.dtype(),
                s.dtype()
            )));
        }
        n += b.elem_count();
        total = total.add(&summed(&b, 0.0, scores)?)?;
    }
    if n == 0 {
        return Err(Error::InvalidInput("bce: no events".into()));
    }
    Ok(total.affine(1.0 / n as f64, 0.0)?)
}
