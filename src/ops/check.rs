//! Input validation shared by the event-level ops: every bad input becomes an
//! [`Error::Op`] naming the op and the offending argument.

use candle_core::{DType, Storage, Tensor};

use crate::{Error, Result};

pub(crate) fn err(op: &'static str, message: impl Into<String>) -> Error {
    Error::Op {
        op,
        message: message.into(),
    }
}

/// The tensor's dtype, which must be F32 or F64.
pub(crate) fn float_dtype(op: &'static str, what: &str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        d @ (DType::F32 | DType::F64) => Ok(d),
        d => Err(err(
            op,
            format!("{what} has dtype {d:?}; only f32 and f64 are supported"),
        )),
    }
}

/// All tensors share `dtype`.
pub(crate) fn same_dtype(op: &'static str, dtype: DType, others: &[(&str, &Tensor)]) -> Result<()> {
    for (what, t) in others {
        if t.dtype() != dtype {
            return Err(err(
                op,
                format!("{what} has dtype {:?} but the data are {dtype:?}; mixing dtypes is not supported", t.dtype()),
            ));
        }
    }
    Ok(())
}

/// All tensors live on the device of `first`.
pub(crate) fn same_device(
    op: &'static str,
    first: &Tensor,
    others: &[(&str, &Tensor)],
) -> Result<()> {
    for (what, t) in others {
        if !t.device().same_device(first.device()) {
            return Err(err(
                op,
                format!("{what} is on another device than the data"),
            ));
        }
    }
    Ok(())
}

/// Every element is finite (no NaN, no ±inf).
pub(crate) fn finite(op: &'static str, what: &str, t: &Tensor) -> Result<()> {
    if t.elem_count() == 0 {
        return Ok(());
    }
    let t = t.contiguous()?;
    let bad = {
        let (storage, layout) = t.storage_and_layout();
        match &*storage {
            Storage::Cpu(cpu) => {
                let (a, b) = layout
                    .contiguous_offsets()
                    .ok_or_else(|| err(op, format!("{what} is not contiguous")))?;
                match t.dtype() {
                    DType::F32 => {
                        first_non_finite(&cpu.as_slice::<f32>()?[a..b], |v| v.is_finite())
                    }
                    DType::F64 => {
                        first_non_finite(&cpu.as_slice::<f64>()?[a..b], |v| v.is_finite())
                    }
                    _ => None,
                }
                .map(|(i, v)| format!("{what}[{i}] = {v} is not finite"))
            }
            _ => None,
        }
    };
    if let Some(msg) = bad {
        return Err(err(op, msg));
    }
    if !t.device().is_cpu() {
        // x·0 summed is NaN iff some x is NaN or ±inf: one reduction on the device
        let probe = (t.flatten_all()? * 0.0)?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        if !probe.is_finite() {
            return Err(err(op, format!("{what} contains NaN or infinite values")));
        }
    }
    Ok(())
}

fn first_non_finite<V: Copy + std::fmt::Display>(
    xs: &[V],
    ok: impl Fn(V) -> bool,
) -> Option<(usize, String)> {
    xs.iter()
        .position(|&v| !ok(v))
        .map(|i| (i, xs[i].to_string()))
}

/// Bin edges as host f64: rank 1, at least two, finite, strictly increasing.
pub(crate) fn edges(op: &'static str, edges: &Tensor) -> Result<Vec<f64>> {
    if edges.rank() != 1 {
        return Err(err(
            op,
            format!("edges must be 1-D, got shape {:?}", edges.dims()),
        ));
    }
    let e: Vec<f64> = edges.to_dtype(DType::F64)?.to_vec1()?;
    if e.len() < 2 {
        return Err(err(
            op,
            format!("need at least 2 edges (1 bin), got {}", e.len()),
        ));
    }
    if let Some(i) = e.iter().position(|v| !v.is_finite()) {
        return Err(err(op, format!("edges[{i}] = {} is not finite", e[i])));
    }
    if let Some(i) = e.windows(2).position(|p| p[1] <= p[0]) {
        return Err(err(
            op,
            format!(
                "edges must be strictly increasing: edges[{i}] = {} >= edges[{}] = {}",
                e[i],
                i + 1,
                e[i + 1]
            ),
        ));
    }
    Ok(e)
}

/// A finite, strictly positive scalar parameter.
pub(crate) fn positive(op: &'static str, what: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(err(op, format!("{what} must be finite and > 0, got {v}")))
    }
}
