//! Adam (Kingma & Ba 2015) on candle `Var`s, with per-group learning rates
//! and a state that can be saved and restored exactly (candle-nn's AdamW
//! keeps its moments private, so checkpoints could not resume from it).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
}

/// Adam over a fixed list of variables, each with its own learning rate.
#[derive(Debug)]
pub struct Adam {
    params: AdamParams,
    vars: Vec<Var>,
    lrs: Vec<f64>,
    /// Number of updates of each variable (a variable without a gradient
    /// in a step is not updated and keeps its count).
    t: Vec<u64>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    /// Zero moments for `vars` (pairs of variable and learning rate).
    pub fn new(vars: Vec<(Var, f64)>, params: AdamParams) -> Result<Self> {
        let mut m = Vec::with_capacity(vars.len());
        let mut v = Vec::with_capacity(vars.len());
        for (var, _) in &vars {
            m.push(var.zeros_like()?);
            v.push(var.zeros_like()?);
        }
        let n = vars.len();
        let (vars, lrs) = vars.into_iter().unzip();
        Ok(Adam {
            params,
            vars,
            lrs,
            t: vec![0; n],
            m,
            v,
        })
    }

    /// The variables, in order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// One update from `grads`; variables without a gradient are skipped.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let AdamParams { beta1, beta2, eps } = self.params;
        for i in 0..self.vars.len() {
            let Some(g) = grads.get(self.vars[i].as_tensor()) else {
                continue;
            };
            // A leaf's gradient still records the ops that made it (products with
            // the step's activations); the moments must not, or each step's whole
            // graph would stay alive through them (~80 MB per neos step).
            let g = &g.detach();
            self.t[i] += 1;
            let t = self.t[i] as i32;
            let m = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let mhat = (&m * (1.0 / (1.0 - beta1.powi(t))))?;
            let vhat = (&v * (1.0 / (1.0 - beta2.powi(t))))?;
            let upd = (mhat / (vhat.sqrt()? + eps)?)?;
            let new = (self.vars[i].as_tensor() - (upd * self.lrs[i])?)?;
            self.vars[i].set(&new)?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// The state: per variable (update count, first moment, second moment).
    pub fn state(&self) -> (Vec<u64>, Vec<Tensor>, Vec<Tensor>) {
        (self.t.clone(), self.m.clone(), self.v.clone())
    }

    /// Restores a state saved with [`Self::state`].
    pub fn set_state(&mut self, t: Vec<u64>, m: Vec<Tensor>, v: Vec<Tensor>) -> Result<()> {
        let n = self.vars.len();
        if t.len() != n || m.len() != n || v.len() != n {
            return Err(Error::InvalidInput(format!(
                "adam: state for {}/{}/{} variables, the optimiser has {n}",
                t.len(),
                m.len(),
                v.len()
            )));
        }
        for (i, (mi, vi)) in m.iter().zip(&v).enumerate() {
            let d = self.vars[i].dims();
            if mi.dims() != d || vi.dims() != d {
                return Err(Error::InvalidInput(format!(
                    "adam: moment shapes {:?}/{:?} for variable {i} of shape {d:?}",
                    mi.dims(),
                    vi.dims()
                )));
            }
        }
        let dev = self.vars.first().map(|v| v.device().clone());
        let to = |x: Vec<Tensor>| -> Result<Vec<Tensor>> {
            x.into_iter()
                .zip(&self.vars)
                .map(|(t, var)| {
                    let t = t.to_dtype(var.dtype())?;
                    Ok(match &dev {
                        Some(d) => t.to_device(d)?,
                        None => t,
                    })
                })
                .collect()
        };
        self.m = to(m)?;
        self.v = to(v)?;
        self.t = t;
        Ok(())
    }
}
