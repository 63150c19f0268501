//! CPU kernels of the bKDE: one fused O(N) pass forward and one backward,
//! parallel over events (rayon), accumulating in f64.
//!
//! Per event only a fixed number of consecutive edges around the event is
//! evaluated: at least W, the largest number of edges that any window of
//! width 2·`half_window` holds (found once from the edges), so every edge
//! within `half_window` of the event is among them; all other edges
//! contribute a signed tail below the chosen resolution (see
//! [`super::BkdeOptions::window`]). Evaluating an edge outside the window is
//! exact, so the fixed width costs no accuracy, and it makes every per-event
//! loop the same straight-line, vectorisable code. Bin masses are formed from
//! signed tails (Φ(z) for z ≤ 0, Φ(z) − 1 for z > 0) plus the whole weight
//! in the bin that contains the event, so no bin suffers the cancellation of
//! 1 − Φ. Folding puts the outer edges at ∓∞ (tail and density 0).
//!
//! Chunks have a fixed size and partial sums are added in chunk order, so
//! results do not depend on the number of threads. On x86-64 the chunk
//! kernels are also compiled for AVX2 and AVX-512 and chosen at run time
//! (products and sums are never fused, so every copy gives the same bits).

use candle_core::{DType, WithDType};
use rayon::prelude::*;

use crate::ops::normal::batch::{self, isa, Isa};

/// Events per parallel task (fixed, so that the summation order is too).
pub(crate) const CHUNK: usize = 4096;

/// Up to this many chunks run on the calling thread: handing a sub-millisecond
/// job to the pool and waiting for it costs more than it saves.
const SEQUENTIAL_CHUNKS: usize = 4;

/// `tasks.map(f)` in order, in parallel unless there are only a few.
fn map_tasks<I: Send, R: Send>(tasks: Vec<I>, f: impl Fn(I) -> R + Sync + Send) -> Vec<R> {
    if tasks.len() <= SEQUENTIAL_CHUNKS {
        tasks.into_iter().map(f).collect()
    } else {
        tasks.into_par_iter().map(f).collect()
    }
}

/// Geometry shared by forward and backward.
pub(crate) struct Plan<'a> {
    /// B+1 strictly increasing edges.
    pub edges: &'a [f64],
    /// Bandwidth h > 0.
    pub h: f64,
    /// Edges farther than this from an event are skipped (data units).
    pub half_window: f64,
    /// Mass outside the outer edges is folded into the edge bins.
    pub fold: bool,
    /// S+1 offsets of the samples in the flat event arrays.
    pub segments: &'a [usize],
    /// (B)/(e_B − e_0): turns a position into a first guess of its edge index
    /// (exact for uniform edges, checked in any case).
    pub inv_step: f64,
}

/// (B)/(e_B − e_0) for [`Plan::inv_step`].
pub(crate) fn inv_step(edges: &[f64]) -> f64 {
    (edges.len() - 1) as f64 / (edges[edges.len() - 1] - edges[0])
}

/// Which gradients the backward pass must produce.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Need {
    pub dx: bool,
    pub dw: bool,
    pub de: bool,
}

impl Plan<'_> {
    /// The parts `(sample, a, b)` of the events `start..end` in each sample,
    /// in order.
    fn parts(&self, start: usize, end: usize) -> Vec<(usize, usize, usize)> {
        let seg = self.segments;
        let mut out = Vec::new();
        // first sample whose end lies beyond `start`
        let mut s = seg[1..].partition_point(|&o| o <= start);
        let mut a = start;
        while a < end && s + 1 < seg.len() {
            let z = seg[s + 1].min(end);
            if z > a {
                out.push((s, a, z));
            }
            a = z;
            s += 1;
        }
        out
    }
}

/// Windows wider than 8 edges are rounded up to a multiple of this many
/// slots (fewer kernel variants), and dot products over the slots keep this
/// many partial sums (vector lanes).
const GROUP: usize = 4;

/// Pairs (event, edge) evaluated per block (three f64 arrays of this length
/// stay in the L1 cache).
const BLOCK_PAIRS: usize = 1024;

