"""Whole-process time of `anagrad cls` vs NextStat's CLI vs pyhf in-process.

For pyhf's benchmark model ``uncorrelated_background(signal=[30]*n, bkg=[100]*n,
bkg_uncertainty=[10]*n)``, 120 observed per bin, n = 1, 10, 50, 100, 200, 500:

* anagrad : ``target/release/anagrad cls WS.json``            (whole process)
* NextStat: ``nextstat hypotest -i WS.json --mu 1.0 --expected-set --interp-defaults pyhf``
            (whole process; PyPI ``nextstat==0.10.1``)
* pyhf    : ``pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)``,
            numpy backend, in-process (no interpreter start-up or import counted)

Each timing is the median of ``--repeats`` runs of the wall-clock time, with the
median CPU time (user + sys; for pyhf ``time.process_time``) next to it — on a
shared, busy machine the wall clock includes waiting for a core, CPU time does not.
Timings are the median of ``--repeats`` runs (default 20; pyhf is capped by
``--pyhf-max-seconds`` per size, at least 3 runs, since one call takes seconds at
500 bins). Prints a table, the speed-up ratios and whether the targets hold
(anagrad ≥ 50× faster than pyhf, and faster than NextStat, at every size), and
the largest relative difference of CLs_obs/CLs_exp between the three tools.

    cargo build --release
    python3 -m venv /work/venv-infer
    /work/venv-infer/bin/pip install "pyhf==0.7.6" "nextstat==0.10.1"
    /work/venv-infer/bin/python benches/cli_timing.py

Global fits (issue 10), before/after on these convex models (no parameter is
non-convex, so one start as before), 2026-12-06, same machine back to back, median
CPU ms (user + sys) of 30 runs, `--no-pyhf`; load average ~5 from other jobs, so
wall times are noisy:

| bins | before (630a575) | after | NextStat CLI (same runs) |
|---:|---:|---:|---:|
| 1 | 1.27 | 1.37 | 2.55 - 2.73 |
| 10 | 1.35 | 1.32 | 2.67 - 3.05 |
| 50 | 1.66 | 1.61 | 3.24 - 3.29 |
| 100 | 2.02 | 1.90 | 3.99 - 4.16 |
| 200 | 2.76 | 2.66 | 6.37 - 6.65 |
| 500 | 6.14 | 6.56 | 12.51 - 13.08 |

Unchanged within noise (a second pair of runs gave 200 bins 2.62 / 2.63 ms and 500
bins 6.26 / 6.18 ms); anagrad stays ahead of NextStat's CLI at every size (1.8-2.5x
in wall time).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

SIZES = [1, 10, 50, 100, 200, 500]


def workspace(n):
    """The spec pyhf.simplemodels.uncorrelated_background builds."""
    return {
        "channels": [{
            "name": "singlechannel",
            "samples": [
                {"name": "signal", "data": [30.0] * n,
                 "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                {"name": "background", "data": [100.0] * n,
                 "modifiers": [{"name": "uncorr_bkguncrt", "type": "shapesys",
                                "data": [10.0] * n}]},
            ],
        }],
        "observations": [{"name": "singlechannel", "data": [120.0] * n}],
        "measurements": [{"name": "Measurement", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def run_once(cmd):
    """Wall time and CPU time (user + sys, from the child's rusage) of one run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} exited with {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime


def time_cmd(cmd, repeats):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)  # warm-up
    walls, cpus = zip(*(run_once(cmd) for _ in range(repeats)))
    return statistics.median(walls), statistics.median(cpus), out.stdout


def cls_of(stdout):
    d = json.loads(stdout)
    obs = d.get("CLs_obs", d.get("cls"))
    exp = d.get("CLs_exp", d.get("expected_set", d.get("cls_expected_set")))
    if isinstance(exp, dict):
        exp = exp.get("cls")
    return obs, exp


