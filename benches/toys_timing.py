"""Toys per second, side by side: anagrad's CLI vs pyhf 0.7.6's ToyCalculator
(numpy backend) vs NextStat's CPU toys, on pyhf's benchmark models.

Models: ``pyhf.simplemodels.uncorrelated_background`` as pyhf's own
benchmarks build them (``tests/benchmarks/test_benchmark.py``): per bin
signal 30, background 100 ± 10 (shapesys), observed 120, at 1, 10 and 100 bins.
One toy-based hypotest at mu = 1 (q~mu) with NTOYS toys per hypothesis; the rate
is 2 * NTOYS / wall time.

* anagrad: ``anagrad cls WS --calctype toybased --ntoys N --quiet`` (release
  binary, whole process: reading, the observed fits, the toys, writing the
  distributions and the figure), with RAYON_NUM_THREADS=1 and with all cores.
* pyhf: ``ToyCalculator.distributions`` + ``teststatistic`` in-process
  (numpy backend, scipy SLSQP; single-threaded Python loop).
* NextStat: ``nextstat.hypotest_toys(1.0, model, n_toys=N, expected_set=True)``
  in-process (``nextstat==0.10.1``, CPU), its threads pinned with
  ``set_threads`` (1 or all, one process each).

    cargo build --release
    /work/venv-refs/bin/python benches/toys_timing.py [--ntoys 2000] [--ntoys-pyhf 200 50 10]

pyhf gets fewer toys (200, 50, 10 per hypothesis at 1, 10, 100 bins: its rate
does not depend on N, and 100 bins cost it seconds per toy); the others run N.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

BINS = [1, 10, 100]


def workspace(n):
    return {
        "channels": [
            {
                "name": "singlechannel",
                "samples": [
                    {"name": "signal", "data": [30.0] * n,
                     "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "background", "data": [100.0] * n,
                     "modifiers": [{"name": "uncorr_bkguncrt", "type": "shapesys",
                                    "data": [10.0] * n}]},
                ],
            }
        ],
        "observations": [{"name": "singlechannel", "data": [120.0] * n}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def time_pyhf(ws, ntoys):
    import numpy as np
    import pyhf

    pyhf.set_backend("numpy")
    np.random.seed(0)
    w = pyhf.Workspace(ws)
    model = w.model()
    data = w.data(model)
    calc = pyhf.infer.calculators.ToyCalculator(data, model, ntoys=ntoys, track_progress=False)
    t0 = time.perf_counter()
    calc.teststatistic(1.0)
    sb, b = calc.distributions(1.0)
    dt = time.perf_counter() - t0
    return dt, float(calc.pvalues(calc.teststatistic(1.0), sb, b)[2])


NEXTSTAT_CHILD = r"""
import json, sys, time, nextstat
threads, ntoys, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if threads:
    nextstat.set_threads(threads)
model = nextstat.from_pyhf(open(path).read())
nextstat.hypotest_toys(1.0, model, n_toys=20, seed=1, expected_set=True)  # warm-up
t0 = time.perf_counter()
r = nextstat.hypotest_toys(1.0, model, n_toys=ntoys, seed=42, expected_set=True)
dt = time.perf_counter() - t0
cls = r[0] if isinstance(r, (tuple, list)) else r
print(json.dumps({"seconds": dt, "CLs_obs": float(cls)}))
"""


def time_nextstat(path, ntoys, threads):
    out = subprocess.run([sys.executable, "-c", NEXTSTAT_CHILD, str(threads), str(ntoys), path],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["seconds"], r["CLs_obs"]


def time_anagrad(binary, path, ntoys, threads, outdir):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    cmd = [binary, "cls", path, "--calctype", "toybased", "--ntoys", str(ntoys),
           "--seed", "1", "--quiet", "--out", outdir]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm-up (page cache)
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, check=True, text=True)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, json.loads(out.stdout)["CLs_obs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntoys", type=int, default=2000)
    ap.add_argument("--ntoys-pyhf", type=int, nargs="*", default=[200, 50, 10],
                    help="pyhf's toys per hypothesis, per entry of --bins")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target",
                                                     "release", "anagrad"))
    ap.add_argument("--bins", type=int, nargs="*", default=BINS)
    ap.add_argument("--no-pyhf", action="store_true")
    args = ap.parse_args()
    ncpu = os.cpu_count()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, ntoys_pyhf in zip(args.bins, args.ntoys_pyhf):
            path = os.path.join(tmp, f"ws_{n}.json")
            with open(path, "w") as f:
                json.dump(workspace(n), f)
            row = {"bins": n}
            for th in (1, 0):
                t, c = time_anagrad(args.binary, path, args.ntoys, th, os.path.join(tmp, "out"))
                row[f"anagrad_{th or ncpu}t"] = 2 * args.ntoys / t
                row["anagrad_CLs"] = c
                t, c = time_nextstat(path, args.ntoys, th or ncpu)
                row[f"nextstat_{th or ncpu}t"] = (2 * args.ntoys / t) if t else None
                row["nextstat_CLs"] = c
            if not args.no_pyhf:
                t, c = time_pyhf(workspace(n), ntoys_pyhf)
                row["pyhf"] = 2 * ntoys_pyhf / t
                row["pyhf_CLs"] = c
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"toys/s (2 x ntoys / wall time), {ncpu} cores; ratios = anagrad / other")
    print("| bins | anagrad 1t | anagrad all | NextStat 1t | NextStat all | pyhf numpy "
          "| vs pyhf (1t) | vs NextStat (1t / all) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a1, aa = r["anagrad_1t"], r[f"anagrad_{ncpu}t"]
        n1, na = r.get("nextstat_1t"), r.get(f"nextstat_{ncpu}t")
        p = r.get("pyhf")
        f = lambda x: (f"{x:,.0f}" if x >= 100 else f"{x:.3g}") if x else "n/a"
        vs_pyhf = f"{a1 / p:,.0f}x" if p else "n/a"
        vs_ns = f"{a1 / n1:.2f}x / {aa / na:.2f}x" if n1 and na else "n/a"
        print(f"| {r['bins']} | {f(a1)} | {f(aa)} | {f(n1)} | {f(na)} | {f(p)} "
              f"| {vs_pyhf} | {vs_ns} |")


if __name__ == "__main__":
    main()