/// Accumulator copies, used by turns by consecutive events: an event's
/// read-modify-write then does not wait for the previous event's store when
/// both hit the same row (always so when the window spans all edges).
const COPIES: usize = 4;

/// Largest per-sample accumulator (f64 words, all copies) kept as one row
/// per first edge; beyond it (wide windows over many edges) sums go in place.
const ROWS_MAX: usize = 1 << 13;

/// The largest number of edges inside any closed interval of length `width`
/// (with a relative slack of 1e-9, so that rounding never undercounts).
pub(crate) fn max_edges_within(edges: &[f64], width: f64) -> usize {
    let width = width * (1.0 + 1e-9);
    let n = edges.len();
    let mut best = 1;
    let mut j = 0;
    for i in 0..n {
        j = j.max(i + 1);
        while j < n && edges[j] - edges[i] <= width {
            j += 1;
        }
        best = best.max(j - i);
    }
    best
}

/// The fixed-width evaluation scheme of one call.
///
/// Every event evaluates the `wp` consecutive edges `lo..lo + wp`, where `lo`
/// is the first edge ≥ x − half_window, lowered to at most `ne − wp`. With W
/// = [`max_edges_within`]`(2·half_window)` ≤ wp, every edge inside the
/// window is among them, and every edge from `lo + wp` on lies above x: the
/// edges ≤ x are then exactly those below `lo` and the evaluated ones with
/// z ≤ 0, which locates the event's bin consistently with the signs of the
/// evaluated tails.
struct Geom<'a> {
    plan: &'a Plan<'a>,
    /// B+1.
    ne: usize,
    /// Edges evaluated per event: W, rounded up to a multiple of [`GROUP`]
    /// beyond 8.
    wp: usize,
    /// Largest first evaluated edge.
    lo_max: usize,
    /// The edges as evaluated (outer ones at ∓∞ when folding: tail and
    /// density 0), followed by `wp` edges at +∞ for windows reaching past
    /// the last edge.
    ee: Vec<f64>,
    /// −∞, the edges, +∞: bounds that make a located index checkable
    /// without special cases.
    epad: Vec<f64>,
    inv_h: f64,
    /// Accumulator offset per first edge: `wp` (one row per first edge, so
    /// the rows of consecutive events never partially overlap in memory) or
    /// 1 (sums in place).
    stride: usize,
    /// Accumulator length per sample.
    acc_len: usize,
    /// Events per block.
    block: usize,
}

impl<'a> Geom<'a> {
    fn new(plan: &'a Plan<'a>) -> Self {
        let e = plan.edges;
        let ne = e.len();
        let w = max_edges_within(e, 2.0 * plan.half_window).min(ne);
        // exact up to 8 slots, else whole groups (fewer kernel variants)
        let wp = if w <= 8 { w } else { w.div_ceil(GROUP) * GROUP };
        let mut ee = e.to_vec();
        if plan.fold {
            ee[0] = f64::NEG_INFINITY;
            ee[ne - 1] = f64::INFINITY;
        }
        ee.resize(ne + wp, f64::INFINITY);
        let mut epad = Vec::with_capacity(ne + 2);
        epad.push(f64::NEG_INFINITY);
        epad.extend_from_slice(e);
        epad.push(f64::INFINITY);
        let (stride, acc_len) = if COPIES * ne * wp <= ROWS_MAX {
            (wp, ne * wp)
        } else {
            (1, ne + wp)
        };
        Self {
            plan,
            ne,
            wp,
            lo_max: ne.saturating_sub(wp),
            ee,
            epad,
            inv_h: 1.0 / plan.h,
            stride,
            acc_len,
            block: (BLOCK_PAIRS / wp).max(1),
        }
    }

    /// First evaluated edge for an event at `x`: a guess from the mean edge
    /// spacing (integer ceil, no libm call), checked against the edges and
    /// replaced by a binary search where wrong (non-uniform edges).
    #[inline(always)]
    fn first(&self, x: f64) -> usize {
        let p = self.plan;
        let v = x - p.half_window;
        let t = ((v - p.edges[0]) * p.inv_step)
            .max(-1.0)
            .min(self.ne as f64);
        let i = t as i64;
        let g = (i + ((i as f64) < t) as i64).max(0) as usize;
        // edge g−1 < v ≤ edge g  ⇔  g is the number of edges below v
        let j = if self.epad[g] < v && v <= self.epad[g + 1] {
            g
        } else {
            p.edges.partition_point(|&ej| ej < v)
        };
        j.min(self.lo_max)
    }

