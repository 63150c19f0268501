//! Binned kernel-density-estimate (bKDE) histograms with exact gradients, and
//! the hard histogram they converge to as the bandwidth goes to zero.
//!
//! counts_b = Σ_i w_i [Φ((e_{b+1} − x_i)/h) − Φ((e_b − x_i)/h)], the same
//! definition as `relaxed.hist`. The op is a candle `CustomOp` (one fused O(N)
//! forward pass, one fused backward pass producing d/dx, d/dw and d/de
//! together), so it composes with candle's autograd: `loss.backward()` reaches
//! the events, their weights and the bin edges. CPU: rayon over events, f64
//! accumulation, kernel windowing ([`cpu`]); CUDA behind the `cuda` feature.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType};

use crate::ops::check;
use crate::Result;

/// Where the kernel mass below the first and above the last edge goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outside {
    /// Dropped (`relaxed.hist(reflect_infinities=False)`, the default).
    #[default]
    Drop,
    /// Folded into the first/last bin (`relaxed.hist(reflect_infinities=True)`):
    /// every event then contributes exactly its weight.
    Fold,
}

/// Options of the bKDE.
#[derive(Clone, Debug, PartialEq)]
pub struct BkdeOptions {
    /// Kernel bandwidth h (same units as the data), finite and > 0.
    pub bandwidth: f64,
    /// Treatment of the mass outside the outer edges.
    pub outside: Outside,
    /// Normalise each histogram to unit area (counts / width / Σ counts),
    /// after dropping or folding.
    pub density: bool,
    /// Half-width of the kernel window in units of h: per event only edges
    /// with |e − x| ≤ window·h are evaluated, the others contribute a tail of
    /// at most Φ(−window). `None`: 9 for f64 (Φ(−9) ≈ 1e-19, far below f64
    /// resolution of an O(1) bin) and 6 for f32 (Φ(−6) ≈ 1e-9 < f32 ulp);
    /// `Some(f64::INFINITY)`: every edge, no windowing.
    pub window: Option<f64>,
}

impl BkdeOptions {
    /// Drop outside mass, counts (no density), automatic window.
    pub fn new(bandwidth: f64) -> Self {
        Self {
            bandwidth,
            outside: Outside::Drop,
            density: false,
            window: None,
        }
    }

    /// Sets [`Self::outside`].
    pub fn outside(mut self, outside: Outside) -> Self {
        self.outside = outside;
        self
    }

    /// Sets [`Self::density`].
    pub fn density(mut self, density: bool) -> Self {
        self.density = density;
        self
    }

    /// Sets [`Self::window`] (in units of the bandwidth).
    pub fn window(mut self, window: f64) -> Self {
        self.window = Some(window);
        self
    }

    fn half_window(&self, dtype: DType) -> f64 {
        let w = self.window.unwrap_or(match dtype {
            DType::F32 => WINDOW_F32,
            _ => WINDOW_F64,
        });
        w * self.bandwidth
    }
}

/// Default window half-width (units of h) for f64 data.
pub const WINDOW_F64: f64 = 9.0;
/// Default window half-width (units of h) for f32 data.
pub const WINDOW_F32: f64 = 6.0;

/// The bKDE of one sample: `values` (N), optional `weights` (N), `edges`
/// (B+1, strictly increasing) → counts (B), differentiable w.r.t. values,
/// weights and edges. Empty input gives zeros.
pub fn bkde(
    values: &Tensor,
    weights: Option<&Tensor>,
    edges: &Tensor,
    opts: &BkdeOptions,
) -> Result<Tensor> {
    if values.rank() != 1 {
        return Err(check::err(
            "bkde",
            format!(
                "values must be 1-D, got shape {:?} (use bkde_multi for several samples)",
                values.dims()
            ),
        ));
    }
    let n = values.dim(0)?;
    let out = run("bkde", values, weights, edges, opts, vec![0, n])?;
    Ok(out.squeeze(0)?)
}

/// Per-bin Σ_i w_i² K_ib (for Monte-Carlo statistical uncertainties),
/// differentiable like [`bkde`]. Without weights it equals the counts.
pub fn bkde_sumw2(
    values: &Tensor,
    weights: Option<&Tensor>,
    edges: &Tensor,
    opts: &BkdeOptions,
) -> Result<Tensor> {
    let opts = BkdeOptions {
        density: false,
        ..opts.clone()
    };
    match weights {
        Some(w) => {
            check_weights_shape("bkde_sumw2", values, w)?;
            bkde(values, Some(&w.sqr()?), edges, &opts)
        }
        None => bkde(values, None, edges, &opts),
    }
}