def rel(a, b):
    return abs(a - b) / abs(b) if b else abs(a - b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--pyhf-max-seconds", type=float, default=60.0)
    ap.add_argument("--anagrad", default=os.path.join(REPO, "target", "release", "anagrad"))
    ap.add_argument("--nextstat", default=shutil.which("nextstat") or os.path.join(
        os.path.dirname(sys.executable), "nextstat"))
    ap.add_argument("--no-pyhf", action="store_true")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()

    if not args.no_pyhf:
        import pyhf
        from pyhf_hypotest_timing import time_pyhf
        pyhf.set_backend("numpy")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.sizes.split(",")):
            ws = os.path.join(tmp, f"uncorr_bkg_{n}.json")
            with open(ws, "w") as f:
                json.dump(workspace(n), f)
            t_a, c_a, out_a = time_cmd([args.anagrad, "cls", ws], args.repeats)
            t_n, c_n, out_n = time_cmd([args.nextstat, "hypotest", "-i", ws, "--mu", "1.0",
                                        "--expected-set", "--interp-defaults", "pyhf"],
                                       args.repeats)
            obs_a, exp_a = cls_of(out_a)
            obs_n, exp_n = cls_of(out_n)
            row = {"bins": n, "anagrad_s": t_a, "nextstat_s": t_n,
                   "anagrad_cpu_s": c_a, "nextstat_cpu_s": c_n,
                   "CLs_obs": obs_a, "CLs_exp": exp_a,
                   "nextstat_CLs_obs": obs_n, "nextstat_CLs_exp": exp_n}
            if not args.no_pyhf:
                times, cpu, obs_p, exp_p = time_pyhf(n, args.repeats, args.pyhf_max_seconds)
                row.update(pyhf_s=statistics.median(times), pyhf_runs=len(times),
                           pyhf_cpu_s=statistics.median(cpu),
                           pyhf_CLs_obs=obs_p, pyhf_CLs_exp=exp_p)
            rows.append(row)
            print(f"{n} bins done: anagrad {t_a * 1e3:.2f} ms, nextstat {t_n * 1e3:.2f} ms"
                  + (f", pyhf {row['pyhf_s'] * 1e3:.1f} ms" if "pyhf_s" in row else ""),
                  file=sys.stderr, flush=True)

    print("\nwall-clock medians (CPU time = user + sys in parentheses)")
    print("\n| bins | anagrad cls (process) | NextStat CLI (process) | pyhf in-process "
          "| pyhf / anagrad | NextStat / anagrad | targets |")
    print("|---:|---:|---:|---:|---:|---:|:---|")
    ok_all = True
    for r in rows:
        ns = r["nextstat_s"] / r["anagrad_s"]
        ok = ns > 1.0
        py = ""
        pr = ""
        if "pyhf_s" in r:
            ratio = r["pyhf_s"] / r["anagrad_s"]
            ok = ok and ratio >= 50.0
            py = f"{r['pyhf_s'] * 1e3:.1f} ms ({r['pyhf_cpu_s'] * 1e3:.1f}; {r['pyhf_runs']} runs)"
            pr = f"{ratio:.0f}×"
        ok_all &= ok
        print(f"| {r['bins']} | {r['anagrad_s'] * 1e3:.2f} ms ({r['anagrad_cpu_s'] * 1e3:.2f}) "
              f"| {r['nextstat_s'] * 1e3:.2f} ms ({r['nextstat_cpu_s'] * 1e3:.2f}) "
              f"| {py} | {pr} | {ns:.2f}× | {'ok' if ok else 'MISSED'} |")

    print("\nlargest relative CLs differences (obs and 5 expected):")
    for r in rows:
        parts = []
        if r.get("nextstat_CLs_obs") is not None and r.get("nextstat_CLs_exp"):
            d = max([rel(r["CLs_obs"], r["nextstat_CLs_obs"])]
                    + [rel(a, b) for a, b in zip(r["CLs_exp"], r["nextstat_CLs_exp"])])
            parts.append(f"anagrad vs NextStat {d:.1e}")
        if "pyhf_CLs_obs" in r:
            d = max([rel(r["CLs_obs"], r["pyhf_CLs_obs"])]
                    + [rel(a, b) for a, b in zip(r["CLs_exp"], r["pyhf_CLs_exp"])])
            parts.append(f"anagrad vs pyhf (default optimizer) {d:.1e}")
        print(f"  {r['bins']:4d} bins: " + ", ".join(parts))
    print("\nall targets met" if ok_all else "\nSOME TARGETS MISSED")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
