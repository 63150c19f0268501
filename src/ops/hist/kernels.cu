// bKDE kernels for candle's CUDA backend, compiled at run time with NVRTC
// (src/ops/hist/cuda.rs prepends src/ops/normal/normal.cuh).
//
// Same algorithm as the CPU path (src/ops/hist/cpu.rs): per event, the whole
// weight goes to the bin containing it, plus signed tails of Phi at the edges
// inside the window |e - x| <= half_window; mass outside the outer edges is
// dropped or folded (outer edges at -inf/+inf). Accumulation in double: per
// block in shared memory when S*(B+1) fits, else directly with global atomics.

typedef long long i64;

__device__ __forceinline__ int anagrad_sample_of(const i64* seg, int ns, i64 i) {
    int lo = 0, hi = ns;  // seg[lo] <= i < seg[hi]
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (seg[mid] <= i) lo = mid; else hi = mid;
    }
    return lo;
}

// Edge window [lo, hi) and k = number of edges <= x.
__device__ __forceinline__ void anagrad_locate(const double* e, int ne, double x, double hw,
                                               int* lo_out, int* hi_out, int* k_out) {
    double bottom = x - hw;
    int lo = 0, hi = ne;
    while (lo < hi) {  // first edge >= bottom
        int mid = (lo + hi) >> 1;
        if (e[mid] < bottom) lo = mid + 1; else hi = mid;
    }
    int j = lo, k = lo;
    double top = x + hw;
    while (j < ne && e[j] <= top) {
        if (e[j] <= x) k = j + 1;
        ++j;
    }
    *lo_out = lo;
    *hi_out = j;
    *k_out = k;
}

template <typename T>
__device__ void anagrad_bkde_fwd(const T* x, const T* w, int weighted, const T* edges_in, const i64* seg,
                                 int ns, int ne, i64 m, double h, double hw, int fold, int use_shared,
                                 double* out) {
    extern __shared__ double smem[];
    int nb = ne - 1;
    double* e = smem;
    double* acc = use_shared ? smem + ne : out;
    for (int j = threadIdx.x; j < ne; j += blockDim.x) e[j] = (double)edges_in[j];
    if (use_shared)
        for (int j = threadIdx.x; j < ns * nb; j += blockDim.x) acc[j] = 0.0;
    __syncthreads();
    double inv_h = 1.0 / h;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < m; i += (i64)gridDim.x * blockDim.x) {
        int s = anagrad_sample_of(seg, ns, i);
        double xi = (double)x[i];
        double wi = weighted ? (double)w[i] : 1.0;
        int lo, hi, k;
        anagrad_locate(e, ne, xi, hw, &lo, &hi, &k);
        double* row = acc + (i64)s * nb;
        int bin;
        if (fold) {
            bin = min(max(k, 1), nb) - 1;
            lo = max(lo, 1);
            hi = min(hi, nb);
        } else {
            bin = (k >= 1 && k <= nb) ? k - 1 : -1;
        }
        if (bin >= 0) atomicAdd(row + bin, wi);
        for (int j = lo; j < hi; ++j) {
            double t, p;
            anagrad_signed_tail_pdf((e[j] - xi) * inv_h, &t, &p);
            t *= wi;
            if (j >= 1) atomicAdd(row + j - 1, t);
            if (j < nb) atomicAdd(row + j, -t);
        }
    }
    if (use_shared) {
        __syncthreads();
        for (int j = threadIdx.x; j < ns * nb; j += blockDim.x) atomicAdd(out + j, acc[j]);
    }
}