/// Several samples in one call: `values`/`weights` (S × N) → counts (S × B).
/// All samples share the edges and options; there is one pass over all
/// S·N events, not S calls.
pub fn bkde_multi(
    values: &Tensor,
    weights: Option<&Tensor>,
    edges: &Tensor,
    opts: &BkdeOptions,
) -> Result<Tensor> {
    if values.rank() != 2 {
        return Err(check::err(
            "bkde_multi",
            format!(
                "values must be 2-D (samples × events), got shape {:?}",
                values.dims()
            ),
        ));
    }
    let (s, n) = values.dims2()?;
    let segments = (0..=s).map(|k| k * n).collect();
    if let Some(w) = weights {
        check_weights_shape("bkde_multi", values, w)?;
    }
    let flat_w = weights.map(|w| w.flatten_all()).transpose()?;
    run(
        "bkde_multi",
        &values.flatten_all()?,
        flat_w.as_ref(),
        edges,
        opts,
        segments,
    )
}

/// Several samples of different lengths in one call: each `(values, weights)`
/// is 1-D; returns (S × B). The samples are concatenated (one copy, through
/// which gradients flow back) and histogrammed in a single pass.
pub fn bkde_list(
    samples: &[(&Tensor, Option<&Tensor>)],
    edges: &Tensor,
    opts: &BkdeOptions,
) -> Result<Tensor> {
    const OP: &str = "bkde_list";
    if samples.is_empty() {
        return Err(check::err(OP, "no samples given"));
    }
    let any_weighted = samples.iter().any(|(_, w)| w.is_some());
    let mut segments = vec![0usize];
    let mut xs = Vec::with_capacity(samples.len());
    let mut ws = Vec::with_capacity(samples.len());
    for (k, (v, w)) in samples.iter().enumerate() {
        if v.rank() != 1 {
            return Err(check::err(
                OP,
                format!("sample {k}: values must be 1-D, got shape {:?}", v.dims()),
            ));
        }
        if let Some(w) = w {
            check_weights_shape(OP, v, w)?;
        }
        segments.push(segments[k] + v.dim(0)?);
        xs.push((*v).clone());
        if any_weighted {
            ws.push(match w {
                Some(w) => (*w).clone(),
                None => v.ones_like()?,
            });
        }
    }
    let values = Tensor::cat(&xs, 0)?;
    let weights = if any_weighted {
        Some(Tensor::cat(&ws, 0)?)
    } else {
        None
    };
    run(OP, &values, weights.as_ref(), edges, opts, segments)
}

/// Hard histogram for evaluation: (counts, Σw²), each (B) for 1-D values or
/// (S × B) for (S × N) values. Bins are `[e_b, e_{b+1})`, the last one closed;
/// outside events are dropped or folded into the edge bins. Not
/// differentiable.
pub fn hard_hist(
    values: &Tensor,
    weights: Option<&Tensor>,
    edges: &Tensor,
    outside: Outside,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "hard_hist";
    let dtype = check::float_dtype(OP, "values", values)?;
    let e = check::edges(OP, edges)?;
    let nb = e.len() - 1;
    let (ns, n) = match values.rank() {
        1 => (1, values.dim(0)?),
        2 => values.dims2()?,
        _ => {
            return Err(check::err(
                OP,
                format!("values must be 1-D or 2-D, got shape {:?}", values.dims()),
            ))
        }
    };
    if let Some(w) = weights {
        check_weights_shape(OP, values, w)?;
        check::same_dtype(OP, dtype, &[("weights", w)])?;
        check::finite(OP, "weights", w)?;
    }
    check::same_dtype(OP, dtype, &[("edges", edges)])?;
    check::finite(OP, "values", values)?;
    let x: Vec<f64> = values.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
    let w: Option<Vec<f64>> = weights
        .map(|w| w.flatten_all()?.to_dtype(DType::F64)?.to_vec1())
        .transpose()?;
    let segments: Vec<usize> = (0..=ns).map(|k| k * n).collect();
    let (c, s2) = cpu::hard(&e, &segments, &x, w.as_deref(), outside == Outside::Fold);
    let shape: Vec<usize> = if values.rank() == 1 {
        vec![nb]
    } else {
        vec![ns, nb]
    };
    let dev = values.device();
    let c = Tensor::from_vec(c, shape.clone(), dev)?.to_dtype(dtype)?;
    let s2 = Tensor::from_vec(s2, shape, dev)?.to_dtype(dtype)?;
    Ok((c, s2))
}

fn check_weights_shape(op: &'static str, values: &Tensor, w: &Tensor) -> Result<()> {
    if w.dims() != values.dims() {
        return Err(check::err(
            op,
            format!(
                "weights have shape {:?} but values have shape {:?}",
                w.dims(),
                values.dims()
            ),
        ));
    }
    Ok(())
}

