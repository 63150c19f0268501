//! CPU kernels of the bKDE: one fused O(N) pass forward and one backward,
//! parallel over events (rayon), accumulating in f64.
//!
//! Per event only the edges within `half_window` of the event are evaluated;
//! every other edge contributes a signed tail below the chosen resolution (see
//! [`super::BkdeOptions::window`]). Bin masses are formed from signed tails
//! (Φ(z) for z ≤ 0, Φ(z) − 1 for z > 0) plus the whole weight in the bin that
//! contains the event, so no bin suffers the cancellation of 1 − Φ.
//!
//! Chunks have a fixed size and partial sums are added in chunk order, so
//! results do not depend on the number of threads.

use candle_core::WithDType;
use rayon::prelude::*;

use crate::ops::normal::signed_tail_pdf_batch;

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
    /// (exact for uniform edges, corrected by comparisons in any case).
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
    #[inline(always)]
    fn n_bins(&self) -> usize {
        self.edges.len() - 1
    }

    /// Index of the first edge ≥ v (the number of edges < v): a guess from
    /// the mean spacing, verified and nudged by comparisons, with a binary
    /// search as fallback, so the result is exact for any edges.
    #[inline(always)]
    fn first_geq(&self, v: f64) -> usize {
        let e = self.edges;
        let n = e.len();
        let g = ((v - e[0]) * self.inv_step).ceil();
        let j = if g >= n as f64 {
            n
        } else if g > 0.0 {
            g as usize
        } else {
            0
        };
        let ok = |j: usize| (j == 0 || e[j - 1] < v) && (j == n || e[j] >= v);
        if ok(j) {
            j
        } else if j < n && ok(j + 1) {
            j + 1
        } else if j > 0 && ok(j - 1) {
            j - 1
        } else {
            e.partition_point(|&ej| ej < v)
        }
    }

    /// Edges `lo..hi` inside the window and `k` = number of edges ≤ x.
    #[inline(always)]
    fn locate(&self, x: f64) -> (usize, usize, usize) {
        let e = self.edges;
        let lo = self.first_geq(x - self.half_window);
        let mut hi = lo;
        let mut k = lo;
        let top = x + self.half_window;
        while hi < e.len() && e[hi] <= top {
            if e[hi] <= x {
                k = hi + 1;
            }
            hi += 1;
        }
        (lo, hi, k)
    }

    /// The bin receiving the event's whole weight, and the edge range whose
    /// signed tails are evaluated (outer edges sit at ∓∞ when folding).
    #[inline(always)]
    fn bin_and_edges(&self, x: f64) -> (Option<usize>, usize, usize) {
        let nb = self.n_bins();
        let (lo, hi, k) = self.locate(x);
        if self.fold {
            (Some(k.clamp(1, nb) - 1), lo.max(1), hi.min(nb))
        } else {
            let bin = if k >= 1 && k <= nb { Some(k - 1) } else { None };
            (bin, lo, hi)
        }
    }

    /// Calls `f(sample, range)` for the parts of `start..end` in each sample.
    #[inline]
    fn for_segments(&self, start: usize, end: usize, mut f: impl FnMut(usize, usize, usize)) {
        let seg = self.segments;
        // first sample whose end lies beyond `start`
        let mut s = seg[1..].partition_point(|&o| o <= start);
        let mut a = start;
        while a < end && s + 1 < seg.len() {
            let z = seg[s + 1].min(end);
            if z > a {
                f(s, a, z);
            }
            a = z;
            s += 1;
        }
    }
}

/// Pairs (event, edge) of one chunk awaiting evaluation of Φ/φ at
/// z = (e_j − x_i)/h; evaluated together by the vectorised batch routine.
/// Fixed-capacity arrays filled up to `n`.
struct Pairs {
    z: Vec<f64>,
    t: Vec<f64>,
    p: Vec<f64>,
    /// flat (sample, edge) index s·(B+1) + j
    se: Vec<u32>,
    /// event weight
    w: Vec<f64>,
    n: usize,
}

