// Standard-normal tail and density for the anagrad CUDA kernels: the same
// W. J. Cody (ACM TOMS 715) approximations as src/ops/normal/mod.rs, in double
// precision, with the split exponent that keeps the tail's relative accuracy.

__device__ __forceinline__ double anagrad_small_ratio(double x) {
    const double a[5] = {2.2352520354606839287, 161.02823106855587881, 1067.6894854603709582,
                         18154.981253343561249, 0.065682337918207449113};
    const double b[4] = {47.20258190468824187, 976.09855173777669322, 10260.932208618978205,
                         45507.789335026729956};
    double xsq = x * x;
    double num = a[4] * xsq, den = xsq;
    for (int i = 0; i < 3; ++i) {
        num = (num + a[i]) * xsq;
        den = (den + b[i]) * xsq;
    }
    return x * (num + a[3]) / (den + b[3]);
}

__device__ __forceinline__ double anagrad_mid_ratio(double y) {
    const double c[9] = {0.39894151208813466764, 8.8831497943883759412, 93.506656132177855979,
                         597.27027639480026226, 2494.5375852903726711, 6848.1904505362823326,
                         11602.651437647350124, 9842.7148383839780218, 1.0765576773720192317e-8};
    const double d[8] = {22.266688044328115691, 235.38790178262499861, 1519.377599407554805,
                         6485.558298266760755, 18615.571640885098091, 34900.952721145977266,
                         38912.003286093271411, 19685.429676859990727};
    double num = c[8] * y, den = y;
    for (int i = 0; i < 7; ++i) {
        num = (num + c[i]) * y;
        den = (den + d[i]) * y;
    }
    return (num + c[7]) / (den + d[7]);
}

__device__ __forceinline__ double anagrad_large_ratio(double y) {
    const double p[6] = {0.21589853405795699, 0.1274011611602473639, 0.022235277870649807,
                         0.001421619193227893466, 2.9112874951168792e-5, 0.02307344176494017303};
    const double q[5] = {1.28426009614491121, 0.468238212480865118, 0.0659881378689285515,
                         0.00378239633202758244, 7.29751555083966205e-5};
    double xsq = 1.0 / (y * y);
    double num = p[5] * xsq, den = xsq;
    for (int i = 0; i < 4; ++i) {
        num = (num + p[i]) * xsq;
        den = (den + q[i]) * xsq;
    }
    double t = xsq * (num + p[4]) / (den + q[4]);
    return (0.398942280401432677939946059934 - t) / y;
}

__device__ __forceinline__ double anagrad_gauss(double y) {
    double ysq = trunc(y * 16.0) * 0.0625;
    double del = (y - ysq) * (y + ysq);
    return exp(-0.5 * ysq * ysq) * exp(-0.5 * del);
}

// Upper tail Q(y) = Phi(-y) and density phi(y) for y >= 0.
__device__ __forceinline__ void anagrad_upper_tail_pdf(double y, double* q, double* p) {
    const double frac_1_sqrt_2pi = 0.398942280401432677939946059934;
    if (y <= 0.67448975) {
        *q = 0.5 - anagrad_small_ratio(y);
        *p = exp(-0.5 * y * y) * frac_1_sqrt_2pi;
    } else if (y > 38.5) {
        *q = 0.0;
        *p = 0.0;
    } else {
        double g = anagrad_gauss(y);
        *q = g * (y <= 5.656854249492380195206754896838 ? anagrad_mid_ratio(y) : anagrad_large_ratio(y));
        *p = g * frac_1_sqrt_2pi;
    }
}

// Signed small tail: Phi(x) for x <= 0, Phi(x) - 1 for x > 0; and phi(x).
__device__ __forceinline__ void anagrad_signed_tail_pdf(double x, double* t, double* p) {
    if (x <= 0.0) {
        anagrad_upper_tail_pdf(-x, t, p);
    } else {
        anagrad_upper_tail_pdf(x, t, p);
        *t = -*t;
    }
}