/// Validates, runs the op on flat values/weights with the given sample
/// segments, and applies the density normalisation. Returns (S × B).
fn run(
    op: &'static str,
    values: &Tensor,
    weights: Option<&Tensor>,
    edges: &Tensor,
    opts: &BkdeOptions,
    segments: Vec<usize>,
) -> Result<Tensor> {
    let dtype = check::float_dtype(op, "values", values)?;
    check::same_dtype(op, dtype, &[("edges", edges)])?;
    check::same_device(op, values, &[("edges", edges)])?;
    check::positive(op, "bandwidth", opts.bandwidth)?;
    if let Some(win) = opts.window {
        if win.is_nan() || win <= 0.0 {
            return Err(check::err(
                op,
                format!("window must be > 0 (units of the bandwidth), got {win}"),
            ));
        }
    }
    let e = check::edges(op, edges)?;
    if let Some(w) = weights {
        check_weights_shape(op, values, w)?;
        check::same_dtype(op, dtype, &[("weights", w)])?;
        check::same_device(op, values, &[("weights", w)])?;
    }
    let values = values.contiguous()?;
    let weights = weights.map(|w| w.contiguous()).transpose()?;
    check::finite(op, "values", &values)?;
    if let Some(w) = &weights {
        check::finite(op, "weights", w)?;
    }

    let ns = segments.len() - 1;
    let nb = e.len() - 1;
    if ns.saturating_mul(nb + 1) > u32::MAX as usize {
        return Err(check::err(
            op,
            format!(
                "{ns} samples × {} edges exceed the kernel's index range",
                nb + 1
            ),
        ));
    }
    let kernel = Arc::new(Kernel {
        h: opts.bandwidth,
        half_window: opts.half_window(dtype),
        fold: opts.outside == Outside::Fold,
        segments,
        out_shape: Shape::from((ns, nb)),
    });
    let edges_c = edges.contiguous()?;
    let counts = match &weights {
        Some(w) => values.apply_op3_arc(w, &edges_c, Arc::new(Box::new(Weighted(kernel))))?,
        None => values.apply_op2_arc(&edges_c, Arc::new(Box::new(Unweighted(kernel))))?,
    };
    if !opts.density {
        return Ok(counts);
    }
    let widths = (edges_c.narrow(0, 1, nb)? - edges_c.narrow(0, 0, nb)?)?;
    let totals = counts.sum_keepdim(1)?;
    let host: Vec<f64> = totals.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
    if values.elem_count() == 0 {
        return Ok(counts);
    }
    if let Some(s) = host.iter().position(|t| *t == 0.0 || !t.is_finite()) {
        return Err(check::err(
            op,
            format!(
                "density normalisation undefined: sample {s} has total mass {}",
                host[s]
            ),
        ));
    }
    Ok(counts
        .broadcast_div(&widths.unsqueeze(0)?)?
        .broadcast_div(&totals)?)
}

/// Parameters of one bKDE application (shared by forward and backward).
#[derive(Debug)]
pub(crate) struct Kernel {
    pub h: f64,
    pub half_window: f64,
    pub fold: bool,
    pub segments: Vec<usize>,
    pub out_shape: Shape,
}

impl Kernel {
    fn plan<'a>(&'a self, edges: &'a [f64]) -> cpu::Plan<'a> {
        cpu::Plan {
            edges,
            h: self.h,
            half_window: self.half_window,
            fold: self.fold,
            segments: &self.segments,
            inv_step: cpu::inv_step(edges),
        }
    }

    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: Option<(&CpuStorage, &Layout)>,
        e: (&CpuStorage, &Layout),
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        fn go<T: WithDType>(
            k: &Kernel,
            x: (&CpuStorage, &Layout),
            w: Option<(&CpuStorage, &Layout)>,
            e: (&CpuStorage, &Layout),
        ) -> candle_core::Result<Vec<T>> {
            let xs = slice::<T>(x)?;
            let ws = w.map(slice::<T>).transpose()?;
            let es: Vec<f64> = slice::<T>(e)?.iter().map(|v| v.to_f64()).collect();
            let counts = cpu::forward(&k.plan(&es), xs, ws);
            Ok(counts.into_iter().map(T::from_f64).collect())
        }
        let storage = match x.0 {
            CpuStorage::F32(_) => CpuStorage::F32(go::<f32>(self, x, w, e)?),
            CpuStorage::F64(_) => CpuStorage::F64(go::<f64>(self, x, w, e)?),
            s => candle_core::bail!("bkde: unsupported dtype {:?}", s.dtype()),
        };
        Ok((storage, self.out_shape.clone()))
    }

    /// Applies the fused backward op and splits its flat output.
    fn backward(
        self: &Arc<Self>,
        values: &Tensor,
        weights: Option<&Tensor>,
        edges: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad: Vec<f64> = grad_res.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
        let need = cpu::Need {
            dx: values.track_op(),
            dw: weights.is_some_and(|w| w.track_op()),
            de: edges.track_op(),
        };
        let m = values.elem_count();
        let ne = edges.elem_count();
        let bwd = Backward {
            kernel: self.clone(),
            grad,
            need,
        };
        let flat = match weights {
            Some(w) => values.apply_op3_no_bwd(w, edges, &bwd)?,
            None => values.apply_op2_no_bwd(edges, &bwd)?,
        };
        let mut off = 0;
        let mut take = |on: bool, len: usize| -> candle_core::Result<Option<Tensor>> {
            if !on {
                return Ok(None);
            }
            let t = flat.narrow(0, off, len)?;
            off += len;
            Ok(Some(t))
        };
        let dx = take(need.dx, m)?
            .map(|t| t.reshape(values.shape()))
            .transpose()?;
        let dw = take(need.dw, m)?
            .map(|t| t.reshape(values.shape()))
            .transpose()?;
        let de = take(need.de, ne)?;
        Ok((dx, dw, de))
    }
}

