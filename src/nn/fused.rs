//! Fused CPU kernels for the dense layers of [`super::Mlp`]: bias + activation
//! in one pass forward, and activation-gradient and bias-gradient in parallel
//! passes backward.
//!
//! Why: candle's unfused layer `relu(x·W + b)` allocates and walks three
//! (events × width) tensors forward and about eight backward (`zeros_like`,
//! a comparison, a cast, products, gradient sums), mostly single-threaded. At
//! the neos step (8000 × 1024, f32) those passes cost more than the matrix
//! products. Here the matrix products stay candle's (parallel GEMM) and each
//! elementwise stage is one parallel pass with one output allocation.
//!
//! Results do not depend on the number of threads: rows are split into
//! fixed-size chunks and the bias gradient sums chunk partials in order.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::Activation;

/// Rows per parallel task of the bias-gradient reduction (fixed, so that the
/// summation order is too).
const ROW_CHUNK: usize = 256;

/// Elements per parallel task of the elementwise passes.
const ELEM_CHUNK: usize = 1 << 15;

/// Whether `act` can be fused: its derivative must follow from the output alone.
pub(crate) fn fusable(act: Activation) -> bool {
    matches!(
        act,
        Activation::Relu | Activation::Tanh | Activation::Sigmoid
    )
}

/// `act(h + b)` for `h` of shape (rows, width) and `b` of shape (width), one
/// pass, with backward through [`ActGrad`] and [`ColSum`]. Falls back to
/// candle's ops off the CPU or for an activation that cannot be fused.
pub(crate) fn bias_act(h: &Tensor, b: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    if !h.device().is_cpu() || !fusable(act) || !matches!(h.dtype(), DType::F32 | DType::F64) {
        let z = h.broadcast_add(b)?;
        return match act {
            Activation::Relu => z.relu(),
            Activation::Tanh => z.tanh(),
            Activation::Silu => z.silu(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(&z),
        };
    }
    let h = h.contiguous()?;
    let b = b.contiguous()?;
    h.apply_op2(&b, BiasAct(act))
}

/// act(z) in f64 (the activations other than ReLU).
#[inline(always)]
fn act_fwd(act: Activation, z: f64) -> f64 {
    match act {
        Activation::Relu => z.max(0.0),
        Activation::Tanh => z.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Silu => z / (1.0 + (-z).exp()),
    }
}

trait Elem: candle_core::WithDType + Send + Sync {
    fn relu(self) -> Self;
    fn positive(self) -> bool;
}

impl Elem for f32 {
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(0.0)
    }
    #[inline(always)]
    fn positive(self) -> bool {
        self > 0.0
    }
}

impl Elem for f64 {
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(0.0)
    }
    #[inline(always)]
    fn positive(self) -> bool {
        self > 0.0
    }
}

fn bias_act_typed<T: Elem>(h: &[T], b: &[T], act: Activation) -> Vec<T> {
    let width = b.len();
    let mut out = vec![T::zero(); h.len()];
    // chunks hold whole rows so that the bias index is the offset mod width
    let rows_per = (ELEM_CHUNK / width).max(1);
    out.par_chunks_mut(rows_per * width)
        .zip(h.par_chunks(rows_per * width))
        .for_each(|(o, h)| {
            for (orow, hrow) in o.chunks_exact_mut(width).zip(h.chunks_exact(width)) {
                match act {
                    // the hot case stays in T so that it vectorises
                    Activation::Relu => {
                        for ((o, &h), &b) in orow.iter_mut().zip(hrow).zip(b) {
                            *o = (h + b).relu();
                        }
                    }
                    _ => {
                        for ((o, &h), &b) in orow.iter_mut().zip(hrow).zip(b) {
                            *o = T::from_f64(act_fwd(act, (h + b).to_f64()));
                        }
                    }
                }
            }
        });
    out
}

fn act_grad_typed<T: Elem>(y: &[T], g: &[T], act: Activation) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    out.par_chunks_mut(ELEM_CHUNK)
        .zip(y.par_chunks(ELEM_CHUNK).zip(g.par_chunks(ELEM_CHUNK)))
        .for_each(|(o, (y, g))| match act {
            Activation::Relu => {
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = if y.positive() { g } else { T::zero() };
                }
            }
            Activation::Tanh => {
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = g * (T::one() - y * y);
                }
            }
            _ => {
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = g * y * (T::one() - y);
                }
            }
        });
    out
}

fn col_sum_typed<T: Elem>(g: &[T], width: usize) -> Vec<T> {
    let partial: Vec<Vec<f64>> = g
        .par_chunks(ROW_CHUNK * width)
        .map(|c| {
            let mut acc = vec![0.0f64; width];
            for row in c.chunks_exact(width) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v.to_f64();
                }
            }
            acc
        })
        .collect();
    let mut acc = vec![0.0f64; width];
    for p in &partial {
        for (a, v) in acc.iter_mut().zip(p) {
            *a += v;
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}

fn contiguous<'a, T>(s: &'a [T], l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

/// Forward op of [`bias_act`].
struct BiasAct(Activation);

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, width) = l1.shape().dims2()?;
        if l2.shape().dims() != [width] {
            candle_core::bail!(
                "bias-act: bias of shape {:?} for width {width}",
                l2.shape().dims()
            );
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(h), CpuStorage::F32(b)) => CpuStorage::F32(bias_act_typed(
                contiguous(h, l1, "bias-act")?,
                contiguous(b, l2, "bias-act")?,
                self.0,
            )),
            (CpuStorage::F64(h), CpuStorage::F64(b)) => CpuStorage::F64(bias_act_typed(
                contiguous(h, l1, "bias-act")?,
                contiguous(b, l2, "bias-act")?,
                self.0,
            )),
            _ => candle_core::bail!("bias-act: f32 or f64 inputs of one dtype expected"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _h: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let gz = res.apply_op2_no_bwd(&grad_res.contiguous()?, &ActGrad(self.0))?;
        let gb = gz.apply_op1_no_bwd(&ColSum)?;
        Ok((Some(gz), Some(gb)))
    }
}

/// g ⊙ act'(z), with act'(z) computed from y = act(z).
struct ActGrad(Activation);

impl CustomOp2 for ActGrad {
    fn name(&self) -> &'static str {
        "act-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("act-grad: shapes {:?} and {:?}", l1.shape(), l2.shape());
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(y), CpuStorage::F32(g)) => CpuStorage::F32(act_grad_typed(
                contiguous(y, l1, "act-grad")?,
                contiguous(g, l2, "act-grad")?,
                self.0,
            )),
            (CpuStorage::F64(y), CpuStorage::F64(g)) => CpuStorage::F64(act_grad_typed(
                contiguous(y, l1, "act-grad")?,
                contiguous(g, l2, "act-grad")?,
                self.0,
            )),
            _ => candle_core::bail!("act-grad: f32 or f64 inputs of one dtype expected"),
        };
        Ok((out, l1.shape().clone()))
    }
}

/// Column sums of a (rows, width) tensor, accumulated in f64.
struct ColSum;

impl CustomOp1 for ColSum {
    fn name(&self) -> &'static str {
        "col-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, width) = l.shape().dims2()?;
        let out = match s {
            CpuStorage::F32(g) => {
                CpuStorage::F32(col_sum_typed(contiguous(g, l, "col-sum")?, width))
            }
            CpuStorage::F64(g) => {
                CpuStorage::F64(col_sum_typed(contiguous(g, l, "col-sum")?, width))
            }
            _ => candle_core::bail!("col-sum: f32 or f64 input expected"),
        };
        Ok((out, Shape::from(width)))
    }
}