    /// First evaluated edge of each event and z = (e − x)/h of its `wp`
    /// slots (event-major; `wp` = [`Self::wp`] = `WP` where that is not 0).
    #[inline(always)]
    fn fill_z<T: WithDType, const WP: usize>(
        &self,
        wp: usize,
        x: &[T],
        los: &mut [usize],
        z: &mut [f64],
    ) {
        let inv_h = self.inv_h;
        for ((xv, lo_out), zr) in x.iter().zip(los.iter_mut()).zip(z.chunks_exact_mut(wp)) {
            let xi = xv.to_f64();
            // every event sees all edges when the window spans them
            let lo = if self.lo_max == 0 { 0 } else { self.first(xi) };
            *lo_out = lo;
            let er = &self.ee[lo..lo + wp];
            if WP > 0 {
                // through a local array: all loads before the stores, which
                // the compiler cannot otherwise prove independent
                let mut buf = [0.0f64; WP];
                for k in 0..WP {
                    buf[k] = (er[k] - xi) * inv_h;
                }
                zr.copy_from_slice(&buf);
            } else {
                for (zv, ev) in zr.iter_mut().zip(er) {
                    *zv = (ev - xi) * inv_h;
                }
            }
        }
    }

    /// Adds `wi·v` to the event's row in accumulator copy `copy`.
    #[inline(always)]
    fn add_row<const WP: usize>(
        &self,
        wp: usize,
        acc: &mut [f64],
        copy: usize,
        lo: usize,
        wi: f64,
        v: &[f64],
    ) {
        let o = (copy % COPIES) * self.acc_len + lo * self.stride;
        let row = &mut acc[o..o + wp];
        if WP > 0 {
            let mut buf = [0.0f64; WP];
            buf.copy_from_slice(&v[..WP]);
            for k in 0..WP {
                row[k] += wi * buf[k];
            }
        } else {
            for (r, vk) in row.iter_mut().zip(v) {
                *r += wi * vk;
            }
        }
    }

    /// Per-edge sums (`ne`) of one sample's accumulator (its copies added
    /// in order).
    fn edge_sums(&self, acc: &[f64]) -> Vec<f64> {
        let mut sum = acc[..self.acc_len].to_vec();
        for c in 1..COPIES {
            for (s, v) in sum
                .iter_mut()
                .zip(&acc[c * self.acc_len..(c + 1) * self.acc_len])
            {
                *s += v;
            }
        }
        let acc = &sum;
        let ne = self.ne;
        if self.stride == 1 {
            // slots past the last edge hold only zeros (tails at +∞)
            return acc[..ne].to_vec();
        }
        let wp = self.wp;
        let mut out = vec![0.0f64; ne];
        for (lo, row) in acc.chunks_exact(wp).enumerate() {
            for (s, v) in row.iter().enumerate().take(ne.saturating_sub(lo)) {
                out[lo + s] += v;
            }
        }
        out
    }
}

/// Number of slots with z ≤ 0 (edges at or below the event); for up to 64
/// slots as the population count of a bit mask (one vector compare).
#[inline(always)]
fn count_nonpos<const WP: usize>(z: &[f64]) -> usize {
    if WP > 0 && WP <= 64 {
        let mut mask = 0u64;
        for (k, v) in z[..WP].iter().enumerate() {
            mask |= ((*v <= 0.0) as u64) << k;
        }
        mask.count_ones() as usize
    } else {
        z.iter().map(|&v| (v <= 0.0) as usize).sum()
    }
}

