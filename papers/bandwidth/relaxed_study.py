"""The default bandwidth study run with relaxed 0.4.0 + JAX (CPU, float64).

Reference for anagrad's `bandwidth-study` (issue 6). For every sample size N
and bandwidth-to-bin-width ratio r it draws 500 independent datasets
x = theta + z, z ~ Normal(0, 1), at theta = 0 and computes

    L(theta) = sum_b (counts_b(theta) / N - p_b)^2,
    counts = relaxed.hist(x, edges, bandwidth = r * bin_width)

with 6 equal bins on [-3, 3] and p_b the exact bin probabilities of
Normal(0.5, 1). dL/dtheta flows through the data (reparametrisation). Kernel
mass beyond the outer edges is dropped (relaxed.hist's default,
reflect_infinities=False), which is also anagrad's default (`Outside::Drop`);
events beyond the range are likewise dropped by the hard histogram.

It also writes the exact gradient of the expected hard-histogram loss,
d/dtheta E[L_hard] = sum_b p_b'(theta) [(1 - 2 p_b)/N + 2 (p_b - q_b)],
from the multinomial moments E[(c_b/N)^2] = p_b(1-p_b)/N + p_b^2.

Run (scratch venv outside the repo):
    python3 -m venv /work/venv-bandwidth
    /work/venv-bandwidth/bin/pip install relaxed==0.4.0 'jax[cpu]' scipy
    /work/venv-bandwidth/bin/python papers/bandwidth/relaxed_study.py

Outputs: tests/fixtures/bandwidth_relaxed.json (strict JSON),
papers/bandwidth/relaxed_table.csv.

Datasets: numpy.random.default_rng(SEED + 1000 * i_n + 100 * i_r), one
generator per cell (so cells are independent of each other and of anagrad's
own, rand-seeded, datasets: the comparison is statistical, within MC error).
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import relaxed  # noqa: E402
from scipy.stats import norm  # noqa: E402

SEED = 20_260_601
THETA = 0.0
TARGET_MEAN = 0.5
EDGES = np.linspace(-3.0, 3.0, 7)
BIN_WIDTH = EDGES[1] - EDGES[0]
RATIOS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
NS = [100, 1000, 10000]
DATASETS = 500

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "bandwidth_relaxed.json"
TABLE = ROOT / "papers" / "bandwidth" / "relaxed_table.csv"


def bin_probs(mu: float) -> np.ndarray:
    return np.diff(norm.cdf(EDGES - mu))


def exact_hard_gradient(n: int, theta: float = THETA) -> float:
    p = bin_probs(theta)
    q = bin_probs(TARGET_MEAN)
    # d/dtheta [Phi(e_{b+1} - theta) - Phi(e_b - theta)]
    dp = -(norm.pdf(EDGES[1:] - theta) - norm.pdf(EDGES[:-1] - theta))
    return float(np.sum(dp * ((1.0 - 2.0 * p) / n + 2.0 * (p - q))))


TARGET = jnp.asarray(bin_probs(TARGET_MEAN))
EDGES_J = jnp.asarray(EDGES)


def loss(theta, z, bandwidth):
    x = theta + z
    counts = relaxed.hist(x, EDGES_J, bandwidth)
    return jnp.sum((counts / z.shape[0] - TARGET) ** 2)


grad_batch = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, None)))


def run_cell(n: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    h = ratio * BIN_WIDTH
    z = rng.standard_normal((DATASETS, n))
    out = []
    batch = max(1, min(DATASETS, 2_000_000 // n))
    for start in range(0, DATASETS, batch):
        out.append(np.asarray(grad_batch(THETA, jnp.asarray(z[start : start + batch]), h)))
    g = np.concatenate(out)
    assert g.shape == (DATASETS,) and np.all(np.isfinite(g))
    return g


def main() -> None:
    t0 = time.time()
    cells = []
    for i_n, n in enumerate(NS):
        true = exact_hard_gradient(n)
        for i_r, r in enumerate(RATIOS):
            rng = np.random.default_rng(SEED + 1000 * i_n + 100 * i_r)
            g = run_cell(n, r, rng)
            mean = float(g.mean())
            std = float(g.std(ddof=1))
            bias = mean - true
            rmse = math.sqrt(bias**2 + std**2)
            cells.append(
                {"n": n, "ratio": r, "mean": mean, "std": std, "true": true, "bias": bias, "rmse": rmse}
            )
            print(f"N={n:6d} r={r:5.2f} mean={mean:+.6e} std={std:.6e} true={true:+.6e} rmse={rmse:.4e}")
    elapsed = time.time() - t0

    doc = {
        "generator": "papers/bandwidth/relaxed_study.py",
        "relaxed_version": relaxed.__version__,
        "jax_version": jax.__version__,
        "dtype": "float64",
        "theta": THETA,
        "target_mean": TARGET_MEAN,
        "edges": EDGES.tolist(),
        "outside": "drop",
        "datasets": DATASETS,
        "seed": SEED,
        "ratios": RATIOS,
        "ns": NS,
        "std_convention": "sample std (ddof=1) over datasets",
        "rmse_convention": "sqrt(bias^2 + std^2), bias = mean - true",
        "elapsed_s": round(elapsed, 2),
        "cells": cells,
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    with TABLE.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["n", "ratio", "mean", "std", "true", "bias", "rmse"])
        for c in cells:
            w.writerow([c["n"], c["ratio"], *(repr(c[k]) for k in ("mean", "std", "true", "bias", "rmse"))])
    print(f"wrote {FIXTURE} and {TABLE} ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
