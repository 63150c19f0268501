"""Side-by-side table of anagrad's and relaxed's default bandwidth study, with
issue 6's acceptance check per cell (standard library only):

    |Δmean| ≤ 4·sqrt(σ_a² + σ_r²)/sqrt(datasets)   and   σ_a/σ_r ∈ [0.85, 1.15]

Usage: python3 papers/bandwidth/compare.py [anagrad cells.csv] > papers/bandwidth/comparison.md
(default input: papers/bandwidth/default/cells.csv, written by `anagrad bandwidth-study --out papers/bandwidth/default`). Exit status 1 if any cell fails.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> int:
    ours_path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "default" / "cells.csv"
    ref = json.loads((ROOT / "tests" / "fixtures" / "bandwidth_relaxed.json").read_text())
    m = ref["datasets"]
    rel = {(c["n"], c["ratio"]): c for c in ref["cells"]}
    with ours_path.open() as f:
        ours = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    print("| N | r | mean anagrad | mean relaxed | |Δmean|/tol | std anagrad | std relaxed | std ratio | true | ok |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|")
    fails = 0
    for a in ours:
        key = (int(a["n"]), a["ratio"])
        r = rel[key]
        tol = 4 * math.sqrt(a["std"] ** 2 + r["std"] ** 2) / math.sqrt(m)
        dm = abs(a["mean"] - r["mean"])
        sr = a["std"] / r["std"]
        ok = dm <= tol and 0.85 <= sr <= 1.15
        fails += not ok
        print(
            f"| {key[0]} | {key[1]:g} | {a['mean']:+.5f} | {r['mean']:+.5f} | {dm / tol:.2f} | "
            f"{a['std']:.5f} | {r['std']:.5f} | {sr:.3f} | {a['true']:+.5f} | {'yes' if ok else '**no**'} |"
        )
    print()
    for name, rows in (("anagrad", ours), ("relaxed", list(rel.values()))):
        best = {}
        for c in rows:
            n = int(c["n"])
            if n not in best or c["rmse"] < best[n][1]:
                best[n] = (c["ratio"], c["rmse"])
        print(f"RMSE-optimal r ({name}): " + ", ".join(f"N={n}: r={v[0]:g}" for n, v in sorted(best.items())))
    print(f"\n{len(ours) - fails}/{len(ours)} cells within the acceptance band.")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