/// Σ_k c_k·t_k and Σ_k c_k·p_k over an event's slots (`WP` of them where
/// that is not 0).
#[inline(always)]
fn dots<const WP: usize>(c: &[f64], t: &[f64], p: &[f64]) -> (f64, f64) {
    let mut st = [0.0f64; GROUP];
    let mut sp = [0.0f64; GROUP];
    let n = if WP > 0 { WP } else { c.len() };
    for k in 0..n {
        st[k % GROUP] += c[k] * t[k];
        sp[k % GROUP] += c[k] * p[k];
    }
    (
        (st[0] + st[1]) + (st[2] + st[3]),
        (sp[0] + sp[1]) + (sp[2] + sp[3]),
    )
}

/// Tails and densities of a block: in f32 lanes for f32 data where FMA
/// hardware keeps them within f32's accuracy bound, in f64 lanes otherwise.
#[inline(always)]
fn eval<T: WithDType, const FMA: bool>(z: &[f64], t: &mut [f64], p: &mut [f64]) {
    if FMA && T::DTYPE == DType::F32 {
        batch::run_f32::<true>(z, t, p)
    } else {
        batch::run::<FMA>(z, t, p)
    }
}

/// One chunk's events and where its sample rows start.
struct Task<'a, T> {
    x: &'a [T],
    w: Option<&'a [T]>,
    /// `(sample, a, b)` parts of the chunk, in order.
    parts: Vec<(usize, usize, usize)>,
    /// First sample of the chunk.
    s0: usize,
    /// Samples spanned by the chunk.
    nl: usize,
}

impl<'a, T> Task<'a, T> {
    fn new(plan: &Plan, x: &'a [T], w: Option<&'a [T]>, start: usize, end: usize) -> Self {
        let parts = plan.parts(start, end);
        let s0 = parts.first().map_or(0, |p| p.0);
        let nl = parts.last().map_or(0, |p| p.0 + 1 - s0);
        Self {
            x,
            w,
            parts,
            s0,
            nl,
        }
    }
}

/// Forward of one chunk: counts of its samples (`nl × B`).
#[inline(always)]
fn forward_kernel<T: WithDType, const FMA: bool, const WP: usize>(
    g: &Geom,
    task: &Task<T>,
) -> Vec<f64> {
    let ne = g.ne;
    let wp = if WP == 0 { g.wp } else { WP };
    let nl = task.nl;
    let al = COPIES * g.acc_len;
    let mut acc = vec![0.0f64; nl * al];
    // whole weights by the number k of edges ≤ x (bin k − 1)
    let wl = COPIES * (ne + 1);
    let mut whole = vec![0.0f64; nl * wl];
    let cap = g.block * wp;
    let (mut z, mut t, mut p) = (vec![0.0f64; cap], vec![0.0f64; cap], vec![0.0f64; cap]);
    let mut los = vec![0usize; g.block];
    for &(s, a, b) in &task.parts {
        let l = s - task.s0;
        let acc_s = &mut acc[l * al..(l + 1) * al];
        let whole_s = &mut whole[l * wl..(l + 1) * wl];
        let mut i0 = a;
        while i0 < b {
            let n = (b - i0).min(g.block);
            let np = n * wp;
            g.fill_z::<T, WP>(wp, &task.x[i0..i0 + n], &mut los[..n], &mut z[..np]);
            eval::<T, FMA>(&z[..np], &mut t[..np], &mut p[..np]);
            for (i, (zr, tr)) in z[..np]
                .chunks_exact(wp)
                .zip(t[..np].chunks_exact(wp))
                .enumerate()
            {
                let wi = task.w.map_or(1.0, |w| w[i0 + i].to_f64());
                let lo = los[i];
                whole_s[(i % COPIES) * (ne + 1) + lo + count_nonpos::<WP>(zr)] += wi;
                g.add_row::<WP>(wp, acc_s, i, lo, wi, tr);
            }
            i0 += n;
        }
    }
    let nb = ne - 1;
    let mut out = vec![0.0f64; nl * nb];
    for l in 0..nl {
        let edge = g.edge_sums(&acc[l * al..(l + 1) * al]);
        let mut whole_s = whole[l * wl..l * wl + ne + 1].to_vec();
        for c in 1..COPIES {
            let part = &whole[l * wl + c * (ne + 1)..l * wl + (c + 1) * (ne + 1)];
            for (a, v) in whole_s.iter_mut().zip(part) {
                *a += v;
            }
        }
        // bin b: whole weight of events with k = b + 1, the tail at its
        // upper edge minus the one at its lower edge
        for b in 0..nb {
            out[l * nb + b] = whole_s[b + 1] + (edge[b + 1] - edge[b]);
        }
    }
    out
}

