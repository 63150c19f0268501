"""Times relaxed.hist (relaxed 0.4.0, JAX jit, CPU) value + gradient on the same
cases as benches/hist.rs, for the side-by-side comparison recorded there.

Each case: N events (95 % uniform on [0, 1], 5 % on [-0.3, 1.3]), B bins on
[0, 1], bandwidth 0.5/B, loss = sum_b g_b * hist_b, jax.value_and_grad w.r.t.
data and edges (relaxed.hist has no per-event weights; anagrad's bench also
differentiates w.r.t. weights, so the comparison is conservative for anagrad).
Prints events*edges/s = N*(B+1)/time (median of repeats after a warm-up).

Run:  /work/venv-ops/bin/python benches/relaxed_hist_timing.py [--quick]
"""

import sys
import time

import jax

jax.config.update("jax_platform_name", "cpu")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import relaxed  # noqa: E402


def run(n, b, dtype, repeats):
    rng = np.random.default_rng(n * 1000 + b)
    x = rng.uniform(0.0, 1.0, size=n)
    x[::20] = rng.uniform(-0.3, 1.3, size=len(x[::20]))
    data = jnp.asarray(x, dtype=dtype)
    edges = jnp.linspace(0.0, 1.0, b + 1, dtype=dtype)
    g = jnp.asarray(rng.uniform(-1.0, 1.0, size=b), dtype=dtype)
    h = 0.5 / b

    @jax.jit
    def vg(d, e):
        return jax.value_and_grad(lambda d, e: jnp.sum(g * relaxed.hist(d, e, bandwidth=h)), argnums=(0, 1))(d, e)

    jax.block_until_ready(vg(data, edges))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(vg(data, edges))
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return t, n * (b + 1) / t


def main():
    quick = "--quick" in sys.argv
    print(f"jax {jax.__version__}, relaxed {relaxed.__version__}, devices {jax.devices()}")
    for dtype_name in ("f32", "f64"):
        if dtype_name == "f64":
            jax.config.update("jax_enable_x64", True)
        dtype = jnp.float32 if dtype_name == "f32" else jnp.float64
        for n in (10_000, 100_000, 1_000_000):
            for b in (4, 20, 50):
                reps = 3 if (quick or n == 1_000_000) else 10
                t, thr = run(n, b, dtype, reps)
                print(f"relaxed_value_grad/{dtype_name}/N={n}/B={b}: {t * 1e3:9.3f} ms  {thr:.3e} events*edges/s")


if __name__ == "__main__":
    main()