// coef: S x (B+1) coefficients c_sj = g_s,j-1 - g_s,j; grad: S x B.
// out: T buffer receiving dx at dx_off and dw at dw_off (-1: not wanted);
// acc_e: S x (B+1) doubles receiving sum_i w_i phi_ij (null-equivalent when !need_de).
template <typename T>
__device__ void anagrad_bkde_bwd(const T* x, const T* w, int weighted, const T* edges_in, const i64* seg,
                                 int ns, int ne, i64 m, double h, double hw, int fold, int use_shared,
                                 const double* grad, const double* coef, T* out, i64 dx_off, i64 dw_off,
                                 int need_de, double* acc_e) {
    extern __shared__ double smem[];
    int nb = ne - 1;
    double* e = smem;
    double* acc = use_shared ? smem + ne : acc_e;
    for (int j = threadIdx.x; j < ne; j += blockDim.x) e[j] = (double)edges_in[j];
    if (use_shared && need_de)
        for (int j = threadIdx.x; j < ns * ne; j += blockDim.x) acc[j] = 0.0;
    __syncthreads();
    double inv_h = 1.0 / h;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < m; i += (i64)gridDim.x * blockDim.x) {
        int s = anagrad_sample_of(seg, ns, i);
        double xi = (double)x[i];
        double wi = weighted ? (double)w[i] : 1.0;
        int lo, hi, k;
        anagrad_locate(e, ne, xi, hw, &lo, &hi, &k);
        int bin;
        if (fold) {
            bin = min(max(k, 1), nb) - 1;
            lo = max(lo, 1);
            hi = min(hi, nb);
        } else {
            bin = (k >= 1 && k <= nb) ? k - 1 : -1;
        }
        const double* cs = coef + (i64)s * ne;
        double sum_t = 0.0, sum_p = 0.0;
        for (int j = lo; j < hi; ++j) {
            double t, p;
            anagrad_signed_tail_pdf((e[j] - xi) * inv_h, &t, &p);
            sum_t += cs[j] * t;
            sum_p += cs[j] * p;
            if (need_de) atomicAdd(acc + (i64)s * ne + j, wi * p);
        }
        if (dx_off >= 0) out[dx_off + i] = (T)(-wi * inv_h * sum_p);
        if (dw_off >= 0) out[dw_off + i] = (T)((bin >= 0 ? grad[(i64)s * nb + bin] : 0.0) + sum_t);
    }
    if (use_shared && need_de) {
        __syncthreads();
        for (int j = threadIdx.x; j < ns * ne; j += blockDim.x) atomicAdd(acc_e + j, acc[j]);
    }
}

// de_j = sum_s c_sj acc_sj / h, written to out[de_off + j].
template <typename T>
__device__ void anagrad_bkde_de(const double* acc_e, const double* coef, int ns, int ne, double inv_h, T* out,
                                i64 de_off) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= ne) return;
    double v = 0.0;
    for (int s = 0; s < ns; ++s) v += coef[(i64)s * ne + j] * acc_e[(i64)s * ne + j];
    out[de_off + j] = (T)(v * inv_h);
}

template <typename T>
__device__ void anagrad_cast_from_f64(const double* src, T* dst, i64 n) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        dst[i] = (T)src[i];
}

#define ANAGRAD_INSTANTIATE(T, SUFFIX)                                                                     \
    extern "C" __global__ void anagrad_bkde_fwd_##SUFFIX(const T* x, const T* w, int weighted,             \
                                                         const T* edges, const i64* seg, int ns, int ne,   \
                                                         i64 m, double h, double hw, int fold,             \
                                                         int use_shared, double* out) {                    \
        anagrad_bkde_fwd<T>(x, w, weighted, edges, seg, ns, ne, m, h, hw, fold, use_shared, out);          \
    }                                                                                                      \
    extern "C" __global__ void anagrad_bkde_bwd_##SUFFIX(                                                  \
        const T* x, const T* w, int weighted, const T* edges, const i64* seg, int ns, int ne, i64 m,       \
        double h, double hw, int fold, int use_shared, const double* grad, const double* coef, T* out,     \
        i64 dx_off, i64 dw_off, int need_de, double* acc_e) {                                              \
        anagrad_bkde_bwd<T>(x, w, weighted, edges, seg, ns, ne, m, h, hw, fold, use_shared, grad, coef,    \
                            out, dx_off, dw_off, need_de, acc_e);                                          \
    }                                                                                                      \
    extern "C" __global__ void anagrad_bkde_de_##SUFFIX(const double* acc_e, const double* coef, int ns,   \
                                                        int ne, double inv_h, T* out, i64 de_off) {        \
        anagrad_bkde_de<T>(acc_e, coef, ns, ne, inv_h, out, de_off);                                       \
    }                                                                                                      \
    extern "C" __global__ void anagrad_cast_f64_##SUFFIX(const double* src, T* dst, i64 n) {               \
        anagrad_cast_from_f64<T>(src, dst, n);                                                             \
    }

ANAGRAD_INSTANTIATE(float, f32)
ANAGRAD_INSTANTIATE(double, f64)