/// What the backward kernel reads besides the events.
struct BwdCtx<'a> {
    /// Per sample, the coefficient of each edge's Φ in the loss, padded
    /// with `wp` zeros (`ns × (ne + wp)`).
    coef: &'a [f64],
    /// Per sample, dL/dcounts of bin k − 1 by k = 0..=ne (0 outside)
    /// (`ns × (ne + 1)`).
    grad_k: &'a [f64],
    need: Need,
    need_dw: bool,
}

/// Backward of one chunk: writes d/dx and d/dw of its events (slices
/// starting at event `start`) and returns the Σ w·φ per edge of its samples
/// (`nl × ne`, empty when d/de is not needed).
#[inline(always)]
fn backward_kernel<T: WithDType, const FMA: bool, const WP: usize>(
    g: &Geom,
    ctx: &BwdCtx,
    task: &Task<T>,
    start: usize,
    dx: &mut [T],
    dw: &mut [T],
) -> Vec<f64> {
    let ne = g.ne;
    let wp = if WP == 0 { g.wp } else { WP };
    let nl = task.nl;
    let need = ctx.need;
    let mut acc = if need.de {
        vec![0.0f64; nl * COPIES * g.acc_len]
    } else {
        vec![]
    };
    let cap = g.block * wp;
    let (mut z, mut t, mut p) = (vec![0.0f64; cap], vec![0.0f64; cap], vec![0.0f64; cap]);
    let mut los = vec![0usize; g.block];
    let inv_h = g.inv_h;
    let cw = ne + wp;
    for &(s, a, b) in &task.parts {
        let l = s - task.s0;
        let coef_s = &ctx.coef[s * cw..(s + 1) * cw];
        let grad_s = &ctx.grad_k[s * (ne + 1)..(s + 1) * (ne + 1)];
        let mut i0 = a;
        while i0 < b {
            let n = (b - i0).min(g.block);
            let np = n * wp;
            g.fill_z::<T, WP>(wp, &task.x[i0..i0 + n], &mut los[..n], &mut z[..np]);
            eval::<T, FMA>(&z[..np], &mut t[..np], &mut p[..np]);
            for (i, ((zr, tr), pr)) in z[..np]
                .chunks_exact(wp)
                .zip(t[..np].chunks_exact(wp))
                .zip(p[..np].chunks_exact(wp))
                .enumerate()
            {
                let wi = task.w.map_or(1.0, |w| w[i0 + i].to_f64());
                let lo = los[i];
                let c = &coef_s[lo..lo + wp];
                let (sum_t, sum_p) = dots::<WP>(c, tr, pr);
                let li = i0 + i - start;
                if need.dx {
                    dx[li] = T::from_f64(-wi * inv_h * sum_p);
                }
                if ctx.need_dw {
                    dw[li] = T::from_f64(grad_s[lo + count_nonpos::<WP>(zr)] + sum_t);
                }
                if need.de {
                    let al = COPIES * g.acc_len;
                    g.add_row::<WP>(wp, &mut acc[l * al..(l + 1) * al], i, lo, wi, pr);
                }
            }
            i0 += n;
        }
    }
    if !need.de {
        return acc;
    }
    let mut out = Vec::with_capacity(nl * ne);
    for l in 0..nl {
        let al = COPIES * g.acc_len;
        out.extend(g.edge_sums(&acc[l * al..(l + 1) * al]));
    }
    out
}