/// Pairs evaluated per batch (at least one event's whole window).
const BATCH: usize = 1024;

impl Pairs {
    fn new(n_edges: usize) -> Self {
        let cap = BATCH.max(n_edges);
        Self {
            z: vec![0.0; cap],
            t: vec![0.0; cap],
            p: vec![0.0; cap],
            se: vec![0; cap],
            w: vec![0.0; cap],
            n: 0,
        }
    }

    #[inline(always)]
    fn fits(&self, k: usize) -> bool {
        self.n + k <= self.z.len()
    }

    #[inline(always)]
    fn push(&mut self, z: f64, se: usize, w: f64) {
        let k = self.n;
        self.z[k] = z;
        self.se[k] = se as u32;
        self.w[k] = w;
        self.n = k + 1;
    }

    fn eval(&mut self) {
        let n = self.n;
        signed_tail_pdf_batch(&self.z[..n], &mut self.t[..n], &mut self.p[..n]);
    }
}

/// Evaluates the pending pairs and adds w·tail to each pair's edge
/// accumulator (S × (B+1)); bins are differences of adjacent edges.
fn flush_forward(pairs: &mut Pairs, acc_edge: &mut [f64]) {
    pairs.eval();
    for k in 0..pairs.n {
        acc_edge[pairs.se[k] as usize] += pairs.w[k] * pairs.t[k];
    }
    pairs.n = 0;
}

