"""Time pyhf 0.7.6's in-process hypotest on pyhf's benchmark model.

    pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)   # numpy backend

on ``pyhf.simplemodels.uncorrelated_background(signal=[30]*n, bkg=[100]*n,
bkg_uncertainty=[10]*n)`` with 120 observed per bin, n = 1, 10, 50, 100, 200, 500.
The same work as ``anagrad cls`` / ``benches/hypotest.rs``.

Setup (scratch virtualenv outside the repo):

    python3 -m venv /work/venv-infer
    /work/venv-infer/bin/pip install "pyhf==0.7.6" "nextstat==0.10.1"
    /work/venv-infer/bin/python benches/pyhf_hypotest_timing.py [--repeats 20] [--max-seconds 60]

Prints one line per size with the median (and min) over the repeats; one warm-up
call per size is not timed. ``--max-seconds`` caps the time spent per size (at
least 3 timed calls), since one call takes seconds at 500 bins.
"""

import argparse
import json
import statistics
import time

import pyhf

SIZES = [1, 10, 50, 100, 200, 500]


def model_and_data(n):
    model = pyhf.simplemodels.uncorrelated_background(
        signal=[30.0] * n, bkg=[100.0] * n, bkg_uncertainty=[10.0] * n
    )
    data = [120.0] * n + model.config.auxdata
    return model, data


def time_pyhf(n, repeats, max_seconds):
    model, data = model_and_data(n)
    result = pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)  # warm-up
    times = []
    cpu = []
    start = time.perf_counter()
    while len(times) < repeats:
        t0 = time.perf_counter()
        c0 = time.process_time()
        pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    cls_obs, cls_exp = result
    return times, cpu, float(cls_obs), [float(x) for x in cls_exp]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    pyhf.set_backend("numpy")
    out = {}
    print(f"pyhf {pyhf.__version__}, numpy backend")
    for n in map(int, args.sizes.split(",")):
        times, cpu, cls_obs, cls_exp = time_pyhf(n, args.repeats, args.max_seconds)
        med = statistics.median(times)
        out[n] = {"median_s": med, "min_s": min(times), "runs": len(times),
                  "median_cpu_s": statistics.median(cpu),
                  "CLs_obs": cls_obs, "CLs_exp": cls_exp}
        print(f"{n:4d} bins: median {med * 1e3:9.2f} ms  min {min(times) * 1e3:9.2f} ms"
              f"  CPU {statistics.median(cpu) * 1e3:9.2f} ms"
              f"  ({len(times)} runs)  CLs_obs {cls_obs:.8g}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
