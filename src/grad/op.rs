//! The one candle op every statistical loss uses: a scalar whose value and
//! gradient w.r.t. a flat f64 input vector were computed on the host before
//! the op was applied.
//!
//! Computing them *before* building the op (instead of inside `cpu_fwd`) keeps
//! our typed errors (`Error::FitFailed`, bad yields) as they are: candle can
//! only carry errors as strings.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use crate::{Error, Result};

/// A scalar loss whose value and (optional) gradient are already known.
struct Precomputed {
    name: &'static str,
    value: f64,
    grad: Option<Vec<f64>>,
}

impl CustomOp1 for Precomputed {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        _storage: &CpuStorage,
        _layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F64(vec![self.value]), Shape::from(())))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = self.grad.as_ref().ok_or_else(|| {
            candle_core::Error::msg(format!(
                "{}: the gradient was not computed because no input tracked gradients at the forward pass",
                self.name
            ))
        })?;
        let g = Tensor::from_slice(grad, arg.shape(), arg.device())?;
        Ok(Some(g.broadcast_mul(&grad_res.to_dtype(DType::F64)?)?))
    }
}

/// Input tensors gathered for a host-side loss: one flat f64 CPU tensor (on
/// the autograd tape, so its gradient flows back to every original tensor),
/// its values, and where the result has to go.
pub(crate) struct HostInputs {
    pub flat: Tensor,
    pub values: Vec<f64>,
    pub dtype: DType,
    pub device: Device,
    /// Whether any input is on the tape (otherwise no gradient is computed).
    pub track: bool,
}

/// Flattens, casts to f64 and moves to the CPU every tensor (differentiably)
/// and concatenates them.
pub(crate) fn host_inputs(what: &str, tensors: &[&Tensor]) -> Result<HostInputs> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::InvalidInput(format!("{what}: no input tensors")))?;
    let dtype = first.dtype();
    let device = first.device().clone();
    let mut parts = Vec::with_capacity(tensors.len());
    let mut track = false;
    for (i, t) in tensors.iter().enumerate() {
        if !t.dtype().is_float() {
            return Err(Error::InvalidInput(format!(
                "{what}: input {i} has dtype {:?}; a floating-point tensor is needed",
                t.dtype()
            )));
        }
        if !t.device().same_device(&device) {
            return Err(Error::InvalidInput(format!(
                "{what}: input {i} is on {:?} but input 0 is on {device:?}",
                t.device()
            )));
        }
        track |= t.track_op();
        let flat = t
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_device(&Device::Cpu)?;
        parts.push(flat);
    }
    let flat = if parts.len() == 1 {
        parts
            .pop()
            .ok_or_else(|| Error::InvalidInput(what.into()))?
    } else {
        Tensor::cat(&parts, 0)?
    };
    let values = flat.to_vec1::<f64>()?;
    Ok(HostInputs {
        flat,
        values,
        dtype,
        device,
        track,
    })
}

/// Puts a precomputed scalar loss on the tape of `inputs.flat`, in the dtype
/// and on the device of the original inputs.
pub(crate) fn scalar_loss(
    name: &'static str,
    inputs: &HostInputs,
    value: f64,
    grad: Option<Vec<f64>>,
) -> Result<Tensor> {
    if let Some(g) = &grad {
        if g.len() != inputs.values.len() {
            return Err(Error::InvalidInput(format!(
                "{name}: gradient has {} entries for {} inputs",
                g.len(),
                inputs.values.len()
            )));
        }
    }
    let out = inputs.flat.apply_op1(Precomputed { name, value, grad })?;
    Ok(out.to_dtype(inputs.dtype)?.to_device(&inputs.device)?)
}
