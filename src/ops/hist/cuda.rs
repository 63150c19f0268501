//! CUDA path of the bKDE (feature `cuda`): our own kernels (`kernels.cu` with
//! the Φ/φ device functions of `ops::normal`), compiled once per process at
//! run time with NVRTC through the cudarc that candle re-exports, and launched
//! on candle's stream. Same algorithm and f64 accumulation as the CPU path.
//!
//! Status: written without access to a GPU and not yet run on one;
//! `tests/ops_cuda.rs` (via `scripts/gpu-check.sh`) compares it with the CPU
//! path on a machine that has one.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::cudarc::nvrtc;
use candle_core::cuda_backend::{CudaDType, CudaDevice};
use candle_core::{CudaStorage, DType, Layout, Shape, WithDType};

use super::{Backward, Kernel};
use crate::ops::normal;

const MODULE: &str = "anagrad_bkde";
const THREADS: u32 = 256;
/// Shared memory we allow ourselves per block for the partial histogram.
const SHARED_BYTES: usize = 40 * 1024;

fn cuda_err(what: &str, e: impl std::fmt::Debug) -> candle_core::Error {
    candle_core::Error::Cuda(format!("bkde: {what}: {e:?}").into())
}

/// PTX of `normal.cuh` + `kernels.cu`, compiled on first use.
fn ptx() -> candle_core::Result<&'static str> {
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    let r = PTX.get_or_init(|| {
        let src = format!("{}\n{}", normal::CUDA_SOURCE, include_str!("kernels.cu"));
        nvrtc::compile_ptx(src)
            .map(|p| p.to_src())
            .map_err(|e| format!("NVRTC compilation failed: {e:?}"))
    });
    match r {
        Ok(s) => Ok(s.as_str()),
        Err(e) => Err(candle_core::Error::Cuda(e.clone().into())),
    }
}

fn suffix(dtype: DType) -> candle_core::Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F64 => Ok("f64"),
        d => candle_core::bail!("bkde: unsupported dtype {d:?} on CUDA"),
    }
}

fn range(l: &Layout) -> candle_core::Result<(usize, usize)> {
    match l.contiguous_offsets() {
        Some(r) => Ok(r),
        None => candle_core::bail!("bkde: non-contiguous input"),
    }
}

fn grid(m: usize) -> u32 {
    (m.div_ceil(THREADS as usize)).clamp(1, 65_535) as u32
}

fn shared_plan(ne: usize, acc_len: usize) -> (i32, u32) {
    let need = (ne + acc_len) * std::mem::size_of::<f64>();
    if need <= SHARED_BYTES {
        (1, need as u32)
    } else {
        (0, (ne * std::mem::size_of::<f64>()) as u32)
    }
}

type Arg<'a> = (&'a CudaStorage, &'a Layout);

pub(crate) fn forward(
    k: &Kernel,
    x: Arg,
    w: Option<Arg>,
    e: Arg,
) -> candle_core::Result<(CudaStorage, Shape)> {
    match x.0.dtype() {
        DType::F32 => forward_t::<f32>(k, x, w, e),
        DType::F64 => forward_t::<f64>(k, x, w, e),
        d => candle_core::bail!("bkde: unsupported dtype {d:?} on CUDA"),
    }
}