/// Contiguous typed view of a CPU storage.
fn slice<'a, T: WithDType>(sl: (&'a CpuStorage, &Layout)) -> candle_core::Result<&'a [T]> {
    super::cpu_slice("bkde", sl)
}

/// Weighted bKDE: (values, weights, edges) → counts.
struct Weighted(Arc<Kernel>);
/// Unweighted bKDE: (values, edges) → counts.
struct Unweighted(Arc<Kernel>);

impl CustomOp3 for Weighted {
    fn name(&self) -> &'static str {
        "bkde"
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
        self.0.cpu_forward((s1, l1), Some((s2, l2)), (s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(&self.0, (s1, l1), Some((s2, l2)), (s3, l3))
    }

    fn bwd(
        &self,
        values: &Tensor,
        weights: &Tensor,
        edges: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.0.backward(values, Some(weights), edges, grad_res)
    }
}

impl CustomOp2 for Unweighted {
    fn name(&self) -> &'static str {
        "bkde"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.0.cpu_forward((s1, l1), None, (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(&self.0, (s1, l1), None, (s2, l2))
    }

    fn bwd(
        &self,
        values: &Tensor,
        edges: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, _, de) = self.0.backward(values, None, edges, grad_res)?;
        Ok((dx, de))
    }
}

/// The fused backward pass: → flat [dx (M) | dw (M) | de (B+1)], each part
/// present only when needed.
pub(crate) struct Backward {
    pub kernel: Arc<Kernel>,
    pub grad: Vec<f64>,
    pub need: cpu::Need,
}

impl Backward {
    fn cpu_run(
        &self,
        x: (&CpuStorage, &Layout),
        w: Option<(&CpuStorage, &Layout)>,
        e: (&CpuStorage, &Layout),
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        fn go<T: WithDType>(
            b: &Backward,
            x: (&CpuStorage, &Layout),
            w: Option<(&CpuStorage, &Layout)>,
            e: (&CpuStorage, &Layout),
        ) -> candle_core::Result<Vec<T>> {
            let xs = slice::<T>(x)?;
            let ws = w.map(slice::<T>).transpose()?;
            let es: Vec<f64> = slice::<T>(e)?.iter().map(|v| v.to_f64()).collect();
            let g = cpu::backward(&b.kernel.plan(&es), xs, ws, &b.grad, b.need);
            let mut out = g.dx;
            out.extend(g.dw);
            out.extend(g.de.into_iter().map(T::from_f64));
            Ok(out)
        }
        let out = match x.0 {
            CpuStorage::F32(_) => CpuStorage::F32(go::<f32>(self, x, w, e)?),
            CpuStorage::F64(_) => CpuStorage::F64(go::<f64>(self, x, w, e)?),
            s => candle_core::bail!("bkde: unsupported dtype {:?}", s.dtype()),
        };
        let len = match &out {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            _ => 0,
        };
        Ok((out, Shape::from(len)))
    }
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "bkde_bwd"
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
        self.cpu_run((s1, l1), Some((s2, l2)), (s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::backward(self, (s1, l1), Some((s2, l2)), (s3, l3))
    }
}

impl CustomOp2 for Backward {
    fn name(&self) -> &'static str {
        "bkde_bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_run((s1, l1), None, (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::backward(self, (s1, l1), None, (s2, l2))
    }
}