/// Calls `$f::<T, WP>($args)` with the window width as a constant for the
/// common widths (fixed-length per-event loops compile to straight vector
/// code), and with WP = 0 (width read at run time) otherwise.
macro_rules! by_width {
    ($wp:expr, $f:ident, $t:ty, $($arg:expr),*) => {
        match $wp {
            4 => $f::<$t, 4>($($arg),*),
            5 => $f::<$t, 5>($($arg),*),
            6 => $f::<$t, 6>($($arg),*),
            7 => $f::<$t, 7>($($arg),*),
            8 => $f::<$t, 8>($($arg),*),
            12 => $f::<$t, 12>($($arg),*),
            16 => $f::<$t, 16>($($arg),*),
            _ => $f::<$t, 0>($($arg),*),
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,popcnt")]
fn forward_avx512<T: WithDType, const WP: usize>(g: &Geom, task: &Task<T>) -> Vec<f64> {
    forward_kernel::<T, true, WP>(g, task)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,popcnt")]
fn forward_avx2<T: WithDType, const WP: usize>(g: &Geom, task: &Task<T>) -> Vec<f64> {
    forward_kernel::<T, true, WP>(g, task)
}

fn forward_chunk<T: WithDType>(isa: Isa, g: &Geom, task: &Task<T>) -> Vec<f64> {
    match isa {
        // SAFETY: `isa()` found the features these copies were compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { by_width!(g.wp, forward_avx512, T, g, task) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { by_width!(g.wp, forward_avx2, T, g, task) },
        Isa::Base => forward_kernel::<T, false, 0>(g, task),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,popcnt")]
fn backward_avx512<T: WithDType, const WP: usize>(
    g: &Geom,
    ctx: &BwdCtx,
    task: &Task<T>,
    start: usize,
    dx: &mut [T],
    dw: &mut [T],
) -> Vec<f64> {
    backward_kernel::<T, true, WP>(g, ctx, task, start, dx, dw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,popcnt")]
fn backward_avx2<T: WithDType, const WP: usize>(
    g: &Geom,
    ctx: &BwdCtx,
    task: &Task<T>,
    start: usize,
    dx: &mut [T],
    dw: &mut [T],
) -> Vec<f64> {
    backward_kernel::<T, true, WP>(g, ctx, task, start, dx, dw)
}

fn backward_chunk<T: WithDType>(
    isa: Isa,
    g: &Geom,
    ctx: &BwdCtx,
    task: &Task<T>,
    start: usize,
    dx: &mut [T],
    dw: &mut [T],
) -> Vec<f64> {
    match isa {
        // SAFETY: `isa()` found the features these copies were compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { by_width!(g.wp, backward_avx512, T, g, ctx, task, start, dx, dw) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { by_width!(g.wp, backward_avx2, T, g, ctx, task, start, dx, dw) },
        Isa::Base => backward_kernel::<T, false, 0>(g, ctx, task, start, dx, dw),
    }
}

/// Forward: counts (S × B, row-major) in f64.
pub(crate) fn forward<T: WithDType>(plan: &Plan, x: &[T], w: Option<&[T]>) -> Vec<f64> {
    let nb = plan.edges.len() - 1;
    let ns = plan.segments.len() - 1;
    let m = x.len();
    let n_chunks = m.div_ceil(CHUNK);
    let g = Geom::new(plan);
    let isa = isa();
    let partial: Vec<(usize, Vec<f64>)> = map_tasks((0..n_chunks).collect(), |c| {
        let start = c * CHUNK;
        let task = Task::new(plan, x, w, start, (start + CHUNK).min(m));
        (task.s0, forward_chunk(isa, &g, &task))
    });
    let mut out = vec![0.0f64; ns * nb];
    for (s0, p) in &partial {
        for (o, v) in out[s0 * nb..].iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

/// Gradients of Σ_sb grad_sb · counts_sb.
pub(crate) struct Grads<T> {
    /// d/dx (M), empty when not needed.
    pub dx: Vec<T>,
    /// d/dw (M), empty when not needed or unweighted.
    pub dw: Vec<T>,
    /// d/de (B+1), empty when not needed.
    pub de: Vec<f64>,
}

/// Backward: `grad` is dL/dcounts (S × B, row-major).
pub(crate) fn backward<T: WithDType>(
    plan: &Plan,
    x: &[T],
    w: Option<&[T]>,
    grad: &[f64],
    need: Need,
) -> Grads<T> {
    let nb = plan.edges.len() - 1;
    let ne = nb + 1;
    let ns = plan.segments.len() - 1;
    let m = x.len();
    let n_chunks = m.div_ceil(CHUNK);
    let inv_h = 1.0 / plan.h;
    let need_dw = need.dw && w.is_some();
    let g = Geom::new(plan);
    let cw = ne + g.wp;

    // c_sj: coefficient of Φ((e_j − x)/h) in the loss, per sample; and
    // dL/dcounts by the number k of edges ≤ x.
    let mut coef = vec![0.0f64; ns * cw];
    let mut grad_k = vec![0.0f64; ns * (ne + 1)];
    for s in 0..ns {
        let gs = &grad[s * nb..(s + 1) * nb];
        for j in 0..ne {
            let up = if j >= 1 { gs[j - 1] } else { 0.0 };
            let down = if j < nb { gs[j] } else { 0.0 };
            coef[s * cw + j] = up - down;
        }
        grad_k[s * (ne + 1) + 1..s * (ne + 1) + ne].copy_from_slice(gs);
    }
    let ctx = BwdCtx {
        coef: &coef,
        grad_k: &grad_k,
        need,
        need_dw,
    };

    // room for the caller to append d/dw and d/de without moving d/dx
    let mut dx = if need.dx {
        let mut v = Vec::with_capacity(2 * m + ne);
        v.resize(m, T::zero());
        v
    } else {
        vec![]
    };
    let mut dw = if need_dw { vec![T::zero(); m] } else { vec![] };
    let dx_chunks: Vec<&mut [T]> = if need.dx {
        dx.chunks_mut(CHUNK).collect()
    } else {
        (0..n_chunks).map(|_| Default::default()).collect()
    };
    let dw_chunks: Vec<&mut [T]> = if need_dw {
        dw.chunks_mut(CHUNK).collect()
    } else {
        (0..n_chunks).map(|_| Default::default()).collect()
    };
    let any = need.dx || need_dw || need.de;
    let isa = isa();

    let tasks: Vec<_> = dx_chunks.into_iter().zip(dw_chunks).enumerate().collect();
    let partial: Vec<(usize, Vec<f64>)> = map_tasks(tasks, |(c, (dxc, dwc))| {
        if !any {
            return (0, vec![]);
        }
        let start = c * CHUNK;
        let task = Task::new(plan, x, w, start, (start + CHUNK).min(m));
        let acc = backward_chunk(isa, &g, &ctx, &task, start, dxc, dwc);
        (task.s0, acc)
    });

    let de = if need.de {
        let mut acc = vec![0.0f64; ns * ne];
        for (s0, p) in &partial {
            for (o, v) in acc[s0 * ne..].iter_mut().zip(p) {
                *o += v;
            }
        }
        (0..ne)
            .map(|j| {
                (0..ns)
                    .map(|s| coef[s * cw + j] * acc[s * ne + j])
                    .sum::<f64>()
                    * inv_h
            })
            .collect()
    } else {
        vec![]
    };
    Grads { dx, dw, de }
}

/// Hard histogram (S × B counts and Σw²), bins `[e_b, e_{b+1})`, the last one
/// closed, outside events dropped or folded into the edge bins.
pub(crate) fn hard<T: WithDType>(
    edges: &[f64],
    segments: &[usize],
    x: &[T],
    w: Option<&[T]>,
    fold: bool,
) -> (Vec<f64>, Vec<f64>) {
    let nb = edges.len() - 1;
    let ns = segments.len() - 1;
    let mut counts = vec![0.0f64; ns * nb];
    let mut sumw2 = vec![0.0f64; ns * nb];
    for s in 0..ns {
        for i in segments[s]..segments[s + 1] {
            let xi = x[i].to_f64();
            let wi = w.map_or(1.0, |w| w[i].to_f64());
            let k = edges.partition_point(|&e| e <= xi);
            let bin = if k == 0 {
                fold.then_some(0)
            } else if k <= nb {
                Some(k - 1)
            } else if xi == edges[nb] || fold {
                Some(nb - 1)
            } else {
                None
            };
            if let Some(b) = bin {
                counts[s * nb + b] += wi;
                sumw2[s * nb + b] += wi * wi;
            }
        }
    }
    (counts, sumw2)
}