fn forward_t<T: CudaDType + DeviceRepr + ValidAsZeroBits + WithDType>(
    k: &Kernel,
    x: Arg,
    w: Option<Arg>,
    e: Arg,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev: &CudaDevice = &x.0.device;
    let sfx = suffix(x.0.dtype())?;
    let (xa, xb) = range(x.1)?;
    let m = xb - xa;
    let xs = x.0.as_cuda_slice::<T>()?.slice(xa..xb);
    let ws = match w {
        Some((s, l)) => {
            let (a, b) = range(l)?;
            s.as_cuda_slice::<T>()?.slice(a..b)
        }
        None => x.0.as_cuda_slice::<T>()?.slice(xa..xb),
    };
    let (ea, eb) = range(e.1)?;
    let es = e.0.as_cuda_slice::<T>()?.slice(ea..eb);
    let ne = eb - ea;
    let nb = ne - 1;
    let ns = k.segments.len() - 1;
    let seg: Vec<i64> = k.segments.iter().map(|&v| v as i64).collect();
    let seg = dev.clone_htod(&seg)?;
    let mut out = dev.alloc_zeros::<f64>(ns * nb)?;
    if m > 0 {
        let (use_shared, shmem) = shared_plan(ne, ns * nb);
        let f = dev.get_or_load_custom_func(&format!("anagrad_bkde_fwd_{sfx}"), MODULE, ptx()?)?;
        let mut b = f.builder();
        let weighted = i32::from(w.is_some());
        let (ns_i, ne_i, m_i) = (ns as i32, ne as i32, m as i64);
        let (h, hw, fold) = (k.h, k.half_window, i32::from(k.fold));
        b.arg(&xs);
        b.arg(&ws);
        b.arg(&weighted);
        b.arg(&es);
        b.arg(&seg);
        b.arg(&ns_i);
        b.arg(&ne_i);
        b.arg(&m_i);
        b.arg(&h);
        b.arg(&hw);
        b.arg(&fold);
        b.arg(&use_shared);
        b.arg(&mut out);
        let cfg = LaunchConfig {
            grid_dim: (grid(m), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: shmem,
        };
        // SAFETY: argument list matches anagrad_bkde_fwd_* in kernels.cu; all
        // buffers hold the lengths passed alongside them.
        unsafe { b.launch(cfg) }.map_err(|e| cuda_err("forward launch", e))?;
    }
    let storage = cast_out::<T>(dev, sfx, out, ns * nb)?;
    Ok((storage, k.out_shape.clone()))
}

/// f64 accumulator → output dtype (a no-op wrap for f64).
fn cast_out<T: CudaDType + DeviceRepr + ValidAsZeroBits + WithDType>(
    dev: &CudaDevice,
    sfx: &str,
    acc: candle_core::cuda_backend::cudarc::driver::CudaSlice<f64>,
    n: usize,
) -> candle_core::Result<CudaStorage> {
    if T::DTYPE == DType::F64 {
        return Ok(CudaStorage::wrap_cuda_slice(acc, dev.clone()));
    }
    // SAFETY: fully written by the cast kernel below before any read.
    let mut dst = unsafe { dev.alloc::<T>(n)? };
    if n > 0 {
        let f = dev.get_or_load_custom_func(&format!("anagrad_cast_f64_{sfx}"), MODULE, ptx()?)?;
        let mut b = f.builder();
        let n_i = n as i64;
        b.arg(&acc);
        b.arg(&mut dst);
        b.arg(&n_i);
        let cfg = LaunchConfig::for_num_elems(n as u32);
        // SAFETY: matches anagrad_cast_f64_*; both buffers have n elements.
        unsafe { b.launch(cfg) }.map_err(|e| cuda_err("cast launch", e))?;
    }
    Ok(CudaStorage::wrap_cuda_slice(dst, dev.clone()))
}

pub(crate) fn backward(
    bw: &Backward,
    x: Arg,
    w: Option<Arg>,
    e: Arg,
) -> candle_core::Result<(CudaStorage, Shape)> {
    match x.0.dtype() {
        DType::F32 => backward_t::<f32>(bw, x, w, e),
        DType::F64 => backward_t::<f64>(bw, x, w, e),
        d => candle_core::bail!("bkde: unsupported dtype {d:?} on CUDA"),
    }
}

fn backward_t<T: CudaDType + DeviceRepr + ValidAsZeroBits + WithDType>(
    bw: &Backward,
    x: Arg,
    w: Option<Arg>,
    e: Arg,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let k = &bw.kernel;
    let dev: &CudaDevice = &x.0.device;
    let sfx = suffix(x.0.dtype())?;
    let (xa, xb) = range(x.1)?;
    let m = xb - xa;
    let xs = x.0.as_cuda_slice::<T>()?.slice(xa..xb);
    let ws = match w {
        Some((s, l)) => {
            let (a, b) = range(l)?;
            s.as_cuda_slice::<T>()?.slice(a..b)
        }
        None => x.0.as_cuda_slice::<T>()?.slice(xa..xb),
    };
    let (ea, eb) = range(e.1)?;
    let es = e.0.as_cuda_slice::<T>()?.slice(ea..eb);
    let ne = eb - ea;
    let nb = ne - 1;
    let ns = k.segments.len() - 1;
    let need_dw = bw.need.dw && w.is_some();

    let mut coef = vec![0.0f64; ns * ne];
    for s in 0..ns {
        for j in 0..ne {
            let up = if j >= 1 { bw.grad[s * nb + j - 1] } else { 0.0 };
            let down = if j < nb { bw.grad[s * nb + j] } else { 0.0 };
            coef[s * ne + j] = up - down;
        }
    }
    let mut off = 0i64;
    let mut place = |on: bool, len: usize| -> i64 {
        if on {
            let o = off;
            off += len as i64;
            o
        } else {
            -1
        }
    };
    let dx_off = place(bw.need.dx, m);
    let dw_off = place(need_dw, m);
    let de_off = place(bw.need.de, ne);
    let total = off as usize;

    let mut out = dev.alloc_zeros::<T>(total.max(1))?;
    let seg: Vec<i64> = k.segments.iter().map(|&v| v as i64).collect();
    let seg = dev.clone_htod(&seg)?;
    let grad = dev.clone_htod(&bw.grad)?;
    let coef_d = dev.clone_htod(&coef)?;
    let mut acc_e = dev.alloc_zeros::<f64>(ns * ne)?;
    if m > 0 && (bw.need.dx || need_dw || bw.need.de) {
        let need_de = i32::from(bw.need.de);
        let (use_shared, shmem) = shared_plan(ne, if bw.need.de { ns * ne } else { 0 });
        let f = dev.get_or_load_custom_func(&format!("anagrad_bkde_bwd_{sfx}"), MODULE, ptx()?)?;
        let mut b = f.builder();
        let weighted = i32::from(w.is_some());
        let (ns_i, ne_i, m_i) = (ns as i32, ne as i32, m as i64);
        let (h, hw, fold) = (k.h, k.half_window, i32::from(k.fold));
        b.arg(&xs);
        b.arg(&ws);
        b.arg(&weighted);
        b.arg(&es);
        b.arg(&seg);
        b.arg(&ns_i);
        b.arg(&ne_i);
        b.arg(&m_i);
        b.arg(&h);
        b.arg(&hw);
        b.arg(&fold);
        b.arg(&use_shared);
        b.arg(&grad);
        b.arg(&coef_d);
        b.arg(&mut out);
        b.arg(&dx_off);
        b.arg(&dw_off);
        b.arg(&need_de);
        b.arg(&mut acc_e);
        let cfg = LaunchConfig {
            grid_dim: (grid(m), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: shmem,
        };
        // SAFETY: argument list matches anagrad_bkde_bwd_* in kernels.cu; the
        // offsets index into `out`, which holds `total` elements.
        unsafe { b.launch(cfg) }.map_err(|e| cuda_err("backward launch", e))?;
    }
    if bw.need.de {
        let f = dev.get_or_load_custom_func(&format!("anagrad_bkde_de_{sfx}"), MODULE, ptx()?)?;
        let mut b = f.builder();
        let (ns_i, ne_i, inv_h) = (ns as i32, ne as i32, 1.0 / k.h);
        b.arg(&acc_e);
        b.arg(&coef_d);
        b.arg(&ns_i);
        b.arg(&ne_i);
        b.arg(&inv_h);
        b.arg(&mut out);
        b.arg(&de_off);
        let cfg = LaunchConfig::for_num_elems(ne as u32);
        // SAFETY: matches anagrad_bkde_de_*; de_off + ne ≤ total.
        unsafe { b.launch(cfg) }.map_err(|e| cuda_err("edge-gradient launch", e))?;
    }
    let out = if total == 0 {
        dev.alloc_zeros::<T>(0)?
    } else {
        out
    };
    Ok((
        CudaStorage::wrap_cuda_slice(out, dev.clone()),
        Shape::from(total),
    ))
}
