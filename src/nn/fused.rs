//! A fused CPU kernel for the hidden layers of [`super::Mlp`]: `act(x·W + b)`
//! as one op — the matrix product (the `gemm` crate, as candle's), then bias
//! and activation in place in one parallel pass — with a backward of one
//! parallel activation-gradient pass, two matrix products and a parallel
//! bias-gradient reduction.
//!
//! Why: candle's unfused layer allocates and walks three (events × width)
//! tensors forward and about ten backward (`zeros_like`, a comparison, a cast,
//! products, gradient sums for every intermediate node), mostly
//! single-threaded. At the neos step (8000 × 1024, f32) those passes cost more
//! than the matrix products.
//!
//! Results do not depend on the number of threads: rows are split into
//! fixed-size chunks and the bias gradient sums chunk partials in order.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::Activation;
use crate::ops::cpu_slice;

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

/// `act(x·W + b)` for `x` (rows, fan_in), `W` (fan_in, fan_out), `b`
/// (fan_out). Falls back to candle's ops off the CPU, for an activation
/// that cannot be fused, or for dtypes other than f32/f64.
pub(crate) fn dense_act(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    act: Activation,
) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() || !fusable(act) || !matches!(x.dtype(), DType::F32 | DType::F64) {
        let z = x.matmul(w)?.broadcast_add(b)?;
        return match act {
            Activation::Relu => z.relu(),
            Activation::Tanh => z.tanh(),
            Activation::Silu => z.silu(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(&z),
        };
    }
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, DenseAct(act))
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

/// `out ← act(out + b)` row by row, in parallel.
fn bias_act_in_place<T: Elem>(out: &mut [T], b: &[T], act: Activation) {
    let width = b.len();
    // chunks hold whole rows so that the bias index is the offset mod width
    let rows_per = (ELEM_CHUNK / width).max(1);
    out.par_chunks_mut(rows_per * width).for_each(|o| {
        for row in o.chunks_exact_mut(width) {
            match act {
                // the hot case stays in T so that it vectorises
                Activation::Relu => {
                    for (o, &b) in row.iter_mut().zip(b) {
                        *o = (*o + b).relu();
                    }
                }
                _ => {
                    for (o, &b) in row.iter_mut().zip(b) {
                        *o = T::from_f64(act_fwd(act, (*o + b).to_f64()));
                    }
                }
            }
        }
    });
}

/// Row-major `x (m × k) · w (k × n)`, with the gemm crate's parallel kernels.
fn matmul<T: Elem>(x: &[T], w: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    let mut out = vec![T::zero(); m * n];
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three buffers hold m·k, k·n and m·n elements (checked by
    // the caller's shape checks), and the strides below address exactly
    // those row-major matrices; `out` does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            n as isize,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
    out
}

fn dense_act_typed<T: Elem>(x: &[T], w: &[T], b: &[T], k: usize, act: Activation) -> Vec<T> {
    let n = b.len();
    let m = x.len() / k;
    let mut out = matmul(x, w, m, k, n);
    bias_act_in_place(&mut out, b, act);
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

/// Forward op of [`dense_act`].
struct DenseAct(Activation);

impl CustomOp3 for DenseAct {
    fn name(&self) -> &'static str {
        "dense-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, fan_in) = l1.shape().dims2()?;
        let (k, fan_out) = l2.shape().dims2()?;
        if k != fan_in || l3.shape().dims() != [fan_out] {
            candle_core::bail!(
                "dense-act: shapes {:?} · {:?} + {:?} do not fit",
                l1.shape().dims(),
                l2.shape().dims(),
                l3.shape().dims()
            );
        }
        fn go<T: Elem>(
            act: Activation,
            fan_in: usize,
            x: (&CpuStorage, &Layout),
            w: (&CpuStorage, &Layout),
            b: (&CpuStorage, &Layout),
        ) -> candle_core::Result<CpuStorage> {
            let out = dense_act_typed(
                cpu_slice::<T>("dense-act", x)?,
                cpu_slice::<T>("dense-act", w)?,
                cpu_slice::<T>("dense-act", b)?,
                fan_in,
                act,
            );
            Ok(T::to_cpu_storage_owned(out))
        }
        let args = ((s1, l1), (s2, l2), (s3, l3));
        let out = match s1.dtype() {
            DType::F32 => go::<f32>(self.0, fan_in, args.0, args.1, args.2)?,
            DType::F64 => go::<f64>(self.0, fan_in, args.0, args.1, args.2)?,
            d => candle_core::bail!("dense-act: f32 or f64 inputs expected, got {d:?}"),
        };
        Ok((out, Shape::from((rows, fan_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gz = res.apply_op2_no_bwd(&grad_res.contiguous()?, &ActGrad(self.0))?;
        // gradients are values, not graphs: detach what the products record
        let gw = x.t()?.matmul(&gz)?.detach();
        // the network's input (event data) needs no gradient: skip that product
        let gx = if x.track_op() {
            Some(gz.matmul(&w.t()?)?.detach())
        } else {
            None
        };
        let gb = gz.apply_op1_no_bwd(&ColSum)?;
        Ok((gx, Some(gw), Some(gb)))
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
        fn go<T: Elem>(
            act: Activation,
            y: (&CpuStorage, &Layout),
            g: (&CpuStorage, &Layout),
        ) -> candle_core::Result<CpuStorage> {
            let out = act_grad_typed(
                cpu_slice::<T>("act-grad", y)?,
                cpu_slice::<T>("act-grad", g)?,
                act,
            );
            Ok(T::to_cpu_storage_owned(out))
        }
        let out = match s1.dtype() {
            DType::F32 => go::<f32>(self.0, (s1, l1), (s2, l2))?,
            DType::F64 => go::<f64>(self.0, (s1, l1), (s2, l2))?,
            d => candle_core::bail!("act-grad: f32 or f64 inputs expected, got {d:?}"),
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
        let out = match s.dtype() {
            DType::F32 => {
                CpuStorage::F32(col_sum_typed(cpu_slice::<f32>("col-sum", (s, l))?, width))
            }
            DType::F64 => {
                CpuStorage::F64(col_sum_typed(cpu_slice::<f64>("col-sum", (s, l))?, width))
            }
            d => candle_core::bail!("col-sum: f32 or f64 input expected, got {d:?}"),
        };
        Ok((out, Shape::from(width)))
    }
}
