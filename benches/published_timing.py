"""Whole-process time of `anagrad cls` vs NextStat's CLI vs pyhf on published likelihoods.

For every signal point of every likelihood in ``tests/fixtures/published/`` (a
background-only workspace ``BkgOnly.json`` plus a ``patchset.json``):

* anagrad : ``target/release/anagrad cls BkgOnly.json -p PATCH.json``  (whole process;
            PATCH.json is the point's RFC 6902 patch, written to a temporary file)
* NextStat: ``nextstat hypotest -i WS.json --mu 1.0 --expected-set --interp-defaults pyhf``
            (whole process; PyPI ``nextstat==0.10.1``; its CLI takes no patch, so WS.json
            is the patched workspace, written beforehand and not timed)
* pyhf    : ``pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde",
            return_expected_set=True)``, numpy backend, default optimizer, in-process
            (workspace patching, model building, interpreter start-up and imports not counted)

Each timing is the median of ``--repeats`` wall-clock runs with the median CPU time
(user + sys) next to it (a failing command is reported, not timed). The table also
gives CLs_obs of each tool and the reference from ``refs.json`` (pyhf 0.7.6 with global
fits, see tests/fixtures/published/generate.py), so that a fast wrong answer shows.

    cargo build --release
    /work/venv-refs/bin/pip install "nextstat==0.10.1"   # the venv of generate.py
    /work/venv-refs/bin/python benches/published_timing.py [--repeats 5] [--only sbottom]

Measured 2026-12-06 (release build with global fits, median of 3 wall-clock runs, 2
cores with a reference generator running beside it, so wall times are ~1.5-2x a quiet
machine's; pyhf 0.7.6 numpy backend, NextStat 0.10.1):

| likelihood (params) | anagrad cls | NextStat CLI | pyhf in-process | CLs_obs agreement |
|---|---:|---:|---:|---|
| sbottom RegionA (64), 3 points | 370-405 ms | 48-79 ms | 3.6-5.3 s | anagrad = reference to 1e-10; pyhf 1e-5; NextStat up to 9 % off |
| sbottom RegionB (60), 3 points | 114-130 ms | 19-43 ms | 2.1-2.3 s | anagrad = reference; NextStat off by 2-4 % on two points |
| sbottom RegionC (66), 3 points | 480-672 ms | 72-81 ms | 4.9-6.8 s | anagrad = reference; NextStat up to 14 % off |
| staus (120), 3 points | 1.8-3.0 s | 66-84 ms | 3.4-8.7 s | DS_400_1: anagrad = reference; DS_200_1 / DS_280_40: anagrad 2.9e-3 / 1.5e-2, pyhf and NextStat 1.2e-4 / 2e-3 from a local minimum of the fixed-mu fit (pyhf's own logpdf at anagrad's mu = 1 minimum is 6.2 / 4.3 lower) |
| 3L eRJR (70), 3 points | 1.5-2.1 s | 24-50 ms | 0.24-0.26 s | ERJR_200p0_100p0: anagrad 0.0263 = reference; pyhf 0.9995, NextStat 0.23 |

The cost of the global search: these likelihoods have 30-100 parameters whose rate is
non-monotonic in some bin (same-side normsys/histosys variations), so each fit runs from
~60-206 starts (two per such parameter, in parallel on the cores): `anagrad cls` takes
0.1-3 s here instead of the ~10-50 ms of one start, still 3-13x faster than pyhf on the
sbottom and staus models, but 6-8x slower than pyhf's single (and here wrong) local fits
on eRJR. NextStat is faster than both and wrong wherever the likelihood has several minima.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from cli_timing import cls_of, run_once  # noqa: E402

PUBLISHED = os.path.join(REPO, "tests", "fixtures", "published")


def time_cmd(cmd, repeats):
    import subprocess

    out = subprocess.run(cmd, capture_output=True, text=True)  # warm-up, and the answer
    if out.returncode != 0:
        return None, None, None, (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
    walls, cpus = zip(*(run_once(cmd) for _ in range(repeats)))
    return statistics.median(walls), statistics.median(cpus), out.stdout, None


def time_pyhf(spec, repeats, max_seconds):
    import pyhf

    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    try:
        result = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
    except Exception as e:  # noqa: BLE001
        return None, None, None, f"{type(e).__name__}: {e}"
    walls, cpus = [], []
    start = time.perf_counter()
    while len(walls) < repeats:
        t0, c0 = time.perf_counter(), time.process_time()
        pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - t0)
        if len(walls) >= 2 and time.perf_counter() - start > max_seconds:
            break
    return statistics.median(walls), statistics.median(cpus), float(result[0]), None


def fmt(t):
    return f"{t * 1e3:9.1f}" if t is not None else "     fail"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated substrings of folder names")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pyhf-max-seconds", type=float, default=60.0)
    ap.add_argument("--anagrad", default=os.path.join(REPO, "target", "release", "anagrad"))
    ap.add_argument("--nextstat", default=shutil.which("nextstat") or os.path.join(os.path.dirname(sys.executable), "nextstat"))
    ap.add_argument("--no-pyhf", action="store_true")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    import jsonpatch

    only = [s for s in args.only.split(",") if s]
    rows = []
    print(f"{'likelihood/point':60s} {'npar':>5s} {'anagrad ms':>10s} {'nextstat ms':>11s} {'pyhf ms':>9s}   CLs_obs: anagrad / nextstat / pyhf / reference")
    with tempfile.TemporaryDirectory() as tmp:
        for folder in sorted(os.listdir(PUBLISHED)):
            d = os.path.join(PUBLISHED, folder)
            if not os.path.exists(os.path.join(d, "patchset.json")) or (only and not any(o in folder for o in only)):
                continue
            bkg = os.path.join(d, "BkgOnly.json")
            with open(bkg) as f:
                spec = json.load(f)
            with open(os.path.join(d, "patchset.json")) as f:
                ps = json.load(f)
            refs = {}
            if os.path.exists(os.path.join(d, "refs.json")):
                with open(os.path.join(d, "refs.json")) as f:
                    refs = {r["name"]: r for r in json.load(f)["points"]}
            for p in ps["patches"]:
                name = p["metadata"]["name"]
                patch_file = os.path.join(tmp, f"{folder}.{name}.patch.json")
                with open(patch_file, "w") as f:
                    json.dump(p["patch"], f)
                patched = jsonpatch.apply_patch(spec, p["patch"])
                ws_file = os.path.join(tmp, f"{folder}.{name}.json")
                with open(ws_file, "w") as f:
                    json.dump(patched, f)
                t_a, c_a, out_a, err_a = time_cmd([args.anagrad, "cls", bkg, "-p", patch_file], args.repeats)
                t_n, c_n, out_n, err_n = time_cmd([args.nextstat, "hypotest", "-i", ws_file, "--mu", "1.0", "--expected-set", "--interp-defaults", "pyhf"], args.repeats)
                if args.no_pyhf:
                    t_p = c_p = obs_p = None
                    err_p = "skipped"
                else:
                    t_p, c_p, obs_p, err_p = time_pyhf(patched, args.repeats, args.pyhf_max_seconds)
                obs_a = cls_of(out_a)[0] if out_a else None
                obs_n = cls_of(out_n)[0] if out_n else None
                ref = refs.get(name, {}).get("hypotest", {}).get("CLs_obs")
                npar = refs.get(name, {}).get("npar")
                row = {"likelihood": folder, "point": name, "npar": npar,
                       "anagrad_s": t_a, "anagrad_cpu_s": c_a, "anagrad_CLs_obs": obs_a, "anagrad_error": err_a,
                       "nextstat_s": t_n, "nextstat_cpu_s": c_n, "nextstat_CLs_obs": obs_n, "nextstat_error": err_n,
                       "pyhf_s": t_p, "pyhf_cpu_s": c_p, "pyhf_CLs_obs": obs_p, "pyhf_error": err_p,
                       "reference_CLs_obs": ref}
                rows.append(row)
                print(f"{folder + '/' + name:60s} {npar if npar else '?':>5} {fmt(t_a):>10s} {fmt(t_n):>11s} {fmt(t_p):>9s}   {obs_a} / {obs_n} / {obs_p} / {ref}", flush=True)
                for tool, err in (("anagrad", err_a), ("nextstat", err_n), ("pyhf", err_p)):
                    if err and err != "skipped":
                        print(f"    {tool}: {err}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