/// Forward: counts (S × B, row-major) in f64.
pub(crate) fn forward<T: WithDType>(plan: &Plan, x: &[T], w: Option<&[T]>) -> Vec<f64> {
    let nb = plan.n_bins();
    let ns = plan.segments.len() - 1;
    let m = x.len();
    let n_chunks = m.div_ceil(CHUNK);
    let inv_h = 1.0 / plan.h;
    let e = plan.edges;
    let partial: Vec<Vec<f64>> = map_tasks((0..n_chunks).collect(), |c| {
        let ne = nb + 1;
        let mut acc = vec![0.0f64; ns * nb];
        let mut acc_edge = vec![0.0f64; ns * ne];
        let mut pairs = Pairs::new(ne);
        let start = c * CHUNK;
        let end = (start + CHUNK).min(m);
        plan.for_segments(start, end, |s, a, z| {
            for i in a..z {
                let xi = x[i].to_f64();
                let wi = match w {
                    Some(w) => w[i].to_f64(),
                    None => 1.0,
                };
                let (bin, jlo, jhi) = plan.bin_and_edges(xi);
                if let Some(b) = bin {
                    acc[s * nb + b] += wi;
                }
                if !pairs.fits(jhi.saturating_sub(jlo)) {
                    flush_forward(&mut pairs, &mut acc_edge);
                }
                for (j, &ej) in e.iter().enumerate().take(jhi).skip(jlo) {
                    pairs.push((ej - xi) * inv_h, s * ne + j, wi);
                }
            }
        });
        flush_forward(&mut pairs, &mut acc_edge);
        // bin b gains the tail at its upper edge and loses the one at its lower edge
        for s in 0..ns {
            for b in 0..nb {
                acc[s * nb + b] += acc_edge[s * ne + b + 1] - acc_edge[s * ne + b];
            }
        }
        acc
    });
    let mut out = vec![0.0f64; ns * nb];
    for p in &partial {
        for (o, v) in out.iter_mut().zip(p) {
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

/// One event of a backward batch: its pairs are `start..end`.
struct Pending {
    local: usize,
    bin: Option<usize>,
    w: f64,
    start: usize,
    end: usize,
}

/// Per-chunk outputs and context of the backward pass.
struct BwdChunk<'a, T> {
    dx: &'a mut [T],
    dw: &'a mut [T],
    acc_e: Vec<f64>,
    grad: &'a [f64],
    coef: &'a [f64],
    inv_h: f64,
    need: Need,
    need_dw: bool,
}

impl<T: WithDType> BwdChunk<'_, T> {
    fn flush(&mut self, pairs: &mut Pairs, events: &mut Vec<Pending>) {
        pairs.eval();
        if self.need.de {
            for k in 0..pairs.n {
                self.acc_e[pairs.se[k] as usize] += pairs.w[k] * pairs.p[k];
            }
        }
        for ev in events.iter() {
            let mut sum_t = 0.0;
            let mut sum_p = 0.0;
            for k in ev.start..ev.end {
                let c = self.coef[pairs.se[k] as usize];
                sum_t += c * pairs.t[k];
                sum_p += c * pairs.p[k];
            }
            if self.need.dx {
                self.dx[ev.local] = T::from_f64(-ev.w * self.inv_h * sum_p);
            }
            if self.need_dw {
                let gb = ev.bin.map_or(0.0, |b| self.grad[b]);
                self.dw[ev.local] = T::from_f64(gb + sum_t);
            }
        }
        pairs.n = 0;
        events.clear();
    }
}

/// Backward: `grad` is dL/dcounts (S × B, row-major).
pub(crate) fn backward<T: WithDType>(
    plan: &Plan,
    x: &[T],
    w: Option<&[T]>,
    grad: &[f64],
    need: Need,
) -> Grads<T> {
    let nb = plan.n_bins();
    let ne = nb + 1;
    let ns = plan.segments.len() - 1;
    let m = x.len();
    let n_chunks = m.div_ceil(CHUNK);
    let inv_h = 1.0 / plan.h;
    let e = plan.edges;
    let need_dw = need.dw && w.is_some();

    // c_sj: coefficient of Φ((e_j − x)/h) in the loss, per sample.
    let mut coef = vec![0.0f64; ns * ne];
    for s in 0..ns {
        let g = &grad[s * nb..(s + 1) * nb];
        for j in 0..ne {
            let up = if j >= 1 { g[j - 1] } else { 0.0 };
            let down = if j < nb { g[j] } else { 0.0 };
            coef[s * ne + j] = up - down;
        }
    }

    let mut dx = if need.dx { vec![T::zero(); m] } else { vec![] };
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

    let tasks: Vec<_> = dx_chunks.into_iter().zip(dw_chunks).enumerate().collect();
    let partial: Vec<Vec<f64>> = map_tasks(tasks, |(c, (dxc, dwc))| {
        let mut chunk = BwdChunk {
            dx: dxc,
            dw: dwc,
            acc_e: if need.de {
                vec![0.0f64; ns * ne]
            } else {
                vec![]
            },
            grad,
            coef: &coef,
            inv_h,
            need,
            need_dw,
        };
        if !any {
            return chunk.acc_e;
        }
        let mut pairs = Pairs::new(ne);
        let mut events: Vec<Pending> = Vec::with_capacity(BATCH);
        let start = c * CHUNK;
        let end = (start + CHUNK).min(m);
        plan.for_segments(start, end, |s, a, z| {
            for i in a..z {
                let xi = x[i].to_f64();
                let wi = match w {
                    Some(w) => w[i].to_f64(),
                    None => 1.0,
                };
                let (bin, jlo, jhi) = plan.bin_and_edges(xi);
                if !pairs.fits(jhi.saturating_sub(jlo)) {
                    chunk.flush(&mut pairs, &mut events);
                }
                let first = pairs.n;
                for (j, &ej) in e.iter().enumerate().take(jhi).skip(jlo) {
                    pairs.push((ej - xi) * inv_h, s * ne + j, wi);
                }
                events.push(Pending {
                    local: i - start,
                    bin: bin.map(|b| s * nb + b),
                    w: wi,
                    start: first,
                    end: pairs.n,
                });
            }
        });
        chunk.flush(&mut pairs, &mut events);
        chunk.acc_e
    });

    let de = if need.de {
        let mut acc = vec![0.0f64; ns * ne];
        for p in &partial {
            for (o, v) in acc.iter_mut().zip(p) {
                *o += v;
            }
        }
        (0..ne)
            .map(|j| {
                (0..ns)
                    .map(|s| coef[s * ne + j] * acc[s * ne + j])
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
